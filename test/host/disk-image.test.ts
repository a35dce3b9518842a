// host/disk-image.ts: a raw disk image file as a BlockBackend — round trips, sparse creation,
// clear errors for bad files and bad ranges, and the same behaviour as MemoryBackend under a
// block device (the null_blk fixture) and under a random sequence of reads and writes.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BlockBackendError, MemoryBackend, type BlockBackend } from '../../devices/block/backend.js'
import { DiskImageBackend } from '../../host/disk-image.js'
import { blockUser, boot } from '../../kernel/index.js'
import { nullBlkAdd, nullBlkDel } from '../fixtures/null-blk.js'

const dir = mkdtempSync(join(tmpdir(), 'dmalab-img-'))
afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})
const file = (name: string): string => join(dir, name)

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff
  return out
}

describe('DiskImageBackend', () => {
  it('round-trips data, which persists in the file and across a reopen', () => {
    const img = DiskImageBackend.create(file('rt.img'), 1 << 20)
    expect(img.size).toBe(1 << 20)
    img.write(4096, bytes(8192, 1), 0, 8192)
    img.write(1000, bytes(100, 2), 50, 50)
    const out = new Uint8Array(8192)
    img.read(4096, out, 0, 8192)
    expect(out).toEqual(bytes(8192, 1))
    const mid = new Uint8Array(60).fill(9)
    img.read(995, mid, 5, 55)
    expect(mid.subarray(0, 5)).toEqual(new Uint8Array(5).fill(9))
    expect(mid.subarray(5, 10)).toEqual(new Uint8Array(5))
    expect(mid.subarray(10)).toEqual(bytes(100, 2).subarray(50))
    img.sync()
    img.close()
    expect(img.closed).toBe(true)
    img.close()
    const raw = readFileSync(file('rt.img'))
    expect(raw.length).toBe(1 << 20)
    expect(new Uint8Array(raw.subarray(4096, 4096 + 8192))).toEqual(bytes(8192, 1))
    const again = DiskImageBackend.open(file('rt.img'))
    const back = new Uint8Array(8192)
    again.read(4096, back, 0, 8192)
    expect(back).toEqual(bytes(8192, 1))
    again.close()
  })

  it('creates sparse images: unwritten areas take no space and read as zeros', () => {
    const img = DiskImageBackend.create(file('sparse.img'), 256 << 20)
    img.write(128 << 20, bytes(4096, 3), 0, 4096)
    img.close()
    const st = statSync(file('sparse.img'))
    expect(st.size).toBe(256 << 20)
    expect(st.blocks * 512).toBeLessThan(4 << 20)
    const ro = DiskImageBackend.open(file('sparse.img'), { readOnly: true })
    const z = new Uint8Array(4096).fill(1)
    ro.read(1 << 20, z, 0, 4096)
    expect(z).toEqual(new Uint8Array(4096))
    ro.close()
  })

  it('refuses bad files with an error naming them', () => {
    writeFileSync(file('odd.img'), new Uint8Array(1000))
    writeFileSync(file('empty.img'), new Uint8Array(0))
    mkdirSync(file('adir.img'))
    expect(() => DiskImageBackend.open(file('odd.img'))).toThrow(BlockBackendError)
    expect(() => DiskImageBackend.open(file('odd.img'))).toThrow(/odd\.img: the disk image's size, 1000 bytes, is not a multiple of 512/)
    expect(() => DiskImageBackend.open(file('empty.img'))).toThrow(/empty\.img: the disk image is empty/)
    expect(() => DiskImageBackend.open(file('missing.img'))).toThrow(/missing\.img: cannot open the disk image \(ENOENT/)
    expect(() => DiskImageBackend.open(file('adir.img'))).toThrow(/adir\.img/)
    DiskImageBackend.create(file('exists.img'), 4096).close()
    expect(() => DiskImageBackend.create(file('exists.img'), 4096)).toThrow(/exists\.img: the file exists/)
    DiskImageBackend.create(file('exists.img'), 8192, { overwrite: true }).close()
    expect(statSync(file('exists.img')).size).toBe(8192)
    expect(() => DiskImageBackend.create(file('bad.img'), 1000)).toThrow(/size must be a positive multiple of 512 bytes, got 1000 \(for .*bad\.img\)/)
    expect(() => DiskImageBackend.create(file('bad.img'), -512)).toThrow(BlockBackendError)
    expect(() => DiskImageBackend.create('', 512)).toThrow(/path must be a file name/)
  })

  it('refuses ranges outside the medium or the buffer, a closed image, writes to a read-only one', () => {
    const img = DiskImageBackend.create(file('range.img'), 8192)
    const buf = new Uint8Array(4096)
    expect(() => img.read(8192 - 100, buf, 0, 200)).toThrow(/range 8092\+200 is outside the 8192-byte medium/)
    expect(() => img.write(-1, buf, 0, 1)).toThrow(BlockBackendError)
    expect(() => img.read(0, buf, 4000, 200)).toThrow(/buffer range 4000\+200 is outside the 4096-byte buffer/)
    expect(() => img.read(0.5, buf, 0, 1)).toThrow(BlockBackendError)
    expect(() => img.write(0, [1, 2] as unknown as Uint8Array, 0, 2)).toThrow(/must be a Uint8Array/)
    img.close()
    expect(() => img.read(0, buf, 0, 1)).toThrow(/range\.img is closed/)
    const ro = DiskImageBackend.open(file('range.img'), { readOnly: true })
    expect(() => ro.write(0, buf, 0, 1)).toThrow(/open read-only/)
    ro.close()
  })

  it('behaves as MemoryBackend under a random sequence of reads and writes', () => {
    const size = 1 << 18
    const img = DiskImageBackend.create(file('same.img'), size)
    const mem = new MemoryBackend(size)
    let x = 12345
    const rnd = (n: number) => {
      x = (x * 1103515245 + 12345) >>> 0
      return x % n
    }
    for (let i = 0; i < 300; i++) {
      const len = 1 + rnd(20000)
      const off = rnd(size - len)
      if (rnd(2) === 0) {
        const b = bytes(len, i)
        img.write(off, b, 0, len)
        mem.write(off, b, 0, len)
      } else {
        const a = new Uint8Array(len)
        const m = new Uint8Array(len)
        img.read(off, a, 0, len)
        mem.read(off, m, 0, len)
        expect(a).toEqual(m)
      }
    }
    img.close()
  })

  it('is the medium of a block device: what the harness writes is in the image file', async () => {
    const path = file('nullb.img')
    const img: BlockBackend = DiskImageBackend.create(path, 4 << 20)
    const sys = boot({ log: 'silent' })
    const nb = await nullBlkAdd(sys, { name: 'nullb0', sizeBytes: 4 << 20, backend: img, blocksize: 4096, cache: true })
    const blk = blockUser(sys)
    await blk.write('nullb0', 10, bytes(8192, 4))
    await blk.flush('nullb0')
    expect(await blk.read('nullb0', 10, 2)).toEqual(bytes(8192, 4))
    await nullBlkDel(sys, nb)
    img.close?.()
    expect(new Uint8Array(readFileSync(path).subarray(40960, 40960 + 8192))).toEqual(bytes(8192, 4))
    // The image opened again behind a new disk holds the data.
    const sys2 = boot({ log: 'silent' })
    const img2 = DiskImageBackend.open(path)
    await nullBlkAdd(sys2, { name: 'nullb0', sizeBytes: img2.size, backend: img2, blocksize: 4096 })
    expect(await blockUser(sys2).read('nullb0', 10, 2)).toEqual(bytes(8192, 4))
    img2.close()
    expect(sys.reports).toEqual([])
  })
})
