/**
 * NVMe benchmarks (issue 5): the reference driver (drivers/nvme/) on the mini-NVMe controller,
 * driven by the harness's fio (kernel/block/fio.ts) on the default platform (arm64, non-coherent,
 * IOMMU strict, swiotlb auto), with the checks on (every check but stack capture) and off
 * (`checks: false`). The figures are I/Os (or bytes) completed per HOST second — how fast the
 * emulator runs the whole stack: fio's submissions, the block layer, the driver's queue_rq (PRPs,
 * SQ entry, doorbell), the controller's command processing and DMA, the interrupt, the completion
 * and the unmap. Reads of 4 KiB at random offsets, or 128 KiB sequential; fio keeps `iodepth`
 * requests in flight per job, one job per hardware queue. Each figure is measured after a warm-up
 * run of the same job (the JIT needs tens of thousands of I/Os), as the fastest of three timed runs
 * taken in alternation with the other setting's.
 *
 * - nvme.4k.randread.qd1.iops.{unchecked,checked}
 * - nvme.4k.randread.qd32.iops.{unchecked,checked} (1 queue) and nvme.4k.randread.qd32x4q.iops.* (4 queues)
 * - nvme.128k.seqread.gbps.{unchecked,checked}
 * Targets (issue 5): >= 1 M IOPS at QD32 and >= 7 GB/s sequential with checks off; checks on within 2x.
 */
import { boot, fio, pci_register_driver } from '../kernel/index.js'
import { NvmeController } from '../devices/index.js'
import { nvme_make_driver } from '../drivers/nvme/nvme.js'
import { fastestAlternating, type BenchResult } from './harness.js'

interface Job {
  readonly bs: number
  readonly iodepth: number
  readonly queues: number
  readonly rw: 'randread' | 'read'
  readonly ios: number
}

/** A booted system with the driver bound, ready to time fio runs of the job. */
async function setup(job: Job, checked: boolean): Promise<() => Promise<number>> {
  const ctrl = new NvmeController({ name: 'nvme0', sizeBytes: 256 << 20 })
  const sys = boot({ log: 'silent', checks: checked ? { stacks: false } : false, devices: [ctrl] })
  if ((await sys.run(() => pci_register_driver(nvme_make_driver({ io_queues: job.queues })))) !== 0) throw new Error('nvme bench: probe failed')
  const opts = {
    disk: 'nvme0n1', rw: job.rw, bs: job.bs, iodepth: job.iodepth, numjobs: job.queues,
    queues: Array.from({ length: job.queues }, (_, i) => i), size: 128 << 20, verify: false, seed: 1,
  } as const
  return async () => {
    const t0 = performance.now()
    const r = await fio(sys, { ...opts, numIos: job.ios })
    const ns = (performance.now() - t0) * 1e6
    if (r.errors !== 0 || sys.reports.length > 0) throw new Error(`nvme bench: ${r.errors} errors, reports: ${sys.reports.map((x) => x.kind).join(', ')}`)
    return ns / r.ios
  }
}

/** Host ns per I/O for the job with checks off and on (harness.ts's fastestAlternating: warm-up, then the fastest of three). */
async function measure(job: Job): Promise<{ unchecked: number; checked: number }> {
  const { a: unchecked, b: checked } = await fastestAlternating(await setup(job, false), await setup(job, true))
  return { unchecked, checked }
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = []
  const jobs: [string, Job][] = [
    ['nvme.4k.randread.qd1.iops', { bs: 4096, iodepth: 1, queues: 1, rw: 'randread', ios: 20_000 }],
    ['nvme.4k.randread.qd32.iops', { bs: 4096, iodepth: 32, queues: 1, rw: 'randread', ios: 40_000 }],
    ['nvme.4k.randread.qd32x4q.iops', { bs: 4096, iodepth: 32, queues: 4, rw: 'randread', ios: 40_000 }],
  ]
  for (const [name, job] of jobs) {
    const { unchecked, checked } = await measure(job)
    for (const [k, ns] of [['unchecked', unchecked], ['checked', checked]] as const) {
      out.push({
        name: `${name}.${k}`,
        value: Math.round(1e9 / ns),
        unit: 'IOPS',
        note: `4 KiB random reads, QD${job.iodepth} x ${job.queues} queue(s), checks ${k === 'checked' ? 'on (stacks off)' : 'off'}: ${ns.toFixed(0)} host ns per I/O${k === 'checked' ? `; checked/unchecked ${(checked / unchecked).toFixed(2)}x (target <= 2)` : ' (target >= 1 M IOPS at QD32)'}`,
      })
    }
  }
  const seq: Job = { bs: 131072, iodepth: 8, queues: 1, rw: 'read', ios: 4000 }
  const { unchecked: su, checked: sc } = await measure(seq)
  for (const [k, ns] of [['unchecked', su], ['checked', sc]] as const) {
    out.push({
      name: `nvme.128k.seqread.gbps.${k}`,
      value: Number(((131072 * 8) / ns).toFixed(2)),
      unit: 'Gbit/s',
      note: `128 KiB sequential reads, QD8, checks ${k === 'checked' ? 'on (stacks off)' : 'off'}: ${ns.toFixed(0)} host ns per I/O, ${(131072 / ns).toFixed(2)} GB/s (target >= 7 GB/s unchecked${k === 'checked' ? `; checked/unchecked ${(sc / su).toFixed(2)}x` : ''})`,
    })
  }
  return out
}
