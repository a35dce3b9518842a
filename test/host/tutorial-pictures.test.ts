/**
 * The pictures the tutorial's examples draw from live runs (host/timeline-svg.ts,
 * host/store-order-svg.ts, host/bounce-svg.ts, host/nvme-queue-svg.ts): well-formed SVG showing
 * what the run did; the same seed gives the same picture; an NVMe queue snapshot disturbs nothing.
 */
import { describe, expect, it } from 'vitest'
import { blockUser, boot, pci_register_driver } from '../../kernel/index.js'
import { NvmeController } from '../../devices/index.js'
import { nvme_make_driver } from '../../drivers/nvme/nvme.js'
import { snapshotNvmeQueues } from '../../host/nvme-queue-svg.js'
import { run as whatIsDma } from '../../docs/examples/tutorial-what-is-dma-copy.js'
import { run as barriers } from '../../docs/examples/tutorial-barriers-wmb.js'
import { run as iommu } from '../../docs/examples/tutorial-iommu-bounce.js'
import { run as nvme } from '../../docs/examples/tutorial-rings-nvme.js'
import { checkXml } from './svg-check.js'

const wellFormed = (svg: string): string[] => {
  const x = checkXml(svg)
  expect(x.problems).toEqual([])
  expect(x.root).toBe('svg')
  return x.texts
}

describe('tutorial pictures from live runs', () => {
  it('timeline-svg: PIO keeps the CPU busy throughout, DMA leaves it idle while the engine works', async () => {
    const { files } = await whatIsDma({ seed: 3 })
    const svg = files['what-is-dma-copy.svg']!
    const texts = wellFormed(svg)
    expect(svg.match(/<g class="run"/g)).toHaveLength(4)
    expect(svg.match(/<rect class="device"/g)).toHaveLength(2) // one engine transfer per DMA run
    expect(svg).toContain('class="hardirq"')
    expect(texts.filter((t) => t === '↑IRQ')).toHaveLength(2)
  })

  it('store-order-svg: without dma_wmb a store overtakes an earlier one and a read is stale; with it none', async () => {
    const { files, lines } = await barriers({ seed: 1 })
    const texts = wellFormed(files['barriers-wmb.svg']!)
    expect(texts.filter((t) => t.endsWith(' STALE'))).toHaveLength(1)
    expect(lines.some((l) => l.includes('(STALE)'))).toBe(true)
    expect(lines.slice(lines.indexOf('with dma_wmb():')).some((l) => l.includes('STALE'))).toBe(
      false,
    )
  })

  it('bounce-svg: the slot and the buffer meet at each DMA API call', async () => {
    const { files, reports } = await iommu({ seed: 1 })
    const texts = wellFormed(files['iommu-bounce.svg']!)
    expect(reports.map((r) => r.kind).sort()).toEqual(['device-access-cpu-owned', 'iommu-fault'])
    expect(texts.filter((t) => t === 'copy buffer → slot')).toHaveLength(2)
    expect(texts.filter((t) => t === 'copy slot → buffer')).toHaveLength(2)
  })

  it('nvme-queue-svg: five completions posted across the wrap, then consumed', async () => {
    const { files, reports } = await nvme({ seed: 1 })
    expect(reports).toEqual([])
    const waiting = files['rings-nvme-waiting.svg']!
    wellFormed(waiting)
    expect(waiting.match(/<g class="cqe posted"/g)).toHaveLength(5)
    expect(files['rings-nvme-consumed.svg']!).not.toContain('<g class="cqe posted"')
    expect(files['rings-nvme-rung.svg']!.match(/<g class="sqe written"/g)).toHaveLength(1)
  })

  it('the same seed gives the same pictures', async () => {
    expect((await whatIsDma({ seed: 5 })).files).toEqual((await whatIsDma({ seed: 5 })).files)
    expect((await barriers({ seed: 5 })).files).toEqual((await barriers({ seed: 5 })).files)
  })

  it('an NVMe queue snapshot disturbs nothing', async () => {
    const ctrl = new NvmeController({ name: 'nvme0', sizeBytes: 4 << 20 })
    const sys = boot({ log: 'silent', devices: [ctrl] })
    await sys.run(() => pci_register_driver(nvme_make_driver({ io_queues: 1, io_queue_depth: 8 })))
    await blockUser(sys).write('nvme0n1', 0, new Uint8Array(4096))
    let events = 0
    const count = () => events++
    sys.machine.tracer.on('dma', count)
    sys.machine.tracer.on('mmio', count)
    const stats = { ...sys.machine.cache.stats }
    const now = sys.machine.clock.now
    const s = snapshotNvmeQueues(sys, ctrl, 1)
    expect(events).toBe(0)
    expect({ ...sys.machine.cache.stats }).toEqual(stats)
    expect(sys.machine.clock.now).toBe(now)
    expect(s.driver).toEqual({ sqTail: 1, cqHead: 1, cqPhase: 1 })
    expect(s.ctrl).toMatchObject({ sqHead: 1, sqTail: 1, cqTail: 1, cqHead: 1 })
  })
})
