/**
 * Lab nic-tx: the transmit path of the tnic NIC (an e1000). The student writes lab_xmit (map the
 * frame, fill a descriptor, dma_wmb(), move the tail) and lab_clean_tx (DD, dma_rmb(), unmap, free,
 * wake the queue); the rest is dmalab's reference tnic driver, with a 64-descriptor ring so that
 * 100 frames wrap it.
 */
import { netUser } from '../../kernel/index.js'
import { ETH_P_TEST, Rng, TnicDevice, TrafficPeer, Wire, buildFrame, checkTestPayload, makeTestPayload } from '../../devices/index.js'
import { tnic_make_driver, type TnicPaths } from '../../drivers/net/tnic.js'
import { defineScenario } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction } from '../lab-api.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])
const FRAMES = 100
const TXD = 64

export default defineLab({
  id: 'nic-tx',
  title: 'NIC TX: a descriptor ring on the tnic (e1000)',
  summary:
    'Write the transmit path of the tnic NIC, as e1000_xmit_frame and e1000_clean_tx_irq do: map each frame DMA_TO_DEVICE, fill its ' +
    'descriptor in the coherent ring, dma_wmb(), move the tail; after the TX interrupt, find the descriptors the device marked done (DD), ' +
    'dma_rmb(), unmap and free the frames, wake the queue. The rest of the driver is the reference one. 100 frames go to an echo peer over ' +
    'a 64-descriptor ring; every echo is checked, on every platform.',
  entry: 'tnic_tx.ts',
  hints: [
    'Read docs/devices/tnic.md §5 (TX descriptors) and §7 (transmit): the device sends the descriptors from TDH up to TDT, sets DD in the status of those with RS, and raises TXDW. drivers/net/tnic_txrx.ts is the reference (with fragments, which you do not need: every frame here is one linear buffer of at most 1514 bytes).',
    'lab_xmit: dma_map_single(dev, skb.data, skb_headlen(skb), DMA_TO_DEVICE) and test it with dma_mapping_error() (on failure: dev_kfree_skb_any, tx_dropped++, NETDEV_TX_OK). Record the slot in buffer_info (skb, dma, length, time_stamp, next_to_watch = i, segs, bytecount) for the cleanup and the teardown.',
    'The descriptor: buffer_addr = BigInt(dma); lower_data = ((TNIC_TXD_CMD_IFCS | a.txd_cmd) << 24 | len) >>> 0; upper_data = 0. The ring is coherent memory: the descriptor must be in memory before the device sees the new tail. writel() orders it (it implies a write barrier); writel_relaxed() does not, and then needs dma_wmb() before it. e1000 writes dma_wmb(); writel(). Then next_to_use and the tail.',
    'Keep one descriptor empty (tx_unused() counts that for you). When the ring is full, netif_stop_queue() and return NETDEV_TX_BUSY; stop the queue after queuing when the next frame would not fit.',
    'lab_clean_tx: from next_to_clean, while the slot is in use (next_to_watch >= 0) and its descriptor has TNIC_TXD_STAT_DD: dma_rmb(), then dma_unmap_single(dev, bi.dma, bi.length, DMA_TO_DEVICE), napi_consume_skb(bi.skb, 64), clear the slot (dma 0, skb null, time_stamp 0, next_to_watch -1) and the descriptor status. Unmap only after DD: before it, the device may still be reading the frame.',
    'After cleaning: update next_to_clean and the stats (tx_packets, tx_bytes); if you cleaned something and the queue is stopped, smp_mb() and netif_wake_queue(netdev), or the stack never sends again.',
  ],
  scenario: (mod) => {
    const xmit = exportedFunction<TnicPaths['xmit']>(mod, 'lab_xmit')
    const cleanTx = exportedFunction<TnicPaths['clean_tx']>(mod, 'lab_clean_tx')
    return defineScenario({
      name: 'nic-tx',
      description: `${FRAMES} test frames through lab_xmit on a ${TXD}-descriptor ring to an echo peer; every echo is checked`,
      devices: () => [new TnicDevice({ name: 'tnic0' })] as const,
      driver: () => tnic_make_driver({ txd: TXD, paths: { xmit, clean_tx: cleanTx } }),
      async workload({ sys, devices: [nic], options }) {
        const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'echo', verify: 'none' })
        new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
        const net = netUser(sys)
        const rc = await net.ifup('eth0')
        if (rc !== 0) return { dataOk: false, summary: `ifup eth0 failed: ${rc}` }
        const until = sys.clock + 10_000_000
        await sys.runUntil(() => sys.clock >= until, { timeoutNs: 20_000_000 })
        const sock = net.socket('eth0', { capacity: FRAMES + 16 })
        const rng = new Rng(options.seed)
        let failed = ''
        for (let seq = 0; seq < FRAMES && failed === ''; seq++) {
          const len = 60 + rng.int(1514 - 60 + 1)
          const frame = buildFrame({ dst: PEER_MAC, src: nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len - 14, options.seed) })
          const sent = await net.send('eth0', frame)
          if (sent !== 0) failed = `send of frame ${seq} failed: ${sent}`
        }
        await sys.runUntil(() => sock.pending >= FRAMES, { timeoutNs: 200_000_000 }).catch(() => undefined)
        const seen = new Set<number>()
        let bad = 0
        for (let f = sock.recv(); f !== null; f = sock.recv()) {
          const c = checkTestPayload(f.data.subarray(14), options.seed)
          if (c.ok) seen.add(c.seq)
          else bad++
        }
        sock.close()
        await net.ifdown('eth0')
        const ok = failed === '' && seen.size === FRAMES && bad === 0
        return { dataOk: ok, summary: `${failed !== '' ? `${failed}; ` : ''}${FRAMES} frames sent, ${seen.size} echoed intact${bad > 0 ? `, ${bad} corrupt` : ''}` }
      },
    })
  },
  grading: {
    worksDefault: 20,
    worksEverywhere: 20,
    rules: [
      { title: 'the CPU leaves a frame alone while the device owns it', kinds: ['cpu-access-device-owned', 'device-access-cpu-owned', 'cacheline-shared'], points: 10 },
      { title: 'map each frame DMA_TO_DEVICE, check it, unmap it once with the same size and direction', kinds: ['map-error-unchecked', 'device-write-to-device-mapping', 'unmap-unknown', 'unmap-size-mismatch', 'unmap-direction-mismatch', 'unmap-type-mismatch', 'sync-unmapped', 'sync-out-of-range', 'sync-direction-mismatch', 'overlapping-mapping'], points: 15, hint: 'one map per frame in lab_xmit, one unmap per frame in lab_clean_tx, with the length you stored in buffer_info' },
      { title: 'barriers: the descriptor is in memory before the tail moves (dma_wmb(), writel())', kinds: ['missing-barrier', 'double-fetch'], points: 15, hint: 'the descriptor ring is coherent memory: a writel_relaxed() tail does not order the descriptor stores before it (hint 3)' },
      { title: 'frames are unmapped only after the device sent them, and nothing leaks', kinds: ['iommu-fault', 'leak', 'free-while-mapped', 'use-after-free', 'double-free'], points: 10, hint: 'unmap a frame in lab_clean_tx once its descriptor has DD, not in lab_xmit' },
    ],
    clean: 10,
  },
})
