/**
 * `dmalab trace <scenario> -o trace.json`: one run recorded as a Chrome trace-event file for
 * Perfetto (ui.perfetto.dev) or chrome://tracing: a track per CPU context, per device, per IRQ
 * line and per DMA buffer's ownership (host/trace-event.ts).
 */
import { writeFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import { EXIT_BUG, EXIT_OK, EXIT_SCENARIO_ERROR, UsageError } from '../lib/errors.js'
import { createLogger, resolveLevel } from '../lib/logger.js'
import { addLogOption, addPlatformOptions, intParser, platformLabel, platformOf, replayCommand, type PlatformFlags } from '../lib/options.js'

interface TraceFlags extends PlatformFlags {
  seed: number
  output: string
  maxEvents: number
  logLevel?: string
}

export function registerTrace(program: Command): void {
  const cmd = program
    .command('trace')
    .description('run a scenario once and write a Chrome/Perfetto trace: CPU contexts, devices, IRQ lines, DMA buffer ownership')
    .argument('<scenario>', 'a scenario file (scenarios/nic.ts) or the name of one of scenarios/ (nic)')
    .requiredOption('-o, --output <file>', 'the trace file to write (JSON; open it in https://ui.perfetto.dev or chrome://tracing)')
  addPlatformOptions(cmd)
    .addOption(new Option('--seed <n>', 'seed of every random choice').argParser(intParser('--seed', 0)).default(1))
    .addOption(new Option('--max-events <n>', 'keep at most this many MMIO and DMA events (the rest are counted, not kept)').argParser(intParser('--max-events', 1)).default(200_000))
  addLogOption(cmd, 'warn').action(async (arg: string, flags: TraceFlags) => {
    const level = resolveLevel(flags.logLevel, 'warn')
    const [{ runOne }, { loadScenario }, { startTrace }] = await Promise.all([import('../lib/run-one.js'), import('../lib/scenario-file.js'), import('../../host/trace-event.js')])
    const { scenario } = await loadScenario(arg)
    const options = platformOf(flags, flags.seed)
    console.log(`dmalab trace ${scenario.name} — ${platformLabel(options)}`)
    let session: ReturnType<typeof startTrace> | null = null
    const r = await runOne(scenario, options, createLogger(level), {
      onBoot: (sys) => {
        session = startTrace(sys, { maxEvents: flags.maxEvents })
      },
    })
    if (r.error !== undefined) {
      console.error(`dmalab trace: the scenario '${scenario.name}' threw (a bug in the scenario, not a report on the driver):\n${r.error}`)
      process.exitCode = EXIT_SCENARIO_ERROR
      return
    }
    const trace = (session as ReturnType<typeof startTrace> | null)?.finish()
    if (trace === undefined) throw new Error('dmalab trace: the run never booted a system')
    try {
      writeFileSync(flags.output, JSON.stringify(trace))
    } catch (e) {
      throw new UsageError(`--output: cannot write '${flags.output}': ${e instanceof Error ? e.message : String(e)}`)
    }
    const tracks = trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').length
    const events = trace.traceEvents.length - trace.traceEvents.filter((e) => e.ph === 'M').length
    const dropped = Number(trace.otherData['droppedEvents'])
    console.log(`wrote ${flags.output}: ${events} events on ${tracks} tracks, ${String(trace.otherData['buffers'])} DMA buffers${dropped > 0 ? `; ${dropped} MMIO/DMA events over --max-events were left out` : ''}`)
    console.log('open it in https://ui.perfetto.dev (Open trace file) or chrome://tracing')
    console.log(r.summary)
    if (!r.clean) {
      console.log(`result: ${[r.reports.length > 0 ? `reported (${r.kinds.join(', ')})` : '', r.dataOk ? '' : 'data wrong'].filter((x) => x !== '').join(', ')}; reports are instant events on the CPU track`)
      console.log(`replay: ${replayCommand(arg, options)}`)
    } else console.log('result: clean')
    process.exitCode = r.clean ? EXIT_OK : EXIT_BUG
  })
}
