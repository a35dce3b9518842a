/**
 * Scatter-gather lists and their DMA mapping (include/linux/scatterlist.h, lib/scatterlist.c,
 * kernel/dma/direct.c dma_direct_map_sg, drivers/iommu/dma-iommu.c iommu_dma_map_sg).
 *
 * A list is a chain of entries; `sgl` is its first entry, as `struct scatterlist *` is in C.
 * Without an IOMMU each entry is mapped on its own (possibly bounced) and nothing merges. Behind
 * an IOMMU the entries share one IOVA range and an entry that starts on a page boundary merges
 * with a predecessor that ends on one (up to the 64 KiB default max segment size), so
 * dma_map_sg may return fewer entries than it was given. Each entry keeps its own ownership.
 */

import type { Device } from '../base/device.js'
import { captureStack } from '../debug/stack.js'
import { PAGE_OFFSET } from '../mm/layout.js'
import { badArg, checkGfp, cpuPa, describeArg } from '../mm/memory.js'
import { Page } from '../mm/page.js'
import { current, type Task } from '../sched/current.js'
import type { System } from '../system.js'
import { EINVAL, ENOMEM } from '../errno.js'
import { GFP_KERNEL, offset_in_page, PAGE_SIZE, type CpuAddr, type DmaAddr } from '../types.js'
import { IOMMU_READ, IOMMU_WRITE } from '../../devices/index.js'
import { pagesSpanned } from './iova.js'
import { checkDev, checkDir, syncMapping } from './mapping.js'
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dirName, DmaMapping, MAP_ERR_NOT_APPLICABLE, Ownership, OWN_DEVICE, OWN_PENDING, DMA_ATTR_SKIP_CPU_SYNC } from './types.js'

const MAX_SEG_SIZE = 65536

/** `struct scatterlist`. */
export class Scatterlist {
  page: Page | null = null
  offset = 0
  length = 0
  dma_address = 0 as DmaAddr
  dma_length = 0
  /** The next entry of the chain, or null after the last. */
  next: Scatterlist | null = null
  /** The per-entry mapping while mapped. */
  mapping: DmaMapping | null = null
  /** On the first entry while the list is mapped: what dma_map_sg did. */
  mapped: { dev: Device; nents: number; count: number; dir: number; parts: DmaMapping[]; iova: number; iovaPages: number } | null = null
}

/** `struct sg_table`. */
export interface SgTable {
  sgl?: Scatterlist | null
  nents?: number
  orig_nents?: number
}

function newChain(n: number): Scatterlist {
  const head = new Scatterlist()
  let cur = head
  for (let i = 1; i < n; i++) {
    cur.next = new Scatterlist()
    cur = cur.next
  }
  return head
}

/** Creates (or re-initialises) a chain of nents entries and returns its first entry. */
export function sg_init_table(sgl: Scatterlist | number | null, nents?: number): Scatterlist {
  const t = current('sg_init_table')
  if (typeof sgl === 'number') {
    nents = sgl
    sgl = null
  }
  if (typeof nents !== 'number' || !Number.isInteger(nents) || nents < 1) badArg(t, 'sg_init_table', 'nents', `must be a positive integer, got ${String(nents)}`)
  if (sgl === null) return newChain(nents)
  if (!(sgl instanceof Scatterlist)) badArg(t, 'sg_init_table', 'sgl', 'must be a scatterlist')
  let cur: Scatterlist | null = sgl
  for (let i = 0; i < nents; i++) {
    if (cur === null) badArg(t, 'sg_init_table', 'nents', `exceeds the list's length (${i})`)
    Object.assign(cur, { page: null, offset: 0, length: 0, dma_address: 0, dma_length: 0, mapping: null, mapped: null })
    if (i === nents - 1) cur.next = null
    cur = cur.next
  }
  return sgl
}

/** Allocates a table of nents entries into table; 0 or -ENOMEM. */
export function sg_alloc_table(table: SgTable, nents: number, gfp: number = GFP_KERNEL): number {
  const t = current('sg_alloc_table')
  if (typeof table !== 'object' || table === null || Array.isArray(table) || ArrayBuffer.isView(table)) {
    badArg(t, 'sg_alloc_table', 'table', `must be an sg_table object ({} will do), got ${describeArg(table)}`)
  }
  if (typeof nents !== 'number' || !Number.isInteger(nents) || nents < 0) badArg(t, 'sg_alloc_table', 'nents', `must be a non-negative integer, got ${String(nents)}`)
  checkGfp(t, 'sg_alloc_table', gfp)
  if (nents === 0) return -EINVAL
  table.sgl = newChain(nents)
  table.nents = nents
  table.orig_nents = nents
  return 0
}

/** Frees a table's entries. */
export function sg_free_table(table: SgTable): void {
  table.sgl = null
  table.nents = 0
  table.orig_nents = 0
}

/** The entry after sg, or null. */
export function sg_next(sg: Scatterlist): Scatterlist | null {
  return sg.next
}

/** Points sg at len bytes of linear-map memory at buf. */
export function sg_set_buf(sg: Scatterlist, buf: CpuAddr, len: number): void {
  const t = current('sg_set_buf')
  if (!(sg instanceof Scatterlist)) badArg(t, 'sg_set_buf', 'sg', 'must be a scatterlist entry')
  checkUint(t, 'sg_set_buf', 'len', len)
  const pa = cpuPa(t, 'sg_set_buf', buf, Math.max(1, len), 'buf')
  sg.page = (t.sys as System).pages.ensure(Math.floor(pa / PAGE_SIZE)).page
  sg.offset = offset_in_page(pa)
  sg.length = len
}

/** Points sg at len bytes at offset into page (note the argument order: page, len, offset). */
export function sg_set_page(sg: Scatterlist, page: Page, len: number, offset: number): void {
  const t = current('sg_set_page')
  if (!(sg instanceof Scatterlist)) badArg(t, 'sg_set_page', 'sg', 'must be a scatterlist entry')
  if (!(page instanceof Page)) badArg(t, 'sg_set_page', 'page', 'must be a struct page')
  checkUint(t, 'sg_set_page', 'len', len)
  checkUint(t, 'sg_set_page', 'offset', offset)
  sg.page = page
  sg.offset = offset
  sg.length = len
}

/** Iterates the first nents entries: `for (const sg of for_each_sg(sgl, n))`. */
export function* for_each_sg(sgl: Scatterlist | null | undefined, nents: number): Generator<Scatterlist> {
  let cur = sgl ?? null
  for (let i = 0; i < nents && cur !== null; i++) {
    yield cur
    cur = cur.next
  }
}

/** The DMA address of a mapped entry. */
export function sg_dma_address(sg: Scatterlist): DmaAddr {
  return sg.dma_address
}
/** The DMA length of a mapped entry (0 beyond the count dma_map_sg returned). */
export function sg_dma_len(sg: Scatterlist): number {
  return sg.dma_length
}
/** The linear-map address of an entry's buffer. */
export function sg_virt(sg: Scatterlist): CpuAddr {
  return ((sg.page?.pfn ?? 0) * PAGE_SIZE + sg.offset + PAGE_OFFSET) as CpuAddr
}

/** `unsigned int`: an sg entry's length and offset. */
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff

function checkUint(t: Task, fn: string, arg: string, v: unknown): number {
  if (!isUint(v)) badArg(t, fn, arg, `must be an unsigned int (an integer from 0 to 2^32 - 1), got ${describeArg(v)}`)
  return v
}

/**
 * The nents of an unmap or sync: an int. A count that is not the one mapped is dma-debug's
 * report; a value that is not an integer at all is a bad argument.
 */
function checkNents(t: Task, fn: string, nents: unknown): number {
  if (typeof nents !== 'number' || !Number.isSafeInteger(nents)) badArg(t, fn, 'nents', `must be an integer (the nents given to dma_map_sg), got ${describeArg(nents)}`)
  return nents
}

function entries(t: Task, fn: string, sgl: unknown, nents: unknown): Scatterlist[] {
  if (!(sgl instanceof Scatterlist)) badArg(t, fn, 'sgl', 'must be a scatterlist (the first entry)')
  if (typeof nents !== 'number' || !Number.isInteger(nents) || nents < 1) badArg(t, fn, 'nents', `must be a positive integer, got ${String(nents)}`)
  const list: Scatterlist[] = []
  for (let cur: Scatterlist | null = sgl; list.length < nents && cur !== null; cur = cur.next) list.push(cur)
  if (list.length < nents) badArg(t, fn, 'nents', `is ${nents} but the list has ${list.length} entries`)
  for (let i = 0; i < list.length; i++) {
    const sg = list[i]!
    if (!(sg.page instanceof Page) || !isUint(sg.length) || sg.length === 0) badArg(t, fn, 'sgl', `entry ${i} has no buffer (sg_set_buf/sg_set_page first)`)
    if (!isUint(sg.offset)) badArg(t, fn, 'sgl', `entry ${i} has an impossible offset ${describeArg(sg.offset)}`)
  }
  return list
}

/** dma_map_sg's failure path: what was mapped is released and the entries are cleared; returns 0. */
function mapSgFail(sys: System, parts: readonly DmaMapping[], list: readonly Scatterlist[]): number {
  for (const p of parts) sys.dma.release(p)
  for (const sg of list) {
    sg.mapping = null
    sg.dma_address = 0 as DmaAddr
    sg.dma_length = 0
  }
  return 0
}

/** Maps nents entries; returns the number of DMA segments (fewer when merged), 0 on failure. */
export function dma_map_sg_attrs(dev: Device, sgl: Scatterlist, nents: number, dir: number, attrs = 0): number {
  const fn = 'dma_map_sg'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const list = entries(t, fn, sgl, nents)
  const direction = checkDir(t, fn, dir)
  const sys = t.sys as System
  const stack = sys.checks.stacks ? captureStack() : []
  if (sgl.mapped !== null) badArg(t, fn, 'sgl', 'is already mapped ("the sg cannot be mapped again if it has been mapped once")')
  const parts: DmaMapping[] = []
  let count: number
  let iovaBase = -1
  let iovaTotal = 0
  if (d.iovad === null || sys.options.swiotlb === 'force') {
    for (const sg of list) {
      const pa = sg.page!.pfn * PAGE_SIZE + sg.offset
      const m = sys.dma.map({ dev: d, cpuPa: pa, size: sg.length, dir: direction, attrs, type: 'scatter-gather', object: sys.slab.objectAt(pa) ?? null, stack })
      if (m === null) return mapSgFail(sys, parts, list)
      parts.push(m)
      sg.mapping = m
      sg.dma_address = m.dma as DmaAddr
      sg.dma_length = m.size
    }
    count = list.length
  } else {
    // iommu_dma_map_sg: one IOVA range, each entry at its page offset, then merge.
    const spans: number[] = []
    for (const sg of list) {
      const n = pagesSpanned(sg.page!.pfn * PAGE_SIZE + sg.offset, sg.length)
      spans.push(n)
      iovaTotal += n
    }
    iovaBase = d.iovad.alloc(iovaTotal, d.dmaLimit)
    if (iovaBase < 0) return mapSgFail(sys, parts, list)
    const prot = direction === DMA_TO_DEVICE ? IOMMU_READ : direction === DMA_FROM_DEVICE ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE
    let at = iovaBase
    for (let i = 0; i < list.length; i++) {
      const sg = list[i]!
      const pa = sg.page!.pfn * PAGE_SIZE + sg.offset
      if (!d.dma_coherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0) sys.dma.archSyncForDevice(pa, sg.length)
      d.port.domain!.map(at, Math.floor(pa / PAGE_SIZE) * PAGE_SIZE, spans[i]! * PAGE_SIZE, prot)
      const m = new DmaMapping({
        dev: d, type: 'scatter-gather', dir: direction, attrs, dma: at + offset_in_page(pa), size: sg.length, cpuPa: pa, devPa: pa, cpu: pa + PAGE_OFFSET,
        slot: null, iova: -1, iovaPages: 0, mapErr: MAP_ERR_NOT_APPLICABLE,
        own: new Ownership(sg.length, (attrs & DMA_ATTR_SKIP_CPU_SYNC) !== 0 ? OWN_PENDING : OWN_DEVICE),
        object: sys.slab.objectAt(pa) ?? null, stack,
      })
      if (sys.checks.ownership) sys.dma.sanitizer.checkOverlap(m)
      sys.dma.sanitizer.add(m)
      d.entries.add(m)
      parts.push(m)
      sg.mapping = m
      at += spans[i]! * PAGE_SIZE
    }
    // __finalise_sg: write the merged segments into the first entries.
    const segs: { dma: number; len: number }[] = []
    for (const m of parts) {
      const last = segs[segs.length - 1]
      if (last !== undefined && offset_in_page(last.dma + last.len) === 0 && offset_in_page(m.dma) === 0 && last.dma + last.len === m.dma && last.len + m.size <= MAX_SEG_SIZE) {
        last.len += m.size
      } else segs.push({ dma: m.dma, len: m.size })
    }
    for (let i = 0; i < list.length; i++) {
      const sg = list[i]!
      const s = segs[i]
      sg.dma_address = (s?.dma ?? 0) as DmaAddr
      sg.dma_length = s?.len ?? 0
    }
    count = segs.length
  }
  for (const p of parts) {
    p.sgEnts = nents
    p.sgMapped = count
    p.sgHead = sgl
  }
  sgl.mapped = { dev: d, nents, count, dir: direction, parts, iova: iovaBase, iovaPages: iovaTotal }
  return count
}

/** `dma_map_sg(dev, sgl, nents, dir)`. */
export function dma_map_sg(dev: Device, sgl: Scatterlist, nents: number, dir: number): number {
  return dma_map_sg_attrs(dev, sgl, nents, dir, 0)
}

/** Unmaps a list; nents must be the count passed to dma_map_sg, not the count it returned. */
export function dma_unmap_sg_attrs(dev: Device, sgl: Scatterlist, nents: number, dir: number, attrs = 0): void {
  const fn = 'dma_unmap_sg'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  if (!(sgl instanceof Scatterlist)) badArg(t, fn, 'sgl', 'must be a scatterlist (the first entry)')
  checkNents(t, fn, nents)
  const direction = checkDir(t, fn, dir)
  const sys = t.sys as System
  const mp = sgl.mapped
  if (mp === null || mp.dev !== d) {
    if (sys.checks.dmaDebug) {
      sys.report({ kind: 'unmap-unknown', device: d.name, message: `device driver tries to free DMA memory it has not allocated [device address=0x${sgl.dma_address.toString(16).padStart(16, '0')}] [size=${sgl.dma_length} bytes] (dma_unmap_sg of a list that is not mapped)` })
    }
    return
  }
  const first = mp.parts[0]!
  if (sys.checks.dmaDebug) {
    if (nents !== mp.nents) {
      sys.report({ kind: 'unmap-size-mismatch', device: d.name, message: `device driver frees DMA sg list with different entry count [map count=${mp.nents}] [unmap count=${nents}]${nents === mp.count ? ' (pass the nents given to dma_map_sg, not the count it returned)' : ''}`, mapping: first })
    }
    if (direction !== mp.dir) {
      sys.report({ kind: 'unmap-direction-mismatch', device: d.name, message: `device driver frees DMA memory with different direction [device address=0x${first.dma.toString(16).padStart(16, '0')}] [size=${first.size} bytes] [mapped with ${dirName(mp.dir)}] [unmapped with ${dirName(direction)}]`, mapping: first })
    }
  }
  for (const p of mp.parts) sys.dma.unmap(p, direction, typeof attrs === 'number' ? attrs : 0)
  if (mp.iova >= 0) sys.dma.unmapIova(d, mp.iova, mp.iovaPages)
  for (let sg: Scatterlist | null = sgl, i = 0; sg !== null && i < mp.nents; sg = sg.next, i++) sg.mapping = null
  sgl.mapped = null
}

/** `dma_unmap_sg(dev, sgl, nents, dir)`. */
export function dma_unmap_sg(dev: Device, sgl: Scatterlist, nents: number, dir: number): void {
  dma_unmap_sg_attrs(dev, sgl, nents, dir, 0)
}

function syncSg(fn: string, dev: Device, sgl: Scatterlist, nents: number, dir: number, toCpu: boolean): void {
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  if (!(sgl instanceof Scatterlist)) badArg(t, fn, 'sgl', 'must be a scatterlist (the first entry)')
  checkNents(t, fn, nents)
  const direction = checkDir(t, fn, dir)
  const sys = t.sys as System
  const mp = sgl.mapped
  if (mp === null || mp.dev !== d) {
    if (sys.checks.dmaDebug) sys.report({ kind: 'sync-unmapped', device: d.name, message: `device driver tries to sync DMA memory it has not allocated [device address=0x${sgl.dma_address.toString(16).padStart(16, '0')}] [size=${sgl.dma_length} bytes] (an sg list that is not mapped)` })
    return
  }
  if (sys.checks.dmaDebug) {
    if (nents !== mp.nents) sys.report({ kind: 'sync-out-of-range', device: d.name, message: `device driver syncs DMA sg list with different entry count [map count=${mp.nents}] [sync count=${nents}]`, mapping: mp.parts[0] })
    if (direction !== mp.dir && mp.dir !== 0) sys.report({ kind: 'sync-direction-mismatch', device: d.name, message: `device driver syncs DMA memory with different direction [device address=0x${mp.parts[0]!.dma.toString(16).padStart(16, '0')}] [size=${mp.parts[0]!.size} bytes] [mapped with ${dirName(mp.dir)}] [synced with ${dirName(direction)}]`, mapping: mp.parts[0] })
  }
  // for_each_sg(sgl, sg, nents, i): a count below 1 syncs nothing.
  for (const p of mp.parts.slice(0, Math.max(0, Math.min(nents, mp.parts.length)))) syncMapping(sys, p, 0, p.size, direction, toCpu)
}

/** Hands every entry back to the CPU. */
export function dma_sync_sg_for_cpu(dev: Device, sgl: Scatterlist, nents: number, dir: number): void {
  syncSg('dma_sync_sg_for_cpu', dev, sgl, nents, dir, true)
}
/** Hands every entry to the device. */
export function dma_sync_sg_for_device(dev: Device, sgl: Scatterlist, nents: number, dir: number): void {
  syncSg('dma_sync_sg_for_device', dev, sgl, nents, dir, false)
}

function tableSgl(t: Task, fn: string, table: SgTable): Scatterlist {
  if (typeof table !== 'object' || table === null || !(table.sgl instanceof Scatterlist)) badArg(t, fn, 'sgt', 'must be an sg_table from sg_alloc_table')
  return table.sgl
}

/** Maps table.orig_nents entries and sets table.nents; 0 or -errno. */
export function dma_map_sgtable(dev: Device, sgt: SgTable, dir: number, attrs = 0): number {
  const t = current('dma_map_sgtable')
  const sgl = tableSgl(t, 'dma_map_sgtable', sgt)
  const n = dma_map_sg_attrs(dev, sgl, sgt.orig_nents ?? 0, dir, attrs)
  if (n === 0) return -ENOMEM
  sgt.nents = n
  return 0
}
/** Unmaps a table mapped with dma_map_sgtable. */
export function dma_unmap_sgtable(dev: Device, sgt: SgTable, dir: number, attrs = 0): void {
  const t = current('dma_unmap_sgtable')
  dma_unmap_sg_attrs(dev, tableSgl(t, 'dma_unmap_sgtable', sgt), sgt.orig_nents ?? 0, dir, attrs)
}
/** dma_sync_sg_for_cpu over a table. */
export function dma_sync_sgtable_for_cpu(dev: Device, sgt: SgTable, dir: number): void {
  const t = current('dma_sync_sgtable_for_cpu')
  dma_sync_sg_for_cpu(dev, tableSgl(t, 'dma_sync_sgtable_for_cpu', sgt), sgt.orig_nents ?? 0, dir)
}
/** dma_sync_sg_for_device over a table. */
export function dma_sync_sgtable_for_device(dev: Device, sgt: SgTable, dir: number): void {
  const t = current('dma_sync_sgtable_for_device')
  dma_sync_sg_for_device(dev, tableSgl(t, 'dma_sync_sgtable_for_device', sgt), sgt.orig_nents ?? 0, dir)
}
