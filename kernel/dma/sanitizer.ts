/**
 * The DMA ownership sanitizer: it sees every CPU and every device access and holds drivers to the
 * ownership model of Documentation/core-api/dma-api-howto.rst — the checks dma-debug cannot make
 * (it only sees API calls), in the spirit of the old `debug_dma_assert_idle()` and KMSAN's
 * `kmsan_handle_dma()`.
 *
 * Each streaming mapping keeps ownership per byte range (kernel/dma/types.ts). Pages carry two
 * indexes: the mappings whose CPU-side bytes lie in them, and the regions a device may reach in
 * them (mappings at their device-side address — a bounce slot when bounced — and coherent memory).
 * The kernel's own swiotlb copies never pass through here.
 */

import type { BlockedReason, DmaObserver, DmaPort } from '../../devices/index.js'
import type { Device } from '../base/device.js'
import { hex } from '../mm/layout.js'
import type { KObject } from '../mm/page.js'
import type { System } from '../system.js'
import { PAGE_SIZE } from '../types.js'
import { insertAt, lowerBound, removeAt } from '../lib/sorted.js'
import {
  DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_FROM_DEVICE,
  DMA_TO_DEVICE,
  dirName,
  MAP_ERR_NOT_CHECKED,
  OWN_CPU,
  OWN_CPU_DIRTY,
  OWN_DEVICE,
  OWN_PENDING,
  type DmaMapping,
} from './types.js'

const addTo = <T>(list: T[] | null, x: T): T[] => {
  if (list === null) return [x]
  list.push(x)
  return list
}
/** Removes x; an emptied list is kept (not re-allocated on the next map of the page). */
const removeFrom = <T>(list: T[] | null, x: T): T[] | null => {
  if (list === null) return null
  if (list.length === 1) {
    if (list[0] === x) list.pop()
    return list
  }
  const i = list.indexOf(x)
  if (i >= 0) removeAt(list, i)
  return list
}

const byCpuPa = (m: DmaMapping) => m.cpuPa

/** Mappings spanning more pages than this live in one sorted list instead of the page index. */
const LARGE_PAGES = 4

export class Sanitizer implements DmaObserver {
  readonly #sys: System
  /** Live large mappings sorted by cpuPa (registration is O(log n), not O(pages)). */
  readonly #large: DmaMapping[] = []
  #largeMax = 0
  /** Live small mappings (indexed per page) and ghost records, to skip page scans when none. */
  #small = 0
  #ghosts = 0

  constructor(sys: System) {
    this.#sys = sys
  }

  // ------------------------------------------------------------------ registration

  #lowerBound(pa: number): number {
    return lowerBound(this.#large, pa, byCpuPa)
  }

  /** Calls fn for each large mapping whose CPU bytes overlap [from, to). */
  #forLarge(from: number, to: number, fn: (m: DmaMapping) => void): void {
    const l = this.#large
    if (l.length === 0) return
    for (let i = this.#lowerBound(to) - 1; i >= 0; i--) {
      const m = l[i]!
      if (m.cpuPa + this.#largeMax <= from) break
      if (m.cpuPa + m.size > from) fn(m)
    }
  }

  /**
   * Indexes a streaming mapping by its CPU-side bytes: small ones on the pages they cover, large
   * ones in a sorted list. (Device accesses find their mapping by bus address in the device's
   * dma-debug table, so nothing is indexed for that side.)
   */
  add(m: DmaMapping, checkOverlap = false): void {
    if (m.own === null) return
    const pages = this.#sys.pages
    const first = Math.floor(m.cpuPa / PAGE_SIZE)
    const last = Math.floor((m.cpuPa + m.size - 1) / PAGE_SIZE)
    if (checkOverlap) this.checkOverlap(m)
    if (this.#ghosts > 0) {
      for (let p = first; p <= last; p++) {
        const meta = pages.get(p)
        if (meta?.ghosts == null) continue
        const before = meta.ghosts.length
        meta.ghosts = meta.ghosts.filter((g) => g.cpuPa + g.size <= m.cpuPa || g.cpuPa >= m.cpuPa + m.size)
        this.#ghosts -= before - meta.ghosts.length
        if (meta.ghosts.length === 0) meta.ghosts = null
      }
    }
    if (last - first + 1 > LARGE_PAGES) {
      const l = this.#large
      if (l.length === 0 || l[l.length - 1]!.cpuPa <= m.cpuPa) l.push(m)
      else insertAt(l, this.#lowerBound(m.cpuPa), m)
      if (m.size > this.#largeMax) this.#largeMax = m.size
      return
    }
    this.#small++
    for (let p = first; p <= last; p++) {
      const meta = pages.ensure(p)
      meta.cpuMaps = addTo(meta.cpuMaps, m)
    }
  }

  remove(m: DmaMapping): void {
    if (m.own === null) return
    const first = Math.floor(m.cpuPa / PAGE_SIZE)
    const last = Math.floor((m.cpuPa + m.size - 1) / PAGE_SIZE)
    if (last - first + 1 > LARGE_PAGES) {
      const l = this.#large
      if (l.length === 1 && l[0] === m) l.pop()
      else {
        for (let i = this.#lowerBound(m.cpuPa); i < l.length && l[i]!.cpuPa === m.cpuPa; i++) {
          if (l[i] === m) {
            removeAt(l, i)
            break
          }
        }
      }
      return
    }
    this.#small--
    const pages = this.#sys.pages
    for (let p = first; p <= last; p++) {
      const meta = pages.get(p)
      if (meta !== undefined) meta.cpuMaps = removeFrom(meta.cpuMaps, m)
    }
  }

  /** Every live streaming mapping whose CPU bytes overlap [from, to), small and large. */
  #overlapping(from: number, to: number, fn: (m: DmaMapping) => void): void {
    if (this.#small > 0) {
      const seen = new Set<DmaMapping>()
      for (let p = Math.floor(from / PAGE_SIZE); p <= Math.floor((to - 1) / PAGE_SIZE); p++) {
        const maps = this.#sys.pages.get(p)?.cpuMaps
        if (maps == null) continue
        for (const o of maps) {
          if (seen.has(o) || o.cpuPa >= to || o.cpuPa + o.size <= from) continue
          seen.add(o)
          fn(o)
        }
      }
    }
    this.#forLarge(from, to, fn)
  }

  /**
   * Unmapped with DMA_ATTR_SKIP_CPU_SYNC: bytes the device still owned in a device-writable
   * mapping were never handed back, so the CPU must not touch them (they may be stale in its
   * cache) until the memory is freed or mapped again.
   */
  addGhost(m: DmaMapping): void {
    if (m.own === null || m.dir === DMA_TO_DEVICE) return
    let owned = false
    m.own.forEach(0, m.size, (_a, _b, st) => {
      if (st === OWN_DEVICE) owned = true
    })
    if (!owned) return
    for (let p = Math.floor(m.cpuPa / PAGE_SIZE); p <= Math.floor((m.cpuPa + m.size - 1) / PAGE_SIZE); p++) {
      const meta = this.#sys.pages.ensure(p)
      meta.ghosts = addTo(meta.ghosts, m)
      this.#ghosts++
    }
  }

  /** Overlapping-mapping check for a new streaming mapping (before it is added); true if reported. */
  checkOverlap(m: DmaMapping): boolean {
    if (m.own === null || (m.attrs & DMA_ATTR_SKIP_CPU_SYNC) !== 0) return false
    let hit: DmaMapping | undefined
    this.#overlapping(m.cpuPa, m.cpuPa + m.size, (o) => {
      if (hit !== undefined || o === m) return
      if (m.dir === DMA_TO_DEVICE && o.dir === DMA_TO_DEVICE) return
      if ((m.attrs & o.attrs & DMA_ATTR_DEBUGGING_IGNORE_CACHELINES) !== 0) return
      hit = o
    })
    if (hit === undefined) return false
    const o: DmaMapping = hit
    this.#sys.report({
      kind: 'overlapping-mapping',
      device: m.dev.name,
      message: `device driver maps memory that is already mapped [cpu phys=${hex(m.cpuPa)}] [size=${m.size} bytes] [mapped with ${dirName(m.dir)}]; it is already mapped with ${dirName(o.dir)} at [device address=${hex(o.dma)}] for ${o.dev.name}`,
      mapping: o,
      details: { phys: m.cpuPa, size: m.size, existing: o.dma },
    })
    return true
  }

  // ------------------------------------------------------------------ CPU accesses

  /**
   * A driver's CPU access to [pa, pa+len). `obj` is the allocation holding pa (for the
   * same-allocation rule of `cacheline-shared`).
   */
  cpuAccess(pa: number, len: number, write: boolean, obj: KObject | null | undefined): void {
    const pages = this.#sys.pages
    const end = pa + len
    if (this.#large.length > 0) {
      // Large mappings sharing a line with the access matter too (cacheline-shared).
      const ls = this.#sys.machine.cache.lineSize
      this.#forLarge(Math.floor(pa / ls) * ls, Math.ceil(end / ls) * ls, (m) => this.#cpuVsMapping(m, pa, end, write, obj))
    }
    if (this.#small === 0 && this.#ghosts === 0) return
    const lastPage = Math.floor((end - 1) / PAGE_SIZE)
    for (let p = Math.floor(pa / PAGE_SIZE); p <= lastPage; p++) {
      const meta = pages.get(p)
      if (meta === undefined) continue
      if (meta.cpuMaps !== null && meta.cpuMaps.length > 0) {
        for (const m of meta.cpuMaps) this.#cpuVsMapping(m, pa, end, write, obj)
      }
      if (meta.ghosts !== null) {
        for (const g of meta.ghosts) {
          if (g.cpuPa >= end || g.cpuPa + g.size <= pa) continue
          this.#sys.report({
            kind: 'cpu-access-device-owned',
            device: g.dev.name,
            message: `CPU ${write ? 'write to' : 'read of'} [cpu phys=${hex(Math.max(pa, g.cpuPa))}] of a ${dirName(g.dir)} buffer that was unmapped with DMA_ATTR_SKIP_CPU_SYNC while the device owned it: sync it for the CPU (dma_sync_single_for_cpu) before such an unmap`,
            mapping: g,
            details: { phys: pa, len, mapped: g.dma },
          })
        }
      }
    }
  }

  #cpuVsMapping(m: DmaMapping, pa: number, end: number, write: boolean, obj: KObject | null | undefined): void {
    const mEnd = m.cpuPa + m.size
    const own = m.own!
    if (pa < mEnd && end > m.cpuPa) {
      if (write) m.initKnown = false
      const a = Math.max(pa, m.cpuPa) - m.cpuPa
      const b = Math.min(end, mEnd) - m.cpuPa
      const st = own.uniform(a, b)
      if (st === OWN_CPU_DIRTY || st === OWN_PENDING || (st === OWN_CPU && !write)) {
        /* the CPU owns these bytes */
      } else if (st === OWN_CPU) own.set(a, b, OWN_CPU_DIRTY)
      else {
        let deviceOwned = false
        own.forEach(a, b, (from, to, s) => {
          if (s === OWN_DEVICE) deviceOwned = true
          else if (s === OWN_CPU && write) own.set(from, to, OWN_CPU_DIRTY)
        })
        if (deviceOwned && (write || m.dir !== DMA_TO_DEVICE)) {
          this.#sys.report({
            kind: 'cpu-access-device-owned',
            device: m.dev.name,
            message: write
              ? `CPU write to [cpu phys=${hex(m.cpuPa + a)}] [size=${b - a} bytes] of a ${dirName(m.dir)} mapping the device owns [device address=${hex(m.dma)}] (no dma_sync_single_for_cpu or dma_unmap first): the device may never see it, or the write may be lost`
              : `CPU read of [cpu phys=${hex(m.cpuPa + a)}] [size=${b - a} bytes] of a ${dirName(m.dir)} mapping the device owns [device address=${hex(m.dma)}] (no dma_sync_single_for_cpu or dma_unmap first): the data may be stale`,
            mapping: m,
            details: { phys: m.cpuPa + a, len: b - a, dma: m.dma, write },
          })
        }
      }
    }
    if (!write || m.dir === DMA_TO_DEVICE || (m.attrs & DMA_ATTR_DEBUGGING_IGNORE_CACHELINES) !== 0) return
    // cacheline-shared: the write dirties a line that m shares with other memory.
    const ls = this.#sys.machine.cache.lineSize
    const leftEnd = Math.min(end, m.cpuPa)
    const rightStart = Math.max(pa, mEnd)
    const leftShares = pa < leftEnd && Math.floor((leftEnd - 1) / ls) === Math.floor(m.cpuPa / ls)
    const rightShares = rightStart < end && Math.floor(rightStart / ls) === Math.floor((mEnd - 1) / ls)
    if (!leftShares && !rightShares) return
    const sameAlloc = obj != null && m.object !== null && obj === m.object
    if (!sameAlloc && m.dev.dma_coherent) return
    const at = leftShares ? leftEnd - 1 : rightStart
    this.#sys.report({
      kind: 'cacheline-shared',
      device: m.dev.name,
      message: `CPU write to [cpu phys=${hex(at)}] dirties a ${ls}-byte cache line shared with a live ${dirName(m.dir)} mapping [device address=${hex(m.dma)}] [size=${m.size} bytes]${sameAlloc ? ' of the same allocation (a DMA buffer embedded in a structure)' : ''}: a writeback or the unmap's invalidate can destroy one side's data; give the buffer cache lines of its own (a separate kmalloc, or align and pad it to 128 bytes, the largest ARCH_DMA_MINALIGN, as __dma_from_device_group_begin/end do)`,
      mapping: m,
      details: { phys: at, line: Math.floor(at / ls) * ls, dma: m.dma, sameAllocation: sameAlloc },
    })
  }

  // ------------------------------------------------------------------ freeing memory

  /** kfree/__free_pages of [pa, pa+len): live streaming mappings are `free-while-mapped`. */
  freeing(pa: number, len: number, fn: string): void {
    const end = pa + len
    if (this.#ghosts > 0) {
      for (let p = Math.floor(pa / PAGE_SIZE); p <= Math.floor((end - 1) / PAGE_SIZE); p++) {
        const meta = this.#sys.pages.get(p)
        if (meta?.ghosts == null) continue
        const before = meta.ghosts.length
        meta.ghosts = meta.ghosts.filter((g) => g.cpuPa >= end || g.cpuPa + g.size <= pa)
        this.#ghosts -= before - meta.ghosts.length
        if (meta.ghosts.length === 0) meta.ghosts = null
      }
    }
    this.#overlapping(pa, end, (m) => {
      m.initKnown = false
      this.#sys.report({
        kind: 'free-while-mapped',
        device: m.dev.name,
        message: `${fn}() of memory [cpu phys=${hex(pa)}] [size=${len} bytes] that is still mapped for DMA [device address=${hex(m.dma)}] [size=${m.size} bytes] [${dirName(m.dir)}]: unmap before freeing, or the device may write into reused memory`,
        mapping: m,
        details: { phys: pa, len, dma: m.dma },
      })
    })
  }

  // ------------------------------------------------------------------ device accesses (DmaObserver)

  access(port: DmaPort, pa: number, len: number, write: boolean, bus: number): void {
    const dev = port.opaque as Device | undefined
    if (dev === undefined) return
    const sys = this.#sys
    const end = bus + len
    let pos = bus
    while (pos < end) {
      const at = pa + (pos - bus)
      const r = dev.entries.holding(pos)
      if (r === undefined) {
        const next = dev.entries.nextStart(pos)
        const stop = next === undefined ? end : Math.min(end, next)
        if (sys.checks.ownership) {
          // iommu lazy mode: the IOVA was unmapped but its IOTLB entry not yet invalidated.
          const stale = dev.iovad !== null && sys.dma.flushQueue(dev)?.holds(pos) === true
          sys.report({
            kind: 'device-access-cpu-owned',
            device: dev.name,
            message: stale
              ? `device ${write ? 'write to' : 'read of'} [bus address=${hex(pos)}] [size=${stop - pos} bytes] (phys ${hex(at)}) after the driver unmapped it: the CPU owns it, and the device reached it through a stale IOTLB entry (iommu lazy mode: the invalidation waits in the flush queue)`
              : `device ${write ? 'write to' : 'read of'} [bus address=${hex(pos)}] [size=${stop - pos} bytes] (phys ${hex(at)}), memory that is not mapped for DMA: the CPU owns it (never mapped, or already unmapped)`,
            details: stale ? { bus: pos, len: stop - pos, phys: at, write, staleIotlb: true } : { bus: pos, len: stop - pos, phys: at, write },
          })
        }
        if (write) sys.shadow.mark(at, stop - pos, true)
        pos = stop
        continue
      }
      const chunkEnd = Math.min(end, r.dma + r.size)
      const n = chunkEnd - pos
      const whole = pos === r.dma && n === r.size
      if (r.own !== null) this.#deviceVsMapping(dev, r, pos - r.dma, chunkEnd - r.dma, write)
      else if (r.type === 'coherent' && sys.checks.ownership) {
        // A hostile device's mutated record is garbage, not an ordered write-back: not counted.
        if (!write) sys.ordering.deviceRead(dev, at, n)
        else if (!sys.machine.doubleFetch.isUntrusted(port.name, sys.machine.clock.now)) sys.ordering.deviceWrite(at, n)
      }
      if (write) {
        // Device-written bytes are initialised; a mapping known to be all initialised needs no marking.
        if (!r.initKnown) {
          sys.shadow.mark(at, n, true)
          if (whole) r.initKnown = true
        }
      } else if (sys.checks.kmsan && r.own !== null && !r.initKnown) {
        const u = sys.shadow.firstUninit(at, n)
        if (u < 0) r.initKnown = whole
        else {
          sys.report({
            kind: 'uninit-to-device',
            device: dev.name,
            message: `device read of uninitialised memory [phys=${hex(u)}] (bus address ${hex(pos + (u - at))}): kernel memory the CPU never wrote is leaking to the device`,
            mapping: r,
            details: { phys: u, bus: pos + (u - at) },
          })
        }
      }
      pos = chunkEnd
    }
  }

  #deviceVsMapping(dev: Device, m: DmaMapping, a: number, b: number, write: boolean): void {
    const sys = this.#sys
    if (sys.checks.dmaDebug && m.mapErr === MAP_ERR_NOT_CHECKED && !m.mapErrReported) {
      m.mapErrReported = true
      sys.report({
        kind: 'map-error-unchecked',
        device: m.dev.name,
        message: `device driver failed to check map error[device address=0x${m.dma.toString(16).padStart(16, '0')}] [size=${m.size} bytes] [mapped as ${m.type}]: the device was handed the address before dma_mapping_error()`,
        mapping: m,
        details: { dma: m.dma, size: m.size },
      })
    }
    if (!sys.checks.ownership) return
    if (m.dev !== dev) {
      sys.report({
        kind: 'device-access-cpu-owned',
        device: dev.name,
        message: `device ${write ? 'write to' : 'read of'} a buffer mapped for another device (${m.dev.name}) [device address=${hex(m.dma)}]`,
        mapping: m,
        details: { dma: m.dma },
      })
      return
    }
    if (write && m.dir === DMA_TO_DEVICE) {
      sys.report({
        kind: 'device-write-to-device-mapping',
        device: dev.name,
        message: `device wrote [device address=${hex(m.dma + a)}] [size=${b - a} bytes] of a DMA_TO_DEVICE mapping: the device may only read it (map it DMA_BIDIRECTIONAL if it writes)`,
        mapping: m,
        details: { dma: m.dma + a, len: b - a },
      })
    }
    const own = m.own!
    const st = own.uniform(a, b)
    if (st === OWN_DEVICE) return
    // One access is one event: gather every CPU-owned part, report once over their span.
    let first = -1
    let last = -1
    let worst = -1
    own.forEach(a, b, (from, to, s) => {
      if (s === OWN_DEVICE) return
      if (s === OWN_CPU && m.dir === DMA_FROM_DEVICE) {
        // Handing a FROM_DEVICE buffer back without sync_for_device after the CPU only read it
        // is legal (DMA-API-HOWTO): the device's write returns ownership to the device.
        if (write) own.set(from, to, OWN_DEVICE)
        return
      }
      if (first < 0) first = from
      last = to
      // PENDING explains more than CPU_DIRTY, which explains more than CPU.
      const rank = s === OWN_PENDING ? 3 : s === OWN_CPU_DIRTY ? 2 : 1
      if (rank > worst) worst = rank
    })
    if (first < 0) return
    const why =
      worst === 3
        ? 'it was mapped with DMA_ATTR_SKIP_CPU_SYNC and never synced for the device (dma_sync_single_for_device)'
        : worst === 2
          ? 'the CPU owns it and wrote it after dma_sync_single_for_cpu, with no dma_sync_single_for_device since'
          : 'the CPU owns it (dma_sync_single_for_cpu was called, dma_sync_single_for_device was not)'
    sys.report({
      kind: 'device-access-cpu-owned',
      device: dev.name,
      message: `device ${write ? 'write to' : 'read of'} [device address=${hex(m.dma + first)}] [size=${last - first} bytes] of a ${dirName(m.dir)} mapping: ${why}`,
      mapping: m,
      details: { dma: m.dma + first, len: last - first, write },
    })
  }

  blocked(port: DmaPort, reason: BlockedReason, bus: number, len: number, write: boolean): void {
    const sys = this.#sys
    const dir = write ? 'write' : 'read'
    if (reason === 'bus-master-disabled') {
      sys.report({
        kind: 'bus-master-disabled',
        device: port.name,
        message: `DMA ${dir} of ${len} bytes at ${hex(bus)} attempted with bus mastering disabled (PCI_COMMAND_MASTER clear: pci_set_master was not called, or the master bit was cleared): the transaction was aborted`,
        details: { bus, len, write },
      })
    } else if (reason === 'iommu-unmapped' || reason === 'iommu-permission') {
      sys.report({
        kind: 'iommu-fault',
        device: port.name,
        message:
          reason === 'iommu-unmapped'
            ? `IOMMU fault: [DMA ${dir}] ${port.name} fault addr ${hex(bus)}: no translation (the IOVA is not mapped)`
            : `IOMMU fault: [DMA ${dir}] ${port.name} fault addr ${hex(bus)}: PTE ${write ? 'Write' : 'Read'} access is not set (the mapping's direction forbids a device ${dir})`,
        details: { iova: bus, len, write, reason: reason === 'iommu-unmapped' ? 'unmapped' : 'permission' },
      })
    } else if (sys.checks.ownership) {
      sys.report({
        kind: 'device-access-cpu-owned',
        device: port.name,
        message: `device ${dir} at ${hex(bus)} (+${len} bytes), an address no RAM decodes: the device was given an address that is not a DMA address (a CPU pointer?); the transaction failed`,
        details: { bus, len, write },
      })
    }
  }

  addressOverflow(port: DmaPort, bus: number, len: number, truncated: number, write: boolean): void {
    this.#sys.report({
      kind: 'dma-mask',
      device: port.name,
      message: `${port.name} drives ${port.addressBits} address bits but was given DMA address ${hex(bus)} (+${len} bytes): its ${write ? 'write' : 'read'} goes to ${hex(truncated)} instead (the driver set a DMA mask wider than the hardware supports)`,
      details: { bus, len, truncated, bits: port.addressBits },
    })
  }
}
