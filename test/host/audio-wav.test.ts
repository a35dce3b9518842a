// host/audio-wav.ts: WAV files as the mini-HDA's audio endpoints. What the output stream plays
// lands in a WAV file byte for byte (and sox reads it); a WAV file (made by sox) feeds the input
// stream, which records it into memory byte for byte.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AudioWavError, WavFileSink, WavFileSource } from '../../host/audio-wav.js'
import { readWav } from '../../host/wav.js'
import { BUF_IN, BUF_OUT, fill, hda, pcm, periodsBdl, ramBytes } from '../devices/hda-rig.js'
import { requireTool } from '../real-world/tools.js'

const dir = mkdtempSync(join(tmpdir(), 'dmalab-audio-wav-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const MS = 1_000_000
const PERIOD = 1920 // 10 ms of 48 kHz 16-bit stereo

describe('WavFileSink', () => {
  it('captures what the output stream plays into a WAV file, bit-exact, that sox reads', () => {
    const file = join(dir, 'played.wav')
    const sink = new WavFileSink(file)
    const h = hda({ sink })
    h.bringUp()
    const data = pcm(8 * PERIOD)
    fill(h.m, BUF_OUT, data)
    h.setup(h.dev.output, { entries: periodsBdl(BUF_OUT, 8, PERIOD) })
    h.start(h.dev.output)
    h.runFor(200 * MS) // 20 periods: 2.5 laps of the cyclic buffer
    h.stop(h.dev.output)
    sink.close()
    const wav = readWav(file)
    expect(wav).toMatchObject({ rate: 48_000, channels: 2, bitsPerSample: 16, sampleFormat: 'pcm' })
    expect(wav.data.length).toBe(sink.bytes)
    expect(wav.data.length).toBeGreaterThanOrEqual(20 * PERIOD)
    let firstBad = -1
    for (let i = 0; i < wav.data.length && firstBad < 0; i++) if (wav.data[i] !== data[i % data.length]) firstBad = i
    expect(firstBad).toBe(-1)
    const soxi = execFileSync(requireTool('soxi', 'sox'), [file], { encoding: 'utf8' })
    expect(soxi).toMatch(/Sample Rate\s*:\s*48000/)
    expect(soxi).toMatch(/Channels\s*:\s*2/)
    expect(soxi).toMatch(new RegExp(`${wav.data.length / 4} samples`))
  })

  it('refuses a format change mid-file, 8-bit samples, and writes after close, naming the problem', () => {
    const sink = new WavFileSink(join(dir, 'x.wav'))
    sink.write(new Uint8Array(4), { rate: 48_000, channels: 2, bits: 16 }, 0)
    expect(() => sink.write(new Uint8Array(4), { rate: 44_100, channels: 2, bits: 16 }, 1)).toThrow(/format changed from 48000 Hz, 2 channel\(s\), 16-bit to 44100 Hz/)
    sink.close()
    expect(() => sink.write(new Uint8Array(4), { rate: 48_000, channels: 2, bits: 16 }, 2)).toThrow(AudioWavError)
    expect(() => new WavFileSink(join(dir, 'y.wav')).write(new Uint8Array(2), { rate: 8000, channels: 1, bits: 8 }, 0)).toThrow(/8-bit samples are not supported/)
    expect(() => new WavFileSink('')).toThrow(/path must be a non-empty string/)
  })
})

describe('WavFileSource', () => {
  it('feeds the input stream from a WAV file sox made: the recording in memory equals the file, then silence', () => {
    const file = join(dir, 'tone.wav')
    execFileSync(requireTool('sox', 'sox'), ['-D', '-n', '-r', '48000', '-c', '2', '-b', '16', file, 'synth', '0.05', 'sine', '440'])
    const source = new WavFileSource(file)
    expect(source.wav.data.length).toBe(0.05 * 48_000 * 4)
    const h = hda()
    h.bringUp()
    h.dev.attachSource(source)
    h.setup(h.dev.input, { entries: periodsBdl(BUF_IN, 8, PERIOD), tag: 2 })
    h.start(h.dev.input)
    h.runFor(80 * MS) // 8 periods: the whole buffer once; the file is 5 periods long
    h.stop(h.dev.input)
    const got = ramBytes(h.m, BUF_IN, 8 * PERIOD)
    expect(got.subarray(0, source.wav.data.length)).toEqual(source.wav.data)
    expect(got.subarray(source.wav.data.length).every((b) => b === 0)).toBe(true)
    expect(source.done).toBe(true)
  })

  it('refuses a stream format that differs from the file, naming both', () => {
    const file = join(dir, 'mono.wav')
    execFileSync(requireTool('sox', 'sox'), ['-D', '-n', '-r', '44100', '-c', '1', '-b', '16', file, 'synth', '0.01', 'sine', '1000'])
    const source = new WavFileSource(file)
    expect(() => source.read(new Uint8Array(16), { rate: 48_000, channels: 2, bits: 16 }, 0)).toThrow(/records 48000 Hz, 2 channel\(s\), 16-bit .* but the file holds 44100 Hz, 1 channel\(s\), 16-bit/)
  })
})
