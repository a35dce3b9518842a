/**
 * The DMA-attack demo (docs/security.md): a malicious PCI device (devices/evil-dma.ts) behind a
 * benign-looking driver (test/fixtures/statdrv.ts) tries
 *   (a) to read a kernel secret it was never given,
 *   (b) to overwrite a function pointer on the same page as its DMA buffer (sub-page exposure),
 *   (c) to use a buffer after the driver unmapped it,
 * with the IOMMU off, strict and lazy. The tests assert the data consequences and the reports.
 * x86_64 (DMA coherent: device accesses snoop the CPU cache), where such attacks are classic.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { EvilDma, MEMTX_ACCESS_ERROR, MEMTX_OK } from '../../devices/index.js'
import {
  boot, DMA_FROM_DEVICE, dma_map_single, dma_unmap_single, HZ, kfree, kmalloc, mem_read_bytes, mem_write_bytes,
  pci_register_driver, virt_to_phys,
  type PciDev, type System,
} from '../../kernel/index.js'
import { IOVA_FQ_TIMEOUT_MS } from '../../kernel/dma/iova.js'
import {
  STATDRV_COMPLETE_FN, STATDRV_COMPLETE_OFF, STATDRV_STATUS_OFF, statdrv_collect, statdrv_driver, statdrv_oneshot,
  statdrv_options, statdrvs, type Statdrv,
} from '../fixtures/statdrv.js'

type Mode = 'off' | 'strict' | 'lazy'
const MODES: readonly Mode[] = ['off', 'strict', 'lazy']

const text = (s: string): Uint8Array => new TextEncoder().encode(s.padEnd(32, '.'))
const SECRET = text('TOP SECRET: kernel key 0xC0FFEE')
const SESSION = text('session key reused after unmap')
/** Where the attacker wants `complete` to point (its own code, say). */
const EVIL_FN = 0x4141_4141_4141_4141n
const u64le = (v: bigint): Uint8Array => {
  const b = new Uint8Array(8)
  new DataView(b.buffer).setBigUint64(0, v, true)
  return b
}
const same = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i])

interface Rig {
  sys: System
  evil: EvilDma
  pdev: PciDev
  sd: Statdrv
}

async function rig(iommu: Mode, layout: 'shared' | 'separate' = 'shared'): Promise<Rig> {
  statdrvs.clear()
  statdrv_options.layout = layout
  const evil = new EvilDma()
  const sys = boot({ arch: 'x86_64', iommu, log: 'silent', devices: [evil] })
  await sys.run(() => pci_register_driver(statdrv_driver))
  const [pdev, sd] = [...statdrvs][0]!
  return { sys, evil, pdev, sd }
}

const kinds = (sys: System): string[] => [...new Set(sys.reports.map((r) => r.kind))]

afterEach(() => {
  statdrv_options.layout = 'shared'
  statdrvs.clear()
})

describe('(a) reading kernel memory the device was never given', () => {
  // The attacker knows where the secret lives (a leaked kernel pointer, a fixed layout): it asks
  // for that physical address, and for the IOVA pages next to the one buffer it was given.
  async function attack(mode: Mode) {
    const r = await rig(mode)
    const secretPa = await r.sys.run(() => {
      const p = kmalloc(64)!
      mem_write_bytes(p, SECRET)
      return virt_to_phys(p)
    })
    const st = await r.sys.run(() => statdrv_collect(r.pdev))
    expect(st).toBeInstanceOf(Uint8Array)
    const own = r.evil.seen[0]!
    const tries = [r.evil.tryRead(secretPa, SECRET.length), r.evil.tryRead(own - 4096, 64), r.evil.tryRead(own + 4096, 64)]
    return { ...r, tries, leaked: same(tries[0]!.bytes, SECRET) }
  }

  it('IOMMU off: the device reads the secret at its physical address (reported as a device access to CPU-owned memory)', async () => {
    const { sys, tries, leaked } = await attack('off')
    expect(tries[0]!.result).toBe(MEMTX_OK)
    expect(leaked).toBe(true)
    expect(kinds(sys)).toEqual(['device-access-cpu-owned'])
  })

  for (const mode of ['strict', 'lazy'] as const) {
    it(`IOMMU ${mode}: every attempt faults, nothing leaks`, async () => {
      const { sys, tries, leaked } = await attack(mode)
      expect(tries.map((t) => t.result)).toEqual([MEMTX_ACCESS_ERROR, MEMTX_ACCESS_ERROR, MEMTX_ACCESS_ERROR])
      expect(leaked).toBe(false)
      expect(tries[0]!.bytes.every((b) => b === 0)).toBe(true)
      expect(kinds(sys)).toEqual(['iommu-fault'])
      expect(sys.reports.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(3)
      expect(sys.machine.iommuFaults.map((f) => f.reason)).toEqual(['unmapped', 'unmapped', 'unmapped'])
    })
  }
})

describe('(b) overwriting a function pointer that shares a page with a DMA buffer', () => {
  // The driver maps 64 bytes at offset 256 of its struct; `complete` is at offset 0 of the same
  // struct, same page. The attacker knows the layout (it is in the driver's source).
  async function attack(mode: Mode, layout: 'shared' | 'separate') {
    const r = await rig(mode, layout)
    expect(await r.sys.run(() => statdrv_collect(r.pdev))).toBeInstanceOf(Uint8Array)
    expect(r.sd.calls).toEqual([STATDRV_COMPLETE_FN])
    const statusBus = r.evil.seen[0]!
    const w = r.evil.tryWrite(statusBus - (STATDRV_STATUS_OFF - STATDRV_COMPLETE_OFF), u64le(EVIL_FN))
    expect(await r.sys.run(() => statdrv_collect(r.pdev))).toBeInstanceOf(Uint8Array)
    return { ...r, w, called: r.sd.calls[1] }
  }

  for (const mode of MODES) {
    it(`IOMMU ${mode}: the write lands and the driver calls the attacker's pointer (the IOMMU maps whole pages)`, async () => {
      const { sys, w, called } = await attack(mode, 'shared')
      expect(w.result).toBe(MEMTX_OK)
      expect(called).toBe(EVIL_FN)
      // The sanitizer sees a device write outside any mapping: CPU-owned memory.
      expect(kinds(sys)).toEqual(['device-access-cpu-owned'])
      expect(sys.reports).toHaveLength(1)
      expect(sys.machine.iommuFaults).toEqual([])
    })
  }

  for (const mode of ['strict', 'lazy'] as const) {
    it(`IOMMU ${mode}, status buffer in its own page-sized allocation: the write faults and the pointer is intact`, async () => {
      const { sys, w, called } = await attack(mode, 'separate')
      expect(w.result).toBe(MEMTX_ACCESS_ERROR)
      expect(called).toBe(STATDRV_COMPLETE_FN)
      expect(kinds(sys)).toEqual(['iommu-fault'])
    })
  }

  it('IOMMU off, separate allocation: nothing stops the device (it writes wherever it likes)', async () => {
    const { w, called } = await attack('off', 'separate')
    expect(w.result).toBe(MEMTX_OK)
    // Without the IOMMU the bus address is physical: statusBus - 256 is whatever precedes the
    // page-aligned buffer — not `complete`, but the attacker could aim at priv just as well.
    expect(called).toBe(STATDRV_COMPLETE_FN)
  })
})

describe('(c) using a buffer after the driver unmapped it', () => {
  // The driver mapped a 4 KiB receive buffer DMA_FROM_DEVICE, let the device fill it, unmapped it
  // and then put kernel data (a session key) in it. The device keeps writing to the old address,
  // every 100 µs for 20 ms.
  const POLL_NS = 100_000
  const POLLS = 200
  const GARBAGE = text('attacker bytes over kernel data')

  async function attack(mode: Mode) {
    const r = await rig(mode)
    const res = await r.sys.run(() => statdrv_oneshot(r.pdev, SESSION))
    if (typeof res === 'number') throw new Error(`statdrv_oneshot: ${res}`)
    // A read through the old address too: the mapping was write-only for the device.
    const read = r.evil.tryRead(res.dma, SESSION.length)
    const log = r.evil.pollWrite(res.dma, GARBAGE, POLL_NS, POLLS)
    await r.sys.runFor(POLLS * POLL_NS + 1e6)
    expect(log).toHaveLength(POLLS)
    const after = await r.sys.run(() => mem_read_bytes(res.buf, SESSION.length))
    const ok = log.filter((a) => a.result === MEMTX_OK)
    return { ...r, res, read, log, ok, corrupted: same(after, GARBAGE), intact: same(after, SESSION) }
  }

  it('IOMMU off: the device overwrites the reused buffer for as long as it likes', async () => {
    const { sys, read, ok, corrupted } = await attack('off')
    expect(read.result).toBe(MEMTX_OK)
    expect(same(read.bytes, SESSION)).toBe(true)
    expect(ok).toHaveLength(POLLS)
    expect(corrupted).toBe(true)
    expect(kinds(sys)).toEqual(['device-access-cpu-owned'])
  })

  it('IOMMU strict: the unmap invalidated the IOTLB, every access faults, the kernel data is intact', async () => {
    const { sys, read, ok, intact } = await attack('strict')
    expect(read.result).toBe(MEMTX_ACCESS_ERROR)
    expect(ok).toHaveLength(0)
    expect(intact).toBe(true)
    expect(kinds(sys)).toEqual(['iommu-fault'])
    expect(sys.reports.reduce((n, r) => n + (r.count ?? 1), 0)).toBe(POLLS + 1)
    expect(sys.machine.iommuFaults.every((f) => f.reason === 'unmapped')).toBe(true)
  })

  it('IOMMU lazy: the device writes through the stale IOTLB entry until the flush queue is flushed', async () => {
    const { sys, res, read, log, ok, corrupted, pdev } = await attack('lazy')
    // The stale entry keeps the mapping's permissions: write-only, so the read is refused.
    expect(read.result).toBe(MEMTX_ACCESS_ERROR)
    expect(sys.machine.iommuFaults[0]!.reason).toBe('permission')
    const fq = sys.dma.flushQueue(pdev.dev)!
    expect(fq.flushes).toBe(1)
    expect(fq.fullFlushes).toBe(0)
    expect(fq.pending).toBe(0)
    // Every write before the flush landed, every one after it faulted.
    const flushAt = fq.lastFlushAt
    expect(log.every((a) => (a.at < flushAt) === (a.result === MEMTX_OK))).toBe(true)
    expect(ok.length).toBeGreaterThan(0)
    expect(corrupted).toBe(true)
    // The window, in virtual time, from the unmap to the flush. The flush timer is
    // jiffies + msecs_to_jiffies(IOVA_FQ_TIMEOUT) at HZ=250: 3 jiffies (12 ms) from the jiffy of
    // the unmap, so the window is more than 8 and at most 12 ms.
    const windowNs = flushAt - res.unmappedAt
    const jiffyNs = 1e9 / HZ
    const timeoutNs = Math.ceil((IOVA_FQ_TIMEOUT_MS * 1e6) / jiffyNs) * jiffyNs
    expect(windowNs).toBeGreaterThan(timeoutNs - jiffyNs)
    expect(windowNs).toBeLessThanOrEqual(timeoutNs)
    expect(ok.length).toBe(Math.ceil((flushAt - log[0]!.at) / POLL_NS))
    expect(ok.at(-1)!.at - res.unmappedAt).toBeLessThan(windowNs)
    // Reported: the landed writes as ownership violations (through a stale IOTLB entry), the rest as faults.
    expect(kinds(sys).sort()).toEqual(['device-access-cpu-owned', 'iommu-fault'])
    const stale = sys.reports.find((r) => r.kind === 'device-access-cpu-owned')!
    expect(stale.message).toContain('stale IOTLB entry')
  })

  it('IOMMU lazy: the unmapped IOVA is not handed out again before the flush; strict reuses it at once', async () => {
    for (const mode of ['strict', 'lazy'] as const) {
      const r = await rig(mode)
      const res = await r.sys.run(() => statdrv_oneshot(r.pdev, SESSION))
      if (typeof res === 'number') throw new Error(`statdrv_oneshot: ${res}`)
      const again = async () => r.sys.run(() => {
        const p = kmalloc(4096)!
        const d = dma_map_single(r.pdev.dev, p, 4096, DMA_FROM_DEVICE)
        dma_unmap_single(r.pdev.dev, d, 4096, DMA_FROM_DEVICE)
        kfree(p)
        return d
      })
      if (mode === 'strict') expect(await again()).toBe(res.dma)
      else {
        expect(await again()).not.toBe(res.dma)
        await r.sys.runFor(13e6)
        expect(r.sys.dma.flushQueue(r.pdev.dev)!.flushes).toBe(1)
        // Both queued IOVAs are free again: the next two mappings get them back.
        const two = await r.sys.run(() => [0, 1].map(() => dma_map_single(r.pdev.dev, kmalloc(4096)!, 4096, DMA_FROM_DEVICE)))
        expect(two).toContain(res.dma)
      }
    }
  })
})
