// The same copy into the copy engine's on-card SRAM, done twice for a small and a large buffer:
// by PIO (the CPU writes every 32-bit word to the PIO_DATA register) and by DMA (the CPU programs
// the engine, sleeps, and the engine reads the buffer and interrupts). It prints the CPU busy time
// and the completion latency of each; the picture shows when the CPU and the engine were busy,
// from the run's trace points (host/timeline-svg.ts).
import {
  alloc_pages,
  boot,
  get_order,
  GFP_KERNEL,
  mem_write_bytes,
  page_address,
  pci_register_driver,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import {
  CE_CTRL,
  CE_CTRL_START,
  ce_driver,
  ce_to_sram_dma,
  ce_to_sram_pio,
} from '../../drivers/misc/copy-engine.js'
import { fmtNs, recordTimeline, timelineSvg, type TimelinePanel } from '../../host/timeline-svg.js'

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const sys = boot({ log: 'silent', ...options, devices: [new CopyEngine()] })
  const lines: string[] = []
  const panels: TimelinePanel[] = []
  await sys.run(async () => {
    if ((await pci_register_driver(ce_driver)) !== 0) return
    const pdev = sys.pciDevice('ce0')!
    const rec = recordTimeline(sys, {
      device: 'ce0',
      starts: (e) => e.off === CE_CTRL && (Number(e.value) & CE_CTRL_START) !== 0,
    })
    for (const size of [256, 16384]) {
      const page = alloc_pages(GFP_KERNEL, get_order(size))
      if (page === null) return
      const src = page_address(page)
      mem_write_bytes(src, new Uint8Array(size).fill(0x5a))
      rec.begin('PIO')
      await ce_to_sram_pio(pdev, src, size) // the CPU moves every word
      const pio = rec.end()
      rec.begin('DMA')
      await ce_to_sram_dma(pdev, src, size) // the engine moves them
      const dma = rec.end()
      for (const r of [pio, dma]) {
        lines.push(
          `${size} bytes by ${r.label}: CPU busy ${fmtNs(r.cpuBusyNs)}, done after ${fmtNs(r.latencyNs)}`,
        )
      }
      panels.push({
        title: `${size} bytes into the engine's SRAM`,
        runs: [pio, dma],
        device: 'ce0',
      })
    }
    rec.stop()
  })
  const title = `${sys.machine.arch}: the same copy by PIO and by DMA`
  return {
    lines,
    reports: sys.reports,
    files: { 'what-is-dma-copy.svg': timelineSvg(panels, { title }) },
  }
}
