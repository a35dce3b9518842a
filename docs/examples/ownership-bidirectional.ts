// DMA_BIDIRECTIONAL, reused: the device reads a command and writes its answer in place.
// Each round hands the buffer over twice: sync_for_cpu before the CPU looks, sync_for_device after.
import {
  boot,
  kzalloc,
  kfree,
  mem_read8,
  mem_write8,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_single,
  DMA_BIDIRECTIONAL,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'

export async function run(
  options: BootOptions = {},
): Promise<{ data: number[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const ctl = sys.attachTestMaster('ctl0') // a controller that answers commands
  const data = await sys.run(() => {
    const buf = kzalloc(64)
    if (!buf) return []
    mem_write8(buf, 0, 1) // command 1, written while the CPU owns buf
    const dma = dma_map_single(ctl.dev, buf, 64, DMA_BIDIRECTIONAL)
    if (dma_mapping_error(ctl.dev, dma)) return []
    const answers: number[] = []
    for (let cmd = 1; cmd <= 3; cmd++) {
      const op = ctl.read(dma, 1)[0]! // the device fetches the command ...
      ctl.write(dma, Uint8Array.of(op | 0x80)) // ... and writes its answer over it
      dma_sync_single_for_cpu(ctl.dev, dma, 64, DMA_BIDIRECTIONAL) // device -> CPU
      answers.push(mem_read8(buf, 0))
      mem_write8(buf, 0, cmd + 1) // the next command
      dma_sync_single_for_device(ctl.dev, dma, 64, DMA_BIDIRECTIONAL) // CPU -> device
    }
    dma_unmap_single(ctl.dev, dma, 64, DMA_BIDIRECTIONAL)
    kfree(buf)
    return answers
  })
  return { data, reports: sys.reports }
}
