/**
 * kmalloc: power-of-two slab caches (mm/slub.c, mm/slab_common.c) over the buddy allocator, with
 * KASAN's object tracking and quarantine (mm/kasan/) kept out of band.
 *
 * The smallest cache is the platform's ARCH_DMA_MINALIGN (arm64 128, riscv64 64, x86_64 8), so
 * kmalloc memory never shares a cache line with another object on a non-coherent platform — the
 * DMA-safety guarantee of Documentation/core-api/dma-api-howto.rst. The kmallocMinAlign boot option
 * lowers it. Requests above 8 KiB come straight from the page allocator (kmalloc_large). Freed
 * objects wait in a FIFO quarantine before reuse, so use-after-free is caught as KASAN catches it.
 */

import type { PageAllocator, ZoneName } from './page_alloc.js'
import { KObject, PAGE_ALLOCATED, PAGE_FREED, type PageTable, type SlabInfo } from './page.js'
import { PAGE_SIZE, get_order } from '../types.js'

export const KMALLOC_MAX_CACHE_SIZE = 8192
const QUARANTINE_OBJECTS = 1024
const QUARANTINE_BYTES = 1 << 20

class KmemCache {
  readonly name: string
  readonly objSize: number
  /** Slot distance: object + redzone, rounded to the minimum alignment. */
  readonly stride: number
  readonly order: number
  /** Free slots (physical addresses), LIFO. */
  readonly free: number[] = []
  constructor(objSize: number, redzone: number, minAlign: number) {
    this.objSize = objSize
    this.stride = Math.ceil((objSize + redzone) / minAlign) * minAlign
    this.name = `kmalloc-${objSize >= 1024 ? `${objSize / 1024}k` : objSize}`
    this.order = get_order(this.stride)
  }
}

/** Generic KASAN's optimal_redzone() (mm/kasan/generic.c). */
function optimalRedzone(size: number): number {
  if (size <= 64 - 16) return 16
  if (size <= 128 - 32) return 32
  if (size <= 512 - 64) return 64
  if (size <= 4096 - 128) return 128
  if (size <= (1 << 14) - 256) return 256
  return 512
}

export class SlabAllocator {
  readonly minAlign: number
  readonly #caches: KmemCache[]
  readonly #pages: PageTable<unknown>
  readonly #buddy: PageAllocator
  readonly #quarantine: KObject[] = []
  #quarantineBytes = 0
  /** Live objects by physical start (for kfree lookups and leak accounting). */
  readonly live = new Map<number, KObject>()

  /**
   * With KASAN on (`redzones`), every slot is followed by a redzone (at least 16 bytes, rounded so
   * slots stay aligned to minAlign), as generic KASAN lays slabs out: an overflow into the next
   * object lands in the redzone and is caught.
   */
  constructor(pages: PageTable<unknown>, buddy: PageAllocator, minAlign: number, redzones = true) {
    this.#pages = pages
    this.#buddy = buddy
    this.minAlign = minAlign
    const sizes: number[] = []
    for (let s = 8; s <= KMALLOC_MAX_CACHE_SIZE; s *= 2) {
      if (s >= minAlign) sizes.push(s)
      if (s === 64 && minAlign <= 32) sizes.push(96)
      if (s === 128 && minAlign <= 64) sizes.push(192)
    }
    this.#caches = sizes.sort((a, b) => a - b).map((s) => new KmemCache(s, redzones ? optimalRedzone(s) : 0, minAlign))
  }

  /** The cache a request of `size` bytes is served from, or undefined for kmalloc_large. */
  cacheFor(size: number): KmemCache | undefined {
    return this.#caches.find((c) => c.objSize >= size)
  }

  #grow(cache: KmemCache, zone: ZoneName): boolean {
    const pfn = this.#buddy.alloc(cache.order, zone)
    if (pfn < 0) return false
    const base = pfn * PAGE_SIZE
    const bytes = PAGE_SIZE << cache.order
    const count = Math.floor(bytes / cache.stride)
    const slab: SlabInfo = { pa: base, objSize: cache.objSize, stride: cache.stride, objects: new Array<KObject | null>(count).fill(null), cacheName: cache.name }
    for (let i = 0; i < 1 << cache.order; i++) {
      const m = this.#pages.ensure(pfn + i)
      m.state = PAGE_ALLOCATED
      m.slab = slab
      m.object = null
    }
    for (let i = count - 1; i >= 0; i--) cache.free.push(base + i * cache.stride)
    return true
  }

  /** Allocates an object; returns it, or null when memory is exhausted. */
  alloc(size: number, zone: ZoneName): KObject | null {
    const cache = this.cacheFor(size)
    if (cache === undefined) return this.#allocLarge(size, zone)
    if (cache.free.length === 0 && !this.#grow(cache, zone)) return null
    const pa = cache.free.pop()!
    const meta = this.#pages.at(pa)!
    const slab = meta.slab!
    const obj = new KObject('kmalloc', pa, size, cache.objSize)
    slab.objects[(pa - slab.pa) / slab.stride] = obj
    this.live.set(pa, obj)
    return obj
  }

  #allocLarge(size: number, zone: ZoneName): KObject | null {
    const order = get_order(size)
    const pfn = this.#buddy.alloc(order, zone)
    if (pfn < 0) return null
    const obj = new KObject('kmalloc', pfn * PAGE_SIZE, size, PAGE_SIZE << order, order)
    for (let i = 0; i < 1 << order; i++) {
      const m = this.#pages.ensure(pfn + i)
      m.state = PAGE_ALLOCATED
      m.slab = null
      m.object = obj
    }
    this.live.set(obj.pa, obj)
    return obj
  }

  /** Frees a live object (the caller has validated it). */
  free(obj: KObject): void {
    obj.live = false
    this.live.delete(obj.pa)
    if (obj.span > KMALLOC_MAX_CACHE_SIZE || this.#pages.at(obj.pa)?.slab == null) {
      const pfn = obj.pa / PAGE_SIZE
      for (let i = 0; i < 1 << obj.order; i++) this.#pages.ensure(pfn + i).state = PAGE_FREED
      this.#buddy.free(pfn, obj.order)
      return
    }
    this.#quarantine.push(obj)
    this.#quarantineBytes += obj.span
    while (this.#quarantine.length > QUARANTINE_OBJECTS || this.#quarantineBytes > QUARANTINE_BYTES) {
      const old = this.#quarantine.shift()!
      this.#quarantineBytes -= old.span
      this.cacheFor(old.span)!.free.push(old.pa)
    }
  }

  /** The object (live or freed) whose slot holds pa, when pa is in a kmalloc page. */
  objectAt(pa: number): KObject | null | undefined {
    const meta = this.#pages.at(pa)
    if (meta === undefined) return undefined
    if (meta.slab !== null) return meta.slab.objects[Math.floor((pa - meta.slab.pa) / meta.slab.stride)] ?? null
    return meta.object
  }
}
