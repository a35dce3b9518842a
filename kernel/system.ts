/**
 * One emulated system: the machine, the kernel state built on it, and the harness that tests drive
 * it with (shared/docs/DESIGN.md §6). `boot()` makes one; several can live in one process, and no
 * state is shared between them but the one CPU they take turns on.
 */

import pino from 'pino'
import { DEFAULT_CACHE_CONFIG, Machine, type Arch, type PlatformInfo } from '../devices/index.js'
import { Device } from './base/device.js'
import { resolveOptions, type Checks, type KernelLogger, type ResolvedOptions } from './boot.js'
import { formatReport, ReportLog, type Report, type ReportInput, type ReportStack } from './debug/report.js'
import { captureStack, parseStack } from './debug/stack.js'
import { DmaCore } from './dma/core.js'
import type { DmaMapping } from './dma/types.js'
import { BootOptionError, DmalabError, InvalidArgumentError, KernelOops } from './errors.js'
import { InitShadow } from './mm/kmsan.js'
import type { KObject } from './mm/page.js'
import { PageTable } from './mm/page.js'
import { PageAllocator } from './mm/page_alloc.js'
import { SlabAllocator } from './mm/slab.js'
import { acquireCpu, currentOrNull, switchTo, Task } from './sched/current.js'
import { TestMaster, type TestMasterOptions } from './test-master.js'

let systemCount = 0

/** What a report may carry besides its kind and message. */
export interface ReportArgs {
  kind: ReportInput['kind']
  message: string
  device?: string | undefined
  /** The mapping or allocation involved: its map/alloc site is added to the report. */
  mapping?: DmaMapping | null | undefined
  /** The kmalloc/page object involved: its alloc and free sites are added. */
  object?: KObject | null | undefined
  details?: Record<string, string | number | boolean>
  /** Frames to use as the access site instead of capturing the current stack. */
  access?: ReportStack['frames']
  key?: string
}

export class System {
  readonly name: string
  readonly options: ResolvedOptions
  readonly seed: number
  readonly arch: Arch
  readonly platform: PlatformInfo
  readonly machine: Machine
  readonly checks: Checks
  readonly pages = new PageTable<DmaMapping>()
  readonly buddy: PageAllocator
  readonly slab: SlabAllocator
  readonly shadow: InitShadow
  readonly dma: DmaCore
  readonly log: ReportLog
  readonly logger: KernelLogger
  readonly devices = new Map<string, Device>()
  readonly #masters = new Set<TestMaster>()

  constructor(options: unknown) {
    const o = resolveOptions(options)
    this.options = o
    this.name = `sys${++systemCount}`
    this.seed = o.seed
    this.arch = o.arch
    this.checks = o.checks
    try {
      this.machine = new Machine({ arch: o.arch, coherent: o.coherent, seed: o.seed, iommu: o.iommu, cache: o.cache })
    } catch (e) {
      if (e instanceof RangeError) {
        // The cache names the field it rejects ("cache.lineSize must be ..."): name it too.
        const m = /^(cache\.\w+) (.*)$/s.exec(e.message)
        const option = m?.[1] ?? 'cache'
        const problem = m?.[2] ?? e.message
        throw new BootOptionError(option, `${problem} (defaults: ${JSON.stringify(DEFAULT_CACHE_CONFIG)})`)
      }
      throw e
    }
    this.platform = this.machine.platform
    this.logger = typeof o.log === 'string' ? pino({ level: o.log, base: { sys: this.name } }) : o.log
    this.log = new ReportLog(o.seed, () => this.machine.clock.now, (r) => this.logger.warn({ kind: r.kind, site: r.site }, formatReport(r)))
    this.buddy = new PageAllocator(this.machine.ram.banks)
    this.slab = new SlabAllocator(this.pages, this.buddy, o.kmallocMinAlign, o.checks.kasan)
    this.shadow = new InitShadow(this.pages)
    this.dma = new DmaCore(this)
  }

  // ------------------------------------------------------------------ harness (contract)

  /** Everything the checks found, in order; one entry per distinct bug with its count. */
  get reports(): Report[] {
    return this.log.reports
  }

  /** Virtual time, ns. */
  get clock(): number {
    return this.machine.clock.now
  }

  /** Drops the reports so far (e.g. after an expected one). */
  clearReports(): void {
    this.log.clear()
  }

  /**
   * Runs fn as a process-context task on the emulated CPU. Rejects with KernelOops when the task
   * oopsed (a BUG, bad input, or an exception escaping it); the system keeps running.
   */
  async run<T>(fn: () => T | Promise<T>, name = 'run'): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError('sys.run', 'fn', `must be a function, got ${typeof fn}`)
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('sys.run', 'name', 'must be a non-empty string')
    if (currentOrNull() !== null) {
      throw new DmalabError('sys.run() called from inside a task: await it from test code, not from kernel code')
    }
    const release = await acquireCpu()
    const task = new Task(this, name)
    const prev = switchTo(task)
    try {
      let result: T
      try {
        result = await fn()
      } catch (e) {
        throw this.#oopsFromException(task, e)
      }
      if (task.oops !== null) throw task.oops
      return result
    } finally {
      switchTo(prev)
      release()
    }
  }

  /** Runs device events and timers until none is pending. */
  async runUntilIdle(): Promise<void> {
    await this.#runEvents(Number.POSITIVE_INFINITY)
  }

  /** Advances virtual time by ns, running what falls due. */
  async runFor(ns: number): Promise<void> {
    if (typeof ns !== 'number' || !Number.isFinite(ns) || ns < 0) throw new InvalidArgumentError('sys.runFor', 'ns', `must be a non-negative number of nanoseconds, got ${String(ns)}`)
    const until = this.machine.clock.now + ns
    await this.#runEvents(until)
    this.machine.clock.now = Math.max(this.machine.clock.now, until)
  }

  /** Runs until pred() holds; rejects when timeoutNs of virtual time pass first (default 1 s). */
  async runUntil(pred: () => boolean, opts: { timeoutNs?: number } = {}): Promise<void> {
    if (typeof pred !== 'function') throw new InvalidArgumentError('sys.runUntil', 'pred', 'must be a function')
    const timeout = opts.timeoutNs ?? 1e9
    if (typeof timeout !== 'number' || !(timeout >= 0)) throw new InvalidArgumentError('sys.runUntil', 'timeoutNs', 'must be a non-negative number')
    const deadline = this.machine.clock.now + timeout
    while (!pred()) {
      const ev = this.machine.clock.peek()
      if (ev === undefined || ev.at > deadline) {
        this.machine.clock.now = Math.max(this.machine.clock.now, Math.min(deadline, ev?.at ?? deadline))
        if (!pred()) throw new DmalabError(`sys.runUntil: condition not met within ${timeout} ns of virtual time`)
        return
      }
      await this.#runEvents(ev.at)
    }
  }

  async #runEvents(limit: number): Promise<void> {
    const release = await acquireCpu()
    try {
      while (this.machine.clock.step(limit)) {
        /* each step runs one device event */
      }
    } finally {
      release()
    }
  }

  /** A bare bus master for tests of the DMA API alone. */
  attachTestMaster(name: string, opts: TestMasterOptions = {}): TestMaster {
    const m = new TestMaster(this, name, opts)
    this.#masters.add(m)
    return m
  }

  // ------------------------------------------------------------------ kernel internals

  /** Registers a struct device for a DMA port. */
  addDevice(dev: Device): void {
    this.devices.set(dev.name, dev)
  }

  /** Files a report; the access site is captured here unless given. */
  report(a: ReportArgs): Report {
    const stacks: ReportStack[] = []
    const want = this.checks.stacks
    if (a.access !== undefined) stacks.push({ label: 'access', frames: a.access })
    else if (want) stacks.push({ label: 'access', frames: captureStack() })
    if (a.mapping != null && a.mapping.stack.length > 0) {
      stacks.push({ label: a.mapping.type === 'coherent' || a.mapping.type === 'noncoherent' ? 'allocated' : 'mapped', frames: a.mapping.stack })
    }
    if (a.object != null) {
      if (a.object.allocStack.length > 0) stacks.push({ label: 'allocated', frames: a.object.allocStack })
      if (a.object.freeStack.length > 0) stacks.push({ label: 'freed', frames: a.object.freeStack })
    }
    const task = currentOrNull()
    return this.log.add({
      kind: a.kind,
      message: a.message,
      device: a.device,
      stacks,
      task: task?.sys === this ? task.toString() : undefined,
      ...(a.details !== undefined ? { details: a.details } : {}),
      ...(a.key !== undefined ? { key: a.key } : {}),
    })
  }

  /** BUG(): files an `oops` report, stops the task and throws KernelOops. */
  oops(task: Task, message: string, cause?: unknown, access?: ReportStack['frames']): never {
    this.report({ kind: 'oops', message, ...(access !== undefined ? { access } : {}) })
    const err = new KernelOops(message, task.toString(), cause === undefined ? undefined : { cause })
    task.oops = err
    throw err
  }

  #oopsFromException(task: Task, e: unknown): KernelOops {
    if (e instanceof KernelOops) {
      task.oops ??= e
      return e
    }
    const err = e instanceof Error ? e : new Error(String(e))
    const message = `Oops: ${err.name}: ${err.message} (uncaught in task ${task.toString()})`
    this.report({ kind: 'oops', message, access: parseStack(err.stack ?? '') })
    const oops = new KernelOops(message, task.toString(), { cause: err })
    task.oops = oops
    return oops
  }
}

/** Boots a system. Options are validated; an unknown option or bad value throws BootOptionError. */
export function boot(options?: import('./boot.js').BootOptions): System {
  return new System(options)
}
