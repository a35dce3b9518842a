/**
 * `dmalab diagram <scenario> --buffer <id>`: one DMA buffer's ownership transitions in a real run,
 * as a Mermaid sequence diagram (host/ownership-diagram.ts) — the picture the DMA primers draw by
 * hand. `--list` shows the buffers of the run.
 */
import { writeFileSync } from 'node:fs'
import { Option, type Command } from 'commander'
import type { BufferHistory, OwnershipRecorder } from '../../host/ownership-diagram.js'
import { EXIT_BUG, EXIT_OK, EXIT_SCENARIO_ERROR, UsageError } from '../lib/errors.js'
import { createLogger, resolveLevel } from '../lib/logger.js'
import { addLogOption, addPlatformOptions, intParser, platformLabel, platformOf, replayCommand, type PlatformFlags } from '../lib/options.js'

interface DiagramFlags extends PlatformFlags {
  seed: number
  buffer?: string
  list?: boolean
  output?: string
  logLevel?: string
}

const BUFFER_HELP = `--buffer takes:
  N           the buffer numbered N (buffers are numbered 1, 2, 3... in the order the run mapped or
              allocated them; --list shows them)
  FILE:LINE   the first buffer mapped or allocated at that driver line (a suffix of the path will do:
              copy-engine.ts:179)
  report      the buffer the first report of the run is about`

/** The buffer a --buffer value names, or a usage error that says what there is (`reported`: buffer numbers, first report first). */
export function pickBuffer(rec: OwnershipRecorder, sel: string, reported: readonly number[]): BufferHistory {
  const all = rec.buffers
  if (/^\d+$/.test(sel)) {
    const b = rec.buffer(Number(sel))
    if (b === undefined) throw new UsageError(`--buffer ${sel}: the run had ${all.length} buffer${all.length === 1 ? '' : 's'} (1..${all.length}); see --list`)
    return b
  }
  if (sel === 'report') {
    const b = reported.length === 0 ? undefined : rec.buffer(reported[0]!)
    if (b === undefined) throw new UsageError('--buffer report: no report of this run is about a DMA buffer (run it with dmalab run to see its reports)')
    return b
  }
  const m = /^(.+):(\d+)$/.exec(sel)
  if (m !== null) {
    const b = all.find((x) => x.first.site !== undefined && (x.first.site === sel || x.first.site.endsWith(`/${sel}`)))
    if (b === undefined) throw new UsageError(`--buffer ${sel}: no buffer was mapped or allocated at that line; see --list`)
    return b
  }
  throw new UsageError(`--buffer ${JSON.stringify(sel)}: not a buffer number, FILE:LINE or 'report'\n${BUFFER_HELP}`)
}

export function registerDiagram(program: Command): void {
  const cmd = program
    .command('diagram')
    .description('run a scenario once and draw one DMA buffer’s ownership transitions as a Mermaid sequence diagram')
    .argument('<scenario>', 'a scenario file (scenarios/nic.ts) or the name of one of scenarios/ (nic)')
    .option('--buffer <id>', 'which buffer: N, FILE:LINE or report (see below)')
    .option('--list', 'list the buffers of the run instead of drawing one')
    .option('-o, --output <file>', 'write the diagram to a file (a .md file gets a ```mermaid fence) instead of stdout')
  addPlatformOptions(cmd)
    .addOption(new Option('--seed <n>', 'seed of every random choice').argParser(intParser('--seed', 0)).default(1))
    .addHelpText('after', `\n${BUFFER_HELP}`)
  addLogOption(cmd, 'warn').action(async (arg: string, flags: DiagramFlags) => {
    if (flags.buffer === undefined && flags.list !== true) throw new UsageError(`diagram: say which buffer with --buffer, or --list the run's buffers\n${BUFFER_HELP}`)
    const level = resolveLevel(flags.logLevel, 'warn')
    const [{ runOne }, { loadScenario }, od, { describeBuffer }] = await Promise.all([
      import('../lib/run-one.js'),
      import('../lib/scenario-file.js'),
      import('../../host/ownership-diagram.js'),
      import('../../host/trace-event.js'),
    ])
    const { scenario } = await loadScenario(arg)
    const options = platformOf(flags, flags.seed)
    let rec: OwnershipRecorder | null = null
    const r = await runOne(scenario, options, createLogger(level), {
      onBoot: (sys) => {
        rec = od.recordOwnership(sys)
      },
    })
    if (r.error !== undefined) {
      console.error(`dmalab diagram: the scenario '${scenario.name}' threw (a bug in the scenario, not a report on the driver):\n${r.error}`)
      process.exitCode = EXIT_SCENARIO_ERROR
      return
    }
    const recorder = rec as OwnershipRecorder | null
    if (recorder === null) throw new Error('dmalab diagram: the run never booted a system')
    recorder.stop()
    const reportIds = od.reportedBuffers(recorder)
    const header = `dmalab diagram ${scenario.name} — ${platformLabel(options)}`
    if (flags.list === true) {
      console.log(header)
      for (const b of recorder.buffers) console.log(`${describeBuffer(b.number, b.first)}${reportIds.includes(b.number) ? '  (reported)' : ''}`)
      console.log(`${recorder.buffers.length} buffers`)
    } else {
      const b = pickBuffer(recorder, flags.buffer!, reportIds)
      const text = od.ownershipDiagram(b)
      if (flags.output !== undefined) {
        const body = flags.output.endsWith('.md') ? `\`\`\`mermaid\n${text}\`\`\`\n` : text
        try {
          writeFileSync(flags.output, body)
        } catch (e) {
          throw new UsageError(`--output: cannot write '${flags.output}': ${e instanceof Error ? e.message : String(e)}`)
        }
        console.log(header)
        console.log(`wrote ${flags.output}: buffer ${b.number} (${b.steps.length} steps)`)
      } else process.stdout.write(text)
    }
    if (!r.clean) {
      console.error(`result: ${[r.reports.length > 0 ? `reported (${r.kinds.join(', ')})` : '', r.dataOk ? '' : 'data wrong'].filter((x) => x !== '').join(', ')}`)
      console.error(`replay: ${replayCommand(arg, options)}`)
    }
    process.exitCode = r.clean ? EXIT_OK : EXIT_BUG
  })
}
