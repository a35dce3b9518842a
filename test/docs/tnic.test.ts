/**
 * docs/drivers/tnic.md, the walkthrough of the tnic driver, says what the driver and its example do.
 *
 * - it quotes every docs/examples/tnic-*.ts file verbatim, and nothing else, and shows what
 *   `npx tsx docs/examples/run-tnic.ts <example>` prints (run in a child process, as a reader would);
 * - the example's story (hang, dump, NETDEV WATCHDOG, reset, traffic again, no report) holds on every
 *   architecture, several seeds, swiotlb=force and IOMMU off, not only on the platform shown;
 * - every driver excerpt (`<!-- driver: drivers/net/... -->`) is in that file as quoted, every
 *   `tnic_*` name it mentions exists in the driver, every relative link resolves, and the bug table
 *   links every known-bad variant under test/fixtures/tnic-bad/;
 * - README.md and the datasheet link to it.
 */

import { existsSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { BootOptions } from '../../kernel/index.js'
import { ARCHES } from '../helpers/matrix.js'
import { describeExamplesAndOutputs, docPage, read, root } from '../helpers/doc-page.js'
import * as hang from '../../docs/examples/tnic-hang.js'

const page = docPage('docs/drivers/tnic.md', 'tnic')
const { markdown, doc: DOC } = page
const quoted = (tag: string) => page.quoted(tag)

describeExamplesAndOutputs(page, 'run-tnic.ts')

describe('the TX hang example holds on every platform', () => {
  const platforms: (BootOptions & { label: string })[] = [
    ...ARCHES.flatMap((arch) => [1, 2].map((seed) => ({ arch, seed, label: `${arch} seed=${seed}` }))),
    { arch: 'arm64', swiotlb: 'force', seed: 3, label: 'arm64 swiotlb=force seed=3' },
    { arch: 'x86_64', iommu: 'off', seed: 3, label: 'x86_64 iommu=off seed=3' },
    { arch: 'riscv64', swiotlb: 'force', iommu: 'off', seed: 4, label: 'riscv64 swiotlb=force iommu=off seed=4' },
  ]

  it.each(platforms)('$label', async ({ label: _label, ...options }) => {
    const { lines, reports } = await hang.run(options)
    expect(reports).toEqual([])
    const text = (re: RegExp) => lines.filter((l) => re.test(l))
    expect(text(/--- the NIC: TX ring hung: descriptor read at 0x[0-9a-f]+ failed$/)).toHaveLength(1)
    // Found at 6, 8 and 10 s; one dump printed; the core's timeout at 11 s, then the reset.
    const detected = text(/Detected Tx Unit Hang: TDH <0> TDT <3> next_to_use <3> next_to_clean <0>$/)
    expect(detected.map((l) => Math.floor(Number(l.slice(1, 13))))).toEqual([6, 8, 10])
    expect(text(/Tx Ring Summary: TDH 0 TDT 3 NTU 3 NTC 0$/)).toHaveLength(1)
    expect(text(/ T \[0x00[0-2]\] [0-9a-f]{16} 0b000072 00000000 0072 {3}[0-2] 2( NTC)?$/)).toHaveLength(3)
    expect(text(/Rx Ring Summary: RDH 0 RDT 255 NTU 255 NTC 0$/)).toHaveLength(1)
    expect(text(/NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out 5004 ms$/)).toHaveLength(1)
    expect(text(/Reset adapter$/)).toHaveLength(1)
    expect(text(/NIC Link is Up/)).toHaveLength(2)
    expect(lines.slice(-2)).toEqual(['--- TX ring hung: false; 1 TX timeout', '--- 5 frames sent after the reset, the peer received 5 (in all)'])
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

describe('docs/drivers/tnic.md quotes the driver as it is', () => {
  const excerpts = [...quoted('driver')].flatMap(([path, blocks]) => blocks.map((b, n) => ({ path, block: b, n })))

  it('has driver excerpts, all from drivers/net/', () => {
    expect(excerpts.length).toBeGreaterThan(10)
    for (const e of excerpts) expect(e.path).toMatch(/^drivers\/net\/tnic[a-z_]*\.ts$/)
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

  it('every tnic_* name it mentions exists in the driver', () => {
    const source = ['tnic.ts', 'tnic_txrx.ts', 'tnic_defs.ts', 'tnic_hw.ts'].map((f) => read(`drivers/net/${f}`)).join('\n')
    const names = new Set([...markdown.matchAll(/`[^`\n]*`/g)].flatMap((m) => [...m[0].matchAll(/\btnic_[a-z_0-9]+/g)].map((n) => n[0])))
    expect(names.size).toBeGreaterThan(20)
    for (const name of names) expect(source, name).toMatch(new RegExp(`\\b${name}\\b`))
  })
})

describe('docs/drivers/tnic.md links', () => {
  const links = [...markdown.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))

  it.each(links)('%s resolves', (link) => {
    expect(existsSync(new URL(link, new URL(DOC, root)))).toBe(true)
  })

  it('the bug table links every known-bad variant of test/fixtures/tnic-bad/', () => {
    const variants = readdirSync(new URL('test/fixtures/tnic-bad/', root)).filter((f) => f.endsWith('.ts'))
    expect(variants.length).toBeGreaterThanOrEqual(13)
    for (const v of variants) expect(links, v).toContain(`../../test/fixtures/tnic-bad/${v}`)
  })

  it('README.md and the datasheet link to it', () => {
    expect(read('README.md')).toContain('(docs/drivers/tnic.md)')
    expect(read('docs/devices/tnic.md')).toContain('(../drivers/tnic.md)')
  })
})
