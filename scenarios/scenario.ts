/**
 * Scenarios: what `dmalab run`, `explore` and `portability` run (docs/scenarios.md).
 *
 * A scenario is a TypeScript module whose default export is `defineScenario({...})`: the devices
 * to put on the PCI bus, the driver to bind to them, and a workload that drives them the way user
 * space would and says whether the data came out right. The runner boots a fresh system for each
 * run (platform options and seed come from the command line), registers the driver, runs the
 * workload, unbinds every device (so leaks are reported) and returns the reports and the data
 * verdict. This file is platform-neutral (no node: imports): scenarios run in a browser tab too.
 */
import { KernelOops, boot, pci_register_driver, type BootOptions, type PciDriver, type Report, type System } from '../kernel/index.js'
import type { Arch, PciFunction } from '../devices/index.js'

/** The platform knobs the command line sets (`--arch --coherent --iommu --swiotlb --seed`). */
export interface PlatformOptions {
  arch: Arch
  /** Omitted: the platform's default (arm64/riscv64 non-coherent, x86_64 coherent). */
  coherent?: boolean
  iommu: 'off' | 'strict'
  swiotlb: 'auto' | 'force' | 'off'
  seed: number
}

/** What a workload gets. */
export interface WorkloadContext<D extends readonly PciFunction[] = readonly PciFunction[]> {
  /** The booted system, the driver registered and bound. */
  readonly sys: System
  /** The device instances `devices()` made for this run, in order. */
  readonly devices: D
  /** The run's platform options (the seed is `options.seed`). */
  readonly options: Readonly<PlatformOptions>
}

/** What a workload says about its run. */
export interface WorkloadResult {
  /** Whether the data came out right (every byte copied / received / read back / played as sent). */
  readonly dataOk: boolean
  /** One line on what was done and what was wrong, for the command line. */
  readonly summary?: string
}

export interface ScenarioSpec<D extends readonly PciFunction[] = readonly PciFunction[]> {
  /** A short name (`copy-engine`). */
  readonly name: string
  /** One sentence: what the scenario exercises, and for a known-bad one, the bug. */
  readonly description: string
  /** Fresh device instances for one system (called once per run: a device lives on one machine). */
  readonly devices: (options: Readonly<PlatformOptions>) => D
  /**
   * The driver registered once the system is up; every device must bind to it. A function makes a
   * fresh driver object per run, as loading the module afresh would (drivers that number their
   * instances per driver object, as nvme does, need one: otherwise the second run is nvme1).
   */
  readonly driver: PciDriver | ((options: Readonly<PlatformOptions>) => PciDriver)
  /** Extra boot options (cache, costs, checks, kmallocMinAlign...); the command line's platform options win. */
  readonly boot?: Omit<BootOptions, 'arch' | 'coherent' | 'iommu' | 'swiotlb' | 'seed' | 'devices' | 'log'>
  /** Drives the devices through the driver as user space would, and checks the data. */
  readonly workload: (ctx: WorkloadContext<D>) => Promise<WorkloadResult>
  /** Unbind every device at the end, so that whatever the driver leaves behind is a `leak` (default true). */
  readonly unbind?: boolean
}

const BRAND = Symbol.for('dmalab.scenario')

export interface Scenario<D extends readonly PciFunction[] = readonly PciFunction[]> extends ScenarioSpec<D> {
  readonly [BRAND]: true
}

/** Declares a scenario (the default export of a scenario module). Checks the shape at once. */
export function defineScenario<const D extends readonly PciFunction[]>(spec: ScenarioSpec<D>): Scenario<D> {
  const problems = scenarioProblems(spec)
  if (problems.length > 0) throw new TypeError(`defineScenario: ${problems.join('; ')}`)
  return Object.freeze({ ...spec, [BRAND]: true as const })
}

/** What is wrong with a would-be scenario ([] when nothing is). */
export function scenarioProblems(x: unknown): string[] {
  if (typeof x !== 'object' || x === null) return [`expected an object made by defineScenario({...}), got ${x === null ? 'null' : typeof x}`]
  const o = x as Record<string, unknown>
  const out: string[] = []
  const want = (key: string, type: 'string' | 'function' | 'object', optional = false) => {
    const v = o[key]
    if (v === undefined && optional) return
    if (typeof v !== type || v === null) out.push(`'${key}' must be a ${type}${v === undefined ? ' (missing)' : `, got ${v === null ? 'null' : typeof v}`}`)
  }
  want('name', 'string')
  want('description', 'string')
  want('devices', 'function')
  want('workload', 'function')
  want('boot', 'object', true)
  const drv = o['driver']
  if (typeof drv !== 'function' && (typeof drv !== 'object' || drv === null || typeof (drv as Record<string, unknown>)['probe'] !== 'function')) {
    out.push(`'driver' must be a PciDriver (with a probe function) or a function returning one${drv === undefined ? ' (missing)' : ''}`)
  }
  if (o['unbind'] !== undefined && typeof o['unbind'] !== 'boolean') out.push("'unbind' must be a boolean")
  return out
}

/** Whether x is a scenario made by defineScenario. */
export function isScenario(x: unknown): x is Scenario {
  return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[BRAND] === true
}

/** The outcome of one run. */
export interface RunResult {
  readonly options: PlatformOptions
  readonly reports: Report[]
  /** Whether the workload's data came out right (false as well when the run crashed). */
  readonly dataOk: boolean
  readonly summary: string
  /** A kernel oops (driver crash) that stopped the workload, as text. */
  readonly oops?: string
  /** Virtual time at the end, ns. */
  readonly clock: number
}

/** Tools' hooks into a run (dmalab trace / diagram attach their recorders here). */
export interface RunHooks {
  /** Called right after boot, before the driver is registered. */
  onBoot?: (sys: System) => void
}

/** clean: no report and the data right. */
export function isClean(r: RunResult): boolean {
  return r.reports.length === 0 && r.dataOk && r.oops === undefined
}

/**
 * One run: boot with the options, register the driver, check every device bound, run the
 * workload, unbind. A driver crash (KernelOops) is part of the result; any other exception is the
 * scenario's own fault and is thrown.
 */
export async function runScenario(s: Scenario, options: PlatformOptions, log: BootOptions['log'] = 'silent', hooks: RunHooks = {}): Promise<RunResult> {
  const devices = s.devices(options)
  const sys = boot({
    ...s.boot,
    arch: options.arch,
    ...(options.coherent !== undefined ? { coherent: options.coherent } : {}),
    iommu: options.iommu,
    swiotlb: options.swiotlb,
    seed: options.seed,
    devices,
    ...(log !== undefined ? { log } : {}),
  })
  hooks.onBoot?.(sys)
  const result = (dataOk: boolean, summary: string, oops?: string): RunResult => ({
    options,
    reports: [...sys.reports],
    dataOk,
    summary,
    ...(oops !== undefined ? { oops } : {}),
    clock: sys.clock,
  })
  try {
    const driver = typeof s.driver === 'function' ? s.driver(options) : s.driver
    const rc = await sys.run(() => pci_register_driver(driver))
    if (rc !== 0) return result(false, `pci_register_driver returned ${rc}`)
    const unbound = devices.filter((d) => sys.pciDevice(d.name)?.driver == null).map((d) => d.name)
    if (unbound.length > 0) return result(false, `probe failed: ${unbound.join(', ')} not bound to ${driver.name}`)
    const w = await s.workload({ sys, devices, options })
    if (s.unbind !== false) for (const d of devices) {
      const pdev = sys.pciDevice(d.name)
      if (pdev?.driver != null) await sys.unbind(pdev)
    }
    return result(w.dataOk, w.summary ?? (w.dataOk ? 'data ok' : 'data wrong'))
  } catch (e) {
    if (e instanceof KernelOops) return result(false, 'the workload stopped: kernel oops', `${e.message}${e.cause instanceof Error ? `: ${e.cause.message}` : ''}`)
    throw e
  }
}

/** Compares bytes; the summary names the first difference. */
export function compareBytes(got: Uint8Array, want: Uint8Array, what = 'data'): WorkloadResult {
  if (got.length !== want.length) return { dataOk: false, summary: `${what}: ${got.length} bytes, expected ${want.length}` }
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) {
      let bad = 0
      for (let j = i; j < want.length; j++) if (got[j] !== want[j]) bad++
      return { dataOk: false, summary: `${what}: ${bad} of ${want.length} bytes wrong, first at offset ${i} (0x${got[i]!.toString(16)} instead of 0x${want[i]!.toString(16)})` }
    }
  }
  return { dataOk: true, summary: `${what}: ${want.length} bytes right` }
}

/** A seeded byte pattern (the same for the same n and tag). */
export function pattern(n: number, tag = 1): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + tag * 13 + (i >> 8)) & 0xff)
}
