// The mini-NVMe controller at the hardware level, part 1: identity, registers, the CC/CSTS state
// machine (bring-up, the CFS cases, reset, shutdown) and the admin command set, driven through
// MMIO with queue entries written straight into RAM (no kernel). The datasheet is
// docs/devices/nvme.md; I/O, PRPs and queues are in nvme-io.test.ts, the write cache in
// nvme-cache.test.ts, interrupts and faults in nvme-irq.test.ts.
import { describe, expect, it } from 'vitest'
import {
  NVME_ADMIN_ASYNC_EVENT,
  NVME_ADMIN_CREATE_CQ,
  NVME_ADMIN_CREATE_SQ,
  NVME_ADMIN_DELETE_CQ,
  NVME_ADMIN_DELETE_SQ,
  NVME_ADMIN_GET_FEATURES,
  NVME_ADMIN_IDENTIFY,
  NVME_ADMIN_SET_FEATURES,
  NVME_CC_ENABLE,
  NVME_CC_IOCQES,
  NVME_CC_IOSQES,
  NVME_CC_SHN_NORMAL,
  NVME_CLASS,
  NVME_CQ_IRQ_ENABLED,
  NVME_CSTS_CFS,
  NVME_CSTS_RDY,
  NVME_CSTS_SHST_CMPLT,
  NVME_CSTS_SHST_OCCUR,
  NVME_DEVICE_ID,
  NVME_FEAT_IRQ_COALESCE,
  NVME_FEAT_NUM_QUEUES,
  NVME_FEAT_VOLATILE_WC,
  NVME_ID_CNS_CTRL,
  NVME_ID_CNS_NS,
  NVME_ID_CNS_NS_ACTIVE_LIST,
  NVME_ID_CNS_NS_DESC_LIST,
  NVME_QUEUE_PHYS_CONTIG,
  NVME_REG_ACQ,
  NVME_REG_AQA,
  NVME_REG_ASQ,
  NVME_REG_CAP,
  NVME_REG_CC,
  NVME_REG_CMBSZ,
  NVME_REG_CSTS,
  NVME_REG_INTMC,
  NVME_REG_INTMS,
  NVME_REG_NSSR,
  NVME_REG_VS,
  NVME_SC_CMD_SEQ_ERROR,
  NVME_SC_CQ_INVALID,
  NVME_SC_DNR,
  NVME_SC_FEATURE_NOT_PER_NS,
  NVME_SC_FEATURE_NOT_SAVEABLE,
  NVME_SC_INVALID_FIELD,
  NVME_SC_INVALID_NS,
  NVME_SC_INVALID_OPCODE,
  NVME_SC_INVALID_QUEUE,
  NVME_SC_INVALID_VECTOR,
  NVME_SC_PRP_INVALID_OFFSET,
  NVME_SC_QID_INVALID,
  NVME_SC_QUEUE_SIZE,
  NVME_SET_FEAT_SAVE,
  NVME_VENDOR_ID,
  NVME_VS_1_4,
  MemoryBackend,
  NvmeController,
  PCI_CLASS_REVISION,
  PCI_DEVICE_ID,
  PCI_VENDOR_ID,
  PciFunctionError,
} from '../../devices/index.js'
import { ACQ, ASQ, IDBUF, IOQ, nvme, ramBytes, type NvmeHost } from './nvme-rig.js'

const CC_GOOD = NVME_CC_ENABLE | NVME_CC_IOSQES | NVME_CC_IOCQES
const DNR = NVME_SC_DNR
const ascii = (b: Uint8Array, off: number, len: number): string => String.fromCharCode(...b.subarray(off, off + len))

function identify(h: NvmeHost, cns: number, nsid = 0, prp1 = IDBUF, prp2 = 0) {
  h.m.ram.fill(prp1 - (prp1 % 4096), 0xee, 8192)
  const c = h.admin({ opcode: NVME_ADMIN_IDENTIFY, nsid, prp1, prp2, cdw10: cns })
  return { c, data: ramBytes(h.m, prp1, 4096), view: new DataView(ramBytes(h.m, prp1, 4096).buffer) }
}

describe('nvme: identity and options', () => {
  it('is an NVM Express PCI function (class 010802h) with the datasheet ids, INTA and 32 MSI-X vectors above the doorbells', () => {
    const { dev } = nvme()
    expect(dev.configRead(PCI_VENDOR_ID, 2)).toBe(NVME_VENDOR_ID)
    expect(dev.configRead(PCI_DEVICE_ID, 2)).toBe(NVME_DEVICE_ID)
    expect(dev.configRead(PCI_CLASS_REVISION, 4) >>> 8).toBe(NVME_CLASS)
    expect(NVME_VENDOR_ID).toBe(0x1de5)
    expect(NVME_DEVICE_ID).toBe(0x5e01)
    expect(dev.msixVectors).toBe(32)
    // 65,535 queue pairs at the 4-byte stride: doorbells up to 0x81000; the table follows them.
    expect(dev.config.doorbellBytes).toBe(2 * 65536 * 4)
    expect(dev.config.msixTableOffset).toBe(0x81000)
    expect(dev.bars[0]!.size).toBe(1 << 20)
  })

  it('rejects bad options with an error naming the option', () => {
    expect(() => new NvmeController({ mqes: 0 })).toThrow(/mqes must be an integer from 1 to 65535/)
    expect(() => new NvmeController({ dstrd: 16 })).toThrow(/dstrd/)
    expect(() => new NvmeController({ dstrd: 15 })).toThrow(/1 GiB BAR/)
    expect(() => new NvmeController({ mdts: 0 })).toThrow(/mdts/)
    expect(() => new NvmeController({ lbaSize: 1024 as 512 })).toThrow(/lbaSize must be 512 or 4096/)
    expect(() => new NvmeController({ sizeBytes: 1000 })).toThrow(/sizeBytes/)
    expect(() => new NvmeController({ msixVectors: 4096 })).toThrow(/msixVectors/)
    expect(() => new NvmeController({ serial: 'x'.repeat(21) })).toThrow(/serial/)
    expect(() => new NvmeController({ bytesPerNs: 0 })).toThrow(/bytesPerNs/)
    expect(() => new NvmeController({ readyDelayNs: -1 })).toThrow(/readyDelayNs/)
    expect(() => new NvmeController({ strict: 'yes' as unknown as boolean })).toThrow(PciFunctionError)
    expect(() => new NvmeController({ backend: new MemoryBackend(4096), sizeBytes: 8192 })).toThrow(/sizeBytes must be at most the backend's 4096 bytes/)
    // The namespace takes the backend's size, rounded down to whole blocks.
    expect(new NvmeController({ backend: new MemoryBackend((1 << 20) + 100) }).config.sizeBytes).toBe(1 << 20)
    expect(new NvmeController({ backend: new MemoryBackend((1 << 20) + 100), lbaSize: 4096 }).config.sizeBytes).toBe(1 << 20)
  })
})

describe('nvme: registers', () => {
  it('CAP: MQES, CQR, TO, DSTRD, CSS (NVM), MPSMIN = MPSMAX = 0; VS 1.4; CMB registers read 0', () => {
    const { dev, r } = nvme({ mqes: 255, timeout: 20, dstrd: 2, maxIoQueuePairs: 64 })
    const cap = dev.mmioRead(0, NVME_REG_CAP, 8) as bigint
    expect(cap & 0xffffn).toBe(255n) // MQES, 0-based
    expect((cap >> 16n) & 1n).toBe(1n) // CQR
    expect((cap >> 24n) & 0xffn).toBe(20n) // TO
    expect((cap >> 32n) & 0xfn).toBe(2n) // DSTRD
    expect((cap >> 37n) & 0xffn).toBe(1n) // CSS: the NVM command set
    expect((cap >> 48n) & 0xffn).toBe(0n) // MPSMIN, MPSMAX
    expect(r(NVME_REG_VS)).toBe(NVME_VS_1_4)
    expect(r(NVME_REG_CMBSZ)).toBe(0)
    expect(new NvmeController().config.mqes).toBe(1023)
  })

  it('AQA, ASQ and ACQ (two 32-bit halves) read back; INTMS sets, INTMC clears the mask, both read it', () => {
    const { w, r, dev } = nvme()
    w(NVME_REG_AQA, 0x003f_001f)
    w(NVME_REG_ASQ, 0x1000)
    w(NVME_REG_ASQ + 4, 0x8)
    dev.mmioWrite(0, NVME_REG_ACQ, 8, 0x9_0000_2000n)
    expect(r(NVME_REG_AQA)).toBe(0x003f_001f)
    expect(dev.mmioRead(0, NVME_REG_ASQ, 8)).toBe(0x8_0000_1000n)
    expect(r(NVME_REG_ACQ + 4)).toBe(9)
    w(NVME_REG_INTMS, 0x5)
    w(NVME_REG_INTMS, 0x2)
    expect([r(NVME_REG_INTMS), r(NVME_REG_INTMC)]).toEqual([7, 7])
    w(NVME_REG_INTMC, 0x3)
    expect(r(NVME_REG_INTMS)).toBe(4)
  })

  it('strict mode reports writes to read-only and unimplemented registers, short accesses and doorbell reads; lenient mode says nothing', () => {
    for (const strict of [true, false]) {
      const { w, r, dev, errors } = nvme({ strict })
      w(NVME_REG_CAP, 1)
      w(NVME_REG_VS, 1)
      w(NVME_REG_CSTS, 1)
      w(0x40, 1)
      r(0x44)
      dev.mmioWrite(0, NVME_REG_CC, 2, 0)
      expect(dev.mmioRead(0, NVME_REG_VS + 1, 1)).toBe(strict ? 0 : 0x04) // lenient reads the byte, as QEMU
      r(0x1000)
      w(NVME_REG_NSSR, 0x4e56_4d65)
      expect(r(NVME_REG_VS)).toBe(NVME_VS_1_4)
      const msgs = errors.map((e) => e.message)
      if (!strict) expect(msgs).toEqual([])
      else {
        expect(msgs).toEqual([
          'write of 0x1 to read-only register CAP (0x0)',
          'write of 0x1 to read-only register VS (0x8)',
          'write of 0x1 to read-only register CSTS (0x1c)',
          'write of 0x1 to unimplemented register 0x40',
          'read of unimplemented register 0x44',
          '2-byte write of 0x0 to CC (0x14): NVMe registers take aligned 32-bit accesses (64-bit ones are split)',
          '1-byte read of VS (0x9): NVMe registers take aligned 32-bit accesses (64-bit ones are split)',
          '4-byte read of doorbell SQ 0 tail (0x1000): doorbells are write-only (reads return 0)',
          'NSSR written with "NVMe" (0x4e564d65): NVM subsystem reset is not supported (CAP.NSSRS = 0); ignored',
        ])
      }
    }
  })

  it('INTMS / INTMC writes while MSI-X is enabled are a guest error (undefined), still applied as QEMU does', () => {
    const h = nvme()
    h.enableMsix()
    h.w(NVME_REG_INTMS, 1)
    expect(h.errors.map((e) => e.message)).toEqual(['write of 0x1 to INTMS while MSI-X is enabled (undefined: the mask is for pin-based interrupts)'])
    expect(h.r(NVME_REG_INTMS)).toBe(1)
  })
})

describe('nvme: bring-up, reset and shutdown (CC / CSTS)', () => {
  it('CSTS.RDY comes readyDelayNs after CC.EN (default 1 ms), so a driver must poll it within CAP.TO', () => {
    const h = nvme({ readyDelayNs: 1_000_000 })
    const t0 = h.m.clock.now
    expect(h.bringUp({ wait: false })).toBe(0)
    h.run(999_999)
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    expect(h.dev.running).toBe(false)
    h.run(1)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY)
    expect(h.m.clock.now - t0).toBe(1_000_000)
    expect(h.dev.queueCount).toEqual({ sqs: 1, cqs: 1 })
    expect(new NvmeController().config.readyDelayNs).toBe(1_000_000)
    expect(h.errors).toEqual([])
  })

  it('a doorbell before CSTS.RDY is for a queue that does not exist yet', () => {
    const h = nvme()
    h.bringUp({ wait: false })
    h.w(h.sqDb(0), 1)
    expect(h.errors.map((e) => e.message)).toEqual(['SQ 0 tail doorbell written with 1, but SQ 0 does not exist (the controller is not ready: CSTS.RDY = 0); ignored'])
  })

  const bad: [string, (h: NvmeHost) => number, RegExp][] = [
    ['ASQ 0', (h) => (h.w(NVME_REG_ASQ, 0), CC_GOOD), /ASQ is 0/],
    ['ASQ misaligned', (h) => (h.w(NVME_REG_ASQ, ASQ + 0x80), CC_GOOD), /ASQ 0x40001080 is not 4096-byte \(page\) aligned/],
    ['ACQ 0', (h) => (h.w(NVME_REG_ACQ, 0), CC_GOOD), /ACQ is 0/],
    ['ACQ misaligned', (h) => (h.w(NVME_REG_ACQ, ACQ + 8), CC_GOOD), /ACQ 0x40002008 is not 4096-byte/],
    ['MPS 1 (8 KiB pages)', () => CC_GOOD | (1 << 7), /CC\.MPS 1 is outside CAP\.MPSMIN\.\.MPSMAX/],
    ['CSS 1', () => CC_GOOD | (1 << 4), /CC\.CSS 1 is not supported/],
    ['AMS 1', () => CC_GOOD | (1 << 11), /CC\.AMS 1 is not supported/],
    ['IOSQES 5', () => NVME_CC_ENABLE | (5 << 16) | NVME_CC_IOCQES, /CC\.IOSQES 5 is not 6/],
    ['IOCQES 0', () => NVME_CC_ENABLE | NVME_CC_IOSQES, /CC\.IOCQES 0 is not 4/],
    ['ASQS 0', (h) => (h.w(NVME_REG_AQA, 0x001f_0000), CC_GOOD), /AQA\.ASQS is 0/],
    ['ACQS 0', (h) => (h.w(NVME_REG_AQA, 0x0000_001f), CC_GOOD), /AQA\.ACQS is 0/],
  ]
  for (const [name, setup, message] of bad) {
    it(`CC.EN with ${name}: CSTS.CFS instead of RDY, reported; CC.EN = 0 clears it`, () => {
      const h = nvme()
      h.w(NVME_REG_AQA, 0x001f_001f)
      h.w(NVME_REG_ASQ, ASQ)
      h.w(NVME_REG_ACQ, ACQ)
      const cc = setup(h)
      h.w(NVME_REG_CC, cc)
      expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_CFS)
      h.run()
      expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_CFS) // never ready
      expect(h.dev.queueCount).toEqual({ sqs: 0, cqs: 0 })
      expect(h.errors).toHaveLength(1)
      expect(h.errors[0]!.message).toMatch(/^CC\.EN set with a bad configuration, CSTS\.CFS set: /)
      expect(h.errors[0]!.message).toMatch(message)
      expect(h.dev.lastFatal).toMatch(message)
      h.w(NVME_REG_CC, 0)
      expect(h.r(NVME_REG_CSTS)).toBe(0)
    })
  }

  it('lenient mode sets CFS for a bad configuration without reporting it', () => {
    const h = nvme({ strict: false })
    h.w(NVME_REG_AQA, 0x001f_001f)
    h.w(NVME_REG_CC, CC_GOOD)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_CFS)
    expect(h.errors).toEqual([])
  })

  it('CC.EN 1 -> 0 deletes every queue at once; CSTS.RDY clears disableDelayNs later; AQA/ASQ/ACQ keep their values', () => {
    const h = nvme({ disableDelayNs: 2000 })
    h.bringUp()
    h.createPair(1)
    expect(h.dev.queueCount).toEqual({ sqs: 2, cqs: 2 })
    h.w(NVME_REG_CC, CC_GOOD & ~NVME_CC_ENABLE)
    expect(h.dev.queueCount).toEqual({ sqs: 0, cqs: 0 })
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY)
    h.run(1999)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY)
    h.run(1)
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    expect(h.r(NVME_REG_ASQ)).toBe(ASQ)
    // Enable again: the admin queue starts over at head = tail = 0, phase 1.
    h.bringUp()
    expect(h.dev.queue('sq', 0)).toMatchObject({ head: 0, tail: 0 })
    expect(h.dev.queue('cq', 0)).toMatchObject({ head: 0, tail: 0, phase: 1 })
    expect(identify(h, NVME_ID_CNS_CTRL).c.status).toBe(0)
    expect(h.errors).toEqual([])
    expect(h.dev.stats.resets).toBe(1)
  })

  it('setting CC.EN again before CSTS.RDY has returned to 0 is reported (the reset was not waited for)', () => {
    const h = nvme({ disableDelayNs: 2000 })
    h.bringUp()
    h.w(NVME_REG_CC, 0)
    h.w(NVME_REG_CC, CC_GOOD)
    expect(h.errors.map((e) => e.message)).toEqual(['CC.EN set while the previous reset is still in progress (CSTS.RDY has not returned to 0): wait for RDY = 0 first'])
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY)
  })

  it('CC.EN 1 -> 0 during the ready delay: RDY never comes; CC fields changed while enabled are reported', () => {
    const h = nvme()
    h.bringUp({ wait: false })
    h.w(NVME_REG_CC, CC_GOOD | (1 << 7))
    expect(h.errors.map((e) => e.message)).toEqual(['CC 0x00460081 changes CSS/MPS/AMS/IOSQES/IOCQES (was 0x00460001) while CC.EN = 1: they take effect at the next enable'])
    h.w(NVME_REG_CC, 0)
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    h.w(NVME_REG_AQA, 0x1f001f)
    expect(h.errors).toHaveLength(1) // AQA may change while disabled
  })

  it('CC.SHN: SHST = occurring at once, complete shutdownDelayNs later; fetching stops; clearing SHN clears SHST', () => {
    const h = nvme({ shutdownDelayNs: 5000 })
    h.bringUp()
    h.w(NVME_REG_CC, CC_GOOD | NVME_CC_SHN_NORMAL)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY | NVME_CSTS_SHST_OCCUR)
    h.run(4999)
    expect(h.r(NVME_REG_CSTS) & 0xc).toBe(NVME_CSTS_SHST_OCCUR)
    h.run(1)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY | NVME_CSTS_SHST_CMPLT)
    expect(h.dev.running).toBe(false)
    h.put(0, { opcode: NVME_ADMIN_IDENTIFY, prp1: IDBUF, cdw10: 1 })
    h.ring(0)
    h.run()
    expect(h.reap(0)).toEqual([]) // not fetched
    expect(h.errors.map((e) => e.message)).toEqual(['SQ 0 tail doorbell written with 1 after CC.SHN requested a shutdown; not fetched until the controller is reset'])
    h.w(NVME_REG_CC, CC_GOOD)
    expect(h.r(NVME_REG_CSTS)).toBe(NVME_CSTS_RDY)
    h.w(NVME_REG_CC, 0) // the usual way out: a reset
    h.run()
    expect(h.r(NVME_REG_CSTS)).toBe(0)
    expect(h.dev.stats.shutdowns).toBe(1)
  })
})

describe('nvme: Identify', () => {
  it('CNS 01h: the controller — VID, SN, MN, FR, MDTS, SQES 66h, CQES 44h, NN 1, ONCS Write Zeroes, VWC, VER', () => {
    const h = nvme({ serial: 'SN-42', mdts: 6 })
    h.bringUp()
    const { c, data, view } = identify(h, NVME_ID_CNS_CTRL)
    expect(c).toMatchObject({ status: 0, sqid: 0, sqhd: 1, phase: 1 })
    expect(view.getUint16(0, true)).toBe(0x1de5)
    expect(view.getUint16(2, true)).toBe(0x1de5)
    expect(ascii(data, 4, 20)).toBe('SN-42'.padEnd(20))
    expect(ascii(data, 24, 40)).toBe('dmalab mini-NVMe'.padEnd(40))
    expect(ascii(data, 64, 8)).toBe('1.0     ')
    expect(data[77]).toBe(6) // MDTS
    expect(view.getUint32(80, true)).toBe(0x10400) // VER
    expect([data[512], data[513]]).toEqual([0x66, 0x44])
    expect(view.getUint32(516, true)).toBe(1) // NN
    expect(view.getUint16(520, true)).toBe(1 << 3) // ONCS: Write Zeroes
    expect(data[525]).toBe(0x01) // VWC present
    expect(view.getUint32(536, true)).toBe(0) // no SGLs
    expect(ascii(data, 768, 34)).toBe('nqn.2024-01.org.dmalab:nvme:SN-42\0')
    expect(h.dev.identifyData).toEqual(data)
    expect(new NvmeController({ volatileWriteCache: false }).identifyData[525]).toBe(0)
  })

  it('CNS 00h: namespace 1 — NSZE = NCAP = NUSE, one LBA format of 512 or 4096 bytes, NGUID / EUI-64', () => {
    for (const [lbaSize, ds] of [[512, 9], [4096, 12]] as const) {
      const h = nvme({ sizeBytes: 64 << 20, lbaSize })
      h.bringUp()
      const { c, data, view } = identify(h, NVME_ID_CNS_NS, 1)
      expect(c.status).toBe(0)
      const nsze = (64 << 20) / lbaSize
      expect([view.getUint32(0, true), view.getUint32(8, true), view.getUint32(16, true)]).toEqual([nsze, nsze, nsze])
      expect([data[25], data[26]]).toEqual([0, 0]) // NLBAF 0 (one format), FLBAS 0
      expect(data[128 + 2]).toBe(ds) // LBAF0.DS
      expect(view.getUint16(128, true)).toBe(0) // no metadata
      expect(data.subarray(104, 120).some((b) => b !== 0)).toBe(true)
      expect(data.subarray(120, 128)).toEqual(data.subarray(104, 112))
    }
  })

  it('CNS 02h lists namespace 1 after NSID 0 and nothing after it; CNS 03h gives the NGUID descriptor', () => {
    const h = nvme()
    h.bringUp()
    const list0 = identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0)
    expect([list0.c.status, list0.view.getUint32(0, true), list0.view.getUint32(4, true)]).toEqual([0, 1, 0])
    const list1 = identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 1)
    expect(list1.data.every((b) => b === 0)).toBe(true)
    const ns = identify(h, NVME_ID_CNS_NS, 1)
    const desc = identify(h, NVME_ID_CNS_NS_DESC_LIST, 1)
    expect([desc.data[0], desc.data[1]]).toEqual([2, 16])
    expect(desc.data.subarray(4, 20)).toEqual(ns.data.subarray(104, 120))
    expect(desc.data.subarray(20).every((b) => b === 0)).toBe(true)
  })

  it('the data goes through PRP1 with an offset and PRP2 for the rest', () => {
    const h = nvme()
    h.bringUp()
    const first = IDBUF + 0x800
    const second = IDBUF + 0x2000
    h.m.ram.fill(IDBUF, 0, 0x4000)
    const c = h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: first, prp2: second, cdw10: NVME_ID_CNS_CTRL })
    expect(c.status).toBe(0)
    const got = new Uint8Array(4096)
    got.set(ramBytes(h.m, first, 0x800), 0)
    got.set(ramBytes(h.m, second, 0x800), 0x800)
    expect(got).toEqual(h.dev.identifyData)
    expect(ramBytes(h.m, second + 0x800, 16).every((b) => b === 0)).toBe(true)
  })

  it('errors: unknown CNS is INVALID_FIELD|DNR, a bad NSID INVALID_NS|DNR, no PRP1 INVALID_FIELD|DNR; each reported in strict mode', () => {
    const h = nvme()
    h.bringUp()
    expect(identify(h, 0x10).c.status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(identify(h, NVME_ID_CNS_NS, 0).c.status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(identify(h, NVME_ID_CNS_NS, 2).c.status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(identify(h, NVME_ID_CNS_NS_ACTIVE_LIST, 0xffff_ffff).c.status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(h.admin({ opcode: NVME_ADMIN_IDENTIFY, prp1: 0, cdw10: 1 }).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(h.errors.map((e) => e.message)).toEqual([
      'SQ 0 admin Identify (opcode 0x6) (CID 1) failed with INVALID_FIELD|DNR: Identify CNS 0x10 is not supported (0, 1, 2 and 3 are)',
      'SQ 0 admin Identify (opcode 0x6) (CID 2) failed with INVALID_NS|DNR: Identify CNS 0: NSID 0x0 is not a namespace (the only one is 1)',
      'SQ 0 admin Identify (opcode 0x6) (CID 3) failed with INVALID_NS|DNR: Identify CNS 0: NSID 0x2 is not a namespace (the only one is 1)',
      'SQ 0 admin Identify (opcode 0x6) (CID 4) failed with INVALID_NS|DNR: Identify CNS 2: NSID 0xffffffff is not a valid starting NSID',
      'SQ 0 admin Identify (opcode 0x6) (CID 5) failed with INVALID_FIELD|DNR: Identify: PRP1 is 0',
    ])
  })
})

describe('nvme: creating and deleting I/O queues', () => {
  const cq = (h: NvmeHost, qid: number, o: { size?: number; prp1?: number; flags?: number; iv?: number } = {}) =>
    h.admin({ opcode: NVME_ADMIN_CREATE_CQ, prp1: o.prp1 ?? IOQ + 0x1000 * qid, cdw10: (((o.size ?? 16) - 1) << 16) | qid, cdw11: ((o.iv ?? 0) << 16) | (o.flags ?? NVME_QUEUE_PHYS_CONTIG | NVME_CQ_IRQ_ENABLED) }).status
  const sq = (h: NvmeHost, qid: number, cqid: number, o: { size?: number; prp1?: number; flags?: number } = {}) =>
    h.admin({ opcode: NVME_ADMIN_CREATE_SQ, prp1: o.prp1 ?? IOQ + 0x10_0000 + 0x1000 * qid, cdw10: (((o.size ?? 16) - 1) << 16) | qid, cdw11: (cqid << 16) | (o.flags ?? NVME_QUEUE_PHYS_CONTIG) }).status

  it('Create I/O CQ: QID, QSIZE against CAP.MQES, the base, PC, and the vector are checked (QEMU nvme_create_cq)', () => {
    const h = nvme({ mqes: 63, msixVectors: 4 })
    h.bringUp()
    expect(cq(h, 0)).toBe(NVME_SC_QID_INVALID | DNR)
    expect(cq(h, 1, { size: 1 })).toBe(NVME_SC_QUEUE_SIZE | DNR) // QSIZE 0
    expect(cq(h, 1, { size: 65 })).toBe(NVME_SC_QUEUE_SIZE | DNR) // QSIZE 64 > MQES 63
    expect(cq(h, 1, { prp1: 0 })).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(cq(h, 1, { prp1: IOQ + 0x1008 })).toBe(NVME_SC_PRP_INVALID_OFFSET | DNR)
    expect(cq(h, 1, { flags: NVME_CQ_IRQ_ENABLED })).toBe(NVME_SC_INVALID_FIELD | DNR) // PC = 0
    expect(cq(h, 1, { iv: 1 })).toBe(NVME_SC_INVALID_VECTOR | DNR) // no MSI-X: vector 0 only
    h.enableMsix()
    expect(cq(h, 1, { iv: 4 })).toBe(NVME_SC_INVALID_VECTOR | DNR) // beyond the 4 vectors
    expect(cq(h, 1, { iv: 3, size: 64 })).toBe(0)
    expect(cq(h, 1)).toBe(NVME_SC_QID_INVALID | DNR) // exists
    expect(cq(h, 2, { flags: NVME_QUEUE_PHYS_CONTIG, iv: 99 })).toBe(0) // IEN clear: IV is not used
    expect(h.dev.queue('cq', 1)).toMatchObject({ size: 64, head: 0, tail: 0, phase: 1 })
    expect(h.errors).toHaveLength(9)
    expect(h.errors[6]!.message).toBe('SQ 0 admin Create I/O CQ (opcode 0x5) (CID 7) failed with INVALID_VECTOR|DNR: Create I/O CQ 1: IV 1 needs MSI-X (without it every CQ uses vector 0)')
  })

  it('Create I/O SQ: its CQ must exist first (CQ_INVALID), then QID, QSIZE, base and PC are checked', () => {
    const h = nvme({ mqes: 63 })
    h.bringUp()
    expect(sq(h, 1, 1)).toBe(NVME_SC_CQ_INVALID | DNR) // the driver created the SQ before its CQ
    expect(sq(h, 1, 0)).toBe(NVME_SC_CQ_INVALID | DNR) // the admin CQ is not for I/O
    expect(cq(h, 1)).toBe(0)
    expect(sq(h, 0, 1)).toBe(NVME_SC_QID_INVALID | DNR)
    expect(sq(h, 1, 1, { size: 1 })).toBe(NVME_SC_QUEUE_SIZE | DNR)
    expect(sq(h, 1, 1, { size: 100 })).toBe(NVME_SC_QUEUE_SIZE | DNR)
    expect(sq(h, 1, 1, { prp1: IOQ + 0x10_0040 })).toBe(NVME_SC_PRP_INVALID_OFFSET | DNR)
    expect(sq(h, 1, 1, { flags: 0 })).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(sq(h, 1, 1)).toBe(0)
    expect(sq(h, 1, 1)).toBe(NVME_SC_QID_INVALID | DNR)
    expect(sq(h, 2, 1)).toBe(0) // two SQs may share a CQ
    expect(h.errors[0]!.message).toBe('SQ 0 admin Create I/O SQ (opcode 0x1) (CID 1) failed with CQ_INVALID|DNR: Create I/O SQ 1: CQID 1 is not an existing I/O CQ (create the CQ first)')
  })

  it('Delete: a CQ that SQs still use is INVALID_QUEUE (without DNR, as QEMU); SQs first, then the CQ; missing queues QID_INVALID|DNR', () => {
    const h = nvme()
    h.bringUp()
    expect(cq(h, 1)).toBe(0)
    expect(sq(h, 1, 1)).toBe(0)
    expect(sq(h, 2, 1)).toBe(0)
    const del = (op: number, qid: number) => h.admin({ opcode: op, cdw10: qid }).status
    expect(del(NVME_ADMIN_DELETE_CQ, 1)).toBe(NVME_SC_INVALID_QUEUE)
    expect(del(NVME_ADMIN_DELETE_SQ, 1)).toBe(0)
    expect(del(NVME_ADMIN_DELETE_CQ, 1)).toBe(NVME_SC_INVALID_QUEUE)
    expect(del(NVME_ADMIN_DELETE_SQ, 2)).toBe(0)
    expect(del(NVME_ADMIN_DELETE_CQ, 1)).toBe(0)
    expect(del(NVME_ADMIN_DELETE_SQ, 1)).toBe(NVME_SC_QID_INVALID | DNR)
    expect(del(NVME_ADMIN_DELETE_CQ, 1)).toBe(NVME_SC_QID_INVALID | DNR)
    expect(del(NVME_ADMIN_DELETE_SQ, 0)).toBe(NVME_SC_QID_INVALID | DNR) // the admin queues are not deleted this way
    expect(h.dev.queueCount).toEqual({ sqs: 1, cqs: 1 })
    expect(h.errors[0]!.message).toMatch(/Delete I\/O CQ 1: 2 submission queue\(s\) still complete into it \(delete them first\)/)
  })
})

describe('nvme: Get / Set Features', () => {
  const set = (h: NvmeHost, fid: number, dw11: number, o: { nsid?: number; save?: boolean } = {}) =>
    h.admin({ opcode: NVME_ADMIN_SET_FEATURES, nsid: o.nsid ?? 0, cdw10: fid | (o.save === true ? NVME_SET_FEAT_SAVE : 0), cdw11: dw11 })
  const get = (h: NvmeHost, fid: number, sel = 0) => h.admin({ opcode: NVME_ADMIN_GET_FEATURES, cdw10: fid | (sel << 8) })

  it('06h volatile write cache: WCE is 1 after reset (as drives ship), can be cleared and set', () => {
    const h = nvme()
    h.bringUp()
    expect(get(h, NVME_FEAT_VOLATILE_WC)).toMatchObject({ status: 0, dw0: 1 })
    expect(set(h, NVME_FEAT_VOLATILE_WC, 0)).toMatchObject({ status: 0 })
    expect(get(h, NVME_FEAT_VOLATILE_WC).dw0).toBe(0)
    expect(h.dev.writeCacheEnabled).toBe(false)
    expect(get(h, NVME_FEAT_VOLATILE_WC, 1).dw0).toBe(1) // SEL default
    expect(get(h, NVME_FEAT_VOLATILE_WC, 3).dw0).toBe(4) // SEL supported capabilities: changeable
    expect(set(h, NVME_FEAT_VOLATILE_WC, 1).status).toBe(0)
    expect(h.dev.writeCacheEnabled).toBe(true)
    const noCache = nvme({ volatileWriteCache: false })
    noCache.bringUp()
    expect(get(noCache, NVME_FEAT_VOLATILE_WC).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(set(noCache, NVME_FEAT_VOLATILE_WC, 1).status).toBe(NVME_SC_INVALID_FIELD | DNR)
  })

  it('07h number of queues: allocates what was asked (0-based) up to the maximum, fixed once I/O queues exist; QIDs above it are refused', () => {
    const h = nvme({ maxIoQueuePairs: 8 })
    h.bringUp()
    expect(get(h, NVME_FEAT_NUM_QUEUES).dw0).toBe((7 << 16) | 7)
    expect(set(h, NVME_FEAT_NUM_QUEUES, (63 << 16) | 1)).toMatchObject({ status: 0, dw0: (7 << 16) | 1 }) // 2 SQs, 8 CQs
    expect(get(h, NVME_FEAT_NUM_QUEUES).dw0).toBe((7 << 16) | 1)
    expect(set(h, NVME_FEAT_NUM_QUEUES, 0xffff).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(h.createPair(3, 4).sq.status).toBe(NVME_SC_QID_INVALID | DNR) // CQ 3 is fine, SQ 3 > NSQA 2
    expect(set(h, NVME_FEAT_NUM_QUEUES, 0).status).toBe(NVME_SC_CMD_SEQ_ERROR | DNR)
    // A controller reset returns the feature to its default.
    h.w(NVME_REG_CC, 0)
    h.run()
    h.bringUp()
    expect(get(h, NVME_FEAT_NUM_QUEUES).dw0).toBe((7 << 16) | 7)
  })

  it('08h interrupt coalescing: THR and TIME (100 µs units) are stored and read back', () => {
    const h = nvme()
    h.bringUp()
    expect(set(h, NVME_FEAT_IRQ_COALESCE, (5 << 8) | 3).status).toBe(0)
    expect(get(h, NVME_FEAT_IRQ_COALESCE).dw0).toBe((5 << 8) | 3)
    expect(get(h, NVME_FEAT_IRQ_COALESCE, 1).dw0).toBe(0)
  })

  it('errors: unknown FID INVALID_FIELD|DNR, SV FEATURE_NOT_SAVEABLE|DNR, NSID 1 FEATURE_NOT_PER_NS|DNR, SEL 4 INVALID_FIELD', () => {
    const h = nvme()
    h.bringUp()
    expect(get(h, 0x0c).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(set(h, 0x02, 0).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(set(h, NVME_FEAT_VOLATILE_WC, 1, { save: true }).status).toBe(NVME_SC_FEATURE_NOT_SAVEABLE | DNR)
    expect(set(h, NVME_FEAT_VOLATILE_WC, 1, { nsid: 1 }).status).toBe(NVME_SC_FEATURE_NOT_PER_NS | DNR)
    expect(set(h, NVME_FEAT_VOLATILE_WC, 1, { nsid: 7 }).status).toBe(NVME_SC_INVALID_NS | DNR)
    expect(set(h, NVME_FEAT_VOLATILE_WC, 1, { nsid: 0xffff_ffff }).status).toBe(0)
    expect(get(h, NVME_FEAT_VOLATILE_WC, 4).status).toBe(NVME_SC_INVALID_FIELD | DNR)
  })
})

describe('nvme: admin command errors', () => {
  it('unknown opcodes (and the unsupported AER, Abort, Get Log Page) are INVALID_OPCODE|DNR; SGLs and fused commands INVALID_FIELD', () => {
    const h = nvme()
    h.bringUp()
    expect(h.admin({ opcode: 0x7f }).status).toBe(NVME_SC_INVALID_OPCODE | DNR)
    expect(h.admin({ opcode: NVME_ADMIN_ASYNC_EVENT }).status).toBe(NVME_SC_INVALID_OPCODE | DNR)
    expect(h.admin({ opcode: NVME_ADMIN_IDENTIFY, flags: 0x40, prp1: IDBUF, cdw10: 1 }).status).toBe(NVME_SC_INVALID_FIELD | DNR)
    expect(h.admin({ opcode: NVME_ADMIN_IDENTIFY, flags: 0x01, prp1: IDBUF, cdw10: 1 }).status).toBe(NVME_SC_INVALID_FIELD)
    expect(h.errors.map((e) => e.message)).toEqual([
      'SQ 0 admin command (opcode 0x7f) (CID 1) failed with INVALID_OPCODE|DNR: admin opcode 0x7f is not supported',
      'SQ 0 admin command (opcode 0xc) (CID 2) failed with INVALID_OPCODE|DNR: admin opcode 0xc is not supported',
      'SQ 0 admin Identify (opcode 0x6) (CID 3) failed with INVALID_FIELD|DNR: PSDT 1: SGLs are not supported (Identify SGLS = 0), use PRPs',
      'SQ 0 admin Identify (opcode 0x6) (CID 4) failed with INVALID_FIELD: FUSE 1: fused operations are not supported',
    ])
    const lenient = nvme({ strict: false })
    lenient.bringUp()
    expect(lenient.admin({ opcode: 0x7f }).status).toBe(NVME_SC_INVALID_OPCODE | DNR)
    expect(lenient.errors).toEqual([])
  })
})
