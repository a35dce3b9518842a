/**
 * Data really goes wrong where hardware would: a missing sync returns stale data under
 * swiotlb=force on every platform, on arm64/riscv64 when the line is cached, while x86_64 gets
 * correct data and the report all the same.
 */
import { describe, expect, it } from 'vitest'
import {
  boot,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_single,
  dma_unmap_single_attrs,
  kfree,
  kmalloc,
  mem_read8,
  mem_write8,
  memset,
  virt_to_phys,
  type BootOptions,
} from '../../kernel/index.js'
import { ARCHES } from '../helpers/matrix.js'

const LEN = 256

/** A receive: the CPU has the buffer cached, the device writes 0x55s, the CPU reads byte 0. */
async function receive(opts: BootOptions, sync: boolean): Promise<{ value: number; kinds: string[] }> {
  const sys = boot({ log: 'silent', ...opts })
  const m = sys.attachTestMaster('tm0')
  const value = await sys.run(() => {
    const buf = kmalloc(LEN)!
    memset(buf, 0xaa, LEN)
    mem_read8(buf, 0)
    const dma = dma_map_single(m.dev, buf, LEN, DMA_FROM_DEVICE)
    expect(dma_mapping_error(m.dev, dma)).toBe(0)
    m.write(dma, new Uint8Array(LEN).fill(0x55))
    if (sync) dma_sync_single_for_cpu(m.dev, dma, LEN, DMA_FROM_DEVICE)
    const v = mem_read8(buf, 0)
    dma_unmap_single(m.dev, dma, LEN, DMA_FROM_DEVICE)
    kfree(buf)
    return v
  })
  m.detach()
  return { value, kinds: sys.reports.map((r) => r.kind) }
}

/** A transmit: the CPU changes the buffer after mapping it; the device reads byte 0. */
async function transmit(opts: BootOptions, sync: boolean): Promise<{ value: number; kinds: string[] }> {
  const sys = boot({ log: 'silent', ...opts })
  const m = sys.attachTestMaster('tm0')
  const value = await sys.run(() => {
    const buf = kmalloc(LEN)!
    memset(buf, 0x11, LEN)
    const dma = dma_map_single(m.dev, buf, LEN, DMA_BIDIRECTIONAL)
    expect(dma_mapping_error(m.dev, dma)).toBe(0)
    if (sync) dma_sync_single_for_cpu(m.dev, dma, LEN, DMA_BIDIRECTIONAL)
    mem_write8(buf, 0, 0x22)
    if (sync) dma_sync_single_for_device(m.dev, dma, LEN, DMA_BIDIRECTIONAL)
    const v = m.read(dma, 1)[0]!
    dma_unmap_single(m.dev, dma, LEN, DMA_BIDIRECTIONAL)
    kfree(buf)
    return v
  })
  m.detach()
  return { value, kinds: sys.reports.map((r) => r.kind) }
}

describe('a missing sync for the CPU', () => {
  for (const arch of ARCHES) {
    for (const iommu of ['off', 'strict', 'lazy'] as const) {
      it(`returns stale data under swiotlb=force on ${arch} (iommu ${iommu}), and is reported`, async () => {
        const bad = await receive({ arch, iommu, swiotlb: 'force' }, false)
        expect(bad.value).toBe(0xaa)
        expect(bad.kinds).toEqual(['cpu-access-device-owned'])
        const good = await receive({ arch, iommu, swiotlb: 'force' }, true)
        expect(good).toEqual({ value: 0x55, kinds: [] })
      })
    }
  }

  for (const arch of ['arm64', 'riscv64'] as const) {
    it(`returns stale data on ${arch} when the line is cached, and is reported`, async () => {
      for (const seed of [1, 2, 3, 4]) {
        const bad = await receive({ arch, seed }, false)
        expect(bad.value).toBe(0xaa)
        expect(bad.kinds).toEqual(['cpu-access-device-owned'])
        expect(await receive({ arch, seed }, true)).toEqual({ value: 0x55, kinds: [] })
      }
    })
  }

  it('gets correct data on x86_64 (coherent) — and the same report', async () => {
    for (const seed of [1, 2, 3, 4]) {
      const bad = await receive({ arch: 'x86_64', seed }, false)
      expect(bad.value).toBe(0x55)
      expect(bad.kinds).toEqual(['cpu-access-device-owned'])
    }
  })
})

describe('a missing sync for the device', () => {
  it('lets the device read old data on arm64 (a dirty line) and under swiotlb=force, correct data on x86_64', async () => {
    expect((await transmit({ arch: 'arm64' }, false)).value).toBe(0x11)
    expect((await transmit({ arch: 'x86_64', swiotlb: 'force' }, false)).value).toBe(0x11)
    const x86 = await transmit({ arch: 'x86_64' }, false)
    expect(x86.value).toBe(0x22)
    expect(x86.kinds).toEqual(['cpu-access-device-owned'])
    for (const arch of ARCHES) {
      for (const swiotlb of ['auto', 'force'] as const) expect(await transmit({ arch, swiotlb }, true)).toEqual({ value: 0x22, kinds: [] })
    }
  })
})

describe('why unmap invalidates a second time', () => {
  it('a line speculatively refilled while the device owns the buffer is dropped by the unmap', async () => {
    for (const skip of [false, true]) {
      const sys = boot({ arch: 'arm64', log: 'silent' })
      const m = sys.attachTestMaster('tm0')
      const v = await sys.run(() => {
        const buf = kmalloc(LEN)!
        memset(buf, 0xaa, LEN)
        const dma = dma_map_single(m.dev, buf, LEN, DMA_FROM_DEVICE) // cleans: DRAM holds 0xaa, lines stay
        dma_mapping_error(m.dev, dma)
        sys.machine.cache.invalidate(virt_to_phys(buf), LEN) // say the lines were evicted...
        sys.machine.cache.prefetch(virt_to_phys(buf)) // ...and a prefetch brought one back
        m.write(dma, new Uint8Array(LEN).fill(0x55))
        if (skip) dma_unmap_single_attrs(m.dev, dma, LEN, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        else dma_unmap_single(m.dev, dma, LEN, DMA_FROM_DEVICE)
        return mem_read8(buf, 0)
      })
      if (skip) {
        expect(v).toBe(0xaa)
        expect(sys.reports.map((r) => r.kind)).toEqual(['cpu-access-device-owned'])
      } else {
        expect(v).toBe(0x55)
        expect(sys.reports).toEqual([])
      }
    }
  })
})

describe('cache-line sharing without ARCH_DMA_MINALIGN', () => {
  it('a CPU write to a neighbour destroys DMA data on arm64, and is reported', async () => {
    const sys = boot({ arch: 'arm64', kmallocMinAlign: 8, log: 'silent' })
    const m = sys.attachTestMaster('tm0')
    const got = await sys.run(() => {
      const a = kmalloc(16)!
      const b = kmalloc(16)!
      expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
      memset(a, 0, 16)
      const dma = dma_map_single(m.dev, a, 16, DMA_FROM_DEVICE)
      dma_mapping_error(m.dev, dma)
      mem_write8(b, 0, 1) // dirties the shared line, with a's stale zeros in it
      m.write(dma, new Uint8Array(16).fill(0x55))
      dma_unmap_single(m.dev, dma, 16, DMA_FROM_DEVICE) // the partial line is cleaned: zeros win
      return mem_read8(a, 0)
    })
    expect(got).toBe(0)
    expect(sys.reports.map((r) => r.kind)).toEqual(['cacheline-shared'])
  })
})

describe('determinism and isolation', () => {
  async function workload(seed: number) {
    const sys = boot({ arch: 'arm64', seed, log: 'silent', cache: { size: 16 * 1024, ways: 4 } })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      for (let i = 0; i < 40; i++) {
        const buf = kmalloc(1024)!
        memset(buf, i, 1024)
        const dma = dma_map_single(m.dev, buf, 1024, DMA_TO_DEVICE)
        dma_mapping_error(m.dev, dma)
        m.read(dma, 1024)
        dma_unmap_single(m.dev, dma, 1024, DMA_TO_DEVICE)
        for (let j = 0; j < 1024; j += 64) mem_read8(buf, j)
      }
    })
    return { stats: { ...sys.machine.cache.stats }, reports: sys.reports.length }
  }

  it('the same seed gives the same machine behaviour; different seeds differ', async () => {
    const a = await workload(7)
    expect(await workload(7)).toEqual(a)
    const others = await Promise.all([8, 9, 10].map((s) => workload(s)))
    expect(others.some((o) => JSON.stringify(o.stats) !== JSON.stringify(a.stats))).toBe(true)
    expect(a.reports).toBe(0)
  })

  it('two systems run in one process without sharing state', async () => {
    const [r1, r2] = await Promise.all([receive({ arch: 'arm64' }, false), receive({ arch: 'x86_64' }, true)])
    expect(r1).toEqual({ value: 0xaa, kinds: ['cpu-access-device-owned'] })
    expect(r2).toEqual({ value: 0x55, kinds: [] })
  })
})
