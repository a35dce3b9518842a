// The mini-NVMe controller at the hardware level, part 2: the NVM command set (Read, Write,
// Flush, Write Zeroes), PRPs and PRP lists with every rule the controller enforces, MDTS and LBA
// range, and the queues themselves — phase tags across wraps, the two-step CQE write, a full CQ,
// the doorbell stride, CID conflicts and doorbell mistakes. The datasheet is docs/devices/nvme.md.
import { describe, expect, it } from 'vitest'
import {
  NVME_ADMIN_DELETE_SQ,
  NVME_CMD_FLUSH,
  NVME_CMD_READ,
  NVME_CMD_WRITE,
  NVME_CMD_WRITE_ZEROES,
  NVME_REG_DBS,
  NVME_SC_ABORT_QUEUE,
  NVME_SC_CMDID_CONFLICT,
  NVME_SC_DNR,
  NVME_SC_INVALID_FIELD,
  NVME_SC_INVALID_NS,
  NVME_SC_INVALID_OPCODE,
  NVME_SC_LBA_RANGE,
  NVME_SC_PRP_INVALID_OFFSET,
  type Machine,
} from '../../devices/index.js'
import { DATA, IOQ, LISTS, nvme, pattern, ramBytes, readCqe, writePrpList, type NvmeHost } from './nvme-rig.js'

const DNR = NVME_SC_DNR
const PAGE = 4096

/** Host with I/O queue pair 1 (16 entries unless told). */
function io(opts: Parameters<typeof nvme>[0] = {}, size = 16): NvmeHost {
  const h = nvme(opts)
  h.bringUp()
  const { sq, cq } = h.createPair(1, size)
  expect([sq.status, cq.status]).toEqual([0, 0])
  return h
}

const rw = (opcode: number, slba: number, blocks: number, prp1: number, prp2 = 0, extra: { fua?: boolean; nsid?: number } = {}) => ({
  opcode,
  nsid: extra.nsid ?? 1,
  prp1,
  prp2,
  cdw10: slba % 2 ** 32,
  cdw11: Math.floor(slba / 2 ** 32),
  cdw12: ((blocks - 1) | (extra.fua === true ? 1 << 30 : 0)) >>> 0,
})

/** Writes `data` at LBA slba through a PRP list built from `pages` (first may have an offset). */
function gather(m: Machine, data: Uint8Array, pieces: readonly { addr: number; len: number }[]): void {
  let off = 0
  for (const p of pieces) {
    m.ram.write(p.addr, data, off, p.len)
    off += p.len
  }
}
function scatter(m: Machine, pieces: readonly { addr: number; len: number }[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.len, 0))
  let off = 0
  for (const p of pieces) {
    out.set(ramBytes(m, p.addr, p.len), off)
    off += p.len
  }
  return out
}

describe('nvme: Read and Write', () => {
  it('PRP1 only: a 4 KiB write and read back; a 512-byte block at an offset inside a page', () => {
    const h = io()
    const data = pattern(4096, 3)
    h.m.ram.write(DATA, data, 0, 4096)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 100, 8, DATA)).status).toBe(0)
    h.m.ram.fill(DATA + 0x10000, 0, 8192)
    expect(h.cmd(1, rw(NVME_CMD_READ, 100, 8, DATA + 0x10000)).status).toBe(0)
    expect(ramBytes(h.m, DATA + 0x10000, 4096)).toEqual(data)
    // One block at an offset: LBA 101 is bytes 512..1023 of what was written.
    expect(h.cmd(1, rw(NVME_CMD_READ, 101, 1, DATA + 0x20200)).status).toBe(0)
    expect(ramBytes(h.m, DATA + 0x20200, 512)).toEqual(data.subarray(512, 1024))
    expect(ramBytes(h.m, DATA + 0x20400, 4)).toEqual(new Uint8Array(4)) // not a byte beyond
    expect(h.dev.stats).toMatchObject({ reads: 2, writes: 1, bytesRead: 4608, bytesWritten: 4096, errors: 0 })
    expect(h.errors).toEqual([])
  })

  it('PRP1 + PRP2: PRP1 with an offset covers the rest of its page, PRP2 the second page', () => {
    const h = io()
    const data = pattern(4096, 5)
    const pieces = [{ addr: DATA + 0xc00, len: 0x400 }, { addr: DATA + 0x5000, len: 0xc00 }]
    gather(h.m, data, pieces)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 8, 8, DATA + 0xc00, DATA + 0x5000)).status).toBe(0)
    const back = [{ addr: DATA + 0x9000, len: 4096 }, { addr: DATA + 0xb000, len: 4096 }]
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 16, DATA + 0x9000, DATA + 0xb000)).status).toBe(0)
    expect(scatter(h.m, back).subarray(4096)).toEqual(data)
    expect(scatter(h.m, back).subarray(0, 4096)).toEqual(new Uint8Array(4096)) // never written: zeroes
  })

  it('a PRP list: PRP2 points to page addresses, a physically contiguous buffer moves in one DMA per direction', () => {
    const h = io()
    const data = pattern(16384, 7)
    h.m.ram.write(DATA, data, 0, 16384)
    writePrpList(h.m, LISTS, [DATA + 0x1000, DATA + 0x2000, DATA + 0x3000])
    const writes: number[] = []
    h.m.tracer.on('dma', (e) => (e.len >= 4096 ? writes.push(e.len) : undefined))
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 64, 32, DATA, LISTS)).status).toBe(0)
    expect(writes).toEqual([16384]) // the pages merged into one segment
    const pages = [DATA + 0x30000, DATA + 0x20000, DATA + 0x27000, DATA + 0x31000]
    writePrpList(h.m, LISTS + 0x1000, pages.slice(1))
    expect(h.cmd(1, rw(NVME_CMD_READ, 64, 32, pages[0]!, LISTS + 0x1000)).status).toBe(0)
    expect(scatter(h.m, pages.map((addr) => ({ addr, len: PAGE })))).toEqual(data)
  })

  it('a PRP list that starts inside its page chains through its last entry to the next list page', () => {
    const h = io()
    const n = 10 // pages: PRP1 + 9 list entries
    const data = pattern(n * PAGE, 9)
    const pages = Array.from({ length: n }, (_, i) => DATA + 0x40000 + i * 2 * PAGE) // not contiguous
    gather(h.m, data, pages.map((addr) => ({ addr, len: PAGE })))
    // The first list page has room for 4 entries (it starts 32 bytes before the page end): 3 data pages and the chain pointer.
    const list1 = LISTS + PAGE - 32
    const list2 = LISTS + 0x3000
    writePrpList(h.m, list1, [pages[1]!, pages[2]!, pages[3]!, list2])
    writePrpList(h.m, list2, pages.slice(4))
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 1000, n * 8, pages[0]!, list1)).status).toBe(0)
    h.m.ram.fill(DATA + 0x100000, 0, n * PAGE)
    expect(h.cmd(1, rw(NVME_CMD_READ, 1000, n * 8, DATA + 0x100000)).status).toBe(NVME_SC_INVALID_FIELD | DNR) // no PRP2
    writePrpList(h.m, LISTS + 0x5000, Array.from({ length: n - 1 }, (_, i) => DATA + 0x101000 + i * PAGE))
    expect(h.cmd(1, rw(NVME_CMD_READ, 1000, n * 8, DATA + 0x100000, LISTS + 0x5000)).status).toBe(0)
    expect(ramBytes(h.m, DATA + 0x100000, n * PAGE)).toEqual(data)
  })

  it('a transfer longer than a list page chains at entry 511 (Linux nvme_pci_setup_prps), up to MDTS', () => {
    const h = io({ mdts: 10, sizeBytes: 16 << 20 })
    const n = 600
    const data = pattern(n * PAGE, 11)
    h.m.ram.write(DATA, data, 0, data.length)
    const entries = Array.from({ length: n - 1 }, (_, i) => DATA + (i + 1) * PAGE)
    writePrpList(h.m, LISTS, [...entries.slice(0, 511), LISTS + 0x1000])
    writePrpList(h.m, LISTS + 0x1000, entries.slice(511))
    const listReads: number[] = []
    h.m.tracer.on('dma', (e) => (e.bus >= LISTS && e.bus < LISTS + 0x2000 ? listReads.push(e.len) : undefined))
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 0, n * 8, DATA, LISTS)).status).toBe(0)
    expect(listReads).toEqual([4096, 88 * 8]) // a full list page, then only the 88 entries still needed
    h.m.ram.fill(DATA, 0, data.length)
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, n * 8, DATA, LISTS)).status).toBe(0)
    expect(ramBytes(h.m, DATA, data.length)).toEqual(data)
  })

  it('Write Zeroes zeroes the range without a data pointer; Flush with NSID 1 or FFFFFFFFh', () => {
    const h = io()
    h.m.ram.write(DATA, pattern(8192), 0, 8192)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 0, 16, DATA, DATA + PAGE)).status).toBe(0)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE_ZEROES, nsid: 1, cdw10: 4, cdw12: 3 }).status).toBe(0)
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 16, DATA + 0x10000, DATA + 0x11000)).status).toBe(0)
    const got = ramBytes(h.m, DATA + 0x10000, 8192)
    const want = pattern(8192)
    want.fill(0, 4 * 512, 8 * 512)
    expect(got).toEqual(want)
    expect(h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1 }).status).toBe(0)
    expect(h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 0xffff_ffff }).status).toBe(0)
    expect(h.dev.stats).toMatchObject({ writeZeroes: 1, flushes: 2 })
  })

  it('4 KiB logical blocks: NLB counts 4 KiB blocks', () => {
    const h = io({ lbaSize: 4096, sizeBytes: 1 << 20 })
    const data = pattern(8192, 2)
    h.m.ram.write(DATA, data, 0, 8192)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 255, 1, DATA)).status).toBe(0) // the last block
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 255, 2, DATA, DATA + PAGE)).status).toBe(NVME_SC_LBA_RANGE | DNR)
    expect(h.cmd(1, rw(NVME_CMD_READ, 255, 1, DATA + 0x8000)).status).toBe(0)
    expect(ramBytes(h.m, DATA + 0x8000, 4096)).toEqual(data.subarray(0, 4096))
  })
})

describe('nvme: command checks (status and DNR)', () => {
  it('MDTS: a transfer above 2^MDTS pages is INVALID_FIELD|DNR, exactly MDTS is fine (checked before the LBA range)', () => {
    const h = io({ mdts: 2 }) // 16 KiB
    writePrpList(h.m, LISTS, [DATA + 0x1000, DATA + 0x2000, DATA + 0x3000, DATA + 0x4000])
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 32, DATA, LISTS)).status).toBe(0)
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 33, DATA, LISTS)).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(h.cmd(1, rw(NVME_CMD_READ, 2 ** 40, 33, DATA, LISTS)).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(h.errors.map((e) => e.message)).toEqual([
      'SQ 1 I/O Read (opcode 0x2) (CID 4) failed with INVALID_FIELD|DNR: Read of 33 blocks (16896 bytes) exceeds MDTS (16384 bytes)',
      'SQ 1 I/O Read (opcode 0x2) (CID 5) failed with INVALID_FIELD|DNR: Read of 33 blocks (16896 bytes) exceeds MDTS (16384 bytes)',
    ])
  })

  it('LBA range: SLBA + NLB beyond NSZE is LBA_RANGE|DNR (64-bit SLBA included); nothing is transferred', () => {
    const h = io({ sizeBytes: 1 << 20 }) // 2048 blocks
    h.m.ram.fill(DATA, 0xaa, 4096)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 2047, 1, DATA)).status).toBe(0)
    expect(h.cmd(1, rw(NVME_CMD_WRITE, 2047, 2, DATA)).status).toBe(NVME_SC_LBA_RANGE | DNR)
    expect(h.cmd(1, rw(NVME_CMD_READ, 2 ** 32, 1, DATA)).status).toBe(NVME_SC_LBA_RANGE | DNR)
    expect(h.cmd(1, { opcode: NVME_CMD_WRITE_ZEROES, nsid: 1, cdw10: 2040, cdw12: 8 }).status).toBe(NVME_SC_LBA_RANGE | DNR)
    expect(h.dev.stats.bytesWritten).toBe(512)
    expect(h.errors[0]!.message).toBe('SQ 1 I/O Write (opcode 0x1) (CID 4) failed with LBA_RANGE|DNR: Write of LBAs 2047..2048 is beyond the namespace (2048 blocks)')
  })

  it('NSID other than 1 is INVALID_NS|DNR; unknown I/O opcodes INVALID_OPCODE|DNR; SGL INVALID_FIELD|DNR', () => {
    const h = io()
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 1, DATA, 0, { nsid: 2 })).status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(h.cmd(1, rw(NVME_CMD_READ, 0, 1, DATA, 0, { nsid: 0 })).status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 3 }).status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(h.cmd(1, { opcode: 0x09, nsid: 1 }).status).toBe(NVME_SC_INVALID_OPCODE | DNR) // DSM: not supported
    expect(h.cmd(1, { ...rw(NVME_CMD_READ, 0, 1, DATA), flags: 0x80 }).status).toBe(NVME_SC_INVALID_FIELD | DNR)
  })
})

describe('nvme: PRP rules (QEMU nvme_map_prp)', () => {
  interface Case {
    name: string
    setup?: (h: NvmeHost) => void
    cmd: ReturnType<typeof rw>
    status: number
    message: string
    lenient?: number
  }
  const cases: Case[] = [
    {
      name: 'PRP1 is 0',
      cmd: rw(NVME_CMD_READ, 0, 8, 0),
      status: NVME_SC_INVALID_FIELD | DNR,
      message: 'PRP1 is 0',
    },
    {
      name: 'PRP1 not dword aligned (the specification; QEMU accepts it)',
      cmd: rw(NVME_CMD_READ, 0, 1, DATA + 2),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP1 0x41000002 is not dword aligned',
      lenient: 0,
    },
    {
      name: 'the second page (PRP2) not page aligned',
      cmd: rw(NVME_CMD_READ, 0, 16, DATA, DATA + 0x1200),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP2 0x41001200 (the second data page) is not page aligned',
    },
    {
      name: 'PRP2 missing for a second page',
      cmd: rw(NVME_CMD_READ, 0, 9, DATA + 0xe00),
      status: NVME_SC_INVALID_FIELD | DNR,
      message: "PRP2 is 0 but 4096 bytes remain after PRP1's page",
    },
    {
      name: 'a list entry not page aligned',
      setup: (h) => writePrpList(h.m, LISTS, [DATA + 0x1000, DATA + 0x2010]),
      cmd: rw(NVME_CMD_READ, 0, 24, DATA, LISTS),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP list entry 1 at 0x40800008: 0x41002010 is not page aligned',
    },
    {
      name: 'a list entry of 0',
      setup: (h) => writePrpList(h.m, LISTS, [DATA + 0x1000, 0]),
      cmd: rw(NVME_CMD_READ, 0, 24, DATA, LISTS),
      status: NVME_SC_INVALID_FIELD | DNR,
      message: 'PRP list entry 1 at 0x40800008 is 0',
    },
    {
      name: 'the list pointer not qword aligned (the specification; QEMU reads it anyway)',
      setup: (h) => writePrpList(h.m, LISTS, [DATA + 0x1000, DATA + 0x2000]),
      cmd: rw(NVME_CMD_READ, 0, 24, DATA, LISTS + 4),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP2 0x40800004 (the PRP list pointer) is not qword aligned',
      lenient: NVME_SC_INVALID_FIELD | DNR, // read 4 bytes off, the second "entry" is 0
    },
    {
      name: 'a chain pointer not page aligned',
      setup: (h) => writePrpList(h.m, LISTS + PAGE - 16, [DATA + 0x1000, LISTS + 0x2008]),
      cmd: rw(NVME_CMD_READ, 0, 32, DATA, LISTS + PAGE - 16),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP list entry 1 at 0x40800ff8 (the pointer to the next list page) 0x40802008 is not page aligned',
    },
    {
      name: 'a list that crosses its page without chaining (the next data page is taken as the next list)',
      setup: (h) => {
        writePrpList(h.m, LISTS + PAGE - 16, [DATA + 0x1000, DATA + 0x2000])
        h.m.ram.write(DATA + 0x2000, pattern(4096), 0, 4096) // "entries" that are data
      },
      cmd: rw(NVME_CMD_READ, 0, 32, DATA, LISTS + PAGE - 16),
      status: NVME_SC_PRP_INVALID_OFFSET | DNR,
      message: 'PRP list entry 0 at 0x41002000: 0x3e373029221b140d is not page aligned',
    },
  ]
  for (const c of cases) {
    it(`${c.name}: ${c.status.toString(16)}h, reported in strict mode; lenient mode returns ${(c.lenient ?? c.status).toString(16)}h silently`, () => {
      for (const strict of [true, false]) {
        const h = io({ strict })
        c.setup?.(h)
        h.m.ram.fill(DATA + 0x100000, 0, 4)
        const got = h.cmd(1, c.cmd)
        expect(got.status).toBe(strict ? c.status : (c.lenient ?? c.status))
        if (strict) {
          expect(h.errors).toHaveLength(1)
          expect(h.errors[0]!.message).toContain(`: ${c.message}`)
        } else expect(h.errors).toEqual([])
      }
    })
  }

  it('a PRP list that cannot be read is DATA_XFER_ERROR (no DNR), not a guest error: the bus reported it', () => {
    const h = io({}, 16)
    const c = h.cmd(1, rw(NVME_CMD_READ, 0, 24, DATA, 0x10_0000_0000)) // no RAM there
    expect(c.status).toBe(0x04)
    expect(h.errors).toEqual([])
    expect(h.dev.stats.dmaErrors).toBe(1)
  })
})

describe('nvme: queues', () => {
  it('the phase tag starts at 1 and flips each time the CQ tail wraps; SQ head and SQ ID come back in every entry', () => {
    const h = io({}, 4)
    const phases: number[] = []
    const heads: number[] = []
    const cq = h.dev.queue('cq', 1)!
    for (let i = 0; i < 10; i++) {
      const c = h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: 100 + i })
      expect(c).toMatchObject({ status: 0, sqid: 1, cid: 100 + i })
      phases.push(c.phase)
      heads.push(c.sqhd)
    }
    expect(phases).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 1, 1])
    expect(heads).toEqual([1, 2, 3, 0, 1, 2, 3, 0, 1, 2])
    // Memory holds the last lap: slots 0 and 1 with phase 1, slots 2 and 3 still phase 0 from the lap before.
    expect([0, 1, 2, 3].map((i) => readCqe(h.m, cq.base + 16 * i).phase)).toEqual([1, 1, 0, 0])
    expect(h.dev.queue('cq', 1)).toMatchObject({ head: 2, tail: 2, phase: 1 })
  })

  it('each CQE is two DMA writes: DW0..CID first, then the status word with the phase tag', () => {
    const h = io()
    const cqBase = h.dev.queue('cq', 1)!.base
    const seen: string[] = []
    h.m.tracer.on('dma', (e) => {
      if (!e.write || e.bus < cqBase || e.bus >= cqBase + 256) return
      const c = readCqe(h.m, cqBase)
      seen.push(`W +${e.bus - cqBase}/${e.len} cid=${c.cid} sqhd=${c.sqhd} phase=${c.phase}`)
    })
    h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: 0x1234 })
    expect(seen).toEqual(['W +0/14 cid=4660 sqhd=1 phase=0', 'W +14/2 cid=4660 sqhd=1 phase=1'])
  })

  it('a full CQ (tail + 1 == head) holds completions back in order; the head doorbell resumes posting', () => {
    const h = io({ commandLatencyNs: 100 }, 4)
    for (let i = 0; i < 3; i++) h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: i })
    h.ring(1)
    h.run()
    for (let i = 3; i < 6; i++) h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: i })
    h.ring(1)
    h.run()
    expect(h.dev.queue('cq', 1)).toMatchObject({ head: 0, tail: 3, waiting: 3 })
    expect(h.dev.stats.cqFullWaits).toBe(3)
    expect(h.dev.dumpQueues()).toContain('CQ 1: base 0x40103000 size 4 head 0 tail 3 phase 1 iv 0 used 3 waiting 3 FULL')
    const first = h.reap(1, { max: 2 }) // consume two, release them
    expect(first.map((c) => c.cid)).toEqual([0, 1])
    expect(h.dev.queue('cq', 1)).toMatchObject({ waiting: 3 }) // the doorbell only schedules the resume
    h.run()
    expect(h.dev.queue('cq', 1)).toMatchObject({ head: 2, tail: 1, waiting: 1, phase: 0 })
    const rest = [...h.reap(1), ...(h.run(), h.reap(1))]
    expect(rest.map((c) => c.cid)).toEqual([2, 3, 4, 5])
    expect(rest.map((c) => c.sqhd)).toEqual([3, 2, 2, 2]) // the SQ head when each entry was written
    expect(h.errors).toEqual([])
  })

  it('an SQ has at most `size` commands in flight (QEMU sq->req_list); the rest wait in the queue', () => {
    const h = io({ bytesPerNs: 0.001 }, 4) // 4 KiB takes 4.1 ms
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3; i++) h.put(1, rw(NVME_CMD_READ, 0, 8, DATA + i * PAGE))
      h.ring(1)
      h.run(h.dev.config.commandLatencyNs)
    }
    expect(h.dev.queue('sq', 1)).toMatchObject({ head: 0, tail: 2, inflight: 4 })
    expect(h.dev.dumpQueues()).toContain('SQ 1: base 0x40102000 size 4 head 0 tail 2 cq 1 pending 2 inflight 4')
    h.run()
    expect(h.reap(1)).toHaveLength(3)
    h.run()
    expect(h.reap(1)).toHaveLength(3)
    expect(h.dev.queue('sq', 1)).toMatchObject({ head: 2, tail: 2, inflight: 0 })
  })

  it('timing: fetch commandLatencyNs after the doorbell, then bytes / bytesPerNs on one medium shared by all queues', () => {
    const h = nvme({ commandLatencyNs: 1000, bytesPerNs: 4 })
    h.bringUp()
    h.createPair(1)
    h.createPair(2)
    const done: { cid: number; t: number }[] = []
    const t0 = h.m.clock.now
    h.put(1, { ...rw(NVME_CMD_READ, 0, 8, DATA), cid: 1 })
    h.put(2, { ...rw(NVME_CMD_READ, 0, 16, DATA + PAGE, DATA + 2 * PAGE), cid: 2 })
    h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: 3 })
    h.ring(1)
    h.ring(2)
    while (h.m.clock.step(Number.POSITIVE_INFINITY)) for (const q of [1, 2]) for (const c of h.reap(q)) done.push({ cid: c.cid, t: h.m.clock.now - t0 })
    // cid 1: 1000 + 4096/4 = 2024; cid 2 waits for the medium: 2024 + 8192/4 = 4072; the flush has nothing to write.
    expect(done).toEqual([{ cid: 3, t: 1000 }, { cid: 1, t: 2024 }, { cid: 2, t: 4072 }])
  })

  it('doorbells are 4 << DSTRD apart; a write off the stride is rejected; a driver that assumes stride 4 lands on the wrong doorbell', () => {
    const h = nvme({ dstrd: 1, maxIoQueuePairs: 4 })
    h.bringUp()
    expect(h.sqDb(1)).toBe(NVME_REG_DBS + 16)
    expect(h.cqDb(0)).toBe(NVME_REG_DBS + 8)
    expect(h.createPair(1).sq.status).toBe(0) // works through the right doorbells
    h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1 })
    h.w(NVME_REG_DBS + 0x4, 1) // "CQ 0 head" at stride 4
    h.w(NVME_REG_DBS + 0x8, 1) // "SQ 1 tail" at stride 4: CQ 0's head doorbell at stride 8
    h.run()
    expect(h.reap(1)).toEqual([])
    expect(h.errors.map((e) => e.message)).toEqual([
      'doorbell write of 1 at 0x1004 is not on the 8-byte doorbell stride (CAP.DSTRD 1): nearest is SQ 0 tail at 0x1000; ignored',
      'CQ 0 head doorbell 1 is beyond the tail: head 2, tail 2, phase 1: it releases 31 entries but only 0 were posted; ignored',
    ])
    h.ring(1)
    h.run()
    expect(h.reap(1)).toHaveLength(1)
  })

  it('strict: a CID reused while a command with it is in flight on the SQ completes with CMDID_CONFLICT; once completed it may be reused; lenient does not check', () => {
    for (const strict of [true, false]) {
      const h = io({ strict })
      h.put(1, { ...rw(NVME_CMD_READ, 0, 8, DATA), cid: 7 })
      h.put(1, { ...rw(NVME_CMD_READ, 8, 8, DATA + PAGE), cid: 7 })
      h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: 8 })
      h.ring(1)
      h.run()
      const got = h.reap(1).map((c) => [c.cid, c.status])
      if (strict) {
        expect(got).toEqual([[7, NVME_SC_CMDID_CONFLICT], [8, 0], [7, 0]])
        expect(h.errors.map((e) => e.message)).toEqual(['SQ 1: I/O Read (opcode 0x2) reuses CID 7 while a command with that CID is still in flight on this SQ: completed with CMDID_CONFLICT'])
        expect(h.dev.stats.cidConflicts).toBe(1)
      } else expect(got).toEqual([[8, 0], [7, 0], [7, 0]])
      expect(h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1, cid: 7 }).status).toBe(0) // free again
    }
  })

  it('doorbell mistakes: a missing queue and a value beyond the queue are ignored (reported in strict mode)', () => {
    for (const strict of [true, false]) {
      const h = io({ strict })
      h.w(h.sqDb(5), 1)
      h.w(h.cqDb(5), 1)
      h.w(h.sqDb(1), 16)
      h.w(h.cqDb(1), 0x10001)
      expect(h.dev.queue('sq', 1)).toMatchObject({ tail: 0 })
      expect(h.errors.map((e) => e.message)).toEqual(
        strict
          ? [
              'SQ 5 tail doorbell written with 1, but SQ 5 does not exist; ignored',
              'CQ 5 head doorbell written with 1, but CQ 5 does not exist; ignored',
              'SQ 1 tail doorbell value 16 is beyond the queue (16 entries, 0..15); ignored',
              'CQ 1 head doorbell value 65537 is beyond the queue (16 entries, 0..15); ignored',
            ]
          : [],
      )
    }
  })

  it('strict: an SQ tail that moves backwards is ignored and reported; lenient takes it as QEMU does', () => {
    for (const strict of [true, false]) {
      const h = io({ strict, commandLatencyNs: 1000 })
      for (let i = 0; i < 3; i++) h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1 })
      h.ring(1) // tail 3
      h.w(h.sqDb(1), 1) // withdraw two commands the device has not fetched yet
      h.run()
      const got = h.reap(1)
      if (strict) {
        expect(got).toHaveLength(3)
        expect(h.errors.map((e) => e.message)).toEqual(['SQ 1 tail doorbell moved backwards: 1 after 3 with head 0 (3 entries not fetched yet would be withdrawn, or the queue was overfilled); ignored'])
      } else {
        expect(got).toHaveLength(1)
        expect(h.errors).toEqual([])
      }
    }
  })

  it('strict: a CQ head doorbell beyond the tail (consuming entries never posted) is ignored and reported', () => {
    const h = io()
    h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1 })
    h.w(h.cqDb(1), 5)
    expect(h.dev.queue('cq', 1)).toMatchObject({ head: 1, tail: 1 })
    expect(h.errors.map((e) => e.message)).toEqual(['CQ 1 head doorbell 5 is beyond the tail: head 1, tail 1, phase 1: it releases 4 entries but only 0 were posted; ignored'])
  })

  it('Delete I/O SQ completes its commands still in flight with ABORT_QUEUE before its own completion', () => {
    const h = io({ bytesPerNs: 0.001, commandLatencyNs: 100 })
    h.put(1, { ...rw(NVME_CMD_READ, 0, 8, DATA), cid: 1 })
    h.put(1, { ...rw(NVME_CMD_READ, 8, 8, DATA + PAGE), cid: 2 })
    h.ring(1)
    h.run(100) // fetched: the media time keeps them in flight
    expect(h.dev.inflight).toBe(2)
    h.put(0, { opcode: NVME_ADMIN_DELETE_SQ, cdw10: 1, cid: 99 })
    h.ring(0)
    h.run(100)
    expect(h.reap(1).map((c) => [c.cid, c.status])).toEqual([[1, NVME_SC_ABORT_QUEUE], [2, NVME_SC_ABORT_QUEUE]])
    expect(h.reap(0).map((c) => [c.cid, c.status])).toEqual([[99, 0]])
    h.run()
    expect(h.reap(1)).toEqual([])
    expect(h.dev.inflight).toBe(0)
  })

  it('commands that arrive together are fetched with one DMA read per contiguous run of the SQ', () => {
    const h = io({}, 8)
    for (let i = 0; i < 6; i++) h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1 }) // head and tail at 6
    const sqBase = h.dev.queue('sq', 1)!.base
    const reads: string[] = []
    h.m.tracer.on('dma', (e) => (!e.write && e.bus >= sqBase && e.bus < sqBase + 512 ? reads.push(`${(e.bus - sqBase) / 64}+${e.len / 64}`) : undefined))
    for (let i = 0; i < 5; i++) h.put(1, { opcode: NVME_CMD_FLUSH, nsid: 1 })
    h.ring(1)
    h.run()
    expect(reads).toEqual(['6+2', '0+3']) // up to the end of the queue, then from the start
    expect(h.reap(1)).toHaveLength(5)
  })

  it('I/O queues of many sizes up to MQES work side by side (one SQ per CQ and two SQs on one CQ)', () => {
    const h = nvme({ mqes: 255 })
    h.bringUp()
    h.createPair(1, 256, { sqBase: IOQ, cqBase: IOQ + 0x4000 })
    h.createPair(2, 2, { sqBase: IOQ + 0x8000, cqBase: IOQ + 0x9000 })
    for (let i = 0; i < 300; i++) {
      expect(h.cmd(1, { opcode: NVME_CMD_FLUSH, nsid: 1 }).status).toBe(0)
      expect(h.cmd(2, { opcode: NVME_CMD_FLUSH, nsid: 1 }).status).toBe(0)
    }
    expect(h.dev.queue('cq', 1)).toMatchObject({ phase: 0, tail: 44 })
    expect(h.dev.queue('cq', 2)).toMatchObject({ phase: 1, tail: 0 })
  })
})
