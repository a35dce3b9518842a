/**
 * The emulated hardware: the machine (RAM, cache, IOMMU, DMA ports) and, as they land, the
 * devices. Nothing here knows about the kernel or drivers.
 */
export * from './machine/rng.js'
export * from './machine/clock.js'
export * from './machine/ram.js'
export * from './machine/cache.js'
export * from './machine/iommu.js'
export * from './machine/dma-port.js'
export * from './machine/machine.js'
export * from './framework/regfile.js'
export * from './framework/tracer.js'
export * from './framework/faults.js'
