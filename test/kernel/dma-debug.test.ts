/**
 * dma-debug's API checks (shared/research/linux-dma.md §3, DESIGN.md §6): for each report kind a
 * test that triggers it — kind, device, Linux's message stem and the `file:line` of the faulty call
 * in this file — and a test of the correct pattern that must stay silent. Every test runs over the
 * platform matrix where the check applies.
 *
 * The faulty line of each scenario carries a `// @site <tag>` marker; `site(tag)` turns it into
 * the `file:line` a report must name.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  boot,
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_MAPPING_ERROR,
  DMA_TO_DEVICE,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_sg,
  dma_map_single,
  dma_mapping_error,
  dma_pool_alloc,
  dma_pool_create,
  dma_pool_destroy,
  dma_pool_free,
  dma_set_mask,
  dma_set_mask_and_coherent,
  dma_map_page,
  dma_unmap_page,
  alloc_page,
  __free_page,
  page_address,
  GFP_KERNEL,
  PAGE_SIZE,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_unmap_sg,
  dma_unmap_single,
  dmam_alloc_coherent,
  dmam_pool_create,
  ENOMEM,
  kfree,
  kmalloc,
  mem_read_bytes,
  mem_write_bytes,
  ptr_add,
  sg_alloc_table,
  sg_dma_address,
  sg_dma_len,
  sg_set_buf,
  virt_to_phys,
  type BootOptions,
  type CpuAddr,
  type DmaAddr,
  type Report,
  type SgTable,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { optionsFor, PLATFORMS, type Platform } from '../helpers/matrix.js'

// ---------------------------------------------------------------------- helpers

const REL = 'test/kernel/dma-debug.test.ts'
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
  for (let i = 0; i < n; i++) b[i] = (i * 7 + salt * 31 + (i >> 8)) & 0xff
  return b
}

function setup(p: Platform, extra: BootOptions = {}): { sys: System; m: TestMaster } {
  const sys = boot(optionsFor(p, extra))
  const m = sys.attachTestMaster('tm0')
  return { sys, m }
}

/** A kmalloc buffer whose bytes the CPU has written. */
function filled(n: number, salt = 1): CpuAddr {
  const p = kmalloc(n)
  if (p === null) throw new Error('kmalloc failed')
  mem_write_bytes(p, pattern(n, salt))
  return p
}

/** A checked single mapping of a fresh filled buffer. */
function mapped(m: TestMaster, n: number, dir: number, salt = 1): { buf: CpuAddr; dma: DmaAddr } {
  const buf = filled(n, salt)
  const dma = dma_map_single(m.dev, buf, n, dir)
  if (dma_mapping_error(m.dev, dma) !== 0) throw new Error('mapping failed')
  return { buf, dma }
}

const hex = (n: number) => `0x${n.toString(16)}`
const hex16 = (n: number) => `0x${n.toString(16).padStart(16, '0')}`
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

/** Exactly one report, of this kind, from tm0, with Linux's stem, at the marked line. */
function expectOne(
  sys: System | readonly Report[],
  kind: Report['kind'],
  stem: string,
  tag: string,
): Report {
  const reports = Array.isArray(sys) ? (sys as readonly Report[]) : (sys as System).reports
  expect(reports.map((x) => x.kind)).toEqual([kind])
  const r = reports[0]!
  expect(r.device).toBe('tm0')
  expect(r.message).toContain(stem)
  expect(r.site).toBe(site(tag))
  expect(r.count).toBe(1)
  return r
}

const STRICT = PLATFORMS.filter((p) => p.iommu === 'strict')
const NO_IOMMU = PLATFORMS.filter((p) => p.iommu === 'off')

// ---------------------------------------------------------------------- map-error-unchecked

describe.each(PLATFORMS)('map-error-unchecked on $label', (p) => {
  const stem = 'device driver failed to check map error'

  it('is reported when the device is handed the address before dma_mapping_error', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
      const seen = m.read(dma, 256) // @site mec-device
      expectBytes(seen, pattern(256))
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      kfree(buf)
    })
    const r = expectOne(sys, 'map-error-unchecked', stem, 'mec-device')
    expect(r.message).toContain('[size=256 bytes]')
  })

  it('is reported when the mapping is synced before dma_mapping_error', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_BIDIRECTIONAL)
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_BIDIRECTIONAL) // @site mec-sync
      dma_sync_single_for_device(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
      dma_unmap_single(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      kfree(buf)
    })
    expectOne(sys, 'map-error-unchecked', stem, 'mec-sync')
  })

  it('is reported when the mapping is unmapped without dma_mapping_error', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE) // @site mec-unmap
      kfree(buf)
    })
    const r = expectOne(sys, 'map-error-unchecked', stem, 'mec-unmap')
    expect(r.message).toContain('[mapped as single]')
  })

  it('is reported for dma_map_page as for dma_map_single', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const page = alloc_page(GFP_KERNEL)!
      mem_write_bytes(page_address(page), pattern(PAGE_SIZE))
      const dma = dma_map_page(m.dev, page, 0, PAGE_SIZE, DMA_TO_DEVICE)
      m.read(dma, 64) // @site mec-page
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
      dma_unmap_page(m.dev, dma, PAGE_SIZE, DMA_TO_DEVICE)
      __free_page(page)
    })
    expectOne(sys, 'map-error-unchecked', stem, 'mec-page')
  })

  it('is reported only once per mapping (device access, syncs and unmap all unchecked)', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_BIDIRECTIONAL)
      m.read(dma, 256) // @site mec-once
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      dma_sync_single_for_device(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      m.write(dma, pattern(256, 2))
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      dma_sync_single_for_device(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      dma_unmap_single(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      expectBytes(mem_read_bytes(buf, 256), pattern(256, 2))
      kfree(buf)
    })
    expectOne(sys, 'map-error-unchecked', stem, 'mec-once')
  })

  it('is silent when dma_mapping_error is called right after the map', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_BIDIRECTIONAL)
      expectBytes(m.read(dma, 256), pattern(256))
      m.write(dma, pattern(256, 3))
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      expectBytes(mem_read_bytes(buf, 256), pattern(256, 3))
      dma_sync_single_for_device(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      dma_unmap_single(m.dev, dma, 256, DMA_BIDIRECTIONAL)
      kfree(buf)
    })
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- unmap-*

describe.each(PLATFORMS)('unmap checks on $label', (p) => {
  it('unmap-unknown: a double unmap', async () => {
    const { sys, m } = setup(p)
    let dma = 0 as DmaAddr
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      dma = r.dma
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE) // @site double-unmap
      kfree(r.buf)
    })
    const r = expectOne(
      sys,
      'unmap-unknown',
      'device driver tries to free DMA memory it has not allocated',
      'double-unmap',
    )
    expect(r.message).toContain(`[device address=${hex16(dma)}] [size=256 bytes]`)
  })

  it('unmap-unknown: unmap of an address that was never mapped', async () => {
    const { sys, m } = setup(p)
    const bogus = 0x1234_5000 as DmaAddr
    await sys.run(() => {
      dma_unmap_single(m.dev, bogus, 512, DMA_FROM_DEVICE) // @site never-mapped
    })
    const r = expectOne(
      sys,
      'unmap-unknown',
      'device driver tries to free DMA memory it has not allocated',
      'never-mapped',
    )
    expect(r.message).toContain(`[device address=${hex16(bogus)}] [size=512 bytes]`)
  })

  it('unmap-unknown: unmap of DMA_MAPPING_ERROR', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      dma_unmap_single(m.dev, DMA_MAPPING_ERROR, 64, DMA_TO_DEVICE) // @site unmap-error-addr
    })
    expectOne(
      sys,
      'unmap-unknown',
      'device driver tries to free an invalid DMA memory address',
      'unmap-error-addr',
    )
  })

  it('unmap-size-mismatch', async () => {
    const { sys, m } = setup(p)
    let dma = 0 as DmaAddr
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      dma = r.dma
      dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE) // @site unmap-size
      kfree(r.buf)
    })
    const r = expectOne(
      sys,
      'unmap-size-mismatch',
      'device driver frees DMA memory with different size',
      'unmap-size',
    )
    expect(r.message).toContain(
      `[device address=${hex16(dma)}] [map size=256 bytes] [unmap size=128 bytes]`,
    )
  })

  it('unmap-direction-mismatch', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE) // @site unmap-dir
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'unmap-direction-mismatch',
      'device driver frees DMA memory with different direction',
      'unmap-dir',
    )
    expect(r.message).toContain('[mapped with DMA_TO_DEVICE] [unmapped with DMA_FROM_DEVICE]')
  })

  it('unmap-type-mismatch: dma_unmap_single on dma_alloc_coherent memory', async () => {
    const { sys, m } = setup(p)
    // What Linux does after a wrong-function free is undefined; judge the faulty call alone.
    let snap: Report[] = []
    await sys.run(() => {
      const c = dma_alloc_coherent(m.dev, 4096)!
      expect(c).not.toBeNull()
      dma_unmap_single(m.dev, c.dma, 4096, DMA_BIDIRECTIONAL) // @site unmap-coherent
      snap = [...sys.reports]
      dma_free_coherent(m.dev, 4096, c.cpu, c.dma)
    })
    const r = expectOne(
      snap,
      'unmap-type-mismatch',
      'device driver frees DMA memory with wrong function',
      'unmap-coherent',
    )
    expect(r.message).toContain('[mapped as coherent] [unmapped as single]')
  })

  it('unmap-type-mismatch: dma_unmap_single on a scatter-gather entry', async () => {
    const { sys, m } = setup(p)
    // What Linux does after a wrong-function free is undefined; judge the faulty call alone.
    let snap: Report[] = []
    await sys.run(() => {
      const buf = filled(256)
      const table: SgTable = {}
      expect(sg_alloc_table(table, 1)).toBe(0)
      const sgl = table.sgl!
      sg_set_buf(sgl, buf, 256)
      expect(dma_map_sg(m.dev, sgl, 1, DMA_TO_DEVICE)).toBe(1)
      dma_unmap_single(m.dev, sg_dma_address(sgl), sg_dma_len(sgl), DMA_TO_DEVICE) // @site unmap-sg-entry
      snap = [...sys.reports]
      dma_unmap_sg(m.dev, sgl, 1, DMA_TO_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      snap,
      'unmap-type-mismatch',
      'device driver frees DMA memory with wrong function',
      'unmap-sg-entry',
    )
    expect(r.message).toContain('[mapped as scatter-gather] [unmapped as single]')
  })

  it('every check_unmap check fires for one call: size, direction and the unchecked map error', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE) // @site unmap-all
      kfree(buf)
    })
    expect([...kinds(sys)].sort()).toEqual([
      'map-error-unchecked',
      'unmap-direction-mismatch',
      'unmap-size-mismatch',
    ])
    for (const r of sys.reports) {
      expect(r.device).toBe('tm0')
      expect(r.site).toBe(site('unmap-all'))
    }
  })

  it('is silent for matching map/unmap pairs in every direction', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      for (const dir of [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL]) {
        const { buf, dma } = mapped(m, 512, dir)
        if (dir !== DMA_FROM_DEVICE) expectBytes(m.read(dma, 512), pattern(512))
        if (dir !== DMA_TO_DEVICE) m.write(dma, pattern(512, 9))
        dma_unmap_single(m.dev, dma, 512, dir)
        expectBytes(mem_read_bytes(buf, 512), pattern(512, dir === DMA_TO_DEVICE ? 1 : 9))
        kfree(buf)
      }
    })
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- sync-*

describe.each(PLATFORMS)('sync checks on $label', (p) => {
  it('sync-unmapped: sync of an address that was never mapped', async () => {
    const { sys, m } = setup(p)
    const bogus = 0x2345_6000 as DmaAddr
    await sys.run(() => {
      dma_sync_single_for_cpu(m.dev, bogus, 64, DMA_FROM_DEVICE) // @site sync-never
    })
    const r = expectOne(
      sys,
      'sync-unmapped',
      'device driver tries to sync DMA memory it has not allocated',
      'sync-never',
    )
    expect(r.message).toContain(`[device address=${hex16(bogus)}] [size=64 bytes]`)
  })

  it('sync-unmapped: sync after unmap', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_FROM_DEVICE)
      dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
      dma_sync_single_for_device(m.dev, dma, 256, DMA_FROM_DEVICE) // @site sync-after-unmap
      kfree(buf)
    })
    expectOne(
      sys,
      'sync-unmapped',
      'device driver tries to sync DMA memory it has not allocated',
      'sync-after-unmap',
    )
  })

  it('sync-out-of-range: a sync extending past the end of the mapping', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_FROM_DEVICE)
      dma_sync_single_for_cpu(m.dev, dma, 512, DMA_FROM_DEVICE) // @site sync-long
      dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'sync-out-of-range',
      'device driver syncs DMA memory outside allocated range',
      'sync-long',
    )
    expect(r.message).toContain('[allocation size=256 bytes] [sync offset+size=512]')
  })

  it('sync-out-of-range: a range sync whose offset+size passes the end', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_FROM_DEVICE)
      dma_sync_single_range_for_cpu(m.dev, dma, 200, 100, DMA_FROM_DEVICE) // @site sync-range-long
      dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'sync-out-of-range',
      'device driver syncs DMA memory outside allocated range',
      'sync-range-long',
    )
    expect(r.message).toContain('[sync offset+size=300]')
  })

  it('sync-direction-mismatch: synced with another direction than mapped', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_FROM_DEVICE)
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_BIDIRECTIONAL) // @site sync-dir
      dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'sync-direction-mismatch',
      'device driver syncs DMA memory with different direction',
      'sync-dir',
    )
    expect(r.message).toContain('[mapped with DMA_FROM_DEVICE] [synced with DMA_BIDIRECTIONAL]')
  })

  it('sync-direction-mismatch: a device read-only (TO_DEVICE) mapping synced FROM_DEVICE for the cpu', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_TO_DEVICE)
      dma_sync_single_for_cpu(m.dev, dma, 256, DMA_FROM_DEVICE) // @site sync-ro
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'sync-direction-mismatch',
      'device driver syncs device read-only DMA memory for cpu',
      'sync-ro',
    )
    expect(r.message).toContain('[mapped with DMA_TO_DEVICE] [synced with DMA_FROM_DEVICE]')
  })

  it('is silent for well-formed syncs, including partial ranges and the RX-recycling pattern', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const rx = mapped(m, 1024, DMA_FROM_DEVICE)
      m.write(rx.dma, pattern(1024, 4))
      dma_sync_single_for_cpu(m.dev, rx.dma, 1024, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.buf, 1024), pattern(1024, 4))
      dma_sync_single_for_device(m.dev, rx.dma, 1024, DMA_FROM_DEVICE)
      m.write(rx.dma, pattern(1024, 5))
      dma_sync_single_range_for_cpu(m.dev, rx.dma, 256, 256, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(ptr_add(rx.buf, 256), 256), pattern(1024, 5).subarray(256, 512))
      dma_unmap_single(m.dev, rx.dma, 1024, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.buf, 1024), pattern(1024, 5))
      const tx = mapped(m, 256, DMA_TO_DEVICE)
      dma_sync_single_for_cpu(m.dev, tx.dma, 256, DMA_TO_DEVICE)
      mem_write_bytes(tx.buf, pattern(256, 6))
      dma_sync_single_for_device(m.dev, tx.dma, 256, DMA_TO_DEVICE)
      expectBytes(m.read(tx.dma, 256), pattern(256, 6))
      dma_unmap_single(m.dev, tx.dma, 256, DMA_TO_DEVICE)
      kfree(rx.buf)
      kfree(tx.buf)
    })
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- free-coherent-mismatch

describe.each(PLATFORMS)('free-coherent-mismatch on $label', (p) => {
  it('freed with the wrong size', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const c = dma_alloc_coherent(m.dev, 4096)!
      dma_free_coherent(m.dev, 2048, c.cpu, c.dma) // @site free-size
    })
    const r = expectOne(
      sys,
      'free-coherent-mismatch',
      'device driver frees DMA memory with different size',
      'free-size',
    )
    expect(r.message).toContain('[map size=4096 bytes] [unmap size=2048 bytes]')
  })

  it('freed with the wrong CPU address', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const c = dma_alloc_coherent(m.dev, 4096)!
      dma_free_coherent(m.dev, 4096, ptr_add(c.cpu, 64), c.dma) // @site free-cpu
    })
    const r = expectOne(
      sys,
      'free-coherent-mismatch',
      'device driver frees DMA memory with different CPU address',
      'free-cpu',
    )
    expect(r.message).toContain('[size=4096 bytes]')
  })

  it('a streaming mapping freed with dma_free_coherent', async () => {
    const { sys, m } = setup(p)
    // What Linux does after a wrong-function free is undefined; judge the faulty call alone.
    let snap: Report[] = []
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_TO_DEVICE)
      dma_free_coherent(m.dev, 256, buf, dma) // @site free-streaming
      snap = [...sys.reports]
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      kfree(buf)
    })
    const r = expectOne(
      snap,
      'free-coherent-mismatch',
      'device driver frees DMA memory with wrong function',
      'free-streaming',
    )
    expect(r.message).toContain('[mapped as single]')
  })

  it('freed with a DMA handle that was never allocated', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const c = dma_alloc_coherent(m.dev, 4096)!
      dma_free_coherent(m.dev, 4096, c.cpu, ptr_add(c.dma, 4096 * 16)) // @site free-unknown
      dma_free_coherent(m.dev, 4096, c.cpu, c.dma)
    })
    expectOne(
      sys,
      'free-coherent-mismatch',
      'device driver tries to free DMA memory it has not allocated',
      'free-unknown',
    )
  })

  it('is silent when dev, size, cpu and dma all match', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      for (const size of [100, 4096, 3 * 4096]) {
        const c = dma_alloc_coherent(m.dev, size)!
        expect(c).not.toBeNull()
        mem_write_bytes(c.cpu, pattern(size, 2))
        expectBytes(m.read(c.dma, size), pattern(size, 2))
        dma_free_coherent(m.dev, size, c.cpu, c.dma)
      }
    })
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- leak

describe.each(PLATFORMS)('leak on $label', (p) => {
  const stem = 'device driver has pending DMA allocations while released from device'

  it('a live streaming mapping at detach', async () => {
    const { sys, m } = setup(p)
    let dma = 0 as DmaAddr
    await sys.run(() => {
      dma = mapped(m, 256, DMA_FROM_DEVICE).dma
    })
    expect(sys.reports).toEqual([])
    m.detach() // @site leak-map
    const r = expectOne(sys, 'leak', stem, 'leak-map')
    expect(r.message).toContain('[count=1]')
    expect(r.message).toContain(
      `[device address=${hex16(dma)}] [size=256 bytes] [mapped with DMA_FROM_DEVICE] [mapped as single]`,
    )
  })

  it('a live coherent buffer at detach, counted with a mapping in one report', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      expect(dma_alloc_coherent(m.dev, 8192)).not.toBeNull()
      mapped(m, 64, DMA_TO_DEVICE)
    })
    m.detach() // @site leak-coherent
    const r = expectOne(sys, 'leak', stem, 'leak-coherent')
    expect(r.message).toContain('[count=2]')
  })

  it('a pool that was not destroyed', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const pool = dma_pool_create('leaky-pool', m.dev, 64, 64, 0)!
      expect(pool).not.toBeNull()
    })
    m.detach() // @site leak-pool
    const r = expectOne(sys, 'leak', 'leaky-pool', 'leak-pool')
    expect(r.message).toMatch(/destroy/)
  })

  it('dmam_alloc_coherent and dmam_pool_create are released silently at detach', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const c = dmam_alloc_coherent(m.dev, 4096)!
      expect(c).not.toBeNull()
      mem_write_bytes(c.cpu, pattern(64))
      expectBytes(m.read(c.dma, 64), pattern(64))
      const pool = dmam_pool_create('managed', m.dev, 32, 32, 0)!
      const blk = dma_pool_alloc(pool)!
      dma_pool_free(pool, blk.cpu, blk.dma)
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })

  it('is silent when everything was released before detach', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const { buf, dma } = mapped(m, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      kfree(buf)
      const c = dma_alloc_coherent(m.dev, 4096)!
      dma_free_coherent(m.dev, 4096, c.cpu, c.dma)
      const pool = dma_pool_create('tidy', m.dev, 64, 64, 0)!
      const blk = dma_pool_alloc(pool)!
      dma_pool_free(pool, blk.cpu, blk.dma)
      dma_pool_destroy(pool)
    })
    m.detach()
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- iommu-fault

describe.each(STRICT)('iommu-fault on $label', (p) => {
  it('a device read of an IOVA after unmap faults, names device, address and direction', async () => {
    const { sys, m } = setup(p)
    let dma = 0 as DmaAddr
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      dma = r.dma
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      const seen = m.read(dma, 256) // @site iommu-after-unmap
      expect(m.lastResult).not.toBe(0)
      expectBytes(seen, new Uint8Array(256))
      kfree(r.buf)
    })
    const r = expectOne(sys, 'iommu-fault', 'IOMMU fault', 'iommu-after-unmap')
    expect(r.message).toContain('tm0')
    expect(r.message).toContain(hex(dma))
    expect(r.message).toMatch(/\bread\b/i)
  })

  it('a device write to a DMA_TO_DEVICE mapping faults and does not land', async () => {
    const { sys, m } = setup(p)
    let dma = 0 as DmaAddr
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      dma = r.dma
      m.write(dma, pattern(256, 7)) // @site iommu-write-to-device
      expect(m.lastResult).not.toBe(0)
      dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
      expectBytes(mem_read_bytes(r.buf, 256), pattern(256))
      kfree(r.buf)
    })
    const r = expectOne(sys, 'iommu-fault', 'IOMMU fault', 'iommu-write-to-device')
    expect(r.message).toContain('tm0')
    expect(r.message).toContain(hex(dma))
    expect(r.message).toMatch(/\bwrite\b/i)
  })

  it('is silent for accesses the mappings permit', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const tx = mapped(m, 256, DMA_TO_DEVICE)
      const rx = mapped(m, 256, DMA_FROM_DEVICE)
      expectBytes(m.read(tx.dma, 256), pattern(256))
      expect(m.write(rx.dma, pattern(256, 8))).toBe(0)
      dma_unmap_single(m.dev, tx.dma, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, rx.dma, 256, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.buf, 256), pattern(256, 8))
      kfree(tx.buf)
      kfree(rx.buf)
    })
    expect(sys.reports).toEqual([])
  })
})

describe.each(NO_IOMMU)('without an IOMMU on $label', (p) => {
  it('a device access after unmap is device-access-cpu-owned', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, r.dma, 256, DMA_TO_DEVICE)
      m.read(r.dma, 256) // @site noiommu-after-unmap
      kfree(r.buf)
    })
    expectOne(sys, 'device-access-cpu-owned', 'device read', 'noiommu-after-unmap')
  })

  it('a device write to a DMA_TO_DEVICE mapping is device-write-to-device-mapping', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const r = mapped(m, 256, DMA_TO_DEVICE)
      m.write(r.dma, pattern(256, 7)) // @site noiommu-write-to-device
      dma_unmap_single(m.dev, r.dma, 256, DMA_TO_DEVICE)
      kfree(r.buf)
    })
    expectOne(sys, 'device-write-to-device-mapping', 'DMA_TO_DEVICE', 'noiommu-write-to-device')
  })
})

// ---------------------------------------------------------------------- dma-mask

const FOUR_GIB = 2 ** 32

describe.each(PLATFORMS.filter((p) => p.iommu === 'off' && p.swiotlb === 'auto'))(
  'dma-mask on $arch seed=$seed',
  (p) => {
    it('a 32-bit device given a 64-bit mask and memory above 4 GiB (no IOMMU, no swiotlb)', async () => {
      const sys = boot(optionsFor(p, { iommu: 'off', swiotlb: 'off' }))
      const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
      let dma = 0 as DmaAddr
      await sys.run(() => {
        expect(dma_set_mask(m.dev, DMA_BIT_MASK(64))).toBe(0)
        const buf = filled(256)
        expect(virt_to_phys(buf)).toBeGreaterThanOrEqual(FOUR_GIB)
        dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        expect(dma).toBeGreaterThanOrEqual(FOUR_GIB)
        m.read(dma, 256) // @site dma-mask
        dma_unmap_single(m.dev, dma, 256, DMA_TO_DEVICE)
        kfree(buf)
      })
      const masks = sys.reports.filter((r) => r.kind === 'dma-mask')
      expect(masks).toHaveLength(1)
      expect(sys.reports[0]!.kind).toBe('dma-mask')
      const r = masks[0]!
      expect(r.device).toBe('tm0')
      expect(r.message).toContain(hex(dma))
      expect(r.site).toBe(site('dma-mask'))
    })

    it('a 32-bit device given a 64-bit coherent mask and a coherent buffer above 4 GiB', async () => {
      const sys = boot(optionsFor(p, { iommu: 'off', swiotlb: 'off' }))
      const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
      let dma = 0 as DmaAddr
      await sys.run(() => {
        expect(dma_set_mask_and_coherent(m.dev, DMA_BIT_MASK(64))).toBe(0)
        const c = dma_alloc_coherent(m.dev, 4096)!
        dma = c.dma
        expect(dma).toBeGreaterThanOrEqual(FOUR_GIB)
        m.write(dma, pattern(64)) // @site dma-mask-coherent
        dma_free_coherent(m.dev, 4096, c.cpu, c.dma)
      })
      expect(sys.reports.filter((r) => r.kind === 'dma-mask')).toHaveLength(1)
      const r = sys.reports[0]!
      expect(r.kind).toBe('dma-mask')
      expect(r.device).toBe('tm0')
      expect(r.message).toContain(hex(dma))
      expect(r.site).toBe(site('dma-mask-coherent'))
    })

    it('a 32-bit device that keeps its 32-bit coherent mask gets coherent memory below 4 GiB, silently', async () => {
      const sys = boot(optionsFor(p, { iommu: 'off', swiotlb: 'off' }))
      const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
      await sys.run(() => {
        const c = dma_alloc_coherent(m.dev, 8192)!
        expect(c).not.toBeNull()
        expect(c.dma + 8192).toBeLessThanOrEqual(FOUR_GIB)
        mem_write_bytes(c.cpu, pattern(8192, 2))
        expectBytes(m.read(c.dma, 8192), pattern(8192, 2))
        dma_free_coherent(m.dev, 8192, c.cpu, c.dma)
      })
      expect(sys.reports).toEqual([])
    })

    it('with the 32-bit mask kept and swiotlb off, mapping memory above 4 GiB fails cleanly', async () => {
      const sys = boot(optionsFor(p, { iommu: 'off', swiotlb: 'off' }))
      const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
      await sys.run(() => {
        const buf = filled(256)
        const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
        expect(dma).toBe(DMA_MAPPING_ERROR)
        expect(dma_mapping_error(m.dev, dma)).toBe(-ENOMEM)
        kfree(buf)
      })
      expect(sys.reports).toEqual([])
    })
  },
)

describe.each(PLATFORMS)('a 32-bit device with its 32-bit mask on $label', (p) => {
  it('maps memory above 4 GiB below 4 GiB (bounced without an IOMMU) with correct data', async () => {
    const sys = boot(optionsFor(p))
    const m = sys.attachTestMaster('tm0', { dmaMask: DMA_BIT_MASK(32) })
    await sys.run(() => {
      expect(dma_set_mask(m.dev, DMA_BIT_MASK(32))).toBe(0)
      const tx = mapped(m, 512, DMA_TO_DEVICE, 3)
      const rx = mapped(m, 512, DMA_FROM_DEVICE, 4)
      for (const x of [tx, rx]) {
        expect(virt_to_phys(x.buf)).toBeGreaterThanOrEqual(FOUR_GIB)
        expect(x.dma + 512).toBeLessThanOrEqual(FOUR_GIB)
        if (p.iommu === 'off') expect(x.dma).not.toBe(virt_to_phys(x.buf))
      }
      expectBytes(m.read(tx.dma, 512), pattern(512, 3))
      m.write(rx.dma, pattern(512, 5))
      dma_unmap_single(m.dev, tx.dma, 512, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, rx.dma, 512, DMA_FROM_DEVICE)
      expectBytes(mem_read_bytes(rx.buf, 512), pattern(512, 5))
      kfree(tx.buf)
      kfree(rx.buf)
    })
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- one entry per distinct bug

describe.each(PLATFORMS)('deduplication on $label', (p) => {
  it('the same faulty unmap in a loop of 5 is one report with count 5', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      const buf = filled(256)
      for (let i = 0; i < 5; i++) {
        const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE) // @site loop-size
      }
      kfree(buf)
    })
    expect(kinds(sys)).toEqual(['unmap-size-mismatch'])
    expect(sys.reports[0]!.count).toBe(5)
    expect(sys.reports[0]!.site).toBe(site('loop-size'))
  })

  it('the same faulty sync in a loop of 5 is one report with count 5', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      for (let i = 0; i < 5; i++) {
        dma_sync_single_for_cpu(m.dev, 0x3456_7000 as DmaAddr, 64, DMA_FROM_DEVICE) // @site loop-sync
      }
    })
    expect(kinds(sys)).toEqual(['sync-unmapped'])
    expect(sys.reports[0]!.count).toBe(5)
    expect(sys.reports[0]!.site).toBe(site('loop-sync'))
  })

  it('the same bug at two different lines is two reports', async () => {
    const { sys, m } = setup(p)
    await sys.run(() => {
      dma_sync_single_for_cpu(m.dev, 0x3456_7000 as DmaAddr, 64, DMA_FROM_DEVICE) // @site two-a
      dma_sync_single_for_cpu(m.dev, 0x3456_7000 as DmaAddr, 64, DMA_FROM_DEVICE) // @site two-b
    })
    expect(kinds(sys)).toEqual(['sync-unmapped', 'sync-unmapped'])
    expect(sys.reports.map((r) => [r.site, r.count])).toEqual([
      [site('two-a'), 1],
      [site('two-b'), 1],
    ])
  })
})

// ---------------------------------------------------------------------- report record

describe('report records', () => {
  it('carry the seed, the time and the map site as a second stack', async () => {
    const sys = boot({ seed: 42, log: 'silent' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE) // @site record-map
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
      dma_unmap_single(m.dev, dma, 64, DMA_TO_DEVICE) // @site record-unmap
      kfree(buf)
    })
    const r = expectOne(
      sys,
      'unmap-size-mismatch',
      'device driver frees DMA memory with different size',
      'record-unmap',
    )
    expect(r.seed).toBe(42)
    expect(typeof r.time).toBe('number')
    const mappedAt = r.stacks.find((s) => s.label === 'mapped')
    expect(mappedAt).toBeDefined()
    expect(`${mappedAt!.frames[0]!.file}:${mappedAt!.frames[0]!.line}`).toBe(site('record-map'))
  })

  it('the checks.dmaDebug switch silences dma-debug kinds', async () => {
    const sys = boot({ log: 'silent', checks: { dmaDebug: false } })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => {
      const buf = filled(256)
      const dma = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
      dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
      dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
      kfree(buf)
    })
    expect(sys.reports).toEqual([])
  })
})
