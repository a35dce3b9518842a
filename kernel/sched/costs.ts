/**
 * The cost model: how much virtual time CPU work takes (all of it charged: kernel/system.ts
 * cpuWork, from the accessors, kernel/io.ts, kernel/dma/core.ts, kernel/irq/manage.ts and the
 * scheduler). Every kernel call, CPU access, copied
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

/*
 * The MMIO and IRQ figures are those of an embedded arm64 SoC (the default platform is a
 * non-coherent one, as i.MX8-, RK3399- or BCM2711-class SoCs are) with a PCIe device; the
 * PIO-vs-DMA experiment (docs/experiments/pio-vs-dma.md) explains them:
 * - mmioWriteNs 5 (was 100): a write is posted: the CPU hands it to its write buffer and goes on,
 *   it never waits for the device (a 4-byte write TLP takes ~7 ns of a PCIe 3.0 x4 link, so a
 *   CPU loop of writes is not link-bound). 100 ns was a round-trip figure, which only a read pays;
 * - mmioReadNs 1500 (was 800): a non-posted read stalls the core for the whole round trip
 *   through the root complex, 1-2 µs on such SoCs;
 * - irqEntryNs 1500 / irqExitNs 1000 (were 600 / 300): exception entry, the GIC acknowledge,
 *   irq_enter and the flow handler; EOI, irq_exit, pending softirqs and the return.
 */
export const DEFAULT_COSTS: Readonly<Costs> = {
  kernelCallNs: 5,
  memAccessNs: 2,
  copyBytesPerNs: 8,
  cacheLineOpNs: 2,
  mmioReadNs: 1500,
  mmioWriteNs: 5,
  irqEntryNs: 1500,
  irqExitNs: 1000,
  contextSwitchNs: 1200,
}

export const COST_KEYS = Object.keys(DEFAULT_COSTS) as (keyof Costs)[]
