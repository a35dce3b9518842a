/**
 * `might_sleep()` (kernel/sched/core.c __might_sleep): every call that may sleep checks, whether
 * or not it would block this time, that it is not in atomic context — a handler, a timer callback,
 * with a spinlock held or interrupts disabled — and reports "sleeping function called from invalid
 * context" (`invalid-context`) if it is. Allocations that may reclaim (GFP_KERNEL) count as
 * sleeping calls.
 */

import type { Task } from './current.js'
import type { System } from '../system.js'
import { __GFP_DIRECT_RECLAIM } from '../types.js'

/** The check; returns false (after reporting) when the caller must not sleep. */
export function mightSleep(t: Task, fn: string): boolean {
  if (!t.atomic) return true
  const why =
    t.context === 'hardirq'
      ? 'in a hard-IRQ handler'
      : t.context === 'softirq'
        ? 'in softirq context (a timer or NAPI)'
        : t.irqsDisabled > 0
          ? 'with interrupts disabled'
          : 'with a spinlock held'
  ;(t.sys as System).report({
    kind: 'invalid-context',
    message: `BUG: sleeping function called from invalid context: ${fn}() ${why} (in_atomic(): 1, irqs_disabled(): ${t.irqsDisabled > 0 || t.context === 'hardirq' ? 1 : 0})`,
  })
  return false
}

/** An allocation with gfp flags that may reclaim (GFP_KERNEL) is a sleeping call. */
export function mightSleepGfp(t: Task, fn: string, gfp: number): void {
  if ((gfp & __GFP_DIRECT_RECLAIM) !== 0 && t.atomic) mightSleep(t, `${fn}(GFP_KERNEL): use GFP_ATOMIC here; ${fn}`)
}
