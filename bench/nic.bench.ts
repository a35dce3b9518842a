/**
 * NIC benchmarks (issue 4): loopback through driver -> device -> wire -> device -> driver, with the
 * checks on (every check but stack capture) and off (`checks: false`), on the default platform
 * (arm64, non-coherent, IOMMU strict, swiotlb auto).
 *
 * One system has two tnics joined by a wire (100 Gb/s, 500 ns, so the virtual wire is never the
 * limit). A process-context task does what Linux's pktgen does: it builds each frame in a fresh
 * skb (netdev_alloc_skb + skb_put_data) and hands it to dev_queue_xmit on eth0; when the driver
 * stops the queue (TX ring full) the task busy-waits (udelay) and so lets the devices, the
 * interrupts and NAPI run. eth1's driver receives each frame through its RX ring and NAPI and
 * hands it to the stack, which consumes it (an EtherType nobody listens to). The figure is frames
 * (or bits of Ethernet frames) received per host second, over a fixed number of frames after a
 * warm-up; the payloads are not checked here (the conformance suite does that).
 *
 * - nic.64b.pps.{unchecked,checked}: 64-byte frames per host second (target >= 1.5 M unchecked);
 * - nic.1500b.gbps.{unchecked,checked}: Gbit/s of 1500-byte frames (target >= 10 unchecked);
 * - checked within 2x of unchecked.
 */
import {
  boot, dev_queue_xmit, netdev_alloc_skb, netif_queue_stopped, netUser, pci_get_drvdata, pci_register_driver,
  skb_put_data, udelay, type NetDevice, type System,
} from '../kernel/index.js'
import { TnicDevice, Wire } from '../devices/index.js'
import { tnic_make_driver } from '../drivers/net/tnic.js'
import type { BenchResult } from './harness.js'

async function loopback(frameLen: number, checked: boolean, frames: number): Promise<number> {
  const tx = new TnicDevice({ name: 'tnic0' })
  const rx = new TnicDevice({ name: 'tnic1' })
  const sys: System = boot({ log: 'silent', checks: checked ? { stacks: false } : false, devices: [tx, rx] })
  new Wire({ bitsPerSecond: 100e9, latencyNs: 500 }).connect(tx, rx)
  await sys.run(() => pci_register_driver(tnic_make_driver()))
  const net = netUser(sys)
  if ((await net.ifup('eth0')) !== 0 || (await net.ifup('eth1')) !== 0) throw new Error('nic bench: ifup failed')
  await sys.runFor(10_000_000)
  const frame = new Uint8Array(frameLen)
  frame.set(rx.mac, 0)
  frame.set(tx.mac, 6)
  frame[12] = 0x88
  frame[13] = 0xb6 // an EtherType nobody listens to: the stack consumes the frame
  for (let i = 14; i < frameLen; i++) frame[i] = i & 0xff
  let ns = 0
  await sys.run(() => {
    const dev = pci_get_drvdata(sys.pciDevice('tnic0')!) as NetDevice
    const peer = pci_get_drvdata(sys.pciDevice('tnic1')!) as NetDevice
    const send = (n: number): void => {
      const target = peer.stats.rx_packets + n
      for (let i = 0; i < n; i++) {
        while (netif_queue_stopped(dev)) udelay(1)
        const skb = netdev_alloc_skb(dev, frameLen)!
        skb_put_data(skb, frame)
        dev_queue_xmit(skb)
      }
      while (peer.stats.rx_packets < target) udelay(1)
    }
    send(Math.min(20_000, frames)) // warm-up: the JIT needs tens of thousands of frames
    const t0 = performance.now()
    send(frames)
    ns = (performance.now() - t0) * 1e6
  })
  if (sys.reports.length > 0) throw new Error(`nic bench: the workload got reports: ${sys.reports.map((r) => r.kind).join(', ')}`)
  return ns / frames
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = []
  const small = { unchecked: await loopback(64, false, 40_000), checked: await loopback(64, true, 40_000) }
  const big = { unchecked: await loopback(1500, false, 20_000), checked: await loopback(1500, true, 20_000) }
  for (const k of ['unchecked', 'checked'] as const) {
    out.push({
      name: `nic.64b.pps.${k}`,
      value: Math.round(1e9 / small[k]),
      unit: 'frames/s',
      note: `64-byte frames eth0 -> wire -> eth1 through the tnic driver, checks ${k === 'checked' ? 'on (stacks off)' : 'off'}: ${small[k].toFixed(0)} ns per frame (target >= 1.5 M/s unchecked${k === 'checked' ? `; checked/unchecked time ${(small.checked / small.unchecked).toFixed(2)}x, target <= 2` : ''})`,
    })
  }
  for (const k of ['unchecked', 'checked'] as const) {
    out.push({
      name: `nic.1500b.gbps.${k}`,
      value: Number(((1500 * 8) / big[k]).toFixed(2)),
      unit: 'Gbit/s',
      note: `1500-byte frames, checks ${k === 'checked' ? 'on (stacks off)' : 'off'}: ${big[k].toFixed(0)} ns per frame (target >= 10 Gbit/s unchecked${k === 'checked' ? `; checked/unchecked time ${(big.checked / big.unchecked).toFixed(2)}x, target <= 2` : ''})`,
    })
  }
  return out
}
