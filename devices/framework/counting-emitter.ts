/**
 * An eventemitter3 emitter that keeps its listener counts per event up to date in every method
 * that adds or removes a listener, so that `listenerCount(event)` — the check a trace point makes
 * before building its event object — is one property read (eventemitter3's own count builds a
 * string). The hardware tracer and the kernel's trace points both extend it.
 */

import { EventEmitter } from 'eventemitter3'

type Events = EventEmitter.ValidEventTypes
type Name<E extends Events> = EventEmitter.EventNames<E>
type Listener<E extends Events, T extends Name<E>> = EventEmitter.EventListener<E, T>

export class CountingEmitter<E extends Events> extends EventEmitter<E> {
  readonly #names: readonly Name<E>[]
  readonly #count: Record<string | symbol, number> = {}
  /** Listeners of all events together: with none (the usual case), a count is not looked up at all. */
  #total = 0

  /** `names`: every event the emitter has (removeAllListeners() recounts them all). */
  constructor(names: readonly Name<E>[]) {
    super()
    this.#names = names
    // Every count present from the start: the object keeps one shape.
    for (const e of names) this.#count[e] = 0
  }

  #recount(event: Name<E> | undefined): void {
    for (const e of event === undefined ? this.#names : [event]) this.#count[e] = super.listenerCount(e)
    let total = 0
    for (const e of this.eventNames()) total += super.listenerCount(e)
    this.#total = total
  }

  override listenerCount(event: Name<E>): number {
    return this.#total === 0 ? 0 : (this.#count[event] ?? 0)
  }

  override on<T extends Name<E>>(event: T, fn: Listener<E, T>, context?: unknown): this {
    super.on(event, fn, context)
    this.#recount(event)
    return this
  }

  override addListener<T extends Name<E>>(event: T, fn: Listener<E, T>, context?: unknown): this {
    return this.on(event, fn, context)
  }

  override once<T extends Name<E>>(event: T, fn: Listener<E, T>, context?: unknown): this {
    super.once(event, fn, context)
    this.#recount(event)
    return this
  }

  override removeListener<T extends Name<E>>(event: T, fn?: Listener<E, T>, context?: unknown, once?: boolean): this {
    super.removeListener(event, fn, context, once)
    this.#recount(event)
    return this
  }

  override off<T extends Name<E>>(event: T, fn?: Listener<E, T>, context?: unknown, once?: boolean): this {
    return this.removeListener(event, fn, context, once)
  }

  override removeAllListeners(event?: Name<E>): this {
    super.removeAllListeners(event)
    this.#recount(event)
    return this
  }
}
