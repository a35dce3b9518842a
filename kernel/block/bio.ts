/**
 * Bios and bio vectors (include/linux/bio.h, include/linux/blk_types.h, include/linux/bvec.h,
 * block/bio.c): what a submitter (the harness's user space, fio, a file system in Linux) hands
 * to the block layer. A bio names a disk, an operation and a start sector, and carries its data as
 * a vector of page pieces (`bio_vec`: page, offset, length). `submit_bio` (blk-core.ts) turns it
 * into one or more requests; when they have all ended, the block layer calls `bi_end_io(bio)`
 * with `bi_status` set — in the context the driver ended the request in (softirq, hard IRQ).
 *
 * Differences from Linux: `bi_bdev` is the gendisk itself (there is no separate block_device),
 * and `bi_cpu` names the submission context ("CPU") the bio is submitted from, which the tag
 * set's queue map turns into a hardware queue (the emulated machine has one CPU; see
 * docs/block.md).
 */

import type { Device } from '../base/device.js'
import { dma_map_page_attrs } from '../dma/mapping.js'
import type { dma_data_direction } from '../dma/types.js'
import { PAGE_OFFSET } from '../mm/layout.js'
import { badArg } from '../mm/memory.js'
import { Page } from '../mm/page.js'
import { current } from '../sched/current.js'
import { mightSleepGfp } from '../sched/might-sleep.js'
import { GFP_KERNEL, PAGE_SIZE, type CpuAddr, type DmaAddr, type PhysAddr } from '../types.js'
import { BLK_STS_IOERR, BLK_STS_OK, REQ_OP_MASK, SECTOR_SHIFT, type blk_opf_t, type blk_status_t } from './blk_types.js'
import type { Gendisk } from './genhd.js'

/** `struct bio_vec`: len bytes at offset into page. dmalab's pieces never cross a page boundary. */
export interface BioVec {
  bv_page: Page
  bv_len: number
  bv_offset: number
}

/** `struct bvec_iter`: where the bio is (start sector, bytes left). */
export interface BvecIter {
  bi_sector: number
  bi_size: number
  bi_idx: number
  bi_bvec_done: number
}

/** `bio_end_io_t`. Runs in the context the request was ended in (often softirq or hard IRQ): must not sleep. */
export type bio_end_io_t = (bio: Bio) => void

/** The most vectors a bio may hold (BIO_MAX_VECS). */
export const BIO_MAX_VECS = 256

/** `struct bio`. Create it with bio_alloc(). */
export class Bio {
  /** The disk (Linux: the block_device). */
  bi_bdev: Gendisk | null = null
  /** Operation and REQ_* flags. */
  bi_opf: blk_opf_t = 0
  /** Set by the block layer before bi_end_io: BLK_STS_OK or the error. */
  bi_status: blk_status_t = BLK_STS_OK
  readonly bi_iter: BvecIter = { bi_sector: 0, bi_size: 0, bi_idx: 0, bi_bvec_done: 0 }
  bi_io_vec: BioVec[] = []
  bi_vcnt = 0
  bi_max_vecs: number
  bi_end_io: bio_end_io_t | null = null
  bi_private: unknown = null
  /** dmalab: the submission context ("CPU") the bio is submitted from; the queue map picks the hw queue. */
  bi_cpu = 0
  /** @internal The bio this one was split from or chained to (bio_chain): it ends when all its children have. */
  _parent: Bio | null = null
  /** @internal Ends still owed before bi_end_io runs (__bi_remaining: 1, plus one per chained bio). */
  _remaining = 1
  /** @internal The bio has been ended (bio_endio ran). */
  _ended = false

  constructor(nr_vecs: number) {
    this.bi_max_vecs = nr_vecs
  }

  toString(): string {
    return `bio(${this.bi_opf & REQ_OP_MASK} sector ${this.bi_iter.bi_sector} +${this.bi_iter.bi_size >> SECTOR_SHIFT})`
  }
}

/**
 * `bio_alloc(bdev, nr_vecs, opf, gfp)`: a bio for up to nr_vecs vectors (at most BIO_MAX_VECS)
 * on disk bdev. GFP_KERNEL (the default) may sleep: use GFP_NOIO/GFP_ATOMIC in atomic context.
 */
export function bio_alloc(bdev: Gendisk | null, nr_vecs: number, opf: blk_opf_t, gfp: number = GFP_KERNEL): Bio | null {
  const t = current('bio_alloc')
  mightSleepGfp(t, 'bio_alloc', gfp)
  if (typeof nr_vecs !== 'number' || !Number.isInteger(nr_vecs) || nr_vecs < 0 || nr_vecs > BIO_MAX_VECS) {
    badArg(t, 'bio_alloc', 'nr_vecs', `must be an integer from 0 to ${BIO_MAX_VECS}, got ${String(nr_vecs)}`)
  }
  if (typeof opf !== 'number' || !Number.isInteger(opf) || opf < 0) badArg(t, 'bio_alloc', 'opf', `must be REQ_OP_* | REQ_* flags, got ${String(opf)}`)
  const bio = new Bio(nr_vecs)
  bio_reset(bio, bdev, opf)
  return bio
}

/** `bio_reset(bio, bdev, opf)`: empties a bio for reuse (its vector table is kept). */
export function bio_reset(bio: Bio, bdev: Gendisk | null, opf: blk_opf_t): void {
  bio.bi_bdev = bdev
  bio.bi_opf = opf
  bio.bi_status = BLK_STS_OK
  bio.bi_iter.bi_sector = 0
  bio.bi_iter.bi_size = 0
  bio.bi_iter.bi_idx = 0
  bio.bi_iter.bi_bvec_done = 0
  bio.bi_vcnt = 0
  while (bio.bi_io_vec.length > 0) bio.bi_io_vec.pop()
  bio.bi_end_io = null
  bio.bi_private = null
  bio._parent = null
  bio._remaining = 1
  bio._ended = false
}

/**
 * `bio_add_page(bio, page, len, off)`: appends len bytes at off in page (within the page); returns
 * len, or 0 when the bio is full. A piece that continues the previous one in the same page is
 * merged into its vector, as Linux does.
 */
export function bio_add_page(bio: Bio, page: Page, len: number, off: number): number {
  const t = current('bio_add_page')
  if (!(bio instanceof Bio)) badArg(t, 'bio_add_page', 'bio', 'must be a struct bio from bio_alloc()')
  if (!(page instanceof Page)) badArg(t, 'bio_add_page', 'page', 'must be a struct page')
  if (typeof len !== 'number' || !Number.isInteger(len) || len <= 0) badArg(t, 'bio_add_page', 'len', `must be a positive byte count, got ${String(len)}`)
  if (typeof off !== 'number' || !Number.isInteger(off) || off < 0 || off >= PAGE_SIZE) badArg(t, 'bio_add_page', 'off', `must be an offset within the page, got ${String(off)}`)
  if (off + len > PAGE_SIZE) badArg(t, 'bio_add_page', 'len', `(${len}) at offset ${off} crosses the end of the page: add one piece per page`)
  return __bio_add_page(bio, page, len, off)
}

/** The unchecked bio_add_page (the block layer's and the harness's own calls). */
export function __bio_add_page(bio: Bio, page: Page, len: number, off: number): number {
  const prev = bio.bi_vcnt > 0 ? bio.bi_io_vec[bio.bi_vcnt - 1]! : null
  if (prev !== null && prev.bv_page === page && prev.bv_offset + prev.bv_len === off) {
    prev.bv_len += len
    bio.bi_iter.bi_size += len
    return len
  }
  if (bio.bi_vcnt >= bio.bi_max_vecs) return 0
  bio.bi_io_vec[bio.bi_vcnt++] = { bv_page: page, bv_len: len, bv_offset: off }
  bio.bi_iter.bi_size += len
  return len
}

/** `bio_put(bio)`: drops the submitter's reference (nothing to free in dmalab). */
export function bio_put(_bio: Bio): void {
  current('bio_put')
}

/** `bio_op(bio)`. */
export function bio_op(bio: Bio): number {
  return bio.bi_opf & REQ_OP_MASK
}

/** `bio_sectors(bio)`. */
export function bio_sectors(bio: Bio): number {
  return bio.bi_iter.bi_size >> SECTOR_SHIFT
}

/** `bio_has_data(bio)`. */
export function bio_has_data(bio: Bio): boolean {
  return bio.bi_iter.bi_size > 0 && bio.bi_vcnt > 0
}

/**
 * `bio_chain(bio, parent)`: parent ends only after bio has (with bio's error, if parent has none).
 * Submit both.
 */
export function bio_chain(bio: Bio, parent: Bio): void {
  bio._parent = parent
  parent._remaining++
}

/**
 * `bio_endio(bio)`: ends a bio: its parent's count drops (the parent ends with it when it was the
 * last), or its bi_end_io runs. The block layer calls it when a bio's requests have all ended.
 */
export function bio_endio(bio: Bio): void {
  let b: Bio | null = bio
  while (b !== null) {
    if (b._remaining > 1) {
      b._remaining--
      return
    }
    b._remaining = 0
    b._ended = true
    const parent: Bio | null = b._parent
    if (parent === null) {
      b.bi_end_io?.(b)
      return
    }
    if (parent.bi_status === BLK_STS_OK && b.bi_status !== BLK_STS_OK) parent.bi_status = b.bi_status
    b._parent = null
    b.bi_end_io?.(b)
    b = parent
  }
}

/** `bio_io_error(bio)`: ends bio with BLK_STS_IOERR. */
export function bio_io_error(bio: Bio, status: blk_status_t = BLK_STS_IOERR): void {
  bio.bi_status = status
  bio_endio(bio)
}

// ---------------------------------------------------------------------- bvec helpers

/** `bvec_phys(bv)`: the physical address of the piece. */
export function bvec_phys(bv: BioVec): PhysAddr {
  return (bv.bv_page.pfn * PAGE_SIZE + bv.bv_offset) as PhysAddr
}

/** `bvec_virt(bv)`: its kernel virtual address (the linear map; dmalab has no highmem). */
export function bvec_virt(bv: BioVec): CpuAddr {
  return (bv.bv_page.pfn * PAGE_SIZE + bv.bv_offset + PAGE_OFFSET) as CpuAddr
}

/**
 * `dma_map_bvec(dev, bv, dir, attrs)`: dma_map_page_attrs of the piece (include/linux/dma-mapping.h).
 * Check the result with dma_mapping_error and undo it with dma_unmap_page(dev, addr, bv.bv_len, dir).
 */
export function dma_map_bvec(dev: Device, bv: BioVec, dir: dma_data_direction, attrs = 0): DmaAddr {
  return dma_map_page_attrs(dev, bv.bv_page, bv.bv_offset, bv.bv_len, dir, attrs)
}
