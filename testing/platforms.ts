/**
 * The platform matrix a driver's tests should pass on: arm64 and riscv64 (DMA non-coherent) and
 * x86_64 (coherent), each with swiotlb auto and force and the IOMMU strict and off, and helpers that
 * run one test body on every platform (and seed).
 */
import { describe, it } from 'vitest'
import { boot, type BootOptions, type System } from '../kernel/index.js'

export type PlatformArch = 'arm64' | 'riscv64' | 'x86_64'

/** One platform of the matrix. */
export interface Platform {
  /** 'arm64 swiotlb=auto iommu=strict': unique, for test names (`$name` in describe.each titles). */
  readonly name: string
  readonly arch: PlatformArch
  /** Whether devices are DMA coherent (the architecture's default: false on arm64 and riscv64). */
  readonly coherent: boolean
  readonly swiotlb: 'auto' | 'force'
  readonly iommu: 'strict' | 'off'
  /** The boot() options of this platform: spread them, or use bootOn(). */
  readonly options: Readonly<BootOptions>
}

const ARCH_COHERENT: Readonly<Record<PlatformArch, boolean>> = { arm64: false, riscv64: false, x86_64: true }

function platform(arch: PlatformArch, swiotlb: 'auto' | 'force', iommu: 'strict' | 'off'): Platform {
  const coherent = ARCH_COHERENT[arch]
  return Object.freeze({
    name: `${arch} swiotlb=${swiotlb} iommu=${iommu}`,
    arch,
    coherent,
    swiotlb,
    iommu,
    options: Object.freeze({ arch, coherent, swiotlb, iommu }),
  })
}

/** Every architecture × swiotlb (auto, force) × IOMMU (strict, off): 12 platforms, arm64 first. */
export const PLATFORMS: readonly Platform[] = Object.freeze(
  (['arm64', 'riscv64', 'x86_64'] as const).flatMap((arch) =>
    (['auto', 'force'] as const).flatMap((swiotlb) => (['strict', 'off'] as const).map((iommu) => platform(arch, swiotlb, iommu))),
  ),
)

/** The platform named, e.g. platformNamed('arm64 swiotlb=auto iommu=strict'). */
export function platformNamed(name: string): Platform {
  const p = PLATFORMS.find((q) => q.name === name)
  if (p === undefined) throw new TypeError(`unknown platform '${name}'; the platforms are: ${PLATFORMS.map((q) => q.name).join(', ')}`)
  return p
}

/** The default platform (boot()'s defaults): arm64, non-coherent, swiotlb auto, IOMMU strict. */
export const ARM64: Platform = platformNamed('arm64 swiotlb=auto iommu=strict')

/** Boots a system on a platform; `extra` (devices, seed, checks, ...) is added to its options. */
export function bootOn(p: Platform, extra: BootOptions = {}): System {
  return boot({ ...p.options, ...extra })
}

/** Seeds 1..n (or start..start+n-1), for running a test under several seeds. */
export function seeds(n: number, start = 1): number[] {
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`seeds: n must be a positive integer, got ${String(n)}`)
  if (!Number.isInteger(start)) throw new TypeError(`seeds: start must be an integer, got ${String(start)}`)
  return Array.from({ length: n }, (_, i) => start + i)
}

export interface MatrixOptions {
  /** The platforms to run on (default PLATFORMS); filter PLATFORMS to narrow the matrix. */
  platforms?: readonly Platform[]
  /** The seeds to run under (default [1]); e.g. seeds(5). */
  seeds?: readonly number[]
}

function matrix(o: MatrixOptions): { platforms: readonly Platform[]; seeds: readonly number[] } {
  const platforms = o.platforms ?? PLATFORMS
  const s = o.seeds ?? [1]
  if (platforms.length === 0) throw new TypeError('the platform list is empty')
  if (s.length === 0) throw new TypeError('the seed list is empty')
  return { platforms, seeds: s }
}

/**
 * A describe block per platform (describe.each): `fn(p)` registers the tests, which boot with
 * `bootOn(p, ...)`. Titles are `${name} on ${p.name}`.
 */
export function describePlatforms(name: string, fn: (p: Platform) => void, options: MatrixOptions = {}): void {
  const { platforms } = matrix(options)
  describe.each(platforms.map((p) => [p.name, p] as const))(`${name} on %s`, (_title, p) => fn(p))
}

/**
 * One test per platform × seed (it.each): `fn(p, seed)` is the test body. Titles are
 * `${name}: ${p.name} seed=${seed}`.
 */
export function forEachPlatform(name: string, fn: (p: Platform, seed: number) => Promise<void> | void, options: MatrixOptions & { timeout?: number } = {}): void {
  const m = matrix(options)
  const cases = m.platforms.flatMap((p) => m.seeds.map((seed) => [`${p.name} seed=${seed}`, p, seed] as const))
  it.each(cases)(`${name}: %s`, (_title, p, seed) => fn(p, seed), options.timeout)
}
