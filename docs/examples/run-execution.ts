/**
 * Runs one of the examples of docs/execution-model.md and prints the lines it returned, then the
 * kinds of the reports it got:
 *
 *   npx tsx docs/examples/run-execution.ts <example> [extra arguments as JSON] [--options '<boot options JSON>']
 *
 * e.g. `npx tsx docs/examples/run-execution.ts execution-interrupts true` (the second argument of
 * the example's run()). --report also prints each report in full.
 */

import { formatReport, type BootOptions, type Report } from '../../kernel/index.js'

type Example = (options: BootOptions, ...extra: unknown[]) => Promise<{ lines: readonly string[]; reports: readonly Report[] }>

async function main(argv: readonly string[]): Promise<void> {
  const name = argv[0]
  if (name === undefined || !/^execution-[a-z0-9-]+$/.test(name)) {
    throw new Error('usage: npx tsx docs/examples/run-execution.ts <execution-example> [extra JSON arguments] [--options JSON] [--report]')
  }
  const rest = argv.slice(1)
  const full = rest.includes('--report')
  const at = rest.indexOf('--options')
  const options = (at < 0 ? {} : JSON.parse(rest[at + 1] ?? '{}')) as BootOptions
  const extra = rest
    .filter((a, i) => a !== '--report' && (at < 0 || (i !== at && i !== at + 1)))
    .map((a): unknown => JSON.parse(a))
  const mod = (await import(`./${name}.js`)) as { run: Example }
  const out = await mod.run(options, ...extra)
  for (const line of out.lines) console.log(line)
  const counts = new Map<string, number>()
  for (const r of out.reports) counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1)
  const kinds = [...counts].map(([kind, n]) => (n === 1 ? kind : `${kind} x${n}`))
  console.log(`reports: ${kinds.length === 0 ? 'none' : kinds.join(', ')}`)
  if (full) for (const r of out.reports) console.log(`\n${formatReport(r)}`)
}

await main(process.argv.slice(2))
