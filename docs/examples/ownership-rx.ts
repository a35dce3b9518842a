// RX, correct: the CPU reads the buffer only after dma_unmap_single has handed it back.
import {
  boot,
  kmalloc,
  kfree,
  memset,
  mem_read_bytes,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const buf = kmalloc(256)
    if (!buf) return []
    memset(buf, 0xaa, 256)
    const dma = dma_map_single(nic.dev, buf, 256, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    nic.write(dma, new Uint8Array(256).fill(0x55))
    dma_unmap_single(nic.dev, dma, 256, DMA_FROM_DEVICE) // the CPU owns buf again
    const seen = [...mem_read_bytes(buf, 4)]
    kfree(buf)
    return seen
  })
  return { data, reports: sys.reports }
}
