// The contexts of DESIGN.md §5 in one run: a hard-IRQ handler (atomic) wakes its thread (process
// context: it may sleep), which arms a timer (softirq: atomic), which queues a work item (process
// context). IRQF_ONESHOT keeps the level-triggered line masked until the thread has acked it.
import {
  boot,
  INIT_WORK,
  IRQ_HANDLED,
  IRQ_NONE,
  IRQ_WAKE_THREAD,
  IRQF_ONESHOT,
  irqs_disabled,
  jiffies,
  ktime_get_ns,
  mod_timer,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  request_threaded_irq,
  schedule_work,
  timer_setup,
  writel,
  type BootOptions,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

const CAUSE = 0x00
const ACK = 0x04

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const lines: string[] = []
  const note = (where: string) =>
    lines.push(`${where.padEnd(28)} ${String(ktime_get_ns()).padStart(8)} ns  irqs_disabled()=${irqs_disabled()}`)
  const drv: PciDriver = {
    name: 'contexts',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      note('probe (process)')
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      const work = INIT_WORK(null, async () => {
        note('work item (process)')
        await msleep(1)
        note('work item, after msleep(1)')
      })
      const timer = timer_setup(null, () => {
        note('timer callback (softirq)')
        schedule_work(work)
      })
      const hardirq = () => {
        note('hard-IRQ handler (atomic)')
        return readl(ptr_add(regs, CAUSE)) ? IRQ_WAKE_THREAD : IRQ_NONE
      }
      const thread = async () => {
        note('threaded handler (process)')
        await msleep(1) // the device still drives its line; ONESHOT keeps it masked
        writel(readl(ptr_add(regs, CAUSE)), ptr_add(regs, ACK))
        note('threaded handler, acked')
        mod_timer(timer, jiffies() + 1)
        return IRQ_HANDLED
      }
      return Promise.resolve(request_threaded_irq(pdev.irq, hardirq, thread, IRQF_ONESHOT, 'contexts', drv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  hw.fire(0, 10_000)
  await sys.runUntilIdle()
  return { lines, reports: sys.reports }
}
