// Sharing an INTx line, as Linux does it. The bus routes slot n's INTA# to line n % 4, so the
// devices in slots 0 and 4 share a line; each driver's handler is called for every interrupt on
// it, and claims only what its own device raised.
import {
  boot,
  EBUSY,
  EINVAL,
  free_irq,
  IRQ_HANDLED,
  IRQ_NONE,
  IRQF_SHARED,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  request_irq,
  writel,
  type BootOptions,
  type IoAddr,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

interface Priv {
  name: string
  regs: IoAddr
}

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = [0, 1, 2, 3, 4].map((i) => new IrqTestDevice(`irqdev${i}`))
  const lines: string[] = []
  const dmesg = (_: object, msg: string) => lines.push(`  kernel log: ${msg}`)
  const log = { error: dmesg, warn: dmesg, info: () => undefined, debug: () => undefined }
  const sys = boot({ ...options, devices: hw, log })
  const handler = (irq: number, dev_id: unknown) => {
    const priv = dev_id as Priv
    const cause = readl(priv.regs)
    lines.push(`irq ${irq}: handler of ${priv.name} returns ${cause ? 'IRQ_HANDLED' : 'IRQ_NONE'}`)
    if (!cause) return IRQ_NONE // not my device: another one on this line raised it
    writel(cause, ptr_add(priv.regs, 4))
    return IRQ_HANDLED
  }
  const privs = new Map<string, Priv>()
  const drv: PciDriver = {
    name: 'shared',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      const priv = { name: pdev.name, regs: pci_iomap(pdev, 0)! }
      privs.set(pdev.name, priv)
      return Promise.resolve(request_irq(pdev.irq, handler, IRQF_SHARED, 'shared', priv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  const line = hw[4]!.intxLine
  lines.push(`irqdev0 is on line ${hw[0]!.intxLine}, irqdev4 on line ${line}`)
  hw[4]!.fire()
  await sys.runUntilIdle()
  await sys.run(async () => {
    const errno: Record<number, string> = { [-EINVAL]: '-EINVAL', [-EBUSY]: '-EBUSY', 0: '0' }
    const rc = (what: string, v: unknown) => lines.push(`${what.padEnd(46)} -> ${errno[v as number] ?? String(v)}`)
    rc('request_irq(line, h, IRQF_SHARED, "x", null)', request_irq(line, handler, IRQF_SHARED, 'x', null))
    rc('request_irq(line, h, 0, "x", dev)', request_irq(line, handler, 0, 'x', {}))
    rc('free_irq(line, wrong dev_id)', await free_irq(line, { name: 'not mine' }))
    rc('free_irq(line, irqdev4 dev_id)', await free_irq(line, privs.get('irqdev4')))
  })
  return { lines, reports: sys.reports }
}
