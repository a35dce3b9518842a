/**
 * The copy engine's register map, bit fields, error codes and chain-descriptor layout, as listed
 * in its datasheet (docs/devices/copy-engine.md). The model is devices/copy-engine.ts.
 *
 * The names follow a Linux driver header's style (UPPER_CASE, one prefix per device), so the
 * datasheet, the model and a driver written against them read alike. PCI identity: vendor 0x1de5,
 * device 0xce01, class 0x088000 (base system peripheral, other), one 4 KiB 64-bit BAR 0 holding
 * the registers, the MSI-X table (1 vector) at 0x800 and its PBA at 0xc00.
 */

export const CE_VENDOR_ID = 0x1de5
export const CE_DEVICE_ID = 0xce01
export const CE_CLASS = 0x088000 /* base system peripheral, other */
export const CE_BAR_SIZE = 0x1000
export const CE_MSIX_TABLE = 0x800
export const CE_MSIX_PBA = 0xc00

/* Registers (BAR 0, 32-bit) */
export const CE_ID = 0x00
export const CE_VERSION = 0x04
export const CE_SRAM_SIZE = 0x08
export const CE_SRC_LO = 0x10
export const CE_SRC_HI = 0x14
export const CE_DST_LO = 0x18
export const CE_DST_HI = 0x1c
export const CE_LEN = 0x20
export const CE_CTRL = 0x24
export const CE_STATUS = 0x28
export const CE_ERR_CODE = 0x2c
export const CE_DESC_LO = 0x30
export const CE_DESC_HI = 0x34
export const CE_DESC_COUNT = 0x38
export const CE_PIO_ADDR = 0x40
export const CE_PIO_DATA = 0x44

export const CE_ID_VALUE = 0xce01_1de5
export const CE_VERSION_VALUE = 0x0001_0000

export const CE_CTRL_START = 0x1
export const CE_CTRL_IRQ_EN = 0x2
export const CE_CTRL_MODE_SHIFT = 4
export const CE_CTRL_MODE_MASK = 0x30
export const CE_CTRL_CHAIN = 0x100
export const CE_MODE_MEM_TO_MEM = 0
export const CE_MODE_MEM_TO_SRAM = 1
export const CE_MODE_SRAM_TO_MEM = 2

export const CE_STATUS_BUSY = 0x1
export const CE_STATUS_DONE = 0x2
export const CE_STATUS_ERR = 0x4
export const CE_STATUS_DESC_DONE = 0x8

/* ERR_CODE: bits 7:0 the code, bits 15:8 the MemTxResult of a failed DMA */
export const CE_ERR_NONE = 0
export const CE_ERR_BUSY = 1
export const CE_ERR_LEN = 2
export const CE_ERR_SRAM_RANGE = 3
export const CE_ERR_MODE = 4
export const CE_ERR_DESC_ALIGN = 5
export const CE_ERR_DESC_FLAGS = 6
export const CE_ERR_DMA_READ = 7
export const CE_ERR_DMA_WRITE = 8
export const CE_ERR_DESC_READ = 9
export const CE_ERR_CHAIN_TOO_LONG = 10
export const CE_ERR_INTERNAL = 0xff

/* Chain descriptor (32 bytes, little-endian, 32-byte aligned) */
export const CE_DESC_SIZE = 32
export const CE_DESC_SRC = 0
export const CE_DESC_DST = 8
export const CE_DESC_LEN = 16
export const CE_DESC_FLAGS = 20
export const CE_DESC_NEXT = 24
export const CE_DESC_LAST = 0x1
export const CE_DESC_IRQ = 0x2

/** Longest single transfer or descriptor (64 MiB). */
export const CE_MAX_LEN = 0x400_0000
/** Descriptors one chain may run before the engine gives up (DESC_COUNT is 16 bits wide). */
export const CE_MAX_CHAIN = 0xffff
/** Default bytes moved per DMA burst (the `burstBytes` option: a power of two, 4 KiB .. 1 MiB). */
export const CE_DEFAULT_BURST = 0x1_0000
/** Extra latency of a delay-completion fault without delayNs (1 ms). */
export const CE_FAULT_DELAY_NS = 1_000_000
