import { describe, expect, it } from 'vitest'
import { InterruptController, InterruptControllerError, Machine, Tracer, VirtualClock, type IrqTraceEvent } from '../../devices/index.js'

const MSI = InterruptController.MSI_BASE

function setup() {
  const clock = new VirtualClock()
  const tracer = new Tracer(clock)
  const intc = new InterruptController(clock, tracer)
  const events: IrqTraceEvent[] = []
  tracer.on('irq', (e) => events.push(e))
  let raises = 0
  intc.onRaise = () => raises++
  return { clock, intc, events, raises: () => raises }
}

describe('InterruptController: INTx lines', () => {
  it('holds a shared line asserted while any source drives it (wired-OR)', () => {
    const { intc, events, raises } = setup()
    const a = {}
    const b = {}
    intc.setLine(17, a, true)
    intc.setLine(17, b, true)
    expect(intc.isAsserted(17)).toBe(true)
    expect(raises()).toBe(1) // one assert edge, not two
    intc.setLine(17, a, false)
    expect(intc.isAsserted(17)).toBe(true)
    expect(intc.nextPending()).toBe(17)
    intc.setLine(17, b, false)
    expect(intc.isAsserted(17)).toBe(false)
    expect(intc.nextPending()).toBe(-1)
    expect(events.map((e) => `${e.hwirq}:${e.kind}`)).toEqual(['17:assert', '17:deassert'])
    expect(intc.stats).toEqual({ raised: 1, msi: 0 })
  })

  it('deasserting a source that never drove the line changes nothing', () => {
    const { intc, events } = setup()
    intc.setLine(3, {}, false)
    expect(intc.isAsserted(3)).toBe(false)
    expect(events).toEqual([])
  })

  it('is level-triggered: ack does not clear an asserted line', () => {
    const { intc } = setup()
    const dev = {}
    intc.setLine(20, dev, true)
    intc.ack(20)
    expect(intc.nextPending()).toBe(20)
    intc.setLine(20, dev, false)
    expect(intc.nextPending()).toBe(-1)
  })

  it('masking defers delivery; unmasking an asserted line calls onRaise again', () => {
    const { intc, raises } = setup()
    intc.mask(18)
    intc.setLine(18, {}, true)
    expect(intc.isMasked(18)).toBe(true)
    expect(intc.nextPending()).toBe(-1)
    expect(raises()).toBe(1)
    intc.unmask(18)
    expect(raises()).toBe(2)
    expect(intc.nextPending()).toBe(18)
  })

  it('reports the lowest pending line first', () => {
    const { intc } = setup()
    intc.setLine(40, {}, true)
    intc.setLine(16, {}, true)
    expect(intc.nextPending()).toBe(16)
    intc.mask(16)
    expect(intc.nextPending()).toBe(40)
  })

  it('rejects lines outside 0..63', () => {
    const { intc } = setup()
    expect(() => intc.setLine(64, {}, true)).toThrow(InterruptControllerError)
    expect(() => intc.isAsserted(-1)).toThrow(/INTx line/)
    expect(() => intc.setLine(1.5, {}, true)).toThrow(InterruptControllerError)
  })
})

describe('InterruptController: MSI vectors', () => {
  it('allocates consecutive vectors first-fit, and -1 when none are left', () => {
    const { intc } = setup()
    expect(intc.allocMsiVectors(4)).toBe(MSI)
    expect(intc.allocMsiVectors(2)).toBe(MSI + 4)
    intc.freeMsiVectors(MSI, 4)
    expect(intc.allocMsiVectors(3)).toBe(MSI) // reuses the hole
    expect(intc.allocMsiVectors(2)).toBe(MSI + 6) // the hole has 1 left: does not fit
    expect(intc.allocMsiVectors(InterruptController.NR_MSI)).toBe(-1)
    expect(() => intc.allocMsiVectors(0)).toThrow(InterruptControllerError)
  })

  it('latches an MSI as pending until ack; a second MSI before the ack merges', () => {
    const { intc, events, raises } = setup()
    const v = intc.allocMsiVectors(1)
    intc.raiseMsi(v)
    intc.raiseMsi(v)
    expect(raises()).toBe(2)
    expect(intc.nextPending()).toBe(v)
    intc.ack(v)
    expect(intc.nextPending()).toBe(-1)
    expect(intc.isMsiPending(v)).toBe(false)
    intc.ack(v) // no-op
    expect(events.map((e) => e.kind)).toEqual(['msi', 'msi', 'ack'])
    expect(intc.stats).toEqual({ raised: 2, msi: 2 })
  })

  it('delivers INTx before MSI and the lowest MSI first; a masked MSI stays pending', () => {
    const { intc, raises } = setup()
    const v = intc.allocMsiVectors(2)
    intc.raiseMsi(v + 1)
    intc.mask(v)
    intc.raiseMsi(v)
    expect(intc.nextPending()).toBe(v + 1)
    intc.setLine(30, {}, true)
    expect(intc.nextPending()).toBe(30)
    const before = raises()
    intc.unmask(v)
    expect(raises()).toBe(before + 1)
    intc.setLine(30, {}, false) // a different source object: line stays up
    expect(intc.nextPending()).toBe(30)
  })

  it('freeing drops pending and mask state; freeing what is not allocated is an error', () => {
    const { intc } = setup()
    const v = intc.allocMsiVectors(1)
    intc.mask(v)
    intc.raiseMsi(v)
    intc.freeMsiVectors(v, 1)
    expect(intc.isMsiPending(v)).toBe(false)
    expect(intc.isMasked(v)).toBe(false)
    expect(intc.nextPending()).toBe(-1)
    expect(() => intc.freeMsiVectors(v, 1)).toThrow(/not allocated/)
    expect(() => intc.raiseMsi(MSI - 1)).toThrow(InterruptControllerError)
    expect(() => intc.raiseMsi(MSI + InterruptController.NR_MSI)).toThrow(InterruptControllerError)
  })

  it('stamps trace events with virtual time', () => {
    const { clock, intc, events } = setup()
    const v = intc.allocMsiVectors(1)
    clock.schedule(250, () => intc.raiseMsi(v))
    clock.step(1000)
    expect(events).toEqual([{ time: 250, hwirq: v, kind: 'msi' }])
  })

  it('every Machine has one, wired to its tracer', () => {
    const m = new Machine({ arch: 'x86_64', coherent: true, seed: 1, iommu: 'off' })
    const seen: string[] = []
    m.tracer.on('irq', (e) => seen.push(e.kind))
    m.intc.setLine(16, m, true)
    expect(seen).toEqual(['assert'])
  })
})
