/**
 * The controller's queues and in-flight commands: submission and completion queues as the
 * controller tracks them (base, size, head, tail, phase), the commands between their fetch and
 * their completion entry, and the time-ordered list of completions to post. Datasheet:
 * docs/devices/nvme.md §6 and §7.
 *
 * Modelled on QEMU's NvmeSQueue / NvmeCQueue / NvmeRequest (hw/nvme/nvme.h, hw/nvme/ctrl.c):
 * nvme_inc_sq_head, nvme_inc_cq_tail (the phase flips when the tail wraps), nvme_cq_full
 * ((tail + 1) % size == head), a per-CQ list of completions waiting for room (cq->req_list) and a
 * per-SQ limit of `size` commands in flight (sq->req_list). Queue objects exist only for the
 * queues a driver created, so memory follows what is used, not the 65,535 queue IDs a controller
 * may offer; command records come from a pool and are reused.
 */

import type { ClockEvent } from '../machine/clock.js'

export class NvmeCq {
  readonly qid: number
  /** Bus address of entry 0. */
  readonly base: number
  /** Entries (1-based). */
  readonly size: number
  /** Interrupts enabled (IEN) and the vector (IV). */
  readonly ien: boolean
  readonly iv: number
  head = 0
  tail = 0
  phase = 1
  /** Submission queues that complete into this queue. */
  sqs = 0
  /** Completions waiting for room, oldest first (linked through NvmeCmd.next). */
  waitHead: NvmeCmd | null = null
  waitTail: NvmeCmd | null = null
  waiting = 0
  deleted = false
  /** Whether the queue holds entries the host has not consumed (head != tail), as the interrupt logic counts it. */
  nonEmpty = false
  /** Entries posted in the current posting round, and whether one of them had an error status. */
  posted = 0
  postedError = false
  /** A scheduled resume of posting after a head doorbell made room. */
  resumeEv: ClockEvent | null = null
  readonly onResume: () => void

  constructor(qid: number, base: number, size: number, ien: boolean, iv: number, onResume: (cq: NvmeCq) => void) {
    this.qid = qid
    this.base = base
    this.size = size
    this.ien = ien
    this.iv = iv
    this.onResume = (): void => onResume(this)
  }

  get full(): boolean {
    return (this.tail + 1 === this.size ? 0 : this.tail + 1) === this.head
  }

  /** Entries the controller posted that the host has not released through the head doorbell. */
  get used(): number {
    return this.tail >= this.head ? this.tail - this.head : this.size - this.head + this.tail
  }

  /** Appends a completion to the waiting list. */
  wait(cmd: NvmeCmd): void {
    cmd.next = null
    if (this.waitTail === null) this.waitHead = cmd
    else this.waitTail.next = cmd
    this.waitTail = cmd
    this.waiting++
  }

  /** Takes the oldest waiting completion. */
  unwait(): NvmeCmd {
    const cmd = this.waitHead!
    this.waitHead = cmd.next
    if (this.waitHead === null) this.waitTail = null
    cmd.next = null
    this.waiting--
    return cmd
  }
}

export class NvmeSq {
  readonly qid: number
  readonly base: number
  readonly size: number
  readonly cq: NvmeCq
  head = 0
  tail = 0
  /** Commands fetched whose completion entry is not posted yet. */
  inflight = 0
  /** CIDs in flight (strict mode's CID-conflict check), or null. */
  readonly cids: CidSet | null
  deleted = false
  /** The pending fetch, if any. */
  fetchEv: ClockEvent | null = null
  readonly onFetch: () => void

  constructor(qid: number, base: number, size: number, cq: NvmeCq, trackCids: boolean, onFetch: (sq: NvmeSq) => void) {
    this.qid = qid
    this.base = base
    this.size = size
    this.cq = cq
    this.cids = trackCids ? new CidSet(size) : null
    this.onFetch = (): void => onFetch(this)
  }

  /** Entries between head and tail: submitted, not fetched yet. */
  get pending(): number {
    return this.tail >= this.head ? this.tail - this.head : this.size - this.head + this.tail
  }
}

/**
 * The CIDs in flight on one SQ: an open-addressing hash set (linear probing, backward-shift
 * deletion) sized for the queue — at most `size` commands are in flight, so it stays at most half
 * full — cheaper than a Set and proportional to the queue, not to the 65,536 possible CIDs.
 */
export class CidSet {
  readonly #slots: Int32Array
  readonly #mask: number
  count = 0

  constructor(entries: number) {
    let cap = 4
    while (cap < 2 * entries) cap *= 2
    this.#slots = new Int32Array(cap).fill(-1)
    this.#mask = cap - 1
  }

  has(cid: number): boolean {
    const s = this.#slots
    for (let i = cid & this.#mask; ; i = (i + 1) & this.#mask) {
      const x = s[i]!
      if (x === cid) return true
      if (x === -1) return false
    }
  }

  /** Adds cid (not present). */
  add(cid: number): void {
    const s = this.#slots
    let i = cid & this.#mask
    while (s[i] !== -1) i = (i + 1) & this.#mask
    s[i] = cid
    this.count++
  }

  delete(cid: number): void {
    const s = this.#slots
    const mask = this.#mask
    let i = cid & mask
    while (s[i] !== cid) {
      if (s[i] === -1) return
      i = (i + 1) & mask
    }
    // Backward-shift: move later entries of the probe run into the hole when their home allows it.
    let j = i
    for (;;) {
      j = (j + 1) & mask
      const x = s[j]!
      if (x === -1) break
      const home = x & mask
      if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
        s[i] = x
        i = j
      }
    }
    s[i] = -1
    this.count--
  }
}

/** A command between its fetch and its completion entry (pooled). */
export class NvmeCmd {
  sq!: NvmeSq
  cid = 0
  /** The status field (SC, SCT, M, DNR), without the phase bit. */
  status = 0
  /** Completion DW0. */
  dw0 = 0
  /** Virtual time at which the completion is due. */
  due = 0
  /** Whether this command holds its CID in the SQ's in-flight set (a conflicting one does not). */
  ownsCid = false
  next: NvmeCmd | null = null
}

/** Reused command records. */
export class CmdPool {
  readonly #free: NvmeCmd[] = []

  get(): NvmeCmd {
    return this.#free.pop() ?? new NvmeCmd()
  }

  put(cmd: NvmeCmd): void {
    cmd.next = null
    this.#free.push(cmd)
  }

  get size(): number {
    return this.#free.length
  }
}

/** Completions ordered by due time (ties keep insertion order): a linked list, appended at the end in the common case. */
export class DueList {
  head: NvmeCmd | null = null
  tail: NvmeCmd | null = null
  length = 0

  push(cmd: NvmeCmd): void {
    cmd.next = null
    this.length++
    const t = this.tail
    if (t === null) {
      this.head = this.tail = cmd
      return
    }
    if (t.due <= cmd.due) {
      t.next = cmd
      this.tail = cmd
      return
    }
    // Out of order (a delayed completion ahead of it, or a command with no media time): insert.
    let prev: NvmeCmd | null = null
    let cur = this.head
    while (cur !== null && cur.due <= cmd.due) {
      prev = cur
      cur = cur.next
    }
    cmd.next = cur
    if (prev === null) this.head = cmd
    else prev.next = cmd
  }

  shift(): NvmeCmd {
    const cmd = this.head!
    this.head = cmd.next
    if (this.head === null) this.tail = null
    cmd.next = null
    this.length--
    return cmd
  }

  /** Removes the commands `pick` selects (in order) and returns them as a list linked through next. */
  extract(pick: (cmd: NvmeCmd) => boolean): NvmeCmd[] {
    const out: NvmeCmd[] = []
    let prev: NvmeCmd | null = null
    let cur = this.head
    while (cur !== null) {
      const next: NvmeCmd | null = cur.next
      if (pick(cur)) {
        if (prev === null) this.head = next
        else prev.next = next
        if (this.tail === cur) this.tail = prev
        cur.next = null
        this.length--
        out.push(cur)
      } else prev = cur
      cur = next
    }
    return out
  }
}
