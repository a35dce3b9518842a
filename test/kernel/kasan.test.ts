/**
 * KASAN's classes (shared/docs/DESIGN.md §6): `out-of-bounds`, `use-after-free` and `double-free`
 * for kmalloc and page memory. Each bug test checks the report (kind, count, no device, the site
 * naming the faulty line of this file and the allocation/free history); each correct counterpart
 * must produce zero reports. Runs on arm64 and x86_64.
 */
import { describe, expect, test } from 'vitest'
import {
  __free_pages,
  alloc_pages,
  boot,
  GFP_KERNEL,
  kfree,
  kmalloc,
  kzalloc,
  mem_read32,
  mem_read8,
  mem_read_bytes,
  mem_write32,
  mem_write8,
  mem_write_bytes,
  memset,
  page_address,
  type Report,
  type ReportKind,
  type System,
} from '../../kernel/index.js'
import { optionsFor, PLATFORMS } from '../helpers/matrix.js'

const FILE = 'test/kernel/kasan.test.ts'

/** The line below the caller's: write `const at = nextLine()` right above the faulty access. */
function nextLine(): number {
  const frame = new Error().stack?.split('\n')[2] ?? ''
  const m = /kasan\.test\.ts:(\d+):\d+/.exec(frame)
  if (m === null) throw new Error(`cannot find the caller's line in: ${frame}`)
  return Number(m[1]) + 1
}

/** Asserts that the only report is one of `kind` at line `at` of this file, with no device. */
function expectOnly(sys: System, kind: ReportKind, at: number, count = 1): Report {
  expect(sys.reports.map((r) => r.kind)).toEqual([kind])
  const r = sys.reports[0]!
  expect(r.site).toMatch(/kasan\.test\.ts:\d+$/)
  expect(r).toMatchObject({ kind, count, site: `${FILE}:${at}` })
  expect(r.device).toBeUndefined()
  return r
}

/** The line a report's history stack (label 'allocated' or 'freed') names. */
function historyLine(r: Report, label: string): number | undefined {
  return r.stacks.find((s) => s.label === label)?.frames[0]?.line
}

const KASAN_PLATFORMS = PLATFORMS.filter(
  (p) => (p.arch === 'arm64' || p.arch === 'x86_64') && p.seed === 1,
)

describe.each(KASAN_PLATFORMS)('KASAN on $label', (p) => {
  const setup = () => boot(optionsFor(p))

  // ---------------------------------------------------------------- out-of-bounds

  describe('out-of-bounds', () => {
    test('reading byte 100 of a kmalloc(100) object is reported', async () => {
      const sys = setup()
      let at = 0
      let allocAt = 0
      await sys.run(() => {
        allocAt = nextLine()
        const p100 = kmalloc(100)!
        memset(p100, 0, 100)
        at = nextLine()
        mem_read8(p100, 100)
        kfree(p100)
      })
      const r = expectOnly(sys, 'out-of-bounds', at)
      expect(historyLine(r, 'allocated')).toBe(allocAt)
    })

    test('a 4-byte write straddling the end of a kmalloc(100) object is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const p100 = kzalloc(100)!
        at = nextLine()
        mem_write32(p100, 98, 0xdeadbeef)
        kfree(p100)
      })
      expectOnly(sys, 'out-of-bounds', at)
    })

    test('copying 101 bytes out of a kmalloc(100) object is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const p100 = kzalloc(100)!
        at = nextLine()
        mem_read_bytes(p100, 101)
        kfree(p100)
      })
      expectOnly(sys, 'out-of-bounds', at)
    })

    test('reading one byte past a full kmalloc(128) object, into a live neighbour, is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const a = kzalloc(128)!
        const b = kzalloc(128)!
        at = nextLine()
        mem_read8(a, 128)
        kfree(a)
        kfree(b)
      })
      expectOnly(sys, 'out-of-bounds', at)
    })

    test('reading the byte before a kmalloc(128) object, inside a live neighbour, is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const a = kzalloc(128)!
        const b = kzalloc(128)!
        at = nextLine()
        mem_read8(b, -1)
        kfree(a)
        kfree(b)
      })
      expectOnly(sys, 'out-of-bounds', at)
    })

    test('reading past the end of a large (page-backed) kmalloc(10000) object is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const big = kzalloc(10000)!
        expect(mem_read8(big, 9999)).toBe(0)
        at = nextLine()
        mem_read8(big, 10000)
        kfree(big)
      })
      expectOnly(sys, 'out-of-bounds', at)
    })

    test('trusting a device-written length: reading past the end in a loop is one report with count 10', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const p100 = kzalloc(100)!
        const len = 110
        at = nextLine()
        for (let i = 100; i < len; i++) mem_read8(p100, i)
        kfree(p100)
      })
      expectOnly(sys, 'out-of-bounds', at, 10)
    })

    test('every byte of a kmalloc(100) object, and nothing beyond, is silent', async () => {
      const sys = setup()
      let sum = 0
      await sys.run(() => {
        const p100 = kmalloc(100)!
        mem_write_bytes(p100, new Uint8Array(100).fill(1))
        mem_write32(p100, 96, 0x01010101)
        for (let i = 0; i < 100; i++) sum += mem_read8(p100, i)
        expect(mem_read_bytes(p100, 100)).toEqual(new Uint8Array(100).fill(1))
        expect(mem_read32(p100, 96)).toBe(0x01010101)
        kfree(p100)
      })
      expect(sys.reports).toEqual([])
      expect(sum).toBe(100)
    })
  })

  // ---------------------------------------------------------------- use-after-free

  describe('use-after-free', () => {
    test('reading a kmalloc object after kfree is reported', async () => {
      const sys = setup()
      let at = 0
      let allocAt = 0
      let freeAt = 0
      await sys.run(() => {
        allocAt = nextLine()
        const obj = kzalloc(64)!
        freeAt = nextLine()
        kfree(obj)
        at = nextLine()
        mem_read8(obj, 0)
      })
      const r = expectOnly(sys, 'use-after-free', at)
      expect(historyLine(r, 'allocated')).toBe(allocAt)
      expect(historyLine(r, 'freed')).toBe(freeAt)
    })

    test('writing a kmalloc object after kfree is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const obj = kzalloc(64)!
        kfree(obj)
        at = nextLine()
        mem_write8(obj, 3, 1)
      })
      expectOnly(sys, 'use-after-free', at)
    })

    test('reading a large (16 KiB, page-backed) kmalloc object after kfree is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const obj = kzalloc(16384)!
        kfree(obj)
        at = nextLine()
        mem_read8(obj, 8000)
      })
      expectOnly(sys, 'use-after-free', at)
    })

    test('reading a page after __free_pages is reported', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL, 0)!
        const va = page_address(page)
        mem_write8(va, 0, 1)
        __free_pages(page, 0)
        at = nextLine()
        mem_read8(va, 0)
      })
      expectOnly(sys, 'use-after-free', at)
    })

    test('use before kfree, and of a fresh allocation after it, is silent', async () => {
      const sys = setup()
      await sys.run(() => {
        const obj = kzalloc(64)!
        mem_write8(obj, 0, 7)
        expect(mem_read8(obj, 0)).toBe(7)
        kfree(obj)
        const again = kzalloc(64)!
        mem_write8(again, 0, 8)
        expect(mem_read8(again, 0)).toBe(8)
        kfree(again)
        const page = alloc_pages(GFP_KERNEL, 0)!
        mem_write8(page_address(page), 4095, 1)
        expect(mem_read8(page_address(page), 4095)).toBe(1)
        __free_pages(page, 0)
      })
      expect(sys.reports).toEqual([])
    })
  })

  // ---------------------------------------------------------------- double-free

  describe('double-free', () => {
    test('kfree twice is reported at the second kfree', async () => {
      const sys = setup()
      let at = 0
      let freeAt = 0
      await sys.run(() => {
        const obj = kmalloc(32)!
        freeAt = nextLine()
        kfree(obj)
        at = nextLine()
        kfree(obj)
      })
      const r = expectOnly(sys, 'double-free', at)
      expect(historyLine(r, 'freed')).toBe(freeAt)
    })

    test('__free_pages twice is reported at the second call', async () => {
      const sys = setup()
      let at = 0
      await sys.run(() => {
        const page = alloc_pages(GFP_KERNEL, 1)!
        __free_pages(page, 1)
        at = nextLine()
        __free_pages(page, 1)
      })
      expectOnly(sys, 'double-free', at)
    })

    test('freeing each object once, and kfree(NULL) or of kmalloc(0), is silent', async () => {
      const sys = setup()
      await sys.run(() => {
        const objs = [kmalloc(32)!, kmalloc(100)!, kzalloc(5000)!, kzalloc(16384)!]
        for (const o of objs) kfree(o)
        kfree(null)
        kfree(null)
        const zero = kmalloc(0)
        kfree(zero)
        kfree(zero)
        const page = alloc_pages(GFP_KERNEL, 2)!
        __free_pages(page, 2)
      })
      expect(sys.reports).toEqual([])
    })
  })
})
