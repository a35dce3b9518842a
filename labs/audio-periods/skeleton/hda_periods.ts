/**
 * hda_periods: the period plumbing of the mini-HDA controller's output stream (datasheet
 * docs/devices/hda.md §4, §5 and §8), as in Linux's snd_hdac_stream_setup_periods / setup_bdle and
 * azx_pcm_pointer / azx_get_position.
 *
 * The rest of the driver (controller and codec bring-up, stream reset, SD registers, the interrupt
 * handler and azx_position_ok, ALSA) is dmalab's reference mini-HDA driver. It calls
 * lab_setup_periods() from the PCM prepare (before the stream is set up: it writes LVI =
 * s.frags - 1 and CBL = s.bufsize after you return), and lab_pointer() whenever ALSA wants the
 * position (atomic context: at each period interrupt, and at any moment the application asks).
 *
 * LAB SKELETON: write lab_setup_periods and lab_pointer (the TODOs), then
 * `dmalab lab check audio-periods <this folder>`. Stuck? `dmalab lab hint audio-periods [n]`.
 */
// What you will need (add it to the imports as you go):
//   from 'dmalab': EINVAL, PAGE_SIZE, bytes_to_frames, mem_read32, ptr_add, readl, snd_pcm_substream_chip
//   from 'dmalab/devices': HDA_REG_SD_LPIB
import { ENOSYS, defineStruct, type CpuAddr, type DmaAddr, type IoAddr, type SndPcmSubstream } from 'dmalab'

// ---------------------------------------------------------------- what the reference driver gives you

/** One buffer descriptor list entry (datasheet §5): 16 bytes in the coherent BDL. */
export const bdl_entry = defineStruct('bdl_entry', {
  addr: 'u64', // the bus address of the piece
  len: 'u32', // its length in bytes
  ioc: 'u32', // bit 0: Interrupt On Completion (BCIS and an interrupt when the engine finishes the piece)
})
export const BDL_IOC = 0x1
/** Entries the BDL has room for (the controller takes up to 256). */
export const MAX_BDL_ENTRIES = 256

/** What the lab uses of a stream (struct azx_dev / hdac_stream). */
export interface Stream {
  index: number // the stream's slot in the position buffer (8 bytes each)
  sd_addr: IoAddr // its stream descriptor registers (SD_LPIB at HDA_REG_SD_LPIB)
  bdl: { cpu: CpuAddr; dma: DmaAddr } // the BDL (coherent)
  bufsize: number // the ring's bytes (CBL)
  period_bytes: number // a period's bytes
  frags: number // BDL entries in use: set it (the driver writes LVI = frags - 1)
  /** Set by the driver when the position buffer was seen not to move: read LPIB instead. */
  use_lpib: boolean
}

/** What the lab uses of the controller (struct azx): the position buffer (coherent, 8 bytes per stream, u32 position first). */
export interface Chip {
  posbuf: { cpu: CpuAddr; dma: DmaAddr }
}

// ---------------------------------------------------------------- the lab

/**
 * setup_periods: the BDL for a ring at `dma_addr` of s.bufsize bytes in periods of
 * s.period_bytes: each period cut at the 4 KiB page boundaries it crosses (setup_bdle), IOC only
 * on the last piece of each period. 0 or -EINVAL.
 */
export function lab_setup_periods(s: Stream, dma_addr: DmaAddr): number {
  // TODO(1): the number of periods in the ring (fewer than 2: return -EINVAL).
  // TODO(2): walk the ring period by period with a byte offset: cut each period where it crosses
  //          a PAGE_SIZE boundary, one BDL entry per piece (bdl_entry.at(s.bdl.cpu, n): addr is
  //          the piece's bus address, len its bytes), at most MAX_BDL_ENTRIES entries.
  // TODO(3): IOC (BDL_IOC) on the last piece of each period, 0 on the others.
  // TODO(4): s.frags = the number of entries you wrote; return 0.
  void s
  void dma_addr
  return -ENOSYS
}

/** pointer (atomic): the hardware position in frames, from the position buffer or from LPIB. */
export function lab_pointer(sub: SndPcmSubstream): number {
  // TODO(5): the stream's position in bytes: the u32 the controller writes by DMA at 8 * s.index
  //          in the chip's position buffer (chip = snd_pcm_substream_chip<Chip>(sub),
  //          s = sub.runtime!.private_data as Stream), or, when s.use_lpib is set, the stream's
  //          LPIB register. A position of s.bufsize or more is 0. Return it in frames.
  void sub
  return 0
}
