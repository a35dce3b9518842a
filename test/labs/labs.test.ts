// `dmalab lab ...` spawned as a student runs it: each lab's skeleton, scaffolded by `start` into a
// temp folder, fails `check` with feedback naming rules and lines; the reference solution, copied
// into a temp folder outside the repository (no package.json), passes with a full score; in
// fix-the-bugs every planted bug is reported with its rule, line and hint, and fixing them one by
// one raises the score to 100; bad arguments exit 2.
import { spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { LAB_PLATFORMS } from '../../bin/lib/lab-grade.js'
import { PLATFORMS } from '../../testing/platforms.js'

interface Out {
  code: number | null
  out: string
  err: string
}

function dmalab(...args: string[]): Promise<Out> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env }
    delete env['DMALAB_LOG']
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/dmalab.ts', ...args], { env, timeout: 120_000 })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out, err }))
  })
}

const scoreOf = (r: Out): number => Number(/Score: (\d+)\/100/.exec(r.out)?.[1] ?? NaN)

const tmp = mkdtempSync(join(tmpdir(), 'dmalab-labs-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** 1-based line of the first line of `file` containing `text`. */
function lineOf(file: string, text: string): number {
  const i = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text))
  if (i < 0) throw new Error(`${file}: no line contains ${text}`)
  return i + 1
}

describe('dmalab lab list / hint', () => {
  it('list shows every lab with its title; hint prints hint n (default the first)', async () => {
    const [list, h1, h3] = await Promise.all([dmalab('lab', 'list'), dmalab('lab', 'hint', 'fix-the-bugs'), dmalab('lab', 'hint', 'copy-engine-hello', '3')])
    expect(list.code).toBe(0)
    expect(list.out).toMatch(/copy-engine-hello +Hello, DMA/)
    expect(list.out).toMatch(/fix-the-bugs +Fix the bugs/)
    expect(list.out).toMatch(/nic-tx +NIC TX/)
    expect(h1.code).toBe(0)
    expect(h1.out).toContain('Hint 1/6 for fix-the-bugs')
    expect(h1.out).toContain('dmalab lab hint fix-the-bugs 2')
    expect(h3.out).toContain('Hint 3/6 for copy-engine-hello')
    expect(h3.out).toContain('DMA_TO_DEVICE')
  })

  it('the grader runs the same 12 platforms as testing/platforms.ts', () => {
    expect(LAB_PLATFORMS.map((p) => p.name)).toEqual(PLATFORMS.map((p) => p.name))
    for (const p of LAB_PLATFORMS) expect(p.options.coherent).toBe(PLATFORMS.find((q) => q.name === p.name)!.coherent)
  })
})

describe('bad arguments: a clear message, exit 2', () => {
  it('unknown lab, missing folder, hint out of range, start into a non-empty folder', async () => {
    const full = join(tmp, 'full')
    mkdirSync(full)
    writeFileSync(join(full, 'x.txt'), 'x')
    const runs = await Promise.all([
      dmalab('lab', 'start', 'no-such-lab', join(tmp, 'a')),
      dmalab('lab', 'check', 'no-such-lab', tmp),
      dmalab('lab', 'check', 'copy-engine-hello', join(tmp, 'missing')),
      dmalab('lab', 'hint', 'copy-engine-hello', '99'),
      dmalab('lab', 'hint', 'copy-engine-hello', 'zero'),
      dmalab('lab', 'start', 'copy-engine-hello', full),
      dmalab('lab', 'check', 'fix-the-bugs', full),
    ])
    for (const r of runs) expect(r.code, r.err).toBe(2)
    expect(runs[0].err).toContain("unknown lab 'no-such-lab'; the labs are: copy-engine-hello, fix-the-bugs, nic-tx")
    expect(runs[1].err).toContain("unknown lab 'no-such-lab'")
    expect(runs[2].err).toContain('no such folder')
    expect(runs[3].err).toContain('has hints 1 to 6')
    expect(runs[4].err).toContain("hint 'zero' is out of range")
    expect(runs[5].err).toContain('already exists and is not an empty folder')
    expect(runs[6].err).toContain('has no ce_fix.ts')
  })
})

describe('copy-engine-hello', () => {
  it('the scaffolded skeleton fails with feedback; the solution copied outside the repo passes with 100', async () => {
    const dir = join(tmp, 'hello')
    const start = await dmalab('lab', 'start', 'copy-engine-hello', dir)
    expect(start.code, start.err).toBe(0)
    const files = readFileSync(join(dir, 'ce_hello.ts'), 'utf8')
    expect(files).toContain('TODO(1)')
    expect(() => readFileSync(join(dir, 'package.json'), 'utf8')).not.toThrow()
    const sol = join(tmp, 'hello-solution')
    cpSync('labs/copy-engine-hello/solution', sol, { recursive: true }) // no package.json next to it
    const [skel, good] = await Promise.all([dmalab('lab', 'check', 'copy-engine-hello', dir), dmalab('lab', 'check', 'copy-engine-hello', sol)])
    expect(skel.code).toBe(1)
    expect(scoreOf(skel)).toBe(0)
    expect(skel.out).toContain('hello_copy(4096 bytes) returned -38 (-ENOSYS: a TODO is not done yet)')
    expect(skel.out).toContain('not graded yet')
    expect(skel.err).toContain('[12/12] x86_64 swiotlb=force iommu=off') // progress
    expect(good.code, good.out).toBe(0)
    expect(good.out).toContain('Score: 100/100 (full score)')
  })

  it('a missing sync names the rule and the line', async () => {
    const dir = join(tmp, 'hello-nosync')
    cpSync('labs/copy-engine-hello/solution', dir, { recursive: true })
    const file = join(dir, 'ce_hello.ts')
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^ *dma_sync_single_for_cpu\(dev, hd\.result_dma.*\n/m, ''))
    const r = await dmalab('lab', 'check', 'copy-engine-hello', dir)
    expect(r.code).toBe(1)
    expect(r.out).toContain(`cpu-access-device-owned at ce_hello.ts:${lineOf(file, 'memcpy(out, hd.result, len)')} (in hello_fetch)`)
    expect(r.out).toContain('rule: the CPU touched a streaming buffer the device owns')
    expect(scoreOf(r)).toBeLessThan(100)
  })
})

describe('fix-the-bugs', () => {
  /** Each planted bug: its report kind, the line that breaks the rule, and its fix. */
  const bugs: { kind: string; line: string; fix: (s: string) => string }[] = [
    {
      kind: 'cpu-access-device-owned',
      line: 'memcpy(out, fd.result, len)',
      fix: (s) => s.replace('dma_sync_single_for_device,', 'dma_sync_single_for_cpu, dma_sync_single_for_device,').replace('  memcpy(out, fd.result, len)', '  dma_sync_single_for_cpu(dev, fd.result_dma, len, DMA_FROM_DEVICE)\n  memcpy(out, fd.result, len)'),
    },
    {
      kind: 'map-error-unchecked',
      line: 'const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)',
      fix: (s) => s.replace('  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)\n  const d', '  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)\n  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM\n  const d'),
    },
    {
      kind: 'device-write-to-device-mapping',
      line: 'const d = dma_map_single(dev, dst, len, DMA_TO_DEVICE)',
      fix: (s) => s.replace('const d = dma_map_single(dev, dst, len, DMA_TO_DEVICE)', 'const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE)').replace('dma_unmap_single(dev, d, len, DMA_TO_DEVICE)', 'dma_unmap_single(dev, d, len, DMA_FROM_DEVICE)'),
    },
    {
      kind: 'missing-barrier',
      line: 'writel_relaxed(CE_CTRL_START',
      fix: (s) => s.replace('  free_irq,', '  dma_wmb, free_irq,').replace('  writel_relaxed(lower_32_bits(fd.desc_dma)', '  dma_wmb()\n  writel_relaxed(lower_32_bits(fd.desc_dma)'),
    },
    {
      kind: 'cacheline-shared',
      line: 'mem_write32(fd.stats, 0',
      fix: (s) => s.replace('const FIX_CTX_RESULT = 8', 'const FIX_CTX_RESULT = 128 // result on cache lines of its own'),
    },
  ]

  it('the skeleton: each planted bug is reported with its rule, its line and its hint; each fix raises the score to 100', { timeout: 180_000 }, async () => {
    const dir = join(tmp, 'fix')
    expect((await dmalab('lab', 'start', 'fix-the-bugs', dir)).code).toBe(0)
    const file = join(dir, 'ce_fix.ts')
    const skel = await dmalab('lab', 'check', 'fix-the-bugs', dir)
    expect(skel.code).toBe(1)
    for (const b of bugs) expect(skel.out, b.kind).toContain(`${b.kind} at ce_fix.ts:${lineOf(file, b.line)} (in `)
    for (const rule of ['dma_sync_single_for_cpu()', 'dma_mapping_error()', 'the direction the device moves its bytes', 'before the doorbell', 'cache lines of its own']) expect(skel.out).toMatch(new RegExp(`FAIL +0/ 14 +rule: .*${rule.replace(/[()]/g, '\\$&')}`))
    for (let h = 2; h <= 6; h++) expect(skel.out).toContain(`(hint ${h})`)
    let last = scoreOf(skel)
    for (const b of bugs) {
      writeFileSync(file, b.fix(readFileSync(file, 'utf8')))
      const r = await dmalab('lab', 'check', 'fix-the-bugs', dir)
      const score = scoreOf(r)
      expect(score, `after fixing ${b.kind}:\n${r.out}`).toBeGreaterThan(last)
      expect(r.out).not.toContain(`${b.kind} at`)
      last = score
    }
    expect(last).toBe(100)
  })

  it('the reference solution copied outside the repo passes with 100', async () => {
    const dir = join(tmp, 'fix-solution')
    cpSync('labs/fix-the-bugs/solution', dir, { recursive: true })
    const r = await dmalab('lab', 'check', 'fix-the-bugs', dir)
    expect(r.code, r.out).toBe(0)
    expect(r.out).toContain('Score: 100/100 (full score)')
  })
})

describe('nic-tx', () => {
  it('the scaffolded skeleton drops every frame and scores 0; the solution copied outside the repo passes with 100', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'nic')
    expect((await dmalab('lab', 'start', 'nic-tx', dir)).code).toBe(0)
    const sol = join(tmp, 'nic-solution')
    cpSync('labs/nic-tx/solution', sol, { recursive: true })
    const [skel, good] = await Promise.all([dmalab('lab', 'check', 'nic-tx', dir), dmalab('lab', 'check', 'nic-tx', sol)])
    expect(skel.code).toBe(1)
    expect(scoreOf(skel)).toBe(0)
    expect(skel.out).toContain('100 frames sent, 0 echoed intact')
    expect(good.code, good.out).toBe(0)
    expect(good.out).toContain('Score: 100/100 (full score)')
  })

  it('a tail moved with writel_relaxed() and no dma_wmb() is a missing-barrier at that line', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'nic-relaxed')
    cpSync('labs/nic-tx/solution', dir, { recursive: true })
    const file = join(dir, 'tnic_tx.ts')
    const src = readFileSync(file, 'utf8')
      .replace(/^ *dma_wmb\(\)\n/m, '')
      .replace('  writel(next, r.tail)', '  writel_relaxed(next, r.tail)')
      .replace('smp_mb, writel,', 'smp_mb, writel, writel_relaxed,')
    writeFileSync(file, src)
    const r = await dmalab('lab', 'check', 'nic-tx', dir)
    expect(r.code).toBe(1)
    expect(r.out).toContain(`missing-barrier at tnic_tx.ts:${lineOf(file, 'writel_relaxed(next, r.tail)')} (in `)
    expect(r.out).toMatch(/FAIL +0\/ 15 +rule: barriers/)
  })
})
