// Coupled systems (kernel/sched/group.ts): two machines driven together on virtual time.
import { describe, expect, it } from 'vitest'
import {
  boot, coupleSystems, IRQ_HANDLED, IRQ_NONE, ktime_get_ns, mod_timer, msleep, pci_enable_device, pci_iomap,
  pci_register_driver, ptr_add, readl, request_irq, timer_setup, writel, jiffies, type PciDriver, type System,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'

const quiet = { log: 'silent' } as const

/** A periodic kernel timer (every `periodJiffies`) that logs the system's name and virtual time. */
async function ticker(sys: System, name: string, periodJiffies: number, log: string[]): Promise<void> {
  await sys.run(() => {
    const t = timer_setup(null, (tm) => {
      log.push(`${name}@${jiffies()}`)
      mod_timer(tm, jiffies() + periodJiffies)
    })
    mod_timer(t, jiffies() + periodJiffies)
  })
}

/** A driver that records the virtual time at which its device's interrupt is handled. */
function irqRecorder(seen: number[]): PciDriver {
  const drv: PciDriver = {
    name: 'rec',
    id_table: [{ vendor: 0x1de5, device: 0xface }],
    probe: (pdev) => {
      pci_enable_device(pdev)
      const regs = pci_iomap(pdev, 0)!
      return Promise.resolve(request_irq(pdev.irq, () => {
        const cause = readl(regs)
        if (cause === 0) return IRQ_NONE
        writel(cause, ptr_add(regs, 4))
        seen.push(ktime_get_ns())
        return IRQ_HANDLED
      }, 0, 'rec', drv))
    },
  }
  return drv
}

describe('coupled systems', () => {
  it('driving one member drives all, in global virtual-time order', async () => {
    const a = boot(quiet)
    const b = boot({ ...quiet, arch: 'x86_64' })
    const log: string[] = []
    await ticker(a, 'a', 3, log)
    await ticker(b, 'b', 5, log)
    coupleSystems(a, b)
    const start = log.length
    await a.runFor(16 * 4_000_000) // 16 jiffies at HZ = 250
    expect(log.slice(start)).toEqual(['a@3', 'b@5', 'a@6', 'a@9', 'b@10', 'a@12', 'a@15', 'b@15'])
    // Both clocks were brought to the deadline.
    expect(b.clock).toBe(a.clock)
  })

  it('without coupling, running one system leaves the other where it was', async () => {
    const a = boot(quiet)
    const b = boot(quiet)
    const log: string[] = []
    await ticker(a, 'a', 3, log)
    await ticker(b, 'b', 5, log)
    await a.runFor(16 * 4_000_000)
    expect(log.every((l) => l.startsWith('a@'))).toBe(true)
    expect(b.clock).toBeLessThan(4_000_000)
  })

  it("a task of one member sleeps while the other's device interrupts at the right time", async () => {
    const hw = new IrqTestDevice('irqdev0')
    const a = boot(quiet)
    const b = boot({ ...quiet, devices: [hw] })
    const seen: number[] = []
    await b.run(() => pci_register_driver(irqRecorder(seen)))
    coupleSystems(a, b)
    const bStart = b.clock
    // A's task sleeps for 10 ms; meanwhile B's device raises its interrupt 2 ms from B's now,
    // as a message from A's side would on a wire: B is driven along with A.
    hw.fire(0, 2_000_000)
    await a.run(() => msleep(10))
    expect(seen).toHaveLength(1)
    expect(seen[0]! - bStart).toBeGreaterThanOrEqual(2_000_000)
    expect(seen[0]! - bStart).toBeLessThan(2_010_000)
  })

  it('an event one member schedules on the other arrives at the sender-relative time', async () => {
    const hw = new IrqTestDevice('irqdev0')
    const a = boot(quiet)
    const b = boot({ ...quiet, devices: [hw] })
    const seen: number[] = []
    await b.run(() => pci_register_driver(irqRecorder(seen)))
    coupleSystems(a, b)
    // A's timer at jiffy 2 "transmits": the message lands on B's clock 500 ns after A's now.
    let sentAt = 0
    await a.run(() => {
      const t = timer_setup(null, () => {
        sentAt = ktime_get_ns()
        hw.machine!.clock.schedule(sentAt + 500, () => hw.fire(0, 0))
      })
      mod_timer(t, jiffies() + 2)
    })
    await a.runFor(20_000_000)
    expect(sentAt).toBeGreaterThan(0)
    expect(seen).toHaveLength(1)
    expect(seen[0]! - sentAt).toBeGreaterThanOrEqual(500)
    expect(seen[0]! - sentAt).toBeLessThan(10_000)
  })

  it('rejects bad arguments and coupling while running', async () => {
    const a = boot(quiet)
    expect(() => coupleSystems(a)).toThrow(/at least two different systems/)
    expect(() => coupleSystems(a, a)).toThrow(/at least two different systems/)
    expect(() => coupleSystems(a, {} as System)).toThrow(/systems\[1\]/)
    const b = boot(quiet)
    const c = boot(quiet)
    let err: unknown = null
    await a.run(async () => {
      await msleep(1)
    })
    const running = b.run(() => msleep(5))
    try {
      coupleSystems(b, c)
    } catch (e) {
      err = e
    }
    await running
    expect(String(err)).toMatch(/a system is running/)
  })

  it('three systems: coupling a third joins the existing group', async () => {
    const [a, b, c] = [boot(quiet), boot(quiet), boot(quiet)]
    const log: string[] = []
    await ticker(a, 'a', 4, log)
    await ticker(b, 'b', 6, log)
    await ticker(c, 'c', 10, log)
    coupleSystems(a, b)
    coupleSystems(c, b)
    const start = log.length
    await c.runFor(12 * 4_000_000)
    expect(log.slice(start)).toEqual(['a@4', 'b@6', 'a@8', 'c@10', 'a@12', 'b@12'])
  })
})
