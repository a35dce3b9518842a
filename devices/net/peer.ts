/**
 * Traffic endpoints: "the other machine" at the hardware level, for tests. A TrafficPeer is an
 * EtherEndpoint on a given VirtualClock that a Wire connects to a NIC (or to another peer):
 *
 * - sink: counts received frames, keeps the first `keep` of them, and verifies test payloads;
 * - echo: sends every received frame back with the destination and source MACs swapped;
 * - generator: send(n, ...) schedules n frames of seeded-random sizes on its clock, each carrying a
 *   test payload (sequence number + seeded pattern); sendFrame(bytes) sends any frame now.
 *
 * Every mode counts and verifies what it receives (a generator facing an echo peer checks the
 * echoes). The frame helpers (buildFrame, parseEthernet, parseMac) and the test-payload helpers
 * (makeTestPayload, writeTestPayload, checkTestPayload) are exported for NIC and driver tests.
 *
 * Test payload format (the bytes after the Ethernet header; multi-byte fields big-endian):
 *
 *     offset 0   4 bytes  magic "DMLB" (0x44 0x4d 0x4c 0x42)
 *     offset 4   4 bytes  sequence number (u32)
 *     offset 8   2 bytes  length of the test payload in bytes, this header included (u16)
 *     offset 10  ...      pattern up to `length`: the little-endian bytes of successive xorshift32
 *                         words from a state derived from (seed, sequence number)
 *
 * A test payload is at least TEST_PAYLOAD_MIN_LEN (12) bytes, so that a frame carrying one is at
 * least 26 bytes (a NIC pads it to ETH_ZLEN). The pattern depends on the sequence number, so a
 * corrupted sequence number, a frame delivered twice with another's header or a stale buffer is
 * caught as well as a flipped byte. Bytes after `length` are accepted only as padding of a
 * minimum-size frame (payload of at most ETH_ZLEN - ETH_HLEN bytes); any other length mismatch is
 * an error. Both ends must use the same seed.
 */

import type { VirtualClock } from '../machine/clock.js'
import { Rng } from '../machine/rng.js'
import {
  ETH_ALEN,
  ETH_FRAME_LEN,
  ETH_HLEN,
  ETH_ZLEN,
  formatMac,
  type EtherEndpoint,
  type EtherLink,
} from './ether.js'
import { WIRE_MAX_FRAME } from './wire.js'

/** IEEE 802 "local experimental" EtherType 1: the generator's default. */
export const ETH_P_TEST = 0x88b5
/** IEEE 802.1Q VLAN tag. */
export const ETH_P_8021Q = 0x8100
export const MAC_BROADCAST: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])

/** The test payload's magic ("DMLB"), header length and minimum length. */
export const TEST_PAYLOAD_MAGIC = 0x444d4c42
export const TEST_PAYLOAD_HLEN = 10
export const TEST_PAYLOAD_MIN_LEN = 12
/** The smallest frame that carries a test payload. */
export const TEST_FRAME_MIN_LEN = ETH_HLEN + TEST_PAYLOAD_MIN_LEN

/** A malformed argument to a frame helper or a peer (a test bug, not traffic). */
export class FrameError extends RangeError {
  override name = 'FrameError'
}

/** A MAC address: 6 bytes, or text "aa:bb:cc:dd:ee:ff" (also with '-'). */
export type MacLike = Uint8Array | string

/** A MAC address as 6 fresh bytes; `what` names the argument in errors. */
export function parseMac(mac: MacLike, what = 'mac'): Uint8Array {
  if (typeof mac !== 'string') {
    if (mac.length !== ETH_ALEN) throw new FrameError(`${what}: a MAC address is ${ETH_ALEN} bytes, got ${mac.length}`)
    return mac.slice()
  }
  const parts = mac.split(/[:-]/)
  if (parts.length !== ETH_ALEN || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw new FrameError(`${what}: "${mac}" is not a MAC address (aa:bb:cc:dd:ee:ff)`)
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16))
}

export interface FrameFields {
  readonly dst: MacLike
  readonly src: MacLike
  readonly etherType: number
  readonly payload: Uint8Array
  /** Pads with zeros to at least this many bytes (ETH_ZLEN, as a NIC does); default: no padding. */
  readonly padTo?: number
}

/** An Ethernet frame: destination, source, EtherType (big-endian), payload (no FCS). */
export function buildFrame(fields: FrameFields): Uint8Array {
  const { etherType, payload, padTo = 0 } = fields
  if (!Number.isInteger(etherType) || etherType < 0 || etherType > 0xffff) {
    throw new FrameError(`buildFrame: etherType must be a 16-bit integer, got ${etherType}`)
  }
  const len = Math.max(ETH_HLEN + payload.length, padTo)
  if (len > WIRE_MAX_FRAME) throw new FrameError(`buildFrame: payload of ${payload.length} bytes makes a frame larger than ${WIRE_MAX_FRAME}`)
  const frame = new Uint8Array(len)
  frame.set(parseMac(fields.dst, 'buildFrame: dst'), 0)
  frame.set(parseMac(fields.src, 'buildFrame: src'), ETH_ALEN)
  frame[12] = etherType >>> 8
  frame[13] = etherType & 0xff
  frame.set(payload, ETH_HLEN)
  return frame
}

export interface ParsedEthernet {
  /** Views into the frame (not copies). */
  readonly dst: Uint8Array
  readonly src: Uint8Array
  /** The EtherType after any 802.1Q tag. */
  readonly etherType: number
  /** The 802.1Q tag control information, or null for an untagged frame. */
  readonly vlanTci: number | null
  readonly payload: Uint8Array
}

/** Splits a frame into its Ethernet header fields and payload (an 802.1Q tag is skipped). */
export function parseEthernet(frame: Uint8Array): ParsedEthernet {
  if (frame.length < ETH_HLEN) {
    throw new FrameError(`parseEthernet: a frame of ${frame.length} bytes is shorter than an Ethernet header (${ETH_HLEN})`)
  }
  let etherType = (frame[12]! << 8) | frame[13]!
  let vlanTci: number | null = null
  let off = ETH_HLEN
  if (etherType === ETH_P_8021Q) {
    if (frame.length < ETH_HLEN + 4) throw new FrameError(`parseEthernet: 802.1Q frame of ${frame.length} bytes is truncated`)
    vlanTci = (frame[14]! << 8) | frame[15]!
    etherType = (frame[16]! << 8) | frame[17]!
    off += 4
  }
  return { dst: frame.subarray(0, 6), src: frame.subarray(6, 12), etherType, vlanTci, payload: frame.subarray(off) }
}

/** The pattern generator's initial state for (seed, seq): never 0 (xorshift32's fixed point). */
function patternState(seed: number, seq: number): number {
  const lo = seed >>> 0
  const hi = Math.floor(seed / 0x1_0000_0000) >>> 0
  let s = (lo ^ Math.imul(hi, 0x27d4eb2d) ^ Math.imul(seq + 0x9e3779b9, 0x85ebca6b)) >>> 0
  s = Math.imul(s ^ (s >>> 16), 0x7feb352d) >>> 0
  s = Math.imul(s ^ (s >>> 15), 0x846ca68b) >>> 0
  s = (s ^ (s >>> 16)) >>> 0
  return s === 0 ? 0x6d2b79f5 : s
}

function checkSeq(seq: number, what: string): void {
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff_ffff) throw new FrameError(`${what}: seq must be a u32, got ${seq}`)
}

/** Fills `target` (its whole length) with the test payload of sequence number `seq`. */
export function writeTestPayload(target: Uint8Array, seq: number, seed: number): void {
  checkSeq(seq, 'writeTestPayload')
  if (target.length < TEST_PAYLOAD_MIN_LEN || target.length > 0xffff) {
    throw new FrameError(`writeTestPayload: a test payload is ${TEST_PAYLOAD_MIN_LEN}..65535 bytes, got ${target.length}`)
  }
  fillTestPayload(target, 0, target.length, seq, seed)
}

/** writeTestPayload on buf[off, end) (no subarray: V8 makes views slowly). */
function fillTestPayload(buf: Uint8Array, off: number, end: number, seq: number, seed: number): void {
  const len = end - off
  buf[off] = 0x44
  buf[off + 1] = 0x4d
  buf[off + 2] = 0x4c
  buf[off + 3] = 0x42
  buf[off + 4] = seq >>> 24
  buf[off + 5] = (seq >>> 16) & 0xff
  buf[off + 6] = (seq >>> 8) & 0xff
  buf[off + 7] = seq & 0xff
  buf[off + 8] = len >>> 8
  buf[off + 9] = len & 0xff
  let s = patternState(seed, seq)
  for (let i = off + TEST_PAYLOAD_HLEN; i < end; i += 4) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    buf[i] = s & 0xff
    if (i + 1 < end) buf[i + 1] = (s >>> 8) & 0xff
    if (i + 2 < end) buf[i + 2] = (s >>> 16) & 0xff
    if (i + 3 < end) buf[i + 3] = s >>> 24
  }
}

/** A test payload of `len` bytes for sequence number `seq` (the format is in this file's header). */
export function makeTestPayload(seq: number, len: number, seed: number): Uint8Array {
  if (!Number.isInteger(len) || len < TEST_PAYLOAD_MIN_LEN || len > 0xffff) {
    throw new FrameError(`makeTestPayload: len must be an integer in ${TEST_PAYLOAD_MIN_LEN}..65535, got ${len}`)
  }
  const p = new Uint8Array(len)
  writeTestPayload(p, seq, seed)
  return p
}

/** Whether `bytes` start with the test payload's magic. */
export function isTestPayload(bytes: Uint8Array): boolean {
  return hasMagic(bytes, 0, bytes.length)
}

function hasMagic(b: Uint8Array, off: number, end: number): boolean {
  return end - off >= 4 && b[off] === 0x44 && b[off + 1] === 0x4d && b[off + 2] === 0x4c && b[off + 3] === 0x42
}

export type TestPayloadCheck =
  | { readonly ok: true; readonly seq: number; readonly length: number }
  /** seq is null when the header itself is unreadable. */
  | { readonly ok: false; readonly seq: number | null; readonly reason: string }

const hex = (b: number): string => `0x${b.toString(16).padStart(2, '0')}`

/** Checks a test payload (the bytes after the Ethernet header): its sequence number, or what is wrong. */
export function checkTestPayload(bytes: Uint8Array, seed: number): TestPayloadCheck {
  return checkTestPayloadAt(bytes, 0, bytes.length, seed)
}

/** checkTestPayload on b[off, end). */
function checkTestPayloadAt(b: Uint8Array, off: number, end: number, seed: number): TestPayloadCheck {
  const n = end - off
  if (n < TEST_PAYLOAD_MIN_LEN) {
    return { ok: false, seq: null, reason: `payload of ${n} bytes is shorter than a test payload (${TEST_PAYLOAD_MIN_LEN})` }
  }
  if (!hasMagic(b, off, end)) {
    const got = Array.from(b.subarray(off, off + 4), hex).join(' ')
    return { ok: false, seq: null, reason: `no test-payload magic "DMLB" (got ${got})` }
  }
  const seq = ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0
  const len = (b[off + 8]! << 8) | b[off + 9]!
  if (len < TEST_PAYLOAD_MIN_LEN) {
    return { ok: false, seq, reason: `seq ${seq}: length field ${len} is below the minimum ${TEST_PAYLOAD_MIN_LEN}` }
  }
  if (len > n) return { ok: false, seq, reason: `seq ${seq}: truncated: ${n} bytes, the length field says ${len}` }
  if (len < n && n > ETH_ZLEN - ETH_HLEN) {
    return { ok: false, seq, reason: `seq ${seq}: ${n} bytes, the length field says ${len} (${n - len} extra bytes beyond padding)` }
  }
  const stop = off + len
  let s = patternState(seed, seq)
  let wrong = 0
  let first = -1
  let firstGot = 0
  let firstWant = 0
  for (let i = off + TEST_PAYLOAD_HLEN; i < stop; i += 4) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    for (let k = 0; k < 4 && i + k < stop; k++) {
      const want = (s >>> (8 * k)) & 0xff
      const got = b[i + k]!
      if (got !== want && wrong++ === 0) {
        first = i + k - off
        firstGot = got
        firstWant = want
      }
    }
  }
  if (wrong === 0) return { ok: true, seq, length: len }
  return {
    ok: false,
    seq,
    reason:
      `seq ${seq}, ${len} bytes: ${wrong} byte${wrong === 1 ? '' : 's'} differ from the pattern, the first at payload ` +
      `offset ${first}: ${hex(firstGot)}, expected ${hex(firstWant)}`,
  }
}

export type TrafficPeerMode = 'sink' | 'echo' | 'generator'

export interface TrafficPeerOptions {
  readonly name: string
  readonly clock: VirtualClock
  readonly mac: MacLike
  readonly mode: TrafficPeerMode
  /** Seeds the generator's sizes and the test-payload pattern, sent and verified (default 1). */
  readonly seed?: number
  /** How many received frames `received` keeps (the first ones; default 1024). */
  readonly keep?: number
  /**
   * Which received frames are checked as test payloads: 'magic' (default) those that start with
   * the magic (others count as `foreign`), 'all' every frame (no magic is an error), 'none'.
   */
  readonly verify?: 'magic' | 'all' | 'none'
  /** How many error descriptions `errors` keeps (default 100; `stats.verifyErrors` counts all). */
  readonly maxErrors?: number
}

export interface SendOptions {
  /** Every frame's length in bytes (Ethernet header included, no FCS). */
  readonly size?: number
  /** Or seeded-random lengths in [minSize, maxSize] (default ETH_ZLEN..ETH_FRAME_LEN). */
  readonly minSize?: number
  readonly maxSize?: number
  /** Destination MAC (default broadcast). */
  readonly dst?: MacLike
  /** Default ETH_P_TEST. */
  readonly etherType?: number
  /** Time between two frames handed to the link (default 0: all at once, the wire queues them). */
  readonly intervalNs?: number
}

/** A generator's send(): progress, and a way to stop the frames not sent yet. */
export interface SendRun {
  readonly total: number
  readonly sent: number
  readonly done: boolean
  cancel(): void
}

class GeneratorRun implements SendRun {
  sent = 0
  done: boolean
  readonly total: number

  constructor(total: number) {
    this.total = total
    this.done = total === 0
  }

  cancel(): void {
    this.done = true
  }
}

export interface TrafficPeerStats {
  rxFrames: number
  rxBytes: number
  txFrames: number
  txBytes: number
  /** Frames not sent because the peer had no link or no carrier. */
  txDropped: number
  /** Test payloads that checked out. */
  verified: number
  /** Frames without a test payload ('magic' verification). */
  foreign: number
  /** Failed checks: bad payloads and reordered or repeated sequence numbers. */
  verifyErrors: number
  /** Verified frames whose sequence number was not above the previous one's. */
  reordered: number
  /** Sequence numbers skipped between two verified frames (frames lost on the way). */
  seqGaps: number
  carrierChanges: number
}

export class TrafficPeer implements EtherEndpoint {
  readonly name: string
  readonly clock: VirtualClock
  readonly mac: Uint8Array
  readonly mode: TrafficPeerMode
  readonly seed: number
  /** The first `keep` frames received (copies), and the times they arrived. */
  readonly received: Uint8Array[] = []
  readonly receivedAt: number[] = []
  /** The first `maxErrors` verification failures, described. */
  readonly errors: string[] = []
  readonly stats: TrafficPeerStats = {
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txDropped: 0,
    verified: 0,
    foreign: 0,
    verifyErrors: 0,
    reordered: 0,
    seqGaps: 0,
    carrierChanges: 0,
  }
  readonly #keep: number
  readonly #verify: 'magic' | 'all' | 'none'
  readonly #maxErrors: number
  readonly #rng: Rng
  #link: EtherLink | null = null
  #carrier = false
  #nextSeq = 0
  #lastSeq = -1
  /** Where frames to send are built (the wire copies what it is given). */
  #scratch: Uint8Array | null = null

  constructor(options: TrafficPeerOptions) {
    const { name, clock, mode, seed = 1, keep = 1024, verify = 'magic', maxErrors = 100 } = options
    if (mode !== 'sink' && mode !== 'echo' && mode !== 'generator') {
      throw new FrameError(`TrafficPeer ${name}: mode must be 'sink', 'echo' or 'generator', got ${String(mode)}`)
    }
    if (!Number.isInteger(keep) || keep < 0) throw new FrameError(`TrafficPeer ${name}: keep must be an integer >= 0, got ${keep}`)
    if (!Number.isInteger(maxErrors) || maxErrors < 0) {
      throw new FrameError(`TrafficPeer ${name}: maxErrors must be an integer >= 0, got ${maxErrors}`)
    }
    if (verify !== 'magic' && verify !== 'all' && verify !== 'none') {
      throw new FrameError(`TrafficPeer ${name}: verify must be 'magic', 'all' or 'none', got ${String(verify)}`)
    }
    this.name = name
    this.clock = clock
    this.mac = parseMac(options.mac, `TrafficPeer ${name}: mac`)
    this.mode = mode
    this.seed = seed
    this.#keep = keep
    this.#verify = verify
    this.#maxErrors = maxErrors
    this.#rng = new Rng(seed)
  }

  /** Whether the link is up, as last signalled by the wire. */
  get carrier(): boolean {
    return this.#carrier
  }

  /** The sequence number the next generated frame carries. */
  get nextSeq(): number {
    return this.#nextSeq
  }

  /** The first verification failure, or null. */
  get firstError(): string | null {
    return this.errors[0] ?? null
  }

  attachLink(link: EtherLink | null): void {
    this.#link = link
    if (link === null) this.#carrier = false
  }

  carrierChanged(up: boolean): void {
    if (up !== this.#carrier) this.stats.carrierChanges++
    this.#carrier = up
  }

  receiveFrame(frame: Uint8Array): void {
    const st = this.stats
    st.rxFrames++
    st.rxBytes += frame.length
    if (this.received.length < this.#keep) {
      this.received.push(frame.slice())
      this.receivedAt.push(this.clock.now)
    }
    if (this.#verify !== 'none') this.#check(frame)
    if (this.mode === 'echo') {
      const out = this.#scratchFrame(frame.length)
      out.set(frame)
      out.copyWithin(0, ETH_ALEN, 2 * ETH_ALEN)
      out.set(frame.subarray(0, ETH_ALEN), ETH_ALEN)
      this.#transmit(out)
    }
  }

  /** Sends one frame now (any mode); the link copies it. */
  sendFrame(bytes: Uint8Array): void {
    if (bytes.length < ETH_HLEN || bytes.length > WIRE_MAX_FRAME) {
      throw new FrameError(`TrafficPeer ${this.name}: sendFrame(bytes): ${bytes.length} bytes is not a frame (${ETH_HLEN}..${WIRE_MAX_FRAME})`)
    }
    this.#transmit(bytes)
  }

  /**
   * Schedules `n` test frames on the peer's clock, the first at the current time, then one every
   * `intervalNs`; each carries the next sequence number (assigned when it is sent) and a test
   * payload filling the frame. Sizes are drawn from the peer's seeded generator when each frame
   * is sent.
   */
  send(n: number, options: SendOptions = {}): SendRun {
    const where = `TrafficPeer ${this.name}: send`
    if (this.mode !== 'generator') throw new FrameError(`${where}: only a generator sends test traffic (mode is ${this.mode})`)
    if (!Number.isInteger(n) || n < 0) throw new FrameError(`${where}: n must be an integer >= 0, got ${n}`)
    const { intervalNs = 0, etherType = ETH_P_TEST } = options
    if (options.size !== undefined && (options.minSize !== undefined || options.maxSize !== undefined)) {
      throw new FrameError(`${where}: give size or minSize..maxSize, not both`)
    }
    const minSize = options.size ?? options.minSize ?? ETH_ZLEN
    const maxSize = options.size ?? options.maxSize ?? ETH_FRAME_LEN
    for (const [k, v] of [['minSize', minSize], ['maxSize', maxSize]] as const) {
      if (!Number.isInteger(v) || v < TEST_FRAME_MIN_LEN || v > WIRE_MAX_FRAME) {
        throw new FrameError(`${where}: ${options.size !== undefined ? 'size' : k} must be an integer in ${TEST_FRAME_MIN_LEN}..${WIRE_MAX_FRAME}, got ${v}`)
      }
    }
    if (minSize > maxSize) throw new FrameError(`${where}: minSize ${minSize} is above maxSize ${maxSize}`)
    if (!Number.isFinite(intervalNs) || intervalNs < 0) throw new FrameError(`${where}: intervalNs must be >= 0, got ${intervalNs}`)
    if (!Number.isInteger(etherType) || etherType < 0 || etherType > 0xffff) {
      throw new FrameError(`${where}: etherType must be a 16-bit integer, got ${etherType}`)
    }
    const dst = parseMac(options.dst ?? MAC_BROADCAST, `${where}: dst`)
    const run = new GeneratorRun(n)
    if (n === 0) return run
    const clock = this.clock
    const step = (): void => {
      if (run.done) return
      // Back to back: all remaining frames in this event; otherwise one frame per event.
      do {
        const size = minSize === maxSize ? minSize : minSize + this.#rng.int(maxSize - minSize + 1)
        this.#transmit(this.#testFrame(dst, etherType, size))
        run.sent++
      } while (intervalNs === 0 && run.sent < n && !run.done)
      if (run.sent === n) run.done = true
      else if (!run.done) clock.schedule(clock.now + intervalNs, step)
    }
    clock.schedule(clock.now, step)
    return run
  }

  /** Forgets the kept frames and error descriptions (counters stay). */
  clearReceived(): void {
    this.received.length = 0
    this.receivedAt.length = 0
    this.errors.length = 0
  }

  #testFrame(dst: Uint8Array, etherType: number, size: number): Uint8Array {
    // Built in the scratch frame: the link copies what it is given.
    const frame = this.#scratchFrame(size)
    frame.set(dst, 0)
    frame.set(this.mac, ETH_ALEN)
    frame[12] = etherType >>> 8
    frame[13] = etherType & 0xff
    fillTestPayload(frame, ETH_HLEN, size, this.#nextSeq, this.seed)
    this.#nextSeq = (this.#nextSeq + 1) >>> 0
    return frame
  }

  #scratchFrame(len: number): Uint8Array {
    return (this.#scratch ??= new Uint8Array(WIRE_MAX_FRAME)).subarray(0, len)
  }

  #transmit(frame: Uint8Array): void {
    const link = this.#link
    if (link === null || !this.#carrier) {
      this.stats.txDropped++
      return
    }
    this.stats.txFrames++
    this.stats.txBytes += frame.length
    link.transmit(this, frame)
  }

  #check(frame: Uint8Array): void {
    const st = this.stats
    // The payload starts after the header and any 802.1Q tag (the wire never delivers < ETH_HLEN).
    const tagged = frame[12] === ETH_P_8021Q >>> 8 && frame[13] === (ETH_P_8021Q & 0xff) && frame.length >= ETH_HLEN + 4
    const off = tagged ? ETH_HLEN + 4 : ETH_HLEN
    if (this.#verify === 'magic' && !hasMagic(frame, off, frame.length)) {
      st.foreign++
      return
    }
    const r = checkTestPayloadAt(frame, off, frame.length, this.seed)
    if (!r.ok) {
      this.#error(frame, r.reason)
    } else if (r.seq <= this.#lastSeq) {
      st.reordered++
      this.#error(frame, `seq ${r.seq} after seq ${this.#lastSeq} (reordered or repeated)`)
    } else {
      st.verified++
      st.seqGaps += r.seq - this.#lastSeq - 1
      this.#lastSeq = r.seq
    }
  }

  #error(frame: Uint8Array, what: string): void {
    this.stats.verifyErrors++
    if (this.errors.length < this.#maxErrors) {
      const from = formatMac(frame.subarray(ETH_ALEN))
      this.errors.push(`${this.name}: frame ${this.stats.rxFrames} at ${this.clock.now} ns from ${from}: ${what}`)
    }
  }
}
