/**
 * kernel/block/fio.ts: the workload generator keeps iodepth I/Os in flight, counts what it did on
 * virtual time, and its verification catches drivers that return stale data, misdirect writes or
 * corrupt payloads — while a correct driver verifies clean.
 */
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, blockUser, boot, fio, type FioOptions } from '../../kernel/index.js'
import { nullBlkAdd, type NullBlkOptions } from '../fixtures/null-blk.js'

async function setup(opts: NullBlkOptions = {}) {
  const sys = boot({ log: 'silent', seed: 4 })
  const nb = await nullBlkAdd(sys, { name: 'nullb0', sizeBytes: 2 << 20, ...opts })
  return { sys, nb, blk: blockUser(sys) }
}

describe('fio: the workload', () => {
  it('issues numIos per job and counts reads, writes and bytes', async () => {
    const { sys, blk } = await setup({ submitQueues: 2 })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randrw', rwmixread: 70, bs: 8192, iodepth: 4, numjobs: 2, numIos: 200 })
    expect(r.ios).toBe(400)
    expect(r.reads + r.writes).toBe(400)
    expect(r.reads / r.ios).toBeGreaterThan(0.6)
    expect(r.reads / r.ios).toBeLessThan(0.8)
    expect(r.bytes).toBe(400 * 8192)
    expect(r.readBytes).toBe(r.reads * 8192)
    expect(r.virtualNs).toBeGreaterThan(0)
    expect(r.iops).toBeCloseTo(400 / (r.virtualNs / 1e9), 3)
    expect(r.lat!.minNs).toBeLessThanOrEqual(r.lat!.p50Ns)
    expect(r.lat!.p50Ns).toBeLessThanOrEqual(r.lat!.p99Ns)
    expect(r.cpuUtilisation).toBeGreaterThan(0)
    expect(blk.pagesInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('keeps iodepth I/Os in flight: a slow device gives iodepth times the IOPS', async () => {
    const { sys } = await setup({ irqmode: 'timer', hwQueueDepth: 64 })
    const one = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 1, numIos: 32 })
    const deep = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 16, numIos: 32 })
    expect(deep.iops / one.iops).toBeGreaterThan(8)
  })

  it('sequential jobs each cover their share of the region; runtimeNs stops issuing', async () => {
    const { sys, nb } = await setup()
    const r = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, numjobs: 2, size: 65536, offset: 65536 })
    expect(r.writes).toBe(16)
    const sectors = nb.log.filter((x) => x.what === 'queue_rq').map((x) => x.sector!).sort((a, b) => a - b)
    expect(sectors).toEqual(Array.from({ length: 16 }, (_, i) => 128 + i * 8))
    const { sys: s2 } = await setup({ irqmode: 'timer' })
    const t = await fio(s2, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 2, numIos: 1000, runtimeNs: 40e6 })
    expect(t.ios).toBeLessThan(1000)
    expect(t.ios).toBeGreaterThan(0)
  })

  it('fsync issues flushes; fua marks the writes', async () => {
    const { sys, nb } = await setup({ cache: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 2, numIos: 12, fsync: 3, fua: true })
    expect(r.flushes).toBe(4)
    expect(nb.counters.flushes).toBe(4)
    expect(nb.counters.fuaWrites).toBe(12)
  })
})

describe('fio: verification', () => {
  it('a correct driver verifies clean, in header and full mode, with odd buffer layouts', async () => {
    const { sys } = await setup({ maxSegments: 3 })
    for (const verify of ['header', 'full', true] as const) {
      const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 16384, iodepth: 8, numIos: 60, verify, pageOffset: 1536 })
      const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 16384, iodepth: 8, numIos: 60, verify, verifyState: w.verifyState, contiguous: true })
      expect(r.verifyErrors).toBe(0)
      expect(r.verified).toBe(r.reads * 32)
    }
    const m = await fio(sys, { disk: 'nullb0', rw: 'randrw', bs: 4096, iodepth: 8, numjobs: 3, numIos: 100, verify: true, seed: 3 })
    expect(m.verifyErrors).toBe(0)
    expect(m.verified + m.verifySkipped).toBe(m.reads * 8)
  })

  it('catches a driver whose reads leave the buffer untouched', async () => {
    const { sys } = await setup({ bug: 'stale-read', bugEvery: 5 })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, iodepth: 4, numIos: 64, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, iodepth: 4, numIos: 64, verify: true, verifyState: w.verifyState })
    expect(r.verifyErrors).toBe(8 * Math.floor(64 / 5))
    expect(r.verifyErrorSamples[0]).toMatch(/nullb0 LBA \d+: the read did not write the buffer/)
  })

  it('catches a driver that writes to the wrong LBA (misdirected or stale data)', async () => {
    const { sys } = await setup({ bug: 'misdirect-write', bugEvery: 7, blocksize: 4096 })
    const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 4, numIos: 200, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, iodepth: 4, verify: true, verifyState: w.verifyState })
    expect(r.verifyErrors).toBeGreaterThan(0)
    expect(r.verifyErrorSamples.join('\n')).toMatch(/misdirected|stale data/)
  })

  it('a corrupt payload is caught in full mode, not in header mode', async () => {
    const { sys } = await setup({ bug: 'corrupt-read' })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, numIos: 8, verify: 'full' })
    const header = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, numIos: 8, verify: 'header', verifyState: w.verifyState })
    const full = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, numIos: 8, verify: 'full', verifyState: w.verifyState })
    expect(header.verifyErrors).toBe(0)
    expect(full.verifyErrors).toBe(8)
    expect(full.verifyErrorSamples[0]).toMatch(/payload corrupt at byte 100/)
  })

  it('I/O errors are counted, and blocks a failed write touched are not verified', async () => {
    const { sys } = await setup({ faults: { ioerrEvery: 4 } })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, numIos: 16, verify: true })
    expect(w.errors).toBe(4)
    expect(w.errorStatuses).toEqual({ BLK_STS_IOERR: 4 })
    // 8 KiB reads: the 2nd covers the 4th write, which failed; the 4th and 8th reads fail themselves.
    const r = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 8192, numIos: 8, verify: true, verifyState: w.verifyState })
    expect(r.errors).toBe(2)
    expect(r.verifyErrors).toBe(0)
    expect(r.verifySkipped).toBeGreaterThan(0)
    expect(r.verified + r.verifySkipped).toBe(6 * 16)
  })
})

describe('fio: bad options', () => {
  it.each<[Partial<FioOptions> & Record<string, unknown>, string]>([
    [{ disk: 'nope' }, 'opts.disk'],
    [{ rw: 'randomread' as FioOptions['rw'] }, 'opts.rw'],
    [{ bs: 1000 }, 'opts.bs'],
    [{ bs: 2 << 20 }, 'opts.bs'],
    [{ iodepth: 0 }, 'opts.iodepth'],
    [{ numjobs: 1.5 }, 'opts.numjobs'],
    [{ size: 1 << 30 }, 'opts.size'],
    [{ rwmixread: 101 }, 'opts.rwmixread'],
    [{ verify: 'crc' as unknown as boolean }, 'opts.verify'],
    [{ queues: [5] }, 'opts.queues'],
    [{ pageOffset: 100 }, 'opts.pageOffset'],
    [{ runtimeNs: -1 }, 'opts.runtimeNs'],
    [{ iodeth: 4 }, 'opts.iodeth'],
  ])('%o names %s', async (bad, arg) => {
    const { sys } = await setup()
    const err = await fio(sys, { disk: 'nullb0', rw: 'randread', ...bad }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(InvalidArgumentError)
    expect((err as InvalidArgumentError).argument).toBe(arg)
  })

  it('a verifyState of another disk is refused', async () => {
    const { sys } = await setup()
    await nullBlkAdd(sys, { name: 'nullb1', sizeBytes: 1 << 20 })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', numIos: 2, verify: true })
    await expect(fio(sys, { disk: 'nullb1', rw: 'read', verify: true, verifyState: w.verifyState })).rejects.toThrow(/belongs to nullb0/)
  })
})
