/**
 * The sb16 reference driver (drivers/isa/sb16.ts) on the ISA bridge's 8237 and SB16 DSP: a known
 * PCM pattern played by auto-init DMA through a two-period ring arrives bit-exact at the sink on
 * every architecture and seed with zero reports, unbinds cleanly, and its known-bad variants
 * (test/fixtures/sb16-bad/) are each caught.
 */
import { describe, expect, it } from 'vitest'
import {
  boot, claim_dma_lock, clear_dma_ff, dma_channel_owner, get_dma_residue, pci_enable_device, pci_register_driver,
  release_dma_lock, request_dma, set_dma_addr, set_dma_count, set_dma_mode, DMA_MODE_WRITE, EBUSY, ENODEV,
  type BootOptions, type PciDev, type System,
} from '../../kernel/index.js'
import { IsaBridge, MemoryAudioSink, Sb16 } from '../../devices/index.js'
import { sb16_driver, sb16_get, sb16_params, sb16_play } from '../../drivers/isa/sb16.js'
import { sb16_play_noff } from '../fixtures/sb16-bad/no-clear-ff.js'
import { sb16_play_no_autoinit } from '../fixtures/sb16-bad/no-autoinit.js'
import { sb16_play_cross_64k } from '../fixtures/sb16-bad/cross-64k.js'
import { ARCHES, SEEDS } from '../helpers/matrix.js'

const RATE = 22050
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + (i >> 8) * 3 + 1) & 0xff)
const kinds = (sys: System) => [...new Set(sys.reports.map((r) => r.kind))].sort()

async function setup(opts: BootOptions = {}): Promise<{ sys: System; pdev: PciDev; sink: MemoryAudioSink; sb: Sb16; bridge: IsaBridge; rc: number }> {
  const sink = new MemoryAudioSink()
  const sb = new Sb16({ sink })
  const bridge = new IsaBridge({ devices: [sb] })
  const sys = boot({ log: 'silent', ...opts, devices: [bridge] })
  const rc = await sys.run(() => pci_register_driver(sb16_driver))
  return { sys, pdev: sys.pciDevice('isa0')!, sink, sb, bridge, rc }
}

describe('sb16: auto-init playback', () => {
  const matrix = [
    ...ARCHES.flatMap((arch) => SEEDS.map((seed) => ({ arch, seed, iommu: 'strict' as const }))),
    ...ARCHES.map((arch) => ({ arch, seed: 1, iommu: 'lazy' as const })),
  ]
  it.each(matrix)('$arch iommu=$iommu seed=$seed: the sink gets the pattern bit-exact, zero reports, clean unbind', async ({ arch, seed, iommu }) => {
    const { sys, pdev, sink, sb, rc } = await setup({ arch, seed, iommu })
    expect(rc).toBe(0)
    const pcm = pattern(3 * 2048 + 777)
    expect(await sys.run(() => sb16_play(pdev, pcm, RATE))).toBe(0)
    expect(sink.bytes.subarray(0, pcm.length)).toEqual(pcm)
    expect(sb.stats.underruns).toBe(0)
    expect(sink.format).toEqual({ rate: RATE, channels: 1, bits: 8 })
    // A second run through the same ring works too.
    sink.clear()
    const again = pattern(5000).reverse()
    expect(await sys.run(() => sb16_play(pdev, again, RATE))).toBe(0)
    expect(sink.bytes.subarray(0, again.length)).toEqual(again)
    await sys.unbind(pdev)
    expect(kinds(sys)).toEqual([])
  })

  it('the DSP interrupts once per period and the ring is below 16 MiB, not crossing 64 KiB', async () => {
    const { sys, pdev, sb } = await setup()
    const chip = sb16_get(pdev)
    expect(chip.buf_dma + chip.buf_bytes).toBeLessThanOrEqual(0x100_0000)
    expect(Math.floor(chip.buf_dma / 0x1_0000)).toBe(Math.floor((chip.buf_dma + chip.buf_bytes - 1) / 0x1_0000))
    expect(await sys.run(() => sb16_play(pdev, pattern(4 * 2048), RATE))).toBe(0)
    expect(sb.stats.irqs).toBe(5)
    expect(kinds(sys)).toEqual([])
  })

  it('the channel is reserved while bound (request_dma: -EBUSY) and freed at unbind', async () => {
    const { sys, pdev } = await setup()
    await sys.run(() => {
      expect(dma_channel_owner(1)).toBe('sb16')
      expect(request_dma(1, 'other')).toBe(-EBUSY)
      expect(request_dma(4, 'other')).toBe(-EBUSY) // the cascade
      return Promise.resolve()
    })
    await sys.unbind(pdev)
    expect(await sys.run(() => Promise.resolve(dma_channel_owner(1)))).toBe(null)
  })

  it('without an IOMMU there is no memory below 16 MiB: the 24-bit mask is refused and probe fails cleanly', async () => {
    const { sys, pdev } = await setup({ iommu: 'off' })
    expect(pdev.driver).toBe(null)
    expect(kinds(sys)).toEqual([])
  })

  it('demand mode plays bit-exact too, with fewer bus grants than single mode', async () => {
    const grants: number[] = []
    for (const mode of [0x40, 0x00]) {
      const saved = sb16_params.dma_mode
      sb16_params.dma_mode = mode
      try {
        const { sys, pdev, sink, bridge } = await setup()
        const pcm = pattern(3000)
        expect(await sys.run(() => sb16_play(pdev, pcm, RATE))).toBe(0)
        expect(sink.bytes.subarray(0, pcm.length)).toEqual(pcm)
        expect(kinds(sys)).toEqual([])
        grants.push(bridge.i8237.stats.grants)
      } finally {
        sb16_params.dma_mode = saved
      }
    }
    expect(grants[1]!).toBeLessThan(grants[0]! / 10)
  })
})

describe('sb16: known-bad variants are caught', () => {
  it.each(ARCHES)('%s: flip-flop not cleared: wrong address and count programmed (iommu-fault, wrong output)', async (arch) => {
    const { sys, pdev, sink } = await setup({ arch })
    const pcm = pattern(3 * 2048)
    await sys.run(() => sb16_play_noff(pdev, pcm, RATE))
    expect(kinds(sys)).toContain('iommu-fault')
    expect(sink.bytes.subarray(0, pcm.length)).not.toEqual(pcm)
  })

  it.each(ARCHES)('%s: ring crossing a 64 KiB boundary: device-error and wrong output', async (arch) => {
    const { sys, pdev, sink } = await setup({ arch })
    const pcm = pattern(3 * 2048)
    await sys.run(() => sb16_play_cross_64k(pdev, pcm, RATE))
    const errs = sys.reports.filter((r) => r.kind === 'device-error')
    expect(errs.map((r) => r.message).join('\n')).toMatch(/crosses a 64 KiB boundary/)
    expect(sink.bytes.subarray(0, pcm.length)).not.toEqual(pcm)
  })

  it.each(ARCHES)('%s: no auto-init: the DMA stops after one pass (device-error underrun, silence, timeout)', async (arch) => {
    const { sys, pdev, sink } = await setup({ arch })
    const pcm = pattern(4 * 2048)
    const rc = await sys.run(() => sb16_play_no_autoinit(pdev, pcm, RATE))
    expect(rc).toBeLessThan(0)
    expect(sys.reports.filter((r) => r.kind === 'device-error').map((r) => r.message).join('\n')).toMatch(/FIFO underrun/)
    expect(sink.bytes.subarray(0, 2 * 2048)).toEqual(pcm.subarray(0, 2 * 2048)) // the first pass plays
    expect(sink.bytes.subarray(2 * 2048, pcm.length)).not.toEqual(pcm.subarray(2 * 2048))
  })
})

describe('kernel/dma/isa.ts helpers', () => {
  it('program a 16-bit channel in words through the bridge; get_dma_residue reads the count back', async () => {
    const bridge = new IsaBridge()
    const sys = boot({ log: 'silent', devices: [bridge] })
    const pdev = sys.pciDevice('isa0')!
    const residue = await sys.run(() => {
      expect(pci_enable_device(pdev)).toBe(0)
      expect(request_dma(5, 'test')).toBe(0)
      const flags = claim_dma_lock()
      clear_dma_ff(5)
      set_dma_mode(5, DMA_MODE_WRITE)
      set_dma_addr(5, 0x12_3456)
      set_dma_count(5, 0x1000)
      clear_dma_ff(5)
      const r = get_dma_residue(5)
      release_dma_lock(flags)
      return Promise.resolve(r)
    })
    expect(bridge.i8237.channel(5)).toMatchObject({ page: 0x12, baseAddr: (0x12_3456 >> 1) & 0xffff, baseCount: 0x7ff, mode: DMA_MODE_WRITE | 1 })
    expect(residue).toBe(0x1000)
    expect(kinds(sys)).toEqual([])
  })

  it('an address above 16 MiB (no 24-bit mask) is a dma-mask report', async () => {
    const bridge = new IsaBridge()
    const sys = boot({ log: 'silent', devices: [bridge] })
    const pdev = sys.pciDevice('isa0')!
    await sys.run(() => {
      pci_enable_device(pdev)
      set_dma_addr(1, 0xffff_0000)
      return Promise.resolve()
    })
    expect(kinds(sys)).toEqual(['dma-mask'])
    expect(sys.reports[0]!.message).toMatch(/24 address bits; the channel will use 0xff0000/)
    expect(bridge.i8237.channel(1)).toMatchObject({ page: 0xff, baseAddr: 0 })
  })

  it('without an ISA bridge request_dma fails with -ENODEV', async () => {
    const sys = boot({ log: 'silent' })
    expect(await sys.run(() => Promise.resolve(request_dma(1, 'x')))).toBe(-ENODEV)
  })
})
