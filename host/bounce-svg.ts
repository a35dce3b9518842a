/**
 * A swiotlb-bounced buffer and its bounce slot over time, as an SVG grid: a column per DMA API call
 * on the mapping (the kernel's `dma` trace point) and per device access to it (the hardware
 * tracer's `dma` events), two rows — the driver's buffer as the CPU sees it, and the bounce slot as
 * the device sees it — each cell showing the first byte there. A column says where the bytes moved:
 * a DMA API call after which the slot changed copied buffer → slot; one after which the buffer
 * changed copied slot → buffer. That is the copy swiotlb makes at map, sync_for_device (to the
 * slot) and sync_for_cpu, unmap (back), seen from its effect: swiotlb_bounce() has no trace point.
 *
 * Sampling looks and never touches (cpuView: the cached copy of a line when the CPU cache holds
 * one, RAM otherwise; the device's view is RAM on a non-coherent machine). `map` and `unmap` fire
 * after their copies and device accesses after the access, and are sampled at once;
 * `sync_for_cpu` and `sync_for_device` fire before their copies and are sampled at the next event
 * the recorder sees, mark() or stop(). CPU loads and stores have no trace point: call mark() after
 * the ones the picture should show (a mark after a load also closes a pending sync's column).
 */

import type { DmaApiTraceEvent, System } from '../kernel/index.js'
import type { DmaTraceEvent } from '../devices/index.js'
import { apiName } from './ownership-diagram.js'
import { cpuView, svgHeader, xmlEscape } from './ring-svg.js'

export interface BounceColumn {
  readonly label: string
  /** Virtual time (ns) of the call, access or mark. */
  readonly time: number
  /** First byte of the buffer (CPU's view) and of the slot (device's view). */
  readonly buffer: number
  /** null before the buffer is mapped. */
  readonly slot: number | null
  /** What moved the bytes: a swiotlb copy, the device, the CPU, or nothing visible. */
  readonly moved: 'to-slot' | 'to-buffer' | 'device' | 'cpu' | ''
}

export interface BounceRecorder {
  /** Samples now, as a column with this label (after a CPU store, say). */
  mark(label: string): void
  /** Stops listening (the columns stay); samples a pending column first. */
  stop(): void
  readonly columns: readonly BounceColumn[]
  /** The buffer's and the slot's physical addresses once mapped (-1 before). */
  readonly cpuPa: number
  readonly slotPa: () => number
}

/** Records the first mapping `device` makes of the buffer at physical address cpuPa (IOMMU off: bus = slot's pa). */
export function recordBounce(sys: System, opts: { device: string; cpuPa: number }): BounceRecorder {
  const columns: BounceColumn[] = []
  const coherent = sys.options.coherent
  let id = -1
  let slot = -1
  let pending: { label: string; time: number; by: 'api' } | null = null
  const byte = (pa: number, device: boolean): number => {
    if (!device || coherent) return cpuView(sys, pa, 1)[0]!
    const b = new Uint8Array(1)
    sys.machine.ram.read(pa, b, 0, 1)
    return b[0]!
  }
  const sample = (label: string, time: number, by: 'api' | 'device' | 'cpu'): void => {
    const buffer = byte(opts.cpuPa, false)
    const s = slot < 0 ? null : byte(slot, true)
    const prev = columns[columns.length - 1]
    let moved: BounceColumn['moved'] = ''
    if (by === 'api') {
      if (prev === undefined || prev.slot !== s) moved = 'to-slot'
      else if (prev.buffer !== buffer) moved = 'to-buffer'
    } else if (prev === undefined || prev.slot !== s || prev.buffer !== buffer) moved = by
    columns.push({ label, time, buffer, slot: s, moved })
  }
  const flush = (): void => {
    if (pending !== null) sample(pending.label, pending.time, pending.by)
    pending = null
  }
  const onApi = (e: DmaApiTraceEvent): void => {
    if (e.device !== opts.device) return
    if (id < 0 && e.op === 'map') {
      id = e.id
      slot = e.dma
    }
    if (e.id !== id) return
    flush()
    if (e.op === 'sync_for_cpu' || e.op === 'sync_for_device')
      pending = { label: apiName(e), time: e.time, by: 'api' }
    else sample(apiName(e), e.time, 'api')
    if (e.op === 'unmap') id = -2
  }
  const onHw = (e: DmaTraceEvent): void => {
    if (e.device !== opts.device || id < 0 || e.bus + e.len <= slot || e.bus >= slot + 4096) return
    flush()
    sample(`device ${e.write ? 'writes' : 'reads'}`, e.time, 'device')
  }
  sys.ktrace.on('dma', onApi)
  sys.machine.tracer.on('dma', onHw)
  return {
    columns,
    cpuPa: opts.cpuPa,
    slotPa: () => slot,
    mark(label) {
      flush()
      sample(label, sys.machine.clock.now, 'cpu')
    },
    stop() {
      flush()
      sys.ktrace.off('dma', onApi)
      sys.machine.tracer.off('dma', onHw)
    },
  }
}

const PALETTE = ['#e6e6e6', '#f2c45a', '#7aa6e0', '#8fd18f', '#e08a7a', '#b99be0']

/** What a column's `moved` says, in words. */
export const BOUNCE_MOVED: Readonly<Record<BounceColumn['moved'], string>> = {
  'to-slot': 'copy buffer → slot',
  'to-buffer': 'copy slot → buffer',
  device: 'the device',
  cpu: 'the CPU',
  '': '',
}

/** A long label on two lines, cut after the underscore nearest its middle (dma_sync_single_ / for_cpu). */
function splitLabel(label: string): string[] {
  if (label.length <= 16) return [label]
  let cut = -1
  for (let i = 0; i < label.length; i++)
    if (label[i] === '_' && Math.abs(i - label.length / 2) < Math.abs(cut - label.length / 2))
      cut = i
  return cut < 0 ? [label] : [label.slice(0, cut + 1), label.slice(cut + 1)]
}

/** The columns as a standalone SVG document. Deterministic: the same columns give the same text. */
export function bounceSvg(rec: BounceRecorder, opts: { title: string }): string {
  const cols = rec.columns
  const W = 118
  const H = 34
  const X0 = 200
  const Y0 = 84
  const width = X0 + cols.length * W + 20
  const height = Y0 + 2 * H + 80
  const colour = new Map<number, string>()
  for (const c of cols)
    for (const v of [c.buffer, c.slot])
      if (v !== null && !colour.has(v)) colour.set(v, PALETTE[colour.size % PALETTE.length]!)
  const hex = (v: number | null): string =>
    v === null ? 'not mapped' : `0x${v.toString(16).padStart(2, '0')}`
  const out: string[] = []
  out.push(...svgHeader(width, height, opts.title))
  out.push(`  <text x="20" y="${Y0 + H / 2 + 4}">buffer (CPU sees)</text>`)
  out.push(`  <text x="20" y="${Y0 + H + H / 2 + 4}">bounce slot (device sees)</text>`)
  cols.forEach((c, i) => {
    const x = X0 + i * W
    const cx = x + W / 2
    out.push(`  <g class="column ${c.moved}" data-time="${c.time}">`)
    out.push(
      ...splitLabel(c.label).map(
        (part, k, all) =>
          `    <text x="${cx}" y="${Y0 - 24 - (all.length - 1 - k) * 13}" text-anchor="middle" font-weight="bold">${xmlEscape(part)}</text>`,
      ),
    )
    out.push(
      `    <text x="${cx}" y="${Y0 - 10}" text-anchor="middle" font-size="9">t=${c.time} ns</text>`,
    )
    for (const [row, v] of [c.buffer, c.slot].entries()) {
      const y = Y0 + row * H
      const changed = i > 0 && v !== (row === 0 ? cols[i - 1]!.buffer : cols[i - 1]!.slot)
      out.push(
        `    <rect x="${x + 4}" y="${y}" width="${W - 8}" height="${H}" fill="${v === null ? '#ffffff' : colour.get(v)}" stroke="#333333"${changed ? ' stroke-width="3"' : ''}/>`,
      )
      out.push(`    <text x="${cx}" y="${y + H / 2 + 4}" text-anchor="middle">${hex(v)}</text>`)
    }
    if (c.moved !== '')
      out.push(
        `    <text x="${cx}" y="${Y0 + 2 * H + 16}" text-anchor="middle" font-size="9">${xmlEscape(BOUNCE_MOVED[c.moved])}</text>`,
      )
    out.push('  </g>')
  })
  out.push(
    `  <text x="20" y="${height - 14}">cells: the first byte; a thick border: changed since the column before; below: what changed it</text>`,
  )
  out.push('</svg>')
  return out.join('\n') + '\n'
}
