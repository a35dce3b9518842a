/**
 * What the CPU and a device were busy with over virtual time, as an SVG timeline, from a live run.
 *
 * The CPU lane comes from the cost model's busy counter (System.busyNs) sampled at every trace
 * point the recorder hears — the kernel's `context` and `dma` trace points, the hardware tracer's
 * MMIO, DMA and IRQ events: the CPU time charged between two events is drawn as busy just before
 * the later one (the CPU works, then the work shows up as an event), the rest of the interval as
 * idle. Each busy span is coloured by the context that ran it (a task, a hard-IRQ handler, or
 * neither: interrupt entry and exit, a context switch), from the `context` trace point.
 *
 * The device lane is busy from an MMIO write the caller names (a START bit) to the next interrupt
 * the device raises (MSI or INTx assert), with the interrupt marked.
 */

import type { ContextTraceEvent, DmaApiTraceEvent, System } from '../kernel/index.js'
import type { DmaTraceEvent, IrqTraceEvent, MmioTraceEvent } from '../devices/index.js'
import { svgHeader, xmlEscape } from './ring-svg.js'

export type SpanKind = 'task' | 'hardirq' | 'kernel' | 'device'

export interface Span {
  /** Virtual ns from the start of the run. */
  readonly start: number
  readonly end: number
  readonly kind: SpanKind
}

/** One recorded run: what the CPU and the device did between begin() and end(). */
export interface TimelineRun {
  readonly label: string
  /** Virtual time (ns) of begin() and the run's length. */
  readonly time: number
  readonly latencyNs: number
  /** CPU time charged during the run (the change of System.busyNs). */
  readonly cpuBusyNs: number
  readonly cpu: readonly Span[]
  readonly device: readonly Span[]
  /** Interrupts the device raised, ns from the start of the run. */
  readonly irqs: readonly number[]
}

export interface TimelineRecorder {
  /** Starts a run. */
  begin(label: string): void
  /** Ends the run begun last and returns it. */
  end(): TimelineRun
  /** Stops listening. */
  stop(): void
}

export interface TimelineOptions {
  /** The device whose lane is drawn (MMIO events are filtered by it). */
  readonly device: string
  /** Whether an MMIO write starts the device's work (e.g. CTRL with the START bit). */
  readonly starts: (e: MmioTraceEvent) => boolean
}

/** Starts listening; runs are cut by begin() and end(). */
export function recordTimeline(sys: System, opts: TimelineOptions): TimelineRecorder {
  let run: {
    label: string
    t0: number
    b0: number
    cpu: Span[]
    device: Span[]
    irqs: number[]
  } | null = null
  let lastT = 0
  let lastB = 0
  const contexts: ContextTraceEvent['context'][] = []
  let deviceFrom = -1
  const push = (to: Span[], s: Span): void => {
    const prev = to[to.length - 1]
    if (prev !== undefined && prev.kind === s.kind && prev.end === s.start)
      to[to.length - 1] = { ...prev, end: s.end }
    else if (s.end > s.start) to.push(s)
  }
  /** Accounts the CPU time charged since the last event, as busy up to now. */
  const tick = (): void => {
    const now = sys.machine.clock.now
    const busy = sys.busyNs
    if (run !== null) {
      const d = Math.min(busy - lastB, now - lastT)
      const top = contexts[contexts.length - 1]
      const kind: SpanKind = top === undefined ? 'kernel' : top === 'hardirq' ? 'hardirq' : 'task'
      if (d > 0) push(run.cpu, { start: now - d - run.t0, end: now - run.t0, kind })
    }
    lastT = now
    lastB = busy
  }
  const onContext = (e: ContextTraceEvent): void => {
    tick()
    if (e.phase === 'B') contexts.push(e.context)
    else contexts.pop()
  }
  const onApi = (_e: DmaApiTraceEvent): void => tick()
  const onMmio = (e: MmioTraceEvent): void => {
    tick()
    if (e.device === opts.device && e.write && opts.starts(e) && deviceFrom < 0) deviceFrom = e.time
  }
  const onDma = (_e: DmaTraceEvent): void => tick()
  const onIrq = (e: IrqTraceEvent): void => {
    tick()
    if (e.kind !== 'msi' && e.kind !== 'assert') return
    if (run !== null) run.irqs.push(e.time - run.t0)
    if (deviceFrom >= 0 && run !== null)
      push(run.device, { start: deviceFrom - run.t0, end: e.time - run.t0, kind: 'device' })
    deviceFrom = -1
  }
  sys.ktrace.on('context', onContext)
  sys.ktrace.on('dma', onApi)
  sys.machine.tracer.on('mmio', onMmio)
  sys.machine.tracer.on('dma', onDma)
  sys.machine.tracer.on('irq', onIrq)
  // Called from a running task: it is the context until the trace says otherwise.
  contexts.push('process')
  return {
    begin(label) {
      tick()
      run = { label, t0: sys.machine.clock.now, b0: sys.busyNs, cpu: [], device: [], irqs: [] }
    },
    end() {
      tick()
      const r = run
      if (r === null) throw new Error('recordTimeline: end() without begin()')
      run = null
      return {
        label: r.label,
        time: r.t0,
        latencyNs: sys.machine.clock.now - r.t0,
        cpuBusyNs: sys.busyNs - r.b0,
        cpu: r.cpu,
        device: r.device,
        irqs: r.irqs,
      }
    },
    stop() {
      sys.ktrace.off('context', onContext)
      sys.ktrace.off('dma', onApi)
      sys.machine.tracer.off('mmio', onMmio)
      sys.machine.tracer.off('dma', onDma)
      sys.machine.tracer.off('irq', onIrq)
    },
  }
}

const FILL: Record<SpanKind, string> = {
  task: '#d95f02',
  hardirq: '#7b3294',
  kernel: '#f4a582',
  device: '#1b6ca8',
}
const LEGEND: Record<SpanKind, string> = {
  task: 'CPU busy: the task',
  hardirq: 'CPU busy: the interrupt handler',
  kernel: 'CPU busy: interrupt entry/exit, context switch',
  device: 'device busy (START to its interrupt)',
}

/** ns as text: 250 ns, 6.3 µs, 1.2 ms. */
export function fmtNs(ns: number): string {
  if (ns >= 1e6) return `${+(ns / 1e6).toFixed(2)} ms`
  if (ns >= 1e3) return `${+(ns / 1e3).toFixed(2)} µs`
  return `${Math.round(ns)} ns`
}

/** A tick step of 1, 2 or 5 × 10^k giving about 5 ticks up to max. */
function step(max: number): number {
  const raw = max / 5
  const p = 10 ** Math.floor(Math.log10(raw))
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!
}

export interface TimelinePanel {
  readonly title: string
  readonly runs: readonly TimelineRun[]
  /** The device lane's label. */
  readonly device: string
}

/** The panels as a standalone SVG document, each on its own time axis. Deterministic. */
export function timelineSvg(panels: readonly TimelinePanel[], opts: { title: string }): string {
  const X0 = 130
  const PLOT = 640
  const LANE = 16
  const width = X0 + PLOT + 60
  const out: string[] = []
  const body: string[] = []
  const num = (x: number): number => +x.toFixed(2)
  let y = 40
  for (const p of panels) {
    const max = Math.max(...p.runs.map((r) => r.latencyNs))
    const st = step(max)
    const end = Math.ceil(max / st) * st
    const sx = (t: number): number => num(X0 + (t / end) * PLOT)
    body.push(
      `  <text x="20" y="${y + 14}" font-size="12" font-weight="bold">${xmlEscape(p.title)}</text>`,
    )
    y += 26
    const top = y
    for (const r of p.runs) {
      body.push(`  <g class="run" data-label="${xmlEscape(r.label)}">`)
      body.push(`    <text x="20" y="${y + 12}">${xmlEscape(`${r.label} CPU`)}</text>`)
      body.push(`    <rect x="${X0}" y="${y}" width="${PLOT}" height="${LANE}" fill="#f3f3f3"/>`)
      for (const s of r.cpu)
        body.push(
          `    <rect class="${s.kind}" x="${sx(s.start)}" y="${y}" width="${num(Math.max(0.5, sx(s.end) - sx(s.start)))}" height="${LANE}" fill="${FILL[s.kind]}"/>`,
        )
      body.push(
        `    <text x="${num(sx(r.latencyNs) + 4)}" y="${y + 12}" font-size="9">${xmlEscape(`busy ${fmtNs(r.cpuBusyNs)}`)}</text>`,
      )
      y += LANE + 4
      body.push(`    <text x="20" y="${y + 12}">${xmlEscape(`${r.label} ${p.device}`)}</text>`)
      body.push(`    <rect x="${X0}" y="${y}" width="${PLOT}" height="${LANE}" fill="#f3f3f3"/>`)
      for (const s of r.device)
        body.push(
          `    <rect class="device" x="${sx(s.start)}" y="${y}" width="${num(Math.max(0.5, sx(s.end) - sx(s.start)))}" height="${LANE}" fill="${FILL.device}"/>`,
        )
      for (const t of r.irqs)
        body.push(
          `    <text x="${sx(t)}" y="${y + LANE + 9}" font-size="9" text-anchor="middle">↑IRQ</text>`,
        )
      body.push(
        `    <line x1="${sx(r.latencyNs)}" y1="${y - LANE - 6}" x2="${sx(r.latencyNs)}" y2="${y + LANE + 2}" stroke="#000000" stroke-dasharray="3,2"/>`,
      )
      body.push(
        `    <text x="${num(sx(r.latencyNs) + 4)}" y="${y + 12}" font-size="9">${xmlEscape(`done ${fmtNs(r.latencyNs)}`)}</text>`,
      )
      body.push('  </g>')
      y += LANE + 16
    }
    for (let t = 0; t <= end; t += st) {
      body.push(
        `  <line x1="${sx(t)}" y1="${top - 4}" x2="${sx(t)}" y2="${y - 8}" stroke="#bbbbbb" stroke-width="0.5"/>`,
      )
      body.push(
        `  <text x="${sx(t)}" y="${y + 4}" font-size="9" text-anchor="middle">${fmtNs(t)}</text>`,
      )
    }
    y += 22
  }
  for (const k of ['task', 'hardirq', 'kernel', 'device'] as const) {
    body.push(`  <rect x="20" y="${y}" width="14" height="12" fill="${FILL[k]}"/>`)
    body.push(`  <text x="40" y="${y + 10}">${xmlEscape(LEGEND[k])}</text>`)
    y += 18
  }
  const height = y + 10
  out.push(...svgHeader(width, height, opts.title))
  out.push(...body)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
