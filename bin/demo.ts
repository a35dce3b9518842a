/**
 * `npm start`: the demo on the default platform (arm64, non-coherent, IOMMU strict, swiotlb auto).
 * A device fills a receive buffer twice: once with a correct driver, once with the same code
 * missing dma_sync_single_for_cpu. The second read is stale, and the sanitizer names the line.
 */
import {
  boot,
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

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`
const arch = process.argv[2] ?? 'arm64'
if (arch === '--help' || arch === '-h') {
  console.log('usage: npm start [-- arm64|x86_64|riscv64]   (default arm64)')
  process.exit(0)
}
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
