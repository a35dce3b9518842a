/**
 * Runs one of the examples of docs/ownership.md on several platforms and prints what happened:
 *
 *   npx tsx docs/examples/run.ts <example> [extra arguments as JSON] [--report]
 *
 * e.g. `npx tsx docs/examples/run.ts ownership-rx-missing-sync --report`. Each platform gets a
 * line with the bytes the example returned and the kinds of the reports it got; an example that
 * returns a trace or notes gets them printed below its line. --report also prints, in full, the
 * reports of the first platform.
 */

import { formatReport, type BootOptions, type Report } from '../../kernel/index.js'

interface Outcome {
  readonly data?: readonly number[]
  readonly trace?: readonly string[]
  readonly lines?: readonly string[]
  readonly reports: readonly Report[]
}

type Example = (options: BootOptions, ...extra: unknown[]) => Promise<Outcome>

const PLATFORMS: readonly [string, BootOptions][] = [
  ['arm64', { arch: 'arm64' }],
  ['riscv64', { arch: 'riscv64' }],
  ['x86_64', { arch: 'x86_64' }],
  ['x86_64 swiotlb=force', { arch: 'x86_64', swiotlb: 'force' }],
]

const hex2 = (b: number) => b.toString(16).padStart(2, '0')

async function main(argv: readonly string[]): Promise<void> {
  const name = argv[0]
  if (name === undefined || !/^[a-z0-9-]+$/.test(name)) {
    throw new Error(
      'usage: npx tsx docs/examples/run.ts <example> [extra JSON arguments] [--report]',
    )
  }
  const full = argv.includes('--report')
  const extra = argv
    .slice(1)
    .filter((a) => a !== '--report')
    .map((a): unknown => JSON.parse(a))
  const mod = (await import(`./${name}.js`)) as { run: Example }
  let first: readonly Report[] | undefined
  for (const [label, options] of PLATFORMS) {
    const out = await mod.run(options, ...extra)
    first ??= out.reports
    const data = out.data === undefined ? '' : `data: ${out.data.map(hex2).join(' ').padEnd(12)}  `
    const kinds = out.reports.length === 0 ? 'none' : out.reports.map((r) => r.kind).join(', ')
    console.log(`${label.padEnd(21)} ${data}reports: ${kinds}`)
    for (const line of [...(out.trace ?? []), ...(out.lines ?? [])]) console.log(`    ${line}`)
  }
  if (full && first !== undefined) for (const r of first) console.log(`\n${formatReport(r)}`)
}

await main(process.argv.slice(2))
