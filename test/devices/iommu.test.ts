import { describe, expect, it } from 'vitest'
import { IOMMU_READ, IOMMU_WRITE, IommuDomain, Machine, MEMTX_ACCESS_ERROR, MEMTX_OK, Ram } from '../../devices/index.js'

describe('IommuDomain', () => {
  it('translates mapped pages and enforces read/write permissions', () => {
    const d = new IommuDomain('dev0')
    d.map(0xffff_0000, 0x8_0000_0000, 0x2000, IOMMU_READ)
    expect(d.translate(0xffff_0123, false)).toBe(0x8_0000_0123)
    expect(d.translate(0xffff_1fff, false)).toBe(0x8_0000_1fff)
    expect(d.translate(0xffff_0123, true)).toBe(-2)
    expect(d.translate(0xffff_2000, false)).toBe(-1)
    d.unmap(0xffff_0000, 0x2000)
    expect(d.translate(0xffff_0123, false)).toBe(-1)
    expect(d.mappedPages).toBe(0)
  })

  it('keeps a used translation in the IOTLB after unmapFast, until iotlbSync or flushIotlbAll', () => {
    const d = new IommuDomain('dev0')
    d.map(0x1_0000, 0x8_0000_0000, 0x2000, IOMMU_WRITE)
    expect(d.translate(0x1_0010, true)).toBe(0x8_0000_0010) // page 0 is now in the IOTLB
    d.unmapFast(0x1_0000, 0x2000)
    expect(d.mappedPages).toBe(0)
    expect(d.staleIotlbEntries).toBe(1)
    expect(d.translate(0x1_0020, true)).toBe(0x8_0000_0020) // stale hit
    expect(d.translate(0x1_0020, false)).toBe(-2) // with the cached permissions
    expect(d.translate(0x1_1000, true)).toBe(-1) // page 1 was never used: not cached
    const pa: number[] = []
    const len: number[] = []
    expect(d.walk(0x1_0000, 16, true, pa, len, [0])).toBe(1)
    d.iotlbSync(0x1_0000, 0x1000)
    expect(d.translate(0x1_0020, true)).toBe(-1)
    d.map(0x2_0000, 0x8_0001_0000, 0x1000, IOMMU_READ)
    d.translate(0x2_0000, false)
    d.unmapFast(0x2_0000, 0x1000)
    expect(d.translate(0x2_0000, false)).toBe(0x8_0001_0000)
    d.flushIotlbAll()
    expect(d.translate(0x2_0000, false)).toBe(-1)
    expect(d.iotlbFlushes).toBe(1)
    d.map(0x3_0000, 0x8_0002_0000, 0x1000, IOMMU_READ)
    d.translate(0x3_0000, false)
    d.unmap(0x3_0000, 0x1000) // iommu_unmap: PTE and IOTLB entry both gone
    expect(d.translate(0x3_0000, false)).toBe(-1)
    // iommu_unmap over a range an earlier unmap_fast left in the IOTLB drops that entry too.
    d.map(0x4_0000, 0x8_0003_0000, 0x2000, IOMMU_READ)
    d.translate(0x4_0000, false)
    d.unmapFast(0x4_0000, 0x1000)
    expect(d.staleIotlbEntries).toBe(1)
    d.unmap(0x4_0000, 0x2000)
    expect(d.staleIotlbEntries).toBe(0)
    expect(d.translate(0x4_0000, false)).toBe(-1)
    expect(d.translate(0x4_1000, false)).toBe(-1)
    expect(d.mappedPages).toBe(0)
  })

  it('walks a range into physically contiguous runs', () => {
    const d = new IommuDomain('dev0')
    d.map(0x10_0000, 0x8_0000_0000, 0x2000, IOMMU_READ | IOMMU_WRITE)
    d.map(0x10_2000, 0x8_0010_0000, 0x1000, IOMMU_READ | IOMMU_WRITE)
    const pa: number[] = []
    const len: number[] = []
    const fault = [0]
    expect(d.walk(0x10_0800, 0x2000, true, pa, len, fault)).toBe(2)
    expect(pa.slice(0, 2)).toEqual([0x8_0000_0800, 0x8_0010_0000])
    expect(len.slice(0, 2)).toEqual([0x1800, 0x800])
    expect(d.walk(0x10_2800, 0x1000, false, pa, len, fault)).toBe(-1)
    expect(fault[0]).toBe(0x10_3000)
  })

  it('blocks a device access the page tables do not permit, with nothing written', () => {
    const m = new Machine({ arch: 'arm64', coherent: false, seed: 1, iommu: 'strict' })
    const port = m.createDmaPort('dev0')
    port.busMaster = true
    port.domain!.map(0x1000_0000, 0x8_0000_0000, 0x1000, IOMMU_READ)
    expect(port.write(0x1000_0000, new Uint8Array([1]))).toBe(MEMTX_ACCESS_ERROR)
    expect(m.ram.read8(0x8_0000_0000)).toBe(0)
    expect(m.iommuFaults).toEqual([{ device: 'dev0', iova: 0x1000_0000, write: true, reason: 'permission' }])
    const buf = new Uint8Array(4)
    expect(port.readInto(0x1000_0000, buf)).toBe(MEMTX_OK)
  })

  it('keeps per-device address spaces apart', () => {
    const m = new Machine({ arch: 'x86_64', coherent: true, seed: 1, iommu: 'strict' })
    const a = m.createDmaPort('a')
    const b = m.createDmaPort('b')
    a.domain!.map(0x2000, 0x4000_0000, 0x1000, IOMMU_READ)
    expect(a.domain!.translate(0x2000, false)).toBe(0x4000_0000)
    expect(b.domain!.translate(0x2000, false)).toBe(-1)
  })
})

describe('Ram', () => {
  it('is sparse: unbacked ranges read as zero and cost nothing', () => {
    const ram = new Ram([{ name: 'hi', base: 0x8_0000_0000, size: 0x4_0000_0000 }])
    const buf = new Uint8Array(16).fill(9)
    ram.read(0x9_0000_0000, buf, 0, 16)
    expect([...buf]).toEqual(new Array(16).fill(0))
    expect(ram.backedBytes).toBe(0)
    ram.write(0x9_0000_0000, new Uint8Array([1, 2, 3]), 0, 3)
    expect(ram.read8(0x9_0000_0002)).toBe(3)
    expect(ram.isRam(0x7_ffff_ffff)).toBe(false)
    expect(() => new Ram([{ name: 'bad', base: 1, size: 4096 }])).toThrow(/bad/)
  })
})
