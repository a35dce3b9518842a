/**
 * Known bad (test/fixtures/copy-engine-bad/no-barrier.ts): a descriptor chain handed to the copy
 * engine with writel_relaxed and no dma_wmb() before it. The sanitizer reports missing-barrier on
 * every seed of a weakly ordered platform (arm64, riscv64); whether the engine really fetches a
 * stale descriptor, so that the data goes wrong, depends on the seeded store-buffer drain order:
 * `dmalab explore --fail-on data` finds the seeds where it does.
 */
import { kfree, kmalloc, mem_read_bytes, mem_write_bytes, memset } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { ce_driver } from '../../drivers/misc/copy-engine.js'
import { ce_copy_chain_relaxed } from '../../test/fixtures/copy-engine-bad/no-barrier.js'
import { compareBytes, defineScenario, pattern } from '../scenario.js'

const LEN = 256
const SEG = 64

export default defineScenario({
  name: 'copy-engine-no-barrier',
  description: 'known bad: a 4-descriptor chain is started with writel_relaxed and no dma_wmb (missing-barrier; data wrong on some seeds)',
  devices: () => [new CopyEngine({ name: 'ce0' })],
  driver: ce_driver,
  async workload({ sys }) {
    const pdev = sys.pciDevice('ce0')!
    return sys.run(async () => {
      const want = pattern(LEN)
      const src = kmalloc(LEN)!
      const dst = kmalloc(LEN)!
      mem_write_bytes(src, want)
      memset(dst, 0xaa, LEN)
      const rc = await ce_copy_chain_relaxed(pdev, dst, src, LEN, SEG)
      const check = rc !== 0 ? { dataOk: false, summary: `chained copy failed: ${rc}` } : compareBytes(mem_read_bytes(dst, LEN), want, `chained copy of ${LEN} bytes`)
      kfree(src)
      kfree(dst)
      return check
    })
  },
})
