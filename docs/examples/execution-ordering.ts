// Ordering between the CPU and a device, on each platform. Three ways to hand a descriptor in
// coherent memory to a device and two ways to read what a device wrote there; each runs on
// arm64, riscv64 and x86_64. A cell shows whether the other side saw the right data, and
// whether missing-barrier was reported.
import {
  boot,
  dma_alloc_coherent,
  dma_rmb,
  dma_wmb,
  lower_32_bits,
  mem_read32,
  mem_write32,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  pci_set_master,
  ptr_add,
  readl,
  writel,
  writel_relaxed,
  type BootOptions,
  type DmaBuffer,
  type IoAddr,
  type PciDriver,
  type Report,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../../test/fixtures/irq-device.js'

type Arch = NonNullable<BootOptions['arch']>

const DMA_ADDR = 0x08 // the test device: where it fetches a 32-bit descriptor from,
const RESULT = 0x10 // what it fetched,
const DOORBELL = 0x14 // and the doorbell that makes it fetch at once

interface Rig {
  regs: IoAddr
  hw: IrqTestDevice
  ring: DmaBuffer
}
const word = (bytes: Uint8Array) => new DataView(bytes.buffer).getUint32(0, true)
const le32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer)

/** Four descriptors, each a body word then an OWN word; then the device polls them in order. */
async function handOver({ hw, ring }: Rig, barrier: boolean, sleep: boolean): Promise<boolean> {
  for (let d = 0; d < 4; d++) {
    mem_write32(ring.cpu, d * 16, 0xb0d1 + d) // the descriptor body
    if (barrier) dma_wmb()
    mem_write32(ring.cpu, d * 16 + 4, 1) // its OWN bit: the device may take it now
  }
  if (sleep) await msleep(1) // the driver sleeps: its stores drain before the device polls
  let ok = true
  for (let d = 0; d < 4; d++) {
    // The device reads OWN; a descriptor it owns, it reads.
    const own = word(hw.deviceRead(ring.dma + d * 16 + 4, 4))
    if (own === 1) ok &&= word(hw.deviceRead(ring.dma + d * 16, 4)) === 0xb0d1 + d
  }
  return ok
}

/** Each case is driver code; it returns whether the data came out right. */
const cases: Record<string, (r: Rig) => boolean | Promise<boolean>> = {
  'writel_relaxed doorbell': ({ regs, ring }) => {
    mem_write32(ring.cpu, 0, 0xd00dfeed) // the descriptor
    writel_relaxed(1, ptr_add(regs, DOORBELL)) // the device fetches it now
    return readl(ptr_add(regs, RESULT)) === 0xd00dfeed
  },
  'dma_wmb + writel_relaxed': ({ regs, ring }) => {
    mem_write32(ring.cpu, 0, 0xd00dfeed)
    dma_wmb()
    writel_relaxed(1, ptr_add(regs, DOORBELL))
    return readl(ptr_add(regs, RESULT)) === 0xd00dfeed
  },
  'writel doorbell': ({ regs, ring }) => {
    mem_write32(ring.cpu, 0, 0xd00dfeed)
    writel(1, ptr_add(regs, DOORBELL)) // writel orders the stores before it
    return readl(ptr_add(regs, RESULT)) === 0xd00dfeed
  },
  'OWN bits, device polls late': (r) => handOver(r, false, true),
  'OWN bits, device polls early': (r) => handOver(r, false, false),
  'dma_wmb + OWN bits': (r) => handOver(r, true, false),
  'DD bit, no dma_rmb': ({ hw, ring }) => {
    hw.deviceWrite(ring.dma, le32(0x12345678)) // the device writes the data,
    hw.deviceWrite(ring.dma + 4, le32(1)) // then the descriptor-done bit
    if (mem_read32(ring.cpu, 4) !== 1) return false
    return mem_read32(ring.cpu, 0) === 0x12345678
  },
  'DD bit + dma_rmb': ({ hw, ring }) => {
    hw.deviceWrite(ring.dma, le32(0x12345678))
    hw.deviceWrite(ring.dma + 4, le32(1))
    if (mem_read32(ring.cpu, 4) !== 1) return false
    dma_rmb()
    return mem_read32(ring.cpu, 0) === 0x12345678
  },
}

async function runCase(arch: Arch, name: string, options: BootOptions, reports: Report[]): Promise<string> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', ...options, arch, devices: [hw] })
  let rig: Rig | null = null
  const drv: PciDriver = {
    name: 'ordering',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      const regs = pci_iomap(pdev, 0)!
      const ring = dma_alloc_coherent(pdev.dev, 4096)!
      writel(lower_32_bits(ring.dma), ptr_add(regs, DMA_ADDR))
      rig = { regs, hw, ring }
      return Promise.resolve(0)
    },
  }
  await sys.run(() => pci_register_driver(drv))
  const ok = await sys.run(() => cases[name]!(rig!))
  reports.push(...sys.reports)
  const reported = sys.reports.some((r) => r.kind === 'missing-barrier')
  return `${ok ? 'ok' : 'STALE'}, ${reported ? 'reported' : 'silent'}`
}

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const arches: Arch[] = ['arm64', 'riscv64', 'x86_64']
  const reports: Report[] = []
  const lines = [`${'case'.padEnd(30)}${arches.map((a) => a.padEnd(18)).join('')}`.trimEnd()]
  for (const name of Object.keys(cases)) {
    const cells = await Promise.all(arches.map((arch) => runCase(arch, name, options, reports)))
    lines.push(`${name.padEnd(30)}${cells.map((c) => c.padEnd(18)).join('')}`.trimEnd())
  }
  return { lines, reports }
}
