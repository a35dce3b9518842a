/**
 * The mini-HDA's known-bad driver variants (test/fixtures/hda-bad/): each replaces one step of the
 * reference driver (drivers/sound/hda.ts, through HdaParams.paths) with a copy holding one classic
 * bug. Each is caught — by a report of its kind (with a stack in the variant's file where the
 * kind has a driver source location), or by the controller's strict-mode `device-error` — and
 * where real hardware would glitch, the glitch shows: wrong or missing bytes at the
 * MemoryAudioSink, XRUNs, missing period interrupts, a writer that times out. The reference driver
 * under each scenario gets no report and plays bit-exact (with early interrupts, the stop at the
 * end of a drain comes when its 1 ms re-check sees the last period done: a frame or so more).
 *
 * Three variants break no rule any check of the emulator (or of Linux) looks at — IOC on every
 * entry, the pointer counting the period in play as played, and trusting an early interrupt: for
 * those the test asserts the observable consequence and that no report is made (the gap is named
 * at each). IOC on no entry is caught by the controller's strict check at RUN (IOCE set, no IOC
 * in the BDL).
 */
import { describe, expect, it } from 'vitest'
import { boot, pci_register_driver, pcmUser, type BootOptions, type PciDriver, type Report, type System } from '../../kernel/index.js'
import { BufferAudioSource, HdaController, InterruptController, MemoryAudioSink } from '../../devices/index.js'
import { hda_chip_of, hda_make_driver } from '../../drivers/sound/hda.js'
import { hda_ioc_every_entry_driver } from '../fixtures/hda-bad/ioc-every-entry.js'
import { hda_ioc_none_driver } from '../fixtures/hda-bad/ioc-none.js'
import { hda_bcis_not_cleared_driver } from '../fixtures/hda-bad/bcis-not-cleared.js'
import { hda_cbl_frames_driver } from '../fixtures/hda-bad/cbl-frames.js'
import { hda_lvi_count_driver } from '../fixtures/hda-bad/lvi-count.js'
import { hda_pointer_rounds_up_driver } from '../fixtures/hda-bad/pointer-rounds-up.js'
import { hda_no_position_check_driver } from '../fixtures/hda-bad/no-position-check.js'
import { hda_bdl_edit_running_driver } from '../fixtures/hda-bad/bdl-edit-running.js'
import { hda_srst_no_handshake_driver } from '../fixtures/hda-bad/srst-no-handshake.js'
import { hda_streaming_ring_driver } from '../fixtures/hda-bad/streaming-ring.js'

const FIX = 'test/fixtures/hda-bad/'
const REF = 'drivers/sound/hda.ts'
/** 10 ms periods of 48 kHz S16_LE stereo (1920 bytes), 4 of them: the ring is 7680 bytes. */
const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const
/** 50 ms periods, 8 of them (400 ms of ring), for the interrupt storm. */
const LONG = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 2400, periods: 8 } as const
/**
 * 100 ms periods, 8 of them (800 ms of ring): long enough for an interrupt storm to reach the
 * kernel's limit (10000 in a row) before the starved writer's XRUN stops the stream.
 */
const STORM = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 4800, periods: 8 } as const
const EIO = -5

type CtrlOpts = ConstructorParameters<typeof HdaController>[0]

interface Rig {
  sys: System
  hda: HdaController
  sink: MemoryAudioSink
}

/** frames of S16_LE stereo whose every sample is distinct (a counting pattern). */
function pattern(frames: number, seed = 0): Uint8Array {
  const pcm = new Int16Array(frames * 2)
  for (let i = 0; i < pcm.length; i++) pcm[i] = ((i * 7 + seed) % 65536) - 32768
  return new Uint8Array(pcm.buffer)
}

/**
 * A mini-HDA (strict) with the driver bound. `intx`: every MSI vector is taken first, so the
 * driver falls back to the shared INTx line (a platform without MSI).
 */
async function rig(drv: PciDriver, opts: BootOptions = {}, ctrl: CtrlOpts = {}, intx = false): Promise<Rig> {
  const sink = new MemoryAudioSink()
  const hda = new HdaController({ sink, ...ctrl })
  const sys = boot({ log: 'silent', arch: 'arm64', seed: 1, ...opts, devices: [hda] })
  if (intx) sys.machine.intc.allocMsiVectors(InterruptController.NR_MSI)
  expect(await sys.run(() => pci_register_driver(drv))).toBe(0)
  return { sys, hda, sink }
}

const played = (r: Rig): Buffer => Buffer.from(r.sink.bytes.subarray(0, r.sink.length))
const exact = (r: Rig, data: Uint8Array): boolean => Buffer.compare(played(r), Buffer.from(data)) === 0
const kinds = (sys: System): string[] => [...new Set(sys.reports.map((r) => r.kind))].sort()
const messages = (sys: System): string[] => sys.reports.map((r) => r.message)
/** How many times the driver's interrupt handler ran (the line's count). */
const irqCalls = (r: Rig): number => r.sys.irq.stats(hda_chip_of(r.sys.pciDevice('hda0')!).irq).count

/** The first frame of the report's stack `label` ('access' by default) is in `file`. */
function expectStackIn(r: Report, file: string, label = 'access'): void {
  const s = r.stacks.find((x) => x.label === label)
  expect(s?.frames[0]?.file, `${r.kind}: ${label} stack`).toBe(file)
}

/**
 * A timer-scheduled application (PulseAudio's model): the ring filled, then every 2.5 ms as much
 * as the pointer says there is room for, without blocking; then drain. The pointer is read at
 * arbitrary points of a period, not only at period interrupts.
 */
async function pollingPlay(r: Rig, data: Uint8Array): Promise<{ written: number; xruns: number }> {
  const pcm = pcmUser(r.sys)
  const h = await pcm.open(0, 0, 'playback', PARAMS)
  const ring = PARAMS.periodFrames * PARAMS.periods * 4
  let off = (await pcm.write(h, data.subarray(0, ring))) * 4
  for (let polls = 0; off < data.length && polls < 1000; polls++) {
    await r.sys.runFor(2_500_000)
    const n = await pcm.write(h, data.subarray(off, Math.min(data.length, off + ring)), { nonblock: true })
    if (n > 0) off += n * 4
  }
  const xruns = h.xruns
  await pcm.drain(h)
  await pcm.close(h)
  return { written: off, xruns }
}

describe('the reference driver under the variants\' scenarios: no report, bit-exact', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    for (const seed of [1, 2, 3]) {
      it(`${arch} seed ${seed}: 0.2 s through pcm.play, a capture, unbind`, async () => {
        const src = pattern(4800, 3)
        const r = await rig(hda_make_driver(), { arch, seed }, { source: new BufferAudioSource(src) })
        const data = pattern(9600, seed)
        const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
        expect([res.error, res.xruns, res.frames, res.periodsElapsed]).toEqual([0, 0, 9600, 20])
        expect(exact(r, data)).toBe(true)
        expect(r.hda.stats.interrupts).toBe(20)
        const rec = await pcmUser(r.sys).record(0, 0, 2400, PARAMS)
        expect([rec.error, rec.xruns]).toEqual([0, 0])
        expect(Buffer.from(rec.data)).toEqual(Buffer.from(src.subarray(0, rec.data.length)))
        await r.sys.unbind(r.sys.pciDevice('hda0')!)
        expect(r.sys.reports).toEqual([])
      })
    }
  }

  it('x86_64 swiotlb=force, arm64 iommu=off: silent and bit-exact', async () => {
    for (const opts of [{ arch: 'x86_64', swiotlb: 'force' }, { arch: 'arm64', iommu: 'off' }] as const) {
      const r = await rig(hda_make_driver(), opts)
      const data = pattern(9600, 4)
      expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
      expect(exact(r, data)).toBe(true)
      expect(r.sys.reports).toEqual([])
    }
  })

  it('INTx (shared, level-triggered), a 40 ms, a 400 ms and an 800 ms ring: bit-exact', async () => {
    for (const [params, frames] of [[PARAMS, 9600], [LONG, 48000], [STORM, 76800]] as const) {
      const r = await rig(hda_make_driver(), {}, {}, true)
      const data = pattern(frames)
      const res = await pcmUser(r.sys).play(0, 0, data, params)
      expect([res.error, res.xruns]).toEqual([0, 0])
      expect(exact(r, data)).toBe(true)
      expect(r.sys.reports).toEqual([])
    }
  })

  it('early interrupts (earlyIrqNs 2 ms), seeds 1-3: bit-exact; after the end, only what crossed the link while the pending work polled', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await rig(hda_make_driver(), { seed }, { earlyIrqNs: 2_000_000 })
      const data = pattern(9600, seed)
      const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
      expect([res.error, res.xruns, res.periodsElapsed]).toEqual([0, 0, 20])
      const out = played(r)
      expect(out.subarray(0, data.length)).toEqual(Buffer.from(data))
      // The last period is accepted by azx_irq_pending_work, which looks every 1 ms (Linux:
      // msleep(1)): it sees the position a few µs past the boundary, and the stop that drain
      // then makes lets what crossed the link in between through — a frame here, far less than
      // the 1 ms (192 bytes) the poll can be late and than the variant's 1536 bytes (test 7).
      expect(out.length - data.length).toBeLessThan(192)
      expect(r.sys.reports).toEqual([])
    }
  })

  it('a 256-byte FIFO (burstBytes) and a timer-scheduled application: bit-exact', async () => {
    const r = await rig(hda_make_driver(), {}, { burstBytes: 256 })
    const data = pattern(9600, 6)
    expect(await pollingPlay(r, data)).toEqual({ written: data.length, xruns: 0 })
    expect(exact(r, data)).toBe(true)
    expect(r.sys.reports).toEqual([])
  })

  it('a slow stream reset (srstDelayNs 20 µs): the handshake waits, bit-exact', async () => {
    const r = await rig(hda_make_driver(), {}, { srstDelayNs: 20_000 })
    const data = pattern(9600, 7)
    expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
    expect(exact(r, data)).toBe(true)
    expect(r.sys.reports).toEqual([])
  })
})

describe('1. IOC on every BDL entry (ioc-every-entry.ts)', () => {
  it('each period cut at page boundaries: 25 interrupts for 20 periods (the 5 mid-period ones dropped as bogus by azx_position_ok\'s wall-clock check); no report (no check sees it)', async () => {
    for (const seed of [1, 2]) {
      const r = await rig(hda_ioc_every_entry_driver(), { seed })
      const data = pattern(9600, seed)
      const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
      expect([res.error, res.xruns]).toEqual([0, 0])
      // 5 of every 4 periods: the periods that cross a 4 KiB boundary of the 7680-byte ring
      // interrupt twice, once in their middle (the reference: 20, one per period).
      expect(r.hda.stats.interrupts).toBe(25)
      // The reference's azx_position_ok drops an interrupt that comes less than 2/3 of a period
      // (WALLCLK) after the last period as bogus: the mid-period ones never reach ALSA. (A driver
      // that only checked the position would count them: half-period wake-ups.)
      expect(res.periodsElapsed).toBe(20)
      // The sound is right (ALSA reads the position at each call): only the interrupts are wasted.
      expect(exact(r, data)).toBe(true)
      // No DMA or device rule is broken: the controller does not know the periods.
      expect(r.sys.reports).toEqual([])
    }
  })
})

describe('2. IOC on no BDL entry (ioc-none.ts)', () => {
  it('device-error at RUN (IOCE set, no IOC in the BDL); no period interrupt at all: the writer times out (-EIO) while the controller loops over the first ring', async () => {
    const r = await rig(hda_ioc_none_driver())
    const data = pattern(9600, 2)
    const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
    expect(res.error).toBe(EIO)
    expect(res.frames).toBe(1920) // the ring's worth, written before the start
    expect([r.hda.stats.interrupts, r.hda.stats.periodsPlayed, res.periodsElapsed]).toEqual([0, 0, 0])
    // The sink heard the first 40 ms, then the same ring again and again until the stop.
    const out = played(r)
    const ring = Buffer.from(data.subarray(0, 7680))
    expect(out.length).toBeGreaterThan(2 * 7680)
    expect(out.subarray(0, 7680)).toEqual(ring)
    expect(out.subarray(7680, 2 * 7680)).toEqual(ring)
    // The controller's strict check at RUN: legal for the hardware, never what the driver meant.
    expect(kinds(r.sys)).toEqual(['device-error'])
    expect(messages(r.sys)).toEqual(['OSD0: RUN with IOCE set but no BDL entry has IOC: the stream never interrupts'])
    // The RUN write is the reference trigger's; the BDL came from the variant's prepare.
    expectStackIn(r.sys.reports[0]!, REF)
  })
})

describe('3. BCIS not cleared in the interrupt handler (bcis-not-cleared.ts)', () => {
  it('INTx (level-triggered): an interrupt storm, irq-unhandled; the kernel disables the line and playback stops (-EIO)', async () => {
    // An 800 ms ring: the handler runs ~10 reads per call (it loops while INTSTS is non-zero),
    // and 10000 calls must fit before the starved writer underruns (with 400 ms they do not: the
    // XRUN's stop ends the storm first, as in the next case).
    const r = await rig(hda_bcis_not_cleared_driver(), {}, {}, true)
    const data = pattern(76800)
    const res = await pcmUser(r.sys).play(0, 0, data, STORM)
    expect(kinds(r.sys)).toEqual(['irq-unhandled'])
    const rep = r.sys.reports[0]!
    expect(rep.message).toContain('interrupt storm: raised 10000 times in a row although the handler returns IRQ_HANDLED')
    expect(rep.message).toContain('handlers:\n  snd_hda_mini\n')
    expect(rep.message).toContain('Disabling IRQ')
    // (No driver line on its stack: the line fired while the CPU was idle, under the harness.)
    expect(res.error).toBe(EIO)
    // One BCIS, thousands of handler calls; azx_position_ok takes one per period and drops the
    // rest as bogus (less than 2/3 of a period of WALLCLK since the last one).
    expect(irqCalls(r)).toBeGreaterThanOrEqual(10000)
    expect(res.periodsElapsed).toBeLessThan(20)
    expect(r.sink.length).toBeLessThan(data.length)
  })

  it('INTx with a 40 ms ring: the storm starves the writer; each XRUN\'s stop clears BCIS and ends the storm before the kernel\'s limit', async () => {
    const r = await rig(hda_bcis_not_cleared_driver(), {}, {}, true)
    const data = pattern(9600, 3)
    const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
    expect(res.xruns).toBeGreaterThan(0)
    expect(irqCalls(r)).toBeGreaterThan(1000)
    // Each storm is shorter than the 10000 interrupts note_interrupt waits for: the XRUNs are
    // what shows (the reference on the same ring: no XRUN, bit-exact).
    expect(r.sys.reports).toEqual([])
  })

  it('MSI-X (edge-triggered): one interrupt, then none — INTSTS never returns to 0; the writer times out (-EIO); no report', async () => {
    const r = await rig(hda_bcis_not_cleared_driver())
    const data = pattern(9600, 3)
    const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
    expect(res.error).toBe(EIO)
    expect(r.hda.stats.interrupts).toBe(1)
    expect(r.hda.stats.periodsPlayed).toBeGreaterThan(4) // the controller went on; nobody heard of it
    expect(r.hda.irqAsserted).toBe(false) // the stream was stopped at the timeout
    expect(exact(r, data)).toBe(false)
    // With MSI-X nothing storms: the bug shows only as the missing period interrupts.
    expect(r.sys.reports).toEqual([])
  })
})

describe('4. CBL ≠ the sum of the BDL lengths (cbl-frames.ts)', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: device-error at RUN, DESE, the stream halted: silence and -EIO`, async () => {
      const r = await rig(hda_cbl_frames_driver(), { arch })
      const res = await pcmUser(r.sys).play(0, 0, pattern(9600, 4), PARAMS)
      expect(kinds(r.sys)).toEqual(['device-error'])
      expect(messages(r.sys)).toEqual(['OSD0: RUN refused: OSD0CBL 0x780 (1920) ≠ the sum of the 4 BDL entry lengths 0x1e00 (7680)'])
      // The refused write is the reference trigger's RUN; the CBL came from the variant's prepare.
      expectStackIn(r.sys.reports[0]!, REF)
      expect(res.error).toBe(EIO)
      expect(r.sink.length).toBe(0)
      expect(r.hda.stats.descriptorErrors).toBeGreaterThanOrEqual(1)
    })
  }
})

describe('5. LVI off by one (lvi-count.ts)', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: the fifth (zeroed) entry is taken: device-error at RUN, silence and -EIO`, async () => {
      const r = await rig(hda_lvi_count_driver(), { arch })
      const res = await pcmUser(r.sys).play(0, 0, pattern(9600, 5), PARAMS)
      expect(kinds(r.sys)).toEqual(['device-error'])
      expect(messages(r.sys)).toEqual(['OSD0: RUN refused: BDL entry 4 has length 0'])
      expectStackIn(r.sys.reports[0]!, REF)
      expect(res.error).toBe(EIO)
      expect(r.sink.length).toBe(0)
    })
  }
})

describe('6. refilling the period being played (pointer-rounds-up.ts)', () => {
  it('a 256-byte FIFO: the application overwrites the unfetched part of the period in play: wrong bytes at the sink; no report (no check sees it)', async () => {
    const r = await rig(hda_pointer_rounds_up_driver(), {}, { burstBytes: 256 })
    const data = pattern(9600, 6)
    const { written, xruns } = await pollingPlay(r, data)
    expect([written, xruns]).toEqual([data.length, 0])
    const out = played(r)
    let wrong = 0
    for (let i = 0; i < Math.min(out.length, data.length); i++) if (out[i] !== data[i]) wrong++
    expect(wrong).toBeGreaterThan(4096)
    // A CPU write to coherent memory the device is about to read is legal: nothing reports it.
    expect(r.sys.reports).toEqual([])
  })

  it('a 4 KiB FIFO fetches each 1920-byte period whole when it starts: the same variant happens to play right', async () => {
    const r = await rig(hda_pointer_rounds_up_driver())
    const data = pattern(9600, 6)
    expect((await pollingPlay(r, data)).written).toBe(data.length)
    expect(exact(r, data)).toBe(true)
    expect(r.sys.reports).toEqual([])
  })
})

describe('7. trusting the interrupt instead of the position (no-position-check.ts)', () => {
  it('earlyIrqNs 2 ms, seeds 1-3: the last period is counted short, drain runs a period on: stale audio after the end; no report', async () => {
    for (const seed of [1, 2, 3]) {
      const r = await rig(hda_no_position_check_driver(), { seed }, { earlyIrqNs: 2_000_000 })
      const data = pattern(9600, seed)
      const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
      expect([res.error, res.xruns]).toEqual([0, 0])
      const out = played(r)
      expect(out.subarray(0, data.length)).toEqual(Buffer.from(data))
      // 1536 bytes (8 ms) more than was written: the ring's old contents, played after the end
      // (the reference, same quirk: the data and at most a frame or two, the pending work's lateness).
      expect(out.length).toBe(data.length + 1536)
      expect(out.subarray(data.length)).toEqual(Buffer.from(data.subarray(data.length - 7680, data.length - 7680 + 1536)))
      expect(res.periodsElapsed).toBe(21)
      expect(r.sys.reports).toEqual([])
    }
  })

  it('without the quirk (interrupts on time) the variant plays right: the bug needs an early controller', async () => {
    const r = await rig(hda_no_position_check_driver())
    const data = pattern(9600, 7)
    expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
    expect(exact(r, data)).toBe(true)
    expect(r.sys.reports).toEqual([])
  })
})

describe('8. editing the BDL while the stream runs (bdl-edit-running.ts)', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: device-error for each entry re-read changed; no IOC left after a lap: no more interrupts, -EIO`, async () => {
      const r = await rig(hda_bdl_edit_running_driver(), { arch })
      const res = await pcmUser(r.sys).play(0, 0, pattern(9600, 8), PARAMS)
      const changed = r.sys.reports.filter((x) => x.kind === 'device-error')
      // One report for the site (the entry re-read), counted once per entry found changed.
      expect(changed.length).toBe(1)
      expect(changed[0]!.message.replace(/address 0x[0-9a-f]+/g, 'address A')).toBe(
        'OSD0: BDL entry 0 changed while RUN = 1 (address A length 0x780 IOC → address A length 0x780): the BDL must not be modified while the stream runs; the controller uses what it reads')
      expect(changed[0]!.count).toBe(4)
      // The re-read is the controller's own, as the engine moves on: no driver line on its stack.
      expect(changed[0]!.stacks).toEqual([])
      // The edits are plain stores with no dma_wmb before the application's next samples, which
      // the controller fetches first: missing-barrier too (on every platform, as dma_wmb is).
      expect(kinds(r.sys)).toEqual(['device-error', 'missing-barrier'])
      expect(r.hda.stats.bdlChanges).toBe(4)
      expect(r.hda.stats.interrupts).toBe(4)
      expect(res.error).toBe(EIO)
    })
  }
})

describe('9. skipping the SRST handshake (srst-no-handshake.ts)', () => {
  it('default controller (SRST takes 1 µs): device-error at the early clear, in the variant; the reset still completes, the audio is right', async () => {
    const r = await rig(hda_srst_no_handshake_driver())
    const data = pattern(9600, 9)
    expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
    expect(kinds(r.sys)).toEqual(['device-error'])
    expect(messages(r.sys)).toEqual(['OSD0: SRST cleared before the stream reported reset (it had not read back as 1 yet)'])
    expectStackIn(r.sys.reports[0]!, `${FIX}srst-no-handshake.ts`)
    expect(exact(r, data)).toBe(true)
  })

  it('a slower controller (SRST takes 20 µs): the descriptor ignores what prepare programs, RUN gets no buffer: silence and -EIO', async () => {
    const r = await rig(hda_srst_no_handshake_driver(), {}, { srstDelayNs: 20_000 })
    const res = await pcmUser(r.sys).play(0, 0, pattern(9600, 9), PARAMS)
    expect(kinds(r.sys)).toEqual(['device-error'])
    const msgs = messages(r.sys)
    expect(msgs[0]).toBe('OSD0: SRST cleared before the stream reported reset (it had not read back as 1 yet)')
    expectStackIn(r.sys.reports[0]!, `${FIX}srst-no-handshake.ts`)
    expect(msgs).toContain('OSD0: write of 0x1e00 to OSD0CBL while the stream is in reset (SRST still reads 1): ignored')
    expect(res.error).toBe(EIO)
    expect(r.sink.length).toBe(0)
  })
})

describe('10. a streaming-mapped ring without dma_sync (streaming-ring.ts)', () => {
  const zeroes = (b: Buffer): number => b.reduce((n, x) => n + (x === 0 ? 1 : 0), 0)

  for (const seed of [1, 2, 3]) {
    it(`arm64 (non-coherent) seed ${seed}: cpu-access-device-owned at the application's writes, mapped in the variant; the controller plays stale memory`, async () => {
      const r = await rig(hda_streaming_ring_driver(), { arch: 'arm64', seed })
      const data = pattern(9600, seed)
      const res = await pcmUser(r.sys).play(0, 0, data, PARAMS)
      expect([res.error, res.xruns]).toEqual([0, 0])
      expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
      for (const rep of r.sys.reports) {
        expect(rep.message).toContain('of a DMA_TO_DEVICE mapping the device owns')
        expectStackIn(rep, `${FIX}streaming-ring.ts`, 'mapped')
      }
      // The samples sit in the CPU cache: the controller reads what memory held at the mapping
      // (the zeroes hw_params wrote), apart from lines evicted in between.
      const out = played(r)
      expect(out.length).toBe(data.length)
      expect(zeroes(out)).toBeGreaterThan(data.length * 0.9)
    })
  }

  it('arm64 capture: cpu-access-device-owned at the application\'s reads; it reads the cache, not what the controller wrote', async () => {
    const src = pattern(4800, 10)
    const r = await rig(hda_streaming_ring_driver(), { arch: 'arm64' }, { source: new BufferAudioSource(src) })
    const rec = await pcmUser(r.sys).record(0, 0, 2400, PARAMS)
    expect(rec.error).toBe(0)
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
    for (const rep of r.sys.reports) expectStackIn(rep, `${FIX}streaming-ring.ts`, 'mapped')
    expect(Buffer.from(rec.data)).not.toEqual(Buffer.from(src.subarray(0, rec.data.length)))
  })

  it('x86_64 (coherent): the same reports; the bytes happen to arrive', async () => {
    const r = await rig(hda_streaming_ring_driver(), { arch: 'x86_64' })
    const data = pattern(9600, 11)
    expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
    for (const rep of r.sys.reports) expectStackIn(rep, `${FIX}streaming-ring.ts`, 'mapped')
    expect(exact(r, data)).toBe(true)
  })

  it('x86_64 swiotlb=force: reported, and the bounce buffer is never refreshed: stale audio', async () => {
    const r = await rig(hda_streaming_ring_driver(), { arch: 'x86_64', swiotlb: 'force' })
    const data = pattern(9600, 12)
    expect((await pcmUser(r.sys).play(0, 0, data, PARAMS)).error).toBe(0)
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
    expect(zeroes(played(r))).toBe(data.length)
  })

  it('unbind: the variant unmaps at hw_free, so the only reports are the ownership ones', async () => {
    const r = await rig(hda_streaming_ring_driver(), { arch: 'arm64' })
    await pcmUser(r.sys).play(0, 0, pattern(4800, 13), PARAMS)
    await r.sys.unbind(r.sys.pciDevice('hda0')!)
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
  })
})
