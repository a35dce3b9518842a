/**
 * The documentation's examples run and do what the documentation says they do.
 *
 * - docs/ownership.md quotes every docs/examples/ownership-*.ts file verbatim, and
 *   docs/reports.md quotes every scenario body of docs/examples/reports.ts and
 *   docs/examples/reports-driver.ts verbatim;
 * - every example gives the data and the reports the documentation claims, on the platform
 *   matrix (each architecture, swiotlb auto/force, IOMMU off/strict, several seeds);
 * - the messages docs/reports.md prints are the ones the emulator prints.
 */

import { readdirSync, readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { BootOptions, Report } from '../../kernel/index.js'
import { coherent, optionsFor, PLATFORMS, type Platform } from '../helpers/matrix.js'
import * as bidirectional from '../../docs/examples/ownership-bidirectional.js'
import * as cacheTrace from '../../docs/examples/ownership-cache-trace.js'
import * as coherentRing from '../../docs/examples/ownership-coherent.js'
import * as embedded from '../../docs/examples/ownership-embedded-buffer.js'
import * as embeddedAligned from '../../docs/examples/ownership-embedded-buffer-aligned.js'
import * as minalign from '../../docs/examples/ownership-kmalloc-minalign.js'
import * as prefetch from '../../docs/examples/ownership-prefetch.js'
import * as rx from '../../docs/examples/ownership-rx.js'
import * as rxMissingSync from '../../docs/examples/ownership-rx-missing-sync.js'
import * as rxRecycle from '../../docs/examples/ownership-rx-recycle.js'
import * as tx from '../../docs/examples/ownership-tx.js'
import * as txWriteAfterMap from '../../docs/examples/ownership-tx-write-after-map.js'
import * as dedup from '../../docs/examples/reports-dedup.js'
import { run as runScenario, scenarios } from '../../docs/examples/reports.js'
import { run as runDriverScenario, scenarios as driverScenarios } from '../../docs/examples/reports-driver.js'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const kinds = (reports: readonly Report[]) => reports.map((r) => r.kind)
const fill = (n: number, byte: number) => new Array<number>(n).fill(byte)

/** Whether the CPU and the device see different copies of a streaming buffer. */
const separateCopies = (p: Platform) => !coherent(p) || p.swiotlb === 'force'

/** The ```ts block following each `<!-- tag: name -->` marker of a markdown file. */
function quotedBlocks(markdown: string, tag: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  const re = new RegExp(`<!-- ${tag}: (\\S+) -->\\s*\\n\`\`\`ts\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g')
  for (const m of markdown.matchAll(re)) {
    const list = out.get(m[1]!) ?? []
    list.push(m[2]!)
    out.set(m[1]!, list)
  }
  return out
}

/** The body of a scenario in a scenarios file, dedented, as docs/reports.md quotes it. */
function scenarioBody(source: string, name: string): string {
  const lines = source.split('\n')
  const key = /^[a-z]+$/.test(name) ? `  ${name}: {` : `  '${name}': {`
  const start = lines.indexOf(key)
  if (start < 0) throw new Error(`scenario ${name} not found`)
  const open = lines.findIndex((l, i) => i > start && /^ {4}body: (async )?\(.*\) => \{$/.test(l))
  const close = lines.indexOf('    },', open)
  return lines
    .slice(open + 1, close)
    .map((l) => l.slice(6))
    .join('\n')
}

describe('docs quote the examples verbatim', () => {
  const ownership = read('docs/ownership.md')
  const examples = quotedBlocks(ownership, 'example')
  const files = readdirSync(new URL('docs/examples/', root)).filter(
    (f) => f.startsWith('ownership-') && f.endsWith('.ts'),
  )

  it.each(files)('docs/ownership.md quotes docs/examples/%s', (file) => {
    const quotes = examples.get(`docs/examples/${file}`)
    expect(quotes, `no <!-- example: docs/examples/${file} --> block`).toBeDefined()
    for (const q of quotes!) expect(q).toBe(read(`docs/examples/${file}`).trimEnd())
  })

  it('docs/ownership.md quotes nothing that is not an example file', () => {
    for (const path of examples.keys()) expect(files).toContain(path.replace('docs/examples/', ''))
  })

  const reportsMd = read('docs/reports.md')
  const source = read('docs/examples/reports.ts')
  const bodies = quotedBlocks(reportsMd, 'scenario')

  it.each(Object.keys(scenarios))('docs/reports.md quotes scenario %s', (name) => {
    const quotes = bodies.get(name)
    expect(quotes, `no <!-- scenario: ${name} --> block`).toBeDefined()
    for (const q of quotes!) expect(q).toBe(scenarioBody(source, name))
  })

  const driverSource = read('docs/examples/reports-driver.ts')

  it.each(Object.keys(driverScenarios))('docs/reports.md quotes driver scenario %s', (name) => {
    const quotes = bodies.get(name)
    expect(quotes, `no <!-- scenario: ${name} --> block`).toBeDefined()
    for (const q of quotes!) expect(q).toBe(scenarioBody(driverSource, name))
  })

  it('docs/reports.md quotes no scenario that does not exist', () => {
    for (const name of bodies.keys()) expect(name in scenarios || name in driverScenarios).toBe(true)
  })

  it('docs/reports.md quotes the deduplication example', () => {
    expect(quotedBlocks(reportsMd, 'example').get('docs/examples/reports-dedup.ts')).toEqual([
      read('docs/examples/reports-dedup.ts').trimEnd(),
    ])
  })
})

describe.each(PLATFORMS)('ownership examples on $label', (p) => {
  const opts = optionsFor(p)

  it('RX read before unmap: stale where the copies are separate, reported everywhere', async () => {
    const out = await rxMissingSync.run(opts)
    expect(out.data).toEqual(fill(4, separateCopies(p) ? 0xaa : 0x55))
    expect(kinds(out.reports)).toEqual(['cpu-access-device-owned'])
  })

  it('RX read after unmap: correct, no report', async () => {
    const out = await rx.run(opts)
    expect(out.data).toEqual(fill(4, 0x55))
    expect(out.reports).toEqual([])
  })

  it('TX written after map: the device reads old data where the copies are separate, reported everywhere', async () => {
    const out = await txWriteAfterMap.run(opts)
    expect(out.data).toEqual(fill(4, separateCopies(p) ? 0x00 : 0x55))
    expect(kinds(out.reports)).toEqual(['cpu-access-device-owned'])
  })

  it('TX written before map: correct, no report', async () => {
    const out = await tx.run(opts)
    expect(out.data).toEqual(fill(4, 0x55))
    expect(out.reports).toEqual([])
  })

  it('BIDIRECTIONAL with a sync each way: correct, no report', async () => {
    const out = await bidirectional.run(opts)
    expect(out.data).toEqual([0x81, 0x82, 0x83])
    expect(out.reports).toEqual([])
  })

  it('coherent memory needs no sync', async () => {
    const out = await coherentRing.run(opts)
    expect(out.data).toEqual([0x11, 0x22])
    expect(out.reports).toEqual([])
  })

  it('RX recycling without sync_for_device after a read-only look: correct, no report', async () => {
    const out = await rxRecycle.run(opts)
    expect(out.data).toEqual([0x11, 0x12, 0x13])
    expect(out.reports).toEqual([])
  })

  it('the unmap invalidate discards lines prefetched during the transfer', async () => {
    const out = await prefetch.run(opts, true)
    expect(out.data).toEqual([0x55, 0x55])
    expect(out.reports).toEqual([])
  })

  it('embedded buffer: arm64 loses the device data, riscv64 the CPU write; reported everywhere', async () => {
    const out = await embedded.run(opts)
    const expected =
      p.swiotlb === 'force' || p.arch === 'x86_64'
        ? [1, 0x55, 0x55]
        : p.arch === 'arm64'
          ? [1, 0, 0x55]
          : [0, 0x55, 0x55]
    expect(out.data).toEqual(expected)
    expect(kinds(out.reports)).toEqual(['cacheline-shared'])
  })

  it('embedded buffer on its own 128-byte boundary: correct, no report', async () => {
    const out = await embeddedAligned.run(opts)
    expect(out.data).toEqual([1, 0x55, 0x55])
    expect(out.reports).toEqual([])
  })

  it('separate kmalloc objects sharing a line: corrupted and reported on non-coherent platforms only', async () => {
    const out = await minalign.run(opts)
    const expected =
      p.swiotlb === 'force' || p.arch === 'x86_64'
        ? [0x55, 1]
        : p.arch === 'arm64'
          ? [0, 1]
          : [0x55, 0]
    expect(out.data).toEqual(expected)
    expect(kinds(out.reports)).toEqual(coherent(p) ? [] : ['cacheline-shared'])
  })

  // The trace shows the cache of the buffer itself; under swiotlb=force the maintenance happens
  // on the bounce slot instead, so the trace is only defined with swiotlb auto.
  if (p.swiotlb === 'auto') {
    it('cache trace: clean for the device, invalidate for the CPU unless TO_DEVICE; nothing when coherent', async () => {
      const out = await cacheTrace.run(opts)
      expect(out.trace).toEqual(coherent(p) ? TRACE_COHERENT : TRACE_NONCOHERENT)
      expect(out.reports).toEqual([])
    })
  }
})

const TRACE_NONCOHERENT = [
  'DMA_TO_DEVICE      write: dirty | map: clean | sync_for_cpu: clean | write: dirty | sync_for_device: clean | unmap: clean',
  'DMA_FROM_DEVICE    write: dirty | map: clean | sync_for_cpu: invalid | read: clean | sync_for_device: clean | unmap: invalid',
  'DMA_BIDIRECTIONAL  write: dirty | map: clean | sync_for_cpu: invalid | write: dirty | sync_for_device: clean | unmap: invalid',
]
const TRACE_COHERENT = [
  'DMA_TO_DEVICE      write: dirty | map: dirty | sync_for_cpu: dirty | write: dirty | sync_for_device: dirty | unmap: dirty',
  'DMA_FROM_DEVICE    write: dirty | map: dirty | sync_for_cpu: dirty | read: dirty | sync_for_device: dirty | unmap: dirty',
  'DMA_BIDIRECTIONAL  write: dirty | map: dirty | sync_for_cpu: dirty | write: dirty | sync_for_device: dirty | unmap: dirty',
]

describe('the prefetch example on the default seed', () => {
  it.each(['arm64', 'riscv64'] as const)(
    '%s: the line prefetched during the transfer is stale without the unmap invalidate',
    async (arch) => {
      const out = await prefetch.run({ arch })
      expect(out.lines).toEqual(['after map: invalid', 'during the transfer: clean'])
      expect(out.data).toEqual([0x55, 0x00])
      expect(kinds(out.reports)).toEqual(['cpu-access-device-owned'])
    },
  )

  it('x86_64: the device write snoops the line away; reported all the same', async () => {
    const out = await prefetch.run({ arch: 'x86_64' })
    expect(out.data).toEqual([0x55, 0x55])
    expect(kinds(out.reports)).toEqual(['cpu-access-device-owned'])
  })
})

/** The report kinds docs/reports.md says each scenario produces on a platform. */
function expectedKinds(name: string, p: Platform): string[] {
  const kind = scenarios[name]!.kind
  switch (name) {
    case 'device-write-to-device-mapping':
      return p.iommu === 'strict' ? ['iommu-fault'] : [kind]
    case 'cacheline-shared-objects':
      return coherent(p) ? [] : [kind]
    case 'iommu-fault':
      return p.iommu === 'strict' ? [kind] : ['device-access-cpu-owned']
    case 'dma-mask':
      // bounced below 4 GiB without an IOMMU, the address fits in 32 bits
      return p.iommu === 'off' && p.swiotlb === 'force' ? [] : [kind]
    default:
      return [kind]
  }
}

describe.each(PLATFORMS)('report catalogue on $label', (p) => {
  it.each(Object.keys(scenarios))('%s', async (name) => {
    const { reports, oops } = await runScenario(name, optionsFor(p))
    expect(kinds(reports)).toEqual(expectedKinds(name, p))
    expect(oops).toBe(name === 'oops')
  })
})

/** The report kinds docs/reports.md says each driver scenario produces on a platform. */
function expectedDriverKinds(name: string, p: Platform): string[] {
  const kind = driverScenarios[name]!.kind
  switch (name) {
    case 'missing-barrier': // a writel_relaxed doorbell is ordered on x86
    case 'missing-barrier-rmb': // TSO does not reorder loads
      return p.arch === 'x86_64' ? [] : [kind]
    default:
      return [kind]
  }
}

describe.each(PLATFORMS)('report catalogue, driver scenarios, on $label', (p) => {
  it.each(Object.keys(driverScenarios))('%s', async (name) => {
    const { reports, oops } = await runDriverScenario(name, optionsFor(p))
    expect(kinds(reports)).toEqual(expectedDriverKinds(name, p))
    expect(oops).toBe(false)
  })
})

describe('the check families of the driver scenarios\' kinds', () => {
  const always = ['invalid-context', 'invalid-context-free-coherent', 'lock-inconsistent', 'irq-unhandled', 'irq-unhandled-storm', 'device-error']

  it.each(Object.keys(driverScenarios))('%s with checks: { ownership: false }', async (name) => {
    const { reports } = await runDriverScenario(name, { checks: { ownership: false } })
    expect(kinds(reports)).toEqual(name.startsWith('missing-barrier') ? [] : [driverScenarios[name]!.kind])
  })

  it.each(Object.keys(driverScenarios))('%s with checks: false', async (name) => {
    const { reports } = await runDriverScenario(name, { checks: false })
    expect(kinds(reports)).toEqual(always.includes(name) ? [driverScenarios[name]!.kind] : [])
  })
})

describe('docs/reports.md shows the messages the emulator prints', () => {
  const reportsMd = read('docs/reports.md')
  const printed = (r: Report) => (r.device !== undefined ? `DMA-API: ${r.device}: ${r.message}` : r.message)
  it.each(Object.keys(scenarios))('%s', async (name) => {
    const { reports } = await runScenario(name, {})
    for (const r of reports) expect(reportsMd).toContain(printed(r))
  })
  it.each(Object.keys(driverScenarios))('%s', async (name) => {
    const { reports } = await runDriverScenario(name, {})
    expect(reports).not.toEqual([])
    for (const r of reports) expect(reportsMd).toContain(printed(r))
  })
})

describe('report deduplication', () => {
  it.each([{}, { checks: { stacks: false } }] as BootOptions[])(
    'one report with count 3 for one bug in a loop (%o)',
    async (o) => {
      const { reports } = await dedup.run(o)
      expect(reports).toHaveLength(1)
      expect(reports[0]!.count).toBe(3)
    },
  )
})
