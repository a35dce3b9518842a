/**
 * The machine's virtual clock and its event queue: one clock in nanoseconds per machine. Device
 * work, timers and interrupt latencies are events ordered by (time, sequence), so equal times keep
 * their scheduling order and runs are deterministic. Nothing here reads a host clock.
 *
 * The queue is a binary heap whose events know their slot: cancelling an event (setting its
 * `cancelled`) takes it out at once, so a timeout that is cancelled a moment after it was armed
 * (every sleep with a timeout that ends early) leaves nothing behind to sift past later.
 */

export interface ClockEvent {
  readonly at: number
  readonly seq: number
  readonly fn: () => void
  /** Setting it true removes the event from the queue; it never runs. */
  cancelled: boolean
}

class Event implements ClockEvent {
  /** Slot in the clock's heap; -1 once it left the heap (run or cancelled). */
  idx = -1
  #cancelled = false
  readonly at: number
  readonly seq: number
  readonly fn: () => void
  readonly clock: VirtualClock

  constructor(at: number, seq: number, fn: () => void, clock: VirtualClock) {
    this.at = at
    this.seq = seq
    this.fn = fn
    this.clock = clock
  }

  get cancelled(): boolean {
    return this.#cancelled
  }

  set cancelled(v: boolean) {
    if (v === this.#cancelled) return
    this.#cancelled = v
    if (v) this.clock.remove(this)
  }
}

export class VirtualClock {
  now = 0
  #seq = 0
  readonly #heap: Event[] = []

  get pending(): number {
    return this.#heap.length
  }

  /** Schedules fn at absolute time `at` (ns); returns a handle that can be cancelled. */
  schedule(at: number, fn: () => void): ClockEvent {
    const ev = new Event(Math.max(at, this.now), this.#seq++, fn, this)
    const h = this.#heap
    h.push(ev)
    this.#up(h.length - 1, ev)
    return ev
  }

  /** Time of the next pending event, or Infinity. */
  get nextAt(): number {
    const h = this.#heap
    return h.length === 0 ? Number.POSITIVE_INFINITY : h[0]!.at
  }

  /** Runs every event due by now (events may schedule more). */
  runDue(): void {
    while (this.step(this.now)) {
      /* one event per step */
    }
  }

  /** The next event, without removing it. */
  peek(): ClockEvent | undefined {
    return this.#heap[0]
  }

  /** Takes ev out of the queue (its `cancelled` setter calls this). */
  remove(ev: ClockEvent): void {
    if (!(ev instanceof Event) || ev.clock !== this) return
    const i = ev.idx
    if (i < 0) return
    ev.idx = -1
    const h = this.#heap
    const last = h.pop()!
    if (i === h.length) return
    if (before(last, ev)) this.#up(i, last)
    else this.#down(i, last)
  }

  /** Places ev at slot i or above it (a hole moves up, no swaps). */
  #up(i: number, ev: Event): void {
    const h = this.#heap
    while (i > 0) {
      const p = (i - 1) >> 1
      const parent = h[p]!
      if (!before(ev, parent)) break
      h[i] = parent
      parent.idx = i
      i = p
    }
    h[i] = ev
    ev.idx = i
  }

  /** Places ev at slot i or below it. */
  #down(i: number, ev: Event): void {
    const h = this.#heap
    const n = h.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      const c = r < n && before(h[r]!, h[l]!) ? r : l
      const child = h[c]!
      if (!before(child, ev)) break
      h[i] = child
      child.idx = i
      i = c
    }
    h[i] = ev
    ev.idx = i
  }

  /** Runs the next event if it is due by `limit`; returns false when none is. */
  step(limit: number): boolean {
    const h = this.#heap
    if (h.length === 0) return false
    const ev = h[0]!
    if (ev.at > limit) return false
    ev.idx = -1
    const last = h.pop()!
    if (h.length > 0) this.#down(0, last)
    if (ev.at > this.now) this.now = ev.at
    ev.fn()
    return true
  }
}

function before(a: ClockEvent, b: ClockEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
