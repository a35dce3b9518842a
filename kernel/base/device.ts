/**
 * `struct device` as the DMA API sees it (include/linux/device.h): a name, the streaming and
 * coherent DMA masks, whether the device is DMA coherent, its IOMMU/IOVA state, the dma-debug
 * entries it holds and its managed (devres) resources.
 */

import type { DmaPort } from '../../devices/index.js'
import type { DmaMapping } from '../dma/types.js'
import type { IovaDomain } from '../dma/iova.js'
import type { System } from '../system.js'
import { insertAt, lowerBound, removeAt } from '../lib/sorted.js'

const byDma = (m: DmaMapping) => m.dma

/** The dma-debug entries of one device (kernel/dma/debug.c's hash, per device). */
export class DebugTable {
  /**
   * Entries by exact DMA address; several at one address are chained through `nextSame`. A
   * removed address keeps its key (null) until tombstones outnumber live keys, so a map/unmap loop
   * does not make the hash table shrink and grow on every pair.
   */
  #byDma = new Map<number, DmaMapping | null>()
  #tombstones = 0
  /** All entries sorted by DMA address, for containing look-ups. */
  readonly #sorted: DmaMapping[] = []
  /** The largest size ever added (bounds the backward walk of look-ups). */
  #maxSize = 0

  get size(): number {
    return this.#sorted.length
  }

  all(): readonly DmaMapping[] {
    return this.#sorted
  }

  #lowerBound(dma: number): number {
    return lowerBound(this.#sorted, dma, byDma)
  }

  add(m: DmaMapping): void {
    if (m.size > this.#maxSize) this.#maxSize = m.size
    const head = this.#byDma.get(m.dma)
    if (head === null) this.#tombstones--
    m.nextSame = head ?? null
    this.#byDma.set(m.dma, m)
    const s = this.#sorted
    if (s.length === 0 || s[s.length - 1]!.dma <= m.dma) s.push(m)
    else insertAt(s, this.#lowerBound(m.dma), m)
  }

  remove(m: DmaMapping): void {
    const head = this.#byDma.get(m.dma)
    if (head === m) {
      this.#byDma.set(m.dma, m.nextSame)
      if (m.nextSame === null && ++this.#tombstones > 64 && this.#tombstones > this.#byDma.size / 2) this.#compact()
    } else {
      for (let x: DmaMapping | null | undefined = head; x != null; x = x.nextSame) {
        if (x.nextSame === m) {
          x.nextSame = m.nextSame
          break
        }
      }
    }
    m.nextSame = null
    const s = this.#sorted
    if (s.length === 1 && s[0] === m) s.pop()
    else {
      for (let i = this.#lowerBound(m.dma); i < s.length && s[i]!.dma === m.dma; i++) {
        if (s[i] === m) {
          removeAt(s, i)
          break
        }
      }
    }
  }

  #compact(): void {
    const fresh = new Map<number, DmaMapping | null>()
    for (const [k, v] of this.#byDma) if (v !== null) fresh.set(k, v)
    this.#byDma = fresh
    this.#tombstones = 0
  }

  /** Entries whose DMA address is exactly dma. */
  exact(dma: number): DmaMapping[] {
    const out: DmaMapping[] = []
    for (let x = this.#byDma.get(dma) ?? null; x !== null; x = x.nextSame) out.push(x)
    return out
  }

  /** The first entry at exactly dma, or undefined. */
  first(dma: number): DmaMapping | undefined {
    return this.#byDma.get(dma) ?? undefined
  }

  /** The entry containing all of [dma, dma+size), else undefined. */
  containing(dma: number, size: number): DmaMapping | undefined {
    for (let x = this.#byDma.get(dma) ?? null; x !== null; x = x.nextSame) if (size <= x.size) return x
    const s = this.#sorted
    for (let i = this.#lowerBound(dma + 1) - 1; i >= 0; i--) {
      const m = s[i]!
      if (dma + size <= m.dma + m.size) return m
      if (dma - m.dma >= this.#maxSize) break
    }
    return undefined
  }

  /** An entry containing the address dma, if any. */
  holding(dma: number): DmaMapping | undefined {
    const s = this.#sorted
    for (let i = this.#lowerBound(dma + 1) - 1; i >= 0; i--) {
      const m = s[i]!
      if (dma < m.dma + m.size) return m
      if (dma - m.dma >= this.#maxSize) break
    }
    return undefined
  }

  /** The lowest entry start above dma, if any. */
  nextStart(dma: number): number | undefined {
    return this.#sorted[this.#lowerBound(dma + 1)]?.dma
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
  #dmaMask = 0n
  #coherentMask = 0n
  /** The streaming mask as a number (addresses are below 2^53). */
  dmaLimit = 0
  coherentLimit = 0
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

  /** The streaming DMA mask (`*dev->dma_mask`). */
  get dma_mask(): bigint {
    return this.#dmaMask
  }
  set dma_mask(mask: bigint) {
    this.#dmaMask = mask
    this.dmaLimit = maskToLimit(mask)
  }

  /** The coherent DMA mask (`dev->coherent_dma_mask`). */
  get coherent_dma_mask(): bigint {
    return this.#coherentMask
  }
  set coherent_dma_mask(mask: bigint) {
    this.#coherentMask = mask
    this.coherentLimit = maskToLimit(mask)
  }

  toString(): string {
    return this.name
  }
}

export function maskToLimit(mask: bigint): number {
  return mask >= 2n ** 53n - 1n ? 2 ** 53 - 1 : Number(mask)
}
