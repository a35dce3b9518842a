// kernel/sound: the position machinery — period wake-ups, XRUNs and their recovery, the silence
// filler, and the symptoms of a driver whose pointer lies or whose interrupts go missing.
import { describe, expect, it } from 'vitest'
import { EIO, EPIPE, XRUN_DEBUG_BASIC, XRUN_DEBUG_JIFFIESCHECK, boot, pcmUser } from '../../kernel/index.js'
import type { KernelLogger } from '../../kernel/boot.js'
import { dummyFrameNumbers, dummyPcmAdd, dummyPcmDel, type DummyPcmOptions } from '../fixtures/dummy-pcm.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 } as const
const PERIOD_NS = (1024 / 48000) * 1e9

function ramp(frames: number, seed = 3): Uint8Array {
  return new Uint8Array(frames * 4).map((_, i) => (i * seed + (i >> 9) + 1) & 0xff)
}

async function rig(opts: DummyPcmOptions = {}) {
  const lines: { level: string; msg: string }[] = []
  const logger = (level: string) => (_: object, msg: string) => lines.push({ level, msg })
  const log: KernelLogger = { error: logger('error'), warn: logger('warn'), info: logger('info'), debug: logger('debug') }
  const sys = boot({ log })
  const d = await dummyPcmAdd(sys, opts)
  return { sys, d, pcm: pcmUser(sys), lines }
}

/** Plays data and compares what the hardware played with it, frame by frame. */
async function playAndCompare(opts: DummyPcmOptions, frames = 12000) {
  const r = await rig(opts)
  const data = ramp(frames)
  const res = await r.pcm.play(0, 0, data, PARAMS)
  const played = r.d.played()
  let wrongFrames = 0
  for (let f = 0; f < frames; f++) {
    for (let k = 0; k < 4; k++) {
      if (played[f * 4 + k] !== data[f * 4 + k]) {
        wrongFrames++
        break
      }
    }
  }
  const stats = r.pcm.stats(0, 0, 'playback')
  await dummyPcmDel(r.sys, r.d)
  return { ...r, res, wrongFrames, stats, reports: r.sys.reports }
}

describe('period wake-ups', () => {
  it('a blocked writer sleeps on virtual time and is woken period by period by snd_pcm_period_elapsed', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    const t0 = sys.clock
    expect(await pcm.write(h, ramp(4096))).toBe(4096) // fills the buffer, starts the stream
    expect(sys.clock - t0).toBeLessThan(1e6) // no wait
    const t1 = sys.clock
    expect(await pcm.write(h, ramp(4096, 5))).toBe(4096) // room comes a period at a time
    const waited = sys.clock - t1
    expect(waited).toBeGreaterThan(3 * PERIOD_NS)
    expect(waited).toBeLessThan(4 * PERIOD_NS + 8e6) // 4 periods, at jiffy resolution
    const st = pcm.stats(0, 0, 'playback')
    expect(st.periodElapsed).toBeGreaterThanOrEqual(3)
    expect(st.periodElapsedRunning).toBe(st.periodElapsed)
    expect(d.counters.periodElapsed).toBe(st.periodElapsed)
    await pcm.close(h)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('availMin: a blocked writer wakes when that much room is free (or what it still has to write)', async () => {
    const run = async (availMin: number) => {
      const { sys, d, pcm } = await rig()
      const h = await pcm.open(0, 0, 'playback', { ...PARAMS, availMin })
      await pcm.write(h, ramp(4096))
      await pcm.status(h) // resets avail_max
      expect(await pcm.write(h, ramp(4096, 7))).toBe(4096)
      const st = await pcm.status(h)
      await pcm.close(h)
      await dummyPcmDel(sys, d)
      return st.availMax
    }
    const small = await run(1024)
    const big = await run(3072)
    expect(small).toBeLessThan(2048) // woken every period, it refilled a period at a time
    expect(big).toBeGreaterThanOrEqual(3072) // woken once 3 periods were free
  })

  it('nonblock: -EAGAIN instead of sleeping', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS, { nonblock: true })
    expect(await pcm.write(h, ramp(5000))).toBe(4096) // what fitted
    expect(await pcm.write(h, ramp(10))).toBe(-11)
    expect(await pcm.write(h, ramp(10), { nonblock: false })).toBe(10)
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })
})

describe('XRUN', () => {
  it('playback: an application that is late underruns — XRUN, -EPIPE, recovered with prepare', async () => {
    const { sys, d, pcm, lines } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.write(h, ramp(4096))).toBe(4096)
    await sys.runFor(150e6) // the application sleeps: the buffer (85 ms) runs empty
    expect(h.state).toBe('XRUN')
    expect(h.xruns).toBe(1)
    expect((await pcm.status(h)).state).toBe('XRUN')
    expect(await pcm.write(h, ramp(1024))).toBe(-EPIPE)
    expect(await pcm.avail(h)).toBe(-EPIPE)
    expect(await pcm.recover(h, -EPIPE)).toBe(0)
    expect(h.state).toBe('PREPARED')
    expect(await pcm.write(h, ramp(4096, 9))).toBe(4096)
    expect(h.state).toBe('RUNNING')
    expect(pcm.stats(0, 0, 'playback').xruns).toBe(1)
    expect(pcm.stats(0, 0, 'playback').log).toEqual([{ timeNs: expect.any(Number) as number, message: 'XRUN: pcmC0D0p:0' }])
    expect(lines).toContainEqual({ level: 'warn', msg: `${d.dma.name}: XRUN: pcmC0D0p:0` })
    // The hardware stopped at the XRUN: it played the first buffer, then (after the prepare) the second.
    await pcm.drain(h)
    const played = d.played()
    expect(played.subarray(0, 4096 * 4)).toEqual(ramp(4096))
    await pcm.close(h)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('capture: an application that does not read overruns — XRUN, -EPIPE, the frames in between are lost', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'capture', PARAMS)
    const first = (await pcm.read(h, 1024)) as Uint8Array
    expect(dummyFrameNumbers(first, 4)[1023]).toBe(1023)
    await sys.runFor(150e6)
    expect(h.state).toBe('XRUN')
    expect(await pcm.read(h, 1024)).toBe(-EPIPE)
    expect(await pcm.recover(h, -EPIPE)).toBe(0)
    const again = (await pcm.read(h, 1024)) as Uint8Array
    const n = dummyFrameNumbers(again, 4)
    expect(n[0]).toBe(0) // prepare restarts the hardware's count: what came in meanwhile is gone
    expect(n.every((x, i) => x === i)).toBe(true)
    await pcm.close(h)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('play and record recover from XRUNs as aplay and arecord do, and count them', async () => {
    const { sys, d, pcm } = await rig({ pointer: 'xrun', xrunAfter: 20 })
    const r = await pcm.play(0, 0, ramp(24000), PARAMS)
    expect(r.xruns).toBeGreaterThan(0)
    expect(r.frames).toBe(24000)
    expect(r.error).toBe(0)
    await dummyPcmDel(sys, d)
  })

  it('stopThreshold = boundary never underruns; with silenceSize = boundary the hardware plays silence, without it stale data', async () => {
    const run = async (silence: boolean) => {
      const { sys, d, pcm } = await rig()
      const h = await pcm.open(0, 0, 'playback', PARAMS)
      const boundary = h.config!.boundary
      expect(await pcm.swParams(h, { stopThreshold: boundary, ...(silence ? { silenceSize: boundary, silenceThreshold: 0 } : {}) })).toBe(0)
      expect(await pcm.write(h, ramp(4096))).toBe(4096)
      await sys.runFor(200e6)
      expect(h.state).toBe('RUNNING')
      expect(h.xruns).toBe(0)
      await pcm.drop(h)
      const played = d.played()
      await pcm.close(h)
      await dummyPcmDel(sys, d)
      expect(sys.reports).toEqual([])
      return played.subarray(4096 * 4, 8192 * 4) // the second trip round the ring
    }
    const silent = await run(true)
    expect(silent.every((b) => b === 0)).toBe(true)
    const stale = await run(false)
    expect(stale).toEqual(ramp(4096))
  })
})

describe('drivers that misbehave: symptoms the application and the log show', () => {
  it('a correct driver: every frame played as written, no message', async () => {
    const r = await playAndCompare({})
    expect(r.res.xruns).toBe(0)
    expect(r.wrongFrames).toBe(0)
    expect(r.stats.hwPtrErrors).toEqual({})
    expect(r.reports).toEqual([])
  })

  it('a pointer that runs early: no error anywhere, but the application overwrites frames before they are played', async () => {
    const r = await playAndCompare({ pointer: 'early', pointerOffset: 512 })
    expect(r.res.xruns).toBe(0)
    expect(r.stats.hwPtrErrors).toEqual({})
    expect(r.wrongFrames).toBeGreaterThan(1000)
  })

  it('a pointer in bytes instead of frames (no bytes_to_frames): "invalid position" and a stalled stream', async () => {
    const r = await playAndCompare({ pointer: 'bytes' })
    expect(r.stats.hwPtrErrors['invalid position']).toBeGreaterThan(0)
    expect(r.lines.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^dummy-dma\d+: invalid position: pcmC0D0p:0, pos = \d+, buffer size = 4096, period size = 1024$/))
    expect(r.res.error).toBe(-EIO)
    expect(r.stats.log.map((l) => l.message)).toContain('playback write timeout (DMA or IRQ trouble?)')
  })

  it('a pointer beyond the buffer: "invalid position", taken as 0', async () => {
    const r = await playAndCompare({ pointer: 'out-of-range' })
    expect(r.stats.hwPtrErrors['invalid position']).toBeGreaterThan(0)
    expect(r.res.error).toBe(-EIO)
  })

  it('a stuck pointer: the writer times out (-EIO, "playback write timeout (DMA or IRQ trouble?)"); drain times out too', async () => {
    const { sys, d, pcm } = await rig({ pointer: 'stuck' })
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.write(h, ramp(4096))).toBe(4096)
    const t = sys.clock
    expect(await pcm.write(h, ramp(1024))).toBe(-EIO)
    expect(sys.clock - t).toBeGreaterThanOrEqual(100e6) // max(100 ms, 1.1 x the buffer's time)
    expect(await pcm.drain(h)).toBe(-EIO)
    expect(h.state).toBe('SETUP')
    expect(pcm.stats(0, 0, 'playback').log.map((l) => l.message)).toEqual(['playback write timeout (DMA or IRQ trouble?)', 'playback drain timeout (DMA or IRQ trouble?)'])
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })

  it('a pointer that goes backwards: hw_ptr jumps a buffer ahead ("Lost interrupts?") and the stream underruns', async () => {
    const r = await playAndCompare({ pointer: 'backwards' })
    expect(r.stats.hwPtrErrors['Lost interrupts?']).toBeGreaterThan(0)
    expect(r.res.xruns).toBeGreaterThan(0)
    expect(r.wrongFrames).toBeGreaterThan(0)
  })

  it('lost interrupts, pointer from the position: "Lost interrupts?" in the log, the data still right', async () => {
    const r = await playAndCompare({ lostIrqEvery: 3 })
    expect(r.d.counters.lostIrqs).toBeGreaterThan(0)
    expect(r.stats.hwPtrErrors['Lost interrupts?']).toBeGreaterThan(0)
    expect(r.lines.map((l) => l.msg)).toContainEqual(expect.stringMatching(/^ALSA: PCM: \[Q\] Lost interrupts\?: \(stream=0, delta=\d+, new_hw_ptr=\d+, old_hw_ptr=\d+\)$/))
    expect(r.wrongFrames).toBe(0)
    expect(r.res.xruns).toBe(0)
  })

  it('lost interrupts, pointer counting interrupts (trusts the IRQ): no message, but the pointer falls behind and the hardware plays stale data', async () => {
    const good = await playAndCompare({ pointer: 'period' })
    expect(good.wrongFrames).toBe(0) // without lost interrupts, counting them works
    const r = await playAndCompare({ pointer: 'period', lostIrqEvery: 3 })
    expect(r.stats.hwPtrErrors).toEqual({})
    expect(r.wrongFrames).toBeGreaterThan(0)
    expect(r.res.durationNs).toBeGreaterThan(good.res.durationNs * 1.2) // the application waits for periods already played
  })

  it('xrun_debug JIFFIESCHECK: a position that runs ahead of the time that passed is "hw_ptr skipping"', async () => {
    const run = async (mask: number) => {
      const { sys, d, pcm } = await rig({ pointer: 'early', pointerOffset: 2048 })
      expect(pcm.xrunDebug(0, 0, 'playback')).toBe(XRUN_DEBUG_BASIC)
      pcm.xrunDebug(0, 0, 'playback', mask)
      await pcm.play(0, 0, ramp(9600), PARAMS)
      const s = pcm.stats(0, 0, 'playback')
      await dummyPcmDel(sys, d)
      return s.hwPtrErrors
    }
    expect((await run(XRUN_DEBUG_BASIC | XRUN_DEBUG_JIFFIESCHECK))['hw_ptr skipping']).toBeGreaterThan(0)
    expect((await run(XRUN_DEBUG_BASIC))['hw_ptr skipping']).toBeUndefined()
  })

  it('a driver that never calls snd_pcm_period_elapsed: the writer is never woken (-EIO)', async () => {
    const r = await playAndCompare({ bug: 'no-period-elapsed' })
    expect(r.res.error).toBe(-EIO)
    expect(r.stats.periodElapsed).toBe(0)
  })

  it('a hardware clock 5 % fast: the stream still plays right, in less virtual time', async () => {
    const fast = await playAndCompare({ rateErrorPpm: 50000 })
    const exact = await playAndCompare({})
    expect(fast.wrongFrames).toBe(0)
    expect(fast.res.durationNs).toBeLessThan(exact.res.durationNs)
  })
})
