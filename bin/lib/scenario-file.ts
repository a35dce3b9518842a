/**
 * Finding and loading a scenario module: a path (scenarios/nic.ts), or the bare name of one of
 * dmalab's own scenarios (nic, copy-engine-no-barrier) looked up in scenarios/ and scenarios/bad/.
 */
import { existsSync, statSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { isScenario, scenarioProblems, type Scenario } from '../../scenarios/scenario.js'
import { UsageError } from './errors.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

/** The absolute file of a scenario argument; a usage error when there is none. */
export function resolveScenarioFile(arg: string): string {
  if (arg.trim() === '') throw new UsageError('<scenario>: an empty name')
  const direct = isAbsolute(arg) ? arg : resolve(process.cwd(), arg)
  if (existsSync(direct)) {
    if (!statSync(direct).isFile()) throw new UsageError(`<scenario>: '${arg}' is not a file`)
    return direct
  }
  if (/^[\w-]+$/.test(arg)) {
    for (const dir of ['scenarios', 'scenarios/bad']) {
      const f = resolve(ROOT, dir, `${arg}.ts`)
      if (existsSync(f)) return f
    }
  }
  throw new UsageError(`<scenario>: no such file '${arg}' (give a path such as scenarios/nic.ts, or the name of one in scenarios/)`)
}

/** Imports a scenario file and checks that its default export is a scenario. */
export async function loadScenario(arg: string): Promise<{ file: string; scenario: Scenario }> {
  const file = resolveScenarioFile(arg)
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
  } catch (e) {
    throw new UsageError(`<scenario>: '${arg}' failed to load: ${e instanceof Error ? e.message : String(e)}`)
  }
  const x = mod['default'] ?? mod['scenario']
  if (isScenario(x)) return { file, scenario: x }
  const why = x === undefined ? ['it has no default export'] : scenarioProblems(x)
  throw new UsageError(`<scenario>: '${arg}' does not export a scenario (export default defineScenario({ name, description, devices, driver, workload })): ${why.join('; ')}`)
}
