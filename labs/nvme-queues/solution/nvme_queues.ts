/**
 * nvme_queues: the queue pairs of the mini-NVMe controller (datasheet docs/devices/nvme.md §4-§6),
 * as in Linux's adapter_alloc_cq / adapter_alloc_sq (nvme_create_queue) and nvme_poll_cq.
 *
 * The rest of the driver (controller reset and enable, the admin queue's registers, Identify, the
 * block layer, PRPs, the SQ doorbell) is dmalab's reference nvme driver. It calls
 * lab_create_io_queue() once, for I/O queue 1, after the admin queue is up and the queue's memory
 * is allocated (coherent, zeroed, cq_head 0 and cq_phase 1 already set); and lab_poll_cq() from
 * each queue's interrupt handler (hard-IRQ context), the admin queue's included: every admin
 * command, the two Create commands yours, completes through your poll loop.
 */
import { dma_rmb, defineStruct, writel, type CpuAddr, type DmaAddr, type IoAddr } from 'dmalab'
import {
  NVME_ADMIN_CREATE_CQ, NVME_ADMIN_CREATE_SQ, NVME_ADMIN_DELETE_CQ, NVME_CQE_PHASE, NVME_CQ_IRQ_ENABLED,
  NVME_QUEUE_PHYS_CONTIG,
} from 'dmalab/devices'

// ---------------------------------------------------------------- what the reference driver gives you

/** struct nvme_completion: 16 bytes in the coherent CQ (datasheet §5); status bit 0 is the phase tag. */
export const nvme_completion = defineStruct('nvme_completion', {
  result: { offset: 0, type: 'u32' },
  rsvd: { offset: 4, type: 'u32' },
  sq_head: { offset: 8, type: 'u16' },
  sq_id: { offset: 10, type: 'u16' },
  command_id: { offset: 12, type: 'u16' },
  status: { offset: 14, type: 'u16' },
})

/** What the lab uses of a queue pair (struct nvme_queue). */
export interface NvmeQueue {
  qid: number // 0: the admin queue
  q_depth: number // entries in each of the SQ and the CQ
  sq_dma: DmaAddr // the SQ's bus address (coherent, physically contiguous)
  cqes: CpuAddr // the CQ (coherent): q_depth entries of 16 bytes
  cq_dma: DmaAddr
  cq_head: number // the next entry to look at
  cq_phase: number // the phase tag that entry carries once it is new (1 on the first lap)
  cq_db: IoAddr // the CQ head doorbell
  cq_vector: number // the MSI-X vector of the CQ
  enabled: boolean // set once the controller has the queue pair
}

/** An admin command the lab sends (the other fields are 0). */
export interface AdminCommand {
  opcode: number
  cdw10: number
  cdw11: number
  prp1: DmaAddr
}

/** What the reference driver lends the lab for admin commands. */
export interface LabAdmin {
  /** Submits one admin command and sleeps until it completes: 0, or a negative errno (-EIO when the controller failed it). */
  submit(cmd: AdminCommand): Promise<number>
  /** The MSI-X vector queue `qid` completes on (IV in Create I/O CQ). */
  cq_vector(qid: number): number
}

/** Completes the request `command_id` names (what nvme_handle_cqe does after reading the entry). */
export type CompleteFn = (command_id: number, status: number, result: number) => void

// ---------------------------------------------------------------- the lab

/** nvme_create_queue: the CQ first, then the SQ that completes into it. 0 or a negative errno. */
export async function lab_create_io_queue(q: NvmeQueue, admin: LabAdmin): Promise<number> {
  q.cq_vector = admin.cq_vector(q.qid)
  const size = ((q.q_depth - 1) << 16) | q.qid // QSIZE is 0-based
  let r = await admin.submit({
    opcode: NVME_ADMIN_CREATE_CQ,
    cdw10: size,
    cdw11: (q.cq_vector << 16) | NVME_QUEUE_PHYS_CONTIG | NVME_CQ_IRQ_ENABLED,
    prp1: q.cq_dma,
  })
  if (r !== 0) return r
  r = await admin.submit({ opcode: NVME_ADMIN_CREATE_SQ, cdw10: size, cdw11: (q.qid << 16) | NVME_QUEUE_PHYS_CONTIG, prp1: q.sq_dma })
  if (r !== 0) {
    await admin.submit({ opcode: NVME_ADMIN_DELETE_CQ, cdw10: q.qid, cdw11: 0, prp1: 0 as DmaAddr })
    return r
  }
  q.enabled = true
  return 0
}

/** nvme_poll_cq (hard IRQ): consumes every new completion entry; one CQ head doorbell for the batch. */
export function lab_poll_cq(q: NvmeQueue, complete: CompleteFn): number {
  let found = 0
  for (;;) {
    const cqe = nvme_completion.at(q.cqes, q.cq_head)
    const status = cqe.status
    if ((status & NVME_CQE_PHASE) !== q.cq_phase) break
    found++
    dma_rmb() // the rest of the entry only after its phase says it is new
    complete(cqe.command_id, status >> 1, cqe.result)
    if (++q.cq_head === q.q_depth) {
      q.cq_head = 0
      q.cq_phase ^= 1 // the next lap's entries carry the other phase
    }
  }
  if (found > 0) writel(q.cq_head, q.cq_db)
  return found
}
