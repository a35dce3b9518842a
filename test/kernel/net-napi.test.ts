/**
 * NAPI and the NET_RX softirq (kernel/net/napi.ts, kernel/net/softirq.ts): the poll runs after
 * the hard-IRQ handler, in softirq context; the weight and the device budget; repolling; time
 * squeezes; the hand-over to ksoftirqd so that a busy NIC cannot starve process tasks; napi_disable
 * waiting for a poll; a missed schedule; netif_rx's backlog.
 */
import { describe, expect, it } from 'vitest'
import {
  alloc_etherdev, boot, dev_kfree_skb_any, eth_type_trans, IRQ_HANDLED, ktime_get_ns, local_irq_restore, local_irq_save,
  msleep, napi_complete_done, napi_disable, napi_enable, napi_schedule, NAPIF_STATE_NPSVC, NAPIF_STATE_SCHED,
  NETDEV_TX_OK, netdev_alloc_skb, netdev_info, netif_napi_add, netif_rx, netUser, pci_enable_device, pci_iomap, pci_register_driver,
  ptr_add, readl, register_netdev, request_irq, SET_NETDEV_DEV, skb_put_data, writel, type BootOptions,
  type NapiStruct, type PciDriver,
} from '../../kernel/index.js'
import type { KernelLogger } from '../../kernel/boot.js'
import { currentOrNull } from '../../kernel/sched/current.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { etherFrame, veth_inject, veth_kick, vethPair, type VethOptions } from '../fixtures/veth.js'

const quiet: BootOptions = { log: 'silent' }
// Thousands of frames: no source-line capture per allocation (it costs the host ~0.5 ms each).
const fast: BootOptions = { log: 'silent', checks: { stacks: false } }

async function upPair(opts: VethOptions = {}) {
  const sys = boot(fast)
  const pair = await vethPair(sys, opts)
  const net = netUser(sys)
  await net.ifup('eth0')
  await net.ifup('eth1')
  return { sys, net, ...pair, pa: pair.a._priv, pb: pair.b._priv }
}

const frames = (n: number, dst: Uint8Array, src: Uint8Array) => Array.from({ length: n }, (_, i) => etherFrame(dst, src, 0x88b5, 46, i))
const salt = (f: Uint8Array) => f[14]! // etherFrame's payload starts with the salt

describe('NAPI', () => {
  it('a hard-IRQ handler schedules the poll, which runs after the handler returns, in softirq context', async () => {
    const hw = new IrqTestDevice('irqdev0')
    const lines: string[] = []
    const log: KernelLogger = { error: () => undefined, warn: () => undefined, info: (_, m) => lines.push(m), debug: () => undefined }
    const sys = boot({ log, devices: [hw] })
    const events: string[] = []
    const where = () => `${currentOrNull()!.context}${currentOrNull()!.atomic ? ' (atomic)' : ''}`
    const drv: PciDriver = {
      name: 'minnic',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        pci_enable_device(pdev)
        const regs = pci_iomap(pdev, 0)!
        const nd = alloc_etherdev({})!
        SET_NETDEV_DEV(nd, pdev.dev)
        nd.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
        const napi = netif_napi_add(nd, null, (n) => {
          events.push(`poll in ${where()}`)
          napi_complete_done(n, 0)
          return 0
        })
        napi_enable(napi)
        const rc = request_irq(pdev.irq, () => {
          writel(readl(regs), ptr_add(regs, 4))
          events.push(`handler in ${where()}`)
          napi_schedule(napi)
          events.push('handler returns')
          return IRQ_HANDLED
        }, 0, 'minnic', nd)
        if (rc !== 0) return Promise.resolve(rc)
        const r = register_netdev(nd)
        netdev_info(nd, 'registered, irq %d', pdev.irq)
        return Promise.resolve(r)
      },
    }
    await sys.run(() => pci_register_driver(drv))
    hw.fire(0, 5000)
    await sys.runUntilIdle()
    expect(events).toEqual(['handler in hardirq (atomic)', 'handler returns', 'poll in softirq (atomic)'])
    // SET_NETDEV_DEV: messages name the driver, the PCI device and the interface, as Linux's do.
    expect(lines).toEqual([`minnic irqdev0 eth0: registered, irq ${hw.intxLine}`])
    expect(sys.reports).toEqual([])
  })

  it('polls one busy instance once per NET_RX round with its weight, repolls it, and completes', async () => {
    const { sys, net, a, b, pb } = await upPair({ ringSize: 2000 })
    const sock = net.socket('eth1', { capacity: 5000 })
    await sys.run(() => {
      expect(veth_inject(b, frames(1000, b.dev_addr, a.dev_addr))).toBe(1000)
      veth_kick(b)
    })
    await sys.runUntilIdle()
    expect(pb.polls.every((p) => p.budget === 64)).toBe(true)
    expect(pb.polls.map((p) => p.work)).toEqual([...Array<number>(15).fill(64), 40])
    expect(pb.polls.map((p) => p.completed)).toEqual([...Array<null>(15).fill(null), true])
    // As in Linux, a repolled instance goes to the end of the poll list for the next round, so a
    // lone instance is polled once per round and never spends the budget of 300: no squeeze. The
    // softirq restarts 10 times (10 polls), then ksoftirqd does the rest.
    expect(net.softnet.time_squeeze).toBe(0)
    expect(net.softnet.ksoftirqd_wakeups).toBe(1)
    expect(sock.received.map((r) => salt(r.data))).toEqual(Array.from({ length: 1000 }, (_, i) => i & 0xff))
    expect(pb.napi!.state & NAPIF_STATE_SCHED).toBe(0)
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('several busy instances share the device budget of a round (netdev_budget), and are squeezed', async () => {
    const { sys, net, a, b, pa, pb } = await upPair({ ringSize: 2000 })
    expect(net.sysctl('net.core.netdev_budget', 100)).toBe(100)
    await sys.run(() => {
      veth_inject(a, frames(450, a.dev_addr, b.dev_addr))
      veth_inject(b, frames(450, b.dev_addr, a.dev_addr))
      const flags = local_irq_save() // both scheduled before the softirq runs
      veth_kick(a)
      veth_kick(b)
      local_irq_restore(flags)
    })
    await sys.runUntilIdle()
    // Each round polls eth0 (64: 36 left) then eth1 (64: the budget is spent): a squeeze, 7 times;
    // the eighth round needs 2 + 2.
    for (const p of [pa, pb]) expect(p.polls.map((x) => x.work)).toEqual([...Array<number>(7).fill(64), 2])
    expect(net.softnet.time_squeeze).toBe(7)
    expect(net.softnet.processed).toBe(900)
  })

  it('with a task waiting to run, the softirq hands the rest to ksoftirqd after one round', async () => {
    const { sys, net, a, b } = await upPair({ ringSize: 2000 })
    const sock = net.socket('eth1', { capacity: 5000 })
    let seen = -1
    await Promise.all([
      sys.run(() => {
        veth_inject(b, frames(1000, b.dev_addr, a.dev_addr))
        veth_kick(b)
        ktime_get_ns() // a kernel call: the raised softirq runs here
      }, 'kicker'),
      sys.run(() => {
        seen = sock.pending
      }, 'other'),
    ])
    expect(seen).toBe(64) // need_resched(): one round, then the rest waits for ksoftirqd, behind 'other'
    await sys.runUntilIdle()
    expect(sock.pending).toBe(1000)
    expect(net.softnet.ksoftirqd_wakeups).toBeGreaterThanOrEqual(1)
  })

  it('an endlessly busy NIC does not starve process tasks: ksoftirqd takes turns with them', async () => {
    const { sys, net, a, b, pb } = await upPair()
    await sys.run(() => {
      pb.endless = etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46)
      veth_kick(b)
    })
    const late: number[] = []
    await sys.run(async () => {
      for (let i = 0; i < 3; i++) {
        const t0 = ktime_get_ns()
        await msleep(1)
        late.push(ktime_get_ns() - t0 - 1e6)
      }
    }, 'sleeper')
    const polled = pb.polls.length
    expect(polled).toBeGreaterThan(30)
    expect(pb.polls.every((p) => p.work === 64 && p.completed === null)).toBe(true)
    // Each wake-up waits at most for the NET_RX round in progress (64 frames).
    for (const l of late) expect(l).toBeLessThan(100_000)
    expect(net.softnet.ksoftirqd_wakeups).toBeGreaterThan(3)
    pb.endless = null
    await sys.runUntilIdle()
    expect(pb.polls.at(-1)).toMatchObject({ work: 0, completed: true })
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('napi_disable waits for a busy poll, then completes it; an idle one returns at once', async () => {
    const { sys, b, pb } = await upPair()
    // Idle: nothing to wait for.
    const idle = await sys.run(async () => {
      const t0 = ktime_get_ns()
      await napi_disable(pb.napi!)
      napi_enable(pb.napi!)
      return ktime_get_ns() - t0
    })
    expect(idle).toBeLessThan(1000)
    await sys.run(() => {
      pb.endless = new Uint8Array(60)
      veth_kick(b)
    })
    const before = pb.polls.length
    await sys.run(() => napi_disable(pb.napi!))
    expect(pb.polls.length).toBeGreaterThan(before) // it waited for ksoftirqd's poll
    expect(pb.polls.at(-1)!.work).toBe(64) // the last poll used its weight: the core completed it
    expect(pb.napi!.state & (NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC)).toBe(NAPIF_STATE_SCHED | NAPIF_STATE_NPSVC)
    const frozen = pb.polls.length
    await sys.runFor(2_000_000)
    expect(pb.polls.length).toBe(frozen)
    expect(sys.reports).toEqual([])
    // Disabling twice would wait forever; enabling an enabled instance is a BUG.
    await expect(sys.run(() => napi_disable(pb.napi!))).rejects.toThrow(/already disabled: this would wait forever/)
  })

  it('enabling an enabled NAPI instance is a BUG', async () => {
    const { sys, pb } = await upPair()
    await expect(sys.run(() => napi_enable(pb.napi!))).rejects.toThrow(/napi_enable: the NAPI instance of eth1 is already enabled/)
  })

  it('a schedule during the poll is not lost: napi_complete_done returns false and the poll runs again', async () => {
    const sys = boot(quiet)
    const results: { again: boolean; done: boolean }[] = []
    let napiRef: NapiStruct | null = null
    await sys.run(() => {
      const nd = alloc_etherdev({})!
      nd.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
      const napi = netif_napi_add(nd, null, (n) => {
        // The device raises its interrupt again while we poll (another CPU, or before we unmask).
        const again = results.length === 0 ? napi_schedule(n) : false
        results.push({ again, done: napi_complete_done(n, 1) })
        return 1
      })
      napiRef = napi
      napi_enable(napi)
      register_netdev(nd)
      napi_schedule(napi)
    })
    await sys.runUntilIdle()
    expect(results).toEqual([{ again: false, done: false }, { again: false, done: true }])
    expect(napiRef!.state & NAPIF_STATE_SCHED).toBe(0)
  })

  it('a poll that returns more than its budget is logged; one that throws is an oops of that poll only', async () => {
    const lines: string[] = []
    const log: KernelLogger = { error: (_, m) => lines.push(m), warn: () => undefined, info: () => undefined, debug: () => undefined }
    const sys = boot({ log })
    let calls = 0
    await sys.run(() => {
      const nd = alloc_etherdev({})!
      nd.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
      const napi = netif_napi_add(nd, null, (n) => {
        calls++
        if (calls === 1) return 100
        napi_complete_done(n, 0)
        if (calls === 2) throw new TypeError('ring is undefined')
        return 0
      }, 8)
      napi_enable(napi)
      register_netdev(nd)
      napi_schedule(napi)
    })
    await sys.runUntilIdle()
    expect(lines.some((l) => l.includes('returned 100, exceeding its budget of 8'))).toBe(true)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    expect(sys.reports[0]!.message).toMatch(/TypeError: ring is undefined/)
    // The system goes on.
    expect(await sys.run(() => 1)).toBe(1)
  })
})

describe('netif_rx', () => {
  it('queues on the backlog from any context; beyond netdev_max_backlog frames are dropped and counted', async () => {
    const { sys, net, a, b } = await upPair()
    net.sysctl('net.core.netdev_max_backlog', 10)
    const sock = net.socket('eth1')
    const rcs = await sys.run(() => {
      const out: number[] = []
      const flags = local_irq_save() // no softirq can run in between: the backlog fills up
      for (const f of frames(15, b.dev_addr, a.dev_addr)) {
        const skb = netdev_alloc_skb(b, f.length)!
        skb_put_data(skb, f)
        skb.protocol = eth_type_trans(skb, b)
        out.push(netif_rx(skb))
      }
      local_irq_restore(flags)
      return out
    })
    expect(rcs).toEqual([...Array<number>(10).fill(0), ...Array<number>(5).fill(1)])
    await sys.runUntilIdle()
    expect(sock.pending).toBe(10)
    expect(net.softnet.dropped).toBe(5)
    expect((await net.stats('eth1')).rx_dropped).toBe(5)
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })
})
