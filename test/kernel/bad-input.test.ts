/**
 * Bad input (DESIGN.md §4 "oops", §6 boot options, §7 "Bad input"): what Linux would BUG() on
 * gets an `oops` report and a rejected sys.run (KernelOops), a bad argument to the emulator's
 * own API gets an InvalidArgumentError / BootOptionError naming it, and neither crashes the
 * process nor corrupts the system — a correct exchange still works afterwards, with no new report.
 */
import { describe, expect, it } from 'vitest'
import {
  boot,
  BootOptionError,
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_NONE,
  DMA_TO_DEVICE,
  dma_alloc_coherent,
  dma_alloc_noncoherent,
  dma_free_coherent,
  dma_map_sg,
  dma_map_single,
  dma_mapping_error,
  dma_pool_alloc,
  dma_pool_create,
  dma_pool_free,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_unmap_sg,
  dma_unmap_single,
  for_each_sg,
  InvalidArgumentError,
  kcalloc,
  kfree,
  KernelOops,
  kmalloc,
  kzalloc,
  mem_read8,
  mem_read_bytes,
  mem_write8,
  mem_write_bytes,
  memcpy,
  OutsideTaskError,
  page_address,
  alloc_page,
  PAGE_OFFSET,
  sg_alloc_table,
  sg_set_buf,
  ZERO_SIZE_PTR,
  type BootOptions,
  type CpuAddr,
  type DmaAddr,
  type SgTable,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { MAX_COPY_BYTES } from '../../kernel/mm/memory.js'

// ---------------------------------------------------------------------- helpers

function fresh(opts: BootOptions = {}): { sys: System; m: TestMaster } {
  const sys = boot({ log: 'silent', ...opts })
  return { sys, m: sys.attachTestMaster('tm0') }
}

function pattern(n: number, salt = 1): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 11 + salt * 17) & 0xff
  return b
}

/** The error fn throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  expect.fail('expected an exception')
}

/** Runs fn in a task and returns the KernelOops it rejects with. */
async function oopsOf(sys: System, fn: () => unknown): Promise<KernelOops> {
  let err: unknown = null
  try {
    await sys.run(fn)
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(KernelOops)
  return err as KernelOops
}

/** A complete, correct exchange in both directions; returns nothing, asserts the data. */
async function correctExchange(sys: System, m: TestMaster): Promise<void> {
  await sys.run(() => {
    const buf = kmalloc(256)!
    mem_write_bytes(buf, pattern(256, 1))
    const tx = dma_map_single(m.dev, buf, 256, DMA_TO_DEVICE)
    expect(dma_mapping_error(m.dev, tx)).toBe(0)
    expect([...m.read(tx, 256)]).toEqual([...pattern(256, 1)])
    dma_unmap_single(m.dev, tx, 256, DMA_TO_DEVICE)
    const rx = dma_map_single(m.dev, buf, 256, DMA_FROM_DEVICE)
    expect(dma_mapping_error(m.dev, rx)).toBe(0)
    m.write(rx, pattern(256, 2))
    dma_unmap_single(m.dev, rx, 256, DMA_FROM_DEVICE)
    expect([...mem_read_bytes(buf, 256)]).toEqual([...pattern(256, 2)])
    kfree(buf)
  })
}

/** The system still works: a second run with a correct exchange succeeds and adds no report. */
async function expectStillWorks(sys: System, m: TestMaster): Promise<void> {
  const before = sys.reports.map((r) => ({ kind: r.kind, count: r.count }))
  await correctExchange(sys, m)
  expect(sys.reports.map((r) => ({ kind: r.kind, count: r.count }))).toEqual(before)
}

function expectOneOops(sys: System): void {
  expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
  expect(sys.reports[0]!.count).toBe(1)
  // The report points at the driver line that oopsed: a line of this file.
  expect(sys.reports[0]!.site).toMatch(/^test\/kernel\/bad-input\.test\.ts:\d+$/)
}

/** The InvalidArgumentError behind an oops, which must name `argument`. */
function expectArgCause(e: KernelOops, fn: string, argument: string): void {
  expect(e.cause).toBeInstanceOf(InvalidArgumentError)
  const cause = e.cause as InvalidArgumentError
  expect(cause.argument).toBe(argument)
  expect(cause.function).toBe(fn)
  expect(e.message).toContain(`'${argument}'`)
}

// ---------------------------------------------------------------------- directions

describe('invalid DMA directions', () => {
  const bad: readonly [string, unknown][] = [
    ['DMA_NONE', DMA_NONE],
    ['4', 4],
    ['-1', -1],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ["the string '1'", '1'],
    ['undefined', undefined],
  ]

  it.each(bad)(
    'dma_map_single with %s oopses, and the system keeps working',
    async (_label, dir) => {
      const { sys, m } = fresh()
      const e = await oopsOf(sys, () => {
        const buf = kmalloc(64)!
        mem_write_bytes(buf, pattern(64))
        dma_map_single(m.dev, buf, 64, dir as number)
      })
      expectOneOops(sys)
      expect(e.message).toMatch(/invalid DMA direction/)
      expect(sys.reports[0]!.message).toMatch(/invalid DMA direction/)
      if (dir === DMA_NONE) expect(e.message).toContain('DMA_NONE')
      await expectStillWorks(sys, m)
    },
  )

  it('DMA_NONE to unmap, sync, map_sg and alloc_noncoherent oopses each time (one report per site)', async () => {
    const { sys, m } = fresh()
    const calls: [string, (buf: CpuAddr, dma: DmaAddr) => void][] = [
      ['dma_unmap_single', (_b, dma) => dma_unmap_single(m.dev, dma, 64, DMA_NONE)],
      ['dma_sync_single_for_cpu', (_b, dma) => dma_sync_single_for_cpu(m.dev, dma, 64, DMA_NONE)],
      [
        'dma_sync_single_for_device',
        (_b, dma) => dma_sync_single_for_device(m.dev, dma, 64, DMA_NONE),
      ],
      [
        'dma_map_sg',
        (buf) => {
          const t: SgTable = {}
          sg_alloc_table(t, 1)
          sg_set_buf(t.sgl!, buf, 64)
          dma_map_sg(m.dev, t.sgl!, 1, DMA_NONE)
        },
      ],
      ['dma_alloc_noncoherent', () => dma_alloc_noncoherent(m.dev, 4096, DMA_NONE)],
    ]
    for (const [fn, call] of calls) {
      let buf = 0 as CpuAddr
      let dma = 0 as DmaAddr
      await sys.run(() => {
        buf = kmalloc(64)!
        mem_write_bytes(buf, pattern(64))
        dma = dma_map_single(m.dev, buf, 64, DMA_BIDIRECTIONAL)
        expect(dma_mapping_error(m.dev, dma)).toBe(0)
      })
      const e = await oopsOf(sys, () => call(buf, dma))
      expect(e.message).toContain(fn)
      expect(e.message).toContain('DMA_NONE')
      await sys.run(() => {
        dma_unmap_single(m.dev, dma, 64, DMA_BIDIRECTIONAL)
        kfree(buf)
      })
    }
    expect(sys.reports.map((r) => r.kind)).toEqual(calls.map(() => 'oops'))
    await expectStillWorks(sys, m)
  })
})

// ---------------------------------------------------------------------- sizes

describe('impossible sizes', () => {
  it('kmalloc(0) returns ZERO_SIZE_PTR, which is not NULL; kfree of it is a no-op', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      const p = kmalloc(0)
      expect(p).not.toBeNull()
      expect(p).toBe(ZERO_SIZE_PTR)
      expect(kzalloc(0)).toBe(ZERO_SIZE_PTR)
      kfree(p)
    })
    expect(sys.reports).toEqual([])
    await expectStillWorks(sys, m)
  })

  it('dereferencing ZERO_SIZE_PTR oopses', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const p = kmalloc(0)!
      mem_read8(p, 0)
    })
    expectOneOops(sys)
    expect(e.message).toContain('ZERO_SIZE_PTR')
    await expectStillWorks(sys, m)
  })

  it.each([
    ['-1', -1],
    ['NaN', Number.NaN],
    ['1.5', 1.5],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['2^60', 2 ** 60],
    ["'64'", '64'],
  ] as const)('kmalloc(%s) oopses naming the size argument', async (_label, size) => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => kmalloc(size as number))
    expectOneOops(sys)
    expectArgCause(e, 'kmalloc', 'size')
    await expectStillWorks(sys, m)
  })

  it('a huge but representable kmalloc size fails with NULL, as Linux does', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      expect(kmalloc(2 ** 40)).toBeNull()
      expect(kcalloc(2 ** 30, 2 ** 30)).toBeNull()
    })
    expect(sys.reports).toEqual([])
    await expectStillWorks(sys, m)
  })

  it.each([
    ['0', 0],
    ['-1', -1],
    ['NaN', Number.NaN],
  ] as const)('dma_map_single of size %s oopses naming size', async (_label, size) => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const buf = kmalloc(64)!
      mem_write_bytes(buf, pattern(64))
      dma_map_single(m.dev, buf, size, DMA_TO_DEVICE)
    })
    expectOneOops(sys)
    expectArgCause(e, 'dma_map_single', 'size')
    await expectStillWorks(sys, m)
  })

  it('dma_alloc_coherent of size 0 or -1 oopses naming size', async () => {
    for (const size of [0, -1]) {
      const { sys, m } = fresh()
      const e = await oopsOf(sys, () => dma_alloc_coherent(m.dev, size))
      expectOneOops(sys)
      expectArgCause(e, 'dma_alloc_coherent', 'size')
      await expectStillWorks(sys, m)
    }
  })
})

// ---------------------------------------------------------------------- foreign and bogus pointers

describe('foreign devices and bogus pointers', () => {
  it("a device of another system is an oops whose cause names 'dev'; neither system is harmed", async () => {
    const { sys: sys1, m: m1 } = fresh()
    const { sys: sys2, m: m2 } = fresh()
    const e = await oopsOf(sys1, () => {
      const buf = kmalloc(64)!
      mem_write_bytes(buf, pattern(64))
      dma_map_single(m2.dev, buf, 64, DMA_TO_DEVICE)
    })
    expectOneOops(sys1)
    expectArgCause(e, 'dma_map_single', 'dev')
    expect(sys2.reports).toEqual([])
    await expectStillWorks(sys1, m1)
    await correctExchange(sys2, m2)
    expect(sys2.reports).toEqual([])
  })

  it('a device that is not a struct device at all is an oops naming dev', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const buf = kmalloc(64)!
      dma_map_single({ name: 'tm0' } as never, buf, 64, DMA_TO_DEVICE)
    })
    expectOneOops(sys)
    expectArgCause(e, 'dma_map_single', 'dev')
    await expectStillWorks(sys, m)
  })

  it("kfree of a DmaAddr oopses naming 'objp'", async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const buf = kmalloc(64)!
      mem_write_bytes(buf, pattern(64))
      const dma = dma_map_single(m.dev, buf, 64, DMA_TO_DEVICE)
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
      kfree(dma as unknown as CpuAddr)
    })
    expectOneOops(sys)
    expect(e.message).toContain("'objp'")
    expect(sys.reports[0]!.message).toContain("'objp'")
  })

  it.each([
    ['a random number', 0x12345678],
    ['a linear-map address that is not a kmalloc object', -1],
    ['a page from alloc_page', -2],
    ['a pointer into the middle of nowhere in the linear map', PAGE_OFFSET + 0x7fff_0000_0000],
  ] as const)("kfree of %s oopses naming 'objp'", async (_label, which) => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      let p: number = which
      if (which === -1) p = PAGE_OFFSET + 0x4000_0000 + 0x10_0000
      if (which === -2) p = page_address(alloc_page(0x0cc0)!)
      kfree(p as CpuAddr)
    })
    expectOneOops(sys)
    expect(e.message).toContain("'objp'")
    await expectStillWorks(sys, m)
  })
})

// ---------------------------------------------------------------------- boot options

describe('boot options', () => {
  it('an unknown option throws BootOptionError naming it', () => {
    const e = thrown(() => boot({ nope: 1 } as never))
    expect(e).toBeInstanceOf(BootOptionError)
    expect((e as BootOptionError).option).toBe('nope')
    expect((e as Error).message).toContain("'nope'")
  })

  it.each([
    ['arch', { arch: 'sparc' }],
    ['arch', { arch: 64 }],
    ['seed', { seed: -1 }],
    ['seed', { seed: 1.5 }],
    ['seed', { seed: '1' }],
    ['seed', { seed: 2 ** 60 }],
    ['swiotlb', { swiotlb: 'maybe' }],
    ['swiotlb', { swiotlb: true }],
    ['iommu', { iommu: 'on' }],
    ['iommu', { iommu: false }],
    ['kmallocMinAlign', { kmallocMinAlign: 3 }],
    ['kmallocMinAlign', { kmallocMinAlign: 0 }],
    ['kmallocMinAlign', { kmallocMinAlign: 1 << 20 }],
    ['coherent', { coherent: 'yes' }],
    ['cache', { cache: 64 }],
    ['cache.lineSize', { cache: { lineSize: 'x' } }],
    ['cache.lineSize', { cache: { lineSize: Number.NaN } }],
    ['cache.lineSize', { cache: { lineSize: 48 } }],
    ['cache.lineSize', { cache: { lineSize: 8 } }],
    ['cache.bogus', { cache: { bogus: 1 } }],
    ['cache.size', { cache: { size: 2 ** 35 } }],
    ['cache.size', { cache: { size: 2 ** 41 } }],
    ['cache.size', { cache: { size: 2 ** 53 } }],
    ['cache.size', { cache: { size: 2 ** 29 } }],
    ['cache.size', { cache: { size: 2 ** 28 + 4096 } }],
    ['cache.size', { cache: { size: 3 * 512 } }],
    ['cache.size', { cache: { size: -(2 ** 20) } }],
    ['checks', { checks: 'all' }],
    ['checks.foo', { checks: { foo: false } }],
    ['checks.kasan', { checks: { kasan: 'no' } }],
    ['log', { log: 'loud' }],
    ['options', 42],
  ] as const)('a bad value for %s throws BootOptionError naming it (%j)', (option, opts) => {
    const e = thrown(() => boot(opts as never))
    expect(e).toBeInstanceOf(BootOptionError)
    expect((e as BootOptionError).option).toBe(option)
    expect((e as Error).message).toContain(`'${option}'`)
  })

  it('a failed boot leaves no trace: the next boot works', async () => {
    expect(() => boot({ arch: 'sparc' } as never)).toThrow(BootOptionError)
    const { sys, m } = fresh()
    await correctExchange(sys, m)
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- outside a task

describe('kernel calls outside sys.run', () => {
  it.each([
    ['kmalloc', () => kmalloc(64)],
    ['kfree', () => kfree(null)],
    ['mem_read8', () => mem_read8((PAGE_OFFSET + 0x4000_0000) as CpuAddr, 0)],
    ['mem_write8', () => mem_write8((PAGE_OFFSET + 0x4000_0000) as CpuAddr, 0, 1)],
    ['dma_map_single', () => dma_map_single(null as never, 0 as CpuAddr, 64, DMA_TO_DEVICE)],
    ['dma_unmap_single', () => dma_unmap_single(null as never, 0 as DmaAddr, 64, DMA_TO_DEVICE)],
    ['dma_alloc_coherent', () => dma_alloc_coherent(null as never, 64)],
    [
      'dma_sync_single_for_cpu',
      () => dma_sync_single_for_cpu(null as never, 0 as DmaAddr, 64, DMA_TO_DEVICE),
    ],
    ['dma_pool_create', () => dma_pool_create('p', null as never, 64, 64, 0)],
    ['sg_alloc_table', () => sg_alloc_table({}, 1)],
  ] as const)('%s throws OutsideTaskError naming the function', (fn, call) => {
    const e = thrown(call)
    expect(e).toBeInstanceOf(OutsideTaskError)
    expect((e as OutsideTaskError).function).toBe(fn)
    expect((e as Error).message).toContain(fn)
  })

  it('a system is unaffected by calls made outside its tasks', async () => {
    const { sys, m } = fresh()
    expect(() => kmalloc(64)).toThrow(OutsideTaskError)
    await correctExchange(sys, m)
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- exceptions in tasks

describe('exceptions and oopses in tasks', () => {
  it('a plain JS exception inside sys.run is an oops report and a KernelOops whose cause is the error', async () => {
    const { sys, m } = fresh()
    const original = new TypeError('cannot read properties of undefined (reading "len")')
    const e = await oopsOf(sys, () => {
      kmalloc(32)
      throw original
    })
    expect(e.cause).toBe(original)
    expectOneOops(sys)
    expect(sys.reports[0]!.message).toContain('cannot read properties of undefined')
    expect(sys.reports[0]!.site).toMatch(/^test\/kernel\/bad-input\.test\.ts:\d+$/)
    await expectStillWorks(sys, m)
  })

  it('an async task that rejects is an oops too', async () => {
    const { sys, m } = fresh()
    const original = new RangeError('ring index out of range')
    let err: unknown = null
    try {
      await sys.run(async () => {
        await Promise.resolve()
        kmalloc(16)
        throw original
      })
    } catch (x) {
      err = x
    }
    expect(err).toBeInstanceOf(KernelOops)
    expect((err as KernelOops).cause).toBe(original)
    expectOneOops(sys)
    await expectStillWorks(sys, m)
  })

  it('a non-Error thrown value becomes an oops with an Error cause', async () => {
    const { sys, m } = fresh()
    // A misbehaving driver that throws a non-Error value (the emulator must still oops cleanly).
    const notAnError: unknown = 'a string'
    const e = await oopsOf(sys, () => {
      throw notAnError
    })
    expect(e.cause).toBeInstanceOf(Error)
    expect((e.cause as Error).message).toContain('a string')
    expectOneOops(sys)
    await expectStillWorks(sys, m)
  })

  it('a driver that catches a KernelOops cannot continue: the next kernel call throws it again', async () => {
    const { sys, m } = fresh()
    let caught: unknown = null
    let again: unknown = null
    let reachedAfter = false
    const e = await oopsOf(sys, () => {
      const buf = kmalloc(64)!
      try {
        dma_map_single(m.dev, buf, 64, DMA_NONE)
      } catch (x) {
        caught = x
      }
      try {
        kmalloc(16)
        reachedAfter = true
      } catch (x) {
        again = x
      }
      return 0
    })
    expect(caught).toBeInstanceOf(KernelOops)
    expect(again).toBe(caught)
    expect(reachedAfter).toBe(false)
    expect(e).toBe(caught)
    expectOneOops(sys)
    await expectStillWorks(sys, m)
  })

  it('a driver that swallows the oops and returns normally still has its run rejected', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      try {
        kfree(0x1234 as CpuAddr)
      } catch {
        /* swallowed */
      }
      return 'fine'
    })
    expect(e.message).toContain("'objp'")
    expectOneOops(sys)
    await expectStillWorks(sys, m)
  })

  it('an oops in one system does not disturb another system', async () => {
    const a = fresh()
    const b = fresh()
    await oopsOf(a.sys, () => dma_map_single(a.m.dev, kmalloc(64)!, 64, DMA_NONE))
    expectOneOops(a.sys)
    await correctExchange(b.sys, b.m)
    expect(b.sys.reports).toEqual([])
    await expectStillWorks(a.sys, a.m)
  })

  it('sys.run rejects a non-function and a nested sys.run without disturbing the system', async () => {
    const { sys, m } = fresh()
    const e = await sys.run(42 as never).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(InvalidArgumentError)
    expect((e as InvalidArgumentError).argument).toBe('fn')
    expect(sys.reports).toEqual([])
    await expectStillWorks(sys, m)
  })
})

// ---------------------------------------------------------------------- harness arguments

describe('attachTestMaster and test-master arguments', () => {
  it.each([
    ['an empty name', ''],
    ['a name with a space', 'tm 0'],
    ['a number', 42],
    ['a name of 33 characters', 'x'.repeat(33)],
    ['null', null],
  ] as const)('%s throws InvalidArgumentError naming name', (_label, name) => {
    const sys = boot({ log: 'silent' })
    const e = thrown(() => sys.attachTestMaster(name as never))
    expect(e).toBeInstanceOf(InvalidArgumentError)
    expect((e as InvalidArgumentError).argument).toBe('name')
  })

  it('a duplicate name throws InvalidArgumentError naming name, and the first master still works', async () => {
    const { sys, m } = fresh()
    const e = thrown(() => sys.attachTestMaster('tm0'))
    expect(e).toBeInstanceOf(InvalidArgumentError)
    expect((e as InvalidArgumentError).argument).toBe('name')
    await correctExchange(sys, m)
    expect(sys.reports).toEqual([])
  })

  it.each([
    ['not a low-bits mask', 0x1234n],
    ['zero', 0n],
    ['negative', -1n],
    ['wider than 64 bits', 1n << 70n],
    ['a string', '32'],
    ['a fraction', 0.5],
    ['too narrow (below 16 bits)', DMA_BIT_MASK(8)],
  ] as const)(
    'a dmaMask that is %s throws InvalidArgumentError naming dmaMask',
    (_label, dmaMask) => {
      const sys = boot({ log: 'silent' })
      const e = thrown(() => sys.attachTestMaster('tm0', { dmaMask: dmaMask as never }))
      expect(e).toBeInstanceOf(InvalidArgumentError)
      expect((e as InvalidArgumentError).argument).toMatch(/dmaMask$/)
      // The failed attach must not have claimed the name.
      expect(() => sys.attachTestMaster('tm0')).not.toThrow()
    },
  )

  it('an unknown or mistyped option throws InvalidArgumentError naming it', () => {
    const sys = boot({ log: 'silent' })
    const e1 = thrown(() => sys.attachTestMaster('tm0', { mask: 1 } as never))
    expect(e1).toBeInstanceOf(InvalidArgumentError)
    expect((e1 as InvalidArgumentError).argument).toMatch(/mask$/)
    const e2 = thrown(() => sys.attachTestMaster('tm1', { coherent: 'yes' } as never))
    expect(e2).toBeInstanceOf(InvalidArgumentError)
    expect((e2 as InvalidArgumentError).argument).toMatch(/coherent$/)
  })

  it('m.read / m.write bad arguments throw InvalidArgumentError naming them and file no report', async () => {
    const { sys, m } = fresh()
    let dma = 0 as DmaAddr
    let buf = 0 as CpuAddr
    await sys.run(() => {
      buf = kmalloc(64)!
      mem_write_bytes(buf, pattern(64))
      dma = dma_map_single(m.dev, buf, 64, DMA_BIDIRECTIONAL)
      expect(dma_mapping_error(m.dev, dma)).toBe(0)
    })
    const cases: [string, () => unknown][] = [
      ['dma', () => m.read(-1 as DmaAddr, 4)],
      ['dma', () => m.read(1.5 as DmaAddr, 4)],
      ['dma', () => m.read('0x1000' as never, 4)],
      ['dma', () => m.write(Number.NaN as DmaAddr, new Uint8Array(4))],
      ['len', () => m.read(dma, -1)],
      ['len', () => m.read(dma, 1.5)],
      ['len', () => m.read(dma, 2 ** 31)],
      ['len', () => m.read(dma, '4' as never)],
      ['bytes', () => m.write(dma, [1, 2, 3] as never)],
      ['bytes', () => m.write(dma, null as never)],
    ]
    for (const [argument, call] of cases) {
      const e = thrown(call)
      expect(e).toBeInstanceOf(InvalidArgumentError)
      expect((e as InvalidArgumentError).argument).toBe(argument)
    }
    expect(sys.reports).toEqual([])
    await sys.run(() => {
      dma_unmap_single(m.dev, dma, 64, DMA_BIDIRECTIONAL)
      kfree(buf)
    })
    await expectStillWorks(sys, m)
    expect(sys.reports).toEqual([])
  })

  it('a detached master refuses accesses with InvalidArgumentError', async () => {
    const { sys, m } = fresh()
    await correctExchange(sys, m)
    m.detach()
    const e = thrown(() => m.read(0x1000 as DmaAddr, 4))
    expect(e).toBeInstanceOf(InvalidArgumentError)
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- misc argument checks in tasks

describe('bad arguments to other kernel calls', () => {
  it('mem_write8 of a non-number value oopses naming value', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const p = kmalloc(16)!
      mem_write8(p, 0, 'x' as never)
    })
    expectOneOops(sys)
    expectArgCause(e, 'mem_write8', 'value')
    await expectStillWorks(sys, m)
  })

  it('sg_alloc_table with a negative nents oopses naming nents', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => sg_alloc_table({}, -1))
    expectOneOops(sys)
    expectArgCause(e, 'sg_alloc_table', 'nents')
    await expectStillWorks(sys, m)
  })

  it('dma_map_sg with nents larger than the list oopses naming nents', async () => {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => {
      const t: SgTable = {}
      sg_alloc_table(t, 1)
      const buf = kmalloc(64)!
      mem_write_bytes(buf, pattern(64))
      for (const sg of for_each_sg(t.sgl, 1)) sg_set_buf(sg, buf, 64)
      dma_map_sg(m.dev, t.sgl!, 3, DMA_TO_DEVICE)
    })
    expectOneOops(sys)
    expectArgCause(e, 'dma_map_sg', 'nents')
    await expectStillWorks(sys, m)
  })
})

// ---------------------------------------------------------------------- found by test/property/dma-api

describe('bad arguments the DMA API property found', () => {
  /** Oopses in a fresh system, with one oops report whose cause names fn's argument. */
  async function expectArgOops(fn: string, argument: string, body: (m: TestMaster) => unknown): Promise<void> {
    const { sys, m } = fresh()
    const e = await oopsOf(sys, () => body(m))
    expectOneOops(sys)
    expectArgCause(e, fn, argument)
    await expectStillWorks(sys, m)
  }

  const WRONG_TYPES: readonly [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ["'64'", '64'],
    ['{}', {}],
    ['[]', []],
    ['true', true],
    ['64n', 64n],
    ['a Symbol', Symbol('x')],
    ['a function', () => 64],
  ]

  it.each([
    ['2^40', 2 ** 40],
    ['2^31', 2 ** 31],
    ['MAX_COPY_BYTES + 1', MAX_COPY_BYTES + 1],
    ['2^48', 2 ** 48],
  ] as const)('mem_read_bytes of %s bytes oopses naming n before allocating', async (_label, n) => {
    const t0 = performance.now()
    await expectArgOops('mem_read_bytes', 'n', () => mem_read_bytes(kmalloc(64)!, n))
    expect(performance.now() - t0).toBeLessThan(5000)
  })

  it('memcpy of 2^31 bytes oopses naming n (its bounce buffer would be 2 GiB)', async () => {
    await expectArgOops('memcpy', 'n', () => memcpy(kmalloc(64)!, kmalloc(64)!, 2 ** 31))
  })

  it('mem_read_bytes past the object is a KASAN report, and reads the bytes, as before', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      const p = kzalloc(64)!
      expect(mem_read_bytes(p, 128).length).toBe(128)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['out-of-bounds'])
    await expectStillWorks(sys, m)
  })

  it.each(WRONG_TYPES)('dma_free_coherent with a cpu_addr or dma_handle of %s oopses naming it', async (_label, v) => {
    for (const argument of ['cpu_addr', 'dma_handle'] as const) {
      await expectArgOops('dma_free_coherent', argument, (m) => {
        const c = dma_alloc_coherent(m.dev, 4096)!
        dma_free_coherent(m.dev, 4096, (argument === 'cpu_addr' ? v : c.cpu) as never, (argument === 'dma_handle' ? v : c.dma) as never)
      })
    }
  })

  it('dma_free_coherent with a wrong but well-typed cpu_addr is still a free-coherent-mismatch report', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      const c = dma_alloc_coherent(m.dev, 4096)!
      dma_free_coherent(m.dev, 4096, (c.cpu + 64) as CpuAddr, c.dma)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['free-coherent-mismatch'])
  })

  it.each(WRONG_TYPES)('dma_pool_free with a vaddr or dma of %s oopses naming it', async (_label, v) => {
    for (const argument of ['vaddr', 'dma'] as const) {
      await expectArgOops('dma_pool_free', argument, (m) => {
        const pool = dma_pool_create('p', m.dev, 64, 64, 0)!
        const b = dma_pool_alloc(pool)!
        dma_pool_free(pool, (argument === 'vaddr' ? v : b.cpu) as never, (argument === 'dma' ? v : b.dma) as never)
      })
    }
  })

  it('dma_pool_free with a wrong but well-typed dma is still a pool-misuse report', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      const pool = dma_pool_create('p', m.dev, 64, 64, 0)!
      const b = dma_pool_alloc(pool)!
      dma_pool_free(pool, b.cpu, (b.dma + 64) as DmaAddr)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['pool-misuse'])
  })

  it.each([...WRONG_TYPES, ['-1', -1], ['1.5', 1.5], ['NaN', Number.NaN], ['2^32', 2 ** 32]] as const)(
    'sg_set_buf with a len of %s oopses naming len',
    async (_label, len) => {
      await expectArgOops('sg_set_buf', 'len', () => {
        const t: SgTable = {}
        sg_alloc_table(t, 1)
        sg_set_buf(t.sgl!, kmalloc(64)!, len as never)
      })
    },
  )

  it.each([
    ["'64'", '64'],
    ['NaN', Number.NaN],
    ['1.5', 1.5],
  ] as const)('dma_map_sg of an entry whose length was set to %s oopses naming sgl', async (_label, len) => {
    await expectArgOops('dma_map_sg', 'sgl', (m) => {
      const t: SgTable = {}
      sg_alloc_table(t, 1)
      sg_set_buf(t.sgl!, kmalloc(64)!, 64)
      ;(t.sgl as { length: unknown }).length = len
      dma_map_sg(m.dev, t.sgl!, 1, DMA_TO_DEVICE)
    })
  })

  const sgCalls = [
    ['dma_unmap_sg', dma_unmap_sg],
    ['dma_sync_sg_for_cpu', dma_sync_sg_for_cpu],
    ['dma_sync_sg_for_device', dma_sync_sg_for_device],
  ] as const
  for (const [fn, call] of sgCalls) {
    it.each([...WRONG_TYPES, ['1.5', 1.5], ['NaN', Number.NaN]] as const)(`${fn} with nents %s oopses naming nents`, async (_label, nents) => {
      await expectArgOops(fn, 'nents', (m) => {
        const t: SgTable = {}
        sg_alloc_table(t, 1)
        sg_set_buf(t.sgl!, kmalloc(64)!, 64)
        expect(dma_map_sg(m.dev, t.sgl!, 1, DMA_TO_DEVICE)).toBe(1)
        call(m.dev, t.sgl!, nents as never, DMA_TO_DEVICE)
      })
    })
  }

  it('a wrong but integer nents stays a dma-debug report (unmap, and syncs of 2 and -1 entries)', async () => {
    const { sys, m } = fresh()
    await sys.run(() => {
      const t: SgTable = {}
      sg_alloc_table(t, 1)
      sg_set_buf(t.sgl!, kmalloc(64)!, 64)
      dma_map_sg(m.dev, t.sgl!, 1, DMA_TO_DEVICE)
      dma_sync_sg_for_cpu(m.dev, t.sgl!, 2, DMA_TO_DEVICE)
      dma_sync_sg_for_device(m.dev, t.sgl!, -1, DMA_TO_DEVICE)
      dma_unmap_sg(m.dev, t.sgl!, 2, DMA_TO_DEVICE)
    })
    expect(sys.reports.map((r) => r.kind).sort()).toEqual(['sync-out-of-range', 'sync-out-of-range', 'unmap-size-mismatch'])
    await expectStillWorks(sys, m)
  })

  it.each([
    ["'64'", '64'],
    ['{}', {}],
    ['null', null],
    ['-1', -1],
    ['1.5', 1.5],
    ['64n', 64n],
  ] as const)('sg_alloc_table with gfp %s oopses naming gfp', async (_label, gfp) => {
    await expectArgOops('sg_alloc_table', 'gfp', () => sg_alloc_table({}, 1, gfp as never))
  })

  it.each([
    ['[]', []],
    ['a Uint8Array', new Uint8Array(4)],
  ] as const)('sg_alloc_table into %s oopses naming table', async (_label, table) => {
    await expectArgOops('sg_alloc_table', 'table', () => sg_alloc_table(table as never, 1))
  })
})
