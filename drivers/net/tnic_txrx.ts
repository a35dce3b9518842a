/**
 * tnic's data path, as in drivers/net/ethernet/intel/e1000/e1000_main.c: the interrupt handler and
 * the NAPI poll, transmit (e1000_xmit_frame, e1000_tx_map, e1000_tx_queue, e1000_clean_tx_irq) and
 * receive (e1000_alloc_rx_buffers, e1000_clean_rx_irq). See drivers/net/tnic.ts for the rules it
 * follows; the known-bad variants under test/fixtures/tnic-bad/ replace one of these functions.
 */
import {
  DMA_FROM_DEVICE, DMA_TO_DEVICE, IRQ_HANDLED, IRQ_NONE, NETDEV_TX_BUSY, NETDEV_TX_OK, dev_kfree_skb_any,
  dma_map_single, dma_mapping_error, dma_rmb, dma_sync_single_for_cpu, dma_sync_single_for_device, dma_unmap_page,
  dma_unmap_single, dma_wmb, eth_type_trans, jiffies, mod_timer, napi_alloc_skb, napi_complete_done,
  napi_consume_skb, napi_gro_receive, napi_schedule_prep, __napi_schedule, netdev_err, netdev_priv,
  netdev_alloc_skb_ip_align, netif_carrier_ok, netif_queue_stopped, netif_start_queue, netif_stop_queue,
  netif_wake_queue, netdev_info, ptr_add, readl, skb_frag_dma_map, skb_frag_size, skb_headlen, skb_put, skb_put_data, skb_shinfo,
  smp_mb, writel, type DmaAddr, type NapiStruct, type NetDevice, type SkBuff, type irqreturn_t, type netdev_tx_t,
} from '../../kernel/index.js'
import {
  E1000_ICR, E1000_ICR_INT_ASSERTED, E1000_ICR_LSC, E1000_IMC, E1000_IMS, E1000_RXD_ERR_FRAME_ERR_MASK,
  E1000_RXD_STAT_DD, E1000_RXD_STAT_EOP, E1000_TXD_CMD_IFCS, E1000_TXD_STAT_DD, IMS_ENABLE_MASK,
} from './tnic_hw.js'
import {
  TNIC_RX_BUFFER_WRITE, TNIC_MAX_DATA_PER_TXD, TNIC_TX_WAKE_THRESHOLD, TNIC_MAX_SKB_FRAGS, type TnicTxBuffer,
  type TnicRing, type TnicAdapter, er32, ew32, TX_DESC, RX_DESC, tnic_desc_unused, txd_use_count,
} from './tnic_defs.js'

// ------------------------------------------------------------------------------ interrupts

export function tnic_irq_disable(a: TnicAdapter): void {
  ew32(a, E1000_IMC, 0xffff_ffff)
}

export function tnic_irq_enable(a: TnicAdapter): void {
  ew32(a, E1000_IMS, IMS_ENABLE_MASK)
}

/**
 * e1000_intr: reads (and so clears) ICR; not ours unless INT_ASSERTED is set (the line may be
 * shared). Link changes go to the watchdog; everything else is NAPI's, with interrupts masked.
 */
export function tnic_intr(_irq: number, data: unknown): irqreturn_t {
  const netdev = data as NetDevice<TnicAdapter>
  const a = netdev_priv(netdev)
  const icr = er32(a, E1000_ICR)
  if ((icr & E1000_ICR_INT_ASSERTED) === 0) return IRQ_NONE
  if ((icr & E1000_ICR_LSC) !== 0 && !a.down) mod_timer(a.watchdog_timer, jiffies() + 1)
  // Disable interrupts until the poll is done.
  tnic_irq_disable(a)
  if (napi_schedule_prep(a.napi)) __napi_schedule(a.napi)
  else if (!a.down) tnic_irq_enable(a)
  return IRQ_HANDLED
}

/** e1000_clean: the NAPI poll. */
export function tnic_clean(a: TnicAdapter, napi: NapiStruct, budget: number): number {
  const tx_clean_complete = a.clean_tx(a)
  const work = { done: 0 }
  a.clean_rx(a, work, budget)
  if (!tx_clean_complete || work.done === budget) return budget
  // Only re-enable the interrupt when NAPI really stops polling.
  if (napi_complete_done(napi, work.done) && !a.down) tnic_irq_enable(a)
  return work.done
}

// ------------------------------------------------------------------------------ transmit

/** e1000_unmap_and_free_tx_resource */
export function tnic_unmap_and_free_tx_resource(a: TnicAdapter, bi: TnicTxBuffer, budget: number): void {
  const dev = a.pdev.dev
  if (bi.dma !== 0) {
    if (bi.mapped_as_page) dma_unmap_page(dev, bi.dma, bi.length, DMA_TO_DEVICE)
    else dma_unmap_single(dev, bi.dma, bi.length, DMA_TO_DEVICE)
    bi.dma = 0 as DmaAddr
  }
  if (bi.skb !== null) {
    napi_consume_skb(bi.skb, budget)
    bi.skb = null
  }
  bi.time_stamp = 0
  bi.next_to_watch = -1
}

/** __e1000_maybe_stop_tx: stops the queue unless `size` descriptors are free. */
export function tnic_maybe_stop_tx(netdev: NetDevice<TnicAdapter>, r: TnicRing<TnicTxBuffer>, size: number): number {
  if (tnic_desc_unused(r) >= size) return 0
  netif_stop_queue(netdev)
  // Order the stop against the unused count that TX completion updates.
  smp_mb()
  if (tnic_desc_unused(r) < size) return -1
  // A reprieve: completion freed room meanwhile.
  netif_start_queue(netdev)
  netdev_priv(netdev).restart_queue++
  return 0
}

/**
 * e1000_tx_map: maps the head and every fragment (split at TNIC_MAX_DATA_PER_TXD); returns the
 * descriptors used, or 0 after unwinding when a mapping failed.
 */
export function tnic_tx_map(a: TnicAdapter, skb: SkBuff, first: number): number {
  const r = a.tx_ring
  const dev = a.pdev.dev
  let i = first
  let count = 0
  let bi: TnicTxBuffer
  let len = skb_headlen(skb)
  let offset = 0
  const fail = (): number => {
    netdev_err(a.netdev, 'TX DMA map failed')
    // The slot whose mapping failed holds nothing: it must not look queued to hang detection.
    bi.dma = 0 as DmaAddr
    bi.time_stamp = 0
    bi.next_to_watch = -1
    // Unwind the buffers mapped so far (the one that failed is not).
    while (count-- > 0) {
      if (i === 0) i = r.count
      i--
      tnic_unmap_and_free_tx_resource(a, r.buffer_info[i]!, 0)
    }
    return 0
  }
  for (;;) {
    bi = r.buffer_info[i]!
    const size = Math.min(len, TNIC_MAX_DATA_PER_TXD)
    bi.length = size
    bi.time_stamp = jiffies()
    bi.next_to_watch = i
    bi.mapped_as_page = false
    bi.dma = dma_map_single(dev, ptr_add(skb.data, offset), size, DMA_TO_DEVICE)
    if (dma_mapping_error(dev, bi.dma) !== 0) return fail()
    len -= size
    offset += size
    count++
    if (len === 0) break
    if (++i === r.count) i = 0
  }
  const shinfo = skb_shinfo(skb)
  for (let f = 0; f < shinfo.nr_frags; f++) {
    const frag = shinfo.frags[f]!
    len = skb_frag_size(frag)
    offset = 0
    while (len > 0) {
      if (++i === r.count) i = 0
      bi = r.buffer_info[i]!
      const size = Math.min(len, TNIC_MAX_DATA_PER_TXD)
      bi.length = size
      bi.time_stamp = jiffies()
      bi.next_to_watch = i
      bi.mapped_as_page = true
      bi.dma = skb_frag_dma_map(dev, frag, offset, size, DMA_TO_DEVICE)
      if (dma_mapping_error(dev, bi.dma) !== 0) return fail()
      len -= size
      offset += size
      count++
    }
  }
  // The skb is freed with the frame's last buffer; its first buffer watches the last descriptor.
  r.buffer_info[i]!.skb = skb
  r.buffer_info[i]!.segs = 1
  r.buffer_info[i]!.bytecount = skb.len
  r.buffer_info[first]!.next_to_watch = i
  return count
}

/** e1000_tx_queue: fills `count` descriptors, EOP | RS on the last, then hands them over. */
export function tnic_tx_queue(a: TnicAdapter, count: number): void {
  const r = a.tx_ring
  let i = r.next_to_use
  let desc = TX_DESC(r, i)
  while (count-- > 0) {
    const bi = r.buffer_info[i]!
    desc = TX_DESC(r, i)
    desc.buffer_addr = BigInt(bi.dma)
    desc.lower_data = ((E1000_TXD_CMD_IFCS << 24) | bi.length) >>> 0
    desc.upper_data = 0
    if (++i === r.count) i = 0
  }
  desc.lower_data = (desc.lower_data | (a.txd_cmd << 24)) >>> 0
  // The descriptors must be in memory before the device can see the new tail.
  dma_wmb()
  r.next_to_use = i
  writel(i, r.tail)
}

/** e1000_xmit_frame: ndo_start_xmit (atomic context). */
export function tnic_xmit_frame(skb: SkBuff, netdev: NetDevice<TnicAdapter>): netdev_tx_t {
  const a = netdev_priv(netdev)
  const r = a.tx_ring
  let count = txd_use_count(skb_headlen(skb))
  const shinfo = skb_shinfo(skb)
  for (let f = 0; f < shinfo.nr_frags; f++) count += txd_use_count(skb_frag_size(shinfo.frags[f]!))
  // Room for this frame plus the two descriptors the ring keeps free.
  if (tnic_maybe_stop_tx(netdev, r, count + 2) !== 0) return NETDEV_TX_BUSY
  const first = r.next_to_use
  const used = tnic_tx_map(a, skb, first)
  if (used === 0) {
    dev_kfree_skb_any(skb)
    r.buffer_info[first]!.time_stamp = 0
    r.next_to_use = first
    netdev.stats.tx_dropped++
    return NETDEV_TX_OK
  }
  tnic_tx_queue(a, used)
  // Stop now if the next frame might not fit, rather than fail it later.
  tnic_maybe_stop_tx(netdev, r, TNIC_MAX_SKB_FRAGS + 2)
  return NETDEV_TX_OK
}

/** e1000_clean_tx_irq: frees what the device has sent; false when there may be more. */
export function tnic_clean_tx_irq(a: TnicAdapter): boolean {
  const r = a.tx_ring
  const netdev = a.netdev
  let i = r.next_to_clean
  let count = 0
  let packets = 0
  let bytes = 0
  for (;;) {
    const eop = r.buffer_info[i]!.next_to_watch
    if (eop < 0 || count >= r.count) break
    if ((TX_DESC(r, eop).status & E1000_TXD_STAT_DD) === 0) break
    // Read the buffers' state only after seeing DD.
    dma_rmb()
    for (let cleaned = false; !cleaned; count++) {
      const bi = r.buffer_info[i]!
      cleaned = i === eop
      if (cleaned) {
        packets += bi.segs
        bytes += bi.bytecount
      }
      tnic_unmap_and_free_tx_resource(a, bi, 64)
      TX_DESC(r, i).upper_data = 0
      if (++i === r.count) i = 0
    }
  }
  r.next_to_clean = i
  if (count > 0 && netif_carrier_ok(netdev) && tnic_desc_unused(r) >= TNIC_TX_WAKE_THRESHOLD) {
    // Make the freed descriptors visible before checking the queue state (as e1000 does).
    smp_mb()
    if (netif_queue_stopped(netdev) && !a.down) {
      netif_wake_queue(netdev)
      a.restart_queue++
    }
  }
  if (a.detect_tx_hung) {
    // A frame queued for longer than the watchdog allows, with the transmitter not moving.
    a.detect_tx_hung = false
    const w = r.buffer_info[i]!
    if (w.time_stamp !== 0 && jiffies() - w.time_stamp > netdev.watchdog_timeo) {
      netdev_err(netdev, 'Detected Tx Unit Hang: TDH <%d> TDT <%d> next_to_use <%d> next_to_clean <%d>',
        readl(r.head), readl(r.tail), r.next_to_use, r.next_to_clean)
      tnic_dump(a)
      netif_stop_queue(netdev)
    }
  }
  netdev.stats.tx_packets += packets
  netdev.stats.tx_bytes += bytes
  return count < r.count
}

// ------------------------------------------------------------------------------ receive

/**
 * e1000_alloc_rx_buffers: gives `cleaned_count` buffers back to the device, mapping new ones where
 * a buffer was handed up, then moves the tail (one descriptor always stays empty).
 */
export function tnic_alloc_rx_buffers(a: TnicAdapter, cleaned_count: number): void {
  const r = a.rx_ring
  const dev = a.pdev.dev
  let i = r.next_to_use
  while (cleaned_count-- > 0) {
    const bi = r.buffer_info[i]!
    if (bi.skb === null) {
      const skb = netdev_alloc_skb_ip_align(a.netdev, a.rx_buffer_len)
      if (skb === null) {
        a.alloc_rx_buff_failed++
        break
      }
      const dma = dma_map_single(dev, skb.data, a.rx_buffer_len, DMA_FROM_DEVICE)
      if (dma_mapping_error(dev, dma) !== 0) {
        dev_kfree_skb_any(skb)
        a.alloc_rx_buff_failed++
        break
      }
      bi.skb = skb
      bi.dma = dma
    }
    RX_DESC(r, i).buffer_addr = BigInt(bi.dma)
    if (++i === r.count) i = 0
  }
  if (r.next_to_use !== i) {
    r.next_to_use = i
    // The descriptors must be in memory before the device can see the new tail.
    dma_wmb()
    writel(i, r.tail)
  }
}

/** e1000_clean_rx_irq: hands received frames up; false when nothing was cleaned. */
export function tnic_clean_rx_irq(a: TnicAdapter, work: { done: number }, budget: number): boolean {
  const r = a.rx_ring
  const netdev = a.netdev
  const dev = a.pdev.dev
  let i = r.next_to_clean
  let cleaned_count = 0
  let cleaned = false
  let packets = 0
  let bytes = 0
  let desc = RX_DESC(r, i)
  while ((desc.status & E1000_RXD_STAT_DD) !== 0) {
    if (work.done >= budget) break
    work.done++
    // Read the rest of the descriptor and the buffer only after seeing DD.
    dma_rmb()
    const status = desc.status
    const length = desc.length
    const errors = desc.errors
    const bi = r.buffer_info[i]!
    if (++i === r.count) i = 0
    cleaned = true
    cleaned_count++
    next: {
      // All receives fit into one buffer: a frame without EOP, and the rest of it, is dropped.
      if ((status & E1000_RXD_STAT_EOP) === 0) a.discarding = true
      if (a.discarding) {
        if ((status & E1000_RXD_STAT_EOP) !== 0) a.discarding = false
        netdev.stats.rx_length_errors++
        break next
      }
      if ((errors & E1000_RXD_ERR_FRAME_ERR_MASK) !== 0) {
        netdev.stats.rx_errors++
        break next
      }
      // The device wrote the length: never trust it beyond the buffer.
      if (length < 14 || length > a.rx_buffer_len) {
        a.rx_length_errors++
        netdev.stats.rx_length_errors++
        break next
      }
      let skb: SkBuff | null = null
      if (length <= a.copybreak) {
        skb = napi_alloc_skb(a.napi, length)
        if (skb !== null) {
          // copybreak: copy the frame out and give the buffer straight back to the device.
          dma_sync_single_for_cpu(dev, bi.dma, length, DMA_FROM_DEVICE)
          skb_put_data(skb, bi.skb!.data, length)
          dma_sync_single_for_device(dev, bi.dma, length, DMA_FROM_DEVICE)
        }
      }
      if (skb === null) {
        // Hand the whole buffer up; alloc_rx_buf maps a new one.
        dma_unmap_single(dev, bi.dma, a.rx_buffer_len, DMA_FROM_DEVICE)
        skb = bi.skb!
        bi.skb = null
        bi.dma = 0 as DmaAddr
        skb_put(skb, length)
      }
      packets++
      bytes += length
      skb.protocol = eth_type_trans(skb, netdev)
      napi_gro_receive(a.napi, skb)
    }
    // The descriptor goes back to the device with its status cleared.
    desc.status = 0
    if (cleaned_count >= TNIC_RX_BUFFER_WRITE) {
      r.next_to_clean = i
      a.alloc_rx_buf(a, cleaned_count)
      cleaned_count = 0
    }
    desc = RX_DESC(r, i)
  }
  r.next_to_clean = i
  const unused = tnic_desc_unused(r)
  if (unused > 0) a.alloc_rx_buf(a, unused)
  netdev.stats.rx_packets += packets
  netdev.stats.rx_bytes += bytes
  return cleaned
}

/** e1000_dump: both rings, with head, tail and the driver's next_to_use / next_to_clean. */
export function tnic_dump(a: TnicAdapter): void {
  const netdev = a.netdev
  const t = a.tx_ring
  netdev_info(netdev, 'Tx Ring Summary: TDH %d TDT %d NTU %d NTC %d', readl(t.head), readl(t.tail), t.next_to_use, t.next_to_clean)
  netdev_info(netdev, 'T [desc]  [address 63:0  ] [lower   ] [upper   ] leng ntw  timestamp')
  for (let i = 0; i < t.count; i++) {
    const d = TX_DESC(t, i)
    const bi = t.buffer_info[i]!
    if (bi.time_stamp === 0 && i !== t.next_to_use && i !== t.next_to_clean) continue
    const mark = i === t.next_to_use && i === t.next_to_clean ? ' NTC/U' : i === t.next_to_use ? ' NTU' : i === t.next_to_clean ? ' NTC' : ''
    netdev_info(netdev, 'T [0x%03x] %016llx %08x %08x %04x %3d %d%s', i, d.buffer_addr, d.lower_data, d.upper_data, bi.length, bi.next_to_watch, bi.time_stamp, mark)
  }
  const r = a.rx_ring
  netdev_info(netdev, 'Rx Ring Summary: RDH %d RDT %d NTU %d NTC %d', readl(r.head), readl(r.tail), r.next_to_use, r.next_to_clean)
}
