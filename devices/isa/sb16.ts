/**
 * A Sound Blaster 16-like DSP, playback only and small: DSP reset, the DSP commands that set an
 * output rate and start 8-bit single-cycle or auto-init DMA output, an interrupt at the end of
 * each DMA block, acknowledged by reading the DSP's read-buffer status port. Datasheet: the SB16
 * section of docs/devices/i8237.md.
 *
 * Modelled on QEMU's hw/audio/sb16.c and Creative's "Sound Blaster Series Hardware Programming
 * Guide": ports at base 0x220 (reset +6, read data +0xA, write command/data +0xC, read-buffer
 * status +0xE whose read acknowledges the 8-bit IRQ), IRQ 5, 8-bit DMA channel 1. The DSP counts
 * the bytes it fetches by DMA and raises its IRQ each time a block's worth has arrived (`len + 1`
 * bytes of the 0xCx command, or of 0x48 for 0x1C/0x14); in auto-init mode it starts the next block
 * at once — the ISA ancestor of HDA's cyclic buffer and period interrupts.
 *
 * The DSP plays from a FIFO (default 64 bytes) in chunks of `chunkBytes` at the programmed rate,
 * into an AudioSink. After each chunk it asserts DREQ and takes what the 8237 gives it. When the
 * FIFO runs dry while playing (the channel masked, terminal count without auto-init, a transparent
 * controller starved by a busy CPU) it plays silence (0x80) for the missing bytes and counts an
 * underrun; in strict mode the first underrun of a run is a guest error.
 */

import type { AudioFormat, AudioSink } from '../sound/audio-port.js'
import type { ClockEvent } from '../machine/clock.js'
import type { IsaBus, IsaDevice } from './isa.js'

export const SB_DSP_RESET = 0x6
export const SB_DSP_READ = 0xa
export const SB_DSP_WRITE = 0xc
export const SB_DSP_READ_STATUS = 0xe
export const SB_DSP_ACK_16 = 0xf
export const SB_DSP_READY = 0xaa

export const SB_DSP_CMD_TIME_CONSTANT = 0x40
export const SB_DSP_CMD_OUT_RATE = 0x41
export const SB_DSP_CMD_BLOCK_SIZE = 0x48
export const SB_DSP_CMD_8BIT_SINGLE = 0x14
export const SB_DSP_CMD_8BIT_AUTO = 0x1c
/** 0xC0..0xCF: 8-bit transfer; | 0x04 auto-init, | 0x02 FIFO on, | 0x08 input. Then mode, len lo, len hi. */
export const SB_DSP_CMD_8BIT = 0xc0
export const SB_DSP_8BIT_AUTO = 0x04
export const SB_DSP_8BIT_INPUT = 0x08
export const SB_DSP_MODE_STEREO = 0x20
export const SB_DSP_MODE_SIGNED = 0x10
export const SB_DSP_CMD_PAUSE_8 = 0xd0
export const SB_DSP_CMD_SPEAKER_ON = 0xd1
export const SB_DSP_CMD_SPEAKER_OFF = 0xd3
export const SB_DSP_CMD_CONTINUE_8 = 0xd4
export const SB_DSP_CMD_EXIT_AUTO_8 = 0xda
export const SB_DSP_CMD_VERSION = 0xe1
export const SB_DSP_VERSION: readonly [number, number] = [4, 5]

export interface Sb16Options {
  readonly name?: string
  /** Where the output goes (default: nowhere). */
  readonly sink?: AudioSink
  /** I/O base (default 0x220). */
  readonly ioBase?: number
  /** ISA IRQ (default 5). */
  readonly irq?: number
  /** 8-bit DMA channel (default 1). */
  readonly dma8?: number
  /** DSP FIFO bytes (default 64). */
  readonly fifoBytes?: number
  /** Bytes played per step (default 32, at most fifoBytes). */
  readonly chunkBytes?: number
  /** Report underruns and bad commands as guest errors (default true). */
  readonly strict?: boolean
}

/** Argument bytes each command takes. */
const ARGS: Readonly<Record<number, number>> = {
  [SB_DSP_CMD_TIME_CONSTANT]: 1,
  [SB_DSP_CMD_OUT_RATE]: 2,
  0x42: 2,
  [SB_DSP_CMD_BLOCK_SIZE]: 2,
  [SB_DSP_CMD_8BIT_SINGLE]: 2,
  [SB_DSP_CMD_8BIT_AUTO]: 0,
  [SB_DSP_CMD_PAUSE_8]: 0,
  [SB_DSP_CMD_SPEAKER_ON]: 0,
  [SB_DSP_CMD_SPEAKER_OFF]: 0,
  [SB_DSP_CMD_CONTINUE_8]: 0,
  [SB_DSP_CMD_EXIT_AUTO_8]: 0,
  [SB_DSP_CMD_VERSION]: 0,
}

export class Sb16 implements IsaDevice {
  readonly name: string
  readonly ioBase: number
  readonly ioSize = 16
  readonly irq: number
  readonly dma8: number
  readonly fifoBytes: number
  readonly chunkBytes: number
  readonly strict: boolean
  sink: AudioSink | null
  /** Bytes played, underrun bytes (silence played for lack of data), IRQs raised. */
  readonly stats = { played: 0, underruns: 0, irqs: 0, blocks: 0 }
  #bus: IsaBus | null = null
  #out: number[] = []
  #cmd = -1
  #args: number[] = []
  #rate = 11025
  #blockSize = 0x800
  #resetting = false
  // Playback
  #playing = false
  #paused = false
  #auto = false
  #exitAuto = false
  #dmaDone = false
  #stereo = false
  #block = 0
  #blockLeft = 0
  #fifo: number[] = []
  #chunk = 0
  #start = 0
  #tick: ClockEvent | null = null
  #reported = false
  readonly #tmp: Uint8Array

  constructor(opts: Sb16Options = {}) {
    this.name = opts.name ?? 'sb16'
    this.sink = opts.sink ?? null
    this.ioBase = opts.ioBase ?? 0x220
    this.irq = opts.irq ?? 5
    this.dma8 = opts.dma8 ?? 1
    this.fifoBytes = opts.fifoBytes ?? 64
    this.chunkBytes = Math.min(opts.chunkBytes ?? 32, this.fifoBytes)
    this.strict = opts.strict ?? true
    if (!Number.isInteger(this.fifoBytes) || this.fifoBytes < 1) throw new RangeError(`${this.name}: fifoBytes must be a positive integer`)
    if (!Number.isInteger(this.chunkBytes) || this.chunkBytes < 1) throw new RangeError(`${this.name}: chunkBytes must be a positive integer`)
    if (![0, 1, 3].includes(this.dma8)) throw new RangeError(`${this.name}: dma8 must be 0, 1 or 3`)
    this.#tmp = new Uint8Array(this.fifoBytes)
  }

  attach(bus: IsaBus): void {
    this.#bus = bus
  }

  /** Whether DMA output is running. */
  get playing(): boolean {
    return this.#playing
  }

  /** The format being played (8-bit unsigned). */
  get format(): AudioFormat {
    return { rate: this.#rate, channels: this.#stereo ? 2 : 1, bits: 8 }
  }

  reset(): void {
    this.#stop()
    this.#out = []
    this.#cmd = -1
    this.#args = []
    this.#rate = 11025
    this.#blockSize = 0x800
    this.#setIrq(false)
  }

  ioRead(off: number): number {
    switch (off) {
      case SB_DSP_READ:
        return this.#out.length > 0 ? this.#out.shift()! : 0xff
      case SB_DSP_WRITE:
        return 0x7f // bit 7 clear: ready for a command or data byte
      case SB_DSP_READ_STATUS:
        // Reading the read-buffer status acknowledges the 8-bit DMA interrupt.
        this.#setIrq(false)
        return this.#out.length > 0 ? 0xff : 0x7f
      case SB_DSP_ACK_16:
        return 0xff
      default:
        return 0xff
    }
  }

  ioWrite(off: number, value: number): void {
    value &= 0xff
    if (off === SB_DSP_RESET) {
      if ((value & 1) !== 0) this.#resetting = true
      else if (this.#resetting) {
        this.#resetting = false
        this.reset()
        this.#out.push(SB_DSP_READY)
      }
      return
    }
    if (off !== SB_DSP_WRITE) return
    if (this.#cmd < 0) {
      this.#cmd = value
      this.#args = []
    } else this.#args.push(value)
    const cmd = this.#cmd
    const need = (cmd & 0xf0) === SB_DSP_CMD_8BIT ? 3 : ARGS[cmd]
    if (need === undefined) {
      this.#cmd = -1
      this.#guest(`unsupported DSP command 0x${cmd.toString(16)}`, { command: cmd })
      return
    }
    if (this.#args.length < need) return
    this.#cmd = -1
    this.#command(cmd, this.#args)
  }

  #command(cmd: number, a: number[]): void {
    switch (cmd) {
      case SB_DSP_CMD_TIME_CONSTANT:
        this.#rate = Math.round(1_000_000 / (256 - a[0]!))
        return
      case SB_DSP_CMD_OUT_RATE:
      case 0x42:
        this.#rate = (a[0]! << 8) | a[1]!
        if (this.#rate < 4000 || this.#rate > 48000) this.#guest(`sample rate ${this.#rate} Hz is outside 4000..48000`, { rate: this.#rate })
        return
      case SB_DSP_CMD_BLOCK_SIZE:
        this.#blockSize = (a[0]! | (a[1]! << 8)) + 1
        return
      case SB_DSP_CMD_8BIT_SINGLE:
        this.#begin(false, false, (a[0]! | (a[1]! << 8)) + 1)
        return
      case SB_DSP_CMD_8BIT_AUTO:
        this.#begin(true, false, this.#blockSize)
        return
      case SB_DSP_CMD_PAUSE_8:
        this.#paused = true
        return
      case SB_DSP_CMD_CONTINUE_8:
        if (this.#paused && this.#playing) {
          this.#paused = false
          this.#schedule()
        }
        this.#paused = false
        return
      case SB_DSP_CMD_EXIT_AUTO_8:
        this.#exitAuto = true
        return
      case SB_DSP_CMD_SPEAKER_ON:
      case SB_DSP_CMD_SPEAKER_OFF:
        return
      case SB_DSP_CMD_VERSION:
        this.#out.push(...SB_DSP_VERSION)
        return
    }
    // 0xCx: 8-bit transfer with mode byte and length
    if ((cmd & SB_DSP_8BIT_INPUT) !== 0) {
      this.#guest(`DSP command 0x${cmd.toString(16)}: recording is not implemented`, { command: cmd })
      return
    }
    if ((a[0]! & SB_DSP_MODE_SIGNED) !== 0) this.#guest(`DSP mode 0x${a[0]!.toString(16)}: signed 8-bit is not implemented (use unsigned)`, { mode: a[0]! })
    this.#begin((cmd & SB_DSP_8BIT_AUTO) !== 0, (a[0]! & SB_DSP_MODE_STEREO) !== 0, (a[1]! | (a[2]! << 8)) + 1)
  }

  #begin(auto: boolean, stereo: boolean, block: number): void {
    const bus = this.#bus
    if (bus === null) return
    this.#stop()
    this.#playing = true
    this.#paused = false
    this.#auto = auto
    this.#exitAuto = false
    this.#dmaDone = false
    this.#stereo = stereo
    this.#block = block
    this.#blockLeft = block
    this.#fifo = []
    this.#chunk = 0
    this.#reported = false
    this.#start = bus.now()
    this.#fill()
    this.#schedule()
  }

  #stop(): void {
    if (this.#tick !== null) this.#tick.cancelled = true
    this.#tick = null
    this.#playing = false
    this.#fifo = []
    this.#bus?.dma.setDreq(this.dma8, false)
  }

  /** Time of chunk k's first byte. */
  #chunkTime(k: number): number {
    const bytesPerSec = this.#rate * (this.#stereo ? 2 : 1)
    return this.#start + Math.round((k * this.chunkBytes * 1e9) / bytesPerSec)
  }

  #schedule(): void {
    const bus = this.#bus!
    const at = this.#chunkTime(this.#chunk + 1)
    // Never at once: a step that held the bus past its successor's time (block mode stalling the
    // CPU for longer than a chunk plays) must not starve everything else of the clock.
    this.#tick = bus.schedule(Math.max(1, at - bus.now()), () => this.#step())
  }

  /** Plays one chunk from the FIFO, then refills it by DMA. */
  #step(): void {
    this.#tick = null
    if (!this.#playing || this.#paused) return
    const n = this.chunkBytes
    const pcm = new Uint8Array(n)
    const have = Math.min(n, this.#fifo.length)
    if (this.#dmaDone && have === 0) {
      this.#stop()
      return
    }
    for (let i = 0; i < have; i++) pcm[i] = this.#fifo[i]!
    this.#fifo.splice(0, have)
    if (this.#dmaDone) {
      // Single-cycle (or exited auto-init) output ends with the last byte fetched.
      this.sink?.write(pcm.subarray(0, have), this.format, this.#chunkTime(this.#chunk))
      this.stats.played += have
      this.#chunk++
      if (this.#fifo.length === 0) this.#stop()
      else this.#schedule()
      return
    }
    if (have < n) {
      pcm.fill(0x80, have)
      this.stats.underruns += n - have
      if (this.strict && !this.#reported) {
        this.#reported = true
        this.#guest(`DSP FIFO underrun: DMA channel ${this.dma8} delivered ${have} of ${n} bytes (channel masked, terminal count without auto-init, or the bus not granted)`, { channel: this.dma8, have, want: n })
      }
    }
    this.sink?.write(pcm, this.format, this.#chunkTime(this.#chunk))
    this.stats.played += n
    this.#chunk++
    this.#fill()
    this.#schedule()
  }

  /** DREQ: takes what the 8237 gives, up to the FIFO's room and the block's end. */
  #fill(): void {
    const dma = this.#bus!.dma
    while (!this.#dmaDone) {
      const room = Math.min(this.fifoBytes - this.#fifo.length, this.#blockLeft)
      if (room <= 0) break
      dma.setDreq(this.dma8, true)
      const t = dma.readMemory(this.dma8, this.#tmp, room)
      if (t.bytes === 0) break
      for (let i = 0; i < t.bytes; i++) this.#fifo.push(this.#tmp[i]!)
      this.#blockLeft -= t.bytes
      if (this.#blockLeft > 0) continue
      // A block's worth has arrived: interrupt, then the next block or the end.
      this.stats.blocks++
      this.#setIrq(true)
      if (this.#auto && !this.#exitAuto) this.#blockLeft = this.#block
      else this.#dmaDone = true
    }
    dma.setDreq(this.dma8, !this.#dmaDone && this.#fifo.length < this.fifoBytes)
  }

  #setIrq(on: boolean): void {
    if (on) this.stats.irqs++
    this.#bus?.setIrq(this.irq, on, this)
  }

  #guest(message: string, details?: Record<string, number | string | boolean>): void {
    this.#bus?.guestError(`${this.name}: ${message}`, details)
  }
}
