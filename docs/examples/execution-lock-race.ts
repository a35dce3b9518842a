// A counter shared with an interrupt handler. Process context updates it under spin_lock()
// without disabling interrupts: lockdep's rule reports lock-inconsistent on every seed, whether
// or not an interrupt happens to hit the update; on some seeds one does, and an update is lost.
// spin_lock_irqsave() fixes both.
import {
  boot,
  IRQ_HANDLED,
  kzalloc,
  mem_read32,
  mem_write32,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  ptr_add,
  readl,
  request_irq,
  spin_lock,
  spin_lock_init,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_irqrestore,
  writel,
  type BootOptions,
  type CpuAddr,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

async function race(options: BootOptions, irqsave: boolean): Promise<{ lost: number; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const { lock, counter } = await sys.run(() => ({ lock: spin_lock_init(), counter: kzalloc(4)! }))
  const add = (p: CpuAddr) => mem_write32(p, 0, mem_read32(p, 0) + 1) // count++
  let interrupts = 0
  const drv: PciDriver = {
    name: 'race',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      return Promise.resolve(request_irq(pdev.irq, () => {
        writel(readl(regs), ptr_add(regs, 4))
        spin_lock(lock) // IRQs are off in a hard-IRQ handler: spin_lock is right here
        add(counter)
        spin_unlock(lock)
        interrupts++
        return IRQ_HANDLED
      }, 0, 'race', drv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  for (let i = 0; i < 10; i++) hw.fire(0, 1000 + i * 5000) // an interrupt every 5 µs
  await sys.run(() => {
    for (let i = 0; i < 1000; i++) {
      if (irqsave) {
        const flags = spin_lock_irqsave(lock)
        add(counter)
        spin_unlock_irqrestore(lock, flags)
      } else {
        spin_lock(lock) // BUG: the handler can interrupt this critical section
        add(counter)
        spin_unlock(lock)
      }
    }
  })
  await sys.runUntilIdle()
  const total = await sys.run(() => mem_read32(counter, 0))
  return { lost: 1000 + interrupts - total, reports: sys.reports }
}

export async function run(options: BootOptions = {}, irqsave = false): Promise<{ lines: string[]; reports: Report[] }> {
  const lines: string[] = []
  const reports: Report[] = []
  for (let seed = 1; seed <= 8; seed++) {
    const r = await race({ ...options, seed }, irqsave)
    reports.push(...r.reports)
    lines.push(`seed ${seed}: ${r.lost} update(s) lost; reports: ${r.reports.map((x) => x.kind).join(', ') || 'none'}`)
  }
  return { lines, reports }
}
