/**
 * `npm run bench [-- module...]`: runs every benchmark module (or the ones named), prints a table and merges the entries into
 * bench/results.json (an array of { name, value, unit, ratio? }; entries of other modules stay).
 *
 * Each module runs in a process of its own (this script again, with `--one <module>`, which prints
 * the module's results as JSON): in one process the modules that ran before would have shaped the
 * JIT's view of the kernel's hot functions (the inline caches see the NIC's and NVMe's objects
 * too), and a module's figure would depend on which modules ran before it. Measured: the audio
 * figure was 10-15% lower after the other modules than alone.
 */
import { spawnSync } from 'node:child_process'
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

const args = process.argv.slice(2)

if (args[0] === '--one') {
  // A child: run one module, results as JSON on stdout (anything the module prints goes to stderr).
  const fn = modules.find(([label]) => label === args[1])?.[1]
  if (fn === undefined) {
    console.error(`bench --one: unknown module ${String(args[1])}`)
    process.exit(2)
  }
  console.log = console.error
  process.stdout.write(JSON.stringify(await fn()))
  process.exit(0)
}

// `npm run bench -- nic audio` runs only those modules.
const only = args
const unknown = only.filter((n) => !modules.some(([label]) => label === n))
if (unknown.length > 0) {
  console.error(`bench: unknown module ${unknown.join(', ')} (modules: ${modules.map(([l]) => l).join(', ')})`)
  process.exit(2)
}

/** Runs one module in a fresh process (the same node and loader flags as this one). */
function runModule(label: string): BenchResult[] {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--one', label], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  })
  if (child.status !== 0) {
    console.error(`bench: module ${label} failed (${child.error?.message ?? `exit ${String(child.status ?? child.signal)}`})`)
    process.exit(1)
  }
  return JSON.parse(child.stdout) as BenchResult[]
}

const file = fileURLToPath(new URL('./results.json', import.meta.url))
const old: BenchResult[] = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as BenchResult[]) : []
const byName = new Map(old.map((r) => [r.name, r]))
const fresh: BenchResult[] = []
for (const [label] of modules) {
  if (only.length > 0 && !only.includes(label)) continue
  process.stderr.write(`bench: ${label} ...\n`)
  for (const r of runModule(label)) {
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
