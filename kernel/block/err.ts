/**
 * Error pointers (include/linux/err.h) for the block layer's constructors, which return either an
 * object or an error: `blk_mq_alloc_disk`, `blk_mq_alloc_queue`, `blk_mq_alloc_request`. In C the
 * error is a pointer in the last page of the address space; here it is the negative errno itself,
 * so `IS_ERR(disk)` narrows the union and `PTR_ERR(disk)` returns the errno:
 *
 *   const disk = blk_mq_alloc_disk(set, null, ns)
 *   if (IS_ERR(disk)) return PTR_ERR(disk)
 *   disk.disk_name = 'nvme0n1'          // disk: Gendisk
 */

/** An error "pointer": a negative errno in place of an object. */
export type ErrPtr = number

/** `ERR_PTR(errno)`: the errno as an error pointer. */
export function ERR_PTR(errno: number): ErrPtr {
  return errno
}

/** `IS_ERR(p)`: whether p is an error pointer (a negative errno) rather than the object. */
export function IS_ERR(p: unknown): p is ErrPtr {
  return typeof p === 'number' && p < 0
}

/** `IS_ERR_OR_NULL(p)`. */
export function IS_ERR_OR_NULL(p: unknown): p is ErrPtr | null | undefined {
  return p === null || p === undefined || (typeof p === 'number' && p < 0)
}

/** `PTR_ERR(p)`: the errno of an error pointer. */
export function PTR_ERR(p: ErrPtr): number {
  return p
}
