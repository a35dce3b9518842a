// The mini-HDA's quirk knobs (early IRQ, coarse LPIB, position buffer modes, the BCIS stall), the
// BDL re-read in strict mode against QEMU's cached BDL, every fault kind it offers, determinism,
// and the audio-port helpers (sinks and sources). The datasheet is docs/devices/hda.md.
import { describe, expect, it } from 'vitest'
import {
  BufferAudioSource,
  HDA_MSIX_TABLE,
  HDA_REG_SD_LPIB,
  HDA_REG_SD_STS,
  HDA_SD_STS_BCIS,
  HDA_SD_STS_DESE,
  HDA_SD_STS_FIFOE,
  HDA_SD_STS_FIFORDY,
  MSIX_CAP_OFFSET,
  MemoryAudioSink,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  SilenceAudioSource,
  SineAudioSource,
  audioFrameBytes,
  sameAudioFormat,
  type HdaOptions,
} from '../../devices/index.js'
import { BDL_OUT, BUF_IN, BUF_OUT, bdlBytes, fill, hda, pcm, periodsBdl, POSBUF, ramBytes, type Hda } from './hda-rig.js'

const PERIOD = 1920
const MS = 1_000_000
const OSD = 0xa0

function playback(opts: HdaOptions = {}, periods = 8): { h: Hda; data: Uint8Array; t0: number } {
  const h = hda(opts)
  h.bringUp()
  const data = pcm(periods * PERIOD)
  fill(h.m, BUF_OUT, data)
  h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, periods, PERIOD) })
  h.start(h.dev.output)
  return { h, data, t0: h.m.clock.now }
}

const lpib = (h: Hda): number => h.r32(OSD + HDA_REG_SD_LPIB)
const sts = (h: Hda): number => h.r8(OSD + HDA_REG_SD_STS)

describe('mini-HDA quirks', () => {
  it('earlyIrqNs: BCIS and the interrupt arrive before LPIB (and the position buffer) reach the period boundary', () => {
    const h = hda({ earlyIrqNs: 200_000 })
    h.bringUp()
    fill(h.m, POSBUF, new Uint8Array(16))
    h.posbuf()
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 9.8 * MS - 1)
    expect(h.dev.irqAsserted).toBe(false)
    h.runUntil(t0 + 9.8 * MS)
    expect(h.dev.irqAsserted).toBe(true)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    // What the handler sees: LPIB 38 bytes (200 µs) short of the boundary, the position buffer still 0 —
    // azx_position_ok's "pos % period_bytes > period_bytes / 2": not yet past the boundary.
    expect(lpib(h)).toBe(1880)
    expect(h.u32(POSBUF + 8)).toBe(0)
    expect(lpib(h) % PERIOD).toBeGreaterThan(PERIOD / 2)
    h.ack(h.dev.output)
    h.runUntil(t0 + 10 * MS)
    expect(lpib(h)).toBe(PERIOD)
    expect(h.u32(POSBUF + 8)).toBe(PERIOD)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(0) // one BCIS per period, not a second one at the boundary
    h.runUntil(t0 + 19.8 * MS)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    expect(h.dev.stats.periodsPlayed).toBe(2)
  })

  it("lpibGranularity 'burst': LPIB moves only when a burst ends (QEMU's 10 ms steps); a number: in steps of that many bytes", () => {
    const b = playback({ lpibGranularity: 'burst' })
    b.h.runUntil(b.t0 + 9.9 * MS)
    expect(lpib(b.h)).toBe(0)
    b.h.runUntil(b.t0 + 10 * MS)
    expect(lpib(b.h)).toBe(PERIOD)
    b.h.runUntil(b.t0 + 15 * MS)
    expect(lpib(b.h)).toBe(PERIOD)
    const n = playback({ lpibGranularity: 128 })
    n.h.runUntil(n.t0 + 2.5 * MS) // 480 bytes
    expect(lpib(n.h)).toBe(384)
    n.h.runUntil(n.t0 + 12.5 * MS) // 2400
    expect(lpib(n.h)).toBe(2304)
  })

  it("positionBuffer 'none' never writes the slot (it keeps what the driver left: Linux's 'Invalid position buffer'); 'lagging' writes each burst's start", () => {
    for (const [mode, want] of [['none', [0, 0, 0]], ['lagging', [0, PERIOD, 2 * PERIOD]], ['accurate', [PERIOD, 2 * PERIOD, 3 * PERIOD]]] as const) {
      const h = hda({ positionBuffer: mode })
      h.bringUp()
      fill(h.m, POSBUF, new Uint8Array(16))
      h.posbuf()
      h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
      h.start(h.dev.output)
      const seen: number[] = []
      for (let p = 1; p <= 3; p++) {
        h.runFor(10 * MS)
        seen.push(h.u32(POSBUF + 8))
      }
      expect(seen, mode).toEqual(want)
      expect(lpib(h), mode).toBe(3 * PERIOD)
    }
  })

  it('stallOnBcis (QEMU): the stream waits while BCIS is set and resumes when it is cleared', () => {
    const { h, data, t0 } = playback({ stallOnBcis: true })
    h.runUntil(t0 + 50 * MS)
    expect(h.sink.length).toBe(PERIOD)
    expect(lpib(h)).toBe(PERIOD)
    expect(h.dev.output.stalled).toBe(true)
    expect(sts(h)).toBe(HDA_SD_STS_BCIS) // FIFORDY is clear while stalled
    expect(h.dev.stats.bcisStalls).toBe(1)
    h.ack(h.dev.output)
    expect(sts(h)).toBe(HDA_SD_STS_FIFORDY)
    h.runUntil(t0 + 55 * MS)
    expect(lpib(h)).toBe(PERIOD + 960)
    h.runUntil(t0 + 60 * MS)
    expect(h.sink.segments.map((s) => s.time - t0)).toEqual([0, 50 * MS])
    expect(h.sink.bytes).toEqual(data.subarray(0, 2 * PERIOD))
  })

  it('strict: a BDL entry edited while RUN = 1 is read again when the engine gets to it, used, and reported once', () => {
    const { h, t0 } = playback()
    const alt = pcm(PERIOD, 9)
    const ALT = BUF_OUT + 0x10_000
    fill(h.m, ALT, alt)
    h.runUntil(t0 + 5 * MS)
    const entries = periodsBdl(BUF_OUT, 8, PERIOD)
    entries[3] = { addr: ALT, len: PERIOD, ioc: true }
    const bytes = bdlBytes(entries)
    fill(h.m, BDL_OUT, bytes)
    h.runUntil(t0 + 40 * MS)
    expect(h.sink.bytes.subarray(3 * PERIOD, 4 * PERIOD)).toEqual(alt)
    expect(h.errors).toEqual([
      {
        message: 'OSD0: BDL entry 3 changed while RUN = 1 (address 0x40101680 length 0x780 IOC → address 0x40110000 length 0x780 IOC): the BDL must not be modified while the stream runs; the controller uses what it reads',
        details: { stream: 'OSD0', entry: 3, address: ALT, length: PERIOD },
      },
    ])
    h.runUntil(t0 + 200 * MS)
    expect(h.dev.stats.bdlChanges).toBe(1)
    expect(h.errors).toHaveLength(1)
  })

  it('strict: an entry edited to length 0 while running halts the stream with DESE when the engine reaches it', () => {
    const { h, t0 } = playback()
    const entries = periodsBdl(BUF_OUT, 8, PERIOD)
    entries[2] = { addr: BUF_OUT + 2 * PERIOD, len: 0, ioc: true }
    fill(h.m, BDL_OUT, bdlBytes(entries))
    h.runUntil(t0 + 30 * MS)
    expect(sts(h) & HDA_SD_STS_DESE).toBe(HDA_SD_STS_DESE)
    expect(h.dev.output.halted).toBe('BDL entry 2 has length 0')
    expect(h.errors.map((e) => e.message)).toEqual([
      'OSD0: BDL entry 2 changed while RUN = 1 (address 0x40100f00 length 0x780 IOC → address 0x40100f00 length 0x0 IOC): the BDL must not be modified while the stream runs; the controller uses what it reads',
      'OSD0: BDL entry 2 has length 0',
    ])
    expect(h.sink.length).toBe(2 * PERIOD)
    expect(h.dev.dumpStreams()).toContain('  halted: BDL entry 2 has length 0; entry 2 +0x0, lap 0, 3840 bytes since reset')
  })

  it('strict: a stream reprogrammed while stopped (CBL changed) starts again at entry 0 instead of resuming', () => {
    const { h, data, t0 } = playback()
    h.runUntil(t0 + 15 * MS)
    h.stop(h.dev.output)
    h.w32(OSD + 0x08, 4 * PERIOD) // CBL
    h.w16(OSD + 0x0c, 3) // LVI
    h.start(h.dev.output)
    expect(lpib(h)).toBe(0)
    h.runFor(10 * MS)
    expect(h.sink.bytes.subarray(PERIOD + 960)).toEqual(data.subarray(0, PERIOD))
    expect(h.errors).toEqual([])
  })

  it('lenient (QEMU): the BDL read at RUN is all the controller uses: the same edit has no effect', () => {
    const { h, data, t0 } = playback({ strict: false, stallOnBcis: false })
    const ALT = BUF_OUT + 0x10_000
    fill(h.m, ALT, pcm(PERIOD, 9))
    h.runUntil(t0 + 5 * MS)
    const entries = periodsBdl(BUF_OUT, 8, PERIOD)
    entries[3] = { addr: ALT, len: PERIOD, ioc: true }
    fill(h.m, BDL_OUT, bdlBytes(entries))
    h.runUntil(t0 + 40 * MS)
    expect(h.sink.bytes).toEqual(data.subarray(0, 4 * PERIOD))
    expect(h.dev.stats.bdlChanges).toBe(0)
  })
})

describe('mini-HDA faults', () => {
  it('drop-irq: the first period interrupt is lost (BCIS is set, the line stays low); the next edge gets out', () => {
    const h = hda()
    h.bringUp()
    h.m.faults.add({ device: 'hda0', kind: 'drop-irq' })
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
    h.start(h.dev.output)
    h.runFor(10 * MS)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(false)
    h.ack(h.dev.output)
    h.runFor(10 * MS)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(true)
    expect(h.m.faults.fired).toMatchObject([{ device: 'hda0', kind: 'drop-irq' }])
  })

  it('spurious-irq: an extra MSI-X message delayNs after the real one', () => {
    const h = hda()
    h.bringUp()
    const hwirq = h.m.intc.allocMsiVectors(1)
    h.dev.mmioWrite(0, HDA_MSIX_TABLE + PCI_MSIX_ENTRY_DATA, 4, hwirq)
    h.dev.mmioWrite(0, HDA_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
    h.dev.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE)
    h.m.faults.add({ device: 'hda0', kind: 'spurious-irq', delayNs: 5000 })
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
    h.start(h.dev.output)
    h.runFor(10 * MS)
    expect(h.m.intc.stats.msi).toBe(1)
    h.runFor(5000)
    expect(h.m.intc.stats.msi).toBe(2)
    expect(h.dev.stats.interrupts).toBe(1)
  })

  it('fail-dma: the failing transaction is the BDL read, an entry re-read or a data burst, each with its status bit', () => {
    // Opportunities in strict mode: the BDL read at RUN (1), entry 0's re-read (2), its data read (3).
    const cases = [
      [0, HDA_SD_STS_DESE, /^BDL read of 8 entries/],
      [1, HDA_SD_STS_DESE, /^BDL entry 0 read/],
      [2, HDA_SD_STS_FIFOE, /^data read of 1920 bytes at 0x40100000/],
    ] as const
    for (const [after, bit, why] of cases) {
      const h = hda()
      h.bringUp()
      h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
      h.m.faults.add({ device: 'hda0', kind: 'fail-dma', after })
      h.start(h.dev.output)
      h.runFor(10 * MS)
      expect(sts(h) & (HDA_SD_STS_DESE | HDA_SD_STS_FIFOE)).toBe(bit)
      expect(h.dev.output.halted).toMatch(why)
      expect(h.sink.length).toBe(0)
      expect(h.dev.stats.dmaErrors).toBe(1)
    }
  })

  it('fail-dma on a capture burst: nothing reaches memory, FIFOE', () => {
    const h = hda()
    h.bringUp()
    h.dev.attachSource(new BufferAudioSource(new Uint8Array(PERIOD).fill(7)))
    fill(h.m, BUF_IN, new Uint8Array(PERIOD).fill(0x55))
    h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 4, PERIOD) })
    h.m.faults.add({ device: 'hda0', kind: 'fail-dma', after: 2 })
    h.start(h.dev.input)
    h.runFor(10 * MS)
    expect(h.r8(0x80 + HDA_REG_SD_STS) & HDA_SD_STS_FIFOE).toBe(HDA_SD_STS_FIFOE)
    expect(ramBytes(h.m, BUF_IN, 4)).toEqual(new Uint8Array(4).fill(0x55))
    expect(h.dev.stats.bytesRecorded).toBe(0)
    expect(h.dev.input.halted).toBe('data write of 1920 bytes at 0x40200000 failed (MemTxResult 1)')
  })

  it('delay-completion: the period interrupt comes delayNs late; the stream and LPIB keep their pace', () => {
    const { h, t0 } = (() => {
      const x = hda()
      x.bringUp()
      x.m.faults.add({ device: 'hda0', kind: 'delay-completion', delayNs: 3 * MS })
      x.setup(x.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
      x.start(x.dev.output)
      return { h: x, t0: x.m.clock.now }
    })()
    h.runUntil(t0 + 10 * MS)
    expect(lpib(h)).toBe(PERIOD)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(0)
    expect(h.dev.stats.periodsPlayed).toBe(1)
    h.runUntil(t0 + 13 * MS - 1)
    expect(h.dev.irqAsserted).toBe(false)
    h.runUntil(t0 + 13 * MS)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    expect(h.dev.irqAsserted).toBe(true)
    expect(lpib(h)).toBe(PERIOD + 576)
    h.ack(h.dev.output)
    h.runUntil(t0 + 20 * MS)
    expect(sts(h) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS) // only the first was delayed
  })

  it('error-status: a burst is lost (silence) with FIFOE (or the status bits given); the stream goes on', () => {
    const h = hda()
    h.bringUp()
    const data = pcm(8 * PERIOD)
    fill(h.m, BUF_OUT, data)
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
    h.m.faults.add({ device: 'hda0', kind: 'error-status', after: 1 })
    h.m.faults.add({ device: 'hda0', kind: 'error-status', after: 2, status: HDA_SD_STS_DESE })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 10 * MS)
    expect(sts(h) & (HDA_SD_STS_FIFOE | HDA_SD_STS_DESE)).toBe(HDA_SD_STS_FIFOE) // set as burst 2 starts
    expect(h.dev.irqAsserted).toBe(true)
    h.ack(h.dev.output)
    h.runUntil(t0 + 20 * MS)
    expect(sts(h) & (HDA_SD_STS_FIFOE | HDA_SD_STS_DESE)).toBe(HDA_SD_STS_DESE)
    h.runUntil(t0 + 40 * MS)
    expect(h.sink.bytes.subarray(0, PERIOD)).toEqual(data.subarray(0, PERIOD))
    expect(h.sink.bytes.subarray(PERIOD, 3 * PERIOD)).toEqual(new Uint8Array(2 * PERIOD))
    expect(h.sink.bytes.subarray(3 * PERIOD)).toEqual(data.subarray(3 * PERIOD, 4 * PERIOD))
    expect(h.dev.stats).toMatchObject({ fifoErrors: 1, descriptorErrors: 1, silentBytes: 2 * PERIOD, periodsPlayed: 4 })
    expect(h.dev.output.halted).toBe('')
  })
})

describe('mini-HDA determinism', () => {
  it('the same program gives the same samples at the same times on any seed', () => {
    const run = (seed: number) => {
      const h = hda({ earlyIrqNs: 50_000 }, { seed })
      h.bringUp()
      h.dev.attachSource(new SineAudioSource({ frequency: 997 }))
      fill(h.m, BUF_OUT, pcm(8 * PERIOD))
      h.posbuf()
      h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
      h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 4, PERIOD), tag: 2 })
      h.start(h.dev.output)
      h.start(h.dev.input)
      for (let i = 0; i < 30; i++) {
        h.runFor(3 * MS)
        if (h.dev.irqAsserted) {
          h.ack(h.dev.output)
          h.ack(h.dev.input)
        }
      }
      return { sink: Array.from(h.sink.bytes), times: h.sink.segments.map((s) => s.time), mem: Array.from(ramBytes(h.m, BUF_IN, 4 * PERIOD)), stats: { ...h.dev.stats } }
    }
    const a = run(1)
    expect(run(1)).toEqual(a)
    expect(run(99)).toEqual(a)
  })
})

describe('audio port helpers', () => {
  const f16 = { rate: 48_000, channels: 2, bits: 16 } as const

  it('MemoryAudioSink collects writes in order with their times, copies the views, or only counts them', () => {
    const s = new MemoryAudioSink()
    const buf = new Uint8Array([1, 2, 3, 4])
    s.write(buf, f16, 10)
    buf.fill(9)
    s.write(buf.subarray(0, 2), f16, 20)
    expect(Array.from(s.bytes)).toEqual([1, 2, 3, 4, 9, 9])
    expect(s.segments).toEqual([
      { time: 10, offset: 0, length: 4, format: f16 },
      { time: 20, offset: 4, length: 2, format: f16 },
    ])
    expect(s.writes).toBe(2)
    s.write(new Uint8Array(10_000), f16, 30)
    expect(s.length).toBe(10_006)
    s.clear()
    expect(s.length).toBe(0)
    const c = new MemoryAudioSink({ keepBytes: false, keepSegments: false })
    c.write(buf, f16, 0)
    expect(c.length).toBe(4)
    expect(c.bytes.length).toBe(0)
    expect(c.segments).toEqual([])
  })

  it('BufferAudioSource plays its bytes then silence (0x80 for 8-bit), or loops', () => {
    const src = new BufferAudioSource(new Uint8Array([1, 2, 3]))
    const into = new Uint8Array(5)
    src.read(into, f16, 0)
    expect(Array.from(into)).toEqual([1, 2, 3, 0, 0])
    src.read(into, { rate: 8000, channels: 1, bits: 8 }, 0)
    expect(Array.from(into)).toEqual([0x80, 0x80, 0x80, 0x80, 0x80])
    const loop = new BufferAudioSource(new Uint8Array([1, 2, 3]), { loop: true })
    loop.read(into, f16, 0)
    expect(Array.from(into)).toEqual([1, 2, 3, 1, 2])
    loop.read(into, f16, 0)
    expect(Array.from(into)).toEqual([3, 1, 2, 3, 1])
    expect(() => new BufferAudioSource(new Uint8Array(0), { loop: true })).toThrow(/at least one byte/)
    const sil = new Uint8Array(3).fill(5)
    new SilenceAudioSource().read(sil, f16, 0)
    expect(Array.from(sil)).toEqual([0, 0, 0])
  })

  it('SineAudioSource: a piece that ends inside a frame is continued by the next read', () => {
    const fmt = { rate: 48_000, channels: 3, bits: 24 } as const
    expect(audioFrameBytes(fmt)).toBe(12)
    const whole = new Uint8Array(120)
    new SineAudioSource({ frequency: 1000 }).read(whole, fmt, 0)
    const split = new SineAudioSource({ frequency: 1000 })
    const a = new Uint8Array(50)
    const b = new Uint8Array(70)
    split.read(a, fmt, 0)
    split.read(b, fmt, (50 * 1e9) / (12 * 48_000)) // the time of its first byte
    expect(Array.from(a).concat(Array.from(b))).toEqual(Array.from(whole))
    expect(new DataView(whole.buffer).getInt32(12 * 3, true) & 0xff).toBe(0) // 24 valid bits at the top of 32
    expect(new DataView(whole.buffer).getInt32(12 * 3, true)).not.toBe(0)
    expect(new SineAudioSource().sampleAt(0, 8)).toBe(128)
    expect(() => new SineAudioSource({ amplitude: 2 })).toThrow(/amplitude/)
    expect(sameAudioFormat(fmt, { ...fmt })).toBe(true)
  })
})
