/**
 * Time, sleeping and waiting (kernel/time/timer.c, kernel/sched/completion.c,
 * kernel/sched/wait.c, kernel/locking/mutex.c, kernel/workqueue.c): msleep, udelay, ktime,
 * jiffies, timers, completions, wait queues, mutexes and work items, all on the virtual clock.
 *
 * Sleeping calls return a Promise and may only be awaited in process context. Called from atomic
 * context (a handler, a timer callback, with a spinlock held or IRQs disabled) they are reported as
 * `invalid-context` ("sleeping function called from invalid context") and return at once.
 */

import { badArg } from '../mm/memory.js'
import { removeAt } from '../lib/sorted.js'
import { current, type Task } from './current.js'
import { mightSleep } from './might-sleep.js'

export { mightSleep }
import type { System } from '../system.js'
import { HZ } from '../types.js'

const NS_PER_JIFFY = 1e9 / HZ

function sysOf(t: Task): System {
  return t.sys as System
}

/** Blocks t until the clock reaches `at` (or it is woken earlier); resolves true if it timed out. */
function sleepUntil(t: Task, at: number): Promise<boolean> {
  const sys = sysOf(t)
  let timedOut = false
  const ev = sys.machine.clock.schedule(at, () => {
    timedOut = true
    sys.sched.wake(t)
  })
  return sys.sched.block(t).then(() => {
    ev.cancelled = true
    return timedOut
  })
}

// ---------------------------------------------------------------------- time

/** Current virtual time in ns (monotonic). */
export function ktime_get_ns(): number {
  return sysOf(current('ktime_get_ns')).machine.clock.now
}

/** The jiffies counter (HZ ticks since boot). C reads the variable; here it is a call. */
export function jiffies(): number {
  return Math.floor(sysOf(current('jiffies')).machine.clock.now / NS_PER_JIFFY)
}

export function msecs_to_jiffies(ms: number): number {
  return Math.ceil((ms * 1e6) / NS_PER_JIFFY)
}

export function usecs_to_jiffies(us: number): number {
  return Math.ceil((us * 1e3) / NS_PER_JIFFY)
}

export function jiffies_to_msecs(j: number): number {
  return (j * NS_PER_JIFFY) / 1e6
}

/** Sleeps for at least ms milliseconds (process context). */
export async function msleep(ms: number): Promise<void> {
  const t = current('msleep')
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) badArg(t, 'msleep', 'msecs', `must be a non-negative number, got ${String(ms)}`)
  if (!mightSleep(t, 'msleep')) return
  await sleepUntil(t, sysOf(t).machine.clock.now + ms * 1e6)
}

/** Busy-waits us microseconds: the CPU spends the time; interrupts still arrive if enabled. */
export function udelay(us: number): void {
  const t = current('udelay')
  if (typeof us !== 'number' || !Number.isFinite(us) || us < 0) badArg(t, 'udelay', 'usecs', `must be a non-negative number, got ${String(us)}`)
  sysOf(t).busyWait(t, us * 1000)
}

/** `ndelay`. */
export function ndelay(ns: number): void {
  const t = current('ndelay')
  sysOf(t).busyWait(t, ns)
}

// ---------------------------------------------------------------------- timers

/** `struct timer_list`. */
export interface TimerList {
  function: (t: TimerList) => void
  expires: number
  /** @internal */
  _event: { cancelled: boolean } | null
  /** @internal */
  _sys: System | null
}

/** Creates (or re-initialises) a timer whose callback runs in softirq (atomic) context. */
export function timer_setup(timer: TimerList | null, fn: (t: TimerList) => void, _flags = 0): TimerList {
  const t = current('timer_setup')
  if (typeof fn !== 'function') badArg(t, 'timer_setup', 'callback', 'must be a function')
  const tl = timer ?? ({ function: fn, expires: 0, _event: null, _sys: null })
  if (tl._event !== null) tl._event.cancelled = true
  tl.function = fn
  tl._event = null
  tl._sys = sysOf(t)
  return tl
}

/** (Re)arms a timer to fire at `expires` (in jiffies); returns 1 if it was pending, else 0. */
export function mod_timer(timer: TimerList, expires: number): number {
  const t = current('mod_timer')
  if (timer === null || typeof timer !== 'object' || timer._sys === null) badArg(t, 'mod_timer', 'timer', 'must come from timer_setup')
  const sys = sysOf(t)
  const was = timer._event !== null && !timer._event.cancelled ? 1 : 0
  if (timer._event !== null) timer._event.cancelled = true
  timer.expires = expires
  const ev = sys.machine.clock.schedule(Math.max(sys.machine.clock.now, expires * NS_PER_JIFFY), () => {
    timer._event = null
    // The expiry raises the timer softirq; the callback runs when the CPU may take softirqs.
    sys.raiseSoftirq(() => sys.runAtomic('timer', 'softirq', () => timer.function(timer)))
  })
  timer._event = ev
  return was
}

/** Cancels a pending timer; returns 1 if it was pending. */
export function del_timer(timer: TimerList): number {
  current('del_timer')
  const was = timer._event !== null && !timer._event.cancelled ? 1 : 0
  if (timer._event !== null) timer._event.cancelled = true
  timer._event = null
  return was
}

/** Cancels a timer and waits for a running callback (callbacks never overlap tasks here). */
export async function del_timer_sync(timer: TimerList): Promise<number> {
  const t = current('del_timer_sync')
  mightSleep(t, 'del_timer_sync')
  return Promise.resolve(del_timer(timer))
}

export const timer_delete_sync = del_timer_sync

// ---------------------------------------------------------------------- wait queues and completions

/**
 * `wait_queue_head_t`: the waiting tasks, in the order they went to sleep. An array, not a Set: a
 * Set's add and delete of one entry cost 60-180 ns together (measured), and every sleep does both.
 */
export interface WaitQueueHead {
  readonly waiters: Task[]
}

export function init_waitqueue_head(wq: WaitQueueHead | null = null): WaitQueueHead {
  if (wq !== null) {
    while (wq.waiters.length > 0) wq.waiters.pop()
    return wq
  }
  return { waiters: [] }
}

/** Takes t off the queue, keeping the others in order. */
function removeWaiter(wq: WaitQueueHead, t: Task): void {
  const i = wq.waiters.indexOf(t)
  if (i >= 0) removeAt(wq.waiters, i)
}

/** Wakes every task waiting on wq (they re-check their condition). */
export function wake_up(wq: WaitQueueHead): void {
  const t = current('wake_up')
  for (const w of wq.waiters) sysOf(t).sched.wake(w)
}

async function waitEvent(fn: string, wq: WaitQueueHead, cond: () => boolean, timeoutJiffies: number): Promise<number> {
  const t = current(fn)
  const sys = sysOf(t)
  const canSleep = mightSleep(t, fn)
  if (cond()) return Math.max(1, timeoutJiffies)
  if (!canSleep) return 0
  const deadline = timeoutJiffies === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : sys.machine.clock.now + timeoutJiffies * NS_PER_JIFFY
  wq.waiters.push(t)
  try {
    for (;;) {
      // As sleepUntil, inline: one promise per sleep, not two.
      let timedOut = false
      const ev = deadline === Number.POSITIVE_INFINITY ? null : sys.machine.clock.schedule(deadline, () => {
        timedOut = true
        sys.sched.wake(t)
      })
      await sys.sched.block(t)
      if (ev !== null) ev.cancelled = true
      if (cond()) return deadline === Number.POSITIVE_INFINITY ? 1 : Math.max(1, Math.ceil((deadline - sys.machine.clock.now) / NS_PER_JIFFY))
      if (timedOut) return 0
    }
  } finally {
    removeWaiter(wq, t)
  }
}

/** Sleeps until cond() holds, re-checked at each wake_up(wq). */
export async function wait_event(wq: WaitQueueHead, cond: () => boolean): Promise<void> {
  await waitEvent('wait_event', wq, cond, Number.POSITIVE_INFINITY)
}

/** As wait_event with a timeout in jiffies: 0 if it timed out, else the jiffies left (at least 1). */
export function wait_event_timeout(wq: WaitQueueHead, cond: () => boolean, timeout: number): Promise<number> {
  return waitEvent('wait_event_timeout', wq, cond, timeout)
}

/** `struct completion`. */
export interface Completion {
  done: number
  readonly wq: WaitQueueHead
}

export function init_completion(c: Completion | null = null): Completion {
  if (c !== null) {
    c.done = 0
    init_waitqueue_head(c.wq)
    return c
  }
  return { done: 0, wq: init_waitqueue_head() }
}

export function reinit_completion(c: Completion): void {
  c.done = 0
}

/** Signals one waiter (callable from any context). */
export function complete(c: Completion): void {
  const t = current('complete')
  c.done++
  for (const w of c.wq.waiters) {
    sysOf(t).sched.wake(w)
    break
  }
}

/** Signals every waiter, now and later. */
export function complete_all(c: Completion): void {
  const t = current('complete_all')
  c.done = Number.MAX_SAFE_INTEGER
  for (const w of c.wq.waiters) sysOf(t).sched.wake(w)
}

/** Sleeps until the completion is signalled. */
export async function wait_for_completion(c: Completion): Promise<void> {
  await waitEvent('wait_for_completion', c.wq, () => c.done > 0, Number.POSITIVE_INFINITY)
  if (c.done !== Number.MAX_SAFE_INTEGER) c.done = Math.max(0, c.done - 1)
}

/** As wait_for_completion with a timeout in jiffies: 0 if it timed out, else the jiffies left. */
export async function wait_for_completion_timeout(c: Completion, timeout: number): Promise<number> {
  const left = await waitEvent('wait_for_completion_timeout', c.wq, () => c.done > 0, timeout)
  if (left > 0 && c.done !== Number.MAX_SAFE_INTEGER) c.done = Math.max(0, c.done - 1)
  return left
}

// ---------------------------------------------------------------------- mutexes

/** `struct mutex`. */
export interface Mutex {
  owner: Task | null
  readonly wq: WaitQueueHead
}

export function mutex_init(m: Mutex | null = null): Mutex {
  if (m !== null) {
    m.owner = null
    init_waitqueue_head(m.wq)
    return m
  }
  return { owner: null, wq: init_waitqueue_head() }
}

/** Takes the mutex, sleeping while another task holds it. */
export async function mutex_lock(m: Mutex): Promise<void> {
  const t = current('mutex_lock')
  if (m.owner === t) sysOf(t).oops(t, 'BUG: mutex_lock: recursive locking of a mutex this task already holds (deadlock)')
  await waitEvent('mutex_lock', m.wq, () => m.owner === null, Number.POSITIVE_INFINITY)
  m.owner = t
}

export function mutex_unlock(m: Mutex): void {
  const t = current('mutex_unlock')
  if (m.owner !== t) sysOf(t).oops(t, 'BUG: mutex_unlock of a mutex this task does not hold')
  m.owner = null
  for (const w of m.wq.waiters) {
    sysOf(t).sched.wake(w)
    break
  }
}

export function mutex_is_locked(m: Mutex): boolean {
  return m.owner !== null
}

// ---------------------------------------------------------------------- work items

/** `struct work_struct`. */
export interface WorkStruct {
  func: (w: WorkStruct) => void | Promise<void>
  pending: boolean
  running: boolean
  readonly idle: WaitQueueHead
}

/** Creates (or re-initialises) a work item; its function runs in process context (a kworker). */
export function INIT_WORK(work: WorkStruct | null, fn: (w: WorkStruct) => void | Promise<void>): WorkStruct {
  if (work !== null) {
    work.func = fn
    work.pending = false
    return work
  }
  return { func: fn, pending: false, running: false, idle: init_waitqueue_head() }
}

/** Queues the work; returns false if it was already pending. Callable from any context. */
export function schedule_work(work: WorkStruct): boolean {
  const t = current('schedule_work')
  if (work.pending) return false
  work.pending = true
  const sys = sysOf(t)
  sys.sched.spawn('kworker', async () => {
    work.pending = false
    work.running = true
    try {
      await work.func(work)
    } finally {
      work.running = false
      for (const w of work.idle.waiters) sys.sched.wake(w)
    }
  })
  return true
}

/** Waits until the work has run (if it was queued); returns true if it waited. */
export async function flush_work(work: WorkStruct): Promise<boolean> {
  const t = current('flush_work')
  if (!mightSleep(t, 'flush_work')) return false
  if (!work.pending && !work.running) return false
  await waitEvent('flush_work', work.idle, () => !work.pending && !work.running, Number.POSITIVE_INFINITY)
  return true
}
