/**
 * "mini-HDA": an Intel High Definition Audio controller with one input and one output stream and
 * one codec — global registers with the CRST reset handshake, the wall clock, interrupts
 * (INTCTL/INTSTS), the DMA position buffer, the immediate command interface to codec 0
 * (devices/sound/codec.ts), and two stream descriptors (stream.ts) whose DMA engines (engine.ts)
 * move cyclic buffers described by buffer descriptor lists (bdl.ts) to an AudioSink and from an
 * AudioSource (audio-port.ts).
 * Datasheet: docs/devices/hda.md; register map: devices/sound/hda-regs.ts.
 *
 * Modelled on QEMU's hw/audio/intel-hda.c and the High Definition Audio Specification 1.0a
 * (§3.3 registers, §4.2–§4.4 controller and codec initialisation, §4.5 streams): QEMU's register
 * table with its byte-lane accesses, intel_hda_update_int_sts / intel_hda_update_irq, the wall
 * clock as virtual ns × 24 / 1000, the immediate command path of intel_hda_corb_run and
 * intel_hda_response. Differences, each in the datasheet: CRST takes time to read back 1 and the
 * codec announces itself later in STATESTS (strict mode also holds every other register in reset
 * meanwhile), no CORB/RIRB, a compact GCAP (1 input + 1 output stream: ISD0 at 0x80, OSD0 at
 * 0xa0), MSI-X instead of MSI, and strict mode reports what QEMU silently accepts.
 */

import type { AudioSink, AudioSource } from './audio-port.js'
import { HdaCodec } from './codec.js'
import { describeHdaFormat } from './format.js'
import * as H from './hda-regs.js'
import { resolveHdaOptions, type HdaConfig, type HdaOptions } from './options.js'
import { HdaStream, type HdaStreamHost, type HdaStreamStats } from './stream.js'
import type { ClockEvent } from '../machine/clock.js'
import { PciFunction, PciFunctionError } from '../pci/function.js'

export type { HdaConfig, HdaLpibGranularity, HdaOptions, HdaPositionBuffer } from './options.js'
export type { HdaStream, HdaStreamStats } from './stream.js'
export type { HdaCodec, HdaConverter, HdaRouting } from './codec.js'

/** Running counts for tests and tools (never reset). */
export interface HdaStats extends HdaStreamStats {
  /** Interrupt assertions (rising edges of INTSTS.GIS && INTCTL.GIE that reached the pin or vector). */
  interrupts: number
  /** Codec commands sent through the immediate command interface. */
  commands: number
  /** Controller resets (GCTL.CRST written 0 while out of reset, function-level resets). */
  resets: number
}

/** One decoded register: its bytes, how it reads, how it takes the bytes written (null: read-only). */
interface Field {
  readonly name: string
  readonly off: number
  readonly size: number
  read(): number
  readonly write: ((value: number, mask: number) => void) | null
  /** A write is ignored without a guest error (INTSTS: Linux writes it). */
  readonly quiet?: boolean
  /** Writable while the controller is in reset. */
  readonly inReset?: boolean
}

type CrstState = 'reset' | 'exiting' | 'ready'
const TWO32 = 0x1_0000_0000
/** 2^(8i) by byte lane i: a table, since 2 ** x with a variable x is a pow() call (70-90 ns here). */
const BYTE_WEIGHT = [1, 2 ** 8, 2 ** 16, 2 ** 24] as const
const hex = (v: number): string => `0x${v.toString(16)}`
const hex8 = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`
const merge = (old: number, value: number, mask: number): number => ((old & ~mask) | (value & mask)) >>> 0
const DECODE_END = H.HDA_REG_ALIAS + H.HDA_REG_OSD0 + H.HDA_REG_SD_LPIB + 4

export class HdaController extends PciFunction {
  readonly strict: boolean
  /** The options as taken. */
  readonly config: HdaConfig
  /** Codec 0. */
  readonly codec: HdaCodec
  /** The input stream (ISD0, stream index 0) and the output stream (OSD0, stream index 1). */
  readonly input: HdaStream
  readonly output: HdaStream
  readonly stats: HdaStats = {
    bytesPlayed: 0, bytesRecorded: 0, silentBytes: 0, periodsPlayed: 0, periodsRecorded: 0, bursts: 0,
    fifoErrors: 0, descriptorErrors: 0, dmaErrors: 0, bdlChanges: 0, bcisStalls: 0, streamResets: 0,
    interrupts: 0, commands: 0, resets: 0,
  }

  /* Global registers */
  #gctl = 0
  #crst: CrstState = 'reset'
  #wakeen = 0
  #statests = 0
  #intctl = 0
  #ssync = 0
  #ic = 0
  #ir = 0
  #ics = 0
  #dplbase = 0
  #dpubase = 0
  #wallBase = 0
  #codecPresent = false
  #irqLevel = false
  #sink: AudioSink | null
  #source: AudioSource | null
  #crstEv: ClockEvent | null = null
  #wakeEv: ClockEvent | null = null
  #cmdEv: ClockEvent | null = null
  #cmd = 0
  readonly #fields: (Field | undefined)[] = []
  readonly #byName = new Map<string, Field>()
  readonly #onCrstDone = (): void => this.#crstDone()
  readonly #onCodecWake = (): void => {
    this.#wakeEv = null
    this.#codecPresent = true
    this.#statests |= H.HDA_STATESTS_SDIWAKE0
    this.#updateIrq()
  }
  readonly #onResponse = (): void => this.#response()

  constructor(opts: HdaOptions = {}) {
    const c = resolveHdaOptions(opts)
    super({
      name: c.name,
      vendor: H.HDA_VENDOR_ID,
      device: H.HDA_DEVICE_ID,
      classCode: H.HDA_CLASS,
      revision: H.HDA_REVISION,
      bars: [{ size: H.HDA_BAR_SIZE }],
      msixVectors: 1,
      msixTableOffset: H.HDA_MSIX_TABLE,
      msixPbaOffset: H.HDA_MSIX_PBA,
      intxPin: 1,
      addressBits: c.addressBits,
      ...(opts.hostile !== undefined ? { hostile: opts.hostile } : {}),
    })
    this.config = c
    this.strict = c.strict
    this.#sink = opts.sink ?? null
    this.#source = opts.source ?? null
    this.codec = new HdaCodec(c.codecVendorId)
    const host: HdaStreamHost = {
      config: c,
      clock: () => this.machine!.clock,
      dmaRead: (bus, b, off, len) => this.dmaRead(bus, b, off, len),
      dmaWrite: (bus, b, off, len) => this.dmaWrite(bus, b, off, len),
      hostileRecord: (bus, record, fields) => this.hostileRecord(bus, record, fields),
      fault: (kind) => this.fault(kind),
      guest: (message, details) => this.#guest(message, details),
      statusChanged: () => this.#updateIrq(),
      positionSlot: (index) => ((this.#dplbase & H.HDA_DPLBASE_ENABLE) === 0 ? -1 : this.#dpubase * TWO32 + ((this.#dplbase & H.HDA_DPLBASE_ADDR_MASK) >>> 0) + H.HDA_POSBUF_STRIDE * index),
      routing: (output, tag, fmt) => this.codec.routing(output, tag, fmt),
      converterFormat: (output) => (output ? this.codec.out.format : this.codec.in.format),
      sink: () => this.#sink,
      source: () => this.#source,
    }
    this.input = new HdaStream(host, H.HDA_STREAM_INDEX_IN, false, this.stats)
    this.output = new HdaStream(host, H.HDA_STREAM_INDEX_OUT, true, this.stats)
    this.#buildFields()
    this.#powerOn()
    this.stats.resets = 0
  }

  /* ---- the audio port ---- */

  /** Where the output converter's samples go (null: counted and dropped). */
  get sink(): AudioSink | null {
    return this.#sink
  }

  /** What the input converter records (null: silence). */
  get source(): AudioSource | null {
    return this.#source
  }

  attachSink(sink: AudioSink | null): void {
    if (sink !== null && (typeof sink !== 'object' || typeof sink.write !== 'function')) throw new PciFunctionError(`${this.name}: a sink must have a write() method`)
    this.#sink = sink
  }

  attachSource(source: AudioSource | null): void {
    if (source !== null && (typeof source !== 'object' || typeof source.read !== 'function')) throw new PciFunctionError(`${this.name}: a source must have a read() method`)
    this.#source = source
  }

  /* ---- harness view ---- */

  /** GCTL.CRST reads 1: the controller is out of reset. */
  get ready(): boolean {
    return this.#crst === 'ready'
  }

  /** Codec 0 answers commands (strict: codecWakeDelayNs after CRST reads 1). */
  get codecPresent(): boolean {
    return this.#codecPresent
  }

  /** The interrupt output: INTSTS.GIS && INTCTL.GIE. */
  get irqAsserted(): boolean {
    return this.#irqLevel
  }

  /** A register's value as a read returns it, without reporting anything (SDnCTL: its 24 bits). */
  reg(name: H.HdaRegister): number {
    const r = H.HDA_REGISTERS[name] as readonly [number, number] | undefined
    if (r === undefined) throw new PciFunctionError(`${this.name}: no register named ${name as string}`)
    const v = this.#readAccess(r[0], r[1], false)
    return name === 'ISD0CTL' || name === 'OSD0CTL' ? v & 0xffffff : v
  }

  /** Function-level reset: the PCI state (PciFunction.reset) and the controller, as at power-on. */
  override reset(): void {
    super.reset()
    this.#powerOn()
  }

  /**
   * The controller and its streams as the device sees them: global registers, the codec's
   * converters, then per stream its registers, state and the BDL copy it works from (no memory
   * is read).
   */
  dumpStreams(): string {
    const out: string[] = []
    const crst = this.#crst === 'ready' ? 'CRST' : this.#crst === 'exiting' ? 'leaving reset' : 'in reset'
    out.push(`${this.name}: GCTL ${hex8(this.#readGctl())} (${crst}) STATESTS ${hex(this.#statests)} WAKEEN ${hex(this.#wakeen)} INTCTL ${hex8(this.#intctl)} INTSTS ${hex8(this.#intsts())} WALLCLK ${hex8(this.#wallclk())} DPLBASE ${hex8(this.#dplbase)} DPUBASE ${hex8(this.#dpubase)}`)
    out.push(`  codec 0 ${this.#codecPresent ? 'present' : 'absent'}: ${this.codec.describe(describeHdaFormat)}; ICS ${hex(this.#ics)} IC ${hex8(this.#ic)} IR ${hex8(this.#ir)}`)
    this.input.describe(out)
    this.output.describe(out)
    return out.join('\n')
  }

  /* ---- MMIO ---- */

  protected barRead(_bar: number, off: number, size: 1 | 2 | 4): number {
    return this.#readAccess(off, size, true)
  }

  protected barWrite(_bar: number, off: number, size: 1 | 2 | 4, value: number): void {
    const exact = off < DECODE_END ? this.#fields[off] : undefined
    if (exact !== undefined && exact.off === off && exact.size === size) {
      this.#writeField(exact, value >>> 0, size === 4 ? 0xffff_ffff : (1 << (8 * size)) - 1, value)
      return
    }
    let last: Field | undefined
    let v = 0
    let mask = 0
    let unknown = -1
    for (let i = 0; i < size; i++) {
      const f = off + i < DECODE_END ? this.#fields[off + i] : undefined
      if (f === undefined) {
        if (unknown < 0) unknown = off + i
        continue
      }
      if (f !== last) {
        if (last !== undefined) this.#writeField(last, v >>> 0, mask >>> 0, value)
        last = f
        v = mask = 0
      }
      const lane = 8 * (off + i - f.off)
      v = (v | (((value >>> (8 * i)) & 0xff) << lane)) >>> 0
      mask = (mask | (0xff << lane)) >>> 0
    }
    if (last !== undefined) this.#writeField(last, v >>> 0, mask >>> 0, value)
    if (unknown >= 0) this.#unimplemented(unknown, true, value)
  }

  /** The bytes of one register an access wrote (`value`: the whole access, for messages). */
  #writeField(f: Field, v: number, mask: number, value: number): void {
    if (f.write === null) {
      if (f.quiet !== true) this.#guest(`write of ${hex(value)} to read-only register ${f.name} (${hex(f.off)}): ignored`, { register: f.name, value })
    } else if (this.strict && this.#crst !== 'ready' && f.inReset !== true) {
      this.#guest(`write of ${hex(value)} to ${f.name} while the controller is in reset (GCTL.CRST reads 0): ignored`, { register: f.name, value })
    } else f.write(v, mask)
  }

  #readAccess(off: number, size: number, report: boolean): number {
    const exact = off < DECODE_END ? this.#fields[off] : undefined
    if (exact !== undefined && exact.off === off && exact.size === size) return exact.read() >>> 0
    let v = 0
    let last: Field | undefined
    let lastValue = 0
    let unknown = -1
    for (let i = 0; i < size; i++) {
      const f = off + i < DECODE_END ? this.#fields[off + i] : undefined
      if (f === undefined) {
        if (unknown < 0) unknown = off + i
        continue
      }
      if (f !== last) {
        last = f
        lastValue = f.read()
      }
      v += ((lastValue >>> (8 * (off + i - f.off))) & 0xff) * BYTE_WEIGHT[i]!
    }
    if (unknown >= 0 && report) this.#unimplemented(unknown, false, 0)
    return v
  }

  #unimplemented(off: number, write: boolean, value: number): void {
    const what = write ? `write of ${hex(value)} to` : 'read of'
    if (off >= H.HDA_REG_CORB_FIRST && off <= H.HDA_REG_CORB_LAST) {
      this.#guest(`${what} CORB/RIRB register ${hex(off)}: CORB/RIRB are not implemented (CORBSIZE reads 0); use the immediate command interface (IC/IR/ICS)`, { offset: off, write })
    } else this.#guest(`${what} unimplemented register ${hex(off)}`, { offset: off, write })
  }

  #field(name: string, off: number, size: number, read: () => number, write: ((value: number, mask: number) => void) | null, extra: { quiet?: boolean; inReset?: boolean } = {}): void {
    const f: Field = { name, off, size, read, write, ...extra }
    for (let b = off; b < off + size; b++) {
      if (this.#fields[b] !== undefined) throw new PciFunctionError(`${this.name}: register ${name} overlaps ${this.#fields[b]!.name}`)
      this.#fields[b] = f
    }
    this.#byName.set(name, f)
  }

  #buildFields(): void {
    const ro = (v: number) => () => v
    this.#field('GCAP', H.HDA_REG_GCAP, 2, ro(H.HDA_GCAP_VALUE), null)
    this.#field('VMIN', H.HDA_REG_VMIN, 1, ro(H.HDA_VMIN_VALUE), null)
    this.#field('VMAJ', H.HDA_REG_VMAJ, 1, ro(H.HDA_VMAJ_VALUE), null)
    this.#field('OUTPAY', H.HDA_REG_OUTPAY, 2, ro(H.HDA_OUTPAY_VALUE), null)
    this.#field('INPAY', H.HDA_REG_INPAY, 2, ro(H.HDA_INPAY_VALUE), null)
    this.#field('GCTL', H.HDA_REG_GCTL, 4, () => this.#readGctl(), (v, m) => this.#writeGctl(v, m), { inReset: true })
    this.#field('WAKEEN', H.HDA_REG_WAKEEN, 2, () => this.#wakeen, (v, m) => {
      this.#wakeen = merge(this.#wakeen, v, m) & H.HDA_STATESTS_MASK
      this.#updateIrq()
    }, { inReset: true })
    this.#field('STATESTS', H.HDA_REG_STATESTS, 2, () => this.#statests, (v, m) => {
      this.#statests &= ~(v & m & H.HDA_STATESTS_MASK)
      this.#updateIrq()
    }, { inReset: true })
    this.#field('INTCTL', H.HDA_REG_INTCTL, 4, () => this.#intctl, (v, m) => {
      const next = merge(this.#intctl, v, m)
      const bad = next & ~(H.HDA_INTCTL_GIE | H.HDA_INTCTL_CIE | H.HDA_INTCTL_SIE_MASK) & 0xff
      if (bad !== 0) this.#guest(`INTCTL ${hex(next)} enables streams ${hex(bad)} that do not exist (SIE bits 0 and 1: ISD0, OSD0)`, { register: 'INTCTL', value: next })
      this.#intctl = (next & (H.HDA_INTCTL_GIE | H.HDA_INTCTL_CIE | H.HDA_INTCTL_SIE_MASK)) >>> 0
      this.#updateIrq()
    })
    this.#field('INTSTS', H.HDA_REG_INTSTS, 4, () => this.#intsts(), null, { quiet: true })
    this.#field('WALLCLK', H.HDA_REG_WALLCLK, 4, () => this.#wallclk(), null)
    this.#field('WALLCLKA', H.HDA_REG_WALLCLK_ALIAS, 4, () => this.#wallclk(), null)
    this.#field('SSYNC', H.HDA_REG_SSYNC, 4, () => this.#ssync, (v, m) => {
      this.#ssync = merge(this.#ssync, v, m) & H.HDA_INTCTL_SIE_MASK
    })
    this.#field('IC', H.HDA_REG_IC, 4, () => this.#ic, (v, m) => {
      if ((this.#ics & H.HDA_ICS_ICB) !== 0) this.#guest(`IC written while ICS.ICB is set (the previous command ${hex8(this.#cmd)} is still in flight)`, { register: 'IC', value: v })
      this.#ic = merge(this.#ic, v, m)
    })
    this.#field('IR', H.HDA_REG_IR, 4, () => this.#ir, null)
    this.#field('ICS', H.HDA_REG_ICS, 2, () => this.#ics, (v, m) => this.#writeIcs(v & m))
    this.#field('DPLBASE', H.HDA_REG_DPLBASE, 4, () => this.#dplbase, (v, m) => {
      const next = merge(this.#dplbase, v, m)
      if ((next & 0x7e) !== 0) this.#guest(`DPLBASE ${hex(next)} is not 128-byte aligned (bits 6:1 read 0)`, { register: 'DPLBASE', value: next })
      this.#dmaBaseWrite('DPLBASE', next)
      this.#dplbase = (next & (H.HDA_DPLBASE_ADDR_MASK | H.HDA_DPLBASE_ENABLE)) >>> 0
    })
    this.#field('DPUBASE', H.HDA_REG_DPUBASE, 4, () => this.#dpubase, (v, m) => {
      const next = merge(this.#dpubase, v, m)
      this.#dmaBaseWrite('DPUBASE', next)
      this.#dpubase = next
    })
    for (const s of [this.input, this.output]) {
      const b = s.base
      const n = s.name
      this.#field(`${n}CTL`, b + H.HDA_REG_SD_CTL, 3, () => s.readCtl(), (v, m) => s.writeCtl(v, m))
      this.#field(`${n}STS`, b + H.HDA_REG_SD_STS, 1, () => s.readSts(), (v, m) => s.writeSts(v, m))
      this.#field(`${n}LPIB`, b + H.HDA_REG_SD_LPIB, 4, () => s.readLpib(), null)
      this.#field(`${n}CBL`, b + H.HDA_REG_SD_CBL, 4, () => s.readCbl(), (v, m) => s.writeCbl(v, m))
      this.#field(`${n}LVI`, b + H.HDA_REG_SD_LVI, 2, () => s.readLvi(), (v, m) => s.writeLvi(v, m))
      this.#field(`${n}FIFOW`, b + H.HDA_REG_SD_FIFOW, 2, () => s.readFifow(), (v, m) => s.writeFifow(v, m))
      this.#field(`${n}FIFOS`, b + H.HDA_REG_SD_FIFOS, 2, () => s.readFifos(), null)
      this.#field(`${n}FMT`, b + H.HDA_REG_SD_FMT, 2, () => s.readFmt(), (v, m) => s.writeFmt(v, m))
      this.#field(`${n}BDPL`, b + H.HDA_REG_SD_BDPL, 4, () => s.readBdpl(), (v, m) => s.writeBdpl(v, m))
      this.#field(`${n}BDPU`, b + H.HDA_REG_SD_BDPU, 4, () => s.readBdpu(), (v, m) => s.writeBdpu(v, m))
      this.#field(`${n}LPIBA`, H.HDA_REG_ALIAS + b + H.HDA_REG_SD_LPIB, 4, () => s.readLpib(), null)
    }
  }

  #dmaBaseWrite(reg: string, value: number): void {
    if (this.input.running || this.output.running) this.#guest(`${reg} written (${hex(value)}) while a stream runs: the position buffer moves under the DMA engines`, { register: reg, value })
  }

  /** A guest error (strict mode only: lenient mode is as quiet as QEMU without -d guest_errors). */
  #guest(message: string, details: Record<string, number | string | boolean>): void {
    if (this.strict) this.guestError(message, details)
  }

  /* ---- GCTL.CRST ---- */

  #readGctl(): number {
    return ((this.#crst === 'ready' ? H.HDA_GCTL_CRST : 0) | (this.#gctl & H.HDA_GCTL_UNSOL)) >>> 0
  }

  #writeGctl(v: number, m: number): void {
    const next = merge(this.#gctl, v, m) & (H.HDA_GCTL_CRST | H.HDA_GCTL_UNSOL)
    this.#gctl = next
    if ((m & H.HDA_GCTL_CRST) === 0) return
    if ((next & H.HDA_GCTL_CRST) === 0) {
      // QEMU's intel_hda_set_g_ctl resets at every write with CRST clear; strict mode when leaving the reset state.
      if (this.#crst !== 'reset' || !this.strict) this.#controllerReset()
      return
    }
    if (this.#crst !== 'reset') return
    this.#crst = 'exiting'
    const d = this.config.crstDelayNs
    if (d === 0) this.#crstDone()
    else this.#crstEv = this.schedule(d, this.#onCrstDone)
  }

  /** CRST reads 1: the wall clock starts; strict mode's codec announces itself codecWakeDelayNs later. */
  #crstDone(): void {
    this.#crstEv = null
    this.#crst = 'ready'
    if (this.strict) {
      this.#wallBase = this.machine!.clock.now
      const d = this.config.codecWakeDelayNs
      if (d === 0) this.#onCodecWake()
      else this.#wakeEv = this.schedule(d, this.#onCodecWake)
    }
  }

  /** GCTL.CRST = 0: everything but STATESTS and WAKEEN (resume well) to its reset value, the codec reset. */
  #controllerReset(): void {
    for (const ev of [this.#crstEv, this.#wakeEv, this.#cmdEv]) if (ev !== null) ev.cancelled = true
    this.#crstEv = this.#wakeEv = this.#cmdEv = null
    this.#crst = 'reset'
    this.#gctl = 0
    this.#intctl = this.#ssync = this.#ic = this.#ir = this.#ics = this.#dplbase = this.#dpubase = this.#cmd = 0
    this.input.hardReset()
    this.output.hardReset()
    this.codec.reset()
    // QEMU (intel_hda_reset) resets the wall clock and finds its codecs at once; strict mode waits for CRST.
    this.#codecPresent = !this.strict
    if (!this.strict) this.#statests |= H.HDA_STATESTS_SDIWAKE0
    this.#wallBase = this.machine?.clock.now ?? 0
    this.stats.resets++
    this.#updateIrq()
  }

  #powerOn(): void {
    this.#wakeen = this.#statests = 0
    this.#controllerReset()
  }

  #wallclk(): number {
    if (this.strict && this.#crst !== 'ready') return 0
    const now = this.machine?.clock.now ?? 0
    // >>> 0 wraps at 2^32 exactly (a non-negative integer below 2^53); % TWO32 would be an fmod() call.
    return Math.floor(((now - this.#wallBase) * H.HDA_WALLCLK_HZ) / 1e9) >>> 0
  }

  /* ---- interrupts ---- */

  #intsts(): number {
    let s = 0
    if (this.input.interruptPending) s |= 1 << this.input.index
    if (this.output.interruptPending) s |= 1 << this.output.index
    if ((this.#statests & this.#wakeen) !== 0) s |= H.HDA_INTSTS_CIS
    if ((s & this.#intctl & (H.HDA_INTCTL_SIE_MASK | H.HDA_INTCTL_CIE)) !== 0) s |= H.HDA_INTSTS_GIS
    return s >>> 0
  }

  /** The interrupt follows INTSTS.GIS && INTCTL.GIE: INTx as a level, an MSI-X message per rising edge. */
  #updateIrq(): void {
    if (this.machine === null) return
    const level = (this.#intsts() & H.HDA_INTSTS_GIS) !== 0 && (this.#intctl & H.HDA_INTCTL_GIE) !== 0
    if (level && !this.#irqLevel) {
      this.#irqLevel = true
      this.stats.interrupts++
      this.raiseIrq(0)
    } else if (!level && this.#irqLevel) {
      this.#irqLevel = false
      this.lowerIrq()
    }
  }

  /* ---- immediate command interface ---- */

  #writeIcs(bits: number): void {
    if ((bits & H.HDA_ICS_IRV) !== 0) this.#ics &= ~H.HDA_ICS_IRV
    if ((bits & H.HDA_ICS_ICB) === 0) return
    if ((this.#ics & H.HDA_ICS_ICB) !== 0) {
      this.#guest(`ICS.ICB set while a command is in flight (${hex8(this.#cmd)}): ignored; wait for ICB to read 0`, { register: 'ICS', value: bits })
      return
    }
    this.#cmd = this.#ic
    this.#ics |= H.HDA_ICS_ICB
    this.stats.commands++
    this.#cmdEv = this.schedule(this.config.codecLatencyNs, this.#onResponse)
  }

  /** The codec's answer lands in IR with IRV set; a missing codec never answers (ICB clears, IRV stays 0). */
  #response(): void {
    this.#cmdEv = null
    const cmd = this.#cmd
    const cad = cmd >>> H.HDA_CMD_CAD_SHIFT
    this.#ics &= ~H.HDA_ICS_ICB
    if (cad !== this.codec.address) {
      this.#guest(`command ${hex8(cmd)} addressed to codec ${cad}: there is no codec at that address (STATESTS): no response`, { command: cmd, codec: cad })
      return
    }
    if (!this.#codecPresent) {
      this.#guest(`command ${hex8(cmd)} sent before codec 0 reported itself in STATESTS (wait after CRST reads 1): no response`, { command: cmd, codec: cad })
      return
    }
    this.#ir = this.codec.execute(cmd, (message, details) => this.#guest(message, details)) >>> 0
    this.#ics = (this.#ics & ~0xf0) | H.HDA_ICS_IRV | (cad << H.HDA_ICS_IRRADD_SHIFT)
  }
}
