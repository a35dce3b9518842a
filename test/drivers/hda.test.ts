/**
 * The mini-HDA reference driver (drivers/sound/hda.ts) end to end: a card probed on the
 * controller, half a second of known PCM played through pcmUser arriving at the sink bit-exact and
 * in order with no XRUN and no report, a capture from a BufferAudioSource, and an unbind that
 * leaves nothing behind; the wall clock (WALLCLK, 24 MHz) against the virtual clock and the DMA
 * position, and azx_position_ok's use of it against early and too-early interrupts; a short play and capture on every platform of the matrix (each
 * architecture, swiotlb auto and force, IOMMU off and strict, three seeds).
 */
import { describe, expect, it } from 'vitest'
import { boot, msleep, pci_register_driver, pcmUser, ptr_add, readl, type System } from '../../kernel/index.js'
import { BufferAudioSource, HdaController, MemoryAudioSink } from '../../devices/index.js'
import {
  AZX_POS_BOGUS, AZX_POS_LATER, AZX_POS_OK, AZX_REG_WALLCLK, azx_get_position, azx_position_ok, hda_chip_of, hda_make_driver, type Azx, type AzxDev,
} from '../../drivers/sound/hda.js'
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
    expect([res.error, res.xruns, res.frames, res.periodsElapsed]).toEqual([0, 0, 24000, 50])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, data.length)), Buffer.from(data))).toBe(0)
    // After the end: only what crossed the link between the boundary and the 1 ms poll of the
    // pending work that accepted the last period (a frame or so; never a period).
    expect(sink.length - data.length).toBeLessThan(192)
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

/** One call of azx_position_ok: when, WALLCLK since the stream's start_wallclk, the position, the answer. */
interface PosCheck {
  now: number
  elapsed: number
  pos: number
  ok: number
}

/** The reference driver with azx_position_ok observed (WALLCLK read before each call: 1.5 µs more each). */
async function observedRig(quirks: { earlyIrqNs?: number; positionBuffer?: 'none' } = {}): Promise<{ sys: System; sink: MemoryAudioSink; checks: PosCheck[] }> {
  const sink = new MemoryAudioSink()
  const hda = new HdaController({ sink, ...quirks })
  const sys = boot({ log: 'silent', arch: 'x86_64', seed: 1, devices: [hda] })
  const checks: PosCheck[] = []
  const positionOk = (chip: Azx, s: AzxDev): number => {
    const elapsed = (readl(ptr_add(chip.remap_addr, AZX_REG_WALLCLK)) - s.start_wallclk) >>> 0
    const pos = azx_get_position(chip, s)
    const ok = azx_position_ok(chip, s)
    checks.push({ now: sys.machine.clock.now, elapsed, pos, ok })
    return ok
  }
  expect(await sys.run(() => pci_register_driver(hda_make_driver({ paths: { position_ok: positionOk } })))).toBe(0)
  return { sys, sink, checks }
}

/** A period of PARAMS in WALLCLK ticks: 480 frames at 48 kHz = 10 ms = 240,000 ticks of 24 MHz. */
const PERIOD_WALLCLK = 240_000
const PERIOD_BYTES = 1920

describe('the wall clock (WALLCLK) and azx_position_ok', () => {
  it('WALLCLK counts at 24 MHz of the virtual clock', async () => {
    const { sys } = await rig('x86_64')
    const chip = hda_chip_of(sys.pciDevice('hda0')!)
    const samples: Array<[number, number]> = []
    await sys.run(async () => {
      for (let i = 0; i < 4; i++) {
        const t = sys.machine.clock.now
        samples.push([t, readl(ptr_add(chip.remap_addr, AZX_REG_WALLCLK))])
        await msleep(10)
      }
    })
    for (let i = 1; i < samples.length; i++) {
      const [t0, w0] = samples[i - 1]!
      const [t1, w1] = samples[i]!
      // ticks = ns × 24 / 1000; the read itself takes 1.5 µs (36 ticks) of CPU time.
      expect(Math.abs((w1 - w0) - ((t1 - t0) * 24) / 1000)).toBeLessThanOrEqual(40)
      expect(Math.abs((w1 - w0) - PERIOD_WALLCLK)).toBeLessThan(2400) // msleep(10): 10 ms, ± 1 %
    }
  })

  it('on time: each period accepted at once, a period of WALLCLK (240,000 ticks) and a period of position apart', async () => {
    const { sys, sink, checks } = await observedRig()
    const data = pattern(9600, 1)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    expect([res.error, res.xruns, res.periodsElapsed]).toEqual([0, 0, 20])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, sink.length)), Buffer.from(data))).toBe(0)
    expect(checks.map((c) => c.ok)).toEqual(Array(20).fill(AZX_POS_OK))
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!
      // At the period boundary: the position buffer holds the boundary exactly (the burst's end).
      expect(c.pos % PERIOD_BYTES).toBe(0)
      if (i === 0) continue
      const prev = checks[i - 1]!
      expect((c.pos - prev.pos + 7680) % 7680).toBe(PERIOD_BYTES)
      // WALLCLK since the last accepted period: one period, up to the interrupt latency (< 1 %).
      expect(Math.abs(c.elapsed - PERIOD_WALLCLK)).toBeLessThan(2400)
      // ... which is the virtual time between the two checks, at 24 MHz.
      expect(Math.abs(c.elapsed - ((c.now - prev.now) * 24) / 1000)).toBeLessThanOrEqual(40)
    }
    expect(sys.reports).toEqual([])
  })

  it('early (earlyIrqNs 2 ms): each interrupt comes 8 ms into the period, is put off (AZX_POS_LATER) and accepted by the work once the position is past the boundary', async () => {
    const { sys, sink, checks } = await observedRig({ earlyIrqNs: 2_000_000 })
    const data = pattern(9600, 2)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    expect([res.error, res.xruns, res.periodsElapsed]).toEqual([0, 0, 20])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, data.length)), Buffer.from(data))).toBe(0)
    expect(checks.filter((c) => c.ok === AZX_POS_OK).length).toBe(20)
    expect(checks.filter((c) => c.ok === AZX_POS_BOGUS).length).toBe(0)
    const later = checks.filter((c) => c.ok === AZX_POS_LATER)
    expect(later.length).toBeGreaterThanOrEqual(20)
    for (const c of later) {
      // Between 2/3 and 5/4 of a period of WALLCLK since the last period, short of the boundary.
      expect(c.elapsed).toBeGreaterThanOrEqual((PERIOD_WALLCLK * 2) / 3)
      expect(c.elapsed).toBeLessThan((PERIOD_WALLCLK * 5) / 4)
    }
    // The first LATER of each period comes 8 ms (192,000 ticks) after the last accepted one.
    const firsts = checks.filter((c, i) => c.ok === AZX_POS_LATER && checks[i - 1]?.ok !== AZX_POS_LATER).slice(1)
    for (const c of firsts) expect(Math.abs(c.elapsed - 192_000)).toBeLessThan(2400)
    // Each accepted check is past the boundary, by less than the 1 ms poll.
    for (const c of checks.filter((x) => x.ok === AZX_POS_OK)) expect(c.elapsed).toBeGreaterThanOrEqual(PERIOD_WALLCLK - 2400)
    expect(sys.reports).toEqual([])
  })

  // (With the position buffer, written at burst ends — here once a period — an interrupt 4 ms
  // early reads the last boundary and passes; LPIB, with no position buffer, moves frame by frame.)
  it('too early (earlyIrqNs 4 ms, 6 ms into a 10 ms period, LPIB): under 2/3 of a period of WALLCLK, dropped as bogus (AZX_POS_BOGUS); ALSA catches up from the position at the next period', async () => {
    const { sys, sink, checks } = await observedRig({ earlyIrqNs: 4_000_000, positionBuffer: 'none' })
    const data = pattern(9600, 3)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    expect([res.error, res.xruns]).toEqual([0, 0])
    expect(Buffer.compare(Buffer.from(sink.bytes.subarray(0, data.length)), Buffer.from(data))).toBe(0)
    const bogus = checks.filter((c) => c.ok === AZX_POS_BOGUS)
    expect(bogus.length).toBeGreaterThan(0)
    for (const c of bogus) expect(c.elapsed).toBeLessThan((PERIOD_WALLCLK * 2) / 3)
    // After a dropped one, the next interrupt is more than 5/4 of a period on: accepted whatever the position.
    for (const [i, c] of checks.entries()) if (c.ok === AZX_POS_BOGUS && i + 1 < checks.length) {
      expect(checks[i + 1]!.elapsed).toBeGreaterThanOrEqual((PERIOD_WALLCLK * 5) / 4)
      expect(checks[i + 1]!.ok).toBe(AZX_POS_OK)
    }
    // Fewer period wake-ups than periods: the dropped ones are not made up for.
    expect(res.periodsElapsed).toBeLessThan(20)
    expect(sys.reports).toEqual([])
  })
})
