/**
 * Weak ordering: the store buffer makes missing write barriers lose data on arm64/riscv64, and
 * `missing-barrier` names the mistake — the doorbell sent with writel_relaxed, the descriptor
 * body read after its ownership bit, the status read without dma_rmb.
 */
import { describe, expect, it } from 'vitest'
import {
  boot,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_rmb,
  IRQ_HANDLED,
  IRQ_NONE,
  readl,
  request_irq,
  udelay,
  dma_wmb,
  mem_read16,
  mem_read32,
  mem_write32,
  mem_write_bytes,
  msleep,
  pci_enable_device,
  pci_iomap,
  pci_register_driver,
  pci_set_master,
  writel,
  writel_relaxed,
  type DmaBuffer,
  type IoAddr,
  type PciDriver,
  type System,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { ARCHES } from '../helpers/matrix.js'

interface Rig {
  sys: System
  hw: IrqTestDevice
  regs: IoAddr
  ring: DmaBuffer
}

async function rig(arch: (typeof ARCHES)[number], seed = 1): Promise<Rig> {
  const hw = new IrqTestDevice('ring0')
  const sys = boot({ arch, seed, log: 'silent', devices: [hw] })
  let regs = 0 as IoAddr
  let ring: DmaBuffer | null = null
  const drv: PciDriver = {
    name: 'ring',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      pci_set_master(pdev)
      regs = pci_iomap(pdev, 0)!
      ring = dma_alloc_coherent(pdev.dev, 4096)
      writel(ring!.dma, (regs + 8) as IoAddr) // DMA_ADDR: where the descriptor lives
      return Promise.resolve(0)
    },
  }
  await sys.run(() => pci_register_driver(drv))
  return { sys, hw, regs, ring: ring! }
}

const kinds = (sys: System) => sys.reports.map((r) => r.kind)

describe('a doorbell after descriptor writes', () => {
  for (const arch of ARCHES) {
    it(`writel_relaxed without dma_wmb on ${arch}: ${arch === 'x86_64' ? 'ordered by TSO, silent' : 'the device fetches a stale descriptor, missing-barrier'}`, async () => {
      const { sys, hw, regs, ring } = await rig(arch)
      await sys.run(() => {
        mem_write32(ring.cpu, 0, 0xd00dfeed) // the descriptor
        writel_relaxed(1, (regs + 0x14) as IoAddr) // the doorbell: the device fetches now
      })
      if (arch === 'x86_64') {
        expect(hw.result).toBe(0xd00dfeed)
        expect(kinds(sys)).toEqual([])
      } else {
        expect(hw.result).toBe(0) // still in the store buffer
        expect(kinds(sys)).toEqual(['missing-barrier'])
        expect(sys.reports[0]!.message).toContain('writel_relaxed')
        expect(sys.reports[0]!.stacks.some((s) => s.label === 'relaxed MMIO write')).toBe(true)
      }
    })

    it(`writel, or dma_wmb before writel_relaxed, hands the descriptor over intact on ${arch}`, async () => {
      for (const variant of ['writel', 'dma_wmb']) {
        const { sys, hw, regs, ring } = await rig(arch)
        await sys.run(() => {
          mem_write32(ring.cpu, 0, 0xd00dfeed)
          if (variant === 'writel') writel(1, (regs + 0x14) as IoAddr)
          else {
            dma_wmb()
            writel_relaxed(1, (regs + 0x14) as IoAddr)
          }
        })
        expect(hw.result).toBe(0xd00dfeed)
        expect(kinds(sys)).toEqual([])
      }
    })
  }
})

describe('a descriptor body and its ownership bit', () => {
  for (const arch of ARCHES) {
    it(`without dma_wmb between them a polling device relies on an order nothing set (${arch})`, async () => {
      for (const barrier of [false, true]) {
        const { sys, hw, ring } = await rig(arch)
        let seenBody = -1
        await sys.run(async () => {
          mem_write32(ring.cpu, 0, 0xb0d1) // body
          if (barrier) dma_wmb()
          mem_write32(ring.cpu, 4, 1) // OWN: the device may process it
          await msleep(1) // the stores become visible (a sleep drains the store buffer)
        })
        // The device polls: it reads OWN, then (seeing it set) the body. Nothing ordered the body
        // before OWN, so a device that polls at the wrong moment may read a stale body.
        const own = new DataView(hw.deviceRead(ring.dma + 4, 4).buffer).getUint32(0, true)
        if (own === 1) seenBody = new DataView(hw.deviceRead(ring.dma, 4).buffer).getUint32(0, true)
        expect(seenBody).toBe(0xb0d1)
        expect(kinds(sys)).toEqual(barrier ? [] : ['missing-barrier'])
      }
    })
  }
})

describe('a buffer written in one store, then its ownership word (the read covers many words)', () => {
  // 256 bytes of body in one mem_write_bytes, as a PCM copy or an SQE copy writes them; then
  // `patch` optionally rewrites one word of the body, `others` stores elsewhere push the body's
  // store out of the ordering check's short memory of recent stores; then OWN.
  const cases = [
    { name: 'no barrier before OWN', barrier: false, patch: false, others: 0, bug: true },
    { name: 'dma_wmb before OWN', barrier: true, patch: false, others: 0, bug: false },
    { name: 'dma_wmb, then one word of the body rewritten with no barrier before OWN', barrier: true, patch: true, others: 0, bug: true },
    { name: 'no barrier, then 20 stores elsewhere', barrier: false, patch: false, others: 20, bug: true },
    { name: 'dma_wmb, then 20 stores elsewhere', barrier: true, patch: false, others: 20, bug: false },
  ]
  for (const arch of ARCHES) {
    for (const c of cases) {
      it(`${c.name}: ${c.bug ? 'missing-barrier' : 'silent'} (${arch})`, async () => {
        const { sys, hw, ring } = await rig(arch)
        const body = new Uint8Array(256).map((_, i) => i ^ 0x5a)
        await sys.run(async () => {
          mem_write_bytes(ring.cpu, body)
          if (c.barrier) dma_wmb()
          if (c.patch) {
            mem_write32(ring.cpu, 40, 0xa5a5a5a5)
            body.set([0xa5, 0xa5, 0xa5, 0xa5], 40)
          }
          for (let i = 0; i < c.others; i++) mem_write32(ring.cpu, 512 + 4 * i, i)
          mem_write32(ring.cpu, 256, 1) // OWN
          await msleep(1)
        })
        const own = new DataView(hw.deviceRead(ring.dma + 256, 4).buffer).getUint32(0, true)
        expect(own).toBe(1)
        expect(hw.deviceRead(ring.dma, 256)).toEqual(body)
        expect(kinds(sys)).toEqual(c.bug ? ['missing-barrier'] : [])
        // The first word stored before OWN in OWN's epoch: the body's start, or the rewritten word.
        if (c.bug) expect((sys.reports[0]!.details as { phys: number }).phys % 4096).toBe(c.patch ? 40 : 0)
      })
    }
  }
})

describe('when the sequence numbers run out', () => {
  it('the history is forgotten and numbering starts again: correct rounds stay silent, and a bug after the wrap is still caught (arm64)', async () => {
    const { sys, hw, ring } = await rig('arm64')
    sys.ordering.setSeqLimitForTests(12)
    const round = async (i: number, wmb: boolean, rmb: boolean) => {
      await sys.run(async () => {
        mem_write32(ring.cpu, 0, 0x100 + i) // body
        if (wmb) dma_wmb()
        mem_write32(ring.cpu, 4, i + 1) // OWN
        await msleep(1)
      })
      expect(new DataView(hw.deviceRead(ring.dma + 4, 4).buffer).getUint32(0, true)).toBe(i + 1)
      expect(new DataView(hw.deviceRead(ring.dma, 4).buffer).getUint32(0, true)).toBe(0x100 + i)
      hw.deviceWrite(ring.dma + 16, new Uint8Array([i, 0, 0, 0])) // the data
      hw.deviceWrite(ring.dma + 20, new Uint8Array([1, 0, 0, 0])) // then the DD bit
      const got = await sys.run(() => {
        if (mem_read32(ring.cpu, 20) !== 1) return -1
        if (rmb) dma_rmb()
        const v = mem_read32(ring.cpu, 16)
        mem_write32(ring.cpu, 20, 0) // hand the slot back
        return v
      })
      expect(got).toBe(i)
    }
    for (let i = 0; i < 20; i++) await round(i, true, true)
    expect(kinds(sys)).toEqual([])
    await round(20, false, true)
    expect(kinds(sys)).toEqual(['missing-barrier'])
    await round(21, true, false)
    expect(kinds(sys)).toEqual(['missing-barrier', 'missing-barrier'])
  })
})

describe('reading a status the device wrote after the data', () => {
  for (const arch of ARCHES) {
    it(`without dma_rmb is missing-barrier on weakly ordered CPUs only (${arch})`, async () => {
      for (const barrier of [false, true]) {
        const { sys, hw, ring } = await rig(arch)
        hw.deviceWrite(ring.dma, new Uint8Array([0x78, 0x56, 0x34, 0x12])) // the data
        hw.deviceWrite(ring.dma + 4, new Uint8Array([1, 0, 0, 0])) // then the DD bit
        const data = await sys.run(() => {
          if (mem_read32(ring.cpu, 4) !== 1) return -1
          if (barrier) dma_rmb()
          return mem_read32(ring.cpu, 0)
        })
        expect(data).toBe(0x12345678)
        expect(kinds(sys)).toEqual(!barrier && arch !== 'x86_64' ? ['missing-barrier'] : [])
      }
    })
  }
})

describe('two fields of one word written by two device writes (an NVMe CQE: command id, then status)', () => {
  for (const arch of ARCHES) {
    it(`the earlier half loaded after the later one without dma_rmb is ${arch === 'x86_64' ? 'fine on TSO' : 'missing-barrier'} (${arch})`, async () => {
      for (const barrier of [false, true]) {
        const { sys, hw, ring } = await rig(arch)
        await sys.run(() => {
          hw.deviceWrite(ring.dma + 12, new Uint8Array([0x34, 0x12])) // command id
          hw.deviceWrite(ring.dma + 14, new Uint8Array([1, 0])) // then the status with the phase
          if (mem_read16(ring.cpu, 14) !== 1) return
          if (barrier) dma_rmb()
          mem_read16(ring.cpu, 12)
        })
        expect(kinds(sys)).toEqual(!barrier && arch !== 'x86_64' ? ['missing-barrier'] : [])
      }
    })
  }
})

describe('reading again after dma_rmb', () => {
  for (const arch of ARCHES) {
    it(`the flag re-read after dma_rmb, then the data, in any order, is silent; a second descriptor without a barrier is not (${arch})`, async () => {
      const { sys, hw, ring } = await rig(arch)
      // Descriptor 0: data then DD; descriptor 1 (16 bytes on): data then DD, written later.
      hw.deviceWrite(ring.dma, new Uint8Array([0x78, 0x56, 0x34, 0x12]))
      hw.deviceWrite(ring.dma + 4, new Uint8Array([1, 0, 0, 0]))
      const first = await sys.run(() => {
        if (mem_read32(ring.cpu, 4) !== 1) return -1
        dma_rmb()
        // e1000_clean_rx_irq re-reads the status after the barrier, then the length.
        const status = mem_read32(ring.cpu, 4)
        return status === 1 ? mem_read32(ring.cpu, 0) : -1
      })
      expect(first).toBe(0x12345678)
      expect(kinds(sys)).toEqual([])
      hw.deviceWrite(ring.dma + 16, new Uint8Array([0x21, 0x43, 0x65, 0x87]))
      hw.deviceWrite(ring.dma + 20, new Uint8Array([1, 0, 0, 0]))
      const second = await sys.run(() => (mem_read32(ring.cpu, 20) === 1 ? mem_read32(ring.cpu, 16) : -1))
      expect(second).toBe(0x87654321)
      expect(kinds(sys)).toEqual(arch !== 'x86_64' ? ['missing-barrier'] : [])
    })
  }
})

describe('a sleep between two stores', () => {
  for (const arch of ARCHES) {
    it(`orders them, as schedule()'s barrier does: no missing-barrier when the device reads the later one first (${arch})`, async () => {
      const { sys, hw, ring } = await rig(arch)
      await sys.run(async () => {
        mem_write32(ring.cpu, 4, 0xb)
        await msleep(10)
        mem_write32(ring.cpu, 0, 0xc)
        await msleep(10)
      })
      expect(hw.deviceRead(ring.dma, 4)).toEqual(new Uint8Array([0xc, 0, 0, 0]))
      expect(hw.deviceRead(ring.dma + 4, 4)).toEqual(new Uint8Array([0xb, 0, 0, 0]))
      expect(kinds(sys)).toEqual([])
    })
  }
})

/** The rig with an interrupt handler that, when armed, loads the data word (no dma_rmb of its own). */
async function irqRig(arch: (typeof ARCHES)[number]) {
  const r = await rig(arch)
  const seen: number[] = []
  const pdev = r.sys.pciDevice('ring0')!
  const rc = await r.sys.run(() =>
    request_irq(
      pdev.irq,
      () => {
        // The data, loaded first thing in the handler: before readl(), whose read barrier would
        // order it anyway — here only the interrupt entry does.
        const data = mem_read32(r.ring.cpu, 0)
        const cause = readl(r.regs)
        if (cause === 0) return IRQ_NONE
        writel(cause, (r.regs + 4) as IoAddr)
        seen.push(data)
        return IRQ_HANDLED
      },
      0,
      'ring',
      r.hw,
    ),
  )
  expect(rc).toBe(0)
  return { ...r, seen }
}

describe('what orders loads besides dma_rmb (kernel/dma/ordering.ts, devices/machine/load-order.ts)', () => {
  for (const arch of ARCHES) {
    it(`interrupt entry: the flag loaded in process context, the data in the handler, is silent and right (${arch})`, async () => {
      const { sys, hw, ring, seen } = await irqRig(arch)
      const flag = await sys.run(() => {
        hw.deviceWrite(ring.dma, new Uint8Array([0x78, 0x56, 0x34, 0x12])) // the data
        hw.deviceWrite(ring.dma + 4, new Uint8Array([1, 0, 0, 0])) // then the flag
        const f = mem_read32(ring.cpu, 4)
        hw.fire(0, 100)
        udelay(1) // the CPU spins (no context switch); the interrupt arrives: its entry orders the loads
        return f
      })
      expect(flag).toBe(1)
      expect(seen).toEqual([0x12345678])
      expect(kinds(sys)).toEqual([])
      expect(sys.machine.loadOrder.staleLoads).toBe(0)
    })

    it(`the CPU's own store over device-written data supersedes it: loaded after the flag, silent and the CPU's value (${arch})`, async () => {
      const { sys, hw, ring } = await rig(arch)
      const data = await sys.run(() => {
        hw.deviceWrite(ring.dma, new Uint8Array([0x78, 0x56, 0x34, 0x12]))
        hw.deviceWrite(ring.dma + 4, new Uint8Array([1, 0, 0, 0]))
        mem_write32(ring.cpu, 0, 0xc0ffee) // the driver overwrites the data word itself
        if (mem_read32(ring.cpu, 4) !== 1) return -1
        return mem_read32(ring.cpu, 0)
      })
      expect(data).toBe(0xc0ffee)
      expect(kinds(sys)).toEqual([])
      expect(sys.machine.loadOrder.staleLoads).toBe(0)
    })

    it(`memory freed and allocated again starts a new life: what the device wrote there before orders nothing (${arch})`, async () => {
      const { sys, hw, ring } = await rig(arch)
      const pdev = sys.pciDevice('ring0')!
      const again = await sys.run(() => {
        hw.deviceWrite(ring.dma + 64, new Uint8Array([0x78, 0x56, 0x34, 0x12])) // written first
        hw.deviceWrite(ring.dma + 68, new Uint8Array([1, 0, 0, 0])) // written last
        dma_free_coherent(pdev.dev, 4096, ring.cpu, ring.dma)
        const b = dma_alloc_coherent(pdev.dev, 4096)!
        expect(b.cpu).toBe(ring.cpu) // the same memory
        // Its first user loads the two words in the opposite order: zeroed memory, nothing to order.
        const v = [mem_read32(b.cpu, 68), mem_read32(b.cpu, 64)]
        dma_free_coherent(pdev.dev, 4096, b.cpu, b.dma)
        return v
      })
      expect(again).toEqual([0, 0])
      expect(kinds(sys)).toEqual([])
    })
  }
})
