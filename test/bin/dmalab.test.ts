// The `dmalab` command line, spawned as a user runs it: help on every subcommand, run / report /
// explore / portability / demo, the exit codes (0 clean, 1 bug found, 2 usage error), bad
// arguments, and explore finding a known-bad scenario's bug with a reproduce command that
// reproduces it exactly.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { shardSeeds } from '../../bin/commands/explore.js'

interface Out {
  code: number | null
  out: string
  err: string
}

/** Spawns a command (stdout and stderr are pipes, so the log is JSON and progress is plain lines). */
function spawnOut(cmd: string, args: readonly string[], env: Record<string, string> = {}): Promise<Out> {
  return new Promise((resolve, reject) => {
    const env0: Record<string, string | undefined> = { ...process.env, ...env }
    if (!('DMALAB_LOG' in env)) delete env0['DMALAB_LOG']
    const p = spawn(cmd, args, { env: env0, timeout: 120_000 })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out, err }))
  })
}

/** `dmalab ...` through bin/dmalab.ts under tsx (as `npm run dmalab --` does). */
const dmalab = (...args: string[]) => spawnOut(process.execPath, ['--import', 'tsx', 'bin/dmalab.ts', ...args])
const dmalabEnv = (env: Record<string, string>, ...args: string[]) => spawnOut(process.execPath, ['--import', 'tsx', 'bin/dmalab.ts', ...args], env)

const dir = mkdtempSync(join(tmpdir(), 'dmalab-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('dmalab --help', () => {
  it('the program and every subcommand have help, exit 0', async () => {
    const [top, ...subs] = await Promise.all([dmalab('--help'), ...['demo', 'run', 'explore', 'portability', 'report'].map((c) => dmalab(c, '--help'))])
    expect(top.code).toBe(0)
    for (const c of ['demo', 'run', 'explore', 'portability', 'report']) expect(top.out).toContain(c)
    expect(top.out).toContain('Exit codes:')
    expect(top.out).toMatch(/2 +usage error/)
    for (const s of subs) expect(s.code).toBe(0)
    expect(subs[1]!.out).toContain('--seed <n>')
    expect(subs[1]!.out).toContain('--reports <file>')
    expect(subs[2]!.out).toContain('--shard <i/n>')
    expect(subs[2]!.out).toContain('--all')
    expect(subs[3]!.out).toContain('swiotlb=force')
  })
})

describe('bad arguments: a message naming the argument, exit 2', () => {
  it('unknown arch, --seeds abc, a missing scenario, a bad --shard, a bad log level, an unknown command', async () => {
    const bogus = join(dir, 'not-a-scenario.ts')
    writeFileSync(bogus, "export default { name: 'x', devices: [] }\n")
    const runs = await Promise.all([
      dmalab('run', 'copy-engine', '--arch', 'sparc'),
      dmalab('explore', 'copy-engine', '--seeds', 'abc'),
      dmalab('run', 'scenarios/no-such.ts'),
      dmalab('run', bogus),
      dmalab('explore', 'copy-engine', '--shard', '3/2'),
      dmalab('explore', 'copy-engine', '--shard', 'half'),
      dmalab('run', 'copy-engine', '--seed', '-1'),
      dmalab('run', 'copy-engine', '--log-level', 'loud'),
      dmalabEnv({ DMALAB_LOG: 'loud' }, 'run', 'copy-engine'),
      dmalab('frobnicate'),
      dmalab('run'),
      dmalab('demo', 'sparc'),
    ])
    for (const r of runs) expect(r.code, r.err).toBe(2)
    const err = runs.map((r) => r.err)
    expect(err[0]).toMatch(/'--arch <arch>' argument 'sparc' is invalid/)
    expect(err[1]).toMatch(/'--seeds <n>' argument 'abc' is invalid.*--seeds must be an integer/)
    expect(err[2]).toContain("<scenario>: no such file 'scenarios/no-such.ts'")
    expect(err[3]).toContain('does not export a scenario')
    expect(err[3]).toContain("'workload' must be a function (missing)")
    expect(err[4]).toMatch(/'--shard <i\/n>' argument '3\/2' is invalid. i must be from 1 to n/)
    expect(err[5]).toMatch(/'--shard <i\/n>' argument 'half' is invalid/)
    expect(err[6]).toMatch(/'--seed <n>' argument '-1' is invalid/)
    expect(err[7]).toMatch(/'--log-level <level>' argument 'loud' is invalid/)
    expect(err[8]).toContain("DMALAB_LOG: unknown level 'loud'")
    expect(err[9]).toContain("unknown command 'frobnicate'")
    expect(err[10]).toContain("missing required argument 'scenario'")
    expect(err[11]).toContain("unknown architecture 'sparc'")
  })
})

describe('dmalab run', () => {
  it('the bin entry (bin/dmalab.js) runs a clean scenario: exit 0, saved reports are empty', async () => {
    const json = join(dir, 'clean.json')
    const r = await spawnOut(process.execPath, ['bin/dmalab.js', 'run', 'scenarios/copy-engine.ts', '--arch', 'riscv64', '--seed', '4', '--json', json])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain('dmalab run copy-engine — riscv64 iommu=strict swiotlb=auto seed=4')
    expect(r.out).toContain('every byte right')
    expect(r.out).toContain('result: clean')
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { clean: boolean; reports: unknown[]; options: object }
    expect(doc).toMatchObject({ clean: true, reports: [], options: { arch: 'riscv64', seed: 4, iommu: 'strict', swiotlb: 'auto' } })
  })

  it('nic, nvme and audio are clean', async () => {
    const runs = await Promise.all(['nic', 'nvme', 'audio'].map((s) => dmalab('run', `scenarios/${s}.ts`, '--seed', '3', '--arch', 'x86_64', '--swiotlb', 'force')))
    for (const r of runs) {
      expect(r.code, r.out + r.err).toBe(0)
      expect(r.out).toContain('result: clean')
    }
    expect(runs[0]!.out).toContain('40 frames sent, 40 echoed intact')
    expect(runs[1]!.out).toMatch(/0 I\/O errors, 0 verify errors/)
    expect(runs[2]!.out).toContain('4800 frames played: 19200 bytes right')
  })

  it('a known-bad scenario: the KASAN-style report, data wrong, the replay command, exit 1; --reports and --json save what `dmalab report` prints', async () => {
    const reports = join(dir, 'reports.json')
    const json = join(dir, 'run.json')
    const r = await dmalab('run', 'scenarios/bad/copy-engine-missing-sync.ts', '--arch', 'arm64', '--iommu', 'off', '--reports', reports, '--json', json)
    expect(r.code).toBe(1)
    expect(r.out).toContain('BUG: dmalab: cpu-access-device-owned in ce_copy_peek (test/fixtures/copy-engine-bad/missing-sync.ts:26)')
    expect(r.out).toContain('result: reported (cpu-access-device-owned), data wrong')
    expect(r.out).toContain('replay: npx dmalab run scenarios/bad/copy-engine-missing-sync.ts --seed 1 --arch arm64 --iommu off --swiotlb auto')
    // the log (stderr, JSON when not a terminal) carries the report as one line with its kind
    const logged = r.err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(logged).toContainEqual(expect.objectContaining({ level: 40, kind: 'cpu-access-device-owned', scenario: 'copy-engine-missing-sync', seed: 1 }))

    const [a, b] = await Promise.all([dmalab('report', reports), dmalab('report', json)])
    for (const p of [a, b]) {
      expect(p.code).toBe(1)
      expect(p.out).toContain('BUG: dmalab: cpu-access-device-owned in ce_copy_peek (test/fixtures/copy-engine-bad/missing-sync.ts:26)')
      expect(p.out).toContain('Call trace:')
      expect(p.out).toMatch(/1 report\(s\): cpu-access-device-owned/)
    }
    expect(b.out).toContain('copy-engine-missing-sync — arch arm64, iommu off, swiotlb auto, seed 1')
  })
})

describe('dmalab report: bad files are usage errors naming the file', () => {
  it('corrupt JSON, a wrong shape, a report without a kind, a missing file; an empty list is exit 0', async () => {
    const files = { corrupt: '{"reports": [', shape: '{"hello": 1}', kind: '[{"kind": "nonsense", "message": "m", "seed": 1, "time": 0, "stacks": []}]', empty: '[]' }
    for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, `${k}.json`), v)
    const [corrupt, shape, kind, missing, empty] = await Promise.all([
      ...['corrupt', 'shape', 'kind'].map((k) => dmalab('report', join(dir, `${k}.json`))),
      dmalab('report', join(dir, 'absent.json')),
      dmalab('report', join(dir, 'empty.json')),
    ])
    expect(corrupt).toMatchObject({ code: 2, err: expect.stringContaining(`${join(dir, 'corrupt.json')}: not JSON`) as unknown })
    expect(shape).toMatchObject({ code: 2, err: expect.stringContaining(`${join(dir, 'shape.json')}: expected an array of reports`) as unknown })
    expect(kind).toMatchObject({ code: 2, err: expect.stringContaining(`${join(dir, 'kind.json')}: report 0: 'kind' must be a report kind, got "nonsense"`) as unknown })
    expect(missing).toMatchObject({ code: 2, err: expect.stringContaining(`cannot read '${join(dir, 'absent.json')}'`) as unknown })
    expect(empty).toMatchObject({ code: 0, out: expect.stringContaining('no reports') as unknown })
  })
})

describe('dmalab explore', () => {
  it('shards split the seeds deterministically: every seed in exactly one shard', () => {
    expect(shardSeeds(1, 7, { index: 1, count: 3 })).toEqual([1, 4, 7])
    expect(shardSeeds(1, 7, { index: 3, count: 3 })).toEqual([3, 6])
    const all = [1, 2, 3, 4].flatMap((i) => shardSeeds(10, 50, { index: i, count: 4 }))
    expect(all.sort((x, y) => x - y)).toEqual(shardSeeds(10, 50, undefined))
  })

  it('finds the seed where a missing barrier really corrupts the copy (2 workers) and the printed command reproduces it exactly', async () => {
    const r = await dmalab('explore', 'scenarios/bad/copy-engine-no-barrier.ts', '--seeds', '100', '--jobs', '2', '--fail-on', 'data')
    expect(r.code, r.err).toBe(1)
    // seed 1 copies right (the stale descriptor was the right one by chance); seed 2 does not
    expect(r.out).toContain('first failing seed: 2 — reported (iommu-fault, missing-barrier), data wrong: chained copy failed: -5')
    expect(r.out).toContain('BUG: dmalab: missing-barrier')
    expect(r.err).toMatch(/^explore: \d+\/100/m) // progress, as plain lines when not on a terminal
    const cmd = /reproduce: (npx dmalab run .*)$/m.exec(r.out)?.[1]
    expect(cmd).toBe('npx dmalab run scenarios/bad/copy-engine-no-barrier.ts --seed 2 --arch arm64 --iommu strict --swiotlb auto')
    const again = await spawnOut('sh', ['-c', cmd!])
    expect(again.code, again.err).toBe(1)
    expect(again.out).toContain('seed=2')
    expect(again.out).toContain('chained copy failed: -5')
    expect(again.out).toContain('result: reported (iommu-fault, missing-barrier), data wrong')
  })

  it('--all lists every failing seed with its command; a clean scenario (in this thread, a shard) exits 0', async () => {
    const [all, clean] = await Promise.all([
      dmalab('explore', 'copy-engine-no-barrier', '--seeds', '4', '--jobs', '1', '--all', '--fail-on', 'data'),
      dmalab('explore', 'copy-engine', '--seeds', '6', '--shard', '2/3', '--jobs', '1', '--arch', 'x86_64'),
    ])
    expect(all.code).toBe(1)
    expect(all.out).toContain('2 failing seed(s) of 4 run:')
    expect(all.out).toContain('reproduce: npx dmalab run copy-engine-no-barrier --seed 2 --arch arm64 --iommu strict --swiotlb auto')
    expect(all.out).toContain('reproduce: npx dmalab run copy-engine-no-barrier --seed 3 --arch arm64 --iommu strict --swiotlb auto')
    expect(clean.code, clean.err).toBe(0)
    expect(clean.out).toContain('(shard 2/3: seeds 2, 5)')
    expect(clean.out).toContain('2 seed(s) run: all clean')
  })
})

describe('dmalab portability', () => {
  it('a missing sync: reported everywhere, the data wrong except on coherent x86_64 without forced bouncing; exit 1', async () => {
    const r = await dmalab('portability', 'scenarios/bad/copy-engine-missing-sync.ts')
    expect(r.code).toBe(1)
    const rows = Object.fromEntries(r.out.split('\n').filter((l) => /^(arm64|riscv64|x86_64) /.test(l)).map((l) => [l.split(' ')[0]!, l] as const))
    expect(rows['arm64']).toMatch(/^arm64 +reported \(cpu-access-device-owned\), data wrong +reported \(cpu-access-device-owned\), data wrong +reported \(cpu-access-device-owned\), data wrong$/)
    expect(rows['x86_64']).toMatch(/^x86_64 +reported \(cpu-access-device-owned\) +reported \(cpu-access-device-owned\), data wrong +reported \(cpu-access-device-owned\)$/)
    expect(r.out).toContain('reproduce: npx dmalab run scenarios/bad/copy-engine-missing-sync.ts --seed 1 --arch x86_64 --iommu off --swiotlb force')
    expect(r.err).toContain('portability: 9/9 (100%)')
  })
})

describe('dmalab demo', () => {
  it('runs the demo of npm start', async () => {
    const r = await dmalab('demo', 'x86_64')
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain('dmalab demo — platform x86_64')
    expect(r.out).toContain('cpu-access-device-owned')
    expect(r.out).toContain('4 packets transmitted, 4 received — reports: 0')
  })
})
