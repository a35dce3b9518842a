/**
 * The mini-NVMe controller's construction options, their defaults and their checks, and the BAR 0
 * layout that follows from them (registers, doorbells for every possible queue, the MSI-X table
 * and PBA). Datasheet: docs/devices/nvme.md, "Options" and §1.
 */

import type { HostileOptions } from '../framework/hostile.js'
import { MemoryBackend, type BlockBackend } from '../block/backend.js'
import { PciFunctionError } from '../pci/function.js'
import {
  NVME_DEFAULT_BYTES_PER_NS, NVME_DEFAULT_CACHE_BYTES, NVME_DEFAULT_COMMAND_LATENCY_NS, NVME_DEFAULT_DISABLE_DELAY_NS,
  NVME_DEFAULT_MDTS, NVME_DEFAULT_MQES, NVME_DEFAULT_MSIX_VECTORS, NVME_DEFAULT_READY_DELAY_NS,
  NVME_DEFAULT_SHUTDOWN_DELAY_NS, NVME_DEFAULT_SIZE_BYTES, NVME_DEFAULT_TIMEOUT, NVME_MAX_IO_QUEUE_PAIRS, NVME_PAGE_SIZE,
  NVME_REG_DBS,
} from './regs.js'

export interface NvmeOptions {
  /** Malicious-device mode: CQEs get hostile CIDs, status, phase, SQ head/id (devices/framework/hostile.ts). */
  readonly hostile?: HostileOptions
  /** PCI function name (default 'nvme0'). */
  readonly name?: string
  /** Report what the guest programs wrong as guest errors (default true); false: QEMU's leniency. */
  readonly strict?: boolean
  /** The durable medium (default: a MemoryBackend of sizeBytes). */
  readonly backend?: BlockBackend
  /** Namespace size in bytes (default: the backend's size rounded down to whole blocks, or 1 GiB); a multiple of lbaSize. */
  readonly sizeBytes?: number
  /** Logical block size: 512 (LBADS 9, default) or 4096 (LBADS 12). */
  readonly lbaSize?: 512 | 4096
  /** CAP.MQES: the largest I/O queue, 0-based (default 1023: 1024 entries). */
  readonly mqes?: number
  /** CAP.DSTRD: doorbells are 4 << dstrd bytes apart (default 0). */
  readonly dstrd?: number
  /** CAP.TO: the longest CSTS.RDY transition, in 500 ms units (default 15). */
  readonly timeout?: number
  /** MDTS: the largest transfer is 2^mdts × 4 KiB, 1..10 (default 5: 128 KiB). */
  readonly mdts?: number
  /** I/O queue pairs the controller offers (Number of Queues), 1..65535 (default 65535). */
  readonly maxIoQueuePairs?: number
  /** MSI-X vectors, 1..2048 (default 32). */
  readonly msixVectors?: number
  /** Whether the controller has a volatile write cache (Identify VWC; default true, enabled at reset). */
  readonly volatileWriteCache?: boolean
  /** Dirty bytes the cache holds before it writes the oldest back (default 64 MiB). */
  readonly cacheBytes?: number
  /** CC.EN 0 -> 1 to CSTS.RDY = 1 (default 1 ms). */
  readonly readyDelayNs?: number
  /** CC.EN 1 -> 0 to CSTS.RDY = 0 (default 100 µs). */
  readonly disableDelayNs?: number
  /** CC.SHN set to CSTS.SHST = complete, plus the time to write the cache back (default 1 ms). */
  readonly shutdownDelayNs?: number
  /** SQ tail doorbell to the command's fetch and execution (default 5 µs). */
  readonly commandLatencyNs?: number
  /** Media / link bandwidth in bytes per ns (default 7: 7 GB/s); data and flushes take bytes / bytesPerNs. */
  readonly bytesPerNs?: number
  /** Identify serial number (ASCII, up to 20 characters; default 'DMALAB-' + the name, upper case). */
  readonly serial?: string
  /** Identify model number (ASCII, up to 40 characters; default 'dmalab mini-NVMe'). */
  readonly model?: string
  /** Address bits the DMA engine drives (default 64). */
  readonly addressBits?: number
}

/** The options as taken, and the BAR 0 layout. */
export interface NvmeConfig {
  readonly name: string
  readonly strict: boolean
  readonly backend: BlockBackend
  readonly sizeBytes: number
  readonly lbaSize: 512 | 4096
  readonly mqes: number
  readonly dstrd: number
  readonly timeout: number
  readonly mdts: number
  readonly maxIoQueuePairs: number
  readonly msixVectors: number
  readonly volatileWriteCache: boolean
  readonly cacheBytes: number
  readonly readyDelayNs: number
  readonly disableDelayNs: number
  readonly shutdownDelayNs: number
  readonly commandLatencyNs: number
  readonly bytesPerNs: number
  readonly serial: string
  readonly model: string
  readonly addressBits: number
  /** Bytes of doorbells from NVME_REG_DBS: 2 × (maxIoQueuePairs + 1) × (4 << dstrd). */
  readonly doorbellBytes: number
  readonly msixTableOffset: number
  readonly msixPbaOffset: number
  readonly barSize: number
}

const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a

export function resolveNvmeOptions(opts: NvmeOptions): NvmeConfig {
  const name = opts.name ?? 'nvme0'
  if (typeof name !== 'string' || name === '') throw new PciFunctionError('NVMe controller name must be a non-empty string')
  const bad = (option: string, what: string, v: unknown): never => {
    throw new PciFunctionError(`${name}: ${option} must be ${what}, got ${String(v)}`)
  }
  const int = (option: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const x = v ?? dflt
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) bad(option, `an integer from ${min} to ${max}`, x)
    return x
  }
  const ns = (option: string, v: number | undefined, dflt: number): number => {
    const x = v ?? dflt
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) bad(option, 'a non-negative number of ns', x)
    return x
  }
  const bool = (option: string, v: boolean | undefined, dflt: boolean): boolean => {
    const x = v ?? dflt
    if (typeof x !== 'boolean') bad(option, 'a boolean', x)
    return x
  }
  const ascii = (option: string, v: string | undefined, dflt: string, max: number): string => {
    const x = v ?? dflt
    if (typeof x !== 'string' || x.length === 0 || x.length > max || !/^[\x20-\x7e]+$/.test(x)) bad(option, `1 to ${max} printable ASCII characters`, x)
    return x
  }
  const strict = bool('strict', opts.strict, true)
  const lbaSize = opts.lbaSize ?? 512
  if (lbaSize !== 512 && lbaSize !== 4096) bad('lbaSize', '512 or 4096', lbaSize)
  const backend = opts.backend
  if (backend !== undefined && (typeof backend !== 'object' || backend === null || typeof backend.read !== 'function' || typeof backend.write !== 'function' || !Number.isSafeInteger(backend.size))) {
    bad('backend', 'a BlockBackend (size, read, write)', backend)
  }
  const sizeBytes = opts.sizeBytes ?? (backend === undefined ? NVME_DEFAULT_SIZE_BYTES : Math.floor(backend.size / lbaSize) * lbaSize)
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < lbaSize || sizeBytes % lbaSize !== 0) {
    bad('sizeBytes', `a positive multiple of the ${lbaSize}-byte block size`, sizeBytes)
  }
  if (backend !== undefined && sizeBytes > backend.size) bad('sizeBytes', `at most the backend's ${backend.size} bytes`, sizeBytes)
  const mqes = int('mqes', opts.mqes, NVME_DEFAULT_MQES, 1, 0xffff)
  const dstrd = int('dstrd', opts.dstrd, 0, 0, 15)
  const timeout = int('timeout', opts.timeout, NVME_DEFAULT_TIMEOUT, 1, 255)
  const mdts = int('mdts', opts.mdts, NVME_DEFAULT_MDTS, 1, 10)
  const maxIoQueuePairs = int('maxIoQueuePairs', opts.maxIoQueuePairs, NVME_MAX_IO_QUEUE_PAIRS, 1, NVME_MAX_IO_QUEUE_PAIRS)
  const msixVectors = int('msixVectors', opts.msixVectors, NVME_DEFAULT_MSIX_VECTORS, 1, 2048)
  const cacheBytes = int('cacheBytes', opts.cacheBytes, NVME_DEFAULT_CACHE_BYTES, 4096, 2 ** 40)
  const bytesPerNs = opts.bytesPerNs ?? NVME_DEFAULT_BYTES_PER_NS
  if (typeof bytesPerNs !== 'number' || !Number.isFinite(bytesPerNs) || bytesPerNs <= 0) bad('bytesPerNs', 'a positive number', bytesPerNs)
  const doorbellBytes = 2 * (maxIoQueuePairs + 1) * (4 << dstrd)
  const msixTableOffset = alignUp(NVME_REG_DBS + doorbellBytes, NVME_PAGE_SIZE)
  const msixPbaOffset = msixTableOffset + alignUp(msixVectors * 16, NVME_PAGE_SIZE)
  const end = msixPbaOffset + alignUp(Math.ceil(msixVectors / 64) * 8, NVME_PAGE_SIZE)
  let barSize = 1 // the smallest power of two that holds the BAR's registers
  while (barSize < end) barSize *= 2
  if (barSize > 2 ** 30) bad('dstrd', `small enough for ${maxIoQueuePairs} queue pairs' doorbells to fit a 1 GiB BAR (lower dstrd or maxIoQueuePairs)`, dstrd)
  const addressBits = int('addressBits', opts.addressBits, 64, 1, 64)
  return {
    name,
    strict,
    backend: backend ?? new MemoryBackend(sizeBytes),
    sizeBytes,
    lbaSize,
    mqes,
    dstrd,
    timeout,
    mdts,
    maxIoQueuePairs,
    msixVectors,
    volatileWriteCache: bool('volatileWriteCache', opts.volatileWriteCache, true),
    cacheBytes,
    readyDelayNs: ns('readyDelayNs', opts.readyDelayNs, NVME_DEFAULT_READY_DELAY_NS),
    disableDelayNs: ns('disableDelayNs', opts.disableDelayNs, NVME_DEFAULT_DISABLE_DELAY_NS),
    shutdownDelayNs: ns('shutdownDelayNs', opts.shutdownDelayNs, NVME_DEFAULT_SHUTDOWN_DELAY_NS),
    commandLatencyNs: ns('commandLatencyNs', opts.commandLatencyNs, NVME_DEFAULT_COMMAND_LATENCY_NS),
    bytesPerNs,
    serial: ascii('serial', opts.serial, `DMALAB-${name.toUpperCase()}`.slice(0, 20), 20),
    model: ascii('model', opts.model, 'dmalab mini-NVMe', 40),
    addressBits,
    doorbellBytes,
    msixTableOffset,
    msixPbaOffset,
    barSize,
  }
}
