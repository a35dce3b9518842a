/**
 * kernel/block: the blk-mq API around the request flow — tag-set and disk creation (and what
 * Linux rejects), the queue map, passthrough requests with reserved tags, quiescing and freezing
 * (a reset's tools), REQ_NOWAIT, read-only disks, leaks at unbind, and determinism.
 */
import { describe, expect, it } from 'vitest'
import {
  BLK_MQ_F_BLOCKING, BLK_MQ_REQ_NOWAIT, BLK_MQ_REQ_RESERVED, BLK_STS_OK, EAGAIN, EEXIST, EINVAL, IS_ERR, KernelOops,
  PTR_ERR, REQ_OP_DRV_IN, REQ_OP_DRV_OUT, REQ_OP_READ, RQ_END_IO_FREE, add_disk, bio_add_page, bio_alloc, blk_execute_rq,
  blk_execute_rq_nowait, blk_freeze_queue_start, blk_mq_alloc_disk, blk_mq_alloc_queue, blk_mq_alloc_request,
  blk_mq_alloc_tag_set, blk_mq_complete_request, blk_mq_destroy_queue, blk_mq_end_request, blk_mq_free_request,
  blk_mq_free_tag_set, blk_mq_freeze_queue, blk_mq_freeze_queue_wait, blk_mq_quiesce_queue, blk_mq_rq_from_pdu,
  blk_mq_rq_to_pdu, blk_mq_start_request, blk_mq_tag_to_rq, blk_mq_tagset_busy_iter, blk_mq_unfreeze_queue,
  blk_mq_unique_tag, blk_mq_unique_tag_to_hwq, blk_mq_unique_tag_to_tag, blk_mq_unquiesce_queue, blk_rq_map_kern,
  blk_status_to_errno, blockUser, boot, del_gendisk, device_add_disk, fio, kfree, kmalloc, ktime_get_ns, alloc_page,
  mem_read_bytes, mem_write_bytes, msleep, pci_register_driver, put_disk, req_op, rq_for_each_segment, set_capacity,
  set_disk_ro, submit_bio_wait, bvec_virt, __free_page, BLK_STS_TIMEOUT, BLK_STS_AGAIN, BLK_STS_IOERR,
  type BlkMqTagSet, type Gendisk, type PciDriver, type Request,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { nullBlkAdd } from '../fixtures/null-blk.js'

describe('block: tag sets and disks', () => {
  it('blk_mq_alloc_tag_set rejects what Linux rejects; bad types are an oops', async () => {
    const sys = boot({ log: 'silent' })
    const ops = { queue_rq: () => BLK_STS_OK }
    const rcs = await sys.run(() => [
      blk_mq_alloc_tag_set({ ops, nr_hw_queues: 0, queue_depth: 4 }),
      blk_mq_alloc_tag_set({ ops, nr_hw_queues: 1, queue_depth: 0 }),
      blk_mq_alloc_tag_set({ ops, nr_hw_queues: 1, queue_depth: 2, reserved_tags: 2 }),
      blk_mq_alloc_tag_set({ ops: {} as typeof ops, nr_hw_queues: 1, queue_depth: 4 }),
      blk_mq_alloc_tag_set({ ops, nr_hw_queues: 1, queue_depth: 4, flags: BLK_MQ_F_BLOCKING }),
    ])
    expect(rcs).toEqual([-EINVAL, -EINVAL, -EINVAL, -EINVAL, -EINVAL])
    await expect(sys.run(() => blk_mq_alloc_tag_set({ ops, nr_hw_queues: '2' as unknown as number, queue_depth: 4 }))).rejects.toThrow(KernelOops)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
    expect(sys.reports[0]!.message).toMatch(/set.nr_hw_queues/)
  })

  it('blk_mq_alloc_disk returns an error pointer for invalid limits; add_disk checks the name', async () => {
    const sys = boot({ log: 'silent' })
    const out = await sys.run(() => {
      const set: BlkMqTagSet = { ops: { queue_rq: () => BLK_STS_OK }, nr_hw_queues: 1, queue_depth: 4 }
      blk_mq_alloc_tag_set(set)
      const bad = blk_mq_alloc_disk(set, { logical_block_size: 3000 }, null)
      const a = blk_mq_alloc_disk(set, null)
      const b = blk_mq_alloc_disk(set, null)
      if (IS_ERR(a) || IS_ERR(b)) throw new Error('alloc failed')
      const noName = add_disk(a)
      a.disk_name = 'vda'
      b.disk_name = 'vda'
      set_capacity(a, 2048)
      return { bad: IS_ERR(bad) ? PTR_ERR(bad) : 0, noName, first: add_disk(a), second: add_disk(b) }
    })
    expect(out).toEqual({ bad: -EINVAL, noName: -EINVAL, first: 0, second: -EEXIST })
    expect(blockUser(sys).disks().map((d) => d.name)).toEqual(['vda'])
  })

  it('map_queues decides which hw queue a submission context uses', async () => {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0', submitQueues: 3, mapQueues: (set) => set.map![0]!.mq_map.fill(2) })
    const blk = blockUser(sys)
    for (let q = 0; q < 3; q++) await blk.write('nullb0', q, new Uint8Array(512), { queue: q })
    expect(nb.log.filter((r) => r.what === 'queue_rq').map((r) => r.hctx)).toEqual([2, 2, 2])
  })
})

/** A tiny passthrough driver: DRV_IN fills the buffer with a pattern, DRV_OUT records what it got. */
function passthroughSet(got: Uint8Array[]): BlkMqTagSet {
  return {
    nr_hw_queues: 1,
    queue_depth: 3,
    reserved_tags: 1,
    ops: {
      init_request: (_set, rq) => {
        blk_mq_rq_to_pdu<{ status: number; tag: number }>(rq).tag = rq.tag
        return 0
      },
      queue_rq: (_hctx, bd) => {
        const rq = bd.rq
        blk_mq_start_request(rq)
        for (const bv of rq_for_each_segment(rq)) {
          if (req_op(rq) === REQ_OP_DRV_IN) mem_write_bytes(bvec_virt(bv), new Uint8Array(bv.bv_len).fill(0xab))
          else got.push(mem_read_bytes(bvec_virt(bv), bv.bv_len))
        }
        blk_mq_complete_request(rq)
        return BLK_STS_OK
      },
      complete: (rq) => blk_mq_end_request(rq, BLK_STS_OK),
    },
  }
}

describe('block: passthrough requests', () => {
  it('blk_mq_alloc_request + blk_rq_map_kern + blk_execute_rq on a queue without a disk', async () => {
    const sys = boot({ log: 'silent' })
    const got: Uint8Array[] = []
    const out = await sys.run(async () => {
      const set = passthroughSet(got)
      blk_mq_alloc_tag_set(set)
      const q = blk_mq_alloc_queue(set, null, null)
      if (IS_ERR(q)) throw new Error('queue')
      const buf = kmalloc(6000)!
      const rq = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, 0)
      if (IS_ERR(rq)) throw new Error('rq')
      const pdu = blk_mq_rq_to_pdu<{ tag: number }>(rq)
      const fromPdu = blk_mq_rq_from_pdu(pdu) === rq
      const mapped = blk_rq_map_kern(rq, buf, 6000)
      const status = await blk_execute_rq(rq, false)
      blk_mq_free_request(rq)
      const data = mem_read_bytes(buf, 6000)
      // DRV_OUT with an end_io that frees the request itself.
      mem_write_bytes(buf, new Uint8Array(512).fill(7))
      const out2 = await blk_mq_alloc_request(q, REQ_OP_DRV_OUT, 0)
      if (IS_ERR(out2)) throw new Error('rq2')
      blk_rq_map_kern(out2, buf, 512)
      let ended = -1
      out2.end_io = (_rq, err) => {
        ended = err
        return RQ_END_IO_FREE
      }
      blk_execute_rq_nowait(out2, true)
      await msleep(1)
      // Reserved tags, without sleeping.
      const r1 = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, BLK_MQ_REQ_RESERVED | BLK_MQ_REQ_NOWAIT)
      const r2 = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, BLK_MQ_REQ_RESERVED | BLK_MQ_REQ_NOWAIT)
      const n1 = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, BLK_MQ_REQ_NOWAIT)
      const n2 = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, BLK_MQ_REQ_NOWAIT)
      const n3 = await blk_mq_alloc_request(q, REQ_OP_DRV_IN, BLK_MQ_REQ_NOWAIT)
      const tags = [r1, n1, n2].map((r) => (IS_ERR(r) ? r : r.tag))
      const byTag = IS_ERR(n1) ? null : blk_mq_tag_to_rq(set.tags![0]!, n1.tag) === n1
      const unique = IS_ERR(n1) ? -1 : blk_mq_unique_tag(n1)
      for (const r of [r1, n1, n2]) if (!IS_ERR(r)) blk_mq_free_request(r)
      kfree(buf)
      await blk_mq_destroy_queue(q)
      blk_mq_free_tag_set(set)
      return { fromPdu, mapped, status, data, ended, tags, r2: IS_ERR(r2) ? r2 : 0, n3: IS_ERR(n3) ? n3 : 0, byTag, unique }
    })
    expect(out.fromPdu).toBe(true)
    expect(out.mapped).toBe(0)
    expect(out.status).toBe(BLK_STS_OK)
    expect(out.data.every((b) => b === 0xab)).toBe(true)
    expect(out.ended).toBe(BLK_STS_OK)
    expect(got).toEqual([new Uint8Array(512).fill(7)])
    expect(out.tags).toEqual([0, 1, 2])
    expect(out.r2).toBe(-EAGAIN)
    expect(out.n3).toBe(-EAGAIN)
    expect(out.byTag).toBe(true)
    expect([blk_mq_unique_tag_to_hwq(out.unique), blk_mq_unique_tag_to_tag(out.unique)]).toEqual([0, 1])
    expect(sys.reports).toEqual([])
  })
})

describe('block: quiesce, freeze and busy iteration (a reset)', () => {
  it('a quiesced queue dispatches nothing until it is unquiesced', async () => {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0' })
    const blk = blockUser(sys)
    const q = nb.disk.queue
    let waiting = -1
    let unquiescedAt = 0
    const [, r] = await Promise.all([
      sys.run(async () => {
        await blk_mq_quiesce_queue(q)
        await msleep(10)
        waiting = q.queue_hw_ctx[0]!._dispatch.length
        unquiescedAt = ktime_get_ns()
        blk_mq_unquiesce_queue(q)
      }),
      blk.io('nullb0', { op: 'read', lba: 0, count: 1 }),
    ])
    expect(waiting).toBe(1)
    expect(nb.counters.queueRq).toBe(1)
    expect(r.status).toBe(BLK_STS_OK)
    expect(r.latencyNs).toBeGreaterThan(9e6)
    expect(unquiescedAt).toBeGreaterThan(0)
    expect(sys.reports).toEqual([])
  })

  it('blk_mq_freeze_queue waits for in-flight I/O; new I/O waits for the unfreeze', async () => {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0', irqmode: 'timer', completionJiffies: 5 })
    const blk = blockUser(sys)
    const q = nb.disk.queue
    const times: Record<string, number> = {}
    await Promise.all([
      blk.write('nullb0', 0, new Uint8Array(4096).fill(1)),
      sys.run(async () => {
        await msleep(1)
        await blk_mq_freeze_queue(q)
        times['frozen'] = ktime_get_ns()
        await msleep(30)
        times['unfreeze'] = ktime_get_ns()
        blk_mq_unfreeze_queue(q)
      }, 'reset'),
      sys.run(async () => {
        await msleep(2)
        const page = alloc_page(0)!
        const bio = bio_alloc(nb.disk, 1, REQ_OP_READ)!
        bio_add_page(bio, page, 4096, 0)
        const rc = await submit_bio_wait(bio)
        times['read'] = ktime_get_ns()
        __free_page(page)
        return rc
      }, 'reader'),
    ])
    // The write completes 5 jiffies (20 ms) after it started: the freeze waited for it.
    expect(times['frozen']!).toBeGreaterThanOrEqual(20e6)
    expect(times['read']!).toBeGreaterThan(times['unfreeze']!)
    expect(sys.reports).toEqual([])
  })

  it('busy iteration finds what is in flight: a reset can cancel it', async () => {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0', faults: { timeoutEvery: 1 } })
    const blk = blockUser(sys)
    let found: number[] = []
    const [r] = await Promise.all([
      blk.io('nullb0', { op: 'read', lba: 0, count: 8 }),
      sys.run(async () => {
        await msleep(1)
        blk_freeze_queue_start(nb.disk.queue)
        blk_mq_tagset_busy_iter(nb.set, (rq: Request, list: number[]) => {
          list.push(rq.tag)
          blk_mq_rq_to_pdu<{ error: number }>(rq).error = BLK_STS_IOERR
          blk_mq_complete_request(rq)
          return true
        }, (found = []))
        await blk_mq_freeze_queue_wait(nb.disk.queue)
        blk_mq_unfreeze_queue(nb.disk.queue)
      }),
    ])
    expect(found).toHaveLength(1)
    expect(r.status).toBe(BLK_STS_IOERR)
    expect(nb.counters.timeouts).toBe(0)
    expect(blk_status_to_errno(BLK_STS_TIMEOUT)).toBe(-110)
  })
})

describe('block: REQ_NOWAIT and read-only disks', () => {
  it('REQ_NOWAIT fails with BLK_STS_AGAIN when no tag is free', async () => {
    const sys = boot({ log: 'silent' })
    await nullBlkAdd(sys, { name: 'nullb0', irqmode: 'timer', hwQueueDepth: 1 })
    const blk = blockUser(sys)
    const [w, r] = await Promise.all([
      blk.io('nullb0', { op: 'write', lba: 0, data: new Uint8Array(512) }),
      blk.io('nullb0', { op: 'read', lba: 0, count: 1, nowait: true }),
    ])
    expect(w.status).toBe(BLK_STS_OK)
    expect(r).toMatchObject({ status: BLK_STS_AGAIN, errno: -EAGAIN })
  })

  it('writes to a read-only disk fail', async () => {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0' })
    await sys.run(() => set_disk_ro(nb.disk, true))
    const blk = blockUser(sys)
    expect(blk.disk('nullb0').readOnly).toBe(true)
    await expect(blk.write('nullb0', 0, new Uint8Array(512))).rejects.toMatchObject({ statusName: 'BLK_STS_IOERR' })
    expect(await blk.read('nullb0', 0, 1)).toEqual(new Uint8Array(512))
    expect(nb.counters.writes).toBe(0)
  })
})

describe('block: a PCI block driver at unbind', () => {
  async function bind(variant: 'correct' | 'leaky' | 'no-put') {
    const hw = new IrqTestDevice('blkdev0')
    const sys = boot({ log: 'silent', devices: [hw] })
    let disk: Gendisk | null = null
    const set: BlkMqTagSet = {
      nr_hw_queues: 1,
      queue_depth: 4,
      ops: {
        queue_rq: (_h, bd) => {
          blk_mq_start_request(bd.rq)
          blk_mq_end_request(bd.rq, BLK_STS_OK)
          return BLK_STS_OK
        },
      },
    }
    const drv: PciDriver = {
      name: 'pciblk',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        const rc = blk_mq_alloc_tag_set(set)
        if (rc !== 0) return Promise.resolve(rc)
        const d = blk_mq_alloc_disk(set, null)
        if (IS_ERR(d)) return Promise.resolve(PTR_ERR(d))
        d.disk_name = 'pblk0'
        set_capacity(d, 1024)
        disk = d
        return Promise.resolve(device_add_disk(pdev.dev, d, null))
      },
      remove: async () => {
        if (variant === 'leaky') return
        await del_gendisk(disk!)
        if (variant === 'no-put') return
        put_disk(disk!)
        blk_mq_free_tag_set(set)
      },
    }
    await sys.run(() => pci_register_driver(drv))
    return { sys, hw }
  }

  it('a driver that deletes, puts and frees in remove leaves nothing', async () => {
    const { sys } = await bind('correct')
    const blk = blockUser(sys)
    expect(blk.disks()).toMatchObject([{ name: 'pblk0', parent: 'blkdev0', driver: 'pciblk', blocks: 1024 }])
    await blk.write('pblk0', 0, new Uint8Array(512))
    await sys.unbind(sys.pciDevice('blkdev0')!)
    expect(blk.disks()).toEqual([])
    expect(sys.reports).toEqual([])
  })

  it('a disk and a tag set left behind are leaks naming the device', async () => {
    const { sys } = await bind('leaky')
    await sys.unbind(sys.pciDevice('blkdev0')!)
    expect(sys.reports.map((r) => [r.kind, r.device])).toEqual([['leak', 'blkdev0'], ['leak', 'blkdev0']])
    expect(sys.reports.map((r) => r.message).join('\n')).toMatch(/disk pblk0 is still added[\s\S]*blk_mq_tag_set/)
    const { sys: sys2 } = await bind('no-put')
    await sys2.unbind(sys2.pciDevice('blkdev0')!)
    expect(sys2.reports.map((r) => r.message).join('\n')).toMatch(/pblk0 was deleted but never released: call put_disk/)
  })
})

describe('block: determinism', () => {
  async function run(seed: number, fioSeed: number) {
    const sys = boot({ log: 'silent', seed, arch: 'arm64', swiotlb: 'force' })
    const m = sys.attachTestMaster('nbdma')
    const nb = await nullBlkAdd(sys, { name: 'nullb0', dma: m, irqmode: 'timer', submitQueues: 2, sizeBytes: 1 << 20 })
    const r = await fio(sys, { disk: 'nullb0', rw: 'randrw', bs: 4096, iodepth: 4, numjobs: 2, numIos: 40, verify: true, seed: fioSeed })
    const { verifyState, ...rest } = r
    return { rest, clock: sys.clock, data: nb.peek(0, 2048), blocks: verifyState.blocks }
  }

  it('the same seeds give the same run, byte for byte; another fio seed other LBAs', async () => {
    const a = await run(5, 9)
    const b = await run(5, 9)
    expect(b).toEqual(a)
    const c = await run(5, 10)
    expect(c.data).not.toEqual(a.data)
    expect(a.rest.errors + a.rest.verifyErrors).toBe(0)
  })
})
