/**
 * The tnic's known-bad driver variants (test/fixtures/tnic-bad/): each replaces one hot path of the
 * reference driver (drivers/net/tnic.ts) with a copy holding one classic bug. Each is caught with
 * the report kind of its bug, on the platforms where that kind fires and not elsewhere, with a
 * stack in the variant's file; the reference driver under the same scenario gets no report; and
 * where real hardware would corrupt or lose data, the data goes wrong here too.
 *
 * Stacks are on (the default checks), except in the one run that expects no report and hands the
 * stack thousands of frames. Several variants break the receive path badly enough that
 * NAPI never completes: such a system is busy for ever, and `sys.runFor` steps a busy CPU without
 * looking at the clock, so the runs below go through `runSafe` (runUntil checks between steps).
 */
import { describe, expect, it } from 'vitest'
import {
  IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, boot, ip_compute_csum, mem_read16, netUser, pci_enable_device, pci_iomap,
  pci_register_driver, ptr_add, readl, request_irq, writel,
  type BootOptions, type PciDriver, type Report, type System,
} from '../../kernel/index.js'
import { InterruptController, TnicDevice, Wire } from '../../devices/index.js'
import { ETH_P_TEST, TrafficPeer, buildFrame, checkTestPayload, makeTestPayload, type SendOptions } from '../../devices/net/peer.js'
import { tnic_adapter_of, tnic_make_driver, type TnicParams } from '../../drivers/net/tnic.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { tnic_clean_rx_irq_nosync } from '../fixtures/tnic-bad/rx-no-sync.js'
import { tnic_xmit_frame_late_csum } from '../fixtures/tnic-bad/tx-csum-after-map.js'
import { tnic_clean_rx_irq_normb } from '../fixtures/tnic-bad/rx-no-rmb.js'
import { tnic_alloc_rx_buffers_relaxed } from '../fixtures/tnic-bad/rx-tail-relaxed.js'
import { tnic_clean_rx_irq_fill_all } from '../fixtures/tnic-bad/rx-fill-all.js'
import { tnic_alloc_rx_buffers_minus_one } from '../fixtures/tnic-bad/rx-tail-minus-one.js'
import { tnic_clean_rx_irq_nostatus } from '../fixtures/tnic-bad/rx-status-not-cleared.js'
import { tnic_xmit_frame_unmap_early } from '../fixtures/tnic-bad/tx-unmap-early.js'
import { tnic_alloc_rx_buffers_unchecked } from '../fixtures/tnic-bad/rx-map-unchecked.js'
import { tnic_clean_tx_irq_frame_len } from '../fixtures/tnic-bad/tx-unmap-size.js'
import { tnic_no_bus_master_driver } from '../fixtures/tnic-bad/no-bus-master.js'
import { tnic_irq_claims_all_driver } from '../fixtures/tnic-bad/irq-claims-all.js'
import { tnic_alloc_rx_buffers_counter } from '../fixtures/tnic-bad/rx-buffer-shares-line.js'
import { tnic_clean_rx_irq_trusting } from '../fixtures/tnic-bad/rx-length-trusted.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])
const PEER_SEED = 5
const FIX = 'test/fixtures/tnic-bad/'

interface Rig {
  sys: System
  nic: TnicDevice
  peer: TrafficPeer
}

/** A tnic on a 10 Gb/s wire to a peer, the driver bound and eth0 up with its link. */
async function rig(drv: PciDriver | TnicParams, opts: BootOptions = {}, mode: 'generator' | 'sink' | 'echo' = 'generator'): Promise<Rig> {
  const nic = new TnicDevice({ name: 'tnic0' })
  const sys = boot({ log: 'silent', arch: 'arm64', seed: 1, ...opts, devices: [nic] })
  const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode, verify: 'none', seed: PEER_SEED })
  new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
  const driver = 'probe' in drv ? drv : tnic_make_driver(drv)
  expect(await sys.run(() => pci_register_driver(driver))).toBe(0)
  expect(await netUser(sys).ifup('eth0')).toBe(0)
  await runSafe(sys, 10_000_000) // the watchdog sees the link
  return { sys, nic, peer }
}

/** sys.runFor(ns), but it returns on time even when a broken driver keeps the CPU busy for ever. */
async function runSafe(sys: System, ns: number): Promise<void> {
  const until = sys.clock + ns
  await sys.runUntil(() => sys.clock >= until, { timeoutNs: ns })
}

const kinds = (sys: System): string[] => [...new Set(sys.reports.map((r) => r.kind))].sort()
const ofKind = (sys: System, kind: string): Report[] => sys.reports.filter((r) => r.kind === kind)

/** The first frame of the report's stack `label` ('access' by default) is in the variant's file. */
function expectStackIn(r: Report, file: string, label = 'access'): void {
  const s = r.stacks.find((x) => x.label === label)
  expect(s?.frames[0]?.file, `${r.kind}: ${label} stack`).toBe(FIX + file)
}

/** Some frame of some stack of the report is in the variant's file. */
function expectSomeFrameIn(r: Report, file: string): void {
  expect(r.stacks.some((s) => s.frames.some((f) => f.file === FIX + file)), `${r.kind}: a frame in ${file}`).toBe(true)
}

interface Received {
  /** Every frame the stack handed to the packet socket, in order: its sequence number, or null when its payload is not a valid test payload. */
  seqs: (number | null)[]
  /** The sequence number each frame's payload header carries, valid payload or not (null: no header). */
  carried: (number | null)[]
  ok: number
  bad: number
  lengths: number[]
}

/** The peer sends n test frames to eth0; returns what reached the stack within spanNs. */
async function receive(r: Rig, n: number, opts: SendOptions, spanNs = 2_000_000): Promise<Received> {
  const sock = netUser(r.sys).socket('eth0', { capacity: 100_000 })
  r.peer.send(n, { ...opts, dst: r.nic.mac })
  await runSafe(r.sys, spanNs)
  const out: Received = { seqs: [], carried: [], ok: 0, bad: 0, lengths: [] }
  for (let f = sock.recv(); f !== null; f = sock.recv()) {
    const c = checkTestPayload(f.data.subarray(14), PEER_SEED)
    out.seqs.push(c.ok ? c.seq : null)
    out.carried.push(c.seq)
    out.lengths.push(f.data.length)
    if (c.ok) out.ok++
    else out.bad++
  }
  sock.close()
  return out
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i)
const adapter = (sys: System) => sys.run(() => tnic_adapter_of(sys.pciDevice('tnic0')!.drvdata as never))

/** Light traffic: frames up to copybreak (their buffers are recycled), 20 µs apart. */
const SMALL: SendOptions = { minSize: 60, maxSize: 250, intervalNs: 20_000 }

describe('1. RX copied out without dma_sync_single_for_cpu (rx-no-sync.ts)', () => {
  const variant = { rxd: 8, paths: { clean_rx: tnic_clean_rx_irq_nosync } }
  for (const arch of ['arm64', 'riscv64', 'x86_64'] as const) {
    it(`${arch}: cpu-access-device-owned at the copy; recycled buffers give stale frames where the cache is not coherent`, async () => {
      const r = await rig(variant, { arch })
      const rx = await receive(r, 24, SMALL)
      expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
      const rep = ofKind(r.sys, 'cpu-access-device-owned')[0]!
      expectStackIn(rep, 'rx-no-sync.ts')
      expect(rep.stacks.find((s) => s.label === 'mapped')?.frames[0]?.file).toBe('drivers/net/tnic_txrx.ts')
      expect(rx.seqs.length).toBe(24)
      if (arch === 'x86_64') expect(rx.ok).toBe(24)
      else {
        // Each of the 8 buffers is fresh the first time; after that the CPU reads its cached copy
        // of the buffer (sync_for_device only cleaned it): the frame the buffer held a lap ago.
        expect(rx.seqs.slice(0, 8)).toEqual(range(8))
        expect(rx.bad).toBe(16)
        expect(rx.carried).toEqual([...range(8), ...range(8), ...range(8)])
      }
    })
  }

  it('x86_64 under swiotlb=force: the bounce buffer was never copied back, every frame is stale', async () => {
    const r = await rig(variant, { arch: 'x86_64', swiotlb: 'force' })
    const rx = await receive(r, 24, SMALL)
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
    expect(rx.bad).toBe(24)
  })

  it('the reference driver: no report, every frame right', async () => {
    const r = await rig({ rxd: 8 }, { arch: 'arm64' })
    const rx = await receive(r, 24, SMALL)
    expect(r.sys.reports).toEqual([])
    expect(rx.seqs).toEqual(range(24))
  })
})

/** An IPv4 frame to the peer whose header checksum is left at 0 (the driver fills it in). */
function ipv4Frame(src: Uint8Array, id: number): Uint8Array {
  const ip = new Uint8Array(60)
  ip.set([0x45, 0, 0, 60, id >> 8, id & 0xff, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
  for (let i = 20; i < 60; i++) ip[i] = i
  return buildFrame({ dst: PEER_MAC, src, etherType: 0x0800, payload: ip })
}

describe('2. TX payload written after dma_map (tx-csum-after-map.ts)', () => {
  const cases = [
    { arch: 'arm64', swiotlb: 'auto', sent: 'old' },
    { arch: 'riscv64', swiotlb: 'auto', sent: 'old' },
    { arch: 'x86_64', swiotlb: 'auto', sent: 'new' },
    { arch: 'x86_64', swiotlb: 'force', sent: 'old' },
  ] as const
  for (const c of cases) {
    it(`${c.arch} swiotlb=${c.swiotlb}: cpu-access-device-owned at the fix-up; the peer receives the ${c.sent} checksum`, async () => {
      const r = await rig({ paths: { xmit: tnic_xmit_frame_late_csum } }, { arch: c.arch, swiotlb: c.swiotlb }, 'sink')
      for (let id = 0; id < 4; id++) expect(await netUser(r.sys).send('eth0', ipv4Frame(r.nic.mac, id))).toBe(0)
      await runSafe(r.sys, 1_000_000)
      expect(kinds(r.sys)).toEqual(['cpu-access-device-owned'])
      expectStackIn(ofKind(r.sys, 'cpu-access-device-owned')[0]!, 'tx-csum-after-map.ts')
      const sums = r.peer.received.map((f) => (f[24]! << 8) | f[25]!)
      expect(sums.length).toBe(4)
      // Old: the checksum field as mapped (0). New: the fix-up's value, which checks out.
      if (c.sent === 'old') expect(sums).toEqual([0, 0, 0, 0])
      else for (const f of r.peer.received) expect(ip_compute_csum(f.subarray(14, 34))).toBe(0)
    })
  }

  it('the reference driver sends the same frames as they are, with no report', async () => {
    const r = await rig({}, { arch: 'arm64' }, 'sink')
    for (let id = 0; id < 4; id++) expect(await netUser(r.sys).send('eth0', ipv4Frame(r.nic.mac, id))).toBe(0)
    await runSafe(r.sys, 1_000_000)
    expect(r.sys.reports).toEqual([])
    expect(r.peer.received.map((f) => (f[24]! << 8) | f[25]!)).toEqual([0, 0, 0, 0])
  })
})

describe('3. no dma_rmb() after DD (rx-no-rmb.ts)', () => {
  for (const arch of ['arm64', 'riscv64', 'x86_64'] as const) {
    it(`${arch}: ${arch === 'x86_64' ? 'silent (TSO does not reorder loads)' : 'missing-barrier at the load of the length'}`, async () => {
      const r = await rig({ paths: { clean_rx: tnic_clean_rx_irq_normb } }, { arch })
      const rx = await receive(r, 10, SMALL)
      // The model does not reorder loads: the data is right; the report is the finding.
      expect(rx.seqs).toEqual(range(10))
      if (arch === 'x86_64') expect(r.sys.reports).toEqual([])
      else {
        expect(kinds(r.sys)).toEqual(['missing-barrier'])
        expectStackIn(r.sys.reports[0]!, 'rx-no-rmb.ts')
        expect(r.sys.reports[0]!.message).toContain('no dma_rmb()')
      }
    })
  }

  it('the reference driver (dma_rmb after DD): no report on arm64', async () => {
    const r = await rig({}, { arch: 'arm64' })
    expect((await receive(r, 10, SMALL)).seqs).toEqual(range(10))
    expect(r.sys.reports).toEqual([])
  })
})

describe('4. RX tail written with writel_relaxed and no dma_wmb (rx-tail-relaxed.ts)', () => {
  // A ring of 32 under back-to-back 300..1500-byte frames: the NIC is waiting on the tail, so it
  // reads a descriptor right after the relaxed tail write, while the refilled addresses may still
  // sit in the store buffer. Frames above copybreak get new buffers, so a stale address is the
  // previous buffer, already handed to the stack.
  const BURST: SendOptions = { minSize: 300, maxSize: 1500, intervalNs: 0 }
  const variant = { rxd: 32, paths: { alloc_rx_buf: tnic_alloc_rx_buffers_relaxed } }
  for (const arch of ['arm64', 'riscv64'] as const) {
    it(`${arch}: missing-barrier naming the relaxed tail write; the NIC writes a frame into a buffer the stack owns`, async () => {
      const r = await rig(variant, { arch, iommu: 'off' })
      const rx = await receive(r, 500, BURST, 3_000_000)
      expect(kinds(r.sys)).toEqual(['device-access-cpu-owned', 'missing-barrier'])
      const mb = ofKind(r.sys, 'missing-barrier')[0]!
      expect(mb.message).toContain('writel_relaxed()')
      expectStackIn(mb, 'rx-tail-relaxed.ts', 'relaxed MMIO write')
      // The write went to an unmapped buffer, and the buffer the driver then handed up (the one
      // the descriptor should have named) was never written: zeroes reached the stack.
      expect(ofKind(r.sys, 'device-access-cpu-owned')[0]!.message).toContain('not mapped for DMA')
      expect(rx.bad).toBeGreaterThan(0)
    })
  }

  it('x86_64: silent (a relaxed MMIO write is still ordered after earlier stores), nothing lost', async () => {
    const r = await rig(variant, { arch: 'x86_64', iommu: 'off' })
    const rx = await receive(r, 500, BURST, 3_000_000)
    expect(r.sys.reports).toEqual([])
    expect(rx.bad).toBe(0)
  })

  it('the reference driver (dma_wmb, writel): no report, nothing lost on arm64', async () => {
    const r = await rig({ rxd: 32 }, { arch: 'arm64', iommu: 'off' })
    const rx = await receive(r, 500, BURST, 3_000_000)
    expect(r.sys.reports).toEqual([])
    expect(rx.bad).toBe(0)
    expect(rx.ok).toBeGreaterThan(100)
  })
})

describe('5. RDT off by one', () => {
  it('(a) rx-fill-all.ts: the refill puts the tail on the head: device-error, and not a frame is received', async () => {
    const r = await rig({ rxd: 8, paths: { clean_rx: tnic_clean_rx_irq_fill_all } })
    const rx = await receive(r, 10, SMALL)
    expect(kinds(r.sys)).toEqual(['device-error'])
    const rep = r.sys.reports[0]!
    expect(rep.message).toBe('RDT 0x0 == RDH: the driver filled every descriptor; one must stay empty')
    // The tail write is the reference alloc_rx_buf's, called with the variant's count.
    expect(rep.stacks[0]!.frames[0]!.file).toBe('drivers/net/tnic_txrx.ts')
    expectSomeFrameIn(rep, 'rx-fill-all.ts')
    expect(rx.seqs).toEqual([])
    expect(r.nic.stats.rxNoBuffers).toBe(10)
  })

  it('(b) rx-tail-minus-one.ts: -1 written to RDT at 0: device-error; the NIC then owns the whole ring and overwrites frames not yet cleaned', async () => {
    const r = await rig({ rxd: 8, paths: { alloc_rx_buf: tnic_alloc_rx_buffers_minus_one } })
    // The first frame's refill ends at descriptor 0.
    const first = await receive(r, 1, { size: 100 }, 100_000)
    expect(first.seqs).toEqual([0])
    expect(kinds(r.sys)).toEqual(['device-error'])
    expect(r.sys.reports[0]!.message).toBe('RDT 0xffffffff is beyond the ring (8 descriptors)')
    expectStackIn(r.sys.reports[0]!, 'rx-tail-minus-one.ts')
    expect(r.nic.reg('RDT')).toBe(0xffff)
    // 20 frames before the next interrupt (ITR): the NIC laps the ring of 8 twice and a half.
    const burst = await receive(r, 20, { size: 100 })
    expect(r.nic.stats.rxNoBuffers).toBe(0)
    expect(burst.seqs).toEqual([17, 18, 19, 20, 13, 14, 15, 16]) // 12 frames overwritten, the rest out of order
  })

  it('the reference driver under the same traffic: no report; the burst beyond the ring is dropped and counted, the rest in order', async () => {
    const r = await rig({ rxd: 8 })
    expect((await receive(r, 1, { size: 100 }, 100_000)).seqs).toEqual([0])
    const burst = await receive(r, 20, { size: 100 })
    expect(r.sys.reports).toEqual([])
    expect(burst.seqs).toEqual(range(7).map((i) => i + 1))
    expect(r.nic.stats.rxNoBuffers).toBe(13)
  })
})

describe('6. status not cleared before reuse (rx-status-not-cleared.ts)', () => {
  const variant = { rxd: 8, paths: { clean_rx: tnic_clean_rx_irq_nostatus } }

  it('frames up to copybreak: each is handed up again and again (NAPI never completes); no rule broken, no report', async () => {
    const r = await rig(variant, { checks: { stacks: false } })
    const rx = await receive(r, 12, { size: 100, intervalNs: 20_000 }, 300_000)
    expect(r.sys.reports).toEqual([])
    expect(rx.bad).toBe(0)
    expect(new Set(rx.seqs)).toEqual(new Set(range(12)))
    expect(rx.seqs.length).toBeGreaterThan(12 * 20)
    // The receive path never stops polling: the NIC took 12 frames, the stack got hundreds.
    expect(r.nic.stats.rxFrames).toBe(12)
  })

  it('larger frames: garbage frames, unmap-unknown of address 0, an oops on the NULL skb; the NIC\'s write to a handed-up buffer faults and the RX ring hangs', async () => {
    const r = await rig(variant)
    const rx = await receive(r, 12, { size: 1000, intervalNs: 20_000 }, 300_000)
    expect(rx.seqs.slice(0, 8)).toEqual(range(8))
    expect(rx.bad).toBeGreaterThan(0) // fresh buffers the NIC never wrote
    expect(kinds(r.sys)).toEqual(['iommu-fault', 'oops', 'unmap-unknown'])
    expectStackIn(ofKind(r.sys, 'unmap-unknown')[0]!, 'rx-status-not-cleared.ts')
    expect(ofKind(r.sys, 'unmap-unknown')[0]!.message).toContain('[device address=0x0000000000000000]')
    expectStackIn(ofKind(r.sys, 'oops')[0]!, 'rx-status-not-cleared.ts')
    expect(r.nic.rxStalled).toBe(true)
  })

  it('the reference driver (status cleared): every frame once, no report', async () => {
    for (const size of [100, 1000]) {
      const r = await rig({ rxd: 8 })
      const rx = await receive(r, 12, { size, intervalNs: 20_000 }, 300_000)
      expect(rx.seqs).toEqual(range(12))
      expect(r.sys.reports).toEqual([])
    }
  })
})

/** The test frames eth0 sends to the peer. */
function testFrame(src: Uint8Array, seq: number, len = 600): Uint8Array {
  return buildFrame({ dst: PEER_MAC, src, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len, PEER_SEED) })
}

/** Sends n test frames from eth0 (with `frags` page fragments each) and lets the system run 1 ms. */
async function transmit(r: Rig, n: number, frags = 0): Promise<void> {
  for (let seq = 0; seq < n; seq++) expect(await netUser(r.sys).send('eth0', testFrame(r.nic.mac, seq), { frags })).toBe(0)
  await runSafe(r.sys, 1_000_000)
}

const peerSeqs = (r: Rig): (number | null)[] => r.peer.received.map((f) => {
  const c = checkTestPayload(f.subarray(14), PEER_SEED)
  return c.ok ? c.seq : null
})

describe('7. TX buffer unmapped before DD (tx-unmap-early.ts)', () => {
  const variant = { paths: { xmit: tnic_xmit_frame_unmap_early } }
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch} IOMMU strict: iommu-fault (only: the access was blocked); the TX ring hangs, nothing is sent`, async () => {
      const r = await rig(variant, { arch, iommu: 'strict' }, 'sink')
      await transmit(r, 3)
      expect(kinds(r.sys)).toEqual(['iommu-fault'])
      expect(r.sys.reports[0]!.message).toContain('[DMA read]')
      // The NIC's own access (its TX walk, 500 ns after the tail write): no driver line is on the
      // stack, and the unmap that made it wrong is not remembered (dma-debug keeps no such history).
      expect(r.sys.reports[0]!.stacks).toEqual([])
      expect(r.nic.txStalled).toBe(true)
      expect(r.nic.lastDmaError).toMatchObject({ ring: 'tx', what: 'buffer read' })
      expect(r.peer.stats.rxFrames).toBe(0)
    })

    it(`${arch} IOMMU off: device-access-cpu-owned for each frame; the bytes are still there, so the frames go out`, async () => {
      const r = await rig(variant, { arch, iommu: 'off' }, 'sink')
      await transmit(r, 3)
      expect(kinds(r.sys)).toEqual(['device-access-cpu-owned'])
      expect(r.sys.reports[0]!.message).toContain('not mapped for DMA')
      expect(r.sys.reports[0]!.count).toBe(3)
      expect(r.sys.reports[0]!.stacks).toEqual([])
      expect(peerSeqs(r)).toEqual([0, 1, 2])
    })
  }

  it('the reference driver (unmapped in clean_tx after DD): no report in either IOMMU mode', async () => {
    for (const iommu of ['strict', 'off'] as const) {
      const r = await rig({}, { iommu }, 'sink')
      await transmit(r, 3)
      expect(r.sys.reports).toEqual([])
      expect(peerSeqs(r)).toEqual([0, 1, 2])
    }
  })
})

describe('8. mapping error not checked (rx-map-unchecked.ts)', () => {
  const variant = { paths: { alloc_rx_buf: tnic_alloc_rx_buffers_unchecked } }

  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: map-error-unchecked when the NIC first uses a buffer, though every mapping succeeded`, async () => {
      const r = await rig(variant, { arch })
      expect((await receive(r, 10, SMALL)).seqs).toEqual(range(10))
      expect(kinds(r.sys)).toEqual(['map-error-unchecked'])
      const rep = r.sys.reports[0]!
      expect(rep.message).toContain('failed to check map error')
      expectStackIn(rep, 'rx-map-unchecked.ts', 'mapped')
    })
  }

  it('when mappings fail (a 256 KiB swiotlb, all bounced): DMA_MAPPING_ERROR goes to the NIC, its write faults and the RX ring hangs', async () => {
    const opts: BootOptions = { swiotlb: 'force', swiotlbSize: 256 * 1024 }
    const r = await rig(variant, opts)
    const rx = await receive(r, 300, { minSize: 60, maxSize: 250, intervalNs: 5000 }, 3_000_000)
    expect(kinds(r.sys)).toEqual(['iommu-fault', 'map-error-unchecked'])
    expect(r.nic.rxStalled).toBe(true)
    expect(r.nic.lastDmaError).toMatchObject({ ring: 'rx', what: 'buffer write' })
    expect(r.nic.stats.rxMissed).toBeGreaterThan(100)
    expect(rx.bad).toBe(0)
    // The reference counts the failed mappings, gives the NIC fewer buffers, and is not reported.
    const ref = await rig({}, opts)
    await receive(ref, 300, { minSize: 60, maxSize: 250, intervalNs: 5000 }, 3_000_000)
    expect(ref.sys.reports).toEqual([])
    expect((await adapter(ref.sys)).alloc_rx_buff_failed).toBeGreaterThan(0)
    expect(ref.nic.rxStalled).toBe(false)
  })
})

describe('9. wrong unmap size (tx-unmap-size.ts)', () => {
  const variant = { paths: { clean_tx: tnic_clean_tx_irq_frame_len } }

  it('scatter-gather frames: unmap-size-mismatch for the head (dma_unmap_single) and for the fragments (dma_unmap_page)', async () => {
    const r = await rig(variant, {}, 'sink')
    await transmit(r, 4, 2)
    expect(kinds(r.sys)).toEqual(['unmap-size-mismatch'])
    expect(r.sys.reports.length).toBe(2)
    for (const rep of r.sys.reports) expectStackIn(rep, 'tx-unmap-size.ts')
    expect(r.sys.reports.map((x) => x.details['unmapSize'])).toEqual([614, 614])
    expect(peerSeqs(r)).toEqual([0, 1, 2, 3])
  })

  it('frames in one buffer: the two lengths agree, nothing to report', async () => {
    const r = await rig(variant, {}, 'sink')
    await transmit(r, 4, 0)
    expect(r.sys.reports).toEqual([])
  })

  it('the reference driver, scatter-gather frames: no report', async () => {
    const r = await rig({}, {}, 'sink')
    await transmit(r, 4, 2)
    expect(r.sys.reports).toEqual([])
    expect(peerSeqs(r)).toEqual([0, 1, 2, 3])
  })
})

describe('10. no bus mastering (no-bus-master.ts)', () => {
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: bus-master-disabled; both rings hang at their first descriptor read, no traffic either way`, async () => {
      const r = await rig(tnic_no_bus_master_driver, { arch }, 'echo')
      const sock = netUser(r.sys).socket('eth0')
      await transmit(r, 2)
      r.peer.sendFrame(buildFrame({ dst: r.nic.mac, src: PEER_MAC, etherType: ETH_P_TEST, payload: makeTestPayload(9, 100, PEER_SEED) }))
      await runSafe(r.sys, 1_000_000)
      expect(kinds(r.sys)).toEqual(['bus-master-disabled'])
      // The DMA is the device's own (a TX walk, a frame's arrival): no driver line to show.
      expect(r.sys.reports[0]!.stacks).toEqual([])
      expect(r.nic.txStalled && r.nic.rxStalled).toBe(true)
      expect(r.peer.stats.rxFrames).toBe(0)
      expect(sock.pending).toBe(0)
    })
  }
})

describe('11. a shared-IRQ handler that claims every interrupt (irq-claims-all.ts)', () => {
  /**
   * tnic0 in slot 0 and irqdev4 in slot 4 share INTx line 16. Every MSI vector is taken first, so
   * pci_alloc_irq_vectors falls back to INTx (a platform without MSI). `neighbour` binds a correct
   * shared handler to the IrqTestDevices; without it irqdev4 has no driver.
   */
  async function shared(drv: PciDriver, neighbour: boolean) {
    const nic = new TnicDevice({ name: 'tnic0' })
    const others = [1, 2, 3, 4].map((i) => new IrqTestDevice(`irqdev${i}`))
    const sys = boot({ log: 'silent', irqUnhandledThreshold: 10, devices: [nic, ...others] })
    expect(nic.intxLine).toBe(others[3]!.intxLine)
    sys.machine.intc.allocMsiVectors(InterruptController.NR_MSI)
    const seen = { handled: 0 }
    if (neighbour) {
      const irqtest: PciDriver = {
        name: 'irqtest',
        id_table: [{ vendor: 0x1de5, device: 0xface }],
        probe: (pdev) => {
          pci_enable_device(pdev)
          const regs = pci_iomap(pdev, 0)!
          return Promise.resolve(request_irq(pdev.irq, () => {
            const cause = readl(regs)
            if (cause === 0) return IRQ_NONE
            writel(cause, ptr_add(regs, 4))
            seen.handled++
            return IRQ_HANDLED
          }, IRQF_SHARED, 'irqtest', regs))
        },
      }
      expect(await sys.run(() => pci_register_driver(irqtest))).toBe(0)
    }
    const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'sink', verify: 'none' })
    new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
    expect(await sys.run(() => pci_register_driver(drv))).toBe(0)
    expect(sys.pciDevice('tnic0')!.irq).toBe(nic.intxLine)
    expect(await netUser(sys).ifup('eth0')).toBe(0)
    await runSafe(sys, 10_000_000)
    return { sys, irqdev4: others[3]!, seen }
  }

  it('a device without a driver holds the line asserted: the reference lets "nobody cared" disable it after the threshold', async () => {
    const { sys, irqdev4 } = await shared(tnic_make_driver(), false)
    irqdev4.fire()
    await runSafe(sys, 1_000_000)
    expect(kinds(sys)).toEqual(['irq-unhandled'])
    expect(sys.reports[0]!.message).toContain('nobody cared')
    // Counted from the tnic's own interrupts on: the stuck line is disabled after 11 unclaimed ones.
    expect(sys.reports[0]!.details['unhandled']).toBe(11)
    expect(sys.reports[0]!.details['count']).toBeLessThan(50)
  })

  it('the variant claims each of those interrupts: no "nobody cared", an interrupt storm blamed on eth0 (a hard lockup on Linux)', async () => {
    const { sys, irqdev4 } = await shared(tnic_irq_claims_all_driver, false)
    irqdev4.fire()
    await runSafe(sys, 1_000_000)
    expect(kinds(sys)).toEqual(['irq-unhandled'])
    const rep = sys.reports[0]!
    // (Its stack, like the reference's, is the harness call during which the line fired: the
    // interrupt came while the CPU was idle.)
    expect(rep.message).toContain('interrupt storm')
    expect(rep.message).toContain('handlers:\n  eth0\n')
    expect(rep.details['count']).toBeGreaterThanOrEqual(10_000)
  })

  it('a neighbour with a working driver: every handler still runs, nothing to report for either driver', async () => {
    for (const drv of [tnic_make_driver(), tnic_irq_claims_all_driver]) {
      const { sys, irqdev4, seen } = await shared(drv, true)
      for (let i = 0; i < 3; i++) {
        irqdev4.fire()
        await runSafe(sys, 100_000)
      }
      expect(seen.handled).toBe(3)
      expect(sys.reports).toEqual([])
    }
  })
})

describe('12. an RX buffer sharing a cache line with driver state (rx-buffer-shares-line.ts)', () => {
  const variant = { rxd: 8, paths: { alloc_rx_buf: tnic_alloc_rx_buffers_counter } }

  /** The counters the variant keeps in front of each of the ring's 8 buffers. */
  async function counters(sys: System): Promise<number[]> {
    return sys.run(() => tnic_adapter_of(sys.pciDevice('tnic0')!.drvdata as never).rx_ring.buffer_info
      .map((bi) => (bi.skb === null ? -1 : mem_read16(ptr_add(bi.skb.data, -2)))))
  }

  it('arm64: cacheline-shared; the unmap/sync cleans the dirty line over the frame: every frame loses its first 62 bytes', async () => {
    const r = await rig(variant, { arch: 'arm64' })
    const rx = await receive(r, 24, SMALL)
    expect(kinds(r.sys)).toEqual(['cacheline-shared'])
    const rep = r.sys.reports[0]!
    expectStackIn(rep, 'rx-buffer-shares-line.ts')
    expectStackIn(rep, 'rx-buffer-shares-line.ts', 'mapped')
    expect(rep.details['sameAllocation']).toBe(true)
    expect(rx.seqs.length).toBe(24)
    expect(rx.bad).toBe(24)
    expect(rx.carried).toEqual(Array.from({ length: 24 }, () => null)) // not even the payload header is left
    // The counters survive: the CPU's line won.
    expect(await counters(r.sys)).toEqual([4, 4, 4, 4, 4, 4, 4, 3])
  })

  it('riscv64: cacheline-shared; the invalidate throws the counter updates away, the frames survive', async () => {
    const r = await rig(variant, { arch: 'riscv64' })
    const rx = await receive(r, 24, SMALL)
    expect(kinds(r.sys)).toEqual(['cacheline-shared'])
    expect(rx.seqs).toEqual(range(24))
    // Each buffer was posted 3 or 4 times (as x86_64 counts): every update after the first is lost.
    expect(await counters(r.sys)).toEqual([1, 1, 1, 1, 1, 1, 1, 0])
  })

  it('x86_64: NET_IP_ALIGN is 0, the frame starts on its own line: nothing shared, nothing reported, nothing lost', async () => {
    const r = await rig(variant, { arch: 'x86_64' })
    const rx = await receive(r, 24, SMALL)
    expect(r.sys.reports).toEqual([])
    expect(rx.seqs).toEqual(range(24))
    expect(await counters(r.sys)).toEqual([4, 4, 4, 4, 4, 4, 4, 3])
  })

  it('the reference driver on arm64: no report, every frame right', async () => {
    const r = await rig({ rxd: 8 }, { arch: 'arm64' })
    expect((await receive(r, 24, SMALL)).seqs).toEqual(range(24))
    expect(r.sys.reports).toEqual([])
  })
})

describe('13. a device-written length trusted beyond the buffer (rx-length-trusted.ts)', () => {
  /** Six 200-byte frames; the NIC lies about the third one's length (4000 bytes). */
  async function lying(params: TnicParams): Promise<{ r: Rig; rx: Received }> {
    const r = await rig(params)
    r.sys.machine.faults.add({ device: 'tnic0', kind: 'corrupt-length', after: 2 })
    const rx = await receive(r, 6, { size: 200, intervalNs: 20_000 })
    return { r, rx }
  }

  it('copybreak 4096: the copy reads 4000 bytes from the 2 KiB buffer: out-of-bounds, and the kernel memory reaches the stack', async () => {
    const { r, rx } = await lying({ copybreak: 4096, paths: { clean_rx: tnic_clean_rx_irq_trusting } })
    expect(kinds(r.sys)).toEqual(['cpu-access-device-owned', 'out-of-bounds', 'sync-out-of-range'])
    const oob = ofKind(r.sys, 'out-of-bounds')[0]!
    expect(oob.message).toContain('slab-out-of-bounds: Read of size 4000')
    expectStackIn(oob, 'rx-length-trusted.ts')
    // The syncs of 4000 bytes of a 2048-byte mapping do nothing, so the buffer read is of device-owned bytes.
    expect(ofKind(r.sys, 'sync-out-of-range').length).toBe(2)
    for (const rep of r.sys.reports) expectStackIn(rep, 'rx-length-trusted.ts')
    expect(rx.lengths).toEqual([200, 200, 4000, 200, 200, 200])
  })

  it('default copybreak: the large-frame path does skb_put(4000) on a 2 KiB skb: oops (skb_over_panic), receive dies with the poll', async () => {
    const { r, rx } = await lying({ paths: { clean_rx: tnic_clean_rx_irq_trusting } })
    expect(kinds(r.sys)).toEqual(['oops'])
    expect(r.sys.reports[0]!.message).toContain('skb_over_panic')
    expectStackIn(r.sys.reports[0]!, 'rx-length-trusted.ts')
    expect(rx.seqs).toEqual([0, 1])
  })

  it('the reference driver checks the length: the frame is dropped and counted, no report (either copybreak)', async () => {
    for (const copybreak of [256, 4096]) {
      const { r, rx } = await lying({ copybreak })
      expect(r.sys.reports).toEqual([])
      expect(rx.seqs).toEqual([0, 1, 3, 4, 5])
      expect((await adapter(r.sys)).rx_length_errors).toBe(1)
      expect((await netUser(r.sys).stats('eth0')).rx_length_errors).toBe(1)
    }
  })
})
