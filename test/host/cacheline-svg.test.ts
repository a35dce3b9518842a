/**
 * host/cacheline-svg.ts: the stale-read bug of docs/examples/tutorial-mappings-stale.ts drawn from
 * the live run is well-formed SVG whose cells say what the cache held at each step (dirty after
 * the CPU's write, clean after arm64's clean at map, stale after the device wrote RAM, absent after
 * the unmap's invalidate); the same seed gives the same picture; sampling disturbs nothing; on a
 * coherent machine (x86_64) the line is never stale.
 */
import { describe, expect, it } from 'vitest'
import { run } from '../../docs/examples/tutorial-mappings-stale.js'
import { boot, kmalloc, memset, virt_to_phys } from '../../kernel/index.js'
import { cacheLineSvg, cacheLineView, recordCacheLines } from '../../host/cacheline-svg.js'
import { checkXml } from './svg-check.js'

const column = (svg: string, j: number): string[] => [...svg.matchAll(new RegExp(`<g class="cell ([a-z]+)" data-line="\\d+" data-column="${j}">`, 'g'))].map((m) => m[1]!)

describe('cacheline-svg from a live run', () => {
  it('shows the stale line the CPU reads after the device wrote (arm64)', async () => {
    const { files, lines } = await run({ seed: 1 })
    expect(lines[1]).toBe('after the device wrote 0x55, the CPU reads 0xaa (stale)')
    const svg = files['mappings-stale.svg']!
    const x = checkXml(svg)
    expect(x.problems).toEqual([])
    expect(x.root).toBe('svg')
    const labels = ['CPU writes', 'map', 'CPU reads', 'device writes', 'CPU reads', 'unmap', 'CPU reads']
    for (const l of labels) expect(x.texts).toContain(l)
    expect([0, 1, 2, 3, 4, 5, 6].map((j) => column(svg, j))).toEqual([
      ['dirty', 'dirty'],
      ['clean', 'clean'],
      ['clean', 'clean'],
      ['stale', 'stale'],
      ['stale', 'stale'],
      ['absent', 'absent'],
      ['clean', 'absent'],
    ])
    expect(x.texts.filter((t) => t === 'stale +dev')).toHaveLength(2)
  })

  it('the same seed gives the same SVG', async () => {
    expect((await run({ seed: 3 })).files).toEqual((await run({ seed: 3 })).files)
  })

  it('never stale on a coherent machine', async () => {
    const { files, lines } = await run({ arch: 'x86_64' })
    expect(lines[1]).toBe('after the device wrote 0x55, the CPU reads 0x55')
    expect(files['mappings-stale.svg']).not.toContain('class="cell stale"')
  })

  it('sampling disturbs nothing', async () => {
    const sys = boot({ log: 'silent', arch: 'arm64' })
    await sys.run(() => {
      const buf = kmalloc(256)!
      const pa = virt_to_phys(buf)
      memset(buf, 1, 64)
      const resident = sys.machine.cache.residentLines
      const stats = { ...sys.machine.cache.stats }
      const rec = recordCacheLines(sys, { pa, len: 256 })
      rec.mark('now')
      rec.stop()
      expect(rec.columns[0]!.states).toEqual(['dirty', 'absent', 'absent', 'absent'])
      expect(cacheLineView(sys, pa + 64)).toBe('absent')
      expect(sys.machine.cache.residentLines).toBe(resident)
      expect({ ...sys.machine.cache.stats }).toEqual(stats)
      expect(checkXml(cacheLineSvg(rec)).problems).toEqual([])
    })
  })
})
