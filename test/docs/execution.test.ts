/**
 * docs/execution-model.md says what its examples do, and they do it.
 *
 * - it quotes every docs/examples/execution-*.ts file verbatim, and nothing else;
 * - every output it shows after `$ npx tsx docs/examples/run-execution.ts ...` is what that
 *   command prints (run in a child process, as a reader would run it);
 * - its cost table is DEFAULT_COSTS, and says which costs the kernel charges;
 * - each example's outcome holds on every architecture and several seeds, not only on the one
 *   whose output is shown.
 */

import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DEFAULT_COSTS, type BootOptions, type Report } from '../../kernel/index.js'
import { ARCHES } from '../helpers/matrix.js'
import * as contexts from '../../docs/examples/execution-contexts.js'
import * as costs from '../../docs/examples/execution-costs.js'
import * as deadlock from '../../docs/examples/execution-deadlock.js'
import * as interrupts from '../../docs/examples/execution-interrupts.js'
import * as lockRace from '../../docs/examples/execution-lock-race.js'
import * as oops from '../../docs/examples/execution-oops.js'
import * as ordering from '../../docs/examples/execution-ordering.js'
import * as pciDriver from '../../docs/examples/execution-pci-driver.js'
import * as sharedIrq from '../../docs/examples/execution-shared-irq.js'
import * as twoSystems from '../../docs/examples/execution-two-systems.js'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const kinds = (reports: readonly Report[]) => reports.map((r) => r.kind)
const markdown = read('docs/execution-model.md')
const SEEDS = [1, 2, 3] as const
const MATRIX = ARCHES.flatMap((arch) => SEEDS.map((seed) => ({ arch, seed, label: `${arch} seed=${seed}` })))
const quiet = (o: BootOptions): BootOptions => ({ ...o, log: 'silent' })

describe('docs/execution-model.md quotes its examples verbatim', () => {
  const quoted = new Map<string, string[]>()
  for (const m of markdown.matchAll(/<!-- example: (\S+) -->\s*\n```ts\n([\s\S]*?)\n```\n/g)) {
    quoted.set(m[1]!, [...(quoted.get(m[1]!) ?? []), m[2]!])
  }
  const files = readdirSync(new URL('docs/examples/', root)).filter((f) => f.startsWith('execution-') && f.endsWith('.ts'))

  it.each(files)('quotes docs/examples/%s', (file) => {
    const quotes = quoted.get(`docs/examples/${file}`)
    expect(quotes, `no <!-- example: docs/examples/${file} --> block`).toBeDefined()
    for (const q of quotes!) expect(q).toBe(read(`docs/examples/${file}`).trimEnd())
  })

  it('quotes nothing that is not an example file', () => {
    for (const path of quoted.keys()) expect(files).toContain(path.replace('docs/examples/', ''))
  })
})

/** The `$ npx tsx docs/examples/run-execution.ts ...` blocks: the arguments and the output shown. */
const shown = [...markdown.matchAll(/```text\n\$ npx tsx docs\/examples\/run-execution\.ts ([^\n]*)\n([\s\S]*?)\n```\n/g)].map(
  (m) => ({ command: m[1]!, output: m[2]! }),
)

/** Shell-like splitting of the arguments: words, and '...' quoted JSON. */
const argv = (command: string) => [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)

describe('docs/execution-model.md shows what the examples print', () => {
  it('shows the output of every example', () => {
    const names = new Set(shown.map((s) => argv(s.command)[0]))
    const files = readdirSync(new URL('docs/examples/', root)).filter((f) => f.startsWith('execution-') && f.endsWith('.ts'))
    expect([...names].sort()).toEqual(files.map((f) => f.replace(/\.ts$/, '')).sort())
  })

  it.concurrent.each(shown.map((s) => [s.command, s.output] as const))('npx tsx docs/examples/run-execution.ts %s', async (command, output) => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'docs/examples/run-execution.ts', ...argv(command)], {
      cwd: root,
      env: { ...process.env, DMALAB_LOG: 'silent' },
    })
    expect(stdout.trimEnd()).toBe(output)
  })
})

describe('docs/execution-model.md: the cost table', () => {
  const rows = [...markdown.matchAll(/^\| `(\w+)` \| ([\d.]+) (?:ns|bytes\/ns) \| ([^\n]*) \|$/gm)]
  const kernel = ['kernel/io.ts', 'kernel/irq/manage.ts', 'kernel/system.ts', 'kernel/sched/scheduler.ts', 'kernel/sched/time.ts', 'kernel/mm/memory.ts', 'kernel/dma/core.ts']
    .map(read)
    .join('\n')

  it('lists every field of DEFAULT_COSTS with its default', () => {
    expect(Object.fromEntries(rows.map((r) => [r[1]!, Number(r[2])]))).toEqual({ ...DEFAULT_COSTS })
  })

  it.each(Object.keys(DEFAULT_COSTS))('says whether %s is charged', (key) => {
    const row = rows.find((r) => r[1] === key)!
    expect(row[3]!.includes('Not charged yet')).toBe(!kernel.includes(`costs.${key}`))
  })
})

describe.each(MATRIX)('execution examples on $label', ({ arch, seed }) => {
  const o = quiet({ arch, seed })

  it('an interrupt arrives between two steps, or after local_irq_restore when disabled', async () => {
    const on = (await interrupts.run(o)).lines.map((l) => l.split(' ')[0])
    const h = on.indexOf('handler')
    expect(h).toBeGreaterThan(on.indexOf('step'))
    expect(h).toBeLessThan(on.indexOf('task'))
    const off = (await interrupts.run(o, true)).lines.map((l) => l.replace(/ +at .*/, ''))
    expect(off).toEqual(['step 1 done', 'step 2 done', 'step 3 done', 'handler', 'task ends'])
  })

  it('every context in order; only the hard-IRQ handler runs with interrupts disabled, once', async () => {
    const out = await contexts.run(o)
    expect(out.lines.map((l) => l.slice(0, 28).trim())).toEqual([
      'probe (process)',
      'hard-IRQ handler (atomic)',
      'threaded handler (process)',
      'threaded handler, acked',
      'timer callback (softirq)',
      'work item (process)',
      'work item, after msleep(1)',
    ])
    for (const l of out.lines) expect(l.endsWith(`irqs_disabled()=${l.startsWith('hard-IRQ')}`)).toBe(true)
    expect(out.reports).toEqual([])
  })

  it('two systems: separate clocks and allocators, interleaved steps', async () => {
    const out = await twoSystems.run(o)
    const ms = out.lines.slice(0, 6).map((l) => Math.floor(Number(/at ([\d.]+) ms/.exec(l)![1])))
    expect(ms).toEqual([3, 5, 6, 10, 9, 15])
    const addr = out.lines.slice(0, 6).map((l) => l.split('-> ')[1])
    expect([addr[0], addr[2], addr[4]]).toEqual([addr[1], addr[3], addr[5]])
  })

  it('costs: each access costs what the cost model says', async () => {
    const ns = (lines: string[], what: string) => Number(/ (\d+) ns$/.exec(lines.find((l) => l.startsWith(what))!)![1])
    const def = await costs.run(o)
    expect(ns(def.lines, 'readl')).toBeGreaterThanOrEqual(DEFAULT_COSTS.mmioReadNs)
    const exact = await costs.run({ ...o, costs: { kernelCallNs: 0, mmioReadNs: 300 } })
    expect([ns(exact.lines, 'readl'), ns(exact.lines, 'writel'), ns(exact.lines, 'udelay'), ns(exact.lines, 'msleep')]).toEqual([
      300,
      DEFAULT_COSTS.mmioWriteNs,
      10_000,
      1_000_000,
    ])
  })

  it('an oops stops its task, not the system', async () => {
    const out = await oops.run(o)
    expect(out.lines[1]).toBe('the task caught the oops and goes on...')
    expect(out.lines[2]).toMatch(/^sys\.run\(\) rejected: KernelOops: kernel BUG at/)
    expect(out.lines).not.toContain('never reached')
    expect(out.lines.at(-1)).toBe('the system still runs tasks: true')
    expect(kinds(out.reports)).toEqual(['oops', 'oops'])
  })

  it('an ABBA deadlock rejects both sys.run() calls', async () => {
    const out = await deadlock.run(o)
    expect(out.lines).toHaveLength(2)
    for (const l of out.lines) expect(l).toMatch(/^rejected: sys\.run: task \w+\/\d+ is blocked and nothing is left that could wake it/)
  })

  it('shared lines: IRQ_NONE from the other device, Linux return codes', async () => {
    const out = await sharedIrq.run(o)
    expect(out.lines.filter((l) => !l.startsWith('  kernel log'))).toEqual([
      'irqdev0 is on line 16, irqdev4 on line 16',
      'irq 16: handler of irqdev0 returns IRQ_NONE',
      'irq 16: handler of irqdev4 returns IRQ_HANDLED',
      'request_irq(line, h, IRQF_SHARED, "x", null)   -> -EINVAL',
      'request_irq(line, h, 0, "x", dev)              -> -EBUSY',
      'free_irq(line, wrong dev_id)                   -> null',
      'free_irq(line, irqdev4 dev_id)                 -> shared',
    ])
  })

  it('the PCI driver: clean unbind; leaks reported; no MSI-X without bus mastering', async () => {
    const clean = await pciDriver.run(o)
    expect(clean.lines).toEqual(['probe: MSI-X, irq 1024', 'remove: 1 interrupt(s) handled'])
    expect(clean.reports).toEqual([])
    const leaky = await pciDriver.run(o, 'leaky')
    expect(kinds(leaky.reports)).toEqual(['leak', 'leak', 'leak'])
    const noMaster = await pciDriver.run(o, 'no-master')
    expect(noMaster.lines[1]).toBe('remove: 0 interrupt(s) handled')
    expect(noMaster.reports).toEqual([])
  })
})

describe.each(SEEDS.flatMap((seed) => (['strict', 'off'] as const).map((iommu) => ({ seed, iommu }))))(
  'the ordering table on seed $seed, iommu $iommu',
  ({ seed, iommu }) => {
    it('has the outcomes docs/execution-model.md §11 and §12 describe', async () => {
      const out = await ordering.run(quiet({ seed, iommu }))
      const table = Object.fromEntries(out.lines.slice(1).map((l) => [l.slice(0, 30).trim(), l.slice(30).split(/ {2,}/).map((c) => c.trim())]))
      expect(table).toMatchObject({
        'writel_relaxed doorbell': ['STALE, reported', 'STALE, reported', 'ok, silent'],
        'dma_wmb + writel_relaxed': ['ok, silent', 'ok, silent', 'ok, silent'],
        'writel doorbell': ['ok, silent', 'ok, silent', 'ok, silent'],
        'OWN bits, device polls late': ['ok, reported', 'ok, reported', 'ok, reported'],
        'dma_wmb + OWN bits': ['ok, silent', 'ok, silent', 'ok, silent'],
        'DD bit + dma_rmb': ['ok, silent', 'ok, silent', 'ok, silent'],
      })
      // The data load after the DD bit without dma_rmb may be performed early on the weakly
      // ordered platforms (seed 3 does it, seeds 1 and 2 do not): always reported there.
      const dd = table['DD bit, no dma_rmb']!
      expect(dd[0]).toBe(seed === 3 ? 'STALE, reported' : 'ok, reported')
      expect(dd[1]).toBe(dd[0])
      expect(dd[2]).toBe('ok, silent')
      const early = table['OWN bits, device polls early']!
      expect(early[2]).toBe('ok, reported')
      // Stale data is always reported; on the weakly ordered platforms a correct poll is silent
      // only when the device found no OWN bit set yet.
      for (const cell of early.slice(0, 2)) expect(['STALE, reported', 'ok, silent', 'ok, reported']).toContain(cell)
    })
  },
)

describe('the ordering table with coherent: true', () => {
  it('coherent memory is cacheable: the data is always right, and the weakly ordered platforms still report', async () => {
    const out = await ordering.run(quiet({ coherent: true }))
    const cells = out.lines.slice(1).map((l) => l.slice(30).split(/ {2,}/).map((c) => c.trim()))
    for (const row of cells) for (const cell of row) expect(cell.startsWith('ok')).toBe(true)
    const reported = out.lines.slice(1).filter((l) => l.includes('reported')).map((l) => l.slice(0, 30).trim())
    expect(reported).toEqual(['writel_relaxed doorbell', 'OWN bits, device polls late', 'OWN bits, device polls early', 'DD bit, no dma_rmb'])
  })
})

describe('lock-inconsistent is deterministic; the corruption is not', () => {
  it('spin_lock without irqsave: reported on every seed, updates lost on some', async () => {
    const out = await lockRace.run(quiet({}))
    expect(out.lines).toHaveLength(8)
    for (const l of out.lines) expect(l).toMatch(/; reports: lock-inconsistent$/)
    const lost = out.lines.map((l) => Number(/: (\d+) update/.exec(l)![1]))
    expect(lost.some((n) => n > 0)).toBe(true)
  })

  it.each(ARCHES)('spin_lock_irqsave: nothing lost, nothing reported, on every seed (%s)', async (arch) => {
    const out = await lockRace.run(quiet({ arch }), true)
    for (const l of out.lines) expect(l).toMatch(/: 0 update\(s\) lost; reports: none$/)
  })
})
