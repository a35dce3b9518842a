/**
 * The Intel 8237A DMA controller pair of the PC/AT: third-party DMA, where the controller, not
 * the device, masters the bus. Datasheet: docs/devices/i8237.md.
 *
 * Modelled on QEMU's hw/dma/i8257.c (two controllers, `dshift` 0 and 1, the byte-pointer
 * flip-flop, page registers, the status register's TC and request bits cleared/set as there,
 * memory-to-memory and the timing options of the command register rejected) and on the 8237A
 * data sheet for what QEMU leaves out: auto-initialisation reloading the current registers from
 * the base ones at terminal count, the channel masking itself at TC without auto-init, address
 * decrement, and the transfer modes (demand, single, block, cascade).
 *
 * Data moves when a device asks for it, as in QEMU (`DMA_hold_DREQ` + the device's transfer
 * handler) and v86 (`do_read`/`do_write`): a device holding DREQ calls `readMemory` (memory ->
 * device) or `writeMemory` (device -> memory) with how many units it can take or give now; the
 * controller moves what the channel's mode allows through the host's bus access (the ISA
 * bridge's DmaPort, so bus mastering, the IOMMU and the sanitizer see every access), advances the
 * current address and count, and reports terminal count. Address generation follows the real
 * part: the 16-bit current address counter wraps inside the page the page register selects
 * (64 KiB for channels 0-3, 128 KiB for 5-7), so a buffer crossing that boundary is not what
 * gets transferred; in strict mode that is a guest error.
 *
 * Bus modes cost CPU time: while the controller holds the bus (HOLD/HLDA) a running CPU stalls.
 * Single mode (cycle stealing) takes the bus for each unit: holdNs + cycleNs per unit; demand
 * mode keeps it while DREQ is held: holdNs + units × cycleNs per request; block (burst) mode keeps
 * it until terminal count: holdNs + units × cycleNs for the whole block. The `transparent` option
 * models a bus that only grants the controller cycles the CPU leaves free: no stall at all, and
 * nothing moves while the CPU is running a task.
 */

import type { MemTxResult } from '../machine/dma-port.js'
import {
  DMA_AUTOINIT, DMA_CMD_DISABLE, DMA_CMD_MEM_TO_MEM, DMA_CMD_NOT_SUPPORTED, DMA_MODE_BLOCK, DMA_MODE_CASCADE,
  DMA_MODE_DECREMENT, DMA_MODE_DEMAND, DMA_MODE_SEL_MASK, DMA_MODE_SINGLE, DMA_MODE_TYPE_ILLEGAL,
  DMA_MODE_TYPE_MASK, DMA_MODE_TYPE_READ, DMA_MODE_TYPE_WRITE, DMA_MODE_VERIFY, DMA_PAGE_PORTS,
  DMA_STAT_REQ_SHIFT, DMA_STAT_TC_MASK, I8237_CASCADE_CHANNEL, I8237_REG_CLEAR_FF, I8237_REG_CLR_MASK,
  I8237_REG_CMD, I8237_REG_MASK, I8237_REG_MASK_ALL, I8237_REG_MODE, I8237_REG_REQ, I8237_REG_RESET,
} from './i8237-regs.js'

/** What the controller needs from the board it sits on (the ISA bridge). */
export interface I8237Host {
  /** A bus read of len bytes at the 24-bit address into into[off..]. */
  dmaRead(addr: number, into: Uint8Array, off: number, len: number): MemTxResult
  /** A bus write of len bytes of from[off..] at the 24-bit address. */
  dmaWrite(addr: number, from: Uint8Array, off: number, len: number): MemTxResult
  /** The controller held the bus for ns (the CPU stalls if it is running). */
  stallCpu(ns: number): void
  /** Whether the CPU is idle now (a transparent controller only uses such bus cycles). */
  cpuIdle(): boolean
  /** A guest error (QEMU's LOG_GUEST_ERROR): becomes a device-error report. */
  guestError(message: string, details?: Record<string, number | string | boolean>): void
}

export interface I8237Options {
  /** Report page-boundary wraps and other misprogramming as guest errors (default true). */
  readonly strict?: boolean
  /** Bus time of one transfer cycle (default 1000 ns: ~1 MB/s 8-bit ISA DMA). */
  readonly cycleNs?: number
  /** Bus acquisition per grant, HRQ -> HLDA and back (default 250 ns). */
  readonly holdNs?: number
  /** Transparent DMA: only bus cycles the CPU leaves free, no stall (default false). */
  readonly transparent?: boolean
}

/** One channel's registers. */
export interface I8237Channel {
  baseAddr: number
  baseCount: number
  curAddr: number
  curCount: number
  page: number
  mode: number
  masked: boolean
}

/** What one readMemory/writeMemory call did. */
export interface I8237Transfer {
  /** Bytes handed to (or taken from) the device. */
  readonly bytes: number
  /** Whether terminal count was reached. */
  readonly tc: boolean
}

const NO_TRANSFER: I8237Transfer = { bytes: 0, tc: false }

class Controller {
  readonly ch: I8237Channel[] = []
  command = 0
  /** TC bits 3:0 (cleared on status read); request bits 7:4 are computed. */
  status = 0
  /** Software requests (request register). */
  swRequest = 0
  flipFlop = false
  constructor() {
    for (let i = 0; i < 4; i++) this.ch.push({ baseAddr: 0, baseCount: 0, curAddr: 0, curCount: 0, page: 0, mode: 0, masked: true })
  }
  reset(): void {
    this.command = 0
    this.status = 0
    this.swRequest = 0
    this.flipFlop = false
    for (const c of this.ch) c.masked = true
  }
}

export class I8237 {
  readonly strict: boolean
  readonly cycleNs: number
  readonly holdNs: number
  readonly transparent: boolean
  /** Units and bytes moved, bus grants, bus time held (ns), terminal counts, page wraps. */
  readonly stats = { units: 0, bytes: 0, grants: 0, holdNs: 0, tcs: 0, wraps: 0 }
  readonly #c = [new Controller(), new Controller()]
  /** Devices holding DREQ, by channel bit. */
  #dreq = 0
  /** Channels whose page wrap was already reported (one report per programming). */
  #wrapped = 0
  #host: I8237Host | null = null

  constructor(opts: I8237Options = {}) {
    this.reset()
    const num = (name: string, v: number | undefined, d: number): number => {
      const x = v ?? d
      if (!Number.isFinite(x) || x < 0) throw new RangeError(`i8237: ${name} must be a non-negative number, got ${x}`)
      return x
    }
    this.strict = opts.strict ?? true
    this.cycleNs = num('cycleNs', opts.cycleNs, 1000)
    this.holdNs = num('holdNs', opts.holdNs, 250)
    this.transparent = opts.transparent ?? false
  }

  /** Connects the controller to its board. */
  attach(host: I8237Host): void {
    this.#host = host
  }

  /** A copy of channel n's registers (for tests and the datasheet). */
  channel(n: number): Readonly<I8237Channel> {
    const { c, i } = this.#sel(n)
    return { ...c.ch[i]! }
  }

  /** Whether port is one of the controller pair's (DMA1, DMA2 or a page register). */
  decodes(port: number): boolean {
    return port < 0x10 || (port >= 0xc0 && port < 0xe0) || (port >= 0x80 && port < 0x90)
  }

  /**
   * Power-on: master clear of both controllers, then what the PC firmware does — channel 4 in
   * cascade mode and unmasked, so DMA1's requests reach the CPU through DMA2.
   */
  reset(): void {
    for (const c of this.#c) c.reset()
    this.#dreq = 0
    this.#wrapped = 0
    const cascade = this.#c[1]!.ch[0]!
    cascade.mode = DMA_MODE_CASCADE
    cascade.masked = false
  }

  ioRead(port: number): number {
    if (port >= 0x80 && port < 0x90) {
      const n = DMA_PAGE_PORTS.indexOf(port)
      return n < 0 ? 0xff : this.#sel(n).c.ch[n & 3]!.page
    }
    const { c, k, reg } = this.#decode(port)
    if (reg < 8) {
      const ch = c.ch[reg >> 1]!
      const v = (reg & 1) === 0 ? ch.curAddr : ch.curCount
      const byte = c.flipFlop ? v >> 8 : v & 0xff
      c.flipFlop = !c.flipFlop
      return byte & 0xff
    }
    if (reg === I8237_REG_CMD) {
      // Status: TC bits (cleared by this read) and request bits (DREQ or software request).
      const req = ((this.#dreq >> (4 * k)) | c.swRequest) & 0x0f
      const v = (c.status & DMA_STAT_TC_MASK) | (req << DMA_STAT_REQ_SHIFT)
      c.status &= ~DMA_STAT_TC_MASK
      return v
    }
    if (reg === I8237_REG_RESET) return 0 // temporary register: only memory-to-memory uses it
    return 0xff // write-only registers read as the floating bus (QEMU returns 0)
  }

  ioWrite(port: number, value: number): void {
    value &= 0xff
    if (port >= 0x80 && port < 0x90) {
      const n = DMA_PAGE_PORTS.indexOf(port)
      if (n >= 0) this.#sel(n).c.ch[n & 3]!.page = value
      return
    }
    const { c, k, reg } = this.#decode(port)
    if (reg < 8) {
      const i = reg >> 1
      const ch = c.ch[i]!
      const addr = (reg & 1) === 0
      const old = addr ? ch.baseAddr : ch.baseCount
      const v = c.flipFlop ? (old & 0x00ff) | (value << 8) : (old & 0xff00) | value
      c.flipFlop = !c.flipFlop
      if (addr) ch.baseAddr = ch.curAddr = v
      else ch.baseCount = ch.curCount = v
      this.#wrapped &= ~(1 << (4 * k + i))
      return
    }
    switch (reg) {
      case I8237_REG_CMD:
        if ((value & DMA_CMD_NOT_SUPPORTED) !== 0) {
          const what = (value & DMA_CMD_MEM_TO_MEM) !== 0 ? 'memory-to-memory transfers' : 'timing options'
          this.#guest(`DMA${k + 1} command 0x${value.toString(16)}: ${what} are not supported`, { command: value })
        }
        c.command = value
        return
      case I8237_REG_REQ: {
        const bit = 1 << (value & 3)
        c.swRequest = (value & 4) !== 0 ? c.swRequest | bit : c.swRequest & ~bit
        return
      }
      case I8237_REG_MASK:
        c.ch[value & 3]!.masked = (value & 4) !== 0
        return
      case I8237_REG_MODE: {
        const i = value & 3
        if ((value & DMA_MODE_TYPE_MASK) === DMA_MODE_TYPE_ILLEGAL && (value & DMA_MODE_SEL_MASK) !== DMA_MODE_CASCADE) {
          this.#guest(`channel ${4 * k + i}: mode 0x${value.toString(16)} has the illegal transfer type 11`, { channel: 4 * k + i, mode: value })
        }
        c.ch[i]!.mode = value
        return
      }
      case I8237_REG_CLEAR_FF:
        c.flipFlop = false
        return
      case I8237_REG_RESET:
        c.reset()
        return
      case I8237_REG_CLR_MASK:
        for (const ch of c.ch) ch.masked = false
        return
      case I8237_REG_MASK_ALL:
        for (let i = 0; i < 4; i++) c.ch[i]!.masked = (value & (1 << i)) !== 0
        return
    }
  }

  // ------------------------------------------------------------------ the device side

  /** A device asserts (or drops) DREQ on channel n (shown in the status register's request bits). */
  setDreq(n: number, on: boolean): void {
    this.#sel(n)
    this.#dreq = on ? this.#dreq | (1 << n) : this.#dreq & ~(1 << n)
  }

  /** Whether channel n would service a request now: unmasked, its controller enabled (and DMA1 cascaded). */
  ready(n: number): boolean {
    const { c, i, k } = this.#sel(n)
    if (c.ch[i]!.masked || (c.command & DMA_CMD_DISABLE) !== 0) return false
    if (k === 0) {
      const c2 = this.#c[1]!
      if (c2.ch[0]!.masked || (c2.command & DMA_CMD_DISABLE) !== 0) return false
    }
    return n !== I8237_CASCADE_CHANNEL
  }

  /**
   * Memory -> device ("read" transfer type): the device on channel n, holding DREQ, can take up
   * to `room` bytes now into into[0..]. Returns the bytes delivered and whether TC was reached.
   */
  readMemory(n: number, into: Uint8Array, room = into.length): I8237Transfer {
    return this.#transfer(n, into, Math.min(room, into.length), false)
  }

  /** Device -> memory ("write" transfer type): the device gives up to len bytes of from. */
  writeMemory(n: number, from: Uint8Array, len = from.length): I8237Transfer {
    return this.#transfer(n, from, Math.min(len, from.length), true)
  }

  #transfer(n: number, buf: Uint8Array, room: number, toMemory: boolean): I8237Transfer {
    if (!this.ready(n) || room <= 0) return NO_TRANSFER
    // Transparent DMA: the controller gets the bus only in cycles the CPU does not use.
    if (this.transparent && this.#host !== null && !this.#host.cpuIdle()) return NO_TRANSFER
    const { c, i, k } = this.#sel(n)
    const ch = c.ch[i]!
    const sel = ch.mode & DMA_MODE_SEL_MASK
    const type = ch.mode & DMA_MODE_TYPE_MASK
    if (sel === DMA_MODE_CASCADE) {
      this.#guest(`channel ${n}: DREQ on a channel in cascade mode (no device may use it)`, { channel: n, mode: ch.mode })
      return NO_TRANSFER
    }
    const want = toMemory ? DMA_MODE_TYPE_WRITE : DMA_MODE_TYPE_READ
    if (type !== want && type !== DMA_MODE_VERIFY) {
      const dir = toMemory ? 'device -> memory (write, 0x04)' : 'memory -> device (read, 0x08)'
      this.#guest(`channel ${n}: mode 0x${ch.mode.toString(16)} has transfer type ${(type >> 2).toString(2).padStart(2, '0')}, the device transfers ${dir}`, { channel: n, mode: ch.mode })
      return NO_TRANSFER
    }
    const unit = k === 0 ? 1 : 2
    const remaining = ch.curCount + 1 // the count register holds n - 1
    const roomUnits = Math.floor(room / unit)
    // Single and demand modes move what the device can take; block mode runs to terminal count.
    // A device that cannot take a whole block is misprogrammed for block mode: reported, and then
    // (as QEMU, where the device's transfer handler decides how much moves) only what it takes moves.
    if (sel === DMA_MODE_BLOCK && remaining > roomUnits) {
      this.#guest(`channel ${n}: block mode would move ${remaining} units to terminal count but the device takes only ${roomUnits}`, { channel: n, units: remaining, room: roomUnits })
    }
    const units = Math.min(roomUnits, remaining)
    if (units === 0) return NO_TRANSFER
    const delivered = units
    const verify = type === DMA_MODE_VERIFY
    const dec = (ch.mode & DMA_MODE_DECREMENT) !== 0
    const host = this.#host
    let addr = ch.curAddr
    const pageBase = k === 0 ? ch.page << 16 : (ch.page & 0xfe) << 16
    let wrapped = false
    for (let u = 0; u < units; ) {
      // A run of consecutive units up to the end of the page (or its start, decrementing).
      const run = Math.min(units - u, dec ? addr + 1 : 0x10000 - addr)
      const first = dec ? addr - run + 1 : addr
      const bus = pageBase + first * unit
      const lo = Math.max(0, Math.min(run, delivered - u))
      if (!verify && lo > 0 && host !== null) {
        const bytes = lo * unit
        // The result is not checked: the bus (or the IOMMU) already reported a failed access, and
        // the 8237 has no error status; the cycle completes with what the bus returned, as on ISA.
        // A decrementing run visits its addresses high to low: read it, then reverse it.
        if (dec) {
          const tmp = new Uint8Array(bytes)
          if (toMemory) {
            for (let j = 0; j < lo; j++) for (let b = 0; b < unit; b++) tmp[(lo - 1 - j) * unit + b] = buf[(u + j) * unit + b]!
            host.dmaWrite(bus + (run - lo) * unit, tmp, 0, bytes)
          } else {
            host.dmaRead(bus + (run - lo) * unit, tmp, 0, bytes)
            for (let j = 0; j < lo; j++) for (let b = 0; b < unit; b++) buf[(u + j) * unit + b] = tmp[(lo - 1 - j) * unit + b]!
          }
        } else if (toMemory) host.dmaWrite(bus, buf, u * unit, bytes)
        else host.dmaRead(bus, buf, u * unit, bytes)
      }
      u += run
      const hitEnd = dec ? first === 0 : first + run === 0x10000
      addr = dec ? (first - 1 + 0x10000) & 0xffff : (first + run) & 0xffff
      if (hitEnd && u < remaining) wrapped = true
    }
    if (wrapped) {
      this.stats.wraps++
      const bit = 1 << n
      if (this.strict && (this.#wrapped & bit) === 0) {
        this.#wrapped |= bit
        const size = k === 0 ? '64 KiB' : '128 KiB'
        this.#guest(`channel ${n}: transfer at 0x${(pageBase + ch.curAddr * unit).toString(16)} crosses a ${size} boundary: the address wraps to the start of page 0x${ch.page.toString(16)} (the page register does not carry)`, { channel: n, page: ch.page, addr: ch.curAddr, count: ch.curCount })
      }
    }
    ch.curAddr = addr
    const tc = units === remaining
    ch.curCount = (ch.curCount - units) & 0xffff // 0xffff after terminal count
    this.#stall(sel, units)
    this.stats.units += units
    this.stats.bytes += delivered * unit
    if (tc) {
      this.stats.tcs++
      c.status |= 1 << i
      c.swRequest &= ~(1 << i)
      if ((ch.mode & DMA_AUTOINIT) !== 0) {
        ch.curAddr = ch.baseAddr
        ch.curCount = ch.baseCount
      } else ch.masked = true
    }
    return { bytes: delivered * unit, tc }
  }

  #stall(sel: number, units: number): void {
    const grants = sel === DMA_MODE_SINGLE ? units : 1
    const ns = grants * this.holdNs + units * this.cycleNs
    this.stats.grants += grants
    this.stats.holdNs += ns
    if (!this.transparent) this.#host?.stallCpu(ns)
  }

  #sel(n: number): { c: Controller; k: number; i: number } {
    if (!Number.isInteger(n) || n < 0 || n >= 8) throw new RangeError(`i8237: no DMA channel ${n}`)
    return { c: this.#c[n >> 2]!, k: n >> 2, i: n & 3 }
  }

  #decode(port: number): { c: Controller; k: number; reg: number } {
    if (port < 0x10) return { c: this.#c[0]!, k: 0, reg: port }
    if (port >= 0xc0 && port < 0xe0) return { c: this.#c[1]!, k: 1, reg: (port - 0xc0) >> 1 }
    throw new RangeError(`i8237: port 0x${port.toString(16)} is not a DMA controller port`)
  }

  #guest(message: string, details?: Record<string, number | string | boolean>): void {
    this.#host?.guestError(message, details)
  }
}

export { DMA_MODE_DEMAND, DMA_MODE_SINGLE, DMA_MODE_BLOCK, DMA_MODE_CASCADE }
