/**
 * Lab copy-engine-hello: the first DMA transfer. The student completes a small copy-engine driver
 * (skeleton/ce_hello.ts): the interrupt handler, one transfer (map, program, wait for the IRQ,
 * unmap) and a long-lived buffer read between dma_sync_single_for_cpu / _for_device.
 */
import { ENOSYS, kfree, kmalloc, mem_read_bytes, mem_write_bytes, memset, type CpuAddr, type PciDev, type PciDriver } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { compareBytes, defineScenario, pattern, type WorkloadResult } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction, exportedObject } from '../lab-api.js'

type CopyFn = (pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number) => Promise<number>

export default defineLab({
  id: 'copy-engine-hello',
  title: 'Hello, DMA: one transfer and an interrupt on the copy engine',
  summary:
    'Finish ce_hello.ts, a small driver for the copy engine: acknowledge its interrupt, map two buffers with the right directions, ' +
    'start a transfer and sleep until the IRQ completes it, unmap; then read a buffer that stays mapped, with dma_sync_single_for_cpu() ' +
    'and dma_sync_single_for_device(). Graded on arm64, riscv64 and x86_64, with swiotlb bouncing and a strict IOMMU.',
  entry: 'ce_hello.ts',
  hints: [
    'Read docs/devices/copy-engine.md §2 (registers) and §4 (a transfer): SRC/DST/LEN, then CTRL = START | IRQ_EN; the engine raises DONE (or ERR) in STATUS and interrupts.',
    'hello_irq: read STATUS; if neither DONE nor ERR is set the interrupt is not yours (return IRQ_NONE). Otherwise write the bits back to STATUS (write 1 to clear), remember them in hd.status, complete(hd.done), return IRQ_HANDLED.',
    'Directions: the engine READS the source (DMA_TO_DEVICE) and WRITES the destination (DMA_FROM_DEVICE). Every dma_map_single() can fail: test it with dma_mapping_error() before the address goes anywhere, and unmap what you already mapped on the way out.',
    'hello_run: reinit_completion(hd.done) before START, not after (the IRQ may come first). Use writel() for START, not writel_relaxed(): the non-relaxed write orders your earlier memory writes before the doorbell. Then await wait_for_completion_timeout(hd.done, msecs_to_jiffies(...)); 0 left means a timeout.',
    'Unmap only after the completion: until then the engine may still be reading and writing the buffers. The unmap is what hands the destination back to the CPU (on arm64 it invalidates the cache; with swiotlb it copies the bounce buffer back).',
    'hello_fetch: result stays mapped DMA_FROM_DEVICE from probe to remove. After the transfer, dma_sync_single_for_cpu(dev, hd.result_dma, len, DMA_FROM_DEVICE) before the CPU reads result, then dma_sync_single_for_device(...) to give it back before the next transfer.',
  ],
  scenario: (mod) => {
    const driver = exportedObject<PciDriver>(mod, 'hello_driver')
    const copy = exportedFunction<CopyFn>(mod, 'hello_copy')
    const fetch = exportedFunction<CopyFn>(mod, 'hello_fetch')
    return defineScenario({
      name: 'copy-engine-hello',
      description: 'hello_copy of 4 KiB and 100 bytes, then hello_fetch of 64 and 200 bytes; every byte is checked',
      devices: () => [new CopyEngine({ name: 'ce0' })],
      driver,
      async workload({ sys }) {
        const pdev = sys.pciDevice('ce0')!
        return sys.run(async (): Promise<WorkloadResult> => {
          // Every step runs even after one fails, so that each step's reports are seen.
          const wrong: string[] = []
          const steps: [string, CopyFn, number, number][] = [
            ['hello_copy', copy, 4096, 1],
            ['hello_copy', copy, 100, 2],
            ['hello_fetch', fetch, 64, 3],
            ['hello_fetch', fetch, 200, 4],
          ]
          for (const [name, fn, len, tag] of steps) {
            const want = pattern(len, tag)
            const src = kmalloc(len)!
            const dst = kmalloc(len)!
            mem_write_bytes(src, want)
            memset(dst, 0xaa, len)
            const rc = await fn(pdev, dst, src, len)
            const r = rc !== 0 ? { dataOk: false, summary: `${name}(${len} bytes) returned ${rc}${rc === -ENOSYS ? ' (-ENOSYS: a TODO is not done yet)' : ''}` } : compareBytes(mem_read_bytes(dst, len), want, `${name}(${len} bytes)`)
            kfree(src)
            kfree(dst)
            if (!r.dataOk) wrong.push(r.summary ?? name)
          }
          return wrong.length === 0 ? { dataOk: true, summary: 'two copies and two fetches: every byte right' } : { dataOk: false, summary: wrong.join('; ') }
        })
      },
    })
  },
  grading: {
    worksDefault: 20,
    worksEverywhere: 20,
    rules: [
      { title: 'the CPU touches a streaming buffer only while it owns it', kinds: ['cpu-access-device-owned', 'device-access-cpu-owned', 'cacheline-shared'], points: 20, hint: 'between map (or sync_for_device) and unmap (or sync_for_cpu) the buffer belongs to the device' },
      { title: 'map with the right direction, check every mapping, unmap and sync what you mapped', kinds: ['map-error-unchecked', 'device-write-to-device-mapping', 'unmap-unknown', 'unmap-size-mismatch', 'unmap-direction-mismatch', 'unmap-type-mismatch', 'sync-unmapped', 'sync-out-of-range', 'sync-direction-mismatch', 'overlapping-mapping'], points: 15 },
      { title: 'the device reaches only live mappings; nothing leaks', kinds: ['iommu-fault', 'leak', 'free-while-mapped', 'use-after-free', 'double-free'], points: 15, hint: 'unmap after the completion, and undo in remove() everything probe() set up' },
    ],
    clean: 10,
  },
})
