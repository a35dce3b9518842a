// A streaming DMA_FROM_DEVICE buffer on a non-coherent machine, used wrongly: the CPU reads it
// while the device owns it. That read pulls the old contents into the cache; the device then writes
// RAM behind the cache's back, and the next read returns the stale cached copy. The picture samples
// the buffer's cache lines at every DMA API call and after each CPU access (host/cacheline-svg.ts).
import {
  boot,
  kmalloc,
  kfree,
  memset,
  mem_read8,
  virt_to_phys,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'
import { recordCacheLines, cacheLineSvg } from '../../host/cacheline-svg.js'

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const sys = boot({ log: 'silent', arch: 'arm64', ...options })
  const nic = sys.attachTestMaster('nic0') // stands in for a network card
  const lines: string[] = []
  let svg = ''
  await sys.run(() => {
    const buf = kmalloc(128) // two 64-byte cache lines
    if (!buf) return
    const rec = recordCacheLines(sys, { pa: virt_to_phys(buf), len: 128, device: 'nic0' })
    memset(buf, 0xaa, 128) // old contents, written through the cache
    rec.mark('CPU writes')
    const dma = dma_map_single(nic.dev, buf, 128, DMA_FROM_DEVICE) // arm64 cleans: the lines stay cached
    if (dma_mapping_error(nic.dev, dma)) return
    lines.push(`before the device writes, the CPU reads 0x${mem_read8(buf, 0).toString(16)} (BUG: the device owns buf)`)
    rec.mark('CPU reads')
    nic.write(dma, new Uint8Array(128).fill(0x55)) // the card receives a frame into RAM
    rec.mark('device writes')
    const seen = mem_read8(buf, 0)
    lines.push(`after the device wrote 0x55, the CPU reads 0x${seen.toString(16)}${seen !== 0x55 ? ' (stale)' : ''}`)
    rec.mark('CPU reads')
    dma_unmap_single(nic.dev, dma, 128, DMA_FROM_DEVICE) // invalidate: ownership back to the CPU
    lines.push(`after dma_unmap_single, the CPU reads 0x${mem_read8(buf, 0).toString(16)}`)
    rec.mark('CPU reads')
    rec.stop()
    svg = cacheLineSvg(rec, { title: `${sys.machine.arch}: a DMA_FROM_DEVICE buffer read while the device owns it` })
    kfree(buf)
  })
  return { lines, reports: sys.reports, files: { 'mappings-stale.svg': svg } }
}
