/** Regression tests for behaviours found while documenting the reports. */
import { describe, expect, it } from 'vitest'
import {
  boot,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_get_cache_alignment,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_unmap_single,
  kmalloc,
  mem_read8,
  mem_write8,
  memset,
} from '../../kernel/index.js'

describe('report semantics', () => {
  it('the checks option really turns free-coherent-mismatch off', async () => {
    for (const checks of [true, false, { dmaDebug: false }] as const) {
      const sys = boot({ log: 'silent', checks })
      const m = sys.attachTestMaster('tm0')
      await sys.run(() => {
        const ring = dma_alloc_coherent(m.dev, 4096)!
        dma_free_coherent(m.dev, 2048, ring.cpu, ring.dma)
      })
      expect(sys.reports.map((r) => r.kind)).toEqual(checks === true ? ['free-coherent-mismatch'] : [])
    }
  })

  it('one device access over several CPU-owned parts is one occurrence covering their span', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const buf = kmalloc(64)!
      memset(buf, 0, 64)
      const dma = dma_map_single(m.dev, buf, 64, DMA_BIDIRECTIONAL)
      dma_mapping_error(m.dev, dma)
      dma_sync_single_for_cpu(m.dev, dma, 64, DMA_BIDIRECTIONAL)
      mem_write8(buf, 0, 1) // bytes 0 dirty, 1..63 clean: two ownership segments
      m.read(dma, 64)
      dma_unmap_single(m.dev, dma, 64, DMA_BIDIRECTIONAL)
    })
    expect(sys.reports).toHaveLength(1)
    expect(sys.reports[0]!.count).toBe(1)
    expect(sys.reports[0]!.message).toContain('[size=64 bytes]')
    expect(sys.reports[0]!.message).toContain('wrote it after dma_sync_single_for_cpu')
  })

  it("dma_get_cache_alignment is the platform's ARCH_DMA_MINALIGN, whatever the device's coherence", async () => {
    const expected = { arm64: 128, riscv64: 64, x86_64: 1 } as const
    for (const arch of ['arm64', 'riscv64', 'x86_64'] as const) {
      for (const coherent of [true, false]) {
        const sys = boot({ arch, coherent, log: 'silent' })
        expect(await sys.run(() => dma_get_cache_alignment())).toBe(expected[arch])
      }
    }
  })

  it("an unmap with a wrong size maintains the size passed, as Linux would: the rest stays stale", async () => {
    const sys = boot({ arch: 'arm64', log: 'silent' })
    const m = sys.attachTestMaster('tm0')
    const [first, tail] = await sys.run(() => {
      const buf = kmalloc(256)!
      memset(buf, 0xaa, 256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
      dma_mapping_error(m.dev, dma)
      for (let i = 0; i < 256; i += 64) mem_read8(buf, i) // the lines are cached (reported: a stale read)
      m.write(dma, new Uint8Array(256).fill(0x55))
      dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE) // only the first line is invalidated
      return [mem_read8(buf, 0), mem_read8(buf, 200)]
    })
    expect(first).toBe(0x55)
    expect(tail).toBe(0xaa)
    expect(sys.reports.map((r) => r.kind)).toEqual(['cpu-access-device-owned', 'unmap-size-mismatch'])
  })
})
