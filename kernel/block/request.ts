/**
 * The blk-mq objects and the request accessors drivers use (include/linux/blk-mq.h,
 * include/linux/blkdev.h): `struct request`, `struct blk_mq_hw_ctx`, `struct request_queue`,
 * `struct blk_mq_tags`, `struct blk_mq_tag_set` and `struct blk_mq_ops`, and the helpers that
 * read a request — req_op, rq_data_dir, blk_rq_pos, blk_rq_bytes, blk_rq_sectors,
 * blk_mq_rq_to_pdu, blk_mq_unique_tag, ...
 *
 * Requests are preallocated per hardware queue when the tag set is allocated, one per tag (the
 * tags' `static_rqs`), as Linux does without an I/O scheduler: `rq.tag` never changes, and the
 * driver's per-request data (`blk_mq_rq_to_pdu(rq)`) lives as long as the tag set.
 */

import { DMA_FROM_DEVICE, DMA_TO_DEVICE, type dma_data_direction } from '../dma/types.js'
import type { Task } from '../sched/current.js'
import type { WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import type { ClockEvent } from '../../devices/index.js'
import type { CpuAddr } from '../types.js'
import type { Bio, BioVec } from './bio.js'
import {
  BLK_MQ_UNIQUE_TAG_BITS,
  BLK_MQ_UNIQUE_TAG_MASK,
  MQ_RQ_COMPLETE,
  MQ_RQ_IDLE,
  MQ_RQ_IN_FLIGHT,
  REQ_OP_DRV_IN,
  REQ_OP_MASK,
  SECTOR_SHIFT,
  op_is_write,
  type BlkEhTimerReturn,
  type blk_opf_t,
  type blk_status_t,
  type RqEndIoRet,
} from './blk_types.js'
import type { Gendisk } from './genhd.js'

// ---------------------------------------------------------------------- ops

/** `struct blk_mq_queue_data`: what queue_rq gets besides the hctx. */
export interface BlkMqQueueData {
  readonly rq: Request
  /** The last request of this dispatch batch: ring the doorbell now (else commit_rqs may follow). */
  readonly last: boolean
}

/**
 * `struct blk_mq_ops`. Contexts (docs/block.md §3): queue_rq and commit_rqs are atomic (called
 * with the hw queue "locked": synchronous, must not sleep); complete runs in the BLOCK softirq;
 * timeout runs in process context (kblockd) and may be async; init_hctx, exit_hctx,
 * init_request, exit_request and map_queues run in the process context of the allocating call.
 */
export interface BlkMqOps {
  /** Hands one request to the hardware; BLK_STS_OK, BLK_STS_RESOURCE / BLK_STS_DEV_RESOURCE (retry later) or an error (ends it). */
  queue_rq: (hctx: BlkMqHwCtx, bd: BlkMqQueueData) => blk_status_t
  /** Rings the doorbell for requests queued with bd.last false, when the batch stops early. */
  commit_rqs?: (hctx: BlkMqHwCtx) => void
  /** Finishes a request blk_mq_complete_request() was called on (BLOCK softirq); usually ends it. */
  complete?: (rq: Request) => void
  /** A started request passed its deadline: BLK_EH_DONE (the driver ends it) or BLK_EH_RESET_TIMER. */
  timeout?: (rq: Request) => BlkEhTimerReturn | Promise<BlkEhTimerReturn>
  /** One hardware queue of a request_queue is set up: set hctx.driver_data; 0 or -errno. */
  init_hctx?: (hctx: BlkMqHwCtx, driver_data: unknown, hctx_idx: number) => number
  exit_hctx?: (hctx: BlkMqHwCtx, hctx_idx: number) => void
  /** Each preallocated request of the tag set: set up blk_mq_rq_to_pdu(rq); 0 or -errno. */
  init_request?: (set: BlkMqTagSet, rq: Request, hctx_idx: number, numa_node: number) => number
  exit_request?: (set: BlkMqTagSet, rq: Request, hctx_idx: number) => void
  /** Fills set.map[0].mq_map: which hw queue each submission context uses. */
  map_queues?: (set: BlkMqTagSet) => void
}

/** `struct blk_mq_queue_map`: submission context ("CPU") -> hw queue index. */
export interface BlkMqQueueMap {
  mq_map: number[]
  nr_queues: number
  queue_offset: number
}

/**
 * `struct blk_mq_tag_set`: the driver fills ops, nr_hw_queues and queue_depth (and optionally the
 * rest), then calls blk_mq_alloc_tag_set(set), which fills tags and map. As `sg_alloc_table`, it
 * fills the caller's object: a literal will do.
 */
export interface BlkMqTagSet {
  ops: BlkMqOps
  nr_hw_queues: number
  queue_depth: number
  /** Tags kept for BLK_MQ_REQ_RESERVED allocations (part of queue_depth). */
  reserved_tags?: number
  /**
   * Bytes of per-request driver data (as C's cmd_size): blk_mq_rq_to_pdu(rq) is then a CpuAddr to
   * that many zeroed bytes of kernel memory. Without it, blk_mq_rq_to_pdu(rq) is a JavaScript
   * object ({} for each request) that init_request fills: the TypeScript way.
   */
  cmd_size?: number
  numa_node?: number
  /** Request timeout in jiffies (default 30 * HZ). */
  timeout?: number
  /** BLK_MQ_F_* flags. */
  flags?: number
  driver_data?: unknown
  nr_maps?: number
  /** Filled by blk_mq_alloc_tag_set: the tags of each hw queue (shared ones with BLK_MQ_F_TAG_HCTX_SHARED). */
  tags?: BlkMqTags[]
  /** Filled by blk_mq_alloc_tag_set: the queue map (map_queues may rewrite mq_map). */
  map?: BlkMqQueueMap[]
}

/** `struct queue_limits`: what the device accepts; the block layer splits bios to fit. */
export interface QueueLimits {
  /** BLK_FEAT_WRITE_CACHE, BLK_FEAT_FUA, ... */
  features: number
  logical_block_size: number
  physical_block_size: number
  max_hw_sectors: number
  max_sectors: number
  max_segments: number
  max_segment_size: number
  seg_boundary_mask: number
  virt_boundary_mask: number
  dma_alignment: number
  max_write_zeroes_sectors: number
  max_discard_sectors: number
}

// ---------------------------------------------------------------------- tags

/** `struct blk_mq_tags`: the tags of one hw queue and the request preallocated for each. */
export class BlkMqTags {
  readonly nr_tags: number
  readonly nr_reserved_tags: number
  /** The request of each tag (allocated with the tag set). */
  readonly static_rqs: Request[] = []
  /** The request each busy tag is in use by, else null. */
  readonly rqs: (Request | null)[]
  /** @internal Free normal tags (a stack: the last freed is reused first). */
  readonly _free: number[] = []
  /** @internal Free reserved tags. */
  readonly _freeReserved: number[] = []
  /** @internal Submitters sleeping for a tag. */
  _wait: WaitQueueHead | null = null
  /** @internal */
  readonly _set: BlkMqTagSet

  constructor(set: BlkMqTagSet, nr_tags: number, nr_reserved: number) {
    this._set = set
    this.nr_tags = nr_tags
    this.nr_reserved_tags = nr_reserved
    this.rqs = new Array<Request | null>(nr_tags).fill(null)
    for (let tag = nr_tags - 1; tag >= nr_reserved; tag--) this._free.push(tag)
    for (let tag = nr_reserved - 1; tag >= 0; tag--) this._freeReserved.push(tag)
  }

  /** Tags in use. */
  get busy(): number {
    return this.nr_tags - this._free.length - this._freeReserved.length
  }
}

// ---------------------------------------------------------------------- hctx

/** Counters of one hardware queue (debugfs's hctx stats). */
export interface HctxStats {
  /** Requests inserted for dispatch. */
  queued: number
  /** queue_rq calls. */
  dispatched: number
  /** queue_rq calls that returned BLK_STS_OK. */
  issued: number
  /** queue_rq calls that returned BLK_STS_RESOURCE or BLK_STS_DEV_RESOURCE. */
  busy: number
  /** Dispatch runs. */
  run: number
  /** Requests requeued by the driver. */
  requeued: number
  /** Requests ended. */
  completed: number
  /** Submitters that slept for a free tag. */
  tagWaits: number
}

/** `struct blk_mq_hw_ctx`: one hardware queue of a request_queue. */
export class BlkMqHwCtx {
  readonly queue: RequestQueue
  readonly queue_num: number
  /** The driver's per-queue data (set it in init_hctx). */
  driver_data: unknown = null
  tags: BlkMqTags
  flags: number
  numa_node: number
  /** BLK_MQ_S_* bits. */
  state = 0
  /** HCTX_TYPE_DEFAULT (dmalab has no read or poll queues). */
  readonly type = 0
  /** @internal Requests waiting for queue_rq, in order (Linux: the ctx lists and hctx->dispatch). */
  _dispatch: Request[] = []
  /** @internal A dispatch loop of this hctx is running. */
  _inDispatch = false
  /** @internal Run again when the running dispatch ends. */
  _rerun = false
  /** @internal A kblockd run is queued. */
  _runQueued = false
  /** @internal The delayed run (BLK_STS_RESOURCE with nothing in flight). */
  _delay: ClockEvent | null = null
  /** @internal Requests of this hctx the driver holds (started, not ended). */
  _active = 0
  /** @internal init_hctx succeeded (exit_hctx is owed). */
  _inited = false
  readonly stats: HctxStats = { queued: 0, dispatched: 0, issued: 0, busy: 0, run: 0, requeued: 0, completed: 0, tagWaits: 0 }

  constructor(q: RequestQueue, index: number, tags: BlkMqTags, flags: number, numa_node: number) {
    this.queue = q
    this.queue_num = index
    this.tags = tags
    this.flags = flags
    this.numa_node = numa_node
  }

  toString(): string {
    return `hctx${this.queue_num}`
  }
}

// ---------------------------------------------------------------------- request_queue

/** Per-queue counters. */
export interface QueueStats {
  timeouts: number
  requeues: number
}

/** `struct request_queue`. Create it with blk_mq_alloc_disk (or blk_mq_alloc_queue for passthrough). */
export class RequestQueue {
  /** The driver's data (blk_mq_alloc_disk's queuedata). */
  queuedata: unknown
  readonly tag_set: BlkMqTagSet
  readonly mq_ops: BlkMqOps
  readonly queue_hw_ctx: BlkMqHwCtx[] = []
  readonly nr_hw_queues: number
  readonly limits: QueueLimits
  /** Request timeout, jiffies (blk_queue_rq_timeout). */
  rq_timeout: number
  /** The disk, for a queue of a gendisk. */
  disk: Gendisk | null = null
  /** @internal */
  readonly _sys: System
  /** @internal blk_freeze_queue_start depth. */
  _freezeDepth = 0
  /** @internal q_usage_counter: bios being submitted and requests allocated. */
  _usage = 0
  /** @internal Waiters for a freeze to end or the usage to drop to zero. */
  readonly _freezeWq: WaitQueueHead
  /** @internal blk_mq_quiesce_queue depth. */
  _quiesceDepth = 0
  /** @internal The requeue list and whether its kblockd work is queued. */
  _requeue: Request[] = []
  _requeueQueued = false
  _requeueDelay: ClockEvent | null = null
  /** @internal The timeout timer (one per queue, at the earliest deadline). */
  _timer: ClockEvent | null = null
  /** @internal The timeout work is queued. */
  _timeoutQueued = false
  /** @internal Requests in flight (MQ_RQ_IN_FLIGHT). */
  _inflight = 0
  /** @internal 'live', 'dying' (del_gendisk: new I/O fails) or 'dead' (destroyed). */
  _state: 'live' | 'dying' | 'dead' = 'live'
  readonly stats: QueueStats = { timeouts: 0, requeues: 0 }

  /** @internal */
  constructor(sys: System, set: BlkMqTagSet, limits: QueueLimits, queuedata: unknown, freezeWq: WaitQueueHead) {
    this._sys = sys
    this.tag_set = set
    this.mq_ops = set.ops
    this.nr_hw_queues = set.nr_hw_queues
    this.limits = limits
    this.queuedata = queuedata
    this._freezeWq = freezeWq
    this.rq_timeout = 0
  }

  toString(): string {
    return `request_queue(${this.disk?.disk_name ?? 'no disk'})`
  }
}

// ---------------------------------------------------------------------- request

/** `RqEndIoFn`: a passthrough request's completion callback (blk_execute_rq_nowait). */
export type RqEndIoFn = (rq: Request, error: blk_status_t) => RqEndIoRet

/** `struct request`: one I/O the driver executes. */
export class Request {
  /** The queue it is allocated on (queues sharing a tag set share its requests). */
  q: RequestQueue
  mq_hctx: BlkMqHwCtx
  /** Its tag: an index below the queue depth, the same for the life of the tag set. */
  readonly tag: number
  readonly internal_tag = -1
  /** REQ_OP_* | REQ_* flags (req_op(rq), rq.cmd_flags & REQ_FUA). */
  cmd_flags: blk_opf_t = 0
  /** RQF_* flags. */
  rq_flags = 0
  /** Start sector (blk_rq_pos). */
  // eslint-disable-next-line @typescript-eslint/naming-convention -- Linux's rq->__sector
  __sector = 0
  /** Bytes (blk_rq_bytes). */
  // eslint-disable-next-line @typescript-eslint/naming-convention -- Linux's rq->__data_len
  __data_len = 0
  /** The bio this request carries (a split bio's piece), or null. */
  bio: Bio | null = null
  /** Physical segments (blk_rq_nr_phys_segments). */
  nr_phys_segments = 0
  /** Timeout, jiffies. */
  timeout = 0
  /** When it times out (virtual ns; Linux keeps jiffies). */
  deadline = 0
  start_time_ns = 0
  io_start_time_ns = 0
  /** MQ_RQ_IDLE, MQ_RQ_IN_FLIGHT, MQ_RQ_COMPLETE. */
  state = MQ_RQ_IDLE
  /** Passthrough completion (blk_execute_rq_nowait). */
  end_io: RqEndIoFn | null = null
  end_io_data: unknown = null
  /** @internal The driver's per-request data. */
  _pdu: unknown
  /** @internal The request holds its tag (allocated, not yet freed). */
  _allocated = false
  /** @internal Allocation count, to tell a reused request from the one a completion was for. */
  _gen = 0
  /** @internal The data pieces of this request. */
  _bvecs: BioVec[] = []
  /** @internal A flush-sequence step: what to do when it ends. */
  _flushSeq: ((rq: Request, error: blk_status_t) => void) | null = null
  /** @internal Allocated with BLK_MQ_REQ_RESERVED. */
  _reserved = false
  /** @internal The submission context it came from. */
  _cpu = 0
  /** @internal The task that submitted it (for naming kernel contexts). */
  _submitter: Task | null = null

  /** @internal */
  constructor(q: RequestQueue | null, hctx: BlkMqHwCtx | null, tag: number, pdu: unknown) {
    this.q = q as RequestQueue
    this.mq_hctx = hctx as BlkMqHwCtx
    this.tag = tag
    this._pdu = pdu
  }

  toString(): string {
    return `request(tag ${this.tag}, ${this.mq_hctx === null ? 'no hctx' : this.mq_hctx.toString()})`
  }
}

// ---------------------------------------------------------------------- accessors

/** `req_op(rq)`: REQ_OP_READ, REQ_OP_WRITE, REQ_OP_FLUSH, REQ_OP_WRITE_ZEROES, REQ_OP_DRV_IN, ... */
export function req_op(rq: Request): number {
  return rq.cmd_flags & REQ_OP_MASK
}

/** `rq_data_dir(rq)`: 1 (WRITE) for operations that move data to the device, else 0 (READ). */
export function rq_data_dir(rq: Request): 0 | 1 {
  return op_is_write(rq.cmd_flags) ? 1 : 0
}

/** `rq_dma_dir(rq)`: DMA_TO_DEVICE for writes, DMA_FROM_DEVICE for reads. */
export function rq_dma_dir(rq: Request): dma_data_direction {
  return op_is_write(rq.cmd_flags) ? DMA_TO_DEVICE : DMA_FROM_DEVICE
}

/** `blk_rq_pos(rq)`: the start sector (512-byte units). */
export function blk_rq_pos(rq: Request): number {
  return rq.__sector
}

/** `blk_rq_bytes(rq)`. */
export function blk_rq_bytes(rq: Request): number {
  return rq.__data_len
}

/** `blk_rq_sectors(rq)`. */
export function blk_rq_sectors(rq: Request): number {
  return rq.__data_len >> SECTOR_SHIFT
}

/** `blk_rq_cur_bytes(rq)`: bytes of the current (first) segment. */
export function blk_rq_cur_bytes(rq: Request): number {
  return rq._bvecs.length > 0 ? rq._bvecs[0]!.bv_len : 0
}

/** `blk_rq_payload_bytes(rq)`: the bytes of data the request moves (0 for flushes and write-zeroes). */
export function blk_rq_payload_bytes(rq: Request): number {
  return rq._bvecs.length > 0 ? rq.__data_len : 0
}

/** `blk_rq_nr_phys_segments(rq)`: the segments blk_rq_map_sg produces. */
export function blk_rq_nr_phys_segments(rq: Request): number {
  return rq.nr_phys_segments
}

/** `blk_rq_is_passthrough(rq)`: a driver-private request (REQ_OP_DRV_IN/OUT). */
export function blk_rq_is_passthrough(rq: Request): boolean {
  return (rq.cmd_flags & REQ_OP_MASK) >= REQ_OP_DRV_IN
}

/** `req_bvec(rq)`: the first data piece of the request (its first bio_vec). */
export function req_bvec(rq: Request): BioVec {
  const bv = rq._bvecs[0]
  if (bv === undefined) throw new TypeError('req_bvec: the request has no data')
  return bv
}

/** `blk_rq_nr_bvecs`: how many data pieces (bio_vecs) the request has. */
export function blk_rq_nr_bvecs(rq: Request): number {
  return rq._bvecs.length
}

/**
 * `rq_for_each_segment(bvec, rq, iter)`: the request's data, one piece at a time (each piece lies
 * within one page): `for (const bv of rq_for_each_segment(rq))`.
 */
export function* rq_for_each_segment(rq: Request): Generator<BioVec> {
  for (const bv of rq._bvecs) yield bv
}

/** `rq_for_each_bvec(bvec, rq, iter)`: the same pieces (dmalab's bio_vecs never span pages). */
export function* rq_for_each_bvec(rq: Request): Generator<BioVec> {
  for (const bv of rq._bvecs) yield bv
}

/**
 * `blk_mq_rq_to_pdu(rq)`: the driver's per-request data: the object init_request set up (or {}),
 * or with the tag set's cmd_size a CpuAddr to that many zeroed bytes.
 */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- C's void *: the caller names the type
export function blk_mq_rq_to_pdu<P = unknown>(rq: Request): P {
  return rq._pdu as P
}

const pduOwners = new WeakMap<object, Request>()
const cpuPduOwners = new Map<number, Request>()

/** @internal Records rq as the owner of its pdu (for blk_mq_rq_from_pdu). */
export function setPdu(rq: Request, pdu: unknown): void {
  rq._pdu = pdu
  if (typeof pdu === 'object' && pdu !== null) pduOwners.set(pdu, rq)
  else if (typeof pdu === 'number') cpuPduOwners.set(pdu, rq)
}

/** @internal Forgets a pdu (the tag set is freed). */
export function dropPdu(rq: Request): void {
  if (typeof rq._pdu === 'number') cpuPduOwners.delete(rq._pdu)
}

/** `blk_mq_rq_from_pdu(pdu)`: the request whose per-request data pdu is. */
export function blk_mq_rq_from_pdu(pdu: object | CpuAddr): Request {
  const rq = typeof pdu === 'number' ? cpuPduOwners.get(pdu) : pduOwners.get(pdu)
  if (rq === undefined) throw new TypeError('blk_mq_rq_from_pdu: not the per-request data of a request')
  return rq
}

/** `blk_mq_unique_tag(rq)`: the hw queue number and the tag in one number. */
export function blk_mq_unique_tag(rq: Request): number {
  return rq.mq_hctx.queue_num * (1 << BLK_MQ_UNIQUE_TAG_BITS) + (rq.tag & BLK_MQ_UNIQUE_TAG_MASK)
}

/** `blk_mq_unique_tag_to_hwq(unique_tag)`. */
export function blk_mq_unique_tag_to_hwq(unique_tag: number): number {
  return Math.floor(unique_tag / (1 << BLK_MQ_UNIQUE_TAG_BITS))
}

/** `blk_mq_unique_tag_to_tag(unique_tag)`. */
export function blk_mq_unique_tag_to_tag(unique_tag: number): number {
  return unique_tag & BLK_MQ_UNIQUE_TAG_MASK
}

/** `blk_mq_rq_state(rq)`: MQ_RQ_IDLE, MQ_RQ_IN_FLIGHT or MQ_RQ_COMPLETE. */
export function blk_mq_rq_state(rq: Request): number {
  return rq.state
}

/** `blk_mq_request_started(rq)`: blk_mq_start_request has run and the request is not back to idle. */
export function blk_mq_request_started(rq: Request): boolean {
  return rq.state !== MQ_RQ_IDLE
}

/** `blk_mq_request_completed(rq)`: blk_mq_complete_request has been called on it. */
export function blk_mq_request_completed(rq: Request): boolean {
  return rq.state === MQ_RQ_COMPLETE
}

/** `blk_mq_set_request_complete(rq)`: marks it complete without running ->complete (poll paths). */
export function blk_mq_set_request_complete(rq: Request): void {
  if (rq.state === MQ_RQ_IN_FLIGHT) rq.q._inflight--
  rq.state = MQ_RQ_COMPLETE
}

/** Whether a request is in flight (started and not completed). */
export function blk_mq_rq_inflight(rq: Request): boolean {
  return rq.state === MQ_RQ_IN_FLIGHT
}

/** `queue_logical_block_size(q)` and friends. */
export function queue_logical_block_size(q: RequestQueue): number {
  return q.limits.logical_block_size
}
export function queue_max_hw_sectors(q: RequestQueue): number {
  return q.limits.max_hw_sectors
}
export function queue_max_segments(q: RequestQueue): number {
  return q.limits.max_segments
}
export function queue_max_segment_size(q: RequestQueue): number {
  return q.limits.max_segment_size
}
export function queue_virt_boundary(q: RequestQueue): number {
  return q.limits.virt_boundary_mask
}
export function queue_dma_alignment(q: RequestQueue): number {
  return q.limits.dma_alignment
}

/** `hctx->queue->queuedata`, for drivers porting `hctx->queue->queuedata`. */
export function hctx_queuedata(hctx: BlkMqHwCtx): unknown {
  return hctx.queue.queuedata
}
