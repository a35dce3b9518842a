/**
 * Network devices (include/linux/netdevice.h, net/core/dev.c, net/ethernet/eth.c,
 * net/sched/sch_generic.c): `struct net_device` and `struct net_device_ops`, allocation and
 * registration, opening and closing (under the RTNL mutex), the transmit queue's flow control
 * (netif_stop_queue / netif_wake_queue), carrier and presence, the TX watchdog that calls
 * `ndo_tx_timeout`, statistics, and the netdev_* logging calls.
 *
 * Contexts, as in Linux: `ndo_open` and `ndo_stop` run in process context (they are async and
 * may sleep); `ndo_start_xmit` runs with bottom halves disabled (atomic: synchronous, must not
 * sleep); `ndo_tx_timeout` runs from the watchdog timer (softirq: atomic).
 *
 * One transmit queue per device (no multiqueue). Its qdisc is a FIFO of `tx_queue_len` frames
 * (pfifo_fast with one band); it is "active" while the device is up and has carrier, as Linux
 * swaps in noop_qdisc otherwise, so frames sent to a device without carrier are dropped.
 */

import { Device } from '../base/device.js'
import { EEXIST, EINVAL, ENODEV } from '../errno.js'
import { kformat } from '../printk.js'
import { kfree, kzalloc } from '../mm/memory.js'
import { ZERO_SIZE_PTR } from '../mm/layout.js'
import type { Task } from '../sched/current.js'
import { mightSleep, mightSleepGfp } from '../sched/might-sleep.js'
import { del_timer, jiffies_to_msecs, mod_timer, mutex_lock, mutex_unlock, timer_setup, type TimerList } from '../sched/time.js'
import type { System } from '../system.js'
import { GFP_KERNEL, HZ, type CpuAddr } from '../types.js'
import { ARPHRD_ETHER, ETH_ALEN, ETH_DATA_LEN, ETH_HLEN, ETH_MIN_MTU, NET_ADDR_PERM } from './eth.js'
import { __kfree_skb, type SkBuff } from './skbuff.js'
import { NET_TX_SOFTIRQ, call_driver_atomic, raise_net_softirq } from './softirq.js'
import { netBadArg, netCall, netState, type NetState } from './state.js'
import type { NapiStruct } from './napi.js'

// ---------------------------------------------------------------------- constants

/** `ndo_start_xmit` return values (`netdev_tx_t`). */
export const NETDEV_TX_OK = 0x00
export const NETDEV_TX_BUSY = 0x10
export type netdev_tx_t = typeof NETDEV_TX_OK | typeof NETDEV_TX_BUSY

/** dev->flags (include/uapi/linux/if.h). */
export const IFF_UP = 0x1
export const IFF_BROADCAST = 0x2
export const IFF_LOOPBACK = 0x8
export const IFF_RUNNING = 0x40
export const IFF_NOARP = 0x80
export const IFF_PROMISC = 0x100
export const IFF_MULTICAST = 0x1000
export const IFF_LOWER_UP = 0x10000

/**
 * dev->features: what the device offloads. Only NETIF_F_SG changes what the stack does here:
 * without it, an skb with page fragments is linearized before ndo_start_xmit sees it. (The values
 * are dmalab's; Linux's bits above 31 do not fit JavaScript's bitwise operators.)
 */
export const NETIF_F_SG = 1 << 0
export const NETIF_F_IP_CSUM = 1 << 1
export const NETIF_F_HW_CSUM = 1 << 3
export const NETIF_F_HIGHDMA = 1 << 5
export const NETIF_F_RXCSUM = 1 << 29

/** dev->reg_state. */
export const NETREG_UNINITIALIZED = 0
export const NETREG_REGISTERED = 1
export const NETREG_UNREGISTERING = 2
export const NETREG_UNREGISTERED = 3
export const NETREG_RELEASED = 4

/** Interface names are at most IFNAMSIZ - 1 characters. */
export const IFNAMSIZ = 16
/** Default dev->tx_queue_len (the qdisc's limit). */
export const DEFAULT_TX_QUEUE_LEN = 1000

/** Transmit queue state bits. */
export const __QUEUE_STATE_DRV_XOFF = 1 << 0
export const __QUEUE_STATE_STACK_XOFF = 1 << 1
const QUEUE_STOPPED = __QUEUE_STATE_DRV_XOFF | __QUEUE_STATE_STACK_XOFF

const NS_PER_JIFFY = 1e9 / HZ

// ---------------------------------------------------------------------- types

/** `struct net_device_stats` / `rtnl_link_stats64`: the driver's counters. */
export interface NetDeviceStats {
  rx_packets: number
  tx_packets: number
  rx_bytes: number
  tx_bytes: number
  rx_errors: number
  tx_errors: number
  rx_dropped: number
  tx_dropped: number
  multicast: number
  collisions: number
  rx_length_errors: number
  rx_over_errors: number
  rx_crc_errors: number
  rx_frame_errors: number
  rx_fifo_errors: number
  rx_missed_errors: number
  tx_aborted_errors: number
  tx_carrier_errors: number
  tx_fifo_errors: number
  tx_heartbeat_errors: number
  tx_window_errors: number
  rx_nohandler: number
}

const STAT_KEYS = [
  'rx_packets', 'tx_packets', 'rx_bytes', 'tx_bytes', 'rx_errors', 'tx_errors', 'rx_dropped', 'tx_dropped', 'multicast',
  'collisions', 'rx_length_errors', 'rx_over_errors', 'rx_crc_errors', 'rx_frame_errors', 'rx_fifo_errors',
  'rx_missed_errors', 'tx_aborted_errors', 'tx_carrier_errors', 'tx_fifo_errors', 'tx_heartbeat_errors',
  'tx_window_errors', 'rx_nohandler',
] as const

function zeroStats(): NetDeviceStats {
  const s = {} as Record<(typeof STAT_KEYS)[number], number>
  for (const k of STAT_KEYS) s[k] = 0
  return s
}

/**
 * `struct net_device_ops`. Methods receive the device; `netdev_priv(dev)` gives the driver's
 * private data. Only `ndo_start_xmit` is required.
 */
export interface NetDeviceOps<P = unknown> {
  /** `ip link set up`: process context, may sleep; 0 or -errno. netif_running() is already true. */
  ndo_open?(dev: NetDevice<P>): Promise<number> | number
  /** `ip link set down`: process context, may sleep. netif_running() is already false. */
  ndo_stop?(dev: NetDevice<P>): Promise<number> | number
  /**
   * Transmits skb: atomic context (bottom halves disabled), synchronous, must not sleep. Return
   * NETDEV_TX_OK when the driver took the skb (it frees it, usually at TX completion), or
   * NETDEV_TX_BUSY, having called netif_stop_queue(), to have the stack requeue it.
   */
  ndo_start_xmit(skb: SkBuff, dev: NetDevice<P>): netdev_tx_t
  /** The TX watchdog saw the queue stopped for watchdog_timeo jiffies: atomic (timer softirq). */
  ndo_tx_timeout?(dev: NetDevice<P>, txqueue: number): void
  /** Returns the statistics to report instead of dev.stats. */
  ndo_get_stats?(dev: NetDevice<P>): NetDeviceStats
  /** Fills stats (zeroed) with the statistics to report. */
  ndo_get_stats64?(dev: NetDevice<P>, stats: NetDeviceStats): void
  /** Checks dev_addr before ndo_open (Ethernet drivers use eth_validate_addr); 0 or -errno. */
  ndo_validate_addr?(dev: NetDevice<P>): number
}

/** `struct netdev_queue`: the transmit queue. */
export interface NetdevQueue {
  readonly dev: NetDevice
  /** __QUEUE_STATE_* bits. */
  state: number
  /** jiffies of the last transmission, or of the last stop. */
  trans_start: number
  /** Times the watchdog found this queue timed out. */
  trans_timeout: number
}

/** The device's qdisc: a FIFO of tx_queue_len frames with `tc -s qdisc`'s counters. */
export interface Qdisc {
  readonly q: SkBuff[]
  /** Attached (dev_activate): false while the device is down or has no carrier (noop_qdisc). */
  active: boolean
  /** qdisc_run in progress (__QDISC_STATE_RUNNING). */
  running: boolean
  /** On the output queue for NET_TX (__QDISC_STATE_SCHED). */
  scheduled: boolean
  readonly stats: { packets: number; bytes: number; drops: number; requeues: number }
}

/** Counters the stack keeps itself (beside the driver's dev.stats). */
export interface CoreStats {
  /** Frames the stack received from the driver (netif_receive_skb, netif_rx, napi_gro_receive). */
  rx_packets: number
  rx_bytes: number
  /** Frames the driver accepted (ndo_start_xmit returned NETDEV_TX_OK). */
  tx_packets: number
  tx_bytes: number
  /** Dropped by the core (backlog full, a frame that could not be linearized). */
  rx_dropped: number
  tx_dropped: number
  /** Frames no protocol handler or packet socket took. */
  rx_nohandler: number
}

/** `struct net_device`. Create it with alloc_etherdev(); P is the type of netdev_priv(). */
export class NetDevice<P = unknown> {
  /** "eth%d" until register_netdev picks the number. */
  name = 'eth%d'
  ifindex = 0
  /** The embedded `struct device`: `dev.parent` is set by SET_NETDEV_DEV. */
  readonly dev: { parent: Device | null } = { parent: null }
  /** The hardware address (set it with eth_hw_addr_set). */
  readonly dev_addr = new Uint8Array(ETH_ALEN)
  readonly perm_addr = new Uint8Array(ETH_ALEN)
  readonly broadcast = new Uint8Array(ETH_ALEN).fill(0xff)
  addr_assign_type = NET_ADDR_PERM
  addr_len = ETH_ALEN
  type = ARPHRD_ETHER
  hard_header_len = ETH_HLEN
  mtu = ETH_DATA_LEN
  min_mtu = ETH_MIN_MTU
  max_mtu = ETH_DATA_LEN
  /** IFF_* flags; IFF_UP while open. */
  flags = IFF_BROADCAST | IFF_MULTICAST
  /** NETIF_F_* offloads in use. */
  features = 0
  hw_features = 0
  /** Jiffies the transmit queue may stay stopped before ndo_tx_timeout (0: 5 * HZ). */
  watchdog_timeo = 0
  tx_queue_len = DEFAULT_TX_QUEUE_LEN
  needed_headroom = 0
  needed_tailroom = 0
  /** The device's interrupt number, for information (ethtool, /proc). */
  irq = 0
  netdev_ops: NetDeviceOps<P> | null = null
  /** The driver's counters; dev_get_stats() adds the stack's drops to them. */
  readonly stats: NetDeviceStats = zeroStats()
  reg_state = NETREG_UNINITIALIZED
  /** @internal */
  readonly _sys: System
  /** @internal */
  _priv: P
  /** @internal The private area came from kzalloc (alloc_etherdev(sizeof_priv)): freed with the device. */
  _privAllocated = false
  /** @internal __LINK_STATE_START: netif_running(). */
  _running = false
  /** @internal __LINK_STATE_PRESENT. */
  _present = true
  /** @internal !__LINK_STATE_NOCARRIER. */
  _carrier = true
  /** @internal */
  readonly _txq: NetdevQueue
  /** @internal */
  readonly _qdisc: Qdisc = { q: [], active: false, running: false, scheduled: false, stats: { packets: 0, bytes: 0, drops: 0, requeues: 0 } }
  /** @internal */
  readonly _core: CoreStats = { rx_packets: 0, rx_bytes: 0, tx_packets: 0, tx_bytes: 0, rx_dropped: 0, tx_dropped: 0, rx_nohandler: 0 }
  /** @internal NAPI instances added with netif_napi_add. */
  readonly _napis: NapiStruct[] = []
  /** @internal The watchdog timer, from register_netdev. */
  _watchdog: TimerList | null = null
  _watchdogArmed = false
  /** @internal devm_alloc_etherdev: devres frees it at unbind. */
  _managed = false
  /** @internal The devres entry that checks at unbind that the driver unregistered and freed it. */
  _devresCheck: { what: string; release(): void } | null = null
  carrier_up_count = 0
  carrier_down_count = 0

  /** @internal */
  constructor(sys: System, priv: P) {
    this._sys = sys
    this._priv = priv
    this._txq = { dev: this, state: 0, trans_start: 0, trans_timeout: 0 }
  }

  toString(): string {
    return `net_device(${this.name})`
  }
}

// ---------------------------------------------------------------------- helpers

function jiffiesOf(sys: System): number {
  return Math.floor(sys.machine.clock.now / NS_PER_JIFFY)
}

/** Validates a net_device argument of the running system; a released one is a use-after-free. */
export function checkNetdev(t: Task, fn: string, dev: unknown, arg = 'dev', released = false): NetDevice {
  if (!(dev instanceof NetDevice)) netBadArg(t, fn, arg, `must be a struct net_device from alloc_etherdev(), got ${dev === null ? 'NULL' : typeof dev}`)
  if (dev._sys !== t.sys) netBadArg(t, fn, arg, `(${dev.name}) belongs to another system`)
  if (dev.reg_state === NETREG_RELEASED && !released) {
    dev._sys.report({ kind: 'use-after-free', message: `BUG: KASAN: use-after-free in ${fn}(): the net_device ${dev.name} was released by free_netdev()` })
  }
  return dev as NetDevice
}

function driverName(sys: System, parent: Device): string {
  return sys.pciDevices.find((p) => p.dev === parent)?.driver?.name ?? ''
}

function netdevName(dev: NetDevice): string {
  return dev.reg_state === NETREG_UNINITIALIZED || dev.name.includes('%') ? '(unnamed net_device)' : dev.name
}

const REG_STATE_SUFFIX = [' (uninitialized)', '', ' (unregistering)', ' (unregistered)', ' (released)']

/** The prefix netdev_printk puts before a message: "<driver> <parent> <ifname>". */
export function netdevPrefix(dev: NetDevice): string {
  const state = REG_STATE_SUFFIX[dev.reg_state] ?? ''
  const parent = dev.dev.parent
  const name = `${netdevName(dev)}${state}`
  if (parent === null) return name
  return [driverName(dev._sys, parent), parent.name, name].filter((s) => s !== '').join(' ')
}

type Level = 'error' | 'warn' | 'info' | 'debug'

function netdevPrintk(level: Level, fn: string, dev: NetDevice, fmt: string, args: readonly unknown[]): void {
  const { t, sys } = netCall(fn)
  if (!(dev instanceof NetDevice)) netBadArg(t, fn, 'dev', 'must be a struct net_device')
  sys.logger[level]({ dev: dev.dev.parent?.name, netdev: dev.name, task: t.toString() }, `${netdevPrefix(dev)}: ${kformat(fmt, args)}`)
}

/** `netdev_err(dev, fmt, ...)`. */
export function netdev_err(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('error', 'netdev_err', dev, fmt, args)
}
/** `netdev_crit(dev, fmt, ...)` (logged at error). */
export function netdev_crit(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('error', 'netdev_crit', dev, fmt, args)
}
/** `netdev_warn(dev, fmt, ...)`. */
export function netdev_warn(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('warn', 'netdev_warn', dev, fmt, args)
}
/** `netdev_notice(dev, fmt, ...)` (logged at info). */
export function netdev_notice(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('info', 'netdev_notice', dev, fmt, args)
}
/** `netdev_info(dev, fmt, ...)`. */
export function netdev_info(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('info', 'netdev_info', dev, fmt, args)
}
/** `netdev_dbg(dev, fmt, ...)`. */
export function netdev_dbg(dev: NetDevice, fmt: string, ...args: unknown[]): void {
  netdevPrintk('debug', 'netdev_dbg', dev, fmt, args)
}

/** netdev_*_once: logs a message once per system and key (the stack's WARN_ONCE-style messages). */
export function netdevOnce(level: Level, dev: NetDevice | null, key: string, msg: string): void {
  const { t, sys, ns } = netCall('netdev_printk')
  if (ns.once.has(key)) return
  ns.once.add(key)
  sys.logger[level]({ dev: dev?.dev.parent?.name, netdev: dev?.name, task: t.toString() }, dev === null ? msg : `${netdevPrefix(dev)}: ${msg}`)
}

// ---------------------------------------------------------------------- allocation

function ether_setup(dev: NetDevice): void {
  dev.type = ARPHRD_ETHER
  dev.hard_header_len = ETH_HLEN
  dev.mtu = ETH_DATA_LEN
  dev.min_mtu = ETH_MIN_MTU
  dev.max_mtu = ETH_DATA_LEN
  dev.addr_len = ETH_ALEN
  dev.tx_queue_len = DEFAULT_TX_QUEUE_LEN
  dev.flags = IFF_BROADCAST | IFF_MULTICAST
  dev.broadcast.fill(0xff)
}

/**
 * `alloc_etherdev(priv)`: allocates an Ethernet net_device, named "eth%d" until registered, with
 * Ethernet defaults (MTU 1500, tx_queue_len 1000, broadcast ff:ff:ff:ff:ff:ff), carrier on, the
 * queue started. Process context (it allocates with GFP_KERNEL). Returns null on failure.
 *
 * The private area (what `netdev_priv(dev)` returns) is either the object passed in, typed —
 * `alloc_etherdev<MyPriv>({ ... })`, the TypeScript way — or, as in C, `sizeof_priv` zeroed bytes
 * of kernel memory (`alloc_etherdev(64)`: netdev_priv returns a CpuAddr, freed by free_netdev).
 */
export function alloc_etherdev<P extends object>(priv: P): NetDevice<P> | null
export function alloc_etherdev(sizeof_priv?: number): NetDevice<CpuAddr> | null
export function alloc_etherdev(priv?: object | number): NetDevice | null {
  const { t, sys } = netCall('alloc_etherdev')
  return allocEtherdev(t, sys, 'alloc_etherdev', priv)
}

function allocEtherdev(t: Task, sys: System, fn: string, priv: unknown): NetDevice | null {
  mightSleepGfp(t, fn, GFP_KERNEL)
  let p: unknown = priv
  let allocated = false
  if (priv === undefined || typeof priv === 'number') {
    const n = priv ?? 0
    if (!Number.isInteger(n) || n < 0 || n > 1 << 20) netBadArg(t, fn, 'sizeof_priv', `must be a size in bytes, got ${String(priv)}`)
    const area = kzalloc(n)
    if (area === null) return null
    p = area
    allocated = area !== ZERO_SIZE_PTR
  } else if (priv === null || typeof priv !== 'object') {
    netBadArg(t, fn, 'priv', `must be the driver's private object or a size in bytes, got ${priv === null ? 'null' : typeof priv}`)
  }
  const dev = new NetDevice(sys, p)
  dev._privAllocated = allocated
  ether_setup(dev)
  return dev
}

/**
 * `devm_alloc_etherdev(dev, priv)`: alloc_etherdev whose device is freed (free_netdev) when the
 * driver is unbound from `dev`. The driver still unregisters it in remove.
 */
export function devm_alloc_etherdev<P extends object>(dev: Device, priv: P): NetDevice<P> | null
export function devm_alloc_etherdev(dev: Device, sizeof_priv?: number): NetDevice<CpuAddr> | null
export function devm_alloc_etherdev(dev: Device, priv?: object | number): NetDevice | null {
  const { t, sys } = netCall('devm_alloc_etherdev')
  if (!(dev instanceof Device) || dev.sys !== sys) netBadArg(t, 'devm_alloc_etherdev', 'dev', 'must be a struct device of this system (pdev.dev)')
  const nd = allocEtherdev(t, sys, 'devm_alloc_etherdev', priv)
  if (nd === null) return null
  nd._managed = true
  dev.devres.push({
    what: 'devm_alloc_etherdev',
    release: () => {
      if (nd.reg_state === NETREG_RELEASED) return
      if (nd.reg_state === NETREG_REGISTERED || nd.reg_state === NETREG_UNREGISTERING) return // reported by the registration check
      free_netdev(nd)
    },
  })
  return nd
}

/** `netdev_priv(dev)`: the driver's private data given to alloc_etherdev. */
export function netdev_priv<P>(dev: NetDevice<P>): P {
  const { t } = netCall('netdev_priv')
  checkNetdev(t, 'netdev_priv', dev)
  return dev._priv
}

/** `SET_NETDEV_DEV(netdev, &pdev->dev)`: the parent device (for logging, sysfs and DMA). */
export function SET_NETDEV_DEV(netdev: NetDevice, dev: Device): void {
  const { t, sys } = netCall('SET_NETDEV_DEV')
  checkNetdev(t, 'SET_NETDEV_DEV', netdev, 'netdev')
  if (!(dev instanceof Device) || dev.sys !== sys) netBadArg(t, 'SET_NETDEV_DEV', 'dev', 'must be a struct device of this system (pdev.dev)')
  netdev.dev.parent = dev
}

// ---------------------------------------------------------------------- registration

function validName(name: string): boolean {
  return name.length > 0 && name.length < IFNAMSIZ && name !== '.' && name !== '..' && !/[/:\s]/.test(name)
}

/** `dev_alloc_name`: the lowest free number for a "name%d" pattern; null if none. */
function allocName(ns: NetState, pattern: string): string | null {
  const [pre, post] = pattern.split('%d') as [string, string]
  const used = new Set<number>()
  for (const d of ns.devices) {
    if (!d.name.startsWith(pre) || !d.name.endsWith(post)) continue
    const mid = d.name.slice(pre.length, d.name.length - post.length)
    if (/^(0|[1-9]\d*)$/.test(mid)) used.add(Number(mid))
  }
  for (let i = 0; i < 32768; i++) if (!used.has(i)) return `${pre}${i}${post}`
  return null
}

/**
 * `register_netdev(dev)`: names the device (the lowest free number for "eth%d"), gives it an
 * ifindex and makes it visible to user space; 0 or -errno (-EEXIST for a taken name, -EINVAL for
 * a bad one or an MTU outside min_mtu..max_mtu). Process context. The device starts down.
 */
export function register_netdev(dev: NetDevice): number {
  const { t, sys, ns } = netCall('register_netdev')
  mightSleep(t, 'register_netdev')
  const d = checkNetdev(t, 'register_netdev', dev)
  if (d.reg_state !== NETREG_UNINITIALIZED) {
    sys.oops(t, `kernel BUG at net/core/dev.c: register_netdevice: ${d.name} was registered before (reg_state ${d.reg_state})`)
  }
  const ops = d.netdev_ops
  if (ops === null || typeof ops !== 'object' || typeof ops.ndo_start_xmit !== 'function') {
    netBadArg(t, 'register_netdev', 'dev.netdev_ops', 'must be a net_device_ops with an ndo_start_xmit function (set netdev->netdev_ops before registering)')
  }
  if (typeof d.name !== 'string') return -EINVAL
  let name = d.name
  if (name.includes('%')) {
    if (!/^[^%]*%d[^%]*$/.test(name)) return -EINVAL
    const got = allocName(ns, name)
    if (got === null) return -EEXIST
    name = got
  }
  if (!validName(name)) return -EINVAL
  if (ns.byName(name) !== undefined) return -EEXIST
  if (d.mtu < d.min_mtu || d.mtu > d.max_mtu) return -EINVAL
  d.name = name
  d.ifindex = ++ns.ifindex
  if (d.addr_assign_type === NET_ADDR_PERM) d.perm_addr.set(d.dev_addr)
  d._watchdog = timer_setup(null, () => dev_watchdog(d))
  d.reg_state = NETREG_REGISTERED
  ns.devices.push(d)
  const parent = d.dev.parent
  if (parent !== null) {
    // At unbind, the driver must have unregistered (and, unless devm-managed, freed) the device.
    const check = {
      what: `net_device ${name}`,
      release: () => {
        if (!sys.checks.dmaDebug) return
        if (d.reg_state === NETREG_REGISTERED) {
          sys.report({ kind: 'leak', device: parent.name, message: `${parent.name}: net_device ${d.name} is still registered after its driver was unbound: call unregister_netdev() and free_netdev() in remove` })
        } else if (d.reg_state !== NETREG_RELEASED && !d._managed) {
          sys.report({ kind: 'leak', device: parent.name, message: `${parent.name}: net_device ${d.name} was unregistered but never freed: call free_netdev() in remove` })
        }
      },
    }
    d._devresCheck = check
    parent.devres.push(check)
  }
  return 0
}

/** `rtnl_lock()`: takes the RTNL mutex that serialises configuration (open, close, unregister). */
export async function rtnl_lock(): Promise<void> {
  const { ns } = netCall('rtnl_lock')
  await mutex_lock(ns.rtnl)
}

/** `rtnl_unlock()`. */
export function rtnl_unlock(): void {
  const { ns } = netCall('rtnl_unlock')
  mutex_unlock(ns.rtnl)
}

/** `rtnl_is_locked()`. */
export function rtnl_is_locked(): boolean {
  const { ns } = netCall('rtnl_is_locked')
  return ns.rtnl.owner !== null
}

/** `ASSERT_RTNL()`: logs "RTNL: assertion failed" when the caller does not hold the RTNL. */
export function ASSERT_RTNL(): void {
  const { t, ns } = netCall('ASSERT_RTNL')
  assertRtnl(t, ns, 'ASSERT_RTNL')
}

function assertRtnl(t: Task, ns: NetState, fn: string): void {
  if (ns.rtnl.owner === t) return
  ns.sys.logger.error({ task: t.toString() }, `RTNL: assertion failed in ${fn}(): the caller must hold rtnl_lock()`)
}

/**
 * `unregister_netdev(dev)`: closes the device if it is up (ndo_stop runs), takes it out of user
 * space's view, drops the frames its qdisc holds and stops its watchdog. Process context: it
 * takes the RTNL and sleeps. Free it afterwards with free_netdev().
 */
export async function unregister_netdev(dev: NetDevice): Promise<void> {
  const { t, sys, ns } = netCall('unregister_netdev')
  mightSleep(t, 'unregister_netdev')
  const d = checkNetdev(t, 'unregister_netdev', dev)
  if (d.reg_state !== NETREG_REGISTERED) {
    sys.logger.error({ netdev: d.name, task: t.toString() }, `unregister_netdevice: device ${d.name} (reg_state ${d.reg_state}) was not registered`)
    return
  }
  await mutex_lock(ns.rtnl)
  try {
    if ((d.flags & IFF_UP) !== 0) await closeLocked(t, ns, d)
    d.reg_state = NETREG_UNREGISTERING
    const i = ns.devices.indexOf(d)
    if (i >= 0) ns.devices.splice(i, 1)
    ns.outputQueue = ns.outputQueue.filter((x) => x !== d)
    d._qdisc.scheduled = false
    qdiscReset(d)
    watchdogDisarm(d)
    // Frames of this device still in the backlog are dropped (flush_backlog).
    for (let k = ns.backlogQueue.length - 1; k >= 0; k--) {
      const skb = ns.backlogQueue[k]!
      if (skb.dev === d) {
        ns.backlogQueue.splice(k, 1)
        __kfree_skb(skb)
      }
    }
    d.reg_state = NETREG_UNREGISTERED
  } finally {
    mutex_unlock(ns.rtnl)
  }
}

/**
 * `free_netdev(dev)`: releases a device that was never registered or has been unregistered
 * (freeing a registered one is a BUG). Deletes its NAPI instances, frees a kzalloc'd private
 * area, and reports sk_buffs of the device that are still allocated: the driver leaked them.
 */
export function free_netdev(dev: NetDevice): void {
  const { t, sys, ns } = netCall('free_netdev')
  const d = checkNetdev(t, 'free_netdev', dev, 'dev', true)
  if (d.reg_state === NETREG_RELEASED) {
    if (sys.checks.kasan) sys.report({ kind: 'double-free', message: `BUG: KASAN: double-free in free_netdev(): the net_device ${d.name} was already freed` })
    return
  }
  if (d.reg_state === NETREG_REGISTERED || d.reg_state === NETREG_UNREGISTERING) {
    sys.oops(t, `kernel BUG at net/core/dev.c: free_netdev: ${d.name} is still registered: unregister_netdev() it first`)
  }
  for (const n of d._napis.splice(0)) {
    n.state &= ~NAPIF_STATE_LISTED_BIT
    ns.pollList = ns.pollList.filter((x) => x !== n)
    n._onList = false
  }
  const leaked = [...ns.liveSkbs].filter((s) => s.dev === d && !s._freeQueued)
  if (leaked.length > 0 && sys.checks.dmaDebug) {
    sys.report({
      kind: 'leak',
      device: d.dev.parent?.name,
      message: `${d.dev.parent !== null ? `${d.dev.parent.name} ` : ''}${d.name}: ${leaked.length} sk_buff(s) of this device were never freed when free_netdev() released it (kmemleak: unreferenced object, first one ${leaked[0]!.truesize} bytes): free every skb the driver holds (RX ring, TX ring) in ndo_stop or remove`,
      object: leaked[0]!._obj,
      details: { skbs: leaked.length },
    })
  }
  if (d._privAllocated) kfree(d._priv as CpuAddr)
  d._privAllocated = false
  const parent = d.dev.parent
  if (parent !== null && d._devresCheck !== null) {
    const i = parent.devres.indexOf(d._devresCheck)
    if (i >= 0) parent.devres.splice(i, 1)
  }
  d._devresCheck = null
  d.reg_state = NETREG_RELEASED
}

/** napi.ts's NAPI_STATE_LISTED bit (kept here to avoid an import cycle). */
const NAPIF_STATE_LISTED_BIT = 1 << 4

// ---------------------------------------------------------------------- open and close

async function callProcess(t: Task, d: NetDevice, what: string, fn: () => Promise<number> | number): Promise<number> {
  const prev = t.device
  t.device = d.dev.parent ?? prev
  try {
    const r = await fn()
    if (typeof r !== 'number' || !Number.isInteger(r)) netBadArg(t, what, 'return value', `must be 0 or a negative errno, got ${typeof r}`)
    return r
  } finally {
    t.device = prev
  }
}

/**
 * `dev_open(dev)`: brings the device up: netif_running() becomes true, ndo_validate_addr and
 * ndo_open run (process context), then IFF_UP is set and the qdisc is attached if the device has
 * carrier. The caller holds the RTNL. 0 if it is up (or was), else ndo_open's -errno.
 */
export async function dev_open(dev: NetDevice): Promise<number> {
  const { t, ns } = netCall('dev_open')
  mightSleep(t, 'dev_open')
  const d = checkNetdev(t, 'dev_open', dev)
  assertRtnl(t, ns, 'dev_open')
  if (d.reg_state !== NETREG_REGISTERED) return -ENODEV
  if ((d.flags & IFF_UP) !== 0) return 0
  if (!d._present) return -ENODEV
  d._running = true
  const ops = d.netdev_ops!
  let ret = 0
  if (typeof ops.ndo_validate_addr === 'function') ret = await callProcess(t, d, `${d.name}: ndo_validate_addr`, () => ops.ndo_validate_addr!(d))
  if (ret === 0 && typeof ops.ndo_open === 'function') ret = await callProcess(t, d, `${d.name}: ndo_open`, () => ops.ndo_open!(d))
  if (ret !== 0) {
    d._running = false
    return ret
  }
  d.flags |= IFF_UP
  dev_activate(d)
  return 0
}

/**
 * `dev_close(dev)`: takes the device down: netif_running() becomes false, the qdisc is detached
 * (its frames dropped) and the watchdog stopped, then ndo_stop runs (process context) and IFF_UP
 * is cleared. The caller holds the RTNL.
 */
export async function dev_close(dev: NetDevice): Promise<void> {
  const { t, ns } = netCall('dev_close')
  mightSleep(t, 'dev_close')
  const d = checkNetdev(t, 'dev_close', dev)
  assertRtnl(t, ns, 'dev_close')
  await closeLocked(t, ns, d)
}

async function closeLocked(t: Task, _ns: NetState, d: NetDevice): Promise<void> {
  if ((d.flags & IFF_UP) === 0) return
  d._running = false
  dev_deactivate(d)
  const ops = d.netdev_ops!
  if (typeof ops.ndo_stop === 'function') await callProcess(t, d, `${d.name}: ndo_stop`, () => ops.ndo_stop!(d))
  d.flags &= ~IFF_UP
}

/** Attaches the qdisc once the device is up and has carrier (sch_generic.c dev_activate). */
function dev_activate(d: NetDevice): void {
  if ((d.flags & IFF_UP) === 0 || !d._carrier) return
  d._qdisc.active = true
  watchdogArm(d)
}

/** Detaches the qdisc: its frames are dropped, the watchdog stops (dev_deactivate). */
function dev_deactivate(d: NetDevice): void {
  d._qdisc.active = false
  qdiscReset(d)
  watchdogDisarm(d)
}

/** Frees the frames waiting in the qdisc (qdisc_reset). */
function qdiscReset(d: NetDevice): void {
  for (const skb of d._qdisc.q.splice(0)) __kfree_skb(skb)
}

// ---------------------------------------------------------------------- state

/** `netif_running(dev)`: the device has been opened (true during ndo_open, false during ndo_stop). */
export function netif_running(dev: NetDevice): boolean {
  const { t } = netCall('netif_running')
  return checkNetdev(t, 'netif_running', dev)._running
}

/** `netif_carrier_ok(dev)`. */
export function netif_carrier_ok(dev: NetDevice): boolean {
  const { t } = netCall('netif_carrier_ok')
  return checkNetdev(t, 'netif_carrier_ok', dev)._carrier
}

/** `netif_carrier_on(dev)`: the link is up; an open device starts transmitting (any context). */
export function netif_carrier_on(dev: NetDevice): void {
  const { t, ns } = netCall('netif_carrier_on')
  const d = checkNetdev(t, 'netif_carrier_on', dev)
  if (d._carrier) return
  d._carrier = true
  if (d.reg_state === NETREG_UNINITIALIZED) return
  d.carrier_up_count++
  if (d._running) {
    dev_activate(d)
    if (d._qdisc.q.length > 0) __netif_schedule(ns, d)
  }
}

/** `netif_carrier_off(dev)`: the link is down; the qdisc is detached and its frames dropped (any context). */
export function netif_carrier_off(dev: NetDevice): void {
  const { t } = netCall('netif_carrier_off')
  const d = checkNetdev(t, 'netif_carrier_off', dev)
  if (!d._carrier) return
  d._carrier = false
  if (d.reg_state === NETREG_UNINITIALIZED) return
  d.carrier_down_count++
  if ((d.flags & IFF_UP) !== 0) dev_deactivate(d)
}

/** `netif_device_present(dev)`. */
export function netif_device_present(dev: NetDevice): boolean {
  const { t } = netCall('netif_device_present')
  return checkNetdev(t, 'netif_device_present', dev)._present
}

/** `netif_device_detach(dev)`: the hardware is gone (suspend, reset): stop the queue. */
export function netif_device_detach(dev: NetDevice): void {
  const { t } = netCall('netif_device_detach')
  const d = checkNetdev(t, 'netif_device_detach', dev)
  if (!d._present) return
  d._present = false
  if (d._running) stopQueue(d)
  watchdogDisarm(d)
}

/** `netif_device_attach(dev)`: the hardware is back: wake the queue. */
export function netif_device_attach(dev: NetDevice): void {
  const { t, ns } = netCall('netif_device_attach')
  const d = checkNetdev(t, 'netif_device_attach', dev)
  if (d._present) return
  d._present = true
  if (d._running) {
    wakeQueue(ns, d)
    watchdogArm(d)
  }
}

// ---------------------------------------------------------------------- transmit queue

/** `netdev_get_tx_queue(dev, 0)`: the device's one transmit queue. */
export function netdev_get_tx_queue(dev: NetDevice, index = 0): NetdevQueue {
  const { t } = netCall('netdev_get_tx_queue')
  const d = checkNetdev(t, 'netdev_get_tx_queue', dev)
  if (index !== 0) netBadArg(t, 'netdev_get_tx_queue', 'index', `must be 0: a dmalab net_device has one transmit queue, got ${String(index)}`)
  return d._txq
}

function stopQueue(d: NetDevice): void {
  // The watchdog counts from the stop; stopping a stopped queue again does not restart the count
  // (a driver that keeps finding its ring hung must still get its ndo_tx_timeout).
  if ((d._txq.state & __QUEUE_STATE_DRV_XOFF) === 0) d._txq.trans_start = jiffiesOf(d._sys)
  d._txq.state |= __QUEUE_STATE_DRV_XOFF
  watchdogArm(d)
}

function wakeQueue(ns: NetState, d: NetDevice): void {
  if ((d._txq.state & __QUEUE_STATE_DRV_XOFF) === 0) return
  d._txq.state &= ~__QUEUE_STATE_DRV_XOFF
  watchdogDisarm(d)
  if (d._qdisc.q.length > 0) __netif_schedule(ns, d)
}

/** `netif_start_queue(dev)`: allows transmission (in ndo_open); does not kick the qdisc. */
export function netif_start_queue(dev: NetDevice): void {
  const { t } = netCall('netif_start_queue')
  const d = checkNetdev(t, 'netif_start_queue', dev)
  d._txq.state &= ~__QUEUE_STATE_DRV_XOFF
  watchdogDisarm(d)
}

/**
 * `netif_stop_queue(dev)`: the driver cannot take more frames (its TX ring is full); the stack
 * queues them in the qdisc. The TX watchdog starts counting. Any context.
 */
export function netif_stop_queue(dev: NetDevice): void {
  const { t } = netCall('netif_stop_queue')
  stopQueue(checkNetdev(t, 'netif_stop_queue', dev))
}

/** `netif_wake_queue(dev)`: room again (TX completion); NET_TX sends what the qdisc holds. Any context. */
export function netif_wake_queue(dev: NetDevice): void {
  const { t, ns } = netCall('netif_wake_queue')
  wakeQueue(ns, checkNetdev(t, 'netif_wake_queue', dev))
}

/** `netif_queue_stopped(dev)`. */
export function netif_queue_stopped(dev: NetDevice): boolean {
  const { t } = netCall('netif_queue_stopped')
  return (checkNetdev(t, 'netif_queue_stopped', dev)._txq.state & QUEUE_STOPPED) !== 0
}

/** `netif_tx_stop_all_queues(dev)` (one queue here). */
export function netif_tx_stop_all_queues(dev: NetDevice): void {
  const { t } = netCall('netif_tx_stop_all_queues')
  stopQueue(checkNetdev(t, 'netif_tx_stop_all_queues', dev))
}
/** `netif_tx_wake_all_queues(dev)`. */
export function netif_tx_wake_all_queues(dev: NetDevice): void {
  const { t, ns } = netCall('netif_tx_wake_all_queues')
  wakeQueue(ns, checkNetdev(t, 'netif_tx_wake_all_queues', dev))
}
/** `netif_tx_start_all_queues(dev)`. */
export function netif_tx_start_all_queues(dev: NetDevice): void {
  const { t } = netCall('netif_tx_start_all_queues')
  const d = checkNetdev(t, 'netif_tx_start_all_queues', dev)
  d._txq.state &= ~__QUEUE_STATE_DRV_XOFF
  watchdogDisarm(d)
}
/** `netif_tx_disable(dev)`: stops the queue (before a reset). */
export function netif_tx_disable(dev: NetDevice): void {
  const { t } = netCall('netif_tx_disable')
  stopQueue(checkNetdev(t, 'netif_tx_disable', dev))
}
/** `netif_trans_update(dev)`: the queue made progress (resets the watchdog's count). */
export function netif_trans_update(dev: NetDevice): void {
  const { t, sys } = netCall('netif_trans_update')
  checkNetdev(t, 'netif_trans_update', dev)._txq.trans_start = jiffiesOf(sys)
}

/** `__netif_schedule`: puts the device's qdisc on the output queue and raises NET_TX. */
export function __netif_schedule(ns: NetState, d: NetDevice): void {
  if (d._qdisc.scheduled) return
  d._qdisc.scheduled = true
  ns.outputQueue.push(d)
  raise_net_softirq(ns, NET_TX_SOFTIRQ)
}

// ---------------------------------------------------------------------- TX watchdog

/**
 * The watchdog timer is armed only while the queue is stopped (with the device running, present,
 * with carrier, and an ndo_tx_timeout): it fires watchdog_timeo jiffies after the stop. Linux's
 * dev_watchdog polls every watchdog_timeo while the device is up and acts only on a stopped
 * queue; arming it on the stop gives the same ndo_tx_timeout calls (a little more punctually),
 * and a system with an idle NIC still goes idle (sys.runUntilIdle() returns).
 */
function watchdogArm(d: NetDevice): void {
  const ops = d.netdev_ops
  if (d._watchdog === null || ops === null || typeof ops.ndo_tx_timeout !== 'function') return
  if (!d._present || !d._running || !d._carrier || (d._txq.state & QUEUE_STOPPED) === 0) return
  if (d._watchdogArmed) return
  if (!(d.watchdog_timeo > 0)) d.watchdog_timeo = 5 * HZ
  d._watchdogArmed = true
  mod_timer(d._watchdog, d._txq.trans_start + d.watchdog_timeo + 1)
}

function watchdogDisarm(d: NetDevice): void {
  if (d._watchdog === null || !d._watchdogArmed) return
  d._watchdogArmed = false
  del_timer(d._watchdog)
}

/** `dev_watchdog`: the timer callback (softirq context). */
function dev_watchdog(d: NetDevice): void {
  d._watchdogArmed = false
  const sys = d._sys
  const txq = d._txq
  if (d.reg_state !== NETREG_REGISTERED || !d._present || !d._running || !d._carrier || (txq.state & QUEUE_STOPPED) === 0) return
  const now = jiffiesOf(sys)
  if (now > txq.trans_start + d.watchdog_timeo) {
    const ms = jiffies_to_msecs(now - txq.trans_start)
    txq.trans_timeout++
    netdev_crit(d, 'NETDEV WATCHDOG: CPU: %d: transmit queue %u timed out %u ms', 0, 0, ms)
    const ops = d.netdev_ops
    if (ops !== null && typeof ops.ndo_tx_timeout === 'function') call_driver_atomic(sys, `${d.name}: ndo_tx_timeout`, () => ops.ndo_tx_timeout!(d, 0))
    // Still stopped: look again after another watchdog_timeo (Linux re-arms from now).
    if (!d._watchdogArmed && d._running && (txq.state & QUEUE_STOPPED) !== 0 && d._watchdog !== null) {
      d._watchdogArmed = true
      mod_timer(d._watchdog, now + d.watchdog_timeo)
    }
    return
  }
  watchdogArm(d)
}

// ---------------------------------------------------------------------- statistics

/**
 * `dev_get_stats(dev)`: the driver's statistics (ndo_get_stats64, ndo_get_stats or dev.stats)
 * plus the drops the stack counted (rx_dropped, tx_dropped, rx_nohandler). Calls the driver in
 * the caller's context.
 */
export function dev_get_stats(dev: NetDevice): NetDeviceStats {
  const { t } = netCall('dev_get_stats')
  const d = checkNetdev(t, 'dev_get_stats', dev)
  const ops = d.netdev_ops
  let s: NetDeviceStats
  if (ops !== null && typeof ops.ndo_get_stats64 === 'function') {
    s = zeroStats()
    ops.ndo_get_stats64(d, s)
  } else if (ops !== null && typeof ops.ndo_get_stats === 'function') {
    s = { ...zeroStats(), ...ops.ndo_get_stats(d) }
  } else s = { ...d.stats }
  s.rx_dropped += d._core.rx_dropped
  s.tx_dropped += d._core.tx_dropped
  s.rx_nohandler += d._core.rx_nohandler
  return s
}

/** The system's registered devices (for the harness). */
export function netDevices(sys: System): readonly NetDevice[] {
  return netState(sys).devices
}
