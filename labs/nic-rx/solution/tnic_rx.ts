/**
 * tnic_rx: the receive path of the tnic NIC (datasheet docs/devices/tnic.md §3, §4 and §8), as in
 * Linux's e1000_alloc_rx_buffers / e1000_clean_rx_irq: every frame fits one 2 KiB buffer.
 *
 * The rest of the driver (probe, rings, interrupts, NAPI, transmit) is dmalab's reference tnic
 * driver; it calls lab_alloc_rx() when the interface comes up (to fill the ring) and
 * lab_clean_rx() from its NAPI poll (softirq context) after an RX interrupt. Its teardown unmaps
 * and frees whatever buffer_info still holds, so keep the fields below as documented.
 */
import {
  DMA_FROM_DEVICE, dev_kfree_skb_any, defineStruct, dma_map_single, dma_mapping_error, dma_rmb,
  dma_sync_single_for_cpu, dma_sync_single_for_device, dma_unmap_single, dma_wmb, eth_type_trans,
  napi_alloc_skb, napi_gro_receive, netdev_alloc_skb_ip_align, skb_put, skb_put_data, writel,
  type CpuAddr, type DmaAddr, type IoAddr, type NapiStruct, type NetDevice, type PciDev, type SkBuff,
} from 'dmalab'
import { TNIC_RXD_ERR_FRAME_ERR_MASK, TNIC_RXD_STAT_DD, TNIC_RXD_STAT_EOP } from 'dmalab/devices'

// ---------------------------------------------------------------- what the reference driver gives you

/** struct e1000_rx_desc: 16 bytes in the coherent ring (datasheet §3). */
export const rx_desc = defineStruct('rx_desc', {
  buffer_addr: 'u64', // the driver's: the bus address of the buffer
  length: 'u16', // the device's: bytes written to the buffer
  csum: 'u16',
  status: 'u8', // the device's: DD (done), EOP (end of packet); written last
  errors: 'u8',
  special: 'u16',
})

/** One slot of the ring's software state (e1000_rx_buffer). */
export interface RxBuffer {
  skb: SkBuff | null // the buffer's skb (null: the slot has no buffer)
  dma: DmaAddr // its mapping, rx_buffer_len bytes DMA_FROM_DEVICE (0: none)
}

/** The RX ring (e1000_rx_ring): `count` descriptors at `desc` (coherent; bus address `dma`). */
export interface RxRing {
  desc: CpuAddr
  dma: DmaAddr
  count: number
  next_to_use: number // the next slot to give to the device
  next_to_clean: number // the next slot the device fills
  buffer_info: RxBuffer[]
  tail: IoAddr // RDT
}

/** What the receive path uses of the driver's state (netdev_priv(netdev)). */
export interface RxAdapter {
  netdev: NetDevice
  pdev: PciDev
  napi: NapiStruct
  rx_ring: RxRing
  /** 2048: every buffer's size, mapped whole. */
  rx_buffer_len: number
  /** 256: frames up to this length are copied out and their buffer given back at once. */
  copybreak: number
  /** A frame without EOP was seen: drop descriptors up to the next EOP. */
  discarding: boolean
  alloc_rx_buff_failed: number
  rx_length_errors: number
}

/** Slots without a buffer for the device (one always stays empty, so that head === tail means empty). */
export function rx_unused(r: RxRing): number {
  return r.next_to_clean > r.next_to_use ? r.next_to_clean - r.next_to_use - 1 : r.count + r.next_to_clean - r.next_to_use - 1
}

/** Refill every this many cleaned descriptors. */
const RX_BUFFER_WRITE = 16
const ETH_HLEN = 14

// ---------------------------------------------------------------- the lab

/** alloc_rx_buf: give `cleaned_count` slots from next_to_use back to the device, then move the tail. */
export function lab_alloc_rx(a: RxAdapter, cleaned_count: number): void {
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
    rx_desc.at(r.desc, i).buffer_addr = BigInt(bi.dma)
    i = i + 1 === r.count ? 0 : i + 1
  }
  if (r.next_to_use !== i) {
    r.next_to_use = i
    // The descriptors must be in memory before the device can see the new tail.
    dma_wmb()
    writel(i, r.tail)
  }
}

/** clean_rx (NAPI poll, softirq): hands up to `budget` frames up; false when nothing was cleaned. */
export function lab_clean_rx(a: RxAdapter, work: { done: number }, budget: number): boolean {
  const r = a.rx_ring
  const netdev = a.netdev
  const dev = a.pdev.dev
  let i = r.next_to_clean
  let cleaned_count = 0
  let cleaned = false
  let packets = 0
  let bytes = 0
  let desc = rx_desc.at(r.desc, i)
  while ((desc.status & TNIC_RXD_STAT_DD) !== 0) {
    if (work.done >= budget) break
    work.done++
    dma_rmb() // the length, the errors and the buffer only after DD was seen
    const status = desc.status
    const length = desc.length
    const errors = desc.errors
    const bi = r.buffer_info[i]!
    i = i + 1 === r.count ? 0 : i + 1
    cleaned = true
    cleaned_count++
    next: {
      if ((status & TNIC_RXD_STAT_EOP) === 0) a.discarding = true
      if (a.discarding) {
        if ((status & TNIC_RXD_STAT_EOP) !== 0) a.discarding = false
        netdev.stats.rx_length_errors++
        break next
      }
      if ((errors & TNIC_RXD_ERR_FRAME_ERR_MASK) !== 0) {
        netdev.stats.rx_errors++
        break next
      }
      // The device wrote the length: never trust it beyond the buffer.
      if (length < ETH_HLEN || length > a.rx_buffer_len) {
        a.rx_length_errors++
        netdev.stats.rx_length_errors++
        break next
      }
      let skb: SkBuff | null = null
      if (length <= a.copybreak) {
        skb = napi_alloc_skb(a.napi, length)
        if (skb !== null) {
          // Copy the frame out; the buffer goes straight back to the device.
          dma_sync_single_for_cpu(dev, bi.dma, length, DMA_FROM_DEVICE)
          skb_put_data(skb, bi.skb!.data, length)
          dma_sync_single_for_device(dev, bi.dma, length, DMA_FROM_DEVICE)
        }
      }
      if (skb === null) {
        // Hand the whole buffer up; lab_alloc_rx maps a new one for this slot.
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
    desc.status = 0 // back to the device with its status cleared
    if (cleaned_count >= RX_BUFFER_WRITE) {
      r.next_to_clean = i
      lab_alloc_rx(a, cleaned_count)
      cleaned_count = 0
    }
    desc = rx_desc.at(r.desc, i)
  }
  r.next_to_clean = i
  const unused = rx_unused(r)
  if (unused > 0) lab_alloc_rx(a, unused)
  netdev.stats.rx_packets += packets
  netdev.stats.rx_bytes += bytes
  return cleaned
}
