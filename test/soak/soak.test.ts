// The short soak in `npm test` (the long one is `npm run soak`, 10^6 operations): the tnic, NVMe
// and mini-HDA reference drivers on one system, every check on, a few thousand operations with all
// their data checked, no report, and the heap flat (test/soak/soak.ts says how it is measured). The
// soak runs in its own node (it needs --expose-gc for the memory samples).
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

interface SoakResult {
  ok: boolean
  ops: number
  frames: number
  ios: number
  periods: number
  reports: string[]
  failures: string[]
  heap: { ops: number; heapMb: number }[]
  growthMb: number
}

const soak = (...args: string[]) =>
  spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/soak/soak.ts', ...args], { encoding: 'utf8', timeout: 170_000 })

describe('soak (short)', () => {
  it('3000 mixed operations on the three reference drivers: data right, no report, heap flat', () => {
    const p = soak('--ops', '3000', '--seed', '4', '--json')
    expect(p.status, p.stderr).toBe(0)
    const r = JSON.parse(p.stdout) as SoakResult
    expect(r.failures).toEqual([])
    expect(r.reports).toEqual([])
    expect(r.ops).toBeGreaterThanOrEqual(3000)
    for (const n of [r.frames, r.ios, r.periods]) expect(n).toBeGreaterThan(0)
    expect(r.heap.length).toBeGreaterThanOrEqual(10) // a sample at each tenth, and one at the end
    expect(r.growthMb).toBeLessThan(24)
    expect(r.ok).toBe(true)
    expect(p.stderr).toMatch(/soak: \d+\/3000 ops \(\d+ frames, \d+ I\/Os, \d+ periods\), heap [\d.]+ MB/)
  }, 180_000)

  it('refuses bad arguments and a node without --expose-gc, naming the problem (exit 2)', () => {
    const bad = soak('--ops', 'many')
    expect(bad.status).toBe(2)
    expect(bad.stderr).toContain('soak: --ops must be an integer >= 300, got "many"')
    const noGc = spawnSync(process.execPath, ['--import', 'tsx', 'test/soak/soak.ts', '--ops', '300'], { encoding: 'utf8', timeout: 60_000 })
    expect(noGc.status).toBe(2)
    expect(noGc.stderr).toContain('soak: run with node --expose-gc')
  }, 120_000)
})
