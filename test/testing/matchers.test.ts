/**
 * The dmalab/testing matchers (testing/matchers.ts): toHaveNoDmaReports and toHaveReport pass and
 * fail when they should, with .not, with the line / file / device / count / reports filters, on a
 * System or a Report[], and reject bad arguments with errors that name them.
 */
import { describe, expect, it } from 'vitest'
import { boot, dma_map_single, DMA_TO_DEVICE, kmalloc, type Report, type ReportKind } from '../../kernel/index.js'
import { PLATFORMS, bootOn, describePlatforms, forEachPlatform, platformNamed, seeds, type Platform } from '../../testing/index.js'

/** A report as the kernel makes them: the access at file:line, the mapping at mappedLine. */
function report(kind: ReportKind, o: { file?: string; line?: number; mappedLine?: number; device?: string; count?: number } = {}): Report {
  const file = o.file ?? 'drivers/mydrv.ts'
  return {
    kind,
    message: `${kind} happened`,
    seed: 1,
    time: 1000,
    ...(o.device !== undefined ? { device: o.device } : {}),
    stacks: [
      ...(o.line !== undefined ? [{ label: 'access', frames: [{ fn: 'mydrv_rx', file, line: o.line, column: 5 }, { fn: '<anonymous>', file: 'test/mydrv.test.ts', line: 99, column: 3 }] }] : []),
      ...(o.mappedLine !== undefined ? [{ label: 'mapped', frames: [{ fn: 'mydrv_probe', file, line: o.mappedLine, column: 9 }] }] : []),
    ],
    count: o.count ?? 1,
    details: {},
  }
}

const stale = report('cpu-access-device-owned', { line: 42, mappedLine: 17, device: 'ce0', count: 3 })
const leak = report('leak', { mappedLine: 17, device: 'ce0' })

describe('toHaveNoDmaReports', () => {
  it('passes on no reports, as a System or a Report[]', () => {
    expect([]).toHaveNoDmaReports()
    expect(boot({ log: 'silent' })).toHaveNoDmaReports()
  })

  it('fails printing each report KASAN-style', () => {
    expect(() => expect([stale, leak]).toHaveNoDmaReports()).toThrow(/expected no DMA reports, found 2 reports:/)
    expect(() => expect([stale]).toHaveNoDmaReports()).toThrow(/BUG: dmalab: cpu-access-device-owned in mydrv_rx \(drivers\/mydrv\.ts:42\)\nDMA-API: ce0: cpu-access-device-owned happened/)
    expect(() => expect([stale]).toHaveNoDmaReports()).toThrow(/3 occurrences[\s\S]*Mapped at:\n {2}mydrv_probe \(drivers\/mydrv\.ts:17:9\)/)
  })

  it('.not passes when there are reports and fails when there are none', () => {
    expect([leak]).not.toHaveNoDmaReports()
    expect(() => expect([]).not.toHaveNoDmaReports()).toThrow('expected DMA reports, found none')
  })

  it('sees what a real system found', async () => {
    const sys = boot({ log: 'silent' })
    const m = sys.attachTestMaster('tm0')
    await sys.run(() => void dma_map_single(m.dev, kmalloc(64)!, 64, DMA_TO_DEVICE)) // never checked, never unmapped
    m.detach()
    expect(sys).not.toHaveNoDmaReports()
    expect(sys).toHaveReport('leak', { device: 'tm0' })
    expect(sys).toHaveReport('leak', { file: 'test/testing/matchers.test.ts' })
    sys.clearReports()
    expect(sys).toHaveNoDmaReports()
  })
})

describe('toHaveReport', () => {
  it('passes when a report of the kind is there, fails listing the kinds found', () => {
    expect([leak, stale]).toHaveReport('cpu-access-device-owned')
    expect(() => expect([leak, stale]).toHaveReport('iommu-fault')).toThrow(
      'expected iommu-fault, found 2 reports:\n  leak (mapped at drivers/mydrv.ts:17) [ce0]\n  cpu-access-device-owned at drivers/mydrv.ts:42 [ce0], 3 occurrences',
    )
    expect(() => expect([]).toHaveReport('leak')).toThrow('expected leak, found no reports at all')
  })

  it('.not', () => {
    expect([leak]).not.toHaveReport('cpu-access-device-owned')
    expect([stale]).not.toHaveReport('cpu-access-device-owned', { line: 43 })
    expect(() => expect([leak, stale]).not.toHaveReport('cpu-access-device-owned')).toThrow(
      /expected no cpu-access-device-owned, found 1 report:\n\n=+\nBUG: dmalab: cpu-access-device-owned in mydrv_rx/,
    )
  })

  it('line matches a frame of any stack: the access or the mapping', () => {
    expect([stale]).toHaveReport('cpu-access-device-owned', { line: 42 })
    expect([stale]).toHaveReport('cpu-access-device-owned', { line: 17 })
    expect([leak]).toHaveReport('leak', { line: 17 })
    expect(() => expect([stale]).toHaveReport('cpu-access-device-owned', { line: 41 })).toThrow(
      'expected cpu-access-device-owned at <any file>:41, found 1 report:\n  cpu-access-device-owned at drivers/mydrv.ts:42 [ce0], 3 occurrences',
    )
  })

  it('file is a path suffix, matched with the line on the same frame', () => {
    for (const file of ['mydrv.ts', 'drivers/mydrv.ts', './drivers/mydrv.ts']) expect([stale]).toHaveReport('cpu-access-device-owned', { file, line: 42 })
    expect([stale]).toHaveReport('cpu-access-device-owned', { file: 'mydrv.test.ts' })
    expect([stale]).not.toHaveReport('cpu-access-device-owned', { file: 'drv.ts' }) // not a whole path component
    expect([stale]).not.toHaveReport('cpu-access-device-owned', { file: 'mydrv.test.ts', line: 42 })
    expect(() => expect([stale]).toHaveReport('cpu-access-device-owned', { file: 'other.ts', line: 42 })).toThrow(/expected cpu-access-device-owned at other\.ts:42, found 1 report/)
  })

  it('device', () => {
    expect([stale]).toHaveReport('cpu-access-device-owned', { device: 'ce0' })
    expect(() => expect([stale]).toHaveReport('cpu-access-device-owned', { device: 'ce1' })).toThrow(/expected cpu-access-device-owned on ce1, found 1 report/)
  })

  it('count is occurrences (Report.count summed), reports is distinct reports', () => {
    const other = report('cpu-access-device-owned', { line: 50, device: 'ce1' })
    expect([stale, other]).toHaveReport('cpu-access-device-owned', { count: 4, reports: 2 })
    expect([stale, other]).toHaveReport('cpu-access-device-owned', { line: 42, count: 3, reports: 1 })
    expect([stale]).toHaveReport('leak', { count: 0 })
    expect([stale]).not.toHaveReport('cpu-access-device-owned', { count: 2 })
    expect(() => expect([stale, other]).toHaveReport('cpu-access-device-owned', { count: 1 })).toThrow(
      /expected cpu-access-device-owned with 1 occurrence\(s\) in all, found 2 reports:[\s\S]*\n2 reports matched, 4 occurrences in all$/,
    )
  })

  it('says when the reports have no stacks to match a line against', () => {
    const bare = report('leak', { device: 'ce0' })
    expect(() => expect([bare]).toHaveReport('leak', { line: 3 })).toThrow(
      /found 1 report:\n {2}leak \[ce0\]: leak happened\n\(no report of that kind carries stack frames to match a line or file against: reports made while a device runs have none, and none have any with checks\.stacks off\)$/,
    )
  })
})

describe('bad arguments are errors that name them', () => {
  it('an unknown kind, with the nearest known one', () => {
    expect(() => expect([]).toHaveReport('cpu-access-device-ownd' as ReportKind)).toThrow(
      /unknown report kind 'cpu-access-device-ownd' \(did you mean 'cpu-access-device-owned'\?\); the kinds are: cpu-access-device-owned, /,
    )
    expect(() => expect([]).not.toHaveReport('stale-read' as ReportKind)).toThrow(/unknown report kind 'stale-read'; the kinds are:/)
    expect(() => expect([]).toHaveReport(7 as unknown as ReportKind)).toThrow(/the report kind must be a string, got number 7/)
  })

  it('a bad filter', () => {
    const bad = (f: unknown) => () => expect([stale]).toHaveReport('leak', f as object)
    expect(bad({ lines: 3 })).toThrow("unknown filter option 'lines'; the options are: line, file, device, count, reports")
    expect(bad({ line: 0 })).toThrow("'line' must be an integer >= 1, got number 0")
    expect(bad({ count: 1.5 })).toThrow("'count' must be an integer >= 0, got number 1.5")
    expect(bad({ file: '' })).toThrow("'file' must be a non-empty string, got ''")
    expect(bad({ device: 3 })).toThrow("'device' must be a non-empty string, got number 3")
    expect(bad(42)).toThrow('the filter must be an object like { line, file, device, count }, got number 42')
  })

  it('something that is neither a System nor a Report[]', () => {
    expect(() => expect(undefined).toHaveNoDmaReports()).toThrow('toHaveNoDmaReports: expected a System (from boot()) or a Report[], got undefined')
    expect(() => expect({ sys: 1 }).toHaveReport('leak')).toThrow('toHaveReport: expected a System (from boot()) or a Report[], got an object')
    expect(() => expect([{ kind: 'leak' }]).toHaveNoDmaReports()).toThrow('toHaveNoDmaReports: element 0 is not a Report (an object)')
  })
})

describe('the platform matrix', () => {
  it('is every arch × swiotlb auto/force × IOMMU strict/off, with coherence by arch', () => {
    expect(PLATFORMS.map((p) => p.name)).toHaveLength(12)
    expect(new Set(PLATFORMS.map((p) => p.name)).size).toBe(12)
    expect(PLATFORMS.filter((p) => p.coherent).map((p) => p.arch)).toEqual(Array(4).fill('x86_64'))
    expect(platformNamed('riscv64 swiotlb=force iommu=off').options).toEqual({ arch: 'riscv64', coherent: false, swiotlb: 'force', iommu: 'off' })
    expect(() => platformNamed('m68k')).toThrow(/unknown platform 'm68k'; the platforms are: arm64 swiotlb=auto iommu=strict, /)
  })

  it('boots every platform, extra options added', () => {
    for (const p of PLATFORMS) expect(bootOn(p, { seed: 7, log: 'silent' })).toHaveNoDmaReports()
  })

  it('seeds', () => {
    expect(seeds(3)).toEqual([1, 2, 3])
    expect(seeds(2, 10)).toEqual([10, 11])
    expect(() => seeds(0)).toThrow('seeds: n must be a positive integer, got 0')
  })
})

const riscv = PLATFORMS.filter((p) => p.arch === 'riscv64')
const seen: string[] = []

describePlatforms('describePlatforms', (p) => {
  it('gives each block its platform', () => {
    expect(p.arch).toBe('riscv64')
    seen.push(p.name)
  })
}, { platforms: riscv })

forEachPlatform('forEachPlatform', (p: Platform, seed: number) => {
  expect(bootOn(p, { seed, log: 'silent' })).toHaveNoDmaReports()
  seen.push(`${p.name} seed=${seed}`)
}, { platforms: riscv.slice(0, 2), seeds: seeds(2, 5) })

describe('the matrix helpers', () => {
  it('registered one describe per platform and one test per platform and seed', () => {
    expect(seen).toEqual([
      ...riscv.map((p) => p.name),
      ...riscv.slice(0, 2).flatMap((p) => [`${p.name} seed=5`, `${p.name} seed=6`]),
    ])
  })

  it('reject an empty matrix', () => {
    expect(() => describePlatforms('x', () => undefined, { platforms: [] })).toThrow('the platform list is empty')
    expect(() => forEachPlatform('x', () => undefined, { seeds: [] })).toThrow('the seed list is empty')
  })
})
