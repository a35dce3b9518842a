/**
 * The IOMMU: per-device translation of DMA addresses (IOVAs) through page tables with read and
 * write permissions.
 *
 * Models an SMMU/VT-d style translation unit as the DMA API sees it (drivers/iommu/dma-iommu.c,
 * drivers/iommu/io-pgtable-arm.c): each requester (device) has its own domain, an address space of
 * 4 KiB pages whose entries carry IOMMU_READ / IOMMU_WRITE. A device access that no entry permits
 * faults and does not happen. Page tables are two-level here (a map of 2 MiB leaf tables of 512
 * entries, each a physical frame number and its permission bits).
 */

export const IOMMU_READ = 1
export const IOMMU_WRITE = 2

export type IommuMode = 'off' | 'strict' | 'lazy'

const PAGE_SHIFT = 12
const PAGE_SIZE = 1 << PAGE_SHIFT
const PTES_PER_TABLE = 512

export interface IommuFault {
  /** The requester (device) name. */
  readonly device: string
  /** The faulting IOVA. */
  readonly iova: number
  /** True for a write (device to memory), false for a read. */
  readonly write: boolean
  /** 'unmapped' when no PTE exists, 'permission' when the PTE lacks the access right. */
  readonly reason: 'unmapped' | 'permission'
}

/** A last-level page table: 512 entries of a frame number and permission bits. */
interface Leaf {
  readonly pfn: Float64Array
  readonly prot: Uint8Array
}

/** One device's translation context (an iommu_domain with its io-pgtable). */
export class IommuDomain {
  readonly name: string
  readonly #tables = new Map<number, Leaf>()
  #mappedPages = 0

  constructor(name: string) {
    this.name = name
  }

  get mappedPages(): number {
    return this.#mappedPages
  }

  #leaf(t: number, create: boolean): Leaf | undefined {
    let leaf = this.#tables.get(t)
    if (leaf === undefined && create) {
      leaf = { pfn: new Float64Array(PTES_PER_TABLE), prot: new Uint8Array(PTES_PER_TABLE) }
      this.#tables.set(t, leaf)
    }
    return leaf
  }

  /** Maps [iova, iova+size) to [pa, pa+size); both page aligned. */
  map(iova: number, pa: number, size: number, prot: number): void {
    if (iova % PAGE_SIZE !== 0 || pa % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`iommu map: iova, pa and size must be page aligned`)
    }
    let vpn = iova / PAGE_SIZE
    let pfn = pa / PAGE_SIZE
    const last = vpn + size / PAGE_SIZE
    while (vpn < last) {
      const t = Math.floor(vpn / PTES_PER_TABLE)
      const leaf = this.#leaf(t, true)!
      const stop = Math.min(last, (t + 1) * PTES_PER_TABLE)
      for (let i = vpn - t * PTES_PER_TABLE; vpn < stop; vpn++, pfn++, i++) {
        if (leaf.prot[i] === 0) this.#mappedPages++
        leaf.pfn[i] = pfn
        leaf.prot[i] = prot
      }
    }
  }

  /** Removes the PTEs of [iova, iova+size). */
  unmap(iova: number, size: number): void {
    let vpn = Math.floor(iova / PAGE_SIZE)
    const last = vpn + Math.ceil(size / PAGE_SIZE)
    while (vpn < last) {
      const t = Math.floor(vpn / PTES_PER_TABLE)
      const stop = Math.min(last, (t + 1) * PTES_PER_TABLE)
      const leaf = this.#leaf(t, false)
      if (leaf === undefined) {
        vpn = stop
        continue
      }
      for (let i = vpn - t * PTES_PER_TABLE; vpn < stop; vpn++, i++) {
        if (leaf.prot[i] !== 0) this.#mappedPages--
        leaf.prot[i] = 0
      }
    }
  }

  /** The PTE of the page holding iova as pfn * 4 + prot (0 when none). */
  pte(iova: number): number {
    const vpn = Math.floor(iova / PAGE_SIZE)
    const t = Math.floor(vpn / PTES_PER_TABLE)
    const leaf = this.#tables.get(t)
    const i = vpn - t * PTES_PER_TABLE
    return leaf === undefined || leaf.prot[i] === 0 ? 0 : leaf.pfn[i]! * 4 + leaf.prot[i]!
  }

  /** Translates iova, or returns -1 (unmapped) / -2 (permission) on a fault. */
  translate(iova: number, write: boolean): number {
    const vpn = Math.floor(iova / PAGE_SIZE)
    const t = Math.floor(vpn / PTES_PER_TABLE)
    const leaf = this.#tables.get(t)
    const i = vpn - t * PTES_PER_TABLE
    const prot = leaf === undefined ? 0 : leaf.prot[i]!
    if (prot === 0) return -1
    if ((prot & (write ? IOMMU_WRITE : IOMMU_READ)) === 0) return -2
    return leaf!.pfn[i]! * PAGE_SIZE + (iova - vpn * PAGE_SIZE)
  }

  /**
   * Translates [iova, iova+len) into physically contiguous runs written to runPa/runLen; returns
   * the run count, or -1 (unmapped) / -2 (permission) with faultAt[0] set to the faulting IOVA.
   */
  walk(iova: number, len: number, write: boolean, runPa: number[], runLen: number[], faultAt: number[]): number {
    const need = write ? IOMMU_WRITE : IOMMU_READ
    let n = 0
    let vpn = Math.floor(iova / PAGE_SIZE)
    let off = iova - vpn * PAGE_SIZE
    let left = len
    let t = Math.floor(vpn / PTES_PER_TABLE)
    let leaf = this.#tables.get(t)
    let i = vpn - t * PTES_PER_TABLE
    let runEnd = -1
    while (left > 0) {
      if (i === PTES_PER_TABLE) {
        t++
        i = 0
        leaf = this.#tables.get(t)
      }
      const prot = leaf === undefined ? 0 : leaf.prot[i]!
      if ((prot & need) === 0) {
        faultAt[0] = vpn * PAGE_SIZE + off
        return prot === 0 ? -1 : -2
      }
      const pa = leaf!.pfn[i]! * PAGE_SIZE + off
      const chunk = left < PAGE_SIZE - off ? left : PAGE_SIZE - off
      if (pa === runEnd) runLen[n - 1]! += chunk
      else {
        runPa[n] = pa
        runLen[n] = chunk
        n++
      }
      runEnd = pa + chunk
      left -= chunk
      off = 0
      vpn++
      i++
    }
    return n
  }
}

/** The IOMMU unit: one domain per requester. */
export class Iommu {
  readonly mode: IommuMode
  readonly #domains = new Map<string, IommuDomain>()

  constructor(mode: IommuMode) {
    this.mode = mode
  }

  get enabled(): boolean {
    return this.mode !== 'off'
  }

  /** The domain of the requester, created on first use. */
  domain(requester: string): IommuDomain {
    let d = this.#domains.get(requester)
    if (d === undefined) {
      d = new IommuDomain(requester)
      this.#domains.set(requester, d)
    }
    return d
  }
}
