// The life of a PCI driver: probe claims the device, takes an MSI-X vector (INTx when the device
// has none) and allocates DMA memory; remove gives back what probe took by hand. At unbind the
// managed (devres) resources are released, and whatever the driver still holds is a leak.
import {
  boot,
  dma_alloc_coherent,
  dma_free_coherent,
  dmam_alloc_coherent,
  free_irq,
  IRQ_HANDLED,
  IRQ_NONE,
  IRQF_SHARED,
  pci_alloc_irq_vectors,
  pci_disable_device,
  pci_enable_device,
  pci_free_irq_vectors,
  pci_get_drvdata,
  pci_iomap,
  pci_iounmap,
  pci_irq_vector,
  PCI_IRQ_INTX,
  PCI_IRQ_MSIX,
  pci_register_driver,
  pci_set_drvdata,
  pci_set_master,
  ptr_add,
  readl,
  request_irq,
  writel,
  type BootOptions,
  type DmaBuffer,
  type IoAddr,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

interface Priv {
  regs: IoAddr
  irq: number
  buf: DmaBuffer
  interrupts: number
}

export async function run(
  options: BootOptions = {},
  variant: 'correct' | 'leaky' | 'no-master' = 'correct',
): Promise<{ lines: string[]; reports: Report[] }> {
  const hw = new IrqTestDevice('irqdev0', 1) // a device with one MSI-X vector
  const sys = boot({ log: 'silent', ...options, devices: [hw] })
  const lines: string[] = []
  const handler = (_irq: number, dev_id: unknown) => {
    const priv = dev_id as Priv
    const cause = readl(priv.regs)
    if (!cause) return IRQ_NONE
    writel(cause, ptr_add(priv.regs, 4))
    priv.interrupts++
    return IRQ_HANDLED
  }
  const drv: PciDriver = {
    name: 'pcidemo',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      const rc = pci_enable_device(pdev)
      if (rc) return Promise.resolve(rc)
      if (variant !== 'no-master') pci_set_master(pdev) // for DMA, and for MSI-X messages
      const regs = pci_iomap(pdev, 0)!
      const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
      if (nvec < 0) return Promise.resolve(nvec)
      dmam_alloc_coherent(pdev.dev, 4096) // managed: released at unbind
      const buf = dma_alloc_coherent(pdev.dev, 4096)! // not managed: remove must free it
      const priv: Priv = { regs, irq: pci_irq_vector(pdev, 0), buf, interrupts: 0 }
      pci_set_drvdata(pdev, priv)
      lines.push(`probe: ${pdev.msix ? 'MSI-X' : 'INTx'}, irq ${priv.irq}`)
      return Promise.resolve(request_irq(priv.irq, handler, IRQF_SHARED, 'pcidemo', priv))
    },
    remove: async (pdev) => {
      const priv = pci_get_drvdata(pdev) as Priv
      lines.push(`remove: ${priv.interrupts} interrupt(s) handled`)
      if (variant !== 'leaky') {
        await free_irq(priv.irq, priv)
        pci_free_irq_vectors(pdev)
        dma_free_coherent(pdev.dev, 4096, priv.buf.cpu, priv.buf.dma)
      }
      pci_iounmap(pdev, priv.regs)
      pci_disable_device(pdev)
    },
  }
  await sys.run(() => pci_register_driver(drv))
  hw.fire()
  await sys.runUntilIdle()
  await sys.unbind(sys.pciDevice('irqdev0')!)
  for (const r of sys.reports) lines.push(`${r.kind}: ${r.message.split('\n')[0]!}`)
  return { lines, reports: sys.reports }
}
