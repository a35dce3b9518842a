/**
 * Interrupt handling (kernel/irq/manage.c, kernel/irq/handle.c, kernel/irq/spurious.c):
 * request_irq and friends with Linux's sharing and flag rules, hard-IRQ handlers run
 * synchronously in atomic context between two kernel calls of whatever task they interrupt,
 * threaded handlers run as process-context tasks (IRQF_ONESHOT keeps the line masked until they
 * finish), and "nobody cared" disables a line whose interrupts go unhandled.
 *
 * IRQ numbers are the controller's hwirqs: INTx lines 0..63, MSI vectors from 1024. A line nobody
 * requested stays masked, as an unrequested irq_desc does.
 */

import { InterruptController } from '../../devices/machine/intc.js'
import { EBUSY, EINVAL, ENOTCONN } from '../errno.js'
import { badArg } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import { mightSleep } from '../sched/time.js'
import type { System, IrqDelivery } from '../system.js'
import type { Device } from '../base/device.js'

export const IRQ_NONE = 0
export const IRQ_HANDLED = 1
export const IRQ_WAKE_THREAD = 2
export type irqreturn_t = number

export const IRQF_TRIGGER_NONE = 0x0
export const IRQF_TRIGGER_RISING = 0x1
export const IRQF_TRIGGER_FALLING = 0x2
export const IRQF_TRIGGER_HIGH = 0x4
export const IRQF_TRIGGER_LOW = 0x8
export const IRQF_SHARED = 0x80
export const IRQF_PROBE_SHARED = 0x100
export const IRQF_ONESHOT = 0x2000
export const IRQF_NO_AUTOEN = 0x80000

/** `irq_handler_t`: called with the irq number and dev_id; returns IRQ_NONE/HANDLED/WAKE_THREAD. */
export type IrqHandler = (irq: number, dev_id: unknown) => number

/** A threaded handler: runs in process context and may sleep (so it may be async). */
export type IrqThreadFn = (irq: number, dev_id: unknown) => number | Promise<number>

/** The idle CPU's wake-up event: it only has to exist. */
const NOTHING = (): void => undefined

interface IrqAction {
  readonly handler: IrqHandler | null
  readonly thread_fn: IrqThreadFn | null
  readonly flags: number
  readonly name: string
  /** The name its handler runs under ("irq/N-name"). */
  readonly ctxName: string
  readonly dev_id: unknown
  /** The device whose driver requested it (for leak reports at unbind). */
  readonly owner: Device | null
  threadWanted: boolean
  threadRunning: boolean
  warnedNoThread: boolean
}

interface IrqDesc {
  readonly irq: number
  /** Replaced, never changed in place: a handler that frees or requests an IRQ does not disturb the loop running it. */
  actions: readonly IrqAction[]
  /** disable_irq nesting: the line is masked while > 0. */
  depth: number
  /** Masked until the threads of a oneshot interrupt finish. */
  oneshotMasked: boolean
  count: number
  unhandled: number
  lastUnhandled: number
  spuriousDisabled: boolean
  readonly idle: Set<Task>
}

/** Interrupts (hard handler invocations) of one line in a row before it counts as a storm. */
const STORM_LIMIT = 10_000

/**
 * The largest seeded delay between a device raising an interrupt and the CPU being able to take
 * it (the interrupt controller's and the interconnect's latency). It is what makes different seeds
 * interleave handlers differently with the code they interrupt.
 */
export const IRQ_LATENCY_MAX_NS = 2000

/** The system's interrupt core. */
export class IrqCore implements IrqDelivery {
  readonly #sys: System
  readonly #intc: InterruptController
  readonly #descs = new Map<number, IrqDesc>()
  /** Consecutive deliveries after which the line was still pending (its cause never cleared). */
  #streak = 0
  /** Interrupts raised by devices are not deliverable before this time (seeded latency). */
  #deliverableAt = 0
  #raisedSeen = 0
  readonly #rng: import('../../devices/index.js').Rng

  constructor(sys: System) {
    this.#sys = sys
    this.#intc = sys.machine.intc
    this.#rng = sys.machine.rng.fork()
    for (let line = 0; line < InterruptController.NR_LINES; line++) this.#intc.mask(line)
    this.#intc.onRaise = () => this.#raised()
  }

  /** A device raised an interrupt (not an unmask): it becomes deliverable after a seeded latency. */
  #raised(): void {
    const raised = this.#intc.stats.raised
    if (raised === this.#raisedSeen) return
    this.#raisedSeen = raised
    const clock = this.#sys.machine.clock
    if (this.#deliverableAt > clock.now) return
    this.#deliverableAt = clock.now + this.#rng.int(IRQ_LATENCY_MAX_NS)
    // Wake the idle CPU when the interrupt becomes deliverable.
    if (this.#deliverableAt > clock.now) clock.schedule(this.#deliverableAt, NOTHING)
  }

  desc(irq: number): IrqDesc {
    let d = this.#descs.get(irq)
    if (d === undefined) {
      d = { irq, actions: [], depth: 1, oneshotMasked: false, count: 0, unhandled: 0, lastUnhandled: 0, spuriousDisabled: false, idle: new Set() }
      this.#descs.set(irq, d)
    }
    return d
  }

  /** Whether irq is a valid interrupt number (an INTx line or an allocated MSI vector). */
  valid(irq: number): boolean {
    if (!Number.isInteger(irq) || irq < 0) return false
    if (irq < InterruptController.NR_LINES) return true
    return irq >= InterruptController.MSI_BASE && irq < InterruptController.MSI_BASE + InterruptController.NR_MSI
  }

  #updateMask(d: IrqDesc): void {
    if (d.depth > 0 || d.oneshotMasked || d.actions.length === 0) this.#intc.mask(d.irq)
    else this.#intc.unmask(d.irq)
  }

  pending(): boolean {
    return this.#sys.machine.clock.now >= this.#deliverableAt && this.#intc.nextPending() >= 0
  }

  /** Delivers pending interrupts one by one (the CPU takes the lowest first). */
  deliver(): void {
    for (let hw = this.#intc.nextPending(); hw >= 0; hw = this.#intc.nextPending()) this.#handle(hw)
  }

  #handle(irq: number): void {
    const sys = this.#sys
    sys.cpuWork(sys.costs.irqEntryNs)
    const d = this.desc(irq)
    if (irq >= InterruptController.MSI_BASE) this.#intc.ack(irq)
    if (d.actions.length === 0) {
      // Nothing requested it (a stale MSI, or a line that was just freed): keep it masked.
      this.#intc.mask(irq)
      sys.cpuWork(sys.costs.irqExitNs)
      return
    }
    d.count++
    // Taking the interrupt orders the handler's loads after everything the CPU loaded before it
    // (the interrupt acknowledge, and for an MSI the PCIe ordering of the device's writes before
    // its message): the handler's first look at a status or phase word is not a stale early read.
    sys.ordering.readBarrier()
    let ret = IRQ_NONE
    for (const a of d.actions) {
      if (a.handler === null) {
        ret |= IRQ_WAKE_THREAD
        this.#wakeThread(d, a)
        continue
      }
      const r = sys.runAtomic(a.ctxName, 'hardirq', () => a.handler!(irq, a.dev_id))
      const v = typeof r === 'number' ? r : IRQ_NONE
      if (v !== IRQ_NONE && v !== IRQ_HANDLED && v !== IRQ_WAKE_THREAD) {
        sys.logger.warn({ irq }, `irq event ${irq}: bogus return value ${String(r)}`)
      }
      if (v === IRQ_WAKE_THREAD) {
        if (a.thread_fn === null) {
          if (!a.warnedNoThread) sys.logger.warn({ irq }, `IRQ ${irq} device ${a.name} returned IRQ_WAKE_THREAD but no thread function available.`)
          a.warnedNoThread = true
        } else this.#wakeThread(d, a)
      }
      ret |= v === IRQ_WAKE_THREAD ? IRQ_HANDLED : v
    }
    this.#noteInterrupt(d, ret)
    sys.cpuWork(sys.costs.irqExitNs)
  }

  #wakeThread(d: IrqDesc, a: IrqAction): void {
    if ((a.flags & IRQF_ONESHOT) !== 0) {
      d.oneshotMasked = true
      this.#updateMask(d)
    }
    if (a.threadRunning) {
      a.threadWanted = true
      return
    }
    a.threadRunning = true
    const sys = this.#sys
    sys.spawnTask(`irq/${d.irq}-${a.name}`, async () => {
      try {
        do {
          a.threadWanted = false
          await a.thread_fn!(d.irq, a.dev_id)
        } while (a.threadWanted)
      } finally {
        a.threadRunning = false
        if (d.actions.every((x) => !x.threadRunning)) {
          d.oneshotMasked = false
          this.#updateMask(d)
          for (const w of d.idle) sys.sched.wake(w)
        }
      }
    })
  }

  /** note_interrupt: unhandled accounting, "nobody cared", and storm protection. */
  #noteInterrupt(d: IrqDesc, ret: number): void {
    const sys = this.#sys
    const threshold = sys.options.irqUnhandledThreshold
    // Linux looks at windows of 100,000 interrupts and trips above 99,900 unhandled ones;
    // a lower threshold (for tests) scales the window with it.
    const windowSize = Math.ceil((threshold * 100_000) / 99_900)
    if (ret === IRQ_NONE) {
      const now = sys.machine.clock.now
      if (now - d.lastUnhandled > 100e6) d.unhandled = 1
      else d.unhandled++
      d.lastUnhandled = now
    }
    // A storm: the handler claims the interrupt but the line is pending again at once, over and
    // over (a level line whose cause is never cleared). Linux would livelock; dmalab disables it.
    if (ret !== IRQ_NONE && this.#intc.nextPending() === d.irq) this.#streak++
    else this.#streak = 0
    const storm = this.#streak >= STORM_LIMIT
    if (d.count % windowSize === 0 || storm) {
      if (d.unhandled > threshold || storm) {
        const handlers = d.actions.map((a) => `  ${a.name}`).join('\n')
        sys.report({
          kind: 'irq-unhandled',
          message: storm
            ? `irq ${d.irq}: interrupt storm: raised ${this.#streak} times in a row although the handler returns IRQ_HANDLED (it does not clear the device's interrupt cause)\nhandlers:\n${handlers}\nDisabling IRQ #${d.irq}`
            : `irq ${d.irq}: nobody cared (try booting with the "irqpoll" option)\nhandlers:\n${handlers}\nDisabling IRQ #${d.irq}`,
          details: { irq: d.irq, unhandled: d.unhandled, count: d.count },
        })
        d.spuriousDisabled = true
        d.depth++
        this.#updateMask(d)
        this.#streak = 0
      }
      if (!storm) d.unhandled = 0
    }
  }

  // ------------------------------------------------------------------ API bodies

  request(t: Task, fn: string, irq: number, handler: IrqHandler | null, thread_fn: IrqThreadFn | null, flags: number, name: string, dev_id: unknown): number {
    const sys = this.#sys
    if (irq === 2 ** 31) return -ENOTCONN
    if (typeof irq !== 'number' || !this.valid(irq)) return -EINVAL
    if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0) badArg(t, fn, 'irqflags', `must be IRQF_* flags, got ${String(flags)}`)
    if (handler !== null && typeof handler !== 'function') badArg(t, fn, 'handler', 'must be a function or null')
    if (thread_fn !== null && typeof thread_fn !== 'function') badArg(t, fn, 'thread_fn', 'must be a function or null')
    if ((flags & IRQF_SHARED) !== 0 && (dev_id === null || dev_id === undefined)) return -EINVAL
    if (handler === null && thread_fn === null) return -EINVAL
    if (handler === null && (flags & IRQF_ONESHOT) === 0) {
      sys.logger.error({ irq }, `Threaded irq requested with handler=NULL and !ONESHOT for ${name} (irq ${irq})`)
      return -EINVAL
    }
    const d = this.desc(irq)
    const old = d.actions[0]
    if (old !== undefined) {
      const shareable = (old.flags & flags & IRQF_SHARED) !== 0 && ((old.flags ^ flags) & IRQF_ONESHOT) === 0 && irq < InterruptController.MSI_BASE
      if (!shareable) {
        sys.logger.error({ irq }, `Flags mismatch irq ${irq}. ${hex8(flags)} (${name}) vs. ${hex8(old.flags)} (${old.name})`)
        return -EBUSY
      }
    }
    d.actions = [...d.actions, { handler, thread_fn, flags, name, ctxName: `irq/${irq}-${name}`, dev_id, owner: t.device, threadWanted: false, threadRunning: false, warnedNoThread: false }]
    if (d.actions.length === 1) {
      d.count = 0
      d.unhandled = 0
      d.spuriousDisabled = false
      d.depth = (flags & IRQF_NO_AUTOEN) !== 0 ? 1 : 0
    }
    this.#updateMask(d)
    return 0
  }

  /** Removes the action with dev_id; returns its name, or null (with Linux's warning) if none. */
  remove(irq: number, dev_id: unknown): string | null {
    const d = this.#descs.get(irq)
    const i = d?.actions.findIndex((a) => a.dev_id === dev_id) ?? -1
    if (d === undefined || i < 0) {
      this.#sys.logger.warn({ irq }, `Trying to free already-free IRQ ${irq}`)
      return null
    }
    const a = d.actions[i]!
    d.actions = d.actions.filter((_, k) => k !== i)
    this.#updateMask(d)
    return a.name
  }

  async synchronize(t: Task, irq: number): Promise<void> {
    const d = this.#descs.get(irq)
    if (d === undefined) return
    while (d.actions.some((a) => a.threadRunning)) {
      d.idle.add(t)
      try {
        await this.#sys.sched.block(t)
      } finally {
        d.idle.delete(t)
      }
    }
  }

  disable(irq: number): void {
    const d = this.desc(irq)
    d.depth++
    this.#updateMask(d)
  }

  enable(irq: number): void {
    const d = this.desc(irq)
    if (d.depth === 0) {
      this.#sys.logger.warn({ irq }, `Unbalanced enable for IRQ ${irq}`)
      return
    }
    d.depth--
    this.#updateMask(d)
  }

  /** Actions still requested by a device's driver (for the leak report at unbind). */
  heldBy(dev: Device): { irq: number; name: string }[] {
    const out: { irq: number; name: string }[] = []
    for (const d of this.#descs.values()) for (const a of d.actions) if (a.owner === dev) out.push({ irq: d.irq, name: a.name })
    return out
  }

  /** Unhandled and total counts of a line (for tests and /proc/interrupts-like views). */
  stats(irq: number): { count: number; unhandled: number; disabled: boolean; depth: number } {
    const d = this.desc(irq)
    return { count: d.count, unhandled: d.unhandled, disabled: d.spuriousDisabled, depth: d.depth }
  }
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0')

function core(t: Task): IrqCore {
  return (t.sys as System).irq
}

/** Registers handler for irq; 0 or -errno (-EINVAL, -EBUSY on a flags mismatch of a shared line). */
export function request_irq(irq: number, handler: IrqHandler, flags: number, name: string, dev_id: unknown): number {
  const t = current('request_irq')
  const rc = core(t).request(t, 'request_irq', irq, handler, null, flags, name, dev_id)
  deliverNow(t)
  return rc
}

/** A line just became deliverable: a pending interrupt arrives now, not at the next kernel call. */
function deliverNow(t: Task): void {
  ;(t.sys as System).kernelCall(t)
}

/** Registers a hard handler and a thread function (process context, may sleep). */
export function request_threaded_irq(irq: number, handler: IrqHandler | null, thread_fn: IrqThreadFn | null, flags: number, name: string, dev_id: unknown): number {
  const t = current('request_threaded_irq')
  const rc = core(t).request(t, 'request_threaded_irq', irq, handler, thread_fn, flags, name, dev_id)
  deliverNow(t)
  return rc
}

/** Managed request_irq: freed when the device is unbound. */
export function devm_request_irq(dev: Device, irq: number, handler: IrqHandler, flags: number, name: string, dev_id: unknown): number {
  const t = current('devm_request_irq')
  const rc = core(t).request(t, 'devm_request_irq', irq, handler, null, flags, name, dev_id)
  deliverNow(t)
  if (rc === 0) dev.devres.push({ what: `devm_request_irq(${irq})`, release: () => void core(t).remove(irq, dev_id) })
  return rc
}

/** Removes the handler registered with dev_id and waits for its threads; returns its name or null. */
export async function free_irq(irq: number, dev_id: unknown): Promise<string | null> {
  const t = current('free_irq')
  if (t.context === 'hardirq') {
    ;(t.sys as System).logger.warn({ irq }, `Trying to free IRQ ${irq} from IRQ context!`)
  }
  mightSleep(t, 'free_irq')
  const name = core(t).remove(irq, dev_id)
  if (!t.atomic) await core(t).synchronize(t, irq)
  return name
}

/** Masks the line without waiting (callable from any context); nests. */
export function disable_irq_nosync(irq: number): void {
  core(current('disable_irq_nosync')).disable(irq)
}

/** Masks the line and waits for running handlers and threads. */
export async function disable_irq(irq: number): Promise<void> {
  const t = current('disable_irq')
  core(t).disable(irq)
  if (mightSleep(t, 'disable_irq')) await core(t).synchronize(t, irq)
}

/** Undoes one disable_irq. */
export function enable_irq(irq: number): void {
  const t = current('enable_irq')
  core(t).enable(irq)
  deliverNow(t)
}

/** Waits for running handlers and threads of irq to finish. */
export async function synchronize_irq(irq: number): Promise<void> {
  const t = current('synchronize_irq')
  if (mightSleep(t, 'synchronize_irq')) await core(t).synchronize(t, irq)
}
