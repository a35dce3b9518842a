/**
 * The device-side DMA port: the one path by which every device reaches memory.
 *
 * Modelled on QEMU's `pci_dma_read/pci_dma_write` through `bus_master_as`
 * (include/hw/pci/pci_device.h): the access is refused while the function's bus-master bit is
 * clear, is cut to the address width the device can drive, is translated by the IOMMU when one is
 * on, is shown to the DMA observer (the kernel's sanitizer) and only then reaches RAM — snooping
 * the CPU cache when the device is cache coherent. Results are QEMU's MemTxResult codes.
 */

import type { Machine } from './machine.js'
import type { IommuDomain } from './iommu.js'
import type { Tracer } from '../framework/tracer.js'

export const MEMTX_OK = 0
/** The transaction was refused (e.g. bus mastering disabled: a master abort). */
export const MEMTX_ERROR = 1
/** No RAM decodes the address. */
export const MEMTX_DECODE_ERROR = 2
/** The IOMMU refused the access. */
export const MEMTX_ACCESS_ERROR = 4

export type MemTxResult = number

/** Or-ed into DmaPort.copy's result when the failure was on the write (destination) side. */
export const MEMTX_WRITE_SIDE = 0x100

export type BlockedReason = 'bus-master-disabled' | 'iommu-unmapped' | 'iommu-permission' | 'decode-error'

/** What the port tells the kernel about device accesses (implemented by the sanitizer). */
export interface DmaObserver {
  /** A device access about to land on RAM at [pa, pa+len); bus is the address the device used. */
  access(port: DmaPort, pa: number, len: number, write: boolean, bus: number): void
  /** A device access that did not happen. */
  blocked(port: DmaPort, reason: BlockedReason, bus: number, len: number, write: boolean): void
  /** A device was handed an address wider than it can drive; it uses the truncated address. */
  addressOverflow(port: DmaPort, bus: number, len: number, truncated: number, write: boolean): void
}

export interface DmaPortOptions {
  /** Address bits the device's DMA engine drives (its datasheet's width), 1..64. */
  readonly addressBits: number
  /** Whether the device's accesses snoop the CPU cache. */
  readonly coherent: boolean
}

export class DmaPort {
  readonly name: string
  readonly addressBits: number
  readonly coherent: boolean
  /** The function's bus-master enable (PCI_COMMAND_MASTER). */
  busMaster = false
  /** Whoever owns this port on the software side (the kernel's struct device). */
  opaque: unknown = undefined
  readonly #machine: Machine
  readonly #tracer: Tracer
  readonly #domain: IommuDomain | null
  readonly #limit: number
  readonly #runPa: number[] = []
  readonly #runLen: number[] = []
  readonly #faultAt: number[] = [0]
  /** The source runs of a copy, saved while the destination is resolved. */
  readonly #srcPa: number[] = []
  readonly #srcLen: number[] = []
  /** Bounce buffer of copies that must snoop the CPU cache (coherent ports). */
  #scratch = new Uint8Array(0)
  /** The current transaction overflowed the address width: the observer already heard of it. */
  #quiet = false

  constructor(machine: Machine, name: string, options: DmaPortOptions) {
    const { addressBits, coherent } = options
    if (!Number.isInteger(addressBits) || addressBits < 1 || addressBits > 64) {
      throw new RangeError(`addressBits must be an integer from 1 to 64, got ${addressBits}`)
    }
    this.#machine = machine
    this.#tracer = machine.tracer
    this.name = name
    this.addressBits = addressBits
    this.coherent = coherent
    this.#limit = addressBits >= 53 ? Number.POSITIVE_INFINITY : Number(1n << BigInt(addressBits))
    this.#domain = machine.iommu.enabled ? machine.iommu.domain(name) : null
  }

  /** The IOMMU domain this port translates through, or null without an IOMMU. */
  get domain(): IommuDomain | null {
    return this.#domain
  }

  /** The physical address bus reaches for a write now, or -1 (no bus mastering, no translation, no RAM); no side effects on the checks. */
  translate(bus: number): number {
    if (!this.busMaster || bus >= this.#limit) return -1
    const pa = this.#domain === null ? bus : this.#domain.translate(bus, true)
    return pa >= 0 && this.#machine.ram.isRam(pa, 1) ? pa : -1
  }

  /** Resolves [bus, bus+len) into physical runs; returns the run count, or a MemTxResult < 0. */
  #resolve(bus: number, len: number, write: boolean): number {
    let obs = this.#machine.observer
    this.#quiet = false
    if (!this.busMaster) {
      obs?.blocked(this, 'bus-master-disabled', bus, len, write)
      return -MEMTX_ERROR
    }
    if (bus + len > this.#limit) {
      const truncated = bus % this.#limit
      obs?.addressOverflow(this, bus, len, truncated, write)
      // The access really goes to the truncated address, but that is one event: the address
      // overflow is what gets reported, not whatever the truncated address happens to hit.
      obs = null
      this.#quiet = true
      bus = truncated
    }
    const runPa = this.#runPa
    const runLen = this.#runLen
    let n: number
    if (this.#domain === null) {
      runPa[0] = bus
      runLen[0] = len
      n = 1
    } else {
      n = this.#domain.walk(bus, len, write, runPa, runLen, this.#faultAt)
      if (n < 0) {
        const at = this.#faultAt[0]!
        const reason = n === -1 ? 'iommu-unmapped' : 'iommu-permission'
        this.#machine.iommuFaults.push({ device: this.name, iova: at, write, reason: n === -1 ? 'unmapped' : 'permission' })
        obs?.blocked(this, reason, at, len - (at - bus), write)
        return -MEMTX_ACCESS_ERROR
      }
    }
    const ram = this.#machine.ram
    for (let i = 0; i < n; i++) {
      if (!ram.isRam(runPa[i]!, runLen[i])) {
        obs?.blocked(this, 'decode-error', runPa[i]!, runLen[i]!, write)
        return -MEMTX_DECODE_ERROR
      }
    }
    return n
  }

  /** Device read of len bytes at bus address into dst[off..]. On failure dst is zero-filled. */
  readInto(bus: number, dst: Uint8Array, off = 0, len = dst.length - off): MemTxResult {
    if (len <= 0) return MEMTX_OK
    if (this.#tracer.listenerCount('dma') > 0) return this.#traced(bus, len, false, this.#readInto(bus, dst, off, len))
    return this.#readInto(bus, dst, off, len)
  }

  /** Device write of src[off..off+len) to bus address. */
  write(bus: number, src: Uint8Array, off = 0, len = src.length - off): MemTxResult {
    if (len <= 0) return MEMTX_OK
    if (this.#tracer.listenerCount('dma') > 0) return this.#traced(bus, len, true, this.#write(bus, src, off, len))
    return this.#write(bus, src, off, len)
  }

  /**
   * A device copy of len bytes from srcBus to dstBus, as a memory-to-memory engine's burst does
   * it: one read transaction, then one write transaction — the same checks, translation, observer
   * calls and trace events as readInto followed by write — but a non-coherent port moves the bytes
   * RAM to RAM with no buffer in between. Returns MEMTX_OK, the read's MemTxResult, or the
   * write's MemTxResult | MEMTX_WRITE_SIDE; when either side fails nothing is written.
   */
  copy(dstBus: number, srcBus: number, len: number): MemTxResult {
    if (len <= 0) return MEMTX_OK
    const traced = this.#tracer.listenerCount('dma') > 0
    const m = this.#machine
    const n = this.#resolve(srcBus, len, false)
    if (traced) this.#traced(srcBus, len, false, n < 0 ? -n : MEMTX_OK)
    if (n < 0) return -n
    const sPa = this.#srcPa
    const sLen = this.#srcLen
    let obs = this.#quiet ? null : m.observer
    for (let i = 0, o = 0; i < n; i++) {
      sPa[i] = this.#runPa[i]!
      sLen[i] = this.#runLen[i]!
      obs?.access(this, sPa[i]!, sLen[i]!, false, srcBus + o)
      o += sLen[i]!
    }
    const k = this.#resolve(dstBus, len, true)
    if (traced) this.#traced(dstBus, len, true, k < 0 ? -k : MEMTX_OK)
    if (k < 0) return -k | MEMTX_WRITE_SIDE
    obs = this.#quiet ? null : m.observer
    for (let j = 0, o = 0; j < k; j++) {
      obs?.access(this, this.#runPa[j]!, this.#runLen[j]!, true, dstBus + o)
      o += this.#runLen[j]!
    }
    if (this.coherent) {
      if (this.#scratch.length < len) this.#scratch = new Uint8Array(len)
      const buf = this.#scratch
      for (let i = 0, o = 0; i < n; o += sLen[i]!, i++) m.cache.snoopRead(sPa[i]!, buf, o, sLen[i]!)
      for (let j = 0, o = 0; j < k; o += this.#runLen[j]!, j++) {
        m.cache.snoopWrite(this.#runPa[j]!, this.#runLen[j]!)
        m.ram.write(this.#runPa[j]!, buf, o, this.#runLen[j]!)
      }
      return MEMTX_OK
    }
    // Walk both run lists in step, copying the overlap of the current source and destination run.
    let i = 0
    let j = 0
    let si = 0
    let dj = 0
    while (i < n && j < k) {
      const piece = Math.min(sLen[i]! - si, this.#runLen[j]! - dj)
      if (m.loadOrder.enabled) this.#logWrite(this.#runPa[j]! + dj, piece)
      m.ram.copy(this.#runPa[j]! + dj, sPa[i]! + si, piece)
      si += piece
      dj += piece
      if (si === sLen[i]) {
        i++
        si = 0
      }
      if (dj === this.#runLen[j]) {
        j++
        dj = 0
      }
    }
    return MEMTX_OK
  }

  /**
   * A write about to land on non-cacheable memory is logged for the CPU's load-load reordering
   * (devices/machine/load-order.ts), unless it is a hostile device's mutated record (garbage, not
   * part of the device's ordered writes; kernel/dma/ordering.ts skips it too).
   */
  #logWrite(pa: number, len: number): void {
    const m = this.#machine
    if (!m.cache.isUncached(pa)) return
    if (m.doubleFetch.isUntrusted(this.name, m.clock.now)) return
    m.loadOrder.deviceWrite(pa, len)
  }

  #traced(bus: number, len: number, write: boolean, result: MemTxResult): MemTxResult {
    this.#tracer.emit('dma', { time: this.#machine.clock.now, device: this.name, bus, len, write, result })
    return result
  }

  #readInto(bus: number, dst: Uint8Array, off: number, len: number): MemTxResult {
    const n = this.#resolve(bus, len, false)
    if (n < 0) {
      dst.fill(0, off, off + len)
      return -n
    }
    const m = this.#machine
    const obs = this.#quiet ? null : m.observer
    let o = off
    for (let i = 0; i < n; i++) {
      const pa = this.#runPa[i]!
      const l = this.#runLen[i]!
      obs?.access(this, pa, l, false, bus + (o - off))
      if (this.coherent) m.cache.snoopRead(pa, dst, o, l)
      else m.ram.read(pa, dst, o, l)
      o += l
    }
    return MEMTX_OK
  }

  #write(bus: number, src: Uint8Array, off: number, len: number): MemTxResult {
    const n = this.#resolve(bus, len, true)
    if (n < 0) return -n
    const m = this.#machine
    const obs = this.#quiet ? null : m.observer
    let o = off
    for (let i = 0; i < n; i++) {
      const pa = this.#runPa[i]!
      const l = this.#runLen[i]!
      obs?.access(this, pa, l, true, bus + (o - off))
      if (this.coherent) m.cache.snoopWrite(pa, l)
      else if (m.loadOrder.enabled) this.#logWrite(pa, l)
      m.ram.write(pa, src, o, l)
      if (m.doubleFetch.active) m.doubleFetch.deviceWrite(pa, l)
      o += l
    }
    return MEMTX_OK
  }
}
