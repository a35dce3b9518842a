/**
 * What an ISA device sees of the bus it is plugged into: its I/O ports, an IRQ line, the 8237 DMA
 * controller pair (for DREQ/DACK), the virtual clock and guest-error logging. The ISA bridge
 * (devices/isa/bridge.ts) implements it.
 */

import type { ClockEvent } from '../machine/clock.js'
import type { I8237 } from './i8237.js'

export interface IsaBus {
  /** The DMA controller pair. */
  readonly dma: I8237
  /** Virtual time now (ns). */
  now(): number
  /** Runs fn after delayNs of virtual time; a bridge reset cancels it. */
  schedule(delayNs: number, fn: () => void): ClockEvent
  /** Drives ISA IRQ line `irq` (edge-triggered on ISA; the bridge turns it into its INTx level). */
  setIrq(irq: number, level: boolean, who: object): void
  /** A guest error (becomes a device-error report). */
  guestError(message: string, details?: Record<string, number | string | boolean>): void
}

/** A device on the ISA bus: a window of I/O ports from ioBase. */
export interface IsaDevice {
  readonly name: string
  readonly ioBase: number
  readonly ioSize: number
  attach(bus: IsaBus): void
  ioRead(off: number): number
  ioWrite(off: number, value: number): void
  reset(): void
}
