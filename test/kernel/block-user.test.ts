/**
 * kernel/block/user.ts: the harness's block user space refuses bad input with an
 * InvalidArgumentError naming the argument and leaves the system as it was; it may not be called
 * from inside a task.
 */
import { describe, expect, it } from 'vitest'
import { DmalabError, InvalidArgumentError, blockUser, boot, type BlockUser, type System } from '../../kernel/index.js'
import { nullBlkAdd, type NullBlk } from '../fixtures/null-blk.js'

let ctx: { sys: System; blk: BlockUser; nb: NullBlk } | null = null

async function rig() {
  if (ctx === null) {
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0', sizeBytes: 1 << 20, blocksize: 4096, submitQueues: 2 })
    ctx = { sys, blk: blockUser(sys), nb }
  }
  return ctx
}

async function argumentOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    if (e instanceof InvalidArgumentError) return e.argument
    throw e
  }
  throw new Error('no error')
}

describe('blockUser: bad input', () => {
  it.each<[string, (blk: BlockUser) => unknown, string]>([
    ['an unknown disk', (b) => b.read('sda', 0, 1), 'name'],
    ['a disk name that is not a string', (b) => b.read(0 as unknown as string, 0, 1), 'name'],
    ['a negative LBA', (b) => b.read('nullb0', -1, 1), 'lba'],
    ['a fractional LBA', (b) => b.read('nullb0', 1.5, 1), 'lba'],
    ['an LBA past the end', (b) => b.read('nullb0', 256, 1), 'lba'],
    ['a count past the end', (b) => b.read('nullb0', 250, 7), 'count'],
    ['a zero count', (b) => b.read('nullb0', 0, 0), 'count'],
    ['a string count', (b) => b.read('nullb0', 0, '1' as unknown as number), 'count'],
    ['write data that is not a Uint8Array', (b) => b.write('nullb0', 0, [1, 2] as unknown as Uint8Array), 'data'],
    ['write data not in whole blocks', (b) => b.write('nullb0', 0, new Uint8Array(512)), 'data'],
    ['empty write data', (b) => b.write('nullb0', 0, new Uint8Array(0)), 'data'],
    ['write data past the end', (b) => b.write('nullb0', 255, new Uint8Array(8192)), 'data'],
    ['an unknown option', (b) => b.read('nullb0', 0, 1, { quue: 1 } as never), 'opts.quue'],
    ['a queue out of range', (b) => b.read('nullb0', 0, 1, { queue: 2 }), 'opts.queue'],
    ['a pageOffset not in whole blocks', (b) => b.read('nullb0', 0, 1, { pageOffset: 512 }), 'opts.pageOffset'],
    ['a non-boolean fua', (b) => b.write('nullb0', 0, new Uint8Array(4096), { fua: 1 as unknown as boolean }), 'opts.fua'],
    ['a zero timeout', (b) => b.flush('nullb0', { timeoutNs: 0 }), 'opts.timeoutNs'],
    ['options that are not an object', (b) => b.flush('nullb0', 5 as never), 'opts'],
    ['an unknown io op', (b) => b.io('nullb0', { op: 'trim' as never }), 'req.op'],
    ['a read with data', (b) => b.io('nullb0', { op: 'read', lba: 0, count: 1, data: new Uint8Array(4096) }), 'req.data'],
    ['io without an LBA', (b) => b.io('nullb0', { op: 'read', count: 1 }), 'lba'],
    ['writeZeroes past the end', (b) => b.writeZeroes('nullb0', 200, 100), 'count'],
    ['a non-boolean noFallback', (b) => b.writeZeroes('nullb0', 0, 1, { noFallback: 'yes' as unknown as boolean }), 'opts.noFallback'],
    ['stats of an unknown disk', (b) => b.stats('nullb9'), 'name'],
  ])('%s is refused naming its argument; nothing changes', async (_what, call, arg) => {
    const { sys, blk, nb } = await rig()
    const before = { stats: blk.stats('nullb0'), queueRq: nb.counters.queueRq, clock: sys.clock }
    expect(await argumentOf(() => call(blk))).toBe(arg)
    expect(blk.stats('nullb0')).toEqual(before.stats)
    expect(nb.counters.queueRq).toBe(before.queueRq)
    expect(sys.clock).toBe(before.clock)
    expect(blk.pagesInUse).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('blockUser needs a System', () => {
    expect(() => blockUser({} as System)).toThrow(InvalidArgumentError)
    expect(blockUser(boot({ log: 'silent' }))).toBeDefined()
  })

  it('is one object per system', async () => {
    const { sys, blk } = await rig()
    expect(blockUser(sys)).toBe(blk)
  })

  it('may not be called from inside a task of the system', async () => {
    const { sys, blk } = await rig()
    await expect(sys.run(() => blk.disks())).rejects.toThrow(DmalabError)
    await expect(sys.run(() => blk.read('nullb0', 0, 1))).rejects.toThrow(/called from inside a task/)
    expect(() => blk.disks()).not.toThrow()
  })

  it('describes the disk', async () => {
    const { blk } = await rig()
    expect(blk.disk('nullb0')).toMatchObject({
      name: 'nullb0', sizeBytes: 1 << 20, sectors: 2048, blocks: 256, logicalBlockSize: 4096, nrHwQueues: 2, queueDepth: 64,
      writeCache: false, fua: false, readOnly: false, maxSegments: 128, dmaAlignment: 511, parent: null, driver: null,
    })
  })
})
