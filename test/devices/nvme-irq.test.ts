// The mini-NVMe controller's interrupts (MSI-X per CQ, shared vectors, INTx with INTMS/INTMC,
// coalescing), thousands of queues with memory that follows them, failed DMA, fault injection,
// determinism and the queue dump. The datasheet is docs/devices/nvme.md §8, §13, §16, §18.
import { describe, expect, it } from 'vitest'
import {
  IOMMU_READ,
  IOMMU_WRITE,
  MEMTX_ACCESS_ERROR,
  NVME_ADMIN_ABORT_CMD,
  NVME_ADMIN_IDENTIFY,
  NVME_ADMIN_SET_FEATURES,
  NVME_CMD_FLUSH,
  NVME_CMD_READ,
  NVME_CMD_WRITE,
  NVME_SC_ABORT_REQ,
  NVME_CSTS_CFS,
  NVME_CSTS_RDY,
  NVME_FEAT_IRQ_COALESCE,
  NVME_REG_CC,
  NVME_REG_CSTS,
  NVME_REG_INTMC,
  NVME_REG_INTMS,
  NVME_SC_DATA_XFER_ERROR,
  NVME_SC_DNR,
  NVME_SC_INTERNAL,
  NVME_SC_INVALID_NS,
  NVME_SC_LBA_RANGE,
  NvmeController,
  PCI_COMMAND,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
} from '../../devices/index.js'
import { ACQ, ASQ, DATA, IDBUF, IOQ, nvme, pattern, RAM, ramBytes, type NvmeHost } from './nvme-rig.js'

const flush = { opcode: NVME_CMD_FLUSH, nsid: 1 }

describe('nvme: MSI-X', () => {
  it('each CQ signals its own vector (IV); the admin CQ vector 0; vectors may be shared by several CQs', () => {
    const h = nvme()
    h.bringUp()
    const first = h.enableMsix()
    h.createPair(1, 16, { iv: 1 })
    h.createPair(2, 16, { iv: 5 })
    h.createPair(3, 16, { iv: 5 })
    const { m } = h
    for (let v = 0; v < 32; v++) m.intc.ack(first + v)
    const fired = (): number[] => {
      const out: number[] = []
      for (let v = 0; v < 32; v++) if (m.intc.isMsiPending(first + v)) out.push(v)
      for (const v of out) m.intc.ack(first + v)
      return out
    }
    h.cmd(1, flush)
    expect(fired()).toEqual([1])
    h.cmd(2, flush)
    expect(fired()).toEqual([5])
    h.cmd(3, flush)
    expect(fired()).toEqual([5])
    h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 })
    expect(fired()).toEqual([0])
    expect(h.dev.intxAsserted).toBe(false)
    expect(h.dev.stats.interrupts).toBeGreaterThanOrEqual(4)
  })

  it('one message per posting round, not per entry; a masked vector sets its PBA bit and fires on unmask', () => {
    const h = nvme({ commandLatencyNs: 100 })
    h.bringUp()
    const first = h.enableMsix()
    h.createPair(1, 16, { iv: 2 })
    const msis: number[] = []
    h.m.tracer.on('irq', (e) => (e.kind === 'msi' ? msis.push(e.hwirq - first) : undefined))
    for (let i = 0; i < 4; i++) h.put(1, flush) // no data: all four complete at the fetch
    h.ring(1)
    h.run()
    expect(msis).toEqual([2])
    expect(h.reap(1)).toHaveLength(4)
    const ctrl = h.dev.config.msixTableOffset + 2 * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL
    h.dev.mmioWrite(0, ctrl, 4, 1) // mask vector 2
    h.put(1, flush)
    h.ring(1)
    h.run()
    expect(msis).toEqual([2])
    expect(h.dev.msixPending(2)).toBe(true)
    h.dev.mmioWrite(0, ctrl, 4, 0)
    expect(msis).toEqual([2, 2])
  })

  it('a CQ created without IEN raises no interrupt (a polled queue)', () => {
    const h = nvme()
    h.bringUp()
    const first = h.enableMsix()
    h.createPair(1, 16, { ien: false, iv: 7 })
    for (let v = 0; v < 32; v++) h.m.intc.ack(first + v)
    expect(h.cmd(1, flush).status).toBe(0)
    expect(h.m.intc.nextPending()).toBe(-1)
  })
})

describe('nvme: pin-based interrupts (INTx)', () => {
  it('INTA# follows ~INTMS & irq_status: set by a posting round, cleared by the head doorbell that empties the CQs of vector 0', () => {
    const h = nvme()
    h.bringUp()
    const line = h.dev.intxLine
    const { m } = h
    h.createPair(1)
    h.createPair(2)
    expect(m.intc.isAsserted(line)).toBe(false)
    h.put(1, flush)
    h.put(2, flush)
    h.ring(1)
    h.ring(2)
    h.run()
    expect(m.intc.isAsserted(line)).toBe(true)
    h.reap(1)
    expect(m.intc.isAsserted(line)).toBe(true) // CQ 2 still holds an entry on vector 0
    h.reap(2)
    expect(m.intc.isAsserted(line)).toBe(false)
    // INTMS masks the vector: the line drops; INTMC unmasks it: the line rises again.
    h.put(1, flush)
    h.ring(1)
    h.run()
    expect(h.dev.intxAsserted).toBe(true)
    h.w(NVME_REG_INTMS, 1)
    expect(m.intc.isAsserted(line)).toBe(false)
    h.w(NVME_REG_INTMC, 1)
    expect(m.intc.isAsserted(line)).toBe(true)
    h.reap(1)
    expect(m.intc.isAsserted(line)).toBe(false)
    expect(h.errors).toEqual([])
  })

  it('a driver that forgets the head doorbell keeps the line asserted', () => {
    const h = nvme()
    h.bringUp()
    h.createPair(1)
    h.put(1, flush)
    h.ring(1)
    h.run()
    h.reap(1, { doorbell: false })
    expect(h.m.intc.isAsserted(h.dev.intxLine)).toBe(true)
  })
})

describe('nvme: interrupt coalescing (Feature 08h)', () => {
  function coalescing(thr: number, time: number) {
    const h = nvme({ commandLatencyNs: 1000, bytesPerNs: 4096 / 10_000 }) // a 4 KiB read takes 10 µs
    h.bringUp()
    const first = h.enableMsix()
    h.createPair(1, 64, { iv: 1 })
    expect(h.admin({ opcode: NVME_ADMIN_SET_FEATURES, cdw10: NVME_FEAT_IRQ_COALESCE, cdw11: (time << 8) | thr }).status).toBe(0)
    const msis: number[] = []
    const t0 = h.m.clock.now
    h.m.tracer.on('irq', (e) => (e.kind === 'msi' && e.hwirq === first + 1 ? msis.push(h.m.clock.now - t0) : undefined))
    return { h, msis }
  }
  const reads = (h: NvmeHost, n: number, slba = 0) => {
    for (let i = 0; i < n; i++) h.put(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: DATA + i * 4096, cdw10: slba + 8 * i, cdw12: 7 })
    h.ring(1)
  }

  it('off by default: one interrupt per completion round', () => {
    const { h, msis } = coalescing(0, 0)
    reads(h, 8)
    h.run()
    expect(msis).toEqual([11_000, 21_000, 31_000, 41_000, 51_000, 61_000, 71_000, 81_000])
  })

  it('THR 3 (4 entries) with TIME 10 (1 ms): an interrupt per 4 completions', () => {
    const { h, msis } = coalescing(3, 10)
    reads(h, 8)
    h.run()
    expect(msis).toEqual([41_000, 81_000])
    expect(h.dev.stats.irqCoalesced).toBe(6)
  })

  it('TIME expires first: 2 completions below the threshold fire TIME × 100 µs after the first', () => {
    const { h, msis } = coalescing(7, 2)
    reads(h, 2)
    h.run()
    expect(msis).toEqual([11_000 + 200_000])
    expect(h.reap(1)).toHaveLength(2)
  })

  it('an error completion is not coalesced; neither is the admin CQ', () => {
    const { h, msis } = coalescing(7, 2)
    reads(h, 1)
    h.put(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: DATA, cdw10: 0xffff_fff0, cdw12: 7 })
    h.ring(1)
    h.run()
    expect(msis).toEqual([1000, 11_000 + 200_000]) // the LBA_RANGE error at its fetch: at once; the read: coalesced
    expect(h.reap(1).map((c) => c.status)).toEqual([NVME_SC_LBA_RANGE | NVME_SC_DNR, 0])
    h.errors.length = 0
    const adminMsis: number[] = []
    h.m.tracer.on('irq', (e) => (e.kind === 'msi' ? adminMsis.push(e.hwirq) : undefined))
    h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 })
    expect(adminMsis).toHaveLength(1)
  })
})

describe('nvme: many queues', () => {
  it('4096 I/O queue pairs over 32 vectors: every pair works, memory follows the queues created', () => {
    const heap0 = process.memoryUsage().heapUsed
    const h = nvme({ mqes: 1 })
    h.bringUp()
    const first = h.enableMsix()
    const n = 4096
    for (let q = 1; q <= n; q++) {
      const { sq, cq } = h.createPair(q, 2, { iv: q % 32, sqBase: RAM + 0x1000_0000 + q * 0x2000, cqBase: RAM + 0x1000_1000 + q * 0x2000 })
      if (sq.status !== 0 || cq.status !== 0) throw new Error(`pair ${q}: ${sq.status}/${cq.status}`)
    }
    expect(h.dev.queueCount).toEqual({ sqs: n + 1, cqs: n + 1 })
    for (let v = 0; v < 32; v++) h.m.intc.ack(first + v)
    for (const q of [1, 31, 32, 1000, 2048, 4095, 4096]) {
      expect(h.cmd(q, flush)).toMatchObject({ status: 0, sqid: q })
      expect(h.m.intc.isMsiPending(first + (q % 32))).toBe(true)
      h.m.intc.ack(first + (q % 32))
    }
    expect(h.dev.dumpQueues()).toContain('SQ 4096: base 0x52000000 size 2 head 1 tail 1 cq 4096 pending 0 inflight 0')
    const grown = process.memoryUsage().heapUsed - heap0
    expect(grown).toBeLessThan(64 << 20) // a few KiB per pair at most, with the admin traffic's garbage
    expect(h.errors).toEqual([])
  })

  it('construction allocates nothing per possible queue: 200 controllers offering 65,535 queue pairs each stay small', () => {
    const heap0 = process.memoryUsage().heapUsed
    const keep: NvmeController[] = []
    for (let i = 0; i < 200; i++) keep.push(new NvmeController({ name: `n${i}`, maxIoQueuePairs: 65535 }))
    const per = (process.memoryUsage().heapUsed - heap0) / keep.length
    expect(per).toBeLessThan(256 << 10) // an array of 65,535 entries alone would be 512 KiB
    expect(keep[199]!.config.doorbellBytes).toBe(2 * 65536 * 4)
  })
})

describe('nvme: failed DMA', () => {
  it('a data buffer no RAM decodes: DATA_XFER_ERROR (no DNR), not a guest error; the controller goes on', () => {
    const h = nvme()
    h.bringUp()
    h.createPair(1)
    expect(h.cmd(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: 0x10_0000_0000, cdw12: 7 }).status).toBe(NVME_SC_DATA_XFER_ERROR)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: 0x10_0000_0000, cdw12: 7 }).status).toBe(NVME_SC_DATA_XFER_ERROR)
    expect(h.dev.stats).toMatchObject({ dmaErrors: 2, bytesWritten: 0 })
    expect(h.dev.cacheDirtyBytes).toBe(0)
    expect(h.errors).toEqual([])
    expect(h.cmd(1, flush).status).toBe(0)
  })

  it('an IOMMU fault on the data buffer, and a device write into a read-only mapping, fail the command only', () => {
    const h = nvme({}, { iommu: 'strict' })
    const d = h.dev.dma.domain!
    d.map(RAM, RAM, 0x100_0000, IOMMU_READ | IOMMU_WRITE) // queues, identity mapped
    d.map(DATA, DATA, 0x1000, IOMMU_READ) // a TO_DEVICE buffer
    h.bringUp()
    h.createPair(1)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: DATA, cdw12: 7 }).status).toBe(0)
    expect(h.cmd(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: DATA, cdw12: 7 }).status).toBe(NVME_SC_DATA_XFER_ERROR)
    expect(h.cmd(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: DATA + 0x2000, cdw12: 7 }).status).toBe(NVME_SC_DATA_XFER_ERROR)
    expect(h.m.iommuFaults).toEqual([
      { device: 'nvme0', iova: DATA, write: true, reason: 'permission' },
      { device: 'nvme0', iova: DATA + 0x2000, write: true, reason: 'unmapped' },
    ])
  })

  it('bus mastering off: the SQE fetch fails, CSTS.CFS (fatal); a reset with bus mastering back recovers', () => {
    const h = nvme()
    h.bringUp()
    h.dev.configWrite(PCI_COMMAND, 2, PCI_COMMAND_MEMORY)
    h.put(0, { opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 })
    h.ring(0)
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY | NVME_CSTS_CFS)
    expect(h.dev.lastFatal).toBe('SQ 0 fetch of 1 entries from 0x40001000 (head 0) failed (MemTxResult 1)')
    expect(h.dev.dumpQueues()).toContain('  fatal: SQ 0 fetch of 1 entries from 0x40001000 (head 0) failed (MemTxResult 1)')
    expect(h.dev.running).toBe(false)
    expect(h.errors).toEqual([])
    h.dev.configWrite(PCI_COMMAND, 2, 0x6)
    h.ring(0)
    h.run()
    expect(h.reap(0)).toEqual([]) // nothing moves until the reset
    h.w(NVME_REG_CC, 0)
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    h.bringUp()
    expect(h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 }).status).toBe(0)
    expect(h.dev.stats.fatalErrors).toBe(1)
  })

  it('a CQ whose memory the device cannot write: the CQE write fails, CSTS.CFS', () => {
    const h = nvme({}, { iommu: 'strict' })
    const d = h.dev.dma.domain!
    d.map(RAM, RAM, 0x100_0000, IOMMU_READ | IOMMU_WRITE)
    h.bringUp()
    h.createPair(1, 16, { cqBase: RAM + 0x200_0000 }) // not mapped
    h.put(1, flush)
    h.ring(1)
    h.run()
    expect(h.r(NVME_REG_CSTS) & NVME_CSTS_CFS).toBe(NVME_CSTS_CFS)
    expect(h.dev.lastFatal).toBe(`CQ 1 entry 0 write to 0x42000000 failed (MemTxResult ${MEMTX_ACCESS_ERROR})`)
  })
})

describe('nvme: Abort (specification §5.1)', () => {
  it('completes a command the controller still holds with ABORT_REQ, and says so in DW0 bit 0 = 0', () => {
    const h = nvme({ commandLatencyNs: 100 })
    h.bringUp()
    h.createPair(1)
    h.m.faults.add({ device: 'nvme0', kind: 'delay-completion', delayNs: 500e9 }) // the flush below is held
    h.put(1, { ...flush, cid: 0x1234 })
    h.ring(1)
    h.run(10_000)
    expect(h.reap(1)).toEqual([])
    const t0 = h.m.clock.now
    const abort = h.admin({ opcode: NVME_ADMIN_ABORT_CMD, cdw10: (0x1234 << 16) | 1 })
    expect(abort.status).toBe(0)
    expect(abort.dw0 & 1).toBe(0) // aborted
    const [held] = h.reap(1)
    expect(held).toMatchObject({ cid: 0x1234, status: NVME_SC_ABORT_REQ })
    expect(h.m.clock.now - t0).toBeLessThan(1e6) // now, not in 500 s
    expect(h.errors).toEqual([])
  })

  it('leaves alone a command it does not hold (completed, or never sent): DW0 bit 0 = 1, and the Abort succeeds', () => {
    const h = nvme()
    h.bringUp()
    h.createPair(1)
    expect(h.cmd(1, { ...flush, cid: 7 }).status).toBe(0)
    for (const cdw10 of [(7 << 16) | 1, (99 << 16) | 1, (7 << 16) | 5]) {
      const a = h.admin({ opcode: NVME_ADMIN_ABORT_CMD, cdw10 })
      expect(a.status).toBe(0)
      expect(a.dw0 & 1).toBe(1)
    }
  })

  it('Identify Controller reports ACL = 3: four Aborts may be outstanding', () => {
    const h = nvme()
    h.bringUp()
    expect(h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 }).status).toBe(0)
    expect(ramBytes(h.m, IDBUF + 258, 1)[0]).toBe(3)
  })
})

describe('nvme: fault injection', () => {
  it('delay-completion delays the chosen command (default 1 ms) without holding the others back', () => {
    const h = nvme({ commandLatencyNs: 100 })
    h.bringUp()
    h.createPair(1)
    h.m.faults.add({ device: 'nvme0', kind: 'delay-completion' })
    h.m.faults.add({ device: 'nvme0', kind: 'delay-completion', after: 1, delayNs: 5000 })
    const t0 = h.m.clock.now
    const seen: [number, number][] = []
    for (let i = 0; i < 3; i++) h.put(1, { ...flush, cid: i })
    h.ring(1)
    while (h.m.clock.step(Number.POSITIVE_INFINITY)) for (const c of h.reap(1)) seen.push([c.cid, h.m.clock.now - t0])
    expect(seen).toEqual([[2, 100], [1, 5100], [0, 1_000_100]])
  })

  it('error-status completes the next command with the rule\'s status (default INTERNAL) without executing it', () => {
    const h = nvme()
    h.bringUp()
    h.createPair(1)
    h.m.ram.write(DATA, pattern(4096), 0, 4096)
    h.m.faults.add({ device: 'nvme0', kind: 'error-status' })
    h.m.faults.add({ device: 'nvme0', kind: 'error-status', after: 1, status: NVME_SC_INVALID_NS | NVME_SC_DNR })
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: DATA, cdw12: 7 }).status).toBe(NVME_SC_INTERNAL)
    expect(h.cmd(1, flush).status).toBe(NVME_SC_INVALID_NS | NVME_SC_DNR)
    expect(h.cmd(1, flush).status).toBe(0)
    expect(h.dev.stats.bytesWritten).toBe(0)
    expect(h.errors).toEqual([]) // the test chose the status: no guest error
  })

  it('drop-irq loses an MSI-X message; spurious-irq sends an extra one', () => {
    const h = nvme()
    h.bringUp()
    const first = h.enableMsix()
    h.createPair(1, 16, { iv: 3 })
    const msis: number[] = []
    h.m.tracer.on('irq', (e) => (e.kind === 'msi' ? msis.push(e.hwirq - first) : undefined))
    h.m.faults.add({ device: 'nvme0', kind: 'drop-irq' })
    expect(h.cmd(1, flush).status).toBe(0) // the entry is there, the interrupt is not
    expect(msis).toEqual([])
    h.m.faults.add({ device: 'nvme0', kind: 'spurious-irq', delayNs: 100 })
    h.cmd(1, flush)
    expect(msis).toEqual([3, 3])
  })

  it('fail-dma on the data read fails the command (DATA_XFER_ERROR); on the second CQE write it is fatal', () => {
    const h = nvme()
    h.bringUp()
    h.createPair(1)
    h.m.faults.add({ device: 'nvme0', kind: 'fail-dma', after: 1 }) // the SQE fetch, then the data read
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: DATA, cdw12: 7 }).status).toBe(NVME_SC_DATA_XFER_ERROR)
    const cq = h.dev.queue('cq', 1)!
    const before = ramBytes(h.m, cq.base + 16, 16)
    h.m.faults.add({ device: 'nvme0', kind: 'fail-dma', after: 2 }) // SQE, CQE body, then the status word
    h.put(1, flush)
    h.ring(1)
    h.run()
    expect(h.r(NVME_REG_CSTS) & NVME_CSTS_CFS).toBe(NVME_CSTS_CFS)
    const after = ramBytes(h.m, cq.base + 16, 16)
    expect(after.subarray(14)).toEqual(before.subarray(14)) // the phase never flipped: the entry stays invisible
    expect(after.subarray(0, 14)).not.toEqual(before.subarray(0, 14))
  })
})

describe('nvme: determinism and the harness view', () => {
  it('the same program gives the same trace, byte for byte', () => {
    const trace = (): string[] => {
      const h = nvme()
      const rec = h.m.tracer.record()
      h.bringUp()
      h.enableMsix()
      h.createPair(1, 4, { iv: 1 })
      h.m.ram.write(DATA, pattern(8192), 0, 8192)
      for (let i = 0; i < 6; i++) h.cmd(1, { opcode: i % 2 === 0 ? NVME_CMD_WRITE : NVME_CMD_READ, nsid: 1, prp1: DATA, prp2: DATA + 4096, cdw10: i * 16, cdw12: 15 })
      rec.stop()
      return rec.lines()
    }
    const a = trace()
    expect(a.length).toBeGreaterThan(50)
    expect(trace()).toEqual(a)
  })

  it('reg() reads registers without side effects; queue() shows a queue; dumpQueues() lists every queue', () => {
    const h = nvme({ strict: true })
    h.bringUp()
    expect(h.dev.reg('CSTS')).toBe(NVME_CSTS_RDY)
    expect(h.dev.reg('CAP_HI')).toBe(1 << 5)
    expect(h.dev.reg('ASQ')).toBe(ASQ)
    expect(h.dev.reg('ACQ')).toBe(ACQ)
    expect(() => h.dev.reg('NOPE' as 'CC')).toThrow(/no register named NOPE/)
    h.createPair(1)
    expect(h.dev.queue('sq', 1)).toEqual({ base: IOQ + 0x2000, size: 16, head: 0, tail: 0, inflight: 0 })
    expect(h.dev.queue('cq', 9)).toBeUndefined()
    const dump = h.dev.dumpQueues().split('\n')
    expect(dump[0]).toBe('nvme0: CC 0x00460001 CSTS 0x00000001 (RDY) AQA 0x001f001f ASQ 0x40001000 ACQ 0x40002000 INTMS 0x00000000')
    expect(dump.slice(3)).toEqual([
      'SQ 0: base 0x40001000 size 32 head 2 tail 2 cq 0 pending 0 inflight 0',
      'SQ 1: base 0x40102000 size 16 head 0 tail 0 cq 1 pending 0 inflight 0',
      'CQ 0: base 0x40002000 size 32 head 2 tail 2 phase 1 iv 0 used 0 waiting 0',
      'CQ 1: base 0x40103000 size 16 head 0 tail 0 phase 1 iv 0 used 0 waiting 0',
    ])
    expect(h.errors).toEqual([])
  })
})
