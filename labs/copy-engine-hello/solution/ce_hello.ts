/**
 * ce_hello: a minimal driver for the dmalab copy engine (datasheet docs/devices/copy-engine.md).
 *
 * Part 1, hello_copy(): one memory-to-memory transfer. Map the source and the destination, start
 * the engine, sleep until its interrupt completes the transfer, unmap.
 * Part 2, hello_fetch(): the engine copies into `result`, a buffer the driver mapped once in probe
 * and keeps mapped; the CPU reads it between dma_sync_single_for_cpu() and
 * dma_sync_single_for_device().
 */
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE, EINVAL, EIO, ENODEV, ENOMEM, ETIMEDOUT,
  IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, PCI_IRQ_INTX, PCI_IRQ_MSIX,
  complete, dma_map_single, dma_mapping_error, dma_set_mask_and_coherent, dma_sync_single_for_cpu,
  dma_sync_single_for_device, dma_unmap_single, free_irq, init_completion, kfree, kmalloc, lower_32_bits,
  memcpy, msecs_to_jiffies, pci_alloc_irq_vectors, pci_clear_master, pci_free_irq_vectors,
  pci_get_drvdata, pci_irq_vector, pci_set_drvdata, pci_set_master, pcim_enable_device,
  pcim_iomap_regions, pcim_iomap_table, ptr_add, readl, reinit_completion, request_irq, upper_32_bits,
  wait_for_completion_timeout, writel,
  type Completion, type CpuAddr, type DmaAddr, type IoAddr, type PciDev, type PciDeviceId,
  type PciDriver, type irqreturn_t,
} from 'dmalab'
import {
  CE_CTRL, CE_CTRL_IRQ_EN, CE_CTRL_START, CE_DEVICE_ID, CE_DST_HI, CE_DST_LO, CE_ID, CE_ID_VALUE,
  CE_LEN, CE_SRC_HI, CE_SRC_LO, CE_STATUS, CE_STATUS_DONE, CE_STATUS_ERR, CE_VENDOR_ID,
} from 'dmalab/devices'

export const HELLO_NAME = 'ce-hello'
/** Size of the driver's long-lived result buffer (part 2). */
export const HELLO_RESULT_SIZE = 256
const HELLO_TIMEOUT_MS = 1000

interface HelloDev {
  pdev: PciDev
  base: IoAddr
  irq: number
  done: Completion
  status: number // the STATUS bits the handler saw
  result: CpuAddr // part 2: kmalloc'd, mapped DMA_FROM_DEVICE from probe to remove
  result_dma: DmaAddr
}

function reg(hd: HelloDev, off: number): IoAddr {
  return ptr_add(hd.base, off)
}

/** The interrupt handler: acknowledge DONE/ERR (write 1 to clear) and wake the waiting task. */
function hello_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const hd = dev_id as HelloDev
  const status = readl(reg(hd, CE_STATUS)) & (CE_STATUS_DONE | CE_STATUS_ERR)
  if (status === 0) return IRQ_NONE
  writel(status, reg(hd, CE_STATUS))
  hd.status |= status
  complete(hd.done)
  return IRQ_HANDLED
}

/** Programs one MEM->MEM transfer of mapped addresses, starts it and sleeps until it is done. */
async function hello_run(hd: HelloDev, src: DmaAddr, dst: DmaAddr, len: number): Promise<number> {
  reinit_completion(hd.done)
  hd.status = 0
  writel(lower_32_bits(src), reg(hd, CE_SRC_LO))
  writel(upper_32_bits(src), reg(hd, CE_SRC_HI))
  writel(lower_32_bits(dst), reg(hd, CE_DST_LO))
  writel(upper_32_bits(dst), reg(hd, CE_DST_HI))
  writel(len, reg(hd, CE_LEN))
  writel(CE_CTRL_START | CE_CTRL_IRQ_EN, reg(hd, CE_CTRL)) // non-relaxed: orders the buffers before START
  const left = await wait_for_completion_timeout(hd.done, msecs_to_jiffies(HELLO_TIMEOUT_MS))
  if (left === 0) return -ETIMEDOUT
  return (hd.status & CE_STATUS_ERR) !== 0 ? -EIO : 0
}

/** Part 1: copies len bytes from src to dst with the engine; 0 or -errno. */
export async function hello_copy(pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const hd = pci_get_drvdata(pdev) as HelloDev
  const dev = pdev.dev
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM
  const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE)
  if (dma_mapping_error(dev, d) !== 0) {
    dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
    return -ENOMEM
  }
  const rc = await hello_run(hd, s, d, len)
  // The engine has finished (or failed): only now may the buffers go back to the CPU.
  dma_unmap_single(dev, d, len, DMA_FROM_DEVICE)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  return rc
}

/**
 * Part 2: the engine copies len bytes from src into the driver's result buffer; the CPU then
 * copies them to out. 0 or -errno.
 */
export async function hello_fetch(pdev: PciDev, out: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const hd = pci_get_drvdata(pdev) as HelloDev
  const dev = pdev.dev
  if (len <= 0 || len > HELLO_RESULT_SIZE) return -EINVAL
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM
  const rc = await hello_run(hd, s, hd.result_dma, len)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  if (rc !== 0) return rc
  dma_sync_single_for_cpu(dev, hd.result_dma, len, DMA_FROM_DEVICE) // the CPU owns result now
  memcpy(out, hd.result, len)
  dma_sync_single_for_device(dev, hd.result_dma, len, DMA_FROM_DEVICE) // and the device again
  return 0
}

async function hello_probe(pdev: PciDev, _id: PciDeviceId): Promise<number> {
  let rc = pcim_enable_device(pdev)
  if (rc !== 0) return rc
  rc = pcim_iomap_regions(pdev, 1 << 0, HELLO_NAME)
  if (rc !== 0) return rc
  const base = pcim_iomap_table(pdev)[0]!
  if (readl(ptr_add(base, CE_ID)) !== CE_ID_VALUE) return -ENODEV
  rc = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64))
  if (rc !== 0) return rc
  pci_set_master(pdev)
  const result = kmalloc(HELLO_RESULT_SIZE)
  if (result === null) return -ENOMEM
  const result_dma = dma_map_single(pdev.dev, result, HELLO_RESULT_SIZE, DMA_FROM_DEVICE)
  if (dma_mapping_error(pdev.dev, result_dma) !== 0) {
    kfree(result)
    return -ENOMEM
  }
  const hd: HelloDev = { pdev, base, irq: -1, done: init_completion(), status: 0, result, result_dma }
  pci_set_drvdata(pdev, hd)
  const n = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSIX | PCI_IRQ_INTX)
  if (n >= 0) {
    hd.irq = pci_irq_vector(pdev, 0)
    rc = request_irq(hd.irq, hello_irq, pdev.msix ? 0 : IRQF_SHARED, HELLO_NAME, hd)
    if (rc === 0) return 0
    pci_free_irq_vectors(pdev)
  } else rc = n
  dma_unmap_single(pdev.dev, result_dma, HELLO_RESULT_SIZE, DMA_FROM_DEVICE)
  kfree(result)
  return await Promise.resolve(rc)
}

async function hello_remove(pdev: PciDev): Promise<void> {
  const hd = pci_get_drvdata(pdev) as HelloDev
  writel(0, reg(hd, CE_CTRL))
  await free_irq(hd.irq, hd)
  pci_free_irq_vectors(pdev)
  dma_unmap_single(pdev.dev, hd.result_dma, HELLO_RESULT_SIZE, DMA_FROM_DEVICE)
  kfree(hd.result)
  pci_clear_master(pdev)
}

export const hello_driver: PciDriver = {
  name: HELLO_NAME,
  id_table: [{ vendor: CE_VENDOR_ID, device: CE_DEVICE_ID }],
  probe: hello_probe,
  remove: hello_remove,
}
