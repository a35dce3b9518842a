// The cost model: CPU work advances the virtual clock and counts as busy time; sleeping and
// waiting for a device count as idle time. Boot options override the defaults.
import {
  boot,
  DEFAULT_COSTS,
  ktime_get_ns,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  udelay,
  writel,
  type BootOptions,
  type IoAddr,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const costs = { ...DEFAULT_COSTS, ...options.costs }
  const lines = [`mmioReadNs=${costs.mmioReadNs} mmioWriteNs=${costs.mmioWriteNs} kernelCallNs=${costs.kernelCallNs}`]
  let regs = 0 as IoAddr
  const drv: PciDriver = {
    name: 'costs',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      regs = pci_iomap(pdev, 0)!
      return Promise.resolve(0)
    },
  }
  await sys.run(() => pci_register_driver(drv))
  await sys.run(async () => {
    const measure = async (what: string, fn: () => unknown) => {
      const t = ktime_get_ns()
      await fn()
      lines.push(`${what.padEnd(16)} ${String(ktime_get_ns() - t).padStart(8)} ns`)
    }
    await measure('readl', () => readl(regs))
    await measure('writel', () => writel(0, ptr_add(regs, 0x08)))
    await measure('udelay(10)', () => udelay(10))
    await measure('msleep(1)', () => msleep(1))
  })
  const { busyNs, idleNs, utilisation } = sys.cpu
  lines.push(`sys.cpu: busy ${busyNs} ns, idle ${idleNs} ns, utilisation ${(utilisation * 100).toFixed(2)} %`)
  return { lines, reports: sys.reports }
}
