// Why unmap (and sync_for_cpu) invalidate again at the end of a transfer: while the device owns
// a buffer, the CPU may load its lines anyway (speculative prefetch, work on neighbouring data).
import {
  boot,
  alloc_page,
  __free_page,
  page_address,
  virt_to_phys,
  mem_read8,
  mem_read32,
  dma_map_page,
  dma_mapping_error,
  dma_unmap_page_attrs,
  DMA_FROM_DEVICE,
  DMA_ATTR_SKIP_CPU_SYNC,
  GFP_KERNEL,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(
  options: BootOptions = {},
  invalidateAtUnmap = false,
): Promise<{ data: number[]; lines: string[]; reports: Report[] }> {
  // speculation: 1 makes every CPU access prefetch a neighbouring line (the default is 5%).
  const sys = boot({ log: 'silent', cache: { speculation: 1 }, ...options })
  const nic = sys.attachTestMaster('nic0')
  const cache = sys.machine.cache
  const lines: string[] = []
  const data = await sys.run(() => {
    const page = alloc_page(GFP_KERNEL)
    if (!page) return []
    const buf = page_address(page) // bytes 0..255: the RX buffer; bytes 256..: other data
    const last = virt_to_phys(buf) + 192 // the buffer's last cache line
    const dma = dma_map_page(nic.dev, page, 0, 256, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    lines.push(`after map: ${cache.lineState(last)}`) // nothing of the buffer is cached
    for (let off = 256; off < 288; off += 4) mem_read32(buf, off) // the CPU works next door
    lines.push(`during the transfer: ${cache.lineState(last)}`) // prefetched: old data
    nic.write(dma, new Uint8Array(256).fill(0x55))
    // DMA_ATTR_SKIP_CPU_SYNC leaves out the unmap's invalidate: what the end of a transfer
    // would be if the kernel invalidated only when it started.
    dma_unmap_page_attrs(
      nic.dev,
      dma,
      256,
      DMA_FROM_DEVICE,
      invalidateAtUnmap ? 0 : DMA_ATTR_SKIP_CPU_SYNC,
    )
    const seen = [mem_read8(buf, 0), mem_read8(buf, 192)]
    __free_page(page)
    return seen
  })
  return { data, lines, reports: sys.reports }
}
