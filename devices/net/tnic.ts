/**
 * "tnic": an e1000-like Gigabit Ethernet NIC — legacy 16-byte RX and TX descriptor rings in
 * memory, head/tail registers, read-to-clear interrupt causes with a mask, interrupt throttling,
 * link status and statistics — plugged into an Ethernet link (devices/net/ether.ts). Datasheet:
 * docs/devices/tnic.md; register map: devices/net/tnic-regs.ts.
 *
 * Modelled on QEMU's hw/net/e1000.c (and e1000x_common.c) and on the Intel 8254x Software
 * Developer's Manual (ch. 3, receive and transmit descriptors; ch. 13, registers; ch. 14,
 * initialisation and reset): the same register offsets and bits, the same descriptor layouts,
 * the same ring arithmetic (RDLEN/TDLEN in bytes, RDH == RDT means "no buffers", RXDMT0 at
 * RDLEN >> (RDMTS + 1)), the same TX walk (each descriptor re-read by DMA when processed, buffers
 * gathered until EOP, DD written back into the status byte only when RS is set, a partial gather
 * kept until more descriptors arrive, QEMU's loop guard), the same RX write-back (descriptor body
 * first, then the status byte with DD as a second DMA write) and QEMU's mit_timer for ITR.
 * Differences, each in the datasheet: work happens on the virtual clock (TX `txLatencyNs` after
 * the TDT write, a frame's RX DMA `rxLatencyNs` after its arrival), not inside the MMIO write; no
 * EEPROM (the MAC address is an option, loaded into RAL0/RAH0 at reset); no PHY, MDIC, VLAN,
 * multicast table, checksum offload or delay timers; with SECRC clear the device really appends
 * the CRC-32; a failed DMA hangs its ring until reset; strict mode reports what QEMU silently
 * tolerates as guest errors.
 */

import type { HostileOptions } from '../framework/hostile.js'
import { ETH_HLEN, ETH_ZLEN, formatMac, type EtherEndpoint, type EtherLink } from './ether.js'
import { rxFilterPasses, TNIC_FAULT_RX_LENGTH, TnicRxRing, type TnicRxStats } from './tnic-rx.js'
import { TnicTxRing, type TnicTxHost, type TnicTxStats } from './tnic-tx.js'
import * as T from './tnic-regs.js'
import type { VirtualClock, ClockEvent } from '../machine/clock.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'
import { PciFunction, PciFunctionError } from '../pci/function.js'

export interface TnicOptions {
  /** PCI function name (default 'tnic0'). */
  readonly name?: string
  /** Station address, 'aa:bb:cc:dd:ee:ff' or 6 bytes (default 52:54:00:12:34:56 + the name's number). */
  readonly mac?: string | Uint8Array
  /** Report what the guest programs wrong as guest errors (default true); false: QEMU's leniency. */
  readonly strict?: boolean
  /** Virtual time from a TDT (or TCTL) write to the TX walk, ns (default 500). */
  readonly txLatencyNs?: number
  /** Virtual time from a frame's arrival to its RX DMA and write-back, ns (default 200). */
  readonly rxLatencyNs?: number
  /** Address bits the DMA engine drives (default 64). */
  readonly addressBits?: number
  /** Malicious-device mode: RX lengths, status and errors and TX status get hostile values (devices/framework/hostile.ts). */
  readonly hostile?: HostileOptions
}

/** Running counts for tests and tools (never reset, unlike the statistics registers). */
export interface TnicStats extends TnicTxStats, TnicRxStats {
  /** Frames the address filter rejected. */
  rxFiltered: number
  /** Frames that arrived, or left the FIFO, with RCTL.EN clear or the link down. */
  rxDisabled: number
  /** Frames shorter than an Ethernet header (dropped in strict mode). */
  rxRunts: number
  /** Frames longer than the receiver accepts (RCTL.LPE, SBP). */
  rxOversize: number
  /** Interrupt assertions (rising edges of ICR & IMS that reached the function's interrupt pin or vector). */
  interrupts: number
  /** Throttling intervals in which ITR held an edge back. */
  irqDeferred: number
  linkChanges: number
  resets: number
  /** DMA failures that hung a ring. */
  dmaErrors: number
}

/** A DMA that failed and hung a ring. */
export interface TnicDmaError {
  readonly ring: 'tx' | 'rx'
  /** What the device was doing: 'descriptor read', 'buffer read', 'buffer write' or 'write-back'. */
  readonly what: string
  readonly bus: number
  readonly result: MemTxResult
  readonly time: number
}

/** Register names by offset, for messages. */
const NAMES = new Map<number, string>(Object.entries(T.TNIC_REGISTERS).map(([k, v]) => [v, k]))
const READ_ONLY = new Set<number>([T.TNIC_STATUS, T.TNIC_MPC, T.TNIC_GPRC, T.TNIC_GPTC, T.TNIC_GORCL, T.TNIC_GORCH, T.TNIC_GOTCL, T.TNIC_GOTCH, T.TNIC_RNBC])
const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`

/** One 32-bit half of a 64-bit counter. */
const half = (v: number, high: boolean): number => (high ? Math.floor(v / TWO32) >>> 0 : v % TWO32)
/** The counter once that half is read (and cleared). */
const clearHalf = (v: number, high: boolean): number => (high ? v % TWO32 : v - (v % TWO32))

function parseMac(name: string, mac: string | Uint8Array | undefined): Uint8Array {
  let bytes: Uint8Array
  if (mac === undefined) {
    bytes = new Uint8Array(T.TNIC_DEFAULT_MAC.split(':').map((h) => parseInt(h, 16)))
    const n = /(\d+)$/.exec(name)
    bytes[5] = (bytes[5]! + (n === null ? 0 : Number(n[1]))) & 0xff
    return bytes
  }
  if (typeof mac === 'string') {
    if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(mac)) throw new PciFunctionError(`${name}: mac must be six hex bytes like '52:54:00:12:34:56', got '${mac}'`)
    bytes = new Uint8Array(mac.split(/[:-]/).map((h) => parseInt(h, 16)))
  } else if (mac instanceof Uint8Array && mac.length === 6) bytes = mac.slice()
  else throw new PciFunctionError(`${name}: mac must be a string or a 6-byte Uint8Array`)
  if ((bytes[0]! & 1) !== 0) throw new PciFunctionError(`${name}: mac ${formatMac(bytes)} is a multicast address; a station address must be unicast`)
  return bytes
}

function latency(name: string, option: string, v: number | undefined, dflt: number): number {
  const ns = v ?? dflt
  if (typeof ns !== 'number' || !Number.isFinite(ns) || ns < 0) throw new PciFunctionError(`${name}: ${option} must be a non-negative number of ns, got ${String(ns)}`)
  return ns
}

export class TnicDevice extends PciFunction implements EtherEndpoint {
  /** The station address loaded into RAL0/RAH0 at reset. */
  readonly mac: Uint8Array
  readonly strict: boolean
  readonly txLatencyNs: number
  readonly rxLatencyNs: number
  readonly stats: TnicStats = {
    txFrames: 0, txBytes: 0, txDescriptors: 0, txNoCarrier: 0, txOversize: 0, txRunts: 0,
    rxFrames: 0, rxBytes: 0, rxDescriptors: 0, rxNoBuffers: 0, rxMissed: 0, rxErrors: 0,
    rxFiltered: 0, rxDisabled: 0, rxRunts: 0, rxOversize: 0,
    interrupts: 0, irqDeferred: 0, linkChanges: 0, resets: 0, dmaErrors: 0,
  }

  /* Registers outside the rings (QEMU's mac_reg[], as fields) */
  #ctrl = 0
  #icr = 0
  #itr = 0
  #ims = 0
  #ral0 = 0
  #rah0 = 0
  readonly #tx: TnicTxRing
  readonly #rx: TnicRxRing
  #carrier = false
  #link: EtherLink | null = null
  #irqLevel = false
  #mitEvent: ClockEvent | null = null
  #mitDeferred = false
  #txEvent: ClockEvent | null = null
  #rxEvent: ClockEvent | null = null
  #lastDmaError: TnicDmaError | null = null
  readonly #onTx = (): void => {
    this.#txEvent = null
    const cause = this.#tx.walk()
    if (cause !== 0) this.#setIcr(this.#icr | cause)
  }
  readonly #onRx = (): void => this.#rxRun()
  readonly #onMit = (): void => {
    this.#mitEvent = null
    this.#updateIrq()
  }

  constructor(opts: TnicOptions = {}) {
    const name = opts.name ?? 'tnic0'
    super({
      name,
      vendor: T.TNIC_VENDOR_ID,
      device: T.TNIC_DEVICE_ID,
      classCode: T.TNIC_CLASS,
      revision: T.TNIC_REVISION,
      bars: [{ size: T.TNIC_BAR_SIZE }],
      msixVectors: 1,
      msixTableOffset: T.TNIC_MSIX_TABLE,
      msixPbaOffset: T.TNIC_MSIX_PBA,
      intxPin: 1,
      addressBits: opts.addressBits ?? 64,
      ...(opts.hostile !== undefined ? { hostile: opts.hostile } : {}),
    })
    this.mac = parseMac(name, opts.mac)
    const strict = opts.strict ?? true
    if (typeof strict !== 'boolean') throw new PciFunctionError(`${name}: strict must be a boolean, got ${String(strict)}`)
    this.strict = strict
    this.txLatencyNs = latency(name, 'txLatencyNs', opts.txLatencyNs, T.TNIC_DEFAULT_TX_LATENCY_NS)
    this.rxLatencyNs = latency(name, 'rxLatencyNs', opts.rxLatencyNs, T.TNIC_DEFAULT_RX_LATENCY_NS)
    const host: TnicTxHost = {
      strict,
      dmaRead: (bus, bytes) => this.dmaRead(bus, bytes),
      dmaWrite: (bus, bytes) => this.dmaWrite(bus, bytes),
      guest: (message, details) => this.#guest(message, details),
      hostileRecord: (bus, record, fields) => this.hostileRecord(bus, record, fields),
      stall: (ring, what, bus, result) => {
        this.stats.dmaErrors++
        this.#lastDmaError = { ring, what, bus, result, time: this.machine?.clock.now ?? 0 }
      },
      send: (frame) => {
        const link = this.#link
        if (link === null || !this.linkUp) return false
        link.transmit(this, frame)
        return true
      },
    }
    this.#tx = new TnicTxRing(host, this.stats)
    this.#rx = new TnicRxRing(host, this.stats)
    this.#macReset()
    this.stats.resets = 0
  }

  /* ---- EtherEndpoint ---- */

  /** The machine's clock (null until the NIC is on a bus). */
  get clock(): VirtualClock | null {
    return this.machine?.clock ?? null
  }

  /** The link the NIC is plugged into, or null. */
  get link(): EtherLink | null {
    return this.#link
  }

  /** Whether the cable has carrier (whatever CTRL.SLU says). */
  get carrier(): boolean {
    return this.#carrier
  }

  /** STATUS.LU: CTRL.SLU is set and the link has carrier. */
  get linkUp(): boolean {
    return (this.#ctrl & T.TNIC_CTRL_SLU) !== 0 && this.#carrier
  }

  attachLink(link: EtherLink | null): void {
    const was = this.linkUp
    this.#link = link
    this.#carrier = link !== null && link.carrier
    this.#linkChanged(was)
  }

  carrierChanged(up: boolean): void {
    const was = this.linkUp
    this.#carrier = up
    this.#linkChanged(was)
  }

  /** A frame from the wire: checked and filtered now, queued in the FIFO, DMA-ed rxLatencyNs later. */
  receiveFrame(frame: Uint8Array): void {
    const m = this.machine
    if (m === null) return
    const rx = this.#rx
    const rctl = rx.rctl
    if ((rctl & T.TNIC_RCTL_EN) === 0 || !this.linkUp) {
      this.stats.rxDisabled++
      return
    }
    if (frame.length < ETH_HLEN && this.strict) {
      this.stats.rxRunts++
      return
    }
    const len = Math.max(frame.length, ETH_ZLEN) // short frames padded, as QEMU's e1000_receive_iov does
    if (len > ((rctl & T.TNIC_RCTL_LPE) !== 0 ? T.TNIC_RX_MAX_LONG : T.TNIC_RX_MAX_SHORT) && (rctl & T.TNIC_RCTL_SBP) === 0) {
      this.stats.rxOversize++
      return
    }
    if (!rxFilterPasses(frame, rctl, this.#ral0, this.#rah0)) {
      this.stats.rxFiltered++
      return
    }
    if (!rx.fifo.fits(len)) {
      this.#setIcr(this.#icr | rx.missed())
      return
    }
    rx.fifo.push(frame, len, m.clock.now + this.rxLatencyNs)
    this.#rxEvent ??= this.schedule(this.rxLatencyNs, this.#onRx)
  }

  /* ---- harness view ---- */

  /** Whether a failed DMA hung the TX ring (until reset). */
  get txStalled(): boolean {
    return this.#tx.stalled
  }

  /** Whether a failed DMA hung the RX ring (until reset). */
  get rxStalled(): boolean {
    return this.#rx.stalled
  }

  /** The last DMA failure that hung a ring, or null. */
  get lastDmaError(): TnicDmaError | null {
    return this.#lastDmaError
  }

  /** The interrupt output after masking and throttling: whether the device signals now. */
  get irqAsserted(): boolean {
    return this.#irqLevel
  }

  /** Frames waiting in the receive FIFO for their DMA. */
  get rxPending(): number {
    return this.#rx.fifo.count
  }

  /** A register's value as a 32-bit read would return it, without the read's side effects (ICR and statistics keep their values). */
  reg(name: T.TnicRegister): number {
    const off = T.TNIC_REGISTERS[name] as number | undefined
    if (off === undefined) throw new PciFunctionError(`${this.name}: no register named ${name as string}`)
    return this.#read(off, false)
  }

  /** Function-level reset: the PCI state (PciFunction.reset) and the MAC, as CTRL.RST. */
  override reset(): void {
    super.reset()
    this.#macReset()
  }

  /**
   * The rings as the device sees them, in the style of Linux's e1000_dump(): for each ring its
   * base, length, head, tail and control register, then every descriptor as two 64-bit
   * little-endian halves, H marking the head and T the tail. Descriptors are read through the DMA
   * port (bus mastering, the IOMMU, the sanitizer and the tracer see the reads); fault injection is
   * not consulted.
   */
  dumpRings(): string {
    const out: string[] = []
    const d = new Uint8Array(T.TNIC_DESC_SIZE)
    const v = new DataView(d.buffer)
    const h16 = (off: number): string => (v.getUint32(off + 4, true) * TWO32 + v.getUint32(off, true)).toString(16).toUpperCase().padStart(16, '0')
    const hex8 = (x: number): string => `0x${x.toString(16).padStart(8, '0')}`
    for (const tx of [true, false]) {
      const ring = tx ? this.#tx : this.#rx
      const p = tx ? 'TD' : 'RD'
      const n = ring.count
      const ctl = tx ? `TCTL ${hex8(this.#tx.tctl)}` : `RCTL ${hex8(this.#rx.rctl)}`
      out.push(`${this.name} ${tx ? 'TX' : 'RX'} ring: ${p}BA 0x${ring.base.toString(16).padStart(16, '0')} ${p}LEN ${hex(ring.dlen)} (${n} descriptors) ${p}H ${hex(ring.head)} ${p}T ${hex(ring.tail)} ${ctl}`)
      if (tx && this.#tx.partial > 0) out.push(`  partial frame: ${this.#tx.partial} bytes gathered, waiting for EOP`)
      const e = this.#lastDmaError
      if (ring.stalled && e !== null && e.ring === (tx ? 'tx' : 'rx')) out.push(`  hung: ${e.what} at ${hex(e.bus)} failed (MemTxResult ${e.result}) at ${e.time} ns`)
      out.push(tx ? 'Tl[desc]     [address 63:0  ] [SpeCssSCmCsLen]' : 'R[desc]      [address 63:0  ] [vl er S cks ln]')
      for (let i = 0; i < n; i++) {
        const mark = i === ring.head && i === ring.tail ? ' H/T' : i === ring.head ? ' H' : i === ring.tail ? ' T' : ''
        const idx = `[0x${i.toString(16).toUpperCase().padStart(3, '0')}]`
        const r = this.dma.readInto(ring.base + i * T.TNIC_DESC_SIZE, d)
        if (r !== MEMTX_OK) out.push(`${tx ? 'T?' : 'R'}${idx}${tx ? '    ' : '     '}<DMA read failed: MemTxResult ${r}>${mark}`)
        else if (!tx) out.push(`R${idx}     ${h16(0)} ${h16(8)}${mark}`)
        else {
          const kind = (d[T.TNIC_TXD_CMD]! & T.TNIC_TXD_CMD_DEXT) === 0 ? 'l' : (d[T.TNIC_TXD_CSO]! & T.TNIC_TXD_DTYP_D) !== 0 ? 'd' : 'c'
          out.push(`T${kind}${idx}    ${h16(0)} ${h16(8)}${mark}`)
        }
      }
    }
    return out.join('\n')
  }

  /* ---- MMIO ---- */

  protected barRead(_bar: number, off: number, size: 1 | 2 | 4): number {
    if (size !== 4 || (off & 3) !== 0) {
      this.#badAccess(off, size, false, 0)
      return 0
    }
    return this.#read(off, true)
  }

  protected barWrite(_bar: number, off: number, size: 1 | 2 | 4, value: number): void {
    if (size !== 4 || (off & 3) !== 0) {
      this.#badAccess(off, size, true, value)
      return
    }
    const v = value >>> 0
    const tx = this.#tx
    const rx = this.#rx
    switch (off) {
      case T.TNIC_CTRL:
        this.#writeCtrl(v)
        break
      case T.TNIC_ICR:
        this.#setIcr(this.#icr & ~v)
        break
      case T.TNIC_ITR:
        this.#itr = v & T.TNIC_ITR_MASK
        break
      case T.TNIC_ICS:
        this.#setIcr(this.#icr | (v & ~T.TNIC_ICR_INT_ASSERTED))
        break
      case T.TNIC_IMS:
        this.#ims = (this.#ims | v) >>> 0
        this.#updateIrq()
        break
      case T.TNIC_IMC:
        this.#ims = (this.#ims & ~v) >>> 0
        this.#updateIrq()
        break
      case T.TNIC_RCTL:
        if ((v & T.TNIC_RCTL_BSEX) !== 0) {
          this.#guest(`RCTL ${hex(v)} sets BSEX: buffer size extension is not supported (BSIZE is 2048, 1024, 512 or 256)`, { register: 'RCTL', value: v })
        }
        if ((v & T.TNIC_RCTL_RDMTS_MASK) === T.TNIC_RCTL_RDMTS_MASK) this.#guest(`RCTL ${hex(v)}: RDMTS 3 is reserved`, { register: 'RCTL', value: v })
        rx.rctl = v
        break
      case T.TNIC_TCTL:
        tx.tctl = v
        this.#kickTx()
        break
      case T.TNIC_RDBAL:
        rx.bal = this.#base('RDBAL', v)
        break
      case T.TNIC_RDBAH:
        rx.bah = v
        break
      case T.TNIC_RDLEN:
        rx.dlen = this.#dlen('RDLEN', v)
        break
      case T.TNIC_RDH:
        rx.head = this.#index('RDH', v, rx.count)
        break
      case T.TNIC_RDT: {
        const rdt = this.#index('RDT', v, rx.count)
        if ((rx.rctl & T.TNIC_RCTL_EN) !== 0 && rdt === rx.head && rx.tail !== rx.head) {
          this.#guest(`RDT ${hex(v)} == RDH: the driver filled every descriptor; one must stay empty`, { register: 'RDT', value: v })
        }
        rx.tail = rdt
        break
      }
      case T.TNIC_TDBAL:
        tx.bal = this.#base('TDBAL', v)
        break
      case T.TNIC_TDBAH:
        tx.bah = v
        break
      case T.TNIC_TDLEN:
        tx.dlen = this.#dlen('TDLEN', v)
        break
      case T.TNIC_TDH:
        tx.head = this.#index('TDH', v, tx.count)
        break
      case T.TNIC_TDT: {
        const tdt = this.#index('TDT', v, tx.count)
        if ((tx.tctl & T.TNIC_TCTL_EN) !== 0 && tdt === tx.head && tx.tail !== tx.head) {
          this.#guest(`TDT ${hex(v)} == TDH: the driver filled every descriptor; one must stay empty`, { register: 'TDT', value: v })
        }
        tx.tail = tdt
        this.#kickTx()
        break
      }
      case T.TNIC_RAL0:
        this.#ral0 = v
        break
      case T.TNIC_RAH0:
        this.#rah0 = (v & (0xffff | T.TNIC_RAH_AV)) >>> 0
        break
      default:
        if (READ_ONLY.has(off)) this.#guest(`write of ${hex(v)} to read-only register ${NAMES.get(off)!} (${hex(off)})`, { register: NAMES.get(off)!, value: v })
        else this.#guest(`write of ${hex(v)} to unimplemented register ${hex(off)}`, { offset: off, value: v })
    }
  }

  /** A register read; `access`: a real read (ICR and statistics clear, errors are reported). */
  #read(off: number, access: boolean): number {
    const tx = this.#tx
    const rx = this.#rx
    let v: number
    switch (off) {
      case T.TNIC_CTRL:
        return this.#ctrl
      case T.TNIC_STATUS:
        return T.TNIC_STATUS_FD | T.TNIC_STATUS_SPEED_1000 | (this.linkUp ? T.TNIC_STATUS_LU : 0)
      case T.TNIC_ICR:
        v = ((this.#icr & this.#ims) !== 0 ? this.#icr | T.TNIC_ICR_INT_ASSERTED : this.#icr) >>> 0
        if (access) this.#setIcr(0)
        return v
      case T.TNIC_ITR:
        return this.#itr
      case T.TNIC_ICS:
        return this.#icr
      case T.TNIC_IMS:
        return this.#ims
      case T.TNIC_IMC:
        if (access) this.#guest(`read of write-only register IMC (${hex(off)})`, { register: 'IMC' })
        return 0
      case T.TNIC_RCTL:
        return rx.rctl
      case T.TNIC_TCTL:
        return tx.tctl
      case T.TNIC_RDBAL:
        return rx.bal
      case T.TNIC_RDBAH:
        return rx.bah
      case T.TNIC_RDLEN:
        return rx.dlen
      case T.TNIC_RDH:
        return rx.head
      case T.TNIC_RDT:
        return rx.tail
      case T.TNIC_TDBAL:
        return tx.bal
      case T.TNIC_TDBAH:
        return tx.bah
      case T.TNIC_TDLEN:
        return tx.dlen
      case T.TNIC_TDH:
        return tx.head
      case T.TNIC_TDT:
        return tx.tail
      case T.TNIC_MPC:
        v = rx.mpc
        if (access) rx.mpc = 0
        return v
      case T.TNIC_GPRC:
        v = rx.gprc
        if (access) rx.gprc = 0
        return v
      case T.TNIC_RNBC:
        v = rx.rnbc
        if (access) rx.rnbc = 0
        return v
      case T.TNIC_GPTC:
        v = tx.gptc
        if (access) tx.gptc = 0
        return v
      case T.TNIC_GORCL:
      case T.TNIC_GORCH:
        v = half(rx.gorc, off === T.TNIC_GORCH)
        if (access) rx.gorc = clearHalf(rx.gorc, off === T.TNIC_GORCH)
        return v
      case T.TNIC_GOTCL:
      case T.TNIC_GOTCH:
        v = half(tx.gotc, off === T.TNIC_GOTCH)
        if (access) tx.gotc = clearHalf(tx.gotc, off === T.TNIC_GOTCH)
        return v
      case T.TNIC_RAL0:
        return this.#ral0
      case T.TNIC_RAH0:
        return this.#rah0
      default:
        if (access) this.#guest(`read of unimplemented register ${hex(off)}`, { offset: off })
        return 0
    }
  }

  #badAccess(off: number, size: number, write: boolean, value: number): void {
    const name = NAMES.get(off & ~3)
    const where = name === undefined ? hex(off) : `${name} (${hex(off)})`
    const what = write ? `${size}-byte write of ${hex(value)} to` : `${size}-byte read of`
    this.#guest(`${what} ${where}: tnic registers take aligned 32-bit accesses only`, { offset: off, size, write })
  }

  /** A guest error (strict mode only: lenient mode is as forgiving as QEMU and says nothing). */
  #guest(message: string, details: Record<string, number | string | boolean>): void {
    if (this.strict) this.guestError(message, details)
  }

  #writeCtrl(v: number): void {
    if ((v & T.TNIC_CTRL_RST) !== 0) {
      this.#macReset() // RST is self-clearing; the rest of the write is lost with the reset
      return
    }
    const was = this.linkUp
    this.#ctrl = v
    this.#linkChanged(was)
  }

  /** A ring base: 16-byte aligned (bits 3:0 read as 0). */
  #base(name: string, v: number): number {
    if ((v & 0xf) !== 0) this.#guest(`${name} ${hex(v)} is not 16-byte aligned`, { register: name, value: v })
    return (v & ~0xf) >>> 0
  }

  /** A ring length: bits 19:7 kept (QEMU's set_dlen). */
  #dlen(name: string, v: number): number {
    const len = v & T.TNIC_DLEN_MASK
    if (len === 0 || len !== v) this.#guest(`${name} ${hex(v)} is not a non-zero multiple of 128`, { register: name, value: v })
    return len
  }

  /** A head or tail: 16 bits kept (QEMU); beyond the ring is a guest error. */
  #index(name: string, v: number, n: number): number {
    if (v !== 0 && v >= n) this.#guest(`${name} ${hex(v)} is beyond the ring (${n} descriptors)`, { register: name, value: v, descriptors: n })
    return v & T.TNIC_INDEX_MASK
  }

  /* ---- link and interrupts ---- */

  #linkChanged(was: boolean): void {
    if (this.linkUp === was) return
    this.stats.linkChanges++
    this.#setIcr(this.#icr | T.TNIC_ICR_LSC)
  }

  #setIcr(v: number): void {
    this.#icr = v >>> 0
    this.#updateIrq()
  }

  /**
   * QEMU's set_interrupt_cause: the output follows (ICR & IMS) != 0; each rising edge that gets out
   * starts an ITR interval (ITR != 0), and an edge inside one is held back until it ends.
   */
  #updateIrq(): void {
    if (this.machine === null) return
    const pending = (this.#icr & this.#ims) !== 0
    if (pending && !this.#irqLevel) {
      if (this.#mitEvent !== null) {
        if (!this.#mitDeferred) this.stats.irqDeferred++
        this.#mitDeferred = true
        return
      }
      this.#mitDeferred = false
      if (this.#itr !== 0) this.#mitEvent = this.schedule(this.#itr * T.TNIC_ITR_UNIT_NS, this.#onMit)
      this.#irqLevel = true
      this.stats.interrupts++
      this.raiseIrq(0)
    } else if (!pending && this.#irqLevel) {
      this.#irqLevel = false
      this.lowerIrq()
    }
  }

  /* ---- TX and RX scheduling ---- */

  /** Schedules a TX walk (one at a time; it runs up to the TDT of its own moment). */
  #kickTx(): void {
    if (this.#txEvent !== null || !this.#tx.ready || this.machine === null) return
    const f = this.fault('delay-completion')
    this.#txEvent = this.schedule(this.txLatencyNs + (f === null ? 0 : (f.delayNs ?? T.TNIC_FAULT_DELAY_NS)), this.#onTx)
  }

  /** DMA of every queued frame whose time has come. */
  #rxRun(): void {
    this.#rxEvent = null
    const now = this.machine!.clock.now
    const rx = this.#rx
    const fifo = rx.fifo
    for (let s = fifo.peek(); s !== undefined && s.due <= now; s = fifo.peek()) {
      let cause: number
      if ((rx.rctl & T.TNIC_RCTL_EN) === 0) {
        this.stats.rxDisabled++
        cause = 0
      } else {
        const f = this.fault('error-status')
        const c = this.fault('corrupt-length')
        const errors = f === null ? 0 : (f.status ?? T.TNIC_FAULT_RX_ERRORS) & 0xff
        cause = rx.deliver(s, errors, c === null ? -1 : (c.status ?? TNIC_FAULT_RX_LENGTH) & 0xffff)
      }
      fifo.shift()
      if (cause !== 0) this.#setIcr(this.#icr | cause)
    }
    const next = fifo.peek()
    if (next !== undefined) this.#rxEvent = this.schedule(next.due - now, this.#onRx)
  }

  /* ---- reset ---- */

  /** CTRL.RST: registers to their reset values, the MAC address from the "EEPROM", rings and FIFO emptied. */
  #macReset(): void {
    for (const ev of [this.#txEvent, this.#rxEvent, this.#mitEvent]) if (ev !== null) ev.cancelled = true
    this.#txEvent = this.#rxEvent = this.#mitEvent = null
    this.#mitDeferred = false
    this.#ctrl = this.#icr = this.#itr = this.#ims = 0
    const mac = this.mac
    this.#ral0 = (mac[0]! | (mac[1]! << 8) | (mac[2]! << 16) | (mac[3]! << 24)) >>> 0
    this.#rah0 = (mac[4]! | (mac[5]! << 8) | T.TNIC_RAH_AV) >>> 0
    this.#tx.reset()
    this.#rx.reset()
    if (this.#irqLevel) {
      this.#irqLevel = false
      this.lowerIrq()
    }
    this.stats.resets++
  }
}
