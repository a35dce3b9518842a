/**
 * The NET_TX and NET_RX softirqs (kernel/softirq.c's __do_softirq and ksoftirqd, for the two
 * softirqs of net/core/dev.c).
 *
 * Raising a NET softirq sets its pending bit and queues one softirq run on the system's CPU
 * (`System.raiseSoftirq`), which runs it when the CPU may take softirqs: after a hard-IRQ handler
 * returns to process context or to the idle loop, or at the next kernel call of process-context
 * code with interrupts enabled (as `local_bh_enable` and `irq_exit` do) — never inside a handler,
 * another softirq or an IRQ-off section.
 *
 * One run (`__do_softirq`) handles the pending bits, NET_TX first, then NET_RX, in softirq
 * context (atomic), and restarts while new bits were raised meanwhile — at most
 * MAX_SOFTIRQ_RESTART times, for at most MAX_SOFTIRQ_TIME of virtual time, and only while no
 * process task is runnable (Linux's `need_resched()`). Work still left then is handed to
 * ksoftirqd: a process-context task, `ksoftirqd/0`, queued behind the runnable tasks, that runs
 * the softirqs once more (with the same bounds) and, if work is still left, queues itself again.
 * So an endlessly busy NIC gets the CPU in turns with the other tasks and cannot starve them.
 * While ksoftirqd is woken, raising a softirq leaves the work to it.
 */

import type { System } from '../system.js'
import { currentOrNull, type Task } from '../sched/current.js'
import type { NetState } from './state.js'

export const NET_TX_SOFTIRQ = 1 << 2
export const NET_RX_SOFTIRQ = 1 << 3

/** `MAX_SOFTIRQ_RESTART`: restarts of one softirq run before ksoftirqd takes over. */
export const MAX_SOFTIRQ_RESTART = 10
/** `MAX_SOFTIRQ_TIME`: 2 ms of virtual time per softirq run. */
export const MAX_SOFTIRQ_TIME_NS = 2_000_000

type Action = (ns: NetState) => void
const actions = new Map<number, Action>()

/** `open_softirq`: installs the action of a NET softirq (done by dev.ts and napi.ts at load). */
export function open_net_softirq(nr: number, action: Action): void {
  actions.set(nr, action)
}

/** `raise_softirq` of a NET softirq on the system of ns. */
export function raise_net_softirq(ns: NetState, nr: number): void {
  ns.softirqPending |= nr
  // A run in progress restarts for it; a woken ksoftirqd will run it.
  if (ns.inSoftirq || ns.ksoftirqdWoken || ns.softirqQueued) return
  ns.softirqQueued = true
  ns.sys.raiseSoftirq(() => {
    ns.softirqQueued = false
    do_softirq(ns, 'softirq')
  })
}

/** `__do_softirq`: one bounded run of the pending NET softirqs in softirq context. */
function do_softirq(ns: NetState, name: string): void {
  if (ns.softirqPending === 0 || ns.inSoftirq) return
  const sys = ns.sys
  sys.runAtomic(name, 'softirq', () => {
    ns.inSoftirq = true
    try {
      const start = sys.machine.clock.now
      let restart = MAX_SOFTIRQ_RESTART
      for (;;) {
        const pending = ns.softirqPending
        ns.softirqPending = 0
        if ((pending & NET_TX_SOFTIRQ) !== 0) actions.get(NET_TX_SOFTIRQ)?.(ns)
        if ((pending & NET_RX_SOFTIRQ) !== 0) actions.get(NET_RX_SOFTIRQ)?.(ns)
        if (ns.softirqPending === 0) break
        const needResched = sys.sched.runnable > 0
        if (sys.machine.clock.now - start < MAX_SOFTIRQ_TIME_NS && !needResched && --restart > 0) continue
        wakeup_softirqd(ns)
        break
      }
    } finally {
      ns.inSoftirq = false
    }
  })
}

/** Wakes ksoftirqd: a process-context task that runs the pending softirqs when its turn comes. */
function wakeup_softirqd(ns: NetState): void {
  if (ns.ksoftirqdWoken) return
  ns.ksoftirqdWoken = true
  ns.softnet.ksoftirqd_wakeups++
  ns.sys.spawnTask('ksoftirqd/0', () => {
    ns.ksoftirqdWoken = false
    do_softirq(ns, 'ksoftirqd/0')
  })
}

/**
 * Runs kernel networking code "with bottom halves disabled" from the calling context:
 * `rcu_read_lock_bh()` ... `rcu_read_unlock_bh()` around dev_queue_xmit, netif_receive_skb.
 * From process context with interrupts enabled and no lock held, fn runs in a softirq-context
 * task (so a driver callback that sleeps is `invalid-context`, while hard IRQs still arrive), and
 * the softirqs raised meanwhile run when it ends (local_bh_enable). From any atomic context fn
 * runs as it is.
 */
export function with_bh_disabled<T>(sys: System, t: Task, fn: () => T): T | undefined {
  if (t.context === 'process' && !t.atomic) {
    const r = sys.runAtomic(t.name, 'softirq', fn)
    sys.kernelCall(t) // local_bh_enable(): pending softirqs run now
    return r
  }
  return fn()
}

/**
 * Calls a driver callback that runs in atomic context (ndo_start_xmit, a NAPI poll,
 * ndo_tx_timeout). When the caller is a clean softirq context (no lock, IRQs on), the callback
 * gets its own softirq-context task, so that an oops in it ends that callback only, as an oops in
 * a timer callback does. A callback that returns a Promise (an `async` function) is
 * `invalid-context`, and its result is taken as undefined.
 */
export function call_driver_atomic<T>(sys: System, what: string, fn: () => T): T | undefined {
  const t = currentOrNull()
  const checked = (): T | undefined => {
    const r = fn()
    if (r instanceof Promise) {
      r.catch(() => undefined)
      sys.report({
        kind: 'invalid-context',
        message: `BUG: ${what} returned a Promise: it runs in atomic context (softirq, bottom halves disabled) and must be synchronous and never sleep`,
      })
      return undefined
    }
    return r
  }
  if (t !== null && t.context === 'softirq' && t.irqsDisabled === 0 && t.locksHeld === 0) return sys.runAtomic(t.name, 'softirq', checked)
  return checked()
}
