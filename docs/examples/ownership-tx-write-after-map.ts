// TX, buggy: the CPU fills a DMA_TO_DEVICE buffer after mapping it.
import {
  boot,
  kzalloc,
  kfree,
  memset,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  DMA_TO_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const buf = kzalloc(256)
    if (!buf) return []
    const dma = dma_map_single(nic.dev, buf, 256, DMA_TO_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    memset(buf, 0x55, 256) // BUG: the device owns buf; the frame sits in dirty cache lines
    const sent = [...nic.read(dma, 4)] // the card fetches the frame
    dma_unmap_single(nic.dev, dma, 256, DMA_TO_DEVICE)
    kfree(buf)
    return sent
  })
  return { data, reports: sys.reports }
}
