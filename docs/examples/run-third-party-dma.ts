/**
 * Runs one of the examples of docs/tutorial/third-party-dma.md and prints the lines it returned, then the kinds of
 * the reports it got:
 *
 *   npx tsx docs/examples/run-third-party-dma.ts <example> [--options '<boot options JSON>']
 */

import type { BootOptions, Report } from '../../kernel/index.js'

type Example = (options: BootOptions) => Promise<{ lines: readonly string[]; reports: readonly Report[] }>

async function main(argv: readonly string[]): Promise<void> {
  const name = argv[0]
  if (name === undefined || !/^third-party-dma-[a-z0-9-]+$/.test(name)) throw new Error('usage: npx tsx docs/examples/run-third-party-dma.ts <third-party-dma-example> [--options JSON]')
  const at = argv.indexOf('--options')
  const options = (at < 0 ? {} : JSON.parse(argv[at + 1] ?? '{}')) as BootOptions
  const mod = (await import(`./${name}.js`)) as { run: Example }
  const out = await mod.run(options)
  for (const line of out.lines) console.log(line)
  console.log(`reports: ${out.reports.length === 0 ? 'none' : out.reports.map((r) => r.kind).join(', ')}`)
}

await main(process.argv.slice(2))
