/**
 * Runs many runs of one scenario: in this thread when jobs is 1, else on `jobs` worker threads
 * (node:worker_threads; each loads TypeScript through tsx). Runs are handed out in order; once
 * onResult answers 'stop', no new run starts and the ones under way finish (so "the first failing
 * seed" is the lowest one, whatever the number of jobs).
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { LogLevel } from '../../kernel/index.js'
import type { PlatformOptions, Scenario } from '../../scenarios/scenario.js'
import { UsageError } from './errors.js'
import { runOne, type RunOutcome } from './run-one.js'
import type { ToWorker, WorkerData } from './worker.js'

export interface PoolOptions {
  scenario: Scenario
  scenarioFile: string
  jobs: number
  level: LogLevel
  pretty: boolean
  logger: Logger
  /** Called once per finished run, in completion order. */
  onResult: (id: number, outcome: RunOutcome) => 'continue' | 'stop'
}

/**
 * The code a worker starts with: it registers tsx's loader in the worker's own thread (on node 20
 * a parent's `--import tsx` does not reach workers), then imports worker.ts.
 */
function workerBootstrap(): string {
  const tsxApi = import.meta.resolve('tsx/esm/api')
  const entry = new URL('./worker.ts', import.meta.url).href
  return `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`
}

export async function runPool(tasks: readonly PlatformOptions[], o: PoolOptions): Promise<void> {
  let next = 0
  let stopped = false
  const finish = (id: number, outcome: RunOutcome) => {
    if (o.onResult(id, outcome) === 'stop') stopped = true
  }
  if (o.jobs <= 1 || tasks.length <= 1) {
    while (!stopped && next < tasks.length) {
      const id = next++
      finish(id, await runOne(o.scenario, tasks[id]!, o.logger))
    }
    return
  }
  const n = Math.min(o.jobs, tasks.length)
  const data: WorkerData = { scenarioFile: o.scenarioFile, level: o.level, pretty: o.pretty }
  const code = workerBootstrap()
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = new Worker(code, { eval: true, workerData: data })
      const send = (m: ToWorker) => w.postMessage(m)
      const feed = () => {
        if (stopped || next >= tasks.length) {
          send({ type: 'exit' })
          return
        }
        const id = next++
        send({ type: 'run', id, options: tasks[id]! })
      }
      w.on('message', (m: { type: 'ready' } | { type: 'load-error'; message: string } | { type: 'result'; id: number; outcome: RunOutcome }) => {
        if (m.type === 'load-error') {
          reject(new UsageError(m.message))
          void w.terminate()
        } else if (m.type === 'result') {
          finish(m.id, m.outcome)
          feed()
        } else feed()
      })
      w.on('error', (e) => reject(new Error(`explore: a worker thread failed: ${e.message}`, { cause: e })))
      w.on('exit', () => resolve())
    })
  await Promise.all(Array.from({ length: n }, one))
}
