/**
 * Property: the DMA API never crashes (DESIGN.md §4 "oops", §7 "Bad input").
 *
 * Random sequences of valid and invalid calls — kmalloc/kfree, CPU accesses, single mappings and
 * their syncs (whole and range), coherent memory, dma pools, scatter-gather tables, device reads
 * and writes — with random sizes (0, negative, huge, fractional, NaN), wrong directions and wrong
 * types (strings, null, objects, symbols, bigints, another system's device). Each call runs in its
 * own task. The property: a task either finishes, or `sys.run` rejects with a KernelOops that has
 * been filed as an `oops` report and whose cause, if any, is one of the emulator's typed errors
 * (an InvalidArgumentError naming its argument in the message) — never a TypeError or RangeError
 * from inside the kernel, never any other exception. Afterwards a correct exchange on the same
 * system gives the right bytes and no new report.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  boot,
  DMA_MAPPING_ERROR,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_map_sg,
  dma_map_single,
  dma_mapping_error,
  dma_pool_alloc,
  dma_pool_create,
  dma_pool_destroy,
  dma_pool_free,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_sync_single_range_for_device,
  dma_unmap_sg,
  dma_unmap_single,
  DmalabError,
  InvalidArgumentError,
  KernelOops,
  kfree,
  kmalloc,
  kzalloc,
  mem_read_bytes,
  mem_write_bytes,
  sg_alloc_table,
  sg_set_buf,
  for_each_sg,
  type CpuAddr,
  type DmaAddr,
  type DmaPool,
  type SgTable,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { bootOptions, expectStillWorks, pattern, platformArb, runs } from '../helpers/property.js'

// ---------------------------------------------------------------------- arguments

/** Values of the wrong type or an impossible value, for any argument. */
const WEIRD: readonly unknown[] = [
  0, -1, -4096, 0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 31, 2 ** 40, 2 ** 53,
  2 ** 60, Number.MAX_VALUE, '64', '', 'DMA_TO_DEVICE', null, undefined, {}, [], [64], true, false, 64n, -1n,
  Symbol('weird'), () => 64, new Uint8Array(4), DMA_MAPPING_ERROR,
]
const weirdArb = fc.constantFrom(...WEIRD)

/** An argument: a valid handle of the right kind (`ref`), or a weird value. */
type Arg = { ref: number; off: number } | { weird: unknown }
const argArb = (weirdWeight = 1): fc.Arbitrary<Arg> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.record({ ref: fc.nat(7), off: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: -64, max: 4096 })) }) },
    { weight: weirdWeight, arbitrary: weirdArb.map((weird) => ({ weird })) },
  )
/** A size: mostly plausible, sometimes 0, negative, huge, fractional or of the wrong type. */
const sizeArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 4096 }) },
  { weight: 1, arbitrary: fc.integer({ min: 4097, max: 300_000 }) },
  { weight: 2, arbitrary: weirdArb },
)
/** A direction: mostly valid, sometimes DMA_NONE, out of range or of the wrong type. */
const dirArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(0, 1, 2) },
  { weight: 1, arbitrary: fc.constantFrom(3, 4, -1, 1.5, '1', null, undefined, Number.NaN) },
)
const devArb = fc.oneof({ weight: 8, arbitrary: fc.constant('tm0' as const) }, fc.constantFrom('foreign' as const, 'weird' as const))

const opArb = fc.oneof(
  fc.record({ op: fc.constantFrom('kmalloc' as const, 'kzalloc' as const), size: sizeArb }),
  fc.record({ op: fc.constant('kfree' as const), p: argArb() }),
  fc.record({ op: fc.constant('cpuWrite' as const), p: argArb(), n: fc.integer({ min: 0, max: 512 }) }),
  fc.record({ op: fc.constant('cpuRead' as const), p: argArb(), n: fc.oneof(fc.integer({ min: 0, max: 512 }), weirdArb) }),
  fc.record({ op: fc.constant('map' as const), dev: devArb, p: argArb(), size: sizeArb, dir: dirArb, checkErr: fc.boolean() }),
  fc.record({ op: fc.constant('mappingError' as const), dev: devArb, dma: argArb() }),
  fc.record({ op: fc.constant('unmap' as const), dev: devArb, dma: argArb(), size: sizeArb, dir: dirArb, sameAsMap: fc.boolean() }),
  fc.record({
    op: fc.constantFrom('syncCpu' as const, 'syncDev' as const),
    dev: devArb,
    dma: argArb(),
    size: sizeArb,
    dir: dirArb,
    sameAsMap: fc.boolean(),
  }),
  fc.record({
    op: fc.constantFrom('syncRangeCpu' as const, 'syncRangeDev' as const),
    dev: devArb,
    dma: argArb(),
    off: fc.oneof(fc.integer({ min: 0, max: 4096 }), weirdArb),
    size: sizeArb,
    dir: dirArb,
  }),
  fc.record({ op: fc.constant('allocCoherent' as const), dev: devArb, size: sizeArb, gfp: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, weirdArb) }),
  fc.record({ op: fc.constant('freeCoherent' as const), dev: devArb, which: argArb(), size: fc.oneof(fc.constant('same' as const), sizeArb), swap: fc.boolean() }),
  fc.record({
    op: fc.constant('poolCreate' as const),
    name: fc.oneof(fc.constant('pool'), weirdArb),
    dev: devArb,
    size: sizeArb,
    align: fc.oneof(fc.constantFrom(0, 1, 8, 64, 4096), weirdArb),
    boundary: fc.oneof(fc.constantFrom(0, 4096, 8192), weirdArb),
  }),
  fc.record({ op: fc.constant('poolAlloc' as const), pool: argArb(), gfp: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, weirdArb) }),
  fc.record({ op: fc.constant('poolFree' as const), pool: argArb(), block: argArb() }),
  fc.record({ op: fc.constant('poolDestroy' as const), pool: argArb() }),
  fc.record({ op: fc.constant('sgMap' as const), dev: devArb, nents: fc.oneof(fc.integer({ min: 1, max: 4 }), weirdArb), bufs: fc.array(argArb(0), { minLength: 1, maxLength: 4 }), lens: fc.array(sizeArb, { minLength: 4, maxLength: 4 }), dir: dirArb }),
  fc.record({ op: fc.constantFrom('sgUnmap' as const, 'sgSyncCpu' as const, 'sgSyncDev' as const), dev: devArb, sg: argArb(), nents: fc.oneof(fc.constant('same' as const), fc.integer({ min: 0, max: 5 }), weirdArb), dir: dirArb }),
  fc.record({ op: fc.constant('devRead' as const), dma: argArb(), len: fc.oneof(fc.integer({ min: 0, max: 4096 }), weirdArb) }),
  fc.record({ op: fc.constant('devWrite' as const), dma: argArb(), len: fc.integer({ min: 0, max: 4096 }), weirdBytes: fc.boolean() }),
)
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never

// ---------------------------------------------------------------------- the model of handles

interface Mapping {
  dev: 'tm0' | 'foreign' | 'weird'
  dma: DmaAddr
  size: unknown
  dir: unknown
}
interface Handles {
  bufs: CpuAddr[]
  maps: Mapping[]
  cohs: { cpu: CpuAddr; dma: DmaAddr; size: unknown }[]
  pools: DmaPool[]
  blocks: { pool: DmaPool; cpu: CpuAddr; dma: DmaAddr }[]
  sgs: { dev: 'tm0' | 'foreign' | 'weird'; table: SgTable; nents: number; dir: unknown }[]
}

function pick<T>(list: readonly T[], a: Arg): T | undefined {
  if (!('ref' in a) || list.length === 0) return undefined
  return list[a.ref % list.length]
}
/** A numeric handle (address) plus the argument's offset, or the weird value. */
function addr(list: readonly number[], a: Arg): unknown {
  if ('weird' in a) return a.weird
  const base = pick(list, a)
  return base === undefined ? 0 : base + a.off
}
function entry(list: readonly unknown[], a: Arg): unknown {
  return 'weird' in a ? a.weird : pick(list, a)
}

/** Runs one op's kernel calls; returns nothing (the task's outcome is what the property checks). */
const any = (x: unknown) => x as never

function perform(op: Op, h: Handles, m: TestMaster, foreign: TestMaster): void {
  const dev = (d: 'tm0' | 'foreign' | 'weird') => (d === 'tm0' ? m.dev : d === 'foreign' ? foreign.dev : ({ name: 'tm0' } as never))
  switch (op.op) {
    case 'kmalloc':
    case 'kzalloc': {
      const p = (op.op === 'kmalloc' ? kmalloc : kzalloc)(any(op.size))
      if (p !== null) h.bufs.push(p)
      return
    }
    case 'kfree':
      kfree(any(addr(h.bufs, op.p)))
      return
    case 'cpuWrite':
      mem_write_bytes(any(addr(h.bufs, op.p)), pattern(op.n, 3))
      return
    case 'cpuRead':
      mem_read_bytes(any(addr(h.bufs, op.p)), any(op.n))
      return
    case 'map': {
      const dma = dma_map_single(dev(op.dev), any(addr(h.bufs, op.p)), any(op.size), any(op.dir))
      if (op.checkErr) dma_mapping_error(dev(op.dev), dma)
      h.maps.push({ dev: op.dev, dma, size: op.size, dir: op.dir })
      return
    }
    case 'mappingError':
      dma_mapping_error(dev(op.dev), any(addr(h.maps.map((x) => x.dma), op.dma)))
      return
    case 'unmap':
    case 'syncCpu':
    case 'syncDev': {
      const mp = pick(h.maps, op.dma)
      const dma = addr(h.maps.map((x) => x.dma), op.dma)
      const size = op.sameAsMap && mp !== undefined ? mp.size : op.size
      const dir = op.sameAsMap && mp !== undefined ? mp.dir : op.dir
      const fn = op.op === 'unmap' ? dma_unmap_single : op.op === 'syncCpu' ? dma_sync_single_for_cpu : dma_sync_single_for_device
      fn(dev(op.dev), any(dma), any(size), any(dir))
      return
    }
    case 'syncRangeCpu':
    case 'syncRangeDev': {
      const fn = op.op === 'syncRangeCpu' ? dma_sync_single_range_for_cpu : dma_sync_single_range_for_device
      fn(dev(op.dev), any(addr(h.maps.map((x) => x.dma), op.dma)), any(op.off), any(op.size), any(op.dir))
      return
    }
    case 'allocCoherent': {
      const b = dma_alloc_coherent(dev(op.dev), any(op.size), any(op.gfp))
      if (b !== null) h.cohs.push({ ...b, size: op.size })
      return
    }
    case 'freeCoherent': {
      const c = entry(h.cohs, op.which) as Handles['cohs'][number] | undefined
      const size = op.size === 'same' ? c?.size : op.size
      const cpu = c !== undefined && typeof c === 'object' && c !== null && 'cpu' in c ? c.cpu : c
      const dma = c !== undefined && typeof c === 'object' && c !== null && 'dma' in c ? c.dma : c
      const dmaArg = op.swap ? cpu : dma
      dma_free_coherent(dev(op.dev), any(size), any(op.swap ? dma : cpu), any(dmaArg))
      return
    }
    case 'poolCreate': {
      const p = dma_pool_create(any(op.name), dev(op.dev), any(op.size), any(op.align), any(op.boundary))
      if (p !== null) h.pools.push(p)
      return
    }
    case 'poolAlloc': {
      const pool = entry(h.pools, op.pool)
      const b = dma_pool_alloc(any(pool), any(op.gfp))
      if (b !== null && pool !== null && typeof pool === 'object') h.blocks.push({ pool: pool as DmaPool, ...b })
      return
    }
    case 'poolFree': {
      const blk = pick(h.blocks, op.block)
      const pool = 'weird' in op.pool ? op.pool.weird : (blk?.pool ?? pick(h.pools, op.pool))
      const off = 'ref' in op.block ? op.block.off : 0
      const vaddr = blk === undefined ? addr([], op.block) : blk.cpu + off
      dma_pool_free(any(pool), any(vaddr), any(blk?.dma ?? 0))
      return
    }
    case 'poolDestroy':
      dma_pool_destroy(any(entry(h.pools, op.pool)))
      return
    case 'sgMap': {
      const table: SgTable = {}
      const nents = typeof op.nents === 'number' && Number.isInteger(op.nents) && op.nents >= 1 && op.nents <= 4 ? op.nents : 1
      if (sg_alloc_table(table, nents) !== 0) return
      let i = 0
      for (const sg of for_each_sg(table.sgl, nents)) {
        const a = op.bufs[i % op.bufs.length]!
        sg_set_buf(sg, any(addr(h.bufs, a)), any(op.lens[i]))
        i++
      }
      const mapped = dma_map_sg(dev(op.dev), table.sgl!, any(op.nents), any(op.dir))
      if (mapped > 0) h.sgs.push({ dev: op.dev, table, nents, dir: op.dir })
      return
    }
    case 'sgUnmap':
    case 'sgSyncCpu':
    case 'sgSyncDev': {
      const s = pick(h.sgs, op.sg)
      const sgl = 'weird' in op.sg ? op.sg.weird : s?.table.sgl
      const nents = op.nents === 'same' ? s?.nents : op.nents
      const fn = op.op === 'sgUnmap' ? dma_unmap_sg : op.op === 'sgSyncCpu' ? dma_sync_sg_for_cpu : dma_sync_sg_for_device
      fn(dev(op.dev), any(sgl), any(nents), any(s?.dir ?? op.dir))
      return
    }
    case 'devRead':
      m.read(any(addr([...h.maps.map((x) => x.dma), ...h.cohs.map((x) => x.dma), ...h.blocks.map((x) => x.dma)], op.dma)), any(op.len))
      return
    case 'devWrite':
      m.write(
        any(addr([...h.maps.map((x) => x.dma), ...h.cohs.map((x) => x.dma), ...h.blocks.map((x) => x.dma)], op.dma)),
        op.weirdBytes ? any([1, 2, 3]) : pattern(op.len, 5),
      )
      return
  }
}

/** Describes an unexpected failure for the property's message. */
function what(e: unknown): string {
  if (!(e instanceof Error)) return `a non-Error ${typeof e}`
  const c = e.cause
  return `${e.name}: ${e.message}${c instanceof Error ? ` [cause ${c.name}: ${c.message}\n${c.stack ?? ''}]` : ''}`
}

/** The oops count: one site may repeat, so count occurrences. */
function oopses(sys: System): number {
  return sys.reports.filter((r) => r.kind === 'oops').reduce((n, r) => n + r.count, 0)
}

const validDir = (d: unknown) => (d === 0 || d === 1 || d === 2 ? d : 0)
const validSize = (n: unknown) => (typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 1)

/**
 * Ends whatever the random calls left live on tm0 (sg tables, single mappings, coherent memory,
 * pools), with the arguments they were made with where those were valid. An invalid call may have
 * mapped memory beyond its object (Linux maps whatever range it is given), and such a leftover
 * mapping would rightly be reported against the memory the check below allocates.
 */
function teardown(h: Handles, m: TestMaster): (() => void)[] {
  return [
    ...h.sgs.filter((s) => s.dev === 'tm0').map((s) => () => dma_unmap_sg(m.dev, s.table.sgl!, s.nents, validDir(s.dir))),
    ...h.maps
      .filter((x) => x.dev === 'tm0' && x.dma !== DMA_MAPPING_ERROR)
      .map((x) => () => dma_unmap_single(m.dev, x.dma, validSize(x.size), validDir(x.dir))),
    ...h.cohs.map((c) => () => dma_free_coherent(m.dev, validSize(c.size), c.cpu, c.dma)),
    ...h.pools.map((p) => () => dma_pool_destroy(p)),
  ]
}

/**
 * Runs fn as a task: it finishes, or sys.run rejects with a KernelOops that was reported as an
 * `oops` and whose cause, if any, is a typed emulator error naming its argument.
 */
async function step(sys: System, label: string, fn: () => void): Promise<void> {
  const before = oopses(sys)
  let err: unknown = null
  try {
    await sys.run(fn)
  } catch (e) {
    err = e
  }
  if (err === null) return
  // Only a KernelOops may come out of sys.run, and only after an oops report.
  expect(err instanceof KernelOops, `${label}: ${what(err)}`).toBe(true)
  expect(oopses(sys), `${label}: no oops report for ${what(err)}`).toBe(before + 1)
  const cause = (err as KernelOops).cause
  // A BUG() has no cause; a bad argument is an InvalidArgumentError naming it. Anything else
  // (a TypeError or RangeError from inside the kernel) is an emulator crash.
  expect(cause === undefined || cause instanceof DmalabError, `${label}: ${what(err)}`).toBe(true)
  if (cause instanceof InvalidArgumentError) expect((err as Error).message).toContain(`'${cause.argument}'`)
}

// One foreign system, whose device is passed where the system's own is expected.
const other = boot({ log: 'silent' })
const foreign = other.attachTestMaster('tm0')

describe('property: the DMA API never crashes', () => {
  it('random valid and invalid calls end in success or a typed oops, and the system keeps working', async () => {
    await fc.assert(
      fc.asyncProperty(platformArb, fc.array(opArb, { minLength: 1, maxLength: 30 }), async (p, ops) => {
        const sys = boot(bootOptions(p))
        const m = sys.attachTestMaster('tm0')
        const h: Handles = { bufs: [], maps: [], cohs: [], pools: [], blocks: [], sgs: [] }
        for (const op of ops) await step(sys, op.op, () => perform(op, h, m, foreign))
        for (const fn of teardown(h, m)) await step(sys, 'teardown', fn)
        await expectStillWorks(sys, m)
        expect(other.reports.filter((r) => r.kind !== 'oops')).toEqual([])
      }),
      runs(60),
    )
  })
})

// ---------------------------------------------------------------------- one wrong-typed argument

/** Wrong types: a value no numeric, pointer or object parameter of the DMA API accepts. */
const WRONG_TYPES: readonly (readonly [string, () => unknown])[] = [
  ['string', () => '64'],
  ['null', () => null],
  ['object', () => ({})],
  ['array', () => []],
  ['array', () => [64]],
  ['symbol', () => Symbol('arg')],
  ['bigint', () => 64n],
  ['function', () => () => 64],
  ['boolean', () => true],
  ['undefined', () => undefined],
]

interface Fixture {
  buf: CpuAddr
  spare: CpuAddr
  dma: DmaAddr
  coh: { cpu: CpuAddr; dma: DmaAddr }
  pool: DmaPool
  blk: { cpu: CpuAddr; dma: DmaAddr }
  table: SgTable
  mapped: SgTable
}

/**
 * Calls with their parameter names (as the emulator's messages name them) and valid arguments;
 * `accepts` lists what a parameter takes legitimately (an optional gfp may be undefined, kfree(NULL)
 * and dma_pool_destroy(NULL) are no-ops in Linux, `{}` is an sg_table); `dir` is the direction
 * (an invalid one is a BUG, not a bad type).
 */
interface Call {
  name: string
  params: readonly string[]
  valid: (f: Fixture, m: TestMaster) => unknown[]
  invoke: (m: TestMaster, args: unknown[]) => unknown
  /** Parameters that take some of these types legitimately: param -> type labels. */
  accepts?: Readonly<Record<string, readonly string[]>>
}
const call = (c: Call) => c
const CALLS: readonly Call[] = [
  call({ name: 'kmalloc', params: ['size', 'gfp'], valid: () => [64, 0xcc0], invoke: (_m, a) => kmalloc(any(a[0]), any(a[1])), accepts: { gfp: ['undefined'] } }),
  call({ name: 'kfree', params: ['objp'], valid: (f) => [f.spare], invoke: (_m, a) => kfree(any(a[0])), accepts: { objp: ['null'] } }),
  call({ name: 'mem_read_bytes', params: ['p', 'n'], valid: (f) => [f.spare, 16], invoke: (_m, a) => mem_read_bytes(any(a[0]), any(a[1])) }),
  call({ name: 'mem_write_bytes', params: ['p', 'bytes'], valid: (f) => [f.spare, new Uint8Array(16)], invoke: (_m, a) => mem_write_bytes(any(a[0]), any(a[1])) }),
  call({
    name: 'dma_map_single',
    params: ['dev', 'cpu_addr', 'size', 'dir'],
    valid: (f, m) => [m.dev, f.spare, 64, 1],
    invoke: (_m, a) => dma_map_single(any(a[0]), any(a[1]), any(a[2]), any(a[3])),
  }),
  call({ name: 'dma_mapping_error', params: ['dev', 'dma_addr'], valid: (f, m) => [m.dev, f.dma], invoke: (_m, a) => dma_mapping_error(any(a[0]), any(a[1])) }),
  ...([
    ['dma_unmap_single', dma_unmap_single],
    ['dma_sync_single_for_cpu', dma_sync_single_for_cpu],
    ['dma_sync_single_for_device', dma_sync_single_for_device],
  ] as const).map(([name, fn]) =>
    call({ name, params: ['dev', 'dma_addr', 'size', 'dir'], valid: (f, m) => [m.dev, f.dma, 256, 0], invoke: (_m, a) => fn(any(a[0]), any(a[1]), any(a[2]), any(a[3])) }),
  ),
  ...([
    ['dma_sync_single_range_for_cpu', dma_sync_single_range_for_cpu],
    ['dma_sync_single_range_for_device', dma_sync_single_range_for_device],
  ] as const).map(([name, fn]) =>
    call({
      name,
      params: ['dev', 'dma_addr', 'offset', 'size', 'dir'],
      valid: (f, m) => [m.dev, f.dma, 64, 64, 0],
      invoke: (_m, a) => fn(any(a[0]), any(a[1]), any(a[2]), any(a[3]), any(a[4])),
    }),
  ),
  call({ name: 'dma_alloc_coherent', params: ['dev', 'size', 'gfp'], valid: (_f, m) => [m.dev, 4096, 0xcc0], invoke: (_m, a) => dma_alloc_coherent(any(a[0]), any(a[1]), any(a[2])), accepts: { gfp: ['undefined'] } }),
  call({
    name: 'dma_free_coherent',
    params: ['dev', 'size', 'cpu_addr', 'dma_handle'],
    valid: (f, m) => [m.dev, 4096, f.coh.cpu, f.coh.dma],
    invoke: (_m, a) => dma_free_coherent(any(a[0]), any(a[1]), any(a[2]), any(a[3])),
  }),
  call({
    name: 'dma_pool_create',
    params: ['name', 'dev', 'size', 'align', 'boundary'],
    valid: (_f, m) => ['p2', m.dev, 64, 64, 0],
    invoke: (_m, a) => dma_pool_create(any(a[0]), any(a[1]), any(a[2]), any(a[3]), any(a[4])),
    accepts: { name: ['string'] },
  }),
  call({ name: 'dma_pool_alloc', params: ['pool', 'gfp'], valid: (f) => [f.pool, 0xcc0], invoke: (_m, a) => dma_pool_alloc(any(a[0]), any(a[1])), accepts: { gfp: ['undefined'] } }),
  call({ name: 'dma_pool_free', params: ['pool', 'vaddr', 'dma'], valid: (f) => [f.pool, f.blk.cpu, f.blk.dma], invoke: (_m, a) => dma_pool_free(any(a[0]), any(a[1]), any(a[2])) }),
  call({ name: 'dma_pool_destroy', params: ['pool'], valid: (f) => [f.pool], invoke: (_m, a) => dma_pool_destroy(any(a[0])), accepts: { pool: ['null'] } }),
  call({ name: 'sg_alloc_table', params: ['table', 'nents', 'gfp'], valid: () => [{}, 2, 0xcc0], invoke: (_m, a) => sg_alloc_table(any(a[0]), any(a[1]), any(a[2])), accepts: { gfp: ['undefined'], table: ['object'] } }),
  call({ name: 'sg_set_buf', params: ['sg', 'buf', 'len'], valid: (f) => [f.table.sgl, f.spare, 64], invoke: (_m, a) => sg_set_buf(any(a[0]), any(a[1]), any(a[2])) }),
  call({ name: 'dma_map_sg', params: ['dev', 'sgl', 'nents', 'dir'], valid: (f, m) => [m.dev, f.table.sgl, 1, 0], invoke: (_m, a) => dma_map_sg(any(a[0]), any(a[1]), any(a[2]), any(a[3])) }),
  ...([
    ['dma_unmap_sg', dma_unmap_sg],
    ['dma_sync_sg_for_cpu', dma_sync_sg_for_cpu],
    ['dma_sync_sg_for_device', dma_sync_sg_for_device],
  ] as const).map(([name, fn]) =>
    call({ name, params: ['dev', 'sgl', 'nents', 'dir'], valid: (f, m) => [m.dev, f.mapped.sgl, 1, 0], invoke: (_m, a) => fn(any(a[0]), any(a[1]), any(a[2]), any(a[3])) }),
  ),
  call({ name: 'm.read', params: ['dma', 'len'], valid: (f) => [f.dma, 16], invoke: (m, a) => m.read(any(a[0]), any(a[1])) }),
  call({ name: 'm.write', params: ['dma', 'bytes'], valid: (f) => [f.dma, new Uint8Array(16)], invoke: (m, a) => m.write(any(a[0]), any(a[1])) }),
]

async function fixture(sys: System, m: TestMaster): Promise<Fixture> {
  let f: Fixture | null = null
  await sys.run(() => {
    const buf = kmalloc(256)!
    mem_write_bytes(buf, pattern(256))
    const spare = kmalloc(256)!
    mem_write_bytes(spare, pattern(256, 2))
    const dma = dma_map_single(m.dev, buf, 256, 0)
    dma_mapping_error(m.dev, dma)
    const coh = dma_alloc_coherent(m.dev, 4096)!
    const pool = dma_pool_create('p', m.dev, 64, 64, 0)!
    const blk = dma_pool_alloc(pool)!
    const table: SgTable = {}
    sg_alloc_table(table, 1)
    const sgBuf = kmalloc(128)!
    mem_write_bytes(sgBuf, pattern(128, 3))
    sg_set_buf(table.sgl!, sgBuf, 128)
    const mapped: SgTable = {}
    sg_alloc_table(mapped, 1)
    const sgBuf2 = kmalloc(128)!
    mem_write_bytes(sgBuf2, pattern(128, 4))
    sg_set_buf(mapped.sgl!, sgBuf2, 128)
    dma_map_sg(m.dev, mapped.sgl!, 1, 0)
    f = { buf, spare, dma, coh, pool, blk, table, mapped }
  })
  return f!
}

describe('property: a wrong-typed argument is an oops naming it', () => {
  const cases = CALLS.flatMap((c) => c.params.map((p, i) => ({ c, i, p })))
  it('one wrong-typed argument in an otherwise valid call', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...cases), fc.constantFrom(...WRONG_TYPES), async ({ c, i, p }, [type, make]) => {
        if (c.accepts?.[p]?.includes(type)) return
        const value = make()
        const sys = boot({ log: 'silent' })
        const m = sys.attachTestMaster('tm0')
        const f = await fixture(sys, m)
        const args = c.valid(f, m)
        args[i] = value
        let err: unknown = null
        try {
          await sys.run(() => c.invoke(m, args))
        } catch (e) {
          err = e
        }
        const label = `${c.name}(${c.params.map((q, k) => (k === i ? `${q}=${fc.stringify(value)}` : q)).join(', ')})`
        expect(err instanceof KernelOops, `${label}: ${err === null ? 'no oops' : what(err)}`).toBe(true)
        const e = err as KernelOops
        if (p === 'dir') expect(e.message, label).toMatch(/invalid DMA direction/)
        else {
          expect(e.cause === undefined || e.cause instanceof InvalidArgumentError, `${label}: ${what(e)}`).toBe(true)
          expect(e.message, label).toContain(`'${p}'`)
        }
        await expectStillWorks(sys, m)
      }),
      runs(300),
    )
  })
})
