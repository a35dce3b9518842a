/**
 * kernel/block: the request flow of blk-mq with the null_blk-like fixture — data round trips,
 * contexts (queue_rq atomic, complete in the BLOCK softirq, timeout in process context), hardware
 * queues and the queue map, tag exhaustion, BLK_STS_RESOURCE / DEV_RESOURCE retries, requeues,
 * timeouts, flush and FUA policy, splitting to the queue limits, plugging and commit_rqs.
 */
import { describe, expect, it } from 'vitest'
import {
  BLK_STS_IOERR, BLK_STS_TIMEOUT, BlockIoError, DmalabError, HZ, REQ_FUA, REQ_OP_FLUSH, REQ_OP_READ, REQ_OP_WRITE,
  REQ_OP_WRITE_ZEROES, blockUser, boot, fio, alloc_pages, __free_pages, bio_alloc, bio_add_page, submit_bio_wait, GFP_KERNEL,
  type BootOptions,
} from '../../kernel/index.js'
import { nullBlkAdd, nullBlkDel, type NullBlk, type NullBlkOptions } from '../fixtures/null-blk.js'

function pattern(bytes: number, seed: number): Uint8Array {
  const out = new Uint8Array(bytes)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

async function setup(opts: NullBlkOptions = {}, bootOptions: BootOptions = {}) {
  const sys = boot({ log: 'silent', seed: 1, ...bootOptions })
  const nb = await nullBlkAdd(sys, { name: 'nullb0', ...opts })
  return { sys, nb, blk: blockUser(sys) }
}

const queueRqs = (nb: NullBlk) => nb.log.filter((r) => r.what === 'queue_rq')

describe('block: the request flow', () => {
  it.each(['none', 'softirq', 'timer'] as const)('writes and reads back data with irqmode %s', async (irqmode) => {
    const { sys, nb, blk } = await setup({ irqmode })
    const data = pattern(8192, 1)
    await blk.write('nullb0', 100, data)
    expect(await blk.read('nullb0', 100, 16)).toEqual(data)
    expect(await blk.read('nullb0', 104, 4)).toEqual(data.subarray(2048, 4096))
    expect(nb.peek(100, 16)).toEqual(data)
    expect(sys.reports).toEqual([])
    expect(blk.pagesInUse).toBe(0)
    const st = blk.stats('nullb0')
    expect(st.write.ios).toBe(1)
    expect(st.write.sectors).toBe(16)
    expect(st.read.ios).toBe(2)
    expect(st.inFlight).toBe(0)
  })

  it.each([512, 1024, 4096])('works with %i-byte logical blocks, both limit styles', async (blocksize) => {
    for (const limitsStyle of ['setters', 'queue_limits'] as const) {
      const { sys, blk } = await setup({ blocksize, limitsStyle })
      expect(blk.disk('nullb0').logicalBlockSize).toBe(blocksize)
      const data = pattern(3 * blocksize, blocksize)
      await blk.write('nullb0', 7, data)
      expect(await blk.read('nullb0', 7, 3)).toEqual(data)
      expect(sys.reports).toEqual([])
    }
  })

  it('runs queue_rq in atomic context, complete in the BLOCK softirq, init_hctx in process context', async () => {
    const { nb, blk } = await setup({ irqmode: 'softirq' })
    await blk.write('nullb0', 0, pattern(512, 2))
    const q = queueRqs(nb)[0]!
    expect(q).toMatchObject({ context: 'softirq', atomic: true, op: REQ_OP_WRITE, last: true })
    expect(nb.log.find((r) => r.what === 'complete')).toMatchObject({ context: 'softirq', atomic: true })
    expect(nb.log.find((r) => r.what === 'init_hctx')).toMatchObject({ context: 'process', atomic: false })
  })

  it('a queue_rq that sleeps is invalid-context; an async one too; the I/O still completes', async () => {
    for (const bug of ['sleep-in-queue-rq', 'async-queue-rq'] as const) {
      const { sys, blk } = await setup({ bug })
      const data = pattern(1024, 3)
      await blk.write('nullb0', 2, data)
      expect(await blk.read('nullb0', 2, 2)).toEqual(data)
      const kinds = sys.reports.map((r) => r.kind)
      expect(kinds).toEqual(['invalid-context'])
      expect(sys.reports[0]!.message).toMatch(bug === 'sleep-in-queue-rq' ? /sleeping function called from invalid context: msleep\(\)/ : /queue_rq returned a Promise/)
    }
  })

  it('an exception in queue_rq is an oops of that call: the request fails with BLK_STS_IOERR, the system goes on', async () => {
    const { sys, blk } = await setup({ bug: 'throw-in-queue-rq', bugEvery: 2 })
    await blk.write('nullb0', 0, pattern(512, 4))
    const err = await blk.read('nullb0', 0, 1).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BlockIoError)
    expect(err).toMatchObject({ status: BLK_STS_IOERR, errno: -5, statusName: 'BLK_STS_IOERR' })
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    expect(await blk.read('nullb0', 0, 1)).toEqual(pattern(512, 4))
  })

  it('an exception in complete is an oops of that call: the request fails with BLK_STS_IOERR', async () => {
    const { sys, blk } = await setup({ bug: 'throw-in-complete', bugEvery: 2 })
    await blk.write('nullb0', 0, pattern(512, 4))
    await expect(blk.read('nullb0', 0, 1)).rejects.toMatchObject({ statusName: 'BLK_STS_IOERR' })
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    expect(sys.reports[0]!.message).toMatch(/TypeError/)
    expect(await blk.read('nullb0', 0, 1)).toEqual(pattern(512, 4))
    expect(blk.stats('nullb0').inFlight).toBe(0)
  })

  it('a double end of a request is reported', async () => {
    const { sys, blk } = await setup({ bug: 'double-end' })
    await blk.write('nullb0', 0, pattern(512, 5))
    expect(sys.reports.map((r) => r.kind)).toEqual(['double-free'])
    expect(sys.reports[0]!.message).toMatch(/blk_mq_end_request of a request that is not allocated/)
  })
})

describe('block: hardware queues and tags', () => {
  it('submission context i uses hw queue i; each hw queue has its driver_data', async () => {
    const { nb, blk } = await setup({ submitQueues: 4 })
    expect(blk.disk('nullb0').nrHwQueues).toBe(4)
    for (let q = 0; q < 4; q++) await blk.write('nullb0', q * 8, pattern(4096, q), { queue: q })
    expect(queueRqs(nb).map((r) => r.hctx)).toEqual([0, 1, 2, 3])
    expect(nb.counters.initHctx).toBe(4)
    const st = blk.stats('nullb0')
    expect(st.hctx.map((h) => h.issued)).toEqual([1, 1, 1, 1])
  })

  it('fio jobs on several queues keep each hw queue busy', async () => {
    const { sys, nb, blk } = await setup({ submitQueues: 4, irqmode: 'timer', hwQueueDepth: 8, sizeBytes: 4 << 20 })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 8, numjobs: 4, numIos: 40, verify: true })
    expect(r.errors).toBe(0)
    expect(r.ios).toBe(160)
    expect(blk.stats('nullb0').hctx.map((h) => h.issued)).toEqual([40, 40, 40, 40])
    expect(nb.counters.maxInflight.every((n) => n > 1)).toBe(true)
    expect(sys.reports).toEqual([])
  })

  it('a submitter sleeps for a tag when the queue depth is exhausted', async () => {
    const { sys, nb, blk } = await setup({ irqmode: 'timer', hwQueueDepth: 2 })
    const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 8, numIos: 64, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 8, numIos: 64, verify: true, verifyState: w.verifyState })
    expect(w.errors + r.errors + r.verifyErrors).toBe(0)
    expect(r.verified).toBeGreaterThan(0)
    expect(nb.counters.maxInflight[0]).toBe(2)
    expect(blk.stats('nullb0').hctx[0]!.tagWaits).toBeGreaterThan(0)
    expect(sys.reports).toEqual([])
  })

  it('BLK_STS_RESOURCE: the request is retried (after a delay or the next completion)', async () => {
    for (const irqmode of ['softirq', 'timer', 'none'] as const) {
      const { sys, nb, blk } = await setup({ irqmode, faults: { resourceEvery: 3 } })
      const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 4, numIos: 30, verify: true })
      const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 4, numIos: 30, verify: true, verifyState: w.verifyState })
      expect(w.errors + r.errors + r.verifyErrors).toBe(0)
      expect(nb.counters.resource).toBeGreaterThan(5)
      expect(blk.stats('nullb0').hctx[0]!.busy).toBe(nb.counters.resource)
      expect(sys.reports).toEqual([])
    }
  })

  it('BLK_STS_DEV_RESOURCE with a stopped hw queue: the next completion starts it again', async () => {
    const { sys, nb } = await setup({ irqmode: 'timer', faults: { devResourceEvery: 4 } })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 6, numIos: 40, verify: true })
    expect(r.errors).toBe(0)
    expect(r.ios).toBe(40)
    expect(nb.counters.devResource).toBeGreaterThan(0)
    expect(sys.reports).toEqual([])
  })

  it('blk_mq_requeue_request: the request is dispatched again and completes', async () => {
    const { sys, nb, blk } = await setup({ faults: { requeueEvery: 3 } })
    const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 4, numIos: 30, verify: true })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 4, numIos: 30, verify: true, verifyState: w.verifyState })
    expect(w.errors + r.errors + r.verifyErrors).toBe(0)
    expect(nb.counters.requeues).toBeGreaterThan(5)
    expect(blk.stats('nullb0').requeues).toBe(nb.counters.requeues)
    expect(sys.reports).toEqual([])
  })
})

describe('block: timeouts', () => {
  it('a request the driver never completes times out: ops.timeout runs in process context and ends it', async () => {
    const { sys, nb, blk } = await setup({ faults: { timeoutEvery: 2 }, rqTimeoutJiffies: HZ / 10 })
    await blk.write('nullb0', 0, pattern(512, 6))
    const t0 = sys.clock
    const err = await blk.read('nullb0', 0, 1).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BlockIoError)
    expect(err).toMatchObject({ status: BLK_STS_TIMEOUT, errno: -110 })
    expect(sys.clock - t0).toBeGreaterThanOrEqual(100e6)
    expect(sys.clock - t0).toBeLessThan(120e6)
    expect(nb.counters.timeouts).toBe(1)
    expect(nb.log.find((r) => r.what === 'timeout')).toMatchObject({ context: 'process', atomic: false })
    expect(blk.stats('nullb0').timeouts).toBe(1)
    expect(sys.reports).toEqual([])
  })

  it('the default timeout is 30 s; an idle system goes idle afterwards', async () => {
    const { sys, blk } = await setup({ faults: { timeoutEvery: 1 } })
    expect(blk.disk('nullb0').rqTimeoutMs).toBe(30000)
    const t0 = sys.clock
    const r = await blk.io('nullb0', { op: 'read', lba: 0, count: 1 })
    expect(r.statusName).toBe('BLK_STS_TIMEOUT')
    expect(Math.round((sys.clock - t0) / 1e9)).toBe(30)
    const t1 = sys.clock
    await sys.runUntilIdle()
    expect(sys.clock).toBe(t1)
  })

  it('without ops.timeout a lost request is rearmed forever: the harness gives up with a DmalabError', async () => {
    const { blk } = await setup({ faults: { timeoutEvery: 1 }, timeoutHandler: false, rqTimeoutJiffies: HZ })
    await expect(blk.read('nullb0', 0, 1, { timeoutNs: 5e9 })).rejects.toThrow(DmalabError)
    await expect(blk.read('nullb0', 0, 1, { timeoutNs: 5e9 })).rejects.toThrow(/did not end within 5000000000 ns/)
    expect(blk.pagesInUse).toBeGreaterThan(0) // the buffers a device may still write are not freed
  })
})

describe('block: flushes and FUA', () => {
  it('without a write cache, flushes never reach the driver and REQ_FUA is dropped', async () => {
    const { nb, blk } = await setup({ cache: false })
    await blk.write('nullb0', 0, pattern(512, 7), { fua: true, preflush: true })
    await blk.flush('nullb0')
    expect(nb.counters.flushes).toBe(0)
    expect(nb.lastFlags.get(REQ_OP_WRITE)! & REQ_FUA).toBe(0)
    expect(blk.disk('nullb0')).toMatchObject({ writeCache: false, fua: false })
  })

  it('with a write cache and FUA: REQ_OP_FLUSH and REQ_FUA reach the driver; unflushed data is lost at power failure', async () => {
    const { nb, blk } = await setup({ cache: true, fua: true })
    expect(blk.disk('nullb0')).toMatchObject({ writeCache: true, fua: true })
    await blk.write('nullb0', 0, pattern(512, 8))
    await blk.write('nullb0', 1, pattern(512, 9), { fua: true })
    expect(nb.lastFlags.get(REQ_OP_WRITE)! & REQ_FUA).toBe(REQ_FUA)
    expect(nb.counters.fuaWrites).toBe(1)
    nb.powerFail()
    expect(nb.peek(0, 1)).toEqual(new Uint8Array(512))
    expect(nb.peek(1, 1)).toEqual(pattern(512, 9))
    await blk.write('nullb0', 0, pattern(512, 8))
    await blk.flush('nullb0')
    expect(nb.counters.flushes).toBe(1)
    expect(nb.lastFlags.get(REQ_OP_FLUSH)).toBeDefined()
    nb.powerFail()
    expect(nb.peek(0, 1)).toEqual(pattern(512, 8))
    expect(blk.stats('nullb0').flush.ios).toBe(1)
  })

  it('with a write cache but no FUA, a FUA write is followed by a flush; REQ_PREFLUSH puts one before', async () => {
    const { nb, blk } = await setup({ cache: true, fua: false })
    await blk.write('nullb0', 3, pattern(512, 10), { fua: true })
    expect(queueRqs(nb).map((r) => r.op)).toEqual([REQ_OP_WRITE, REQ_OP_FLUSH])
    expect(nb.lastFlags.get(REQ_OP_WRITE)! & REQ_FUA).toBe(0)
    nb.powerFail()
    expect(nb.peek(3, 1)).toEqual(pattern(512, 10))
    nb.log.length = 0
    await blk.write('nullb0', 4, pattern(512, 11), { preflush: true })
    expect(queueRqs(nb).map((r) => r.op)).toEqual([REQ_OP_FLUSH, REQ_OP_WRITE])
  })

  it('a driver that ignores flushes loses data fio wrote with fsync', async () => {
    const { sys, nb } = await setup({ cache: true, bug: 'ignore-flush' })
    const w = await fio(sys, { disk: 'nullb0', rw: 'write', bs: 4096, iodepth: 1, numIos: 16, fsync: 4, verify: true })
    expect(w.flushes).toBe(4)
    nb.powerFail()
    const r = await fio(sys, { disk: 'nullb0', rw: 'read', bs: 4096, iodepth: 4, numIos: 16, verify: true, verifyState: w.verifyState })
    expect(r.verifyErrors).toBeGreaterThan(0)
  })
})

describe('block: limits, splitting and segments', () => {
  it('a bio larger than max_hw_sectors is split into requests that each fit', async () => {
    const { sys, nb, blk } = await setup({ maxSectors: 8 })
    const data = pattern(65536, 12)
    await blk.write('nullb0', 64, data)
    const qs = queueRqs(nb)
    expect(qs).toHaveLength(16)
    expect(qs.every((r) => r.bytes === 4096)).toBe(true)
    expect(qs.map((r) => r.sector)).toEqual(Array.from({ length: 16 }, (_, i) => 64 + i * 8))
    expect(await blk.read('nullb0', 64, 128)).toEqual(data)
    expect(blk.stats('nullb0').write.ios).toBe(16)
    expect(sys.reports).toEqual([])
  })

  it('scattered pages make one segment each; contiguous pages merge; max_segments caps a request', async () => {
    const { nb, blk } = await setup({ maxSegments: 4, maxSectors: 1024 })
    await blk.write('nullb0', 0, pattern(8 * 4096, 13))
    expect(queueRqs(nb).map((r) => [r.bytes, r.segments])).toEqual([[16384, 4], [16384, 4]])
    nb.log.length = 0
    await blk.write('nullb0', 0, pattern(8 * 4096, 13), { contiguous: true })
    expect(queueRqs(nb).map((r) => [r.bytes, r.segments])).toEqual([[32768, 1]])
  })

  it('a buffer that starts inside a page gives segments that are not page aligned', async () => {
    const { nb, blk } = await setup()
    const data = pattern(8192, 14)
    await blk.write('nullb0', 10, data, { pageOffset: 512 })
    expect(queueRqs(nb)[0]).toMatchObject({ bytes: 8192, segments: 3 })
    expect(await blk.read('nullb0', 10, 16, { pageOffset: 1024 })).toEqual(data)
  })

  it('behind a virtual boundary a gap between two pieces splits the bio', async () => {
    for (const virtBoundary of [0, 4095]) {
      const { sys, nb } = await setup({ virtBoundary })
      const rc = await sys.run(async () => {
        const a = alloc_pages(GFP_KERNEL, 1)!
        const b = alloc_pages(GFP_KERNEL, 1)!
        const bio = bio_alloc(nb.disk, 2, REQ_OP_WRITE)!
        bio.bi_iter.bi_sector = 8
        bio_add_page(bio, a, 512, 0) // ends at 512: not on the boundary
        bio_add_page(bio, b, 1024, 0)
        const err = await submit_bio_wait(bio)
        __free_pages(a, 1)
        __free_pages(b, 1)
        return err
      })
      expect(rc).toBe(0)
      expect(queueRqs(nb).map((r) => [r.sector, r.bytes, r.segments])).toEqual(virtBoundary === 0 ? [[8, 1536, 2]] : [[8, 512, 1], [9, 1024, 1]])
    }
  })

  it('REQ_OP_WRITE_ZEROES reaches a driver that supports it; elsewhere zero pages are written', async () => {
    const { nb, blk } = await setup({ writeZeroesSectors: 64 })
    await blk.write('nullb0', 0, pattern(65536, 15))
    await blk.writeZeroes('nullb0', 16, 96)
    expect(nb.counters.writeZeroes).toBe(2)
    expect(queueRqs(nb).filter((r) => r.op === REQ_OP_WRITE_ZEROES).map((r) => r.bytes)).toEqual([32768, 16384])
    const back = await blk.read('nullb0', 0, 128)
    expect(back.subarray(0, 8192)).toEqual(pattern(65536, 15).subarray(0, 8192))
    expect(back.subarray(8192, 57344).every((b) => b === 0)).toBe(true)
    const s2 = await setup()
    await s2.blk.write('nullb0', 0, pattern(4096, 16))
    await s2.blk.writeZeroes('nullb0', 0, 8)
    expect(s2.nb.counters.writeZeroes).toBe(0)
    expect(s2.nb.counters.writes).toBe(2)
    expect(await s2.blk.read('nullb0', 0, 8)).toEqual(new Uint8Array(4096))
    await expect(s2.blk.writeZeroes('nullb0', 0, 8, { noFallback: true })).rejects.toMatchObject({ statusName: 'BLK_STS_NOTSUPP' })
    await expect(s2.blk.discard('nullb0', 0, 8)).rejects.toMatchObject({ statusName: 'BLK_STS_NOTSUPP', errno: -95 })
  })
})

describe('block: plugging and bd.last', () => {
  it('a plugged batch sets bd.last on its last request only', async () => {
    const { sys, nb } = await setup({ irqmode: 'timer' })
    await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 8, batch: 8, numIos: 8 })
    expect(queueRqs(nb).map((r) => r.last)).toEqual([false, false, false, false, false, false, false, true])
  })

  it('commit_rqs is called when a batch stops early on BLK_STS_RESOURCE', async () => {
    const { sys, nb } = await setup({ irqmode: 'timer', faults: { resourceEvery: 4 } })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 8, batch: 8, numIos: 16 })
    expect(r.errors).toBe(0)
    expect(nb.counters.commits).toBeGreaterThan(0)
    const first = nb.log.findIndex((x) => x.what === 'commit_rqs')
    expect(nb.log[first - 1]).toMatchObject({ what: 'queue_rq', last: false })
  })
})

describe('block: read-only disks, deletion, unbind', () => {
  it('del_gendisk waits for what is in flight; the disk is then gone', async () => {
    const { sys, nb, blk } = await setup({ irqmode: 'timer', completionJiffies: 5 })
    const t0 = sys.clock
    // The write's task runs first and sleeps with its request in flight; rmmod's del_gendisk waits for it.
    const [w] = await Promise.allSettled([blk.write('nullb0', 0, pattern(4096, 17)), nullBlkDel(sys, nb)])
    expect(w.status).toBe('fulfilled')
    expect(sys.clock - t0).toBeGreaterThanOrEqual(16e6)
    expect(nb.counters.writes).toBe(1)
    expect(blk.disks()).toEqual([])
    expect(nb.counters.exitHctx).toBe(1)
    expect(nb.counters.exitRequest).toBe(64)
    expect(sys.reports).toEqual([])
    expect(blk.pagesInUse).toBe(0)
  })

  it('status to errno', async () => {
    const { blk } = await setup({ faults: { ioerrEvery: 1 } })
    const r = await blk.io('nullb0', { op: 'read', lba: 0, count: 1 })
    expect(r).toMatchObject({ status: BLK_STS_IOERR, statusName: 'BLK_STS_IOERR', errno: -5, data: null })
    expect(REQ_OP_READ).toBe(0)
  })
})
