/**
 * The tnic reference driver (drivers/net/tnic.ts) end to end: a tnic on a wire with an echo peer,
 * under load on every platform, IOMMU mode and swiotlb mode for 50 seeds, with zero reports; two
 * systems pinging each other; TX hang detection, the e1000_dump and the reset; ifdown/ifup with no
 * leaks. (The shared NIC conformance suite runs it too: test/net/conformance-tnic.test.ts.)
 */
import { describe, expect, it } from 'vitest'
import { boot, coupleSystems, netUser, pci_register_driver, type BootOptions, type System } from '../../kernel/index.js'
import { TnicDevice, Wire } from '../../devices/index.js'
import { TrafficPeer, buildFrame, checkTestPayload, makeTestPayload, ETH_P_TEST } from '../../devices/net/peer.js'
import { tnic_adapter_of, tnic_make_driver, type TnicParams } from '../../drivers/net/tnic.js'
import { ARCHES } from '../helpers/matrix.js'
import { Rng } from '../../devices/machine/rng.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])

interface Rig {
  sys: System
  nic: TnicDevice
  peer: TrafficPeer
  wire: Wire
}

async function rig(opts: BootOptions, params: TnicParams = {}, peerMode: 'echo' | 'sink' = 'echo'): Promise<Rig> {
  const nic = new TnicDevice({ name: 'tnic0' })
  const sys = boot({ log: 'silent', checks: { stacks: false }, ...opts, devices: [nic] })
  const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: peerMode, verify: 'none' })
  const wire = new Wire({ bitsPerSecond: 10e9, latencyNs: 500 })
  wire.connect(nic, peer)
  await sys.run(() => pci_register_driver(tnic_make_driver(params)))
  expect(await netUser(sys).ifup('eth0')).toBe(0)
  await sys.runFor(10_000_000) // the watchdog sees the link
  expect(netUser(sys).device('eth0').carrier).toBe(true)
  return { sys, nic, peer, wire }
}

/** Sends n test frames of seeded sizes through eth0 to the echo peer and checks every echo. */
async function echoLoad(r: Rig, n: number, seed: number): Promise<void> {
  const net = netUser(r.sys)
  const sock = net.socket('eth0', { capacity: n + 16 })
  const mac = r.nic.mac
  const rng = new Rng(seed)
  for (let seq = 0; seq < n; seq++) {
    const len = 60 + rng.int(1514 - 60 + 1)
    const frame = buildFrame({ dst: PEER_MAC, src: mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len - 14, seed) })
    const frags = seq % 5 === 0 ? 1 + (seq % 3) : 0
    expect(await net.send('eth0', frame, { frags })).toBe(0)
  }
  await r.sys.runUntil(() => sock.pending >= n, { timeoutNs: 1e9 })
  const seen = new Set<number>()
  for (let i = 0; i < n; i++) {
    const f = sock.recv()!
    const c = checkTestPayload(f.data.subarray(14), seed)
    if (!c.ok) throw new Error(`echo ${i}: ${c.reason}`)
    seen.add(c.seq)
  }
  expect(seen.size).toBe(n)
  sock.close()
}

/** The 50 seeds' platforms: every arch × swiotlb × IOMMU combination, cycled. */
function platformFor(seed: number): BootOptions {
  return {
    arch: ARCHES[seed % 3]!,
    swiotlb: Math.floor(seed / 3) % 2 === 0 ? 'auto' : 'force',
    iommu: Math.floor(seed / 6) % 2 === 0 ? 'strict' : 'off',
    seed,
  }
}

describe('tnic under load', () => {
  for (let seed = 1; seed <= 50; seed++) {
    const p = platformFor(seed)
    it(`is clean and loses nothing: ${p.arch} swiotlb=${p.swiotlb} iommu=${p.iommu} seed=${seed}`, async () => {
      const r = await rig(p)
      await echoLoad(r, 120, seed)
      const net = netUser(r.sys)
      await net.ifdown('eth0')
      expect(net.device('eth0').up).toBe(false)
      await r.sys.unbind(r.sys.pciDevice('tnic0')!)
      expect(r.sys.reports.map((x) => `${x.kind}: ${x.message}`)).toEqual([])
    })
  }
})

describe('tnic between two systems', () => {
  it('two coupled systems ping each other over the wire', async () => {
    const da = new TnicDevice({ name: 'tnic0' })
    const db = new TnicDevice({ name: 'tnic1' })
    const a = boot({ log: 'silent', devices: [da] })
    const b = boot({ log: 'silent', arch: 'x86_64', seed: 7, devices: [db] })
    const wire = new Wire({ bitsPerSecond: 1e9, latencyNs: 2000 })
    wire.connect(da, db)
    for (const s of [a, b]) await s.run(() => pci_register_driver(tnic_make_driver()))
    coupleSystems(a, b)
    const [na, nb] = [netUser(a), netUser(b)]
    expect(await na.ifup('eth0')).toBe(0)
    expect(await nb.ifup('eth0')).toBe(0)
    na.setAddress('eth0', '192.168.7.1/24')
    nb.setAddress('eth0', '192.168.7.2/24')
    await a.runFor(10_000_000)
    const res = await na.ping('eth0', '192.168.7.2', { count: 4, intervalMs: 2 })
    expect(res.received).toBe(4)
    const oneWay = wire.serialisationNs(98) + 2000
    for (const x of res.replies) expect(x.rttNs).toBeGreaterThan(2 * oneWay)
    expect(nb.arp('eth0')).toEqual([{ ip: '192.168.7.1', mac: '52:54:00:12:34:56' }])
    expect([...a.reports, ...b.reports]).toEqual([])
  })
})

describe('tnic parameters', () => {
  it('probe refuses ring sizes e1000_check_options would: not a multiple of 8, or too small for a maximal frame', async () => {
    for (const [params, bad] of [[{ txd: 32 }, 'TxDescriptors 32'], [{ txd: 100 }, 'TxDescriptors 100'], [{ rxd: 4 }, 'RxDescriptors 4'], [{ rxd: 8192 }, 'RxDescriptors 8192']] as const) {
      const lines: string[] = []
      const log = { error: (_: object, m: string) => lines.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined }
      const sys = boot({ log, devices: [new TnicDevice({ name: 'tnic0' })] })
      await sys.run(() => pci_register_driver(tnic_make_driver(params)))
      expect(sys.pciDevice('tnic0')!.driver).toBeNull()
      expect(lines.join('\n')).toContain(`Invalid ${bad}`)
      expect(netUser(sys).devices()).toEqual([])
    }
  })

  it('the smallest TX ring (64) keeps flowing under a back-to-back burst', async () => {
    const r = await rig({ arch: 'arm64', seed: 4 }, { txd: 64 }, 'sink')
    const net = netUser(r.sys)
    const frame = buildFrame({ dst: PEER_MAC, src: r.nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(0, 1000, 1) })
    for (let i = 0; i < 300; i++) expect(await net.send('eth0', frame, { frags: i % 4 })).toBe(0)
    await r.sys.runFor(5_000_000)
    expect(r.peer.stats.rxFrames).toBe(300)
    expect(r.sys).toHaveNoDmaReports()
  })
})

describe('tnic recovery', () => {
  it('a hung transmitter is detected, dumped, timed out and reset; traffic then flows again', async () => {
    const lines: string[] = []
    const push = (msg: string) => lines.push(msg)
    const log = { error: (_: object, m: string) => push(m), warn: (_: object, m: string) => push(m), info: (_: object, m: string) => push(m), debug: () => undefined }
    const r = await rig({ arch: 'arm64', seed: 5, log }, {}, 'sink')
    const net = netUser(r.sys)
    // The next TX DMA fails: the TX ring hangs with a frame queued.
    r.sys.machine.faults.add({ device: 'tnic0', kind: 'fail-dma', count: 1 })
    const frame = buildFrame({ dst: PEER_MAC, src: r.nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(0, 100, 1) })
    expect(await net.send('eth0', frame)).toBe(0)
    await r.sys.runFor(1_000_000)
    expect(r.nic.txStalled).toBe(true)
    // Keep sending: the watchdog notices the old frame, stops the queue, the core times it out.
    for (let i = 1; i <= 3; i++) await net.send('eth0', frame)
    await r.sys.runFor(12e9)
    const a = await r.sys.run(() => tnic_adapter_of(r.sys.pciDevice('tnic0')!.drvdata as never))
    expect(a.tx_timeout_count).toBeGreaterThanOrEqual(1)
    expect(r.nic.txStalled).toBe(false)
    expect(lines.some((l) => l.includes('Detected Tx Unit Hang'))).toBe(true)
    expect(lines.some((l) => l.includes('Tx Ring Summary'))).toBe(true)
    expect(lines.some((l) => l.includes('Reset adapter'))).toBe(true)
    // After the reset the link comes back and frames get through.
    await r.sys.runFor(10_000_000)
    const before = r.peer.stats.rxFrames
    for (let i = 0; i < 5; i++) expect(await net.send('eth0', frame)).toBe(0)
    await r.sys.runFor(1_000_000)
    expect(r.peer.stats.rxFrames - before).toBe(5)
    expect(r.sys).toHaveNoDmaReports()
  })

  it('link down and up: LSC reaches the watchdog, the carrier follows the cable, traffic resumes', async () => {
    const r = await rig({ arch: 'arm64', seed: 9 })
    const net = netUser(r.sys)
    r.wire.setCarrier(false)
    await r.sys.runFor(10_000_000)
    expect(net.device('eth0').carrier).toBe(false)
    expect(r.nic.linkUp).toBe(false)
    r.wire.setCarrier(true)
    await r.sys.runFor(10_000_000)
    expect(net.device('eth0').carrier).toBe(true)
    await echoLoad(r, 20, 77)
    expect(r.sys).toHaveNoDmaReports()
  })

  it('ifdown/ifup cycles leave nothing behind', async () => {
    const r = await rig({ arch: 'riscv64', seed: 2, swiotlb: 'force' })
    const net = netUser(r.sys)
    // Up, every RX descriptor but one holds a buffer; down, no skb is left anywhere.
    expect(net.skbsInUse).toBe(255)
    for (let c = 0; c < 4; c++) {
      await echoLoad(r, 40, 100 + c)
      await net.ifdown('eth0')
      expect(net.skbsInUse).toBe(0)
      expect(await net.ifup('eth0')).toBe(0)
      await r.sys.runFor(10_000_000)
    }
    await net.ifdown('eth0')
    await r.sys.unbind(r.sys.pciDevice('tnic0')!)
    expect(r.sys).toHaveNoDmaReports()
  })
})
