import { describe, expect, it } from 'vitest'
import { Ram, Rng, StoreBuffer } from '../../devices/index.js'

const BASE = 0x4000_0000
const word = (v: number) => new Uint8Array(new Uint32Array([v]).buffer)

function setup(seed = 1, enabled = true) {
  const ram = new Ram([{ name: 'dram', base: BASE, size: 1 << 20 }])
  const sb = new StoreBuffer(ram, new Rng(seed), enabled)
  const ramWord = (pa: number) => {
    const b = new Uint8Array(4)
    ram.read(pa, b, 0, 4)
    return new DataView(b.buffer).getUint32(0, true)
  }
  return { ram, sb, ramWord }
}

describe('StoreBuffer', () => {
  it('holds stores away from memory until a drain, while the CPU sees its own stores', () => {
    const { sb, ramWord } = setup()
    sb.store(BASE, word(7), 0, 4)
    expect(ramWord(BASE)).toBe(0)
    const view = new Uint8Array(4)
    sb.forward(BASE, view, 0, 4)
    expect(new DataView(view.buffer).getUint32(0, true)).toBe(7)
    expect(sb.holds(BASE, 4)).toBe(true)
    sb.drain()
    expect(ramWord(BASE)).toBe(7)
    expect(sb.pending).toBe(0)
  })

  it('drains in a seeded order when full, but never reorders two stores to one address', () => {
    const orders = new Set<string>()
    for (let seed = 1; seed <= 12; seed++) {
      const { sb, ram } = setup(seed)
      const seen: number[] = []
      const realWrite = ram.write.bind(ram)
      ram.write = (pa, src, off, len) => {
        seen.push((pa - BASE) / 64)
        realWrite(pa, src, off, len)
      }
      for (let i = 0; i < 12; i++) sb.store(BASE + i * 64, word(i), 0, 4)
      sb.store(BASE, word(100), 0, 4) // a second store to line 0
      sb.drain()
      expect(seen.indexOf(0)).toBeLessThan(seen.lastIndexOf(0))
      const last = new Uint8Array(4)
      ram.read(BASE, last, 0, 4)
      expect(new DataView(last.buffer).getUint32(0, true)).toBe(100)
      orders.add(seen.join(','))
    }
    expect(orders.size).toBeGreaterThan(1)
  })

  it('is a plain write-through on a TSO platform', () => {
    const { sb, ramWord } = setup(1, false)
    sb.store(BASE, word(9), 0, 4)
    expect(ramWord(BASE)).toBe(9)
    expect(sb.pending).toBe(0)
  })
})
