/**
 * IOVA allocation for a device behind the IOMMU (drivers/iommu/iova.c, dma-iommu.c).
 *
 * Allocations are top-down from the device's limit (its DMA mask, capped at the IOMMU's 48-bit
 * input address size), size-aligned to the next power of two as `alloc_iova_fast(...,
 * size_aligned)` does, and freed ranges are reused last-in first-out per size, as the IOVA
 * rcaches make them. PCI devices first try below 4 GiB, as `iommu_dma_alloc_iova` does without
 * `iommu.forcedac`.
 */

import { removeAt } from '../lib/sorted.js'
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
          removeAt(stack, i)
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

/** Entries per flush queue (IOVA_FQ_SIZE / IOVA_DEFAULT_FQ_SIZE in drivers/iommu/dma-iommu.c). */
export const IOVA_FQ_SIZE = 256
/** Milliseconds after the first queued entry at which the flush timer fires (IOVA_FQ_TIMEOUT). */
export const IOVA_FQ_TIMEOUT_MS = 10

/** What a flush queue acts on: the domain's IOTLB (the hardware side). */
export interface FlushTarget {
  flushIotlbAll(): void
}

/**
 * The flush queue of IOMMU lazy mode (drivers/iommu/dma-iommu.c: queue_iova, fq_flush_iotlb,
 * fq_flush_timeout). An unmap removes the PTEs but neither invalidates the IOTLB nor frees the
 * IOVA: the range is queued. The queue is flushed — one whole-domain IOTLB invalidation, then every
 * queued IOVA freed for reuse — when it is full (a ring of IOVA_FQ_SIZE slots, one kept empty), or
 * when the flush timer fires: armed by the first entry queued while it is off, IOVA_FQ_TIMEOUT ms
 * later, and not pushed back by later entries. Until then the device may still use its cached
 * translations, and no IOVA in the queue can be handed out again. One queue per domain (Linux has
 * one per CPU; this machine has one CPU).
 */
export class IovaFlushQueue {
  readonly #iovad: IovaDomain
  readonly #target: FlushTarget
  readonly #armTimer: (fire: () => void) => void
  readonly #now: () => number
  readonly #base: number[] = []
  readonly #pages: number[] = []
  #timerOn = false
  /** Flushes so far (fq_flush_finish_cnt). */
  flushes = 0
  /** Flushes done because the queue was full. */
  fullFlushes = 0
  /** Time of the last flush (now()), or -1. */
  lastFlushAt = -1

  /** armTimer schedules fire once, IOVA_FQ_TIMEOUT ms from now; now reads the same clock. */
  constructor(iovad: IovaDomain, target: FlushTarget, armTimer: (fire: () => void) => void, now: () => number = () => 0) {
    this.#iovad = iovad
    this.#target = target
    this.#armTimer = armTimer
    this.#now = now
  }

  /** Queued IOVA ranges not yet flushed. */
  get pending(): number {
    return this.#base.length
  }

  /** Whether the flush timer is armed. */
  get timerOn(): boolean {
    return this.#timerOn
  }

  /** Whether iova lies in a range waiting in the queue. */
  holds(iova: number): boolean {
    for (let i = 0; i < this.#base.length; i++) {
      if (iova >= this.#base[i]! && iova < this.#base[i]! + this.#pages[i]! * PAGE_SIZE) return true
    }
    return false
  }

  /** queue_iova: defers the IOTLB invalidation and the IOVA's release. */
  queue(base: number, npages: number): void {
    if (this.#base.length === IOVA_FQ_SIZE - 1) {
      this.fullFlushes++
      this.flush()
    }
    this.#base.push(base)
    this.#pages.push(npages)
    if (!this.#timerOn) {
      this.#timerOn = true
      this.#armTimer(() => {
        this.#timerOn = false
        this.flush()
      })
    }
  }

  /** fq_flush_iotlb then fq_ring_free: invalidate the domain's IOTLB, then free every queued IOVA. */
  flush(): void {
    this.#target.flushIotlbAll()
    this.flushes++
    this.lastFlushAt = this.#now()
    for (let i = 0; i < this.#base.length; i++) this.#iovad.free(this.#base[i]!, this.#pages[i]!)
    while (this.#base.length > 0) this.#base.pop()
    while (this.#pages.length > 0) this.#pages.pop()
  }
}
