/**
 * The audio port: how a sound device's codec meets the outside world. An AudioSink is the
 * loudspeaker — it receives the PCM an output stream plays, with its format and the virtual time
 * of its first frame; an AudioSource is the microphone — an input stream records from it. Host
 * adapters (a WAV file writer or reader, a Web Audio node) implement these two interfaces; this
 * file also has in-memory ones for tests: MemoryAudioSink (collects what is played),
 * BufferAudioSource (plays back given bytes), SilenceAudioSource and SineAudioSource.
 *
 * PCM layout (the HDA one, High Definition Audio Specification 1.0a §4.5.1, and ALSA's
 * interleaved little-endian formats): frames of `channels` samples, channel 0 first; 8-bit samples
 * are unsigned bytes (ALSA U8), 16-bit ones signed 16-bit (S16_LE), and 20-, 24- and 32-bit ones
 * fill a signed 32-bit little-endian container with the valid bits at the top (ALSA S32_LE with
 * 20 or 24 significant bits). Times are virtual nanoseconds. Nothing here reads a host clock.
 */

export type AudioSampleBits = 8 | 16 | 20 | 24 | 32

export interface AudioFormat {
  /** Frames per second (e.g. 48000, 44100; HDA can also express 8000..192000 and some odd rates). */
  readonly rate: number
  /** Samples per frame, 1..16. */
  readonly channels: number
  /** Significant bits per sample. */
  readonly bits: AudioSampleBits
}

/** Bytes one sample takes in memory: 1, 2 or 4 (20- and 24-bit samples use a 32-bit container). */
export function audioContainerBytes(bits: AudioSampleBits): 1 | 2 | 4 {
  return bits === 8 ? 1 : bits === 16 ? 2 : 4
}

/** Bytes per frame: channels × container bytes. */
export function audioFrameBytes(f: AudioFormat): number {
  return f.channels * audioContainerBytes(f.bits)
}

/** Whether two formats are the same. */
export function sameAudioFormat(a: AudioFormat, b: AudioFormat): boolean {
  return a.rate === b.rate && a.channels === b.channels && a.bits === b.bits
}

/**
 * Where played PCM goes. `write` is called in time order with consecutive pieces of what the
 * output converter plays: `pcm` holds whole or partial frames (a piece may end inside a frame; the
 * next one continues it), `time` is the virtual time of the piece's first byte on the link. The
 * view is the device's own buffer and is valid only during the call: copy what you keep. A gap
 * between one piece's end (`time + pcm.length / (rate × frame bytes)` seconds) and the next piece's
 * time means the stream was stopped or stalled in between; silence the codec played while the
 * stream was not routed to it arrives as zero bytes.
 */
export interface AudioSink {
  write(pcm: Uint8Array, format: AudioFormat, time: number): void
}

/**
 * Where recorded PCM comes from. `read` fills all of `into` with the PCM captured from virtual
 * time `time` on (consecutive calls ask for consecutive pieces, in time order; `into.length` bytes
 * at the format's rate). The view is the device's own buffer, valid only during the call.
 */
export interface AudioSource {
  read(into: Uint8Array, format: AudioFormat, time: number): void
}

/** One write a MemoryAudioSink received. */
export interface AudioSegment {
  readonly time: number
  /** Offset of its bytes in MemoryAudioSink.bytes (0 when bytes are not kept). */
  readonly offset: number
  readonly length: number
  readonly format: AudioFormat
}

export interface MemoryAudioSinkOptions {
  /** Keep the played bytes (default true); false: count them only (for long runs and benchmarks). */
  readonly keepBytes?: boolean
  /** Record each write as an AudioSegment (default true). */
  readonly keepSegments?: boolean
}

/** A sink that collects what is played, in order, in memory. */
export class MemoryAudioSink implements AudioSink {
  readonly keepBytes: boolean
  readonly keepSegments: boolean
  /** Bytes written so far (also when they are not kept). */
  length = 0
  /** write() calls so far. */
  writes = 0
  readonly segments: AudioSegment[] = []
  /** The format of the last write, or null. */
  format: AudioFormat | null = null
  #buf = new Uint8Array(0)

  constructor(opts: MemoryAudioSinkOptions = {}) {
    this.keepBytes = opts.keepBytes ?? true
    this.keepSegments = opts.keepSegments ?? true
  }

  write(pcm: Uint8Array, format: AudioFormat, time: number): void {
    const offset = this.keepBytes ? this.length : 0
    if (this.keepBytes) {
      if (this.length + pcm.length > this.#buf.length) {
        const grown = new Uint8Array(Math.max(this.length + pcm.length, this.#buf.length * 2, 4096))
        grown.set(this.#buf.subarray(0, this.length))
        this.#buf = grown
      }
      this.#buf.set(pcm, this.length)
    }
    if (this.keepSegments) this.segments.push({ time, offset, length: pcm.length, format })
    this.length += pcm.length
    this.writes++
    this.format = format
  }

  /** The bytes kept so far (a view: it stays valid until the next write). */
  get bytes(): Uint8Array {
    return this.#buf.subarray(0, this.keepBytes ? this.length : 0)
  }

  /** Forgets everything written so far. */
  clear(): void {
    this.length = 0
    this.writes = 0
    this.segments.length = 0
    this.format = null
  }
}

/** A source that plays back the given bytes, then silence (or loops over them). */
export class BufferAudioSource implements AudioSource {
  readonly data: Uint8Array
  readonly loop: boolean
  /** Bytes handed out so far, silence included. */
  position = 0

  constructor(data: Uint8Array, opts: { readonly loop?: boolean } = {}) {
    if (!(data instanceof Uint8Array)) throw new TypeError('BufferAudioSource: data must be a Uint8Array')
    this.data = data
    this.loop = opts.loop ?? false
    if (this.loop && data.length === 0) throw new RangeError('BufferAudioSource: a looping source needs at least one byte')
  }

  read(into: Uint8Array, format: AudioFormat, _time: number): void {
    let done = 0
    const n = into.length
    while (done < n) {
      let at = this.position + done
      if (this.loop) at %= this.data.length
      if (at >= this.data.length) {
        into.fill(audioSilenceByte(format), done)
        break
      }
      const piece = Math.min(n - done, this.data.length - at)
      into.set(this.data.subarray(at, at + piece), done)
      done += piece
    }
    this.position += n
  }
}

/** A source of silence (0, or 0x80 for unsigned 8-bit samples). */
export class SilenceAudioSource implements AudioSource {
  read(into: Uint8Array, format: AudioFormat, _time: number): void {
    into.fill(audioSilenceByte(format))
  }
}

/**
 * A sine tone on every channel, computed from the virtual time of each frame (so consecutive
 * reads continue the wave and a stall leaves a phase jump, as a real microphone would). This is
 * per-sample work in JavaScript: meant for tests, not for benchmarks.
 */
export class SineAudioSource implements AudioSource {
  readonly frequency: number
  /** Peak amplitude as a fraction of full scale, 0..1. */
  readonly amplitude: number
  /** Bytes handed out so far. */
  position = 0

  constructor(opts: { readonly frequency?: number; readonly amplitude?: number } = {}) {
    this.frequency = opts.frequency ?? 440
    this.amplitude = opts.amplitude ?? 0.5
    if (!Number.isFinite(this.frequency) || this.frequency < 0) throw new RangeError(`SineAudioSource: frequency must be a non-negative number, got ${this.frequency}`)
    if (!Number.isFinite(this.amplitude) || this.amplitude < 0 || this.amplitude > 1) throw new RangeError(`SineAudioSource: amplitude must be from 0 to 1, got ${this.amplitude}`)
  }

  /** The sample value (as stored, before little-endian encoding) at virtual time t ns. */
  sampleAt(t: number, bits: AudioSampleBits): number {
    const x = this.amplitude * Math.sin((2 * Math.PI * this.frequency * t) / 1e9)
    if (bits === 8) return Math.round(127 * x) + 128
    if (bits === 16) return Math.round(32767 * x)
    // Constants, not 2 ** (bits - 1): a variable exponent is a pow() call per sample.
    if (bits === 20) return Math.round(0x7_ffff * x) * 0x1000
    if (bits === 24) return Math.round(0x7f_ffff * x) * 0x100
    return Math.round(0x7fff_ffff * x)
  }

  read(into: Uint8Array, format: AudioFormat, time: number): void {
    const size = audioContainerBytes(format.bits)
    const frame = format.channels * size
    const n = into.length
    const p0 = this.position
    const end = p0 + n
    const nsPerByte = 1e9 / (frame * format.rate)
    // Whole containers, from the one holding the first byte (a read may start or end inside one);
    // each frame's time counts from `time`, the time of the first byte of this read.
    for (let b = p0 - (p0 % size); b < end; b += size) {
      const t = time + (b - (b % frame) - p0) * nsPerByte
      const s = this.sampleAt(t, format.bits)
      for (let k = 0; k < size; k++) {
        const j = b + k - p0
        if (j >= 0 && j < n) into[j] = (s >>> (8 * k)) & 0xff
      }
    }
    this.position = end
  }
}

/** The byte value of silence: 0x80 for unsigned 8-bit samples, 0 otherwise. */
export function audioSilenceByte(f: AudioFormat): number {
  return f.bits === 8 ? 0x80 : 0
}
