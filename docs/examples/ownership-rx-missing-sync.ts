// RX, buggy: the CPU reads a DMA_FROM_DEVICE buffer while the device still owns it.
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
  const nic = sys.attachTestMaster('nic0') // stands in for a network card
  const data = await sys.run(() => {
    const buf = kmalloc(256)
    if (!buf) return []
    memset(buf, 0xaa, 256) // old contents: these lines are now in the CPU cache
    const dma = dma_map_single(nic.dev, buf, 256, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    nic.write(dma, new Uint8Array(256).fill(0x55)) // the card receives a frame
    const seen = [...mem_read_bytes(buf, 4)] // BUG: the device still owns buf
    dma_unmap_single(nic.dev, dma, 256, DMA_FROM_DEVICE)
    kfree(buf)
    return seen
  })
  return { data, reports: sys.reports }
}
