/**
 * Physical memory: sparse, lazily backed RAM banks.
 *
 * Models the DRAM behind the memory controller (QEMU's `memory_region_init_ram`). Banks are
 * address ranges; backing store is allocated lazily in 4 MiB sections, and the host commits only
 * the pages that are touched, so a machine with RAM above 4 GiB costs nothing until used. A range
 * that was never written reads as zero. Copies of physically contiguous runs are single
 * `Uint8Array.prototype.set` calls, which keeps device DMA close to memcpy speed.
 */

export interface RamBank {
  readonly name: string
  readonly base: number
  readonly size: number
}

/** Thrown when hardware is asked to touch an address that no RAM bank decodes. */
export class BusDecodeError extends Error {
  readonly address: number
  constructor(address: number, len: number) {
    super(`no RAM decodes physical address 0x${address.toString(16)} (+${len} bytes)`)
    this.name = 'BusDecodeError'
    this.address = address
  }
}

export const SECTION_SHIFT = 22
export const SECTION_SIZE = 1 << SECTION_SHIFT

/** Copies up to this many bytes byte by byte: cheaper than a typed-array view for descriptors. */
const SMALL_COPY = 32

export class Ram {
  readonly banks: readonly RamBank[]
  readonly #sections = new Map<number, Uint8Array>()

  constructor(banks: readonly RamBank[]) {
    for (const b of banks) {
      if (b.base % 4096 !== 0 || b.size % 4096 !== 0 || b.size <= 0) {
        throw new RangeError(`RAM bank ${b.name}: base and size must be positive multiples of 4096`)
      }
    }
    this.banks = [...banks].sort((x, y) => x.base - y.base)
  }

  /** The bank holding [pa, pa+len), or undefined if the range is not entirely RAM. */
  bankOf(pa: number, len = 1): RamBank | undefined {
    const last = this.#lastBank
    if (last !== undefined && pa >= last.base && pa + len <= last.base + last.size) return last
    for (const b of this.banks) {
      if (pa >= b.base && pa + len <= b.base + b.size) {
        this.#lastBank = b
        return b
      }
    }
    return undefined
  }

  /** The bank bankOf() found last. */
  #lastBank: RamBank | undefined = undefined

  isRam(pa: number, len = 1): boolean {
    return this.bankOf(pa, len) !== undefined
  }

  /** Bytes of host memory reserved for backing store (sections touched so far). */
  get backedBytes(): number {
    return this.#sections.size * SECTION_SIZE
  }

  /** The last section looked up (most accesses stay in one). */
  #lastIdx = -1
  #lastSec: Uint8Array | undefined = undefined

  /** The backing store of section `index`, if it was ever written. */
  #get(index: number): Uint8Array | undefined {
    if (index === this.#lastIdx) return this.#lastSec
    const s = this.#sections.get(index)
    if (s !== undefined) {
      this.#lastIdx = index
      this.#lastSec = s
    }
    return s
  }

  #section(index: number): Uint8Array {
    let s = this.#get(index)
    if (s === undefined) {
      s = new Uint8Array(SECTION_SIZE)
      this.#sections.set(index, s)
    }
    return s
  }

  /** Copies len bytes at physical address pa into dst[dstOff..]. */
  read(pa: number, dst: Uint8Array, dstOff: number, len: number): void {
    while (len > 0) {
      const idx = Math.floor(pa / SECTION_SIZE)
      const off = pa - idx * SECTION_SIZE
      const n = Math.min(len, SECTION_SIZE - off)
      const s = this.#get(idx)
      if (s === undefined) dst.fill(0, dstOff, dstOff + n)
      else if (n <= SMALL_COPY) for (let i = 0; i < n; i++) dst[dstOff + i] = s[off + i]!
      else if (n === SECTION_SIZE) dst.set(s, dstOff)
      else dst.set(s.subarray(off, off + n), dstOff)
      pa += n
      dstOff += n
      len -= n
    }
  }

  /** Copies src[srcOff..srcOff+len) to physical address pa. */
  write(pa: number, src: Uint8Array, srcOff: number, len: number): void {
    while (len > 0) {
      const idx = Math.floor(pa / SECTION_SIZE)
      const off = pa - idx * SECTION_SIZE
      const n = Math.min(len, SECTION_SIZE - off)
      const s = this.#section(idx)
      if (n <= SMALL_COPY) for (let i = 0; i < n; i++) s[off + i] = src[srcOff + i]!
      else s.set(srcOff === 0 && n === src.length ? src : src.subarray(srcOff, srcOff + n), off)
      pa += n
      srcOff += n
      len -= n
    }
  }

  /** Fills len bytes at pa with value. */
  fill(pa: number, value: number, len: number): void {
    while (len > 0) {
      const idx = Math.floor(pa / SECTION_SIZE)
      const off = pa - idx * SECTION_SIZE
      const n = Math.min(len, SECTION_SIZE - off)
      if (value !== 0 || this.#get(idx) !== undefined) this.#section(idx).fill(value, off, off + n)
      pa += n
      len -= n
    }
  }

  /**
   * Copies len bytes from physical src to physical dst, section to section with no intermediate
   * buffer (one `Uint8Array.prototype.set` per piece). Overlapping ranges copy as memmove does
   * within one section; across sections they are undefined.
   */
  copy(dst: number, src: number, len: number): void {
    while (len > 0) {
      const si = Math.floor(src / SECTION_SIZE)
      const di = Math.floor(dst / SECTION_SIZE)
      const so = src - si * SECTION_SIZE
      const dOff = dst - di * SECTION_SIZE
      const n = Math.min(len, SECTION_SIZE - so, SECTION_SIZE - dOff)
      const s = this.#get(si)
      if (s === undefined) this.fill(dst, 0, n)
      else this.#section(di).set(n === SECTION_SIZE ? s : s.subarray(so, so + n), dOff)
      src += n
      dst += n
      len -= n
    }
  }

  read8(pa: number): number {
    const idx = Math.floor(pa / SECTION_SIZE)
    const s = this.#get(idx)
    return s === undefined ? 0 : s[pa - idx * SECTION_SIZE]!
  }
}
