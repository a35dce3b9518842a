/**
 * Load-load reordering on weakly ordered CPUs (ARMv8, RISC-V RVWMO), for CPU loads of
 * non-cacheable memory — coherent DMA memory on a non-coherent platform — that devices write.
 *
 * Documentation/memory-barriers.txt, "DMA barriers": a driver reads a descriptor's status (DD bit,
 * phase tag) and then the rest of it; "the dma_rmb() allows us to guarantee that the device has
 * released ownership before we read the data from the descriptor". Without it a weakly ordered
 * CPU may satisfy the later load first, before the device's write of that data landed, and return
 * what was there before.
 *
 * The model. Device writes to non-cacheable pages since the CPU's last read barrier are logged,
 * each with a sequence number (the device's write order) and the bytes it overwrote. A CPU load of
 * bytes whose newest logged write is *older* than one the CPU already loaded since that barrier
 * could have been performed before that write landed: with the configured probability (seeded) it
 * returns what those bytes held before the first logged write. A read barrier (rmb, dma_rmb, mb, a
 * non-relaxed readl, a sync for the CPU, interrupt entry) empties the log: every later load is
 * performed after it, when the device's writes had landed. So does the reorder window: only the
 * newest REORDER_WINDOW writes are kept (a CPU does not satisfy a load arbitrarily early). A CPU
 * store over logged bytes supersedes the device's write there for this CPU's loads. A hostile
 * device's mutated records (hostile mode) are not logged, as kernel/dma/ordering.ts does not
 * count them.
 *
 * kernel/dma/ordering.ts reports the same pattern (`missing-barrier`, case (b)) when checks are
 * on; this class makes it *happen*, with checks on or off. On TSO (x86_64) it is off.
 */

import type { Ram } from './ram.js'
import { Rng } from './rng.js'

/** The probability that a load which may be reordered returns the old value (seeded). */
export const DEFAULT_STALE_LOAD_PROBABILITY = 0.5
/** Device writes kept for reordering: older ones count as landed before any load in flight. */
export const REORDER_WINDOW = 64

/** One logged device write: where, its order, and the bytes it overwrote (the first len of old). */
interface Logged {
  pa: number
  len: number
  seq: number
  old: Uint8Array
}

export class LoadOrder {
  /** Whether loads may be reordered at all (weakly ordered platforms only). */
  readonly enabled: boolean
  /** The probability that a reorderable load is satisfied early (returns the old value). */
  readonly probability: number
  readonly #ram: Ram
  readonly #rng: Rng
  #seq = 0
  /** Device writes to non-cacheable memory since the last read barrier, oldest first. */
  readonly #log: Logged[] = []
  /** The newest device write the CPU has loaded since its last read barrier. */
  #cpuSeen = 0
  /** Loads that returned the value from before the device's write (for tests and statistics). */
  staleLoads = 0

  constructor(ram: Ram, rng: Rng, enabled: boolean, probability = DEFAULT_STALE_LOAD_PROBABILITY) {
    this.#ram = ram
    this.#rng = rng
    this.enabled = enabled
    this.probability = probability
  }

  /** A device is about to write [pa, pa+len) of non-cacheable memory: log it with the old bytes. */
  deviceWrite(pa: number, len: number): void {
    if (!this.enabled || len <= 0) return
    let w = this.#free.pop()
    if (w === undefined) w = { pa, len, seq: 0, old: new Uint8Array(Math.max(len, 16)) }
    else if (w.old.length < len) w.old = new Uint8Array(len)
    w.pa = pa
    w.len = len
    w.seq = ++this.#seq
    this.#ram.read(pa, w.old, 0, len)
    this.#log.push(w)
    if (this.#log.length > REORDER_WINDOW) this.#free.push(this.#log.shift()!)
  }

  /** Records no longer logged, kept for reuse: a write allocates nothing in the steady state. */
  readonly #free: Logged[] = []

  /** A CPU store to [pa, pa+len): the CPU's own store is what its later loads see there. */
  cpuStore(pa: number, len: number): void {
    const log = this.#log
    if (log.length === 0 || len <= 0) return
    let kept = 0
    for (const w of log) {
      if (w.pa >= pa + len || pa >= w.pa + w.len) log[kept++] = w
      else this.#free.push(w)
    }
    while (log.length > kept) log.pop()
  }

  /** A read barrier: later loads are performed after it, when every logged write had landed. */
  barrier(): void {
    this.#cpuSeen = 0
    const log = this.#log
    if (log.length > 0) {
      // pop(), not `length = 0`: setting an array's length is a runtime call (50-90 ns).
      while (log.length > 0) this.#free.push(log.pop()!)
    }
  }

  /**
   * A CPU load of [pa, pa+len) whose current contents are in dst[off..]. Bytes whose newest
   * device write is older than a write this CPU already loaded since its last read barrier may be
   * replaced, all together, by what they held before (the load was satisfied early).
   */
  load(pa: number, dst: Uint8Array, off: number, len: number): void {
    const log = this.#log
    if (log.length === 0 || len <= 0) return
    // The writes this load overlaps, oldest first: usually none, or one or two descriptor fields.
    const hits = this.#hits
    while (hits.length > 0) hits.pop()
    for (const w of log) if (w.pa < pa + len && pa < w.pa + w.len) hits.push(w)
    if (hits.length === 0) return
    const seen = this.#cpuSeen
    let early = false
    for (let a = pa; a < pa + len && !early; a++) {
      const d = newestAt(hits, a)
      if (d !== 0 && d < seen) early = true
    }
    let newest = 0
    if (early && this.#rng.chance(this.probability)) {
      for (let a = pa; a < pa + len; a++) {
        const d = newestAt(hits, a)
        if (d === 0) continue
        if (d >= seen) {
          if (d > newest) newest = d
          continue
        }
        // What the byte held before the first logged write to it.
        for (const w of hits) {
          if (a >= w.pa && a < w.pa + w.len) {
            dst[off + (a - pa)] = w.old[a - w.pa]!
            break
          }
        }
      }
      this.staleLoads++
    } else for (const w of hits) if (w.seq > newest) newest = w.seq
    if (newest > this.#cpuSeen) this.#cpuSeen = newest
    while (hits.length > 0) hits.pop()
  }

  /** Scratch for load(): the logged writes a load overlaps. */
  readonly #hits: Logged[] = []
}

/** The sequence number of the newest write in `ws` (oldest first) covering byte a (0: none). */
function newestAt(ws: readonly Logged[], a: number): number {
  for (let i = ws.length - 1; i >= 0; i--) {
    const w = ws[i]!
    if (a >= w.pa && a < w.pa + w.len) return w.seq
  }
  return 0
}
