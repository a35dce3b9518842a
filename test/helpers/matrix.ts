/**
 * The platform matrix every report-kind test runs on: each architecture, swiotlb auto and force,
 * IOMMU off and strict, over several seeds. LAZY_PLATFORMS adds IOMMU lazy (one seed) for the
 * tests of correct drivers: lazy mode only changes what a device can do after an unmap, so a
 * correct driver must stay silent there too (known-bad ones may be reported differently).
 */
import type { BootOptions } from '../../kernel/index.js'

export const ARCHES = ['arm64', 'x86_64', 'riscv64'] as const
export const SEEDS = [1, 2, 3] as const

export interface Platform {
  readonly arch: (typeof ARCHES)[number]
  readonly swiotlb: 'auto' | 'force'
  readonly iommu: 'off' | 'strict' | 'lazy'
  readonly seed: number
  /** A short label for test names. */
  readonly label: string
}

export const PLATFORMS: readonly Platform[] = ARCHES.flatMap((arch) =>
  (['auto', 'force'] as const).flatMap((swiotlb) =>
    (['off', 'strict'] as const).flatMap((iommu) =>
      SEEDS.map((seed) => ({ arch, swiotlb, iommu, seed, label: `${arch} swiotlb=${swiotlb} iommu=${iommu} seed=${seed}` })),
    ),
  ),
)

export const LAZY_PLATFORMS: readonly Platform[] = ARCHES.flatMap((arch) =>
  (['auto', 'force'] as const).map((swiotlb) => ({ arch, swiotlb, iommu: 'lazy' as const, seed: 1, label: `${arch} swiotlb=${swiotlb} iommu=lazy seed=1` })),
)

/** Boot options for a platform, plus overrides. */
export function optionsFor(p: Platform, extra: BootOptions = {}): BootOptions {
  return { arch: p.arch, swiotlb: p.swiotlb, iommu: p.iommu, seed: p.seed, log: 'silent', ...extra }
}

/** Whether the platform's devices are DMA coherent by default. */
export function coherent(p: Platform): boolean {
  return p.arch === 'x86_64'
}
