/**
 * Lab nvme-queues: the queue pairs of the mini-NVMe controller. The student writes
 * lab_create_io_queue (Create I/O CQ, then Create I/O SQ naming it) and lab_poll_cq (the phase
 * tag, dma_rmb(), the completion, the head and phase wrap, the CQ head doorbell), used for the
 * admin queue and the I/O queue; the rest is dmalab's reference nvme driver, with a 16-entry I/O
 * queue so that the phase flips many times under a verified fio run.
 */
import { blk_mq_complete_request, blk_mq_request_completed, blk_mq_request_started, blk_mq_rq_to_pdu, blockUser, dev_warn, fio } from '../../kernel/index.js'
import type { DmaAddr } from '../../kernel/index.js'
import { NvmeController } from '../../devices/index.js'
import {
  NVME_PATHS, empty_cmd, nvme_cq_vector, nvme_find_rq, nvme_make_driver, nvme_submit_cmd_with_prp, type NvmeDev, type NvmeIod,
  type NvmeQueue,
} from '../../drivers/nvme/nvme.js'
import { defineScenario } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction } from '../lab-api.js'

const IO_DEPTH = 16

interface AdminCommand {
  opcode: number
  cdw10: number
  cdw11: number
  prp1: DmaAddr
}
interface LabAdmin {
  submit(cmd: AdminCommand): Promise<number>
  // eslint-disable-next-line @typescript-eslint/naming-convention -- the student's interface, named as in Linux
  cq_vector(qid: number): number
}
type CompleteFn = (command_id: number, status: number, result: number) => void
type CreateFn = (q: NvmeQueue, admin: LabAdmin) => Promise<number>
type PollFn = (q: NvmeQueue, complete: CompleteFn) => number

/** The admin commands the student sends, through the reference driver's synchronous submit. */
function labAdmin(dev: NvmeDev): LabAdmin {
  return {
    submit: (c) => {
      const cmd = empty_cmd(c.opcode)
      cmd.cdw10 = c.cdw10
      cmd.cdw11 = c.cdw11
      return nvme_submit_cmd_with_prp(dev, cmd, c.prp1)
    },
    cq_vector: (qid) => nvme_cq_vector(dev, qid),
  }
}

/** nvme_handle_cqe after the entry is read: the request the command id names, completed once. */
function labComplete(q: NvmeQueue): CompleteFn {
  return (commandId, status, result) => {
    const dev = q.dev
    const set = q.qid === 0 ? dev.admin_tagset : dev.tagset
    const rq = nvme_find_rq(set.tags![q.tags_index]!, commandId)
    if (rq === null) {
      dev_warn(dev.pdev.dev, 'invalid id %d completed on queue %d', commandId, q.qid)
      return
    }
    if (!blk_mq_request_started(rq) || blk_mq_request_completed(rq)) {
      dev_warn(dev.pdev.dev, 'command id %d on queue %d is not in flight', commandId, q.qid)
      return
    }
    const iod = blk_mq_rq_to_pdu<NvmeIod>(rq)
    iod.status = status
    iod.result = result
    blk_mq_complete_request(rq)
  }
}

export default defineLab({
  id: 'nvme-queues',
  title: 'NVMe queues: create a queue pair, poll completions by phase',
  summary:
    'Write the two halves of an NVMe queue pair on the mini-NVMe controller, as Linux\'s nvme_create_queue and nvme_poll_cq do: create the ' +
    'I/O completion queue, then the submission queue that names it (never the SQ first); consume completion entries while their phase tag ' +
    'matches the lap, dma_rmb() before the command id and the result, wrap the head and flip the phase, ring the CQ head doorbell once per ' +
    'batch. Your poll loop serves the admin queue too. The rest of the driver is the reference one; a verified fio run (random writes, ' +
    'then reads) goes through a 16-entry I/O queue, on every platform.',
  entry: 'nvme_queues.ts',
  hints: [
    'Read docs/devices/nvme.md §4 (queues and doorbells), §5 (queue entries) and §6 (admin commands: Create I/O CQ 0x05, Create I/O SQ 0x01), then the driver walkthrough docs/drivers/nvme.md. drivers/nvme/nvme.ts (nvme_create_queue) and drivers/nvme/nvme_io.ts (nvme_poll_cq) are the reference.',
    'lab_create_io_queue: Create I/O SQ names the CQ its completions go to, which must already exist; an SQ first fails with Invalid Queue Identifier. So: q.cq_vector = admin.cq_vector(q.qid); Create I/O CQ with cdw10 = (q_depth - 1) << 16 | qid (sizes are 0-based), cdw11 = vector << 16 | NVME_QUEUE_PHYS_CONTIG | NVME_CQ_IRQ_ENABLED, prp1 = q.cq_dma. Then Create I/O SQ: cdw11 = qid << 16 | NVME_QUEUE_PHYS_CONTIG, prp1 = q.sq_dma. If the SQ fails, delete the CQ (NVME_ADMIN_DELETE_CQ, cdw10 = qid). On success q.enabled = true.',
    'lab_poll_cq: the entry at q.cq_head is new when (status & NVME_CQE_PHASE) === q.cq_phase. The controller writes the entry\'s body first and the status word last: dma_rmb() after the phase check and before reading command_id and result, or arm64 and riscv64 may complete the previous lap\'s command.',
    'Call complete(cqe.command_id, status >> 1, cqe.result) for each entry. Then ++cq_head; at q_depth wrap to 0 and flip cq_phase (cq_phase ^= 1): the next lap\'s new entries carry the other phase, and an unflipped phase sees nothing new (or old entries as new).',
    'After the loop, if anything was found, writel(q.cq_head, q.cq_db): the CQ head doorbell frees the entries for the controller (without it the CQ fills and the controller stops posting). Return how many entries you consumed.',
  ],
  scenario: (mod) => {
    const create = exportedFunction<CreateFn>(mod, 'lab_create_io_queue')
    const poll = exportedFunction<PollFn>(mod, 'lab_poll_cq')
    return defineScenario({
      name: 'nvme-queues',
      description: `verified fio random writes then reads through one ${IO_DEPTH}-entry I/O queue created by lab_create_io_queue; every completion through lab_poll_cq`,
      devices: () => [new NvmeController({ name: 'nvme0', sizeBytes: 8 << 20 })] as const,
      driver: () =>
        nvme_make_driver({
          io_queues: 1,
          io_queue_depth: IO_DEPTH,
          paths: {
            create_queue: (dev, q) => {
              NVME_PATHS.init_queue(q)
              return create(q, labAdmin(dev))
            },
            poll_cq: (q) => poll(q, labComplete(q)),
          },
        }),
      async workload({ sys, options }) {
        if (blockUser(sys).disks().length === 0) return { dataOk: false, summary: 'no disk nvme0n1 (the probe failed: see the reports)' }
        const job = { disk: 'nvme0n1', bs: 4096, iodepth: 4, numjobs: 2, numIos: 24, size: 4 << 20, seed: options.seed, verify: true } as const
        const w = await fio(sys, { ...job, rw: 'randwrite' })
        const r = await fio(sys, { ...job, rw: 'randread', verifyState: w.verifyState })
        const ok = w.errors === 0 && r.errors === 0 && r.verifyErrors === 0 && r.verified > 0
        return { dataOk: ok, summary: `fio: ${w.ios} writes, ${r.ios} reads, ${r.verified} verified, ${w.errors + r.errors} I/O errors, ${r.verifyErrors} verify errors` }
      },
    })
  },
  grading: {
    worksDefault: 20,
    worksEverywhere: 20,
    rules: [
      { title: 'the completion queue exists before the submission queue that names it', kinds: ['device-error'], points: 15, hint: 'Create I/O SQ names its CQ (cdw11 bits 31:16): create the CQ first (hint 2)' },
      { title: 'barriers: dma_rmb() between the phase tag and the rest of the entry', kinds: ['missing-barrier', 'double-fetch'], points: 20, hint: 'the status word is written last: read command_id and result only after dma_rmb() (hint 3)' },
      { title: 'the controller reads and writes only what the driver gave it, and nothing leaks', kinds: ['iommu-fault', 'device-access-cpu-owned', 'cpu-access-device-owned', 'leak', 'use-after-free', 'free-while-mapped'], points: 15, hint: 'prp1 of each Create command is the queue\'s own coherent memory: q.cq_dma for the CQ, q.sq_dma for the SQ' },
    ],
    clean: 10,
  },
})
