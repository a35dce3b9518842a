/**
 * `npm run experiment:pio-vs-dma`: the experiment behind the seed documents' claim that DMA pays
 * off above a few KiB and frees the CPU. With the default cost model (kernel/sched/costs.ts) and a
 * default copy engine, it moves N bytes (64 B .. 4 MiB) into the engine's SRAM through the
 * reference driver, once by PIO (ce_to_sram_pio: the CPU writes every 32-bit word to PIO_DATA)
 * and once by DMA (ce_to_sram_dma: map, program, the engine reads the buffer, completion IRQ,
 * unmap), and measures the CPU's busy time (sys.cpu.busyNs) and the completion latency (virtual
 * time from the call to its return). DMA runs `reps` times per size and is averaged: the
 * interrupt's delivery latency is seeded.
 *
 * Run as a script it prints a table, writes docs/experiments/pio-vs-dma.svg and refreshes the
 * results section of docs/experiments/pio-vs-dma.md. test/experiments/pio-vs-dma.test.ts runs a
 * subset of the sweep and checks the claims.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  alloc_pages, boot, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_single, get_order,
  GFP_KERNEL, mem_write_bytes, pci_register_driver, page_address, type BootOptions, type CpuAddr,
} from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { ce_driver, ce_to_sram_dma, ce_to_sram_pio } from '../../drivers/misc/copy-engine.js'

export interface Cost {
  /** CPU busy time, ns. */
  cpuNs: number
  /** Virtual time from the call to its return, ns. */
  latencyNs: number
}
export interface Row {
  size: number
  pio: Cost
  dma: Cost
  /** CPU time of dma_map_single + dma_mapping_error + dma_unmap_single of the buffer alone. */
  mapNs: number
}

export const SIZES = Array.from({ length: 17 }, (_, i) => 64 << i) // 64 B .. 4 MiB

/** Runs the sweep on one system (default platform and costs unless opts say otherwise). */
export async function sweep(sizes: readonly number[] = SIZES, { reps = 8, opts = {} }: { reps?: number; opts?: BootOptions } = {}): Promise<Row[]> {
  const sys = boot({ log: 'silent', checks: { stacks: false }, ...opts, devices: [new CopyEngine()] })
  const rows: Row[] = []
  await sys.run(async () => {
    if ((await pci_register_driver(ce_driver)) !== 0) throw new Error('pio-vs-dma: the copy-engine driver did not bind')
    const pdev = sys.pciDevice('ce0')!
    const measure = async (fn: () => Promise<number>): Promise<Cost> => {
      const b0 = sys.cpu.busyNs
      const t0 = sys.clock
      const rc = await fn()
      if (rc !== 0) throw new Error(`pio-vs-dma: transfer failed with ${rc}`)
      return { cpuNs: sys.cpu.busyNs - b0, latencyNs: sys.clock - t0 }
    }
    for (const size of sizes) {
      const order = get_order(size)
      const page = alloc_pages(GFP_KERNEL, order)
      if (page === null) throw new Error(`pio-vs-dma: no memory for ${size} bytes`)
      const src: CpuAddr = page_address(page)
      mem_write_bytes(src, Uint8Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff))
      // PIO has no seeded step (no interrupt, no device timing): one run is exact.
      const pio = await measure(() => ce_to_sram_pio(pdev, src, size))
      const dma: Cost = { cpuNs: 0, latencyNs: 0 }
      for (let r = 0; r < reps; r++) {
        const c = await measure(() => ce_to_sram_dma(pdev, src, size))
        dma.cpuNs += c.cpuNs / reps
        dma.latencyNs += c.latencyNs / reps
      }
      const b0 = sys.cpu.busyNs
      const dev = pdev.dev
      const handle = dma_map_single(dev, src, size, DMA_TO_DEVICE)
      if (dma_mapping_error(dev, handle) !== 0) throw new Error('pio-vs-dma: mapping failed')
      dma_unmap_single(dev, handle, size, DMA_TO_DEVICE)
      rows.push({ size, pio, dma, mapNs: sys.cpu.busyNs - b0 })
    }
  })
  if (sys.reports.length > 0) throw new Error(`pio-vs-dma: the workload got reports: ${sys.reports.map((r) => r.kind).join(', ')}`)
  return rows
}

/**
 * The size at which DMA's cost (cpuNs or latencyNs) falls below PIO's for good: the last sign
 * change of log(pio / dma), interpolated linearly in log2(size). null if DMA never wins.
 */
export function crossover(rows: readonly Row[], key: keyof Cost): number | null {
  const r = rows.map((row) => Math.log(row.pio[key] / row.dma[key]))
  let i = r.length - 1
  if (!(r[i]! > 0)) return null
  while (i > 0 && r[i - 1]! > 0) i--
  if (i === 0) return rows[0]!.size
  const [a, b] = [r[i - 1]!, r[i]!]
  const [la, lb] = [Math.log2(rows[i - 1]!.size), Math.log2(rows[i]!.size)]
  return 2 ** (la + ((lb - la) * -a) / (b - a))
}

/** How much CPU time DMA saves against PIO at a size (0.95 = 95 % less). */
export function cpuSaving(row: Row): number {
  return 1 - row.dma.cpuNs / row.pio.cpuNs
}

export function fmtSize(n: number): string {
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(2)} MiB`
  if (n >= 1024) return `${+(n / 1024).toFixed(2)} KiB`
  return `${Math.round(n)} B`
}

function ratio(x: number): string {
  return `${+x.toPrecision(3)}×`
}

export function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(2)} µs`
  return `${Math.round(ns)} ns`
}

/** The results as a markdown table and a summary. */
export function report(rows: readonly Row[]): string {
  const head = '| size | PIO CPU | DMA CPU | DMA map+unmap | PIO latency | DMA latency | DMA CPU ÷ PIO CPU | faster |\n|---:|---:|---:|---:|---:|---:|---:|:---|'
  const lines = rows.map((r) =>
    `| ${fmtSize(r.size)} | ${fmtNs(r.pio.cpuNs)} | ${fmtNs(r.dma.cpuNs)} | ${fmtNs(r.mapNs)} | ${fmtNs(r.pio.latencyNs)} | ${fmtNs(r.dma.latencyNs)} | ${ratio(r.dma.cpuNs / r.pio.cpuNs)} | ${r.dma.latencyNs < r.pio.latencyNs ? 'DMA' : 'PIO'} |`,
  )
  const lat = crossover(rows, 'latencyNs')
  const cpu = crossover(rows, 'cpuNs')
  const mib = rows.find((r) => r.size === 1 << 20)
  const summary = [
    `- latency crossover (DMA completes sooner above it): **${lat === null ? 'none' : fmtSize(lat)}**`,
    `- CPU-time crossover (DMA costs the CPU less above it): **${cpu === null ? 'none' : fmtSize(cpu)}**`,
    ...(mib === undefined ? [] : [`- at 1 MiB DMA cuts CPU busy time by **${(cpuSaving(mib) * 100).toFixed(2)} %** (${fmtNs(mib.pio.cpuNs)} → ${fmtNs(mib.dma.cpuNs)})`]),
  ]
  return [head, ...lines, '', ...summary].join('\n')
}

// ---------------------------------------------------------------------- the figure
// Hand-written SVG: two log-log panels side by side, CPU busy time and completion latency against
// transfer size, PIO and DMA in each, with the crossover marked.

const PANEL_W = 440
const PANEL_H = 330
const MARGIN = { left: 78, right: 18, top: 58, bottom: 62 }
const COLORS = { pio: '#d95f02', dma: '#1b6ca8' } as const

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const num = (x: number) => +x.toFixed(1)

function decadeLabel(e: number): string {
  return fmtNs(10 ** e).replace('.00', '')
}

/** One panel at x offset ox: the axes, gridlines, both series and the crossover line. */
function panel(rows: readonly Row[], key: keyof Cost, title: string, cross: number | null, ox: number): string {
  const values = rows.flatMap((r) => [r.pio[key], r.dma[key]])
  const yMin = Math.floor(Math.log10(Math.min(...values)))
  const yMax = Math.ceil(Math.log10(Math.max(...values)))
  const xMin = Math.log2(rows[0]!.size)
  const xMax = Math.log2(rows[rows.length - 1]!.size)
  const w = PANEL_W - MARGIN.left - MARGIN.right
  const h = PANEL_H - MARGIN.top - MARGIN.bottom
  const x0 = ox + MARGIN.left
  const y0 = MARGIN.top
  const px = (size: number) => num(x0 + ((Math.log2(size) - xMin) / (xMax - xMin)) * w)
  const py = (ns: number) => num(y0 + h - ((Math.log10(ns) - yMin) / (yMax - yMin)) * h)
  const out: string[] = [`<text x="${num(x0 + w / 2)}" y="${y0 - 14}" class="title">${esc(title)}</text>`]
  for (let e = yMin; e <= yMax; e++) {
    const y = py(10 ** e)
    out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + w}" y2="${y}" class="grid"/>`)
    out.push(`<text x="${x0 - 6}" y="${y + 4}" class="ytick">${esc(decadeLabel(e))}</text>`)
  }
  for (const r of rows) {
    const x = px(r.size)
    const major = Math.log2(r.size) % 2 === 0
    out.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + h}" class="${major ? 'grid' : 'grid minor'}"/>`)
    if (major) out.push(`<text x="${x}" y="${y0 + h + 16}" class="xtick">${esc(fmtSize(r.size).replace('.00', ''))}</text>`)
  }
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" class="frame"/>`)
  out.push(`<text x="${num(x0 + w / 2)}" y="${y0 + h + 42}" class="label">transfer size (log scale)</text>`)
  out.push(`<text transform="translate(${ox + 16} ${num(y0 + h / 2)}) rotate(-90)" class="label">${key === 'cpuNs' ? 'CPU busy time' : 'time to completion'} (log scale)</text>`)
  if (cross !== null) {
    const x = px(cross)
    out.push(`<line x1="${x}" y1="${y0}" x2="${x}" y2="${y0 + h}" class="cross"/>`)
    out.push(`<text x="${x + 5}" y="${y0 + 14}" class="crosslabel">crossover ≈ ${esc(fmtSize(cross))}</text>`)
  }
  for (const side of ['pio', 'dma'] as const) {
    const pts = rows.map((r) => `${px(r.size)},${py(r[side][key])}`)
    out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${COLORS[side]}" stroke-width="2"/>`)
    for (const r of rows) {
      const [x, y] = [px(r.size), py(r[side][key])]
      out.push(side === 'pio' ? `<circle cx="${x}" cy="${y}" r="3" fill="${COLORS.pio}"/>` : `<rect x="${num(x - 3)}" y="${num(y - 3)}" width="6" height="6" fill="${COLORS.dma}"/>`)
    }
  }
  return out.join('\n  ')
}

/** The whole figure. */
export function svg(rows: readonly Row[], latencyCross: number | null, cpuCross: number | null): string {
  const width = 2 * PANEL_W
  const height = PANEL_H + 64
  const legendY = PANEL_H + 14
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">
  <style>
    .title { font-size: 15px; font-weight: bold; text-anchor: middle; }
    .label { font-size: 12px; text-anchor: middle; }
    .xtick { font-size: 11px; text-anchor: middle; }
    .ytick { font-size: 11px; text-anchor: end; }
    .grid { stroke: #ddd; stroke-width: 1; }
    .minor { stroke: #eee; }
    .frame { fill: none; stroke: #333; stroke-width: 1; }
    .cross { stroke: #555; stroke-width: 1.2; stroke-dasharray: 5 4; }
    .crosslabel { font-size: 11px; fill: #333; }
    .legend { font-size: 12px; }
  </style>
  <rect width="100%" height="100%" fill="white"/>
  <text x="${width / 2}" y="20" class="title">Moving N bytes into the copy engine's SRAM: PIO against DMA (default cost model)</text>
  ${panel(rows, 'cpuNs', 'CPU busy time', cpuCross, 0)}
  ${panel(rows, 'latencyNs', 'Completion latency', latencyCross, PANEL_W)}
  <g class="legend" transform="translate(${width / 2 - 190} ${legendY + 20})">
    <line x1="0" y1="-4" x2="24" y2="-4" stroke="${COLORS.pio}" stroke-width="2"/><circle cx="12" cy="-4" r="3" fill="${COLORS.pio}"/>
    <text x="30" y="0">PIO: the CPU writes each 32-bit word to PIO_DATA</text>
    <line x1="0" y1="14" x2="24" y2="14" stroke="${COLORS.dma}" stroke-width="2"/><rect x="9" y="11" width="6" height="6" fill="${COLORS.dma}"/>
    <text x="30" y="18">DMA: map, program, engine copies, IRQ, unmap</text>
  </g>
</svg>
`
}

async function main(): Promise<void> {
  const rows = await sweep()
  const text = report(rows)
  console.log(text)
  const svgFile = fileURLToPath(new URL('../../docs/experiments/pio-vs-dma.svg', import.meta.url))
  writeFileSync(svgFile, svg(rows, crossover(rows, 'latencyNs'), crossover(rows, 'cpuNs')))
  const mdFile = fileURLToPath(new URL('../../docs/experiments/pio-vs-dma.md', import.meta.url))
  const md = readFileSync(mdFile, 'utf8')
  const begin = '<!-- results:begin -->'
  const end = '<!-- results:end -->'
  const a = md.indexOf(begin)
  const b = md.indexOf(end)
  if (a < 0 || b < a) throw new Error(`${mdFile}: no ${begin} ... ${end} section`)
  writeFileSync(mdFile, `${md.slice(0, a + begin.length)}\n${text}\n${md.slice(b)}`)
  console.log(`wrote ${svgFile} and the results of ${mdFile}`)
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main()
