/**
 * The report catalogue's examples of the kinds that need a device and a driver (docs/reports.md):
 * missing-barrier, invalid-context, lock-inconsistent, irq-unhandled, bus-master-disabled and
 * device-error. Each runs on a system with one IrqTestDevice (test/fixtures/irq-device.ts: a small
 * PCI function that raises interrupts and does DMA on command) bound to a driver whose probe does
 * nothing. The body of each scenario is quoted in docs/reports.md: process-context code of that
 * driver, given its pci_dev, BAR 0 mapped with pci_iomap (not yet enabled) and, to play the
 * hardware's part, the device model `hw`.
 */

import {
  boot,
  dma_alloc_coherent,
  dma_free_coherent,
  IRQ_HANDLED,
  IRQ_NONE,
  KernelOops,
  lower_32_bits,
  local_irq_restore,
  local_irq_save,
  mem_read32,
  mem_write32,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  pci_set_master,
  ptr_add,
  readl,
  request_irq,
  spin_lock,
  spin_lock_init,
  spin_unlock,
  writel,
  writel_relaxed,
  type BootOptions,
  type IoAddr,
  type PciDev,
  type PciDriver,
  type Report,
  type ReportKind,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

/** The test device's registers (BAR 0). */
const CAUSE = 0x00 // pending interrupt causes (read)
const ACK = 0x04 // write 1s to clear causes; the INTx line drops when none is left
const DMA_ADDR = 0x08 // where the device fetches a 32-bit descriptor from
const DMA_GO = 0x0c // fetch it in 1 µs
const DOORBELL = 0x14 // fetch it now

export interface DriverScenario {
  /** The report kind the scenario demonstrates. */
  readonly kind: ReportKind
  /** Boot options it needs (options given to run() take precedence). */
  readonly boot?: BootOptions
  /** Process-context code of the driver bound to `pdev`; `hw` is the device model. */
  readonly body: (pdev: PciDev, regs: IoAddr, hw: IrqTestDevice) => void | Promise<void>
}

const le32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer)

export const scenarios: Readonly<Record<string, DriverScenario>> = {
  'missing-barrier': {
    kind: 'missing-barrier',
    body: (pdev, regs) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      const desc = dma_alloc_coherent(pdev.dev, 4096)!
      writel(lower_32_bits(desc.dma), ptr_add(regs, DMA_ADDR))
      mem_write32(desc.cpu, 0, 0xd00dfeed) // the descriptor
      writel_relaxed(1, ptr_add(regs, DOORBELL)) // BUG: no dma_wmb(); the device fetches now
      dma_free_coherent(pdev.dev, 4096, desc.cpu, desc.dma)
    },
  },
  'missing-barrier-own': {
    kind: 'missing-barrier',
    body: async (pdev, _regs, hw) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      const ring = dma_alloc_coherent(pdev.dev, 4096)!
      mem_write32(ring.cpu, 0, 0xb0d1) // the descriptor body
      mem_write32(ring.cpu, 4, 1) // BUG: its OWN bit, with no dma_wmb() after the body
      await msleep(1)
      hw.deviceRead(ring.dma + 4, 4) // the device polls the OWN bit, finds it set,
      hw.deviceRead(ring.dma, 4) // and reads the body
      dma_free_coherent(pdev.dev, 4096, ring.cpu, ring.dma)
    },
  },
  'missing-barrier-rmb': {
    kind: 'missing-barrier',
    body: (pdev, _regs, hw) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      const ring = dma_alloc_coherent(pdev.dev, 4096)!
      hw.deviceWrite(ring.dma, le32(0x12345678)) // the device writes the data,
      hw.deviceWrite(ring.dma + 4, le32(1)) // then the descriptor-done bit
      if (mem_read32(ring.cpu, 4) & 1) mem_read32(ring.cpu, 0) // BUG: no dma_rmb() in between
      dma_free_coherent(pdev.dev, 4096, ring.cpu, ring.dma)
    },
  },
  'invalid-context': {
    kind: 'invalid-context',
    body: async () => {
      const lock = spin_lock_init()
      spin_lock(lock)
      await msleep(1) // BUG: sleeps with a spinlock held
      spin_unlock(lock)
    },
  },
  'invalid-context-free-coherent': {
    kind: 'invalid-context',
    body: (pdev) => {
      const ring = dma_alloc_coherent(pdev.dev, 4096)!
      const flags = local_irq_save()
      dma_free_coherent(pdev.dev, 4096, ring.cpu, ring.dma) // BUG: with interrupts disabled
      local_irq_restore(flags)
    },
  },
  'lock-inconsistent': {
    kind: 'lock-inconsistent',
    body: async (pdev, regs, hw) => {
      pci_enable_device(pdev)
      const lock = spin_lock_init()
      const stats = { events: 0 }
      const handler = () => {
        writel(readl(ptr_add(regs, CAUSE)), ptr_add(regs, ACK))
        spin_lock(lock)
        stats.events++
        spin_unlock(lock)
        return IRQ_HANDLED
      }
      if (request_irq(pdev.irq, handler, 0, 'demo', stats)) return
      hw.fire() // the device interrupts; the handler takes the lock
      await msleep(1)
      spin_lock(lock) // BUG: with interrupts enabled; needs spin_lock_irqsave()
      stats.events = 0
      spin_unlock(lock)
    },
  },
  'irq-unhandled': {
    kind: 'irq-unhandled',
    boot: { irqUnhandledThreshold: 10 }, // Linux's threshold is 99,900 of 100,000
    body: async (pdev, regs, hw) => {
      pci_enable_device(pdev)
      const handler = () => {
        const cause = readl(ptr_add(regs, CAUSE))
        if (!cause) return IRQ_NONE
        writel(cause, ptr_add(regs, ACK))
        return IRQ_HANDLED
      }
      if (request_irq(pdev.irq, handler, 0, 'demo', pdev)) return
      hw.stick() // the device holds its line asserted with no cause the driver can clear
      await msleep(10)
    },
  },
  'irq-unhandled-storm': {
    kind: 'irq-unhandled',
    body: async (pdev, _regs, hw) => {
      pci_enable_device(pdev)
      if (request_irq(pdev.irq, () => IRQ_HANDLED, 0, 'demo', pdev)) return // BUG: never acks
      hw.fire()
      await msleep(100)
    },
  },
  'bus-master-disabled': {
    kind: 'bus-master-disabled',
    body: async (pdev, regs) => {
      pci_enable_device(pdev) // BUG: no pci_set_master(pdev)
      const desc = dma_alloc_coherent(pdev.dev, 4096)!
      mem_write32(desc.cpu, 0, 0xd00dfeed)
      writel(lower_32_bits(desc.dma), ptr_add(regs, DMA_ADDR))
      writel(1, ptr_add(regs, DMA_GO)) // the device fetches the descriptor 1 µs later
      await msleep(1)
      dma_free_coherent(pdev.dev, 4096, desc.cpu, desc.dma)
    },
  },
  'device-error': {
    kind: 'device-error',
    body: (_pdev, regs) => {
      // BUG: no pci_enable_device(pdev): the BARs do not decode
      writel(1, ptr_add(regs, ACK))
    },
  },
}

/** Runs one scenario on a fresh system; an oops is caught (sys.run rejects with KernelOops). */
export async function run(
  name: string,
  options: BootOptions = {},
): Promise<{ reports: Report[]; oops: boolean }> {
  const s = scenarios[name]
  if (s === undefined) throw new Error(`no scenario '${name}'`)
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...s.boot, ...options, devices: [hw] })
  const drv: PciDriver = {
    name: 'demo',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: () => Promise.resolve(0),
  }
  await sys.run(() => pci_register_driver(drv))
  const pdev = sys.pciDevice('irqdev0')!
  let oops = false
  try {
    await sys.run(async () => {
      await s.body(pdev, pci_iomap(pdev, 0)!, hw)
    })
  } catch (e) {
    if (!(e instanceof KernelOops)) throw e
    oops = true
  }
  return { reports: sys.reports, oops }
}
