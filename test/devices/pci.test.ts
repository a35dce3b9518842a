import { describe, expect, it } from 'vitest'
import {
  InterruptController,
  MEMTX_ERROR,
  MEMTX_OK,
  MSIX_CAP_OFFSET,
  MsixError,
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_1,
  PCI_CAPABILITY_LIST,
  PCI_CAP_ID_MSIX,
  PCI_CLASS_REVISION,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_MMIO_WINDOW,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
  PciBusError,
  PciConfigError,
  PciFunction,
  PciFunctionError,
  SPURIOUS_IRQ_NS,
  type FaultKind,
  type Machine,
  type PciFunctionOptions,
  type ClockEvent,
} from '../../devices/index.js'
import { enable, machine, RAM, ramBytes, runClock } from '../helpers/hw.js'

/** A bare function with one 32-bit scratch register per offset of BAR 0 and hooks for the tests. */
class TestFn extends PciFunction {
  readonly store = new Map<number, number>()
  constructor(opts: Partial<PciFunctionOptions> = {}) {
    super({ name: 'tf0', vendor: 0x1234, device: 0x5678, classCode: 0xff0000, revision: 3, bars: [{ size: 0x4000 }], msixVectors: 4, ...opts })
  }
  protected barRead(bar: number, off: number, _size: 1 | 2 | 4): number {
    return this.store.get(bar * 0x10000 + off) ?? 0
  }
  protected barWrite(bar: number, off: number, _size: 1 | 2 | 4, value: number): void {
    this.store.set(bar * 0x10000 + off, value)
  }
  raise(vector = 0): void {
    this.raiseIrq(vector)
  }
  lower(): void {
    this.lowerIrq()
  }
  later(ns: number, fn: () => void): ClockEvent {
    return this.schedule(ns, fn)
  }
  faultOf(kind: FaultKind) {
    return this.fault(kind)
  }
  read(bus: number, n: number): { r: number; bytes: Uint8Array } {
    const bytes = new Uint8Array(n).fill(0xee)
    return { r: this.dmaRead(bus, bytes), bytes }
  }
  write(bus: number, bytes: Uint8Array): number {
    return this.dmaWrite(bus, bytes)
  }
}

/** Programs MSI-X entry `vector` to the intc hwirq and returns it. */
function programMsix(m: Machine, fn: PciFunction, vector: number, unmask = true): number {
  const hwirq = m.intc.allocMsiVectors(1)
  const e = 0x2000 + vector * PCI_MSIX_ENTRY_SIZE // TestFn's table: default offset BAR0/2
  fn.mmioWrite(0, e + PCI_MSIX_ENTRY_LOWER_ADDR, 4, 0xfee0_0000)
  fn.mmioWrite(0, e + PCI_MSIX_ENTRY_DATA, 4, hwirq)
  if (unmask) fn.mmioWrite(0, e + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
  return hwirq
}

const msixFlags = MSIX_CAP_OFFSET + PCI_MSIX_FLAGS

describe('PCI bus', () => {
  it('assigns slots, swizzled INTx lines (shared from the fifth function) and aligned BARs above RAM', () => {
    const m = machine()
    const fns = [0, 1, 2, 3, 4].map((i) => m.pci.add(new TestFn({ name: `tf${i}`, bars: [{ size: 0x4000 }, { size: 0x10_0000 }] })))
    expect(fns.map((f) => f.slot)).toEqual([0, 1, 2, 3, 4])
    expect(fns.map((f) => f.intxLine)).toEqual([16, 17, 18, 19, 16])
    expect(fns.map((f) => f.configRead(PCI_INTERRUPT_LINE, 1))).toEqual([16, 17, 18, 19, 16])
    expect(m.pci.mmioBase).toBeGreaterThanOrEqual(PCI_MMIO_WINDOW)
    const ramTop = Math.max(...m.ram.banks.map((b) => b.base + b.size))
    const seen: [number, number][] = []
    for (const f of fns) {
      expect(f.bars.map((b) => b.size)).toEqual([0x4000, 0, 0x10_0000, 0])
      for (const b of f.bars.filter((x) => x.size > 0)) {
        expect(b.base % b.size).toBe(0)
        expect(b.base).toBeGreaterThanOrEqual(ramTop)
        for (const [s, e] of seen) expect(b.base >= e || b.base + b.size <= s).toBe(true)
        seen.push([b.base, b.base + b.size])
      }
    }
    expect(m.pci.functions).toEqual(fns)
    expect(m.pci.find('tf3')).toBe(fns[3])
    expect(fns[2]!.bdf).toBe('0000:00:02.0')
  })

  it('decodes bus addresses to function, BAR and offset', () => {
    const m = machine()
    const a = m.pci.add(new TestFn({ name: 'a' }))
    const b = m.pci.add(new TestFn({ name: 'b', bars: [{ size: 0x1000 }, { size: 0x2000 }], msixVectors: 0 }))
    expect(m.pci.barAt(a.bars[0]!.base + 0x123)).toEqual({ fn: a, bar: 0, off: 0x123 })
    expect(m.pci.barAt(b.bars[2]!.base + 0x1ffc)).toEqual({ fn: b, bar: 2, off: 0x1ffc })
    expect(m.pci.barAt(b.bars[2]!.base + 0x2000)).toBeUndefined()
    expect(m.pci.barAt(RAM)).toBeUndefined()
  })

  it('refuses duplicates and a full bus', () => {
    const m = machine()
    const a = m.pci.add(new TestFn({ name: 'a' }))
    expect(() => m.pci.add(a)).toThrow(PciBusError)
    expect(() => m.pci.add(new TestFn({ name: 'a' }))).toThrow(/already exists/)
    for (let i = 1; i < 32; i++) m.pci.add(new TestFn({ name: `f${i}`, msixVectors: 0 }))
    expect(() => m.pci.add(new TestFn({ name: 'overflow' }))).toThrow(/full/)
  })
})

describe('PCI function: configuration space', () => {
  it('presents the type 0 header with Linux offsets', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    expect(f.configRead(PCI_VENDOR_ID, 2)).toBe(0x1234)
    expect(f.configRead(PCI_DEVICE_ID, 2)).toBe(0x5678)
    expect(f.configRead(PCI_VENDOR_ID, 4)).toBe(0x5678_1234)
    expect(f.configRead(PCI_CLASS_REVISION, 4)).toBe(0xff00_0003)
    expect(f.configRead(PCI_HEADER_TYPE, 1)).toBe(0)
    expect(f.configRead(PCI_SUBSYSTEM_VENDOR_ID, 4)).toBe(0x5678_1234)
    expect(f.configRead(PCI_INTERRUPT_PIN, 1)).toBe(1)
    expect(f.configRead(PCI_COMMAND, 2)).toBe(0)
  })

  it('keeps read-only bits: vendor id, and the I/O enable of a function without I/O BARs', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    f.configWrite(PCI_VENDOR_ID, 2, 0xbeef)
    expect(f.configRead(PCI_VENDOR_ID, 2)).toBe(0x1234)
    f.configWrite(PCI_COMMAND, 2, 0xffff)
    const cmd = f.configRead(PCI_COMMAND, 2)
    expect(cmd & PCI_COMMAND_IO).toBe(0)
    expect(cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE)).toBe(0x406)
  })

  it('sizes and moves a 64-bit BAR the way Linux probes it', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    const base = f.bars[0]!.base
    expect(f.configRead(PCI_BASE_ADDRESS_0, 4) & 0xf).toBe(0x4) // memory, 64-bit, non-prefetchable
    f.configWrite(PCI_BASE_ADDRESS_0, 4, 0xffff_ffff)
    f.configWrite(PCI_BASE_ADDRESS_1, 4, 0xffff_ffff)
    expect(f.configRead(PCI_BASE_ADDRESS_0, 4)).toBe(0xffff_c004) // ~(16 KiB - 1) | flags
    expect(f.configRead(PCI_BASE_ADDRESS_1, 4)).toBe(0xffff_ffff)
    const moved = base + 0x10_0000
    f.configWrite(PCI_BASE_ADDRESS_0, 4, moved % 0x1_0000_0000)
    f.configWrite(PCI_BASE_ADDRESS_1, 4, Math.floor(moved / 0x1_0000_0000))
    expect(f.bars[0]!.base).toBe(moved)
    expect(m.pci.barAt(moved + 8)).toEqual({ fn: f, bar: 0, off: 8 })
  })

  it('lists the MSI-X capability: table size, table and PBA in BAR 0', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    expect(f.configRead(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST).toBe(PCI_STATUS_CAP_LIST)
    const cap = f.configRead(PCI_CAPABILITY_LIST, 1)
    expect(f.configRead(cap, 1)).toBe(PCI_CAP_ID_MSIX)
    expect(f.configRead(cap + 1, 1)).toBe(0) // end of list
    expect(f.configRead(cap + PCI_MSIX_FLAGS, 2) & 0x7ff).toBe(3) // 4 vectors
    expect(f.configRead(cap + PCI_MSIX_TABLE, 4)).toBe(0x2000) // BIR 0
    expect(f.configRead(cap + PCI_MSIX_PBA, 4)).toBe(0x2040)
    const plain = m.pci.add(new TestFn({ name: 'plain', msixVectors: 0 }))
    expect(plain.configRead(PCI_STATUS, 2) & PCI_STATUS_CAP_LIST).toBe(0)
    expect(plain.configRead(PCI_CAPABILITY_LIST, 1)).toBe(0)
  })

  it('rejects accesses outside the 256 bytes and bad widths', () => {
    const f = machine().pci.add(new TestFn())
    expect(() => f.configRead(255, 2)).toThrow(PciConfigError)
    expect(() => f.configWrite(-1, 1, 0)).toThrow(PciConfigError)
    expect(() => f.configRead(0, 3 as 4)).toThrow(/size/)
  })

  it('rejects bad options, naming them', () => {
    expect(() => new TestFn({ name: '' })).toThrow(PciFunctionError)
    expect(() => new TestFn({ vendor: 0x10000 })).toThrow(/vendor/)
    expect(() => new TestFn({ bars: [{ size: 5000 }] })).toThrow(/power of two/)
    expect(() => new TestFn({ bars: [] })).toThrow(/1 to 3 BARs/)
    expect(() => new TestFn({ intxPin: 5 as 4 })).toThrow(/intxPin/)
    expect(() => new TestFn({ msixTableOffset: 0x3ff8 })).toThrow(MsixError)
    expect(() => new TestFn({ msixTableOffset: 0x1000, msixPbaOffset: 0x1010 })).toThrow(/overlap/)
  })
})

describe('PCI function: MMIO decoding', () => {
  it('master-aborts with memory decoding off: all ones, write dropped, guest error', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    const errors: string[] = []
    m.onGuestError = (dev, msg) => errors.push(`${dev}: ${msg}`)
    f.mmioWrite(0, 0x10, 4, 0x1234)
    expect(f.mmioRead(0, 0x10, 4)).toBe(0xffff_ffff)
    expect(f.mmioRead(0, 0x10, 2)).toBe(0xffff)
    expect(f.mmioRead(0, 0x10, 8)).toBe(0xffff_ffff_ffff_ffffn)
    expect(errors).toHaveLength(4)
    expect(errors[0]).toMatch(/^tf0: MMIO write .*PCI_COMMAND_MEMORY/)
    enable(f)
    expect(f.mmioRead(0, 0x10, 4)).toBe(0)
    f.mmioWrite(0, 0x10, 4, 0x1234)
    expect(f.mmioRead(0, 0x10, 4)).toBe(0x1234)
  })

  it('splits 8-byte accesses low dword first and returns a bigint', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    f.mmioWrite(0, 0x20, 8, 0x1122_3344_5566_7788n)
    expect(f.store.get(0x20)).toBe(0x5566_7788)
    expect(f.store.get(0x24)).toBe(0x1122_3344)
    expect(f.mmioRead(0, 0x20, 8)).toBe(0x1122_3344_5566_7788n)
    f.mmioWrite(0, 0x30, 4, -1)
    expect(f.mmioRead(0, 0x30, 4)).toBe(0xffff_ffff)
  })

  it('rejects a BAR that does not exist and accesses past the BAR end', () => {
    const f = machine().pci.add(new TestFn())
    enable(f)
    expect(() => f.mmioRead(1, 0, 4)).toThrow(/no BAR 1/)
    expect(() => f.mmioRead(0, 0x3ffe, 4)).toThrow(PciFunctionError)
    expect(() => f.mmioWrite(0, 0, 3 as 4, 0)).toThrow(/size/)
  })

  it('traces MMIO accesses with virtual time', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const rec = m.tracer.record(['mmio'])
    m.clock.schedule(42, () => f.mmioWrite(0, 8, 4, 7))
    runClock(m)
    f.mmioRead(0, 8, 4)
    rec.stop()
    f.mmioRead(0, 8, 4)
    expect(rec.lines()).toEqual(['42 mmio tf0 bar0+0x8/4 W 0x7', '42 mmio tf0 bar0+0x8/4 R 0x7'])
  })
})

describe('PCI function: bus mastering and DMA helpers', () => {
  it('mirrors PCI_COMMAND_MASTER into the DMA port: off means MEMTX_ERROR and no data', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f, PCI_COMMAND_MEMORY)
    expect(f.dma.busMaster).toBe(false)
    expect(f.write(RAM, new Uint8Array([1, 2, 3]))).toBe(MEMTX_ERROR)
    expect([...ramBytes(m, RAM, 3)]).toEqual([0, 0, 0])
    const { r, bytes } = f.read(RAM, 2)
    expect(r).toBe(MEMTX_ERROR)
    expect([...bytes]).toEqual([0, 0]) // a failed read returns zeroes
    enable(f)
    expect(f.dma.busMaster).toBe(true)
    expect(f.write(RAM, new Uint8Array([1, 2, 3]))).toBe(MEMTX_OK)
    expect([...ramBytes(m, RAM, 3)]).toEqual([1, 2, 3])
  })

  it('fail-dma rules fail the chosen DMA without touching memory', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    m.faults.add({ device: 'tf0', kind: 'fail-dma', after: 1 })
    const dma: number[] = []
    m.tracer.on('dma', (e) => dma.push(e.result))
    expect(f.write(RAM, new Uint8Array([9]))).toBe(MEMTX_OK)
    expect(f.write(RAM + 1, new Uint8Array([9]))).toBe(MEMTX_ERROR)
    expect(f.write(RAM + 2, new Uint8Array([9]))).toBe(MEMTX_OK)
    expect([...ramBytes(m, RAM, 3)]).toEqual([9, 0, 9])
    expect(dma).toEqual([MEMTX_OK, MEMTX_ERROR, MEMTX_OK])
  })
})

describe('PCI function: INTx', () => {
  it('drives its line level-triggered, shows PCI_STATUS_INTERRUPT, and shares the line', () => {
    const m = machine()
    const fns = [0, 1, 2, 3, 4].map((i) => m.pci.add(new TestFn({ name: `tf${i}`, msixVectors: 0 })))
    const [a, , , , e] = fns
    a!.raise()
    e!.raise()
    expect(m.intc.isAsserted(16)).toBe(true)
    expect(a!.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT)
    a!.lower()
    expect(a!.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0)
    expect(m.intc.isAsserted(16)).toBe(true) // e still holds the shared line
    e!.lower()
    expect(m.intc.isAsserted(16)).toBe(false)
  })

  it('PCI_COMMAND_INTX_DISABLE gates the pin but not the status bit', () => {
    const m = machine()
    const f = m.pci.add(new TestFn({ msixVectors: 0 }))
    f.configWrite(PCI_COMMAND, 2, PCI_COMMAND_INTX_DISABLE)
    f.raise()
    expect(m.intc.isAsserted(f.intxLine)).toBe(false)
    expect(f.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT)
    f.configWrite(PCI_COMMAND, 2, 0)
    expect(m.intc.isAsserted(f.intxLine)).toBe(true)
  })

  it('a function without a pin gets no line and raises nothing without MSI-X', () => {
    const m = machine()
    const f = m.pci.add(new TestFn({ intxPin: 0, msixVectors: 0 }))
    expect(f.intxLine).toBe(-1)
    expect(f.configRead(PCI_INTERRUPT_PIN, 1)).toBe(0)
    f.raise()
    expect(m.intc.nextPending()).toBe(-1)
  })
})

describe('PCI function: MSI-X', () => {
  it('sends the programmed message data to the intc and leaves INTx alone', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const hwirq = programMsix(m, f, 2)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    f.raise(2)
    expect(m.intc.nextPending()).toBe(hwirq)
    expect(m.intc.isAsserted(f.intxLine)).toBe(false)
    expect(f.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0)
    expect(() => f.raise(4)).toThrow(/no MSI-X vector 4/)
    expect(hwirq).toBeGreaterThanOrEqual(InterruptController.MSI_BASE)
  })

  it('entries come out of reset masked; a masked vector sets its PBA bit and fires on unmask', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    expect(f.mmioRead(0, 0x2000 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4)).toBe(PCI_MSIX_ENTRY_CTRL_MASKBIT)
    const hwirq = programMsix(m, f, 1, false)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    f.raise(1)
    expect(m.intc.stats.msi).toBe(0)
    expect(f.msixPending(1)).toBe(true)
    expect(f.mmioRead(0, 0x2040, 8)).toBe(0b10n)
    f.mmioWrite(0, 0x2040, 4, 0) // the PBA is read-only
    expect(f.msixPending(1)).toBe(true)
    f.mmioWrite(0, 0x2000 + PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
    expect(f.msixPending(1)).toBe(false)
    expect(m.intc.nextPending()).toBe(hwirq)
    expect(m.intc.stats.msi).toBe(1)
  })

  it('function mask (MASKALL) and bus mastering off hold messages in the PBA', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const hwirq = programMsix(m, f, 0)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)
    f.raise(0)
    expect(f.msixPending(0)).toBe(true)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    expect(m.intc.isMsiPending(hwirq)).toBe(true)
    m.intc.ack(hwirq)
    enable(f, PCI_COMMAND_MEMORY) // an MSI is a memory write: no bus mastering, no message
    f.raise(0)
    expect(m.intc.isMsiPending(hwirq)).toBe(false)
    expect(f.msixPending(0)).toBe(true)
    enable(f)
    expect(m.intc.isMsiPending(hwirq)).toBe(true)
  })

  it('a vector whose data is not an MSI hwirq is a guest error and raises nothing', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const errors: string[] = []
    m.onGuestError = (_d, msg) => errors.push(msg)
    f.mmioWrite(0, 0x2000 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0) // unmasked but never programmed
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    f.raise(0)
    expect(m.intc.stats.raised).toBe(0)
    expect(errors).toEqual(['MSI-X vector 0: message data 0x0 is not an MSI vector (entry not programmed?)'])
  })

  it('enabling MSI-X takes an asserted INTx line down; disabling brings it back', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    f.raise()
    expect(m.intc.isAsserted(f.intxLine)).toBe(true)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    expect(m.intc.isAsserted(f.intxLine)).toBe(false)
    f.configWrite(msixFlags, 2, 0)
    expect(m.intc.isAsserted(f.intxLine)).toBe(true)
  })
})

describe('PCI function: faults, scheduling, reset', () => {
  it('drop-irq swallows one interrupt; spurious-irq adds one after its delay', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const hwirq = programMsix(m, f, 0)
    f.configWrite(msixFlags, 2, PCI_MSIX_FLAGS_ENABLE)
    m.faults.add({ device: 'tf0', kind: 'drop-irq' })
    m.faults.add({ device: 'tf0', kind: 'spurious-irq', delayNs: 500 })
    f.raise(0) // dropped: and the spurious rule does not see this opportunity
    expect(m.intc.stats.msi).toBe(0)
    f.raise(0)
    expect(m.intc.stats.msi).toBe(1)
    m.intc.ack(hwirq)
    runClock(m, 499)
    expect(m.intc.stats.msi).toBe(1)
    runClock(m)
    expect(m.clock.now).toBe(500)
    expect(m.intc.stats.msi).toBe(2)
    expect(m.faults.fired.map((x) => x.kind)).toEqual(['drop-irq', 'spurious-irq'])
  })

  it('a spurious INTx is a pulse on the line, without the status bit', () => {
    const m = machine()
    const f = m.pci.add(new TestFn({ msixVectors: 0 }))
    m.faults.add({ device: 'tf0', kind: 'spurious-irq' })
    const edges: string[] = []
    m.tracer.on('irq', (e) => edges.push(`${e.time}:${e.kind}`))
    f.raise()
    f.lower()
    runClock(m)
    expect(edges).toEqual(['0:assert', '0:deassert', `${SPURIOUS_IRQ_NS}:assert`, `${2 * SPURIOUS_IRQ_NS}:deassert`])
    expect(f.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0)
  })

  it('fault() hands out rules for this function only', () => {
    const m = machine()
    const a = m.pci.add(new TestFn({ name: 'a' }))
    const b = m.pci.add(new TestFn({ name: 'b' }))
    const rule = m.faults.add({ device: 'b', kind: 'error-status', status: 7 })
    expect(a.faultOf('error-status')).toBeNull()
    expect(b.faultOf('delay-completion')).toBeNull()
    expect(b.faultOf('error-status')).toBe(rule)
    expect(b.faultOf('error-status')).toBeNull()
  })

  it('reset cancels scheduled work, masks MSI-X, drops INTx and bus mastering, keeps BARs', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    enable(f)
    const base = f.bars[0]!.base
    let ran = false
    f.later(100, () => (ran = true))
    programMsix(m, f, 0)
    f.raise()
    f.reset()
    runClock(m)
    expect(ran).toBe(false)
    expect(m.intc.isAsserted(f.intxLine)).toBe(false)
    expect(f.dma.busMaster).toBe(false)
    expect(f.configRead(PCI_COMMAND, 2)).toBe(0)
    expect(f.bars[0]!.base).toBe(base)
    expect(f.configRead(PCI_INTERRUPT_LINE, 1)).toBe(f.intxLine)
    expect(m.pci.barAt(base)).toEqual({ fn: f, bar: 0, off: 0 })
    enable(f)
    expect(f.mmioRead(0, 0x2000 + PCI_MSIX_ENTRY_VECTOR_CTRL, 4)).toBe(PCI_MSIX_ENTRY_CTRL_MASKBIT)
    expect(() => f.later(-1, () => undefined)).toThrow(PciFunctionError)
  })

  it('reset cancels every event still pending, after others ran or were cancelled (more than its list compacts at)', () => {
    const m = machine()
    const f = m.pci.add(new TestFn())
    const ran: number[] = []
    const evs: ClockEvent[] = []
    for (let i = 0; i < 100; i++) evs.push(f.later(10 * (i + 1), () => ran.push(i)))
    for (let i = 0; i < 100; i += 3) evs[i]!.cancelled = true
    runClock(m, 500) // events 0..49 fall due: those not cancelled run
    f.later(1, () => ran.push(-1)) // scheduled after some ran and left the list
    f.reset()
    runClock(m)
    expect(ran).toEqual([...Array(50).keys()].filter((i) => i % 3 !== 0))
  })

  it('a function that is not attached has no DMA port', () => {
    const f = new TestFn()
    expect(() => f.dma).toThrow(/not attached/)
    expect(f.machine).toBeNull()
  })
})
