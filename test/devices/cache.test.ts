import { describe, expect, it } from 'vitest'
import { CpuCache, DEFAULT_CACHE_CONFIG, Ram, Rng } from '../../devices/index.js'

const BASE = 0x4000_0000
function setup(config = { ...DEFAULT_CACHE_CONFIG, speculation: 0 }, seed = 1) {
  const ram = new Ram([{ name: 'dram', base: BASE, size: 1 << 24 }])
  const cache = new CpuCache(ram, new Rng(seed), config)
  const ramByte = (pa: number) => ram.read8(pa)
  const cpuByte = (pa: number) => {
    const b = new Uint8Array(1)
    cache.read(pa, b, 0, 1)
    return b[0]!
  }
  const cpuWrite = (pa: number, v: number, n = 1) => cache.write(pa, new Uint8Array(n).fill(v), 0, n)
  return { ram, cache, ramByte, cpuByte, cpuWrite }
}

describe('CpuCache: write-back, write-allocate', () => {
  it('keeps a CPU store in a dirty line until it is cleaned', () => {
    const { cache, ramByte, cpuWrite } = setup()
    cpuWrite(BASE + 10, 0x42)
    expect(cache.lineState(BASE + 10)).toBe('dirty')
    expect(ramByte(BASE + 10)).toBe(0)
    cache.clean(BASE, 64)
    expect(ramByte(BASE + 10)).toBe(0x42)
    expect(cache.lineState(BASE + 10)).toBe('clean')
  })

  it('serves a cached line even after DRAM changes underneath (a non-coherent device write)', () => {
    const { ram, cpuByte } = setup()
    expect(cpuByte(BASE)).toBe(0)
    ram.write(BASE, new Uint8Array([0x99]), 0, 1)
    expect(cpuByte(BASE)).toBe(0) // stale
  })

  it('invalidate discards dirty data; clean+invalidate writes it back first', () => {
    const { cache, ramByte, cpuWrite, cpuByte } = setup()
    cpuWrite(BASE, 1)
    cache.invalidate(BASE, 64)
    expect(cache.lineState(BASE)).toBe('invalid')
    expect(cpuByte(BASE)).toBe(0) // the store is lost
    cpuWrite(BASE + 64, 2)
    cache.cleanInvalidate(BASE + 64, 64)
    expect(ramByte(BASE + 64)).toBe(2)
    expect(cache.lineState(BASE + 64)).toBe('invalid')
  })

  it("invalPoc follows arm64's dcache_inval_poc: partial end lines are cleaned, whole lines discarded", () => {
    const { cache, ramByte, cpuWrite } = setup()
    cpuWrite(BASE + 0, 0x11) // line 0, whole in range [0, 160) -> discarded
    cpuWrite(BASE + 130, 0x33) // line 2 (128..191) is partial -> written back
    cache.invalPoc(BASE, 160)
    expect(ramByte(BASE)).toBe(0)
    expect(ramByte(BASE + 130)).toBe(0x33)
    expect(cache.lineState(BASE + 130)).toBe('invalid')
    // A partial first line too
    cpuWrite(BASE + 200, 0x44)
    cache.invalPoc(BASE + 210, 100)
    expect(ramByte(BASE + 200)).toBe(0x44)
  })

  it('plain invalidate of a partial line loses the neighbour (riscv cbo.inval)', () => {
    const { cache, ramByte, cpuWrite } = setup()
    cpuWrite(BASE + 130, 0x33)
    cache.invalidate(BASE, 160)
    expect(ramByte(BASE + 130)).toBe(0)
  })

  it('evicts with write-back when a set overflows, and the victims follow the seed', () => {
    const run = (seed: number) => {
      const { cache, ramByte, cpuWrite } = setup({ lineSize: 64, size: 64 * 4 * 2, ways: 2, speculation: 0 }, seed)
      // 4 sets x 2 ways: lines 0, 4, 8, ... all map to set 0.
      const residency: string[] = []
      for (let i = 0; i < 16; i++) {
        cpuWrite(BASE + i * 256, i + 1)
        residency.push(Array.from({ length: i + 1 }, (_, j) => (cache.lineState(BASE + j * 256) === 'dirty' ? 'd' : '.')).join(''))
      }
      const written = Array.from({ length: 16 }, (_, i) => ramByte(BASE + i * 256))
      return { stats: { ...cache.stats }, residency, written }
    }
    const a = run(1)
    expect(a.stats.evictions).toBe(14)
    expect(a.stats.writebacks).toBe(14)
    // Every evicted dirty line reached DRAM; the two still cached did not.
    expect(a.written.filter((v) => v !== 0)).toHaveLength(14)
    expect(a.residency.every((r) => r.split('d').length - 1 === Math.min(2, r.length))).toBe(true)
    expect(run(1)).toEqual(a)
    const traces = [1, 2, 3, 4, 5, 6].map((s) => JSON.stringify(run(s).residency))
    expect(new Set(traces).size).toBeGreaterThan(1)
  })

  it('bypasses the cache for non-cacheable pages', () => {
    const { cache, ramByte, cpuWrite, cpuByte, ram } = setup()
    cache.setUncached(BASE + 4096, 4096, true)
    cpuWrite(BASE + 4096, 7)
    expect(ramByte(BASE + 4096)).toBe(7)
    expect(cache.lineState(BASE + 4096)).toBe('invalid')
    ram.write(BASE + 4100, new Uint8Array([9]), 0, 1)
    expect(cpuByte(BASE + 4100)).toBe(9)
  })

  it('lets a coherent device snoop dirty lines and invalidates lines it writes', () => {
    const { cache, ram, cpuWrite, cpuByte } = setup()
    cpuWrite(BASE + 5, 0x77)
    const dst = new Uint8Array(8)
    cache.snoopRead(BASE, dst, 0, 8)
    expect(dst[5]).toBe(0x77)
    // The snooped Modified line was written back and kept, clean: DRAM has the CPU's byte now.
    expect(cache.lineState(BASE)).toBe('clean')
    const dram = new Uint8Array(8)
    ram.read(BASE, dram, 0, 8)
    expect(dram[5]).toBe(0x77)
    cache.snoopWrite(BASE, 8) // a device write of 8 bytes: the partial dirty line goes to DRAM first
    ram.write(BASE, new Uint8Array(8).fill(1), 0, 8)
    expect(cache.lineState(BASE)).toBe('invalid')
    expect(cpuByte(BASE + 5)).toBe(1)
    expect(cpuByte(BASE + 8)).toBe(0)
  })

  it('speculatively fills a neighbouring line when asked to', () => {
    const { cache, cpuByte } = setup({ ...DEFAULT_CACHE_CONFIG, speculation: 1 })
    cpuByte(BASE + 64 * 10)
    const neighbours = ['clean', 'clean'].filter((_, i) => cache.lineState(BASE + 64 * (i === 0 ? 9 : 11)) !== 'invalid')
    expect(neighbours).toHaveLength(1)
    expect(cache.stats.speculativeFills).toBe(1)
  })

  it('rejects impossible geometries with a message naming the field', () => {
    const ram = new Ram([{ name: 'dram', base: BASE, size: 1 << 20 }])
    expect(() => new CpuCache(ram, new Rng(1), { ...DEFAULT_CACHE_CONFIG, lineSize: 48 })).toThrow(/lineSize/)
    expect(() => new CpuCache(ram, new Rng(1), { ...DEFAULT_CACHE_CONFIG, size: 1000 })).toThrow(/size/)
    expect(() => new CpuCache(ram, new Rng(1), { ...DEFAULT_CACHE_CONFIG, speculation: 2 })).toThrow(/speculation/)
  })
})
