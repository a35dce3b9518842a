// A rig for the mini-NVMe tests: a machine without a kernel, the controller on its PCI bus, and a
// tiny "host" that does what a driver does by hand — program the admin queue, enable, write SQEs
// into RAM, ring doorbells, run the clock, consume CQEs by their phase tag and ring the CQ head
// doorbell. The datasheet is docs/devices/nvme.md.
import {
  MSIX_CAP_OFFSET,
  NVME_ADMIN_CREATE_CQ,
  NVME_ADMIN_CREATE_SQ,
  NVME_CC_ENABLE,
  NVME_CC_IOCQES,
  NVME_CC_IOSQES,
  NVME_CQ_IRQ_ENABLED,
  NVME_CSTS_RDY,
  NVME_QUEUE_PHYS_CONTIG,
  NVME_REG_ACQ,
  NVME_REG_AQA,
  NVME_REG_ASQ,
  NVME_REG_CC,
  NVME_REG_CSTS,
  NVME_REG_DBS,
  NvmeController,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  type Machine,
  type NvmeOptions,
} from '../../devices/index.js'
import { enable, machine, RAM, ramBytes, runClock, type HwOptions } from '../helpers/hw.js'

export { RAM, ramBytes, runClock }

export const ASQ = RAM + 0x1000
export const ACQ = RAM + 0x2000
/** I/O queue q lives at IOQ + q * 0x2000 (SQ) and + 0x1000 (CQ): page aligned, up to 64 entries... or bigger when spaced by the test. */
export const IOQ = RAM + 0x10_0000
export const LISTS = RAM + 0x80_0000 // PRP list pages
export const DATA = RAM + 0x100_0000 // data buffers
export const IDBUF = RAM + 0x3000

export interface SqeFields {
  opcode: number
  cid?: number
  flags?: number
  nsid?: number
  prp1?: number
  prp2?: number
  cdw10?: number
  cdw11?: number
  cdw12?: number
  cdw13?: number
  cdw14?: number
  cdw15?: number
}

export function sqe(f: SqeFields): Uint8Array {
  const b = new Uint8Array(64)
  const v = new DataView(b.buffer)
  v.setUint8(0, f.opcode)
  v.setUint8(1, f.flags ?? 0)
  v.setUint16(2, f.cid ?? 0, true)
  v.setUint32(4, f.nsid ?? 0, true)
  v.setBigUint64(24, BigInt(f.prp1 ?? 0), true)
  v.setBigUint64(32, BigInt(f.prp2 ?? 0), true)
  const dws = [f.cdw10, f.cdw11, f.cdw12, f.cdw13, f.cdw14, f.cdw15]
  dws.forEach((d, i) => v.setUint32(40 + 4 * i, (d ?? 0) >>> 0, true))
  return b
}

export interface Cqe {
  dw0: number
  sqhd: number
  sqid: number
  cid: number
  /** The status field (bits 15:1 of the CQE's status word). */
  status: number
  phase: number
}

export function readCqe(m: Machine, addr: number): Cqe {
  const b = ramBytes(m, addr, 16)
  const v = new DataView(b.buffer)
  const st = v.getUint16(14, true)
  return { dw0: v.getUint32(0, true), sqhd: v.getUint16(8, true), sqid: v.getUint16(10, true), cid: v.getUint16(12, true), status: st >> 1, phase: st & 1 }
}

interface HostQueue {
  base: number
  size: number
  /** SQ: the tail the host writes; CQ: the head the host consumes from, and its expected phase. */
  idx: number
  phase: number
}

export type GuestError = { message: string; details?: Record<string, number | string | boolean> }

export function nvme(opts: NvmeOptions = {}, hw: HwOptions = {}) {
  const m = machine(hw)
  const dev = m.pci.add(new NvmeController({ readyDelayNs: 1000, disableDelayNs: 500, ...opts }))
  enable(dev)
  const errors: GuestError[] = []
  m.onGuestError = (_device, message, details) => errors.push(details === undefined ? { message } : { message, details })
  const w = (off: number, v: number): void => dev.mmioWrite(0, off, 4, v)
  const r = (off: number): number => dev.mmioRead(0, off, 4) as number
  const stride = 4 << dev.config.dstrd
  const sqs = new Map<number, HostQueue>()
  const cqs = new Map<number, HostQueue>()
  let nextCid = 1

  const host = {
    m,
    dev,
    errors,
    w,
    r,
    sqs,
    cqs,
    /** SQ y tail doorbell offset. */
    sqDb: (qid: number): number => NVME_REG_DBS + 2 * qid * stride,
    cqDb: (qid: number): number => NVME_REG_DBS + (2 * qid + 1) * stride,
    /** Runs the clock until nothing is pending, or for `ns` of virtual time (the clock then reads now + ns). */
    run(ns?: number): number {
      if (ns === undefined) return runClock(m)
      const until = m.clock.now + ns
      const n = runClock(m, until)
      m.clock.now = Math.max(m.clock.now, until)
      return n
    },
    /** Programs AQA/ASQ/ACQ and CC, returns CSTS right after the EN write; runs the clock until RDY unless told not to. */
    bringUp(o: { asqs?: number; acqs?: number; cc?: number; wait?: boolean } = {}): number {
      const asqs = o.asqs ?? 32
      const acqs = o.acqs ?? 32
      m.ram.fill(ACQ, 0, acqs * 16)
      w(NVME_REG_AQA, ((acqs - 1) << 16) | (asqs - 1))
      w(NVME_REG_ASQ, ASQ)
      w(NVME_REG_ASQ + 4, 0)
      w(NVME_REG_ACQ, ACQ)
      w(NVME_REG_ACQ + 4, 0)
      w(NVME_REG_CC, o.cc ?? NVME_CC_ENABLE | NVME_CC_IOSQES | NVME_CC_IOCQES)
      const csts = r(NVME_REG_CSTS)
      sqs.set(0, { base: ASQ, size: asqs, idx: 0, phase: 1 })
      cqs.set(0, { base: ACQ, size: acqs, idx: 0, phase: 1 })
      if (o.wait !== false) {
        runClock(m)
        if ((r(NVME_REG_CSTS) & NVME_CSTS_RDY) === 0) throw new Error(`controller not ready: CSTS 0x${r(NVME_REG_CSTS).toString(16)}`)
      }
      return csts
    },
    /** Writes an SQE at the SQ's tail and advances the host's tail (no doorbell). */
    put(qid: number, f: SqeFields): number {
      const q = sqs.get(qid)!
      const cid = f.cid ?? nextCid++ & 0xffff
      m.ram.write(q.base + q.idx * 64, sqe({ ...f, cid }), 0, 64)
      q.idx = (q.idx + 1) % q.size
      return cid
    },
    ring(qid: number): void {
      w(host.sqDb(qid), sqs.get(qid)!.idx)
    },
    /** Takes the CQEs whose phase matches, advancing the host's head; rings the head doorbell when any were taken (unless told not to). */
    reap(qid: number, o: { doorbell?: boolean; max?: number } = {}): Cqe[] {
      const q = cqs.get(qid)!
      const out: Cqe[] = []
      for (;;) {
        if (o.max !== undefined && out.length >= o.max) break
        const c = readCqe(m, q.base + q.idx * 16)
        if (c.phase !== q.phase) break
        out.push(c)
        q.idx++
        if (q.idx === q.size) {
          q.idx = 0
          q.phase ^= 1
        }
      }
      if (out.length > 0 && o.doorbell !== false) w(host.cqDb(qid), q.idx)
      return out
    },
    /** Submits one command, runs the clock, and returns its completion. */
    cmd(qid: number, f: SqeFields, cqid = qid === 0 ? 0 : qid): Cqe {
      host.put(qid, f)
      host.ring(qid)
      runClock(m)
      const got = host.reap(cqid)
      if (got.length !== 1) throw new Error(`expected 1 completion on CQ ${cqid}, got ${got.length}`)
      return got[0]!
    },
    admin(f: SqeFields): Cqe {
      return host.cmd(0, f)
    },
    /** Create I/O CQ then SQ `qid` of `size` entries (queue memory at IOQ + qid * 0x2000 unless given). */
    createPair(qid: number, size = 16, o: { iv?: number; ien?: boolean; sqBase?: number; cqBase?: number } = {}): { sq: Cqe; cq: Cqe } {
      const sqBase = o.sqBase ?? IOQ + qid * 0x2000
      const cqBase = o.cqBase ?? IOQ + qid * 0x2000 + 0x1000
      m.ram.fill(cqBase, 0, size * 16)
      const ien = o.ien ?? true
      const cq = host.admin({ opcode: NVME_ADMIN_CREATE_CQ, prp1: cqBase, cdw10: ((size - 1) << 16) | qid, cdw11: ((o.iv ?? 0) << 16) | NVME_QUEUE_PHYS_CONTIG | (ien ? NVME_CQ_IRQ_ENABLED : 0) })
      if (cq.status === 0) cqs.set(qid, { base: cqBase, size, idx: 0, phase: 1 })
      const sq = host.admin({ opcode: NVME_ADMIN_CREATE_SQ, prp1: sqBase, cdw10: ((size - 1) << 16) | qid, cdw11: (qid << 16) | NVME_QUEUE_PHYS_CONTIG })
      if (sq.status === 0) sqs.set(qid, { base: sqBase, size, idx: 0, phase: 1 })
      return { sq, cq }
    },
    /** Enables MSI-X with every vector programmed and unmasked; returns the first hwirq (vector v is first + v). */
    enableMsix(): number {
      const n = dev.msixVectors
      const first = m.intc.allocMsiVectors(n)
      const table = dev.config.msixTableOffset
      for (let v = 0; v < n; v++) {
        dev.mmioWrite(0, table + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_DATA, 4, first + v)
        dev.mmioWrite(0, table + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
      }
      dev.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE)
      return first
    },
  }
  return host
}

export type NvmeHost = ReturnType<typeof nvme>

/** A byte pattern for data checks. */
export function pattern(len: number, seed = 1): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed * 13 + (i >> 9) * 3) & 0xff
  return b
}

/** Writes 64-bit PRP entries into RAM at addr. */
export function writePrpList(m: Machine, addr: number, entries: readonly number[]): void {
  const b = new Uint8Array(entries.length * 8)
  const v = new DataView(b.buffer)
  entries.forEach((e, i) => v.setBigUint64(8 * i, BigInt(e), true))
  m.ram.write(addr, b, 0, b.length)
}
