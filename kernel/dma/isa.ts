/**
 * ISA (third-party) DMA: Linux's kernel/dma.c (`request_dma` / `free_dma`, the channel table) and
 * arch/x86/include/asm/dma.h (`claim_dma_lock`, `enable_dma`, `clear_dma_ff`, `set_dma_mode`,
 * `set_dma_addr`, `set_dma_count`, `get_dma_residue`, ...), programming the PC's 8237 pair
 * (devices/isa/i8237.ts, datasheet docs/devices/i8237.md).
 *
 * On x86 these helpers are `outb` to fixed I/O ports. The emulated CPU has no port I/O, so the
 * kernel reaches the ports through BAR 0 of the system's PCI-to-ISA bridge (class 0x060100), at
 * the ports' offsets: its own accesses, like arch port I/O, needing no pci_iomap (they cost what
 * an MMIO access costs and order earlier stores as a non-relaxed write does). The ISA device's own
 * ports (a Sound Blaster's DSP at 0x220) are the driver's: it maps the bridge's BAR 0 with
 * pci_iomap and uses ioread8/iowrite8 at the port offsets.
 *
 * As in Linux, the helpers do not take the DMA lock themselves: the caller holds
 * claim_dma_lock() around a programming sequence, and clears the byte-pointer flip-flop
 * (clear_dma_ff) before the two-byte address and count writes. A buffer for an ISA channel must
 * lie below 16 MiB and not cross a 64 KiB (channels 0-3) or 128 KiB (5-7) boundary: set a 24-bit
 * DMA mask (`dma_set_mask_and_coherent(dev, DMA_BIT_MASK(24))`) and take it from
 * dma_alloc_coherent, whose size-aligned allocation never crosses a boundary its size fits in.
 */

import { EBUSY, EINVAL, ENODEV } from '../errno.js'
import { badArg } from '../mm/memory.js'
import { hex } from '../mm/layout.js'
import { pciFunction, type PciDev } from '../pci/pci.js'
import { current, type Task } from '../sched/current.js'
import { spin_lock_init, spin_lock_irqsave, spin_unlock_irqrestore, type SpinLock } from '../locking/spinlock.js'
import type { System } from '../system.js'
import type { DmaAddr } from '../types.js'

/** Channels of the two cascaded controllers (0-3 8-bit, 4 cascade, 5-7 16-bit). */
export const MAX_DMA_CHANNELS = 8
/** Highest address ISA DMA reaches, as a physical (bus) address: 16 MiB. */
export const MAX_DMA_ADDRESS = 0x100_0000

/* 8237 DMA controllers: ports (asm/dma.h) */
export const IO_DMA1_BASE = 0x00
export const IO_DMA2_BASE = 0xc0
export const DMA1_CMD_REG = 0x08
export const DMA1_STAT_REG = 0x08
export const DMA1_REQ_REG = 0x09
export const DMA1_MASK_REG = 0x0a
export const DMA1_MODE_REG = 0x0b
export const DMA1_CLEAR_FF_REG = 0x0c
export const DMA1_TEMP_REG = 0x0d
export const DMA1_RESET_REG = 0x0d
export const DMA1_CLR_MASK_REG = 0x0e
export const DMA1_MASK_ALL_REG = 0x0f
export const DMA2_CMD_REG = 0xd0
export const DMA2_STAT_REG = 0xd0
export const DMA2_REQ_REG = 0xd2
export const DMA2_MASK_REG = 0xd4
export const DMA2_MODE_REG = 0xd6
export const DMA2_CLEAR_FF_REG = 0xd8
export const DMA2_TEMP_REG = 0xda
export const DMA2_RESET_REG = 0xda
export const DMA2_CLR_MASK_REG = 0xdc
export const DMA2_MASK_ALL_REG = 0xde
export const DMA_ADDR_0 = 0x00
export const DMA_ADDR_1 = 0x02
export const DMA_ADDR_2 = 0x04
export const DMA_ADDR_3 = 0x06
export const DMA_ADDR_4 = 0xc0
export const DMA_ADDR_5 = 0xc4
export const DMA_ADDR_6 = 0xc8
export const DMA_ADDR_7 = 0xcc
export const DMA_CNT_0 = 0x01
export const DMA_CNT_1 = 0x03
export const DMA_CNT_2 = 0x05
export const DMA_CNT_3 = 0x07
export const DMA_CNT_4 = 0xc2
export const DMA_CNT_5 = 0xc6
export const DMA_CNT_6 = 0xca
export const DMA_CNT_7 = 0xce
export const DMA_PAGE_0 = 0x87
export const DMA_PAGE_1 = 0x83
export const DMA_PAGE_2 = 0x81
export const DMA_PAGE_3 = 0x82
export const DMA_PAGE_5 = 0x8b
export const DMA_PAGE_6 = 0x89
export const DMA_PAGE_7 = 0x8a

/** "I/O to memory, no autoinit, increment, single mode" (device -> memory: recording). */
export const DMA_MODE_READ = 0x44
/** "memory to I/O, no autoinit, increment, single mode" (memory -> device: playback). */
export const DMA_MODE_WRITE = 0x48
/** Pass through DREQ -> HRQ, DACK <- HLDA only. */
export const DMA_MODE_CASCADE = 0xc0
/** Auto-initialise: at terminal count the controller reloads address and count. */
export const DMA_AUTOINIT = 0x10
/* The mode field's other values (bits 7:6), for drivers that choose one (8237A data sheet). */
export const DMA_MODE_DEMAND = 0x00
export const DMA_MODE_SINGLE = 0x40
export const DMA_MODE_BLOCK = 0x80

const ADDR_PORTS = [DMA_ADDR_0, DMA_ADDR_1, DMA_ADDR_2, DMA_ADDR_3, DMA_ADDR_4, DMA_ADDR_5, DMA_ADDR_6, DMA_ADDR_7]
const CNT_PORTS = [DMA_CNT_0, DMA_CNT_1, DMA_CNT_2, DMA_CNT_3, DMA_CNT_4, DMA_CNT_5, DMA_CNT_6, DMA_CNT_7]
const PAGE_PORTS = [DMA_PAGE_0, DMA_PAGE_1, DMA_PAGE_2, DMA_PAGE_3, 0x8f, DMA_PAGE_5, DMA_PAGE_6, DMA_PAGE_7]

/** PCI class of a PCI-to-ISA bridge (the one whose BAR 0 holds the legacy ports). */
const PCI_CLASS_BRIDGE_ISA = 0x060100

interface IsaState {
  /** The channel table of kernel/dma.c: owner name, or null; channel 4 is the cascade. */
  readonly chans: (string | null)[]
  readonly lock: SpinLock
}

const states = new WeakMap<object, IsaState>()

function sysOf(t: Task): System {
  return t.sys as System
}

function stateOf(t: Task): IsaState {
  let s = states.get(t.sys)
  if (s === undefined) {
    const chans: (string | null)[] = Array.from({ length: MAX_DMA_CHANNELS }, () => null)
    chans[4] = 'cascade'
    s = { chans, lock: spin_lock_init() }
    states.set(t.sys, s)
  }
  return s
}

function bridge(t: Task): PciDev | undefined {
  return sysOf(t).pciDevices.find((p) => pciFunction(p).classCode === PCI_CLASS_BRIDGE_ISA)
}

function checkChan(t: Task, fn: string, dmanr: unknown): number {
  if (typeof dmanr !== 'number' || !Number.isInteger(dmanr) || dmanr < 0 || dmanr >= MAX_DMA_CHANNELS) badArg(t, fn, 'dmanr', `must be a DMA channel 0..7, got ${String(dmanr)}`)
  return dmanr
}

function portOf(t: Task, fn: string): PciDev {
  const b = bridge(t)
  if (b === undefined) return sysOf(t).oops(t, `${fn}(): no ISA DMA controller (no PCI-to-ISA bridge on this system)`)
  return b
}

function outb(t: Task, fn: string, value: number, port: number): void {
  const b = portOf(t, fn)
  const sys = sysOf(t)
  // Port writes are not posted past earlier stores (outb is serialising on x86).
  sys.machine.storeBuffer.drain()
  sys.ordering.mmioWrite(b.dev, false)
  sys.cpuWork(sys.costs.mmioWriteNs)
  pciFunction(b).mmioWrite(0, port, 1, value & 0xff)
  sys.kernelCall(t)
}

function inb(t: Task, fn: string, port: number): number {
  const b = portOf(t, fn)
  const sys = sysOf(t)
  sys.cpuWork(sys.costs.mmioReadNs)
  const v = pciFunction(b).mmioRead(0, port, 1) as number
  sys.ordering.readBarrier()
  sys.kernelCall(t)
  return v
}

/** `dma_outb` (outb_p): a byte to an 8237 or page-register port. */
export function dma_outb(value: number, port: number): void {
  const t = current('dma_outb')
  if (typeof value !== 'number' || !Number.isInteger(value)) badArg(t, 'dma_outb', 'value', `must be a byte, got ${String(value)}`)
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xff) badArg(t, 'dma_outb', 'port', `must be a DMA controller port 0x00..0xff, got ${String(port)}`)
  outb(t, 'dma_outb', value, port)
}

/** `dma_inb` (inb_p): a byte from an 8237 or page-register port. */
export function dma_inb(port: number): number {
  const t = current('dma_inb')
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 0xff) badArg(t, 'dma_inb', 'port', `must be a DMA controller port 0x00..0xff, got ${String(port)}`)
  return inb(t, 'dma_inb', port)
}

/**
 * `request_dma(dmanr, device_id)` (kernel/dma.c): reserves a channel. Returns 0, -EINVAL for a
 * channel that does not exist, -EBUSY when it is taken (channel 4 always is: the cascade), or
 * -ENODEV when the system has no ISA DMA controller.
 */
export function request_dma(dmanr: number, device_id: string): number {
  const t = current('request_dma')
  if (typeof dmanr !== 'number' || !Number.isInteger(dmanr) || dmanr < 0 || dmanr >= MAX_DMA_CHANNELS) return -EINVAL
  if (typeof device_id !== 'string' || device_id === '') badArg(t, 'request_dma', 'device_id', 'must be a non-empty name')
  if (bridge(t) === undefined) return -ENODEV
  const s = stateOf(t)
  if (s.chans[dmanr] !== null) return -EBUSY
  s.chans[dmanr] = device_id
  return 0
}

/** `free_dma(dmanr)`: releases a channel request_dma reserved (Linux warns on a free one). */
export function free_dma(dmanr: number): void {
  const t = current('free_dma')
  const n = checkChan(t, 'free_dma', dmanr)
  const s = stateOf(t)
  if (n === 4 || s.chans[n] === null) {
    sysOf(t).logger.warn({}, `Trying to free free DMA${n}`)
    return
  }
  s.chans[n] = null
}

/** Who holds channel dmanr (the name given to request_dma), or null (/proc/dma). */
export function dma_channel_owner(dmanr: number): string | null {
  const t = current('dma_channel_owner')
  return stateOf(t).chans[checkChan(t, 'dma_channel_owner', dmanr)] ?? null
}

/** `claim_dma_lock()`: takes the DMA controllers' spinlock with interrupts off; returns the flags. */
export function claim_dma_lock(): number {
  const t = current('claim_dma_lock')
  return spin_lock_irqsave(stateOf(t).lock)
}

/** `release_dma_lock(flags)`. */
export function release_dma_lock(flags: number): void {
  const t = current('release_dma_lock')
  spin_unlock_irqrestore(stateOf(t).lock, flags)
}

/** `enable_dma(dmanr)`: clears the channel's mask bit (it then answers DREQ). */
export function enable_dma(dmanr: number): void {
  const t = current('enable_dma')
  const n = checkChan(t, 'enable_dma', dmanr)
  if (n <= 3) outb(t, 'enable_dma', n, DMA1_MASK_REG)
  else outb(t, 'enable_dma', n & 3, DMA2_MASK_REG)
}

/** `disable_dma(dmanr)`: sets the channel's mask bit. */
export function disable_dma(dmanr: number): void {
  const t = current('disable_dma')
  const n = checkChan(t, 'disable_dma', dmanr)
  if (n <= 3) outb(t, 'disable_dma', n | 4, DMA1_MASK_REG)
  else outb(t, 'disable_dma', (n & 3) | 4, DMA2_MASK_REG)
}

/**
 * `clear_dma_ff(dmanr)`: clears the controller's byte-pointer flip-flop, so the next access to a
 * 16-bit address or count register is its low byte. Call it (with the DMA lock held) before
 * set_dma_addr, set_dma_count and get_dma_residue.
 */
export function clear_dma_ff(dmanr: number): void {
  const t = current('clear_dma_ff')
  const n = checkChan(t, 'clear_dma_ff', dmanr)
  outb(t, 'clear_dma_ff', 0, n <= 3 ? DMA1_CLEAR_FF_REG : DMA2_CLEAR_FF_REG)
}

/** `set_dma_mode(dmanr, mode)`: DMA_MODE_READ / DMA_MODE_WRITE, | DMA_AUTOINIT, mode bits 7:6. */
export function set_dma_mode(dmanr: number, mode: number): void {
  const t = current('set_dma_mode')
  const n = checkChan(t, 'set_dma_mode', dmanr)
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0xff) badArg(t, 'set_dma_mode', 'mode', `must be a mode byte, got ${String(mode)}`)
  if (n <= 3) outb(t, 'set_dma_mode', mode | n, DMA1_MODE_REG)
  else outb(t, 'set_dma_mode', mode | (n & 3), DMA2_MODE_REG)
}

/** `set_dma_page(dmanr, pagenr)`: address bits 23:16 (bit 16 is ignored on channels 5-7). */
export function set_dma_page(dmanr: number, pagenr: number): void {
  const t = current('set_dma_page')
  const n = checkChan(t, 'set_dma_page', dmanr)
  outb(t, 'set_dma_page', n <= 3 ? pagenr & 0xff : pagenr & 0xfe, PAGE_PORTS[n]!)
}

/**
 * `set_dma_addr(dmanr, a)`: the page register and the 16-bit address (in words on channels 5-7),
 * low byte first through the flip-flop. Only the low 24 bits of `a` reach the controller: an
 * address at or above 16 MiB is a `dma-mask` report (Linux truncates it silently).
 */
export function set_dma_addr(dmanr: number, a: DmaAddr | number): void {
  const t = current('set_dma_addr')
  const n = checkChan(t, 'set_dma_addr', dmanr)
  if (typeof a !== 'number' || !Number.isInteger(a) || a < 0) badArg(t, 'set_dma_addr', 'a', `must be a DMA address, got ${String(a)}`)
  if (a + (n <= 3 ? 1 : 2) > MAX_DMA_ADDRESS) {
    // Linux truncates silently; the controller then reaches an address the driver never mapped.
    const b = portOf(t, 'set_dma_addr')
    sysOf(t).report({
      kind: 'dma-mask',
      device: b.name,
      message: `set_dma_addr(${n}, ${hex(a)}): ISA DMA drives 24 address bits; the channel will use ${hex(a % MAX_DMA_ADDRESS)} instead (set a 24-bit DMA mask: dma_set_mask_and_coherent(dev, DMA_BIT_MASK(24)))`,
      details: { channel: n, bus: a, truncated: a % MAX_DMA_ADDRESS, bits: 24 },
    })
  }
  const page = Math.floor(a / 0x1_0000) & 0xff
  outb(t, 'set_dma_addr', n <= 3 ? page : page & 0xfe, PAGE_PORTS[n]!)
  const w = n <= 3 ? a % 0x1_0000 : Math.floor(a / 2) % 0x1_0000
  outb(t, 'set_dma_addr', w & 0xff, ADDR_PORTS[n]!)
  outb(t, 'set_dma_addr', (w >> 8) & 0xff, ADDR_PORTS[n]!)
}

/**
 * `set_dma_count(dmanr, count)`: the transfer length in bytes (1..65536 on channels 0-3, an even
 * 2..131072 on 5-7), programmed as units - 1, low byte first through the flip-flop.
 */
export function set_dma_count(dmanr: number, count: number): void {
  const t = current('set_dma_count')
  const n = checkChan(t, 'set_dma_count', dmanr)
  const max = n <= 3 ? 0x1_0000 : 0x2_0000
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > max) badArg(t, 'set_dma_count', 'count', `must be 1..${max} bytes, got ${String(count)}`)
  const c = n <= 3 ? count - 1 : (count >> 1) - 1
  outb(t, 'set_dma_count', c & 0xff, CNT_PORTS[n]!)
  outb(t, 'set_dma_count', (c >> 8) & 0xff, CNT_PORTS[n]!)
}

/**
 * `get_dma_residue(dmanr)`: bytes still to transfer (0 after terminal count without auto-init).
 * Assumes the flip-flop is cleared, as Linux's does: call clear_dma_ff first.
 */
export function get_dma_residue(dmanr: number): number {
  const t = current('get_dma_residue')
  const n = checkChan(t, 'get_dma_residue', dmanr)
  const port = CNT_PORTS[n]!
  let count = 1 + inb(t, 'get_dma_residue', port)
  count += inb(t, 'get_dma_residue', port) << 8
  count &= 0xffff // 0xffff + 1: terminal count reached
  return n <= 3 ? count : count << 1
}
