/**
 * The copy-engine reference driver (drivers/misc/copy-engine.ts): memory-to-memory copies of a
 * few sizes, each destination pre-filled so that stale cache lines would show, every byte checked.
 */
import { kfree, kmalloc, mem_read_bytes, mem_write_bytes, memset } from '../kernel/index.js'
import { CopyEngine } from '../devices/index.js'
import { ce_copy, ce_driver } from '../drivers/misc/copy-engine.js'
import { compareBytes, defineScenario, pattern } from './scenario.js'

const SIZES = [100, 4096, 65536]

export default defineScenario({
  name: 'copy-engine',
  description: 'the copy-engine reference driver copies buffers of 100 B, 4 KiB and 64 KiB; every byte is checked',
  devices: () => [new CopyEngine({ name: 'ce0' })],
  driver: ce_driver,
  async workload({ sys }) {
    const pdev = sys.pciDevice('ce0')!
    return sys.run(async () => {
      for (const [i, n] of SIZES.entries()) {
        const want = pattern(n, i + 1)
        const src = kmalloc(n)!
        const dst = kmalloc(n)!
        mem_write_bytes(src, want)
        memset(dst, 0xaa, n) // the old contents sit dirty in the cache while the engine writes
        const rc = await ce_copy(pdev, dst, src, n)
        const check = rc !== 0 ? { dataOk: false, summary: `copy of ${n} bytes failed: ${rc}` } : compareBytes(mem_read_bytes(dst, n), want, `copy of ${n} bytes`)
        kfree(src)
        kfree(dst)
        if (!check.dataOk) return check
      }
      return { dataOk: true, summary: `${SIZES.length} copies (${SIZES.join(', ')} bytes), every byte right` }
    })
  },
})
