/**
 * `npm run bench [-- module...]`: runs every benchmark module (or the ones named), prints a table and merges the entries into
 * bench/results.json (an array of { name, value, unit, ratio? }; entries of other modules stay).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { BenchResult } from './harness.js'
import { run as dma } from './dma.bench.js'
import { run as sched } from './sched.bench.js'
import { run as nic } from './nic.bench.js'
import { run as nvme } from './nvme.bench.js'
import { run as audio } from './audio.bench.js'

const modules: [string, () => Promise<BenchResult[]>][] = [
  ['dma', dma],
  ['sched', sched],
  ['nic', nic],
  ['nvme', nvme],
  ['audio', audio],
]

// `npm run bench -- nic audio` runs only those modules.
const only = process.argv.slice(2)
const unknown = only.filter((n) => !modules.some(([label]) => label === n))
if (unknown.length > 0) {
  console.error(`bench: unknown module ${unknown.join(', ')} (modules: ${modules.map(([l]) => l).join(', ')})`)
  process.exit(2)
}

const file = fileURLToPath(new URL('./results.json', import.meta.url))
const old: BenchResult[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as BenchResult[]) : []
const byName = new Map(old.map((r) => [r.name, r]))
const fresh: BenchResult[] = []
for (const [label, fn] of modules) {
  if (only.length > 0 && !only.includes(label)) continue
  process.stderr.write(`bench: ${label} ...\n`)
  for (const r of await fn()) {
    byName.set(r.name, r)
    fresh.push(r)
  }
}
const rows = fresh.map((r) => [r.name, r.value.toLocaleString('en-US'), r.unit, r.ratio === undefined ? '' : `${r.ratio}x`])
const widths = [0, 1, 2, 3].map((i) => Math.max(...[['benchmark', 'value', 'unit', 'ratio'], ...rows].map((row) => row[i]!.length)))
const line = (row: string[]) => row.map((c, i) => (i === 1 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ')
console.log(line(['benchmark', 'value', 'unit', 'ratio']))
for (const row of rows) console.log(line(row))
for (const r of fresh) if (r.note !== undefined) console.log(`  ${r.name}: ${r.note}`)
writeFileSync(file, `${JSON.stringify([...byName.values()], null, 2)}\n`)
console.log(`wrote ${file}`)
