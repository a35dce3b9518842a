/**
 * hda: the reference driver for the mini-HDA controller (PCI 1de5:a0da; datasheet
 * docs/devices/hda.md), written the way Linux's sound/pci/hda/hda_intel.c, hda_controller.c and
 * sound/hda/hdac_stream.c are, reduced to one input and one output stream and one codec:
 *
 * - probe (azx_probe, azx_first_init, snd_hdac_bus_init_chip): managed PCI resources, a 64-bit DMA
 *   mask, bus mastering, one MSI-X vector or the shared INTx line, the link reset handshake
 *   (GCTL.CRST), codec discovery (STATESTS), the DMA position buffer and the BDLs in coherent
 *   memory, a card with one PCM device (one playback, one capture substream) whose ring buffers
 *   are managed coherent buffers;
 * - PCM ops (azx_pcm_*): open with HDA's constraints, prepare (the SRST handshake, a BDL entry per
 *   period with IOC, CBL, LVI, FMT, BDPL/BDPU, the stream tag, and the codec converter through the
 *   immediate command interface), trigger (WALLCLK as the start time, RUN | IOCE | FEIE | DEIE,
 *   atomic), pointer (the position buffer, or LPIB when the position buffer turns out not to move);
 * - the interrupt handler (azx_interrupt): INTSTS, then each stream's SDnSTS cleared (W1C) and,
 *   on BCIS, azx_position_ok (the wall clock and the position: a period, an early interrupt for
 *   azx_irq_pending_work to look at again, or a bogus one), then snd_pcm_period_elapsed; looping
 *   until INTSTS reads 0 (MSI-X is edge-triggered);
 * - remove (azx_remove, snd_hdac_bus_stop_chip): snd_card_free, the controller stopped and put
 *   back in reset, the vector freed; coherent memory is device-managed (dmam_alloc_coherent).
 */
import {
  DMA_BIT_MASK, EBUSY, EINVAL, EIO, ENODEV, ENOMEM, IRQF_SHARED, IRQ_HANDLED, IRQ_NONE, IS_ERR, PCI_IRQ_INTX,
  PCI_IRQ_MSIX, PTR_ERR, SNDRV_DEFAULT_IDX1, SNDRV_DEFAULT_STR1, SNDRV_DMA_TYPE_DEV, SNDRV_PCM_FMTBIT_S16_LE,
  SNDRV_PCM_HW_PARAM_BUFFER_BYTES, SNDRV_PCM_HW_PARAM_PERIODS, SNDRV_PCM_HW_PARAM_PERIOD_BYTES,
  SNDRV_PCM_INFO_BLOCK_TRANSFER, SNDRV_PCM_INFO_INTERLEAVED, SNDRV_PCM_INFO_MMAP, SNDRV_PCM_INFO_MMAP_VALID,
  SNDRV_PCM_INFO_PAUSE, SNDRV_PCM_RATE_44100, SNDRV_PCM_RATE_48000, SNDRV_PCM_STREAM_CAPTURE,
  SNDRV_PCM_STREAM_PLAYBACK, SNDRV_PCM_TRIGGER_PAUSE_PUSH, SNDRV_PCM_TRIGGER_PAUSE_RELEASE, SNDRV_PCM_TRIGGER_RESUME,
  SNDRV_PCM_TRIGGER_START, SNDRV_PCM_TRIGGER_STOP, SNDRV_PCM_TRIGGER_SUSPEND, bytes_to_frames, dev_err, dev_info,
  dev_warn, dma_set_mask_and_coherent, dma_wmb, dmam_alloc_coherent, free_irq, lower_32_bits, mem_read32,
  mem_write32, msleep, INIT_WORK, schedule_work, flush_work, type WorkStruct, pci_alloc_irq_vectors, pci_get_drvdata, pci_irq_vector, pci_set_drvdata, pci_set_master,
  pcim_enable_device, pcim_iomap_regions, pcim_iomap_table, ptr_add, readb, readl, readw, request_irq,
  snd_card_free, snd_card_new, snd_card_register, snd_pcm_hw_constraint_integer, snd_pcm_hw_constraint_step,
  snd_pcm_lib_buffer_bytes, snd_pcm_lib_period_bytes, snd_pcm_new, snd_pcm_period_elapsed,
  snd_pcm_set_managed_buffer_all, snd_pcm_set_ops, snd_pcm_substream_chip, spin_lock, spin_lock_init, spin_lock_irq, spin_unlock_irq,
  spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, udelay, upper_32_bits, writeb, writel, writew,
  type DmaAddr, type DmaBuffer, type IoAddr, type PciDev, type PciDeviceId, type PciDriver,
  type SndCard, type SndPcm, type SndPcmHardware, type SndPcmOps, type SndPcmSubstream, type SpinLock,
} from '../../kernel/index.js'
import {
  AC_PAR_VENDOR_ID, AC_VERB_PARAMETERS, AC_VERB_SET_CHANNEL_STREAMID, AC_VERB_SET_STREAM_FORMAT, AZX_BDL_ENTRY_SIZE,
  AZX_BDL_IOC, AZX_DPLBASE_ENABLE, AZX_GCAP_64OK, AZX_GCTL_RESET, AZX_INT_CTRL_EN,
  AZX_INT_GLOBAL_EN, AZX_IRS_BUSY, AZX_IRS_VALID, AZX_MAX_BDL_ENTRIES, AZX_REG_DPLBASE, AZX_REG_DPUBASE,
  AZX_REG_GCAP, AZX_REG_GCTL, AZX_REG_IC, AZX_REG_INTCTL, AZX_REG_INTSTS, AZX_REG_IR, AZX_REG_IRS,
  AZX_REG_STATESTS, AZX_REG_WALLCLK, AZX_SD_BASE, AZX_SD_SIZE, AZX_STATESTS_INT_MASK, HDA_DEVICE_ID, HDA_NID_ADC, HDA_NID_DAC,
  HDA_VENDOR_ID, SD_BDLPL, SD_BDLPU, SD_CBL, SD_CTL, SD_CTL_3B, SD_CTL_DMA_START, SD_CTL_STREAM_RESET, SD_FORMAT,
  SD_INT_COMPLETE, SD_INT_MASK, SD_LPIB, SD_LVI, SD_STS, gcap_iss, gcap_oss, hda_bdl_entry, hda_calc_stream_format,
  make_codec_cmd,
} from './hda_hw.js'

export * from './hda_hw.js'

export const HDA_DRV_NAME = 'snd_hda_mini'

/** struct hdac_stream / azx_dev: one stream descriptor. */
export interface AzxDev {
  readonly index: number
  readonly direction: number
  readonly sd_addr: IoAddr
  readonly stream_tag: number
  readonly nid: number
  readonly bdl: DmaBuffer
  substream: SndPcmSubstream | null
  running: boolean
  prepared: boolean
  bufsize: number
  period_bytes: number
  frags: number
  format_val: number
  /** The position buffer was seen not to move: read LPIB instead (azx_get_pos_lpib). */
  use_lpib: boolean
  posbuf_checked: boolean
  /** A period interrupt came before the position reached the period: re-checked by the work. */
  irq_pending: boolean
  /** WALLCLK when the stream started, moved on by each accepted period (azx_position_ok). */
  start_wallclk: number
  /** A period in WALLCLK ticks (24 MHz), as snd_hdac_stream_setup computes it. */
  period_wallclk: number
}

/** struct azx / hdac_bus */
export interface Azx {
  readonly pdev: PciDev
  readonly remap_addr: IoAddr
  readonly reg_lock: SpinLock
  irq: number
  codec_mask: number
  posbuf: DmaBuffer
  streams: AzxDev[]
  card: SndCard | null
  pcm: SndPcm | null
  /** azx_irq_pending_work: period interrupts that came early, re-checked from process context. */
  irq_pending_work: WorkStruct
  /** The steps probe installed (HDA_PATHS unless a known-bad variant replaced some). */
  readonly paths: HdaPaths
}

const azx_readl = (chip: Azx, reg: number): number => readl(ptr_add(chip.remap_addr, reg))
const azx_readw = (chip: Azx, reg: number): number => readw(ptr_add(chip.remap_addr, reg))
const azx_readb = (chip: Azx, reg: number): number => readb(ptr_add(chip.remap_addr, reg))
const azx_writel = (chip: Azx, reg: number, v: number): void => writel(v >>> 0, ptr_add(chip.remap_addr, reg))
const azx_writew = (chip: Azx, reg: number, v: number): void => writew(v & 0xffff, ptr_add(chip.remap_addr, reg))
const azx_writeb = (chip: Azx, reg: number, v: number): void => writeb(v & 0xff, ptr_add(chip.remap_addr, reg))
const sd_readl = (s: AzxDev, reg: number): number => readl(ptr_add(s.sd_addr, reg))
const sd_readb = (s: AzxDev, reg: number): number => readb(ptr_add(s.sd_addr, reg))
const sd_writel = (s: AzxDev, reg: number, v: number): void => writel(v >>> 0, ptr_add(s.sd_addr, reg))
const sd_writew = (s: AzxDev, reg: number, v: number): void => writew(v & 0xffff, ptr_add(s.sd_addr, reg))
const sd_writeb = (s: AzxDev, reg: number, v: number): void => writeb(v & 0xff, ptr_add(s.sd_addr, reg))

// ------------------------------------------------------------------------------ the link and the codec

/** snd_hdac_bus_enter_link_reset / snd_hdac_bus_exit_link_reset, with a 100 ms deadline each. */
async function azx_reset(chip: Azx): Promise<number> {
  azx_writew(chip, AZX_REG_STATESTS, AZX_STATESTS_INT_MASK)
  azx_writel(chip, AZX_REG_GCTL, azx_readl(chip, AZX_REG_GCTL) & ~AZX_GCTL_RESET)
  for (let i = 0; i < 100 && (azx_readb(chip, AZX_REG_GCTL) & AZX_GCTL_RESET) !== 0; i++) await msleep(1)
  if ((azx_readb(chip, AZX_REG_GCTL) & AZX_GCTL_RESET) !== 0) return -EBUSY
  udelay(100)
  azx_writeb(chip, AZX_REG_GCTL, azx_readb(chip, AZX_REG_GCTL) | AZX_GCTL_RESET)
  let ok = false
  for (let i = 0; i < 1000; i++) {
    if ((azx_readb(chip, AZX_REG_GCTL) & AZX_GCTL_RESET) !== 0) {
      ok = true
      break
    }
    udelay(100)
  }
  if (!ok) {
    dev_err(chip.pdev.dev, 'controller not ready!')
    return -EBUSY
  }
  // The codecs need at least 521 us after CRST reads 1 to announce themselves (Linux: 1 ms).
  await msleep(1)
  chip.codec_mask = azx_readw(chip, AZX_REG_STATESTS) & AZX_STATESTS_INT_MASK
  azx_writew(chip, AZX_REG_STATESTS, chip.codec_mask)
  return 0
}

/** azx_single_send_cmd + azx_single_get_response: one verb through IC/IR/ICS; the response or -EIO. */
function azx_single_cmd(chip: Azx, cmd: number): number {
  let timeout = 50
  while ((azx_readw(chip, AZX_REG_IRS) & AZX_IRS_BUSY) !== 0) {
    if (--timeout === 0) {
      dev_err(chip.pdev.dev, 'send_cmd timeout: IRS=0x%x, val=0x%x', azx_readw(chip, AZX_REG_IRS), cmd)
      return -EIO
    }
    udelay(1)
  }
  azx_writew(chip, AZX_REG_IRS, azx_readw(chip, AZX_REG_IRS) | AZX_IRS_VALID)
  azx_writel(chip, AZX_REG_IC, cmd)
  azx_writew(chip, AZX_REG_IRS, azx_readw(chip, AZX_REG_IRS) | AZX_IRS_BUSY)
  for (timeout = 200; timeout > 0; timeout--) {
    const irs = azx_readw(chip, AZX_REG_IRS)
    if ((irs & AZX_IRS_BUSY) === 0) {
      if ((irs & AZX_IRS_VALID) === 0) break
      return azx_readl(chip, AZX_REG_IR)
    }
    udelay(1)
  }
  dev_err(chip.pdev.dev, 'get_response timeout: IRS=0x%x, cmd=0x%x', azx_readw(chip, AZX_REG_IRS), cmd)
  return -EIO
}

// ------------------------------------------------------------------------------ streams

/** snd_hdac_stream_reset: RUN cleared, then the SRST handshake (bounded udelay polls). */
export function azx_stream_reset(s: AzxDev): number {
  sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) & ~(SD_CTL_DMA_START | SD_INT_MASK))
  sd_writeb(s, SD_STS, SD_INT_MASK)
  sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) | SD_CTL_STREAM_RESET)
  let timeout = 300
  while ((sd_readb(s, SD_CTL) & SD_CTL_STREAM_RESET) === 0 && --timeout > 0) udelay(3)
  if (timeout === 0) return -EBUSY
  sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) & ~SD_CTL_STREAM_RESET)
  timeout = 300
  while ((sd_readb(s, SD_CTL) & SD_CTL_STREAM_RESET) !== 0 && --timeout > 0) udelay(3)
  if (timeout === 0) return -EBUSY
  return 0
}

/** snd_hdac_stream_setup_periods: one BDL entry per period, IOC on each. */
export function azx_setup_periods(s: AzxDev, dma_addr: DmaAddr): number {
  if (s.frags < 2 || s.frags > AZX_MAX_BDL_ENTRIES) return -EINVAL
  for (let i = 0; i < s.frags; i++) {
    const e = hda_bdl_entry.at(s.bdl.cpu, i)
    e.addr = BigInt(dma_addr) + BigInt(i * s.period_bytes)
    e.len = s.period_bytes
    e.ioc = AZX_BDL_IOC
  }
  return 0
}

/** snd_hdac_stream_setup: the stream tag, CBL, FMT, LVI and the BDL address. */
export function azx_stream_setup(s: AzxDev): void {
  sd_writeb(s, SD_CTL_3B, (sd_readb(s, SD_CTL_3B) & 0x0f) | (s.stream_tag << 4))
  sd_writel(s, SD_CBL, s.bufsize)
  sd_writew(s, SD_FORMAT, s.format_val)
  sd_writew(s, SD_LVI, s.frags - 1)
  sd_writel(s, SD_BDLPL, lower_32_bits(s.bdl.dma))
  sd_writel(s, SD_BDLPU, upper_32_bits(s.bdl.dma))
}

/** The stream's position in bytes: the position buffer, or LPIB (azx_get_position). */
export function azx_get_position(chip: Azx, s: AzxDev): number {
  const pos = s.use_lpib ? sd_readl(s, SD_LPIB) : mem_read32(chip.posbuf.cpu, 8 * s.index)
  return pos >= s.bufsize ? 0 : pos
}

// ------------------------------------------------------------------------------ PCM ops

const azx_pcm_hw: SndPcmHardware = {
  info: SNDRV_PCM_INFO_MMAP | SNDRV_PCM_INFO_INTERLEAVED | SNDRV_PCM_INFO_BLOCK_TRANSFER | SNDRV_PCM_INFO_MMAP_VALID | SNDRV_PCM_INFO_PAUSE,
  formats: SNDRV_PCM_FMTBIT_S16_LE,
  rates: SNDRV_PCM_RATE_44100 | SNDRV_PCM_RATE_48000,
  rate_min: 44100,
  rate_max: 48000,
  channels_min: 2,
  channels_max: 2,
  buffer_bytes_max: 1024 * 1024,
  period_bytes_min: 128,
  period_bytes_max: 512 * 1024,
  periods_min: 2,
  periods_max: AZX_MAX_BDL_ENTRIES,
  fifo_size: 0,
}

const stream_of = (sub: SndPcmSubstream): AzxDev => sub.runtime!.private_data as AzxDev

function azx_stream_for(chip: Azx, sub: SndPcmSubstream): AzxDev {
  return chip.streams.find((s) => s.direction === sub.stream)!
}

function azx_pcm_open(sub: SndPcmSubstream): Promise<number> {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = azx_stream_for(chip, sub)
  const rt = sub.runtime!
  if (s.substream !== null) return Promise.resolve(-EBUSY)
  rt.hw = { ...azx_pcm_hw }
  let err = snd_pcm_hw_constraint_integer(rt, SNDRV_PCM_HW_PARAM_PERIODS)
  if (err >= 0) err = snd_pcm_hw_constraint_step(rt, 0, SNDRV_PCM_HW_PARAM_PERIOD_BYTES, 128)
  if (err >= 0) err = snd_pcm_hw_constraint_step(rt, 0, SNDRV_PCM_HW_PARAM_BUFFER_BYTES, 128)
  if (err < 0) return Promise.resolve(err)
  const flags = spin_lock_irqsave(chip.reg_lock)
  s.substream = sub
  s.running = false
  s.prepared = false
  spin_unlock_irqrestore(chip.reg_lock, flags)
  rt.private_data = s
  return Promise.resolve(0)
}

function azx_pcm_close(sub: SndPcmSubstream): Promise<number> {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = stream_of(sub)
  const flags = spin_lock_irqsave(chip.reg_lock)
  s.substream = null
  s.running = false
  spin_unlock_irqrestore(chip.reg_lock, flags)
  sub.runtime!.private_data = null
  return Promise.resolve(0)
}

function azx_pcm_hw_params(sub: SndPcmSubstream): Promise<number> {
  stream_of(sub).prepared = false
  return Promise.resolve(0)
}

/** azx_pcm_hw_free / snd_hdac_stream_cleanup: the descriptor reset and its BDL pointer cleared. */
export function azx_pcm_hw_free(sub: SndPcmSubstream): Promise<number> {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = stream_of(sub)
  chip.paths.stream_reset(s)
  s.prepared = false
  s.bufsize = 0
  return Promise.resolve(0)
}

/** azx_pcm_prepare: snd_hdac_stream_reset, _setup_periods, _setup, snd_hda_codec_prepare. */
function azx_pcm_prepare(sub: SndPcmSubstream): Promise<number> {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = stream_of(sub)
  const rt = sub.runtime!
  const format_val = hda_calc_stream_format(rt.rate, rt.channels, 16)
  if (format_val === 0) {
    dev_err(chip.pdev.dev, 'invalid format_val, rate=%d, ch=%d', rt.rate, rt.channels)
    return Promise.resolve(-EINVAL)
  }
  let err = chip.paths.stream_reset(s)
  if (err < 0) {
    dev_err(chip.pdev.dev, 'stream %d: SRST handshake timed out', s.index)
    return Promise.resolve(err)
  }
  s.bufsize = snd_pcm_lib_buffer_bytes(sub)
  s.period_bytes = snd_pcm_lib_period_bytes(sub)
  s.frags = Math.floor(s.bufsize / s.period_bytes)
  s.format_val = format_val
  s.use_lpib = false
  s.posbuf_checked = false
  // wallclk has 24Mhz clock source (snd_hdac_stream_setup)
  s.period_wallclk = Math.floor((rt.period_size * 24000) / rt.rate) * 1000
  err = chip.paths.setup_periods(s, rt.dma_addr)
  if (err < 0) return Promise.resolve(err)
  mem_write32(chip.posbuf.cpu, 8 * s.index, 0)
  dma_wmb()
  chip.paths.stream_setup(s)
  // snd_hda_codec_prepare: the converter takes this stream tag and format.
  if (azx_single_cmd(chip, make_codec_cmd(0, s.nid, AC_VERB_SET_CHANNEL_STREAMID, s.stream_tag << 4)) < 0) return Promise.resolve(-EIO)
  if (azx_single_cmd(chip, make_codec_cmd(0, s.nid, AC_VERB_SET_STREAM_FORMAT, s.format_val)) < 0) return Promise.resolve(-EIO)
  s.prepared = true
  return Promise.resolve(0)
}

/** azx_pcm_trigger: snd_hdac_stream_start / snd_hdac_stream_stop (atomic). */
function azx_pcm_trigger(sub: SndPcmSubstream, cmd: number): number {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = stream_of(sub)
  let start: boolean
  switch (cmd) {
    case SNDRV_PCM_TRIGGER_START:
    case SNDRV_PCM_TRIGGER_PAUSE_RELEASE:
    case SNDRV_PCM_TRIGGER_RESUME:
      start = true
      break
    case SNDRV_PCM_TRIGGER_STOP:
    case SNDRV_PCM_TRIGGER_PAUSE_PUSH:
    case SNDRV_PCM_TRIGGER_SUSPEND:
      start = false
      break
    default:
      return -EINVAL
  }
  if (start && !s.prepared) return -EINVAL
  spin_lock(chip.reg_lock)
  if (start) {
    // snd_hdac_stream_start: the start time for azx_position_ok, then SIE, then RUN.
    s.start_wallclk = azx_readl(chip, AZX_REG_WALLCLK)
    azx_writel(chip, AZX_REG_INTCTL, azx_readl(chip, AZX_REG_INTCTL) | (1 << s.index))
    sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) | SD_CTL_DMA_START | SD_INT_MASK)
    s.running = true
  } else {
    sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) & ~(SD_CTL_DMA_START | SD_INT_MASK))
    sd_writeb(s, SD_STS, SD_INT_MASK)
    azx_writel(chip, AZX_REG_INTCTL, azx_readl(chip, AZX_REG_INTCTL) & ~(1 << s.index))
    s.running = false
  }
  spin_unlock(chip.reg_lock)
  // snd_hdac_stream_sync: wait (bounded, busy) until RUN reads what was written.
  for (let n = 0; n < 5000; n++) {
    const run = (sd_readb(s, SD_CTL) & SD_CTL_DMA_START) !== 0
    if (run === start) break
    udelay(3)
  }
  return 0
}

/** azx_pcm_pointer (atomic). */
export function azx_pcm_pointer(sub: SndPcmSubstream): number {
  const chip = snd_pcm_substream_chip<Azx>(sub)
  const s = stream_of(sub)
  return bytes_to_frames(sub.runtime!, azx_get_position(chip, s))
}

const azx_pcm_ops: SndPcmOps = {
  open: azx_pcm_open,
  close: azx_pcm_close,
  hw_params: azx_pcm_hw_params,
  hw_free: (sub) => snd_pcm_substream_chip<Azx>(sub).paths.hw_free(sub),
  prepare: azx_pcm_prepare,
  trigger: azx_pcm_trigger,
  pointer: (sub) => snd_pcm_substream_chip<Azx>(sub).paths.pointer(sub),
}

// ------------------------------------------------------------------------------ interrupts

/** azx_position_ok's answers: the period elapsed; not yet (look again later); a bogus interrupt. */
export const AZX_POS_OK = 1
export const AZX_POS_LATER = 0
export const AZX_POS_BOGUS = -1

/**
 * azx_position_ok (hda_intel.c): whether a period interrupt's period has really elapsed. "Many
 * HD-audio controllers appear pretty inaccurate about the update-IRQ timing. The IRQ is issued
 * before actually the data is processed." The wall clock since the last accepted period (or the
 * start) says how long ago that was: less than 2/3 of a period is a bogus interrupt (dropped);
 * less than 5/4 of a period with the position still in the first half of a period is an early
 * one (AZX_POS_LATER: the work looks again; Linux returns 0 there when bdl_pos_adj is set, as it
 * is by default). An accepted period moves start_wallclk on by the time measured.
 *
 * The position buffer check differs from Linux's in one way: Linux gives up on the position
 * buffer when it reads 0 at the first period interrupt; an early first interrupt can come before
 * the controller has written the buffer at all, so here it must read 0 while LPIB has moved.
 */
export function azx_position_ok(chip: Azx, s: AzxDev): number {
  const wallclk = (azx_readl(chip, AZX_REG_WALLCLK) - s.start_wallclk) >>> 0
  if (wallclk < (s.period_wallclk * 2) / 3) return AZX_POS_BOGUS // bogus (too early) interrupt
  if (!s.posbuf_checked) {
    s.posbuf_checked = true
    const lpib = sd_readl(s, SD_LPIB)
    if (mem_read32(chip.posbuf.cpu, 8 * s.index) === 0 && lpib !== 0) {
      dev_info(chip.pdev.dev, 'Invalid position buffer, using LPIB read method instead.')
      s.use_lpib = true
    }
  }
  const pos = azx_get_position(chip, s)
  if (s.period_bytes === 0) {
    dev_warn(chip.pdev.dev, 'hda-intel: zero azx_dev->period_bytes')
    return AZX_POS_BOGUS // this shouldn't happen!
  }
  if (wallclk < (s.period_wallclk * 5) / 4 && pos % s.period_bytes > s.period_bytes / 2) {
    return AZX_POS_LATER // NG - it's below the first next period boundary
  }
  s.start_wallclk = (s.start_wallclk + wallclk) >>> 0
  return AZX_POS_OK
}

/**
 * azx_irq_pending_work: for each stream whose period interrupt came early, look again every 1 ms
 * until azx_position_ok accepts the period, then report it elapsed — as Linux does for
 * controllers whose interrupts run ahead of their DMA position. (Linux loops until nothing is
 * pending; here at most 20 times, two periods of the shortest ring.)
 */
async function azx_irq_pending_work(chip: Azx): Promise<void> {
  for (let tries = 0; tries < 20; tries++) {
    let pending = 0
    spin_lock_irq(chip.reg_lock)
    for (const s of chip.streams) {
      if (!s.irq_pending || s.substream === null || !s.running) continue
      const ok = chip.paths.position_ok(chip, s)
      if (ok > 0) {
        s.irq_pending = false
        spin_unlock(chip.reg_lock)
        snd_pcm_period_elapsed(s.substream)
        spin_lock(chip.reg_lock)
      } else if (ok < 0) {
        pending = 0 // too early
      } else pending++
    }
    spin_unlock_irq(chip.reg_lock)
    if (pending === 0) return
    await msleep(1)
  }
}

/** azx_interrupt: shared line or one MSI-X vector (edge: loop until INTSTS reads 0). */
export function azx_interrupt(_irq: number, dev_id: unknown): number {
  const chip = dev_id as Azx
  const elapsed: SndPcmSubstream[] = []
  spin_lock(chip.reg_lock)
  let status = azx_readl(chip, AZX_REG_INTSTS)
  if (status === 0 || status === 0xffffffff) {
    spin_unlock(chip.reg_lock)
    return IRQ_NONE
  }
  for (let repeat = 0; repeat < 10 && status !== 0 && status !== 0xffffffff; repeat++) {
    for (const s of chip.streams) {
      if ((status & (1 << s.index)) === 0) continue
      const sd_status = sd_readb(s, SD_STS)
      sd_writeb(s, SD_STS, SD_INT_MASK)
      if ((sd_status & SD_INT_MASK & ~SD_INT_COMPLETE) !== 0) dev_warn(chip.pdev.dev, 'stream %d: error status 0x%x', s.index, sd_status)
      // azx_position_check: a period, an early interrupt to look at again later, or a bogus one.
      if ((sd_status & SD_INT_COMPLETE) !== 0 && s.running && s.substream !== null) {
        const ok = chip.paths.position_ok(chip, s)
        if (ok === AZX_POS_OK) {
          s.irq_pending = false
          if (!elapsed.includes(s.substream)) elapsed.push(s.substream)
        } else if (ok === AZX_POS_LATER) {
          s.irq_pending = true
          schedule_work(chip.irq_pending_work)
        }
      }
    }
    // No codec interrupts here (no unsolicited responses; WAKEEN is 0): clear STATESTS anyway.
    if ((status & AZX_INT_CTRL_EN) !== 0) azx_writew(chip, AZX_REG_STATESTS, AZX_STATESTS_INT_MASK)
    status = azx_readl(chip, AZX_REG_INTSTS)
  }
  spin_unlock(chip.reg_lock)
  for (const sub of elapsed) snd_pcm_period_elapsed(sub)
  return IRQ_HANDLED
}

// ------------------------------------------------------------------------------ probe and remove

/** snd_hdac_bus_stop_chip */
function azx_stop_chip(chip: Azx): void {
  for (const s of chip.streams) {
    sd_writeb(s, SD_CTL, sd_readb(s, SD_CTL) & ~(SD_CTL_DMA_START | SD_INT_MASK))
    sd_writeb(s, SD_STS, SD_INT_MASK)
  }
  azx_writel(chip, AZX_REG_INTCTL, 0)
  azx_writel(chip, AZX_REG_DPLBASE, 0)
  azx_writel(chip, AZX_REG_DPUBASE, 0)
  azx_writel(chip, AZX_REG_GCTL, azx_readl(chip, AZX_REG_GCTL) & ~AZX_GCTL_RESET)
}

async function azx_probe(pdev: PciDev, _id: PciDeviceId, params: HdaParams): Promise<number> {
  let err = pcim_enable_device(pdev)
  if (err !== 0) return err
  err = pcim_iomap_regions(pdev, 1 << 0, HDA_DRV_NAME)
  if (err !== 0) return err
  const chip: Azx = {
    pdev,
    remap_addr: pcim_iomap_table(pdev)[0]!,
    reg_lock: spin_lock_init(),
    irq: -1,
    codec_mask: 0,
    posbuf: null as unknown as DmaBuffer,
    streams: [],
    card: null,
    pcm: null,
    irq_pending_work: null as unknown as WorkStruct,
    paths: { ...HDA_PATHS, ...params.paths },
  }
  chip.irq_pending_work = INIT_WORK(null, () => azx_irq_pending_work(chip))
  const gcap = azx_readw(chip, AZX_REG_GCAP)
  err = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK((gcap & AZX_GCAP_64OK) !== 0 ? 64 : 32))
  if (err !== 0) {
    dev_err(pdev.dev, 'No usable DMA configuration, aborting')
    return err
  }
  pci_set_master(pdev)
  const iss = gcap_iss(gcap)
  const oss = gcap_oss(gcap)
  if (iss < 1 || oss < 1) {
    dev_err(pdev.dev, 'GCAP 0x%x: need an input and an output stream', gcap)
    return -ENODEV
  }
  // Coherent memory: the position buffer (8 bytes per stream) and one BDL per stream.
  const posbuf = dmam_alloc_coherent(pdev.dev, 8 * (iss + oss))
  if (posbuf === null) return -ENOMEM
  chip.posbuf = posbuf
  for (const [index, direction, nid] of [[0, SNDRV_PCM_STREAM_CAPTURE, HDA_NID_ADC], [iss, SNDRV_PCM_STREAM_PLAYBACK, HDA_NID_DAC]] as const) {
    const bdl = dmam_alloc_coherent(pdev.dev, AZX_MAX_BDL_ENTRIES * AZX_BDL_ENTRY_SIZE)
    if (bdl === null) return -ENOMEM
    chip.streams.push({
      index, direction, nid, bdl,
      sd_addr: ptr_add(chip.remap_addr, AZX_SD_BASE + AZX_SD_SIZE * index),
      stream_tag: index + 1,
      substream: null, running: false, prepared: false, bufsize: 0, period_bytes: 0, frags: 0, format_val: 0,
      use_lpib: false, posbuf_checked: false, irq_pending: false, start_wallclk: 0, period_wallclk: 0,
    })
  }
  // snd_hdac_bus_init_chip: the link, then interrupts, then the position buffer.
  err = await azx_reset(chip)
  if (err !== 0) return err
  if ((chip.codec_mask & 1) === 0) {
    dev_err(pdev.dev, 'no codecs found!')
    azx_stop_chip(chip)
    return -ENODEV
  }
  for (const s of chip.streams) sd_writeb(s, SD_STS, SD_INT_MASK)
  azx_writel(chip, AZX_REG_INTCTL, AZX_INT_CTRL_EN | AZX_INT_GLOBAL_EN)
  azx_writel(chip, AZX_REG_DPUBASE, upper_32_bits(posbuf.dma))
  azx_writel(chip, AZX_REG_DPLBASE, lower_32_bits(posbuf.dma) | AZX_DPLBASE_ENABLE)
  const vendor = azx_single_cmd(chip, make_codec_cmd(0, 0, AC_VERB_PARAMETERS, AC_PAR_VENDOR_ID))
  if (vendor < 0) {
    azx_stop_chip(chip)
    return vendor
  }
  const nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (nvec < 0) {
    azx_stop_chip(chip)
    return nvec
  }
  chip.irq = pci_irq_vector(pdev, 0)
  err = request_irq(chip.irq, chip.paths.interrupt, IRQF_SHARED, HDA_DRV_NAME, chip)
  if (err !== 0) {
    dev_err(pdev.dev, 'unable to grab IRQ %d, disabling device', chip.irq)
    azx_stop_chip(chip)
    return err
  }
  // The card (azx_probe_continue, azx_attach_pcm_stream).
  const card = snd_card_new(pdev.dev, SNDRV_DEFAULT_IDX1, SNDRV_DEFAULT_STR1, null, chip)
  if (IS_ERR(card)) {
    azx_stop_chip(chip)
    await free_irq(chip.irq, chip)
    return PTR_ERR(card)
  }
  chip.card = card
  const fail = async (e: number): Promise<number> => {
    await snd_card_free(card)
    azx_stop_chip(chip)
    await free_irq(chip.irq, chip)
    return e
  }
  const pcm = snd_pcm_new(card, 'Generic Analog', 0, 1, 1)
  if (IS_ERR(pcm)) return fail(PTR_ERR(pcm))
  chip.pcm = pcm
  pcm.private_data = chip
  pcm.name = 'Generic Analog'
  snd_pcm_set_ops(pcm, SNDRV_PCM_STREAM_PLAYBACK, azx_pcm_ops)
  snd_pcm_set_ops(pcm, SNDRV_PCM_STREAM_CAPTURE, azx_pcm_ops)
  err = chip.paths.alloc_pcm_buffers(chip, pcm)
  if (err < 0) return fail(err)
  card.sync_irq = chip.irq
  card.driver = 'HDA-Intel'
  card.shortname = 'HDA mini'
  card.longname = `HDA mini at ${pdev.name} irq ${chip.irq}`
  err = snd_card_register(card)
  if (err < 0) return fail(err)
  pci_set_drvdata(pdev, chip)
  dev_info(pdev.dev, 'codec 0 vendor 0x%x, card %d', vendor >>> 0, card.number)
  return 0
}

/** azx_remove / azx_free */
async function azx_remove(pdev: PciDev): Promise<void> {
  const chip = pci_get_drvdata(pdev) as Azx
  if (chip.card !== null) await snd_card_free(chip.card)
  chip.card = null
  await flush_work(chip.irq_pending_work)
  azx_stop_chip(chip)
  await free_irq(chip.irq, chip)
  // posbuf and BDLs are dmam_ allocations: released with the device's other managed resources.
}

export const azx_ids: readonly PciDeviceId[] = [{ vendor: HDA_VENDOR_ID, device: HDA_DEVICE_ID }]

/** The ring buffers: managed coherent buffers of the controller (SNDRV_DMA_TYPE_DEV). */
export function azx_alloc_pcm_buffers(chip: Azx, pcm: SndPcm): number {
  return snd_pcm_set_managed_buffer_all(pcm, SNDRV_DMA_TYPE_DEV, chip.pdev.dev, 0, azx_pcm_hw.buffer_bytes_max)
}

/** The driver's steps, as probe installs them; known-bad variants (test/fixtures/hda-bad/) replace one. */
export interface HdaPaths {
  /** snd_hdac_stream_reset: the SRST handshake (prepare, hw_free). */
  readonly stream_reset: (s: AzxDev) => number
  /** snd_hdac_stream_setup_periods: the BDL (prepare). */
  readonly setup_periods: (s: AzxDev, dma_addr: DmaAddr) => number
  /** snd_hdac_stream_setup: tag, CBL, FMT, LVI, BDL address (prepare). */
  readonly stream_setup: (s: AzxDev) => void
  /** azx_interrupt, the handler probe requests. */
  readonly interrupt: (irq: number, dev_id: unknown) => number
  /** azx_position_ok: whether a period interrupt's period has elapsed (AZX_POS_OK, _LATER, _BOGUS). */
  readonly position_ok: (chip: Azx, s: AzxDev) => number
  /** azx_pcm_pointer (atomic) */
  readonly pointer: (sub: SndPcmSubstream) => number
  /** The PCM's ring buffers (probe). */
  readonly alloc_pcm_buffers: (chip: Azx, pcm: SndPcm) => number
  /** azx_pcm_hw_free */
  readonly hw_free: (sub: SndPcmSubstream) => Promise<number>
}

export const HDA_PATHS: Readonly<HdaPaths> = {
  stream_reset: azx_stream_reset,
  setup_periods: azx_setup_periods,
  stream_setup: azx_stream_setup,
  interrupt: azx_interrupt,
  position_ok: azx_position_ok,
  pointer: azx_pcm_pointer,
  alloc_pcm_buffers: azx_alloc_pcm_buffers,
  hw_free: azx_pcm_hw_free,
}

/** Options a test or variant may change; the defaults are the reference driver. */
export interface HdaParams {
  /** Replace some of the driver's steps (known-bad variants); the rest are HDA_PATHS. */
  readonly paths?: Partial<HdaPaths>
}

/** A fresh driver object (one per system). */
export function hda_make_driver(params: HdaParams = {}, name = HDA_DRV_NAME): PciDriver {
  return { name, id_table: azx_ids, probe: (pdev, id) => azx_probe(pdev, id, params), remove: azx_remove }
}

export const hda_driver: PciDriver = hda_make_driver()

/** The chip behind a bound mini-HDA (tests and tools). */
export function hda_chip_of(pdev: PciDev): Azx {
  return pci_get_drvdata(pdev) as Azx
}

