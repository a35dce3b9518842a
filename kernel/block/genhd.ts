/**
 * Disks (block/genhd.c, include/linux/blkdev.h): `struct gendisk`, created on a tag set with its
 * request_queue by blk_mq_alloc_disk, sized with set_capacity, named by the driver
 * (`disk.disk_name = 'nvme0n1'`) and made visible with add_disk; del_gendisk takes it away again
 * (new I/O fails, what is in flight drains), put_disk releases it (exit_hctx). The I/O
 * statistics of /sys/block/<disk>/stat are kept here.
 *
 * At unbind, a disk its driver still has added (or deleted but never put) is reported as a
 * `leak`, naming the PCI device — as a net_device left registered is.
 */

import { Device } from '../base/device.js'
import { EEXIST, EINVAL } from '../errno.js'
import { badArg } from '../mm/memory.js'
import type { Task } from '../sched/current.js'
import { mightSleep } from '../sched/might-sleep.js'
import { wait_event } from '../sched/time.js'
import type { System } from '../system.js'
import {
  BLK_STS_OK,
  REQ_OP_DISCARD,
  REQ_OP_DRV_IN,
  REQ_OP_FLUSH,
  REQ_OP_MASK,
  REQ_OP_READ,
  REQ_OP_SECURE_ERASE,
  SECTOR_SHIFT,
  type blk_status_t,
} from './blk_types.js'
import { exitQueue, initQueue, queueRequests, wakeAll } from './blk-mq.js'
import { blkCancelIdleTimer } from './blk-timeout.js'
import { IS_ERR, type ErrPtr } from './err.js'
import type { BlkMqTagSet, QueueLimits, Request, RequestQueue } from './request.js'
import { blkCall, blockState } from './state.js'

/** Longest disk name (DISK_NAME_LEN - 1). */
export const DISK_NAME_LEN = 32

/** /sys/block/<disk>/stat, by operation group: read, write, discard, flush. */
export interface DiskStat {
  /** Requests ended. */
  readonly ios: [number, number, number, number]
  /** Sectors moved. */
  readonly sectors: [number, number, number, number]
  /** Virtual ns from allocation to end, summed. */
  readonly ticksNs: [number, number, number, number]
  /** Requests that ended with an error status. */
  errors: number
}

/** `struct gendisk`. Create it with blk_mq_alloc_disk(). */
export class Gendisk {
  /** The name user space sees ('nvme0n1', 'nullb0'): set it before add_disk. */
  disk_name = ''
  major = 0
  first_minor = 0
  minors = 0
  /** The disk's request queue. */
  readonly queue: RequestQueue
  /** The driver's data. */
  private_data: unknown = null
  /** `struct block_device_operations` (kept for drivers that set it; dmalab calls none). */
  fops: unknown = null
  /** @internal Capacity in 512-byte sectors. */
  _capacity = 0
  /** @internal */
  _ro = false
  /** @internal 'allocated', 'added' (add_disk), 'deleted' (del_gendisk), 'released' (put_disk). */
  _state: 'allocated' | 'added' | 'deleted' | 'released' = 'allocated'
  /** @internal The device the disk belongs to (device_add_disk's parent, or the probing device). */
  _parent: Device | null = null
  /** @internal */
  _devres: { what: string; release(): void } | null = null
  /** @internal */
  readonly _sys: System
  /** @internal */
  readonly _stat: DiskStat = { ios: [0, 0, 0, 0], sectors: [0, 0, 0, 0], ticksNs: [0, 0, 0, 0], errors: 0 }

  /** @internal */
  constructor(sys: System, q: RequestQueue) {
    this._sys = sys
    this.queue = q
  }

  toString(): string {
    return `gendisk(${this.disk_name === '' ? 'unnamed' : this.disk_name})`
  }
}

/** Validates a gendisk argument; a released one is a use-after-free (reported, and the call goes on). */
export function checkDisk(t: Task, fn: string, disk: unknown, released = false): Gendisk {
  if (!(disk instanceof Gendisk)) badArg(t, fn, 'disk', `must be a struct gendisk from blk_mq_alloc_disk(), got ${disk === null ? 'NULL' : typeof disk}`)
  if (disk._sys !== t.sys) badArg(t, fn, 'disk', `(${disk.disk_name}) belongs to another system`)
  if (disk._state === 'released' && !released) {
    disk._sys.report({ kind: 'use-after-free', message: `BUG: KASAN: use-after-free in ${fn}(): the gendisk ${disk.disk_name} was released by put_disk()` })
  }
  return disk
}

/**
 * `blk_mq_alloc_disk(set, queuedata)` — or, as since Linux 6.9, `blk_mq_alloc_disk(set, lim,
 * queuedata)` with a `queue_limits` object (null for the defaults): a gendisk and its
 * request_queue on an allocated tag set (ops.init_hctx runs for each hw queue). Returns the disk
 * or an error pointer (IS_ERR / PTR_ERR): -EINVAL for invalid limits, init_hctx's error.
 * Process context.
 */
export function blk_mq_alloc_disk(set: BlkMqTagSet, queuedata?: unknown): Gendisk | ErrPtr
export function blk_mq_alloc_disk(set: BlkMqTagSet, lim: Partial<QueueLimits> | null, queuedata: unknown): Gendisk | ErrPtr
export function blk_mq_alloc_disk(set: BlkMqTagSet, ...args: unknown[]): Gendisk | ErrPtr {
  const { t, sys } = blkCall('blk_mq_alloc_disk')
  const lim = args.length >= 2 ? (args[0] as Partial<QueueLimits> | null) : null
  const queuedata = args.length >= 2 ? args[1] : args[0]
  const q = initQueue(t, 'blk_mq_alloc_disk', set, lim, queuedata ?? null)
  if (IS_ERR(q)) return q
  const disk = new Gendisk(sys, q)
  q.disk = disk
  return disk
}

function validName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length < DISK_NAME_LEN && !/[/\s]/.test(name) && name !== '.' && name !== '..'
}

/** `add_disk(disk)`: device_add_disk(NULL, disk, NULL). */
export function add_disk(disk: Gendisk): number {
  const { t } = blkCall('add_disk')
  return addDisk(t, 'add_disk', null, disk)
}

/**
 * `device_add_disk(parent, disk, groups)`: makes the disk visible (the harness's disks()) under
 * its name; 0, -EINVAL for a missing or bad name, -EEXIST for a taken one. Process context. The
 * disk belongs to parent (or, with none, to the device being probed), for the leak check at unbind.
 */
export function device_add_disk(parent: Device | null, disk: Gendisk, _groups: unknown = null): number {
  const { t } = blkCall('device_add_disk')
  return addDisk(t, 'device_add_disk', parent, disk)
}

function addDisk(t: Task, fn: string, parent: Device | null, disk: Gendisk): number {
  const sys = t.sys as System
  mightSleep(t, fn)
  const d = checkDisk(t, fn, disk)
  if (parent !== null && !(parent instanceof Device)) badArg(t, fn, 'parent', 'must be a struct device (pdev.dev) or null')
  if (d._state !== 'allocated') {
    sys.logger.error({ task: t.toString() }, `${fn}: ${d.disk_name} was added before`)
    return -EINVAL
  }
  if (!validName(d.disk_name)) {
    sys.logger.error({ task: t.toString() }, `${fn}: disk_name ${JSON.stringify(d.disk_name)} is not a valid name: set disk->disk_name (1 to ${DISK_NAME_LEN - 1} characters, no '/' or spaces) first`)
    return -EINVAL
  }
  const bs = blockState(sys)
  if (bs.byName(d.disk_name) !== undefined) return -EEXIST
  d._state = 'added'
  bs.disks.push(d)
  const owner = parent ?? t.device
  d._parent = owner
  if (owner !== null) {
    const check = {
      what: `gendisk ${d.disk_name}`,
      release: () => {
        if (!sys.checks.dmaDebug) return
        if (d._state === 'added') {
          sys.report({ kind: 'leak', device: owner.name, message: `${owner.name}: disk ${d.disk_name} is still added after its driver was unbound: call del_gendisk() and put_disk() in remove` })
        } else if (d._state === 'deleted') {
          sys.report({ kind: 'leak', device: owner.name, message: `${owner.name}: disk ${d.disk_name} was deleted but never released: call put_disk() after del_gendisk()` })
        }
      },
    }
    d._devres = check
    owner.devres.push(check)
  }
  return 0
}

/**
 * `del_gendisk(disk)`: takes the disk away: it leaves the harness's view, new I/O to it fails
 * (BLK_STS_IOERR), and this waits until every request of its queue has ended — the driver must
 * keep completing them. Process context.
 */
export async function del_gendisk(disk: Gendisk): Promise<void> {
  const { t, sys, bs } = blkCall('del_gendisk')
  const d = checkDisk(t, 'del_gendisk', disk)
  if (!mightSleep(t, 'del_gendisk')) return
  if (d._state !== 'added') {
    sys.logger.error({ task: t.toString() }, `del_gendisk: ${d.disk_name} is not added`)
    return
  }
  const i = bs.disks.indexOf(d)
  if (i >= 0) bs.disks.splice(i, 1)
  d._state = 'deleted'
  const q = d.queue
  if (q._state === 'live') q._state = 'dying'
  q._freezeDepth++
  wakeAll(sys, q._freezeWq)
  await wait_event(q._freezeWq, () => q._usage === 0)
  q._freezeDepth--
  blkCancelIdleTimer(q)
}

/**
 * `put_disk(disk)`: releases a disk that was deleted (or never added): exit_hctx runs for each hw
 * queue. The tag set can be freed afterwards. Process context.
 */
export function put_disk(disk: Gendisk): void {
  const { t, sys } = blkCall('put_disk')
  const d = checkDisk(t, 'put_disk', disk, true)
  if (d._state === 'released') {
    if (sys.checks.kasan) sys.report({ kind: 'double-free', message: `BUG: KASAN: double-free in put_disk(): the gendisk ${d.disk_name} was already released` })
    return
  }
  if (d._state === 'added') {
    sys.logger.error({ task: t.toString() }, `put_disk: ${d.disk_name} is still added: del_gendisk() it first`)
    return
  }
  const busy = queueRequests(d.queue).length
  if (busy > 0) sys.logger.error({ task: t.toString() }, `put_disk: ${d.disk_name} still has ${busy} request(s) allocated`)
  exitQueue(d.queue)
  d._state = 'released'
  const owner = d._parent
  if (owner !== null && d._devres !== null) {
    const i = owner.devres.indexOf(d._devres)
    if (i >= 0) owner.devres.splice(i, 1)
  }
  d._devres = null
}

/** `set_capacity(disk, sectors)`: the disk's size in 512-byte sectors. */
export function set_capacity(disk: Gendisk, sectors: number): void {
  const { t } = blkCall('set_capacity')
  const d = checkDisk(t, 'set_capacity', disk)
  if (typeof sectors !== 'number' || !Number.isSafeInteger(sectors) || sectors < 0) badArg(t, 'set_capacity', 'sectors', `must be a number of 512-byte sectors, got ${String(sectors)}`)
  d._capacity = sectors
}

/** `set_capacity_and_notify(disk, sectors)`: set_capacity; true if it changed. */
export function set_capacity_and_notify(disk: Gendisk, sectors: number): boolean {
  const { t } = blkCall('set_capacity_and_notify')
  const old = checkDisk(t, 'set_capacity_and_notify', disk)._capacity
  set_capacity(disk, sectors)
  return old !== sectors
}

/** `get_capacity(disk)`: the size in 512-byte sectors. */
export function get_capacity(disk: Gendisk): number {
  const { t } = blkCall('get_capacity')
  return checkDisk(t, 'get_capacity', disk)._capacity
}

/** `set_disk_ro(disk, read_only)`: writes to it then fail (BLK_STS_IOERR, as bio_check_ro). */
export function set_disk_ro(disk: Gendisk, read_only: boolean): void {
  const { t } = blkCall('set_disk_ro')
  checkDisk(t, 'set_disk_ro', disk)._ro = read_only
}

/** `get_disk_ro(disk)`. */
export function get_disk_ro(disk: Gendisk): boolean {
  const { t } = blkCall('get_disk_ro')
  return checkDisk(t, 'get_disk_ro', disk)._ro
}

/** The operation group of /sys/block/<disk>/stat: 0 read, 1 write, 2 discard, 3 flush; -1 passthrough. */
export function statGroup(op: number): number {
  if (op >= REQ_OP_DRV_IN) return -1
  if (op === REQ_OP_READ) return 0
  if (op === REQ_OP_FLUSH) return 3
  if (op === REQ_OP_DISCARD || op === REQ_OP_SECURE_ERASE) return 2
  return 1
}

/** `blk_account_io_done`: the disk's statistics for a request that ends. */
export function accountDone(rq: Request, status: blk_status_t, now: number): void {
  const disk = rq.q.disk
  if (disk === null) return
  const g = statGroup(rq.cmd_flags & REQ_OP_MASK)
  if (g < 0) return
  const s = disk._stat
  s.ios[g] = s.ios[g]! + 1
  s.sectors[g] = s.sectors[g]! + (rq.__data_len >> SECTOR_SHIFT)
  s.ticksNs[g] = s.ticksNs[g]! + (now - rq.start_time_ns)
  if (status !== BLK_STS_OK) s.errors++
}
