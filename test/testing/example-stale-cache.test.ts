/**
 * A stale-cache detection test for a user's driver (docs/testing.md quotes this file): mycopy
 * without dma_sync_single_for_cpu() is caught at the faulty line on arm64, and the fixed driver is
 * silent on every platform.
 */
import { describe, expect, it } from 'vitest'
import { kfree, kmalloc, memset, pci_register_driver } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { ARM64, bootOn, forEachPlatform, seeds, type Platform } from '../../testing/index.js'
import { mycopy_driver, mycopy_fetch } from '../fixtures/mycopy/mycopy.js'
import { mycopy_fetch_nosync } from '../fixtures/mycopy/mycopy-nosync.js'

/** Boots p with a copy engine bound to mycopy, fetches 0x11 bytes then 0x22 bytes, unbinds. */
async function twoFetches(p: Platform, seed: number, fetch: typeof mycopy_fetch) {
  const sys = bootOn(p, { seed, devices: [new CopyEngine({ name: 'ce0' })] })
  expect(await sys.run(() => pci_register_driver(mycopy_driver))).toBe(0)
  const pdev = sys.pciDevice('ce0')!
  const results = await sys.run(async () => {
    const out: (Uint8Array | number)[] = []
    for (const fill of [0x11, 0x22]) {
      const src = kmalloc(256)!
      memset(src, fill, 256)
      out.push(await fetch(pdev, src, 256))
      kfree(src)
    }
    return out
  })
  await sys.unbind(pdev)
  return { sys, results }
}

describe('mycopy', () => {
  it('reads the result without dma_sync_single_for_cpu: caught at the line, stale on arm64', async () => {
    const { sys, results } = await twoFetches(ARM64, 1, mycopy_fetch_nosync)
    // mycopy-nosync.ts line 20 reads the buffer the device owns; both fetches did it.
    expect(sys).toHaveReport('cpu-access-device-owned', { file: 'mycopy-nosync.ts', line: 20, count: 2 })
    // ...and the second fetch returned the first one's bytes, still in the CPU cache.
    expect(results[1]).toEqual(new Uint8Array(256).fill(0x11))
  })

  forEachPlatform('the fixed driver is silent and right', async (p, seed) => {
    const { sys, results } = await twoFetches(p, seed, mycopy_fetch)
    expect(sys).toHaveNoDmaReports()
    expect(results).toEqual([new Uint8Array(256).fill(0x11), new Uint8Array(256).fill(0x22)])
  }, { seeds: seeds(2) })
})
