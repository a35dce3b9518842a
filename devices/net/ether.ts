/**
 * Ethernet at the hardware level: what a NIC's MAC, a test peer and a wire agree on. A frame is
 * the bytes from the destination MAC to the end of the payload (no preamble, no FCS: as QEMU's
 * NetClientState and a pcap capture see it). Time on the wire is modelled by the wire
 * (devices/net/wire.ts): each endpoint names the virtual clock it lives on, so the wire can
 * deliver a frame at the right moment on the receiver's clock, also when the two endpoints are in
 * two systems.
 *
 * Modelled on QEMU's net/net.c (NetClientState: receive, link_status_changed, a peer) and IEEE
 * 802.3's frame sizes.
 */

import type { VirtualClock } from '../machine/clock.js'

/** Bytes of a MAC address, an Ethernet header and the smallest/largest untagged frame (no FCS). */
export const ETH_ALEN = 6
export const ETH_HLEN = 14
export const ETH_ZLEN = 60
export const ETH_DATA_LEN = 1500
export const ETH_FRAME_LEN = 1514
/** Bytes of the frame check sequence a real MAC appends (counted in wire time, never stored). */
export const ETH_FCS_LEN = 4
/** Preamble + start-of-frame delimiter + minimum inter-frame gap, in bytes of wire time. */
export const ETH_WIRE_OVERHEAD = 8 + 12

/** EtherTypes used by the emulator's tiny stack. */
export const ETH_P_IP = 0x0800
export const ETH_P_ARP = 0x0806

/** One end of a link: a NIC's MAC side or a traffic endpoint. */
export interface EtherEndpoint {
  /** A name for traces and errors (the device's name). */
  readonly name: string
  /** The virtual clock the endpoint lives on (its machine's); null while it has none. */
  readonly clock: VirtualClock | null
  /**
   * A frame arrives, at the receiver's current virtual time. The bytes belong to the wire: an
   * endpoint that keeps them copies them.
   */
  receiveFrame(frame: Uint8Array): void
  /** The carrier came up or went down (cable plugged, peer's link enabled or not). */
  carrierChanged(up: boolean): void
  /** The endpoint was plugged into a link (or unplugged: null). */
  attachLink(link: EtherLink | null): void
}

/** What an endpoint sees of the link it is plugged into. */
export interface EtherLink {
  /** Sends a frame from `from` towards the other end; the link copies the bytes. */
  transmit(from: EtherEndpoint, frame: Uint8Array): void
  /** Whether the link has carrier (both ends plugged in and the cable up). */
  readonly carrier: boolean
}

/** Formats a MAC address as aa:bb:cc:dd:ee:ff. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, ETH_ALEN), (b) => b.toString(16).padStart(2, '0')).join(':')
}
