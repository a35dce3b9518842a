/**
 * The emulated hardware: the machine (RAM, cache, IOMMU, interrupt controller, DMA ports), the
 * device framework (register files, tracer, fault injector), the PCI bus and functions, and the
 * devices. Nothing here knows about the kernel or drivers.
 */
export * from './machine/rng.js'
export * from './machine/clock.js'
export * from './machine/ram.js'
export * from './machine/cache.js'
export * from './machine/store-buffer.js'
export * from './machine/iommu.js'
export * from './machine/dma-port.js'
export * from './machine/intc.js'
export * from './machine/machine.js'
export * from './framework/regfile.js'
export * from './framework/tracer.js'
export * from './framework/faults.js'
export * from './pci/regs.js'
export * from './pci/config.js'
export * from './pci/msix.js'
export * from './pci/function.js'
export * from './pci/bus.js'
export * from './copy-engine-regs.js'
export * from './copy-engine.js'
export * from './net/ether.js'
export * from './net/wire.js'
export * from './net/peer.js'
export * from './net/tnic-regs.js'
export * from './net/tnic.js'
