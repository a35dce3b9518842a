// Coherent memory: shared by CPU and device at all times; no map, no sync.
import {
  boot,
  dma_alloc_coherent,
  dma_free_coherent,
  mem_read8,
  mem_write8,
  ptr_add,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const data = await sys.run(() => {
    const ring = dma_alloc_coherent(nic.dev, 4096) // e.g. a descriptor ring
    if (!ring) return []
    mem_write8(ring.cpu, 0, 0x11) // the CPU writes a descriptor field ...
    const fetched = nic.read(ring.dma, 1)[0]! // ... the device sees it at once
    nic.write(ptr_add(ring.dma, 1), Uint8Array.of(0x22)) // the device writes a status byte ...
    const status = mem_read8(ring.cpu, 1) // ... the CPU sees it at once
    dma_free_coherent(nic.dev, 4096, ring.cpu, ring.dma)
    return [fetched, status]
  })
  return { data, reports: sys.reports }
}
