// kernel/sound: cards and PCM devices, the state machine through the harness's ALSA client, hw
// constraints, buffer memory (coherent DMA of the card's device), leaks at unbind, determinism.
import { describe, expect, it } from 'vitest'
import {
  EBADFD,
  EBUSY,
  EINVAL,
  ENODEV,
  IS_ERR,
  PAGE_SIZE,
  PcmError,
  SNDRV_CARDS,
  SNDRV_DMA_TYPE_DEV,
  SNDRV_PCM_FORMAT_S16_LE,
  SNDRV_PCM_HW_PARAM_BUFFER_BYTES,
  SNDRV_PCM_HW_PARAM_PERIOD_BYTES,
  SNDRV_PCM_HW_PARAM_PERIOD_SIZE,
  SNDRV_PCM_HW_PARAM_RATE,
  SNDRV_PCM_STREAM_PLAYBACK,
  SNDRV_PCM_TRIGGER_PAUSE_PUSH,
  SNDRV_PCM_TRIGGER_PAUSE_RELEASE,
  SNDRV_PCM_TRIGGER_START,
  SNDRV_PCM_TRIGGER_STOP,
  boot,
  pcmUser,
  snd_card_free,
  snd_card_new,
  snd_card_register,
  snd_devm_card_new,
  snd_pcm_hw_constraint_list,
  snd_pcm_hw_constraint_minmax,
  snd_pcm_hw_constraint_pow2,
  snd_pcm_hw_constraint_step,
  snd_pcm_hw_rule_add,
  snd_interval_refine,
  hw_param_interval,
  snd_pcm_new,
  snd_pcm_set_managed_buffer_all,
  snd_pcm_set_ops,
  type SndCard,
  type SndPcmOps,
} from '../../kernel/index.js'
import { ARCHES } from '../helpers/matrix.js'
import { dummyFrame, dummyFrameNumbers, dummyPcmAdd, dummyPcmDel, type DummyPcmOptions } from '../fixtures/dummy-pcm.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 } as const

async function rig(opts: DummyPcmOptions = {}, bootOpts: Parameters<typeof boot>[0] = {}) {
  const sys = boot({ log: 'silent', ...bootOpts })
  const d = await dummyPcmAdd(sys, opts)
  return { sys, d, pcm: pcmUser(sys) }
}

function ramp(frames: number, frameBytes: number, seed = 3): Uint8Array {
  return new Uint8Array(frames * frameBytes).map((_, i) => (i * seed + (i >> 9)) & 0xff)
}

describe('cards', () => {
  it('snd_card_new, snd_pcm_new, snd_card_register: the card and its PCM are visible (aplay -l)', async () => {
    const { sys, d, pcm } = await rig({ pcmDevices: 2, playback: 2, capture: 1 })
    expect(pcm.cards()).toEqual([
      {
        number: 0,
        id: 'Dummy',
        driver: 'Dummy',
        shortname: 'Dummy',
        longname: 'Dummy 1',
        parent: d.dma.name,
        devices: [0, 1].map((device) => ({ device, id: 'Dummy PCM', name: 'Dummy PCM', playback: { substreams: 2, open: 0 }, capture: { substreams: 1, open: 0 } })),
      },
    ])
    await dummyPcmDel(sys, d)
    expect(pcm.cards()).toEqual([])
    expect(sys.reports).toEqual([])
  })

  it('snd_card_new: index slots, -EBUSY for a taken one, -ENODEV beyond SNDRV_CARDS, unique ids', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('m0')
    const out = await sys.run(() => {
      const a = snd_card_new(m.dev, -1, 'Same', null, 0) as SndCard
      const b = snd_card_new(m.dev, 3, 'Same', null, 64) as SndCard
      const busy = snd_card_new(m.dev, 3, null, null, 0)
      const beyond = snd_card_new(m.dev, SNDRV_CARDS, null, null, 0)
      const noId = snd_card_new(m.dev, -1, null, null, { mine: true }) as SndCard
      noId.shortname = 'My Card!'
      const r = snd_card_register(noId) + snd_card_register(a) + snd_card_register(b)
      return { a: [a.number, a.id], b: [b.number, b.id, typeof b.private_data], busy, beyond, noId: [noId.number, noId.id, noId.private_data], r, cards: [a, b, noId] }
    })
    expect(out.a).toEqual([0, 'Same'])
    expect(out.b).toEqual([3, 'Same_1', 'number']) // a 64-byte kzalloc'd private area
    expect(out.busy).toBe(-EBUSY)
    expect(out.beyond).toBe(-ENODEV)
    expect(out.noId).toEqual([1, 'MyCard', { mine: true }])
    expect(out.r).toBe(0)
    expect(pcmUser(sys).cards().map((c) => c.id)).toEqual(['Same', 'MyCard', 'Same_1'])
    await sys.run(async () => {
      for (const c of out.cards) await snd_card_free(c)
    })
    m.detach()
    expect(sys.reports).toEqual([]) // the private area was kfree'd with its card
  })

  it('every slot taken: snd_card_new returns -ENODEV', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('m0')
    const r = await sys.run(async () => {
      const cards = Array.from({ length: SNDRV_CARDS }, () => snd_card_new(m.dev, -1, null, null, 0) as SndCard)
      const extra = snd_card_new(m.dev, -1, null, null, 0)
      for (const c of cards) await snd_card_free(c)
      return extra
    })
    expect(r).toBe(-ENODEV)
  })

  it('snd_pcm_new: -EBUSY for a device number in use, -EINVAL for bad counts; snd_pcm_set_ops checks the ops', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('m0')
    const r = await sys.run(async () => {
      const card = snd_card_new(m.dev, -1, 'X', null, 0) as SndCard
      const p0 = snd_pcm_new(card, 'p', 0, 1, 0)
      const again = snd_pcm_new(card, 'p', 0, 1, 0)
      const badCount = snd_pcm_new(card, 'p', 1, -1, 0)
      const badDev = snd_pcm_new(card, 'p', 99, 1, 0)
      await snd_card_free(card)
      return { p0: IS_ERR(p0), again, badCount, badDev }
    })
    expect(r).toEqual({ p0: false, again: -EBUSY, badCount: -EINVAL, badDev: -EINVAL })
    await expect(
      sys.run(() => {
        const card = snd_card_new(m.dev, -1, 'Y', null, 0) as SndCard
        const p = snd_pcm_new(card, 'p', 0, 1, 0)
        if (IS_ERR(p)) return
        snd_pcm_set_ops(p, SNDRV_PCM_STREAM_PLAYBACK, { open: () => Promise.resolve(0) } as unknown as SndPcmOps)
      }),
    ).rejects.toThrow(/snd_pcm_set_ops: argument 'ops.close' must be a function/)
  })

  it('a card the driver does not free is a leak at unbind, and so are its DMA buffers', async () => {
    const { sys, d } = await rig({ bug: 'no-card-free' })
    await dummyPcmDel(sys, d)
    const leaks = sys.reports.filter((r) => r.kind === 'leak')
    expect(leaks.map((r) => r.message)).toEqual([
      expect.stringMatching(/sound card 0 \(Dummy\) was not freed when its driver was unbound: call snd_card_free\(\) in remove/),
      expect.stringMatching(/device driver has pending DMA allocations while released from device \[count=2\]/),
    ])
    expect(leaks[0]!.device).toBe(d.dma.name)
  })

  it('snd_devm_card_new: devres frees the card and its buffers at unbind', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('m0')
    await sys.run(() => {
      const card = snd_devm_card_new(m.dev, -1, 'Devm', null, 0) as SndCard
      const p = snd_pcm_new(card, 'p', 0, 1, 1)
      if (IS_ERR(p)) throw new Error('snd_pcm_new')
      snd_pcm_set_managed_buffer_all(p, SNDRV_DMA_TYPE_DEV, m.dev, 16384, 65536)
      snd_card_register(card)
    })
    expect(m.dev.entries.size).toBe(2)
    // devres runs at unbind, in the unbind task here; the test master has none: release it in a task.
    await sys.run(() => {
      for (const r of m.dev.devres.splice(0).reverse()) r.release()
    })
    expect(m.dev.entries.size).toBe(0)
    m.detach()
    expect(sys.reports).toEqual([])
    expect(pcmUser(sys).cards()).toEqual([])
  })

  it('snd_card_free waits for open files: the harness closes a handle whose card goes away', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.write(h, ramp(4096, 4))).toBe(4096) // running
    await dummyPcmDel(sys, d) // snd_card_free: disconnect, the handle is closed, then the card is freed
    expect(h.closed).toBe(true)
    expect(h.state).toBe('CLOSED')
    await expect(pcm.write(h, ramp(4, 4))).rejects.toThrow(/argument 'handle' is closed/)
    expect(sys.reports).toEqual([])
    expect(d.calls.map((c) => c.what)).toContain('close')
  })
})

describe('the state machine', () => {
  it('open -> hw_params -> prepare -> start -> running -> drain -> close, the driver callbacks in order and in their contexts', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', null)
    expect(h.state).toBe('OPEN')
    expect(h.config).toBeNull()
    expect(await pcm.hwParams(h, { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 })).toBe(0)
    expect(h.state).toBe('SETUP')
    expect(h.config).toMatchObject({ format: SNDRV_PCM_FORMAT_S16_LE, formatName: 'S16_LE', rate: 48000, channels: 2, periodFrames: 1024, periods: 4, bufferFrames: 4096, frameBytes: 4, periodBytes: 4096, bufferBytes: 16384, startThreshold: 1, stopThreshold: 4096, availMin: 1024 })
    expect(h.config!.boundary).toBe(2 ** 30) // the largest buffer_size * 2^n that stays below 2^31 - buffer_size
    expect(await pcm.prepare(h)).toBe(0)
    expect(h.state).toBe('PREPARED')
    expect(await pcm.swParams(h, { startThreshold: 4096 })).toBe(0)
    expect(await pcm.write(h, ramp(2048, 4))).toBe(2048)
    expect(h.state).toBe('PREPARED') // below startThreshold
    expect(await pcm.start(h)).toBe(0)
    expect(h.state).toBe('RUNNING')
    expect(await pcm.start(h)).toBe(-EBADFD)
    const data = ramp(8192, 4)
    expect(await pcm.write(h, data)).toBe(8192) // sleeps for room, woken by snd_pcm_period_elapsed
    const st = await pcm.status(h)
    expect(st).toMatchObject({ state: 'RUNNING', applPtr: 10240, xruns: 0 })
    expect(st.hwPtr).toBeGreaterThanOrEqual(10240 - 4096)
    expect(st.avail).toBe(4096 - (st.applPtr - st.hwPtr))
    expect(st.delay).toBe(st.applPtr - st.hwPtr)
    expect(await pcm.drain(h)).toBe(0)
    expect(h.state).toBe('SETUP')
    await pcm.close(h)
    expect(h.closed).toBe(true)
    const seq = d.calls.map((c) => c.what)
    expect(seq).toEqual(['open', 'hw_params', 'prepare', `trigger ${SNDRV_PCM_TRIGGER_START}`, `trigger ${SNDRV_PCM_TRIGGER_STOP}`, 'sync_stop', 'hw_free', 'close'])
    for (const c of d.calls) {
      if (c.what === `trigger ${SNDRV_PCM_TRIGGER_START}`) expect(c).toMatchObject({ context: 'process', atomic: true }) // stream lock held, IRQs off
      else if (c.what === `trigger ${SNDRV_PCM_TRIGGER_STOP}`) expect(c).toMatchObject({ context: 'softirq', atomic: true }) // the drain ends in snd_pcm_period_elapsed, from the timer
      else expect(c).toMatchObject({ context: 'process', atomic: false })
    }
    // What the hardware played is what was written, in order.
    const played = d.played()
    expect(played.subarray(0, 10240 * 4)).toEqual(new Uint8Array([...ramp(2048, 4), ...data]))
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('auto-start at startThreshold (alsa-lib default: the whole buffer), drop, prepare again, pause and release', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(h.config!.startThreshold).toBe(4096)
    expect(await pcm.write(h, ramp(4095, 4))).toBe(4095)
    expect(h.state).toBe('PREPARED')
    expect(await pcm.write(h, ramp(1, 4))).toBe(1)
    expect(h.state).toBe('RUNNING')
    expect(await pcm.pause(h, true)).toBe(0)
    expect(h.state).toBe('PAUSED')
    const before = await pcm.status(h)
    await sys.runFor(200e6)
    const during = await pcm.status(h)
    expect(during.hwPtr).toBe(before.hwPtr) // nothing plays while paused
    expect(during.state).toBe('PAUSED')
    expect(await pcm.pause(h, false)).toBe(0)
    expect(h.state).toBe('RUNNING')
    expect(await pcm.drop(h)).toBe(0)
    expect(h.state).toBe('SETUP')
    expect(await pcm.write(h, ramp(4, 4))).toBe(-EBADFD)
    expect(await pcm.prepare(h)).toBe(0)
    expect((await pcm.status(h)).applPtr).toBe(0)
    await pcm.close(h)
    const triggers = pcm.stats(0, 0, 'playback').triggers
    expect(triggers).toEqual([SNDRV_PCM_TRIGGER_START, SNDRV_PCM_TRIGGER_PAUSE_PUSH, SNDRV_PCM_TRIGGER_PAUSE_RELEASE, SNDRV_PCM_TRIGGER_STOP])
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('pause without SNDRV_PCM_INFO_PAUSE is -ENOSYS; calls in the wrong state are -EBADFD', async () => {
    const { sys, d, pcm } = await rig({ hw: { info: 0x101 } })
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.pause(h, true)).toBe(-38)
    expect(await pcm.drain(h)).toBe(0) // nothing queued: nothing to play, SETUP
    expect(h.state).toBe('SETUP')
    expect(await pcm.hwFree(h)).toBe(0)
    expect(h.state).toBe('OPEN')
    expect(await pcm.prepare(h)).toBe(-EBADFD)
    expect(await pcm.drop(h)).toBe(-EBADFD)
    expect(await pcm.hwFree(h)).toBe(-EBADFD)
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })

  it('every substream open: -EBUSY; the second substream is used when the first is open', async () => {
    const { sys, d, pcm } = await rig({ playback: 2 })
    const a = await pcm.open(0, 0, 'playback', PARAMS)
    const b = await pcm.open(0, 0, 'playback', PARAMS)
    expect([a.subdevice, b.subdevice]).toEqual([0, 1])
    expect(pcm.cards()[0]!.devices[0]!.playback.open).toBe(2)
    const e = await pcm.open(0, 0, 'playback', PARAMS).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(PcmError)
    expect((e as PcmError).errno).toBe(-EBUSY)
    await pcm.close(a)
    await pcm.close(b)
    await dummyPcmDel(sys, d)
  })

  it('capture: read starts the stream; what it reads is what the hardware wrote, frame after frame', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'capture', { ...PARAMS, periodFrames: 480 })
    expect(h.config!.startThreshold).toBe(1)
    const r = await pcm.read(h, 4800)
    expect(r).toBeInstanceOf(Uint8Array)
    const frames = dummyFrameNumbers(r as Uint8Array, 4)
    expect(frames).toEqual(Array.from({ length: 4800 }, (_, i) => i))
    expect(h.state).toBe('RUNNING')
    await pcm.close(h)
    const rec = await pcm.record(0, 0, 9600, { ...PARAMS, periodFrames: 960 })
    expect(rec).toMatchObject({ frames: 9600, xruns: 0, error: 0 })
    expect(rec.data.subarray(0, 4)).toEqual(dummyFrame(0, 4))
    expect(dummyFrameNumbers(rec.data, 4).every((n, i) => n === i)).toBe(true)
    expect(rec.durationNs).toBeGreaterThan(195e6) // 9600 frames at 48 kHz (the dummy's clock starts at the jiffy)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('capture drain: the stream stops at once and stays DRAINING while frames are left; reads then fail (-EBADFD), as in Linux', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'capture', PARAMS)
    expect(await pcm.start(h)).toBe(0)
    await sys.runFor(50e6)
    expect(await pcm.drain(h)).toBe(0)
    expect(h.state).toBe('DRAINING')
    const st = await pcm.status(h)
    expect(st.avail).toBeGreaterThan(2000)
    await sys.runFor(50e6)
    expect((await pcm.status(h)).avail).toBe(st.avail) // the hardware stopped
    expect(await pcm.read(h, 1024)).toBe(-EBADFD)
    expect(await pcm.drop(h)).toBe(0)
    expect(h.state).toBe('SETUP')
    await pcm.close(h)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('play: the whole buffer period by period, then drain; virtual duration = the audio duration', async () => {
    const { sys, d, pcm } = await rig()
    const data = ramp(48000, 4)
    const r = await pcm.play(0, 0, data, PARAMS)
    expect(r).toMatchObject({ frames: 48000, xruns: 0, error: 0 })
    expect(r.durationNs).toBeGreaterThan(1e9)
    expect(r.durationNs).toBeLessThan(1.1e9)
    expect(r.periodsElapsed).toBeGreaterThanOrEqual(46)
    expect(d.played().subarray(0, data.length)).toEqual(data)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })
})

describe('hw constraints', () => {
  it('left-out parameters are chosen near the defaults and within the hardware limits', async () => {
    const { sys, d, pcm } = await rig({ hw: { channels_min: 1, channels_max: 1, rate_min: 8000, rate_max: 44100, rates: 0x7e } })
    const h = await pcm.open(0, 0, 'playback', {})
    expect(h.config).toMatchObject({ formatName: 'S16_LE', channels: 1, rate: 44100, periods: 4 })
    expect(h.config!.periodFrames).toBe(882) // ~20 ms
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })

  it('a configuration the hardware refuses: -EINVAL, and the reason names the parameter and the constraint', async () => {
    const { sys, d, pcm } = await rig({
      hw: { formats: 1n << 2n, channels_max: 2 },
      constraints: (rt) => {
        snd_pcm_hw_constraint_step(rt, 0, SNDRV_PCM_HW_PARAM_PERIOD_BYTES, 128)
        snd_pcm_hw_constraint_pow2(rt, 0, SNDRV_PCM_HW_PARAM_BUFFER_BYTES)
        snd_pcm_hw_constraint_list(rt, 0, SNDRV_PCM_HW_PARAM_RATE, { count: 2, list: [44100, 48000], mask: 0 })
        snd_pcm_hw_constraint_minmax(rt, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, 64, 4096)
      },
    })
    const reason = async (p: object) => {
      const e = await pcm.open(0, 0, 'playback', p).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(PcmError)
      expect((e as PcmError).errno).toBe(-EINVAL)
      return (e as PcmError).reason
    }
    expect(await reason({ ...PARAMS, format: 'S32_LE' })).toBe('hw_params: format S32_LE is not supported (supported: S16_LE) (runtime->hw.formats)')
    expect(await reason({ ...PARAMS, channels: 6 })).toBe('hw_params: channels 6 is outside [1, 2] (runtime->hw.channels_min/max)')
    expect(await reason({ ...PARAMS, periodFrames: 1000 })).toBe('hw_params: period_bytes 4000 is not a multiple of 128 (snd_pcm_hw_constraint_step)')
    expect(await reason({ ...PARAMS, periodFrames: 1024, periods: 3 })).toBe('hw_params: buffer_bytes 12288 is not a power of two (snd_pcm_hw_constraint_pow2)')
    expect(await reason({ ...PARAMS, rate: 32000 })).toBe('hw_params: rate 32000 is not one of 44100, 48000 (snd_pcm_hw_constraint_list)')
    expect(await reason({ ...PARAMS, periodFrames: 32 })).toBe('hw_params: period_size 32 is outside [64, 4096] (snd_pcm_hw_constraint_minmax)')
    expect(await reason({ ...PARAMS, periodFrames: 4096, periods: 64 })).toBe('hw_params: buffer_bytes 1048576 is outside [64, 65536] (the preallocated buffer (substream->buffer_bytes_max))')
    // Within every constraint: fine; what is left out is chosen to fit.
    const h = await pcm.open(0, 0, 'playback', { rate: 44100 })
    expect(h.config).toMatchObject({ rate: 44100, periods: 4 })
    expect(h.config!.periodBytes % 128).toBe(0)
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })

  it('periods are whole (snd_pcm_hw_constraint_integer), and a driver rule refuses what it empties', async () => {
    const { sys, d, pcm } = await rig({
      constraints: (rt) => {
        snd_pcm_hw_rule_add(rt, 0, SNDRV_PCM_HW_PARAM_RATE, (params) => snd_interval_refine(hw_param_interval(params, SNDRV_PCM_HW_PARAM_RATE), { min: 8000, max: 16000, openmin: false, openmax: false, integer: true, empty: false }), null, SNDRV_PCM_HW_PARAM_RATE)
      },
    })
    const e = await pcm.open(0, 0, 'playback', PARAMS).catch((x: unknown) => x)
    expect((e as PcmError).reason).toBe("hw_params: rate is refused by the driver's rule (snd_pcm_hw_rule_add: -22)")
    const h = await pcm.open(0, 0, 'playback', { ...PARAMS, rate: 16000 })
    expect(h.state).toBe('PREPARED')
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })
})

describe('buffer memory', () => {
  it('the ring is coherent DMA memory of the card device: the preallocated buffer, which also bounds the buffer size', async () => {
    const { sys, d, pcm } = await rig({ prealloc: 16384, maxBuffer: 262144, capture: 0 })
    const entries = () => d.dma.dev.entries.all().map((e) => ({ type: e.type, size: e.size }))
    expect(entries()).toEqual([{ type: 'coherent', size: 16384 }]) // the preallocation
    const h = await pcm.open(0, 0, 'playback', PARAMS) // 16 KiB: the preallocated buffer
    expect(entries()).toEqual([{ type: 'coherent', size: 16384 }])
    expect(h._sub.runtime!.dma_bytes).toBe(16384)
    await pcm.close(h)
    // As in Linux, a preallocated buffer is the largest buffer (substream->buffer_bytes_max).
    const e = await pcm.open(0, 0, 'playback', { ...PARAMS, periods: 16 }).catch((x: unknown) => x)
    expect((e as PcmError).reason).toMatch(/buffer_bytes 65536 is outside \[64, 16384\] \(the preallocated buffer/)
    await dummyPcmDel(sys, d)
    expect(d.dma.dev.entries.size).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('without preallocation the PCM core allocates the buffer at hw_params (up to max) and frees it at hw_free', async () => {
    const { sys, d, pcm } = await rig({ prealloc: 0, maxBuffer: 262144, capture: 0 })
    const entries = () => d.dma.dev.entries.all().map((e) => ({ type: e.type, size: e.size }))
    expect(entries()).toEqual([])
    const big = await pcm.open(0, 0, 'playback', { ...PARAMS, periods: 16, startThreshold: 1 }) // 64 KiB
    expect(entries()).toEqual([{ type: 'coherent', size: 65536 }])
    expect(await pcm.write(big, ramp(1000, 4))).toBe(1000)
    await sys.runFor(30e6)
    expect(d.counters.dmaReads).toBeGreaterThan(0) // the device read the ring by DMA
    expect(await pcm.drop(big)).toBe(0)
    expect(await pcm.hwFree(big)).toBe(0)
    expect(entries()).toEqual([])
    expect(await pcm.hwParams(big, { ...PARAMS, periods: 8 })).toBe(0) // 32 KiB this time
    expect(entries()).toEqual([{ type: 'coherent', size: 32768 }])
    await pcm.close(big) // close: hw_free, the buffer goes
    expect(entries()).toEqual([])
    await dummyPcmDel(sys, d)
    expect(d.dma.dev.entries.size).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('an odd buffer size is page-aligned in memory; the ring is cleared at hw_params', async () => {
    const { sys, d, pcm } = await rig({ prealloc: 0, capture: 0 })
    const h = await pcm.open(0, 0, 'playback', { rate: 8000, channels: 1, format: 'U8', periodFrames: 100, periods: 3, startThreshold: 300 })
    expect(d.dma.dev.entries.all().map((e) => e.size)).toEqual([PAGE_SIZE])
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })
})

describe('platforms and determinism', () => {
  it.each(ARCHES)('play and record are right and silent on %s', async (arch) => {
    const { sys, d, pcm } = await rig({}, { arch })
    const data = ramp(9600, 4)
    const r = await pcm.play(0, 0, data, PARAMS)
    expect(r.xruns).toBe(0)
    expect(d.played().subarray(0, data.length)).toEqual(data)
    const rec = await pcm.record(0, 0, 4800, PARAMS)
    expect(dummyFrameNumbers(rec.data, 4).every((n, i) => n === i)).toBe(true)
    await dummyPcmDel(sys, d)
    expect(sys.reports).toEqual([])
  })

  it('the same seed gives the same run, byte for byte', async () => {
    const once = async () => {
      const { sys, d, pcm } = await rig({ lostIrqEvery: 4 }, { seed: 7 })
      const h = await pcm.open(0, 0, 'playback', { ...PARAMS, periodFrames: 333, periods: 5 })
      const results: unknown[] = []
      for (let i = 0; i < 6; i++) {
        results.push(await pcm.write(h, ramp(700, 4, i + 1)))
        results.push(await pcm.status(h))
        await sys.runFor(3e6 * i)
      }
      await pcm.close(h)
      const out = { results, played: Array.from(d.played()), stats: pcm.stats(0, 0, 'playback'), clock: sys.clock, cpu: sys.cpu }
      await dummyPcmDel(sys, d)
      return out
    }
    const a = await once()
    const b = await once()
    expect(a).toEqual(b)
  })
})

