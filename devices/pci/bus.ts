/**
 * The machine's PCI bus (segment 0, bus 0): slots, INTx routing and the MMIO window BARs are
 * decoded in.
 *
 * Modelled on what firmware does before Linux boots (QEMU's i440fx/q35 or the arm64 "virt"
 * board's generic ECAM host bridge, hw/pci-host/gpex.c, with the BIOS/EDK2 doing resource
 * assignment): each function added gets the next slot; its INTx pin is routed through the
 * standard swizzle `line = INTX_BASE + (slot + pin - 1) % 4` (the virt board's four GSIs behind
 * INTA#..INTD#), so the fifth device shares a line with the first, as on real boards; its BARs get
 * naturally aligned bus addresses in a 64-bit MMIO window above RAM, programmed through config
 * space as firmware would. The kernel reads the result back from config space.
 */

import type { Machine } from '../machine/machine.js'
import type { PciFunction } from './function.js'
import { PCI_INTERRUPT_LINE } from './regs.js'

/** The first INTx hwirq the swizzle routes to. */
export const PCI_INTX_BASE = 16
/** How many INTx lines the host bridge has (INTA#..INTD# after the swizzle). */
export const PCI_INTX_LINES = 4
/** The default 64-bit MMIO window base (256 GiB). */
export const PCI_MMIO_WINDOW = 0x40_0000_0000
/** Slots on one conventional bus. */
export const PCI_SLOTS = 32

export class PciBusError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'PciBusError'
  }
}

export interface BarHit {
  readonly fn: PciFunction
  /** The Linux BAR number. */
  readonly bar: number
  /** Offset inside the BAR. */
  readonly off: number
}

export class PciBus {
  /** Start of the MMIO window: PCI_MMIO_WINDOW, or above RAM when RAM reaches that far. */
  readonly mmioBase: number
  readonly #machine: Machine
  readonly #functions: PciFunction[] = []
  #nextMmio: number

  constructor(machine: Machine) {
    this.#machine = machine
    const ramTop = Math.max(0, ...machine.ram.banks.map((b) => b.base + b.size))
    this.mmioBase = Math.max(PCI_MMIO_WINDOW, Math.ceil(ramTop / PCI_MMIO_WINDOW) * PCI_MMIO_WINDOW)
    this.#nextMmio = this.mmioBase
  }

  /** Plugs a function in: slot, INTx line and BAR bases are assigned, then it is attached. */
  add<T extends PciFunction>(fn: T): T {
    if (this.#functions.includes(fn)) throw new PciBusError(`PCI function '${fn.name}' is already on the bus`)
    if (this.find(fn.name) !== undefined) throw new PciBusError(`a PCI function named '${fn.name}' already exists`)
    const slot = this.#functions.length
    if (slot >= PCI_SLOTS) throw new PciBusError(`the PCI bus is full (${PCI_SLOTS} slots)`)
    fn.attach(this.#machine, slot)
    this.#functions.push(fn)
    if (fn.intxPin !== 0) {
      fn.intxLine = PCI_INTX_BASE + ((slot + fn.intxPin - 1) % PCI_INTX_LINES)
      fn.configWrite(PCI_INTERRUPT_LINE, 1, fn.intxLine)
    }
    fn.bars.forEach((b, i) => {
      if (b.size === 0) return
      const base = Math.ceil(this.#nextMmio / b.size) * b.size
      fn.setBarBase(i, base)
      this.#nextMmio = base + b.size
    })
    return fn
  }

  get functions(): readonly PciFunction[] {
    return this.#functions
  }

  find(name: string): PciFunction | undefined {
    return this.#functions.find((f) => f.name === name)
  }

  /** The function, BAR and offset that decode a bus address, if any (BAR addresses as programmed). */
  barAt(busAddr: number): BarHit | undefined {
    for (const fn of this.#functions) {
      const bars = fn.bars
      for (let bar = 0; bar < bars.length; bar++) {
        const b = bars[bar]!
        if (b.size !== 0 && busAddr >= b.base && busAddr < b.base + b.size) return { fn, bar, off: busAddr - b.base }
      }
    }
    return undefined
  }
}
