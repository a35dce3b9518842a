/**
 * The networking "user space" of the harness: what `ip`, `ping` and a packet socket (AF_PACKET,
 * ETH_P_ALL) do on a Linux box, as an emulator API for tests.
 *
 *   const net = netUser(sys)
 *   await net.ifup('eth0')                     // ip link set eth0 up: ndo_open in a process task
 *   net.setAddress('eth0', '10.0.0.1/24')      // ip addr add 10.0.0.1/24 dev eth0
 *   const sock = net.socket('eth1')            // a packet socket bound to eth1
 *   await net.send('eth0', frame, { frags: 2 })// sendto() on a packet socket: dev_queue_xmit
 *   const r = await net.ping('eth0', '10.0.0.2', { count: 3 })
 *
 * Like `sys.run`, these are called from test code, never from inside a task of the system (they
 * throw a DmalabError there). The async ones run kernel code in a process-context task named
 * `ip`, `ping` or `send` and drive the system until it is done; the others read or change state
 * at once. Bad input (an unknown interface, a malformed address, a frame too short or too long,
 * a wrong type) throws (or rejects with) an InvalidArgumentError naming the argument, and
 * changes nothing.
 */

import { DmalabError, InvalidArgumentError } from '../errors.js'
import { alloc_page, mem_write_bytes, page_address } from '../mm/memory.js'
import { currentOrNull } from '../sched/current.js'
import type { System } from '../system.js'
import { GFP_KERNEL, PAGE_SIZE, ptr_add } from '../types.js'
import { dev_queue_xmit } from './dev.js'
import { EMSGSIZE, ENETDOWN, ENOBUFS, ETH_HLEN, ETH_P_8021Q, VLAN_HLEN, formatMac, ntohs } from './eth.js'
import { formatIp, in_dev_get, inet_make_mask, inet_ping, type InetStats, type PingResult } from './inet.js'
import { netSysctl } from './napi.js'
import {
  IFF_UP, NETIF_F_SG, __QUEUE_STATE_DRV_XOFF, __QUEUE_STATE_STACK_XOFF, dev_close, dev_get_stats, dev_open,
  rtnl_lock, rtnl_unlock, type NetDevice, type NetDeviceStats,
} from './netdevice.js'
import { MAX_SKB_FRAGS, NET_SKB_PAD, alloc_skb, kfree_skb, skb_fill_page_desc, skb_put_data, skb_reserve } from './skbuff.js'
import { netState, type NetState, type PacketTap, type SoftnetStat } from './state.js'

/** What `net.devices()` says about an interface (`ip link show`). */
export interface NetDeviceInfo {
  name: string
  ifindex: number
  mac: string
  mtu: number
  /** IFF_UP: opened by ifup. */
  up: boolean
  /** netif_running(). */
  running: boolean
  /** netif_carrier_ok(). */
  carrier: boolean
  /** The driver stopped its transmit queue. */
  queueStopped: boolean
  /** The IPv4 address and prefix, '10.0.0.1/24', or null. */
  address: string | null
  /** The parent device (SET_NETDEV_DEV) and its driver, or null. */
  parent: string | null
  driver: string | null
  txQueueLen: number
  /** NETIF_F_SG: the driver takes page fragments. */
  scatterGather: boolean
}

/** What `net.stats()` returns (`ip -s link`, `tc -s qdisc`, sysfs). */
export interface NetStats extends NetDeviceStats {
  /** Times the TX watchdog found the queue timed out (sysfs tx_timeout). */
  tx_timeout: number
  /** The qdisc: frames waiting, sent through it, dropped (full, or device down), requeued. */
  qdisc: { qlen: number; packets: number; bytes: number; drops: number; requeues: number }
  /** The stack's own counts of what it handed to and got from the driver. */
  stack: { rx_packets: number; rx_bytes: number; tx_packets: number; tx_bytes: number; rx_dropped: number; tx_dropped: number; rx_nohandler: number }
}

/** One frame a packet socket received. */
export interface ReceivedFrame {
  /** The whole frame, from the destination MAC on (a copy). */
  data: Uint8Array
  /** The interface it arrived on (or left through, when `outgoing`). */
  ifname: string
  /** The EtherType, host order (0x0800 for IPv4). */
  protocol: number
  /** PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST or PACKET_OUTGOING. */
  pktType: number
  outgoing: boolean
  /** Virtual time at which the stack saw it (ns). */
  time: number
}

export interface SocketOptions {
  /** Frames the receive queue holds; beyond it they are dropped and counted (default 256). */
  capacity?: number
  /** Also receive the frames the system sends (default false). */
  outgoing?: boolean
}

export interface SendOptions {
  /**
   * Put the payload (everything after the 14-byte Ethernet header) in this many page fragments
   * (0..17), to exercise a driver's TX scatter-gather. A device without NETIF_F_SG gets the frame
   * linearized by the stack. Default 0: one linear buffer.
   */
  frags?: number
}

export interface PingOpts {
  /** Echo requests to send (default 1). */
  count?: number
  /** How long to wait for each reply, ARP resolution included (default 1000 ms). */
  timeoutMs?: number
  /** Time between requests (default 1000 ms, as ping). */
  intervalMs?: number
  /** Bytes of ICMP data (default 56). */
  size?: number
}

const SYSCTLS = ['net.core.netdev_budget', 'net.core.dev_weight', 'net.core.netdev_max_backlog'] as const
export type NetSysctl = (typeof SYSCTLS)[number]

function checkOptions(fn: string, opts: unknown, known: readonly string[]): Record<string, unknown> {
  if (opts === undefined) return {}
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidArgumentError(fn, 'opts', `must be an object, got ${opts === null ? 'null' : typeof opts}`)
  for (const k of Object.keys(opts)) {
    if (!known.includes(k)) throw new InvalidArgumentError(fn, `opts.${k}`, `is not an option (options: ${known.join(', ')})`)
  }
  return opts as Record<string, unknown>
}

function intOpt(fn: string, o: Record<string, unknown>, key: string, dflt: number, min: number, max: number): number {
  const v = o[key]
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError(fn, `opts.${key}`, `must be an integer from ${min} to ${max}, got ${typeof v === 'number' ? v : typeof v}`)
  }
  return v
}

function numOpt(fn: string, o: Record<string, unknown>, key: string, dflt: number, min: number, max: number): number {
  const v = o[key]
  if (v === undefined) return dflt
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new InvalidArgumentError(fn, `opts.${key}`, `must be a number from ${min} to ${max}, got ${typeof v === 'number' ? v : typeof v}`)
  }
  return v
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** Parses a dotted-quad IPv4 address (host order), or returns null. */
export function parseIPv4(s: string): number | null {
  const m = IPV4.exec(s)
  if (m === null) return null
  let a = 0
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!
    if (part.length > 1 && part.startsWith('0')) return null
    const n = Number(part)
    if (n > 255) return null
    a = a * 256 + n
  }
  return a
}

/** A packet socket (AF_PACKET, SOCK_RAW, ETH_P_ALL), bound to one interface or to all. */
export class PacketSocket {
  /** The interface it is bound to, or null for every interface. */
  readonly ifname: string | null
  readonly capacity: number
  readonly outgoing: boolean
  /** Frames dropped because the receive queue was full. */
  drops = 0
  readonly #sys: System
  readonly #ns: NetState
  readonly #queue: ReceivedFrame[] = []
  readonly #tap: PacketTap
  #closed = false

  /** @internal Use net.socket(). */
  constructor(sys: System, dev: NetDevice | null, capacity: number, outgoing: boolean) {
    this.#sys = sys
    this.#ns = netState(sys)
    this.ifname = dev?.name ?? null
    this.capacity = capacity
    this.outgoing = outgoing
    this.#tap = {
      dev,
      outgoing,
      deliver: (frame, from, pktType, protocol, time) => {
        if (this.#queue.length >= this.capacity) {
          this.drops++
          return
        }
        this.#queue.push({ data: frame, ifname: from.name, protocol: ntohs(protocol), pktType, outgoing: pktType === 4, time })
      },
    }
    this.#ns.taps.push(this.#tap)
  }

  /** The frames waiting to be read, oldest first. */
  get received(): readonly ReceivedFrame[] {
    return this.#queue
  }

  /** How many frames are waiting. */
  get pending(): number {
    return this.#queue.length
  }

  /** Takes the oldest waiting frame, or null when none is waiting (non-blocking recv). */
  recv(): ReceivedFrame | null {
    return this.#queue.shift() ?? null
  }

  /**
   * Waits for a frame, driving the system (sys.runUntil) for at most timeoutNs of virtual time
   * (default 1 s); the frame, or null on timeout.
   */
  async next(opts: { timeoutNs?: number } = {}): Promise<ReceivedFrame | null> {
    if (this.#queue.length > 0) return this.recv()
    if (this.#closed) throw new DmalabError('PacketSocket.next: the socket is closed')
    try {
      await this.#sys.runUntil(() => this.#queue.length > 0, opts)
    } catch (e) {
      if (e instanceof DmalabError && !(e instanceof InvalidArgumentError) && this.#queue.length === 0) return null
      throw e
    }
    return this.recv()
  }

  /** Closes the socket: it receives nothing more; waiting frames can still be read. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    const i = this.#ns.taps.indexOf(this.#tap)
    if (i >= 0) this.#ns.taps.splice(i, 1)
  }
}

/** The user space of one system's networking; get it with `netUser(sys)`. */
export class NetUser {
  readonly #sys: System
  readonly #ns: NetState

  /** @internal Use netUser(sys). */
  constructor(sys: System) {
    this.#sys = sys
    this.#ns = netState(sys)
  }

  #guard(fn: string): void {
    if (currentOrNull()?.sys === this.#sys) {
      throw new DmalabError(`${fn}() called from inside a task: user-space calls are made from test code, not from kernel code`)
    }
  }

  #dev(fn: string, name: unknown): NetDevice {
    if (typeof name !== 'string') throw new InvalidArgumentError(fn, 'name', `must be an interface name (a string), got ${name === null ? 'null' : typeof name}`)
    const d = this.#ns.byName(name)
    if (d === undefined) {
      const known = this.#ns.devices.map((x) => x.name).join(', ') || 'none'
      throw new InvalidArgumentError(fn, 'name', `'${name}' is not an interface of ${this.#sys.name} (interfaces: ${known})`)
    }
    return d
  }

  #info(d: NetDevice): NetDeviceInfo {
    const ind = in_dev_get(d)
    const parent = d.dev.parent
    return {
      name: d.name,
      ifindex: d.ifindex,
      mac: formatMac(d.dev_addr),
      mtu: d.mtu,
      up: (d.flags & IFF_UP) !== 0,
      running: d._running,
      carrier: d._carrier,
      queueStopped: (d._txq.state & (__QUEUE_STATE_DRV_XOFF | __QUEUE_STATE_STACK_XOFF)) !== 0,
      address: ind.addr === 0 ? null : `${formatIp(ind.addr)}/${ind.prefix}`,
      parent: parent?.name ?? null,
      driver: parent === null ? null : (this.#sys.pciDevices.find((p) => p.dev === parent)?.driver?.name ?? null),
      txQueueLen: d.tx_queue_len,
      scatterGather: (d.features & NETIF_F_SG) !== 0,
    }
  }

  /** The registered interfaces, in registration order (`ip link show`). */
  devices(): NetDeviceInfo[] {
    this.#guard('net.devices')
    return this.#ns.devices.map((d) => this.#info(d))
  }

  /** One interface (`ip link show dev name`). */
  device(name: string): NetDeviceInfo {
    this.#guard('net.device')
    return this.#info(this.#dev('net.device', name))
  }

  /** `ip link set name up`: runs dev_open (ndo_open) under the RTNL in a process task; 0 or -errno. */
  async ifup(name: string): Promise<number> {
    this.#guard('net.ifup')
    const d = this.#dev('net.ifup', name)
    return this.#sys.run(async () => {
      await rtnl_lock()
      try {
        return await dev_open(d)
      } finally {
        rtnl_unlock()
      }
    }, 'ip')
  }

  /** `ip link set name down`: runs dev_close (ndo_stop) under the RTNL in a process task. */
  async ifdown(name: string): Promise<void> {
    this.#guard('net.ifdown')
    const d = this.#dev('net.ifdown', name)
    await this.#sys.run(async () => {
      await rtnl_lock()
      try {
        await dev_close(d)
      } finally {
        rtnl_unlock()
      }
    }, 'ip')
  }

  /** `ip addr replace cidr dev name`: sets the IPv4 address ('10.0.0.1/24'); null removes it. */
  setAddress(name: string, cidr: string | null): void {
    this.#guard('net.setAddress')
    const d = this.#dev('net.setAddress', name)
    const ind = in_dev_get(d)
    if (cidr === null) {
      ind.addr = 0
      ind.prefix = 0
      ind.arp.clear()
      return
    }
    const bad = () => new InvalidArgumentError('net.setAddress', 'cidr', `${JSON.stringify(cidr)} is not an IPv4 address with a prefix length, like '10.0.0.1/24'`)
    if (typeof cidr !== 'string') throw bad()
    const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr)
    if (m === null) throw bad()
    const addr = parseIPv4(m[1]!)
    const prefix = Number(m[2])
    if (addr === null || prefix > 32 || addr === 0) throw bad()
    if (addr >>> 28 >= 0xe) throw new InvalidArgumentError('net.setAddress', 'cidr', `${cidr} is a multicast or reserved address, not a host address`)
    if (addr !== ind.addr) ind.arp.clear()
    ind.addr = addr
    ind.prefix = prefix
  }

  /** The interface's neighbour (ARP) cache (`ip neigh show dev name`). */
  arp(name: string): { ip: string; mac: string }[] {
    this.#guard('net.arp')
    const ind = in_dev_get(this.#dev('net.arp', name))
    return [...ind.arp].map(([ip, e]) => ({ ip: formatIp(ip), mac: formatMac(e.mac) }))
  }

  /** The interface's IPv4, ICMP and ARP counters (a copy). */
  ipStats(name: string): InetStats {
    this.#guard('net.ipStats')
    return structuredClone(in_dev_get(this.#dev('net.ipStats', name)).stats)
  }

  /** `ip link set name txqueuelen n`: the qdisc's limit. */
  setTxQueueLen(name: string, n: number): void {
    this.#guard('net.setTxQueueLen')
    const d = this.#dev('net.setTxQueueLen', name)
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 1e6) throw new InvalidArgumentError('net.setTxQueueLen', 'n', `must be an integer from 0 to 1000000, got ${String(n)}`)
    d.tx_queue_len = n
  }

  /**
   * Sends a raw Ethernet frame (from the destination MAC on, no FCS) out of the interface, as a
   * packet socket's sendto() does: the frame is copied into an skb in kernel memory (its payload
   * split into page fragments with `frags`) and handed to dev_queue_xmit in a process task.
   * Resolves with dev_queue_xmit's result (NET_XMIT_SUCCESS 0, NET_XMIT_DROP 1, NET_XMIT_CN 2), or
   * -ENETDOWN when the interface is down, -ENOBUFS when memory ran out.
   */
  async send(name: string, frame: Uint8Array, opts?: SendOptions): Promise<number> {
    this.#guard('net.send')
    const d = this.#dev('net.send', name)
    if (!(frame instanceof Uint8Array)) throw new InvalidArgumentError('net.send', 'frame', `must be a Uint8Array, got ${frame === null ? 'null' : typeof frame}`)
    if (frame.length < ETH_HLEN) throw new InvalidArgumentError('net.send', 'frame', `is ${frame.length} bytes: an Ethernet frame needs at least its ${ETH_HLEN}-byte header`)
    const tagged = frame.length >= 16 && ((frame[12]! << 8) | frame[13]!) === ETH_P_8021Q
    const max = d.mtu + ETH_HLEN + (tagged ? VLAN_HLEN : 0)
    if (frame.length > max) throw new InvalidArgumentError('net.send', 'frame', `is ${frame.length} bytes: more than ${d.name}'s MTU ${d.mtu} plus the header allows (${max}) (EMSGSIZE, -${EMSGSIZE})`)
    const o = checkOptions('net.send', opts, ['frags'])
    const payload = frame.length - ETH_HLEN
    const frags = intOpt('net.send', o, 'frags', 0, 0, MAX_SKB_FRAGS)
    if (frags > payload) throw new InvalidArgumentError('net.send', 'opts.frags', `is ${frags}, but the frame has only ${payload} bytes of payload to split`)
    const bytes = frame.slice()
    return this.#sys.run(() => {
      if ((d.flags & IFF_UP) === 0) return -ENETDOWN
      const linear = frags > 0 ? ETH_HLEN : bytes.length
      const skb = alloc_skb(NET_SKB_PAD + linear, GFP_KERNEL)
      if (skb === null) return -ENOBUFS
      skb_reserve(skb, NET_SKB_PAD)
      skb_put_data(skb, bytes.subarray(0, linear))
      let off = linear
      for (let i = 0; i < frags; i++) {
        const len = Math.floor(payload / frags) + (i < payload % frags ? 1 : 0)
        const page = alloc_page(GFP_KERNEL)
        if (page === null) {
          kfree_skb(skb)
          return -ENOBUFS
        }
        // Fragments start at a small, varying offset in their page, as socket buffers do.
        const pageOff = (32 + i * 64) % (PAGE_SIZE - len)
        mem_write_bytes(ptr_add(page_address(page), pageOff), bytes.subarray(off, off + len))
        skb_fill_page_desc(skb, i, page, pageOff, len)
        skb.len += len
        skb.data_len += len
        skb.truesize += PAGE_SIZE
        off += len
      }
      skb.dev = d
      skb.protocol = bytes[12]! | (bytes[13]! << 8) // __be16, as it sits in the frame
      return dev_queue_xmit(skb)
    }, 'send')
  }

  /**
   * Opens a packet socket bound to the interface `name`, or to every interface (null or omitted).
   * It receives each frame the stack receives there (and, with `outgoing`, each it sends).
   */
  socket(name?: string | null, opts?: SocketOptions): PacketSocket {
    this.#guard('net.socket')
    const d = name === undefined || name === null ? null : this.#dev('net.socket', name)
    const o = checkOptions('net.socket', opts, ['capacity', 'outgoing'])
    const capacity = intOpt('net.socket', o, 'capacity', 256, 1, 1_000_000)
    const outgoing = o['outgoing'] ?? false
    if (typeof outgoing !== 'boolean') throw new InvalidArgumentError('net.socket', 'opts.outgoing', `must be a boolean, got ${typeof outgoing}`)
    return new PacketSocket(this.#sys, d, capacity, outgoing)
  }

  /**
   * `ping -I name dst`: sends ICMP echo requests from the interface's address and waits for the
   * replies (ARP resolves dst first). dst must be in the interface's subnet (there is no routing).
   * Resolves with what was sent and received; each reply's RTT is in virtual ns.
   */
  async ping(name: string, dst: string, opts?: PingOpts): Promise<PingResult> {
    this.#guard('net.ping')
    const d = this.#dev('net.ping', name)
    if (typeof dst !== 'string') throw new InvalidArgumentError('net.ping', 'dst', `must be an IPv4 address (a string), got ${dst === null ? 'null' : typeof dst}`)
    const ip = parseIPv4(dst)
    if (ip === null || ip === 0) throw new InvalidArgumentError('net.ping', 'dst', `${JSON.stringify(dst)} is not an IPv4 address like '10.0.0.2'`)
    const o = checkOptions('net.ping', opts, ['count', 'timeoutMs', 'intervalMs', 'size'])
    const count = intOpt('net.ping', o, 'count', 1, 1, 1_000_000)
    const timeoutMs = numOpt('net.ping', o, 'timeoutMs', 1000, 0.001, 3_600_000)
    const intervalMs = numOpt('net.ping', o, 'intervalMs', 1000, 0, 3_600_000)
    const size = intOpt('net.ping', o, 'size', 56, 0, Math.max(0, d.mtu - 28))
    const ind = in_dev_get(d)
    if (ind.addr === 0) throw new DmalabError(`net.ping: ${d.name} has no IPv4 address: call net.setAddress('${d.name}', '10.0.0.1/24') first`)
    const mask = inet_make_mask(ind.prefix)
    if (((ip ^ ind.addr) & mask) >>> 0 !== 0) {
      throw new InvalidArgumentError('net.ping', 'dst', `${dst} is not in ${d.name}'s subnet ${formatIp((ind.addr & mask) >>> 0)}/${ind.prefix} (there is no routing: ping an address on the link)`)
    }
    if ((d.flags & IFF_UP) === 0) throw new DmalabError(`net.ping: ${d.name} is down (Network is unreachable): net.ifup('${d.name}') first`)
    return this.#sys.run(() => inet_ping(d, ip, { count, timeoutMs, intervalMs, size }), 'ping')
  }

  /**
   * The interface's statistics: the driver's counters with the stack's drops added
   * (dev_get_stats, which may call the driver's ndo_get_stats in a process task), the TX
   * watchdog's timeouts, the qdisc's counters and the stack's own counts.
   */
  async stats(name: string): Promise<NetStats> {
    this.#guard('net.stats')
    const d = this.#dev('net.stats', name)
    const s = await this.#sys.run(() => dev_get_stats(d), 'ip')
    const q = d._qdisc
    return {
      ...s,
      tx_timeout: d._txq.trans_timeout,
      qdisc: { qlen: q.q.length, ...q.stats },
      stack: { ...d._core },
    }
  }

  /** Reads (and with a value, sets) a net.core sysctl: netdev_budget, dev_weight, netdev_max_backlog. */
  sysctl(key: NetSysctl, value?: number): number {
    this.#guard('net.sysctl')
    if (!SYSCTLS.includes(key)) throw new InvalidArgumentError('net.sysctl', 'key', `${JSON.stringify(key)} is not one of ${SYSCTLS.join(', ')}`)
    const s = netSysctl(this.#ns)
    const field = key.slice('net.core.'.length) as keyof typeof s
    if (value !== undefined) {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1_000_000) throw new InvalidArgumentError('net.sysctl', 'value', `must be an integer from 1 to 1000000, got ${String(value)}`)
      s[field] = value
    }
    return s[field]
  }

  /** `/proc/net/softnet_stat`: frames processed, backlog drops, time squeezes, ksoftirqd wake-ups. */
  get softnet(): SoftnetStat {
    return { ...this.#ns.softnet }
  }

  /** How many sk_buffs are allocated and not yet freed in the system. */
  get skbsInUse(): number {
    return this.#ns.liveSkbs.size
  }
}

const users = new WeakMap<System, NetUser>()

/** The networking user space of a system (one per system: `netUser(sys) === netUser(sys)`). */
export function netUser(sys: System): NetUser {
  if (sys === null || typeof sys !== 'object' || !('sched' in sys)) throw new InvalidArgumentError('netUser', 'sys', 'must be a System from boot()')
  let u = users.get(sys)
  if (u === undefined) {
    u = new NetUser(sys)
    users.set(sys, u)
  }
  return u
}
