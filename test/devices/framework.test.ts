import { describe, expect, it } from 'vitest'
import {
  FaultInjector,
  FaultRuleError,
  MEMTX_ACCESS_ERROR,
  MEMTX_ERROR,
  MEMTX_OK,
  MEMTX_WRITE_SIDE,
  type DmaObserver,
  RegisterFile,
  RegisterFileError,
  Tracer,
  VirtualClock,
  formatRecord,
  type FaultRule,
  type RegisterSpec,
} from '../../devices/index.js'
import { machine, RAM } from '../helpers/hw.js'

describe('RegisterFile', () => {
  function regs(extra: RegisterSpec[] = []) {
    const log: string[] = []
    const rf = new RegisterFile('dev', [
      { name: 'ID', offset: 0x0, readOnly: true, reset: 0xcafe_f00d },
      { name: 'A', offset: 0x4, reset: 0x1122_3344, write: (v, old) => log.push(`A ${v.toString(16)} ${old.toString(16)}`) },
      { name: 'ST', offset: 0x8, w1c: true, writeMask: 0x6, write: (v, old) => log.push(`ST ${v} ${old}`) },
      { name: 'B', offset: 0xc, size: 2, reset: 0xbeef },
      { name: 'C', offset: 0xe, size: 1 },
      { name: 'Q', offset: 0x10, size: 8 },
      { name: 'CNT', offset: 0x18, read: () => ++reads },
      ...extra,
    ])
    let reads = 0
    return { rf, log, reads: () => reads }
  }

  it('reads and writes whole registers, with reset values', () => {
    const { rf, log } = regs()
    expect(rf.read(0x0, 4)).toBe(0xcafe_f00d)
    expect(rf.read(0x4, 4)).toBe(0x1122_3344)
    rf.write(0x4, 4, 0xdead_beef)
    expect(rf.get('A')).toBe(0xdead_beef)
    expect(log).toEqual(['A deadbeef 11223344'])
    rf.write(0x0, 4, 0)
    expect(rf.get('ID')).toBe(0xcafe_f00d)
    rf.write(0x4, 4, -1)
    expect(rf.get('A')).toBe(0xffff_ffff) // a JavaScript -1 is all ones
  })

  it('merges sub-word writes into the bytes written and extracts sub-word reads', () => {
    const { rf } = regs()
    rf.write(0x5, 1, 0xaa)
    expect(rf.get('A')).toBe(0x1122_aa44)
    rf.write(0x6, 2, 0x5566)
    expect(rf.get('A')).toBe(0x5566_aa44)
    expect(rf.read(0x6, 2)).toBe(0x5566)
    expect(rf.read(0x7, 1)).toBe(0x55)
  })

  it('splits an access that spans registers; each register sees one merged write', () => {
    const { rf, log } = regs()
    rf.write(0xc, 4, 0x7712_3456) // B (2 bytes at 0xc), C (1 byte at 0xe); nothing decodes 0xf
    expect(rf.get('B')).toBe(0x3456)
    expect(rf.get('C')).toBe(0x12)
    expect(rf.read(0xc, 4)).toBe(0x0012_3456) // 0xf decodes nothing: reads 0
    rf.write(0x6, 4, 0xffff_ffff) // upper half of A and lower half of ST
    expect(rf.get('A')).toBe(0xffff_3344)
    expect(log.at(-1)).toBe('ST 0 0')
  })

  it('write-1-to-clear only within the write mask', () => {
    const { rf, log } = regs()
    rf.set('ST', 0x7)
    rf.write(0x8, 4, 0x2)
    expect(rf.get('ST')).toBe(0x5)
    rf.write(0x8, 4, 0x1) // bit 0 is not writable: stays
    expect(rf.get('ST')).toBe(0x5)
    rf.write(0x8, 4, 0)
    expect(rf.get('ST')).toBe(0x5)
    expect(log).toEqual(['ST 5 7', 'ST 5 5', 'ST 5 5'])
  })

  it('holds 64-bit registers and writes each half separately', () => {
    const { rf } = regs()
    rf.write(0x10, 8, 2 ** 40 + 5)
    expect(rf.read(0x10, 8)).toBe(2 ** 40 + 5)
    rf.write(0x14, 4, 0x1f_ffff)
    expect(rf.get('Q')).toBe(0x1f_ffff * 2 ** 32 + 5)
    rf.write(0x10, 4, 7)
    expect(rf.get('Q')).toBe(0x1f_ffff * 2 ** 32 + 7)
    expect(rf.read(0x14, 4)).toBe(0x1f_ffff)
  })

  it('runs a read hook once per access, not once per byte', () => {
    const { rf, reads } = regs()
    expect(rf.read(0x18, 4)).toBe(1)
    rf.read(0x18, 2)
    expect(reads()).toBe(2)
    expect(rf.read(0x100, 4)).toBe(0) // unknown offset
    rf.write(0x100, 4, 1) // ignored
  })

  it('set/get bypass hooks and masks; reset restores every reset value', () => {
    const { rf, log } = regs()
    rf.set('ID', 1)
    rf.set('A', 2)
    expect(log).toEqual([])
    expect(rf.get('ID')).toBe(1)
    rf.reset()
    expect(rf.get('ID')).toBe(0xcafe_f00d)
    expect(rf.get('A')).toBe(0x1122_3344)
    expect(rf.has('Q')).toBe(true)
    expect(() => rf.get('NOPE')).toThrow(RegisterFileError)
  })

  it('refuses overlapping, duplicate and misaligned registers', () => {
    expect(() => regs([{ name: 'X', offset: 0x6, size: 2 }])).toThrow(/X overlaps A/)
    expect(() => regs([{ name: 'A', offset: 0x40 }])).toThrow(/duplicate register A/)
    expect(() => regs([{ name: 'X', offset: 0x42 }])).toThrow(/multiple of its size/)
  })
})

describe('FaultInjector', () => {
  it('skips `after` opportunities, then fires `count` times, then is gone', () => {
    const f = new FaultInjector()
    const rule = f.add({ device: 'd', kind: 'drop-irq', after: 2, count: 2 })
    const got = Array.from({ length: 6 }, () => f.take('d', 'drop-irq'))
    expect(got).toEqual([null, null, rule, rule, null, null])
    expect(f.rules).toEqual([])
  })

  it('matches device and kind exactly', () => {
    const f = new FaultInjector()
    f.add({ device: 'a', kind: 'fail-dma' })
    expect(f.take('b', 'fail-dma')).toBeNull()
    expect(f.take('a', 'drop-irq')).toBeNull()
    expect(f.take('a', 'fail-dma')).not.toBeNull()
  })

  it('fires the first ready rule; rules still skipping count the opportunity too', () => {
    const f = new FaultInjector()
    const a = f.add({ device: 'd', kind: 'error-status', status: 1 })
    const b = f.add({ device: 'd', kind: 'error-status', status: 2, after: 1 })
    const c = f.add({ device: 'd', kind: 'error-status', status: 3 })
    expect(f.take('d', 'error-status')).toBe(a) // b: 1 -> 0
    expect(f.take('d', 'error-status')).toBe(b)
    expect(f.take('d', 'error-status')).toBe(c)
  })

  it('count: Infinity fires until removed; clear() by device', () => {
    const f = new FaultInjector()
    const r = f.add({ device: 'd', kind: 'fail-dma', count: Infinity })
    for (let i = 0; i < 100; i++) expect(f.take('d', 'fail-dma')).toBe(r)
    expect(f.remove(r)).toBe(true)
    expect(f.remove(r)).toBe(false)
    f.add({ device: 'x', kind: 'fail-dma' })
    f.add({ device: 'y', kind: 'fail-dma' })
    f.clear('x')
    expect(f.rules.map((x) => x.device)).toEqual(['y'])
    f.clear()
    expect(f.rules).toEqual([])
  })

  it('records and traces what fired', () => {
    const clock = new VirtualClock()
    const tracer = new Tracer(clock)
    const f = new FaultInjector(tracer)
    const rec = tracer.record(['fault'])
    f.add({ device: 'd', kind: 'spurious-irq' })
    f.take('d', 'spurious-irq', 77)
    expect(f.fired).toEqual([{ device: 'd', kind: 'spurious-irq', time: 77 }])
    expect(rec.lines()).toEqual(['77 fault d spurious-irq'])
  })

  it('rejects bad rules, naming the field', () => {
    const f = new FaultInjector()
    const bad = (r: unknown) => () => f.add(r as FaultRule)
    expect(bad(null)).toThrow(FaultRuleError)
    expect(bad({ device: '', kind: 'drop-irq' })).toThrow(/device/)
    expect(bad({ device: 'd', kind: 'explode' })).toThrow(/kind must be one of/)
    expect(bad({ device: 'd', kind: 'drop-irq', after: -1 })).toThrow(/after/)
    expect(bad({ device: 'd', kind: 'drop-irq', count: 0 })).toThrow(/count/)
    expect(bad({ device: 'd', kind: 'drop-irq', count: 1.5 })).toThrow(/count/)
    expect(bad({ device: 'd', kind: 'delay-completion', delayNs: Number.NaN })).toThrow(/delayNs/)
    expect(bad({ device: 'd', kind: 'error-status', status: -1 })).toThrow(/status/)
    expect(f.rules).toEqual([])
  })
})

describe('Tracer and the DMA port', () => {
  it('emits one dma event per port transaction, with the result, in virtual time', () => {
    const m = machine({ iommu: 'strict' })
    const port = m.createDmaPort('dev0')
    const rec = m.tracer.record()
    port.write(0x1000, new Uint8Array(4)) // bus master off
    port.busMaster = true
    m.clock.now = 10
    port.write(0x1000, new Uint8Array(4)) // no IOMMU mapping
    port.domain!.map(0x1000, RAM, 0x1000, 3)
    port.write(0x1000, new Uint8Array(4))
    port.readInto(0x1000, new Uint8Array(2))
    port.readInto(0x1000, new Uint8Array(0)) // no transaction
    rec.stop()
    port.write(0x1000, new Uint8Array(4))
    expect(rec.records.map(formatRecord)).toEqual([
      '0 dma dev0 W 0x1000+4 result=1',
      '10 dma dev0 W 0x1000+4 result=4',
      '10 dma dev0 W 0x1000+4 result=0',
      '10 dma dev0 R 0x1000+2 result=0',
    ])
    expect(m.tracer.listenerCount('dma')).toBe(0)
  })

  it('results are the same with and without a listener', () => {
    const m = machine()
    const port = m.createDmaPort('dev0')
    port.busMaster = true
    const src = new Uint8Array([1, 2, 3])
    expect(port.write(RAM, src)).toBe(MEMTX_OK)
    m.tracer.on('dma', () => undefined)
    expect(port.write(RAM + 3, src)).toBe(MEMTX_OK)
    const dst = new Uint8Array(6)
    expect(port.readInto(RAM, dst)).toBe(MEMTX_OK)
    expect([...dst]).toEqual([1, 2, 3, 1, 2, 3])
    port.busMaster = false
    expect(port.readInto(RAM, dst)).toBe(MEMTX_ERROR)
    expect(m.tracer.wants('dma')).toBe(true)
    expect(m.tracer.wants('mmio')).toBe(false)
  })

  it('copy() is one read then one write transaction, RAM to RAM, all or nothing', () => {
    const m = machine({ iommu: 'strict' })
    const seen: string[] = []
    const observer: DmaObserver = {
      access: (_p, pa, len, write) => seen.push(`${write ? 'W' : 'R'} ${(pa - RAM).toString(16)}+${len}`),
      blocked: (_p, reason) => seen.push(reason),
      addressOverflow: () => seen.push('overflow'),
    }
    m.observer = observer
    const port = m.createDmaPort('dev0')
    port.busMaster = true
    const d = port.domain!
    d.map(0x1000, RAM + 0x5000, 0x1000, 1) // src page 0
    d.map(0x2000, RAM + 0x3000, 0x1000, 1) // src page 1, elsewhere
    d.map(0x8000, RAM + 0x9000, 0x2000, 3) // dst, contiguous
    const data = Uint8Array.from({ length: 0x2000 }, (_, i) => i & 0xff)
    m.ram.write(RAM + 0x5000, data, 0, 0x1000)
    m.ram.write(RAM + 0x3000, data, 0x1000, 0x1000)
    const rec = m.tracer.record(['dma'])
    expect(port.copy(0x8000, 0x1800, 0x1000)).toBe(MEMTX_OK)
    expect(seen).toEqual(['R 5800+2048', 'R 3000+2048', 'W 9000+4096'])
    const out = new Uint8Array(0x1000)
    m.ram.read(RAM + 0x9000, out, 0, 0x1000)
    expect(out).toEqual(data.subarray(0x800, 0x1800))
    expect(rec.lines()).toEqual(['0 dma dev0 R 0x1800+4096 result=0', '0 dma dev0 W 0x8000+4096 result=0'])
    // A write that faults: the read was made, nothing is written, the result says which side.
    m.ram.fill(RAM + 0x9000, 0xee, 0x1000)
    expect(port.copy(0x1000, 0x1810, 0x100)).toBe(MEMTX_ACCESS_ERROR | MEMTX_WRITE_SIDE) // would write 0x10, 0x11, ..
    expect(m.ram.read8(RAM + 0x5000)).toBe(0)
    expect(port.copy(0x8000, 0x4000, 0x100)).toBe(MEMTX_ACCESS_ERROR)
    expect(m.ram.read8(RAM + 0x9000)).toBe(0xee)
    expect(port.copy(0x8000, 0x1000, 0)).toBe(MEMTX_OK)
  })
})

describe('tracer listener counts', () => {
  it('stay exact through on, once (also after it fires), off and removeAllListeners', async () => {
    const { Tracer, VirtualClock } = await import('../../devices/index.js')
    const t = new Tracer(new VirtualClock())
    const f = (): void => undefined
    expect(t.wants('dma')).toBe(false)
    t.on('dma', f)
    t.addListener('dma', f)
    expect(t.listenerCount('dma')).toBe(2)
    t.off('dma', f)
    expect(t.listenerCount('dma')).toBe(0)
    t.once('irq', f)
    expect(t.wants('irq')).toBe(true)
    // One event's listener does not count for another (the no-listener fast path is per emitter).
    expect([t.listenerCount('irq'), t.listenerCount('dma')]).toEqual([1, 0])
    t.emit('irq', { time: 0, hwirq: 1, kind: 'assert' })
    expect(t.wants('irq')).toBe(false)
    expect(t.listenerCount('irq')).toBe(0)
    t.on('mmio', f)
    t.on('fault', f)
    t.removeAllListeners()
    expect([t.wants('mmio'), t.wants('fault')]).toEqual([false, false])
    const rec = t.record(['dma'])
    expect(t.wants('dma')).toBe(true)
    rec.stop()
    expect(t.wants('dma')).toBe(false)
  })
})
