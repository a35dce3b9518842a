/**
 * DMA API benchmarks (issue: Foundation).
 *
 * - dma.stream.{4k,64k}.{checked,unchecked}: a test master streams one buffer through
 *   dma_map_single(BIDIRECTIONAL) -> device read of the whole buffer -> device write of the whole
 *   buffer -> dma_unmap_single, on the default platform (arm64, non-coherent, IOMMU strict,
 *   swiotlb auto). value = device bytes moved per second (MB/s); ratio = that bandwidth divided by
 *   the bandwidth of Uint8Array.prototype.set copying the same bytes (one read-sized and one
 *   write-sized copy into preallocated arrays), measured in the same run. Stack capture is off;
 *   "checked" has every other check on, "unchecked" boots with checks: false.
 * - dma.stream.64k.checked_vs_unchecked: checked time / unchecked time (target <= 1.5).
 * - dma.map_unmap.pairs_per_s: dma_map_single + dma_mapping_error + dma_unmap_single of one page,
 *   the workload of Linux's dma_map_benchmark, checks on, stack capture off.
 */
import {
  boot,
  DMA_BIDIRECTIONAL,
  DMA_TO_DEVICE,
  dma_map_single,
  dma_mapping_error,
  dma_unmap_single,
  kmalloc,
  memset,
  type CpuAddr,
  type TestMaster,
} from '../kernel/index.js'
import { compareNs, timeNs, type BenchResult } from './harness.js'

/**
 * The baseline: Uint8Array.prototype.set copying the bytes the device moves — one copy of `size`
 * bytes out of memory and one into it. Its three arrays are cut from one buffer, 2 KiB apart
 * modulo 4 KiB: V8 places equal-sized backing stores back to back, and a forward memcpy whose
 * destination sits a few bytes past its source modulo 4 KiB runs several times slower on x86
 * (4K aliasing), which would make the baseline measure an accident of allocation, not memcpy.
 */
function memcpyOf(size: number): () => void {
  const skew = 2048
  const stride = size + skew
  const pool = new Uint8Array(3 * stride)
  for (let i = 0; i < pool.length; i++) pool[i] = (i * 2654435761) >>> 24
  const src = pool.subarray(0, size)
  const ram = pool.subarray(stride, stride + size)
  const dst = pool.subarray(2 * stride, 2 * stride + size)
  return () => {
    dst.set(ram)
    ram.set(src)
  }
}

async function streamNs(size: number, checked: boolean): Promise<{ base: number; ns: number }> {
  const sys = boot({ log: 'silent', checks: checked ? { stacks: false } : false })
  const m: TestMaster = sys.attachTestMaster('bench0')
  let out = { base: 0, ns: 0 }
  await sys.run(() => {
    const buf = kmalloc(size) as CpuAddr
    memset(buf, 0x5a, size)
    const dev = m.dev
    const iteration = (dst: Uint8Array, src: Uint8Array) => () => {
      const dma = dma_map_single(dev, buf, size, DMA_BIDIRECTIONAL)
      if (dma_mapping_error(dev, dma) !== 0) throw new Error('mapping failed')
      m.readInto(dma, dst)
      m.write(dma, src)
      dma_unmap_single(dev, dma, size, DMA_BIDIRECTIONAL)
    }
    // The device-side arrays are placed at four skews modulo 4 KiB and the fastest is kept: where
    // V8 happens to put them relative to the emulated RAM can trigger the host's 4K-aliasing
    // penalty, an accident the baseline is protected from too (see memcpyOf).
    const pool = new Uint8Array(8 * size + 8192).fill(0xa5)
    let best = { ns: Number.POSITIVE_INFINITY, fn: iteration(pool.subarray(0, size), pool.subarray(size, 2 * size)) }
    for (let k = 0; k < 4; k++) {
      const at = k * (2 * size + 1024 + 64)
      const fn = iteration(pool.subarray(at, at + size), pool.subarray(at + size + 512, at + 2 * size + 512))
      const ns = timeNs(fn, 1, { batches: 9, minBatchMs: 10, warmMs: 50 })
      if (ns < best.ns) best = { ns, fn }
    }
    out = compareNs(memcpyOf(size), best.fn)
  })
  if (sys.reports.length > 0) throw new Error(`benchmark workload got reports: ${sys.reports.map((r) => r.kind).join(', ')}`)
  return out
}

async function pairsPerSecond(): Promise<number> {
  const sys = boot({ log: 'silent', checks: { stacks: false } })
  const m = sys.attachTestMaster('bench1')
  let ns = 0
  await sys.run(() => {
    const buf = kmalloc(4096) as CpuAddr
    memset(buf, 1, 4096)
    const dev = m.dev
    ns = timeNs(() => {
      const dma = dma_map_single(dev, buf, 4096, DMA_TO_DEVICE)
      if (dma_mapping_error(dev, dma) !== 0) throw new Error('mapping failed')
      dma_unmap_single(dev, dma, 4096, DMA_TO_DEVICE)
    })
  })
  if (sys.reports.length > 0) throw new Error(`benchmark workload got reports: ${sys.reports.map((r) => r.kind).join(', ')}`)
  return 1e9 / ns
}

export async function run(): Promise<BenchResult[]> {
  const out: BenchResult[] = []
  const results: Record<string, number> = {}
  for (const [label, size] of [['4k', 4096], ['64k', 65536]] as const) {
    for (const checked of size === 4096 ? [true] : [true, false]) {
      const { base, ns } = await streamNs(size, checked)
      const name = `dma.stream.${label}.${checked ? 'checked' : 'unchecked'}`
      results[name] = ns
      out.push({
        name,
        value: Math.round(((2 * size) / ns) * 1000),
        unit: 'MB/s',
        ratio: Number((base / ns).toFixed(3)),
        note: `map+read+write+unmap of ${size} bytes: ${ns.toFixed(0)} ns; Uint8Array.set of the same bytes: ${base.toFixed(0)} ns`,
      })
    }
  }
  out.push({
    name: 'dma.stream.64k.checked_vs_unchecked',
    value: Number((results['dma.stream.64k.checked']! / results['dma.stream.64k.unchecked']!).toFixed(3)),
    unit: 'x time',
    note: 'checked time / unchecked time for the 64 KiB stream (lower is better; target <= 1.5)',
  })
  out.push({
    name: 'dma.map_unmap.pairs_per_s',
    value: Math.round(await pairsPerSecond()),
    unit: 'pairs/s',
    note: 'dma_map_single + dma_mapping_error + dma_unmap_single of one page, checks on, stacks off (target >= 1,000,000)',
  })
  return out
}
