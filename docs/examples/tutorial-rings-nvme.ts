// An NVMe I/O queue pair (16 entries each) at three moments. Twelve writes go through first, so
// the next ones wrap around the end of the queues. Then the fault injector drops every interrupt
// while five more writes go in: the controller fetches each command, does it and posts its
// completion entry, but nobody looks at the CQ. The block layer's timeout (30 s) calls nvme_timeout,
// which polls the CQ and consumes the five by their phase tags. The pictures come from the live
// run (host/nvme-queue-svg.ts): when the driver rings the SQ doorbell for the first of the five
// (the hardware tracer's MMIO event comes before the controller takes the write), 100 µs later,
// and after the timeout.
import {
  blockUser,
  boot,
  pci_register_driver,
  type BootOptions,
  type Report,
} from '../../kernel/index.js'
import { NvmeController } from '../../devices/index.js'
import { nvme_make_driver } from '../../drivers/nvme/nvme.js'
import {
  nvmeQueueSvg,
  snapshotNvmeQueues,
  type NvmeQueueSnapshot,
} from '../../host/nvme-queue-svg.js'

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const ctrl = new NvmeController({ name: 'nvme0', sizeBytes: 32 << 20 })
  const sys = boot({ log: 'silent', ...options, devices: [ctrl] })
  await sys.run(() => pci_register_driver(nvme_make_driver({ io_queues: 1, io_queue_depth: 16 })))
  const blk = blockUser(sys)
  const block = (n: number) => new Uint8Array(4096).fill(n)
  const lines: string[] = []
  const show = (what: string, s: NvmeQueueSnapshot) => {
    const posted = s.cq.filter((c) => c.owner === 'posted').map((c) => c.index)
    lines.push(`${what}:`)
    lines.push(
      `  controller: SQ head ${s.ctrl.sqHead} tail ${s.ctrl.sqTail}; CQ tail ${s.ctrl.cqTail} head ${s.ctrl.cqHead} phase ${s.ctrl.phase}`,
    )
    lines.push(
      `  driver: sq_tail ${s.driver.sqTail}; cq_head ${s.driver.cqHead} cq_phase ${s.driver.cqPhase}`,
    )
    lines.push(
      `  CQ entries posted, not consumed: ${posted.length === 0 ? 'none' : posted.join(', ')}`,
    )
  }
  for (let i = 0; i < 12; i++) await blk.write('nvme0n1', i * 8, block(i))
  sys.machine.faults.add({ device: 'nvme0', kind: 'drop-irq', count: Infinity })
  let rung: NvmeQueueSnapshot | null = null
  sys.machine.tracer.on('mmio', (e) => {
    // 0x1008: the SQ 1 tail doorbell (doorbells from 0x1000, 4 bytes apart: SQ 0, CQ 0, SQ 1...)
    if (e.write && e.off === 0x1008 && rung === null) rung = snapshotNvmeQueues(sys, ctrl, 1)
  })
  let waiting: NvmeQueueSnapshot | null = null
  sys.machine.clock.schedule(sys.clock + 100_000, () => {
    waiting = snapshotNvmeQueues(sys, ctrl, 1)
  })
  const lost = [0, 1, 2, 3, 4].map((i) => blk.write('nvme0n1', 200 + i * 8, block(0x40 + i)))
  await Promise.all(lost) // 30 s later, after nvme_timeout
  const consumed = snapshotNvmeQueues(sys, ctrl, 1)
  show('the driver rings the SQ doorbell', rung!)
  show('100 µs later: 5 completions posted, their interrupts lost', waiting!)
  show('after nvme_timeout polled the CQ', consumed)
  return {
    lines,
    reports: sys.reports,
    files: {
      'rings-nvme-rung.svg': nvmeQueueSvg(rung!),
      'rings-nvme-waiting.svg': nvmeQueueSvg(waiting!),
      'rings-nvme-consumed.svg': nvmeQueueSvg(consumed),
    },
  }
}
