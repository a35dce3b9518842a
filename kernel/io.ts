/**
 * MMIO accessors and barriers (include/asm-generic/io.h, arch/arm64/include/asm/io.h,
 * arch/arm64/include/asm/barrier.h). An `IoAddr` comes from pci_iomap; each access reaches the
 * device's registers at once (reads are non-posted round trips, writes are posted) and costs the
 * cost model's mmioReadNs / mmioWriteNs of CPU time.
 *
 * Ordering (memory-barriers.txt, "KERNEL I/O BARRIER EFFECTS"): a non-relaxed writeX() first
 * drains the CPU's store buffer — every earlier store to coherent memory reaches memory before the
 * device sees the MMIO write — and writeX_relaxed() does not; a non-relaxed readX() orders later
 * loads after it. wmb/dma_wmb drain the store buffer and order stores, rmb/dma_rmb order loads,
 * mb/dma_mb both; smp_* barriers order nothing towards a device. kernel/dma/ordering.ts turns
 * what a driver relies on without such a barrier into `missing-barrier` reports.
 */

import { badArg } from './mm/memory.js'
import { hex } from './mm/layout.js'
import { IOREMAP_BASE, pciFunction } from './pci/pci.js'
import { current, type Task } from './sched/current.js'
import type { System } from './system.js'
import type { IoAddr } from './types.js'
import type { PciFunction } from '../devices/index.js'
import type { Device } from './base/device.js'

function sysOf(t: Task): System {
  return t.sys as System
}

/** A decoded ioremapped region: the BAR it maps and the function behind it. */
interface IoRegion {
  readonly fn: PciFunction
  readonly dev: Device
  readonly bar: number
  /** Bus address of the BAR's start, and the mapped length. */
  readonly base: number
  readonly len: number
  readonly map: object
}

/**
 * Decodes an IoAddr to the region it lies in (the offset is `addr - IOREMAP_BASE - base`). The
 * last region is cached per system (pci_iomap and pci_iounmap drop it) and revalidated on each
 * use: the BAR must still be at the same bus address.
 */
function decode(t: Task, fn: string, addr: unknown, size: number): IoRegion {
  if (typeof addr !== 'number' || !Number.isInteger(addr)) badArg(t, fn, 'addr', `must be an IoAddr from pci_iomap, got ${typeof addr}`)
  const sys = sysOf(t)
  const bus = addr - IOREMAP_BASE
  const c = sys.ioRegionCache as IoRegion | null
  if (c !== null && bus >= c.base && bus + size <= c.base + c.len && c.fn.bars[c.bar]!.base === c.base) return c
  const hit = sys.machine.pci.barAt(bus)
  const base = hit === undefined ? 0 : bus - hit.off
  const map = hit === undefined ? undefined : sys.iomaps.get(base)
  if (hit === undefined || map === undefined || hit.off + size > map.len) {
    return sys.oops(t, `Unable to handle kernel paging request at virtual address ${hex(addr)} in ${fn}(): not an ioremapped (pci_iomap) address`)
  }
  const r: IoRegion = { fn: pciFunction(map.pdev), dev: map.pdev.dev, bar: hit.bar, base, len: map.len, map }
  sys.ioRegionCache = r
  return r
}

function read(fnName: string, addr: IoAddr, size: 1 | 2 | 4 | 8, relaxed = false): number | bigint {
  const t = current(fnName)
  const r = decode(t, fnName, addr, size)
  const sys = sysOf(t)
  sys.cpuWork(sys.costs.mmioReadNs)
  const v = r.fn.mmioRead(r.bar, addr - IOREMAP_BASE - r.base, size)
  // readX() completes before any later load from memory begins.
  if (!relaxed) sys.ordering.readBarrier()
  // The device may have scheduled work or raised an interrupt: let it happen now.
  sys.kernelCall(t)
  return v
}

function write(fnName: string, value: number | bigint, addr: IoAddr, size: 1 | 2 | 4 | 8, relaxed = false): void {
  const t = current(fnName)
  if (typeof value !== 'number' && typeof value !== 'bigint') badArg(t, fnName, 'value', `must be a number, got ${typeof value}`)
  const r = decode(t, fnName, addr, size)
  const sys = sysOf(t)
  // writeX() waits for every earlier store to memory; writeX_relaxed() does not.
  if (!relaxed) sys.machine.storeBuffer.drain()
  sys.ordering.mmioWrite(r.dev, relaxed)
  sys.cpuWork(sys.costs.mmioWriteNs)
  r.fn.mmioWrite(r.bar, addr - IOREMAP_BASE - r.base, size, size === 8 ? BigInt(value) : Number(value) >>> 0)
  sys.kernelCall(t)
}

/** `readb`. */
export function readb(addr: IoAddr): number {
  return read('readb', addr, 1) as number
}
/** `readw`. */
export function readw(addr: IoAddr): number {
  return read('readw', addr, 2) as number
}
/** `readl`: a 32-bit MMIO read, ordered before later memory reads. */
export function readl(addr: IoAddr): number {
  return read('readl', addr, 4) as number
}
/** `readq`: a 64-bit MMIO read, as a bigint. */
export function readq(addr: IoAddr): bigint {
  return read('readq', addr, 8) as bigint
}
/** `lo_hi_readq`: the low 32 bits, then the high 32 bits, as a bigint (io-64-nonatomic-lo-hi.h). */
export function lo_hi_readq(addr: IoAddr): bigint {
  const lo = read('lo_hi_readq', addr, 4) as number
  const hi = read('lo_hi_readq', (addr + 4) as IoAddr, 4) as number
  return (BigInt(hi) << 32n) | BigInt(lo)
}
/** `readl_relaxed`: no ordering against memory. */
export function readl_relaxed(addr: IoAddr): number {
  return read('readl_relaxed', addr, 4, true) as number
}
/** `writeb`. */
export function writeb(value: number, addr: IoAddr): void {
  write('writeb', value, addr, 1)
}
/** `writew`. */
export function writew(value: number, addr: IoAddr): void {
  write('writew', value, addr, 2)
}
/** `writel`: a 32-bit MMIO write, ordered after every earlier memory write. */
export function writel(value: number, addr: IoAddr): void {
  write('writel', value, addr, 4)
}
/** `writeq`: a 64-bit MMIO write. */
export function writeq(value: bigint | number, addr: IoAddr): void {
  write('writeq', value, addr, 8)
}
/** `writel_relaxed`: no ordering against earlier memory writes. */
export function writel_relaxed(value: number, addr: IoAddr): void {
  write('writel_relaxed', value, addr, 4, true)
}
/** `ioread8`. */
export function ioread8(addr: IoAddr): number {
  return read('ioread8', addr, 1) as number
}
/** `ioread16`. */
export function ioread16(addr: IoAddr): number {
  return read('ioread16', addr, 2) as number
}
/** `ioread32`. */
export function ioread32(addr: IoAddr): number {
  return read('ioread32', addr, 4) as number
}
/** `iowrite8(value, addr)`. */
export function iowrite8(value: number, addr: IoAddr): void {
  write('iowrite8', value, addr, 1)
}
/** `iowrite16(value, addr)`. */
export function iowrite16(value: number, addr: IoAddr): void {
  write('iowrite16', value, addr, 2)
}
/** `iowrite32(value, addr)`. */
export function iowrite32(value: number, addr: IoAddr): void {
  write('iowrite32', value, addr, 4)
}
/** `lo_hi_writeq`: the low 32 bits, then the high 32 bits (for _LO/_HI register pairs). */
export function lo_hi_writeq(value: bigint | number, addr: IoAddr): void {
  const v = BigInt(value)
  write('lo_hi_writeq', Number(v & 0xffff_ffffn), addr, 4)
  write('lo_hi_writeq', Number((v >> 32n) & 0xffff_ffffn), (addr + 4) as IoAddr, 4)
}

function barrier(name: string, orderStores: boolean, orderLoads: boolean): void {
  const t = current(name)
  const sys = sysOf(t)
  if (orderStores) {
    sys.machine.storeBuffer.drain()
    sys.ordering.writeBarrier()
  }
  if (orderLoads) sys.ordering.readBarrier()
}

/** Full barrier: orders loads and stores, towards devices too. */
export function mb(): void {
  barrier('mb', true, true)
}
/** Read barrier. */
export function rmb(): void {
  barrier('rmb', false, true)
}
/** Write barrier: drains the store buffer. */
export function wmb(): void {
  barrier('wmb', true, false)
}
/** Orders CPU reads of coherent DMA memory (after reading an ownership bit). */
export function dma_rmb(): void {
  barrier('dma_rmb', false, true)
}
/** Orders CPU writes to coherent DMA memory (before handing a descriptor over). */
export function dma_wmb(): void {
  barrier('dma_wmb', true, false)
}
export function dma_mb(): void {
  barrier('dma_mb', true, true)
}
/** SMP barriers order CPUs among themselves, nothing towards a device. */
export function smp_mb(): void {
  barrier('smp_mb', false, false)
}
export function smp_rmb(): void {
  barrier('smp_rmb', false, false)
}
export function smp_wmb(): void {
  barrier('smp_wmb', false, false)
}
