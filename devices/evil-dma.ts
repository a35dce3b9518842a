/**
 * A malicious DMA-capable PCI function, for the DMA-attack demo (docs/security.md).
 *
 * To its driver it looks like a plain status device: the driver programs a buffer address and
 * length in BAR 0 and sets GO; 1 µs later the device writes a status record of that length into the
 * buffer and sets DONE. Registers (32-bit): ID 0x00 (read), BUF_LO 0x08, BUF_HI 0x0c, LEN 0x10,
 * CTRL 0x14 (write EVIL_CTRL_GO), STATUS 0x18 (EVIL_STATUS_DONE; write 1 to clear).
 *
 * Its firmware is hostile: it remembers every address the driver ever gave it (`seen`), and the
 * attacker drives it through `tryRead`, `tryWrite`, `pollRead` and `pollWrite` — DMA to any bus address it likes,
 * through the same DMA port (bus mastering, IOMMU translation, the kernel's sanitizer) as every
 * honest access. Nothing here is privileged: what an attempt achieves is decided by the platform.
 */

import { PciFunction } from './pci/function.js'
import { MEMTX_OK, type MemTxResult } from './machine/dma-port.js'

export const EVIL_VENDOR = 0x1de5
export const EVIL_DEVICE = 0x0bad
export const EVIL_ID = 0x0bad_1de5
export const EVIL_REG_ID = 0x00
export const EVIL_REG_BUF_LO = 0x08
export const EVIL_REG_BUF_HI = 0x0c
export const EVIL_REG_LEN = 0x10
export const EVIL_REG_CTRL = 0x14
export const EVIL_REG_STATUS = 0x18
export const EVIL_CTRL_GO = 0x1
export const EVIL_STATUS_DONE = 0x1
/** The status record's first bytes ("STAT"), then a sequence number, then zeros. */
export const EVIL_STATUS_MAGIC = 0x5441_5453
/** The longest status record the device writes. */
export const EVIL_MAX_LEN = 4096

/** One attempted device access and what the platform made of it. */
export interface EvilAttempt {
  /** Virtual time of the attempt (ns). */
  readonly at: number
  readonly bus: number
  readonly write: boolean
  /** MEMTX_OK when the access happened. */
  readonly result: MemTxResult
  /** The bytes read (zeros when the read failed); empty for writes. */
  readonly bytes: Uint8Array
}

export class EvilDma extends PciFunction {
  /** Every buffer address the driver programmed, in order. */
  readonly seen: number[] = []
  /** Every attack attempt so far. */
  readonly attempts: EvilAttempt[] = []
  #bufLo = 0
  #bufHi = 0
  #len = 0
  #status = 0
  #seq = 0

  constructor(name = 'evil0') {
    super({ name, vendor: EVIL_VENDOR, device: EVIL_DEVICE, classCode: 0xff0000, bars: [{ size: 4096 }], intxPin: 0 })
  }

  /** A DMA read of len bytes at bus, now. */
  tryRead(bus: number, len: number): EvilAttempt {
    const bytes = new Uint8Array(len)
    const result = this.dmaRead(bus, bytes)
    const a: EvilAttempt = { at: this.#now(), bus, write: false, result, bytes }
    this.attempts.push(a)
    return a
  }

  /** A DMA write of bytes at bus, now. */
  tryWrite(bus: number, bytes: Uint8Array): EvilAttempt {
    const result = this.dmaWrite(bus, bytes)
    const a: EvilAttempt = { at: this.#now(), bus, write: true, result, bytes: new Uint8Array(0) }
    this.attempts.push(a)
    return a
  }

  /**
   * Reads len bytes at bus every intervalNs, count times, starting intervalNs from now (as device
   * work on the machine's clock); the attempts are pushed to the returned array as they happen.
   */
  pollRead(bus: number, len: number, intervalNs: number, count: number): EvilAttempt[] {
    return this.#poll(intervalNs, count, () => this.tryRead(bus, len))
  }

  /** Writes bytes at bus every intervalNs, count times, starting intervalNs from now. */
  pollWrite(bus: number, bytes: Uint8Array, intervalNs: number, count: number): EvilAttempt[] {
    return this.#poll(intervalNs, count, () => this.tryWrite(bus, bytes))
  }

  #poll(intervalNs: number, count: number, attempt: () => EvilAttempt): EvilAttempt[] {
    const log: EvilAttempt[] = []
    let left = count
    const step = (): void => {
      log.push(attempt())
      if (--left > 0) this.schedule(intervalNs, step)
    }
    if (count > 0) this.schedule(intervalNs, step)
    return log
  }

  #now(): number {
    return this.machine?.clock.now ?? 0
  }

  protected barRead(_bar: number, off: number): number {
    if (off === EVIL_REG_ID) return EVIL_ID
    if (off === EVIL_REG_BUF_LO) return this.#bufLo
    if (off === EVIL_REG_BUF_HI) return this.#bufHi
    if (off === EVIL_REG_LEN) return this.#len
    if (off === EVIL_REG_STATUS) return this.#status
    return 0
  }

  protected barWrite(_bar: number, off: number, _size: number, value: number): void {
    if (off === EVIL_REG_BUF_LO) this.#bufLo = value >>> 0
    else if (off === EVIL_REG_BUF_HI) this.#bufHi = value >>> 0
    else if (off === EVIL_REG_LEN) this.#len = value >>> 0
    else if (off === EVIL_REG_STATUS) this.#status &= ~value
    else if (off === EVIL_REG_CTRL && (value & EVIL_CTRL_GO) !== 0) {
      const bus = this.#bufHi * 0x1_0000_0000 + this.#bufLo
      const len = Math.min(this.#len, EVIL_MAX_LEN)
      this.seen.push(bus)
      this.schedule(1000, () => {
        const rec = new Uint8Array(len)
        const v = new DataView(rec.buffer)
        if (len >= 4) v.setUint32(0, EVIL_STATUS_MAGIC, true)
        if (len >= 8) v.setUint32(4, ++this.#seq, true)
        if (this.dmaWrite(bus, rec) === MEMTX_OK) this.#status |= EVIL_STATUS_DONE
      })
    }
  }

  override reset(): void {
    super.reset()
    this.#bufLo = 0
    this.#bufHi = 0
    this.#len = 0
    this.#status = 0
  }
}
