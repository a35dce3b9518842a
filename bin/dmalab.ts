/**
 * `dmalab`: the command line (README.md "Command line"). Each subcommand lives in
 * bin/commands/<name>.ts and exports a register function; adding one is one line below.
 *
 * Exit codes: 0 clean, 1 bug found, 2 usage error, 3 the scenario's own code threw
 * (bin/lib/errors.ts).
 */
import { Command, CommanderError } from 'commander'
import { registerDemo } from './commands/demo.js'
import { registerDiagram } from './commands/diagram.js'
import { registerExplore } from './commands/explore.js'
import { registerLab } from './commands/lab.js'
import { registerPortability } from './commands/portability.js'
import { registerReport } from './commands/report.js'
import { registerRun } from './commands/run.js'
import { registerTrace } from './commands/trace.js'
import { EXIT_CODES_HELP, EXIT_USAGE, UsageError } from './lib/errors.js'

const program = new Command('dmalab')
  .description('dmalab: the Linux DMA API on an emulated machine where coherence bugs really happen')
  .version('0.1.0')
  .showHelpAfterError('(add --help for usage)')
  .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nThe log (pino) goes to stderr: pretty on a terminal, JSON lines otherwise; level from --log-level or $DMALAB_LOG.`)
  .exitOverride()

// One line per subcommand.
registerDemo(program)
registerRun(program)
registerExplore(program)
registerPortability(program)
registerReport(program)
registerTrace(program)
registerDiagram(program)
registerLab(program)

try {
  await program.parseAsync(process.argv)
} catch (e) {
  if (e instanceof CommanderError) process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE
  else if (e instanceof UsageError) {
    console.error(`dmalab: error: ${e.message}`)
    process.exitCode = EXIT_USAGE
  } else throw e
}
process.exit(process.exitCode ?? 0)
