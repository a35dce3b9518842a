/**
 * The running task (`current` in Linux) and the one CPU that all systems in a process share.
 *
 * Kernel functions are free functions, as in C; they act on the system whose task is running.
 * One global CPU lock makes sure only one task of any system runs at a time, so `current` stays
 * right across awaits even when several systems run in one process.
 */

import { KernelOops, OutsideTaskError } from '../errors.js'

/** The part of a system the task layer needs (kept minimal to avoid import cycles). */
export interface TaskOwner {
  readonly name: string
  /** Called at every kernel call: due device events run, pending interrupts are delivered. */
  kernelCall(t: Task): void
  /** Task ids are numbered per system, so no state leaks between systems. */
  nextTaskId(): number
}

export type TaskContext = 'process' | 'hardirq' | 'softirq'

export class Task<S extends TaskOwner = TaskOwner> {
  readonly id: number
  readonly sys: S
  readonly name: string
  readonly context: TaskContext
  /** Set once the task has oopsed: every later kernel call from it throws this again. */
  oops: KernelOops | null = null
  /** Depth of local_irq_save / spin_lock_irqsave nesting (atomic when > 0). */
  irqsDisabled = 0
  /** Depth of spinlocks held (atomic when > 0). */
  locksHeld = 0
  /** Scheduler state. */
  state: 'runnable' | 'running' | 'blocked' | 'done' = 'runnable'
  /** Resolves the promise a blocked task awaits (set by the scheduler). */
  resume: (() => void) | null = null
  /** Ends the scheduler's wait for the current step (set while the task runs). */
  yielded: (() => void) | null = null
  /** Starts the task's body on its first step. */
  start: (() => void) | null = null
  /** The device whose driver this task runs for (probe, remove, its work), for resource ownership. */
  device: import('../base/device.js').Device | null = null

  constructor(sys: S, name: string, context: TaskContext = 'process') {
    this.id = sys.nextTaskId()
    this.sys = sys
    this.name = name
    this.context = context
  }

  /** In atomic context: a handler, or holding a spinlock, or with IRQs disabled. */
  get atomic(): boolean {
    return this.context !== 'process' || this.irqsDisabled > 0 || this.locksHeld > 0
  }

  toString(): string {
    return `${this.name}/${this.id}`
  }
}

let currentTask: Task | null = null

/** The running task; throws if none runs, or re-throws the task's oops. */
export function current(fn: string): Task {
  const t = currentTask
  if (t === null) throw new OutsideTaskError(fn)
  if (t.oops !== null) throw t.oops
  t.sys.kernelCall(t)
  return t
}

/** The running task or null (never throws). */
export function currentOrNull(): Task | null {
  return currentTask
}

/** Makes t the running task; returns the previous one. */
export function switchTo(t: Task | null): Task | null {
  const prev = currentTask
  currentTask = t
  return prev
}

let cpuTail: Promise<void> = Promise.resolve()

/** Waits for the shared CPU; resolves with the function that releases it. */
export function acquireCpu(): Promise<() => void> {
  let release!: () => void
  const mine = new Promise<void>((r) => (release = r))
  const prev = cpuTail
  cpuTail = prev.then(() => mine)
  return prev.then(() => release)
}
