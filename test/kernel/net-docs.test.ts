/**
 * docs/net.md quotes its example verbatim and shows what it prints; the example holds on every
 * architecture and several seeds.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { ARCHES } from '../helpers/matrix.js'
import * as ping from '../../docs/examples/net-ping.js'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const markdown = read('docs/net.md')

describe('docs/net.md', () => {
  it('quotes docs/examples/net-ping.ts verbatim', () => {
    const m = /<!-- example: docs\/examples\/net-ping\.ts -->\s*\n```ts\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    expect(m![1]).toBe(read('docs/examples/net-ping.ts').trimEnd())
  })

  it('shows what `npx tsx docs/examples/run-net.ts net-ping` prints', async () => {
    const m = /```text\n\$ npx tsx docs\/examples\/run-net\.ts net-ping\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'docs/examples/run-net.ts', 'net-ping'], { cwd: root, env: { ...process.env, DMALAB_LOG: 'silent' } })
    expect(stdout.trimEnd()).toBe(m![1])
  })

  it.each(ARCHES.flatMap((arch) => [1, 2, 3].map((seed) => ({ arch, seed }))))('the example works on $arch seed $seed', async ({ arch, seed }) => {
    const out = await ping.run({ arch, seed })
    expect(out.reports).toEqual([])
    expect(out.lines).toContain('3 packets transmitted, 3 received')
    expect(out.lines.at(-1)).toMatch(/sk_buffs in use: 0$/)
  })
})
