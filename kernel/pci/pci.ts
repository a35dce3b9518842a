/**
 * The PCI driver model (drivers/pci/pci-driver.c, drivers/pci/pci.c, drivers/pci/msi/,
 * lib/pci_iomap.c): struct pci_dev over the emulated functions, id_table matching, probe and
 * remove, enabling memory decoding and bus mastering, regions, BAR mapping, and interrupt vectors
 * (MSI-X programmed through config space and the vector table, as Linux does, or the INTx line).
 *
 * Drivers never see the hardware: the function behind a pci_dev is kept in a private map.
 */

import {
  InterruptController,
  MSIX_CAP_OFFSET,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_TABLE,
  type PciFunction,
} from '../../devices/index.js'
import { Device } from '../base/device.js'
import { IovaDomain } from '../dma/iova.js'
import { EBUSY, EINVAL, ENOSPC } from '../errno.js'
import { badArg } from '../mm/memory.js'
import { current, type Task } from '../sched/current.js'
import type { System } from '../system.js'
import type { IoAddr } from '../types.js'

/** Matches any id in a pci_device_id field. */
export const PCI_ANY_ID = 0xffff_ffff

/** `struct pci_device_id`. */
export interface PciDeviceId {
  vendor: number
  device: number
  subvendor?: number
  subdevice?: number
  class?: number
  class_mask?: number
  driver_data?: number
}

/** `PCI_DEVICE(vendor, device)`. */
export function PCI_DEVICE(vendor: number, device: number): PciDeviceId {
  return { vendor, device, subvendor: PCI_ANY_ID, subdevice: PCI_ANY_ID }
}

/** `struct pci_driver`. */
export interface PciDriver {
  name: string
  id_table: readonly PciDeviceId[]
  probe(pdev: PciDev, id: PciDeviceId): Promise<number>
  remove?(pdev: PciDev): Promise<void> | void
}

export const PCI_IRQ_INTX = 1 << 0
export const PCI_IRQ_LEGACY = PCI_IRQ_INTX
export const PCI_IRQ_MSI = 1 << 1
export const PCI_IRQ_MSIX = 1 << 2
export const PCI_IRQ_ALL_TYPES = PCI_IRQ_INTX | PCI_IRQ_MSI | PCI_IRQ_MSIX

/** The kernel virtual window BARs are mapped into (`ioremap`): IoAddr = base + bus address. */
export const IOREMAP_BASE = 0x1e_0000_0000_0000

const hardware = new WeakMap<PciDev, PciFunction>()

/** `struct pci_dev`. */
export class PciDev {
  readonly vendor: number
  readonly device: number
  readonly class: number
  /** The `struct device` to pass to DMA calls. */
  readonly dev: Device
  /** The legacy INTx interrupt number (`pdev->irq`), -1 without a pin. */
  irq: number
  driver: PciDriver | null = null
  drvdata: unknown = null
  regions: string | null = null
  /** Interrupt numbers of the allocated vectors. */
  vectors: number[] = []
  msix = false
  managed = false

  constructor(sys: System, fn: PciFunction) {
    this.vendor = fn.vendor
    this.device = fn.device
    this.class = fn.classCode
    // A PCI device's default DMA mask is 32 bits until the driver sets a wider one.
    this.dev = new Device(sys, fn.name, fn.dma, 0xffff_ffffn, sys.machine.iommu.enabled ? new IovaDomain(true) : null)
    this.irq = fn.intxLine
    hardware.set(this, fn)
  }

  get name(): string {
    return this.dev.name
  }

  toString(): string {
    return `pci ${this.dev.name} [${hex4(this.vendor)}:${hex4(this.device)}]`
  }
}

const hex4 = (n: number) => n.toString(16).padStart(4, '0')

/** The hardware function behind a pci_dev (kernel-internal). */
export function pciFunction(pdev: PciDev): PciFunction {
  return hardware.get(pdev)!
}

function sysOf(t: Task): System {
  return t.sys as System
}

function checkPdev(t: Task, fn: string, pdev: unknown): PciDev {
  if (!(pdev instanceof PciDev)) badArg(t, fn, 'pdev', 'must be a struct pci_dev (the one probe received)')
  if (pdev.dev.sys !== t.sys) badArg(t, fn, 'pdev', 'belongs to another system')
  return pdev
}

/** Whether an id_table entry matches a device (vendor, device, class under class_mask). */
export function matches(id: PciDeviceId, pdev: PciDev): boolean {
  const any = (x: number | undefined) => x === undefined || x === PCI_ANY_ID
  return (
    (any(id.vendor) || id.vendor === pdev.vendor) &&
    (any(id.device) || id.device === pdev.device) &&
    (id.class_mask === undefined || id.class_mask === 0 || ((id.class ?? 0) & id.class_mask) === (pdev.class & id.class_mask))
  )
}

function command(pdev: PciDev, set: number, clear: number): void {
  const fn = pciFunction(pdev)
  const cmd = fn.configRead(PCI_COMMAND, 2)
  fn.configWrite(PCI_COMMAND, 2, (cmd | set) & ~clear)
}

// ---------------------------------------------------------------------- binding

/** Probes pdev with drv in the calling task (as Linux probes synchronously); returns probe's result. */
export async function bindDevice(t: Task, pdev: PciDev, drv: PciDriver, id: PciDeviceId): Promise<number> {
  const prev = t.device
  t.device = pdev.dev
  pdev.dev.bound = true
  pdev.driver = drv
  try {
    const rc = await drv.probe(pdev, id)
    if (typeof rc !== 'number') badArg(t, `${drv.name}.probe`, 'return value', `must be 0 or a negative errno, got ${typeof rc}`)
    if (rc !== 0) {
      // A failed probe releases what devres holds, and must leave nothing else behind.
      releaseBinding(sysOf(t), pdev)
      sysOf(t).logger.warn({ dev: pdev.name }, `${drv.name} ${pdev.name}: probe failed with error ${rc}`)
    }
    return rc
  } finally {
    t.device = prev
  }
}

/** Calls remove, releases managed resources and reports whatever the driver still holds. */
export async function unbindDevice(t: Task, pdev: PciDev): Promise<void> {
  const drv = pdev.driver
  if (drv === null) return
  const prev = t.device
  t.device = pdev.dev
  try {
    await drv.remove?.(pdev)
  } finally {
    t.device = prev
    releaseBinding(sysOf(t), pdev)
  }
}

function releaseBinding(sys: System, pdev: PciDev): void {
  const dev = pdev.dev
  for (const r of dev.devres.splice(0).reverse()) r.release()
  sys.dma.reportLeaks(dev)
  for (const h of sys.irq.heldBy(dev)) {
    if (sys.checks.dmaDebug) {
      sys.report({
        kind: 'leak',
        device: dev.name,
        message: `${dev.name}: irq ${h.irq} (${h.name}) is still requested after the driver was unbound: free_irq it in remove (or use devm_request_irq)`,
        details: { irq: h.irq },
      })
    }
  }
  if ((pdev.msix || pdev.vectors.length > 0) && pdev.managed) {
    // pcim_enable_device makes the vectors managed: they are freed at unbind (pcim_msi_release).
    freeVectors(sys, pdev)
  } else if (pdev.msix || pdev.vectors.length > 0) {
    if (sys.checks.dmaDebug) {
      sys.report({ kind: 'leak', device: dev.name, message: `${dev.name}: interrupt vectors still allocated after unbind: call pci_free_irq_vectors in remove`, details: { vectors: pdev.vectors.length } })
    }
  }
  pdev.driver = null
  pdev.drvdata = null
  dev.bound = false
}

/** Registers a driver and probes every matching device; resolves once all are probed. */
export async function pci_register_driver(drv: PciDriver): Promise<number> {
  const t = current('pci_register_driver')
  const sys = sysOf(t)
  if (typeof drv !== 'object' || drv === null || typeof drv.name !== 'string' || !Array.isArray(drv.id_table) || typeof drv.probe !== 'function') {
    badArg(t, 'pci_register_driver', 'drv', 'must be a struct pci_driver { name, id_table, probe, remove? }')
  }
  if (sys.pciDrivers.includes(drv)) return -EBUSY
  sys.pciDrivers.push(drv)
  const table: readonly PciDeviceId[] = drv.id_table
  for (const pdev of sys.pciDevices) {
    if (pdev.driver !== null) continue
    const id = table.find((i) => matches(i, pdev))
    if (id !== undefined) await bindDevice(t, pdev, drv, id)
  }
  return 0
}

/** Unbinds (removes) every device of the driver, then forgets it. */
export async function pci_unregister_driver(drv: PciDriver): Promise<void> {
  const t = current('pci_unregister_driver')
  const sys = sysOf(t)
  for (const pdev of sys.pciDevices) if (pdev.driver === drv) await unbindDevice(t, pdev)
  const i = sys.pciDrivers.indexOf(drv)
  if (i >= 0) sys.pciDrivers.splice(i, 1)
}

// ---------------------------------------------------------------------- enabling

/** Enables memory decoding (the BARs respond); 0. */
export function pci_enable_device(pdev: PciDev): number {
  const t = current('pci_enable_device')
  command(checkPdev(t, 'pci_enable_device', pdev), PCI_COMMAND_MEMORY, 0)
  return 0
}

/** Managed pci_enable_device: disabled again at unbind. */
export function pcim_enable_device(pdev: PciDev): number {
  const t = current('pcim_enable_device')
  const p = checkPdev(t, 'pcim_enable_device', pdev)
  command(p, PCI_COMMAND_MEMORY, 0)
  p.managed = true
  p.dev.devres.push({ what: 'pcim_enable_device', release: () => command(p, 0, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER) })
  return 0
}

/** Turns memory decoding and bus mastering off. */
export function pci_disable_device(pdev: PciDev): void {
  const t = current('pci_disable_device')
  command(checkPdev(t, 'pci_disable_device', pdev), 0, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)
}

/** Lets the device master the bus (its DMA works only after this). */
export function pci_set_master(pdev: PciDev): void {
  const t = current('pci_set_master')
  command(checkPdev(t, 'pci_set_master', pdev), PCI_COMMAND_MASTER, 0)
}

export function pci_clear_master(pdev: PciDev): void {
  const t = current('pci_clear_master')
  command(checkPdev(t, 'pci_clear_master', pdev), 0, PCI_COMMAND_MASTER)
}

/** Claims the device's BARs for `name`; -EBUSY if already claimed. */
export function pci_request_regions(pdev: PciDev, name: string): number {
  const t = current('pci_request_regions')
  const p = checkPdev(t, 'pci_request_regions', pdev)
  if (p.regions !== null) return -EBUSY
  p.regions = name
  return 0
}

export function pci_release_regions(pdev: PciDev): void {
  const t = current('pci_release_regions')
  checkPdev(t, 'pci_release_regions', pdev).regions = null
}

/** Bus address and length of a BAR. */
export function pci_resource_start(pdev: PciDev, bar: number): number {
  const t = current('pci_resource_start')
  return pciFunction(checkPdev(t, 'pci_resource_start', pdev)).bars[bar]?.base ?? 0
}
export function pci_resource_len(pdev: PciDev, bar: number): number {
  const t = current('pci_resource_len')
  return pciFunction(checkPdev(t, 'pci_resource_len', pdev)).bars[bar]?.size ?? 0
}

export function pci_set_drvdata(pdev: PciDev, data: unknown): void {
  pdev.drvdata = data
}
/** The driver's private data (`void *` in C: cast it). */
export function pci_get_drvdata(pdev: PciDev): unknown {
  return pdev.drvdata
}

// ---------------------------------------------------------------------- BAR mapping

/** Maps a BAR for the MMIO accessors; null when there is no such BAR. */
export function pci_iomap(pdev: PciDev, bar: number, maxlen = 0): IoAddr | null {
  const t = current('pci_iomap')
  const p = checkPdev(t, 'pci_iomap', pdev)
  const b = pciFunction(p).bars[bar]
  if (typeof bar !== 'number' || b === undefined || b.size === 0) return null
  const len = maxlen > 0 ? Math.min(maxlen, b.size) : b.size
  sysOf(t).iomaps.set(b.base, { pdev: p, bar, len })
  sysOf(t).ioRegionCache = null
  return (IOREMAP_BASE + b.base) as IoAddr
}

export function pci_iounmap(pdev: PciDev, addr: IoAddr): void {
  const t = current('pci_iounmap')
  checkPdev(t, 'pci_iounmap', pdev)
  sysOf(t).iomaps.delete(addr - IOREMAP_BASE)
  sysOf(t).ioRegionCache = null
}

/** Managed: requests the regions of the BARs in mask and maps them (see pcim_iomap_table). */
export function pcim_iomap_regions(pdev: PciDev, mask: number, name: string): number {
  const t = current('pcim_iomap_regions')
  const p = checkPdev(t, 'pcim_iomap_regions', pdev)
  if (p.regions !== null) return -EBUSY
  p.regions = name
  const sys = sysOf(t)
  const maps: IoAddr[] = []
  for (let bar = 0; bar < 6; bar++) {
    if ((mask & (1 << bar)) === 0) continue
    const a = pci_iomap(p, bar)
    if (a === null) return -EINVAL
    maps[bar] = a
  }
  iomapTables.set(p, maps)
  p.dev.devres.push({
    what: 'pcim_iomap_regions',
    release: () => {
      for (const a of maps) if (a !== undefined) sys.iomaps.delete(a - IOREMAP_BASE)
      sys.ioRegionCache = null
      p.regions = null
    },
  })
  return 0
}

const iomapTables = new WeakMap<PciDev, IoAddr[]>()

/** The addresses pcim_iomap_regions mapped, indexed by BAR. */
export function pcim_iomap_table(pdev: PciDev): readonly IoAddr[] {
  return iomapTables.get(pdev) ?? []
}

// ---------------------------------------------------------------------- interrupt vectors

/**
 * Allocates between min and max vectors: MSI-X when the device has it and flags allow (the
 * table is programmed and MSI-X enabled through config space), else the INTx line. MSI (without
 * X) is not modelled. Returns the count or -ENOSPC.
 */
export function pci_alloc_irq_vectors(pdev: PciDev, min_vecs: number, max_vecs: number, flags: number): number {
  const t = current('pci_alloc_irq_vectors')
  const p = checkPdev(t, 'pci_alloc_irq_vectors', pdev)
  if (!Number.isInteger(min_vecs) || !Number.isInteger(max_vecs) || min_vecs < 1 || max_vecs < min_vecs) {
    badArg(t, 'pci_alloc_irq_vectors', 'min_vecs', `and max_vecs must satisfy 1 <= min <= max, got ${min_vecs}, ${max_vecs}`)
  }
  if (p.vectors.length > 0) return -EINVAL
  const fn = pciFunction(p)
  const sys = sysOf(t)
  if ((flags & PCI_IRQ_MSIX) !== 0 && fn.msixVectors >= min_vecs) {
    const n = Math.min(max_vecs, fn.msixVectors)
    const first = sys.machine.intc.allocMsiVectors(n)
    if (first >= 0) {
      const cap = MSIX_CAP_OFFSET
      const table = fn.configRead(cap + PCI_MSIX_TABLE, 4)
      const bir = table & 7
      const off = table - bir
      const ctrl = fn.configRead(cap + PCI_MSIX_FLAGS, 2)
      fn.configWrite(cap + PCI_MSIX_FLAGS, 2, ctrl | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)
      for (let i = 0; i < n; i++) {
        fn.mmioWrite(bir, off + i * 16, 4, 0xfee0_0000)
        fn.mmioWrite(bir, off + i * 16 + 4, 4, 0)
        fn.mmioWrite(bir, off + i * 16 + 8, 4, first + i)
        fn.mmioWrite(bir, off + i * 16 + 12, 4, 0)
      }
      fn.configWrite(cap + PCI_MSIX_FLAGS, 2, (ctrl | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL)
      p.vectors = Array.from({ length: n }, (_, i) => first + i)
      p.msix = true
      return n
    }
  }
  if ((flags & PCI_IRQ_INTX) !== 0 && fn.intxLine >= 0 && min_vecs === 1) {
    p.vectors = [fn.intxLine]
    return 1
  }
  return -ENOSPC
}

/** The interrupt number of vector nr (for request_irq), or -EINVAL. */
export function pci_irq_vector(pdev: PciDev, nr: number): number {
  const t = current('pci_irq_vector')
  return checkPdev(t, 'pci_irq_vector', pdev).vectors[nr] ?? -EINVAL
}

/** Frees the vectors (their handlers must have been freed first). */
export function pci_free_irq_vectors(pdev: PciDev): void {
  const t = current('pci_free_irq_vectors')
  freeVectors(sysOf(t), checkPdev(t, 'pci_free_irq_vectors', pdev))
}

function freeVectors(sys: System, p: PciDev): void {
  const fn = pciFunction(p)
  if (p.msix) {
    const ctrl = fn.configRead(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2)
    fn.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, ctrl & ~PCI_MSIX_FLAGS_ENABLE)
    if (p.vectors.length > 0 && p.vectors[0]! >= InterruptController.MSI_BASE) sys.machine.intc.freeMsiVectors(p.vectors[0]!, p.vectors.length)
  }
  p.vectors = []
  p.msix = false
}

