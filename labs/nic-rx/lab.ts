/**
 * Lab nic-rx: the receive path of the tnic NIC (an e1000). The student writes lab_alloc_rx (map a
 * buffer per slot DMA_FROM_DEVICE, check it, fill the descriptor, dma_wmb(), move the tail) and
 * lab_clean_rx (DD, dma_rmb(), validate the length, sync and copy or unmap and hand up, clear the
 * status, refill); the rest is dmalab's reference tnic driver, with a 64-descriptor RX ring so that
 * 200 frames wrap it three times.
 */
import { netUser } from '../../kernel/index.js'
import { TnicDevice, TrafficPeer, Wire, checkTestPayload } from '../../devices/index.js'
import { tnic_make_driver, type TnicPaths } from '../../drivers/net/tnic.js'
import { defineScenario } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction } from '../lab-api.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x98])
const FRAMES = 200
const RXD = 64

export default defineLab({
  id: 'nic-rx',
  title: 'NIC RX: buffers, DD and refill on the tnic (e1000)',
  summary:
    'Write the receive path of the tnic NIC, as e1000_alloc_rx_buffers and e1000_clean_rx_irq do: map a 2 KiB buffer per descriptor ' +
    'DMA_FROM_DEVICE, check it, write its address, dma_wmb(), move the tail; after the RX interrupt, take the descriptors the device marked ' +
    'done (DD), dma_rmb() before the length, check the length against the buffer, copy small frames out between dma_sync_single_for_cpu() ' +
    'and dma_sync_single_for_device() or unmap large ones and hand them up, clear the status, refill. The rest of the driver is the reference ' +
    'one. A peer sends 200 frames of 60 to 1514 bytes over a 64-descriptor ring; every frame is checked, in order, on every platform.',
  entry: 'tnic_rx.ts',
  hints: [
    'Read docs/devices/tnic.md §3 (descriptors), §4 (rings) and §8 (receive): the device fills the buffers from RDH up to, not including, RDT, writes the length and errors, then the status with DD, and raises RXT0. The driver walkthrough is docs/drivers/tnic.md; drivers/net/tnic_txrx.ts (tnic_alloc_rx_buffers, tnic_clean_rx_irq) is the reference.',
    'lab_alloc_rx: for each slot from next_to_use, if it has no skb: netdev_alloc_skb_ip_align(a.netdev, a.rx_buffer_len), dma_map_single(dev, skb.data, a.rx_buffer_len, DMA_FROM_DEVICE), dma_mapping_error() (on failure free the skb, alloc_rx_buff_failed++, stop). Write buffer_addr = BigInt(dma) into the descriptor. Then next_to_use = i, dma_wmb(), writel(i, r.tail): never writel_relaxed() alone, and never move the tail onto the head (fill at most rx_unused(r) slots).',
    'lab_clean_rx: loop while the descriptor at next_to_clean has TNIC_RXD_STAT_DD (and work.done < budget; work.done++ per descriptor). DD is written last: dma_rmb() after seeing it and before reading length, errors or the buffer, or arm64 and riscv64 may read the previous lap\'s length.',
    'The length comes from the device: drop the frame (rx_length_errors++) if it is below 14 or above a.rx_buffer_len, or if EOP is missing, or if errors has a TNIC_RXD_ERR_FRAME_ERR_MASK bit. Up to a.copybreak bytes: napi_alloc_skb(a.napi, length), dma_sync_single_for_cpu(), skb_put_data(skb, bi.skb.data, length), dma_sync_single_for_device() (the buffer stays mapped). Above: dma_unmap_single(dev, bi.dma, a.rx_buffer_len, DMA_FROM_DEVICE), skb_put(bi.skb, length), clear the slot. Then skb.protocol = eth_type_trans(skb, netdev) and napi_gro_receive(a.napi, skb).',
    'Clear desc.status before the slot goes back to the device (or the next lap sees a stale DD), store next_to_clean, and refill with lab_alloc_rx(a, rx_unused(r)) (every 16 descriptors too, so the device never runs dry). Add rx_packets and rx_bytes; return whether anything was cleaned.',
  ],
  scenario: (mod) => {
    const allocRx = exportedFunction<TnicPaths['alloc_rx_buf']>(mod, 'lab_alloc_rx')
    const cleanRx = exportedFunction<TnicPaths['clean_rx']>(mod, 'lab_clean_rx')
    return defineScenario({
      name: 'nic-rx',
      description: `a peer sends ${FRAMES} test frames to the NIC over a ${RXD}-descriptor RX ring; every frame is checked, in order`,
      devices: () => [new TnicDevice({ name: 'tnic0' })] as const,
      driver: () => tnic_make_driver({ rxd: RXD, paths: { alloc_rx_buf: allocRx, clean_rx: cleanRx } }),
      async workload({ sys, devices: [nic], options }) {
        const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'generator', seed: options.seed })
        new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
        const net = netUser(sys)
        const rc = await net.ifup('eth0')
        if (rc !== 0) return { dataOk: false, summary: `ifup eth0 failed: ${rc}` }
        const until = sys.clock + 10_000_000
        await sys.runUntil(() => sys.clock >= until, { timeoutNs: 20_000_000 })
        const sock = net.socket('eth0', { capacity: FRAMES + 16 })
        peer.send(FRAMES, { dst: nic.mac, minSize: 60, maxSize: 1514, intervalNs: 5_000 })
        await sys.runUntil(() => sock.pending >= FRAMES, { timeoutNs: 50_000_000 }).catch(() => undefined)
        const seqs: number[] = []
        let bad = 0
        for (let f = sock.recv(); f !== null; f = sock.recv()) {
          const c = checkTestPayload(f.data.subarray(14), options.seed)
          if (c.ok) seqs.push(c.seq)
          else bad++
        }
        sock.close()
        await net.ifdown('eth0')
        const inOrder = seqs.every((s, k) => s === k)
        const ok = seqs.length === FRAMES && inOrder && bad === 0
        return {
          dataOk: ok,
          summary: `${FRAMES} frames sent, ${seqs.length} received intact${inOrder ? '' : ' (out of order)'}${bad > 0 ? `, ${bad} corrupt` : ''}`,
        }
      },
    })
  },
  grading: {
    worksDefault: 20,
    worksEverywhere: 20,
    rules: [
      { title: 'the CPU reads a buffer only after dma_sync_single_for_cpu() or the unmap', kinds: ['cpu-access-device-owned', 'device-access-cpu-owned', 'cacheline-shared'], points: 15, hint: 'copybreak frames: dma_sync_single_for_cpu() before skb_put_data(), dma_sync_single_for_device() after (hint 4)' },
      { title: 'map each buffer DMA_FROM_DEVICE, check it, unmap it once with the same size and direction', kinds: ['map-error-unchecked', 'device-write-to-device-mapping', 'unmap-unknown', 'unmap-size-mismatch', 'unmap-direction-mismatch', 'unmap-type-mismatch', 'sync-unmapped', 'sync-out-of-range', 'sync-direction-mismatch', 'overlapping-mapping'], points: 15, hint: 'one map per buffer in lab_alloc_rx (rx_buffer_len bytes), one unmap of the same size when the buffer is handed up (hint 2)' },
      { title: 'barriers: dma_rmb() after DD, dma_wmb() before the tail', kinds: ['missing-barrier', 'double-fetch'], points: 15, hint: 'DD is written last: read the length only after dma_rmb() (hint 3); descriptors before the tail: dma_wmb(), writel() (hint 2)' },
      { title: 'the ring: the tail never reaches the head, stale DDs are cleared, nothing leaks', kinds: ['device-error', 'iommu-fault', 'leak', 'free-while-mapped', 'use-after-free', 'double-free'], points: 5, hint: 'fill at most rx_unused(r) slots and clear desc.status before a slot goes back (hint 5)' },
    ],
    clean: 10,
  },
})
