// Cache-line sharing, fixed: the embedded buffer starts on its own cache-line boundary and
// is padded to one, so no CPU-written field shares a line with it.
//   struct rx_slot { u32 status; u8 data[64] __aligned(128); }   status at 0, data at 128..191
import {
  boot,
  kzalloc,
  kfree,
  mem_read8,
  mem_read32,
  mem_write32,
  ptr_add,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  DMA_FROM_DEVICE,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

// ARCH_DMA_MINALIGN of arm64, the largest of dmalab's platforms: a layout that is right there
// is right everywhere. (A separate kmalloc() for the buffer is the other fix.)
const DMA_ALIGN = 128

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const slot = kzalloc(2 * DMA_ALIGN) // kmalloc memory starts on an ARCH_DMA_MINALIGN boundary
    if (!slot) return []
    const rx = ptr_add(slot, DMA_ALIGN) // slot->data, padded to the end of the structure
    const dma = dma_map_single(nic.dev, rx, 64, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    mem_write32(slot, 0, 1) // slot->status = 1: a line of its own
    nic.write(dma, new Uint8Array(64).fill(0x55))
    dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
    const seen = [mem_read32(slot, 0), mem_read8(rx, 0), mem_read8(rx, 63)]
    kfree(slot)
    return seen // [status, data[0], data[63]]
  })
  return { data, reports: sys.reports }
}
