/**
 * The Identify data structures the controller returns (4096 bytes each): the controller (CNS 01h),
 * the namespace (CNS 00h), the active namespace list (CNS 02h) and the namespace identification
 * descriptors (CNS 03h). Datasheet: docs/devices/nvme.md §5.
 *
 * Layouts are NVM Express Base Specification 1.4 §5.15.2 (Figures 247, 249, 251, 252), the
 * offsets of QEMU's NvmeIdCtrl / NvmeIdNs (include/block/nvme.h) and Linux's struct nvme_id_ctrl /
 * nvme_id_ns; the values follow QEMU's nvme_init_ctrl / nvme_ns_init where the model has the same
 * feature (SQES 66h, CQES 44h, power state 0) and the datasheet otherwise.
 */

import {
  NVME_CTRL_ONCS_WRITE_ZEROES, NVME_CTRL_VWC_PRESENT, NVME_ACL, NVME_ID_CTRL_ACL, NVME_ID_CTRL_CNTLID, NVME_ID_CTRL_CQES,
  NVME_ID_CTRL_FR, NVME_ID_CTRL_FRMW, NVME_ID_CTRL_IEEE, NVME_ID_CTRL_MDTS, NVME_ID_CTRL_MN, NVME_ID_CTRL_NN, NVME_ID_CTRL_ONCS,
  NVME_ID_CTRL_PSD0, NVME_ID_CTRL_RAB, NVME_ID_CTRL_SN, NVME_ID_CTRL_SQES, NVME_ID_CTRL_SSVID, NVME_ID_CTRL_SUBNQN,
  NVME_ID_CTRL_VER, NVME_ID_CTRL_VID, NVME_ID_CTRL_VWC, NVME_ID_NS_EUI64, NVME_ID_NS_FLBAS, NVME_ID_NS_LBAF0, NVME_ID_NS_NCAP,
  NVME_ID_NS_NGUID, NVME_ID_NS_NLBAF, NVME_ID_NS_NSZE, NVME_ID_NS_NUSE, NVME_IDENTIFY_DATA_SIZE, NVME_LBAF_DS, NVME_NIDT_NGUID,
  NVME_NIDT_NGUID_LEN, NVME_NSID, NVME_VS_1_4,
} from './regs.js'

export interface NvmeIdentity {
  readonly vendor: number
  readonly serial: string
  readonly model: string
  readonly firmware: string
  /** MDTS: the largest transfer is 2^mdts pages of 4 KiB. */
  readonly mdts: number
  readonly volatileWriteCache: boolean
  /** Namespace size in logical blocks, and log2 of the block size. */
  readonly nsze: number
  readonly lbads: number
}

const TWO32 = 0x1_0000_0000

function ascii(buf: Uint8Array, off: number, len: number, s: string): void {
  buf.fill(0x20, off, off + len)
  for (let i = 0; i < s.length && i < len; i++) buf[off + i] = s.charCodeAt(i)
}

function u64(v: DataView, off: number, x: number): void {
  v.setUint32(off, x % TWO32, true)
  v.setUint32(off + 4, Math.floor(x / TWO32), true)
}

/** 16 bytes derived from the serial number (FNV-1a, four rounds): the namespace's NGUID; its first 8 are the EUI-64. */
export function namespaceGuid(serial: string): Uint8Array {
  const out = new Uint8Array(16)
  const v = new DataView(out.buffer)
  for (let r = 0; r < 4; r++) {
    let h = (0x811c_9dc5 ^ r) >>> 0
    for (let i = 0; i < serial.length; i++) h = Math.imul(h ^ serial.charCodeAt(i), 0x0100_0193) >>> 0
    v.setUint32(4 * r, h, false)
  }
  out[0] = 0x00 // an OUI-like first byte for the unassigned vendor space
  return out
}

/** Identify Controller (CNS 01h). */
export function identifyController(id: NvmeIdentity): Uint8Array {
  const b = new Uint8Array(NVME_IDENTIFY_DATA_SIZE)
  const v = new DataView(b.buffer)
  v.setUint16(NVME_ID_CTRL_VID, id.vendor, true)
  v.setUint16(NVME_ID_CTRL_SSVID, id.vendor, true)
  ascii(b, NVME_ID_CTRL_SN, 20, id.serial)
  ascii(b, NVME_ID_CTRL_MN, 40, id.model)
  ascii(b, NVME_ID_CTRL_FR, 8, id.firmware)
  b[NVME_ID_CTRL_RAB] = 6
  b[NVME_ID_CTRL_ACL] = NVME_ACL
  b.set([0x00, 0x00, 0x00], NVME_ID_CTRL_IEEE)
  b[NVME_ID_CTRL_MDTS] = id.mdts
  v.setUint16(NVME_ID_CTRL_CNTLID, 1, true)
  v.setUint32(NVME_ID_CTRL_VER, NVME_VS_1_4, true)
  b[NVME_ID_CTRL_FRMW] = (1 << 1) | 1 // one firmware slot, slot 1 read-only
  b[NVME_ID_CTRL_SQES] = 0x66
  b[NVME_ID_CTRL_CQES] = 0x44
  v.setUint32(NVME_ID_CTRL_NN, 1, true)
  v.setUint16(NVME_ID_CTRL_ONCS, NVME_CTRL_ONCS_WRITE_ZEROES, true)
  b[NVME_ID_CTRL_VWC] = id.volatileWriteCache ? NVME_CTRL_VWC_PRESENT : 0 // bits 2:1 00b: broadcast Flush support not indicated (it is accepted)
  const nqn = `nqn.2024-01.org.dmalab:nvme:${id.serial}` // NUL-terminated, not space padded
  for (let i = 0; i < nqn.length && i < 255; i++) b[NVME_ID_CTRL_SUBNQN + i] = nqn.charCodeAt(i)
  // Power state 0: MP 25 W (in 0.01 W), ENLAT 16 µs, EXLAT 4 µs (QEMU's values).
  v.setUint16(NVME_ID_CTRL_PSD0, 0x9c4, true)
  v.setUint32(NVME_ID_CTRL_PSD0 + 4, 0x10, true)
  v.setUint32(NVME_ID_CTRL_PSD0 + 8, 0x4, true)
  return b
}

/** Identify Namespace (CNS 00h) for namespace 1: one LBA format, in use. */
export function identifyNamespace(id: NvmeIdentity): Uint8Array {
  const b = new Uint8Array(NVME_IDENTIFY_DATA_SIZE)
  const v = new DataView(b.buffer)
  u64(v, NVME_ID_NS_NSZE, id.nsze)
  u64(v, NVME_ID_NS_NCAP, id.nsze)
  u64(v, NVME_ID_NS_NUSE, id.nsze)
  b[NVME_ID_NS_NLBAF] = 0 // one format (0-based)
  b[NVME_ID_NS_FLBAS] = 0 // format 0, no metadata
  b[NVME_ID_NS_LBAF0 + NVME_LBAF_DS] = id.lbads
  const guid = namespaceGuid(id.serial)
  b.set(guid, NVME_ID_NS_NGUID)
  b.set(guid.subarray(0, 8), NVME_ID_NS_EUI64)
  return b
}

/** Active Namespace ID list (CNS 02h): the active NSIDs greater than `after`, in order. */
export function activeNamespaceList(after: number): Uint8Array {
  const b = new Uint8Array(NVME_IDENTIFY_DATA_SIZE)
  if (after < NVME_NSID) new DataView(b.buffer).setUint32(0, NVME_NSID, true)
  return b
}

/** Namespace Identification Descriptor list (CNS 03h) for namespace 1: its NGUID. */
export function namespaceDescriptors(id: NvmeIdentity): Uint8Array {
  const b = new Uint8Array(NVME_IDENTIFY_DATA_SIZE)
  b[0] = NVME_NIDT_NGUID
  b[1] = NVME_NIDT_NGUID_LEN
  b.set(namespaceGuid(id.serial), 4)
  return b
}
