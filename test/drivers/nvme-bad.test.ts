/**
 * The NVMe known-bad driver variants (test/fixtures/nvme-bad/): each replaces one step of the
 * reference driver (drivers/nvme/, through NvmeParams.paths) with a copy holding one classic bug.
 * Each is caught with the report kind of its bug on the platforms where that kind fires (and is
 * silent where DESIGN.md says it must be), the data goes wrong where real hardware would lose or
 * corrupt it, and the reference driver under the same scenario gets no report.
 *
 * Stacks are off (checks.stacks false) except in the runs that assert a stack line.
 */
import { describe, expect, it } from 'vitest'
import {
  blockUser, boot, fio, pci_get_drvdata, pci_register_driver, type BootOptions, type PciDriver, type Report, type System,
} from '../../kernel/index.js'
import { NvmeController } from '../../devices/index.js'
import { nvme_make_driver, type NvmeDev } from '../../drivers/nvme/nvme.js'
import { ARCHES } from '../helpers/matrix.js'
import { nvme_phase_zero_driver } from '../fixtures/nvme-bad/phase-zero.js'
import { nvme_phase_no_flip_driver } from '../fixtures/nvme-bad/phase-no-flip.js'
import { nvme_cqe_no_rmb_driver } from '../fixtures/nvme-bad/cqe-no-rmb.js'
import { nvme_cq_no_doorbell_driver } from '../fixtures/nvme-bad/cq-no-doorbell.js'
import { nvme_sq_tail_off_by_one_driver } from '../fixtures/nvme-bad/sq-tail-off-by-one.js'
import { nvme_db_stride_driver } from '../fixtures/nvme-bad/db-stride.js'
import { nvme_sq_before_cq_driver } from '../fixtures/nvme-bad/sq-before-cq.js'
import { nvme_no_write_cache_driver } from '../fixtures/nvme-bad/no-write-cache.js'
import { nvme_read_to_device_driver } from '../fixtures/nvme-bad/read-to-device.js'
import { nvme_unmap_skip_sync_driver } from '../fixtures/nvme-bad/unmap-skip-sync.js'
import { nvme_mdts_limits_driver, nvme_prp_list_unchained_driver } from '../fixtures/nvme-bad/prp-list-unchained.js'
import { nvme_cid_reuse_driver } from '../fixtures/nvme-bad/cid-reuse.js'

const FIX = 'test/fixtures/nvme-bad/'
type CtrlOpts = ConstructorParameters<typeof NvmeController>[0]

interface Rig {
  sys: System
  ctrl: NvmeController
  lines: string[]
  probe: number
}

/** A mini-NVMe with the driver registered; `lines` collects the driver's warnings and errors. */
async function rig(drv: PciDriver, opts: BootOptions = {}, ctrlOpts: CtrlOpts = {}): Promise<Rig> {
  const lines: string[] = []
  const log = { error: (_: object, m: string) => lines.push(m), warn: (_: object, m: string) => lines.push(m), info: () => undefined, debug: () => undefined }
  const ctrl = new NvmeController({ name: 'nvme0', sizeBytes: 32 << 20, ...ctrlOpts })
  const sys = boot({ log, arch: 'arm64', seed: 1, checks: { stacks: false }, ...opts, devices: [ctrl] })
  const probe = await sys.run(() => pci_register_driver(drv))
  return { sys, ctrl, lines, probe }
}

const ref = (): PciDriver => nvme_make_driver({ io_queues: 1, io_queue_depth: 8 })
const kinds = (sys: System): string[] => [...new Set(sys.reports.map((r) => r.kind))].sort()
const ofKind = (sys: System, kind: string): Report[] => sys.reports.filter((r) => r.kind === kind)
const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)

/** Some frame of some stack of the report is in the variant's file. */
function expectSomeFrameIn(r: Report, file: string): void {
  expect(r.stacks.some((s) => s.frames.some((f) => f.file === FIX + file)), `${r.kind}: a frame in ${file}`).toBe(true)
}

/** Writes `n` 4 KiB blocks one at a time and reads them back; the bytes read. */
async function writeRead(sys: System, n: number, timeoutNs = 600e9): Promise<{ ok: boolean; back: Uint8Array[] }> {
  const blk = blockUser(sys)
  const back: Uint8Array[] = []
  let ok = true
  for (let i = 0; i < n; i++) {
    const r = await blk.io('nvme0n1', { op: 'write', lba: i * 8, data: pattern(4096, i), timeoutNs })
    if (r.status !== 0) ok = false
  }
  for (let i = 0; i < n; i++) {
    const r = await blk.io('nvme0n1', { op: 'read', lba: i * 8, count: 8, timeoutNs })
    if (r.status !== 0) ok = false
    back.push(r.data ?? new Uint8Array(0))
  }
  return { ok, back }
}

describe('the reference driver under the variants\' scenarios', () => {
  for (const arch of ARCHES) {
    for (const iommu of ['strict', 'off'] as const) {
      it(`${arch} iommu=${iommu} swiotlb=force: 20 writes and reads on an 8-deep queue, fsync, power failure, unbind: silent`, async () => {
        const { sys, ctrl, probe } = await rig(ref(), { arch, iommu, swiotlb: 'force' })
        expect(probe).toBe(0)
        const { ok, back } = await writeRead(sys, 20)
        expect(ok).toBe(true)
        back.forEach((b, i) => expect(b).toEqual(pattern(4096, i)))
        await blockUser(sys).flush('nvme0n1')
        ctrl.powerFail()
        const peek = new Uint8Array(4096)
        ctrl.backend.read(0, peek, 0, 4096)
        expect(peek).toEqual(pattern(4096, 0))
        expect(sys.reports.map((x) => `${x.kind}: ${x.message}`)).toEqual([])
      })
    }
  }
  it('with DSTRD 1: bring-up and I/O, silent', async () => {
    const { sys, probe } = await rig(ref(), {}, { dstrd: 1 })
    expect(probe).toBe(0)
    expect((await writeRead(sys, 4)).ok).toBe(true)
    expect(sys.reports).toEqual([])
  })
})

describe('phase-zero: the I/O CQ expects phase 0 first', () => {
  it('every completion is missed: timeouts, resets, a hung I/O; no report', async () => {
    const { sys, ctrl, lines, probe } = await rig(nvme_phase_zero_driver())
    expect(probe).toBe(0)
    await expect(blockUser(sys).write('nvme0n1', 0, pattern(4096, 1), { timeoutNs: 200e9 })).rejects.toThrow()
    expect(ctrl.stats.writes).toBeGreaterThanOrEqual(1) // the controller did it, and posted it
    expect(lines).toContainEqual(expect.stringMatching(/timeout, aborting/))
    expect(lines).toContainEqual(expect.stringMatching(/resetting controller/))
    expect(sys.reports.map((x) => x.kind)).toEqual([])
  })
})

describe('phase-no-flip: cq_phase never flips', () => {
  for (const arch of ARCHES) {
    it(`${arch}: once the 8-entry CQ wraps, the head doorbell runs past the tail (device-error); the stale entries' command ids are refused (genctr, not in flight)`, async () => {
      const { sys, lines, probe } = await rig(nvme_phase_no_flip_driver(), { arch })
      expect(probe).toBe(0)
      const blk = blockUser(sys)
      for (let i = 0; i < 12; i++) await blk.io('nvme0n1', { op: 'write', lba: i * 8, data: pattern(4096, i), timeoutNs: 100e9 })
      expect(kinds(sys)).toEqual(['device-error'])
      expect(ofKind(sys, 'device-error')[0]!.message).toMatch(/CQ 1 head doorbell \d+ is beyond the tail/)
      // Without the command-id generation (nvme_cid) the stale entries would complete requests twice.
      expect(lines).toContainEqual(expect.stringMatching(/genctr mismatch|is not in flight/))
      // The second lap's real entries (phase 0) are never seen: the I/O waits for the timeout.
      expect(lines).toContainEqual(expect.stringMatching(/timeout, aborting/))
    })
  }
})

describe('cqe-no-rmb: the CQE body is read without dma_rmb after the phase', () => {
  for (const arch of ARCHES) {
    it(`${arch}: ${arch === 'x86_64' ? 'silent (TSO)' : 'missing-barrier'}`, async () => {
      const { sys, probe } = await rig(nvme_cqe_no_rmb_driver(), { arch, checks: {} })
      expect(probe).toBe(0)
      const { ok, back } = await writeRead(sys, 4)
      expect(ok).toBe(true)
      back.forEach((b, i) => expect(b).toEqual(pattern(4096, i)))
      if (arch === 'x86_64') expect(sys.reports).toEqual([])
      else {
        expect(kinds(sys)).toEqual(['missing-barrier'])
        expectSomeFrameIn(ofKind(sys, 'missing-barrier')[0]!, 'cqe-no-rmb.ts')
      }
    })
  }
})

describe('cqe-no-rmb under load: the early loads really happen (devices/machine/load-order.ts)', () => {
  // At queue depth 16 completions land while the handler is still in its loop: the command id of
  // an entry whose phase it just read may be loaded before the controller's write of the body
  // landed, so it is last lap's id — the wrong request, or none, completes and the right one times out.
  const run = async (drv: PciDriver, arch: (typeof ARCHES)[number]) => {
    const { sys, lines } = await rig(drv, { arch, checks: false })
    const r = await fio(sys, { disk: 'nvme0n1', rw: 'randrw', bs: 4096, iodepth: 16, numjobs: 1, size: 8 << 20, verify: true, seed: 1, numIos: 1500 })
    return { sys, lines, r }
  }
  it('arm64: stale command ids complete nothing; I/Os time out and fail (checks off: the machine does it, not the checker)', async () => {
    const { sys, lines, r } = await run(nvme_cqe_no_rmb_driver(), 'arm64')
    expect(sys.machine.loadOrder.staleLoads).toBeGreaterThan(0)
    expect(lines).toContainEqual(expect.stringMatching(/genctr mismatch|invalid id/))
    expect(r.errors).toBeGreaterThan(0)
  })
  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`${arch}: the reference driver (dma_rmb after the phase) under the same load: nothing early, every I/O right`, async () => {
      const { sys, lines, r } = await run(ref(), arch)
      expect(sys.machine.loadOrder.staleLoads).toBe(0)
      expect(lines).toEqual([])
      expect(r.errors).toBe(0)
    })
  }
  it('x86_64 (TSO): the variant is correct there, and nothing is early', async () => {
    const { sys, r } = await run(nvme_cqe_no_rmb_driver(), 'x86_64')
    expect(sys.machine.loadOrder.staleLoads).toBe(0)
    expect(r.errors).toBe(0)
  })
})

describe('cq-no-doorbell: the CQ head doorbell is never written', () => {
  it('the CQ fills, completions wait, I/O stalls into timeouts; no report', async () => {
    const { sys, ctrl, lines, probe } = await rig(nvme_cq_no_doorbell_driver())
    expect(probe).toBe(0)
    const t0 = sys.clock
    const { ok, back } = await writeRead(sys, 12, 200e9)
    // Each time the CQ is full the I/O stalls until the timeout resets the controller (twice 30 s),
    // after which the resent I/O goes through: correct data, minutes late.
    expect(ok).toBe(true)
    back.forEach((b, i) => expect(b).toEqual(pattern(4096, i)))
    expect(sys.clock - t0).toBeGreaterThan(60e9)
    expect(ctrl.stats.cqFullWaits).toBeGreaterThan(0)
    expect(lines).toContainEqual(expect.stringMatching(/timeout, reset controller/))
    expect(sys.reports.map((x) => x.kind)).toEqual([])
  })
})

describe('sq-tail-off-by-one: the SQ doorbell is the last entry, not the new tail', () => {
  it('a lone write is never fetched: it times out, the reset resends it to the same fate; no report', async () => {
    const { sys, ctrl, lines, probe } = await rig(nvme_sq_tail_off_by_one_driver())
    expect(probe).toBe(0)
    const before = ctrl.stats.writes
    await expect(blockUser(sys).write('nvme0n1', 0, pattern(4096, 1), { timeoutNs: 200e9 })).rejects.toThrow()
    expect(ctrl.stats.writes).toBe(before)
    expect(lines).toContainEqual(expect.stringMatching(/timeout, aborting/))
    expect(sys.reports.map((x) => x.kind)).toEqual([])
  })
})

describe('db-stride: doorbells 4 bytes apart whatever CAP.DSTRD says', () => {
  for (const arch of ARCHES) {
    it(`${arch} DSTRD 1: device-error, I/O never fetched`, async () => {
      const { sys, probe } = await rig(nvme_db_stride_driver(), { arch }, { dstrd: 1 })
      if (probe === 0) {
        await expect(blockUser(sys).write('nvme0n1', 0, pattern(4096, 1), { timeoutNs: 100e9 })).rejects.toThrow()
      }
      expect(kinds(sys)).toContain('device-error')
      expect(ofKind(sys, 'device-error').map((r) => r.message).join('\n')).toMatch(/not on the 8-byte doorbell stride/)
    })
  }
  it('DSTRD 0: the same code is right, and silent', async () => {
    const { sys, probe } = await rig(nvme_db_stride_driver(), {}, { dstrd: 0 })
    expect(probe).toBe(0)
    expect((await writeRead(sys, 4)).ok).toBe(true)
    expect(sys.reports).toEqual([])
  })
})

describe('sq-before-cq: Create I/O SQ before its CQ', () => {
  for (const arch of ARCHES) {
    it(`${arch}: device-error (INVALID_CQID), probe fails, nothing leaks`, async () => {
      const { sys, lines } = await rig(nvme_sq_before_cq_driver(), { arch })
      expect(sys.pciDevice('nvme0')!.driver).toBeNull()
      expect(lines).toContainEqual(expect.stringMatching(/probe failed/))
      expect(blockUser(sys).disks()).toEqual([])
      expect(kinds(sys)).toEqual(['device-error'])
      expect(ofKind(sys, 'device-error')[0]!.message).toMatch(/CQ_INVALID|INVALID_CQID/)
    })
  }
})

describe('no-write-cache: the volatile write cache is not declared', () => {
  for (const arch of ARCHES) {
    it(`${arch}: fsync'ed data is lost at a power failure; no report (a semantic bug)`, async () => {
      const { sys, ctrl, probe } = await rig(nvme_no_write_cache_driver(), { arch })
      expect(probe).toBe(0)
      expect(blockUser(sys).disks()[0]).toMatchObject({ writeCache: false, fua: false })
      const blk = blockUser(sys)
      const a = pattern(4096, 3)
      await blk.write('nvme0n1', 0, a)
      await blk.flush('nvme0n1') // the file system's fsync: nothing reaches the controller
      await blk.write('nvme0n1', 8, a, { fua: true }) // FUA dropped
      expect(ctrl.stats.flushes).toBe(0)
      expect(ctrl.powerFail()).toBeGreaterThan(0)
      const peek = new Uint8Array(4096)
      ctrl.backend.read(0, peek, 0, 4096)
      expect(peek.every((x) => x === 0)).toBe(true)
      ctrl.backend.read(8 * 512, peek, 0, 4096)
      expect(peek.every((x) => x === 0)).toBe(true)
      expect(sys.reports).toEqual([])
    })
  }
})

describe('read-to-device: read data mapped DMA_TO_DEVICE', () => {
  for (const arch of ARCHES) {
    it(`${arch} iommu=off: device-write-to-device-mapping`, async () => {
      const { sys, probe } = await rig(nvme_read_to_device_driver(), { arch, iommu: 'off', swiotlb: 'force', checks: {} })
      expect(probe).toBe(0)
      const { back } = await writeRead(sys, 2)
      expect(kinds(sys)).toEqual(['device-write-to-device-mapping'])
      expectSomeFrameIn(ofKind(sys, 'device-write-to-device-mapping')[0]!, 'read-to-device.ts')
      // swiotlb: the unmap of a TO_DEVICE mapping copies nothing back: the caller's pages keep
      // what they held before (here a page freed by the previous I/O), not block 0's data
      expect(back[0]).not.toEqual(pattern(4096, 0))
    })
    it(`${arch} iommu=strict: iommu-fault only, the read fails`, async () => {
      const { sys, probe } = await rig(nvme_read_to_device_driver(), { arch, iommu: 'strict' })
      expect(probe).toBe(0)
      const { ok } = await writeRead(sys, 2)
      expect(ok).toBe(false)
      expect(kinds(sys)).toEqual(['iommu-fault'])
    })
  }
})

describe('unmap-skip-sync: unmapped with DMA_ATTR_SKIP_CPU_SYNC, no sync', () => {
  for (const arch of ARCHES) {
    it(`${arch} swiotlb=force: the Identify data is stale (never copied out of the bounce buffer), probe fails; cpu-access-device-owned`, async () => {
      const { sys, lines } = await rig(nvme_unmap_skip_sync_driver(), { arch, swiotlb: 'force' })
      expect(sys.pciDevice('nvme0')!.driver).toBeNull()
      expect(lines).toContainEqual(expect.stringMatching(/unsupported LBA size 2\^0/))
      expect(kinds(sys)).toEqual(['cpu-access-device-owned'])
      expect(ofKind(sys, 'cpu-access-device-owned')[0]!.message).toMatch(/unmapped with DMA_ATTR_SKIP_CPU_SYNC while the device owned it/)
    })
  }
  it('x86_64 swiotlb=auto: right data (coherent, no bounce), still reported at the caller\'s read: the driver owes the sync', async () => {
    const { sys, probe } = await rig(nvme_unmap_skip_sync_driver(), { arch: 'x86_64', swiotlb: 'auto' })
    expect(probe).toBe(0)
    expect(blockUser(sys).disks()).toHaveLength(1)
    sys.clearReports() // the Identify reads at probe
    await blockUser(sys).write('nvme0n1', 0, pattern(4096, 1))
    expect(await blockUser(sys).read('nvme0n1', 0, 8)).toEqual(pattern(4096, 1))
    expect(kinds(sys)).toEqual(['cpu-access-device-owned'])
  })
})

describe('prp-list-unchained: a PRP list that runs past its page without a chain pointer', () => {
  /** echo 4096 > /sys/block/nvme0n1/queue/max_sectors_kb: requests as large as max_hw_sectors. */
  async function maxSectorsKb(sys: System): Promise<void> {
    await sys.run(() => {
      const q = (pci_get_drvdata(sys.pciDevice('nvme0')!) as NvmeDev).disk!.queue
      q.limits.max_sectors = q.limits.max_hw_sectors
    })
    expect(blockUser(sys).disks()[0]!.maxSectors).toBe(8192)
  }
  const big = Uint8Array.from({ length: 4 << 20 }, (_, i) => (i * 13 + 1) & 0xff)

  for (const arch of ARCHES) {
    for (const iommu of ['strict', 'off'] as const) {
      it(`${arch} iommu=${iommu}: a 4 MiB write (1023 list entries) fails: out-of-bounds (entries past the list page) and device-error (a data page read as a list)`, async () => {
        const stacks = arch === 'arm64' && iommu === 'strict'
        const { sys, ctrl, probe } = await rig(nvme_prp_list_unchained_driver(), { arch, iommu, ...(stacks ? { checks: {} } : {}) }, { mdts: 10 })
        expect(probe).toBe(0)
        await maxSectorsKb(sys)
        const w = await blockUser(sys).io('nvme0n1', { op: 'write', lba: 0, data: big, contiguous: true })
        expect(w.status).not.toBe(0)
        expect(ctrl.stats.bytesWritten).toBe(0)
        expect(kinds(sys)).toEqual(['device-error', 'out-of-bounds'])
        expect(ofKind(sys, 'device-error')[0]!.message).toMatch(/PRP list entry \d+ at 0x[0-9a-f]+: 0x[0-9a-f]+ is not page aligned/)
        if (stacks) expectSomeFrameIn(ofKind(sys, 'out-of-bounds')[0]!, 'prp-list-unchained.ts')
      })
    }
  }
  it('the reference PRPs with the same limits and I/O: right data, silent', async () => {
    const { sys, probe } = await rig(nvme_mdts_limits_driver(), {}, { mdts: 10 })
    expect(probe).toBe(0)
    await maxSectorsKb(sys)
    expect((await blockUser(sys).io('nvme0n1', { op: 'write', lba: 0, data: big, contiguous: true })).status).toBe(0)
    const r = await blockUser(sys).io('nvme0n1', { op: 'read', lba: 0, count: 8192, contiguous: true })
    expect(r.status).toBe(0)
    expect(Buffer.compare(Buffer.from(r.data!), Buffer.from(big))).toBe(0) // (toEqual on 4 MiB is slow)
    expect(sys.reports).toEqual([])
  })
})

describe('cid-reuse: two hardware queues (two tag spaces) on one SQ', () => {
  for (const arch of ARCHES) {
    it(`${arch}: device-error (CID conflict), then one request never completes`, async () => {
      const { sys, ctrl, lines, probe } = await rig(nvme_cid_reuse_driver(), { arch })
      expect(probe).toBe(0)
      const blk = blockUser(sys)
      const rs = await Promise.all([0, 1].map((q) =>
        blk.io('nvme0n1', { op: 'write', lba: q * 8, data: pattern(4096, q), queue: q, timeoutNs: 100e9 }).then((r) => r.status, () => 'hung')))
      expect(rs).toContain('hung')
      expect(ctrl.stats.cidConflicts).toBeGreaterThan(0)
      expect(kinds(sys)).toContain('device-error')
      expect(ofKind(sys, 'device-error')[0]!.message).toMatch(/reuses CID \d+ while a command with that CID is still in flight on this SQ: completed with CMDID_CONFLICT/)
      expect(lines).toContainEqual(expect.stringMatching(/timeout, reset controller/))
    })
  }
  it('the reference on the same two queues: silent', async () => {
    const { sys, probe } = await rig(nvme_make_driver({ io_queues: 2 }))
    expect(probe).toBe(0)
    const blk = blockUser(sys)
    await Promise.all([0, 1].map((q) => blk.write('nvme0n1', q * 8, pattern(4096, q), { queue: q })))
    expect(await blk.read('nvme0n1', 8, 8)).toEqual(pattern(4096, 1))
    expect(sys.reports).toEqual([])
  })
})
