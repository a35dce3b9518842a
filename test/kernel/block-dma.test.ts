/**
 * kernel/block with a DMA device: the harness's data pages are mapped by the driver
 * (blk_rq_map_sg + dma_map_sg) and moved by a device, so their DMA ownership is checked for real.
 * A correct driver is silent and its data right on every platform; a read ended without
 * dma_unmap_sg is a stale read where swiotlb bounces, and reported everywhere.
 */
import { describe, expect, it } from 'vitest'
import { blockUser, boot, fio } from '../../kernel/index.js'
import { PLATFORMS, optionsFor } from '../helpers/matrix.js'
import { nullBlkAdd, nullBlkDel } from '../fixtures/null-blk.js'

describe('block: DMA through the harness pages', () => {
  it.each(PLATFORMS.filter((p) => p.seed === 1))('a correct DMA driver is silent and exact on $label', async (p) => {
    const sys = boot(optionsFor(p))
    const m = sys.attachTestMaster('nbdma')
    const nb = await nullBlkAdd(sys, { name: 'nullb0', dma: m, irqmode: 'timer', submitQueues: 2, sizeBytes: 2 << 20, maxSegments: 8 })
    const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 16384, iodepth: 8, numjobs: 2, numIos: 24, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 16384, iodepth: 8, numjobs: 2, numIos: 24, verify: true, verifyState: w.verifyState, pageOffset: 512 })
    expect(w.errors + r.errors + r.verifyErrors).toBe(0)
    expect(r.verified).toBeGreaterThan(0)
    const blk = blockUser(sys)
    const data = new Uint8Array(12288).map((_, i) => (i * 7) & 0xff)
    await blk.write('nullb0', 1, data, { pageOffset: 1024, contiguous: true })
    expect(await blk.read('nullb0', 1, 24)).toEqual(data)
    await nullBlkDel(sys, nb)
    m.detach()
    expect(sys.reports).toEqual([])
    expect(blk.pagesInUse).toBe(0)
  })

  it('a read ended without dma_unmap_sg: stale data where swiotlb bounces, and reported', async () => {
    const sys = boot({ log: 'silent', arch: 'arm64', swiotlb: 'force', seed: 2 })
    const m = sys.attachTestMaster('nbdma')
    const nb = await nullBlkAdd(sys, { name: 'nullb0', dma: m, bug: 'no-unmap' })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, iodepth: 4, numIos: 16, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, iodepth: 4, numIos: 16, verify: true, verifyState: w.verifyState })
    expect(r.verifyErrors).toBe(r.verified)
    expect(r.verifyErrorSamples[0]).toMatch(/did not write the buffer/)
    const kinds = new Set(sys.reports.map((x) => x.kind))
    expect(kinds.has('cpu-access-device-owned')).toBe(true)
    expect(kinds.has('free-while-mapped')).toBe(true)
    await nullBlkDel(sys, nb)
    m.detach()
    expect(sys.reports.some((x) => x.kind === 'leak')).toBe(true)
  })

  it('on a coherent platform without bouncing the data survives, but the missing unmap is still reported', async () => {
    const sys = boot({ log: 'silent', arch: 'x86_64', swiotlb: 'auto', iommu: 'off', seed: 3 })
    const m = sys.attachTestMaster('nbdma')
    await nullBlkAdd(sys, { name: 'nullb0', dma: m, bug: 'no-unmap' })
    const blk = blockUser(sys)
    const data = new Uint8Array(4096).fill(0x5a)
    await blk.write('nullb0', 0, data)
    expect(await blk.read('nullb0', 0, 8)).toEqual(data)
    expect(sys.reports.map((x) => x.kind)).toContain('cpu-access-device-owned')
  })
})
