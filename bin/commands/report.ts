/**
 * `dmalab report <file>`: prints saved reports (from `run --reports` or `run --json`) as KASAN-style
 * text, the way the kernel prints them (kernel/debug/report.ts formatReport).
 */
import { readFileSync } from 'node:fs'
import type { Command } from 'commander'
import type { Report } from '../../kernel/index.js'
import { EXIT_BUG, EXIT_OK, UsageError } from '../lib/errors.js'

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

/** The reports of a saved file, or a usage error naming the file and what is wrong. */
export function parseReports(file: string, text: string, kinds: readonly string[]): { reports: Report[]; header: string | null } {
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new UsageError(`${file}: not JSON (${e instanceof Error ? e.message : String(e)})`)
  }
  let list: unknown = doc
  let header: string | null = null
  if (isObj(doc)) {
    if (!Array.isArray(doc['reports'])) throw new UsageError(`${file}: expected an array of reports, or an object with a 'reports' array (dmalab run --json); found an object without one`)
    list = doc['reports']
    const o = doc['options']
    header = `${typeof doc['scenario'] === 'string' ? doc['scenario'] : 'run'}${isObj(o) ? ` — ${['arch', 'iommu', 'swiotlb', 'seed'].map((k) => `${k} ${String(o[k])}`).join(', ')}` : ''}${typeof doc['summary'] === 'string' ? `: ${doc['summary']}` : ''}`
  }
  if (!Array.isArray(list)) throw new UsageError(`${file}: expected an array of reports (dmalab run --reports), got ${doc === null ? 'null' : typeof doc}`)
  const reports = list.map((r, i): Report => {
    const bad = (what: string) => new UsageError(`${file}: report ${i}: ${what}`)
    if (!isObj(r)) throw bad('not an object')
    if (typeof r['kind'] !== 'string' || !kinds.includes(r['kind'])) throw bad(`'kind' must be a report kind, got ${JSON.stringify(r['kind'])}`)
    if (typeof r['message'] !== 'string') throw bad("'message' must be a string")
    if (typeof r['seed'] !== 'number') throw bad("'seed' must be a number")
    if (typeof r['time'] !== 'number') throw bad("'time' must be a number")
    if (r['device'] !== undefined && typeof r['device'] !== 'string') throw bad("'device' must be a string")
    const stacks = r['stacks'] ?? []
    if (!Array.isArray(stacks) || !stacks.every((s) => isObj(s) && typeof s['label'] === 'string' && Array.isArray(s['frames']) && (s['frames'] as unknown[]).every((f) => isObj(f) && typeof f['file'] === 'string' && typeof f['line'] === 'number'))) {
      throw bad("'stacks' must be an array of { label, frames: [{ fn, file, line, column }] }")
    }
    if (r['details'] !== undefined && !isObj(r['details'])) throw bad("'details' must be an object")
    return { ...(r as unknown as Report), stacks: stacks as Report['stacks'], count: typeof r['count'] === 'number' ? r['count'] : 1, details: (r['details'] ?? {}) as Report['details'] }
  })
  return { reports, header }
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('print saved reports (dmalab run --reports / --json) as KASAN-style text; exit 1 when there are any')
    .argument('<file>', 'a JSON file written by dmalab run --reports or --json')
    .action(async (file: string) => {
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (e) {
        throw new UsageError(`<file>: cannot read '${file}': ${e instanceof Error ? e.message : String(e)}`)
      }
      const { REPORT_KINDS, formatReport } = await import('../../kernel/index.js')
      const { reports, header } = parseReports(file, text, REPORT_KINDS)
      if (header !== null) console.log(header)
      for (const r of reports) console.log(`${formatReport(r)}\n`)
      const kinds = [...new Set(reports.map((r) => r.kind))].sort()
      console.log(reports.length === 0 ? `${file}: no reports` : `${file}: ${reports.length} report(s): ${kinds.join(', ')}`)
      process.exitCode = reports.length === 0 ? EXIT_OK : EXIT_BUG
    })
}
