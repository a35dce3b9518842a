/**
 * hda_hw: the driver's view of the mini-HDA controller (docs/devices/hda.md) — register offsets,
 * bits, the BDL entry and the codec verbs, with the names of Linux's include/sound/hda_register.h
 * and include/sound/hda_verbs.h. As in Linux, the driver keeps its own copy of the hardware
 * definitions: it never imports the device model.
 */
import { defineStruct } from '../../kernel/index.js'

export const HDA_VENDOR_ID = 0x1de5
export const HDA_DEVICE_ID = 0xa0da

/* Global registers (BAR 0) */
export const AZX_REG_GCAP = 0x00
export const AZX_REG_VMIN = 0x02
export const AZX_REG_VMAJ = 0x03
export const AZX_REG_GCTL = 0x08
export const AZX_GCTL_RESET = 1 << 0
export const AZX_REG_WAKEEN = 0x0c
export const AZX_REG_STATESTS = 0x0e
export const AZX_STATESTS_INT_MASK = 0x7fff
export const AZX_REG_INTCTL = 0x20
export const AZX_INT_CTRL_EN = 1 << 30
export const AZX_INT_GLOBAL_EN = 1 << 31
export const AZX_REG_INTSTS = 0x24
export const AZX_INT_ALL_STREAM = 0xff
export const AZX_REG_WALLCLK = 0x30
export const AZX_REG_IC = 0x60
export const AZX_REG_IR = 0x64
export const AZX_REG_IRS = 0x68
export const AZX_IRS_VALID = 1 << 1
export const AZX_IRS_BUSY = 1 << 0
export const AZX_REG_DPLBASE = 0x70
export const AZX_REG_DPUBASE = 0x74
export const AZX_DPLBASE_ENABLE = 0x1

/* GCAP fields */
export const AZX_GCAP_64OK = 1 << 0
export const gcap_iss = (gcap: number): number => (gcap >> 8) & 0x0f
export const gcap_oss = (gcap: number): number => (gcap >> 12) & 0x0f

/* Stream descriptors: 0x80 + 0x20 × index, input streams first */
export const AZX_SD_BASE = 0x80
export const AZX_SD_SIZE = 0x20
export const SD_CTL = 0x00
export const SD_CTL_3B = 0x02
export const SD_STS = 0x03
export const SD_LPIB = 0x04
export const SD_CBL = 0x08
export const SD_LVI = 0x0c
export const SD_FIFOW = 0x0e
export const SD_FIFOSIZE = 0x10
export const SD_FORMAT = 0x12
export const SD_BDLPL = 0x18
export const SD_BDLPU = 0x1c

/* SDnCTL */
export const SD_CTL_STREAM_RESET = 0x01
export const SD_CTL_DMA_START = 0x02
export const SD_INT_COMPLETE = 0x04 // IOCE (in SDnCTL), BCIS (in SDnSTS)
export const SD_INT_FIFO_ERR = 0x08 // FEIE / FIFOE
export const SD_INT_DESC_ERR = 0x10 // DEIE / DESE
export const SD_INT_MASK = SD_INT_DESC_ERR | SD_INT_FIFO_ERR | SD_INT_COMPLETE
export const SD_CTL_STREAM_TAG_SHIFT = 20
export const SD_CTL_STREAM_TAG_MASK = 0xf << SD_CTL_STREAM_TAG_SHIFT
export const SD_STS_FIFO_READY = 0x20

/* The BDL: 16-byte entries, the list 128-byte aligned, at most 256 entries */
export const AZX_BDL_ENTRY_SIZE = 16
export const AZX_MAX_BDL_ENTRIES = 256
export const AZX_BDL_IOC = 0x1
export const hda_bdl_entry = defineStruct('hda_bdl_entry', {
  addr: 'u64',
  len: 'u32',
  ioc: 'u32',
})

/* Codec verbs (hda_verbs.h) */
export const AC_VERB_PARAMETERS = 0xf00
export const AC_VERB_GET_CONV = 0xf06
export const AC_VERB_SET_CHANNEL_STREAMID = 0x706
export const AC_VERB_SET_STREAM_FORMAT = 0x200
export const AC_VERB_GET_STREAM_FORMAT = 0xa00
export const AC_PAR_VENDOR_ID = 0x00
export const AC_PAR_NODE_COUNT = 0x04
/** The converters of codec 0 (docs/devices/hda.md §9). */
export const HDA_NID_DAC = 2
export const HDA_NID_ADC = 3

/** make_codec_cmd for verbs with a 12-bit verb id and an 8-bit payload, or 4-bit verbs with 16 bits. */
export function make_codec_cmd(cad: number, nid: number, verb: number, parm: number): number {
  return ((cad << 28) | (nid << 20) | (verb << 8) | parm) >>> 0
}

/** snd_hdac_calc_stream_format for the PCM rates this driver offers. */
export function hda_calc_stream_format(rate: number, channels: number, bits: number): number {
  let val = 0
  if (rate === 44100) val |= 0x4000
  else if (rate !== 48000) return 0
  switch (bits) {
    case 8: break
    case 16: val |= 0x10; break
    case 20: val |= 0x20; break
    case 24: val |= 0x30; break
    case 32: val |= 0x40; break
    default: return 0
  }
  return val | (channels - 1)
}
