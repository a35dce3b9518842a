// Two machines. On the first (arm64, IOMMU strict) a device is given one 256-byte buffer and
// writes three times: into it, past its end on the same page, and on the next page; the hardware
// tracer shows which writes went through. On the second (x86_64, no IOMMU, swiotlb=force, as in a
// confidential-computing guest) every mapping is bounced: the device only ever sees a slot in the
// swiotlb pool, and the DMA API copies between it and the buffer. The picture follows the buffer
// and its slot through each call and device access (host/bounce-svg.ts).
import {
  boot,
  kmalloc,
  kfree,
  memset,
  mem_read8,
  ptr_add,
  virt_to_phys,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_single,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'
import { BOUNCE_MOVED, bounceSvg, recordBounce } from '../../host/bounce-svg.js'

const hex = (n: number) => `0x${n.toString(16)}`

async function strict(options: BootOptions, lines: string[], reports: Report[]) {
  const sys = boot({ log: 'silent', arch: 'arm64', iommu: 'strict', ...options })
  const dev = sys.attachTestMaster('nic0')
  const trace = sys.machine.tracer.record(['dma'])
  await sys.run(() => {
    const buf = kmalloc(256)
    if (!buf) return
    const dma = dma_map_single(dev.dev, buf, 256, DMA_FROM_DEVICE)
    if (dma_mapping_error(dev.dev, dma)) return
    lines.push(`IOMMU strict: buf at pa ${hex(virt_to_phys(buf))} is mapped at IOVA ${hex(dma)}`)
    dev.write(dma, new Uint8Array(256).fill(0x55)) // into the buffer
    dev.write(ptr_add(dma, 256), new Uint8Array(16).fill(0x66)) // past its end, on its page
    dev.write(ptr_add(dma, -4096), new Uint8Array(16).fill(0x77)) // on the page before: not mapped
    dma_unmap_single(dev.dev, dma, 256, DMA_FROM_DEVICE)
    kfree(buf)
  })
  trace.stop()
  for (const l of trace.lines()) lines.push(`  ${l}`)
  reports.push(...sys.reports)
  for (const r of sys.reports) lines.push(`  ${r.kind}: ${r.message}`)
}

async function bounced(options: BootOptions, lines: string[], reports: Report[]) {
  const sys = boot({ log: 'silent', arch: 'x86_64', iommu: 'off', swiotlb: 'force', ...options })
  const dev = sys.attachTestMaster('nic0')
  let svg = ''
  await sys.run(() => {
    const buf = kmalloc(256)
    if (!buf) return
    const rec = recordBounce(sys, { device: 'nic0', cpuPa: virt_to_phys(buf) })
    memset(buf, 0xaa, 256)
    rec.mark('CPU writes')
    const dma = dma_map_single(dev.dev, buf, 256, DMA_BIDIRECTIONAL)
    if (dma_mapping_error(dev.dev, dma)) return
    lines.push(
      `swiotlb=force: buf at pa ${hex(virt_to_phys(buf))} is mapped at ${hex(dma)}, a bounce slot`,
    )
    dev.write(dma, new Uint8Array(256).fill(0x55))
    dma_sync_single_for_cpu(dev.dev, dma, 256, DMA_BIDIRECTIONAL)
    lines.push(`  after sync_for_cpu the CPU reads ${hex(mem_read8(buf, 0))}`)
    rec.mark('CPU reads')
    memset(buf, 0x66, 256)
    rec.mark('CPU writes')
    dma_sync_single_for_device(dev.dev, dma, 256, DMA_BIDIRECTIONAL)
    lines.push(`  after sync_for_device the device reads ${hex(dev.read(dma, 1)[0]!)}`)
    dev.write(dma, new Uint8Array(256).fill(0x77))
    dma_unmap_single(dev.dev, dma, 256, DMA_BIDIRECTIONAL)
    lines.push(`  after unmap the CPU reads ${hex(mem_read8(buf, 0))}`)
    rec.stop()
    for (const c of rec.columns)
      lines.push(
        `  ${`${c.time} ns`.padStart(7)} ${c.label.padEnd(27)} buffer ${hex(c.buffer)} slot ${c.slot === null ? '-' : hex(c.slot)}  ${BOUNCE_MOVED[c.moved]}`.trimEnd(),
      )
    svg = bounceSvg(rec, {
      title: `${sys.machine.arch} swiotlb=force: a 256-byte DMA_BIDIRECTIONAL buffer and its bounce slot`,
    })
    kfree(buf)
  })
  reports.push(...sys.reports)
  return svg
}

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const lines: string[] = []
  const reports: Report[] = []
  await strict(options, lines, reports)
  const svg = await bounced(options, lines, reports)
  return { lines, reports, files: { 'iommu-bounce.svg': svg } }
}
