/**
 * The test master: a bare bus master for tests of the DMA API alone (DESIGN.md §6). It has bus
 * mastering on, a 64-bit DMA mask unless `dmaMask` says otherwise (the mask is also the address
 * width its engine drives), and the platform's coherence unless `coherent` says otherwise. Each
 * read or write is one device access that happens now.
 */

import { MEMTX_OK, type MemTxResult } from '../devices/index.js'
import { Device } from './base/device.js'
import { describe } from './boot.js'
import { InvalidArgumentError } from './errors.js'
import { IovaDomain } from './dma/iova.js'
import type { System } from './system.js'
import type { DmaAddr } from './types.js'

export interface TestMasterOptions {
  /** The DMA mask (a DMA_BIT_MASK() bigint, or a number); it is also the engine's address width. */
  dmaMask?: bigint | number
  /** Whether the master's accesses snoop the CPU cache (default: the platform's). */
  coherent?: boolean
}

function maskBits(mask: bigint): number {
  let bits = 0
  while (bits < 64 && mask >> BigInt(bits) !== 0n) bits++
  return bits
}

export class TestMaster {
  readonly name: string
  /** The `struct device` to pass to dma_* calls. */
  readonly dev: Device
  /** The MemTxResult of the last read or write (0 = MEMTX_OK). */
  lastResult: MemTxResult = MEMTX_OK
  readonly #sys: System

  constructor(sys: System, name: string, opts: TestMasterOptions) {
    const fn = 'attachTestMaster'
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.:-]{1,32}$/.test(name)) {
      throw new InvalidArgumentError(fn, 'name', `must be 1 to 32 characters of [A-Za-z0-9_.:-], got ${describe(name)}`)
    }
    if (typeof opts !== 'object' || opts === null) throw new InvalidArgumentError(fn, 'opts', `must be an object, got ${describe(opts)}`)
    for (const k of Object.keys(opts)) {
      if (k !== 'dmaMask' && k !== 'coherent') throw new InvalidArgumentError(fn, `opts.${k}`, 'is not an option (known: dmaMask, coherent)')
    }
    if (sys.devices.has(name)) throw new InvalidArgumentError(fn, 'name', `'${name}' is already a device of this system`)
    let mask = opts.dmaMask ?? 0xffff_ffff_ffff_ffffn
    if (typeof mask === 'number' && Number.isSafeInteger(mask) && mask > 0) mask = BigInt(mask)
    if (typeof mask !== 'bigint' || mask < 0xffffn || mask > 0xffff_ffff_ffff_ffffn || (mask & (mask + 1n)) !== 0n) {
      throw new InvalidArgumentError(fn, 'opts.dmaMask', `must be a low-bits mask such as DMA_BIT_MASK(32), got ${describe(opts.dmaMask)}`)
    }
    if (opts.coherent !== undefined && typeof opts.coherent !== 'boolean') {
      throw new InvalidArgumentError(fn, 'opts.coherent', `must be a boolean, got ${describe(opts.coherent)}`)
    }
    this.#sys = sys
    this.name = name
    const port = sys.machine.createDmaPort(name, {
      addressBits: maskBits(mask),
      coherent: opts.coherent ?? sys.machine.coherent,
    })
    port.busMaster = true
    this.dev = new Device(sys, name, port, mask, sys.machine.iommu.enabled ? new IovaDomain(false) : null)
    sys.addDevice(this.dev)
  }

  #check(fn: string, dma: unknown, len: number): number {
    if (!this.dev.bound) throw new InvalidArgumentError(fn, 'this', `test master '${this.name}' is detached`)
    if (typeof dma !== 'number' || !Number.isSafeInteger(dma) || dma < 0) {
      throw new InvalidArgumentError(fn, 'dma', `must be a DmaAddr (a non-negative integer), got ${describe(dma)}`)
    }
    if (!Number.isSafeInteger(len) || len < 0 || len > 1 << 30) throw new InvalidArgumentError(fn, 'len', `must be a byte count from 0 to 1 GiB, got ${describe(len)}`)
    return dma
  }

  /** Device read of len bytes at dma. Failed transactions read as zeros (see lastResult). */
  read(dma: DmaAddr, len: number): Uint8Array {
    const out = new Uint8Array(typeof len === 'number' && len >= 0 && len <= 1 << 30 ? len : 0)
    this.#check('m.read', dma, len)
    this.#sys.machine.storeBuffer.drain()
    this.lastResult = this.dev.port.readInto(dma, out, 0, len)
    return out
  }

  /** Device read into dst (no allocation); returns the MemTxResult. */
  readInto(dma: DmaAddr, dst: Uint8Array): MemTxResult {
    if (!(dst instanceof Uint8Array)) throw new InvalidArgumentError('m.readInto', 'dst', 'must be a Uint8Array')
    this.#check('m.readInto', dma, dst.length)
    this.#sys.machine.storeBuffer.drain()
    this.lastResult = this.dev.port.readInto(dma, dst, 0, dst.length)
    return this.lastResult
  }

  /** Device write of bytes at dma; returns the MemTxResult. */
  write(dma: DmaAddr, bytes: Uint8Array): MemTxResult {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError('m.write', 'bytes', `must be a Uint8Array, got ${describe(bytes)}`)
    this.#check('m.write', dma, bytes.length)
    this.#sys.machine.storeBuffer.drain()
    this.lastResult = this.dev.port.write(dma, bytes, 0, bytes.length)
    return this.lastResult
  }

  /** Unbinds the master: managed resources are released; whatever it still holds is a leak. */
  detach(): void {
    if (!this.dev.bound) return
    const dev = this.dev
    for (const r of dev.devres.splice(0).reverse()) r.release()
    this.#sys.dma.reportLeaks(dev)
    dev.bound = false
    dev.port.busMaster = false
  }
}
