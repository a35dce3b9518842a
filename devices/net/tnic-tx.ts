/**
 * The tnic's transmit ring: TDBAL/TDBAH/TDLEN/TDH/TDT/TCTL, the staging buffer where a frame's
 * buffers are gathered, the GPTC/GOTC statistics, and the walk QEMU's start_xmit does
 * (hw/net/e1000.c; 8254x manual ch. 3, transmit descriptors). The device model that owns it is
 * devices/net/tnic.ts; the datasheet docs/devices/tnic.md §6.
 *
 * The walk goes from TDH to TDT, reading each 16-byte descriptor by DMA when it reaches it (so a
 * driver may still be filling later ones), gathers each buffer into the staging area, sends the
 * frame at EOP (padded to 60 bytes with TCTL.PSP), writes DD into the status byte of every
 * descriptor with RS, and advances TDH. A frame whose EOP is not yet posted stays half-gathered
 * until the next walk, as in QEMU. A DMA that fails hangs the ring where it is.
 */

import type { HostileField } from '../framework/hostile.js'
import { ETH_HLEN, ETH_ZLEN } from './ether.js'
import * as T from './tnic-regs.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'

/** What a ring needs from its device: DMA through the function, guest errors, the hang record. */
export interface TnicRingHost {
  readonly strict: boolean
  dmaRead(bus: number, bytes: Uint8Array): MemTxResult
  dmaWrite(bus: number, bytes: Uint8Array): MemTxResult
  /** A guest error (reported in strict mode only). */
  guest(message: string, details: Record<string, number | string | boolean>): void
  /** A DMA failed and hung the ring. */
  stall(ring: 'tx' | 'rx', what: string, bus: number, result: MemTxResult): void
  /** Malicious-device mode: may rewrite a write-back record before it is written (PciFunction.hostileRecord). */
  hostileRecord(bus: number, record: Uint8Array, fields: readonly HostileField[]): void
}

/** The TX write-back a hostile NIC rewrites: the status byte (DD). */
export const TNIC_TX_HOSTILE_FIELDS: readonly HostileField[] = [{ name: 'TX status', off: 0, size: 1, kind: 'status' }]

/** What the TX ring needs besides: the link. */
export interface TnicTxHost extends TnicRingHost {
  /** Puts a frame on the link; false when the link is down (the frame is lost). */
  send(frame: Uint8Array): boolean
}

/** The TX counters the ring keeps for the device's stats. */
export interface TnicTxStats {
  txFrames: number
  txBytes: number
  txDescriptors: number
  txNoCarrier: number
  txOversize: number
  /** Frames shorter than an Ethernet header after padding (dropped). */
  txRunts: number
}

const TWO32 = 0x1_0000_0000
const U32 = 0xffff_ffff

export class TnicTxRing {
  bal = 0
  bah = 0
  /** TDLEN in bytes (a multiple of 128 after masking). */
  dlen = 0
  head = 0
  tail = 0
  tctl = 0
  stalled = false
  /** GPTC and the 64-bit GOTC (octets, FCS included), read-to-clear through the device. */
  gptc = 0
  gotc = 0
  /** Bumped by reset: a walk in progress stops. */
  epoch = 0
  readonly #host: TnicTxHost
  readonly #stats: TnicTxStats
  readonly #buf = new Uint8Array(T.TNIC_TX_MAX_FRAME)
  /** Bytes gathered into #buf, and the frame's length so far (more when it is over the maximum). */
  #size = 0
  #total = 0
  readonly #desc = new Uint8Array(T.TNIC_DESC_SIZE)
  readonly #view = new DataView(this.#desc.buffer)
  readonly #status = new Uint8Array([T.TNIC_TXD_STAT_DD])
  /** Views of the first n bytes of #buf, by n: a frame's bytes without a subarray per frame. */
  readonly #prefix = new Map<number, Uint8Array>()

  constructor(host: TnicTxHost, stats: TnicTxStats) {
    this.#host = host
    this.#stats = stats
  }

  /** TDBAH:TDBAL. */
  get base(): number {
    return this.bah * TWO32 + this.bal
  }

  /** Descriptors in the ring (TDLEN / 16). */
  get count(): number {
    return this.dlen / T.TNIC_DESC_SIZE
  }

  /** Bytes of a frame gathered while its EOP has not been seen yet. */
  get partial(): number {
    return this.#total
  }

  /** Whether a walk has anything to do. */
  get ready(): boolean {
    return (this.tctl & T.TNIC_TCTL_EN) !== 0 && !this.stalled && this.head !== this.tail
  }

  reset(): void {
    this.epoch++
    this.bal = this.bah = this.dlen = this.head = this.tail = this.tctl = 0
    this.gptc = this.gotc = 0
    this.#size = this.#total = 0
    this.stalled = false
  }

  /** One walk from TDH to TDT; returns the interrupt causes to raise (TXDW, TXQE). */
  walk(): number {
    const n = this.count
    if ((this.tctl & T.TNIC_TCTL_EN) === 0 || this.stalled || n === 0) return 0
    const host = this.#host
    const epoch = this.epoch
    const start = this.head
    const d = this.#desc
    const v = this.#view
    let cause = 0
    while (this.head !== this.tail) {
      const at = this.base + T.TNIC_DESC_SIZE * this.head
      let r = host.dmaRead(at, d)
      if (r !== MEMTX_OK) {
        this.#stall('descriptor read', at, r)
        break
      }
      this.#stats.txDescriptors++
      const cmd = d[T.TNIC_TXD_CMD]!
      let len = v.getUint16(T.TNIC_TXD_LENGTH, true)
      let data = true
      if ((cmd & T.TNIC_TXD_CMD_DEXT) !== 0) {
        host.guest(`TX descriptor ${this.head}: DEXT set: extended descriptors are not supported`, { register: 'TDH', value: this.head, cmd })
        // Lenient (QEMU): a data descriptor (DTYP=1) carries data with a 20-bit length; a context one none.
        data = !host.strict && (d[T.TNIC_TXD_CSO]! & T.TNIC_TXD_DTYP_D) !== 0
        len = v.getUint32(T.TNIC_TXD_LENGTH, true) & 0xf_ffff
      }
      if (data) {
        if (len > 0) {
          const addr = v.getUint32(4, true) * TWO32 + v.getUint32(0, true)
          const take = Math.min(len, T.TNIC_TX_MAX_FRAME - this.#size)
          if (take > 0) {
            r = host.dmaRead(addr, this.#size === 0 ? this.#head(take) : this.#buf.subarray(this.#size, this.#size + take))
            if (r !== MEMTX_OK) {
              this.#stall('buffer read', addr, r)
              break
            }
            this.#size += take
          }
          this.#total += len
        }
        if ((cmd & T.TNIC_TXD_CMD_EOP) !== 0) {
          this.#eop()
          if (this.epoch !== epoch) return 0 // the device was reset from inside send()
        }
      }
      if ((cmd & T.TNIC_TXD_CMD_RS) !== 0) {
        host.hostileRecord(at + T.TNIC_TXD_STATUS, this.#status, TNIC_TX_HOSTILE_FIELDS)
        r = host.dmaWrite(at + T.TNIC_TXD_STATUS, this.#status)
        if (r !== MEMTX_OK) {
          this.#stall('write-back', at + T.TNIC_TXD_STATUS, r)
          break
        }
        cause |= T.TNIC_ICR_TXDW
      }
      if (++this.head >= n) this.head = 0
      if (this.head === start || start >= n) break // QEMU's guard against bogus TDT/TDLEN
    }
    // A hung ring keeps TDH on the failed descriptor and never drains: no TXQE, but TXDW for what was written back.
    if (!this.stalled && this.head === this.tail) cause |= T.TNIC_ICR_TXQE
    return cause
  }

  /** EOP: the gathered frame goes on the link, padded with PSP. */
  #eop(): void {
    const total = this.#total
    let size = this.#size
    this.#total = this.#size = 0
    if (total === 0) return
    const stats = this.#stats
    if (total > T.TNIC_TX_MAX_FRAME) {
      stats.txOversize++
      this.#host.guest(`TX frame of ${total} bytes exceeds the ${T.TNIC_TX_MAX_FRAME}-byte maximum: dropped`, { length: total })
      if (this.#host.strict) return // lenient: sent cut at the maximum, as QEMU cuts at its buffer
    }
    if (size < ETH_ZLEN && (this.tctl & T.TNIC_TCTL_PSP) !== 0) {
      this.#buf.fill(0, size, ETH_ZLEN)
      size = ETH_ZLEN
    }
    if (size < ETH_HLEN) {
      // Not even an Ethernet header: nothing a link carries (and the wire refuses it).
      stats.txRunts++
      this.#host.guest(`TX frame of ${size} bytes is shorter than an Ethernet header (${ETH_HLEN} bytes) and TCTL.PSP is clear: dropped`, { length: size })
      return
    }
    if (!this.#host.send(this.#head(size))) {
      stats.txNoCarrier++
      return
    }
    stats.txFrames++
    stats.txBytes += size
    this.gptc = this.gptc >= U32 ? U32 : this.gptc + 1
    this.gotc += size + 4
  }

  /** The first n bytes of the staging buffer (a cached view). */
  #head(n: number): Uint8Array {
    let v = this.#prefix.get(n)
    if (v === undefined) {
      v = this.#buf.subarray(0, n)
      this.#prefix.set(n, v)
    }
    return v
  }

  #stall(what: string, bus: number, result: MemTxResult): void {
    this.stalled = true
    this.#host.stall('tx', what, bus, result)
  }
}
