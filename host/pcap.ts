/**
 * Host adapter: captures of a Wire as classic pcap files that Wireshark, tshark and tcpdump open
 * (https://www.tcpdump.org/manpages/pcap-savefile.5.html, draft-ietf-opsawg-pcap).
 *
 * Written files use nanosecond timestamps (magic 0xa1b23c4d), version 2.4, snaplen 65535 and
 * LINKTYPE_ETHERNET, in little-endian byte order; records are buffered (one write per 1 MiB, not one
 * per frame). Timestamps are the emulator's virtual time (0 = boot), the sender's clock of each
 * frame: with two systems on two clocks, records may be out of time order.
 *
 * readPcap() reads microsecond and nanosecond files of either byte order and rejects corrupt ones
 * with a PcapFormatError naming the file, the byte offset and what is wrong.
 */

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import type { Wire } from '../devices/net/wire.js'

export const PCAP_MAGIC_US = 0xa1b2c3d4
export const PCAP_MAGIC_NS = 0xa1b23c4d
export const PCAP_VERSION_MAJOR = 2
export const PCAP_VERSION_MINOR = 4
export const PCAP_SNAPLEN = 65535
export const LINKTYPE_ETHERNET = 1
export const PCAP_GLOBAL_HEADER_LEN = 24
export const PCAP_RECORD_HEADER_LEN = 16
/** The largest record readPcap accepts (tcpdump's largest snaplen, 256 KiB). */
export const PCAP_MAX_RECORD = 256 * 1024

const BUFFER_SIZE = 1 << 20

/** A capture file that is not a valid classic pcap file. */
export class PcapFormatError extends Error {
  override name = 'PcapFormatError'
  readonly file: string
  readonly offset: number

  constructor(file: string, offset: number, what: string) {
    super(`${file}: byte ${offset}: ${what}`)
    this.file = file
    this.offset = offset
  }
}

/** The writer used wrongly (after close, a negative time). */
export class PcapWriterError extends RangeError {
  override name = 'PcapWriterError'
}

export interface PcapWriterOptions {
  /** Bytes kept of each frame (default 65535); the record keeps the original length. */
  readonly snaplen?: number
  /** Default LINKTYPE_ETHERNET. */
  readonly linkType?: number
}

export class PcapWriter {
  readonly path: string
  readonly snaplen: number
  #fd: number | null
  readonly #buf = new Uint8Array(BUFFER_SIZE)
  readonly #view = new DataView(this.#buf.buffer)
  #used = 0
  #records = 0

  private constructor(path: string, fd: number, snaplen: number, linkType: number) {
    this.path = path
    this.#fd = fd
    this.snaplen = snaplen
    const v = this.#view
    v.setUint32(0, PCAP_MAGIC_NS, true)
    v.setUint16(4, PCAP_VERSION_MAJOR, true)
    v.setUint16(6, PCAP_VERSION_MINOR, true)
    v.setInt32(8, 0, true) // thiszone
    v.setUint32(12, 0, true) // sigfigs
    v.setUint32(16, snaplen, true)
    v.setUint32(20, linkType, true)
    this.#used = PCAP_GLOBAL_HEADER_LEN
  }

  /** Creates (or truncates) `path` and writes the global header. */
  static open(path: string, options: PcapWriterOptions = {}): PcapWriter {
    const { snaplen = PCAP_SNAPLEN, linkType = LINKTYPE_ETHERNET } = options
    if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > PCAP_MAX_RECORD) {
      throw new PcapWriterError(`PcapWriter.open(${path}): snaplen must be an integer in 1..${PCAP_MAX_RECORD}, got ${snaplen}`)
    }
    if (!Number.isInteger(linkType) || linkType < 0 || linkType > 0xffff) {
      throw new PcapWriterError(`PcapWriter.open(${path}): linkType must be a 16-bit integer, got ${linkType}`)
    }
    const writer = new PcapWriter(path, openSync(path, 'w'), snaplen, linkType)
    writer.flush()
    return writer
  }

  /** Records written so far. */
  get records(): number {
    return this.#records
  }

  get closed(): boolean {
    return this.#fd === null
  }

  /** Appends a record: `frame` (cut to snaplen) at `timeNs` of virtual time (fractions dropped). */
  write(frame: Uint8Array, timeNs: number): void {
    if (this.#fd === null) throw new PcapWriterError(`PcapWriter ${this.path}: write() after close()`)
    if (!(timeNs >= 0) || !Number.isFinite(timeNs)) {
      throw new PcapWriterError(`PcapWriter ${this.path}: write(frame, timeNs): timeNs must be a finite time >= 0, got ${timeNs}`)
    }
    const incl = Math.min(frame.length, this.snaplen)
    if (this.#used + PCAP_RECORD_HEADER_LEN + incl > BUFFER_SIZE) this.flush()
    const ns = Math.floor(timeNs)
    const sec = Math.floor(ns / 1e9)
    const v = this.#view
    const o = this.#used
    v.setUint32(o, sec, true)
    v.setUint32(o + 4, ns - sec * 1e9, true)
    v.setUint32(o + 8, incl, true)
    v.setUint32(o + 12, frame.length, true)
    this.#buf.set(frame.subarray(0, incl), o + PCAP_RECORD_HEADER_LEN)
    this.#used = o + PCAP_RECORD_HEADER_LEN + incl
    this.#records++
  }

  /** Writes the buffered records to the file. */
  flush(): void {
    if (this.#fd === null || this.#used === 0) return
    let off = 0
    while (off < this.#used) off += writeSync(this.#fd, this.#buf, off, this.#used - off)
    this.#used = 0
  }

  /** Flushes and closes the file (a second close does nothing). */
  close(): void {
    if (this.#fd === null) return
    try {
      this.flush()
    } finally {
      closeSync(this.#fd)
      this.#fd = null
    }
  }
}

export interface Capture {
  readonly path: string
  /** Frames captured so far. */
  readonly frames: number
  /** Detaches from the wire and closes the file. */
  stop(): void
}

/** Captures every frame put on `wire` into the pcap file `path` until stop(). */
export function capture(wire: Wire, path: string, options: PcapWriterOptions = {}): Capture {
  const writer = PcapWriter.open(path, options)
  const detach = wire.onFrame((frame, timeNs) => {
    writer.write(frame, timeNs)
  })
  return {
    path,
    get frames() {
      return writer.records
    },
    stop() {
      detach()
      writer.close()
    },
  }
}

export interface PcapRecord {
  /** Virtual (or capture) time in ns: exact below 2^53 ns (104 days); see seconds/nanoseconds. */
  readonly timeNs: number
  readonly seconds: number
  readonly nanoseconds: number
  /** The frame's length on the wire; `data` may be shorter (snaplen). */
  readonly origLen: number
  readonly data: Uint8Array
}

export interface PcapFile {
  readonly resolution: 'us' | 'ns'
  readonly byteOrder: 'little' | 'big'
  readonly versionMajor: number
  readonly versionMinor: number
  readonly snaplen: number
  readonly linkType: number
  readonly records: PcapRecord[]
}

/**
 * Reads a classic pcap file (a path, or its bytes; `name` is the file named in errors for bytes).
 * Throws PcapFormatError on a bad magic, a truncated header or record, a record longer than the
 * snaplen or PCAP_MAX_RECORD, a record longer than its original length or a timestamp fraction
 * out of range.
 */
export function readPcap(input: string | Uint8Array, name?: string): PcapFile {
  const file = typeof input === 'string' ? input : (name ?? '<pcap bytes>')
  const bytes = typeof input === 'string' ? new Uint8Array(readFileSync(input)) : input
  const fail = (offset: number, what: string): never => {
    throw new PcapFormatError(file, offset, what)
  }
  if (bytes.length < PCAP_GLOBAL_HEADER_LEN) {
    fail(bytes.length, `truncated global header: ${bytes.length} bytes, a pcap file starts with ${PCAP_GLOBAL_HEADER_LEN}`)
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const raw = v.getUint32(0, true)
  let little: boolean
  if (raw === PCAP_MAGIC_US || raw === PCAP_MAGIC_NS) little = true
  else if (v.getUint32(0, false) === PCAP_MAGIC_US || v.getUint32(0, false) === PCAP_MAGIC_NS) little = false
  else {
    const hint = raw === 0x0a0d0d0a ? ' (this is pcapng, not classic pcap)' : ''
    return fail(0, `bad magic 0x${v.getUint32(0, false).toString(16).padStart(8, '0')}: not a pcap file${hint}`)
  }
  const resolution = v.getUint32(0, little) === PCAP_MAGIC_NS ? 'ns' : 'us'
  const versionMajor = v.getUint16(4, little)
  const versionMinor = v.getUint16(6, little)
  if (versionMajor !== PCAP_VERSION_MAJOR) fail(4, `unsupported version ${versionMajor}.${versionMinor} (expected 2.x)`)
  const snaplen = v.getUint32(16, little)
  const linkType = v.getUint32(20, little) & 0x0fff_ffff // the top bits carry the FCS length
  const fracLimit = resolution === 'ns' ? 1e9 : 1e6
  const fracNs = resolution === 'ns' ? 1 : 1000
  const records: PcapRecord[] = []
  let off = PCAP_GLOBAL_HEADER_LEN
  while (off < bytes.length) {
    const n = records.length
    if (bytes.length - off < PCAP_RECORD_HEADER_LEN) {
      fail(off, `record ${n}: truncated record header: ${bytes.length - off} bytes left, a record header is ${PCAP_RECORD_HEADER_LEN}`)
    }
    const seconds = v.getUint32(off, little)
    const frac = v.getUint32(off + 4, little)
    const incl = v.getUint32(off + 8, little)
    const orig = v.getUint32(off + 12, little)
    if (frac >= fracLimit) fail(off + 4, `record ${n}: timestamp fraction ${frac} is not below ${fracLimit} (${resolution} resolution)`)
    if (incl > PCAP_MAX_RECORD) fail(off + 8, `record ${n}: incl_len ${incl} is above the ${PCAP_MAX_RECORD}-byte limit`)
    if (snaplen !== 0 && incl > snaplen) fail(off + 8, `record ${n}: incl_len ${incl} is above the snaplen ${snaplen}`)
    if (incl > orig) fail(off + 8, `record ${n}: incl_len ${incl} is above orig_len ${orig}`)
    const data = off + PCAP_RECORD_HEADER_LEN
    if (bytes.length - data < incl) {
      fail(data, `record ${n}: truncated record data: incl_len ${incl}, ${bytes.length - data} bytes left`)
    }
    const nanoseconds = frac * fracNs
    records.push({
      timeNs: seconds * 1e9 + nanoseconds,
      seconds,
      nanoseconds,
      origLen: orig,
      data: bytes.slice(data, data + incl),
    })
    off = data + incl
  }
  return { resolution, byteOrder: little ? 'little' : 'big', versionMajor, versionMinor, snaplen, linkType, records }
}
