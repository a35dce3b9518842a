/**
 * The transmit queue (kernel/net/dev.ts, kernel/net/netdevice.ts): netif_stop_queue /
 * netif_wake_queue with frames waiting in the qdisc, tx_queue_len, NETDEV_TX_BUSY and the requeue,
 * a driver that returns BUSY with its queue awake, and the TX watchdog calling ndo_tx_timeout.
 */
import { describe, expect, it } from 'vitest'
import { boot, HZ, msleep, NET_XMIT_DROP, NET_XMIT_SUCCESS, netUser, type BootOptions } from '../../kernel/index.js'
import type { KernelLogger } from '../../kernel/boot.js'
import { etherFrame, veth_kick, vethPair, type VethOptions } from '../fixtures/veth.js'

const JIFFY_NS = 1e9 / HZ

function capture(): { log: KernelLogger; lines: string[] } {
  const lines: string[] = []
  const push = (level: string) => (_: object, msg: string) => lines.push(`${level}: ${msg}`)
  return { log: { error: push('error'), warn: push('warn'), info: push('info'), debug: push('debug') }, lines }
}

async function upPair(opts: VethOptions = {}, options: BootOptions = { log: 'silent' }) {
  const sys = boot(options)
  const pair = await vethPair(sys, opts)
  const net = netUser(sys)
  await net.ifup('eth0')
  await net.ifup('eth1')
  return { sys, net, ...pair, pa: pair.a._priv, pb: pair.b._priv }
}

describe('flow control', () => {
  it('frames wait in the qdisc while the driver has stopped its queue, and leave in order when it wakes it', async () => {
    const { sys, net, a, b, pb } = await upPair({ ringSize: 4 })
    pb.paused = true // the receiver takes nothing: eth0's ring to it fills up
    const rx = net.socket('eth1', { capacity: 100 })
    for (let i = 0; i < 10; i++) expect(await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, i))).toBe(NET_XMIT_SUCCESS)
    expect(net.device('eth0').queueStopped).toBe(true)
    let st = await net.stats('eth0')
    expect(st.qdisc).toMatchObject({ qlen: 6, requeues: 0, drops: 0 })
    expect(st.tx_packets).toBe(4)
    pb.paused = false
    await sys.run(() => veth_kick(b))
    await sys.runUntilIdle()
    expect(rx.received.map((r) => r.data[14])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    st = await net.stats('eth0')
    expect(st.qdisc.qlen).toBe(0)
    expect(st.tx_packets).toBe(10)
    expect(net.device('eth0').queueStopped).toBe(false)
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('beyond tx_queue_len the qdisc drops, counts, and says NET_XMIT_DROP', async () => {
    const { sys, net, a, b, pb } = await upPair({ ringSize: 2 })
    net.setTxQueueLen('eth0', 3)
    pb.paused = true
    const rcs: number[] = []
    for (let i = 0; i < 7; i++) rcs.push(await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, i)))
    expect(rcs).toEqual([0, 0, 0, 0, 0, NET_XMIT_DROP, NET_XMIT_DROP])
    const st = await net.stats('eth0')
    expect(st.qdisc).toMatchObject({ qlen: 3, drops: 2 })
    expect(st.tx_dropped).toBe(0) // qdisc drops are the qdisc's (tc -s qdisc), not the device's
    expect(net.skbsInUse).toBe(5)
    await net.ifdown('eth0') // closing drops what the qdisc holds
    expect(net.skbsInUse).toBe(2) // the two in eth1's ring
    await net.ifdown('eth1')
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('NETDEV_TX_BUSY requeues the frame at the head of the qdisc; order is kept', async () => {
    const { sys, net, a, b, pb } = await upPair({ ringSize: 2, whenFull: 'busy' })
    pb.paused = true
    for (let i = 0; i < 4; i++) await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, i))
    const st = await net.stats('eth0')
    expect(st.qdisc).toMatchObject({ qlen: 2, requeues: 1 })
    const rx = net.socket('eth1')
    pb.paused = false
    await sys.run(() => veth_kick(b))
    await sys.runUntilIdle()
    expect(rx.received.map((r) => r.data[14])).toEqual([0, 1, 2, 3])
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('BUSY with the queue awake is a driver bug: the stack logs it and retries in a loop (bounded, in ksoftirqd)', async () => {
    const { log, lines } = capture()
    const { sys, net, a, b, pb } = await upPair({ ringSize: 1, whenFull: 'busy-awake' }, { log, checks: { stacks: false } })
    pb.paused = true
    const sleeper = { wakes: 0 }
    await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, 0))
    await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, 1))
    // Other tasks still run while NET_TX spins: ksoftirqd takes turns with them.
    await sys.run(async () => {
      for (let i = 0; i < 3; i++) {
        await msleep(0.1)
        sleeper.wakes++
      }
    })
    expect(sleeper.wakes).toBe(3)
    const st = await net.stats('eth0')
    expect(st.qdisc.requeues).toBeGreaterThan(100)
    expect(lines.filter((l) => l.includes('BUG! ndo_start_xmit returned NETDEV_TX_BUSY while its queue is awake'))).toHaveLength(1)
    expect(net.softnet.ksoftirqd_wakeups).toBeGreaterThan(1)
    const rx = net.socket('eth1')
    pb.paused = false
    await sys.run(() => veth_kick(b))
    await sys.runUntilIdle()
    expect(rx.received.map((r) => r.data[14])).toEqual([0, 1])
  })
})

describe('the TX watchdog', () => {
  it('calls ndo_tx_timeout (softirq context) when the queue stays stopped for watchdog_timeo, and again each period', async () => {
    const { log, lines } = capture()
    const { sys, net, a, b, pa, pb } = await upPair({ ringSize: 2, watchdogTimeo: 10 }, { log })
    pb.paused = true
    for (let i = 0; i < 3; i++) await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, i))
    expect(net.device('eth0').queueStopped).toBe(true)
    const stoppedAt = Math.floor(sys.clock / JIFFY_NS)
    // Not before watchdog_timeo jiffies have passed (time_after: strictly more).
    await sys.runFor((stoppedAt + 10) * JIFFY_NS - sys.clock)
    expect(pa.timeouts).toBe(0)
    await sys.runFor(2 * JIFFY_NS)
    expect(pa.timeouts).toBe(1)
    expect(pa.log.find((l) => l.what === 'tx_timeout')).toEqual({ what: 'tx_timeout', context: 'softirq', atomic: true, detail: { txqueue: 0 } })
    expect(lines.filter((l) => l.includes('NETDEV WATCHDOG'))).toEqual([`error: eth0: NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out ${(11 * JIFFY_NS) / 1e6} ms`])
    await sys.runFor(10 * JIFFY_NS)
    expect(pa.timeouts).toBe(2)
    expect((await net.stats('eth0')).tx_timeout).toBe(2)
    // The receiver catches up: the queue wakes, the watchdog stops, and the system can go idle.
    pb.paused = false
    await sys.run(() => veth_kick(b))
    await sys.runUntilIdle()
    expect(net.device('eth0').queueStopped).toBe(false)
    expect(pa.timeouts).toBe(2)
    expect(sys.reports).toEqual([])
  })

  it('does not fire without carrier, without ndo_tx_timeout, or while the queue runs', async () => {
    // Carrier lost while stopped: the qdisc is detached, its frames dropped, the watchdog stopped.
    const one = await upPair({ ringSize: 1, watchdogTimeo: 5 })
    one.pb.paused = true
    for (let i = 0; i < 3; i++) await one.net.send('eth0', etherFrame(one.b.dev_addr, one.a.dev_addr, 0x88b5, 46, i))
    await one.net.ifdown('eth1')
    await one.sys.runFor(50 * JIFFY_NS)
    expect(one.pa.timeouts).toBe(0)
    expect((await one.net.stats('eth0')).qdisc.qlen).toBe(0)
    // No ndo_tx_timeout: no watchdog at all (runUntilIdle returns with the queue stopped).
    const two = await upPair({ ringSize: 1, txTimeout: false })
    two.pb.paused = true
    for (let i = 0; i < 2; i++) await two.net.send('eth0', etherFrame(two.b.dev_addr, two.a.dev_addr, 0x88b5, 46, i))
    await two.sys.runUntilIdle()
    expect(two.net.device('eth0').queueStopped).toBe(true)
    expect((await two.net.stats('eth0')).tx_timeout).toBe(0)
    // Traffic flowing: nothing to time out, and an idle NIC lets the system go idle.
    const three = await upPair({ watchdogTimeo: 2 })
    for (let i = 0; i < 5; i++) await three.net.send('eth0', etherFrame(three.b.dev_addr, three.a.dev_addr, 0x88b5, 46, i))
    await three.sys.runUntilIdle()
    expect(three.pa.timeouts).toBe(0)
  })

  it('a driver whose ndo_tx_timeout wakes the queue gets one timeout per stall', async () => {
    const { sys, net, a, b, pa, pb } = await upPair({ ringSize: 1, watchdogTimeo: 4, recoverOnTimeout: true })
    pb.paused = true
    for (let i = 0; i < 3; i++) await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46, i))
    await sys.runFor(6 * JIFFY_NS)
    expect(pa.timeouts).toBe(1)
    // The woken queue tried again, found the ring still full and stopped: a new stall.
    expect(net.device('eth0').queueStopped).toBe(true)
    expect((await net.stats('eth0')).qdisc.requeues).toBe(1)
    await sys.runFor(5 * JIFFY_NS)
    expect(pa.timeouts).toBe(2)
  })
})
