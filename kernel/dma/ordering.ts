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
 *     gets a sequence number, kept per byte. A CPU load of bytes the device wrote *before* bytes
 *     the CPU has already loaded since its last read barrier (rmb, dma_rmb, mb, a non-relaxed
 *     readl, a sync for the CPU) may be satisfied early with stale data: the DD-bit / phase-bit
 *     pattern without dma_rmb (devices/machine/load-order.ts makes it happen).
 */

import type { StackFrame } from '../debug/stack.js'
import { captureStack } from '../debug/stack.js'
import { hex } from '../mm/layout.js'
import type { System } from '../system.js'
import type { Device } from '../base/device.js'

/**
 * The newest CPU store a device has observed: its sequence number, and the first sequence number
 * of its write epoch (sequence numbers only grow and epochs only grow with them, so "stored in the
 * same epoch, earlier" is exactly "first <= seq < this seq").
 */
interface Stamp {
  seq: number
  first: number
}

const WORDS_PER_PAGE = 1024
/** CPU stores remembered by extent (see Ordering.#recentFrom). */
const RECENT = 16
/** Device reads of at least this many words try the extent of the newest overlapping store first. */
const SCAN_WORDS = 16
const PAGE_BYTES = 4096

/**
 * a[from..to) = v. TypedArray.prototype.fill costs some 28 ns to start (a builtin call), an element
 * store about 1 ns: below 24 elements a loop is faster (measured).
 */
function fillRange(a: Uint32Array, v: number, from: number, to: number): void {
  if (to - from < 24) for (let i = from; i < to; i++) a[i] = v
  else a.fill(v, from, to)
}

/**
 * One 32-bit number per unit of physical memory — a 4-byte word, or a byte — (0: nothing
 * recorded), in typed arrays of one 4 KiB page each: a bulk store of a period of audio or a frame
 * is one fill of an array, not hundreds of Map operations.
 */
class WordTable {
  /** Units per 4 KiB page: 1024 for 4-byte words, 4096 for bytes. */
  readonly #perPage: number
  readonly #pages = new Map<number, Uint32Array>()
  #lastPage = -1
  #last: Uint32Array | null = null

  constructor(perPage = WORDS_PER_PAGE) {
    this.#perPage = perPage
  }

  /** Whether anything was ever recorded. */
  get empty(): boolean {
    return this.#pages.size === 0
  }

  /** The unit index of w within its page array (w % perPage, without a double fmod). */
  index(w: number): number {
    return w - Math.floor(w / this.#perPage) * this.#perPage
  }

  /** The last unit of the page holding unit w. */
  pageEnd(w: number): number {
    return (Math.floor(w / this.#perPage) + 1) * this.#perPage - 1
  }

  /** The page array holding unit w (created if asked), or null. */
  page(w: number, create: boolean): Uint32Array | null {
    const p = Math.floor(w / this.#perPage)
    if (p === this.#lastPage) return this.#last
    let a = this.#pages.get(p) ?? null
    if (a === null) {
      if (!create) return null
      a = new Uint32Array(this.#perPage)
      this.#pages.set(p, a)
    }
    this.#lastPage = p
    this.#last = a
    return a
  }

  /** Forgets everything recorded. */
  reset(): void {
    this.#pages.clear()
    this.#lastPage = -1
    this.#last = null
  }

  /** Value k of unit w (0 when none). */
  get(w: number): number {
    const a = this.page(w, false)
    return a === null ? 0 : a[this.index(w)]!
  }

  /** Clears units [from, to]. */
  clear(from: number, to: number): void {
    for (let w = from; w <= to; ) {
      const a = this.page(w, false)
      const last = Math.min(to, this.pageEnd(w))
      if (a !== null) fillRange(a, 0, this.index(w), this.index(last) + 1)
      w = last + 1
    }
  }
}

export class Ordering {
  readonly #sys: System
  readonly #weak: boolean
  #seq = 0
  /** The first sequence number of the current write epoch (a barrier starts a new one). */
  #epochFirst = 1
  /** CPU stores to coherent memory, by 4-byte word: the store's sequence number (0: none)... */
  readonly #cpuStores = new WordTable()
  /** ...and the first sequence number of its epoch. Two planes, so that a bulk store is two fills. */
  readonly #cpuEpochs = new WordTable()
  /**
   * The word ranges of the last RECENT CPU stores, newest at #recentHead - 1 (a ring): a device read
   * inside the newest store that overlaps it sees that one store in every word, and needs no scan.
   */
  readonly #recentFrom = new Float64Array(RECENT)
  readonly #recentTo = new Float64Array(RECENT)
  readonly #recentSeq = new Float64Array(RECENT)
  readonly #recentFirst = new Float64Array(RECENT)
  #recentHead = 0
  #recentCount = 0
  /** The newest CPU store each device has observed, and where the relaxed MMIO write was made. */
  readonly #observed = new Map<Device, Stamp & { site: readonly StackFrame[] | null; relaxed: boolean }>()
  #devSeq = 0
  /**
   * Device writes to coherent memory, by byte: the write's sequence number (0: none). Bytes, not
   * words: an NVMe CQE's command id and its status share a word but not a write.
   */
  readonly #devWrites = new WordTable(PAGE_BYTES)
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

  /**
   * Sequence numbers are 32-bit in the tables (half the memory traffic of doubles for a bulk
   * store); when one runs out, what was recorded is forgotten and numbering starts again. It
   * happens after some four billion stores, or device writes, and can only hide a report, never
   * make one.
   */
  #seqLimit = 0xffff_fff0

  /** For tests: makes the sequence numbers run out after n. */
  setSeqLimitForTests(n: number): void {
    this.#seqLimit = n
  }

  #nextSeq(): number {
    if (this.#seq >= this.#seqLimit) {
      this.#cpuStores.reset()
      this.#cpuEpochs.reset()
      this.#observed.clear()
      this.#recentCount = 0
      this.#seq = 0
      this.#epochFirst = 1
    }
    return ++this.#seq
  }

  /** A CPU store to coherent memory. */
  cpuStore(pa: number, len: number): void {
    const seq = this.#nextSeq()
    const first = this.#epochFirst
    const from = Math.floor(pa / 4)
    const to = Math.floor((pa + len - 1) / 4)
    const stores = this.#cpuStores
    const epochs = this.#cpuEpochs
    if (from === to) {
      // One word (a field of a descriptor): two stores, not two fills.
      const i = stores.index(from)
      stores.page(from, true)![i] = seq
      epochs.page(from, true)![i] = first
    } else {
      for (let w = from; w <= to; ) {
        const last = Math.min(to, stores.pageEnd(w))
        const i = stores.index(w)
        const e = stores.index(last) + 1
        fillRange(stores.page(w, true)!, seq, i, e)
        fillRange(epochs.page(w, true)!, first, i, e)
        w = last + 1
      }
    }
    const h = this.#recentHead
    this.#recentFrom[h] = from
    this.#recentTo[h] = to
    this.#recentSeq[h] = seq
    this.#recentFirst[h] = first
    this.#recentHead = h + 1 === RECENT ? 0 : h + 1
    if (this.#recentCount < RECENT) this.#recentCount++
    // The CPU's own store supersedes what the device wrote there: a later load reads it, not the device's.
    if (!this.#devWrites.empty) this.#devWrites.clear(pa, pa + len - 1)
  }

  /**
   * Memory [pa, pa+len) was (re)allocated: what the CPU and devices wrote there before belongs to
   * its previous life and orders nothing now.
   */
  forget(pa: number, len: number): void {
    const from = Math.floor(pa / 4)
    const to = Math.floor((pa + len - 1) / 4)
    this.#cpuStores.clear(from, to)
    this.#cpuEpochs.clear(from, to)
    this.#recentCount = 0
    this.#devWrites.clear(pa, pa + len - 1)
  }

  /** A write barrier: a new epoch. */
  writeBarrier(): void {
    this.#epochFirst = this.#seq + 1
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
    const seq = this.#nextSeq()
    // An ordered MMIO write starts a new epoch with itself.
    if (ordered) this.#epochFirst = seq
    const site = relaxed && this.#sys.checks.stacks ? captureStack() : null
    const o = this.#observed.get(dev)
    if (o === undefined) this.#observed.set(dev, { seq, first: this.#epochFirst, site, relaxed: !ordered })
    else {
      // Each device's stamp is its own object (deviceRead copies): update it in place.
      o.seq = seq
      o.first = this.#epochFirst
      o.site = site
      o.relaxed = !ordered
    }
  }

  /** A device read of coherent memory [pa, pa+len). */
  deviceRead(dev: Device, pa: number, len: number): void {
    const stores = this.#cpuStores
    if (stores.empty) return
    const obs = this.#observed.get(dev)
    // A store in the observed store's epoch but before it: first <= seq < obs.seq (never for seq 0).
    const lo = obs === undefined ? Infinity : obs.first
    const hi = obs === undefined ? 0 : obs.seq
    const from = Math.floor(pa / 4)
    const to = Math.floor((pa + len - 1) / 4)
    if (to - from >= SCAN_WORDS) {
      // The newest store that overlaps the read: if it covers all of it, every word holds that store.
      for (let k = 0, h = this.#recentHead; k < this.#recentCount; k++) {
        h = h === 0 ? RECENT - 1 : h - 1
        if (this.#recentTo[h]! < from || this.#recentFrom[h]! > to) continue
        if (this.#recentFrom[h]! > from || this.#recentTo[h]! < to) break
        const seq = this.#recentSeq[h]!
        if (seq < hi && seq >= lo) this.#report(dev, from * 4, obs!)
        else if (obs === undefined || seq > obs.seq) this.#observed.set(dev, { seq, first: this.#recentFirst[h]!, site: null, relaxed: false })
        return
      }
    }
    let newest = 0
    let newestWord = 0
    for (let w = from; w <= to; ) {
      const a = stores.page(w, false)
      const last = Math.min(to, stores.pageEnd(w))
      if (a !== null) {
        const base = w - stores.index(w)
        for (let i = stores.index(w), e = stores.index(last); i <= e; i++) {
          const seq = a[i]!
          if (seq > newest) {
            newest = seq
            newestWord = base + i
          }
          if (seq < hi && seq >= lo) {
            this.#report(dev, (base + i) * 4, obs!)
            return
          }
        }
      }
      w = last + 1
    }
    if (newest !== 0 && (obs === undefined || newest > obs.seq)) {
      this.#observed.set(dev, { seq: newest, first: this.#cpuEpochs.get(newestWord), site: null, relaxed: false })
    }
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
    if (this.#devSeq >= this.#seqLimit) {
      this.#devWrites.reset()
      this.#devSeq = 0
      this.#cpuSeen = 0
      this.#horizon = 0
    }
    const seq = ++this.#devSeq
    const writes = this.#devWrites
    const to = pa + len - 1
    for (let b = pa; b <= to; ) {
      const a = writes.page(b, true)!
      const last = Math.min(to, writes.pageEnd(b))
      fillRange(a, seq, writes.index(b), writes.index(last) + 1)
      b = last + 1
    }
  }

  /** A CPU load of coherent memory. */
  cpuLoad(pa: number, len: number): void {
    const writes = this.#devWrites
    if (!this.#weak || writes.empty) return
    const horizon = this.#horizon
    const seen = this.#cpuSeen
    let newest = 0
    const to = pa + len - 1
    for (let b = pa; b <= to; ) {
      const a = writes.page(b, false)
      const last = Math.min(to, writes.pageEnd(b))
      if (a !== null) {
        const base = b - writes.index(b)
        for (let i = writes.index(b), e = writes.index(last); i <= e; i++) {
          const d = a[i]!
          if (d <= horizon) continue
          if (d < seen) {
            this.#sys.report({
              kind: 'missing-barrier',
              message: `CPU load of [phys=${hex(base + i)}], which the device wrote before a location this CPU already read, with no dma_rmb() in between: on a weakly ordered CPU the load may return stale data (read the ownership/phase bit, then dma_rmb(), then the rest)`,
              details: { phys: base + i },
            })
            this.#cpuSeen = 0
            return
          }
          if (d > newest) newest = d
        }
      }
      b = last + 1
    }
    if (newest > this.#cpuSeen) this.#cpuSeen = newest
  }
}
