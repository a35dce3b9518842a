/**
 * The NVMe reference driver (drivers/nvme/) on the mini-NVMe controller: verified random writes
 * and reads with fio on two queues (kernel/block's fio-like generator), then a flush; every block
 * read back is checked against what was written.
 */
import { blockUser, fio } from '../kernel/index.js'
import { NvmeController } from '../devices/index.js'
import { nvme_make_driver } from '../drivers/nvme/nvme.js'
import { defineScenario } from './scenario.js'

export default defineScenario({
  name: 'nvme',
  description: 'the NVMe reference driver under verified fio random writes then reads (2 queues, 4 jobs, depth 4)',
  devices: () => [new NvmeController({ name: 'nvme0', sizeBytes: 8 << 20 })],
  driver: () => nvme_make_driver({ io_queues: 2 }),
  boot: { checks: { stacks: false } },
  async workload({ sys, options }) {
    if (blockUser(sys).disks().length === 0) return { dataOk: false, summary: 'no disk nvme0n1' }
    const job = { disk: 'nvme0n1', bs: 4096, iodepth: 4, numjobs: 4, queues: [0, 1, 0, 1], numIos: 24, size: 4 << 20, seed: options.seed, verify: true } as const
    const w = await fio(sys, { ...job, rw: 'randwrite' })
    const r = await fio(sys, { ...job, rw: 'randread', verifyState: w.verifyState })
    await blockUser(sys).flush('nvme0n1')
    const ok = w.errors === 0 && r.errors === 0 && r.verifyErrors === 0
    return { dataOk: ok, summary: `fio: ${w.ios} writes, ${r.ios} reads, ${r.verified} verified, ${w.errors + r.errors} I/O errors, ${r.verifyErrors} verify errors` }
  },
})
