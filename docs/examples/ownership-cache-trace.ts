// What each DMA API call does to the CPU cache: the state of the buffer's cache line after
// every step (invalid = not cached, clean = cached and equal to memory, dirty = cached and newer).
import {
  boot,
  kmalloc,
  kfree,
  memset,
  mem_read8,
  virt_to_phys,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_single,
  DMA_TO_DEVICE,
  DMA_FROM_DEVICE,
  DMA_BIDIRECTIONAL,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

const DIRECTIONS = [
  ['DMA_TO_DEVICE', DMA_TO_DEVICE],
  ['DMA_FROM_DEVICE', DMA_FROM_DEVICE],
  ['DMA_BIDIRECTIONAL', DMA_BIDIRECTIONAL],
] as const

export async function run(
  options: BootOptions = {},
): Promise<{ trace: string[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const nic = sys.attachTestMaster('nic0')
  const cache = sys.machine.cache // the hardware model, looked at (not touched) for the trace
  const trace: string[] = []
  await sys.run(() => {
    for (const [name, dir] of DIRECTIONS) {
      const buf = kmalloc(64) // one cache line
      if (!buf) return
      const line = virt_to_phys(buf)
      const steps: string[] = []
      const note = (what: string) => steps.push(`${what}: ${cache.lineState(line)}`)
      memset(buf, 0x11, 64)
      note('write')
      const dma = dma_map_single(nic.dev, buf, 64, dir)
      if (dma_mapping_error(nic.dev, dma)) return
      note('map')
      dma_sync_single_for_cpu(nic.dev, dma, 64, dir)
      note('sync_for_cpu')
      if (dir === DMA_FROM_DEVICE) {
        mem_read8(buf, 0) // the CPU only reads what the device wrote
        note('read')
      } else {
        memset(buf, 0x22, 64)
        note('write')
      }
      dma_sync_single_for_device(nic.dev, dma, 64, dir)
      note('sync_for_device')
      dma_unmap_single(nic.dev, dma, 64, dir)
      note('unmap')
      kfree(buf)
      trace.push(`${name.padEnd(17)}  ${steps.join(' | ')}`)
    }
  })
  return { trace, reports: sys.reports }
}
