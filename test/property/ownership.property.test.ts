/**
 * Property: valid => silent, invalid => reported (DESIGN.md §5 "DMA", §6 report kinds).
 *
 * 1. Random *valid* streaming-DMA life cycles — map, dma_mapping_error, device accesses as the
 *    direction permits, sync_for_cpu (whole or a range), CPU reads and writes of what the CPU
 *    owns, sync_for_device (skipped where DMA-API-HOWTO allows it: a FROM_DEVICE buffer the CPU
 *    only read), ..., unmap — of random sizes and offsets inside a kmalloc object, on arm64 /
 *    riscv64 / x86_64 x IOMMU strict / off x swiotlb auto / force x a 64- or 32-bit master (which
 *    bounces under 'auto' without an IOMMU), any seed: zero reports, and each
 *    side sees the bytes the other wrote.
 * 2. The same kind of life cycle with exactly one rule violation from a catalogue: the report kinds
 *    are exactly the ones the contract table names (an access the IOMMU blocks is only an
 *    `iommu-fault`).
 *
 * Bytes the CPU wrote into a FROM_DEVICE buffer are not checked afterwards: with a bounce buffer,
 * Linux's sync_for_device does not copy them for that direction, so their value is unspecified.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  boot,
  DMA_BIDIRECTIONAL,
  DMA_BIT_MASK,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_sync_single_range_for_device,
  dma_unmap_single,
  kfree,
  kmalloc,
  mem_read8,
  mem_read_bytes,
  mem_write_bytes,
  ptr_add,
  type DmaAddr,
  type ReportKind,
  type System,
  type TestMaster,
} from '../../kernel/index.js'
import { bootOptions, pattern, platformArb, runs, type PropPlatform } from '../helpers/property.js'

// ---------------------------------------------------------------------- valid life cycles

/** Fractions (0..1000) locate ranges inside the mapping, so shrinking keeps them valid. */
const frac = fc.integer({ min: 0, max: 1000 })
const roundArb = fc.record({
  dev: fc.tuple(frac, frac),
  devWrites: fc.boolean(),
  devReads: fc.boolean(),
  syncFull: fc.boolean(),
  sync: fc.tuple(frac, frac),
  cpu: fc.tuple(frac, frac),
  cpuRead: fc.boolean(),
  cpuWrite: fc.boolean(),
  skipForDevice: fc.boolean(),
  salt: fc.nat(255),
})

const lifeArb = fc.record({
  dir: fc.constantFrom(DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE),
  objSize: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.integer({ min: 1, max: 12_000 })),
  off: frac,
  len: frac,
  rounds: fc.array(roundArb, { maxLength: 4 }),
})
type Life = typeof lifeArb extends fc.Arbitrary<infer T> ? T : never

/** [x, y) inside [lo, hi), non-empty, from two fractions. */
function range(lo: number, hi: number, [p, q]: readonly [number, number]): [number, number] {
  const n = hi - lo
  const x = lo + Math.floor((p / 1001) * n)
  const y = x + 1 + Math.floor((q / 1001) * (hi - x - 1))
  return [x, y]
}

/** The mapping's place in its object: [off, off + len) inside objSize bytes. */
function placement(l: Pick<Life, 'objSize' | 'off' | 'len'>): { off: number; len: number } {
  const [a, b] = range(0, l.objSize, [l.off, l.len])
  return { off: a, len: b - a }
}

/** A 32-bit master makes swiotlb 'auto' bounce (RAM above 4 GiB is beyond its mask) without an IOMMU. */
function setup(p: PropPlatform, mask32: boolean): { sys: System; m: TestMaster } {
  const sys = boot(bootOptions(p))
  return { sys, m: sys.attachTestMaster('tm0', mask32 ? { dmaMask: DMA_BIT_MASK(32) } : {}) }
}

/** Compares what a side saw with the model, where the model knows the value. */
function expectBytes(got: Uint8Array, model: readonly (number | null)[], from: number, what: string): void {
  for (let i = 0; i < got.length; i++) {
    const want = model[from + i]
    if (want !== null && want !== undefined && got[i] !== want) {
      expect.fail(`${what}: byte ${from + i} of the mapping is 0x${got[i]!.toString(16)}, expected 0x${want.toString(16)}`)
    }
  }
}

/** Runs one valid life cycle on tm0, asserting the data each side sees. */
function lifeCycle(m: TestMaster, l: Life): void {
  const { off, len } = placement(l)
  const dir = l.dir
  const buf = kmalloc(l.objSize)!
  const init = pattern(l.objSize, 7)
  mem_write_bytes(buf, init)
  const model: (number | null)[] = [...init.subarray(off, off + len)]
  const cpu = ptr_add(buf, off)
  const dma = dma_map_single(m.dev, cpu, len, dir)
  expect(dma_mapping_error(m.dev, dma)).toBe(0)
  /** Bytes the CPU owns (synced for the CPU and not handed back). */
  const cpuOwned = new Array<boolean>(len).fill(false)
  for (const r of l.rounds) {
    // The device's turn, on bytes it owns.
    const [a, b] = range(0, len, r.dev)
    const dmaA = (dma + a) as DmaAddr
    if (dir === DMA_TO_DEVICE || (dir === DMA_BIDIRECTIONAL && (r.devReads || !r.devWrites))) {
      expectBytes(m.read(dmaA, b - a), model, a, 'device read')
    }
    if (dir === DMA_FROM_DEVICE || (dir === DMA_BIDIRECTIONAL && r.devWrites)) {
      if (dir === DMA_FROM_DEVICE || cpuOwned.slice(a, b).every((x) => !x)) {
        const data = pattern(b - a, r.salt)
        m.write(dmaA, data)
        for (let i = a; i < b; i++) {
          model[i] = data[i - a]!
          cpuOwned[i] = false // a device write to a clean FROM_DEVICE range returns it to the device
        }
      }
    }
    // sync_for_cpu: the whole mapping or a range.
    const [s, e] = r.syncFull ? [0, len] : range(0, len, r.sync)
    if (r.syncFull) dma_sync_single_for_cpu(m.dev, dma, len, dir)
    else dma_sync_single_range_for_cpu(m.dev, dma, s, e - s, dir)
    for (let i = s; i < e; i++) cpuOwned[i] = true
    // The CPU's turn, inside what it synced.
    const [c, d] = range(s, e, r.cpu)
    if (r.cpuRead) expectBytes(mem_read_bytes(ptr_add(cpu, c), d - c), model, c, 'CPU read')
    if (r.cpuWrite) {
      const data = pattern(d - c, r.salt + 1)
      mem_write_bytes(ptr_add(cpu, c), data)
      for (let i = c; i < d; i++) model[i] = dir === DMA_FROM_DEVICE ? null : data[i - c]!
    }
    // Back to the device, unless the CPU only read a FROM_DEVICE buffer (DMA-API-HOWTO).
    if (dir === DMA_FROM_DEVICE && !r.cpuWrite && r.skipForDevice) continue
    if (r.syncFull) dma_sync_single_for_device(m.dev, dma, len, dir)
    else dma_sync_single_range_for_device(m.dev, dma, s, e - s, dir)
    for (let i = s; i < e; i++) cpuOwned[i] = false
  }
  dma_unmap_single(m.dev, dma, len, dir)
  expectBytes(mem_read_bytes(cpu, len), model, 0, 'CPU read after unmap')
  kfree(buf)
}

describe('property: valid life cycles are silent and move the right bytes', () => {
  it('any platform, size, offset, direction and sync pattern: zero reports', async () => {
    await fc.assert(
      fc.asyncProperty(platformArb, fc.boolean(), fc.array(lifeArb, { minLength: 1, maxLength: 3 }), async (p, mask32, lives) => {
        const { sys, m } = setup(p, mask32)
        await sys.run(() => {
          for (const l of lives) lifeCycle(m, l)
        })
        m.detach()
        expect(sys.reports.map((r) => `${r.kind}: ${r.message}`)).toEqual([])
      }),
      runs(60),
    )
  })
})

// ---------------------------------------------------------------------- one violation

const VIOLATIONS = [
  'cpu-read-device-owned',
  'device-write-to-device-mapping',
  'sync-wrong-direction',
  'unmap-wrong-size',
  'double-unmap',
  'device-access-after-unmap',
  'device-access-cpu-owned',
  'unchecked-mapping-error',
] as const
type Violation = (typeof VIOLATIONS)[number]

const violationArb = fc.record({
  violation: fc.constantFrom(...VIOLATIONS),
  objSize: fc.integer({ min: 1, max: 9000 }),
  off: frac,
  len: frac,
  at: frac,
  pick: fc.nat(5),
  deviceRead: fc.boolean(),
  syncForCpuSide: fc.boolean(),
})
type Injected = typeof violationArb extends fc.Arbitrary<infer T> ? T : never

/** The direction each violation needs (pick chooses among them). */
function directionFor(v: Injected): number {
  const dirs: Record<Violation, readonly number[]> = {
    'cpu-read-device-owned': [DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
    'device-write-to-device-mapping': [DMA_TO_DEVICE],
    // dma-debug lets a BIDIRECTIONAL mapping be synced in any direction.
    'sync-wrong-direction': [DMA_TO_DEVICE, DMA_FROM_DEVICE],
    'unmap-wrong-size': [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
    'double-unmap': [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
    'device-access-after-unmap': [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
    'device-access-cpu-owned': [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
    'unchecked-mapping-error': [DMA_TO_DEVICE, DMA_FROM_DEVICE, DMA_BIDIRECTIONAL],
  }
  const list = dirs[v.violation]
  return list[v.pick % list.length]!
}

/** The report kinds the contract table names for the violation on this platform. */
function expectedKinds(v: Injected, p: PropPlatform): ReportKind[] {
  const strict = p.iommu === 'strict'
  switch (v.violation) {
    case 'cpu-read-device-owned':
      return ['cpu-access-device-owned']
    case 'device-write-to-device-mapping':
      // A TO_DEVICE mapping is read-only in the IOMMU: the write is blocked, only iommu-fault.
      return [strict ? 'iommu-fault' : 'device-write-to-device-mapping']
    case 'sync-wrong-direction':
      return ['sync-direction-mismatch']
    case 'unmap-wrong-size':
      return ['unmap-size-mismatch']
    case 'double-unmap':
      return ['unmap-unknown']
    case 'device-access-after-unmap':
      return [strict ? 'iommu-fault' : 'device-access-cpu-owned']
    case 'device-access-cpu-owned':
      return ['device-access-cpu-owned']
    case 'unchecked-mapping-error':
      return ['map-error-unchecked']
  }
}

/** A life cycle with the one violation in it. */
function violate(m: TestMaster, v: Injected): void {
  const { off, len } = placement(v)
  const dir = directionFor(v)
  const buf = kmalloc(v.objSize)!
  mem_write_bytes(buf, pattern(v.objSize, 3))
  const cpu = ptr_add(buf, off)
  const dma = dma_map_single(m.dev, cpu, len, dir)
  if (v.violation !== 'unchecked-mapping-error') expect(dma_mapping_error(m.dev, dma)).toBe(0)
  const at = Math.floor((v.at / 1001) * len)
  const devAccess = (read: boolean) => {
    if (read) m.read(dma, len)
    else m.write(dma, pattern(len, 9))
  }
  // A valid device turn first, as the direction permits.
  const canRead = dir !== DMA_FROM_DEVICE
  const canWrite = dir !== DMA_TO_DEVICE
  devAccess(canRead && (!canWrite || v.deviceRead))
  const other = [DMA_BIDIRECTIONAL, DMA_TO_DEVICE, DMA_FROM_DEVICE].filter((d) => d !== dir)[v.pick % 2]!
  switch (v.violation) {
    case 'cpu-read-device-owned':
      mem_read8(cpu, at)
      break
    case 'device-write-to-device-mapping':
      m.write(ptr_add(dma, at), pattern(Math.max(1, len - at), 4))
      break
    case 'sync-wrong-direction':
      if (v.syncForCpuSide) {
        dma_sync_single_for_cpu(m.dev, dma, len, other)
        dma_sync_single_for_device(m.dev, dma, len, dir)
      } else {
        dma_sync_single_for_cpu(m.dev, dma, len, dir)
        dma_sync_single_for_device(m.dev, dma, len, other)
      }
      break
    case 'unmap-wrong-size': {
      const wrong = len === 1 ? 2 : 1 + ((at + v.pick) % (len - 1))
      dma_unmap_single(m.dev, dma, wrong === len ? len + 1 : wrong, dir)
      kfree(buf)
      return
    }
    case 'double-unmap':
      dma_unmap_single(m.dev, dma, len, dir)
      dma_unmap_single(m.dev, dma, len, dir)
      kfree(buf)
      return
    case 'device-access-after-unmap':
      dma_unmap_single(m.dev, dma, len, dir)
      devAccess(v.deviceRead)
      kfree(buf)
      return
    case 'device-access-cpu-owned':
      dma_sync_single_for_cpu(m.dev, dma, len, dir)
      if (dir === DMA_FROM_DEVICE) {
        // A FROM_DEVICE buffer the CPU wrote since its sync_for_cpu.
        mem_write_bytes(ptr_add(cpu, at), pattern(1, 5))
        m.write(dma, pattern(len, 6))
      } else m.read(ptr_add(dma, at), len - at)
      dma_sync_single_for_device(m.dev, dma, len, dir)
      break
    case 'unchecked-mapping-error':
      // The first use of the mapping (the device turn above) was already the violation.
      break
  }
  dma_unmap_single(m.dev, dma, len, dir)
  kfree(buf)
}

describe('property: one violation gets exactly the contract kind', () => {
  it('each catalogued violation, on any platform, size and offset', async () => {
    await fc.assert(
      fc.asyncProperty(platformArb, fc.boolean(), violationArb, async (p, mask32, v) => {
        const { sys, m } = setup(p, mask32)
        await sys.run(() => violate(m, v))
        m.detach()
        const kinds = [...new Set(sys.reports.map((r) => r.kind))]
        expect(kinds, sys.reports.map((r) => `${r.kind}: ${r.message}`).join('\n')).toEqual(expectedKinds(v, p))
        expect(sys.reports.every((r) => r.device === 'tm0')).toBe(true)
      }),
      runs(80),
    )
  })
})
