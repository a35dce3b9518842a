/**
 * The memory API drivers use: kmalloc/kzalloc/kcalloc/kfree (include/linux/slab.h), the page
 * allocator (include/linux/gfp.h), virt/phys conversion (asm/memory.h) and the CPU accessors that
 * stand in for C dereferences. Every CPU access goes through the emulated cache, is checked by
 * KASAN (bounds, use-after-free) and the DMA ownership sanitizer, and initialises the bytes it
 * writes (KMSAN's shadow).
 */

import { captureStack } from '../debug/stack.js'
import { InvalidArgumentError } from '../errors.js'
import { current, type Task } from '../sched/current.js'
import { mightSleepGfp } from '../sched/might-sleep.js'
import type { System } from '../system.js'
import { __GFP_DMA32, __GFP_ZERO, GFP_KERNEL, PAGE_SIZE, type CpuAddr, type PhysAddr } from '../types.js'
import { hex, isLinearAddr, PAGE_OFFSET, ZERO_SIZE_PTR } from './layout.js'
import { KObject, Page, PAGE_ALLOCATED, PAGE_FREED } from './page.js'
import { MAX_ORDER } from './page_alloc.js'

type Sys = System

// ---------------------------------------------------------------------- argument checks

/** Stops the task with an oops that names the bad argument. */
export function badArg(t: Task, fn: string, arg: string, problem: string): never {
  const err = new InvalidArgumentError(fn, arg, problem)
  return (t.sys as Sys).oops(t, err.message, err)
}

/** A bad argument's value for a message: numbers as themselves, other values by type. */
export function describeArg(v: unknown): string {
  if (typeof v === 'number') return String(v)
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v)}`
  if (typeof v === 'bigint') return `the bigint ${v.toString()}n`
  return typeof v
}

export function checkSize(t: Task, fn: string, arg: string, n: unknown, allowZero = false): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || (n === 0 && !allowZero) || n >= 2 ** 48) {
    badArg(t, fn, arg, `is an impossible size: ${typeof n === 'number' ? n : typeof n}`)
  }
  return n
}

/**
 * The longest bulk CPU copy (mem_read_bytes, memcpy): the largest object the kernel hands out
 * (KMALLOC_MAX_SIZE, alloc_pages(MAX_ORDER), a coherent buffer are all 4 MiB at most). A longer
 * copy cannot stay inside one object, and the emulator would have to allocate it on the host.
 */
export const MAX_COPY_BYTES = PAGE_SIZE * 2 ** MAX_ORDER

/** checkSize for a bulk copy's length: also no longer than MAX_COPY_BYTES. */
function checkCopyLen(t: Task, fn: string, arg: string, n: unknown): number {
  const len = checkSize(t, fn, arg, n, true)
  if (len > MAX_COPY_BYTES) badArg(t, fn, arg, `is an impossible size: ${len} bytes is more than any kernel object holds (${MAX_COPY_BYTES}), so the copy cannot stay inside one`)
  return len
}

/** Validates optional GFP flags (undefined is GFP_KERNEL); oopses naming 'gfp'. */
export function checkGfp(t: Task, fn: string, gfp: unknown): number {
  if (gfp === undefined) return GFP_KERNEL
  if (typeof gfp !== 'number' || !Number.isInteger(gfp) || gfp < 0) badArg(t, fn, 'gfp', `must be GFP flags, got ${String(gfp)}`)
  return gfp
}

function sysOf(t: Task): Sys {
  return t.sys as Sys
}

/**
 * Translates a CPU address for an access of len bytes, oopsing as Linux's page-fault handler
 * would ("Unable to handle kernel paging request") when it is not mapped.
 */
export function cpuPa(t: Task, fn: string, p: unknown, len: number, arg = 'p'): number {
  if (typeof p !== 'number' || !Number.isInteger(p)) badArg(t, fn, arg, `must be a CpuAddr, got ${typeof p}`)
  if (p < PAGE_SIZE) {
    sysOf(t).oops(t, `Unable to handle kernel ${p === ZERO_SIZE_PTR ? 'ZERO_SIZE_PTR' : 'NULL pointer'} dereference at virtual address ${hex(p)} in ${fn}()`)
  }
  if (!isLinearAddr(p)) {
    sysOf(t).oops(t, `Unable to handle kernel paging request at virtual address ${hex(p)} in ${fn}(): argument '${arg}' is not a kernel CPU address (a DMA or physical address?)`)
  }
  const pa = p - PAGE_OFFSET
  if (!sysOf(t).machine.ram.isRam(pa, len)) {
    sysOf(t).oops(t, `Unable to handle kernel paging request at virtual address ${hex(p)} in ${fn}(): no RAM there`)
  }
  return pa
}

// ---------------------------------------------------------------------- KASAN

/** The access as KASAN's report names it (built only when there is a report). */
function kasanWhat(pa: number, len: number, write: boolean, fn: string): string {
  return `${write ? 'Write' : 'Read'} of size ${len} at addr ${hex(pa + PAGE_OFFSET)} by ${fn}()`
}

/** KASAN's check of a CPU access; returns the object holding pa (for the sanitizer). */
function kasanCheck(sys: Sys, pa: number, len: number, write: boolean, fn: string): KObject | null | undefined {
  const meta = sys.pages.at(pa)
  if (meta === undefined || meta.state !== PAGE_ALLOCATED) {
    if (sys.checks.kasan) {
      const freed = meta?.state === PAGE_FREED
      sys.report({
        kind: freed ? 'use-after-free' : 'out-of-bounds',
        message: `BUG: KASAN: ${freed ? 'use-after-free' : 'wild-memory-access'}: ${kasanWhat(pa, len, write, fn)}: the page is ${freed ? 'free' : 'not allocated'}`,
        object: meta?.object,
        details: { addr: pa + PAGE_OFFSET, len, write },
      })
    }
    return undefined
  }
  let obj: KObject | null
  if (meta.slab !== null) obj = meta.slab.objects[Math.floor((pa - meta.slab.pa) / meta.slab.stride)] ?? null
  else obj = meta.object
  if (obj === null) {
    if (meta.slab !== null && sys.checks.kasan) {
      sys.report({ kind: 'out-of-bounds', message: `BUG: KASAN: slab-out-of-bounds: ${kasanWhat(pa, len, write, fn)}: no object was ever allocated there (${meta.slab.cacheName})`, details: { addr: pa + PAGE_OFFSET, len, write } })
    }
    return null
  }
  if (!sys.checks.kasan) return obj
  if (!obj.live) {
    sys.report({
      kind: 'use-after-free',
      message: `BUG: KASAN: ${obj.kind === 'kmalloc' ? 'slab-' : ''}use-after-free: ${kasanWhat(pa, len, write, fn)}: the ${obj.size}-byte object at ${hex(obj.pa + PAGE_OFFSET)} was freed`,
      object: obj,
      details: { addr: pa + PAGE_OFFSET, len, write, object: obj.pa + PAGE_OFFSET, objectSize: obj.size },
    })
  } else if (pa < obj.pa || pa + len > obj.pa + obj.size) {
    sys.report({
      kind: 'out-of-bounds',
      message: `BUG: KASAN: ${obj.kind === 'kmalloc' ? 'slab-' : ''}out-of-bounds: ${kasanWhat(pa, len, write, fn)}: the access ends ${pa + len - (obj.pa + obj.size)} bytes beyond the ${obj.size}-byte object at ${hex(obj.pa + PAGE_OFFSET)}`,
      object: obj,
      details: { addr: pa + PAGE_OFFSET, len, write, object: obj.pa + PAGE_OFFSET, objectSize: obj.size },
    })
  }
  return obj
}

/** Every check a CPU access gets; returns the physical address. */
export function cpuAccess(t: Task, fn: string, p: unknown, len: number, write: boolean, arg = 'p'): number {
  const pa = cpuPa(t, fn, p, len, arg)
  const sys = sysOf(t)
  const checks = sys.checks
  if (checks.kasan || checks.ownership) {
    const obj = kasanCheck(sys, pa, len, write, fn)
    if (checks.ownership) {
      sys.dma.sanitizer.cpuAccess(pa, len, write, obj)
      if (obj?.kind === 'coherent') {
        if (write) sys.ordering.cpuStore(pa, len)
        else sys.ordering.cpuLoad(pa, len)
      }
    }
  }
  if (write) sys.shadow.mark(pa, len, true)
  const df = sys.machine.doubleFetch
  if (df.active) {
    if (write) df.cpuStore(pa, len)
    else {
      const hit = df.cpuLoad(pa, len)
      if (hit !== null) {
        sys.report({
          kind: 'double-fetch',
          device: hit.device,
          message: `double fetch: the driver read ${hit.device}'s ${hit.field} [phys=${hex(hit.pa)}] again after the device changed it (it read the field once already): a hostile device can make the checked value and the used value differ. Read device-written fields once into a local, validate it and use only that`,
          details: { phys: hit.pa, field: hit.field },
        })
      }
    }
  }
  return pa
}

// ---------------------------------------------------------------------- kmalloc

function allocStack(sys: Sys) {
  return sys.checks.stacks ? captureStack() : []
}

function kmallocImpl(fn: string, size: unknown, gfp: unknown, zero: boolean): CpuAddr | null {
  const t = current(fn)
  const sys = sysOf(t)
  const flags = checkGfp(t, fn, gfp)
  mightSleepGfp(t, fn, flags)
  const n = checkSize(t, fn, 'size', size, true)
  if (n === 0) return ZERO_SIZE_PTR
  if (n > MAX_COPY_BYTES) {
    sys.logger.warn({ fn }, `${fn}: size ${n} exceeds KMALLOC_MAX_SIZE`)
    return null
  }
  const obj = sys.slab.alloc(n, (flags & __GFP_DMA32) !== 0 ? 'dma32' : 'normal')
  if (obj === null) return null
  obj.allocStack = allocStack(sys)
  sys.shadow.mark(obj.pa, obj.span, false)
  if (zero || (flags & __GFP_ZERO) !== 0) {
    sys.machine.cache.fill(obj.pa, 0, n)
    sys.shadow.mark(obj.pa, n, true)
  }
  return (obj.pa + PAGE_OFFSET) as CpuAddr
}

/** Allocates size bytes of DMA-safe kernel memory (uninitialised); null on failure. */
export function kmalloc(size: number, gfp: number = GFP_KERNEL): CpuAddr | null {
  return kmallocImpl('kmalloc', size, gfp, false)
}

/** kmalloc, zeroed. */
export function kzalloc(size: number, gfp: number = GFP_KERNEL): CpuAddr | null {
  return kmallocImpl('kzalloc', size, gfp, true)
}

/** An array of n elements of size bytes, zeroed; null on overflow or failure. */
export function kcalloc(n: number, size: number, gfp: number = GFP_KERNEL): CpuAddr | null {
  const t = current('kcalloc')
  checkSize(t, 'kcalloc', 'n', n, true)
  checkSize(t, 'kcalloc', 'size', size, true)
  if (n * size >= 2 ** 48) return null
  return kmallocImpl('kcalloc', n * size, gfp, true)
}

/** Frees kmalloc memory. kfree(null) and kfree(ZERO_SIZE_PTR) do nothing. */
export function kfree(p: CpuAddr | null): void {
  const t = current('kfree')
  const sys = sysOf(t)
  if (p === null || p === ZERO_SIZE_PTR || (p as number) === 0) return
  const pa = cpuPa(t, 'kfree', p, 1, 'objp')
  const meta = sys.pages.at(pa)
  const obj = meta === undefined ? undefined : meta.slab !== null ? meta.slab.objects[Math.floor((pa - meta.slab.pa) / meta.slab.stride)] : meta.object
  if (obj == null || obj.kind !== 'kmalloc') {
    badArg(t, 'kfree', 'objp', `(${hex(p)}) is not a kmalloc pointer`)
  }
  if (!obj.live || obj.pa !== pa) {
    if (sys.checks.kasan) {
      sys.report({
        kind: 'double-free',
        message: obj.pa !== pa
          ? `BUG: KASAN: invalid-free in kfree: ${hex(p)} points ${pa - obj.pa} bytes into the ${obj.size}-byte object at ${hex(obj.pa + PAGE_OFFSET)}`
          : `BUG: KASAN: double-free in kfree: the ${obj.size}-byte object at ${hex(p)} was already freed`,
        object: obj,
        details: { addr: p, object: obj.pa + PAGE_OFFSET },
      })
    }
    return
  }
  if (sys.checks.ownership) sys.dma.sanitizer.freeing(obj.pa, obj.size, 'kfree')
  obj.freeStack = allocStack(sys)
  sys.slab.free(obj)
}

/** The usable size of a kmalloc object (ksize). */
export function ksize(p: CpuAddr): number {
  const t = current('ksize')
  const pa = cpuPa(t, 'ksize', p, 1, 'objp')
  const obj = sysOf(t).slab.objectAt(pa)
  if (obj == null || !obj.live) badArg(t, 'ksize', 'objp', `(${hex(p)}) is not a live kmalloc pointer`)
  return obj.span
}

// ---------------------------------------------------------------------- pages

/** Allocates 2^order physically contiguous pages; null on failure. */
export function alloc_pages(gfp: number, order: number): Page | null {
  const t = current('alloc_pages')
  const sys = sysOf(t)
  const flags = checkGfp(t, 'alloc_pages', gfp)
  mightSleepGfp(t, 'alloc_pages', flags)
  if (typeof order !== 'number' || !Number.isInteger(order) || order < 0 || order > MAX_ORDER) {
    badArg(t, 'alloc_pages', 'order', `must be an integer from 0 to ${MAX_ORDER}, got ${String(order)}`)
  }
  const pfn = sys.buddy.alloc(order, (flags & __GFP_DMA32) !== 0 ? 'dma32' : 'normal')
  if (pfn < 0) return null
  const bytes = PAGE_SIZE << order
  const obj = new KObject('pages', pfn * PAGE_SIZE, bytes, bytes, order)
  obj.allocStack = allocStack(sys)
  for (let i = 0; i < 1 << order; i++) {
    const m = sys.pages.ensure(pfn + i)
    m.state = PAGE_ALLOCATED
    m.slab = null
    m.object = obj
  }
  sys.shadow.mark(obj.pa, bytes, false)
  if ((flags & __GFP_ZERO) !== 0) {
    sys.machine.cache.fill(obj.pa, 0, bytes)
    sys.shadow.mark(obj.pa, bytes, true)
  }
  return sys.pages.get(pfn)!.page
}

/** One page. */
export function alloc_page(gfp: number): Page | null {
  return alloc_pages(gfp, 0)
}

/** Frees pages from alloc_pages with the same order. */
export function __free_pages(page: Page, order: number): void {
  const t = current('__free_pages')
  const sys = sysOf(t)
  if (!(page instanceof Page)) badArg(t, '__free_pages', 'page', 'must be a struct page from alloc_pages')
  const meta = sys.pages.get(page.pfn)
  const obj = meta?.object
  if (meta === undefined || obj == null || obj.kind !== 'pages' || obj.pa !== page.pfn * PAGE_SIZE) {
    badArg(t, '__free_pages', 'page', `(${page.toString()}) was not returned by alloc_pages`)
  }
  if (!obj.live) {
    if (sys.checks.kasan) {
      sys.report({ kind: 'double-free', message: `BUG: Bad page state: __free_pages of ${page.toString()}, which is already free`, object: obj, details: { pfn: page.pfn } })
    }
    return
  }
  if (order !== obj.order) badArg(t, '__free_pages', 'order', `is ${String(order)} but the pages were allocated with order ${obj.order}`)
  if (sys.checks.ownership) sys.dma.sanitizer.freeing(obj.pa, obj.size, '__free_pages')
  obj.live = false
  obj.freeStack = allocStack(sys)
  for (let i = 0; i < 1 << order; i++) sys.pages.ensure(page.pfn + i).state = PAGE_FREED
  sys.buddy.free(page.pfn, order)
}

/** Frees one page. */
export function __free_page(page: Page): void {
  __free_pages(page, 0)
}

/** The linear-map address of a page. */
export function page_address(page: Page): CpuAddr {
  const t = current('page_address')
  if (!(page instanceof Page)) badArg(t, 'page_address', 'page', 'must be a struct page')
  return (page.pfn * PAGE_SIZE + PAGE_OFFSET) as CpuAddr
}

/** The page holding a linear-map address. */
export function virt_to_page(p: CpuAddr): Page {
  const t = current('virt_to_page')
  const pa = cpuPa(t, 'virt_to_page', p, 1)
  return sysOf(t).pages.ensure(Math.floor(pa / PAGE_SIZE)).page
}

/** `page_to_phys`. */
export function page_to_phys(page: Page): PhysAddr {
  return (page.pfn * PAGE_SIZE) as PhysAddr
}

/** `virt_to_phys` of a linear-map address. */
export function virt_to_phys(p: CpuAddr): PhysAddr {
  const t = current('virt_to_phys')
  return cpuPa(t, 'virt_to_phys', p, 1) as PhysAddr
}

/** `phys_to_virt`. */
export function phys_to_virt(x: PhysAddr): CpuAddr {
  const t = current('phys_to_virt')
  if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0) badArg(t, 'phys_to_virt', 'x', `must be a PhysAddr, got ${String(x)}`)
  return (x + PAGE_OFFSET) as CpuAddr
}

// ---------------------------------------------------------------------- CPU accessors

const scratch = new Uint8Array(8)
const view = new DataView(scratch.buffer)

function offsetOf(t: Task, fn: string, off: unknown): number {
  if (off === undefined) return 0
  if (typeof off !== 'number' || !Number.isInteger(off)) badArg(t, fn, 'off', `must be an integer byte offset, got ${String(off)}`)
  return off
}

function load(fn: string, p: CpuAddr, off: unknown, n: number): void {
  const t = current(fn)
  const pa = cpuAccess(t, fn, p + offsetOf(t, fn, off), n, false)
  const sys = sysOf(t)
  sys.cpuWork(sys.costs.memAccessNs)
  sys.machine.cache.read(pa, scratch, 0, n)
}

/**
 * A CPU store of n bytes of value. The value goes into the shared scratch bytes only after the
 * kernel call: an interrupt taken at that call runs handlers whose own accesses use the scratch
 * bytes too.
 */
function store(fn: string, p: CpuAddr, off: unknown, n: number, value: number | bigint): void {
  const t = current(fn)
  const pa = cpuAccess(t, fn, p + offsetOf(t, fn, off), n, true)
  const sys = sysOf(t)
  sys.cpuWork(sys.costs.memAccessNs)
  if (n === 1) scratch[0] = value as number
  else if (n === 2) view.setUint16(0, value as number, true)
  else if (n === 4) view.setUint32(0, value as number, true)
  else view.setBigUint64(0, value as bigint, true)
  sys.machine.cache.write(pa, scratch, 0, n)
}

/** The CPU time of a bulk copy or fill of n bytes. */
function copyCost(sys: Sys, n: number): void {
  sys.cpuWork(sys.costs.memAccessNs + n / sys.costs.copyBytesPerNs)
}

function checkValue(fn: string, v: unknown, bits: number): number {
  if (typeof v === 'bigint') return Number(BigInt.asUintN(bits, v))
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    const t = current(fn)
    badArg(t, fn, 'value', `must be a number, got ${typeof v}`)
  }
  // A shift, not 2 ** bits: a variable exponent is a pow() call (70-90 ns here, measured).
  return bits === 32 ? v >>> 0 : v & ((1 << bits) - 1)
}

/** Reads a byte at p + off. */
export function mem_read8(p: CpuAddr, off = 0): number {
  load('mem_read8', p, off, 1)
  return scratch[0]!
}
/** Reads a little-endian u16 at p + off. */
export function mem_read16(p: CpuAddr, off = 0): number {
  load('mem_read16', p, off, 2)
  return view.getUint16(0, true)
}
/** Reads a little-endian u32 at p + off. */
export function mem_read32(p: CpuAddr, off = 0): number {
  load('mem_read32', p, off, 4)
  return view.getUint32(0, true)
}
/** Reads a little-endian u64 at p + off, as a bigint. */
export function mem_read64(p: CpuAddr, off = 0): bigint {
  load('mem_read64', p, off, 8)
  return view.getBigUint64(0, true)
}
/** Writes a byte at p + off. */
export function mem_write8(p: CpuAddr, off: number, value: number): void {
  store('mem_write8', p, off, 1, checkValue('mem_write8', value, 8))
}
/** Writes a little-endian u16 at p + off. */
export function mem_write16(p: CpuAddr, off: number, value: number): void {
  store('mem_write16', p, off, 2, checkValue('mem_write16', value, 16))
}
/** Writes a little-endian u32 at p + off. */
export function mem_write32(p: CpuAddr, off: number, value: number): void {
  store('mem_write32', p, off, 4, checkValue('mem_write32', value, 32))
}
/** Writes a little-endian u64 at p + off. */
export function mem_write64(p: CpuAddr, off: number, value: bigint | number): void {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) badArg(current('mem_write64'), 'mem_write64', 'value', `must be a non-negative integer or bigint, got ${value}`)
    value = BigInt(value)
  }
  if (typeof value !== 'bigint') badArg(current('mem_write64'), 'mem_write64', 'value', `must be a bigint or number, got ${typeof value}`)
  store('mem_write64', p, off, 8, BigInt.asUintN(64, value))
}

/** Copies n bytes out of kernel memory. */
export function mem_read_bytes(p: CpuAddr, n: number): Uint8Array {
  const t = current('mem_read_bytes')
  checkCopyLen(t, 'mem_read_bytes', 'n', n)
  if (n === 0) return new Uint8Array(0)
  // The range is checked (RAM, KASAN, ownership) before the host allocates the copy.
  const pa = cpuAccess(t, 'mem_read_bytes', p, n, false)
  const out = new Uint8Array(n)
  copyCost(sysOf(t), n)
  sysOf(t).machine.cache.read(pa, out, 0, n)
  return out
}

/** Copies bytes into kernel memory at p. */
export function mem_write_bytes(p: CpuAddr, bytes: Uint8Array): void {
  const t = current('mem_write_bytes')
  if (!(bytes instanceof Uint8Array)) badArg(t, 'mem_write_bytes', 'bytes', 'must be a Uint8Array')
  if (bytes.length === 0) return
  const pa = cpuAccess(t, 'mem_write_bytes', p, bytes.length, true)
  copyCost(sysOf(t), bytes.length)
  sysOf(t).machine.cache.write(pa, bytes, 0, bytes.length)
}

/** Fills n bytes at p with the byte c. */
export function memset(p: CpuAddr, c: number, n: number): void {
  const t = current('memset')
  checkSize(t, 'memset', 'n', n, true)
  if (typeof c !== 'number') badArg(t, 'memset', 'c', 'must be a number')
  if (n === 0) return
  const pa = cpuAccess(t, 'memset', p, n, true)
  copyCost(sysOf(t), n)
  sysOf(t).machine.cache.fill(pa, c & 0xff, n)
}

/** Copies n bytes from src to dst (the ranges must not overlap); the init shadow goes along. */
export function memcpy(dst: CpuAddr, src: CpuAddr, n: number): void {
  const t = current('memcpy')
  checkCopyLen(t, 'memcpy', 'n', n)
  if (n === 0) return
  const s = cpuAccess(t, 'memcpy', src, n, false, 'src')
  const d = cpuAccess(t, 'memcpy', dst, n, true, 'dst')
  const sys = sysOf(t)
  copyCost(sys, n)
  // Through a reused bounce array: allocating a typed array per call costs more than the copy.
  if (copyScratch.length < n) copyScratch = new Uint8Array(Math.max(n, copyScratch.length * 2))
  const tmp = copyScratch
  sys.machine.cache.read(s, tmp, 0, n)
  sys.machine.cache.write(d, tmp, 0, n)
  sys.shadow.copy(d, s, n)
}

/** memcpy's bounce array (grown on demand; one CPU runs at a time, so one array serves all). */
let copyScratch = new Uint8Array(4096)
