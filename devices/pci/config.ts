/**
 * A function's 256-byte configuration space with per-byte write masks, and the type 0 header a
 * dmalab function presents in it.
 *
 * Modelled on QEMU's PCIDevice config handling (hw/pci/pci.c: `config`, `wmask`, `w1cmask` and
 * `pci_default_write_config`): each byte has a mask of the bits software may write and a mask of
 * the bits that are write-1-to-clear; everything else is read-only. Accesses are little-endian
 * and may be 1, 2 or 4 bytes at any offset inside the space, as Linux's `pci_read_config_*` can
 * issue them; the function above reacts to what changed (command register, BARs, capabilities).
 */

import * as R from './regs.js'

const { PCI_CFG_SPACE_SIZE } = R

/** Offset of the MSI-X capability in configuration space. */
export const MSIX_CAP_OFFSET = 0x40

/** What the type 0 header describes. BAR i of `bars` is a 64-bit BAR at PCI_BASE_ADDRESS_{2i}. */
export interface HeaderSpec {
  readonly vendor: number
  readonly device: number
  readonly classCode: number
  readonly revision: number
  readonly barSizes: readonly number[]
  readonly intxPin: number
  readonly msix: { readonly vectors: number; readonly tableOffset: number; readonly pbaOffset: number } | null
}

const isPow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0

/** Checks a header description; throws PciConfigError naming the field. */
export function checkHeader(owner: string, h: HeaderSpec): void {
  const bad = (what: string): never => {
    throw new PciConfigError(`PCI function '${owner}': ${what}`)
  }
  for (const [k, max] of [['vendor', 0xffff], ['device', 0xffff], ['classCode', 0xff_ffff], ['revision', 0xff]] as const) {
    const v = h[k]
    if (!Number.isInteger(v) || v < 0 || v > max) bad(`${k} must be an integer from 0 to 0x${max.toString(16)}`)
  }
  if (h.barSizes.length < 1 || h.barSizes.length > R.PCI_STD_NUM_BARS / 2) bad('bars must list 1 to 3 BARs (64-bit BARs)')
  for (const size of h.barSizes) {
    if (!isPow2(size) || size < 4096 || size > 2 ** 30) bad(`BAR size ${size} must be a power of two from 4096 to 1 GiB`)
  }
  if (![0, 1, 2, 3, 4].includes(h.intxPin)) bad(`intxPin must be 0..4, got ${h.intxPin}`)
}

/** A configuration access outside the 256-byte space, or of a bad width. */
export class PciConfigError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'PciConfigError'
  }
}

export class ConfigSpace {
  readonly bytes = new Uint8Array(PCI_CFG_SPACE_SIZE)
  /** Bits software may write, per byte. */
  readonly wmask = new Uint8Array(PCI_CFG_SPACE_SIZE)
  /** Bits that are write-1-to-clear, per byte. */
  readonly w1cmask = new Uint8Array(PCI_CFG_SPACE_SIZE)
  readonly #owner: string

  constructor(owner: string) {
    this.#owner = owner
  }

  /** Checks a guest access and returns nothing; throws PciConfigError naming the device. */
  check(off: number, size: number): void {
    if (size !== 1 && size !== 2 && size !== 4) {
      throw new PciConfigError(`${this.#owner}: config access size must be 1, 2 or 4, got ${size}`)
    }
    if (!Number.isInteger(off) || off < 0 || off + size > PCI_CFG_SPACE_SIZE) {
      throw new PciConfigError(`${this.#owner}: config offset ${off} (+${size}) is outside the ${PCI_CFG_SPACE_SIZE}-byte space`)
    }
  }

  /** Little-endian read of size bytes (no side effects). */
  read(off: number, size: number): number {
    let v = 0
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.bytes[off + i]!
    return v
  }

  /** A software write: honours wmask and w1cmask. Returns whether any byte changed. */
  write(off: number, size: number, value: number): boolean {
    let changed = false
    for (let i = 0; i < size; i++) {
      const b = (value >>> (8 * i)) & 0xff
      const a = off + i
      const old = this.bytes[a]!
      const wm = this.wmask[a]!
      let next = (old & ~wm) | (b & wm)
      next &= ~(b & this.w1cmask[a]!)
      if (next !== old) {
        this.bytes[a] = next & 0xff
        changed = true
      }
    }
    return changed
  }

  /** Device-side setters (no masks). */
  set8(off: number, v: number): void {
    this.bytes[off] = v & 0xff
  }

  set16(off: number, v: number): void {
    this.bytes[off] = v & 0xff
    this.bytes[off + 1] = (v >>> 8) & 0xff
  }

  set32(off: number, v: number): void {
    for (let i = 0; i < 4; i++) this.bytes[off + i] = (v >>> (8 * i)) & 0xff
  }

  get16(off: number): number {
    return this.bytes[off]! | (this.bytes[off + 1]! << 8)
  }

  get32(off: number): number {
    return this.read(off, 4)
  }

  /** Sets the write mask of a 16- or 32-bit field. */
  setWmask(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.wmask[off + i] = (mask >>> (8 * i)) & 0xff
  }

  setW1cmask(off: number, size: number, mask: number): void {
    for (let i = 0; i < size; i++) this.w1cmask[off + i] = (mask >>> (8 * i)) & 0xff
  }

  /** Fills in the type 0 header (the state after reset; BARs unassigned, interrupt line 0xff). */
  initHeader(h: HeaderSpec): void {
    this.bytes.fill(0)
    this.wmask.fill(0)
    this.w1cmask.fill(0)
    this.set16(R.PCI_VENDOR_ID, h.vendor)
    this.set16(R.PCI_DEVICE_ID, h.device)
    const cmd = R.PCI_COMMAND_MEMORY | R.PCI_COMMAND_MASTER | R.PCI_COMMAND_PARITY | R.PCI_COMMAND_SERR | R.PCI_COMMAND_INTX_DISABLE
    this.setWmask(R.PCI_COMMAND, 2, cmd)
    this.set32(R.PCI_CLASS_REVISION, ((h.classCode << 8) | h.revision) >>> 0)
    this.set8(R.PCI_HEADER_TYPE, R.PCI_HEADER_TYPE_NORMAL)
    this.setWmask(R.PCI_CACHE_LINE_SIZE, 2, 0xffff) // cache line size, latency timer
    h.barSizes.forEach((size, i) => {
      const reg = R.PCI_BASE_ADDRESS_0 + 8 * i
      this.set32(reg, R.PCI_BASE_ADDRESS_MEM_TYPE_64)
      this.setWmask(reg, 4, ~(size - 1) & R.PCI_BASE_ADDRESS_MEM_MASK)
      this.setWmask(reg + 4, 4, 0xffff_ffff)
    })
    this.set16(R.PCI_SUBSYSTEM_VENDOR_ID, h.vendor)
    this.set16(R.PCI_SUBSYSTEM_ID, h.device)
    this.set8(R.PCI_INTERRUPT_LINE, 0xff)
    this.setWmask(R.PCI_INTERRUPT_LINE, 1, 0xff)
    this.set8(R.PCI_INTERRUPT_PIN, h.intxPin)
    const m = h.msix
    if (m === null) return
    const cap = MSIX_CAP_OFFSET
    this.set16(R.PCI_STATUS, R.PCI_STATUS_CAP_LIST)
    this.set8(R.PCI_CAPABILITY_LIST, cap)
    this.set8(cap + R.PCI_CAP_LIST_ID, R.PCI_CAP_ID_MSIX)
    this.set8(cap + R.PCI_CAP_LIST_NEXT, 0)
    this.set16(cap + R.PCI_MSIX_FLAGS, (m.vectors - 1) & R.PCI_MSIX_FLAGS_QSIZE)
    this.setWmask(cap + R.PCI_MSIX_FLAGS, 2, R.PCI_MSIX_FLAGS_ENABLE | R.PCI_MSIX_FLAGS_MASKALL)
    this.set32(cap + R.PCI_MSIX_TABLE, m.tableOffset) // BIR 0
    this.set32(cap + R.PCI_MSIX_PBA, m.pbaOffset) // BIR 0
  }

  /** Programs the 64-bit memory BAR whose low half is BAR register `bar`. */
  setBar64(bar: number, base: number): void {
    const reg = R.PCI_BASE_ADDRESS_0 + 4 * bar
    this.set32(reg, ((base >>> 0) & R.PCI_BASE_ADDRESS_MEM_MASK) | R.PCI_BASE_ADDRESS_MEM_TYPE_64)
    this.set32(reg + 4, Math.floor(base / 0x1_0000_0000))
  }

  /** The address the 64-bit BAR at register `bar` decodes. */
  bar64(bar: number): number {
    const reg = R.PCI_BASE_ADDRESS_0 + 4 * bar
    return ((this.get32(reg) & R.PCI_BASE_ADDRESS_MEM_MASK) >>> 0) + this.get32(reg + 4) * 0x1_0000_0000
  }

  /** Whether an access [off, off+size) touches [start, start+len). */
  static touches(off: number, size: number, start: number, len: number): boolean {
    return off < start + len && start < off + size
  }
}
