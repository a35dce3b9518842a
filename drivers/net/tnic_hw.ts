/**
 * tnic_hw: the driver's view of the tnic hardware (docs/devices/tnic.md) — register offsets, bits
 * and the 16-byte legacy descriptors, with the names and values of Linux's
 * drivers/net/ethernet/intel/e1000/e1000_hw.h. As in Linux, the driver keeps its own copy of the
 * hardware definitions: it never imports the device model.
 */
import { defineStruct } from '../../kernel/index.js'

export const TNIC_VENDOR_ID = 0x1de5
export const TNIC_DEVICE_ID = 0x0e10

/* Registers (BAR 0, 32-bit accesses only) */
export const E1000_CTRL = 0x00000
export const E1000_STATUS = 0x00008
export const E1000_ICR = 0x000c0
export const E1000_ITR = 0x000c4
export const E1000_ICS = 0x000c8
export const E1000_IMS = 0x000d0
export const E1000_IMC = 0x000d8
export const E1000_RCTL = 0x00100
export const E1000_TCTL = 0x00400
export const E1000_RDBAL = 0x02800
export const E1000_RDBAH = 0x02804
export const E1000_RDLEN = 0x02808
export const E1000_RDH = 0x02810
export const E1000_RDT = 0x02818
export const E1000_TDBAL = 0x03800
export const E1000_TDBAH = 0x03804
export const E1000_TDLEN = 0x03808
export const E1000_TDH = 0x03810
export const E1000_TDT = 0x03818
export const E1000_MPC = 0x04010
export const E1000_GPRC = 0x04074
export const E1000_GPTC = 0x04080
export const E1000_RNBC = 0x040a0
export const E1000_RAL0 = 0x05400
export const E1000_RAH0 = 0x05404

/* CTRL */
export const E1000_CTRL_FD = 0x00000001
export const E1000_CTRL_SLU = 0x00000040
export const E1000_CTRL_RST = 0x04000000

/* STATUS */
export const E1000_STATUS_FD = 0x00000001
export const E1000_STATUS_LU = 0x00000002

/* Interrupt causes (ICR/ICS/IMS/IMC) */
export const E1000_ICR_TXDW = 0x00000001
export const E1000_ICR_TXQE = 0x00000002
export const E1000_ICR_LSC = 0x00000004
export const E1000_ICR_RXDMT0 = 0x00000010
export const E1000_ICR_RXO = 0x00000040
export const E1000_ICR_RXT0 = 0x00000080
export const E1000_ICR_INT_ASSERTED = 0x80000000
/** What the driver enables: e1000's IMS_ENABLE_MASK. */
export const IMS_ENABLE_MASK = E1000_ICR_RXT0 | E1000_ICR_TXDW | E1000_ICR_RXDMT0 | E1000_ICR_RXO | E1000_ICR_LSC

/* RCTL */
export const E1000_RCTL_EN = 0x00000002
export const E1000_RCTL_UPE = 0x00000008
export const E1000_RCTL_MPE = 0x00000010
export const E1000_RCTL_RDMTS_HALF = 0x00000000
export const E1000_RCTL_BAM = 0x00008000
export const E1000_RCTL_SZ_2048 = 0x00000000
export const E1000_RCTL_SECRC = 0x04000000

/* TCTL */
export const E1000_TCTL_EN = 0x00000002
export const E1000_TCTL_PSP = 0x00000008

export const E1000_RAH_AV = 0x80000000

/* Receive descriptor status and errors */
export const E1000_RXD_STAT_DD = 0x01
export const E1000_RXD_STAT_EOP = 0x02
export const E1000_RXD_ERR_FRAME_ERR_MASK = 0xe3 // CE | SE | SEQ | CXE | RXE

/* Transmit descriptor command and status */
export const E1000_TXD_CMD_EOP = 0x01
export const E1000_TXD_CMD_IFCS = 0x02
export const E1000_TXD_CMD_RS = 0x08
export const E1000_TXD_CMD_DEXT = 0x20
export const E1000_TXD_STAT_DD = 0x01

/** struct e1000_rx_desc: 16 bytes, little-endian. */
export const e1000_rx_desc = defineStruct('e1000_rx_desc', {
  buffer_addr: 'u64',
  length: 'u16',
  csum: 'u16',
  status: 'u8',
  errors: 'u8',
  special: 'u16',
})

/**
 * struct e1000_tx_desc (legacy): 16 bytes, little-endian. As in C, the lower and upper dwords are
 * unions: the driver writes them whole (`lower_data`, `upper_data`) or field by field.
 */
export const e1000_tx_desc = defineStruct('e1000_tx_desc', {
  buffer_addr: { offset: 0, type: 'u64' },
  /** union lower: data = cmd << 24 | cso << 16 | length */
  lower_data: { offset: 8, type: 'u32' },
  length: { offset: 8, type: 'u16' },
  cso: { offset: 10, type: 'u8' },
  cmd: { offset: 11, type: 'u8' },
  /** union upper: data = special << 16 | css << 8 | status */
  upper_data: { offset: 12, type: 'u32' },
  status: { offset: 12, type: 'u8' },
  css: { offset: 13, type: 'u8' },
  special: { offset: 14, type: 'u16' },
})

export const E1000_DESC_SIZE = 16
