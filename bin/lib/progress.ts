/**
 * Progress for long-running commands, on stderr: a cli-progress bar on a terminal, plain lines
 * otherwise (at most one every `everyMs`, and the last one always).
 */
import cliProgress from 'cli-progress'

export interface Progress {
  /** Moves to `done` of the total; `status` is a short free text (e.g. the failures so far). */
  update(done: number, status?: string): void
  /** Prints a line above the bar (or as a plain line). */
  log(line: string): void
  stop(): void
}

export function createProgress(label: string, total: number, opts: { tty?: boolean; everyMs?: number } = {}): Progress {
  const tty = opts.tty ?? process.stderr.isTTY
  if (tty) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} {percentage}% | eta {eta_formatted} | {status}`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    )
    bar.start(total, 0, { status: '' })
    return {
      update: (done, status = '') => bar.update(done, { status }),
      log: (line) => {
        process.stderr.write(`\r\x1b[K${line}\n`)
        bar.render()
      },
      stop: () => bar.stop(),
    }
  }
  const every = opts.everyMs ?? 2000
  let last = 0
  let printed = -1
  let now = { done: 0, status: '' }
  const print = () => {
    const { done, status } = now
    process.stderr.write(`${label}: ${done}/${total} (${total > 0 ? Math.floor((done * 100) / total) : 100}%)${status !== '' ? ` ${status}` : ''}\n`)
    last = Date.now()
    printed = done
  }
  print()
  return {
    update: (done, status = '') => {
      now = { done, status }
      if (done === total || Date.now() - last >= every) print()
    },
    log: (line) => process.stderr.write(`${line}\n`),
    stop: () => {
      if (printed !== now.done) print()
    },
  }
}
