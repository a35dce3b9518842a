/**
 * The scheduler of one system's CPU (kernel/sched/core.c in spirit): process-context tasks are
 * async functions that run until they block in a sleeping call (msleep, wait_for_completion,
 * mutex_lock, ...) or finish. One task runs at a time; when none can run, the CPU is idle and
 * virtual time jumps to the next event (a timer, a device completion). Steps of different systems
 * in one process take turns on the shared CPU lock, so their tasks interleave deterministically.
 *
 * Each step: the scheduler makes the task current, resumes it, and waits for it to block or end.
 * A blocked task awaits a promise only the scheduler resolves, so no task code runs outside a step.
 */

import type { VirtualClock } from '../../devices/index.js'
import { acquireCpu, switchTo, Task, tryAcquireCpu, type TaskOwner } from './current.js'
import type { SchedGroup } from './group.js'

/** Idle-loop turns a drive loop takes without waiting before it lets other loops have the CPU. */
const IDLE_YIELD = 64

export interface SchedOwner extends TaskOwner {
  readonly clockRef: VirtualClock
  /** Runs due events and delivers pending interrupts while the CPU is idle (no task current). */
  idleWork(): void
  /** Whether an interrupt is pending (the idle loop must not sleep past it). */
  irqPending(): boolean
  /** A task is about to block. */
  taskBlocked(): void
  /** The CPU switches to another task. */
  contextSwitch(): void
  /** A slice of task t starts ('B') or ends ('E') running (the sched_switch trace point). */
  taskSlice(phase: 'B' | 'E', t: Task): void
}

export class Scheduler {
  readonly #owner: SchedOwner
  readonly #runQueue: Task[] = []
  /** Live tasks (not done). */
  readonly tasks = new Set<Task>()
  /** Virtual ns the CPU spent idle (no runnable task). */
  idleNs = 0
  /** Tasks some sys.run() is waiting for. */
  readonly #awaited = new Set<Task>()
  /** The one drive loop of this CPU, while one runs. */
  #driving: Promise<boolean> | null = null
  /** The task that ran last (a switch to another one costs a context switch). */
  #last: Task | null = null
  /** The group of coupled systems this CPU is driven with (kernel/sched/group.ts), if any. */
  group: SchedGroup | null = null

  constructor(owner: SchedOwner) {
    this.#owner = owner
  }

  get runnable(): number {
    return this.#runQueue.length
  }

  /** Creates a runnable process-context task; `done` settles with fn's result. */
  spawn<T>(name: string, fn: () => T | Promise<T>): { task: Task; done: Promise<T> } {
    const task = new Task(this.#owner, name)
    let resolve!: (v: T) => void
    let reject!: (e: unknown) => void
    const done = new Promise<T>((res, rej) => {
      resolve = res
      reject = rej
    })
    // Callers always attach their own handlers; this one keeps an unobserved failure quiet.
    done.catch(() => undefined)
    task.start = () => {
      const body = async () => {
        try {
          resolve(await fn())
        } catch (e) {
          reject(e)
        } finally {
          task.state = 'done'
          this.tasks.delete(task)
          const y = task.yielded
          task.yielded = null
          y?.()
        }
      }
      void body()
    }
    this.tasks.add(task)
    this.#runQueue.push(task)
    return { task, done }
  }

  /** Blocks the running task t until wake(t); the returned promise is what the task awaits. */
  block(t: Task): Promise<void> {
    this.#owner.taskBlocked()
    t.state = 'blocked'
    const p = new Promise<void>((res) => (t.resume = res))
    const y = t.yielded
    t.yielded = null
    y?.()
    return p
  }

  /** Makes a blocked task runnable again. */
  wake(t: Task): void {
    if (t.state !== 'blocked') return
    t.state = 'runnable'
    this.#runQueue.push(t)
  }

  /** Runs one step of t: until it blocks or finishes. */
  async #step(t: Task, takeNow = false): Promise<void> {
    // Taken at once only by a loop that has already waited once: the caller of sys.run() never
    // finds a task of its system running when the call returns.
    const release = (takeNow ? tryAcquireCpu() : null) ?? (await acquireCpu())
    const prev = switchTo(t)
    try {
      if (this.#last !== t) {
        if (this.#last !== null) this.#owner.contextSwitch()
        this.#last = t
      }
      t.state = 'running'
      this.#owner.taskSlice('B', t)
      const ended = new Promise<void>((res) => (t.yielded = res))
      if (t.start !== null) {
        const s = t.start
        t.start = null
        s()
      } else {
        const r = t.resume
        t.resume = null
        r?.()
      }
      await ended
    } finally {
      this.#owner.taskSlice('E', t)
      switchTo(prev)
      release()
    }
  }

  /**
   * Drives the CPU until `task` is done, sharing one drive loop among every concurrent caller.
   * Returns false when the task is blocked and nothing is left that could wake it.
   */
  async runTask(task: Task): Promise<boolean> {
    if (this.group !== null) return this.group.runTask(this, task)
    this.#awaited.add(task)
    try {
      while (task.state !== 'done') {
        if (this.#driving === null) {
          const all = () => {
            for (const t of this.#awaited) if (t.state !== 'done') return false
            return true
          }
          this.#driving = this.drive(all).finally(() => (this.#driving = null))
        }
        const progressed = await this.#driving
        // The state changed while we awaited (TypeScript cannot see that).
        const state = task.state as Task['state']
        if (state !== 'done' && !progressed && this.#runQueue.length === 0) return false
      }
      return true
    } finally {
      this.#awaited.delete(task)
    }
  }

  /** Runs fn's drive exclusively: after any drive loop in progress has ended. */
  async exclusive(fn: () => Promise<boolean>): Promise<boolean> {
    if (this.group !== null) return this.group.exclusive(fn)
    while (this.#driving !== null) await this.#driving
    this.#driving = fn().finally(() => (this.#driving = null))
    return this.#driving
  }

  /**
   * Runs tasks and events until stop() holds, nothing is left to do, or virtual time would pass
   * `deadline`. Returns true when stop() held.
   */
  async drive(stop: () => boolean, deadline = Number.POSITIVE_INFINITY): Promise<boolean> {
    if (this.group !== null) return this.group.drive(stop, deadline)
    const clock = this.#owner.clockRef
    let idleRun = 0
    // Whether this loop has waited once (so it no longer runs inside its caller's synchronous call).
    let waited = false
    for (;;) {
      if (stop()) return true
      // Busy tasks advance the clock too: a deadline ends the drive even if tasks are runnable.
      if (clock.now >= deadline) return stop()
      const t = this.#runQueue.shift()
      if (t !== undefined) {
        idleRun = 0
        await this.#step(t, waited)
        waited = true
        continue
      }
      // Idle: let due events run and interrupts arrive, then sleep until the next event. A free
      // CPU is taken without waiting, but a long idle stretch still lets other systems' loops in.
      let release = waited && ++idleRun % IDLE_YIELD !== 0 ? tryAcquireCpu() : null
      release ??= await acquireCpu()
      waited = true
      try {
        this.#owner.idleWork()
        if (this.#runQueue.length > 0 || stop()) continue
        const next = clock.nextAt
        if (next === Number.POSITIVE_INFINITY && !this.#owner.irqPending()) return false
        if (next > deadline) {
          if (deadline !== Number.POSITIVE_INFINITY && deadline > clock.now) {
            this.idleNs += deadline - clock.now
            clock.now = deadline
          }
          return stop()
        }
        // next is +∞ when only an interrupt is pending: the idle work above takes it.
        if (next > clock.now && next !== Number.POSITIVE_INFINITY) {
          this.idleNs += next - clock.now
          clock.now = next
        }
      } finally {
        release()
      }
    }
  }

  /** Whether a drive loop of this CPU is running (coupling then is refused). */
  get driving(): boolean {
    return this.#driving !== null
  }

  /**
   * For a group's drive loop: the virtual time of this CPU's next activity — now when a task is
   * runnable, an interrupt or softirq is pending or an event is due; else its next event; +∞ when
   * nothing is left.
   */
  nextActivity(): number {
    const clock = this.#owner.clockRef
    if (this.#runQueue.length > 0 || this.#owner.irqPending()) return clock.now
    return Math.max(clock.nextAt, clock.now)
  }

  /**
   * For a group's drive loop: one step of this CPU — a runnable task runs until it blocks; or
   * else, when events are due or an interrupt or softirq is pending, the idle loop handles them;
   * or else the CPU sleeps towards its next event, but not past `limit` (the next activity of the
   * group's other CPUs). Handling and sleeping are separate steps: what the handling set off
   * (a frame to another member) changes the others' next activity, so the group looks again
   * before any clock moves on.
   */
  async stepOnce(limit: number): Promise<void> {
    const t = this.#runQueue.shift()
    if (t !== undefined) {
      await this.#step(t)
      return
    }
    const clock = this.#owner.clockRef
    const release = await acquireCpu()
    try {
      if (clock.nextAt <= clock.now || this.#owner.irqPending()) {
        this.#owner.idleWork()
        return
      }
      const to = Math.min(clock.nextAt, limit)
      if (to > clock.now && to !== Number.POSITIVE_INFINITY) {
        this.idleNs += to - clock.now
        clock.now = to
      }
    } finally {
      release()
    }
  }

  /** Idles this CPU until `at` (a group's deadline), if its clock is behind. */
  idleUntil(at: number): void {
    const clock = this.#owner.clockRef
    if (at > clock.now && at !== Number.POSITIVE_INFINITY) {
      this.idleNs += at - clock.now
      clock.now = at
    }
  }

  /** Whether this CPU has a runnable task. */
  get hasRunnable(): boolean {
    return this.#runQueue.length > 0
  }
}
