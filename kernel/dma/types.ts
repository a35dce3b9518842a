/**
 * Types and constants of include/linux/dma-direction.h and include/linux/dma-mapping.h, and the
 * mapping record shared by dma-debug (kernel/dma/debug.ts) and the ownership sanitizer
 * (kernel/dma/sanitizer.ts).
 */

import type { StackFrame } from '../debug/stack.js'
import type { KObject } from '../mm/page.js'
import type { DmaAddr } from '../types.js'
import type { Device } from '../base/device.js'

export const DMA_BIDIRECTIONAL = 0
export const DMA_TO_DEVICE = 1
export const DMA_FROM_DEVICE = 2
export const DMA_NONE = 3
export type dma_data_direction = number

export const DIR_NAMES: readonly string[] = ['DMA_BIDIRECTIONAL', 'DMA_TO_DEVICE', 'DMA_FROM_DEVICE', 'DMA_NONE']

export function dirName(dir: number): string {
  return DIR_NAMES[dir] ?? `invalid direction ${dir}`
}

/** `DMA_MAPPING_ERROR`: a DmaAddr no mapping ever returns (C's ~(dma_addr_t)0, cut to 2^53 - 1). */
export const DMA_MAPPING_ERROR = (2 ** 53 - 1) as DmaAddr

export const DMA_ATTR_WEAK_ORDERING = 1 << 1
export const DMA_ATTR_WRITE_COMBINE = 1 << 2
export const DMA_ATTR_NO_KERNEL_MAPPING = 1 << 4
/** Map or unmap without cache maintenance: the driver owes the sync. */
export const DMA_ATTR_SKIP_CPU_SYNC = 1 << 5
export const DMA_ATTR_FORCE_CONTIGUOUS = 1 << 6
export const DMA_ATTR_ALLOC_SINGLE_PAGES = 1 << 7
export const DMA_ATTR_NO_WARN = 1 << 8
export const DMA_ATTR_PRIVILEGED = 1 << 9
export const DMA_ATTR_MMIO = 1 << 10
/** The driver vouches that lines shared by such mappings are never dirtied by the CPU. */
export const DMA_ATTR_DEBUGGING_IGNORE_CACHELINES = 1 << 11

/** Ownership of a byte range of a mapping. */
export const OWN_DEVICE = 0
/** CPU owns it and has not written it since it took it back. */
export const OWN_CPU = 1
/** CPU owns it and has written it. */
export const OWN_CPU_DIRTY = 2
/** Mapped with DMA_ATTR_SKIP_CPU_SYNC: the CPU still owns it until sync_for_device. */
export const OWN_PENDING = 3

/** Piecewise-constant ownership over [0, size) of one mapping. */
export class Ownership {
  /** Segment starts (offsets), ascending; the first is 0. */
  readonly starts: number[]
  readonly states: number[]
  readonly size: number

  constructor(size: number, state: number) {
    this.size = size
    this.starts = [0]
    this.states = [state]
  }

  #index(off: number): number {
    const s = this.starts
    let lo = 0
    let hi = s.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (s[mid]! <= off) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  /** The state of [a, b) if uniform, else -1. */
  uniform(a: number, b: number): number {
    if (this.states.length === 1) return this.states[0]!
    const i = this.#index(a)
    const end = i + 1 < this.starts.length ? this.starts[i + 1]! : this.size
    return b <= end ? this.states[i]! : -1
  }

  /** Calls fn for each segment overlapping [a, b), clipped to it. */
  forEach(a: number, b: number, fn: (from: number, to: number, state: number) => void): void {
    for (let i = this.#index(a); i < this.starts.length && this.starts[i]! < b; i++) {
      const end = i + 1 < this.starts.length ? this.starts[i + 1]! : this.size
      fn(Math.max(a, this.starts[i]!), Math.min(b, end), this.states[i]!)
    }
  }

  /** Sets [a, b) to state. */
  set(a: number, b: number, state: number): void {
    a = Math.max(0, a)
    b = Math.min(this.size, b)
    if (a >= b) return
    if (this.states.length === 1 && a === 0 && b === this.size) {
      this.states[0] = state
      return
    }
    const segs: [number, number][] = []
    const push = (start: number, st: number) => {
      const last = segs[segs.length - 1]
      if (last !== undefined && last[1] === st) return
      if (last !== undefined && last[0] === start) {
        last[1] = st
        const prev = segs[segs.length - 2]
        if (prev !== undefined && prev[1] === st) segs.pop()
        return
      }
      segs.push([start, st])
    }
    for (let i = 0; i < this.starts.length; i++) {
      const s = this.starts[i]!
      const e = i + 1 < this.starts.length ? this.starts[i + 1]! : this.size
      const st = this.states[i]!
      if (e <= a || s >= b) push(s, st)
      else {
        if (s < a) push(s, st)
        push(Math.max(s, a), state)
        if (e > b) push(b, st)
      }
    }
    // pop(), not `length = 0`: setting an array's length is a runtime call (50-90 ns).
    while (this.starts.length > 0) this.starts.pop()
    while (this.states.length > 0) this.states.pop()
    for (const [s, st] of segs) {
      this.starts.push(s)
      this.states.push(st)
    }
  }
}

export type MapType = 'single' | 'scatter-gather' | 'coherent' | 'noncoherent'

export const MAP_ERR_NOT_APPLICABLE = 0
export const MAP_ERR_NOT_CHECKED = 1
export const MAP_ERR_CHECKED = 2

/** A swiotlb bounce slot held by a mapping. */
export interface BounceSlot {
  readonly index: number
  readonly nslots: number
  /** Physical address of the bounce buffer. */
  readonly pa: number
  readonly size: number
}

/** One DMA mapping or allocation: a dma-debug entry plus the sanitizer's ownership state. */
export class DmaMapping {
  static #next = 1
  readonly id = DmaMapping.#next++
  readonly dev: Device
  readonly type: MapType
  readonly dir: number
  readonly attrs: number
  readonly dma: number
  readonly size: number
  /** Physical address of the buffer the CPU uses. */
  readonly cpuPa: number
  /** Physical address the device reaches (a bounce slot when bounced). */
  readonly devPa: number
  /** CPU address (for coherent and noncoherent allocations: the one returned). */
  readonly cpu: number
  readonly slot: BounceSlot | null
  /** Page-aligned IOVA base and page count when mapped through the IOMMU, else -1 / 0. */
  readonly iova: number
  readonly iovaPages: number
  mapErr: number
  mapErrReported = false
  /** Ownership per byte range; null for coherent memory (always shared). */
  readonly own: Ownership | null
  /** The allocation holding cpuPa, for "same allocation" judgements. */
  readonly object: KObject | null
  readonly stack: readonly StackFrame[]
  /** For sg parts: the entry count passed to dma_map_sg and the head entry. */
  sgEnts = 0
  sgMapped = 0
  sgHead: object | null = null
  live = true
  /**
   * The device-visible bytes are known to be all initialised (the sanitizer then skips the init
   * shadow). Anything that can make bytes uninitialised again clears it: a CPU write into the
   * buffer (memcpy carries uninitialised bytes), a bounce copy, a free.
   */
  initKnown = false
  /** The next entry at the same DMA address (dma-debug's table). */
  nextSame: DmaMapping | null = null
  /** Set for coherent allocations that belong to a dma_pool. */
  pool: object | null = null

  constructor(init: {
    dev: Device
    type: MapType
    dir: number
    attrs: number
    dma: number
    size: number
    cpuPa: number
    devPa: number
    cpu: number
    slot: BounceSlot | null
    iova: number
    iovaPages: number
    mapErr: number
    own: Ownership | null
    object: KObject | null
    stack: readonly StackFrame[]
  }) {
    this.dev = init.dev
    this.type = init.type
    this.dir = init.dir
    this.attrs = init.attrs
    this.dma = init.dma
    this.size = init.size
    this.cpuPa = init.cpuPa
    this.devPa = init.devPa
    this.cpu = init.cpu
    this.slot = init.slot
    this.iova = init.iova
    this.iovaPages = init.iovaPages
    this.mapErr = init.mapErr
    this.own = init.own
    this.object = init.object
    this.stack = init.stack
  }
}
