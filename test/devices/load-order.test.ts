/**
 * The machine's load-load reordering (devices/machine/load-order.ts): on a weakly ordered CPU a
 * load of bytes a device wrote before something the CPU already loaded may return what was there
 * before, unless a read barrier came between; the CPU's own stores and old writes are not.
 */
import { describe, expect, it } from 'vitest'
import { LoadOrder, REORDER_WINDOW, Ram, Rng } from '../../devices/index.js'

const BASE = 0x4000_0000

function setup(probability = 1, enabled = true, seed = 1) {
  const ram = new Ram([{ name: 'dram', base: BASE, size: 1 << 20 }])
  const lo = new LoadOrder(ram, new Rng(seed), enabled, probability)
  /** A device write: logged, then it lands. */
  const devWrite = (pa: number, bytes: number[]) => {
    lo.deviceWrite(pa, bytes.length)
    ram.write(pa, Uint8Array.from(bytes), 0, bytes.length)
  }
  /** A CPU load through the model. */
  const load = (pa: number, len: number) => {
    const b = new Uint8Array(len)
    ram.read(pa, b, 0, len)
    lo.load(pa, b, 0, len)
    return [...b]
  }
  return { ram, lo, devWrite, load }
}

describe('LoadOrder', () => {
  it('a load of data the device wrote before the flag the CPU already read may return the old data', () => {
    const { lo, devWrite, load } = setup()
    devWrite(BASE, [0x11, 0x22]) // the data
    devWrite(BASE + 2, [1, 0]) // then the flag
    expect(load(BASE + 2, 2)).toEqual([1, 0]) // the flag: the newest write
    expect(load(BASE, 2)).toEqual([0, 0]) // the data, satisfied before its write landed
    expect(lo.staleLoads).toBe(1)
  })

  it('after a read barrier the same loads see the data', () => {
    const { lo, devWrite, load } = setup()
    devWrite(BASE, [0x11, 0x22])
    devWrite(BASE + 2, [1, 0])
    expect(load(BASE + 2, 2)).toEqual([1, 0])
    lo.barrier() // dma_rmb()
    expect(load(BASE, 2)).toEqual([0x11, 0x22])
    expect(lo.staleLoads).toBe(0)
  })

  it('loads in the order the device wrote are never early', () => {
    const { lo, devWrite, load } = setup()
    devWrite(BASE, [0x11, 0x22])
    devWrite(BASE + 2, [1, 0])
    expect(load(BASE, 2)).toEqual([0x11, 0x22])
    expect(load(BASE + 2, 2)).toEqual([1, 0])
    expect(lo.staleLoads).toBe(0)
  })

  it('decides per byte: a field written with the flag in one word is not early, its neighbour written before is', () => {
    const { devWrite, load } = setup()
    devWrite(BASE, [0xaa, 0xbb]) // body (command id)
    devWrite(BASE + 2, [1, 0]) // status, same 32-bit word
    expect(load(BASE + 2, 2)).toEqual([1, 0])
    expect(load(BASE, 4)).toEqual([0, 0, 1, 0]) // the body half is early, the status half is not
  })

  it('returns the value from before the first logged write when a byte was written twice', () => {
    const { ram, devWrite, load } = setup()
    ram.write(BASE, Uint8Array.from([9]), 0, 1)
    devWrite(BASE, [5])
    devWrite(BASE, [6])
    devWrite(BASE + 4, [1])
    expect(load(BASE + 4, 1)).toEqual([1])
    expect(load(BASE, 1)).toEqual([9])
  })

  it("the CPU's own store supersedes the device's write", () => {
    const { lo, ram, devWrite, load } = setup()
    devWrite(BASE, [0x11])
    devWrite(BASE + 4, [1])
    lo.cpuStore(BASE, 1)
    ram.write(BASE, Uint8Array.from([0x77]), 0, 1)
    expect(load(BASE + 4, 1)).toEqual([1])
    expect(load(BASE, 1)).toEqual([0x77])
  })

  it(`keeps only the newest ${REORDER_WINDOW} writes: an older one has landed for every load`, () => {
    const { devWrite, load } = setup()
    devWrite(BASE, [0x11])
    for (let i = 0; i < REORDER_WINDOW; i++) devWrite(BASE + 64 + i, [1])
    expect(load(BASE + 64 + REORDER_WINDOW - 1, 1)).toEqual([1])
    expect(load(BASE, 1)).toEqual([0x11])
  })

  it('is seeded: with probability 1/2 some seeds return stale data and some do not, each the same every run', () => {
    const outcome = (seed: number) => {
      const { devWrite, load } = setup(0.5, true, seed)
      devWrite(BASE, [0x11])
      devWrite(BASE + 4, [1])
      load(BASE + 4, 1)
      return load(BASE, 1)[0]
    }
    const seen = new Set<number>()
    for (let seed = 1; seed <= 16; seed++) {
      expect(outcome(seed)).toBe(outcome(seed))
      seen.add(outcome(seed)!)
    }
    expect([...seen].sort()).toEqual([0, 0x11])
  })

  it('does nothing when disabled (TSO) or with probability 0', () => {
    for (const [p, enabled] of [
      [1, false],
      [0, true],
    ] as const) {
      const { lo, devWrite, load } = setup(p, enabled)
      devWrite(BASE, [0x11])
      devWrite(BASE + 4, [1])
      expect(load(BASE + 4, 1)).toEqual([1])
      expect(load(BASE, 1)).toEqual([0x11])
      expect(lo.staleLoads).toBe(0)
    }
  })
})
