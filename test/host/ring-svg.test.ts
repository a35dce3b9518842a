/**
 * host/ring-svg.ts: the tnic's RX ring drawn from a live run (docs/examples/tutorial-rings-rx.ts) is
 * well-formed SVG with a cell per descriptor, the ownership e1000 defines, the registers and the
 * driver's indexes marked; the same seed gives the same picture; a snapshot reads without
 * disturbing the run (no DMA, no MMIO trace, no report, the cache unchanged).
 */
import { describe, expect, it } from 'vitest'
import { boot, netUser, pci_register_driver } from '../../kernel/index.js'
import { TnicDevice } from '../../devices/index.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'
import { ringSvg, snapshotTnicRing } from '../../host/ring-svg.js'
import { run } from '../../docs/examples/tutorial-rings-rx.js'
import { checkXml } from './svg-check.js'

describe('ring-svg from a live tnic run', () => {
  it('draws the RX ring with 5 frames waiting inside the ITR window', async () => {
    const { files, lines, reports } = await run({ seed: 1 })
    expect(reports).toEqual([])
    expect(lines[1]).toBe('5 frames inside the ITR window: RDH 6 RDT 0 next_to_clean 1 next_to_use 0; device owns 10, done and waiting 5')
    const svg = files['rings-rx-waiting.svg']!
    const x = checkXml(svg)
    expect(x.problems).toEqual([])
    expect(x.root).toBe('svg')
    expect(svg.match(/<g class="desc /g)).toHaveLength(16)
    expect(svg.match(/<g class="desc driver-done"/g)).toHaveLength(5)
    expect(svg.match(/<g class="desc device"/g)).toHaveLength(10)
    for (let i = 1; i <= 5; i++) expect(svg).toContain(`<g class="desc driver-done" data-index="${i}">`)
    expect(x.texts).toContain('RDH')
    expect(x.texts).toContain('RDT')
    expect(x.texts).toContain('ntu')
    expect(x.texts).toContain('ntc')
    expect(x.texts.some((t) => t.startsWith('tnic0 RX ring at '))).toBe(true)
  })

  it('the same seed gives the same SVG', async () => {
    const a = await run({ seed: 7 })
    const b = await run({ seed: 7 })
    expect(a.files).toEqual(b.files)
  })

  it('a snapshot disturbs nothing', async () => {
    const nic = new TnicDevice({ name: 'tnic0' })
    const sys = boot({ log: 'silent', devices: [nic] })
    await sys.run(() => pci_register_driver(tnic_make_driver({ rxd: 16 })))
    await netUser(sys).ifup('eth0')
    await sys.runFor(100_000)
    let events = 0
    const count = () => events++
    sys.machine.tracer.on('dma', count)
    sys.machine.tracer.on('mmio', count)
    const resident = sys.machine.cache.residentLines
    const stats = { ...sys.machine.cache.stats }
    const now = sys.machine.clock.now
    const s = snapshotTnicRing(sys, nic, 'rx')
    snapshotTnicRing(sys, nic, 'tx')
    expect(events).toBe(0)
    expect(sys.machine.cache.residentLines).toBe(resident)
    expect({ ...sys.machine.cache.stats }).toEqual(stats)
    expect(sys.machine.clock.now).toBe(now)
    expect(sys.reports).toEqual([])
    expect(s.cells.filter((c) => c.owner === 'device')).toHaveLength(15)
    expect(checkXml(ringSvg(s)).problems).toEqual([])
  })
})
