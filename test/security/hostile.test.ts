/**
 * Malicious-device mode (devices/framework/hostile.ts): the NVMe controller and the tnic rewrite
 * what they write back — command ids, status, phase tags, SQ head and id; RX lengths, status and
 * errors, TX status — and, for a double fetch, rewrite a field right after the driver's first load.
 *
 * The reference drivers survive it: no JS exception escapes, nothing hangs (every wait has a
 * virtual-time deadline), no access outside their buffers (no KASAN-class report, no report at
 * all), and once the device behaves again the data is right. Each driver reads each device-written
 * field once, so the double-fetch rewrites get no report; a variant that reads the command id twice
 * is caught as `double-fetch`, and the variant that trusts the RX length as `out-of-bounds`.
 *
 * The number of mutated completions scales with HOSTILE_COMPLETIONS (the short default here; the
 * campaign of issue 9 is `npm run soak:hostile`, 100,000 each: long, about 25 ms per NVMe one).
 */
import { describe, expect, it } from 'vitest'
import { EIO, boot, fio, netUser, pci_register_driver, pcmUser, type PciDriver, type Report, type System } from '../../kernel/index.js'
import {
  ETH_P_TEST, HdaController, HostileMutator, MemoryAudioSink, HostileOptionError, NvmeController, Rng, TnicDevice, TrafficPeer, Wire, buildFrame, checkTestPayload,
  makeTestPayload, resolveHostile, type HostileField,
} from '../../devices/index.js'
import { nvme_make_driver } from '../../drivers/nvme/nvme.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'
import { hda_make_driver } from '../../drivers/sound/hda.js'
import { nvme_cid_double_fetch_driver } from '../fixtures/nvme-bad/cid-double-fetch.js'
import { tnic_clean_rx_irq_trusting } from '../fixtures/tnic-bad/rx-length-trusted.js'

const TARGET = Number(process.env['HOSTILE_COMPLETIONS'] ?? 120)
/** About 25 ms of host time per mutated NVMe completion (each wrong phase costs a timeout and a reset). */
const CAMPAIGN_MS = Math.max(120_000, TARGET * 60)
const KASAN = ['out-of-bounds', 'use-after-free', 'double-free'] as const
const kinds = (sys: System): string[] => [...new Set(sys.reports.map((r) => r.kind))].sort()
const ofKind = (sys: System, kind: string): Report[] => sys.reports.filter((r) => r.kind === kind)

describe('the hostile mutator', () => {
  const fields: HostileField[] = [
    { name: 'len', off: 0, size: 2, kind: 'length' },
    { name: 'phase', off: 2, size: 2, kind: 'phase', mask: 1 },
  ]

  it('always changes the field it picks, within its bits; a phase flips; the same seed gives the same mutations', () => {
    const run = (seed: number): string[] => {
      const m = new HostileMutator(new Rng(seed), resolveHostile('d', { rate: 1 }))
      const out: string[] = []
      for (let i = 0; i < 200; i++) {
        const rec = new Uint8Array([0x34, 0x12, 0x0a, 0x00])
        const f = m.mutate(rec, fields)!
        const v = rec[f.off]! | (rec[f.off + 1]! << 8)
        if (f.name === 'phase') expect(v).toBe(0x000b) // bit 0 flipped, the status bits kept
        else expect(v).not.toBe(0x1234)
        out.push(`${f.name}=${v}`)
      }
      expect(m.stats).toMatchObject({ records: 200, mutated: 200 })
      return out
    }
    expect(run(5)).toEqual(run(5))
    expect(run(5)).not.toEqual(run(6))
  })

  it('mutates at the rate asked, and not at all when paused', () => {
    const m = new HostileMutator(new Rng(1), resolveHostile('d', { rate: 0.25 }))
    for (let i = 0; i < 4000; i++) m.mutate(new Uint8Array(4), fields)
    expect(m.stats.mutated / m.stats.records).toBeGreaterThan(0.2)
    expect(m.stats.mutated / m.stats.records).toBeLessThan(0.3)
    m.paused = true
    const rec = new Uint8Array(4)
    expect(m.mutate(rec, fields)).toBeNull()
    expect(m.stats.records).toBe(4000)
  })

  it('rejects bad options, naming the device and the field', () => {
    expect(() => resolveHostile('nvme0', { rate: 2 })).toThrow(new HostileOptionError('nvme0: hostile.rate must be a probability from 0 to 1, got 2'))
    expect(() => resolveHostile('nvme0', { rat: 0.1 })).toThrow(/nvme0: hostile.rat is not an option/)
    expect(() => resolveHostile('nvme0', { kinds: ['lengths'] })).toThrow(/hostile.kinds must be a non-empty array of length, index/)
    expect(() => new NvmeController({ name: 'nvme9', hostile: { doubleFetchRate: -1 } })).toThrow(/nvme9: hostile.doubleFetchRate must be a probability/)
    expect(() => new TnicDevice({ name: 'tnic9', hostile: 'yes' as never })).toThrow(/tnic9: hostile must be an object/)
  })
})

/** An NVMe system whose controller turns hostile once the driver has probed. */
async function nvmeRig(hostile: { rate: number; doubleFetchRate?: number }, driver: PciDriver = nvme_make_driver({ io_queues: 2 }), seed = 1) {
  const nvme = new NvmeController({ name: 'nvme0', sizeBytes: 8 << 20, hostile })
  const sys = boot({ log: 'silent', seed, checks: { stacks: true }, devices: [nvme] })
  nvme.hostile!.paused = true
  expect(await sys.run(() => pci_register_driver(driver))).toBe(0)
  nvme.hostile!.paused = false
  return { sys, nvme }
}

const fioJob = (seed: number, rw: 'randwrite' | 'randread', queues: number[] = [0, 1]) =>
  ({ disk: 'nvme0n1', bs: 4096, iodepth: 4, numjobs: queues.length, queues, numIos: 100, size: 4 << 20, seed, verify: true, rw }) as const

describe('the NVMe reference driver under a hostile controller', () => {
  it(`survives ${TARGET} mutated completions, then works again when the controller behaves`, async () => {
    const { sys, nvme } = await nvmeRig({ rate: 0.05 })
    let round = 0
    while (nvme.hostile!.stats.mutated < TARGET) {
      const r = await fio(sys, fioJob(round++, 'randwrite'))
      expect(r.ios).toBe(200) // every I/O ended: with its data, or with an error after a timeout and a reset
    }
    // The only report allowed is the IOMMU stopping the device itself: a command id mutated into
    // another in-flight command's (same generation) completes that request early, the driver unmaps
    // its buffer as it must, and the device's late DMA for it is blocked. No driver can tell; the
    // IOMMU is what contains it. (Seen in the 10,000-completion campaign, not in the short one.)
    expect(kinds(sys).filter((k) => k !== 'iommu-fault')).toEqual([])
    const by = nvme.hostile!.stats.byField
    for (const f of ['CQE command id', 'CQE status', 'CQE phase tag']) expect(by[f] ?? 0).toBeGreaterThan(0)
    // Honest again: verified writes and reads, no error, and nothing new reported.
    const faults = (): number => ofKind(sys, 'iommu-fault').reduce((n, x) => n + x.count, 0)
    const faultsBefore = faults()
    nvme.hostile!.paused = true
    const w = await fio(sys, fioJob(1000, 'randwrite'))
    const r = await fio(sys, { ...fioJob(1000, 'randread'), verifyState: w.verifyState })
    expect([w.errors, r.errors, r.verifyErrors]).toEqual([0, 0, 0])
    expect(kinds(sys).filter((k) => k !== 'iommu-fault')).toEqual([])
    expect(faults()).toBe(faultsBefore)
  }, CAMPAIGN_MS)

  it('reads each completion field once: double-fetch rewrites of the CID and SQ head get no report', async () => {
    const { sys, nvme } = await nvmeRig({ rate: 0, doubleFetchRate: 0.5 })
    for (let i = 0; i < 3; i++) expect((await fio(sys, fioJob(i, 'randwrite'))).errors).toBe(0)
    expect(nvme.hostile!.stats.doubleFetchArmed).toBeGreaterThan(100)
    expect(sys.reports).toEqual([])
  })

  it('a driver that checks the command id, then loads it again to use it, is caught as double-fetch', async () => {
    const { sys, nvme } = await nvmeRig({ rate: 0, doubleFetchRate: 0.5 }, nvme_cid_double_fetch_driver())
    await fio(sys, fioJob(1, 'randwrite', [0]))
    expect(nvme.hostile!.stats.doubleFetchArmed).toBeGreaterThan(0)
    const df = ofKind(sys, 'double-fetch')
    expect(df.length).toBe(1)
    expect(df[0]!.message).toContain("the driver read nvme0's CQE command id")
    expect(df[0]!.site).toMatch(/^test\/fixtures\/nvme-bad\/cid-double-fetch\.ts:\d+$/)
    expect(df[0]!.count).toBeGreaterThan(1)
    for (const k of KASAN) expect(kinds(sys)).not.toContain(k)
  })
})

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])

/** A tnic to an echo peer whose NIC turns hostile once eth0 is up. */
async function nicRig(hostile: { rate: number; doubleFetchRate?: number; kinds?: ('length' | 'status')[] }, params: Parameters<typeof tnic_make_driver>[0] = {}) {
  const nic = new TnicDevice({ name: 'tnic0', hostile })
  const sys = boot({ log: 'silent', checks: { stacks: true }, devices: [nic] })
  const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'echo', verify: 'none' })
  new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
  nic.hostile!.paused = true
  expect(await sys.run(() => pci_register_driver(tnic_make_driver(params)))).toBe(0)
  const net = netUser(sys)
  expect(await net.ifup('eth0')).toBe(0)
  await sys.runUntil(() => net.device('eth0').carrier, { timeoutNs: 50_000_000 })
  nic.hostile!.paused = false
  return { sys, nic, net }
}

/** Sends n frames in bursts and counts the intact echoes (a hostile NIC may drop or mangle some). */
async function echo(r: Awaited<ReturnType<typeof nicRig>>, n: number, seed: number): Promise<number> {
  const sock = r.net.socket('eth0', { capacity: 64 })
  const rng = new Rng(seed)
  let ok = 0
  for (let seq = 0; seq < n; seq += 16) {
    for (let i = seq; i < Math.min(n, seq + 16); i++) {
      const len = 60 + rng.int(1454)
      await r.net.send('eth0', buildFrame({ dst: PEER_MAC, src: r.nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(i, len - 14, seed) }))
    }
    await r.sys.runFor(300_000)
    let got = 0
    for (let f = sock.recv(); f !== null; f = sock.recv()) if (checkTestPayload(f.data.subarray(14), seed).ok) got++
    // Nothing came back: a hostile status stalled a ring. Let the TX watchdog (5 s) find it.
    if (got === 0) await r.sys.runFor(1_000_000_000)
    ok += got
  }
  sock.close()
  return ok
}

describe('the tnic reference driver under a hostile NIC', () => {
  it(`survives ${TARGET} mutated write-backs (RX length, status, errors; TX status), then echoes everything again`, async () => {
    const r = await nicRig({ rate: 0.1 })
    let seed = 1
    while (r.nic.hostile!.stats.mutated < TARGET) await echo(r, 160, seed++)
    expect(r.sys.reports).toEqual([])
    const by = r.nic.hostile!.stats.byField
    for (const f of ['RX length', 'RX status', 'RX errors', 'TX status']) expect(by[f] ?? 0).toBeGreaterThan(0)
    r.nic.hostile!.paused = true
    // A hostile TX status stalls the ring: the driver sees the hang after its watchdog_timeo, the
    // stack's watchdog resets the NIC 5 s after the queue stopped. Let both happen.
    await r.sys.runFor(15_000_000_000)
    expect(await echo(r, 64, 99)).toBe(64)
    expect(r.sys.reports).toEqual([])
  }, CAMPAIGN_MS)

  it('reads the RX length and errors once: double-fetch rewrites get no report', async () => {
    const r = await nicRig({ rate: 0, doubleFetchRate: 0.5 })
    expect(await echo(r, 200, 3)).toBe(200)
    expect(r.nic.hostile!.stats.doubleFetchArmed).toBeGreaterThan(50)
    expect(r.sys.reports).toEqual([])
  })

  it('the driver that trusts the RX length is caught as out-of-bounds when the NIC lies about it', async () => {
    const r = await nicRig({ rate: 0.3, kinds: ['length'] }, { copybreak: 4096, paths: { clean_rx: tnic_clean_rx_irq_trusting } })
    await echo(r, 200, 4)
    expect(kinds(r.sys)).toContain('out-of-bounds')
    expect(ofKind(r.sys, 'out-of-bounds')[0]!.stacks.some((s) => s.frames.some((f) => f.file.endsWith('rx-length-trusted.ts')))).toBe(true)
  })
})

describe('the mini-HDA reference driver under a hostile controller', () => {
  const PCM = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const

  it('lying position-buffer entries: plays end (a stream may fail with -EIO), no report; bit-exact again once the controller behaves', async () => {
    const sink = new MemoryAudioSink()
    const hda = new HdaController({ sink, hostile: { rate: 0.3 } })
    const sys = boot({ log: 'silent', devices: [hda] })
    hda.hostile!.paused = true
    expect(await sys.run(() => pci_register_driver(hda_make_driver()))).toBe(0)
    hda.hostile!.paused = false
    const data = Uint8Array.from({ length: 48000 * 4 }, (_, i) => (i * 7) & 0xff)
    let plays = 0
    let failed = 0
    while (hda.hostile!.stats.mutated < TARGET) {
      // azx_get_position refuses a position beyond the buffer; azx_position_ok an early one. When
      // the positions keep lying, periods are not counted and the write times out with -EIO, as
      // ALSA's "playback write error (DMA or IRQ trouble?)": the stream fails, the driver does not.
      const r = await pcmUser(sys).play(0, 0, data, PCM)
      if (r.error === 0) expect(r.frames).toBe(48000)
      else {
        expect(r.error).toBe(-EIO)
        failed++
      }
      plays++
    }
    expect(failed).toBeLessThan(plays)
    expect(sys.reports).toEqual([])
    hda.hostile!.paused = true
    sink.clear()
    const r = await pcmUser(sys).play(0, 0, data, PCM)
    expect([r.error, r.xruns]).toEqual([0, 0])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, data.length)), Buffer.from(data))).toBe(0)
    expect(sys.reports).toEqual([])
  })
})
