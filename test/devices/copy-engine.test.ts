import { describe, expect, it } from 'vitest'
import {
  CE_CTRL,
  CE_CTRL_CHAIN,
  CE_CTRL_IRQ_EN,
  CE_CTRL_START,
  CE_DESC_COUNT,
  CE_DESC_HI,
  CE_DESC_IRQ,
  CE_DESC_LAST,
  CE_DESC_LO,
  CE_DST_HI,
  CE_DST_LO,
  CE_ERR_BUSY,
  CE_ERR_CHAIN_TOO_LONG,
  CE_ERR_CODE,
  CE_ERR_DESC_ALIGN,
  CE_ERR_DESC_FLAGS,
  CE_ERR_DESC_READ,
  CE_ERR_DMA_READ,
  CE_ERR_DMA_WRITE,
  CE_ERR_INTERNAL,
  CE_ERR_LEN,
  CE_ERR_MODE,
  CE_ERR_SRAM_RANGE,
  CE_FAULT_DELAY_NS,
  CE_ID,
  CE_LEN,
  CE_MAX_CHAIN,
  CE_MAX_LEN,
  CE_MODE_MEM_TO_SRAM,
  CE_MODE_SRAM_TO_MEM,
  CE_MSIX_PBA,
  CE_MSIX_TABLE,
  CE_PIO_ADDR,
  CE_PIO_DATA,
  CE_SRAM_SIZE,
  CE_SRC_HI,
  CE_SRC_LO,
  CE_STATUS,
  CE_STATUS_BUSY,
  CE_STATUS_DESC_DONE,
  CE_STATUS_DONE,
  CE_STATUS_ERR,
  CE_VERSION,
  CopyEngine,
  IOMMU_READ,
  IOMMU_WRITE,
  MEMTX_ACCESS_ERROR,
  MEMTX_DECODE_ERROR,
  MEMTX_ERROR,
  MSIX_CAP_OFFSET,
  PCI_CLASS_REVISION,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_VENDOR_ID,
  PciFunctionError,
} from '../../devices/index.js'
import { copyEngine, enable, HIGH_RAM, pattern, RAM, ramBytes, runClock } from '../helpers/hw.js'

const MODE = (m: number): number => m << 4
const SRC = RAM + 0x10_0000
const DST = RAM + 0x80_0000
const DESC = RAM + 0x1000

function program(w: (off: number, v: number) => void, src: number, dst: number, len: number): void {
  w(CE_SRC_LO, src % 0x1_0000_0000)
  w(CE_SRC_HI, Math.floor(src / 0x1_0000_0000))
  w(CE_DST_LO, dst % 0x1_0000_0000)
  w(CE_DST_HI, Math.floor(dst / 0x1_0000_0000))
  w(CE_LEN, len)
}

/** Writes a 32-byte chain descriptor straight into RAM (the device reads DRAM). */
function descriptor(ram: { write(pa: number, src: Uint8Array, off: number, len: number): void }, at: number, d: { src: number; dst: number; len: number; flags: number; next?: number }): void {
  const b = new Uint8Array(32)
  const v = new DataView(b.buffer)
  v.setBigUint64(0, BigInt(d.src), true)
  v.setBigUint64(8, BigInt(d.dst), true)
  v.setUint32(16, d.len, true)
  v.setUint32(20, d.flags, true)
  v.setBigUint64(24, BigInt(d.next ?? 0), true)
  ram.write(at, b, 0, 32)
}

function enableMsix(hw: ReturnType<typeof copyEngine>): number {
  const { m, ce } = hw
  const hwirq = m.intc.allocMsiVectors(1)
  ce.mmioWrite(0, CE_MSIX_TABLE + PCI_MSIX_ENTRY_DATA, 4, hwirq)
  ce.mmioWrite(0, CE_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
  ce.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE)
  return hwirq
}

describe('copy engine: identity', () => {
  it('is a PCI function with the datasheet ids, one 4 KiB BAR and a 1-vector MSI-X table', () => {
    const { ce, r, m } = copyEngine()
    expect(ce.configRead(PCI_VENDOR_ID, 2)).toBe(0x1de5)
    expect(ce.configRead(PCI_DEVICE_ID, 2)).toBe(0xce01)
    expect(ce.configRead(PCI_CLASS_REVISION, 4) >>> 8).toBe(0x088000)
    expect(ce.bars[0]!.size).toBe(0x1000)
    expect(ce.msixVectors).toBe(1)
    expect(ce.configRead(MSIX_CAP_OFFSET + PCI_MSIX_TABLE, 4)).toBe(CE_MSIX_TABLE)
    expect(ce.configRead(MSIX_CAP_OFFSET + PCI_MSIX_PBA, 4)).toBe(CE_MSIX_PBA)
    expect(r(CE_ID)).toBe(0xce01_1de5)
    expect(r(CE_VERSION)).toBe(0x0001_0000)
    expect(r(CE_SRAM_SIZE)).toBe(4 << 20)
    expect(ce.name).toBe('ce0')
    expect(m.pci.find('ce0')).toBe(ce)
  })

  it('ID and status are read-only; CTRL START reads back as 0', () => {
    const { w, r } = copyEngine()
    w(CE_ID, 0)
    w(CE_STATUS, 0xffff_ffff)
    w(CE_CTRL, CE_CTRL_IRQ_EN | MODE(CE_MODE_MEM_TO_SRAM) | CE_CTRL_CHAIN | 0xf000_0000)
    expect(r(CE_ID)).toBe(0xce01_1de5)
    expect(r(CE_STATUS)).toBe(0)
    expect(r(CE_CTRL)).toBe(CE_CTRL_IRQ_EN | MODE(CE_MODE_MEM_TO_SRAM) | CE_CTRL_CHAIN)
  })

  it('rejects bad options, naming them', () => {
    expect(() => new CopyEngine({ sramSize: 6 })).toThrow(/sramSize/)
    expect(() => new CopyEngine({ bytesPerNs: 0 })).toThrow(PciFunctionError)
    expect(() => new CopyEngine({ setupNs: -1 })).toThrow(/setupNs/)
  })
})

describe('copy engine: single transfers', () => {
  it('copies memory to memory at completion, setupNs + len / bytesPerNs after START', () => {
    const hw = copyEngine()
    const { m, w, r } = hw
    const data = pattern(10_000)
    m.ram.write(SRC, data, 0, data.length)
    program(w, SRC, DST, data.length)
    m.clock.now = 5000
    w(CE_CTRL, CE_CTRL_START)
    expect(r(CE_STATUS)).toBe(CE_STATUS_BUSY)
    const done = 5000 + 1000 + 10_000 / 4
    runClock(m, done - 1)
    expect(r(CE_STATUS)).toBe(CE_STATUS_BUSY)
    expect(ramBytes(m, DST, 16).every((b) => b === 0)).toBe(true) // nothing moved yet
    runClock(m)
    expect(m.clock.now).toBe(done)
    expect(r(CE_STATUS)).toBe(CE_STATUS_DONE)
    expect(ramBytes(m, DST, data.length)).toEqual(data)
    expect(ramBytes(m, DST + data.length, 4)).toEqual(new Uint8Array(4)) // not a byte more
    expect(hw.ce.stats).toEqual({ transfers: 1, descriptors: 0, bytes: 10_000 })
  })

  it('follows the configured cost model, rounding up to whole ns', () => {
    const { m, w } = copyEngine({ setupNs: 200, bytesPerNs: 0.5 })
    program(w, SRC, DST, 101)
    w(CE_CTRL, CE_CTRL_START)
    runClock(m)
    expect(m.clock.now).toBe(200 + 202)
    const ce2 = new CopyEngine({ setupNs: 0, bytesPerNs: 3 })
    expect(ce2.transferNs(10)).toBe(4)
  })

  it('moves the bytes through the DMA port in bursts, each one read then one write', () => {
    const burstsOf = (burstBytes: number | undefined, len: number): string[] => {
      const { m, w } = copyEngine(burstBytes === undefined ? {} : { burstBytes })
      program(w, SRC, DST, len)
      const rec = m.tracer.record(['dma'])
      w(CE_CTRL, CE_CTRL_START)
      runClock(m)
      expect(new Set(rec.records.map((x) => x.data.time))).toEqual(new Set([m.clock.now])) // all at completion
      return rec.records.map((x) => (x.event === 'dma' ? `${x.data.write ? 'W' : 'R'}${x.data.len}@${(x.data.bus - (x.data.write ? DST : SRC)).toString(16)}` : ''))
    }
    expect(burstsOf(4096, 9000)).toEqual(['R4096@0', 'W4096@0', 'R4096@1000', 'W4096@1000', 'R808@2000', 'W808@2000'])
    expect(burstsOf(undefined, 0x1_8000)).toEqual(['R65536@0', 'W65536@0', 'R32768@10000', 'W32768@10000'])
    expect(() => new CopyEngine({ burstBytes: 6000 })).toThrow(/burstBytes/)
  })

  it('copies across IOMMU pages that are scattered in physical memory', () => {
    const { m, ce, w, start } = copyEngine({}, { iommu: 'strict' })
    const data = pattern(3 * 4096)
    const d = ce.dma.domain!
    // Source IOVA pages map to physical pages in reverse order; the destination to two banks.
    for (let i = 0; i < 3; i++) d.map(0x10_0000 + i * 4096, SRC + (2 - i) * 0x1_0000, 4096, IOMMU_READ)
    for (let i = 0; i < 3; i++) m.ram.write(SRC + (2 - i) * 0x1_0000, data.subarray(i * 4096, (i + 1) * 4096), 0, 4096)
    d.map(0x20_0000, DST, 0x2000, IOMMU_READ | IOMMU_WRITE)
    d.map(0x20_2000, HIGH_RAM, 0x1000, IOMMU_READ | IOMMU_WRITE)
    program(w, 0x10_0100, 0x20_0000, 3 * 4096 - 0x100)
    expect(start(0)).toBe(CE_STATUS_DONE)
    expect(ramBytes(m, DST, 0x2000)).toEqual(data.subarray(0x100, 0x2100))
    expect(ramBytes(m, HIGH_RAM, 0xf00)).toEqual(data.subarray(0x2100, 0x3000))
  })

  it('a coherent engine reads dirty CPU cache lines (x86_64 snooping)', () => {
    const { m, w, start } = copyEngine({}, { arch: 'x86_64' })
    const data = pattern(256)
    m.cache.write(SRC, data, 0, 256) // in the CPU cache, not yet in DRAM
    expect(ramBytes(m, SRC, 4)).toEqual(new Uint8Array(4))
    program(w, SRC, DST, 256)
    expect(start(0)).toBe(CE_STATUS_DONE)
    expect(ramBytes(m, DST, 256)).toEqual(data)
    const arm = copyEngine({}, { arch: 'arm64' }) // non-coherent: the engine sees DRAM only
    arm.m.cache.write(SRC, data, 0, 256)
    program(arm.w, SRC, DST, 256)
    expect(arm.start(0)).toBe(CE_STATUS_DONE)
    expect(ramBytes(arm.m, DST, 256)).toEqual(new Uint8Array(256))
  })

  it('reaches RAM above 4 GiB with a 64-bit engine; a 32-bit engine drops the high address bits', () => {
    const data = pattern(64, 3)
    const wide = copyEngine()
    wide.m.ram.write(SRC, data, 0, 64)
    program(wide.w, SRC, HIGH_RAM + 0x4000_0000, 64)
    wide.start(0)
    expect(ramBytes(wide.m, HIGH_RAM + 0x4000_0000, 64)).toEqual(data)
    const narrow = copyEngine({ addressBits: 32 })
    narrow.m.ram.write(SRC, data, 0, 64)
    program(narrow.w, SRC, HIGH_RAM + 0x4000_0000, 64) // 0x8_4000_0000 -> 0x4000_0000 on a 32-bit bus
    narrow.start(0)
    expect(ramBytes(narrow.m, HIGH_RAM + 0x4000_0000, 64)).toEqual(new Uint8Array(64))
    expect(ramBytes(narrow.m, 0x4000_0000, 64)).toEqual(data)
  })

  it('fails with bus mastering off: ERR, ERR_CODE = DMA_READ | MEMTX_ERROR << 8, no data, traced', () => {
    const { m, ce, w, r, start } = copyEngine()
    enable(ce, PCI_COMMAND_MEMORY)
    m.ram.write(SRC, pattern(64), 0, 64)
    program(w, SRC, DST, 64)
    const results: number[] = []
    m.tracer.on('dma', (e) => results.push(e.result))
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_DMA_READ | (MEMTX_ERROR << 8))
    expect(ramBytes(m, DST, 64)).toEqual(new Uint8Array(64))
    expect(results).toEqual([MEMTX_ERROR])
  })

  it('reports an IOMMU fault as a failed DMA write; mapped IOVAs work', () => {
    const { m, ce, w, r, start } = copyEngine({}, { iommu: 'strict' })
    const data = pattern(256)
    m.ram.write(SRC, data, 0, 256)
    ce.dma.domain!.map(0x10_0000, SRC, 0x1000, IOMMU_READ)
    program(w, 0x10_0000, 0x20_0000, 256)
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_DMA_WRITE | (MEMTX_ACCESS_ERROR << 8))
    expect(m.iommuFaults).toEqual([{ device: 'ce0', iova: 0x20_0000, write: true, reason: 'unmapped' }])
    w(CE_STATUS, CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(0) // cleared with ERR
    ce.dma.domain!.map(0x20_0000, DST, 0x1000, IOMMU_READ | IOMMU_WRITE)
    expect(start(0)).toBe(CE_STATUS_DONE)
    expect(ramBytes(m, DST, 256)).toEqual(data)
  })

  it('a transfer from unbacked addresses is a decode error', () => {
    const { w, r, start } = copyEngine()
    program(w, 0x1000, DST, 16) // below RAM
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_DMA_READ | (MEMTX_DECODE_ERROR << 8))
  })
})

describe('copy engine: interrupts', () => {
  it('INTx: asserted at completion with IRQ_EN, held (level) until DONE is cleared', () => {
    const { m, ce, w, r } = copyEngine()
    program(w, SRC, DST, 4096)
    w(CE_CTRL, CE_CTRL_START | CE_CTRL_IRQ_EN)
    runClock(m, 1000 + 1023)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
    runClock(m)
    expect(m.clock.now).toBe(2024)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(true)
    expect(m.intc.nextPending()).toBe(ce.intxLine)
    expect(ce.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(PCI_STATUS_INTERRUPT)
    m.intc.ack(ce.intxLine)
    m.clock.now += 1_000_000
    expect(m.intc.isAsserted(ce.intxLine)).toBe(true) // level: ack and time do not lower it
    w(CE_STATUS, 0) // writing 0 clears nothing
    expect(m.intc.isAsserted(ce.intxLine)).toBe(true)
    w(CE_STATUS, CE_STATUS_DONE)
    expect(r(CE_STATUS)).toBe(0)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
    expect(ce.configRead(PCI_STATUS, 2) & PCI_STATUS_INTERRUPT).toBe(0)
  })

  it('without IRQ_EN nothing is raised; setting IRQ_EN with DONE pending raises; clearing it lowers', () => {
    const { m, ce, w, start } = copyEngine()
    program(w, SRC, DST, 64)
    expect(start(0)).toBe(CE_STATUS_DONE)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
    w(CE_CTRL, CE_CTRL_IRQ_EN)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(true)
    w(CE_CTRL, 0)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
  })

  it('MSI-X: one message per completion through the table; clearing DONE sends nothing', () => {
    const hw = copyEngine()
    const { m, ce, w } = hw
    const hwirq = enableMsix(hw)
    program(w, SRC, DST, 64)
    hw.start(CE_CTRL_IRQ_EN)
    expect(m.intc.nextPending()).toBe(hwirq)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
    m.intc.ack(hwirq)
    w(CE_STATUS, CE_STATUS_DONE)
    expect(m.intc.nextPending()).toBe(-1)
    hw.start(CE_CTRL_IRQ_EN)
    expect(m.intc.stats.msi).toBe(2)
  })

  it('MSI-X: a masked vector leaves its PBA bit set and fires on unmask', () => {
    const hw = copyEngine()
    const { m, ce, w } = hw
    const hwirq = enableMsix(hw)
    ce.mmioWrite(0, CE_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 1)
    program(w, SRC, DST, 64)
    hw.start(CE_CTRL_IRQ_EN)
    expect(m.intc.stats.msi).toBe(0)
    expect(ce.mmioRead(0, CE_MSIX_PBA, 4)).toBe(1)
    ce.mmioWrite(0, CE_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
    expect(ce.mmioRead(0, CE_MSIX_PBA, 4)).toBe(0)
    expect(m.intc.nextPending()).toBe(hwirq)
  })

  it('errors interrupt too (ERR with IRQ_EN)', () => {
    const { m, ce, w, r } = copyEngine()
    w(CE_LEN, 0)
    w(CE_CTRL, CE_CTRL_START | CE_CTRL_IRQ_EN)
    expect(r(CE_STATUS)).toBe(CE_STATUS_ERR)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(true)
    w(CE_STATUS, CE_STATUS_ERR)
    expect(m.intc.isAsserted(ce.intxLine)).toBe(false)
  })
})

describe('copy engine: guest errors', () => {
  it('START while BUSY: ERR + ERR_CODE BUSY, and the running transfer still completes', () => {
    const { m, w, r, errors } = copyEngine()
    const data = pattern(4096)
    m.ram.write(SRC, data, 0, 4096)
    program(w, SRC, DST, 4096)
    w(CE_CTRL, CE_CTRL_START)
    program(w, SRC, DST + 0x1_0000, 4096)
    w(CE_CTRL, CE_CTRL_START)
    expect(r(CE_STATUS)).toBe(CE_STATUS_BUSY | CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_BUSY)
    expect(errors).toEqual([{ device: 'ce0', message: 'START written while a transfer is in progress (STATUS.BUSY)', details: { code: CE_ERR_BUSY, ctrl: 1 } }])
    runClock(m)
    expect(r(CE_STATUS)).toBe(CE_STATUS_DONE | CE_STATUS_ERR)
    expect(ramBytes(m, DST, 4096)).toEqual(data)
    expect(ramBytes(m, DST + 0x1_0000, 4)).toEqual(new Uint8Array(4)) // the second START was ignored
  })

  const cases: [string, (w: (off: number, v: number) => void) => number, number, RegExp][] = [
    ['LEN 0', (w) => (program(w, SRC, DST, 0), 0), CE_ERR_LEN, /length 0 is outside/],
    ['LEN beyond the limit', (w) => (program(w, SRC, DST, CE_MAX_LEN + 1), 0), CE_ERR_LEN, /length 67108865/],
    ['SRAM destination out of range', (w) => (program(w, SRC, (4 << 20) - 8, 16), MODE(CE_MODE_MEM_TO_SRAM)), CE_ERR_SRAM_RANGE, /SRAM range 0x3ffff8\+16/],
    ['SRAM source out of range', (w) => (program(w, 4 << 20, DST, 4), MODE(CE_MODE_SRAM_TO_MEM)), CE_ERR_SRAM_RANGE, /exceeds the 4194304-byte SRAM/],
    ['reserved MODE 3', (w) => (program(w, SRC, DST, 4), MODE(3)), CE_ERR_MODE, /MODE 3 is reserved/],
    ['misaligned descriptor address', (w) => (w(CE_DESC_LO, DESC + 8), CE_CTRL_CHAIN), CE_ERR_DESC_ALIGN, /0x40001008 is not 32-byte aligned/],
  ]
  for (const [name, setup, code, message] of cases) {
    it(`${name}: ERR, ERR_CODE ${code}, a guest error, no DMA`, () => {
      const { m, w, r, errors } = copyEngine()
      const ctrl = setup(w)
      const dma: unknown[] = []
      m.tracer.on('dma', (e) => dma.push(e))
      w(CE_CTRL, CE_CTRL_START | ctrl)
      expect(r(CE_STATUS)).toBe(CE_STATUS_ERR) // at once, never BUSY
      expect(r(CE_ERR_CODE)).toBe(code)
      expect(errors).toHaveLength(1)
      expect(errors[0]!.message).toMatch(message)
      expect(errors[0]!.details!['code']).toBe(code)
      runClock(m)
      expect(dma).toEqual([])
    })
  }

  it('PIO beyond the SRAM: a guest error, reads all ones, PIO_ADDR stays', () => {
    const { w, r, errors } = copyEngine({ sramSize: 64 })
    w(CE_PIO_ADDR, 64)
    expect(r(CE_PIO_DATA)).toBe(0xffff_ffff)
    w(CE_PIO_DATA, 5)
    expect(r(CE_PIO_ADDR)).toBe(64)
    expect(errors.map((e) => e.message)).toEqual([
      'PIO_DATA read at PIO_ADDR 0x40 beyond the 64-byte SRAM',
      'PIO_DATA write at PIO_ADDR 0x40 beyond the 64-byte SRAM',
    ])
  })
})

describe('copy engine: descriptor chains', () => {
  it('walks a scatter-gather list from memory: data, timing, DESC_COUNT, one IRQ at the end', () => {
    const { m, ce, w, r } = copyEngine()
    const parts = [pattern(3000, 1), pattern(5000, 2), pattern(100, 3)]
    const srcs = [SRC, SRC + 0x4_0000, SRC + 0x9_1000]
    parts.forEach((p, i) => m.ram.write(srcs[i]!, p, 0, p.length))
    descriptor(m.ram, DESC, { src: srcs[0]!, dst: DST, len: 3000, flags: 0, next: DESC + 0x200 })
    descriptor(m.ram, DESC + 0x200, { src: srcs[1]!, dst: DST + 3000, len: 5000, flags: 0, next: DESC + 0x40 })
    descriptor(m.ram, DESC + 0x40, { src: srcs[2]!, dst: DST + 8000, len: 100, flags: CE_DESC_LAST, next: 0xdead })
    w(CE_DESC_LO, DESC)
    w(CE_DESC_HI, 0)
    w(CE_CTRL, CE_CTRL_START | CE_CTRL_CHAIN | CE_CTRL_IRQ_EN)
    const edges: number[] = []
    m.tracer.on('irq', (e) => edges.push(e.time))
    runClock(m)
    expect(m.clock.now).toBe(3 * 1000 + (3000 + 5000 + 100) / 4)
    expect(edges).toEqual([m.clock.now])
    expect(r(CE_STATUS)).toBe(CE_STATUS_DONE)
    expect(r(CE_DESC_COUNT)).toBe(3)
    const all = new Uint8Array(8100)
    all.set(parts[0]!, 0)
    all.set(parts[1]!, 3000)
    all.set(parts[2]!, 8000)
    expect(ramBytes(m, DST, 8100)).toEqual(all)
    expect(ce.stats).toEqual({ transfers: 1, descriptors: 3, bytes: 8100 })
  })

  it('re-reads each descriptor when it starts, and raises DESC_DONE for IRQ descriptors mid-chain', () => {
    const hw = copyEngine()
    const { m, w, r } = hw
    const hwirq = enableMsix(hw)
    descriptor(m.ram, DESC, { src: SRC, dst: DST, len: 400, flags: CE_DESC_IRQ, next: DESC + 32 })
    descriptor(m.ram, DESC + 32, { src: SRC, dst: DST + 0x1000, len: 4, flags: CE_DESC_LAST })
    w(CE_DESC_LO, DESC)
    w(CE_CTRL, CE_CTRL_START | CE_CTRL_CHAIN | CE_CTRL_IRQ_EN)
    // Rewrite the second descriptor after START, before the engine reaches it.
    descriptor(m.ram, DESC + 32, { src: SRC, dst: DST + 0x2000, len: 8, flags: CE_DESC_LAST })
    m.ram.write(SRC, pattern(8), 0, 8)
    runClock(m, 1000 + 100)
    expect(r(CE_STATUS)).toBe(CE_STATUS_BUSY | CE_STATUS_DESC_DONE)
    expect(m.intc.nextPending()).toBe(hwirq)
    m.intc.ack(hwirq)
    w(CE_STATUS, CE_STATUS_DESC_DONE)
    runClock(m)
    expect(m.clock.now).toBe(1100 + 1000 + 2)
    expect(r(CE_STATUS)).toBe(CE_STATUS_DONE)
    expect(m.intc.stats.msi).toBe(2)
    expect(ramBytes(m, DST + 0x2000, 8)).toEqual(pattern(8))
    expect(ramBytes(m, DST + 0x1000, 4)).toEqual(new Uint8Array(4))
  })

  it('rejects malformed descriptors: reserved flags, misaligned next, bad length', () => {
    const flags = copyEngine()
    descriptor(flags.m.ram, DESC, { src: SRC, dst: DST, len: 4, flags: 0x80 | CE_DESC_LAST })
    flags.w(CE_DESC_LO, DESC)
    expect(flags.start(CE_CTRL_CHAIN)).toBe(CE_STATUS_ERR)
    expect(flags.r(CE_ERR_CODE)).toBe(CE_ERR_DESC_FLAGS)
    expect(flags.errors[0]!.message).toBe('descriptor 0 at 0x40001000: reserved flag bits set (0x81)')

    const next = copyEngine()
    descriptor(next.m.ram, DESC, { src: SRC, dst: DST, len: 4, flags: 0, next: DESC + 0x44 })
    next.w(CE_DESC_LO, DESC)
    expect(next.start(CE_CTRL_CHAIN)).toBe(CE_STATUS_ERR)
    expect(next.r(CE_ERR_CODE)).toBe(CE_ERR_DESC_ALIGN)
    expect(next.r(CE_DESC_COUNT)).toBe(1) // the first descriptor was done
    expect(next.errors[0]!.message).toMatch(/next 0x40001044 is not 32-byte aligned/)

    const len = copyEngine()
    descriptor(len.m.ram, DESC, { src: SRC, dst: DST, len: 0, flags: CE_DESC_LAST })
    len.w(CE_DESC_LO, DESC)
    expect(len.start(CE_CTRL_CHAIN)).toBe(CE_STATUS_ERR)
    expect(len.r(CE_ERR_CODE)).toBe(CE_ERR_LEN)
    expect(len.errors[0]!.message).toBe('descriptor 0: length 0 is outside 1..67108864')
  })

  it('a descriptor fetch that fails is DESC_READ with the bus result, and not a guest error', () => {
    const { w, r, start, errors } = copyEngine()
    w(CE_DESC_LO, 0x2000) // no RAM there
    expect(start(CE_CTRL_CHAIN)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_DESC_READ | (MEMTX_DECODE_ERROR << 8))
    expect(errors).toEqual([])
  })

  it('gives up on a chain that loops', () => {
    const { m, w, r, start } = copyEngine({ setupNs: 1, bytesPerNs: 1024 })
    descriptor(m.ram, DESC, { src: SRC, dst: DST, len: 4, flags: 0, next: DESC })
    w(CE_DESC_LO, DESC)
    expect(start(CE_CTRL_CHAIN)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_CHAIN_TOO_LONG)
    expect(r(CE_DESC_COUNT)).toBe(CE_MAX_CHAIN)
  })

  it('chains into and out of the SRAM (MODE applies to every descriptor)', () => {
    const { m, ce, w, start } = copyEngine()
    m.ram.write(SRC, pattern(64, 9), 0, 64)
    descriptor(m.ram, DESC, { src: SRC, dst: 0x100, len: 32, flags: 0, next: DESC + 32 })
    descriptor(m.ram, DESC + 32, { src: SRC + 32, dst: 0x200, len: 32, flags: CE_DESC_LAST })
    w(CE_DESC_LO, DESC)
    expect(start(CE_CTRL_CHAIN | MODE(CE_MODE_MEM_TO_SRAM))).toBe(CE_STATUS_DONE)
    expect(ce.sram.subarray(0x100, 0x120)).toEqual(pattern(64, 9).subarray(0, 32))
    expect(ce.sram.subarray(0x200, 0x220)).toEqual(pattern(64, 9).subarray(32, 64))
  })
})

describe('copy engine: SRAM and the PIO port', () => {
  it('PIO writes land in SRAM with auto-increment, and DMA carries them to memory', () => {
    const { m, ce, w, r, start } = copyEngine()
    w(CE_PIO_ADDR, 0x10)
    for (const v of [0x0403_0201, 0x0807_0605, 0xdead_beef]) w(CE_PIO_DATA, v)
    expect(r(CE_PIO_ADDR)).toBe(0x1c)
    expect([...ce.sram.subarray(0x10, 0x1c)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xef, 0xbe, 0xad, 0xde])
    program(w, 0x10, DST, 12)
    expect(start(MODE(CE_MODE_SRAM_TO_MEM))).toBe(CE_STATUS_DONE)
    expect([...ramBytes(m, DST, 12)]).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 0xef, 0xbe, 0xad, 0xde])
  })

  it('DMA fills SRAM and PIO reads it back; PIO_ADDR ignores its low two bits', () => {
    const { m, w, r, start } = copyEngine()
    m.ram.write(SRC, new Uint8Array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]), 0, 8)
    program(w, SRC, 0x40, 8)
    expect(start(MODE(CE_MODE_MEM_TO_SRAM))).toBe(CE_STATUS_DONE)
    w(CE_PIO_ADDR, 0x43)
    expect(r(CE_PIO_ADDR)).toBe(0x40)
    expect(r(CE_PIO_DATA)).toBe(0x4433_2211)
    expect(r(CE_PIO_DATA)).toBe(0x8877_6655)
    expect(r(CE_PIO_ADDR)).toBe(0x48)
  })

  it('fresh SRAM reads as zeroes', () => {
    const { ce, w, r } = copyEngine({ sramSize: 1 << 20 })
    w(CE_PIO_ADDR, 0)
    expect(r(CE_PIO_DATA)).toBe(0)
    expect(ce.sram.length).toBe(1 << 20)
    expect(new CopyEngine({ sramSize: 8 }).sramSize).toBe(8)
  })
})

describe('copy engine: fault injection', () => {
  it('delay-completion adds its delay (default 1 ms) to the chosen completion', () => {
    const { m, w, start } = copyEngine()
    m.faults.add({ device: 'ce0', kind: 'delay-completion', delayNs: 5000, after: 1 })
    m.faults.add({ device: 'ce0', kind: 'delay-completion', after: 2 })
    program(w, SRC, DST, 4)
    const t: number[] = []
    for (let i = 0; i < 4; i++) {
      const t0 = m.clock.now
      start(0)
      t.push(m.clock.now - t0)
    }
    expect(t).toEqual([1001, 6001, 1001 + CE_FAULT_DELAY_NS, 1001])
  })

  it('error-status completes with ERR and the rule status, moving no data', () => {
    const { m, w, r, start, errors } = copyEngine()
    m.ram.write(SRC, pattern(16), 0, 16)
    m.faults.add({ device: 'ce0', kind: 'error-status', status: 0x42 })
    m.faults.add({ device: 'ce0', kind: 'error-status', after: 1 })
    program(w, SRC, DST, 16)
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(0x42)
    w(CE_STATUS, CE_STATUS_ERR)
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_INTERNAL)
    expect(ramBytes(m, DST, 16)).toEqual(new Uint8Array(16))
    expect(errors).toEqual([]) // the injector, not the guest, caused it
  })

  it('drop-irq: DONE is set but the interrupt is lost', () => {
    const hw = copyEngine()
    const hwirq = enableMsix(hw)
    hw.m.faults.add({ device: 'ce0', kind: 'drop-irq' })
    program(hw.w, SRC, DST, 4)
    expect(hw.start(CE_CTRL_IRQ_EN)).toBe(CE_STATUS_DONE)
    expect(hw.m.intc.isMsiPending(hwirq)).toBe(false)
    hw.w(CE_STATUS, CE_STATUS_DONE)
    hw.start(CE_CTRL_IRQ_EN)
    expect(hw.m.intc.isMsiPending(hwirq)).toBe(true)
  })

  it('spurious-irq: a second message with nothing new to report', () => {
    const hw = copyEngine()
    const hwirq = enableMsix(hw)
    hw.m.faults.add({ device: 'ce0', kind: 'spurious-irq', delayNs: 100 })
    program(hw.w, SRC, DST, 4)
    hw.w(CE_CTRL, CE_CTRL_START | CE_CTRL_IRQ_EN)
    runClock(hw.m, 1001)
    hw.m.intc.ack(hwirq)
    hw.w(CE_STATUS, CE_STATUS_DONE)
    runClock(hw.m)
    expect(hw.m.clock.now).toBe(1101)
    expect(hw.m.intc.isMsiPending(hwirq)).toBe(true)
    expect(hw.r(CE_STATUS)).toBe(0)
  })

  it('fail-dma on the second burst: ERR DMA_WRITE, the first burst already landed', () => {
    const { m, w, r, start } = copyEngine({ burstBytes: 4096 })
    const data = pattern(8192)
    m.ram.write(SRC, data, 0, 8192)
    m.faults.add({ device: 'ce0', kind: 'fail-dma', after: 3 }) // read0 write0 read1 | write1
    program(w, SRC, DST, 8192)
    expect(start(0)).toBe(CE_STATUS_ERR)
    expect(r(CE_ERR_CODE)).toBe(CE_ERR_DMA_WRITE | (MEMTX_ERROR << 8))
    expect(ramBytes(m, DST, 4096)).toEqual(data.subarray(0, 4096))
    expect(ramBytes(m, DST + 4096, 4096)).toEqual(new Uint8Array(4096))
  })
})

describe('copy engine: tracer and determinism', () => {
  function traced(seed: number): string[] {
    const hw = copyEngine({}, { seed })
    const rec = hw.m.tracer.record()
    enableMsix(hw)
    descriptor(hw.m.ram, DESC, { src: SRC, dst: DST, len: 5000, flags: CE_DESC_IRQ, next: DESC + 32 })
    descriptor(hw.m.ram, DESC + 32, { src: SRC, dst: DST + 8192, len: 64, flags: CE_DESC_LAST })
    hw.w(CE_DESC_LO, DESC)
    hw.w(CE_DESC_HI, 0)
    hw.start(CE_CTRL_CHAIN | CE_CTRL_IRQ_EN)
    hw.w(CE_LEN, 0)
    hw.w(CE_CTRL, CE_CTRL_START)
    rec.stop()
    return rec.lines()
  }

  it('traces MMIO, DMA, MSI and guest errors in virtual time, identically run after run', () => {
    const a = traced(1)
    expect(a).toEqual(traced(1))
    expect(a).toEqual(traced(2)) // nothing in the copy engine is random
    expect(a).toContain('0 mmio ce0 bar0+0x24/4 W 0x103')
    expect(a).toContain('0 dma ce0 R 0x40001000+32 result=0')
    expect(a).toContain('2250 dma ce0 R 0x40100000+5000 result=0')
    expect(a).toContain('2250 dma ce0 W 0x40800000+5000 result=0')
    expect(a).toContain('2250 irq 1024 msi')
    expect(a.at(-2)).toBe('3266 mmio ce0 bar0+0x24/4 W 0x1')
    expect(a.at(-1)).toMatch(/^3266 guest-error ce0: length 0 is outside/)
  })

  it('reset aborts a transfer in flight and restores the registers', () => {
    const { m, ce, w, r } = copyEngine()
    m.ram.write(SRC, pattern(64), 0, 64)
    program(w, SRC, DST, 64)
    w(CE_CTRL, CE_CTRL_START | CE_CTRL_IRQ_EN)
    ce.reset()
    expect(ce.busy).toBe(false)
    runClock(m)
    expect(ramBytes(m, DST, 64)).toEqual(new Uint8Array(64))
    enable(ce)
    expect(r(CE_STATUS)).toBe(0)
    expect(r(CE_CTRL)).toBe(0)
    expect(r(CE_SRC_LO)).toBe(0)
    expect(r(CE_SRAM_SIZE)).toBe(4 << 20)
  })
})
