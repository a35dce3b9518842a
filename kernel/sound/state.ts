/**
 * The sound state of one system (Linux keeps it in sound/core/init.c's `snd_cards[]` and the
 * minor table of sound/core/sound.c): the card slots, the harness's listeners, the log's rate
 * limits, and the helpers every sound file uses — the kernel-call entry, logging in ALSA's words,
 * and calling a driver's atomic callbacks (trigger, pointer, ack) in the context Linux calls them
 * in. It lives in a WeakMap keyed by the System, so the System knows nothing of sound cards and no
 * state leaks between systems.
 */

import { parseStack } from '../debug/stack.js'
import { KernelOops } from '../errors.js'
import { badArg } from '../mm/memory.js'
import { current, switchTo, Task } from '../sched/current.js'
import type { System } from '../system.js'
import { SNDRV_CARDS } from './asound.js'
import type { SndCard } from './core.js'

export class SoundState {
  readonly sys: System
  /** `snd_cards[]`: the card in each index slot, or null. */
  readonly cards: (SndCard | null)[] = new Array<SndCard | null>(SNDRV_CARDS).fill(null)
  /** Called when a card is disconnected (snd_card_disconnect): the harness closes what it holds open. */
  readonly onDisconnect = new Set<(card: SndCard) => void>()
  /** printk_ratelimit(): the virtual time each message key was last printed, and how many were dropped. */
  readonly rateLimit = new Map<string, { at: number; burst: number }>()

  constructor(sys: System) {
    this.sys = sys
  }

  /** The registered (visible) cards, by index. */
  visibleCards(): SndCard[] {
    return this.cards.filter((c): c is SndCard => c !== null && c.registered && !c.shutdown)
  }
}

const states = new WeakMap<System, SoundState>()

/** The sound state of a system, created on first use. */
export function soundState(sys: System): SoundState {
  let s = states.get(sys)
  if (s === undefined) {
    s = new SoundState(sys)
    states.set(sys, s)
  }
  return s
}

/** The running task and its system's sound state (a kernel call: costs time, may take IRQs). */
export function sndCall(fn: string): { t: Task; sys: System; ss: SoundState } {
  const t = current(fn)
  const sys = t.sys as System
  return { t, sys, ss: soundState(sys) }
}

/** Oopses naming a bad argument, as the rest of the kernel does (a BUG in the caller). */
export function sndBadArg(t: Task, fn: string, arg: string, problem: string): never {
  return badArg(t, fn, arg, problem)
}

/**
 * Logs a kernel message as ALSA's pcm_err / pcm_warn / pcm_dbg do (dev_err on the card's device),
 * with printk_ratelimit's rule when `key` is given: at most 10 messages of a key in 5 s of virtual
 * time.
 */
export function sndLog(sys: System, level: 'error' | 'warn' | 'info' | 'debug', device: string | null, msg: string, key?: string): void {
  if (key !== undefined) {
    const ss = soundState(sys)
    const now = sys.machine.clock.now
    const r = ss.rateLimit.get(key)
    if (r !== undefined && now - r.at < 5e9) {
      if (r.burst >= 10) return
      r.burst++
    } else ss.rateLimit.set(key, { at: now, burst: 1 })
  }
  sys.logger[level]({ dev: device ?? undefined }, device === null ? msg : `${device}: ${msg}`)
}

/** What callAtomicOp returns when the callback failed: it threw (an oops) or returned a Promise. */
export const OP_FAILED: unique symbol = Symbol('op-failed')

/**
 * Calls a driver callback that Linux calls in atomic context — `trigger`, `pointer` and `ack`, with
 * the stream lock held and interrupts off (or in the hard-IRQ handler that called
 * snd_pcm_period_elapsed) — in a context of its own that inherits the caller's: sleeping in it is
 * `invalid-context` ("with interrupts disabled" / "in a hard-IRQ handler"), and an exception in it
 * is an `oops` of that callback only (the PCM core treats it as a failed call), so the caller's
 * task and the stream lock it holds survive. A callback that returns a Promise (an `async`
 * function) is `invalid-context` and counts as failed.
 */
export function callAtomicOp<R>(what: string, call: () => R): R | typeof OP_FAILED {
  const outer = current(what)
  const sys = outer.sys as System
  const t = new Task(sys, outer.name, outer.context)
  t.irqsDisabled = Math.max(1, outer.irqsDisabled)
  t.locksHeld = Math.max(1, outer.locksHeld)
  t.device = outer.device
  const prev = switchTo(t)
  try {
    const r = call()
    if (r instanceof Promise) {
      r.catch(() => undefined)
      sys.report({
        kind: 'invalid-context',
        message: `BUG: ${what} returned a Promise: the PCM core calls it in atomic context (the stream lock held, interrupts disabled) and it must be synchronous and never sleep`,
      })
      return OP_FAILED
    }
    return r
  } catch (e) {
    if (!(e instanceof KernelOops)) {
      const err = e instanceof Error ? e : new Error(String(e))
      sys.report({ kind: 'oops', message: `Oops: ${err.name}: ${err.message} (uncaught in ${what}, task ${outer.toString()})`, access: parseStack(err.stack ?? '') })
    }
    return OP_FAILED
  } finally {
    switchTo(prev)
  }
}
