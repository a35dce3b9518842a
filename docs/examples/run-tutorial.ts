/**
 * Runs one of the tutorial's examples (docs/tutorial/) and prints the lines it returned, then the
 * kinds of the reports it got; with --write, also writes the pictures it drew into docs/tutorial/:
 *
 *   npx tsx docs/examples/run-tutorial.ts <tutorial-example> [--write] [--options '<boot options JSON>']
 *
 * e.g. `npx tsx docs/examples/run-tutorial.ts tutorial-rings-rx --write`.
 */

import { writeFileSync } from 'node:fs'
import type { BootOptions, Report } from '../../kernel/index.js'

type Example = (options: BootOptions) => Promise<{ lines: readonly string[]; reports: readonly Report[]; files: Readonly<Record<string, string>> }>

async function main(argv: readonly string[]): Promise<void> {
  const name = argv[0]
  if (name === undefined || !/^tutorial-[a-z0-9-]+$/.test(name)) throw new Error('usage: npx tsx docs/examples/run-tutorial.ts <tutorial-example> [--write] [--options JSON]')
  const at = argv.indexOf('--options')
  const options = (at < 0 ? {} : JSON.parse(argv[at + 1] ?? '{}')) as BootOptions
  const mod = (await import(`./${name}.js`)) as { run: Example }
  const out = await mod.run(options)
  for (const line of out.lines) console.log(line)
  console.log(`reports: ${out.reports.length === 0 ? 'none' : out.reports.map((r) => r.kind).join(', ')}`)
  if (argv.includes('--write')) {
    for (const [file, text] of Object.entries(out.files)) writeFileSync(new URL(`../tutorial/${file}`, import.meta.url), text)
  }
}

await main(process.argv.slice(2))
