/**
 * Splitting bios to the queue limits and mapping requests to scatterlists (block/blk-merge.c
 * bio_split_rw_at / __blk_rq_map_sg, block/blk.h biovec_phys_mergeable / bvec_gap_to_prev).
 *
 * A bio is cut into pieces that each fit one request: at most max_sectors, at most max_segments
 * physical segments of at most max_segment_size bytes, none crossing the segment boundary, and —
 * behind a virtual boundary (NVMe PRPs) — no gap between two pieces of data (a piece that does
 * not end on the boundary followed by one that does not start on it). Adjacent data pieces that
 * are physically contiguous merge into one segment, as Linux merges them, so
 * blk_rq_nr_phys_segments(rq) can be smaller than the number of bio_vecs.
 */

import { Scatterlist, for_each_sg } from '../dma/scatterlist.js'
import { badArg } from '../mm/memory.js'
import { PAGE_SIZE } from '../types.js'
import type { BioVec } from './bio.js'
import { SECTOR_SHIFT } from './blk_types.js'
import { Request, RequestQueue, type QueueLimits } from './request.js'
import { blkCall } from './state.js'

/** One request's worth of a bio. */
export interface BioPiece {
  /** Start sector. */
  sector: number
  bytes: number
  bvecs: BioVec[]
  segments: number
}

function physStart(bv: BioVec): number {
  return bv.bv_page.pfn * PAGE_SIZE + bv.bv_offset
}

/** Whether the piece b can extend a segment ending with a (biovec_phys_mergeable), given the segment's start and length. */
function mergeable(lim: QueueLimits, segStart: number, segLen: number, a: BioVec, b: BioVec): boolean {
  const aEnd = physStart(a) + a.bv_len
  const bStart = physStart(b)
  if (aEnd !== bStart) return false
  if (segLen + b.bv_len > lim.max_segment_size) return false
  const mask = lim.seg_boundary_mask
  // The merged segment must not cross a (mask + 1) boundary: same high bits at both ends.
  return Math.floor(segStart / (mask + 1)) === Math.floor((bStart + b.bv_len - 1) / (mask + 1))
}

/** Whether b after a leaves a gap at the virtual boundary (bvec_gap_to_prev). */
function gap(lim: QueueLimits, a: BioVec, b: BioVec): boolean {
  const m = lim.virt_boundary_mask
  if (m === 0) return false
  return ((a.bv_offset + a.bv_len) & m) !== 0 || (b.bv_offset & m) !== 0
}

/** The number of physical segments of a list of pieces under the limits. */
export function countSegments(lim: QueueLimits, bvecs: readonly BioVec[]): number {
  let n = 0
  let segStart = 0
  let segLen = 0
  let prev: BioVec | null = null
  for (const bv of bvecs) {
    if (prev !== null && mergeable(lim, segStart, segLen, prev, bv)) segLen += bv.bv_len
    else {
      n++
      segStart = physStart(bv)
      segLen = bv.bv_len
    }
    prev = bv
  }
  return n
}

/** The state of a split in progress (no closures: it runs for every multi-page I/O). */
interface SplitState {
  readonly lim: QueueLimits
  readonly pieces: BioPiece[]
  cur: BioPiece
  segStart: number
  segLen: number
  prev: BioVec | null
}

function closePiece(st: SplitState): void {
  const cur = st.cur
  st.pieces.push(cur)
  st.cur = { sector: cur.sector + (cur.bytes >> SECTOR_SHIFT), bytes: 0, bvecs: [], segments: 0 }
  st.prev = null
}

function addPiece(st: SplitState, bv: BioVec): void {
  if (st.prev !== null && mergeable(st.lim, st.segStart, st.segLen, st.prev, bv)) st.segLen += bv.bv_len
  else {
    st.cur.segments++
    st.segStart = physStart(bv)
    st.segLen = bv.bv_len
  }
  st.cur.bvecs.push(bv)
  st.cur.bytes += bv.bv_len
  st.prev = bv
}

/**
 * Cuts a bio's data (bvecs, starting at sector) into request-sized pieces under q's limits.
 * Every bvec's length is a whole number of logical blocks, so every cut is too.
 */
export function splitToLimits(lim: QueueLimits, sector: number, bvecs: readonly BioVec[], totalBytes: number): BioPiece[] {
  const maxBytes = lim.max_sectors << SECTOR_SHIFT
  // The fast path: one piece that fits (the common 4 KiB I/O).
  if (bvecs.length === 1 && totalBytes <= maxBytes) return [{ sector, bytes: totalBytes, bvecs: [bvecs[0]!], segments: 1 }]
  const st: SplitState = { lim, pieces: [], cur: { sector, bytes: 0, bvecs: [], segments: 0 }, segStart: 0, segLen: 0, prev: null }
  for (const whole of bvecs) {
    let bv: BioVec = whole
    for (;;) {
      if (st.prev !== null && gap(lim, st.prev, bv)) closePiece(st)
      const merges = st.prev !== null && mergeable(lim, st.segStart, st.segLen, st.prev, bv)
      if (!merges && st.cur.segments >= lim.max_segments) closePiece(st)
      const room = maxBytes - st.cur.bytes
      if (bv.bv_len > room) {
        // Cut the piece at the size limit (a whole number of logical blocks).
        addPiece(st, { bv_page: bv.bv_page, bv_offset: bv.bv_offset, bv_len: room })
        closePiece(st)
        bv = { bv_page: bv.bv_page, bv_offset: bv.bv_offset + room, bv_len: bv.bv_len - room }
        continue
      }
      addPiece(st, bv)
      if (st.cur.bytes === maxBytes) closePiece(st)
      break
    }
  }
  if (st.cur.bytes > 0) st.pieces.push(st.cur)
  return st.pieces
}

/**
 * `blk_rq_map_sg(q, rq, sglist)` (v6.15+: `blk_rq_map_sg(rq, sglist)`): fills the scatterlist with
 * the request's physical segments — physically contiguous pieces merged, as blk_rq_nr_phys_segments
 * counts them — and returns their number (0 for a request without data). The list must have at
 * least blk_rq_nr_phys_segments(rq) entries (sg_alloc_table / sg_init_table). Map the result with
 * dma_map_sg(dev, sglist, nents, rq_dma_dir(rq)).
 */
export function blk_rq_map_sg(q: RequestQueue | Request, rq: Request | Scatterlist, sglist?: Scatterlist): number {
  const { t } = blkCall('blk_rq_map_sg')
  let req: Request
  let sgl: Scatterlist | undefined
  if (q instanceof Request) {
    req = q
    sgl = rq as Scatterlist
  } else {
    if (!(rq instanceof Request)) badArg(t, 'blk_rq_map_sg', 'rq', 'must be a struct request')
    req = rq
    sgl = sglist
  }
  if (!(sgl instanceof Scatterlist)) badArg(t, 'blk_rq_map_sg', 'sglist', 'must be a scatterlist (sg_alloc_table(...).sgl or sg_init_table(n))')
  if (!req._allocated) badArg(t, 'blk_rq_map_sg', 'rq', `(tag ${req.tag}) is not an allocated request`)
  const lim = req.q.limits
  const bvecs = req._bvecs
  if (bvecs.length === 0) return 0
  const it = for_each_sg(sgl, Number.MAX_SAFE_INTEGER)
  let sg: Scatterlist | null = null
  let n = 0
  let segStart = 0
  let segLen = 0
  let prev: BioVec | null = null
  for (const bv of bvecs) {
    if (prev !== null && sg !== null && mergeable(lim, segStart, segLen, prev, bv)) {
      segLen += bv.bv_len
      sg.length = segLen
    } else {
      const next = it.next()
      if (next.done === true) badArg(t, 'blk_rq_map_sg', 'sglist', `has ${n} entries but the request has ${req.nr_phys_segments} segments`)
      sg = next.value
      sg.page = bv.bv_page
      sg.offset = bv.bv_offset
      sg.length = bv.bv_len
      segStart = physStart(bv)
      segLen = bv.bv_len
      n++
    }
    prev = bv
  }
  return n
}

/** `__blk_rq_map_sg`-style count without a list: the segments blk_rq_map_sg would produce. */
export function blk_rq_count_segments(rq: Request): number {
  return countSegments(rq.q.limits, rq._bvecs)
}
