/**
 * Shared pieces of the property tests (test/property/): how many runs, the platform arbitrary,
 * byte patterns, and the "system still works" check.
 *
 * PROPERTY_RUNS scales every property's run count: unset, each property runs its small default
 * (the suite stays fast); PROPERTY_RUNS=10 runs ten times as many (a soak). fast-check prints the
 * seed and the shrunk counterexample of a failure; PROPERTY_SEED replays a seed.
 */
import fc from 'fast-check'
import { expect } from 'vitest'
import {
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  kfree,
  kmalloc,
  mem_read_bytes,
  mem_write_bytes,
  type BootOptions,
  type System,
  type TestMaster,
} from '../../kernel/index.js'

const scale = Number(process.env['PROPERTY_RUNS'] ?? '1')
const seedEnv = process.env['PROPERTY_SEED']

/** fast-check parameters: `base` runs times PROPERTY_RUNS (default 1), and PROPERTY_SEED if set. */
export function runs(base: number): fc.Parameters<unknown> {
  const n = Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)))
  return seedEnv !== undefined ? { numRuns: n, seed: Number(seedEnv) } : { numRuns: n }
}

export interface PropPlatform {
  readonly arch: 'arm64' | 'riscv64' | 'x86_64'
  readonly iommu: 'off' | 'strict'
  readonly swiotlb: 'auto' | 'force'
  readonly seed: number
}

/** arm64 / riscv64 / x86_64 x IOMMU strict / off x swiotlb auto / force, any seed. */
export const platformArb: fc.Arbitrary<PropPlatform> = fc.record({
  arch: fc.constantFrom('arm64', 'riscv64', 'x86_64'),
  iommu: fc.constantFrom('off', 'strict'),
  swiotlb: fc.constantFrom('auto', 'force'),
  seed: fc.integer({ min: 0, max: 2 ** 31 }),
})

export function bootOptions(p: PropPlatform, extra: BootOptions = {}): BootOptions {
  return { arch: p.arch, iommu: p.iommu, swiotlb: p.swiotlb, seed: p.seed, log: 'silent', ...extra }
}

/** n bytes of a pattern that differs with salt. */
export function pattern(n: number, salt = 1): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 11 + salt * 17 + (i >> 8)) & 0xff
  return b
}

/** A complete, correct exchange in both directions, asserting the bytes each side sees. */
export async function correctExchange(sys: System, m: TestMaster, n = 256): Promise<void> {
  let toDev: Uint8Array = new Uint8Array()
  let fromDev: Uint8Array = new Uint8Array()
  let errs: number[] = []
  await sys.run(() => {
    const buf = kmalloc(n)!
    mem_write_bytes(buf, pattern(n, 1))
    const tx = dma_map_single(m.dev, buf, n, DMA_TO_DEVICE)
    errs.push(dma_mapping_error(m.dev, tx))
    toDev = m.read(tx, n)
    dma_unmap_single(m.dev, tx, n, DMA_TO_DEVICE)
    const rx = dma_map_single(m.dev, buf, n, DMA_FROM_DEVICE)
    errs.push(dma_mapping_error(m.dev, rx))
    m.write(rx, pattern(n, 2))
    dma_unmap_single(m.dev, rx, n, DMA_FROM_DEVICE)
    fromDev = mem_read_bytes(buf, n)
    kfree(buf)
  })
  expect(errs).toEqual([0, 0])
  errs = []
  expect(Buffer.from(toDev).equals(Buffer.from(pattern(n, 1)))).toBe(true)
  expect(Buffer.from(fromDev).equals(Buffer.from(pattern(n, 2)))).toBe(true)
}

/** Report kinds and counts: a new report, or a repeat of an old one at the same site, changes it. */
export function reportTally(sys: System): string[] {
  return sys.reports.map((r) => `${r.kind}@${r.site ?? '?'}x${r.count}`)
}

/** The system still works: a correct exchange gives the right bytes and adds no report. */
export async function expectStillWorks(sys: System, m: TestMaster): Promise<void> {
  const before = reportTally(sys)
  await correctExchange(sys, m)
  expect(reportTally(sys)).toEqual(before)
}
