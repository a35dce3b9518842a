/**
 * The hardware tracer: MMIO accesses, DMA transactions, interrupt edges, guest errors and injected
 * faults, as structured events on an eventemitter3 emitter.
 *
 * Modelled on QEMU's trace events for the same points (`pci_dma_*` / `dma_blk_*`, the
 * `memory_region_ops_read/write` MMIO events, `pci_irq_*`, and the `*_GUEST_ERR` events of devices
 * such as hw/nvme). Every event carries the machine's virtual time only, so the same seed and
 * program give the same trace, byte for byte. Emitters check `listenerCount(event)` first: with
 * nobody listening a trace point costs one property lookup.
 */

import { CountingEmitter } from './counting-emitter.js'
import type { VirtualClock } from '../machine/clock.js'

export interface MmioTraceEvent {
  readonly time: number
  readonly device: string
  readonly bar: number
  readonly off: number
  readonly size: number
  /** The value read or written (a bigint for 8-byte accesses). */
  readonly value: number | bigint
  readonly write: boolean
}

export interface DmaTraceEvent {
  readonly time: number
  readonly device: string
  /** The bus address the device used (an IOVA behind an IOMMU). */
  readonly bus: number
  readonly len: number
  /** True for a device write to memory. */
  readonly write: boolean
  /** The MemTxResult: 0 (MEMTX_OK) or the failure code. */
  readonly result: number
}

export type IrqTraceKind = 'assert' | 'deassert' | 'msi' | 'ack'

export interface IrqTraceEvent {
  readonly time: number
  readonly hwirq: number
  readonly kind: IrqTraceKind
}

export interface GuestErrorTraceEvent {
  readonly time: number
  readonly device: string
  readonly message: string
  readonly details?: Readonly<Record<string, number | string | boolean>>
}

export interface FaultTraceEvent {
  readonly time: number
  readonly device: string
  /** The FaultKind of the rule that fired. */
  readonly kind: string
}

export interface TraceEvents {
  mmio: (e: MmioTraceEvent) => void
  dma: (e: DmaTraceEvent) => void
  irq: (e: IrqTraceEvent) => void
  // eslint-disable-next-line @typescript-eslint/naming-convention -- the event's name is its contract
  'guest-error': (e: GuestErrorTraceEvent) => void
  fault: (e: FaultTraceEvent) => void
}

export type TraceEventName = keyof TraceEvents

export const TRACE_EVENT_NAMES: readonly TraceEventName[] = ['mmio', 'dma', 'irq', 'guest-error', 'fault']

/** One recorded event: its name and payload. */
export type TraceRecord =
  | { readonly event: 'mmio'; readonly data: MmioTraceEvent }
  | { readonly event: 'dma'; readonly data: DmaTraceEvent }
  | { readonly event: 'irq'; readonly data: IrqTraceEvent }
  | { readonly event: 'guest-error'; readonly data: GuestErrorTraceEvent }
  | { readonly event: 'fault'; readonly data: FaultTraceEvent }

/** A running capture started by Tracer.record(). */
export interface TraceRecording {
  readonly records: readonly TraceRecord[]
  /** Stops capturing; the records stay. */
  stop(): void
  /** One line per record, in order: a stable text form for comparing runs. */
  lines(): string[]
}

export class Tracer extends CountingEmitter<TraceEvents> {
  readonly clock: VirtualClock

  constructor(clock: VirtualClock) {
    super(TRACE_EVENT_NAMES)
    this.clock = clock
  }

  /** Whether anybody listens to the event (the cheap check emitters make first). */
  wants(event: TraceEventName): boolean {
    return this.listenerCount(event) > 0
  }

  /** Captures the given events (all by default) into an array until stop(). */
  record(events: readonly TraceEventName[] = TRACE_EVENT_NAMES): TraceRecording {
    const records: TraceRecord[] = []
    const offs: (() => void)[] = []
    for (const name of events) {
      const fn = (data: TraceRecord['data']): void => {
        records.push({ event: name, data } as TraceRecord)
      }
      this.on(name, fn)
      offs.push(() => this.off(name, fn))
    }
    return {
      records,
      stop: () => {
        for (const off of offs.splice(0)) off()
      },
      lines: () => records.map(formatRecord),
    }
  }
}

const hex = (n: number): string => `0x${n.toString(16)}`

/** A one-line text form of a trace record (virtual time first). */
export function formatRecord(r: TraceRecord): string {
  switch (r.event) {
    case 'mmio': {
      const d = r.data
      const v = typeof d.value === 'bigint' ? `0x${d.value.toString(16)}` : hex(d.value)
      return `${d.time} mmio ${d.device} bar${d.bar}+${hex(d.off)}/${d.size} ${d.write ? 'W' : 'R'} ${v}`
    }
    case 'dma': {
      const d = r.data
      return `${d.time} dma ${d.device} ${d.write ? 'W' : 'R'} ${hex(d.bus)}+${d.len} result=${d.result}`
    }
    case 'irq':
      return `${r.data.time} irq ${r.data.hwirq} ${r.data.kind}`
    case 'guest-error':
      return `${r.data.time} guest-error ${r.data.device}: ${r.data.message}`
    case 'fault':
      return `${r.data.time} fault ${r.data.device} ${r.data.kind}`
  }
}
