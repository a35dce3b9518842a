/** Same seed, same trace (byte for byte); different seeds, different interleavings. */
import { describe, expect, it } from 'vitest'
import {
  boot,
  IRQ_HANDLED,
  IRQ_NONE,
  kmalloc,
  ktime_get_ns,
  mem_read32,
  mem_write32,
  memset,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  readl,
  request_irq,
  writel,
  type IoAddr,
  type PciDriver,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'

async function run(seed: number): Promise<{ trace: string; handlerTimes: number[]; ticks: number[] }> {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ seed, log: 'silent', devices: [hw] })
  const rec = sys.machine.tracer.record()
  const handlerTimes: number[] = []
  const ticks: number[] = []
  const drv: PciDriver = {
    name: 'det',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      return Promise.resolve(request_irq(pdev.irq, () => {
        const cause = readl(regs)
        if (cause === 0) return IRQ_NONE
        writel(cause, (regs + 4) as IoAddr)
        handlerTimes.push(ktime_get_ns())
        return IRQ_HANDLED
      }, 0, 'det', drv))
    },
  }
  await sys.run(() => pci_register_driver(drv))
  for (let i = 0; i < 10; i++) hw.fire(0, 3_000 + i * 7_000)
  await sys.run(async () => {
    const buf = kmalloc(4096)!
    memset(buf, 0, 4096)
    for (let i = 0; i < 40; i++) {
      mem_write32(buf, (i * 100) % 4096, mem_read32(buf, 0) + i)
      ticks.push(ktime_get_ns())
      if (i % 8 === 0) await msleep(0.01)
    }
  })
  await sys.runUntilIdle()
  rec.stop()
  return { trace: rec.lines().join('\n'), handlerTimes, ticks }
}

describe('determinism', () => {
  it('the same seed gives a byte-identical trace', async () => {
    const a = await run(11)
    const b = await run(11)
    expect(a.trace.length).toBeGreaterThan(100)
    expect(b.trace).toBe(a.trace)
    expect(b.handlerTimes).toEqual(a.handlerTimes)
  })

  it('different seeds interleave handlers differently with the code they interrupt', async () => {
    const runs = await Promise.all([1, 2, 3, 4, 5].map((s) => run(s)))
    const interleavings = new Set(runs.map((r) => JSON.stringify(r.handlerTimes)))
    expect(interleavings.size).toBeGreaterThan(1)
    for (const r of runs) expect(r.handlerTimes).toHaveLength(10)
  })
})
