// An interrupt arrives between two lines of process-context code, at a kernel call, unless the
// code has disabled interrupts: then it waits until they are enabled again.
import {
  boot,
  IRQ_HANDLED,
  IRQ_NONE,
  ktime_get_ns,
  local_irq_restore,
  local_irq_save,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  request_irq,
  udelay,
  writel,
  type BootOptions,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

const CAUSE = 0x00 // the test device's registers: CAUSE (read) and ACK (write 1s to clear)
const ACK = 0x04

export async function run(
  options: BootOptions = {},
  irqsOff = false,
): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const lines: string[] = []
  let t0 = 0
  const drv: PciDriver = {
    name: 'demo',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      const handler = () => {
        lines.push(`handler      at ${ktime_get_ns() - t0} ns`)
        const cause = readl(ptr_add(regs, CAUSE))
        if (!cause) return IRQ_NONE
        writel(cause, ptr_add(regs, ACK))
        return IRQ_HANDLED
      }
      return Promise.resolve(request_irq(pdev.irq, handler, 0, 'demo', drv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  t0 = sys.clock
  hw.fire(0, 8000) // the device will raise its interrupt 8 µs from now
  await sys.run(() => {
    const flags = irqsOff ? local_irq_save() : 0
    for (let step = 1; step <= 3; step++) {
      udelay(5) // 5 µs of CPU work
      lines.push(`step ${step} done at ${ktime_get_ns() - t0} ns`)
    }
    if (irqsOff) local_irq_restore(flags) // a pending interrupt is taken here
    lines.push(`task ends    at ${ktime_get_ns() - t0} ns`)
  })
  return { lines, reports: sys.reports }
}
