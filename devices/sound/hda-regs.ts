/**
 * The mini-HDA controller's register map, bit fields, BDL layout, stream format fields, codec
 * verbs and parameters, as listed in its datasheet (docs/devices/hda.md). The model is
 * devices/sound/hda.ts.
 *
 * Offsets and bits are the Intel High Definition Audio Specification 1.0a ones (§3.3 controller
 * registers, §3.6 buffer descriptor list, §3.7 stream format, §7.3 codec verbs and parameters),
 * cross-checked against QEMU's hw/audio/intel-hda-defs.h (ICH6_REG_*, copied from Linux) and
 * Linux's include/sound/hda_register.h (AZX_REG_*, SD_*) and include/sound/hda_verbs.h (AC_*).
 * Names follow the specification (GCTL.CRST, SDnCTL.SRST, SDnSTS.BCIS) behind an HDA_ prefix;
 * each comment names Linux's equivalent where it differs. The controller has one input and one
 * output stream (GCAP 0x1101), so the stream descriptors are ISD0 at 0x80 and OSD0 at 0xa0
 * (stream indexes 0 and 1: their INTCTL/INTSTS bits and position-buffer slots).
 * PCI identity: vendor 0x1de5, device 0xa0da, class 0x040300 (multimedia, HD audio).
 */

export const HDA_VENDOR_ID = 0x1de5
export const HDA_DEVICE_ID = 0xa0da
export const HDA_CLASS = 0x040300 /* multimedia controller, HD audio (PCI_CLASS_MULTIMEDIA_HD_AUDIO << 8) */
export const HDA_REVISION = 1
/** BAR 0: 16 KiB, as Intel's HDA controllers (registers below 0x100, aliases at 0x2000 + offset). */
export const HDA_BAR_SIZE = 0x4000
export const HDA_MSIX_TABLE = 0x3000
export const HDA_MSIX_PBA = 0x3800

/* Global registers (BAR 0; 8-, 16- and 32-bit accesses) */
export const HDA_REG_GCAP = 0x00 /* Global Capabilities (16, RO) */
export const HDA_REG_VMIN = 0x02 /* Minor Version (8, RO) */
export const HDA_REG_VMAJ = 0x03 /* Major Version (8, RO) */
export const HDA_REG_OUTPAY = 0x04 /* Output Payload Capability (16, RO) */
export const HDA_REG_INPAY = 0x06 /* Input Payload Capability (16, RO) */
export const HDA_REG_GCTL = 0x08 /* Global Control (32) */
export const HDA_REG_WAKEEN = 0x0c /* Wake Enable (16) */
export const HDA_REG_STATESTS = 0x0e /* State Change Status (16, W1C) */
export const HDA_REG_INTCTL = 0x20 /* Interrupt Control (32) */
export const HDA_REG_INTSTS = 0x24 /* Interrupt Status (32, RO) */
export const HDA_REG_WALLCLK = 0x30 /* Wall Clock Counter (32, RO, 24 MHz) */
export const HDA_REG_SSYNC = 0x38 /* Stream Synchronization (32; stored, no effect) */
export const HDA_REG_CORB_FIRST = 0x40 /* CORB/RIRB registers 0x40..0x5f: not implemented */
export const HDA_REG_CORB_LAST = 0x5f
export const HDA_REG_IC = 0x60 /* Immediate Command Output (32) — Linux AZX_REG_IC */
export const HDA_REG_IR = 0x64 /* Immediate Response Input (32, RO) — Linux AZX_REG_IR */
export const HDA_REG_ICS = 0x68 /* Immediate Command Status (16) — Linux AZX_REG_IRS */
export const HDA_REG_DPLBASE = 0x70 /* DMA Position Buffer Lower Base (32) */
export const HDA_REG_DPUBASE = 0x74 /* DMA Position Buffer Upper Base (32) */
/** Aliases: WALLCLK at 0x2030, each stream's LPIB at 0x2000 + its LPIB offset (read-only). */
export const HDA_REG_ALIAS = 0x2000
export const HDA_REG_WALLCLK_ALIAS = HDA_REG_ALIAS + HDA_REG_WALLCLK

/* Stream descriptors: input streams first (GCAP.ISS), then output streams (GCAP.OSS) */
export const HDA_SD_BASE = 0x80
export const HDA_SD_STRIDE = 0x20
export const HDA_REG_ISD0 = 0x80 /* input stream descriptor 0 (stream index 0) */
export const HDA_REG_OSD0 = 0xa0 /* output stream descriptor 0 (stream index 1) */
export const HDA_STREAM_INDEX_IN = 0
export const HDA_STREAM_INDEX_OUT = 1
/* Offsets within a stream descriptor */
export const HDA_REG_SD_CTL = 0x00 /* Stream Descriptor Control (24 bits: bytes 0..2) */
export const HDA_REG_SD_CTL2 = 0x02 /* the third byte of SD_CTL (stream tag, stripe, TP, DIR) — Linux SD_CTL_3B */
export const HDA_REG_SD_STS = 0x03 /* Stream Descriptor Status (8) */
export const HDA_REG_SD_LPIB = 0x04 /* Link Position in Buffer (32, RO) */
export const HDA_REG_SD_CBL = 0x08 /* Cyclic Buffer Length (32) */
export const HDA_REG_SD_LVI = 0x0c /* Last Valid Index (16; bits 7:0) */
export const HDA_REG_SD_FIFOW = 0x0e /* FIFO Watermark (16; stored, no effect) */
export const HDA_REG_SD_FIFOS = 0x10 /* FIFO Size (16, RO): burst bytes - 1 — Linux SD_FIFOSIZE */
export const HDA_REG_SD_FMT = 0x12 /* Stream Format (16) — Linux SD_FORMAT */
export const HDA_REG_SD_BDPL = 0x18 /* BDL Pointer Lower Base (32) — Linux SD_BDLPL */
export const HDA_REG_SD_BDPU = 0x1c /* BDL Pointer Upper Base (32) — Linux SD_BDLPU */

/* GCAP: OSS 15:12, ISS 11:8, BSS 7:3, NSDO 2:1, 64OK 0 */
export const HDA_GCAP_64OK = 1 << 0
export const HDA_GCAP_ISS_SHIFT = 8
export const HDA_GCAP_OSS_SHIFT = 12
export const HDA_GCAP_VALUE = (1 << HDA_GCAP_OSS_SHIFT) | (1 << HDA_GCAP_ISS_SHIFT) | HDA_GCAP_64OK /* 0x1101 */
export const HDA_VMAJ_VALUE = 1
export const HDA_VMIN_VALUE = 0
export const HDA_OUTPAY_VALUE = 0x3c
export const HDA_INPAY_VALUE = 0x1d

/* GCTL */
export const HDA_GCTL_CRST = 1 << 0 /* controller reset: 0 = in reset (Linux AZX_GCTL_RESET) */
export const HDA_GCTL_FCNTRL = 1 << 1 /* flush control (self-clearing, no effect) */
export const HDA_GCTL_UNSOL = 1 << 8 /* accept unsolicited responses (stored, no effect) */

/* STATESTS / WAKEEN: one bit per codec address (codec 0 only here) */
export const HDA_STATESTS_SDIWAKE0 = 1 << 0
export const HDA_STATESTS_MASK = 0x7fff

/* INTCTL / INTSTS */
export const HDA_INTCTL_SIE_MASK = 0x03 /* stream interrupt enables, bit = stream index (ISD0 bit 0, OSD0 bit 1) */
export const HDA_INTCTL_CIE = 1 << 30 /* controller interrupt enable (Linux AZX_INT_CTRL_EN) */
export const HDA_INTCTL_GIE = 0x8000_0000 /* GIE: the interrupt output's enable (Linux AZX_INT_GLOBAL_EN) */
export const HDA_INTSTS_SIS_MASK = 0x03 /* stream interrupt status, bit = stream index */
export const HDA_INTSTS_CIS = 1 << 30 /* controller interrupt status (STATESTS & WAKEEN) */
export const HDA_INTSTS_GIS = 0x8000_0000 /* GIS: any enabled SIS or CIS */

/* ICS (immediate command status) */
export const HDA_ICS_ICB = 1 << 0 /* immediate command busy: write 1 to send IC (Linux AZX_IRS_BUSY) */
export const HDA_ICS_IRV = 1 << 1 /* immediate result valid, W1C (Linux AZX_IRS_VALID) */
export const HDA_ICS_IRRADD_SHIFT = 4 /* bits 7:4: the codec address of the response in IR */

/* DPLBASE */
export const HDA_DPLBASE_ENABLE = 1 << 0 /* DMA position buffer enable (Linux AZX_DPLBASE_ENABLE) */
export const HDA_DPLBASE_ADDR_MASK = 0xffffff80 /* the buffer is 128-byte aligned: bits 6:1 read 0 */
export const HDA_POSBUF_STRIDE = 8 /* each stream's slot: LPIB as a little-endian u32 at base + 8 × index */

/* SD_CTL (bits of the 24-bit register; byte 2 = bits 23:16) */
export const HDA_SD_CTL_SRST = 1 << 0 /* stream reset (Linux SD_CTL_STREAM_RESET) */
export const HDA_SD_CTL_RUN = 1 << 1 /* stream run (Linux SD_CTL_DMA_START) */
export const HDA_SD_CTL_IOCE = 1 << 2 /* interrupt on completion enable (Linux SD_INT_COMPLETE) */
export const HDA_SD_CTL_FEIE = 1 << 3 /* FIFO error interrupt enable (Linux SD_INT_FIFO_ERR) */
export const HDA_SD_CTL_DEIE = 1 << 4 /* descriptor error interrupt enable (Linux SD_INT_DESC_ERR) */
export const HDA_SD_CTL_INT_MASK = HDA_SD_CTL_IOCE | HDA_SD_CTL_FEIE | HDA_SD_CTL_DEIE /* Linux SD_INT_MASK */
export const HDA_SD_CTL_STRIPE_SHIFT = 16 /* bits 17:16 (one SDO line: stored, no effect) */
export const HDA_SD_CTL_TP = 1 << 18 /* traffic priority (stored, no effect) */
export const HDA_SD_CTL_DIR = 1 << 19 /* bidirectional direction (no bidirectional streams: stored, no effect) */
export const HDA_SD_CTL_STRM_SHIFT = 20 /* stream tag, bits 23:20 (Linux SD_CTL_STREAM_TAG_SHIFT) */
export const HDA_SD_CTL_STRM_MASK = 0xf << HDA_SD_CTL_STRM_SHIFT
/** The SD_CTL bits software can write. */
export const HDA_SD_CTL_WRITABLE = 0xff001f

/* SD_STS */
export const HDA_SD_STS_BCIS = 1 << 2 /* buffer completion interrupt status, W1C (Linux SD_INT_COMPLETE) */
export const HDA_SD_STS_FIFOE = 1 << 3 /* FIFO error, W1C (Linux SD_INT_FIFO_ERR) */
export const HDA_SD_STS_DESE = 1 << 4 /* descriptor error, W1C (Linux SD_INT_DESC_ERR) */
export const HDA_SD_STS_FIFORDY = 1 << 5 /* FIFO ready (RO; Linux SD_STS_FIFO_READY) */
export const HDA_SD_STS_W1C = HDA_SD_STS_BCIS | HDA_SD_STS_FIFOE | HDA_SD_STS_DESE

/* SD_LVI, BDPL */
export const HDA_SD_LVI_MASK = 0xff
export const HDA_SD_BDPL_MASK = 0xffffff80 /* the BDL is 128-byte aligned: bits 6:0 read 0 */

/* Buffer descriptor list entries (16 bytes, little-endian) */
export const HDA_BDLE_SIZE = 16
export const HDA_BDLE_ADDR = 0 /* u64 buffer address */
export const HDA_BDLE_LEN = 8 /* u32 length in bytes */
export const HDA_BDLE_FLAGS = 12 /* u32 flags */
export const HDA_BDLE_IOC = 1 << 0 /* interrupt on completion */
export const HDA_BDL_MAX_ENTRIES = 256 /* LVI is 8 bits */
/** Strict mode: buffer addresses, lengths and CBL are multiples of 4 bytes (Linux hda_controller.c: "multiple of 4 bytes (HDA spec)"). */
export const HDA_BUFFER_ALIGN = 4

/* Stream format (SD_FMT and the converters' SET_STREAM_FORMAT payload; Linux AC_FMT_*) */
export const HDA_FMT_CHAN_MASK = 0x000f /* channels - 1 */
export const HDA_FMT_BITS_SHIFT = 4 /* bits 6:4: 0 = 8, 1 = 16, 2 = 20, 3 = 24, 4 = 32; 5..7 reserved */
export const HDA_FMT_BITS_MASK = 0x7 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_BITS_8 = 0 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_BITS_16 = 1 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_BITS_20 = 2 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_BITS_24 = 3 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_BITS_32 = 4 << HDA_FMT_BITS_SHIFT
export const HDA_FMT_DIV_SHIFT = 8 /* bits 10:8: divisor - 1 (1..8) */
export const HDA_FMT_DIV_MASK = 0x7 << HDA_FMT_DIV_SHIFT
export const HDA_FMT_MULT_SHIFT = 11 /* bits 13:11: multiplier - 1 (1..4); 4..7 reserved */
export const HDA_FMT_MULT_MASK = 0x7 << HDA_FMT_MULT_SHIFT
export const HDA_FMT_BASE_44K = 1 << 14 /* base rate 44.1 kHz (0: 48 kHz) */
export const HDA_FMT_TYPE_NON_PCM = 1 << 15 /* non-PCM data (passed through like PCM) */
/** The FMT bits that exist (bit 7 is reserved). */
export const HDA_FMT_MASK = 0xff7f

/* Codec verbs (command = CAd << 28 | NID << 20 | verb << 8 | payload, as Linux's make_codec_cmd) */
export const HDA_CMD_CAD_SHIFT = 28
export const HDA_CMD_NID_SHIFT = 20
export const HDA_CMD_INDIRECT = 1 << 27 /* indirect NID addressing: not supported */
export const HDA_VERB_GET_PARAMETER = 0xf00 /* Linux AC_VERB_PARAMETERS */
export const HDA_VERB_GET_CONV = 0xf06 /* converter stream, channel */
export const HDA_VERB_SET_CONV = 0x706 /* Linux AC_VERB_SET_CHANNEL_STREAMID: payload stream << 4 | channel */
export const HDA_VERB_GET_POWER_STATE = 0xf05
export const HDA_VERB_SET_POWER_STATE = 0x705
export const HDA_VERB_SET_CODEC_RESET = 0x7ff /* on the audio function group */
/* Four-bit verbs with a 16-bit payload, written as Linux writes them (verb << 8 leaves bits 19:16) */
export const HDA_VERB_SET_STREAM_FORMAT = 0x200
export const HDA_VERB_SET_AMP_GAIN_MUTE = 0x300
export const HDA_VERB_GET_STREAM_FORMAT = 0xa00
export const HDA_VERB_GET_AMP_GAIN_MUTE = 0xb00
/* GET_PARAMETER ids (Linux AC_PAR_*) */
export const HDA_PARAM_VENDOR_ID = 0x00
export const HDA_PARAM_SUBSYSTEM_ID = 0x01
export const HDA_PARAM_REV_ID = 0x02
export const HDA_PARAM_NODE_COUNT = 0x04
export const HDA_PARAM_FUNCTION_TYPE = 0x05
export const HDA_PARAM_AUDIO_FG_CAP = 0x08
export const HDA_PARAM_AUDIO_WIDGET_CAP = 0x09
export const HDA_PARAM_PCM = 0x0a
export const HDA_PARAM_STREAM = 0x0b
export const HDA_PARAM_POWER_STATE = 0x0f
/* Codec 0's nodes */
export const HDA_NID_ROOT = 0x00
export const HDA_NID_AFG = 0x01 /* audio function group */
export const HDA_NID_DAC = 0x02 /* audio output converter: plays OSD0's stream into the AudioSink */
export const HDA_NID_ADC = 0x03 /* audio input converter: records from the AudioSource into ISD0's stream */
export const HDA_CODEC_VENDOR_ID = 0x1de5a0da /* GET_PARAMETER(VENDOR_ID) on the root node */
export const HDA_CODEC_REV_ID = 0x00100100 /* HDA 1.0, revision 1 */
export const HDA_FUNCTION_TYPE_AUDIO = 0x01
export const HDA_WCAP_TYPE_SHIFT = 20 /* widget type: 0 audio output, 1 audio input */
export const HDA_WCAP_TYPE_AUD_OUT = 0
export const HDA_WCAP_TYPE_AUD_IN = 1
export const HDA_WCAP_STEREO = 1 << 0
export const HDA_WCAP_FORMAT_OVRD = 1 << 4
export const HDA_WCAP_CHAN_CNT_EXT_SHIFT = 13 /* (ext << 1 | stereo) + 1 channels: 7 → 16 */
/** PCM parameter: rates 8 kHz..192 kHz (bits 10:0) and 8/16/20/24/32-bit samples (bits 20:16). */
export const HDA_PCM_CAPS = 0x1f07ff
export const HDA_STREAM_CAPS_PCM = 0x1
export const HDA_POWER_STATE_CAPS = 0x9 /* D0 and D3 supported */
export const HDA_CONV_STREAM_SHIFT = 4 /* SET_CONV payload: stream 7:4, channel 3:0 */

/* Defaults (datasheet "Options") */
export const HDA_DEFAULT_BURST_BYTES = 4096
export const HDA_DEFAULT_CRST_DELAY_NS = 100_000
export const HDA_DEFAULT_CODEC_WAKE_DELAY_NS = 500_000
export const HDA_DEFAULT_SRST_DELAY_NS = 1_000
export const HDA_DEFAULT_CODEC_LATENCY_NS = 21_000 /* about one 48 kHz link frame */
/** delay-completion's default extra delay. */
export const HDA_FAULT_DELAY_NS = 1_000_000
/** WALLCLK ticks per second. */
export const HDA_WALLCLK_HZ = 24_000_000

type SdRegister = 'CTL' | 'STS' | 'LPIB' | 'CBL' | 'LVI' | 'FIFOW' | 'FIFOS' | 'FMT' | 'BDPL' | 'BDPU'

/* CTL is read as 32 bits (SD_CTL with SD_STS in bits 31:24, as a 32-bit read returns them); reg() masks it to SD_CTL's 24 bits. */
const SD_FIELDS: readonly (readonly [SdRegister, number, 1 | 2 | 4])[] = [
  ['CTL', HDA_REG_SD_CTL, 4],
  ['STS', HDA_REG_SD_STS, 1],
  ['LPIB', HDA_REG_SD_LPIB, 4],
  ['CBL', HDA_REG_SD_CBL, 4],
  ['LVI', HDA_REG_SD_LVI, 2],
  ['FIFOW', HDA_REG_SD_FIFOW, 2],
  ['FIFOS', HDA_REG_SD_FIFOS, 2],
  ['FMT', HDA_REG_SD_FMT, 2],
  ['BDPL', HDA_REG_SD_BDPL, 4],
  ['BDPU', HDA_REG_SD_BDPU, 4],
]

function streamRegisters<P extends string>(p: P, base: number): Record<`${P}${SdRegister}`, readonly [number, 1 | 2 | 4]> {
  const r: Record<string, readonly [number, 1 | 2 | 4]> = {}
  for (const [n, off, size] of SD_FIELDS) r[`${p}${n}`] = [base + off, size]
  return r
}

/** Every register the controller decodes, by name (what HdaController.reg() accepts), with its width. */
export const HDA_REGISTERS = {
  GCAP: [HDA_REG_GCAP, 2],
  VMIN: [HDA_REG_VMIN, 1],
  VMAJ: [HDA_REG_VMAJ, 1],
  OUTPAY: [HDA_REG_OUTPAY, 2],
  INPAY: [HDA_REG_INPAY, 2],
  GCTL: [HDA_REG_GCTL, 4],
  WAKEEN: [HDA_REG_WAKEEN, 2],
  STATESTS: [HDA_REG_STATESTS, 2],
  INTCTL: [HDA_REG_INTCTL, 4],
  INTSTS: [HDA_REG_INTSTS, 4],
  WALLCLK: [HDA_REG_WALLCLK, 4],
  SSYNC: [HDA_REG_SSYNC, 4],
  IC: [HDA_REG_IC, 4],
  IR: [HDA_REG_IR, 4],
  ICS: [HDA_REG_ICS, 2],
  DPLBASE: [HDA_REG_DPLBASE, 4],
  DPUBASE: [HDA_REG_DPUBASE, 4],
  ...streamRegisters('ISD0', HDA_REG_ISD0),
  ...streamRegisters('OSD0', HDA_REG_OSD0),
} as const satisfies Record<string, readonly [number, 1 | 2 | 4]>

export type HdaRegister = keyof typeof HDA_REGISTERS

/** A codec command word (Linux's make_codec_cmd): 12-bit verbs take an 8-bit payload, 4-bit ones (0x200, 0xa00, ...) a 16-bit one. */
export function hdaCommand(cad: number, nid: number, verb: number, payload = 0): number {
  return ((cad & 0xf) * 2 ** HDA_CMD_CAD_SHIFT + (((nid & 0x7f) << HDA_CMD_NID_SHIFT) | ((verb & 0xfff) << 8) | (payload & 0xffff))) >>> 0
}
