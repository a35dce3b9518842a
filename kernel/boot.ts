/**
 * Boot options: validation and defaults (the kernel command line, in spirit). Defaults are the
 * most revealing profile: arm64, non-coherent, IOMMU strict, swiotlb auto, every check on.
 * An unknown option or a bad value is a BootOptionError that names the option.
 */

import { ARCHES, DEFAULT_CACHE_CONFIG, PciFunction, PLATFORMS, type Arch, type CacheConfig } from '../devices/index.js'
import { BootOptionError } from './errors.js'
import { COST_KEYS, DEFAULT_COSTS, type Costs } from './sched/costs.js'

/** Families of checks that can be switched off (e.g. for a benchmark's unchecked baseline). */
export interface Checks {
  /** dma-debug's API checks (unmap-*, sync-*, map-error-unchecked, leak, pool-misuse, ...). */
  readonly dmaDebug: boolean
  /** The ownership sanitizer (cpu/device access, cacheline-shared, overlapping-mapping). */
  readonly ownership: boolean
  /** KASAN-style out-of-bounds, use-after-free and double-free checks. */
  readonly kasan: boolean
  /** KMSAN-style uninit-to-device checks. */
  readonly kmsan: boolean
  /** Capture of driver source lines for reports (costly; off for benchmarks). */
  readonly stacks: boolean
}

export type LogLevel = 'silent' | 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/** The part of a pino logger the kernel uses. */
export interface KernelLogger {
  error(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  info(obj: object, msg: string): void
  debug(obj: object, msg: string): void
}

export interface BootOptions {
  /** 'arm64' (default), 'x86_64' or 'riscv64'. */
  arch?: Arch
  /** Overrides the platform's DMA coherence (arm64/riscv64 non-coherent, x86_64 coherent). */
  coherent?: boolean
  /** The seed of every random choice (an integer from 0 to 2^53 - 1); default 1. */
  seed?: number
  /**
   * 'strict' (default): every unmap invalidates the IOTLB at once (iommu.strict=1). 'lazy': unmaps
   * go to a flush queue (256 entries, a 10 ms timer), as iommu.strict=0 does — the device can use
   * an unmapped buffer until the flush. 'off': no IOMMU, devices see physical memory.
   */
  iommu?: 'off' | 'strict' | 'lazy'
  /** 'auto' (default): bounce what is beyond the mask; 'force': bounce every streaming mapping; 'off'. */
  swiotlb?: 'auto' | 'force' | 'off'
  /** Size of the swiotlb pool in bytes (default 64 MiB; a multiple of 256 KiB). */
  swiotlbSize?: number
  /** kmalloc's minimum alignment; default the platform's ARCH_DMA_MINALIGN. */
  kmallocMinAlign?: number
  /** The CPU cache: lineSize, size, ways, speculation. */
  cache?: Partial<CacheConfig>
  /** The cost model: override any of kernel/sched/costs.ts's DEFAULT_COSTS (ns, or bytes per ns). */
  costs?: Partial<Costs>
  /** Unhandled interrupts (out of the last 100,000) before "nobody cared" disables a line; Linux 99,900. */
  irqUnhandledThreshold?: number
  /** Device models to put on the PCI bus (`new CopyEngine()`, ...); each binds when a matching driver registers. */
  devices?: readonly PciFunction[]
  /** Check families: false turns all off; an object turns off the ones set false. */
  checks?: boolean | Partial<Checks>
  /** Log level of the system's pino logger, or a logger. Default: $DMALAB_LOG or 'warn'. */
  log?: LogLevel | KernelLogger
}

export interface ResolvedOptions {
  readonly arch: Arch
  readonly coherent: boolean
  readonly seed: number
  readonly iommu: 'off' | 'strict' | 'lazy'
  readonly swiotlb: 'auto' | 'force' | 'off'
  readonly swiotlbSize: number
  readonly kmallocMinAlign: number
  readonly cache: CacheConfig
  readonly checks: Checks
  readonly log: LogLevel | KernelLogger
  readonly costs: Costs
  readonly irqUnhandledThreshold: number
  readonly devices: readonly PciFunction[]
}

const KNOWN = new Set([
  'arch',
  'coherent',
  'seed',
  'iommu',
  'swiotlb',
  'swiotlbSize',
  'kmallocMinAlign',
  'cache',
  'costs',
  'devices',
  'checks',
  'log',
  'irqUnhandledThreshold',
])
const LEVELS: readonly string[] = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']
const CHECK_KEYS: readonly (keyof Checks)[] = ['dmaDebug', 'ownership', 'kasan', 'kmsan', 'stacks']

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x)

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new BootOptionError(name, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

export function describe(x: unknown): string {
  if (typeof x === 'string') return `'${x}'`
  if (typeof x === 'bigint') return `${x}n`
  if (typeof x === 'number' || typeof x === 'boolean' || x === undefined || x === null) return String(x)
  if (Array.isArray(x)) return 'an array'
  return typeof x === 'function' ? 'a function' : 'an object'
}

function envLevel(): LogLevel {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env
  const v = env?.['DMALAB_LOG']
  return v !== undefined && LEVELS.includes(v) ? (v as LogLevel) : 'warn'
}

/** Validates options and fills in defaults. */
export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === undefined) options = {}
  if (!isObject(options)) throw new BootOptionError('options', `must be an object, got ${describe(options)}`)
  for (const k of Object.keys(options)) {
    if (!KNOWN.has(k)) throw new BootOptionError(k, `is not a boot option (known: ${[...KNOWN].join(', ')})`)
  }
  const o = options
  const arch = o['arch'] === undefined ? 'arm64' : oneOf('arch', o['arch'], ARCHES)
  if (o['coherent'] !== undefined && typeof o['coherent'] !== 'boolean') {
    throw new BootOptionError('coherent', `must be a boolean, got ${describe(o['coherent'])}`)
  }
  const coherent = (o['coherent']) ?? PLATFORMS[arch].coherentByDefault
  const seed = o['seed'] ?? 1
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed) || seed < 0) {
    throw new BootOptionError('seed', `must be an integer from 0 to 2^53 - 1, got ${describe(seed)}`)
  }
  const iommuMode = o['iommu'] === undefined ? 'strict' : oneOf('iommu', o['iommu'], ['off', 'strict', 'lazy'] as const)
  const swiotlb = o['swiotlb'] === undefined ? 'auto' : oneOf('swiotlb', o['swiotlb'], ['auto', 'force', 'off'] as const)
  const swiotlbSize = o['swiotlbSize'] ?? 64 * 1024 * 1024
  if (typeof swiotlbSize !== 'number' || !Number.isInteger(swiotlbSize) || swiotlbSize <= 0 || swiotlbSize % (256 * 1024) !== 0 || swiotlbSize > 1024 * 1024 * 1024) {
    throw new BootOptionError('swiotlbSize', `must be a positive multiple of 256 KiB up to 1 GiB, got ${describe(swiotlbSize)}`)
  }
  const minAlign = o['kmallocMinAlign'] ?? PLATFORMS[arch].dmaMinAlign
  if (typeof minAlign !== 'number' || !Number.isInteger(minAlign) || minAlign < 8 || minAlign > 4096 || (minAlign & (minAlign - 1)) !== 0) {
    throw new BootOptionError('kmallocMinAlign', `must be a power of two from 8 to 4096, got ${describe(minAlign)}`)
  }
  let cache: CacheConfig = DEFAULT_CACHE_CONFIG
  if (o['cache'] !== undefined) {
    if (!isObject(o['cache'])) throw new BootOptionError('cache', `must be an object, got ${describe(o['cache'])}`)
    const c: Record<string, unknown> = { ...DEFAULT_CACHE_CONFIG }
    for (const [k, v] of Object.entries(o['cache'])) {
      if (!(k in DEFAULT_CACHE_CONFIG)) throw new BootOptionError(`cache.${k}`, `is not a cache option (known: lineSize, size, ways, speculation)`)
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new BootOptionError(`cache.${k}`, `must be a number, got ${describe(v)}`)
      c[k] = v
    }
    cache = c as unknown as CacheConfig
  }
  const costs: Costs = { ...DEFAULT_COSTS }
  if (o['costs'] !== undefined) {
    if (!isObject(o['costs'])) throw new BootOptionError('costs', `must be an object, got ${describe(o['costs'])}`)
    for (const [k, v] of Object.entries(o['costs'])) {
      if (!COST_KEYS.includes(k as keyof Costs)) throw new BootOptionError(`costs.${k}`, `is not a cost (known: ${COST_KEYS.join(', ')})`)
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || (k === 'copyBytesPerNs' && v === 0)) {
        throw new BootOptionError(`costs.${k}`, `must be a ${k === 'copyBytesPerNs' ? 'positive' : 'non-negative'} number, got ${describe(v)}`)
      }
      costs[k as keyof Costs] = v
    }
  }
  const threshold = o['irqUnhandledThreshold'] ?? 99_900
  if (typeof threshold !== 'number' || !Number.isInteger(threshold) || threshold < 1 || threshold > 100_000) {
    throw new BootOptionError('irqUnhandledThreshold', `must be an integer from 1 to 100000, got ${describe(threshold)}`)
  }
  const devices: PciFunction[] = []
  if (o['devices'] !== undefined) {
    if (!Array.isArray(o['devices'])) throw new BootOptionError('devices', `must be an array, got ${describe(o['devices'])}`)
    for (const [i, d] of (o['devices'] as unknown[]).entries()) {
      if (!(d instanceof PciFunction)) throw new BootOptionError(`devices[${i}]`, `must be a device model from devices/index.ts (new CopyEngine(), ...), got ${describe(d)}`)
      if (d.machine !== null) throw new BootOptionError(`devices[${i}]`, `(${d.name}) is already on another machine: create a new instance per system`)
      if (devices.some((x) => x.name === d.name)) throw new BootOptionError(`devices[${i}]`, `has the name '${d.name}' of another device: give each a unique name`)
      devices.push(d)
    }
  }
  let checks: Checks = { dmaDebug: true, ownership: true, kasan: true, kmsan: true, stacks: true }
  const ch = o['checks']
  if (ch === false) checks = { dmaDebug: false, ownership: false, kasan: false, kmsan: false, stacks: false }
  else if (ch !== undefined && ch !== true) {
    if (!isObject(ch)) throw new BootOptionError('checks', `must be a boolean or an object, got ${describe(ch)}`)
    const c: Record<string, boolean> = { ...checks }
    for (const [k, v] of Object.entries(ch)) {
      if (!CHECK_KEYS.includes(k as keyof Checks)) throw new BootOptionError(`checks.${k}`, `is not a check family (known: ${CHECK_KEYS.join(', ')})`)
      if (typeof v !== 'boolean') throw new BootOptionError(`checks.${k}`, `must be a boolean, got ${describe(v)}`)
      c[k] = v
    }
    checks = c as unknown as Checks
  }
  let log: LogLevel | KernelLogger = envLevel()
  if (o['log'] !== undefined) {
    const l = o['log']
    if (typeof l === 'string') log = oneOf('log', l, LEVELS) as LogLevel
    else if (isObject(l) && typeof l['warn'] === 'function') log = l as unknown as KernelLogger
    else throw new BootOptionError('log', `must be a level (${LEVELS.join(', ')}) or a pino logger, got ${describe(l)}`)
  }
  return { arch, coherent, seed, iommu: iommuMode, swiotlb, swiotlbSize, kmallocMinAlign: minAlign, cache, checks, log, costs, irqUnhandledThreshold: threshold, devices }
}
