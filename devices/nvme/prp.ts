/**
 * Physical Region Page (PRP) lists: how a command's data pointer becomes a list of bus-address
 * segments, and the data transfer over them. Datasheet: docs/devices/nvme.md §8.
 *
 * Follows QEMU's nvme_map_prp (hw/nvme/ctrl.c; the 2013 version in hw/block/nvme.c) and NVM
 * Express Base Specification 1.4 §4.3: PRP1 may start at any offset in its page and covers the
 * rest of that page; if what remains fits in one page, PRP2 is that page's address (page
 * aligned); otherwise PRP2 points to a PRP list (it may start inside its page), whose entries are
 * page-aligned page addresses, and when more pages remain than the list page holds, the list's
 * last entry points to the next list page (chaining, as Linux's nvme_pci_setup_prps builds it).
 * Misaligned entries are PRP_INVALID_OFFSET | DNR; a null pointer is INVALID_FIELD | DNR (the 2013
 * QEMU rule); a list that cannot be read is DATA_XFER_ERROR. Strict mode also enforces the
 * specification's dword alignment of PRP1 and qword alignment of the list pointer (QEMU does not).
 * List pages are read only as far as the transfer needs them. Adjacent pages merge into one
 * segment, so a physically contiguous buffer moves in one DMA transaction.
 */

import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'
import { NVME_PAGE_SIZE, NVME_SC_DATA_XFER_ERROR, NVME_SC_DNR, NVME_SC_INVALID_FIELD, NVME_SC_PRP_INVALID_OFFSET } from './regs.js'

/** The DMA the mapper does: the controller's dmaRead/dmaWrite (fault injection included). */
export interface PrpHost {
  dmaRead(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
  dmaWrite(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
}

const PAGE = NVME_PAGE_SIZE
/** Offset within a page: x & (PAGE - 1), exact for integers below 2^53 (x % PAGE is an fmod() call above 2^31). */
const pageOff = (x: number): number => x & (PAGE - 1)
const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`

export class PrpMapper {
  /** Segments of the last successful map(): bus address and length. */
  readonly segAddr: Float64Array
  readonly segLen: Float64Array
  segCount = 0
  /** Why the last map() or transfer failed, for guest-error messages. */
  error = ''
  /** The bus address of the last failed DMA, and its MemTxResult. */
  failedBus = 0
  failedResult: MemTxResult = MEMTX_OK
  /** PRP list pages read so far (for tests and the harness). */
  listReads = 0
  strict: boolean
  readonly #host: PrpHost
  readonly #list = new Uint8Array(PAGE)
  readonly #view = new DataView(this.#list.buffer)

  constructor(host: PrpHost, maxBytes: number, strict: boolean) {
    this.#host = host
    this.strict = strict
    const max = Math.ceil(maxBytes / PAGE) + 1
    this.segAddr = new Float64Array(max)
    this.segLen = new Float64Array(max)
  }

  /** Resolves PRP1/PRP2 for a transfer of len bytes (1 <= len <= the MDTS the caller checked); returns a status (0: mapped). */
  map(prp1: number, prp2: number, len: number): number {
    this.segCount = 0
    if (prp1 === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, 'PRP1 is 0')
    if (this.strict && (prp1 & 3) !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `PRP1 ${hex(prp1)} is not dword aligned`)
    const first = Math.min(len, PAGE - pageOff(prp1))
    this.#add(prp1, first)
    len -= first
    if (len === 0) return 0
    if (len <= PAGE) {
      if (prp2 === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `PRP2 is 0 but ${len} bytes remain after PRP1's page`)
      if (pageOff(prp2) !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `PRP2 ${hex(prp2)} (the second data page) is not page aligned`)
      this.#add(prp2, len)
      return 0
    }
    if (prp2 === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `PRP2 (the PRP list pointer) is 0 but ${len} bytes remain after PRP1's page`)
    if (this.strict && (prp2 & 7) !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `PRP2 ${hex(prp2)} (the PRP list pointer) is not qword aligned`)
    let list = prp2
    let nents = (PAGE - pageOff(prp2)) >> 3
    if (!this.#readList(list, Math.min(nents, Math.ceil(len / PAGE)))) return NVME_SC_DATA_XFER_ERROR
    let i = 0
    while (len > 0) {
      let ent = this.#entry(i)
      if (i === nents - 1 && len > PAGE) {
        if (ent === 0 || pageOff(ent) !== 0) {
          const what = `PRP list entry ${i} at ${hex(list + 8 * i)} (the pointer to the next list page) ${ent === 0 ? 'is 0' : `${this.#entryHex(i)} is not page aligned`}`
          return this.#fail(ent === 0 ? NVME_SC_INVALID_FIELD | NVME_SC_DNR : NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, what)
        }
        list = ent
        nents = PAGE >> 3
        if (!this.#readList(list, Math.min(nents, Math.ceil(len / PAGE)))) return NVME_SC_DATA_XFER_ERROR
        i = 0
        ent = this.#entry(0)
      }
      if (pageOff(ent) !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `PRP list entry ${i} at ${hex(list + 8 * i)}: ${this.#entryHex(i)} is not page aligned`)
      if (ent === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `PRP list entry ${i} at ${hex(list + 8 * i)} is 0`)
      const n = Math.min(len, PAGE)
      this.#add(ent, n)
      len -= n
      i++
    }
    return 0
  }

  /** DMA-writes buf[0..len) to the mapped segments (device to host); returns a status. */
  toHost(buf: Uint8Array, len: number): number {
    let off = 0
    for (let i = 0; i < this.segCount && off < len; i++) {
      const n = Math.min(this.segLen[i]!, len - off)
      const r = this.#host.dmaWrite(this.segAddr[i]!, buf, off, n)
      if (r !== MEMTX_OK) return this.#dmaFailed(this.segAddr[i]!, r, 'data write')
      off += n
    }
    return 0
  }

  /** DMA-reads the mapped segments into buf[0..len) (host to device); returns a status. */
  fromHost(buf: Uint8Array, len: number): number {
    let off = 0
    for (let i = 0; i < this.segCount && off < len; i++) {
      const n = Math.min(this.segLen[i]!, len - off)
      const r = this.#host.dmaRead(this.segAddr[i]!, buf, off, n)
      if (r !== MEMTX_OK) return this.#dmaFailed(this.segAddr[i]!, r, 'data read')
      off += n
    }
    return 0
  }

  /** The segments as text, for traces and tests. */
  describe(): string {
    const out: string[] = []
    for (let i = 0; i < this.segCount; i++) out.push(`${hex(this.segAddr[i]!)}+${this.segLen[i]!}`)
    return out.join(' ')
  }

  #add(addr: number, len: number): void {
    const k = this.segCount
    if (k > 0 && this.segAddr[k - 1]! + this.segLen[k - 1]! === addr) this.segLen[k - 1] = this.segLen[k - 1]! + len
    else {
      this.segAddr[k] = addr
      this.segLen[k] = len
      this.segCount = k + 1
    }
  }

  #readList(addr: number, entries: number): boolean {
    this.listReads++
    const r = this.#host.dmaRead(addr, this.#list, 0, entries * 8)
    if (r === MEMTX_OK) return true
    this.#dmaFailed(addr, r, 'PRP list read')
    return false
  }

  #entry(i: number): number {
    return this.#view.getUint32(8 * i + 4, true) * TWO32 + this.#view.getUint32(8 * i, true)
  }

  /** Entry i exactly as written (a number loses bits above 2^53). */
  #entryHex(i: number): string {
    const hi = this.#view.getUint32(8 * i + 4, true)
    const lo = this.#view.getUint32(8 * i, true)
    return hi === 0 ? hex(lo) : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`
  }

  #fail(status: number, why: string): number {
    this.error = why
    this.segCount = 0
    return status
  }

  #dmaFailed(bus: number, r: MemTxResult, what: string): number {
    this.failedBus = bus
    this.failedResult = r
    this.error = `${what} at ${hex(bus)} failed (MemTxResult ${r})`
    return NVME_SC_DATA_XFER_ERROR
  }
}
