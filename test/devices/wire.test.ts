// The Ethernet wire (devices/net/wire.ts) and the traffic peers (devices/net/peer.ts), on bare
// virtual clocks: timing, carrier, losses, ordering, taps; echo, generator and sink; frame helpers.
import { describe, expect, it } from 'vitest'
import {
  ETH_FCS_LEN,
  ETH_FRAME_LEN,
  ETH_HLEN,
  ETH_P_8021Q,
  ETH_P_ARP,
  ETH_P_TEST,
  ETH_WIRE_OVERHEAD,
  ETH_ZLEN,
  FrameError,
  MAC_BROADCAST,
  Rng,
  TEST_FRAME_MIN_LEN,
  TEST_PAYLOAD_MIN_LEN,
  TrafficPeer,
  VirtualClock,
  WIRE_MAX_FRAME,
  Wire,
  WireError,
  buildFrame,
  checkTestPayload,
  formatMac,
  isTestPayload,
  makeTestPayload,
  parseEthernet,
  parseMac,
  writeTestPayload,
  type EtherEndpoint,
  type EtherLink,
} from '../../devices/index.js'

/** An endpoint that records what happens to it. */
class Probe implements EtherEndpoint {
  readonly log: string[] = []
  readonly got: { bytes: Uint8Array; at: number; same: Uint8Array }[] = []
  link: EtherLink | null = null
  onReceive: ((frame: Uint8Array) => void) | null = null
  readonly name: string
  clock: VirtualClock | null

  constructor(name: string, clock: VirtualClock | null) {
    this.name = name
    this.clock = clock
  }

  receiveFrame(frame: Uint8Array): void {
    this.got.push({ bytes: frame.slice(), at: this.clock!.now, same: frame })
    this.onReceive?.(frame)
  }

  carrierChanged(up: boolean): void {
    this.log.push(`carrier ${up ? 'up' : 'down'}`)
  }

  attachLink(link: EtherLink | null): void {
    this.link = link
    this.log.push(link === null ? 'detach' : 'attach')
  }

  send(frame: Uint8Array): void {
    this.link!.transmit(this, frame)
  }
}

function runAll(clock: VirtualClock): number {
  let n = 0
  while (clock.step(Number.POSITIVE_INFINITY)) n++
  return n
}

/** A frame of `len` bytes whose byte 14 (and following) carries `tag`. */
function frameOf(len: number, tag = 0): Uint8Array {
  const f = new Uint8Array(len)
  f.set(MAC_BROADCAST, 0)
  f.fill(tag & 0xff, ETH_HLEN)
  if (len >= ETH_HLEN + 2) {
    f[ETH_HLEN] = tag >>> 8
    f[ETH_HLEN + 1] = tag & 0xff
  }
  return f
}
const tagOf = (f: Uint8Array): number => (f[ETH_HLEN]! << 8) | f[ETH_HLEN + 1]!

/** Two probes on one clock, connected by a 1 Gb/s wire (8 ns per byte) with 500 ns latency. */
function pair(options: { bitsPerSecond?: number; latencyNs?: number } = {}) {
  const clock = new VirtualClock()
  const a = new Probe('a', clock)
  const b = new Probe('b', clock)
  const wire = new Wire({ bitsPerSecond: options.bitsPerSecond ?? 1e9, latencyNs: options.latencyNs ?? 500, name: 'w0' })
  wire.connect(a, b)
  return { clock, a, b, wire }
}

/** Wire time of a frame at 1 Gb/s: 8 ns per byte, padded, FCS, preamble and gap. */
const at1G = (len: number): number => (Math.max(len, ETH_ZLEN) + ETH_FCS_LEN + ETH_WIRE_OVERHEAD) * 8

describe('Wire: options and plugging', () => {
  it('rejects bad options with a WireError naming the option', () => {
    expect(() => new Wire({ bitsPerSecond: 0 })).toThrow(WireError)
    expect(() => new Wire({ bitsPerSecond: Number.NaN })).toThrow(/bitsPerSecond/)
    expect(() => new Wire({ latencyNs: -1 })).toThrow(/latencyNs/)
    expect(new WireError('x')).toBeInstanceOf(RangeError)
  })

  it('connect attaches both ends, then raises carrier on both', () => {
    const { a, b, wire } = pair()
    expect(a.log).toEqual(['attach', 'carrier up'])
    expect(b.log).toEqual(['attach', 'carrier up'])
    expect(a.link).toBe(wire)
    expect(wire.carrier).toBe(true)
    expect(wire.ends).toEqual([a, b])
  })

  it('refuses an end plugged twice, a loop and a used wire', () => {
    const { clock, a, wire } = pair()
    const c = new Probe('c', clock)
    const d = new Probe('d', clock)
    expect(() => new Wire({ name: 'w1' }).connect(a, c)).toThrow(/a\): a is already plugged into w0/)
    expect(() => new Wire().connect(c, c)).toThrow(/both ends are c/)
    expect(() => wire.connect(c, d)).toThrow(/already plugged in; unplug first/)
    expect(() => wire.unplug(c)).toThrow(/unplug\(end\): c is not plugged into this wire/)
  })

  it('the default rate is 10 Gb/s and the default latency 500 ns', () => {
    const w = new Wire()
    expect(w.bitsPerSecond).toBe(10e9)
    expect(w.latencyNs).toBe(500)
    expect(w.serialisationNs(1514)).toBeCloseTo((1514 + 4 + 20) * 0.8, 9)
    expect(w.serialisationNs(10)).toBeCloseTo((60 + 4 + 20) * 0.8, 9)
  })
})

describe('Wire: timing', () => {
  it('a frame takes its serialisation at the line rate plus the latency', () => {
    const { clock, a, b, wire } = pair()
    clock.now = 1000
    a.send(frameOf(100))
    expect(wire.serialisationNs(100)).toBe(992)
    runAll(clock)
    expect(b.got.map((g) => g.at)).toEqual([1000 + 992 + 500])
  })

  it('short frames occupy the wire as if padded to ETH_ZLEN; the receiver gets the bytes sent', () => {
    const { clock, a, b } = pair()
    a.send(frameOf(20))
    runAll(clock)
    expect(b.got[0]!.at).toBe(at1G(60) + 500)
    expect(b.got[0]!.bytes.length).toBe(20)
  })

  it('scales with the configured rate and latency', () => {
    const { clock, a, b } = pair({ bitsPerSecond: 100e6, latencyNs: 0 })
    a.send(frameOf(1514))
    runAll(clock)
    expect(b.got[0]!.at).toBe((1514 + 24) * 80)
  })

  it('back-to-back frames queue behind each other in one direction', () => {
    const { clock, a, b, wire } = pair()
    a.send(frameOf(100, 1))
    a.send(frameOf(100, 2))
    a.send(frameOf(1514, 3))
    expect(wire.busyUntil(a)).toBe(2 * 992 + at1G(1514))
    expect(wire.inFlightFrom(a)).toBe(3)
    runAll(clock)
    expect(b.got.map((g) => g.at)).toEqual([992 + 500, 2 * 992 + 500, 2 * 992 + at1G(1514) + 500])
    // Once the wire is idle, a frame starts when it is handed over.
    clock.now = 100_000
    a.send(frameOf(100, 4))
    runAll(clock)
    expect(b.got[3]!.at).toBe(100_000 + 992 + 500)
  })

  it('the two directions are independent (full duplex)', () => {
    const { clock, a, b } = pair()
    a.send(frameOf(100))
    a.send(frameOf(100))
    b.send(frameOf(100))
    runAll(clock)
    expect(a.got.map((g) => g.at)).toEqual([992 + 500])
    expect(b.got.map((g) => g.at)).toEqual([992 + 500, 2 * 992 + 500])
  })

  it('with two clocks, arrival is on the sender timeline, delivered on the receiver clock', () => {
    const ca = new VirtualClock()
    const cb = new VirtualClock()
    const a = new Probe('a', ca)
    const b = new Probe('b', cb)
    const wire = new Wire({ bitsPerSecond: 1e9, latencyNs: 500 })
    wire.connect(a, b)
    ca.now = 10_000 // the sender is ahead of the receiver
    a.send(frameOf(100))
    expect(ca.pending).toBe(0) // nothing on the sender's clock
    expect(cb.nextAt).toBe(10_000 + 992 + 500)
    runAll(cb)
    expect(b.got[0]!.at).toBe(11_492)
    // The receiver is ahead: the frame cannot arrive in its past, it arrives at its now.
    cb.now = 50_000
    b.send(frameOf(100)) // b -> a: a's clock is at 10 000
    a.send(frameOf(100)) // a -> b
    expect(ca.nextAt).toBe(50_000 + 992 + 500)
    expect(cb.nextAt).toBe(50_000)
    runAll(ca)
    runAll(cb)
    expect(a.got[0]!.at).toBe(51_492)
    expect(b.got[1]!.at).toBe(50_000)
  })

  it('frames never reorder in a direction, whatever their sizes and however the clocks move', () => {
    const ca = new VirtualClock()
    const cb = new VirtualClock()
    const a = new Probe('a', ca)
    const b = new Probe('b', cb)
    new Wire().connect(a, b)
    const rng = new Rng(7)
    let sent = 0
    for (let burst = 0; burst < 50; burst++) {
      for (let k = rng.int(30); k >= 0; k--) a.send(frameOf(ETH_HLEN + 2 + rng.int(1500), sent++))
      ca.now += rng.int(5000)
      // The receiver runs part of the way, or jumps ahead.
      const limit = rng.chance(0.3) ? cb.now + rng.int(3000) : Number.POSITIVE_INFINITY
      while (cb.step(limit)) {
        /* deliver */
      }
      if (rng.chance(0.2)) cb.now += rng.int(20_000)
    }
    runAll(cb)
    expect(b.got.map((g) => tagOf(g.bytes))).toEqual(Array.from({ length: sent }, (_, i) => i))
    const times = b.got.map((g) => g.at)
    expect(times).toEqual([...times].sort((x, y) => x - y))
  })
})

describe('Wire: bytes, carrier and losses', () => {
  it('copies the frame: the sender may reuse its buffer at once', () => {
    const { clock, a, b } = pair()
    const f = frameOf(64, 0x1111)
    a.send(f)
    f.fill(0xee)
    runAll(clock)
    expect(tagOf(b.got[0]!.bytes)).toBe(0x1111)
  })

  it('throws a WireError naming the argument for a runt or oversized frame, and for a stranger', () => {
    const { clock, a, wire } = pair()
    expect(() => a.send(new Uint8Array(ETH_HLEN - 1))).toThrow(WireError)
    expect(() => a.send(new Uint8Array(13))).toThrow(/transmit\(from=a, frame\): a frame of 13 bytes is shorter than an Ethernet header/)
    expect(() => a.send(new Uint8Array(WIRE_MAX_FRAME + 1))).toThrow(/frame\): a frame of 16385 bytes is larger than WIRE_MAX_FRAME/)
    a.send(new Uint8Array(WIRE_MAX_FRAME)) // the largest is fine
    expect(() => wire.transmit(new Probe('x', clock), frameOf(64))).toThrow(/transmit\(from\): x is not plugged into this wire/)
  })

  it('pulling the cable drops the carrier on both ends, the frames in flight and later frames', () => {
    const { clock, a, b, wire } = pair()
    a.send(frameOf(100))
    b.send(frameOf(100))
    wire.setCarrier(false)
    wire.setCarrier(false) // no change, no notification
    expect(wire.carrier).toBe(false)
    expect(a.log.slice(2)).toEqual(['carrier down'])
    expect(b.log.slice(2)).toEqual(['carrier down'])
    a.send(frameOf(100))
    runAll(clock)
    expect(b.got).toEqual([])
    expect(a.got).toEqual([])
    expect(wire.statsFrom(a)).toEqual({ frames: 1, bytes: 100, delivered: 0, dropped: 2 })
    expect(wire.statsFrom(b)).toEqual({ frames: 1, bytes: 100, delivered: 0, dropped: 1 })
    wire.setCarrier(true)
    expect(a.log.slice(3)).toEqual(['carrier up'])
    clock.now = 5000
    a.send(frameOf(100))
    runAll(clock)
    expect(b.got.map((g) => g.at)).toEqual([5000 + 992 + 500])
    expect(wire.stats[0]).toEqual({ frames: 2, bytes: 200, delivered: 1, dropped: 2 })
  })

  it('unplugging an end loses the frames in flight both ways; both ends see the carrier go', () => {
    const { clock, a, b, wire } = pair()
    a.send(frameOf(100))
    b.send(frameOf(100))
    wire.unplug(b)
    expect(b.log).toEqual(['attach', 'carrier up', 'carrier down', 'detach'])
    expect(a.log).toEqual(['attach', 'carrier up', 'carrier down'])
    expect(wire.carrier).toBe(false)
    expect(wire.ends).toEqual([a, null])
    runAll(clock)
    expect(a.got.length + b.got.length).toBe(0)
    expect(wire.stats.map((s) => s.dropped)).toEqual([1, 1])
    expect(b.link).toBe(null)
    expect(() => wire.transmit(b, frameOf(100))).toThrow(/transmit\(from\): b is not plugged into this wire/)
    a.send(frameOf(100)) // nobody at the other end
    expect(wire.stats[0].dropped).toBe(2)
    // Unplug the other end too: the wire can be used again, and b can go elsewhere.
    wire.unplug(a)
    expect(a.log.at(-1)).toBe('detach')
    const c = new Probe('c', clock)
    new Wire().connect(b, c)
    wire.connect(a, new Probe('d', clock))
    expect(wire.carrier).toBe(true)
  })

  it('a receiver without a clock drops the frame (counted)', () => {
    const a = new Probe('a', new VirtualClock())
    const b = new Probe('b', null)
    const wire = new Wire()
    wire.connect(a, b)
    a.send(frameOf(64))
    expect(wire.statsFrom(a)).toEqual({ frames: 0, bytes: 0, delivered: 0, dropped: 1 })
  })

  it('a receiver may answer, or unplug, from inside receiveFrame', () => {
    const { clock, a, b, wire } = pair()
    b.onReceive = (f) => {
      const back = f.slice()
      back[ETH_HLEN + 1] = back[ETH_HLEN + 1]! + 100
      b.send(back)
    }
    for (let i = 0; i < 5; i++) a.send(frameOf(100, i))
    runAll(clock)
    expect(a.got.map((g) => tagOf(g.bytes))).toEqual([100, 101, 102, 103, 104])
    expect(a.got.map((g) => g.at)).toEqual([1, 2, 3, 4, 5].map((k) => k * 992 + 500 + 992 + 500))
    // Unplugging while the third of five frames is delivered loses the last two.
    b.onReceive = () => {
      if (b.got.length === 8) wire.unplug(b)
    }
    for (let i = 0; i < 5; i++) a.send(frameOf(100, i))
    runAll(clock)
    expect(b.got.length).toBe(8)
    expect(wire.statsFrom(a)).toEqual({ frames: 10, bytes: 1000, delivered: 8, dropped: 2 })
  })

  it('reuses delivered buffers (receivers copy what they keep), unless told not to', () => {
    const { clock, a, b } = pair()
    a.send(frameOf(100, 1))
    runAll(clock)
    a.send(frameOf(100, 2))
    runAll(clock)
    expect(b.got[1]!.same).toBe(b.got[0]!.same) // the same buffer, now holding frame 2
    expect(tagOf(b.got[0]!.same)).toBe(2)
    expect(tagOf(b.got[0]!.bytes)).toBe(1) // the receiver's copy is intact

    const c1 = new VirtualClock()
    const p = new Probe('p', c1)
    const q = new Probe('q', c1)
    new Wire({ reuseFrames: false }).connect(p, q)
    p.send(frameOf(100, 1))
    runAll(c1)
    p.send(frameOf(100, 2))
    runAll(c1)
    expect(q.got[1]!.same).not.toBe(q.got[0]!.same)
    expect(tagOf(q.got[0]!.same)).toBe(1)
  })
})

describe('Wire: taps', () => {
  it('a tap sees each frame with the sender time it starts on the wire, and who sent it', () => {
    const { clock, a, b, wire } = pair()
    const seen: { tag: number; t: number; from: string; len: number }[] = []
    const off = wire.onFrame((f, t, from) => seen.push({ tag: tagOf(f), t, from: from.name, len: f.length }))
    clock.now = 100
    a.send(frameOf(100, 1))
    a.send(frameOf(200, 2)) // queued: starts when the first has left
    b.send(frameOf(64, 3))
    expect(seen).toEqual([
      { tag: 1, t: 100, from: 'a', len: 100 },
      { tag: 2, t: 100 + 992, from: 'a', len: 200 },
      { tag: 3, t: 100, from: 'b', len: 64 },
    ])
    off()
    a.send(frameOf(100, 4))
    expect(seen.length).toBe(3)
    runAll(clock)
    expect(b.got.map((g) => tagOf(g.bytes))).toEqual([1, 2, 4])
  })

  it('does not see dropped frames; a frame a tap has seen is never reused', () => {
    const { clock, a, wire } = pair()
    const kept: Uint8Array[] = []
    const off = wire.onFrame((f) => kept.push(f)) // keeps references without copying
    a.send(frameOf(100, 1))
    runAll(clock)
    off()
    for (let i = 2; i < 10; i++) {
      a.send(frameOf(100, i))
      runAll(clock)
    }
    expect(tagOf(kept[0]!)).toBe(1)
    wire.setCarrier(false)
    const off2 = wire.onFrame((f) => kept.push(f))
    a.send(frameOf(100, 11))
    off2()
    expect(kept.length).toBe(1)
  })

  it('several taps each see every frame; removing one while called is safe', () => {
    const { a, wire } = pair()
    const counts = [0, 0]
    const off0 = wire.onFrame(() => {
      counts[0]!++
      off0()
    })
    wire.onFrame(() => counts[1]!++)
    a.send(frameOf(64))
    a.send(frameOf(64))
    expect(counts).toEqual([1, 2])
  })
})

const MAC_G = '02:00:00:00:00:01'
const MAC_E = '02:00:00:00:00:02'

/** A generator and another peer on one clock and one 10 Gb/s wire. */
function peers(mode: 'sink' | 'echo', options: { seed?: number; keep?: number; otherSeed?: number } = {}) {
  const clock = new VirtualClock()
  const seed = options.seed ?? 5
  const gen = new TrafficPeer({ name: 'gen', clock, mac: MAC_G, mode: 'generator', seed, keep: options.keep ?? 1024 })
  const other = new TrafficPeer({ name: mode, clock, mac: MAC_E, mode, seed: options.otherSeed ?? seed, keep: options.keep ?? 1024 })
  const wire = new Wire()
  wire.connect(gen, other)
  return { clock, gen, other, wire }
}

describe('TrafficPeer', () => {
  it('a generator sends test frames of seeded-random sizes within the range, to the destination', () => {
    const { clock, gen, other: sink } = peers('sink')
    const run = gen.send(500, { minSize: 60, maxSize: 64, dst: MAC_E })
    expect(run.sent).toBe(0) // scheduled on the clock, not sent yet
    runAll(clock)
    expect(run).toMatchObject({ total: 500, sent: 500, done: true })
    const sizes = sink.received.map((f) => f.length)
    expect(new Set(sizes)).toEqual(new Set([60, 61, 62, 63, 64]))
    for (const f of sink.received) {
      const e = parseEthernet(f)
      expect(formatMac(e.dst)).toBe(MAC_E)
      expect(formatMac(e.src)).toBe(MAC_G)
      expect(e.etherType).toBe(ETH_P_TEST)
    }
    expect(sink.received.map((f) => checkTestPayload(parseEthernet(f).payload, 5))).toEqual(
      sizes.map((len, seq) => ({ ok: true, seq, length: len - ETH_HLEN })),
    )
    expect(sink.stats).toMatchObject({ rxFrames: 500, verified: 500, verifyErrors: 0, seqGaps: 0, reordered: 0 })
    expect(gen.stats).toMatchObject({ txFrames: 500, txBytes: sizes.reduce((x, y) => x + y, 0), txDropped: 0 })
    expect(gen.nextSeq).toBe(500)
  })

  it('is deterministic for a seed, and another seed gives other sizes and payloads', () => {
    const trace = (seed: number) => {
      const { clock, gen, other } = peers('sink', { seed })
      gen.send(200, { minSize: TEST_FRAME_MIN_LEN, maxSize: ETH_FRAME_LEN, intervalNs: 300 })
      runAll(clock)
      return { frames: other.received.map((f) => Buffer.from(f).toString('hex')).join(','), at: other.receivedAt, lengths: other.received.map((f) => f.length) }
    }
    const one = trace(11)
    expect(trace(11)).toEqual(one)
    const two = trace(12)
    expect(two.lengths).not.toEqual(one.lengths)
    expect(Math.min(...one.lengths)).toBeGreaterThanOrEqual(TEST_FRAME_MIN_LEN)
    expect(Math.max(...one.lengths)).toBeLessThanOrEqual(ETH_FRAME_LEN)
  })

  it('spaces frames by intervalNs; size sends every frame at one size; broadcast by default', () => {
    const { clock, gen, wire } = peers('sink')
    const starts: number[] = []
    const lens = new Set<number>()
    const dsts = new Set<string>()
    wire.onFrame((f, t) => {
      starts.push(t)
      lens.add(f.length)
      dsts.add(formatMac(f))
    })
    clock.now = 1000
    gen.send(4, { size: 100, intervalNs: 10_000 })
    runAll(clock)
    expect(starts).toEqual([1000, 11_000, 21_000, 31_000])
    expect([...lens]).toEqual([100])
    expect([...dsts]).toEqual(['ff:ff:ff:ff:ff:ff'])
  })

  it('a send run can be cancelled', () => {
    const { clock, gen, other } = peers('sink')
    const run = gen.send(10, { size: 80, intervalNs: 1000 })
    clock.schedule(2500, () => run.cancel())
    runAll(clock)
    expect(run).toMatchObject({ sent: 3, done: true })
    expect(other.stats.rxFrames).toBe(3)
  })

  it('an echo peer sends each frame back with the MACs swapped; the generator verifies the echoes', () => {
    const { clock, gen, other: echo, wire } = peers('echo')
    gen.send(300, { minSize: 60, maxSize: 1514, dst: MAC_E })
    runAll(clock)
    expect(echo.stats).toMatchObject({ rxFrames: 300, txFrames: 300, verified: 300, verifyErrors: 0 })
    expect(gen.stats).toMatchObject({ rxFrames: 300, verified: 300, verifyErrors: 0, seqGaps: 0 })
    expect(gen.received.length).toBe(300)
    const macs = new Set<string>()
    let samePayloads = 0
    for (let i = 0; i < 300; i++) {
      const back = parseEthernet(gen.received[i]!)
      const out = parseEthernet(echo.received[i]!)
      macs.add(`${formatMac(out.dst)} ${formatMac(out.src)} -> ${formatMac(back.dst)} ${formatMac(back.src)}`)
      if (Buffer.compare(back.payload, out.payload) === 0) samePayloads++
    }
    expect([...macs]).toEqual([`${MAC_E} ${MAC_G} -> ${MAC_G} ${MAC_E}`])
    expect(samePayloads).toBe(300)
    expect(wire.stats.map((s) => s.delivered)).toEqual([300, 300])
  })

  it('a sink catches a corrupted byte and describes the first mismatch', () => {
    const clock = new VirtualClock()
    const src = new TrafficPeer({ name: 'src', clock, mac: MAC_G, mode: 'sink' })
    const sink = new TrafficPeer({ name: 'sink', clock, mac: MAC_E, mode: 'sink', seed: 9 })
    new Wire().connect(src, sink)
    const frame = (seq: number, len: number) => buildFrame({ dst: MAC_E, src: MAC_G, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len, 9) })
    src.sendFrame(frame(0, 200))
    const bad = frame(1, 200)
    bad[ETH_HLEN + 57] = bad[ETH_HLEN + 57]! ^ 0x10
    src.sendFrame(bad)
    src.sendFrame(frame(2, 200))
    runAll(clock)
    expect(sink.stats).toMatchObject({ rxFrames: 3, verified: 2, verifyErrors: 1, seqGaps: 1 })
    const want = makeTestPayload(1, 200, 9)[57]!
    expect(sink.errors).toEqual([
      `sink: frame 2 at ${sink.receivedAt[1]} ns from 02:00:00:00:00:01: seq 1, 200 bytes: 1 byte differ from the pattern, ` +
        `the first at payload offset 57: 0x${(want ^ 0x10).toString(16).padStart(2, '0')}, expected 0x${want.toString(16).padStart(2, '0')}`,
    ])
    expect(sink.firstError).toBe(sink.errors[0])
  })

  it('a sink counts reordered or repeated sequence numbers, gaps, and frames from the wrong seed', () => {
    const clock = new VirtualClock()
    const src = new TrafficPeer({ name: 'src', clock, mac: MAC_G, mode: 'sink' })
    const sink = new TrafficPeer({ name: 'sink', clock, mac: MAC_E, mode: 'sink', seed: 3, maxErrors: 2 })
    new Wire().connect(src, sink)
    const send = (seq: number, seed = 3) =>
      src.sendFrame(buildFrame({ dst: MAC_E, src: MAC_G, etherType: ETH_P_TEST, payload: makeTestPayload(seq, 100, seed) }))
    send(0)
    send(4) // 3 lost
    send(2) // reordered
    send(4) // repeated
    send(5, 4) // another seed's pattern
    runAll(clock)
    expect(sink.stats).toMatchObject({ verified: 2, seqGaps: 3, reordered: 2, verifyErrors: 3 })
    expect(sink.errors.length).toBe(2) // maxErrors
    expect(sink.errors[0]).toMatch(/seq 2 after seq 4 \(reordered or repeated\)/)
    sink.clearReceived()
    expect(sink.received).toEqual([])
    expect(sink.errors).toEqual([])
    expect(sink.stats.rxFrames).toBe(5)
  })

  it("verify 'magic' counts other frames as foreign, 'all' reports them, 'none' checks nothing", () => {
    const arp = buildFrame({ dst: MAC_BROADCAST, src: MAC_G, etherType: ETH_P_ARP, payload: new Uint8Array(28), padTo: ETH_ZLEN })
    const result = (verify: 'magic' | 'all' | 'none') => {
      const clock = new VirtualClock()
      const src = new TrafficPeer({ name: 'src', clock, mac: MAC_G, mode: 'sink' })
      const sink = new TrafficPeer({ name: 'sink', clock, mac: MAC_E, mode: 'sink', verify })
      new Wire().connect(src, sink)
      src.sendFrame(arp)
      runAll(clock)
      return { ...sink.stats, errors: sink.errors }
    }
    expect(result('magic')).toMatchObject({ rxFrames: 1, foreign: 1, verifyErrors: 0 })
    const all = result('all')
    expect(all).toMatchObject({ foreign: 0, verifyErrors: 1 })
    expect(all.errors[0]).toMatch(/no test-payload magic "DMLB" \(got 0x00 0x00 0x00 0x00\)/)
    expect(result('none')).toMatchObject({ foreign: 0, verifyErrors: 0, verified: 0 })
  })

  it('verifies test payloads behind an 802.1Q tag', () => {
    const clock = new VirtualClock()
    const src = new TrafficPeer({ name: 'src', clock, mac: MAC_G, mode: 'sink' })
    const sink = new TrafficPeer({ name: 'sink', clock, mac: MAC_E, mode: 'sink', verify: 'all' })
    new Wire().connect(src, sink)
    const inner = new Uint8Array(4 + 100)
    inner.set([0x00, 0x05, ETH_P_TEST >> 8, ETH_P_TEST & 0xff])
    writeTestPayload(inner.subarray(4), 0, 1)
    src.sendFrame(buildFrame({ dst: MAC_E, src: MAC_G, etherType: ETH_P_8021Q, payload: inner }))
    runAll(clock)
    expect(sink.stats).toMatchObject({ verified: 1, verifyErrors: 0 })
  })

  it('keeps only the first `keep` frames, counts all; drops what it sends without carrier', () => {
    const { clock, gen, other, wire } = peers('sink', { keep: 3 })
    gen.send(10, { size: 60 })
    runAll(clock)
    expect(other.received.length).toBe(3)
    expect(other.receivedAt.length).toBe(3)
    expect(other.stats.rxFrames).toBe(10)
    expect(gen.carrier).toBe(true)
    wire.setCarrier(false)
    expect(gen.carrier).toBe(false)
    expect(gen.stats.carrierChanges).toBe(2)
    gen.send(2, { size: 60 })
    gen.sendFrame(new Uint8Array(60))
    runAll(clock)
    expect(gen.stats.txDropped).toBe(3)
    expect(other.stats.rxFrames).toBe(10)
  })

  it('rejects bad arguments with a FrameError', () => {
    const clock = new VirtualClock()
    const gen = new TrafficPeer({ name: 'g', clock, mac: MAC_G, mode: 'generator' })
    const sink = new TrafficPeer({ name: 's', clock, mac: MAC_E, mode: 'sink' })
    expect(() => sink.send(1)).toThrow(/only a generator sends test traffic \(mode is sink\)/)
    expect(() => gen.send(1, { size: 25 })).toThrow(/size must be an integer in 26\.\.16384, got 25/)
    expect(() => gen.send(1, { minSize: 100, maxSize: 90 })).toThrow(/minSize 100 is above maxSize 90/)
    expect(() => gen.send(1, { size: 60, maxSize: 90 })).toThrow(/not both/)
    expect(() => gen.send(1.5)).toThrow(FrameError)
    expect(() => gen.send(1, { intervalNs: -1 })).toThrow(/intervalNs/)
    expect(() => gen.send(1, { dst: '02:00' })).toThrow(/dst: "02:00" is not a MAC address/)
    expect(() => gen.sendFrame(new Uint8Array(10))).toThrow(/10 bytes is not a frame/)
    expect(() => new TrafficPeer({ name: 'x', clock, mac: new Uint8Array(5), mode: 'sink' })).toThrow(/mac: a MAC address is 6 bytes, got 5/)
    expect(() => new TrafficPeer({ name: 'x', clock, mac: MAC_G, mode: 'sink', keep: -1 })).toThrow(/keep/)
    expect(gen.send(0)).toMatchObject({ total: 0, sent: 0, done: true })
  })
})

describe('frame and test-payload helpers', () => {
  it('buildFrame and parseEthernet round-trip; parseMac accepts both separators', () => {
    const payload = Uint8Array.from({ length: 30 }, (_, i) => i)
    const f = buildFrame({ dst: 'ff:ff:ff:ff:ff:ff', src: parseMac('02-AA-bb-0c-0d-0e'), etherType: ETH_P_ARP, payload })
    expect(f.length).toBe(ETH_HLEN + 30)
    expect([...f.subarray(0, 14)]).toEqual([255, 255, 255, 255, 255, 255, 2, 0xaa, 0xbb, 12, 13, 14, 0x08, 0x06])
    const e = parseEthernet(f)
    expect(formatMac(e.src)).toBe('02:aa:bb:0c:0d:0e')
    expect(e).toMatchObject({ etherType: ETH_P_ARP, vlanTci: null })
    expect(e.payload).toEqual(payload)
    const padded = buildFrame({ dst: MAC_BROADCAST, src: MAC_BROADCAST, etherType: 1, payload: new Uint8Array(2), padTo: ETH_ZLEN })
    expect(padded.length).toBe(ETH_ZLEN)
    const tagged = buildFrame({ dst: MAC_BROADCAST, src: MAC_BROADCAST, etherType: ETH_P_8021Q, payload: Uint8Array.of(0x20, 0x07, 0x08, 0x00, 9) })
    expect(parseEthernet(tagged)).toMatchObject({ vlanTci: 0x2007, etherType: 0x0800, payload: Uint8Array.of(9) })
    expect(() => parseEthernet(new Uint8Array(13))).toThrow(FrameError)
    expect(() => buildFrame({ dst: MAC_BROADCAST, src: MAC_BROADCAST, etherType: 0x10000, payload: new Uint8Array(0) })).toThrow(/etherType/)
    expect(() => parseMac('zz:00:00:00:00:00')).toThrow(/not a MAC address/)
  })

  it('makeTestPayload lays out magic, sequence number, length and a pattern of (seed, seq)', () => {
    const p = makeTestPayload(0x01020304, 64, 1)
    expect([...p.subarray(0, 10)]).toEqual([0x44, 0x4d, 0x4c, 0x42, 1, 2, 3, 4, 0, 64])
    expect(isTestPayload(p)).toBe(true)
    expect(makeTestPayload(0x01020304, 64, 1)).toEqual(p)
    expect(makeTestPayload(0x01020305, 64, 1).subarray(10)).not.toEqual(p.subarray(10))
    expect(makeTestPayload(0x01020304, 64, 2).subarray(10)).not.toEqual(p.subarray(10))
    expect(checkTestPayload(p, 1)).toEqual({ ok: true, seq: 0x01020304, length: 64 })
    expect(() => makeTestPayload(0, TEST_PAYLOAD_MIN_LEN - 1, 1)).toThrow(FrameError)
    expect(() => makeTestPayload(-1, 20, 1)).toThrow(/seq must be a u32/)
  })

  it('checkTestPayload describes what is wrong', () => {
    const p = makeTestPayload(7, 100, 1)
    const check = (b: Uint8Array, seed = 1) => checkTestPayload(b, seed)
    expect(check(p.subarray(0, 11))).toEqual({ ok: false, seq: null, reason: 'payload of 11 bytes is shorter than a test payload (12)' })
    expect(check(p.subarray(0, 99))).toEqual({ ok: false, seq: 7, reason: 'seq 7: truncated: 99 bytes, the length field says 100' })
    const longer = new Uint8Array(120)
    longer.set(p)
    expect(check(longer)).toEqual({ ok: false, seq: 7, reason: 'seq 7: 120 bytes, the length field says 100 (20 extra bytes beyond padding)' })
    // A short payload padded to a minimum frame is fine (a NIC pads with whatever).
    const short = new Uint8Array(ETH_ZLEN - ETH_HLEN).fill(0xaa)
    short.set(makeTestPayload(3, 20, 1))
    expect(check(short)).toEqual({ ok: true, seq: 3, length: 20 })
    const wrongSeed = check(p, 2)
    expect(wrongSeed.ok).toBe(false)
    expect(!wrongSeed.ok && wrongSeed.reason).toMatch(/^seq 7, 100 bytes: \d+ bytes differ from the pattern, the first at payload offset 1\d:/)
    const badSeq = p.slice()
    badSeq[7] = 8 // another frame's sequence number: its pattern does not match
    expect(check(badSeq)).toMatchObject({ ok: false, seq: 8 })
    const badLen = p.slice()
    badLen[9] = 5
    expect(check(badLen)).toMatchObject({ ok: false, reason: 'seq 7: length field 5 is below the minimum 12' })
  })
})
