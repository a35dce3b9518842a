/**
 * The driver-facing kernel API (DESIGN.md §5) and the harness (§6). Drivers import only this file.
 */

export { boot, System } from './system.js'
export type { BootOptions, Checks, LogLevel } from './boot.js'
export { TestMaster, type TestMasterOptions } from './test-master.js'
export { Device } from './base/device.js'
export { REPORT_KINDS, formatReport, reportsToJson, type Report, type ReportKind, type ReportStack } from './debug/report.js'
export type { StackFrame } from './debug/stack.js'
export { DmalabError, InvalidArgumentError, BootOptionError, OutsideTaskError, KernelOops } from './errors.js'
export * from './errno.js'
export * from './types.js'
export { PAGE_OFFSET, ZERO_SIZE_PTR } from './mm/layout.js'
export { Page } from './mm/page.js'
export {
  kmalloc,
  kzalloc,
  kcalloc,
  kfree,
  ksize,
  alloc_pages,
  alloc_page,
  __free_pages,
  __free_page,
  page_address,
  virt_to_page,
  virt_to_phys,
  phys_to_virt,
  page_to_phys,
  mem_read8,
  mem_read16,
  mem_read32,
  mem_read64,
  mem_write8,
  mem_write16,
  mem_write32,
  mem_write64,
  mem_read_bytes,
  mem_write_bytes,
  memset,
  memcpy,
} from './mm/memory.js'
export { defineStruct, type StructType, type StructView, type FieldSpec } from './mm/struct.js'
export {
  DMA_BIDIRECTIONAL,
  DMA_TO_DEVICE,
  DMA_FROM_DEVICE,
  DMA_NONE,
  DMA_MAPPING_ERROR,
  DMA_ATTR_WEAK_ORDERING,
  DMA_ATTR_WRITE_COMBINE,
  DMA_ATTR_NO_KERNEL_MAPPING,
  DMA_ATTR_SKIP_CPU_SYNC,
  DMA_ATTR_FORCE_CONTIGUOUS,
  DMA_ATTR_ALLOC_SINGLE_PAGES,
  DMA_ATTR_NO_WARN,
  DMA_ATTR_PRIVILEGED,
  DMA_ATTR_MMIO,
  DMA_ATTR_DEBUGGING_IGNORE_CACHELINES,
  type dma_data_direction,
} from './dma/types.js'
export {
  dma_map_single,
  dma_map_single_attrs,
  dma_unmap_single,
  dma_unmap_single_attrs,
  dma_map_page,
  dma_map_page_attrs,
  dma_unmap_page,
  dma_unmap_page_attrs,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_sync_single_for_device,
  dma_sync_single_range_for_cpu,
  dma_sync_single_range_for_device,
  dma_set_mask,
  dma_set_coherent_mask,
  dma_set_mask_and_coherent,
  dma_get_mask,
  dma_get_cache_alignment,
  dma_need_sync,
  dma_max_mapping_size,
  dma_get_required_mask,
} from './dma/mapping.js'
export {
  dma_alloc_coherent,
  dma_free_coherent,
  dmam_alloc_coherent,
  dmam_free_coherent,
  dma_alloc_noncoherent,
  dma_free_noncoherent,
  type DmaBuffer,
} from './dma/coherent.js'
export {
  DmaPool,
  dma_pool_create,
  dmam_pool_create,
  dma_pool_alloc,
  dma_pool_zalloc,
  dma_pool_free,
  dma_pool_destroy,
} from './dma/pool.js'
export {
  Scatterlist,
  type SgTable,
  sg_init_table,
  sg_alloc_table,
  sg_free_table,
  sg_next,
  sg_set_buf,
  sg_set_page,
  sg_virt,
  for_each_sg,
  sg_dma_address,
  sg_dma_len,
  dma_map_sg,
  dma_map_sg_attrs,
  dma_unmap_sg,
  dma_unmap_sg_attrs,
  dma_sync_sg_for_cpu,
  dma_sync_sg_for_device,
  dma_map_sgtable,
  dma_unmap_sgtable,
  dma_sync_sgtable_for_cpu,
  dma_sync_sgtable_for_device,
} from './dma/scatterlist.js'
