/**
 * The namespace's storage: a volatile write cache in front of the durable BlockBackend
 * (devices/block/backend.ts). Datasheet: docs/devices/nvme.md §9.
 *
 * Modelled on what an NVMe drive with a volatile write cache does (NVM Express Base
 * Specification 1.4 §5.21.1.6 Volatile Write Cache, §6.8 Flush, §6.15 FUA) and on QEMU's
 * hw/nvme behind a block backend with cache=writeback (nvme_set_feature: disabling the cache
 * flushes it first): with the cache enabled a write lands in device DRAM and completes; a Flush,
 * a write with FUA, a shutdown, a destage when the cache is full, or disabling the cache makes it
 * durable. A power failure loses whatever was still only in the cache. Reads see the cache.
 *
 * The cache is kept in 4 KiB lines keyed by line index (namespace byte offset / 4096), each with a
 * bitmask of the logical blocks in it that are dirty (8 bits for 512-byte blocks, 1 for 4 KiB).
 * Lines come from a pool and go back to it: after warm-up, caching allocates nothing. When the
 * dirty bytes exceed the capacity, the oldest lines (first dirtied) are written back.
 */

import type { BlockBackend } from '../block/backend.js'

/** Bytes per cache line. */
export const NVME_CACHE_LINE = 4096

class CacheLine {
  readonly data = new Uint8Array(NVME_CACHE_LINE)
  /** One view per logical block of the line (copies without a view per call). */
  readonly blocks: Uint8Array[]
  /** Dirty logical blocks, bit i = block i of the line. */
  dirty = 0

  constructor(blockSize: number) {
    this.blocks = []
    for (let o = 0; o < NVME_CACHE_LINE; o += blockSize) this.blocks.push(this.data.subarray(o, o + blockSize))
  }
}

/** What the storage counts (the controller's stats object carries these fields). */
export interface NvmeStorageStats {
  /** Writes made to the durable backend (each a BlockBackend.write call). */
  durableWrites: number
  /** Bytes written to the durable backend. */
  durableBytes: number
  /** Cache lines written back because the cache was full. */
  cacheEvictions: number
  /** Dirty bytes dropped by power failures. */
  lostBytes: number
}

export class NvmeStorage {
  readonly backend: BlockBackend
  /** Logical block size in bytes (512 or 4096). */
  readonly blockSize: number
  /** Namespace size in bytes (a multiple of the block size, at most the backend's size). */
  readonly size: number
  /** Most dirty bytes the cache holds before it writes the oldest back. */
  readonly capacityBytes: number
  readonly #stats: NvmeStorageStats
  readonly #lines = new Map<number, CacheLine>()
  readonly #pool: CacheLine[] = []
  readonly #perLine: number
  readonly #shift: number
  /** Views of the staging buffer: one per 4 KiB and one per block (copies without per-call views). */
  #stagingLines: Uint8Array[] = []
  #stagingBlocks: Uint8Array[] = []
  #staging: Uint8Array = new Uint8Array(0)
  readonly #zero = new Uint8Array(64 * 1024)
  #dirtyBytes = 0
  /** Whether writes go to the cache (Volatile Write Cache feature, WCE). */
  enabled = true

  constructor(backend: BlockBackend, size: number, blockSize: number, capacityBytes: number, stats: NvmeStorageStats) {
    this.backend = backend
    this.size = size
    this.blockSize = blockSize
    this.capacityBytes = capacityBytes
    this.#stats = stats
    this.#perLine = NVME_CACHE_LINE / blockSize
    this.#shift = Math.log2(blockSize)
  }

  /** The buffer commands stage their data in; the storage keeps views of it. */
  setStaging(buf: Uint8Array): void {
    this.#staging = buf
    this.#stagingLines = []
    this.#stagingBlocks = []
    for (let o = 0; o + NVME_CACHE_LINE <= buf.length; o += NVME_CACHE_LINE) this.#stagingLines.push(buf.subarray(o, o + NVME_CACHE_LINE))
    for (let o = 0; o + this.blockSize <= buf.length; o += this.blockSize) this.#stagingBlocks.push(buf.subarray(o, o + this.blockSize))
  }

  /** Bytes in the cache that are not durable yet. */
  get dirtyBytes(): number {
    return this.#dirtyBytes
  }

  /** Cache lines holding dirty data. */
  get lines(): number {
    return this.#lines.size
  }

  /** Reads len bytes at namespace offset off into the staging buffer at 0 (the cache over the backend). */
  read(off: number, len: number): void {
    this.backend.read(off, this.#staging, 0, len)
    if (this.#lines.size === 0) return
    let pos = 0
    while (pos < len) {
      const idx = Math.floor((off + pos) / NVME_CACHE_LINE)
      const lo = off + pos - idx * NVME_CACHE_LINE
      const n = Math.min(len - pos, NVME_CACHE_LINE - lo)
      const line = this.#lines.get(idx)
      if (line !== undefined && line.dirty !== 0) {
        if (n === NVME_CACHE_LINE && (pos & (NVME_CACHE_LINE - 1)) === 0 && line.dirty === (1 << this.#perLine) - 1) {
          this.#stagingLines[pos / NVME_CACHE_LINE]!.set(line.data)
        } else {
          const first = lo >> this.#shift
          const count = n >> this.#shift
          for (let b = 0; b < count; b++) {
            if ((line.dirty & (1 << (first + b))) !== 0) this.#stagingBlocks[(pos >> this.#shift) + b]!.set(line.blocks[first + b]!)
          }
        }
      }
      pos += n
    }
  }

  /** Writes len bytes from the staging buffer (at 0) to namespace offset off; `fua` (or a disabled cache) makes them durable now. */
  write(off: number, len: number, fua: boolean): void {
    if (fua || !this.enabled) {
      this.backend.write(off, this.#staging, 0, len)
      this.#durable(len)
      this.#invalidate(off, len)
      return
    }
    let pos = 0
    while (pos < len) {
      const idx = Math.floor((off + pos) / NVME_CACHE_LINE)
      const lo = off + pos - idx * NVME_CACHE_LINE
      const n = Math.min(len - pos, NVME_CACHE_LINE - lo)
      const line = this.#line(idx)
      const first = lo >> this.#shift
      const count = n >> this.#shift
      if (n === NVME_CACHE_LINE && (pos & (NVME_CACHE_LINE - 1)) === 0) line.data.set(this.#stagingLines[pos / NVME_CACHE_LINE]!)
      else for (let b = 0; b < count; b++) line.blocks[first + b]!.set(this.#stagingBlocks[(pos >> this.#shift) + b]!)
      this.#markDirty(line, first, count)
      pos += n
    }
    this.#evict()
  }

  /** Writes len bytes of zeroes at namespace offset off (Write Zeroes), through the cache unless `fua` or disabled. */
  zero(off: number, len: number, fua: boolean): void {
    if (fua || !this.enabled) {
      for (let pos = 0; pos < len; pos += this.#zero.length) {
        const n = Math.min(this.#zero.length, len - pos)
        this.backend.write(off + pos, this.#zero, 0, n)
        this.#durable(n)
      }
      this.#invalidate(off, len)
      return
    }
    let pos = 0
    while (pos < len) {
      const idx = Math.floor((off + pos) / NVME_CACHE_LINE)
      const lo = off + pos - idx * NVME_CACHE_LINE
      const n = Math.min(len - pos, NVME_CACHE_LINE - lo)
      const line = this.#line(idx)
      line.data.fill(0, lo, lo + n)
      this.#markDirty(line, lo >> this.#shift, n >> this.#shift)
      pos += n
      this.#evict()
    }
  }

  /**
   * Writes every dirty block to the backend (Flush, shutdown, disabling the cache); returns the
   * bytes made durable. If the backend throws, the lines not written yet stay dirty and the error
   * propagates.
   */
  flush(): number {
    const before = this.#dirtyBytes
    for (const [idx, line] of this.#lines) this.#writeBack(idx, line)
    return before
  }

  /** A power failure: the dirty blocks are lost; returns their bytes. */
  drop(): number {
    const lost = this.#dirtyBytes
    for (const line of this.#lines.values()) {
      line.dirty = 0
      this.#pool.push(line)
    }
    this.#lines.clear()
    this.#dirtyBytes = 0
    this.#stats.lostBytes += lost
    return lost
  }

  #line(idx: number): CacheLine {
    let line = this.#lines.get(idx)
    if (line === undefined) {
      line = this.#pool.pop() ?? new CacheLine(this.blockSize)
      this.#lines.set(idx, line)
    }
    return line
  }

  #markDirty(line: CacheLine, first: number, count: number): void {
    const mask = (count >= 31 ? -1 : (1 << count) - 1) << first
    const fresh = mask & ~line.dirty
    if (fresh !== 0) {
      line.dirty |= fresh
      this.#dirtyBytes += popcount(fresh) << this.#shift
    }
  }

  /** Dirty blocks in [off, off+len) are superseded by durable data: clear them. */
  #invalidate(off: number, len: number): void {
    if (this.#lines.size === 0) return
    let pos = 0
    while (pos < len) {
      const idx = Math.floor((off + pos) / NVME_CACHE_LINE)
      const lo = off + pos - idx * NVME_CACHE_LINE
      const n = Math.min(len - pos, NVME_CACHE_LINE - lo)
      const line = this.#lines.get(idx)
      if (line !== undefined) {
        const mask = ((1 << (n >> this.#shift)) - 1) << (lo >> this.#shift)
        const gone = line.dirty & mask
        if (gone !== 0) {
          line.dirty &= ~gone
          this.#dirtyBytes -= popcount(gone) << this.#shift
          if (line.dirty === 0) {
            this.#lines.delete(idx)
            this.#pool.push(line)
          }
        }
      }
      pos += n
    }
  }

  /** Writes the oldest lines back while the dirty bytes exceed the capacity. */
  #evict(): void {
    while (this.#dirtyBytes > this.capacityBytes && this.#lines.size > 0) {
      const [idx, line] = this.#lines.entries().next().value as [number, CacheLine]
      this.#writeBack(idx, line)
      this.#stats.cacheEvictions++
    }
  }

  /** Writes a line's dirty runs of blocks to the backend, then drops it from the cache (back to the pool). */
  #writeBack(idx: number, line: CacheLine): void {
    const bs = this.blockSize
    const base = idx * NVME_CACHE_LINE
    let b = 0
    while (b < this.#perLine) {
      if ((line.dirty & (1 << b)) === 0) {
        b++
        continue
      }
      let e = b + 1
      while (e < this.#perLine && (line.dirty & (1 << e)) !== 0) e++
      const n = (e - b) * bs
      this.backend.write(base + b * bs, line.data, b * bs, n)
      this.#durable(n)
      b = e
    }
    this.#dirtyBytes -= popcount(line.dirty) << this.#shift
    line.dirty = 0
    this.#lines.delete(idx)
    this.#pool.push(line)
  }

  #durable(bytes: number): void {
    this.#stats.durableWrites++
    this.#stats.durableBytes += bytes
  }
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x5555_5555)
  x = (x & 0x3333_3333) + ((x >>> 2) & 0x3333_3333)
  return (((x + (x >>> 4)) & 0x0f0f_0f0f) * 0x0101_0101) >>> 24
}
