// The mini-NVMe controller's volatile write cache and durability: writes land in the cache, Flush,
// FUA, shutdown, disabling WCE and a full cache make them durable, and powerFail() loses the rest.
// The durable medium is the BlockBackend (a MemoryBackend, or a disk image file through
// host/disk-image.ts); the datasheet is docs/devices/nvme.md §10.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  MemoryBackend,
  NVME_ADMIN_SET_FEATURES,
  NVME_CC_ENABLE,
  NVME_CC_IOCQES,
  NVME_CC_IOSQES,
  NVME_CC_SHN_NORMAL,
  NVME_CMD_FLUSH,
  NVME_CMD_READ,
  NVME_CMD_WRITE,
  NVME_CMD_WRITE_ZEROES,
  NVME_CSTS_CFS,
  NVME_CSTS_RDY,
  NVME_CSTS_SHST_CMPLT,
  NVME_FEAT_VOLATILE_WC,
  NVME_REG_CC,
  NVME_REG_CSTS,
  NVME_SC_INTERNAL,
  NVME_SC_READ_ERROR,
  NVME_SC_WRITE_FAULT,
  type BlockBackend,
} from '../../devices/index.js'
import { DiskImageBackend } from '../../host/disk-image.js'
import { DATA, nvme, pattern, ramBytes, type NvmeHost } from './nvme-rig.js'

const CC_GOOD = NVME_CC_ENABLE | NVME_CC_IOSQES | NVME_CC_IOCQES

function io(opts: Parameters<typeof nvme>[0] = {}): NvmeHost {
  const h = nvme(opts)
  h.bringUp()
  expect(h.createPair(1).sq.status).toBe(0)
  return h
}

/** Writes `data` (a multiple of 512 bytes, at most 8 KiB) at LBA slba through DATA. */
function write(h: NvmeHost, slba: number, data: Uint8Array, fua = false): number {
  h.m.ram.write(DATA, data, 0, data.length)
  const blocks = data.length / 512
  return h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: DATA, prp2: data.length > 4096 ? DATA + 4096 : 0, cdw10: slba, cdw12: (blocks - 1) | (fua ? 1 << 30 : 0) }).status
}

function read(h: NvmeHost, slba: number, bytes: number): Uint8Array {
  const buf = DATA + 0x10000
  const st = h.cmd(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: buf, prp2: bytes > 4096 ? buf + 4096 : 0, cdw10: slba, cdw12: bytes / 512 - 1 }).status
  expect(st).toBe(0)
  return ramBytes(h.m, buf, bytes)
}

function durable(backend: BlockBackend, slba: number, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes)
  backend.read(slba * 512, out, 0, bytes)
  return out
}

const flush = (h: NvmeHost) => h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1 }).status

/** After a power failure: enable again and recreate queue pair 1. */
function powerBack(h: NvmeHost): void {
  h.bringUp()
  expect(h.createPair(1).sq.status).toBe(0)
}

describe('nvme: volatile write cache', () => {
  it('a write lands in the cache: reads see it, the backend does not; powerFail() loses it', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend })
    const data = pattern(4096, 1)
    expect(write(h, 8, data)).toBe(0)
    expect(read(h, 8, 4096)).toEqual(data)
    expect(durable(backend, 8, 4096)).toEqual(new Uint8Array(4096))
    expect(h.dev.cacheDirtyBytes).toBe(4096)
    expect(h.dev.powerFail()).toBe(4096)
    expect(h.r(NVME_REG_CSTS)).toBe(0) // as at power-on: not ready, no queues
    expect(h.dev.queueCount).toEqual({ sqs: 0, cqs: 0 })
    expect(h.r(NVME_REG_CC)).toBe(0)
    powerBack(h)
    expect(read(h, 8, 4096)).toEqual(new Uint8Array(4096)) // gone
    expect(h.dev.stats).toMatchObject({ lostBytes: 4096, powerFails: 1, durableWrites: 0 })
  })

  it('Flush makes everything durable: nothing is lost afterwards', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend })
    const a = pattern(4096, 2)
    const b = pattern(1024, 3)
    write(h, 0, a)
    write(h, 100, b)
    expect(flush(h)).toBe(0)
    expect(h.dev.cacheDirtyBytes).toBe(0)
    expect(durable(backend, 0, 4096)).toEqual(a)
    expect(durable(backend, 100, 1024)).toEqual(b)
    expect(h.dev.stats).toMatchObject({ durableBytes: 5120 })
    expect(h.dev.powerFail()).toBe(0)
    powerBack(h)
    expect(read(h, 0, 4096)).toEqual(a)
    expect(read(h, 100, 1024)).toEqual(b)
  })

  it('FUA writes through before completing; it supersedes the cached copy of those blocks only', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend })
    const a = pattern(4096, 4)
    const b = pattern(2048, 5)
    write(h, 0, a) // cached, LBAs 0..7
    expect(write(h, 4, b, true)).toBe(0) // FUA, LBAs 4..7
    expect(durable(backend, 4, 2048)).toEqual(b)
    expect(h.dev.cacheDirtyBytes).toBe(2048) // LBAs 0..3 still only in the cache
    const both = a.slice()
    both.set(b, 2048)
    expect(read(h, 0, 4096)).toEqual(both)
    h.dev.powerFail()
    powerBack(h)
    const after = new Uint8Array(4096)
    after.set(b, 2048)
    expect(read(h, 0, 4096)).toEqual(after)
  })

  it('a partly dirty 4 KiB line: reads take dirty blocks from the cache and the others from the medium', () => {
    const backend = new MemoryBackend(1 << 20)
    const old = pattern(4096, 6)
    backend.write(0, old, 0, 4096)
    const h = io({ backend })
    const b = pattern(512, 7)
    write(h, 1, b)
    write(h, 6, b)
    const want = old.slice()
    want.set(b, 512)
    want.set(b, 3072)
    expect(read(h, 0, 4096)).toEqual(want)
    expect(h.dev.cacheDirtyBytes).toBe(1024)
    h.dev.powerFail()
    powerBack(h)
    expect(read(h, 0, 4096)).toEqual(old)
  })

  it('clearing WCE writes the cache back first; with WCE = 0 writes are durable when they complete', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend })
    const a = pattern(4096, 8)
    write(h, 0, a)
    expect(h.admin({ opcode: NVME_ADMIN_SET_FEATURES, cdw10: NVME_FEAT_VOLATILE_WC, cdw11: 0 }).status).toBe(0)
    expect(durable(backend, 0, 4096)).toEqual(a)
    const b = pattern(4096, 9)
    write(h, 8, b)
    expect(durable(backend, 8, 4096)).toEqual(b)
    expect(h.dev.cacheDirtyBytes).toBe(0)
    expect(h.dev.powerFail()).toBe(0)
  })

  it('a controller without a write cache (volatileWriteCache: false) writes through', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend, volatileWriteCache: false })
    const a = pattern(4096, 10)
    write(h, 0, a)
    expect(durable(backend, 0, 4096)).toEqual(a)
    expect(h.dev.writeCacheEnabled).toBe(false)
  })

  it('Write Zeroes goes through the cache too (FUA: straight to the medium)', () => {
    const backend = new MemoryBackend(1 << 20)
    const ones = new Uint8Array(8192).fill(0xff)
    backend.write(0, ones, 0, 8192)
    const h = io({ backend })
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE_ZEROES, nsid: 1, cdw10: 0, cdw12: 7 }).status).toBe(0)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE_ZEROES, nsid: 1, cdw10: 8, cdw12: 7 | (1 << 30) }).status).toBe(0)
    expect(read(h, 0, 8192)).toEqual(new Uint8Array(8192))
    expect(durable(backend, 0, 4096)).toEqual(ones.subarray(0, 4096)) // still cached
    expect(durable(backend, 8, 4096)).toEqual(new Uint8Array(4096)) // FUA
    h.dev.powerFail()
    powerBack(h)
    expect(read(h, 0, 4096)).toEqual(ones.subarray(0, 4096))
  })

  it('a full cache writes its oldest lines back (they survive a power failure)', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend, cacheBytes: 8192 })
    const pages = [0, 1, 2, 3].map((i) => pattern(4096, 20 + i))
    pages.forEach((p, i) => write(h, i * 8, p))
    expect(h.dev.cacheDirtyBytes).toBe(8192)
    expect(h.dev.stats.cacheEvictions).toBe(2)
    expect(durable(backend, 0, 4096)).toEqual(pages[0])
    expect(durable(backend, 8, 4096)).toEqual(pages[1])
    expect(durable(backend, 16, 4096)).toEqual(new Uint8Array(4096))
    h.dev.powerFail()
    powerBack(h)
    expect(read(h, 8, 4096)).toEqual(pages[1])
    expect(read(h, 24, 4096)).toEqual(new Uint8Array(4096))
  })

  it('a Flush takes the write-back time: dirty bytes / bytesPerNs', () => {
    const h = io({ bytesPerNs: 1, commandLatencyNs: 1000 })
    write(h, 0, pattern(4096))
    write(h, 8, pattern(4096, 2))
    const t0 = h.m.clock.now
    h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1 })
    h.ring(1)
    h.run()
    expect(h.m.clock.now - t0).toBe(1000 + 8192)
    expect(h.reap(1)).toHaveLength(1)
  })

  it('a shutdown writes the cache back; SHST completes after shutdownDelayNs plus the write-back', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend, bytesPerNs: 1, shutdownDelayNs: 1000 })
    const a = pattern(4096, 30)
    write(h, 0, a)
    const t0 = h.m.clock.now
    h.w(NVME_REG_CC, CC_GOOD | NVME_CC_SHN_NORMAL)
    expect(durable(backend, 0, 4096)).toEqual(a)
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY | NVME_CSTS_SHST_CMPLT)
    expect(h.m.clock.now - t0).toBe(1000 + 4096)
    expect(h.dev.powerFail()).toBe(0)
  })

  it('a controller reset (CC.EN = 0) and a function-level reset keep the cache: it is not a power failure', () => {
    const backend = new MemoryBackend(1 << 20)
    const h = io({ backend })
    const a = pattern(4096, 40)
    write(h, 0, a)
    h.w(NVME_REG_CC, 0)
    h.run()
    powerBack(h)
    expect(read(h, 0, 4096)).toEqual(a)
    h.dev.reset() // FLR: PCI state too
    expect(h.r(NVME_REG_CSTS)).toBe(0xffff_ffff) // memory decoding is off after the FLR
    h.dev.configWrite(0x04, 2, 0x6)
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    powerBack(h)
    expect(read(h, 0, 4096)).toEqual(a)
    expect(h.dev.cacheDirtyBytes).toBe(4096)
    expect(durable(backend, 0, 4096)).toEqual(new Uint8Array(4096))
  })

  it('uses any BlockBackend: only Flush / FUA / write-back reach it', () => {
    const log: string[] = []
    const mem = new MemoryBackend(1 << 20)
    const backend: BlockBackend = {
      size: 1 << 20,
      read: (off, dst, dstOff, len) => mem.read(off, dst, dstOff, len),
      write: (off, src, srcOff, len) => {
        log.push(`${off}+${len}`)
        mem.write(off, src, srcOff, len)
      },
    }
    const h = io({ backend })
    expect(h.dev.config.sizeBytes).toBe(1 << 20)
    write(h, 0, pattern(4096))
    write(h, 16, pattern(1024))
    expect(log).toEqual([])
    flush(h)
    expect(log).toEqual(['0+4096', '8192+1024'])
    write(h, 32, pattern(512), true)
    expect(log).toEqual(['0+4096', '8192+1024', '16384+512'])
  })

  it('a backend that fails (a host I/O error): READ_ERROR, WRITE_FAULT, a failed Flush keeps the data dirty; not guest errors; never a crash', () => {
    const mem = new MemoryBackend(1 << 20)
    let failing = false
    const backend: BlockBackend = {
      size: 1 << 20,
      read: (off, dst, dstOff, len) => {
        if (failing) throw new Error('EIO reading the image')
        mem.read(off, dst, dstOff, len)
      },
      write: (off, src, srcOff, len) => {
        if (failing) throw new Error('EIO writing the image')
        mem.write(off, src, srcOff, len)
      },
    }
    const h = io({ backend })
    write(h, 0, pattern(4096, 50))
    failing = true
    h.m.ram.write(DATA, pattern(4096, 51), 0, 4096)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE, nsid: 1, prp1: DATA, cdw10: 8, cdw12: 7 | (1 << 30) }).status).toBe(NVME_SC_WRITE_FAULT)
    expect(h.cmd(1, { opcode: NVME_CMD_READ, nsid: 1, prp1: DATA, cdw10: 0, cdw12: 7 }).status).toBe(NVME_SC_READ_ERROR)
    expect(flush(h)).toBe(NVME_SC_INTERNAL)
    expect(h.dev.cacheDirtyBytes).toBe(4096)
    expect(h.errors).toEqual([])
    failing = false
    expect(flush(h)).toBe(0)
    expect(durable(backend, 0, 4096)).toEqual(pattern(4096, 50))
    // A shutdown whose write-back fails is fatal.
    write(h, 0, pattern(4096, 52))
    failing = true
    h.w(NVME_REG_CC, CC_GOOD | NVME_CC_SHN_NORMAL)
    expect(h.r(NVME_REG_CSTS) & NVME_CSTS_CFS).toBe(NVME_CSTS_CFS)
    expect(h.dev.lastFatal).toBe('shutdown: writing the cache back failed: EIO writing the image')
  })

  it('a disk image file as the medium: flushed data is in the file and survives a new controller; unflushed data never reaches it; a read-only image faults writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dmalab-nvme-'))
    try {
      const path = join(dir, 'disk.img')
      const img = DiskImageBackend.create(path, 1 << 20)
      const h = io({ backend: img })
      const a = pattern(4096, 60)
      const b = pattern(4096, 61)
      write(h, 0, a)
      expect(flush(h)).toBe(0)
      write(h, 8, b) // never flushed
      expect(durable(img, 8, 4096)).toEqual(new Uint8Array(4096))
      h.dev.powerFail()
      img.close()
      const again = DiskImageBackend.open(path)
      const h2 = io({ backend: again })
      expect(read(h2, 0, 4096)).toEqual(a)
      expect(read(h2, 8, 4096)).toEqual(new Uint8Array(4096))
      again.close()
      const ro = DiskImageBackend.open(path, { readOnly: true })
      const h3 = io({ backend: ro })
      expect(read(h3, 0, 4096)).toEqual(a)
      expect(write(h3, 16, b, true)).toBe(NVME_SC_WRITE_FAULT)
      expect(h3.errors).toEqual([])
      ro.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
