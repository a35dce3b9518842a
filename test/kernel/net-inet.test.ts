/**
 * The tiny IPv4 stack (kernel/net/inet.ts): ARP replies and the neighbour cache, ICMP echo
 * replies checked byte by byte (with checksums computed here, independently), the checks on
 * received headers, the harness's ping, and two systems that each keep their own state.
 */
import { describe, expect, it } from 'vitest'
import { boot, ETH_P_ARP, ETH_P_IP, netUser, type BootOptions, type NetDevice } from '../../kernel/index.js'
import { vethPair, type VethOptions } from '../fixtures/veth.js'

const quiet: BootOptions = { log: 'silent' }

async function upPair(opts: VethOptions = {}, options: BootOptions = quiet) {
  const sys = boot(options)
  const pair = await vethPair(sys, opts)
  const net = netUser(sys)
  await net.ifup('eth0')
  await net.ifup('eth1')
  net.setAddress('eth0', '10.0.0.1/24')
  net.setAddress('eth1', '10.0.0.2/24')
  return { sys, net, ...pair }
}

// ---------------------------------------------------------------------- frame building (independent of the kernel's)

function csum(b: Uint8Array): number {
  let s = 0
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) + (i + 1 < b.length ? b[i + 1]! : 0)
  while (s > 0xffff) s = (s >>> 16) + (s & 0xffff)
  return ~s & 0xffff
}
const ip = (s: string) => s.split('.').map(Number)
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!

interface IcmpOpts {
  type?: number
  id?: number
  seq?: number
  data?: Uint8Array
  ttl?: number
  badIpCsum?: boolean
  badIcmpCsum?: boolean
  fragOff?: number
  totLenDelta?: number
  pad?: number
}

function icmpFrame(dst: Uint8Array, src: Uint8Array, sip: string, dip: string, o: IcmpOpts = {}): Uint8Array {
  const data = o.data ?? new Uint8Array(32).map((_, i) => i)
  const icmp = new Uint8Array(8 + data.length)
  icmp[0] = o.type ?? 8
  icmp[4] = (o.id ?? 0x4242) >> 8
  icmp[5] = (o.id ?? 0x4242) & 0xff
  icmp[6] = (o.seq ?? 1) >> 8
  icmp[7] = (o.seq ?? 1) & 0xff
  icmp.set(data, 8)
  const c = csum(icmp) ^ (o.badIcmpCsum === true ? 1 : 0)
  icmp[2] = c >> 8
  icmp[3] = c & 0xff
  const f = new Uint8Array(14 + 20 + icmp.length + (o.pad ?? 0))
  f.set(dst, 0)
  f.set(src, 6)
  f[12] = 0x08
  const h = f.subarray(14, 34)
  h[0] = 0x45
  const tot = 20 + icmp.length + (o.totLenDelta ?? 0)
  h[2] = tot >> 8
  h[3] = tot & 0xff
  h[4] = 0x12
  h[6] = (o.fragOff ?? 0) >> 8
  h[7] = (o.fragOff ?? 0) & 0xff
  h[8] = o.ttl ?? 64
  h[9] = 1
  h.set(ip(sip), 12)
  h.set(ip(dip), 16)
  const hc = csum(h) ^ (o.badIpCsum === true ? 1 : 0)
  h[10] = hc >> 8
  h[11] = hc & 0xff
  f.set(icmp, 34)
  return f
}

function arpFrame(dst: Uint8Array, src: Uint8Array, op: number, sip: string, tip: string, tha = new Uint8Array(6)): Uint8Array {
  const f = new Uint8Array(42)
  f.set(dst, 0)
  f.set(src, 6)
  f[12] = 0x08
  f[13] = 0x06
  const a = f.subarray(14)
  a.set([0, 1, 0x08, 0x00, 6, 4, 0, op])
  a.set(src, 8)
  a.set(ip(sip), 14)
  a.set(tha, 18)
  a.set(ip(tip), 24)
  return f
}

const BCAST = new Uint8Array(6).fill(0xff)
const mac = (d: NetDevice) => d.dev_addr.slice()

describe('ARP', () => {
  it('answers a request for its address, learns the sender, and ignores requests for other addresses', async () => {
    const { sys, net, a, b } = await upPair()
    const rx = net.socket('eth0')
    await net.send('eth0', arpFrame(BCAST, mac(a), 1, '10.0.0.1', '10.0.0.2'))
    await net.send('eth0', arpFrame(BCAST, mac(a), 1, '10.0.0.1', '10.0.0.77'))
    expect(rx.pending).toBe(1)
    const r = rx.recv()!
    expect(r.protocol).toBe(ETH_P_ARP)
    const f = r.data
    expect(f.length).toBe(42) // no padding: the stack does not pad, drivers do (eth_skb_pad)
    expect([...f.subarray(0, 6)]).toEqual([...mac(a)])
    expect([...f.subarray(6, 12)]).toEqual([...mac(b)])
    expect([...f.subarray(14, 22)]).toEqual([0, 1, 8, 0, 6, 4, 0, 2]) // Ethernet/IPv4, op 2 (reply)
    expect([...f.subarray(22, 28)]).toEqual([...mac(b)]) // sha
    expect([...f.subarray(28, 32)]).toEqual([10, 0, 0, 2]) // spa
    expect([...f.subarray(32, 38)]).toEqual([...mac(a)]) // tha
    expect([...f.subarray(38, 42)]).toEqual([10, 0, 0, 1]) // tpa
    expect(net.arp('eth1')).toEqual([{ ip: '10.0.0.1', mac: '02:00:00:00:' + mac(a)[4]!.toString(16).padStart(2, '0') + ':01' }])
    expect(net.ipStats('eth1').arp).toEqual({ InRequests: 2, InReplies: 0, OutRequests: 0, OutReplies: 1 })
    expect(sys.reports).toEqual([])
  })

  it('does not answer without an address, or for a frame addressed to another station', async () => {
    const { net, a } = await upPair()
    const rx = net.socket('eth0')
    await net.send('eth0', arpFrame(new Uint8Array([2, 7, 7, 7, 7, 7]), mac(a), 1, '10.0.0.1', '10.0.0.2'))
    net.setAddress('eth1', null)
    await net.send('eth0', arpFrame(BCAST, mac(a), 1, '10.0.0.1', '10.0.0.2'))
    expect(rx.pending).toBe(0)
  })
})

describe('ICMP echo', () => {
  it('replies with the same identifier, sequence and data, correct checksums, TTL 64 and swapped addresses', async () => {
    const { sys, net, a, b } = await upPair()
    const rx = net.socket('eth0')
    const data = new Uint8Array(100).map((_, i) => (i * 3) & 0xff)
    await net.send('eth0', icmpFrame(mac(b), mac(a), '10.0.0.1', '10.0.0.2', { id: 0x1234, seq: 7, data, ttl: 9 }))
    const f = rx.recv()!.data
    expect([...f.subarray(0, 6)]).toEqual([...mac(a)])
    expect([...f.subarray(6, 12)]).toEqual([...mac(b)])
    expect(u16(f, 12)).toBe(ETH_P_IP)
    const h = f.subarray(14, 34)
    expect(h[0]).toBe(0x45)
    expect(u16(h, 2)).toBe(20 + 8 + 100)
    expect(h[8]).toBe(64)
    expect(h[9]).toBe(1)
    expect([...h.subarray(12, 16)]).toEqual([10, 0, 0, 2])
    expect([...h.subarray(16, 20)]).toEqual([10, 0, 0, 1])
    expect(csum(h)).toBe(0)
    const icmp = f.subarray(34)
    expect(icmp.length).toBe(108)
    expect(icmp[0]).toBe(0) // echo reply
    expect(icmp[1]).toBe(0)
    expect(u16(icmp, 4)).toBe(0x1234)
    expect(u16(icmp, 6)).toBe(7)
    expect([...icmp.subarray(8)]).toEqual([...data])
    expect(csum(icmp)).toBe(0)
    expect(net.ipStats('eth1').icmp).toMatchObject({ InEchos: 1, OutEchoReps: 1 })
    expect(sys.reports).toEqual([])
  })

  it('ignores Ethernet padding after the IP datagram', async () => {
    const { net, a, b } = await upPair()
    const rx = net.socket('eth0')
    await net.send('eth0', icmpFrame(mac(b), mac(a), '10.0.0.1', '10.0.0.2', { data: new Uint8Array(0), pad: 18 }))
    const f = rx.recv()!.data
    expect(f.length).toBe(14 + 28)
    expect(csum(f.subarray(34))).toBe(0)
  })

  it('drops bad headers, bad checksums, fragments, truncated datagrams and other destinations, counting each', async () => {
    const { sys, net, a, b } = await upPair()
    const rx = net.socket('eth0')
    const send = (o: IcmpOpts, dip = '10.0.0.2') => net.send('eth0', icmpFrame(mac(b), mac(a), '10.0.0.1', dip, o))
    await send({ badIpCsum: true })
    await send({ badIcmpCsum: true })
    await send({ fragOff: 0x2000 }) // more fragments
    await send({ totLenDelta: 10 })
    await send({}, '10.0.0.3')
    await send({ type: 13 }) // a timestamp request: not answered
    const bad = icmpFrame(mac(b), mac(a), '10.0.0.1', '10.0.0.2')
    bad[14] = 0x65 // IP version 6 in an IPv4 frame
    await net.send('eth0', bad)
    await net.send('eth0', bad.subarray(0, 20)) // shorter than an IP header
    expect(rx.pending).toBe(0)
    const st = net.ipStats('eth1')
    expect(st.ip).toMatchObject({ InReceives: 8, InHdrErrors: 3, InCsumErrors: 1, ReasmFails: 1, InTruncatedPkts: 1, InAddrErrors: 1, InDelivers: 2 })
    expect(st.icmp).toMatchObject({ InMsgs: 2, InErrors: 1, InEchos: 0, OutEchoReps: 0 })
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })
})

describe('ping', () => {
  it('resolves the neighbour with ARP, then gets its echo replies with RTTs in virtual time', async () => {
    const { sys, net } = await upPair()
    const t0 = sys.clock
    const r = await net.ping('eth0', '10.0.0.2', { count: 3, intervalMs: 10 })
    expect(r.transmitted).toBe(3)
    expect(r.received).toBe(3)
    expect(r.unreachable).toBe(0)
    expect(r.replies.map((x) => [x.seq, x.ttl, x.bytes, x.from])).toEqual([
      [1, 64, 64, '10.0.0.2'],
      [2, 64, 64, '10.0.0.2'],
      [3, 64, 64, '10.0.0.2'],
    ])
    for (const x of r.replies) {
      expect(x.rttNs).toBeGreaterThan(0)
      expect(x.rttNs).toBeLessThan(100_000)
    }
    expect(sys.clock - t0).toBeGreaterThanOrEqual(20e6) // two intervals of 10 ms
    expect(net.arp('eth0')).toEqual([{ ip: '10.0.0.2', mac: net.device('eth1').mac }])
    expect(net.arp('eth1')).toEqual([{ ip: '10.0.0.1', mac: net.device('eth0').mac }])
    expect(net.ipStats('eth0').arp.OutRequests).toBe(1) // cached after the first
    expect(net.ipStats('eth1').icmp).toMatchObject({ InEchos: 3, OutEchoReps: 3 })
    expect(net.skbsInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('reports an address nobody answers for as unreachable after ARP retries, in virtual time', async () => {
    const { sys, net } = await upPair()
    const t0 = sys.clock
    const r = await net.ping('eth0', '10.0.0.9', { count: 1, timeoutMs: 2500 })
    expect(r).toEqual({ transmitted: 1, received: 0, replies: [], unreachable: 1 })
    expect(net.ipStats('eth0').arp.OutRequests).toBe(3) // at 0, 1 and 2 s
    expect(sys.clock - t0).toBeGreaterThanOrEqual(2.5e9)
    expect(sys.clock - t0).toBeLessThan(2.6e9)
  })

  it('gets no reply from a peer that lost its address, or when the peer is down', async () => {
    const { net } = await upPair()
    expect((await net.ping('eth0', '10.0.0.2', { timeoutMs: 50 })).received).toBe(1)
    net.setAddress('eth1', '10.0.0.3/24') // the cached neighbour no longer answers for .2
    const r = await net.ping('eth0', '10.0.0.2', { timeoutMs: 50 })
    expect(r).toMatchObject({ transmitted: 1, received: 0, unreachable: 0 })
    await net.ifdown('eth0')
    await expect(net.ping('eth0', '10.0.0.3')).rejects.toThrow(/eth0 is down/)
  })

  it('works in two systems at once, each with its own interfaces, addresses and neighbours', async () => {
    const one = await upPair()
    const two = await upPair({}, { log: 'silent', arch: 'x86_64', seed: 7 })
    two.net.setAddress('eth0', '192.168.1.1/24')
    two.net.setAddress('eth1', '192.168.1.2/24')
    const [r1, r2] = await Promise.all([
      one.net.ping('eth0', '10.0.0.2', { count: 2, intervalMs: 5 }),
      two.net.ping('eth0', '192.168.1.2', { count: 2, intervalMs: 5 }),
    ])
    expect(r1.received).toBe(2)
    expect(r2.received).toBe(2)
    expect(one.net.arp('eth0').map((e) => e.ip)).toEqual(['10.0.0.2'])
    expect(two.net.arp('eth0').map((e) => e.ip)).toEqual(['192.168.1.2'])
    expect([...one.sys.reports, ...two.sys.reports]).toEqual([])
  })
})
