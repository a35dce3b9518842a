/**
 * Submitting bios (block/blk-core.c submit_bio / submit_bio_noacct / submit_bio_wait,
 * block/blk-mq.c blk_mq_submit_bio): the checks Linux makes on a bio (the disk is live, the
 * operation is supported, the range is inside the disk, sizes are whole logical blocks, writes to
 * a read-only disk), the flush/FUA policy (blk-flush.ts), entering the queue (waiting while it is
 * frozen), splitting to the queue limits (blk-merge.ts), allocating a request per piece (sleeping
 * for a free tag) and handing each to its hardware queue — directly to queue_rq when the hw queue
 * is idle, or held in the task's plug (blk_start_plug).
 *
 * `submit_bio` sleeps only while it waits for the queue or a tag (REQ_NOWAIT makes it fail with
 * BLK_STS_AGAIN instead); it returns once the bio is handed over. The bio ends later: bi_end_io
 * runs in the context the driver ends the request in.
 */

import { badArg } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import { mightSleep } from '../sched/might-sleep.js'
import { init_waitqueue_head, wait_event } from '../sched/time.js'
import type { System } from '../system.js'
import { Bio, bio_endio, type BioVec } from './bio.js'
import {
  BLK_FEAT_FUA,
  BLK_FEAT_WRITE_CACHE,
  BLK_STS_AGAIN,
  BLK_STS_INVAL,
  BLK_STS_IOERR,
  BLK_STS_NOTSUPP,
  BLK_STS_OK,
  REQ_FUA,
  REQ_NOWAIT,
  REQ_OP_DISCARD,
  REQ_OP_FLUSH,
  REQ_OP_MASK,
  REQ_OP_READ,
  REQ_OP_SECURE_ERASE,
  REQ_OP_WRITE,
  REQ_OP_WRITE_ZEROES,
  REQ_PREFLUSH,
  SECTOR_SHIFT,
  SECTOR_SIZE,
  blk_op_str,
  blk_status_to_errno,
  op_is_write,
  type blk_opf_t,
  type blk_status_t,
} from './blk_types.js'
import { flushPolicy, startFlushSequence } from './blk-flush.js'
import { splitToLimits, type BioPiece } from './blk-merge.js'
import { getRequest, insertRequest, queueEnter, queueExit, wakeAll } from './blk-mq.js'
import { Gendisk } from './genhd.js'
import type { RequestQueue } from './request.js'
import { blockState, blkWarnOnce } from './state.js'

/** Ends bio with status (bio_io_error and friends). */
function fail(bio: Bio, status: blk_status_t): void {
  bio.bi_status = status
  bio_endio(bio)
}

/**
 * `submit_bio(bio)`: hands a bio to the block layer. Process context: it may sleep while the
 * queue is frozen or no tag is free (not with REQ_NOWAIT). Errors end the bio (bi_end_io with
 * bi_status set) rather than being returned.
 */
export async function submit_bio(bio: Bio): Promise<void> {
  const t = current('submit_bio')
  if (!(bio instanceof Bio)) badArg(t, 'submit_bio', 'bio', `must be a struct bio from bio_alloc(), got ${bio === null ? 'NULL' : typeof bio}`)
  await submitBio(t, bio)
}

/**
 * `submit_bio_wait(bio)`: submits the bio and sleeps until it ends; 0 or the negative errno of its
 * status. Process context.
 */
export async function submit_bio_wait(bio: Bio): Promise<number> {
  const t = current('submit_bio_wait')
  if (!(bio instanceof Bio)) badArg(t, 'submit_bio_wait', 'bio', `must be a struct bio from bio_alloc(), got ${bio === null ? 'NULL' : typeof bio}`)
  if (!mightSleep(t, 'submit_bio_wait')) return blk_status_to_errno(BLK_STS_AGAIN)
  const sys = t.sys as System
  const wait = { done: false, wq: init_waitqueue_head() }
  bio.bi_end_io = () => {
    wait.done = true
    wakeAll(sys, wait.wq)
  }
  await submitBio(t, bio)
  await wait_event(wait.wq, () => wait.done)
  return blk_status_to_errno(bio.bi_status)
}

/** submit_bio without the argument check: the checks of submit_bio_noacct, then the flush policy or issueBio. */
export async function submitBio(t: Task, bio: Bio): Promise<void> {
  const sys = t.sys as System
  let nowait = (bio.bi_opf & REQ_NOWAIT) !== 0
  if (!nowait && t.atomic) {
    mightSleep(t, 'submit_bio')
    nowait = true
  }
  bio._ended = false
  const disk = bio.bi_bdev
  if (!(disk instanceof Gendisk) || disk._sys !== sys) badArg(t, 'submit_bio', 'bio.bi_bdev', 'must be a gendisk of this system')
  if (disk._state === 'released') {
    sys.report({ kind: 'use-after-free', message: `BUG: KASAN: use-after-free in submit_bio(): the gendisk ${disk.disk_name} was released by put_disk()` })
    fail(bio, BLK_STS_IOERR)
    return
  }
  if (disk._state !== 'added') {
    fail(bio, BLK_STS_IOERR)
    return
  }
  const q = disk.queue
  const lim = q.limits
  const opf = bio.bi_opf
  const op = opf & REQ_OP_MASK
  const sector = bio.bi_iter.bi_sector
  const bytes = bio.bi_iter.bi_size
  if (!Number.isSafeInteger(sector) || sector < 0) badArg(t, 'submit_bio', 'bio.bi_iter.bi_sector', `must be a sector number, got ${String(sector)}`)
  if (!Number.isSafeInteger(bytes) || bytes < 0) badArg(t, 'submit_bio', 'bio.bi_iter.bi_size', `must be a byte count, got ${String(bytes)}`)
  const bs = blockState(sys)
  switch (op) {
    case REQ_OP_READ:
    case REQ_OP_WRITE:
    case REQ_OP_FLUSH:
      break
    case REQ_OP_WRITE_ZEROES:
      if (lim.max_write_zeroes_sectors === 0) {
        fail(bio, BLK_STS_NOTSUPP)
        return
      }
      break
    case REQ_OP_DISCARD:
    case REQ_OP_SECURE_ERASE:
      if (lim.max_discard_sectors === 0) {
        fail(bio, BLK_STS_NOTSUPP)
        return
      }
      break
    default:
      fail(bio, BLK_STS_NOTSUPP)
      return
  }
  if (op_is_write(opf) && disk._ro && bytes > 0) {
    blkWarnOnce(bs, `ro:${disk.disk_name}`, `Trying to write to read-only block-device ${disk.disk_name}`)
    fail(bio, BLK_STS_IOERR)
    return
  }
  if (sector + bytes / SECTOR_SIZE > disk._capacity || (bytes > 0 && sector >= disk._capacity)) {
    sys.logger.info({ disk: disk.disk_name }, `${blk_op_str(op)}: attempt to access beyond end of device ${disk.disk_name}: sector ${sector}, nr_sectors ${bytes / SECTOR_SIZE} limit ${disk._capacity}`)
    fail(bio, BLK_STS_IOERR)
    return
  }
  const lbs = lim.logical_block_size
  if (bytes % lbs !== 0 || ((sector * SECTOR_SIZE) % lbs !== 0 && bytes > 0)) {
    fail(bio, BLK_STS_INVAL)
    return
  }
  const hasData = op === REQ_OP_READ || op === REQ_OP_WRITE
  if (hasData) {
    if (op === REQ_OP_READ && bytes === 0) {
      fail(bio, BLK_STS_INVAL)
      return
    }
    let sum = 0
    for (let i = 0; i < bio.bi_vcnt; i++) {
      const bv = bio.bi_io_vec[i]
      if (bv === undefined || bv.bv_len % lbs !== 0 || (bv.bv_offset & lim.dma_alignment) !== 0) {
        fail(bio, BLK_STS_INVAL)
        return
      }
      sum += bv.bv_len
    }
    if (sum !== bytes) {
      fail(bio, BLK_STS_INVAL)
      return
    }
  } else if (op === REQ_OP_FLUSH && bytes !== 0) {
    fail(bio, BLK_STS_INVAL)
    return
  }
  // Flushes and FUA (blk-flush.ts).
  const wc = (lim.features & BLK_FEAT_WRITE_CACHE) !== 0
  const fuaOk = (lim.features & BLK_FEAT_FUA) !== 0
  const wantsFlush = op === REQ_OP_FLUSH || (opf & REQ_PREFLUSH) !== 0
  let issueOpf = opf & ~(REQ_PREFLUSH | REQ_FUA)
  if (bytes === 0 && (op === REQ_OP_FLUSH || op === REQ_OP_WRITE)) {
    // An empty flush: REQ_OP_FLUSH to a write-back cache, nothing to do without one.
    if (!wantsFlush || !wc) {
      fail(bio, BLK_STS_OK)
      return
    }
    issueOpf = REQ_OP_FLUSH | (issueOpf & ~REQ_OP_MASK)
  } else if (op === REQ_OP_WRITE) {
    const plan = flushPolicy(opf, true, wc, fuaOk)
    if (plan !== null) {
      startFlushSequence(sys, q, bio, plan)
      return
    }
    if (wc && fuaOk && (opf & REQ_FUA) !== 0) issueOpf |= REQ_FUA
  }
  await issueBio(t, q, bio, issueOpf, nowait)
}

/**
 * Enters the queue, splits the bio to the limits and issues a request per piece with flags opf.
 * The bio ends when all its pieces have.
 */
export async function issueBio(t: Task, q: RequestQueue, bio: Bio, opf: blk_opf_t, nowait: boolean): Promise<void> {
  if (!(await queueEnter(q, nowait))) {
    fail(bio, nowait && q._state === 'live' ? BLK_STS_AGAIN : BLK_STS_IOERR)
    return
  }
  const op = opf & REQ_OP_MASK
  const sector = bio.bi_iter.bi_sector
  const bytes = bio.bi_iter.bi_size
  let pieces: BioPiece[]
  if (op === REQ_OP_READ || op === REQ_OP_WRITE) {
    const bvecs = bio.bi_vcnt === bio.bi_io_vec.length ? bio.bi_io_vec : bio.bi_io_vec.slice(0, bio.bi_vcnt)
    pieces = splitToLimits(q.limits, sector, bvecs, bytes)
  } else pieces = splitNoData(q, op, sector, bytes)
  const many = pieces.length > 1
  if (many) bio._remaining += pieces.length - 1
  for (const piece of pieces) {
    let target = bio
    if (many) {
      target = new Bio(0)
      target.bi_bdev = bio.bi_bdev
      target.bi_opf = opf
      target.bi_cpu = bio.bi_cpu
      target.bi_iter.bi_sector = piece.sector
      target.bi_iter.bi_size = piece.bytes
      target.bi_io_vec = piece.bvecs
      target.bi_vcnt = piece.bvecs.length
      target._parent = bio
    }
    const rq = await getRequest(t, q, bio.bi_cpu, opf, false, nowait)
    if (rq === null) {
      fail(target, nowait && q._state === 'live' ? BLK_STS_AGAIN : BLK_STS_IOERR)
      continue
    }
    rq.__sector = piece.sector
    rq.__data_len = piece.bytes
    rq._bvecs = piece.bvecs
    rq.nr_phys_segments = piece.segments
    rq.bio = target
    insertRequest(t, rq, false)
  }
  queueExit(q)
}

/** Pieces of a request without data (flush, write-zeroes, discard): sized by the operation's limit. */
function splitNoData(q: RequestQueue, op: number, sector: number, bytes: number): BioPiece[] {
  if (bytes === 0) return [{ sector, bytes: 0, bvecs: [], segments: 0 }]
  const lim = q.limits
  const lbsSectors = lim.logical_block_size >> SECTOR_SHIFT
  let maxSectors = op === REQ_OP_WRITE_ZEROES ? lim.max_write_zeroes_sectors : lim.max_discard_sectors
  maxSectors = Math.max(lbsSectors, maxSectors - (maxSectors % lbsSectors))
  const pieces: BioPiece[] = []
  let s = sector
  let left = bytes / SECTOR_SIZE
  while (left > 0) {
    const n = Math.min(left, maxSectors)
    pieces.push({ sector: s, bytes: n * SECTOR_SIZE, bvecs: [], segments: 0 })
    s += n
    left -= n
  }
  return pieces
}

/** The data pieces of a bio, for callers that build bios by hand. */
export function bioVecs(bio: Bio): readonly BioVec[] {
  return bio.bi_io_vec.slice(0, bio.bi_vcnt)
}
