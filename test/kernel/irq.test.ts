/** Interrupts and the PCI driver model, driven through a test device that raises IRQs on command. */
import { describe, expect, it } from 'vitest'
import {
  boot,
  disable_irq,
  EBUSY,
  EINVAL,
  ENODEV,
  pcim_enable_device,
  GFP_DMA32,
  GFP_KERNEL,
  enable_irq,
  free_irq,
  IRQ_HANDLED,
  IRQ_NONE,
  IRQ_WAKE_THREAD,
  IRQF_ONESHOT,
  IRQF_SHARED,
  kmalloc,
  mem_read32,
  mem_write32,
  memset,
  msleep,
  pci_alloc_irq_vectors,
  pci_enable_device,
  pci_free_irq_vectors,
  pci_iomap,
  pci_iounmap,
  pci_irq_vector,
  PCI_IRQ_INTX,
  PCI_IRQ_MSIX,
  pci_register_driver,
  pci_set_master,
  readl,
  request_irq,
  request_threaded_irq,
  devm_request_irq,
  spin_lock,
  spin_lock_init,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_irqrestore,
  synchronize_irq,
  virt_to_phys,
  writel,
  jiffies,
  ktime_get_ns,
  mod_timer,
  timer_setup,
  udelay,
  type BootOptions,
  type IoAddr,
  type PciDev,
  type PciDriver,
  type System,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'

const quiet = { log: 'silent' } as const

/** Boots a system with n test devices; devices 0 and 4 share an INTx line (the bus wires slot % 4). */
function setup(n: number, opts: BootOptions = {}, msix = 0): { sys: System; hw: IrqTestDevice[] } {
  const hw = Array.from({ length: n }, (_, i) => new IrqTestDevice(`irqdev${i}`, msix))
  return { sys: boot({ ...quiet, ...opts, devices: hw }), hw }
}

interface Priv {
  regs: IoAddr
  handled: number
  none: number
}

/** A driver whose handler claims the interrupt only when its device has a cause, and acks it. */
function driver(over: Partial<PciDriver> = {}, flags = IRQF_SHARED): PciDriver & { privs: Map<PciDev, Priv> } {
  const privs = new Map<PciDev, Priv>()
  return {
    name: 'irqtest',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    privs,
    probe: async (pdev) => {
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      const priv: Priv = { regs, handled: 0, none: 0 }
      privs.set(pdev, priv)
      const rc = request_irq(pdev.irq, (_irq, id) => {
        const p = id as Priv
        const cause = readl(p.regs)
        if (cause === 0) {
          p.none++
          return IRQ_NONE
        }
        writel(cause, (p.regs + 4) as IoAddr)
        p.handled++
        return IRQ_HANDLED
      }, flags, 'irqtest', priv)
      return Promise.resolve(rc)
    },
    remove: async (pdev) => {
      await free_irq(pdev.irq, privs.get(pdev))
    },
    ...over,
  }
}

describe('request_irq and shared lines', () => {
  it('a shared line calls every handler; the one whose device raised it claims it', async () => {
    const { sys, hw } = setup(5)
    expect(hw[0]!.intxLine).toBe(hw[4]!.intxLine)
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    hw[4]!.fire(0, 10_000)
    await sys.runUntilIdle()
    const p0 = drv.privs.get(sys.pciDevice('irqdev0')!)!
    const p4 = drv.privs.get(sys.pciDevice('irqdev4')!)!
    expect(p4.handled).toBe(1)
    expect(p0.none).toBe(1)
    expect(p0.handled).toBe(0)
    expect(hw[4]!.intxLevel).toBe(false)
    expect(sys.reports).toEqual([])
  })

  it('follows Linux: -EINVAL for a shared irq without dev_id, -EBUSY on a flags mismatch', async () => {
    const { sys, hw } = setup(1)
    const line = hw[0]!.intxLine
    const rcs = await sys.run(() => [
      request_irq(line, () => IRQ_HANDLED, IRQF_SHARED, 'a', null),
      request_irq(line, () => IRQ_HANDLED, IRQF_SHARED, 'b', {}),
      request_irq(line, () => IRQ_HANDLED, 0, 'c', {}),
      request_threaded_irq(line, null, () => IRQ_HANDLED, IRQF_SHARED, 'd', {}),
      request_irq(9999, () => IRQ_HANDLED, 0, 'e', {}),
    ])
    expect(rcs).toEqual([-EINVAL, 0, -EBUSY, -EINVAL, -EINVAL])
  })

  it('free_irq with the wrong dev_id frees nothing and returns null', async () => {
    const { sys, hw } = setup(1)
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    const pdev = sys.pciDevice('irqdev0')!
    expect(await sys.run(() => free_irq(pdev.irq, { not: 'mine' }))).toBeNull()
    hw[0]!.fire(0, 1000)
    await sys.runUntilIdle()
    expect(drv.privs.get(pdev)!.handled).toBe(1)
    expect(await sys.run(() => free_irq(pdev.irq, drv.privs.get(pdev)))).toBe('irqtest')
  })

  it('disable_irq nests: the line stays masked until every disable is undone', async () => {
    const { sys, hw } = setup(1)
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    const pdev = sys.pciDevice('irqdev0')!
    const priv = drv.privs.get(pdev)!
    await sys.run(async () => {
      await disable_irq(pdev.irq)
      await disable_irq(pdev.irq)
    })
    hw[0]!.fire(0, 1000)
    await sys.runFor(1e6)
    await sys.run(() => enable_irq(pdev.irq))
    expect(priv.handled).toBe(0)
    await sys.run(() => enable_irq(pdev.irq))
    expect(priv.handled).toBe(1)
  })
})

describe('threaded handlers', () => {
  it('the thread runs in process context and may sleep; IRQF_ONESHOT keeps the line masked meanwhile', async () => {
    const { sys, hw } = setup(1)
    const seen: string[] = []
    let regs = 0 as IoAddr
    const drv: PciDriver = {
      name: 'threaded',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => {
        pci_enable_device(pdev)
        regs = pci_iomap(pdev, 0)!
        return Promise.resolve(request_threaded_irq(pdev.irq, () => {
          seen.push('hard')
          return readl(regs) !== 0 ? IRQ_WAKE_THREAD : IRQ_NONE
        }, async () => {
          seen.push('thread')
          await msleep(2)
          writel(readl(regs), (regs + 4) as IoAddr)
          seen.push('acked')
          return IRQ_HANDLED
        }, IRQF_ONESHOT, 'threaded', drv))
      },
    }
    await sys.run(() => pci_register_driver(drv))
    hw[0]!.fire(0, 1000)
    await sys.runUntilIdle()
    // Level INTx stays asserted until the thread acks, but ONESHOT keeps it masked: one hard call.
    expect(seen).toEqual(['hard', 'thread', 'acked'])
    expect(sys.reports).toEqual([])
  })

  it('synchronize_irq waits for a running thread', async () => {
    const { sys, hw } = setup(1)
    let done = false
    let regs = 0 as IoAddr
    const drv: PciDriver = {
      name: 'sync',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => {
        pci_enable_device(pdev)
        regs = pci_iomap(pdev, 0)!
        return Promise.resolve(request_threaded_irq(pdev.irq, () => IRQ_WAKE_THREAD, async () => {
          writel(readl(regs), (regs + 4) as IoAddr)
          await msleep(5)
          done = true
          return IRQ_HANDLED
        }, IRQF_ONESHOT, 'sync', drv))
      },
    }
    await sys.run(() => pci_register_driver(drv))
    const pdev = sys.pciDevice('irqdev0')!
    hw[0]!.fire(0, 0)
    const observed = await sys.run(async () => {
      await msleep(1) // the interrupt arrives and the thread starts its 5 ms sleep
      await synchronize_irq(pdev.irq)
      return done
    })
    expect(observed).toBe(true)
  })
})

describe('broken interrupt handling is reported', () => {
  it('"nobody cared": a stuck line whose handler returns IRQ_NONE is disabled (threshold lowered for the test)', async () => {
    const { sys, hw } = setup(1, { irqUnhandledThreshold: 10 })
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    hw[0]!.stick()
    await sys.runUntilIdle()
    expect(sys.reports.map((r) => r.kind)).toEqual(['irq-unhandled'])
    expect(sys.reports[0]!.message).toContain('nobody cared')
    expect(drv.privs.get(sys.pciDevice('irqdev0')!)!.none).toBe(11)
  })

  it('an interrupt storm (claimed but never cleared) is stopped and reported', async () => {
    const { sys, hw } = setup(1)
    const drv: PciDriver = {
      name: 'storm',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => Promise.resolve(request_irq(pdev.irq, () => IRQ_HANDLED, 0, 'storm', drv)),
    }
    await sys.run(() => pci_register_driver(drv))
    hw[0]!.fire(0, 0)
    await sys.runUntilIdle()
    expect(sys.reports.map((r) => r.kind)).toEqual(['irq-unhandled'])
    expect(sys.reports[0]!.message).toContain('storm')
  })

  it('a handler that sleeps or returns a Promise is invalid-context', async () => {
    const { sys, hw } = setup(1)
    const asyncHandler: unknown = async () => {
      await msleep(1)
      return IRQ_HANDLED
    }
    const drv: PciDriver = {
      name: 'asynchandler',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => {
        pci_enable_device(pdev)
        const regs = pci_iomap(pdev, 0)!
        const h = asyncHandler as (irq: number, id: unknown) => number
        return Promise.resolve(request_irq(pdev.irq, (irq, id) => {
          writel(readl(regs), (regs + 4) as IoAddr)
          return h(irq, id)
        }, 0, 'asynchandler', drv))
      },
    }
    await sys.run(() => pci_register_driver(drv))
    hw[0]!.fire(0, 0)
    await sys.runUntilIdle()
    expect(sys.reports.map((r) => r.kind).sort()).toEqual(['invalid-context', 'invalid-context'])
  })
})

describe('locks shared with a handler', () => {
  /** Process context increments a counter 200 times while the device interrupts at seeded times. */
  async function race(seed: number, irqsave: boolean): Promise<{ lost: number; kinds: string[] }> {
    const hw = new IrqTestDevice('irqdev0')
    const sys = boot({ ...quiet, seed, devices: [hw] })
    let counter = 0 as ReturnType<typeof kmalloc> & number
    let fired = 0
    const lock = await sys.run(() => spin_lock_init())
    const drv: PciDriver = {
      name: 'counter',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => {
        pci_enable_device(pdev)
        const regs = pci_iomap(pdev, 0)!
        return Promise.resolve(request_irq(pdev.irq, () => {
          writel(readl(regs), (regs + 4) as IoAddr)
          spin_lock(lock)
          mem_write32(counter, 0, mem_read32(counter, 0) + 1)
          spin_unlock(lock)
          fired++
          return IRQ_HANDLED
        }, 0, 'counter', drv))
      },
    }
    await sys.run(async () => {
      counter = kmalloc(4)!
      memset(counter, 0, 4)
      await pci_register_driver(drv)
    })
    // The device interrupts every 10 iterations; the seeded interrupt latency decides at which
    // kernel call of the loop each handler lands, whatever the cost model.
    await sys.run(() => {
      for (let i = 0; i < 200; i++) {
        if (i % 10 === 0) hw.fire(0, 0)
        if (irqsave) {
          const flags = spin_lock_irqsave(lock)
          mem_write32(counter, 0, mem_read32(counter, 0) + 1)
          spin_unlock_irqrestore(lock, flags)
        } else {
          spin_lock(lock)
          const v = mem_read32(counter, 0)
          mem_write32(counter, 0, v + 1)
          spin_unlock(lock)
        }
      }
    })
    await sys.runUntilIdle()
    const final = await sys.run(() => mem_read32(counter, 0))
    return { lost: 200 + fired - final, kinds: sys.reports.map((r) => r.kind) }
  }

  it('spin_lock without irqsave is lock-inconsistent on every seed, and loses updates on some', async () => {
    const results = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8].map((s) => race(s, false)))
    for (const r of results) expect(r.kinds).toEqual(['lock-inconsistent'])
    expect(results.some((r) => r.lost > 0)).toBe(true)
  })

  it('spin_lock_irqsave: no report and no lost update on any seed', async () => {
    for (const s of [1, 2, 3, 4, 5, 6, 7, 8]) expect(await race(s, true)).toEqual({ lost: 0, kinds: [] })
  })
})

describe('the PCI driver model', () => {
  it('MSI-X vectors are programmed through the table; each vector reaches its own handler', async () => {
    const hw = new IrqTestDevice('irqdev0', 4)
    const sys = boot({ ...quiet, devices: [hw] })
    const hits: number[] = []
    let regs = 0 as IoAddr
    const drv: PciDriver = {
      name: 'msix',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        pci_enable_device(pdev)
        pci_set_master(pdev) // an MSI is a memory write by the device: it needs bus mastering
        regs = pci_iomap(pdev, 0)!
        const n = pci_alloc_irq_vectors(pdev, 1, 4, PCI_IRQ_MSIX | PCI_IRQ_INTX)
        expect(n).toBe(4)
        for (let v = 0; v < n; v++) {
          const rc = request_irq(pci_irq_vector(pdev, v), () => {
            hits.push(v)
            writel(1 << v, (regs + 4) as IoAddr)
            return IRQ_HANDLED
          }, 0, `msix-${v}`, { v })
          if (rc !== 0) return Promise.resolve(rc)
        }
        return Promise.resolve(0)
      },
      remove: async (pdev) => {
        for (let v = 0; v < 4; v++) await free_irq(pci_irq_vector(pdev, v), undefined)
        pci_free_irq_vectors(pdev)
      },
    }
    await sys.run(() => pci_register_driver(drv))
    expect(sys.pciDevice('irqdev0')!.vectors[0]).toBeGreaterThanOrEqual(1024)
    hw.fire(2, 1000)
    hw.fire(0, 2000)
    await sys.runUntilIdle()
    expect(hits).toEqual([2, 0])
  })

  it('without pci_set_master the device cannot DMA: bus-master-disabled; with it, the read works', async () => {
    for (const master of [false, true]) {
      const hw = new IrqTestDevice('irqdev0')
      const sys = boot({ ...quiet, iommu: 'off', devices: [hw] })
      await sys.run(async () => {
        const buf = kmalloc(64, GFP_KERNEL | GFP_DMA32)! // below 4 GiB: the address fits one 32-bit register
        mem_write32(buf, 0, 0xcafe)
        const drv: PciDriver = {
          name: 'dma',
          id_table: [{ vendor: 0x1de5, device: 0xface }],
          probe: async (pdev) => {
            pci_enable_device(pdev)
            if (master) pci_set_master(pdev)
            const regs = pci_iomap(pdev, 0)!
            // Coherent-free shortcut for the test: hand the device the buffer's physical address.
            writel(virt_to_phys(buf), (regs + 8) as IoAddr)
            writel(1, (regs + 12) as IoAddr)
            return Promise.resolve(0)
          },
        }
        await pci_register_driver(drv)
        await msleep(1)
      })
      if (master) expect(hw.dmaStatus).toBe(0)
      else {
        expect(hw.dmaStatus).not.toBe(0)
        expect(hw.result).toBe(0)
        expect(sys.reports.map((r) => r.kind)).toEqual(['bus-master-disabled'])
      }
    }
  })

  it('an IRQ still requested at unbind is a leak; devm_request_irq is released silently', async () => {
    for (const managed of [false, true]) {
      const { sys } = setup(1)
      const drv: PciDriver = {
        name: 'leaky',
        id_table: [{ vendor: 0x1de5, device: 0xface }],
        probe: async (pdev) =>
          Promise.resolve(managed ? devm_request_irq(pdev.dev, pdev.irq, () => IRQ_NONE, IRQF_SHARED, 'leaky', drv) : request_irq(pdev.irq, () => IRQ_NONE, IRQF_SHARED, 'leaky', drv)),
      }
      await sys.run(() => pci_register_driver(drv))
      await sys.unbind(sys.pciDevice('irqdev0')!)
      expect(sys.reports.map((r) => r.kind)).toEqual(managed ? [] : ['leak'])
    }
  })

  it('probe binds only matching devices, and pci_alloc_irq_vectors falls back to INTx', async () => {
    const { sys } = setup(2)
    const probed: string[] = []
    const drv: PciDriver = {
      name: 'match',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: async (pdev) => {
        probed.push(pdev.name)
        expect(pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)).toBe(1)
        expect(pci_irq_vector(pdev, 0)).toBe(pdev.irq)
        pci_free_irq_vectors(pdev)
        return Promise.resolve(0)
      },
    }
    const other: PciDriver = { name: 'other', id_table: [{ vendor: 0x8086, device: 0x100e }], probe: async () => Promise.resolve(0) }
    await sys.run(async () => {
      await pci_register_driver(other)
      await pci_register_driver(drv)
    })
    expect(probed).toEqual(['irqdev0', 'irqdev1'])
  })
})

describe('binding by hand and managed vectors', () => {
  it('sys.unbind then sys.bind probes again through the driver core matcher; -ENODEV without a driver', async () => {
    const { sys } = setup(1)
    const pdev = sys.pciDevice('irqdev0')!
    expect(await sys.bind(pdev)).toBe(-ENODEV)
    let probes = 0
    const drv: PciDriver = {
      name: 'rebind',
      id_table: [{ vendor: 0x1de5, device: 0xface, class: 0xff0000, class_mask: 0xff0000 }],
      probe: () => {
        probes++
        return Promise.resolve(0)
      },
    }
    await sys.run(() => pci_register_driver(drv))
    await sys.unbind(pdev)
    expect(pdev.driver).toBeNull()
    expect(await sys.bind(pdev)).toBe(0)
    expect(probes).toBe(2)
    expect(pdev.driver).toBe(drv)
  })

  it('with pcim_enable_device the IRQ vectors are freed at unbind; without it their leak is reported', async () => {
    for (const managed of [true, false]) {
      const { sys } = setup(1, {}, 2)
      const drv: PciDriver = {
        name: 'vectors',
        id_table: [{ vendor: 0x1de5, device: 0xface }],
        probe: (pdev) => {
          if (managed) pcim_enable_device(pdev)
          else pci_enable_device(pdev)
          pci_set_master(pdev)
          return Promise.resolve(pci_alloc_irq_vectors(pdev, 1, 2, PCI_IRQ_MSIX) === 2 ? 0 : -EINVAL)
        },
      }
      await sys.run(() => pci_register_driver(drv))
      const pdev = sys.pciDevice('irqdev0')!
      expect(pdev.vectors).toHaveLength(2)
      await sys.unbind(pdev)
      expect(sys.reports.map((r) => r.kind)).toEqual(managed ? [] : ['leak'])
      if (managed) expect(pdev.vectors).toEqual([])
    }
  })
})

describe('MMIO address decoding', () => {
  it('an access through an unmapped or beyond-maxlen IoAddr oopses, also right after a good one', async () => {
    const { sys, hw } = setup(2)
    let regs0 = 0 as IoAddr
    let regs1 = 0 as IoAddr
    let short = 0 as IoAddr
    const drv: PciDriver = {
      name: 'decode',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        pci_enable_device(pdev)
        if (pdev === sys.pciDevice('irqdev0')) regs0 = pci_iomap(pdev, 0)!
        else {
          regs1 = pci_iomap(pdev, 0)!
          short = pci_iomap(pdev, 0, 8)!
        }
        return Promise.resolve(0)
      },
    }
    await sys.run(() => pci_register_driver(drv))
    hw[0]!.fire(0, 0)
    hw[1]!.fire(1, 0)
    // Alternating between two devices' BARs decodes each to its own device.
    const causes = await sys.run(() => [readl(regs0), readl(regs1), readl(regs0)])
    expect(causes).toEqual([1, 2, 1])
    // maxlen 8 maps two registers: the third is beyond the mapping.
    await expect(sys.run(() => readl(short + 4 as IoAddr))).resolves.toBe(0)
    await expect(sys.run(() => readl(short + 8 as IoAddr))).rejects.toThrow(/not an ioremapped/)
    // After pci_iounmap, right after a good access to the same BAR.
    await expect(sys.run(() => {
      readl(regs0)
      pci_iounmap(sys.pciDevice('irqdev0')!, regs0)
      return readl(regs0)
    })).rejects.toThrow(/Unable to handle kernel paging request at virtual address .* in readl\(\)/)
  })
})

describe('interrupts and softirqs', () => {
  it('a hard IRQ preempts a running timer callback (softirqs run with interrupts enabled), from the idle loop too', async () => {
    const { sys, hw } = setup(1)
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    const events: string[] = []
    const priv = [...drv.privs.values()][0]!
    await sys.run(() => {
      const t = timer_setup(null, () => {
        events.push('timer start')
        hw[0]!.fire(0, 10_000) // 10 µs into the 50 µs the callback spins
        udelay(50)
        events.push(`timer end, handled ${priv.handled}`)
      })
      mod_timer(t, jiffies() + 1)
    })
    const start = sys.clock
    // Nothing runs: the timer fires from the idle loop.
    await sys.runUntil(() => events.length === 2, { timeoutNs: 10_000_000 })
    const handledAt = sys.clock
    expect(events).toEqual(['timer start', 'timer end, handled 1'])
    expect(Number.isFinite(handledAt)).toBe(true)
    expect(handledAt - start).toBeLessThan(5_000_000)
  })

  it('an interrupt raised with no event left keeps the clock finite', async () => {
    const { sys, hw } = setup(1)
    const drv = driver()
    await sys.run(() => pci_register_driver(drv))
    await sys.run(() => {
      const t = timer_setup(null, () => {
        hw[0]!.fire(0, 0)
        udelay(1)
      })
      mod_timer(t, jiffies() + 1)
    })
    await sys.runUntilIdle()
    const seen = await sys.run(() => ktime_get_ns())
    expect(Number.isFinite(seen)).toBe(true)
    expect([...drv.privs.values()][0]!.handled).toBe(1)
  })
})

describe('an interrupt taken in the middle of a CPU store', () => {
  it("does not change the value being stored: the handler's own stores use the accessors too", async () => {
    const { sys, hw } = setup(1)
    let regs = 0 as IoAddr
    let scribble = 0 as ReturnType<typeof kmalloc> & number
    let handled = 0
    const drv: PciDriver = {
      name: 'scribbler',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        pci_enable_device(pdev)
        regs = pci_iomap(pdev, 0)!
        return Promise.resolve(request_irq(pdev.irq, () => {
          const cause = readl(regs)
          if (cause === 0) return IRQ_NONE
          writel(cause, (regs + 4) as IoAddr)
          // The handler stores to memory of its own.
          mem_write32(scribble, 0, 0xdeadbeef)
          mem_write32(scribble, 4, 0x5a5a5a5a)
          handled++
          return IRQ_HANDLED
        }, 0, 'scribbler', drv))
      },
    }
    await sys.run(async () => {
      scribble = kmalloc(64)!
      await pci_register_driver(drv)
    })
    const n = 4000
    const bad = await sys.run(() => {
      const a = kmalloc(n * 4)!
      for (let i = 0; i < n; i++) {
        if (i % 50 === 0) hw[0]!.fire(0, 0) // an interrupt arrives at one of the next kernel calls
        mem_write32(a, i * 4, i * 7 + 1)
      }
      let wrong = 0
      for (let i = 0; i < n; i++) if (mem_read32(a, i * 4) !== i * 7 + 1) wrong++
      return wrong
    })
    expect(handled).toBeGreaterThan(10)
    expect(bad).toBe(0)
    expect(sys.reports).toEqual([])
  })
})
