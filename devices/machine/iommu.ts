/**
 * The IOMMU: per-device translation of DMA addresses (IOVAs) through page tables with read and
 * write permissions.
 *
 * Models an SMMU/VT-d style translation unit as the DMA API sees it (drivers/iommu/dma-iommu.c,
 * drivers/iommu/io-pgtable-arm.c): each requester (device) has its own domain, an address space of
 * 4 KiB pages whose entries carry IOMMU_READ / IOMMU_WRITE. A device access that no entry permits
 * faults and does not happen. Page tables are two-level here (a map of 2 MiB tables of 512 PTEs);
 * a PTE packs the physical frame number and the permission bits.
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

/** One device's translation context (an iommu_domain with its io-pgtable). */
export class IommuDomain {
  readonly name: string
  readonly #tables = new Map<number, Float64Array>()
  #mappedPages = 0

  constructor(name: string) {
    this.name = name
  }

  get mappedPages(): number {
    return this.#mappedPages
  }

  /** Maps [iova, iova+size) to [pa, pa+size); both page aligned. */
  map(iova: number, pa: number, size: number, prot: number): void {
    if (iova % PAGE_SIZE !== 0 || pa % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError(`iommu map: iova, pa and size must be page aligned`)
    }
    let vpn = iova / PAGE_SIZE
    let pte = (pa / PAGE_SIZE) * 4 + prot
    const last = vpn + size / PAGE_SIZE
    while (vpn < last) {
      const t = Math.floor(vpn / PTES_PER_TABLE)
      let table = this.#tables.get(t)
      if (table === undefined) {
        table = new Float64Array(PTES_PER_TABLE)
        this.#tables.set(t, table)
      }
      const stop = Math.min(last, (t + 1) * PTES_PER_TABLE)
      for (; vpn < stop; vpn++, pte += 4) {
        const i = vpn - t * PTES_PER_TABLE
        if (table[i] === 0) this.#mappedPages++
        table[i] = pte
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
      const table = this.#tables.get(t)
      if (table === undefined) {
        vpn = stop
        continue
      }
      for (; vpn < stop; vpn++) {
        const i = vpn - t * PTES_PER_TABLE
        if (table[i] !== 0) this.#mappedPages--
        table[i] = 0
      }
    }
  }

  /**
   * Translates [iova, iova+len) into physically contiguous runs written to runPa/runLen; returns
   * the run count, or -1 (unmapped) / -2 (permission) with faultAt[0] set to the faulting IOVA.
   */
  walk(iova: number, len: number, write: boolean, runPa: number[], runLen: number[], faultAt: number[]): number {
    const need = write ? IOMMU_WRITE : IOMMU_READ
    let n = 0
    let pos = iova
    const end = iova + len
    let tableIdx = -1
    let table: Float64Array | undefined
    while (pos < end) {
      const vpn = Math.floor(pos / PAGE_SIZE)
      const t = Math.floor(vpn / PTES_PER_TABLE)
      if (t !== tableIdx) {
        tableIdx = t
        table = this.#tables.get(t)
      }
      const pte = table === undefined ? 0 : table[vpn - t * PTES_PER_TABLE]!
      if (pte === 0 || ((pte % 4) & need) === 0) {
        faultAt[0] = pos
        return pte === 0 ? -1 : -2
      }
      const pa = ((pte - (pte % 4)) / 4) * PAGE_SIZE + (pos - vpn * PAGE_SIZE)
      const chunk = Math.min(end - pos, (vpn + 1) * PAGE_SIZE - pos)
      if (n > 0 && runPa[n - 1]! + runLen[n - 1]! === pa) runLen[n - 1]! += chunk
      else {
        runPa[n] = pa
        runLen[n] = chunk
        n++
      }
      pos += chunk
    }
    return n
  }

  /** The PTE for the page holding iova (0 when none). */
  pte(iova: number): number {
    const vpn = Math.floor(iova / PAGE_SIZE)
    const t = Math.floor(vpn / PTES_PER_TABLE)
    const table = this.#tables.get(t)
    return table === undefined ? 0 : table[vpn - t * PTES_PER_TABLE]!
  }

  /** Translates iova, or returns -1 (unmapped) / -2 (permission) on a fault. */
  translate(iova: number, write: boolean): number {
    const pte = this.pte(iova)
    if (pte === 0) return -1
    const prot = pte % 4
    if ((prot & (write ? IOMMU_WRITE : IOMMU_READ)) === 0) return -2
    return ((pte - prot) / 4) * PAGE_SIZE + (iova % PAGE_SIZE)
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
