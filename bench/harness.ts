/**
 * A small benchmark harness. Every ratio is taken against a baseline measured in the same run:
 * the baseline and the workload run in alternating batches after a warm-up, so a machine that is
 * busy or slow affects both sides alike, and the fastest batch of each side is compared (on a
 * shared VM a batch can be slowed by the host at any time; the fastest is the best estimate of
 * what the code itself costs).
 */
import { performance } from 'node:perf_hooks'

export interface BenchResult {
  name: string
  value: number
  unit: string
  /** Against a baseline measured in the same run (see each entry's note). */
  ratio?: number
  /** What was measured and what the ratio compares. */
  note?: string
}

function repsFor(fn: () => void, minBatchMs: number): number {
  let reps = 1
  for (;;) {
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) fn()
    if (performance.now() - t0 >= minBatchMs) return reps
    reps *= 2
  }
}

function batch(fn: () => void, reps: number, ops: number): number {
  const t0 = performance.now()
  for (let i = 0; i < reps; i++) fn()
  return ((performance.now() - t0) * 1e6) / (reps * ops)
}

function warm(fn: () => void, ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) for (let i = 0; i < 64; i++) fn()
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Median nanoseconds per operation of fn (which performs `ops` operations per call). */
export function timeNs(fn: () => void, ops = 1, { batches = 15, minBatchMs = 20, warmMs = 300 } = {}): number {
  warm(fn, warmMs)
  const reps = repsFor(fn, minBatchMs)
  const samples: number[] = []
  for (let b = 0; b < batches; b++) samples.push(batch(fn, reps, ops))
  return median(samples)
}

/** Fastest batches of baseline and workload, measured in alternating batches (ns per call). */
export function compareNs(baseline: () => void, fn: () => void, { batches = 21, minBatchMs = 15, warmMs = 300 } = {}): { base: number; ns: number } {
  warm(baseline, warmMs / 2)
  warm(fn, warmMs)
  const rb = repsFor(baseline, minBatchMs)
  const rf = repsFor(fn, minBatchMs)
  const bs: number[] = []
  const fs: number[] = []
  for (let b = 0; b < batches; b++) {
    bs.push(batch(baseline, rb, 1))
    fs.push(batch(fn, rf, 1))
  }
  return { base: Math.min(...bs), ns: Math.min(...fs) }
}

/**
 * For workloads timed a whole run at a time (a fio job, a 10 s play): `rounds` runs of each setting,
 * in alternation after one warm-up run of each, and the fastest of each (as compareNs does).
 */
export async function fastestAlternating(a: () => Promise<number>, b: () => Promise<number>, rounds = 3): Promise<{ a: number; b: number }> {
  await a()
  await b()
  let fa = Infinity
  let fb = Infinity
  for (let i = 0; i < rounds; i++) {
    fa = Math.min(fa, await a())
    fb = Math.min(fb, await b())
  }
  return { a: fa, b: fb }
}
