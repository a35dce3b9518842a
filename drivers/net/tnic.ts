/**
 * tnic: the reference driver for the tnic NIC (PCI 1de5:0e10; datasheet docs/devices/tnic.md),
 * written the way Linux's drivers/net/ethernet/intel/e1000/e1000_main.c is, legacy descriptors
 * and all:
 *
 * - probe/remove: managed PCI resources, a 64-bit DMA mask, bus mastering, one MSI-X vector or the
 *   shared INTx line, the MAC address from RAL0/RAH0, a net_device with NAPI;
 * - open/close (e1000_open, e1000_close, e1000_up/e1000_down): descriptor rings in coherent memory
 *   (dma_alloc_coherent), RX buffers streaming-mapped DMA_FROM_DEVICE, the ITR set for interrupt
 *   coalescing, interrupts masked while NAPI polls;
 * - transmit (e1000_xmit_frame, e1000_tx_map, e1000_tx_queue): the head and every page fragment
 *   mapped DMA_TO_DEVICE, mapping errors unwound, EOP | RS on the last descriptor, dma_wmb() and a
 *   tail write; the queue stops before the ring can fill and wakes from TX completion;
 * - receive (e1000_clean_rx_irq, e1000_alloc_rx_buffers): DD checked first, then dma_rmb() before
 *   the length and the buffer are read; small frames copied out after dma_sync_single_for_cpu and
 *   the buffer recycled after dma_sync_single_for_device (copybreak), large ones unmapped and
 *   handed up whole; status cleared before a descriptor is reused; lengths checked against the
 *   buffer (a device is not trusted); frames spanning descriptors discarded (all fit in 2 KiB);
 * - the watchdog (e1000_watchdog): link state to carrier, statistics, TX hang detection with an
 *   e1000_dump-style ring dump, and a reset from process context after a TX timeout.
 *
 * As in e1000, the receive path goes through function pointers in the adapter (`clean_rx`,
 * `alloc_rx_buf`), and so do the other hot paths here (`xmit`, `clean_tx`, `intr`), so that the
 * known-bad variants under test/fixtures/tnic-bad/ can replace one function each.
 */
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, EINVAL, ENOMEM, GFP_KERNEL, HZ, IRQF_SHARED, NETIF_F_SG, PCI_IRQ_INTX, PCI_IRQ_MSIX,
  INIT_WORK, SET_NETDEV_DEV, alloc_etherdev, del_timer_sync, dev_kfree_skb_any, dma_alloc_coherent, memset,
  dma_free_coherent, dma_set_mask_and_coherent, dma_unmap_single, eth_hw_addr_set, flush_work, free_irq, free_netdev,
  is_valid_ether_addr, jiffies, lower_32_bits, mod_timer, napi_disable, napi_enable, netdev_err, netdev_info,
  netdev_priv, netif_carrier_off, netif_carrier_ok, netif_carrier_on, netif_napi_add, netif_running,
  netif_start_queue, netif_stop_queue, pci_alloc_irq_vectors, pci_get_drvdata, pci_irq_vector, pci_set_drvdata,
  pci_set_master, pcim_enable_device, pcim_iomap_regions, pcim_iomap_table, register_netdev, request_irq,
  rtnl_lock, rtnl_unlock, schedule_work, timer_setup, unregister_netdev, upper_32_bits, dev_err, type CpuAddr,
  type DmaAddr, type NetDevice, type NetDeviceOps, type PciDev, type PciDeviceId, type PciDriver,
} from '../../kernel/index.js'
import {
  E1000_CTRL, E1000_CTRL_RST, E1000_CTRL_SLU, E1000_DESC_SIZE, E1000_GPRC, E1000_GPTC, E1000_ICS, E1000_ICR_RXDMT0, E1000_IMC,
  E1000_ITR, E1000_MPC, E1000_RAH0, E1000_RAH_AV, E1000_RAL0, E1000_RCTL, E1000_RCTL_BAM, E1000_RCTL_EN,
  E1000_RCTL_SECRC, E1000_RCTL_SZ_2048, E1000_RDBAH, E1000_RDBAL, E1000_RDH, E1000_RDLEN, E1000_RDT, E1000_RNBC,
  E1000_STATUS, E1000_STATUS_LU, E1000_TCTL, E1000_TCTL_EN, E1000_TCTL_PSP, E1000_TDBAH, E1000_TDBAL, E1000_TDH,
  E1000_TDLEN, E1000_TDT, E1000_TXD_CMD_EOP, E1000_TXD_CMD_RS, TNIC_DEVICE_ID, TNIC_VENDOR_ID,
} from './tnic_hw.js'
import {
  TNIC_DRV_NAME, TNIC_DEFAULT_TXD, TNIC_DEFAULT_RXD, TNIC_RXBUFFER_2048, TNIC_COPYBREAK, TNIC_DEFAULT_ITR,
  TNIC_WATCHDOG_JIFFIES, TNIC_MIN_TXD, TNIC_MIN_RXD, TNIC_MAX_DESC, type TnicAdapter, er32, ew32, tnic_desc_unused, new_tx_buffer, empty_ring,
} from './tnic_defs.js'
import {
  tnic_irq_disable, tnic_irq_enable, tnic_intr, tnic_clean, tnic_unmap_and_free_tx_resource, tnic_xmit_frame,
  tnic_clean_tx_irq, tnic_alloc_rx_buffers, tnic_clean_rx_irq,
} from './tnic_txrx.js'

export * from './tnic_hw.js'
export * from './tnic_defs.js'
export * from './tnic_txrx.js'

// ------------------------------------------------------------------------------ rings

function tnic_setup_tx_resources(a: TnicAdapter): number {
  const r = a.tx_ring
  r.size = r.count * E1000_DESC_SIZE
  const mem = dma_alloc_coherent(a.pdev.dev, r.size, GFP_KERNEL)
  if (mem === null) {
    netdev_err(a.netdev, 'Unable to allocate memory for the Tx descriptor ring')
    return -ENOMEM
  }
  r.desc = mem.cpu
  r.dma = mem.dma
  r.buffer_info = Array.from({ length: r.count }, new_tx_buffer)
  r.next_to_use = 0
  r.next_to_clean = 0
  return 0
}

function tnic_setup_rx_resources(a: TnicAdapter): number {
  const r = a.rx_ring
  r.size = r.count * E1000_DESC_SIZE
  const mem = dma_alloc_coherent(a.pdev.dev, r.size, GFP_KERNEL)
  if (mem === null) {
    netdev_err(a.netdev, 'Unable to allocate memory for the Rx descriptor ring')
    return -ENOMEM
  }
  r.desc = mem.cpu
  r.dma = mem.dma
  r.buffer_info = Array.from({ length: r.count }, () => ({ skb: null, dma: 0 as DmaAddr }))
  r.next_to_use = 0
  r.next_to_clean = 0
  return 0
}

function tnic_free_tx_resources(a: TnicAdapter): void {
  const r = a.tx_ring
  if (r.desc === 0) return
  dma_free_coherent(a.pdev.dev, r.size, r.desc, r.dma)
  r.desc = 0 as CpuAddr
  r.buffer_info = []
}

function tnic_free_rx_resources(a: TnicAdapter): void {
  const r = a.rx_ring
  if (r.desc === 0) return
  dma_free_coherent(a.pdev.dev, r.size, r.desc, r.dma)
  r.desc = 0 as CpuAddr
  r.buffer_info = []
}

/** e1000_clean_tx_ring: frees every buffer still queued (the device is stopped). */
function tnic_clean_tx_ring(a: TnicAdapter): void {
  const r = a.tx_ring
  for (const bi of r.buffer_info) tnic_unmap_and_free_tx_resource(a, bi, 0)
  // Zero out the descriptor ring: no stale DD survives into the next start.
  memset(r.desc, 0, r.size)
  r.next_to_use = 0
  r.next_to_clean = 0
}

/** e1000_clean_rx_ring: unmaps and frees every receive buffer (the device is stopped). */
function tnic_clean_rx_ring(a: TnicAdapter): void {
  const r = a.rx_ring
  for (const bi of r.buffer_info) {
    if (bi.dma !== 0) dma_unmap_single(a.pdev.dev, bi.dma, a.rx_buffer_len, DMA_FROM_DEVICE)
    bi.dma = 0 as DmaAddr
    dev_kfree_skb_any(bi.skb)
    bi.skb = null
  }
  // Zero out the descriptor ring: a write-back from before the reset must not look like a new frame.
  memset(r.desc, 0, r.size)
  r.next_to_use = 0
  r.next_to_clean = 0
  a.discarding = false
}

/** e1000_configure_tx / e1000_setup_rctl / e1000_configure_rx, then the first RX buffers. */
function tnic_configure(a: TnicAdapter): void {
  const t = a.tx_ring
  ew32(a, E1000_TDBAL, lower_32_bits(t.dma))
  ew32(a, E1000_TDBAH, upper_32_bits(t.dma))
  ew32(a, E1000_TDLEN, t.size)
  ew32(a, E1000_TDH, 0)
  ew32(a, E1000_TDT, 0)
  ew32(a, E1000_TCTL, E1000_TCTL_EN | E1000_TCTL_PSP)
  a.txd_cmd = E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS
  const r = a.rx_ring
  ew32(a, E1000_RCTL, 0)
  ew32(a, E1000_RDBAL, lower_32_bits(r.dma))
  ew32(a, E1000_RDBAH, upper_32_bits(r.dma))
  ew32(a, E1000_RDLEN, r.size)
  ew32(a, E1000_RDH, 0)
  ew32(a, E1000_RDT, 0)
  ew32(a, E1000_ITR, a.itr === 0 ? 0 : Math.round(1e9 / (a.itr * 256)))
  ew32(a, E1000_RCTL, E1000_RCTL_EN | E1000_RCTL_BAM | E1000_RCTL_SECRC | E1000_RCTL_SZ_2048)
  a.alloc_rx_buf(a, tnic_desc_unused(r))
}

/** e1000_reset: a full device reset (rings, interrupts and link configuration are lost). */
function tnic_reset_hw(a: TnicAdapter): void {
  ew32(a, E1000_CTRL, E1000_CTRL_RST)
  ew32(a, E1000_IMC, 0xffff_ffff)
}

// ------------------------------------------------------------------------------ up and down

/** e1000_up: the rings are allocated; start the hardware. */
function tnic_up(a: TnicAdapter): void {
  tnic_configure(a)
  a.down = false
  napi_enable(a.napi)
  tnic_irq_enable(a)
  netif_start_queue(a.netdev)
  ew32(a, E1000_CTRL, E1000_CTRL_SLU)
  // Check the link at once (an LSC interrupt will follow anyway) and every 2 s after.
  mod_timer(a.watchdog_timer, jiffies() + 1)
}

/** e1000_down: stop receiving, transmitting and polling, then reset and empty the rings. */
async function tnic_down(a: TnicAdapter): Promise<void> {
  const netdev = a.netdev
  a.down = true
  ew32(a, E1000_RCTL, er32(a, E1000_RCTL) & ~E1000_RCTL_EN)
  netif_carrier_off(netdev)
  netif_stop_queue(netdev)
  ew32(a, E1000_TCTL, er32(a, E1000_TCTL) & ~E1000_TCTL_EN)
  await napi_disable(a.napi)
  tnic_irq_disable(a)
  await del_timer_sync(a.watchdog_timer)
  tnic_reset_hw(a)
  tnic_clean_tx_ring(a)
  tnic_clean_rx_ring(a)
}

/** e1000_open: ndo_open (process context; nothing here needs to sleep). */
function tnic_open(netdev: NetDevice<TnicAdapter>): Promise<number> {
  return Promise.resolve(tnic_open_locked(netdev))
}

function tnic_open_locked(netdev: NetDevice<TnicAdapter>): number {
  const a = netdev_priv(netdev)
  netif_carrier_off(netdev)
  let err = tnic_setup_tx_resources(a)
  if (err !== 0) return err
  err = tnic_setup_rx_resources(a)
  if (err !== 0) {
    tnic_free_tx_resources(a)
    return err
  }
  err = request_irq(a.irq, a.intr, IRQF_SHARED, netdev.name, netdev)
  if (err !== 0) {
    netdev_err(netdev, 'Unable to allocate interrupt Error: %d', err)
    tnic_free_rx_resources(a)
    tnic_free_tx_resources(a)
    return err
  }
  tnic_up(a)
  return 0
}

/** e1000_close: ndo_stop. */
async function tnic_close(netdev: NetDevice<TnicAdapter>): Promise<number> {
  const a = netdev_priv(netdev)
  await tnic_down(a)
  await free_irq(a.irq, netdev)
  tnic_free_tx_resources(a)
  tnic_free_rx_resources(a)
  return 0
}

/** e1000_tx_timeout: ndo_tx_timeout (atomic); the reset runs from process context. */
function tnic_tx_timeout(netdev: NetDevice<TnicAdapter>): void {
  const a = netdev_priv(netdev)
  a.tx_timeout_count++
  schedule_work(a.reset_task)
}

/** e1000_reset_task: down and up again under the RTNL, after a TX timeout. */
async function tnic_reset_task(a: TnicAdapter): Promise<void> {
  await rtnl_lock()
  try {
    if (a.down || !netif_running(a.netdev)) return
    netdev_err(a.netdev, 'Reset adapter')
    await tnic_down(a)
    tnic_up(a)
  } finally {
    rtnl_unlock()
  }
}

/** e1000_update_stats: the device's read-to-clear counters into the netdev's statistics. */
function tnic_update_stats(a: TnicAdapter): void {
  const s = a.netdev.stats
  const mpc = er32(a, E1000_MPC)
  er32(a, E1000_RNBC)
  er32(a, E1000_GPRC)
  er32(a, E1000_GPTC)
  s.rx_missed_errors += mpc
}

/** e1000_watchdog: link, statistics and hang detection, every 2 s. */
function tnic_watchdog(a: TnicAdapter): void {
  const netdev = a.netdev
  if (a.down) return
  const link = (er32(a, E1000_STATUS) & E1000_STATUS_LU) !== 0
  if (link && !netif_carrier_ok(netdev)) {
    netdev_info(netdev, 'NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None')
    netif_carrier_on(netdev)
  } else if (!link && netif_carrier_ok(netdev)) {
    netdev_info(netdev, 'NIC Link is Down')
    netif_carrier_off(netdev)
  }
  tnic_update_stats(a)
  // Force detection of a hung transmitter, and an interrupt so that the rings get cleaned.
  a.detect_tx_hung = true
  ew32(a, E1000_ICS, E1000_ICR_RXDMT0)
  mod_timer(a.watchdog_timer, jiffies() + TNIC_WATCHDOG_JIFFIES)
}

// ------------------------------------------------------------------------------ probe and remove

const tnic_netdev_ops: NetDeviceOps<TnicAdapter> = {
  ndo_open: tnic_open,
  ndo_stop: tnic_close,
  ndo_start_xmit: (skb, netdev) => netdev_priv(netdev).xmit(skb, netdev),
  ndo_tx_timeout: tnic_tx_timeout,
}

/** The driver's hot paths, as probe installs them; known-bad variants override one. */
export type TnicPaths = Pick<TnicAdapter, 'clean_rx' | 'alloc_rx_buf' | 'clean_tx' | 'xmit' | 'intr'>

export const TNIC_PATHS: TnicPaths = {
  clean_rx: tnic_clean_rx_irq,
  alloc_rx_buf: tnic_alloc_rx_buffers,
  clean_tx: tnic_clean_tx_irq,
  xmit: tnic_xmit_frame,
  intr: tnic_intr,
}

/** Options a test or variant may change; the defaults are the reference driver. */
export interface TnicParams {
  readonly txd?: number
  readonly rxd?: number
  readonly copybreak?: number
  readonly itr?: number
  readonly paths?: Partial<TnicPaths>
  /** Skip pci_set_master (a known-bad variant). */
  readonly no_bus_master?: boolean
}

/** e1000_probe (nothing in it needs to sleep). */
function tnic_probe(pdev: PciDev, _id: PciDeviceId, params: TnicParams): Promise<number> {
  return Promise.resolve(tnic_probe_one(pdev, params))
}

function tnic_probe_one(pdev: PciDev, params: TnicParams): number {
  // Ring sizes as e1000_check_options checks them: multiples of 8 (RDLEN/TDLEN are multiples of
  // 128 bytes); TX needs room for a maximal frame (MAX_SKB_FRAGS + 2) below the wake threshold.
  const txd = params.txd ?? TNIC_DEFAULT_TXD
  const rxd = params.rxd ?? TNIC_DEFAULT_RXD
  if (!Number.isInteger(txd) || txd % 8 !== 0 || txd < TNIC_MIN_TXD || txd > TNIC_MAX_DESC) {
    dev_err(pdev.dev, 'Invalid TxDescriptors %d: a multiple of 8 from %d to %d', txd, TNIC_MIN_TXD, TNIC_MAX_DESC)
    return -EINVAL
  }
  if (!Number.isInteger(rxd) || rxd % 8 !== 0 || rxd < TNIC_MIN_RXD || rxd > TNIC_MAX_DESC) {
    dev_err(pdev.dev, 'Invalid RxDescriptors %d: a multiple of 8 from %d to %d', rxd, TNIC_MIN_RXD, TNIC_MAX_DESC)
    return -EINVAL
  }
  let err = pcim_enable_device(pdev)
  if (err !== 0) return err
  err = pcim_iomap_regions(pdev, 1 << 0, TNIC_DRV_NAME)
  if (err !== 0) return err
  err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64))
  if (err !== 0) {
    dev_err(pdev.dev, 'No usable DMA configuration, aborting')
    return err
  }
  if (params.no_bus_master !== true) pci_set_master(pdev)
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (nvec < 0) return nvec
  const hw_addr = pcim_iomap_table(pdev)[0]!
  const paths = { ...TNIC_PATHS, ...params.paths }
  const a = { pdev, hw_addr, irq: pci_irq_vector(pdev, 0), ...paths } as TnicAdapter
  const netdev = alloc_etherdev<TnicAdapter>(a)
  if (netdev === null) return -ENOMEM
  a.netdev = netdev
  a.tx_ring = empty_ring(a, txd, E1000_TDH, E1000_TDT)
  a.rx_ring = empty_ring(a, rxd, E1000_RDH, E1000_RDT)
  a.rx_buffer_len = TNIC_RXBUFFER_2048
  a.copybreak = params.copybreak ?? TNIC_COPYBREAK
  a.itr = params.itr ?? TNIC_DEFAULT_ITR
  a.txd_cmd = E1000_TXD_CMD_EOP | E1000_TXD_CMD_RS
  a.detect_tx_hung = false
  a.discarding = false
  a.down = true
  a.restart_queue = 0
  a.tx_timeout_count = 0
  a.alloc_rx_buff_failed = 0
  a.rx_length_errors = 0
  SET_NETDEV_DEV(netdev, pdev.dev)
  netdev.netdev_ops = tnic_netdev_ops
  netdev.watchdog_timeo = 5 * HZ
  netdev.features |= NETIF_F_SG
  netdev.irq = a.irq
  a.napi = netif_napi_add(netdev, null, (napi, budget) => tnic_clean(a, napi, budget), 64)
  a.watchdog_timer = timer_setup(null, () => tnic_watchdog(a))
  a.reset_task = INIT_WORK(null, () => tnic_reset_task(a))
  tnic_reset_hw(a)
  // No EEPROM: the MAC address is in RAL0/RAH0 after reset.
  const ral = er32(a, E1000_RAL0)
  const rah = er32(a, E1000_RAH0)
  const mac = new Uint8Array([ral & 0xff, (ral >>> 8) & 0xff, (ral >>> 16) & 0xff, ral >>> 24, rah & 0xff, (rah >>> 8) & 0xff])
  if ((rah & E1000_RAH_AV) === 0 || !is_valid_ether_addr(mac)) {
    dev_err(pdev.dev, 'Invalid MAC Address')
    free_netdev(netdev)
    return -5 // -EIO
  }
  eth_hw_addr_set(netdev, mac)
  netif_carrier_off(netdev)
  err = register_netdev(netdev)
  if (err !== 0) {
    free_netdev(netdev)
    return err
  }
  pci_set_drvdata(pdev, netdev)
  netdev_info(netdev, '(PCI:%s) %pM', pdev.name, mac)
  return 0
}

/** e1000_remove */
async function tnic_remove(pdev: PciDev): Promise<void> {
  const netdev = pci_get_drvdata(pdev) as NetDevice<TnicAdapter>
  const a = netdev_priv(netdev)
  await unregister_netdev(netdev)
  await flush_work(a.reset_task)
  await del_timer_sync(a.watchdog_timer)
  free_netdev(netdev)
}

export const tnic_id_table: readonly PciDeviceId[] = [{ vendor: TNIC_VENDOR_ID, device: TNIC_DEVICE_ID }]

/** A tnic driver with the given parameters (a fresh object: one per system or per variant). */
export function tnic_make_driver(params: TnicParams = {}, name = TNIC_DRV_NAME): PciDriver {
  return {
    name,
    id_table: tnic_id_table,
    probe: (pdev, id) => tnic_probe(pdev, id, params),
    remove: tnic_remove,
  }
}

/** The reference driver. */
export const tnic_driver: PciDriver = tnic_make_driver()

/** The adapter behind a tnic net_device (tests and tools). */
export function tnic_adapter_of(netdev: NetDevice): TnicAdapter {
  return netdev_priv(netdev as NetDevice<TnicAdapter>)
}
