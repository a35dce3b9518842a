/**
 * What a storage device keeps its data on: a backend of fixed size, addressed in bytes. The
 * in-memory sparse backend lives here (no host I/O: devices/ runs in a browser too); a disk-image
 * file backend is a host adapter (host/disk-image.ts) implementing the same interface.
 *
 * A backend is the *durable* medium: what survives a power failure. A device's volatile write
 * cache (NVMe VWC) sits in front of it, in the device model, and only reaches the backend on Flush
 * or FUA — as QEMU's block layer with cache=writeback does behind an emulated NVMe controller.
 */

/** A durable block store of `size` bytes. Offsets and lengths are bytes; reads of never-written areas return zeroes. */
export interface BlockBackend {
  /** Bytes the medium holds. */
  readonly size: number
  /** Copies [offset, offset+len) of the medium into dst[dstOff..]. */
  read(offset: number, dst: Uint8Array, dstOff: number, len: number): void
  /** Copies src[srcOff..srcOff+len) onto the medium at offset (durable once it returns). */
  write(offset: number, src: Uint8Array, srcOff: number, len: number): void
  /** Releases host resources (a file handle); the backend is unusable afterwards. */
  close?(): void
}

export class BlockBackendError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'BlockBackendError'
  }
}

const CHUNK = 64 * 1024

/** A sparse in-memory backend: 64 KiB chunks allocated on first write. */
export class MemoryBackend implements BlockBackend {
  readonly size: number
  readonly #chunks = new Map<number, Uint8Array>()

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size <= 0) throw new BlockBackendError(`MemoryBackend: size must be a positive whole number of bytes, got ${String(size)}`)
    this.size = size
  }

  /** Bytes of host memory in use (chunks written so far). */
  get allocatedBytes(): number {
    return this.#chunks.size * CHUNK
  }

  #check(what: string, offset: number, len: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || offset + len > this.size) {
      throw new BlockBackendError(`MemoryBackend.${what}: range ${offset}+${len} is outside the ${this.size}-byte medium`)
    }
  }

  read(offset: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.#check('read', offset, len)
    while (len > 0) {
      const idx = Math.floor(offset / CHUNK)
      const off = offset - idx * CHUNK
      const n = Math.min(len, CHUNK - off)
      const c = this.#chunks.get(idx)
      if (c === undefined) dst.fill(0, dstOff, dstOff + n)
      else dst.set(c.subarray(off, off + n), dstOff)
      offset += n
      dstOff += n
      len -= n
    }
  }

  write(offset: number, src: Uint8Array, srcOff: number, len: number): void {
    this.#check('write', offset, len)
    while (len > 0) {
      const idx = Math.floor(offset / CHUNK)
      const off = offset - idx * CHUNK
      const n = Math.min(len, CHUNK - off)
      let c = this.#chunks.get(idx)
      if (c === undefined) {
        c = new Uint8Array(CHUNK)
        this.#chunks.set(idx, c)
      }
      c.set(src.subarray(srcOff, srcOff + n), off)
      offset += n
      srcOff += n
      len -= n
    }
  }
}
