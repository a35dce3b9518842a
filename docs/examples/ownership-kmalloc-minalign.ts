// Cache-line sharing between two separate kmalloc objects, on a platform that does not align
// kmalloc memory to ARCH_DMA_MINALIGN (booted with kmallocMinAlign: 8).
import {
  boot,
  kzalloc,
  kfree,
  mem_read8,
  mem_write8,
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
  const sys = boot({ log: 'silent', kmallocMinAlign: 8, ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const rx = kzalloc(32) // an RX buffer ...
    const stats = kzalloc(32) // ... and an unrelated object, right behind it in the same line
    if (!rx || !stats) return []
    const dma = dma_map_single(nic.dev, rx, 32, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    mem_write8(stats, 0, 1) // another part of the driver updates its statistics
    nic.write(dma, new Uint8Array(32).fill(0x55))
    dma_unmap_single(nic.dev, dma, 32, DMA_FROM_DEVICE)
    const seen = [mem_read8(rx, 0), mem_read8(stats, 0)]
    kfree(stats)
    kfree(rx)
    return seen // [rx[0], stats[0]]
  })
  return { data, reports: sys.reports }
}
