/**
 * The PIO-vs-DMA experiment's claims (issue 3, item 7), checked on every run: with the default
 * cost model the crossover falls between 1 KiB and 8 KiB and, at 1 MiB, DMA cuts the CPU's busy
 * time by at least 90 %. And docs/experiments/ shows what `npm run experiment:pio-vs-dma` prints.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { cpuSaving, crossover, report, svg, sweep, SIZES } from '../../bench/experiments/pio-vs-dma.js'

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')

describe('PIO against DMA with the default costs', () => {
  it('DMA completes sooner from 1-8 KiB on, costs the CPU less from 1-8 KiB on, and saves >= 90 % CPU at 1 MiB', async () => {
    const rows = await sweep([256, 512, 1024, 2048, 4096, 8192, 16384, 1 << 20], { reps: 4 })
    const latency = crossover(rows, 'latencyNs')
    const cpu = crossover(rows, 'cpuNs')
    expect(latency).not.toBeNull()
    expect(latency!).toBeGreaterThanOrEqual(1024)
    expect(latency!).toBeLessThanOrEqual(8192)
    expect(cpu!).toBeGreaterThanOrEqual(1024)
    expect(cpu!).toBeLessThanOrEqual(8192)
    // Small transfers: PIO is faster; large ones: DMA, on both counts.
    const [small, large] = [rows[0]!, rows[rows.length - 2]!]
    expect(small.pio.latencyNs).toBeLessThan(small.dma.latencyNs)
    expect(large.dma.latencyNs).toBeLessThan(large.pio.latencyNs)
    expect(cpuSaving(rows.find((r) => r.size === 1 << 20)!)).toBeGreaterThanOrEqual(0.9)
  })

  it('crossover interpolates the last sign change in log-log space', () => {
    const row = (size: number, pio: number, dma: number) => ({ size, pio: { cpuNs: pio, latencyNs: pio }, dma: { cpuNs: dma, latencyNs: dma }, mapNs: 0 })
    expect(crossover([row(1024, 1, 2), row(4096, 2, 1)], 'cpuNs')).toBeCloseTo(2048)
    expect(crossover([row(1024, 2, 1), row(2048, 1, 2), row(4096, 4, 1)], 'latencyNs')).toBeCloseTo(2 ** (11 + 1 / 3)) // log ratios -ln 2 and +ln 4: a third of the way
    expect(crossover([row(1024, 1, 2), row(2048, 1, 2)], 'cpuNs')).toBeNull()
  })

  it('docs/experiments/pio-vs-dma.{md,svg} show the full sweep as the experiment prints it', async () => {
    const rows = await sweep(SIZES)
    const md = read('docs/experiments/pio-vs-dma.md')
    const results = /<!-- results:begin -->\n([\s\S]*?)\n<!-- results:end -->/.exec(md)
    expect(results?.[1]).toBe(report(rows))
    expect(read('docs/experiments/pio-vs-dma.svg')).toBe(svg(rows, crossover(rows, 'latencyNs'), crossover(rows, 'cpuNs')))
  })
})
