/**
 * The buddy page allocator (mm/page_alloc.c): physically contiguous, naturally aligned blocks of
 * 2^order pages, split on allocation and merged with their buddy on free.
 *
 * Two zones, as on arm64 and x86_64: ZONE_DMA32 (the RAM below 4 GiB) and ZONE_NORMAL (the rest).
 * An ordinary allocation prefers ZONE_NORMAL, so kmalloc memory usually sits above 4 GiB and a
 * device with a 32-bit mask really needs bounce buffers. Freed blocks are reused last-in first-out,
 * as the per-CPU page lists make them, so recently freed (cache-hot) pages come back first.
 */

import type { RamBank } from '../../devices/index.js'
import { PAGE_SIZE } from '../types.js'

export const MAX_ORDER = 10
const FOUR_GIB = 0x1_0000_0000

class Zone {
  readonly name: string
  readonly startPfn: number
  readonly endPfn: number
  /** Next never-used pfn, handed out in MAX_ORDER blocks. */
  #bump: number
  /** Free block heads by order: a LIFO stack, validated against #free on pop. */
  readonly #lists: number[][] = Array.from({ length: MAX_ORDER + 1 }, () => [])
  /** pfn -> order of every free block head. */
  readonly #free = new Map<number, number>()
  freePages: number

  constructor(name: string, startPfn: number, endPfn: number) {
    this.name = name
    // Align the start to a MAX_ORDER block so buddies are natural.
    const align = 2 ** MAX_ORDER
    this.startPfn = Math.ceil(startPfn / align) * align
    this.endPfn = endPfn
    this.#bump = this.startPfn
    this.freePages = Math.max(0, endPfn - this.startPfn)
  }

  #push(pfn: number, order: number): void {
    this.#free.set(pfn, order)
    this.#lists[order]!.push(pfn)
  }

  #pop(order: number): number {
    const list = this.#lists[order]!
    while (list.length > 0) {
      const pfn = list.pop()!
      if (this.#free.get(pfn) === order) {
        this.#free.delete(pfn)
        return pfn
      }
    }
    return -1
  }

  alloc(order: number): number {
    for (let o = order; o <= MAX_ORDER; o++) {
      let pfn = this.#pop(o)
      if (pfn < 0 && o === MAX_ORDER) {
        const size = 2 ** MAX_ORDER
        if (this.#bump + size <= this.endPfn) {
          pfn = this.#bump
          this.#bump += size
        }
      }
      if (pfn < 0) continue
      // Split down to the requested order, keeping the lower half.
      for (let s = o; s > order; s--) this.#push(pfn + (1 << (s - 1)), s - 1)
      this.freePages -= 1 << order
      return pfn
    }
    return -1
  }

  free(pfn: number, order: number): void {
    this.freePages += 1 << order
    while (order < MAX_ORDER) {
      const rel = pfn - this.startPfn
      const buddyPfn = this.startPfn + (rel ^ (1 << order))
      if (this.#free.get(buddyPfn) !== order) break
      this.#free.delete(buddyPfn)
      pfn = Math.min(pfn, buddyPfn)
      order++
    }
    this.#push(pfn, order)
  }

  contains(pfn: number): boolean {
    return pfn >= this.startPfn && pfn < this.endPfn
  }
}

export type ZoneName = 'dma32' | 'normal'

export class PageAllocator {
  readonly #dma32: Zone[] = []
  readonly #normal: Zone[] = []

  constructor(banks: readonly RamBank[]) {
    for (const b of banks) {
      const lo = b.base / PAGE_SIZE
      const hi = (b.base + b.size) / PAGE_SIZE
      const split = FOUR_GIB / PAGE_SIZE
      if (lo < split) this.#dma32.push(new Zone(`DMA32:${b.name}`, lo, Math.min(hi, split)))
      if (hi > split) this.#normal.push(new Zone(`Normal:${b.name}`, Math.max(lo, split), hi))
    }
  }

  /** Allocates 2^order pages; returns the first pfn, or -1. 'normal' falls back to DMA32. */
  alloc(order: number, zone: ZoneName): number {
    const zones = zone === 'dma32' ? this.#dma32 : [...this.#normal, ...this.#dma32]
    for (const z of zones) {
      const pfn = z.alloc(order)
      if (pfn >= 0) return pfn
    }
    return -1
  }

  free(pfn: number, order: number): void {
    for (const z of [...this.#dma32, ...this.#normal]) {
      if (z.contains(pfn)) {
        z.free(pfn, order)
        return
      }
    }
    throw new RangeError(`free of pfn 0x${pfn.toString(16)} outside every zone`)
  }

  get freePages(): number {
    let n = 0
    for (const z of [...this.#dma32, ...this.#normal]) n += z.freePages
    return n
  }
}
