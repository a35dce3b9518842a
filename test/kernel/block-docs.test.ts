/**
 * docs/block.md quotes its example verbatim and shows what it prints; the example holds on every
 * architecture and several seeds.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ARCHES } from '../helpers/matrix.js'
import * as example from '../../docs/examples/block-null.js'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const markdown = read('docs/block.md')

describe('docs/block.md', () => {
  it('quotes docs/examples/block-null.ts verbatim', () => {
    const m = /<!-- example: docs\/examples\/block-null\.ts -->\s*\n```ts\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    expect(m![1]).toBe(read('docs/examples/block-null.ts').trimEnd())
  })

  it('shows what `npx tsx docs/examples/run-block.ts block-null` prints', async () => {
    const m = /```text\n\$ npx tsx docs\/examples\/run-block\.ts block-null\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'docs/examples/run-block.ts', 'block-null'], { cwd: root, env: { ...process.env, DMALAB_LOG: 'silent' } })
    expect(stdout.trimEnd()).toBe(m![1])
  })

  it.each(ARCHES.flatMap((arch) => [1, 2, 3].map((seed) => ({ arch, seed }))))('the example works on $arch seed $seed', async ({ arch, seed }) => {
    const out = await example.run({ arch, seed, swiotlb: seed === 2 ? 'force' : 'auto' })
    expect(out.reports).toEqual([])
    expect(out.lines).toContain('read back 8192 bytes: identical')
    expect(out.lines).toContain('after a power failure without a flush: lost')
    expect(out.lines).toContain('after a flush and a power failure: kept')
    expect(out.lines).toContain('verify: 1000 blocks checked, 0 wrong')
    expect(out.lines.at(-1)).toBe('disks after rmmod: 0, harness pages held: 0')
  })

  it('links to sections that exist', () => {
    const anchors = new Set([...markdown.matchAll(/^#+ (.*)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')))
    for (const [, a] of markdown.matchAll(/\]\(#([^)]+)\)/g)) expect(anchors.has(a!), a).toBe(true)
  })
})
