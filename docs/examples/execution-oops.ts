// An oops stops the task that caused it, not the system. sys.run() rejects with KernelOops (its
// cause is the original error); a driver's try/catch cannot swallow it, because every later
// kernel call of that task throws it again. An oops in a hard-IRQ handler is reported, that
// interrupt counts as unhandled, and the system goes on.
import {
  boot,
  DMA_NONE,
  dma_map_single,
  IRQ_HANDLED,
  KernelOops,
  kfree,
  kzalloc,
  mem_read32,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  request_irq,
  writel,
  type BootOptions,
  type CpuAddr,
  type PciDev,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const lines: string[] = []
  const priv: { pdev: PciDev | null; stats: CpuAddr | null } = { pdev: null, stats: null }
  const drv: PciDriver = {
    name: 'oops',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      priv.pdev = pdev
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      return Promise.resolve(request_irq(pdev.irq, () => {
        writel(readl(regs), ptr_add(regs, 4))
        mem_read32(priv.stats!, 0) // BUG: stats is never set: a NULL dereference
        return IRQ_HANDLED
      }, 0, 'oops', drv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  hw.fire()
  await sys.runUntilIdle()
  lines.push(`after the handler's oops: reports ${sys.reports.map((r) => r.kind).join(', ')}`)

  try {
    await sys.run(() => {
      const buf = kzalloc(64)!
      try {
        dma_map_single(priv.pdev!.dev, buf, 64, DMA_NONE) // BUG(): not a direction
      } catch {
        lines.push('the task caught the oops and goes on...')
      }
      kfree(buf) // ...but its next kernel call throws again
      lines.push('never reached')
    })
  } catch (e) {
    if (!(e instanceof KernelOops)) throw e
    lines.push(`sys.run() rejected: ${e.name}: ${e.message}`)
  }
  const still = await sys.run(() => kzalloc(64) !== null)
  lines.push(`the system still runs tasks: ${still}`)
  return { lines, reports: sys.reports }
}
