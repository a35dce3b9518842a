/**
 * Known bad (test/fixtures/copy-engine-bad/missing-sync.ts): the destination is read as soon as
 * DONE arrives, before dma_unmap_single hands it back to the CPU. Reported as
 * cpu-access-device-owned on every platform; the bytes read are stale where the cache is not
 * coherent (arm64, riscv64) and under swiotlb=force. On x86_64 the data survives: the portability
 * bug `dmalab portability` shows.
 */
import { kfree, kmalloc, mem_write_bytes, memset } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { ce_driver } from '../../drivers/misc/copy-engine.js'
import { ce_copy_peek } from '../../test/fixtures/copy-engine-bad/missing-sync.js'
import { compareBytes, defineScenario, pattern } from '../scenario.js'

const LEN = 4096

export default defineScenario({
  name: 'copy-engine-missing-sync',
  description: 'known bad: the copy is checked before dma_unmap_single / dma_sync_single_for_cpu (cpu-access-device-owned; stale data where not coherent)',
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
      const { rc, seen } = await ce_copy_peek(pdev, dst, src, LEN)
      kfree(src)
      kfree(dst)
      if (rc !== 0) return { dataOk: false, summary: `copy failed: ${rc}` }
      return compareBytes(seen, want.subarray(0, seen.length), 'bytes the driver checked after DONE')
    })
  },
})
