// Two systems in one process, e.g. two machines on one wire: each has its own machine, clock,
// memory and reports. Their tasks take turns on the one CPU lock of the process, and a free
// function (kmalloc, msleep, ...) acts on the system whose task is running, across awaits too.
import { boot, kmalloc, ktime_get_ns, msleep, type BootOptions, type Report } from '../../kernel/index.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const a = boot({ log: 'silent', ...options })
  const b = boot({ log: 'silent', ...options, arch: 'x86_64' })
  const lines: string[] = []
  const worker = (name: string, periodMs: number) => async () => {
    for (let i = 1; i <= 3; i++) {
      await msleep(periodMs)
      const p = kmalloc(4096)! // from this system's allocator
      lines.push(`${name}: wake-up ${i} at ${ktime_get_ns() / 1e6} ms, kmalloc -> ${p.toString(16)}`)
    }
  }
  await Promise.all([a.run(worker('a', 3)), b.run(worker('b', 5))])
  lines.push(`a.clock = ${a.clock / 1e6} ms, b.clock = ${b.clock / 1e6} ms`)
  return { lines, reports: [...a.reports, ...b.reports] }
}
