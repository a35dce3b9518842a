/**
 * ce_hello: a minimal driver for the dmalab copy engine (datasheet docs/devices/copy-engine.md).
 *
 * LAB SKELETON: fill in the four TODOs, then `dmalab lab check copy-engine-hello <this folder>`.
 * Stuck? `dmalab lab hint copy-engine-hello [n]`.
 *
 * Part 1, hello_copy(): one memory-to-memory transfer. Map the source and the destination, start
 * the engine, sleep until its interrupt completes the transfer, unmap.
 * Part 2, hello_fetch(): the engine copies into `result`, a buffer the driver mapped once in probe
 * and keeps mapped; the CPU reads it between dma_sync_single_for_cpu() and
 * dma_sync_single_for_device().
 */
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE, EINVAL, EIO, ENODEV, ENOMEM, ENOSYS, ETIMEDOUT,
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
  // TODO(1): read STATUS (readl(reg(hd, CE_STATUS))) and keep its DONE and ERR bits. If neither is set,
  // the interrupt is not ours: return IRQ_NONE. Otherwise acknowledge them (STATUS is write-1-to-clear:
  // writel the bits back), add them to hd.status, complete(hd.done) and return IRQ_HANDLED.
  void hd
  return IRQ_NONE
}

/** Programs one MEM->MEM transfer of mapped addresses, starts it and sleeps until it is done. */
function hello_run(hd: HelloDev, src: DmaAddr, dst: DmaAddr, len: number): Promise<number> {
  // TODO(2): arm the completion (reinit_completion, hd.status = 0) BEFORE starting; program SRC_LO/HI,
  // DST_LO/HI (lower_32_bits / upper_32_bits) and LEN; start with CTRL = CE_CTRL_START | CE_CTRL_IRQ_EN
  // (MEM->MEM is mode 0). Then sleep: await wait_for_completion_timeout(hd.done,
  // msecs_to_jiffies(HELLO_TIMEOUT_MS)). Return -ETIMEDOUT when nothing came, -EIO when hd.status has
  // CE_STATUS_ERR, 0 otherwise.
  void [hd, src, dst, len, HELLO_TIMEOUT_MS]
  return Promise.resolve(-ENOSYS)
}

/** Part 1: copies len bytes from src to dst with the engine; 0 or -errno. */
export function hello_copy(pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const hd = pci_get_drvdata(pdev) as HelloDev
  const dev = pdev.dev
  // TODO(3): map src and dst for the engine (which direction does the engine move each one's bytes?),
  // check each mapping with dma_mapping_error() (return -ENOMEM, unmapping what was mapped), run the
  // transfer with hello_run(), then unmap both and return hello_run's result.
  void [hd, dev, dst, src, len]
  return Promise.resolve(-ENOSYS)
}

/**
 * Part 2: the engine copies len bytes from src into the driver's result buffer; the CPU then
 * copies them to out. 0 or -errno.
 */
export async function hello_fetch(pdev: PciDev, out: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const hd = pci_get_drvdata(pdev) as HelloDev
  const dev = pdev.dev
  if (len <= 0 || len > HELLO_RESULT_SIZE) return -EINVAL
  // TODO(4): map src (check it), hello_run() it into hd.result_dma, unmap src. hd.result stays mapped
  // DMA_FROM_DEVICE (probe mapped it): give it to the CPU before reading it (memcpy(out, hd.result,
  // len)), and back to the device afterwards, so that the next fetch works too.
  void [hd, dev, out, src]
  return -ENOSYS
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
