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

/** A buffered store; its bytes live in a reusable slot (stores are a few bytes, at most a line or so). */
interface Store {
  pa: number
  len: number
  bytes: Uint8Array
}

const SLOT_BYTES = 64

export class StoreBuffer {
  /** Whether stores are buffered at all (weakly ordered platforms only). */
  readonly enabled: boolean
  /** Entries the buffer holds before it must drain one (seeded per machine, 4..8). */
  readonly capacity: number
  readonly #ram: Ram
  readonly #rng: Rng
  readonly #entries: Store[] = []
  /** Drained entries kept for reuse: the buffer allocates nothing per store in the steady state. */
  readonly #free: Store[] = []
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
    let st = this.#free.pop()
    if (st === undefined) st = { pa, len, bytes: new Uint8Array(Math.max(SLOT_BYTES, len)) }
    else if (st.bytes.length < len) st.bytes = new Uint8Array(len)
    st.pa = pa
    st.len = len
    const b = st.bytes
    if (len <= 16) for (let i = 0; i < len; i++) b[i] = src[off + i]!
    else b.set(off === 0 && len === src.length ? src : src.subarray(off, off + len))
    this.#entries.push(st)
    while (this.#entries.length > this.capacity) this.#drainOne()
  }

  /** Scratch: which entries may drain now (no older store to an overlapping address is buffered). */
  #eligible = new Uint8Array(16)

  /** Drains one store, chosen by the seeded generator among those that may go first. */
  #drainOne(): void {
    const e = this.#entries
    if (this.#eligible.length < e.length) this.#eligible = new Uint8Array(e.length * 2)
    const ok = this.#eligible
    let eligible = 0
    for (let i = 0; i < e.length; i++) {
      const s = e[i]!
      let may = 1
      for (let j = 0; j < i; j++) {
        const o = e[j]!
        if (o.pa < s.pa + s.len && s.pa < o.pa + o.len) {
          may = 0
          break
        }
      }
      ok[i] = may
      eligible += may
    }
    let k = this.#rng.int(eligible)
    let pick = 0
    for (let i = 0; i < e.length; i++) {
      if (ok[i] === 1 && k-- === 0) {
        pick = i
        break
      }
    }
    if (pick !== 0) this.reordered++
    const s = e[pick]!
    for (let i = pick; i < e.length - 1; i++) e[i] = e[i + 1]!
    e.pop()
    this.#ram.write(s.pa, s.bytes, 0, s.len)
    this.#free.push(s)
  }

  /** Drains every buffered store in program order (a barrier). */
  drain(): void {
    const e = this.#entries
    if (e.length === 0) return
    for (const s of e) {
      this.#ram.write(s.pa, s.bytes, 0, s.len)
      this.#free.push(s)
    }
    // pop(), not `length = 0`: setting an array's length is a runtime call (50-90 ns).
    while (e.length > 0) e.pop()
  }

  /** Overlays buffered stores onto a CPU load of [pa, pa+len) into dst[off..] (forwarding). */
  forward(pa: number, dst: Uint8Array, off: number, len: number): void {
    for (const s of this.#entries) {
      const from = Math.max(pa, s.pa)
      const to = Math.min(pa + len, s.pa + s.len)
      for (let a = from; a < to; a++) dst[off + (a - pa)] = s.bytes[a - s.pa]!
    }
  }

  /** Whether any buffered store overlaps [pa, pa+len). */
  holds(pa: number, len: number): boolean {
    for (const s of this.#entries) if (s.pa < pa + len && pa < s.pa + s.len) return true
    return false
  }
}
