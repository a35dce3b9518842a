/**
 * IOMMU lazy mode (boot({ iommu: 'lazy' })): unmaps go to a flush queue (drivers/iommu/dma-iommu.c
 * queue_iova) that invalidates the IOTLB and frees the IOVAs when it fills or when its 10 ms timer
 * fires. A correct driver sees no difference; a device using an unmapped buffer does.
 */
import { describe, expect, it } from 'vitest'
import { boot, DMA_BIDIRECTIONAL, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single, kfree, kmalloc, type System } from '../../kernel/index.js'
import { IOVA_FQ_SIZE } from '../../kernel/dma/iova.js'

const quiet = { log: 'silent' as const }

describe("boot({ iommu: 'lazy' })", () => {
  it('is accepted; strict stays the default', () => {
    expect(boot({ ...quiet, iommu: 'lazy' }).options.iommu).toBe('lazy')
    expect(boot(quiet).options.iommu).toBe('strict')
  })

  it('a correct map / device access / unmap cycle is silent, and the device is shut out after the flush', async () => {
    const sys: System = boot({ ...quiet, iommu: 'lazy' })
    const m = sys.attachTestMaster('tm0')
    const dma = await sys.run(() => {
      const p = kmalloc(256)!
      const d = dma_map_single(m.dev, p, 256, DMA_BIDIRECTIONAL)
      expect(dma_mapping_error(m.dev, d)).toBe(0)
      m.write(d, new Uint8Array(256).fill(7))
      dma_unmap_single(m.dev, d, 256, DMA_BIDIRECTIONAL)
      kfree(p)
      return d
    })
    expect(sys.reports).toEqual([])
    const fq = sys.dma.flushQueue(m.dev)!
    expect(fq.pending).toBe(1)
    expect(fq.timerOn).toBe(true)
    expect(m.dev.port.domain!.staleIotlbEntries).toBe(1)
    await sys.runFor(13e6)
    expect(fq.pending).toBe(0)
    expect(fq.flushes).toBe(1)
    expect(m.dev.port.domain!.staleIotlbEntries).toBe(0)
    expect(m.dev.port.domain!.iotlbFlushes).toBe(1)
    m.read(dma, 4)
    expect(sys.reports.map((r) => r.kind)).toEqual(['iommu-fault'])
  })

  it(`flushes when the queue is full (${IOVA_FQ_SIZE} slots, one kept empty) before the timer`, async () => {
    const sys = boot({ ...quiet, iommu: 'lazy' })
    const m = sys.attachTestMaster('tm0')
    const fq = sys.dma.flushQueue(m.dev)!
    const seen = new Set<number>()
    await sys.run(() => {
      const p = kmalloc(64)!
      for (let i = 0; i < IOVA_FQ_SIZE; i++) {
        const d = dma_map_single(m.dev, p, 64, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, d)).toBe(0)
        seen.add(d)
        dma_unmap_single(m.dev, d, 64, DMA_TO_DEVICE)
        if (i === IOVA_FQ_SIZE - 2) {
          expect(fq.pending).toBe(IOVA_FQ_SIZE - 1)
          expect(fq.flushes).toBe(0)
        }
      }
      kfree(p)
    })
    // The 256th unmap found the ring full: flush (every IOVA freed), then queue itself.
    expect(fq.fullFlushes).toBe(1)
    expect(fq.pending).toBe(1)
    // No IOVA was reused while its range waited in the queue.
    expect(seen.size).toBe(IOVA_FQ_SIZE)
    expect(sys.reports).toEqual([])
  })
})
