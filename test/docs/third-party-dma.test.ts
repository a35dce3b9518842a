/**
 * docs/tutorial/third-party-dma.md says what its example does, and the numbers it shows are what
 * the example prints.
 *
 * - it quotes docs/examples/third-party-dma-*.ts verbatim and shows exactly what
 *   `npx tsx docs/examples/run-third-party-dma.ts <example>` prints (test/helpers/doc-page.ts);
 * - the numbers its prose quotes appear in that output;
 * - the measurement holds on every architecture: third-party DMA stalls a busy CPU in single,
 *   demand and block mode and not with a transparent bus or a bus master.
 */
import { describe, expect, it } from 'vitest'
import { docPage, describeExamplesAndOutputs } from '../helpers/doc-page.js'
import { run } from '../../docs/examples/third-party-dma-stall.js'
import { ARCHES } from '../helpers/matrix.js'

const page = docPage('docs/tutorial/third-party-dma.md', 'third-party-dma')
describeExamplesAndOutputs(page, 'run-third-party-dma.ts')

describe('docs/tutorial/third-party-dma.md: the prose quotes the measured numbers', () => {
  it('every figure in "Reading the table" is in the output block', () => {
    const out = /```text\n\$ npx tsx docs\/examples\/run-third-party-dma\.ts third-party-dma-stall\n([\s\S]*?)\n```/.exec(page.markdown)![1]!
    const prose = page.markdown.slice(page.markdown.indexOf('Reading the table'))
    const line = (row: string) => out.split('\n').find((l) => l.startsWith(row))!
    const grants = (row: string) => /^\S+ \S+ +(\d+)/.exec(line(row))![1]!
    const ms = (row: string) => [...line(row).matchAll(/([\d.]+) ms/g)].map((m) => m[1]!)
    expect(prose).toContain(`${grants('8237 single')} grants`)
    expect(prose).toContain(`${ms('8237 single')[0]} ms of bus time, ${ms('8237 single')[1]} ms of it`)
    expect(prose).toContain(`${grants('8237 demand')} grants, ${ms('8237 demand')[0]} ms held, ${ms('8237 demand')[1]} ms`)
    expect(prose).toContain(`one grant, ${ms('8237 block')[0]} ms`)
    expect(prose).toContain(`${/underrun +(\d+) B/.exec(line('8237 transparent'))![1]} bytes of silence`)
    expect(out).toMatch(/copy engine \(master\) +1 +0\.003 ms +0\.000 ms/)
  })
})

describe('the measurement on every architecture', () => {
  it.each(ARCHES)('%s: stalls in single/demand/block, none transparent or bus master', async (arch) => {
    const { lines } = await run({ arch })
    const stall = (row: string) => Number([...lines.find((l) => l.startsWith(row))!.matchAll(/([\d.]+) ms/g)][1]![1])
    expect(stall('8237 single')).toBeGreaterThan(stall('8237 demand'))
    expect(stall('8237 demand')).toBeGreaterThan(0)
    expect(stall('8237 block')).toBeGreaterThan(0)
    expect(stall('8237 transparent')).toBe(0)
    expect(stall('copy engine')).toBe(0)
    expect(lines.filter((l) => l.includes('bit-exact') && !l.includes('not bit-exact'))).toHaveLength(3)
  })
})
