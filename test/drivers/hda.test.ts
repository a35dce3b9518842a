/**
 * The mini-HDA reference driver (drivers/sound/hda.ts) end to end: a card probed on the
 * controller, half a second of known PCM played through pcmUser arriving at the sink bit-exact and
 * in order with no XRUN and no report, a capture from a BufferAudioSource, and an unbind that
 * leaves nothing behind; a short play and capture on every platform of the matrix (each
 * architecture, swiotlb auto and force, IOMMU off and strict, three seeds).
 */
import { describe, expect, it } from 'vitest'
import { boot, pci_register_driver, pcmUser, type System } from '../../kernel/index.js'
import { BufferAudioSource, HdaController, MemoryAudioSink } from '../../devices/index.js'
import { hda_make_driver } from '../../drivers/sound/hda.js'
import { PLATFORMS, optionsFor, type Platform } from '../helpers/matrix.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const

/** frames of S16_LE stereo whose every sample is distinct (a counting pattern). */
function pattern(frames: number, seed = 0): Uint8Array {
  const pcm = new Int16Array(frames * 2)
  for (let i = 0; i < pcm.length; i++) pcm[i] = ((i * 7 + seed) % 65536) - 32768
  return new Uint8Array(pcm.buffer)
}

async function rig(arch: 'arm64' | 'x86_64', source?: BufferAudioSource, quirks: { earlyIrqNs?: number; positionBuffer?: 'none' } = {}): Promise<{ sys: System; hda: HdaController; sink: MemoryAudioSink }> {
  const sink = new MemoryAudioSink()
  const hda = new HdaController({ sink, ...(source ? { source } : {}), ...quirks })
  const sys = boot({ log: 'silent', arch, devices: [hda] })
  await sys.run(() => pci_register_driver(hda_make_driver()))
  return { sys, hda, sink }
}

describe('mini-HDA driver and the controller quirks', () => {
  it('early period interrupts (2 ms ahead of the position) are re-checked later, as azx_irq_pending_work does: playback stays bit-exact', async () => {
    const { sys, sink } = await rig('arm64', undefined, { earlyIrqNs: 2_000_000 })
    const data = pattern(24000)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    expect([res.error, res.xruns, res.frames]).toEqual([0, 0, 24000])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, sink.length)), Buffer.from(data))).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('without a position buffer the driver falls back to LPIB', async () => {
    const { sys, sink } = await rig('x86_64', undefined, { positionBuffer: 'none' })
    const data = pattern(24000, 5)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    expect([res.error, res.xruns]).toEqual([0, 0])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, sink.length)), Buffer.from(data))).toBe(0)
    expect(sys.reports).toEqual([])
  })
})

describe('mini-HDA driver', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`plays 0.5 s bit-exact with no XRUN and no report, then unbinds cleanly (${arch})`, async () => {
      const { sys, hda, sink } = await rig(arch)
      const pcm = pcmUser(sys)
      expect(pcm.cards().length).toBe(1)
      const data = pattern(24000)
      const res = await pcm.play(0, 0, data, PARAMS)
      expect(res.error).toBe(0)
      expect(res.xruns).toBe(0)
      expect(res.frames).toBe(24000)
      const played = sink.bytes.subarray(0, sink.length)
      expect(played.length).toBe(data.length)
      expect(Buffer.compare(Buffer.from(played.subarray(0, data.length)), Buffer.from(data))).toBe(0)
      expect(hda.stats.silentBytes).toBe(0)
      expect(sys.reports).toEqual([])
      await sys.unbind(sys.pciDevice('hda0')!)
      expect(pcm.cards().length).toBe(0)
      expect(sys.reports).toEqual([])
    })

    it(`records from a BufferAudioSource (${arch})`, async () => {
      const src = pattern(9600, 3)
      const { sys } = await rig(arch, new BufferAudioSource(src))
      const pcm = pcmUser(sys)
      const rec = await pcm.record(0, 0, 4800, PARAMS)
      expect(rec.error).toBe(0)
      expect(rec.xruns).toBe(0)
      expect(Buffer.compare(Buffer.from(rec.data), Buffer.from(src.subarray(0, rec.data.length)))).toBe(0)
      expect(sys.reports).toEqual([])
      await sys.unbind(sys.pciDevice('hda0')!)
      expect(sys.reports).toEqual([])
    })
  }
})

describe('mini-HDA driver on every platform: 0.1 s played and recorded bit-exact, no report', () => {
  it.each(PLATFORMS.map((p) => [p.label, p] as const))('%s', async (_label, p: Platform) => {
    const src = pattern(4800, p.seed + 10)
    const sink = new MemoryAudioSink()
    const hda = new HdaController({ sink, source: new BufferAudioSource(src) })
    const sys = boot({ ...optionsFor(p), devices: [hda] })
    expect(await sys.run(() => pci_register_driver(hda_make_driver()))).toBe(0)
    const pcm = pcmUser(sys)
    const data = pattern(4800, p.seed)
    const res = await pcm.play(0, 0, data, PARAMS)
    expect([res.error, res.xruns, res.frames, res.periodsElapsed]).toEqual([0, 0, 4800, 10])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, sink.length)), Buffer.from(data))).toBe(0)
    expect(hda.stats.silentBytes).toBe(0)
    const rec = await pcm.record(0, 0, 2400, PARAMS)
    expect([rec.error, rec.xruns, rec.data.length]).toEqual([0, 0, 9600])
    expect(Buffer.compare(Buffer.from(rec.data), Buffer.from(src.subarray(0, rec.data.length)))).toBe(0)
    await sys.unbind(sys.pciDevice('hda0')!)
    expect(pcm.cards().length).toBe(0)
    expect(sys.reports).toEqual([])
  })
})
