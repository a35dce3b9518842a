// Cache-line sharing, buggy: an RX buffer embedded in a structure, right after a field the CPU
// writes while the device owns the buffer.
//   struct rx_slot { u32 status; u8 data[64]; }   status at 0..3, data at 4..67
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

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const slot = kzalloc(128)
    if (!slot) return []
    const rx = ptr_add(slot, 4) // slot->data
    const dma = dma_map_single(nic.dev, rx, 64, DMA_FROM_DEVICE)
    if (dma_mapping_error(nic.dev, dma)) return []
    mem_write32(slot, 0, 1) // BUG: slot->status = 1 dirties the line holding data[0..59]
    nic.write(dma, new Uint8Array(64).fill(0x55)) // the card receives 64 bytes
    dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
    const seen = [mem_read32(slot, 0), mem_read8(rx, 0), mem_read8(rx, 63)]
    kfree(slot)
    return seen // [status, data[0], data[63]]
  })
  return { data, reports: sys.reports }
}
