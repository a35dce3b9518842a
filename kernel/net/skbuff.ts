/**
 * Socket buffers (include/linux/skbuff.h, net/core/skbuff.c): `struct sk_buff` whose data lives in
 * emulated kernel memory.
 *
 * The linear buffer (`head` .. `head + end`) is kmalloc'd, so a driver can `dma_map_single()`
 * `skb.data`, and KASAN, the ownership sanitizer and the leak checks see every access: the stack
 * reads a received frame through the CPU accessors, so a buffer the driver handed up while it was
 * still mapped for the device is reported where the stack reads it. Page fragments
 * (`skb_shinfo(skb).frags`) point into pages from alloc_pages; an skb holds one reference on the
 * page block of each fragment, and the block is freed when the last skb that points into it is
 * freed (a driver that attaches a page hands its reference over, as in Linux).
 *
 * `skb_shared_info` is a JavaScript object (`skb_shinfo(skb)`), not bytes at the end of the
 * buffer, and the `sk_buff` itself is a JavaScript object; its data buffer is what is tracked.
 * Freeing an skb twice reaches kfree twice: KASAN's double-free report.
 *
 * Offsets (`tail`, `end`, `mac_header`, `network_header`, `transport_header`) are relative to
 * `head`, as on 64-bit Linux (NET_SKBUFF_DATA_USES_OFFSET).
 */

import { Device } from '../base/device.js'
import { dma_map_page } from '../dma/mapping.js'
import { DMA_TO_DEVICE } from '../dma/types.js'
import { EFAULT, ENOMEM } from '../errno.js'
import { hex, PAGE_OFFSET } from '../mm/layout.js'
import { __free_pages, checkSize, kfree, kmalloc, mem_read_bytes, mem_write_bytes, memcpy, memset, page_address } from '../mm/memory.js'
import { Page, type KObject } from '../mm/page.js'
import { currentOrNull, type Task } from '../sched/current.js'
import type { System } from '../system.js'
import { ALIGN, GFP_ATOMIC, PAGE_SIZE, ptr_add, type CpuAddr, type DmaAddr } from '../types.js'
import type { NapiStruct } from './napi.js'
import type { NetDevice } from './netdevice.js'
import { NET_TX_SOFTIRQ, raise_net_softirq } from './softirq.js'
import { netBadArg, netCall, netState, type NetState } from './state.js'

/** Headroom netdev_alloc_skb reserves (`max(32, L1_CACHE_BYTES)`). */
export const NET_SKB_PAD = 64
/** `SMP_CACHE_BYTES`: skb buffers are sized in whole cache lines. */
export const SMP_CACHE_BYTES = 64
/** Most page fragments one skb holds. */
export const MAX_SKB_FRAGS = 17

/** `SKB_DATA_ALIGN(x)`: x rounded up to a cache line. */
export function SKB_DATA_ALIGN(x: number): number {
  return ALIGN(x, SMP_CACHE_BYTES)
}

/**
 * `NET_IP_ALIGN`: the extra headroom that puts the IP header of a received frame on a 4-byte
 * boundary: 2, except on x86_64 where unaligned loads are cheap and unaligned DMA is not (0). It
 * depends on the running system's platform, so here it is a call: `skb_reserve(skb, NET_IP_ALIGN())`.
 */
export function NET_IP_ALIGN(): number {
  const { sys } = netCall('NET_IP_ALIGN')
  return sys.arch === 'x86_64' ? 0 : 2
}

/** skb.pkt_type values (include/uapi/linux/if_packet.h). */
export const PACKET_HOST = 0
export const PACKET_BROADCAST = 1
export const PACKET_MULTICAST = 2
export const PACKET_OTHERHOST = 3
export const PACKET_OUTGOING = 4

/** skb.ip_summed values. */
export const CHECKSUM_NONE = 0
export const CHECKSUM_UNNECESSARY = 1
export const CHECKSUM_COMPLETE = 2
export const CHECKSUM_PARTIAL = 3

/** An unset header offset (`(u16)~0U`). */
const HEADER_UNSET = 0xffff

/** One page fragment (`skb_frag_t`, a bio_vec): `len` bytes at `offset` in `page`. */
export interface SkbFrag {
  page: Page
  offset: number
  len: number
}
export type skb_frag_t = SkbFrag

/** `struct skb_shared_info`: the fragments of a non-linear skb. */
export interface SkbSharedInfo {
  nr_frags: number
  frags: SkbFrag[]
  gso_size: number
  gso_segs: number
  gso_type: number
  tx_flags: number
}

/** `struct sk_buff`. Allocate with alloc_skb, netdev_alloc_skb, napi_alloc_skb; never `new`. */
export class SkBuff {
  /** Start of the kmalloc'd buffer. */
  head: CpuAddr
  /** Start of the data (the frame as far as the current layer is concerned). */
  data: CpuAddr
  /** Bytes of data: the linear part (headlen) plus the fragments (data_len). */
  len = 0
  /** Bytes in the page fragments. */
  data_len = 0
  /** End of the linear data, as an offset from head (`skb_tail_pointer(skb)` is the address). */
  tail: number
  /** End of the buffer, as an offset from head. */
  end: number
  /** Memory charged for this skb. */
  truesize: number
  /** The protocol in network order (`htons(ETH_P_IP)`); set from eth_type_trans on receive. */
  protocol = 0
  pkt_type = PACKET_HOST
  /** The device it arrived on or leaves through. */
  dev: NetDevice | null = null
  ip_summed = CHECKSUM_NONE
  csum = 0
  priority = 0
  mark = 0
  queue_mapping = 0
  /** Virtual time stamp (ns), 0 when unset. */
  tstamp = 0
  mac_header = HEADER_UNSET
  network_header = HEADER_UNSET
  transport_header = HEADER_UNSET
  /** @internal skb_shinfo(). */
  readonly _shinfo: SkbSharedInfo = { nr_frags: 0, frags: [], gso_size: 0, gso_segs: 0, gso_type: 0, tx_flags: 0 }
  /** @internal */
  readonly _sys: System
  /** @internal The kmalloc object of the buffer (for double-free and leak reports). */
  _obj: KObject | null
  /** @internal */
  _freed = false
  /** @internal Queued for freeing by NET_TX (dev_kfree_skb_irq). */
  _freeQueued = false

  /** @internal */
  constructor(sys: System, head: CpuAddr, headroom: number, size: number, obj: KObject | null) {
    this._sys = sys
    this.head = head
    this.data = ptr_add(head, headroom)
    this.tail = headroom
    this.end = size
    this.truesize = size + 320 // SKB_TRUESIZE: the buffer plus sk_buff and skb_shared_info
    this._obj = obj
  }

  toString(): string {
    return `skb(data=${hex(this.data)} len=${this.len}${this.dev !== null ? ` dev=${this.dev.name}` : ''})`
  }
}

/** `skb_shinfo(skb)`. */
export function skb_shinfo(skb: SkBuff): SkbSharedInfo {
  return skb._shinfo
}

/** Validates an skb argument; a freed one is KASAN's use-after-free (the access goes ahead). */
export function checkSkb(t: Task, fn: string, skb: unknown, arg = 'skb'): SkBuff {
  if (!(skb instanceof SkBuff)) netBadArg(t, fn, arg, `must be a struct sk_buff, got ${skb === null ? 'NULL' : typeof skb}`)
  if (skb._sys !== t.sys) netBadArg(t, fn, arg, 'belongs to another system')
  if (skb._freed && !skb._freeQueued) {
    skb._sys.report({
      kind: 'use-after-free',
      message: `BUG: KASAN: slab-use-after-free in ${fn}(): the sk_buff (data ${hex(skb.data)}) was already freed`,
      object: skb._obj,
    })
  }
  return skb
}

// ---------------------------------------------------------------------- allocation

function allocSkb(t: Task, fn: string, size: unknown, gfp: number, headroom: number, dev: NetDevice | null): SkBuff | null {
  const n = checkSize(t, fn, 'size', size, true)
  const sys = t.sys as System
  const bufSize = SKB_DATA_ALIGN(Math.max(1, n + headroom))
  const head = kmalloc(bufSize, gfp)
  if (head === null) return null
  const obj = sys.slab.objectAt((head as number) - PAGE_OFFSET) ?? null
  const skb = new SkBuff(sys, head, headroom, bufSize, obj)
  skb.dev = dev
  netState(sys).liveSkbs.add(skb)
  return skb
}

/** `alloc_skb(size, gfp)`: an skb with a size-byte buffer and no headroom; null on failure. */
export function alloc_skb(size: number, gfp: number): SkBuff | null {
  const { t } = netCall('alloc_skb')
  return allocSkb(t, 'alloc_skb', size, gfp, 0, null)
}

/** `__netdev_alloc_skb(dev, len, gfp)`: len bytes after NET_SKB_PAD of headroom; skb.dev = dev. */
export function __netdev_alloc_skb(dev: NetDevice | null, len: number, gfp: number): SkBuff | null {
  const { t } = netCall('__netdev_alloc_skb')
  return allocSkb(t, '__netdev_alloc_skb', len, gfp, NET_SKB_PAD, dev)
}

/** `netdev_alloc_skb(dev, len)`: an RX buffer (GFP_ATOMIC), NET_SKB_PAD of headroom, skb.dev = dev. */
export function netdev_alloc_skb(dev: NetDevice | null, len: number): SkBuff | null {
  const { t } = netCall('netdev_alloc_skb')
  return allocSkb(t, 'netdev_alloc_skb', len, GFP_ATOMIC, NET_SKB_PAD, dev)
}

/** `dev_alloc_skb(len)`: netdev_alloc_skb without a device. */
export function dev_alloc_skb(len: number): SkBuff | null {
  const { t } = netCall('dev_alloc_skb')
  return allocSkb(t, 'dev_alloc_skb', len, GFP_ATOMIC, NET_SKB_PAD, null)
}

/** `netdev_alloc_skb_ip_align(dev, len)`: netdev_alloc_skb with NET_IP_ALIGN more headroom. */
export function netdev_alloc_skb_ip_align(dev: NetDevice | null, len: number): SkBuff | null {
  const { t, sys } = netCall('netdev_alloc_skb_ip_align')
  const align = sys.arch === 'x86_64' ? 0 : 2
  const n = checkSize(t, 'netdev_alloc_skb_ip_align', 'len', len, true)
  return allocSkb(t, 'netdev_alloc_skb_ip_align', n, GFP_ATOMIC, NET_SKB_PAD + align, dev)
}

/** `napi_alloc_skb(napi, len)`: an RX buffer in NAPI context (NET_SKB_PAD + NET_IP_ALIGN headroom). */
export function napi_alloc_skb(napi: NapiStruct, len: number): SkBuff | null {
  const { t, sys } = netCall('napi_alloc_skb')
  if (napi === null || typeof napi !== 'object' || !('poll' in napi)) netBadArg(t, 'napi_alloc_skb', 'napi', 'must be a napi_struct from netif_napi_add()')
  const align = sys.arch === 'x86_64' ? 0 : 2
  return allocSkb(t, 'napi_alloc_skb', len, GFP_ATOMIC, NET_SKB_PAD + align, napi.dev)
}

// ---------------------------------------------------------------------- freeing

/** Releases the fragment references and the buffer (skb_release_data + kfree_skbmem). */
function releaseSkb(t: Task, fn: string, skb: SkBuff): void {
  const sys = t.sys as System
  const ns = netState(sys)
  if (skb._freed && !skb._freeQueued) {
    // A second free. While the buffer's memory is not reused, kfree itself reports the
    // double-free; once it is, kfree would free someone else's object: report it here instead.
    const obj = skb._obj
    if (obj !== null && sys.slab.objectAt(obj.pa) === obj) kfree(skb.head)
    else if (sys.checks.kasan) {
      sys.report({ kind: 'double-free', message: `BUG: KASAN: double-free in ${fn}(): the sk_buff (data ${hex(skb.data)}) was already freed`, object: obj })
    }
    return
  }
  skb._freed = true
  skb._freeQueued = false
  ns.liveSkbs.delete(skb)
  const frags = skb._shinfo.frags.splice(0)
  skb._shinfo.nr_frags = 0
  for (const f of frags) fragPut(sys, ns, f.page)
  kfree(skb.head)
}

/** `kfree_skb(skb)`: frees an skb that was dropped (NULL is ignored). */
export function kfree_skb(skb: SkBuff | null): void {
  const { t } = netCall('kfree_skb')
  if (skb === null || skb === undefined) return
  releaseSkb(t, 'kfree_skb', checkSkbForFree(t, 'kfree_skb', skb))
}

/** `consume_skb(skb)`: frees an skb that was used (NULL is ignored). */
export function consume_skb(skb: SkBuff | null): void {
  const { t } = netCall('consume_skb')
  if (skb === null || skb === undefined) return
  releaseSkb(t, 'consume_skb', checkSkbForFree(t, 'consume_skb', skb))
}

/** `dev_kfree_skb(skb)`: consume_skb. */
export function dev_kfree_skb(skb: SkBuff | null): void {
  const { t } = netCall('dev_kfree_skb')
  if (skb === null || skb === undefined) return
  releaseSkb(t, 'dev_kfree_skb', checkSkbForFree(t, 'dev_kfree_skb', skb))
}

/**
 * `dev_kfree_skb_irq(skb)`: frees an skb from hard-IRQ context or with IRQs disabled. The skb is
 * queued and freed by the NET_TX softirq (the completion queue), as in Linux.
 */
export function dev_kfree_skb_irq(skb: SkBuff | null): void {
  const { t, ns } = netCall('dev_kfree_skb_irq')
  if (skb === null || skb === undefined) return
  queueFree(t, ns, 'dev_kfree_skb_irq', checkSkbForFree(t, 'dev_kfree_skb_irq', skb))
}

/** `dev_consume_skb_irq(skb)`. */
export function dev_consume_skb_irq(skb: SkBuff | null): void {
  const { t, ns } = netCall('dev_consume_skb_irq')
  if (skb === null || skb === undefined) return
  queueFree(t, ns, 'dev_consume_skb_irq', checkSkbForFree(t, 'dev_consume_skb_irq', skb))
}

function queueFree(t: Task, ns: NetState, fn: string, skb: SkBuff): void {
  if (skb._freeQueued) {
    // Queued for freeing already: Linux's refcount goes below zero.
    const sys = t.sys as System
    if (sys.checks.kasan) sys.report({ kind: 'double-free', message: `BUG: double free in ${fn}(): the sk_buff (data ${hex(skb.data)}) is already queued for freeing (refcount_t: underflow; use-after-free)`, object: skb._obj })
    return
  }
  if (skb._freed) {
    releaseSkb(t, fn, skb) // a second free: reported there
    return
  }
  skb._freed = true
  skb._freeQueued = true
  ns.completionQueue.push(skb)
  raise_net_softirq(ns, NET_TX_SOFTIRQ)
}

/** `dev_kfree_skb_any(skb)`: frees from any context (deferred to NET_TX in hard-IRQ or IRQ-off context). */
export function dev_kfree_skb_any(skb: SkBuff | null): void {
  const { t, ns } = netCall('dev_kfree_skb_any')
  if (skb === null || skb === undefined) return
  const s = checkSkbForFree(t, 'dev_kfree_skb_any', skb)
  if (t.context === 'hardirq' || t.irqsDisabled > 0) queueFree(t, ns, 'dev_kfree_skb_any', s)
  else releaseSkb(t, 'dev_kfree_skb_any', s)
}

/** `dev_consume_skb_any(skb)`. */
export function dev_consume_skb_any(skb: SkBuff | null): void {
  const { t, ns } = netCall('dev_consume_skb_any')
  if (skb === null || skb === undefined) return
  const s = checkSkbForFree(t, 'dev_consume_skb_any', skb)
  if (t.context === 'hardirq' || t.irqsDisabled > 0) queueFree(t, ns, 'dev_consume_skb_any', s)
  else releaseSkb(t, 'dev_consume_skb_any', s)
}

/** `napi_consume_skb(skb, budget)`: TX completion in a NAPI poll (budget 0: from netpoll, any context). */
export function napi_consume_skb(skb: SkBuff | null, budget: number): void {
  const { t, ns } = netCall('napi_consume_skb')
  if (skb === null || skb === undefined) return
  const s = checkSkbForFree(t, 'napi_consume_skb', skb)
  if (budget === 0 && (t.context === 'hardirq' || t.irqsDisabled > 0)) queueFree(t, ns, 'napi_consume_skb', s)
  else releaseSkb(t, 'napi_consume_skb', s)
}

function checkSkbForFree(t: Task, fn: string, skb: unknown): SkBuff {
  if (!(skb instanceof SkBuff)) netBadArg(t, fn, 'skb', `must be a struct sk_buff, got ${typeof skb}`)
  if (skb._sys !== t.sys) netBadArg(t, fn, 'skb', 'belongs to another system')
  return skb
}

/** Frees an skb from the stack's own paths (already validated). */
export function __kfree_skb(skb: SkBuff): void {
  const t = currentOrNull()!
  releaseSkb(t, 'kfree_skb', skb)
}

/** NET_TX's part: frees the skbs dev_kfree_skb_irq queued. */
export function free_completion_queue(ns: NetState): void {
  const q = ns.completionQueue
  if (q.length === 0) return
  ns.completionQueue = []
  const t = currentOrNull()!
  for (const skb of q) {
    if (!skb._freeQueued) continue
    skb._freed = false // now really freed
    releaseSkb(t, 'net_tx_action', skb)
  }
}

// ---------------------------------------------------------------------- fragment page references

function pageBlock(sys: System, page: Page): KObject | null {
  const obj = sys.pages.get(page.pfn)?.object
  return obj != null && obj.kind === 'pages' ? obj : null
}

function fragGet(t: Task, fn: string, sys: System, ns: NetState, page: unknown): void {
  if (!(page instanceof Page)) netBadArg(t, fn, 'page', 'must be a struct page')
  const obj = pageBlock(sys, page)
  if (obj === null || !obj.live) netBadArg(t, fn, 'page', `(${page.toString()}) must be a live page from alloc_pages()`)
  ns.fragRefs.set(obj, (ns.fragRefs.get(obj) ?? 0) + 1)
}

function fragPut(sys: System, ns: NetState, page: Page): void {
  const obj = pageBlock(sys, page)
  if (obj === null) return
  const n = (ns.fragRefs.get(obj) ?? 1) - 1
  if (n > 0) {
    ns.fragRefs.set(obj, n)
    return
  }
  ns.fragRefs.delete(obj)
  __free_pages(sys.pages.get(obj.pa / PAGE_SIZE)!.page, obj.order)
}

// ---------------------------------------------------------------------- data area

function checkLen(t: Task, fn: string, len: unknown, arg = 'len'): number {
  return checkSize(t, fn, arg, len, true)
}

/** `skb_tail_pointer(skb)`: the address of the end of the linear data. */
export function skb_tail_pointer(skb: SkBuff): CpuAddr {
  return ptr_add(skb.head, skb.tail)
}
/** `skb_end_pointer(skb)`. */
export function skb_end_pointer(skb: SkBuff): CpuAddr {
  return ptr_add(skb.head, skb.end)
}
/** `skb_headlen(skb)`: bytes in the linear part. */
export function skb_headlen(skb: SkBuff): number {
  return skb.len - skb.data_len
}
/** `skb_is_nonlinear(skb)`: whether some data is in page fragments. */
export function skb_is_nonlinear(skb: SkBuff): boolean {
  return skb.data_len !== 0
}
/** `skb_headroom(skb)`: bytes between head and data. */
export function skb_headroom(skb: SkBuff): number {
  return (skb.data as number) - (skb.head as number)
}
/** `skb_tailroom(skb)`: bytes between tail and end (0 for a non-linear skb). */
export function skb_tailroom(skb: SkBuff): number {
  return skb_is_nonlinear(skb) ? 0 : skb.end - skb.tail
}

function skbPanic(t: Task, what: 'over' | 'under', fn: string, skb: SkBuff, len: number): never {
  const sys = t.sys as System
  return sys.oops(
    t,
    `skbuff: skb_${what}_panic: text:${fn} len:${skb.len} put:${len} head:${hex(skb.head)} data:${hex(skb.data)} tail:${hex(skb.tail)} end:${hex(skb.end)} dev:${skb.dev?.name ?? '<NULL>'} (kernel BUG at net/core/skbuff.c)`,
  )
}

/** `skb_put(skb, len)`: extends the linear data by len bytes at the tail; returns where they start. */
export function skb_put(skb: SkBuff, len: number): CpuAddr {
  const { t } = netCall('skb_put')
  return put(t, 'skb_put', checkSkb(t, 'skb_put', skb), checkLen(t, 'skb_put', len))
}

function put(t: Task, fn: string, skb: SkBuff, len: number): CpuAddr {
  if (skb_is_nonlinear(skb)) (t.sys as System).oops(t, `kernel BUG at include/linux/skbuff.h: ${fn}: SKB_LINEAR_ASSERT: the skb has page fragments`)
  const tmp = skb_tail_pointer(skb)
  skb.tail += len
  skb.len += len
  if (skb.tail > skb.end) skbPanic(t, 'over', fn, skb, len)
  return tmp
}

/**
 * `skb_put_data(skb, data, len)`: skb_put and copy len bytes in, from a Uint8Array (len defaults
 * to its length) or from kernel memory at a CpuAddr. Returns where they start.
 */
export function skb_put_data(skb: SkBuff, data: Uint8Array | CpuAddr, len?: number): CpuAddr {
  const { t } = netCall('skb_put_data')
  const s = checkSkb(t, 'skb_put_data', skb)
  if (data instanceof Uint8Array) {
    const n = len === undefined ? data.length : checkLen(t, 'skb_put_data', len)
    if (n > data.length) netBadArg(t, 'skb_put_data', 'len', `is ${n} but data holds ${data.length} bytes`)
    const p = put(t, 'skb_put_data', s, n)
    if (n > 0) mem_write_bytes(p, n === data.length ? data : data.subarray(0, n))
    return p
  }
  if (typeof data !== 'number') netBadArg(t, 'skb_put_data', 'data', 'must be a Uint8Array or a CpuAddr')
  if (len === undefined) netBadArg(t, 'skb_put_data', 'len', 'is required when data is a CpuAddr')
  const n = checkLen(t, 'skb_put_data', len)
  const p = put(t, 'skb_put_data', s, n)
  if (n > 0) memcpy(p, data, n)
  return p
}

/** `skb_put_zero(skb, len)`: skb_put and zero the bytes. */
export function skb_put_zero(skb: SkBuff, len: number): CpuAddr {
  const { t } = netCall('skb_put_zero')
  const n = checkLen(t, 'skb_put_zero', len)
  const p = put(t, 'skb_put_zero', checkSkb(t, 'skb_put_zero', skb), n)
  if (n > 0) memset(p, 0, n)
  return p
}

/** `skb_reserve(skb, len)`: moves data and tail of an empty skb forward (headroom). */
export function skb_reserve(skb: SkBuff, len: number): void {
  const { t } = netCall('skb_reserve')
  const s = checkSkb(t, 'skb_reserve', skb)
  const n = checkLen(t, 'skb_reserve', len)
  if (s.len !== 0) netBadArg(t, 'skb_reserve', 'skb', 'must be empty: skb_reserve is only for a fresh skb')
  s.data = ptr_add(s.data, n)
  s.tail += n
  if (s.tail > s.end) skbPanic(t, 'over', 'skb_reserve', s, n)
}

/** `skb_push(skb, len)`: prepends len bytes of headroom to the data; returns the new data. */
export function skb_push(skb: SkBuff, len: number): CpuAddr {
  const { t } = netCall('skb_push')
  const s = checkSkb(t, 'skb_push', skb)
  const n = checkLen(t, 'skb_push', len)
  s.data = ptr_add(s.data, -n)
  s.len += n
  if ((s.data as number) < (s.head as number)) skbPanic(t, 'under', 'skb_push', s, n)
  return s.data
}

/**
 * `skb_pull(skb, len)`: removes len bytes from the start of the data; returns the new data, or null
 * (nothing pulled) when the skb holds fewer. Pulling into the page fragments is a BUG.
 */
export function skb_pull(skb: SkBuff, len: number): CpuAddr | null {
  const { t } = netCall('skb_pull')
  const s = checkSkb(t, 'skb_pull', skb)
  return pull(t, 'skb_pull', s, checkLen(t, 'skb_pull', len))
}

/** skb_pull for the stack's own use (the skb is validated). */
export function skb_pull_inline(skb: SkBuff, len: number): CpuAddr | null {
  return pull(currentOrNull()!, 'skb_pull', skb, len)
}

function pull(t: Task, fn: string, s: SkBuff, n: number): CpuAddr | null {
  if (n > s.len) return null
  s.len -= n
  if (s.len < s.data_len) (t.sys as System).oops(t, `kernel BUG at include/linux/skbuff.h: ${fn}: pulling ${n} bytes reaches into the page fragments (use pskb_may_pull)`)
  s.data = ptr_add(s.data, n)
  return s.data
}

/** `skb_trim(skb, len)`: cuts a linear skb to len bytes (nothing if it is shorter). */
export function skb_trim(skb: SkBuff, len: number): void {
  const { t } = netCall('skb_trim')
  const s = checkSkb(t, 'skb_trim', skb)
  const n = checkLen(t, 'skb_trim', len)
  if (s.len <= n) return
  if (skb_is_nonlinear(s)) {
    warnOnce(t, 'skb_trim', 'WARNING: skb_trim of a non-linear skb: use pskb_trim')
    return
  }
  s.len = n
  s.tail = (s.data as number) - (s.head as number) + n
}

function warnOnce(t: Task, key: string, msg: string): void {
  const sys = t.sys as System
  const ns = netState(sys)
  if (ns.once.has(key)) return
  ns.once.add(key)
  sys.logger.error({ task: t.toString() }, msg)
}

// ---------------------------------------------------------------------- headers

/** `skb_reset_mac_header(skb)`: the MAC header starts at data. */
export function skb_reset_mac_header(skb: SkBuff): void {
  skb.mac_header = (skb.data as number) - (skb.head as number)
}
/** `skb_mac_header(skb)`: the address of the MAC header. */
export function skb_mac_header(skb: SkBuff): CpuAddr {
  return ptr_add(skb.head, skb.mac_header)
}
/** `skb_mac_header_was_set(skb)`. */
export function skb_mac_header_was_set(skb: SkBuff): boolean {
  return skb.mac_header !== HEADER_UNSET
}
/** `eth_hdr(skb)`: the address of the Ethernet header. */
export function eth_hdr(skb: SkBuff): CpuAddr {
  return skb_mac_header(skb)
}
/** `skb_reset_network_header(skb)`. */
export function skb_reset_network_header(skb: SkBuff): void {
  skb.network_header = (skb.data as number) - (skb.head as number)
}
/** `skb_set_network_header(skb, offset)`: the network header starts offset bytes after data. */
export function skb_set_network_header(skb: SkBuff, offset: number): void {
  skb.network_header = (skb.data as number) - (skb.head as number) + offset
}
/** `skb_network_header(skb)`. */
export function skb_network_header(skb: SkBuff): CpuAddr {
  return ptr_add(skb.head, skb.network_header)
}
/** `skb_reset_transport_header(skb)`. */
export function skb_reset_transport_header(skb: SkBuff): void {
  skb.transport_header = (skb.data as number) - (skb.head as number)
}
/** `skb_transport_header(skb)`. */
export function skb_transport_header(skb: SkBuff): CpuAddr {
  return ptr_add(skb.head, skb.transport_header)
}

/** `skb_checksum_none_assert(skb)`: the driver did not verify the checksum. */
export function skb_checksum_none_assert(skb: SkBuff): void {
  skb.ip_summed = CHECKSUM_NONE
}
/** `skb_record_rx_queue(skb, rx_queue)`. */
export function skb_record_rx_queue(skb: SkBuff, rx_queue: number): void {
  skb.queue_mapping = rx_queue + 1
}
/** `skb_get_queue_mapping(skb)`. */
export function skb_get_queue_mapping(skb: SkBuff): number {
  return skb.queue_mapping
}
/** `skb_tx_timestamp(skb)`: software TX timestamping hook (nothing to do here). */
export function skb_tx_timestamp(_skb: SkBuff): void {
  /* no sockets ask for TX timestamps */
}

// ---------------------------------------------------------------------- fragments

/** `skb_frag_size(frag)`. */
export function skb_frag_size(frag: SkbFrag): number {
  return frag.len
}
/** `skb_frag_size_set(frag, size)`. */
export function skb_frag_size_set(frag: SkbFrag, size: number): void {
  frag.len = size
}
/** `skb_frag_off(frag)`: the offset of the fragment in its page. */
export function skb_frag_off(frag: SkbFrag): number {
  return frag.offset
}
/** `skb_frag_page(frag)`. */
export function skb_frag_page(frag: SkbFrag): Page {
  return frag.page
}
/** `skb_frag_address(frag)`: the CPU address of the fragment's data. */
export function skb_frag_address(frag: SkbFrag): CpuAddr {
  return ptr_add(page_address(frag.page), frag.offset)
}

/**
 * `skb_frag_dma_map(dev, frag, offset, size, dir)`: maps size bytes of a fragment, from offset
 * within it, for DMA (dma_map_page of the fragment's page). Check the result with
 * dma_mapping_error and unmap it with dma_unmap_page.
 */
export function skb_frag_dma_map(dev: Device, frag: SkbFrag, offset = 0, size?: number, dir: number = DMA_TO_DEVICE): DmaAddr {
  const { t } = netCall('skb_frag_dma_map')
  if (!(dev instanceof Device)) netBadArg(t, 'skb_frag_dma_map', 'dev', 'must be a struct device (pdev.dev)')
  if (frag === null || typeof frag !== 'object' || !(frag.page instanceof Page)) netBadArg(t, 'skb_frag_dma_map', 'frag', 'must be a fragment of skb_shinfo(skb).frags')
  const n = size ?? frag.len - offset
  return dma_map_page(dev, frag.page, frag.offset + offset, n, dir)
}

function fillFrag(t: Task, fn: string, skb: SkBuff, i: number, page: Page, off: number, size: number): void {
  const sys = t.sys as System
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= MAX_SKB_FRAGS) netBadArg(t, fn, 'i', `must be a fragment index below MAX_SKB_FRAGS (${MAX_SKB_FRAGS}), got ${String(i)}`)
  checkLen(t, fn, off, 'off')
  checkLen(t, fn, size, 'size')
  fragGet(t, fn, sys, netState(sys), page)
  const obj = pageBlock(sys, page)!
  const start = page.pfn * PAGE_SIZE + off
  if (start + size > obj.pa + obj.size) netBadArg(t, fn, 'size', `${off} + ${size} reaches beyond the ${obj.size}-byte page block`)
  const old = skb._shinfo.frags[i]
  skb._shinfo.frags[i] = { page, offset: off, len: size }
  if (old !== undefined) fragPut(sys, netState(sys), old.page)
  skb._shinfo.nr_frags = Math.max(skb._shinfo.nr_frags, i + 1)
}

/**
 * `skb_fill_page_desc(skb, i, page, off, size)`: sets fragment i (the skb takes over the caller's
 * reference on the page); len and data_len are the caller's to update.
 */
export function skb_fill_page_desc(skb: SkBuff, i: number, page: Page, off: number, size: number): void {
  const { t } = netCall('skb_fill_page_desc')
  fillFrag(t, 'skb_fill_page_desc', checkSkb(t, 'skb_fill_page_desc', skb), i, page, off, size)
}

/**
 * `skb_add_rx_frag(skb, i, page, off, size, truesize)`: attaches a received page fragment and
 * accounts for it in len, data_len and truesize. The skb takes over the caller's page reference.
 */
export function skb_add_rx_frag(skb: SkBuff, i: number, page: Page, off: number, size: number, truesize: number): void {
  const { t } = netCall('skb_add_rx_frag')
  const s = checkSkb(t, 'skb_add_rx_frag', skb)
  fillFrag(t, 'skb_add_rx_frag', s, i, page, off, size)
  s.len += size
  s.data_len += size
  s.truesize += truesize
}

// ---------------------------------------------------------------------- copying

/** Reads len bytes of the skb from offset (relative to data; negative reaches into the headroom). */
export function skbRead(skb: SkBuff, offset: number, len: number): Uint8Array {
  const out = new Uint8Array(len)
  if (len === 0) return out
  const headlen = skb_headlen(skb)
  let pos = 0
  if (offset < headlen) {
    const n = Math.min(len, headlen - offset)
    out.set(mem_read_bytes(ptr_add(skb.data, offset), n), 0)
    pos = n
  }
  let fragStart = headlen
  for (const f of skb._shinfo.frags) {
    if (pos >= len) break
    const want = offset + pos
    if (want < fragStart + f.len) {
      const from = want - fragStart
      const n = Math.min(len - pos, f.len - from)
      out.set(mem_read_bytes(ptr_add(page_address(f.page), f.offset + from), n), pos)
      pos += n
    }
    fragStart += f.len
  }
  return out
}

/**
 * `skb_copy_bits(skb, offset, to, len)`: copies len bytes from offset of the skb's data (linear
 * part and fragments) to kernel memory at `to`; 0, or -EFAULT when the skb is shorter.
 */
export function skb_copy_bits(skb: SkBuff, offset: number, to: CpuAddr, len: number): number {
  const { t } = netCall('skb_copy_bits')
  const s = checkSkb(t, 'skb_copy_bits', skb)
  const n = checkLen(t, 'skb_copy_bits', len)
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset + n > s.len) return -EFAULT
  let pos = 0
  const headlen = skb_headlen(s)
  if (offset < headlen) {
    const k = Math.min(n, headlen - offset)
    memcpy(to, ptr_add(s.data, offset), k)
    pos = k
  }
  let fragStart = headlen
  for (const f of s._shinfo.frags) {
    if (pos >= n) break
    const want = offset + pos
    if (want < fragStart + f.len) {
      const from = want - fragStart
      const k = Math.min(n - pos, f.len - from)
      memcpy(ptr_add(to, pos), ptr_add(page_address(f.page), f.offset + from), k)
      pos += k
    }
    fragStart += f.len
  }
  return 0
}

/** Reallocates the buffer as one linear area with `extraTail` bytes of tailroom; 0 or -ENOMEM. */
function expandLinear(t: Task, skb: SkBuff, extraTail: number): number {
  const sys = t.sys as System
  const headroom = skb_headroom(skb)
  const headlen = skb_headlen(skb)
  const size = SKB_DATA_ALIGN(headroom + skb.len + extraTail)
  const nh = kmalloc(size, GFP_ATOMIC)
  if (nh === null) return -ENOMEM
  memcpy(nh, skb.head, headroom + headlen)
  let off = headroom + headlen
  for (const f of skb._shinfo.frags) {
    memcpy(ptr_add(nh, off), ptr_add(page_address(f.page), f.offset), f.len)
    off += f.len
  }
  const ns = netState(sys)
  for (const f of skb._shinfo.frags.splice(0)) fragPut(sys, ns, f.page)
  skb._shinfo.nr_frags = 0
  kfree(skb.head)
  skb.head = nh
  skb.data = ptr_add(nh, headroom)
  skb.tail = headroom + skb.len
  skb.end = size
  skb.data_len = 0
  skb._obj = sys.slab.objectAt((nh as number) - PAGE_OFFSET) ?? null
  return 0
}

/**
 * `skb_linearize(skb)`: copies the page fragments into one linear buffer (what the stack does
 * before handing a fragmented skb to a device without NETIF_F_SG); 0 or -ENOMEM.
 */
export function skb_linearize(skb: SkBuff): number {
  const { t } = netCall('skb_linearize')
  const s = checkSkb(t, 'skb_linearize', skb)
  if (!skb_is_nonlinear(s)) return 0
  return expandLinear(t, s, 0)
}

/**
 * `skb_put_padto(skb, len)`: pads the skb with zeros up to len bytes (len grows). On failure the
 * skb is freed and -ENOMEM returned, as in Linux: the caller must not touch it again.
 */
export function skb_put_padto(skb: SkBuff, len: number): number {
  const { t } = netCall('skb_put_padto')
  return padto(t, 'skb_put_padto', checkSkb(t, 'skb_put_padto', skb), checkLen(t, 'skb_put_padto', len), true)
}

/** `skb_padto(skb, len)`: zeroes the buffer up to len bytes without changing skb.len; frees the skb on failure. */
export function skb_padto(skb: SkBuff, len: number): number {
  const { t } = netCall('skb_padto')
  return padto(t, 'skb_padto', checkSkb(t, 'skb_padto', skb), checkLen(t, 'skb_padto', len), false)
}

/** `eth_skb_pad(skb)`: pads a short frame to ETH_ZLEN (60) bytes; frees the skb on failure. */
export function eth_skb_pad(skb: SkBuff): number {
  const { t } = netCall('eth_skb_pad')
  return padto(t, 'eth_skb_pad', checkSkb(t, 'eth_skb_pad', skb), 60, true)
}

function padto(t: Task, fn: string, skb: SkBuff, len: number, grow: boolean): number {
  if (skb.len >= len) return 0
  const need = len - skb.len
  if (skb_is_nonlinear(skb) || skb_tailroom(skb) < need) {
    if (expandLinear(t, skb, need) !== 0) {
      releaseSkb(t, fn, skb)
      return -ENOMEM
    }
  }
  memset(skb_tail_pointer(skb), 0, need)
  if (grow) put(t, fn, skb, need)
  return 0
}
