/**
 * Ethernet (include/uapi/linux/if_ether.h, include/linux/etherdevice.h, net/ethernet/eth.c):
 * frame constants, EtherTypes, MAC address helpers, byte-order helpers and eth_type_trans().
 *
 * Byte order is Linux's: `skb.protocol` holds the EtherType as it sits in the frame (`__be16`),
 * so it is compared with `htons(ETH_P_IP)`, as C drivers do. Every emulated platform is
 * little-endian, so `htons(0x0800)` is `0x0008`.
 */

import { mem_read_bytes } from '../mm/memory.js'
import type { System } from '../system.js'
import { netBadArg, netCall } from './state.js'
import type { NetDevice } from './netdevice.js'
import { PACKET_BROADCAST, PACKET_HOST, PACKET_MULTICAST, PACKET_OTHERHOST, checkSkb, skb_pull_inline, skb_reset_mac_header, type SkBuff } from './skbuff.js'

/** Octets in one Ethernet address. */
export const ETH_ALEN = 6
/** Total octets in the Ethernet header. */
export const ETH_HLEN = 14
/** Minimum frame length without the FCS (shorter frames are padded). */
export const ETH_ZLEN = 60
/** Maximum payload (the default MTU). */
export const ETH_DATA_LEN = 1500
/** Maximum frame length without the FCS. */
export const ETH_FRAME_LEN = 1514
/** Octets of the frame check sequence. */
export const ETH_FCS_LEN = 4
/** Minimum MTU of an Ethernet device (RFC 791's 68). */
export const ETH_MIN_MTU = 68
export const ETH_MAX_MTU = 0xffff
/** Bytes of an 802.1Q tag. */
export const VLAN_HLEN = 4

/** EtherTypes (host order: compare `skb.protocol` with `htons(ETH_P_IP)`). */
export const ETH_P_LOOP = 0x0060
export const ETH_P_IP = 0x0800
export const ETH_P_ARP = 0x0806
export const ETH_P_8021Q = 0x8100
export const ETH_P_IPV6 = 0x86dd
/** Values below this are 802.3 lengths, not EtherTypes. */
export const ETH_P_802_3_MIN = 0x0600
/** Pseudo-types: "every protocol" (packet sockets), raw 802.3, 802.2 LLC. */
export const ETH_P_ALL = 0x0003
export const ETH_P_802_3 = 0x0001
export const ETH_P_802_2 = 0x0004

/** ARP hardware type of Ethernet (`dev->type`). */
export const ARPHRD_ETHER = 1

// ---------------------------------------------------------------------- byte order

/** `htons`: host to network (big-endian) order of a 16-bit value. */
export function htons(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff)
}
/** `ntohs`. */
export const ntohs = htons
/** `htonl`: host to network order of a 32-bit value. */
export function htonl(x: number): number {
  return (((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | ((x >>> 24) & 0xff)) >>> 0
}
/** `ntohl`. */
export const ntohl = htonl

// ---------------------------------------------------------------------- addresses

function checkAddr(addr: unknown): addr is Uint8Array {
  return addr instanceof Uint8Array && addr.length >= ETH_ALEN
}

/** Whether addr is 00:00:00:00:00:00. */
export function is_zero_ether_addr(addr: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (addr[i] !== 0) return false
  return true
}
/** Whether addr is a multicast address (the I/G bit of the first octet), broadcast included. */
export function is_multicast_ether_addr(addr: Uint8Array): boolean {
  return ((addr[0] ?? 0) & 0x01) !== 0
}
/** Whether addr is ff:ff:ff:ff:ff:ff. */
export function is_broadcast_ether_addr(addr: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (addr[i] !== 0xff) return false
  return true
}
/** Whether addr is a valid unicast station address: neither multicast nor zero. */
export function is_valid_ether_addr(addr: Uint8Array): boolean {
  return checkAddr(addr) && !is_multicast_ether_addr(addr) && !is_zero_ether_addr(addr)
}
/** Whether two addresses are equal. */
export function ether_addr_equal(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < ETH_ALEN; i++) if (a[i] !== b[i]) return false
  return true
}
/** Copies an address (`ether_addr_copy(dst, src)`). */
export function ether_addr_copy(dst: Uint8Array, src: Uint8Array): void {
  dst.set(src.subarray(0, ETH_ALEN))
}

/** Fills addr with a random locally administered unicast address, from the system's seeded generator. */
export function eth_random_addr(addr: Uint8Array): void {
  const { t, sys } = netCall('eth_random_addr')
  if (!checkAddr(addr)) netBadArg(t, 'eth_random_addr', 'addr', 'must be a Uint8Array of 6 bytes')
  randomAddr(sys, addr)
}

function randomAddr(sys: System, addr: Uint8Array): void {
  for (let i = 0; i < ETH_ALEN; i++) addr[i] = sys.machine.rng.int(256)
  addr[0] = ((addr[0] ?? 0) & 0xfe) | 0x02 // clear multicast, set local assignment
}

/** Sets the device's hardware address (`eth_hw_addr_set`: dev->dev_addr is const in Linux). */
export function eth_hw_addr_set(dev: NetDevice, addr: Uint8Array): void {
  const { t } = netCall('eth_hw_addr_set')
  if (!checkAddr(addr)) netBadArg(t, 'eth_hw_addr_set', 'addr', 'must be a Uint8Array of 6 bytes')
  dev.dev_addr.set(addr.subarray(0, ETH_ALEN))
}

/** Gives the device a random address (`eth_hw_addr_random`); addr_assign_type becomes NET_ADDR_RANDOM. */
export function eth_hw_addr_random(dev: NetDevice): void {
  const { sys } = netCall('eth_hw_addr_random')
  randomAddr(sys, dev.dev_addr)
  dev.addr_assign_type = NET_ADDR_RANDOM
}

/** `ndo_validate_addr` for Ethernet: -EADDRNOTAVAIL unless dev_addr is a valid unicast address. */
export function eth_validate_addr(dev: NetDevice): number {
  netCall('eth_validate_addr')
  return is_valid_ether_addr(dev.dev_addr) ? 0 : -EADDRNOTAVAIL
}

export const NET_ADDR_PERM = 0
export const NET_ADDR_RANDOM = 1
export const NET_ADDR_SET = 3

/** errno values of the network stack (include/uapi/asm-generic/errno.h). */
export const EADDRNOTAVAIL = 99
export const ENETDOWN = 100
export const ENETUNREACH = 101
export const ENOBUFS = 105
export const EMSGSIZE = 90
export const EHOSTUNREACH = 113

/** Formats a MAC address as aa:bb:cc:dd:ee:ff. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, ETH_ALEN), (b) => b.toString(16).padStart(2, '0')).join(':')
}

// ---------------------------------------------------------------------- receive

/**
 * `eth_type_trans(skb, dev)`: called by a driver on a received frame before handing it up. Sets
 * `skb.dev`, records the MAC header, pulls it (`skb.data` then points at the network header),
 * sets `skb.pkt_type` (PACKET_HOST, _BROADCAST, _MULTICAST or _OTHERHOST) and returns the
 * protocol in network order, which the driver stores: `skb.protocol = eth_type_trans(skb, dev)`.
 * The header is read from `skb.data`, through the CPU accessors (a buffer still mapped for the
 * device is reported here).
 */
export function eth_type_trans(skb: SkBuff, dev: NetDevice): number {
  const { t } = netCall('eth_type_trans')
  checkSkb(t, 'eth_type_trans', skb)
  if (dev === null || typeof dev !== 'object' || !('dev_addr' in dev)) netBadArg(t, 'eth_type_trans', 'dev', 'must be a net_device')
  skb.dev = dev
  skb_reset_mac_header(skb)
  const eth = mem_read_bytes(skb.data, ETH_HLEN)
  skb_pull_inline(skb, ETH_HLEN)
  const dest = eth.subarray(0, ETH_ALEN)
  if (!ether_addr_equal(dest, dev.dev_addr)) {
    if (is_multicast_ether_addr(dest)) skb.pkt_type = ether_addr_equal(dest, dev.broadcast) ? PACKET_BROADCAST : PACKET_MULTICAST
    else skb.pkt_type = PACKET_OTHERHOST
  } else skb.pkt_type = PACKET_HOST
  // h_proto as it sits in memory: a little-endian load of big-endian bytes is the __be16 value.
  const proto = (eth[12] ?? 0) | ((eth[13] ?? 0) << 8)
  if (ntohs(proto) >= ETH_P_802_3_MIN) return proto
  // The magic hack to spot IPX packets (a raw 802.3 frame starts with 0xFFFF).
  if (skb.len >= 2) {
    const sap = mem_read_bytes(skb.data, 2)
    if (sap[0] === 0xff && sap[1] === 0xff) return htons(ETH_P_802_3)
  }
  return htons(ETH_P_802_2)
}
