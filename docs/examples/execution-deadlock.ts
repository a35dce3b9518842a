// A task that waits for something nothing can ever do is an error, not a hang: when every task is
// blocked and no timer, device event or interrupt is left that could wake one, each sys.run()
// still waiting rejects. Here two tasks take two mutexes in opposite orders (an ABBA deadlock).
import {
  boot,
  DmalabError,
  msleep,
  mutex_init,
  mutex_lock,
  mutex_unlock,
  type BootOptions,
  type Mutex,
  type Report,
} from '../../kernel/index.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const [a, b] = await sys.run(() => [mutex_init(), mutex_init()])
  const task = (first: Mutex, second: Mutex) => async () => {
    await mutex_lock(first)
    await msleep(1) // long enough for the other task to take its first mutex
    await mutex_lock(second) // BUG: lock order a -> b in one task, b -> a in the other
    mutex_unlock(second)
    mutex_unlock(first)
  }
  const results = await Promise.allSettled([sys.run(task(a, b), 'ab'), sys.run(task(b, a), 'ba')])
  const lines = results.map((r) =>
    r.status === 'rejected' && r.reason instanceof DmalabError ? `rejected: ${r.reason.message}` : r.status,
  )
  return { lines, reports: sys.reports }
}
