/**
 * The block "user space" of the harness: what `dd`, `blkdiscard`, `sync` and /sys/block show and
 * do on a Linux box, as an emulator API for tests (fio is in fio.ts).
 *
 *   const blk = blockUser(sys)
 *   blk.disks()                                   // lsblk
 *   await blk.write('nvme0n1', 8, data, { fua: true })  // pwrite(O_DIRECT) of whole blocks at LBA 8
 *   const back = await blk.read('nvme0n1', 8, 2)  // pread(O_DIRECT) of 2 blocks
 *   await blk.flush('nvme0n1')                    // fsync: an empty REQ_PREFLUSH write
 *   const r = await blk.io('nvme0n1', { op: 'read', lba: 0, count: 1, queue: 1 })  // no throw; r.status
 *
 * LBAs and counts are in the disk's logical blocks. Each call runs in a process-context task of
 * the system (named after the operation) that allocates the data buffer as kernel pages
 * (`alloc_pages`: by default one page per 4 KiB, none physically adjacent to the next, as page-cache
 * pages are; `contiguous` gives one block), fills it with CPU stores for a write (so the data is
 * initialised and dirty in the CPU cache), submits a bio from the submission context `queue`
 * (the tag set's queue map turns it into a hw queue: by default `queue: i` uses hw queue i), sleeps
 * until it ends, copies a read's data out with CPU loads, and frees the pages. So a driver's DMA
 * ownership is checked for real: a missing sync or unmap on a read shows up as a stale read and a
 * report at the harness's load.
 *
 * Like `sys.run`, these are called from test code, never from inside a task of the system (they
 * throw a DmalabError there). Bad input (an unknown disk, an LBA range outside the disk, a length
 * that is not whole blocks, a wrong type, an unknown option) throws (or rejects with) an
 * InvalidArgumentError naming the argument, and changes nothing. I/O errors reject `read`,
 * `write`, `flush`, `writeZeroes` and `discard` with a BlockIoError; `io()` resolves with the
 * status instead.
 */

import { DmalabError, InvalidArgumentError } from '../errors.js'
import { __free_pages, alloc_pages, mem_read_bytes, mem_write_bytes } from '../mm/memory.js'
import type { Page } from '../mm/page.js'
import { current, currentOrNull, type Task } from '../sched/current.js'
import { init_waitqueue_head, wait_event_timeout, type WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import { GFP_KERNEL, HZ, PAGE_SIZE, __GFP_ZERO, get_order, type CpuAddr } from '../types.js'
import { PAGE_OFFSET } from '../mm/layout.js'
import { Bio, __bio_add_page } from './bio.js'
import {
  BLK_FEAT_FUA,
  BLK_FEAT_WRITE_CACHE,
  BLK_MQ_S_STOPPED,
  BLK_STS_OK,
  BLK_STS_NOTSUPP,
  BLK_STS_RESOURCE,
  REQ_FUA,
  REQ_NOWAIT,
  REQ_OP_DISCARD,
  REQ_OP_READ,
  REQ_OP_WRITE,
  REQ_OP_WRITE_ZEROES,
  REQ_PREFLUSH,
  REQ_SYNC,
  SECTOR_SIZE,
  blk_status_name,
  blk_status_to_errno,
  type blk_status_t,
} from './blk_types.js'
import { submitBio } from './blk-core.js'
import { queueIdle, queueRequests, wakeAll } from './blk-mq.js'
import { fio, type FioOptions, type FioResult } from './fio.js'
import type { Gendisk } from './genhd.js'
import type { HctxStats } from './request.js'
import { blockState, type BlockState } from './state.js'

/** What `blk.disks()` says about a disk (lsblk, /sys/block/<disk>/queue). */
export interface DiskInfo {
  name: string
  /** Capacity in bytes and in 512-byte sectors. */
  sizeBytes: number
  sectors: number
  /** Capacity in logical blocks (the unit of `lba` and `count`). */
  blocks: number
  logicalBlockSize: number
  physicalBlockSize: number
  nrHwQueues: number
  queueDepth: number
  /** A volatile write cache: flushes reach the driver. */
  writeCache: boolean
  /** FUA writes reach the driver. */
  fua: boolean
  readOnly: boolean
  maxHwSectors: number
  maxSectors: number
  maxSegments: number
  maxSegmentSize: number
  virtBoundaryMask: number
  dmaAlignment: number
  maxWriteZeroesSectors: number
  maxDiscardSectors: number
  /** The request timeout, ms. */
  rqTimeoutMs: number
  /** The device the disk belongs to and its driver, or null. */
  parent: string | null
  driver: string | null
}

/** Per-operation counters of /sys/block/<disk>/stat. */
export interface OpStats {
  ios: number
  sectors: number
  /** Virtual ns from allocation to end, summed. */
  ticksNs: number
}

/** What `blk.stats()` returns. */
export interface DiskStats {
  read: OpStats
  write: OpStats
  discard: OpStats
  flush: OpStats
  /** Requests that ended with an error status. */
  errors: number
  /** Requests started and not yet ended. */
  inFlight: number
  /** Requests that timed out (ops.timeout calls and timer resets). */
  timeouts: number
  /** Requests the driver requeued. */
  requeues: number
  quiesced: boolean
  frozen: boolean
  /** Each hw queue: its counters, tags in use, requests waiting for queue_rq, stopped. */
  hctx: (HctxStats & { index: number; tagsInUse: number; waiting: number; active: number; stopped: boolean })[]
}

/** Options of an I/O call. */
export interface IoOptions {
  /** The submission context (a "CPU"): 0 .. nrHwQueues - 1; the queue map picks the hw queue (default 0). */
  queue?: number
  /** A write with REQ_FUA (durable when it completes). */
  fua?: boolean
  /** A write with REQ_PREFLUSH (the cache is flushed before it). */
  preflush?: boolean
  /** Where the data starts in its first page: a multiple of the logical block size (default 0). */
  pageOffset?: number
  /** One physically contiguous block of pages (they merge into few segments) instead of scattered pages. */
  contiguous?: boolean
  /** REQ_NOWAIT: fail with BLK_STS_AGAIN rather than wait for a tag or a frozen queue. */
  nowait?: boolean
  /** Virtual time to wait for the I/O before giving up with a DmalabError (default 600 s). */
  timeoutNs?: number
}

/** The operations of `io()`. */
export type BlockOp = 'read' | 'write' | 'flush' | 'write-zeroes' | 'discard'

/** One I/O for `io()`. */
export interface IoRequest extends IoOptions {
  op: BlockOp
  /** First logical block (read, write, write-zeroes, discard). */
  lba?: number
  /** Logical blocks (read, write-zeroes, discard; a write's count comes from data). */
  count?: number
  /** A write's data: whole logical blocks. */
  data?: Uint8Array
}

/** What `io()` resolves with. */
export interface IoResult {
  status: blk_status_t
  statusName: string
  /** 0 or the negative errno of the status (blk_status_to_errno). */
  errno: number
  /** The data read (reads that succeeded), else null. */
  data: Uint8Array | null
  /** Virtual ns from submission to the end. */
  latencyNs: number
}

/** An I/O that ended with an error status. */
export class BlockIoError extends DmalabError {
  readonly disk: string
  readonly op: BlockOp
  readonly lba: number
  readonly status: blk_status_t
  readonly statusName: string
  readonly errno: number

  constructor(disk: string, op: BlockOp, lba: number, status: blk_status_t) {
    super(`${op} of ${disk} at LBA ${lba} failed: ${blk_status_name(status)} (${blk_status_to_errno(status)})`)
    this.disk = disk
    this.op = op
    this.lba = lba
    this.status = status
    this.statusName = blk_status_name(status)
    this.errno = blk_status_to_errno(status)
  }
}

type ResolvedOptions = Required<IoOptions>

const OPTION_KEYS = ['queue', 'fua', 'preflush', 'pageOffset', 'contiguous', 'nowait', 'timeoutNs'] as const
const MAX_IO_BYTES = 64 << 20
const NS_PER_JIFFY = 1e9 / HZ

interface Buffer {
  /** Each page holding data: (page, offset, length). */
  readonly pieces: { page: Page; off: number; len: number }[]
  /** What to free: (first page, order). */
  readonly blocks: { page: Page; order: number }[]
}

interface Waiter {
  done: boolean
  endNs: number
  readonly wq: WaitQueueHead
  readonly sys: System
}

function userEndIo(bio: Bio): void {
  const w = bio.bi_private as Waiter
  w.done = true
  w.endNs = w.sys.machine.clock.now
  wakeAll(w.sys, w.wq)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return `'${v}'`
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined) return String(v)
  return Array.isArray(v) ? 'an array' : typeof v === 'function' ? 'a function' : 'an object'
}

/** The block user space of one system; get it with `blockUser(sys)`. */
export class BlockUser {
  readonly #sys: System
  readonly #bs: BlockState

  /** @internal Use blockUser(sys). */
  constructor(sys: System) {
    this.#sys = sys
    this.#bs = blockState(sys)
  }

  #guard(fn: string): void {
    if (currentOrNull()?.sys === this.#sys) {
      throw new DmalabError(`${fn}() called from inside a task: user-space calls are made from test code, not from kernel code`)
    }
  }

  #disk(fn: string, name: unknown): Gendisk {
    if (typeof name !== 'string') throw new InvalidArgumentError(fn, 'name', `must be a disk name (a string), got ${describe(name)}`)
    const d = this.#bs.byName(name)
    if (d === undefined) {
      const known = this.#bs.disks.map((x) => x.disk_name).join(', ') || 'none'
      throw new InvalidArgumentError(fn, 'name', `'${name}' is not a disk of ${this.#sys.name} (disks: ${known})`)
    }
    return d
  }

  #info(d: Gendisk): DiskInfo {
    const q = d.queue
    const l = q.limits
    const parent = d._parent
    return {
      name: d.disk_name,
      sizeBytes: d._capacity * SECTOR_SIZE,
      sectors: d._capacity,
      blocks: Math.floor((d._capacity * SECTOR_SIZE) / l.logical_block_size),
      logicalBlockSize: l.logical_block_size,
      physicalBlockSize: l.physical_block_size,
      nrHwQueues: q.nr_hw_queues,
      queueDepth: q.tag_set.queue_depth,
      writeCache: (l.features & BLK_FEAT_WRITE_CACHE) !== 0,
      fua: (l.features & BLK_FEAT_FUA) !== 0,
      readOnly: d._ro,
      maxHwSectors: l.max_hw_sectors,
      maxSectors: l.max_sectors,
      maxSegments: l.max_segments,
      maxSegmentSize: l.max_segment_size,
      virtBoundaryMask: l.virt_boundary_mask,
      dmaAlignment: l.dma_alignment,
      maxWriteZeroesSectors: l.max_write_zeroes_sectors,
      maxDiscardSectors: l.max_discard_sectors,
      rqTimeoutMs: (q.rq_timeout * 1000) / HZ,
      parent: parent?.name ?? null,
      driver: parent === null ? null : (this.#sys.pciDevices.find((p) => p.dev === parent)?.driver?.name ?? null),
    }
  }

  /** The added disks, in the order they were added (lsblk). */
  disks(): DiskInfo[] {
    this.#guard('blk.disks')
    return this.#bs.disks.map((d) => this.#info(d))
  }

  /** One disk. */
  disk(name: string): DiskInfo {
    this.#guard('blk.disk')
    return this.#info(this.#disk('blk.disk', name))
  }

  /** Data pages the harness (its calls and fio) holds right now: 0 between calls. */
  get pagesInUse(): number {
    return this.#bs.userPages
  }

  /** The disk's I/O statistics (/sys/block/<disk>/stat and the hw queues' counters). */
  stats(name: string): DiskStats {
    this.#guard('blk.stats')
    const d = this.#disk('blk.stats', name)
    const s = d._stat
    const op = (i: number): OpStats => ({ ios: s.ios[i]!, sectors: s.sectors[i]!, ticksNs: s.ticksNs[i]! })
    const q = d.queue
    const rqs = queueRequests(q)
    return {
      read: op(0),
      write: op(1),
      discard: op(2),
      flush: op(3),
      errors: s.errors,
      inFlight: q._inflight,
      timeouts: q.stats.timeouts,
      requeues: q.stats.requeues,
      quiesced: q._quiesceDepth > 0,
      frozen: q._freezeDepth > 0,
      hctx: q.queue_hw_ctx.map((h) => ({
        index: h.queue_num,
        ...h.stats,
        tagsInUse: rqs.filter((r) => r.mq_hctx === h).length,
        waiting: h._dispatch.length,
        active: h._active,
        stopped: (h.state & (1 << BLK_MQ_S_STOPPED)) !== 0,
      })),
    }
  }

  #options(fn: string, d: Gendisk, opts: unknown): ResolvedOptions {
    if (opts === undefined) opts = {}
    if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidArgumentError(fn, 'opts', `must be an object, got ${describe(opts)}`)
    const o = opts as Record<string, unknown>
    for (const k of Object.keys(o)) {
      if (!(OPTION_KEYS as readonly string[]).includes(k) && k !== 'op' && k !== 'lba' && k !== 'count' && k !== 'data') {
        throw new InvalidArgumentError(fn, `opts.${k}`, `is not an option (options: ${OPTION_KEYS.join(', ')})`)
      }
    }
    const q = d.queue
    const queue = o['queue'] ?? 0
    if (typeof queue !== 'number' || !Number.isInteger(queue) || queue < 0 || queue >= q.nr_hw_queues) {
      throw new InvalidArgumentError(fn, 'opts.queue', `must be a submission context from 0 to ${q.nr_hw_queues - 1} (${d.disk_name} has ${q.nr_hw_queues} hw queue(s)), got ${describe(queue)}`)
    }
    const bool = (k: string): boolean => {
      const v = o[k] ?? false
      if (typeof v !== 'boolean') throw new InvalidArgumentError(fn, `opts.${k}`, `must be a boolean, got ${describe(v)}`)
      return v
    }
    const lbs = q.limits.logical_block_size
    const pageOffset = o['pageOffset'] ?? 0
    if (typeof pageOffset !== 'number' || !Number.isInteger(pageOffset) || pageOffset < 0 || pageOffset >= PAGE_SIZE || pageOffset % lbs !== 0) {
      throw new InvalidArgumentError(fn, 'opts.pageOffset', `must be a multiple of the logical block size (${lbs}) below ${PAGE_SIZE}, got ${describe(pageOffset)}`)
    }
    const timeoutNs = o['timeoutNs'] ?? 600e9
    if (typeof timeoutNs !== 'number' || !Number.isFinite(timeoutNs) || timeoutNs <= 0) {
      throw new InvalidArgumentError(fn, 'opts.timeoutNs', `must be a positive number of ns, got ${describe(timeoutNs)}`)
    }
    return { queue, fua: bool('fua'), preflush: bool('preflush'), pageOffset, contiguous: bool('contiguous'), nowait: bool('nowait'), timeoutNs }
  }

  #range(fn: string, d: Gendisk, lba: unknown, count: unknown, countArg = 'count'): void {
    const lbs = d.queue.limits.logical_block_size
    const blocks = Math.floor((d._capacity * SECTOR_SIZE) / lbs)
    if (typeof lba !== 'number' || !Number.isSafeInteger(lba) || lba < 0) throw new InvalidArgumentError(fn, 'lba', `must be a logical block number (a non-negative integer), got ${describe(lba)}`)
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) throw new InvalidArgumentError(fn, countArg, `must be a positive number of blocks, got ${describe(count)}`)
    if (lba >= blocks || lba + count > blocks) {
      throw new InvalidArgumentError(fn, lba >= blocks ? 'lba' : countArg, `LBAs ${lba}..${lba + count - 1} are outside ${d.disk_name} (${blocks} blocks of ${lbs} bytes)`)
    }
  }

  /**
   * One I/O, resolving with its status rather than throwing for I/O errors: `{ status, statusName,
   * errno, data, latencyNs }`. Bad input still throws an InvalidArgumentError.
   */
  async io(name: string, req: IoRequest): Promise<IoResult> {
    this.#guard('blk.io')
    const fn = 'blk.io'
    const d = this.#disk(fn, name)
    if (req === null || typeof req !== 'object') throw new InvalidArgumentError(fn, 'req', `must be an I/O request object, got ${describe(req)}`)
    const ops: readonly BlockOp[] = ['read', 'write', 'flush', 'write-zeroes', 'discard']
    if (!ops.includes(req.op)) throw new InvalidArgumentError(fn, 'req.op', `must be one of ${ops.join(', ')}, got ${describe(req.op)}`)
    const o = this.#options(fn, d, req)
    const lbs = d.queue.limits.logical_block_size
    let lba = 0
    let count = 0
    let data: Uint8Array | null = null
    if (req.op === 'write') {
      data = this.#data(fn, d, req.data, 'req.data')
      lba = req.lba ?? -1
      count = data.length / lbs
      this.#range(fn, d, lba, count, 'req.data')
    } else if (req.op !== 'flush') {
      lba = req.lba ?? -1
      count = req.count ?? -1
      this.#range(fn, d, lba, count)
      if (req.op === 'read' && count * lbs > MAX_IO_BYTES) throw new InvalidArgumentError(fn, 'count', `is ${count} blocks: more than ${MAX_IO_BYTES} bytes in one call`)
      if (req.data !== undefined) throw new InvalidArgumentError(fn, 'req.data', `only a write carries data`)
    }
    return this.#run(d, req.op, lba, count, data, o)
  }

  #data(fn: string, d: Gendisk, data: unknown, arg: string): Uint8Array {
    const lbs = d.queue.limits.logical_block_size
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError(fn, arg, `must be a Uint8Array, got ${describe(data)}`)
    if (data.length === 0 || data.length % lbs !== 0) throw new InvalidArgumentError(fn, arg, `is ${data.length} bytes: not a whole number of ${lbs}-byte logical blocks`)
    if (data.length > MAX_IO_BYTES) throw new InvalidArgumentError(fn, arg, `is ${data.length} bytes: more than ${MAX_IO_BYTES} in one call`)
    return data
  }

  /** Reads count logical blocks at lba (pread with O_DIRECT). Rejects with a BlockIoError on an I/O error. */
  async read(name: string, lba: number, count: number, opts?: IoOptions): Promise<Uint8Array> {
    this.#guard('blk.read')
    const d = this.#disk('blk.read', name)
    this.#range('blk.read', d, lba, count)
    if (count * d.queue.limits.logical_block_size > MAX_IO_BYTES) throw new InvalidArgumentError('blk.read', 'count', `is ${count} blocks: more than ${MAX_IO_BYTES} bytes in one call`)
    const o = this.#options('blk.read', d, opts)
    const r = await this.#run(d, 'read', lba, count, null, o)
    if (r.status !== BLK_STS_OK) throw new BlockIoError(d.disk_name, 'read', lba, r.status)
    return r.data!
  }

  /** Writes data (whole logical blocks) at lba; `fua`, `preflush` as REQ_FUA and REQ_PREFLUSH. */
  async write(name: string, lba: number, data: Uint8Array, opts?: IoOptions): Promise<void> {
    this.#guard('blk.write')
    const d = this.#disk('blk.write', name)
    const bytes = this.#data('blk.write', d, data, 'data')
    this.#range('blk.write', d, lba, bytes.length / d.queue.limits.logical_block_size, 'data')
    const o = this.#options('blk.write', d, opts)
    const r = await this.#run(d, 'write', lba, 0, bytes, o)
    if (r.status !== BLK_STS_OK) throw new BlockIoError(d.disk_name, 'write', lba, r.status)
  }

  /** Flushes the disk's volatile write cache (fsync: an empty REQ_PREFLUSH write); nothing reaches a disk without one. */
  async flush(name: string, opts?: IoOptions): Promise<void> {
    this.#guard('blk.flush')
    const d = this.#disk('blk.flush', name)
    const o = this.#options('blk.flush', d, opts)
    const r = await this.#run(d, 'flush', 0, 0, null, o)
    if (r.status !== BLK_STS_OK) throw new BlockIoError(d.disk_name, 'flush', 0, r.status)
  }

  /**
   * Zeroes count blocks at lba (blkdev_issue_zeroout): REQ_OP_WRITE_ZEROES when the disk supports
   * it, else writes of a zeroed page — unless `noFallback`, which then rejects (BLK_STS_NOTSUPP).
   */
  async writeZeroes(name: string, lba: number, count: number, opts?: IoOptions & { noFallback?: boolean }): Promise<void> {
    this.#guard('blk.writeZeroes')
    const d = this.#disk('blk.writeZeroes', name)
    this.#range('blk.writeZeroes', d, lba, count)
    const { noFallback, ...rest } = opts ?? {}
    if (noFallback !== undefined && typeof noFallback !== 'boolean') throw new InvalidArgumentError('blk.writeZeroes', 'opts.noFallback', `must be a boolean, got ${describe(noFallback)}`)
    const o = this.#options('blk.writeZeroes', d, rest)
    let r = await this.#run(d, 'write-zeroes', lba, count, null, o)
    if (r.status === BLK_STS_NOTSUPP && noFallback !== true) r = await this.#run(d, 'zero-pages', lba, count, null, o)
    if (r.status !== BLK_STS_OK) throw new BlockIoError(d.disk_name, 'write-zeroes', lba, r.status)
  }

  /** Discards count blocks at lba (blkdiscard); rejects with BLK_STS_NOTSUPP on a disk without discard. */
  async discard(name: string, lba: number, count: number, opts?: IoOptions): Promise<void> {
    this.#guard('blk.discard')
    const d = this.#disk('blk.discard', name)
    this.#range('blk.discard', d, lba, count)
    const o = this.#options('blk.discard', d, opts)
    const r = await this.#run(d, 'discard', lba, count, null, o)
    if (r.status !== BLK_STS_OK) throw new BlockIoError(d.disk_name, 'discard', lba, r.status)
  }

  /** Runs the fio-like workload generator on this system (see fio.ts). */
  async fio(opts: FioOptions): Promise<FioResult> {
    this.#guard('blk.fio')
    return fio(this.#sys, opts)
  }

  async #run(d: Gendisk, op: BlockOp | 'zero-pages', lba: number, count: number, data: Uint8Array | null, o: ResolvedOptions): Promise<IoResult> {
    const sys = this.#sys
    const bs = this.#bs
    const lbs = d.queue.limits.logical_block_size
    const sector = (lba * lbs) / SECTOR_SIZE
    const out = await sys.run(async () => {
      const t = current('blk_user_io')
      if (op === 'zero-pages') return zeroPages(t, bs, d, sector, count * lbs, o)
      const bytes = op === 'write' ? data!.length : op === 'read' ? count * lbs : 0
      const buf = bytes > 0 ? allocBuffer(bs, bytes, o.pageOffset, o.contiguous) : null
      if (buf === null && bytes > 0) return { status: blkStsNomem(), data: null, latencyNs: 0, timedOut: false }
      try {
        if (op === 'write') fillBuffer(buf!, data!)
        const bio = new Bio(buf?.pieces.length ?? 0)
        bio.bi_bdev = d
        bio.bi_cpu = o.queue
        const flags = (o.nowait ? REQ_NOWAIT : 0) | REQ_SYNC
        switch (op) {
          case 'read':
            bio.bi_opf = REQ_OP_READ | flags
            break
          case 'write':
            bio.bi_opf = REQ_OP_WRITE | flags | (o.fua ? REQ_FUA : 0) | (o.preflush ? REQ_PREFLUSH : 0)
            break
          case 'flush':
            bio.bi_opf = REQ_OP_WRITE | REQ_PREFLUSH | flags
            break
          case 'write-zeroes':
            bio.bi_opf = REQ_OP_WRITE_ZEROES | flags
            bio.bi_iter.bi_size = count * lbs
            break
          case 'discard':
            bio.bi_opf = REQ_OP_DISCARD | flags
            bio.bi_iter.bi_size = count * lbs
            break
        }
        bio.bi_iter.bi_sector = op === 'flush' ? 0 : sector
        if (buf !== null) for (const p of buf.pieces) __bio_add_page(bio, p.page, p.len, p.off)
        const w = await submitAndWait(t, bio, o.timeoutNs)
        if (!w.done) {
          // The device may still write the buffer: it is left allocated (and counted) on purpose.
          leak(buf)
          return { status: BLK_STS_OK, data: null, latencyNs: 0, timedOut: true }
        }
        const result = op === 'read' && bio.bi_status === BLK_STS_OK ? readBuffer(buf!, bytes) : null
        return { status: bio.bi_status, data: result, latencyNs: w.endNs - w.startNs, timedOut: false }
      } finally {
        if (buf !== null && !leaked.has(buf)) freeBuffer(bs, buf)
        queueIdle(d.queue)
      }
    }, op === 'write-zeroes' || op === 'zero-pages' ? 'write-zeroes' : op)
    if (out.timedOut) throw new DmalabError(`blk.${op === 'zero-pages' ? 'writeZeroes' : op}: the ${op} of ${d.disk_name} at LBA ${lba} did not end within ${o.timeoutNs} ns of virtual time (a request the driver never completes, and no timeout handler that ends it?)`)
    return { status: out.status, statusName: blk_status_name(out.status), errno: blk_status_to_errno(out.status), data: out.data, latencyNs: out.latencyNs }
  }
}

const leaked = new WeakSet<Buffer>()

function leak(buf: Buffer | null): void {
  if (buf !== null) leaked.add(buf)
}

/** The status of an I/O whose buffer could not be allocated: BLK_STS_RESOURCE (-ENOMEM). */
function blkStsNomem(): blk_status_t {
  return BLK_STS_RESOURCE
}

/** Submits bio and sleeps until it ends or timeoutNs passes. */
async function submitAndWait(t: Task, bio: Bio, timeoutNs: number): Promise<{ done: boolean; startNs: number; endNs: number }> {
  const sys = t.sys as System
  const w: Waiter = { done: false, endNs: 0, wq: init_waitqueue_head(), sys }
  bio.bi_end_io = userEndIo
  bio.bi_private = w
  const startNs = sys.machine.clock.now
  await submitBio(t, bio)
  if (!w.done) await wait_event_timeout(w.wq, () => w.done, Math.max(1, Math.ceil(timeoutNs / NS_PER_JIFFY)))
  return { done: w.done, startNs, endNs: w.endNs }
}

/**
 * Allocates a data buffer of bytes starting at pageOffset in its first page: scattered pages (each
 * the first page of an order-1 block, so no two are adjacent) or one contiguous block.
 */
export function allocBuffer(bs: BlockState, bytes: number, pageOffset: number, contiguous: boolean): Buffer | null {
  const sys = bs.sys
  const npages = Math.ceil((pageOffset + bytes) / PAGE_SIZE)
  const pieces: Buffer['pieces'] = []
  const blocks: Buffer['blocks'] = []
  const pageAt = (i: number, first: Page): Page => (i === 0 ? first : sys.pages.ensure(first.pfn + i).page)
  let left = bytes
  let off = pageOffset
  if (contiguous) {
    const order = get_order(npages * PAGE_SIZE)
    const first = alloc_pages(GFP_KERNEL, order)
    if (first === null) return null
    blocks.push({ page: first, order })
    bs.userPages += 1 << order
    for (let i = 0; i < npages; i++) {
      const len = Math.min(left, PAGE_SIZE - off)
      pieces.push({ page: pageAt(i, first), off, len })
      left -= len
      off = 0
    }
    return { pieces, blocks }
  }
  for (let i = 0; i < npages; i++) {
    const p = alloc_pages(GFP_KERNEL, 1)
    if (p === null) {
      freeBuffer(bs, { pieces, blocks })
      return null
    }
    blocks.push({ page: p, order: 1 })
    bs.userPages += 2
    const len = Math.min(left, PAGE_SIZE - off)
    pieces.push({ page: p, off, len })
    left -= len
    off = 0
  }
  return { pieces, blocks }
}

/** Frees a buffer's pages. */
export function freeBuffer(bs: BlockState, buf: Buffer): void {
  for (const b of buf.blocks) {
    __free_pages(b.page, b.order)
    bs.userPages -= 1 << b.order
  }
  buf.blocks.length = 0
}

function addrOf(page: Page, off: number): CpuAddr {
  return (page.pfn * PAGE_SIZE + off + PAGE_OFFSET) as CpuAddr
}

/** CPU stores of data into the buffer. */
export function fillBuffer(buf: Buffer, data: Uint8Array): void {
  let pos = 0
  for (const p of buf.pieces) {
    mem_write_bytes(addrOf(p.page, p.off), data.subarray(pos, pos + p.len))
    pos += p.len
  }
}

/** CPU loads of the buffer's bytes. */
export function readBuffer(buf: Buffer, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let pos = 0
  for (const p of buf.pieces) {
    out.set(mem_read_bytes(addrOf(p.page, p.off), p.len), pos)
    pos += p.len
  }
  return out
}

/** blkdev_issue_zeroout's fallback: writes of one zeroed page, up to 1 MiB per bio. */
async function zeroPages(t: Task, bs: BlockState, d: Gendisk, sector: number, bytes: number, o: { queue: number; timeoutNs: number }): Promise<{ status: blk_status_t; data: null; latencyNs: number; timedOut: boolean }> {
  const zero = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)
  if (zero === null) return { status: blkStsNomem(), data: null, latencyNs: 0, timedOut: false }
  bs.userPages++
  const start = bs.sys.machine.clock.now
  let inUse = false
  try {
    let s = sector
    let left = bytes
    while (left > 0) {
      const chunk = Math.min(left, 256 * PAGE_SIZE)
      const bio = new Bio(256)
      bio.bi_bdev = d
      bio.bi_cpu = o.queue
      bio.bi_opf = REQ_OP_WRITE | REQ_SYNC
      bio.bi_iter.bi_sector = s
      for (let n = 0; n < chunk; n += PAGE_SIZE) {
        bio.bi_io_vec[bio.bi_vcnt++] = { bv_page: zero, bv_offset: 0, bv_len: Math.min(PAGE_SIZE, chunk - n) }
        bio.bi_iter.bi_size += Math.min(PAGE_SIZE, chunk - n)
      }
      const w = await submitAndWait(t, bio, o.timeoutNs)
      if (!w.done) {
        // The device may still read the page: it stays allocated (and counted).
        inUse = true
        return { status: BLK_STS_OK, data: null, latencyNs: 0, timedOut: true }
      }
      if (bio.bi_status !== BLK_STS_OK) return { status: bio.bi_status, data: null, latencyNs: 0, timedOut: false }
      s += chunk / SECTOR_SIZE
      left -= chunk
    }
    return { status: BLK_STS_OK, data: null, latencyNs: bs.sys.machine.clock.now - start, timedOut: false }
  } finally {
    if (!inUse) {
      __free_pages(zero, 0)
      bs.userPages--
    }
    queueIdle(d.queue)
  }
}

const users = new WeakMap<System, BlockUser>()

/** The block user space of a system (one per system: `blockUser(sys) === blockUser(sys)`). */
export function blockUser(sys: System): BlockUser {
  if (sys === null || typeof sys !== 'object' || !('sched' in sys)) throw new InvalidArgumentError('blockUser', 'sys', 'must be a System from boot()')
  let u = users.get(sys)
  if (u === undefined) {
    u = new BlockUser(sys)
    users.set(sys, u)
  }
  return u
}
