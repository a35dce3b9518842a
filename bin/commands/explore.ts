/**
 * `dmalab explore <scenario>`: runs a scenario over many seeds on worker threads, with progress,
 * and prints the seed and the exact replay command of each failure. Stops at the first failing
 * seed (the lowest one, whatever --jobs is) unless --all.
 */
import { availableParallelism } from 'node:os'
import { Option, type Command } from 'commander'
import type { PlatformOptions } from '../../scenarios/scenario.js'
import { EXIT_BUG, EXIT_OK, EXIT_SCENARIO_ERROR } from '../lib/errors.js'
import { createLogger, resolveLevel } from '../lib/logger.js'
import { addLogOption, addPlatformOptions, intParser, parseShard, platformOf, replayCommand, type PlatformFlags, type Shard } from '../lib/options.js'
import { createProgress } from '../lib/progress.js'
import type { RunOutcome } from '../lib/run-one.js'

interface ExploreFlags extends PlatformFlags {
  seeds: number
  from: number
  jobs: number
  shard?: Shard
  all?: boolean
  failOn: 'any' | 'report' | 'data'
  logLevel?: string
}

/** The seeds of a shard: every count-th seed of from..from+n-1, starting with the index-th. */
export function shardSeeds(from: number, n: number, shard: Shard | undefined): number[] {
  const all = Array.from({ length: n }, (_, i) => from + i)
  return shard === undefined ? all : all.filter((_, i) => i % shard.count === shard.index - 1)
}

/** Whether a run fails under --fail-on. */
export function fails(r: RunOutcome, failOn: ExploreFlags['failOn']): boolean {
  if (r.error !== undefined) return true
  if (failOn === 'report') return r.reports.length > 0
  if (failOn === 'data') return !r.dataOk || r.oops !== undefined
  return !r.clean
}

export function verdict(r: RunOutcome): string {
  if (r.error !== undefined) return 'the scenario threw'
  if (r.clean) return 'clean'
  return [r.reports.length > 0 ? `reported (${r.kinds.join(', ')})` : '', r.oops !== undefined ? 'oops' : '', r.dataOk ? '' : 'data wrong'].filter((x) => x !== '').join(', ')
}

export function registerExplore(program: Command): void {
  const cmd = program
    .command('explore')
    .description('run a scenario over many seeds (worker threads) and print the seed and replay command of each failure')
    .argument('<scenario>', 'a scenario file (scenarios/nic.ts) or the name of one of scenarios/ (nic)')
  addPlatformOptions(cmd)
    .addOption(new Option('--seeds <n>', 'how many seeds').argParser(intParser('--seeds', 1)).default(100))
    .addOption(new Option('--from <seed>', 'the first seed').argParser(intParser('--from', 0)).default(1))
    .addOption(new Option('--jobs <j>', 'worker threads (1: run in this thread)').argParser(intParser('--jobs', 1)).default(Math.max(1, Math.min(4, availableParallelism()))))
    .addOption(new Option('--shard <i/n>', 'run only the i-th of n interleaved slices of the seeds (CI fan-out)').argParser(parseShard))
    .option('--all', 'run every seed and list every failure (default: stop at the first failing seed)')
    .addOption(new Option('--fail-on <what>', 'what counts as a failure: any (a report, wrong data or an oops), report, data (wrong data or an oops)').choices(['any', 'report', 'data']).default('any'))
  addLogOption(cmd, 'error').action(async (arg: string, flags: ExploreFlags) => {
    const level = resolveLevel(flags.logLevel, 'error')
    const [{ formatReport }, { runPool }, { loadScenario }] = await Promise.all([import('../../kernel/index.js'), import('../lib/pool.js'), import('../lib/scenario-file.js')])
    const { scenario, file } = await loadScenario(arg)
    const seeds = shardSeeds(flags.from, flags.seeds, flags.shard)
    const tasks: PlatformOptions[] = seeds.map((seed) => platformOf(flags, seed))
    const logger = createLogger(level)
    const shardText = flags.shard !== undefined ? ` (shard ${flags.shard.index}/${flags.shard.count}: seeds ${seeds.length <= 12 ? seeds.join(', ') : `${seeds.slice(0, 6).join(', ')}, ..., ${seeds.at(-1)!}`})` : ''
    console.log(`dmalab explore ${scenario.name} — ${tasks[0] !== undefined ? replayCommand(arg, tasks[0]).replace(/^.* --seed \d+ /, '') : ''}, ${seeds.length} seed(s) from ${flags.from}${shardText}, ${flags.jobs} job(s), fail on ${flags.failOn}${flags.all === true ? ', all seeds' : ', stop at the first failure'}`)
    const progress = createProgress('explore', seeds.length)
    const failures: RunOutcome[] = []
    let done = 0
    const state: { scenarioError: RunOutcome | null } = { scenarioError: null }
    await runPool(tasks, {
      scenario,
      scenarioFile: file,
      jobs: flags.jobs,
      level,
      pretty: process.stderr.isTTY,
      logger,
      onResult: (_id, r) => {
        done++
        if (r.error !== undefined) state.scenarioError ??= r
        else if (fails(r, flags.failOn)) {
          failures.push(r)
          progress.log(`seed ${r.options.seed}: ${verdict(r)} — ${r.summary}`)
        }
        progress.update(done, failures.length > 0 ? `${failures.length} failing` : '')
        return state.scenarioError !== null || (failures.length > 0 && flags.all !== true) ? 'stop' : 'continue'
      },
    })
    progress.stop()
    const scenarioError = state.scenarioError
    if (scenarioError !== null) {
      console.error(`dmalab explore: the scenario '${scenario.name}' threw at seed ${scenarioError.options.seed} (a bug in the scenario, not a report on the driver):\n${scenarioError.error ?? ''}`)
      console.error(`replay: ${replayCommand(arg, scenarioError.options)}`)
      process.exitCode = EXIT_SCENARIO_ERROR
      return
    }
    failures.sort((a, b) => a.options.seed - b.options.seed)
    if (failures.length === 0) {
      console.log(`${done} seed(s) run: all clean${flags.failOn !== 'any' ? ` (fail on ${flags.failOn})` : ''}`)
      process.exitCode = EXIT_OK
      return
    }
    const first = failures[0]!
    console.log(`\nfirst failing seed: ${first.options.seed} — ${verdict(first)}: ${first.summary}`)
    for (const rep of first.reports) console.log(`${formatReport(rep)}\n`)
    console.log(`${failures.length} failing seed(s) of ${done} run${flags.all === true ? '' : ' (stopped at the first failure; --all runs every seed)'}:`)
    for (const f of failures) console.log(`  seed ${f.options.seed}: ${verdict(f)}\n    reproduce: ${replayCommand(arg, f.options)}`)
    process.exitCode = EXIT_BUG
  })
}
