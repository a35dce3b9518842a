// Lab audio-periods: the skeleton scaffolded by `start` cannot prepare the stream and scores 0;
// the solution copied outside the repository passes with 100; IOC on every BDL entry is named by
// the entry, its bytes and its period, with the extra interrupts it causes; a pointer without the
// LPIB fallback fails on the controller whose position buffer is never written.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { dmalab, scoreOf } from './lab-cli.js'

const tmp = mkdtempSync(join(tmpdir(), 'dmalab-audio-periods-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** The solution copied to `name` with `from` replaced by `to` in hda_periods.ts. */
function variant(name: string, from: RegExp, to: string): string {
  const dir = join(tmp, name)
  cpSync('labs/audio-periods/solution', dir, { recursive: true })
  const file = join(dir, 'hda_periods.ts')
  const src = readFileSync(file, 'utf8')
  const bad = src.replace(from, to)
  expect(bad, `${name}: the replacement applies`).not.toBe(src)
  writeFileSync(file, bad)
  return dir
}

describe('audio-periods', () => {
  it('the scaffolded skeleton scores 0 with the TODO named; the solution copied outside the repo passes with 100', { timeout: 120_000 }, async () => {
    const dir = join(tmp, 'skel')
    const start = await dmalab('lab', 'start', 'audio-periods', dir)
    expect(start.code, start.err).toBe(0)
    expect(readFileSync(join(dir, 'hda_periods.ts'), 'utf8')).toContain('TODO(3)')
    const sol = join(tmp, 'solution')
    cpSync('labs/audio-periods/solution', sol, { recursive: true })
    const [skel, good, list] = await Promise.all([dmalab('lab', 'check', 'audio-periods', dir), dmalab('lab', 'check', 'audio-periods', sol), dmalab('lab', 'list')])
    expect(skel.code).toBe(1)
    expect(scoreOf(skel)).toBe(0)
    expect(skel.out).toContain('lab_setup_periods returned -38 (-ENOSYS: a TODO is not done yet)')
    expect(skel.out).toMatch(/FAIL +0\/ 25 +rule: the controller takes the BDL/)
    expect(skel.out).toContain('not graded yet')
    expect(good.code, good.out).toBe(0)
    expect(good.out).toContain('Score: 100/100 (full score)')
    expect(list.out).toMatch(/audio-periods +Audio periods: .*\(5 hints, 100 points\)/)
  })

  it('IOC on every entry: the entry that is not the last piece of its period is named, with the interrupts it adds', { timeout: 120_000 }, async () => {
    const dir = variant('ioc-every', /e\.ioc = size === 0 \? BDL_IOC : 0.*/, 'e.ioc = BDL_IOC')
    const r = await dmalab('lab', 'check', 'audio-periods', dir)
    expect(r.code).toBe(1)
    expect(scoreOf(r)).toBe(0)
    // The 7680-byte ring of 1920-byte periods: period 2 (bytes 3840-5760) crosses 4096.
    expect(r.out).toContain('BDL entry 2 (bytes 3840-4096) has IOC but is not the last piece of period 2: an interrupt in the middle of a period')
    expect(r.out).toContain('25 interrupts for 20 periods')
  })

  it('no LPIB fallback: the controller without a position buffer stalls; the other plays bit-exact', { timeout: 120_000 }, async () => {
    const dir = variant('no-lpib', /s\.use_lpib \? readl\(ptr_add\(s\.sd_addr, HDA_REG_SD_LPIB\)\) : /, '')
    const r = await dmalab('lab', 'check', 'audio-periods', dir)
    expect(r.code).toBe(1)
    expect(r.out).toContain('hda0: bit-exact, 20 interrupts for 20 periods')
    expect(r.out).toMatch(/hda1 \(no position buffer\): play failed: -5 after \d+ frames/)
    expect(scoreOf(r)).toBe(0)
  })
})
