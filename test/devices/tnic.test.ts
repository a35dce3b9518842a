// The tnic at the hardware level: registers, rings, interrupts, link and guest errors, driven
// through MMIO with descriptors written straight into RAM (no kernel). The datasheet is
// docs/devices/tnic.md.
import { describe, expect, it } from 'vitest'
import {
  IOMMU_READ,
  IOMMU_WRITE,
  MEMTX_ACCESS_ERROR,
  MEMTX_ERROR,
  MSIX_CAP_OFFSET,
  PCI_CLASS_REVISION,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_INTERRUPT_PIN,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
  PCI_VENDOR_ID,
  PciFunctionError,
  TNIC_CTRL,
  TNIC_CTRL_RST,
  TNIC_CTRL_SLU,
  TNIC_FAULT_DELAY_NS,
  TNIC_GORCH,
  TNIC_GORCL,
  TNIC_GOTCH,
  TNIC_GOTCL,
  TNIC_GPRC,
  TNIC_GPTC,
  TNIC_ICR,
  TNIC_ICR_INT_ASSERTED,
  TNIC_ICR_LSC,
  TNIC_ICR_RXDMT0,
  TNIC_ICR_RXO,
  TNIC_ICR_RXT0,
  TNIC_ICR_TXDW,
  TNIC_ICR_TXQE,
  TNIC_ICS,
  TNIC_IMC,
  TNIC_IMS,
  TNIC_ITR,
  TNIC_MPC,
  TNIC_MSIX_PBA,
  TNIC_MSIX_TABLE,
  TNIC_RAH0,
  TNIC_RAH_AV,
  TNIC_RAL0,
  TNIC_RCTL,
  TNIC_RCTL_BAM,
  TNIC_RCTL_BSEX,
  TNIC_RCTL_EN,
  TNIC_RCTL_LPE,
  TNIC_RCTL_MPE,
  TNIC_RCTL_RDMTS_QUAT,
  TNIC_RCTL_SECRC,
  TNIC_RCTL_SZ_256,
  TNIC_RCTL_UPE,
  TNIC_RDBAH,
  TNIC_RDBAL,
  TNIC_RDH,
  TNIC_RDLEN,
  TNIC_RDT,
  TNIC_RNBC,
  TNIC_RXD_ERR_CE,
  TNIC_RXD_ERR_RXE,
  TNIC_RXD_STAT_DD,
  TNIC_RXD_STAT_EOP,
  TNIC_STATUS,
  TNIC_STATUS_FD,
  TNIC_STATUS_LU,
  TNIC_STATUS_SPEED_1000,
  TNIC_TCTL,
  TNIC_TCTL_EN,
  TNIC_TCTL_PSP,
  TNIC_TDBAH,
  TNIC_TDBAL,
  TNIC_TDH,
  TNIC_TDLEN,
  TNIC_TDT,
  TNIC_TXD_CMD_DEXT,
  TNIC_TXD_CMD_EOP,
  TNIC_TXD_CMD_IFCS,
  TNIC_TXD_CMD_RS,
  TNIC_TXD_DTYP_D,
  TNIC_TXD_STAT_DD,
  TNIC_TX_MAX_FRAME,
  TnicDevice,
  type Arch,
  type EtherEndpoint,
  type EtherLink,
  type Machine,
  type TnicOptions,
} from '../../devices/index.js'
import { ethCrc32, TNIC_FAULT_RX_LENGTH } from '../../devices/net/tnic-rx.js'
import { enable, machine, RAM, ramBytes, runClock, type HwOptions } from '../helpers/hw.js'

const TXR = RAM + 0x1000 // TX ring
const RXR = RAM + 0x2000 // RX ring
const TXB = RAM + 0x10_0000 // TX buffers
const RXB = RAM + 0x20_0000 // RX buffers, 4 KiB apart
const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]
const PEER = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]
const BCAST = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff]

/** A link that records what the NIC sends and lets the test decide the carrier. */
class FakeLink implements EtherLink {
  carrier = true
  readonly sent: { frame: Uint8Array; time: number }[] = []
  readonly m: Machine
  constructor(m: Machine) {
    this.m = m
  }
  transmit(_from: EtherEndpoint, frame: Uint8Array): void {
    this.sent.push({ frame: frame.slice(), time: this.m.clock.now })
  }
}

function nic(opts: TnicOptions = {}, hw: HwOptions = {}) {
  const m = machine(hw)
  const dev = m.pci.add(new TnicDevice(opts))
  enable(dev)
  const errors: { message: string; details?: Record<string, number | string | boolean> }[] = []
  m.onGuestError = (_device, message, details) => errors.push(details === undefined ? { message } : { message, details })
  const link = new FakeLink(m)
  dev.attachLink(link)
  const w = (off: number, v: number): void => dev.mmioWrite(0, off, 4, v)
  const r = (off: number): number => dev.mmioRead(0, off, 4) as number
  return { m, dev, link, errors, w, r }
}
type Nic = ReturnType<typeof nic>

/** An Ethernet frame: destination, PEER as source, type 0x0800, then a pattern. */
function frame(dst: readonly number[], len: number, seed = 1): Uint8Array {
  const f = new Uint8Array(len)
  f.set(dst.slice(0, Math.min(6, len)))
  if (len > 6) f.set(PEER.slice(0, Math.min(6, len - 6)), 6)
  if (len > 13) f.set([0x08, 0x00], 12)
  for (let i = 14; i < len; i++) f[i] = (i * 13 + seed * 7) & 0xff
  return f
}

function txd(m: Machine, i: number, addr: number, len: number, cmd: number, extra: { cso?: number; status?: number } = {}): void {
  const b = new Uint8Array(16)
  const v = new DataView(b.buffer)
  v.setBigUint64(0, BigInt(addr), true)
  v.setUint16(8, len, true)
  b[10] = extra.cso ?? 0
  b[11] = cmd
  b[12] = extra.status ?? 0
  m.ram.write(TXR + 16 * i, b, 0, 16)
}

function rxd(m: Machine, i: number, addr: number): void {
  const b = new Uint8Array(16)
  new DataView(b.buffer).setBigUint64(0, BigInt(addr), true)
  m.ram.write(RXR + 16 * i, b, 0, 16)
}

function desc(m: Machine, base: number, i: number) {
  const b = ramBytes(m, base + 16 * i, 16)
  const v = new DataView(b.buffer)
  return { addr: Number(v.getBigUint64(0, true)), length: v.getUint16(8, true), b10: b[10]!, cmd: b[11]!, status: b[12]!, errors: b[13]!, special: v.getUint16(14, true) }
}

/** TX ring of n descriptors at TXR, enabled (PSP unless told otherwise); link up. */
function txRing(hw: Nic, n = 8, tctl = TNIC_TCTL_EN | TNIC_TCTL_PSP): void {
  hw.w(TNIC_CTRL, TNIC_CTRL_SLU)
  hw.w(TNIC_TDBAL, TXR)
  hw.w(TNIC_TDBAH, 0)
  hw.w(TNIC_TDLEN, n * 16)
  hw.w(TNIC_TDH, 0)
  hw.w(TNIC_TDT, 0)
  hw.w(TNIC_TCTL, tctl)
  hw.r(TNIC_ICR) // the LSC of link-up
}

/** RX ring of n descriptors at RXR with 4 KiB buffers, `posted` of them given to the device; link up. */
function rxRing(hw: Nic, n = 8, rctl = TNIC_RCTL_EN | TNIC_RCTL_BAM | TNIC_RCTL_SECRC, posted = n - 1): void {
  hw.w(TNIC_CTRL, TNIC_CTRL_SLU)
  for (let i = 0; i < n; i++) rxd(hw.m, i, RXB + i * 0x1000)
  hw.w(TNIC_RDBAL, RXR)
  hw.w(TNIC_RDBAH, 0)
  hw.w(TNIC_RDLEN, n * 16)
  hw.w(TNIC_RDH, 0)
  hw.w(TNIC_RDT, 0)
  hw.w(TNIC_RCTL, rctl)
  hw.w(TNIC_RDT, posted)
  hw.r(TNIC_ICR) // the LSC of link-up
}

function enableMsix(hw: Nic): number {
  const hwirq = hw.m.intc.allocMsiVectors(1)
  hw.dev.mmioWrite(0, TNIC_MSIX_TABLE + PCI_MSIX_ENTRY_DATA, 4, hwirq)
  hw.dev.mmioWrite(0, TNIC_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
  hw.dev.configWrite(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE)
  return hwirq
}

/** Bitwise CRC-32 (IEEE 802.3), independent of the device's table-driven one. */
function crc32Bitwise(b: Uint8Array): number {
  let c = 0xffff_ffff
  for (const x of b) {
    c ^= x
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb8_8320 : c >>> 1
  }
  return (c ^ 0xffff_ffff) >>> 0
}

describe('tnic: identity and options', () => {
  it('is an Ethernet PCI function with the datasheet ids, a 128 KiB BAR, INTA and 1 MSI-X vector above the registers', () => {
    const { dev, r } = nic()
    expect(dev.configRead(PCI_VENDOR_ID, 2)).toBe(0x1de5)
    expect(dev.configRead(PCI_DEVICE_ID, 2)).toBe(0x0e10)
    expect(dev.configRead(PCI_CLASS_REVISION, 4) >>> 8).toBe(0x020000)
    expect(dev.configRead(PCI_INTERRUPT_PIN, 1)).toBe(1)
    expect(dev.bars[0]!.size).toBe(0x2_0000)
    expect(dev.msixVectors).toBe(1)
    expect(dev.configRead(MSIX_CAP_OFFSET + PCI_MSIX_TABLE, 4)).toBe(0x1_c000)
    expect(dev.configRead(MSIX_CAP_OFFSET + PCI_MSIX_PBA, 4)).toBe(0x1_d000)
    expect(dev.name).toBe('tnic0')
    expect(dev.clock).not.toBeNull()
    // The MAC address is in RA[0] after reset, as e1000 loads it from its EEPROM.
    expect(r(TNIC_RAL0)).toBe(0x1200_5452)
    expect(r(TNIC_RAH0)).toBe((TNIC_RAH_AV | 0x5634) >>> 0)
    expect([...dev.mac]).toEqual(MAC)
  })

  it('derives the default MAC from the name, or takes one; bad options throw naming them', () => {
    expect([...new TnicDevice({ name: 'tnic3' }).mac]).toEqual([0x52, 0x54, 0x00, 0x12, 0x34, 0x59])
    expect([...new TnicDevice({ name: 'eth' }).mac]).toEqual(MAC)
    expect([...new TnicDevice({ mac: '02-aa-bb-cc-dd-ee' }).mac]).toEqual([2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee])
    expect([...new TnicDevice({ mac: new Uint8Array([2, 1, 2, 3, 4, 5]) }).mac]).toEqual([2, 1, 2, 3, 4, 5])
    expect(() => new TnicDevice({ mac: '52:54:00:12:34' })).toThrow(PciFunctionError)
    expect(() => new TnicDevice({ mac: '52:54:00:12:34' })).toThrow(/mac must be six hex bytes/)
    expect(() => new TnicDevice({ mac: '01:00:5e:00:00:01' })).toThrow(/mac 01:00:5e:00:00:01 is a multicast address/)
    expect(() => new TnicDevice({ txLatencyNs: -1 })).toThrow(/txLatencyNs must be a non-negative number/)
    expect(() => new TnicDevice({ rxLatencyNs: Number.NaN })).toThrow(/rxLatencyNs/)
    expect(() => new TnicDevice({ strict: 'yes' as unknown as boolean })).toThrow(/strict must be a boolean/)
  })
})

describe('tnic: registers', () => {
  it('ICR: ICS sets causes, a read returns them (INT_ASSERTED when a masked-in cause is pending) and clears them', () => {
    const { w, r, dev, errors } = nic()
    w(TNIC_ICS, TNIC_ICR_TXDW | TNIC_ICR_RXO)
    expect(r(TNIC_ICS)).toBe(TNIC_ICR_TXDW | TNIC_ICR_RXO) // ICS reads as ICR, without clearing
    expect(dev.reg('ICR')).toBe(TNIC_ICR_TXDW | TNIC_ICR_RXO)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_TXDW | TNIC_ICR_RXO) // nothing masked in: no INT_ASSERTED
    expect(r(TNIC_ICR)).toBe(0)
    w(TNIC_IMS, TNIC_ICR_RXO)
    w(TNIC_ICS, TNIC_ICR_TXDW)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_TXDW) // pending but masked out
    w(TNIC_ICS, TNIC_ICR_RXO | TNIC_ICR_TXQE)
    expect(r(TNIC_ICR)).toBe((TNIC_ICR_INT_ASSERTED | TNIC_ICR_RXO | TNIC_ICR_TXQE) >>> 0)
    expect(r(TNIC_ICR)).toBe(0)
    // Writing ICR clears the bits written (W1C).
    w(TNIC_ICS, TNIC_ICR_TXDW | TNIC_ICR_TXQE | TNIC_ICR_LSC)
    w(TNIC_ICR, TNIC_ICR_TXQE)
    expect(dev.reg('ICR')).toBe(TNIC_ICR_TXDW | TNIC_ICR_LSC)
    expect(errors).toEqual([])
  })

  it('IMS ORs into the mask and reads it back, IMC clears; the INTx line follows ICR & IMS', () => {
    const { w, r, m, dev } = nic()
    w(TNIC_IMS, TNIC_ICR_RXT0)
    w(TNIC_IMS, TNIC_ICR_LSC)
    expect(r(TNIC_IMS)).toBe(TNIC_ICR_RXT0 | TNIC_ICR_LSC)
    w(TNIC_ICS, TNIC_ICR_TXDW)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false) // masked out
    w(TNIC_IMS, TNIC_ICR_TXDW) // unmasking a pending cause raises
    expect(m.intc.isAsserted(dev.intxLine)).toBe(true)
    expect(dev.irqAsserted).toBe(true)
    w(TNIC_IMC, TNIC_ICR_TXDW)
    expect(r(TNIC_IMS)).toBe(TNIC_ICR_RXT0 | TNIC_ICR_LSC)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false) // masking it lowers the line
    w(TNIC_IMS, TNIC_ICR_TXDW)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(true)
    expect(r(TNIC_ICR) & TNIC_ICR_TXDW).toBe(TNIC_ICR_TXDW)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false) // the ICR read lowers it
    expect(dev.stats.interrupts).toBe(2)
  })

  it('CTRL.RST resets the MAC: registers, RA0 from the MAC, pending work, the interrupt; RST reads back 0', () => {
    const hw = nic()
    const { w, r, m, dev, link } = hw
    txRing(hw)
    m.ram.write(TXB, frame(PEER, 64), 0, 64)
    txd(m, 0, TXB, 64, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_RS)
    w(TNIC_TDT, 1) // a walk is now scheduled
    w(TNIC_RAL0, 0x1234_5678)
    w(TNIC_IMS, TNIC_ICR_LSC)
    w(TNIC_ITR, 100)
    w(TNIC_ICS, TNIC_ICR_LSC)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(true)
    w(TNIC_CTRL, TNIC_CTRL_RST | TNIC_CTRL_SLU)
    expect(r(TNIC_CTRL)).toBe(0)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false)
    for (const reg of [TNIC_ICR, TNIC_IMS, TNIC_ITR, TNIC_TCTL, TNIC_TDBAL, TNIC_TDLEN, TNIC_TDH, TNIC_TDT]) expect(r(reg)).toBe(0)
    expect(r(TNIC_RAL0)).toBe(0x1200_5452)
    expect(r(TNIC_STATUS) & TNIC_STATUS_LU).toBe(0) // SLU is clear after reset
    runClock(m)
    expect(link.sent).toEqual([]) // the scheduled walk was cancelled
    expect(desc(m, TXR, 0).status).toBe(0)
    expect(dev.stats.resets).toBe(1)
  })

  it('STATUS: FD and 1000 Mb/s always, LU = CTRL.SLU && carrier; each LU change raises LSC', () => {
    const { w, r, dev, link } = nic()
    expect(r(TNIC_STATUS)).toBe(TNIC_STATUS_FD | TNIC_STATUS_SPEED_1000)
    expect(dev.linkUp).toBe(false)
    w(TNIC_CTRL, TNIC_CTRL_SLU)
    expect(r(TNIC_STATUS)).toBe(TNIC_STATUS_FD | TNIC_STATUS_SPEED_1000 | TNIC_STATUS_LU)
    expect(dev.linkUp).toBe(true)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_LSC)
    link.carrier = false
    dev.carrierChanged(false)
    expect(r(TNIC_STATUS) & TNIC_STATUS_LU).toBe(0)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_LSC)
    dev.carrierChanged(false) // no change, no cause
    expect(r(TNIC_ICR)).toBe(0)
    dev.carrierChanged(true)
    expect(dev.linkUp).toBe(true)
    dev.attachLink(null) // unplugged: no carrier
    expect(dev.carrier).toBe(false)
    expect(dev.link).toBeNull()
    expect(dev.stats.linkChanges).toBe(4)
  })

  it('ring registers: lengths keep bits 19:7, bases bits 31:4, indexes 16 bits (the values QEMU keeps)', () => {
    const { w, r } = nic({ strict: false })
    w(TNIC_RDLEN, 0x1064)
    w(TNIC_TDLEN, 0x123_4580)
    w(TNIC_RDBAL, 0x4000_100f)
    w(TNIC_TDBAL, 0x4000_2008)
    w(TNIC_RDBAH, 0x8)
    w(TNIC_RDH, 0x1_0003)
    w(TNIC_TDT, 0x2_0005)
    expect([r(TNIC_RDLEN), r(TNIC_TDLEN), r(TNIC_RDBAL), r(TNIC_TDBAL), r(TNIC_RDBAH), r(TNIC_RDH), r(TNIC_TDT)]).toEqual([
      0x1000, 0x3_4580, 0x4000_1000, 0x4000_2000, 8, 3, 5,
    ])
  })

  it('unimplemented offsets read 0; only 32-bit accesses reach registers', () => {
    const { dev, w, r } = nic({ strict: false })
    w(TNIC_ITR, 0x1234)
    expect(r(0x5200)).toBe(0)
    expect(dev.mmioRead(0, TNIC_ITR, 2)).toBe(0)
    dev.mmioWrite(0, TNIC_ITR, 2, 0x55)
    dev.mmioWrite(0, TNIC_ITR + 1, 1, 0x55)
    expect(r(TNIC_ITR)).toBe(0x1234)
    expect(dev.mmioRead(0, TNIC_ITR, 8)).toBe(0x1234n) // a 64-bit access is two 32-bit ones
  })
})

describe.each(['arm64', 'x86_64'] as Arch[])('tnic on %s: transmit', (arch) => {
  it('sends a one-descriptor frame txLatencyNs after TDT, writes DD into the status byte only, raises TXDW | TXQE', () => {
    const hw = nic({}, { arch })
    const { m, w, r, link, dev } = hw
    txRing(hw)
    const f = frame(PEER, 100)
    m.ram.write(TXB, f, 0, 100)
    txd(m, 0, TXB, 100, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_IFCS | TNIC_TXD_CMD_RS, { cso: 0x77 })
    const before = ramBytes(m, TXR, 16)
    m.clock.now = 10_000
    w(TNIC_TDT, 1)
    runClock(m, 10_499)
    expect(link.sent).toEqual([])
    expect(r(TNIC_TDH)).toBe(0)
    runClock(m)
    expect(link.sent).toEqual([{ frame: f, time: 10_500 }])
    const after = ramBytes(m, TXR, 16)
    expect(after[12]).toBe(TNIC_TXD_STAT_DD)
    after[12] = 0
    expect(after).toEqual(before) // nothing but the status byte changed
    expect(r(TNIC_TDH)).toBe(1)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_TXDW | TNIC_ICR_TXQE)
    expect(r(TNIC_GPTC)).toBe(1)
    expect(r(TNIC_GPTC)).toBe(0) // read-to-clear
    expect(r(TNIC_GOTCL)).toBe(104) // FCS counted
    expect(r(TNIC_GOTCL)).toBe(0)
    expect(dev.stats).toMatchObject({ txFrames: 1, txBytes: 100, txDescriptors: 1 })
  })

  it('gathers a frame from several descriptors; DD only where RS is set; no RS: no TXDW, still TXQE', () => {
    const hw = nic({}, { arch })
    const { m, w, r, link } = hw
    txRing(hw)
    const f = frame(PEER, 1514)
    m.ram.write(TXB, f.subarray(0, 14), 0, 14)
    m.ram.write(TXB + 0x1000, f.subarray(14, 1000), 0, 986)
    m.ram.write(TXB + 0x3000, f.subarray(1000), 0, 514)
    txd(m, 0, TXB, 14, 0)
    txd(m, 1, TXB + 0x1000, 986, TNIC_TXD_CMD_IFCS)
    txd(m, 2, TXB + 0x3000, 514, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_IFCS | TNIC_TXD_CMD_RS)
    w(TNIC_TDT, 3)
    runClock(m)
    expect(link.sent.map((s) => s.frame)).toEqual([f])
    expect([0, 1, 2].map((i) => desc(m, TXR, i).status)).toEqual([0, 0, TNIC_TXD_STAT_DD])
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_TXDW | TNIC_ICR_TXQE)
    // Two more frames without RS.
    m.ram.write(TXB + 0x5000, frame(PEER, 60, 2), 0, 60)
    txd(m, 3, TXB + 0x5000, 60, TNIC_TXD_CMD_EOP)
    txd(m, 4, TXB + 0x5000, 60, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 5)
    runClock(m)
    expect(link.sent).toHaveLength(3)
    expect([3, 4].map((i) => desc(m, TXR, i).status)).toEqual([0, 0])
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_TXQE)
    expect(r(TNIC_TDH)).toBe(5)
  })

  it('pads short frames to 60 bytes with zeroes when TCTL.PSP is set, and not without it', () => {
    const hw = nic({}, { arch })
    const { m, w, link } = hw
    txRing(hw)
    m.ram.write(TXB, frame(PEER, 200, 9), 0, 200) // leaves non-zero bytes in the staging buffer
    txd(m, 0, TXB, 200, TNIC_TXD_CMD_EOP)
    const short = frame(PEER, 42, 5)
    m.ram.write(TXB + 0x1000, short, 0, 42)
    txd(m, 1, TXB + 0x1000, 42, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 2)
    runClock(m)
    const padded = new Uint8Array(60)
    padded.set(short)
    expect(link.sent[1]!.frame).toEqual(padded)
    w(TNIC_TCTL, TNIC_TCTL_EN) // PSP off
    txd(m, 2, TXB + 0x1000, 42, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 3)
    runClock(m)
    expect(link.sent[2]!.frame).toEqual(short)
  })

  it('re-reads each descriptor when it processes it, and keeps a half-gathered frame until EOP arrives', () => {
    const hw = nic({}, { arch })
    const { m, w, r, link } = hw
    txRing(hw)
    const f = frame(PEER, 300)
    m.ram.write(TXB, f, 0, 300)
    txd(m, 0, TXB, 100, 0)
    w(TNIC_TDT, 1)
    txd(m, 0, TXB, 150, TNIC_TXD_CMD_RS) // changed after the doorbell, before the walk
    runClock(m)
    expect(link.sent).toEqual([])
    expect(r(TNIC_TDH)).toBe(1)
    expect(desc(m, TXR, 0).status).toBe(TNIC_TXD_STAT_DD)
    expect(hw.dev.dumpRings()).toContain('partial frame: 150 bytes gathered, waiting for EOP')
    txd(m, 1, TXB + 150, 150, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 2)
    runClock(m)
    expect(link.sent.map((s) => s.frame)).toEqual([f])
  })

  it('reads each descriptor with one 16-byte DMA, then its buffer, and writes back one byte', () => {
    const hw = nic({}, { arch })
    const { m, w } = hw
    txRing(hw)
    txd(m, 0, TXB, 64, 0)
    txd(m, 1, TXB + 0x800, 64, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_RS)
    const rec = m.tracer.record(['dma'])
    w(TNIC_TDT, 2)
    runClock(m)
    rec.stop()
    expect(rec.records.map((x) => (x.event === 'dma' ? `${x.data.write ? 'W' : 'R'} ${(x.data.bus - RAM).toString(16)}+${x.data.len}` : ''))).toEqual([
      'R 1000+16',
      'R 100000+64',
      'R 1010+16',
      'R 100800+64',
      'W 101c+1',
    ])
  })

  it('completes frames while the link is down without sending them; TCTL.EN clear: nothing until it is set', () => {
    const hw = nic({}, { arch })
    const { m, w, r, link, dev } = hw
    txRing(hw, 8, 0) // TX disabled
    txd(m, 0, TXB, 64, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_RS)
    w(TNIC_TDT, 1)
    runClock(m)
    expect(r(TNIC_TDH)).toBe(0)
    dev.carrierChanged(false)
    w(TNIC_TCTL, TNIC_TCTL_EN) // enabling starts the walk
    runClock(m)
    expect(r(TNIC_TDH)).toBe(1)
    expect(desc(m, TXR, 0).status).toBe(TNIC_TXD_STAT_DD)
    expect(link.sent).toEqual([])
    expect(r(TNIC_GPTC)).toBe(0)
    expect(dev.stats.txNoCarrier).toBe(1)
  })
})

describe.each(['arm64', 'x86_64'] as Arch[])('tnic on %s: receive', (arch) => {
  it('writes a frame rxLatencyNs after it arrives: buffer, length, DD|EOP, RDH, RXT0, GPRC/GORC', () => {
    const hw = nic({}, { arch })
    const { m, r, dev } = hw
    rxRing(hw)
    const f = frame(MAC, 128)
    m.clock.now = 5000
    dev.receiveFrame(f)
    expect(dev.rxPending).toBe(1)
    runClock(m, 5199)
    expect(desc(m, RXR, 0).status).toBe(0)
    runClock(m)
    expect(m.clock.now).toBe(5200)
    expect(ramBytes(m, RXB, 128)).toEqual(f)
    expect(desc(m, RXR, 0)).toMatchObject({ addr: RXB, length: 128, status: TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP, errors: 0, special: 0 })
    expect(r(TNIC_RDH)).toBe(1)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_RXT0)
    expect(r(TNIC_GPRC)).toBe(1)
    expect(r(TNIC_GORCL)).toBe(132)
    expect([r(TNIC_GPRC), r(TNIC_GORCL)]).toEqual([0, 0])
    expect(dev.stats).toMatchObject({ rxFrames: 1, rxBytes: 128, rxDescriptors: 1 })
  })

  it('with SECRC clear hands the driver the frame plus its 4-byte CRC-32 (FCS)', () => {
    const hw = nic({}, { arch })
    const { m, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_EN)
    const f = frame(MAC, 100)
    dev.receiveFrame(f)
    runClock(m)
    expect(desc(m, RXR, 0).length).toBe(104)
    const crc = crc32Bitwise(f)
    expect([...ramBytes(m, RXB + 100, 4)]).toEqual([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24])
    expect(ethCrc32(new TextEncoder().encode('123456789'))).toBe(0xcbf4_3926)
  })

  it('spreads a frame longer than the buffer size over descriptors, EOP on the last', () => {
    const hw = nic({}, { arch })
    const { m, r, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_SZ_256)
    const f = frame(MAC, 600)
    dev.receiveFrame(f)
    runClock(m)
    expect([0, 1, 2, 3].map((i) => desc(m, RXR, i).length)).toEqual([256, 256, 88, 0])
    expect([0, 1, 2, 3].map((i) => desc(m, RXR, i).status)).toEqual([TNIC_RXD_STAT_DD, TNIC_RXD_STAT_DD, TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP, 0])
    const got = new Uint8Array(600)
    got.set(ramBytes(m, RXB, 256), 0)
    got.set(ramBytes(m, RXB + 0x1000, 256), 256)
    got.set(ramBytes(m, RXB + 0x2000, 88), 512)
    expect(got).toEqual(f)
    expect(r(TNIC_RDH)).toBe(3)
    expect(ramBytes(m, RXB + 0x2000 + 88, 4)).toEqual(new Uint8Array(4)) // not a byte beyond
  })

  it('writes the descriptor body and then, separately, the status byte with DD', () => {
    const hw = nic({}, { arch })
    const { m, dev } = hw
    rxRing(hw)
    const seen: string[] = []
    m.tracer.on('dma', (e) => {
      const off = e.bus - RAM
      // At each write, what does memory hold now? (the event follows the transaction)
      const d = desc(m, RXR, 0)
      seen.push(`${e.write ? 'W' : 'R'} ${off.toString(16)}+${e.len} len=${d.length} status=${d.status}`)
    })
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect(seen).toEqual([
      'R 2000+16 len=0 status=0', // the descriptor
      'W 200000+64 len=0 status=0', // the buffer
      'W 2008+8 len=64 status=2', // the body: length, csum, status (EOP, no DD), errors, special
      'W 200c+1 len=64 status=3', // then DD
    ])
  })

  it('RDH == RDT: the frame is dropped, RNBC and MPC count it, cause RXO, nothing is written', () => {
    const hw = nic({}, { arch })
    const { m, r, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC, 1)
    dev.receiveFrame(frame(MAC, 64, 1))
    dev.receiveFrame(frame(MAC, 64, 2))
    const writes: number[] = []
    m.tracer.on('dma', (e) => (e.write ? writes.push(e.bus) : undefined))
    runClock(m)
    expect(writes).toHaveLength(3) // the first frame only
    expect(r(TNIC_RDH)).toBe(1)
    expect(r(TNIC_ICR)).toBe(TNIC_ICR_RXT0 | TNIC_ICR_RXDMT0 | TNIC_ICR_RXO)
    expect([r(TNIC_RNBC), r(TNIC_MPC), r(TNIC_GPRC)]).toEqual([1, 1, 1])
    expect(desc(m, RXR, 1).status).toBe(0)
    // A frame that needs more descriptors than are free is dropped whole.
    hw.w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_SZ_256 | TNIC_RCTL_LPE)
    hw.w(TNIC_RDT, 3) // 2 free: 512 bytes
    dev.receiveFrame(frame(MAC, 513))
    runClock(m)
    expect([r(TNIC_RDH), r(TNIC_RNBC), r(TNIC_MPC)]).toEqual([1, 1, 1])
    expect(dev.stats.rxNoBuffers).toBe(2)
  })

  it('RXDMT0 when the free descriptors fall to RDLEN/16 >> (RDMTS + 1)', () => {
    const causes = (rctl: number): number[] => {
      const hw = nic({}, { arch })
      rxRing(hw, 16, TNIC_RCTL_EN | TNIC_RCTL_SECRC | rctl, 15)
      const out: number[] = []
      for (let i = 0; i < 14; i++) {
        hw.dev.receiveFrame(frame(MAC, 64, i))
        runClock(hw.m)
        out.push(hw.r(TNIC_ICR) & TNIC_ICR_RXDMT0 ? 15 - i - 1 : -1) // free descriptors left when RXDMT0 was set
      }
      return out.filter((x) => x >= 0)
    }
    expect(causes(0)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]) // 1/2: free <= 8
    expect(causes(TNIC_RCTL_RDMTS_QUAT)).toEqual([4, 3, 2, 1]) // 1/4: free <= 4
  })

  it('filters on the destination: RA0 (with AV), broadcast with BAM, multicast with MPE, anything with UPE', () => {
    const accepted = (rctl: number, dst: readonly number[], setup?: (hw: Nic) => void): boolean => {
      const hw = nic({}, { arch })
      rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | rctl)
      setup?.(hw)
      hw.dev.receiveFrame(frame(dst, 64))
      runClock(hw.m)
      return hw.r(TNIC_RDH) === 1
    }
    const other = [0x02, 0x99, 0, 0, 0, 1]
    const mcast = [0x01, 0x00, 0x5e, 0, 0, 1]
    expect(accepted(0, MAC)).toBe(true)
    expect(accepted(0, other)).toBe(false)
    expect(accepted(TNIC_RCTL_UPE, other)).toBe(true)
    expect(accepted(0, BCAST)).toBe(false)
    expect(accepted(TNIC_RCTL_BAM, BCAST)).toBe(true)
    expect(accepted(TNIC_RCTL_BAM, mcast)).toBe(false)
    expect(accepted(TNIC_RCTL_MPE, mcast)).toBe(true)
    expect(accepted(0, MAC, (hw) => hw.w(TNIC_RAH0, 0x5634))).toBe(false) // AV clear
    expect(accepted(0, other, (hw) => {
        hw.w(TNIC_RAL0, 0x0000_9902)
        hw.w(TNIC_RAH0, TNIC_RAH_AV | 0x0100)
      })).toBe(true)
    const hw = nic({}, { arch })
    rxRing(hw)
    hw.dev.receiveFrame(frame(other, 64))
    expect(hw.dev.stats.rxFiltered).toBe(1)
    expect(hw.dev.rxPending).toBe(0)
  })

  it('ignores frames with RCTL.EN clear or the link down', () => {
    const hw = nic({}, { arch })
    const { m, r, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_SECRC)
    dev.receiveFrame(frame(MAC, 64))
    hw.w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC)
    dev.carrierChanged(false)
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect(r(TNIC_RDH)).toBe(0)
    expect(dev.stats.rxDisabled).toBe(2)
  })

  it('pads short frames to 60 bytes; drops longer than 1518 without LPE; a null buffer address is skipped', () => {
    const hw = nic({}, { arch })
    const { m, r, dev } = hw
    rxRing(hw)
    m.ram.write(RXB, new Uint8Array(64).fill(0xaa), 0, 64)
    dev.receiveFrame(frame(MAC, 42))
    runClock(m)
    expect(desc(m, RXR, 0).length).toBe(60)
    expect(ramBytes(m, RXB + 42, 18)).toEqual(new Uint8Array(18))
    dev.receiveFrame(frame(MAC, 1519))
    runClock(m)
    expect(dev.stats.rxOversize).toBe(1)
    hw.w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_LPE)
    rxd(m, 1, 0)
    dev.receiveFrame(frame(MAC, 3000))
    runClock(m)
    expect([1, 2, 3].map((i) => [desc(m, RXR, i).length, desc(m, RXR, i).status])).toEqual([
      [0, TNIC_RXD_STAT_DD],
      [2048, TNIC_RXD_STAT_DD],
      [952, TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP],
    ])
    expect(r(TNIC_RDH)).toBe(4)
  })
})

describe('tnic: interrupts', () => {
  it('MSI-X: one message per rising edge of ICR & IMS; none while it stays high; ICR read re-arms', () => {
    const hw = nic()
    const { m, w, r, dev } = hw
    const hwirq = enableMsix(hw)
    w(TNIC_IMS, TNIC_ICR_RXT0 | TNIC_ICR_TXDW)
    w(TNIC_ICS, TNIC_ICR_RXT0)
    expect(m.intc.stats.msi).toBe(1)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false)
    w(TNIC_ICS, TNIC_ICR_TXDW) // still high: no new edge
    expect(m.intc.stats.msi).toBe(1)
    m.intc.ack(hwirq)
    expect(r(TNIC_ICR)).toBe((TNIC_ICR_INT_ASSERTED | TNIC_ICR_RXT0 | TNIC_ICR_TXDW) >>> 0)
    w(TNIC_ICS, TNIC_ICR_TXDW)
    expect(m.intc.stats.msi).toBe(2)
    expect(m.intc.nextPending()).toBe(hwirq)
    // A masked vector: the PBA bit, then the message on unmask.
    r(TNIC_ICR)
    m.intc.ack(hwirq)
    dev.mmioWrite(0, TNIC_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 1)
    w(TNIC_ICS, TNIC_ICR_RXT0)
    expect(dev.mmioRead(0, TNIC_MSIX_PBA, 4)).toBe(1)
    dev.mmioWrite(0, TNIC_MSIX_TABLE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, 0)
    expect(m.intc.stats.msi).toBe(3)
  })

  it('ITR: an edge within ITR x 256 ns of the previous one waits for the interval to end; ITR 0 never waits', () => {
    /** Raises RXT0 at each time (the driver reads ICR 10 ns later); returns when messages went out. */
    const messages = (itr: number, at: readonly number[]): { times: number[]; deferred: number } => {
      const hw = nic()
      const { m, w, r } = hw
      enableMsix(hw)
      const times: number[] = []
      m.tracer.on('irq', (e) => (e.kind === 'msi' ? times.push(e.time) : undefined))
      w(TNIC_ITR, itr)
      w(TNIC_IMS, TNIC_ICR_RXT0)
      for (const t of at) {
        runClock(m, t)
        m.clock.now = t
        if (hw.dev.irqAsserted) r(TNIC_ICR) // a held-back message went out meanwhile: handle it
        w(TNIC_ICS, TNIC_ICR_RXT0)
        runClock(m, t + 10)
        m.clock.now = t + 10
        if (hw.dev.irqAsserted) r(TNIC_ICR) // handled; a held-back cause stays in ICR
      }
      runClock(m)
      return { times, deferred: hw.dev.stats.irqDeferred }
    }
    expect(messages(0, [1000, 1200, 1400, 1410])).toEqual({ times: [1000, 1200, 1400, 1410], deferred: 0 })
    // ITR 4 = 1024 ns. 1000: out, interval to 2024. 1200: held until 2024, which starts an
    // interval to 3048. 3000: held until 3048 (interval to 4072). 5000: out at once.
    expect(messages(4, [1000, 1200, 3000, 5000])).toEqual({ times: [1000, 2024, 3048, 5000], deferred: 2 })
  })

  it('LSC on carrier change reaches the INTx line', () => {
    const { m, w, r, dev } = nic()
    w(TNIC_CTRL, TNIC_CTRL_SLU)
    r(TNIC_ICR)
    w(TNIC_IMS, TNIC_ICR_LSC)
    dev.carrierChanged(false)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(true)
    expect(r(TNIC_ICR)).toBe((TNIC_ICR_INT_ASSERTED | TNIC_ICR_LSC) >>> 0)
    expect(m.intc.isAsserted(dev.intxLine)).toBe(false)
  })
})

describe('tnic: guest errors (strict mode)', () => {
  const cases: [string, (hw: Nic) => void, string, Record<string, number | string | boolean>][] = [
    ['RDLEN not a multiple of 128', (hw) => hw.w(TNIC_RDLEN, 0x64), 'RDLEN 0x64 is not a non-zero multiple of 128', { register: 'RDLEN', value: 0x64 }],
    ['TDLEN zero', (hw) => hw.w(TNIC_TDLEN, 0), 'TDLEN 0x0 is not a non-zero multiple of 128', { register: 'TDLEN', value: 0 }],
    ['RDBAL misaligned', (hw) => hw.w(TNIC_RDBAL, RAM + 8), 'RDBAL 0x40000008 is not 16-byte aligned', { register: 'RDBAL', value: RAM + 8 }],
    ['TDBAL misaligned', (hw) => hw.w(TNIC_TDBAL, RAM + 4), 'TDBAL 0x40000004 is not 16-byte aligned', { register: 'TDBAL', value: RAM + 4 }],
    ['RDT beyond the ring', (hw) => {
        hw.w(TNIC_RDLEN, 128)
        hw.w(TNIC_RDT, 8)
      }, 'RDT 0x8 is beyond the ring (8 descriptors)', { register: 'RDT', value: 8, descriptors: 8 }],
    ['TDT beyond the ring', (hw) => {
        hw.w(TNIC_TDLEN, 256)
        hw.w(TNIC_TDT, 0x20)
      }, 'TDT 0x20 is beyond the ring (16 descriptors)', { register: 'TDT', value: 0x20, descriptors: 16 }],
    ['RDH beyond the ring', (hw) => hw.w(TNIC_RDH, 1), 'RDH 0x1 is beyond the ring (0 descriptors)', { register: 'RDH', value: 1, descriptors: 0 }],
    ['TDH beyond the ring', (hw) => {
        hw.w(TNIC_TDLEN, 128)
        hw.w(TNIC_TDH, 9)
      }, 'TDH 0x9 is beyond the ring (8 descriptors)', { register: 'TDH', value: 9, descriptors: 8 }],
    [
      'RDT == RDH after a full ring',
      (hw) => {
        rxRing(hw)
        hw.w(TNIC_RDT, 0)
      },
      'RDT 0x0 == RDH: the driver filled every descriptor; one must stay empty',
      { register: 'RDT', value: 0 },
    ],
    [
      'TDT == TDH after a full ring',
      (hw) => {
        txRing(hw)
        hw.w(TNIC_TCTL, 0)
        hw.w(TNIC_TDT, 3)
        hw.w(TNIC_TCTL, TNIC_TCTL_EN)
        hw.w(TNIC_TDT, 0)
      },
      'TDT 0x0 == TDH: the driver filled every descriptor; one must stay empty',
      { register: 'TDT', value: 0 },
    ],
    ['RCTL.BSEX', (hw) => hw.w(TNIC_RCTL, TNIC_RCTL_BSEX), 'RCTL 0x2000000 sets BSEX: buffer size extension is not supported (BSIZE is 2048, 1024, 512 or 256)', { register: 'RCTL', value: TNIC_RCTL_BSEX }],
    ['RCTL.RDMTS 3', (hw) => hw.w(TNIC_RCTL, 0x300), 'RCTL 0x300: RDMTS 3 is reserved', { register: 'RCTL', value: 0x300 }],
    ['a 16-bit read', (hw) => hw.dev.mmioRead(0, TNIC_RDT, 2), '2-byte read of RDT (0x2818): tnic registers take aligned 32-bit accesses only', { offset: TNIC_RDT, size: 2, write: false }],
    ['a byte write', (hw) => hw.dev.mmioWrite(0, TNIC_ICR + 1, 1, 5), '1-byte write of 0x5 to ICR (0xc1): tnic registers take aligned 32-bit accesses only', { offset: TNIC_ICR + 1, size: 1, write: true }],
    ['an unimplemented read', (hw) => hw.r(0x5200), 'read of unimplemented register 0x5200', { offset: 0x5200 }],
    ['an unimplemented write', (hw) => hw.w(0x2820, 7), 'write of 0x7 to unimplemented register 0x2820', { offset: 0x2820, value: 7 }],
    ['a write to STATUS', (hw) => hw.w(TNIC_STATUS, 2), 'write of 0x2 to read-only register STATUS (0x8)', { register: 'STATUS', value: 2 }],
    ['a write to a statistic', (hw) => hw.w(TNIC_GPRC, 0), 'write of 0x0 to read-only register GPRC (0x4074)', { register: 'GPRC', value: 0 }],
    ['an IMC read', (hw) => hw.r(TNIC_IMC), 'read of write-only register IMC (0xd8)', { register: 'IMC' }],
  ]
  for (const [name, act, message, details] of cases) {
    it(`${name}: "${message}"`, () => {
      const hw = nic()
      act(hw)
      expect(hw.errors).toEqual([{ message, details }])
      const quiet = nic({ strict: false })
      act(quiet)
      expect(quiet.errors).toEqual([])
    })
  }

  it('DEXT: the descriptor is skipped (no data, DD still written for RS), and reported', () => {
    const hw = nic()
    const { m, w, link, errors } = hw
    txRing(hw)
    m.ram.write(TXB, frame(PEER, 64), 0, 64)
    txd(m, 0, TXB, 64, TNIC_TXD_CMD_DEXT | TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_RS, { cso: TNIC_TXD_DTYP_D })
    txd(m, 1, TXB, 64, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 2)
    runClock(m)
    expect(errors).toEqual([{ message: 'TX descriptor 0: DEXT set: extended descriptors are not supported', details: { register: 'TDH', value: 0, cmd: 0x29 } }])
    expect(link.sent).toHaveLength(1) // only the legacy one
    expect(desc(m, TXR, 0).status).toBe(TNIC_TXD_STAT_DD)
  })

  it('a TX frame longer than 16288 bytes is dropped; one shorter than a header without PSP too', () => {
    const hw = nic()
    const { m, w, link, errors, dev } = hw
    txRing(hw, 8, TNIC_TCTL_EN)
    txd(m, 0, TXB, 16000, 0)
    txd(m, 1, TXB, 289, TNIC_TXD_CMD_EOP)
    txd(m, 2, TXB, 10, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 3)
    runClock(m)
    expect(link.sent).toEqual([])
    expect(errors.map((e) => e.message)).toEqual([
      `TX frame of 16289 bytes exceeds the ${TNIC_TX_MAX_FRAME}-byte maximum: dropped`,
      'TX frame of 10 bytes is shorter than an Ethernet header (14 bytes) and TCTL.PSP is clear: dropped',
    ])
    expect(dev.stats).toMatchObject({ txOversize: 1, txRunts: 1 })
  })

  it('a received frame shorter than an Ethernet header is dropped (lenient mode pads it, as QEMU)', () => {
    const strict = nic()
    rxRing(strict, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_UPE)
    strict.dev.receiveFrame(new Uint8Array(10))
    runClock(strict.m)
    expect(strict.r(TNIC_RDH)).toBe(0)
    expect(strict.dev.stats.rxRunts).toBe(1)
    const lenient = nic({ strict: false })
    rxRing(lenient, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_UPE)
    lenient.dev.receiveFrame(new Uint8Array(10).fill(2))
    runClock(lenient.m)
    expect(desc(lenient.m, RXR, 0).length).toBe(60)
  })
})

describe('tnic: lenient mode behaves as QEMU', () => {
  it('uses what QEMU keeps of bad values: the masked ring length, the aligned base, BSEX buffer sizes', () => {
    const hw = nic({ strict: false })
    const { m, w, r, dev } = hw
    w(TNIC_CTRL, TNIC_CTRL_SLU)
    for (let i = 0; i < 8; i++) rxd(m, i, RXB + i * 0x1000)
    w(TNIC_RDBAL, RXR + 0xc) // used as RXR
    w(TNIC_RDLEN, 128 + 0x44) // used as 128
    w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_BSEX | TNIC_RCTL_SZ_256) // 4096-byte buffers
    w(TNIC_RDT, 7)
    dev.receiveFrame(frame(MAC, 1500))
    runClock(m)
    expect(desc(m, RXR, 0)).toMatchObject({ length: 1500, status: TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP })
    w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_BSEX | TNIC_RCTL_SZ_256 | TNIC_RCTL_LPE)
    dev.receiveFrame(frame(MAC, 5000))
    runClock(m)
    expect([desc(m, RXR, 1).length, desc(m, RXR, 2).length]).toEqual([4096, 904])
    expect(r(TNIC_RDH)).toBe(3)
    expect(hw.errors).toEqual([])
  })

  it('takes extended data descriptors as data (20-bit length), skips context ones, and sends oversized frames cut', () => {
    const hw = nic({ strict: false })
    const { m, w, link } = hw
    txRing(hw)
    const f = frame(PEER, 80)
    m.ram.write(TXB, f, 0, 80)
    txd(m, 0, TXB, 0, TNIC_TXD_CMD_DEXT) // context descriptor
    txd(m, 1, TXB, 80, TNIC_TXD_CMD_DEXT | TNIC_TXD_CMD_EOP, { cso: TNIC_TXD_DTYP_D })
    txd(m, 2, TXB, 16000, 0)
    txd(m, 3, TXB, 400, TNIC_TXD_CMD_EOP)
    w(TNIC_TDT, 4)
    runClock(m)
    expect(link.sent[0]!.frame).toEqual(f)
    expect(link.sent[1]!.frame.length).toBe(TNIC_TX_MAX_FRAME)
    expect(hw.errors).toEqual([])
  })
})

describe('tnic: failed DMA', () => {
  it('bus mastering off: the TX walk fails on its first descriptor, the ring hangs (no crash) until reset', () => {
    const hw = nic()
    const { m, w, r, dev, link } = hw
    enable(dev, PCI_COMMAND_MEMORY)
    txRing(hw)
    txd(m, 0, TXB, 64, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_RS)
    w(TNIC_IMS, TNIC_ICR_TXDW | TNIC_ICR_TXQE)
    w(TNIC_TDT, 1)
    runClock(m)
    expect(dev.txStalled).toBe(true)
    expect(dev.lastDmaError).toEqual({ ring: 'tx', what: 'descriptor read', bus: TXR, result: MEMTX_ERROR, time: 500 })
    expect([r(TNIC_TDH), r(TNIC_ICR), link.sent.length]).toEqual([0, 0, 0])
    enable(dev) // bus mastering back: the ring stays hung
    w(TNIC_TDT, 1)
    runClock(m)
    expect(link.sent).toEqual([])
    expect(dev.dumpRings()).toContain('hung: descriptor read at 0x40001000 failed (MemTxResult 1) at 500 ns')
    w(TNIC_CTRL, TNIC_CTRL_RST)
    expect(dev.txStalled).toBe(false)
    txRing(hw)
    w(TNIC_TDT, 1)
    runClock(m)
    expect(link.sent).toHaveLength(1)
  })

  it('bus mastering off: RX hangs at the descriptor read; later frames are missed (MPC, RXO)', () => {
    const hw = nic()
    const { m, r, dev } = hw
    enable(dev, PCI_COMMAND_MEMORY)
    rxRing(hw)
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect(dev.rxStalled).toBe(true)
    expect(dev.lastDmaError).toMatchObject({ ring: 'rx', what: 'descriptor read', bus: RXR, result: MEMTX_ERROR })
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect([r(TNIC_RDH), r(TNIC_MPC), r(TNIC_ICR)]).toEqual([0, 1, TNIC_ICR_RXO])
    expect(dev.stats.rxMissed).toBe(1)
  })

  it('an IOMMU fault on an RX buffer hangs the ring after the descriptor read, before any write-back', () => {
    const hw = nic({}, { iommu: 'strict' })
    const { m, w, r, dev } = hw
    const d = dev.dma.domain!
    d.map(0x10_0000, RXR, 0x1000, IOMMU_READ | IOMMU_WRITE) // the ring, at IOVA 0x100000
    rxd(m, 0, 0x20_0000) // a buffer IOVA nobody mapped
    w(TNIC_CTRL, TNIC_CTRL_SLU)
    w(TNIC_RDBAL, 0x10_0000)
    w(TNIC_RDLEN, 128)
    w(TNIC_RCTL, TNIC_RCTL_EN | TNIC_RCTL_SECRC)
    w(TNIC_RDT, 1)
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect(dev.lastDmaError).toMatchObject({ ring: 'rx', what: 'buffer write', bus: 0x20_0000, result: MEMTX_ACCESS_ERROR })
    expect(m.iommuFaults).toEqual([{ device: 'tnic0', iova: 0x20_0000, write: true, reason: 'unmapped' }])
    expect(desc(m, RXR, 0).status).toBe(0)
    expect(r(TNIC_RDH)).toBe(0)
  })
})

describe('tnic: fault injection', () => {
  it('delay-completion delays the chosen TX walk (default 1 ms)', () => {
    const hw = nic()
    const { m, w, link } = hw
    txRing(hw)
    m.faults.add({ device: 'tnic0', kind: 'delay-completion', delayNs: 3000 })
    m.faults.add({ device: 'tnic0', kind: 'delay-completion', after: 1 })
    for (let i = 0; i < 3; i++) txd(m, i, TXB, 64, TNIC_TXD_CMD_EOP)
    for (let i = 1; i <= 3; i++) {
      w(TNIC_TDT, i)
      runClock(m)
    }
    expect(link.sent.map((s) => s.time)).toEqual([3500, 3500 + 500 + TNIC_FAULT_DELAY_NS, 3500 + 500 + TNIC_FAULT_DELAY_NS + 500])
  })

  it('error-status sets the errors byte of the frame\'s EOP descriptor (RXE unless the rule says), not counted as good', () => {
    const hw = nic()
    const { m, r, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_SZ_256)
    m.faults.add({ device: 'tnic0', kind: 'error-status' })
    m.faults.add({ device: 'tnic0', kind: 'error-status', status: TNIC_RXD_ERR_CE, after: 1 })
    dev.receiveFrame(frame(MAC, 300))
    dev.receiveFrame(frame(MAC, 64))
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect([0, 1, 2, 3].map((i) => desc(m, RXR, i).errors)).toEqual([0, TNIC_RXD_ERR_RXE, TNIC_RXD_ERR_CE, 0])
    expect(r(TNIC_GPRC)).toBe(1)
    expect(dev.stats.rxErrors).toBe(2)
  })

  it('corrupt-length writes the rule\'s length (default 4000, 16 bits kept) into the frame\'s EOP descriptor; buffers and statistics keep the real bytes', () => {
    const hw = nic()
    const { m, r, dev } = hw
    rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_SZ_256)
    m.faults.add({ device: 'tnic0', kind: 'corrupt-length' })
    m.faults.add({ device: 'tnic0', kind: 'corrupt-length', status: 0x1_0123, after: 1 })
    const big = frame(MAC, 300)
    dev.receiveFrame(big)
    dev.receiveFrame(frame(MAC, 64, 2))
    dev.receiveFrame(frame(MAC, 64, 3))
    runClock(m)
    // The 300-byte frame spans two 256-byte buffers: only its EOP descriptor lies.
    expect([0, 1, 2, 3].map((i) => desc(m, RXR, i).length)).toEqual([256, TNIC_FAULT_RX_LENGTH, 0x0123, 64])
    expect([0, 1, 2, 3].map((i) => desc(m, RXR, i).status)).toEqual([
      TNIC_RXD_STAT_DD, TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP, TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP, TNIC_RXD_STAT_DD | TNIC_RXD_STAT_EOP,
    ])
    expect(ramBytes(m, RXB, 256)).toEqual(big.subarray(0, 256))
    expect(ramBytes(m, RXB + 0x1000, 44)).toEqual(big.subarray(256))
    expect(ramBytes(m, RXB + 0x1000 + 44, 4)).toEqual(new Uint8Array(4)) // nothing written past the frame
    expect(ramBytes(m, RXB + 0x2000, 64)).toEqual(frame(MAC, 64, 2))
    expect(r(TNIC_GPRC)).toBe(3)
    expect(r(TNIC_GORCL)).toBe(300 + 64 + 64 + 3 * 4)
    expect(dev.stats).toMatchObject({ rxFrames: 3, rxBytes: 428, rxErrors: 0 })
  })

  it('drop-irq loses an interrupt (ICR keeps the cause); spurious-irq sends an extra one', () => {
    const hw = nic()
    const { m, w, r } = hw
    const hwirq = enableMsix(hw)
    w(TNIC_IMS, TNIC_ICR_RXT0)
    m.faults.add({ device: 'tnic0', kind: 'drop-irq' })
    w(TNIC_ICS, TNIC_ICR_RXT0)
    expect(m.intc.isMsiPending(hwirq)).toBe(false)
    expect(r(TNIC_ICR)).toBe((TNIC_ICR_INT_ASSERTED | TNIC_ICR_RXT0) >>> 0)
    m.faults.add({ device: 'tnic0', kind: 'spurious-irq', delayNs: 100 })
    w(TNIC_ICS, TNIC_ICR_RXT0)
    expect(m.intc.stats.msi).toBe(1)
    r(TNIC_ICR)
    m.intc.ack(hwirq)
    runClock(m)
    expect(m.intc.stats.msi).toBe(2)
    expect(r(TNIC_ICR)).toBe(0)
  })

  it('fail-dma on the RX status write hangs the ring with the body already written', () => {
    const hw = nic()
    const { m, dev } = hw
    rxRing(hw)
    m.faults.add({ device: 'tnic0', kind: 'fail-dma', after: 3 }) // descriptor read, buffer, body | status
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    expect(desc(m, RXR, 0)).toMatchObject({ length: 64, status: TNIC_RXD_STAT_EOP })
    expect(dev.lastDmaError).toMatchObject({ ring: 'rx', what: 'write-back', bus: RXR + 12, result: MEMTX_ERROR })
  })
})

describe('tnic: statistics and the ring dump', () => {
  it('statistics are read-to-clear register by register; the octet counters count the FCS', () => {
    const hw = nic()
    const { m, r, dev } = hw
    rxRing(hw, 64, TNIC_RCTL_EN | TNIC_RCTL_SECRC | TNIC_RCTL_LPE | TNIC_RCTL_SZ_256)
    for (let i = 0; i < 3; i++) {
      dev.receiveFrame(frame(MAC, 1000))
      runClock(m)
    }
    expect([r(TNIC_GORCH), r(TNIC_GORCL), r(TNIC_GORCL)]).toEqual([0, 3012, 0])
    expect([r(TNIC_GOTCL), r(TNIC_GOTCH)]).toEqual([0, 0])
  })

  it('dumpRings: base, length, head, tail and every descriptor, H and T marked, as e1000_dump', () => {
    const hw = nic()
    const { m, w, dev } = hw
    txRing(hw)
    rxRing(hw, 8, TNIC_RCTL_EN | TNIC_RCTL_SECRC, 3)
    m.ram.write(TXB, frame(PEER, 60), 0, 60)
    txd(m, 0, TXB, 60, TNIC_TXD_CMD_EOP | TNIC_TXD_CMD_IFCS | TNIC_TXD_CMD_RS)
    w(TNIC_TDT, 1)
    dev.receiveFrame(frame(MAC, 64))
    runClock(m)
    const lines = dev.dumpRings().split('\n')
    expect(lines).toEqual([
      'tnic0 TX ring: TDBA 0x0000000040001000 TDLEN 0x80 (8 descriptors) TDH 0x1 TDT 0x1 TCTL 0x0000000a',
      'Tl[desc]     [address 63:0  ] [SpeCssSCmCsLen]',
      'Tl[0x000]    0000000040100000 000000010B00003C',
      'Tl[0x001]    0000000000000000 0000000000000000 H/T',
      ...[2, 3, 4, 5, 6, 7].map((i) => `Tl[0x00${i}]    0000000000000000 0000000000000000`),
      'tnic0 RX ring: RDBA 0x0000000040002000 RDLEN 0x80 (8 descriptors) RDH 0x1 RDT 0x3 RCTL 0x04000002',
      'R[desc]      [address 63:0  ] [vl er S cks ln]',
      'R[0x000]     0000000040200000 0000000300000040',
      'R[0x001]     0000000040201000 0000000000000000 H',
      'R[0x002]     0000000040202000 0000000000000000',
      'R[0x003]     0000000040203000 0000000000000000 T',
      ...[4, 5, 6, 7].map((i) => `R[0x00${i}]     000000004020${i}000 0000000000000000`),
    ])
  })
})
