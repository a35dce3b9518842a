/**
 * nvme's data path, as in drivers/nvme/host/pci.c: nvme_queue_rq (command setup, PRP building
 * from the mapped scatterlist with list pages from a dma_pool, the SQ entry and the doorbell),
 * nvme_irq / nvme_poll_cq (phase-tag completions with dma_rmb, one batched CQ head doorbell),
 * nvme_pci_complete_rq (unmap, free the PRP lists, end the request) and nvme_timeout.
 */
import {
  BLK_EH_DONE, BLK_EH_RESET_TIMER, BLK_STS_IOERR, BLK_STS_MEDIUM, BLK_STS_NOTSUPP, BLK_STS_OK, BLK_STS_RESOURCE,
  BLK_STS_TARGET, GFP_ATOMIC, MQ_RQ_IN_FLIGHT, IRQ_HANDLED, IRQ_NONE, REQ_FUA, REQ_OP_DRV_IN,
  REQ_OP_DRV_OUT, REQ_OP_FLUSH, REQ_OP_READ, REQ_OP_WRITE, REQ_OP_WRITE_ZEROES,
  blk_mq_complete_request, blk_mq_request_completed, blk_mq_request_started, pr_err, type BlkMqTags, blk_mq_end_request, blk_mq_rq_state, blk_mq_rq_to_pdu, blk_mq_start_request,
  blk_mq_delay_kick_requeue_list, blk_mq_requeue_request, blk_mq_tag_to_rq, blk_rq_bytes, blk_rq_map_sg, blk_rq_payload_bytes, blk_rq_pos, dev_warn, dma_map_sg, dma_pool_alloc,
  dma_pool_free, dma_rmb, dma_unmap_sg, lower_32_bits, mem_write64, mem_write_bytes, ptr_add, readl, req_op, rq_dma_dir, schedule_work,
  sg_dma_address, sg_dma_len, sg_next, spin_lock, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore,
  upper_32_bits, writel, defineStruct,
  type BlkEhTimerReturn, type BlkMqHwCtx, type BlkMqQueueData, type Request, type Scatterlist, type blk_status_t,
  type irqreturn_t,
} from '../../kernel/index.js'
import {
  NVME_CC_ENABLE, NVME_CSTS_CFS, NVME_CTRL_PAGE_SIZE, NVME_REG_CC, NVME_REG_CSTS, NVME_RW_FUA, NVME_SC_DNR,
  NVME_SC_ABORT_REQ, NVME_SC_HOST_ABORTED_CMD, NVME_SC_INVALID_FIELD,
  NVME_SC_INVALID_OPCODE, NVME_SC_LBA_RANGE, NVME_SC_MASK, NVME_SC_SUCCESS, nvme_cmd_flush, nvme_cmd_read,
  nvme_cmd_write, nvme_cmd_write_zeroes, nvme_command, nvme_completion,
} from './nvme_hw.js'
import { NVME_SMALL_POOL_SIZE, type NvmeDev, type NvmeIod, type NvmePrps, type NvmeQueue } from './nvme_defs.js'

/** A PRP list entry: a little-endian u64 bus address. */
export const nvme_prp = defineStruct('nvme_prp', { addr: 'u64' })

/** A status to hand the block layer (nvme_error_status). */
export function nvme_error_status(status: number): blk_status_t {
  switch (status & NVME_SC_MASK) {
    case NVME_SC_SUCCESS:
      return BLK_STS_OK
    case NVME_SC_LBA_RANGE:
      return BLK_STS_TARGET
    case NVME_SC_INVALID_OPCODE:
    case NVME_SC_INVALID_FIELD:
      return BLK_STS_NOTSUPP
    case 0x280: // media errors: unrecovered read error
    case 0x281:
      return BLK_STS_MEDIUM
    default:
      return BLK_STS_IOERR
  }
}

// ------------------------------------------------------------------------------ submission

/**
 * nvme_pci_setup_prps: PRP1 is the first (possibly offset) page; PRP2 the second page, or a PRP
 * list when more than two pages, whose last entry chains to the next list page when one fills.
 */
export function nvme_setup_prps(dev: NvmeDev, iod: NvmeIod, sgl: Scatterlist, length: number): NvmePrps | null {
  const page = NVME_CTRL_PAGE_SIZE
  let sg: Scatterlist | null = sgl
  let dma_addr: number = sg_dma_address(sg)
  let dma_len = sg_dma_len(sg)
  const offset = dma_addr & (page - 1)
  const prp1 = dma_addr
  length -= page - offset
  if (length <= 0) return { prp1, prp2: 0 }
  dma_len -= page - offset
  if (dma_len > 0) dma_addr += page - offset
  else {
    sg = sg_next(sg)!
    dma_addr = sg_dma_address(sg)
    dma_len = sg_dma_len(sg)
  }
  if (length <= page) return { prp1, prp2: dma_addr }
  const nprps = Math.ceil(length / page)
  const small = nprps <= NVME_SMALL_POOL_SIZE / 8
  iod.prp_small = small
  let list = dma_pool_alloc(small ? dev.prp_small_pool! : dev.prp_page_pool!, GFP_ATOMIC)
  if (list === null) return null
  iod.prp_cpu.push(list.cpu)
  iod.prp_dma.push(list.dma)
  const prp2 = list.dma
  const per_page = page >> 3
  let i = 0
  for (;;) {
    if (i === per_page) {
      // The list page is full: its last entry becomes the pointer to the next list page.
      const old = list
      list = dma_pool_alloc(dev.prp_page_pool!, GFP_ATOMIC)
      if (list === null) return null
      iod.prp_cpu.push(list.cpu)
      iod.prp_dma.push(list.dma)
      const last = ptr_add(old.cpu, (i - 1) * 8)
      mem_write64(list.cpu, 0, nvme_prp.at(last).addr)
      mem_write64(last, 0, list.dma)
      i = 1
    }
    mem_write64(list.cpu, i * 8, dma_addr)
    i++
    dma_len -= page
    dma_addr += page
    length -= page
    if (length <= 0) break
    if (dma_len > 0) continue
    sg = sg_next(sg)!
    dma_addr = sg_dma_address(sg)
    dma_len = sg_dma_len(sg)
  }
  return { prp1, prp2 }
}

/** Frees a request's PRP lists and unmaps its data (nvme_unmap_data). */
export function nvme_unmap_data(dev: NvmeDev, rq: Request): void {
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  for (let i = 0; i < iod.prp_cpu.length; i++) {
    const pool = i === 0 && iod.prp_small ? dev.prp_small_pool! : dev.prp_page_pool!
    dma_pool_free(pool, iod.prp_cpu[i]!, iod.prp_dma[i]!)
  }
  while (iod.prp_cpu.length > 0) iod.prp_cpu.pop()
  while (iod.prp_dma.length > 0) iod.prp_dma.pop()
  if (iod.nents > 0) dma_unmap_sg(dev.pdev.dev, iod.sgt.sgl!, iod.orig_nents, rq_dma_dir(rq))
  iod.nents = 0
  iod.orig_nents = 0
}

/** nvme_map_data: the request's segments, DMA-mapped, as PRPs; null on failure. */
export function nvme_map_data(dev: NvmeDev, rq: Request, iod: NvmeIod): NvmePrps | null {
  iod.orig_nents = blk_rq_map_sg(rq, iod.sgt.sgl!)
  if (iod.orig_nents === 0) return null
  iod.nents = dma_map_sg(dev.pdev.dev, iod.sgt.sgl!, iod.orig_nents, rq_dma_dir(rq))
  if (iod.nents === 0) {
    iod.orig_nents = 0
    return null
  }
  const prps = dev.paths.setup_prps(dev, iod, iod.sgt.sgl!, blk_rq_payload_bytes(rq))
  if (prps === null) dev.paths.unmap_data(dev, rq)
  return prps
}

/** nvme_sq_copy_cmd + nvme_write_sq_db: the entry at sq_tail, then (if asked) the doorbell. */
export function nvme_write_sqe(nvmeq: NvmeQueue, rq: Request, iod: NvmeIod, prp1: number, prp2: number, write_sq: boolean): void {
  // nvme_sq_copy_cmd: the command is built whole, then copied into the slot at sq_tail with one
  // memcpy, as Linux does (the device reads it only after the doorbell's writel).
  const cmd = iod.cmd!
  const c = sqe_view
  const o = SQE
  sqe_bytes.fill(0) // cdw2, cdw3, metadata
  c.setUint8(o.opcode, cmd.opcode)
  c.setUint8(o.flags, cmd.flags)
  c.setUint16(o.command_id, nvme_cid(rq, iod), true)
  c.setUint32(o.nsid, cmd.nsid, true)
  c.setBigUint64(o.prp1, BigInt(prp1), true)
  c.setBigUint64(o.prp2, BigInt(prp2), true)
  c.setUint32(o.cdw10, cmd.cdw10, true)
  c.setUint32(o.cdw11, cmd.cdw11, true)
  c.setUint32(o.cdw12, cmd.cdw12, true)
  c.setUint32(o.cdw13, cmd.cdw13, true)
  c.setUint32(o.cdw14, cmd.cdw14, true)
  c.setUint32(o.cdw15, cmd.cdw15, true)
  mem_write_bytes(ptr_add(nvmeq.sq_cmds, nvmeq.sq_tail * nvme_command.size), sqe_bytes)
  if (++nvmeq.sq_tail === nvmeq.q_depth) nvmeq.sq_tail = 0
  if (write_sq) nvmeq.dev.paths.write_sq_db(nvmeq)
}

/** The struct nvme_command nvme_write_sqe builds before the copy, and its fields' offsets (nvme_hw.ts). */
const sqe_bytes = new Uint8Array(nvme_command.size)
const sqe_view = new DataView(sqe_bytes.buffer)
const SQE_FIELDS = ['opcode', 'flags', 'command_id', 'nsid', 'prp1', 'prp2', 'cdw10', 'cdw11', 'cdw12', 'cdw13', 'cdw14', 'cdw15'] as const
const SQE = Object.fromEntries(SQE_FIELDS.map((f) => [f, nvme_command.offsetof(f)])) as Record<(typeof SQE_FIELDS)[number], number>

/** Rings the SQ tail doorbell if the tail moved; the non-relaxed writel orders the entries before it. */
export function nvme_write_sq_db(nvmeq: NvmeQueue): void {
  if (nvmeq.sq_tail === nvmeq.last_sq_tail) return
  writel(nvmeq.sq_tail, nvmeq.q_db)
  nvmeq.last_sq_tail = nvmeq.sq_tail
}

/** nvme_setup_cmd for block I/O: read, write (FUA), flush, write zeroes. */
function nvme_setup_cmd(dev: NvmeDev, rq: Request, iod: NvmeIod): blk_status_t {
  const op = req_op(rq)
  if (op === REQ_OP_DRV_IN || op === REQ_OP_DRV_OUT) return iod.cmd === null ? BLK_STS_IOERR : BLK_STS_OK
  iod.cmd = { opcode: 0, flags: 0, nsid: 1, cdw10: 0, cdw11: 0, cdw12: 0, cdw13: 0, cdw14: 0, cdw15: 0 }
  const c = iod.cmd
  if (op === REQ_OP_FLUSH) {
    c.opcode = nvme_cmd_flush
    return BLK_STS_OK
  }
  if (op !== REQ_OP_READ && op !== REQ_OP_WRITE && op !== REQ_OP_WRITE_ZEROES) return BLK_STS_NOTSUPP
  const slba = Math.floor(blk_rq_pos(rq) / (1 << (dev.lba_shift - 9)))
  const nlb = (blk_rq_bytes(rq) >> dev.lba_shift) - 1
  c.opcode = op === REQ_OP_READ ? nvme_cmd_read : op === REQ_OP_WRITE ? nvme_cmd_write : nvme_cmd_write_zeroes
  c.cdw10 = lower_32_bits(slba)
  c.cdw11 = upper_32_bits(slba)
  c.cdw12 = nlb | ((rq.cmd_flags & REQ_FUA) !== 0 ? NVME_RW_FUA << 16 : 0)
  return BLK_STS_OK
}

/** nvme_queue_rq: atomic context. */
export function nvme_queue_rq(hctx: BlkMqHwCtx, bd: BlkMqQueueData): blk_status_t {
  const nvmeq = hctx.driver_data as NvmeQueue
  const dev = nvmeq.dev
  const rq = bd.rq
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  if (!nvmeq.enabled) return BLK_STS_IOERR
  iod.status = 0
  iod.result = 0
  iod.aborted = false
  iod.genctr = (iod.genctr + 1) & 0xf
  const st = nvme_setup_cmd(dev, rq, iod)
  if (st !== BLK_STS_OK) return st
  let prp1 = iod.cmd!.prp1 ?? 0
  let prp2 = 0
  if (blk_rq_payload_bytes(rq) > 0) {
    const prps = dev.paths.map_data(dev, rq, iod)
    if (prps === null) return BLK_STS_RESOURCE
    prp1 = prps.prp1
    prp2 = prps.prp2
  }
  blk_mq_start_request(rq)
  spin_lock(nvmeq.sq_lock)
  dev.paths.write_sqe(nvmeq, rq, iod, prp1, prp2, bd.last)
  spin_unlock(nvmeq.sq_lock)
  return BLK_STS_OK
}

/** nvme_commit_rqs: rings the doorbell for a batch that ended early. */
export function nvme_commit_rqs(hctx: BlkMqHwCtx): void {
  const nvmeq = hctx.driver_data as NvmeQueue
  spin_lock(nvmeq.sq_lock)
  nvmeq.dev.paths.write_sq_db(nvmeq)
  spin_unlock(nvmeq.sq_lock)
}

// ------------------------------------------------------------------------------ completion

/**
 * nvme_cid: the command id is the tag with the request's generation in the top 4 bits
 * (| gen | tag |, drivers/nvme/host/nvme.h), so a completion that comes after the tag was reused
 * does not complete the new request.
 */
export function nvme_cid(rq: Request, iod: NvmeIod): number {
  return ((iod.genctr & 0xf) << 12) | rq.tag
}

/** nvme_find_rq: the request a command id names, or null (unknown tag, or a stale generation). */
export function nvme_find_rq(tags: BlkMqTags, command_id: number): Request | null {
  const genctr = (command_id & 0xf000) >> 12
  const tag = command_id & 0xfff
  const rq = blk_mq_tag_to_rq(tags, tag)
  if (rq === null) {
    pr_err('could not locate request for tag %#x', tag)
    return null
  }
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  if ((iod.genctr & 0xf) !== genctr) {
    pr_err('request %#x genctr mismatch (got %#x expected %#x)', tag, genctr, iod.genctr & 0xf)
    return null
  }
  return rq
}

/** nvme_cqe_pending: the entry at cq_head carries the phase this lap expects. */
export function nvme_cqe_pending(nvmeq: NvmeQueue): boolean {
  return (nvme_completion.at(nvmeq.cqes, nvmeq.cq_head).status & 1) === nvmeq.cq_phase
}

/** nvme_handle_cqe: finds the request by command id and completes it. */
export function nvme_handle_cqe(nvmeq: NvmeQueue, idx: number): void {
  const cqe = nvme_completion.at(nvmeq.cqes, idx)
  const command_id = cqe.command_id
  const status = cqe.status >> 1
  const result = cqe.result
  const dev = nvmeq.dev
  const set = nvmeq.qid === 0 ? dev.admin_tagset : dev.tagset
  const rq = nvme_find_rq(set.tags![nvmeq.tags_index]!, command_id)
  if (rq === null) {
    dev_warn(dev.pdev.dev, 'invalid id %d completed on queue %d', command_id, nvmeq.qid)
    return
  }
  // A completion for a request that is not in flight: the device completed it already (or never
  // had it). Completing it again would end a request twice. Linux does not check this (the genctr
  // catches a tag's reuse only); a device that repeats a completion is what makes it necessary.
  if (!blk_mq_request_started(rq) || blk_mq_request_completed(rq)) {
    dev_warn(dev.pdev.dev, 'command id %d on queue %d is not in flight', command_id, nvmeq.qid)
    return
  }
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  iod.status = status
  iod.result = result
  blk_mq_complete_request(rq)
}

/** nvme_poll_cq: consumes every pending entry; one CQ head doorbell for the batch. */
export function nvme_poll_cq(nvmeq: NvmeQueue): number {
  let found = 0
  while (nvme_cqe_pending(nvmeq)) {
    found++
    // Read the rest of the entry only after its phase says it is new.
    dma_rmb()
    nvme_handle_cqe(nvmeq, nvmeq.cq_head)
    if (++nvmeq.cq_head === nvmeq.q_depth) {
      nvmeq.cq_head = 0
      nvmeq.cq_phase ^= 1
    }
  }
  if (found > 0) writel(nvmeq.cq_head, nvmeq.cq_db)
  return found
}

/** nvme_irq: one vector per completion queue (or every queue on a shared INTx/single vector). */
export function nvme_irq(_irq: number, data: unknown): irqreturn_t {
  const nvmeq = data as NvmeQueue
  return nvmeq.dev.paths.poll_cq(nvmeq) > 0 ? IRQ_HANDLED : IRQ_NONE
}

/** nvme_pci_complete_rq: the BLOCK softirq. */
export function nvme_pci_complete_rq(rq: Request): void {
  const dev = (rq.mq_hctx.driver_data as NvmeQueue).dev
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  dev.paths.unmap_data(dev, rq)
  // nvme_decide_disposition: a command our Abort ended is resent (nvme_retry_req), up to
  // NVME_MAX_RETRIES times. (Linux resends any failure without DNR; this driver only these.)
  const op = req_op(rq)
  const passthrough = op === REQ_OP_DRV_IN || op === REQ_OP_DRV_OUT
  if ((iod.status & NVME_SC_MASK) === NVME_SC_ABORT_REQ && iod.retries < NVME_MAX_RETRIES && !passthrough) {
    iod.retries++
    iod.status = 0
    blk_mq_requeue_request(rq, false)
    blk_mq_delay_kick_requeue_list(rq.q, 0)
    return
  }
  iod.retries = 0
  // Block I/O failures are logged here; an admin command's caller reports its own (abort_endio, probe).
  if (!passthrough && iod.status !== 0 && (iod.status & NVME_SC_DNR) === 0 && (iod.status & NVME_SC_MASK) !== NVME_SC_LBA_RANGE) {
    dev_warn(dev.pdev.dev, 'I/O tag %d failed: status 0x%x', rq.tag, iod.status)
  }
  blk_mq_end_request(rq, nvme_error_status(iod.status))
}

/** nvme_max_retries: how many times a request is resent. */
export const NVME_MAX_RETRIES = 5

/**
 * nvme_timeout (process context, kblockd): a fatal controller or a dead admin queue means a reset;
 * a missed interrupt is found by polling the CQ; else an I/O command is aborted (an Abort admin
 * command, sent by abort_work) and gets one more timeout, after which the controller is reset.
 */
export function nvme_timeout(rq: Request): BlkEhTimerReturn {
  const nvmeq = rq.mq_hctx.driver_data as NvmeQueue
  const dev = nvmeq.dev
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  const csts = readl(ptr_add(dev.bar, NVME_REG_CSTS))
  if ((csts & NVME_CSTS_CFS) !== 0) {
    dev_warn(dev.pdev.dev, 'controller is down (CSTS 0x%x); will reset', csts)
    nvme_schedule_reset(dev)
    return BLK_EH_DONE
  }
  // Did we miss an interrupt?
  const flags = spin_lock_irqsave(nvmeq.sq_lock)
  dev.paths.poll_cq(nvmeq)
  spin_unlock_irqrestore(nvmeq.sq_lock, flags)
  // Completed (or even ended, if its softirq ran since): no longer in flight.
  if (blk_mq_rq_state(rq) !== MQ_RQ_IN_FLIGHT) {
    dev_warn(dev.pdev.dev, 'I/O tag %d QID %d timeout, completion polled', rq.tag, nvmeq.qid)
    return BLK_EH_DONE
  }
  if (dev.state !== 'live') {
    // Probe or a reset is waiting for this command: nobody is left to reset the controller.
    // Disable it and fail the command, so that the waiter sees an error (as Linux does).
    dev_warn(dev.pdev.dev, 'I/O tag %d QID %d timeout, disable controller', rq.tag, nvmeq.qid)
    writel(readl(ptr_add(dev.bar, NVME_REG_CC)) & ~NVME_CC_ENABLE, ptr_add(dev.bar, NVME_REG_CC))
    nvme_cancel_request(rq)
    return BLK_EH_DONE
  }
  if (nvmeq.qid === 0 || iod.aborted) {
    dev_warn(dev.pdev.dev, 'I/O tag %d QID %d timeout, reset controller', rq.tag, nvmeq.qid)
    nvme_schedule_reset(dev)
    return BLK_EH_DONE
  }
  if (dev.abort_limit <= 0) return BLK_EH_RESET_TIMER // as many Aborts out as the controller takes
  dev.abort_limit--
  iod.aborted = true
  dev_warn(dev.pdev.dev, 'I/O tag %d (%s) QID %d timeout, aborting', rq.tag, nvme_cid(rq, iod).toString(16).padStart(4, '0'), nvmeq.qid)
  dev.aborts.push({ sqid: nvmeq.qid, cid: nvme_cid(rq, iod) })
  schedule_work(dev.abort_work)
  // The aborted command completes when the controller answers the Abort; if the timer fires
  // again first, the controller is in a bad way: reset it.
  return BLK_EH_RESET_TIMER
}

/**
 * nvme_cancel_request: a request the controller will never complete (it was disabled) completes
 * with "host aborted"; one already completed is left to its completion.
 */
export function nvme_cancel_request(rq: Request): boolean {
  if (blk_mq_rq_state(rq) !== MQ_RQ_IN_FLIGHT) return true
  const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
  iod.status = NVME_SC_HOST_ABORTED_CMD | NVME_SC_DNR
  blk_mq_complete_request(rq)
  return true
}

/** Schedules the controller reset (nvme_reset_ctrl), once. */
export function nvme_schedule_reset(dev: NvmeDev): void {
  if (dev.state !== 'live') return
  dev.state = 'resetting'
  schedule_work(dev.reset_work)
}

