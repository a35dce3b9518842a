/** The rest of the driver-facing API: accessors, structs, address conversion, masks and queries. */
import { describe, expect, it } from 'vitest'
import {
  alloc_pages,
  boot,
  defineStruct,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_get_mask,
  dma_get_required_mask,
  dma_map_page_attrs,
  dma_map_sg_attrs,
  dma_map_sgtable,
  dma_map_single,
  dma_mapping_error,
  dma_max_mapping_size,
  dma_need_sync,
  dma_set_coherent_mask,
  dma_set_mask,
  dma_sync_sgtable_for_device,
  dma_sync_single_for_device,
  dma_unmap_page,
  dma_unmap_sg_attrs,
  dma_unmap_sgtable,
  dma_unmap_single,
  dmam_alloc_coherent,
  dmam_free_coherent,
  EIO,
  for_each_sg,
  GFP_KERNEL,
  kfree,
  kmalloc,
  ksize,
  mem_read16,
  mem_read64,
  mem_read8,
  mem_write16,
  mem_write64,
  mem_write_bytes,
  memset,
  page_address,
  PAGE_SIZE,
  phys_to_virt,
  sg_alloc_table,
  sg_init_table,
  sg_next,
  sg_set_buf,
  sg_virt,
  virt_to_page,
  virt_to_phys,
  type SgTable,
} from '../../kernel/index.js'

const quiet = { log: 'silent' } as const

describe('CPU accessors and address conversion', () => {
  it('reads and writes little-endian 16- and 64-bit values, with bigints for 64 bits', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      const p = kmalloc(64)!
      mem_write16(p, 2, 0xbeef)
      expect(mem_read8(p, 2)).toBe(0xef)
      expect(mem_read8(p, 3)).toBe(0xbe)
      expect(mem_read16(p, 2)).toBe(0xbeef)
      mem_write64(p, 8, 0x0123_4567_89ab_cdefn)
      expect(mem_read64(p, 8)).toBe(0x0123_4567_89ab_cdefn)
      mem_write64(p, 16, 2 ** 40)
      expect(mem_read64(p, 16)).toBe(2n ** 40n)
      kfree(p)
    })
    expect(sys.reports).toEqual([])
  })

  it('converts between virtual, physical and page addresses, and knows object sizes', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      const p = kmalloc(100)!
      expect(ksize(p)).toBe(128) // arm64: the smallest cache is ARCH_DMA_MINALIGN
      const pa = virt_to_phys(p)
      expect(phys_to_virt(pa)).toBe(p)
      const page = virt_to_page(p)
      expect(page_address(page)).toBe(p - (p % PAGE_SIZE))
      expect(virt_to_page(p)).toBe(page)
      const pages = alloc_pages(GFP_KERNEL, 2)!
      expect(virt_to_phys(page_address(pages)) % (4 * PAGE_SIZE)).toBe(0) // naturally aligned
      kfree(p)
    })
  })

  it('defineStruct lays out fields like C and reads them through the cache', async () => {
    const sys = boot(quiet)
    const desc = defineStruct('e1000_rx_desc', { buffer_addr: 'u64', length: 'u16', csum: 'u16', status: 'u8', errors: 'u8', special: 'u16' })
    const mac = defineStruct('mac', { addr: 'u8[6]', flags: { type: 'u16', offset: 8 } })
    expect(desc.size).toBe(16)
    expect(desc.offsetof('status')).toBe(12)
    expect(mac.size).toBe(10)
    expect(() => desc.offsetof('nope' as never)).toThrow(/nope/)
    expect(() => defineStruct('bad', { x: 'u24' as never })).toThrow(/layout\.x/)
    await sys.run(() => {
      const ring = kmalloc(desc.size * 4)!
      memset(ring, 0, desc.size * 4)
      const d = desc.at(ring, 2)
      d.buffer_addr = 0x1234_5678_9an
      d.length = 1514
      d.status = 0x01
      expect(mem_read16(ring, 2 * 16 + 8)).toBe(1514)
      expect(d.buffer_addr).toBe(0x1234_5678_9an)
      expect(d.status & 0x01).toBe(1)
      const m = mac.at(ring)
      m.addr = new Uint8Array([1, 2, 3, 4, 5, 6])
      expect([...m.addr]).toEqual([1, 2, 3, 4, 5, 6])
      m.flags = 7
      expect(mem_read16(ring, 8)).toBe(7)
    })
    expect(sys.reports).toEqual([])
  })
})

describe('masks and queries', () => {
  it('behind an IOMMU any mask works (dma-iommu): a 24-bit coherent allocation gets an IOVA below 16 MiB', async () => {
    const sys = boot({ ...quiet, iommu: 'strict' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      expect(dma_set_mask(m.dev, DMA_BIT_MASK(24))).toBe(0)
      expect(dma_set_coherent_mask(m.dev, DMA_BIT_MASK(24))).toBe(0)
      const buf = dma_alloc_coherent(m.dev, 8192)!
      expect(buf.dma + 8192).toBeLessThanOrEqual(0x100_0000)
      dma_free_coherent(m.dev, 8192, buf.cpu, buf.dma)
    })
    expect(sys.reports).toEqual([])
  })

  it('without an IOMMU dma_set_mask refuses masks below 32 bits with -EIO and keeps the old one', async () => {
    const sys = boot({ ...quiet, iommu: 'off' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      expect(dma_get_mask(m.dev)).toBe(DMA_BIT_MASK(64))
      expect(dma_set_mask(m.dev, DMA_BIT_MASK(24))).toBe(-EIO)
      expect(dma_set_coherent_mask(m.dev, DMA_BIT_MASK(24))).toBe(-EIO)
      expect(dma_get_mask(m.dev)).toBe(DMA_BIT_MASK(64))
      expect(dma_set_mask(m.dev, DMA_BIT_MASK(40))).toBe(0)
      expect(dma_get_mask(m.dev)).toBe(DMA_BIT_MASK(40))
      expect(dma_set_coherent_mask(m.dev, DMA_BIT_MASK(32))).toBe(0)
      expect(m.dev.coherent_dma_mask).toBe(DMA_BIT_MASK(32))
      expect(dma_get_required_mask(m.dev) >= DMA_BIT_MASK(36)).toBe(true)
    })
  })

  it('a 32-bit coherent mask gives coherent memory below 4 GiB without an IOMMU', async () => {
    const sys = boot({ ...quiet, iommu: 'off' })
    const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
    await sys.run(() => {
      const buf = dma_alloc_coherent(m.dev, 8192)!
      expect(buf.dma + 8192 - 1).toBeLessThanOrEqual(0xffff_ffff)
      expect(buf.dma % 8192).toBe(0)
    })
  })

  it('dma_need_sync is true on non-coherent platforms and for bounced mappings only', async () => {
    for (const [arch, swiotlb, expected] of [['arm64', 'auto', true], ['x86_64', 'auto', false], ['x86_64', 'force', true]] as const) {
      const sys = boot({ ...quiet, arch, swiotlb })
      const m = sys.attachTestMaster('tm0')
      await sys.run(() => {
        const p = kmalloc(64)!
        memset(p, 0, 64)
        const dma = dma_map_single(m.dev, p, 64, DMA_TO_DEVICE)
        dma_mapping_error(m.dev, dma)
        expect(dma_need_sync(m.dev, dma)).toBe(expected)
        dma_unmap_single(m.dev, dma, 64, DMA_TO_DEVICE)
      })
    }
  })

  it('dma_max_mapping_size is 256 KiB under swiotlb=force, and a bigger mapping fails', async () => {
    const sys = boot({ ...quiet, swiotlb: 'force' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      expect(dma_max_mapping_size(m.dev)).toBe(256 * 1024)
      const p = kmalloc(512 * 1024)!
      memset(p, 0, 512 * 1024)
      const dma = dma_map_single(m.dev, p, 512 * 1024, DMA_TO_DEVICE)
      expect(dma).toBe(DMA_MAPPING_ERROR)
      expect(dma_mapping_error(m.dev, dma)).not.toBe(0)
    })
    const plain = boot(quiet)
    const m2 = plain.attachTestMaster('tm0')
    await plain.run(() => expect(dma_max_mapping_size(m2.dev)).toBeGreaterThan(1 << 30))
    expect(sys.reports).toEqual([])
  })
})

describe('managed memory, page mappings and scatterlists', () => {
  it('dmam_free_coherent releases early; the rest is released at detach without a leak', async () => {
    const sys = boot(quiet)
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const a = dmam_alloc_coherent(m.dev, 4096)!
      dmam_alloc_coherent(m.dev, 4096)
      dmam_free_coherent(m.dev, 4096, a.cpu, a.dma)
      expect(m.dev.devres).toHaveLength(1)
    })
    m.detach()
    expect(sys.reports).toEqual([])
    expect(m.dev.entries.size).toBe(0)
  })

  it('dma_map_page_attrs with DMA_ATTR_SKIP_CPU_SYNC holds the driver to a sync before device use', async () => {
    const sys = boot(quiet)
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const page = alloc_pages(GFP_KERNEL, 0)!
      memset(page_address(page), 1, PAGE_SIZE)
      const dma = dma_map_page_attrs(m.dev, page, 256, 512, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
      dma_mapping_error(m.dev, dma)
      m.read(dma, 16)
      expect(sys.reports.map((r) => r.kind)).toEqual(['device-access-cpu-owned'])
      dma_sync_single_for_device(m.dev, dma, 512, DMA_TO_DEVICE)
      m.read(dma, 16)
      dma_unmap_page(m.dev, dma, 512, DMA_TO_DEVICE)
    })
    expect(sys.reports).toHaveLength(1)
  })

  it('sg_init_table, sg_next and sg_virt walk a chain; attrs variants and sgtable syncs work', async () => {
    const sys = boot(quiet)
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const sgl = sg_init_table(3)
      const bufs = [kmalloc(100)!, kmalloc(200)!, kmalloc(300)!]
      let sg: ReturnType<typeof sg_next> = sgl
      for (const [i, b] of bufs.entries()) {
        memset(b, i, 100 * (i + 1))
        sg_set_buf(sg!, b, 100 * (i + 1))
        expect(sg_virt(sg!)).toBe(b)
        sg = sg_next(sg!)
      }
      expect(sg).toBeNull()
      const n = dma_map_sg_attrs(m.dev, sgl, 3, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
      expect(n).toBe(3)
      dma_unmap_sg_attrs(m.dev, sgl, 3, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)

      const table: SgTable = {}
      expect(sg_alloc_table(table, 2)).toBe(0)
      const x = kmalloc(64)!
      const y = kmalloc(64)!
      const [s0, s1] = [...for_each_sg(table.sgl, 2)]
      sg_set_buf(s0!, x, 64)
      sg_set_buf(s1!, y, 64)
      expect(dma_map_sgtable(m.dev, table, DMA_FROM_DEVICE)).toBe(0)
      for (const s of for_each_sg(table.sgl, table.nents ?? 0)) m.write(s.dma_address, new Uint8Array(s.dma_length).fill(9))
      dma_sync_sgtable_for_device(m.dev, table, DMA_FROM_DEVICE)
      dma_unmap_sgtable(m.dev, table, DMA_FROM_DEVICE)
      expect(mem_read8(x, 0)).toBe(9)
      expect(mem_read8(y, 63)).toBe(9)
      mem_write_bytes(x, new Uint8Array([1]))
    })
    expect(sys.reports).toEqual([])
  })
})

describe('printk', () => {
  it('formats like the kernel and prefixes dev_* with the device name', async () => {
    const { kformat } = await import('../../kernel/index.js')
    expect(kformat('len %u at %#x, %s: %d%%', [64, 255, 'ok', -3])).toBe('len 64 at 0xff, ok: -3%')
    expect(kformat('dma %pad', [0x1000])).toBe('dma 0x0000000000001000')
    expect(kformat('[%03x] %016llx %-4s| %5d', [7, 0xffefe040, 'ab', -12])).toBe('[007] 00000000ffefe040 ab  |   -12')
    expect(kformat('%pM %pI4', [new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]), new Uint8Array([10, 0, 0, 1])])).toBe('52:54:00:12:34:56 10.0.0.1')
    expect(kformat('%llx', [2n ** 40n])).toBe('10000000000')
  })
})
