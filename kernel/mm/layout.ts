/**
 * The kernel's virtual memory layout: a linear map of all RAM at PAGE_OFFSET
 * (arch/arm64/include/asm/memory.h: `__va(x) = x - PHYS_OFFSET + PAGE_OFFSET`).
 *
 * Numbers must stay below 2^53, so PAGE_OFFSET is 0x1f000000000000 rather than arm64's
 * 0xffff000000000000; what matters is kept: CPU addresses, physical addresses and IOVAs are in
 * disjoint ranges, so a CPU pointer handed to a device faults.
 */

import type { CpuAddr, PhysAddr } from '../types.js'

export const PAGE_OFFSET = 0x1f_0000_0000_0000
/** Size of the linear map window (64 TiB of physical address space). */
export const LINEAR_MAP_SIZE = 2 ** 46
/** `ZERO_SIZE_PTR`: what kmalloc(0) returns; any access through it faults. */
export const ZERO_SIZE_PTR = 16 as CpuAddr

export function isLinearAddr(p: number): boolean {
  return p >= PAGE_OFFSET && p < PAGE_OFFSET + LINEAR_MAP_SIZE
}

/** `__pa()` without checks. */
export function pa(p: CpuAddr | number): PhysAddr {
  return (p - PAGE_OFFSET) as PhysAddr
}

/** `__va()` without checks. */
export function va(x: PhysAddr | number): CpuAddr {
  return (x + PAGE_OFFSET) as CpuAddr
}

export const hex = (n: number): string => `0x${n.toString(16)}`
