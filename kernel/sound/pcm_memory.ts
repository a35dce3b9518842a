/**
 * PCM buffer memory (sound/core/pcm_memory.c, sound/core/memalloc.c): preallocation when the PCM
 * is created, the managed mode in which the PCM core allocates the buffer before `hw_params` and
 * frees it after `hw_free`, and the explicit `snd_pcm_lib_malloc_pages` / `snd_pcm_lib_free_pages`.
 *
 * `SNDRV_DMA_TYPE_DEV` buffers come from `dma_alloc_coherent(dev, PAGE_ALIGN(size))` of the device
 * given, so every DMA check applies to them (the device's IOMMU and mask, dma-debug's leak check at
 * unbind); `_DEV_WC` and `_DEV_SG` are served the same way (one contiguous coherent allocation, as
 * Linux does behind an IOMMU). `SNDRV_DMA_TYPE_CONTINUOUS` and `_VMALLOC` are pages of kernel
 * memory for drivers that copy with the CPU. Allocations and frees are process context.
 */

import { EINVAL, ENOMEM, ENXIO } from '../errno.js'
import { dma_alloc_coherent, dma_free_coherent } from '../dma/coherent.js'
import { __free_pages, alloc_pages, page_address, virt_to_page, virt_to_phys } from '../mm/memory.js'
import { PAGE_SIZE, GFP_KERNEL, get_order, type CpuAddr, type DmaAddr } from '../types.js'
import { Device as DeviceClass, type Device } from '../base/device.js'
import {
  SNDRV_DMA_TYPE_CONTINUOUS,
  SNDRV_DMA_TYPE_DEV,
  SNDRV_DMA_TYPE_DEV_SG,
  SNDRV_DMA_TYPE_DEV_WC,
  SNDRV_DMA_TYPE_UNKNOWN,
  SNDRV_DMA_TYPE_VMALLOC,
} from './asound.js'
import { SndPcm, SndPcmSubstream, snd_pcm_set_runtime_buffer, emptyDmaBuffer, type SndDmaBuffer } from './pcm.js'
import { sndBadArg, sndCall, sndLog } from './state.js'
import type { Task } from '../sched/current.js'

/** Substreams per direction that get a preallocated buffer (pcm_memory.c's maximum_substreams). */
export const SND_MAXIMUM_SUBSTREAMS = 4
/** The smallest preallocation tried before giving up (snd_minimum_buffer). */
export const SND_MINIMUM_BUFFER = 16384
/** DMA buffer bytes one card may hold (max_alloc_per_card). */
export const SND_MAX_ALLOC_PER_CARD = 32 * 1024 * 1024

const TYPES = [SNDRV_DMA_TYPE_CONTINUOUS, SNDRV_DMA_TYPE_DEV, SNDRV_DMA_TYPE_DEV_WC, SNDRV_DMA_TYPE_DEV_SG, SNDRV_DMA_TYPE_VMALLOC]

function isDevType(type: number): boolean {
  return type === SNDRV_DMA_TYPE_DEV || type === SNDRV_DMA_TYPE_DEV_WC || type === SNDRV_DMA_TYPE_DEV_SG
}

function checkType(t: Task, fn: string, type: unknown, dev: unknown): void {
  if (typeof type !== 'number' || !TYPES.includes(type)) sndBadArg(t, fn, 'type', `must be SNDRV_DMA_TYPE_DEV, _DEV_WC, _DEV_SG, _CONTINUOUS or _VMALLOC, got ${String(type)}`)
  if (isDevType(type) && !(dev instanceof DeviceClass)) sndBadArg(t, fn, 'data', 'must be the struct device that does the DMA (pdev.dev) for a SNDRV_DMA_TYPE_DEV buffer')
}

/**
 * `snd_dma_alloc_pages(type, dev, size, dmab)`: allocates PAGE_ALIGN(size) bytes into dmab.
 * 0, -ENOMEM, or -ENXIO for a zero size.
 */
export function snd_dma_alloc_pages(type: number, dev: Device | null, size: number, dmab: SndDmaBuffer): number {
  const { t } = sndCall('snd_dma_alloc_pages')
  checkType(t, 'snd_dma_alloc_pages', type, dev)
  return dmaAlloc(type, dev, size, dmab)
}

function dmaAlloc(type: number, dev: Device | null, size: number, dmab: SndDmaBuffer): number {
  if (!(size > 0)) return -ENXIO
  const bytes = Math.ceil(size / PAGE_SIZE) * PAGE_SIZE
  dmab.dev = { type, dev }
  if (isDevType(type)) {
    const b = dma_alloc_coherent(dev!, bytes, GFP_KERNEL)
    if (b === null) return -ENOMEM
    dmab.area = b.cpu
    dmab.addr = b.dma
  } else {
    const order = get_order(bytes)
    const page = alloc_pages(GFP_KERNEL, order)
    if (page === null) return -ENOMEM
    dmab.area = page_address(page)
    dmab.addr = virt_to_phys(dmab.area) as number as DmaAddr
    dmab._order = order
  }
  dmab.bytes = bytes
  dmab._allocBytes = bytes
  return 0
}

/** `snd_dma_free_pages(dmab)`: frees what snd_dma_alloc_pages allocated. Process context. */
export function snd_dma_free_pages(dmab: SndDmaBuffer): void {
  sndCall('snd_dma_free_pages')
  dmaFree(dmab)
}

function dmaFree(dmab: SndDmaBuffer): void {
  if (dmab.area === 0) return
  if (isDevType(dmab.dev.type)) dma_free_coherent(dmab.dev.dev!, dmab._allocBytes, dmab.area, dmab.addr)
  else __free_pages(virt_to_page(dmab.area), dmab._order)
  dmab.area = 0 as CpuAddr
  dmab.addr = 0 as DmaAddr
  dmab.bytes = 0
  dmab._allocBytes = 0
}

function doAllocPages(s: SndPcmSubstream, type: number, dev: Device | null, size: number, dmab: SndDmaBuffer): number {
  const card = s.pcm.card
  if (card.total_pcm_alloc_bytes + size > SND_MAX_ALLOC_PER_CARD) return -ENOMEM
  const err = dmaAlloc(type, dev, size, dmab)
  if (err === 0) card.total_pcm_alloc_bytes += dmab.bytes
  return err
}

function doFreePages(s: SndPcmSubstream, dmab: SndDmaBuffer): void {
  if (dmab.area === 0) return
  const card = s.pcm.card
  card.total_pcm_alloc_bytes = Math.max(0, card.total_pcm_alloc_bytes - dmab.bytes)
  dmaFree(dmab)
}

function preallocatePcmPages(s: SndPcmSubstream, size: number, noFallback: boolean): number {
  const dmab = s.dma_buffer
  const orig = size
  do {
    const err = doAllocPages(s, dmab.dev.type, dmab.dev.dev, size, dmab)
    if (err !== -ENOMEM) return err
    if (noFallback) break
    size >>= 1
  } while (size >= SND_MINIMUM_BUFFER)
  dmab.bytes = 0
  sndLog(s.pcm.card._sys, 'warn', null, `ALSA pcmC${s.pcm.card.number}D${s.pcm.device}${s.stream === 0 ? 'p' : 'c'},${s.number}:${s.pcm.name}: cannot preallocate for size ${orig}`)
  return noFallback ? -ENOMEM : 0
}

function preallocatePages(t: Task, fn: string, s: SndPcmSubstream, type: number, dev: Device | null, size: number, max: number, managed: boolean): number {
  if (s.dma_buffer.dev.type !== SNDRV_DMA_TYPE_UNKNOWN) {
    sndLog(s.pcm.card._sys, 'error', s.pcm.card.devName, `BUG: ${fn}: the buffer of ${s.debugName} is already set up`)
    return -EINVAL
  }
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) sndBadArg(t, fn, 'size', `is an impossible size: ${String(size)}`)
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 0) sndBadArg(t, fn, 'max', `is an impossible size: ${String(max)}`)
  s.dma_buffer.dev = { type, dev }
  if (size > 0) {
    if (max === 0) {
      const err = preallocatePcmPages(s, size, true)
      if (err < 0) return err
    } else if (s.number < SND_MAXIMUM_SUBSTREAMS) {
      const err = preallocatePcmPages(s, size, false)
      if (err < 0 && err !== -ENOMEM) return err
    }
  }
  if (s.dma_buffer.bytes > 0) s.buffer_bytes_max = s.dma_buffer.bytes
  s.dma_max = max
  if (managed) s.managed_buffer_alloc = true
  return 0
}

function forAll(pcm: SndPcm, fn: (s: SndPcmSubstream) => number): number {
  for (const pstr of pcm.streams) {
    for (const s of pstr.substreams) {
      const err = fn(s)
      if (err < 0) return err
    }
  }
  return 0
}

function checkPcmArg(t: Task, fn: string, pcm: unknown): SndPcm {
  if (!(pcm instanceof SndPcm)) sndBadArg(t, fn, 'pcm', 'must be a PCM from snd_pcm_new()')
  return pcm
}

function checkSubArg(t: Task, fn: string, s: unknown): SndPcmSubstream {
  if (!(s instanceof SndPcmSubstream)) sndBadArg(t, fn, 'substream', 'must be a snd_pcm_substream')
  return s
}

/**
 * `snd_pcm_lib_preallocate_pages(substream, type, data, size, max)`: preallocates `size` bytes
 * (halving down to 16 KiB when memory is short) for the first four substreams; the driver then
 * calls snd_pcm_lib_malloc_pages in hw_params. Process context.
 */
export function snd_pcm_lib_preallocate_pages(substream: SndPcmSubstream, type: number, data: Device | null, size: number, max: number): void {
  const { t } = sndCall('snd_pcm_lib_preallocate_pages')
  const s = checkSubArg(t, 'snd_pcm_lib_preallocate_pages', substream)
  checkType(t, 'snd_pcm_lib_preallocate_pages', type, data)
  preallocatePages(t, 'snd_pcm_lib_preallocate_pages', s, type, data, size, max, false)
}

/** `snd_pcm_lib_preallocate_pages_for_all(pcm, type, data, size, max)`: for every substream. */
export function snd_pcm_lib_preallocate_pages_for_all(pcm: SndPcm, type: number, data: Device | null, size: number, max: number): void {
  const { t } = sndCall('snd_pcm_lib_preallocate_pages_for_all')
  const p = checkPcmArg(t, 'snd_pcm_lib_preallocate_pages_for_all', pcm)
  checkType(t, 'snd_pcm_lib_preallocate_pages_for_all', type, data)
  forAll(p, (s) => preallocatePages(t, 'snd_pcm_lib_preallocate_pages_for_all', s, type, data, size, max, false))
}

/**
 * `snd_pcm_set_managed_buffer(substream, type, data, size, max)`: preallocates as above and lets
 * the PCM core allocate the buffer before hw_params (a new one of up to `max` bytes when the
 * preallocated one is too small; `max` 0 fixes the size to the preallocation) and free it after
 * hw_free. 0 or -ENOMEM (max 0 and the preallocation failed). Process context.
 */
export function snd_pcm_set_managed_buffer(substream: SndPcmSubstream, type: number, data: Device | null, size: number, max: number): number {
  const { t } = sndCall('snd_pcm_set_managed_buffer')
  const s = checkSubArg(t, 'snd_pcm_set_managed_buffer', substream)
  checkType(t, 'snd_pcm_set_managed_buffer', type, data)
  return preallocatePages(t, 'snd_pcm_set_managed_buffer', s, type, data, size, max, true)
}

/** `snd_pcm_set_managed_buffer_all(pcm, type, data, size, max)`: for every substream of the PCM. */
export function snd_pcm_set_managed_buffer_all(pcm: SndPcm, type: number, data: Device | null, size: number, max: number): number {
  const { t } = sndCall('snd_pcm_set_managed_buffer_all')
  const p = checkPcmArg(t, 'snd_pcm_set_managed_buffer_all', pcm)
  checkType(t, 'snd_pcm_set_managed_buffer_all', type, data)
  return forAll(p, (s) => preallocatePages(t, 'snd_pcm_set_managed_buffer_all', s, type, data, size, max, true))
}

/** `snd_pcm_lib_preallocate_free(substream)`: frees the preallocated buffer. Process context. */
export function snd_pcm_lib_preallocate_free(substream: SndPcmSubstream): void {
  sndCall('snd_pcm_lib_preallocate_free')
  preallocateFree(substream)
}

/** `snd_pcm_lib_preallocate_free_for_all(pcm)`. */
export function snd_pcm_lib_preallocate_free_for_all(pcm: SndPcm): void {
  const { t } = sndCall('snd_pcm_lib_preallocate_free_for_all')
  const p = checkPcmArg(t, 'snd_pcm_lib_preallocate_free_for_all', pcm)
  for (const pstr of p.streams) for (const s of pstr.substreams) preallocateFree(s)
}

/** @internal Frees a substream's preallocated buffer (from the PCM's free). */
export function preallocateFree(s: SndPcmSubstream): void {
  doFreePages(s, s.dma_buffer)
}

/**
 * `snd_pcm_lib_malloc_pages(substream, size)`: gives the runtime a buffer of at least `size` bytes
 * — the current one if big enough, else the preallocated one, else a new allocation. 1 if the
 * buffer changed, 0 if not, or -ENOMEM / -EINVAL. Process context (hw_params).
 */
export function snd_pcm_lib_malloc_pages(substream: SndPcmSubstream, size: number): number {
  const { t } = sndCall('snd_pcm_lib_malloc_pages')
  const s = checkSubArg(t, 'snd_pcm_lib_malloc_pages', substream)
  return mallocPages(s, size)
}

/** @internal */
export function mallocPages(s: SndPcmSubstream, size: number): number {
  const rt = s.runtime
  if (rt === null) return -EINVAL
  if (s.dma_buffer.dev.type === SNDRV_DMA_TYPE_UNKNOWN) {
    sndLog(s.pcm.card._sys, 'error', s.pcm.card.devName, `BUG: snd_pcm_lib_malloc_pages: no buffer type for ${s.debugName} (call snd_pcm_lib_preallocate_pages or snd_pcm_set_managed_buffer first)`)
    return -EINVAL
  }
  if (rt.dma_buffer_p !== null) {
    if (rt.dma_buffer_p.bytes >= size) {
      rt.dma_bytes = size
      return 0
    }
    freePages(s)
  }
  let dmab: SndDmaBuffer
  if (s.dma_buffer.area !== 0 && s.dma_buffer.bytes >= size) {
    dmab = s.dma_buffer
  } else {
    if (s.dma_buffer.area !== 0 && s.dma_max === 0) return -ENOMEM
    dmab = emptyDmaBuffer()
    dmab.dev = { ...s.dma_buffer.dev }
    if (doAllocPages(s, dmab.dev.type, dmab.dev.dev, size, dmab) < 0) {
      sndLog(s.pcm.card._sys, 'debug', null, `ALSA pcmC${s.pcm.card.number}D${s.pcm.device}${s.stream === 0 ? 'p' : 'c'},${s.number}:${s.pcm.name}: cannot allocate for size ${size}`)
      return -ENOMEM
    }
  }
  snd_pcm_set_runtime_buffer(s, dmab)
  rt.dma_bytes = size
  return 1
}

/** `snd_pcm_lib_free_pages(substream)`: releases the runtime's buffer (a preallocated one is kept). 0. */
export function snd_pcm_lib_free_pages(substream: SndPcmSubstream): number {
  const { t } = sndCall('snd_pcm_lib_free_pages')
  const s = checkSubArg(t, 'snd_pcm_lib_free_pages', substream)
  return freePages(s)
}

/** @internal */
export function freePages(s: SndPcmSubstream): number {
  const rt = s.runtime
  if (rt === null) return -EINVAL
  if (rt.dma_area === 0) return 0
  if (rt.dma_buffer_p !== null && rt.dma_buffer_p !== s.dma_buffer) doFreePages(s, rt.dma_buffer_p)
  snd_pcm_set_runtime_buffer(s, null)
  return 0
}
