// kernel/sound: the contexts of a PCM driver's callbacks — trigger and pointer atomic (the stream
// lock held, interrupts off, or the hard-IRQ handler calling snd_pcm_period_elapsed), open,
// hw_params, prepare and close in process context — what happens when a driver gets them wrong,
// and a PCI driver's card at unbind.
import { describe, expect, it } from 'vitest'
import {
  IRQ_HANDLED,
  IRQ_NONE,
  IS_ERR,
  KernelOops,
  SNDRV_DMA_TYPE_DEV,
  SNDRV_PCM_FMTBIT_S16_LE,
  SNDRV_PCM_INFO_INTERLEAVED,
  SNDRV_PCM_RATE_48000,
  SNDRV_PCM_STREAM_PLAYBACK,
  SNDRV_PCM_TRIGGER_START,
  boot,
  free_irq,
  ktime_get_ns,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  pci_set_master,
  pcmUser,
  ptr_add,
  readl,
  request_irq,
  snd_card_free,
  snd_card_new,
  snd_card_register,
  snd_pcm_new,
  snd_pcm_period_elapsed,
  snd_pcm_set_managed_buffer_all,
  snd_pcm_set_ops,
  snd_pcm_substream_chip,
  spin_lock,
  spin_lock_init,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_irqrestore,
  writel,
  type IoAddr,
  type PciDriver,
  type SndCard,
  type SndPcmOps,
  type SndPcmSubstream,
  type SpinLock,
  type System,
} from '../../kernel/index.js'
import { currentOrNull } from '../../kernel/sched/current.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { dummyPcmAdd, dummyPcmDel } from '../fixtures/dummy-pcm.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 } as const
const PERIOD_NS = (1024 / 48000) * 1e9
const ramp = (frames: number) => new Uint8Array(frames * 4).map((_, i) => (i * 5 + 1) & 0xff)

describe('trigger and pointer are atomic', () => {
  it('a trigger that sleeps: invalid-context ("with interrupts disabled"), and the stream goes on', async () => {
    const sys = boot({ log: 'silent' })
    const d = await dummyPcmAdd(sys, { bug: 'sleep-in-trigger' })
    const r = await pcmUser(sys).play(0, 0, ramp(4800), PARAMS)
    expect(r.error).toBe(0)
    expect(sys.reports.map((x) => [x.kind, x.message])).toEqual([
      ['invalid-context', 'BUG: sleeping function called from invalid context: msleep() with interrupts disabled (in_atomic(): 1, irqs_disabled(): 1)'],
    ])
    expect(sys.reports[0]!.count).toBeGreaterThanOrEqual(2) // start and stop
    await dummyPcmDel(sys, d)
  })

  it('a pointer that sleeps: invalid-context at every call (process context with IRQs off, the timer)', async () => {
    const sys = boot({ log: 'silent' })
    const d = await dummyPcmAdd(sys, { bug: 'sleep-in-pointer' })
    await pcmUser(sys).play(0, 0, ramp(4800), PARAMS)
    expect(sys.reports.map((x) => x.kind)).toEqual(['invalid-context']) // one site, counted
    expect(sys.reports[0]!.message).toMatch(/^BUG: sleeping function called from invalid context: msleep\(\) (with interrupts disabled|in softirq context)/)
    expect(sys.reports[0]!.count).toBeGreaterThan(5)
    await dummyPcmDel(sys, d)
  })

  it('an async trigger: invalid-context, the start fails and the writer times out', async () => {
    const sys = boot({ log: 'silent' })
    const d = await dummyPcmAdd(sys, { bug: 'async-trigger' })
    const pcm = pcmUser(sys)
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.write(h, ramp(4096))).toBe(4096)
    expect(h.state).toBe('PREPARED') // START failed
    expect(await pcm.start(h)).toBe(-5)
    expect(sys.reports[0]).toMatchObject({ kind: 'invalid-context', message: expect.stringMatching(/^BUG: trigger returned a Promise: the PCM core calls it in atomic context/) as string })
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })

  it('a trigger that throws: an oops of that call only — the start fails (-EIO), the application and the system go on', async () => {
    const sys = boot({ log: 'silent' })
    const d = await dummyPcmAdd(sys, { bug: 'throw-in-trigger' })
    const pcm = pcmUser(sys)
    const h = await pcm.open(0, 0, 'playback', { ...PARAMS, startThreshold: 100000 })
    expect(await pcm.write(h, ramp(1024))).toBe(1024)
    expect(await pcm.start(h)).toBe(-5)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    expect(sys.reports[0]!.message).toMatch(/^Oops: TypeError: Cannot set properties of null .* \(uncaught in trigger, task aplay\/\d+\)$/)
    expect(h.state).toBe('PREPARED')
    await pcm.close(h)
    await dummyPcmDel(sys, d)
  })
})

/** A card whose playback ops are `ops`, on a test master; returns after register. */
async function bareCard(sys: System, ops: SndPcmOps): Promise<SndCard> {
  const m = sys.attachTestMaster('bare')
  return sys.run(() => {
    const card = snd_card_new(m.dev, -1, 'Bare', null, 0) as SndCard
    const p = snd_pcm_new(card, 'bare', 0, 1, 0)
    if (IS_ERR(p)) throw new Error('snd_pcm_new')
    snd_pcm_set_ops(p, SNDRV_PCM_STREAM_PLAYBACK, ops)
    snd_pcm_set_managed_buffer_all(p, SNDRV_DMA_TYPE_DEV, m.dev, 65536, 65536)
    snd_card_register(card)
    return card
  })
}

const HW = {
  info: SNDRV_PCM_INFO_INTERLEAVED,
  formats: SNDRV_PCM_FMTBIT_S16_LE,
  rates: SNDRV_PCM_RATE_48000,
  rate_min: 48000,
  rate_max: 48000,
  channels_min: 2,
  channels_max: 2,
  buffer_bytes_max: 65536,
  period_bytes_min: 256,
  period_bytes_max: 32768,
  periods_min: 2,
  periods_max: 32,
  fifo_size: 0,
}

describe('process-context callbacks', () => {
  it('open that oopses: pcm.open rejects with KernelOops, the substream is free again', async () => {
    const sys = boot({ log: 'silent' })
    let broken = true
    const calls: string[] = []
    await bareCard(sys, {
      open: (s) => {
        calls.push('open')
        if (broken) throw new TypeError('no chip')
        s.runtime!.hw = HW
        return Promise.resolve(0)
      },
      close: () => {
        calls.push('close')
        return Promise.resolve(0)
      },
      trigger: () => 0,
      pointer: () => 0,
    })
    const pcm = pcmUser(sys)
    await expect(pcm.open(0, 0, 'playback', PARAMS)).rejects.toBeInstanceOf(KernelOops)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    broken = false
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(h.state).toBe('PREPARED')
    await pcm.close(h)
    expect(calls).toEqual(['open', 'open', 'close'])
  })

  it('hw_params that oopses: the process dies, its file is released (the driver\'s close runs)', async () => {
    const sys = boot({ log: 'silent' })
    const calls: string[] = []
    await bareCard(sys, {
      open: (s) => {
        s.runtime!.hw = HW
        return Promise.resolve(0)
      },
      close: () => {
        calls.push('close')
        return Promise.resolve(0)
      },
      hw_params: () => {
        calls.push('hw_params')
        throw new RangeError('bad register')
      },
      trigger: () => 0,
      pointer: () => 0,
    })
    const pcm = pcmUser(sys)
    const h = await pcm.open(0, 0, 'playback', null)
    await expect(pcm.hwParams(h, PARAMS)).rejects.toBeInstanceOf(KernelOops)
    expect(h.closed).toBe(true)
    expect(calls).toEqual(['hw_params', 'close'])
    expect(pcm.cards()[0]!.devices[0]!.playback.open).toBe(0)
  })

  it('open, hw_params, prepare and close run in process context with interrupts enabled: they may sleep', async () => {
    const sys = boot({ log: 'silent' })
    const seen: string[] = []
    const note = (what: string): Promise<number> => {
      const t = currentOrNull()!
      seen.push(`${what}:${t.context}:${t.atomic}`)
      return Promise.resolve(0)
    }
    await bareCard(sys, {
      open: async (s) => {
        await note('open')
        s.runtime!.hw = HW
        return 0
      },
      close: () => note('close'),
      hw_params: () => note('hw_params'),
      hw_free: () => note('hw_free'),
      prepare: () => note('prepare'),
      trigger: () => {
        void note('trigger')
        return 0
      },
      pointer: () => 0,
    })
    const pcm = pcmUser(sys)
    const h = await pcm.open(0, 0, 'playback', { ...PARAMS, startThreshold: 100000 })
    expect(await pcm.write(h, ramp(1024))).toBe(1024)
    expect(await pcm.start(h)).toBe(0)
    await pcm.close(h)
    expect(seen).toEqual(['open:process:false', 'hw_params:process:false', 'prepare:process:false', 'trigger:process:true', 'trigger:process:true', 'hw_free:process:false', 'close:process:false'])
    expect(sys.reports).toEqual([])
  })
})

// ---------------------------------------------------------------------- a PCI driver with a real interrupt

interface Chip {
  regs: IoAddr
  card: SndCard
  lock: SpinLock
  sub: SndPcmSubstream | null
  t0: number
  contexts: Set<string>
}

/**
 * A PCI sound driver on the IRQ test device: the "hardware" position runs on virtual time from
 * trigger START; the test raises the device's interrupt at each period boundary, and the hard-IRQ
 * handler acks it and calls snd_pcm_period_elapsed.
 */
function irqPcmDriver(opts: { free: boolean; badLock?: boolean }): { drv: PciDriver; chips: Chip[] } {
  const chips: Chip[] = []
  const ops: SndPcmOps = {
    open: (s) => {
      const chip = snd_pcm_substream_chip<Chip>(s)
      chip.sub = s
      s.runtime!.hw = HW
      return Promise.resolve(0)
    },
    close: (s) => {
      snd_pcm_substream_chip<Chip>(s).sub = null
      return Promise.resolve(0)
    },
    prepare: (s) => {
      const chip = snd_pcm_substream_chip<Chip>(s)
      if (opts.badLock === true) {
        spin_lock(chip.lock) // BUG: the pointer takes this lock in hard-IRQ context: use spin_lock_irqsave
        spin_unlock(chip.lock)
      } else {
        const flags = spin_lock_irqsave(chip.lock)
        spin_unlock_irqrestore(chip.lock, flags)
      }
      return Promise.resolve(0)
    },
    trigger: (s, cmd) => {
      const chip = snd_pcm_substream_chip<Chip>(s)
      spin_lock(chip.lock)
      if (cmd === SNDRV_PCM_TRIGGER_START) chip.t0 = ktime_get_ns()
      spin_unlock(chip.lock)
      return 0
    },
    pointer: (s) => {
      const chip = snd_pcm_substream_chip<Chip>(s)
      chip.contexts.add(`${currentOrNull()!.context}:${currentOrNull()!.atomic}`)
      spin_lock(chip.lock)
      const rt = s.runtime!
      const pos = Math.floor(((ktime_get_ns() - chip.t0) * rt.rate) / 1e9) % rt.buffer_size
      spin_unlock(chip.lock)
      return pos
    },
  }
  const drv: PciDriver = {
    name: 'irq-pcm',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      const card = snd_card_new(pdev.dev, -1, 'IrqPcm', null, 0)
      if (IS_ERR(card)) return Promise.resolve(card)
      const chip: Chip = { regs: pci_iomap(pdev, 0)!, card, lock: spin_lock_init(), sub: null, t0: 0, contexts: new Set() }
      chips.push(chip)
      card.private_data = chip
      const pcm = snd_pcm_new(card, 'irq-pcm', 0, 1, 0)
      if (IS_ERR(pcm)) return Promise.resolve(pcm)
      pcm.private_data = chip
      snd_pcm_set_ops(pcm, SNDRV_PCM_STREAM_PLAYBACK, ops)
      snd_pcm_set_managed_buffer_all(pcm, SNDRV_DMA_TYPE_DEV, pdev.dev, 65536, 0)
      const handler = () => {
        const cause = readl(chip.regs)
        if (!cause) return IRQ_NONE
        writel(cause, ptr_add(chip.regs, 4))
        if (chip.sub !== null) snd_pcm_period_elapsed(chip.sub)
        return IRQ_HANDLED
      }
      const err = request_irq(pdev.irq, handler, 0, 'irq-pcm', chip)
      if (err) return Promise.resolve(err)
      card.sync_irq = pdev.irq
      card.shortname = 'IRQ PCM'
      return Promise.resolve(snd_card_register(card))
    },
    remove: async (pdev) => {
      const chip = chips.find((c) => c.card.dev === pdev.dev)!
      if (opts.free) await snd_card_free(chip.card)
      await free_irq(pdev.irq, chip)
    },
  }
  return { drv, chips }
}

async function irqRig(opts: { free: boolean; badLock?: boolean }) {
  const hw = new IrqTestDevice('irqdev0')
  const sys = boot({ log: 'silent', devices: [hw] })
  const { drv, chips } = irqPcmDriver(opts)
  await sys.run(() => pci_register_driver(drv))
  return { sys, hw, chips, pcm: pcmUser(sys) }
}

describe('snd_pcm_period_elapsed from a hard-IRQ handler', () => {
  it('the pointer runs in hard-IRQ context and in process context with IRQs off; a writer is woken by the interrupts; no report', async () => {
    const { sys, hw, chips, pcm } = await irqRig({ free: true })
    expect(pcm.cards()[0]).toMatchObject({ id: 'IrqPcm', parent: 'irqdev0' })
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    expect(await pcm.write(h, ramp(4096))).toBe(4096) // starts the stream
    for (let k = 1; k <= 12; k++) hw.fire(0, k * PERIOD_NS) // the hardware's period interrupts
    const t = sys.clock
    expect(await pcm.write(h, ramp(8192))).toBe(8192)
    expect(sys.clock - t).toBeGreaterThan(7 * PERIOD_NS)
    expect(sys.clock - t).toBeLessThan(8 * PERIOD_NS + 1e6)
    expect([...chips[0]!.contexts].sort()).toEqual(['hardirq:true', 'process:true'])
    expect(pcm.stats(0, 0, 'playback')).toMatchObject({ xruns: 0, hwPtrErrors: {} })
    await pcm.drop(h)
    await pcm.close(h)
    await sys.unbind(sys.pciDevice('irqdev0')!)
    expect(sys.reports).toEqual([]) // the stream lock: hard IRQ and IRQs-off process context, consistently
  })

  it('a driver lock taken in the pointer (hard IRQ) and, without irqsave, in prepare: lock-inconsistent', async () => {
    const { sys, hw, pcm } = await irqRig({ free: true, badLock: true })
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    await pcm.write(h, ramp(4096))
    hw.fire(0, PERIOD_NS)
    await sys.runFor(2 * PERIOD_NS)
    await pcm.drop(h)
    await pcm.prepare(h) // spin_lock with interrupts on
    expect(sys.reports.map((r) => r.kind)).toEqual(['lock-inconsistent'])
    await pcm.close(h)
  })

  it('unbind with the card not freed: a leak naming the PCI device, and its DMA buffer', async () => {
    const { sys } = await irqRig({ free: false })
    await sys.unbind(sys.pciDevice('irqdev0')!)
    expect(sys.reports.map((r) => [r.kind, r.device])).toEqual([
      ['leak', 'irqdev0'],
      ['leak', 'irqdev0'],
    ])
    expect(sys.reports[0]!.message).toBe('irqdev0: sound card 0 (IrqPcm) was not freed when its driver was unbound: call snd_card_free() in remove (or create it with snd_devm_card_new)')
  })

  it('unbind while a stream is open: snd_card_free waits, the application closes, no leak', async () => {
    const { sys, hw, pcm } = await irqRig({ free: true })
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    await pcm.write(h, ramp(4096))
    hw.fire(0, PERIOD_NS)
    await sys.unbind(sys.pciDevice('irqdev0')!)
    expect(h.closed).toBe(true)
    expect(pcm.cards()).toEqual([])
    expect(sys.reports).toEqual([])
  })
})
