/**
 * The networking state of one system (Linux keeps it in `struct net` and the per-CPU
 * `softnet_data`): registered net_devices, the NAPI poll list, the qdisc output queue, the
 * completion queue of dev_kfree_skb_irq, the backlog of netif_rx, the live sk_buffs, the taps of
 * the user-space packet sockets and the RTNL mutex. It lives in a WeakMap keyed by the System, so
 * the System class knows nothing of networking and no state leaks between systems.
 */

import { InvalidArgumentError } from '../errors.js'
import type { KObject } from '../mm/page.js'
import { badArg } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import { mutex_init, type Mutex } from '../sched/time.js'
import type { System } from '../system.js'
import type { NapiStruct } from './napi.js'
import type { NetDevice } from './netdevice.js'
import type { SkBuff } from './skbuff.js'

/** `/proc/net/softnet_stat`'s counters (one CPU). */
export interface SoftnetStat {
  /** Frames the stack processed (netif_receive_skb and the backlog). */
  processed: number
  /** Frames dropped because the backlog was full (netif_rx). */
  dropped: number
  /** net_rx_action rounds that ended with work left (budget exhausted). */
  time_squeeze: number
  /** Softirq runs handed over to ksoftirqd because work was left after the restarts. */
  ksoftirqd_wakeups: number
}

/** A receiver of every frame (ptype_all): the user-space packet sockets register one. */
export interface PacketTap {
  /** The device the tap is bound to, or null for every device. */
  readonly dev: NetDevice | null
  /** Whether it also sees frames the system transmits (PACKET_OUTGOING). */
  readonly outgoing: boolean
  deliver(frame: Uint8Array, dev: NetDevice, pktType: number, protocol: number, time: number): void
}

export class NetState {
  readonly sys: System
  /** Registered net_devices in registration order (`dev_base_head`). */
  readonly devices: NetDevice[] = []
  ifindex = 0
  /** Every sk_buff not yet freed. */
  readonly liveSkbs = new Set<SkBuff>()
  /** Page blocks referenced by skb fragments: how many fragments point into each. */
  readonly fragRefs = new Map<KObject, number>()
  /** NAPI instances scheduled for polling (`softnet_data.poll_list`). */
  pollList: NapiStruct[] = []
  /** Devices whose qdisc waits to be run by NET_TX (`softnet_data.output_queue`). */
  outputQueue: NetDevice[] = []
  /** skbs freed from hard-IRQ context, released by NET_TX (`softnet_data.completion_queue`). */
  completionQueue: SkBuff[] = []
  /** netif_rx's queue (`softnet_data.input_pkt_queue`) and its NAPI (`softnet_data.backlog`). */
  readonly backlogQueue: SkBuff[] = []
  backlog: NapiStruct | null = null
  readonly softnet: SoftnetStat = { processed: 0, dropped: 0, time_squeeze: 0, ksoftirqd_wakeups: 0 }
  /** Pending NET_* softirq bits. */
  softirqPending = 0
  /** A softirq run is queued on the system's CPU. */
  softirqQueued = false
  /** ksoftirqd has been woken and will run the pending softirqs. */
  ksoftirqdWoken = false
  /** Whether a NET softirq round is running now (net_rx_action's in_net_rx_action). */
  inSoftirq = false
  /** ptype_all: the packet sockets' taps. */
  readonly taps: PacketTap[] = []
  readonly rtnl: Mutex = mutex_init()
  /** Messages printed once (WARN_ONCE and friends), by key. */
  readonly once = new Set<string>()

  constructor(sys: System) {
    this.sys = sys
  }

  /** A registered device by name. */
  byName(name: string): NetDevice | undefined {
    return this.devices.find((d) => d.name === name)
  }
}

const states = new WeakMap<System, NetState>()

/** The networking state of a system, created on first use. */
export function netState(sys: System): NetState {
  let s = states.get(sys)
  if (s === undefined) {
    s = new NetState(sys)
    states.set(sys, s)
  }
  return s
}

/** The running task and its system's networking state (a kernel call: costs time, may take IRQs). */
export function netCall(fn: string): { t: Task; sys: System; ns: NetState } {
  const t = current(fn)
  const sys = t.sys as System
  return { t, sys, ns: netState(sys) }
}

/** Oopses naming a bad argument (as the rest of the kernel does). */
export function netBadArg(t: Task, fn: string, arg: string, problem: string): never {
  return badArg(t, fn, arg, problem)
}

/** An error a user-space call throws for a bad argument. */
export function userArgError(fn: string, arg: string, problem: string): InvalidArgumentError {
  return new InvalidArgumentError(fn, arg, problem)
}
