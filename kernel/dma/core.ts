/**
 * The DMA mapping core of one system: dma-direct (kernel/dma/direct.c, direct.h), the dma-iommu
 * path (drivers/iommu/dma-iommu.c), the architecture's cache maintenance
 * (arch/arm64/mm/dma-mapping.c, arch/riscv/mm/dma-noncoherent.c), swiotlb's copies
 * (kernel/dma/swiotlb.c) and dma-debug's checks at unmap and sync (kernel/dma/debug.c).
 *
 * Maintenance on a non-coherent device:
 *   for_device (map, sync_for_device): clean, every direction (arm64 and riscv alike);
 *   for_cpu (unmap, sync_for_cpu): nothing for DMA_TO_DEVICE, else invalidate — arm64's
 *   dcache_inval_poc (partial lines cleaned first), riscv's cbo.inval (whole lines discarded).
 * Coherent devices get no maintenance at all; only swiotlb copies remain.
 */

import type { Device } from '../base/device.js'
import { hex } from '../mm/layout.js'
import type { System } from '../system.js'
import { HZ, offset_in_page, PAGE_SIZE } from '../types.js'
import { IOMMU_READ, IOMMU_WRITE } from '../../devices/index.js'
import { IOVA_FQ_TIMEOUT_MS, IovaFlushQueue, pagesSpanned } from './iova.js'
import { Sanitizer } from './sanitizer.js'
import { Swiotlb, SWIOTLB_MAX_MAPPING } from './swiotlb.js'
import {
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_BIDIRECTIONAL,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dirName,
  DmaMapping,
  MAP_ERR_CHECKED,
  MAP_ERR_NOT_APPLICABLE,
  MAP_ERR_NOT_CHECKED,
  Ownership,
  OWN_CPU,
  OWN_DEVICE,
  OWN_PENDING,
  type BounceSlot,
  type MapType,
} from './types.js'
import { captureStack, siteOf, type StackFrame } from '../debug/stack.js'
import type { DmaApiOp } from '../trace/events.js'
import type { KObject } from '../mm/page.js'

const fmt16 = (n: number) => `0x${n.toString(16).padStart(16, '0')}`

export interface MapRequest {
  dev: Device
  cpuPa: number
  size: number
  dir: number
  attrs: number
  type: MapType
  object: KObject | null
  stack: readonly StackFrame[]
}

export class DmaCore {
  readonly sanitizer: Sanitizer
  /** The swiotlb pool, or null with swiotlb=off. */
  readonly swiotlb: Swiotlb | null
  readonly #sys: System
  readonly #invalidatePartialLines: boolean
  /** Lazy mode's flush queue per device domain. */
  readonly #fqs = new Map<Device, IovaFlushQueue>()

  constructor(sys: System) {
    this.#sys = sys
    this.sanitizer = new Sanitizer(sys)
    if (sys.checks.dmaDebug || sys.checks.ownership || sys.checks.kmsan) sys.machine.observer = this.sanitizer
    // riscv's cbo.inval discards whole blocks; arm64 (and the x86 fallback) clean partial lines.
    this.#invalidatePartialLines = sys.arch !== 'riscv64'
    if (sys.options.swiotlb === 'off') this.swiotlb = null
    else {
      const bytes = sys.options.swiotlbSize
      const order = Math.ceil(Math.log2(bytes / PAGE_SIZE))
      // The pool is reserved below 4 GiB at boot, in max-order blocks.
      let base = -1
      const blocks = Math.ceil(bytes / (PAGE_SIZE << Math.min(order, 10)))
      for (let i = 0; i < blocks; i++) {
        const pfn = sys.buddy.alloc(Math.min(order, 10), 'dma32')
        if (pfn < 0) throw new RangeError('swiotlb: cannot reserve the bounce pool below 4 GiB')
        if (i === 0) base = pfn * PAGE_SIZE
      }
      this.swiotlb = new Swiotlb(base, bytes)
      sys.shadow.mark(base, bytes, true)
    }
  }

  // ------------------------------------------------------------------ architecture hooks

  /** arch_sync_dma_for_device: clean to the point of coherency, every direction. */
  archSyncForDevice(pa: number, size: number): void {
    this.#chargeLines(pa, size)
    this.#sys.machine.cache.clean(pa, size)
  }

  /** Cache maintenance visits every line of the range: the CPU time of `dc cvac`/`dc ivac` loops. */
  #chargeLines(pa: number, size: number): void {
    const sys = this.#sys
    const ls = sys.machine.cache.lineSize
    sys.cpuWork((Math.floor((pa + size - 1) / ls) - Math.floor(pa / ls) + 1) * sys.costs.cacheLineOpNs)
  }

  /** arch_sync_dma_for_cpu: nothing for DMA_TO_DEVICE, else invalidate. */
  archSyncForCpu(pa: number, size: number, dir: number): void {
    if (dir === DMA_TO_DEVICE) return
    this.#chargeLines(pa, size)
    const cache = this.#sys.machine.cache
    if (this.#invalidatePartialLines) cache.invalPoc(pa, size)
    else cache.invalidate(pa, size)
  }

  /** The kernel's own memcpy through the cache (swiotlb_bounce): never checked, carries the shadow. */
  kernelCopy(dst: number, src: number, len: number): void {
    if (len <= 0) return
    this.#sys.cpuWork(len / this.#sys.costs.copyBytesPerNs)
    const cache = this.#sys.machine.cache
    const tmp = new Uint8Array(len)
    cache.read(src, tmp, 0, len)
    cache.write(dst, tmp, 0, len)
    this.#sys.shadow.copy(dst, src, len)
  }

  /** Whether dev can reach [dma, dma+size) (dma_capable). */
  capable(dev: Device, dma: number, size: number, coherentMask = false): boolean {
    return dma + size - 1 <= (coherentMask ? dev.coherentLimit : dev.dmaLimit)
  }

  // ------------------------------------------------------------------ streaming map / unmap / sync

  /** Maps a physically contiguous buffer; returns the mapping or null (DMA_MAPPING_ERROR). */
  map(req: MapRequest): DmaMapping | null {
    const { dev, cpuPa, size, dir, attrs } = req
    const sys = this.#sys
    const nonCoherent = !dev.dma_coherent
    const sync = nonCoherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0
    const force = sys.options.swiotlb === 'force'
    let devPa = cpuPa
    let slot: BounceSlot | null = null
    let dma: number
    let iova = -1
    let iovaPages = 0
    if (dev.iovad !== null) {
      if (force) {
        slot = this.#bounce(dev, cpuPa, size, attrs)
        if (slot === null) return null
        devPa = slot.pa
      } else if (sync) this.archSyncForDevice(cpuPa, size)
      iovaPages = pagesSpanned(devPa, size)
      iova = dev.iovad.alloc(iovaPages, dev.dmaLimit)
      if (iova < 0) {
        if (slot !== null) this.swiotlb!.release(slot)
        sys.logger.error({ dev: dev.name }, `${dev.name}: IOVA space exhausted for a ${size}-byte mapping`)
        return null
      }
      const prot = dir === DMA_TO_DEVICE ? IOMMU_READ : dir === DMA_FROM_DEVICE ? IOMMU_WRITE : IOMMU_READ | IOMMU_WRITE
      dev.port.domain!.map(iova, Math.floor(devPa / PAGE_SIZE) * PAGE_SIZE, iovaPages * PAGE_SIZE, prot)
      dma = iova + offset_in_page(devPa)
    } else {
      dma = cpuPa
      if (force || !this.capable(dev, cpuPa, size)) {
        if (this.swiotlb === null) {
          sys.logger.error({ dev: dev.name }, `${dev.name}: DMA addr ${hex(cpuPa)}+${size} overflow (mask ${hex(dev.dmaLimit)}, bus limit 0).`)
          return null
        }
        slot = this.#bounce(dev, cpuPa, size, attrs)
        if (slot === null) return null
        devPa = slot.pa
        dma = devPa
        if (!this.capable(dev, dma, size)) {
          this.swiotlb.release(slot)
          sys.logger.error({ dev: dev.name }, `${dev.name}: swiotlb addr ${hex(dma)}+${size} overflow (mask ${hex(dev.dmaLimit)}, bus limit 0).`)
          return null
        }
      } else if (sync) this.archSyncForDevice(cpuPa, size)
    }
    const checked = sys.checks.dmaDebug || sys.checks.ownership || sys.checks.kmsan
    const m = new DmaMapping({
      dev,
      type: req.type,
      dir,
      attrs,
      dma,
      size,
      cpuPa,
      devPa,
      cpu: cpuPa,
      slot,
      iova,
      iovaPages,
      mapErr: req.type === 'single' ? MAP_ERR_NOT_CHECKED : MAP_ERR_NOT_APPLICABLE,
      own: new Ownership(size, (attrs & DMA_ATTR_SKIP_CPU_SYNC) !== 0 ? OWN_PENDING : OWN_DEVICE),
      object: req.object,
      stack: req.stack,
    })
    if (checked) this.sanitizer.add(m, sys.checks.ownership)
    dev.entries.add(m)
    if (sys.ktrace.enabled('dma')) this.trace('map', m, 0, size)
    return m
  }

  /** The dma trace point (include/trace/events/dma.h): one DMA API call on m over [off, off+len). */
  trace(op: DmaApiOp, m: DmaMapping, off: number, len: number): void {
    const site = siteOf(captureStack(1))
    this.#sys.ktrace.emit('dma', {
      time: this.#sys.machine.clock.now,
      op,
      device: m.dev.name,
      id: m.id,
      type: m.type,
      dir: m.dir,
      dma: m.dma,
      size: m.size,
      off,
      len,
      ...(site !== undefined ? { site } : {}),
    })
  }

  /** swiotlb_tbl_map_single: a slot, the orig → bounce copy (any direction) and the clean. */
  #bounce(dev: Device, cpuPa: number, size: number, attrs: number): BounceSlot | null {
    const tlb = this.swiotlb!
    const slot = size <= SWIOTLB_MAX_MAPPING ? tlb.alloc(size) : null
    if (slot === null) {
      this.#sys.logger.error(
        { dev: dev.name },
        `${dev.name}: swiotlb buffer is full (sz: ${size} bytes), total ${tlb.nslabs} (slots), used ${tlb.usedSlots} (slots)`,
      )
      return null
    }
    this.kernelCopy(slot.pa, cpuPa, size)
    if (!dev.dma_coherent && (attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0) this.archSyncForDevice(slot.pa, size)
    return slot
  }

  /**
   * Tears a mapping down. dir, attrs and size are the unmap call's, and their effects are real: a
   * wrong direction skips the invalidate, a wrong size maintains the wrong range (as Linux would).
   * The bookkeeping (IOVA, slot, indexes) is released from what the mapping really holds.
   */
  unmap(m: DmaMapping, dir: number, attrs: number, size = m.size): void {
    if ((attrs & DMA_ATTR_SKIP_CPU_SYNC) === 0) this.#forCpu(m, 0, size, dir)
    else if (this.#sys.checks.ownership) this.sanitizer.addGhost(m)
    this.release(m)
  }

  /** Frees the IOVA, the PTEs and the bounce slot, and drops the mapping from every index. */
  release(m: DmaMapping): void {
    if (this.#sys.ktrace.enabled('dma')) this.trace(m.type === 'coherent' || m.type === 'noncoherent' ? 'free' : 'unmap', m, 0, m.size)
    m.live = false
    if (m.slot !== null) this.swiotlb!.release(m.slot)
    if (m.iova >= 0) this.unmapIova(m.dev, m.iova, m.iovaPages)
    this.sanitizer.remove(m)
    m.dev.entries.remove(m)
  }

  /**
   * __iommu_dma_unmap: removes the PTEs of npages at iova, then in strict mode invalidates their
   * IOTLB entries and frees the IOVA at once; in lazy mode queues the range on the flush queue,
   * which does both later (the device keeps its cached translations until then).
   */
  unmapIova(dev: Device, iova: number, npages: number): void {
    const domain = dev.port.domain!
    if (this.#sys.options.iommu === 'lazy') {
      domain.unmapFast(iova, npages * PAGE_SIZE)
      this.flushQueue(dev)!.queue(iova, npages)
    } else {
      domain.unmap(iova, npages * PAGE_SIZE) // iommu_unmap_fast + iommu_iotlb_sync
      dev.iovad!.free(iova, npages)
    }
  }

  /**
   * The device's flush queue (iommu lazy mode), created on first use; null without one. Its timer
   * is a kernel timer (jiffies + msecs_to_jiffies(IOVA_FQ_TIMEOUT)), run in softirq context.
   */
  flushQueue(dev: Device): IovaFlushQueue | null {
    if (this.#sys.options.iommu !== 'lazy' || dev.iovad === null) return null
    let fq = this.#fqs.get(dev)
    if (fq === undefined) {
      const sys = this.#sys
      const nsPerJiffy = 1e9 / HZ
      const timeout = Math.ceil((IOVA_FQ_TIMEOUT_MS * 1e6) / nsPerJiffy)
      fq = new IovaFlushQueue(dev.iovad, dev.port.domain!, (fire) => {
        const clock = sys.machine.clock
        const expires = Math.floor(clock.now / nsPerJiffy) + timeout
        clock.schedule(expires * nsPerJiffy, () => {
          sys.raiseSoftirq(() => sys.runAtomic('fq_flush_timeout', 'softirq', fire))
        })
      }, () => sys.machine.clock.now)
      this.#fqs.set(dev, fq)
    }
    return fq
  }

  /** Sync for the CPU over [off, off+len) of m: invalidate, then copy back from the bounce slot. */
  syncForCpu(m: DmaMapping, off: number, len: number, dir: number): void {
    if (this.#sys.ktrace.enabled('dma')) this.trace('sync_for_cpu', m, off, len)
    this.#forCpu(m, off, len, dir)
  }

  /**
   * The for-CPU half of sync_for_cpu and unmap: a read barrier (arm64's dsb), the invalidate over
   * the length the driver passed (a wrong length has real effects, as in Linux), the bounce copy
   * within the mapping, and ownership back to the CPU.
   */
  #forCpu(m: DmaMapping, off: number, len: number, dir: number): void {
    this.#sys.ordering.readBarrier()
    if (!m.dev.dma_coherent) this.archSyncForCpu(m.devPa + off, len, dir)
    if (m.slot !== null && (dir === DMA_FROM_DEVICE || dir === DMA_BIDIRECTIONAL)) {
      this.kernelCopy(m.cpuPa + off, m.devPa + off, Math.min(len, m.size - off))
    }
    m.own?.set(off, off + len, OWN_CPU)
  }

  /** Sync for the device over [off, off+len) of m: copy to the bounce slot, then clean. */
  syncForDevice(m: DmaMapping, off: number, len: number, dir: number): void {
    if (this.#sys.ktrace.enabled('dma')) this.trace('sync_for_device', m, off, len)
    if (m.slot !== null && (dir === DMA_TO_DEVICE || dir === DMA_BIDIRECTIONAL)) {
      this.kernelCopy(m.devPa + off, m.cpuPa + off, len)
      m.initKnown = false
    }
    if (!m.dev.dma_coherent) this.archSyncForDevice(m.devPa + off, len)
    m.own?.set(off, off + len, OWN_DEVICE)
  }

  // ------------------------------------------------------------------ dma-debug checks

  /** dma_mapping_error(): marks the exact entry checked. */
  mappingErrorChecked(dev: Device, dma: number): void {
    for (let m = dev.entries.first(dma) ?? null; m !== null; m = m.nextSame) {
      if (m.mapErr === MAP_ERR_NOT_CHECKED) {
        m.mapErr = MAP_ERR_CHECKED
        return
      }
    }
  }

  /**
   * check_unmap: finds the entry for (dev, dma) and reports every mismatch. Returns the entry, or
   * undefined when none matches (the unmap then does nothing).
   */
  checkUnmap(
    dev: Device,
    dma: number,
    size: number,
    dir: number,
    type: MapType,
    fn: string,
  ): DmaMapping | undefined {
    const sys = this.#sys
    // Best fit on (type, size, direction), as dma-debug's bucket_find_exact does.
    const head = dev.entries.first(dma)
    let m: DmaMapping | undefined
    let sameType: DmaMapping | undefined
    for (let e = head ?? null; e !== null; e = e.nextSame) {
      if (e.type !== type) continue
      sameType ??= e
      if (e.size === size && e.dir === dir) {
        m = e
        break
      }
    }
    m ??= sameType ?? head
    const debug = sys.checks.dmaDebug
    if (m === undefined) {
      if (debug) {
        sys.report({
          kind: 'unmap-unknown',
          device: dev.name,
          message:
            dma === 2 ** 53 - 1
              ? `device driver tries to free an invalid DMA memory address (${fn} of DMA_MAPPING_ERROR)`
              : `device driver tries to free DMA memory it has not allocated [device address=${fmt16(dma)}] [size=${size} bytes]`,
          details: { dma, size },
        })
      }
      return undefined
    }
    if (!debug) return m
    if (m.size !== size && m.type !== 'scatter-gather') {
      sys.report({
        kind: 'unmap-size-mismatch',
        device: dev.name,
        message: `device driver frees DMA memory with different size [device address=${fmt16(dma)}] [map size=${m.size} bytes] [unmap size=${size} bytes]`,
        mapping: m,
        details: { dma, mapSize: m.size, unmapSize: size },
      })
    }
    if (m.type !== type) {
      sys.report({
        kind: 'unmap-type-mismatch',
        device: dev.name,
        message: `device driver frees DMA memory with wrong function [device address=${fmt16(dma)}] [size=${size} bytes] [mapped as ${m.type}] [unmapped as ${type}]`,
        mapping: m,
        details: { dma, mappedAs: m.type, unmappedAs: type },
      })
    }
    if (m.dir !== dir && m.type === type) {
      sys.report({
        kind: 'unmap-direction-mismatch',
        device: dev.name,
        message: `device driver frees DMA memory with different direction [device address=${fmt16(dma)}] [size=${size} bytes] [mapped with ${dirName(m.dir)}] [unmapped with ${dirName(dir)}]`,
        mapping: m,
        details: { dma, mappedWith: dirName(m.dir), unmappedWith: dirName(dir) },
      })
    }
    this.reportUnchecked(m, 'unmapped')
    return m
  }

  /** map-error-unchecked, once per mapping. */
  reportUnchecked(m: DmaMapping, how: string): void {
    if (!this.#sys.checks.dmaDebug || m.mapErr !== MAP_ERR_NOT_CHECKED || m.mapErrReported) return
    m.mapErrReported = true
    this.#sys.report({
      kind: 'map-error-unchecked',
      device: m.dev.name,
      message: `device driver failed to check map error[device address=${fmt16(m.dma)}] [size=${m.size} bytes] [mapped as ${m.type}]: it was ${how} before dma_mapping_error()`,
      mapping: m,
      details: { dma: m.dma, size: m.size },
    })
  }

  /** check_sync: finds the containing entry and reports misuse; returns it or undefined. */
  checkSync(dev: Device, dma: number, size: number, dir: number, toCpu: boolean): DmaMapping | undefined {
    const sys = this.#sys
    const m = dev.entries.containing(dma, size)
    const debug = sys.checks.dmaDebug
    if (m === undefined) {
      if (!debug) return undefined
      const holder = dev.entries.holding(dma)
      if (holder !== undefined) {
        sys.report({
          kind: 'sync-out-of-range',
          device: dev.name,
          message: `device driver syncs DMA memory outside allocated range [device address=${fmt16(holder.dma)}] [allocation size=${holder.size} bytes] [sync offset+size=${dma - holder.dma + size}]`,
          mapping: holder,
          details: { dma: holder.dma, allocationSize: holder.size, syncEnd: dma - holder.dma + size },
        })
      } else {
        sys.report({
          kind: 'sync-unmapped',
          device: dev.name,
          message: `device driver tries to sync DMA memory it has not allocated [device address=${fmt16(dma)}] [size=${size} bytes]`,
          details: { dma, size },
        })
      }
      return undefined
    }
    if (!debug) return m
    this.reportUnchecked(m, 'synced')
    if (m.dir === DMA_BIDIRECTIONAL) return m
    const base = `[device address=${fmt16(dma)}] [size=${size} bytes] [mapped with ${dirName(m.dir)}] [synced with ${dirName(dir)}]`
    if (dir !== m.dir) {
      let message = `device driver syncs DMA memory with different direction ${base}`
      if (toCpu && m.dir !== DMA_FROM_DEVICE && dir !== DMA_TO_DEVICE) {
        message = `device driver syncs device read-only DMA memory for cpu ${base}`
      } else if (!toCpu && m.dir !== DMA_TO_DEVICE && dir !== DMA_FROM_DEVICE) {
        message = `device driver syncs device write-only DMA memory to device ${base}`
      }
      sys.report({ kind: 'sync-direction-mismatch', device: dev.name, message, mapping: m, details: { dma, mappedWith: dirName(m.dir), syncedWith: dirName(dir) } })
    }
    return m
  }

  /** The leak report at unbind (dma_debug_device_change). */
  reportLeaks(dev: Device): void {
    const sys = this.#sys
    if (!sys.checks.dmaDebug) return
    const entries = dev.entries.all()
    if (entries.length > 0) {
      const e = entries[0]!
      sys.report({
        kind: 'leak',
        device: dev.name,
        message: `device driver has pending DMA allocations while released from device [count=${entries.length}]\nOne of leaked entries details: [device address=${fmt16(e.dma)}] [size=${e.size} bytes] [mapped with ${dirName(e.dir)}] [mapped as ${e.type}]`,
        mapping: e,
        details: { count: entries.length, dma: e.dma, size: e.size },
      })
    }
    for (const pool of dev.pools) {
      sys.report({
        kind: 'leak',
        device: dev.name,
        message: `dma_pool ${pool.name} not destroyed before the device was released (${pool.busy} blocks in use)`,
        details: { pool: pool.name, busy: pool.busy },
      })
    }
  }
}

