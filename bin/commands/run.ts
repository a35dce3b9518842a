/**
 * `dmalab run <scenario>`: one run on one platform and seed; prints the outcome, every report
 * (KASAN-style) and, when something was found, the command that replays it.
 */
import { writeFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import { EXIT_BUG, EXIT_OK, EXIT_SCENARIO_ERROR, UsageError } from '../lib/errors.js'
import { createLogger, resolveLevel } from '../lib/logger.js'
import { addLogOption, addPlatformOptions, intParser, platformLabel, platformOf, replayCommand, type PlatformFlags } from '../lib/options.js'

interface RunFlags extends PlatformFlags {
  seed: number
  json?: string
  reports?: string
  logLevel?: string
}

function save(file: string, what: string, text: string): void {
  try {
    writeFileSync(file, text)
  } catch (e) {
    throw new UsageError(`${what}: cannot write '${file}': ${e instanceof Error ? e.message : String(e)}`)
  }
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('run a scenario once on one platform and seed; print its reports and whether the data came out right')
    .argument('<scenario>', 'a scenario file (scenarios/nic.ts) or the name of one of scenarios/ (nic)')
  addPlatformOptions(cmd)
    .addOption(new Option('--seed <n>', 'seed of every random choice').argParser(intParser('--seed', 0)).default(1))
    .option('--json <file>', 'save the outcome and its reports as JSON (dmalab report reads it)')
    .option('--reports <file>', 'save only the reports, as a JSON array (dmalab report reads it)')
  addLogOption(cmd, 'warn').action(async (arg: string, flags: RunFlags) => {
    const level = resolveLevel(flags.logLevel, 'warn')
    // The emulator loads only now: --help and usage errors stay fast.
    const [{ formatReport, reportsToJson }, { runOne }, { loadScenario }] = await Promise.all([import('../../kernel/index.js'), import('../lib/run-one.js'), import('../lib/scenario-file.js')])
    const { scenario } = await loadScenario(arg)
    const options = platformOf(flags, flags.seed)
    const logger = createLogger(level)
    console.log(`dmalab run ${scenario.name} — ${platformLabel(options)}`)
    const r = await runOne(scenario, options, logger)
    const replay = replayCommand(arg, options)
    if (flags.json !== undefined) {
      const doc = { dmalab: 'run', scenario: scenario.name, file: arg, options, clean: r.clean, dataOk: r.dataOk, summary: r.summary, ...(r.oops !== undefined ? { oops: r.oops } : {}), ...(r.error !== undefined ? { error: r.error } : {}), replay, reports: r.reports }
      save(flags.json, '--json', `${JSON.stringify(doc, null, 2)}\n`)
    }
    if (flags.reports !== undefined) save(flags.reports, '--reports', `${reportsToJson(r.reports)}\n`)
    if (r.error !== undefined) {
      console.error(`dmalab run: the scenario '${scenario.name}' threw (a bug in the scenario, not a report on the driver):\n${r.error}`)
      process.exitCode = EXIT_SCENARIO_ERROR
      return
    }
    for (const rep of r.reports) console.log(`${formatReport(rep)}\n`)
    if (r.oops !== undefined) console.log(`kernel oops: ${r.oops}`)
    console.log(r.summary)
    const verdict = r.clean ? 'clean' : [r.reports.length > 0 ? `reported (${r.kinds.join(', ')})` : '', r.dataOk ? '' : 'data wrong'].filter((x) => x !== '').join(', ')
    console.log(`result: ${verdict}`)
    if (!r.clean) console.log(`replay: ${replay}`)
    process.exitCode = r.clean ? EXIT_OK : EXIT_BUG
  })
}
