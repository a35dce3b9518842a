// Lab nic-rx: the skeleton scaffolded by `start` receives nothing and fails `check` with feedback;
// the solution copied outside the repository passes with 100; a clean_rx without dma_rmb() after
// DD is a missing-barrier at the load of the length, on the weakly ordered platforms.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { dmalab, lineOf, scoreOf } from './lab-cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'dmalab-nic-rx-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

describe('nic-rx', () => {
  it('the scaffolded skeleton receives nothing and scores 0; the solution copied outside the repo passes with 100', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'skel')
    const start = await dmalab('lab', 'start', 'nic-rx', dir)
    expect(start.code, start.err).toBe(0)
    const file = readFileSync(join(dir, 'tnic_rx.ts'), 'utf8')
    expect(file).toContain('TODO(1)')
    expect(file).not.toContain('dma_rmb()')
    const sol = join(tmp, 'solution')
    cpSync('labs/nic-rx/solution', sol, { recursive: true })
    const [skel, good, list] = await Promise.all([dmalab('lab', 'check', 'nic-rx', dir), dmalab('lab', 'check', 'nic-rx', sol), dmalab('lab', 'list')])
    expect(skel.code).toBe(1)
    expect(scoreOf(skel)).toBe(0)
    expect(skel.out).toContain('200 frames sent, 0 received intact')
    expect(skel.out).toMatch(/FAIL +0\/ 15 +rule: barriers: dma_rmb\(\) after DD/)
    expect(skel.out).toContain('not graded yet')
    expect(good.code, good.out).toBe(0)
    expect(good.out).toContain('Score: 100/100 (full score)')
    expect(list.out).toMatch(/nic-rx +NIC RX: .*\(5 hints, 100 points\)/)
  })

  it('no dma_rmb() after DD is a missing-barrier at the load of the length, with the rule and the hint', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'normb')
    cpSync('labs/nic-rx/solution', dir, { recursive: true })
    const file = join(dir, 'tnic_rx.ts')
    const src = readFileSync(file, 'utf8')
    const bad = src.replace(/^ *dma_rmb\(\) \/\/ the length.*\n/m, '')
    expect(bad).not.toBe(src)
    writeFileSync(file, bad)
    const r = await dmalab('lab', 'check', 'nic-rx', dir)
    expect(r.code).toBe(1)
    expect(r.out).toContain(`missing-barrier at tnic_rx.ts:${lineOf(file, 'const length = desc.length')} (in `)
    expect(r.out).toMatch(/FAIL +0\/ 15 +rule: barriers/)
    expect(r.out).toContain('DD is written last: read the length only after dma_rmb() (hint 3)')
    // Where loads are reordered (devices/machine/load-order.ts) some frame's length is read from
    // before the NIC's write-back; x86_64 keeps loads in order.
    expect(r.out).toMatch(/FAIL +13\/ 20 +the data is right on every platform \(8\/12\)/)
    expect(r.out).toMatch(/arm64 swiotlb=force iommu=strict: 200 frames sent, .*[1-9]\d* corrupt/)
    expect(r.out).not.toMatch(/x86_64 swiotlb=\w+ iommu=\w+: \d+ frames sent/)
    expect(scoreOf(r)).toBe(78)
  })
})
