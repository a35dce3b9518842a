/**
 * Doorbell decoding: which queue a write at BAR 0 + 0x1000 and up is for, and the checks QEMU's
 * nvme_process_db makes before it takes the value (hw/nvme/ctrl.c: the NVME_GUEST_ERR cases
 * pci_nvme_ub_db_wr_misaligned, _invalid_sq, _invalid_cq, _invalid_sqtail, _invalid_cqhead), with a
 * doorbell stride of 4 << CAP.DSTRD (NVM Express Base Specification 1.4 §3.1.24-25; QEMU always
 * uses 0). Strict mode adds two checks QEMU does not make: an SQ tail that moves backwards and a
 * CQ head beyond the tail are ignored. Datasheet: docs/devices/nvme.md §4 and §15.
 */

import type { NvmeEngine } from './engine.js'
import { NVME_REG_DBS } from './regs.js'

export interface NvmeDoorbellHost {
  readonly strict: boolean
  readonly engine: NvmeEngine
  /** CAP.DSTRD, and the bytes of doorbells from NVME_REG_DBS. */
  readonly dstrd: number
  readonly doorbellBytes: number
  /** Reports a guest error (the host decides whether strict mode lets it through). */
  guest(message: string, details: Record<string, number | string | boolean>): void
  /** Whether CSTS.RDY is set, and whether CC.SHN requested a shutdown. */
  ready(): boolean
  shuttingDown(): boolean
}

const hex = (v: number): string => `0x${v.toString(16)}`

export class NvmeDoorbells {
  readonly #host: NvmeDoorbellHost
  readonly #stride: number

  constructor(host: NvmeDoorbellHost) {
    this.#host = host
    this.#stride = 4 << host.dstrd
  }

  /** "SQ 1 tail", "CQ 0 head": the doorbell at (or just below) BAR offset off. */
  name(off: number): string {
    const idx = Math.floor((off - NVME_REG_DBS) / this.#stride)
    return `${(idx & 1) === 0 ? 'SQ' : 'CQ'} ${idx >> 1} ${(idx & 1) === 0 ? 'tail' : 'head'}`
  }

  /** A write at BAR offset off >= NVME_REG_DBS (the MSI-X table and PBA never get here). */
  write(off: number, size: number, value: number): void {
    const h = this.#host
    const rel = off - NVME_REG_DBS
    if (rel >= h.doorbellBytes) {
      h.guest(`write of ${hex(value)} to unimplemented offset ${hex(off)} (beyond the doorbells)`, { offset: off, value })
      return
    }
    if (rel % this.#stride !== 0) {
      h.guest(`doorbell write of ${value} at ${hex(off)} is not on the ${this.#stride}-byte doorbell stride (CAP.DSTRD ${h.dstrd}): nearest is ${this.name(off)} at ${hex(off - (rel % this.#stride))}; ignored`, { offset: off, value, stride: this.#stride })
      return
    }
    if (size !== 4) {
      h.guest(`${size}-byte doorbell write at ${hex(off)} (${this.name(off)}): doorbells take 32-bit writes; ignored`, { offset: off, size })
      return
    }
    const idx = rel / this.#stride
    if ((idx & 1) === 0) this.#sq(idx >> 1, value >>> 0)
    else this.#cq(idx >> 1, value >>> 0)
  }

  #notReady(): string {
    return this.#host.ready() ? '' : ' (the controller is not ready: CSTS.RDY = 0)'
  }

  #sq(qid: number, v: number): void {
    const h = this.#host
    const sq = h.engine.sq(qid)
    if (sq === undefined) {
      h.guest(`SQ ${qid} tail doorbell written with ${v}, but SQ ${qid} does not exist${this.#notReady()}; ignored`, { doorbell: 'SQ tail', qid, value: v })
      return
    }
    if (v >= sq.size) {
      h.guest(`SQ ${qid} tail doorbell value ${v} is beyond the queue (${sq.size} entries, 0..${sq.size - 1}); ignored`, { doorbell: 'SQ tail', qid, value: v, size: sq.size })
      return
    }
    if (h.strict) {
      const unfetched = v >= sq.head ? v - sq.head : sq.size - sq.head + v
      if (unfetched < sq.pending) {
        h.guest(`SQ ${qid} tail doorbell moved backwards: ${v} after ${sq.tail} with head ${sq.head} (${sq.pending} entries not fetched yet would be withdrawn, or the queue was overfilled); ignored`, { doorbell: 'SQ tail', qid, value: v, tail: sq.tail, head: sq.head })
        return
      }
      if (h.shuttingDown()) h.guest(`SQ ${qid} tail doorbell written with ${v} after CC.SHN requested a shutdown; not fetched until the controller is reset`, { doorbell: 'SQ tail', qid, value: v })
    }
    h.engine.setTail(sq, v)
  }

  #cq(qid: number, v: number): void {
    const h = this.#host
    const cq = h.engine.cq(qid)
    if (cq === undefined) {
      h.guest(`CQ ${qid} head doorbell written with ${v}, but CQ ${qid} does not exist${this.#notReady()}; ignored`, { doorbell: 'CQ head', qid, value: v })
      return
    }
    if (v >= cq.size) {
      h.guest(`CQ ${qid} head doorbell value ${v} is beyond the queue (${cq.size} entries, 0..${cq.size - 1}); ignored`, { doorbell: 'CQ head', qid, value: v, size: cq.size })
      return
    }
    if (h.strict) {
      const consumed = v >= cq.head ? v - cq.head : cq.size - cq.head + v
      if (consumed > cq.used) {
        h.guest(`CQ ${qid} head doorbell ${v} is beyond the tail: head ${cq.head}, tail ${cq.tail}, phase ${cq.phase}: it releases ${consumed} entries but only ${cq.used} were posted; ignored`, { doorbell: 'CQ head', qid, value: v, head: cq.head, tail: cq.tail })
        return
      }
    }
    h.engine.setHead(cq, v)
  }
}
