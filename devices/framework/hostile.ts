/**
 * Malicious-device mode: a seeded mutator that rewrites what a device writes back to the host —
 * lengths, ring indices, status, command ids, phase bits — and, for a double fetch, rewrites a field
 * again after the driver has read it once, as PeriScope (NDSS 2019) does to real Wi-Fi firmware's
 * DMA buffers and as a compromised device or a Thunderbolt attacker can.
 *
 * A device describes each write-back record it produces as fields (`HostileField`: name, offset,
 * size, kind). Before it DMA-writes a record it calls `mutate(record, fields)`: with probability
 * `rate` one field, chosen uniformly, gets a hostile value — 0, all ones, one past the value, a
 * flipped bit, a random value, or for a phase or status bit the opposite bit. Fields marked
 * `doubleFetch` can also be armed (probability `doubleFetchRate`) for a second rewrite: the
 * machine's DoubleFetchWatch rewrites them right after the CPU first loads them, and the kernel
 * reports a `double-fetch` when the driver loads them again. Everything draws from the device's own
 * Rng, forked from the machine's at attach only when the mode is on: the same seed gives the same
 * attack, and a system without hostile devices keeps its trace.
 */

import type { Rng } from '../machine/rng.js'

export type HostileFieldKind = 'length' | 'index' | 'status' | 'cid' | 'phase' | 'address'

export const HOSTILE_FIELD_KINDS: readonly HostileFieldKind[] = ['length', 'index', 'status', 'cid', 'phase', 'address']

/** One field of a write-back record. */
export interface HostileField {
  readonly name: string
  /** Byte offset in the record, and size in bytes (little-endian). */
  readonly off: number
  readonly size: 1 | 2 | 4
  readonly kind: HostileFieldKind
  /** The bits of the field that belong to it (a phase bit shares a word with the status). */
  readonly mask?: number
  /** May be rewritten between two driver reads (a double fetch). */
  readonly doubleFetch?: boolean
}

/** The `hostile` option of a device. */
export interface HostileOptions {
  /** Probability that a write-back record gets one hostile field (0..1; default 0.1). */
  readonly rate?: number
  /** Probability that a record's double-fetch field is rewritten after the driver's first read (0..1; default 0). */
  readonly doubleFetchRate?: number
  /** Only these kinds of field are mutated (default: every kind). */
  readonly kinds?: readonly HostileFieldKind[]
}

/** A bad `hostile` option; the message names the field. */
export class HostileOptionError extends TypeError {
  constructor(message: string) {
    super(message)
    this.name = 'HostileOptionError'
  }
}

/** Checks a `hostile` option; returns it with defaults filled in. */
export function resolveHostile(device: string, o: unknown): Required<HostileOptions> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new HostileOptionError(`${device}: hostile must be an object { rate?, doubleFetchRate?, kinds? }, got ${o === null ? 'null' : typeof o}`)
  const r = o as Record<string, unknown>
  for (const k of Object.keys(r)) if (!['rate', 'doubleFetchRate', 'kinds'].includes(k)) throw new HostileOptionError(`${device}: hostile.${k} is not an option (rate, doubleFetchRate, kinds)`)
  const prob = (k: string, dflt: number): number => {
    const v = r[k] ?? dflt
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new HostileOptionError(`${device}: hostile.${k} must be a probability from 0 to 1, got ${JSON.stringify(v)}`)
    return v
  }
  const kinds = r['kinds'] ?? HOSTILE_FIELD_KINDS
  if (!Array.isArray(kinds) || kinds.length === 0 || !kinds.every((k) => HOSTILE_FIELD_KINDS.includes(k as HostileFieldKind))) {
    throw new HostileOptionError(`${device}: hostile.kinds must be a non-empty array of ${HOSTILE_FIELD_KINDS.join(', ')}, got ${JSON.stringify(kinds)}`)
  }
  return { rate: prob('rate', 0.1), doubleFetchRate: prob('doubleFetchRate', 0), kinds: [...(kinds as HostileFieldKind[])] }
}

const get = (b: Uint8Array, off: number, size: number): number => {
  let v = 0
  for (let i = size - 1; i >= 0; i--) v = v * 256 + b[off + i]!
  return v
}
const put = (b: Uint8Array, off: number, size: number, v: number): void => {
  for (let i = 0; i < size; i++) {
    b[off + i] = v & 0xff
    v = Math.floor(v / 256)
  }
}

export interface HostileStats {
  /** Write-back records offered to the mutator. */
  records: number
  /** Records that got a hostile field. */
  mutated: number
  /** Fields armed for a double fetch. */
  doubleFetchArmed: number
  /** Mutations per field name. */
  readonly byField: Record<string, number>
}

export class HostileMutator {
  readonly options: Required<HostileOptions>
  readonly stats: HostileStats = { records: 0, mutated: 0, doubleFetchArmed: 0, byField: {} }
  /** While set, records pass unchanged (e.g. while the driver probes); no random number is drawn. */
  paused = false
  readonly #rng: Rng

  constructor(rng: Rng, options: Required<HostileOptions>) {
    this.#rng = rng
    this.options = options
  }

  /** A hostile value for field f whose current value is v. */
  value(f: HostileField, v: number): number {
    const bits = f.size * 8
    const all = f.mask ?? (bits === 32 ? 0xffff_ffff : (1 << bits) - 1)
    const field = v & all
    if (f.kind === 'phase') return ((v & ~all) | (~field & all)) >>> 0 // the opposite phase
    const rng = this.#rng
    let n: number
    switch (rng.int(6)) {
      case 0:
        n = 0
        break
      case 1:
        n = all
        break
      case 2:
        n = field + 1
        break
      case 3:
        n = field ^ (1 << rng.int(bits))
        break
      case 4:
        n = field - 1
        break
      default:
        n = rng.next()
    }
    n &= all
    if (n === field) n = (field ^ (all & -all)) & all // always a change: flip the lowest bit of the field
    return ((v & ~all) | n) >>> 0
  }

  /** Maybe rewrites one field of record[off..] before the device writes it; returns the field, or null. */
  mutate(record: Uint8Array, fields: readonly HostileField[], off = 0): HostileField | null {
    if (this.paused) return null
    this.stats.records++
    const rng = this.#rng
    if (!rng.chance(this.options.rate)) return null
    const eligible = fields.filter((f) => this.options.kinds.includes(f.kind))
    if (eligible.length === 0) return null
    const f = eligible[rng.int(eligible.length)]!
    put(record, off + f.off, f.size, this.value(f, get(record, off + f.off, f.size)))
    this.stats.mutated++
    this.stats.byField[f.name] = (this.stats.byField[f.name] ?? 0) + 1
    return f
  }

  /** Whether to arm a double fetch of one of the record's fields; returns the field, or null. */
  pickDoubleFetch(fields: readonly HostileField[]): HostileField | null {
    if (this.paused || this.options.doubleFetchRate === 0) return null
    const eligible = fields.filter((f) => f.doubleFetch === true)
    if (eligible.length === 0 || !this.#rng.chance(this.options.doubleFetchRate)) return null
    this.stats.doubleFetchArmed++
    return eligible[this.#rng.int(eligible.length)]!
  }

  /** The field's value in record[off..] after a hostile rewrite (for a double fetch). */
  rewritten(record: Uint8Array, f: HostileField, off = 0): Uint8Array {
    const out = record.slice(off + f.off, off + f.off + f.size)
    put(out, 0, f.size, this.value(f, get(out, 0, f.size)))
    return out
  }
}

/** One field armed for a double fetch, by physical address. */
interface Armed {
  readonly pa: number
  readonly len: number
  readonly device: string
  readonly field: string
  /** Does the device's second write (returns false if it could not). */
  readonly rewrite: () => boolean
  state: 'armed' | 'scheduled' | 'rewritten'
}

/** A second CPU load of a field the device changed after the first one. */
export interface DoubleFetchHit {
  readonly pa: number
  readonly device: string
  readonly field: string
}

/**
 * The machine's double-fetch watch: fields hostile devices armed. The kernel calls `cpuLoad` and
 * `cpuStore` for every CPU access while any field is armed (`active`). The first load of a field
 * schedules the device's rewrite at once (it lands before the driver's next kernel call); a load
 * after the rewrite is a hit. A CPU store to the field, or a new arming at its address, ends it.
 */
export class DoubleFetchWatch {
  readonly #armed = new Map<number, Armed>()
  readonly #schedule: (fn: () => void) => void
  #rewriting = false
  #untrustedDevice = ''
  #untrustedAt = -1

  constructor(schedule: (fn: () => void) => void) {
    this.#schedule = schedule
  }

  get active(): boolean {
    return this.#armed.size > 0
  }

  /** A double-fetch rewrite is being written now (it is not an ordered write-back: ordering checks skip it). */
  get rewriting(): boolean {
    return this.#rewriting
  }

  /** A hostile device mutated a record at virtual time `now`: its writes at that instant are garbage, not an ordered protocol. */
  untrusted(device: string, now: number): void {
    this.#untrustedDevice = device
    this.#untrustedAt = now
  }

  /** Whether device's writes at `now` belong to a mutated record (the read-order check skips them). */
  isUntrusted(device: string, now: number): boolean {
    return this.#rewriting || (now === this.#untrustedAt && device === this.#untrustedDevice)
  }

  arm(pa: number, len: number, device: string, field: string, rewrite: () => boolean): void {
    this.#armed.set(pa, { pa, len, device, field, rewrite, state: 'armed' })
  }

  /** A CPU load of [pa, pa+len): schedules rewrites of armed fields, returns a hit on a rewritten one. */
  cpuLoad(pa: number, len: number): DoubleFetchHit | null {
    for (const a of this.#armed.values()) {
      if (pa >= a.pa + a.len || pa + len <= a.pa) continue
      if (a.state === 'rewritten') {
        this.#armed.delete(a.pa)
        return { pa: a.pa, device: a.device, field: a.field }
      }
      if (a.state === 'armed') {
        a.state = 'scheduled'
        this.#schedule(() => {
          if (this.#armed.get(a.pa) !== a) return
          this.#rewriting = true
          try {
            if (a.rewrite()) a.state = 'rewritten'
            else this.#armed.delete(a.pa)
          } finally {
            this.#rewriting = false
          }
        })
      }
    }
    return null
  }

  /**
   * A device write to [pa, pa+len) (DmaPort calls it while any field is armed): a field the CPU has
   * read already gets a new, legitimate value (the next lap's write-back), which ends the watch.
   * Fields not read yet stay armed; the hostile rewrite itself does not count.
   */
  deviceWrite(pa: number, len: number): void {
    if (this.#rewriting) return
    for (const a of this.#armed.values()) if (a.state !== 'armed' && pa < a.pa + a.len && pa + len > a.pa) this.#armed.delete(a.pa)
  }

  /** A CPU store to [pa, pa+len): the driver took the field back. */
  cpuStore(pa: number, len: number): void {
    for (const a of this.#armed.values()) if (pa < a.pa + a.len && pa + len > a.pa) this.#armed.delete(a.pa)
  }

  /** Forgets a device's fields (reset, detach). */
  clear(device?: string): void {
    for (const a of [...this.#armed.values()]) if (device === undefined || a.device === device) this.#armed.delete(a.pa)
  }
}
