/**
 * The tnic's receive side: the RX ring (RDBAL/RDBAH/RDLEN/RDH/RDT/RCTL, the GPRC/GORC/RNBC/MPC
 * statistics) and the write-back QEMU's e1000_receive_iov does (hw/net/e1000.c; 8254x manual
 * ch. 3, receive descriptors), the on-chip receive FIFO that holds frames between their arrival
 * from the wire and their DMA, the destination-address filter, and the Ethernet CRC-32 the MAC
 * hands to the driver when RCTL.SECRC is clear. The device model is devices/net/tnic.ts; the
 * datasheet docs/devices/tnic.md §7.
 *
 * Per descriptor the device reads the descriptor by DMA, writes up to the buffer size of frame
 * bytes to its buffer, then writes the descriptor body (length, csum, status without DD, errors,
 * special: bytes 8..15) and only then, as a second DMA write, the status byte with DD — QEMU's
 * order, which is what lets a driver that reads the length before checking DD (or without
 * dma_rmb after it) be caught.
 *
 * The filter follows QEMU's e1000x_rx_group_filter (hw/net/e1000x_common.c) restricted to what the
 * tnic has (receive address 0, no multicast table): broadcast needs RCTL.BAM, multicast RCTL.MPE,
 * unicast RCTL.UPE or a match with RAL0/RAH0 when RAH0.AV is set. The CRC is IEEE 802.3's
 * (reflected polynomial 0xedb88320), appended least significant byte first as it is on the wire.
 */

import type { HostileField } from '../framework/hostile.js'
import {
  TNIC_DESC_SIZE, TNIC_ICR_RXDMT0, TNIC_ICR_RXO, TNIC_ICR_RXT0, TNIC_RAH_AV, TNIC_RCTL_BAM,
  TNIC_RCTL_BSEX, TNIC_RCTL_MPE, TNIC_RCTL_RDMTS_MASK, TNIC_RCTL_RDMTS_SHIFT, TNIC_RCTL_SECRC, TNIC_RCTL_SZ_1024,
  TNIC_RCTL_SZ_256, TNIC_RCTL_SZ_512, TNIC_RCTL_SZ_MASK, TNIC_RCTL_UPE, TNIC_RX_FIFO_BYTES, TNIC_RXD_LENGTH,
  TNIC_RXD_STAT_DD, TNIC_RXD_STAT_EOP, TNIC_RXD_STATUS,
} from './tnic-regs.js'
import { ETH_ZLEN } from './ether.js'
import type { TnicRingHost } from './tnic-tx.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'

/** One frame waiting in the FIFO: its bytes (room for an FCS after them), length and DMA time. */
export interface RxSlot {
  buf: Uint8Array
  len: number
  due: number
  /** Views of the first n bytes of buf, by n (V8 makes a typed-array view slowly: one per length, not per frame). */
  readonly heads: Map<number, Uint8Array>
}

/** Bytes off..off+n of a slot's buffer (a cached view when off is 0). */
export function slotBytes(slot: RxSlot, off: number, n: number): Uint8Array {
  if (off !== 0) return slot.buf.subarray(off, off + n)
  let v = slot.heads.get(n)
  if (v === undefined) {
    v = slot.buf.subarray(0, n)
    slot.heads.set(n, v)
  }
  return v
}

/** Smallest buffer a slot gets: a full-size frame, a VLAN tag and the FCS. */
const SLOT_MIN = 2048

/**
 * A FIFO of received frames in arrival order, bounded by bytes like the MAC's packet buffer.
 * Slots and their buffers are reused: after warm-up, receiving allocates nothing.
 */
export class RxFifo {
  readonly capacityBytes: number
  readonly #slots: RxSlot[] = []
  #head = 0
  #count = 0
  #bytes = 0

  constructor(capacityBytes = TNIC_RX_FIFO_BYTES) {
    this.capacityBytes = capacityBytes
    const n = Math.ceil(capacityBytes / ETH_ZLEN) + 1
    for (let i = 0; i < n; i++) this.#slots.push({ buf: new Uint8Array(0), len: 0, due: 0, heads: new Map() })
  }

  get count(): number {
    return this.#count
  }

  get bytes(): number {
    return this.#bytes
  }

  /** Whether a frame of len bytes still fits. */
  fits(len: number): boolean {
    return this.#bytes + len <= this.capacityBytes && this.#count < this.#slots.length
  }

  /**
   * Queues a copy of frame, zero-padded to len (>= frame.length), due at `due`. The slot keeps
   * 4 spare bytes after len for an FCS. The caller checked fits(len).
   */
  push(frame: Uint8Array, len: number, due: number): void {
    const slot = this.#slots[(this.#head + this.#count) % this.#slots.length]!
    if (slot.buf.length < len + 4) {
      slot.buf = new Uint8Array(Math.max(SLOT_MIN, len + 4))
      slot.heads.clear()
    }
    slot.buf.set(frame)
    if (frame.length < len) slot.buf.fill(0, frame.length, len)
    slot.len = len
    slot.due = due
    this.#count++
    this.#bytes += len
  }

  /** The oldest frame, or undefined. */
  peek(): RxSlot | undefined {
    return this.#count === 0 ? undefined : this.#slots[this.#head]
  }

  /** Drops the oldest frame (its slot is reused by a later push). An empty FIFO starts again at slot 0. */
  shift(): void {
    if (this.#count === 0) return
    this.#bytes -= this.#slots[this.#head]!.len
    this.#head = (this.#head + 1) % this.#slots.length
    if (--this.#count === 0) this.#head = 0
  }

  clear(): void {
    this.#head = 0
    this.#count = 0
    this.#bytes = 0
  }
}

/** Whether the receive filter accepts a frame with this destination (frame bytes 0..5). */
export function rxFilterPasses(frame: Uint8Array, rctl: number, ral0: number, rah0: number): boolean {
  const d0 = frame[0] ?? 0
  if ((d0 & 1) !== 0) {
    let bcast = d0 === 0xff
    for (let i = 1; bcast && i < 6; i++) bcast = frame[i] === 0xff
    if (bcast && (rctl & TNIC_RCTL_BAM) !== 0) return true
    if (!bcast && (rctl & TNIC_RCTL_MPE) !== 0) return true
  } else if ((rctl & TNIC_RCTL_UPE) !== 0) return true
  if ((rah0 & TNIC_RAH_AV) === 0) return false
  return (
    d0 === (ral0 & 0xff) &&
    (frame[1] ?? 0) === ((ral0 >>> 8) & 0xff) &&
    (frame[2] ?? 0) === ((ral0 >>> 16) & 0xff) &&
    (frame[3] ?? 0) === ral0 >>> 24 &&
    (frame[4] ?? 0) === (rah0 & 0xff) &&
    (frame[5] ?? 0) === ((rah0 >>> 8) & 0xff)
  )
}

const CRC_TABLE = ((): Int32Array => {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb8_8320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  return t
})()

/** The Ethernet FCS (CRC-32, IEEE 802.3) of buf[0..len). */
export function ethCrc32(buf: Uint8Array, len = buf.length): number {
  let c = -1
  for (let i = 0; i < len; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

/** Writes the FCS of buf[0..len) into buf[len..len+4), least significant byte first. */
export function appendFcs(buf: Uint8Array, len: number): void {
  const crc = ethCrc32(buf, len)
  buf[len] = crc & 0xff
  buf[len + 1] = (crc >>> 8) & 0xff
  buf[len + 2] = (crc >>> 16) & 0xff
  buf[len + 3] = crc >>> 24
}

/** The RX counters the ring keeps for the device's stats. */
export interface TnicRxStats {
  rxFrames: number
  rxBytes: number
  rxDescriptors: number
  rxNoBuffers: number
  rxMissed: number
  rxErrors: number
}

/** RCTL's receive buffer size, as QEMU's e1000x_rxbufsize (the BSEX sizes are for lenient mode). */
export function rxBufSize(rctl: number): number {
  switch (rctl & (TNIC_RCTL_BSEX | TNIC_RCTL_SZ_MASK)) {
    case TNIC_RCTL_BSEX | TNIC_RCTL_SZ_1024:
      return 16384
    case TNIC_RCTL_BSEX | TNIC_RCTL_SZ_512:
      return 8192
    case TNIC_RCTL_BSEX | TNIC_RCTL_SZ_256:
      return 4096
    case TNIC_RCTL_SZ_1024:
      return 1024
    case TNIC_RCTL_SZ_512:
      return 512
    case TNIC_RCTL_SZ_256:
      return 256
    default:
      return 2048
  }
}

/** The length a 'corrupt-length' fault writes into a frame's EOP descriptor unless its rule says. */
export const TNIC_FAULT_RX_LENGTH = 4000

const TWO32 = 0x1_0000_0000
const U32 = 0xffff_ffff
const inc = (v: number): number => (v >= U32 ? U32 : v + 1)

/** The RX write-back a hostile NIC rewrites, as offsets in the 8 bytes from the length field on. */
export const TNIC_RX_HOSTILE_FIELDS: readonly HostileField[] = [
  { name: 'RX length', off: 0, size: 2, kind: 'length', doubleFetch: true },
  { name: 'RX status', off: 4, size: 1, kind: 'status', mask: 0xfe },
  { name: 'RX errors', off: 5, size: 1, kind: 'status', doubleFetch: true },
]

export class TnicRxRing {
  bal = 0
  bah = 0
  /** RDLEN in bytes (a multiple of 128 after masking). */
  dlen = 0
  head = 0
  tail = 0
  stalled = false
  /** GPRC, the 64-bit GORC (octets, FCS included), RNBC and MPC, read-to-clear through the device. */
  gprc = 0
  gorc = 0
  rnbc = 0
  mpc = 0
  /** Frames between the wire and their DMA. */
  readonly fifo = new RxFifo()
  #rctl = 0
  #bufSize = 2048
  #minShift = 1
  readonly #host: TnicRingHost
  readonly #stats: TnicRxStats
  readonly #desc = new Uint8Array(TNIC_DESC_SIZE)
  readonly #view = new DataView(this.#desc.buffer)
  readonly #body = new Uint8Array(8)
  readonly #bodyView = new DataView(this.#body.buffer)
  readonly #status = new Uint8Array(1)

  constructor(host: TnicRingHost, stats: TnicRxStats) {
    this.#host = host
    this.#stats = stats
  }

  get rctl(): number {
    return this.#rctl
  }

  /** RCTL as written: the buffer size and the RDMTS threshold follow it. */
  set rctl(v: number) {
    this.#rctl = v
    this.#bufSize = rxBufSize(v)
    this.#minShift = ((v & TNIC_RCTL_RDMTS_MASK) >>> TNIC_RCTL_RDMTS_SHIFT) + 1
  }

  /** The buffer size RCTL selects (bytes per descriptor). */
  get bufSize(): number {
    return this.#bufSize
  }

  /** RDBAH:RDBAL. */
  get base(): number {
    return this.bah * TWO32 + this.bal
  }

  /** Descriptors in the ring (RDLEN / 16). */
  get count(): number {
    return this.dlen / TNIC_DESC_SIZE
  }

  reset(): void {
    this.bal = this.bah = this.dlen = this.head = this.tail = 0
    this.gprc = this.gorc = this.rnbc = this.mpc = 0
    this.rctl = 0
    this.stalled = false
    this.fifo.clear()
  }

  /** A frame lost before the ring (FIFO full, or the ring hung): MPC; returns cause RXO. */
  missed(): number {
    this.#stats.rxMissed++
    this.mpc = inc(this.mpc)
    return TNIC_ICR_RXO
  }

  /**
   * One frame (from the FIFO: its bytes with 4 spare bytes after them for the FCS) into the ring
   * from RDH; `errors` goes into the EOP descriptor's errors byte. `lieLength` (a 'corrupt-length'
   * fault; -1: none) is written as the EOP descriptor's length instead of the bytes it holds; the
   * buffer writes and the statistics are the real ones. Returns the causes to raise.
   */
  deliver(slot: RxSlot, errors: number, lieLength = -1): number {
    if (this.stalled) return this.missed()
    const buf = slot.buf
    const size = slot.len
    let total = size
    if ((this.#rctl & TNIC_RCTL_SECRC) === 0) {
      appendFcs(buf, size)
      total += 4
    }
    const n = this.count
    const bufSize = this.#bufSize
    if (!this.#hasBufs(total, n, bufSize)) return this.#overrun()
    const host = this.#host
    const d = this.#desc
    const v = this.#view
    const body = this.#bodyView
    const start = this.head
    let off = 0
    do {
      const at = this.base + TNIC_DESC_SIZE * this.head
      let r = host.dmaRead(at, d)
      if (r !== MEMTX_OK) return this.#stall('descriptor read', at, r)
      const addr = v.getUint32(4, true) * TWO32 + v.getUint32(0, true)
      let length = 0
      let status = 0
      if (addr !== 0) {
        length = Math.min(total - off, bufSize)
        r = host.dmaWrite(addr, slotBytes(slot, off, length))
        if (r !== MEMTX_OK) return this.#stall('buffer write', addr, r)
        off += length
        if (off >= total) status = TNIC_RXD_STAT_EOP
      } // a null buffer address: the descriptor is skipped (written back with DD, no data), as in QEMU
      body.setUint16(0, status !== 0 && lieLength >= 0 ? lieLength : length, true) // length (a fault may lie on EOP)
      body.setUint16(2, 0, true) // csum
      body.setUint8(4, status) // status, DD still clear
      body.setUint8(5, status !== 0 ? errors : 0) // errors, on the EOP descriptor
      body.setUint16(6, 0, true) // special
      host.hostileRecord(at + TNIC_RXD_LENGTH, this.#body, TNIC_RX_HOSTILE_FIELDS)
      r = host.dmaWrite(at + TNIC_RXD_LENGTH, this.#body)
      if (r !== MEMTX_OK) return this.#stall('write-back', at + TNIC_RXD_LENGTH, r)
      this.#status[0] = this.#body[4]! | TNIC_RXD_STAT_DD
      r = host.dmaWrite(at + TNIC_RXD_STATUS, this.#status)
      if (r !== MEMTX_OK) return this.#stall('write-back', at + TNIC_RXD_STATUS, r)
      this.#stats.rxDescriptors++
      if (++this.head >= n) this.head = 0
      // QEMU's guard, plus: reaching RDT mid-frame (null buffers used up descriptors) is an overrun.
      if (this.head === start || start >= n || (off < total && this.head === this.tail)) return this.#overrun()
    } while (off < total)
    if (errors !== 0) this.#stats.rxErrors++
    else {
      this.#stats.rxFrames++
      this.#stats.rxBytes += size
      this.gprc = inc(this.gprc)
      this.gorc += size + 4
    }
    let rdt = this.tail
    if (rdt < this.head) rdt += n
    const low = (rdt - this.head) * TNIC_DESC_SIZE <= this.dlen >> this.#minShift
    return TNIC_ICR_RXT0 | (low ? TNIC_ICR_RXDMT0 : 0)
  }

  /** QEMU's e1000_has_rxbufs: room for total bytes between RDH and RDT. */
  #hasBufs(total: number, n: number, bufSize: number): boolean {
    const h = this.head
    const t = this.tail
    if (n === 0 || h === t) return false
    if (total <= bufSize) return true
    const free = h < t ? t - h : n + t - h
    return total <= free * bufSize
  }

  /** No descriptors for a frame: RNBC and MPC; cause RXO (QEMU's e1000_receiver_overrun). */
  #overrun(): number {
    this.#stats.rxNoBuffers++
    this.rnbc = inc(this.rnbc)
    this.mpc = inc(this.mpc)
    return TNIC_ICR_RXO
  }

  #stall(what: string, bus: number, result: MemTxResult): number {
    this.stalled = true
    this.#host.stall('rx', what, bus, result)
    return 0
  }
}

