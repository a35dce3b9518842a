/**
 * Runs one scenario of the report catalogue (docs/reports.md: reports.ts, or reports-driver.ts
 * for the kinds that need a device and a driver) and prints its reports as the emulator formats them:
 *   npx tsx docs/examples/run-report.ts <scenario> [boot options as JSON] [--json]
 *
 * e.g. `npx tsx docs/examples/run-report.ts sync-unmapped '{"arch":"x86_64"}'`. --json prints
 * reportsToJson() instead of the KASAN-style text.
 */

import { formatReport, reportsToJson, type BootOptions } from '../../kernel/index.js'
import { run, scenarios } from './reports.js'
import { run as runDriver, scenarios as driverScenarios } from './reports-driver.js'

async function main(argv: readonly string[]): Promise<void> {
  const name = argv[0]
  if (name === undefined || !(name in scenarios || name in driverScenarios)) {
    throw new Error(
      `usage: npx tsx docs/examples/run-report.ts <scenario> [options JSON] [--json]\nscenarios: ${[...Object.keys(scenarios), ...Object.keys(driverScenarios)].join(', ')}`,
    )
  }
  const json = argv.includes('--json')
  const optionsArg = argv.slice(1).find((a) => a !== '--json')
  const options = (optionsArg === undefined ? {} : JSON.parse(optionsArg)) as BootOptions
  const { reports, oops } = await (name in scenarios ? run : runDriver)(name, options)
  if (json) console.log(reportsToJson(reports))
  else for (const r of reports) console.log(formatReport(r))
  if (oops) console.log('(sys.run() rejected with KernelOops)')
}

await main(process.argv.slice(2))
