// host/wav.ts: RIFF/WAVE files read and written, checked against sox (soxi) both ways.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  WAVE_FORMAT_EXTENSIBLE,
  WAVE_FORMAT_IEEE_FLOAT,
  WAVE_FORMAT_PCM,
  WavFormatError,
  WavWriter,
  WavWriterError,
  encodeWav,
  parseWav,
  readWav,
  wavPcmFormat,
  writeWav,
  type WavSpec,
} from '../../host/wav.js'

const dir = mkdtempSync(join(tmpdir(), 'dmalab-wav-'))
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})
const file = (name: string): string => join(dir, name)

const SOX_INSTALL =
  'sox is not installed, and this test needs it to check that a real audio tool reads our WAV files and that we read its. Install it with ' +
  '`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends sox` (.ci/run does this on CI).'

function run(tool: 'sox' | 'soxi', args: string[]): string {
  const r = spawnSync(tool, args, { encoding: 'utf8', timeout: 30_000 })
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(SOX_INSTALL)
  if (r.error !== undefined) throw r.error
  if (r.status !== 0) throw new Error(`${tool} ${args.join(' ')} exited with ${r.status}: ${r.stderr}`)
  return r.stdout
}

/** Deterministic sample bytes of n frames. */
function pattern(n: number, frameBytes: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n * frameBytes)
  let x = seed * 2654435761
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

/** A valid 16-bit stereo PCM file with chunks added; `mutate` edits it. */
function sample(mutate?: (b: Uint8Array, v: DataView) => unknown): Uint8Array {
  const b = encodeWav({ rate: 8000, channels: 2, bits: 16 }, pattern(10, 4))
  mutate?.(b, new DataView(b.buffer))
  return b
}

function chunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length & 1))
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i)
  new DataView(out.buffer).setUint32(4, body.length, true)
  out.set(body, 8)
  return out
}

/** A RIFF/WAVE file from chunks. */
function riff(...chunks: Uint8Array[]): Uint8Array {
  const body = chunks.reduce((n, c) => n + c.length, 0)
  const out = new Uint8Array(12 + body)
  out.set([0x52, 0x49, 0x46, 0x46], 0)
  new DataView(out.buffer).setUint32(4, 4 + body, true)
  out.set([0x57, 0x41, 0x56, 0x45], 8)
  let at = 12
  for (const c of chunks) {
    out.set(c, at)
    at += c.length
  }
  return out
}

function fmt16(tag: number, channels: number, rate: number, bits: number, blockAlign = channels * (bits / 8)): Uint8Array {
  const b = new Uint8Array(16)
  const v = new DataView(b.buffer)
  v.setUint16(0, tag, true)
  v.setUint16(2, channels, true)
  v.setUint32(4, rate, true)
  v.setUint32(8, rate * blockAlign, true)
  v.setUint16(12, blockAlign, true)
  v.setUint16(14, bits, true)
  return b
}

describe('round trips', () => {
  const specs: (WavSpec & { name: string })[] = [
    { name: '8-bit mono', rate: 8000, channels: 1, bits: 8 },
    { name: '16-bit stereo', rate: 48000, channels: 2, bits: 16 },
    { name: '24-bit stereo', rate: 96000, channels: 2, bits: 24 },
    { name: '32-bit stereo', rate: 44100, channels: 2, bits: 32 },
    { name: '16-bit 6 channels', rate: 48000, channels: 6, bits: 16 },
    { name: '24-bit 3 channels (odd data size)', rate: 22050, channels: 3, bits: 24 },
    { name: '8-bit 5 channels (odd data size)', rate: 11025, channels: 5, bits: 8 },
    { name: 'float 32-bit stereo', rate: 48000, channels: 2, bits: 32, sampleFormat: 'float' },
    { name: 'float 64-bit mono', rate: 48000, channels: 1, bits: 64, sampleFormat: 'float' },
    { name: '16-bit stereo, extensible forced', rate: 48000, channels: 2, bits: 16, extensible: true },
  ]
  it.each(specs)('$name: encodeWav -> parseWav, writeWav -> readWav, WavWriter -> readWav', (spec) => {
    const frameBytes = spec.channels * (spec.bits / 8)
    const frames = 101
    const data = pattern(frames, frameBytes, spec.bits + spec.channels)
    const bytes = encodeWav(spec, data)
    const a = parseWav(bytes, spec.name)
    expect(a.rate).toBe(spec.rate)
    expect(a.channels).toBe(spec.channels)
    expect(a.bitsPerSample).toBe(spec.bits)
    expect(a.validBitsPerSample).toBe(spec.bits)
    expect(a.sampleFormat).toBe(spec.sampleFormat ?? 'pcm')
    expect(a.blockAlign).toBe(frameBytes)
    expect(a.frames).toBe(frames)
    expect(a.data).toEqual(data)
    expect(a.warnings).toEqual([])
    const extensible = spec.extensible ?? (spec.channels > 2 || spec.bits > 16)
    expect(a.formatTag).toBe(extensible ? WAVE_FORMAT_EXTENSIBLE : spec.sampleFormat === 'float' ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM)
    if (extensible) expect(a.channelMask).not.toBe(0)
    expect(bytes.length % 2).toBe(0) // the odd data chunk is padded

    const p = file(`rt-${spec.channels}-${spec.bits}-${spec.sampleFormat ?? 'pcm'}-${String(spec.extensible)}.wav`)
    writeWav(p, spec, data)
    expect(readWav(p).data).toEqual(data)
    expect(new Uint8Array(readFileSync(p))).toEqual(bytes)

    const w = WavWriter.open(p, spec)
    w.write(data.subarray(0, 40 * frameBytes))
    w.write(data.subarray(40 * frameBytes))
    expect(w.frames).toBe(frames)
    w.close()
    w.close() // a second close does nothing
    expect(new Uint8Array(readFileSync(p))).toEqual(bytes)
  })

  it('a WavWriter closed with no data is a valid empty file', () => {
    const p = file('empty.wav')
    WavWriter.open(p, { rate: 8000, channels: 1, bits: 16 }).close()
    const w = readWav(p)
    expect(w.frames).toBe(0)
    expect(w.data.length).toBe(0)
  })

  it('wavPcmFormat names the ALSA format of the samples', () => {
    expect(wavPcmFormat({ bitsPerSample: 8, sampleFormat: 'pcm' })).toBe('U8')
    expect(wavPcmFormat({ bitsPerSample: 16, sampleFormat: 'pcm' })).toBe('S16_LE')
    expect(wavPcmFormat({ bitsPerSample: 24, sampleFormat: 'pcm' })).toBe('S24_3LE')
    expect(wavPcmFormat({ bitsPerSample: 32, sampleFormat: 'pcm' })).toBe('S32_LE')
    expect(wavPcmFormat({ bitsPerSample: 32, sampleFormat: 'float' })).toBe('FLOAT_LE')
    expect(wavPcmFormat({ bitsPerSample: 64, sampleFormat: 'float' })).toBe('FLOAT64_LE')
  })
})

describe('unknown chunks and padding', () => {
  it('skips LIST and other chunks before and after fmt and data, odd-sized ones with their pad byte', () => {
    const data = pattern(7, 4)
    const list = chunk('LIST', new TextEncoder().encode('INFOISFT\u0005\u0000\u0000\u0000sox\u0000\u0000'))
    const odd = chunk('junk', new Uint8Array([1, 2, 3])) // 3 bytes + pad
    const b = riff(odd, chunk('fmt ', fmt16(1, 2, 8000, 16)), list, chunk('data', data), chunk('id3 ', new Uint8Array(5)))
    const w = parseWav(b, 'chunks.wav')
    expect(w.data).toEqual(data)
    expect(w.chunks.map((c) => c.id)).toEqual(['junk', 'fmt ', 'LIST', 'data', 'id3 '])
  })

  it('an odd data chunk at the very end without its pad byte is accepted', () => {
    const data = pattern(3, 1)
    const full = riff(chunk('fmt ', fmt16(1, 1, 8000, 8)), chunk('data', data))
    const b = full.subarray(0, full.length - 1)
    new DataView(b.buffer, b.byteOffset).setUint32(4, b.length - 8, true)
    expect(parseWav(b).data).toEqual(data)
  })

  it('bytes after the RIFF form are ignored, with a warning', () => {
    const b = new Uint8Array([...sample(), 0xde, 0xad])
    const w = parseWav(b)
    expect(w.frames).toBe(10)
    expect(w.warnings).toEqual(['2 bytes after the end of the RIFF form (ignored)'])
  })

  it('a wrong byte rate is a warning, not an error', () => {
    const w = parseWav(sample((_, v) => v.setUint32(28, 1234, true)))
    expect(w.warnings[0]).toMatch(/byte rate 1234/)
  })
})

describe('corrupt input: a WavFormatError naming the file, the byte offset and the problem', () => {
  const cases: [string, Uint8Array, number, RegExp][] = [
    ['too short', new Uint8Array(8), 0, /too short for a RIFF header/],
    ['not RIFF', new TextEncoder().encode('OggS\0\0\0\0WAVEfmt '), 0, /not a RIFF file \(starts with 'OggS'/],
    ['RIFX', sample((b) => b.set([0x52, 0x49, 0x46, 0x58], 0)), 0, /big-endian RIFX/],
    ['RF64', sample((b) => b.set([0x52, 0x46, 0x36, 0x34], 0)), 0, /RF64/],
    ['not WAVE', sample((b) => b.set([0x41, 0x56, 0x49, 0x20], 8)), 8, /not a WAVE file \(RIFF form type 'AVI '/],
    ['truncated file (RIFF size too big)', sample().subarray(0, 50), 4, /truncated: the RIFF header says 84 bytes, the file has 50/],
    ['truncated chunk', riff(chunk('fmt ', fmt16(1, 2, 8000, 16)), (() => { const c = chunk('data', new Uint8Array(8)); new DataView(c.buffer).setUint32(4, 4000, true); return c })()), 36, /chunk 'data' of 4000 bytes runs past the end of the file \(8 bytes left\)/],
    ['truncated chunk header', riff(chunk('fmt ', fmt16(1, 2, 8000, 16)), new Uint8Array([0x64, 0x61])), 36, /truncated chunk header \(2 bytes left, need 8\)/],
    ['fmt missing', riff(chunk('LIST', new Uint8Array(4))), 12, /no fmt chunk/],
    ['data missing', riff(chunk('fmt ', fmt16(1, 2, 8000, 16))), 12, /no data chunk/],
    ['data before fmt', riff(chunk('data', new Uint8Array(4)), chunk('fmt ', fmt16(1, 2, 8000, 16))), 12, /data chunk before the fmt chunk/],
    ['two fmt chunks', riff(chunk('fmt ', fmt16(1, 2, 8000, 16)), chunk('fmt ', fmt16(1, 2, 8000, 16)), chunk('data', new Uint8Array(4))), 36, /a second fmt chunk \(the first is at byte 12\)/],
    ['two data chunks', riff(chunk('fmt ', fmt16(1, 2, 8000, 16)), chunk('data', new Uint8Array(4)), chunk('data', new Uint8Array(4))), 48, /a second data chunk/],
    ['fmt too short', riff(chunk('fmt ', new Uint8Array(12)), chunk('data', new Uint8Array(4))), 12, /fmt chunk of 12 bytes is too short/],
    ['IMA ADPCM', riff(chunk('fmt ', fmt16(0x11, 1, 8000, 4, 256)), chunk('data', new Uint8Array(256))), 20, /unsupported format tag 0x0011 \(IMA ADPCM, a compressed format\)/],
    ['MS ADPCM', riff(chunk('fmt ', fmt16(0x02, 1, 8000, 4, 256)), chunk('data', new Uint8Array(256))), 20, /0x0002 \(MS ADPCM/],
    ['mu-law', riff(chunk('fmt ', fmt16(0x07, 1, 8000, 8)), chunk('data', new Uint8Array(2))), 20, /0x0007 \(mu-law/],
    ['an unknown tag', riff(chunk('fmt ', fmt16(0x1234, 1, 8000, 8)), chunk('data', new Uint8Array(2))), 20, /unsupported format tag 0x1234: only PCM/],
    ['block align inconsistent', riff(chunk('fmt ', fmt16(1, 2, 8000, 16, 3)), chunk('data', new Uint8Array(6))), 32, /block align 3 is inconsistent with 2 channel\(s\) of 16 bits \(expected 4\)/],
    ['12-bit PCM', riff(chunk('fmt ', fmt16(1, 1, 8000, 12, 2)), chunk('data', new Uint8Array(2))), 34, /unsupported bits per sample 12 for PCM/],
    ['16-bit float', riff(chunk('fmt ', fmt16(3, 1, 8000, 16)), chunk('data', new Uint8Array(2))), 34, /unsupported bits per sample 16 for IEEE float/],
    ['zero channels', riff(chunk('fmt ', fmt16(1, 0, 8000, 16, 0)), chunk('data', new Uint8Array(0))), 22, /zero channels/],
    ['zero rate', riff(chunk('fmt ', fmt16(1, 1, 0, 16)), chunk('data', new Uint8Array(2))), 24, /a sample rate of 0/],
    ['data not whole frames', riff(chunk('fmt ', fmt16(1, 2, 8000, 16)), chunk('data', new Uint8Array(6))), 36, /data chunk of 6 bytes is not a whole number of 4-byte frames/],
    ['extensible too short', riff(chunk('fmt ', new Uint8Array([...fmt16(0xfffe, 2, 8000, 16), 0, 0])), chunk('data', new Uint8Array(4))), 12, /WAVE_FORMAT_EXTENSIBLE fmt chunk of 18 bytes is too short/],
  ]
  it.each(cases)('%s', (_, bytes, offset, problem) => {
    let err: unknown
    try {
      parseWav(bytes, 'bad.wav')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(WavFormatError)
    const e = err as WavFormatError
    expect(e.file).toBe('bad.wav')
    expect(e.offset).toBe(offset)
    expect(e.problem).toMatch(problem)
    expect(e.message).toBe(`bad.wav: byte ${offset}: ${e.problem}`)
  })

  it('an extensible file with a compressed or unknown sub-format', () => {
    const ext = (sub: number, tail = true): Uint8Array => {
      const f = new Uint8Array(40)
      f.set(fmt16(0xfffe, 2, 8000, 16))
      const v = new DataView(f.buffer)
      v.setUint16(16, 22, true)
      v.setUint16(18, 16, true)
      v.setUint32(20, 3, true)
      v.setUint16(24, sub, true)
      if (tail) f.set([0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 28)
      return riff(chunk('fmt ', f), chunk('data', new Uint8Array(4)))
    }
    expect(parseWav(ext(1)).formatTag).toBe(WAVE_FORMAT_EXTENSIBLE)
    expect(() => parseWav(ext(0x11), 'x.wav')).toThrow(/x\.wav: byte 44: unsupported WAVE_FORMAT_EXTENSIBLE sub-format 0x0011 \(IMA ADPCM\)/)
    expect(() => parseWav(ext(1, false), 'x.wav')).toThrow(/x\.wav: byte 44: WAVE_FORMAT_EXTENSIBLE sub-format GUID 0100.* is not a known one/)
  })

  it('readWav names the path it read', () => {
    const p = file('garbage.wav')
    writeFileSync(p, 'hello, this is not a wave file')
    expect(() => readWav(p)).toThrow(new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: byte 0: not a RIFF file`))
  })
})

describe('writer errors', () => {
  it('rejects impossible specs and data that is not whole frames', () => {
    expect(() => encodeWav({ rate: 0, channels: 1, bits: 16 }, new Uint8Array(2))).toThrow(WavWriterError)
    expect(() => encodeWav({ rate: 8000, channels: 0, bits: 16 }, new Uint8Array(2))).toThrow(/spec.channels/)
    expect(() => encodeWav({ rate: 8000, channels: 1, bits: 12 }, new Uint8Array(2))).toThrow(/spec.bits must be 8, 16, 24, 32 for pcm/)
    expect(() => encodeWav({ rate: 8000, channels: 1, bits: 16, sampleFormat: 'float' }, new Uint8Array(2))).toThrow(/32, 64 for float/)
    expect(() => encodeWav({ rate: 8000, channels: 2, bits: 16 }, new Uint8Array(6))).toThrow(/not a whole number of 4-byte frames/)
    const w = WavWriter.open(file('w.wav'), { rate: 8000, channels: 2, bits: 16 })
    expect(() => w.write(new Uint8Array(3))).toThrow(/3 bytes are not a whole number of 4-byte frames/)
    w.close()
    expect(() => w.write(new Uint8Array(4))).toThrow(/is closed/)
  })
})

describe('interoperability with sox', () => {
  const made: [string, string[], { rate: number; channels: number; bits: number; sampleFormat: 'pcm' | 'float'; extensible: boolean }][] = [
    ['16-bit stereo sine', ['-r', '48000', '-c', '2', '-b', '16'], { rate: 48000, channels: 2, bits: 16, sampleFormat: 'pcm', extensible: false }],
    ['8-bit mono', ['-r', '8000', '-c', '1', '-b', '8'], { rate: 8000, channels: 1, bits: 8, sampleFormat: 'pcm', extensible: false }],
    ['24-bit stereo', ['-r', '96000', '-c', '2', '-b', '24'], { rate: 96000, channels: 2, bits: 24, sampleFormat: 'pcm', extensible: true }],
    ['32-bit 6 channels', ['-r', '44100', '-c', '6', '-b', '32'], { rate: 44100, channels: 6, bits: 32, sampleFormat: 'pcm', extensible: true }],
    ['float stereo', ['-r', '48000', '-c', '2', '-b', '32', '-e', 'floating-point'], { rate: 48000, channels: 2, bits: 32, sampleFormat: 'float', extensible: false }],
  ]
  it.each(made)('reads a WAV sox made: %s', (name, args, want) => {
    const p = file(`sox-${name.replace(/\W+/g, '-')}.wav`)
    run('sox', ['-n', ...args, p, 'synth', '0.1', 'sine', '440'])
    const w = readWav(p)
    expect(w.rate).toBe(want.rate)
    expect(w.channels).toBe(want.channels)
    expect(w.bitsPerSample).toBe(want.bits)
    expect(w.sampleFormat).toBe(want.sampleFormat)
    expect(w.formatTag === WAVE_FORMAT_EXTENSIBLE).toBe(want.extensible)
    expect(w.frames).toBe(Math.round(want.rate * 0.1))
    // The same samples as sox's raw output.
    const raw = spawnSync('sox', [p, '-t', 'raw', '-'], { timeout: 30_000 })
    expect(new Uint8Array(raw.stdout)).toEqual(w.data)
  })

  it('a LIST chunk spliced into a file sox made: we skip it, and so does sox', () => {
    const src = file('sox-plain.wav')
    run('sox', ['-n', '-r', '8000', '-c', '1', '-b', '16', src, 'synth', '0.01', 'sine', '440'])
    const w0 = readWav(src)
    const list = chunk('LIST', new TextEncoder().encode('INFOICMT\u0005\u0000\u0000\u0000note\u0000\u0000'))
    const p = file('sox-list.wav')
    writeFileSync(p, riff(chunk('fmt ', fmt16(1, 1, 8000, 16)), list, chunk('data', w0.data)))
    const w = readWav(p)
    expect(w.chunks.map((c) => c.id)).toEqual(['fmt ', 'LIST', 'data'])
    expect(w.data).toEqual(w0.data)
    expect(run('soxi', ['-s', p]).trim()).toBe('80')
  })

  const ours: WavSpec[] = [
    { rate: 48000, channels: 2, bits: 16 },
    { rate: 8000, channels: 1, bits: 8 },
    { rate: 96000, channels: 2, bits: 24 },
    { rate: 44100, channels: 6, bits: 32 },
    { rate: 48000, channels: 3, bits: 24 },
    { rate: 48000, channels: 2, bits: 32, sampleFormat: 'float' },
  ]
  it.each(ours)('sox reads what we wrote: $channels ch, $bits bits $sampleFormat at $rate Hz', (spec) => {
    const p = file(`ours-${spec.channels}-${spec.bits}-${spec.sampleFormat ?? 'pcm'}.wav`)
    const frameBytes = spec.channels * (spec.bits / 8)
    const data = spec.sampleFormat === 'float' ? new Uint8Array(new Float32Array(333 * spec.channels).map((_, i) => Math.sin(i / 10) / 2).buffer) : pattern(333, frameBytes)
    const w = WavWriter.open(p, spec)
    w.write(data)
    w.close()
    const soxi = (flag: string) => run('soxi', [flag, p]).trim()
    expect(soxi('-r')).toBe(String(spec.rate))
    expect(soxi('-c')).toBe(String(spec.channels))
    expect(soxi('-b')).toBe(String(spec.bits))
    expect(soxi('-s')).toBe('333')
    expect(soxi('-e')).toBe(spec.sampleFormat === 'float' ? 'Floating Point PCM' : spec.bits === 8 ? 'Unsigned Integer PCM' : 'Signed Integer PCM')
    const raw = spawnSync('sox', [p, '-t', 'raw', '-'], { timeout: 30_000 })
    expect(raw.status).toBe(0)
    const got = new Uint8Array(raw.stdout)
    if (spec.sampleFormat === 'float') {
      // sox works in 32-bit integers inside: floats come back within a few parts in 2^31.
      const a = new Float32Array(got.buffer, got.byteOffset, got.length / 4)
      const b = new Float32Array(data.buffer, data.byteOffset, data.length / 4)
      expect(a.length).toBe(b.length)
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-6)
    } else expect(got).toEqual(data)
  })
})
