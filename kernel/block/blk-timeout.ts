/**
 * Request timeouts (block/blk-timeout.c blk_add_timer, block/blk-mq.c blk_mq_timeout_work /
 * blk_mq_rq_timed_out). blk_mq_start_request gives a request its deadline (now + rq.timeout,
 * the queue's rq_timeout: 30 s unless the tag set or blk_queue_rq_timeout says otherwise). One
 * timer per queue is armed for the earliest deadline, rounded up to a jiffy; when it fires, a
 * kblockd work item finds the requests still in flight past their deadline and calls the driver's
 * ops.timeout for each, in a process-context task of its own (kblockd), where it may sleep:
 *
 * - BLK_EH_DONE: the driver has ended the request or will (blk_mq_complete_request after an
 *   abort or a reset);
 * - BLK_EH_RESET_TIMER: the request gets a new deadline;
 * - a driver without ops.timeout gets a new deadline too, as in Linux.
 *
 * A request completed meanwhile (blk_mq_complete_request) is never timed out. Unlike Linux, the
 * harness cancels a queue's timer once nothing is in flight at the end of its calls, so an idle
 * system goes idle (sys.runUntilIdle does not run to the next 30 s deadline).
 */

import { current } from '../sched/current.js'
import { HZ } from '../types.js'
import { BLK_EH_DONE, BLK_EH_RESET_TIMER, MQ_RQ_IN_FLIGHT, RQF_TIMED_OUT } from './blk_types.js'
import { queueRequests } from './blk-mq.js'
import type { Request, RequestQueue } from './request.js'
import { blockState, blkWarnOnce } from './state.js'

const NS_PER_JIFFY = 1e9 / HZ

/** `blk_add_timer(rq)`: rq's deadline is now + its timeout; the queue's timer covers it. */
export function blkAddTimer(rq: Request): void {
  const q = rq.q
  const clock = q._sys.machine.clock
  rq.deadline = clock.now + rq.timeout * NS_PER_JIFFY
  armTimer(q, rq.deadline)
}

function armTimer(q: RequestQueue, deadline: number): void {
  const at = Math.ceil(deadline / NS_PER_JIFFY) * NS_PER_JIFFY
  const tm = q._timer
  if (tm !== null && !tm.cancelled && tm.at <= at) return
  if (tm !== null) tm.cancelled = true
  q._timer = q._sys.machine.clock.schedule(at, () => {
    q._timer = null
    if (q._state === 'dead' || q._timeoutQueued) return
    q._timeoutQueued = true
    q._sys.spawnTask('kblockd', () => timeoutWork(q))
  })
}

/** Cancels the queue's timer when none of its requests is in flight. */
export function blkCancelIdleTimer(q: RequestQueue): void {
  if (q._timer === null || q._inflight > 0) return
  q._timer.cancelled = true
  q._timer = null
}

/** `blk_mq_timeout_work`: finds the expired requests; each gets ops.timeout in a kblockd task. */
function timeoutWork(q: RequestQueue): void {
  q._timeoutQueued = false
  current('blk_mq_timeout_work')
  const now = q._sys.machine.clock.now
  let next = Number.POSITIVE_INFINITY
  const ops = q.mq_ops
  for (const rq of queueRequests(q)) {
    if (rq.state !== MQ_RQ_IN_FLIGHT) continue
    if (rq.deadline > now) {
      next = Math.min(next, rq.deadline)
      continue
    }
    rq.rq_flags |= RQF_TIMED_OUT
    q.stats.timeouts++
    if (ops.timeout === undefined) {
      rq.deadline = now + rq.timeout * NS_PER_JIFFY
      next = Math.min(next, rq.deadline)
      continue
    }
    const gen = rq._gen
    q._sys.spawnTask('kblockd', () => timedOut(q, rq, gen))
  }
  if (next !== Number.POSITIVE_INFINITY && q._state !== 'dead') armTimer(q, next)
}

/** `blk_mq_rq_timed_out`: the driver's timeout handler for one request (process context, may sleep). */
async function timedOut(q: RequestQueue, rq: Request, gen: number): Promise<void> {
  current('blk_mq_rq_timed_out')
  if (!rq._allocated || rq._gen !== gen || rq.state !== MQ_RQ_IN_FLIGHT) return
  const ops = q.mq_ops
  let ret: unknown = ops.timeout!.call(ops, rq)
  if (ret instanceof Promise) ret = await ret
  if (!rq._allocated || rq._gen !== gen) return
  if (ret === BLK_EH_DONE) return
  if (ret !== BLK_EH_RESET_TIMER) {
    blkWarnOnce(blockState(q._sys), `timeout-ret:${String(ret)}`, `WARNING: ops.timeout returned ${String(ret)}: not BLK_EH_DONE or BLK_EH_RESET_TIMER (the timer is reset)`)
  }
  if (rq.state === MQ_RQ_IN_FLIGHT) blkAddTimer(rq)
}
