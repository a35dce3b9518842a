/**
 * A worker thread of `dmalab explore` / `portability`: loads the scenario once, then runs the
 * platform options it is sent, one at a time, and posts each outcome back.
 */
import { parentPort, workerData } from 'node:worker_threads'
import type { PlatformOptions } from '../../scenarios/scenario.js'
import { createLogger } from './logger.js'
import { runOne } from './run-one.js'
import { loadScenario } from './scenario-file.js'
import type { LogLevel } from '../../kernel/index.js'

export interface WorkerData {
  scenarioFile: string
  level: LogLevel
  pretty: boolean
}

export type ToWorker = { type: 'run'; id: number; options: PlatformOptions } | { type: 'exit' }

const port = parentPort!
const data = workerData as WorkerData
const logger = createLogger(data.level, data.pretty)
try {
  const { scenario } = await loadScenario(data.scenarioFile)
  port.on('message', (m: ToWorker) => {
    if (m.type === 'exit') {
      port.close()
      return
    }
    void runOne(scenario, m.options, logger).then((outcome) => port.postMessage({ type: 'result', id: m.id, outcome }))
  })
  port.postMessage({ type: 'ready' })
} catch (e) {
  port.postMessage({ type: 'load-error', message: e instanceof Error ? e.message : String(e) })
}
