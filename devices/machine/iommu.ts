/**
 * The IOMMU: per-device translation of DMA addresses (IOVAs) through page tables with read and
 * write permissions.
 *
 * Models an SMMU/VT-d style translation unit as the DMA API sees it (drivers/iommu/dma-iommu.c,
 * drivers/iommu/io-pgtable-arm.c): each requester (device) has its own domain, an address space of
 * 4 KiB pages whose entries carry IOMMU_READ / IOMMU_WRITE. A device access that no entry permits
 * faults and does not happen. Page tables are two-level here (a map of 2 MiB leaf tables of 512
 * entries, each a physical frame number and its permission bits).
 *
 * The IOTLB: a translation the device used is cached (one bit per PTE). Removing a PTE does not
 * remove its cached translation: `unmapFast` (iommu_unmap_fast) leaves it in the IOTLB, where the
 * device still finds it, until `iotlbSync` (iommu_iotlb_sync, for that range) or `flushIotlbAll`
 * (flush_iotlb_all, the whole domain) invalidates it. `unmap` is iommu_unmap: both at once, as strict
 * mode does. The IOTLB here never evicts: a real one is finite and may have dropped an entry
 * earlier, so a stale hit here is the worst case, not the only case.
 */

export const IOMMU_READ = 1
export const IOMMU_WRITE = 2

/**
 * 'strict': the kernel invalidates the IOTLB at every unmap. 'lazy': it defers the invalidation to
 * a flush queue (the kernel's side, kernel/dma/iova.ts); the unit itself works the same either way.
 */
export type IommuMode = 'off' | 'strict' | 'lazy'

const PAGE_SHIFT = 12
const PAGE_SIZE = 1 << PAGE_SHIFT

/** Whether x is not a multiple of the page size (not x % PAGE_SIZE: above 2^31, % is an fmod() call, ~20 ns against ~3). */
function unaligned(x: number): boolean {
  return x !== Math.floor(x / PAGE_SIZE) * PAGE_SIZE
}

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
  /** 1 where the IOTLB holds the PTE's translation (the device used it since it was mapped). */
  readonly tlb: Uint8Array
}

/** One device's translation context (an iommu_domain with its io-pgtable). */
export class IommuDomain {
  readonly name: string
  readonly #tables = new Map<number, Leaf>()
  /** IOTLB entries whose PTE is gone: page number to pfn * 4 + prot. */
  readonly #stale = new Map<number, number>()
  #mappedPages = 0
  /** Whole-domain IOTLB invalidations so far (flushIotlbAll calls). */
  iotlbFlushes = 0

  constructor(name: string) {
    this.name = name
  }

  get mappedPages(): number {
    return this.#mappedPages
  }

  #leaf(t: number, create: boolean): Leaf | undefined {
    let leaf = this.#tables.get(t)
    if (leaf === undefined && create) {
      leaf = { pfn: new Float64Array(PTES_PER_TABLE), prot: new Uint8Array(PTES_PER_TABLE), tlb: new Uint8Array(PTES_PER_TABLE) }
      this.#tables.set(t, leaf)
    }
    return leaf
  }

  /** Maps [iova, iova+size) to [pa, pa+size); both page aligned. */
  map(iova: number, pa: number, size: number, prot: number): void {
    if (unaligned(iova) || unaligned(pa) || unaligned(size)) {
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
        leaf.tlb[i] = 0
      }
    }
  }

  /** iommu_unmap: removes the PTEs of [iova, iova+size) and invalidates their IOTLB entries. */
  unmap(iova: number, size: number): void {
    // One pass: clearing the PTE and its IOTLB bit together is unmapFast + iotlbSync without
    // parking the used translations on the stale list only to drop them again.
    const stale = this.#stale
    let vpn = Math.floor(iova / PAGE_SIZE)
    const last = vpn + Math.ceil(size / PAGE_SIZE)
    while (vpn < last) {
      const t = Math.floor(vpn / PTES_PER_TABLE)
      const stop = Math.min(last, (t + 1) * PTES_PER_TABLE)
      const leaf = this.#leaf(t, false)
      if (leaf !== undefined) {
        for (let i = vpn - t * PTES_PER_TABLE, v = vpn; v < stop; v++, i++) {
          if (leaf.prot[i] !== 0) this.#mappedPages--
          leaf.prot[i] = 0
          leaf.tlb[i] = 0
        }
      }
      if (stale.size > 0) for (let v = vpn; v < stop; v++) stale.delete(v)
      vpn = stop
    }
  }

  /**
   * iommu_unmap_fast: removes the PTEs of [iova, iova+size). Translations the IOTLB holds stay
   * there, and the device still reaches their pages, until iotlbSync or flushIotlbAll.
   */
  unmapFast(iova: number, size: number): void {
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
        if (leaf.prot[i] !== 0) {
          this.#mappedPages--
          if (leaf.tlb[i] !== 0) this.#stale.set(vpn, leaf.pfn[i]! * 4 + leaf.prot[i]!)
        }
        leaf.prot[i] = 0
        leaf.tlb[i] = 0
      }
    }
  }

  /** iommu_iotlb_sync over [iova, iova+size): drops the IOTLB entries of removed PTEs there. */
  iotlbSync(iova: number, size: number): void {
    if (this.#stale.size === 0) return
    const first = Math.floor(iova / PAGE_SIZE)
    const last = first + Math.ceil(size / PAGE_SIZE)
    if (last - first > this.#stale.size) {
      for (const vpn of this.#stale.keys()) if (vpn >= first && vpn < last) this.#stale.delete(vpn)
    } else for (let vpn = first; vpn < last; vpn++) this.#stale.delete(vpn)
  }

  /** flush_iotlb_all: invalidates every IOTLB entry of the domain (the stale ones are what it changes). */
  flushIotlbAll(): void {
    this.#stale.clear()
    this.iotlbFlushes++
  }

  /** IOTLB entries that outlived their PTE (the device can still use them). */
  get staleIotlbEntries(): number {
    return this.#stale.size
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
    if (prot === 0) {
      const e = this.#stale.get(vpn)
      if (e === undefined) return -1
      if ((e & (write ? IOMMU_WRITE : IOMMU_READ)) === 0) return -2
      return Math.floor(e / 4) * PAGE_SIZE + (iova - vpn * PAGE_SIZE)
    }
    if ((prot & (write ? IOMMU_WRITE : IOMMU_READ)) === 0) return -2
    leaf!.tlb[i] = 1
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
      let pa: number
      if ((prot & need) !== 0) {
        leaf!.tlb[i] = 1
        pa = leaf!.pfn[i]! * PAGE_SIZE + off
      } else {
        // No PTE: a stale IOTLB entry may still translate (lazy invalidation's window).
        const e = prot === 0 && this.#stale.size > 0 ? (this.#stale.get(vpn) ?? 0) : 0
        if ((e & need) === 0) {
          faultAt[0] = vpn * PAGE_SIZE + off
          return prot === 0 && e === 0 ? -1 : -2
        }
        pa = Math.floor(e / 4) * PAGE_SIZE + off
      }
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
