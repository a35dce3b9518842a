/**
 * Cache flushes and FUA (block/blk-flush.c). What reaches the driver depends on what the queue
 * declared with blk_queue_write_cache(q, wc, fua) (or BLK_FEAT_WRITE_CACHE / BLK_FEAT_FUA):
 *
 * | queue                  | empty flush (REQ_PREFLUSH / REQ_OP_FLUSH) | write + REQ_PREFLUSH          | write + REQ_FUA                 |
 * |------------------------|-------------------------------------------|-------------------------------|---------------------------------|
 * | no write cache         | ends at once, BLK_STS_OK                  | the write alone               | the write alone (no REQ_FUA)    |
 * | write cache, no FUA    | REQ_OP_FLUSH                              | REQ_OP_FLUSH, then the write  | the write, then REQ_OP_FLUSH    |
 * | write cache and FUA    | REQ_OP_FLUSH                              | REQ_OP_FLUSH, then the write  | the write with REQ_FUA          |
 *
 * A sequence of several steps runs in a kblockd task: each step is submitted when the previous
 * one has ended, and the bio ends with the first error. (Linux also merges concurrent flushes
 * into one; dmalab sends each.)
 */

import { current } from '../sched/current.js'
import { init_waitqueue_head, wait_event } from '../sched/time.js'
import type { System } from '../system.js'
import { Bio, bio_endio } from './bio.js'
import { BLK_STS_OK, REQ_FUA, REQ_OP_FLUSH, REQ_OP_MASK, REQ_PREFLUSH, REQ_SYNC, type blk_opf_t } from './blk_types.js'
import { wakeAll } from './blk-mq.js'
import { issueBio } from './blk-core.js'
import type { RequestQueue } from './request.js'

/** The steps of a flush sequence (REQ_FSEQ_PREFLUSH, REQ_FSEQ_DATA, REQ_FSEQ_POSTFLUSH). */
export interface FlushPlan {
  preflush: boolean
  data: boolean
  postflush: boolean
  /** The data write's flags (REQ_FUA kept only when the queue supports it). */
  dataOpf: blk_opf_t
}

interface StepWait {
  done: boolean
  readonly wq: ReturnType<typeof init_waitqueue_head>
  readonly sys: System
}

function stepEndIo(bio: Bio): void {
  const w = bio.bi_private as StepWait
  w.done = true
  wakeAll(w.sys, w.wq)
}

/** Runs a flush sequence for bio in a kblockd task; bio ends when it is done (or at the first error). */
export function startFlushSequence(sys: System, q: RequestQueue, bio: Bio, plan: FlushPlan): void {
  sys.spawnTask('kblockd', async () => {
    const t = current('blk_flush_work')
    const wait: StepWait = { done: false, wq: init_waitqueue_head(), sys }
    const steps: ('flush' | 'data')[] = []
    if (plan.preflush) steps.push('flush')
    if (plan.data) steps.push('data')
    if (plan.postflush) steps.push('flush')
    for (const step of steps) {
      const child = flushStepBio(bio, step, plan)
      child.bi_end_io = stepEndIo
      child.bi_private = wait
      wait.done = false
      await issueBio(t, q, child, child.bi_opf, false)
      await wait_event(wait.wq, () => wait.done)
      if (child.bi_status !== BLK_STS_OK) {
        bio.bi_status = child.bi_status
        break
      }
    }
    bio_endio(bio)
  })
}

function flushStepBio(parent: Bio, step: 'flush' | 'data', plan: FlushPlan): Bio {
  const b = new Bio(parent.bi_vcnt)
  b.bi_bdev = parent.bi_bdev
  b.bi_cpu = parent.bi_cpu
  if (step === 'flush') {
    b.bi_opf = REQ_OP_FLUSH | REQ_SYNC
    b.bi_iter.bi_sector = 0
    return b
  }
  b.bi_opf = plan.dataOpf
  b.bi_iter.bi_sector = parent.bi_iter.bi_sector
  b.bi_iter.bi_size = parent.bi_iter.bi_size
  b.bi_io_vec = parent.bi_io_vec.slice(0, parent.bi_vcnt)
  b.bi_vcnt = parent.bi_vcnt
  return b
}

/**
 * The flush policy of a bio with data (blk_flush_policy): null when it goes down the ordinary path
 * (its flags adjusted by the caller), or the steps of a sequence.
 */
export function flushPolicy(opf: blk_opf_t, hasData: boolean, wc: boolean, fuaOk: boolean): FlushPlan | null {
  const op = opf & REQ_OP_MASK
  const preflush = wc && ((opf & REQ_PREFLUSH) !== 0 || op === REQ_OP_FLUSH)
  const fua = wc && (opf & REQ_FUA) !== 0
  const base = opf & ~(REQ_PREFLUSH | REQ_FUA)
  const dataOpf = base | (fua && fuaOk ? REQ_FUA : 0)
  if (!hasData) return null
  if (!preflush && !(fua && !fuaOk)) return null
  return { preflush, data: true, postflush: fua && !fuaOk, dataOpf }
}
