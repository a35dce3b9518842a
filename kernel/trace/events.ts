/**
 * Kernel trace events, the counterpart of Linux's tracepoints in include/trace/events/sched.h
 * (`sched_switch`), irq.h (`irq_handler_entry/exit`, `softirq_entry/exit`) and dma.h
 * (`dma_map_page`, `dma_unmap_page`, `dma_sync_single_for_cpu/device`, `dma_alloc`, `dma_free`).
 *
 * The hardware tracer (devices/framework/tracer.ts) sees the bus: MMIO, DMA transactions and IRQ
 * edges. This one sees the CPU side: which context runs (a task, a hard-IRQ handler, softirq
 * work), every DMA API call that moves a buffer's ownership, and every report as it is filed.
 * Together they are what `dmalab trace` turns into a timeline and `dmalab diagram` into a sequence
 * diagram. As with ftrace, a trace point nobody listens to costs one property lookup.
 */

import { CountingEmitter, type VirtualClock } from '../../devices/index.js'

/** The CPU context a slice of execution ran in. */
export type TraceContext = 'process' | 'hardirq' | 'softirq'

/** A context starts ('B') or ends ('E') running on the CPU (sched_switch, irq_handler_entry/exit). */
export interface ContextTraceEvent {
  readonly time: number
  readonly phase: 'B' | 'E'
  readonly context: TraceContext
  /** The task's or handler's name (`irq/33-tnic`, `ksoftirqd`, `probe tnic0`...). */
  readonly name: string
}

/** The DMA API operations that create, move or end a buffer's ownership. */
export type DmaApiOp = 'map' | 'unmap' | 'sync_for_cpu' | 'sync_for_device' | 'alloc' | 'free'

/** One DMA API call on one mapping or allocation (include/trace/events/dma.h). */
export interface DmaApiTraceEvent {
  readonly time: number
  readonly op: DmaApiOp
  readonly device: string
  /** The mapping's id: the same for the map, every sync and the unmap of one buffer. */
  readonly id: number
  /** 'single' | 'scatter-gather' | 'coherent' | 'noncoherent' */
  readonly type: string
  /** The mapping's direction (DMA_BIDIRECTIONAL 0, TO_DEVICE 1, FROM_DEVICE 2). */
  readonly dir: number
  /** The mapping's bus address and size. */
  readonly dma: number
  readonly size: number
  /** The range the call covered within the mapping (the whole of it for map, unmap, alloc, free). */
  readonly off: number
  readonly len: number
  /** `file:line` of the driver call, when it could be found. */
  readonly site?: string
}

/** A report filed by a check, with the mapping it concerns when it concerns one. */
export interface ReportTraceEvent {
  readonly time: number
  readonly kind: string
  readonly message: string
  readonly device?: string
  readonly site?: string
  /** The DmaApiTraceEvent id of the mapping involved. */
  readonly mapping?: number
}

export interface KernelTraceEvents {
  context: (e: ContextTraceEvent) => void
  dma: (e: DmaApiTraceEvent) => void
  report: (e: ReportTraceEvent) => void
}

export type KernelTraceEventName = keyof KernelTraceEvents

const NAMES: readonly KernelTraceEventName[] = ['context', 'dma', 'report']

/**
 * The kernel's trace points. Emitters test `enabled(event)` first, which is one property read; the
 * event object is built only when someone listens.
 */
export class KernelTracer extends CountingEmitter<KernelTraceEvents> {
  readonly clock: VirtualClock

  constructor(clock: VirtualClock) {
    super(NAMES)
    this.clock = clock
  }

  /** Whether anyone listens to `event`. */
  enabled(event: KernelTraceEventName): boolean {
    return this.listenerCount(event) > 0
  }

  /** A context begins or ends running. */
  context(phase: 'B' | 'E', context: TraceContext, name: string): void {
    if (this.listenerCount('context') > 0) this.emit('context', { time: this.clock.now, phase, context, name })
  }
}
