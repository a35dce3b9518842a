/**
 * WAV files as the audio endpoints of the emulated sound hardware: a WavFileSink records what an
 * output converter plays (devices/sound/audio-port.ts AudioSink) into a WAV file, and a
 * WavFileSource feeds an input converter (AudioSource) from one — the host side of "play a WAV
 * file through the driver and capture what the codec outputs", as QEMU's wav audio backend does.
 *
 * Samples are copied as they are, byte for byte: 16-bit PCM as 16-bit WAV; 20-, 24- and 32-bit
 * samples, which the controller carries in 32-bit containers, as 32-bit WAV (with the valid bits
 * in WAVE_FORMAT_EXTENSIBLE where the file can say so). 8-bit HDA samples are not supported (their
 * signedness differs from 8-bit WAV's). Host I/O: this lives in host/, never in devices/.
 */
import { audioContainerBytes, audioFrameBytes, type AudioFormat, type AudioSink, type AudioSource } from '../devices/index.js'
import { readWav, WavWriter, type WavFile } from './wav.js'

export class AudioWavError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AudioWavError'
  }
}

function describe(f: AudioFormat): string {
  return `${f.rate} Hz, ${f.channels} channel(s), ${f.bits}-bit`
}

/** Records every piece the sink receives, in order, into a WAV file (header patched at close). */
export class WavFileSink implements AudioSink {
  readonly path: string
  #writer: WavWriter | null = null
  #format: AudioFormat | null = null
  #closed = false
  /** Bytes of PCM written so far. */
  bytes = 0

  constructor(path: string) {
    if (typeof path !== 'string' || path === '') throw new AudioWavError('WavFileSink: path must be a non-empty string')
    this.path = path
  }

  /** The format of what was played (null until the first piece). */
  get format(): AudioFormat | null {
    return this.#format
  }

  write(pcm: Uint8Array, format: AudioFormat, _time: number): void {
    if (this.#closed) throw new AudioWavError(`WavFileSink ${this.path}: written after close()`)
    if (this.#format === null) {
      if (format.bits === 8) throw new AudioWavError(`WavFileSink ${this.path}: 8-bit samples are not supported`)
      this.#format = format
      this.#writer = WavWriter.open(this.path, { rate: format.rate, channels: format.channels, bits: audioContainerBytes(format.bits) * 8 })
    } else if (this.#format.rate !== format.rate || this.#format.channels !== format.channels || this.#format.bits !== format.bits) {
      throw new AudioWavError(`WavFileSink ${this.path}: the format changed from ${describe(this.#format)} to ${describe(format)}; one file holds one format`)
    }
    // The view is the device's buffer: WavWriter copies it into its own.
    this.#writer!.write(pcm)
    this.bytes += pcm.length
  }

  /** Finishes the file. A sink that never received anything writes no file. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#writer?.close()
  }
}

/** Feeds an input converter from a WAV file's samples, then silence. */
export class WavFileSource implements AudioSource {
  readonly wav: WavFile
  /** Bytes handed out so far (silence after the end included). */
  position = 0

  constructor(pathOrBytes: string | Uint8Array, name?: string) {
    this.wav = readWav(pathOrBytes, name)
    if (this.wav.sampleFormat !== 'pcm' || (this.wav.bitsPerSample !== 16 && this.wav.bitsPerSample !== 32)) {
      throw new AudioWavError(`WavFileSource: ${name ?? String(pathOrBytes)} holds ${this.wav.bitsPerSample}-bit ${this.wav.sampleFormat} samples; the controller takes 16-bit PCM, or 20/24/32-bit PCM in 32-bit containers`)
    }
  }

  /** Whether every sample of the file has been handed out. */
  get done(): boolean {
    return this.position >= this.wav.data.length
  }

  read(into: Uint8Array, format: AudioFormat, _time: number): void {
    const w = this.wav
    if (format.rate !== w.rate || format.channels !== w.channels || audioContainerBytes(format.bits) * 8 !== w.bitsPerSample) {
      throw new AudioWavError(`WavFileSource: the stream records ${describe(format)} (${audioFrameBytes(format)}-byte frames) but the file holds ${w.rate} Hz, ${w.channels} channel(s), ${w.bitsPerSample}-bit samples`)
    }
    const left = Math.max(0, w.data.length - this.position)
    const n = Math.min(left, into.length)
    if (n > 0) into.set(w.data.subarray(this.position, this.position + n))
    if (n < into.length) into.fill(0, n)
    this.position += into.length
  }
}
