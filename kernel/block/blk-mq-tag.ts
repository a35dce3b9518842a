/**
 * Tag sets and tags (block/blk-mq.c blk_mq_alloc_tag_set / blk_mq_free_tag_set, block/blk-mq-tag.c,
 * block/blk-mq-cpumap.c blk_mq_map_queues): a tag set describes a device's hardware queues — how
 * many, how deep, the driver's ops and per-request data — and preallocates one request per tag
 * of each hardware queue. Disks (and passthrough queues) are created on a tag set; NVMe
 * namespaces of one controller share theirs.
 *
 * The tag allocator hands out the most recently freed tag first (a stack); a submitter that finds
 * none free sleeps on the hw queue's tag wait queue until a request ends (or, with REQ_NOWAIT /
 * BLK_MQ_REQ_NOWAIT, fails). Reserved tags (set.reserved_tags) are only handed to
 * BLK_MQ_REQ_RESERVED allocations.
 */

import type { Device } from '../base/device.js'
import { EINVAL, ENOMEM } from '../errno.js'
import { badArg, kfree, kzalloc } from '../mm/memory.js'
import { mightSleep } from '../sched/might-sleep.js'
import { init_waitqueue_head, msleep } from '../sched/time.js'
import type { System } from '../system.js'
import type { CpuAddr } from '../types.js'
import {
  BLK_MQ_F_BLOCKING,
  BLK_MQ_F_TAG_HCTX_SHARED,
  BLK_MQ_MAX_DEPTH,
  MQ_RQ_COMPLETE,
  MQ_RQ_IDLE,
} from './blk_types.js'
import { BlkMqTags, Request, dropPdu, setPdu, type BlkMqQueueMap, type BlkMqTagSet, type RequestQueue } from './request.js'
import { blkCall, blockState, blkWarnOnce } from './state.js'

/** What the block layer keeps about an allocated tag set. */
export interface TagSetInfo {
  readonly sys: System
  /** Queues created on the set and not yet destroyed. */
  readonly queues: Set<RequestQueue>
  /** The device whose driver allocated it (probe), for the leak check at unbind. */
  readonly owner: Device | null
  readonly devres: { what: string; release(): void } | null
  /** The distinct tags objects (one when shared). */
  readonly allTags: BlkMqTags[]
}

const infos = new WeakMap<BlkMqTagSet, TagSetInfo>()

/** The block layer's record of an allocated tag set, or undefined. */
export function tagSetInfo(set: BlkMqTagSet): TagSetInfo | undefined {
  return typeof set === 'object' && set !== null ? infos.get(set) : undefined
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v)
}

/** `blk_mq_map_queues(qmap)`: spreads the submission contexts over the queues (context i -> i % nr_queues). */
export function blk_mq_map_queues(qmap: BlkMqQueueMap): void {
  for (let i = 0; i < qmap.mq_map.length; i++) qmap.mq_map[i] = qmap.queue_offset + (i % Math.max(1, qmap.nr_queues))
}

/**
 * `blk_mq_alloc_tag_set(set)`: validates the driver's set, preallocates queue_depth requests per
 * hw queue (calling ops.init_request for each), builds the queue map (ops.map_queues may rewrite
 * it) and fills set.tags and set.map. Process context (it allocates with GFP_KERNEL). Returns 0,
 * -EINVAL for a set Linux rejects (no queue_rq, no queues, a depth below reserved_tags + 1,
 * BLK_MQ_F_BLOCKING, which dmalab does not support), -ENOMEM, or init_request's error.
 */
export function blk_mq_alloc_tag_set(set: BlkMqTagSet): number {
  const { t, sys, bs } = blkCall('blk_mq_alloc_tag_set')
  mightSleep(t, 'blk_mq_alloc_tag_set')
  if (typeof set !== 'object' || set === null) badArg(t, 'blk_mq_alloc_tag_set', 'set', 'must be a struct blk_mq_tag_set object')
  if (infos.has(set)) {
    sys.logger.error({ task: t.toString() }, 'blk_mq_alloc_tag_set: the tag set is already allocated (blk_mq_free_tag_set it first)')
    return -EINVAL
  }
  const ops = set.ops as Partial<BlkMqTagSet['ops']> | undefined
  if (typeof ops !== 'object' || ops === null || typeof ops.queue_rq !== 'function') return -EINVAL
  for (const k of ['complete', 'commit_rqs', 'timeout', 'init_hctx', 'exit_hctx', 'init_request', 'exit_request', 'map_queues'] as const) {
    if (ops[k] !== undefined && typeof ops[k] !== 'function') badArg(t, 'blk_mq_alloc_tag_set', `set.ops.${k}`, 'must be a function or absent')
  }
  if (!isInt(set.nr_hw_queues) || set.nr_hw_queues < 0) badArg(t, 'blk_mq_alloc_tag_set', 'set.nr_hw_queues', `must be a number of queues, got ${String(set.nr_hw_queues)}`)
  if (!isInt(set.queue_depth) || set.queue_depth < 0) badArg(t, 'blk_mq_alloc_tag_set', 'set.queue_depth', `must be a queue depth, got ${String(set.queue_depth)}`)
  const reserved = set.reserved_tags ?? 0
  if (!isInt(reserved) || reserved < 0) badArg(t, 'blk_mq_alloc_tag_set', 'set.reserved_tags', `must be a non-negative integer, got ${String(reserved)}`)
  const cmdSize = set.cmd_size ?? 0
  if (!isInt(cmdSize) || cmdSize < 0 || cmdSize > 1 << 20) badArg(t, 'blk_mq_alloc_tag_set', 'set.cmd_size', `must be a byte count up to 1 MiB, got ${String(set.cmd_size)}`)
  const flags = set.flags ?? 0
  if (!isInt(flags) || flags < 0) badArg(t, 'blk_mq_alloc_tag_set', 'set.flags', `must be BLK_MQ_F_* flags, got ${String(set.flags)}`)
  if (set.timeout !== undefined && (!isInt(set.timeout) || set.timeout < 0)) badArg(t, 'blk_mq_alloc_tag_set', 'set.timeout', `must be a timeout in jiffies, got ${String(set.timeout)}`)
  if (set.nr_hw_queues === 0 || set.nr_hw_queues > 1024) return -EINVAL
  if (set.queue_depth === 0 || set.queue_depth < reserved + 1) return -EINVAL
  if ((flags & BLK_MQ_F_BLOCKING) !== 0) {
    sys.logger.error({ task: t.toString() }, 'blk_mq_alloc_tag_set: BLK_MQ_F_BLOCKING is not supported by dmalab: queue_rq runs in atomic context')
    return -EINVAL
  }
  if (set.queue_depth > BLK_MQ_MAX_DEPTH) {
    sys.logger.info({ task: t.toString() }, `blk-mq: reduced tag depth to ${BLK_MQ_MAX_DEPTH}`)
    set.queue_depth = BLK_MQ_MAX_DEPTH
  }
  const numa = set.numa_node ?? -1
  const shared = (flags & BLK_MQ_F_TAG_HCTX_SHARED) !== 0
  const allTags: BlkMqTags[] = []
  const perHctx: BlkMqTags[] = []
  const pdus: CpuAddr[] = []
  const inited: { rq: Request; idx: number }[] = []
  const unwind = (rc: number): number => {
    for (const { rq, idx } of inited.reverse()) ops.exit_request?.(set, rq, idx)
    for (const tags of allTags) for (const rq of tags.static_rqs) dropPdu(rq)
    for (const p of pdus) kfree(p)
    return rc
  }
  for (let i = 0; i < set.nr_hw_queues; i++) {
    if (shared && i > 0) {
      perHctx.push(allTags[0]!)
      continue
    }
    const tags = new BlkMqTags(set, set.queue_depth, reserved)
    tags._wait = init_waitqueue_head()
    allTags.push(tags)
    perHctx.push(tags)
    for (let tag = 0; tag < set.queue_depth; tag++) {
      let pdu: unknown
      if (cmdSize > 0) {
        const p = kzalloc(cmdSize)
        if (p === null) return unwind(-ENOMEM)
        pdus.push(p)
        pdu = p
      } else pdu = {}
      const rq = new Request(null, null, tag, null)
      setPdu(rq, pdu)
      tags.static_rqs.push(rq)
      if (ops.init_request !== undefined) {
        const rc = ops.init_request(set, rq, i, numa)
        if (typeof rc !== 'number') badArg(t, 'init_request', 'return value', `must be 0 or a negative errno, got ${typeof rc}`)
        if (rc !== 0) return unwind(rc)
        inited.push({ rq, idx: i })
      }
    }
  }
  set.tags = perHctx
  const map: BlkMqQueueMap = { mq_map: new Array<number>(set.nr_hw_queues).fill(0), nr_queues: set.nr_hw_queues, queue_offset: 0 }
  blk_mq_map_queues(map)
  set.map = [map]
  set.nr_maps = 1
  if (ops.map_queues !== undefined) {
    ops.map_queues(set)
    const m = set.map[0]
    if (m === undefined || !Array.isArray(m.mq_map) || m.mq_map.length !== set.nr_hw_queues || m.mq_map.some((q) => !isInt(q) || q < 0 || q >= set.nr_hw_queues)) {
      blkWarnOnce(bs, `map_queues:${sys.name}`, 'blk-mq: map_queues left an invalid map (each submission context must map to a hw queue): using the default spread')
      set.map = [map]
      blk_mq_map_queues(map)
    }
  }
  const owner = t.device
  let devres: TagSetInfo['devres'] = null
  if (owner !== null) {
    devres = {
      what: 'blk_mq_tag_set',
      release: () => {
        if (!infos.has(set) || !sys.checks.dmaDebug) return
        sys.report({
          kind: 'leak',
          device: owner.name,
          message: `${owner.name}: a blk_mq_tag_set (${set.nr_hw_queues} hw queue(s) of ${set.queue_depth} requests) was never freed after its driver was unbound: call blk_mq_free_tag_set() in remove`,
        })
      },
    }
    owner.devres.push(devres)
  }
  infos.set(set, { sys, queues: new Set(), owner, devres, allTags })
  bs.tagSets.add(set)
  return 0
}

/**
 * `blk_mq_free_tag_set(set)`: calls ops.exit_request for each request and frees them. Every
 * queue of the set must have been destroyed first (put_disk, blk_mq_destroy_queue), and no
 * request may be in use: freeing it anyway is logged, as Linux WARNs.
 */
export function blk_mq_free_tag_set(set: BlkMqTagSet): void {
  const { t, sys, bs } = blkCall('blk_mq_free_tag_set')
  const info = tagSetInfo(set)
  if (info === undefined) {
    sys.logger.error({ task: t.toString() }, 'blk_mq_free_tag_set: the tag set was not allocated (or was freed already)')
    return
  }
  if (info.queues.size > 0) {
    sys.logger.error({ task: t.toString() }, `blk_mq_free_tag_set: ${info.queues.size} queue(s) still use the tag set: del_gendisk() and put_disk() (or blk_mq_destroy_queue()) first`)
  }
  const busy = info.allTags.reduce((n, tags) => n + tags.busy, 0)
  if (busy > 0) sys.logger.error({ task: t.toString() }, `blk_mq_free_tag_set: ${busy} request(s) still in use`)
  info.allTags.forEach((tags, i) => {
    for (const rq of tags.static_rqs) {
      set.ops.exit_request?.(set, rq, i)
      if (typeof rq._pdu === 'number') kfree(rq._pdu as CpuAddr)
      dropPdu(rq)
    }
  })
  if (info.owner !== null && info.devres !== null) {
    const i = info.owner.devres.indexOf(info.devres)
    if (i >= 0) info.owner.devres.splice(i, 1)
  }
  infos.delete(set)
  bs.tagSets.delete(set)
  delete set.tags
  delete set.map
}

/** Takes a free tag of tags (a reserved one when asked); -1 when none is free. */
export function tagGet(tags: BlkMqTags, reserved: boolean): number {
  const free = reserved ? tags._freeReserved : tags._free
  return free.length > 0 ? free.pop()! : -1
}

/** Gives rq's tag back. */
export function tagPut(tags: BlkMqTags, rq: Request): void {
  if (rq._reserved) tags._freeReserved.push(rq.tag)
  else tags._free.push(rq.tag)
}

/**
 * `blk_mq_tag_to_rq(tags, tag)`: the request of a tag (set.tags[hctx_idx], hctx.tags). As in
 * Linux it is the request that last used the tag; null for a tag never used or out of range.
 */
export function blk_mq_tag_to_rq(tags: BlkMqTags, tag: number): Request | null {
  const { t } = blkCall('blk_mq_tag_to_rq')
  if (!(tags instanceof BlkMqTags)) badArg(t, 'blk_mq_tag_to_rq', 'tags', 'must be a struct blk_mq_tags (set.tags[i] or hctx.tags)')
  if (!isInt(tag) || tag < 0 || tag >= tags.nr_tags) return null
  return tags.rqs[tag] ?? null
}

/**
 * `blk_mq_tagset_busy_iter(set, fn, priv)`: calls fn(rq, priv) for each started request of the
 * tag set (all its queues), until fn returns false. Drivers cancel what is in flight with it
 * when they reset the hardware.
 */
export function blk_mq_tagset_busy_iter<T>(set: BlkMqTagSet, fn: (rq: Request, priv: T) => boolean, priv: T): void {
  const { t } = blkCall('blk_mq_tagset_busy_iter')
  const info = tagSetInfo(set)
  if (info === undefined) badArg(t, 'blk_mq_tagset_busy_iter', 'set', 'must be an allocated tag set')
  if (typeof fn !== 'function') badArg(t, 'blk_mq_tagset_busy_iter', 'fn', 'must be a function')
  for (const tags of info.allTags) {
    for (const rq of tags.static_rqs) {
      if (rq._allocated && rq.state !== MQ_RQ_IDLE && !fn(rq, priv)) return
    }
  }
}

/** `blk_mq_tagset_count_completed_rqs`-style helper: requests marked complete whose ->complete has not run yet. */
export function tagsetCompletedPending(set: BlkMqTagSet): number {
  const info = tagSetInfo(set)
  if (info === undefined) return 0
  let n = 0
  for (const tags of info.allTags) for (const rq of tags.static_rqs) if (rq._allocated && rq.state === MQ_RQ_COMPLETE) n++
  return n
}

/**
 * `blk_mq_tagset_wait_completed_request(set)`: sleeps until no request of the set is completed
 * but not yet ended (its ->complete still pending in the BLOCK softirq).
 */
export async function blk_mq_tagset_wait_completed_request(set: BlkMqTagSet): Promise<void> {
  const { t } = blkCall('blk_mq_tagset_wait_completed_request')
  if (!mightSleep(t, 'blk_mq_tagset_wait_completed_request')) return
  while (tagsetCompletedPending(set) > 0) await msleep(1)
}

/** Every allocated tag set's info, for the harness's leak checks. */
export function liveTagSets(sys: System): BlkMqTagSet[] {
  return [...blockState(sys).tagSets]
}
