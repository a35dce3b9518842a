/**
 * Property: corrupt host files (DESIGN.md §7 "corrupt WAV/pcap/image files get a clear error
 * naming the argument; never corrupts emulator state").
 *
 * Valid WAV files (host/wav.ts), pcap files (host/pcap.ts: readPcap; little- and big-endian,
 * micro- and nanosecond files) and raw disk images (host/disk-image.ts) are written to a temp
 * dir, then mutated: bytes overwritten, the file truncated, junk appended. Reading them either
 * succeeds — and then the data round-trips wherever the mutation left the format intact — or
 * throws the module's typed error naming the file (WavFormatError, PcapFormatError,
 * BlockBackendError); never a RangeError or TypeError from inside, never a hang.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { BlockBackendError } from '../../devices/block/backend.js'
import { DISK_IMAGE_SECTOR, DiskImageBackend } from '../../host/disk-image.js'
import { AudioWavError, WavFileSource } from '../../host/audio-wav.js'
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapFormatError, PcapWriter, readPcap } from '../../host/pcap.js'
import { encodeWav, readWav, WavFormatError } from '../../host/wav.js'
import { runs } from '../helpers/property.js'

const dir = mkdtempSync(join(tmpdir(), 'dmalab-prop-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let fileNo = 0
const tempPath = (ext: string) => join(dir, `f${++fileNo}.${ext}`)

/** A corruption: overwrite bytes, truncate, or append junk. */
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.nat(255) }),
  fc.record({ kind: fc.constant('set32' as const), at: fc.nat(), value: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xfffffffe) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 40 }) }),
)
type Mutation = typeof mutationArb extends fc.Arbitrary<infer T> ? T : never

/** Applies the mutations; returns the bytes and the positions touched (null if the length changed). */
function mutate(orig: Uint8Array, ms: readonly Mutation[]): { bytes: Uint8Array; touched: Set<number> | null } {
  let b = orig.slice()
  let touched: Set<number> | null = new Set()
  for (const m of ms) {
    if (m.kind === 'set' || m.kind === 'set32') {
      if (b.length === 0) continue
      const at = m.at % b.length
      const width = m.kind === 'set' ? 1 : Math.min(4, b.length - at)
      for (let i = 0; i < width; i++) {
        const v = m.kind === 'set' ? m.value : (m.value >>> (8 * i)) & 0xff
        if (b[at + i] !== v) touched?.add(at + i)
        b[at + i] = v
      }
    } else if (m.kind === 'truncate') {
      b = b.slice(0, m.at % (b.length + 1))
      if (b.length !== orig.length) touched = null
    } else {
      const n = new Uint8Array(b.length + m.bytes.length)
      n.set(b)
      n.set(m.bytes, b.length)
      b = n
      if (m.bytes.length > 0) touched = null
    }
  }
  return { bytes: b, touched }
}

/** Runs fn and fails unless it finishes quickly: a parser of a bounded file must not hang. */
function timed<T>(what: string, fn: () => T): T {
  const t0 = performance.now()
  try {
    return fn()
  } finally {
    expect(performance.now() - t0, `${what} took too long`).toBeLessThan(2000)
  }
}

/** The error must be the module's own, naming the file. */
function expectTyped(e: unknown, type: abstract new (...a: never[]) => Error, path: string): void {
  expect(e instanceof type, `expected a ${type.name}, got ${String(e)}`).toBe(true)
  expect((e as Error).message).toContain(path)
}

// ---------------------------------------------------------------------- WAV

const wavSpecArb = fc.oneof(
  fc.record({ sampleFormat: fc.constant('pcm' as const), bits: fc.constantFrom(8, 16, 24, 32) }),
  fc.record({ sampleFormat: fc.constant('float' as const), bits: fc.constantFrom(32, 64) }),
).chain((f) =>
  fc.record({
    rate: fc.constantFrom(8000, 44_100, 48_000, 96_000),
    channels: fc.integer({ min: 1, max: 6 }),
    bits: fc.constant(f.bits),
    sampleFormat: fc.constant(f.sampleFormat),
    extensible: fc.option(fc.boolean(), { nil: undefined }),
    frames: fc.nat(40),
    seed: fc.nat(255),
  }),
)

describe('property: corrupt WAV files', () => {
  it('are read (data intact where the mutation spared the format) or rejected with a WavFormatError naming the file', () => {
    fc.assert(
      fc.property(wavSpecArb, fc.array(mutationArb, { maxLength: 4 }), (s, ms) => {
        const { frames, seed, extensible, ...rest } = s
        const spec = extensible === undefined ? rest : { ...rest, extensible }
        const blockAlign = spec.channels * (spec.bits / 8)
        const data = new Uint8Array(frames * blockAlign).map((_, i) => (i * 7 + seed) & 0xff)
        const orig = encodeWav(spec, data)
        const headerLen = orig.length - data.length - (data.length & 1)
        const { bytes, touched } = mutate(orig, ms)
        const path = tempPath('wav')
        writeFileSync(path, bytes)
        let wav: ReturnType<typeof readWav>
        try {
          wav = timed('readWav', () => readWav(path))
        } catch (e) {
          expectTyped(e, WavFormatError, path)
          expect((e as WavFormatError).file).toBe(path)
          return
        }
        // The sound harness's source takes the same file, or refuses it with its own typed error.
        try {
          const src = new WavFileSource(path)
          expect(src.wav.data.length).toBe(wav.data.length)
        } catch (e) {
          expectTyped(e, AudioWavError, path)
        }
        expect(wav.data.length % wav.blockAlign).toBe(0)
        expect(wav.frames * wav.blockAlign).toBe(wav.data.length)
        // Only sample bytes changed (or nothing): the format and the (mutated) samples round-trip.
        if (touched !== null && [...touched].every((i) => i >= headerLen && i < headerLen + data.length)) {
          expect(wav).toMatchObject({ rate: spec.rate, channels: spec.channels, bitsPerSample: spec.bits, sampleFormat: spec.sampleFormat, frames })
          expect(Buffer.from(wav.data).equals(Buffer.from(bytes.subarray(headerLen, headerLen + data.length)))).toBe(true)
        }
      }),
      runs(300),
    )
  })
})

// ---------------------------------------------------------------------- pcap

interface PcapRec {
  seconds: number
  frac: number
  data: Uint8Array
  extra: number
}
const pcapArb = fc.record({
  little: fc.boolean(),
  ns: fc.boolean(),
  snaplen: fc.constantFrom(0, 64, 65535),
  records: fc.array(
    fc.record({ seconds: fc.nat(), frac: fc.nat(999_999), data: fc.uint8Array({ maxLength: 64 }), extra: fc.nat(100) }),
    { maxLength: 5 },
  ),
})

/** A classic pcap file, as tcpdump writes it in either byte order. */
function encodePcap(f: { little: boolean; ns: boolean; snaplen: number; records: PcapRec[] }): Uint8Array {
  const len = 24 + f.records.reduce((n, r) => n + 16 + r.data.length, 0)
  const b = new Uint8Array(len)
  const v = new DataView(b.buffer)
  v.setUint32(0, f.ns ? PCAP_MAGIC_NS : PCAP_MAGIC_US, f.little)
  v.setUint16(4, 2, f.little)
  v.setUint16(6, 4, f.little)
  v.setUint32(16, f.snaplen, f.little)
  v.setUint32(20, 1, f.little)
  let off = 24
  for (const r of f.records) {
    v.setUint32(off, r.seconds, f.little)
    v.setUint32(off + 4, r.frac, f.little)
    v.setUint32(off + 8, r.data.length, f.little)
    v.setUint32(off + 12, r.data.length + r.extra, f.little)
    b.set(r.data, off + 16)
    off += 16 + r.data.length
  }
  return b
}

describe('property: corrupt pcap files', () => {
  it('are read (records intact where the mutation spared the framing) or rejected with a PcapFormatError naming the file', () => {
    fc.assert(
      fc.property(pcapArb, fc.array(mutationArb, { maxLength: 4 }), (f0, ms) => {
        const f = { ...f0, records: f0.records.map((r) => ({ ...r, data: f0.snaplen === 64 ? r.data.subarray(0, 64) : r.data })) }
        const orig = encodePcap(f)
        const { bytes, touched } = mutate(orig, ms)
        const path = tempPath('pcap')
        writeFileSync(path, bytes)
        let file: ReturnType<typeof readPcap>
        try {
          file = timed('readPcap', () => readPcap(path))
        } catch (e) {
          expectTyped(e, PcapFormatError, path)
          expect((e as PcapFormatError).file).toBe(path)
          return
        }
        for (const r of file.records) expect(r.data.length).toBeLessThanOrEqual(r.origLen)
        // Only frame bytes changed (or nothing): every record round-trips with the mutated bytes.
        const dataBytes = new Set<number>()
        let off = 24
        for (const r of f.records) {
          for (let i = 0; i < r.data.length; i++) dataBytes.add(off + 16 + i)
          off += 16 + r.data.length
        }
        if (touched !== null && [...touched].every((i) => dataBytes.has(i))) {
          expect(file).toMatchObject({ resolution: f.ns ? 'ns' : 'us', byteOrder: f.little ? 'little' : 'big', snaplen: f.snaplen, linkType: 1 })
          expect(file.records.length).toBe(f.records.length)
          let at = 24
          f.records.forEach((r, i) => {
            const got = file.records[i]!
            expect(got.seconds).toBe(r.seconds)
            expect(got.nanoseconds).toBe(r.frac * (f.ns ? 1 : 1000))
            expect(got.origLen).toBe(r.data.length + r.extra)
            expect(Buffer.from(got.data).equals(Buffer.from(bytes.subarray(at + 16, at + 16 + r.data.length)))).toBe(true)
            at += 16 + r.data.length
          })
        }
      }),
      runs(300),
    )
  })
})

describe('property: pcap files the writer makes', () => {
  it('read back frame for frame (cut to the snaplen, original length and time kept)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 128 }),
        fc.array(fc.record({ frame: fc.uint8Array({ maxLength: 200 }), timeNs: fc.integer({ min: 0, max: 2 ** 40 }) }), { maxLength: 6 }),
        (snaplen, recs) => {
          const path = tempPath('pcap')
          const w = PcapWriter.open(path, { snaplen })
          for (const r of recs) w.write(r.frame, r.timeNs)
          w.close()
          const f = readPcap(path)
          expect(f).toMatchObject({ resolution: 'ns', byteOrder: 'little', snaplen, linkType: 1 })
          expect(f.records.map((r) => [r.timeNs, r.origLen, [...r.data]])).toEqual(recs.map((r) => [r.timeNs, r.frame.length, [...r.frame.subarray(0, snaplen)]]))
        },
      ),
      runs(50),
    )
  })
})

// ---------------------------------------------------------------------- disk images

describe('property: corrupt disk images', () => {
  it('a raw image of whole sectors opens and reads back its bytes; any other size is a BlockBackendError naming the file', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(mutationArb, { maxLength: 4 }), fc.boolean(), fc.nat(255), (sectors, ms, readOnly, seed) => {
        const path = tempPath('img')
        const img = DiskImageBackend.create(path, sectors * DISK_IMAGE_SECTOR)
        const data = new Uint8Array(img.size).map((_, i) => (i * 13 + seed) & 0xff)
        img.write(0, data, 0, data.length)
        img.close()
        const { bytes } = mutate(new Uint8Array(readFileSync(path)), ms)
        writeFileSync(path, bytes)
        let back: DiskImageBackend
        try {
          back = timed('DiskImageBackend.open', () => DiskImageBackend.open(path, { readOnly }))
        } catch (e) {
          expectTyped(e, BlockBackendError, path)
          expect(bytes.length === 0 || bytes.length % DISK_IMAGE_SECTOR !== 0).toBe(true)
          return
        }
        try {
          expect(bytes.length % DISK_IMAGE_SECTOR).toBe(0)
          expect(back.size).toBe(bytes.length)
          const got = new Uint8Array(back.size)
          back.read(0, got, 0, got.length)
          expect(Buffer.from(got).equals(Buffer.from(bytes))).toBe(true)
          // Out-of-range requests are typed errors too.
          expect(() => back.read(back.size - 1, got, 0, 2)).toThrow(BlockBackendError)
          if (readOnly) expect(() => back.write(0, got, 0, 1)).toThrow(BlockBackendError)
        } finally {
          back.close()
        }
      }),
      runs(100),
    )
  })

  it('an image truncated behind an open backend reads the missing part as zeros', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(), fc.nat(), fc.nat(), (sectors, cut, from, len) => {
        const path = tempPath('img')
        const img = DiskImageBackend.create(path, sectors * DISK_IMAGE_SECTOR)
        try {
          const data = new Uint8Array(img.size).fill(0xa5)
          img.write(0, data, 0, data.length)
          const newLen = cut % (img.size + 1)
          truncateSync(path, newLen)
          const start = from % img.size
          const n = len % (img.size - start + 1)
          const got = new Uint8Array(n).fill(0x11)
          timed('read', () => img.read(start, got, 0, n))
          for (let i = 0; i < n; i++) expect(got[i]).toBe(start + i < newLen ? 0xa5 : 0)
        } finally {
          img.close()
        }
      }),
      runs(60),
    )
  })
})
