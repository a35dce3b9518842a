/**
 * Test rigs and traffic helpers for the NIC conformance suite (test/net/conformance.ts): a NIC in
 * a booted system plugged into a Wire, a TrafficPeer at the other end, seeded test frames sent
 * from the system's user space and checked at the peer, seeded test frames sent by the peer and
 * checked at a packet socket, a "pktgen" burst sent from softirq context, and a CPU kept busy in
 * softirq context.
 *
 * Every check records a readable message (which frame, which sequence number, what was wrong)
 * instead of failing at once, so a test can report the first few problems of a run together.
 */
import {
  ETH_P_TEST, TrafficPeer, Wire, buildFrame, checkTestPayload, formatMac, makeTestPayload, type EtherEndpoint,
  type PciFunction, type SendRun, type WireOptions, Rng,
} from '../../devices/index.js'
import {
  GFP_ATOMIC, MAX_SKB_FRAGS, NET_SKB_PAD, NET_XMIT_SUCCESS, PACKET_HOST, PAGE_SIZE, alloc_page, alloc_skb, boot,
  dev_queue_xmit, formatReport, jiffies, kfree_skb, mem_write_bytes, mod_timer, netUser, netif_queue_stopped,
  page_address, pci_register_driver, ptr_add, skb_fill_page_desc, skb_put_data, skb_reserve, timer_setup, udelay,
  type BootOptions, type NetDeviceStats, type NetUser, type PacketSocket, type PciDriver, type ReceivedFrame, type System,
} from '../../kernel/index.js'
// The kernel exports no lookup of a net_device by name (dev_get_by_name): the pktgen burst below
// needs the object to set skb->dev, as Linux's pktgen does. Read-only use of the net state.
import { netState } from '../../kernel/net/state.js'

/** A NIC model: a PCI function with an Ethernet port. */
export type NicDevice = PciFunction & EtherEndpoint

export const ETH_HLEN = 14
export const MIN_FRAME = 60
export const MAX_FRAME = 1514
/** How many problems a checker keeps described (all are counted). */
const MAX_DESCRIBED = 20

/** A locally administered MAC address ending in `n`. */
export function testMac(kind: number, n: number): Uint8Array {
  return new Uint8Array([0x02, 0xc0, 0x4f, kind & 0xff, (n >>> 8) & 0xff, n & 0xff])
}

/** The reports of each system, formatted, or [] — for `expect(...).toEqual([])` with a message. */
export function reportsOf(...systems: System[]): string[] {
  return systems.flatMap((s) => s.reports.map((r) => `${s.name} (${s.arch} seed ${s.seed}): ${formatReport(r)}`))
}

/**
 * Runs the system (and those coupled to it) until pred holds, at most timeoutNs of virtual time;
 * then fails with `what` (instead of a bare timeout error), or with `fail` false returns false.
 */
export async function runUntilOr(sys: System, pred: () => boolean, timeoutNs: number, what: () => string, fail = true): Promise<boolean> {
  try {
    await sys.runUntil(pred, { timeoutNs })
    return true
  } catch (e) {
    if (pred()) return true
    if (!fail) return false
    throw new Error(`${what()} (within ${timeoutNs / 1e6} ms of virtual time)`, { cause: e })
  }
}

/** Boots a system with one NIC, registers a fresh driver and returns the NIC's interface name. */
export async function bootNic(
  device: NicDevice, driver: PciDriver, options: BootOptions, booted?: (sys: System) => void,
): Promise<{ sys: System; net: NetUser; ifname: string }> {
  const sys = boot({ log: 'silent', ...options, devices: [device] })
  booted?.(sys)
  const rc = await sys.run(() => pci_register_driver(driver))
  if (rc !== 0) throw new Error(`pci_register_driver(${driver.name}) returned ${rc}`)
  const net = netUser(sys)
  const mine = net.devices().filter((d) => d.parent === device.name)
  if (mine.length !== 1) {
    throw new Error(`after probe, ${device.name} should have one interface; it has ${mine.length} (${net.devices().map((d) => `${d.name} parent=${d.parent}`).join(', ') || 'none'})`)
  }
  return { sys, net, ifname: mine[0]!.name }
}

/** Brings the interface up and waits for carrier. */
export async function ifupWithCarrier(sys: System, net: NetUser, ifname: string): Promise<void> {
  const rc = await net.ifup(ifname)
  if (rc !== 0) throw new Error(`ifup ${ifname}: ndo_open returned ${rc}`)
  await runUntilOr(sys, () => net.device(ifname).carrier, 1e9, () => `${ifname} has no carrier after ifup (the cable is plugged in)`)
}

/** One NIC in one system, wired to a TrafficPeer (a generator, which also checks what it receives). */
export interface NicRig<D extends NicDevice> {
  readonly label: string
  readonly sys: System
  readonly net: NetUser
  readonly device: D
  readonly mac: Uint8Array
  readonly ifname: string
  readonly wire: Wire
  readonly peer: TrafficPeer
  /** Seeds the test payloads both ways and the frame sizes. */
  readonly seed: number
  /** sk_buffs in use before the interface first came up. */
  readonly skbsBeforeUp: number
}

export interface RigOptions {
  readonly label: string
  readonly boot: BootOptions
  readonly seed: number
  readonly wire?: WireOptions
  /** Told of the system as soon as it is booted (to list its reports if the test fails). */
  readonly booted?: (sys: System) => void
}

export async function nicWithPeer<D extends NicDevice>(
  make: (name: string, mac: Uint8Array) => D, driver: PciDriver, o: RigOptions,
): Promise<NicRig<D>> {
  const mac = testMac(1, 1)
  const device = make('nic0', mac)
  const { sys, net, ifname } = await bootNic(device, driver, o.boot, o.booted)
  const peer = new TrafficPeer({ name: 'peer', clock: sys.machine.clock, mac: testMac(2, 2), mode: 'generator', seed: o.seed, keep: 16 })
  const wire = new Wire({ bitsPerSecond: 1e9, ...o.wire })
  wire.connect(device, peer)
  const skbsBeforeUp = net.skbsInUse
  await ifupWithCarrier(sys, net, ifname)
  const info = net.device(ifname)
  if (info.mac !== formatMac(mac)) throw new Error(`${ifname} has MAC ${info.mac}, the device's is ${formatMac(mac)}`)
  return { label: o.label, sys, net, device, mac, ifname, wire, peer, seed: o.seed, skbsBeforeUp }
}

// ------------------------------------------------------------------------------ transmit

export interface TxOptions {
  readonly minSize?: number
  readonly maxSize?: number
  /** One frame in `fragsOneIn` has its payload in 1..17 page fragments (0: never). Default 4. */
  readonly fragsOneIn?: number
}

/**
 * Frames from the NIC's user space to the peer: seeded-random sizes, a test payload each with
 * consecutive sequence numbers, some in page fragments (TX scatter-gather).
 */
export class TxStream<D extends NicDevice> {
  readonly rig: NicRig<D>
  readonly #rng: Rng
  /** The sequence number of the next frame. */
  seq = 0
  readonly failures: string[] = []
  failureCount = 0

  constructor(rig: NicRig<D>) {
    this.rig = rig
    this.#rng = new Rng(rig.seed * 7919 + 17)
  }

  /** A test frame (the next sequence number) and its fragment count. */
  frame(o: TxOptions = {}): { bytes: Uint8Array; frags: number; seq: number } {
    const { minSize = MIN_FRAME, maxSize = MAX_FRAME, fragsOneIn = 4 } = o
    const size = minSize + this.#rng.int(maxSize - minSize + 1)
    const payload = size - ETH_HLEN
    const frags = fragsOneIn > 0 && this.#rng.int(fragsOneIn) === 0 ? 1 + this.#rng.int(Math.min(MAX_SKB_FRAGS, payload)) : 0
    const seq = this.seq++
    const bytes = buildFrame({ dst: this.rig.peer.mac, src: this.rig.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, payload, this.rig.seed) })
    return { bytes, frags, seq }
  }

  /** Sends `n` frames, one `net.send` each; `between` runs after each (e.g. to drain a socket). */
  async send(n: number, o: TxOptions = {}, between?: () => void): Promise<void> {
    const { net, ifname } = this.rig
    for (let i = 0; i < n; i++) {
      const f = this.frame(o)
      const rc = await net.send(ifname, f.bytes, { frags: f.frags })
      if (rc !== NET_XMIT_SUCCESS) this.fail(`TX seq ${f.seq} (${f.bytes.length} bytes, ${f.frags} frags): net.send returned ${rc}, expected NET_XMIT_SUCCESS`)
      between?.()
    }
  }

  fail(what: string): void {
    if (this.failureCount++ < MAX_DESCRIBED) this.failures.push(`${this.rig.label}: ${what}`)
  }

  /**
   * Runs until the peer has received every frame sent (at most timeoutNs), then a little longer
   * (to see extra ones); problems() then says what is missing.
   */
  async delivered(timeoutNs = 1e9): Promise<void> {
    const { sys, peer } = this.rig
    await runUntilOr(sys, () => peer.stats.rxFrames >= this.seq, timeoutNs, () => '', false)
    await sys.runFor(200_000)
  }

  /** What is wrong with what the peer received so far (it should be exactly frames 0..seq-1). */
  problems(): string[] {
    const { peer, wire, device, label } = this.rig
    const st = peer.stats
    const out = [...this.failures]
    if (st.rxFrames !== this.seq) out.push(`${label}: the peer received ${st.rxFrames} frames, ${this.seq} were sent`)
    if (st.verified !== this.seq) out.push(`${label}: ${st.verified} of ${this.seq} frames verified at the peer`)
    if (st.verifyErrors !== 0) out.push(`${label}: ${st.verifyErrors} frames failed the payload check at the peer; first: ${peer.errors.slice(0, 5).join(' | ')}`)
    if (st.seqGaps !== 0) out.push(`${label}: ${st.seqGaps} sequence numbers missing at the peer (frames lost)`)
    if (st.reordered !== 0) out.push(`${label}: ${st.reordered} frames reordered or repeated at the peer`)
    if (st.foreign !== 0) out.push(`${label}: the peer received ${st.foreign} frames that are not test frames`)
    const w = wire.statsFrom(device)
    if (w.dropped !== 0) out.push(`${label}: the wire dropped ${w.dropped} frames from the NIC (sent without carrier?)`)
    for (const [i, f] of peer.received.entries()) {
      if (formatMac(f.subarray(0, 6)) !== formatMac(peer.mac) || formatMac(f.subarray(6, 12)) !== formatMac(this.rig.mac) || f[12] !== 0x88 || f[13] !== 0xb5) {
        out.push(`${label}: frame ${i} at the peer has header ${formatMac(f.subarray(0, 6))} < ${formatMac(f.subarray(6, 12))} type 0x${((f[12]! << 8) | f[13]!).toString(16)}`)
      }
    }
    return out
  }
}

// ------------------------------------------------------------------------------ receive

/**
 * Checks the frames a packet socket received from the peer's generator: the header (to the
 * NIC's MAC, from the peer's, the test EtherType, PACKET_HOST), the payload (checkTestPayload:
 * sequence number, length, pattern) and the order: consecutive sequence numbers, or with
 * `allowGaps` increasing ones (frames lost, as in an overrun, but none reordered or repeated).
 */
export class RxCheck<D extends NicDevice> {
  readonly rig: NicRig<D>
  readonly sock: PacketSocket
  /** Frames taken from the socket, and how many checked out. */
  received = 0
  good = 0
  /** The next sequence number expected, and the sequence numbers skipped. */
  expect = 0
  gaps = 0
  allowGaps = false
  readonly problems: string[] = []
  problemCount = 0

  constructor(rig: NicRig<D>) {
    this.rig = rig
    this.sock = rig.net.socket(rig.ifname, { capacity: 1_000_000 })
  }

  /** Checks every frame waiting in the socket; returns how many there were. */
  drain(): number {
    let n = 0
    for (let f = this.sock.recv(); f !== null; f = this.sock.recv()) {
      n++
      this.#check(f)
    }
    return n
  }

  #check(f: ReceivedFrame): void {
    const k = this.received++
    const problem = this.#problem(k, f)
    if (problem === null) this.good++
    else this.#bad(problem)
  }

  /** What is wrong with the k-th frame received, or null; advances the expected sequence number. */
  #problem(k: number, f: ReceivedFrame): string | null {
    const d = f.data
    const { peer, mac } = this.rig
    if (d.length < ETH_HLEN) return `RX frame #${k}: ${d.length} bytes`
    const dst = formatMac(d.subarray(0, 6))
    const src = formatMac(d.subarray(6, 12))
    if (dst !== formatMac(mac) || src !== formatMac(peer.mac) || f.protocol !== ETH_P_TEST || f.pktType !== PACKET_HOST) {
      return `RX frame #${k} (${d.length} bytes): header ${dst} < ${src} protocol 0x${f.protocol.toString(16)} pktType ${f.pktType}, expected ${formatMac(mac)} < ${formatMac(peer.mac)} protocol 0x88b5 PACKET_HOST`
    }
    const r = checkTestPayload(d.subarray(ETH_HLEN), this.rig.seed)
    if (!r.ok) {
      // A readable sequence number still counts for the order (one bad byte, one complaint).
      if (r.seq !== null && r.seq >= this.expect && r.seq - this.expect < 0x10000) this.expect = r.seq + 1
      return `RX frame #${k} (${d.length} bytes): ${r.reason}`
    }
    if (r.seq < this.expect) return `RX frame #${k}: seq ${r.seq} after seq ${this.expect - 1} (reordered or repeated)`
    const skipped = r.seq - this.expect
    this.expect = r.seq + 1
    if (skipped > 0) {
      this.gaps += skipped
      if (!this.allowGaps) return `RX frame #${k}: seq ${r.seq}, expected ${r.seq - skipped} (${skipped} frames missing)`
    }
    return null
  }

  #bad(what: string): void {
    if (this.problemCount++ < MAX_DESCRIBED) this.problems.push(`${this.rig.label}: ${what}`)
  }

  /** Runs until the generator is done and nothing has arrived for 1 ms, checking as frames come. */
  async settle(run: SendRun, timeoutNs = 10e9): Promise<void> {
    const { sys, wire, peer } = this.rig
    const deadline = sys.clock + timeoutNs
    await runUntilOr(sys, () => {
      this.drain()
      return run.done && wire.inFlightFrom(peer) === 0
    }, timeoutNs, () => `${this.rig.label}: the generator sent ${run.sent} of ${run.total} frames`)
    for (;;) {
      const before = this.received
      await sys.runFor(1_000_000)
      this.drain()
      if (this.received === before) break
      if (sys.clock > deadline) throw new Error(`${this.rig.label}: frames still arriving after ${timeoutNs / 1e6} ms`)
    }
  }
}

// ------------------------------------------------------------------------------ stats

/** The driver's counters (net.stats) of interest here. */
export type Counters = Pick<NetDeviceStats, 'rx_packets' | 'tx_packets' | 'rx_dropped' | 'rx_missed_errors' | 'rx_over_errors' | 'rx_fifo_errors' | 'rx_errors' | 'tx_errors' | 'tx_dropped'> & {
  stackRx: number
  stackTx: number
}

export async function counters(net: NetUser, ifname: string): Promise<Counters> {
  const s = await net.stats(ifname)
  return {
    rx_packets: s.rx_packets, tx_packets: s.tx_packets, rx_dropped: s.rx_dropped, rx_missed_errors: s.rx_missed_errors,
    rx_over_errors: s.rx_over_errors, rx_fifo_errors: s.rx_fifo_errors, rx_errors: s.rx_errors, tx_errors: s.tx_errors,
    tx_dropped: s.tx_dropped, stackRx: s.stack.rx_packets, stackTx: s.stack.tx_packets,
  }
}

export function delta(a: Counters, b: Counters): Counters {
  const out = { ...b }
  for (const k of Object.keys(out) as (keyof Counters)[]) out[k] = b[k] - a[k]
  return out
}

// ------------------------------------------------------------------------------ softirq helpers

/**
 * Runs `fn` in softirq context (a kernel timer's callback), as soon as the CPU takes softirqs,
 * and drives the system until it has run. NET_RX cannot run meanwhile: softirqs do not nest.
 */
export async function inSoftirq<T>(sys: System, fn: () => T): Promise<T> {
  let done = false
  let result: T | undefined
  await sys.run(() => {
    const t = timer_setup(null, () => {
      result = fn()
      done = true
    })
    mod_timer(t, jiffies())
  })
  await runUntilOr(sys, () => done, 1e9, () => 'the softirq callback did not run')
  return result as T
}

/** Keeps the CPU busy in softirq context for `ns` (NAPI cannot run; hard IRQs still arrive). */
export function busyInSoftirq(ns: number): void {
  udelay(Math.ceil(ns / 1000))
}

export interface BurstResult {
  /** dev_queue_xmit's result per frame. */
  readonly rcs: number[]
  /** After which frame (1-based) netif_queue_stopped() was first true, or null. */
  stoppedAfter: number | null
  /** Whether the queue was stopped when the burst's last frame had been queued. */
  stoppedAtEnd: boolean
}

/**
 * Sends `frames` back to back from softirq context, as Linux's pktgen transmits with bottom
 * halves disabled: each is built in an skb (the payload in `frags` page fragments) and handed to
 * dev_queue_xmit. TX completions (NAPI) cannot run until the burst ends, so a driver with a TX
 * ring sees it fill up and must stop its queue; the rest waits in the qdisc.
 */
export function xmitBurst(sys: System, ifname: string, frames: readonly { bytes: Uint8Array; frags: number }[]): BurstResult {
  const dev = netState(sys).byName(ifname)
  if (dev === undefined) throw new Error(`xmitBurst: no interface ${ifname}`)
  const res: BurstResult = { rcs: [], stoppedAfter: null, stoppedAtEnd: false }
  for (const [i, f] of frames.entries()) {
    const bytes = f.bytes
    const linear = f.frags > 0 ? ETH_HLEN : bytes.length
    const skb = alloc_skb(NET_SKB_PAD + linear, GFP_ATOMIC)
    if (skb === null) throw new Error(`xmitBurst: alloc_skb failed at frame ${i}`)
    skb_reserve(skb, NET_SKB_PAD)
    skb_put_data(skb, bytes.subarray(0, linear))
    const payload = bytes.length - ETH_HLEN
    let off = linear
    for (let k = 0; k < f.frags; k++) {
      const len = Math.floor(payload / f.frags) + (k < payload % f.frags ? 1 : 0)
      const page = alloc_page(GFP_ATOMIC)
      if (page === null) {
        kfree_skb(skb)
        throw new Error(`xmitBurst: alloc_page failed at frame ${i}`)
      }
      const pageOff = (32 + k * 64) % (PAGE_SIZE - len)
      mem_write_bytes(ptr_add(page_address(page), pageOff), bytes.subarray(off, off + len))
      skb_fill_page_desc(skb, k, page, pageOff, len)
      skb.len += len
      skb.data_len += len
      skb.truesize += PAGE_SIZE
      off += len
    }
    skb.dev = dev
    skb.protocol = bytes[12]! | (bytes[13]! << 8)
    res.rcs.push(dev_queue_xmit(skb))
    if (res.stoppedAfter === null && netif_queue_stopped(dev)) res.stoppedAfter = i + 1
  }
  res.stoppedAtEnd = netif_queue_stopped(dev)
  return res
}
