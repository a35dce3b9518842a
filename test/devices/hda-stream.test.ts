// The mini-HDA's stream descriptors at the hardware level: the SRST handshake, playback of a
// known cyclic buffer into the sink (bit-exact, on time), LPIB, IOC interrupts and BCIS, the
// position buffer, recording from a source, stream-tag and format routing through the codec,
// the BDL checks at RUN in strict and lenient mode, RUN stop/resume, format changes, bursts and
// failed DMA. The datasheet is docs/devices/hda.md.
import { describe, expect, it } from 'vitest'
import {
  BufferAudioSource,
  HDA_INTCTL_GIE,
  HDA_INTSTS_GIS,
  HDA_MSIX_TABLE,
  HDA_REG_INTCTL,
  HDA_REG_INTSTS,
  HDA_REG_SD_BDPL,
  HDA_REG_SD_CBL,
  HDA_REG_SD_CTL,
  HDA_REG_SD_FMT,
  HDA_REG_SD_LPIB,
  HDA_REG_SD_LVI,
  HDA_REG_SD_STS,
  HDA_REG_ALIAS,
  HDA_SD_CTL_DEIE,
  HDA_SD_CTL_FEIE,
  HDA_SD_CTL_IOCE,
  HDA_SD_CTL_RUN,
  HDA_SD_CTL_SRST,
  HDA_SD_STS_BCIS,
  HDA_SD_STS_DESE,
  HDA_SD_STS_FIFOE,
  HDA_SD_STS_FIFORDY,
  HDA_REG_DPLBASE,
  MSIX_CAP_OFFSET,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  SineAudioSource,
  hdaFormatValue,
} from '../../devices/index.js'
import { BDL_OUT, BUF_IN, BUF_OUT, BYTES_PER_SEC, FMT_48K_16_2, fill, hda, pcm, periodsBdl, POSBUF, ramBytes, type Hda } from './hda-rig.js'

const PERIOD = 1920 // 10 ms of 48 kHz 16-bit stereo
const MS = 1_000_000

/** Brought up, a known pattern in the output buffer, the output stream set up with `periods` periods (not started). */
function playback(opts: Parameters<typeof hda>[0] = {}, periods = 8, period = PERIOD): { h: Hda; data: Uint8Array } {
  const h = hda(opts)
  h.bringUp()
  const data = pcm(periods * period)
  fill(h.m, BUF_OUT, data)
  h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, periods, period) })
  return { h, data }
}

const OSD = 0xa0
const ISD = 0x80

describe('mini-HDA streams: SRST handshake', () => {
  it('SRST reads back 1 only after srstDelayNs, resets the descriptor, and reads 0 again srstDelayNs after it is cleared', () => {
    const h = hda({ srstDelayNs: 3000 })
    h.bringUp()
    h.w32(OSD + HDA_REG_SD_CBL, 0x1000)
    h.w16(OSD + HDA_REG_SD_LVI, 3)
    h.w16(OSD + HDA_REG_SD_FMT, FMT_48K_16_2)
    h.w8(OSD + HDA_REG_SD_CTL + 2, 0x50) // stream tag 5
    h.w8(OSD + HDA_REG_SD_CTL, HDA_SD_CTL_SRST)
    expect(h.r8(OSD)).toBe(0) // not in reset yet
    expect(h.dev.reg('OSD0CBL')).toBe(0) // the registers are reset at once
    expect(h.dev.reg('OSD0LVI')).toBe(0)
    expect(h.dev.reg('OSD0FMT')).toBe(0)
    expect(h.dev.output.tag).toBe(0)
    h.runFor(2999)
    expect(h.r8(OSD) & HDA_SD_CTL_SRST).toBe(0)
    h.runFor(1)
    expect(h.r8(OSD) & HDA_SD_CTL_SRST).toBe(HDA_SD_CTL_SRST)
    h.w8(OSD, 0)
    expect(h.r8(OSD) & HDA_SD_CTL_SRST).toBe(HDA_SD_CTL_SRST) // still leaving reset
    h.runFor(3000)
    expect(h.r8(OSD)).toBe(0)
    expect(h.dev.stats.streamResets).toBe(1)
    expect(h.errors).toEqual([])
  })

  it('strict: register writes while the stream is in reset are ignored; RUN is refused; clearing SRST too early and SRST with RUN are reported', () => {
    const h = hda()
    h.bringUp()
    h.w8(OSD, HDA_SD_CTL_SRST)
    h.w8(OSD, 0) // cleared before it read back 1
    h.runFor(2000)
    h.w8(OSD, HDA_SD_CTL_SRST)
    h.runFor(1000)
    h.w32(OSD + HDA_REG_SD_CBL, 0x800)
    h.w8(OSD, HDA_SD_CTL_SRST | HDA_SD_CTL_RUN)
    expect(h.dev.reg('OSD0CBL')).toBe(0)
    expect(h.r8(OSD)).toBe(HDA_SD_CTL_SRST)
    expect(h.errors.map((e) => e.message)).toEqual([
      'OSD0: SRST cleared before the stream reported reset (it had not read back as 1 yet)',
      'OSD0: write of 0x800 to OSD0CBL while the stream is in reset (SRST is set): ignored',
      'OSD0: SD_CTL 0x3 written while the stream is in reset (SRST is set): ignored',
    ])
    h.errors.length = 0
    h.w8(OSD, 0)
    h.runFor(1000)
    // SRST while running.
    const { h: p } = playback()
    p.start(p.dev.output)
    p.runFor(MS)
    p.w8(OSD, p.r8(OSD) | HDA_SD_CTL_SRST)
    expect(p.errors.map((e) => e.message)).toEqual(['OSD0: SRST set while RUN = 1: clear RUN and read it back as 0 first'])
    expect(p.dev.output.running).toBe(false)
    expect(p.dev.reg('OSD0LPIB')).toBe(0)
  })

  it('srstDelayNs 0: SRST reads back at once', () => {
    const h = hda({ srstDelayNs: 0 })
    h.bringUp()
    h.w8(ISD, HDA_SD_CTL_SRST)
    expect(h.r8(ISD)).toBe(HDA_SD_CTL_SRST)
    h.w8(ISD, 0)
    expect(h.r8(ISD)).toBe(0)
  })
})

describe('mini-HDA streams: playback', () => {
  it('plays the cyclic buffer into the sink bit-exact, one piece per period at the right virtual time, rate × frame bytes per second', () => {
    const { h, data } = playback()
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 1000 * MS)
    expect(h.sink.length).toBe(BYTES_PER_SEC)
    expect(h.dev.stats.bytesPlayed).toBe(BYTES_PER_SEC)
    const got = h.sink.bytes
    let firstBad = -1
    for (let i = 0; i < got.length && firstBad < 0; i++) if (got[i] !== data[i % data.length]) firstBad = i
    expect(firstBad).toBe(-1)
    expect(h.sink.segments).toHaveLength(100)
    h.sink.segments.forEach((s, i) => {
      expect(s.time).toBe(t0 + i * 10 * MS)
      expect(s.length).toBe(PERIOD)
      expect(s.format).toMatchObject({ rate: 48_000, channels: 2, bits: 16 })
    })
    expect(h.dev.stats).toMatchObject({ periodsPlayed: 100, bursts: 101, silentBytes: 0 })
    expect(h.dev.output.laps).toBe(12) // 100 periods of 8
    expect(h.errors).toEqual([])
  })

  it('44.1 kHz stereo: 176400 bytes per virtual second; entries that are not frame multiples of the burst still add up', () => {
    const fmt = hdaFormatValue(44_100, 2, 16)!
    const h = hda()
    h.bringUp()
    fill(h.m, BUF_OUT, pcm(4 * 1764))
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 4, 1764), fmt })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 2000 * MS)
    expect(h.sink.length).toBe(2 * 176_400)
    expect(h.sink.segments[7]!.time).toBe(t0 + 70 * MS)
    expect(h.errors).toEqual([])
  })

  it('a period larger than burstBytes is moved in several bursts; IOC comes only at the end of the entry', () => {
    const { h } = playback({ burstBytes: 4096 }, 4, 9600) // 50 ms periods: 4096 + 4096 + 1408
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 50 * MS - 1)
    expect(h.sink.segments.map((s) => s.length)).toEqual([4096, 4096])
    expect(h.dev.stats.periodsPlayed).toBe(0)
    h.runUntil(t0 + 50 * MS)
    expect(h.sink.segments.map((s) => s.length)).toEqual([4096, 4096, 1408])
    expect(h.sink.segments[1]!.time).toBe(t0 + Math.round((4096 * 1e9) / BYTES_PER_SEC))
    expect(h.dev.stats.periodsPlayed).toBe(1)
  })

  it('LPIB moves frame by frame with the clock, has an alias at 0x2000 + its offset, and wraps to 0 at CBL', () => {
    const { h } = playback()
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    const lpib = (): number => h.r32(OSD + HDA_REG_SD_LPIB)
    expect(lpib()).toBe(0)
    h.runUntil(t0 + 2.5 * MS)
    expect(lpib()).toBe(480)
    h.runUntil(t0 + 2.5 * MS + 20_000) // less than one 20.83 µs frame later
    expect(lpib()).toBe(480)
    h.runUntil(t0 + 2.5 * MS + 20_834)
    expect(lpib()).toBe(484)
    expect(h.r32(HDA_REG_ALIAS + OSD + HDA_REG_SD_LPIB)).toBe(484)
    h.runUntil(t0 + 79.99 * MS)
    expect(lpib()).toBe(8 * PERIOD - 4) // 10 µs (1.92 bytes) short of the end: one frame short
    h.runUntil(t0 + 80 * MS)
    expect(lpib()).toBe(0) // wrapped at CBL = 15360
    h.runUntil(t0 + 85 * MS)
    expect(lpib()).toBe(960)
    expect(h.dev.reg('OSD0LPIB')).toBe(960)
  })

  it('RUN cleared mid-period: the sink gets what crossed the link, LPIB holds; RUN again resumes there (strict) and the data stays continuous', () => {
    const { h, data } = playback()
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 13 * MS)
    h.stop(h.dev.output)
    expect(h.sink.length).toBe(PERIOD + 576) // 10 ms + 3 ms
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(PERIOD + 576)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_FIFORDY).toBe(0)
    h.runFor(100 * MS)
    expect(h.sink.length).toBe(PERIOD + 576)
    h.start(h.dev.output)
    const t1 = h.m.clock.now
    h.runUntil(t1 + 7 * MS)
    expect(h.sink.length).toBe(2 * PERIOD)
    expect(h.sink.segments.at(-1)!.time).toBe(t1)
    expect(h.sink.bytes).toEqual(data.subarray(0, 2 * PERIOD))
    expect(h.dev.stats.periodsPlayed).toBe(2)
    expect(h.errors).toEqual([])
  })

  it('lenient (QEMU): RUN again starts over from the first entry with LPIB 0', () => {
    const { h, data } = playback({ strict: false, stallOnBcis: false })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 13 * MS)
    h.stop(h.dev.output)
    h.ack(h.dev.output)
    h.start(h.dev.output)
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(0)
    h.runFor(10 * MS)
    expect(h.sink.bytes.subarray(PERIOD + 576)).toEqual(data.subarray(0, PERIOD))
  })

  it('format changes: after a stream reset the stream plays 44.1 kHz mono, then 8-bit; the sink sees each format', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(20 * MS)
    h.stop(h.dev.output)
    const mono = hdaFormatValue(44_100, 1, 16)!
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 4, 1764), fmt: mono }) // 20 ms periods
    h.start(h.dev.output)
    h.runFor(1000 * MS)
    const after = h.sink.segments.filter((s) => s.format.rate === 44_100)
    expect(after.reduce((a, s) => a + s.length, 0)).toBe(88_200)
    expect(after[0]!.format).toMatchObject({ rate: 44_100, channels: 1, bits: 16 })
    h.stop(h.dev.output)
    const u8 = hdaFormatValue(8000, 1, 8)!
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 2, 80), fmt: u8 })
    h.start(h.dev.output)
    h.runFor(1000 * MS)
    expect(h.sink.format).toMatchObject({ rate: 8000, channels: 1, bits: 8 })
    expect(h.dev.stats.silentBytes).toBe(0)
    expect(h.errors).toEqual([])
  })
})

describe('mini-HDA streams: interrupts', () => {
  it('an IOC entry sets BCIS at its end: INTSTS shows the stream and GIS, INTx is asserted until BCIS is cleared (W1C)', () => {
    const { h } = playback()
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 10 * MS - 1)
    expect(h.r8(OSD + HDA_REG_SD_STS)).toBe(HDA_SD_STS_FIFORDY)
    expect(h.dev.irqAsserted).toBe(false)
    h.runUntil(t0 + 10 * MS)
    expect(h.r8(OSD + HDA_REG_SD_STS)).toBe(HDA_SD_STS_BCIS | HDA_SD_STS_FIFORDY)
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | 0x2) >>> 0)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(true)
    h.w8(OSD + HDA_REG_SD_STS, HDA_SD_STS_FIFORDY | 0x40) // not BCIS: nothing cleared
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    h.w8(OSD + HDA_REG_SD_STS, HDA_SD_STS_BCIS)
    expect(h.r8(OSD + HDA_REG_SD_STS)).toBe(HDA_SD_STS_FIFORDY)
    expect(h.r32(HDA_REG_INTSTS)).toBe(0)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(false)
    // One interrupt per period when the handler acknowledges each.
    for (let p = 2; p <= 10; p++) {
      h.runUntil(t0 + p * 10 * MS)
      expect(h.ack(h.dev.output) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    }
    expect(h.dev.stats.interrupts).toBe(10)
    expect(h.dev.stats.periodsPlayed).toBe(10)
  })

  it('a 32-bit read-modify-write of SD_CTL (Linux programming the tag) clears a pending BCIS through the SD_STS byte', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(10 * MS)
    const v = h.r32(OSD + HDA_REG_SD_CTL)
    expect(v >>> 24).toBe(HDA_SD_STS_BCIS | HDA_SD_STS_FIFORDY)
    h.w32(OSD + HDA_REG_SD_CTL, v)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_BCIS).toBe(0)
  })

  it('IOC only where the BDL says: every other entry gives half the interrupts', () => {
    const h = hda()
    h.bringUp()
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD).map((e, i) => ({ ...e, ioc: i % 2 === 1 })) })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    let irqs = 0
    for (let t = 1; t <= 80; t++) {
      h.runUntil(t0 + t * MS * 1)
      if (h.dev.irqAsserted) {
        irqs++
        h.ack(h.dev.output)
      }
    }
    expect(irqs).toBe(4)
    expect(h.dev.stats.periodsPlayed).toBe(4)
  })

  it('BCIS is gated by IOCE into INTSTS, INTSTS by SIE into GIS, and the line by GIE', () => {
    const { h } = playback()
    h.start(h.dev.output, HDA_SD_CTL_FEIE | HDA_SD_CTL_DEIE) // no IOCE
    h.runFor(10 * MS)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_BCIS).toBe(HDA_SD_STS_BCIS)
    expect(h.r32(HDA_REG_INTSTS)).toBe(0)
    h.w8(OSD, h.r8(OSD) | HDA_SD_CTL_IOCE)
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | 2) >>> 0)
    expect(h.dev.irqAsserted).toBe(true)
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE | 1) // SIE of OSD0 (bit 1) off
    expect(h.r32(HDA_REG_INTSTS)).toBe(2)
    expect(h.dev.irqAsserted).toBe(false)
    h.w32(HDA_REG_INTCTL, 3) // GIE off
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | 2) >>> 0)
    expect(h.dev.irqAsserted).toBe(false)
  })

  it('strict: BCIS left set does not stop the stream; the level stays up (what the kernel sees as an interrupt storm)', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(200 * MS)
    expect(h.dev.stats.bytesPlayed).toBe(20 * PERIOD)
    expect(h.dev.irqAsserted).toBe(true)
    expect(h.dev.stats.interrupts).toBe(1)
    expect(h.dev.output.stalled).toBe(false)
  })

  it('MSI-X: one message per rising edge of the interrupt condition', () => {
    const { h } = playback()
    const hwirq = h.m.intc.allocMsiVectors(1)
    h.dev.mmioWrite(0, HDA_MSIX_TABLE + PCI_MSIX_ENTRY_DATA, 4, hwirq)
    h.dev.mmioWrite(0, HDA_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
    h.dev.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE)
    h.start(h.dev.output)
    h.runFor(10 * MS)
    expect(h.m.intc.stats.msi).toBe(1)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(false)
    h.runFor(10 * MS) // BCIS still set: no new edge
    expect(h.m.intc.stats.msi).toBe(1)
    h.ack(h.dev.output)
    h.runFor(10 * MS)
    expect(h.m.intc.stats.msi).toBe(2)
  })
})

describe('mini-HDA streams: position buffer', () => {
  it('with DPLBASE.ENABLE each stream writes its LPIB to base + 8 × stream index after every burst', () => {
    const { h } = playback()
    fill(h.m, POSBUF, new Uint8Array(16).fill(0xee))
    h.posbuf()
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 5 * MS)
    expect(h.u32(POSBUF + 8)).toBe(0xeeeeeeee) // nothing written before the first burst ends
    h.runUntil(t0 + 10 * MS)
    expect(h.u32(POSBUF + 8)).toBe(PERIOD)
    h.runUntil(t0 + 30 * MS)
    expect(h.u32(POSBUF + 8)).toBe(3 * PERIOD)
    h.runUntil(t0 + 80 * MS)
    expect(h.u32(POSBUF + 8)).toBe(0) // wrapped
    expect(h.u32(POSBUF)).toBe(0xeeeeeeee) // ISD0's slot: that stream does not run
    expect(h.errors).toEqual([])
  })

  it('without the enable bit nothing is written; a misaligned DPLBASE is reported and its low bits read 0', () => {
    const { h } = playback()
    fill(h.m, POSBUF, new Uint8Array(16).fill(0xee))
    h.w32(HDA_REG_DPLBASE, POSBUF % 2 ** 32)
    h.start(h.dev.output)
    h.runFor(30 * MS)
    expect(h.u32(POSBUF + 8)).toBe(0xeeeeeeee)
    h.w32(HDA_REG_DPLBASE, (POSBUF % 2 ** 32) | 0x41)
    expect(h.r32(HDA_REG_DPLBASE)).toBe((POSBUF % 2 ** 32) | 1)
    expect(h.errors.map((e) => e.message)).toEqual([
      `DPLBASE ${'0x' + ((POSBUF % 2 ** 32) | 0x41).toString(16)} is not 128-byte aligned (bits 6:1 read 0)`,
      `DPLBASE written (${'0x' + ((POSBUF % 2 ** 32) | 0x41).toString(16)}) while a stream runs: the position buffer moves under the DMA engines`,
    ])
  })
})

describe('mini-HDA streams: recording', () => {
  it('records the source into the cyclic buffer by DMA, period by period, with its position in slot 0', () => {
    const h = hda()
    h.bringUp()
    const mic = pcm(64 * 1024, 7)
    h.dev.attachSource(new BufferAudioSource(mic))
    fill(h.m, BUF_IN, new Uint8Array(8 * PERIOD).fill(0x55))
    h.posbuf()
    h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 8, PERIOD), tag: 2 })
    h.start(h.dev.input)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 10 * MS - 1)
    expect(ramBytes(h.m, BUF_IN, 4)).toEqual(new Uint8Array(4).fill(0x55)) // the FIFO holds it until the burst ends
    expect(h.r32(ISD + HDA_REG_SD_LPIB)).toBe(PERIOD - 4) // but LPIB counts what came off the link
    h.runUntil(t0 + 30 * MS)
    expect(ramBytes(h.m, BUF_IN, 3 * PERIOD)).toEqual(mic.subarray(0, 3 * PERIOD))
    expect(ramBytes(h.m, BUF_IN + 3 * PERIOD, 4)).toEqual(new Uint8Array(4).fill(0x55))
    expect(h.u32(POSBUF)).toBe(3 * PERIOD)
    expect(h.dev.stats).toMatchObject({ bytesRecorded: 3 * PERIOD, periodsRecorded: 3, bytesPlayed: 0 })
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | 1) >>> 0)
    // A lap later the buffer holds the source's next bytes.
    h.runUntil(t0 + 110 * MS)
    expect(ramBytes(h.m, BUF_IN, PERIOD)).toEqual(mic.subarray(8 * PERIOD, 9 * PERIOD))
    expect(h.errors).toEqual([])
  })

  it('a sine source gives a tone; without a source the stream records silence', () => {
    const h = hda()
    h.bringUp()
    h.dev.attachSource(new SineAudioSource({ frequency: 1000, amplitude: 0.5 }))
    h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 2, PERIOD) })
    h.start(h.dev.input)
    h.runFor(10 * MS)
    const v = new DataView(ramBytes(h.m, BUF_IN, PERIOD).buffer)
    const left = Array.from({ length: 48 }, (_, i) => v.getInt16(i * 4, true))
    expect(Math.max(...left)).toBeGreaterThan(16_000)
    expect(Math.min(...left)).toBeLessThan(-16_000)
    expect(v.getInt16(2, true)).toBe(v.getInt16(0, true)) // both channels
    h.dev.attachSource(null)
    h.runFor(10 * MS)
    expect(ramBytes(h.m, BUF_IN + PERIOD, PERIOD)).toEqual(new Uint8Array(PERIOD))
  })
})

describe('mini-HDA streams: the codec routes streams by tag and format', () => {
  it('a stream whose tag no converter listens to plays silence (strict: one guest error per RUN)', () => {
    const h = hda()
    h.bringUp()
    fill(h.m, BUF_OUT, pcm(8 * PERIOD))
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD), tag: 3, codec: false })
    h.start(h.dev.output)
    h.runFor(50 * MS)
    expect(h.sink.length).toBe(5 * PERIOD)
    expect(h.sink.bytes.every((b) => b === 0)).toBe(true)
    expect(h.dev.stats.silentBytes).toBe(5 * PERIOD)
    expect(h.errors.map((e) => e.message)).toEqual([
      'OSD0: stream tag 3 reaches no converter (the DAC (NID 2) is set to another stream: SET_CONV, verb 706h): the stream plays silence',
    ])
    // Programming the codec now routes the next bursts.
    h.codec(true, 3, FMT_48K_16_2)
    h.runFor(20 * MS)
    expect(h.sink.bytes.subarray(6 * PERIOD, 7 * PERIOD)).toEqual(pcm(8 * PERIOD).subarray(6 * PERIOD, 7 * PERIOD))
  })

  it('a converter with another format plays silence too, and the message names both formats', () => {
    const h = hda()
    h.bringUp()
    fill(h.m, BUF_OUT, pcm(8 * PERIOD))
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD), codec: false })
    h.codec(true, 1, hdaFormatValue(44_100, 2, 16)!)
    h.start(h.dev.output)
    h.runFor(10 * MS)
    expect(h.sink.bytes.every((b) => b === 0)).toBe(true)
    expect(h.errors.map((e) => e.message)).toEqual([
      "OSD0: FMT 0x11 (48000 Hz, 16-bit, 2 ch) differs from the DAC (NID 2)'s format 0x4011 (44100 Hz, 16-bit, 2 ch; SET_STREAM_FORMAT, verb 2h): the stream plays silence",
    ])
  })

  it('input: the ADC must carry the input stream tag; an output converter set to that tag does not count', () => {
    const h = hda()
    h.bringUp()
    h.dev.attachSource(new BufferAudioSource(new Uint8Array(8 * PERIOD).fill(0x33)))
    h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 8, PERIOD), tag: 1, codec: false })
    h.codec(true, 1, FMT_48K_16_2) // the DAC, not the ADC
    h.start(h.dev.input)
    h.runFor(10 * MS)
    expect(ramBytes(h.m, BUF_IN, 8)).toEqual(new Uint8Array(8))
    expect(h.errors.map((e) => e.message)).toEqual(['ISD0: stream tag 1 reaches no converter (the ADC (NID 3) is set to another stream: SET_CONV, verb 706h): the stream records silence'])
  })
})

describe('mini-HDA streams: BDL checks at RUN', () => {
  const refused = (h: Hda): void => {
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_DESE).toBe(HDA_SD_STS_DESE)
    expect(h.r8(OSD) & HDA_SD_CTL_RUN).toBe(HDA_SD_CTL_RUN)
    h.runFor(50 * MS)
    expect(h.sink.length).toBe(0)
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(0)
    expect(h.dev.output.halted).not.toBe('')
    expect(h.dev.stats.descriptorErrors).toBe(1)
  }

  it('strict: CBL ≠ the sum of the entry lengths refuses the start with DESE and a message naming both (DEIE interrupts)', () => {
    const h = hda()
    h.bringUp()
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD), cbl: 8 * PERIOD + 128 })
    h.start(h.dev.output)
    expect(h.errors).toEqual([
      { message: 'OSD0: RUN refused: OSD0CBL 0x3c80 (15488) ≠ the sum of the 8 BDL entry lengths 0x3c00 (15360)', details: { stream: 'OSD0', register: 'OSD0CTL', cbl: 15488, lvi: 7, sum: 15360 } },
    ])
    refused(h)
    expect(h.dev.irqAsserted).toBe(true)
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | 2) >>> 0)
  })

  it('strict: RUN with IOCE set and IOC on no entry 0..LVI is a guest error; the stream runs (and never interrupts)', () => {
    const none = periodsBdl(BUF_OUT, 4, PERIOD).map((e) => ({ ...e, ioc: false }))
    const h = hda()
    h.bringUp()
    // An IOC beyond LVI does not count: the controller never gets there.
    h.setup(h.dev.output, { entries: [...none, { addr: BUF_OUT, len: PERIOD, ioc: true }], lvi: 3, cbl: 4 * PERIOD })
    h.start(h.dev.output)
    expect(h.errors).toEqual([
      { message: 'OSD0: RUN with IOCE set but no BDL entry has IOC: the stream never interrupts', details: { stream: 'OSD0', register: 'OSD0CTL', lvi: 3 } },
    ])
    h.runFor(100 * MS) // 2.5 laps
    expect(h.dev.output.halted).toBe('')
    expect(h.dev.output.laps).toBe(2)
    expect(h.dev.stats.periodsPlayed).toBe(0)
    expect(h.dev.irqAsserted).toBe(false)
    // Each RUN is checked: a resume reports again (the kernel counts it on the same report).
    h.stop(h.dev.output)
    h.start(h.dev.output)
    expect(h.errors.length).toBe(2)
    // IOCE clear (a driver that polls the position) or one entry with IOC: nothing to report.
    for (const [entries, ints] of [[none, HDA_SD_CTL_FEIE | HDA_SD_CTL_DEIE], [none.map((e, i) => ({ ...e, ioc: i === 3 })), HDA_SD_CTL_IOCE | HDA_SD_CTL_FEIE | HDA_SD_CTL_DEIE]] as const) {
      const q = hda()
      q.bringUp()
      q.setup(q.dev.output, { entries })
      q.start(q.dev.output, ints)
      q.runFor(50 * MS)
      expect(q.errors).toEqual([])
    }
    // Lenient mode does not report it.
    const l = hda({ strict: false })
    l.bringUp()
    l.setup(l.dev.output, { entries: none })
    l.start(l.dev.output)
    expect(l.errors).toEqual([])
  })

  it('strict: LVI 0, zero-length entries, misaligned addresses and lengths, CBL not whole frames, a reserved FMT, no BDL', () => {
    const cases: [Parameters<Hda['setup']>[1], string[]][] = [
      [{ entries: [{ addr: BUF_OUT, len: PERIOD }] }, ['OSD0: RUN refused: OSD0LVI 0: the BDL needs at least 2 entries (LVI ≥ 1)']],
      [{ entries: [{ addr: BUF_OUT, len: PERIOD }, { addr: BUF_OUT + PERIOD, len: 0 }], cbl: PERIOD }, ['OSD0: RUN refused: BDL entry 1 has length 0']],
      [
        { entries: [{ addr: BUF_OUT + 2, len: 6 }, { addr: BUF_OUT + 8, len: 6 }], cbl: 12, fmt: hdaFormatValue(48_000, 3, 16)! },
        ['OSD0: RUN refused: BDL entry 0 length 0x6 (6) is not a multiple of 4 bytes', 'OSD0: RUN refused: BDL entry 0 address 0x40100002 is not 4-byte aligned', 'OSD0: RUN refused: BDL entry 1 length 0x6 (6) is not a multiple of 4 bytes'],
      ],
      [{ entries: periodsBdl(BUF_OUT, 2, 12), cbl: 24, fmt: hdaFormatValue(48_000, 5, 16)! }, ['OSD0: RUN refused: OSD0CBL 0x18 (24) is not a whole number of 10-byte frames']],
    ]
    for (const [setup, messages] of cases) {
      const h = hda()
      h.bringUp()
      h.setup(h.dev.output, setup)
      h.start(h.dev.output)
      expect(h.errors.map((e) => e.message)).toEqual(messages)
      refused(h)
    }
    const h = hda()
    h.bringUp()
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 2, PERIOD), fmt: 0x51, codec: false })
    h.start(h.dev.output)
    expect(h.errors.map((e) => e.message)).toEqual(['OSD0: RUN refused: RUN with OSD0FMT 0x51: BITS 5 is reserved (8, 16, 20, 24, 32 bits are 0..4)'])
    refused(h)
    const n = hda()
    n.bringUp()
    n.setup(n.dev.output, { entries: periodsBdl(BUF_OUT, 2, PERIOD) })
    n.w32(OSD + HDA_REG_SD_BDPL, 0)
    n.start(n.dev.output)
    expect(n.errors.map((e) => e.message)).toEqual(['OSD0: RUN refused: RUN with no BDL: OSD0BDPL and OSD0BDPU are 0'])
    refused(n)
  })

  it('BDPL takes 128-byte aligned addresses only: the low bits are reported and dropped', () => {
    const h = hda()
    h.bringUp()
    h.w32(OSD + HDA_REG_SD_BDPL, BDL_OUT + 0x40)
    expect(h.r32(OSD + HDA_REG_SD_BDPL)).toBe(BDL_OUT)
    expect(h.errors.map((e) => e.message)).toEqual([`OSD0: BDPL 0x${(BDL_OUT + 0x40).toString(16)} is not 128-byte aligned (bits 6:0 read 0)`])
  })

  it('lenient (QEMU): CBL shorter than the BDL: LPIB wraps at CBL while the BDL goes on; one entry (LVI 0) plays too', () => {
    const h = hda({ strict: false, stallOnBcis: false })
    h.bringUp()
    const data = pcm(4 * PERIOD)
    fill(h.m, BUF_OUT, data)
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 4, PERIOD), cbl: 3 * PERIOD })
    h.start(h.dev.output)
    const t0 = h.m.clock.now
    h.runUntil(t0 + 35 * MS)
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(960) // wrapped at 3 periods, 5 ms into the 4th entry
    h.runUntil(t0 + 40 * MS)
    expect(h.sink.bytes).toEqual(data) // the 4th entry still played
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(0) // and to 0 again where the BDL wraps
    const one = hda({ strict: false })
    one.bringUp()
    one.setup(one.dev.output, { entries: [{ addr: BUF_OUT, len: PERIOD }] })
    one.start(one.dev.output)
    one.runFor(10 * MS)
    expect(one.sink.length).toBe(PERIOD)
    expect(one.errors).toEqual([])
  })

  it('lenient: a BDL whose entries are all empty cannot run: DESE, silently', () => {
    const h = hda({ strict: false })
    h.bringUp()
    h.setup(h.dev.output, { entries: [{ addr: BUF_OUT, len: 0 }, { addr: BUF_OUT, len: 0 }], cbl: 0 })
    h.start(h.dev.output)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_DESE).toBe(HDA_SD_STS_DESE)
    expect(h.errors).toEqual([])
  })

  it('strict: writing CBL, LVI, FMT or the BDL pointer while RUN = 1 is reported; the running stream keeps its values', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(MS)
    h.w32(OSD + HDA_REG_SD_CBL, 0x100)
    h.w16(OSD + HDA_REG_SD_FMT, 0x4011)
    expect(h.errors.map((e) => e.message)).toEqual([
      'OSD0: write of 0x100 to OSD0CBL while RUN = 1: the running stream keeps the value it took at RUN',
      'OSD0: write of 0x4011 to OSD0FMT while RUN = 1: the running stream keeps the value it took at RUN',
    ])
    expect(h.dev.reg('OSD0CBL')).toBe(0x100)
    h.runFor(9 * MS)
    expect(h.sink.length).toBe(PERIOD)
    expect(h.sink.format).toMatchObject({ rate: 48_000 })
  })
})

describe('mini-HDA streams: failed DMA', () => {
  it('a data read that fails (bus mastering off) sets FIFOE and halts the stream; FEIE interrupts', () => {
    const { h } = playback({ strict: false, stallOnBcis: false })
    h.start(h.dev.output)
    h.runFor(10 * MS)
    h.ack(h.dev.output)
    h.dev.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY)
    h.runFor(10 * MS) // the second period was fetched before: the third one's read fails
    expect(h.r8(OSD + HDA_REG_SD_STS)).toBe(HDA_SD_STS_BCIS | HDA_SD_STS_FIFOE)
    expect(h.dev.output.halted).toBe('data read of 1920 bytes at 0x40100f00 failed (MemTxResult 1)')
    expect(h.dev.stats).toMatchObject({ fifoErrors: 1, dmaErrors: 1, descriptorErrors: 0 })
    expect(h.dev.irqAsserted).toBe(true)
    const lpib = h.r32(OSD + HDA_REG_SD_LPIB)
    expect(lpib).toBe(2 * PERIOD)
    h.runFor(50 * MS)
    expect(h.r32(OSD + HDA_REG_SD_LPIB)).toBe(lpib)
    expect(h.sink.length).toBe(2 * PERIOD)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_FIFORDY).toBe(0)
    expect(h.errors).toEqual([]) // the bus already told (the kernel reports bus-master-disabled)
  })

  it('strict: the entry re-read at each entry fails first: DESE; inside an entry the data read fails: FIFOE', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(10 * MS)
    h.dev.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY)
    h.runFor(10 * MS)
    expect(h.r8(OSD + HDA_REG_SD_STS) & (HDA_SD_STS_DESE | HDA_SD_STS_FIFOE)).toBe(HDA_SD_STS_DESE)
    expect(h.dev.output.halted).toBe('BDL entry 2 read at 0x40001020 failed (MemTxResult 1)')
    const { h: b } = playback({}, 2, 9600) // 4096 + 4096 + 1408 per entry
    b.start(b.dev.output)
    b.runFor(1)
    b.dev.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY)
    b.runFor(25 * MS)
    expect(b.r8(OSD + HDA_REG_SD_STS) & (HDA_SD_STS_DESE | HDA_SD_STS_FIFOE)).toBe(HDA_SD_STS_FIFOE)
    expect(b.dev.output.halted).toBe('data read of 4096 bytes at 0x40101000 failed (MemTxResult 1)')
    expect(b.sink.length).toBe(4096)
  })

  it('a BDL that cannot be read at RUN sets DESE', () => {
    const h = hda()
    h.bringUp()
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 2, PERIOD) })
    h.w32(OSD + HDA_REG_SD_BDPL, 0x100) // no RAM there
    h.start(h.dev.output)
    expect(h.r8(OSD + HDA_REG_SD_STS) & HDA_SD_STS_DESE).toBe(HDA_SD_STS_DESE)
    expect(h.dev.output.halted).toMatch(/^BDL read of 2 entries at 0x100 failed/)
    expect(h.dev.stats.dmaErrors).toBe(1)
    expect(h.errors).toEqual([]) // the bus already told: no guest error
    // RUN cleared: the halt is over; a good BDL runs.
    h.stop(h.dev.output)
    h.ack(h.dev.output)
    h.w32(OSD + HDA_REG_SD_BDPL, BDL_OUT)
    h.start(h.dev.output)
    h.runFor(10 * MS)
    expect(h.sink.length).toBe(PERIOD)
  })

  it('stopped, halted and running streams all report themselves in dumpStreams', () => {
    const { h } = playback()
    h.start(h.dev.output)
    h.runFor(15 * MS)
    const d = h.dev.dumpStreams()
    expect(d).toContain('OSD0 (stream index 1, output): CTL 0x10001e (RUN IOCE FEIE DEIE tag 1) STS 0x24 (BCIS FIFORDY) LPIB 0xb40 CBL 0x3c00 LVI 7 FMT 0x11 (48000 Hz, 16-bit, 2 ch) BDL 0000000040001000')
    expect(d).toContain('  running; entry 1 +0x0, lap 0, 1920 bytes since reset; burst of 1920 bytes at 0x40100780 since')
    expect(d).toContain('  BDL as read at RUN (and re-read at each entry): 8 entries at 0x40001000, 15360 bytes')
    expect(d).toContain('    BDL[1] 0000000040100780 len 0x780 IOC <-')
    expect(HDA_SD_CTL_DEIE | HDA_SD_CTL_FEIE | HDA_SD_CTL_IOCE).toBe(0x1c)
  })
})
