/**
 * The declarative fault injector every device consults: delay a completion, drop an interrupt or
 * raise a spurious one, fail a DMA, force an error status, write a corrupt length.
 *
 * Modelled on the fault-injection controllers of device emulators (openvmm's NVMe fault
 * controller, microsoft/openvmm#1801; QEMU's blkdebug rules with their `once`/`after`-style
 * triggers): a rule names a device and a kind of fault, skips the first `after` opportunities and
 * then fires on the next `count` ones. An "opportunity" is a point where a device asks whether a
 * fault of that kind applies (each interrupt it raises, each DMA helper call, each completion it
 * schedules); the device's datasheet says which points it offers. Rules are consulted in the order
 * they were added. Every rule that matches an opportunity counts it while it is still skipping;
 * the first rule that is past its skip count fires and uses up one of its `count`; a rule whose
 * count is used up is removed. No randomness: the same rules give the same faults.
 */

import type { Tracer } from './tracer.js'

export type FaultKind = 'delay-completion' | 'drop-irq' | 'spurious-irq' | 'fail-dma' | 'error-status' | 'corrupt-length'

export const FAULT_KINDS: readonly FaultKind[] = ['delay-completion', 'drop-irq', 'spurious-irq', 'fail-dma', 'error-status', 'corrupt-length']

export interface FaultRule {
  /** The device (PCI function name) the rule applies to. */
  readonly device: string
  readonly kind: FaultKind
  /** Opportunities to let pass before the rule fires (default 0). */
  readonly after?: number
  /** How many opportunities it fires on (default 1; Infinity: until removed). */
  readonly count?: number
  /** delay-completion: extra time; spurious-irq: time until the extra interrupt (ns). */
  readonly delayNs?: number
  /** error-status: the device-specific error code to report; corrupt-length: the length to write. */
  readonly status?: number
}

/** A bad fault rule; the message names the field. */
export class FaultRuleError extends TypeError {
  constructor(message: string) {
    super(message)
    this.name = 'FaultRuleError'
  }
}

interface ActiveRule {
  readonly rule: FaultRule
  skip: number
  left: number
}

export class FaultInjector {
  readonly #rules: ActiveRule[] = []
  readonly #tracer: Tracer | null
  /** Faults fired so far (device, kind), in order. */
  readonly fired: { readonly device: string; readonly kind: FaultKind; readonly time: number }[] = []

  constructor(tracer: Tracer | null = null) {
    this.#tracer = tracer
  }

  /** Adds a rule; returns it (pass it to remove()). */
  add(rule: FaultRule): FaultRule {
    if (typeof rule !== 'object' || rule === null) throw new FaultRuleError('fault rule must be an object')
    if (typeof rule.device !== 'string' || rule.device === '') throw new FaultRuleError('fault rule: device must be a non-empty string')
    if (!FAULT_KINDS.includes(rule.kind)) {
      throw new FaultRuleError(`fault rule: kind must be one of ${FAULT_KINDS.join(', ')}, got ${JSON.stringify(rule.kind)}`)
    }
    const after = rule.after ?? 0
    if (!Number.isInteger(after) || after < 0) throw new FaultRuleError(`fault rule: after must be a non-negative integer, got ${after}`)
    const count = rule.count ?? 1
    if (!(Number.isInteger(count) || count === Number.POSITIVE_INFINITY) || count < 1) {
      throw new FaultRuleError(`fault rule: count must be a positive integer or Infinity, got ${count}`)
    }
    if (rule.delayNs !== undefined && (!Number.isFinite(rule.delayNs) || rule.delayNs < 0)) {
      throw new FaultRuleError(`fault rule: delayNs must be a non-negative finite number, got ${rule.delayNs}`)
    }
    if (rule.status !== undefined && (!Number.isInteger(rule.status) || rule.status < 0 || rule.status > 0xffff_ffff)) {
      throw new FaultRuleError(`fault rule: status must be a 32-bit unsigned integer, got ${rule.status}`)
    }
    const frozen = Object.freeze({ ...rule })
    this.#rules.push({ rule: frozen, skip: after, left: count })
    return frozen
  }

  /** Removes a rule returned by add(); returns whether it was still active. */
  remove(rule: FaultRule): boolean {
    const i = this.#rules.findIndex((r) => r.rule === rule)
    if (i >= 0) this.#rules.splice(i, 1)
    return i >= 0
  }

  /** Removes every rule, or those of one device. */
  clear(device?: string): void {
    for (let i = this.#rules.length - 1; i >= 0; i--) {
      if (device === undefined || this.#rules[i]!.rule.device === device) this.#rules.splice(i, 1)
    }
  }

  /** The rules still active. */
  get rules(): readonly FaultRule[] {
    return this.#rules.map((r) => r.rule)
  }

  /**
   * One opportunity for a fault of this kind on this device: returns the rule that fires
   * (consumed) or null. `time` is the virtual time, for the trace.
   */
  take(device: string, kind: FaultKind, time = 0): FaultRule | null {
    if (this.#rules.length === 0) return null
    let fired: ActiveRule | null = null
    for (const r of this.#rules) {
      if (r.rule.kind !== kind || r.rule.device !== device) continue
      if (r.skip > 0) r.skip--
      else fired ??= r
    }
    if (fired === null) return null
    if (--fired.left <= 0) this.#rules.splice(this.#rules.indexOf(fired), 1)
    this.fired.push({ device, kind, time })
    const t = this.#tracer
    if (t !== null && t.listenerCount('fault') > 0) t.emit('fault', { time, device, kind })
    return fired.rule
  }
}
