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
 */
import {
  EINVAL, PAGE_SIZE, bytes_to_frames, defineStruct, mem_read32, ptr_add, readl, snd_pcm_substream_chip,
  type CpuAddr, type DmaAddr, type IoAddr, type SndPcmSubstream,
} from 'dmalab'
import { HDA_REG_SD_LPIB } from 'dmalab/devices'

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
  const periods = Math.floor(s.bufsize / s.period_bytes)
  if (periods < 2) return -EINVAL
  let frags = 0
  let ofs = 0
  for (let p = 0; p < periods; p++) {
    let size = s.period_bytes
    while (size > 0) {
      if (frags >= MAX_BDL_ENTRIES) return -EINVAL
      const chunk = Math.min(size, PAGE_SIZE - (ofs % PAGE_SIZE))
      const e = bdl_entry.at(s.bdl.cpu, frags)
      e.addr = BigInt(dma_addr) + BigInt(ofs)
      e.len = chunk
      size -= chunk
      ofs += chunk
      e.ioc = size === 0 ? BDL_IOC : 0 // one interrupt per period, when all of it is played
      frags++
    }
  }
  s.frags = frags
  return 0
}

/** pointer (atomic): the hardware position in frames, from the position buffer or from LPIB. */
export function lab_pointer(sub: SndPcmSubstream): number {
  const chip = snd_pcm_substream_chip<Chip>(sub)
  const s = sub.runtime!.private_data as Stream
  let pos = s.use_lpib ? readl(ptr_add(s.sd_addr, HDA_REG_SD_LPIB)) : mem_read32(chip.posbuf.cpu, 8 * s.index)
  if (pos >= s.bufsize) pos = 0 // the end of the ring is its start
  return bytes_to_frames(sub.runtime!, pos)
}
