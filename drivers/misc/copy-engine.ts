/**
 * ce: driver for the dmalab copy engine (PCI 1de5:ce01; datasheet docs/devices/copy-engine.md).
 *
 * Models a small Linux PCI DMA driver in the style of drivers/dma/ and drivers/misc/: probe maps
 * BAR 0, sets a 64-bit DMA mask, enables bus mastering and takes one MSI-X vector (or the shared
 * INTx line); a hard-IRQ handler acks STATUS (W1C) and completes the waiting transfer. It offers a
 * small in-kernel API:
 *
 * - ce_copy(): one MEM->MEM transfer of streaming mappings (dma_map_single), waited for with a
 *   completion; split at dma_max_mapping_size() so that swiotlb-bounced buffers work too;
 * - ce_copy_sg(): a descriptor chain (descriptors from a dma_pool, data mapped with dma_map_sg),
 *   dma_wmb() between filling the descriptors and handing them over, a non-relaxed writel START;
 * - ce_to_sram_pio() / ce_from_sram_pio(): the CPU moves the bytes itself through PIO_DATA;
 * - ce_to_sram_dma(): the engine moves them (MODE MEM->SRAM), for the PIO-vs-DMA experiment.
 *
 * One transfer runs at a time (xfer_lock); `lock` guards the state shared with the handler.
 */
import {
  DMA_BIT_MASK, DMA_FROM_DEVICE, DMA_TO_DEVICE, EINVAL, EIO, ENODEV, ENOMEM, ETIMEDOUT, GFP_KERNEL,
  IRQ_HANDLED, IRQ_NONE, IRQF_SHARED, PCI_IRQ_INTX, PCI_IRQ_MSIX,
  complete, defineStruct, dev_err, dev_warn, dma_map_sg, dma_map_single, dma_mapping_error, dma_max_mapping_size,
  dma_pool_alloc, dma_pool_free, dma_set_mask_and_coherent, dma_unmap_sg, dma_unmap_single, dma_wmb,
  dmam_pool_create, for_each_sg, free_irq, init_completion, ioread32, iowrite32, lower_32_bits,
  mem_read_bytes, mem_write_bytes, msecs_to_jiffies, mutex_init, mutex_lock, mutex_unlock,
  pci_alloc_irq_vectors, pci_clear_master, pci_free_irq_vectors, pci_get_drvdata, pci_irq_vector,
  pci_set_drvdata, pci_set_master, pcim_enable_device, pcim_iomap_regions, pcim_iomap_table, ptr_add,
  readl, reinit_completion, request_irq, sg_dma_address, sg_dma_len, spin_lock, spin_lock_init,
  spin_lock_irqsave, spin_unlock, spin_unlock_irqrestore, upper_32_bits, wait_for_completion_timeout,
  writel,
  type Completion, type CpuAddr, type DmaAddr, type DmaPool, type IoAddr, type Mutex, type PciDev,
  type PciDeviceId, type PciDriver, type Scatterlist, type SpinLock, type irqreturn_t,
} from '../../kernel/index.js'

export const CE_DRV_NAME = 'copy-engine'

/* Registers (BAR 0), as in the datasheet §2 */
export const CE_ID = 0x00
export const CE_SRAM_SIZE = 0x08
export const CE_SRC_LO = 0x10
export const CE_SRC_HI = 0x14
export const CE_DST_LO = 0x18
export const CE_DST_HI = 0x1c
export const CE_LEN = 0x20
export const CE_CTRL = 0x24
export const CE_STATUS = 0x28
export const CE_ERR_CODE = 0x2c
export const CE_DESC_LO = 0x30
export const CE_DESC_HI = 0x34
export const CE_PIO_ADDR = 0x40
export const CE_PIO_DATA = 0x44
export const CE_ID_VALUE = 0xce01_1de5

export const CE_CTRL_START = 0x1
export const CE_CTRL_IRQ_EN = 0x2
export const CE_CTRL_MODE_SHIFT = 4
export const CE_CTRL_CHAIN = 0x100
export const CE_MODE_MEM_TO_MEM = 0
export const CE_MODE_MEM_TO_SRAM = 1

export const CE_STATUS_DONE = 0x2
export const CE_STATUS_ERR = 0x4
export const CE_STATUS_DESC_DONE = 0x8
const CE_STATUS_IRQ_MASK = CE_STATUS_DONE | CE_STATUS_ERR | CE_STATUS_DESC_DONE

export const CE_MAX_LEN = 0x400_0000
export const CE_DESC_LAST = 0x1
/** Generous: the longest transfer (64 MiB at 4 GB/s) takes 17 ms. */
export const CE_TIMEOUT_MS = 1000

/** A chain descriptor (datasheet §3): 32 bytes, 32-byte aligned, little-endian. */
export const ce_desc = defineStruct('ce_desc', { src: 'u64', dst: 'u64', len: 'u32', flags: 'u32', next: 'u64' })

/** `struct ce_dev`: the driver's per-device state (pci drvdata). */
export interface CeDev {
  pdev: PciDev
  base: IoAddr
  irq: number
  sram_size: number
  desc_pool: DmaPool | null
  xfer_lock: Mutex // serialises transfers: the engine runs one at a time
  lock: SpinLock // guards status and err_code, which the handler writes
  done: Completion
  status: number
  err_code: number
  dead: boolean // fenced off the bus after a hung transfer; rebind to recover
}

export function ce_get(pdev: PciDev): CeDev {
  return pci_get_drvdata(pdev) as CeDev
}

function reg(ce: CeDev, off: number): IoAddr {
  return ptr_add(ce.base, off)
}

/** The interrupt handler: claims the interrupt only if the engine has a status bit set (shared INTx). */
export function ce_irq(_irq: number, dev_id: unknown): irqreturn_t {
  const ce = dev_id as CeDev
  const status = readl(reg(ce, CE_STATUS))
  if ((status & CE_STATUS_IRQ_MASK) === 0) return IRQ_NONE
  // ERR_CODE is reset when ERR is cleared: read it first.
  const err = (status & CE_STATUS_ERR) !== 0 ? readl(reg(ce, CE_ERR_CODE)) : 0
  writel(status & CE_STATUS_IRQ_MASK, reg(ce, CE_STATUS))
  spin_lock(ce.lock)
  ce.status |= status & (CE_STATUS_DONE | CE_STATUS_ERR)
  if (err !== 0) ce.err_code = err
  spin_unlock(ce.lock)
  if ((status & (CE_STATUS_DONE | CE_STATUS_ERR)) !== 0) complete(ce.done)
  return IRQ_HANDLED
}

/** Arms the completion for a new transfer. */
export function ce_arm(ce: CeDev): void {
  const flags = spin_lock_irqsave(ce.lock)
  ce.status = 0
  ce.err_code = 0
  reinit_completion(ce.done)
  spin_unlock_irqrestore(ce.lock, flags)
}

/** Programs one register-mode transfer and starts it. */
export function ce_start(ce: CeDev, src: number, dst: number, len: number, mode: number): void {
  ce_arm(ce)
  writel(lower_32_bits(src), reg(ce, CE_SRC_LO))
  writel(upper_32_bits(src), reg(ce, CE_SRC_HI))
  writel(lower_32_bits(dst), reg(ce, CE_DST_LO))
  writel(upper_32_bits(dst), reg(ce, CE_DST_HI))
  writel(len, reg(ce, CE_LEN))
  // Non-relaxed: the buffers and registers above reach the device before START.
  writel(CE_CTRL_START | CE_CTRL_IRQ_EN | (mode << CE_CTRL_MODE_SHIFT), reg(ce, CE_CTRL))
}

/**
 * Waits for DONE or ERR; 0, -EIO or -ETIMEDOUT. On a timeout the status is polled once (a lost
 * interrupt); an engine that is still busy is fenced off the bus before its buffers are unmapped.
 */
export async function ce_wait(ce: CeDev): Promise<number> {
  const left = await wait_for_completion_timeout(ce.done, msecs_to_jiffies(CE_TIMEOUT_MS))
  const flags = spin_lock_irqsave(ce.lock)
  if (left === 0) {
    const status = readl(reg(ce, CE_STATUS))
    if ((status & (CE_STATUS_DONE | CE_STATUS_ERR)) !== 0) dev_warn(ce.pdev.dev, 'lost interrupt (STATUS 0x%x)', status)
    if ((status & CE_STATUS_ERR) !== 0) ce.err_code = readl(reg(ce, CE_ERR_CODE))
    writel(status & CE_STATUS_IRQ_MASK, reg(ce, CE_STATUS))
    ce.status |= status & (CE_STATUS_DONE | CE_STATUS_ERR)
  }
  const status = ce.status
  spin_unlock_irqrestore(ce.lock, flags)
  if ((status & CE_STATUS_ERR) !== 0) {
    dev_err(ce.pdev.dev, 'transfer failed: ERR_CODE 0x%x', ce.err_code)
    return -EIO
  }
  if ((status & CE_STATUS_DONE) !== 0) return 0
  dev_err(ce.pdev.dev, 'transfer timed out after %d ms; fencing the engine off the bus', CE_TIMEOUT_MS)
  writel(0, reg(ce, CE_CTRL))
  pci_clear_master(ce.pdev)
  ce.dead = true
  return -ETIMEDOUT
}

/** Starts a transfer and waits for it. */
export async function ce_xfer(ce: CeDev, src: number, dst: number, len: number, mode: number): Promise<number> {
  ce_start(ce, src, dst, len, mode)
  return ce_wait(ce)
}

async function ce_lock(ce: CeDev): Promise<number> {
  await mutex_lock(ce.xfer_lock)
  if (!ce.dead) return 0
  mutex_unlock(ce.xfer_lock)
  return -EIO
}

/** One MEM->MEM transfer: map, program, wait, unmap. */
async function ce_copy_one(ce: CeDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const dev = ce.pdev.dev
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) return -ENOMEM
  const d = dma_map_single(dev, dst, len, DMA_FROM_DEVICE)
  if (dma_mapping_error(dev, d) !== 0) {
    dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
    return -ENOMEM
  }
  const rc = await ce_xfer(ce, s, d, len, CE_MODE_MEM_TO_MEM)
  dma_unmap_single(dev, d, len, DMA_FROM_DEVICE)
  dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  return rc
}

/** Copies len bytes from src to dst with the engine; 0 or -errno. Process context. */
export async function ce_copy(pdev: PciDev, dst: CpuAddr, src: CpuAddr, len: number): Promise<number> {
  const ce = ce_get(pdev)
  if (len <= 0) return -EINVAL
  let rc = await ce_lock(ce)
  if (rc !== 0) return rc
  const chunk = Math.min(CE_MAX_LEN, dma_max_mapping_size(pdev.dev))
  for (let off = 0; off < len && rc === 0; off += chunk) {
    rc = await ce_copy_one(ce, ptr_add(dst, off), ptr_add(src, off), Math.min(chunk, len - off))
  }
  mutex_unlock(ce.xfer_lock)
  return rc
}

function sg_total(sgl: Scatterlist, nents: number): number {
  return [...for_each_sg(sgl, nents)].reduce((n, sg) => n + sg.length, 0)
}

/** Builds the chain for two mapped lists; the descriptors (cpu, dma) in order, or null. */
function ce_build_chain(ce: CeDev, dst: Scatterlist, dcount: number, src: Scatterlist, scount: number): { cpu: CpuAddr; dma: DmaAddr }[] | null {
  const descs: { cpu: CpuAddr; dma: DmaAddr }[] = []
  const segs = (sgl: Scatterlist, n: number) => [...for_each_sg(sgl, n)].map((sg): { addr: number; len: number } => ({ addr: sg_dma_address(sg), len: sg_dma_len(sg) }))
  const s = segs(src, scount)
  const d = segs(dst, dcount)
  let si = 0
  let di = 0
  while (si < s.length && di < d.length) {
    const a = s[si]!
    const b = d[di]!
    const n = Math.min(a.len, b.len, CE_MAX_LEN)
    const blk = dma_pool_alloc(ce.desc_pool!, GFP_KERNEL)
    if (blk === null) {
      ce_free_chain(ce, descs)
      return null
    }
    const desc = ce_desc.at(blk.cpu)
    desc.src = BigInt(a.addr)
    desc.dst = BigInt(b.addr)
    desc.len = n
    desc.flags = 0
    const prev = descs[descs.length - 1]
    if (prev !== undefined) ce_desc.at(prev.cpu).next = BigInt(blk.dma)
    descs.push(blk)
    a.addr += n
    a.len -= n
    b.addr += n
    b.len -= n
    if (a.len === 0) si++
    if (b.len === 0) di++
  }
  ce_desc.at(descs[descs.length - 1]!.cpu).flags = CE_DESC_LAST
  return descs
}

export function ce_free_chain(ce: CeDev, descs: readonly { cpu: CpuAddr; dma: DmaAddr }[]): void {
  for (const blk of descs) dma_pool_free(ce.desc_pool!, blk.cpu, blk.dma)
}

/** Copies the bytes of one scatterlist into another (equal totals) with a descriptor chain. */
export async function ce_copy_sg(pdev: PciDev, dst: Scatterlist, dst_nents: number, src: Scatterlist, src_nents: number): Promise<number> {
  const ce = ce_get(pdev)
  const dev = pdev.dev
  const len = sg_total(src, src_nents)
  if (len === 0 || len !== sg_total(dst, dst_nents)) return -EINVAL
  let rc = await ce_lock(ce)
  if (rc !== 0) return rc
  const scount = dma_map_sg(dev, src, src_nents, DMA_TO_DEVICE)
  const dcount = scount === 0 ? 0 : dma_map_sg(dev, dst, dst_nents, DMA_FROM_DEVICE)
  const descs = dcount === 0 ? null : ce_build_chain(ce, dst, dcount, src, scount)
  if (descs === null) rc = -ENOMEM
  else {
    ce_arm(ce)
    dma_wmb() // the descriptors are complete in memory before the engine may fetch them
    writel(lower_32_bits(descs[0]!.dma), reg(ce, CE_DESC_LO))
    writel(upper_32_bits(descs[0]!.dma), reg(ce, CE_DESC_HI))
    writel(CE_CTRL_START | CE_CTRL_CHAIN | CE_CTRL_IRQ_EN, reg(ce, CE_CTRL))
    rc = await ce_wait(ce)
    ce_free_chain(ce, descs)
  }
  if (dcount !== 0) dma_unmap_sg(dev, dst, dst_nents, DMA_FROM_DEVICE)
  if (scount !== 0) dma_unmap_sg(dev, src, src_nents, DMA_TO_DEVICE)
  mutex_unlock(ce.xfer_lock)
  return rc
}

function ce_sram_range(ce: CeDev, off: number, len: number): boolean {
  return len > 0 && off >= 0 && off % 4 === 0 && off + len <= ce.sram_size
}

/*
 * iowrite32_rep() / ioread32_rep(): lib/iomap.c's loops, which the kernel API lacks. The CPU loads
 * (stores) the words of the buffer and writes (reads) each at one FIFO-like register; a tail of
 * 1-3 bytes travels in a zero-padded word.
 */
function ce_iowrite32_rep(addr: IoAddr, buf: CpuAddr, len: number): void {
  const words = new Uint8Array((len + 3) & ~3)
  words.set(mem_read_bytes(buf, len))
  const v = new DataView(words.buffer)
  for (let off = 0; off < words.length; off += 4) iowrite32(v.getUint32(off, true), addr)
}

function ce_ioread32_rep(addr: IoAddr, buf: CpuAddr, len: number): void {
  const words = new Uint8Array((len + 3) & ~3)
  const v = new DataView(words.buffer)
  for (let off = 0; off < words.length; off += 4) v.setUint32(off, ioread32(addr), true)
  mem_write_bytes(buf, words.subarray(0, len))
}

/** PIO: the CPU writes len bytes from src into SRAM at sram_off, one 32-bit word at a time. */
export async function ce_to_sram_pio(pdev: PciDev, src: CpuAddr, len: number, sram_off = 0): Promise<number> {
  const ce = ce_get(pdev)
  if (!ce_sram_range(ce, sram_off, len)) return -EINVAL
  const rc = await ce_lock(ce)
  if (rc !== 0) return rc
  writel(sram_off, reg(ce, CE_PIO_ADDR))
  ce_iowrite32_rep(reg(ce, CE_PIO_DATA), src, len)
  mutex_unlock(ce.xfer_lock)
  return 0
}

/** PIO: the CPU reads len bytes of SRAM at sram_off into dst. */
export async function ce_from_sram_pio(pdev: PciDev, dst: CpuAddr, len: number, sram_off = 0): Promise<number> {
  const ce = ce_get(pdev)
  if (!ce_sram_range(ce, sram_off, len)) return -EINVAL
  const rc = await ce_lock(ce)
  if (rc !== 0) return rc
  writel(sram_off, reg(ce, CE_PIO_ADDR))
  ce_ioread32_rep(reg(ce, CE_PIO_DATA), dst, len)
  mutex_unlock(ce.xfer_lock)
  return 0
}

/** DMA: the engine reads len bytes at src into SRAM at sram_off (MODE MEM->SRAM). */
export async function ce_to_sram_dma(pdev: PciDev, src: CpuAddr, len: number, sram_off = 0): Promise<number> {
  const ce = ce_get(pdev)
  if (!ce_sram_range(ce, sram_off, len) || len > CE_MAX_LEN) return -EINVAL
  let rc = await ce_lock(ce)
  if (rc !== 0) return rc
  const dev = pdev.dev
  const s = dma_map_single(dev, src, len, DMA_TO_DEVICE)
  if (dma_mapping_error(dev, s) !== 0) rc = -ENOMEM
  else {
    rc = await ce_xfer(ce, s, sram_off, len, CE_MODE_MEM_TO_SRAM)
    dma_unmap_single(dev, s, len, DMA_TO_DEVICE)
  }
  mutex_unlock(ce.xfer_lock)
  return rc
}

/** Module parameters (module_param(use_msix, bool, 0444)): false keeps the shared INTx line. */
export const ce_params = { use_msix: true }

/** Takes one MSI-X vector (or the INTx line, shared) and installs ce_irq. */
export function ce_setup_irq(ce: CeDev): number {
  const pdev = ce.pdev
  const n = pci_alloc_irq_vectors(pdev, 1, 1, ce_params.use_msix ? PCI_IRQ_MSIX | PCI_IRQ_INTX : PCI_IRQ_INTX)
  if (n < 0) return n
  ce.irq = pci_irq_vector(pdev, 0)
  const rc = request_irq(ce.irq, ce_irq, pdev.msix ? 0 : IRQF_SHARED, CE_DRV_NAME, ce)
  if (rc !== 0) pci_free_irq_vectors(pdev)
  return rc
}

export function ce_new(pdev: PciDev, base: IoAddr): CeDev {
  return {
    pdev, base, irq: -1, sram_size: readl(ptr_add(base, CE_SRAM_SIZE)), desc_pool: null, xfer_lock: mutex_init(),
    lock: spin_lock_init(), done: init_completion(), status: 0, err_code: 0, dead: false,
  }
}

/**
 * Probe (process context; nothing here sleeps). Managed (devres) resources unwind by themselves
 * when probe fails and at unbind; the interrupt and its vector are released by hand in remove.
 */
function ce_init(pdev: PciDev): number {
  let rc = pcim_enable_device(pdev)
  if (rc !== 0) return rc
  rc = pcim_iomap_regions(pdev, 1 << 0, CE_DRV_NAME)
  if (rc !== 0) return rc
  const base = pcim_iomap_table(pdev)[0]!
  const id = readl(ptr_add(base, CE_ID))
  if (id !== CE_ID_VALUE) {
    dev_err(pdev.dev, 'unexpected ID register 0x%x', id)
    return -ENODEV
  }
  rc = dma_set_mask_and_coherent(pdev.dev, DMA_BIT_MASK(64))
  if (rc !== 0) return rc
  pci_set_master(pdev)
  const ce = ce_new(pdev, base)
  ce.desc_pool = dmam_pool_create('ce-desc', pdev.dev, ce_desc.size, ce_desc.size, 0)
  if (ce.desc_pool === null) return -ENOMEM
  pci_set_drvdata(pdev, ce)
  return ce_setup_irq(ce)
}

export function ce_probe(pdev: PciDev, _id: PciDeviceId): Promise<number> {
  return Promise.resolve(ce_init(pdev))
}

export async function ce_remove(pdev: PciDev): Promise<void> {
  const ce = ce_get(pdev)
  writel(0, reg(ce, CE_CTRL)) // interrupts off at the source
  await free_irq(ce.irq, ce)
  pci_free_irq_vectors(pdev)
  pci_clear_master(pdev)
}

export const ce_id_table: readonly PciDeviceId[] = [{ vendor: 0x1de5, device: 0xce01 }]

export const ce_driver: PciDriver = { name: CE_DRV_NAME, id_table: ce_id_table, probe: ce_probe, remove: ce_remove }
