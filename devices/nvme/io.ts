/**
 * The NVM command set the controller implements on namespace 1: Read, Write (FUA honoured),
 * Flush and Write Zeroes. Datasheet: docs/devices/nvme.md §6.
 *
 * Modelled on QEMU's nvme_io_cmd / nvme_rw / nvme_flush / nvme_write_zeroes (hw/nvme/ctrl.c) and
 * NVM Express NVM Command Set (Base Specification 1.4 §6.7, §6.8, §6.9, §6.15): the transfer
 * size is checked against MDTS first (INVALID_FIELD | DNR, nvme_check_mdts), then the LBA range
 * (`SLBA + NLB > NSZE`: LBA_RANGE | DNR, nvme_check_bounds), then the data pointer is mapped
 * (devices/nvme/prp.ts). A write's data is read from the host before anything lands on the
 * namespace, so a write whose data DMA fails changes nothing (DATA_XFER_ERROR, no DNR: a retry
 * may work). A backend that throws (a host I/O error behind a disk image) completes the command
 * with QEMU's statuses: READ_ERROR for a read, WRITE_FAULT for a write, INTERNAL for a flush. The
 * volatile write cache and the durable medium are devices/nvme/cache.ts.
 */

import type { NvmeStorage } from './cache.js'
import { prp64 } from './admin.js'
import type { PrpMapper } from './prp.js'
import {
  NVME_CMD_FLUSH, NVME_CMD_READ, NVME_CMD_WRITE, NVME_CMD_WRITE_ZEROES, NVME_NSID, NVME_NSID_ALL, NVME_RW_FUA,
  NVME_RW_NLB_MASK, NVME_SC_DNR, NVME_SC_INTERNAL, NVME_SC_INVALID_FIELD, NVME_SC_INVALID_NS, NVME_SC_INVALID_OPCODE,
  NVME_SC_LBA_RANGE, NVME_SC_READ_ERROR, NVME_SC_WRITE_FAULT,
  NVME_SQE_CDW10, NVME_SQE_CDW11, NVME_SQE_CDW12, NVME_SQE_NSID, NVME_SQE_OPCODE, NVME_SQE_PRP1, NVME_SQE_PRP2,
} from './regs.js'

export interface NvmeIoHost {
  readonly prp: PrpMapper
  readonly storage: NvmeStorage
  /** Where a command's data is staged (MDTS bytes). */
  readonly staging: Uint8Array
  /** Namespace size in blocks, the block size in bytes, and the largest transfer in bytes. */
  readonly nsze: number
  readonly lbaSize: number
  readonly mdtsBytes: number
}

/** The I/O counters (the controller's stats object carries these fields). */
export interface NvmeIoStats {
  reads: number
  writes: number
  flushes: number
  writeZeroes: number
  /** Bytes moved to the host by reads, and from it by writes. */
  bytesRead: number
  bytesWritten: number
}

const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`

export const NVME_IO_NAMES: Readonly<Record<number, string>> = {
  [NVME_CMD_FLUSH]: 'Flush',
  [NVME_CMD_WRITE]: 'Write',
  [NVME_CMD_READ]: 'Read',
  [NVME_CMD_WRITE_ZEROES]: 'Write Zeroes',
}

export class NvmeIo {
  /** Why the last command failed (guest-error messages). */
  why = ''
  /** Bytes the last command moved through the medium (its transfer time). */
  mediaBytes = 0
  readonly #host: NvmeIoHost
  readonly #stats: NvmeIoStats

  constructor(host: NvmeIoHost, stats: NvmeIoStats) {
    this.#host = host
    this.#stats = stats
  }

  /** Executes the I/O command at v[off..off+64); returns the status field. */
  execute(v: DataView, off: number): number {
    this.mediaBytes = 0
    const opcode = v.getUint8(off + NVME_SQE_OPCODE)
    const nsid = v.getUint32(off + NVME_SQE_NSID, true)
    switch (opcode) {
      case NVME_CMD_READ:
      case NVME_CMD_WRITE:
      case NVME_CMD_WRITE_ZEROES:
        if (nsid !== NVME_NSID) return this.#badNsid(opcode, nsid)
        return this.#rw(v, off, opcode)
      case NVME_CMD_FLUSH:
        if (nsid !== NVME_NSID && nsid !== NVME_NSID_ALL) return this.#badNsid(opcode, nsid)
        this.#stats.flushes++
        try {
          this.mediaBytes = this.#host.storage.flush()
        } catch (e) {
          return this.#medium(e, 'Flush', NVME_SC_INTERNAL)
        }
        return 0
      default:
        this.why = `I/O opcode ${hex(opcode)} is not supported (Flush 00h, Write 01h, Read 02h and Write Zeroes 08h are)`
        return NVME_SC_INVALID_OPCODE | NVME_SC_DNR
    }
  }

  /** The backend failed (a host I/O error): QEMU's nvme_rw_complete_cb statuses. */
  #medium(e: unknown, what: string, status: number): number {
    this.why = `${what}: the medium failed: ${e instanceof Error ? e.message : String(e)}`
    this.mediaBytes = 0
    return status
  }

  #badNsid(opcode: number, nsid: number): number {
    this.why = `${NVME_IO_NAMES[opcode]!}: NSID ${hex(nsid)} is not a namespace (the only one is 1${opcode === NVME_CMD_FLUSH ? ', or FFFFFFFFh for Flush' : ''})`
    return NVME_SC_INVALID_NS | NVME_SC_DNR
  }

  #rw(v: DataView, off: number, opcode: number): number {
    const h = this.#host
    const slba = v.getUint32(off + NVME_SQE_CDW11, true) * TWO32 + v.getUint32(off + NVME_SQE_CDW10, true)
    const dw12 = v.getUint32(off + NVME_SQE_CDW12, true)
    const nlb = (dw12 & NVME_RW_NLB_MASK) + 1
    const fua = (dw12 & NVME_RW_FUA) !== 0
    const bytes = nlb * h.lbaSize
    if (opcode !== NVME_CMD_WRITE_ZEROES && bytes > h.mdtsBytes) {
      const name = NVME_IO_NAMES[opcode]!
      this.why = `${name} of ${nlb} blocks (${bytes} bytes) exceeds MDTS (${h.mdtsBytes} bytes)`
      return NVME_SC_INVALID_FIELD | NVME_SC_DNR
    }
    if (slba + nlb > h.nsze) {
      const name = NVME_IO_NAMES[opcode]!
      this.why = `${name} of LBAs ${slba}..${slba + nlb - 1} is beyond the namespace (${h.nsze} blocks)`
      return NVME_SC_LBA_RANGE | NVME_SC_DNR
    }
    const at = slba * h.lbaSize
    if (opcode === NVME_CMD_WRITE_ZEROES) {
      this.#stats.writeZeroes++
      try {
        h.storage.zero(at, bytes, fua)
      } catch (e) {
        return this.#medium(e, 'Write Zeroes', NVME_SC_WRITE_FAULT)
      }
      return 0
    }
    const prp = h.prp
    let st = prp.map(prp64(v, off + NVME_SQE_PRP1), prp64(v, off + NVME_SQE_PRP2), bytes)
    if (st !== 0) {
      this.why = `${NVME_IO_NAMES[opcode]!} (SLBA ${slba}, ${nlb} blocks): ${prp.error}`
      return st
    }
    if (opcode === NVME_CMD_READ) {
      this.#stats.reads++
      try {
        h.storage.read(at, bytes)
      } catch (e) {
        return this.#medium(e, 'Read', NVME_SC_READ_ERROR)
      }
      st = prp.toHost(h.staging, bytes)
      if (st === 0) this.#stats.bytesRead += bytes
    } else {
      this.#stats.writes++
      st = prp.fromHost(h.staging, bytes)
      if (st === 0) {
        try {
          h.storage.write(at, bytes, fua)
        } catch (e) {
          return this.#medium(e, 'Write', NVME_SC_WRITE_FAULT)
        }
        this.#stats.bytesWritten += bytes
      }
    }
    if (st !== 0) this.why = `${NVME_IO_NAMES[opcode]!} (SLBA ${slba}, ${nlb} blocks): ${prp.error}`
    this.mediaBytes = st === 0 ? bytes : 0
    return st
  }
}
