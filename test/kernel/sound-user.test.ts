// kernel/sound: bad input — the harness's ALSA client throws an InvalidArgumentError naming the
// argument and changes nothing; kernel calls with impossible arguments oops naming them.
import { describe, expect, it } from 'vitest'
import {
  DmalabError,
  InvalidArgumentError,
  KernelOops,
  SNDRV_DMA_TYPE_DEV,
  SNDRV_PCM_STREAM_PLAYBACK,
  boot,
  pcmUser,
  snd_card_new,
  snd_pcm_hw_constraint_integer,
  snd_pcm_new,
  snd_pcm_period_elapsed,
  snd_pcm_set_managed_buffer_all,
  snd_pcm_set_ops,
  type SndCard,
  type SndPcm,
  type SndPcmOps,
  type SndPcmRuntime,
  type SndPcmSubstream,
} from '../../kernel/index.js'
import type { Device } from '../../kernel/base/device.js'
import { dummyPcmAdd, dummyPcmDel } from '../fixtures/dummy-pcm.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 } as const

async function rig() {
  const sys = boot({ log: 'silent' })
  const d = await dummyPcmAdd(sys)
  return { sys, d, pcm: pcmUser(sys) }
}

function argError(fn: () => unknown, argument: string, problem: RegExp): void {
  let err: unknown
  try {
    fn()
  } catch (e) {
    err = e
  }
  expect(err).toBeInstanceOf(InvalidArgumentError)
  expect((err as InvalidArgumentError).argument).toBe(argument)
  expect((err as Error).message).toMatch(problem)
}

async function argRejects(p: Promise<unknown>, argument: string, problem: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(InvalidArgumentError)
  expect((err as InvalidArgumentError).argument).toBe(argument)
  expect((err as Error).message).toMatch(problem)
}

describe('the harness: bad input names the argument and changes nothing', () => {
  it('pcmUser wants a system; it is one per system', async () => {
    argError(() => pcmUser({} as never), 'sys', /must be a System from boot\(\)/)
    const { sys } = await rig()
    expect(pcmUser(sys)).toBe(pcmUser(sys))
  })

  it('open: the card, device, stream, parameters and options', async () => {
    const { sys, d, pcm } = await rig()
    await argRejects(pcm.open(5, 0, 'playback'), 'card', /5 is not a registered card of sys\d+ \(cards: 0 \(Dummy\)\)/)
    await argRejects(pcm.open('Nope', 0, 'playback'), 'card', /'Nope' is not a registered card/)
    await argRejects(pcm.open(1.5, 0, 'playback'), 'card', /must be a card number or id/)
    await argRejects(pcm.open('Dummy', 3, 'playback'), 'device', /card 0 \(Dummy\) has no PCM device 3 \(devices: 0\)/)
    await argRejects(pcm.open(0, -1, 'playback'), 'device', /must be a PCM device number/)
    await argRejects(pcm.open(0, 0, 'both' as never), 'stream', /must be 'playback' or 'capture'/)
    await argRejects(pcm.open(0, 0, 'playback', { rate: 48000, bogus: 1 } as never), 'params.bogus', /is not a parameter \(parameters: format, rate, channels/)
    await argRejects(pcm.open(0, 0, 'playback', { format: 'S17_LE' }), 'params.format', /must be a PCM format/)
    await argRejects(pcm.open(0, 0, 'playback', { format: 99 }), 'params.format', /must be a PCM format/)
    await argRejects(pcm.open(0, 0, 'playback', { rate: 44100.5 }), 'params.rate', /must be an integer from 1 to 1000000, got 44100.5/)
    await argRejects(pcm.open(0, 0, 'playback', { channels: 0 }), 'params.channels', /from 1 to 256/)
    await argRejects(pcm.open(0, 0, 'playback', { periodFrames: '1024' as never }), 'params.periodFrames', /got '1024'/)
    await argRejects(pcm.open(0, 0, 'playback', { startThreshold: -1 }), 'params.startThreshold', /integer from 0/)
    await argRejects(pcm.open(0, 0, 'playback', [] as never), 'params', /must be an object, got an array/)
    await argRejects(pcm.open(0, 0, 'playback', {}, { nonblock: 1 } as never), 'opts.nonblock', /must be a boolean/)
    await argRejects(pcm.open(0, 0, 'playback', {}, { wait: true } as never), 'opts.wait', /is not an option/)
    // Nothing was opened.
    expect(pcm.cards()[0]!.devices[0]!.playback.open).toBe(0)
    expect(pcm.handles).toEqual([])
    expect(d.calls).toEqual([])
    await dummyPcmDel(sys, d)
  })

  it('write, read, and the other calls: handles, data and arguments', async () => {
    const { sys, d, pcm } = await rig()
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    const c = await pcm.open(0, 0, 'capture', PARAMS)
    await argRejects(pcm.write(h, [1, 2, 3, 4] as never), 'data', /must be a Uint8Array, got an array/)
    await argRejects(pcm.write(h, new Uint8Array(6)), 'data', /is 6 bytes: not a whole number of 4-byte frames \(2 x S16_LE\)/)
    await argRejects(pcm.write(c, new Uint8Array(4)), 'handle', /is a capture handle: read from it/)
    await argRejects(pcm.write(h, new Uint8Array(4), { later: true } as never), 'opts.later', /is not an option/)
    await argRejects(pcm.write({} as never, new Uint8Array(4)), 'handle', /must be a PcmHandle from pcm.open\(\)/)
    await argRejects(pcm.read(h, 10), 'handle', /is a playback handle: write to it/)
    await argRejects(pcm.read(c, -1), 'frames', /must be an integer from 0/)
    await argRejects(pcm.read(c, 2.5), 'frames', /got 2.5/)
    await argRejects(pcm.writeSilence(h, -3), 'frames', /non-negative integer/)
    await argRejects(pcm.pause(h, 'yes' as never), 'enable', /must be a boolean/)
    await argRejects(pcm.recover(h, 'EPIPE' as never), 'err', /must be a negative errno/)
    await argRejects(pcm.swParams(h, { rate: 44100 } as never), 'params.rate', /is not a parameter \(parameters: startThreshold/)
    await argRejects(pcm.hwParams(h, { startThreshold: 1 }), 'params.startThreshold', /is not a parameter/)
    argError(() => pcm.xrunDebug(0, 0, 'playback', 8), 'mask', /XRUN_DEBUG_BASIC \(1\), _STACK \(2\) and _JIFFIESCHECK \(4\)/)
    argError(() => pcm.stats(0, 0, 'playback', 3), 'subdevice', /must be from 0 to 0, got 3/)
    await argRejects(pcm.play(0, 0, 'sound' as never), 'data', /must be a Uint8Array/)
    await argRejects(pcm.record(0, 0, -5), 'frames', /must be an integer from 0/)
    // A call in flight holds the handle: another call on it is refused.
    const w = pcm.write(h, new Uint8Array(8 * 4096))
    await argRejects(pcm.status(h), 'handle', /has a write in progress: await it first/)
    expect(await w).toBe(8192)
    // State intact: the stream runs on.
    const st = await pcm.status(h)
    expect(st).toMatchObject({ state: 'RUNNING', applPtr: 8192 })
    expect(await pcm.write(h, new Uint8Array(4096))).toBe(1024)
    // Closed handles and handles of another system.
    await pcm.close(h)
    await pcm.close(h) // twice: nothing
    await argRejects(pcm.drain(h), 'handle', /is closed/)
    const other = await rig()
    const oh = await other.pcm.open(0, 0, 'playback', PARAMS)
    await argRejects(pcm.write(oh, new Uint8Array(4)), 'handle', /belongs to another system/)
    await other.pcm.close(oh)
    await pcm.close(c)
    // play checks the data against the configuration it opened, and closes again.
    await argRejects(pcm.play(0, 0, new Uint8Array(3), PARAMS), 'data', /is 3 bytes: not a whole number of 4-byte frames/)
    await dummyPcmDel(sys, d)
    expect(pcm.handles).toEqual([])
    expect(sys.reports).toEqual([])
  })

  it('calls from inside a task of the system are refused (as sys.run)', async () => {
    const { sys, pcm } = await rig()
    const err = await sys.run(async () => pcm.open(0, 0, 'playback').catch((e: unknown) => e))
    expect(err).toBeInstanceOf(DmalabError)
    expect((err as Error).message).toBe('pcm.open() called from inside a task: user-space calls are made from test code, not from kernel code')
    await sys.run(() => {
      expect(() => pcm.cards()).toThrow(/pcm.cards\(\) called from inside a task/)
    })
  })

  it('a PcmError for what the kernel refuses, with the errno', async () => {
    const { sys, d, pcm } = await rig()
    const e = await pcm.open(0, 0, 'playback', { ...PARAMS, channels: 9 }).catch((x: unknown) => x)
    expect(e).toMatchObject({ name: 'PcmError', errno: -22, reason: 'hw_params: channels 9 is outside [1, 8] (runtime->hw.channels_min/max)' })
    expect((e as Error).message).toBe('pcm.open: hw_params: channels 9 is outside [1, 8] (runtime->hw.channels_min/max) (-22)')
    expect(pcm.handles).toEqual([])
    expect(d.calls.map((c) => c.what)).toEqual(['open', 'close']) // refused before the driver's hw_params
    await dummyPcmDel(sys, d)
  })
})

describe('kernel calls: impossible arguments oops, naming them', () => {
  const oops = async (fn: (dev: Device) => unknown, argument: string, problem: RegExp) => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('m0')
    const err = await sys.run(() => fn(m.dev)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KernelOops)
    const cause = (err as KernelOops).cause
    expect(cause).toBeInstanceOf(InvalidArgumentError)
    expect((cause as InvalidArgumentError).argument).toBe(argument)
    expect((cause as Error).message).toMatch(problem)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
  }
  const card = (dev: Device) => snd_card_new(dev, -1, 'X', null, 0) as SndCard
  const pcmOf = (dev: Device) => snd_pcm_new(card(dev), 'x', 0, 1, 1) as SndPcm

  it('snd_card_new', async () => {
    await oops(() => snd_card_new({} as Device, -1, null, null, 0), 'parent', /must be a struct device/)
    await oops((dev) => snd_card_new(dev, -2, null, null, 0), 'idx', /card index or SNDRV_DEFAULT_IDX1/)
    await oops((dev) => snd_card_new(dev, -1, 5 as never, null, 0), 'xid', /string or SNDRV_DEFAULT_STR1/)
    await oops((dev) => snd_card_new(dev, -1, null, null, -8), 'extra_size', /impossible size/)
  })

  it('snd_pcm_new, snd_pcm_set_ops, snd_pcm_set_managed_buffer_all', async () => {
    await oops(() => snd_pcm_new({} as SndCard, 'x', 0, 1, 0), 'card', /must be a card from snd_card_new/)
    await oops((dev) => snd_pcm_set_ops(pcmOf(dev), 7, {} as SndPcmOps), 'direction', /SNDRV_PCM_STREAM_PLAYBACK or _CAPTURE, got 7/)
    await oops((dev) => snd_pcm_set_ops(pcmOf(dev), SNDRV_PCM_STREAM_PLAYBACK, null as never), 'ops', /snd_pcm_ops object/)
    await oops((dev) => snd_pcm_set_managed_buffer_all(pcmOf(dev), SNDRV_DMA_TYPE_DEV, null, 4096, 0), 'data', /the struct device that does the DMA/)
    await oops((dev) => snd_pcm_set_managed_buffer_all(pcmOf(dev), 42, dev, 4096, 0), 'type', /must be SNDRV_DMA_TYPE_DEV/)
    await oops((dev) => snd_pcm_set_managed_buffer_all(pcmOf(dev), SNDRV_DMA_TYPE_DEV, dev, -1, 0), 'size', /impossible size/)
  })

  it('snd_pcm_period_elapsed and the constraints', async () => {
    await oops(() => snd_pcm_period_elapsed({} as SndPcmSubstream), 'substream', /must be a snd_pcm_substream/)
    await oops(() => snd_pcm_hw_constraint_integer({} as SndPcmRuntime, 15), 'runtime', /must be substream.runtime/)
  })
})
