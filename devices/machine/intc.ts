/**
 * The interrupt controller: level-triggered, shareable INTx lines and edge-triggered MSI vectors.
 *
 * Modelled on what Linux's irq core sees of a GICv3 with an ITS (arm64) or an IOAPIC plus local
 * APIC MSI vectors (x86_64): INTx wires are level sensitive and may be shared by several devices
 * (PCI Local Bus spec 2.2 §2.2.6: a line is asserted while any device drives it low, the
 * wired-OR of QEMU's `pci_irq_handler`/`pci_bus_change_irq_level`); an MSI is a posted memory
 * write whose data names the vector, latched as pending until the CPU acknowledges it (GIC LPIs,
 * x86 IRR bits). Hardware interrupt numbers ("hwirqs"): 0..63 are INTx lines, 1024 and up are MSI
 * vectors handed out by allocMsiVectors. Masking is per hwirq and only defers delivery: a masked
 * line stays asserted and a masked MSI stays pending.
 */

import type { VirtualClock } from './clock.js'
import type { Tracer } from '../framework/tracer.js'

/** A hwirq outside the controller's ranges, or an MSI range that was never allocated. */
export class InterruptControllerError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'InterruptControllerError'
  }
}

export class InterruptController {
  /** INTx hwirqs are 0..NR_LINES-1. */
  // eslint-disable-next-line @typescript-eslint/naming-convention -- a constant, named as in C
  static readonly NR_LINES = 64
  /** MSI hwirqs are MSI_BASE..MSI_BASE+NR_MSI-1. */
  // eslint-disable-next-line @typescript-eslint/naming-convention -- a constant, named as in C
  static readonly MSI_BASE = 1024
  // eslint-disable-next-line @typescript-eslint/naming-convention -- a constant, named as in C
  static readonly NR_MSI = 1024

  /** Called whenever something may have become pending (an assert edge, an MSI, an unmask). */
  onRaise: (() => void) | null = null
  /** INTx assert edges plus MSIs (raised), and MSIs alone (msi). */
  readonly stats = { raised: 0, msi: 0 }

  readonly #clock: VirtualClock
  readonly #tracer: Tracer | null
  /** The sources driving each INTx line. */
  /** (Arrays, not Sets: a Set's add and delete cost 60-180 ns together; a line has a holder or two.) */
  readonly #holders: object[][] = []
  readonly #lineMasked = new Uint8Array(InterruptController.NR_LINES)
  readonly #msiAllocated = new Uint8Array(InterruptController.NR_MSI)
  readonly #msiPending = new Uint8Array(InterruptController.NR_MSI)
  readonly #msiMasked = new Uint8Array(InterruptController.NR_MSI)
  #assertedLines = 0
  #pendingMsis = 0

  constructor(clock: VirtualClock, tracer: Tracer | null = null) {
    this.#clock = clock
    this.#tracer = tracer
    for (let i = 0; i < InterruptController.NR_LINES; i++) this.#holders.push([])
  }

  /** Drives an INTx line for one source; the line is asserted while ANY source holds it. */
  setLine(line: number, source: object, asserted: boolean): void {
    const holders = this.#holders[this.#checkLine(line)]!
    const before = holders.length > 0
    const i = holders.indexOf(source)
    if (asserted) {
      if (i < 0) holders.push(source)
    } else if (i >= 0) {
      holders[i] = holders[holders.length - 1]!
      holders.pop()
    }
    const after = holders.length > 0
    if (before === after) return
    this.#assertedLines += after ? 1 : -1
    this.#trace(line, after ? 'assert' : 'deassert')
    if (after) {
      this.stats.raised++
      this.onRaise?.()
    }
  }

  isAsserted(line: number): boolean {
    return this.#holders[this.#checkLine(line)]!.length > 0
  }

  /** Allocates n consecutive MSI hwirqs (first fit); returns the first, or -1 when none are free. */
  allocMsiVectors(n: number): number {
    const total = InterruptController.NR_MSI
    if (!Number.isInteger(n) || n < 1 || n > total) {
      throw new InterruptControllerError(`allocMsiVectors: n must be an integer from 1 to ${total}, got ${n}`)
    }
    const a = this.#msiAllocated
    for (let i = 0; i + n <= total; i++) {
      let j = 0
      while (j < n && a[i + j] === 0) j++
      if (j === n) {
        a.fill(1, i, i + n)
        return InterruptController.MSI_BASE + i
      }
      i += j // a[i + j] is taken: resume after it
    }
    return -1
  }

  /** Frees an allocated range; its pending and mask state are dropped. */
  freeMsiVectors(first: number, n: number): void {
    const i = this.#checkMsi(first)
    if (!Number.isInteger(n) || n < 1 || i + n > InterruptController.NR_MSI) {
      throw new InterruptControllerError(`freeMsiVectors: bad count ${n} at hwirq ${first}`)
    }
    for (let k = i; k < i + n; k++) {
      if (this.#msiAllocated[k] === 0) {
        throw new InterruptControllerError(`freeMsiVectors: hwirq ${k + InterruptController.MSI_BASE} is not allocated`)
      }
    }
    for (let k = i; k < i + n; k++) {
      if (this.#msiPending[k] !== 0) this.#pendingMsis--
      this.#msiAllocated[k] = 0
      this.#msiPending[k] = 0
      this.#msiMasked[k] = 0
    }
  }

  /** An MSI arrives: the vector is pending until ack(). A second MSI before the ack merges. */
  raiseMsi(hwirq: number): void {
    const i = this.#checkMsi(hwirq)
    this.stats.raised++
    this.stats.msi++
    this.#trace(hwirq, 'msi')
    if (this.#msiPending[i] === 0) {
      this.#msiPending[i] = 1
      this.#pendingMsis++
    }
    this.onRaise?.()
  }

  mask(hwirq: number): void {
    this.#setMask(hwirq, 1)
  }

  unmask(hwirq: number): void {
    this.#setMask(hwirq, 0)
    const pending = hwirq < InterruptController.NR_LINES ? this.isAsserted(hwirq) : this.#msiPending[hwirq - InterruptController.MSI_BASE] === 1
    if (pending) this.onRaise?.()
  }

  isMasked(hwirq: number): boolean {
    if (hwirq < InterruptController.MSI_BASE) return this.#lineMasked[this.#checkLine(hwirq)] === 1
    return this.#msiMasked[this.#checkMsi(hwirq)] === 1
  }

  /** Whether a pending MSI waits for its ack. */
  isMsiPending(hwirq: number): boolean {
    return this.#msiPending[this.#checkMsi(hwirq)] === 1
  }

  /** The lowest pending, unmasked hwirq, or -1. INTx lines come before MSI vectors. */
  nextPending(): number {
    if (this.#assertedLines > 0) {
      for (let l = 0; l < InterruptController.NR_LINES; l++) {
        if (this.#holders[l]!.length > 0 && this.#lineMasked[l] === 0) return l
      }
    }
    if (this.#pendingMsis > 0) {
      const p = this.#msiPending
      const m = this.#msiMasked
      for (let i = 0; i < InterruptController.NR_MSI; i++) {
        if (p[i] === 1 && m[i] === 0) return InterruptController.MSI_BASE + i
      }
    }
    return -1
  }

  /** The CPU took an MSI: its pending bit clears. A no-op for INTx (level: the device deasserts). */
  ack(hwirq: number): void {
    if (hwirq < InterruptController.MSI_BASE) {
      this.#checkLine(hwirq)
      return
    }
    const i = this.#checkMsi(hwirq)
    if (this.#msiPending[i] === 0) return
    this.#msiPending[i] = 0
    this.#pendingMsis--
    this.#trace(hwirq, 'ack')
  }

  #setMask(hwirq: number, v: number): void {
    if (hwirq < InterruptController.MSI_BASE) this.#lineMasked[this.#checkLine(hwirq)] = v
    else this.#msiMasked[this.#checkMsi(hwirq)] = v
  }

  #trace(hwirq: number, kind: 'assert' | 'deassert' | 'msi' | 'ack'): void {
    const t = this.#tracer
    if (t !== null && t.listenerCount('irq') > 0) t.emit('irq', { time: this.#clock.now, hwirq, kind })
  }

  #checkLine(line: number): number {
    if (!Number.isInteger(line) || line < 0 || line >= InterruptController.NR_LINES) {
      throw new InterruptControllerError(`INTx line must be an integer from 0 to ${InterruptController.NR_LINES - 1}, got ${line}`)
    }
    return line
  }

  #checkMsi(hwirq: number): number {
    const i = hwirq - InterruptController.MSI_BASE
    if (!Number.isInteger(hwirq) || i < 0 || i >= InterruptController.NR_MSI) {
      throw new InterruptControllerError(
        `MSI hwirq must be an integer from ${InterruptController.MSI_BASE} to ${InterruptController.MSI_BASE + InterruptController.NR_MSI - 1}, got ${hwirq}`,
      )
    }
    return i
  }
}
