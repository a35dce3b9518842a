/**
 * The mini-NVMe controller's register map, bit fields, opcodes, status codes and the layouts of
 * its queue entries and Identify data, as listed in its datasheet (docs/devices/nvme.md). The
 * model is devices/nvme/ctrl.ts.
 *
 * Offsets, bits and layouts are the NVM Express Base Specification 1.4 ones (§3.1 controller
 * registers, §4.2 submission queue entry, §4.6 completion queue entry, §4.3 PRPs, §5 admin
 * commands, §6 NVM commands), named as in Linux's include/linux/nvme.h (NVME_REG_*, NVME_CC_*,
 * NVME_CSTS_*, NVME_SC_*, NVME_FEAT_*, NVME_ID_CNS_*) and cross-checked against QEMU's
 * include/block/nvme.h (NvmeBar, NvmeCmd, NvmeCqe, NvmeIdCtrl, NvmeIdNs). Opcodes, which Linux
 * names in lower case (nvme_admin_identify, nvme_cmd_read), are NVME_ADMIN_* / NVME_CMD_* here.
 * PCI identity: vendor 0x1de5, device 0x5e01, class 0x010802 (mass storage, NVM, NVM Express).
 */

export const NVME_VENDOR_ID = 0x1de5
export const NVME_DEVICE_ID = 0x5e01
export const NVME_CLASS = 0x010802 /* mass storage controller, non-volatile memory, NVM Express */
export const NVME_REVISION = 1

/* Controller registers (BAR 0; 32-bit accesses, 64-bit registers as two halves, low first) */
export const NVME_REG_CAP = 0x0000 /* Controller Capabilities (64 bits, RO) */
export const NVME_REG_VS = 0x0008 /* Version (RO) */
export const NVME_REG_INTMS = 0x000c /* Interrupt Mask Set */
export const NVME_REG_INTMC = 0x0010 /* Interrupt Mask Clear */
export const NVME_REG_CC = 0x0014 /* Controller Configuration */
export const NVME_REG_CSTS = 0x001c /* Controller Status (RO) */
export const NVME_REG_NSSR = 0x0020 /* NVM Subsystem Reset (not supported: CAP.NSSRS = 0) */
export const NVME_REG_AQA = 0x0024 /* Admin Queue Attributes */
export const NVME_REG_ASQ = 0x0028 /* Admin SQ Base Address (64 bits) */
export const NVME_REG_ACQ = 0x0030 /* Admin CQ Base Address (64 bits) */
export const NVME_REG_CMBLOC = 0x0038 /* Controller Memory Buffer Location (reads 0: no CMB) */
export const NVME_REG_CMBSZ = 0x003c /* Controller Memory Buffer Size (reads 0) */
/** The first doorbell: SQ y tail at DBS + (2y) * (4 << DSTRD), CQ y head at DBS + (2y + 1) * (4 << DSTRD). */
export const NVME_REG_DBS = 0x1000

/** Every register the controller decodes below the doorbells, by name (what NvmeController.reg() accepts). */
export const NVME_REGISTERS = {
  CAP: NVME_REG_CAP,
  CAP_HI: NVME_REG_CAP + 4,
  VS: NVME_REG_VS,
  INTMS: NVME_REG_INTMS,
  INTMC: NVME_REG_INTMC,
  CC: NVME_REG_CC,
  CSTS: NVME_REG_CSTS,
  NSSR: NVME_REG_NSSR,
  AQA: NVME_REG_AQA,
  ASQ: NVME_REG_ASQ,
  ASQ_HI: NVME_REG_ASQ + 4,
  ACQ: NVME_REG_ACQ,
  ACQ_HI: NVME_REG_ACQ + 4,
  CMBLOC: NVME_REG_CMBLOC,
  CMBSZ: NVME_REG_CMBSZ,
} as const

export type NvmeRegister = keyof typeof NVME_REGISTERS

/* CAP: fields of the 64-bit value (shifts count from bit 0 of the whole register) */
export const NVME_CAP_MQES_MASK = 0xffff /* 15:0 maximum queue entries supported, 0-based */
export const NVME_CAP_CQR = 1 << 16 /* contiguous queues required */
export const NVME_CAP_AMS_SHIFT = 17 /* 18:17 arbitration mechanisms beyond round robin (0) */
export const NVME_CAP_TO_SHIFT = 24 /* 31:24 timeout, in 500 ms units */
export const NVME_CAP_TO_MASK = 0xff
export const NVME_CAP_TO_UNIT_NS = 500_000_000
export const NVME_CAP_DSTRD_SHIFT = 32 /* 35:32 doorbell stride: 4 << DSTRD bytes */
export const NVME_CAP_DSTRD_MASK = 0xf
export const NVME_CAP_NSSRS_SHIFT = 36 /* NVM subsystem reset supported (0) */
export const NVME_CAP_CSS_SHIFT = 37 /* 44:37 command sets supported */
export const NVME_CAP_CSS_NVM = 1 /* bit 37: the NVM command set */
export const NVME_CAP_MPSMIN_SHIFT = 48 /* 51:48 minimum page size 2^(12 + MPSMIN) */
export const NVME_CAP_MPSMAX_SHIFT = 52 /* 55:52 maximum page size 2^(12 + MPSMAX) */
export const NVME_CAP_MPS_MASK = 0xf

/* VS */
export const NVME_VS_1_4 = 0x0001_0400 /* MJR 31:16, MNR 15:8, TER 7:0 */

/* CC */
export const NVME_CC_ENABLE = 1 << 0
export const NVME_CC_CSS_SHIFT = 4 /* 6:4 I/O command set selected */
export const NVME_CC_CSS_MASK = 0x7 << 4
export const NVME_CC_CSS_NVM = 0 << 4
export const NVME_CC_MPS_SHIFT = 7 /* 10:7 memory page size 2^(12 + MPS) */
export const NVME_CC_MPS_MASK = 0xf << 7
export const NVME_CC_AMS_SHIFT = 11 /* 13:11 arbitration mechanism */
export const NVME_CC_AMS_MASK = 0x7 << 11
export const NVME_CC_AMS_RR = 0 << 11
export const NVME_CC_SHN_SHIFT = 14 /* 15:14 shutdown notification */
export const NVME_CC_SHN_MASK = 0x3 << 14
export const NVME_CC_SHN_NONE = 0 << 14
export const NVME_CC_SHN_NORMAL = 1 << 14
export const NVME_CC_SHN_ABRUPT = 2 << 14
export const NVME_CC_IOSQES_SHIFT = 16 /* 19:16 I/O SQ entry size 2^n */
export const NVME_CC_IOSQES_MASK = 0xf << 16
export const NVME_CC_IOCQES_SHIFT = 20 /* 23:20 I/O CQ entry size 2^n */
export const NVME_CC_IOCQES_MASK = 0xf << 20
/** CC.IOSQES = 6 (64-byte SQEs) and CC.IOCQES = 4 (16-byte CQEs), in place (Linux's NVME_CC_IOSQES / NVME_CC_IOCQES). */
export const NVME_CC_IOSQES = 6 << 16
export const NVME_CC_IOCQES = 4 << 20

/* CSTS */
export const NVME_CSTS_RDY = 1 << 0
export const NVME_CSTS_CFS = 1 << 1 /* controller fatal status */
export const NVME_CSTS_SHST_SHIFT = 2
export const NVME_CSTS_SHST_NORMAL = 0 << 2
export const NVME_CSTS_SHST_OCCUR = 1 << 2 /* shutdown processing occurring */
export const NVME_CSTS_SHST_CMPLT = 2 << 2 /* shutdown processing complete */
export const NVME_CSTS_SHST_MASK = 3 << 2
export const NVME_CSTS_NSSRO = 1 << 4

/* AQA: both sizes 0-based, 12 bits */
export const NVME_AQA_ASQS_MASK = 0xfff
export const NVME_AQA_ACQS_SHIFT = 16
export const NVME_AQA_ACQS_MASK = 0xfff << 16

/** NSSR: the value that requests a subsystem reset ("NVMe"); ignored here (CAP.NSSRS = 0). */
export const NVME_NSSR_VALUE = 0x4e56_4d65

/* Memory pages: MPSMIN = MPSMAX = 0, so 4 KiB only */
export const NVME_PAGE_SHIFT = 12
export const NVME_PAGE_SIZE = 1 << NVME_PAGE_SHIFT

/* Submission queue entry (64 bytes, little-endian): struct nvme_common_command */
export const NVME_SQE_SIZE = 64
export const NVME_SQES_LOG2 = 6
export const NVME_SQE_OPCODE = 0 /* u8 */
export const NVME_SQE_FLAGS = 1 /* u8: FUSE 1:0, PSDT 7:6 */
export const NVME_SQE_CID = 2 /* u16 command identifier, echoed in the CQE */
export const NVME_SQE_NSID = 4 /* u32 */
export const NVME_SQE_CDW2 = 8 /* u32 (reserved) */
export const NVME_SQE_CDW3 = 12 /* u32 (reserved) */
export const NVME_SQE_MPTR = 16 /* u64 metadata pointer (ignored: no metadata) */
export const NVME_SQE_PRP1 = 24 /* u64 data pointer: PRP entry 1 */
export const NVME_SQE_PRP2 = 32 /* u64 data pointer: PRP entry 2 or PRP list pointer */
export const NVME_SQE_CDW10 = 40
export const NVME_SQE_CDW11 = 44
export const NVME_SQE_CDW12 = 48
export const NVME_SQE_CDW13 = 52
export const NVME_SQE_CDW14 = 56
export const NVME_SQE_CDW15 = 60
export const NVME_SQE_FUSE_MASK = 0x03
export const NVME_SQE_PSDT_MASK = 0xc0 /* 0: PRPs; 1, 2: SGLs (not supported) */

/* Completion queue entry (16 bytes): struct nvme_completion */
export const NVME_CQE_SIZE = 16
export const NVME_CQES_LOG2 = 4
export const NVME_CQE_RESULT = 0 /* u32 command specific (DW0) */
export const NVME_CQE_DW1 = 4 /* u32 (reserved, 0) */
export const NVME_CQE_SQ_HEAD = 8 /* u16 SQ head pointer */
export const NVME_CQE_SQ_ID = 10 /* u16 SQ identifier */
export const NVME_CQE_CID = 12 /* u16 command identifier */
export const NVME_CQE_STATUS = 14 /* u16: phase tag bit 0, status field 15:1 */
export const NVME_CQE_PHASE = 0x1

/* Status field (as the CQE's bits 15:1, i.e. `status >> 1`): SC 7:0, SCT 10:8, CRD 12:11, M 13, DNR 14 */
export const NVME_SC_MASK = 0x00ff
export const NVME_SCT_MASK = 0x0700
export const NVME_SC_MORE = 0x2000
export const NVME_SC_DNR = 0x4000

/* Generic command status (SCT 0) */
export const NVME_SC_SUCCESS = 0x00
export const NVME_SC_INVALID_OPCODE = 0x01
export const NVME_SC_INVALID_FIELD = 0x02
export const NVME_SC_CMDID_CONFLICT = 0x03
export const NVME_SC_DATA_XFER_ERROR = 0x04
export const NVME_SC_POWER_LOSS = 0x05
export const NVME_SC_INTERNAL = 0x06
export const NVME_SC_ABORT_REQ = 0x07
export const NVME_SC_ABORT_QUEUE = 0x08 /* command aborted due to SQ deletion */
export const NVME_SC_INVALID_NS = 0x0b
export const NVME_SC_CMD_SEQ_ERROR = 0x0c
export const NVME_SC_PRP_INVALID_OFFSET = 0x13
export const NVME_SC_LBA_RANGE = 0x80
export const NVME_SC_CAP_EXCEEDED = 0x81
/* Media and data integrity errors (SCT 2) */
export const NVME_SC_WRITE_FAULT = 0x280
export const NVME_SC_READ_ERROR = 0x281 /* unrecovered read error */
/* Command specific status (SCT 1) */
export const NVME_SC_CQ_INVALID = 0x100
export const NVME_SC_QID_INVALID = 0x101
export const NVME_SC_QUEUE_SIZE = 0x102
export const NVME_SC_INVALID_VECTOR = 0x108
export const NVME_SC_INVALID_QUEUE = 0x10c /* invalid queue deletion */
export const NVME_SC_FEATURE_NOT_SAVEABLE = 0x10d
export const NVME_SC_FEATURE_NOT_CHANGEABLE = 0x10e
export const NVME_SC_FEATURE_NOT_PER_NS = 0x10f

/** Status names for messages and dumps. */
export const NVME_STATUS_NAMES: Readonly<Record<number, string>> = {
  [NVME_SC_SUCCESS]: 'SUCCESS',
  [NVME_SC_INVALID_OPCODE]: 'INVALID_OPCODE',
  [NVME_SC_INVALID_FIELD]: 'INVALID_FIELD',
  [NVME_SC_CMDID_CONFLICT]: 'CMDID_CONFLICT',
  [NVME_SC_DATA_XFER_ERROR]: 'DATA_XFER_ERROR',
  [NVME_SC_POWER_LOSS]: 'POWER_LOSS',
  [NVME_SC_INTERNAL]: 'INTERNAL',
  [NVME_SC_ABORT_REQ]: 'ABORT_REQ',
  [NVME_SC_ABORT_QUEUE]: 'ABORT_QUEUE',
  [NVME_SC_INVALID_NS]: 'INVALID_NS',
  [NVME_SC_CMD_SEQ_ERROR]: 'CMD_SEQ_ERROR',
  [NVME_SC_PRP_INVALID_OFFSET]: 'PRP_INVALID_OFFSET',
  [NVME_SC_LBA_RANGE]: 'LBA_RANGE',
  [NVME_SC_CAP_EXCEEDED]: 'CAP_EXCEEDED',
  [NVME_SC_WRITE_FAULT]: 'WRITE_FAULT',
  [NVME_SC_READ_ERROR]: 'READ_ERROR',
  [NVME_SC_CQ_INVALID]: 'CQ_INVALID',
  [NVME_SC_QID_INVALID]: 'QID_INVALID',
  [NVME_SC_QUEUE_SIZE]: 'QUEUE_SIZE',
  [NVME_SC_INVALID_VECTOR]: 'INVALID_VECTOR',
  [NVME_SC_INVALID_QUEUE]: 'INVALID_QUEUE',
  [NVME_SC_FEATURE_NOT_SAVEABLE]: 'FEATURE_NOT_SAVEABLE',
  [NVME_SC_FEATURE_NOT_CHANGEABLE]: 'FEATURE_NOT_CHANGEABLE',
  [NVME_SC_FEATURE_NOT_PER_NS]: 'FEATURE_NOT_PER_NS',
}

/** "INVALID_FIELD|DNR" for a status field value (without the phase bit). */
export function nvmeStatusName(status: number): string {
  const code = status & (NVME_SCT_MASK | NVME_SC_MASK)
  const name = NVME_STATUS_NAMES[code] ?? `0x${code.toString(16)}`
  return `${name}${(status & NVME_SC_MORE) !== 0 ? '|MORE' : ''}${(status & NVME_SC_DNR) !== 0 ? '|DNR' : ''}`
}

/* Admin command opcodes (Linux: enum nvme_admin_opcode) */
export const NVME_ADMIN_DELETE_SQ = 0x00
export const NVME_ADMIN_CREATE_SQ = 0x01
export const NVME_ADMIN_GET_LOG_PAGE = 0x02 /* not supported */
export const NVME_ADMIN_DELETE_CQ = 0x04
export const NVME_ADMIN_CREATE_CQ = 0x05
export const NVME_ADMIN_IDENTIFY = 0x06
export const NVME_ADMIN_ABORT_CMD = 0x08
export const NVME_ADMIN_SET_FEATURES = 0x09
export const NVME_ADMIN_GET_FEATURES = 0x0a
export const NVME_ADMIN_ASYNC_EVENT = 0x0c /* not supported */

/* NVM (I/O) command opcodes (Linux: enum nvme_opcode) */
export const NVME_CMD_FLUSH = 0x00
export const NVME_CMD_WRITE = 0x01
export const NVME_CMD_READ = 0x02
export const NVME_CMD_WRITE_ZEROES = 0x08

/* Create I/O CQ / SQ (CDW10: QID 15:0, QSIZE 31:16 0-based; CDW11: flags 15:0, IV or CQID 31:16) */
export const NVME_QUEUE_PHYS_CONTIG = 1 << 0 /* PC */
export const NVME_CQ_IRQ_ENABLED = 1 << 1 /* IEN (Create I/O CQ) */
export const NVME_SQ_PRIO_MASK = 0x3 << 1 /* QPRIO (Create I/O SQ; ignored: round robin) */

/* Read / Write / Write Zeroes: SLBA in CDW10-11, CDW12: NLB 15:0 (0-based), DEAC 25 (Write Zeroes), FUA 30, LR 31 */
export const NVME_RW_NLB_MASK = 0xffff
export const NVME_RW_DEAC = 1 << 25
export const NVME_RW_FUA = 1 << 30
export const NVME_RW_LR = 0x8000_0000
/** The FUA and LR bits as Linux writes them in the 16-bit `control` field at SQE offset 50. */
export const NVME_RW_CONTROL_FUA = 1 << 14
export const NVME_RW_CONTROL_LR = 1 << 15

/* Identify: CDW10 CNS 7:0 */
export const NVME_ID_CNS_NS = 0x00
export const NVME_ID_CNS_CTRL = 0x01
export const NVME_ID_CNS_NS_ACTIVE_LIST = 0x02
export const NVME_ID_CNS_NS_DESC_LIST = 0x03
export const NVME_IDENTIFY_DATA_SIZE = 4096

/* Identify Controller data structure (struct nvme_id_ctrl) */
export const NVME_ID_CTRL_VID = 0 /* u16 */
export const NVME_ID_CTRL_SSVID = 2 /* u16 */
export const NVME_ID_CTRL_SN = 4 /* char[20], space padded */
export const NVME_ID_CTRL_MN = 24 /* char[40] */
export const NVME_ID_CTRL_FR = 64 /* char[8] */
export const NVME_ID_CTRL_RAB = 72 /* u8 */
export const NVME_ID_CTRL_IEEE = 73 /* u8[3] */
export const NVME_ID_CTRL_MDTS = 77 /* u8: max transfer 2^MDTS pages (CAP.MPSMIN) */
export const NVME_ID_CTRL_CNTLID = 78 /* u16 */
export const NVME_ID_CTRL_VER = 80 /* u32 */
export const NVME_ID_CTRL_OACS = 256 /* u16 */
export const NVME_ID_CTRL_ACL = 258 /* u8 */
/** Abort Command Limit, 0-based: four Abort commands may be outstanding at once (QEMU's is 3 too). */
export const NVME_ACL = 3
export const NVME_ID_CTRL_AERL = 259 /* u8 */
export const NVME_ID_CTRL_FRMW = 260 /* u8 */
export const NVME_ID_CTRL_LPA = 261 /* u8 */
export const NVME_ID_CTRL_SQES = 512 /* u8: max 7:4, required 3:0 (log2) */
export const NVME_ID_CTRL_CQES = 513 /* u8 */
export const NVME_ID_CTRL_MAXCMD = 514 /* u16 */
export const NVME_ID_CTRL_NN = 516 /* u32 number of namespaces */
export const NVME_ID_CTRL_ONCS = 520 /* u16 optional NVM command support */
export const NVME_ID_CTRL_VWC = 525 /* u8 volatile write cache */
export const NVME_ID_CTRL_SGLS = 536 /* u32 (0: no SGL support) */
export const NVME_ID_CTRL_SUBNQN = 768 /* char[256] */
export const NVME_ID_CTRL_PSD0 = 2048 /* struct nvme_id_power_state[0] */
export const NVME_CTRL_ONCS_WRITE_ZEROES = 1 << 3
export const NVME_CTRL_VWC_PRESENT = 1 << 0

/* Identify Namespace data structure (struct nvme_id_ns) */
export const NVME_ID_NS_NSZE = 0 /* u64 namespace size in logical blocks */
export const NVME_ID_NS_NCAP = 8 /* u64 */
export const NVME_ID_NS_NUSE = 16 /* u64 */
export const NVME_ID_NS_NSFEAT = 24 /* u8 */
export const NVME_ID_NS_NLBAF = 25 /* u8 number of LBA formats, 0-based */
export const NVME_ID_NS_FLBAS = 26 /* u8 formatted LBA size: format index 3:0 */
export const NVME_ID_NS_NGUID = 104 /* u8[16] */
export const NVME_ID_NS_EUI64 = 120 /* u8[8] */
export const NVME_ID_NS_LBAF0 = 128 /* struct nvme_lbaf[16]: u16 ms, u8 ds (log2 LBA size), u8 rp */
export const NVME_LBAF_MS = 0
export const NVME_LBAF_DS = 2
export const NVME_LBAF_RP = 3
/** Namespace identification descriptor type 2 (NGUID, 16 bytes), in the CNS 03h list. */
export const NVME_NIDT_NGUID = 0x02
export const NVME_NIDT_NGUID_LEN = 16
/** The one namespace; FFFFFFFFh is the broadcast NSID (accepted by Flush). */
export const NVME_NSID = 1
export const NVME_NSID_ALL = 0xffff_ffff

/* Features (Set / Get Features: CDW10 FID 7:0, SV 31 (set) or SEL 10:8 (get); value in CDW11) */
export const NVME_FEAT_VOLATILE_WC = 0x06 /* CDW11 bit 0: WCE */
export const NVME_FEAT_NUM_QUEUES = 0x07 /* CDW11: NSQR 15:0, NCQR 31:16 (0-based); DW0: NSQA, NCQA */
export const NVME_FEAT_IRQ_COALESCE = 0x08 /* CDW11: THR 7:0 (0-based entries), TIME 15:8 (100 µs units) */
export const NVME_FEAT_FID_MASK = 0xff
export const NVME_SET_FEAT_SAVE = 0x8000_0000
export const NVME_GET_FEAT_SEL_SHIFT = 8
export const NVME_GET_FEAT_SEL_MASK = 0x7 << 8
export const NVME_FEAT_SEL_CURRENT = 0
export const NVME_FEAT_SEL_DEFAULT = 1
export const NVME_FEAT_SEL_SAVED = 2
export const NVME_FEAT_SEL_SUPPORTED = 3
/** Get Features SEL 011b result: bit 2, the feature is changeable (bit 0 saveable, bit 1 per namespace). */
export const NVME_FEAT_CAP_CHANGEABLE = 1 << 2
/** Interrupt Coalescing TIME counts in units of 100 µs. */
export const NVME_IRQ_COALESCE_TIME_UNIT_NS = 100_000

/* Limits and defaults */
/** Largest I/O queue count a controller may be built with (QIDs 1..65535). */
export const NVME_MAX_IO_QUEUE_PAIRS = 0xffff
/** Admin queues hold up to 4096 entries (AQA's 12-bit 0-based fields). */
export const NVME_MAX_ADMIN_QUEUE_ENTRIES = 4096
export const NVME_DEFAULT_MQES = 1023
export const NVME_DEFAULT_TIMEOUT = 0x0f /* CAP.TO: 7.5 s, as QEMU */
export const NVME_DEFAULT_MDTS = 5 /* 2^5 pages = 128 KiB */
export const NVME_DEFAULT_MSIX_VECTORS = 32
export const NVME_DEFAULT_SIZE_BYTES = 1024 * 1024 * 1024
export const NVME_DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
export const NVME_DEFAULT_READY_DELAY_NS = 1_000_000
export const NVME_DEFAULT_DISABLE_DELAY_NS = 100_000
export const NVME_DEFAULT_SHUTDOWN_DELAY_NS = 1_000_000
export const NVME_DEFAULT_COMMAND_LATENCY_NS = 5_000
export const NVME_DEFAULT_BYTES_PER_NS = 7
/** Extra latency of a delay-completion fault without delayNs (1 ms). */
export const NVME_FAULT_DELAY_NS = 1_000_000
/** The status an error-status fault completes a command with when its rule has none. */
export const NVME_FAULT_STATUS = NVME_SC_INTERNAL
