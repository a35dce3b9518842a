/**
 * "mini-NVMe": an NVM Express controller with one namespace — controller registers with the
 * CC/CSTS state machine, admin and I/O submission/completion queues in host memory, doorbells,
 * phase tags, PRP lists, MSI-X per completion queue, interrupt coalescing and a volatile write
 * cache over a durable block backend. Datasheet: docs/devices/nvme.md; register map and layouts:
 * devices/nvme/regs.ts.
 *
 * Modelled on QEMU's hw/nvme/ctrl.c (and the 2013 hw/block/nvme.c it grew from) and the NVM
 * Express Base Specification 1.4: nvme_write_bar's CC handling and nvme_start_ctrl's checks
 * (CSTS.CFS instead of RDY on a bad configuration), nvme_ctrl_reset and nvme_ctrl_shutdown, the
 * register reads and writes QEMU reports with NVME_GUEST_ERR. Differences, each in the datasheet:
 * CSTS.RDY and SHST change after configurable delays, CAP.DSTRD may be non-zero, the enable checks
 * include CC.AMS, and strict mode reports CC changes while enabled. The parts: the command engine
 * (fetch, execution, completion posting) is devices/nvme/engine.ts, doorbell decoding
 * doorbells.ts, queues queues.ts, the command sets admin.ts and io.ts, Identify data identify.ts,
 * PRPs prp.ts, interrupts irq.ts, the write cache cache.ts, options options.ts.
 */

import { NvmeAdmin } from './admin.js'
import { NvmeStorage, type NvmeStorageStats } from './cache.js'
import { NvmeDoorbells } from './doorbells.js'
import { NvmeEngine, type NvmeEngineStats } from './engine.js'
import type { NvmeIdentity } from './identify.js'
import { NvmeIo, type NvmeIoStats } from './io.js'
import { NvmeIrq, type NvmeIrqStats } from './irq.js'
import { resolveNvmeOptions, type NvmeConfig, type NvmeOptions } from './options.js'
import { PrpMapper } from './prp.js'
import * as N from './regs.js'
import type { BlockBackend } from '../block/backend.js'
import type { ClockEvent } from '../machine/clock.js'
import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'
import { MSIX_CAP_OFFSET } from '../pci/config.js'
import { PciFunction, PciFunctionError } from '../pci/function.js'
import { PCI_MSIX_FLAGS, PCI_MSIX_FLAGS_ENABLE } from '../pci/regs.js'

export type { NvmeConfig, NvmeOptions } from './options.js'

/** Running counts for tests and tools (never reset). */
export interface NvmeStats extends NvmeEngineStats, NvmeIoStats, NvmeStorageStats, NvmeIrqStats {
  /** Times CSTS.CFS was set (bad configuration at enable, failed SQE fetch or CQE write). */
  fatalErrors: number
  /** Controller resets (CC.EN 1 -> 0, function-level reset, power failure), shutdowns, power failures. */
  resets: number
  shutdowns: number
  powerFails: number
}

const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`
const hex8 = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`
const CC_LATCHED = N.NVME_CC_CSS_MASK | N.NVME_CC_MPS_MASK | N.NVME_CC_AMS_MASK | N.NVME_CC_IOSQES_MASK | N.NVME_CC_IOCQES_MASK
const REG_NAMES = new Map<number, string>(Object.entries(N.NVME_REGISTERS).map(([k, v]) => [v, k]))

export class NvmeController extends PciFunction {
  readonly strict: boolean
  /** The options as taken (sizes, delays, limits) and the BAR 0 layout. */
  readonly config: NvmeConfig
  /** The durable medium. */
  readonly backend: BlockBackend
  readonly stats: NvmeStats = {
    commands: 0, adminCommands: 0, completions: 0, errors: 0, cqFullWaits: 0, cidConflicts: 0, dmaErrors: 0,
    fatalErrors: 0, resets: 0, shutdowns: 0, powerFails: 0,
    reads: 0, writes: 0, flushes: 0, writeZeroes: 0, bytesRead: 0, bytesWritten: 0,
    durableWrites: 0, durableBytes: 0, cacheEvictions: 0, lostBytes: 0,
    interrupts: 0, irqCoalesced: 0,
  }

  /* Registers */
  readonly #capLo: number
  readonly #capHi: number
  #cc = 0
  #csts = 0
  #aqa = 0
  #asq = 0
  #acq = 0
  /* State */
  #failed = false
  #shutdown = false
  #lastFatal = ''
  #readyEv: ClockEvent | null = null
  #disableEv: ClockEvent | null = null
  #shutdownEv: ClockEvent | null = null
  /* The parts */
  readonly #engine: NvmeEngine
  readonly #prp: PrpMapper
  readonly #storage: NvmeStorage
  readonly #irq: NvmeIrq
  readonly #admin: NvmeAdmin
  readonly #doorbells: NvmeDoorbells
  readonly #onReady = (): void => this.#becomeReady()
  readonly #onDisabled = (): void => {
    this.#disableEv = null
    this.#csts &= ~N.NVME_CSTS_RDY
  }
  readonly #onShutdownDone = (): void => {
    this.#shutdownEv = null
    this.#csts = (this.#csts & ~N.NVME_CSTS_SHST_MASK) | N.NVME_CSTS_SHST_CMPLT
  }

  constructor(opts: NvmeOptions = {}) {
    const c = resolveNvmeOptions(opts)
    super({
      name: c.name,
      vendor: N.NVME_VENDOR_ID,
      device: N.NVME_DEVICE_ID,
      classCode: N.NVME_CLASS,
      revision: N.NVME_REVISION,
      bars: [{ size: c.barSize }],
      msixVectors: c.msixVectors,
      msixTableOffset: c.msixTableOffset,
      msixPbaOffset: c.msixPbaOffset,
      intxPin: 1,
      addressBits: c.addressBits,
      ...(opts.hostile !== undefined ? { hostile: opts.hostile } : {}),
    })
    this.config = c
    this.strict = c.strict
    this.backend = c.backend
    this.#capLo = (c.mqes | N.NVME_CAP_CQR | (c.timeout << N.NVME_CAP_TO_SHIFT)) >>> 0
    this.#capHi = (c.dstrd | (N.NVME_CAP_CSS_NVM << (N.NVME_CAP_CSS_SHIFT - 32))) >>> 0
    const mdtsBytes = N.NVME_PAGE_SIZE << c.mdts // mdts is 1..10
    const staging = new Uint8Array(mdtsBytes)
    const stats = this.stats
    this.#irq = new NvmeIrq(
      {
        raise: (v) => this.raiseIrq(v),
        lower: () => this.lowerIrq(),
        msixEnabled: () => this.msixEnabled,
        schedule: (ns, fn) => this.schedule(ns, fn),
      },
      c.msixVectors,
      stats,
    )
    const engine = new NvmeEngine(
      {
        strict: c.strict,
        commandLatencyNs: c.commandLatencyNs,
        bytesPerNs: c.bytesPerNs,
        clock: () => this.machine!.clock,
        dmaRead: (bus, b, off, len) => this.dmaRead(bus, b, off, len),
        dmaWrite: (bus, b, off, len) => this.dmaWrite(bus, b, off, len),
        fault: (kind) => this.fault(kind),
        guestError: (message, details) => this.guestError(message, details),
        fatal: (why) => this.#fatal(why),
        hostileRecord: (bus, record, fields) => this.hostileRecord(bus, record, fields),
      },
      this.#irq,
      stats,
    )
    this.#engine = engine
    this.#prp = new PrpMapper(
      {
        dmaRead: (bus, b, off, len) => countDmaError(stats, this.dmaRead(bus, b, off, len)),
        dmaWrite: (bus, b, off, len) => countDmaError(stats, this.dmaWrite(bus, b, off, len)),
      },
      mdtsBytes,
      c.strict,
    )
    this.#storage = new NvmeStorage(c.backend, c.sizeBytes, c.lbaSize, c.cacheBytes, stats)
    this.#storage.setStaging(staging)
    this.#storage.enabled = c.volatileWriteCache
    const lbaShift = Math.log2(c.lbaSize)
    const identity: NvmeIdentity = {
      vendor: N.NVME_VENDOR_ID, serial: c.serial, model: c.model, firmware: '1.0', mdts: c.mdts,
      volatileWriteCache: c.volatileWriteCache, nsze: c.sizeBytes / c.lbaSize, lbads: lbaShift,
    }
    this.#admin = new NvmeAdmin({
      prp: this.#prp,
      storage: this.#storage,
      irq: this.#irq,
      mqes: c.mqes,
      maxIoQueuePairs: c.maxIoQueuePairs,
      msixVectors: c.msixVectors,
      identity,
      msixEnabled: () => this.msixEnabled,
      sq: (qid) => engine.sq(qid),
      cq: (qid) => engine.cq(qid),
      createCq: (qid, base, size, ien, iv) => engine.createCq(qid, base, size, ien, iv),
      createSq: (qid, base, size, cq) => engine.createSq(qid, base, size, cq),
      deleteSq: (sq) => engine.deleteSq(sq),
      deleteCq: (cq) => engine.deleteCq(cq),
      abort: (sqid, cid) => engine.abort(sqid, cid),
    })
    this.#doorbells = new NvmeDoorbells({
      strict: c.strict,
      engine,
      dstrd: c.dstrd,
      doorbellBytes: c.doorbellBytes,
      guest: (message, details) => this.#guest(message, details),
      ready: () => (this.#csts & N.NVME_CSTS_RDY) !== 0,
      shuttingDown: () => this.#shutdown,
    })
    engine.setCommandSets(this.#admin, new NvmeIo({ prp: this.#prp, storage: this.#storage, staging, nsze: identity.nsze, lbaSize: c.lbaSize, mdtsBytes }, stats))
  }

  /* ---- harness view ---- */

  /** Whether MSI-X is enabled in the function's capability. */
  get msixEnabled(): boolean {
    return (this.configRead(MSIX_CAP_OFFSET + PCI_MSIX_FLAGS, 2) & PCI_MSIX_FLAGS_ENABLE) !== 0
  }

  /** CSTS.RDY with the queues live: commands are fetched. */
  get running(): boolean {
    return this.#engine.running
  }

  /** Bytes in the volatile write cache that a power failure would lose. */
  get cacheDirtyBytes(): number {
    return this.#storage.dirtyBytes
  }

  /** Whether writes go to the volatile write cache (Feature 06h WCE). */
  get writeCacheEnabled(): boolean {
    return this.#storage.enabled
  }

  /** Queues that exist (admin included), and commands fetched whose completion entry is not posted yet. */
  get queueCount(): { readonly sqs: number; readonly cqs: number } {
    return { sqs: this.#engine.sqs.size, cqs: this.#engine.cqs.size }
  }

  get inflight(): number {
    return this.#engine.inflight
  }

  /** Why CSTS.CFS was last set ('' if it never was). */
  get lastFatal(): string {
    return this.#lastFatal
  }

  /** The pin-based interrupt condition (INTx mode): ~INTMS & irq_status != 0. */
  get intxAsserted(): boolean {
    return this.#irq.asserted
  }

  /** The Identify Controller data the controller returns (a copy). */
  get identifyData(): Uint8Array {
    return this.#admin.identifyController
  }

  /** A queue's state: head, tail, phase (CQ), or undefined when it does not exist. */
  queue(kind: 'sq' | 'cq', qid: number): { readonly base: number; readonly size: number; readonly head: number; readonly tail: number; readonly phase?: number; readonly waiting?: number; readonly inflight?: number } | undefined {
    if (kind === 'sq') {
      const sq = this.#engine.sq(qid)
      return sq === undefined ? undefined : { base: sq.base, size: sq.size, head: sq.head, tail: sq.tail, inflight: sq.inflight }
    }
    const cq = this.#engine.cq(qid)
    return cq === undefined ? undefined : { base: cq.base, size: cq.size, head: cq.head, tail: cq.tail, phase: cq.phase, waiting: cq.waiting }
  }

  /** A register's value as a 32-bit read returns it, without reporting anything. */
  reg(name: N.NvmeRegister): number {
    const off = N.NVME_REGISTERS[name] as number | undefined
    if (off === undefined) throw new PciFunctionError(`${this.name}: no register named ${name as string}`)
    return this.#readReg(off, false)
  }

  /**
   * A power failure and the power coming back: what the volatile write cache held is lost (only
   * what reached the backend survives), and the controller starts as at power-on — registers at
   * their reset values (CC.EN 0, CSTS.RDY 0), every queue and command gone, features at their
   * defaults. PCI configuration space is kept, as the host restores it. Returns the bytes lost.
   */
  powerFail(): number {
    const lost = this.#storage.drop()
    this.#powerOn()
    this.stats.powerFails++
    return lost
  }

  /** Function-level reset: the PCI state (PciFunction.reset) and the controller, as at power-on; the cache keeps its data. */
  override reset(): void {
    super.reset()
    this.#powerOn()
  }

  /**
   * The controller and its queues as the device sees them (in the spirit of Linux's nvme
   * show_regs / QEMU's trace): registers, features, then one line per SQ and CQ with base, size,
   * head, tail, phase and what is in flight or waiting. Reads no memory.
   */
  dumpQueues(): string {
    const out: string[] = []
    const csts = this.#csts
    const flags = [(csts & N.NVME_CSTS_RDY) !== 0 ? 'RDY' : '', (csts & N.NVME_CSTS_CFS) !== 0 ? 'CFS' : '', ['', 'SHST=occurring', 'SHST=complete', 'SHST=3'][(csts >> 2) & 3]!].filter((s) => s !== '')
    out.push(`${this.name}: CC ${hex8(this.#cc)} CSTS ${hex8(csts)}${flags.length > 0 ? ` (${flags.join(' ')})` : ''} AQA ${hex8(this.#aqa)} ASQ ${hex(this.#asq)} ACQ ${hex(this.#acq)} INTMS ${hex8(this.#irq.intms)}`)
    out.push(`  features: WCE ${this.#storage.enabled ? 1 : 0}, queues ${this.#admin.nsqa} SQ / ${this.#admin.ncqa} CQ allocated, coalescing THR ${this.#irq.thr} TIME ${this.#irq.time}; cache ${this.#storage.dirtyBytes} bytes dirty`)
    const next = this.#engine.nextDue
    out.push(`  in flight: ${this.inflight}${next !== Number.POSITIVE_INFINITY ? ` (next completion due at ${next} ns)` : ''}`)
    if (this.#lastFatal !== '' && (csts & N.NVME_CSTS_CFS) !== 0) out.push(`  fatal: ${this.#lastFatal}`)
    this.#engine.describe(out)
    return out.join('\n')
  }

  /* ---- MMIO ---- */

  protected barRead(_bar: number, off: number, size: 1 | 2 | 4): number {
    if (off >= N.NVME_REG_DBS) {
      if (off - N.NVME_REG_DBS < this.config.doorbellBytes) this.#guest(`${size}-byte read of doorbell ${this.#doorbells.name(off)} (${hex(off)}): doorbells are write-only (reads return 0)`, { offset: off })
      else this.#guest(`read of unimplemented offset ${hex(off)}`, { offset: off })
      return 0
    }
    if (size !== 4 || (off & 3) !== 0) {
      this.#badAccess(off, size, false, 0)
      if (this.strict) return 0
      const word = this.#readReg(off & ~3, true)
      return (word >>> (8 * (off & 3))) & ((1 << (8 * size)) - 1)
    }
    return this.#readReg(off, true)
  }

  protected barWrite(_bar: number, off: number, size: 1 | 2 | 4, value: number): void {
    if (off >= N.NVME_REG_DBS) {
      this.#doorbells.write(off, size, value)
      return
    }
    if (size !== 4 || (off & 3) !== 0) {
      this.#badAccess(off, size, true, value)
      if (this.strict || (off & 3) !== 0) return // lenient: QEMU takes a short write at a register's offset as the whole register
    }
    const v = value >>> 0
    const enabled = (this.#cc & N.NVME_CC_ENABLE) !== 0
    switch (off) {
      case N.NVME_REG_INTMS:
      case N.NVME_REG_INTMC:
        if (this.msixEnabled) this.#guest(`write of ${hex(v)} to ${off === N.NVME_REG_INTMS ? 'INTMS' : 'INTMC'} while MSI-X is enabled (undefined: the mask is for pin-based interrupts)`, { register: off === N.NVME_REG_INTMS ? 'INTMS' : 'INTMC', value: v })
        if (off === N.NVME_REG_INTMS) this.#irq.setMask(v)
        else this.#irq.clearMask(v)
        return
      case N.NVME_REG_CC:
        this.#writeCc(v)
        return
      case N.NVME_REG_AQA:
      case N.NVME_REG_ASQ:
      case N.NVME_REG_ASQ + 4:
      case N.NVME_REG_ACQ:
      case N.NVME_REG_ACQ + 4:
        if (enabled) this.#guest(`write of ${hex(v)} to ${REG_NAMES.get(off)!} while CC.EN = 1 (it takes effect at the next enable)`, { register: REG_NAMES.get(off)!, value: v })
        if (off === N.NVME_REG_AQA) this.#aqa = v
        else if (off === N.NVME_REG_ASQ) this.#asq = Math.floor(this.#asq / TWO32) * TWO32 + v
        else if (off === N.NVME_REG_ASQ + 4) this.#asq = v * TWO32 + (this.#asq % TWO32)
        else if (off === N.NVME_REG_ACQ) this.#acq = Math.floor(this.#acq / TWO32) * TWO32 + v
        else this.#acq = v * TWO32 + (this.#acq % TWO32)
        return
      case N.NVME_REG_NSSR:
        if (v === N.NVME_NSSR_VALUE) this.#guest(`NSSR written with "NVMe" (${hex(v)}): NVM subsystem reset is not supported (CAP.NSSRS = 0); ignored`, { register: 'NSSR', value: v })
        return // other values have no effect (specification)
      case N.NVME_REG_CSTS:
        this.#guest(`write of ${hex(v)} to read-only register CSTS (${hex(off)})${(v & N.NVME_CSTS_NSSRO) !== 0 ? ': NSSRO cannot be cleared (CAP.NSSRS = 0)' : ''}`, { register: 'CSTS', value: v })
        return
      case N.NVME_REG_CAP:
      case N.NVME_REG_CAP + 4:
      case N.NVME_REG_VS:
      case N.NVME_REG_CMBLOC:
      case N.NVME_REG_CMBSZ:
        this.#guest(`write of ${hex(v)} to read-only register ${REG_NAMES.get(off)!} (${hex(off)})`, { register: REG_NAMES.get(off)!, value: v })
        return
      default:
        this.#guest(`write of ${hex(v)} to unimplemented register ${hex(off)}`, { offset: off, value: v })
    }
  }

  #readReg(off: number, access: boolean): number {
    switch (off) {
      case N.NVME_REG_CAP:
        return this.#capLo
      case N.NVME_REG_CAP + 4:
        return this.#capHi
      case N.NVME_REG_VS:
        return N.NVME_VS_1_4
      case N.NVME_REG_INTMS:
      case N.NVME_REG_INTMC:
        return this.#irq.intms
      case N.NVME_REG_CC:
        return this.#cc
      case N.NVME_REG_CSTS:
        return this.#csts
      case N.NVME_REG_AQA:
        return this.#aqa
      case N.NVME_REG_ASQ:
        return this.#asq % TWO32
      case N.NVME_REG_ASQ + 4:
        return Math.floor(this.#asq / TWO32)
      case N.NVME_REG_ACQ:
        return this.#acq % TWO32
      case N.NVME_REG_ACQ + 4:
        return Math.floor(this.#acq / TWO32)
      case N.NVME_REG_NSSR:
      case N.NVME_REG_CMBLOC:
      case N.NVME_REG_CMBSZ:
        return 0
      default:
        if (access) this.#guest(`read of unimplemented register ${hex(off)}`, { offset: off })
        return 0
    }
  }

  #badAccess(off: number, size: number, write: boolean, value: number): void {
    const name = REG_NAMES.get(off & ~3)
    const where = name === undefined ? hex(off) : `${name} (${hex(off)})`
    this.#guest(`${write ? `${size}-byte write of ${hex(value)} to` : `${size}-byte read of`} ${where}: NVMe registers take aligned 32-bit accesses (64-bit ones are split)`, { offset: off, size, write })
  }

  /** A guest error (strict mode only: lenient mode is as quiet as QEMU without -d guest_errors). */
  #guest(message: string, details: Record<string, number | string | boolean>): void {
    if (this.strict) this.guestError(message, details)
  }

  /* ---- CC / CSTS ---- */

  #writeCc(v: number): void {
    const old = this.#cc
    this.#cc = v
    const shn = v & N.NVME_CC_SHN_MASK
    const oldShn = old & N.NVME_CC_SHN_MASK
    if (shn !== 0 && oldShn === 0) this.#startShutdown()
    else if (shn === 0 && oldShn !== 0) {
      if (this.#shutdownEv !== null) this.#shutdownEv.cancelled = true
      this.#shutdownEv = null
      this.#csts &= ~N.NVME_CSTS_SHST_MASK
      this.#shutdown = false
      this.#updateRunning()
    }
    const en = (v & N.NVME_CC_ENABLE) !== 0
    const wasEn = (old & N.NVME_CC_ENABLE) !== 0
    if (en && !wasEn) this.#enable(v)
    else if (!en && wasEn) this.#disable()
    else if (en && ((v ^ old) & CC_LATCHED) !== 0) {
      this.#guest(`CC ${hex8(v)} changes CSS/MPS/AMS/IOSQES/IOCQES (was ${hex8(old)}) while CC.EN = 1: they take effect at the next enable`, { register: 'CC', value: v })
    }
  }

  /** CC.EN 0 -> 1: nvme_start_ctrl's checks; CSTS.CFS at once, or CSTS.RDY readyDelayNs later. */
  #enable(cc: number): void {
    if (this.#disableEv !== null) {
      this.#guest(`CC.EN set while the previous reset is still in progress (CSTS.RDY has not returned to 0): wait for RDY = 0 first`, { register: 'CC', value: cc })
      this.#disableEv.cancelled = true
      this.#disableEv = null
    }
    this.#csts = 0
    const why = this.#checkEnable(cc)
    if (why !== null) {
      this.#csts = N.NVME_CSTS_CFS
      this.#lastFatal = `enable refused: ${why}`
      this.stats.fatalErrors++
      this.#guest(`CC.EN set with a bad configuration, CSTS.CFS set: ${why}`, { register: 'CC', value: cc })
      return
    }
    this.#readyEv = this.schedule(this.config.readyDelayNs, this.#onReady)
  }

  #checkEnable(cc: number): string | null {
    const asqs = this.#aqa & N.NVME_AQA_ASQS_MASK
    const acqs = (this.#aqa & N.NVME_AQA_ACQS_MASK) >>> N.NVME_AQA_ACQS_SHIFT
    const mps = (cc & N.NVME_CC_MPS_MASK) >>> N.NVME_CC_MPS_SHIFT
    const css = (cc & N.NVME_CC_CSS_MASK) >>> N.NVME_CC_CSS_SHIFT
    const ams = (cc & N.NVME_CC_AMS_MASK) >>> N.NVME_CC_AMS_SHIFT
    const iosqes = (cc & N.NVME_CC_IOSQES_MASK) >>> N.NVME_CC_IOSQES_SHIFT
    const iocqes = (cc & N.NVME_CC_IOCQES_MASK) >>> N.NVME_CC_IOCQES_SHIFT
    if (this.#engine.sqs.size > 0 || this.#engine.cqs.size > 0) return 'queues still exist from the last enable'
    if (this.#asq === 0) return 'ASQ is 0'
    if (this.#asq % N.NVME_PAGE_SIZE !== 0) return `ASQ ${hex(this.#asq)} is not 4096-byte (page) aligned`
    if (this.#acq === 0) return 'ACQ is 0'
    if (this.#acq % N.NVME_PAGE_SIZE !== 0) return `ACQ ${hex(this.#acq)} is not 4096-byte (page) aligned`
    if (css !== 0) return `CC.CSS ${css} is not supported (CAP.CSS: the NVM command set, CSS 0)`
    if (mps !== 0) return `CC.MPS ${mps} is outside CAP.MPSMIN..MPSMAX (0..0: 4 KiB pages)`
    if (ams !== 0) return `CC.AMS ${ams} is not supported (round robin only, CAP.AMS = 0)`
    if (iosqes !== N.NVME_SQES_LOG2) return `CC.IOSQES ${iosqes} is not 6 (64-byte SQEs, Identify SQES 66h)`
    if (iocqes !== N.NVME_CQES_LOG2) return `CC.IOCQES ${iocqes} is not 4 (16-byte CQEs, Identify CQES 44h)`
    if (asqs === 0) return `AQA.ASQS is 0 (the admin SQ needs at least 2 entries; the field is 0-based)`
    if (acqs === 0) return `AQA.ACQS is 0 (the admin CQ needs at least 2 entries; the field is 0-based)`
    return null
  }

  #becomeReady(): void {
    this.#readyEv = null
    const acqs = ((this.#aqa & N.NVME_AQA_ACQS_MASK) >>> N.NVME_AQA_ACQS_SHIFT) + 1
    const asqs = (this.#aqa & N.NVME_AQA_ASQS_MASK) + 1
    this.#engine.createSq(0, this.#asq, asqs, this.#engine.createCq(0, this.#acq, acqs, true, 0))
    this.#csts |= N.NVME_CSTS_RDY
    this.#updateRunning()
  }

  /** CC.EN 1 -> 0: a controller reset (nvme_ctrl_reset); CSTS.RDY clears disableDelayNs later. */
  #disable(): void {
    const rdy = (this.#csts & N.NVME_CSTS_RDY) !== 0
    this.#resetController()
    this.#csts = rdy ? N.NVME_CSTS_RDY : 0
    if (rdy) this.#disableEv = this.schedule(this.config.disableDelayNs, this.#onDisabled)
  }

  /** CC.SHN set: stop fetching, write the cache back, SHST = occurring, then complete. */
  #startShutdown(): void {
    this.stats.shutdowns++
    this.#shutdown = true
    this.#updateRunning()
    this.#csts = (this.#csts & ~N.NVME_CSTS_SHST_MASK) | N.NVME_CSTS_SHST_OCCUR
    let flushed = 0
    try {
      flushed = this.#storage.flush()
    } catch (e) {
      this.#fatal(`shutdown: writing the cache back failed: ${e instanceof Error ? e.message : String(e)}`)
    }
    if (this.#shutdownEv !== null) this.#shutdownEv.cancelled = true
    this.#shutdownEv = this.schedule(this.config.shutdownDelayNs + flushed / this.config.bytesPerNs, this.#onShutdownDone)
  }

  #updateRunning(): void {
    this.#engine.setRunning((this.#csts & N.NVME_CSTS_RDY) !== 0 && this.#engine.sqs.has(0) && !this.#failed && !this.#shutdown)
  }

  /** Every queue and command gone, features and interrupt state at their defaults (CC and the admin queue registers are kept). */
  #resetController(): void {
    for (const ev of [this.#readyEv, this.#disableEv, this.#shutdownEv]) if (ev !== null) ev.cancelled = true
    this.#readyEv = this.#disableEv = this.#shutdownEv = null
    this.#engine.reset()
    this.#irq.reset()
    this.#admin.reset()
    this.#failed = false
    this.#shutdown = false
    this.stats.resets++
  }

  #powerOn(): void {
    this.#resetController()
    this.#cc = this.#csts = this.#aqa = this.#asq = this.#acq = 0
  }

  /** CSTS.CFS: the controller stops fetching and posting until it is reset. */
  #fatal(why: string): void {
    this.#lastFatal = why
    if (this.#failed) return
    this.#failed = true
    this.#csts |= N.NVME_CSTS_CFS
    this.stats.fatalErrors++
    this.#engine.halt()
  }
}

/** Counts a failed DMA of the data path (the PRP mapper's transactions). */
function countDmaError(stats: NvmeStats, r: MemTxResult): MemTxResult {
  if (r !== MEMTX_OK) stats.dmaErrors++
  return r
}
