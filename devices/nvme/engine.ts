/**
 * The command engine: the queues that exist, fetching and executing submission queue entries,
 * and posting completion queue entries with their phase tag. Datasheet: docs/devices/nvme.md §6–§8.
 *
 * Modelled on QEMU's nvme_process_sq and nvme_post_cqes (hw/nvme/ctrl.c): an SQ tail doorbell
 * schedules a fetch (here `commandLatencyNs` later, on the virtual clock); the fetch reads entries
 * from the head (one DMA read per contiguous run, at most 64 at a time), at most `size` commands
 * in flight per SQ, and executes each; a failed fetch is fatal (CSTS.CFS). A command's completion
 * is due when its data has crossed the medium (`bytes / bytesPerNs`, one medium shared by every
 * queue, in fetch order); then its CQE is written at the CQ tail, the tail advances and the phase
 * flips at each wrap. A full CQ (`(tail + 1) % size == head`) holds completions back, in order,
 * until a head doorbell makes room. Each CQE is two DMA writes — bytes 0..13 (DW0, DW1, SQ head,
 * SQ ID, CID), then the status word with the phase tag — so a driver that reads an entry's fields
 * before it has seen the phase flip (or without dma_rmb after it) reads a half-written entry, as
 * tnic's RX write-back does; a failed CQE write is fatal. Strict mode completes a command that
 * reuses a CID still in flight on its SQ with CMDID_CONFLICT (QEMU does not check).
 */

import type { HostileField } from '../framework/hostile.js'
import { NVME_ADMIN_NAMES, type NvmeAdmin } from './admin.js'
import { NVME_IO_NAMES, type NvmeIo } from './io.js'
import type { NvmeIrq } from './irq.js'
import { CmdPool, DueList, NvmeCq, NvmeSq, type NvmeCmd } from './queues.js'
import * as N from './regs.js'
import type { FaultKind, FaultRule } from '../framework/faults.js'
import type { ClockEvent, VirtualClock } from '../machine/clock.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'

/** The engine's counters (the controller's stats object carries these fields). */
export interface NvmeEngineStats {
  /** Commands fetched from any SQ, and from the admin SQ. */
  commands: number
  adminCommands: number
  /** Completion entries posted, and those with a non-zero status. */
  completions: number
  errors: number
  /** Completions that found their CQ full and waited for the head doorbell. */
  cqFullWaits: number
  /** Commands that reused a CID still in flight on their SQ (strict mode). */
  cidConflicts: number
  /** Failed DMA transactions (data, PRP lists, SQE fetches, CQE writes). */
  dmaErrors: number
}

/** What the engine needs from the PCI function. */
export interface NvmeEngineHost {
  readonly strict: boolean
  readonly commandLatencyNs: number
  readonly bytesPerNs: number
  clock(): VirtualClock
  dmaRead(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
  dmaWrite(bus: number, bytes: Uint8Array, off: number, len: number): MemTxResult
  fault(kind: FaultKind): FaultRule | null
  guestError(message: string, details: Record<string, number | string | boolean>): void
  /** Something fatal happened: CSTS.CFS (the host then halts the engine). */
  fatal(why: string): void
  /** Malicious-device mode: may rewrite a CQE before it is written (PciFunction.hostileRecord). */
  hostileRecord(bus: number, record: Uint8Array, fields: readonly HostileField[]): void
}

/**
 * The CQE fields a hostile controller rewrites (the phase tag shares the status word). The status
 * word is not a double-fetch target: a driver polls it for the phase and reads it again for the
 * status, as Linux's nvme_cqe_pending and nvme_handle_cqe do, and the two reads use different bits.
 */
export const NVME_CQE_HOSTILE_FIELDS: readonly HostileField[] = [
  { name: 'CQE SQ head', off: N.NVME_CQE_SQ_HEAD, size: 2, kind: 'index', doubleFetch: true },
  { name: 'CQE SQ id', off: N.NVME_CQE_SQ_ID, size: 2, kind: 'index' },
  { name: 'CQE command id', off: N.NVME_CQE_CID, size: 2, kind: 'cid', doubleFetch: true },
  { name: 'CQE status', off: N.NVME_CQE_STATUS, size: 2, kind: 'status', mask: 0xfffe },
  { name: 'CQE phase tag', off: N.NVME_CQE_STATUS, size: 2, kind: 'phase', mask: 0x0001 },
]

/** SQEs fetched per DMA read at most (a contiguous run of the queue). */
const SQE_BATCH = 64
const hex = (v: number): string => `0x${v.toString(16)}`

export class NvmeEngine {
  readonly sqs = new Map<number, NvmeSq>()
  readonly cqs = new Map<number, NvmeCq>()
  readonly #host: NvmeEngineHost
  readonly #stats: NvmeEngineStats
  readonly #irq: NvmeIrq
  #admin: NvmeAdmin | null = null
  #io: NvmeIo | null = null
  /** Commands are fetched and completions posted (RDY, not failed, not shut down). */
  #running = false
  /** CSTS.CFS: nothing moves until reset. */
  #halted = false
  readonly #pool = new CmdPool()
  readonly #due = new DueList()
  #postEv: ClockEvent | null = null
  #postAt = Number.POSITIVE_INFINITY
  /** When the shared medium is free again. */
  #mediaBusy = 0
  readonly #touched: NvmeCq[] = []
  readonly #sqe = new Uint8Array(SQE_BATCH * N.NVME_SQE_SIZE)
  readonly #sqeView = new DataView(this.#sqe.buffer)
  readonly #cqe = new Uint8Array(N.NVME_CQE_SIZE)
  readonly #cqeView = new DataView(this.#cqe.buffer)
  /* Handlers bound once: no closure per command. */
  readonly #onFetch = (sq: NvmeSq): void => this.#fetch(sq)
  readonly #onResume = (cq: NvmeCq): void => this.#resume(cq)
  readonly #onPost = (): void => this.#post()
  readonly #pickSq: { sq: NvmeSq | null; fn: (c: NvmeCmd) => boolean } = { sq: null, fn: (c) => c.sq === this.#pickSq.sq }
  readonly #pickCid: { sqid: number; cid: number; fn: (c: NvmeCmd) => boolean } = {
    sqid: -1,
    cid: -1,
    fn: (c) => c.sq.qid === this.#pickCid.sqid && c.cid === this.#pickCid.cid,
  }

  constructor(host: NvmeEngineHost, irq: NvmeIrq, stats: NvmeEngineStats) {
    this.#host = host
    this.#irq = irq
    this.#stats = stats
  }

  /** The command sets (created after the engine: they create and delete its queues). */
  setCommandSets(admin: NvmeAdmin, io: NvmeIo): void {
    this.#admin = admin
    this.#io = io
  }

  get running(): boolean {
    return this.#running
  }

  /** Starts or stops fetching (CSTS.RDY, shutdown); starting fetches what the SQs already hold. */
  setRunning(on: boolean): void {
    this.#running = on && !this.#halted
    if (this.#running) for (const sq of this.sqs.values()) this.#kick(sq)
  }

  /** CSTS.CFS: stop fetching and posting until reset. */
  halt(): void {
    this.#halted = true
    this.#running = false
  }

  /** Commands fetched whose completion entry is not posted yet. */
  get inflight(): number {
    let n = 0
    for (const sq of this.sqs.values()) n += sq.inflight
    return n
  }

  /** When the next completion is due (Infinity when none is). */
  get nextDue(): number {
    return this.#due.head?.due ?? Number.POSITIVE_INFINITY
  }

  sq(qid: number): NvmeSq | undefined {
    return this.sqs.get(qid)
  }

  cq(qid: number): NvmeCq | undefined {
    return this.cqs.get(qid)
  }

  createCq(qid: number, base: number, size: number, ien: boolean, iv: number): NvmeCq {
    const cq = new NvmeCq(qid, base, size, ien, iv, this.#onResume)
    this.cqs.set(qid, cq)
    return cq
  }

  createSq(qid: number, base: number, size: number, cq: NvmeCq): NvmeSq {
    const sq = new NvmeSq(qid, base, size, cq, this.#host.strict, this.#onFetch)
    cq.sqs++
    this.sqs.set(qid, sq)
    return sq
  }

  /** Delete I/O SQ: its commands not yet completed are completed now with ABORT_QUEUE (specification §5.6). */
  deleteSq(sq: NvmeSq): void {
    sq.deleted = true
    if (sq.fetchEv !== null) sq.fetchEv.cancelled = true
    sq.fetchEv = null
    sq.cq.sqs--
    this.sqs.delete(sq.qid)
    const now = this.#host.clock().now
    this.#pickSq.sq = sq
    for (const cmd of this.#due.extract(this.#pickSq.fn)) {
      cmd.status = N.NVME_SC_ABORT_QUEUE
      cmd.dw0 = 0
      cmd.due = now
      this.#due.push(cmd)
    }
    this.#pickSq.sq = null
  }

  deleteCq(cq: NvmeCq): void {
    cq.deleted = true
    if (cq.resumeEv !== null) cq.resumeEv.cancelled = true
    cq.resumeEv = null
    while (cq.waiting > 0) this.#release(cq.unwait())
    this.#irq.forget(cq)
    this.cqs.delete(cq.qid)
  }

  /**
   * Abort of command `cid` on SQ `sqid`: a command still waiting for its completion time (a slow
   * medium, a delay-completion fault) completes now with ABORT_REQ; whether there was one.
   */
  abort(sqid: number, cid: number): boolean {
    this.#pickCid.sqid = sqid
    this.#pickCid.cid = cid
    const found = this.#due.extract(this.#pickCid.fn)
    this.#pickCid.sqid = -1
    if (found.length === 0) return false
    const now = this.#host.clock().now
    for (const cmd of found) {
      cmd.status = N.NVME_SC_ABORT_REQ
      cmd.dw0 = 0
      cmd.due = now
      this.#due.push(cmd)
    }
    if (now < this.#postAt) this.#armPost(now)
    return true
  }

  /** An SQ tail doorbell the controller accepted. */
  setTail(sq: NvmeSq, tail: number): void {
    sq.tail = tail
    this.#kick(sq)
  }

  /** A CQ head doorbell the controller accepted: may deassert the pin and resume posting. */
  setHead(cq: NvmeCq, head: number): void {
    cq.head = head
    this.#irq.headMoved(cq)
    if (cq.waiting > 0 && !cq.full && cq.resumeEv === null && !this.#halted) cq.resumeEv = this.#at(0, cq.onResume)
  }

  /** Every queue and command gone; pending events cancelled; the medium idle. */
  reset(): void {
    if (this.#postEv !== null) this.#postEv.cancelled = true
    this.#postEv = null
    this.#postAt = Number.POSITIVE_INFINITY
    for (const sq of this.sqs.values()) {
      sq.deleted = true
      if (sq.fetchEv !== null) sq.fetchEv.cancelled = true
    }
    for (const cq of this.cqs.values()) {
      cq.deleted = true
      if (cq.resumeEv !== null) cq.resumeEv.cancelled = true
      while (cq.waiting > 0) this.#pool.put(cq.unwait())
    }
    while (this.#due.head !== null) this.#pool.put(this.#due.shift())
    this.sqs.clear()
    this.cqs.clear()
    this.#touched.length = 0
    this.#running = false
    this.#halted = false
    this.#mediaBusy = 0
  }

  /** One line per SQ, then per CQ, in QID order. */
  describe(out: string[]): void {
    for (const qid of [...this.sqs.keys()].sort((a, b) => a - b)) {
      const sq = this.sqs.get(qid)!
      out.push(`SQ ${qid}: base ${hex(sq.base)} size ${sq.size} head ${sq.head} tail ${sq.tail} cq ${sq.cq.qid} pending ${sq.pending} inflight ${sq.inflight}${sq.fetchEv !== null ? ' fetch-scheduled' : ''}`)
    }
    for (const qid of [...this.cqs.keys()].sort((a, b) => a - b)) {
      const cq = this.cqs.get(qid)!
      const irq = cq.ien ? `iv ${cq.iv}` : 'no-irq'
      out.push(`CQ ${qid}: base ${hex(cq.base)} size ${cq.size} head ${cq.head} tail ${cq.tail} phase ${cq.phase} ${irq} used ${cq.used} waiting ${cq.waiting}${cq.full ? ' FULL' : ''}`)
    }
  }

  /**
   * The hot-path events (fetches, posting, resumes) go straight to the machine's clock with
   * handlers bound once: PciFunction.schedule wraps every call in a new closure and a Set entry
   * (about ten times the cost). reset() cancels them, so a controller reset leaves nothing behind.
   */
  #at(delayNs: number, fn: () => void): ClockEvent {
    const clock = this.#host.clock()
    return clock.schedule(clock.now + delayNs, fn)
  }

  #kick(sq: NvmeSq): void {
    if (sq.fetchEv === null && this.#running && !sq.deleted && sq.head !== sq.tail && sq.inflight < sq.size) {
      sq.fetchEv = this.#at(this.#host.commandLatencyNs, sq.onFetch)
    }
  }

  /** Fetches and executes what the SQ holds (nvme_process_sq), at most `size` commands in flight. */
  #fetch(sq: NvmeSq): void {
    sq.fetchEv = null
    if (!this.#running || sq.deleted) return
    const now = this.#host.clock().now
    while (sq.head !== sq.tail && sq.inflight < sq.size && this.#running && !sq.deleted) {
      const run = Math.min(sq.pending, sq.size - sq.head, sq.size - sq.inflight, SQE_BATCH)
      const addr = sq.base + sq.head * N.NVME_SQE_SIZE
      const r = this.#host.dmaRead(addr, this.#sqe, 0, run * N.NVME_SQE_SIZE)
      if (r !== MEMTX_OK) {
        this.#stats.dmaErrors++
        this.#host.fatal(`SQ ${sq.qid} fetch of ${run} entries from ${hex(addr)} (head ${sq.head}) failed (MemTxResult ${r})`)
        return
      }
      for (let i = 0; i < run; i++) {
        sq.head = sq.head + 1 === sq.size ? 0 : sq.head + 1
        this.#execute(sq, i * N.NVME_SQE_SIZE, now)
      }
    }
  }

  #execute(sq: NvmeSq, off: number, now: number): void {
    const v = this.#sqeView
    const host = this.#host
    const cid = v.getUint16(off + N.NVME_SQE_CID, true)
    const cmd = this.#pool.get()
    cmd.sq = sq
    cmd.cid = cid
    cmd.dw0 = 0
    cmd.ownsCid = false
    sq.inflight++
    this.#stats.commands++
    const admin = sq.qid === 0
    if (admin) this.#stats.adminCommands++
    let status: number
    let media = 0
    const cids = sq.cids
    if (cids !== null && cids.has(cid)) {
      status = N.NVME_SC_CMDID_CONFLICT
      this.#stats.cidConflicts++
      host.guestError(`SQ ${sq.qid}: ${opName(admin, v.getUint8(off))} reuses CID ${cid} while a command with that CID is still in flight on this SQ: completed with CMDID_CONFLICT`, { qid: sq.qid, cid })
    } else {
      if (cids !== null) {
        cids.add(cid)
        cmd.ownsCid = true
      }
      const flags = v.getUint8(off + N.NVME_SQE_FLAGS)
      const f = host.fault('error-status')
      if (f !== null) status = (f.status ?? N.NVME_FAULT_STATUS) & 0x7fff
      else {
        let why: string
        if ((flags & N.NVME_SQE_PSDT_MASK) !== 0) {
          status = N.NVME_SC_INVALID_FIELD | N.NVME_SC_DNR
          why = `PSDT ${flags >> 6}: SGLs are not supported (Identify SGLS = 0), use PRPs`
        } else if ((flags & N.NVME_SQE_FUSE_MASK) !== 0) {
          status = N.NVME_SC_INVALID_FIELD
          why = `FUSE ${flags & N.NVME_SQE_FUSE_MASK}: fused operations are not supported`
        } else if (admin) {
          const a = this.#admin!
          status = a.execute(v, off)
          cmd.dw0 = a.result
          media = a.mediaBytes
          why = a.why
        } else {
          const io = this.#io!
          status = io.execute(v, off)
          media = io.mediaBytes
          why = io.why
        }
        if (status !== 0 && host.strict && !notTheGuests(status)) {
          host.guestError(`SQ ${sq.qid} ${opName(admin, v.getUint8(off))} (CID ${cid}) failed with ${N.nvmeStatusName(status)}: ${why}`, { qid: sq.qid, cid, status })
        }
      }
    }
    let due = now
    if (media > 0) {
      due = Math.ceil(Math.max(now, this.#mediaBusy) + media / host.bytesPerNs)
      this.#mediaBusy = due
    }
    const d = host.fault('delay-completion')
    if (d !== null) due += d.delayNs ?? N.NVME_FAULT_DELAY_NS
    cmd.status = status
    cmd.due = due
    this.#due.push(cmd)
    if (due < this.#postAt) this.#armPost(due)
  }

  #armPost(at: number): void {
    if (this.#postEv !== null) this.#postEv.cancelled = true
    this.#postAt = at
    this.#postEv = this.#at(Math.max(0, at - this.#host.clock().now), this.#onPost)
  }

  /** Posts every completion that is due (nvme_post_cqes), then signals each CQ that got entries. */
  #post(): void {
    this.#postEv = null
    this.#postAt = Number.POSITIVE_INFINITY
    if (this.#halted) return
    const now = this.#host.clock().now
    const due = this.#due
    while (due.head !== null && due.head.due <= now && !this.#halted) {
      const cmd = due.shift()
      const cq = cmd.sq.cq
      if (cq.deleted) this.#release(cmd)
      else if (cq.waiting > 0 || cq.full) {
        cq.wait(cmd)
        this.#stats.cqFullWaits++
      } else this.#writeCqe(cq, cmd)
    }
    this.#signal()
    if (due.head !== null && !this.#halted) this.#armPost(due.head.due)
  }

  /** A head doorbell made room in a CQ that had completions waiting. */
  #resume(cq: NvmeCq): void {
    cq.resumeEv = null
    while (cq.waiting > 0 && !cq.full && !this.#halted && !cq.deleted) this.#writeCqe(cq, cq.unwait())
    this.#signal()
  }

  /** Writes a CQE as two DMA writes — DW0..CID (14 bytes), then the status with the phase tag — and releases the command. */
  #writeCqe(cq: NvmeCq, cmd: NvmeCmd): void {
    const v = this.#cqeView
    v.setUint32(N.NVME_CQE_RESULT, cmd.dw0, true)
    v.setUint32(N.NVME_CQE_DW1, 0, true)
    v.setUint16(N.NVME_CQE_SQ_HEAD, cmd.sq.head, true)
    v.setUint16(N.NVME_CQE_SQ_ID, cmd.sq.qid, true)
    v.setUint16(N.NVME_CQE_CID, cmd.cid, true)
    v.setUint16(N.NVME_CQE_STATUS, ((cmd.status << 1) | cq.phase) & 0xffff, true)
    const addr = cq.base + cq.tail * N.NVME_CQE_SIZE
    // Malicious mode rewrites I/O completions; the admin queue's are left alone (probe and reset stay possible).
    if (cq.qid !== 0) this.#host.hostileRecord(addr, this.#cqe, NVME_CQE_HOSTILE_FIELDS)
    let r = this.#host.dmaWrite(addr, this.#cqe, 0, N.NVME_CQE_STATUS)
    if (r === MEMTX_OK) r = this.#host.dmaWrite(addr + N.NVME_CQE_STATUS, this.#cqe, N.NVME_CQE_STATUS, 2)
    if (r !== MEMTX_OK) {
      this.#stats.dmaErrors++
      this.#release(cmd)
      this.#host.fatal(`CQ ${cq.qid} entry ${cq.tail} write to ${hex(addr)} failed (MemTxResult ${r})`)
      return
    }
    if (++cq.tail === cq.size) {
      cq.tail = 0
      cq.phase ^= 1
    }
    if (cq.posted++ === 0) this.#touched.push(cq)
    if (cmd.status !== 0) {
      cq.postedError = true
      this.#stats.errors++
    }
    this.#stats.completions++
    this.#release(cmd)
  }

  #release(cmd: NvmeCmd): void {
    const sq = cmd.sq
    sq.inflight--
    if (cmd.ownsCid) sq.cids!.delete(cmd.cid)
    this.#pool.put(cmd)
    if (sq.fetchEv === null && sq.head !== sq.tail) this.#kick(sq)
  }

  #signal(): void {
    const t = this.#touched
    for (let i = 0; i < t.length; i++) {
      const cq = t[i]!
      if (!cq.deleted) this.#irq.posted(cq, cq.posted, cq.postedError)
      cq.posted = 0
      cq.postedError = false
    }
    while (t.length > 0) t.pop() // not `length = 0`: a runtime call
  }
}

/** Failures that are the bus's or the medium's, not the driver's: they are not guest errors. */
function notTheGuests(status: number): boolean {
  const sc = status & (N.NVME_SCT_MASK | N.NVME_SC_MASK)
  return sc === N.NVME_SC_DATA_XFER_ERROR || sc === N.NVME_SC_INTERNAL || sc === N.NVME_SC_WRITE_FAULT || sc === N.NVME_SC_READ_ERROR
}

function opName(admin: boolean, opcode: number): string {
  const name = admin ? NVME_ADMIN_NAMES[opcode] : NVME_IO_NAMES[opcode]
  return `${admin ? 'admin' : 'I/O'} ${name ?? 'command'} (opcode ${hex(opcode)})`
}
