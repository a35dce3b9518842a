/**
 * Exit codes of `dmalab` (documented in README.md and `dmalab --help`), and the usage error that
 * maps to 2.
 */

/** 0: the command ran and found nothing wrong (or printed help). */
export const EXIT_OK = 0
/** 1: a bug was found: reports, data that came out wrong, a kernel oops (or `report` read some reports). */
export const EXIT_BUG = 1
/** 2: usage error: a bad argument or option, a missing or malformed scenario or reports file. */
export const EXIT_USAGE = 2
/** 3: the scenario's own code threw (not the driver: a driver crash is an oops, exit 1). */
export const EXIT_SCENARIO_ERROR = 3

export const EXIT_CODES_HELP = `Exit codes:
  0  ran, nothing found (clean: no report and the data right)
  1  bug found: reports, data wrong, or a kernel oops (report: the file holds reports)
  2  usage error: bad argument, missing or malformed scenario or reports file
  3  the scenario's own code threw an exception`

/** A mistake on the command line (or in a file it names): printed without a stack, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The scenario's own code threw: exit 3. */
export class ScenarioError extends Error {
  override readonly name = 'ScenarioError'
}
