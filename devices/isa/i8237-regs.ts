/**
 * The 8237A DMA controller pair's port map and bit fields, as on the PC/AT and as listed in its
 * datasheet (docs/devices/i8237.md). Names follow Linux's arch/x86/include/asm/dma.h where it has
 * one (DMA1_*, DMA2_*, DMA_MODE_*), the rest follow the Intel 8237A data sheet's register names.
 *
 * The model is devices/isa/i8237.ts; the ports are ISA I/O ports, which this emulator reaches
 * through BAR 0 of the ISA bridge (devices/isa/bridge.ts) at their port offsets.
 */

/** Channels: 0-3 on the first (8-bit) controller, 4-7 on the second (16-bit); 4 cascades. */
export const I8237_CHANNELS = 8
export const I8237_CASCADE_CHANNEL = 4

/* First controller (channels 0-3): ports 0x00-0x0f */
export const DMA1_BASE = 0x00
export const DMA1_CMD_REG = 0x08 /* command register (w) */
export const DMA1_STAT_REG = 0x08 /* status register (r) */
export const DMA1_REQ_REG = 0x09 /* request register (w) */
export const DMA1_MASK_REG = 0x0a /* single-channel mask (w) */
export const DMA1_MODE_REG = 0x0b /* mode (w) */
export const DMA1_CLEAR_FF_REG = 0x0c /* clear pointer flip-flop (w) */
export const DMA1_TEMP_REG = 0x0d /* temporary register (r) */
export const DMA1_RESET_REG = 0x0d /* master clear (w) */
export const DMA1_CLR_MASK_REG = 0x0e /* clear all mask bits (w) */
export const DMA1_MASK_ALL_REG = 0x0f /* all-channels mask (w) */

/* Second controller (channels 4-7): ports 0xc0-0xdf, registers on even ports (A0 is unused) */
export const DMA2_BASE = 0xc0
export const DMA2_CMD_REG = 0xd0
export const DMA2_STAT_REG = 0xd0
export const DMA2_REQ_REG = 0xd2
export const DMA2_MASK_REG = 0xd4
export const DMA2_MODE_REG = 0xd6
export const DMA2_CLEAR_FF_REG = 0xd8
export const DMA2_TEMP_REG = 0xda
export const DMA2_RESET_REG = 0xda
export const DMA2_CLR_MASK_REG = 0xdc
export const DMA2_MASK_ALL_REG = 0xde

/** Register index within a controller (port = base + (index << shift); shift 0 for DMA1, 1 for DMA2). */
export const I8237_REG_CMD = 8
export const I8237_REG_REQ = 9
export const I8237_REG_MASK = 10
export const I8237_REG_MODE = 11
export const I8237_REG_CLEAR_FF = 12
export const I8237_REG_RESET = 13
export const I8237_REG_CLR_MASK = 14
export const I8237_REG_MASK_ALL = 15

/** Page registers by channel (channel 4's 0x8f is the refresh page: unused). */
export const DMA_PAGE_PORTS: readonly number[] = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a]
export const DMA_PAGE_0 = 0x87
export const DMA_PAGE_1 = 0x83
export const DMA_PAGE_2 = 0x81
export const DMA_PAGE_3 = 0x82
export const DMA_PAGE_5 = 0x8b
export const DMA_PAGE_6 = 0x89
export const DMA_PAGE_7 = 0x8a

/* Mode register: channel 1:0, transfer type 3:2, auto-init 4, decrement 5, mode 7:6 */
export const DMA_MODE_CHAN_MASK = 0x03
export const DMA_MODE_TYPE_MASK = 0x0c
export const DMA_MODE_VERIFY = 0x00
export const DMA_MODE_TYPE_WRITE = 0x04 /* write to memory (I/O -> memory) */
export const DMA_MODE_TYPE_READ = 0x08 /* read from memory (memory -> I/O) */
export const DMA_MODE_TYPE_ILLEGAL = 0x0c
export const DMA_AUTOINIT = 0x10
export const DMA_MODE_DECREMENT = 0x20
export const DMA_MODE_SEL_MASK = 0xc0
export const DMA_MODE_DEMAND = 0x00
export const DMA_MODE_SINGLE = 0x40
export const DMA_MODE_BLOCK = 0x80
export const DMA_MODE_CASCADE = 0xc0
/** Linux's names (asm/dma.h): "I/O to memory, no autoinit, increment, single mode" and back. */
export const DMA_MODE_READ = 0x44
export const DMA_MODE_WRITE = 0x48

/* Command register: bit 0 memory-to-memory, bit 2 controller disable; the rest are timing options */
export const DMA_CMD_MEM_TO_MEM = 0x01
export const DMA_CMD_DISABLE = 0x04
/** Command bits the model does not implement (as QEMU's CMD_NOT_SUPPORTED): all but 0x04. */
export const DMA_CMD_NOT_SUPPORTED = 0xfb

/* Status register: terminal count bits 3:0 (cleared on read), request bits 7:4 */
export const DMA_STAT_TC_MASK = 0x0f
export const DMA_STAT_REQ_SHIFT = 4

/** ISA DMA reaches the low 16 MiB: 24 address bits (page << 16 | address). */
export const ISA_DMA_ADDRESS_BITS = 24
export const MAX_DMA_ADDRESS = 0x100_0000
