/**
 * `dmalab portability <scenario>`: the same scenario and seed on arm64, riscv64 and x86_64, each
 * plain (IOMMU off, swiotlb auto), with swiotlb=force and with a strict IOMMU; a table of clean /
 * reported (kinds) / data wrong, and the replay command of each cell that is not clean.
 */
import { Option, type Command } from 'commander'
import type { PlatformOptions } from '../../scenarios/scenario.js'
import { EXIT_BUG, EXIT_OK, EXIT_SCENARIO_ERROR } from '../lib/errors.js'
import { createLogger, resolveLevel } from '../lib/logger.js'
import { addLogOption, intParser, replayCommand } from '../lib/options.js'
import { createProgress } from '../lib/progress.js'
import type { RunOutcome } from '../lib/run-one.js'
import { verdict } from './explore.js'

const ARCHES = ['arm64', 'riscv64', 'x86_64'] as const
const COLUMNS = [
  { label: 'plain (iommu off)', iommu: 'off', swiotlb: 'auto' },
  { label: 'swiotlb=force', iommu: 'off', swiotlb: 'force' },
  { label: 'iommu=strict', iommu: 'strict', swiotlb: 'auto' },
] as const

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n')
}

export function registerPortability(program: Command): void {
  const cmd = program
    .command('portability')
    .description('run a scenario on arm64, riscv64 and x86_64, each plain, with swiotlb=force and with a strict IOMMU; print a table')
    .argument('<scenario>', 'a scenario file (scenarios/nic.ts) or the name of one of scenarios/ (nic)')
    .addOption(new Option('--seed <n>', 'seed of every run').argParser(intParser('--seed', 0)).default(1))
    .addOption(new Option('--jobs <j>', 'worker threads (1: run in this thread)').argParser(intParser('--jobs', 1)).default(1))
  addLogOption(cmd, 'error').action(async (arg: string, flags: { seed: number; jobs: number; logLevel?: string }) => {
    const level = resolveLevel(flags.logLevel, 'error')
    const [{ runPool }, { loadScenario }] = await Promise.all([import('../lib/pool.js'), import('../lib/scenario-file.js')])
    const { scenario, file } = await loadScenario(arg)
    const tasks: PlatformOptions[] = ARCHES.flatMap((arch) => COLUMNS.map((c) => ({ arch, iommu: c.iommu, swiotlb: c.swiotlb, seed: flags.seed })))
    const logger = createLogger(level)
    console.log(`dmalab portability ${scenario.name} — seed ${flags.seed}`)
    const progress = createProgress('portability', tasks.length, { everyMs: 0 })
    const out = new Map<number, RunOutcome>()
    await runPool(tasks, {
      scenario,
      scenarioFile: file,
      jobs: flags.jobs,
      level,
      pretty: process.stderr.isTTY,
      logger,
      onResult: (id, r) => {
        out.set(id, r)
        progress.update(out.size, `${r.options.arch} iommu=${r.options.iommu} swiotlb=${r.options.swiotlb}: ${verdict(r)}`)
        return 'continue'
      },
    })
    progress.stop()
    const rows = [['', ...COLUMNS.map((c) => c.label)], ...ARCHES.map((arch, a) => [arch, ...COLUMNS.map((_, c) => verdict(out.get(a * COLUMNS.length + c)!))])]
    console.log(`\n${table(rows)}\n`)
    const bad = tasks.map((t, i) => ({ t, r: out.get(i)! })).filter(({ r }) => !r.clean)
    const threw = bad.find(({ r }) => r.error !== undefined)
    if (threw !== undefined) {
      console.error(`dmalab portability: the scenario '${scenario.name}' threw (a bug in the scenario, not a report on the driver):\n${threw.r.error ?? ''}`)
      process.exitCode = EXIT_SCENARIO_ERROR
      return
    }
    if (bad.length === 0) {
      console.log('clean everywhere')
      process.exitCode = EXIT_OK
      return
    }
    console.log('not clean:')
    for (const { t, r } of bad) console.log(`  ${verdict(r)}: ${r.summary}\n    reproduce: ${replayCommand(arg, t)}`)
    process.exitCode = EXIT_BUG
  })
}
