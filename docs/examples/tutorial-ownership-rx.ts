// One streaming RX buffer's life, run twice on arm64: once by the rules (map, the device writes,
// sync_for_cpu, the CPU reads, sync_for_device, the device writes again, unmap) and once with the
// classic bug, a CPU read while the device owns the buffer. The ownership recorder
// (host/ownership-diagram.ts) follows the DMA API trace points, the device's DMA and the reports;
// each run's history is printed and drawn as a Mermaid sequence diagram.
import {
  boot,
  kmalloc,
  kfree,
  memset,
  mem_read8,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_single,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'
import { apiName, ownershipDiagram, recordOwnership } from '../../host/ownership-diagram.js'

async function life(options: BootOptions, bug: boolean, lines: string[], reports: Report[]) {
  const reads: string[] = []
  const sys = boot({ log: 'silent', arch: 'arm64', ...options })
  const nic = sys.attachTestMaster('nic0') // stands in for a network card
  const rec = recordOwnership(sys)
  await sys.run(() => {
    const buf = kmalloc(256)
    if (!buf) return
    memset(buf, 0, 256)
    const dma = dma_map_single(nic.dev, buf, 256, DMA_FROM_DEVICE) // the device owns buf
    if (dma_mapping_error(nic.dev, dma)) return
    if (bug) mem_read8(buf, 0) // BUG: the CPU peeks while the device owns buf
    nic.write(dma, new Uint8Array(256).fill(0x11)) // frame 1 arrives
    dma_sync_single_for_cpu(nic.dev, dma, 256, DMA_FROM_DEVICE) // the CPU owns buf
    reads.push(`  then the CPU reads 0x${mem_read8(buf, 0).toString(16)}: frame 1`)
    dma_sync_single_for_device(nic.dev, dma, 256, DMA_FROM_DEVICE) // the device owns buf again
    nic.write(dma, new Uint8Array(256).fill(0x22)) // frame 2 arrives
    dma_unmap_single(nic.dev, dma, 256, DMA_FROM_DEVICE) // the CPU owns buf for good
    reads.push(`  then the CPU reads 0x${mem_read8(buf, 0).toString(16)}: frame 2`)
    kfree(buf)
  })
  rec.stop()
  const b = rec.buffer(1)!
  for (const s of b.steps) {
    if (s.what === 'api') lines.push(`  ${s.event.time} ns: ${apiName(s.event)} at ${s.event.site}`)
    else if (s.what === 'device')
      lines.push(`  ${s.time} ns: nic0 DMA ${s.write ? 'write' : 'read'}, ${s.len} bytes`)
    else lines.push(`  ${s.event.time} ns: REPORT ${s.event.kind} at ${s.event.site}`)
  }
  lines.push(...reads)
  reports.push(...sys.reports)
  return ownershipDiagram(b)
}

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const lines: string[] = []
  const reports: Report[] = []
  lines.push('by the rules:')
  const good = await life(options, false, lines, reports)
  lines.push('with a CPU read while the device owns the buffer:')
  const bad = await life(options, true, lines, reports)
  return { lines, reports, files: { 'ownership-rx.mmd': good, 'ownership-rx-bug.mmd': bad } }
}
