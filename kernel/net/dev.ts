/**
 * The core of the packet path (net/core/dev.c, net/sched/sch_generic.c):
 *
 * Transmit. `dev_queue_xmit(skb)` sends skb out of `skb.dev`, with bottom halves disabled. An idle
 * qdisc is bypassed: the frame goes straight to the driver's `ndo_start_xmit`. Otherwise, or while
 * the driver has stopped its queue, the frame waits in the qdisc (a FIFO of `tx_queue_len`
 * frames; beyond it frames are dropped and counted), and `netif_wake_queue()` has the NET_TX
 * softirq send them. A driver that returns NETDEV_TX_BUSY gets the frame requeued at the head.
 * One qdisc run sends at most dev_tx_weight (64) frames, then reschedules itself.
 *
 * Receive. `netif_receive_skb(skb)` (or `napi_gro_receive(napi, skb)`, its NAPI form: there is no
 * GRO) hands a received frame to the stack: the packet sockets of the user-space harness see it,
 * then the protocol handler of `skb.protocol` (ARP, IPv4: kernel/net/inet.ts), and the stack frees
 * it. It reads the frame through the CPU accessors, so a buffer still mapped for the device is
 * reported at that read. `netif_rx(skb)` queues a frame from any context on the backlog, which the
 * NET_RX softirq processes.
 */

import type { System } from '../system.js'
import { currentOrNull } from '../sched/current.js'
import { HZ } from '../types.js'
import { ntohs } from './eth.js'
import { type NapiStruct, backlogDone, backlogNapi, netSysctl, scheduleBacklog } from './napi.js'
import {
  IFF_UP, NETDEV_TX_BUSY, NETDEV_TX_OK, NETIF_F_SG, __QUEUE_STATE_DRV_XOFF, __QUEUE_STATE_STACK_XOFF, __netif_schedule,
  checkNetdev, netdevOnce, type NetDevice,
} from './netdevice.js'
import {
  PACKET_OUTGOING, __kfree_skb, checkSkb, free_completion_queue, skbRead, skb_headroom, skb_is_nonlinear,
  skb_linearize, skb_mac_header_was_set, skb_reset_mac_header, skb_reset_network_header, type SkBuff,
} from './skbuff.js'
import { NET_TX_SOFTIRQ, call_driver_atomic, open_net_softirq, with_bh_disabled } from './softirq.js'
import { netBadArg, netCall, type NetState } from './state.js'

/** dev_queue_xmit's return values. */
export const NET_XMIT_SUCCESS = 0x00
export const NET_XMIT_DROP = 0x01
export const NET_XMIT_CN = 0x02
/** netif_receive_skb's and netif_rx's return values. */
export const NET_RX_SUCCESS = 0
export const NET_RX_DROP = 1
/** napi_gro_receive's return values (`gro_result_t`). */
export const GRO_MERGED = 0
export const GRO_MERGED_FREE = 1
export const GRO_HELD = 2
export const GRO_NORMAL = 3
export const GRO_CONSUMED = 4
export type gro_result_t = number

/** Frames one qdisc run sends before it yields (net.core.dev_weight * dev_weight_tx_bias). */
export const DEV_TX_WEIGHT = 64

const NS_PER_JIFFY = 1e9 / HZ
const STOPPED = __QUEUE_STATE_DRV_XOFF | __QUEUE_STATE_STACK_XOFF

// ---------------------------------------------------------------------- protocol handlers

/** `struct packet_type`: a protocol handler (dev_add_pack). It must not free the skb. */
export interface PacketType {
  /** The EtherType, host order (ETH_P_ARP, ...). */
  readonly type: number
  func(ns: NetState, skb: SkBuff, dev: NetDevice): void
}

const ptypeBase = new Map<number, PacketType>()

/** `dev_add_pack`: installs a protocol handler (kernel/net/inet.ts adds ARP and IPv4). */
export function dev_add_pack(pt: PacketType): void {
  ptypeBase.set(pt.type, pt)
}

// ---------------------------------------------------------------------- transmit

function jiffiesOf(sys: System): number {
  return Math.floor(sys.machine.clock.now / NS_PER_JIFFY)
}

/** Delivers a frame to the packet sockets that want outgoing frames (dev_queue_xmit_nit). */
function xmitNit(ns: NetState, skb: SkBuff, dev: NetDevice): void {
  const taps = ns.taps.filter((tp) => tp.outgoing && (tp.dev === null || tp.dev === dev))
  if (taps.length === 0) return
  const macOff = skb_mac_header_was_set(skb) ? skb.mac_header - skb_headroom(skb) : 0
  const frame = skbRead(skb, macOff, skb.len - macOff)
  const now = ns.sys.machine.clock.now
  for (const tp of taps) tp.deliver(frame.slice(), dev, PACKET_OUTGOING, skb.protocol, now)
}

/**
 * `dev_hard_start_xmit` for one frame: linearizes it for a device without NETIF_F_SG, shows it to
 * the packet sockets and calls ndo_start_xmit. Returns the driver's netdev_tx_t.
 */
function xmitOne(ns: NetState, skb: SkBuff, dev: NetDevice): number {
  if (skb_is_nonlinear(skb) && (dev.features & NETIF_F_SG) === 0 && skb_linearize(skb) !== 0) {
    dev._core.tx_dropped++
    __kfree_skb(skb)
    return NETDEV_TX_OK
  }
  xmitNit(ns, skb, dev)
  const len = skb.len
  const ops = dev.netdev_ops!
  const rc: unknown = call_driver_atomic(ns.sys, `${dev.name}: ndo_start_xmit`, () => ops.ndo_start_xmit(skb, dev))
  if (rc === NETDEV_TX_OK) {
    dev._txq.trans_start = jiffiesOf(ns.sys)
    dev._core.tx_packets++
    dev._core.tx_bytes += len
    return NETDEV_TX_OK
  }
  if (rc === NETDEV_TX_BUSY) return NETDEV_TX_BUSY
  if (rc === undefined) return NETDEV_TX_OK // the callback oopsed, or returned a Promise (reported)
  if (typeof rc !== 'number') {
    netdevOnce('error', dev, `xmit-ret-${dev.name}`, `ndo_start_xmit returned ${typeof rc}: it must return NETDEV_TX_OK or NETDEV_TX_BUSY`)
    return NETDEV_TX_OK
  }
  // dev_xmit_complete(): values below NET_XMIT_MASK (and negative errnos) mean "consumed".
  if (rc < 0x0f) return NETDEV_TX_OK
  netdevOnce('error', dev, `xmit-bug-${dev.name}`, `BUG ${dev.name} code ${rc} qlen ${dev._qdisc.q.length}`)
  return NETDEV_TX_BUSY
}

/** `dev_requeue_skb`: the frame goes back to the head of the qdisc, and NET_TX will try again. */
function requeue(ns: NetState, dev: NetDevice, skb: SkBuff): void {
  dev._qdisc.q.unshift(skb)
  dev._qdisc.stats.requeues++
  if ((dev._txq.state & STOPPED) === 0) {
    netdevOnce('error', dev, `busy-awake-${dev.name}`, 'BUG! ndo_start_xmit returned NETDEV_TX_BUSY while its queue is awake: stop the queue (netif_stop_queue) before returning BUSY, or the stack retries in a loop')
  }
  __netif_schedule(ns, dev)
}

/** `sch_direct_xmit`: sends one frame; false when it was requeued (the run stops). */
function directXmit(ns: NetState, dev: NetDevice, skb: SkBuff): boolean {
  if ((dev._txq.state & STOPPED) !== 0) {
    requeue(ns, dev, skb)
    return false
  }
  if (xmitOne(ns, skb, dev) === NETDEV_TX_BUSY) {
    requeue(ns, dev, skb)
    return false
  }
  return true
}

/** `qdisc_run`: sends queued frames while the queue is awake, at most DEV_TX_WEIGHT per run. */
function qdiscRun(ns: NetState, dev: NetDevice): void {
  const q = dev._qdisc
  if (q.running || !q.active) return
  q.running = true
  try {
    let quota = DEV_TX_WEIGHT
    while (q.q.length > 0 && q.active && (dev._txq.state & STOPPED) === 0) {
      const skb = q.q.shift()!
      q.stats.packets++
      q.stats.bytes += skb.len
      if (!directXmit(ns, dev, skb)) break
      if (--quota <= 0) {
        if (q.q.length > 0) __netif_schedule(ns, dev)
        break
      }
    }
  } finally {
    q.running = false
  }
}

function __dev_queue_xmit(ns: NetState, skb: SkBuff, dev: NetDevice): number {
  skb_reset_mac_header(skb)
  const q = dev._qdisc
  if ((dev.flags & IFF_UP) === 0 || !q.active) {
    // noop_qdisc: the device is down or has no carrier.
    q.stats.drops++
    __kfree_skb(skb)
    return NET_XMIT_CN
  }
  if (q.q.length === 0 && !q.running && (dev._txq.state & STOPPED) === 0) {
    // TCQ_F_CAN_BYPASS: an empty qdisc hands the frame straight to the driver.
    q.stats.packets++
    q.stats.bytes += skb.len
    q.running = true
    let sent: boolean
    try {
      sent = directXmit(ns, dev, skb)
    } finally {
      q.running = false
    }
    if (sent && q.q.length > 0) qdiscRun(ns, dev)
    return NET_XMIT_SUCCESS
  }
  if (q.q.length >= dev.tx_queue_len) {
    q.stats.drops++
    __kfree_skb(skb)
    return NET_XMIT_DROP
  }
  q.q.push(skb)
  qdiscRun(ns, dev)
  return NET_XMIT_SUCCESS
}

/**
 * `dev_queue_xmit(skb)`: transmits skb through skb.dev (which must be set). Runs with bottom
 * halves disabled: from process context the driver's ndo_start_xmit runs in an atomic context
 * (sleeping there is `invalid-context`) and the softirqs raised meanwhile run when it returns.
 * The skb belongs to the stack from here on, whatever the result: NET_XMIT_SUCCESS (sent or
 * queued), NET_XMIT_DROP (the qdisc is full) or NET_XMIT_CN (the device is down or has no
 * carrier: dropped).
 */
export function dev_queue_xmit(skb: SkBuff): number {
  const { t, sys, ns } = netCall('dev_queue_xmit')
  const s = checkSkb(t, 'dev_queue_xmit', skb)
  const dev = s.dev
  if (dev === null) return sys.oops(t, 'Unable to handle kernel NULL pointer dereference in dev_queue_xmit(): skb->dev is NULL (set the device to send through)')
  checkNetdev(t, 'dev_queue_xmit', dev, 'skb.dev')
  if (t.context === 'hardirq' || t.irqsDisabled > 0) {
    netdevOnce('error', dev, 'xmit-irqs-off', 'WARNING: dev_queue_xmit() called with interrupts disabled (WARN in __local_bh_enable_ip): transmit from process context, a softirq or a NAPI poll')
  }
  return with_bh_disabled(sys, t, () => __dev_queue_xmit(ns, s, dev)) ?? NET_XMIT_DROP
}

/** `net_tx_action`: the NET_TX softirq: frees the completion queue, runs the scheduled qdiscs. */
function net_tx_action(ns: NetState): void {
  free_completion_queue(ns)
  const q = ns.outputQueue
  if (q.length === 0) return
  ns.outputQueue = []
  for (const dev of q) {
    dev._qdisc.scheduled = false
    qdiscRun(ns, dev)
  }
}

open_net_softirq(NET_TX_SOFTIRQ, net_tx_action)

// ---------------------------------------------------------------------- receive

function __netif_receive_skb(ns: NetState, skb: SkBuff): number {
  const sys = ns.sys
  const dev = skb.dev
  if (dev === null) {
    __kfree_skb(skb)
    return sys.oops(currentOrNull()!, 'Unable to handle kernel NULL pointer dereference in __netif_receive_skb(): skb->dev is NULL (eth_type_trans sets it)')
  }
  ns.softnet.processed++
  if (!skb_mac_header_was_set(skb)) {
    netdevOnce('warn', dev, `no-mac-${dev.name}`, 'received an skb without a MAC header: did the driver forget eth_type_trans()? (skb->protocol is then 0 and no protocol handler takes it)')
    skb_reset_mac_header(skb)
  }
  const macOff = skb.mac_header - skb_headroom(skb)
  dev._core.rx_packets++
  dev._core.rx_bytes += skb.len - macOff
  skb_reset_network_header(skb)
  let taken = false
  const taps = ns.taps.filter((tp) => tp.dev === null || tp.dev === dev)
  if (taps.length > 0) {
    const frame = skbRead(skb, macOff, skb.len - macOff)
    const now = sys.machine.clock.now
    for (const tp of taps) tp.deliver(frame.slice(), dev, skb.pkt_type, skb.protocol, now)
    taken = true
  }
  const pt = ptypeBase.get(ntohs(skb.protocol))
  if (pt !== undefined) {
    pt.func(ns, skb, dev)
    taken = true
  } else if (!taken) dev._core.rx_nohandler++
  __kfree_skb(skb)
  return taken ? NET_RX_SUCCESS : NET_RX_DROP
}

function receiveFrom(fn: string, skb: SkBuff): number {
  const { t, sys, ns } = netCall(fn)
  const s = checkSkb(t, fn, skb)
  if (t.context === 'hardirq') {
    netdevOnce('error', s.dev, `rx-hardirq-${fn}`, `WARNING: ${fn}() called from a hard-IRQ handler: schedule NAPI (napi_schedule) and deliver from the poll, or use netif_rx()`)
  }
  return with_bh_disabled(sys, t, () => __netif_receive_skb(ns, s)) ?? NET_RX_DROP
}

/**
 * `netif_receive_skb(skb)`: hands a received frame (after eth_type_trans) to the stack, from the
 * NAPI poll. Packet sockets see it, then its protocol handler; the stack frees it. Returns
 * NET_RX_SUCCESS, or NET_RX_DROP when nothing took it.
 */
export function netif_receive_skb(skb: SkBuff): number {
  return receiveFrom('netif_receive_skb', skb)
}

/**
 * `napi_gro_receive(napi, skb)`: netif_receive_skb from a NAPI poll (no GRO merging is done: each
 * frame is delivered at once). Returns GRO_NORMAL.
 */
export function napi_gro_receive(napi: NapiStruct, skb: SkBuff): gro_result_t {
  const { t } = netCall('napi_gro_receive')
  if (napi === null || typeof napi !== 'object' || typeof napi.poll !== 'function') netBadArg(t, 'napi_gro_receive', 'napi', 'must be a napi_struct from netif_napi_add()')
  receiveFrom('napi_gro_receive', skb)
  return GRO_NORMAL
}

/** The backlog's poll (process_backlog): up to its weight of netif_rx'd frames. */
function process_backlog(napi: NapiStruct, quota: number): number {
  const { ns } = netCall('process_backlog')
  let work = 0
  while (work < quota && ns.backlogQueue.length > 0) {
    __netif_receive_skb(ns, ns.backlogQueue.shift()!)
    work++
  }
  if (ns.backlogQueue.length === 0) backlogDone(napi)
  return work
}

/**
 * `netif_rx(skb)`: queues a received frame on the backlog, from any context (a driver without
 * NAPI, a hard-IRQ handler); the NET_RX softirq delivers it. NET_RX_DROP (the skb is freed) when
 * the backlog holds netdev_max_backlog frames already.
 */
export function netif_rx(skb: SkBuff): number {
  const { t, ns } = netCall('netif_rx')
  const s = checkSkb(t, 'netif_rx', skb)
  const dev = s.dev
  if (dev === null) return ns.sys.oops(t, 'Unable to handle kernel NULL pointer dereference in netif_rx(): skb->dev is NULL (eth_type_trans sets it)')
  if (ns.backlogQueue.length >= netSysctl(ns).netdev_max_backlog) {
    ns.softnet.dropped++
    dev._core.rx_dropped++
    __kfree_skb(s)
    return NET_RX_DROP
  }
  ns.backlogQueue.push(s)
  scheduleBacklog(ns, backlogNapi(ns, process_backlog))
  return NET_RX_SUCCESS
}
