/**
 * NAPI (include/linux/netdevice.h, net/core/dev.c): interrupt mitigation by polling. A driver's
 * hard-IRQ handler masks the device's interrupt and calls napi_schedule(); the NET_RX softirq then
 * calls the driver's `poll(napi, budget)` in softirq context (atomic), which processes at most
 * `budget` frames and, when it did less, calls napi_complete_done() and unmasks the interrupt.
 *
 * net_rx_action (one NET_RX softirq run) polls the scheduled instances in turn, each with its
 * weight (64), until the device budget of the run (netdev_budget, 300) is spent. An instance that
 * used its whole weight is polled again, after the others (the repoll list); work left when the
 * budget is spent is counted as a time squeeze and re-raises NET_RX, which the softirq code runs
 * again (bounded) or hands to ksoftirqd (see softirq.ts). Linux's 2 ms time limit of one
 * net_rx_action is left out; the softirq run's own 2 ms bound applies.
 *
 * The state bits follow Linux: a NAPI instance starts disabled (SCHED and NPSVC set by
 * netif_napi_add); napi_enable clears them; napi_schedule_prep sets SCHED, or MISSED when it was
 * already set (the poll then runs once more after napi_complete_done); napi_disable waits for
 * SCHED to clear and takes it.
 */

import type { Task } from '../sched/current.js'
import { mightSleep } from '../sched/might-sleep.js'
import { init_waitqueue_head, wait_event, wake_up, type WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import { NetDevice, checkNetdev, netdevOnce } from './netdevice.js'
import { NET_RX_SOFTIRQ, call_driver_atomic, open_net_softirq, raise_net_softirq } from './softirq.js'
import { netBadArg, netCall, type NetState } from './state.js'

/** The default (and largest sensible) weight of a NAPI instance. */
export const NAPI_POLL_WEIGHT = 64
/** Frames one NET_RX softirq run may process (net.core.netdev_budget). */
export const NETDEV_BUDGET = 300

export const NAPI_STATE_SCHED = 0
export const NAPI_STATE_MISSED = 1
export const NAPI_STATE_DISABLE = 2
export const NAPI_STATE_NPSVC = 3
export const NAPI_STATE_LISTED = 4
export const NAPIF_STATE_SCHED = 1 << NAPI_STATE_SCHED
export const NAPIF_STATE_MISSED = 1 << NAPI_STATE_MISSED
export const NAPIF_STATE_DISABLE = 1 << NAPI_STATE_DISABLE
export const NAPIF_STATE_NPSVC = 1 << NAPI_STATE_NPSVC
export const NAPIF_STATE_LISTED = 1 << NAPI_STATE_LISTED

/** A NAPI poll function: process at most budget frames, return how many. Atomic context. */
export type NapiPoll = (napi: NapiStruct, budget: number) => number

/**
 * `struct napi_struct`, created by netif_napi_add(). A driver with several rings keeps one per
 * ring and finds its ring from the poll function's closure (C's container_of).
 */
export interface NapiStruct {
  /** NAPIF_STATE_* bits. */
  state: number
  weight: number
  poll: NapiPoll
  /** The device (null for the backlog of netif_rx). */
  dev: NetDevice | null
  /** @internal On the system's poll list. */
  _onList: boolean
  /** @internal napi_disable waits here. */
  _wq: WaitQueueHead
  /** @internal */
  _sys: System | null
}

// net.core sysctls, per system (the user-space harness may change them).
const budgets = new WeakMap<NetState, { netdev_budget: number; dev_weight: number; netdev_max_backlog: number }>()

/** The net.core sysctls of a system: netdev_budget, dev_weight (backlog), netdev_max_backlog. */
export function netSysctl(ns: NetState): { netdev_budget: number; dev_weight: number; netdev_max_backlog: number } {
  let b = budgets.get(ns)
  if (b === undefined) {
    b = { netdev_budget: NETDEV_BUDGET, dev_weight: NAPI_POLL_WEIGHT, netdev_max_backlog: 1000 }
    budgets.set(ns, b)
  }
  return b
}

function checkNapi(t: Task, fn: string, napi: unknown): NapiStruct {
  if (napi === null || typeof napi !== 'object' || typeof (napi as Partial<NapiStruct>).poll !== 'function' || (napi as Partial<NapiStruct>)._sys !== t.sys) {
    netBadArg(t, fn, 'napi', 'must be a napi_struct returned by netif_napi_add() on this system')
  }
  return napi as NapiStruct
}

/**
 * `netif_napi_add(dev, napi, poll, weight = 64)`: creates a NAPI instance for dev and returns it
 * (`const napi = netif_napi_add(netdev, null, my_poll)`; passing an object re-initialises it in
 * place). It starts disabled: call napi_enable() in ndo_open. A weight above 64 is logged.
 */
export function netif_napi_add(dev: NetDevice, napi: NapiStruct | null, poll: NapiPoll, weight: number = NAPI_POLL_WEIGHT): NapiStruct {
  const { t, sys } = netCall('netif_napi_add')
  const d = checkNetdev(t, 'netif_napi_add', dev)
  if (typeof poll !== 'function') netBadArg(t, 'netif_napi_add', 'poll', 'must be a function (napi, budget) => work_done')
  if (typeof weight !== 'number' || !Number.isInteger(weight) || weight <= 0) netBadArg(t, 'netif_napi_add', 'weight', `must be a positive integer, got ${String(weight)}`)
  if (napi !== null && (napi.state & NAPIF_STATE_LISTED) !== 0) {
    netdevOnce('error', d, `napi-listed-${d.name}`, 'WARNING: netif_napi_add() of a NAPI instance that is already added (netif_napi_del it first)')
    return napi
  }
  if (weight > NAPI_POLL_WEIGHT) netdevOnce('error', d, `napi-weight-${d.name}`, `netif_napi_add_weight() called with weight ${weight}`)
  const n = napi ?? ({} as NapiStruct)
  n.state = NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC | NAPIF_STATE_LISTED
  n.weight = weight
  n.poll = poll
  n.dev = d
  n._onList = false
  n._wq = init_waitqueue_head()
  n._sys = sys
  d._napis.push(n)
  return n
}

/** `netif_napi_add_weight(dev, napi, poll, weight)`. */
export const netif_napi_add_weight = netif_napi_add

/** `netif_napi_del(napi)`: removes a (disabled) NAPI instance from its device. */
export function netif_napi_del(napi: NapiStruct): void {
  const { t, ns } = netCall('netif_napi_del')
  const n = checkNapi(t, 'netif_napi_del', napi)
  if ((n.state & NAPIF_STATE_LISTED) === 0) return
  n.state &= ~NAPIF_STATE_LISTED
  if (n.dev !== null) {
    const i = n.dev._napis.indexOf(n)
    if (i >= 0) n.dev._napis.splice(i, 1)
  }
  if (n._onList) {
    ns.pollList = ns.pollList.filter((x) => x !== n)
    n._onList = false
  }
}

/** `__netif_napi_del(napi)`. */
export const __netif_napi_del = netif_napi_del

/** `napi_enable(napi)`: allows scheduling. Enabling an enabled instance is a BUG. */
export function napi_enable(napi: NapiStruct): void {
  const { t, sys } = netCall('napi_enable')
  const n = checkNapi(t, 'napi_enable', napi)
  if ((n.state & NAPIF_STATE_SCHED) === 0) sys.oops(t, `kernel BUG at net/core/dev.c: napi_enable: the NAPI instance of ${n.dev?.name ?? 'backlog'} is already enabled`)
  n.state &= ~(NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC)
}

/**
 * `napi_disable(napi)`: stops scheduling and waits until a scheduled or running poll has
 * completed (process context: it sleeps). A poll that keeps using its whole budget is completed by
 * the core once napi_disable is pending.
 */
export async function napi_disable(napi: NapiStruct): Promise<void> {
  const { t, sys } = netCall('napi_disable')
  const n = checkNapi(t, 'napi_disable', napi)
  if (!mightSleep(t, 'napi_disable')) return
  if ((n.state & NAPIF_STATE_NPSVC) !== 0 && (n.state & NAPIF_STATE_DISABLE) === 0) {
    sys.oops(t, `napi_disable: the NAPI instance of ${n.dev?.name ?? 'backlog'} is already disabled: this would wait forever (hung task)`)
  }
  n.state |= NAPIF_STATE_DISABLE
  await wait_event(n._wq, () => (n.state & (NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC)) === 0)
  n.state |= NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC
  n.state &= ~NAPIF_STATE_DISABLE
}

/**
 * `napi_schedule_prep(napi)`: claims the instance for polling; false if it is disabled, or
 * already scheduled (then the running poll is told it missed an event and runs once more).
 */
export function napi_schedule_prep(napi: NapiStruct): boolean {
  const { t } = netCall('napi_schedule_prep')
  return prep(checkNapi(t, 'napi_schedule_prep', napi))
}

function prep(n: NapiStruct): boolean {
  const val = n.state
  if ((val & NAPIF_STATE_DISABLE) !== 0) return false
  n.state = val | NAPIF_STATE_SCHED | ((val & NAPIF_STATE_SCHED) !== 0 ? NAPIF_STATE_MISSED : 0)
  return (val & NAPIF_STATE_SCHED) === 0
}

function schedule(ns: NetState, n: NapiStruct): void {
  if (!n._onList) {
    n._onList = true
    ns.pollList.push(n)
  }
  raise_net_softirq(ns, NET_RX_SOFTIRQ)
}

/** `__napi_schedule(napi)`: queues a prepared instance for polling and raises NET_RX. */
export function __napi_schedule(napi: NapiStruct): void {
  const { t, ns } = netCall('__napi_schedule')
  schedule(ns, checkNapi(t, '__napi_schedule', napi))
}
/** `__napi_schedule_irqoff(napi)`. */
export const __napi_schedule_irqoff = __napi_schedule

/**
 * `napi_schedule(napi)`: schedules the poll (from the hard-IRQ handler, usually). The poll runs
 * in the NET_RX softirq once the CPU may take softirqs: after the handler returns. Returns whether
 * this call scheduled it.
 */
export function napi_schedule(napi: NapiStruct): boolean {
  const { t, ns } = netCall('napi_schedule')
  const n = checkNapi(t, 'napi_schedule', napi)
  if (!prep(n)) return false
  schedule(ns, n)
  return true
}
/** `napi_schedule_irqoff(napi)`. */
export const napi_schedule_irqoff = napi_schedule

/** `napi_is_scheduled(napi)`. */
export function napi_is_scheduled(napi: NapiStruct): boolean {
  const { t } = netCall('napi_is_scheduled')
  return (checkNapi(t, 'napi_is_scheduled', napi).state & NAPIF_STATE_SCHED) !== 0
}

/**
 * `napi_complete_done(napi, work_done)`: the poll is done (it used less than its budget). Returns
 * true when the driver may re-enable the device's interrupt; false when the instance must stay
 * scheduled (an event was missed meanwhile: it is rescheduled) or is being disabled.
 */
export function napi_complete_done(napi: NapiStruct, work_done: number): boolean {
  const { t, ns } = netCall('napi_complete_done')
  const n = checkNapi(t, 'napi_complete_done', napi)
  if (typeof work_done !== 'number' || !Number.isInteger(work_done) || work_done < 0) netBadArg(t, 'napi_complete_done', 'work_done', `must be a non-negative integer, got ${String(work_done)}`)
  return complete(ns, n)
}

/** `napi_complete(napi)`: napi_complete_done(napi, 0). */
export function napi_complete(napi: NapiStruct): boolean {
  const { t, ns } = netCall('napi_complete')
  return complete(ns, checkNapi(t, 'napi_complete', napi))
}

function complete(ns: NetState, n: NapiStruct): boolean {
  if ((n.state & NAPIF_STATE_NPSVC) !== 0) return false
  if (n._onList) {
    ns.pollList = ns.pollList.filter((x) => x !== n)
    n._onList = false
  }
  const val = n.state
  if ((val & NAPIF_STATE_SCHED) === 0) {
    netdevOnce('error', n.dev, `napi-complete-unscheduled-${n.dev?.name ?? ''}`, 'WARNING: napi_complete_done() on a NAPI instance that is not scheduled (completed twice?)')
  }
  let next = val & ~(NAPIF_STATE_MISSED | NAPIF_STATE_SCHED)
  if ((val & NAPIF_STATE_MISSED) !== 0) next |= NAPIF_STATE_SCHED
  n.state = next
  if ((val & NAPIF_STATE_MISSED) !== 0) {
    schedule(ns, n)
    return false
  }
  wake_up(n._wq)
  return true
}

// ---------------------------------------------------------------------- NET_RX

/** `__napi_poll`: one poll with the instance's weight; sets repoll when it used all of it. */
function napiPoll(ns: NetState, n: NapiStruct, repoll: NapiStruct[]): number {
  const weight = n.weight
  let work = 0
  if ((n.state & NAPIF_STATE_SCHED) !== 0) {
    const r = call_driver_atomic(ns.sys, `the NAPI poll of ${n.dev?.name ?? 'backlog'}`, () => n.poll(n, weight))
    if (typeof r === 'number' && Number.isInteger(r) && r >= 0) work = r
    else if (r !== undefined) netdevOnce('error', n.dev, `napi-ret-${n.dev?.name ?? ''}`, `NAPI poll function returned ${String(r)}: it must return the number of frames it processed`)
  }
  if (work > weight) {
    netdevOnce('error', n.dev, `napi-over-${n.dev?.name ?? ''}`, `NAPI poll function ${n.poll.name || '<anonymous>'} returned ${work}, exceeding its budget of ${weight}.`)
  }
  if (work < weight) {
    if ((n.state & NAPIF_STATE_SCHED) === 0) wake_up(n._wq)
    return work
  }
  // The whole weight was used: drivers must not touch the NAPI state then.
  if ((n.state & NAPIF_STATE_DISABLE) !== 0) {
    complete(ns, n)
    return work
  }
  if (n._onList) {
    netdevOnce('warn', n.dev, `napi-resched-${n.dev?.name ?? ''}`, `${n.dev?.name ?? 'backlog'}: Budget exhausted after napi rescheduled`)
    return work
  }
  repoll.push(n)
  return work
}

/** `net_rx_action`: the NET_RX softirq. */
function net_rx_action(ns: NetState): void {
  let budget = netSysctl(ns).netdev_budget
  const list = ns.pollList
  ns.pollList = []
  for (const n of list) n._onList = false
  const repoll: NapiStruct[] = []
  while (list.length > 0) {
    const n = list.shift()!
    budget -= napiPoll(ns, n, repoll)
    if (budget <= 0) {
      ns.softnet.time_squeeze++
      break
    }
  }
  // Left over, then what was scheduled meanwhile, then the instances to poll again.
  const added = ns.pollList
  ns.pollList = []
  for (const n of added) n._onList = false
  for (const n of [...list, ...added, ...repoll]) {
    if (n._onList || (n.state & NAPIF_STATE_SCHED) === 0) continue
    n._onList = true
    ns.pollList.push(n)
  }
  if (ns.pollList.length > 0) ns.softirqPending |= NET_RX_SOFTIRQ
}

open_net_softirq(NET_RX_SOFTIRQ, net_rx_action)

// ---------------------------------------------------------------------- the backlog (netif_rx)

/** The system's backlog NAPI instance (softnet_data.backlog), created on first use. */
export function backlogNapi(ns: NetState, poll: NapiPoll): NapiStruct {
  if (ns.backlog === null) {
    ns.backlog = { state: 0, weight: netSysctl(ns).dev_weight, poll, dev: null, _onList: false, _wq: { waiters: [] }, _sys: ns.sys }
  }
  return ns.backlog
}

/** Schedules the backlog (____napi_schedule of process_backlog). */
export function scheduleBacklog(ns: NetState, n: NapiStruct): void {
  n.weight = netSysctl(ns).dev_weight
  if ((n.state & NAPIF_STATE_SCHED) !== 0) return
  n.state |= NAPIF_STATE_SCHED
  schedule(ns, n)
}

/** Marks the backlog idle (process_backlog's end). */
export function backlogDone(n: NapiStruct): void {
  n.state &= ~NAPIF_STATE_SCHED
}
