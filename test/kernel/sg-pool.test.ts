/**
 * Scatter-gather, DMA pools, non-coherent allocations and coherent memory (DESIGN.md §5 "DMA"):
 * data round trips through a test master on every platform of the matrix, merging behind the
 * IOMMU, and the misuse reports (`unmap-size-mismatch` for an sg list, `pool-misuse`,
 * `device-access-cpu-owned` on dma_alloc_noncoherent memory).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  alloc_page,
  boot,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_alloc_coherent,
  dma_alloc_noncoherent,
  dma_free_coherent,
  dma_free_noncoherent,
  dma_map_sg,
  dma_map_sgtable,
  dma_pool_alloc,
  dma_pool_create,
  dma_pool_destroy,
  dma_pool_free,
  dma_pool_zalloc,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_sync_sgtable_for_cpu,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_sg,
  dma_unmap_sgtable,
  for_each_sg,
  __free_page,
  kfree,
  kmalloc,
  mem_read_bytes,
  mem_write_bytes,
  page_address,
  page_to_phys,
  PAGE_SIZE,
  ptr_add,
  sg_alloc_table,
  sg_dma_address,
  sg_dma_len,
  sg_free_table,
  sg_set_buf,
  sg_set_page,
  virt_to_phys,
  type CpuAddr,
  type DmaBuffer,
  type Page,
  type Report,
  type Scatterlist,
  type SgTable,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { optionsFor, PLATFORMS, type Platform } from '../helpers/matrix.js'

// ---------------------------------------------------------------------- helpers

const REL = 'test/kernel/sg-pool.test.ts'
const SRC = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n')

/** The `file:line` of the line marked `// @site <tag>` in this file. */
function site(tag: string): string {
  const marker = `// @site ${tag}`
  const lines = SRC.flatMap((l, i) => (l.trimEnd().endsWith(marker) ? [i + 1] : []))
  if (lines.length !== 1) throw new Error(`marker '${marker}' found ${lines.length} times`)
  return `${REL}:${lines[0]!}`
}

function pattern(n: number, salt = 1): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 13 + salt * 29 + (i >> 8) * 5) & 0xff
  return b
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, b) => a + b.length, 0))
  let off = 0
  for (const p of parts) {
    out.set(p, off)
    off += p.length
  }
  return out
}

function setup(p: Platform): { sys: System; m: TestMaster } {
  const sys = boot(optionsFor(p))
  return { sys, m: sys.attachTestMaster('tm0') }
}

/** Fast byte comparison (vitest's deep equality is slow on large typed arrays). */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  const same =
    actual.length === expected.length &&
    Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(
      Buffer.from(expected.buffer, expected.byteOffset, expected.length),
    )
  if (same) return
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  expect.fail(
    `bytes differ: length ${actual.length} vs ${expected.length}; first difference at offset ${i}: got ${actual[i]} expected ${expected[i]}`,
  )
}

const kinds = (sys: System) => sys.reports.map((r) => r.kind)

function expectOne(sys: System, kind: Report['kind'], stem: string, tag: string): Report {
  expect(kinds(sys)).toEqual([kind])
  const r = sys.reports[0]!
  expect(r.device).toBe('tm0')
  expect(r.message).toContain(stem)
  expect(r.site).toBe(site(tag))
  return r
}

/** The device writes `data` across the first `count` DMA segments, in order. */
function deviceWriteSegments(
  m: TestMaster,
  sgl: Scatterlist,
  count: number,
  data: Uint8Array,
): void {
  let off = 0
  for (const sg of for_each_sg(sgl, count)) {
    const len = sg_dma_len(sg)
    expect(len).toBeGreaterThan(0)
    expect(m.write(sg_dma_address(sg), data.subarray(off, off + len))).toBe(0)
    off += len
  }
  expect(off).toBe(data.length)
}

/** The device reads the first `count` DMA segments, concatenated. */
function deviceReadSegments(m: TestMaster, sgl: Scatterlist, count: number): Uint8Array {
  const parts: Uint8Array[] = []
  for (const sg of for_each_sg(sgl, count)) parts.push(m.read(sg_dma_address(sg), sg_dma_len(sg)))
  return concat(parts)
}

interface SgBufs {
  table: SgTable
  sgl: Scatterlist
  nents: number
  bufs: { cpu: CpuAddr; len: number }[]
  page: Page
}

/** Four entries: three kmalloc buffers of different sizes (sg_set_buf) and a page (sg_set_page). */
function buildList(fill: (i: number, len: number) => Uint8Array): SgBufs {
  const sizes = [512, 1024, 300]
  const bufs = sizes.map((len) => ({ cpu: kmalloc(len)!, len }))
  const page = alloc_page(0x0cc0)!
  bufs.push({ cpu: page_address(page), len: 2048 })
  bufs.forEach((b, i) => mem_write_bytes(b.cpu, fill(i, b.len)))
  const table: SgTable = {}
  expect(sg_alloc_table(table, bufs.length)).toBe(0)
  expect(table.nents).toBe(bufs.length)
  expect(table.orig_nents).toBe(bufs.length)
  const sgl = table.sgl!
  let i = 0
  for (const sg of for_each_sg(sgl, bufs.length)) {
    if (i < 3) sg_set_buf(sg, bufs[i]!.cpu, bufs[i]!.len)
    else sg_set_page(sg, page, 2048, 0)
    i++
  }
  expect(i).toBe(4)
  return { table, sgl, nents: bufs.length, bufs, page }
}

function freeList(l: SgBufs): void {
  for (const b of l.bufs.slice(0, 3)) kfree(b.cpu)
  __free_page(l.page)
  sg_free_table(l.table)
}

function readAll(l: SgBufs): Uint8Array {
  return concat(l.bufs.map((b) => mem_read_bytes(b.cpu, b.len)))
}

// ---------------------------------------------------------------------- scatter-gather

describe.each(PLATFORMS)('scatter-gather on $label', (p) => {
  it('FROM_DEVICE: the device writes every segment, the CPU sees it after dma_sync_sg_for_cpu', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((_i, len) => new Uint8Array(len))
      const count = dma_map_sg(m.dev, l.sgl, l.nents, DMA_FROM_DEVICE)
      expect(count).toBeGreaterThan(0)
      expect(count).toBeLessThanOrEqual(l.nents)
      const data = pattern(512 + 1024 + 300 + 2048, 3)
      deviceWriteSegments(m, l.sgl, count, data)
      dma_sync_sg_for_cpu(m.dev, l.sgl, l.nents, DMA_FROM_DEVICE)
      expectBytes(readAll(l), data)
      dma_unmap_sg(m.dev, l.sgl, l.nents, DMA_FROM_DEVICE)
      expectBytes(readAll(l), data)
      freeList(l)
    })
    expect(sys.reports).toEqual([])
  })

  it('FROM_DEVICE: the CPU sees the data after dma_unmap_sg alone', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((_i, len) => new Uint8Array(len).fill(0xee))
      const count = dma_map_sg(m.dev, l.sgl, l.nents, DMA_FROM_DEVICE)
      const data = pattern(512 + 1024 + 300 + 2048, 4)
      deviceWriteSegments(m, l.sgl, count, data)
      dma_unmap_sg(m.dev, l.sgl, l.nents, DMA_FROM_DEVICE)
      expectBytes(readAll(l), data)
      freeList(l)
    })
    expect(sys.reports).toEqual([])
  })

  it('TO_DEVICE: the device reads what the CPU wrote before dma_map_sg', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((i, len) => pattern(len, 10 + i))
      const expected = concat(l.bufs.map((b, i) => pattern(b.len, 10 + i)))
      const count = dma_map_sg(m.dev, l.sgl, l.nents, DMA_TO_DEVICE)
      expectBytes(deviceReadSegments(m, l.sgl, count), expected)
      dma_unmap_sg(m.dev, l.sgl, l.nents, DMA_TO_DEVICE)
      freeList(l)
    })
    expect(sys.reports).toEqual([])
  })

  it('BIDIRECTIONAL: ping-pong through sync_for_cpu / sync_for_device', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((i, len) => pattern(len, 20 + i))
      const total = 512 + 1024 + 300 + 2048
      const count = dma_map_sg(m.dev, l.sgl, l.nents, DMA_BIDIRECTIONAL)
      expectBytes(
        deviceReadSegments(m, l.sgl, count),
        concat(l.bufs.map((b, i) => pattern(b.len, 20 + i))),
      )
      deviceWriteSegments(m, l.sgl, count, pattern(total, 30))
      dma_sync_sg_for_cpu(m.dev, l.sgl, l.nents, DMA_BIDIRECTIONAL)
      expectBytes(readAll(l), pattern(total, 30))
      const next = pattern(total, 31)
      let off = 0
      for (const b of l.bufs) {
        mem_write_bytes(b.cpu, next.subarray(off, off + b.len))
        off += b.len
      }
      dma_sync_sg_for_device(m.dev, l.sgl, l.nents, DMA_BIDIRECTIONAL)
      expectBytes(deviceReadSegments(m, l.sgl, count), next)
      dma_unmap_sg(m.dev, l.sgl, l.nents, DMA_BIDIRECTIONAL)
      freeList(l)
    })
    expect(sys.reports).toEqual([])
  })

  it('dma_map_sgtable / dma_sync_sgtable_for_cpu / dma_unmap_sgtable round trip', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((_i, len) => new Uint8Array(len))
      expect(dma_map_sgtable(m.dev, l.table, DMA_FROM_DEVICE)).toBe(0)
      const count = l.table.nents!
      expect(count).toBeGreaterThan(0)
      expect(count).toBeLessThanOrEqual(l.table.orig_nents!)
      expect(l.table.orig_nents).toBe(4)
      const data = pattern(512 + 1024 + 300 + 2048, 5)
      deviceWriteSegments(m, l.table.sgl!, count, data)
      dma_sync_sgtable_for_cpu(m.dev, l.table, DMA_FROM_DEVICE)
      expectBytes(readAll(l), data)
      dma_unmap_sgtable(m.dev, l.table, DMA_FROM_DEVICE)
      freeList(l)
    })
    expect(sys.reports).toEqual([])
  })

  it('two page-sized entries of separate pages: merged to 1 segment behind the IOMMU (no bounce), else count === nents', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const a = alloc_page(0x0cc0)!
      const spacer = alloc_page(0x0cc0)!
      const c = alloc_page(0x0cc0)!
      expect(Math.abs(page_to_phys(c) - page_to_phys(a))).not.toBe(PAGE_SIZE)
      const table: SgTable = {}
      expect(sg_alloc_table(table, 2)).toBe(0)
      const sgl = table.sgl!
      const [s0, s1] = [...for_each_sg(sgl, 2)]
      sg_set_page(s0!, a, PAGE_SIZE, 0)
      sg_set_page(s1!, c, PAGE_SIZE, 0)
      const count = dma_map_sg(m.dev, sgl, 2, DMA_FROM_DEVICE)
      // Linux merges only in iommu_dma_map_sg; an untrusted (bounced) device maps entry by entry.
      if (p.iommu === 'strict' && p.swiotlb === 'auto') {
        expect(count).toBe(1)
        expect(sg_dma_len(s0!)).toBe(2 * PAGE_SIZE)
        expect(sg_dma_len(s1!)).toBe(0)
      } else {
        expect(count).toBe(2)
        expect(sg_dma_len(s0!)).toBe(PAGE_SIZE)
        expect(sg_dma_len(s1!)).toBe(PAGE_SIZE)
      }
      const data = pattern(2 * PAGE_SIZE, 6)
      deviceWriteSegments(m, sgl, count, data)
      dma_unmap_sg(m.dev, sgl, 2, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(page_address(a), PAGE_SIZE), data.subarray(0, PAGE_SIZE))
      expectBytes(mem_read_bytes(page_address(c), PAGE_SIZE), data.subarray(PAGE_SIZE))
      for (const pg of [a, spacer, c]) __free_page(pg)
      sg_free_table(table)
    })
    expect(sys.reports).toEqual([])
  })

  it('dma_unmap_sg with fewer entries than were mapped is reported', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((i, len) => pattern(len, i))
      dma_map_sg(m.dev, l.sgl, l.nents, DMA_TO_DEVICE)
      dma_unmap_sg(m.dev, l.sgl, l.nents - 1, DMA_TO_DEVICE) // @site sg-unmap-short
      freeList(l)
    })
    const r = expectOne(
      sys,
      'unmap-size-mismatch',
      'device driver frees DMA sg list with different entry count',
      'sg-unmap-short',
    )
    expect(r.message).toContain('[map count=4] [unmap count=3]')
  })
})

describe.each(PLATFORMS.filter((p) => p.iommu === 'strict' && p.swiotlb === 'auto'))(
  'sg merging on $label',
  (p) => {
    it('dma_unmap_sg with the count dma_map_sg returned instead of nents is reported', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const a = alloc_page(0x0cc0)!
        const spacer = alloc_page(0x0cc0)!
        const c = alloc_page(0x0cc0)!
        const table: SgTable = {}
        sg_alloc_table(table, 2)
        const [s0, s1] = [...for_each_sg(table.sgl, 2)]
        mem_write_bytes(page_address(a), pattern(PAGE_SIZE, 1))
        mem_write_bytes(page_address(c), pattern(PAGE_SIZE, 2))
        sg_set_page(s0!, a, PAGE_SIZE, 0)
        sg_set_page(s1!, c, PAGE_SIZE, 0)
        const count = dma_map_sg(m.dev, table.sgl!, 2, DMA_TO_DEVICE)
        expect(count).toBe(1)
        dma_unmap_sg(m.dev, table.sgl!, count, DMA_TO_DEVICE) // @site sg-unmap-count
        for (const pg of [a, spacer, c]) __free_page(pg)
      })
      const r = expectOne(
        sys,
        'unmap-size-mismatch',
        'device driver frees DMA sg list with different entry count',
        'sg-unmap-count',
      )
      expect(r.message).toContain('[map count=2] [unmap count=1]')
    })
  },
)

describe.each(PLATFORMS.filter((p) => p.iommu === 'strict'))('sg and the IOMMU on $label', (p) => {
  it('a device access to a segment after dma_unmap_sg is an iommu-fault, and only that', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const l = buildList((i, len) => pattern(len, i))
      const count = dma_map_sg(m.dev, l.sgl, l.nents, DMA_TO_DEVICE)
      const segs = [...for_each_sg(l.sgl, count)].map((sg) => ({
        dma: sg_dma_address(sg),
        len: sg_dma_len(sg),
      }))
      dma_unmap_sg(m.dev, l.sgl, l.nents, DMA_TO_DEVICE)
      m.read(segs[0]!.dma, segs[0]!.len) // @site sg-after-unmap
      expect(m.lastResult).not.toBe(0)
      freeList(l)
    })
    const r = expectOne(sys, 'iommu-fault', 'IOMMU fault', 'sg-after-unmap')
    expect(r.message).toMatch(/\bread\b/)
  })
})

describe.each(PLATFORMS.filter((p) => p.iommu === 'strict' && p.swiotlb === 'auto'))(
  'sg sync counts on $label',
  (p) => {
    it('dma_sync_sg_for_cpu with the returned count instead of nents is reported', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const a = alloc_page(0x0cc0)!
        const spacer = alloc_page(0x0cc0)!
        const c = alloc_page(0x0cc0)!
        const table: SgTable = {}
        sg_alloc_table(table, 2)
        const [s0, s1] = [...for_each_sg(table.sgl, 2)]
        sg_set_page(s0!, a, PAGE_SIZE, 0)
        sg_set_page(s1!, c, PAGE_SIZE, 0)
        const count = dma_map_sg(m.dev, table.sgl!, 2, DMA_FROM_DEVICE)
        expect(count).toBe(1)
        dma_sync_sg_for_cpu(m.dev, table.sgl!, count, DMA_FROM_DEVICE) // @site sg-sync-count
        dma_unmap_sg(m.dev, table.sgl!, 2, DMA_FROM_DEVICE)
        for (const pg of [a, spacer, c]) __free_page(pg)
      })
      const r = expectOne(
        sys,
        'sync-out-of-range',
        'device driver syncs DMA sg list with different entry count',
        'sg-sync-count',
      )
      expect(r.message).toContain('[map count=2] [sync count=1]')
    })
  },
)

// ---------------------------------------------------------------------- dma pools

describe.each(PLATFORMS)('dma pools on $label', (p) => {
  it('create / alloc / zalloc / free / destroy round trip respects size, align and boundary, silently', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const size = 96
      const align = 32
      const boundary = 256
      const pool = dma_pool_create('ring', m.dev, size, align, boundary)!
      expect(pool).not.toBeNull()
      const blocks: DmaBuffer[] = []
      for (let i = 0; i < 40; i++) {
        const b = i % 2 === 0 ? dma_pool_alloc(pool) : dma_pool_zalloc(pool)
        expect(b).not.toBeNull()
        blocks.push(b!)
      }
      for (const b of blocks) {
        const pa = virt_to_phys(b.cpu)
        expect(b.cpu % align).toBe(0)
        expect(b.dma % align).toBe(0)
        expect(Math.floor(b.dma / boundary)).toBe(Math.floor((b.dma + size - 1) / boundary))
        expect(Math.floor(pa / boundary)).toBe(Math.floor((pa + size - 1) / boundary))
        expect(b.dma % PAGE_SIZE).toBe(pa % PAGE_SIZE)
      }
      const sorted = [...blocks].sort((x, y) => x.cpu - y.cpu)
      for (let i = 1; i < sorted.length; i++)
        expect(sorted[i]!.cpu - sorted[i - 1]!.cpu).toBeGreaterThanOrEqual(size)
      const dmas = new Set(blocks.map((b) => b.dma))
      expect(dmas.size).toBe(blocks.length)
      // Pool memory is coherent: each side sees the other's writes with no sync.
      blocks.forEach((b, i) => mem_write_bytes(b.cpu, pattern(size, i)))
      blocks.forEach((b, i) => expectBytes(m.read(b.dma, size), pattern(size, i)))
      blocks.forEach((b, i) => m.write(b.dma, pattern(size, 100 + i)))
      blocks.forEach((b, i) => expectBytes(mem_read_bytes(b.cpu, size), pattern(size, 100 + i)))
      // zalloc of a dirtied, freed block hands it back zeroed to both sides.
      const dirty = blocks.pop()!
      dma_pool_free(pool, dirty.cpu, dirty.dma)
      const z = dma_pool_zalloc(pool)!
      expectBytes(mem_read_bytes(z.cpu, size), new Uint8Array(size))
      expectBytes(m.read(z.dma, size), new Uint8Array(size))
      blocks.push(z)
      for (const b of blocks) dma_pool_free(pool, b.cpu, b.dma)
      dma_pool_destroy(pool)
      dma_pool_destroy(null)
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })

  it('dma_pool_create rejects a non-power-of-two align and a boundary smaller than the block', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      expect(dma_pool_create('bad-align', m.dev, 64, 24, 0)).toBeNull()
      expect(dma_pool_create('bad-boundary', m.dev, 512, 8, 256)).toBeNull()
      expect(dma_pool_create('zero', m.dev, 0, 8, 0)).toBeNull()
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })

  it('pool-misuse: a block freed twice', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const pool = dma_pool_create('ring', m.dev, 64, 64, 0)!
      const b = dma_pool_alloc(pool)!
      dma_pool_free(pool, b.cpu, b.dma)
      dma_pool_free(pool, b.cpu, b.dma) // @site pool-double-free
      dma_pool_destroy(pool)
    })
    const r = expectOne(sys, 'pool-misuse', 'already free', 'pool-double-free')
    expect(r.message).toContain('dma_pool_free ring')
  })

  it('pool-misuse: a vaddr inside a block but not its start', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const pool = dma_pool_create('ring', m.dev, 64, 64, 0)!
      const b = dma_pool_alloc(pool)!
      dma_pool_free(pool, ptr_add(b.cpu, 8), ptr_add(b.dma, 8)) // @site pool-bad-vaddr
      dma_pool_free(pool, b.cpu, b.dma)
      dma_pool_destroy(pool)
    })
    const r = expectOne(sys, 'pool-misuse', '(bad vaddr)', 'pool-bad-vaddr')
    expect(r.message).toContain('dma_pool_free ring')
  })

  it('pool-misuse: a vaddr that is not from the pool at all', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const pool = dma_pool_create('ring', m.dev, 64, 64, 0)!
      const b = dma_pool_alloc(pool)!
      const other = kmalloc(64)!
      dma_pool_free(pool, other, b.dma) // @site pool-foreign
      dma_pool_free(pool, b.cpu, b.dma)
      dma_pool_destroy(pool)
      kfree(other)
    })
    expectOne(sys, 'pool-misuse', '(bad vaddr)', 'pool-foreign')
  })

  it('pool-misuse: destroying a pool whose blocks are in use', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const pool = dma_pool_create('busy-ring', m.dev, 64, 64, 0)!
      dma_pool_alloc(pool)
      dma_pool_alloc(pool)
      dma_pool_destroy(pool) // @site pool-destroy-busy
    })
    const r = expectOne(sys, 'pool-misuse', 'dma_pool_destroy busy-ring', 'pool-destroy-busy')
    expect(r.message).toContain('busy')
  })
})

// ---------------------------------------------------------------------- dma_alloc_noncoherent

describe.each(PLATFORMS)('dma_alloc_noncoherent on $label', (p) => {
  it('a device access before dma_sync_single_for_device is device-access-cpu-owned', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const b = dma_alloc_noncoherent(m.dev, 4096, DMA_TO_DEVICE)!
      expect(b).not.toBeNull()
      mem_write_bytes(b.cpu, pattern(4096, 1))
      m.read(b.dma, 4096) // @site noncoherent-unsynced
      dma_free_noncoherent(m.dev, 4096, b.cpu, b.dma, DMA_TO_DEVICE)
    })
    expectOne(sys, 'device-access-cpu-owned', 'device read', 'noncoherent-unsynced')
  })

  it('correct use (sync for the device, then for the CPU) is silent and moves the data', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const tx = dma_alloc_noncoherent(m.dev, 4096, DMA_TO_DEVICE)!
      mem_write_bytes(tx.cpu, pattern(4096, 2))
      dma_sync_single_for_device(m.dev, tx.dma, 4096, DMA_TO_DEVICE)
      expectBytes(m.read(tx.dma, 4096), pattern(4096, 2))
      dma_free_noncoherent(m.dev, 4096, tx.cpu, tx.dma, DMA_TO_DEVICE)

      const rx = dma_alloc_noncoherent(m.dev, 8192, DMA_FROM_DEVICE)!
      dma_sync_single_for_device(m.dev, rx.dma, 8192, DMA_FROM_DEVICE)
      m.write(rx.dma, pattern(8192, 3))
      dma_sync_single_for_cpu(m.dev, rx.dma, 8192, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.cpu, 8192), pattern(8192, 3))
      dma_sync_single_for_device(m.dev, rx.dma, 8192, DMA_FROM_DEVICE)
      m.write(rx.dma, pattern(8192, 4))
      dma_sync_single_for_cpu(m.dev, rx.dma, 8192, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.cpu, 8192), pattern(8192, 4))
      dma_free_noncoherent(m.dev, 8192, rx.cpu, rx.dma, DMA_FROM_DEVICE)
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- coherent memory

describe.each(PLATFORMS)('dma_alloc_coherent on $label', (p) => {
  it('is zeroed, order-aligned, and CPU and device see each other’s writes with no sync', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const size = 3 * PAGE_SIZE
      const c = dma_alloc_coherent(m.dev, size)!
      expect(c).not.toBeNull()
      expect(virt_to_phys(c.cpu) % (4 * PAGE_SIZE)).toBe(0)
      expect(c.dma % (4 * PAGE_SIZE)).toBe(0)
      expectBytes(mem_read_bytes(c.cpu, size), new Uint8Array(size))
      expectBytes(m.read(c.dma, size), new Uint8Array(size))
      for (let round = 0; round < 3; round++) {
        mem_write_bytes(c.cpu, pattern(size, 40 + round))
        expectBytes(m.read(c.dma, size), pattern(size, 40 + round))
        m.write(c.dma, pattern(size, 50 + round))
        expectBytes(mem_read_bytes(c.cpu, size), pattern(size, 50 + round))
      }
      // Interleaved small accesses: a descriptor-ring style exchange.
      mem_write_bytes(ptr_add(c.cpu, 64), new Uint8Array([1, 2, 3, 4]))
      m.write(ptr_add(c.dma, 128), new Uint8Array([9, 8, 7, 6]))
      expectBytes(m.read(ptr_add(c.dma, 64), 4), new Uint8Array([1, 2, 3, 4]))
      expectBytes(mem_read_bytes(ptr_add(c.cpu, 128), 4), new Uint8Array([9, 8, 7, 6]))
      dma_free_coherent(m.dev, size, c.cpu, c.dma)
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })
})
