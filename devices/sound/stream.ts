/**
 * One stream descriptor: SDnCTL with the SRST handshake and RUN, SDnSTS, LPIB, CBL, LVI, FIFOW,
 * FIFOS, FMT and the BDL pointer. RUN starts and stops the stream's DMA engine
 * (devices/sound/engine.ts). Datasheet: docs/devices/hda.md §4.
 *
 * Modelled on the High Definition Audio Specification 1.0a §3.3.35–§3.3.45 (the stream
 * descriptor registers: SRST "reports a 1 … after the stream hardware has completed sequencing
 * into the reset state", CBL and LVI "should only be modified when the RUN bit is 0") and QEMU's
 * hw/audio/intel-hda.c (intel_hda_set_st_ctl; the SDnSTS byte as bits 31:24 of the SDnCTL word,
 * write-1-to-clear). Differences, each in the datasheet: SRST reads back 1 after srstDelayNs and
 * 0 after it is cleared (QEMU clears it at once, so it never reads 1); while the stream is in
 * reset its registers ignore writes; SIS is gated by the SDnCTL interrupt enables (QEMU: BCIS
 * alone); strict mode reports writes the specification forbids.
 */

import { HdaEngine, type HdaStreamHost, type HdaStreamStats } from './engine.js'
import { describeHdaFormat } from './format.js'
import * as H from './hda-regs.js'
import type { ClockEvent } from '../machine/clock.js'

export type { HdaStreamHost, HdaStreamStats } from './engine.js'

type SrstState = 'idle' | 'entering' | 'reset' | 'leaving'
const hex = (v: number): string => `0x${v.toString(16)}`

export class HdaStream {
  readonly index: number
  readonly output: boolean
  /** 'ISD0' or 'OSD0'. */
  readonly name: string
  readonly base: number
  readonly #host: HdaStreamHost
  readonly #stats: HdaStreamStats
  readonly #engine: HdaEngine
  /* Registers */
  #ctl = 0
  #sts = 0
  #cbl = 0
  #lvi = 0
  #fifow = 0
  #fmt = 0
  #bdpl = 0
  #bdpu = 0
  #srst: SrstState = 'idle'
  #srstEv: ClockEvent | null = null

  constructor(host: HdaStreamHost, index: number, output: boolean, stats: HdaStreamStats) {
    this.#host = host
    this.#stats = stats
    this.index = index
    this.output = output
    this.name = output ? 'OSD0' : 'ISD0'
    this.base = output ? H.HDA_REG_OSD0 : H.HDA_REG_ISD0
    this.#engine = new HdaEngine(
      host,
      {
        raise: (bits) => {
          this.#sts |= bits
          host.statusChanged()
        },
        bcis: () => (this.#sts & H.HDA_SD_STS_BCIS) !== 0,
        tag: () => this.tag,
        ioce: () => (this.#ctl & H.HDA_SD_CTL_IOCE) !== 0,
      },
      index,
      output,
      this.name,
      stats,
    )
  }

  /* ---- state for the controller and the harness ---- */

  get running(): boolean {
    return this.#engine.running
  }

  /** Why the engine stopped with FIFOE/DESE ('' if it did not). */
  get halted(): string {
    return this.#engine.halted
  }

  /** Held back by an unacknowledged BCIS (stallOnBcis). */
  get stalled(): boolean {
    return this.#engine.stalled
  }

  /** Whole cyclic-buffer laps completed since the last reset. */
  get laps(): number {
    return this.#engine.laps
  }

  get tag(): number {
    return (this.#ctl & H.HDA_SD_CTL_STRM_MASK) >>> H.HDA_SD_CTL_STRM_SHIFT
  }

  /** INTSTS.SIS for this stream: a status bit whose SDnCTL enable is set. */
  get interruptPending(): boolean {
    const s = this.#sts
    const c = this.#ctl
    return ((s & H.HDA_SD_STS_BCIS) !== 0 && (c & H.HDA_SD_CTL_IOCE) !== 0) || ((s & H.HDA_SD_STS_FIFOE) !== 0 && (c & H.HDA_SD_CTL_FEIE) !== 0) || ((s & H.HDA_SD_STS_DESE) !== 0 && (c & H.HDA_SD_CTL_DEIE) !== 0)
  }

  /* ---- registers ---- */

  /** SDnCTL as read: SRST reads 1 once the stream is in reset and until it has left it. */
  readCtl(): number {
    const srst = this.#srst === 'reset' || this.#srst === 'leaving' ? H.HDA_SD_CTL_SRST : 0
    return (this.#ctl & ~H.HDA_SD_CTL_SRST) | srst
  }

  readSts(): number {
    return this.#sts | (this.#engine.fifoReady ? H.HDA_SD_STS_FIFORDY : 0)
  }

  readLpib(): number {
    return this.#engine.lpib()
  }

  readCbl(): number {
    return this.#cbl
  }

  readLvi(): number {
    return this.#lvi
  }

  readFifow(): number {
    return this.#fifow
  }

  readFifos(): number {
    return this.#host.config.burstBytes - 1
  }

  readFmt(): number {
    return this.#fmt
  }

  readBdpl(): number {
    return this.#bdpl
  }

  readBdpu(): number {
    return this.#bdpu
  }

  /** SDnCTL write of the bytes in `mask` (bits 23:0). */
  writeCtl(value: number, mask: number): void {
    const old = this.#ctl
    const next = ((old & ~mask) | (value & mask)) & H.HDA_SD_CTL_WRITABLE
    const srstWas = (old & H.HDA_SD_CTL_SRST) !== 0
    const srstNow = (next & H.HDA_SD_CTL_SRST) !== 0
    const others = next & ~H.HDA_SD_CTL_SRST
    if (srstNow && !srstWas) {
      if ((old & H.HDA_SD_CTL_RUN) !== 0) this.#guest(`SRST set while RUN = 1: clear RUN and read it back as 0 first`, 'CTL', next)
      this.#enterReset()
      return
    }
    if (!srstNow && srstWas) {
      if (this.#srst === 'entering') this.#guest(`SRST cleared before the stream reported reset (it had not read back as 1 yet)`, 'CTL', next)
      if (others !== 0) this.#guest(`SD_CTL ${hex(next)} written as SRST is cleared: the other bits are ignored while the stream is in reset`, 'CTL', next)
      this.#ctl = 0
      this.#leaveReset()
      return
    }
    if (this.#srst !== 'idle') {
      if (others !== (old & ~H.HDA_SD_CTL_SRST)) {
        this.#guest(`SD_CTL ${hex(next)} written while the stream is in reset (SRST ${this.#srst === 'leaving' ? 'still reads 1' : 'is set'}): ignored`, 'CTL', next)
      }
      return
    }
    this.#ctl = next
    const runWas = (old & H.HDA_SD_CTL_RUN) !== 0
    const runNow = (next & H.HDA_SD_CTL_RUN) !== 0
    if (runNow && !runWas) this.#engine.start(this.#fmt, this.#cbl, this.#lvi, this.#bdpu * 0x1_0000_0000 + this.#bdpl)
    else if (!runNow && runWas) this.#engine.stop()
    if (((old ^ next) & H.HDA_SD_CTL_INT_MASK) !== 0) this.#host.statusChanged()
  }

  /** SDnSTS write: 1s clear BCIS, FIFOE, DESE. */
  writeSts(value: number, mask: number): void {
    const clear = value & mask & H.HDA_SD_STS_W1C
    if ((this.#sts & clear) === 0) return
    this.#sts &= ~clear
    this.#host.statusChanged()
    if ((this.#sts & H.HDA_SD_STS_BCIS) === 0) this.#engine.bcisCleared()
  }

  writeCbl(value: number, mask: number): void {
    if (this.#canWrite('CBL', value)) this.#cbl = ((this.#cbl & ~mask) | (value & mask)) >>> 0
  }

  writeLvi(value: number, mask: number): void {
    if (!this.#canWrite('LVI', value)) return
    const v = ((this.#lvi & ~mask) | (value & mask)) & 0xffff
    if ((v & ~H.HDA_SD_LVI_MASK) !== 0) this.#guest(`LVI ${hex(v)}: bits 15:8 are reserved (at most 256 entries, LVI ≤ 0xff)`, 'LVI', v)
    this.#lvi = v & H.HDA_SD_LVI_MASK
  }

  writeFifow(value: number, mask: number): void {
    if (this.#canWrite('FIFOW', value)) this.#fifow = ((this.#fifow & ~mask) | (value & mask)) & 0x7
  }

  writeFmt(value: number, mask: number): void {
    if (this.#canWrite('FMT', value)) this.#fmt = ((this.#fmt & ~mask) | (value & mask)) & H.HDA_FMT_MASK
  }

  writeBdpl(value: number, mask: number): void {
    if (!this.#canWrite('BDPL', value)) return
    const v = ((this.#bdpl & ~mask) | (value & mask)) >>> 0
    if ((v & ~H.HDA_SD_BDPL_MASK) !== 0) this.#guest(`BDPL ${hex(v)} is not 128-byte aligned (bits 6:0 read 0)`, 'BDPL', v)
    this.#bdpl = (v & H.HDA_SD_BDPL_MASK) >>> 0
  }

  writeBdpu(value: number, mask: number): void {
    if (this.#canWrite('BDPU', value)) this.#bdpu = ((this.#bdpu & ~mask) | (value & mask)) >>> 0
  }

  /** Controller reset (CRST = 0, function-level reset): the stream as at power-on. */
  hardReset(): void {
    if (this.#srstEv !== null) this.#srstEv.cancelled = true
    this.#srstEv = null
    this.#srst = 'idle'
    this.#resetState()
    this.#ctl = 0
  }

  /** The stream for dumpStreams(). */
  describe(out: string[]): void {
    const ctl = this.readCtl()
    const sts = this.readSts()
    const bits = (v: number, names: readonly [number, string][]): string => names.filter(([b]) => (v & b) !== 0).map(([, n]) => n).join(' ')
    const ctlBits = bits(ctl, [[H.HDA_SD_CTL_SRST, 'SRST'], [H.HDA_SD_CTL_RUN, 'RUN'], [H.HDA_SD_CTL_IOCE, 'IOCE'], [H.HDA_SD_CTL_FEIE, 'FEIE'], [H.HDA_SD_CTL_DEIE, 'DEIE']])
    const stsBits = bits(sts, [[H.HDA_SD_STS_BCIS, 'BCIS'], [H.HDA_SD_STS_FIFOE, 'FIFOE'], [H.HDA_SD_STS_DESE, 'DESE'], [H.HDA_SD_STS_FIFORDY, 'FIFORDY']])
    const bdp = (this.#bdpu * 0x1_0000_0000 + this.#bdpl).toString(16).padStart(16, '0')
    out.push(
      `${this.name} (stream index ${this.index}, ${this.output ? 'output' : 'input'}): CTL ${hex(ctl)} (${[ctlBits, `tag ${this.tag}`].filter((s) => s !== '').join(' ')}) STS ${hex(sts)}${stsBits === '' ? '' : ` (${stsBits})`} ` +
        `LPIB ${hex(this.readLpib())} CBL ${hex(this.#cbl)} LVI ${this.#lvi} FMT ${hex(this.#fmt)} (${describeHdaFormat(this.#fmt)}) BDL ${bdp}`,
    )
    this.#engine.describe(out, this.#srst !== 'idle' ? `in reset (${this.#srst})` : '')
  }

  /* ---- SRST ---- */

  #enterReset(): void {
    this.#stats.streamResets++
    this.#resetState()
    this.#ctl = H.HDA_SD_CTL_SRST
    this.#srst = 'entering'
    this.#srstStep('reset')
    this.#host.statusChanged()
  }

  #leaveReset(): void {
    this.#srst = 'leaving'
    this.#srstStep('idle')
  }

  #srstStep(to: SrstState): void {
    if (this.#srstEv !== null) this.#srstEv.cancelled = true
    this.#srstEv = null
    const delay = this.#host.config.srstDelayNs
    if (delay === 0) {
      this.#srst = to
      return
    }
    const clock = this.#host.clock()
    this.#srstEv = clock.schedule(clock.now + delay, () => {
      this.#srstEv = null
      this.#srst = to
    })
  }

  /** Registers and engine as after a stream reset (SRST keeps its own state). */
  #resetState(): void {
    this.#engine.reset()
    this.#sts = 0
    this.#cbl = this.#lvi = this.#fmt = this.#bdpl = this.#bdpu = 0
    this.#fifow = 0
  }

  #canWrite(reg: string, value: number): boolean {
    if (this.#srst !== 'idle') {
      this.#guest(`write of ${hex(value)} to ${this.name}${reg} while the stream is in reset (SRST ${this.#srst === 'leaving' ? 'still reads 1' : 'is set'}): ignored`, reg, value)
      return false
    }
    if (this.#engine.running) this.#guest(`write of ${hex(value)} to ${this.name}${reg} while RUN = 1: the running stream keeps the value it took at RUN`, reg, value)
    return true
  }

  #guest(message: string, reg: string, value: number): void {
    this.#host.guest(`${this.name}: ${message}`, { stream: this.name, register: `${this.name}${reg}`, value })
  }
}
