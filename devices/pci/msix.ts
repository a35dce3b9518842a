/**
 * The MSI-X table and Pending Bit Array of a function, as they appear in a BAR.
 *
 * Modelled on PCI Express Base Specification §6.1.4 / §7.7.2 and QEMU's hw/pci/msix.c: the table
 * holds one 16-byte entry per vector (message address low/high, message data, vector control with
 * the per-vector mask bit, masked after reset); the PBA holds one pending bit per vector, set when
 * the function wants to signal a masked vector and cleared when the message is finally sent.
 * Here the message data is the machine's MSI hwirq (what the kernel programmed); the address is
 * kept for the driver to read back but does not route anything.
 */

import {
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
} from './regs.js'

/** The largest table PCI_MSIX_FLAGS_QSIZE can describe. */
export const MSIX_MAX_VECTORS = 2048

/** An MSI-X table that cannot be placed as asked. */
export class MsixError extends RangeError {
  constructor(message: string) {
    super(message)
    this.name = 'MsixError'
  }
}

export class MsixTable {
  readonly vectors: number
  /** Byte offset of the table in its BAR. */
  readonly tableOffset: number
  /** Byte offset of the PBA in its BAR. */
  readonly pbaOffset: number
  readonly #table: Uint8Array
  readonly #view: DataView
  readonly #pba: Uint8Array

  /** A table of `vectors` entries in a BAR of barSize bytes; offsets default to the upper half. */
  constructor(owner: string, vectors: number, barSize: number, tableOffset = barSize / 2, pbaOffset?: number) {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > MSIX_MAX_VECTORS) {
      throw new MsixError(`${owner}: msixVectors must be an integer from 1 to ${MSIX_MAX_VECTORS}, got ${vectors}`)
    }
    this.vectors = vectors
    this.tableOffset = tableOffset
    this.pbaOffset = pbaOffset ?? tableOffset + this.tableBytes
    const { pbaOffset: pba, tableBytes, pbaBytes } = this
    if (!Number.isInteger(tableOffset) || !Number.isInteger(pba) || tableOffset % 8 !== 0 || pba % 8 !== 0 || tableOffset < 0 || pba < 0) {
      throw new MsixError(`${owner}: MSI-X table and PBA offsets must be 8-byte aligned`)
    }
    if (tableOffset + tableBytes > barSize || pba + pbaBytes > barSize) throw new MsixError(`${owner}: MSI-X table and PBA must fit in BAR 0`)
    if (pba < tableOffset + tableBytes && tableOffset < pba + pbaBytes) throw new MsixError(`${owner}: MSI-X table and PBA overlap`)
    this.#table = new Uint8Array(vectors * PCI_MSIX_ENTRY_SIZE)
    this.#view = new DataView(this.#table.buffer)
    this.#pba = new Uint8Array(this.pbaBytes)
    this.reset()
  }

  get tableBytes(): number {
    return this.vectors * PCI_MSIX_ENTRY_SIZE
  }

  /** The PBA is an array of QWORDs. */
  get pbaBytes(): number {
    return Math.ceil(this.vectors / 64) * 8
  }

  /** Every vector masked, nothing programmed or pending (the state after reset). */
  reset(): void {
    this.#table.fill(0)
    this.#pba.fill(0)
    for (let v = 0; v < this.vectors; v++) this.#ctrlSet(v, PCI_MSIX_ENTRY_CTRL_MASKBIT)
  }

  inTable(off: number): boolean {
    return off >= this.tableOffset && off < this.tableOffset + this.tableBytes
  }

  inPba(off: number): boolean {
    return off >= this.pbaOffset && off < this.pbaOffset + this.pbaBytes
  }

  /** A read of size bytes at a BAR offset inside the table or the PBA. */
  read(off: number, size: number): number {
    const inTable = this.inTable(off)
    const bytes = inTable ? this.#table : this.#pba
    const base = inTable ? this.tableOffset : this.pbaOffset
    let v = 0
    for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[off - base + i] ?? 0)
    return v
  }

  /**
   * A write inside the table (the PBA is read-only). Returns the vectors whose mask bit went from
   * set to clear, so the caller can deliver what they had pending.
   */
  write(off: number, size: number, value: number): number[] {
    if (!this.inTable(off)) return []
    const rel = off - this.tableOffset
    const first = Math.floor(rel / PCI_MSIX_ENTRY_SIZE)
    const last = Math.floor((rel + size - 1) / PCI_MSIX_ENTRY_SIZE)
    const before: boolean[] = []
    for (let v = first; v <= last && v < this.vectors; v++) before.push(this.isMasked(v))
    for (let i = 0; i < size && rel + i < this.tableBytes; i++) this.#table[rel + i] = (value >>> (8 * i)) & 0xff
    const unmasked: number[] = []
    for (let v = first; v <= last && v < this.vectors; v++) {
      // Vector control: only the mask bit is implemented; the rest is reserved and reads 0.
      this.#ctrlSet(v, this.#ctrl(v) & PCI_MSIX_ENTRY_CTRL_MASKBIT)
      if (before[v - first] === true && !this.isMasked(v)) unmasked.push(v)
    }
    return unmasked
  }

  isMasked(vector: number): boolean {
    return (this.#ctrl(vector) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0
  }

  /** The message data: the MSI hwirq the kernel programmed. */
  data(vector: number): number {
    return this.#view.getUint32(vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_DATA, true)
  }

  /** The 64-bit message address (a number; addresses are below 2^53). */
  address(vector: number): number {
    const e = vector * PCI_MSIX_ENTRY_SIZE
    return this.#view.getUint32(e + PCI_MSIX_ENTRY_UPPER_ADDR, true) * 0x1_0000_0000 + this.#view.getUint32(e + PCI_MSIX_ENTRY_LOWER_ADDR, true)
  }

  isPending(vector: number): boolean {
    return (this.#pba[vector >> 3]! & (1 << (vector & 7))) !== 0
  }

  setPending(vector: number, pending: boolean): void {
    const bit = 1 << (vector & 7)
    if (pending) this.#pba[vector >> 3]! |= bit
    else this.#pba[vector >> 3]! &= ~bit
  }

  /** Whether any vector has its pending bit set. */
  get anyPending(): boolean {
    return this.#pba.some((b) => b !== 0)
  }

  #ctrl(vector: number): number {
    return this.#view.getUint32(vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, true)
  }

  #ctrlSet(vector: number, v: number): void {
    this.#view.setUint32(vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, v, true)
  }
}
