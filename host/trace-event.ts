/**
 * A run as a Chrome trace-event file (the "JSON Object Format" of Google's Trace Event Format
 * document, which Perfetto's UI and chrome://tracing open), built from the kernel's trace points
 * (kernel/trace/events.ts) and the hardware tracer (devices/framework/tracer.ts).
 *
 * Tracks (pid = a group, tid = a track in it):
 *   pid 1 "CPU"        tid 1 process context, tid 2 hard IRQ, tid 3 softirq: slices of what ran;
 *                      reports as global instant events.
 *   pid 2 "Devices"    one track per device: MMIO accesses, DMA transactions, guest errors, faults.
 *   pid 3 "IRQ lines"  one track per hardware IRQ: asserted..deasserted as a slice, MSIs as instants.
 *   pid 4 "Buffers"    one track per DMA mapping or allocation: who owns it, as slices
 *                      ("device owns", "CPU owns", "coherent") from map or alloc to unmap or free.
 * Timestamps are the virtual clock in microseconds, so the same seed gives the same file.
 */

import type { DmaApiTraceEvent, System } from '../kernel/index.js'
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../kernel/index.js'

/** One trace event (the fields this writer uses). */
export interface TraceEventJson {
  name: string
  ph: 'B' | 'E' | 'X' | 'i' | 'M'
  ts: number
  pid: number
  tid: number
  cat?: string
  dur?: number
  s?: 'g' | 'p' | 't'
  args?: Record<string, string | number | boolean>
}

/** The file: `{ traceEvents, displayTimeUnit, otherData }`. */
export interface ChromeTrace {
  traceEvents: TraceEventJson[]
  displayTimeUnit: 'ns' | 'ms'
  otherData: Record<string, string | number | boolean>
}

export interface TraceOptions {
  /** Stop recording MMIO accesses and DMA transactions after this many (default 200,000). */
  readonly maxEvents?: number
}

export const PID_CPU = 1
export const PID_DEVICES = 2
export const PID_IRQS = 3
export const PID_BUFFERS = 4

const CPU_TIDS = { process: 1, hardirq: 2, softirq: 3 } as const

const DIRS = ['DMA_BIDIRECTIONAL', 'DMA_TO_DEVICE', 'DMA_FROM_DEVICE', 'DMA_NONE']

/** Who holds one buffer now, and since when. */
interface BufferTrack {
  readonly tid: number
  readonly event: DmaApiTraceEvent
  owner: string
  since: number
}

/** A recording in progress. */
export interface TraceSession {
  /** Stops recording and returns the file's contents. Open spans are closed at the current time. */
  finish(): ChromeTrace
  /** Buffers seen so far, in order: their trace number (the track), device, type and map site. */
  buffers(): readonly { readonly number: number; readonly event: DmaApiTraceEvent }[]
}

const us = (ns: number): number => ns / 1000

/**
 * Starts recording sys. Call before the workload runs; `finish()` afterwards. Buffers are numbered
 * 1, 2, 3... in the order they were mapped or allocated (the DmaMapping id is process-global).
 */
export function startTrace(sys: System, opts: TraceOptions = {}): TraceSession {
  const maxEvents = opts.maxEvents ?? 200_000
  if (!Number.isInteger(maxEvents) || maxEvents <= 0) throw new RangeError(`maxEvents must be a positive integer, got ${String(maxEvents)}`)
  const events: TraceEventJson[] = []
  const meta: TraceEventJson[] = []
  let dropped = 0
  const tids = new Map<string, number>()
  const deviceTid = (name: string): number => {
    let tid = tids.get(name)
    if (tid === undefined) {
      tid = tids.size + 1
      tids.set(name, tid)
      meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID_DEVICES, tid, args: { name } })
    }
    return tid
  }
  const irqTracks = new Set<number>()
  const irqTid = (hwirq: number): number => {
    if (!irqTracks.has(hwirq)) {
      irqTracks.add(hwirq)
      meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID_IRQS, tid: hwirq + 1, args: { name: `hwirq ${hwirq}` } })
    }
    return hwirq + 1
  }
  let kept = 0
  const bulk = (e: TraceEventJson): void => {
    if (kept >= maxEvents) dropped++
    else {
      kept++
      events.push(e)
    }
  }

  meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: PID_CPU, tid: 0, args: { name: `CPU (${sys.arch}, seed ${sys.seed})` } })
  meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: PID_DEVICES, tid: 0, args: { name: 'Devices' } })
  meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: PID_IRQS, tid: 0, args: { name: 'IRQ lines' } })
  meta.push({ name: 'process_name', ph: 'M', ts: 0, pid: PID_BUFFERS, tid: 0, args: { name: 'DMA buffers (ownership)' } })
  for (const [ctx, tid] of Object.entries(CPU_TIDS)) {
    meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID_CPU, tid, args: { name: ctx === 'process' ? 'process context' : ctx === 'hardirq' ? 'hard IRQ' : 'softirq' } })
  }

  // CPU contexts: B/E slices (they nest: a timer's callback inside softirq work).
  const kt = sys.ktrace
  const onContext = (e: { time: number; phase: 'B' | 'E'; context: keyof typeof CPU_TIDS; name: string }): void => {
    events.push({ name: e.name, ph: e.phase, ts: us(e.time), pid: PID_CPU, tid: CPU_TIDS[e.context], cat: e.context })
  }

  // Buffers: one track each, ownership slices between DMA API calls.
  const buffers = new Map<number, BufferTrack>()
  const order: { number: number; event: DmaApiTraceEvent }[] = []
  const closeSpan = (b: BufferTrack, now: number): void => {
    events.push({ name: b.owner, ph: 'X', ts: us(b.since), dur: us(Math.max(0, now - b.since)), pid: PID_BUFFERS, tid: b.tid, cat: 'ownership' })
  }
  const onDma = (e: DmaApiTraceEvent): void => {
    let b = buffers.get(e.id)
    if (e.op === 'map' || e.op === 'alloc') {
      const number = order.length + 1
      order.push({ number, event: e })
      b = { tid: number, event: e, owner: e.op === 'alloc' ? (e.type === 'coherent' ? 'coherent (shared)' : 'CPU owns') : 'device owns', since: e.time }
      buffers.set(e.id, b)
      const label = `#${number} ${e.device} ${e.type} ${e.size} B ${e.type === 'coherent' ? '' : DIRS[e.dir] ?? ''}`.trimEnd()
      meta.push({ name: 'thread_name', ph: 'M', ts: 0, pid: PID_BUFFERS, tid: number, args: { name: label } })
    }
    if (b === undefined) return
    const args: Record<string, string | number> = { buffer: b.tid, device: e.device, dma: `0x${e.dma.toString(16)}`, off: e.off, len: e.len }
    if (e.site !== undefined) args['site'] = e.site
    events.push({ name: `dma_${e.op}`, ph: 'i', s: 't', ts: us(e.time), pid: PID_BUFFERS, tid: b.tid, cat: 'dma-api', args })
    const next =
      e.op === 'sync_for_cpu'
        ? e.len < e.size ? 'CPU owns (part)' : 'CPU owns'
        : e.op === 'sync_for_device'
          ? 'device owns'
          : e.op === 'unmap' || e.op === 'free'
            ? ''
            : b.owner
    if (next !== b.owner || e.op === 'unmap' || e.op === 'free') {
      closeSpan(b, e.time)
      b.owner = next
      b.since = e.time
    }
    if (e.op === 'unmap' || e.op === 'free') buffers.delete(e.id)
  }
  const onReport = (e: { time: number; kind: string; message: string; site?: string; device?: string; mapping?: number }): void => {
    const args: Record<string, string | number> = { message: e.message }
    if (e.site !== undefined) args['site'] = e.site
    if (e.device !== undefined) args['device'] = e.device
    const b = e.mapping === undefined ? undefined : buffers.get(e.mapping)
    if (b !== undefined) args['buffer'] = b.tid
    events.push({ name: `report: ${e.kind}`, ph: 'i', s: 'g', ts: us(e.time), pid: PID_CPU, tid: CPU_TIDS.process, cat: 'report', args })
  }

  // Hardware: MMIO and DMA on the device's track, IRQ lines on theirs.
  const hw = sys.machine.tracer
  const onMmio = (e: { time: number; device: string; bar: number; off: number; size: number; value: number | bigint; write: boolean }): void => {
    bulk({
      name: `${e.write ? 'write' : 'read'}${e.size * 8} 0x${e.off.toString(16)}`,
      ph: 'i',
      s: 't',
      ts: us(e.time),
      pid: PID_DEVICES,
      tid: deviceTid(e.device),
      cat: 'mmio',
      args: { bar: e.bar, value: `0x${e.value.toString(16)}` },
    })
  }
  const onHwDma = (e: { time: number; device: string; bus: number; len: number; write: boolean; result: number }): void => {
    bulk({
      name: `DMA ${e.write ? 'write' : 'read'} ${e.len} B`,
      ph: 'i',
      s: 't',
      ts: us(e.time),
      pid: PID_DEVICES,
      tid: deviceTid(e.device),
      cat: 'dma',
      args: { bus: `0x${e.bus.toString(16)}`, len: e.len, result: e.result },
    })
  }
  const asserted = new Set<number>()
  const onIrq = (e: { time: number; hwirq: number; kind: string }): void => {
    const tid = irqTid(e.hwirq)
    if (e.kind === 'assert') {
      if (asserted.has(e.hwirq)) return
      asserted.add(e.hwirq)
      events.push({ name: 'asserted', ph: 'B', ts: us(e.time), pid: PID_IRQS, tid, cat: 'irq' })
    } else if (e.kind === 'deassert') {
      if (!asserted.delete(e.hwirq)) return
      events.push({ name: 'asserted', ph: 'E', ts: us(e.time), pid: PID_IRQS, tid, cat: 'irq' })
    } else events.push({ name: e.kind, ph: 'i', s: 't', ts: us(e.time), pid: PID_IRQS, tid, cat: 'irq' })
  }
  const onGuestError = (e: { time: number; device: string; message: string }): void => {
    events.push({ name: 'guest error', ph: 'i', s: 't', ts: us(e.time), pid: PID_DEVICES, tid: deviceTid(e.device), cat: 'device-error', args: { message: e.message } })
  }
  const onFault = (e: { time: number; device: string; kind: string }): void => {
    events.push({ name: `fault: ${e.kind}`, ph: 'i', s: 't', ts: us(e.time), pid: PID_DEVICES, tid: deviceTid(e.device), cat: 'fault' })
  }

  kt.on('context', onContext)
  kt.on('dma', onDma)
  kt.on('report', onReport)
  hw.on('mmio', onMmio)
  hw.on('dma', onHwDma)
  hw.on('irq', onIrq)
  hw.on('guest-error', onGuestError)
  hw.on('fault', onFault)

  let result: ChromeTrace | null = null
  return {
    buffers: () => order,
    finish(): ChromeTrace {
      if (result !== null) return result
      kt.off('context', onContext)
      kt.off('dma', onDma)
      kt.off('report', onReport)
      hw.off('mmio', onMmio)
      hw.off('dma', onHwDma)
      hw.off('irq', onIrq)
      hw.off('guest-error', onGuestError)
      hw.off('fault', onFault)
      const now = sys.clock
      for (const b of buffers.values()) closeSpan(b, now)
      for (const hwirq of asserted) events.push({ name: 'asserted', ph: 'E', ts: us(now), pid: PID_IRQS, tid: hwirq + 1, cat: 'irq' })
      // A context still open (the trace stopped inside a task) ends now, so every B has its E.
      const open: TraceEventJson[][] = [[], [], [], []]
      for (const e of events) {
        if (e.pid !== PID_CPU || (e.ph !== 'B' && e.ph !== 'E')) continue
        const stack = open[e.tid]!
        if (e.ph === 'B') stack.push(e)
        else stack.pop()
      }
      for (const stack of open) for (let i = stack.length - 1; i >= 0; i--) events.push({ ...stack[i]!, ph: 'E', ts: us(now) })
      // Sort by time, stably (B/E order at equal times is preserved).
      const sorted = events.map((e, i) => [e, i] as const).sort((a, b) => a[0].ts - b[0].ts || a[1] - b[1]).map(([e]) => e)
      result = {
        traceEvents: [...meta, ...sorted],
        displayTimeUnit: 'ns',
        otherData: {
          generator: 'dmalab',
          arch: sys.arch,
          seed: sys.seed,
          coherent: sys.options.coherent,
          endNs: now,
          droppedEvents: dropped,
          buffers: order.length,
          reports: sys.reports.length,
        },
      }
      return result
    },
  }
}

/** A one-line description of a buffer: its number, device, type, size, direction and map site. */
export function describeBuffer(number: number, e: DmaApiTraceEvent): string {
  const dir = e.type === 'coherent' ? 'coherent' : e.dir === DMA_TO_DEVICE ? 'DMA_TO_DEVICE' : e.dir === DMA_FROM_DEVICE ? 'DMA_FROM_DEVICE' : (DIRS[e.dir] ?? String(e.dir))
  return `#${number}  ${e.device}  ${e.type} ${e.size} bytes ${dir}${e.site !== undefined ? `  ${e.op === 'alloc' ? 'allocated' : 'mapped'} at ${e.site}` : ''}`
}
