/**
 * A tiny IPv4 stack (net/ipv4/arp.c, net/ipv4/ip_input.c, net/ipv4/icmp.c, in miniature): one
 * address per net_device, set from user space; an ARP responder with a small neighbour cache; an
 * ICMP echo responder; and the echo requests of the harness's ping.
 *
 * What it does:
 * - ARP: answers requests for the device's address and learns the sender; learns from replies
 *   (and from any ARP whose sender is already cached); entries never expire.
 * - IPv4: checks version, header length, header checksum and total length (trailing Ethernet
 *   padding is ignored), drops fragments (no reassembly), options are skipped; takes unicast
 *   frames for the device's address only.
 * - ICMP: checks the checksum; answers echo requests (type 8) with echo replies (type 0) that
 *   carry the same identifier, sequence and data; matches echo replies to the pings waiting.
 *
 * Simplifications: no routing (a ping goes out of the interface it is given, to an address in
 * that interface's subnet), and an echo reply is sent to the Ethernet source of the request
 * instead of resolving its IP address through ARP. Every byte is read and written through the CPU
 * accessors (skb data in kernel memory), so the sanitizer sees the stack's accesses.
 */

import { alloc_skb, PACKET_OTHERHOST, skbRead, skb_headroom, skb_put_data, skb_reserve, NET_SKB_PAD, type SkBuff } from './skbuff.js'
import { dev_add_pack, dev_queue_xmit, NET_XMIT_SUCCESS } from './dev.js'
import { ETH_ALEN, ETH_HLEN, ETH_P_ARP, ETH_P_IP, htons, is_multicast_ether_addr } from './eth.js'
import type { NetDevice } from './netdevice.js'
import { netCall, type NetState } from './state.js'
import { init_waitqueue_head, msleep, wait_event_timeout, wake_up, type WaitQueueHead } from '../sched/time.js'
import { GFP_ATOMIC, GFP_KERNEL, HZ } from '../types.js'

export const ARPOP_REQUEST = 1
export const ARPOP_REPLY = 2
export const IPPROTO_ICMP = 1
export const ICMP_ECHOREPLY = 0
export const ICMP_ECHO = 8
/** Bytes of an ARP packet for IPv4 over Ethernet. */
const ARP_LEN = 28
const IP_HLEN = 20
const ICMP_HLEN = 8
const TTL = 64
const NS_PER_JIFFY = 1e9 / HZ

/** SNMP-style counters of one interface (a subset of /proc/net/snmp). */
export interface InetStats {
  ip: { InReceives: number; InHdrErrors: number; InCsumErrors: number; InTruncatedPkts: number; InAddrErrors: number; InUnknownProtos: number; ReasmFails: number; InDelivers: number; OutRequests: number }
  icmp: { InMsgs: number; InErrors: number; InEchos: number; InEchoReps: number; OutEchos: number; OutEchoReps: number }
  arp: { InRequests: number; InReplies: number; OutRequests: number; OutReplies: number }
}

export interface ArpEntry {
  mac: Uint8Array
  /** Virtual time it was learned or last confirmed (ns). */
  updated: number
}

export interface PingReply {
  seq: number
  /** Round-trip time in virtual ns: from just before the request was queued to the reply's arrival in the stack. */
  rttNs: number
  ttl: number
  /** ICMP bytes (header and data). */
  bytes: number
  from: string
}

interface PendingPing {
  id: number
  seq: number
  from: number
  sentAt: number
  reply: PingReply | null
}

/** The IPv4 state of one net_device (`struct in_device`). */
export interface InDevice {
  /** The address (host order) and prefix length; addr 0 when none is set. */
  addr: number
  prefix: number
  readonly arp: Map<number, ArpEntry>
  readonly wq: WaitQueueHead
  ipId: number
  readonly pending: Map<string, PendingPing>
  readonly stats: InetStats
}

const inDevices = new WeakMap<NetDevice, InDevice>()

/** The IPv4 state of a device, created on first use. */
export function in_dev_get(dev: NetDevice): InDevice {
  let d = inDevices.get(dev)
  if (d === undefined) {
    d = {
      addr: 0,
      prefix: 0,
      arp: new Map(),
      wq: init_waitqueue_head(),
      ipId: 1,
      pending: new Map(),
      stats: {
        ip: { InReceives: 0, InHdrErrors: 0, InCsumErrors: 0, InTruncatedPkts: 0, InAddrErrors: 0, InUnknownProtos: 0, ReasmFails: 0, InDelivers: 0, OutRequests: 0 },
        icmp: { InMsgs: 0, InErrors: 0, InEchos: 0, InEchoReps: 0, OutEchos: 0, OutEchoReps: 0 },
        arp: { InRequests: 0, InReplies: 0, OutRequests: 0, OutReplies: 0 },
      },
    }
    inDevices.set(dev, d)
  }
  return d
}

// ---------------------------------------------------------------------- helpers

/** The Internet checksum (RFC 1071) of bytes: 0 when bytes include a correct checksum. */
export function ip_compute_csum(bytes: Uint8Array): number {
  let sum = 0
  const n = bytes.length
  for (let i = 0; i + 1 < n; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!
  if ((n & 1) !== 0) sum += bytes[n - 1]! << 8
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16)
  return ~sum & 0xffff
}

const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!
const be32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff
  b[o + 1] = v & 0xff
}
function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff
  b[o + 1] = (v >>> 16) & 0xff
  b[o + 2] = (v >>> 8) & 0xff
  b[o + 3] = v & 0xff
}

/** Formats a host-order IPv4 address. */
export function formatIp(a: number): string {
  return `${(a >>> 24) & 0xff}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`
}

/** The network mask of a prefix length (host order). */
export function inet_make_mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0
}

/** Queues a complete Ethernet frame (built in JS) for transmission on dev; dev_queue_xmit's result. */
function sendFrame(dev: NetDevice, frame: Uint8Array, proto: number, gfp: number): number {
  const skb = alloc_skb(NET_SKB_PAD + frame.length, gfp)
  if (skb === null) return -1
  skb_reserve(skb, NET_SKB_PAD)
  skb_put_data(skb, frame)
  skb.dev = dev
  skb.protocol = htons(proto)
  return dev_queue_xmit(skb)
}

function ethHeader(frame: Uint8Array, dst: Uint8Array, src: Uint8Array, proto: number): void {
  frame.set(dst.subarray(0, ETH_ALEN), 0)
  frame.set(src.subarray(0, ETH_ALEN), ETH_ALEN)
  put16(frame, 12, proto)
}

// ---------------------------------------------------------------------- ARP

function arpFrame(dev: NetDevice, op: number, ethDst: Uint8Array, sip: number, tha: Uint8Array, tip: number): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + ARP_LEN)
  ethHeader(f, ethDst, dev.dev_addr, ETH_P_ARP)
  const a = ETH_HLEN
  put16(f, a, 1) // ARPHRD_ETHER
  put16(f, a + 2, ETH_P_IP)
  f[a + 4] = ETH_ALEN
  f[a + 5] = 4
  put16(f, a + 6, op)
  f.set(dev.dev_addr, a + 8)
  put32(f, a + 14, sip)
  f.set(tha.subarray(0, ETH_ALEN), a + 18)
  put32(f, a + 24, tip)
  return f
}

function arpLearn(ind: InDevice, ip: number, mac: Uint8Array, now: number): void {
  ind.arp.set(ip, { mac: mac.slice(0, ETH_ALEN), updated: now })
}

/** `arp_rcv` (a packet_type handler): answers requests for our address, learns senders. */
function arp_rcv(ns: NetState, skb: SkBuff, dev: NetDevice): void {
  if (skb.pkt_type === PACKET_OTHERHOST || skb.len < ARP_LEN) return
  const a = skbRead(skb, 0, ARP_LEN)
  if (be16(a, 0) !== 1 || be16(a, 2) !== ETH_P_IP || a[4] !== ETH_ALEN || a[5] !== 4) return
  const op = be16(a, 6)
  const sha = a.subarray(8, 14)
  const sip = be32(a, 14)
  const tip = be32(a, 24)
  if (is_multicast_ether_addr(sha)) return
  const ind = in_dev_get(dev)
  if (op === ARPOP_REQUEST) ind.stats.arp.InRequests++
  else if (op === ARPOP_REPLY) ind.stats.arp.InReplies++
  if (ind.addr === 0) return
  const now = ns.sys.machine.clock.now
  if (tip === ind.addr) {
    if (sip !== 0) arpLearn(ind, sip, sha, now)
    if (op === ARPOP_REQUEST) {
      ind.stats.arp.OutReplies++
      sendFrame(dev, arpFrame(dev, ARPOP_REPLY, sha, ind.addr, sha, sip), ETH_P_ARP, GFP_ATOMIC)
    }
  } else if (ind.arp.has(sip)) arpLearn(ind, sip, sha, now)
  wake_up(ind.wq)
}

/** Sends an ARP request for ip (broadcast). */
function arp_solicit(dev: NetDevice, ind: InDevice, ip: number): void {
  ind.stats.arp.OutRequests++
  sendFrame(dev, arpFrame(dev, ARPOP_REQUEST, dev.broadcast, ind.addr, new Uint8Array(ETH_ALEN), ip), ETH_P_ARP, GFP_KERNEL)
}

// ---------------------------------------------------------------------- IPv4 and ICMP

function ipHeader(f: Uint8Array, off: number, totLen: number, id: number, proto: number, src: number, dst: number): void {
  f[off] = 0x45
  f[off + 1] = 0
  put16(f, off + 2, totLen)
  put16(f, off + 4, id & 0xffff)
  put16(f, off + 6, 0)
  f[off + 8] = TTL
  f[off + 9] = proto
  put16(f, off + 10, 0)
  put32(f, off + 12, src)
  put32(f, off + 16, dst)
  put16(f, off + 10, ip_compute_csum(f.subarray(off, off + IP_HLEN)))
}

function icmpFrame(dev: NetDevice, ind: InDevice, ethDst: Uint8Array, dst: number, icmp: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HLEN + IP_HLEN + icmp.length)
  ethHeader(f, ethDst, dev.dev_addr, ETH_P_IP)
  put16(icmp, 2, 0)
  put16(icmp, 2, ip_compute_csum(icmp))
  f.set(icmp, ETH_HLEN + IP_HLEN)
  ipHeader(f, ETH_HLEN, IP_HLEN + icmp.length, ind.ipId++, IPPROTO_ICMP, ind.addr, dst)
  ind.stats.ip.OutRequests++
  return f
}

/** `ip_rcv` (a packet_type handler): validates the header and delivers ICMP for our address. */
function ip_rcv(ns: NetState, skb: SkBuff, dev: NetDevice): void {
  if (skb.pkt_type === PACKET_OTHERHOST) return
  const ind = in_dev_get(dev)
  const st = ind.stats.ip
  st.InReceives++
  if (skb.len < IP_HLEN) {
    st.InHdrErrors++
    return
  }
  let h = skbRead(skb, 0, IP_HLEN)
  const ihl = (h[0]! & 0x0f) * 4
  if (h[0]! >> 4 !== 4 || ihl < IP_HLEN || skb.len < ihl) {
    st.InHdrErrors++
    return
  }
  if (ihl > IP_HLEN) h = skbRead(skb, 0, ihl)
  if (ip_compute_csum(h) !== 0) {
    st.InCsumErrors++
    st.InHdrErrors++
    return
  }
  const totLen = be16(h, 2)
  if (totLen < ihl || skb.len < totLen) {
    st.InTruncatedPkts++
    return
  }
  if ((be16(h, 6) & 0x3fff) !== 0) {
    st.ReasmFails++ // a fragment: no reassembly here
    return
  }
  const src = be32(h, 12)
  const dst = be32(h, 16)
  if (ind.addr === 0 || dst !== ind.addr) {
    st.InAddrErrors++
    return
  }
  if (h[9] !== IPPROTO_ICMP) {
    st.InUnknownProtos++
    return
  }
  st.InDelivers++
  const icmp = skbRead(skb, ihl, totLen - ihl)
  icmp_rcv(ns, skb, dev, ind, src, h[8]!, icmp)
}

function icmp_rcv(ns: NetState, skb: SkBuff, dev: NetDevice, ind: InDevice, src: number, ttl: number, icmp: Uint8Array): void {
  const st = ind.stats.icmp
  st.InMsgs++
  if (icmp.length < ICMP_HLEN || ip_compute_csum(icmp) !== 0) {
    st.InErrors++
    return
  }
  const type = icmp[0]!
  if (type === ICMP_ECHO && icmp[1] === 0) {
    st.InEchos++
    const reply = icmp.slice()
    reply[0] = ICMP_ECHOREPLY
    const macOff = skb.mac_header - skb_headroom(skb)
    const ethSrc = skbRead(skb, macOff + ETH_ALEN, ETH_ALEN)
    st.OutEchoReps++
    sendFrame(dev, icmpFrame(dev, ind, ethSrc, src, reply), ETH_P_IP, GFP_ATOMIC)
  } else if (type === ICMP_ECHOREPLY) {
    st.InEchoReps++
    const p = ind.pending.get(`${be16(icmp, 4)}:${be16(icmp, 6)}`)
    if (p !== undefined && p.reply === null && p.from === src) {
      p.reply = { seq: p.seq, rttNs: ns.sys.machine.clock.now - p.sentAt, ttl, bytes: icmp.length, from: formatIp(src) }
      wake_up(ind.wq)
    }
  }
}

dev_add_pack({ type: ETH_P_ARP, func: arp_rcv })
dev_add_pack({ type: ETH_P_IP, func: ip_rcv })

// ---------------------------------------------------------------------- ping (process context)

export interface PingOptions {
  count: number
  timeoutMs: number
  intervalMs: number
  size: number
}

export interface PingResult {
  /** Echo requests sent. */
  transmitted: number
  /** Echo replies received in time. */
  received: number
  replies: PingReply[]
  /** Requests that could not be sent because ARP got no answer ("Destination Host Unreachable"). */
  unreachable: number
}

let pingIds = 0x1000

function remainingJiffies(ns: NetState, deadline: number): number {
  return Math.max(1, Math.ceil((deadline - ns.sys.machine.clock.now) / NS_PER_JIFFY))
}

/** Resolves ip to a MAC address through ARP (a request every second) until deadline; null if none. */
async function neighResolve(ns: NetState, dev: NetDevice, ind: InDevice, ip: number, deadline: number): Promise<Uint8Array | null> {
  for (;;) {
    const e = ind.arp.get(ip)
    if (e !== undefined) return e.mac
    if (ns.sys.machine.clock.now >= deadline) return null
    arp_solicit(dev, ind, ip)
    const wait = Math.min(HZ, remainingJiffies(ns, deadline))
    await wait_event_timeout(ind.wq, () => ind.arp.has(ip), wait)
  }
}

/**
 * Sends opts.count ICMP echo requests from dev to dst (host order), opts.intervalMs apart, each
 * waited for opts.timeoutMs (ARP included). Process context: the harness runs it in a task.
 */
export async function inet_ping(dev: NetDevice, dst: number, opts: PingOptions): Promise<PingResult> {
  const { ns } = netCall('inet_ping')
  const ind = in_dev_get(dev)
  const id = pingIds++ & 0xffff
  const result: PingResult = { transmitted: 0, received: 0, replies: [], unreachable: 0 }
  for (let seq = 1; seq <= opts.count; seq++) {
    if (seq > 1 && opts.intervalMs > 0) await msleep(opts.intervalMs)
    const deadline = ns.sys.machine.clock.now + opts.timeoutMs * 1e6
    result.transmitted++
    const mac = await neighResolve(ns, dev, ind, dst, deadline)
    if (mac === null) {
      result.unreachable++
      continue
    }
    const icmp = new Uint8Array(ICMP_HLEN + opts.size)
    icmp[0] = ICMP_ECHO
    put16(icmp, 4, id)
    put16(icmp, 6, seq & 0xffff)
    for (let i = 0; i < opts.size; i++) icmp[ICMP_HLEN + i] = (i + 0x10) & 0xff
    const key = `${id}:${seq & 0xffff}`
    const p: PendingPing = { id, seq, from: dst, sentAt: 0, reply: null }
    ind.pending.set(key, p)
    try {
      ind.stats.icmp.OutEchos++
      const frame = icmpFrame(dev, ind, mac, dst, icmp)
      p.sentAt = ns.sys.machine.clock.now
      if (sendFrame(dev, frame, ETH_P_IP, GFP_KERNEL) === NET_XMIT_SUCCESS) {
        await wait_event_timeout(ind.wq, () => p.reply !== null, remainingJiffies(ns, deadline))
      }
      if (p.reply !== null) {
        result.received++
        result.replies.push(p.reply)
      }
    } finally {
      ind.pending.delete(key)
    }
  }
  return result
}
