// RX buffer recycling: a DMA_FROM_DEVICE buffer stays mapped; after each frame the CPU syncs it,
// only reads it, and gives it back to the device without dma_sync_single_for_device.
import {
  boot,
  kmalloc,
  kfree,
  mem_read8,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
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
    const dma = dma_map_single(nic.dev, buf, 256, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    const seen: number[] = []
    for (let frame = 1; frame <= 3; frame++) {
      nic.write(dma, new Uint8Array(256).fill(0x10 + frame)) // a frame arrives
      dma_sync_single_for_cpu(nic.dev, dma, 256, DMA_FROM_DEVICE)
      seen.push(mem_read8(buf, 0)) // look at the header, drop the frame: read only
      // no dma_sync_single_for_device: the CPU wrote nothing, so nothing needs cleaning
    }
    dma_unmap_single(nic.dev, dma, 256, DMA_FROM_DEVICE)
    kfree(buf)
    return seen
  })
  return { data, reports: sys.reports }
}
