/**
 * The 8237A pair model (devices/isa/i8237.ts) against its datasheet (docs/devices/i8237.md), on a
 * bare host (a 16 MiB byte array as the bus): registers through the flip-flop, page registers,
 * masks, status (TC and request bits), modes, terminal count, auto-init, decrement, the 64/128 KiB
 * page wrap, master clear, and the bus time each transfer mode holds the bus for.
 */
import { describe, expect, it } from 'vitest'
import {
  DMA_AUTOINIT, DMA_MODE_BLOCK, DMA_MODE_CASCADE, DMA_MODE_DECREMENT, DMA_MODE_DEMAND, DMA_MODE_READ, DMA_MODE_SINGLE,
  DMA_MODE_WRITE, I8237, MEMTX_OK, type I8237Options,
} from '../../devices/index.js'

interface Bench {
  dma: I8237
  mem: Uint8Array
  errors: string[]
  stalls: number[]
  idle: { value: boolean }
  out: (port: number, v: number) => void
  inp: (port: number) => number
  /** Programs channel n as a driver does: mask, clear ff, mode, page, address, count, unmask. */
  program: (n: number, addr: number, bytes: number, mode: number) => void
}

function bench(opts: I8237Options = {}): Bench {
  const mem = new Uint8Array(0x100_0000)
  const errors: string[] = []
  const stalls: number[] = []
  const idle = { value: false }
  const dma = new I8237(opts)
  dma.attach({
    dmaRead: (a, into, off, len) => (into.set(mem.subarray(a, a + len), off), MEMTX_OK),
    dmaWrite: (a, from, off, len) => (mem.set(from.subarray(off, off + len), a), MEMTX_OK),
    stallCpu: (ns) => void stalls.push(ns),
    cpuIdle: () => idle.value,
    guestError: (m) => void errors.push(m),
  })
  const out = (p: number, v: number) => dma.ioWrite(p, v)
  const inp = (p: number) => dma.ioRead(p)
  const PAGE = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a]
  const program = (n: number, addr: number, bytes: number, mode: number) => {
    const hi = n >= 4
    const reg = (r: number) => (hi ? 0xc0 + 2 * r : r)
    const i = n & 3
    out(reg(10), i | 4)
    out(reg(12), 0)
    out(reg(11), mode | i)
    out(PAGE[n]!, (addr >> 16) & 0xff)
    const a = hi ? (addr >> 1) & 0xffff : addr & 0xffff
    const c = hi ? (bytes >> 1) - 1 : bytes - 1
    out(reg(2 * i), a & 0xff)
    out(reg(2 * i), a >> 8)
    out(reg(2 * i + 1), c & 0xff)
    out(reg(2 * i + 1), c >> 8)
    out(reg(10), i)
  }
  return { dma, mem, errors, stalls, idle, out, inp, program }
}

const fill = (mem: Uint8Array, at: number, n: number) => {
  for (let i = 0; i < n; i++) mem[at + i] = (i * 13 + 5) & 0xff
  return mem.slice(at, at + n)
}

describe('i8237 registers', () => {
  it('address and count are written and read a byte at a time through the flip-flop', () => {
    const b = bench()
    b.out(0x0c, 0)
    b.out(0x02, 0x34)
    b.out(0x02, 0x12)
    b.out(0x03, 0xff)
    b.out(0x03, 0x0f)
    expect(b.dma.channel(1)).toMatchObject({ baseAddr: 0x1234, curAddr: 0x1234, baseCount: 0x0fff, curCount: 0x0fff })
    b.out(0x0c, 0)
    expect([b.inp(0x02), b.inp(0x02), b.inp(0x03), b.inp(0x03)]).toEqual([0x34, 0x12, 0xff, 0x0f])
  })

  it('a flip-flop left at the high byte swaps the next pair (why drivers call clear_dma_ff)', () => {
    const b = bench()
    b.out(0x0c, 0)
    b.inp(0x03) // one byte read: the flip-flop now points at the high byte
    b.out(0x02, 0x34)
    b.out(0x02, 0x12)
    expect(b.dma.channel(1).baseAddr).toBe(0x3412)
  })

  it('page registers sit at 0x87 0x83 0x81 0x82 / 0x8b 0x89 0x8a; the second controller at even ports 0xc0-0xde', () => {
    const b = bench()
    const pages = [0x87, 0x83, 0x81, 0x82, 0x8f, 0x8b, 0x89, 0x8a]
    pages.forEach((p, n) => b.out(p, 0x10 + n))
    pages.forEach((p, n) => expect(b.dma.channel(n).page).toBe(0x10 + n))
    b.out(0xd8, 0)
    b.out(0xc4, 0x78)
    b.out(0xc4, 0x56)
    expect(b.dma.channel(5).baseAddr).toBe(0x5678)
  })

  it('single mask, clear mask, all-mask and master clear', () => {
    const b = bench()
    for (let n = 0; n < 4; n++) expect(b.dma.channel(n).masked).toBe(true)
    expect(b.dma.channel(4)).toMatchObject({ masked: false, mode: DMA_MODE_CASCADE }) // the firmware's cascade
    b.out(0x0a, 2)
    expect(b.dma.channel(2).masked).toBe(false)
    b.out(0x0f, 0b1011)
    expect([0, 1, 2, 3].map((n) => b.dma.channel(n).masked)).toEqual([true, true, false, true])
    b.out(0x0e, 0)
    expect([0, 1, 2, 3].map((n) => b.dma.channel(n).masked)).toEqual([false, false, false, false])
    b.out(0x0d, 0)
    expect([0, 1, 2, 3].map((n) => b.dma.channel(n).masked)).toEqual([true, true, true, true])
  })

  it('status: TC bits cleared by the read, request bits follow DREQ and the request register', () => {
    const b = bench()
    const m = fill(b.mem, 0x1000, 4)
    b.program(1, 0x1000, 4, DMA_MODE_WRITE)
    b.dma.setDreq(1, true)
    const got = new Uint8Array(8)
    expect(b.dma.readMemory(1, got)).toEqual({ bytes: 4, tc: true })
    expect(got.subarray(0, 4)).toEqual(m)
    b.out(0x09, 4 | 3)
    expect(b.inp(0x08)).toBe(0x02 | ((0x2 | 0x8) << 4))
    expect(b.inp(0x08) & 0x0f).toBe(0)
  })

  it('memory-to-memory and an illegal transfer type are guest errors', () => {
    const b = bench()
    b.out(0x08, 0x01)
    b.out(0x0b, 0x0c | 1)
    expect(b.errors).toHaveLength(2)
    expect(b.errors[0]).toMatch(/memory-to-memory/)
    expect(b.errors[1]).toMatch(/illegal transfer type/)
  })
})

describe('i8237 transfers', () => {
  it('single mode: one unit per grant; terminal count masks the channel without auto-init', () => {
    const b = bench()
    const m = fill(b.mem, 0x2_3000, 100)
    b.program(1, 0x2_3000, 100, DMA_MODE_WRITE)
    const got = new Uint8Array(64)
    expect(b.dma.readMemory(1, got, 64)).toEqual({ bytes: 64, tc: false })
    expect(got).toEqual(m.subarray(0, 64))
    expect(b.dma.readMemory(1, got, 64)).toEqual({ bytes: 36, tc: true })
    expect(got.subarray(0, 36)).toEqual(m.subarray(64))
    expect(b.dma.channel(1).masked).toBe(true)
    expect(b.dma.channel(1).curCount).toBe(0xffff)
    expect(b.dma.readMemory(1, got)).toEqual({ bytes: 0, tc: false })
    expect(b.dma.stats.grants).toBe(100)
  })

  it('auto-init reloads the current address and count at terminal count', () => {
    const b = bench()
    const m = fill(b.mem, 0x5000, 32)
    b.program(3, 0x5000, 32, DMA_MODE_WRITE | DMA_AUTOINIT)
    const got = new Uint8Array(32)
    for (let pass = 0; pass < 3; pass++) {
      expect(b.dma.readMemory(3, got)).toEqual({ bytes: 32, tc: true })
      expect(got).toEqual(m)
      expect(b.dma.channel(3)).toMatchObject({ curAddr: 0x5000, curCount: 31, masked: false })
    }
  })

  it('device -> memory (write transfer type), and the type must match the direction', () => {
    const b = bench()
    b.program(0, 0x7000, 8, DMA_MODE_READ)
    const data = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)
    expect(b.dma.writeMemory(0, data)).toEqual({ bytes: 8, tc: true })
    expect(b.mem.subarray(0x7000, 0x7008)).toEqual(data)
    b.program(0, 0x7000, 8, DMA_MODE_READ)
    expect(b.dma.readMemory(0, new Uint8Array(8)).bytes).toBe(0)
    expect(b.errors.at(-1)).toMatch(/transfer type 01/)
  })

  it('address decrement walks down', () => {
    const b = bench()
    fill(b.mem, 0x8000, 16)
    b.program(2, 0x800f, 16, DMA_MODE_WRITE | DMA_MODE_DECREMENT)
    const got = new Uint8Array(16)
    expect(b.dma.readMemory(2, got).tc).toBe(true)
    expect(got).toEqual(b.mem.slice(0x8000, 0x8010).reverse())
  })

  it('16-bit channels move words, address in words, and a 128 KiB page', () => {
    const b = bench()
    const m = fill(b.mem, 0x3_1000, 64)
    b.program(5, 0x3_1000, 64, DMA_MODE_WRITE)
    expect(b.dma.channel(5)).toMatchObject({ baseAddr: (0x3_1000 >> 1) & 0xffff, baseCount: 31, page: 3 })
    const got = new Uint8Array(64)
    expect(b.dma.readMemory(5, got)).toEqual({ bytes: 64, tc: true })
    expect(got).toEqual(m)
  })

  it('crossing a 64 KiB boundary wraps inside the page and is a guest error in strict mode', () => {
    const b = bench()
    fill(b.mem, 0x1_0000, 0x1_0000)
    const tail = fill(b.mem, 0x1_fff0, 16)
    b.program(1, 0x1_fff0, 32, DMA_MODE_WRITE)
    const got = new Uint8Array(32)
    expect(b.dma.readMemory(1, got).tc).toBe(true)
    expect(got.subarray(0, 16)).toEqual(tail)
    expect(got.subarray(16)).toEqual(b.mem.subarray(0x1_0000, 0x1_0010)) // not 0x2_0000
    expect(b.errors).toHaveLength(1)
    expect(b.errors[0]).toMatch(/crosses a 64 KiB boundary/)
    expect(b.dma.stats.wraps).toBe(1)
    const lax = bench({ strict: false })
    lax.program(1, 0x1_fff0, 32, DMA_MODE_WRITE)
    lax.dma.readMemory(1, got)
    expect(lax.errors).toEqual([])
  })

  it('a masked channel, a disabled controller or a masked cascade moves nothing', () => {
    const b = bench()
    b.program(1, 0x1000, 8, DMA_MODE_WRITE)
    b.out(0x0a, 4 | 1)
    expect(b.dma.readMemory(1, new Uint8Array(8)).bytes).toBe(0)
    b.out(0x0a, 1)
    b.out(0xd4, 4 | 0) // mask the cascade channel 4
    expect(b.dma.readMemory(1, new Uint8Array(8)).bytes).toBe(0)
    b.out(0xd4, 0)
    b.out(0x08, 0x04) // controller disable
    expect(b.dma.readMemory(1, new Uint8Array(8)).bytes).toBe(0)
    b.out(0x08, 0)
    expect(b.dma.readMemory(1, new Uint8Array(8)).bytes).toBe(8)
  })
})

describe('i8237 bus modes: bus time held per transfer (the CPU stall)', () => {
  const run = (mode: number, opts: I8237Options = {}) => {
    const b = bench({ cycleNs: 1000, holdNs: 250, ...opts })
    b.program(1, 0x1000, 256, mode)
    const got = new Uint8Array(256)
    for (let i = 0; i < 4; i++) b.dma.readMemory(1, got, 64)
    return b
  }
  it('single: (hold + cycle) per unit; demand: one hold per request; block: one hold to terminal count', () => {
    expect(run(DMA_MODE_WRITE).stalls.reduce((a, x) => a + x, 0)).toBe(256 * 1250)
    expect(run((DMA_MODE_WRITE & ~DMA_MODE_SINGLE) | DMA_MODE_DEMAND).stalls).toEqual([64250, 64250, 64250, 64250])
    const block = bench({ cycleNs: 1000, holdNs: 250 })
    block.program(1, 0x1000, 256, (DMA_MODE_WRITE & ~DMA_MODE_SINGLE) | DMA_MODE_BLOCK)
    expect(block.dma.readMemory(1, new Uint8Array(256))).toEqual({ bytes: 256, tc: true })
    expect(block.stalls).toEqual([256250])
  })
  it('block mode on a device that cannot take the whole block is a guest error (then only what it takes moves)', () => {
    const b = bench()
    b.program(1, 0x1000, 256, (DMA_MODE_WRITE & ~DMA_MODE_SINGLE) | DMA_MODE_BLOCK)
    expect(b.dma.readMemory(1, new Uint8Array(64))).toEqual({ bytes: 64, tc: false })
    expect(b.errors[0]).toMatch(/block mode would move 256 units .* takes only 64/)
  })
  it('transparent: no stall, and no transfer while the CPU is busy', () => {
    const b = bench({ transparent: true })
    b.program(1, 0x1000, 64, DMA_MODE_WRITE)
    expect(b.dma.readMemory(1, new Uint8Array(64)).bytes).toBe(0)
    b.idle.value = true
    expect(b.dma.readMemory(1, new Uint8Array(64)).bytes).toBe(64)
    expect(b.stalls).toEqual([])
  })
  it('cascade mode on a device channel is a guest error', () => {
    const b = bench()
    b.program(2, 0x1000, 64, DMA_MODE_CASCADE)
    expect(b.dma.readMemory(2, new Uint8Array(64)).bytes).toBe(0)
    expect(b.errors[0]).toMatch(/cascade/)
  })
})
