/**
 * ce_fix: a copy-engine driver with three services (datasheet docs/devices/copy-engine.md).
 *
 * - fix_copy(): one register-mode transfer between two streaming mappings;
 * - fix_copy_chain(): the same through a one-descriptor chain in coherent memory;
 * - fix_fetch(): the engine copies into `result`, a buffer mapped DMA_FROM_DEVICE from probe to
 *   remove; the CPU reads it between dma_sync_single_for_cpu() and dma_sync_single_for_device(),
 *   and counts the fetches in `stats`.
 *
 * LAB SKELETON: the data comes out right on x86_64, but five DMA-API rules are broken. Grade it with
 * `dmalab lab check fix-the-bugs <this folder>`; each report names the rule and the line.
 */
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE, EINVAL, EIO, ENODEV, ENOMEM, ETIMEDOUT, GFP_KERNEL,
  IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, PCI_IRQ_INTX, PCI_IRQ_MSIX,
  complete, defineStruct, dma_alloc_coherent, dma_free_coherent, dma_map_single, dma_mapping_error,
  dma_set_mask_and_coherent, dma_sync_single_for_device, dma_unmap_single,
  free_irq, init_completion, kfree, kzalloc, lower_32_bits, mem_read32, mem_write32,
  memcpy, msecs_to_jiffies, pci_alloc_irq_vectors, pci_clear_master, pci_free_irq_vectors,
  pci_get_drvdata, pci_irq_vector, pci_set_drvdata, pci_set_master, pcim_enable_device,
  pcim_iomap_regions, pcim_iomap_table, ptr_add, readl, reinit_completion, request_irq, upper_32_bits,
  wait_for_completion_timeout, writel, writel_relaxed,
  type Completion, type CpuAddr, type DmaAddr, type IoAddr, type PciDev, type PciDeviceId,
  type PciDriver, type irqreturn_t,
} from 'dmalab'
import {
  CE_CTRL, CE_CTRL_CHAIN, CE_CTRL_IRQ_EN, CE_CTRL_START, CE_DESC_HI, CE_DESC_LAST, CE_DESC_LO,
  CE_DEVICE_ID, CE_DST_HI, CE_DST_LO, CE_ID, CE_ID_VALUE, CE_LEN, CE_SRC_HI, CE_SRC_LO, CE_STATUS,
  CE_STATUS_DONE, CE_STATUS_ERR, CE_VENDOR_ID,
} from 'dmalab/devices'

export const FIX_NAME = 'ce-fix'
export const FIX_RESULT_SIZE = 64
/** struct fix_ctx { u32 fetches; u32 pad; u8 result[FIX_RESULT_SIZE]; } */
const FIX_CTX_RESULT = 8
const FIX_CTX_SIZE = FIX_CTX_RESULT + FIX_RESULT_SIZE
const FIX_TIMEOUT_MS = 1000

/** A chain descriptor (datasheet §3): 32 bytes, little-endian. */
const fix_desc = defineStruct('fix_desc', { src: 'u64', dst: 'u64', len: 'u32', flags: 'u32', next: 'u64' })

interface FixDev {
  pdev: PciDev
  base: IoAddr
  irq: number
  done: Completion
  status: number
  desc: CpuAddr // one chain descriptor, coherent
  desc_dma: DmaAddr
  stats: CpuAddr // struct fix_ctx: the u32 fetch counter, then the result buffer
  result: CpuAddr // FIX_RESULT_SIZE bytes inside fix_ctx, mapped DMA_FROM_DEVICE from probe to remove
  result_dma: DmaAddr
}

function reg(fd: FixDev, off: number): IoAddr {
  return ptr_add(fd.base, off)
}

function fix_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const fd = dev_id as FixDev
  const status = readl(reg(fd, CE_STATUS)) & (CE_STATUS_DONE | CE_STATUS_ERR)
  if (status === 0) return IRQ_NONE
  writel(status, reg(fd, CE_STATUS))
  fd.status |= status
  complete(fd.done)
  return IRQ_HANDLED
}

async function fix_wait(fd: FixDev): Promise<number> {
  const left = await wait_for_completion_timeout(fd.done, msecs_to_jiffies(FIX_TIMEOUT_MS))
  if (left === 0) return -ETIMEDOUT
  return (fd.status & CE_STATUS_ERR) !== 0 ? -EIO : 0
}

function fix_arm(fd: FixDev): void {
  reinit_completion(fd.done)
  fd.status = 0
}

/** A register-mode MEM->MEM transfer of mapped addresses; waits for it. */
async function fix_run(fd: FixDev, src: DmaAddr, dst: DmaAddr, len: number): Promise<number> {
  fix_arm(fd)
  writel(lower_32_bits(src), reg(fd, CE_SRC_LO))
  writel(upper_32_bits(src), reg(fd, CE_SRC_HI))
  writel(lower_32_bits(dst), reg(fd, CE_DST_LO))
  writel(upper_32_bits(dst), reg(fd, CE_DST_HI))
  writel(len, reg(fd, CE_LEN))
  writel(CE_CTRL_START | CE_CTRL_IRQ_EN, reg(fd, CE_CTRL))
  return fix_wait(fd)
}

/** Copies len bytes from src to dst with one register-mode transfer. */
export async function fix_copy(pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const fd = pci_get_drvdata(pdev) as FixDev
  const dev = pdev.dev
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE)
  if (dma_mapping_error(dev, d) !== 0) {
    dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
    return -ENOMEM
  }
  const rc = await fix_run(fd, s, d, len)
  dma_unmap_single(dev, d, len, DMA_FROM_DEVICE)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  return rc
}

/** Copies len bytes from src to dst through a one-descriptor chain. */
export async function fix_copy_chain(pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const fd = pci_get_drvdata(pdev) as FixDev
  const dev = pdev.dev
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM
  const d = dma_map_single(dev, dst, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, d) !== 0) {
    dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
    return -ENOMEM
  }
  const desc = fix_desc.at(fd.desc)
  desc.src = BigInt(s)
  desc.dst = BigInt(d)
  desc.len = len
  desc.flags = CE_DESC_LAST
  desc.next = 0n
  fix_arm(fd)
  writel_relaxed(lower_32_bits(fd.desc_dma), reg(fd, CE_DESC_LO))
  writel_relaxed(upper_32_bits(fd.desc_dma), reg(fd, CE_DESC_HI))
  writel_relaxed(CE_CTRL_START | CE_CTRL_CHAIN | CE_CTRL_IRQ_EN, reg(fd, CE_CTRL))
  const rc = await fix_wait(fd)
  dma_unmap_single(dev, d, len, DMA_TO_DEVICE)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  return rc
}

/** The engine copies len bytes of src into result; the CPU copies them on to out. */
export async function fix_fetch(pdev: PciDev, out: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const fd = pci_get_drvdata(pdev) as FixDev
  const dev = pdev.dev
  if (len <= 0 || len > FIX_RESULT_SIZE) return -EINVAL
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM
  mem_write32(fd.stats, 0, mem_read32(fd.stats, 0) + 1)
  const rc = await fix_run(fd, s, fd.result_dma, len)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  if (rc !== 0) return rc
  memcpy(out, fd.result, len)
  dma_sync_single_for_device(dev, fd.result_dma, len, DMA_FROM_DEVICE)
  return 0
}

function fix_free(pdev: PciDev, fd: FixDev): void {
  dma_unmap_single(pdev.dev, fd.result_dma, FIX_RESULT_SIZE, DMA_FROM_DEVICE)
  kfree(fd.stats)
  dma_free_coherent(pdev.dev, fix_desc.size, fd.desc, fd.desc_dma)
}

async function fix_probe(pdev: PciDev, _id: PciDeviceId): Promise<number> {
  let rc = pcim_enable_device(pdev)
  if (rc !== 0) return rc
  rc = pcim_iomap_regions(pdev, 1 << 0, FIX_NAME)
  if (rc !== 0) return rc
  const base = pcim_iomap_table(pdev)[0]!
  if (readl(ptr_add(base, CE_ID)) !== CE_ID_VALUE) return -ENODEV
  rc = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64))
  if (rc !== 0) return rc
  pci_set_master(pdev)
  const coh = dma_alloc_coherent(pdev.dev, fix_desc.size, GFP_KERNEL)
  if (coh === null) return -ENOMEM
  const stats = kzalloc(FIX_CTX_SIZE)
  if (stats === null) {
    dma_free_coherent(pdev.dev, fix_desc.size, coh.cpu, coh.dma)
    return -ENOMEM
  }
  const result = ptr_add(stats, FIX_CTX_RESULT)
  const result_dma = dma_map_single(pdev.dev, result, FIX_RESULT_SIZE, DMA_FROM_DEVICE)
  if (dma_mapping_error(pdev.dev, result_dma) !== 0) {
    kfree(stats)
    dma_free_coherent(pdev.dev, fix_desc.size, coh.cpu, coh.dma)
    return -ENOMEM
  }
  const fd: FixDev = { pdev, base, irq: -1, done: init_completion(), status: 0, desc: coh.cpu, desc_dma: coh.dma, stats, result, result_dma }
  pci_set_drvdata(pdev, fd)
  const n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (n >= 0) {
    fd.irq = pci_irq_vector(pdev, 0)
    rc = request_irq(fd.irq, fix_irq, pdev.msix ? 0 : IRQF_SHARED, FIX_NAME, fd)
    if (rc === 0) return 0
    pci_free_irq_vectors(pdev)
  } else rc = n
  fix_free(pdev, fd)
  return await Promise.resolve(rc)
}

async function fix_remove(pdev: PciDev): Promise<void> {
  const fd = pci_get_drvdata(pdev) as FixDev
  writel(0, reg(fd, CE_CTRL))
  await free_irq(fd.irq, fd)
  pci_free_irq_vectors(pdev)
  fix_free(pdev, fd)
  pci_clear_master(pdev)
}

export const fix_driver: PciDriver = {
  name: FIX_NAME,
  id_table: [{ vendor: CE_VENDOR_ID, device: CE_DEVICE_ID }],
  probe: fix_probe,
  remove: fix_remove,
}
