/**
 * docs/drivers/nvme.md, the walkthrough of the nvme driver, says what the driver and its example do.
 *
 * - it quotes every docs/examples/nvme-*.ts file verbatim, and nothing else, and shows what
 *   `npx tsx docs/examples/run-nvme.ts <example>` prints (run in a child process, as a reader would);
 * - the example's story (a lost interrupt polled, then aborting, reset controller, the write resent,
 *   the data read back, no report) holds on every architecture, several seeds, swiotlb=force and
 *   IOMMU off, not only on the platform shown;
 * - every driver excerpt (`<!-- driver: drivers/nvme/... -->`) is in that file as quoted, every
 *   `nvme_*` name it mentions in code exists in the driver or is one of Linux's (listed below),
 *   every relative link resolves, and the queue picture is well-formed SVG;
 * - README.md and the datasheet link to it.
 */

import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { BootOptions } from '../../kernel/index.js'
import { ARCHES } from '../helpers/matrix.js'
import { describeExamplesAndOutputs, docPage, read, root } from '../helpers/doc-page.js'
import * as timeout from '../../docs/examples/nvme-timeout.js'

const page = docPage('docs/drivers/nvme.md', 'nvme')
const { markdown, doc: DOC } = page
const quoted = (tag: string) => page.quoted(tag)
/** Linux names the page mentions that the driver has no function or comment for. */
const LINUX_ONLY: readonly string[] = ['nvme_dev_disable', 'nvme_ns', 'nvme_poll_irqdisable']

describeExamplesAndOutputs(page, 'run-nvme.ts')

describe('the timeout example holds on every platform', () => {
  const platforms: (BootOptions & { label: string })[] = [
    ...ARCHES.flatMap((arch) => [1, 2].map((seed) => ({ arch, seed, label: `${arch} seed=${seed}` }))),
    { arch: 'arm64', swiotlb: 'force', seed: 3, label: 'arm64 swiotlb=force seed=3' },
    { arch: 'x86_64', iommu: 'off', seed: 3, label: 'x86_64 iommu=off seed=3' },
    { arch: 'riscv64', swiotlb: 'force', iommu: 'off', seed: 4, label: 'riscv64 swiotlb=force iommu=off seed=4' },
  ]

  it.each(platforms)('$label', async ({ label: _label, ...options }) => {
    const { lines, reports } = await timeout.run(options)
    expect(reports).toEqual([])
    const at = (re: RegExp) => lines.filter((l) => re.test(l)).map((l) => Math.floor(Number(l.slice(1, 13))))
    // One timeout period (30 s) each: polled at 30 s; the held write aborted at 60 s (Abort
    // status 0: it was aborted) and resent; the next one's Abort failed at 90 s, reset at 120 s.
    expect(at(/ I\/O tag \d+ QID 1 timeout, completion polled$/)).toEqual([30])
    expect(at(/ I\/O tag \d+ \([0-9a-f]{4}\) QID 1 timeout, aborting$/)).toEqual([60, 90])
    expect(lines.filter((l) => / Abort status: /.test(l)).map((l) => l.slice(15))).toEqual(['nvme0: Abort status: 0x0', 'nvme0: Abort status: 0x6'])
    expect(at(/ I\/O tag \d+ QID 1 timeout, reset controller$/)).toEqual([120])
    expect(at(/ resetting controller$/)).toEqual([120])
    expect(lines.filter((l) => l.startsWith('---'))).toEqual([
      '--- lost interrupt: read back identical; controller resets: 0',
      '--- the write took 30.0 s; controller resets: 0',
      '--- read back 8192 bytes: identical',
      '--- the write took 60.0 s; controller resets: 1',
      '--- read back 4096 bytes: identical',
      '--- timeouts counted by the block layer: 4',
    ])
  })
})

/** The lines of a driver excerpt, `// ...` lines marking gaps, each piece dedented. */
function pieces(excerpt: string): string[][] {
  const out: string[][] = [[]]
  for (const line of excerpt.split('\n')) {
    if (line.trim() === '// ...') out.push([])
    else out.at(-1)!.push(line)
  }
  return out.filter((p) => p.length > 0)
}

function dedent(lines: readonly string[]): string[] {
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length))
  return lines.map((l) => l.slice(indent).trimEnd())
}

/** Where the piece is in the file's lines (its lines, dedented together, equal), from `from` on; -1 if not. */
function find(file: readonly string[], piece: readonly string[], from: number): number {
  const want = dedent(piece).join('\n')
  for (let at = from; at + piece.length <= file.length; at++) {
    if (file[at]!.trim() !== piece[0]!.trim()) continue
    if (dedent(file.slice(at, at + piece.length)).join('\n') === want) return at
  }
  return -1
}

describe('docs/drivers/nvme.md quotes the driver as it is', () => {
  const excerpts = [...quoted('driver')].flatMap(([path, blocks]) => blocks.map((b, n) => ({ path, block: b, n })))

  it('has driver excerpts, all from drivers/nvme/', () => {
    expect(excerpts.length).toBeGreaterThan(10)
    for (const e of excerpts) expect(e.path).toMatch(/^drivers\/nvme\/nvme[a-z_]*\.ts$/)
  })

  it.each(excerpts.map((e) => [`${e.path} #${e.n + 1}`, e] as const))('%s', (_name, e) => {
    const file = read(e.path).split('\n')
    let from = 0
    for (const piece of pieces(e.block)) {
      const at = find(file, piece, from)
      expect(at, `not in ${e.path}:\n${piece.join('\n')}`).toBeGreaterThanOrEqual(0)
      from = at + piece.length
    }
  })

  it('every nvme_* name it mentions exists in the driver', () => {
    const source = ['nvme.ts', 'nvme_io.ts', 'nvme_defs.ts', 'nvme_hw.ts'].map((f) => read(`drivers/nvme/${f}`)).join('\n')
    const names = new Set([...markdown.matchAll(/`[^`\n]*`/g)].flatMap((m) => [...m[0].matchAll(/\bnvme_[a-z_0-9]+/g)].map((n) => n[0])))
    expect(names.size).toBeGreaterThan(20)
    for (const name of names) if (!LINUX_ONLY.includes(name)) expect(source, name).toMatch(new RegExp(`\\b${name}\\b`))
  })
})

describe('docs/drivers/nvme.md links', () => {
  const links = [...markdown.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))

  it.each(links)('%s resolves', (link) => {
    expect(existsSync(new URL(link, new URL(DOC, root)))).toBe(true)
  })

  it('the queue picture is well-formed SVG', () => {
    const svg = read('docs/drivers/nvme-queues.svg')
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]*>/)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
    expect(markdown).toContain('](nvme-queues.svg)')
  })

  it('README.md and the datasheet link to it', () => {
    expect(read('README.md')).toContain('(docs/drivers/nvme.md)')
    expect(read('docs/devices/nvme.md')).toContain('(../drivers/nvme.md)')
  })
})
