/**
 * `struct device` as the DMA API sees it (include/linux/device.h): a name, the streaming and
 * coherent DMA masks, whether the device is DMA coherent, its IOMMU/IOVA state, the dma-debug
 * entries it holds and its managed (devres) resources.
 */

import type { DmaPort } from '../../devices/index.js'
import type { DmaMapping } from '../dma/types.js'
import type { IovaDomain } from '../dma/iova.js'
import type { System } from '../system.js'

/** The dma-debug entries of one device (kernel/dma/debug.c's hash, per device). */
export class DebugTable {
  readonly #byDma = new Map<number, DmaMapping[]>()
  /** All entries sorted by DMA address, for containing look-ups. */
  readonly #sorted: DmaMapping[] = []

  get size(): number {
    return this.#sorted.length
  }

  all(): readonly DmaMapping[] {
    return this.#sorted
  }

  add(m: DmaMapping): void {
    const list = this.#byDma.get(m.dma)
    if (list === undefined) this.#byDma.set(m.dma, [m])
    else list.push(m)
    const s = this.#sorted
    let lo = 0
    let hi = s.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (s[mid]!.dma <= m.dma) lo = mid + 1
      else hi = mid
    }
    s.splice(lo, 0, m)
  }

  remove(m: DmaMapping): void {
    const list = this.#byDma.get(m.dma)
    if (list !== undefined) {
      const i = list.indexOf(m)
      if (i >= 0) list.splice(i, 1)
      if (list.length === 0) this.#byDma.delete(m.dma)
    }
    const j = this.#sorted.lastIndexOf(m)
    if (j >= 0) this.#sorted.splice(j, 1)
  }

  /** Entries whose DMA address is exactly dma. */
  exact(dma: number): readonly DmaMapping[] {
    return this.#byDma.get(dma) ?? []
  }

  /** The entry containing all of [dma, dma+size), else undefined. */
  containing(dma: number, size: number): DmaMapping | undefined {
    const exact = this.#byDma.get(dma)
    if (exact !== undefined) for (const m of exact) if (size <= m.size) return m
    const s = this.#sorted
    let lo = 0
    let hi = s.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (s[mid]!.dma <= dma) lo = mid + 1
      else hi = mid
    }
    for (let i = lo - 1; i >= 0; i--) {
      const m = s[i]!
      if (dma + size <= m.dma + m.size) return m
    }
    return undefined
  }

  /** An entry containing dma (start only), for out-of-range diagnosis. */
  holding(dma: number): DmaMapping | undefined {
    for (const m of this.#sorted) if (dma >= m.dma && dma < m.dma + m.size) return m
    return undefined
  }
}

export interface Devres {
  readonly what: string
  release(): void
}

export class Device {
  readonly name: string
  readonly sys: System
  readonly port: DmaPort
  /** The streaming DMA mask (`*dev->dma_mask`). */
  dma_mask: bigint
  /** The coherent DMA mask (`dev->coherent_dma_mask`). */
  coherent_dma_mask: bigint
  /** `dev_is_dma_coherent()`: device accesses snoop the CPU cache. */
  readonly dma_coherent: boolean
  /** dma-debug entries: live mappings and allocations. */
  readonly entries = new DebugTable()
  /** Live dma_pools created for this device. */
  readonly pools = new Set<{ readonly name: string; readonly busy: number }>()
  /** Managed resources, released at unbind in reverse order. */
  readonly devres: Devres[] = []
  /** IOVA allocator when the device sits behind an IOMMU. */
  readonly iovad: IovaDomain | null
  bound = true

  constructor(sys: System, name: string, port: DmaPort, mask: bigint, iovad: IovaDomain | null) {
    this.sys = sys
    this.name = name
    this.port = port
    this.dma_mask = mask
    this.coherent_dma_mask = mask
    this.dma_coherent = port.coherent
    this.iovad = iovad
    port.opaque = this
  }

  /** The streaming mask as a number (addresses are below 2^53). */
  get dmaLimit(): number {
    return maskToLimit(this.dma_mask)
  }

  get coherentLimit(): number {
    return maskToLimit(this.coherent_dma_mask)
  }

  toString(): string {
    return this.name
  }
}

export function maskToLimit(mask: bigint): number {
  return mask >= 2n ** 53n - 1n ? 2 ** 53 - 1 : Number(mask)
}
