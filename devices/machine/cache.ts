/**
 * The CPU data cache: write-back, write-allocate, set-associative, seeded eviction and seeded
 * speculative fills.
 *
 * Models what matters for DMA coherence on an ARMv8 SoC (ARM ARM D7 "Caches"): the point of
 * coherency is DRAM; CPU loads and stores go through the cache; a non-coherent device sees DRAM
 * only, so dirty lines hide CPU writes from it and clean lines hide its writes from the CPU.
 * Maintenance by range mirrors arm64's `dc cvac` (clean), `dc ivac` (invalidate) and `dc civac`
 * (clean+invalidate), and `invalPoc` implements `dcache_inval_poc` from arch/arm64/mm/cache.S:
 * partial lines at either end are cleaned and invalidated, whole lines only invalidated.
 * On a coherent interconnect a device read snoops dirty lines and a device write invalidates them.
 * Pages marked non-cacheable (coherent DMA memory on a non-coherent platform) bypass the cache.
 */

import type { Ram } from './ram.js'
import type { Rng } from './rng.js'
import type { StoreBuffer } from './store-buffer.js'
import type { LoadOrder } from './load-order.js'

export interface CacheConfig {
  /** Line size in bytes: a power of two from 16 to 512. */
  readonly lineSize: number
  /**
   * Capacity in bytes: lineSize × ways × a power of two (the set count), at most MAX_CACHE_SIZE.
   */
  readonly size: number
  /** Associativity (ways per set). */
  readonly ways: number
  /** Probability, per CPU access, of a speculative fill of a neighbouring line (0 turns it off). */
  readonly speculation: number
}

/**
 * The largest cache size: 256 MiB. Real last-level caches are a few MiB to a few hundred MiB, and
 * the model keeps the whole cache in host memory (size bytes of data plus 9 bytes of tag and
 * state per line, about 1.6 × size with 16-byte lines), allocated at boot.
 */
export const MAX_CACHE_SIZE = 256 * 1024 * 1024

export const DEFAULT_CACHE_CONFIG: CacheConfig = {
  lineSize: 64,
  size: 512 * 1024,
  ways: 8,
  speculation: 0.05,
}

export type LineState = 'invalid' | 'clean' | 'dirty'

const INVALID = 0
const CLEAN = 1
const DIRTY = 2
const M_CLEAN = 0
const M_INVAL = 1
const M_CIVAC = 2
const M_INVAL_POC = 3
const M_SNOOP_WRITE = 4
const PAGE_SHIFT = 12
const PAGE_SIZE = 1 << PAGE_SHIFT
const INFO_SECTION = 1024

interface PageInfo {
  /** Number of this page's lines currently in the cache. */
  lines: number
  /** How many of them are dirty. */
  dirty: number
  /** Memory type: true for non-cacheable (Device/Normal-NC) pages. */
  uncached: boolean
}

export interface CacheStats {
  hits: number
  misses: number
  evictions: number
  writebacks: number
  speculativeFills: number
  /** Lines visited by maintenance operations (clean/invalidate), for the cost model. */
  maintainedLines: number
}

export class CpuCache {
  readonly lineSize: number
  readonly lineShift: number
  readonly sets: number
  readonly ways: number
  readonly speculation: number
  readonly stats: CacheStats = {
    hits: 0,
    misses: 0,
    evictions: 0,
    writebacks: 0,
    speculativeFills: 0,
    maintainedLines: 0,
  }
  readonly #ram: Ram
  readonly #rng: Rng
  readonly #tags: Float64Array
  readonly #state: Uint8Array
  readonly #data: Uint8Array
  readonly #pages = new Map<number, (PageInfo | undefined)[]>()
  #lastSection = -1
  #lastInfos: (PageInfo | undefined)[] | undefined = undefined
  readonly #linesPerPage: number
  /** Where CPU stores to non-cacheable pages go (a weakly ordered CPU's store buffer), if any. */
  storeBuffer: StoreBuffer | null = null
  /** Load-load reordering of CPU loads of non-cacheable pages (weakly ordered CPUs), if any. */
  loadOrder: LoadOrder | null = null

  constructor(ram: Ram, rng: Rng, config: CacheConfig = DEFAULT_CACHE_CONFIG) {
    const { lineSize, size, ways, speculation } = config
    // Exact for every safe integer (a bitwise test would look at the low 32 bits only).
    const pow2 = (x: number): boolean => {
      if (!Number.isSafeInteger(x) || x <= 0) return false
      while (x > 1) {
        if (x % 2 !== 0) return false
        x /= 2
      }
      return true
    }
    if (!pow2(lineSize) || lineSize < 16 || lineSize > 512) {
      throw new RangeError(`cache.lineSize must be a power of two from 16 to 512, got ${lineSize}`)
    }
    if (!Number.isInteger(ways) || ways < 1 || ways > 64) {
      throw new RangeError(`cache.ways must be an integer from 1 to 64, got ${ways}`)
    }
    if (!Number.isSafeInteger(size) || size <= 0 || size > MAX_CACHE_SIZE) {
      throw new RangeError(`cache.size must be a positive integer of at most ${MAX_CACHE_SIZE} bytes (256 MiB), got ${size}`)
    }
    const sets = size / (lineSize * ways)
    if (!pow2(sets)) {
      throw new RangeError(
        `cache.size must be lineSize × ways × a power of two, got ${size} (${lineSize} × ${ways} × ${sets})`,
      )
    }
    if (!(speculation >= 0 && speculation <= 1)) {
      throw new RangeError(`cache.speculation must be a probability in [0, 1], got ${speculation}`)
    }
    this.#ram = ram
    this.#rng = rng
    this.lineSize = lineSize
    this.lineShift = Math.log2(lineSize)
    this.ways = ways
    this.sets = sets
    this.speculation = speculation
    this.#linesPerPage = PAGE_SIZE / lineSize
    this.#tags = new Float64Array(sets * ways).fill(-1)
    this.#state = new Uint8Array(sets * ways)
    this.#data = new Uint8Array(sets * ways * lineSize)
  }

  // ---------------------------------------------------------------- memory type (MMU attributes)

  /** Marks the pages covering [pa, pa+len) non-cacheable (true) or normal write-back (false). */
  setUncached(pa: number, len: number, uncached: boolean): void {
    const first = Math.floor(pa / PAGE_SIZE)
    const last = Math.floor((pa + len - 1) / PAGE_SIZE)
    for (let p = first; p <= last; p++) this.#page(p).uncached = uncached
  }

  isUncached(pa: number): boolean {
    return this.#info(Math.floor(pa / PAGE_SIZE))?.uncached === true
  }

  /** Page info, kept in 4 MiB sections with the last section cached (range walks stay in one). */
  #info(pfn: number): PageInfo | undefined {
    const s = Math.floor(pfn / INFO_SECTION)
    let sec: (PageInfo | undefined)[] | undefined
    if (s === this.#lastSection) sec = this.#lastInfos
    else {
      sec = this.#pages.get(s)
      if (sec === undefined) return undefined
      this.#lastSection = s
      this.#lastInfos = sec
    }
    return sec![pfn - s * INFO_SECTION]
  }

  #page(pfn: number): PageInfo {
    let info = this.#info(pfn)
    if (info === undefined) {
      const s = Math.floor(pfn / INFO_SECTION)
      let sec = this.#pages.get(s)
      if (sec === undefined) {
        sec = new Array<PageInfo | undefined>(INFO_SECTION)
        this.#pages.set(s, sec)
      }
      info = { lines: 0, dirty: 0, uncached: false }
      sec[pfn - s * INFO_SECTION] = info
    }
    return info
  }

  // ---------------------------------------------------------------- lines

  #lookup(line: number): number {
    const base = (line % this.sets) * this.ways
    const tags = this.#tags
    for (let w = 0; w < this.ways; w++) {
      if (tags[base + w] === line) return base + w
    }
    return -1
  }

  #writeback(idx: number): void {
    const ls = this.lineSize
    const line = this.#tags[idx]!
    this.#ram.write(line * ls, this.#data.subarray(idx * ls, idx * ls + ls), 0, ls)
    this.#state[idx] = CLEAN
    this.#info(Math.floor(line / this.#linesPerPage))!.dirty--
    this.stats.writebacks++
  }

  #drop(idx: number): void {
    const line = this.#tags[idx]!
    const info = this.#info(Math.floor(line / this.#linesPerPage))
    if (info !== undefined) {
      info.lines--
      if (this.#state[idx] === DIRTY) info.dirty--
    }
    this.#tags[idx] = -1
    this.#state[idx] = INVALID
  }

  /** Brings a line in from DRAM, evicting a victim chosen by the seeded RNG. */
  #fill(line: number): number {
    const base = (line % this.sets) * this.ways
    let idx = -1
    for (let w = 0; w < this.ways; w++) {
      if (this.#state[base + w] === INVALID) {
        idx = base + w
        break
      }
    }
    if (idx < 0) {
      idx = base + this.#rng.int(this.ways)
      if (this.#state[idx] === DIRTY) this.#writeback(idx)
      this.#drop(idx)
      this.stats.evictions++
    }
    const ls = this.lineSize
    this.#ram.read(line * ls, this.#data, idx * ls, ls)
    this.#tags[idx] = line
    this.#state[idx] = CLEAN
    this.#page(Math.floor(line / this.#linesPerPage)).lines++
    return idx
  }

  #dirty(idx: number, line: number): void {
    if (this.#state[idx] === DIRTY) return
    this.#state[idx] = DIRTY
    this.#info(Math.floor(line / this.#linesPerPage))!.dirty++
  }

  #access(line: number): number {
    const idx = this.#lookup(line)
    if (idx >= 0) {
      this.stats.hits++
      return idx
    }
    this.stats.misses++
    return this.#fill(line)
  }

  /** A seeded speculative fill of a line next to the one just accessed (same page only). */
  #speculate(line: number): void {
    if (this.speculation === 0 || this.#rng.float() >= this.speculation) return
    const target = this.#rng.next() & 1 ? line + 1 : line - 1
    const pfn = Math.floor(target / this.#linesPerPage)
    if (pfn !== Math.floor(line / this.#linesPerPage)) return
    if (this.#info(pfn)?.uncached === true) return
    if (this.#lookup(target) >= 0) return
    this.#fill(target)
    this.stats.speculativeFills++
  }

  // ---------------------------------------------------------------- CPU side

  /** CPU load of len bytes at pa into dst[off..]. Non-cacheable pages read DRAM directly. */
  read(pa: number, dst: Uint8Array, off: number, len: number): void {
    if (this.#info(Math.floor(pa / PAGE_SIZE))?.uncached === true) {
      this.#ram.read(pa, dst, off, len)
      this.loadOrder?.load(pa, dst, off, len)
      this.storeBuffer?.forward(pa, dst, off, len)
      return
    }
    const ls = this.lineSize
    const data = this.#data
    let line = Math.floor(pa / ls)
    let lo = pa - line * ls
    while (len > 0) {
      const n = Math.min(len, ls - lo)
      const idx = this.#access(line)
      const src = idx * ls + lo
      if (n <= 8) for (let i = 0; i < n; i++) dst[off + i] = data[src + i]!
      else dst.set(data.subarray(src, src + n), off)
      off += n
      len -= n
      line++
      lo = 0
    }
    this.#speculate(line - 1)
  }

  /** CPU store of src[off..off+len) to pa (write-allocate). */
  write(pa: number, src: Uint8Array, off: number, len: number): void {
    if (this.#info(Math.floor(pa / PAGE_SIZE))?.uncached === true) {
      this.loadOrder?.cpuStore(pa, len)
      if (this.storeBuffer !== null) this.storeBuffer.store(pa, src, off, len)
      else this.#ram.write(pa, src, off, len)
      return
    }
    const ls = this.lineSize
    const data = this.#data
    let line = Math.floor(pa / ls)
    let lo = pa - line * ls
    while (len > 0) {
      const n = Math.min(len, ls - lo)
      const idx = this.#access(line)
      const dstOff = idx * ls + lo
      if (n <= 8) for (let i = 0; i < n; i++) data[dstOff + i] = src[off + i]!
      else data.set(src.subarray(off, off + n), dstOff)
      this.#dirty(idx, line)
      off += n
      len -= n
      line++
      lo = 0
    }
    this.#speculate(line - 1)
  }

  /** CPU stores of one byte value over [pa, pa+len) (memset). */
  fill(pa: number, value: number, len: number): void {
    if (this.#info(Math.floor(pa / PAGE_SIZE))?.uncached === true) {
      this.loadOrder?.cpuStore(pa, len)
      if (this.storeBuffer !== null) this.storeBuffer.store(pa, new Uint8Array(len).fill(value), 0, len)
      else this.#ram.fill(pa, value, len)
      return
    }
    const ls = this.lineSize
    let line = Math.floor(pa / ls)
    let lo = pa - line * ls
    while (len > 0) {
      const n = Math.min(len, ls - lo)
      const idx = this.#access(line)
      this.#data.fill(value, idx * ls + lo, idx * ls + lo + n)
      this.#dirty(idx, line)
      len -= n
      line++
      lo = 0
    }
  }

  // ---------------------------------------------------------------- maintenance by range

  /**
   * Applies a maintenance operation to every cached line of [pa, pa+len), skipping pages with no
   * cached line (or, for a clean, no dirty line). Modes: CLEAN, INVAL, CIVAC, INVAL_POC,
   * SNOOP_WRITE. For INVAL_POC and SNOOP_WRITE, lines only partly inside the range are written
   * back before they are dropped.
   */
  #maintain(pa: number, len: number, mode: number): void {
    if (len <= 0) return
    const ls = this.lineSize
    const end = pa + len
    const firstLine = Math.floor(pa / ls)
    const lastLine = Math.floor((end - 1) / ls)
    const lpp = this.#linesPerPage
    const lastPage = Math.floor(lastLine / lpp)
    const state = this.#state
    for (let p = Math.floor(firstLine / lpp); p <= lastPage; p++) {
      const info = this.#info(p)
      if (info === undefined || info.lines === 0 || (mode === M_CLEAN && info.dirty === 0)) continue
      const from = Math.max(firstLine, p * lpp)
      const to = Math.min(lastLine, p * lpp + lpp - 1)
      this.stats.maintainedLines += to - from + 1
      for (let line = from; line <= to; line++) {
        const idx = this.#lookup(line)
        if (idx < 0) continue
        const dirty = state[idx] === DIRTY
        if (mode === M_CLEAN) {
          if (dirty) this.#writeback(idx)
          continue
        }
        if (dirty) {
          const partial = line * ls < pa || line * ls + ls > end
          if (mode === M_CIVAC || ((mode === M_INVAL_POC || mode === M_SNOOP_WRITE) && partial)) this.#writeback(idx)
        }
        this.#drop(idx)
      }
    }
  }

  /** Clean to the point of coherency (`dc cvac`): dirty lines are written back and stay valid. */
  clean(pa: number, len: number): void {
    this.#maintain(pa, len, M_CLEAN)
  }

  /** Invalidate (`dc ivac`): lines are discarded, dirty data included. */
  invalidate(pa: number, len: number): void {
    this.#maintain(pa, len, M_INVAL)
  }

  /** Clean and invalidate (`dc civac`). */
  cleanInvalidate(pa: number, len: number): void {
    this.#maintain(pa, len, M_CIVAC)
  }

  /**
   * arm64 `dcache_inval_poc`: "Any partial lines at the ends of the interval are also cleaned to
   * PoC to prevent data loss" — clean+invalidate the partial first and last lines, invalidate the
   * rest.
   */
  invalPoc(pa: number, len: number): void {
    this.#maintain(pa, len, M_INVAL_POC)
  }

  // ---------------------------------------------------------------- device side (coherent interconnect)

  /**
   * A coherent device read. Dirty lines it covers supply their data the way a snooped Modified
   * line does on a read that does not take ownership: written back to DRAM and kept, clean (M to
   * S/E); then the device reads DRAM. The device sees the CPU's data either way, and a buffer the
   * device reads again costs no second snoop.
   */
  snoopRead(pa: number, dst: Uint8Array, off: number, len: number): void {
    const ls = this.lineSize
    const lpp = this.#linesPerPage
    const lastLine = Math.floor((pa + len - 1) / ls)
    const state = this.#state
    for (let p = Math.floor(pa / PAGE_SIZE); p <= Math.floor(lastLine / lpp); p++) {
      const info = this.#info(p)
      if (info === undefined || info.dirty === 0) continue
      const stop = Math.min(lastLine, p * lpp + lpp - 1)
      for (let line = Math.max(Math.floor(pa / ls), p * lpp); line <= stop; line++) {
        const idx = this.#lookup(line)
        if (idx >= 0 && state[idx] === DIRTY) this.#writeback(idx)
      }
    }
    this.#ram.read(pa, dst, off, len)
  }

  /** Before a coherent device write: dirty lines it partly covers are written back, all dropped. */
  snoopWrite(pa: number, len: number): void {
    this.#maintain(pa, len, M_SNOOP_WRITE)
  }

  // ---------------------------------------------------------------- inspection (tests, teaching)

  /** The state of the line holding pa. */
  lineState(pa: number): LineState {
    const idx = this.#lookup(Math.floor(pa / this.lineSize))
    if (idx < 0) return 'invalid'
    return this.#state[idx] === DIRTY ? 'dirty' : 'clean'
  }

  /** The cached copy of the line holding pa, or undefined if it is not cached. */
  peekLine(pa: number): Uint8Array | undefined {
    const idx = this.#lookup(Math.floor(pa / this.lineSize))
    if (idx < 0) return undefined
    return this.#data.slice(idx * this.lineSize, (idx + 1) * this.lineSize)
  }

  /** Loads the line holding pa as a speculative fill would (for tests and demonstrations). */
  prefetch(pa: number): void {
    if (this.isUncached(pa)) return
    const line = Math.floor(pa / this.lineSize)
    if (this.#lookup(line) < 0) this.#fill(line)
  }

  /** Number of lines currently cached. */
  get residentLines(): number {
    let n = 0
    for (const sec of this.#pages.values()) for (const info of sec) n += info?.lines ?? 0
    return n
  }
}
