/**
 * DMA pools: small coherent blocks carved from coherent pages (mm/dmapool.c). Blocks never cross
 * `boundary`. Freeing a block twice or with a wrong address, and destroying a pool whose blocks
 * are in use, are `pool-misuse` with dmapool's messages.
 */

import type { Device } from '../base/device.js'
import { hex } from '../mm/layout.js'
import { badArg, describeArg } from '../mm/memory.js'
import { current } from '../sched/current.js'
import { mightSleepGfp } from '../sched/might-sleep.js'
import type { System } from '../system.js'
import { GFP_KERNEL, PAGE_SIZE, __GFP_ZERO, type CpuAddr, type DmaAddr } from '../types.js'
import { allocImpl, freeBlock, type DmaBuffer } from './coherent.js'
import { checkDev } from './mapping.js'
import type { DmaMapping } from './types.js'

interface PoolPage {
  readonly m: DmaMapping
  readonly free: number[]
}

/** `struct dma_pool`. */
export class DmaPool {
  readonly name: string
  readonly dev: Device
  readonly size: number
  readonly allocation: number
  readonly boundary: number
  readonly pages: PoolPage[] = []
  /** Blocks handed out: cpu address -> its page. */
  readonly inUse = new Map<number, PoolPage>()
  destroyed = false
  constructor(name: string, dev: Device, size: number, allocation: number, boundary: number) {
    this.name = name
    this.dev = dev
    this.size = size
    this.allocation = allocation
    this.boundary = boundary
  }
  get busy(): number {
    return this.inUse.size
  }
}

const pow2 = (x: number) => x > 0 && (x & (x - 1)) === 0

/** Creates a pool of size-byte blocks aligned to align, never crossing boundary; null on bad arguments. */
export function dma_pool_create(name: string, dev: Device, size: number, align: number, boundary: number): DmaPool | null {
  const fn = 'dma_pool_create'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  if (typeof name !== 'string') badArg(t, fn, 'name', 'must be a string')
  for (const [arg, v] of [['size', size], ['align', align], ['boundary', boundary]] as const) {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) badArg(t, fn, arg, `must be a non-negative integer, got ${String(v)}`)
  }
  if (align === 0) align = 1
  else if (!pow2(align)) return null
  if (size === 0 || size > 1 << 30) return null
  if (size < 4) size = 4
  size = Math.ceil(size / align) * align
  const allocation = Math.max(size, PAGE_SIZE)
  if (boundary === 0) boundary = allocation
  else if (boundary < size || !pow2(boundary)) return null
  const pool = new DmaPool(name, d, size, allocation, Math.min(boundary, allocation))
  d.pools.add(pool)
  return pool
}

/** A managed pool, destroyed at unbind. */
export function dmam_pool_create(name: string, dev: Device, size: number, align: number, boundary: number): DmaPool | null {
  const pool = dma_pool_create(name, dev, size, align, boundary)
  if (pool !== null) dev.devres.push({ what: `dmam_pool_create(${name})`, release: () => destroy(pool) })
  return pool
}

function allocBlock(fn: string, pool: DmaPool, gfp: unknown, zero: boolean): DmaBuffer | null {
  const t = current(fn)
  if (!(pool instanceof DmaPool) || pool.destroyed) badArg(t, fn, 'pool', 'must be a live dma_pool')
  if (gfp !== undefined && (typeof gfp !== 'number' || !Number.isInteger(gfp))) badArg(t, fn, 'gfp', 'must be GFP flags')
  mightSleepGfp(t, fn, typeof gfp === 'number' ? gfp : GFP_KERNEL)
  let page = pool.pages.find((p) => p.free.length > 0)
  if (page === undefined) {
    const m = allocImpl(t, pool.dev, pool.allocation, true, 0)
    if (m === null) return null
    m.pool = pool
    const free: number[] = []
    for (let off = 0; off + pool.size <= pool.allocation; off += pool.size) {
      const start = Math.floor(off / pool.boundary)
      if (start !== Math.floor((off + pool.size - 1) / pool.boundary)) {
        off = (start + 1) * pool.boundary - pool.size
        continue
      }
      free.push(off)
    }
    page = { m, free: free.reverse() }
    pool.pages.push(page)
  }
  const off = page.free.pop()!
  const cpu = page.m.cpu + off
  pool.inUse.set(cpu, page)
  if (zero || (typeof gfp === 'number' && (gfp & __GFP_ZERO) !== 0)) {
    ;(t.sys as System).machine.cache.fill(page.m.cpuPa + off, 0, pool.size)
  }
  return { cpu: cpu as CpuAddr, dma: (page.m.dma + off) as DmaAddr }
}

/** A block from the pool (contents not cleared). */
export function dma_pool_alloc(pool: DmaPool, gfp: number = GFP_KERNEL): DmaBuffer | null {
  return allocBlock('dma_pool_alloc', pool, gfp, false)
}
/** A zeroed block from the pool. */
export function dma_pool_zalloc(pool: DmaPool, gfp: number = GFP_KERNEL): DmaBuffer | null {
  return allocBlock('dma_pool_zalloc', pool, gfp, true)
}

/** Returns a block; cpu and dma must be the pair dma_pool_alloc returned. */
export function dma_pool_free(pool: DmaPool, vaddr: CpuAddr, dma: DmaAddr): void {
  const fn = 'dma_pool_free'
  const t = current(fn)
  if (!(pool instanceof DmaPool) || pool.destroyed) badArg(t, fn, 'pool', 'must be a live dma_pool')
  // A value of the wrong type is a bad argument; a wrong address is dmapool's misuse below.
  if (typeof vaddr !== 'number' || !Number.isSafeInteger(vaddr) || vaddr < 0) badArg(t, fn, 'vaddr', `must be a CpuAddr (a non-negative integer), got ${describeArg(vaddr)}`)
  if (typeof dma !== 'number' || !Number.isSafeInteger(dma) || dma < 0) badArg(t, fn, 'dma', `must be a DmaAddr (a non-negative integer), got ${describeArg(dma)}`)
  const sys = t.sys as System
  const page = pool.pages.find((p) => vaddr >= p.m.cpu && vaddr < p.m.cpu + pool.allocation)
  const misuse = (message: string) => {
    if (sys.checks.dmaDebug) sys.report({ kind: 'pool-misuse', device: pool.dev.name, message, mapping: page?.m, details: { pool: pool.name, vaddr, dma } })
  }
  if (page === undefined) {
    misuse(`dma_pool_free ${pool.name}, ${hex(vaddr)}/${hex(dma)} (bad vaddr): not a block of this pool`)
    return
  }
  const off = vaddr - page.m.cpu
  if (dma - page.m.dma !== off) {
    misuse(`dma_pool_free ${pool.name}, ${hex(vaddr)} (bad vaddr)/${hex(dma)}: the DMA address does not belong to that block`)
    return
  }
  if (!pool.inUse.has(vaddr)) {
    misuse(
      off % pool.size !== 0
        ? `dma_pool_free ${pool.name}, ${hex(vaddr)}/${hex(dma)} (bad vaddr): not the start of a block`
        : `dma_pool_free ${pool.name}, dma ${hex(dma)} already free`,
    )
    return
  }
  pool.inUse.delete(vaddr)
  page.free.push(off)
}

function destroy(pool: DmaPool): void {
  const sys = pool.dev.sys
  if (pool.busy > 0 && sys.checks.dmaDebug) {
    sys.report({ kind: 'pool-misuse', device: pool.dev.name, message: `dma_pool_destroy ${pool.name}, ${hex(pool.pages[0]?.m.cpu ?? 0)} busy: ${pool.busy} blocks still in use (the pages are leaked)`, details: { pool: pool.name, busy: pool.busy } })
  }
  for (const p of pool.pages) {
    // A busy page is leaked, as dmapool does; free pages go back.
    if (![...pool.inUse.values()].includes(p)) freeBlock(sys, p.m)
  }
  pool.destroyed = true
  pool.dev.pools.delete(pool)
}

/** Destroys a pool; every block must have been freed. Sleeps (process context only). */
export function dma_pool_destroy(pool: DmaPool | null): void {
  const t = current('dma_pool_destroy')
  if (pool === null) return
  if (!(pool instanceof DmaPool) || pool.destroyed) badArg(t, 'dma_pool_destroy', 'pool', 'must be a live dma_pool')
  destroy(pool)
}
