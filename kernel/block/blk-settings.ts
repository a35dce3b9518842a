/**
 * Queue limits (block/blk-settings.c, include/linux/blkdev.h): what the hardware accepts — the
 * logical block size, the largest request (max_hw_sectors), how many DMA segments of what size
 * (max_segments, max_segment_size, the segment boundary), the NVMe-style "virtual boundary"
 * (PRPs: no gaps between segments), the buffer alignment, write-zeroes support — and the
 * volatile write cache and FUA features that decide whether flushes reach the driver.
 *
 * Both styles of Linux are here: the setters drivers called before v6.9
 * (`blk_queue_logical_block_size(q, 4096)`, `blk_queue_write_cache(q, true, true)`, ...), which
 * adjust impossible values as Linux did (with a log line), and a `queue_limits` object given to
 * blk_mq_alloc_disk(set, lim, queuedata) or queue_limits_commit_update(), validated as
 * blk_validate_limits() does (-EINVAL).
 */

import { EINVAL } from '../errno.js'
import { badArg } from '../mm/memory.js'
import type { Task } from '../sched/current.js'
import { HZ, PAGE_SIZE } from '../types.js'
import {
  BLK_DEF_MAX_SECTORS_CAP,
  BLK_FEAT_FUA,
  BLK_FEAT_WRITE_CACHE,
  BLK_MAX_SEGMENT_SIZE,
  BLK_MAX_SEGMENTS,
  BLK_SAFE_MAX_SECTORS,
  BLK_SEG_BOUNDARY_MASK,
  SECTOR_SHIFT,
  SECTOR_SIZE,
} from './blk_types.js'
import { RequestQueue, type QueueLimits } from './request.js'
import { blkCall } from './state.js'

const PAGE_SECTORS = PAGE_SIZE >> SECTOR_SHIFT
const UINT_MAX = 0xffff_ffff

/** The default request timeout: 30 s. */
export const BLK_DEFAULT_TIMEOUT = 30 * HZ

/** `blk_set_stacking_limits`-style defaults: what a queue has before the driver says otherwise. */
export function blk_default_limits(): QueueLimits {
  return {
    features: 0,
    logical_block_size: SECTOR_SIZE,
    physical_block_size: SECTOR_SIZE,
    max_hw_sectors: BLK_SAFE_MAX_SECTORS,
    max_sectors: BLK_SAFE_MAX_SECTORS,
    max_segments: BLK_MAX_SEGMENTS,
    max_segment_size: BLK_MAX_SEGMENT_SIZE,
    seg_boundary_mask: BLK_SEG_BOUNDARY_MASK,
    virt_boundary_mask: 0,
    dma_alignment: SECTOR_SIZE - 1,
    max_write_zeroes_sectors: 0,
    max_discard_sectors: 0,
  }
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0
}

function isMask(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && isPow2(n + 1)
}

const LIMIT_KEYS: readonly (keyof QueueLimits)[] = [
  'features', 'logical_block_size', 'physical_block_size', 'max_hw_sectors', 'max_sectors', 'max_segments',
  'max_segment_size', 'seg_boundary_mask', 'virt_boundary_mask', 'dma_alignment', 'max_write_zeroes_sectors',
  'max_discard_sectors',
]

/**
 * `blk_validate_limits(lim)`: fills the defaults of fields left 0 or undefined, normalises what
 * Linux normalises (max_sectors, FUA without a write cache, the segment size behind a virtual
 * boundary) and returns the complete limits, or -EINVAL (with the reason in `why`).
 */
export function validateLimits(input: Partial<QueueLimits>, why: string[] = []): QueueLimits | number {
  const lim = blk_default_limits()
  for (const k of LIMIT_KEYS) {
    const v = input[k]
    if (v === undefined || v === 0) continue
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
      why.push(`${k} must be a non-negative integer, got ${String(v)}`)
      return -EINVAL
    }
    lim[k] = v
  }
  if (input.max_hw_sectors === undefined || input.max_hw_sectors === 0) lim.max_hw_sectors = BLK_SAFE_MAX_SECTORS
  if (!isPow2(lim.logical_block_size) || lim.logical_block_size < SECTOR_SIZE || lim.logical_block_size > PAGE_SIZE) {
    why.push(`logical_block_size must be a power of two from 512 to ${PAGE_SIZE}, got ${lim.logical_block_size}`)
    return -EINVAL
  }
  if (input.physical_block_size === undefined || input.physical_block_size === 0) lim.physical_block_size = lim.logical_block_size
  if (!isPow2(lim.physical_block_size) || lim.physical_block_size < lim.logical_block_size) {
    why.push(`physical_block_size must be a power of two no smaller than the logical block size, got ${lim.physical_block_size}`)
    return -EINVAL
  }
  if (lim.max_hw_sectors < PAGE_SECTORS) {
    why.push(`max_hw_sectors must be at least a page (${PAGE_SECTORS} sectors), got ${lim.max_hw_sectors}`)
    return -EINVAL
  }
  const lbsSectors = lim.logical_block_size >> SECTOR_SHIFT
  lim.max_hw_sectors -= lim.max_hw_sectors % lbsSectors
  const user = input.max_sectors !== undefined && input.max_sectors !== 0 ? input.max_sectors : BLK_DEF_MAX_SECTORS_CAP
  lim.max_sectors = Math.max(PAGE_SECTORS, Math.min(lim.max_hw_sectors, user))
  lim.max_sectors -= lim.max_sectors % lbsSectors
  if (lim.virt_boundary_mask !== 0) {
    if (!isMask(lim.virt_boundary_mask) || lim.virt_boundary_mask >= PAGE_SIZE) {
      why.push(`virt_boundary_mask must be 2^n - 1 below the page size, got ${lim.virt_boundary_mask}`)
      return -EINVAL
    }
    lim.max_segment_size = UINT_MAX
  } else if (lim.max_segment_size < PAGE_SIZE) {
    why.push(`max_segment_size must be at least the page size (${PAGE_SIZE}), got ${lim.max_segment_size}`)
    return -EINVAL
  }
  if (!isMask(lim.seg_boundary_mask) || lim.seg_boundary_mask < PAGE_SIZE - 1) {
    why.push(`seg_boundary_mask must be 2^n - 1 of at least ${PAGE_SIZE - 1}, got ${lim.seg_boundary_mask}`)
    return -EINVAL
  }
  if (!isMask(lim.dma_alignment) || lim.dma_alignment >= PAGE_SIZE) {
    why.push(`dma_alignment must be 2^n - 1 below the page size, got ${lim.dma_alignment}`)
    return -EINVAL
  }
  if ((lim.features & BLK_FEAT_WRITE_CACHE) === 0) lim.features &= ~BLK_FEAT_FUA
  return lim
}

function queueArg(t: Task, fn: string, q: unknown): RequestQueue {
  if (!(q instanceof RequestQueue)) badArg(t, fn, 'q', `must be a struct request_queue (disk->queue), got ${q === null ? 'NULL' : typeof q}`)
  if (q._sys !== t.sys) badArg(t, fn, 'q', 'belongs to another system')
  return q
}

function intArg(t: Task, fn: string, arg: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) badArg(t, fn, arg, `must be a non-negative integer, got ${String(v)}`)
  return v
}

function info(t: Task, fn: string, msg: string): void {
  ;(t.sys as RequestQueue['_sys']).logger.info({ task: t.toString() }, `${fn}: ${msg}`)
}

/** `blk_queue_logical_block_size(q, size)`: the smallest unit the device addresses (512 to PAGE_SIZE, a power of two). */
export function blk_queue_logical_block_size(q: RequestQueue, size: number): void {
  const { t } = blkCall('blk_queue_logical_block_size')
  const fn = 'blk_queue_logical_block_size'
  const qq = queueArg(t, fn, q)
  const n = intArg(t, fn, 'size', size)
  if (!isPow2(n) || n < SECTOR_SIZE || n > PAGE_SIZE) badArg(t, fn, 'size', `must be a power of two from 512 to ${PAGE_SIZE}, got ${n}`)
  const l = qq.limits
  l.logical_block_size = n
  if (l.physical_block_size < n) l.physical_block_size = n
  const lbs = n >> SECTOR_SHIFT
  l.max_hw_sectors -= l.max_hw_sectors % lbs
  l.max_sectors -= l.max_sectors % lbs
}

/** `blk_queue_physical_block_size(q, size)`. */
export function blk_queue_physical_block_size(q: RequestQueue, size: number): void {
  const { t } = blkCall('blk_queue_physical_block_size')
  const fn = 'blk_queue_physical_block_size'
  const qq = queueArg(t, fn, q)
  const n = intArg(t, fn, 'size', size)
  if (!isPow2(n)) badArg(t, fn, 'size', `must be a power of two, got ${n}`)
  qq.limits.physical_block_size = Math.max(n, qq.limits.logical_block_size)
}

/** `blk_queue_max_hw_sectors(q, max)`: the largest request, in 512-byte sectors (at least a page; Linux raises smaller values). */
export function blk_queue_max_hw_sectors(q: RequestQueue, max_hw_sectors: number): void {
  const { t } = blkCall('blk_queue_max_hw_sectors')
  const fn = 'blk_queue_max_hw_sectors'
  const qq = queueArg(t, fn, q)
  let n = intArg(t, fn, 'max_hw_sectors', max_hw_sectors)
  if (n < PAGE_SECTORS) {
    n = PAGE_SECTORS
    info(t, fn, `set to minimum ${n}`)
  }
  const lbs = qq.limits.logical_block_size >> SECTOR_SHIFT
  n -= n % lbs
  qq.limits.max_hw_sectors = n
  qq.limits.max_sectors = Math.min(n, BLK_DEF_MAX_SECTORS_CAP)
  qq.limits.max_sectors -= qq.limits.max_sectors % lbs
}

/** `blk_queue_max_segments(q, max)`: the most DMA segments a request may have. */
export function blk_queue_max_segments(q: RequestQueue, max_segments: number): void {
  const { t } = blkCall('blk_queue_max_segments')
  const fn = 'blk_queue_max_segments'
  const qq = queueArg(t, fn, q)
  let n = intArg(t, fn, 'max_segments', max_segments)
  if (n === 0) {
    n = 1
    info(t, fn, `set to minimum ${n}`)
  }
  qq.limits.max_segments = Math.min(n, 0xffff)
}

/** `blk_queue_max_segment_size(q, max)`: the largest DMA segment, in bytes (at least a page). */
export function blk_queue_max_segment_size(q: RequestQueue, max_size: number): void {
  const { t } = blkCall('blk_queue_max_segment_size')
  const fn = 'blk_queue_max_segment_size'
  const qq = queueArg(t, fn, q)
  let n = intArg(t, fn, 'max_size', max_size)
  if (n < PAGE_SIZE) {
    n = PAGE_SIZE
    info(t, fn, `set to minimum ${n}`)
  }
  if (qq.limits.virt_boundary_mask === 0) qq.limits.max_segment_size = n
}

/** `blk_queue_segment_boundary(q, mask)`: a segment never crosses a (mask + 1) boundary. */
export function blk_queue_segment_boundary(q: RequestQueue, mask: number): void {
  const { t } = blkCall('blk_queue_segment_boundary')
  const fn = 'blk_queue_segment_boundary'
  const qq = queueArg(t, fn, q)
  let n = intArg(t, fn, 'mask', mask)
  if (!isMask(n)) badArg(t, fn, 'mask', `must be 2^n - 1, got ${n}`)
  if (n < PAGE_SIZE - 1) {
    n = PAGE_SIZE - 1
    info(t, fn, `set to minimum ${n}`)
  }
  qq.limits.seg_boundary_mask = n
}

/**
 * `blk_queue_virt_boundary(q, mask)`: segments may not leave gaps at (mask + 1) boundaries: every
 * segment but the first starts on one and every segment but the last ends on one (NVMe PRPs set
 * NVME_CTRL_PAGE_SIZE - 1). The block layer splits bios that would break it. Lifts the segment
 * size limit, as Linux does.
 */
export function blk_queue_virt_boundary(q: RequestQueue, mask: number): void {
  const { t } = blkCall('blk_queue_virt_boundary')
  const fn = 'blk_queue_virt_boundary'
  const qq = queueArg(t, fn, q)
  const n = intArg(t, fn, 'mask', mask)
  if (n !== 0 && (!isMask(n) || n >= PAGE_SIZE)) badArg(t, fn, 'mask', `must be 0 or 2^n - 1 below the page size, got ${n}`)
  qq.limits.virt_boundary_mask = n
  if (n !== 0) qq.limits.max_segment_size = UINT_MAX
}

/** `blk_queue_dma_alignment(q, mask)`: data buffers must be aligned to mask + 1 bytes (default 511). */
export function blk_queue_dma_alignment(q: RequestQueue, mask: number): void {
  const { t } = blkCall('blk_queue_dma_alignment')
  const fn = 'blk_queue_dma_alignment'
  const qq = queueArg(t, fn, q)
  const n = intArg(t, fn, 'mask', mask)
  if (!isMask(n) || n >= PAGE_SIZE) badArg(t, fn, 'mask', `must be 2^n - 1 below the page size, got ${n}`)
  qq.limits.dma_alignment = n
}

/** `blk_queue_max_write_zeroes_sectors(q, max)`: REQ_OP_WRITE_ZEROES reaches the driver when non-zero. */
export function blk_queue_max_write_zeroes_sectors(q: RequestQueue, max_sectors: number): void {
  const { t } = blkCall('blk_queue_max_write_zeroes_sectors')
  const fn = 'blk_queue_max_write_zeroes_sectors'
  queueArg(t, fn, q).limits.max_write_zeroes_sectors = intArg(t, fn, 'max_sectors', max_sectors)
}

/** `blk_queue_max_discard_sectors(q, max)`: REQ_OP_DISCARD reaches the driver when non-zero. */
export function blk_queue_max_discard_sectors(q: RequestQueue, max_sectors: number): void {
  const { t } = blkCall('blk_queue_max_discard_sectors')
  const fn = 'blk_queue_max_discard_sectors'
  queueArg(t, fn, q).limits.max_discard_sectors = intArg(t, fn, 'max_sectors', max_sectors)
}

/**
 * `blk_queue_write_cache(q, wc, fua)`: the device has a volatile write cache (flushes then reach
 * the driver as REQ_OP_FLUSH) and supports FUA writes (REQ_FUA reaches it; without FUA support the
 * block layer follows a FUA write with a flush). Without a write cache, neither reaches the driver.
 */
export function blk_queue_write_cache(q: RequestQueue, wc: boolean, fua: boolean): void {
  const { t } = blkCall('blk_queue_write_cache')
  const fn = 'blk_queue_write_cache'
  const qq = queueArg(t, fn, q)
  if (typeof wc !== 'boolean') badArg(t, fn, 'wc', `must be a boolean, got ${typeof wc}`)
  if (typeof fua !== 'boolean') badArg(t, fn, 'fua', `must be a boolean, got ${typeof fua}`)
  let f = qq.limits.features & ~(BLK_FEAT_WRITE_CACHE | BLK_FEAT_FUA)
  if (wc) f |= BLK_FEAT_WRITE_CACHE
  if (wc && fua) f |= BLK_FEAT_FUA
  qq.limits.features = f
}

/** `blk_queue_rq_timeout(q, timeout)`: the request timeout, in jiffies. */
export function blk_queue_rq_timeout(q: RequestQueue, timeout: number): void {
  const { t } = blkCall('blk_queue_rq_timeout')
  const fn = 'blk_queue_rq_timeout'
  const qq = queueArg(t, fn, q)
  const n = intArg(t, fn, 'timeout', timeout)
  if (n === 0) badArg(t, fn, 'timeout', 'must be at least one jiffy')
  qq.rq_timeout = n
}

/** `queue_limits_start_update(q)`: a copy of the queue's limits to change and commit. */
export function queue_limits_start_update(q: RequestQueue): QueueLimits {
  const { t } = blkCall('queue_limits_start_update')
  return { ...queueArg(t, 'queue_limits_start_update', q).limits }
}

/** `queue_limits_commit_update(q, lim)`: validates and applies lim; 0 or -EINVAL (the queue keeps its limits). */
export function queue_limits_commit_update(q: RequestQueue, lim: QueueLimits): number {
  const { t } = blkCall('queue_limits_commit_update')
  const qq = queueArg(t, 'queue_limits_commit_update', q)
  if (typeof lim !== 'object' || lim === null) badArg(t, 'queue_limits_commit_update', 'lim', 'must be a struct queue_limits')
  const why: string[] = []
  const v = validateLimits(lim, why)
  if (typeof v === 'number') {
    ;(t.sys as RequestQueue['_sys']).logger.warn({ task: t.toString() }, `queue_limits_commit_update: ${why.join('; ')}`)
    return v
  }
  Object.assign(qq.limits, v)
  return 0
}

/** `blk_queue_flag_set`-era helper: whether the queue has a volatile write cache. */
export function blk_queue_write_cache_enabled(q: RequestQueue): boolean {
  return (q.limits.features & BLK_FEAT_WRITE_CACHE) !== 0
}

/** Whether REQ_FUA reaches the driver. */
export function blk_queue_fua(q: RequestQueue): boolean {
  return (q.limits.features & BLK_FEAT_FUA) !== 0
}
