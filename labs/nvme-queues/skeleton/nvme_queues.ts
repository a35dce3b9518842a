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
 *
 * LAB SKELETON: write lab_create_io_queue and lab_poll_cq (the TODOs), then
 * `dmalab lab check nvme-queues <this folder>`. Stuck? `dmalab lab hint nvme-queues [n]`.
 */
// What you will need (add it to the imports as you go):
//   from 'dmalab': dma_rmb, writel
//   from 'dmalab/devices': NVME_ADMIN_CREATE_CQ, NVME_ADMIN_CREATE_SQ, NVME_ADMIN_DELETE_CQ,
//     NVME_CQE_PHASE, NVME_CQ_IRQ_ENABLED, NVME_QUEUE_PHYS_CONTIG
import { ENOSYS, defineStruct, type CpuAddr, type DmaAddr, type IoAddr } from 'dmalab'

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
  // TODO(1): the completion queue: q.cq_vector = admin.cq_vector(q.qid); admin.submit() a Create
  //          I/O CQ (cdw10: 0-based size << 16 | qid; cdw11: vector << 16 | physically
  //          contiguous | interrupts enabled; prp1: the CQ's memory). Return its error if it fails.
  // TODO(2): the submission queue that completes into it: Create I/O SQ (cdw10 as above; cdw11:
  //          the CQ's id << 16 | physically contiguous; prp1: the SQ's memory). If it fails,
  //          delete the CQ again and return the error.
  // TODO(3): the pair is ready: q.enabled = true, return 0.
  void admin
  void q
  await Promise.resolve()
  return -ENOSYS
}

/** nvme_poll_cq (hard IRQ): consumes every new completion entry; one CQ head doorbell for the batch. */
export function lab_poll_cq(q: NvmeQueue, complete: CompleteFn): number {
  // TODO(4): while the entry at q.cq_head (nvme_completion.at(q.cqes, q.cq_head)) carries the
  //          phase this lap expects (status bit 0 === q.cq_phase): make sure the rest of the entry
  //          is read only after its status, then complete(command_id, status >> 1, result).
  // TODO(5): advance cq_head; at q.q_depth wrap it to 0 and flip cq_phase.
  // TODO(6): if you consumed any entry, tell the controller with the CQ head doorbell (q.cq_db).
  //          Return how many entries you consumed.
  void q
  void complete
  return 0
}
