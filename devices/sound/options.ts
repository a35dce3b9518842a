/**
 * The mini-HDA controller's construction options, their defaults and their checks. Datasheet:
 * docs/devices/hda.md, "Options" and §12 (quirks).
 */

import type { HostileOptions } from '../framework/hostile.js'
import type { AudioSink, AudioSource } from './audio-port.js'
import * as H from './hda-regs.js'
import { PciFunctionError } from '../pci/function.js'

/** How LPIB moves: every frame (default), at the end of each DMA burst only, or in steps of N bytes. */
export type HdaLpibGranularity = 'frame' | 'burst' | number

/** What the controller writes into the DMA position buffer. */
export type HdaPositionBuffer = 'accurate' | 'none' | 'lagging'

export interface HdaOptions {
  /** PCI function name (default 'hda0'). */
  readonly name?: string
  /** Malicious-device mode: the position-buffer entries get hostile values (devices/framework/hostile.ts). */
  readonly hostile?: HostileOptions
  /** Report what the guest programs wrong as guest errors and enforce the specification's rules (default true); false: QEMU's leniency. */
  readonly strict?: boolean
  /** Where the output converter's samples go (default none: they are counted and dropped). */
  readonly sink?: AudioSink | null
  /** What the input converter records (default none: silence). */
  readonly source?: AudioSource | null
  /** Bytes the DMA engine moves per burst at most (the FIFO size; SDnFIFOS reads it − 1): a multiple of 4 from 128 to 65536 (default 4096). */
  readonly burstBytes?: number
  /** GCTL.CRST 0 → 1 until CRST reads 1 (default 100 µs). */
  readonly crstDelayNs?: number
  /** CRST reading 1 until codec 0 reports itself in STATESTS (strict mode; default 500 µs). */
  readonly codecWakeDelayNs?: number
  /** SRST 0 → 1 until it reads 1, and 1 → 0 until it reads 0 (default 1 µs). */
  readonly srstDelayNs?: number
  /** ICS.ICB set until the response is in IR (default 21 µs, about one link frame). */
  readonly codecLatencyNs?: number
  /** Quirk: the controller stops a stream while its BCIS is set, as QEMU does (default: !strict). */
  readonly stallOnBcis?: boolean
  /** Quirk: BCIS and the interrupt come this long before LPIB reaches the IOC boundary (default 0). */
  readonly earlyIrqNs?: number
  /** Quirk: how LPIB moves (default 'frame'). */
  readonly lpibGranularity?: HdaLpibGranularity
  /** Quirk: 'none' never writes the position buffer, 'lagging' writes each burst's start position (default 'accurate'). */
  readonly positionBuffer?: HdaPositionBuffer
  /** Codec 0's vendor id, GET_PARAMETER(VENDOR_ID) on its root node (default 0x1de5a0da). */
  readonly codecVendorId?: number
  /** Address bits the DMA engine drives (default 64). */
  readonly addressBits?: number
}

/** The options as taken. */
export interface HdaConfig {
  readonly name: string
  readonly strict: boolean
  readonly burstBytes: number
  readonly crstDelayNs: number
  readonly codecWakeDelayNs: number
  readonly srstDelayNs: number
  readonly codecLatencyNs: number
  readonly stallOnBcis: boolean
  readonly earlyIrqNs: number
  readonly lpibGranularity: HdaLpibGranularity
  readonly positionBuffer: HdaPositionBuffer
  readonly codecVendorId: number
  readonly addressBits: number
}

export function resolveHdaOptions(opts: HdaOptions): HdaConfig {
  if (typeof opts !== 'object' || opts === null) throw new PciFunctionError('HDA controller options must be an object')
  const name = opts.name ?? 'hda0'
  if (typeof name !== 'string' || name === '') throw new PciFunctionError('HDA controller name must be a non-empty string')
  const bad = (option: string, what: string, v: unknown): never => {
    throw new PciFunctionError(`${name}: ${option} must be ${what}, got ${typeof v === 'string' ? `'${v}'` : String(v)}`)
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
  const strict = bool('strict', opts.strict, true)
  const burstBytes = opts.burstBytes ?? H.HDA_DEFAULT_BURST_BYTES
  if (typeof burstBytes !== 'number' || !Number.isInteger(burstBytes) || burstBytes < 128 || burstBytes > 65536 || burstBytes % 4 !== 0) {
    bad('burstBytes', 'a multiple of 4 from 128 to 65536', burstBytes)
  }
  const lpib = opts.lpibGranularity ?? 'frame'
  if (lpib !== 'frame' && lpib !== 'burst' && !(typeof lpib === 'number' && Number.isInteger(lpib) && lpib >= 1 && lpib <= 65536)) {
    bad('lpibGranularity', "'frame', 'burst' or a whole number of bytes from 1 to 65536", lpib)
  }
  const posbuf = opts.positionBuffer ?? 'accurate'
  if (posbuf !== 'accurate' && posbuf !== 'none' && posbuf !== 'lagging') bad('positionBuffer', "'accurate', 'none' or 'lagging'", posbuf)
  const vendor = opts.codecVendorId ?? H.HDA_CODEC_VENDOR_ID
  if (typeof vendor !== 'number' || !Number.isInteger(vendor) || vendor < 0 || vendor > 0xffff_ffff) bad('codecVendorId', 'a 32-bit unsigned integer', vendor)
  const addressBits = opts.addressBits ?? 64
  if (typeof addressBits !== 'number' || !Number.isInteger(addressBits) || addressBits < 1 || addressBits > 64) bad('addressBits', 'an integer from 1 to 64', addressBits)
  for (const [option, v] of [['sink', opts.sink], ['source', opts.source]] as const) {
    const method = option === 'sink' ? 'write' : 'read'
    if (v !== undefined && v !== null && (typeof v !== 'object' || typeof (v as unknown as Record<string, unknown>)[method] !== 'function')) {
      bad(option, `an object with a ${method}() method, or null`, v)
    }
  }
  return {
    name,
    strict,
    burstBytes,
    crstDelayNs: ns('crstDelayNs', opts.crstDelayNs, H.HDA_DEFAULT_CRST_DELAY_NS),
    codecWakeDelayNs: ns('codecWakeDelayNs', opts.codecWakeDelayNs, H.HDA_DEFAULT_CODEC_WAKE_DELAY_NS),
    srstDelayNs: ns('srstDelayNs', opts.srstDelayNs, H.HDA_DEFAULT_SRST_DELAY_NS),
    codecLatencyNs: ns('codecLatencyNs', opts.codecLatencyNs, H.HDA_DEFAULT_CODEC_LATENCY_NS),
    stallOnBcis: bool('stallOnBcis', opts.stallOnBcis, !strict),
    earlyIrqNs: ns('earlyIrqNs', opts.earlyIrqNs, 0),
    lpibGranularity: lpib,
    positionBuffer: posbuf,
    codecVendorId: vendor,
    addressBits,
  }
}
