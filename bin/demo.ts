/**
 * `npm start`: the demo on the default platform (arm64, non-coherent, IOMMU strict, swiotlb auto).
 * A device fills a receive buffer twice: once with a correct driver, once with the same code
 * missing dma_sync_single_for_cpu. The second read is stale, and the sanitizer names the line.
 * Then two systems, each with a tnic NIC and the reference driver, ping each other over a wire
 * (`--pcap FILE` captures the wire for Wireshark / tshark).
 */
import { TnicDevice, Wire } from '../devices/index.js'
import { tnic_driver } from '../drivers/net/tnic.js'
import { capture } from '../host/pcap.js'
import {
  boot,
  coupleSystems,
  netUser,
  pci_register_driver,
  DMA_FROM_DEVICE,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_unmap_single,
  formatReport,
  kfree,
  kmalloc,
  mem_read32,
  memset,
  type System,
} from '../kernel/index.js'

const LEN = 256
const PACKET = 0xc0ffee00

async function receive(sys: System, sync: boolean): Promise<number> {
  const m = sys.attachTestMaster(sync ? 'nic0' : 'nic1')
  const frame = new Uint8Array(LEN)
  new DataView(frame.buffer).setUint32(0, PACKET, true)
  const got = await sys.run(() => {
    const buf = kmalloc(LEN)!
    memset(buf, 0, LEN) // the driver clears the buffer: its lines are now in the CPU cache
    const dma = dma_map_single(m.dev, buf, LEN, DMA_FROM_DEVICE)
    if (dma_mapping_error(m.dev, dma)) throw new Error('mapping failed')
    m.write(dma, frame) // the device DMAs a packet into RAM
    if (sync) dma_sync_single_for_cpu(m.dev, dma, LEN, DMA_FROM_DEVICE)
    const word = mem_read32(buf, 0) // the driver reads the packet header
    dma_unmap_single(m.dev, dma, LEN, DMA_FROM_DEVICE)
    kfree(buf)
    return word
  })
  m.detach()
  return got
}

/** Two systems (this platform and x86_64), a tnic each, one wire: ifup, addresses, ping. */
async function pingOverWire(arch: 'arm64' | 'x86_64' | 'riscv64', pcap: string | null): Promise<void> {
  const nicA = new TnicDevice({ name: 'tnic0' })
  const nicB = new TnicDevice({ name: 'tnic1' })
  const a = boot({ arch, log: 'silent', devices: [nicA] })
  const b = boot({ arch: 'x86_64', seed: 2, log: 'silent', devices: [nicB] })
  const wire = new Wire({ bitsPerSecond: 1e9, latencyNs: 5000 })
  wire.connect(nicA, nicB)
  const cap = pcap === null ? null : capture(wire, pcap)
  for (const s of [a, b]) await s.run(() => pci_register_driver(tnic_driver))
  coupleSystems(a, b) // one virtual timeline for both machines
  const [na, nb] = [netUser(a), netUser(b)]
  await na.ifup('eth0')
  await nb.ifup('eth0')
  na.setAddress('eth0', '10.0.0.1/24')
  nb.setAddress('eth0', '10.0.0.2/24')
  await a.runFor(10_000_000) // the drivers' watchdogs see the link come up
  console.log(`   ${a.arch} 10.0.0.1 (${na.device('eth0').mac}) <-- 1 Gb/s wire, 5 us --> x86_64 10.0.0.2 (${nb.device('eth0').mac})`)
  console.log('   PING 10.0.0.2 56(84) bytes of data.')
  const r = await na.ping('eth0', '10.0.0.2', { count: 4, intervalMs: 100 })
  for (const x of r.replies) console.log(`   ${x.bytes} bytes from ${x.from}: icmp_seq=${x.seq} ttl=${x.ttl} time=${(x.rttNs / 1000).toFixed(1)} us (virtual)`)
  console.log(`   ${r.transmitted} packets transmitted, ${r.received} received — reports: ${a.reports.length + b.reports.length}`)
  if (cap !== null) {
    cap.stop()
    console.log(`   wire captured to ${pcap} (${cap.frames} frames): tshark -r ${pcap}`)
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`
const args = process.argv.slice(2)
if (args.includes('--help') || args.includes('-h')) {
  console.log('usage: npm start [-- [arm64|x86_64|riscv64] [--pcap FILE]]   (default arm64)')
  process.exit(0)
}
const pcapAt = args.indexOf('--pcap')
const pcap = pcapAt < 0 ? null : (args[pcapAt + 1] ?? null)
if (pcapAt >= 0 && (pcap === null || pcap.startsWith('-'))) {
  console.error('demo: --pcap needs a file name')
  process.exit(2)
}
if (pcapAt >= 0) args.splice(pcapAt, 2)
if (args.length > 1) {
  console.error(`demo: unexpected argument '${args[1]}' (see --help)`)
  process.exit(2)
}
const arch = args[0] ?? 'arm64'
if (arch !== 'arm64' && arch !== 'x86_64' && arch !== 'riscv64') {
  console.error(`demo: unknown architecture '${arch}' (use arm64, x86_64 or riscv64)`)
  process.exit(2)
}
const sys = boot({ arch, log: 'silent' })
console.log(`dmalab demo — platform ${sys.arch}, ${sys.machine.coherent ? 'coherent' : 'non-coherent'} DMA, IOMMU ${sys.options.iommu}, swiotlb ${sys.options.swiotlb}, seed ${sys.seed}\n`)

console.log('1. A correct receive: map FROM_DEVICE, device writes, dma_sync_single_for_cpu, read.')
const good = await receive(sys, true)
console.log(`   read ${hex(good)} (the device wrote ${hex(PACKET)}) — reports: ${sys.reports.length}\n`)

console.log('2. The same code without dma_sync_single_for_cpu.')
const bad = await receive(sys, false)
console.log(`   read ${hex(bad)} — ${bad === PACKET ? `correct here only because ${sys.arch} is cache coherent: the bug is there all the same` : 'STALE: the CPU read its cached copy, not what the device wrote'}`)
console.log(`   reports: ${sys.reports.length}\n`)
for (const r of sys.reports) console.log(formatReport(r))
console.log('\nThe fix: call dma_sync_single_for_cpu (or dma_unmap_single) before the CPU reads a FROM_DEVICE buffer.')
console.log(arch === 'x86_64' ? 'On arm64 (npm start) the same bug also returns stale data.' : 'Try `npm start -- x86_64`: the data survives there (coherent), but the report is the same.')

console.log('\n3. Two machines on a wire, each with a tnic NIC and its e1000-style driver (drivers/net/tnic.ts).')
await pingOverWire(arch, pcap)
