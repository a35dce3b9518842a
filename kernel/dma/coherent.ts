/**
 * Coherent ("consistent") and non-coherent allocations (kernel/dma/mapping.c dma_alloc_attrs,
 * kernel/dma/direct.c, drivers/iommu/dma-iommu.c iommu_dma_alloc), with their managed variants.
 *
 * A coherent buffer is zeroed and aligned to the smallest page order that holds it. On a
 * non-coherent platform its pages are made non-cacheable (Linux remaps them uncached after cleaning
 * the kernel alias; dmalab marks the pages non-cacheable after a clean+invalidate), so CPU and
 * device always agree on its contents. A non-coherent allocation (dma_alloc_noncoherent) stays
 * cacheable and follows the streaming ownership rules: it starts owned by the CPU.
 */

import type { Device } from '../base/device.js'
import { captureStack } from '../debug/stack.js'
import { hex, PAGE_OFFSET } from '../mm/layout.js'
import { badArg, checkSize, describeArg } from '../mm/memory.js'
import { KObject, PAGE_ALLOCATED, PAGE_FREED } from '../mm/page.js'
import { current, type Task } from '../sched/current.js'
import { mightSleepGfp } from '../sched/might-sleep.js'
import type { System } from '../system.js'
import { get_order, GFP_KERNEL, PAGE_SIZE, type CpuAddr, type DmaAddr } from '../types.js'
import { IOMMU_READ, IOMMU_WRITE } from '../../devices/index.js'
import { checkDev, checkDir } from './mapping.js'
import { DMA_FROM_DEVICE, DMA_TO_DEVICE, dirName, DmaMapping, MAP_ERR_NOT_APPLICABLE, Ownership, OWN_CPU_DIRTY } from './types.js'

export interface DmaBuffer {
  readonly cpu: CpuAddr
  readonly dma: DmaAddr
}

const fmt16 = (n: number) => `0x${n.toString(16).padStart(16, '0')}`

function allocBlock(sys: System, dev: Device, order: number): number {
  const top = sys.machine.ram.banks.reduce((x, b) => Math.max(x, b.base + b.size), 0) - 1
  // dma_direct_optimal_gfp_mask: a coherent mask below the top of RAM means ZONE_DMA32.
  const zone = dev.iovad === null && dev.coherentLimit < top ? 'dma32' : 'normal'
  return sys.buddy.alloc(order, zone)
}

function allocImpl(t: Task, dev: Device, size: number, coherent: boolean, dir: number): DmaMapping | null {
  const sys = t.sys as System
  const order = get_order(size)
  if (order > 10) return null
  const bytes = PAGE_SIZE << order
  const pfn = allocBlock(sys, dev, order)
  if (pfn < 0) return null
  const pa = pfn * PAGE_SIZE
  let dma = pa
  let iova = -1
  if (dev.iovad !== null) {
    iova = dev.iovad.alloc(1 << order, dev.coherentLimit)
    if (iova < 0) {
      sys.buddy.free(pfn, order)
      return null
    }
    const prot = coherent || dir !== DMA_TO_DEVICE ? (dir === DMA_FROM_DEVICE && !coherent ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE) : IOMMU_READ
    dev.port.domain!.map(iova, pa, bytes, prot)
    dma = iova
  } else if (dma + bytes - 1 > dev.coherentLimit) {
    sys.buddy.free(pfn, order)
    return null
  }
  const obj = new KObject(coherent ? 'coherent' : 'noncoherent', pa, bytes, bytes, order)
  const stack = sys.checks.stacks ? captureStack() : []
  obj.allocStack = stack
  for (let i = 0; i < 1 << order; i++) {
    const m = sys.pages.ensure(pfn + i)
    m.state = PAGE_ALLOCATED
    m.slab = null
    m.object = obj
  }
  const cache = sys.machine.cache
  if (coherent && !dev.dma_coherent) {
    cache.cleanInvalidate(pa, bytes)
    cache.setUncached(pa, bytes, true)
  }
  cache.fill(pa, 0, bytes)
  sys.machine.storeBuffer.drain()
  sys.shadow.mark(pa, bytes, true)
  const m = new DmaMapping({
    dev,
    type: coherent ? 'coherent' : 'noncoherent',
    dir,
    attrs: 0,
    dma,
    size,
    cpuPa: pa,
    devPa: pa,
    cpu: pa + PAGE_OFFSET,
    slot: null,
    iova,
    iovaPages: iova >= 0 ? 1 << order : 0,
    mapErr: MAP_ERR_NOT_APPLICABLE,
    own: coherent ? null : new Ownership(size, OWN_CPU_DIRTY),
    object: obj,
    stack,
  })
  sys.dma.sanitizer.add(m)
  dev.entries.add(m)
  sys.ordering.forget(pa, size)
  if (sys.ktrace.enabled('dma')) sys.dma.trace('alloc', m, 0, size)
  return m
}

function freeBlock(sys: System, m: DmaMapping): void {
  const obj = m.object!
  sys.dma.release(m)
  obj.live = false
  const pfn = obj.pa / PAGE_SIZE
  if (m.type === 'coherent' && !m.dev.dma_coherent) sys.machine.cache.setUncached(obj.pa, obj.span, false)
  for (let i = 0; i < 1 << obj.order; i++) sys.pages.ensure(pfn + i).state = PAGE_FREED
  sys.buddy.free(pfn, obj.order)
}

function checkGfpArg(t: Task, fn: string, gfp: unknown): void {
  if (gfp !== undefined && (typeof gfp !== 'number' || !Number.isInteger(gfp) || gfp < 0)) badArg(t, fn, 'gfp', `must be GFP flags, got ${String(gfp)}`)
}

/** Allocates size bytes of coherent DMA memory, zeroed; null on failure. */
export function dma_alloc_coherent(dev: Device, size: number, gfp: number = GFP_KERNEL): DmaBuffer | null {
  const fn = 'dma_alloc_coherent'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const n = checkSize(t, fn, 'size', size)
  checkGfpArg(t, fn, gfp)
  mightSleepGfp(t, fn, gfp)
  const m = allocImpl(t, d, n, true, 0)
  return m === null ? null : { cpu: m.cpu as CpuAddr, dma: m.dma as DmaAddr }
}

/** Frees coherent memory; dev, size, cpu and dma must be the allocation's. Not with IRQs disabled. */
export function dma_free_coherent(dev: Device, size: number, cpu_addr: CpuAddr, dma_handle: DmaAddr): void {
  freeImpl('dma_free_coherent', dev, size, cpu_addr, dma_handle, 'coherent', -1)
}

function freeImpl(fn: string, dev: Device, size: number, cpu: CpuAddr, dma: DmaAddr, type: 'coherent' | 'noncoherent', dir: number): void {
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const n = checkSize(t, fn, 'size', size)
  // A value of the wrong type is a bad argument; a wrong address is dma-debug's mismatch below.
  if (typeof cpu !== 'number' || !Number.isSafeInteger(cpu) || cpu < 0) badArg(t, fn, 'cpu_addr', `must be a CpuAddr (a non-negative integer), got ${describeArg(cpu)}`)
  if (typeof dma !== 'number' || !Number.isSafeInteger(dma) || dma < 0) badArg(t, fn, 'dma_handle', `must be a DmaAddr (a non-negative integer), got ${describeArg(dma)}`)
  const sys = t.sys as System
  if (t.irqsDisabled > 0 || t.context === 'hardirq') {
    sys.report({ kind: 'invalid-context', device: d.name, message: `WARNING: ${fn}() called with IRQs disabled (kernel/dma/mapping.c: WARN_ON(irqs_disabled())): it may sleep and must run in process context` })
  }
  const list = d.entries.exact(dma)
  const m = list.find((e) => e.type === type) ?? list[0]
  const bad = (message: string) => {
    if (sys.checks.dmaDebug) sys.report({ kind: 'free-coherent-mismatch', device: d.name, message, mapping: m, details: { dma, size: n, cpu } })
  }
  if (m === undefined) {
    bad(`device driver tries to free DMA memory it has not allocated [device address=${fmt16(dma)}] [size=${n} bytes]`)
    return
  }
  if (m.type !== type) {
    bad(`device driver frees DMA memory with wrong function [device address=${fmt16(dma)}] [size=${n} bytes] [mapped as ${m.type}] [unmapped as ${type}]`)
    return
  }
  if (m.size !== n) {
    bad(`device driver frees DMA memory with different size [device address=${fmt16(dma)}] [map size=${m.size} bytes] [unmap size=${n} bytes]`)
  }
  if (m.cpu !== cpu) {
    bad(`device driver frees DMA memory with different CPU address [device address=${fmt16(dma)}] [size=${n} bytes] [cpu alloc address=${hex(m.cpu)}] [cpu free address=${hex(cpu)}]`)
  }
  if (type === 'noncoherent' && m.dir !== dir) {
    bad(`device driver frees DMA memory with different direction [device address=${fmt16(dma)}] [size=${n} bytes] [mapped with ${dirName(m.dir)}] [unmapped with ${dirName(dir)}]`)
  }
  // The emulator frees the allocation it knows (Linux would free whatever the wrong arguments say).
  freeBlock(sys, m)
}

/** Managed dma_alloc_coherent: freed automatically when the device is unbound. */
export function dmam_alloc_coherent(dev: Device, size: number, gfp: number = GFP_KERNEL): DmaBuffer | null {
  const buf = dma_alloc_coherent(dev, size, gfp)
  if (buf === null) return null
  const t = current('dmam_alloc_coherent')
  const sys = t.sys as System
  dev.devres.push({
    what: `dmam_alloc_coherent(${size})`,
    release: () => {
      const m = dev.entries.exact(buf.dma).find((e) => e.type === 'coherent')
      if (m !== undefined) freeBlock(sys, m)
    },
  })
  return buf
}

/** Frees memory from dmam_alloc_coherent early. */
export function dmam_free_coherent(dev: Device, size: number, cpu_addr: CpuAddr, dma_handle: DmaAddr): void {
  const i = dev.devres.findIndex((r) => r.what === `dmam_alloc_coherent(${size})`)
  if (i >= 0) dev.devres.splice(i, 1)
  dma_free_coherent(dev, size, cpu_addr, dma_handle)
}

/** Cacheable DMA memory owned by the CPU until dma_sync_single_for_device; null on failure. */
export function dma_alloc_noncoherent(dev: Device, size: number, dir: number, gfp: number = GFP_KERNEL): DmaBuffer | null {
  const fn = 'dma_alloc_noncoherent'
  const t = current(fn)
  const d = checkDev(t, fn, dev)
  const n = checkSize(t, fn, 'size', size)
  const direction = checkDir(t, fn, dir)
  checkGfpArg(t, fn, gfp)
  mightSleepGfp(t, fn, gfp)
  const m = allocImpl(t, d, n, false, direction)
  return m === null ? null : { cpu: m.cpu as CpuAddr, dma: m.dma as DmaAddr }
}

/** Frees memory from dma_alloc_noncoherent; all arguments must match. */
export function dma_free_noncoherent(dev: Device, size: number, cpu_addr: CpuAddr, dma_handle: DmaAddr, dir: number): void {
  const t = current('dma_free_noncoherent')
  checkDir(t, 'dma_free_noncoherent', dir)
  freeImpl('dma_free_noncoherent', dev, size, cpu_addr, dma_handle, 'noncoherent', dir)
}

export { freeBlock, allocImpl }
