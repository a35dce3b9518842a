/**
 * The copy-engine reference driver (drivers/misc/copy-engine.ts) over the platform matrix, its
 * error paths, and its known-bad variants (test/fixtures/copy-engine-bad/), each caught with the
 * report kind of its bug.
 */
import { afterEach, describe, expect, it } from 'vitest'
import {
  boot, EINVAL, EIO, ETIMEDOUT, kfree, kmalloc, mem_read_bytes, mem_write_bytes, memset, msleep,
  pci_register_driver, sg_alloc_table, sg_free_table, sg_set_buf, for_each_sg,
  type BootOptions, type CpuAddr, type PciDev, type PciDriver, type SgTable, type System,
} from '../../kernel/index.js'
import * as kernel from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import {
  CE_TIMEOUT_MS, ce_copy, ce_copy_sg, ce_driver, ce_from_sram_pio, ce_get, ce_params, ce_to_sram_dma, ce_to_sram_pio,
} from '../../drivers/misc/copy-engine.js'
import { ce_copy_peek } from '../fixtures/copy-engine-bad/missing-sync.js'
import { ce_copy_unchecked } from '../fixtures/copy-engine-bad/map-error-unchecked.js'
import { ce_copy_early_unmap } from '../fixtures/copy-engine-bad/unmap-before-done.js'
import { ce_nomaster_driver } from '../fixtures/copy-engine-bad/no-bus-master.js'
import { ce_copy_chain_relaxed } from '../fixtures/copy-engine-bad/no-barrier.js'
import { LAZY_PLATFORMS, PLATFORMS, optionsFor, type Platform } from '../helpers/matrix.js'

const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed * 13 + (i >> 8)) & 0xff)
const kinds = (sys: System) => [...new Set(sys.reports.map((r) => r.kind))].sort()

/** Boots a system with copy engines and binds drv to them; returns the system and the first pdev. */
async function setup(opts: BootOptions, drv: PciDriver = ce_driver, n = 1): Promise<{ sys: System; pdev: PciDev; hw: CopyEngine[] }> {
  const hw = Array.from({ length: n }, (_, i) => new CopyEngine({ name: `ce${i}` }))
  const sys = boot({ log: 'silent', ...opts, devices: hw })
  expect(await sys.run(() => pci_register_driver(drv))).toBe(0)
  return { sys, pdev: sys.pciDevice('ce0')!, hw }
}

/** A buffer holding bytes (kmalloc'ed, written by the CPU). */
function buffer(bytes: Uint8Array): CpuAddr {
  const p = kmalloc(bytes.length)!
  mem_write_bytes(p, bytes)
  return p
}

/** An sg table over fresh kmalloc buffers of the given sizes, filled with fill(i) bytes. */
function sgTable(sizes: number[], fill: (n: number, i: number) => Uint8Array): { table: SgTable; bufs: CpuAddr[] } {
  const table: SgTable = {}
  expect(sg_alloc_table(table, sizes.length)).toBe(0)
  const bufs = sizes.map((n, i) => buffer(fill(n, i)))
  let i = 0
  for (const sg of for_each_sg(table.sgl, sizes.length)) {
    sg_set_buf(sg, bufs[i]!, sizes[i]!)
    i++
  }
  return { table, bufs }
}

/** A logger that keeps 'level: message' lines. */
function capture(): { lines: string[]; log: NonNullable<BootOptions['log']> } {
  const lines: string[] = []
  const at = (level: string) => (_obj: object, msg: string) => void lines.push(`${level}: ${msg}`)
  return { lines, log: { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') } }
}

afterEach(() => {
  ce_params.use_msix = true
})

describe('the reference driver is clean and moves the right bytes on every platform', () => {
  it.each([...PLATFORMS, ...LAZY_PLATFORMS].map((p) => [p.label, p] as const))('%s', async (_label, p: Platform) => {
    const { sys, pdev, hw } = await setup(optionsFor(p))
    await sys.run(async () => {
      // DMA: MEM->MEM; 300,000 bytes is split at the 256 KiB swiotlb limit under swiotlb=force
      for (const n of [100, 65536, 300_000]) {
        const want = pattern(n, n)
        const src = buffer(want)
        const dst = kmalloc(n)!
        memset(dst, 0xaa, n) // the old contents sit dirty in the cache while the device writes
        expect(await ce_copy(pdev, dst, src, n)).toBe(0)
        expect(mem_read_bytes(dst, n)).toEqual(want)
        kfree(src)
        kfree(dst)
      }
      // SG: 3 source segments into 2 destination segments (16 KiB)
      const src = sgTable([3000, 5000, 8384], (n, i) => pattern(n, 10 + i))
      const dst = sgTable([8192, 8192], (n) => new Uint8Array(n).fill(0x55))
      expect(await ce_copy_sg(pdev, dst.table.sgl!, 2, src.table.sgl!, 3)).toBe(0)
      const want = new Uint8Array([...pattern(3000, 10), ...pattern(5000, 11), ...pattern(8384, 12)])
      expect(new Uint8Array([...mem_read_bytes(dst.bufs[0]!, 8192), ...mem_read_bytes(dst.bufs[1]!, 8192)])).toEqual(want)
      for (const t of [src, dst]) {
        sg_free_table(t.table)
        for (const b of t.bufs) kfree(b)
      }
      // PIO into SRAM and back (odd length: a zero-padded tail word), and DMA into SRAM
      const bytes = pattern(1001, 3)
      const a = buffer(bytes)
      const back = kmalloc(1001)!
      expect(await ce_to_sram_pio(pdev, a, 1001, 8)).toBe(0)
      expect(hw[0]!.sram.subarray(8, 8 + 1001)).toEqual(bytes)
      expect(await ce_from_sram_pio(pdev, back, 1001, 8)).toBe(0)
      expect(mem_read_bytes(back, 1001)).toEqual(bytes)
      expect(await ce_to_sram_dma(pdev, a, 1001, 4096)).toBe(0)
      expect(hw[0]!.sram.subarray(4096, 4096 + 1001)).toEqual(bytes)
      kfree(a)
      kfree(back)
    })
    await sys.unbind(pdev)
    expect(sys).toHaveNoDmaReports()
    expect(hw[0]!.stats.transfers).toBe(5 + (p.swiotlb === 'force' ? 1 : 0))
  })
})

describe('interrupts and error paths', () => {
  it('on a shared INTx line the idle engine declines (IRQ_NONE) and the busy one completes', async () => {
    ce_params.use_msix = false
    const { sys, hw } = await setup({ arch: 'arm64' }, ce_driver, 5)
    const [p0, p4] = [sys.pciDevice('ce0')!, sys.pciDevice('ce4')!]
    expect(p0.msix).toBe(false)
    expect(hw[0]!.intxLine).toBe(hw[4]!.intxLine)
    const want = pattern(8192)
    const got = await sys.run(async () => {
      const dst = kmalloc(8192)!
      for (let i = 0; i < 3; i++) expect(await ce_copy(p4, dst, buffer(want), 8192)).toBe(0)
      return mem_read_bytes(dst, 8192)
    })
    expect(got).toEqual(want)
    expect(ce_get(p0).done.done).toBe(0) // ce0's handler never claimed ce4's interrupts
    for (const p of sys.pciDevices) await sys.unbind(p)
    expect(sys).toHaveNoDmaReports()
  })

  it('a lost interrupt is recovered by polling STATUS at the timeout', async () => {
    const logged = capture()
    const { sys, pdev } = await setup({ log: logged.log })
    sys.machine.faults.add({ device: 'ce0', kind: 'drop-irq' })
    const want = pattern(4096)
    const r = await sys.run(async () => {
      const dst = kmalloc(4096)!
      const t0 = sys.clock
      const rc = await ce_copy(pdev, dst, buffer(want), 4096)
      return { rc, waited: sys.clock - t0, got: mem_read_bytes(dst, 4096) }
    })
    expect(r.rc).toBe(0)
    expect(r.waited).toBeGreaterThanOrEqual(CE_TIMEOUT_MS * 1e6)
    expect(r.got).toEqual(want)
    expect(logged.lines).toEqual(['warn: ce0: lost interrupt (STATUS 0x2)'])
    expect(sys).toHaveNoDmaReports()
  })

  it('an engine error is -EIO with ERR_CODE recorded and logged; the next transfer works', async () => {
    const logged = capture()
    const { sys, pdev } = await setup({ log: logged.log })
    sys.machine.faults.add({ device: 'ce0', kind: 'error-status', status: 0x42 })
    const r = await sys.run(async () => {
      const src = buffer(pattern(512))
      const dst = kmalloc(512)!
      const first = await ce_copy(pdev, dst, src, 512)
      const code = ce_get(pdev).err_code
      return { first, code, second: await ce_copy(pdev, dst, src, 512), got: mem_read_bytes(dst, 512) }
    })
    expect(r).toEqual({ first: -EIO, code: 0x42, second: 0, got: pattern(512) })
    expect(logged.lines).toEqual(['error: ce0: transfer failed: ERR_CODE 0x42'])
    expect(sys).toHaveNoDmaReports()
  })

  it('a hung engine times out and is fenced off the bus before its buffers are unmapped', async () => {
    const logged = capture()
    const { sys, pdev } = await setup({ iommu: 'off', log: logged.log })
    sys.machine.faults.add({ device: 'ce0', kind: 'delay-completion', delayNs: 2e9 })
    const r = await sys.run(async () => {
      const src = buffer(pattern(4096))
      const dst = kmalloc(4096)!
      memset(dst, 0xaa, 4096)
      const rc = await ce_copy(pdev, dst, src, 4096)
      await msleep(3000) // the engine wakes up late and tries its DMA
      return { rc, later: await ce_copy(pdev, dst, src, 4096), got: mem_read_bytes(dst, 16) }
    })
    expect(r).toEqual({ rc: -ETIMEDOUT, later: -EIO, got: new Uint8Array(16).fill(0xaa) })
    expect(logged.lines.filter((l) => l.startsWith('error: ce0:'))).toEqual([`error: ce0: transfer timed out after ${CE_TIMEOUT_MS} ms; fencing the engine off the bus`])
    // The late DMA is aborted at the bus (reported as such): it never reaches unmapped memory.
    expect(kinds(sys).filter((k) => k !== 'bus-master-disabled')).toEqual([])
  })

  it('bad arguments are -EINVAL', async () => {
    const { sys, pdev } = await setup({})
    const rcs = await sys.run(async () => {
      const a = buffer(pattern(64))
      const sg1 = sgTable([64], (n) => pattern(n))
      const sg2 = sgTable([32], (n) => pattern(n))
      return [
        await ce_copy(pdev, a, a, 0),
        await ce_copy_sg(pdev, sg2.table.sgl!, 1, sg1.table.sgl!, 1),
        await ce_to_sram_pio(pdev, a, 64, (4 << 20) - 32),
        await ce_to_sram_dma(pdev, a, 64, 2),
      ]
    })
    expect(rcs).toEqual([-EINVAL, -EINVAL, -EINVAL, -EINVAL])
    expect(sys).toHaveNoDmaReports()
  })
})

describe('the kernel API a driver like this one needs', () => {
  // DESIGN.md §5 ("Driver model and time"): dev_err / dev_warn / dev_info / dev_dbg / pr_* go to
  // the system's logger. The reference driver would dev_err its timeouts and engine errors; it
  // cannot while the kernel does not export them.
  it('dev_err, dev_warn, dev_info, dev_dbg, pr_err, pr_warn and pr_info log to the system logger', async () => {
    const seen: string[] = []
    const log = (level: string) => (_obj: object, msg: string) => void seen.push(`${level}: ${msg}`)
    const sys = boot({ log: { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug') }, devices: [new CopyEngine()] })
    const api = kernel as unknown as Record<string, unknown>
    const missing = ['dev_err', 'dev_warn', 'dev_info', 'dev_dbg', 'pr_err', 'pr_warn', 'pr_info'].filter((f) => typeof api[f] !== 'function')
    expect(missing).toEqual([])
    await sys.run(() => {
      const dev = sys.pciDevice('ce0')!.dev
      ;(api['dev_err'] as (d: unknown, fmt: string) => void)(dev, 'transfer timed out')
      ;(api['pr_info'] as (fmt: string) => void)('hello')
    })
    expect(seen.some((l) => l.startsWith('error: ') && l.includes('transfer timed out'))).toBe(true)
    expect(seen.some((l) => l.startsWith('info: ') && l.includes('hello'))).toBe(true)
  })
})

describe('known-bad variants are caught with the right report kind', () => {
  /** Runs one copy of n bytes (dst pre-filled with 0xaa) and returns what fn returned. */
  async function copyWith<T>(opts: BootOptions, fn: (pdev: PciDev, dst: CpuAddr, src: CpuAddr, n: number) => Promise<T>, drv = ce_driver, n = 16384) {
    const { sys, pdev } = await setup(opts, drv)
    const want = pattern(n)
    const r = await sys.run(async () => {
      const src = buffer(want)
      const dst = kmalloc(n)!
      memset(dst, 0xaa, n)
      const out = await fn(pdev, dst, src, n)
      return { out, ok: mem_read_bytes(dst, n).every((v, i) => v === want[i]) }
    })
    await sys.unbind(pdev)
    return { sys, ...r, want }
  }

  it.each(PLATFORMS.filter((p) => p.seed === 1).map((p) => [p.label, p] as const))('missing sync: %s', async (_label, p: Platform) => {
    const { sys, out, want } = await copyWith(optionsFor(p), ce_copy_peek)
    expect(out.rc).toBe(0)
    expect(kinds(sys)).toEqual(['cpu-access-device-owned'])
    expect(sys).toHaveReport('cpu-access-device-owned', { file: 'copy-engine-bad/missing-sync.ts', line: 26, device: 'ce0', count: 1 })
    const stale = p.arch !== 'x86_64' || p.swiotlb === 'force'
    expect(out.seen).toEqual(stale ? new Uint8Array(64).fill(0xaa) : want.subarray(0, 64))
  })

  it.each(PLATFORMS.filter((p) => p.seed === 1).map((p) => [p.label, p] as const))('mapping error not checked: %s', async (_label, p: Platform) => {
    const { sys, out, ok } = await copyWith(optionsFor(p), ce_copy_unchecked)
    expect({ out, ok }).toEqual({ out: 0, ok: true })
    expect(kinds(sys)).toEqual(['map-error-unchecked'])
  })

  it.each(PLATFORMS.filter((p) => p.seed === 1).map((p) => [p.label, p] as const))('unmap before DONE: %s', async (_label, p: Platform) => {
    const { sys, out } = await copyWith(optionsFor(p), ce_copy_early_unmap)
    if (p.iommu === 'strict') {
      // The IOMMU blocks the late DMA: nothing is copied and the engine reports ERR.
      expect(out).toBe(-EIO)
      expect(kinds(sys)).toEqual(['iommu-fault'])
    } else expect(kinds(sys)).toEqual(['device-access-cpu-owned'])
  })

  it.each(PLATFORMS.filter((p) => p.seed === 1).map((p) => [p.label, p] as const))('no bus master: %s', async (_label, p: Platform) => {
    const { sys, out, ok } = await copyWith(optionsFor(p), ce_copy, ce_nomaster_driver)
    expect({ out, ok }).toEqual({ out: -EIO, ok: false })
    expect(kinds(sys)).toEqual(['bus-master-disabled'])
  })

  it.each(PLATFORMS.filter((p) => p.arch !== 'x86_64').map((p) => [p.label, p] as const))('no barrier before START: %s', async (_label, p: Platform) => {
    const bad = await copyWith(optionsFor(p), ce_copy_chain_relaxed)
    expect(kinds(bad.sys)).toContain('missing-barrier')
    // The same four-descriptor chain through the reference driver (dma_wmb + writel) is silent.
    const { sys, pdev } = await setup(optionsFor(p))
    const ok = await sys.run(async () => {
      const src = sgTable([4096, 4096, 4096, 4096], (n, i) => pattern(n, i))
      const dst = sgTable([4096, 4096, 4096, 4096], (n) => new Uint8Array(n))
      expect(await ce_copy_sg(pdev, dst.table.sgl!, 4, src.table.sgl!, 4)).toBe(0)
      return dst.bufs.every((b, i) => {
        const want = pattern(4096, i) // computed once per buffer, not once per byte
        return mem_read_bytes(b, 4096).every((v, j) => v === want[j])
      })
    })
    expect(ok).toBe(true)
    expect(sys).toHaveNoDmaReports()
  })
})
