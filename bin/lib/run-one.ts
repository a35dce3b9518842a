/**
 * One run of a scenario from the command line: the system gets a child of the command's logger,
 * and an exception from the scenario's own code becomes a ScenarioError (exit 3).
 */
import type { Logger } from 'pino'
import { isClean, runScenario, type PlatformOptions, type RunHooks, type RunResult, type Scenario } from '../../scenarios/scenario.js'
import { kernelLogger } from './logger.js'

/** A run's outcome as it travels between threads. */
export interface RunOutcome extends RunResult {
  readonly clean: boolean
  /** The report kinds, sorted, without repeats. */
  readonly kinds: string[]
  /** Set when the scenario's own code threw (not a driver oops). */
  readonly error?: string
}

export async function runOne(s: Scenario, options: PlatformOptions, logger: Logger, hooks: RunHooks = {}): Promise<RunOutcome> {
  try {
    const r = await runScenario(s, options, kernelLogger(logger, { scenario: s.name, seed: options.seed, arch: options.arch }), hooks)
    return { ...r, clean: isClean(r), kinds: [...new Set(r.reports.map((x) => x.kind))].sort() }
  } catch (e) {
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e)
    return { options, reports: [], dataOk: false, summary: 'the scenario threw', clock: 0, clean: false, kinds: [], error: message }
  }
}
