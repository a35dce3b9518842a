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

/*
 * The shared CPU: one task, idle loop or device step of any system runs at a time (they share
 * `currentTask`). A lock with a FIFO of waiters; a free CPU is taken without waiting.
 */
let cpuHeld = false
const cpuWaiters: ((release: () => void) => void)[] = []

function releaseCpu(): void {
  const next = cpuWaiters.shift()
  // Handed over: the CPU stays held, by the first waiter.
  if (next !== undefined) next(releaseCpu)
  else cpuHeld = false
}

/** Takes the shared CPU if it is free: the function that releases it, or null if it is held. */
export function tryAcquireCpu(): (() => void) | null {
  if (cpuHeld) return null
  cpuHeld = true
  return releaseCpu
}

/** Waits for the shared CPU; resolves with the function that releases it (call it once). */
export function acquireCpu(): Promise<() => void> {
  if (!cpuHeld) {
    cpuHeld = true
    return Promise.resolve(releaseCpu)
  }
  return new Promise((res) => cpuWaiters.push(res))
}
