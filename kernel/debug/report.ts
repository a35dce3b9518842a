/**
 * Reports: what the checks found, one entry per distinct bug (kind and site) with a count, printed
 * once to the log as dma-debug's rate limit does, as KASAN-style text and as JSON.
 */

import { formatFrame, siteOf, type StackFrame } from './stack.js'

/** The stable report kinds (shared/docs/DESIGN.md §6). */
export const REPORT_KINDS = [
  'cpu-access-device-owned',
  'device-access-cpu-owned',
  'device-write-to-device-mapping',
  'cacheline-shared',
  'map-error-unchecked',
  'unmap-unknown',
  'unmap-size-mismatch',
  'unmap-direction-mismatch',
  'unmap-type-mismatch',
  'sync-unmapped',
  'sync-out-of-range',
  'sync-direction-mismatch',
  'free-coherent-mismatch',
  'overlapping-mapping',
  'leak',
  'iommu-fault',
  'dma-mask',
  'uninit-to-device',
  'missing-barrier',
  'invalid-context',
  'lock-inconsistent',
  'irq-unhandled',
  'bus-master-disabled',
  'pool-misuse',
  'free-while-mapped',
  'out-of-bounds',
  'use-after-free',
  'double-free',
  'device-error',
  'double-fetch',
  'oops',
] as const

export type ReportKind = (typeof REPORT_KINDS)[number]

export interface ReportStack {
  /** 'access' for the faulty operation; 'mapped', 'allocated', 'freed', 'unmapped' for history. */
  readonly label: string
  readonly frames: readonly StackFrame[]
}

/** One distinct bug (contract: kind, message, seed, time, device?, stacks). */
export interface Report {
  readonly kind: ReportKind
  /** Linux's wording where Linux has one. */
  readonly message: string
  readonly seed: number
  /** Virtual time of the first occurrence, ns. */
  readonly time: number
  readonly device?: string
  readonly stacks: readonly ReportStack[]
  /** `file:line` of the faulty access (the first frame of the 'access' stack), when known. */
  readonly site?: string
  /** Occurrences so far (the first one and its repeats at the same site). */
  count: number
  /** The task that made the faulty call, when a task did. */
  readonly task?: string
  /** Extra facts (addresses, sizes, directions) for tools; all plain JSON values. */
  readonly details: Readonly<Record<string, string | number | boolean>>
}

export interface ReportInput {
  kind: ReportKind
  message: string
  device?: string | undefined
  stacks?: ReportStack[]
  task?: string | undefined
  details?: Record<string, string | number | boolean>
  /** Extra key material for deduplication when no site is known. */
  key?: string
}

const stem = (m: string) => m.replace(/0x[0-9a-f]+|\d+/gi, '#')

/** The system's report store. */
export class ReportLog {
  readonly reports: Report[] = []
  readonly #byKey = new Map<string, Report>()
  readonly #seed: number
  readonly #now: () => number
  readonly #print: (r: Report) => void

  constructor(seed: number, now: () => number, print: (r: Report) => void) {
    this.#seed = seed
    this.#now = now
    this.#print = print
  }

  /** Records an occurrence; returns the entry (new, or the existing one with its count raised). */
  add(input: ReportInput): Report {
    const stacks = input.stacks ?? []
    const access = stacks.find((s) => s.label === 'access')
    const site = siteOf(access?.frames)
    const origin = siteOf(stacks.find((s) => s.label !== 'access')?.frames)
    const key =
      site !== undefined
        ? `${input.kind}|${site}|${origin ?? ''}`
        : `${input.kind}|${input.device ?? ''}|${origin ?? ''}|${input.key ?? stem(input.message)}`
    const old = this.#byKey.get(key)
    if (old !== undefined) {
      old.count++
      return old
    }
    const r: Report = {
      kind: input.kind,
      message: input.message,
      seed: this.#seed,
      time: this.#now(),
      ...(input.device !== undefined ? { device: input.device } : {}),
      stacks,
      ...(site !== undefined ? { site } : {}),
      count: 1,
      ...(input.task !== undefined ? { task: input.task } : {}),
      details: input.details ?? {},
    }
    this.#byKey.set(key, r)
    this.reports.push(r)
    this.#print(r)
    return r
  }

  clear(): void {
    this.reports.length = 0
    this.#byKey.clear()
  }
}

const RULE = '='.repeat(66)

/** A report as KASAN-style text. */
export function formatReport(r: Report): string {
  const access = r.stacks.find((s) => s.label === 'access')
  const where = access?.frames[0]
  const lines = [RULE]
  lines.push(
    `BUG: dmalab: ${r.kind}${where !== undefined ? ` in ${where.fn} (${where.file}:${where.line})` : ''}`,
  )
  lines.push(r.device !== undefined ? `DMA-API: ${r.device}: ${r.message}` : r.message)
  const facts = Object.entries(r.details).map(([k, v]) => `${k}=${typeof v === 'number' && k !== 'size' && k !== 'count' && !k.endsWith('len') ? `0x${v.toString(16)}` : String(v)}`)
  if (facts.length > 0) lines.push(facts.join(' '))
  lines.push(`seed ${r.seed}, time ${r.time} ns${r.task !== undefined ? `, task ${r.task}` : ''}${r.count > 1 ? `, ${r.count} occurrences` : ''}`)
  for (const s of r.stacks) {
    lines.push('')
    lines.push(s.label === 'access' ? 'Call trace:' : `${s.label[0]!.toUpperCase()}${s.label.slice(1)} at:`)
    if (s.frames.length === 0) lines.push('  (no driver frames)')
    for (const f of s.frames) lines.push(`  ${formatFrame(f)}`)
  }
  lines.push(RULE)
  return lines.join('\n')
}

/** Reports as JSON text (an array). */
export function reportsToJson(reports: readonly Report[]): string {
  return JSON.stringify(reports, null, 2)
}
