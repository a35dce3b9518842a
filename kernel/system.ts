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
import { Ordering } from './dma/ordering.js'
import type { DmaMapping } from './dma/types.js'
import { BootOptionError, DmalabError, InvalidArgumentError, KernelOops } from './errors.js'
import { InitShadow } from './mm/kmsan.js'
import type { KObject } from './mm/page.js'
import { PageTable } from './mm/page.js'
import { PageAllocator } from './mm/page_alloc.js'
import { SlabAllocator } from './mm/slab.js'
import { currentOrNull, switchTo, Task, type TaskContext } from './sched/current.js'
import { KernelTracer } from './trace/events.js'
import { Scheduler } from './sched/scheduler.js'
import { SchedGroup } from './sched/group.js'
import { IrqCore } from './irq/manage.js'
import { bindDevice, matches, PciDev, unbindDevice, type PciDriver } from './pci/pci.js'
import { ENODEV } from './errno.js'
import type { Costs } from './sched/costs.js'
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
  /** Further labelled stacks (e.g. lockdep's two usage sites). */
  stacks?: ReportStack[]
  key?: string
}

/** What the interrupt core offers the scheduler (kernel/irq). */
export interface IrqDelivery {
  /** Whether an interrupt is pending and deliverable. */
  pending(): boolean
  /** Delivers pending interrupts on the current CPU context. */
  deliver(): void
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
  readonly ordering: Ordering
  readonly log: ReportLog
  readonly logger: KernelLogger
  /** The kernel's trace points: contexts, DMA API calls, reports (kernel/trace/events.ts). */
  readonly ktrace: KernelTracer
  readonly devices = new Map<string, Device>()
  readonly sched: Scheduler
  readonly costs: Costs
  /** CPU time spent working (virtual ns); idle time is sched.idleNs. */
  busyNs = 0
  /** Part of busyNs the CPU spent stalled while a third-party DMA controller held the bus. */
  stallNs = 0
  /** The interrupt core, once installed. */
  irqCore: IrqDelivery | null = null
  readonly irq: IrqCore
  /** Registered PCI drivers and the PCI devices of this system. */
  readonly pciDrivers: PciDriver[] = []
  readonly pciDevices: PciDev[] = []
  /** pci_iomap'ed BARs by bus address. */
  readonly iomaps = new Map<number, { pdev: PciDev; bar: number; len: number }>()
  /** The ioremapped region the last MMIO access decoded to (kernel/io.ts revalidates it). */
  ioRegionCache: object | null = null
  /** Depth of device-event execution (reports made there carry no driver access stack). */
  deviceDepth = 0
  #inIrq = false
  /** Softirq work is running (it takes hard IRQs, but softirqs do not nest). */
  #inSoftirq = false
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
    this.ktrace = new KernelTracer(this.machine.clock)
    this.logger = typeof o.log === 'string' ? pino({ level: o.log, base: { sys: this.name } }) : o.log
    this.log = new ReportLog(o.seed, () => this.machine.clock.now, (r) => this.logger.warn({ kind: r.kind, site: r.site }, formatReport(r)))
    this.buddy = new PageAllocator(this.machine.ram.banks)
    this.slab = new SlabAllocator(this.pages, this.buddy, o.kmallocMinAlign, o.checks.kasan)
    this.shadow = new InitShadow(this.pages, o.checks.kmsan)
    this.dma = new DmaCore(this)
    this.ordering = new Ordering(this)
    this.costs = o.costs
    this.sched = new Scheduler(this)
    this.irq = new IrqCore(this)
    this.irqCore = this.irq
    this.machine.onGuestError = (device, message, details) => {
      this.report({ kind: 'device-error', device, message, ...(details !== undefined ? { details } : {}) })
    }
    // Third-party DMA (the 8237) holding the bus stalls a running CPU; an idle one loses nothing.
    this.machine.cpuBus = {
      stall: (ns) => {
        if (currentOrNull()?.sys !== this) return
        this.machine.clock.now += ns
        this.busyNs += ns
        this.stallNs += ns
      },
      idle: () => currentOrNull()?.sys !== this,
    }
    for (const fn of o.devices) {
      this.machine.pci.add(fn)
      const pdev = new PciDev(this, fn)
      this.pciDevices.push(pdev)
      this.addDevice(pdev.dev)
    }
  }

  /** The PCI device named name (as given to its model), or undefined. */
  pciDevice(name: string): PciDev | undefined {
    return this.pciDevices.find((p) => p.name === name)
  }

  /** Unbinds a device from its driver (remove, devres release, leak reports). */
  async unbind(pdev: PciDev): Promise<void> {
    if (!(pdev instanceof PciDev) || !this.pciDevices.includes(pdev)) throw new InvalidArgumentError('sys.unbind', 'pdev', 'must be a PCI device of this system')
    await this.run(async () => {
      const t = currentOrNull()!
      await unbindDevice(t, pdev)
    }, 'unbind')
  }

  /** Binds a device to the first registered driver that matches it; returns probe's result or -ENODEV. */
  async bind(pdev: PciDev): Promise<number> {
    if (!(pdev instanceof PciDev) || !this.pciDevices.includes(pdev)) throw new InvalidArgumentError('sys.bind', 'pdev', 'must be a PCI device of this system')
    return this.run(async () => {
      const t = currentOrNull()!
      if (pdev.driver !== null) return 0
      for (const drv of this.pciDrivers) {
        const id = drv.id_table.find((i) => matches(i, pdev))
        if (id !== undefined) return bindDevice(t, pdev, drv, id)
      }
      return -ENODEV
    }, 'bind')
  }

  // ------------------------------------------------------------------ the CPU

  get clockRef() {
    return this.machine.clock
  }

  #taskIds = 0

  nextTaskId(): number {
    return ++this.#taskIds
  }

  /** CPU work of ns virtual nanoseconds. */
  cpuWork(ns: number): void {
    this.machine.clock.now += ns
    this.busyNs += ns
  }

  /**
   * Every kernel call: the CPU's time advances, due device events run and pending interrupts are
   * delivered if the caller's context takes them (process or softirq context with IRQs enabled).
   */
  kernelCall(t: Task): void {
    const clock = this.machine.clock
    clock.now += this.costs.kernelCallNs
    this.busyNs += this.costs.kernelCallNs
    if (clock.nextAt <= clock.now) this.runDueEvents()
    this.#maybeInterrupt(t)
  }

  /** Runs device events and timers that are due. */
  runDueEvents(): void {
    if (this.deviceDepth > 0) return
    this.deviceDepth++
    try {
      this.machine.clock.runDue()
    } finally {
      this.deviceDepth--
    }
  }

  #deliver(): void {
    this.#inIrq = true
    try {
      this.irqCore!.deliver()
    } finally {
      this.#inIrq = false
    }
  }

  /** The idle loop's work: due events, then interrupts. */
  idleWork(): void {
    this.runDueEvents()
    this.#maybeInterrupt(null)
  }

  irqPending(): boolean {
    return this.irqCore?.pending() === true || this.#softirqs.length > 0
  }

  contextSwitch(): void {
    this.cpuWork(this.costs.contextSwitchNs)
  }

  taskSlice(phase: 'B' | 'E', t: Task): void {
    this.ktrace.context(phase, 'process', t.name)
  }

  /** A task is about to sleep: its buffered stores drain (a context switch orders them). */
  taskBlocked(): void {
    this.machine.storeBuffer.drain()
    // A context switch is a full barrier (schedule() has smp_mb): stores before the sleep are
    // ordered before stores after it, and loads likewise.
    this.ordering.writeBarrier()
    this.ordering.readBarrier()
  }

  /** udelay: the CPU spins for ns; events fall due and interrupts arrive along the way. */
  busyWait(t: Task, ns: number): void {
    const clock = this.machine.clock
    const end = clock.now + ns
    if (this.deviceDepth > 0) {
      // Called from a device event or a timer callback: nothing else can run until it returns.
      this.busyNs += ns
      clock.now = end
      return
    }
    while (clock.now < end) {
      const next = Math.min(end, clock.nextAt)
      this.busyNs += Math.max(0, next - clock.now)
      clock.now = Math.max(clock.now, next)
      this.runDueEvents()
      this.#maybeInterrupt(t)
    }
  }

  /**
   * Delivers pending interrupts and runs pending softirq work (expired timers) if the context
   * takes them: interrupts when local IRQs are enabled outside a hard-IRQ handler; softirqs in
   * process context with IRQs enabled (as on irq_exit or local_bh_enable), never nested in a
   * handler, a timer callback or an IRQ-off section.
   */
  #maybeInterrupt(t: Task | null): void {
    if (t !== null && (t.irqsDisabled > 0 || t.context === 'hardirq')) return
    if (!this.#inIrq && this.irqCore?.pending() === true) this.#deliver()
    if ((t === null || t.context === 'process') && !this.#inIrq && !this.#inSoftirq && this.#softirqs.length > 0 && this.deviceDepth === 0) this.#runSoftirqs()
  }

  readonly #softirqs: (() => void)[] = []

  /** Queues softirq work (an expired timer's callback); it runs when the CPU may take softirqs. */
  raiseSoftirq(fn: () => void): void {
    this.#softirqs.push(fn)
  }

  /**
   * Runs the queued softirq work, as __do_softirq does on irq_exit or local_bh_enable: with
   * interrupts enabled (a hard IRQ may preempt a timer callback or a NAPI poll), never nested.
   */
  #runSoftirqs(): void {
    this.#inSoftirq = true
    this.ktrace.context('B', 'softirq', 'softirq')
    try {
      while (this.#softirqs.length > 0) this.#softirqs.shift()!()
    } finally {
      this.#inSoftirq = false
      this.ktrace.context('E', 'softirq', 'softirq')
    }
  }

  /**
   * Runs fn synchronously in an atomic context ('hardirq' for handlers, 'softirq' for timers) on
   * this CPU; a Promise returned is `invalid-context`, an exception is an oops of that context.
   */
  runAtomic<T>(name: string, context: TaskContext, fn: () => T): T | undefined {
    const task = new Task(this, name, context)
    const prev = switchTo(task)
    this.ktrace.context('B', context, name)
    try {
      const r = fn()
      if (r instanceof Promise) {
        r.catch(() => undefined)
        this.report({
          kind: 'invalid-context',
          message: `BUG: ${context === 'hardirq' ? 'an interrupt handler' : 'a timer callback'} (${name}) returned a Promise: it is atomic context and must not be async or sleep`,
        })
      }
      return r
    } catch (e) {
      this.#oopsFromException(task, e)
      return undefined
    } finally {
      this.ktrace.context('E', context, name)
      switchTo(prev)
    }
  }

  /** Spawns a kernel-internal process-context task whose failure is an oops report. */
  spawnTask(name: string, fn: () => unknown): Task {
    const { task, done } = this.sched.spawn(name, fn)
    done.catch((e: unknown) => this.#oopsFromException(task, e))
    return task
  }

  /** CPU utilisation so far: busy and idle virtual ns. */
  get cpu(): { busyNs: number; idleNs: number; utilisation: number; stallNs: number } {
    const busy = this.busyNs
    const idle = this.sched.idleNs
    return { busyNs: busy, idleNs: idle, utilisation: busy + idle === 0 ? 0 : busy / (busy + idle), stallNs: this.stallNs }
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
   * Runs fn as a process-context task on the emulated CPU, with device events, timers, interrupts
   * and other tasks interleaved on virtual time, until fn finishes. Rejects with KernelOops when
   * the task oopsed (a BUG, bad input, or an exception escaping it); the system keeps running.
   */
  async run<T>(fn: () => T | Promise<T>, name = 'run'): Promise<T> {
    if (typeof fn !== 'function') throw new InvalidArgumentError('sys.run', 'fn', `must be a function, got ${typeof fn}`)
    if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('sys.run', 'name', 'must be a non-empty string')
    // A task of this system awaiting sys.run() of its own system would deadlock. (A task of
    // another system may be current while test code runs between its awaits: that is fine.)
    if (currentOrNull()?.sys === this) {
      throw new DmalabError('sys.run() called from inside a task: await it from test code, not from kernel code')
    }
    const { task, done } = this.sched.spawn(name, fn)
    const finished = await this.sched.runTask(task)
    if (!finished) {
      throw new DmalabError(`sys.run: task ${task.toString()} is blocked and nothing is left that could wake it (a wait that is never completed?)`)
    }
    let result: T
    try {
      result = await done
    } catch (e) {
      throw this.#oopsFromException(task, e)
    }
    if (task.oops !== null) throw task.oops
    return result
  }

  /** Runs tasks, device events and timers until none is pending. */
  async runUntilIdle(): Promise<void> {
    this.#notInTask('sys.runUntilIdle')
    await this.sched.exclusive(() => this.sched.drive(() => false))
  }

  /** Advances virtual time by ns, running what falls due (periodic devices never go idle). */
  async runFor(ns: number): Promise<void> {
    this.#notInTask('sys.runFor')
    if (typeof ns !== 'number' || !Number.isFinite(ns) || ns < 0) throw new InvalidArgumentError('sys.runFor', 'ns', `must be a non-negative number of nanoseconds, got ${String(ns)}`)
    const until = this.machine.clock.now + ns
    await this.sched.exclusive(() => this.sched.drive(() => false, until))
    if (this.machine.clock.now < until) {
      this.sched.idleNs += until - this.machine.clock.now
      this.machine.clock.now = until
    }
  }

  /** Runs until pred() holds; rejects when timeoutNs of virtual time pass first (default 1 s). */
  async runUntil(pred: () => boolean, opts: { timeoutNs?: number } = {}): Promise<void> {
    this.#notInTask('sys.runUntil')
    if (typeof pred !== 'function') throw new InvalidArgumentError('sys.runUntil', 'pred', 'must be a function')
    const timeout = opts.timeoutNs ?? 1e9
    if (typeof timeout !== 'number' || !(timeout >= 0)) throw new InvalidArgumentError('sys.runUntil', 'timeoutNs', 'must be a non-negative number')
    const deadline = this.machine.clock.now + timeout
    if (!(await this.sched.exclusive(() => this.sched.drive(pred, deadline)))) {
      throw new DmalabError(`sys.runUntil: condition not met within ${timeout} ns of virtual time`)
    }
  }

  #notInTask(fn: string): void {
    if (currentOrNull()?.sys === this) throw new DmalabError(`${fn}() called from inside a task: await it from test code, not from kernel code`)
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
    else if (want && this.deviceDepth === 0) stacks.push({ label: 'access', frames: captureStack() })
    if (a.mapping != null && a.mapping.stack.length > 0) {
      stacks.push({ label: a.mapping.type === 'coherent' || a.mapping.type === 'noncoherent' ? 'allocated' : 'mapped', frames: a.mapping.stack })
    }
    if (a.object != null) {
      if (a.object.allocStack.length > 0) stacks.push({ label: 'allocated', frames: a.object.allocStack })
      if (a.object.freeStack.length > 0) stacks.push({ label: 'freed', frames: a.object.freeStack })
    }
    if (a.stacks !== undefined) stacks.push(...a.stacks)
    const task = currentOrNull()
    const before = this.log.reports.length
    const r = this.log.add({
      kind: a.kind,
      message: a.message,
      device: a.device,
      stacks,
      task: task?.sys === this ? task.toString() : undefined,
      ...(a.details !== undefined ? { details: a.details } : {}),
      ...(a.key !== undefined ? { key: a.key } : {}),
    })
    if (this.log.reports.length > before && this.ktrace.enabled('report')) {
      this.ktrace.emit('report', {
        time: r.time,
        kind: r.kind,
        message: r.message,
        ...(r.device !== undefined ? { device: r.device } : {}),
        ...(r.site !== undefined ? { site: r.site } : {}),
        ...(a.mapping != null ? { mapping: a.mapping.id } : {}),
      })
    }
    return r
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

/**
 * Couples systems so that they run together on virtual time: two machines joined by a wire.
 * From then on, driving any of them (`sys.run`, `runFor`, `runUntil`, `runUntilIdle`) drives all,
 * always stepping the one whose next activity comes first (kernel/sched/group.ts), so a frame sent
 * by one arrives at the other at the right virtual time. Systems already coupled to others join
 * one group. Coupling is permanent, and refused while any of them is running.
 */
export function coupleSystems(...systems: System[]): void {
  systems.forEach((s, i) => {
    if (!(s instanceof System)) throw new InvalidArgumentError('coupleSystems', `systems[${i}]`, 'must be a System from boot()')
  })
  if (new Set(systems).size < 2) throw new InvalidArgumentError('coupleSystems', 'systems', 'needs at least two different systems')
  for (const s of systems) {
    if (s.sched.driving || (s.sched.group !== null && s.sched.group.driving)) throw new DmalabError('coupleSystems: a system is running; couple systems before running them')
  }
  const group = systems.map((s) => s.sched.group).find((g) => g !== null) ?? new SchedGroup()
  for (const s of systems) {
    const g = s.sched.group
    if (g !== null && g !== group) for (const m of g.members) group.add(m)
    group.add(s.sched)
  }
}
