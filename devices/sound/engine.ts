/**
 * A stream's DMA engine: it moves the cyclic buffer described by the BDL over the link on the
 * virtual clock, keeps the link position (LPIB), writes the position buffer and raises BCIS at the
 * end of IOC entries. The stream descriptor (devices/sound/stream.ts) owns the registers and
 * starts and stops it. Datasheet: docs/devices/hda.md §5, §7, §8, §11, §12.
 *
 * Modelled on QEMU's hw/audio/intel-hda.c (intel_hda_parse_bdl, intel_hda_xfer: copy up to the
 * end of the entry or of the buffer, advance LPIB, BCIS on an IOC entry, wrap after the last
 * entry, the position buffer write) and hda-codec.c (hda_audio_output_timer: bytes = time × rate).
 * The engine works in bursts: a burst runs from the current position to the end of the BDL entry,
 * the end of the cyclic buffer (CBL) or burstBytes, whichever comes first, and lasts bytes /
 * (rate × frame bytes). An output burst is DMA-read when it starts (the FIFO fills ahead of the
 * link) and handed to the codec when it ends; an input burst takes the codec's samples when it
 * ends and DMA-writes them. In between, LPIB moves frame by frame with the clock. Differences
 * from QEMU, each in the datasheet: RUN resumes where the stream stopped (QEMU starts over), strict
 * mode validates the BDL at RUN and re-reads each entry when it gets to it, FIFOE/DESE are set,
 * the BCIS stall is a quirk (on in lenient mode), as are early IRQs, coarse LPIB and a bad
 * position buffer.
 */

import type { HostileField } from '../framework/hostile.js'
import type { AudioSink, AudioSource } from './audio-port.js'
import { audioSilenceByte } from './audio-port.js'
import { HdaBdl, type BdlChange } from './bdl.js'
import type { HdaRouting } from './codec.js'
import { decodeHdaFormat, describeHdaFormat, type HdaFormat } from './format.js'
import * as H from './hda-regs.js'
import type { HdaConfig } from './options.js'
import type { FaultKind, FaultRule } from '../framework/faults.js'
import type { ClockEvent, VirtualClock } from '../machine/clock.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'

/** Running counts (the controller's stats object carries these fields). */
export interface HdaStreamStats {
  /** Output bytes that crossed the link (whether a converter took them or not). */
  bytesPlayed: number
  /** Input bytes written to memory. */
  bytesRecorded: number
  /** Bytes played or recorded as silence: no converter took the stream, or an error-status fault. */
  silentBytes: number
  /** IOC completions (BCIS set) of the output and of the input stream. */
  periodsPlayed: number
  periodsRecorded: number
  /** DMA bursts. */
  bursts: number
  /** FIFOE and DESE set (DMA failures, error-status faults, refused starts, BDL fetch failures). */
  fifoErrors: number
  descriptorErrors: number
  /** Failed DMA transactions (BDL reads, data bursts, position-buffer writes). */
  dmaErrors: number
  /** BDL entries found changed while the stream ran (strict mode). */
  bdlChanges: number
  /** Bursts held back by an unacknowledged BCIS (stallOnBcis). */
  bcisStalls: number
  /** SRST assertions. */
  streamResets: number
}

/** What a stream needs from the controller. */
export interface HdaStreamHost {
  readonly config: HdaConfig
  clock(): VirtualClock
  dmaRead(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
  dmaWrite(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
  fault(kind: FaultKind): FaultRule | null
  /** A strict-mode guest error (lenient mode drops it). */
  guest(message: string, details: Record<string, number | string | boolean>): void
  /** SDnSTS or the SDnCTL interrupt enables changed: INTSTS and the interrupt follow. */
  statusChanged(): void
  /** The stream's position-buffer slot, or -1 when DPLBASE.ENABLE is clear. */
  positionSlot(index: number): number
  /** Malicious-device mode: may rewrite a position-buffer entry before it is written (PciFunction.hostileRecord). */
  hostileRecord(bus: number, record: Uint8Array, fields: readonly HostileField[]): void
  routing(output: boolean, tag: number, fmt: number): HdaRouting
  converterFormat(output: boolean): number
  sink(): AudioSink | null
  source(): AudioSource | null
}

/** The descriptor side of an engine: its status bits and its stream tag. */
export interface HdaStatusPort {
  /** Sets SDnSTS bits (BCIS, FIFOE, DESE); INTSTS and the interrupt follow. */
  raise(bits: number): void
  /** Whether SDnSTS.BCIS is set. */
  bcis(): boolean
  /** SDnCTL's stream tag. */
  tag(): number
  /** Whether SDnCTL.IOCE is set. */
  ioce(): boolean
}

const hex = (v: number): string => `0x${v.toString(16)}`
const REPORTED_TAG = 1
const REPORTED_FMT = 2

/**
 * The position-buffer entry a hostile controller rewrites: the stream's position (LPIB's copy). Not
 * a double-fetch target: it is a live position, read afresh by each look (position check, pointer).
 */
export const HDA_POSBUF_HOSTILE_FIELDS: readonly HostileField[] = [{ name: 'DMA position', off: 0, size: 4, kind: 'index' }]

export class HdaEngine {
  readonly output: boolean
  readonly index: number
  readonly name: string
  readonly #host: HdaStreamHost
  readonly #port: HdaStatusPort
  readonly #cfg: HdaConfig
  readonly #stats: HdaStreamStats
  #running = false
  #halted = ''
  #stalled = false
  #format: HdaFormat | null = null
  #runCbl = 0
  #runLvi = 0
  readonly #bdl = new HdaBdl()
  /* The position: entry, offset in it, LPIB, bytes since reset, laps */
  #entry = 0
  #entryOff = 0
  #curAddr = 0
  #curLen = 0
  #curIoc = false
  #lpib = 0
  #total = 0
  #laps = 0
  /** Burst times are anchorTime + (bytes − anchorTotal) / byte rate: no drift. */
  #anchorTime = 0
  #anchorTotal = 0
  #iocFiredAt = -1
  /* The burst in flight */
  #bActive = false
  #bStartTotal = 0
  #bStartLpib = 0
  #bLen = 0
  #bAddr = 0
  #bStartTime = 0
  #bLost = false
  #ev: ClockEvent | null = null
  #iocEv: ClockEvent | null = null
  readonly #delayed: ClockEvent[] = []
  #reported = 0
  readonly #entryReported = new Uint8Array(H.HDA_BDL_MAX_ENTRIES)
  readonly #buf: Uint8Array
  /** The last view of #buf handed out (bursts usually have one length: no view per burst). */
  #view: Uint8Array = new Uint8Array(0)
  readonly #pos = new Uint8Array(4)
  readonly #posView = new DataView(this.#pos.buffer)
  readonly #read = (bus: number, b: Uint8Array, off: number, len: number): MemTxResult => this.#host.dmaRead(bus, b, off, len)
  /* Handlers bound once: no closure per burst. */
  readonly #onStart = (): void => {
    this.#ev = null
    this.#startBurst()
  }
  readonly #onEnd = (): void => {
    this.#ev = null
    if (this.#finishBurst(this.#bLen)) this.#startBurst()
  }
  readonly #onIoc = (): void => {
    this.#iocEv = null
    this.#iocFiredAt = this.#bStartTotal + this.#bLen
    this.#complete()
  }
  readonly #onDelayedBcis = (): void => {
    this.#delayed.shift()
    this.#port.raise(H.HDA_SD_STS_BCIS)
  }

  constructor(host: HdaStreamHost, port: HdaStatusPort, index: number, output: boolean, name: string, stats: HdaStreamStats) {
    this.#host = host
    this.#port = port
    this.#cfg = host.config
    this.#stats = stats
    this.index = index
    this.output = output
    this.name = name
    this.#buf = new Uint8Array(this.#cfg.burstBytes)
  }

  get running(): boolean {
    return this.#running
  }

  /** Why the engine stopped with FIFOE/DESE ('' if it did not). */
  get halted(): string {
    return this.#halted
  }

  /** Held back by an unacknowledged BCIS (stallOnBcis). */
  get stalled(): boolean {
    return this.#stalled
  }

  /** SDnSTS.FIFORDY: running and moving. */
  get fifoReady(): boolean {
    return this.#running && this.#halted === '' && !this.#stalled
  }

  /** Whole cyclic-buffer laps completed since the last reset. */
  get laps(): number {
    return this.#laps
  }

  /** SDnLPIB as read now. */
  lpib(): number {
    const g = this.#cfg.lpibGranularity
    if (!this.#bActive || g === 'burst') return this.#quantize(this.#bActive ? this.#bStartLpib : this.#lpib)
    return this.#quantize(this.#bStartLpib + this.#doneNow())
  }

  /** BCIS was cleared: a stream stalled on it (stallOnBcis) goes on. */
  bcisCleared(): void {
    if (!this.#stalled || !this.#running || this.#halted !== '') return
    this.#stalled = false
    this.#anchor()
    this.#startBurst()
  }

  /** Stream or controller reset: stopped, position 0, the BDL copy and pending completions dropped. */
  reset(): void {
    this.#cancelEvents()
    this.#running = false
    this.#halted = ''
    this.#stalled = false
    this.#bActive = false
    this.#format = null
    this.#bdl.clear()
    this.#entry = this.#entryOff = this.#lpib = this.#total = this.#laps = 0
    this.#curAddr = this.#curLen = 0
    this.#curIoc = false
    this.#iocFiredAt = -1
  }

  /** The engine's lines of dumpStreams(): its state and the BDL copy it works from. */
  describe(out: string[], state: string): void {
    const st = state !== '' ? state : this.#halted !== '' ? `halted: ${this.#halted}` : this.#stalled ? 'stalled: waiting for BCIS to be cleared' : this.#running ? 'running' : 'stopped'
    const burst = this.#bActive ? `; burst of ${this.#bLen} bytes at ${hex(this.#bAddr)} since ${this.#bStartTime} ns` : ''
    out.push(`  ${st}; entry ${this.#entry} +${hex(this.#entryOff)}, lap ${this.#laps}, ${this.#total} bytes since reset${burst}`)
    if (this.#bdl.count > 0) {
      out.push(`  BDL as read at RUN${this.#cfg.strict ? ' (and re-read at each entry)' : ''}: ${this.#bdl.count} entries at ${hex(this.#bdl.base)}, ${this.#bdl.total()} bytes`)
      this.#bdl.describe(out, this.#entry)
    }
  }

  /**
   * RUN 0 → 1 with the descriptor's FMT, CBL, LVI and BDL address: read and check the BDL, then
   * start (strict: resume where the stream stopped, unless it was reprogrammed).
   */
  start(fmtWord: number, cbl: number, lvi: number, base: number): void {
    const strict = this.#cfg.strict
    const sd = this.name
    this.#running = true
    this.#halted = ''
    this.#stalled = false
    this.#reported = 0
    this.#entryReported.fill(0)
    const fmt = decodeHdaFormat(fmtWord)
    if (typeof fmt === 'string') {
      this.#refuse(H.HDA_SD_STS_DESE, `RUN with ${sd}FMT ${hex(fmtWord)}: ${fmt}`)
      return
    }
    if (base === 0) {
      this.#refuse(H.HDA_SD_STS_DESE, `RUN with no BDL: ${sd}BDPL and ${sd}BDPU are 0`)
      return
    }
    const r = this.#bdl.load(base, lvi + 1, this.#read)
    if (r !== MEMTX_OK) {
      this.#stats.dmaErrors++
      this.#refuse(H.HDA_SD_STS_DESE, `BDL read of ${lvi + 1} entries at ${hex(base)} failed (MemTxResult ${r})`, false)
      return
    }
    if (strict) {
      const problems = this.#bdl.problems(sd, cbl, lvi, fmt.frameBytes)
      if (problems.length > 0) {
        for (const p of problems) this.#host.guest(`${sd}: RUN refused: ${p}`, { stream: sd, register: `${sd}CTL`, cbl: cbl, lvi, sum: this.#bdl.total() })
        this.#refuse(H.HDA_SD_STS_DESE, problems.join('; '), false)
        return
      }
    } else if (this.#bdl.total() === 0) {
      this.#refuse(H.HDA_SD_STS_DESE, 'every BDL entry has length 0', false)
      return
    }
    if (strict && this.#port.ioce() && !this.#anyIoc()) {
      // Legal for the hardware (it runs, and never sets BCIS), never what a driver that enables the interrupt means.
      this.#host.guest(`${sd}: RUN with IOCE set but no BDL entry has IOC: the stream never interrupts`, { stream: sd, register: `${sd}CTL`, lvi })
    }
    const changed = this.#format === null || this.#format.fmt !== fmt.fmt || this.#runCbl !== cbl || this.#runLvi !== lvi
    this.#format = fmt
    this.#runCbl = cbl
    this.#runLvi = lvi
    if (!strict || changed || this.#entry > lvi) {
      // QEMU's intel_hda_parse_bdl starts over at every RUN; strict mode resumes unless the stream was reprogrammed.
      this.#entry = this.#entryOff = this.#lpib = 0
    }
    if (this.#entryOff > 0) {
      this.#setCurrent(this.#entry)
      if (this.#entryOff >= this.#curLen) this.#entry = this.#entryOff = this.#lpib = 0 // the entry shrank while stopped
    }
    this.#anchor()
    const clock = this.#host.clock()
    this.#ev = clock.schedule(clock.now, this.#onStart)
  }

  /** RUN 1 → 0: the link stops at the current frame; what crossed it is delivered, the rest of the burst dropped. */
  stop(): void {
    const active = this.#bActive
    this.#cancelEvents(false)
    if (active && this.#halted === '') this.#finishBurst(this.#doneNow())
    this.#bActive = false
    this.#running = false
    this.#halted = ''
    this.#stalled = false
  }

  /** Whether any entry of the BDL read at RUN (0..LVI) has IOC. */
  #anyIoc(): boolean {
    for (let i = 0; i < this.#bdl.count; i++) if (this.#bdl.ioc(i)) return true
    return false
  }

  /** A start that cannot proceed: the status bit, a report (unless already made), the engine halted. */
  #refuse(bit: number, why: string, report = true): void {
    if (report) this.#host.guest(`${this.name}: RUN refused: ${why}`, { stream: this.name, register: `${this.name}CTL` })
    this.#halt(bit, why)
  }

  #halt(bit: number, why: string): void {
    this.#cancelEvents(false)
    this.#bActive = false
    this.#halted = why
    if (bit === H.HDA_SD_STS_FIFOE) this.#stats.fifoErrors++
    else this.#stats.descriptorErrors++
    this.#port.raise(bit)
  }

  #anchor(): void {
    this.#anchorTime = this.#host.clock().now
    this.#anchorTotal = this.#total
  }

  /** Virtual time at which `total` bytes will have crossed the link. */
  #timeAt(total: number): number {
    return this.#anchorTime + Math.round(((total - this.#anchorTotal) * 1e9) / this.#format!.byteRate)
  }

  /** Bytes of the burst in flight that have crossed the link by now, whole frames only. */
  #doneNow(): number {
    const f = this.#format!
    const elapsed = this.#host.clock().now - this.#anchorTime
    let abs = this.#anchorTotal + Math.floor((elapsed * f.byteRate) / 1e9 + 1e-6)
    abs -= abs % f.frameBytes
    return Math.min(Math.max(abs - this.#bStartTotal, 0), this.#bLen)
  }

  #quantize(lpib: number): number {
    const g = this.#cfg.lpibGranularity
    return typeof g === 'number' ? lpib - (lpib % g) : lpib
  }

  #setCurrent(i: number): void {
    this.#curAddr = this.#bdl.addr[i]!
    this.#curLen = this.#bdl.len[i]!
    this.#curIoc = this.#bdl.ioc(i)
  }

  /** Moves to the entry the engine is on (strict: reads it again); false when the engine halted. */
  #fetchEntry(): boolean {
    const strict = this.#cfg.strict
    for (let tries = 0; tries <= this.#runLvi; tries++) {
      const i = this.#entry
      if (strict) {
        const c = this.#bdl.refetch(i, this.#read)
        if (typeof c === 'number') {
          this.#stats.dmaErrors++
          this.#halt(H.HDA_SD_STS_DESE, `BDL entry ${i} read at ${hex(this.#bdl.base + i * H.HDA_BDLE_SIZE)} failed (MemTxResult ${c})`)
          return false
        }
        if (c !== null) this.#bdlChanged(c)
      }
      this.#setCurrent(i)
      if (this.#curLen > 0) return true
      if (strict) {
        this.#host.guest(`${this.name}: BDL entry ${i} has length 0`, { stream: this.name, entry: i })
        this.#halt(H.HDA_SD_STS_DESE, `BDL entry ${i} has length 0`)
        return false
      }
      this.#entry = i === this.#runLvi ? 0 : i + 1 // lenient: skipped
    }
    this.#halt(H.HDA_SD_STS_DESE, 'every BDL entry has length 0')
    return false
  }

  #bdlChanged(c: BdlChange): void {
    this.#stats.bdlChanges++
    if (this.#entryReported[c.index] !== 0) return
    this.#entryReported[c.index] = 1
    const f = (e: BdlChange['was']): string => `address ${hex(e.addr)} length ${hex(e.len)}${e.ioc ? ' IOC' : ''}`
    this.#host.guest(`${this.name}: BDL entry ${c.index} changed while RUN = 1 (${f(c.was)} → ${f(c.now)}): the BDL must not be modified while the stream runs; the controller uses what it reads`, {
      stream: this.name,
      entry: c.index,
      address: c.now.addr,
      length: c.now.len,
    })
  }

  #startBurst(): void {
    if (!this.#running || this.#halted !== '') return
    if (this.#cfg.stallOnBcis && this.#port.bcis()) {
      this.#stalled = true
      this.#stats.bcisStalls++
      return
    }
    if (this.#entryOff === 0 && !this.#fetchEntry()) return
    let n = Math.min(this.#curLen - this.#entryOff, this.#cfg.burstBytes)
    if (this.#runCbl > 0) n = Math.min(n, this.#runCbl - this.#lpib)
    const clock = this.#host.clock()
    const now = clock.now
    this.#bStartTotal = this.#total
    this.#bStartLpib = this.#lpib
    this.#bLen = n
    this.#bAddr = this.#curAddr + this.#entryOff
    this.#bStartTime = now
    this.#bLost = false
    this.#stats.bursts++
    const f = this.#host.fault('error-status')
    if (f !== null) {
      const bits = (f.status ?? H.HDA_SD_STS_FIFOE) & (H.HDA_SD_STS_FIFOE | H.HDA_SD_STS_DESE)
      this.#bLost = true
      if ((bits & H.HDA_SD_STS_FIFOE) !== 0) this.#stats.fifoErrors++
      if ((bits & H.HDA_SD_STS_DESE) !== 0) this.#stats.descriptorErrors++
      this.#port.raise(bits)
    }
    if (this.output) {
      const r = this.#host.dmaRead(this.#bAddr, this.#buf, 0, n)
      if (r !== MEMTX_OK) {
        this.#stats.dmaErrors++
        this.#halt(H.HDA_SD_STS_FIFOE, `data read of ${n} bytes at ${hex(this.#bAddr)} failed (MemTxResult ${r})`)
        return
      }
    }
    this.#bActive = true
    const end = this.#timeAt(this.#total + n)
    this.#ev = clock.schedule(end, this.#onEnd)
    const early = this.#cfg.earlyIrqNs
    const boundary = this.#total + n
    if (early > 0 && this.#curIoc && this.#entryOff + n === this.#curLen && this.#iocFiredAt !== boundary) {
      this.#iocEv = clock.schedule(Math.max(now, end - early), this.#onIoc)
    }
  }

  /**
   * The burst in flight ends after `done` bytes (all of them, or fewer when RUN was cleared):
   * output hands them to the codec, input writes them; the position moves, wraps, goes to the
   * position buffer, and an IOC entry's end sets BCIS. False when a DMA failure halted the engine.
   */
  #finishBurst(done: number): boolean {
    this.#bActive = false
    if (this.#iocEv !== null && done < this.#bLen) {
      this.#iocEv.cancelled = true
      this.#iocEv = null
    }
    if (done > 0 && !this.#transfer(done)) return false
    this.#total += done
    this.#lpib += done
    this.#entryOff += done
    let ioc = false
    if (this.#entryOff >= this.#curLen) {
      ioc = this.#curIoc && this.#iocFiredAt !== this.#total
      if (ioc) this.#iocFiredAt = this.#total
      this.#entryOff = 0
      if (this.#entry >= this.#runLvi) {
        this.#entry = 0
        this.#lpib = 0
        this.#laps++
      } else this.#entry++
    }
    if (this.#runCbl > 0 && this.#lpib >= this.#runCbl) {
      this.#lpib = 0 // CBL reached before the BDL wrapped (a BDL longer than CBL: lenient mode)
      this.#laps++
    }
    this.#writePosition()
    if (ioc) this.#complete()
    return this.#halted === ''
  }

  /** Moves `done` bytes of the burst between the codec and memory; false when the DMA failed. */
  #transfer(done: number): boolean {
    const host = this.#host
    const fmt = this.#format!
    if (this.#view.length !== done) this.#view = this.#buf.subarray(0, done)
    const view = this.#view
    const routed = !this.#bLost && this.#routed(fmt)
    if (!routed) this.#stats.silentBytes += done
    if (this.output) {
      this.#stats.bytesPlayed += done
      const sink = host.sink()
      if (sink !== null) {
        if (!routed) view.fill(audioSilenceByte(fmt))
        sink.write(view, fmt, this.#bStartTime)
      }
      return true
    }
    const source = host.source()
    if (routed && source !== null) source.read(view, fmt, this.#bStartTime)
    else view.fill(audioSilenceByte(fmt))
    const r = host.dmaWrite(this.#bAddr, view, 0, done)
    if (r !== MEMTX_OK) {
      this.#stats.dmaErrors++
      this.#halt(H.HDA_SD_STS_FIFOE, `data write of ${done} bytes at ${hex(this.#bAddr)} failed (MemTxResult ${r})`)
      return false
    }
    this.#stats.bytesRecorded += done
    return true
  }

  /** Whether the codec's converter takes this stream; strict mode says why not, once per RUN. */
  #routed(fmt: HdaFormat): boolean {
    const why = this.#host.routing(this.output, this.#port.tag(), fmt.fmt)
    if (why === 'ok') return true
    const conv = this.output ? `DAC (NID ${H.HDA_NID_DAC})` : `ADC (NID ${H.HDA_NID_ADC})`
    if (why === 'tag' && (this.#reported & REPORTED_TAG) === 0) {
      this.#reported |= REPORTED_TAG
      this.#host.guest(`${this.name}: stream tag ${this.#port.tag()} reaches no converter (the ${conv} is set to another stream: SET_CONV, verb 706h): the stream ${this.output ? 'plays' : 'records'} silence`, { stream: this.name, tag: this.#port.tag() })
    } else if (why === 'format' && (this.#reported & REPORTED_FMT) === 0) {
      this.#reported |= REPORTED_FMT
      const cf = this.#host.converterFormat(this.output)
      this.#host.guest(`${this.name}: FMT ${hex(fmt.fmt)} (${describeHdaFormat(fmt.fmt)}) differs from the ${conv}'s format ${hex(cf)} (${describeHdaFormat(cf)}; SET_STREAM_FORMAT, verb 2h): the stream ${this.output ? 'plays' : 'records'} silence`, { stream: this.name, fmt: fmt.fmt, converterFormat: cf })
    }
    return false
  }

  #writePosition(): void {
    const mode = this.#cfg.positionBuffer
    if (mode === 'none') return
    const slot = this.#host.positionSlot(this.index)
    if (slot < 0) return
    this.#posView.setUint32(0, mode === 'lagging' ? this.#bStartLpib : this.#lpib, true)
    this.#host.hostileRecord(slot, this.#pos, HDA_POSBUF_HOSTILE_FIELDS)
    if (this.#host.dmaWrite(slot, this.#pos, 0, 4) !== MEMTX_OK) this.#stats.dmaErrors++
  }

  /** An IOC entry completed: BCIS now, or later under a delay-completion fault. */
  #complete(): void {
    if (this.output) this.#stats.periodsPlayed++
    else this.#stats.periodsRecorded++
    const f = this.#host.fault('delay-completion')
    if (f === null) {
      this.#port.raise(H.HDA_SD_STS_BCIS)
      return
    }
    const clock = this.#host.clock()
    this.#delayed.push(clock.schedule(clock.now + (f.delayNs ?? H.HDA_FAULT_DELAY_NS), this.#onDelayedBcis))
  }

  /** The engine's events, and (reset only) the BCIS a delay-completion fault holds back. */
  #cancelEvents(delayedToo = true): void {
    for (const ev of [this.#ev, this.#iocEv]) if (ev !== null) ev.cancelled = true
    this.#ev = this.#iocEv = null
    if (!delayedToo) return
    for (const ev of this.#delayed) ev.cancelled = true
    this.#delayed.length = 0
  }
}
