/**
 * tnic_rx: the receive path of the tnic NIC (datasheet docs/devices/tnic.md §3, §4 and §8), as in
 * Linux's e1000_alloc_rx_buffers / e1000_clean_rx_irq: every frame fits one 2 KiB buffer.
 *
 * The rest of the driver (probe, rings, interrupts, NAPI, transmit) is dmalab's reference tnic
 * driver; it calls lab_alloc_rx() when the interface comes up (to fill the ring) and
 * lab_clean_rx() from its NAPI poll (softirq context) after an RX interrupt. Its teardown unmaps
 * and frees whatever buffer_info still holds, so keep the fields below as documented.
 *
 * LAB SKELETON: write lab_alloc_rx and lab_clean_rx (the TODOs), then
 * `dmalab lab check nic-rx <this folder>`. Stuck? `dmalab lab hint nic-rx [n]`.
 */
// What you will need (add it to the imports as you go):
//   from 'dmalab': DMA_FROM_DEVICE, dev_kfree_skb_any, dma_map_single, dma_mapping_error, dma_rmb,
//     dma_sync_single_for_cpu, dma_sync_single_for_device, dma_unmap_single, dma_wmb, eth_type_trans,
//     napi_alloc_skb, napi_gro_receive, netdev_alloc_skb_ip_align, skb_put, skb_put_data, writel
//   from 'dmalab/devices': TNIC_RXD_ERR_FRAME_ERR_MASK, TNIC_RXD_STAT_DD, TNIC_RXD_STAT_EOP
import {
  defineStruct, type CpuAddr, type DmaAddr, type IoAddr, type NapiStruct, type NetDevice, type PciDev, type SkBuff,
} from 'dmalab'

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
export const RX_BUFFER_WRITE = 16
export const ETH_HLEN = 14

// ---------------------------------------------------------------- the lab

/** alloc_rx_buf: give `cleaned_count` slots from next_to_use back to the device, then move the tail. */
export function lab_alloc_rx(a: RxAdapter, cleaned_count: number): void {
  const r = a.rx_ring
  // TODO(1): for each of the cleaned_count slots from r.next_to_use (wrapping at r.count): if the
  //          slot has no skb, allocate one of a.rx_buffer_len bytes (netdev_alloc_skb_ip_align),
  //          map skb.data for the device to write, check the mapping (on failure: free the skb,
  //          a.alloc_rx_buff_failed++, stop), and record skb and dma in r.buffer_info[i].
  //          Write the buffer's bus address into rx_desc.at(r.desc, i).buffer_addr.
  // TODO(2): if any slot was filled: store next_to_use and write it to the tail register, so that
  //          the descriptors are in memory before the device sees the tail.
  void r
  void cleaned_count
}

/** clean_rx (NAPI poll, softirq): hands up to `budget` frames up; false when nothing was cleaned. */
export function lab_clean_rx(a: RxAdapter, work: { done: number }, budget: number): boolean {
  const r = a.rx_ring
  // TODO(3): from r.next_to_clean, while the descriptor's status has TNIC_RXD_STAT_DD and
  //          work.done < budget (work.done++ for each): order the reads of the rest of the
  //          descriptor after the read of DD, then take status, length and errors.
  // TODO(4): drop (and count) a frame without EOP, with a frame error, or whose length is below
  //          ETH_HLEN or above a.rx_buffer_len. Otherwise: up to a.copybreak bytes, copy it into
  //          napi_alloc_skb(a.napi, length) with the buffer synced for the CPU around the copy and
  //          given back to the device after; above, unmap the buffer and hand its skb up
  //          (skb_put(skb, length)). skb.protocol = eth_type_trans(skb, a.netdev);
  //          napi_gro_receive(a.napi, skb).
  // TODO(5): clear the descriptor's status, store next_to_clean, refill with
  //          lab_alloc_rx(a, rx_unused(r)) (also every RX_BUFFER_WRITE descriptors), add to
  //          a.netdev.stats.rx_packets / rx_bytes, and return whether anything was cleaned.
  void r
  void work
  void budget
  return false
}
