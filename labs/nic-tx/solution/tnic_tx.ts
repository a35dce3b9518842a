/**
 * tnic_tx: the transmit path of the tnic NIC (datasheet docs/devices/tnic.md §5-§7), as in Linux's
 * e1000_xmit_frame / e1000_tx_map / e1000_tx_queue / e1000_clean_tx_irq, for one-buffer frames.
 *
 * The rest of the driver (probe, rings, interrupts, NAPI, receive) is dmalab's reference tnic
 * driver; it calls lab_xmit() for every frame the stack sends (atomic context) and lab_clean_tx()
 * from its NAPI poll (softirq context) after a TX interrupt. Its teardown frees whatever
 * buffer_info still holds, so keep the fields below as documented.
 */
import {
  DMA_TO_DEVICE, NETDEV_TX_BUSY, NETDEV_TX_OK, defineStruct, dev_kfree_skb_any, dma_map_single,
  dma_mapping_error, dma_rmb, dma_unmap_single, dma_wmb, jiffies, napi_consume_skb, netdev_priv,
  netif_carrier_ok, netif_queue_stopped, netif_stop_queue, netif_wake_queue, skb_headlen, smp_mb, writel,
  type CpuAddr, type DmaAddr, type IoAddr, type NetDevice, type PciDev, type SkBuff, type netdev_tx_t,
} from 'dmalab'
import { TNIC_TXD_CMD_IFCS, TNIC_TXD_STAT_DD } from 'dmalab/devices'

// ---------------------------------------------------------------- what the reference driver gives you

/** struct e1000_tx_desc (legacy): 16 bytes in the coherent ring (datasheet §5). */
export const tx_desc = defineStruct('tx_desc', {
  buffer_addr: { offset: 0, type: 'u64' },
  /** cmd << 24 | cso << 16 | length */
  lower_data: { offset: 8, type: 'u32' },
  /** special << 16 | css << 8 | status (the device sets DD in status when it has sent the buffer) */
  upper_data: { offset: 12, type: 'u32' },
  status: { offset: 12, type: 'u8' },
})

/** One slot of the ring's software state (e1000_tx_buffer). */
export interface TxBuffer {
  skb: SkBuff | null // the frame, held until the device has sent it
  dma: DmaAddr // its mapping (0: none)
  length: number // the mapped length
  time_stamp: number // jiffies() when queued, 0 when free (the watchdog's hang detection)
  next_to_watch: number // index of the frame's last descriptor; -1 when the slot is free
  mapped_as_page: boolean // false: dma_map_single
  segs: number // 1 for a queued frame
  bytecount: number // skb.len, for the statistics
}

/** The TX ring (e1000_tx_ring): `count` descriptors at `desc` (coherent; bus address `dma`). */
export interface TxRing {
  desc: CpuAddr
  dma: DmaAddr
  count: number
  next_to_use: number // the next slot to fill
  next_to_clean: number // the oldest slot not yet cleaned
  buffer_info: TxBuffer[]
  tail: IoAddr // TDT
}

/** What the transmit path uses of the driver's state (netdev_priv(netdev)). */
export interface TxAdapter {
  netdev: NetDevice
  pdev: PciDev
  tx_ring: TxRing
  /** EOP | RS: the command bits of a frame's last descriptor. */
  txd_cmd: number
  down: boolean
}

/** Free descriptors (one always stays empty, so that head === tail means empty). */
export function tx_unused(r: TxRing): number {
  return r.next_to_clean > r.next_to_use ? r.next_to_clean - r.next_to_use - 1 : r.count + r.next_to_clean - r.next_to_use - 1
}

const TX_WAKE_THRESHOLD = 8

// ---------------------------------------------------------------- the lab

/** ndo_start_xmit (atomic context): queue one frame, one descriptor. */
export function lab_xmit(skb: SkBuff, netdev: NetDevice): netdev_tx_t {
  const a = netdev_priv(netdev) as TxAdapter
  const r = a.tx_ring
  const dev = a.pdev.dev
  if (tx_unused(r) < 1) {
    netif_stop_queue(netdev)
    return NETDEV_TX_BUSY
  }
  const i = r.next_to_use
  const bi = r.buffer_info[i]!
  const len = skb_headlen(skb)
  const dma = dma_map_single(dev, skb.data, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, dma) !== 0) {
    dev_kfree_skb_any(skb)
    netdev.stats.tx_dropped++
    return NETDEV_TX_OK
  }
  bi.skb = skb
  bi.dma = dma
  bi.length = len
  bi.mapped_as_page = false
  bi.time_stamp = jiffies()
  bi.next_to_watch = i
  bi.segs = 1
  bi.bytecount = skb.len
  const desc = tx_desc.at(r.desc, i)
  desc.buffer_addr = BigInt(dma)
  desc.lower_data = (((TNIC_TXD_CMD_IFCS | a.txd_cmd) << 24) | len) >>> 0
  desc.upper_data = 0
  const next = i + 1 === r.count ? 0 : i + 1
  // The descriptor must be in memory before the device can see the new tail.
  dma_wmb()
  r.next_to_use = next
  writel(next, r.tail)
  if (tx_unused(r) < 1) netif_stop_queue(netdev)
  return NETDEV_TX_OK
}

/** NAPI poll, TX half (softirq): frees what the device has sent; false when there may be more. */
export function lab_clean_tx(a: TxAdapter): boolean {
  const r = a.tx_ring
  const dev = a.pdev.dev
  let i = r.next_to_clean
  let count = 0
  let bytes = 0
  while (count < r.count) {
    const bi = r.buffer_info[i]!
    if (bi.next_to_watch < 0) break
    const desc = tx_desc.at(r.desc, bi.next_to_watch)
    if ((desc.status & TNIC_TXD_STAT_DD) === 0) break
    dma_rmb() // nothing of the slot is read before DD was seen
    dma_unmap_single(dev, bi.dma, bi.length, DMA_TO_DEVICE)
    bi.dma = 0 as DmaAddr
    bytes += bi.bytecount
    if (bi.skb !== null) napi_consume_skb(bi.skb, 64)
    bi.skb = null
    bi.time_stamp = 0
    bi.next_to_watch = -1
    desc.upper_data = 0
    count++
    i = i + 1 === r.count ? 0 : i + 1
  }
  r.next_to_clean = i
  a.netdev.stats.tx_packets += count
  a.netdev.stats.tx_bytes += bytes
  if (count > 0 && netif_carrier_ok(a.netdev) && tx_unused(r) >= TX_WAKE_THRESHOLD) {
    smp_mb()
    if (netif_queue_stopped(a.netdev) && !a.down) netif_wake_queue(a.netdev)
  }
  return count < r.count
}
