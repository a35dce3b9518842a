/**
 * vitest matchers over what dmalab's checks found (DESIGN.md §6): `toHaveNoDmaReports()` and
 * `toHaveReport(kind, filter?)`. Both take a System (from boot()) or a Report[] (e.g. sys.reports).
 */
import { expect } from 'vitest'
import { REPORT_KINDS, formatReport, type Report, type ReportKind, type System } from '../kernel/index.js'

/** Which reports `toHaveReport` counts; every given field must match. */
export interface ReportFilter {
  /**
   * A line of your code: some frame of the report's stacks (the faulty access, or the mapping /
   * allocation history) is at this line. Needs stacks (`checks.stacks`, on by default).
   */
  line?: number
  /** A path suffix of that frame's file ('mydrv.ts', 'drivers/mydrv.ts'); alone, any frame's file. */
  file?: string
  /** The device the report names (Report.device, e.g. 'ce0' or a PCI device's name). */
  device?: string
  /** Occurrences: the sum of Report.count over the matching reports (a bug repeated at one site is one report). */
  count?: number
  /** Distinct matching reports (sites). */
  reports?: number
}

/** What the matchers accept: a System or its reports. */
export type ReportSource = Pick<System, 'reports'> | readonly Report[]

declare module 'vitest' {
  // The type parameter must be declared exactly as vitest declares it.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any, @typescript-eslint/no-unused-vars
  interface Matchers<T = any> {
    /** The system (or report list) holds no report at all; a failure prints each report KASAN-style. */
    toHaveNoDmaReports: () => void
    /** Some report of this kind matches the filter; a failure lists the reports that were found. */
    toHaveReport: (kind: ReportKind, filter?: ReportFilter) => void
  }
}

const FILTER_KEYS = ['line', 'file', 'device', 'count', 'reports'] as const

const describeValue = (v: unknown): string =>
  v === null || v === undefined ? String(v) : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `'${v}'` : typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`

/** The reports of a System or a Report[]; anything else is a TypeError naming what it got. */
export function reportsOf(received: unknown, matcher: string): readonly Report[] {
  let list: unknown = received
  if (!Array.isArray(received) && typeof received === 'object' && received !== null && 'reports' in received) {
    list = received.reports
  }
  if (!Array.isArray(list)) {
    throw new TypeError(`${matcher}: expected a System (from boot()) or a Report[], got ${describeValue(received)}`)
  }
  for (const [i, r] of list.entries()) {
    if (typeof r !== 'object' || r === null || typeof (r as { kind?: unknown }).kind !== 'string' || !Array.isArray((r as { stacks?: unknown }).stacks)) {
      throw new TypeError(`${matcher}: element ${i} is not a Report (${describeValue(r)})`)
    }
  }
  return list as readonly Report[]
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) cur.push(Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)))
    prev = cur
  }
  return prev[b.length]!
}

/** A known report kind, or an error naming the unknown one (and the nearest known kind). */
export function checkKind(kind: unknown, matcher = 'toHaveReport'): ReportKind {
  if (typeof kind !== 'string') throw new TypeError(`${matcher}: the report kind must be a string, got ${describeValue(kind)}`)
  if ((REPORT_KINDS as readonly string[]).includes(kind)) return kind as ReportKind
  const near = [...REPORT_KINDS].sort((a, b) => distance(kind, a) - distance(kind, b))[0]!
  const hint = distance(kind, near) <= Math.max(3, kind.length / 3) ? ` (did you mean '${near}'?)` : ''
  throw new TypeError(`${matcher}: unknown report kind '${kind}'${hint}; the kinds are: ${REPORT_KINDS.join(', ')}`)
}

function checkFilter(filter: unknown): ReportFilter {
  if (filter === undefined) return {}
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) {
    throw new TypeError(`toHaveReport: the filter must be an object like { line, file, device, count }, got ${describeValue(filter)}`)
  }
  const f = filter as Record<string, unknown>
  for (const key of Object.keys(f)) {
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      throw new TypeError(`toHaveReport: unknown filter option '${key}'; the options are: ${FILTER_KEYS.join(', ')}`)
    }
  }
  const count = (key: string, min: number) => {
    const v = f[key]
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min)) {
      throw new TypeError(`toHaveReport: '${key}' must be an integer >= ${min}, got ${describeValue(v)}`)
    }
  }
  count('line', 1)
  count('count', 0)
  count('reports', 0)
  for (const key of ['file', 'device']) {
    const v = f[key]
    if (v !== undefined && (typeof v !== 'string' || v === '')) throw new TypeError(`toHaveReport: '${key}' must be a non-empty string, got ${describeValue(v)}`)
  }
  return f
}

const fileMatches = (file: string, suffix: string): boolean => {
  const s = suffix.replace(/^\.\//, '')
  return file === s || file.endsWith(s.startsWith('/') ? s : `/${s}`)
}

/** Whether a report matches the line / file / device parts of a filter (not the counts). */
export function reportMatches(r: Report, kind: ReportKind, f: ReportFilter): boolean {
  if (r.kind !== kind) return false
  if (f.device !== undefined && r.device !== f.device) return false
  if (f.line === undefined && f.file === undefined) return true
  return r.stacks.some((s) =>
    s.frames.some((fr) => (f.line === undefined || fr.line === f.line) && (f.file === undefined || fileMatches(fr.file, f.file))),
  )
}

/** One line per report: `kind at file:line (device), N occurrences`. */
export function summarize(r: Report): string {
  const access = r.stacks.find((s) => s.label === 'access')?.frames[0]
  const origin = r.stacks.find((s) => s.label !== 'access' && s.frames.length > 0)
  const where = access !== undefined ? ` at ${access.file}:${access.line}` : origin !== undefined ? ` (${origin.label} at ${origin.frames[0]!.file}:${origin.frames[0]!.line})` : ''
  const dev = r.device !== undefined ? ` [${r.device}]` : ''
  const what = where === '' ? `: ${r.message.length > 100 ? `${r.message.slice(0, 97)}...` : r.message}` : ''
  return `${r.kind}${where}${dev}${r.count > 1 ? `, ${r.count} occurrences` : ''}${what}`
}

function describeFilter(kind: ReportKind, f: ReportFilter): string {
  const parts: string[] = [kind]
  if (f.file !== undefined || f.line !== undefined) parts.push(`at ${f.file ?? '<any file>'}${f.line !== undefined ? `:${f.line}` : ''}`)
  if (f.device !== undefined) parts.push(`on ${f.device}`)
  if (f.count !== undefined) parts.push(`with ${f.count} occurrence(s) in all`)
  if (f.reports !== undefined) parts.push(`in ${f.reports} distinct report(s)`)
  return parts.join(' ')
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`

/** The matcher implementations, for expect.extend. */
export const dmaMatchers = {
  toHaveNoDmaReports(received: unknown) {
    const reports = reportsOf(received, 'toHaveNoDmaReports')
    return {
      pass: reports.length === 0,
      message: () =>
        reports.length === 0
          ? 'expected DMA reports, found none'
          : `expected no DMA reports, found ${plural(reports.length, 'report')}:\n\n${reports.map((r) => formatReport(r)).join('\n\n')}`,
    }
  },

  toHaveReport(received: unknown, kind: unknown, filter?: unknown) {
    const reports = reportsOf(received, 'toHaveReport')
    const k = checkKind(kind)
    const f = checkFilter(filter)
    const matching = reports.filter((r) => reportMatches(r, k, f))
    const occurrences = matching.reduce((n, r) => n + r.count, 0)
    const pass =
      (f.count !== undefined || f.reports !== undefined || matching.length > 0) &&
      (f.count === undefined || occurrences === f.count) &&
      (f.reports === undefined || matching.length === f.reports)
    const wanted = describeFilter(k, f)
    const hints: string[] = []
    if ((f.line !== undefined || f.file !== undefined) && reports.some((r) => r.kind === k) && reports.filter((r) => r.kind === k).every((r) => r.stacks.every((s) => s.frames.length === 0))) {
      hints.push('(no report of that kind carries stack frames to match a line or file against: reports made while a device runs have none, and none have any with checks.stacks off)')
    }
    return {
      pass,
      message: () => {
        if (pass) {
          return `expected no ${wanted}, found ${plural(matching.length, 'report')}:\n\n${matching.map((r) => formatReport(r)).join('\n\n')}`
        }
        const found =
          reports.length === 0
            ? 'found no reports at all'
            : `found ${plural(reports.length, 'report')}:\n${reports.map((r) => `  ${summarize(r)}`).join('\n')}`
        const counted = matching.length > 0 ? `\n${plural(matching.length, 'report')} matched, ${plural(occurrences, 'occurrence')} in all` : ''
        return [`expected ${wanted}, ${found}${counted}`, ...hints].join('\n')
      },
    }
  },
}

let registered = false

/** Registers the matchers with vitest's expect (idempotent). */
export function registerDmaMatchers(): void {
  if (registered) return
  expect.extend(dmaMatchers)
  registered = true
}
