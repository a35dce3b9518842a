/**
 * Host adapter: a disk image file as the durable medium of an emulated storage device
 * (devices/block/backend.ts's BlockBackend), as QEMU's `-drive file=disk.img,format=raw` is.
 *
 *   const img = DiskImageBackend.create('disk.img', 64 << 20)   // a new sparse 64 MiB image
 *   const img2 = DiskImageBackend.open('disk.img')              // an existing raw image
 *   new NvmeController({ backend: img }) / nullBlkAdd(sys, { backend: img })
 *   img.close()
 *
 * The file is a raw image: byte n of the medium is byte n of the file, nothing else. Its size is
 * the medium's size and must be a whole number of 512-byte sectors. New images are sparse (the
 * file is extended with ftruncate, so never-written areas take no disk space and read as zeros).
 * Reads and writes are positioned (pread/pwrite: fs.readSync/writeSync with a position), one
 * system call per request, so the adapter keeps no cache of its own: what `write` returns is in
 * the host's page cache (call `sync()` to fsync it to the host disk). Ranges outside the medium,
 * a closed image, and writes to a read-only one are BlockBackendErrors; a bad file is a
 * BlockBackendError naming it.
 */

import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs'
import { BlockBackendError, type BlockBackend } from '../devices/block/backend.js'

/** The sector size an image's size must be a multiple of. */
export const DISK_IMAGE_SECTOR = 512

export interface DiskImageOpenOptions {
  /** Open read-only: writes are BlockBackendErrors (default false). */
  readOnly?: boolean
}

export interface DiskImageCreateOptions {
  /** Replace an existing file (default false: an existing file is an error). */
  overwrite?: boolean
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`
  if (v === null || typeof v === 'number' || typeof v === 'boolean' || v === undefined) return String(v)
  return typeof v
}

function checkPath(fn: string, path: unknown): string {
  if (typeof path !== 'string' || path === '') throw new BlockBackendError(`${fn}: path must be a file name, got ${describe(path)}`)
  return path
}

function sysError(e: unknown): string {
  const err = e as NodeJS.ErrnoException
  return err.code !== undefined ? `${err.code}: ${err.message.replace(/^\w+: /, '')}` : String(e)
}

/** A raw disk image file as a BlockBackend. */
export class DiskImageBackend implements BlockBackend {
  readonly path: string
  readonly size: number
  readonly readOnly: boolean
  #fd: number | null

  /** Opens an existing raw image; its size (a whole number of 512-byte sectors) is the medium's. */
  static open(path: string, opts: DiskImageOpenOptions = {}): DiskImageBackend {
    const p = checkPath('DiskImageBackend.open', path)
    if (typeof opts !== 'object' || opts === null) throw new BlockBackendError(`DiskImageBackend.open: opts must be an object, got ${describe(opts)}`)
    const readOnly = opts.readOnly ?? false
    if (typeof readOnly !== 'boolean') throw new BlockBackendError(`DiskImageBackend.open: opts.readOnly must be a boolean, got ${describe(readOnly)}`)
    let fd: number
    try {
      fd = openSync(p, readOnly ? 'r' : 'r+')
    } catch (e) {
      throw new BlockBackendError(`${p}: cannot open the disk image (${sysError(e)})`)
    }
    try {
      const st = fstatSync(fd)
      if (!st.isFile()) throw new BlockBackendError(`${p}: not a regular file: a disk image is a raw image file`)
      if (st.size === 0) throw new BlockBackendError(`${p}: the disk image is empty (0 bytes)`)
      if (st.size % DISK_IMAGE_SECTOR !== 0) {
        throw new BlockBackendError(`${p}: the disk image's size, ${st.size} bytes, is not a multiple of ${DISK_IMAGE_SECTOR} (a raw image holds whole sectors)`)
      }
      return new DiskImageBackend(p, fd, st.size, readOnly)
    } catch (e) {
      closeSync(fd)
      throw e
    }
  }

  /** Creates a new sparse raw image of size bytes (a whole number of 512-byte sectors). */
  static create(path: string, size: number, opts: DiskImageCreateOptions = {}): DiskImageBackend {
    const p = checkPath('DiskImageBackend.create', path)
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0 || size % DISK_IMAGE_SECTOR !== 0) {
      throw new BlockBackendError(`DiskImageBackend.create: size must be a positive multiple of ${DISK_IMAGE_SECTOR} bytes, got ${describe(size)} (for ${p})`)
    }
    if (typeof opts !== 'object' || opts === null) throw new BlockBackendError(`DiskImageBackend.create: opts must be an object, got ${describe(opts)}`)
    const overwrite = opts.overwrite ?? false
    if (typeof overwrite !== 'boolean') throw new BlockBackendError(`DiskImageBackend.create: opts.overwrite must be a boolean, got ${describe(overwrite)}`)
    let fd: number
    try {
      fd = openSync(p, overwrite ? 'w+' : 'wx+')
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      throw new BlockBackendError(code === 'EEXIST' ? `${p}: the file exists (pass { overwrite: true } to replace it)` : `${p}: cannot create the disk image (${sysError(e)})`)
    }
    try {
      ftruncateSync(fd, size)
    } catch (e) {
      closeSync(fd)
      throw new BlockBackendError(`${p}: cannot size the disk image to ${size} bytes (${sysError(e)})`)
    }
    return new DiskImageBackend(p, fd, size, false)
  }

  private constructor(path: string, fd: number, size: number, readOnly: boolean) {
    this.path = path
    this.#fd = fd
    this.size = size
    this.readOnly = readOnly
  }

  /** Whether close() has been called. */
  get closed(): boolean {
    return this.#fd === null
  }

  #check(what: string, offset: number, buf: unknown, bufOff: number, len: number): number {
    const fd = this.#fd
    if (fd === null) throw new BlockBackendError(`DiskImageBackend.${what}: ${this.path} is closed`)
    if (!(buf instanceof Uint8Array)) throw new BlockBackendError(`DiskImageBackend.${what}: the buffer must be a Uint8Array, got ${describe(buf)}`)
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(len) || offset < 0 || len < 0 || offset + len > this.size) {
      throw new BlockBackendError(`DiskImageBackend.${what}: range ${String(offset)}+${String(len)} is outside the ${this.size}-byte medium (${this.path})`)
    }
    if (!Number.isSafeInteger(bufOff) || bufOff < 0 || bufOff + len > buf.length) {
      throw new BlockBackendError(`DiskImageBackend.${what}: buffer range ${String(bufOff)}+${len} is outside the ${buf.length}-byte buffer`)
    }
    return fd
  }

  /** Copies [offset, offset+len) of the medium into dst[dstOff..]. */
  read(offset: number, dst: Uint8Array, dstOff: number, len: number): void {
    const fd = this.#check('read', offset, dst, dstOff, len)
    let done = 0
    while (done < len) {
      const n = readSync(fd, dst, dstOff + done, len - done, offset + done)
      if (n === 0) {
        // The file was truncated behind our back: what is missing reads as zeros, as a hole does.
        dst.fill(0, dstOff + done, dstOff + len)
        return
      }
      done += n
    }
  }

  /** Copies src[srcOff..srcOff+len) onto the medium at offset. */
  write(offset: number, src: Uint8Array, srcOff: number, len: number): void {
    const fd = this.#check('write', offset, src, srcOff, len)
    if (this.readOnly) throw new BlockBackendError(`DiskImageBackend.write: ${this.path} is open read-only`)
    let done = 0
    while (done < len) done += writeSync(fd, src, srcOff + done, len - done, offset + done)
  }

  /** fsync: what was written reaches the host's disk. */
  sync(): void {
    const fd = this.#fd
    if (fd === null) throw new BlockBackendError(`DiskImageBackend.sync: ${this.path} is closed`)
    fsyncSync(fd)
  }

  /** Closes the file; the backend is unusable afterwards (closing twice does nothing). */
  close(): void {
    const fd = this.#fd
    if (fd === null) return
    this.#fd = null
    closeSync(fd)
  }
}
