/**
 * The network subsystem (kernel/net/): net_device registration and names, ifup/ifdown and the
 * contexts of the driver's callbacks, the transmit path's context, frames between two devices
 * (packet sockets, page fragments, linearization), carrier, netdev_* logging, and bad input from
 * user space. The device is the software veth pair of test/fixtures/veth.ts.
 */
import { describe, expect, it } from 'vitest'
import {
  alloc_etherdev, boot, DmalabError, EEXIST, EINVAL, ETH_P_ARP, ETH_P_IP, free_netdev, InvalidArgumentError, KernelOops,
  msleep, NET_XMIT_CN, NET_XMIT_SUCCESS, netdev_info, netdev_priv, netUser, PACKET_BROADCAST, PACKET_HOST,
  PACKET_OTHERHOST, PACKET_OUTGOING, register_netdev, unregister_netdev, type BootOptions,
  type NetDevice, type NetDeviceOps, ENETDOWN, NETDEV_TX_OK, dev_kfree_skb_any, ENODEV, netif_device_detach,
  netif_device_attach, netif_device_present, dev_open,
} from '../../kernel/index.js'
import type { KernelLogger } from '../../kernel/boot.js'
import { etherFrame, veth_create, vethDestroy, vethPair, type VethOptions, type VethPriv } from '../fixtures/veth.js'

const quiet: BootOptions = { log: 'silent' }
const BCAST = new Uint8Array(6).fill(0xff)

/** A logger that keeps every message. */
function capture(): { log: KernelLogger; lines: string[] } {
  const lines: string[] = []
  const push = (level: string) => (_: object, msg: string) => lines.push(`${level}: ${msg}`)
  return { log: { error: push('error'), warn: push('warn'), info: push('info'), debug: push('debug') }, lines }
}

async function upPair(opts: VethOptions = {}, options: BootOptions = quiet) {
  const sys = boot(options)
  const pair = await vethPair(sys, opts)
  const net = netUser(sys)
  expect(await net.ifup(pair.a.name)).toBe(0)
  expect(await net.ifup(pair.b.name)).toBe(0)
  return { sys, net, ...pair, pa: pair.a._priv, pb: pair.b._priv }
}

describe('net_device registration', () => {
  it('names devices eth0, eth1, ... per system, reuses a freed name, and unregisters', async () => {
    const sys = boot(quiet)
    const p1 = await vethPair(sys)
    const p2 = await vethPair(sys)
    const net = netUser(sys)
    expect(net.devices().map((d) => [d.name, d.ifindex])).toEqual([['eth0', 1], ['eth1', 2], ['eth2', 3], ['eth3', 4]])
    await sys.run(() => unregister_netdev(p1.b))
    expect(net.devices().map((d) => d.name)).toEqual(['eth0', 'eth2', 'eth3'])
    const again = await sys.run(() => {
      const d = alloc_etherdev({})!
      d.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
      return [register_netdev(d), d.name, d.ifindex] as const
    })
    expect(again).toEqual([0, 'eth1', 5])
    // Another system counts from eth0 again: no state is shared.
    const other = boot(quiet)
    await vethPair(other)
    expect(netUser(other).devices().map((d) => d.name)).toEqual(['eth0', 'eth1'])
    await vethDestroy(sys, p2)
    expect(sys.reports).toEqual([])
  })

  it('returns -EEXIST for a taken name and -EINVAL for a bad one or an MTU out of range', async () => {
    const sys = boot(quiet)
    await vethPair(sys)
    const ops: NetDeviceOps = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
    const rc = await sys.run(() => {
      const mk = (name: string, mtu = 1500) => {
        const d = alloc_etherdev({})!
        d.netdev_ops = ops
        d.name = name
        d.mtu = mtu
        return register_netdev(d)
      }
      return [mk('eth0'), mk('has space'), mk('a/b'), mk('x'.repeat(16)), mk('%s'), mk('big', 9000), mk('wan0'), mk('wan%d')]
    })
    expect(rc).toEqual([-EEXIST, -EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL, 0, 0])
    expect(netUser(sys).devices().map((d) => d.name)).toEqual(['eth0', 'eth1', 'wan0', 'wan1'])
  })

  it('registering twice, or without ndo_start_xmit, is an oops naming the problem', async () => {
    const sys = boot(quiet)
    const { a } = await vethPair(sys)
    await expect(sys.run(() => register_netdev(a))).rejects.toThrow(/register_netdevice: eth0 was registered before/)
    const err = await sys.run(() => register_netdev(alloc_etherdev({})!)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KernelOops)
    expect(((err as KernelOops).cause as InvalidArgumentError).argument).toBe('dev.netdev_ops')
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops', 'oops'])
  })

  it('free_netdev of a registered device is a BUG; freeing twice and using it afterwards are reported', async () => {
    const sys = boot(quiet)
    const pair = await vethPair(sys)
    await expect(sys.run(() => free_netdev(pair.a))).rejects.toThrow(/free_netdev: eth0 is still registered/)
    sys.clearReports()
    await vethDestroy(sys, pair)
    expect(sys.reports).toEqual([])
    await sys.run(() => free_netdev(pair.a))
    await sys.run(() => netdev_priv(pair.b))
    expect(sys.reports.map((r) => r.kind)).toEqual(['double-free', 'use-after-free'])
  })

  it('alloc_etherdev(sizeof_priv) gives a zeroed private area in kernel memory, freed by free_netdev', async () => {
    const sys = boot(quiet)
    const before = sys.slab.live.size
    await sys.run(async () => {
      const d = alloc_etherdev(64)!
      const p = netdev_priv(d)
      expect(typeof p).toBe('number')
      expect(sys.slab.live.size).toBe(before + 1)
      free_netdev(d)
      await msleep(0)
    })
    expect(sys.slab.live.size).toBe(before)
    expect(sys.reports).toEqual([])
  })
})

describe('ifup and ifdown', () => {
  it('run ndo_open and ndo_stop in process context, under the RTNL, with netif_running() already set/cleared', async () => {
    const { sys, net, pa, pb } = await upPair()
    expect(pa.log.filter((l) => l.what === 'open')).toEqual([{ what: 'open', context: 'process', atomic: false, detail: { running: true } }])
    expect(net.device('eth0')).toMatchObject({ up: true, running: true, carrier: true, queueStopped: false })
    // ifup of an up device does nothing.
    expect(await net.ifup('eth0')).toBe(0)
    expect(pa.log.filter((l) => l.what === 'open')).toHaveLength(1)
    await net.ifdown('eth1')
    expect(pb.log.filter((l) => l.what === 'stop')).toEqual([{ what: 'stop', context: 'process', atomic: false, detail: { running: false } }])
    expect(net.device('eth1')).toMatchObject({ up: false, running: false, carrier: false })
    // The peer's stop took eth0's carrier away.
    expect(net.device('eth0')).toMatchObject({ up: true, carrier: false })
    expect(sys.reports).toEqual([]) // ndo_open's msleep and ndo_stop's napi_disable slept legally
  })

  it('a failing ndo_open leaves the device down with its -errno', async () => {
    const sys = boot(quiet)
    const { a } = await vethPair(sys)
    a.netdev_ops!.ndo_open = () => Promise.resolve(-ENODEV)
    const net = netUser(sys)
    expect(await net.ifup('eth0')).toBe(-ENODEV)
    expect(net.device('eth0')).toMatchObject({ up: false, running: false })
  })

  it('unregister_netdev of an up device calls ndo_stop', async () => {
    const { sys, a, pa } = await upPair()
    await sys.run(() => unregister_netdev(a))
    expect(pa.log.map((l) => l.what)).toContain('stop')
    expect(a.flags & 1).toBe(0)
  })
})

describe('transmit', () => {
  it('ndo_start_xmit runs in atomic (softirq, BH-disabled) context when user space sends', async () => {
    const { sys, net, a, b, pa } = await upPair()
    expect(await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46))).toBe(NET_XMIT_SUCCESS)
    expect(pa.log.filter((l) => l.what === 'xmit').map((l) => [l.context, l.atomic])).toEqual([['softirq', true]])
    expect(sys.reports).toEqual([])
  })

  it('sleeping in ndo_start_xmit is invalid-context; so is an async ndo_start_xmit', async () => {
    for (const bug of ['sleep-in-xmit', 'async-xmit'] as const) {
      const { sys, net, a, b } = await upPair({ bug })
      await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46))
      const r = sys.reports.filter((x) => x.kind === 'invalid-context').map((x) => x.message)
      // The async variant sleeps too (msleep before its first await), then returns a Promise.
      expect(r).toHaveLength(bug === 'sleep-in-xmit' ? 1 : 2)
      expect(r[0]).toMatch(/msleep\(\) in softirq context/)
      if (bug === 'async-xmit') expect(r[1]).toMatch(/eth0: ndo_start_xmit returned a Promise: it runs in atomic context/)
    }
  })

  it('a frame reaches the peer intact: packet sockets see pkt_type, protocol and the outgoing copy', async () => {
    const { sys, net, a, b } = await upPair()
    const rx = net.socket('eth1')
    const all = net.socket(null, { outgoing: true })
    const f1 = etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 100, 1)
    const f2 = etherFrame(BCAST, a.dev_addr, 0x88b5, 46, 2)
    const f3 = etherFrame(new Uint8Array([2, 9, 9, 9, 9, 9]), a.dev_addr, 0x88b5, 46, 3)
    for (const f of [f1, f2, f3]) expect(await net.send('eth0', f)).toBe(NET_XMIT_SUCCESS)
    expect(rx.received.map((r) => [r.pktType, r.protocol, r.ifname])).toEqual([
      [PACKET_HOST, 0x88b5, 'eth1'],
      [PACKET_BROADCAST, 0x88b5, 'eth1'],
      [PACKET_OTHERHOST, 0x88b5, 'eth1'],
    ])
    expect(rx.received.map((r) => r.data)).toEqual([f1, f2, f3])
    expect(all.received.map((r) => [r.ifname, r.outgoing])).toEqual([
      ['eth0', true], ['eth1', false], ['eth0', true], ['eth1', false], ['eth0', true], ['eth1', false],
    ])
    expect(all.received[0]!.pktType).toBe(PACKET_OUTGOING)
    // Nothing took the unknown EtherType but the socket; a closed socket receives nothing.
    rx.close()
    all.close()
    await net.send('eth0', f1)
    const st = await net.stats('eth1')
    expect(st.rx_nohandler).toBe(1)
    expect(st.stack.rx_packets).toBe(4)
    expect(rx.pending).toBe(3)
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('page fragments reach a scatter-gather driver; without NETIF_F_SG the stack linearizes', async () => {
    for (const sg of [true, false]) {
      const { sys, net, a, b, pa } = await upPair({ sg })
      const rx = net.socket('eth1')
      const f = etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 1000, 7)
      expect(await net.send('eth0', f, { frags: 3 })).toBe(NET_XMIT_SUCCESS)
      const x = pa.log.find((l) => l.what === 'xmit')!
      expect(x.detail).toEqual(sg ? { len: 1014, nr_frags: 3, headlen: 14 } : { len: 1014, nr_frags: 0, headlen: 1014 })
      expect(rx.recv()!.data).toEqual(f)
      expect(net.skbsInUse).toBe(0)
      expect(sys.reports).toEqual([])
    }
  })

  it('frames sent without carrier or while down are not transmitted', async () => {
    const sys = boot(quiet)
    const { a, b } = await vethPair(sys)
    const net = netUser(sys)
    const f = etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46)
    expect(await net.send('eth0', f)).toBe(-ENETDOWN)
    await net.ifup('eth0') // the peer is down: no carrier
    expect(net.device('eth0').carrier).toBe(false)
    expect(await net.send('eth0', f)).toBe(NET_XMIT_CN)
    expect((await net.stats('eth0')).qdisc.drops).toBe(1)
    await net.ifup('eth1')
    expect(net.device('eth0').carrier).toBe(true)
    expect(await net.send('eth0', f)).toBe(NET_XMIT_SUCCESS)
    expect((await net.stats('eth1')).rx_packets).toBe(1)
    expect(net.skbsInUse).toBe(0)
  })
})

describe('device state, statistics and the RTNL', () => {
  it('netif_device_detach stops the queue and netif_device_attach wakes it, sending what waited', async () => {
    const { sys, net, a, b } = await upPair()
    const rx = net.socket('eth1')
    await sys.run(() => netif_device_detach(a))
    expect(net.device('eth0').queueStopped).toBe(true)
    await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 46))
    expect((await net.stats('eth0')).qdisc.qlen).toBe(1)
    expect(await sys.run(() => netif_device_present(a))).toBe(false)
    await sys.run(() => netif_device_attach(a))
    await sys.runUntilIdle()
    expect(rx.pending).toBe(1)
    expect(net.device('eth0').queueStopped).toBe(false)
  })

  it('net.stats uses the driver\'s ndo_get_stats and adds the stack\'s drops', async () => {
    const { sys, net, a } = await upPair()
    a.netdev_ops!.ndo_get_stats = () => ({ ...a.stats, rx_packets: 1234, rx_dropped: 7 })
    a._core.rx_dropped = 2
    const st = await net.stats('eth0')
    expect(st.rx_packets).toBe(1234)
    expect(st.rx_dropped).toBe(9)
    expect(sys.reports).toEqual([])
  })

  it('ifup and ifdown of one interface are serialised by the RTNL; dev_open without it is logged', async () => {
    const { log, lines } = capture()
    const sys = boot({ log })
    const { a, pa } = await (async () => {
      const p = await vethPair(sys)
      return { ...p, pa: p.a._priv }
    })()
    const net = netUser(sys)
    await Promise.all([net.ifup('eth0'), net.ifdown('eth0'), net.ifup('eth0')])
    // ndo_open sleeps (msleep(1)), yet the three run one after the other.
    expect(pa.log.map((l) => l.what)).toEqual(['open', 'stop', 'open'])
    expect(net.device('eth0').up).toBe(true)
    await sys.run(() => dev_open(a))
    expect(lines.filter((l) => l.includes('RTNL: assertion failed in dev_open()'))).toHaveLength(1)
  })
})

describe('logging', () => {
  it('netdev_* messages carry the interface name, and the driver and parent when there is one', async () => {
    const { log, lines } = capture()
    const sys = boot({ log })
    const { a } = await vethPair(sys)
    await sys.run(() => {
      netdev_info(a, 'link is %s at %d Mb/s', 'up', 1000)
      const d = alloc_etherdev({})!
      netdev_info(d, 'probing')
    })
    expect(lines).toEqual(['info: eth0: link is up at 1000 Mb/s', 'info: (unnamed net_device) (uninitialized): probing'])
  })
})

describe('bad input from user space', () => {
  it('names the argument and leaves the state as it was', async () => {
    const { sys, net, a, b } = await upPair()
    net.setAddress('eth0', '10.0.0.1/24')
    const before = JSON.stringify(net.devices())
    const f = etherFrame(b.dev_addr, a.dev_addr, ETH_P_IP, 46)
    const arg = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
      try {
        if (typeof p === 'function') p()
        else await p
      } catch (e) {
        if (e instanceof InvalidArgumentError) return `${e.function} ${e.argument}`
        throw e
      }
      return 'no error'
    }
    expect(await arg(net.ifup('eth9'))).toBe('net.ifup name')
    expect(await arg(net.ifdown(42 as unknown as string))).toBe('net.ifdown name')
    expect(await arg(() => net.setAddress('eth0', '10.0.0/33'))).toBe('net.setAddress cidr')
    expect(await arg(() => net.setAddress('eth0', '10.0.0.1/33'))).toBe('net.setAddress cidr')
    expect(await arg(() => net.setAddress('eth0', '256.0.0.1/24'))).toBe('net.setAddress cidr')
    expect(await arg(() => net.setAddress('eth0', '10.0.0.1'))).toBe('net.setAddress cidr')
    expect(await arg(() => net.setAddress('eth0', '224.0.0.1/4'))).toBe('net.setAddress cidr')
    expect(await arg(() => net.setAddress('eth0', 7 as unknown as string))).toBe('net.setAddress cidr')
    expect(await arg(net.send('eth0', new Uint8Array(10)))).toBe('net.send frame')
    expect(await arg(net.send('eth0', new Uint8Array(1515)))).toBe('net.send frame')
    expect(await arg(net.send('eth0', [1, 2, 3] as unknown as Uint8Array))).toBe('net.send frame')
    expect(await arg(net.send('eth0', f, { frags: 18 }))).toBe('net.send opts.frags')
    expect(await arg(net.send('eth0', new Uint8Array(16), { frags: 3 }))).toBe('net.send opts.frags')
    expect(await arg(net.send('eth0', f, { fragments: 2 } as never))).toBe('net.send opts.fragments')
    expect(await arg(() => net.socket('eth0', { capacity: 0 }))).toBe('net.socket opts.capacity')
    expect(await arg(() => net.socket('nope'))).toBe('net.socket name')
    expect(await arg(net.ping('eth0', '10.0.0'))).toBe('net.ping dst')
    expect(await arg(net.ping('eth0', '10.1.0.2'))).toBe('net.ping dst')
    expect(await arg(net.ping('eth0', '10.0.0.2', { count: 0 }))).toBe('net.ping opts.count')
    expect(await arg(net.ping('eth0', '10.0.0.2', { timeoutMs: -1 }))).toBe('net.ping opts.timeoutMs')
    expect(await arg(() => net.sysctl('net.core.bogus' as never))).toBe('net.sysctl key')
    expect(await arg(() => net.setTxQueueLen('eth0', -1))).toBe('net.setTxQueueLen n')
    await expect(net.ping('eth1', '10.0.0.1')).rejects.toThrow(/eth1 has no IPv4 address/)
    // A 1514-byte frame (MTU 1500) and a 1518-byte 802.1Q-tagged one are fine.
    const big = etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 1500)
    expect(await net.send('eth0', big)).toBe(NET_XMIT_SUCCESS)
    expect(JSON.stringify(net.devices())).toBe(before)
    expect(sys.reports).toEqual([])
  })

  it('user-space calls from inside a task are an error', async () => {
    const { sys, net } = await upPair()
    const msgs = await sys.run(async () => {
      const out: string[] = []
      for (const f of [() => net.devices(), () => net.setAddress('eth0', '10.0.0.1/24'), () => net.socket('eth0')]) {
        try {
          f()
        } catch (e) {
          out.push(e instanceof DmalabError ? e.message : String(e))
        }
      }
      try {
        await net.ifup('eth0')
      } catch (e) {
        out.push(e instanceof DmalabError ? e.message : String(e))
      }
      return out
    })
    expect(msgs).toHaveLength(4)
    for (const m of msgs) expect(m).toMatch(/called from inside a task/)
    expect(net.device('eth0').address).toBeNull()
  })

  it('netUser returns one object per system and rejects a non-system', () => {
    const sys = boot(quiet)
    expect(netUser(sys)).toBe(netUser(sys))
    expect(() => netUser({} as never)).toThrow(InvalidArgumentError)
  })
})

describe('the veth fixture itself', () => {
  it('registers from kernel code, links the peers and gives them locally administered addresses', async () => {
    const sys = boot(quiet)
    const pair = await sys.run(() => veth_create({ ringSize: 8 }))
    const pa: VethPriv = pair.a._priv
    expect(pa.peer).toBe(pair.b)
    expect(pa.opts.ringSize).toBe(8)
    const d: NetDevice = pair.a
    expect(d.dev_addr[0]).toBe(0x02)
    expect(netUser(sys).device('eth1').mac.endsWith(':02')).toBe(true)
    expect(netUser(sys).device('eth0').scatterGather).toBe(true)
    expect(ETH_P_ARP).toBe(0x0806)
  })
})
