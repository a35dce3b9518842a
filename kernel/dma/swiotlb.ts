/**
 * swiotlb, the software IO TLB (kernel/dma/swiotlb.c): a pool of bounce buffers below 4 GiB in
 * 2 KiB slots (IO_TLB_SHIFT 11), at most 128 contiguous slots (256 KiB) per mapping. A mapping
 * whose buffer the device cannot reach — or every streaming mapping under swiotlb=force — gets a
 * slot, and data crosses between the slot and the original buffer only where Linux copies:
 * at map (always, whatever the direction), at sync and at unmap (per direction, in core.ts).
 */

import type { BounceSlot } from './types.js'
import { PAGE_SIZE } from '../types.js'

export const IO_TLB_SHIFT = 11
export const IO_TLB_SIZE = 1 << IO_TLB_SHIFT
export const IO_TLB_SEGSIZE = 128
export const SWIOTLB_MAX_MAPPING = IO_TLB_SIZE * IO_TLB_SEGSIZE

export class Swiotlb {
  /** Physical start of the pool. */
  readonly base: number
  readonly nslabs: number
  readonly #used: Uint8Array
  #next = 0
  usedSlots = 0

  constructor(base: number, bytes: number) {
    this.base = base
    this.nslabs = bytes / IO_TLB_SIZE
    this.#used = new Uint8Array(this.nslabs)
  }

  /** Whether pa lies in the pool (is_swiotlb_buffer). */
  contains(pa: number): boolean {
    return pa >= this.base && pa < this.base + this.nslabs * IO_TLB_SIZE
  }

  /** Finds contiguous free slots for size bytes; null when the pool is full. */
  alloc(size: number): BounceSlot | null {
    const n = Math.ceil(size / IO_TLB_SIZE)
    if (n > IO_TLB_SEGSIZE) return null
    // Buffers of a page or more are page aligned, as swiotlb_find_slots aligns them.
    const stride = size >= PAGE_SIZE ? PAGE_SIZE / IO_TLB_SIZE : 1
    const used = this.#used
    const total = this.nslabs
    let start = Math.ceil(this.#next / stride) * stride
    for (let tries = 0; tries < total; tries += stride, start += stride) {
      if (start + n > total) start = 0
      // A mapping never crosses a segment (IO_TLB_SEGSIZE) boundary.
      if (Math.floor(start / IO_TLB_SEGSIZE) !== Math.floor((start + n - 1) / IO_TLB_SEGSIZE)) continue
      let ok = true
      for (let i = 0; i < n; i++) {
        if (used[start + i] !== 0) {
          ok = false
          break
        }
      }
      if (!ok) continue
      used.fill(1, start, start + n)
      this.usedSlots += n
      this.#next = start + n
      return { index: start, nslots: n, pa: this.base + start * IO_TLB_SIZE, size }
    }
    return null
  }

  release(slot: BounceSlot): void {
    this.#used.fill(0, slot.index, slot.index + slot.nslots)
    this.usedSlots -= slot.nslots
  }
}
