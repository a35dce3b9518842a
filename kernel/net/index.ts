/**
 * The network subsystem (DESIGN.md §5 "Subsystems: net"): what drivers use, and the harness's
 * networking user space (`netUser`). See docs/net.md.
 */

export {
  ETH_ALEN, ETH_HLEN, ETH_ZLEN, ETH_DATA_LEN, ETH_FRAME_LEN, ETH_FCS_LEN, ETH_MIN_MTU, ETH_MAX_MTU, VLAN_HLEN,
  ETH_P_LOOP, ETH_P_IP, ETH_P_ARP, ETH_P_8021Q, ETH_P_IPV6, ETH_P_802_3_MIN, ETH_P_ALL, ETH_P_802_3, ETH_P_802_2,
  ARPHRD_ETHER, NET_ADDR_PERM, NET_ADDR_RANDOM, NET_ADDR_SET,
  EADDRNOTAVAIL, ENETDOWN, ENETUNREACH, ENOBUFS, EMSGSIZE, EHOSTUNREACH,
  htons, ntohs, htonl, ntohl,
  is_zero_ether_addr, is_multicast_ether_addr, is_broadcast_ether_addr, is_valid_ether_addr, ether_addr_equal,
  ether_addr_copy, eth_random_addr, eth_hw_addr_set, eth_hw_addr_random, eth_validate_addr, eth_type_trans, formatMac,
} from './eth.js'
export {
  NET_SKB_PAD, SMP_CACHE_BYTES, MAX_SKB_FRAGS, SKB_DATA_ALIGN, NET_IP_ALIGN,
  PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST, PACKET_OUTGOING,
  CHECKSUM_NONE, CHECKSUM_UNNECESSARY, CHECKSUM_COMPLETE, CHECKSUM_PARTIAL,
  SkBuff, skb_shinfo,
  alloc_skb, __netdev_alloc_skb, netdev_alloc_skb, dev_alloc_skb, netdev_alloc_skb_ip_align, napi_alloc_skb,
  kfree_skb, consume_skb, dev_kfree_skb, dev_kfree_skb_irq, dev_consume_skb_irq, dev_kfree_skb_any, dev_consume_skb_any,
  napi_consume_skb,
  skb_tail_pointer, skb_end_pointer, skb_headlen, skb_is_nonlinear, skb_headroom, skb_tailroom,
  skb_put, skb_put_data, skb_put_zero, skb_reserve, skb_push, skb_pull, skb_trim,
  skb_reset_mac_header, skb_mac_header, skb_mac_header_was_set, eth_hdr, skb_reset_network_header,
  skb_set_network_header, skb_network_header, skb_reset_transport_header, skb_transport_header,
  skb_checksum_none_assert, skb_record_rx_queue, skb_get_queue_mapping, skb_tx_timestamp,
  skb_frag_size, skb_frag_size_set, skb_frag_off, skb_frag_page, skb_frag_address, skb_frag_dma_map,
  skb_fill_page_desc, skb_add_rx_frag, skb_copy_bits, skb_linearize, skb_put_padto, skb_padto, eth_skb_pad,
  type SkbFrag, type skb_frag_t, type SkbSharedInfo,
} from './skbuff.js'
export {
  NETDEV_TX_OK, NETDEV_TX_BUSY, IFF_UP, IFF_BROADCAST, IFF_LOOPBACK, IFF_RUNNING, IFF_NOARP, IFF_PROMISC, IFF_MULTICAST,
  IFF_LOWER_UP, NETIF_F_SG, NETIF_F_IP_CSUM, NETIF_F_HW_CSUM, NETIF_F_HIGHDMA, NETIF_F_RXCSUM,
  NETREG_UNINITIALIZED, NETREG_REGISTERED, NETREG_UNREGISTERING, NETREG_UNREGISTERED, NETREG_RELEASED,
  IFNAMSIZ, DEFAULT_TX_QUEUE_LEN,
  NetDevice, alloc_etherdev, devm_alloc_etherdev, netdev_priv, SET_NETDEV_DEV, register_netdev, unregister_netdev,
  free_netdev, rtnl_lock, rtnl_unlock, rtnl_is_locked, ASSERT_RTNL, dev_open, dev_close,
  netif_running, netif_carrier_ok, netif_carrier_on, netif_carrier_off, netif_device_present, netif_device_detach,
  netif_device_attach, netdev_get_tx_queue, netif_start_queue, netif_stop_queue, netif_wake_queue, netif_queue_stopped,
  netif_tx_stop_all_queues, netif_tx_wake_all_queues, netif_tx_start_all_queues, netif_tx_disable, netif_trans_update,
  dev_get_stats, netdev_err, netdev_crit, netdev_warn, netdev_notice, netdev_info, netdev_dbg,
  type netdev_tx_t, type NetDeviceOps, type NetDeviceStats, type NetdevQueue,
} from './netdevice.js'
export {
  NAPI_POLL_WEIGHT, NETDEV_BUDGET, NAPI_STATE_SCHED, NAPI_STATE_MISSED, NAPI_STATE_DISABLE, NAPI_STATE_NPSVC,
  NAPI_STATE_LISTED, NAPIF_STATE_SCHED, NAPIF_STATE_MISSED, NAPIF_STATE_DISABLE, NAPIF_STATE_NPSVC, NAPIF_STATE_LISTED,
  netif_napi_add, netif_napi_add_weight, netif_napi_del, __netif_napi_del, napi_enable, napi_disable,
  napi_schedule_prep, __napi_schedule, __napi_schedule_irqoff, napi_schedule, napi_schedule_irqoff, napi_is_scheduled,
  napi_complete_done, napi_complete,
  type NapiStruct, type NapiPoll,
} from './napi.js'
export {
  NET_XMIT_SUCCESS, NET_XMIT_DROP, NET_XMIT_CN, NET_RX_SUCCESS, NET_RX_DROP,
  GRO_MERGED, GRO_MERGED_FREE, GRO_HELD, GRO_NORMAL, GRO_CONSUMED, DEV_TX_WEIGHT,
  dev_queue_xmit, netif_receive_skb, napi_gro_receive, netif_rx,
  type gro_result_t,
} from './dev.js'
export { ARPOP_REQUEST, ARPOP_REPLY, IPPROTO_ICMP, ICMP_ECHO, ICMP_ECHOREPLY, ip_compute_csum, type InetStats, type PingResult, type PingReply } from './inet.js'
export { MAX_SOFTIRQ_RESTART, MAX_SOFTIRQ_TIME_NS } from './softirq.js'
export type { SoftnetStat } from './state.js'
export {
  netUser, NetUser, PacketSocket, parseIPv4,
  type NetDeviceInfo, type NetStats, type ReceivedFrame, type SocketOptions, type SendOptions, type PingOpts, type NetSysctl,
} from './user.js'
