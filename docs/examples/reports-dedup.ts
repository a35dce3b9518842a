// Deduplication: the same bug at the same line, three times in a loop, is one report with a count.
import {
  boot,
  kzalloc,
  kfree,
  mem_read8,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(options: BootOptions = {}): Promise<{ reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  await sys.run(() => {
    for (let i = 0; i < 3; i++) {
      const buf = kzalloc(64)
      if (!buf) return
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.write(dma, new Uint8Array(64).fill(i))
      mem_read8(buf, 0) // BUG: read before the unmap, on every iteration
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      kfree(buf)
    }
  })
  return { reports: sys.reports }
}
