/**
 * The report catalogue's examples (docs/reports.md): one minimal scenario per report kind, each
 * run on a bare test master (`nic`, standing in for a device) as process-context code. The body of
 * each scenario is quoted in docs/reports.md; test/docs/examples.test.ts checks that every one
 * produces its kind, on the platforms docs/reports.md says it fires on.
 */

import {
  boot,
  kmalloc,
  kzalloc,
  kfree,
  mem_read8,
  mem_read16,
  mem_write8,
  mem_write32,
  mem_write_bytes,
  ptr_add,
  dma_map_single,
  dma_unmap_single,
  dma_mapping_error,
  dma_sync_single_for_cpu,
  dma_set_mask,
  dma_alloc_coherent,
  dma_free_coherent,
  dma_pool_create,
  dma_pool_alloc,
  dma_pool_free,
  dma_pool_destroy,
  DMA_BIT_MASK,
  DMA_TO_DEVICE,
  DMA_FROM_DEVICE,
  DMA_BIDIRECTIONAL,
  DMA_NONE,
  KernelOops,
  type BootOptions,
  type Report,
  type ReportKind,
  type TestMaster,
  type TestMasterOptions,
} from '../../kernel/index.js'

export interface Scenario {
  /** The report kind the scenario demonstrates. */
  readonly kind: ReportKind
  /** Boot options it needs (options given to run() take precedence). */
  readonly boot?: BootOptions
  /** Options of the test master. */
  readonly master?: TestMasterOptions
  /** The minimal example: process-context code; `nic` is the device. */
  readonly body: (nic: TestMaster) => void
}

const PACKET = new Uint8Array(64).fill(0x55)

export const scenarios: Readonly<Record<string, Scenario>> = {
  'cpu-access-device-owned': {
    kind: 'cpu-access-device-owned',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.write(dma, PACKET) // the device receives a packet
      mem_read16(buf, 0) // BUG: reads the frame before dma_unmap_single / sync_for_cpu
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      kfree(buf)
    },
  },
  'device-access-cpu-owned': {
    kind: 'device-access-cpu-owned',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.read(dma, 64) // the card sends frame 1
      dma_sync_single_for_cpu(nic.dev, dma, 64, DMA_TO_DEVICE) // the CPU takes buf back
      mem_write_bytes(buf, PACKET) // and writes frame 2
      nic.read(dma, 64) // BUG: no dma_sync_single_for_device before the card reads it
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'device-write-to-device-mapping': {
    kind: 'device-write-to-device-mapping',
    boot: { iommu: 'off' },
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.write(dma, PACKET) // BUG: the device writes a buffer mapped DMA_TO_DEVICE
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'cacheline-shared': {
    kind: 'cacheline-shared',
    body: (nic) => {
      // struct rx_slot { u32 status; u8 data[64]; }: data shares a cache line with status
      const slot = kzalloc(128)!
      const data = ptr_add(slot, 4)
      const dma = dma_map_single(nic.dev, data, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      mem_write32(slot, 0, 1) // BUG: dirties the line the device is writing
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      kfree(slot)
    },
  },
  'cacheline-shared-objects': {
    kind: 'cacheline-shared',
    boot: { kmallocMinAlign: 8 }, // a platform without kmalloc's DMA alignment guarantee
    body: (nic) => {
      const a = kmalloc(32)!
      const b = kmalloc(32)! // may share a.'s cache line
      const dma = dma_map_single(nic.dev, a, 32, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      mem_write8(b, 0, 1) // BUG on non-coherent platforms: dirties a line the device writes
      dma_unmap_single(nic.dev, dma, 32, DMA_FROM_DEVICE)
      kfree(b)
      kfree(a)
    },
  },
  'map-error-unchecked': {
    kind: 'map-error-unchecked',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      nic.read(dma, 64) // BUG: handed to the device before dma_mapping_error()
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'unmap-unknown': {
    kind: 'unmap-unknown',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE) // BUG: unmapped twice
      kfree(buf)
    },
  },
  'unmap-size-mismatch': {
    kind: 'unmap-size-mismatch',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_unmap_single(nic.dev, dma, 32, DMA_TO_DEVICE) // BUG: mapped 64 bytes
      kfree(buf)
    },
  },
  'unmap-direction-mismatch': {
    kind: 'unmap-direction-mismatch',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE) // BUG: mapped DMA_TO_DEVICE
      kfree(buf)
    },
  },
  'unmap-type-mismatch': {
    kind: 'unmap-type-mismatch',
    body: (nic) => {
      const ring = dma_alloc_coherent(nic.dev, 4096)
      if (!ring) return
      dma_unmap_single(nic.dev, ring.dma, 4096, DMA_BIDIRECTIONAL) // BUG: coherent memory
      dma_free_coherent(nic.dev, 4096, ring.cpu, ring.dma)
    },
  },
  'sync-unmapped': {
    kind: 'sync-unmapped',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      dma_sync_single_for_cpu(nic.dev, dma, 64, DMA_FROM_DEVICE) // BUG: already unmapped
      kfree(buf)
    },
  },
  'sync-out-of-range': {
    kind: 'sync-out-of-range',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_sync_single_for_cpu(nic.dev, dma, 128, DMA_FROM_DEVICE) // BUG: 64 bytes mapped
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      kfree(buf)
    },
  },
  'sync-direction-mismatch': {
    kind: 'sync-direction-mismatch',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_sync_single_for_cpu(nic.dev, dma, 64, DMA_FROM_DEVICE) // BUG: mapped DMA_TO_DEVICE
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'free-coherent-mismatch': {
    kind: 'free-coherent-mismatch',
    body: (nic) => {
      const ring = dma_alloc_coherent(nic.dev, 4096)
      if (!ring) return
      dma_free_coherent(nic.dev, 2048, ring.cpu, ring.dma) // BUG: allocated 4096 bytes
    },
  },
  'overlapping-mapping': {
    kind: 'overlapping-mapping',
    body: (nic) => {
      const buf = kzalloc(64)!
      const a = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, a)) return
      const b = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE) // BUG: mapped twice
      if (dma_mapping_error(nic.dev, b)) return
      dma_unmap_single(nic.dev, b, 64, DMA_FROM_DEVICE)
      dma_unmap_single(nic.dev, a, 64, DMA_FROM_DEVICE)
      kfree(buf)
    },
  },
  leak: {
    kind: 'leak',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.detach() // BUG: the device is unbound while buf is still mapped
    },
  },
  'iommu-fault': {
    kind: 'iommu-fault',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
      nic.write(dma, PACKET) // BUG: the device still uses the address after the unmap
      kfree(buf)
    },
  },
  'dma-mask': {
    kind: 'dma-mask',
    master: { dmaMask: DMA_BIT_MASK(32) }, // the hardware drives 32 address bits
    body: (nic) => {
      if (dma_set_mask(nic.dev, DMA_BIT_MASK(64))) return // BUG: wider than the hardware
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.read(dma, 64) // the address loses its upper bits on the bus
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'uninit-to-device': {
    kind: 'uninit-to-device',
    body: (nic) => {
      const buf = kmalloc(64)! // kmalloc does not zero
      mem_write_bytes(buf, new Uint8Array(16).fill(0x55)) // only 16 bytes filled in
      const dma = dma_map_single(nic.dev, buf, 64, DMA_TO_DEVICE) // BUG: 48 bytes of old memory
      if (dma_mapping_error(nic.dev, dma)) return
      nic.read(dma, 64)
      dma_unmap_single(nic.dev, dma, 64, DMA_TO_DEVICE)
      kfree(buf)
    },
  },
  'pool-misuse': {
    kind: 'pool-misuse',
    body: (nic) => {
      const pool = dma_pool_create('desc', nic.dev, 32, 32, 0)
      if (!pool) return
      const d = dma_pool_alloc(pool)
      if (!d) return
      dma_pool_free(pool, d.cpu, d.dma)
      dma_pool_free(pool, d.cpu, d.dma) // BUG: freed twice
      dma_pool_destroy(pool)
    },
  },
  'free-while-mapped': {
    kind: 'free-while-mapped',
    body: (nic) => {
      const buf = kzalloc(64)!
      const dma = dma_map_single(nic.dev, buf, 64, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      kfree(buf) // BUG: still mapped; the device may write into reused memory
      dma_unmap_single(nic.dev, dma, 64, DMA_FROM_DEVICE)
    },
  },
  'out-of-bounds': {
    kind: 'out-of-bounds',
    body: (nic) => {
      const buf = kzalloc(100)!
      const dma = dma_map_single(nic.dev, buf, 100, DMA_FROM_DEVICE)
      if (dma_mapping_error(nic.dev, dma)) return
      nic.write(dma, Uint8Array.of(120)) // the device reports a 120-byte frame
      dma_unmap_single(nic.dev, dma, 100, DMA_FROM_DEVICE)
      const len = mem_read8(buf, 0)
      mem_read8(buf, len - 1) // BUG: trusts the device's length; the buffer holds 100 bytes
      kfree(buf)
    },
  },
  'use-after-free': {
    kind: 'use-after-free',
    body: () => {
      const buf = kzalloc(64)!
      kfree(buf)
      mem_read8(buf, 0) // BUG: buf was freed
    },
  },
  'double-free': {
    kind: 'double-free',
    body: () => {
      const buf = kzalloc(64)!
      kfree(buf)
      kfree(buf) // BUG: freed twice
    },
  },
  oops: {
    kind: 'oops',
    body: (nic) => {
      const buf = kzalloc(64)!
      dma_map_single(nic.dev, buf, 64, DMA_NONE) // BUG: DMA_NONE is not a direction
    },
  },
}

/** Runs one scenario on a fresh system; an oops is caught (sys.run rejects with KernelOops). */
export async function run(
  name: string,
  options: BootOptions = {},
): Promise<{ reports: Report[]; oops: boolean }> {
  const s = scenarios[name]
  if (s === undefined) throw new Error(`no scenario '${name}'`)
  const sys = boot({ log: 'silent', ...s.boot, ...options })
  const nic = sys.attachTestMaster('nic0', s.master)
  let oops = false
  try {
    await sys.run(() => {
      s.body(nic)
    })
  } catch (e) {
    if (!(e instanceof KernelOops)) throw e
    oops = true
  }
  return { reports: sys.reports, oops }
}
