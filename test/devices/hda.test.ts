// The mini-HDA at the hardware level: identity and options, global registers, the CRST
// handshake, the wall clock, interrupts from STATESTS, the immediate command interface and codec
// 0's verbs, unimplemented and read-only registers, resets and the dump. Streams are in
// hda-stream.test.ts, quirks and faults in hda-quirks.test.ts. The datasheet is docs/devices/hda.md.
import { describe, expect, it } from 'vitest'
import {
  HDA_GCTL_CRST,
  HDA_GCTL_UNSOL,
  HDA_ICS_ICB,
  HDA_ICS_IRV,
  HDA_INTCTL_CIE,
  HDA_INTCTL_GIE,
  HDA_INTSTS_CIS,
  HDA_INTSTS_GIS,
  HDA_MSIX_PBA,
  HDA_MSIX_TABLE,
  HDA_NID_ADC,
  HDA_NID_AFG,
  HDA_NID_DAC,
  HDA_NID_ROOT,
  HDA_PARAM_AUDIO_WIDGET_CAP,
  HDA_PARAM_FUNCTION_TYPE,
  HDA_PARAM_NODE_COUNT,
  HDA_PARAM_PCM,
  HDA_PARAM_REV_ID,
  HDA_PARAM_VENDOR_ID,
  HDA_REG_GCAP,
  HDA_REG_GCTL,
  HDA_REG_IC,
  HDA_REG_ICS,
  HDA_REG_INTCTL,
  HDA_REG_INTSTS,
  HDA_REG_IR,
  HDA_REG_ISD0,
  HDA_REG_OSD0,
  HDA_REG_OUTPAY,
  HDA_REG_SD_FIFOS,
  HDA_REG_SD_CBL,
  HDA_REG_STATESTS,
  HDA_REG_WAKEEN,
  HDA_REG_WALLCLK,
  HDA_REG_WALLCLK_ALIAS,
  HDA_VERB_GET_CONV,
  HDA_VERB_GET_PARAMETER,
  HDA_VERB_GET_POWER_STATE,
  HDA_VERB_GET_STREAM_FORMAT,
  HDA_VERB_SET_CODEC_RESET,
  HDA_VERB_SET_CONV,
  HDA_VERB_SET_POWER_STATE,
  HDA_VERB_SET_STREAM_FORMAT,
  HdaController,
  MSIX_CAP_OFFSET,
  PCI_CLASS_REVISION,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_TABLE,
  PCI_MSIX_PBA,
  PCI_VENDOR_ID,
  PciFunctionError,
  decodeHdaFormat,
  describeHdaFormat,
  hdaCommand,
  hdaFormatValue,
} from '../../devices/index.js'
import { FMT_48K_16_2, hda } from './hda-rig.js'

const GCTL = HDA_REG_GCTL

describe('mini-HDA: identity and options', () => {
  it('is an HD audio PCI function with the datasheet ids, a 16 KiB BAR, INTA and one MSI-X vector', () => {
    const { dev } = hda()
    expect(dev.configRead(PCI_VENDOR_ID, 2)).toBe(0x1de5)
    expect(dev.configRead(PCI_DEVICE_ID, 2)).toBe(0xa0da)
    expect(dev.configRead(PCI_CLASS_REVISION, 4) >>> 8).toBe(0x040300)
    expect(dev.configRead(PCI_INTERRUPT_PIN, 1)).toBe(1)
    expect(dev.bars[0]!.size).toBe(0x4000)
    expect(dev.msixVectors).toBe(1)
    expect(dev.configRead(MSIX_CAP_OFFSET + PCI_MSIX_TABLE, 4)).toBe(HDA_MSIX_TABLE)
    expect(dev.configRead(MSIX_CAP_OFFSET + PCI_MSIX_PBA, 4)).toBe(HDA_MSIX_PBA)
    expect(dev.name).toBe('hda0')
    expect(dev.strict).toBe(true)
    expect(dev.config).toMatchObject({ burstBytes: 4096, crstDelayNs: 100_000, codecWakeDelayNs: 500_000, srstDelayNs: 1000, codecLatencyNs: 21_000, stallOnBcis: false, earlyIrqNs: 0, lpibGranularity: 'frame', positionBuffer: 'accurate' })
    expect(new HdaController({ strict: false }).config.stallOnBcis).toBe(true)
  })

  it('bad options throw a PciFunctionError naming the option', () => {
    expect(() => new HdaController({ burstBytes: 100 })).toThrow(PciFunctionError)
    expect(() => new HdaController({ burstBytes: 100 })).toThrow(/burstBytes must be a multiple of 4 from 128 to 65536, got 100/)
    expect(() => new HdaController({ burstBytes: 4098 })).toThrow(/burstBytes/)
    expect(() => new HdaController({ crstDelayNs: -1 })).toThrow(/crstDelayNs must be a non-negative number of ns/)
    expect(() => new HdaController({ earlyIrqNs: Number.NaN })).toThrow(/earlyIrqNs/)
    expect(() => new HdaController({ strict: 'yes' as unknown as boolean })).toThrow(/strict must be a boolean/)
    expect(() => new HdaController({ lpibGranularity: 'coarse' as unknown as 'frame' })).toThrow(/lpibGranularity must be 'frame', 'burst' or a whole number/)
    expect(() => new HdaController({ lpibGranularity: 0 })).toThrow(/lpibGranularity/)
    expect(() => new HdaController({ positionBuffer: 'stale' as unknown as 'none' })).toThrow(/positionBuffer must be 'accurate', 'none' or 'lagging', got 'stale'/)
    expect(() => new HdaController({ codecVendorId: -1 })).toThrow(/codecVendorId/)
    expect(() => new HdaController({ sink: {} as never })).toThrow(/sink must be an object with a write\(\) method/)
    expect(() => new HdaController({ source: 3 as never })).toThrow(/source must be an object with a read\(\) method/)
    expect(() => new HdaController({ name: '' })).toThrow(/name must be a non-empty string/)
    const { dev } = hda()
    expect(() => dev.attachSink({} as never)).toThrow(/write\(\) method/)
    expect(() => dev.reg('NOPE' as never)).toThrow(/no register named NOPE/)
  })
})

describe('mini-HDA: global registers', () => {
  it('reads GCAP (1 input, 1 output stream, 64-bit), the versions and payloads at every access width', () => {
    const { r32, r16, r8, dev, errors } = hda()
    expect(r16(HDA_REG_GCAP)).toBe(0x1101)
    expect(r32(HDA_REG_GCAP)).toBe(0x0100_1101) // GCAP, VMIN 0, VMAJ 1
    expect(r8(0x03)).toBe(1)
    expect(r8(0x02)).toBe(0)
    expect(r32(HDA_REG_OUTPAY)).toBe(0x001d_003c)
    expect(dev.reg('GCAP')).toBe(0x1101)
    expect(dev.reg('VMAJ')).toBe(1)
    expect(dev.reg('INPAY')).toBe(0x1d)
    expect(errors).toEqual([])
  })

  it('writes to read-only registers are guest errors and change nothing; INTSTS writes are accepted quietly', () => {
    const h = hda()
    h.bringUp()
    h.w16(HDA_REG_GCAP, 0xffff)
    expect(h.r16(HDA_REG_GCAP)).toBe(0x1101)
    expect(h.errors).toEqual([{ message: 'write of 0xffff to read-only register GCAP (0x0): ignored', details: { register: 'GCAP', value: 0xffff } }])
    h.errors.length = 0
    h.w32(HDA_REG_INTSTS, 0xc00000ff) // Linux's azx_int_clear does this
    h.w32(HDA_REG_IR, 1)
    h.w16(HDA_REG_OSD0 + HDA_REG_SD_FIFOS, 0)
    expect(h.errors.map((e) => e.message)).toEqual(['write of 0x1 to read-only register IR (0x64): ignored', 'write of 0x0 to read-only register OSD0FIFOS (0xb0): ignored'])
    expect(h.r16(HDA_REG_OSD0 + HDA_REG_SD_FIFOS)).toBe(4095)
    expect(new HdaController({ burstBytes: 256 }).reg('ISD0FIFOS')).toBe(255)
  })

  it('unimplemented offsets read 0 and ignore writes; CORB/RIRB say to use the immediate command interface', () => {
    const h = hda()
    h.bringUp()
    h.w16(0x48, 1)
    expect(h.r8(0x4e)).toBe(0) // CORBSIZE: no sizes supported
    expect(h.r32(0x1000)).toBe(0)
    expect(h.errors.map((e) => e.message)).toEqual([
      'write of 0x1 to CORB/RIRB register 0x48: CORB/RIRB are not implemented (CORBSIZE reads 0); use the immediate command interface (IC/IR/ICS)',
      'read of CORB/RIRB register 0x4e: CORB/RIRB are not implemented (CORBSIZE reads 0); use the immediate command interface (IC/IR/ICS)',
      'read of unimplemented register 0x1000',
    ])
  })

  it('INTCTL keeps GIE, CIE and the two SIE bits; enabling a stream that does not exist is a guest error', () => {
    const h = hda()
    h.bringUp()
    h.w32(HDA_REG_INTCTL, 0xc00000ff)
    expect(h.r32(HDA_REG_INTCTL)).toBe(0xc0000003)
    expect(h.errors.map((e) => e.message)).toEqual(['INTCTL 0xc00000ff enables streams 0xfc that do not exist (SIE bits 0 and 1: ISD0, OSD0)'])
    h.w8(HDA_REG_INTCTL, 0) // azx_int_disable's byte write
    expect(h.r32(HDA_REG_INTCTL)).toBe(0xc0000000)
  })
})

describe('mini-HDA: controller reset (GCTL.CRST)', () => {
  it('starts in reset; CRST 0 → 1 reads back 1 only after crstDelayNs, and codec 0 appears in STATESTS codecWakeDelayNs later', () => {
    const h = hda({ crstDelayNs: 5000, codecWakeDelayNs: 20_000 })
    const { r32, r16, w32, dev } = h
    expect(r32(GCTL)).toBe(0)
    expect(dev.ready).toBe(false)
    w32(GCTL, HDA_GCTL_CRST)
    const t = h.m.clock.now
    expect(r32(GCTL)).toBe(0)
    h.runUntil(t + 4999)
    expect(r32(GCTL) & HDA_GCTL_CRST).toBe(0)
    h.runUntil(t + 5000)
    expect(r32(GCTL) & HDA_GCTL_CRST).toBe(1)
    expect(h.r8(GCTL)).toBe(1) // Linux polls with readb
    expect(r16(HDA_REG_STATESTS)).toBe(0)
    expect(dev.codecPresent).toBe(false)
    h.runUntil(t + 5000 + 19_999)
    expect(r16(HDA_REG_STATESTS)).toBe(0)
    h.runUntil(t + 25_000)
    expect(r16(HDA_REG_STATESTS)).toBe(1)
    expect(dev.codecPresent).toBe(true)
    h.w16(HDA_REG_STATESTS, 1) // W1C
    expect(r16(HDA_REG_STATESTS)).toBe(0)
    expect(h.errors).toEqual([])
  })

  it('strict: while CRST reads 0 only GCTL, STATESTS and WAKEEN take writes; the rest is ignored with a guest error', () => {
    const h = hda()
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE)
    h.w32(HDA_REG_OSD0 + HDA_REG_SD_CBL, 0x1000)
    h.w16(HDA_REG_WAKEEN, 1)
    h.w16(HDA_REG_STATESTS, 0x7fff)
    expect(h.r32(HDA_REG_INTCTL)).toBe(0)
    expect(h.r32(HDA_REG_OSD0 + HDA_REG_SD_CBL)).toBe(0)
    expect(h.r16(HDA_REG_WAKEEN)).toBe(1)
    expect(h.errors).toEqual([
      { message: 'write of 0x80000000 to INTCTL while the controller is in reset (GCTL.CRST reads 0): ignored', details: { register: 'INTCTL', value: 0x80000000 } },
      { message: 'write of 0x1000 to OSD0CBL while the controller is in reset (GCTL.CRST reads 0): ignored', details: { register: 'OSD0CBL', value: 0x1000 } },
    ])
    // Also while leaving reset (CRST written 1, not yet read back as 1).
    h.errors.length = 0
    h.w32(GCTL, HDA_GCTL_CRST)
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE)
    expect(h.errors).toHaveLength(1)
    h.runFor(h.dev.config.crstDelayNs)
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE)
    expect(h.r32(HDA_REG_INTCTL)).toBe(HDA_INTCTL_GIE)
  })

  it('CRST 1 → 0 resets the controller at once: registers, streams and the codec; STATESTS and WAKEEN survive', () => {
    const h = hda()
    h.bringUp()
    h.codec(true, 3, FMT_48K_16_2)
    h.w16(HDA_REG_WAKEEN, 1)
    h.runFor(10)
    h.w32(GCTL, HDA_GCTL_CRST | HDA_GCTL_UNSOL)
    expect(h.r32(GCTL)).toBe(HDA_GCTL_CRST | HDA_GCTL_UNSOL)
    h.w32(HDA_REG_OSD0 + HDA_REG_SD_CBL, 0x2000)
    h.w32(GCTL, 0)
    expect(h.r32(GCTL)).toBe(0)
    expect(h.r32(HDA_REG_INTCTL)).toBe(0)
    expect(h.dev.reg('OSD0CBL')).toBe(0)
    expect(h.dev.codec.out).toMatchObject({ stream: 0, format: 0 })
    expect(h.r16(HDA_REG_WAKEEN)).toBe(1)
    expect(h.dev.stats.resets).toBe(1)
    expect(h.dev.codecPresent).toBe(false)
    // Out of reset again: the codec announces itself again.
    h.bringUp()
    expect(h.dev.codecPresent).toBe(true)
    expect(h.dev.stats.resets).toBe(1)
  })

  it('lenient (QEMU): registers work in reset, codec 0 is present from power-on, STATESTS shows it', () => {
    const h = hda({ strict: false })
    expect(h.r16(HDA_REG_STATESTS)).toBe(1)
    expect(h.dev.codecPresent).toBe(true)
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE)
    expect(h.r32(HDA_REG_INTCTL)).toBe(HDA_INTCTL_GIE)
    expect(h.cmd(hdaCommand(0, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_VENDOR_ID))).toBe(0x1de5a0da)
    h.w32(GCTL, HDA_GCTL_CRST)
    expect(h.r32(GCTL)).toBe(0) // CRST still takes crstDelayNs to read back
    h.runFor(100_000)
    expect(h.r32(GCTL)).toBe(1)
    expect(h.errors).toEqual([])
  })

  it('a codec interrupt: STATESTS & WAKEEN sets INTSTS.CIS, and GIS with CIE; the line follows GIE', () => {
    const h = hda()
    h.w16(HDA_REG_WAKEEN, 1)
    h.w32(GCTL, HDA_GCTL_CRST)
    h.runFor(100_000)
    h.w32(HDA_REG_INTCTL, (HDA_INTCTL_GIE | HDA_INTCTL_CIE) >>> 0)
    expect(h.r32(HDA_REG_INTSTS)).toBe(0)
    h.runFor(500_000)
    expect(h.r32(HDA_REG_INTSTS)).toBe((HDA_INTSTS_GIS | HDA_INTSTS_CIS) >>> 0)
    expect(h.dev.irqAsserted).toBe(true)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(true)
    expect(h.dev.stats.interrupts).toBe(1)
    h.w32(HDA_REG_INTCTL, HDA_INTCTL_GIE) // CIE off: CIS stays, GIS goes
    expect(h.r32(HDA_REG_INTSTS)).toBe(HDA_INTSTS_CIS)
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(false)
    h.w32(HDA_REG_INTCTL, (HDA_INTCTL_GIE | HDA_INTCTL_CIE) >>> 0)
    expect(h.dev.irqAsserted).toBe(true)
    h.w16(HDA_REG_STATESTS, 1)
    expect(h.r32(HDA_REG_INTSTS)).toBe(0)
    expect(h.dev.irqAsserted).toBe(false)
    expect(h.dev.stats.interrupts).toBe(2)
  })
})

describe('mini-HDA: wall clock', () => {
  it('WALLCLK counts 24 MHz of virtual time from CRST reading 1 (0 in reset), with an alias at 0x2030, wrapping at 2^32', () => {
    const h = hda({ crstDelayNs: 1000 })
    expect(h.r32(HDA_REG_WALLCLK)).toBe(0)
    h.w32(GCTL, HDA_GCTL_CRST)
    h.runFor(500)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(0)
    h.runFor(500)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(0)
    h.runFor(1_000_000)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(24_000)
    h.runFor(1000)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(24_024)
    expect(h.r32(HDA_REG_WALLCLK_ALIAS)).toBe(24_024)
    h.runFor(41) // 41 ns: not yet a whole 41.67 ns tick more
    expect(h.r32(HDA_REG_WALLCLK)).toBe(24_024)
    h.runFor(1)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(24_025)
    // 2^32 ticks = 178.956970 s.
    h.runFor(2 ** 32 / 0.024 - 1_001_042)
    expect(h.r32(HDA_REG_WALLCLK)).toBeLessThan(2)
    expect(h.dev.reg('WALLCLK')).toBe(h.r32(HDA_REG_WALLCLK))
  })

  it('lenient: WALLCLK counts from power-on or the last controller reset, as QEMU', () => {
    const h = hda({ strict: false })
    h.runFor(1_000_000)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(24_000)
    h.w32(GCTL, 0)
    expect(h.r32(HDA_REG_WALLCLK)).toBe(0)
  })
})

describe('mini-HDA: immediate command interface and codec 0', () => {
  it('a command: ICB reads 1 until the codec latency has passed, then IR holds the response with IRV and IRRADD', () => {
    const h = hda({ codecLatencyNs: 2000 })
    h.bringUp()
    h.w32(HDA_REG_IC, hdaCommand(0, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_VENDOR_ID))
    h.w16(HDA_REG_ICS, HDA_ICS_ICB)
    expect(h.r16(HDA_REG_ICS)).toBe(HDA_ICS_ICB)
    h.runFor(1999)
    expect(h.r16(HDA_REG_ICS)).toBe(HDA_ICS_ICB)
    h.runFor(1)
    expect(h.r16(HDA_REG_ICS)).toBe(HDA_ICS_IRV) // IRRADD 0: codec 0
    expect(h.r32(HDA_REG_IR)).toBe(0x1de5a0da)
    h.w16(HDA_REG_ICS, HDA_ICS_IRV)
    expect(h.r16(HDA_REG_ICS)).toBe(0)
    expect(h.dev.stats.commands).toBe(1)
    expect(h.errors).toEqual([])
  })

  it('answers the parameters a driver enumerates: vendor, revision, nodes, function type, widget types, PCM caps', () => {
    const h = hda({ codecVendorId: 0x10ec0269 })
    h.bringUp()
    const par = (nid: number, p: number) => h.cmd(hdaCommand(0, nid, HDA_VERB_GET_PARAMETER, p))
    expect(par(HDA_NID_ROOT, HDA_PARAM_VENDOR_ID)).toBe(0x10ec0269)
    expect(par(HDA_NID_ROOT, HDA_PARAM_REV_ID)).toBe(0x00100100)
    expect(par(HDA_NID_ROOT, HDA_PARAM_NODE_COUNT)).toBe(0x0001_0001) // AFG at NID 1
    expect(par(HDA_NID_AFG, HDA_PARAM_NODE_COUNT)).toBe(0x0002_0002) // NIDs 2 and 3
    expect(par(HDA_NID_AFG, HDA_PARAM_FUNCTION_TYPE)).toBe(1)
    expect((par(HDA_NID_DAC, HDA_PARAM_AUDIO_WIDGET_CAP)! >>> 20) & 0xf).toBe(0) // audio output
    expect((par(HDA_NID_ADC, HDA_PARAM_AUDIO_WIDGET_CAP)! >>> 20) & 0xf).toBe(1) // audio input
    const wcaps = par(HDA_NID_DAC, HDA_PARAM_AUDIO_WIDGET_CAP)!
    expect((((wcaps >> 13) & 7) << 1 | (wcaps & 1)) + 1).toBe(16) // Linux's get_wcaps_channels
    expect(par(HDA_NID_DAC, HDA_PARAM_PCM)).toBe(0x1f07ff)
    expect(par(HDA_NID_DAC, 0x12)).toBe(0) // an absent parameter (amp caps)
    expect(h.errors).toEqual([])
  })

  it('SET_CONV / GET_CONV and SET_STREAM_FORMAT / GET_STREAM_FORMAT program the converters; Function Reset clears them', () => {
    const h = hda()
    h.bringUp()
    expect(h.cmd(hdaCommand(0, HDA_NID_DAC, HDA_VERB_SET_CONV, 0x52))).toBe(0)
    expect(h.cmd(hdaCommand(0, HDA_NID_DAC, HDA_VERB_SET_STREAM_FORMAT, 0x4011))).toBe(0)
    expect(h.cmd(hdaCommand(0, HDA_NID_ADC, HDA_VERB_SET_CONV, 0x20))).toBe(0)
    expect(h.cmd(hdaCommand(0, HDA_NID_DAC, HDA_VERB_GET_CONV))).toBe(0x52)
    expect(h.cmd(hdaCommand(0, HDA_NID_DAC, HDA_VERB_GET_STREAM_FORMAT))).toBe(0x4011)
    expect(h.dev.codec.out).toMatchObject({ stream: 5, channel: 2, format: 0x4011 })
    expect(h.dev.codec.in).toMatchObject({ stream: 2, channel: 0 })
    expect(h.cmd(hdaCommand(0, HDA_NID_AFG, HDA_VERB_SET_POWER_STATE, 3))).toBe(0)
    expect(h.cmd(hdaCommand(0, HDA_NID_AFG, HDA_VERB_GET_POWER_STATE))).toBe(0x33)
    expect(h.cmd(hdaCommand(0, HDA_NID_AFG, HDA_VERB_SET_CODEC_RESET))).toBe(0)
    expect(h.dev.codec.out).toMatchObject({ stream: 0, channel: 0, format: 0 })
    expect(h.cmd(hdaCommand(0, HDA_NID_AFG, HDA_VERB_GET_POWER_STATE))).toBe(0)
    expect(h.errors).toEqual([])
  })

  it('strict: an unsupported verb, a missing node, a verb on the wrong node are answered 0 with a guest error', () => {
    const h = hda()
    h.bringUp()
    expect(h.cmd(hdaCommand(0, HDA_NID_DAC, 0xf1c))).toBe(0)
    expect(h.cmd(hdaCommand(0, 9, HDA_VERB_GET_PARAMETER, 0))).toBe(0)
    expect(h.cmd(hdaCommand(0, HDA_NID_ROOT, HDA_VERB_SET_CONV, 0x10))).toBe(0)
    expect(h.errors.map((e) => e.message)).toEqual([
      'codec 0: unsupported verb 0xf1c on node 2 (command 0x002f1c00): answered 0',
      'codec 0: no node 9 (nodes 0..3: root, AFG, DAC, ADC) (command 0x009f0000): answered 0',
      'codec 0: SET_CONV on node 0, which is not a converter (command 0x00070610): answered 0',
    ])
  })

  it('a command to a missing codec, or before codec 0 appeared, gets no response: ICB clears, IRV stays 0', () => {
    const h = hda()
    h.w32(GCTL, HDA_GCTL_CRST)
    h.runFor(100_000) // CRST reads 1, the codec has not announced itself yet
    expect(h.cmd(hdaCommand(0, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_VENDOR_ID))).toBeNull()
    h.runFor(500_000)
    expect(h.cmd(hdaCommand(2, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_VENDOR_ID))).toBeNull()
    expect(h.errors.map((e) => e.message)).toEqual([
      'command 0x000f0000 sent before codec 0 reported itself in STATESTS (wait after CRST reads 1): no response',
      'command 0x200f0000 addressed to codec 2: there is no codec at that address (STATESTS): no response',
    ])
  })

  it('setting ICB while a command is in flight, or writing IC then, is a guest error; the first command completes', () => {
    const h = hda()
    h.bringUp()
    h.w32(HDA_REG_IC, hdaCommand(0, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_VENDOR_ID))
    h.w16(HDA_REG_ICS, HDA_ICS_ICB)
    h.w32(HDA_REG_IC, hdaCommand(0, HDA_NID_ROOT, HDA_VERB_GET_PARAMETER, HDA_PARAM_REV_ID))
    h.w16(HDA_REG_ICS, HDA_ICS_ICB)
    h.runFor(21_000)
    expect(h.r32(HDA_REG_IR)).toBe(0x1de5a0da)
    expect(h.dev.stats.commands).toBe(1)
    expect(h.errors.map((e) => e.message)).toEqual([
      'IC written while ICS.ICB is set (the previous command 0x000f0000 is still in flight)',
      'ICS.ICB set while a command is in flight (0x000f0000): ignored; wait for ICB to read 0',
    ])
  })
})

describe('mini-HDA: stream formats', () => {
  it('decodes and encodes FMT words as Linux builds them', () => {
    expect(hdaFormatValue(48_000, 2, 16)).toBe(0x0011)
    expect(hdaFormatValue(44_100, 2, 16)).toBe(0x4011)
    expect(hdaFormatValue(96_000, 2, 24)).toBe(0x0831)
    expect(hdaFormatValue(8000, 1, 16)).toBe(0x0510)
    expect(hdaFormatValue(32_000, 2, 16)).toBe(0x0a11)
    expect(hdaFormatValue(192_000, 8, 32)).toBe(0x1847)
    expect(hdaFormatValue(12_345, 2, 16)).toBeNull()
    expect(hdaFormatValue(48_000, 17, 16)).toBeNull()
    expect(decodeHdaFormat(0x4011)).toMatchObject({ rate: 44_100, channels: 2, bits: 16, frameBytes: 4, byteRate: 176_400 })
    expect(decodeHdaFormat(0x0031)).toMatchObject({ bits: 24, frameBytes: 8 })
    expect(decodeHdaFormat(0x000f)).toMatchObject({ channels: 16, frameBytes: 16 })
    expect(decodeHdaFormat(0x0001)).toMatchObject({ bits: 8, frameBytes: 2 })
    expect(decodeHdaFormat(0x0051)).toBe('BITS 5 is reserved (8, 16, 20, 24, 32 bits are 0..4)')
    expect(decodeHdaFormat(0x2011)).toBe('MULT 4 is reserved (×1..×4 are 0..3)')
    expect(describeHdaFormat(0x8011)).toBe('48000 Hz, 16-bit, 2 ch, non-PCM')
  })
})

describe('mini-HDA: resets and the dump', () => {
  it('a function-level reset brings the controller back to power-on (in reset, STATESTS 0)', () => {
    const h = hda()
    h.bringUp()
    h.runFor(600_000)
    h.dev.reset()
    expect(h.dev.ready).toBe(false)
    expect(h.dev.reg('GCTL')).toBe(0)
    expect(h.dev.reg('STATESTS')).toBe(0)
  })

  it('dumpStreams shows the global registers, the codec and both streams', () => {
    const h = hda()
    h.bringUp()
    h.codec(true, 1, FMT_48K_16_2)
    const d = h.dev.dumpStreams()
    expect(d).toContain('hda0: GCTL 0x00000001 (CRST) STATESTS 0x0 WAKEEN 0x0 INTCTL 0xc0000003')
    expect(d).toContain('codec 0 present: DAC NID 2 stream 1 ch 0 fmt 0x11 (48000 Hz, 16-bit, 2 ch); ADC NID 3 stream 0 ch 0 fmt 0x0 (48000 Hz, 8-bit, 1 ch)')
    expect(d).toContain(`ISD0 (stream index 0, input): CTL 0x0 (tag 0) STS 0x0 LPIB 0x0 CBL 0x0 LVI 0 FMT 0x0`)
    expect(d).toContain('OSD0 (stream index 1, output)')
    expect(d).toContain('  stopped; entry 0 +0x0, lap 0, 0 bytes since reset')
    expect(HDA_REG_ISD0).toBe(0x80)
  })
})
