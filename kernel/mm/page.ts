/**
 * Per-page metadata, the emulator's `struct page` (include/linux/mm_types.h), kept out of band:
 * nothing is stored in emulated RAM. It holds what the allocators and the sanitizers need to know
 * about a physical page: allocation state, the object it belongs to (KASAN), which bytes are
 * initialised (KMSAN), and which DMA mappings and regions cover it.
 */

import type { StackFrame } from '../debug/stack.js'
import { PAGE_SIZE } from '../types.js'

/** A physical page frame, as `struct page *`. One object per frame, so `===` works. */
export class Page {
  readonly pfn: number
  constructor(pfn: number) {
    this.pfn = pfn
  }
  toString(): string {
    return `page(pfn=0x${this.pfn.toString(16)})`
  }
}

export type ObjectKind = 'kmalloc' | 'pages' | 'coherent' | 'noncoherent' | 'pool' | 'swiotlb'

/** One allocation: a kmalloc object, a page block, a coherent buffer. */
export class KObject {
  static #next = 1
  readonly id = KObject.#next++
  readonly kind: ObjectKind
  /** Physical start. */
  readonly pa: number
  /** Requested size in bytes (accessible bytes). */
  readonly size: number
  /** Bytes reserved (slot or block size). */
  readonly span: number
  live = true
  allocStack: readonly StackFrame[] = []
  freeStack: readonly StackFrame[] = []
  /** Page order for page blocks. */
  readonly order: number
  constructor(kind: ObjectKind, pa: number, size: number, span: number, order = 0) {
    this.kind = kind
    this.pa = pa
    this.size = size
    this.span = span
    this.order = order
  }
}

/** A slab: one page block cut into equal objects (mm/slub.c). */
export interface SlabInfo {
  readonly pa: number
  /** Object size of the cache (what kmalloc can hand out from a slot). */
  readonly objSize: number
  /** Distance between slots: the object plus KASAN's redzone, a multiple of the minimum alignment. */
  readonly stride: number
  readonly objects: (KObject | null)[]
  readonly cacheName: string
}

export const PAGE_NEVER = 0
export const PAGE_ALLOCATED = 1
export const PAGE_FREED = 2

/** Anything the DMA layer hangs on a page: mappings (CPU side) and device-accessible regions. */
export interface PageDmaRef {
  /** Physical start and end of the range this record covers on this side. */
  readonly start: number
  readonly end: number
}

export class PageMeta<M = unknown> {
  readonly page: Page
  state = PAGE_NEVER
  /** The object that owns this whole page (page blocks, large kmalloc, coherent). */
  object: KObject | null = null
  /** The slab this page belongs to, for kmalloc caches. */
  slab: SlabInfo | null = null
  /** KMSAN: all bytes initialised (when true) — else `init` holds one byte per byte, or null for none. */
  initAll = false
  init: Uint8Array | null = null
  /** Streaming mappings whose CPU-side bytes lie in this page. */
  cpuMaps: M[] | null = null
  /** Bytes unmapped with DMA_ATTR_SKIP_CPU_SYNC while the device owned them. */
  ghosts: M[] | null = null
  constructor(pfn: number) {
    this.page = new Page(pfn)
  }
}

const SECTION = 1024

/** The page metadata array (a sparse mem_map). */
export class PageTable<M = unknown> {
  readonly #sections = new Map<number, (PageMeta<M> | undefined)[]>()
  /** The last section looked up: walks over a buffer stay in one section. */
  #lastIndex = -1
  #last: (PageMeta<M> | undefined)[] | undefined = undefined

  #section(s: number): (PageMeta<M> | undefined)[] | undefined {
    if (s === this.#lastIndex) return this.#last
    const sec = this.#sections.get(s)
    if (sec !== undefined) {
      this.#lastIndex = s
      this.#last = sec
    }
    return sec
  }

  get(pfn: number): PageMeta<M> | undefined {
    const s = Math.floor(pfn / SECTION)
    return this.#section(s)?.[pfn - s * SECTION]
  }

  ensure(pfn: number): PageMeta<M> {
    const s = Math.floor(pfn / SECTION)
    let sec = this.#section(s)
    if (sec === undefined) {
      sec = new Array<PageMeta<M> | undefined>(SECTION)
      this.#sections.set(s, sec)
    }
    let m = sec[pfn - s * SECTION]
    if (m === undefined) {
      m = new PageMeta<M>(pfn)
      sec[pfn - s * SECTION] = m
    }
    return m
  }

  /** The metadata of the page holding physical address pa. */
  at(pa: number): PageMeta<M> | undefined {
    return this.get(Math.floor(pa / PAGE_SIZE))
  }
}
