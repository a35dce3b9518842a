/**
 * One DMA buffer's life as a Mermaid sequence diagram, from a real run: the DMA API calls that hand
 * it between the CPU and the device (map, sync_for_device, sync_for_cpu, unmap; or alloc and free
 * for coherent memory), the device's DMA transactions on it, and the reports filed about it. This is
 * the picture DMA-API-HOWTO and the DMA primers draw by hand, drawn by the machine instead.
 *
 * Built on the kernel's `dma` and `report` trace points (kernel/trace/events.ts) and the hardware
 * tracer's `dma` events: a device access belongs to the live buffer of that device whose bus range
 * holds it, or else to the last ended one that did (an access after unmap is the point of a picture).
 */

import type { DmaApiTraceEvent, ReportTraceEvent, System } from '../kernel/index.js'
import { DMA_FROM_DEVICE, DMA_TO_DEVICE } from '../kernel/index.js'

/** One step in a buffer's life. */
export type OwnershipStep =
  | { readonly what: 'api'; readonly event: DmaApiTraceEvent }
  | { readonly what: 'device'; readonly time: number; readonly write: boolean; readonly len: number; readonly count: number; readonly afterEnd: boolean; readonly blocked: boolean }
  | { readonly what: 'report'; readonly event: ReportTraceEvent }

/** One buffer: how it began, and every step since. */
export interface BufferHistory {
  /** 1, 2, 3... in the order buffers were mapped or allocated in this recording. */
  readonly number: number
  readonly first: DmaApiTraceEvent
  readonly steps: OwnershipStep[]
  ended: boolean
}

export interface OwnershipRecorder {
  /** Stops recording (the histories stay). */
  stop(): void
  readonly buffers: readonly BufferHistory[]
  /** The buffer numbered n, or undefined. */
  buffer(n: number): BufferHistory | undefined
}

/** Steps kept per buffer; a long-lived ring buffer is cut here and says so. */
const MAX_STEPS = 400

/** Starts recording the ownership history of every buffer sys maps or allocates from now on. */
export function recordOwnership(sys: System): OwnershipRecorder {
  const buffers: BufferHistory[] = []
  const byId = new Map<number, BufferHistory>()
  const live: BufferHistory[] = []
  const ended: BufferHistory[] = []
  const push = (b: BufferHistory, s: OwnershipStep): void => {
    if (b.steps.length < MAX_STEPS) b.steps.push(s)
  }
  const onDma = (e: DmaApiTraceEvent): void => {
    let b = byId.get(e.id)
    if (e.op === 'map' || e.op === 'alloc') {
      b = { number: buffers.length + 1, first: e, steps: [], ended: false }
      buffers.push(b)
      byId.set(e.id, b)
      live.push(b)
    }
    if (b === undefined) return
    push(b, { what: 'api', event: e })
    if (e.op === 'unmap' || e.op === 'free') {
      b.ended = true
      byId.delete(e.id)
      live.splice(live.indexOf(b), 1)
      ended.push(b)
      if (ended.length > 64) ended.shift()
    }
  }
  const onReport = (e: ReportTraceEvent): void => {
    const b = e.mapping === undefined ? undefined : byId.get(e.mapping)
    if (b !== undefined) push(b, { what: 'report', event: e })
  }
  const within = (b: BufferHistory, device: string, bus: number): boolean =>
    b.first.device === device && bus >= b.first.dma && bus < b.first.dma + b.first.size
  const onHwDma = (e: { time: number; device: string; bus: number; len: number; write: boolean; result: number }): void => {
    let b = live.find((x) => within(x, e.device, e.bus))
    let afterEnd = false
    if (b === undefined) {
      for (let i = ended.length - 1; i >= 0 && b === undefined; i--) if (within(ended[i]!, e.device, e.bus)) b = ended[i]
      afterEnd = b !== undefined
    }
    if (b === undefined) return
    // Consecutive accesses of one kind merge into one arrow with a count.
    const last = b.steps[b.steps.length - 1]
    const blocked = e.result !== 0
    if (last?.what === 'device' && last.write === e.write && last.afterEnd === afterEnd && last.blocked === blocked) {
      b.steps[b.steps.length - 1] = { ...last, len: last.len + e.len, count: last.count + 1 }
    } else push(b, { what: 'device', time: e.time, write: e.write, len: e.len, count: 1, afterEnd, blocked })
  }
  sys.ktrace.on('dma', onDma)
  sys.ktrace.on('report', onReport)
  sys.machine.tracer.on('dma', onHwDma)
  return {
    buffers,
    buffer: (n) => buffers[n - 1],
    stop() {
      sys.ktrace.off('dma', onDma)
      sys.ktrace.off('report', onReport)
      sys.machine.tracer.off('dma', onHwDma)
    },
  }
}

/** The numbers of the buffers some report is about, the buffer of the earliest report first. */
export function reportedBuffers(rec: OwnershipRecorder): number[] {
  const firstReport = (b: BufferHistory): number => {
    for (const s of b.steps) if (s.what === 'report') return s.event.time
    return Infinity
  }
  return rec.buffers
    .map((b) => [b.number, firstReport(b)] as const)
    .filter(([, t]) => t !== Infinity)
    .sort((a, b) => a[1] - b[1] || a[0] - b[0])
    .map(([n]) => n)
}

const dirName = (e: DmaApiTraceEvent): string =>
  e.type === 'coherent' ? 'coherent' : e.dir === DMA_TO_DEVICE ? 'DMA_TO_DEVICE' : e.dir === DMA_FROM_DEVICE ? 'DMA_FROM_DEVICE' : 'DMA_BIDIRECTIONAL'

/** The DMA API call a trace event stands for. */
export function apiName(e: DmaApiTraceEvent): string {
  const kind = e.type === 'scatter-gather' ? 'sg' : 'single'
  switch (e.op) {
    case 'map':
      return `dma_map_${kind}`
    case 'unmap':
      return `dma_unmap_${kind}`
    case 'sync_for_cpu':
      return `dma_sync_${kind}_for_cpu`
    case 'sync_for_device':
      return `dma_sync_${kind}_for_device`
    case 'alloc':
      return e.type === 'coherent' ? 'dma_alloc_coherent' : 'dma_alloc_noncoherent'
    case 'free':
      return e.type === 'coherent' ? 'dma_free_coherent' : 'dma_free_noncoherent'
  }
}

/** Text Mermaid shows as is: no statement separators, entity markers or arrows inside a message. */
const clean = (s: string): string => s.replace(/[;#]/g, ' ').replace(/-->>|->>|-->|->/g, '→').replace(/\s+/g, ' ').trim()

const time = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(3)} ms` : `${(ns / 1e3).toFixed(3)} µs`)

/** The buffer's history as a Mermaid `sequenceDiagram`. */
export function ownershipDiagram(b: BufferHistory): string {
  const f = b.first
  const dev = clean(f.device)
  const out: string[] = ['sequenceDiagram', '    participant CPU as CPU (driver)', `    participant DEV as ${dev}`]
  const site = f.site !== undefined ? `, ${f.op === 'alloc' ? 'allocated' : 'mapped'} at ${f.site}` : ''
  out.push(`    Note over CPU,DEV: buffer ${b.number}, ${f.type} ${f.size} bytes ${dirName(f)}${clean(site)}`)
  let owner = ''
  const own = (next: string, side: 'CPU' | 'DEV'): void => {
    if (next === owner) return
    owner = next
    out.push(`    Note ${side === 'CPU' ? 'left of CPU' : 'right of DEV'}: ${next}`)
  }
  for (const s of b.steps) {
    if (s.what === 'api') {
      const e = s.event
      const range = e.op === 'sync_for_cpu' || e.op === 'sync_for_device' ? (e.len < e.size || e.off > 0 ? ` [${e.off}, ${e.off + e.len})` : '') : ''
      const at = e.site !== undefined ? ` at ${e.site}` : ''
      out.push(`    CPU->>DEV: ${clean(`${apiName(e)}${range}${at} (t=${time(e.time)})`)}`)
      if (e.op === 'map') own('device owns the buffer', 'DEV')
      else if (e.op === 'alloc') own(e.type === 'coherent' ? 'shared by both (coherent)' : 'CPU owns the buffer', e.type === 'coherent' ? 'DEV' : 'CPU')
      else if (e.op === 'sync_for_device') own('device owns the buffer', 'DEV')
      else if (e.op === 'sync_for_cpu') own(range === '' ? 'CPU owns the buffer' : `CPU owns${range}`, 'CPU')
      else own('nobody: the buffer is gone', 'CPU')
    } else if (s.what === 'device') {
      const n = s.count > 1 ? `${s.count} DMA ${s.write ? 'writes' : 'reads'}` : `DMA ${s.write ? 'write' : 'read'}`
      const flag = s.blocked ? ', blocked' : s.afterEnd ? ', after the buffer was unmapped' : ''
      out.push(`    DEV->>CPU: ${clean(`${n}, ${s.len} bytes${flag} (t=${time(s.time)})`)}`)
    } else {
      const e = s.event
      out.push(`    Note over CPU,DEV: ${clean(`REPORT ${e.kind}${e.site !== undefined ? ` at ${e.site}` : ''}`)}`)
    }
  }
  if (b.steps.length >= MAX_STEPS) out.push(`    Note over CPU,DEV: (history cut after ${MAX_STEPS} steps)`)
  return out.join('\n') + '\n'
}
