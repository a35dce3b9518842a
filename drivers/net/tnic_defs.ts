/**
 * tnic driver structures (the e1000.h of drivers/net/ethernet/intel/e1000/): the adapter, the
 * rings and their buffers, tunables, register accessors. See drivers/net/tnic.ts.
 */
import {
  HZ, ptr_add, readl, writel, type CpuAddr, type DmaAddr, type IoAddr, type NapiStruct,
  type NetDevice, type PciDev, type SkBuff, type TimerList, type WorkStruct, type irqreturn_t, type netdev_tx_t,
} from '../../kernel/index.js'
import {
  e1000_rx_desc, e1000_tx_desc,
} from './tnic_hw.js'

export const TNIC_DRV_NAME = 'tnic'

/** Ring sizes (descriptors; multiples of 8, as RDLEN/TDLEN must be multiples of 128 bytes). */
export const TNIC_DEFAULT_TXD = 256
export const TNIC_DEFAULT_RXD = 256
/** Ring size limits: TX must hold a maximal frame plus the wake threshold. */
export const TNIC_MIN_TXD = 64
export const TNIC_MIN_RXD = 8
export const TNIC_MAX_DESC = 4096
/** Receive buffer size: RCTL.BSIZE 2048 holds any standard frame. */
export const TNIC_RXBUFFER_2048 = 2048
/** Frames up to this size are copied into a fresh skb and the buffer recycled (e1000's copybreak). */
export const TNIC_COPYBREAK = 256
/** Refill the RX ring every this many cleaned descriptors ("one at a time is too slow"). */
export const TNIC_RX_BUFFER_WRITE = 16
/** Bytes one TX descriptor carries at most (E1000_MAX_DATA_PER_TXD). */
export const TNIC_MAX_DATA_PER_TXD = 4096
/** Wake the queue once this many descriptors are free (E1000_TX_WAKE_THRESHOLD... kept small). */
export const TNIC_TX_WAKE_THRESHOLD = 32
/** Interrupts per second the ITR allows (e1000's default cap is 20000 with dynamic ITR). */
export const TNIC_DEFAULT_ITR = 20000
/** MAX_SKB_FRAGS + 2 as in e1000: room for any frame plus the gap the ring keeps. */
export const TNIC_MAX_SKB_FRAGS = 17
export const TNIC_WATCHDOG_JIFFIES = 2 * HZ

/** e1000_tx_buffer */
export interface TnicTxBuffer {
  skb: SkBuff | null
  dma: DmaAddr
  length: number
  /** jiffies when the buffer was queued (0: free), for hang detection. */
  time_stamp: number
  /** On a frame's first buffer: the index of its last (EOP) descriptor; -1 when none. */
  next_to_watch: number
  mapped_as_page: boolean
  segs: number
  bytecount: number
}

/** e1000_rx_buffer */
export interface TnicRxBuffer {
  skb: SkBuff | null
  dma: DmaAddr
}

/** e1000_tx_ring / e1000_rx_ring */
export interface TnicRing<B> {
  /** The descriptors (coherent memory), CPU and bus addresses, and their size in bytes. */
  desc: CpuAddr
  dma: DmaAddr
  size: number
  count: number
  next_to_use: number
  next_to_clean: number
  buffer_info: B[]
  /** Head and tail registers. */
  head: IoAddr
  tail: IoAddr
}

/** The driver's state: e1000_adapter, netdev_priv() of the net_device. */
export interface TnicAdapter {
  netdev: NetDevice<TnicAdapter>
  pdev: PciDev
  hw_addr: IoAddr
  napi: NapiStruct
  irq: number
  tx_ring: TnicRing<TnicTxBuffer>
  rx_ring: TnicRing<TnicRxBuffer>
  rx_buffer_len: number
  copybreak: number
  /** Interrupts per second the ITR allows; 0: no throttling. */
  itr: number
  txd_cmd: number
  /** Set by the watchdog; the next TX clean checks for a hung transmitter. */
  detect_tx_hung: boolean
  discarding: boolean
  /** __E1000_DOWN */
  down: boolean
  watchdog_timer: TimerList
  reset_task: WorkStruct
  restart_queue: number
  tx_timeout_count: number
  alloc_rx_buff_failed: number
  rx_length_errors: number
  /** The hot paths, as e1000's adapter->clean_rx / alloc_rx_buf function pointers. */
  clean_rx: (adapter: TnicAdapter, work: { done: number }, budget: number) => boolean
  alloc_rx_buf: (adapter: TnicAdapter, cleaned_count: number) => void
  clean_tx: (adapter: TnicAdapter) => boolean
  xmit: (skb: SkBuff, netdev: NetDevice<TnicAdapter>) => netdev_tx_t
  intr: (irq: number, data: unknown) => irqreturn_t
}

export const er32 = (a: TnicAdapter, reg: number): number => readl(ptr_add(a.hw_addr, reg))
export const ew32 = (a: TnicAdapter, reg: number, v: number): void => writel(v, ptr_add(a.hw_addr, reg))

export const TX_DESC = (r: TnicRing<TnicTxBuffer>, i: number) => e1000_tx_desc.at(r.desc, i)
export const RX_DESC = (r: TnicRing<TnicRxBuffer>, i: number) => e1000_rx_desc.at(r.desc, i)

/** E1000_DESC_UNUSED: descriptors the driver may fill, keeping one empty. */
export function tnic_desc_unused<B>(r: TnicRing<B>): number {
  return (r.next_to_clean > r.next_to_use ? 0 : r.count) + r.next_to_clean - r.next_to_use - 1
}

/** TXD_USE_COUNT */
export function txd_use_count(len: number): number {
  return Math.ceil(len / TNIC_MAX_DATA_PER_TXD)
}

export function new_tx_buffer(): TnicTxBuffer {
  return { skb: null, dma: 0 as DmaAddr, length: 0, time_stamp: 0, next_to_watch: -1, mapped_as_page: false, segs: 0, bytecount: 0 }
}

export function empty_ring<B>(a: { hw_addr: IoAddr }, count: number, head: number, tail: number): TnicRing<B> {
  return {
    desc: 0 as CpuAddr, dma: 0 as DmaAddr, size: 0, count, next_to_use: 0, next_to_clean: 0, buffer_info: [],
    head: ptr_add(a.hw_addr, head), tail: ptr_add(a.hw_addr, tail),
  }
}

