/**
 * The Ethernet wire: a full-duplex point-to-point link between two endpoints (a NIC's MAC, a test
 * peer), like QEMU's -netdev socket or a pair of hub ports, with time on the wire.
 *
 * Timing, per direction. A frame of `len` bytes occupies the wire for the bytes a real PHY sends:
 * max(len, ETH_ZLEN) + ETH_FCS_LEN + ETH_WIRE_OVERHEAD (padding, FCS, preamble, SFD and the
 * inter-frame gap), at `bitsPerSecond`. A frame starts when the sender hands it over or when the
 * previous frame in the same direction has left (`busyUntil`), whichever is later, and arrives
 * `latencyNs` after its last bit:
 *
 *     start   = max(senderClock.now, busyUntil)
 *     arrival = start + serialisation + latencyNs          (on the sender's timeline)
 *
 * It is delivered on the RECEIVER's clock at max(arrival, receiverClock.now): the two ends may be
 * two systems in one process, each with its own VirtualClock; when they share a clock the timing is
 * exact. Frames in one direction never reorder: each direction is a FIFO of frames in flight,
 * drained by one scheduled event on the receiver's clock (no closure per frame).
 *
 * Losses, as on a real cable: a frame sent while the link has no carrier (an end unplugged, the
 * cable pulled) or to a receiver without a clock is dropped; frames in flight when the carrier goes
 * down or an end is unplugged are lost. Each is counted in the direction's `dropped`. A frame
 * shorter than an Ethernet header or larger than WIRE_MAX_FRAME is a bug of the sending device, not
 * traffic: transmit() throws a WireError.
 *
 * Captures: onFrame() taps every frame put on the wire, with the sender's time at which it starts
 * (host/pcap.ts writes them to a pcap file).
 *
 * Cost: transmit() copies the frame into a buffer of the wire's; once the receiver's
 * receiveFrame() has returned, the buffer is reused for a later frame of the same length (as
 * ether.ts says, the bytes belong to the wire: an endpoint that keeps them copies them). A buffer a
 * tap has seen is never reused. So in steady state a frame costs one memcpy and the clock's event,
 * and no allocation of frame bytes (V8 allocates typed arrays above 64 bytes slowly).
 */

import type { ClockEvent, VirtualClock } from '../machine/clock.js'
import { ETH_FCS_LEN, ETH_HLEN, ETH_WIRE_OVERHEAD, ETH_ZLEN, type EtherEndpoint, type EtherLink } from './ether.js'

/** The largest frame a wire carries (jumbo frames included), in bytes without FCS. */
export const WIRE_MAX_FRAME = 16 * 1024

/** At most this many bytes of delivered frames are kept for reuse. */
const WIRE_POOL_BYTES = 4 << 20

/** A wire used wrongly: a bad option, an endpoint plugged twice, a malformed frame handed over. */
export class WireError extends RangeError {
  override name = 'WireError'
}

export interface WireOptions {
  /** Line rate (default 10e9: 10 Gb/s). */
  readonly bitsPerSecond?: number
  /** Propagation and PHY latency after a frame's last bit (default 500 ns). */
  readonly latencyNs?: number
  /** A name for errors and traces (default "wire"). */
  readonly name?: string
  /**
   * Reuse a delivered frame's buffer for a later frame of the same length (default true). The
   * receiver must not keep the bytes it is handed (ether.ts: an endpoint that keeps them copies
   * them); false gives every frame its own buffer, for debugging an endpoint that does.
   */
  readonly reuseFrames?: boolean
}

/** Counters of one direction (from one end to the other). */
export interface WireDirectionStats {
  /** Frames put on the wire, and their bytes (as handed over: no padding, no FCS). */
  readonly frames: number
  readonly bytes: number
  /** Frames handed to the receiver. */
  readonly delivered: number
  /** Frames lost: no carrier, no receiver clock, or in flight when the link went down. */
  readonly dropped: number
}

/** A capture tap: the frame (the wire's copy: copy it to keep it), when it starts on the wire
 * on the sender's clock, and who sent it. */
export type WireTap = (frame: Uint8Array, timeNs: number, from: EtherEndpoint) => void

interface MutableStats {
  frames: number
  bytes: number
  delivered: number
  dropped: number
}

/** One direction: its counters, when the wire is free again, and the frames in flight. */
class Direction {
  readonly stats: MutableStats = { frames: 0, bytes: 0, delivered: 0, dropped: 0 }
  /** Sender's time at which the last frame's last bit has left. */
  busyUntil = 0
  /** Ring buffer of frames in flight and their delivery times on the receiver's clock. */
  frames: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(16)
  times = new Float64Array(16)
  /** 1 where a tap saw the frame: it is not reused after delivery. */
  tapped = new Uint8Array(16)
  head = 0
  count = 0
  /** The pending drain event, and the clock it is on. */
  event: ClockEvent | null = null
  clock: VirtualClock | null = null
  /** The drain event's function (one per direction, reused for every frame). */
  drain: () => void = () => undefined

  readonly index: 0 | 1

  constructor(index: 0 | 1) {
    this.index = index
  }

  push(frame: Uint8Array, at: number, tapped: boolean): void {
    if (this.count === this.frames.length) this.#grow()
    const i = (this.head + this.count) & (this.frames.length - 1)
    this.frames[i] = frame
    this.times[i] = at
    this.tapped[i] = tapped ? 1 : 0
    this.count++
  }

  #grow(): void {
    const n = this.frames.length
    const frames = new Array<Uint8Array | undefined>(n * 2)
    const times = new Float64Array(n * 2)
    const tapped = new Uint8Array(n * 2)
    for (let k = 0; k < this.count; k++) {
      const j = (this.head + k) & (n - 1)
      frames[k] = this.frames[j]
      times[k] = this.times[j]!
      tapped[k] = this.tapped[j]!
    }
    this.frames = frames
    this.times = times
    this.tapped = tapped
    this.head = 0
  }

  /** Drops everything in flight (link down); returns how many frames were lost. */
  flush(): number {
    const lost = this.count
    this.frames.fill(undefined)
    this.head = 0
    this.count = 0
    if (this.event !== null) this.event.cancelled = true
    this.event = null
    this.clock = null
    this.stats.dropped += lost
    return lost
  }
}

/** Which wire each endpoint is plugged into (an endpoint has one socket). */
const pluggedInto = new WeakMap<EtherEndpoint, Wire>()

export class Wire implements EtherLink {
  readonly name: string
  readonly bitsPerSecond: number
  readonly latencyNs: number
  /** Nanoseconds per byte on the wire. */
  readonly #nsPerByte: number
  readonly #ends: [EtherEndpoint | null, EtherEndpoint | null] = [null, null]
  readonly #dirs: readonly [Direction, Direction]
  #cableUp = true
  #taps: readonly WireTap[] = []
  readonly #reuse: boolean
  /** Delivered buffers by length, for reuse; and the bytes they hold. */
  readonly #pool = new Map<number, Uint8Array[]>()
  #pooledBytes = 0

  constructor(options: WireOptions = {}) {
    const { bitsPerSecond = 10e9, latencyNs = 500 } = options
    this.name = options.name ?? 'wire'
    if (!Number.isFinite(bitsPerSecond) || bitsPerSecond <= 0) {
      throw new WireError(`Wire ${this.name}: bitsPerSecond must be a positive finite number, got ${bitsPerSecond}`)
    }
    if (!Number.isFinite(latencyNs) || latencyNs < 0) {
      throw new WireError(`Wire ${this.name}: latencyNs must be a finite number >= 0, got ${latencyNs}`)
    }
    this.bitsPerSecond = bitsPerSecond
    this.latencyNs = latencyNs
    this.#nsPerByte = 8e9 / bitsPerSecond
    this.#reuse = options.reuseFrames ?? true
    this.#dirs = [new Direction(0), new Direction(1)]
    for (const d of this.#dirs) {
      d.drain = () => {
        this.#drain(d)
      }
    }
  }

  /** The two sockets: [a, b] as connected (null where nothing is plugged in). */
  get ends(): readonly [EtherEndpoint | null, EtherEndpoint | null] {
    return [this.#ends[0], this.#ends[1]]
  }

  /** Both ends plugged in and the cable up. */
  get carrier(): boolean {
    return this.#cableUp && this.#ends[0] !== null && this.#ends[1] !== null
  }

  /** Counters per direction: [0] is from end a to end b, [1] from b to a. */
  get stats(): readonly [WireDirectionStats, WireDirectionStats] {
    return [{ ...this.#dirs[0].stats }, { ...this.#dirs[1].stats }]
  }

  /** Counters of the frames sent by `end`. */
  statsFrom(end: EtherEndpoint): WireDirectionStats {
    return { ...this.#dirs[this.#indexOf(end, 'statsFrom(end)')].stats }
  }

  /** Frames sent by `end` that are still in flight. */
  inFlightFrom(end: EtherEndpoint): number {
    return this.#dirs[this.#indexOf(end, 'inFlightFrom(end)')].count
  }

  /** Sender's time at which the wire is free for `end`'s next frame (its last frame has left). */
  busyUntil(end: EtherEndpoint): number {
    return this.#dirs[this.#indexOf(end, 'busyUntil(end)')].busyUntil
  }

  /** Nanoseconds a frame of `len` bytes occupies the wire (padding, FCS, preamble, gap included). */
  serialisationNs(len: number): number {
    return (Math.max(len, ETH_ZLEN) + ETH_FCS_LEN + ETH_WIRE_OVERHEAD) * this.#nsPerByte
  }

  /** Plugs two endpoints into the two sockets (attachLink on both, then carrier up on both). */
  connect(a: EtherEndpoint, b: EtherEndpoint): void {
    if (a === b) throw new WireError(`Wire ${this.name}: connect(a, b): both ends are ${a.name}`)
    if (this.#ends[0] !== null || this.#ends[1] !== null) {
      const used = this.#ends.filter((e) => e !== null).map((e) => e.name).join(' and ')
      throw new WireError(`Wire ${this.name}: connect(a, b): ${used} already plugged in; unplug first`)
    }
    for (const [arg, end] of [['a', a], ['b', b]] as const) {
      const other = pluggedInto.get(end)
      if (other !== undefined) {
        throw new WireError(`Wire ${this.name}: connect(${arg}): ${end.name} is already plugged into ${other.name}`)
      }
    }
    this.#ends[0] = a
    this.#ends[1] = b
    pluggedInto.set(a, this)
    pluggedInto.set(b, this)
    a.attachLink(this)
    b.attachLink(this)
    if (this.#cableUp) {
      a.carrierChanged(true)
      b.carrierChanged(true)
    }
  }

  /** Unplugs one end: frames in flight either way are lost, both ends see the carrier go down. */
  unplug(end: EtherEndpoint): void {
    const i = this.#indexOf(end, 'unplug(end)')
    const had = this.carrier
    this.#dirs[0].flush()
    this.#dirs[1].flush()
    this.#ends[i] = null
    pluggedInto.delete(end)
    if (had) {
      end.carrierChanged(false)
      this.#ends[1 - i]?.carrierChanged(false)
    }
    end.attachLink(null)
  }

  /** Plugs the cable in (true) or pulls it (false); frames in flight are lost when it goes down. */
  setCarrier(up: boolean): void {
    const had = this.carrier
    this.#cableUp = up
    const has = this.carrier
    if (had === has) return
    if (!has) {
      this.#dirs[0].flush()
      this.#dirs[1].flush()
    }
    this.#ends[0]?.carrierChanged(has)
    this.#ends[1]?.carrierChanged(has)
  }

  /**
   * Taps the wire: `listener` sees every frame put on it, with the sender's time at which the
   * frame starts. Returns the function that removes the tap.
   */
  onFrame(listener: WireTap): () => void {
    this.#taps = [...this.#taps, listener]
    return () => {
      this.#taps = this.#taps.filter((t) => t !== listener)
    }
  }

  /** EtherLink: sends `frame` from `from` to the other end (the wire copies the bytes). */
  transmit(from: EtherEndpoint, frame: Uint8Array): void {
    let i: 0 | 1
    if (from === this.#ends[0]) i = 0
    else if (from === this.#ends[1]) i = 1
    else throw new WireError(`Wire ${this.name}: transmit(from): ${from.name} is not plugged into this wire`)
    const len = frame.length
    if (len < ETH_HLEN || len > WIRE_MAX_FRAME) {
      throw new WireError(
        `Wire ${this.name}: transmit(from=${from.name}, frame): a frame of ${len} bytes is ` +
          (len < ETH_HLEN ? `shorter than an Ethernet header (${ETH_HLEN})` : `larger than WIRE_MAX_FRAME (${WIRE_MAX_FRAME})`),
      )
    }
    const dir = this.#dirs[i]
    const to = this.#ends[1 - i]
    const rxClock = to?.clock ?? null
    if (!this.#cableUp || to === null || rxClock === null) {
      dir.stats.dropped++
      return
    }
    const txNow = from.clock?.now ?? rxClock.now
    const start = txNow > dir.busyUntil ? txNow : dir.busyUntil
    const done = start + ((len > ETH_ZLEN ? len : ETH_ZLEN) + ETH_FCS_LEN + ETH_WIRE_OVERHEAD) * this.#nsPerByte
    dir.busyUntil = done
    const arrival = done + this.latencyNs
    const at = arrival > rxClock.now ? arrival : rxClock.now
    const copy = this.#copy(frame)
    const taps = this.#taps
    dir.stats.frames++
    dir.stats.bytes += len
    dir.push(copy, at, taps.length !== 0)
    if (dir.event === null) {
      // Only while a drain is delivering can frames be queued without an event: the head is due.
      dir.clock = rxClock
      dir.event = rxClock.schedule(dir.times[dir.head]!, dir.drain)
    }
    if (taps.length !== 0) for (const tap of taps) tap(copy, start, from)
  }

  /** The drain event of a direction: delivers every frame due on the receiver's clock, in order. */
  #drain(dir: Direction): void {
    dir.event = null
    const clock = dir.clock!
    const to = this.#ends[1 - dir.index]
    while (dir.count > 0) {
      const h = dir.head
      const at = dir.times[h]!
      if (at > clock.now) break
      const frame = dir.frames[h]!
      const tapped = dir.tapped[h] === 1
      dir.frames[h] = undefined
      dir.head = (h + 1) & (dir.frames.length - 1)
      dir.count--
      dir.stats.delivered++
      to!.receiveFrame(frame)
      if (this.#reuse && !tapped) this.#recycle(frame)
      // The receiver may have sent a frame this way (which scheduled the next drain) or unplugged
      // or pulled the cable (flush() emptied the queue).
      if (dir.event !== null) return
    }
    if (dir.count > 0) dir.event = clock.schedule(dir.times[dir.head]!, dir.drain)
  }

  /** The wire's copy of a frame: a delivered buffer of the same length if there is one. */
  #copy(frame: Uint8Array): Uint8Array {
    const buf = this.#pool.get(frame.length)?.pop()
    if (buf === undefined) return frame.slice()
    this.#pooledBytes -= buf.length
    buf.set(frame)
    return buf
  }

  #recycle(frame: Uint8Array): void {
    if (this.#pooledBytes + frame.length > WIRE_POOL_BYTES) return
    const bucket = this.#pool.get(frame.length)
    if (bucket === undefined) this.#pool.set(frame.length, [frame])
    else bucket.push(frame)
    this.#pooledBytes += frame.length
  }

  #indexOf(end: EtherEndpoint, what: string): 0 | 1 {
    if (end === this.#ends[0]) return 0
    if (end === this.#ends[1]) return 1
    throw new WireError(`Wire ${this.name}: ${what}: ${end.name} is not plugged into this wire`)
  }
}
