/**
 * sb16: driver for the Sound Blaster 16-like DSP behind the ISA bridge (PCI 1de5:1a00; datasheet
 * docs/devices/i8237.md), playing 8-bit PCM by auto-init ISA DMA on channel 1.
 *
 * Written the way Linux's sound/isa/sb/ drivers are (sb_common.c's snd_sbdsp_reset/command,
 * sb8_main.c's playback_prepare/trigger and interrupt), with the 8237 programmed through
 * kernel/dma.c and asm/dma.h's helpers exactly as snd_dma_program() does:
 *
 *     flags = claim_dma_lock(); disable_dma(ch); clear_dma_ff(ch);
 *     set_dma_mode(ch, DMA_MODE_WRITE | DMA_AUTOINIT); set_dma_addr(ch, addr);
 *     set_dma_count(ch, size); enable_dma(ch); release_dma_lock(flags)
 *
 * The ring is one coherent buffer of two periods, allocated under a 24-bit DMA mask, as the
 * modern ISA drivers do (snd_dma_alloc_pages on the ISA device): below 16 MiB, and — being size
 * aligned and at most 64 KiB — never crossing a 64 KiB page. The DSP interrupts each time it has
 * fetched a period (its block size = the period); the handler acknowledges it by reading the DSP's
 * read-buffer status port and refills the period the DMA just left with the next part of the
 * PCM, while the DMA reads the other one.
 *
 * The device's ports are reached through the bridge's BAR 0 at their port offsets
 * (pcim_iomap_regions, ioread8/iowrite8); the 8237's ports by the kernel's ISA DMA helpers.
 */
import {
  DMA_AUTOINIT, DMA_BIT_MASK, DMA_MODE_SINGLE, DMA_MODE_WRITE, EBUSY, EINVAL, EIO, ENODEV, ENOMEM,
  ETIMEDOUT, IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, PCI_IRQ_INTX,
  claim_dma_lock, clear_dma_ff, complete, dev_err, dev_info, disable_dma, dma_alloc_coherent, dma_free_coherent,
  dma_set_mask_and_coherent, enable_dma, free_dma, free_irq, init_completion, ioread8, iowrite8, mem_write_bytes,
  memset, msecs_to_jiffies, pci_alloc_irq_vectors, pci_clear_master, pci_free_irq_vectors, pci_get_drvdata,
  pci_irq_vector, pci_set_drvdata, pci_set_master, pcim_enable_device, pcim_iomap_regions, pcim_iomap_table,
  ptr_add, reinit_completion, release_dma_lock, request_dma, request_irq, set_dma_addr, set_dma_count,
  set_dma_mode, spin_lock, spin_lock_init, spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, udelay,
  wait_for_completion_timeout, wmb,
  type Completion, type CpuAddr, type DmaAddr, type IoAddr, type PciDev, type PciDeviceId, type PciDriver,
  type SpinLock, type irqreturn_t,
} from '../../kernel/index.js'

export const SB16_DRV_NAME = 'sb16'

/* DSP ports (offsets from the card's base, sound/isa/sb/sb.h SBP()) */
export const SB_DSP_RESET = 0x6
export const SB_DSP_READ = 0xa
export const SB_DSP_COMMAND = 0xc
export const SB_DSP_STATUS = 0xc
export const SB_DSP_DATA_AVAIL = 0xe

/* DSP commands */
export const SB_DSP_SAMPLE_RATE_OUT = 0x41
export const SB_DSP_DMA8_OFF = 0xd0
export const SB_DSP_DMA8_EXIT = 0xda
export const SB_DSP_SPEAKER_ON = 0xd1
export const SB_DSP_SPEAKER_OFF = 0xd3
export const SB_DSP_GET_VERSION = 0xe1
/** 8-bit output, auto-init, FIFO on; then mode (0x00: mono unsigned), length - 1 low, high. */
export const SB_DSP4_OUT8_AI = 0xc6
export const SB_DSP4_MODE_UNS_MONO = 0x00

/** The card's resources, as the ISA card's jumpers or PnP set them. */
export const SB16_PORT = 0x220
export const SB16_DMA8 = 1

/** DMA_MODE_WRITE without its mode bits: transfer type "read from memory" (memory -> I/O). */
const DMA_TYPE_MEM_TO_IO = DMA_MODE_WRITE & ~DMA_MODE_SINGLE

/** Module parameters: the 8237 transfer mode (bits 7:6) and the period (DMA block) in bytes. */
export const sb16_params = { dma_mode: DMA_MODE_SINGLE, period_bytes: 2048 }

/** `struct snd_sb`: the driver's per-card state (pci drvdata). */
export interface Sb16Chip {
  pdev: PciDev
  port: IoAddr
  irq: number
  dma8: number
  version: number
  lock: SpinLock // guards the playback state below, shared with the handler
  // The DMA ring: two periods of coherent memory.
  buf: CpuAddr | null
  buf_dma: DmaAddr
  buf_bytes: number
  period: number
  // Playback state
  running: boolean
  pcm: Uint8Array
  fed: number // bytes of pcm copied into the ring so far
  irqs: number // period interrupts so far
  last_irq: number // the interrupt after which every pcm byte has been played
  done: Completion
}

export function sb16_get(pdev: PciDev): Sb16Chip {
  return pci_get_drvdata(pdev) as Sb16Chip
}

function sbp(chip: Sb16Chip, reg: number): IoAddr {
  return ptr_add(chip.port, SB16_PORT + reg)
}

/** snd_sbdsp_command: waits for the write buffer, then writes one byte. */
export function sb_dsp_command(chip: Sb16Chip, val: number): boolean {
  for (let i = 1000; i > 0; i--) {
    if ((ioread8(sbp(chip, SB_DSP_STATUS)) & 0x80) === 0) {
      iowrite8(val, sbp(chip, SB_DSP_COMMAND))
      return true
    }
  }
  dev_err(chip.pdev.dev, 'command 0x%x failed', val)
  return false
}

/** snd_sbdsp_get_byte: waits for data, then reads it (-1 on timeout). */
export function sb_dsp_get_byte(chip: Sb16Chip): number {
  for (let i = 1000; i > 0; i--) {
    if ((ioread8(sbp(chip, SB_DSP_DATA_AVAIL)) & 0x80) !== 0) return ioread8(sbp(chip, SB_DSP_READ))
  }
  return -1
}

/** snd_sbdsp_reset: pulse RESET, wait for 0xAA. */
export function sb_dsp_reset(chip: Sb16Chip): number {
  iowrite8(1, sbp(chip, SB_DSP_RESET))
  udelay(10)
  iowrite8(0, sbp(chip, SB_DSP_RESET))
  udelay(30)
  for (let i = 0; i < 100; i++) {
    if ((ioread8(sbp(chip, SB_DSP_DATA_AVAIL)) & 0x80) === 0) continue
    if (ioread8(sbp(chip, SB_DSP_READ)) === 0xaa) return 0
  }
  return -ENODEV
}

/**
 * snd_dma_program: programs the 8237 for a transfer of size bytes at addr with mode, under the
 * DMA lock, flip-flop cleared before the address and count.
 */
export function sb_dma_program(ch: number, addr: DmaAddr, size: number, mode: number): void {
  const flags = claim_dma_lock()
  disable_dma(ch)
  clear_dma_ff(ch)
  set_dma_mode(ch, mode)
  set_dma_addr(ch, addr)
  set_dma_count(ch, size)
  enable_dma(ch)
  release_dma_lock(flags)
}

/** Stops the 8237 channel. */
export function sb_dma_stop(ch: number): void {
  const flags = claim_dma_lock()
  disable_dma(ch)
  release_dma_lock(flags)
}

/** Copies the next period of PCM (silence, 0x80, past its end) into ring period `half`. */
export function sb16_fill(chip: Sb16Chip, half: number): void {
  const dst = ptr_add(chip.buf!, half * chip.period)
  const left = Math.max(0, chip.pcm.length - chip.fed)
  const n = Math.min(left, chip.period)
  if (n > 0) mem_write_bytes(dst, chip.pcm.subarray(chip.fed, chip.fed + n))
  if (n < chip.period) memset(ptr_add(dst, n), 0x80, chip.period - n)
  chip.fed += chip.period
}

/**
 * The interrupt handler (sb8_interrupt): acknowledge by reading the DSP's read-buffer status,
 * then refill the period the DMA has just finished reading.
 */
export function sb16_interrupt(_irq: number, dev_id: unknown): irqreturn_t {
  const chip = dev_id as Sb16Chip
  spin_lock(chip.lock)
  if (!chip.running) {
    spin_unlock(chip.lock)
    return IRQ_NONE
  }
  ioread8(sbp(chip, SB_DSP_DATA_AVAIL)) // ack the 8-bit DMA interrupt
  const half = chip.irqs % 2
  chip.irqs++
  if (chip.irqs >= chip.last_irq) {
    chip.running = false
    spin_unlock(chip.lock)
    complete(chip.done)
    return IRQ_HANDLED
  }
  sb16_fill(chip, half)
  wmb() // the refilled period is in memory before the DMA comes back to it
  spin_unlock(chip.lock)
  return IRQ_HANDLED
}

/** Starts auto-init output of what the ring holds (sb8_playback_prepare + trigger START). */
export function sb16_start(chip: Sb16Chip, rate: number): boolean {
  sb_dma_program(chip.dma8, chip.buf_dma, chip.buf_bytes, sb16_params.dma_mode | DMA_TYPE_MEM_TO_IO | DMA_AUTOINIT)
  return sb16_dsp_start(chip, rate)
}

/** The DSP half of the start: rate, speaker, 8-bit auto-init output with the period as block. */
export function sb16_dsp_start(chip: Sb16Chip, rate: number): boolean {
  const len = chip.period - 1
  return (
    sb_dsp_command(chip, SB_DSP_SAMPLE_RATE_OUT) &&
    sb_dsp_command(chip, rate >> 8) &&
    sb_dsp_command(chip, rate & 0xff) &&
    sb_dsp_command(chip, SB_DSP_SPEAKER_ON) &&
    sb_dsp_command(chip, SB_DSP4_OUT8_AI) &&
    sb_dsp_command(chip, SB_DSP4_MODE_UNS_MONO) &&
    sb_dsp_command(chip, len & 0xff) &&
    sb_dsp_command(chip, (len >> 8) & 0xff)
  )
}

/** Stops output: DSP DMA off, then the channel masked (trigger STOP). */
export function sb16_stop(chip: Sb16Chip): void {
  sb_dsp_command(chip, SB_DSP_DMA8_OFF)
  sb_dma_stop(chip.dma8)
}

/**
 * Plays pcm (8-bit unsigned mono) at rate through the auto-init ring and returns when every
 * byte has been played: 0, -EINVAL, -EBUSY, -EIO or -ETIMEDOUT. Process context.
 */
export async function sb16_play(pdev: PciDev, pcm: Uint8Array, rate: number): Promise<number> {
  return sb16_run(sb16_get(pdev), pcm, rate, sb16_start)
}

/** sb16_play's body, with the function that starts the hardware (the known-bad variants swap it). */
export async function sb16_run(chip: Sb16Chip, pcm: Uint8Array, rate: number, start: (chip: Sb16Chip, rate: number) => boolean): Promise<number> {
  const pdev = chip.pdev
  if (!(pcm instanceof Uint8Array) || pcm.length === 0 || !Number.isInteger(rate) || rate < 4000 || rate > 48000) return -EINVAL
  let flags = spin_lock_irqsave(chip.lock)
  if (chip.running) {
    spin_unlock_irqrestore(chip.lock, flags)
    return -EBUSY
  }
  chip.pcm = pcm
  chip.fed = 0
  chip.irqs = 0
  // Interrupt k means period k has been fetched; the last pcm byte is in period P-1, and once
  // period P (silence) has been fetched too, the DSP's FIFO (< one period) has played it.
  chip.last_irq = Math.ceil(pcm.length / chip.period) + 1
  reinit_completion(chip.done)
  sb16_fill(chip, 0)
  sb16_fill(chip, 1)
  chip.running = true
  spin_unlock_irqrestore(chip.lock, flags)
  if (!start(chip, rate)) {
    flags = spin_lock_irqsave(chip.lock)
    chip.running = false
    spin_unlock_irqrestore(chip.lock, flags)
    sb_dma_stop(chip.dma8)
    return -EIO
  }
  const ms = Math.ceil(((pcm.length + 4 * chip.period) * 1000) / rate) + 100
  const left = await wait_for_completion_timeout(chip.done, msecs_to_jiffies(ms))
  flags = spin_lock_irqsave(chip.lock)
  const ok = !chip.running
  chip.running = false
  spin_unlock_irqrestore(chip.lock, flags)
  sb16_stop(chip)
  if (left === 0 && !ok) {
    dev_err(pdev.dev, 'playback timed out after %d of %d period interrupts', chip.irqs, chip.last_irq)
    return -ETIMEDOUT
  }
  return 0
}

/** Probe: everything here is atomic-safe (no sleeping call), so it runs synchronously. */
export function sb16_init(pdev: PciDev): number {
  const dev = pdev.dev
  let rc = pcim_enable_device(pdev)
  if (rc !== 0) return rc
  rc = pcim_iomap_regions(pdev, 1 << 0, SB16_DRV_NAME)
  if (rc !== 0) return rc
  // ISA DMA reaches 24 bits: the ring must lie below 16 MiB.
  if (dma_set_mask_and_coherent(dev, DMA_BIT_MASK(24)) !== 0) {
    dev_err(dev, 'no suitable DMA mask')
    return -EIO
  }
  pci_set_master(pdev) // the bridge's 8237 masters the bus on the card's behalf
  const period = sb16_params.period_bytes
  if (!Number.isInteger(period) || period < 64 || period > 0x8000 || (period & (period - 1)) !== 0) return -EINVAL
  const chip: Sb16Chip = {
    pdev,
    port: pcim_iomap_table(pdev)[0]!,
    irq: -1,
    dma8: SB16_DMA8,
    version: 0,
    lock: spin_lock_init(),
    buf: null,
    buf_dma: 0 as DmaAddr,
    buf_bytes: 2 * period,
    period,
    running: false,
    pcm: new Uint8Array(0),
    fed: 0,
    irqs: 0,
    last_irq: 0,
    done: init_completion(),
  }
  pci_set_drvdata(pdev, chip)
  if (sb_dsp_reset(chip) !== 0) {
    dev_err(dev, 'no DSP at 0x%x', SB16_PORT)
    return -ENODEV
  }
  if (!sb_dsp_command(chip, SB_DSP_GET_VERSION)) return -ENODEV
  const major = sb_dsp_get_byte(chip)
  const minor = sb_dsp_get_byte(chip)
  chip.version = (major << 8) | minor
  if (major < 4) {
    dev_err(dev, 'DSP version %d.%d is not a Sound Blaster 16', major, minor)
    return -ENODEV
  }
  rc = request_dma(chip.dma8, SB16_DRV_NAME)
  if (rc !== 0) {
    dev_err(dev, 'DMA channel %d is busy', chip.dma8)
    return rc
  }
  const ring = dma_alloc_coherent(dev, chip.buf_bytes)
  if (ring === null) {
    free_dma(chip.dma8)
    return -ENOMEM
  }
  chip.buf = ring.cpu
  chip.buf_dma = ring.dma
  if (pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_INTX) < 0) {
    dma_free_coherent(dev, chip.buf_bytes, ring.cpu, ring.dma)
    free_dma(chip.dma8)
    return -EIO
  }
  chip.irq = pci_irq_vector(pdev, 0)
  rc = request_irq(chip.irq, sb16_interrupt, IRQF_SHARED, SB16_DRV_NAME, chip)
  if (rc !== 0) {
    pci_free_irq_vectors(pdev)
    dma_free_coherent(dev, chip.buf_bytes, ring.cpu, ring.dma)
    free_dma(chip.dma8)
    return rc
  }
  dev_info(dev, 'Sound Blaster 16 (DSP %d.%d) at 0x%x, irq %d, dma %d', major, minor, SB16_PORT, chip.irq, chip.dma8)
  return 0
}

export function sb16_probe(pdev: PciDev, _id: PciDeviceId): Promise<number> {
  return Promise.resolve(sb16_init(pdev))
}

export async function sb16_remove(pdev: PciDev): Promise<void> {
  const chip = sb16_get(pdev)
  sb_dma_stop(chip.dma8)
  sb_dsp_reset(chip)
  await free_irq(chip.irq, chip)
  pci_free_irq_vectors(pdev)
  free_dma(chip.dma8)
  if (chip.buf !== null) dma_free_coherent(pdev.dev, chip.buf_bytes, chip.buf, chip.buf_dma)
  chip.buf = null
  pci_clear_master(pdev)
}

export const sb16_id_table: readonly PciDeviceId[] = [{ vendor: 0x1de5, device: 0x1a00 }]

export const sb16_driver: PciDriver = { name: SB16_DRV_NAME, id_table: sb16_id_table, probe: sb16_probe, remove: sb16_remove }
