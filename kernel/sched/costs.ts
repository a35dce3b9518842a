/**
 * The cost model: how much virtual time CPU work takes. Every kernel call, CPU access, copied
 * byte, cache line maintained, MMIO access, interrupt entry and exit and context switch advances
 * the clock, so CPU busy time (against idle time) and DMA-versus-PIO trade-offs can be measured.
 * Defaults are round figures for a ~2 GHz arm64 core on a PCIe device; `boot({ costs })` overrides.
 */

export interface Costs {
  /** Entering any kernel API function. */
  kernelCallNs: number
  /** One CPU load or store through an accessor (mem_read*, mem_write*, struct fields). */
  memAccessNs: number
  /** CPU copy bandwidth for memcpy, memset and bulk byte copies (bytes per ns). */
  copyBytesPerNs: number
  /** Each cache line visited by cache maintenance (dc cvac / dc ivac). */
  cacheLineOpNs: number
  /** A non-posted MMIO read: a round trip to the device. */
  mmioReadNs: number
  /** A posted MMIO write. */
  mmioWriteNs: number
  /** Taking an interrupt (exception entry, irq_enter, the flow handler). */
  irqEntryNs: number
  /** Returning from an interrupt. */
  irqExitNs: number
  /** Switching between tasks. */
  contextSwitchNs: number
}

export const DEFAULT_COSTS: Readonly<Costs> = {
  kernelCallNs: 5,
  memAccessNs: 2,
  copyBytesPerNs: 8,
  cacheLineOpNs: 2,
  mmioReadNs: 800,
  mmioWriteNs: 100,
  irqEntryNs: 600,
  irqExitNs: 300,
  contextSwitchNs: 1200,
}

export const COST_KEYS = Object.keys(DEFAULT_COSTS) as (keyof Costs)[]
