/**
 * A device register file: named registers at offsets in a BAR, with reset values, read-only and
 * write-1-to-clear semantics and per-register read and write hooks.
 *
 * Modelled on QEMU's hw/registerfields.h + hw/register.c (`RegisterAccessInfo`: reset, ro, w1c,
 * pre_write/post_write/post_read hooks) and on how PCI devices decode sub-word accesses (byte
 * enables): an access may cover part of a register or several registers; each register it touches
 * sees one read (its hook runs once) or one merged write of the bytes written. Offsets that no
 * register decodes read as zero and ignore writes, as reserved space does on most devices.
 * Registers hold unsigned values below 2^53 (8-byte registers included).
 */

export interface RegisterSpec {
  readonly name: string
  readonly offset: number
  /** Width in bytes (default 4). */
  readonly size?: 1 | 2 | 4 | 8
  /** Value after reset (default 0). */
  readonly reset?: number
  /** Writes are ignored (the write hook does not run). */
  readonly readOnly?: boolean
  /** Writing 1 to a writable bit clears it; writing 0 leaves it. */
  readonly w1c?: boolean
  /** Bits software can change (default: all); the others keep their value. */
  readonly writeMask?: number
  /** Supplies the value of a read (instead of the stored value). */
  readonly read?: () => number
  /** Runs after a write is stored: value is the new stored value, old the previous one. */
  readonly write?: (value: number, old: number) => void
}

/** A register map that cannot be built (overlap, duplicate name, bad width). */
export class RegisterFileError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'RegisterFileError'
  }
}

interface Reg {
  readonly spec: RegisterSpec
  readonly offset: number
  readonly size: number
  readonly max: number
  readonly mask: number
  value: number
}

/** 2^(8i), by byte index i: a table, since 2 ** x with a variable x is a pow() call (70-90 ns here). */
const BYTE_WEIGHT = [1, 2 ** 8, 2 ** 16, 2 ** 24, 2 ** 32, 2 ** 40, 2 ** 48, 2 ** 56] as const
const pow2 = (bits: number): number => BYTE_WEIGHT[bits / 8]!
const TWO32 = 0x1_0000_0000

/** Byte i (0 = least significant) of a non-negative integer below 2^53. */
function byteOf(v: number, i: number): number {
  return i < 4 ? (v >>> (8 * i)) & 0xff : Math.floor(v / pow2(8 * i)) & 0xff
}

/** The high 32 bits of a non-negative integer below 2^64. */
const hi32 = (v: number): number => Math.floor(v / TWO32) >>> 0

export class RegisterFile {
  readonly name: string
  readonly #byName = new Map<string, Reg>()
  readonly #byOffset = new Map<number, Reg>()
  /** The register covering each decoded byte offset. */
  readonly #byByte = new Map<number, Reg>()

  constructor(name: string, specs: readonly RegisterSpec[]) {
    this.name = name
    for (const spec of specs) {
      const size = spec.size ?? 4
      if (![1, 2, 4, 8].includes(size)) throw new RegisterFileError(`${name}.${spec.name}: size must be 1, 2, 4 or 8`)
      if (!Number.isInteger(spec.offset) || spec.offset < 0 || spec.offset % size !== 0) {
        throw new RegisterFileError(`${name}.${spec.name}: offset ${spec.offset} must be a non-negative multiple of its size`)
      }
      if (this.#byName.has(spec.name)) throw new RegisterFileError(`${name}: duplicate register ${spec.name}`)
      const max = size === 8 ? Number.MAX_SAFE_INTEGER : pow2(8 * size) - 1
      const reg: Reg = { spec, offset: spec.offset, size, max, mask: spec.writeMask ?? max, value: 0 }
      for (let b = spec.offset; b < spec.offset + size; b++) {
        const other = this.#byByte.get(b)
        if (other !== undefined) throw new RegisterFileError(`${name}: ${spec.name} overlaps ${other.spec.name}`)
        this.#byByte.set(b, reg)
      }
      this.#byName.set(spec.name, reg)
      this.#byOffset.set(spec.offset, reg)
      reg.value = this.#clamp(reg, spec.reset ?? 0)
    }
  }

  /** Reads size bytes at off (little-endian), running each touched register's read hook once. */
  read(off: number, size: number): number {
    const exact = this.#byOffset.get(off)
    if (exact !== undefined && exact.size === size) return this.#readReg(exact)
    let v = 0
    let last: Reg | undefined
    let lastValue = 0
    for (let i = 0; i < size; i++) {
      const reg = this.#byByte.get(off + i)
      if (reg === undefined) continue
      if (reg !== last) {
        last = reg
        lastValue = this.#readReg(reg)
      }
      v += byteOf(lastValue, off + i - reg.offset) * pow2(8 * i)
    }
    return v
  }

  /** Writes size bytes of value at off; each touched register merges the bytes written. */
  write(off: number, size: number, value: number): void {
    const exact = this.#byOffset.get(off)
    if (exact !== undefined && exact.size === size) {
      const v = this.#clamp(exact, value)
      this.#writeReg(exact, v >>> 0, hi32(v), 0xffff_ffff, 0xffff_ffff)
      return
    }
    let i = 0
    while (i < size) {
      const reg = this.#byByte.get(off + i)
      if (reg === undefined) {
        i++
        continue
      }
      // Gather the bytes of this access that fall in this register, as 32-bit halves of the
      // value and of the byte enables.
      const bits = [0, 0]
      const enables = [0, 0]
      while (i < size && this.#byByte.get(off + i) === reg) {
        const lane = off + i - reg.offset
        const half = lane >> 2
        const shift = 8 * (lane & 3)
        bits[half] = (bits[half]! | (byteOf(value, i) << shift)) >>> 0
        enables[half] = (enables[half]! | (0xff << shift)) >>> 0
        i++
      }
      this.#writeReg(reg, bits[0]!, bits[1]!, enables[0]!, enables[1]!)
    }
  }

  /** The stored value of a register (no hooks). */
  get(name: string): number {
    return this.#reg(name).value
  }

  /** Sets a register's stored value from the device side (no hooks, no masks). */
  set(name: string, value: number): void {
    const reg = this.#reg(name)
    reg.value = this.#clamp(reg, value)
  }

  /** Back to the reset values (no hooks). */
  reset(): void {
    for (const reg of this.#byName.values()) reg.value = this.#clamp(reg, reg.spec.reset ?? 0)
  }

  has(name: string): boolean {
    return this.#byName.has(name)
  }

  #readReg(reg: Reg): number {
    const hook = reg.spec.read
    return hook === undefined ? reg.value : this.#clamp(reg, hook())
  }

  /** The written bits and the byte enables, as 32-bit halves placed at the register's lanes. */
  #writeReg(reg: Reg, bitsLo: number, bitsHi: number, enLo: number, enHi: number): void {
    const spec = reg.spec
    if (spec.readOnly === true) return
    const old = reg.value
    const oldLo = old >>> 0
    const oldHi = hi32(old)
    const wLo = (reg.mask >>> 0) & enLo
    const wHi = hi32(reg.mask) & enHi
    let lo: number
    let hi: number
    if (spec.w1c === true) {
      lo = oldLo & ~(wLo & bitsLo)
      hi = oldHi & ~(wHi & bitsHi)
    } else {
      lo = (oldLo & ~wLo) | (bitsLo & wLo)
      hi = (oldHi & ~wHi) | (bitsHi & wHi)
    }
    const next = this.#clamp(reg, (hi >>> 0) * TWO32 + (lo >>> 0))
    reg.value = next
    spec.write?.(next, old)
  }

  #clamp(reg: Reg, v: number): number {
    if (!Number.isFinite(v)) return 0
    v = Math.trunc(v)
    if (reg.size === 4) return v >>> 0
    if (reg.size < 4) return v & reg.max
    return v < 0 ? 0 : Math.min(v, reg.max)
  }
  #reg(name: string): Reg {
    const reg = this.#byName.get(name)
    if (reg === undefined) throw new RegisterFileError(`${this.name}: no register named ${name}`)
    return reg
  }
}
