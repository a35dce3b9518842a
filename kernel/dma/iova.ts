/**
 * IOVA allocation for a device behind the IOMMU (drivers/iommu/iova.c, dma-iommu.c).
 *
 * Allocations are top-down from the device's limit (its DMA mask, capped at the IOMMU's 48-bit
 * input address size), size-aligned to the next power of two as `alloc_iova_fast(...,
 * size_aligned)` does, and freed ranges are reused last-in first-out per size, as the IOVA
 * rcaches make them. PCI devices first try below 4 GiB, as `iommu_dma_alloc_iova` does without
 * `iommu.forcedac`.
 */

import { PAGE_SIZE } from '../types.js'

export const IOMMU_APERTURE = 2 ** 48
const FOUR_GIB = 2 ** 32

export class IovaDomain {
  /** Bump pointers (next free page-aligned IOVA going down), per limit. */
  readonly #bump = new Map<number, number>()
  /** Freed ranges by page count: LIFO stacks of base IOVAs. */
  readonly #free = new Map<number, number[]>()
  readonly preferLow: boolean

  constructor(preferLow: boolean) {
    this.preferLow = preferLow
  }

  /** Allocates npages of IOVA at or below limit (inclusive); returns the base or -1. */
  alloc(npages: number, limit: number): number {
    const top = Math.min(limit + 1, IOMMU_APERTURE)
    if (this.preferLow && top > FOUR_GIB) {
      const low = this.#allocBelow(npages, FOUR_GIB)
      if (low >= 0) return low
    }
    return this.#allocBelow(npages, top)
  }

  #allocBelow(npages: number, top: number): number {
    const size = npages * PAGE_SIZE
    const stack = this.#free.get(npages)
    if (stack !== undefined && stack.length > 0) {
      const last = stack[stack.length - 1]!
      if (last + size <= top) return stack.pop()!
      for (let i = stack.length - 2; i >= 0; i--) {
        const base = stack[i]!
        if (base + size <= top) {
          stack.splice(i, 1)
          return base
        }
      }
    }
    let align = 1
    while (align < npages) align *= 2
    const alignBytes = align * PAGE_SIZE
    const bump = this.#bump.get(top) ?? top
    const base = Math.floor((bump - size) / alignBytes) * alignBytes
    if (base < PAGE_SIZE * 16) return -1
    this.#bump.set(top, base)
    return base
  }

  free(base: number, npages: number): void {
    let stack = this.#free.get(npages)
    if (stack === undefined) {
      stack = []
      this.#free.set(npages, stack)
    }
    stack.push(base)
  }
}

/** Pages spanned by [pa, pa+size). */
export function pagesSpanned(pa: number, size: number): number {
  return Math.floor((pa + size - 1) / PAGE_SIZE) - Math.floor(pa / PAGE_SIZE) + 1
}
