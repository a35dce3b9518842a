/**
 * The admin command set: Identify, Create/Delete I/O Completion and Submission Queue, Abort, and
 * Get/Set Features for the volatile write cache (06h), the number of queues (07h) and interrupt
 * coalescing (08h). Datasheet: docs/devices/nvme.md §5.
 *
 * Modelled on QEMU's nvme_admin_cmd and its handlers (hw/nvme/ctrl.c: nvme_create_cq,
 * nvme_create_sq, nvme_del_cq, nvme_del_sq, nvme_identify, nvme_get_feature, nvme_set_feature)
 * with the statuses of NVM Express Base Specification 1.4 §5 (Figures 149, 152, 155, 158, 280):
 * a bad QID is QID_INVALID, a Create I/O SQ naming a missing CQ is CQ_INVALID, a size of 0 or above
 * CAP.MQES is QUEUE_SIZE, a misaligned queue base PRP_INVALID_OFFSET, PC = 0 INVALID_FIELD (only
 * physically contiguous queues), a vector the controller cannot use INVALID_VECTOR, deleting a CQ
 * that SQs still use INVALID_QUEUE; Number of Queues cannot change once I/O queues exist
 * (CMD_SEQ_ERROR). Unlike QEMU, Interrupt Coalescing is changeable, and Number of Queues
 * allocates what was asked for, up to the controller's maximum.
 */

import type { NvmeStorage } from './cache.js'
import { activeNamespaceList, identifyController, identifyNamespace, namespaceDescriptors, type NvmeIdentity } from './identify.js'
import type { NvmeIrq } from './irq.js'
import type { PrpMapper } from './prp.js'
import type { NvmeCq, NvmeSq } from './queues.js'
import {
  NVME_ADMIN_ABORT_CMD, NVME_ADMIN_CREATE_CQ, NVME_ADMIN_CREATE_SQ, NVME_ADMIN_DELETE_CQ, NVME_ADMIN_DELETE_SQ, NVME_ADMIN_GET_FEATURES,
  NVME_ADMIN_IDENTIFY, NVME_ADMIN_SET_FEATURES, NVME_CQ_IRQ_ENABLED, NVME_FEAT_CAP_CHANGEABLE, NVME_FEAT_FID_MASK,
  NVME_FEAT_IRQ_COALESCE, NVME_FEAT_NUM_QUEUES, NVME_FEAT_SEL_DEFAULT, NVME_FEAT_SEL_SAVED, NVME_FEAT_SEL_SUPPORTED,
  NVME_FEAT_VOLATILE_WC, NVME_GET_FEAT_SEL_MASK, NVME_GET_FEAT_SEL_SHIFT, NVME_ID_CNS_CTRL, NVME_ID_CNS_NS,
  NVME_ID_CNS_NS_ACTIVE_LIST, NVME_ID_CNS_NS_DESC_LIST, NVME_IDENTIFY_DATA_SIZE, NVME_NSID, NVME_NSID_ALL, NVME_PAGE_SIZE,
  NVME_QUEUE_PHYS_CONTIG, NVME_SC_CMD_SEQ_ERROR, NVME_SC_CQ_INVALID, NVME_SC_DNR, NVME_SC_FEATURE_NOT_PER_NS,
  NVME_SC_FEATURE_NOT_SAVEABLE, NVME_SC_INTERNAL, NVME_SC_INVALID_FIELD, NVME_SC_INVALID_NS, NVME_SC_INVALID_OPCODE, NVME_SC_INVALID_QUEUE,
  NVME_SC_INVALID_VECTOR, NVME_SC_PRP_INVALID_OFFSET, NVME_SC_QID_INVALID, NVME_SC_QUEUE_SIZE, NVME_SET_FEAT_SAVE,
  NVME_SQE_CDW10, NVME_SQE_CDW11, NVME_SQE_NSID, NVME_SQE_OPCODE, NVME_SQE_PRP1, NVME_SQE_PRP2,
} from './regs.js'

/** What the admin commands reach in the controller. */
export interface NvmeAdminHost {
  readonly prp: PrpMapper
  readonly storage: NvmeStorage
  readonly irq: NvmeIrq
  /** CAP.MQES (0-based). */
  readonly mqes: number
  readonly maxIoQueuePairs: number
  /** MSI-X table size. */
  readonly msixVectors: number
  readonly identity: NvmeIdentity
  msixEnabled(): boolean
  sq(qid: number): NvmeSq | undefined
  cq(qid: number): NvmeCq | undefined
  createCq(qid: number, base: number, size: number, ien: boolean, iv: number): void
  createSq(qid: number, base: number, size: number, cq: NvmeCq): void
  deleteSq(sq: NvmeSq): void
  deleteCq(cq: NvmeCq): void
  /** Completes the command `cid` of SQ `sqid` with ABORT_REQ if it has not completed yet; whether it did. */
  abort(sqid: number, cid: number): boolean
}

const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`

export const NVME_ADMIN_NAMES: Readonly<Record<number, string>> = {
  [NVME_ADMIN_DELETE_SQ]: 'Delete I/O SQ',
  [NVME_ADMIN_CREATE_SQ]: 'Create I/O SQ',
  [NVME_ADMIN_DELETE_CQ]: 'Delete I/O CQ',
  [NVME_ADMIN_CREATE_CQ]: 'Create I/O CQ',
  [NVME_ADMIN_IDENTIFY]: 'Identify',
  [NVME_ADMIN_SET_FEATURES]: 'Set Features',
  [NVME_ADMIN_GET_FEATURES]: 'Get Features',
  [NVME_ADMIN_ABORT_CMD]: 'Abort',
}

export class NvmeAdmin {
  /** Completion DW0 of the last command. */
  result = 0
  /** Why the last command failed (guest-error messages). */
  why = ''
  /** Bytes the last command wrote to the medium (disabling the write cache flushes it). */
  mediaBytes = 0
  /** Number of Queues: I/O SQs and CQs allocated (1-based). */
  nsqa: number
  ncqa: number
  /** An I/O queue was created since the last reset (Number of Queues is then fixed). */
  queuesCreated = false
  readonly #host: NvmeAdminHost
  readonly #idCtrl: Uint8Array
  readonly #idNs: Uint8Array
  readonly #idDesc: Uint8Array
  readonly #nsList: Uint8Array
  readonly #emptyList: Uint8Array

  constructor(host: NvmeAdminHost) {
    this.#host = host
    this.nsqa = this.ncqa = host.maxIoQueuePairs
    this.#idCtrl = identifyController(host.identity)
    this.#idNs = identifyNamespace(host.identity)
    this.#idDesc = namespaceDescriptors(host.identity)
    this.#nsList = activeNamespaceList(0)
    this.#emptyList = activeNamespaceList(NVME_NSID)
  }

  /** The Identify Controller data (a copy). */
  get identifyController(): Uint8Array {
    return this.#idCtrl.slice()
  }

  /** Features back to their defaults (controller reset): the write cache on, all queues allocated, no coalescing. */
  reset(): void {
    this.nsqa = this.ncqa = this.#host.maxIoQueuePairs
    this.queuesCreated = false
    this.#host.storage.enabled = this.#host.identity.volatileWriteCache
  }

  /** Executes the admin command at v[off..off+64); returns the status field. */
  execute(v: DataView, off: number): number {
    this.result = 0
    this.mediaBytes = 0
    switch (v.getUint8(off + NVME_SQE_OPCODE)) {
      case NVME_ADMIN_IDENTIFY:
        return this.#identify(v, off)
      case NVME_ADMIN_CREATE_CQ:
        return this.#createCq(v, off)
      case NVME_ADMIN_CREATE_SQ:
        return this.#createSq(v, off)
      case NVME_ADMIN_DELETE_SQ:
        return this.#deleteSq(v, off)
      case NVME_ADMIN_DELETE_CQ:
        return this.#deleteCq(v, off)
      case NVME_ADMIN_SET_FEATURES:
        return this.#setFeatures(v, off)
      case NVME_ADMIN_GET_FEATURES:
        return this.#getFeatures(v, off)
      case NVME_ADMIN_ABORT_CMD:
        return this.#abort(v, off)
      default:
        return this.#fail(NVME_SC_INVALID_OPCODE | NVME_SC_DNR, `admin opcode ${hex(v.getUint8(off + NVME_SQE_OPCODE))} is not supported`)
    }
  }

  /**
   * Abort (specification §5.1): CDW10 bits 15:0 name the SQ, bits 31:16 the command id. A command
   * the controller has not completed yet completes now with ABORT_REQ, and the Abort's DW0 bit 0 is
   * 0; one it already completed, or never saw, is left alone, and DW0 bit 0 is 1 ("not aborted").
   * Either way the Abort itself succeeds.
   */
  #abort(v: DataView, off: number): number {
    const cdw10 = v.getUint32(off + NVME_SQE_CDW10, true)
    const aborted = this.#host.abort(cdw10 & 0xffff, cdw10 >>> 16)
    this.result = aborted ? 0 : 1
    return 0
  }

  #fail(status: number, why: string): number {
    this.why = why
    return status
  }

  #identify(v: DataView, off: number): number {
    const cns = v.getUint32(off + NVME_SQE_CDW10, true) & 0xff
    const nsid = v.getUint32(off + NVME_SQE_NSID, true)
    let data: Uint8Array
    switch (cns) {
      case NVME_ID_CNS_NS:
        if (nsid !== NVME_NSID) return this.#fail(NVME_SC_INVALID_NS | NVME_SC_DNR, `Identify CNS 0: NSID ${hex(nsid)} is not a namespace (the only one is 1)`)
        data = this.#idNs
        break
      case NVME_ID_CNS_CTRL:
        data = this.#idCtrl
        break
      case NVME_ID_CNS_NS_ACTIVE_LIST:
        if (nsid >= 0xffff_fffe) return this.#fail(NVME_SC_INVALID_NS | NVME_SC_DNR, `Identify CNS 2: NSID ${hex(nsid)} is not a valid starting NSID`)
        data = nsid < NVME_NSID ? this.#nsList : this.#emptyList
        break
      case NVME_ID_CNS_NS_DESC_LIST:
        if (nsid !== NVME_NSID) return this.#fail(NVME_SC_INVALID_NS | NVME_SC_DNR, `Identify CNS 3: NSID ${hex(nsid)} is not a namespace (the only one is 1)`)
        data = this.#idDesc
        break
      default:
        return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `Identify CNS ${hex(cns)} is not supported (0, 1, 2 and 3 are)`)
    }
    const prp = this.#host.prp
    let st = prp.map(prp64(v, off + NVME_SQE_PRP1), prp64(v, off + NVME_SQE_PRP2), NVME_IDENTIFY_DATA_SIZE)
    if (st === 0) st = prp.toHost(data, NVME_IDENTIFY_DATA_SIZE)
    if (st !== 0) this.why = `Identify: ${prp.error}`
    return st
  }

  #createCq(v: DataView, off: number): number {
    const h = this.#host
    const dw10 = v.getUint32(off + NVME_SQE_CDW10, true)
    const dw11 = v.getUint32(off + NVME_SQE_CDW11, true)
    const qid = dw10 & 0xffff
    const qsize = dw10 >>> 16
    const flags = dw11 & 0xffff
    const iv = dw11 >>> 16
    const ien = (flags & NVME_CQ_IRQ_ENABLED) !== 0
    const prp1 = prp64(v, off + NVME_SQE_PRP1)
    const what = `Create I/O CQ ${qid}`
    if (qid === 0 || qid > this.ncqa) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `${what}: QID must be 1..${this.ncqa} (Number of Queues allocated ${this.ncqa} CQs)`)
    if (h.cq(qid) !== undefined) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `${what}: the queue already exists`)
    if (qsize === 0 || qsize > h.mqes) return this.#fail(NVME_SC_QUEUE_SIZE | NVME_SC_DNR, `${what}: QSIZE ${qsize} (0-based) must be 1..${h.mqes} (CAP.MQES)`)
    if (prp1 === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: PRP1 (the queue base) is 0`)
    if (prp1 % NVME_PAGE_SIZE !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `${what}: PRP1 ${hex(prp1)} is not page aligned`)
    if (ien && iv !== 0 && !h.msixEnabled()) return this.#fail(NVME_SC_INVALID_VECTOR | NVME_SC_DNR, `${what}: IV ${iv} needs MSI-X (without it every CQ uses vector 0)`)
    if (ien && iv >= h.msixVectors) return this.#fail(NVME_SC_INVALID_VECTOR | NVME_SC_DNR, `${what}: IV ${iv} is beyond the ${h.msixVectors} MSI-X vectors`)
    if ((flags & NVME_QUEUE_PHYS_CONTIG) === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: PC is 0 (only physically contiguous queues are supported; CAP.CQR = 1)`)
    h.createCq(qid, prp1, qsize + 1, ien, ien ? iv : 0)
    this.queuesCreated = true
    return 0
  }

  #createSq(v: DataView, off: number): number {
    const h = this.#host
    const dw10 = v.getUint32(off + NVME_SQE_CDW10, true)
    const dw11 = v.getUint32(off + NVME_SQE_CDW11, true)
    const qid = dw10 & 0xffff
    const qsize = dw10 >>> 16
    const flags = dw11 & 0xffff
    const cqid = dw11 >>> 16
    const prp1 = prp64(v, off + NVME_SQE_PRP1)
    const what = `Create I/O SQ ${qid}`
    const cq = cqid === 0 ? undefined : h.cq(cqid)
    if (cq === undefined) return this.#fail(NVME_SC_CQ_INVALID | NVME_SC_DNR, `${what}: CQID ${cqid} is not an existing I/O CQ (create the CQ first)`)
    if (qid === 0 || qid > this.nsqa) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `${what}: QID must be 1..${this.nsqa} (Number of Queues allocated ${this.nsqa} SQs)`)
    if (h.sq(qid) !== undefined) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `${what}: the queue already exists`)
    if (qsize === 0 || qsize > h.mqes) return this.#fail(NVME_SC_QUEUE_SIZE | NVME_SC_DNR, `${what}: QSIZE ${qsize} (0-based) must be 1..${h.mqes} (CAP.MQES)`)
    if (prp1 === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: PRP1 (the queue base) is 0`)
    if (prp1 % NVME_PAGE_SIZE !== 0) return this.#fail(NVME_SC_PRP_INVALID_OFFSET | NVME_SC_DNR, `${what}: PRP1 ${hex(prp1)} is not page aligned`)
    if ((flags & NVME_QUEUE_PHYS_CONTIG) === 0) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: PC is 0 (only physically contiguous queues are supported; CAP.CQR = 1)`)
    h.createSq(qid, prp1, qsize + 1, cq)
    return 0
  }

  #deleteSq(v: DataView, off: number): number {
    const qid = v.getUint32(off + NVME_SQE_CDW10, true) & 0xffff
    const sq = qid === 0 ? undefined : this.#host.sq(qid)
    if (sq === undefined) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `Delete I/O SQ ${qid}: no such I/O submission queue`)
    this.#host.deleteSq(sq)
    return 0
  }

  #deleteCq(v: DataView, off: number): number {
    const qid = v.getUint32(off + NVME_SQE_CDW10, true) & 0xffff
    const cq = qid === 0 ? undefined : this.#host.cq(qid)
    if (cq === undefined) return this.#fail(NVME_SC_QID_INVALID | NVME_SC_DNR, `Delete I/O CQ ${qid}: no such I/O completion queue`)
    if (cq.sqs > 0) return this.#fail(NVME_SC_INVALID_QUEUE, `Delete I/O CQ ${qid}: ${cq.sqs} submission queue(s) still complete into it (delete them first)`)
    this.#host.deleteCq(cq)
    return 0
  }

  /** NSID checks of a feature that is not per namespace (QEMU's nvme_set_feature). */
  #featureNsid(v: DataView, off: number, what: string): number {
    const nsid = v.getUint32(off + NVME_SQE_NSID, true)
    if (nsid === 0 || nsid === NVME_NSID_ALL) return 0
    if (nsid === NVME_NSID) return this.#fail(NVME_SC_FEATURE_NOT_PER_NS | NVME_SC_DNR, `${what}: the feature is not namespace specific (NSID must be 0)`)
    return this.#fail(NVME_SC_INVALID_NS | NVME_SC_DNR, `${what}: NSID ${hex(nsid)} is not a namespace`)
  }

  #getFeatures(v: DataView, off: number): number {
    const dw10 = v.getUint32(off + NVME_SQE_CDW10, true)
    const fid = dw10 & NVME_FEAT_FID_MASK
    const sel = (dw10 & NVME_GET_FEAT_SEL_MASK) >>> NVME_GET_FEAT_SEL_SHIFT
    const what = `Get Features FID ${hex(fid)}`
    const st = this.#featureNsid(v, off, what)
    if (st !== 0) return st
    const h = this.#host
    const dflt = sel === NVME_FEAT_SEL_DEFAULT || sel === NVME_FEAT_SEL_SAVED
    if (sel > NVME_FEAT_SEL_SUPPORTED) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: SEL ${sel} is reserved`)
    switch (fid) {
      case NVME_FEAT_VOLATILE_WC:
        if (!h.identity.volatileWriteCache) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: the controller has no volatile write cache (VWC = 0)`)
        this.result = sel === NVME_FEAT_SEL_SUPPORTED ? NVME_FEAT_CAP_CHANGEABLE : dflt || h.storage.enabled ? 1 : 0
        return 0
      case NVME_FEAT_NUM_QUEUES: {
        const sqa = dflt ? h.maxIoQueuePairs : this.nsqa
        const cqa = dflt ? h.maxIoQueuePairs : this.ncqa
        this.result = sel === NVME_FEAT_SEL_SUPPORTED ? NVME_FEAT_CAP_CHANGEABLE : ((sqa - 1) | ((cqa - 1) << 16)) >>> 0
        return 0
      }
      case NVME_FEAT_IRQ_COALESCE:
        this.result = sel === NVME_FEAT_SEL_SUPPORTED ? NVME_FEAT_CAP_CHANGEABLE : dflt ? 0 : h.irq.thr | (h.irq.time << 8)
        return 0
      default:
        return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what} is not supported (06h, 07h and 08h are)`)
    }
  }

  #setFeatures(v: DataView, off: number): number {
    const dw10 = v.getUint32(off + NVME_SQE_CDW10, true)
    const dw11 = v.getUint32(off + NVME_SQE_CDW11, true)
    const fid = dw10 & NVME_FEAT_FID_MASK
    const what = `Set Features FID ${hex(fid)}`
    const h = this.#host
    if ((dw10 & NVME_SET_FEAT_SAVE) !== 0) return this.#fail(NVME_SC_FEATURE_NOT_SAVEABLE | NVME_SC_DNR, `${what}: SV set, but no feature is saveable`)
    const st = this.#featureNsid(v, off, what)
    if (st !== 0) return st
    switch (fid) {
      case NVME_FEAT_VOLATILE_WC: {
        if (!h.identity.volatileWriteCache) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: the controller has no volatile write cache (VWC = 0)`)
        const wce = (dw11 & 1) !== 0
        if (!wce && h.storage.enabled) {
          try {
            this.mediaBytes = h.storage.flush()
          } catch (e) {
            return this.#fail(NVME_SC_INTERNAL, `${what}: writing the cache back failed: ${e instanceof Error ? e.message : String(e)}`)
          }
        }
        h.storage.enabled = wce
        this.result = wce ? 1 : 0
        return 0
      }
      case NVME_FEAT_NUM_QUEUES: {
        const nsqr = dw11 & 0xffff
        const ncqr = dw11 >>> 16
        if (this.queuesCreated) return this.#fail(NVME_SC_CMD_SEQ_ERROR | NVME_SC_DNR, `${what}: I/O queues were already created since the last reset`)
        if (nsqr === 0xffff || ncqr === 0xffff) return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what}: NSQR/NCQR FFFFh is not allowed (the values are 0-based)`)
        this.nsqa = Math.min(nsqr + 1, h.maxIoQueuePairs)
        this.ncqa = Math.min(ncqr + 1, h.maxIoQueuePairs)
        this.result = ((this.nsqa - 1) | ((this.ncqa - 1) << 16)) >>> 0
        return 0
      }
      case NVME_FEAT_IRQ_COALESCE:
        h.irq.thr = dw11 & 0xff
        h.irq.time = (dw11 >>> 8) & 0xff
        return 0
      default:
        return this.#fail(NVME_SC_INVALID_FIELD | NVME_SC_DNR, `${what} is not supported (06h, 07h and 08h are)`)
    }
  }
}

/** A 64-bit little-endian field (PRP entries, bases) as a number. */
export function prp64(v: DataView, off: number): number {
  return v.getUint32(off + 4, true) * TWO32 + v.getUint32(off, true)
}
