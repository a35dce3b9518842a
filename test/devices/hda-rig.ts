// A rig for the mini-HDA tests: a machine without a kernel, the controller on its PCI bus with a
// MemoryAudioSink, and a tiny "host" that does by hand what a driver does — the CRST handshake,
// codec verbs through the immediate command interface, a BDL and a cyclic buffer written into
// RAM, the stream registers, RUN — plus a clock that can be advanced to any instant. The
// datasheet is docs/devices/hda.md.
import {
  HDA_BDLE_SIZE,
  HDA_DPLBASE_ENABLE,
  HDA_GCTL_CRST,
  HDA_ICS_ICB,
  HDA_ICS_IRV,
  HDA_INTCTL_CIE,
  HDA_INTCTL_GIE,
  HDA_NID_ADC,
  HDA_NID_DAC,
  HDA_REG_DPLBASE,
  HDA_REG_DPUBASE,
  HDA_REG_GCTL,
  HDA_REG_IC,
  HDA_REG_ICS,
  HDA_REG_INTCTL,
  HDA_REG_IR,
  HDA_REG_SD_BDPL,
  HDA_REG_SD_BDPU,
  HDA_REG_SD_CBL,
  HDA_REG_SD_CTL,
  HDA_REG_SD_FMT,
  HDA_REG_SD_LVI,
  HDA_REG_SD_STS,
  HDA_REG_STATESTS,
  HDA_SD_CTL_INT_MASK,
  HDA_SD_CTL_RUN,
  HDA_SD_CTL_SRST,
  HDA_SD_CTL_STRM_SHIFT,
  HDA_SD_STS_W1C,
  HDA_VERB_SET_CONV,
  HDA_VERB_SET_STREAM_FORMAT,
  HdaController,
  MemoryAudioSink,
  hdaCommand,
  type HdaOptions,
  type HdaStream,
  type Machine,
} from '../../devices/index.js'
import { enable, machine, RAM, ramBytes, runClock, type HwOptions } from '../helpers/hw.js'

export { RAM, ramBytes, runClock }

export const BDL_OUT = RAM + 0x1000 // 128-byte aligned BDLs
export const BDL_IN = RAM + 0x2000
export const POSBUF = RAM + 0x3000
export const BUF_OUT = RAM + 0x10_0000 // cyclic buffers
export const BUF_IN = RAM + 0x20_0000
/** 48 kHz, 16-bit, stereo. */
export const FMT_48K_16_2 = 0x0011
export const FRAME = 4
export const BYTES_PER_SEC = 48_000 * FRAME

export type GuestError = { message: string; details?: Record<string, number | string | boolean> }

export interface BdlEntry {
  addr: number
  len: number
  ioc?: boolean
  flags?: number
}

/** BDL bytes for the entries. */
export function bdlBytes(entries: readonly BdlEntry[]): Uint8Array {
  const b = new Uint8Array(entries.length * HDA_BDLE_SIZE)
  const v = new DataView(b.buffer)
  entries.forEach((e, i) => {
    v.setBigUint64(i * 16, BigInt(e.addr), true)
    v.setUint32(i * 16 + 8, e.len, true)
    v.setUint32(i * 16 + 12, e.flags ?? (e.ioc === false ? 0 : 1), true)
  })
  return b
}

/** `periods` entries of `periodBytes` each, contiguous from `buf`, IOC on each. */
export function periodsBdl(buf: number, periods: number, periodBytes: number): BdlEntry[] {
  return Array.from({ length: periods }, (_, i) => ({ addr: buf + i * periodBytes, len: periodBytes, ioc: true }))
}

export interface StreamSetup {
  entries: readonly BdlEntry[]
  cbl?: number
  lvi?: number
  fmt?: number
  tag?: number
  /** SDnCTL interrupt enables (default IOCE | FEIE | DEIE). */
  ints?: number
  bdl?: number
  /** Program the codec's converter with tag and fmt (default true). */
  codec?: boolean
}

export function hda(opts: HdaOptions = {}, hw: HwOptions = {}) {
  const m = machine(hw)
  const sink = new MemoryAudioSink()
  const dev = m.pci.add(new HdaController({ sink, ...opts }))
  enable(dev)
  const errors: GuestError[] = []
  m.onGuestError = (_device, message, details) => errors.push(details === undefined ? { message } : { message, details })
  const w32 = (off: number, v: number): void => dev.mmioWrite(0, off, 4, v)
  const w16 = (off: number, v: number): void => dev.mmioWrite(0, off, 2, v)
  const w8 = (off: number, v: number): void => dev.mmioWrite(0, off, 1, v)
  const r32 = (off: number): number => dev.mmioRead(0, off, 4) as number
  const r16 = (off: number): number => dev.mmioRead(0, off, 2) as number
  const r8 = (off: number): number => dev.mmioRead(0, off, 1) as number

  /** Runs every event due by `at` and leaves the clock exactly there. */
  const runUntil = (at: number): void => {
    runClock(m, at)
    if (m.clock.now < at) m.clock.now = at
  }
  const runFor = (ns: number): void => runUntil(m.clock.now + ns)

  const host = {
    m,
    dev,
    sink,
    errors,
    w32,
    w16,
    w8,
    r32,
    r16,
    r8,
    runUntil,
    runFor,
    /** CRST 0 → 1, wait for CRST to read 1 and for the codec to appear; clear STATESTS. */
    bringUp(): void {
      w32(HDA_REG_GCTL, HDA_GCTL_CRST)
      runFor(dev.config.crstDelayNs)
      if ((r32(HDA_REG_GCTL) & HDA_GCTL_CRST) === 0) throw new Error('CRST did not read back 1')
      runFor(dev.config.codecWakeDelayNs)
      w16(HDA_REG_STATESTS, 0x7fff)
      w32(HDA_REG_INTCTL, (HDA_INTCTL_GIE | HDA_INTCTL_CIE | 0x3) >>> 0)
    },
    /** Sends one codec command through IC/ICS and returns IR (null: no response). */
    cmd(command: number): number | null {
      w16(HDA_REG_ICS, HDA_ICS_IRV)
      w32(HDA_REG_IC, command)
      w16(HDA_REG_ICS, HDA_ICS_ICB)
      runFor(dev.config.codecLatencyNs)
      const ics = r16(HDA_REG_ICS)
      if ((ics & HDA_ICS_ICB) !== 0) throw new Error('ICB still set after the codec latency')
      return (ics & HDA_ICS_IRV) !== 0 ? r32(HDA_REG_IR) : null
    },
    /** Programs a converter: SET_CONV (tag, channel 0) and SET_STREAM_FORMAT. */
    codec(output: boolean, tag: number, fmt: number): void {
      const nid = output ? HDA_NID_DAC : HDA_NID_ADC
      host.cmd(hdaCommand(0, nid, HDA_VERB_SET_CONV, tag << 4))
      host.cmd(hdaCommand(0, nid, HDA_VERB_SET_STREAM_FORMAT, fmt))
    },
    /** The SRST handshake as Linux's snd_hdac_stream_reset does it. */
    resetStream(s: HdaStream): void {
      const ctl = s.base + HDA_REG_SD_CTL
      w8(ctl, r8(ctl) | HDA_SD_CTL_SRST)
      for (let i = 0; i < 300 && (r8(ctl) & HDA_SD_CTL_SRST) === 0; i++) runFor(100)
      w8(ctl, r8(ctl) & ~HDA_SD_CTL_SRST)
      for (let i = 0; i < 300 && (r8(ctl) & HDA_SD_CTL_SRST) !== 0; i++) runFor(100)
    },
    /** Writes the BDL, programs the stream (after a stream reset) and the codec; does not start it. */
    setup(s: HdaStream, o: StreamSetup): void {
      host.resetStream(s)
      const bdl = o.bdl ?? (s.output ? BDL_OUT : BDL_IN)
      const bytes = bdlBytes(o.entries)
      m.ram.write(bdl, bytes, 0, bytes.length)
      const tag = o.tag ?? 1
      const fmt = o.fmt ?? FMT_48K_16_2
      w32(s.base + HDA_REG_SD_CTL, tag << HDA_SD_CTL_STRM_SHIFT)
      w32(s.base + HDA_REG_SD_CBL, o.cbl ?? o.entries.reduce((a, e) => a + e.len, 0))
      w16(s.base + HDA_REG_SD_FMT, fmt)
      w16(s.base + HDA_REG_SD_LVI, o.lvi ?? o.entries.length - 1)
      w32(s.base + HDA_REG_SD_BDPL, bdl % 0x1_0000_0000)
      w32(s.base + HDA_REG_SD_BDPU, Math.floor(bdl / 0x1_0000_0000))
      if (o.codec ?? true) host.codec(s.output, tag, fmt)
    },
    /** RUN with the interrupt enables (as snd_hdac_stream_start: one byte write of SD_CTL). */
    start(s: HdaStream, ints = HDA_SD_CTL_INT_MASK): void {
      w8(s.base + HDA_REG_SD_CTL, (r8(s.base + HDA_REG_SD_CTL) & ~0x1f) | HDA_SD_CTL_RUN | ints)
    },
    stop(s: HdaStream): void {
      w8(s.base + HDA_REG_SD_CTL, r8(s.base + HDA_REG_SD_CTL) & ~(HDA_SD_CTL_RUN | HDA_SD_CTL_INT_MASK))
    },
    /** Clears the stream's status bits (W1C) as an interrupt handler does. */
    ack(s: HdaStream): number {
      const sts = r8(s.base + HDA_REG_SD_STS)
      w8(s.base + HDA_REG_SD_STS, HDA_SD_STS_W1C)
      return sts
    },
    posbuf(at = POSBUF): void {
      w32(HDA_REG_DPUBASE, Math.floor(at / 0x1_0000_0000))
      w32(HDA_REG_DPLBASE, (at % 0x1_0000_0000) | HDA_DPLBASE_ENABLE)
    },
    /** The u32 at a RAM address. */
    u32(at: number): number {
      return new DataView(ramBytes(m, at, 4).buffer).getUint32(0, true)
    },
  }
  return host
}

export type Hda = ReturnType<typeof hda>

/** A deterministic byte pattern whose value depends on the absolute offset (for bit-exact checks). */
export function pcm(len: number, seed = 1): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) b[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff
  return b
}

export function fill(m: Machine, at: number, bytes: Uint8Array): void {
  m.ram.write(at, bytes, 0, bytes.length)
}
