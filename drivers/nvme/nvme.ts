/**
 * nvme: the reference driver for the mini-NVMe controller (PCI 1de5:5e01, class 010802; datasheet
 * docs/devices/nvme.md), written the way Linux's drivers/nvme/host/pci.c is:
 *
 * - probe (nvme_probe, nvme_pci_enable): managed PCI resources, a 64-bit DMA mask, bus mastering,
 *   CAP (queue depth, doorbell stride, timeout), PRP list pools (dma_pool, 256 B and 4 KiB);
 * - controller enable (nvme_pci_configure_admin_queue, nvme_enable_ctrl): the admin queues in
 *   coherent memory, AQA/ASQ/ACQ, CC, and CSTS.RDY polled with the CAP.TO deadline;
 * - admin commands as passthrough requests of an admin tag set (Identify controller and
 *   namespace, Set Features number of queues);
 * - I/O queues (nvme_setup_io_queues, nvme_create_io_queues): one MSI-X vector per queue when
 *   there are enough, the CQ created before its SQ, one blk-mq hardware queue per queue pair;
 * - the data path in nvme_io.ts: PRPs from the mapped scatterlist, phase-tag completions with
 *   dma_rmb, batched CQ head doorbells;
 * - Flush and FUA when the controller has a volatile write cache, timeouts, a reset work that
 *   disables and re-enables the controller and requeues what was in flight, orderly shutdown
 *   (CC.SHN) at remove.
 */
import {
  BLK_MQ_F_SHOULD_MERGE, DMA_BIT_MASK, EINVAL, EIO, ENODEV, ENOMEM, ETIMEDOUT, GFP_KERNEL, IRQF_SHARED, PCI_IRQ_INTX,
  PCI_IRQ_MSIX, REQ_OP_DRV_IN, REQ_OP_DRV_OUT,
  BLK_MQ_REQ_NOWAIT, INIT_WORK, IS_ERR, PTR_ERR, RQ_END_IO_FREE, blk_execute_rq, blk_execute_rq_nowait, blk_mq_alloc_disk, blk_mq_alloc_queue, blk_mq_alloc_request,
  blk_mq_alloc_tag_set, blk_mq_destroy_queue, blk_mq_free_request, blk_mq_free_tag_set, blk_mq_kick_requeue_list,
  blk_mq_quiesce_tagset, blk_mq_requeue_request, blk_mq_rq_state, blk_mq_rq_to_pdu, blk_mq_tagset_busy_iter, blk_mq_unquiesce_tagset,
  blk_queue_logical_block_size, blk_queue_max_hw_sectors, blk_queue_max_segments, blk_queue_rq_timeout,
  blk_queue_virt_boundary, blk_queue_write_cache, blk_rq_map_kern, blk_status_to_errno, del_gendisk, dev_err, dev_info,
  dev_warn, device_add_disk, dma_alloc_coherent, dma_free_coherent, dma_pool_create, dma_pool_destroy,
  dma_set_mask_and_coherent, free_irq, jiffies, kfree, kzalloc, lo_hi_readq, lo_hi_writeq, mem_read32,
  mem_read64, mem_read8, memset, msecs_to_jiffies, msleep, pci_alloc_irq_vectors, pci_free_irq_vectors, pci_get_drvdata,
  pci_irq_vector, pci_set_drvdata, pci_set_master, pcim_enable_device, pcim_iomap_regions, pcim_iomap_table, ptr_add,
  MQ_RQ_IN_FLIGHT, put_disk, readl, request_irq, set_capacity, sg_alloc_table, spin_lock_init, synchronize_irq, writel,
  type BlkMqOps, type BlkMqTagSet, type DmaAddr, type IoAddr, type PciDev, type PciDeviceId, type PciDriver, type Request, type RqEndIoRet, type blk_status_t,
  type RequestQueue,
} from '../../kernel/index.js'
import {
  NVME_CAP_MQES, NVME_CAP_STRIDE, NVME_CAP_TIMEOUT, NVME_CC_AMS_RR, NVME_CC_CSS_NVM, NVME_CC_ENABLE, NVME_CC_IOCQES,
  NVME_CC_IOSQES, NVME_CC_SHN_MASK, NVME_CC_SHN_NORMAL, NVME_CQE_SIZE, NVME_CQ_IRQ_ENABLED, NVME_CSTS_CFS,
  NVME_CSTS_RDY, NVME_CSTS_SHST_CMPLT, NVME_CSTS_SHST_MASK, NVME_CTRL_PAGE_SIZE, NVME_DEVICE_ID, NVME_FEAT_NUM_QUEUES,
  NVME_ID_CNS_CTRL, NVME_ID_CNS_NS, NVME_QUEUE_PHYS_CONTIG, NVME_REG_ACQ, NVME_REG_AQA, NVME_REG_ASQ, NVME_REG_CAP,
  NVME_REG_CC, NVME_REG_CSTS, NVME_REG_DBS, NVME_SQE_SIZE, NVME_SQ_PRIO_MEDIUM, NVME_VENDOR_ID, nvme_admin_create_cq,
  nvme_admin_abort_cmd, nvme_admin_create_sq, nvme_admin_delete_cq, nvme_admin_delete_sq, nvme_admin_identify, nvme_admin_set_features,
} from './nvme_hw.js'
import {
  NVME_ADMIN_TIMEOUT_JIFFIES, NVME_AQ_DEPTH, NVME_DRV_NAME, NVME_IO_QUEUE_DEPTH, NVME_IO_TIMEOUT_JIFFIES, NVME_MAX_SEGS,
  NVME_SMALL_POOL_SIZE, type NvmeCmd, type NvmeDev, type NvmeIod, type NvmePaths, type NvmeQueue,
} from './nvme_defs.js'
import {
  nvme_commit_rqs, nvme_irq, nvme_map_data, nvme_pci_complete_rq, nvme_poll_cq, nvme_queue_rq, nvme_setup_prps, nvme_timeout,
  nvme_unmap_data, nvme_write_sq_db, nvme_write_sqe, nvme_cancel_request,
} from './nvme_io.js'

export * from './nvme_hw.js'
export * from './nvme_defs.js'
export * from './nvme_io.js'

/** Options a test or variant may change; the defaults are the reference driver. */
export interface NvmeParams {
  /** I/O queue pairs to ask for (default 4; the controller may grant fewer). */
  readonly io_queues?: number
  /** I/O queue depth to ask for (default 1024, bounded by CAP.MQES + 1). */
  readonly io_queue_depth?: number
  /** Replace one block-layer op (known-bad variants). */
  readonly mq_ops?: Partial<BlkMqOps>
  /** Replace some of the driver's steps (known-bad variants); the rest are NVME_PATHS. */
  readonly paths?: Partial<NvmePaths>
}

export function empty_cmd(opcode: number): NvmeCmd {
  return { opcode, flags: 0, nsid: 0, cdw10: 0, cdw11: 0, cdw12: 0, cdw13: 0, cdw14: 0, cdw15: 0 }
}

/** init_request: each preallocated request gets its iod with a scatterlist table. */
function nvme_init_request(_set: BlkMqTagSet, rq: Request): number {
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  iod.cmd = null
  iod.sgt = {}
  if (sg_alloc_table(iod.sgt, NVME_MAX_SEGS, GFP_KERNEL) !== 0) return -ENOMEM
  iod.nents = 0
  iod.orig_nents = 0
  iod.prp_cpu = []
  iod.prp_dma = []
  iod.prp_small = false
  iod.status = 0
  iod.result = 0
  iod.aborted = false
  iod.retries = 0
  iod.genctr = 0
  return 0
}

// ------------------------------------------------------------------------------ queues

/** nvme_alloc_queue: the SQ and CQ in coherent memory (the CQ zeroed: phase 0 everywhere). */
function nvme_alloc_queue(dev: NvmeDev, qid: number, depth: number): NvmeQueue | null {
  const pd = dev.pdev.dev
  const sq = dma_alloc_coherent(pd, depth * NVME_SQE_SIZE, GFP_KERNEL)
  if (sq === null) return null
  const cq = dma_alloc_coherent(pd, depth * NVME_CQE_SIZE, GFP_KERNEL)
  if (cq === null) {
    dma_free_coherent(pd, depth * NVME_SQE_SIZE, sq.cpu, sq.dma)
    return null
  }
  const { q_db, cq_db } = dev.paths.queue_doorbells(dev, qid)
  const q: NvmeQueue = {
    dev, qid, q_depth: depth, sq_cmds: sq.cpu, sq_dma: sq.dma, cqes: cq.cpu, cq_dma: cq.dma,
    sq_tail: 0, last_sq_tail: 0, cq_head: 0, cq_phase: 1,
    q_db, cq_db,
    cq_vector: 0, irq: 0, sq_lock: spin_lock_init(), enabled: false, tags_index: qid === 0 ? 0 : qid - 1,
  }
  dev.queues[qid] = q
  return q
}

function nvme_free_queue(q: NvmeQueue): void {
  const pd = q.dev.pdev.dev
  dma_free_coherent(pd, q.q_depth * NVME_SQE_SIZE, q.sq_cmds, q.sq_dma)
  dma_free_coherent(pd, q.q_depth * NVME_CQE_SIZE, q.cqes, q.cq_dma)
}

/** Doorbells of queue qid: SQ tail at dbs[2 * qid * stride], CQ head one stride later. */
export function nvme_queue_doorbells(dev: NvmeDev, qid: number): { q_db: IoAddr; cq_db: IoAddr } {
  const stride = 4 << dev.db_stride
  return { q_db: ptr_add(dev.dbs, 2 * qid * stride), cq_db: ptr_add(dev.dbs, (2 * qid + 1) * stride) }
}

/**
 * nvme_init_queue: fresh indexes, a zeroed CQ (phase 0), expecting phase 1 first. As in Linux the
 * I/O queues get it through the paths (nvme_create_queue); the admin queue calls it directly.
 */
export function nvme_init_queue(q: NvmeQueue): void {
  q.sq_tail = 0
  q.last_sq_tail = 0
  q.cq_head = 0
  q.cq_phase = 1
  // The CQ memory must read phase 0 again: a reset may leave old entries with phase 1.
  for (let i = 0; i < q.q_depth; i++) writeZeroCqe(q, i)
}

/** Zeroes one completion entry (coherent memory, through the CPU accessors). */
function writeZeroCqe(q: NvmeQueue, i: number): void {
  memset(ptr_add(q.cqes, i * NVME_CQE_SIZE), 0, NVME_CQE_SIZE)
}

/** A queue's MSI-X vector: its own when there are enough, else vector 0, shared. */
export function nvme_cq_vector(dev: NvmeDev, qid: number): number {
  return dev.nr_vecs > qid ? qid : 0
}

/** The IRQ of a queue. */
function nvme_queue_irq(dev: NvmeDev, q: NvmeQueue): number {
  q.cq_vector = nvme_cq_vector(dev, q.qid)
  return pci_irq_vector(dev.pdev, q.cq_vector)
}

function nvme_request_queue_irq(dev: NvmeDev, q: NvmeQueue): number {
  q.irq = nvme_queue_irq(dev, q)
  return request_irq(q.irq, nvme_irq, IRQF_SHARED, `nvme${dev.instance}q${q.qid}`, q)
}

// ------------------------------------------------------------------------------ controller state

/** Polls CSTS until (CSTS & mask) == value, CFS, or the CAP.TO deadline: nvme_wait_ready. */
async function nvme_wait_ready(dev: NvmeDev, mask: number, value: number, what: string): Promise<number> {
  const timeout_ms = (NVME_CAP_TIMEOUT(dev.cap) + 1) * 500
  const deadline = jiffies() + msecs_to_jiffies(timeout_ms)
  for (;;) {
    const csts = readl(ptr_add(dev.bar, NVME_REG_CSTS))
    if (csts === 0xffff_ffff) return -ENODEV
    if ((csts & mask) === value) return 0
    if ((csts & NVME_CSTS_CFS) !== 0) {
      dev_err(dev.pdev.dev, 'controller fatal status while %s (CSTS 0x%x)', what, csts)
      return -EIO
    }
    if (jiffies() > deadline) {
      dev_err(dev.pdev.dev, 'Device not ready; aborting %s, CSTS=0x%x', what, csts)
      return -ETIMEDOUT
    }
    await msleep(1)
  }
}

/** nvme_disable_ctrl: CC.EN cleared, wait for RDY to drop. */
async function nvme_disable_ctrl(dev: NvmeDev): Promise<number> {
  const cc = readl(ptr_add(dev.bar, NVME_REG_CC))
  writel(cc & ~NVME_CC_ENABLE, ptr_add(dev.bar, NVME_REG_CC))
  return nvme_wait_ready(dev, NVME_CSTS_RDY, 0, 'reset')
}

/** nvme_pci_configure_admin_queue + nvme_enable_ctrl. */
async function nvme_configure_admin_queue(dev: NvmeDev): Promise<number> {
  const csts = readl(ptr_add(dev.bar, NVME_REG_CSTS))
  if ((csts & NVME_CSTS_RDY) !== 0) {
    const rc = await nvme_disable_ctrl(dev)
    if (rc !== 0) return rc
  }
  const aq = dev.queues[0] ?? nvme_alloc_queue(dev, 0, NVME_AQ_DEPTH)
  if (aq === null) return -ENOMEM
  nvme_init_queue(aq)
  const aqa = ((aq.q_depth - 1) << 16) | (aq.q_depth - 1)
  writel(aqa, ptr_add(dev.bar, NVME_REG_AQA))
  lo_hi_writeq(aq.sq_dma, ptr_add(dev.bar, NVME_REG_ASQ))
  lo_hi_writeq(aq.cq_dma, ptr_add(dev.bar, NVME_REG_ACQ))
  const cc = NVME_CC_CSS_NVM | (0 << 7) | NVME_CC_AMS_RR | NVME_CC_IOSQES | NVME_CC_IOCQES
  writel(cc, ptr_add(dev.bar, NVME_REG_CC))
  writel(cc | NVME_CC_ENABLE, ptr_add(dev.bar, NVME_REG_CC))
  const rc = await nvme_wait_ready(dev, NVME_CSTS_RDY, NVME_CSTS_RDY, 'initialisation')
  if (rc !== 0) return rc
  aq.enabled = true
  return 0
}

/** nvme_submit_sync_cmd: one admin command through the admin request queue; its status or -errno. */
export async function nvme_submit_sync_cmd(dev: NvmeDev, cmd: NvmeCmd, buf: { cpu: ReturnType<typeof kzalloc>; len: number } | null, out = false): Promise<{ status: number; result: number }> {
  const rq = await blk_mq_alloc_request(dev.admin_q!, out ? REQ_OP_DRV_OUT : REQ_OP_DRV_IN, 0)
  if (IS_ERR(rq)) return { status: PTR_ERR(rq), result: 0 }
  const r = rq
  blk_mq_rq_to_pdu<NvmeIod>(r).cmd = cmd
  if (buf !== null && buf.cpu !== null) {
    const rc = blk_rq_map_kern(r, buf.cpu, buf.len, GFP_KERNEL)
    if (rc !== 0) {
      blk_mq_free_request(r)
      return { status: rc, result: 0 }
    }
  }
  const sts = await blk_execute_rq(r, false)
  const iod = blk_mq_rq_to_pdu<NvmeIod>(r)
  const out2 = { status: sts !== 0 && iod.status === 0 ? blk_status_to_errno(sts) : iod.status, result: iod.result }
  blk_mq_free_request(r)
  return out2
}

/** nvme_identify_ctrl + nvme_identify_ns: MDTS, VWC, namespace size and LBA format. */
async function nvme_identify(dev: NvmeDev): Promise<number> {
  const buf = kzalloc(4096, GFP_KERNEL)
  if (buf === null) return -ENOMEM
  try {
    const c = empty_cmd(nvme_admin_identify)
    c.cdw10 = NVME_ID_CNS_CTRL
    let r = await nvme_submit_sync_cmd(dev, c, { cpu: buf, len: 4096 })
    if (r.status !== 0) {
      dev_err(dev.pdev.dev, 'Identify Controller failed (%d)', r.status)
      return -EIO
    }
    dev.mdts = mem_read8(buf, 77)
    dev.abort_limit = mem_read8(buf, 258) + 1 // ACL is 0-based
    dev.vwc = (mem_read8(buf, 525) & 1) !== 0
    const n = empty_cmd(nvme_admin_identify)
    n.nsid = 1
    n.cdw10 = NVME_ID_CNS_NS
    r = await nvme_submit_sync_cmd(dev, n, { cpu: buf, len: 4096 })
    if (r.status !== 0) {
      dev_err(dev.pdev.dev, 'Identify Namespace failed (%d)', r.status)
      return -EIO
    }
    dev.nsze = Number(mem_read64(buf, 0))
    const flbas = mem_read8(buf, 26) & 0xf
    dev.lba_shift = (mem_read32(buf, 128 + flbas * 4) >>> 16) & 0xff
    if (dev.lba_shift < 9 || dev.lba_shift > 12) {
      dev_err(dev.pdev.dev, 'unsupported LBA size 2^%d', dev.lba_shift)
      return -EINVAL
    }
    const mps = NVME_CTRL_PAGE_SIZE
    dev.max_hw_sectors = dev.mdts === 0 ? 2048 : Math.min(2048, ((1 << dev.mdts) * mps) >> 9)
    return 0
  } finally {
    kfree(buf)
  }
}

/** nvme_set_queue_count: Set Features Number of Queues; what the controller granted. */
async function nvme_set_queue_count(dev: NvmeDev, count: number): Promise<number> {
  const c = empty_cmd(nvme_admin_set_features)
  c.cdw10 = NVME_FEAT_NUM_QUEUES
  c.cdw11 = ((count - 1) << 16) | (count - 1)
  const r = await nvme_submit_sync_cmd(dev, c, null)
  if (r.status !== 0) {
    dev_err(dev.pdev.dev, 'Could not set queue count (%d)', r.status)
    return 0
  }
  return Math.min(count, (r.result & 0xffff) + 1, (r.result >>> 16) + 1)
}

/** adapter_alloc_cq / adapter_alloc_sq: the CQ first, then its SQ. */
export async function nvme_create_queue(dev: NvmeDev, q: NvmeQueue): Promise<number> {
  dev.paths.init_queue(q)
  const cq = empty_cmd(nvme_admin_create_cq)
  q.cq_vector = nvme_cq_vector(dev, q.qid)
  cq.cdw10 = ((q.q_depth - 1) << 16) | q.qid
  cq.cdw11 = (q.cq_vector << 16) | NVME_QUEUE_PHYS_CONTIG | NVME_CQ_IRQ_ENABLED
  let r = await nvme_submit_cmd_with_prp(dev, cq, q.cq_dma)
  if (r !== 0) return r
  const sq = empty_cmd(nvme_admin_create_sq)
  sq.cdw10 = ((q.q_depth - 1) << 16) | q.qid
  sq.cdw11 = (q.qid << 16) | NVME_QUEUE_PHYS_CONTIG | NVME_SQ_PRIO_MEDIUM
  r = await nvme_submit_cmd_with_prp(dev, sq, q.sq_dma)
  if (r !== 0) {
    await nvme_delete_queue(dev, nvme_admin_delete_cq, q.qid)
    return r
  }
  q.enabled = true
  return 0
}

/** Admin commands whose PRP1 is a queue's own (coherent) memory, not request data. */
export async function nvme_submit_cmd_with_prp(dev: NvmeDev, cmd: NvmeCmd, prp1: DmaAddr): Promise<number> {
  cmd.prp1 = prp1
  const r = await nvme_submit_sync_cmd(dev, cmd, null)
  return r.status === 0 ? 0 : r.status > 0 ? -EIO : r.status
}

export async function nvme_delete_queue(dev: NvmeDev, opcode: number, qid: number): Promise<number> {
  const c = empty_cmd(opcode)
  c.cdw10 = qid
  const r = await nvme_submit_sync_cmd(dev, c, null)
  return r.status
}

// ------------------------------------------------------------------------------ probe and setup

const nvme_admin_mq_ops: BlkMqOps = {
  queue_rq: nvme_queue_rq,
  complete: nvme_pci_complete_rq,
  init_hctx: (hctx, data) => {
    hctx.driver_data = (data as NvmeDev).queues[0]
    return 0
  },
  init_request: nvme_init_request,
  timeout: nvme_timeout,
}

function nvme_mq_ops(params: NvmeParams): BlkMqOps {
  return {
    queue_rq: nvme_queue_rq,
    commit_rqs: nvme_commit_rqs,
    complete: nvme_pci_complete_rq,
    init_hctx: (hctx, data, idx) => {
      hctx.driver_data = (data as NvmeDev).queues[idx + 1]
      return 0
    },
    init_request: nvme_init_request,
    timeout: nvme_timeout,
    ...params.mq_ops,
  }
}

/** nvme_setup_io_queues + nvme_create_io_queues. */
async function nvme_setup_io_queues(dev: NvmeDev, wanted: number): Promise<number> {
  const granted = await nvme_set_queue_count(dev, wanted)
  if (granted === 0) return -EIO
  dev.nr_io_queues = granted
  // Vectors: one per queue (vector 0 for the admin queue) if the platform has them.
  const admin = dev.queues[0]!
  await free_irq(admin.irq, admin)
  pci_free_irq_vectors(dev.pdev)
  const nvec = pci_alloc_irq_vectors(dev.pdev, 1, granted + 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (nvec < 0) return nvec
  dev.nr_vecs = nvec
  let rc = nvme_request_queue_irq(dev, admin)
  if (rc !== 0) return rc
  const depth = dev.q_depth
  for (let qid = 1; qid <= granted; qid++) {
    const q = dev.queues[qid] ?? nvme_alloc_queue(dev, qid, depth)
    if (q === null) return -ENOMEM
    rc = await dev.paths.create_queue(dev, q)
    if (rc !== 0) return rc
    rc = nvme_request_queue_irq(dev, q)
    if (rc !== 0) return rc
    dev.online_queues = qid + 1
  }
  return 0
}

/** The disk's limits (nvme_set_queue_limits, nvme_update_disk_info): a volatile cache means flushes and FUA. */
export function nvme_configure_limits(dev: NvmeDev, q: RequestQueue): void {
  blk_queue_logical_block_size(q, 1 << dev.lba_shift)
  blk_queue_max_hw_sectors(q, dev.max_hw_sectors)
  blk_queue_max_segments(q, NVME_MAX_SEGS)
  blk_queue_virt_boundary(q, NVME_CTRL_PAGE_SIZE - 1)
  blk_queue_write_cache(q, dev.vwc, dev.vwc)
  blk_queue_rq_timeout(q, NVME_IO_TIMEOUT_JIFFIES)
}

/** The reference driver's steps; a variant's params.paths replaces some of them. */
export const NVME_PATHS: Readonly<NvmePaths> = {
  queue_doorbells: nvme_queue_doorbells,
  init_queue: nvme_init_queue,
  create_queue: nvme_create_queue,
  configure_limits: nvme_configure_limits,
  map_data: nvme_map_data,
  setup_prps: nvme_setup_prps,
  unmap_data: nvme_unmap_data,
  write_sqe: nvme_write_sqe,
  write_sq_db: nvme_write_sq_db,
  poll_cq: nvme_poll_cq,
}

/** The namespace's disk: nvme_alloc_ns. */
function nvme_alloc_disk(dev: NvmeDev, params: NvmeParams): number {
  dev.tagset = {
    ops: nvme_mq_ops(params),
    nr_hw_queues: dev.nr_io_queues,
    queue_depth: Math.min(dev.q_depth - 1, 1023),
    timeout: NVME_IO_TIMEOUT_JIFFIES,
    flags: BLK_MQ_F_SHOULD_MERGE,
    driver_data: dev,
  }
  let rc = blk_mq_alloc_tag_set(dev.tagset)
  if (rc !== 0) return rc
  const disk = blk_mq_alloc_disk(dev.tagset, dev)
  if (IS_ERR(disk)) {
    blk_mq_free_tag_set(dev.tagset)
    return PTR_ERR(disk)
  }
  const d = disk
  dev.paths.configure_limits(dev, d.queue)
  d.disk_name = `nvme${dev.instance}n1`
  set_capacity(d, dev.nsze * (1 << (dev.lba_shift - 9)))
  rc = device_add_disk(dev.pdev.dev, d, null)
  if (rc !== 0) {
    put_disk(d)
    blk_mq_free_tag_set(dev.tagset)
    return rc
  }
  dev.disk = d
  return 0
}

/** nvme_probe + nvme_reset_work's first run. */
async function nvme_probe(pdev: PciDev, _id: PciDeviceId, params: NvmeParams, ida: { next: number }): Promise<number> {
  let rc = pcim_enable_device(pdev)
  if (rc !== 0) return rc
  rc = pcim_iomap_regions(pdev, 1 << 0, NVME_DRV_NAME)
  if (rc !== 0) return rc
  rc = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64))
  if (rc !== 0) return rc
  pci_set_master(pdev)
  const bar = pcim_iomap_table(pdev)[0]!
  const cap = lo_hi_readq(ptr_add(bar, NVME_REG_CAP))
  const dev: NvmeDev = {
    pdev, bar, dbs: ptr_add(bar, NVME_REG_DBS), cap, db_stride: NVME_CAP_STRIDE(cap),
    q_depth: Math.min(NVME_CAP_MQES(cap) + 1, params.io_queue_depth ?? NVME_IO_QUEUE_DEPTH),
    queues: [], online_queues: 0, nr_io_queues: 0, nr_vecs: 0,
    admin_tagset: { ops: nvme_admin_mq_ops, nr_hw_queues: 1, queue_depth: NVME_AQ_DEPTH - 1, timeout: NVME_ADMIN_TIMEOUT_JIFFIES },
    tagset: { ops: nvme_admin_mq_ops, nr_hw_queues: 1, queue_depth: 1 },
    admin_q: null, disk: null, mdts: 0, vwc: false, nsze: 0, lba_shift: 9, max_hw_sectors: 0,
    prp_page_pool: null, prp_small_pool: null, reset_work: null as never, abort_limit: 1, aborts: [], abort_work: null as never,
    state: 'new', instance: ida.next++,
    paths: { ...NVME_PATHS, ...params.paths },
  }
  dev.admin_tagset.driver_data = dev
  dev.reset_work = INIT_WORK(null, () => nvme_reset_work(dev, params))
  dev.abort_work = INIT_WORK(null, () => nvme_abort_work(dev))
  pci_set_drvdata(pdev, dev)
  dev.prp_page_pool = dma_pool_create('prp list page', pdev.dev, NVME_CTRL_PAGE_SIZE, NVME_CTRL_PAGE_SIZE, 0)
  dev.prp_small_pool = dma_pool_create('prp list 256', pdev.dev, NVME_SMALL_POOL_SIZE, NVME_SMALL_POOL_SIZE, 0)
  if (dev.prp_page_pool === null || dev.prp_small_pool === null) return -ENOMEM
  // One vector to start with: the admin queue's.
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (nvec < 0) return nvec
  dev.nr_vecs = nvec
  rc = await nvme_configure_admin_queue(dev)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  rc = nvme_request_queue_irq(dev, dev.queues[0]!)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  rc = blk_mq_alloc_tag_set(dev.admin_tagset)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  const aq = blk_mq_alloc_queue(dev.admin_tagset, null, dev)
  if (IS_ERR(aq)) return nvme_probe_fail(dev, PTR_ERR(aq))
  dev.admin_q = aq
  rc = await nvme_identify(dev)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  rc = await nvme_setup_io_queues(dev, params.io_queues ?? 4)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  rc = nvme_alloc_disk(dev, params)
  if (rc !== 0) return nvme_probe_fail(dev, rc)
  dev.state = 'live'
  dev_info(pdev.dev, '%d/0/0 default/read/poll queues, %s: %d blocks of %d bytes, write cache %s', dev.nr_io_queues,
    dev.disk!.disk_name, dev.nsze, 1 << dev.lba_shift, dev.vwc ? 'on' : 'off')
  return 0
}

/** Undoes a partial probe (managed resources go at unbind). */
async function nvme_probe_fail(dev: NvmeDev, rc: number): Promise<number> {
  dev_err(dev.pdev.dev, 'probe failed: %d', rc)
  await nvme_teardown(dev, false)
  return rc
}

/** Releases queues, IRQs, the admin queue and pools (nvme_dev_remove_admin, nvme_free_queues). */
async function nvme_teardown(dev: NvmeDev, shutdown: boolean): Promise<void> {
  if (shutdown) await nvme_shutdown_ctrl(dev)
  else await nvme_disable_ctrl(dev)
  for (const q of dev.queues) {
    if (q === undefined) continue
    if (q.irq > 0) {
      await free_irq(q.irq, q)
      q.irq = 0
    }
  }
  if (dev.admin_q !== null) {
    await blk_mq_destroy_queue(dev.admin_q)
    dev.admin_q = null
    blk_mq_free_tag_set(dev.admin_tagset)
  }
  for (const q of dev.queues) if (q !== undefined) nvme_free_queue(q)
  dev.queues = []
  if (dev.prp_small_pool !== null) dma_pool_destroy(dev.prp_small_pool)
  if (dev.prp_page_pool !== null) dma_pool_destroy(dev.prp_page_pool)
  dev.prp_small_pool = null
  dev.prp_page_pool = null
}

/** nvme_disable_ctrl(shutdown = true): CC.SHN normal, wait for SHST complete. */
async function nvme_shutdown_ctrl(dev: NvmeDev): Promise<number> {
  const cc = readl(ptr_add(dev.bar, NVME_REG_CC))
  writel((cc & ~NVME_CC_SHN_MASK) | NVME_CC_SHN_NORMAL, ptr_add(dev.bar, NVME_REG_CC))
  const rc = await nvme_wait_ready(dev, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_CMPLT, 'shutdown')
  if (rc !== 0) dev_warn(dev.pdev.dev, 'shutdown timed out; data in the write cache may be lost')
  return rc
}

/** Deletes the I/O queues, SQs first (nvme_delete_io_queues). */
async function nvme_delete_io_queues(dev: NvmeDev): Promise<void> {
  for (let qid = dev.online_queues - 1; qid >= 1; qid--) {
    const q = dev.queues[qid]!
    if (!q.enabled) continue
    await nvme_delete_queue(dev, nvme_admin_delete_sq, qid)
    await nvme_delete_queue(dev, nvme_admin_delete_cq, qid)
    q.enabled = false
  }
}

/**
 * The Abort commands nvme_timeout asked for. Linux sends each from the timeout handler itself
 * (blk_mq_alloc_request with BLK_MQ_REQ_NOWAIT, blk_execute_rq_nowait, abort_endio); dmalab's
 * blk_mq_alloc_request returns a promise even with NOWAIT, so the handler queues the abort here and
 * it leaves from this work item a moment later. The aborted command completes with ABORT_REQ, and
 * nvme_pci_complete_rq resends it; if it is still out at the next timeout, the controller is reset.
 */
async function nvme_abort_work(dev: NvmeDev): Promise<void> {
  for (let a = dev.aborts.shift(); a !== undefined; a = dev.aborts.shift()) {
    const rq = await blk_mq_alloc_request(dev.admin_q!, REQ_OP_DRV_OUT, BLK_MQ_REQ_NOWAIT)
    if (IS_ERR(rq)) {
      dev.abort_limit++ // no request: the timer was rearmed; the next timeout resets
      continue
    }
    const c = empty_cmd(nvme_admin_abort_cmd)
    c.cdw10 = a.sqid | (a.cid << 16)
    blk_mq_rq_to_pdu<NvmeIod>(rq).cmd = c
    rq.end_io = abort_endio
    rq.end_io_data = dev
    blk_execute_rq_nowait(rq, false)
  }
}

/** abort_endio: the Abort command ended (DW0 bit 0 set: the controller did not abort it). */
function abort_endio(rq: Request, _error: blk_status_t): RqEndIoRet {
  const dev = rq.end_io_data as NvmeDev
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  dev_warn(dev.pdev.dev, 'Abort status: 0x%x%s', iod.status, iod.status === 0 && (iod.result & 1) !== 0 ? ' (command not aborted)' : '')
  dev.abort_limit++
  return RQ_END_IO_FREE
}

/**
 * nvme_reset_work: quiesce, disable the controller, take back every request in flight (unmapped,
 * then requeued), enable again, re-create the I/O queues, unquiesce and resend.
 */
async function nvme_reset_work(dev: NvmeDev, _params: NvmeParams): Promise<void> {
  if (dev.state !== 'resetting') return
  dev_warn(dev.pdev.dev, 'resetting controller')
  blk_mq_quiesce_tagset(dev.tagset)
  await nvme_disable_ctrl(dev)
  for (const q of dev.queues) {
    if (q === undefined) continue
    q.enabled = false
    if (q.irq > 0) await synchronize_irq(q.irq)
  }
  // First reap what the controller completed before it stopped (nvme_reap_pending_cqes).
  for (const q of dev.queues) if (q !== undefined) dev.paths.poll_cq(q)
  // The controller is off: what it had not completed is the driver's again. I/O is resent
  // after the reset; admin commands (a waiter in probe or here) fail.
  blk_mq_tagset_busy_iter(dev.tagset, (rq: Request) => {
    if (blk_mq_rq_state(rq) !== MQ_RQ_IN_FLIGHT) return true
    dev.paths.unmap_data(dev, rq)
    blk_mq_requeue_request(rq, false)
    return true
  }, null)
  blk_mq_tagset_busy_iter(dev.admin_tagset, nvme_cancel_request, null)
  let rc = await nvme_configure_admin_queue(dev)
  for (let qid = 1; rc === 0 && qid < dev.online_queues; qid++) rc = await dev.paths.create_queue(dev, dev.queues[qid]!)
  if (rc !== 0) {
    dev_err(dev.pdev.dev, 'reset failed (%d): removing the controller', rc)
    dev.state = 'dead'
    blk_mq_unquiesce_tagset(dev.tagset)
    return
  }
  dev.state = 'live'
  blk_mq_unquiesce_tagset(dev.tagset)
  blk_mq_kick_requeue_list(dev.disk!.queue)
}

/** nvme_remove: the disk goes, then the I/O queues, then an orderly shutdown (CC.SHN). */
async function nvme_remove(pdev: PciDev): Promise<void> {
  const dev = pci_get_drvdata(pdev) as NvmeDev
  dev.state = 'deleting'
  if (dev.disk !== null) {
    await del_gendisk(dev.disk)
    put_disk(dev.disk)
    dev.disk = null
    blk_mq_free_tag_set(dev.tagset)
  }
  await nvme_delete_io_queues(dev)
  // Poll once more: completions of the delete commands.
  if (dev.queues[0] !== undefined) dev.paths.poll_cq(dev.queues[0])
  await nvme_teardown(dev, true)
}

export const nvme_id_table: readonly PciDeviceId[] = [{ vendor: NVME_VENDOR_ID, device: NVME_DEVICE_ID }]

/** An nvme driver with the given parameters (a fresh object: one per system or per variant). */
export function nvme_make_driver(params: NvmeParams = {}, name = NVME_DRV_NAME): PciDriver {
  // Controller instances (nvme0, nvme1, ...) are numbered per driver object, as per loaded module:
  // register a fresh driver in each system so that names do not depend on other systems.
  const ida = { next: 0 }
  return {
    name,
    id_table: nvme_id_table,
    probe: (pdev, id) => nvme_probe(pdev, id, params, ida),
    remove: nvme_remove,
  }
}

/** The reference driver (one system; use nvme_make_driver() for each of several systems). */
export const nvme_driver: PciDriver = nvme_make_driver()
