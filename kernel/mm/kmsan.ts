/**
 * Initialised-bytes shadow, after KMSAN (mm/kmsan/): one shadow byte per byte of RAM, kept per
 * page and only where a page is partly initialised. CPU stores and device writes initialise bytes;
 * fresh allocations (without __GFP_ZERO) are uninitialised; memcpy and the kernel's swiotlb copies
 * carry the shadow with the data. A device reading uninitialised bytes is `uninit-to-device`
 * (KMSAN's kmsan_handle_dma check for DMA_TO_DEVICE), checked at the moment the device reads.
 */

import type { PageTable } from './page.js'
import { PAGE_SIZE } from '../types.js'

export class InitShadow {
  readonly #pages: PageTable<unknown>
  /** Without the kmsan check nothing reads the shadow: it is not kept (every byte counts as set). */
  readonly enabled: boolean

  constructor(pages: PageTable<unknown>, enabled = true) {
    this.#pages = pages
    this.enabled = enabled
  }

  /** Marks [pa, pa+len) initialised (value true) or not. */
  mark(pa: number, len: number, value: boolean): void {
    if (!this.enabled) return
    while (len > 0) {
      const pfn = Math.floor(pa / PAGE_SIZE)
      const off = pa - pfn * PAGE_SIZE
      const n = Math.min(len, PAGE_SIZE - off)
      const m = this.#pages.ensure(pfn)
      if (n === PAGE_SIZE) {
        m.initAll = value
        m.init = null
      } else if (value) {
        if (!m.initAll) {
          m.init ??= new Uint8Array(PAGE_SIZE)
          m.init.fill(1, off, off + n)
        }
      } else if (m.initAll || m.init !== null) {
        if (m.initAll) {
          m.init = new Uint8Array(PAGE_SIZE).fill(1)
          m.initAll = false
        }
        m.init!.fill(0, off, off + n)
      }
      pa += n
      len -= n
    }
  }

  /** Physical address of the first uninitialised byte in [pa, pa+len), or -1. */
  firstUninit(pa: number, len: number): number {
    if (!this.enabled) return -1
    while (len > 0) {
      const pfn = Math.floor(pa / PAGE_SIZE)
      const off = pa - pfn * PAGE_SIZE
      const n = Math.min(len, PAGE_SIZE - off)
      const m = this.#pages.get(pfn)
      if (m === undefined || (!m.initAll && m.init === null)) return pa
      if (!m.initAll) {
        const sh = m.init!
        for (let i = off; i < off + n; i++) if (sh[i] === 0) return pfn * PAGE_SIZE + i
      }
      pa += n
      len -= n
    }
    return -1
  }

  /** Copies the shadow of [src, src+len) onto [dst, dst+len) (memcpy propagates uninit). */
  copy(dst: number, src: number, len: number): void {
    if (!this.enabled) return
    // Fast path: the whole source initialised.
    if (this.firstUninit(src, len) < 0) {
      this.mark(dst, len, true)
      return
    }
    // Runs of equal state, copied run by run (no closure here: this is a hot path).
    let start = 0
    let runInit = this.firstUninit(src, 1) < 0
    for (let i = 1; i <= len; i++) {
      const init = i < len ? this.firstUninit(src + i, 1) < 0 : !runInit
      if (init !== runInit) {
        this.mark(dst + start, i - start, runInit)
        start = i
        runInit = init
      }
    }
  }
}
