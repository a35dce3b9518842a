/**
 * Lab fix-the-bugs: a copy-engine driver that works on x86_64 and hides five classic DMA-API rule
 * breaks (skeleton/ce_fix.ts). Each one is a report of its own kind, so each fix earns its points:
 * a missing dma_sync_single_for_cpu(), an unchecked dma_map_single(), a wrong direction, a doorbell
 * rung with writel_relaxed() and no dma_wmb(), and a DMA buffer embedded in a structure.
 */
import { ENOSYS, kfree, kmalloc, mem_read_bytes, mem_write_bytes, memset, type CpuAddr, type PciDev, type PciDriver } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { compareBytes, defineScenario, pattern, type WorkloadResult } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction, exportedObject } from '../lab-api.js'

type CopyFn = (pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number) => Promise<number>

export default defineLab({
  id: 'fix-the-bugs',
  title: 'Fix the bugs: five DMA-API rule breaks in a driver that works on x86_64',
  summary:
    'ce_fix.ts copies buffers with the copy engine (register mode, a descriptor chain, and a long-lived result buffer), and its data ' +
    'comes out right on x86_64. It breaks five rules of the DMA API. `dmalab lab check` runs it on arm64, riscv64 and x86_64 with ' +
    'swiotlb and a strict IOMMU, names each broken rule and the line that broke it; fix them one by one (each fix raises the score).',
  entry: 'ce_fix.ts',
  hints: [
    'Run `dmalab lab check fix-the-bugs <dir>` first: each FAIL line names the report kind, the line of ce_fix.ts and the rule. docs/reports.md has a section per kind ("Means" and "Fix").',
    'cpu-access-device-owned in fix_fetch: result stays mapped DMA_FROM_DEVICE. The CPU may read it only after dma_sync_single_for_cpu(), and must hand it back with dma_sync_single_for_device() before the next transfer.',
    'map-error-unchecked: every dma_map_single() can fail (swiotlb full, IOMMU space exhausted). Test the address with dma_mapping_error() before it goes anywhere, and undo what was mapped before it on the way out.',
    'A buffer the engine WRITES must be mapped DMA_FROM_DEVICE (and unmapped with the same direction). With a strict IOMMU, a DMA_TO_DEVICE mapping is read-only for the device: its write faults.',
    'missing-barrier in fix_copy_chain: the descriptor lives in coherent memory; on arm64 and riscv64 its stores may still sit in the store buffer when the doorbell reaches the device. dma_wmb() after filling it, and a non-relaxed writel() for START.',
    'cacheline-shared in fix_fetch: the fetch counter and the result buffer are one kmalloc allocation, so they share a cache line, and the CPU writes the counter while the device owns the buffer. Give result an allocation of its own (or keep the counter elsewhere).',
  ],
  scenario: (mod) => {
    const driver = exportedObject<PciDriver>(mod, 'fix_driver')
    const steps: [string, CopyFn, number, number][] = [
      ['fix_copy', exportedFunction<CopyFn>(mod, 'fix_copy'), 4096, 1],
      ['fix_copy_chain', exportedFunction<CopyFn>(mod, 'fix_copy_chain'), 256, 2],
      ['fix_fetch', exportedFunction<CopyFn>(mod, 'fix_fetch'), 64, 3],
      ['fix_fetch', exportedFunction<CopyFn>(mod, 'fix_fetch'), 48, 4],
    ]
    return defineScenario({
      name: 'fix-the-bugs',
      description: 'fix_copy of 4 KiB, fix_copy_chain of 256 bytes, fix_fetch of 64 and 48 bytes; every byte is checked',
      devices: () => [new CopyEngine({ name: 'ce0' })],
      driver,
      async workload({ sys }) {
        const pdev = sys.pciDevice('ce0')!
        return sys.run(async (): Promise<WorkloadResult> => {
          // Every step runs even after one fails, so that each step's reports are seen.
          const wrong: string[] = []
          for (const [name, fn, len, tag] of steps) {
            const want = pattern(len, tag)
            const src = kmalloc(len)!
            const dst = kmalloc(len)!
            mem_write_bytes(src, want)
            memset(dst, 0xaa, len)
            const rc = await fn(pdev, dst, src, len)
            const r = rc !== 0 ? { dataOk: false, summary: `${name}(${len} bytes) returned ${rc}${rc === -ENOSYS ? ' (-ENOSYS: not implemented)' : ''}` } : compareBytes(mem_read_bytes(dst, len), want, `${name}(${len} bytes)`)
            kfree(src)
            kfree(dst)
            if (!r.dataOk) wrong.push(r.summary ?? name)
          }
          return wrong.length === 0 ? { dataOk: true, summary: 'a copy, a chained copy and two fetches: every byte right' } : { dataOk: false, summary: wrong.join('; ') }
        })
      },
    })
  },
  grading: {
    worksDefault: 10,
    worksEverywhere: 10,
    rules: [
      { title: 'the CPU reads a device-written buffer only after dma_sync_single_for_cpu()', kinds: ['cpu-access-device-owned', 'device-access-cpu-owned'], points: 14, hint: 'which call hands a long-lived DMA_FROM_DEVICE buffer to the CPU, and which one hands it back? (hint 2)' },
      { title: 'check every dma_map_single() with dma_mapping_error()', kinds: ['map-error-unchecked'], points: 14, hint: 'a mapping can fail: test it right after the map, before the address reaches a register (hint 3)' },
      { title: 'map a buffer with the direction the device moves its bytes', kinds: ['device-write-to-device-mapping', 'iommu-fault', 'unmap-direction-mismatch', 'sync-direction-mismatch'], points: 14, hint: 'the engine writes the destination: look at the direction it was mapped with (hint 4)' },
      { title: 'a descriptor is complete in memory before the doorbell (dma_wmb(), writel())', kinds: ['missing-barrier'], points: 14, hint: 'writel_relaxed() does not order earlier memory stores; the device may fetch a stale descriptor on arm64 and riscv64 (hint 5)' },
      { title: 'a device-writable buffer has cache lines of its own', kinds: ['cacheline-shared'], points: 14, hint: 'the counter written during the transfer shares an allocation, and a cache line, with the result buffer (hint 6)' },
    ],
    clean: 10,
  },
})
