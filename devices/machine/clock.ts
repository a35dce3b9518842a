/**
 * The machine's virtual clock and its event queue: one clock in nanoseconds per machine. Device
 * work, timers and interrupt latencies are events ordered by (time, sequence), so equal times keep
 * their scheduling order and runs are deterministic. Nothing here reads a host clock.
 */

export interface ClockEvent {
  readonly at: number
  readonly seq: number
  readonly fn: () => void
  cancelled: boolean
}

export class VirtualClock {
  now = 0
  #seq = 0
  readonly #heap: ClockEvent[] = []

  get pending(): number {
    return this.#heap.length
  }

  /** Schedules fn at absolute time `at` (ns); returns a handle that can be cancelled. */
  schedule(at: number, fn: () => void): ClockEvent {
    const ev: ClockEvent = { at: Math.max(at, this.now), seq: this.#seq++, fn, cancelled: false }
    const h = this.#heap
    h.push(ev)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!before(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
    return ev
  }

  /** Time of the next pending event, or Infinity. */
  get nextAt(): number {
    return this.peek()?.at ?? Number.POSITIVE_INFINITY
  }

  /** Runs every event due by now (events may schedule more). */
  runDue(): void {
    while (this.step(this.now)) {
      /* one event per step */
    }
  }

  /** The next event, without removing it. */
  peek(): ClockEvent | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop()
    return this.#heap[0]
  }

  /** Removes and returns the next event. */
  #pop(): ClockEvent | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l]!, h[m]!)) m = l
        if (r < h.length && before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }

  /** Runs the next event if it is due by `limit`; returns false when none is. */
  step(limit: number): boolean {
    const ev = this.peek()
    if (ev === undefined || ev.at > limit) return false
    this.#pop()
    this.now = Math.max(this.now, ev.at)
    ev.fn()
    return true
  }
}

function before(a: ClockEvent, b: ClockEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq)
}
