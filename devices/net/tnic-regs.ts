/**
 * The tnic's register map, bit fields and descriptor layouts, as listed in its datasheet
 * (docs/devices/tnic.md). The model is devices/net/tnic.ts.
 *
 * Offsets, bits and the 16-byte legacy descriptors are the Intel 8254x ones (PCI/PCI-X Family of
 * Gigabit Ethernet Controllers Software Developer's Manual, §3.2 receive descriptors, §3.3
 * transmit descriptors, §13 registers), with the names of Linux's
 * drivers/net/ethernet/intel/e1000/e1000_hw.h and QEMU's hw/net/e1000x_regs.h behind a TNIC_
 * prefix, so a driver written against them reads like e1000 code. PCI identity: vendor 0x1de5,
 * device 0x0e10, class 0x020000 (network, Ethernet); one 128 KiB 64-bit BAR 0 holding the
 * registers, the MSI-X table (1 vector) at 0x1c000 and its PBA at 0x1d000.
 */

export const TNIC_VENDOR_ID = 0x1de5
export const TNIC_DEVICE_ID = 0x0e10
export const TNIC_CLASS = 0x020000 /* network controller, Ethernet */
export const TNIC_REVISION = 1
export const TNIC_BAR_SIZE = 0x2_0000
export const TNIC_MSIX_TABLE = 0x1_c000
export const TNIC_MSIX_PBA = 0x1_d000

/* Registers (BAR 0, 32-bit accesses only) */
export const TNIC_CTRL = 0x0000
export const TNIC_STATUS = 0x0008
export const TNIC_ICR = 0x00c0
export const TNIC_ITR = 0x00c4
export const TNIC_ICS = 0x00c8
export const TNIC_IMS = 0x00d0
export const TNIC_IMC = 0x00d8
export const TNIC_RCTL = 0x0100
export const TNIC_TCTL = 0x0400
export const TNIC_RDBAL = 0x2800
export const TNIC_RDBAH = 0x2804
export const TNIC_RDLEN = 0x2808
export const TNIC_RDH = 0x2810
export const TNIC_RDT = 0x2818
export const TNIC_TDBAL = 0x3800
export const TNIC_TDBAH = 0x3804
export const TNIC_TDLEN = 0x3808
export const TNIC_TDH = 0x3810
export const TNIC_TDT = 0x3818
/* Statistics: read-to-clear, saturating at 0xffffffff */
export const TNIC_MPC = 0x4010
export const TNIC_GPRC = 0x4074
export const TNIC_GPTC = 0x4080
export const TNIC_GORCL = 0x4088
export const TNIC_GORCH = 0x408c
export const TNIC_GOTCL = 0x4090
export const TNIC_GOTCH = 0x4094
export const TNIC_RNBC = 0x40a0
/* Receive address 0 */
export const TNIC_RAL0 = 0x5400
export const TNIC_RAH0 = 0x5404

/** Every register the tnic decodes, by name (what TnicDevice.reg() accepts). */
export const TNIC_REGISTERS = {
  CTRL: TNIC_CTRL,
  STATUS: TNIC_STATUS,
  ICR: TNIC_ICR,
  ITR: TNIC_ITR,
  ICS: TNIC_ICS,
  IMS: TNIC_IMS,
  IMC: TNIC_IMC,
  RCTL: TNIC_RCTL,
  TCTL: TNIC_TCTL,
  RDBAL: TNIC_RDBAL,
  RDBAH: TNIC_RDBAH,
  RDLEN: TNIC_RDLEN,
  RDH: TNIC_RDH,
  RDT: TNIC_RDT,
  TDBAL: TNIC_TDBAL,
  TDBAH: TNIC_TDBAH,
  TDLEN: TNIC_TDLEN,
  TDH: TNIC_TDH,
  TDT: TNIC_TDT,
  MPC: TNIC_MPC,
  GPRC: TNIC_GPRC,
  GPTC: TNIC_GPTC,
  GORCL: TNIC_GORCL,
  GORCH: TNIC_GORCH,
  GOTCL: TNIC_GOTCL,
  GOTCH: TNIC_GOTCH,
  RNBC: TNIC_RNBC,
  RAL0: TNIC_RAL0,
  RAH0: TNIC_RAH0,
} as const

export type TnicRegister = keyof typeof TNIC_REGISTERS

/* CTRL */
export const TNIC_CTRL_FD = 0x0000_0001
export const TNIC_CTRL_SLU = 0x0000_0040
export const TNIC_CTRL_RST = 0x0400_0000

/* STATUS (read-only) */
export const TNIC_STATUS_FD = 0x0000_0001
export const TNIC_STATUS_LU = 0x0000_0002
export const TNIC_STATUS_SPEED_MASK = 0x0000_00c0
export const TNIC_STATUS_SPEED_1000 = 0x0000_0080

/* Interrupt causes (ICR, ICS, IMS, IMC) */
export const TNIC_ICR_TXDW = 0x0000_0001
export const TNIC_ICR_TXQE = 0x0000_0002
export const TNIC_ICR_LSC = 0x0000_0004
export const TNIC_ICR_RXDMT0 = 0x0000_0010
export const TNIC_ICR_RXO = 0x0000_0040
export const TNIC_ICR_RXT0 = 0x0000_0080
/** Set in the value an ICR read returns when (ICR & IMS) != 0: "this interrupt is ours". */
export const TNIC_ICR_INT_ASSERTED = 0x8000_0000
/** The causes the device raises (the others are stored when set through ICS, and never raised). */
export const TNIC_ICR_CAUSES = TNIC_ICR_TXDW | TNIC_ICR_TXQE | TNIC_ICR_LSC | TNIC_ICR_RXDMT0 | TNIC_ICR_RXO | TNIC_ICR_RXT0

/** ITR counts in units of 256 ns; the interval field is 16 bits. */
export const TNIC_ITR_UNIT_NS = 256
export const TNIC_ITR_MASK = 0xffff

/* RCTL */
export const TNIC_RCTL_EN = 0x0000_0002
export const TNIC_RCTL_SBP = 0x0000_0004
export const TNIC_RCTL_UPE = 0x0000_0008
export const TNIC_RCTL_MPE = 0x0000_0010
export const TNIC_RCTL_LPE = 0x0000_0020
export const TNIC_RCTL_RDMTS_HALF = 0x0000_0000
export const TNIC_RCTL_RDMTS_QUAT = 0x0000_0100
export const TNIC_RCTL_RDMTS_EIGTH = 0x0000_0200
export const TNIC_RCTL_RDMTS_MASK = 0x0000_0300
export const TNIC_RCTL_RDMTS_SHIFT = 8
export const TNIC_RCTL_BAM = 0x0000_8000
export const TNIC_RCTL_SZ_2048 = 0x0000_0000
export const TNIC_RCTL_SZ_1024 = 0x0001_0000
export const TNIC_RCTL_SZ_512 = 0x0002_0000
export const TNIC_RCTL_SZ_256 = 0x0003_0000
export const TNIC_RCTL_SZ_MASK = 0x0003_0000
export const TNIC_RCTL_BSEX = 0x0200_0000
export const TNIC_RCTL_SECRC = 0x0400_0000

/* TCTL */
export const TNIC_TCTL_EN = 0x0000_0002
export const TNIC_TCTL_PSP = 0x0000_0008

/** RDLEN/TDLEN keep bits 19:7 (QEMU's set_dlen mask): a multiple of 128 bytes = 8 descriptors. */
export const TNIC_DLEN_MASK = 0x000f_ff80
/** Ring index registers (RDH/RDT/TDH/TDT) are 16 bits wide. */
export const TNIC_INDEX_MASK = 0xffff

/** RAH: bits 15:0 hold MAC bytes 4 and 5; AV (address valid) enables the entry. */
export const TNIC_RAH_AV = 0x8000_0000

/* Descriptors: 16 bytes, little-endian, in a ring of RDLEN/16 (TDLEN/16) entries */
export const TNIC_DESC_SIZE = 16

/* Legacy RX descriptor (struct e1000_rx_desc) */
export const TNIC_RXD_ADDR = 0 /* u64 buffer_addr (driver) */
export const TNIC_RXD_LENGTH = 8 /* u16 bytes written to this buffer (device) */
export const TNIC_RXD_CSUM = 10 /* u16 packet checksum (device; always 0 here) */
export const TNIC_RXD_STATUS = 12 /* u8 status (device) */
export const TNIC_RXD_ERRORS = 13 /* u8 errors (device) */
export const TNIC_RXD_SPECIAL = 14 /* u16 VLAN tag (device; always 0 here) */
export const TNIC_RXD_STAT_DD = 0x01
export const TNIC_RXD_STAT_EOP = 0x02
export const TNIC_RXD_ERR_CE = 0x01
export const TNIC_RXD_ERR_SE = 0x02
export const TNIC_RXD_ERR_SEQ = 0x04
export const TNIC_RXD_ERR_CXE = 0x10
export const TNIC_RXD_ERR_TCPE = 0x20
export const TNIC_RXD_ERR_IPE = 0x40
export const TNIC_RXD_ERR_RXE = 0x80
/** Errors that make a frame bad (Linux's E1000_RXD_ERR_FRAME_ERR_MASK). */
export const TNIC_RXD_ERR_FRAME_ERR_MASK = TNIC_RXD_ERR_CE | TNIC_RXD_ERR_SE | TNIC_RXD_ERR_SEQ | TNIC_RXD_ERR_CXE | TNIC_RXD_ERR_RXE

/* Legacy TX descriptor (struct e1000_tx_desc) */
export const TNIC_TXD_ADDR = 0 /* u64 buffer_addr */
export const TNIC_TXD_LENGTH = 8 /* u16 bytes in this buffer */
export const TNIC_TXD_CSO = 10 /* u8 checksum offset (ignored) */
export const TNIC_TXD_CMD = 11 /* u8 command */
export const TNIC_TXD_STATUS = 12 /* u8 status (device writes DD) */
export const TNIC_TXD_CSS = 13 /* u8 checksum start (ignored) */
export const TNIC_TXD_SPECIAL = 14 /* u16 VLAN tag (ignored) */
export const TNIC_TXD_CMD_EOP = 0x01
export const TNIC_TXD_CMD_IFCS = 0x02
export const TNIC_TXD_CMD_IC = 0x04
export const TNIC_TXD_CMD_RS = 0x08
export const TNIC_TXD_CMD_RPS = 0x10
export const TNIC_TXD_CMD_DEXT = 0x20
export const TNIC_TXD_CMD_VLE = 0x40
export const TNIC_TXD_CMD_IDE = 0x80
export const TNIC_TXD_STAT_DD = 0x01
/** DTYP = data (bit 20 of the second dword: bit 4 of byte 10) in an extended (DEXT) descriptor. */
export const TNIC_TXD_DTYP_D = 0x10

/** The largest frame the transmitter sends (8254x manual: 16288 bytes); longer ones are cut or dropped. */
export const TNIC_TX_MAX_FRAME = 16288
/** The largest frame received without RCTL.LPE (1514 + a 4-byte VLAN tag), and with it (16 KiB - FCS). */
export const TNIC_RX_MAX_SHORT = 1518
export const TNIC_RX_MAX_LONG = 16380
/** Bytes of received frames the on-chip FIFO holds while they wait for their DMA (the 8254x's 48 KiB). */
export const TNIC_RX_FIFO_BYTES = 48 * 1024
/** Defaults of the latency options: TDT write to TX processing, frame arrival to its RX DMA (ns). */
export const TNIC_DEFAULT_TX_LATENCY_NS = 500
export const TNIC_DEFAULT_RX_LATENCY_NS = 200
/** Extra latency of a delay-completion fault without delayNs (1 ms). */
export const TNIC_FAULT_DELAY_NS = 1_000_000
/** The errors byte an error-status fault writes when its rule has no status (RXE). */
export const TNIC_FAULT_RX_ERRORS = TNIC_RXD_ERR_RXE
/** The default MAC address; its last byte grows with the number at the end of the device name. */
export const TNIC_DEFAULT_MAC = '52:54:00:12:34:56'
