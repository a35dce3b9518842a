/**
 * Ordering between the CPU and devices on coherent DMA memory and MMIO
 * (Documentation/memory-barriers.txt, "KERNEL I/O BARRIER EFFECTS" and dma_wmb/dma_rmb): the
 * `missing-barrier` checks.
 *
 * (a) Write order. Every CPU store to coherent memory gets a sequence number and the current
 *     write epoch; a write barrier (wmb, dma_wmb, mb) — or a non-relaxed writel, which implies
 *     one — starts a new epoch. Each device keeps the newest CPU store it has observed (by reading
 *     it, or by receiving an MMIO write). A device that reads a word stored *earlier in the same
 *     epoch* than a store it already observed relies on an order nothing guaranteed: the
 *     descriptor body read after its OWN bit, or descriptors read after a doorbell sent with
 *     writel_relaxed. Reported on every platform (on x86_64, dma_wmb is the compiler barrier that
 *     keeps the stores in order), except the writel_relaxed doorbell, which x86 orders anyway.
 * (b) Read order (load-load, weakly ordered platforms only). Each device write to coherent memory
 *     gets a sequence number. A CPU load of a word the device wrote *before* a word the CPU has
 *     already loaded since its last read barrier (rmb, dma_rmb, mb, a non-relaxed readl, a sync for
 *     the CPU) may be satisfied early with stale data: the DD-bit / phase-bit pattern without
 *     dma_rmb.
 */

import type { StackFrame } from '../debug/stack.js'
import { captureStack } from '../debug/stack.js'
import { hex } from '../mm/layout.js'
import type { System } from '../system.js'
import type { Device } from '../base/device.js'

interface Stamp {
  seq: number
  epoch: number
}

const WORDS_PER_PAGE = 1024

/**
 * Numbers per 4-byte word of physical memory, `width` per word (0: nothing recorded), in typed
 * arrays of one 4 KiB page each: a bulk store of a period of audio or a frame is a tight loop over
 * an array, not hundreds of Map operations.
 */
class WordTable {
  readonly #width: number
  readonly #pages = new Map<number, Float64Array>()
  #lastPage = -1
  #last: Float64Array | null = null

  constructor(width: number) {
    this.#width = width
  }

  /** Whether anything was ever recorded. */
  get empty(): boolean {
    return this.#pages.size === 0
  }

  /** The page array holding word w (created if asked), or null. */
  page(w: number, create: boolean): Float64Array | null {
    const p = Math.floor(w / WORDS_PER_PAGE)
    if (p === this.#lastPage) return this.#last
    let a = this.#pages.get(p) ?? null
    if (a === null) {
      if (!create) return null
      a = new Float64Array(WORDS_PER_PAGE * this.#width)
      this.#pages.set(p, a)
    }
    this.#lastPage = p
    this.#last = a
    return a
  }

  /** Value k of word w (0 when none). */
  get(w: number, k = 0): number {
    const a = this.page(w, false)
    return a === null ? 0 : a[(w % WORDS_PER_PAGE) * this.#width + k]!
  }

  /** Clears words [from, to]. */
  clear(from: number, to: number): void {
    for (let w = from; w <= to; ) {
      const a = this.page(w, false)
      const pageEnd = (Math.floor(w / WORDS_PER_PAGE) + 1) * WORDS_PER_PAGE - 1
      const last = Math.min(to, pageEnd)
      if (a !== null) a.fill(0, (w % WORDS_PER_PAGE) * this.#width, ((last % WORDS_PER_PAGE) + 1) * this.#width)
      w = last + 1
    }
  }
}

export class Ordering {
  readonly #sys: System
  readonly #weak: boolean
  #seq = 0
  #epoch = 0
  /** CPU stores to coherent memory, by 4-byte word: [seq, epoch] (seq 0: none). */
  readonly #cpuStores = new WordTable(2)
  /** The newest CPU store each device has observed, and where the relaxed MMIO write was made. */
  readonly #observed = new Map<Device, Stamp & { site: readonly StackFrame[] | null; relaxed: boolean }>()
  #devSeq = 0
  /** Device writes to coherent memory, by word: the write's sequence number (0: none). */
  readonly #devWrites = new WordTable(1)
  /** The newest device write the CPU has loaded since its last read barrier. */
  #cpuSeen = 0
  /**
   * The newest device write the CPU had loaded before its last read barrier. Every later load is
   * ordered after that load, so it sees any device write up to this one: such loads are safe in
   * any order (re-reading the flag after dma_rmb(), then the rest, is the correct pattern).
   */
  #horizon = 0

  constructor(sys: System) {
    this.#sys = sys
    this.#weak = sys.platform.weaklyOrdered
  }

  /** A CPU store to coherent memory. */
  cpuStore(pa: number, len: number): void {
    const seq = ++this.#seq
    const epoch = this.#epoch
    const from = Math.floor(pa / 4)
    const to = Math.floor((pa + len - 1) / 4)
    const stores = this.#cpuStores
    for (let w = from; w <= to; ) {
      const a = stores.page(w, true)!
      const last = Math.min(to, (Math.floor(w / WORDS_PER_PAGE) + 1) * WORDS_PER_PAGE - 1)
      for (let i = (w % WORDS_PER_PAGE) * 2, e = (last % WORDS_PER_PAGE) * 2; i <= e; i += 2) {
        a[i] = seq
        a[i + 1] = epoch
      }
      w = last + 1
    }
    // The CPU's own store supersedes what the device wrote there: a later load reads it, not the device's.
    if (!this.#devWrites.empty) this.#devWrites.clear(from, to)
  }

  /**
   * Memory [pa, pa+len) was (re)allocated: what the CPU and devices wrote there before belongs to
   * its previous life and orders nothing now.
   */
  forget(pa: number, len: number): void {
    const from = Math.floor(pa / 4)
    const to = Math.floor((pa + len - 1) / 4)
    this.#cpuStores.clear(from, to)
    this.#devWrites.clear(from, to)
  }

  /** A write barrier: a new epoch. */
  writeBarrier(): void {
    this.#epoch++
  }

  /** A read barrier: later loads are ordered after earlier ones. */
  readBarrier(): void {
    if (this.#cpuSeen > this.#horizon) this.#horizon = this.#cpuSeen
    this.#cpuSeen = 0
    // The machine's loads are ordered by it too: what they may return early is forgotten.
    this.#sys.machine.loadOrder.barrier()
  }

  /** An MMIO write to dev: the device observes it now (relaxed: without an implied barrier). */
  mmioWrite(dev: Device, relaxed: boolean): void {
    const ordered = !relaxed || !this.#weak
    if (ordered) this.#epoch++
    const site = relaxed && this.#sys.checks.stacks ? captureStack() : null
    const o = this.#observed.get(dev)
    if (o === undefined) this.#observed.set(dev, { seq: ++this.#seq, epoch: this.#epoch, site, relaxed: !ordered })
    else {
      // Each device's stamp is its own object (deviceRead copies): update it in place.
      o.seq = ++this.#seq
      o.epoch = this.#epoch
      o.site = site
      o.relaxed = !ordered
    }
  }

  /** A device read of coherent memory [pa, pa+len). */
  deviceRead(dev: Device, pa: number, len: number): void {
    const obs = this.#observed.get(dev)
    const stores = this.#cpuStores
    if (stores.empty) return
    let newestSeq = 0
    let newestEpoch = 0
    const to = Math.floor((pa + len - 1) / 4)
    for (let w = Math.floor(pa / 4); w <= to; ) {
      const a = stores.page(w, false)
      const last = Math.min(to, (Math.floor(w / WORDS_PER_PAGE) + 1) * WORDS_PER_PAGE - 1)
      if (a !== null) {
        for (let x = w; x <= last; x++) {
          const i = (x % WORDS_PER_PAGE) * 2
          const seq = a[i]!
          if (seq === 0) continue
          const epoch = a[i + 1]!
          if (obs !== undefined && epoch === obs.epoch && seq < obs.seq) {
            this.#report(dev, x * 4, obs)
            return
          }
          if (seq > newestSeq) {
            newestSeq = seq
            newestEpoch = epoch
          }
        }
      }
      w = last + 1
    }
    if (newestSeq !== 0 && (obs === undefined || newestSeq > obs.seq)) this.#observed.set(dev, { seq: newestSeq, epoch: newestEpoch, site: null, relaxed: false })
  }

  #report(dev: Device, pa: number, obs: Stamp & { site: readonly StackFrame[] | null; relaxed: boolean }): void {
    const sys = this.#sys
    sys.report({
      kind: 'missing-barrier',
      device: dev.name,
      message: obs.relaxed
        ? `the device read [phys=${hex(pa)}], which the CPU wrote before a writel_relaxed() the device had already received: nothing ordered the memory write before the MMIO write. Use writel(), or dma_wmb() before writel_relaxed()`
        : `the device read [phys=${hex(pa)}] after a later CPU store to coherent memory that it had already observed, with no dma_wmb() between the two stores: it may see the old contents (e.g. a descriptor body read after its ownership bit)`,
      ...(obs.site !== null && obs.site.length > 0 ? { stacks: [{ label: 'relaxed MMIO write', frames: obs.site }] } : {}),
      details: { phys: pa },
      key: `${dev.name}|${obs.relaxed ? 'relaxed' : 'store'}`,
    })
  }

  /** A device write to coherent memory. */
  deviceWrite(pa: number, len: number): void {
    const seq = ++this.#devSeq
    const to = Math.floor((pa + len - 1) / 4)
    for (let w = Math.floor(pa / 4); w <= to; ) {
      const a = this.#devWrites.page(w, true)!
      const last = Math.min(to, (Math.floor(w / WORDS_PER_PAGE) + 1) * WORDS_PER_PAGE - 1)
      a.fill(seq, w % WORDS_PER_PAGE, (last % WORDS_PER_PAGE) + 1)
      w = last + 1
    }
  }

  /** A CPU load of coherent memory. */
  cpuLoad(pa: number, len: number): void {
    if (!this.#weak || this.#devWrites.empty) return
    let newest = 0
    const to = Math.floor((pa + len - 1) / 4)
    for (let w = Math.floor(pa / 4); w <= to; w++) {
      const d = this.#devWrites.get(w)
      if (d === 0 || d <= this.#horizon) continue
      if (d < this.#cpuSeen) {
        this.#sys.report({
          kind: 'missing-barrier',
          message: `CPU load of [phys=${hex(w * 4)}], which the device wrote before a location this CPU already read, with no dma_rmb() in between: on a weakly ordered CPU the load may return stale data (read the ownership/phase bit, then dma_rmb(), then the rest)`,
          details: { phys: w * 4 },
        })
        this.#cpuSeen = 0
        return
      }
      if (d > newest) newest = d
    }
    if (newest > this.#cpuSeen) this.#cpuSeen = newest
  }
}
