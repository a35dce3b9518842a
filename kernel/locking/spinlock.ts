/**
 * Spinlocks and local interrupt control (include/linux/spinlock.h, include/linux/irqflags.h) with
 * lockdep's "inconsistent lock state" rule (kernel/locking/lockdep.c): a lock taken in hard-IRQ
 * context must never be taken in process context with interrupts enabled, because the handler
 * can interrupt the holder. The rule is checked on every use, so it is reported on every seed,
 * whether or not a seed happens to interleave the race.
 *
 * On this one-CPU machine a spinlock never spins: a handler that takes a lock its interrupted task
 * holds goes ahead (as another CPU would on SMP), so the race's data damage is real.
 */

import { captureStack, type StackFrame } from '../debug/stack.js'
import { removeAt } from '../lib/sorted.js'
import { badArg } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import type { System } from '../system.js'

/** `spinlock_t`. */
export interface SpinLock {
  /** Contexts holding it: normally one; two when a handler takes the lock its interrupted task holds. */
  holders: Task[]
  /** lockdep: first use in hard-IRQ context, and first use in process context with IRQs on. */
  inHardirq: readonly StackFrame[] | null
  irqsOnInProcess: readonly StackFrame[] | null
  reported: boolean
}

/** Creates (or re-initialises) a spinlock: `const lock = spin_lock_init()`. */
export function spin_lock_init(lock: SpinLock | null = null): SpinLock {
  const l = lock ?? ({} as SpinLock)
  l.holders = []
  l.inHardirq = null
  l.irqsOnInProcess = null
  l.reported = false
  return l
}

function sysOf(t: Task): System {
  return t.sys as System
}

function checkLock(t: Task, fn: string, l: unknown): SpinLock {
  if (typeof l !== 'object' || l === null || !('reported' in l)) badArg(t, fn, 'lock', 'must come from spin_lock_init()')
  return l as SpinLock
}

function acquire(t: Task, fn: string, l: SpinLock): void {
  const sys = sysOf(t)
  const hard = t.context === 'hardirq'
  if (hard && l.inHardirq === null) l.inHardirq = sys.checks.stacks ? captureStack() : []
  if (!hard && t.irqsDisabled === 0 && l.irqsOnInProcess === null) l.irqsOnInProcess = sys.checks.stacks ? captureStack() : []
  if (l.inHardirq !== null && l.irqsOnInProcess !== null && !l.reported) {
    l.reported = true
    sys.report({
      kind: 'lock-inconsistent',
      message: `WARNING: inconsistent lock state: inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage. The lock is taken in a hard-IRQ handler and, with interrupts enabled, in process context: the handler can interrupt the holder. Use spin_lock_irqsave() in process context (${fn})`,
      stacks: [
        ...(l.inHardirq.length > 0 ? [{ label: 'taken in hardirq', frames: l.inHardirq }] : []),
        ...(l.irqsOnInProcess.length > 0 ? [{ label: 'taken with irqs on', frames: l.irqsOnInProcess }] : []),
      ],
    })
  }
  if (l.holders.includes(t)) sys.oops(t, `BUG: spinlock recursion: ${fn}() of a lock this context already holds (deadlock)`)
  l.holders.push(t)
  t.locksHeld++
}

function release(t: Task, fn: string, l: SpinLock): void {
  const i = l.holders.indexOf(t)
  if (i < 0) sysOf(t).oops(t, l.holders.length === 0 ? `BUG: spinlock already unlocked: ${fn}()` : `BUG: ${fn}() of a spinlock held by another context`)
  removeAt(l.holders, i)
  t.locksHeld = Math.max(0, t.locksHeld - 1)
}

export function spin_lock(lock: SpinLock): void {
  const t = current('spin_lock')
  acquire(t, 'spin_lock', checkLock(t, 'spin_lock', lock))
}

export function spin_unlock(lock: SpinLock): void {
  const t = current('spin_unlock')
  release(t, 'spin_unlock', checkLock(t, 'spin_unlock', lock))
}

/** Disables local interrupts and returns the previous state. */
export function local_irq_save(): number {
  const t = current('local_irq_save')
  return t.irqsDisabled++
}

/** Restores the state local_irq_save returned; pending interrupts arrive if they are enabled again. */
export function local_irq_restore(flags: number): void {
  const t = current('local_irq_restore')
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0) badArg(t, 'local_irq_restore', 'flags', 'must be what local_irq_save returned')
  t.irqsDisabled = flags
  if (flags === 0) sysOf(t).kernelCall(t)
}

export function local_irq_disable(): void {
  current('local_irq_disable').irqsDisabled++
}

export function local_irq_enable(): void {
  const t = current('local_irq_enable')
  t.irqsDisabled = 0
  sysOf(t).kernelCall(t)
}

export function irqs_disabled(): boolean {
  const t = current('irqs_disabled')
  return t.irqsDisabled > 0 || t.context === 'hardirq'
}

/** spin_lock with local interrupts disabled; returns the flags for spin_unlock_irqrestore. */
export function spin_lock_irqsave(lock: SpinLock): number {
  const t = current('spin_lock_irqsave')
  const l = checkLock(t, 'spin_lock_irqsave', lock)
  const flags = t.irqsDisabled++
  acquire(t, 'spin_lock_irqsave', l)
  return flags
}

export function spin_unlock_irqrestore(lock: SpinLock, flags: number): void {
  const t = current('spin_unlock_irqrestore')
  release(t, 'spin_unlock_irqrestore', checkLock(t, 'spin_unlock_irqrestore', lock))
  t.irqsDisabled = flags
  if (flags === 0) sysOf(t).kernelCall(t)
}

export function spin_lock_irq(lock: SpinLock): void {
  const t = current('spin_lock_irq')
  const l = checkLock(t, 'spin_lock_irq', lock)
  t.irqsDisabled++
  acquire(t, 'spin_lock_irq', l)
}

export function spin_unlock_irq(lock: SpinLock): void {
  const t = current('spin_unlock_irq')
  release(t, 'spin_unlock_irq', checkLock(t, 'spin_unlock_irq', lock))
  t.irqsDisabled = 0
  sysOf(t).kernelCall(t)
}
