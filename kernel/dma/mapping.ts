/**
 * The streaming DMA API (include/linux/dma-mapping.h, kernel/dma/mapping.c): single and page
 * mappings, their syncs, masks and queries. Checks follow kernel/dma/debug.c; the cache
 * maintenance and bounce copies are in kernel/dma/core.ts.
 */

import { Device } from '../base/device.js'
import { captureStack } from '../debug/stack.js'
import { hex, isLinearAddr } from '../mm/layout.js'
import { badArg, checkSize, cpuPa } from '../mm/memory.js'
import { Page } from '../mm/page.js'
import { current, type Task } from '../sched/current.js'
import type { System } from '../system.js'
import { EIO, ENOMEM } from '../errno.js'
import { PAGE_SIZE, type CpuAddr, type DmaAddr } from '../types.js'
import { IOMMU_APERTURE } from './iova.js'
import { SWIOTLB_MAX_MAPPING } from './swiotlb.js'
import { DMA_MAPPING_ERROR, DMA_NONE, type DmaMapping, type MapType } from './types.js'

/** Validates the device argument: a struct device of the running task's system. */
export function checkDev(t: Task, fn: string, dev: unknown): Device {
  if (!(dev instanceof Device)) badArg(t, fn, 'dev', `must be a struct device (pdev.dev or a test master's .dev), got ${dev === null ? 'null' : typeof dev}`)
  if (dev.sys !== t.sys) badArg(t, fn, 'dev', `(${dev.name}) belongs to another system`)
  return dev
}

/** BUG_ON(!valid_dma_direction(dir)). */
export function checkDir(t: Task, fn: string, dir: unknown): number {
  if (dir !== 0 && dir !== 1 && dir !== 2) {
    const err = `kernel BUG at kernel/dma/mapping.c: ${fn}: invalid DMA direction ${String(dir)}${dir === DMA_NONE ? ' (DMA_NONE is a placeholder, never a valid argument)' : ''}`
    ;(t.sys as System).oops(t, err)
  }
  return dir as number
}

function checkAttrs(t: Task, fn: string, attrs: unknown): number {
  if (attrs === undefined) return 0
  if (typeof attrs !== 'number' || !Number.isInteger(attrs) || attrs < 0) badArg(t, fn, 'attrs', `must be DMA_ATTR_* flags, got ${String(attrs)}`)
  return attrs
}

function checkDma(t: Task, fn: string, dma: unknown): number {
  if (typeof dma !== 'number' || !Number.isInteger(dma) || dma < 0) badArg(t, fn, 'dma_addr', `must be a DmaAddr, got ${String(dma)}`)
  return dma
}

function stack(sys: System) {
  return sys.checks.stacks ? captureStack() : []
}

/** dma_map_page_attrs on a physical range: the common body of single and page mappings. */
function mapPhys(t: Task, dev: Device, pa: number, size: number, dir: number, attrs: number): DmaAddr {
  const sys = t.sys as System
  const obj = sys.slab.objectAt(pa) ?? null
  const m = sys.dma.map({ dev, cpuPa: pa, size, dir, attrs, type: 'single', object: obj, stack: stack(sys) })
  return (m === null ? DMA_MAPPING_ERROR : m.dma) as DmaAddr
}

/** Maps size bytes of kmalloc'd (linear-map) memory at cpu_addr for DMA; the device owns it. */
export function dma_map_single_attrs(dev: Device, cpu_addr: CpuAddr, size: number, dir: number, attrs = 0): DmaAddr {
  const fn = 'dma_map_single'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const n = checkSize(t, fn, 'size', size)
  const direction = checkDir(t, fn, dir)
  const a = checkAttrs(t, fn, attrs)
  if (typeof cpu_addr !== 'number' || !isLinearAddr(cpu_addr)) {
    ;(t.sys as System).oops(t, `${fn}: device driver maps memory from invalid area [addr=${typeof cpu_addr === 'number' ? hex(cpu_addr) : String(cpu_addr)}] [len=${n}]: argument 'cpu_addr' is not a kernel linear-map address`)
  }
  const pa = cpuPa(t, fn, cpu_addr, n, 'cpu_addr')
  return mapPhys(t, d, pa, n, direction, a)
}

/** `dma_map_single(dev, cpu_addr, size, dir)`. */
export function dma_map_single(dev: Device, cpu_addr: CpuAddr, size: number, dir: number): DmaAddr {
  return dma_map_single_attrs(dev, cpu_addr, size, dir, 0)
}

/** Maps size bytes at offset into page for DMA. */
export function dma_map_page_attrs(dev: Device, page: Page, offset: number, size: number, dir: number, attrs = 0): DmaAddr {
  const fn = 'dma_map_page'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  if (!(page instanceof Page)) badArg(t, fn, 'page', 'must be a struct page')
  const n = checkSize(t, fn, 'size', size)
  checkSize(t, fn, 'offset', offset, true)
  const direction = checkDir(t, fn, dir)
  const a = checkAttrs(t, fn, attrs)
  const pa = page.pfn * PAGE_SIZE + offset
  if (!(t.sys as System).machine.ram.isRam(pa, n)) badArg(t, fn, 'page', `${page.toString()} + ${offset} (+${n} bytes) is not RAM`)
  return mapPhys(t, d, pa, n, direction, a)
}

/** `dma_map_page(dev, page, offset, size, dir)`. */
export function dma_map_page(dev: Device, page: Page, offset: number, size: number, dir: number): DmaAddr {
  return dma_map_page_attrs(dev, page, offset, size, dir, 0)
}

function unmapImpl(fn: string, dev: Device, dma_addr: DmaAddr, size: number, dir: number, attrs: number, type: MapType): void {
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const addr = checkDma(t, fn, dma_addr)
  const n = checkSize(t, fn, 'size', size)
  const direction = checkDir(t, fn, dir)
  const a = checkAttrs(t, fn, attrs)
  const sys = t.sys as System
  const m = sys.dma.checkUnmap(d, addr, n, direction, type, fn)
  if (m === undefined || m.type !== type) return
  sys.dma.unmap(m, direction, a, n)
}

/** Ends a single mapping; the CPU owns the buffer again. Arguments must match the map call. */
export function dma_unmap_single_attrs(dev: Device, dma_addr: DmaAddr, size: number, dir: number, attrs = 0): void {
  unmapImpl('dma_unmap_single', dev, dma_addr, size, dir, attrs, 'single')
}
/** `dma_unmap_single(dev, dma_addr, size, dir)`. */
export function dma_unmap_single(dev: Device, dma_addr: DmaAddr, size: number, dir: number): void {
  unmapImpl('dma_unmap_single', dev, dma_addr, size, dir, 0, 'single')
}
/** Ends a page mapping. */
export function dma_unmap_page_attrs(dev: Device, dma_addr: DmaAddr, size: number, dir: number, attrs = 0): void {
  unmapImpl('dma_unmap_page', dev, dma_addr, size, dir, attrs, 'single')
}
/** `dma_unmap_page(dev, dma_addr, size, dir)`. */
export function dma_unmap_page(dev: Device, dma_addr: DmaAddr, size: number, dir: number): void {
  unmapImpl('dma_unmap_page', dev, dma_addr, size, dir, 0, 'single')
}

/** Returns -ENOMEM if dma_addr is DMA_MAPPING_ERROR, else 0; dma-debug marks the mapping checked. */
export function dma_mapping_error(dev: Device, dma_addr: DmaAddr): number {
  const fn = 'dma_mapping_error'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const addr = checkDma(t, fn, dma_addr)
  ;(t.sys as System).dma.mappingErrorChecked(d, addr)
  return addr === DMA_MAPPING_ERROR ? -ENOMEM : 0
}

function syncImpl(fn: string, dev: Device, addr: DmaAddr, offset: number, size: number, dir: number, toCpu: boolean): void {
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const base = checkDma(t, fn, addr)
  checkSize(t, fn, 'offset', offset, true)
  const n = checkSize(t, fn, 'size', size)
  const direction = checkDir(t, fn, dir)
  const sys = t.sys as System
  const dma = base + offset
  const m = sys.dma.checkSync(d, dma, n, direction, toCpu)
  if (m === undefined) return
  syncMapping(sys, m, dma - m.dma, Math.min(n, m.size - (dma - m.dma)), direction, toCpu)
}

/** Performs a sync on part of a known mapping. */
export function syncMapping(sys: System, m: DmaMapping, off: number, len: number, dir: number, toCpu: boolean): void {
  if (m.type === 'coherent') return
  if (toCpu) sys.dma.syncForCpu(m, off, len, dir)
  else sys.dma.syncForDevice(m, off, len, dir)
}

/** Hands [dma_addr, +size) back to the CPU: invalidates (non-coherent) and copies back from a bounce buffer. */
export function dma_sync_single_for_cpu(dev: Device, dma_addr: DmaAddr, size: number, dir: number): void {
  syncImpl('dma_sync_single_for_cpu', dev, dma_addr, 0, size, dir, true)
}
/** Hands [dma_addr, +size) to the device: copies to a bounce buffer and cleans (non-coherent). */
export function dma_sync_single_for_device(dev: Device, dma_addr: DmaAddr, size: number, dir: number): void {
  syncImpl('dma_sync_single_for_device', dev, dma_addr, 0, size, dir, false)
}
/** Partial sync for the CPU of [dma_addr + offset, +size). */
export function dma_sync_single_range_for_cpu(dev: Device, dma_addr: DmaAddr, offset: number, size: number, dir: number): void {
  syncImpl('dma_sync_single_range_for_cpu', dev, dma_addr, offset, size, dir, true)
}
/** Partial sync for the device of [dma_addr + offset, +size). */
export function dma_sync_single_range_for_device(dev: Device, dma_addr: DmaAddr, offset: number, size: number, dir: number): void {
  syncImpl('dma_sync_single_range_for_device', dev, dma_addr, offset, size, dir, false)
}

// ---------------------------------------------------------------------- masks and queries

function checkMask(t: Task, fn: string, mask: unknown): bigint {
  if (typeof mask === 'number' && Number.isInteger(mask) && mask >= 0) mask = BigInt(mask)
  if (typeof mask !== 'bigint' || mask < 0n || mask > 0xffff_ffff_ffff_ffffn) badArg(t, fn, 'mask', `must be a DMA_BIT_MASK() bigint, got ${String(mask)}`)
  return mask
}

/**
 * The smallest mask dma-direct supports: one that covers the RAM below 4 GiB (ZONE_DMA32). Behind
 * an IOMMU any mask works, as with dma-iommu: IOVAs are allocated below it (an ISA device's 24-bit
 * mask, kernel/dma/isa.ts).
 */
const MIN_MASK = 0xffff_ffffn

/** Sets the streaming DMA mask; 0 or -EIO when the platform cannot serve it. */
export function dma_set_mask(dev: Device, mask: bigint): number {
  const t = current('dma_set_mask')
  const d = checkDev(t, 'dma_set_mask', dev)
  const m = checkMask(t, 'dma_set_mask', mask)
  if (m < MIN_MASK && d.iovad === null) return -EIO
  d.dma_mask = m
  return 0
}
/** Sets the coherent DMA mask; 0 or -EIO. */
export function dma_set_coherent_mask(dev: Device, mask: bigint): number {
  const t = current('dma_set_coherent_mask')
  const d = checkDev(t, 'dma_set_coherent_mask', dev)
  const m = checkMask(t, 'dma_set_coherent_mask', mask)
  if (m < MIN_MASK && d.iovad === null) return -EIO
  d.coherent_dma_mask = m
  return 0
}
/** Both masks; never fails for masks of 32 bits or more. */
export function dma_set_mask_and_coherent(dev: Device, mask: bigint): number {
  const rc = dma_set_mask(dev, mask)
  if (rc === 0) dma_set_coherent_mask(dev, mask)
  return rc
}
/** The streaming mask. */
export function dma_get_mask(dev: Device): bigint {
  const t = current('dma_get_mask')
  return checkDev(t, 'dma_get_mask', dev).dma_mask
}
/**
 * The platform's ARCH_DMA_MINALIGN ("the minimum alignment and width that you must observe when
 * either mapping memory or doing partial flushes"): arm64 128, riscv64 64; x86_64 defines none, so 1.
 */
export function dma_get_cache_alignment(): number {
  const t = current('dma_get_cache_alignment')
  const sys = t.sys as System
  return sys.arch === 'x86_64' ? 1 : sys.platform.dmaMinAlign
}
/** Whether sync calls are needed for this mapping (non-coherent device or bounce buffer). */
export function dma_need_sync(dev: Device, dma_addr: DmaAddr): boolean {
  const t = current('dma_need_sync')
  const d = checkDev(t, 'dma_need_sync', dev)
  const sys = t.sys as System
  if (!d.dma_coherent || sys.options.swiotlb === 'force') return true
  const m = d.entries.containing(checkDma(t, 'dma_need_sync', dma_addr), 1)
  return m?.slot != null
}
/** Largest streaming mapping: swiotlb's 256 KiB when bouncing may happen, else unlimited. */
export function dma_max_mapping_size(dev: Device): number {
  const t = current('dma_max_mapping_size')
  const d = checkDev(t, 'dma_max_mapping_size', dev)
  const sys = t.sys as System
  if (sys.dma.swiotlb === null) return Number.MAX_SAFE_INTEGER
  const limited = d.iovad === null && d.dmaLimit < sys.machine.ram.banks.reduce((x, b) => Math.max(x, b.base + b.size), 0) - 1
  return sys.options.swiotlb === 'force' || limited ? SWIOTLB_MAX_MAPPING : Number.MAX_SAFE_INTEGER
}
/** The mask dma-direct would need to reach all RAM. */
export function dma_get_required_mask(dev: Device): bigint {
  const t = current('dma_get_required_mask')
  checkDev(t, 'dma_get_required_mask', dev)
  const top = (t.sys as System).machine.ram.banks.reduce((x, b) => Math.max(x, b.base + b.size), 0) - 1
  let bits = 32
  for (let reach = 2 ** 32 - 1; reach < Math.min(top, IOMMU_APERTURE); reach = reach * 2 + 1) bits++
  return (1n << BigInt(bits)) - 1n
}

