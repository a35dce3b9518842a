/**
 * nvme driver structures (the nvme.h / pci.c structs of drivers/nvme/host/): the controller
 * (`struct nvme_dev`), its queues (`struct nvme_queue`), the per-request data (`struct nvme_iod`)
 * and tunables. See drivers/nvme/nvme.ts.
 */
import type {
  BlkMqTagSet, CpuAddr, DmaAddr, DmaPool, Gendisk, IoAddr, PciDev, Request, RequestQueue, Scatterlist, SgTable,
  SpinLock, WorkStruct,
} from '../../kernel/index.js'

export const NVME_DRV_NAME = 'nvme'
/** I/O queue depth the driver asks for (Linux's io_queue_depth default 1024), bounded by CAP.MQES. */
export const NVME_IO_QUEUE_DEPTH = 1024
export const NVME_AQ_DEPTH = 32
/** Admin commands the driver sends itself take tags from the admin tag set. */
export const NVME_ADMIN_TIMEOUT_JIFFIES = 60 * 250
/** I/O timeout (Linux's nvme_io_timeout: 30 s). */
export const NVME_IO_TIMEOUT_JIFFIES = 30 * 250
/** Segments per request (NVME_MAX_SEGS is 128 in Linux). */
export const NVME_MAX_SEGS = 127
/** PRP list pools: a small one for up to 32 entries (256 bytes), a page-sized one beyond. */
export const NVME_SMALL_POOL_SIZE = 256

/** One submission/completion queue pair: `struct nvme_queue`. */
export interface NvmeQueue {
  dev: NvmeDev
  qid: number
  q_depth: number
  sq_cmds: CpuAddr
  sq_dma: DmaAddr
  cqes: CpuAddr
  cq_dma: DmaAddr
  sq_tail: number
  /** The tail last written to the doorbell (commit_rqs rings only if it moved). */
  last_sq_tail: number
  cq_head: number
  cq_phase: number
  /** SQ tail doorbell and CQ head doorbell. */
  q_db: IoAddr
  cq_db: IoAddr
  cq_vector: number
  irq: number
  sq_lock: SpinLock
  /** Set once the controller has created the queue (cleared on disable). */
  enabled: boolean
  /** The hw queue's tags, to find a request by its command id. */
  tags_index: number
}

/** The 64-byte command a request carries until queue_rq writes it into the SQ. */
export interface NvmeCmd {
  opcode: number
  flags: number
  nsid: number
  cdw10: number
  cdw11: number
  cdw12: number
  cdw13: number
  cdw14: number
  cdw15: number
  /** PRP1 for a command whose data is the driver's own coherent memory (Create I/O CQ/SQ). */
  prp1?: number
}

/** Per-request driver data: `struct nvme_iod` (+ nvme_request for passthrough results). */
export interface NvmeIod {
  /** A passthrough (admin) command's contents; null for block I/O (built from the request). */
  cmd: NvmeCmd | null
  sgt: SgTable
  /** Entries dma_map_sg mapped (0: no data mapped). */
  nents: number
  /** Entries blk_rq_map_sg filled (what dma_unmap_sg wants back). */
  orig_nents: number
  /** PRP list pages from the pools: CPU and bus addresses, and the pool each came from. */
  prp_cpu: CpuAddr[]
  prp_dma: DmaAddr[]
  prp_small: boolean
  /** Completion status (status field >> 1) and DW0 result. */
  status: number
  result: number
  aborted: boolean
  /** Times the request was resent after its command was aborted (nvme_req(req)->retries). */
  retries: number
  /** Generation counter, bumped at each submission: the top 4 bits of the command id (nvme_cid). */
  genctr: number
}

/** PRP1 and PRP2 of a command's data (nvme_setup_prps, nvme_map_data). */
export interface NvmePrps {
  prp1: number
  prp2: number
}

/**
 * The driver's replaceable steps, as function pointers (the defaults, NVME_PATHS in nvme.ts, are
 * the reference driver): the known-bad variants under test/fixtures/nvme-bad/ replace one each.
 */
export interface NvmePaths {
  /** Doorbell addresses of queue `qid` (the SQ tail's and the CQ head's), from CAP.DSTRD. */
  queue_doorbells(dev: NvmeDev, qid: number): { q_db: IoAddr; cq_db: IoAddr }
  /** nvme_init_queue: fresh indexes and the phase expected first, before (re)creating a queue. */
  init_queue(q: NvmeQueue): void
  /** adapter_alloc_cq + adapter_alloc_sq: create an I/O queue pair on the controller. */
  create_queue(dev: NvmeDev, q: NvmeQueue): Promise<number>
  /** The disk's queue limits and features (block size, sizes, write cache and FUA). */
  configure_limits(dev: NvmeDev, q: RequestQueue): void
  /** nvme_map_data: map the request's data, build its PRPs; null on failure. */
  map_data(dev: NvmeDev, rq: Request, iod: NvmeIod): NvmePrps | null
  /** nvme_pci_setup_prps: PRP1/PRP2 and the PRP list pages for a mapped scatterlist. */
  setup_prps(dev: NvmeDev, iod: NvmeIod, sgl: Scatterlist, length: number): NvmePrps | null
  /** nvme_unmap_data: free the PRP lists, unmap the data. */
  unmap_data(dev: NvmeDev, rq: Request): void
  /** nvme_sq_copy_cmd: the SQ entry at sq_tail (and the doorbell if `write_sq`). */
  write_sqe(nvmeq: NvmeQueue, rq: Request, iod: NvmeIod, prp1: number, prp2: number, write_sq: boolean): void
  /** nvme_write_sq_db: the SQ tail doorbell. */
  write_sq_db(nvmeq: NvmeQueue): void
  /** nvme_poll_cq: consume new completion entries, ring the CQ head doorbell; how many. */
  poll_cq(nvmeq: NvmeQueue): number
}

/** The controller: `struct nvme_dev` (with what nvme_ctrl holds). */
export interface NvmeDev {
  pdev: PciDev
  bar: IoAddr
  dbs: IoAddr
  cap: bigint
  db_stride: number
  q_depth: number
  queues: NvmeQueue[]
  /** Queues the controller has (admin included), and the I/O queues asked for. */
  online_queues: number
  nr_io_queues: number
  nr_vecs: number
  admin_tagset: BlkMqTagSet
  tagset: BlkMqTagSet
  admin_q: RequestQueue | null
  disk: Gendisk | null
  /** Identify results. */
  mdts: number
  vwc: boolean
  nsze: number
  lba_shift: number
  max_hw_sectors: number
  prp_page_pool: DmaPool | null
  prp_small_pool: DmaPool | null
  reset_work: WorkStruct
  /** Abort commands that may still be sent now (Identify's ACL + 1, as ctrl->abort_limit). */
  abort_limit: number
  /** Abort commands nvme_timeout asked for, sent by abort_work: the SQ and the command id. */
  aborts: { sqid: number; cid: number }[]
  abort_work: WorkStruct
  /** NVME_CTRL_* state, as in Linux: live, resetting, deleting, dead. */
  state: 'new' | 'live' | 'resetting' | 'deleting' | 'dead'
  instance: number
  /** The replaceable steps (NVME_PATHS unless a variant replaced some). */
  paths: NvmePaths
}
