/**
 * nvme_hw: the driver's view of an NVMe controller (docs/devices/nvme.md), with the names and
 * values of Linux's include/linux/nvme.h: controller registers, CC/CSTS bits, opcodes, status
 * codes, and the 64-byte submission / 16-byte completion queue entries. As in Linux, the driver
 * keeps its own copy of the hardware definitions: it never imports the device model.
 */
import { defineStruct } from '../../kernel/index.js'

export const NVME_VENDOR_ID = 0x1de5
export const NVME_DEVICE_ID = 0x5e01
/** PCI_CLASS_STORAGE_EXPRESS (class 01h, subclass 08h, prog-if 02h). */
export const PCI_CLASS_STORAGE_EXPRESS = 0x010802

/* Controller registers (BAR 0) */
export const NVME_REG_CAP = 0x0000
export const NVME_REG_VS = 0x0008
export const NVME_REG_INTMS = 0x000c
export const NVME_REG_INTMC = 0x0010
export const NVME_REG_CC = 0x0014
export const NVME_REG_CSTS = 0x001c
export const NVME_REG_AQA = 0x0024
export const NVME_REG_ASQ = 0x0028
export const NVME_REG_ACQ = 0x0030
export const NVME_REG_DBS = 0x1000

/* CAP fields (a 64-bit register, read as two halves) */
export const NVME_CAP_MQES = (cap: bigint): number => Number(cap & 0xffffn)
export const NVME_CAP_TIMEOUT = (cap: bigint): number => Number((cap >> 24n) & 0xffn)
export const NVME_CAP_STRIDE = (cap: bigint): number => Number((cap >> 32n) & 0xfn)
export const NVME_CAP_MPSMIN = (cap: bigint): number => Number((cap >> 48n) & 0xfn)
export const NVME_CAP_MPSMAX = (cap: bigint): number => Number((cap >> 52n) & 0xfn)

/* CC */
export const NVME_CC_ENABLE = 1 << 0
export const NVME_CC_CSS_NVM = 0 << 4
export const NVME_CC_MPS_SHIFT = 7
export const NVME_CC_AMS_RR = 0 << 11
export const NVME_CC_SHN_NONE = 0 << 14
export const NVME_CC_SHN_NORMAL = 1 << 14
export const NVME_CC_SHN_MASK = 3 << 14
export const NVME_CC_IOSQES = 6 << 16
export const NVME_CC_IOCQES = 4 << 20

/* CSTS */
export const NVME_CSTS_RDY = 1 << 0
export const NVME_CSTS_CFS = 1 << 1
export const NVME_CSTS_SHST_CMPLT = 2 << 2
export const NVME_CSTS_SHST_MASK = 3 << 2

/* Admin opcodes */
export const nvme_admin_delete_sq = 0x00
export const nvme_admin_create_sq = 0x01
export const nvme_admin_delete_cq = 0x04
export const nvme_admin_create_cq = 0x05
export const nvme_admin_identify = 0x06
export const nvme_admin_abort_cmd = 0x08
export const nvme_admin_set_features = 0x09
export const nvme_admin_get_features = 0x0a

/* I/O opcodes */
export const nvme_cmd_flush = 0x00
export const nvme_cmd_write = 0x01
export const nvme_cmd_read = 0x02
export const nvme_cmd_write_zeroes = 0x08

/* Identify CNS values */
export const NVME_ID_CNS_NS = 0x00
export const NVME_ID_CNS_CTRL = 0x01

/* Features */
export const NVME_FEAT_VOLATILE_WC = 0x06
export const NVME_FEAT_NUM_QUEUES = 0x07
export const NVME_FEAT_IRQ_COALESCE = 0x08

/* Create I/O queue flags (CDW11) */
export const NVME_QUEUE_PHYS_CONTIG = 1 << 0
export const NVME_CQ_IRQ_ENABLED = 1 << 1
export const NVME_SQ_PRIO_MEDIUM = 2 << 1

/* Read/write control (CDW12 bits 31:16) */
export const NVME_RW_FUA = 1 << 14

/* Status codes (the CQE status field >> 1) */
export const NVME_SC_SUCCESS = 0x0
export const NVME_SC_INVALID_OPCODE = 0x1
export const NVME_SC_INVALID_FIELD = 0x2
export const NVME_SC_CMDID_CONFLICT = 0x3
export const NVME_SC_DATA_XFER_ERROR = 0x4
export const NVME_SC_ABORT_REQ = 0x7
export const NVME_SC_INVALID_NS = 0xb
export const NVME_SC_LBA_RANGE = 0x80
export const NVME_SC_CQ_INVALID = 0x100
export const NVME_SC_QID_INVALID = 0x101
export const NVME_SC_QUEUE_SIZE = 0x102
export const NVME_SC_INVALID_VECTOR = 0x108
/** A command the host aborted (Linux's driver-internal status for cancelled commands). */
export const NVME_SC_HOST_ABORTED_CMD = 0x371
export const NVME_SC_DNR = 0x4000
export const NVME_SC_MASK = 0x7ff

/** The controller's page size: 4 KiB (CC.MPS 0). */
export const NVME_CTRL_PAGE_SHIFT = 12
export const NVME_CTRL_PAGE_SIZE = 1 << NVME_CTRL_PAGE_SHIFT

/** struct nvme_command, the common layout of a 64-byte submission queue entry. */
export const nvme_command = defineStruct('nvme_command', {
  opcode: { offset: 0, type: 'u8' },
  flags: { offset: 1, type: 'u8' },
  command_id: { offset: 2, type: 'u16' },
  nsid: { offset: 4, type: 'u32' },
  cdw2: { offset: 8, type: 'u32' },
  cdw3: { offset: 12, type: 'u32' },
  metadata: { offset: 16, type: 'u64' },
  prp1: { offset: 24, type: 'u64' },
  prp2: { offset: 32, type: 'u64' },
  cdw10: { offset: 40, type: 'u32' },
  cdw11: { offset: 44, type: 'u32' },
  cdw12: { offset: 48, type: 'u32' },
  cdw13: { offset: 52, type: 'u32' },
  cdw14: { offset: 56, type: 'u32' },
  cdw15: { offset: 60, type: 'u32' },
})
export const NVME_SQE_SIZE = 64

/** struct nvme_completion: 16 bytes; bit 0 of status is the phase tag. */
export const nvme_completion = defineStruct('nvme_completion', {
  result: { offset: 0, type: 'u32' },
  rsvd: { offset: 4, type: 'u32' },
  sq_head: { offset: 8, type: 'u16' },
  sq_id: { offset: 10, type: 'u16' },
  command_id: { offset: 12, type: 'u16' },
  status: { offset: 14, type: 'u16' },
})
export const NVME_CQE_SIZE = 16
