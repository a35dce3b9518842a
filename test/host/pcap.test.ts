// host/pcap.ts: pcap captures of a Wire, read back by readPcap and by tshark.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_TEST,
  TrafficPeer,
  VirtualClock,
  Wire,
  buildFrame,
  makeTestPayload,
  parseMac,
} from '../../devices/index.js'
import {
  LINKTYPE_ETHERNET,
  PCAP_MAGIC_NS,
  PCAP_MAGIC_US,
  PcapFormatError,
  PcapWriter,
  PcapWriterError,
  capture,
  readPcap,
} from '../../host/pcap.js'

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  return { ...fs, writeSync: vi.fn(fs.writeSync) }
})

const dir = mkdtempSync(join(tmpdir(), 'dmalab-pcap-'))
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})
const file = (name: string): string => join(dir, name)

function runAll(clock: VirtualClock): void {
  while (clock.step(Number.POSITIVE_INFINITY)) {
    /* run */
  }
}

/** A hand-made capture file: global header and records, either byte order, µs or ns. */
function pcapBytes(o: {
  little?: boolean
  magic?: number
  version?: [number, number]
  snaplen?: number
  records?: { sec: number; frac: number; incl?: number; orig?: number; data: Uint8Array }[]
}): Uint8Array {
  const little = o.little ?? true
  const recs = o.records ?? []
  const size = 24 + recs.reduce((n, r) => n + 16 + r.data.length, 0)
  const b = new Uint8Array(size)
  const v = new DataView(b.buffer)
  v.setUint32(0, o.magic ?? PCAP_MAGIC_US, little)
  v.setUint16(4, o.version?.[0] ?? 2, little)
  v.setUint16(6, o.version?.[1] ?? 4, little)
  v.setUint32(16, o.snaplen ?? 65535, little)
  v.setUint32(20, LINKTYPE_ETHERNET, little)
  let off = 24
  for (const r of recs) {
    v.setUint32(off, r.sec, little)
    v.setUint32(off + 4, r.frac, little)
    v.setUint32(off + 8, r.incl ?? r.data.length, little)
    v.setUint32(off + 12, r.orig ?? r.data.length, little)
    b.set(r.data, off + 16)
    off += 16 + r.data.length
  }
  return b
}

const bytes = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)

describe('PcapWriter', () => {
  it('writes the nanosecond pcap header: magic a1b23c4d, version 2.4, snaplen 65535, Ethernet', () => {
    const path = file('header.pcap')
    PcapWriter.open(path).close()
    const raw = readFileSync(path)
    expect(raw.length).toBe(24)
    expect([...raw.subarray(0, 8)]).toEqual([0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0])
    expect(raw.readUInt32LE(16)).toBe(65535)
    expect(raw.readUInt32LE(20)).toBe(1)
    expect(readPcap(path)).toEqual({
      resolution: 'ns',
      byteOrder: 'little',
      versionMajor: 2,
      versionMinor: 4,
      snaplen: 65535,
      linkType: 1,
      records: [],
    })
  })

  it('round-trips frames and times (ns resolution, fractions dropped, seconds split)', () => {
    const path = file('round.pcap')
    const w = PcapWriter.open(path)
    const frames = [bytes(60, 1), bytes(1514, 2), bytes(9000, 3)]
    const times = [0, 1_500.75, 3_000_000_123]
    frames.forEach((f, i) => w.write(f, times[i]!))
    expect(w.records).toBe(3)
    w.close()
    w.close() // a second close does nothing
    const p = readPcap(path)
    expect(p.records.map((r) => [r.timeNs, r.seconds, r.nanoseconds, r.origLen])).toEqual([
      [0, 0, 0, 60],
      [1500, 0, 1500, 1514],
      [3_000_000_123, 3, 123, 9000],
    ])
    p.records.forEach((r, i) => expect(Buffer.compare(r.data, frames[i]!)).toBe(0))
  })

  it('cuts frames to the snaplen and keeps the original length', () => {
    const path = file('snap.pcap')
    const w = PcapWriter.open(path, { snaplen: 100 })
    w.write(bytes(200), 5)
    w.close()
    const p = readPcap(path)
    expect(p.snaplen).toBe(100)
    expect(p.records[0]).toMatchObject({ origLen: 200, data: bytes(100) })
  })

  it('buffers: 20 000 frames take a handful of writes, not one per frame', () => {
    const path = file('many.pcap')
    const spy = vi.mocked(writeSync)
    const before = spy.mock.calls.length
    const w = PcapWriter.open(path)
    const f = bytes(200)
    for (let i = 0; i < 20_000; i++) w.write(f, i * 100)
    w.close()
    const calls = spy.mock.calls.length - before
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(calls).toBeLessThanOrEqual(6) // 4.3 MB in 1 MiB buffers, plus the header
    const p = readPcap(path)
    expect(p.records.length).toBe(20_000)
    expect(p.records[19_999]!.timeNs).toBe(1_999_900)
  })

  it('refuses writes after close, negative or non-finite times and bad options', () => {
    const w = PcapWriter.open(file('closed.pcap'))
    expect(() => w.write(bytes(60), -1)).toThrow(PcapWriterError)
    expect(() => w.write(bytes(60), Number.NaN)).toThrow(/timeNs must be a finite time >= 0, got NaN/)
    w.close()
    expect(w.closed).toBe(true)
    expect(() => w.write(bytes(60), 0)).toThrow(/write\(\) after close\(\)/)
    expect(() => PcapWriter.open(file('x.pcap'), { snaplen: 0 })).toThrow(/snaplen/)
  })
})

describe('capture(wire, path)', () => {
  it('records every frame on the wire, both directions, at the sender time it starts', () => {
    const clock = new VirtualClock()
    const gen = new TrafficPeer({ name: 'gen', clock, mac: '02:00:00:00:00:01', mode: 'generator', seed: 4 })
    const echo = new TrafficPeer({ name: 'echo', clock, mac: '02:00:00:00:00:02', mode: 'echo', seed: 4 })
    const wire = new Wire({ bitsPerSecond: 1e9 })
    wire.connect(gen, echo)
    const starts: number[] = []
    wire.onFrame((_f, t) => starts.push(t))
    const path = file('capture.pcap')
    const cap = capture(wire, path)
    clock.now = 2_000_000_000
    gen.send(50, { minSize: 60, maxSize: 1514, intervalNs: 10_000, dst: '02:00:00:00:00:02' })
    runAll(clock)
    expect(cap.frames).toBe(100)
    cap.stop()
    gen.send(5, { size: 60 })
    runAll(clock)
    expect(cap.frames).toBe(100)
    const p = readPcap(path)
    expect(p.records.length).toBe(100)
    expect(p.records.map((r) => r.timeNs)).toEqual(starts.slice(0, 100).map(Math.floor))
    // Each direction in order: the generated frames as the echo peer got them, the echoes as the generator did.
    const fromGen = p.records.filter((r) => r.data[11] === 0x01).map((r) => Buffer.from(r.data).toString('hex'))
    const fromEcho = p.records.filter((r) => r.data[11] === 0x02).map((r) => Buffer.from(r.data).toString('hex'))
    expect(fromGen).toEqual(echo.received.slice(0, 50).map((f) => Buffer.from(f).toString('hex')))
    expect(fromEcho).toEqual(gen.received.slice(0, 50).map((f) => Buffer.from(f).toString('hex')))
    expect(p.records.every((r) => r.origLen === r.data.length)).toBe(true)
  })
})

describe('readPcap', () => {
  const rec = { sec: 1, frac: 999_999, data: bytes(64) }

  it('reads microsecond and nanosecond files of both byte orders', () => {
    for (const little of [true, false]) {
      const us = readPcap(pcapBytes({ little, records: [rec] }))
      expect(us).toMatchObject({ resolution: 'us', byteOrder: little ? 'little' : 'big', versionMajor: 2, versionMinor: 4, linkType: 1 })
      expect(us.records[0]).toMatchObject({ timeNs: 1_999_999_000, seconds: 1, nanoseconds: 999_999_000, origLen: 64, data: bytes(64) })
      const ns = readPcap(pcapBytes({ little, magic: PCAP_MAGIC_NS, records: [{ ...rec, frac: 999_999_999 }] }))
      expect(ns).toMatchObject({ resolution: 'ns', byteOrder: little ? 'little' : 'big' })
      expect(ns.records[0]!.timeNs).toBe(1_999_999_999)
    }
  })

  const corrupt: [string, Uint8Array, number, RegExp][] = [
    ['empty file', new Uint8Array(0), 0, /truncated global header: 0 bytes, a pcap file starts with 24/],
    ['truncated global header', pcapBytes({}).subarray(0, 20), 20, /truncated global header: 20 bytes/],
    ['bad magic', Uint8Array.of(...Buffer.from('not a pcap file at all!!!')), 0, /bad magic 0x6e6f7420: not a pcap file$/],
    ['pcapng', Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a, ...new Uint8Array(28)), 0, /bad magic 0x0a0d0d0a: not a pcap file \(this is pcapng, not classic pcap\)/],
    ['bad version', pcapBytes({ version: [1, 0] }), 4, /unsupported version 1\.0 \(expected 2\.x\)/],
    ['truncated record header', pcapBytes({ records: [rec, rec] }).subarray(0, 24 + 16 + 64 + 10), 104, /record 1: truncated record header: 10 bytes left, a record header is 16/],
    ['truncated record data', pcapBytes({ records: [rec] }).subarray(0, 24 + 16 + 50), 40, /record 0: truncated record data: incl_len 64, 50 bytes left/],
    ['incl_len above snaplen', pcapBytes({ snaplen: 32, records: [rec] }), 32, /record 0: incl_len 64 is above the snaplen 32/],
    ['incl_len above 256 KiB', pcapBytes({ snaplen: 0, records: [{ ...rec, incl: 300_000, orig: 300_000 }] }), 32, /record 0: incl_len 300000 is above the 262144-byte limit/],
    ['incl_len above orig_len', pcapBytes({ records: [{ ...rec, orig: 10 }] }), 32, /record 0: incl_len 64 is above orig_len 10/],
    ['µs fraction out of range', pcapBytes({ records: [{ ...rec, frac: 1_000_000 }] }), 28, /record 0: timestamp fraction 1000000 is not below 1000000 \(us resolution\)/],
    ['ns fraction out of range', pcapBytes({ magic: PCAP_MAGIC_NS, little: false, records: [rec, { ...rec, frac: 1e9 }] }), 24 + 80 + 4, /record 1: timestamp fraction 1000000000 is not below 1000000000 \(ns/],
  ]
  it.each(corrupt)('%s: a PcapFormatError naming the file, the offset and the fault', (_what, data, offset, message) => {
    let err: unknown
    try {
      readPcap(data, 'bad.pcap')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PcapFormatError)
    const e = err as PcapFormatError
    expect(e.file).toBe('bad.pcap')
    expect(e.offset).toBe(offset)
    expect(e.message).toMatch(new RegExp(`^bad\\.pcap: byte ${offset}: `))
    expect(e.message).toMatch(message)
  })

  it('names the path when reading a file', () => {
    const path = file('corrupt.pcap')
    writeFileSync(path, pcapBytes({ records: [rec] }).subarray(0, 50))
    expect(() => readPcap(path)).toThrow(`${path}: byte 40: record 0: truncated record data: incl_len 64, 10 bytes left`)
  })
})

/** The Internet checksum (RFC 1071) of `b`. */
function inetChecksum(b: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0)
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

const MAC_A = '02:00:00:00:00:0a'
const MAC_B = '02:00:00:00:00:0b'
const IP_A = [10, 0, 0, 1]
const IP_B = [10, 0, 0, 2]

/** An ARP request "who has 10.0.0.2? tell 10.0.0.1" (42 bytes: no padding, as its sender captures it). */
function arpRequest(): Uint8Array {
  const arp = Uint8Array.of(0, 1, 0x08, 0x00, 6, 4, 0, 1, ...parseMac(MAC_A), ...IP_A, 0, 0, 0, 0, 0, 0, ...IP_B)
  return buildFrame({ dst: 'ff:ff:ff:ff:ff:ff', src: MAC_A, etherType: ETH_P_ARP, payload: arp })
}

/** An ICMP echo request 10.0.0.1 -> 10.0.0.2 with 32 bytes of data and correct checksums (74 bytes). */
function icmpEcho(): Uint8Array {
  const icmp = new Uint8Array(8 + 32)
  icmp.set([8, 0, 0, 0, 0x12, 0x34, 0, 1])
  for (let i = 0; i < 32; i++) icmp[8 + i] = 0x61 + (i % 23)
  const ic = inetChecksum(icmp)
  icmp[2] = ic >>> 8
  icmp[3] = ic & 0xff
  const ip = new Uint8Array(20 + icmp.length)
  ip.set([0x45, 0, 0, ip.length, 0xbe, 0xef, 0x40, 0, 64, 1, 0, 0, ...IP_A, ...IP_B])
  const hc = inetChecksum(ip.subarray(0, 20))
  ip[10] = hc >>> 8
  ip[11] = hc & 0xff
  ip.set(icmp, 20)
  return buildFrame({ dst: MAC_B, src: MAC_A, etherType: ETH_P_IP, payload: ip })
}

const TSHARK_INSTALL =
  'tshark is not installed, and this test needs it to check that Wireshark reads our captures. Install it with ' +
  '`apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends tshark` ' +
  '(.ci/run does this on CI).'

function tshark(args: string[]): string {
  const r = spawnSync('tshark', args, { encoding: 'utf8', timeout: 30_000 })
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(TSHARK_INSTALL)
  if (r.error !== undefined) throw r.error
  if (r.status !== 0) throw new Error(`tshark ${args.join(' ')} exited with ${r.status}: ${r.stderr}`)
  return r.stdout
}

describe('interoperability', () => {
  it('tshark decodes a capture: an ARP request, an ICMP echo with good checksums, a test frame', () => {
    const clock = new VirtualClock()
    const a = new TrafficPeer({ name: 'a', clock, mac: MAC_A, mode: 'sink' })
    const b = new TrafficPeer({ name: 'b', clock, mac: MAC_B, mode: 'sink' })
    const wire = new Wire({ bitsPerSecond: 1e9, latencyNs: 500 })
    wire.connect(a, b)
    const path = file('interop.pcap')
    const cap = capture(wire, path)
    clock.now = 1_000_000_001 // 1 s and 1 ns: nanosecond timestamps must survive
    a.sendFrame(arpRequest())
    a.sendFrame(icmpEcho())
    clock.schedule(1_000_050_000, () => {
      b.sendFrame(buildFrame({ dst: MAC_A, src: MAC_B, etherType: ETH_P_TEST, payload: makeTestPayload(0, 86, 1) }))
    })
    runAll(clock)
    cap.stop()
    expect(cap.frames).toBe(3)

    const fields = ['frame.len', 'frame.time_epoch', 'eth.type', 'eth.src', 'arp.opcode', 'arp.dst.proto_ipv4', 'ip.checksum.status', 'icmp.type', 'icmp.checksum.status']
    const out = tshark(['-r', path, '-o', 'ip.check_checksum:TRUE', '-T', 'fields', ...fields.flatMap((f) => ['-e', f])])
    const rows = out.replace(/\n$/, '').split('\n').map((line) => Object.fromEntries(line.split('\t').map((v, i) => [fields[i]!, v])))
    // The ARP frame takes (60 + 24) * 8 = 672 ns on the wire: the ICMP echo starts after it.
    expect(rows).toEqual([
      {
        'frame.len': '42', 'frame.time_epoch': '1.000000001', 'eth.type': '0x0806', 'eth.src': MAC_A, 'arp.opcode': '1',
        'arp.dst.proto_ipv4': '10.0.0.2', 'ip.checksum.status': '', 'icmp.type': '', 'icmp.checksum.status': '',
      },
      {
        'frame.len': '74', 'frame.time_epoch': '1.000000673', 'eth.type': '0x0800', 'eth.src': MAC_A, 'arp.opcode': '',
        'arp.dst.proto_ipv4': '', 'ip.checksum.status': '1', 'icmp.type': '8', 'icmp.checksum.status': '1',
      },
      {
        'frame.len': '100', 'frame.time_epoch': '1.000050000', 'eth.type': '0x88b5', 'eth.src': MAC_B, 'arp.opcode': '',
        'arp.dst.proto_ipv4': '', 'ip.checksum.status': '', 'icmp.type': '', 'icmp.checksum.status': '',
      },
    ])
  })
})
