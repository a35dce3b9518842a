/**
 * Real-world check: power failures under the NVMe reference driver (see powerfail.ts for the
 * workload, the crash points and the model). Each campaign runs POWERFAIL_POINTS seeded crash
 * points (default 500: 1,000 over the two campaigns; `npm run soak:nvme-powerfail` runs 5,000 per campaign) and asserts
 * that no write that had to survive — completed with FUA, or completed before a flush that
 * completed — was lost, that no block holds torn, misdirected or foreign data, that the driver
 * reads back what the medium holds, and that nothing is reported before a crash.
 */
import { describe, expect, it } from 'vitest'
import { runCampaign, type CampaignOptions } from './powerfail.js'

const POINTS = Number(process.env['POWERFAIL_POINTS'] ?? 500)
const CAMPAIGNS: { name: string; opts: Omit<CampaignOptions, 'points'> }[] = [
  { name: 'arm64, IOMMU strict, 64 MiB cache', opts: { boot: { arch: 'arm64', iommu: 'strict', swiotlb: 'auto' }, seed: 1001 } },
  { name: 'x86_64, IOMMU off, swiotlb force, 16 KiB cache (writes back on its own)', opts: { boot: { arch: 'x86_64', iommu: 'off', swiotlb: 'force' }, seed: 2002, cacheBytes: 16 << 10 } },
]

describe('NVMe power-fail campaign', () => {
  for (const c of CAMPAIGNS) {
    it(`${POINTS} random crash points: no flushed or FUA write is lost (${c.name})`, { timeout: Math.max(60_000, POINTS * 400) }, async () => {
      const t = performance.now()
      const r = await runCampaign({ ...c.opts, points: POINTS })
      const secs = ((performance.now() - t) / 1000).toFixed(1)
      console.log(
        `nvme power-fail (${c.name}): ${r.points} crash points (${r.crashesDuringIo} during I/O, ${r.crashesBetweenCalls} between calls, ${r.fullReboots} full reboots), ` +
          `${r.writesIssued} writes issued, ${r.writesChecked} completed and checked, ${r.writesRequired} required (FUA or flushed; ${r.flushesCompleted} flushes), ` +
          `${r.writesLostAsAllowed} lost as allowed (unflushed), ${r.inflightBlocksSurvived} blocks of in-flight writes survived, ${r.blocksChecked} blocks checked, ` +
          `${r.bytesLost} bytes dropped from the cache; ${r.violations.length} violations; ${secs} s`,
      )
      expect(r.points).toBe(POINTS)
      expect(r.violations).toEqual([])
      expect(r.reports).toEqual([])
      // After a power cut the driver writes doorbells of queues the reset controller no longer has (device-error) until its timeout resets it.
      expect([...r.postCrashReports.keys()].filter((k) => k !== 'device-error')).toEqual([])
      // The campaign exercised what it claims to.
      expect(r.writesRequired).toBeGreaterThan(POINTS / 2)
      expect(r.writesLostAsAllowed).toBeGreaterThan(0)
      expect(r.crashesDuringIo).toBeGreaterThan(POINTS / 3)
      expect(r.crashesBetweenCalls).toBeGreaterThan(0)
    })
  }
})
