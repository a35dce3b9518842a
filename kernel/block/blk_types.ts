/**
 * Block-layer types and constants (include/linux/blk_types.h, include/linux/blk-mq.h,
 * include/linux/blkdev.h, block/blk-core.c's blk_errors[]): the `blk_status_t` values a driver
 * returns from `queue_rq` and passes to `blk_mq_end_request`, the request operations
 * (`REQ_OP_*`) and flags (`REQ_FUA`, `REQ_PREFLUSH`, ...), the timeout handler's return values,
 * the tag-set flags, sectors, and the status <-> errno conversions.
 *
 * The numeric values are Linux's (v6.12+), so that code ported from Linux compares and masks them
 * the same way. Every flag fits JavaScript's 32-bit bitwise operators.
 */

import { EAGAIN, EBUSY, EINVAL, EIO, ENODATA, ENODEV, ENOMEM, ENOSPC, EOVERFLOW, EREMOTEIO, ETIMEDOUT } from '../errno.js'

// ---------------------------------------------------------------------- sectors

/** The block layer counts in 512-byte sectors, whatever the device's logical block size. */
export const SECTOR_SHIFT = 9
export const SECTOR_SIZE = 1 << SECTOR_SHIFT

// ---------------------------------------------------------------------- errno values the block layer uses

/** errno values of include/uapi/asm-generic/errno.h that the block layer maps statuses to. */
export const EOPNOTSUPP = 95
export const ENOLINK = 67
export const EBADE = 52
export const EILSEQ = 84
export const ETIME = 62
export const ETOOMANYREFS = 109
export const EREMCHG = 78

// ---------------------------------------------------------------------- blk_status_t

/** `blk_status_t`: what a request ended with. 0 is success; the rest map to errno values. */
export type blk_status_t = number

export const BLK_STS_OK = 0
export const BLK_STS_NOTSUPP = 1
export const BLK_STS_TIMEOUT = 2
export const BLK_STS_NOSPC = 3
export const BLK_STS_TRANSPORT = 4
export const BLK_STS_TARGET = 5
export const BLK_STS_RESV_CONFLICT = 6
export const BLK_STS_MEDIUM = 7
export const BLK_STS_PROTECTION = 8
/** From queue_rq: out of a resource (ring slots, memory); the block layer retries the request later. */
export const BLK_STS_RESOURCE = 9
export const BLK_STS_IOERR = 10
export const BLK_STS_DM_REQUEUE = 11
export const BLK_STS_AGAIN = 12
/** From queue_rq: out of a device resource that a completion will free; retried on the next completion. */
export const BLK_STS_DEV_RESOURCE = 13
export const BLK_STS_ZONE_OPEN_RESOURCE = 14
export const BLK_STS_ZONE_ACTIVE_RESOURCE = 15
export const BLK_STS_OFFLINE = 16
export const BLK_STS_DURATION_LIMIT = 17
export const BLK_STS_INVAL = 19

const STATUS: readonly (readonly [number, string, number])[] = [
  [BLK_STS_OK, 'BLK_STS_OK', 0],
  [BLK_STS_NOTSUPP, 'BLK_STS_NOTSUPP', -EOPNOTSUPP],
  [BLK_STS_TIMEOUT, 'BLK_STS_TIMEOUT', -ETIMEDOUT],
  [BLK_STS_NOSPC, 'BLK_STS_NOSPC', -ENOSPC],
  [BLK_STS_TRANSPORT, 'BLK_STS_TRANSPORT', -ENOLINK],
  [BLK_STS_TARGET, 'BLK_STS_TARGET', -EREMOTEIO],
  [BLK_STS_RESV_CONFLICT, 'BLK_STS_RESV_CONFLICT', -EBADE],
  [BLK_STS_MEDIUM, 'BLK_STS_MEDIUM', -ENODATA],
  [BLK_STS_PROTECTION, 'BLK_STS_PROTECTION', -EILSEQ],
  [BLK_STS_RESOURCE, 'BLK_STS_RESOURCE', -ENOMEM],
  [BLK_STS_IOERR, 'BLK_STS_IOERR', -EIO],
  [BLK_STS_DM_REQUEUE, 'BLK_STS_DM_REQUEUE', -EREMCHG],
  [BLK_STS_AGAIN, 'BLK_STS_AGAIN', -EAGAIN],
  [BLK_STS_DEV_RESOURCE, 'BLK_STS_DEV_RESOURCE', -EBUSY],
  [BLK_STS_ZONE_OPEN_RESOURCE, 'BLK_STS_ZONE_OPEN_RESOURCE', -ETOOMANYREFS],
  [BLK_STS_ZONE_ACTIVE_RESOURCE, 'BLK_STS_ZONE_ACTIVE_RESOURCE', -EOVERFLOW],
  [BLK_STS_OFFLINE, 'BLK_STS_OFFLINE', -ENODEV],
  [BLK_STS_DURATION_LIMIT, 'BLK_STS_DURATION_LIMIT', -ETIME],
  [BLK_STS_INVAL, 'BLK_STS_INVAL', -EINVAL],
]

const statusName = new Map(STATUS.map(([v, n]) => [v, n]))
const statusErrno = new Map(STATUS.map(([v, , e]) => [v, e]))

/** Whether v is one of the blk_status_t values. */
export function blk_status_valid(v: unknown): v is blk_status_t {
  return typeof v === 'number' && statusName.has(v)
}

/** The name of a status ('BLK_STS_IOERR'), or 'blk_status_t <v>' for an unknown value. */
export function blk_status_name(status: number): string {
  return statusName.get(status) ?? `blk_status_t ${String(status)}`
}

/** `blk_status_to_errno(status)`: 0 or a negative errno (-EIO for an unknown status, as Linux). */
export function blk_status_to_errno(status: blk_status_t): number {
  return statusErrno.get(status) ?? -EIO
}

/** `errno_to_blk_status(errno)`: the status of a (negative) errno; BLK_STS_IOERR for unknown ones. */
export function errno_to_blk_status(errno: number): blk_status_t {
  if (errno === 0) return BLK_STS_OK
  for (const [v, , e] of STATUS) if (e === errno && v !== BLK_STS_DM_REQUEUE) return v
  return BLK_STS_IOERR
}

/** `blk_path_error(status)`: whether the error may be path related (a retry elsewhere may help). */
export function blk_path_error(status: blk_status_t): boolean {
  switch (status) {
    case BLK_STS_NOTSUPP:
    case BLK_STS_NOSPC:
    case BLK_STS_TARGET:
    case BLK_STS_RESV_CONFLICT:
    case BLK_STS_MEDIUM:
    case BLK_STS_PROTECTION:
      return false
    default:
      return true
  }
}

// ---------------------------------------------------------------------- operations and flags

/** `blk_opf_t`: an operation in the low 8 bits, REQ_* flags above. */
export type blk_opf_t = number

export const REQ_OP_BITS = 8
export const REQ_OP_MASK = (1 << REQ_OP_BITS) - 1

export const REQ_OP_READ = 0
export const REQ_OP_WRITE = 1
export const REQ_OP_FLUSH = 2
export const REQ_OP_DISCARD = 3
export const REQ_OP_SECURE_ERASE = 5
export const REQ_OP_ZONE_APPEND = 7
export const REQ_OP_WRITE_ZEROES = 9
/** Driver private requests (passthrough): data from the device, to the device. */
export const REQ_OP_DRV_IN = 34
export const REQ_OP_DRV_OUT = 35

export const REQ_FAILFAST_DEV = 1 << 8
export const REQ_FAILFAST_TRANSPORT = 1 << 9
export const REQ_FAILFAST_DRIVER = 1 << 10
export const REQ_SYNC = 1 << 11
export const REQ_META = 1 << 12
export const REQ_PRIO = 1 << 13
export const REQ_NOMERGE = 1 << 14
export const REQ_IDLE = 1 << 15
export const REQ_INTEGRITY = 1 << 16
/** Forced unit access: the write is durable when it completes (not only in a volatile cache). */
export const REQ_FUA = 1 << 17
/** Flush the volatile write cache before this request. */
export const REQ_PREFLUSH = 1 << 18
export const REQ_RAHEAD = 1 << 19
export const REQ_BACKGROUND = 1 << 20
/** Do not sleep for a tag or a frozen queue: fail with BLK_STS_AGAIN instead. */
export const REQ_NOWAIT = 1 << 21
export const REQ_POLLED = 1 << 22
export const REQ_SWAP = 1 << 24
export const REQ_DRV = 1 << 25
export const REQ_NOUNMAP = 1 << 28
export const REQ_FAILFAST_MASK = REQ_FAILFAST_DEV | REQ_FAILFAST_TRANSPORT | REQ_FAILFAST_DRIVER

const OP_NAMES: Record<number, string> = {
  [REQ_OP_READ]: 'READ',
  [REQ_OP_WRITE]: 'WRITE',
  [REQ_OP_FLUSH]: 'FLUSH',
  [REQ_OP_DISCARD]: 'DISCARD',
  [REQ_OP_SECURE_ERASE]: 'SECURE_ERASE',
  [REQ_OP_ZONE_APPEND]: 'ZONE_APPEND',
  [REQ_OP_WRITE_ZEROES]: 'WRITE_ZEROES',
  [REQ_OP_DRV_IN]: 'DRV_IN',
  [REQ_OP_DRV_OUT]: 'DRV_OUT',
}

/** `blk_op_str(op)`: 'READ', 'WRITE', 'FLUSH', ... ('UNKNOWN' otherwise). */
export function blk_op_str(op: number): string {
  return OP_NAMES[op & REQ_OP_MASK] ?? 'UNKNOWN'
}

/** `op_is_write(op)`: odd operations move data to the device (WRITE, DISCARD, WRITE_ZEROES, DRV_OUT). */
export function op_is_write(op: blk_opf_t): boolean {
  return (op & 1) !== 0
}

/** `op_is_flush(op)`: the request asks for a cache flush or FUA. */
export function op_is_flush(op: blk_opf_t): boolean {
  return (op & (REQ_FUA | REQ_PREFLUSH)) !== 0
}

/** `op_is_sync(op)`: reads, and writes marked REQ_SYNC / REQ_FUA / REQ_PREFLUSH. */
export function op_is_sync(op: blk_opf_t): boolean {
  return (op & REQ_OP_MASK) === REQ_OP_READ || (op & (REQ_SYNC | REQ_FUA | REQ_PREFLUSH)) !== 0
}

// ---------------------------------------------------------------------- blk-mq

/** `enum blk_eh_timer_return`: what ops.timeout returns. */
export const BLK_EH_DONE = 0
export const BLK_EH_RESET_TIMER = 1
export type BlkEhTimerReturn = typeof BLK_EH_DONE | typeof BLK_EH_RESET_TIMER

/** `enum rq_end_io_ret`: what a request's end_io callback returns. */
export const RQ_END_IO_NONE = 0
export const RQ_END_IO_FREE = 1
export type RqEndIoRet = typeof RQ_END_IO_NONE | typeof RQ_END_IO_FREE

/** Tag-set flags (BLK_MQ_F_*). */
export const BLK_MQ_F_TAG_QUEUE_SHARED = 1 << 1
export const BLK_MQ_F_STACKING = 1 << 2
export const BLK_MQ_F_TAG_HCTX_SHARED = 1 << 3
/** queue_rq may sleep. Not supported by dmalab: blk_mq_alloc_tag_set returns -EINVAL. */
export const BLK_MQ_F_BLOCKING = 1 << 4
export const BLK_MQ_F_TAG_RR = 1 << 5
export const BLK_MQ_F_NO_SCHED_BY_DEFAULT = 1 << 6
/** Accepted and ignored: dmalab's block layer never merges requests. */
export const BLK_MQ_F_SHOULD_MERGE = 1 << 0

/** hctx->state bits. */
export const BLK_MQ_S_STOPPED = 0
export const BLK_MQ_S_TAG_ACTIVE = 1
export const BLK_MQ_S_SCHED_RESTART = 2

/** blk_mq_alloc_request flags. */
export const BLK_MQ_REQ_NOWAIT = 1 << 0
export const BLK_MQ_REQ_RESERVED = 1 << 1
export const BLK_MQ_REQ_PM = 1 << 2

/** The largest queue depth blk_mq_alloc_tag_set accepts (deeper ones are clamped, as Linux does). */
export const BLK_MQ_MAX_DEPTH = 10240
/** Bits of a tag in blk_mq_unique_tag(): the hw queue number is above them. */
export const BLK_MQ_UNIQUE_TAG_BITS = 16
export const BLK_MQ_UNIQUE_TAG_MASK = (1 << BLK_MQ_UNIQUE_TAG_BITS) - 1
/** Delay before re-running a queue whose queue_rq returned BLK_STS_RESOURCE with nothing in flight. */
export const BLK_MQ_RESOURCE_DELAY_MS = 3

/** Request states (blk_mq_rq_state). */
export const MQ_RQ_IDLE = 0
export const MQ_RQ_IN_FLIGHT = 1
export const MQ_RQ_COMPLETE = 2

/** rq->rq_flags bits dmalab keeps. */
export const RQF_STARTED = 1 << 1
export const RQF_FLUSH_SEQ = 1 << 4
export const RQF_TIMED_OUT = 1 << 21
export const RQF_RESV = 1 << 23

/** Queue-limit features (BLK_FEAT_*), for blk_mq_alloc_disk's queue_limits. */
export const BLK_FEAT_WRITE_CACHE = 1 << 0
export const BLK_FEAT_FUA = 1 << 1
export const BLK_FEAT_ROTATIONAL = 1 << 2

/** Default limits (include/linux/blkdev.h). */
export const BLK_MAX_SEGMENTS = 128
export const BLK_SAFE_MAX_SECTORS = 255
export const BLK_MAX_SEGMENT_SIZE = 65536
export const BLK_SEG_BOUNDARY_MASK = 0xffff_ffff
export const BLK_DEF_MAX_SECTORS_CAP = 2560
