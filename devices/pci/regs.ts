/**
 * PCI configuration-space registers and bits, with Linux's names and values.
 *
 * Values from include/uapi/linux/pci_regs.h (type 0 header, the MSI-X capability and its table
 * entries), which follows the PCI Local Bus Specification 3.0 §6 and PCI Express Base
 * Specification §7.7.2 (MSI-X). Names stay in UPPER_CASE as in C, so the kernel side and the
 * device models read alike. Only what dmalab's functions implement is listed.
 */

/** Size of the conventional configuration space a function decodes. */
export const PCI_CFG_SPACE_SIZE = 256

/* Type 0 header */
export const PCI_VENDOR_ID = 0x00 /* 16 bits */
export const PCI_DEVICE_ID = 0x02 /* 16 bits */
export const PCI_COMMAND = 0x04 /* 16 bits */
export const PCI_COMMAND_IO = 0x1 /* Enable response in I/O space */
export const PCI_COMMAND_MEMORY = 0x2 /* Enable response in Memory space */
export const PCI_COMMAND_MASTER = 0x4 /* Enable bus mastering */
export const PCI_COMMAND_SPECIAL = 0x8 /* Enable response to special cycles */
export const PCI_COMMAND_PARITY = 0x40 /* Enable parity checking */
export const PCI_COMMAND_SERR = 0x100 /* Enable SERR */
export const PCI_COMMAND_INTX_DISABLE = 0x400 /* INTx Emulation Disable */

export const PCI_STATUS = 0x06 /* 16 bits */
export const PCI_STATUS_IMM_READY = 0x01 /* Immediate Readiness */
export const PCI_STATUS_INTERRUPT = 0x08 /* Interrupt status */
export const PCI_STATUS_CAP_LIST = 0x10 /* Support Capability List */

export const PCI_CLASS_REVISION = 0x08 /* High 24 bits are class, low 8 revision */
export const PCI_REVISION_ID = 0x08 /* Revision ID */
export const PCI_CLASS_PROG = 0x09 /* Reg. Level Programming Interface */
export const PCI_CLASS_DEVICE = 0x0a /* Device class */
export const PCI_CACHE_LINE_SIZE = 0x0c /* 8 bits */
export const PCI_LATENCY_TIMER = 0x0d /* 8 bits */
export const PCI_HEADER_TYPE = 0x0e /* 8 bits */
export const PCI_HEADER_TYPE_NORMAL = 0

/* Base addresses: 0x10-0x24 */
export const PCI_BASE_ADDRESS_0 = 0x10 /* 32 bits */
export const PCI_BASE_ADDRESS_1 = 0x14 /* 32 bits [htype 0,1 only] */
export const PCI_BASE_ADDRESS_2 = 0x18 /* 32 bits [htype 0 only] */
export const PCI_BASE_ADDRESS_3 = 0x1c /* 32 bits */
export const PCI_BASE_ADDRESS_4 = 0x20 /* 32 bits */
export const PCI_BASE_ADDRESS_5 = 0x24 /* 32 bits */
export const PCI_BASE_ADDRESS_SPACE = 0x01 /* 0 = memory, 1 = I/O */
export const PCI_BASE_ADDRESS_SPACE_MEMORY = 0x00
export const PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00 /* 32 bit address */
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04 /* 64 bit address */
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08 /* prefetchable? */
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0 /* ~0x0f */
/** Number of BAR registers in a type 0 header. */
export const PCI_STD_NUM_BARS = 6

export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c
export const PCI_SUBSYSTEM_ID = 0x2e
export const PCI_CAPABILITY_LIST = 0x34 /* Offset of first capability list entry */
export const PCI_INTERRUPT_LINE = 0x3c /* 8 bits */
export const PCI_INTERRUPT_PIN = 0x3d /* 8 bits */
export const PCI_MIN_GNT = 0x3e /* 8 bits */
export const PCI_MAX_LAT = 0x3f /* 8 bits */

/* Capability lists */
export const PCI_CAP_LIST_ID = 0 /* Capability ID */
export const PCI_CAP_LIST_NEXT = 1 /* Next capability in the list */
export const PCI_CAP_ID_MSI = 0x05 /* Message Signalled Interrupts */
export const PCI_CAP_ID_MSIX = 0x11 /* MSI-X */

/* MSI-X registers (in MSI-X capability) */
export const PCI_MSIX_FLAGS = 2 /* Message Control */
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff /* Table size */
export const PCI_MSIX_FLAGS_MASKALL = 0x4000 /* Mask all vectors for this function */
export const PCI_MSIX_FLAGS_ENABLE = 0x8000 /* MSI-X enable */
export const PCI_MSIX_TABLE = 4 /* Table offset */
export const PCI_MSIX_TABLE_BIR = 0x00000007 /* BAR index */
export const PCI_MSIX_TABLE_OFFSET = 0xfffffff8 /* Offset into specified BAR */
export const PCI_MSIX_PBA = 8 /* Pending Bit Array offset */
export const PCI_MSIX_PBA_BIR = 0x00000007 /* BAR index */
export const PCI_MSIX_PBA_OFFSET = 0xfffffff8 /* Offset into specified BAR */
export const PCI_CAP_MSIX_SIZEOF = 12 /* size of MSIX registers */

/* MSI-X Table entry format (PCI_MSIX_ENTRY_SIZE bytes each, in the BAR) */
export const PCI_MSIX_ENTRY_SIZE = 16
export const PCI_MSIX_ENTRY_LOWER_ADDR = 0x0 /* Message Address */
export const PCI_MSIX_ENTRY_UPPER_ADDR = 0x4 /* Message Upper Address */
export const PCI_MSIX_ENTRY_DATA = 0x8 /* Message Data */
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 0xc /* Vector Control */
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x00000001

/** Interrupt pins (PCI_INTERRUPT_PIN values): 0 none, 1..4 INTA#..INTD#. */
export const PCI_INTERRUPT_INTA = 1
export const PCI_INTERRUPT_INTB = 2
export const PCI_INTERRUPT_INTC = 3
export const PCI_INTERRUPT_INTD = 4
