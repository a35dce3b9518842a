/**
 * The NIC conformance suite: one set of tests that any NIC driver is run through, on the NIC's
 * device model plugged into an Ethernet wire (devices/net/wire.ts). A test file per NIC calls
 *
 *     nicConformance({
 *       name: 'tnic',
 *       driver: () => tnic_driver,                         // the driver object for each system
 *       device: (name, mac) => new TnicDevice({ name, mac }),
 *       ringSize: 256,                                     // descriptors per ring (or { rx, tx })
 *       rxDropped: (d) => d.stats.rxNoBuffers + d.stats.rxMissed, // optional: the device's drops
 *     })
 *
 * What a correct driver must do here (each test also requires zero reports on every system):
 *
 * 1. link up and ping: two systems (arm64 and x86_64, coupled) with one NIC each on one wire:
 *    ifup, carrier, the driver reads the device's MAC, ARP and 3 pings each way with RTTs of at
 *    least twice the wire's one-way time, the driver's packet counters equal the stack's.
 * 2. bulk traffic: `frames` (10,000) frames of seeded-random sizes 60..1514 each way between the
 *    NIC and a TrafficPeer: from user space (net.send, one in four in 1..17 page fragments) to a
 *    sink that checks every payload, the order and the count; from a paced generator to a packet
 *    socket that checks the same, with zero loss allowed (device drops counted through the
 *    optional rxDropped hook and the driver's counters). Then `platformFrames` (1,000) each way
 *    on every platform of test/helpers/matrix.ts.
 * 3. ring wrap: 20 x the ring size (+1) frames each way at once.
 * 4. RX overrun: a line-rate burst of 4 x the RX ring while the CPU is kept busy in softirq
 *    context (NAPI cannot run) must lose frames; every frame that arrives is intact and in order;
 *    the drops are what the device counted (hook); then paced traffic arrives complete.
 * 5. TX ring full: a burst of 4 x the TX ring sent back to back from softirq context (as pktgen
 *    does; TX completions cannot run meanwhile) must make the driver stop its queue, the rest waits
 *    in the qdisc, the queue wakes, and every frame arrives at the sink in order.
 * 6. ifdown/ifup: 5 cycles with traffic in between; after each ifdown no sk_buff is left (as
 *    before the first ifup: a leaked one shows here), after each ifup at most one per RX
 *    descriptor; unbinding the device leaves no leak report, no interface and no sk_buff.
 *
 * A NIC without descriptor rings (the wire-nic fixture) omits `ringSize`: test 3 then uses 256
 * (its receive FIFO) and test 5 cannot require the queue to stop (a driver without a ring never
 * has to); both say so in their titles. Everything is seeded: a failure reproduces exactly.
 *
 * Runtime: stack capture for reports (checks.stacks) costs ~8x, so the bulk-traffic tests (2, its
 * per-platform runs, and 3) boot without it; a report there still fails the test, with kind and message but no source
 * lines (rerun with `stacks: true` to get them). The other tests keep it.
 */
import { describe, expect, it } from 'vitest'
import { Wire, formatMac, type SendRun } from '../../devices/index.js'
import { NET_XMIT_SUCCESS, coupleSystems, type BootOptions, type PciDriver, type System } from '../../kernel/index.js'
import { PLATFORMS, optionsFor, type Platform } from '../helpers/matrix.js'
import {
  MAX_FRAME, RxCheck, TxStream, bootNic, busyInSoftirq, counters, delta, ifupWithCarrier, inSoftirq, nicWithPeer,
  reportsOf, testMac, xmitBurst, type Counters, type NicDevice, type NicRig,
} from './rig.js'

export type { NicDevice } from './rig.js'

/** The NIC under test: its driver, its device model, and what the suite needs to know of them. */
export interface NicUnderTest<D extends NicDevice = NicDevice> {
  /** For test titles. */
  readonly name: string
  /** The driver to register in each system the suite boots (called once per system). */
  readonly driver: () => PciDriver
  /** A new device model with this PCI function name and station address. */
  readonly device: (name: string, mac: Uint8Array) => D
  /**
   * Descriptors in the driver's RX and TX rings (one number: both). Sizes the ring-wrap, overrun
   * and TX-burst tests. Omit for a NIC without descriptor rings (see the file comment).
   */
  readonly ringSize?: number | { readonly rx: number; readonly tx: number }
  /**
   * Frames the device itself dropped on receive so far, from its model's counters (for the tnic:
   * stats.rxNoBuffers + stats.rxMissed, what MPC counts). Optional: when given, the overrun test
   * requires it to account for every frame lost, and the other tests require it not to move.
   */
  readonly rxDropped?: (device: D) => number
  /** Time between two frames of the paced generator, ns (default 20,000: 50k frames/s). */
  readonly rxPaceNs?: number
}

export interface ConformanceOptions {
  /** Platforms of the per-platform traffic test (default: test/helpers/matrix.ts PLATFORMS). */
  readonly platforms?: readonly Platform[]
  /** Frames each way in the bulk-traffic test (default 10,000). */
  readonly frames?: number
  /** Frames each way on each platform (default 1,000). */
  readonly platformFrames?: number
  /** How many times the ring-wrap test wraps each ring (default 20). */
  readonly wraps?: number
  /** Capture report stacks in every test, the bulk ones included (slow; default false). */
  readonly stacks?: boolean
}

/** Ring size assumed for a NIC that declares none (the wire-nic fixture's receive FIFO). */
const NO_RING = 256
const DEFAULT_PACE_NS = 20_000

/** Registers the conformance tests for `nic` (call it at the top level of a test file). */
export function nicConformance<D extends NicDevice>(nic: NicUnderTest<D>, opts: ConformanceOptions = {}): void {
  const frames = opts.frames ?? 10_000
  const platformFrames = opts.platformFrames ?? 1_000
  const platforms = opts.platforms ?? PLATFORMS
  const wraps = opts.wraps ?? 20
  const rings = nic.ringSize === undefined ? null : typeof nic.ringSize === 'number' ? { rx: nic.ringSize, tx: nic.ringSize } : nic.ringSize
  const rxRing = rings?.rx ?? NO_RING
  const txRing = rings?.tx ?? NO_RING
  const pace = nic.rxPaceNs ?? DEFAULT_PACE_NS
  const bulkChecks: BootOptions = opts.stacks === true ? {} : { checks: { stacks: false } }

  /** The systems of the running test: a failure message lists their reports (often the cause). */
  let systems: System[] = []
  const body = (fn: () => Promise<void>) => async (): Promise<void> => {
    systems = []
    try {
      await fn()
    } catch (e) {
      const reps = reportsOf(...systems)
      if (reps.length > 0 && e instanceof Error) e.message += `\n\nReports so far (${reps.length}):\n${reps.join('\n')}`
      throw e
    }
  }
  const rig = (label: string, boot: BootOptions, seed: number): Promise<NicRig<D>> =>
    nicWithPeer(nic.device, nic.driver(), { label: `${nic.name} ${label}`, boot, seed, booted: (s) => systems.push(s) })
  const dropped = (r: NicRig<D>): number => (nic.rxDropped === undefined ? 0 : nic.rxDropped(r.device))

  /** n frames from user space to the peer; what is wrong (frames, order, the driver's counters). */
  async function txTraffic(r: NicRig<D>, n: number): Promise<string[]> {
    const before = await counters(r.net, r.ifname)
    const tx = new TxStream(r)
    tx.seq = r.peer.stats.rxFrames
    await tx.send(n)
    await tx.delivered()
    const d = delta(before, await counters(r.net, r.ifname))
    return [...tx.problems(), ...txCounterProblems(r.label, d, n)]
  }

  /** n frames from the paced generator to a packet socket; what is wrong (zero loss required). */
  async function rxTraffic(r: NicRig<D>, rx: RxCheck<D>, n: number): Promise<string[]> {
    const before = await counters(r.net, r.ifname)
    const drops0 = dropped(r)
    const got0 = rx.received
    const run = r.peer.send(n, { dst: r.mac, intervalNs: pace })
    await rx.settle(run)
    const d = delta(before, await counters(r.net, r.ifname))
    return [...rx.problems, ...rxLossProblems(r, rx, n, rx.received - got0, dropped(r) - drops0, d)]
  }

  function rxLossProblems(r: NicRig<D>, rx: RxCheck<D>, n: number, got: number, devDrops: number, d: Counters): string[] {
    const out: string[] = []
    const why = `device drops ${nic.rxDropped === undefined ? 'n/a (no rxDropped hook)' : devDrops}, rx_missed_errors +${d.rx_missed_errors}, rx_over_errors +${d.rx_over_errors}, rx_fifo_errors +${d.rx_fifo_errors}, rx_dropped +${d.rx_dropped}, socket drops ${rx.sock.drops}`
    if (got !== n) out.push(`${r.label}: the socket received ${got} of ${n} frames sent at one per ${pace} ns (${why})`)
    if (devDrops !== 0) out.push(`${r.label}: the device dropped ${devDrops} frames at one per ${pace} ns: the driver does not keep up (${why})`)
    if (rx.sock.drops !== 0) out.push(`${r.label}: the packet socket dropped ${rx.sock.drops} frames (a suite bug: it is drained)`)
    if (d.rx_packets !== got) out.push(`${r.label}: the driver's rx_packets grew by ${d.rx_packets}, ${got} frames were received`)
    if (d.stackRx !== got) out.push(`${r.label}: the stack got ${d.stackRx} frames from the driver, the socket ${got}`)
    if (d.rx_errors !== 0) out.push(`${r.label}: rx_errors grew by ${d.rx_errors}`)
    return out
  }

  describe(`NIC conformance: ${nic.name}`, () => {
    it('links up between two systems (arm64, x86_64) on one wire: ARP and 3 pings each way with sane RTTs', body(async () => {
      const macA = testMac(1, 0xa)
      const macB = testMac(1, 0xb)
      const devA = nic.device('nic0', macA)
      const devB = nic.device('nic1', macB)
      const A = await bootNic(devA, nic.driver(), { arch: 'arm64', seed: 1 }, (s) => systems.push(s))
      const B = await bootNic(devB, nic.driver(), { arch: 'x86_64', seed: 2 }, (s) => systems.push(s))
      const wire = new Wire({ bitsPerSecond: 1e9, latencyNs: 5000 })
      wire.connect(devA, devB)
      coupleSystems(A.sys, B.sys)
      for (const [S, mac] of [[A, macA], [B, macB]] as const) {
        expect(S.net.device(S.ifname), `${S.ifname} of ${S.sys.name} before ifup`).toMatchObject({ up: false, mac: formatMac(mac) })
        await ifupWithCarrier(S.sys, S.net, S.ifname)
        expect(S.net.device(S.ifname), `${S.ifname} of ${S.sys.name} after ifup`).toMatchObject({ up: true, running: true, carrier: true, queueStopped: false })
      }
      A.net.setAddress(A.ifname, '10.9.0.1/24')
      B.net.setAddress(B.ifname, '10.9.0.2/24')
      const a0 = await counters(A.net, A.ifname)
      const b0 = await counters(B.net, B.ifname)
      // A 98-byte echo frame each way: its wire time (padding, FCS, preamble, gap) plus the latency.
      const oneWay = wire.serialisationNs(98) + wire.latencyNs
      for (const [from, to, ip] of [[A, B, '10.9.0.2'], [B, A, '10.9.0.1']] as const) {
        const r = await from.net.ping(from.ifname, ip, { count: 3, intervalMs: 10, timeoutMs: 1000 })
        const what = `ping ${ip} from ${from.sys.name} (${from.sys.arch})`
        expect({ transmitted: r.transmitted, received: r.received, seqs: r.replies.map((x) => x.seq) }, what).toEqual({ transmitted: 3, received: 3, seqs: [1, 2, 3] })
        for (const x of r.replies) {
          expect(x.rttNs, `${what}: seq ${x.seq} RTT vs twice the one-way wire time ${oneWay} ns`).toBeGreaterThanOrEqual(2 * oneWay)
          expect(x.rttNs, `${what}: seq ${x.seq} RTT`).toBeLessThan(2 * oneWay + 2_000_000)
        }
        expect(from.net.arp(from.ifname), `${from.sys.name}'s neighbours`).toEqual([{ ip, mac: formatMac(to === A ? macA : macB) }])
      }
      await A.sys.runFor(1_000_000)
      // Each side sent an ARP request or reply and 3 echo requests and 3 echo replies.
      for (const [S, c0] of [[A, a0], [B, b0]] as const) {
        const d = delta(c0, await counters(S.net, S.ifname))
        expect({ rx_packets: d.rx_packets, tx_packets: d.tx_packets, stackRx: d.stackRx, stackTx: d.stackTx }, `${S.sys.name}'s counters over the pings`)
          .toEqual({ rx_packets: 7, tx_packets: 7, stackRx: 7, stackTx: 7 })
      }
      expect(reportsOf(A.sys, B.sys)).toEqual([])
    }))

    it(`transmits ${frames} frames of random sizes 60..1514 from user space (some in page fragments); the peer checks each`, body(async () => {
      const r = await rig('TX bulk', { arch: 'arm64', seed: 1, ...bulkChecks }, 1)
      expect(await txTraffic(r, frames)).toEqual([])
      expect(reportsOf(r.sys)).toEqual([])
    }))

    it(`receives ${frames} frames of random sizes 60..1514 from a paced generator with zero loss; a packet socket checks each`, body(async () => {
      const r = await rig('RX bulk', { arch: 'arm64', seed: 1, ...bulkChecks }, 1)
      const rx = new RxCheck(r)
      expect(await rxTraffic(r, rx, frames)).toEqual([])
      expect(reportsOf(r.sys)).toEqual([])
    }))

    describe(`${platformFrames} frames each way on every platform`, () => {
      it.each(platforms.map((p) => [p.label, p] as const))('%s', (_label, p) => body(async () => {
        const r = await rig(p.label, optionsFor(p, bulkChecks), p.seed)
        const rx = new RxCheck(r)
        expect(await txTraffic(r, platformFrames)).toEqual([])
        expect(await rxTraffic(r, rx, platformFrames)).toEqual([])
        expect(reportsOf(r.sys)).toEqual([])
      })())
    })

    const wrapTitle = rings === null ? `(no rings declared: ${NO_RING} assumed)` : `(RX ring ${rxRing}, TX ring ${txRing})`
    it(`wraps the RX and TX rings ${wraps} times, both directions at once ${wrapTitle}`, body(async () => {
      const r = await rig('ring wrap', { arch: 'arm64', seed: 3, ...bulkChecks }, 3)
      const nTx = wraps * txRing + 1
      const nRx = wraps * rxRing + 1
      const rx = new RxCheck(r)
      const c0 = await counters(r.net, r.ifname)
      const drops0 = dropped(r)
      const run = r.peer.send(nRx, { dst: r.mac, intervalNs: pace })
      const tx = new TxStream(r)
      await tx.send(nTx, {}, () => rx.drain())
      await tx.delivered()
      await rx.settle(run)
      const d = delta(c0, await counters(r.net, r.ifname))
      expect([...tx.problems(), ...txCounterProblems(r.label, d, nTx)]).toEqual([])
      expect([...rx.problems, ...rxLossProblems(r, rx, nRx, rx.received, dropped(r) - drops0, d)]).toEqual([])
      expect(reportsOf(r.sys)).toEqual([])
    }))

    it(`recovers from an RX overrun: a line-rate burst of ${4 * rxRing} frames while the CPU is busy in softirq context`, body(async () => {
      const r = await rig('RX overrun', { arch: 'arm64', seed: 4 }, 4)
      const rx = new RxCheck(r)
      rx.allowGaps = true
      const burst = 4 * rxRing
      const c0 = await counters(r.net, r.ifname)
      const drops0 = dropped(r)
      // Long enough for the whole burst to arrive while NAPI cannot run (hard IRQs still do).
      const spinNs = burst * r.wire.serialisationNs(MAX_FRAME) + r.wire.latencyNs + 100_000
      const run = await inSoftirq(r.sys, (): SendRun => {
        const blast = r.peer.send(burst, { dst: r.mac })
        busyInSoftirq(spinNs)
        return blast
      })
      await rx.settle(run)
      const got = rx.received
      const lost = burst - got
      const devDrops = dropped(r) - drops0
      const d = delta(c0, await counters(r.net, r.ifname))
      expect(rx.problems, 'every frame that arrives after the overrun is intact and in order').toEqual([])
      expect(lost, `frames lost of a ${burst}-frame line-rate burst while NAPI could not run for ${Math.round(spinNs / 1000)} µs (received ${got})`).toBeGreaterThan(0)
      if (nic.rxDropped !== undefined) expect(devDrops, `frames the device counted as dropped (rxDropped) vs frames lost (${burst} sent, ${got} received)`).toBe(lost)
      expect({ rx_packets: d.rx_packets, stackRx: d.stackRx, rx_errors: d.rx_errors }, `the driver's counters over the overrun (${got} frames received)`)
        .toEqual({ rx_packets: got, stackRx: got, rx_errors: 0 })

      // Recovery: paced traffic arrives complete, and transmit works.
      const n = Math.max(2 * rxRing, 500)
      rx.allowGaps = false
      rx.expect = r.peer.nextSeq
      expect(await rxTraffic(r, rx, n)).toEqual([])
      expect(await txTraffic(r, 200)).toEqual([])
      expect(reportsOf(r.sys)).toEqual([])
    }))

    const stopTitle = rings === null ? '(no TX ring declared: the queue need not stop)' : `(TX ring ${txRing}): the queue stops and wakes`
    it(`takes a back-to-back burst of ${4 * txRing + 32} frames from softirq context ${stopTitle}; every frame arrives in order`, body(async () => {
      const r = await rig('TX burst', { arch: 'arm64', seed: 5 }, 5)
      const burst = 4 * txRing + 32
      r.net.setTxQueueLen(r.ifname, burst)
      const out = r.net.socket(r.ifname, { outgoing: true, capacity: 1_000_000 })
      const c0 = await counters(r.net, r.ifname)
      const tx = new TxStream(r)
      const batch = Array.from({ length: burst }, () => tx.frame())
      let handedDuringBurst = 0
      const res = await inSoftirq(r.sys, () => {
        const x = xmitBurst(r.sys, r.ifname, batch)
        handedDuringBurst = out.pending
        return x
      })
      await tx.delivered()
      const bad = res.rcs.flatMap((rc, i) => (rc === NET_XMIT_SUCCESS ? [] : [`frame ${i}: dev_queue_xmit returned ${rc}`]))
      expect(bad.slice(0, 10), 'dev_queue_xmit results (the qdisc holds the whole burst)').toEqual([])
      if (rings !== null) {
        expect(res.stoppedAfter, `the frame after which the driver had stopped its queue (a ${txRing}-descriptor ring cannot take ${burst} frames before TX completions run)`).not.toBeNull()
        expect(res.stoppedAfter!, 'the queue stopped by the time the TX ring was full').toBeLessThanOrEqual(txRing)
        expect(handedDuringBurst, 'frames handed to the driver during the burst (the rest waits in the qdisc)').toBeLessThan(burst)
      }
      expect(tx.problems()).toEqual([])
      const st = await r.net.stats(r.ifname)
      expect({ queueStopped: r.net.device(r.ifname).queueStopped, qlen: st.qdisc.qlen, drops: st.qdisc.drops }, 'after the burst: the queue woke and the qdisc drained')
        .toEqual({ queueStopped: false, qlen: 0, drops: 0 })
      const d = delta(c0, await counters(r.net, r.ifname))
      expect(txCounterProblems(r.label, d, burst)).toEqual([])
      out.close()
      expect(reportsOf(r.sys)).toEqual([])
    }))

    it('survives 5 ifdown/ifup cycles with traffic in between: no sk_buff left after each ifdown, and a clean unbind', body(async () => {
      const r = await rig('ifdown/ifup', { arch: 'arm64', seed: 6 }, 6)
      const rx = new RxCheck(r)
      const traffic = async (when: string): Promise<void> => {
        expect(await txTraffic(r, 100), `TX ${when}`).toEqual([])
        expect(await rxTraffic(r, rx, 100), `RX ${when}`).toEqual([])
      }
      await traffic('before the cycles')
      await r.sys.runFor(1_000_000)
      // An idle interface holds its RX buffers: at most one sk_buff per RX descriptor (how many
      // exactly depends on where the refill stands). A leaked one shows at the next ifdown.
      const upMax = Math.max(r.net.skbsInUse, rings === null ? 0 : rxRing)
      for (let c = 1; c <= 5; c++) {
        await r.net.ifdown(r.ifname)
        await r.sys.runFor(1_000_000)
        expect(r.net.device(r.ifname), `after ifdown ${c}`).toMatchObject({ up: false, running: false })
        expect(r.net.skbsInUse, `sk_buffs in use after ifdown ${c}: a downed interface holds none (before the first ifup: ${r.skbsBeforeUp})`).toBe(r.skbsBeforeUp)
        await ifupWithCarrier(r.sys, r.net, r.ifname)
        await traffic(`after ifup ${c}`)
        await r.sys.runFor(1_000_000)
        expect(r.net.skbsInUse, `sk_buffs in use after ifup ${c} and traffic (at most one per RX descriptor, ${upMax})`).toBeLessThanOrEqual(upMax)
        expect(reportsOf(r.sys), `reports after cycle ${c}`).toEqual([])
      }
      rx.sock.close()
      const pdev = r.sys.pciDevice(r.device.name)!
      await r.sys.unbind(pdev)
      expect(reportsOf(r.sys), 'reports after unbind (leaks)').toEqual([])
      expect(r.net.devices().filter((x) => x.parent === r.device.name), 'interfaces left after unbind').toEqual([])
      expect(r.net.skbsInUse, 'sk_buffs in use after unbind').toBe(r.skbsBeforeUp)
    }))
  })
}

function txCounterProblems(label: string, d: Counters, n: number): string[] {
  const out: string[] = []
  if (d.tx_packets !== n) out.push(`${label}: the driver's tx_packets grew by ${d.tx_packets}, ${n} frames were sent`)
  if (d.stackTx !== n) out.push(`${label}: the driver accepted ${d.stackTx} frames from the stack, ${n} were sent`)
  if (d.tx_errors !== 0 || d.tx_dropped !== 0) out.push(`${label}: tx_errors +${d.tx_errors}, tx_dropped +${d.tx_dropped}`)
  return out
}
