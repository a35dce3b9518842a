/**
 * One buffer's cache lines over time, as an SVG grid: a column per sample (each DMA API call on the
 * buffer, from the kernel's `dma` trace point, plus any point the caller marks), a row per cache
 * line, each cell coloured by the state of that line in the CPU cache:
 *
 * - absent: not cached (a CPU read goes to RAM);
 * - clean: cached and equal to RAM;
 * - stale: cached, not dirty, but RAM holds something else (the device wrote RAM behind the
 *   cache's back: a CPU read now returns old data, the missing-sync_for_cpu bug);
 * - dirty: cached and newer than RAM (a write-back, on eviction or a clean, will overwrite RAM).
 *
 * A cell also says `dev` when the device wrote that line (a DMA write seen by the hardware tracer)
 * since the previous column: a dirty line over device-written data is the eviction bug waiting.
 *
 * Sampling looks and never touches: CpuCache.lineState / peekLine and Ram.read, no cache fill.
 * When a sample is taken: the `map`, `unmap`, `alloc` and `free` trace points fire after their
 * cache maintenance, so those columns are sampled at once; `sync_for_cpu` and `sync_for_device`
 * fire before it, so their columns are sampled at the next event the recorder sees (the next DMA
 * API call, a device DMA, a mark or stop). CPU loads and stores have no trace point: call mark()
 * after the ones the picture should show.
 */

import type { DmaApiTraceEvent, System } from '../kernel/index.js'
import { svgHeader, xmlEscape } from './ring-svg.js'

export type CacheLineView = 'absent' | 'clean' | 'stale' | 'dirty'

export interface CacheColumn {
  readonly label: string
  /** Virtual time (ns) of the call or mark. */
  readonly time: number
  readonly states: readonly CacheLineView[]
  /** Per line: the device wrote it since the previous column. */
  readonly deviceWrote: readonly boolean[]
}

export interface CacheLineRecorder {
  /** Samples the lines now, as a column with this label (after a CPU load or store, say). */
  mark(label: string): void
  /** Stops listening (the columns stay); samples a pending sync first. */
  stop(): void
  readonly columns: readonly CacheColumn[]
  /** The buffer's physical address (rounded down to a line) and line count. */
  readonly pa: number
  readonly lines: number
  readonly lineSize: number
}

export interface CacheLineOptions {
  /** The buffer's physical address and length. */
  readonly pa: number
  readonly len: number
  /** Which DMA API calls are on this buffer (default: every call whose mapping is `device`'s, or every call). */
  readonly match?: (e: DmaApiTraceEvent) => boolean
  readonly device?: string
}

/** The state of the line holding pa, looked at without touching it. */
export function cacheLineView(sys: System, pa: number): CacheLineView {
  const cache = sys.machine.cache
  const state = cache.lineState(pa)
  if (state === 'invalid') return 'absent'
  if (state === 'dirty') return 'dirty'
  const line = cache.peekLine(pa)!
  const ram = new Uint8Array(cache.lineSize)
  sys.machine.ram.read(pa - (pa % cache.lineSize), ram, 0, cache.lineSize)
  for (let i = 0; i < ram.length; i++) if (ram[i] !== line[i]) return 'stale'
  return 'clean'
}

/** Starts sampling the cache lines of [pa, pa+len) at every matching DMA API call. */
export function recordCacheLines(sys: System, opts: CacheLineOptions): CacheLineRecorder {
  const ls = sys.machine.cache.lineSize
  const first = opts.pa - (opts.pa % ls)
  const lines = Math.ceil((opts.pa + opts.len - first) / ls)
  const columns: CacheColumn[] = []
  const match = opts.match ?? ((e: DmaApiTraceEvent) => opts.device === undefined || e.device === opts.device)
  let wrote = new Array<boolean>(lines).fill(false)
  let pending: { label: string; time: number } | null = null
  /** Bus address of the buffer's start in the live mapping, to place device writes; -1 when none. */
  let bus = -1

  const sample = (label: string, time: number): void => {
    const states: CacheLineView[] = []
    for (let i = 0; i < lines; i++) states.push(cacheLineView(sys, first + i * ls))
    columns.push({ label, time, states, deviceWrote: wrote })
    wrote = new Array<boolean>(lines).fill(false)
  }
  const flush = (): void => {
    if (pending !== null) sample(pending.label, pending.time)
    pending = null
  }
  const onDma = (e: DmaApiTraceEvent): void => {
    if (!match(e)) return
    flush()
    if (e.op === 'map' || e.op === 'alloc') bus = e.dma - (opts.pa - first)
    if (e.op === 'sync_for_cpu' || e.op === 'sync_for_device') pending = { label: e.op, time: e.time }
    else sample(e.op, e.time)
    if (e.op === 'unmap' || e.op === 'free') bus = -1
  }
  const onHw = (e: { device: string; bus: number; len: number; write: boolean; result: number }): void => {
    if (opts.device !== undefined && e.device !== opts.device) return
    flush()
    if (!e.write || e.result !== 0 || bus < 0) return
    for (let i = 0; i < lines; i++) {
      const lo = bus + i * ls
      if (e.bus < lo + ls && e.bus + e.len > lo) wrote[i] = true
    }
  }
  sys.ktrace.on('dma', onDma)
  sys.machine.tracer.on('dma', onHw)
  let stopped = false
  return {
    mark(label: string): void {
      flush()
      sample(label, sys.machine.clock.now)
    },
    stop(): void {
      if (stopped) return
      stopped = true
      flush()
      sys.ktrace.off('dma', onDma)
      sys.machine.tracer.off('dma', onHw)
    },
    columns,
    pa: first,
    lines,
    lineSize: ls,
  }
}

const FILL: Record<CacheLineView, string> = {
  absent: '#f2f2f2',
  clean: '#8fd18f',
  stale: '#f0a030',
  dirty: '#e05050',
}

const MEANING: Record<CacheLineView, string> = {
  absent: 'absent: not cached (reads go to RAM)',
  clean: 'clean: cached, equal to RAM',
  stale: 'stale: cached, RAM differs (a read returns old data)',
  dirty: 'dirty: cached, newer than RAM (a write-back overwrites RAM)',
}

export interface CacheLineSvgOptions {
  readonly title?: string
}

/** The recorded columns as a standalone SVG document (time left to right, lines top to bottom). */
export function cacheLineSvg(rec: Pick<CacheLineRecorder, 'columns' | 'pa' | 'lines' | 'lineSize'>, opts: CacheLineSvgOptions = {}): string {
  const W = 96
  const H = 26
  const X0 = 110
  const Y0 = 90
  const cols = rec.columns
  const width = X0 + Math.max(1, cols.length) * W + 20
  const legendY = Y0 + rec.lines * H + 24
  const height = legendY + 5 * 18 + 10
  const title = opts.title ?? `cache lines of the buffer at 0x${rec.pa.toString(16)} (${rec.lines} × ${rec.lineSize} bytes)`
  const out = svgHeader(width, height, title, 10)
  out.push(`  <text x="10" y="38">time →, one column per DMA API call or marked CPU access; one row per cache line</text>`)
  cols.forEach((c, j) => {
    const x = X0 + j * W
    out.push(`  <text x="${x + W / 2}" y="${Y0 - 22}" text-anchor="middle" font-weight="bold">${xmlEscape(c.label)}</text>`)
    out.push(`  <text x="${x + W / 2}" y="${Y0 - 8}" text-anchor="middle" font-size="9">${c.time} ns</text>`)
  })
  for (let i = 0; i < rec.lines; i++) {
    const y = Y0 + i * H
    out.push(`  <text x="10" y="${y + 17}">line ${i} +0x${(i * rec.lineSize).toString(16)}</text>`)
    cols.forEach((c, j) => {
      const x = X0 + j * W
      const s = c.states[i]!
      out.push(`  <g class="cell ${s}" data-line="${i}" data-column="${j}">`)
      out.push(`    <rect x="${x}" y="${y}" width="${W}" height="${H}" fill="${FILL[s]}" stroke="#333333"/>`)
      out.push(`    <text x="${x + W / 2}" y="${y + 17}" text-anchor="middle">${s}${c.deviceWrote[i] ? ' +dev' : ''}</text>`)
      out.push('  </g>')
    })
  }
  let ly = legendY
  for (const s of ['absent', 'clean', 'stale', 'dirty'] as const) {
    out.push(`  <rect x="10" y="${ly}" width="14" height="12" fill="${FILL[s]}" stroke="#333333"/>`)
    out.push(`  <text x="30" y="${ly + 10}">${xmlEscape(MEANING[s])}</text>`)
    ly += 18
  }
  out.push(`  <text x="10" y="${ly + 10}">+dev: the device wrote this line (DMA) since the previous column</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
