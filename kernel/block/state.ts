/**
 * The block state of one system (Linux keeps it in the block core's globals and the per-CPU
 * `blk_cpu_done` list): the added disks, the live tag sets, the BLOCK softirq's completion list,
 * and the helpers every block file uses to run driver callbacks in their contexts. It lives in a
 * WeakMap keyed by the System, so the System knows nothing of block devices and no state leaks
 * between systems.
 */

import { InvalidArgumentError } from '../errors.js'
import { current, currentOrNull, type Task } from '../sched/current.js'
import type { System } from '../system.js'
import type { BlkMqTagSet, Request } from './request.js'
import type { Gendisk } from './genhd.js'

export class BlockState {
  readonly sys: System
  /** Disks added (add_disk) and not yet deleted, in order. */
  readonly disks: Gendisk[] = []
  /** Tag sets allocated and not yet freed. */
  readonly tagSets = new Set<BlkMqTagSet>()
  /** BLOCK_SOFTIRQ's list (blk_cpu_done): requests blk_mq_complete_request was called on, and their generation. */
  done: Request[] = []
  doneGen: number[] = []
  /** A BLOCK softirq run is queued on the CPU. */
  softirqQueued = false
  /** Messages printed once, by key. */
  readonly once = new Set<string>()
  /** Pages the harness's user space (its I/O calls, fio) holds now. */
  userPages = 0
  /** The BLOCK softirq's handler, bound once (no closure per completion). */
  readonly runDone: () => void

  constructor(sys: System, runDone: (bs: BlockState) => void) {
    this.sys = sys
    this.runDone = () => runDone(this)
  }

  byName(name: string): Gendisk | undefined {
    return this.disks.find((d) => d.disk_name === name)
  }
}

const states = new WeakMap<System, BlockState>()
let softirqHandler: ((bs: BlockState) => void) | null = null

/** @internal Installs the BLOCK softirq handler (blk-mq.ts, at load). */
export function setBlockSoftirq(fn: (bs: BlockState) => void): void {
  softirqHandler = fn
}

/** The block state of a system, created on first use. */
export function blockState(sys: System): BlockState {
  let s = states.get(sys)
  if (s === undefined) {
    s = new BlockState(sys, (bs) => softirqHandler?.(bs))
    states.set(sys, s)
  }
  return s
}

/** The running task and its system's block state (a kernel call: costs time, may take IRQs). */
export function blkCall(fn: string): { t: Task; sys: System; bs: BlockState } {
  const t = current(fn)
  const sys = t.sys as System
  return { t, sys, bs: blockState(sys) }
}

/** An error a user-space call throws for a bad argument. */
export function userArgError(fn: string, arg: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(fn, arg, problem)
}

/** Logs a message once per system and key (WARN_ONCE-style). */
export function blkWarnOnce(bs: BlockState, key: string, msg: string, level: 'error' | 'warn' = 'warn'): void {
  if (bs.once.has(key)) return
  bs.once.add(key)
  const t = currentOrNull()
  bs.sys.logger[level]({ task: t?.sys === bs.sys ? t.toString() : undefined }, msg)
}

/**
 * Calls a driver callback that runs in atomic context (queue_rq, commit_rqs, complete) in a
 * context of its own: a softirq-context task named after the caller, so that sleeping in it is
 * `invalid-context` and an oops in it ends that callback only, while hard IRQs still arrive. A
 * callback that returns a Promise (an async function) is `invalid-context` too; its result is then
 * taken as undefined. A callback that threw (an oops, reported) gives OOPSED.
 */
export function callAtomic<A, B, R>(sys: System, name: string, what: string, self: object, fn: (a: A, b: B) => R, a: A, b: B): R | undefined | typeof OOPSED {
  let returned = false
  const r = sys.runAtomic(name, 'softirq', () => {
    const r = fn.call(self, a, b)
    returned = true
    if (r instanceof Promise) {
      r.catch(() => undefined)
      sys.report({
        kind: 'invalid-context',
        message: `BUG: ${what} returned a Promise: it runs in atomic context and must be synchronous and never sleep`,
      })
      return undefined
    }
    return r
  })
  return returned ? r : OOPSED
}

/** What callAtomic returns when the callback oopsed (threw). */
export const OOPSED: unique symbol = Symbol('oopsed')

/** The name the atomic contexts of a call get: the running task's, or 'kblockd'. */
export function contextName(t: Task | null): string {
  return t?.name ?? 'kblockd'
}
