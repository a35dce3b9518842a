/**
 * The machine: RAM banks, the CPU cache, the IOMMU, the interrupt controller, the PCI bus and the
 * DMA ports of its devices, for one of the supported platforms.
 *
 * Platform facts follow the Linux ports: arm64 and riscv64 are weakly ordered and, by default,
 * not DMA coherent (arch/arm64, arch/riscv select ARCH_HAS_SYNC_DMA_FOR_DEVICE/CPU); x86_64 is TSO
 * and coherent. The default memory map puts one bank below 4 GiB and one above it, as arm64 boards
 * and large x86 machines have, so 32-bit DMA masks and bounce buffering are real.
 */

import { CpuCache, DEFAULT_CACHE_CONFIG, type CacheConfig } from './cache.js'
import { VirtualClock } from './clock.js'
import { DmaPort, type DmaObserver, type DmaPortOptions } from './dma-port.js'
import { InterruptController } from './intc.js'
import { Iommu, type IommuFault, type IommuMode } from './iommu.js'
import { Ram, type RamBank } from './ram.js'
import { Rng } from './rng.js'
import { LoadOrder } from './load-order.js'
import { DoubleFetchWatch } from '../framework/hostile.js'
import { StoreBuffer } from './store-buffer.js'
import { FaultInjector } from '../framework/faults.js'
import { Tracer } from '../framework/tracer.js'
import { PciBus } from '../pci/bus.js'

export type Arch = 'arm64' | 'x86_64' | 'riscv64'

export const ARCHES: readonly Arch[] = ['arm64', 'x86_64', 'riscv64']

export interface PlatformInfo {
  /** Weakly ordered memory model (a store buffer and load reordering are possible). */
  readonly weaklyOrdered: boolean
  /** Whether devices snoop the CPU cache by default. */
  readonly coherentByDefault: boolean
  /** Linux's ARCH_DMA_MINALIGN for the port (the kmalloc minimum alignment). */
  readonly dmaMinAlign: number
}

export const PLATFORMS: Readonly<Record<Arch, PlatformInfo>> = {
  arm64: { weaklyOrdered: true, coherentByDefault: false, dmaMinAlign: 128 },
  riscv64: { weaklyOrdered: true, coherentByDefault: false, dmaMinAlign: 64 },
  x86_64: { weaklyOrdered: false, coherentByDefault: true, dmaMinAlign: 8 },
}

export const DEFAULT_RAM_BANKS: readonly RamBank[] = [
  { name: 'dram0', base: 0x4000_0000, size: 0x8000_0000 }, // 2 GiB at 1 GiB (below 4 GiB)
  { name: 'dram1', base: 0x8_0000_0000, size: 0x4_0000_0000 }, // 16 GiB at 32 GiB (above 4 GiB)
]

/**
 * The CPU side of bus arbitration, installed by the kernel. A third-party DMA controller (the
 * 8237) takes the memory bus away from the CPU (HOLD/HLDA) while it moves data: `stall(ns)` says
 * the bus was held for ns now (a CPU that is running stalls that long; an idle one loses
 * nothing), `idle()` whether the CPU is idle now (a transparent-mode controller uses only such
 * cycles).
 */
export interface CpuBusArbiter {
  stall(ns: number): void
  idle(): boolean
}

export interface MachineConfig {
  readonly arch: Arch
  readonly coherent: boolean
  readonly seed: number
  readonly iommu: IommuMode
  readonly cache?: CacheConfig
  readonly banks?: readonly RamBank[]
}

export class Machine {
  readonly arch: Arch
  readonly platform: PlatformInfo
  /** Whether devices snoop the CPU cache (the platform default unless overridden at boot). */
  readonly coherent: boolean
  readonly rng: Rng
  readonly ram: Ram
  readonly cache: CpuCache
  /** The CPU's store buffer for non-cacheable memory (weakly ordered platforms buffer; TSO does not). */
  readonly storeBuffer: StoreBuffer
  /** Load-load reordering of CPU loads of non-cacheable memory (weakly ordered platforms). */
  readonly loadOrder: LoadOrder
  readonly iommu: Iommu
  /** Virtual time (ns) and the event queue every device and the kernel schedule on. */
  readonly clock = new VirtualClock()
  /** MMIO, DMA, IRQ, guest-error and fault events (virtual time only). */
  readonly tracer = new Tracer(this.clock)
  /** INTx lines and MSI vectors. */
  readonly intc = new InterruptController(this.clock, this.tracer)
  /** Declarative fault rules every device consults. */
  readonly faults = new FaultInjector(this.tracer)
  /** The PCI bus devices are plugged into. */
  readonly pci: PciBus
  /** Called when a device rejects what the guest programmed (QEMU's LOG_GUEST_ERROR). */
  onGuestError: ((device: string, message: string, details?: Record<string, number | string | boolean>) => void) | null = null
  /** The CPU's bus arbitration (kernel-installed; null: holding the bus costs the CPU nothing). */
  cpuBus: CpuBusArbiter | null = null
  /** Bus time third-party DMA held the bus (ns), whether or not the CPU was running then. */
  busHoldNs = 0
  /** Every IOMMU fault so far (the IOMMU's fault queue). */
  readonly iommuFaults: IommuFault[] = []
  /** The kernel's view of device accesses, installed at boot. */
  observer: DmaObserver | null = null
  /** Fields hostile devices rewrite between two CPU loads (devices/framework/hostile.ts). */
  readonly doubleFetch = new DoubleFetchWatch((fn) => void this.clock.schedule(this.clock.now, fn))
  readonly #ports = new Map<string, DmaPort>()

  constructor(config: MachineConfig) {
    this.arch = config.arch
    this.platform = PLATFORMS[config.arch]
    this.coherent = config.coherent
    this.rng = new Rng(config.seed)
    this.ram = new Ram(config.banks ?? DEFAULT_RAM_BANKS)
    this.cache = new CpuCache(this.ram, this.rng.fork(), config.cache ?? DEFAULT_CACHE_CONFIG)
    this.storeBuffer = new StoreBuffer(this.ram, this.rng.fork(), this.platform.weaklyOrdered)
    this.cache.storeBuffer = this.storeBuffer
    // Its own stream, derived from the seed without drawing from the machine's (which would move
    // every later draw of every existing seed).
    this.loadOrder = new LoadOrder(this.ram, new Rng((config.seed % 0x1_0000_0000) * 0x20_0000 + 0x10ad), this.platform.weaklyOrdered)
    this.cache.loadOrder = this.loadOrder
    this.iommu = new Iommu(config.iommu)
    this.pci = new PciBus(this)
  }

  /** A third-party DMA controller held the memory bus for ns now: the CPU stalls if it is running. */
  stallCpu(ns: number): void {
    if (!(ns > 0)) return
    this.busHoldNs += ns
    this.cpuBus?.stall(ns)
  }

  /** Whether the CPU is idle now (true without a kernel: nobody competes for the bus). */
  cpuIdle(): boolean {
    return this.cpuBus?.idle() ?? true
  }

  /** Creates the DMA port of a new bus master; names are unique per machine. */
  createDmaPort(name: string, options: Partial<DmaPortOptions> = {}): DmaPort {
    if (this.#ports.has(name)) throw new RangeError(`a device named '${name}' already exists`)
    const port = new DmaPort(this, name, {
      addressBits: options.addressBits ?? 64,
      coherent: options.coherent ?? this.coherent,
    })
    this.#ports.set(name, port)
    return port
  }

  /** Removes a port (hot-unplug); its name may be reused. */
  removeDmaPort(port: DmaPort): void {
    this.#ports.delete(port.name)
  }

  get ports(): readonly DmaPort[] {
    return [...this.#ports.values()]
  }
}
