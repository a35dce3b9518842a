/**
 * The virtual clock's event queue: events run in (time, scheduling order), and a cancelled event
 * leaves the queue at once and never runs — from anywhere in the heap, before or while others run.
 */
import { describe, expect, it } from 'vitest'
import { Rng, VirtualClock, type ClockEvent } from '../../devices/index.js'

describe('VirtualClock', () => {
  it('runs events in time order, equal times in the order they were scheduled', () => {
    const c = new VirtualClock()
    const ran: string[] = []
    for (const [at, name] of [[30, 'c'], [10, 'a1'], [20, 'b'], [10, 'a2'], [0, 'z']] as const) c.schedule(at, () => ran.push(name))
    c.now = 100
    c.runDue()
    expect(ran).toEqual(['z', 'a1', 'a2', 'b', 'c'])
    expect(c.pending).toBe(0)
  })

  it('cancelling removes an event at once, wherever it sits, and the rest keep their order (random trial)', () => {
    const rng = new Rng(7)
    for (let trial = 0; trial < 50; trial++) {
      const c = new VirtualClock()
      const ran: number[] = []
      const evs: { ev: ClockEvent; at: number; k: number }[] = []
      for (let k = 0; k < 200; k++) {
        const at = rng.int(50)
        evs.push({ ev: c.schedule(at, () => ran.push(k)), at, k })
      }
      const cancelled = evs.filter(() => rng.int(3) === 0)
      for (const e of cancelled) e.ev.cancelled = true
      expect(c.pending).toBe(200 - cancelled.length)
      const want = evs.filter((e) => !e.ev.cancelled).sort((a, b) => a.at - b.at || a.k - b.k).map((e) => e.k)
      expect(c.nextAt).toBe(Math.min(...evs.filter((e) => !e.ev.cancelled).map((e) => e.at)))
      c.now = 1000
      c.runDue()
      expect(ran).toEqual(want)
      expect(c.pending).toBe(0)
    }
  })

  it('an event may cancel a later one, or itself, while it runs; cancelling twice or after it ran changes nothing', () => {
    const c = new VirtualClock()
    const ran: string[] = []
    let later: ClockEvent | null = null
    let self: ClockEvent | null = null
    c.schedule(5, () => {
      ran.push('first')
      later!.cancelled = true
      later!.cancelled = true
    })
    later = c.schedule(6, () => ran.push('later'))
    self = c.schedule(7, () => {
      ran.push('self')
      self!.cancelled = true
    })
    c.schedule(8, () => ran.push('last'))
    c.now = 10
    c.runDue()
    expect(ran).toEqual(['first', 'self', 'last'])
    self.cancelled = true
    expect(c.pending).toBe(0)
    expect(c.nextAt).toBe(Number.POSITIVE_INFINITY)
  })

  it('an event scheduled in the past runs at the current time, and step() stops at its limit', () => {
    const c = new VirtualClock()
    c.now = 50
    const ran: number[] = []
    c.schedule(10, () => ran.push(c.now))
    c.schedule(70, () => ran.push(c.now))
    expect(c.step(60)).toBe(true)
    expect(c.step(60)).toBe(false)
    expect(ran).toEqual([50])
    expect(c.nextAt).toBe(70)
  })
})
