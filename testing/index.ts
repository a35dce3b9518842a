/**
 * dmalab/testing: helpers for a driver's own vitest suites (docs/testing.md).
 *
 * - matchers: `expect(sys).toHaveNoDmaReports()`, `expect(sys).toHaveReport(kind, { line, file, device, count })`;
 *   importing this module registers them (registerDmaMatchers() or testing/setup.ts do it explicitly);
 * - the platform matrix: PLATFORMS, bootOn(), describePlatforms(), forEachPlatform(), seeds().
 */
import { registerDmaMatchers } from './matchers.js'

export { checkKind, dmaMatchers, registerDmaMatchers, reportMatches, reportsOf, summarize, type ReportFilter, type ReportSource } from './matchers.js'
export {
  ARM64, PLATFORMS, bootOn, describePlatforms, forEachPlatform, platformNamed, seeds,
  type MatrixOptions, type Platform, type PlatformArch,
} from './platforms.js'

registerDmaMatchers()
