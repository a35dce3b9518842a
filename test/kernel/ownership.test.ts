/**
 * The DMA ownership sanitizer (shared/docs/DESIGN.md §5 "DMA", §6 report kinds): for each kind, a
 * test that commits the bug and checks the report (kind, count, device, and the site naming the
 * faulty line of this file), and a test of the correct pattern that must stay silent. Every test
 * runs on the whole platform matrix; expectations differ only where the DESIGN says the platform
 * matters (an IOMMU in strict mode blocks device accesses no mapping permits, so they are only
 * `iommu-fault`; `cacheline-shared` between separate objects needs a non-coherent platform).
 */
import { describe, expect, test } from 'vitest'
import {
  __free_pages,
  __GFP_ZERO,
  alloc_pages,
  boot,
  DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_page,
  dma_map_single,
  dma_map_single_attrs,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_sync_single_range_for_device,
  dma_unmap_page,
  dma_unmap_single,
  dma_unmap_single_attrs,
  GFP_KERNEL,
  kcalloc,
  kfree,
  kmalloc,
  kzalloc,
  mem_read8,
  mem_read_bytes,
  mem_write8,
  mem_write_bytes,
  memcpy,
  memset,
  page_address,
  ptr_add,
  virt_to_phys,
  type BootOptions,
  type DmaAddr,
  type Report,
  type ReportKind,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { coherent, optionsFor, PLATFORMS, type Platform } from '../helpers/matrix.js'

const FILE = 'test/kernel/ownership.test.ts'

/** The line below the caller's: write `const at = nextLine()` right above the faulty access. */
function nextLine(): number {
  const frame = new Error().stack?.split('\n')[2] ?? ''
  const m = /ownership\.test\.ts:(\d+):\d+/.exec(frame)
  if (m === null) throw new Error(`cannot find the caller's line in: ${frame}`)
  return Number(m[1]) + 1
}

function setup(p: Platform, extra: BootOptions = {}): { sys: System; m: TestMaster } {
  const sys = boot(optionsFor(p, extra))
  return { sys, m: sys.attachTestMaster('tm0') }
}

/** Asserts that the only report is one of `kind` at line `at` of this file, by tm0. */
function expectOnly(sys: System, kind: ReportKind, at: number, count = 1): Report {
  expect(sys.reports.map((r) => r.kind)).toEqual([kind])
  const r = sys.reports[0]!
  expect(r.site).toMatch(/ownership\.test\.ts:\d+$/)
  expect(r).toMatchObject({ kind, count, device: 'tm0', site: `${FILE}:${at}`, seed: sys.seed })
  expect(r.message).not.toBe('')
  return r
}

/** The line the report's 'mapped' history names. */
function mappedLine(r: Report): number | undefined {
  return r.stacks.find((s) => s.label === 'mapped')?.frames[0]?.line
}

const bytes = (n: number, v: number) => new Uint8Array(n).fill(v)

describe.each(PLATFORMS)('ownership on $label', (p) => {
  const strict = p.iommu === 'strict'

  // ---------------------------------------------------------------- cpu-access-device-owned

  describe('cpu-access-device-owned', () => {
    test('CPU read of a FROM_DEVICE buffer before sync_for_cpu is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      let mapAt = 0
      await sys.run(() => {
        const buf = kzalloc(256)!
        mapAt = nextLine()
        const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(256, 0x5a))
        at = nextLine()
        mem_read8(buf, 16)
        dma_sync_single_for_cpu(m.dev, dma, 256, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      const r = expectOnly(sys, 'cpu-access-device-owned', at)
      expect(mappedLine(r)).toBe(mapAt)
    })

    test('CPU read of a BIDIRECTIONAL buffer the device owns is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x33))
        at = nextLine()
        mem_read_bytes(buf, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('CPU write to a mapped TO_DEVICE buffer is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(buf, 7, 0xee)
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('dma_sync_single_range_for_cpu hands back only that range: inside is silent, outside is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      let inside: number[] = []
      await sys.run(() => {
        const buf = kzalloc(256)!
        const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(256, 0x5a))
        dma_sync_single_range_for_cpu(m.dev, dma, 64, 64, DMA_FROM_DEVICE)
        inside = [mem_read8(buf, 64), mem_read8(buf, 100), mem_read8(buf, 127)]
        expect(sys.reports).toEqual([])
        at = nextLine()
        mem_read8(buf, 200)
        dma_sync_single_for_cpu(m.dev, dma, 256, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(inside).toEqual([0x5a, 0x5a, 0x5a])
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('the same faulty read in a loop is one report with count 10', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(64)!
        const dma = dma_map_single(m.dev, buf, 64, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        for (let i = 0; i < 10; i++) mem_read8(buf, i)
        dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at, 10)
    })

    test('two faulty reads at two sites are two reports', async () => {
      const { sys, m } = setup(p)
      const at: number[] = []
      await sys.run(() => {
        const buf = kzalloc(64)!
        const dma = dma_map_single(m.dev, buf, 64, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at.push(nextLine())
        mem_read8(buf, 0)
        at.push(nextLine())
        mem_read8(buf, 1)
        dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports.map((r) => [r.kind, r.site, r.count, r.device])).toEqual(
        at.map((l) => ['cpu-access-device-owned', `${FILE}:${l}`, 1, 'tm0']),
      )
    })

    test('CPU write to a FROM_DEVICE buffer the device owns is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(buf, 64, 0x01)
        m.write(dma, bytes(128, 0x02))
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('CPU read after sync_for_device handed a FROM_DEVICE buffer back is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x02))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        mem_read8(buf, 0)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_FROM_DEVICE)
        at = nextLine()
        mem_read8(buf, 0)
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('CPU read of a FROM_DEVICE page mapping (dma_map_page) before sync is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)!
        const dma = dma_map_page(m.dev, page, 256, 1024, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(1024, 0x44))
        expect(mem_read8(page_address(page), 0)).toBe(0)
        at = nextLine()
        mem_read8(page_address(page), 300)
        dma_unmap_page(m.dev, dma, 1024, DMA_FROM_DEVICE)
        expect(mem_read8(page_address(page), 300)).toBe(0x44)
        __free_pages(page, 0)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('CPU read after an unmap with DMA_ATTR_SKIP_CPU_SYNC while the device owned the buffer is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x02))
        dma_unmap_single_attrs(m.dev, dma, 128, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        at = nextLine()
        mem_read8(buf, 0)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at)
    })

    test('sync_for_cpu, then an unmap with DMA_ATTR_SKIP_CPU_SYNC, then CPU reads is silent', async () => {
      const { sys, m } = setup(p)
      let got = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x02))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        dma_unmap_single_attrs(m.dev, dma, 128, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        got = mem_read8(buf, 127)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(got).toBe(0x02)
    })

    test('the same bug on a fresh buffer in each of 10 loop iterations is one report with count 10', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        for (let i = 0; i < 10; i++) {
          const buf = kzalloc(64)!
          const dma = dma_map_single(m.dev, buf, 64, DMA_FROM_DEVICE)
          expect(dma_mapping_error(m.dev, dma)).toBe(0)
          m.write(dma, bytes(64, i))
          at = nextLine()
          mem_read8(buf, 0)
          dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
          kfree(buf)
        }
      })
      m.detach()
      expectOnly(sys, 'cpu-access-device-owned', at, 10)
    })

    test('correct receive: sync_for_cpu before reading is silent and sees the device data', async () => {
      const { sys, m } = setup(p)
      let got: Uint8Array = new Uint8Array()
      let after = 0
      await sys.run(() => {
        const buf = kzalloc(256)!
        const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(256, 0xa5))
        dma_sync_single_for_cpu(m.dev, dma, 256, DMA_FROM_DEVICE)
        got = mem_read_bytes(buf, 256)
        dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
        after = mem_read8(buf, 255)
        mem_write8(buf, 0, 1)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(got).toEqual(bytes(256, 0xa5))
      expect(after).toBe(0xa5)
    })

    test('CPU reads of a TO_DEVICE buffer the device owns are silent', async () => {
      const { sys, m } = setup(p)
      let seen: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kmalloc(128)!
        memset(buf, 0x42, 128)
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        expect(mem_read8(buf, 0)).toBe(0x42)
        expect(mem_read_bytes(buf, 128)).toEqual(bytes(128, 0x42))
        seen = m.read(dma, 128)
        expect(mem_read8(buf, 127)).toBe(0x42)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual(bytes(128, 0x42))
    })

    test('partial sync, reads only inside the synced range, is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(256)!
        const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(256, 0x77))
        dma_sync_single_range_for_cpu(m.dev, dma, 128, 64, DMA_FROM_DEVICE)
        expect(mem_read_bytes(ptr_add(buf, 128), 64)).toEqual(bytes(64, 0x77))
        // A range that is not cache-line aligned.
        dma_sync_single_range_for_cpu(m.dev, dma, 10, 20, DMA_FROM_DEVICE)
        expect(mem_read_bytes(ptr_add(buf, 10), 20)).toEqual(bytes(20, 0x77))
        dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })
  })

  // ---------------------------------------------------------------- device-access-cpu-owned

  describe('device-access-cpu-owned', () => {
    for (const dir of [DMA_TO_DEVICE, DMA_BIDIRECTIONAL]) {
      const name = dir === DMA_TO_DEVICE ? 'TO_DEVICE' : 'BIDIRECTIONAL'
      test(`device read of a ${name} buffer after sync_for_cpu, without sync_for_device, is reported`, async () => {
        const { sys, m } = setup(p)
        let at = 0
        await sys.run(() => {
          const buf = kzalloc(128)!
          const dma = dma_map_single(m.dev, buf, 128, dir)
          expect(dma_mapping_error(m.dev, dma)).toBe(0)
          m.read(dma, 128)
          dma_sync_single_for_cpu(m.dev, dma, 128, dir)
          at = nextLine()
          m.read(dma, 128)
          dma_unmap_single(m.dev, dma, 128, dir)
          kfree(buf)
        })
        m.detach()
        expectOnly(sys, 'device-access-cpu-owned', at)
      })
    }

    test('device write to a FROM_DEVICE buffer the CPU wrote after sync_for_cpu is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 1))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        mem_write8(buf, 0, 0xff)
        at = nextLine()
        m.write(dma, bytes(128, 2))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'device-access-cpu-owned', at)
    })

    test('device read of a DMA_ATTR_SKIP_CPU_SYNC TO_DEVICE mapping before sync_for_device is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single_attrs(m.dev, buf, 128, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.read(dma, 128)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_TO_DEVICE)
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'device-access-cpu-owned', at)
    })

    test('device write to a DMA_ATTR_SKIP_CPU_SYNC FROM_DEVICE mapping before sync_for_device is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single_attrs(m.dev, buf, 128, DMA_FROM_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.write(dma, bytes(128, 9))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'device-access-cpu-owned', at)
    })

    test(`device read after unmap is ${strict ? 'only iommu-fault (IOMMU strict)' : 'device-access-cpu-owned (no IOMMU)'}`, async () => {
      const { sys, m } = setup(p)
      let at = 0
      let result = -1
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        at = nextLine()
        m.read(dma, 128)
        result = m.lastResult
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, strict ? 'iommu-fault' : 'device-access-cpu-owned', at)
      if (strict) expect(result).not.toBe(0)
    })

    test(`device write after unmap is ${strict ? 'only iommu-fault (IOMMU strict)' : 'device-access-cpu-owned (no IOMMU)'}`, async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 3))
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        at = nextLine()
        m.write(dma, bytes(128, 4))
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, strict ? 'iommu-fault' : 'device-access-cpu-owned', at)
    })

    test('partial sync_for_device hands over only that range: the device reading the rest is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      let first: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_TO_DEVICE)
        memset(buf, 0x2f, 64)
        dma_sync_single_range_for_device(m.dev, dma, 0, 64, DMA_TO_DEVICE)
        first = m.read(dma, 64)
        expect(sys.reports).toEqual([])
        at = nextLine()
        m.read(ptr_add(dma, 64), 64)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(first).toEqual(bytes(64, 0x2f))
      expectOnly(sys, 'device-access-cpu-owned', at)
    })

    test(`device read of memory that was never mapped is ${strict ? 'only iommu-fault (IOMMU strict)' : 'device-access-cpu-owned (no IOMMU)'}`, async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        // A driver bug: the physical address handed over without a mapping.
        const raw = virt_to_phys(buf) as number as DmaAddr
        at = nextLine()
        m.read(raw, 64)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, strict ? 'iommu-fault' : 'device-access-cpu-owned', at)
    })

    test('BIDIRECTIONAL buffer written by the device again after sync_for_cpu, without sync_for_device, is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 1))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        mem_read8(buf, 0)
        at = nextLine()
        m.write(dma, bytes(128, 2))
        dma_unmap_single(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'device-access-cpu-owned', at)
    })

    test('the same faulty device read in a loop is one report with count 10', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(64)!
        const dma = dma_map_single(m.dev, buf, 64, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        dma_sync_single_for_cpu(m.dev, dma, 64, DMA_TO_DEVICE)
        at = nextLine()
        for (let i = 0; i < 10; i++) m.read(dma, 64)
        dma_unmap_single(m.dev, dma, 64, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'device-access-cpu-owned', at, 10)
    })

    test('RX buffer recycling (FROM_DEVICE, sync_for_cpu, CPU only reads, device writes again) is silent', async () => {
      const { sys, m } = setup(p)
      const seen: number[] = []
      await sys.run(() => {
        const buf = kzalloc(256)!
        const dma = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        for (let round = 1; round <= 3; round++) {
          m.write(dma, bytes(256, 0x10 * round))
          dma_sync_single_for_cpu(m.dev, dma, 256, DMA_FROM_DEVICE)
          seen.push(mem_read8(buf, 0), mem_read8(buf, 255))
        }
        dma_unmap_single(m.dev, dma, 256, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual([0x10, 0x10, 0x20, 0x20, 0x30, 0x30])
    })

    test('TO_DEVICE buffer reuse: sync_for_cpu, CPU writes, sync_for_device, device reads is silent', async () => {
      const { sys, m } = setup(p)
      const seen: Uint8Array[] = []
      await sys.run(() => {
        const buf = kmalloc(128)!
        memset(buf, 0xaa, 128)
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        seen.push(m.read(dma, 128))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_TO_DEVICE)
        memset(buf, 0xbb, 128)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_TO_DEVICE)
        seen.push(m.read(dma, 128))
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual([bytes(128, 0xaa), bytes(128, 0xbb)])
    })

    test('BIDIRECTIONAL: device writes, CPU updates between the syncs, device reads is silent', async () => {
      const { sys, m } = setup(p)
      let seen: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x11))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        expect(mem_read8(buf, 5)).toBe(0x11)
        mem_write8(buf, 5, 0x99)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        seen = m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      const want = bytes(128, 0x11)
      want[5] = 0x99
      expect(seen).toEqual(want)
    })

    test('DMA_ATTR_SKIP_CPU_SYNC mapping filled by the CPU, then synced for the device, is silent', async () => {
      const { sys, m } = setup(p)
      let seen: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single_attrs(m.dev, buf, 128, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        memset(buf, 0x4d, 128)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_TO_DEVICE)
        seen = m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual(bytes(128, 0x4d))
    })

    test('FROM_DEVICE: the CPU clears a field, syncs for the device, the device writes again: silent', async () => {
      const { sys, m } = setup(p)
      const seen: number[] = []
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x81))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        seen.push(mem_read8(buf, 0))
        mem_write8(buf, 0, 0)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_FROM_DEVICE)
        m.write(dma, bytes(128, 0x82))
        dma_sync_single_for_cpu(m.dev, dma, 128, DMA_FROM_DEVICE)
        seen.push(mem_read8(buf, 0), mem_read8(buf, 127))
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual([0x81, 0x82, 0x82])
    })

    test('partial sync for the CPU, CPU writes there, partial sync for the device, device writes all: silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(256)!
        const dma = dma_map_single(m.dev, buf, 256, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(256, 0x01))
        dma_sync_single_range_for_cpu(m.dev, dma, 64, 64, DMA_BIDIRECTIONAL)
        expect(mem_read8(buf, 64)).toBe(0x01)
        mem_write8(buf, 64, 0x02)
        dma_sync_single_range_for_device(m.dev, dma, 64, 64, DMA_BIDIRECTIONAL)
        expect(m.read(ptr_add(dma, 64), 1)).toEqual(bytes(1, 0x02))
        m.write(dma, bytes(256, 0x03))
        dma_unmap_single(m.dev, dma, 256, DMA_BIDIRECTIONAL)
        expect(mem_read8(buf, 64)).toBe(0x03)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('DMA_ATTR_SKIP_CPU_SYNC mapping synced for the device before use is silent', async () => {
      const { sys, m } = setup(p)
      let seen: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kmalloc(128)!
        memset(buf, 0x3c, 128)
        const dma = dma_map_single_attrs(m.dev, buf, 128, DMA_TO_DEVICE, DMA_ATTR_SKIP_CPU_SYNC)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        dma_sync_single_for_device(m.dev, dma, 128, DMA_TO_DEVICE)
        seen = m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual(bytes(128, 0x3c))
    })
  })

  // ---------------------------------------------------------------- device-write-to-device-mapping

  describe('device-write-to-device-mapping', () => {
    test(`device write to a TO_DEVICE mapping is ${strict ? 'blocked by the IOMMU: only iommu-fault' : 'reported'}`, async () => {
      const { sys, m } = setup(p)
      let at = 0
      let result = -1
      let after: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.write(dma, bytes(64, 0xde))
        result = m.lastResult
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        after = mem_read_bytes(buf, 128)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, strict ? 'iommu-fault' : 'device-write-to-device-mapping', at)
      if (strict) {
        // The IOMMU blocked the write: it did not happen.
        expect(result).not.toBe(0)
        expect(after).toEqual(new Uint8Array(128))
      } else expect(result).toBe(0)
    })

    test('device write to a BIDIRECTIONAL mapping is silent', async () => {
      const { sys, m } = setup(p)
      let got: Uint8Array = new Uint8Array()
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.read(dma, 128)
        m.write(dma, bytes(128, 0xde))
        dma_unmap_single(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        got = mem_read_bytes(buf, 128)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(got).toEqual(bytes(128, 0xde))
    })
  })

  // ---------------------------------------------------------------- cacheline-shared

  describe('cacheline-shared', () => {
    const small = { kmallocMinAlign: 8 }

    test(`separate kmalloc objects sharing a line (kmallocMinAlign 8): ${coherent(p) ? 'silent on a coherent platform' : 'reported on a non-coherent platform'}`, async () => {
      const { sys, m } = setup(p, small)
      let at = 0
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        // The premise: both objects lie on one 64-byte cache line.
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const dma = dma_map_single(m.dev, a, 8, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(b, 0, 0x12)
        m.write(dma, bytes(8, 0x34))
        dma_unmap_single(m.dev, dma, 8, DMA_FROM_DEVICE)
        kfree(a)
        kfree(b)
      })
      m.detach()
      if (coherent(p)) expect(sys.reports).toEqual([])
      else expectOnly(sys, 'cacheline-shared', at)
    })

    test(`with coherence overridden to ${coherent(p) ? 'false' : 'true'}, separate objects sharing a line are ${coherent(p) ? 'reported' : 'silent'}`, async () => {
      const { sys, m } = setup(p, { ...small, coherent: !coherent(p) })
      let at = 0
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const dma = dma_map_single(m.dev, a, 8, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(b, 0, 0x12)
        dma_unmap_single(m.dev, dma, 8, DMA_BIDIRECTIONAL)
        kfree(a)
        kfree(b)
      })
      m.detach()
      if (coherent(p)) expectOnly(sys, 'cacheline-shared', at)
      else expect(sys.reports).toEqual([])
    })

    test('a CPU write to a line shared only with a TO_DEVICE mapping is silent', async () => {
      const { sys, m } = setup(p, small)
      await sys.run(() => {
        const a = kzalloc(8)!
        const b = kmalloc(8)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const dma = dma_map_single(m.dev, a, 8, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        mem_write8(b, 0, 0x12)
        m.read(dma, 8)
        dma_unmap_single(m.dev, dma, 8, DMA_TO_DEVICE)
        kfree(a)
        kfree(b)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('CPU reads of a neighbour on the shared line, and writes before the mapping, are silent', async () => {
      const { sys, m } = setup(p, small)
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        mem_write8(b, 0, 0x12)
        const dma = dma_map_single(m.dev, a, 8, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        expect(mem_read8(b, 0)).toBe(0x12)
        m.write(dma, bytes(8, 0x34))
        dma_unmap_single(m.dev, dma, 8, DMA_FROM_DEVICE)
        expect(mem_read8(a, 0)).toBe(0x34)
        kfree(a)
        kfree(b)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test(`two RX buffers on one line, the CPU writes the one it synced: ${coherent(p) ? 'silent on a coherent platform' : 'reported on a non-coherent platform'}`, async () => {
      const { sys, m } = setup(p, small)
      let at = 0
      await sys.run(() => {
        const a = kmalloc(16)!
        const b = kmalloc(16)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const da = dma_map_single(m.dev, a, 16, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, da)).toBe(0)
        const db = dma_map_single(m.dev, b, 16, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, db)).toBe(0)
        m.write(db, bytes(16, 0x0b))
        dma_sync_single_for_cpu(m.dev, db, 16, DMA_FROM_DEVICE)
        at = nextLine()
        mem_write8(b, 0, 0)
        dma_unmap_single(m.dev, db, 16, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, da, 16, DMA_FROM_DEVICE)
        kfree(a)
        kfree(b)
      })
      m.detach()
      if (coherent(p)) expect(sys.reports).toEqual([])
      else expectOnly(sys, 'cacheline-shared', at)
    })

    test('a DMA buffer embedded in a struct: CPU write beyond the mapping on its last line is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const s = kzalloc(256)!
        const dma = dma_map_single(m.dev, s, 100, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(s, 120, 0x01)
        m.write(dma, bytes(100, 0x02))
        dma_unmap_single(m.dev, dma, 100, DMA_FROM_DEVICE)
        kfree(s)
      })
      m.detach()
      expectOnly(sys, 'cacheline-shared', at)
    })

    test('a DMA buffer embedded in a struct: CPU write before the mapping on its first line is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const s = kzalloc(256)!
        const dma = dma_map_single(m.dev, ptr_add(s, 40), 100, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(s, 10, 0x01)
        dma_unmap_single(m.dev, dma, 100, DMA_BIDIRECTIONAL)
        kfree(s)
      })
      m.detach()
      expectOnly(sys, 'cacheline-shared', at)
    })

    test('a DMA buffer embedded in a page from alloc_pages: CPU write beside it on a shared line is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)!
        const dma = dma_map_page(m.dev, page, 0, 100, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        mem_write8(page_address(page), 110, 0x01)
        dma_unmap_page(m.dev, dma, 100, DMA_FROM_DEVICE)
        __free_pages(page, 0)
      })
      m.detach()
      expectOnly(sys, 'cacheline-shared', at)
    })

    test('writes to the shared line after the mapping is gone are silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const s = kzalloc(256)!
        const dma = dma_map_single(m.dev, s, 100, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(100, 0x02))
        dma_unmap_single(m.dev, dma, 100, DMA_FROM_DEVICE)
        mem_write8(s, 120, 0x01)
        mem_write8(s, 50, 0x01)
        kfree(s)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('coherent memory is exempt: CPU and device share it freely', async () => {
      const { sys, m } = setup(p)
      let seen: Uint8Array = new Uint8Array()
      let got = 0
      await sys.run(() => {
        const c = dma_alloc_coherent(m.dev, 4096)!
        expect(c).not.toBeNull()
        mem_write_bytes(c.cpu, bytes(64, 0x21))
        seen = m.read(c.dma, 64)
        m.write(ptr_add(c.dma, 64), bytes(64, 0x22))
        got = mem_read8(c.cpu, 64)
        mem_write8(c.cpu, 65, 0x23)
        dma_free_coherent(m.dev, 4096, c.cpu, c.dma)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual(bytes(64, 0x21))
      expect(got).toBe(0x22)
    })

    test('two mappings sharing a line the CPU never writes are silent', async () => {
      const { sys, m } = setup(p, small)
      const got: number[] = []
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const da = dma_map_single(m.dev, a, 8, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, da)).toBe(0)
        const db = dma_map_single(m.dev, b, 8, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, db)).toBe(0)
        m.write(da, bytes(8, 0xa1))
        m.write(db, bytes(8, 0xb2))
        dma_unmap_single(m.dev, da, 8, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, db, 8, DMA_FROM_DEVICE)
        got.push(mem_read8(a, 0), mem_read8(b, 7))
        kfree(a)
        kfree(b)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(got).toEqual([0xa1, 0xb2])
    })

    test('DMA_ATTR_DEBUGGING_IGNORE_CACHELINES silences a write to a shared line', async () => {
      const { sys, m } = setup(p, small)
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        expect(Math.floor(virt_to_phys(a) / 64)).toBe(Math.floor(virt_to_phys(b) / 64))
        const dma = dma_map_single_attrs(
          m.dev,
          a,
          8,
          DMA_FROM_DEVICE,
          DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
        )
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        mem_write8(b, 0, 0x12)
        m.write(dma, bytes(8, 0x34))
        dma_unmap_single_attrs(m.dev, dma, 8, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES)
        kfree(a)
        kfree(b)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('DMA_ATTR_DEBUGGING_IGNORE_CACHELINES silences an embedded buffer sharing a line', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const s = kzalloc(256)!
        const dma = dma_map_single_attrs(
          m.dev,
          s,
          100,
          DMA_FROM_DEVICE,
          DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
        )
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        mem_write8(s, 120, 0x01)
        dma_unmap_single_attrs(
          m.dev,
          dma,
          100,
          DMA_FROM_DEVICE,
          DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
        )
        kfree(s)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test("default kmalloc alignment keeps separate objects off each other's lines: silent", async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const a = kmalloc(8)!
        const b = kmalloc(8)!
        const dma = dma_map_single(m.dev, a, 8, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        mem_write8(b, 0, 0x12)
        m.write(dma, bytes(8, 0x34))
        dma_unmap_single(m.dev, dma, 8, DMA_FROM_DEVICE)
        kfree(a)
        kfree(b)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('an embedded buffer aligned and padded to whole lines: CPU writes around it are silent', async () => {
      const { sys, m } = setup(p)
      let got = 0
      await sys.run(() => {
        const s = kzalloc(256)!
        const dma = dma_map_single(m.dev, ptr_add(s, 128), 64, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        mem_write8(s, 0, 1)
        mem_write8(s, 127, 1)
        mem_write8(s, 192, 1)
        mem_write8(s, 255, 1)
        m.write(dma, bytes(64, 0x6b))
        dma_unmap_single(m.dev, dma, 64, DMA_FROM_DEVICE)
        got = mem_read8(s, 130)
        kfree(s)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(got).toBe(0x6b)
    })
  })

  // ---------------------------------------------------------------- overlapping-mapping

  describe('overlapping-mapping', () => {
    const pairs: [number, number, string][] = [
      [DMA_FROM_DEVICE, DMA_TO_DEVICE, 'FROM_DEVICE then TO_DEVICE'],
      [DMA_TO_DEVICE, DMA_FROM_DEVICE, 'TO_DEVICE then FROM_DEVICE'],
      [DMA_BIDIRECTIONAL, DMA_BIDIRECTIONAL, 'BIDIRECTIONAL twice'],
    ]
    for (const [d1, d2, name] of pairs) {
      test(`the same bytes mapped twice (${name}) is reported at the second map`, async () => {
        const { sys, m } = setup(p)
        let at = 0
        let mapAt = 0
        await sys.run(() => {
          const buf = kzalloc(128)!
          mapAt = nextLine()
          const x = dma_map_single(m.dev, buf, 128, d1)
          expect(dma_mapping_error(m.dev, x)).toBe(0)
          at = nextLine()
          const y = dma_map_single(m.dev, buf, 128, d2)
          expect(dma_mapping_error(m.dev, y)).toBe(0)
          dma_unmap_single(m.dev, y, 128, d2)
          dma_unmap_single(m.dev, x, 128, d1)
          kfree(buf)
        })
        m.detach()
        const r = expectOnly(sys, 'overlapping-mapping', at)
        expect(mappedLine(r)).toBe(mapAt)
      })
    }

    test('a partial overlap with a FROM_DEVICE mapping is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kzalloc(256)!
        const x = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, x)).toBe(0)
        at = nextLine()
        const y = dma_map_single(m.dev, ptr_add(buf, 64), 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, y)).toBe(0)
        dma_unmap_single(m.dev, y, 128, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, x, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expectOnly(sys, 'overlapping-mapping', at)
    })

    test('the same buffer mapped TO_DEVICE twice is silent', async () => {
      const { sys, m } = setup(p)
      const seen: Uint8Array[] = []
      await sys.run(() => {
        const buf = kmalloc(128)!
        memset(buf, 0x5e, 128)
        const x = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, x)).toBe(0)
        const y = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, y)).toBe(0)
        seen.push(m.read(x, 128), m.read(y, 128))
        dma_unmap_single(m.dev, x, 128, DMA_TO_DEVICE)
        dma_unmap_single(m.dev, y, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
      expect(seen).toEqual([bytes(128, 0x5e), bytes(128, 0x5e)])
    })

    test('adjacent mappings that do not overlap are silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(256)!
        const x = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, x)).toBe(0)
        const y = dma_map_single(m.dev, ptr_add(buf, 128), 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, y)).toBe(0)
        dma_unmap_single(m.dev, x, 128, DMA_FROM_DEVICE)
        dma_unmap_single(m.dev, y, 128, DMA_FROM_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('both mappings with DMA_ATTR_DEBUGGING_IGNORE_CACHELINES are silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(128)!
        const x = dma_map_single_attrs(
          m.dev,
          buf,
          128,
          DMA_FROM_DEVICE,
          DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
        )
        expect(dma_mapping_error(m.dev, x)).toBe(0)
        const y = dma_map_single_attrs(
          m.dev,
          buf,
          128,
          DMA_FROM_DEVICE,
          DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
        )
        expect(dma_mapping_error(m.dev, y)).toBe(0)
        dma_unmap_single_attrs(m.dev, y, 128, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES)
        dma_unmap_single_attrs(m.dev, x, 128, DMA_FROM_DEVICE, DMA_ATTR_DEBUGGING_IGNORE_CACHELINES)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })
  })

  // ---------------------------------------------------------------- uninit-to-device

  describe('uninit-to-device', () => {
    test('device reading a kmalloc buffer the CPU only partly wrote is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const buf = kmalloc(128)!
        mem_write_bytes(buf, bytes(64, 0x61))
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      const r = expectOnly(sys, 'uninit-to-device', at)
      expect(r.stacks.some((s) => s.label === 'mapped')).toBe(true)
    })

    test('memcpy from an uninitialised kmalloc buffer carries the uninit state to the device: reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const src = kmalloc(64)!
        const dst = kmalloc(64)!
        memcpy(dst, src, 64)
        const dma = dma_map_single(m.dev, dst, 64, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.read(dma, 64)
        dma_unmap_single(m.dev, dma, 64, DMA_TO_DEVICE)
        kfree(src)
        kfree(dst)
      })
      m.detach()
      expectOnly(sys, 'uninit-to-device', at)
    })

    test('a page from alloc_pages without __GFP_ZERO read by the device is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL, 0)!
        mem_write_bytes(page_address(page), bytes(512, 0x10))
        const dma = dma_map_page(m.dev, page, 0, 1024, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        m.read(dma, 1024)
        dma_unmap_page(m.dev, dma, 1024, DMA_TO_DEVICE)
        __free_pages(page, 0)
      })
      m.detach()
      expectOnly(sys, 'uninit-to-device', at)
    })

    test('buffers initialised by memcpy of initialised data, kcalloc, __GFP_ZERO kmalloc and pages: silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const src = kmalloc(64)!
        memset(src, 0x66, 64)
        const bufs = [kmalloc(64)!, kcalloc(4, 16)!, kmalloc(64, GFP_KERNEL | __GFP_ZERO)!]
        memcpy(bufs[0]!, src, 64)
        for (const b of bufs) {
          const dma = dma_map_single(m.dev, b, 64, DMA_TO_DEVICE)
          expect(dma_mapping_error(m.dev, dma)).toBe(0)
          m.read(dma, 64)
          dma_unmap_single(m.dev, dma, 64, DMA_TO_DEVICE)
          kfree(b)
        }
        kfree(src)
        const page = alloc_pages(GFP_KERNEL | __GFP_ZERO, 0)!
        const pd = dma_map_page(m.dev, page, 0, 4096, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, pd)).toBe(0)
        m.read(pd, 4096)
        dma_unmap_page(m.dev, pd, 4096, DMA_TO_DEVICE)
        __free_pages(page, 0)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('a kmalloc buffer fully written before the device reads it is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kmalloc(128)!
        mem_write_bytes(buf, bytes(64, 0x61))
        memset(ptr_add(buf, 64), 0, 64)
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('a kzalloc buffer is initialised: silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.read(dma, 128)
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('the device reading only the part the CPU wrote is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kmalloc(128)!
        mem_write_bytes(buf, bytes(64, 0x61))
        const dma = dma_map_single(m.dev, buf, 128, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        expect(m.read(dma, 64)).toEqual(bytes(64, 0x61))
        dma_unmap_single(m.dev, dma, 128, DMA_TO_DEVICE)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('a BIDIRECTIONAL kmalloc buffer the device wrote before reading is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kmalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 0x07))
        expect(m.read(dma, 128)).toEqual(bytes(128, 0x07))
        dma_unmap_single(m.dev, dma, 128, DMA_BIDIRECTIONAL)
        kfree(buf)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })
  })

  // ---------------------------------------------------------------- free-while-mapped

  describe('free-while-mapped', () => {
    test('kfree of a still-mapped buffer is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      let mapAt = 0
      await sys.run(() => {
        const buf = kzalloc(128)!
        mapAt = nextLine()
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        kfree(buf)
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
      })
      m.detach()
      const r = expectOnly(sys, 'free-while-mapped', at)
      expect(mappedLine(r)).toBe(mapAt)
    })

    test('__free_pages of a still-mapped page is reported', async () => {
      const { sys, m } = setup(p)
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL, 0)!
        const dma = dma_map_page(m.dev, page, 0, 4096, DMA_TO_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        at = nextLine()
        __free_pages(page, 0)
        dma_unmap_page(m.dev, dma, 4096, DMA_TO_DEVICE)
      })
      m.detach()
      expectOnly(sys, 'free-while-mapped', at)
    })

    test('unmap, then kfree, is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const buf = kzalloc(128)!
        const dma = dma_map_single(m.dev, buf, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        m.write(dma, bytes(128, 1))
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(buf)
        const page = alloc_pages(GFP_KERNEL, 0)!
        const pd = dma_map_page(m.dev, page, 0, 4096, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, pd)).toBe(0)
        dma_unmap_page(m.dev, pd, 4096, DMA_FROM_DEVICE)
        __free_pages(page, 0)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })

    test('kfree of a neighbour of a mapped buffer is silent', async () => {
      const { sys, m } = setup(p)
      await sys.run(() => {
        const a = kzalloc(128)!
        const b = kzalloc(128)!
        const dma = dma_map_single(m.dev, a, 128, DMA_FROM_DEVICE)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
        kfree(b)
        dma_unmap_single(m.dev, dma, 128, DMA_FROM_DEVICE)
        kfree(a)
      })
      m.detach()
      expect(sys.reports).toEqual([])
    })
  })
})
