/**
 * The CPU's store buffer for non-cacheable memory on weakly ordered platforms (ARMv8 "Normal
 * Non-cacheable" and Device memory, RISC-V RVWMO): stores leave the CPU in program order but may
 * become visible to devices out of order until a barrier. dmalab buffers CPU stores to
 * non-cacheable pages (coherent DMA memory); they drain
 *   - all, in program order, at a write barrier (wmb, dma_wmb, mb) and before a non-relaxed
 *     MMIO write (writel orders earlier stores, writel_relaxed does not),
 *   - all, when the task sleeps,
 *   - one at a time, in a seeded order, when the buffer is full — so between barriers the order in
 *     which a device sees stores is not program order.
 * Stores to the same address always drain in program order, and the CPU's own loads see its
 * buffered stores (store-to-load forwarding). On a TSO platform (x86_64) the buffer is off.
 */

import type { Ram } from './ram.js'
import type { Rng } from './rng.js'

interface Store {
  readonly pa: number
  readonly bytes: Uint8Array
}

export class StoreBuffer {
  /** Whether stores are buffered at all (weakly ordered platforms only). */
  readonly enabled: boolean
  /** Entries the buffer holds before it must drain one (seeded per machine, 4..8). */
  readonly capacity: number
  readonly #ram: Ram
  readonly #rng: Rng
  readonly #entries: Store[] = []
  /** Stores drained out of program order (for tests and statistics). */
  reordered = 0

  constructor(ram: Ram, rng: Rng, enabled: boolean) {
    this.#ram = ram
    this.#rng = rng
    this.enabled = enabled
    this.capacity = 4 + rng.int(5)
  }

  get pending(): number {
    return this.#entries.length
  }

  /** A CPU store of len bytes of src at pa (non-cacheable memory). */
  store(pa: number, src: Uint8Array, off: number, len: number): void {
    if (!this.enabled) {
      this.#ram.write(pa, src, off, len)
      return
    }
    this.#entries.push({ pa, bytes: src.slice(off, off + len) })
    while (this.#entries.length > this.capacity) this.#drainOne()
  }

  /** Drains one store, chosen by the seeded generator among those that may go first. */
  #drainOne(): void {
    const e = this.#entries
    // A store may drain only if no older store to an overlapping address is still buffered.
    const eligible: number[] = []
    for (let i = 0; i < e.length; i++) {
      const s = e[i]!
      let blocked = false
      for (let j = 0; j < i; j++) {
        const o = e[j]!
        if (o.pa < s.pa + s.bytes.length && s.pa < o.pa + o.bytes.length) {
          blocked = true
          break
        }
      }
      if (!blocked) eligible.push(i)
    }
    const pick = eligible[this.#rng.int(eligible.length)]!
    if (pick !== 0) this.reordered++
    const [s] = e.splice(pick, 1)
    this.#ram.write(s!.pa, s!.bytes, 0, s!.bytes.length)
  }

  /** Drains every buffered store in program order (a barrier). */
  drain(): void {
    if (this.#entries.length === 0) return
    for (const s of this.#entries) this.#ram.write(s.pa, s.bytes, 0, s.bytes.length)
    this.#entries.length = 0
  }

  /** Overlays buffered stores onto a CPU load of [pa, pa+len) into dst[off..] (forwarding). */
  forward(pa: number, dst: Uint8Array, off: number, len: number): void {
    for (const s of this.#entries) {
      const from = Math.max(pa, s.pa)
      const to = Math.min(pa + len, s.pa + s.bytes.length)
      if (from < to) dst.set(s.bytes.subarray(from - s.pa, to - s.pa), off + (from - pa))
    }
  }

  /** Whether any buffered store overlaps [pa, pa+len). */
  holds(pa: number, len: number): boolean {
    for (const s of this.#entries) if (s.pa < pa + len && pa < s.pa + s.bytes.length) return true
    return false
  }
}
