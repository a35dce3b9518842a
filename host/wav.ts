/**
 * Host adapter: RIFF/WAVE files (the Microsoft RIFF specification's WAVE form, and
 * WAVE_FORMAT_EXTENSIBLE), for feeding the sound subsystem's harness and saving what it recorded.
 *
 * readWav() reads integer PCM (format tag 1, 8/16/24/32 bits per sample, any channel count),
 * IEEE float (tag 3, 32/64 bits) and WAVE_FORMAT_EXTENSIBLE (0xFFFE) whose sub-format is one of
 * those two. It skips chunks it does not need (LIST, fact, cue, bext, ...), honours the pad byte
 * after an odd-sized chunk, and ignores bytes after the RIFF form's end. Anything else is a
 * WavFormatError naming the file, the byte offset and the problem: not RIFF, not WAVE, a chunk
 * that runs past the end of the file, no fmt chunk, data before fmt, a compressed format (IMA
 * ADPCM, MS ADPCM, A-law, mu-law, MPEG ...), a block align that does not match the channels and
 * sample size, data that is not whole frames.
 *
 * writeWav() / encodeWav() / WavWriter write integer PCM or float, as WAVE_FORMAT_PCM for up to 2
 * channels of up to 16 bits and as WAVE_FORMAT_EXTENSIBLE otherwise (as Microsoft recommends and
 * sox does); a WavWriter streams the data and patches the header's sizes when it is closed.
 * Samples are little-endian, 8-bit samples unsigned (offset 128), as the format defines.
 */

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'

/** WAVE_FORMAT_PCM. */
export const WAVE_FORMAT_PCM = 0x0001
/** WAVE_FORMAT_IEEE_FLOAT. */
export const WAVE_FORMAT_IEEE_FLOAT = 0x0003
/** WAVE_FORMAT_EXTENSIBLE. */
export const WAVE_FORMAT_EXTENSIBLE = 0xfffe

/** The RIFF limit: chunk sizes are 32-bit. */
const MAX_DATA = 0xffffffff - 36 - 44

/** Names of format tags a reader meets and cannot decode here. */
const COMPRESSED: Readonly<Record<number, string>> = {
  0x0002: 'MS ADPCM',
  0x0006: 'A-law',
  0x0007: 'mu-law',
  0x0011: 'IMA ADPCM',
  0x0031: 'GSM 6.10',
  0x0040: 'G.721 ADPCM',
  0x0050: 'MPEG',
  0x0055: 'MPEG Layer 3',
  0x0092: 'Dolby AC-3 SPDIF',
  0x0161: 'Windows Media Audio',
  0x1610: 'AAC',
  0xf1ac: 'FLAC',
}

/** The sub-format GUIDs' common tail: xxxxxxxx-0000-0010-8000-00aa00389b71. */
const GUID_TAIL = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]

/** A file that is not a WAV file this reader can decode. */
export class WavFormatError extends Error {
  override name = 'WavFormatError'
  readonly file: string
  readonly offset: number
  readonly problem: string

  constructor(file: string, offset: number, problem: string) {
    super(`${file}: byte ${offset}: ${problem}`)
    this.file = file
    this.offset = offset
    this.problem = problem
  }
}

/** A bad argument to the writer (sizes, sample format, data that is not whole frames, a closed writer). */
export class WavWriterError extends RangeError {
  override name = 'WavWriterError'
}

/** What readWav returns. */
export interface WavFile {
  /** Frames per second. */
  rate: number
  channels: number
  /** Bits per sample in the file (the container: 8, 16, 24, 32, 64). */
  bitsPerSample: number
  /** Significant bits (WAVE_FORMAT_EXTENSIBLE's wValidBitsPerSample; else bitsPerSample). */
  validBitsPerSample: number
  /** 'pcm' (integer; 8-bit unsigned, wider signed) or 'float'. */
  sampleFormat: 'pcm' | 'float'
  /** The fmt chunk's format tag (1, 3 or 0xFFFE). */
  formatTag: number
  /** WAVE_FORMAT_EXTENSIBLE's dwChannelMask (0 if none). */
  channelMask: number
  /** Bytes per frame (nBlockAlign). */
  blockAlign: number
  /** The sample data: frames x blockAlign bytes, little-endian, interleaved. */
  data: Uint8Array
  frames: number
  /** Every chunk of the file: id, offset of its header, size. */
  chunks: { id: string; offset: number; size: number }[]
  /** Oddities that did not stop the read (a wrong byte rate, bytes after the RIFF form). */
  warnings: string[]
}

/** What the writer needs to know. */
export interface WavSpec {
  rate: number
  channels: number
  /** Bits per sample: 8, 16, 24 or 32 (pcm); 32 or 64 (float). */
  bits: number
  /** Default 'pcm'. */
  sampleFormat?: 'pcm' | 'float'
  /** Write WAVE_FORMAT_EXTENSIBLE (default: for more than 2 channels or more than 16 bits). */
  extensible?: boolean
  /** dwChannelMask for an extensible header (default: the standard layout for the channel count). */
  channelMask?: number
}

/** The standard speaker masks (KSAUDIO_SPEAKER_*): mono, stereo, ... 7.1. */
function defaultMask(channels: number): number {
  const masks = [0, 0x4, 0x3, 0x7, 0x33, 0x37, 0x3f, 0x13f, 0x63f]
  return masks[channels] ?? 0
}

function fourcc(b: Uint8Array, off: number): string {
  return String.fromCharCode(b[off]!, b[off + 1]!, b[off + 2]!, b[off + 3]!)
}

function printable(id: string): string {
  if (/^[\x20-\x7e]{4}$/.test(id)) return `'${id}'`
  let hex = '0x'
  for (let i = 0; i < id.length; i++) hex += id.charCodeAt(i).toString(16).padStart(2, '0')
  return hex
}

/**
 * Reads a WAV file (a path, or the file's bytes with an optional name for messages). Throws a
 * WavFormatError for anything it cannot decode; an unreadable path throws the file system's error.
 */
export function readWav(pathOrBytes: string | Uint8Array, name?: string): WavFile {
  if (typeof pathOrBytes === 'string') {
    const buf = readFileSync(pathOrBytes)
    return parseWav(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), name ?? pathOrBytes)
  }
  if (!(pathOrBytes instanceof Uint8Array)) throw new TypeError('readWav: argument must be a path or a Uint8Array')
  return parseWav(pathOrBytes, name ?? '<buffer>')
}

/** Parses a WAV file's bytes; `file` names it in errors. */
export function parseWav(b: Uint8Array, file = '<buffer>'): WavFile {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const fail = (offset: number, problem: string): never => {
    throw new WavFormatError(file, offset, problem)
  }
  if (b.length < 12) fail(0, `too short for a RIFF header (${b.length} bytes, need 12)`)
  const riff = fourcc(b, 0)
  if (riff === 'RF64') fail(0, 'RF64 (64-bit RIFF) files are not supported')
  if (riff === 'RIFX') fail(0, "big-endian RIFX files are not supported (only little-endian 'RIFF')")
  if (riff !== 'RIFF') fail(0, `not a RIFF file (starts with ${printable(riff)}, expected 'RIFF')`)
  const riffSize = v.getUint32(4, true)
  const form = fourcc(b, 8)
  if (form !== 'WAVE') fail(8, `not a WAVE file (RIFF form type ${printable(form)}, expected 'WAVE')`)
  const warnings: string[] = []
  let end = riffSize + 8
  if (end > b.length) fail(4, `truncated: the RIFF header says ${end} bytes, the file has ${b.length}`)
  if (end < b.length) warnings.push(`${b.length - end} bytes after the end of the RIFF form (ignored)`)
  if (end < 12) fail(4, `impossible RIFF size ${riffSize}`)
  end = Math.min(end, b.length)
  const chunks: WavFile['chunks'] = []
  let fmt: Omit<WavFile, 'data' | 'frames' | 'chunks' | 'warnings'> | null = null
  let fmtOffset = -1
  let data: Uint8Array | null = null
  let off = 12
  while (off < end) {
    if (off + 8 > end) fail(off, `truncated chunk header (${end - off} bytes left, need 8)`)
    const id = fourcc(b, off)
    const size = v.getUint32(off + 4, true)
    const body = off + 8
    if (body + size > end) fail(off, `chunk ${printable(id)} of ${size} bytes runs past the end of the file (${end - body} bytes left)`)
    chunks.push({ id, offset: off, size })
    if (id === 'fmt ') {
      if (fmt !== null) fail(off, `a second fmt chunk (the first is at byte ${fmtOffset})`)
      fmt = parseFmt(v, body, size, fail, warnings)
      fmtOffset = off
    } else if (id === 'data') {
      if (fmt === null) fail(off, 'data chunk before the fmt chunk')
      if (data !== null) fail(off, 'a second data chunk')
      const f = fmt!
      if (size % f.blockAlign !== 0) fail(off, `data chunk of ${size} bytes is not a whole number of ${f.blockAlign}-byte frames`)
      data = b.subarray(body, body + size)
    }
    // Chunks are padded to an even size; a missing pad byte at the very end is tolerated.
    off = body + size + (size & 1)
  }
  if (fmt === null) fail(12, 'no fmt chunk')
  if (data === null) fail(fmtOffset, 'no data chunk')
  const f = fmt!
  return { ...f, data: data!, frames: data!.length / f.blockAlign, chunks, warnings }
}

function parseFmt(
  v: DataView,
  at: number,
  size: number,
  fail: (offset: number, problem: string) => never,
  warnings: string[],
): Omit<WavFile, 'data' | 'frames' | 'chunks' | 'warnings'> {
  if (size < 16) fail(at - 8, `fmt chunk of ${size} bytes is too short (need 16)`)
  const formatTag = v.getUint16(at, true)
  const channels = v.getUint16(at + 2, true)
  const rate = v.getUint32(at + 4, true)
  const byteRate = v.getUint32(at + 8, true)
  const blockAlign = v.getUint16(at + 12, true)
  const bits = v.getUint16(at + 14, true)
  let validBits = bits
  let channelMask = 0
  let tag = formatTag
  if (formatTag === WAVE_FORMAT_EXTENSIBLE) {
    if (size < 40) fail(at - 8, `WAVE_FORMAT_EXTENSIBLE fmt chunk of ${size} bytes is too short (need 40)`)
    const cbSize = v.getUint16(at + 16, true)
    if (cbSize < 22) fail(at + 16, `WAVE_FORMAT_EXTENSIBLE cbSize ${cbSize} is too small (need 22)`)
    validBits = v.getUint16(at + 18, true)
    channelMask = v.getUint32(at + 20, true)
    const guid = new Uint8Array(v.buffer, v.byteOffset + at + 24, 16)
    const sub = guid[0]! | (guid[1]! << 8)
    const tailOk = guid[2] === 0 && guid[3] === 0 && GUID_TAIL.every((x, i) => guid[4 + i] === x)
    if (!tailOk) fail(at + 24, `WAVE_FORMAT_EXTENSIBLE sub-format GUID ${[...guid].map((x) => x.toString(16).padStart(2, '0')).join('')} is not a known one`)
    if (sub !== WAVE_FORMAT_PCM && sub !== WAVE_FORMAT_IEEE_FLOAT) {
      fail(at + 24, `unsupported WAVE_FORMAT_EXTENSIBLE sub-format 0x${sub.toString(16).padStart(4, '0')}${COMPRESSED[sub] !== undefined ? ` (${COMPRESSED[sub]})` : ''}: only PCM and IEEE float are supported`)
    }
    tag = sub
    if (validBits === 0) validBits = bits
    if (validBits > bits) fail(at + 18, `wValidBitsPerSample ${validBits} exceeds wBitsPerSample ${bits}`)
  } else if (formatTag !== WAVE_FORMAT_PCM && formatTag !== WAVE_FORMAT_IEEE_FLOAT) {
    const name = COMPRESSED[formatTag]
    fail(at, `unsupported format tag 0x${formatTag.toString(16).padStart(4, '0')}${name !== undefined ? ` (${name}, a compressed format)` : ''}: only PCM (1), IEEE float (3) and WAVE_FORMAT_EXTENSIBLE (0xFFFE) are supported`)
  }
  if (channels === 0) fail(at + 2, 'zero channels')
  if (rate === 0) fail(at + 4, 'a sample rate of 0')
  const sampleFormat = tag === WAVE_FORMAT_IEEE_FLOAT ? 'float' : 'pcm'
  if (sampleFormat === 'pcm' && ![8, 16, 24, 32].includes(bits)) fail(at + 14, `unsupported bits per sample ${bits} for PCM (8, 16, 24 or 32)`)
  if (sampleFormat === 'float' && bits !== 32 && bits !== 64) fail(at + 14, `unsupported bits per sample ${bits} for IEEE float (32 or 64)`)
  const expect = channels * (bits / 8)
  if (blockAlign !== expect) fail(at + 12, `block align ${blockAlign} is inconsistent with ${channels} channel(s) of ${bits} bits (expected ${expect})`)
  if (byteRate !== rate * blockAlign) warnings.push(`byte rate ${byteRate} is not sample rate x block align (${rate * blockAlign})`)
  return { rate, channels, bitsPerSample: bits, validBitsPerSample: validBits, sampleFormat, formatTag, channelMask, blockAlign }
}

function checkSpec(fn: string, spec: WavSpec): Required<WavSpec> {
  if (spec === null || typeof spec !== 'object') throw new WavWriterError(`${fn}: spec must be an object`)
  const { rate, channels, bits } = spec
  const sampleFormat = spec.sampleFormat ?? 'pcm'
  if (!Number.isInteger(rate) || rate < 1 || rate > 0xffffffff) throw new WavWriterError(`${fn}: spec.rate must be a positive integer, got ${String(rate)}`)
  if (!Number.isInteger(channels) || channels < 1 || channels > 0xffff) throw new WavWriterError(`${fn}: spec.channels must be from 1 to 65535, got ${String(channels)}`)
  if (sampleFormat !== 'pcm' && sampleFormat !== 'float') throw new WavWriterError(`${fn}: spec.sampleFormat must be 'pcm' or 'float', got ${String(sampleFormat)}`)
  const ok = sampleFormat === 'pcm' ? [8, 16, 24, 32] : [32, 64]
  if (!ok.includes(bits)) throw new WavWriterError(`${fn}: spec.bits must be ${ok.join(', ')} for ${sampleFormat}, got ${String(bits)}`)
  if (channels * (bits / 8) > 0xffff) throw new WavWriterError(`${fn}: a frame of ${channels} x ${bits} bits does not fit a 16-bit block align`)
  const extensible = spec.extensible ?? (channels > 2 || bits > 16)
  const channelMask = spec.channelMask ?? defaultMask(channels)
  if (!Number.isInteger(channelMask) || channelMask < 0 || channelMask > 0xffffffff) throw new WavWriterError(`${fn}: spec.channelMask must be a 32-bit mask`)
  return { rate, channels, bits, sampleFormat, extensible, channelMask }
}

/** The header (RIFF, fmt and the data chunk's header) for dataBytes of data. */
function header(s: Required<WavSpec>, dataBytes: number): Uint8Array {
  const fmtSize = s.extensible ? 40 : s.sampleFormat === 'float' ? 18 : 16
  // A float file carries a fact chunk (dwSampleLength), as the specification asks of non-PCM data.
  const fact = s.sampleFormat === 'float'
  const len = 12 + 8 + fmtSize + (fact ? 12 : 0) + 8
  const h = new Uint8Array(len)
  const v = new DataView(h.buffer)
  const ascii = (off: number, text: string) => {
    for (let i = 0; i < 4; i++) h[off + i] = text.charCodeAt(i)
  }
  const blockAlign = s.channels * (s.bits / 8)
  ascii(0, 'RIFF')
  v.setUint32(4, len - 8 + dataBytes + (dataBytes & 1), true)
  ascii(8, 'WAVE')
  ascii(12, 'fmt ')
  v.setUint32(16, fmtSize, true)
  const tag = s.sampleFormat === 'float' ? WAVE_FORMAT_IEEE_FLOAT : WAVE_FORMAT_PCM
  v.setUint16(20, s.extensible ? WAVE_FORMAT_EXTENSIBLE : tag, true)
  v.setUint16(22, s.channels, true)
  v.setUint32(24, s.rate, true)
  v.setUint32(28, s.rate * blockAlign, true)
  v.setUint16(32, blockAlign, true)
  v.setUint16(34, s.bits, true)
  let off = 36
  if (s.extensible) {
    v.setUint16(36, 22, true)
    v.setUint16(38, s.bits, true)
    v.setUint32(40, s.channelMask, true)
    v.setUint16(44, tag, true)
    v.setUint16(46, 0, true)
    h.set(GUID_TAIL, 48)
    off = 60
  } else if (fmtSize === 18) {
    v.setUint16(36, 0, true)
    off = 38
  }
  if (fact) {
    ascii(off, 'fact')
    v.setUint32(off + 4, 4, true)
    v.setUint32(off + 8, Math.floor(dataBytes / blockAlign), true)
    off += 12
  }
  ascii(off, 'data')
  v.setUint32(off + 4, dataBytes, true)
  return h
}

/** The bytes of a whole WAV file holding data (whole frames). */
export function encodeWav(spec: WavSpec, data: Uint8Array): Uint8Array {
  const s = checkSpec('encodeWav', spec)
  if (!(data instanceof Uint8Array)) throw new WavWriterError('encodeWav: data must be a Uint8Array')
  const blockAlign = s.channels * (s.bits / 8)
  if (data.length % blockAlign !== 0) throw new WavWriterError(`encodeWav: data is ${data.length} bytes, not a whole number of ${blockAlign}-byte frames`)
  if (data.length > MAX_DATA) throw new WavWriterError(`encodeWav: ${data.length} bytes of data do not fit a RIFF file`)
  const h = header(s, data.length)
  const out = new Uint8Array(h.length + data.length + (data.length & 1))
  out.set(h)
  out.set(data, h.length)
  return out
}

/** Writes a WAV file holding data (whole frames of the spec's format). */
export function writeWav(path: string, spec: WavSpec, data: Uint8Array): void {
  const bytes = encodeWav(spec, data)
  const fd = openSync(path, 'w')
  try {
    let off = 0
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off)
  } finally {
    closeSync(fd)
  }
}

/** A WAV file written as the data comes: the header's sizes are patched by close(). */
export class WavWriter {
  readonly path: string
  readonly spec: Readonly<Required<WavSpec>>
  #fd: number | null
  #bytes = 0
  readonly #headerLen: number

  private constructor(path: string, fd: number, spec: Required<WavSpec>, headerLen: number) {
    this.path = path
    this.#fd = fd
    this.spec = spec
    this.#headerLen = headerLen
  }

  /** Creates (or truncates) path and writes a header with zero sizes. */
  static open(path: string, spec: WavSpec): WavWriter {
    const s = checkSpec('WavWriter.open', spec)
    const h = header(s, 0)
    const fd = openSync(path, 'w')
    writeSync(fd, h, 0, h.length, 0)
    return new WavWriter(path, fd, s, h.length)
  }

  /** Frames written so far. */
  get frames(): number {
    return this.#bytes / (this.spec.channels * (this.spec.bits / 8))
  }

  /** Appends whole frames. */
  write(data: Uint8Array): void {
    if (this.#fd === null) throw new WavWriterError(`WavWriter.write: ${this.path} is closed`)
    if (!(data instanceof Uint8Array)) throw new WavWriterError('WavWriter.write: data must be a Uint8Array')
    const blockAlign = this.spec.channels * (this.spec.bits / 8)
    if (data.length % blockAlign !== 0) throw new WavWriterError(`WavWriter.write: ${data.length} bytes are not a whole number of ${blockAlign}-byte frames`)
    if (this.#bytes + data.length > MAX_DATA) throw new WavWriterError(`WavWriter.write: ${this.path} would exceed the RIFF size limit`)
    let off = 0
    while (off < data.length) off += writeSync(this.#fd, data, off, data.length - off, this.#headerLen + this.#bytes + off)
    this.#bytes += data.length
  }

  /** Writes the pad byte if needed, patches the RIFF, fact and data sizes, and closes the file. */
  close(): void {
    if (this.#fd === null) return
    const fd = this.#fd
    this.#fd = null
    try {
      if (this.#bytes & 1) writeSync(fd, new Uint8Array(1), 0, 1, this.#headerLen + this.#bytes)
      const h = header(this.spec, this.#bytes)
      writeSync(fd, h, 0, h.length, 0)
    } finally {
      closeSync(fd)
    }
  }
}

/**
 * The ALSA format name of a WAV file's samples: 'U8', 'S16_LE', 'S24_3LE' (packed 24-bit),
 * 'S32_LE', 'FLOAT_LE', 'FLOAT64_LE' — what to pass as the harness's `format` to play the data.
 */
export function wavPcmFormat(w: Pick<WavFile, 'bitsPerSample' | 'sampleFormat'>): string {
  if (w.sampleFormat === 'float') return w.bitsPerSample === 64 ? 'FLOAT64_LE' : 'FLOAT_LE'
  switch (w.bitsPerSample) {
    case 8:
      return 'U8'
    case 16:
      return 'S16_LE'
    case 24:
      return 'S24_3LE'
    default:
      return 'S32_LE'
  }
}
