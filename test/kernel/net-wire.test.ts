/**
 * Two machines on one wire (coupleSystems, devices/net/wire.ts): ARP and ping between the tiny IPv4
 * stacks of two systems, through a NAPI driver on each side (test/fixtures/wire-nic.ts), with the
 * wire's delay on virtual time; and the carrier following the cable.
 */
import { describe, expect, it } from 'vitest'
import { boot, coupleSystems, netUser, pci_register_driver, type System } from '../../kernel/index.js'
import { Wire } from '../../devices/net/wire.js'
import { WirePort, wireNicDriver } from '../fixtures/wire-nic.js'

async function twoMachines(latencyNs = 5000) {
  const pa = new WirePort('wn0', new Uint8Array([2, 0xaa, 0, 0, 0, 1]))
  const pb = new WirePort('wn1', new Uint8Array([2, 0xbb, 0, 0, 0, 2]))
  const a = boot({ log: 'silent', devices: [pa] })
  const b = boot({ log: 'silent', arch: 'x86_64', seed: 3, devices: [pb] })
  const wire = new Wire({ latencyNs, bitsPerSecond: 1e9 })
  wire.connect(pa, pb)
  const ports = new Map([[pa.name, pa], [pb.name, pb]])
  for (const s of [a, b] as System[]) await s.run(() => pci_register_driver(wireNicDriver(ports)))
  coupleSystems(a, b)
  const na = netUser(a)
  const nb = netUser(b)
  expect(await na.ifup('eth0')).toBe(0)
  expect(await nb.ifup('eth0')).toBe(0)
  na.setAddress('eth0', '10.1.0.1/16')
  nb.setAddress('eth0', '10.1.0.2/16')
  return { a, b, na, nb, wire, pa, pb }
}

describe('two systems on a wire', () => {
  it('ARP and ping cross the wire and back, through a NAPI driver on each side', async () => {
    const { a, b, na, nb } = await twoMachines(5000)
    const r = await na.ping('eth0', '10.1.0.2', { count: 3, intervalMs: 1, timeoutMs: 2000 })
    expect(r.received).toBe(3)
    expect(r.replies.map((x) => x.seq)).toEqual([1, 2, 3])
    expect(na.arp('eth0')).toEqual([{ ip: '10.1.0.2', mac: '02:bb:00:00:00:02' }])
    expect(nb.arp('eth0')).toEqual([{ ip: '10.1.0.1', mac: '02:aa:00:00:00:01' }])
    expect((await nb.stats('eth0')).rx_packets).toBe(4) // an ARP request and three echo requests
    expect(nb.ipStats('eth0').icmp.OutEchoReps).toBe(3)
    expect(na.device('eth0')).toMatchObject({ driver: 'wirenic', parent: 'wn0', carrier: true })
    expect([...a.reports, ...b.reports]).toEqual([])
  })

  it('the RTT is the wire time both ways plus the stacks (coupled clocks stay together)', async () => {
    const { na, wire } = await twoMachines(5000)
    const r = await na.ping('eth0', '10.1.0.2', { count: 3, intervalMs: 1 })
    expect(r.received).toBe(3)
    // Each way: a 98-byte frame with FCS, preamble and gap at 1 Gb/s, plus 5 µs latency.
    const oneWay = wire.serialisationNs(98) + 5000
    for (const x of r.replies) {
      expect(x.rttNs).toBeGreaterThanOrEqual(2 * oneWay)
      expect(x.rttNs).toBeLessThan(2 * oneWay + 200_000)
    }
  })

  it('pulling the cable takes the carrier away on both sides; pings then fail until it is back', async () => {
    const { a, na, nb, wire } = await twoMachines()
    wire.setCarrier(false)
    await a.runFor(100_000)
    expect(na.device('eth0').carrier).toBe(false)
    expect(nb.device('eth0').carrier).toBe(false)
    expect((await na.ping('eth0', '10.1.0.2', { timeoutMs: 20 })).received).toBe(0)
    wire.setCarrier(true)
    await a.runFor(100_000)
    expect(na.device('eth0').carrier).toBe(true)
    expect((await na.ping('eth0', '10.1.0.2', { timeoutMs: 20 })).received).toBe(1)
  })

  it('unbinding the driver takes the interface away cleanly', async () => {
    const { a, na } = await twoMachines()
    await na.ping('eth0', '10.1.0.2', { timeoutMs: 20 })
    await a.unbind(a.pciDevice('wn0')!)
    expect(na.devices()).toEqual([])
    expect(na.skbsInUse).toBe(0)
    expect(a.reports).toEqual([])
  })
})
