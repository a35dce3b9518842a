/**
 * The multi-queue block layer (block/blk-mq.c, block/blk-mq-sched.c's dispatch, block/blk-core.c's
 * queue freezing): creating a request_queue on a tag set (init_hctx for each hardware queue),
 * allocating requests for bios (sleeping for a free tag), dispatching them to the driver's
 * queue_rq in atomic context with the BLK_STS_RESOURCE retry rules, starting, completing (the
 * BLOCK softirq runs ops.complete) and ending requests, the requeue list, stopping and starting
 * hardware queues, quiescing and freezing queues for a reset, and passthrough requests
 * (blk_mq_alloc_request, blk_execute_rq) for a driver's own commands.
 *
 * Where code runs (docs/block.md §3):
 * - queue_rq and commit_rqs: in a softirq-context section of the task that dispatches — the
 *   submitter (`submit_bio` issues directly when the hw queue is idle) or kblockd (a re-run after
 *   a restart, a requeue, start_stopped_hw_queues) — so they are atomic: sleeping in them is
 *   `invalid-context`, while hard IRQs still arrive between their kernel calls;
 * - ops.complete: in the BLOCK softirq, raised by blk_mq_complete_request (from any context);
 * - ops.timeout: in a kblockd process task (it may sleep, as nvme_timeout does);
 * - bi_end_io and a passthrough request's end_io: where the driver ends the request.
 *
 * dmalab has no I/O scheduler, no merging of requests, no polled queues and no BLK_MQ_F_BLOCKING.
 */

import { EAGAIN, EINVAL, ENODEV } from '../errno.js'
import { badArg, cpuPa } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import { mightSleep } from '../sched/might-sleep.js'
import { init_waitqueue_head, wait_event, wait_event_timeout, type WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import { GFP_KERNEL, offset_in_page, PAGE_SIZE, type CpuAddr } from '../types.js'
import { Bio, bio_endio, type BioVec } from './bio.js'
import {
  BLK_MQ_REQ_NOWAIT,
  BLK_MQ_REQ_PM,
  BLK_MQ_REQ_RESERVED,
  BLK_MQ_RESOURCE_DELAY_MS,
  BLK_MQ_S_SCHED_RESTART,
  BLK_MQ_S_STOPPED,
  BLK_STS_DEV_RESOURCE,
  BLK_STS_IOERR,
  BLK_STS_OK,
  BLK_STS_RESOURCE,
  MQ_RQ_COMPLETE,
  MQ_RQ_IDLE,
  MQ_RQ_IN_FLIGHT,
  REQ_OP_DRV_IN,
  REQ_OP_DRV_OUT,
  REQ_OP_MASK,
  RQ_END_IO_FREE,
  RQ_END_IO_NONE,
  RQF_RESV,
  RQF_STARTED,
  blk_status_valid,
  type blk_opf_t,
  type blk_status_t,
} from './blk_types.js'
import { tagGet, tagPut, tagSetInfo } from './blk-mq-tag.js'
import { countSegments } from './blk-merge.js'
import { BLK_DEFAULT_TIMEOUT, validateLimits } from './blk-settings.js'
import { blkAddTimer, blkCancelIdleTimer } from './blk-timeout.js'
import { ERR_PTR, type ErrPtr } from './err.js'
import { accountDone } from './genhd.js'
import {
  BlkMqHwCtx,
  Request,
  RequestQueue,
  type BlkMqQueueData,
  type BlkMqTagSet,
  type QueueLimits,
} from './request.js'
import { OOPSED, blkCall, blockState, blkWarnOnce, callAtomic, contextName, setBlockSoftirq, type BlockState } from './state.js'

const NS_PER_MS = 1e6
const STOPPED = 1 << BLK_MQ_S_STOPPED
const RESTART = 1 << BLK_MQ_S_SCHED_RESTART
const NO_BVECS: BioVec[] = []

// ---------------------------------------------------------------------- helpers

/** Changes a request's state, keeping its queue's count of requests in flight. */
export function setRqState(rq: Request, state: number): void {
  if (rq.state === MQ_RQ_IN_FLIGHT) rq.q._inflight--
  if (state === MQ_RQ_IN_FLIGHT) rq.q._inflight++
  rq.state = state
}

function sysOf(t: Task): System {
  return t.sys as System
}

/** Wakes every task waiting on wq (an internal wake_up: no kernel call of its own). */
export function wakeAll(sys: System, wq: WaitQueueHead | null): void {
  if (wq === null || wq.waiters.length === 0) return
  for (const w of wq.waiters) sys.sched.wake(w)
}

/** Validates a request argument of a driver call. */
export function checkRq(t: Task, fn: string, rq: unknown): Request {
  if (!(rq instanceof Request)) badArg(t, fn, 'rq', `must be a struct request, got ${rq === null ? 'NULL' : typeof rq}`)
  if (rq.q === null || rq.q._sys !== t.sys) badArg(t, fn, 'rq', `(tag ${rq.tag}) was never allocated on this system`)
  return rq
}

function checkQueue(t: Task, fn: string, q: unknown): RequestQueue {
  if (!(q instanceof RequestQueue)) badArg(t, fn, 'q', `must be a struct request_queue, got ${q === null ? 'NULL' : typeof q}`)
  if (q._sys !== t.sys) badArg(t, fn, 'q', 'belongs to another system')
  return q
}

function checkHctx(t: Task, fn: string, hctx: unknown): BlkMqHwCtx {
  if (!(hctx instanceof BlkMqHwCtx)) badArg(t, fn, 'hctx', `must be a struct blk_mq_hw_ctx, got ${hctx === null ? 'NULL' : typeof hctx}`)
  return hctx
}

/** The hw queue of submission context cpu (the tag set's queue map). */
export function hctxFor(q: RequestQueue, cpu: number): BlkMqHwCtx {
  const map = q.tag_set.map?.[0]?.mq_map
  const idx = map === undefined || map.length === 0 ? 0 : (map[cpu % map.length] ?? 0)
  return q.queue_hw_ctx[idx] ?? q.queue_hw_ctx[0]!
}

function hctxCanDispatch(hctx: BlkMqHwCtx): boolean {
  return (hctx.state & STOPPED) === 0 && hctx.queue._quiesceDepth === 0 && hctx.queue._state !== 'dead'
}

// ---------------------------------------------------------------------- queues

/**
 * `blk_mq_init_allocated_queue`: a request_queue on an allocated tag set, with one hw queue
 * context per hw queue (ops.init_hctx for each). Returns the queue or a negative errno.
 */
export function initQueue(t: Task, fn: string, set: BlkMqTagSet, lim: Partial<QueueLimits> | null, queuedata: unknown): RequestQueue | ErrPtr {
  const sys = sysOf(t)
  mightSleep(t, fn)
  const info = tagSetInfo(set)
  if (info === undefined) badArg(t, fn, 'set', 'must be a tag set allocated with blk_mq_alloc_tag_set()')
  if (info.sys !== sys) badArg(t, fn, 'set', 'belongs to another system')
  if (lim !== null && (typeof lim !== 'object' || Array.isArray(lim))) badArg(t, fn, 'lim', 'must be a struct queue_limits object or null')
  const why: string[] = []
  const limits = validateLimits(lim ?? {}, why)
  if (typeof limits === 'number') {
    sys.logger.warn({ task: t.toString() }, `${fn}: invalid queue limits: ${why.join('; ')}`)
    return ERR_PTR(-EINVAL)
  }
  const q = new RequestQueue(sys, set, limits, queuedata, init_waitqueue_head())
  q.rq_timeout = set.timeout !== undefined && set.timeout > 0 ? set.timeout : BLK_DEFAULT_TIMEOUT
  for (let i = 0; i < set.nr_hw_queues; i++) {
    const hctx = new BlkMqHwCtx(q, i, set.tags![i]!, set.flags ?? 0, set.numa_node ?? -1)
    q.queue_hw_ctx.push(hctx)
  }
  for (const hctx of q.queue_hw_ctx) {
    const init = set.ops.init_hctx
    if (init !== undefined) {
      const rc = init.call(set.ops, hctx, set.driver_data ?? null, hctx.queue_num)
      if (typeof rc !== 'number') badArg(t, 'init_hctx', 'return value', `must be 0 or a negative errno, got ${typeof rc}`)
      if (rc !== 0) {
        for (const h of q.queue_hw_ctx) if (h._inited) set.ops.exit_hctx?.(h, h.queue_num)
        q._state = 'dead'
        return ERR_PTR(rc)
      }
    }
    hctx._inited = true
  }
  info.queues.add(q)
  return q
}

/** `blk_mq_exit_queue`: exit_hctx for each hw queue; the queue is dead. */
export function exitQueue(q: RequestQueue): void {
  if (q._state === 'dead' && !q.queue_hw_ctx.some((h) => h._inited)) return
  q._state = 'dead'
  for (const hctx of q.queue_hw_ctx) {
    if (hctx._delay !== null) hctx._delay.cancelled = true
    hctx._delay = null
    if (hctx._inited) {
      hctx._inited = false
      q.tag_set.ops.exit_hctx?.call(q.tag_set.ops, hctx, hctx.queue_num)
    }
  }
  if (q._timer !== null) q._timer.cancelled = true
  q._timer = null
  if (q._requeueDelay !== null) q._requeueDelay.cancelled = true
  tagSetInfo(q.tag_set)?.queues.delete(q)
  wakeAll(q._sys, q._freezeWq)
}

/** Requests of q that hold a tag, in tag order. */
export function queueRequests(q: RequestQueue): Request[] {
  const out: Request[] = []
  const info = tagSetInfo(q.tag_set)
  if (info === undefined) return out
  for (const tags of info.allTags) for (const rq of tags.static_rqs) if (rq._allocated && rq.q === q) out.push(rq)
  return out
}

// ---------------------------------------------------------------------- request allocation

/** `blk_mq_rq_ctx_init`: rq takes tag on hctx for q. */
function initRequest(t: Task | null, q: RequestQueue, hctx: BlkMqHwCtx, tag: number, reserved: boolean, opf: blk_opf_t, cpu: number): Request {
  const tags = hctx.tags
  const rq = tags.static_rqs[tag]!
  tags.rqs[tag] = rq
  rq.q = q
  rq.mq_hctx = hctx
  rq.cmd_flags = opf
  rq.rq_flags = reserved ? RQF_RESV : 0
  rq.__sector = 0
  rq.__data_len = 0
  rq.bio = null
  rq._bvecs = NO_BVECS
  rq.nr_phys_segments = 0
  rq.timeout = q.rq_timeout
  rq.deadline = 0
  rq.start_time_ns = q._sys.machine.clock.now
  rq.io_start_time_ns = 0
  rq.state = MQ_RQ_IDLE
  rq.end_io = null
  rq.end_io_data = null
  rq._allocated = true
  rq._gen++
  rq._flushSeq = null
  rq._reserved = reserved
  rq._cpu = cpu
  rq._submitter = t
  q._usage++
  return rq
}

/**
 * Allocates a request of q for submission context cpu: a free tag of its hw queue, or — unless
 * nowait — sleeps until one is freed. Returns null when nowait found none, or the queue died.
 */
export async function getRequest(t: Task, q: RequestQueue, cpu: number, opf: blk_opf_t, reserved: boolean, nowait: boolean): Promise<Request | null> {
  const hctx = hctxFor(q, cpu)
  const tags = hctx.tags
  for (;;) {
    if (q._state === 'dead') return null
    const tag = tagGet(tags, reserved)
    if (tag >= 0) return initRequest(t, q, hctx, tag, reserved, opf, cpu)
    if (nowait) return null
    // Going to sleep: what this task has plugged goes out first (blk_flush_plug on schedule).
    flushPlugOf(t)
    hctx.stats.tagWaits++
    const free = reserved ? tags._freeReserved : tags._free
    await wait_event(tags._wait!, () => free.length > 0 || q._state === 'dead')
  }
}

// ---------------------------------------------------------------------- plugging

/** `struct blk_plug`: requests a task queues up to hand to the driver in one batch. */
export interface BlkPlug {
  /** @internal */
  _list: Request[]
  /** @internal */
  _task: Task | null
}

/** The most requests a plug holds before it is flushed (BLK_MAX_REQUEST_COUNT). */
export const BLK_MAX_REQUEST_COUNT = 32

const plugs = new WeakMap<Task, BlkPlug>()

/**
 * `blk_start_plug(plug)`: from now until blk_finish_plug, the task's requests are held back and
 * dispatched together, so a driver sees bd.last false for all but the last of each batch and can
 * ring its doorbell once. Returns the plug (pass null to get a new one).
 */
export function blk_start_plug(plug: BlkPlug | null = null): BlkPlug {
  const { t } = blkCall('blk_start_plug')
  const p = plug ?? { _list: [], _task: null }
  while (p._list.length > 0) p._list.pop()
  if (!plugs.has(t)) {
    p._task = t
    plugs.set(t, p)
  }
  return p
}

/** `blk_finish_plug(plug)`: dispatches what the plug holds and ends plugging. */
export function blk_finish_plug(plug: BlkPlug): void {
  const { t } = blkCall('blk_finish_plug')
  if (plugs.get(t) !== plug) return
  flushPlug(t, plug)
  plugs.delete(t)
  plug._task = null
}

/** The task's plug, if it is plugging. */
export function plugOf(t: Task): BlkPlug | undefined {
  return plugs.get(t)
}

function flushPlugOf(t: Task): void {
  const p = plugs.get(t)
  if (p !== undefined && p._list.length > 0) flushPlug(t, p)
}

/** `blk_flush_plug`: hands the plugged requests to their hw queues, one dispatch run per hw queue. */
export function flushPlug(t: Task, plug: BlkPlug): void {
  const list = plug._list
  if (list.length === 0) return
  plug._list = []
  const touched: BlkMqHwCtx[] = []
  for (const rq of list) {
    const h = rq.mq_hctx
    h._dispatch.push(rq)
    h.stats.queued++
    if (!touched.includes(h)) touched.push(h)
  }
  for (const h of touched) runHwQueue(h, false, t)
}

// ---------------------------------------------------------------------- dispatch

/** Queues a request for dispatch on its hw queue and runs the queue (directly when the caller may). */
export function insertRequest(t: Task | null, rq: Request, atHead: boolean): void {
  const plug = t !== null ? plugs.get(t) : undefined
  if (plug !== undefined && !atHead) {
    plug._list.push(rq)
    if (plug._list.length >= BLK_MAX_REQUEST_COUNT) flushPlug(t!, plug)
    return
  }
  const h = rq.mq_hctx
  if (atHead) h._dispatch.unshift(rq)
  else h._dispatch.push(rq)
  h.stats.queued++
  runHwQueue(h, false, t)
}

/**
 * `blk_mq_run_hw_queue(hctx, async)`: dispatches the hw queue's waiting requests, unless it is
 * stopped or the queue quiesced. Synchronously from process context (queue_rq then runs in a
 * softirq-context section of the calling task); from atomic context, or with async, in kblockd.
 */
export function runHwQueue(hctx: BlkMqHwCtx, async: boolean, t: Task | null): void {
  if (!hctxCanDispatch(hctx) || hctx._dispatch.length === 0) return
  if (!async && t !== null && t.context === 'process' && t.sys === hctx.queue._sys) {
    dispatchNow(hctx, contextName(t))
    return
  }
  kblockdRun(hctx)
}

/** Queues a run of the hw queue on kblockd (one pending run per hw queue). */
function kblockdRun(hctx: BlkMqHwCtx): void {
  if (hctx._runQueued) return
  hctx._runQueued = true
  const sys = hctx.queue._sys
  sys.spawnTask('kblockd', () => {
    hctx._runQueued = false
    current('blk_mq_run_work_fn')
    if (hctxCanDispatch(hctx)) dispatchNow(hctx, 'kblockd')
  })
}

function dispatchNow(hctx: BlkMqHwCtx, name: string): void {
  if (hctx._inDispatch) {
    hctx._rerun = true
    return
  }
  hctx._inDispatch = true
  try {
    do {
      hctx._rerun = false
      hctx.stats.run++
      dispatchList(hctx, name)
    } while (hctx._rerun && hctxCanDispatch(hctx) && hctx._dispatch.length > 0)
  } finally {
    hctx._inDispatch = false
  }
}

/** `blk_mq_dispatch_rq_list`: queue_rq for each waiting request, with the BUSY rules. */
function dispatchList(hctx: BlkMqHwCtx, name: string): void {
  const q = hctx.queue
  const sys = q._sys
  const ops = q.mq_ops
  let queued = 0
  let busy: blk_status_t = BLK_STS_OK
  while (hctx._dispatch.length > 0 && hctxCanDispatch(hctx)) {
    const rq = hctx._dispatch.shift()!
    const bd: BlkMqQueueData = { rq, last: hctx._dispatch.length === 0 }
    hctx.stats.dispatched++
    const gen = rq._gen
    let ret = callAtomic(sys, name, 'queue_rq', ops, ops.queue_rq, hctx, bd)
    if (ret === undefined || ret === OOPSED) {
      // An oops or a Promise: a request the driver started is the driver's; else it failed.
      ret = rq._gen === gen && rq.state === MQ_RQ_IDLE && rq._allocated ? BLK_STS_IOERR : BLK_STS_OK
    } else if (!blk_status_valid(ret)) {
      blkWarnOnce(blockState(sys), `queue_rq-ret:${String(ret)}`, `blk-mq: queue_rq returned ${String(ret)}, which is not a blk_status_t: treated as BLK_STS_IOERR`, 'error')
      ret = BLK_STS_IOERR
    }
    if (ret === BLK_STS_OK) {
      queued++
      hctx.stats.issued++
      continue
    }
    if (ret === BLK_STS_RESOURCE || ret === BLK_STS_DEV_RESOURCE) {
      if (rq._allocated && rq._gen === gen) hctx._dispatch.unshift(rq)
      hctx.stats.busy++
      busy = ret
      break
    }
    // An error: the request ends with it (queue_rq must not have ended it itself).
    if (rq._allocated && rq._gen === gen) endRequest(rq, ret)
  }
  if (queued > 0 && (busy !== BLK_STS_OK || hctx._dispatch.length > 0) && ops.commit_rqs !== undefined) {
    callAtomic(sys, name, 'commit_rqs', ops, ops.commit_rqs, hctx, undefined)
  }
  if (busy !== BLK_STS_OK) {
    // Re-run when a request of this hctx ends; with BLK_STS_RESOURCE also after a delay, in
    // case nothing is in flight that could end.
    hctx.state |= RESTART
    if (busy === BLK_STS_RESOURCE) delayRun(hctx, BLK_MQ_RESOURCE_DELAY_MS)
  }
}

function delayRun(hctx: BlkMqHwCtx, msecs: number): void {
  if (hctx._delay !== null && !hctx._delay.cancelled) return
  const sys = hctx.queue._sys
  hctx._delay = sys.machine.clock.schedule(sys.machine.clock.now + msecs * NS_PER_MS, () => {
    hctx._delay = null
    if (hctxCanDispatch(hctx) && hctx._dispatch.length > 0) kblockdRun(hctx)
  })
}

// ---------------------------------------------------------------------- start, complete, end

/**
 * `blk_mq_start_request(rq)`: the driver hands rq to the hardware (call it in queue_rq): it is in
 * flight, and its timeout starts. Any context.
 */
export function blk_mq_start_request(rq: Request): void {
  const t = current('blk_mq_start_request')
  const r = checkRq(t, 'blk_mq_start_request', rq)
  if (!r._allocated) {
    sysOf(t).report({ kind: 'use-after-free', message: `BUG: blk_mq_start_request of a request that is not allocated (tag ${r.tag}): it was ended (freed) already` })
    return
  }
  if (r.state !== MQ_RQ_IDLE) {
    blkWarnOnce(blockState(sysOf(t)), `start-twice:${r.tag}`, `WARNING: blk_mq_start_request: request tag ${r.tag} is not idle (state ${r.state}): started twice?`)
  }
  setRqState(r, MQ_RQ_IN_FLIGHT)
  r.io_start_time_ns = sysOf(t).machine.clock.now
  if ((r.rq_flags & RQF_STARTED) === 0) {
    r.rq_flags |= RQF_STARTED
    r.mq_hctx._active++
  }
  blkAddTimer(r)
}

/**
 * `blk_mq_complete_request(rq)`: the hardware finished rq; ops.complete(rq) runs in the BLOCK
 * softirq (soon after a hard-IRQ handler returns). Any context. Completing a request twice is
 * reported: in Linux it is a use-after-free waiting to happen.
 */
export function blk_mq_complete_request(rq: Request): void {
  const t = current('blk_mq_complete_request')
  completeRequest(t, checkRq(t, 'blk_mq_complete_request', rq), 'blk_mq_complete_request')
}

/**
 * `blk_mq_complete_request_remote(rq)`: as blk_mq_complete_request; returns true (the completion
 * was handed to the BLOCK softirq), so `if (!blk_mq_complete_request_remote(rq)) complete(rq)`
 * ported from Linux works.
 */
export function blk_mq_complete_request_remote(rq: Request): boolean {
  const t = current('blk_mq_complete_request_remote')
  completeRequest(t, checkRq(t, 'blk_mq_complete_request_remote', rq), 'blk_mq_complete_request_remote')
  return true
}

function completeRequest(t: Task, rq: Request, fn: string): void {
  const sys = sysOf(t)
  if (!rq._allocated) {
    sys.report({ kind: 'use-after-free', message: `BUG: ${fn}() of a request that is not allocated (tag ${rq.tag}): it was ended (freed) already` })
    return
  }
  if (rq.state === MQ_RQ_COMPLETE) {
    sys.report({ kind: 'double-free', message: `BUG: ${fn}() of a request already completed (tag ${rq.tag}): a double completion, which frees the request twice` })
    return
  }
  setRqState(rq, MQ_RQ_COMPLETE)
  const bs = blockState(sys)
  bs.done.push(rq)
  bs.doneGen.push(rq._gen)
  if (!bs.softirqQueued) {
    bs.softirqQueued = true
    sys.raiseSoftirq(bs.runDone)
  }
}

/** BLOCK_SOFTIRQ (blk_done_softirq): ops.complete for each completed request, in softirq context. */
function blkDoneSoftirq(bs: BlockState): void {
  bs.softirqQueued = false
  const list = bs.done
  const gens = bs.doneGen
  bs.done = []
  bs.doneGen = []
  const sys = bs.sys
  for (let i = 0; i < list.length; i++) {
    const rq = list[i]!
    if (!rq._allocated || rq._gen !== gens[i]) {
      sys.report({ kind: 'use-after-free', message: `BUG: the completion of request tag ${rq.tag} arrived after it was ended (and ${rq._allocated ? 'reused' : 'freed'}): it was ended twice` })
      continue
    }
    const ops = rq.q.mq_ops
    if (ops.complete === undefined) {
      sys.runAtomic('blk-softirq', 'softirq', () => endRequest(rq, BLK_STS_OK))
      continue
    }
    const gen = rq._gen
    if (callAtomic(sys, 'blk-softirq', 'complete', ops, ops.complete, rq, undefined) === OOPSED && rq._allocated && rq._gen === gen && rq.state === MQ_RQ_COMPLETE) {
      // An oops in ->complete left the request neither ended nor requeued: it fails.
      sys.runAtomic('blk-softirq', 'softirq', () => endRequest(rq, BLK_STS_IOERR))
    }
  }
}

setBlockSoftirq(blkDoneSoftirq)

/**
 * `blk_mq_end_request(rq, error)`: ends rq: its bio ends with error (bi_end_io runs), a passthrough
 * request's end_io runs, and the request and its tag are freed — rq must not be touched again.
 * Any context.
 */
export function blk_mq_end_request(rq: Request, error: blk_status_t): void {
  const t = current('blk_mq_end_request')
  const r = checkRq(t, 'blk_mq_end_request', rq)
  if (!r._allocated) {
    sysOf(t).report({ kind: 'double-free', message: `BUG: blk_mq_end_request of a request that is not allocated (tag ${r.tag}): it was ended (freed) already` })
    return
  }
  let status = error
  if (!blk_status_valid(status)) {
    blkWarnOnce(blockState(sysOf(t)), `end-status:${String(error)}`, `blk_mq_end_request: ${String(error)} is not a blk_status_t: treated as BLK_STS_IOERR`, 'error')
    status = BLK_STS_IOERR
  }
  endRequest(r, status)
}

/** `__blk_mq_end_request(rq, error)`: as blk_mq_end_request (dmalab does no partial updates). */
export function __blk_mq_end_request(rq: Request, error: blk_status_t): void {
  blk_mq_end_request(rq, error)
}

/** The end of a request (blk_update_request + __blk_mq_end_request), without a kernel call. */
export function endRequest(rq: Request, status: blk_status_t): void {
  const now = rq.q._sys.machine.clock.now
  accountDone(rq, status, now)
  const bio = rq.bio
  rq.bio = null
  const seq = rq._flushSeq
  if (seq !== null) {
    rq._flushSeq = null
    seq(rq, status)
  } else if (bio !== null) {
    if (status !== BLK_STS_OK && bio.bi_status === BLK_STS_OK) bio.bi_status = status
    bio_endio(bio)
  }
  if (rq.end_io !== null) {
    const fn = rq.end_io
    rq.end_io = null
    if (fn(rq, status) === RQ_END_IO_NONE) {
      // The owner frees it (blk_mq_free_request); it is no longer in flight.
      setRqState(rq, MQ_RQ_IDLE)
      dropStarted(rq)
      return
    }
  }
  freeRequest(rq)
}

function dropStarted(rq: Request): void {
  if ((rq.rq_flags & RQF_STARTED) !== 0) {
    rq.rq_flags &= ~RQF_STARTED
    rq.mq_hctx._active--
  }
}

/** Frees a request and its tag; wakes a submitter waiting for a tag and a freeze; restarts the hw queue. */
function freeRequest(rq: Request): void {
  const hctx = rq.mq_hctx
  const q = rq.q
  const sys = q._sys
  dropStarted(rq)
  setRqState(rq, MQ_RQ_IDLE)
  rq.rq_flags = 0
  rq._allocated = false
  rq.bio = null
  rq._bvecs = NO_BVECS
  rq.end_io = null
  rq._submitter = null
  tagPut(hctx.tags, rq)
  hctx.stats.completed++
  wakeAll(sys, hctx.tags._wait)
  if (--q._usage === 0 && q._freezeDepth > 0) wakeAll(sys, q._freezeWq)
  if ((hctx.state & RESTART) !== 0) {
    hctx.state &= ~RESTART
    runHwQueue(hctx, true, null)
  }
}

// ---------------------------------------------------------------------- requeue

/**
 * `blk_mq_requeue_request(rq, kick_requeue_list)`: gives a request the driver started back to
 * the block layer (after a reset, or a retryable error): it goes idle on the queue's requeue list
 * and is dispatched again once the list is kicked (now, with kick_requeue_list). Any context.
 */
export function blk_mq_requeue_request(rq: Request, kick_requeue_list: boolean): void {
  const t = current('blk_mq_requeue_request')
  const r = checkRq(t, 'blk_mq_requeue_request', rq)
  if (!r._allocated) {
    sysOf(t).report({ kind: 'use-after-free', message: `BUG: blk_mq_requeue_request of a request that is not allocated (tag ${r.tag})` })
    return
  }
  dropStarted(r)
  setRqState(r, MQ_RQ_IDLE)
  r.deadline = 0
  r.mq_hctx.stats.requeued++
  r.q.stats.requeues++
  r.q._requeue.push(r)
  if (kick_requeue_list) kickRequeue(r.q)
}

/** `blk_mq_kick_requeue_list(q)`: dispatches the requeue list again (from kblockd). */
export function blk_mq_kick_requeue_list(q: RequestQueue): void {
  const t = current('blk_mq_kick_requeue_list')
  kickRequeue(checkQueue(t, 'blk_mq_kick_requeue_list', q))
}

/** `blk_mq_delay_kick_requeue_list(q, msecs)`. */
export function blk_mq_delay_kick_requeue_list(q: RequestQueue, msecs: number): void {
  const t = current('blk_mq_delay_kick_requeue_list')
  const qq = checkQueue(t, 'blk_mq_delay_kick_requeue_list', q)
  if (typeof msecs !== 'number' || !(msecs >= 0)) badArg(t, 'blk_mq_delay_kick_requeue_list', 'msecs', `must be a number of milliseconds, got ${String(msecs)}`)
  if (qq._requeueDelay !== null) qq._requeueDelay.cancelled = true
  const sys = qq._sys
  qq._requeueDelay = sys.machine.clock.schedule(sys.machine.clock.now + msecs * NS_PER_MS, () => {
    qq._requeueDelay = null
    kickRequeue(qq)
  })
}

function kickRequeue(q: RequestQueue): void {
  if (q._requeueQueued) return
  q._requeueQueued = true
  q._sys.spawnTask('kblockd', () => {
    q._requeueQueued = false
    const t = current('blk_mq_requeue_work')
    const list = q._requeue
    q._requeue = []
    const touched: BlkMqHwCtx[] = []
    for (const rq of list) {
      if (!rq._allocated) continue
      rq.mq_hctx._dispatch.push(rq)
      rq.mq_hctx.stats.queued++
      if (!touched.includes(rq.mq_hctx)) touched.push(rq.mq_hctx)
    }
    for (const h of q.queue_hw_ctx) if (touched.includes(h) || h._dispatch.length > 0) runHwQueue(h, false, t)
  })
}

// ---------------------------------------------------------------------- stopping and running hw queues

/** `blk_mq_stop_hw_queue(hctx)`: queue_rq is not called for it until it is started again. Any context. */
export function blk_mq_stop_hw_queue(hctx: BlkMqHwCtx): void {
  const t = current('blk_mq_stop_hw_queue')
  const h = checkHctx(t, 'blk_mq_stop_hw_queue', hctx)
  h.state |= STOPPED
  if (h._delay !== null) h._delay.cancelled = true
  h._delay = null
}

/** `blk_mq_stop_hw_queues(q)`. */
export function blk_mq_stop_hw_queues(q: RequestQueue): void {
  const t = current('blk_mq_stop_hw_queues')
  for (const h of checkQueue(t, 'blk_mq_stop_hw_queues', q).queue_hw_ctx) {
    h.state |= STOPPED
    if (h._delay !== null) h._delay.cancelled = true
    h._delay = null
  }
}

/** `blk_mq_hw_queue_stopped(hctx)`. */
export function blk_mq_hw_queue_stopped(hctx: BlkMqHwCtx): boolean {
  const t = current('blk_mq_hw_queue_stopped')
  return (checkHctx(t, 'blk_mq_hw_queue_stopped', hctx).state & STOPPED) !== 0
}

/** `blk_mq_start_hw_queue(hctx)`: clears the stop and runs it. */
export function blk_mq_start_hw_queue(hctx: BlkMqHwCtx): void {
  const t = current('blk_mq_start_hw_queue')
  const h = checkHctx(t, 'blk_mq_start_hw_queue', hctx)
  h.state &= ~STOPPED
  runHwQueue(h, false, t)
}

/** `blk_mq_start_hw_queues(q)`. */
export function blk_mq_start_hw_queues(q: RequestQueue): void {
  const t = current('blk_mq_start_hw_queues')
  for (const h of checkQueue(t, 'blk_mq_start_hw_queues', q).queue_hw_ctx) {
    h.state &= ~STOPPED
    runHwQueue(h, false, t)
  }
}

/** `blk_mq_start_stopped_hw_queue(hctx, async)`: runs it again if it was stopped (in kblockd with async). */
export function blk_mq_start_stopped_hw_queue(hctx: BlkMqHwCtx, async: boolean): void {
  const t = current('blk_mq_start_stopped_hw_queue')
  const h = checkHctx(t, 'blk_mq_start_stopped_hw_queue', hctx)
  if ((h.state & STOPPED) === 0) return
  h.state &= ~STOPPED
  runHwQueue(h, async, t)
}

/** `blk_mq_start_stopped_hw_queues(q, async)`: each stopped hw queue runs again. Any context. */
export function blk_mq_start_stopped_hw_queues(q: RequestQueue, async: boolean): void {
  const t = current('blk_mq_start_stopped_hw_queues')
  for (const h of checkQueue(t, 'blk_mq_start_stopped_hw_queues', q).queue_hw_ctx) {
    if ((h.state & STOPPED) === 0) continue
    h.state &= ~STOPPED
    runHwQueue(h, async, t)
  }
}

/** `blk_mq_run_hw_queue(hctx, async)`. */
export function blk_mq_run_hw_queue(hctx: BlkMqHwCtx, async: boolean): void {
  const t = current('blk_mq_run_hw_queue')
  runHwQueue(checkHctx(t, 'blk_mq_run_hw_queue', hctx), async, t)
}

/** `blk_mq_run_hw_queues(q, async)`. */
export function blk_mq_run_hw_queues(q: RequestQueue, async: boolean): void {
  const t = current('blk_mq_run_hw_queues')
  for (const h of checkQueue(t, 'blk_mq_run_hw_queues', q).queue_hw_ctx) runHwQueue(h, async, t)
}

/** `blk_mq_delay_run_hw_queue(hctx, msecs)`. */
export function blk_mq_delay_run_hw_queue(hctx: BlkMqHwCtx, msecs: number): void {
  const t = current('blk_mq_delay_run_hw_queue')
  const h = checkHctx(t, 'blk_mq_delay_run_hw_queue', hctx)
  if (typeof msecs !== 'number' || !(msecs >= 0)) badArg(t, 'blk_mq_delay_run_hw_queue', 'msecs', `must be a number of milliseconds, got ${String(msecs)}`)
  delayRun(h, msecs)
}

/** `blk_mq_delay_run_hw_queues(q, msecs)`. */
export function blk_mq_delay_run_hw_queues(q: RequestQueue, msecs: number): void {
  const t = current('blk_mq_delay_run_hw_queues')
  for (const h of checkQueue(t, 'blk_mq_delay_run_hw_queues', q).queue_hw_ctx) delayRun(h, msecs)
}

// ---------------------------------------------------------------------- quiesce

/** `blk_mq_quiesce_queue_nowait(q)`: queue_rq is not called for the queue until unquiesced (nests). */
export function blk_mq_quiesce_queue_nowait(q: RequestQueue): void {
  const t = current('blk_mq_quiesce_queue_nowait')
  checkQueue(t, 'blk_mq_quiesce_queue_nowait', q)._quiesceDepth++
}

/**
 * `blk_mq_quiesce_queue(q)`: quiesces and waits until no queue_rq of the queue runs. (On one CPU
 * none can be running while a task sleeps, so it returns at once.) Process context.
 */
export async function blk_mq_quiesce_queue(q: RequestQueue): Promise<void> {
  const t = current('blk_mq_quiesce_queue')
  const qq = checkQueue(t, 'blk_mq_quiesce_queue', q)
  mightSleep(t, 'blk_mq_quiesce_queue')
  qq._quiesceDepth++
  return Promise.resolve()
}

/** `blk_mq_unquiesce_queue(q)`: undoes one quiesce; at zero, the hw queues run again (kblockd). */
export function blk_mq_unquiesce_queue(q: RequestQueue): void {
  const t = current('blk_mq_unquiesce_queue')
  const qq = checkQueue(t, 'blk_mq_unquiesce_queue', q)
  if (qq._quiesceDepth === 0) {
    blkWarnOnce(blockState(sysOf(t)), `unquiesce:${qq.toString()}`, 'WARNING: blk_mq_unquiesce_queue: the queue was not quiesced')
    return
  }
  if (--qq._quiesceDepth === 0) for (const h of qq.queue_hw_ctx) runHwQueue(h, true, t)
}

/** `blk_queue_quiesced(q)`. */
export function blk_queue_quiesced(q: RequestQueue): boolean {
  const t = current('blk_queue_quiesced')
  return checkQueue(t, 'blk_queue_quiesced', q)._quiesceDepth > 0
}

function setQueues(t: Task, fn: string, set: BlkMqTagSet): RequestQueue[] {
  const info = tagSetInfo(set)
  if (info === undefined) badArg(t, fn, 'set', 'must be an allocated tag set')
  return [...info.queues]
}

/** `blk_mq_quiesce_tagset(set)`: quiesces every queue of the tag set. */
export function blk_mq_quiesce_tagset(set: BlkMqTagSet): void {
  const t = current('blk_mq_quiesce_tagset')
  for (const q of setQueues(t, 'blk_mq_quiesce_tagset', set)) q._quiesceDepth++
}

/** `blk_mq_unquiesce_tagset(set)`. */
export function blk_mq_unquiesce_tagset(set: BlkMqTagSet): void {
  const t = current('blk_mq_unquiesce_tagset')
  for (const q of setQueues(t, 'blk_mq_unquiesce_tagset', set)) {
    if (q._quiesceDepth > 0 && --q._quiesceDepth === 0) for (const h of q.queue_hw_ctx) runHwQueue(h, true, t)
  }
}

/** `blk_mq_wait_quiesce_done(set)`: returns at once (see blk_mq_quiesce_queue). */
export async function blk_mq_wait_quiesce_done(_set: BlkMqTagSet): Promise<void> {
  const t = current('blk_mq_wait_quiesce_done')
  mightSleep(t, 'blk_mq_wait_quiesce_done')
  return Promise.resolve()
}

// ---------------------------------------------------------------------- freeze

/**
 * `blk_freeze_queue_start(q)`: new bios wait (in blk_queue_enter) until the queue is unfrozen;
 * what is in flight goes on. Nests. Any context.
 */
export function blk_freeze_queue_start(q: RequestQueue): void {
  const t = current('blk_freeze_queue_start')
  checkQueue(t, 'blk_freeze_queue_start', q)._freezeDepth++
}

/** `blk_mq_freeze_queue_wait(q)`: sleeps until every request of the queue has ended. Process context. */
export async function blk_mq_freeze_queue_wait(q: RequestQueue): Promise<void> {
  const t = current('blk_mq_freeze_queue_wait')
  const qq = checkQueue(t, 'blk_mq_freeze_queue_wait', q)
  await wait_event(qq._freezeWq, () => qq._usage === 0)
}

/** `blk_mq_freeze_queue_wait_timeout(q, timeout)`: as blk_mq_freeze_queue_wait for at most timeout jiffies; 0 on timeout. */
export async function blk_mq_freeze_queue_wait_timeout(q: RequestQueue, timeout: number): Promise<number> {
  const t = current('blk_mq_freeze_queue_wait_timeout')
  const qq = checkQueue(t, 'blk_mq_freeze_queue_wait_timeout', q)
  return wait_event_timeout(qq._freezeWq, () => qq._usage === 0, timeout)
}

/** `blk_mq_freeze_queue(q)`: freeze and wait for the queue to drain. Returns the memflags token (0). */
export async function blk_mq_freeze_queue(q: RequestQueue): Promise<number> {
  const t = current('blk_mq_freeze_queue')
  const qq = checkQueue(t, 'blk_mq_freeze_queue', q)
  qq._freezeDepth++
  await wait_event(qq._freezeWq, () => qq._usage === 0)
  return 0
}

/** `blk_mq_unfreeze_queue(q, memflags?)`: undoes one freeze; at zero, waiting bios go on. */
export function blk_mq_unfreeze_queue(q: RequestQueue, _memflags = 0): void {
  const t = current('blk_mq_unfreeze_queue')
  const qq = checkQueue(t, 'blk_mq_unfreeze_queue', q)
  if (qq._freezeDepth === 0) {
    blkWarnOnce(blockState(sysOf(t)), `unfreeze:${qq.toString()}`, 'WARNING: blk_mq_unfreeze_queue: the queue was not frozen')
    return
  }
  if (--qq._freezeDepth === 0) wakeAll(qq._sys, qq._freezeWq)
}

/** `blk_queue_enter`: waits while the queue is frozen (unless nowait); false if it is dying or would block. */
export async function queueEnter(q: RequestQueue, nowait: boolean): Promise<boolean> {
  if (q._freezeDepth > 0 && q._state === 'live') {
    if (nowait) return false
    await wait_event(q._freezeWq, () => q._freezeDepth === 0 || q._state !== 'live')
  }
  if (q._state !== 'live') return false
  q._usage++
  return true
}

/** `blk_queue_exit`. */
export function queueExit(q: RequestQueue): void {
  if (--q._usage === 0 && q._freezeDepth > 0) wakeAll(q._sys, q._freezeWq)
}

// ---------------------------------------------------------------------- passthrough requests and queues

/**
 * `blk_mq_alloc_queue(set, lim, queuedata)`: a request_queue without a disk, for a driver's own
 * commands (an NVMe admin queue); the queue or a negative errno (IS_ERR). Process context.
 */
export function blk_mq_alloc_queue(set: BlkMqTagSet, lim: Partial<QueueLimits> | null, queuedata: unknown): RequestQueue | ErrPtr {
  const t = current('blk_mq_alloc_queue')
  return initQueue(t, 'blk_mq_alloc_queue', set, lim, queuedata)
}

/** `blk_mq_init_queue(set)`: blk_mq_alloc_queue(set, null, null) (the pre-6.9 name). */
export function blk_mq_init_queue(set: BlkMqTagSet): RequestQueue | ErrPtr {
  const t = current('blk_mq_init_queue')
  return initQueue(t, 'blk_mq_init_queue', set, null, null)
}

/**
 * `blk_mq_destroy_queue(q)`: drains the queue (waits for its requests to end), then exit_hctx for
 * each hw queue. Process context. Not for a disk's queue (put_disk does that).
 */
export async function blk_mq_destroy_queue(q: RequestQueue): Promise<void> {
  const t = current('blk_mq_destroy_queue')
  const qq = checkQueue(t, 'blk_mq_destroy_queue', q)
  if (!mightSleep(t, 'blk_mq_destroy_queue')) return
  if (qq._state === 'dead') return
  qq._state = 'dying'
  qq._freezeDepth++
  wakeAll(qq._sys, qq._freezeWq)
  await wait_event(qq._freezeWq, () => qq._usage === 0)
  exitQueue(qq)
}

/** `blk_put_queue(q)`: drops the queue reference (nothing left to free in dmalab). */
export function blk_put_queue(q: RequestQueue): void {
  const t = current('blk_put_queue')
  checkQueue(t, 'blk_put_queue', q)
}

/**
 * `blk_mq_alloc_request(q, opf, flags)`: a request for a driver command (REQ_OP_DRV_IN/OUT), or
 * an error (IS_ERR: -EWOULDBLOCK/-EAGAIN with BLK_MQ_REQ_NOWAIT when no tag is free, -ENODEV for
 * a dying queue). Sleeps for a tag otherwise (process context). BLK_MQ_REQ_RESERVED takes a
 * reserved tag. Free it with blk_mq_free_request after its end_io (or blk_execute_rq) returned.
 */
export async function blk_mq_alloc_request(q: RequestQueue, opf: blk_opf_t, flags = 0): Promise<Request | ErrPtr> {
  const t = current('blk_mq_alloc_request')
  const qq = checkQueue(t, 'blk_mq_alloc_request', q)
  if (typeof opf !== 'number' || !Number.isInteger(opf) || opf < 0) badArg(t, 'blk_mq_alloc_request', 'opf', `must be REQ_OP_* | REQ_* flags, got ${String(opf)}`)
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0) badArg(t, 'blk_mq_alloc_request', 'flags', `must be BLK_MQ_REQ_* flags, got ${String(flags)}`)
  const nowait = (flags & BLK_MQ_REQ_NOWAIT) !== 0
  if (!nowait && !mightSleep(t, 'blk_mq_alloc_request')) return ERR_PTR(-EAGAIN)
  const reserved = (flags & BLK_MQ_REQ_RESERVED) !== 0
  if (reserved && (qq.tag_set.reserved_tags ?? 0) === 0) return ERR_PTR(-EINVAL)
  if (!(await queueEnter(qq, nowait && (flags & BLK_MQ_REQ_PM) === 0))) return ERR_PTR(qq._state === 'live' ? -EAGAIN : -ENODEV)
  const rq = await getRequest(t, qq, 0, opf, reserved, nowait)
  queueExit(qq)
  if (rq === null) return ERR_PTR(qq._state === 'live' ? -EAGAIN : -ENODEV)
  return rq
}

/** `blk_mq_free_request(rq)`: frees a request from blk_mq_alloc_request (after it ended, or unused). Any context. */
export function blk_mq_free_request(rq: Request): void {
  const t = current('blk_mq_free_request')
  const r = checkRq(t, 'blk_mq_free_request', rq)
  if (!r._allocated) {
    sysOf(t).report({ kind: 'double-free', message: `BUG: blk_mq_free_request of a request that is not allocated (tag ${r.tag}): freed twice` })
    return
  }
  if (r.state !== MQ_RQ_IDLE) {
    blkWarnOnce(blockState(sysOf(t)), `free-inflight:${r.tag}`, `WARNING: blk_mq_free_request: request tag ${r.tag} is still in flight`)
  }
  freeRequest(r)
}

/**
 * `blk_rq_map_kern(rq, kbuf, len, gfp)`: attaches len bytes of kernel memory at kbuf (kmalloc,
 * page memory) to a passthrough request as its data: the driver then maps it like any request's
 * (blk_rq_map_sg, or req_bvec + dma_map_bvec). 0, or -EINVAL when it does not fit the limits.
 */
export function blk_rq_map_kern(rq: Request, kbuf: CpuAddr, len: number, _gfp: number = GFP_KERNEL): number {
  const t = current('blk_rq_map_kern')
  const r = checkRq(t, 'blk_rq_map_kern', rq)
  if (typeof len !== 'number' || !Number.isInteger(len) || len <= 0) badArg(t, 'blk_rq_map_kern', 'len', `must be a positive byte count, got ${String(len)}`)
  const pa = cpuPa(t, 'blk_rq_map_kern', kbuf, len, 'kbuf')
  const lim = r.q.limits
  if (len > lim.max_hw_sectors * 512 || (pa & lim.dma_alignment) !== 0) return -EINVAL
  const sys = sysOf(t)
  const bvecs: BioVec[] = []
  let off = pa
  let left = len
  while (left > 0) {
    const inPage = offset_in_page(off)
    const n = Math.min(left, PAGE_SIZE - inPage)
    bvecs.push({ bv_page: sys.pages.ensure(Math.floor(off / PAGE_SIZE)).page, bv_offset: inPage, bv_len: n })
    off += n
    left -= n
  }
  const nsegs = countSegments(lim, bvecs)
  if (nsegs > lim.max_segments) return -EINVAL
  const bio = new Bio(bvecs.length)
  bio.bi_io_vec = bvecs
  bio.bi_vcnt = bvecs.length
  bio.bi_iter.bi_size = len
  bio.bi_opf = r.cmd_flags
  bio._remaining = 1
  r.bio = bio
  r._bvecs = bvecs
  r.__data_len = len
  r.nr_phys_segments = nsegs
  return 0
}

/**
 * `blk_execute_rq_nowait(rq, at_head)`: hands a passthrough request to the driver; its end_io
 * (set by the caller) runs when it ends. Any context.
 */
export function blk_execute_rq_nowait(rq: Request, at_head: boolean): void {
  const t = current('blk_execute_rq_nowait')
  const r = checkRq(t, 'blk_execute_rq_nowait', rq)
  if (!r._allocated) {
    sysOf(t).report({ kind: 'use-after-free', message: `BUG: blk_execute_rq_nowait of a request that is not allocated (tag ${r.tag})` })
    return
  }
  const op = r.cmd_flags & REQ_OP_MASK
  if (op !== REQ_OP_DRV_IN && op !== REQ_OP_DRV_OUT) {
    blkWarnOnce(blockState(sysOf(t)), `exec-op:${op}`, `blk_execute_rq_nowait: op ${op} is not a passthrough operation (REQ_OP_DRV_IN/OUT)`)
  }
  insertRequest(t.context === 'process' && !t.atomic ? t : null, r, at_head)
}

/**
 * `blk_execute_rq(rq, at_head)`: executes a passthrough request and sleeps until it ends; returns
 * its status. The caller frees it with blk_mq_free_request. Process context.
 */
export async function blk_execute_rq(rq: Request, at_head: boolean): Promise<blk_status_t> {
  const t = current('blk_execute_rq')
  const r = checkRq(t, 'blk_execute_rq', rq)
  if (!mightSleep(t, 'blk_execute_rq')) return BLK_STS_IOERR
  const wait = { done: false, status: BLK_STS_OK as blk_status_t, wq: init_waitqueue_head() }
  const sys = sysOf(t)
  r.end_io = (_rq, status) => {
    wait.done = true
    wait.status = status
    wakeAll(sys, wait.wq)
    return RQ_END_IO_NONE
  }
  r.end_io_data = wait
  insertRequest(t, r, at_head)
  await wait_event(wait.wq, () => wait.done)
  return wait.status
}

/** Whether a request's end_io return value frees it: RQ_END_IO_FREE. */
export function rqEndIoFrees(v: unknown): boolean {
  return v === RQ_END_IO_FREE
}

/** The hw queue's requests waiting for queue_rq (for the harness's statistics). */
export function hctxWaiting(hctx: BlkMqHwCtx): number {
  return hctx._dispatch.length
}

/** Cancels a queue's idle timeout timer (the harness calls it when its I/O is done). */
export function queueIdle(q: RequestQueue): void {
  blkCancelIdleTimer(q)
}

