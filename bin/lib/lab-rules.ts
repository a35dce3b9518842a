/**
 * One line per report kind for `dmalab lab check`: the rule the report says was broken and the
 * fix, condensed from the "Means" and "Fix" paragraphs of docs/reports.md.
 */
import type { ReportKind } from '../../kernel/index.js'

export interface RuleText {
  readonly rule: string
  readonly fix: string
}

export const RULES: Readonly<Record<ReportKind, RuleText>> = {
  'cpu-access-device-owned': {
    rule: 'the CPU touched a streaming buffer the device owns (between map/sync_for_device and unmap/sync_for_cpu)',
    fix: 'write before dma_map_*(); read only after dma_unmap_*() or dma_sync_*_for_cpu()',
  },
  'device-access-cpu-owned': {
    rule: 'the device read or wrote a buffer the CPU owns (after sync_for_cpu, before sync_for_device)',
    fix: 'call dma_sync_*_for_device() before the device may touch the buffer again',
  },
  'device-write-to-device-mapping': {
    rule: 'the device wrote a buffer mapped DMA_TO_DEVICE, which promises it only reads it (wrong direction)',
    fix: 'map a buffer the device writes DMA_FROM_DEVICE (or DMA_BIDIRECTIONAL), and unmap/sync with the same direction',
  },
  'cacheline-shared': {
    rule: 'the CPU dirtied a cache line shared with a live device-writable mapping (a DMA buffer embedded in a struct)',
    fix: 'give each device-writable buffer cache lines of its own (a separate kmalloc), or do not write its neighbours while it is mapped',
  },
  'map-error-unchecked': {
    rule: 'a dma_map_*() address was used before dma_mapping_error() checked it: a failed mapping becomes a wild DMA',
    fix: 'if (dma_mapping_error(dev, dma)) { free, return -ENOMEM } right after each map',
  },
  'unmap-unknown': { rule: 'dma_unmap_*() of an address this device has no mapping at (unmapped twice, or never mapped)', fix: 'unmap each mapping exactly once, with the address the map returned' },
  'unmap-size-mismatch': { rule: 'dma_unmap_*() with a size other than the mapped one', fix: 'unmap with the mapped size: store it with the address' },
  'unmap-direction-mismatch': { rule: 'dma_unmap_*() with a direction other than the mapped one', fix: 'unmap with the direction of the map' },
  'unmap-type-mismatch': { rule: 'memory released with the unmap/free function of another kind of mapping', fix: 'dma_free_coherent() for coherent memory, dma_unmap_single() for single mappings, dma_unmap_sg() for lists' },
  'sync-unmapped': { rule: 'dma_sync_*() on a range that is not inside a live mapping', fix: 'sync only between map and unmap, with an address inside the mapping' },
  'sync-out-of-range': { rule: 'dma_sync_*() runs past the end of its mapping', fix: 'keep offset + size within the mapped size' },
  'sync-direction-mismatch': { rule: "dma_sync_*() with a direction other than the mapping's", fix: 'sync with the direction of the map' },
  'free-coherent-mismatch': { rule: 'dma_free_coherent() with arguments that do not match the allocation', fix: 'free with the device, size, CPU address and DMA address of the allocation' },
  'overlapping-mapping': { rule: 'the same bytes were mapped again while a device-writable mapping of them was live', fix: 'unmap before mapping again; do not map a buffer still in flight' },
  leak: { rule: 'the device was unbound while it still held mappings or DMA memory', fix: 'unmap, free and destroy everything in remove() (and on the error paths of probe())' },
  'iommu-fault': { rule: 'the IOMMU refused a device access: the address was not mapped (or no longer, or not for writing)', fix: 'keep the device away from a buffer once it is unmapped: unmap only after the completion; map a buffer the device writes for writing' },
  'dma-mask': { rule: 'the device was given a DMA address wider than its DMA mask', fix: "set the mask to what the device's datasheet says (dma_set_mask_and_coherent)" },
  'uninit-to-device': { rule: 'the device read bytes the CPU never initialised (a kernel memory leak to the device)', fix: 'initialise every byte the device reads: kzalloc() or memset()' },
  'missing-barrier': {
    rule: 'memory order between the CPU and the device was not enforced: either the device could see a later CPU store before an earlier one (no write barrier between a descriptor and its doorbell or OWN bit), or the CPU read a descriptor\'s body before its ownership/phase bit without dma_rmb()',
    fix: 'when handing over: fill the descriptor, dma_wmb(), then hand it over, and ring the doorbell with writel(), not writel_relaxed(); when taking back: read the DD/phase bit, dma_rmb(), then the rest',
  },
  'invalid-context': { rule: 'code in atomic context (an IRQ handler, under a spinlock) slept or allocated with GFP_KERNEL', fix: 'do not sleep in handlers or under spinlocks: GFP_ATOMIC, or move the work to process context' },
  'lock-inconsistent': { rule: 'a lock taken in a hard-IRQ handler was taken with interrupts enabled in process context', fix: 'use spin_lock_irqsave() / spin_unlock_irqrestore() in process context' },
  'irq-unhandled': { rule: 'an interrupt kept firing and no handler claimed it', fix: "read the device's status in the handler, acknowledge it, and return IRQ_NONE only when it is not yours" },
  'bus-master-disabled': { rule: 'the device attempted DMA while bus mastering was off', fix: 'call pci_set_master(pdev) in probe before the device may DMA' },
  'pool-misuse': { rule: 'a dma_pool block was freed twice, with the wrong address, or the pool destroyed while busy', fix: 'free each block once, with the cpu and dma pair dma_pool_alloc() returned' },
  'free-while-mapped': { rule: 'memory was freed while it still had a live streaming mapping', fix: 'dma_unmap_*() first (after stopping the device), then free' },
  'out-of-bounds': { rule: 'a CPU access outside the object (KASAN)', fix: 'validate every length, index and offset against the buffer size' },
  'use-after-free': { rule: 'a CPU access to freed memory (KASAN)', fix: 'do not use memory after freeing it; stop the device and its interrupt first' },
  'double-free': { rule: 'kfree() of an object already freed (KASAN)', fix: 'free once; clear the pointer after freeing' },
  'device-error': { rule: 'the device rejected what the driver programmed (a bad register value or sequence)', fix: 'program the device as its datasheet says' },
  'double-fetch': { rule: 'a device-written field was loaded twice and the device changed it in between', fix: 'load each device-written field once into a local' },
  oops: { rule: 'the kernel oopsed: an invalid argument Linux would BUG() on, or a crash in the driver', fix: 'read the oops message: a real direction, valid pointers' },
}
