/**
 * host/trace-event.ts and host/ownership-diagram.ts on real runs: the copy engine and the tnic
 * under echo load. The trace validates against the Trace Event Format (a JSON schema written from
 * Google's "Trace Event Format" document, checked with ajv), its B/E slices balance on every track,
 * it holds every track (each CPU context, each device, each IRQ line, each buffer's ownership), and
 * the same seed gives the same file. The ownership diagram of a buffer shows the calls that moved
 * it, the device's accesses and the report filed on it, in order.
 */
import { describe, expect, it } from 'vitest'
import { Ajv } from 'ajv'
import {
  boot, kfree, kmalloc, mem_write_bytes, netUser, pci_register_driver, type System,
} from '../../kernel/index.js'
import { CopyEngine, TnicDevice, TrafficPeer, Wire, buildFrame, ETH_P_TEST, makeTestPayload } from '../../devices/index.js'
import { ce_copy, ce_driver } from '../../drivers/misc/copy-engine.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'
import { ce_copy_peek } from '../fixtures/copy-engine-bad/missing-sync.js'
import { PID_BUFFERS, PID_CPU, PID_DEVICES, PID_IRQS, startTrace, describeBuffer, type ChromeTrace } from '../../host/trace-event.js'
import { apiName, ownershipDiagram, recordOwnership, reportedBuffers } from '../../host/ownership-diagram.js'
import { TRACE_EVENT_SCHEMA } from '../helpers/trace-event-schema.js'

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(TRACE_EVENT_SCHEMA)

/** Problems with a trace beyond the schema: unbalanced B/E per track, time going backwards. */
function balance(t: ChromeTrace): string[] {
  const problems: string[] = []
  const depth = new Map<string, number>()
  let last = -Infinity
  for (const e of t.traceEvents) {
    if (e.ph === 'M') continue
    if (e.ts < last) problems.push(`ts goes back at ${e.name} (${e.ts} < ${last})`)
    last = e.ts
    const key = `${e.pid}/${e.tid}`
    if (e.ph === 'B') depth.set(key, (depth.get(key) ?? 0) + 1)
    if (e.ph === 'E') {
      const d = (depth.get(key) ?? 0) - 1
      if (d < 0) problems.push(`E without B on ${key} at ${e.ts}`)
      depth.set(key, d)
    }
  }
  for (const [k, d] of depth) if (d !== 0) problems.push(`${d} open slices on ${k}`)
  return problems
}

const trackNames = (t: ChromeTrace, pid: number): string[] =>
  t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid).map((e) => String(e.args?.['name']))
const onTrack = (t: ChromeTrace, pid: number, cat: string): number => t.traceEvents.filter((e) => e.pid === pid && e.cat === cat).length

async function copyEngineRun(seed: number, bad: boolean): Promise<{ sys: System; trace: ChromeTrace; diagramOf: (n: number) => string; buffers: number; reported: number[] }> {
  const sys = boot({ log: 'silent', seed, devices: [new CopyEngine({ name: 'ce0' })] })
  const session = startTrace(sys)
  const own = recordOwnership(sys)
  expect(await sys.run(() => pci_register_driver(ce_driver))).toBe(0)
  const pdev = sys.pciDevice('ce0')!
  await sys.run(async () => {
    const src = kmalloc(512)!
    const dst = kmalloc(512)!
    mem_write_bytes(src, new Uint8Array(512).fill(0x5a))
    expect(await ce_copy(pdev, dst, src, 512)).toBe(0)
    if (bad) expect((await ce_copy_peek(pdev, dst, src, 512)).rc).toBe(0)
    kfree(src)
    kfree(dst)
  })
  const trace = session.finish()
  own.stop()
  return { sys, trace, buffers: own.buffers.length, reported: reportedBuffers(own), diagramOf: (n) => ownershipDiagram(own.buffer(n)!) }
}

describe('Chrome trace of the copy engine', () => {
  it('validates against the trace-event format, balances, and holds every track', async () => {
    const { sys, trace } = await copyEngineRun(1, false)
    expect(sys.reports).toEqual([])
    expect(validate(trace), JSON.stringify(validate.errors)).toBe(true)
    expect(balance(trace)).toEqual([])
    // CPU: process context ran the copy, the hard IRQ its completion
    expect(trackNames(trace, PID_CPU)).toEqual(['process context', 'hard IRQ', 'softirq'])
    expect(onTrack(trace, PID_CPU, 'process')).toBeGreaterThan(0)
    expect(onTrack(trace, PID_CPU, 'hardirq')).toBeGreaterThan(0)
    // the device's MMIO and DMA, the IRQ line, both buffers' ownership
    expect(trackNames(trace, PID_DEVICES)).toEqual(['ce0'])
    expect(onTrack(trace, PID_DEVICES, 'mmio')).toBeGreaterThan(0)
    expect(onTrack(trace, PID_DEVICES, 'dma')).toBe(2) // one read of the source, one write of the destination
    expect(trackNames(trace, PID_IRQS).length).toBe(1)
    expect(trackNames(trace, PID_BUFFERS)).toEqual([
      '#1 ce0 single 512 B DMA_TO_DEVICE',
      '#2 ce0 single 512 B DMA_FROM_DEVICE',
    ])
    const spans = trace.traceEvents.filter((e) => e.pid === PID_BUFFERS && e.ph === 'X').map((e) => [e.tid, e.name])
    expect(spans).toEqual([
      [1, 'device owns'],
      [2, 'device owns'],
    ])
    expect(trace.otherData).toMatchObject({ arch: 'arm64', seed: 1, buffers: 2, reports: 0, droppedEvents: 0 })
  })

  it('is the same file for the same seed, and shows the report on the CPU track', async () => {
    const a = await copyEngineRun(7, true)
    const b = await copyEngineRun(7, true)
    expect(JSON.stringify(a.trace)).toBe(JSON.stringify(b.trace))
    expect(validate(a.trace), JSON.stringify(validate.errors)).toBe(true)
    const reports = a.trace.traceEvents.filter((e) => e.cat === 'report')
    expect(reports.map((e) => [e.name, e.s, e.args?.['site'], e.args?.['buffer']])).toEqual([
      ['report: cpu-access-device-owned', 'g', 'test/fixtures/copy-engine-bad/missing-sync.ts:26', 4],
    ])
  })

  it('caps the MMIO and DMA events at maxEvents and counts what it dropped', async () => {
    const sys = boot({ log: 'silent', devices: [new CopyEngine({ name: 'ce0' })] })
    expect(() => startTrace(sys, { maxEvents: 0 })).toThrow(/maxEvents must be a positive integer, got 0/)
    const s = startTrace(sys, { maxEvents: 3 })
    expect(await sys.run(() => pci_register_driver(ce_driver))).toBe(0)
    const t = s.finish()
    expect(t.traceEvents.filter((e) => e.cat === 'mmio' || e.cat === 'dma').length).toBe(3)
    expect(t.otherData['droppedEvents']).toBeGreaterThan(0)
    expect(validate(t)).toBe(true)
  })
})

describe('Chrome trace of the tnic under echo load', () => {
  it('holds the softirq (NAPI) slices, the NIC, its IRQ and the ring buffers, and validates', async () => {
    const nic = new TnicDevice({ name: 'tnic0' })
    const sys = boot({ log: 'silent', checks: { stacks: false }, devices: [nic] })
    const peerMac = new Uint8Array([2, 0, 0, 0, 0, 0x99])
    const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: peerMac, mode: 'echo', verify: 'none' })
    new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
    const session = startTrace(sys)
    expect(await sys.run(() => pci_register_driver(tnic_make_driver()))).toBe(0)
    const net = netUser(sys)
    expect(await net.ifup('eth0')).toBe(0)
    await sys.runFor(10_000_000)
    const sock = net.socket('eth0', { capacity: 32 })
    for (let seq = 0; seq < 8; seq++) {
      const frame = buildFrame({ dst: peerMac, src: nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, 200, 1) })
      expect(await net.send('eth0', frame)).toBe(0)
    }
    await sys.runUntil(() => sock.pending >= 8, { timeoutNs: 1e9 })
    const t = session.finish()
    expect(sys.reports).toEqual([])
    expect(validate(t), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
    expect(balance(t)).toEqual([])
    expect(onTrack(t, PID_CPU, 'softirq')).toBeGreaterThan(0)
    expect(onTrack(t, PID_CPU, 'hardirq')).toBeGreaterThan(0)
    expect(trackNames(t, PID_DEVICES)).toEqual(['tnic0'])
    expect(trackNames(t, PID_IRQS).length).toBeGreaterThan(0)
    const buffers = trackNames(t, PID_BUFFERS)
    expect(buffers.some((n) => n.includes('coherent'))).toBe(true) // the descriptor rings
    expect(buffers.some((n) => n.includes('DMA_FROM_DEVICE'))).toBe(true) // RX buffers
    expect(buffers.some((n) => n.includes('DMA_TO_DEVICE'))).toBe(true) // TX frames
    expect(t.traceEvents.some((e) => e.pid === PID_BUFFERS && e.name === 'coherent (shared)')).toBe(true)
  })
})

describe('ownership diagram', () => {
  it("draws a correct buffer's life: map, the device's write, unmap", async () => {
    const run = await copyEngineRun(1, false)
    expect(run.buffers).toBe(2)
    const d = run.diagramOf(2)
    const lines = d.trim().split('\n')
    expect(lines[0]).toBe('sequenceDiagram')
    expect(lines[3]).toBe('    Note over CPU,DEV: buffer 2, single 512 bytes DMA_FROM_DEVICE, mapped at drivers/misc/copy-engine.ts:179')
    expect(lines.slice(4).map((l) => l.replace(/ at \S+| \(t=[^)]*\)/g, ''))).toEqual([
      '    CPU->>DEV: dma_map_single',
      '    Note right of DEV: device owns the buffer',
      '    DEV->>CPU: DMA write, 512 bytes',
      '    CPU->>DEV: dma_unmap_single',
      '    Note left of CPU: nobody: the buffer is gone',
    ])
    expect(d).not.toContain('REPORT')
  })

  it('puts the report where the driver read a buffer the device still owned', async () => {
    const run = await copyEngineRun(1, true)
    expect(run.reported).toEqual([4])
    expect((await copyEngineRun(1, false)).reported).toEqual([])
    const d = run.diagramOf(4)
    const i = (s: string) => d.indexOf(s)
    expect(i('DEV->>CPU: DMA write, 512 bytes')).toBeGreaterThan(i('dma_map_single'))
    expect(i('Note over CPU,DEV: REPORT cpu-access-device-owned at test/fixtures/copy-engine-bad/missing-sync.ts:26')).toBeGreaterThan(i('DMA write'))
    expect(i('dma_unmap_single')).toBeGreaterThan(i('REPORT'))
  })

  it('names the DMA API calls and describes buffers', () => {
    const e = { time: 0, op: 'sync_for_cpu', device: 'x', id: 1, type: 'scatter-gather', dir: 2, dma: 0x1000, size: 64, off: 0, len: 64 } as const
    expect(apiName(e)).toBe('dma_sync_sg_for_cpu')
    expect(apiName({ ...e, op: 'alloc', type: 'coherent' })).toBe('dma_alloc_coherent')
    expect(describeBuffer(3, { ...e, op: 'map', type: 'single', site: 'drv.ts:12' })).toBe('#3  x  single 64 bytes DMA_FROM_DEVICE  mapped at drv.ts:12')
  })
})
