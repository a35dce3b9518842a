/**
 * Coupled systems: several systems (two machines on one wire) driven together on virtual time.
 *
 * Each system keeps its own CPU, scheduler and clock. Once coupled, any drive of one member —
 * its `sys.run()`, `runFor`, `runUntil`, `runUntilIdle` — drives them all, in one loop that
 * always steps the CPU whose next activity (a runnable task, a pending interrupt, its next event)
 * is earliest. Events of all members are thus processed in global time order, like a
 * conservative parallel discrete-event simulator with one host thread: a frame one machine sends
 * at time t reaches the other on the other's clock at t + the wire's delay, never in its past
 * (unless a single busy step of the sender ran far ahead, in which case the wire delivers it at
 * the receiver's now). Nothing about it is random: the same seeds give the same interleaving.
 *
 * Without coupling, each system's clock runs on its own: a system that sleeps jumps straight to
 * its next event, and a peer on another system would see its frames arrive in the past.
 */

import type { Scheduler } from './scheduler.js'
import type { Task } from './current.js'

export class SchedGroup {
  readonly members: Scheduler[] = []
  #driving: Promise<boolean> | null = null
  readonly #awaited = new Set<Task>()

  /** Whether the group's drive loop is running. */
  get driving(): boolean {
    return this.#driving !== null
  }

  add(s: Scheduler): void {
    if (!this.members.includes(s)) this.members.push(s)
    s.group = this
  }

  /** Drives the group until `task` (of member `s`) is done; false when it can never finish. */
  async runTask(s: Scheduler, task: Task): Promise<boolean> {
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
        const state = task.state as Task['state']
        if (state !== 'done' && !progressed && !s.hasRunnable) return false
      }
      return true
    } finally {
      this.#awaited.delete(task)
    }
  }

  /** Runs fn's drive exclusively: after any drive loop of the group has ended. */
  async exclusive(fn: () => Promise<boolean>): Promise<boolean> {
    while (this.#driving !== null) await this.#driving
    this.#driving = fn().finally(() => (this.#driving = null))
    return this.#driving
  }

  /**
   * Steps the member with the earliest next activity until stop() holds, nothing is left in any
   * member, or the earliest activity lies beyond `deadline` (then every member's clock is brought
   * up to it). Returns true when stop() held.
   */
  async drive(stop: () => boolean, deadline = Number.POSITIVE_INFINITY): Promise<boolean> {
    const ms = this.members
    for (;;) {
      if (stop()) return true
      let best: Scheduler | null = null
      let at = Number.POSITIVE_INFINITY
      let second = Number.POSITIVE_INFINITY
      for (const m of ms) {
        const a = m.nextActivity()
        if (a < at) {
          second = at
          at = a
          best = m
        } else if (a < second) second = a
      }
      if (best === null) return false
      if (at > deadline || (at === deadline && deadline !== Number.POSITIVE_INFINITY && best.hasRunnable)) {
        for (const m of ms) m.idleUntil(deadline)
        return stop()
      }
      await best.stepOnce(Math.min(second, deadline))
    }
  }
}
