// Four descriptors in coherent memory handed to a device on arm64, each a body word then an OWN
// word the device polls; the device then looks at each: OWN set, it takes the body. Run twice:
// without a barrier, the stores reach memory in whatever order the store buffer drains them, and
// the device can find OWN set over an old body; with dma_wmb() between each body and its OWN, it
// cannot. The picture sets the stores in program order against the order they reached memory,
// with the device's reads (host/store-order-svg.ts).
import {
  boot,
  dma_alloc_coherent,
  dma_wmb,
  mem_write32,
  pci_enable_device,
  pci_register_driver,
  pci_set_master,
  virt_to_phys,
  type BootOptions,
  type DmaBuffer,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'
import {
  recordStoreOrder,
  storeOrderSvg,
  type StoreOrderPanel,
} from '../../host/store-order-svg.js'

const word = (bytes: Uint8Array) => new DataView(bytes.buffer).getUint32(0, true)

async function handOver(
  options: BootOptions,
  barrier: boolean,
  lines: string[],
  reports: Report[],
) {
  const hw = new IrqTestDevice('dev0') // a bare PCI bus master
  const sys = boot({ log: 'silent', arch: 'arm64', ...options, devices: [hw] })
  let ring: DmaBuffer | null = null
  const drv: PciDriver = {
    name: 'ring',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      ring = dma_alloc_coherent(pdev.dev, 4096) // zeroed, uncached on arm64
      return Promise.resolve(ring ? 0 : -12)
    },
  }
  await sys.run(() => pci_register_driver(drv))
  const r = ring!
  lines.push(barrier ? 'with dma_wmb():' : 'without a barrier:')
  const rec = await sys.run(() => {
    const pa = virt_to_phys(r.cpu)
    const rec = recordStoreOrder(sys, { pa, len: 64, bus: r.dma, device: 'dev0' })
    for (let d = 0; d < 4; d++) {
      mem_write32(r.cpu, d * 16, 0xb0d10 + d) // the descriptor's body
      rec.store(`d${d}.body`, d * 16, 0xb0d10 + d)
      if (barrier) {
        dma_wmb()
        rec.mark('dma_wmb')
      }
      mem_write32(r.cpu, d * 16 + 4, 1) // its OWN bit: the device may take it now
      rec.store(`d${d}.own`, d * 16 + 4, 1)
    }
    for (let d = 0; d < 4; d++) {
      const own = word(hw.deviceRead(r.dma + d * 16 + 4, 4)) // the device polls OWN
      if (own !== 1) lines.push(`  d${d}: OWN clear, the device leaves it`)
      else {
        const body = word(hw.deviceRead(r.dma + d * 16, 4)) // and takes the body
        lines.push(
          `  d${d}: OWN set, body 0x${body.toString(16)}${body !== 0xb0d10 + d ? ' (STALE)' : ''}`,
        )
      }
    }
    return rec
  })
  rec.stop()
  for (const rep of sys.reports) {
    const at = rep.stacks?.[0]?.frames.find((f) => f.file.startsWith('docs/examples/'))
    lines.push(`  ${rep.kind} at ${at?.file}:${at?.line}: ${rep.message}`)
  }
  reports.push(...sys.reports)
  return rec
}

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const lines: string[] = []
  const reports: Report[] = []
  const panels: StoreOrderPanel[] = [
    { title: 'without a barrier', rec: await handOver(options, false, lines, reports) },
    { title: 'with dma_wmb()', rec: await handOver(options, true, lines, reports) },
  ]
  const title = 'arm64: four descriptors handed over, stores against what reached memory'
  return { lines, reports, files: { 'barriers-wmb.svg': storeOrderSvg(panels, { title }) } }
}
