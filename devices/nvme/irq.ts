/**
 * The controller's interrupt logic: one MSI-X vector per completion queue (its IV), the pin-based
 * (INTx) fallback with the INTMS/INTMC mask, and interrupt coalescing (Feature 08h). Datasheet:
 * docs/devices/nvme.md §7.
 *
 * Modelled on QEMU's nvme_irq_assert / nvme_irq_deassert / nvme_irq_check (hw/nvme/ctrl.c): with
 * MSI-X enabled a completion round notifies the CQ's vector (msix_notify); without it the
 * controller keeps one status bit per vector and drives the pin while `~INTMS & irq_status` is
 * non-zero. QEMU clears a vector's bit only when no CQ at all holds entries (its global
 * cq_pending); here the bit clears when no interrupt-enabled CQ *on that vector* holds entries,
 * which is what the specification describes (NVMe 1.4 §7.5.1). Coalescing follows §5.21.1.8:
 * an interrupt is sent when THR + 1 entries are pending on the vector or TIME × 100 µs after the
 * first of them; TIME = 0 means no delay. The admin CQ and completions with an error status are
 * never coalesced (the specification's recommendation for errors).
 */

import type { ClockEvent } from '../machine/clock.js'
import { NVME_IRQ_COALESCE_TIME_UNIT_NS } from './regs.js'
import type { NvmeCq } from './queues.js'

/** What the interrupt logic needs from the PCI function. */
export interface NvmeIrqHost {
  /** Signals vector v (MSI-X), or asserts the pin (INTx): PciFunction.raiseIrq. */
  raise(vector: number): void
  /** Deasserts the pin: PciFunction.lowerIrq. */
  lower(): void
  /** Whether MSI-X is enabled in the function's capability. */
  msixEnabled(): boolean
  schedule(delayNs: number, fn: () => void): ClockEvent
}

export interface NvmeIrqStats {
  /** MSI-X messages and INTx assertions signalled (a drop-irq fault may lose one after it is counted). */
  interrupts: number
  /** Completion entries whose interrupt coalescing held back. */
  irqCoalesced: number
}

export class NvmeIrq {
  /** INTMS: the pin-based interrupt mask, one bit per vector. */
  intms = 0
  /** Interrupt Coalescing: aggregation threshold (0-based entries) and time (100 µs units). */
  thr = 0
  time = 0
  readonly vectors: number
  readonly #host: NvmeIrqHost
  readonly #stats: NvmeIrqStats
  /** QEMU's irq_status: vectors with an interrupt outstanding for the pin. */
  #status = 0
  #asserted = false
  /** Per vector: entries waiting for a coalesced interrupt, its timer, and interrupt-enabled CQs holding entries. */
  readonly #pending: Uint32Array
  readonly #timers: (ClockEvent | null)[]
  readonly #onTimer: (() => void)[] = []
  readonly #nonEmpty: Uint32Array

  constructor(host: NvmeIrqHost, vectors: number, stats: NvmeIrqStats) {
    this.#host = host
    this.#stats = stats
    this.vectors = vectors
    this.#pending = new Uint32Array(vectors)
    this.#nonEmpty = new Uint32Array(vectors)
    this.#timers = new Array<ClockEvent | null>(vectors).fill(null)
  }

  /** Whether the pin is asserted (INTx mode). */
  get asserted(): boolean {
    return this.#asserted
  }

  /** The pin-based status bits (QEMU's irq_status). */
  get status(): number {
    return this.#status
  }

  /** Entries waiting for a coalesced interrupt on vector v. */
  pendingOn(v: number): number {
    return this.#pending[v] ?? 0
  }

  /** A posting round put `count` entries into cq (error: one of them had an error status). */
  posted(cq: NvmeCq, count: number, error: boolean): void {
    if (!cq.ien) return
    const v = cq.iv
    if (!cq.nonEmpty && cq.head !== cq.tail) {
      cq.nonEmpty = true
      this.#nonEmpty[v]!++
    }
    if (cq.qid === 0 || error || this.thr === 0 || this.time === 0) {
      this.#fire(v)
      return
    }
    const p = this.#pending[v]! + count
    if (p >= this.thr + 1) {
      this.#fire(v)
      return
    }
    this.#pending[v] = p
    this.#stats.irqCoalesced += count
    if (this.#timers[v] === null) this.#timers[v] = this.#host.schedule(this.time * NVME_IRQ_COALESCE_TIME_UNIT_NS, this.#timerFn(v))
  }

  /** The host moved cq's head: when it is empty, its vector's pin condition may clear (QEMU's nvme_irq_deassert). */
  headMoved(cq: NvmeCq): void {
    if (!cq.ien || !cq.nonEmpty || cq.head !== cq.tail) return
    this.#emptied(cq)
  }

  /** cq goes away (deleted, reset): it no longer holds entries. */
  forget(cq: NvmeCq): void {
    if (cq.ien && cq.nonEmpty) this.#emptied(cq)
  }

  /** INTMS / INTMC writes (pin-based mask). */
  setMask(bits: number): void {
    this.intms = (this.intms | bits) >>> 0
    this.#update()
  }

  clearMask(bits: number): void {
    this.intms = (this.intms & ~bits) >>> 0
    this.#update()
  }

  /** Controller reset: mask, coalescing, pending state cleared; the pin deasserted. */
  reset(): void {
    this.intms = 0
    this.thr = this.time = 0
    this.#status = 0
    this.#pending.fill(0)
    this.#nonEmpty.fill(0)
    for (let v = 0; v < this.vectors; v++) {
      const t = this.#timers[v]
      if (t !== null && t !== undefined) t.cancelled = true
      this.#timers[v] = null
    }
    this.#update()
  }

  #emptied(cq: NvmeCq): void {
    cq.nonEmpty = false
    const v = cq.iv
    if (--this.#nonEmpty[v]! === 0 && (this.#status & bit(v)) !== 0) {
      this.#status = (this.#status & ~bit(v)) >>> 0
      this.#update()
    }
  }

  #fire(v: number): void {
    this.#pending[v] = 0
    const t = this.#timers[v]
    if (t !== null && t !== undefined) {
      t.cancelled = true
      this.#timers[v] = null
    }
    if (this.#host.msixEnabled()) {
      this.#stats.interrupts++
      this.#host.raise(v)
      return
    }
    this.#status = (this.#status | bit(v)) >>> 0
    this.#update()
  }

  /** Drives the pin from ~INTMS & irq_status (QEMU's nvme_irq_check); edges only. */
  #update(): void {
    const want = (this.#status & ~this.intms) !== 0 && !this.#host.msixEnabled()
    if (want === this.#asserted) return
    this.#asserted = want
    if (want) {
      this.#stats.interrupts++
      this.#host.raise(0)
    } else this.#host.lower()
  }

  #timerFn(v: number): () => void {
    let fn = this.#onTimer[v]
    if (fn === undefined) {
      fn = (): void => {
        this.#timers[v] = null
        if (this.#pending[v]! > 0) this.#fire(v)
      }
      this.#onTimer[v] = fn
    }
    return fn
  }
}

/** The pin-status bit of a vector (INTMS has 32 bits; without MSI-X every CQ uses vector 0). */
function bit(v: number): number {
  return (1 << (v & 31)) >>> 0
}
