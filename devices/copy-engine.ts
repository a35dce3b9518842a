/**
 * "ce": the memory-to-memory copy engine that DMA primers draw — source, destination, length,
 * start, a completion interrupt — plus a descriptor-chain (scatter-gather) mode and on-card SRAM
 * with a PIO data port, so the CPU can move the same bytes itself. Datasheet:
 * docs/devices/copy-engine.md.
 *
 * Modelled on the generic DMA engines of the primers and of real parts: Renode's `DmaEngine`
 * (renode-infrastructure src/Emulator/Main/Peripherals/DMA) for the copy itself, the Xilinx AXI
 * CDMA (PG034: simple mode with SA/DA/BTT registers, scatter-gather mode with a linked list of
 * descriptors, IOC interrupt, DMA errors latched in a status register) for the register model, and
 * QEMU's hw/nvme for when work happens: START only latches the registers and schedules the
 * transfer on the virtual clock; the bytes move through the function's DmaPort (bus master, IOMMU,
 * sanitizer) in bursts (64 KiB by default) when the transfer completes, `setupNs + len / bytesPerNs`
 * later. A memory-to-memory burst is one read and one write transaction (DmaPort.copy).
 * Descriptors are re-read from memory when each one starts, as QEMU's e1000 and NVMe do.
 */

import { MEMTX_OK, MEMTX_WRITE_SIDE } from './machine/dma-port.js'
import { RegisterFile } from './framework/regfile.js'
import { PciFunction, PciFunctionError } from './pci/function.js'
import {
  CE_BAR_SIZE, CE_CLASS, CE_CTRL, CE_CTRL_CHAIN, CE_CTRL_IRQ_EN, CE_CTRL_MODE_MASK,
  CE_CTRL_MODE_SHIFT, CE_CTRL_START, CE_DEFAULT_BURST, CE_DESC_COUNT, CE_DESC_DST, CE_DESC_FLAGS, CE_DESC_HI,
  CE_DESC_IRQ, CE_DESC_LAST, CE_DESC_LEN, CE_DESC_LO, CE_DESC_NEXT, CE_DESC_SIZE, CE_DESC_SRC,
  CE_DEVICE_ID, CE_DST_HI, CE_DST_LO, CE_ERR_BUSY, CE_ERR_CHAIN_TOO_LONG, CE_ERR_CODE,
  CE_ERR_DESC_ALIGN, CE_ERR_DESC_FLAGS, CE_ERR_DESC_READ, CE_ERR_DMA_READ, CE_ERR_DMA_WRITE,
  CE_ERR_INTERNAL, CE_ERR_LEN, CE_ERR_MODE, CE_ERR_NONE, CE_ERR_SRAM_RANGE, CE_FAULT_DELAY_NS,
  CE_ID, CE_ID_VALUE, CE_LEN, CE_MAX_CHAIN, CE_MAX_LEN, CE_MODE_MEM_TO_SRAM, CE_MODE_SRAM_TO_MEM,
  CE_MSIX_PBA, CE_MSIX_TABLE, CE_PIO_ADDR, CE_PIO_DATA, CE_SRAM_SIZE, CE_SRC_HI, CE_SRC_LO,
  CE_STATUS, CE_STATUS_BUSY, CE_STATUS_DESC_DONE, CE_STATUS_DONE, CE_STATUS_ERR, CE_VENDOR_ID,
  CE_VERSION, CE_VERSION_VALUE,
} from './copy-engine-regs.js'

export interface CopyEngineOptions {
  readonly name?: string
  /** On-card SRAM in bytes (default 4 MiB; a multiple of 4). */
  readonly sramSize?: number
  /** Fixed cost of each transfer or descriptor (default 1000 ns). */
  readonly setupNs?: number
  /** Copy bandwidth (default 4 bytes/ns = 4 GB/s). */
  readonly bytesPerNs?: number
  /** Address bits the DMA engine drives (default 64). */
  readonly addressBits?: number
  /** Bytes per DMA burst: a power of two from 4 KiB to 1 MiB (default 64 KiB). */
  readonly burstBytes?: number
}

interface Job {
  readonly src: number
  readonly dst: number
  readonly len: number
  readonly flags: number
  readonly next: number
}

export class CopyEngine extends PciFunction {
  readonly sramSize: number
  readonly setupNs: number
  readonly bytesPerNs: number
  readonly burstBytes: number
  readonly regs: RegisterFile
  /** Transfers and descriptors completed, and the bytes they moved. */
  readonly stats = { transfers: 0, descriptors: 0, bytes: 0 }
  #sram: Uint8Array | null = null
  readonly #desc = new Uint8Array(CE_DESC_SIZE)
  readonly #descView = new DataView(this.#desc.buffer)
  #busy = false
  #chain = false
  #mode = 0
  #irqLevel = false

  constructor(opts: CopyEngineOptions = {}) {
    super({
      name: opts.name ?? 'ce0',
      vendor: CE_VENDOR_ID,
      device: CE_DEVICE_ID,
      classCode: CE_CLASS,
      revision: 1,
      bars: [{ size: CE_BAR_SIZE }],
      msixVectors: 1,
      msixTableOffset: CE_MSIX_TABLE,
      msixPbaOffset: CE_MSIX_PBA,
      intxPin: 1,
      addressBits: opts.addressBits ?? 64,
    })
    const sramSize = opts.sramSize ?? 4 << 20
    if (!Number.isInteger(sramSize) || sramSize < 4 || sramSize % 4 !== 0 || sramSize > 2 ** 30) {
      throw new PciFunctionError(`${this.name}: sramSize must be a multiple of 4 from 4 bytes to 1 GiB, got ${sramSize}`)
    }
    const setupNs = opts.setupNs ?? 1000
    if (!Number.isFinite(setupNs) || setupNs < 0) throw new PciFunctionError(`${this.name}: setupNs must be a non-negative number, got ${setupNs}`)
    const bytesPerNs = opts.bytesPerNs ?? 4
    if (!Number.isFinite(bytesPerNs) || bytesPerNs <= 0) throw new PciFunctionError(`${this.name}: bytesPerNs must be a positive number, got ${bytesPerNs}`)
    const burst = opts.burstBytes ?? CE_DEFAULT_BURST
    if (!Number.isInteger(burst) || burst < 4096 || burst > 1 << 20 || (burst & (burst - 1)) !== 0) {
      throw new PciFunctionError(`${this.name}: burstBytes must be a power of two from 4096 to 1 MiB, got ${burst}`)
    }
    this.burstBytes = burst
    this.sramSize = sramSize
    this.setupNs = setupNs
    this.bytesPerNs = bytesPerNs
    this.regs = new RegisterFile(this.name, [
      { name: 'ID', offset: CE_ID, readOnly: true, reset: CE_ID_VALUE },
      { name: 'VERSION', offset: CE_VERSION, readOnly: true, reset: CE_VERSION_VALUE },
      { name: 'SRAM_SIZE', offset: CE_SRAM_SIZE, readOnly: true, reset: sramSize },
      { name: 'SRC_LO', offset: CE_SRC_LO },
      { name: 'SRC_HI', offset: CE_SRC_HI },
      { name: 'DST_LO', offset: CE_DST_LO },
      { name: 'DST_HI', offset: CE_DST_HI },
      { name: 'LEN', offset: CE_LEN },
      {
        name: 'CTRL',
        offset: CE_CTRL,
        writeMask: CE_CTRL_START | CE_CTRL_IRQ_EN | CE_CTRL_MODE_MASK | CE_CTRL_CHAIN,
        write: (v) => this.#ctrlWritten(v),
      },
      {
        name: 'STATUS',
        offset: CE_STATUS,
        w1c: true,
        writeMask: CE_STATUS_DONE | CE_STATUS_ERR | CE_STATUS_DESC_DONE,
        write: (v, old) => {
          if ((old & CE_STATUS_ERR) !== 0 && (v & CE_STATUS_ERR) === 0) this.regs.set('ERR_CODE', CE_ERR_NONE)
          this.#updateIrq(false)
        },
      },
      { name: 'ERR_CODE', offset: CE_ERR_CODE, readOnly: true },
      { name: 'DESC_LO', offset: CE_DESC_LO },
      { name: 'DESC_HI', offset: CE_DESC_HI },
      { name: 'DESC_COUNT', offset: CE_DESC_COUNT, readOnly: true },
      { name: 'PIO_ADDR', offset: CE_PIO_ADDR, writeMask: 0xffff_fffc },
      { name: 'PIO_DATA', offset: CE_PIO_DATA, read: () => this.#pio(false, 0), write: (v) => this.#pio(true, v) },
    ])
  }

  /** Whether a transfer is in progress (STATUS.BUSY). */
  get busy(): boolean {
    return this.#busy
  }

  /** The on-card SRAM (allocated on first use). */
  get sram(): Uint8Array {
    this.#sram ??= new Uint8Array(this.sramSize)
    return this.#sram
  }

  /** Virtual time one transfer (or descriptor) of len bytes takes, in ns. */
  transferNs(len: number): number {
    return this.setupNs + Math.ceil(len / this.bytesPerNs)
  }

  protected barRead(_bar: number, off: number, size: 1 | 2 | 4): number {
    return this.regs.read(off, size)
  }

  protected barWrite(_bar: number, off: number, size: 1 | 2 | 4, value: number): void {
    this.regs.write(off, size, value)
  }

  override reset(): void {
    super.reset()
    this.regs.reset()
    this.#busy = false
    this.#irqLevel = false
  }

  #ctrlWritten(ctrl: number): void {
    if ((ctrl & CE_CTRL_START) === 0) {
      this.#updateIrq(false)
      return
    }
    this.regs.set('CTRL', ctrl & ~CE_CTRL_START) // START is self-clearing
    if (this.#busy) {
      this.#error(CE_ERR_BUSY, 'START written while a transfer is in progress (STATUS.BUSY)', { ctrl })
      return
    }
    const mode = (ctrl & CE_CTRL_MODE_MASK) >> CE_CTRL_MODE_SHIFT
    if (mode > CE_MODE_SRAM_TO_MEM) {
      this.#error(CE_ERR_MODE, `CTRL.MODE ${mode} is reserved`, { ctrl })
      return
    }
    this.#mode = mode
    this.#chain = (ctrl & CE_CTRL_CHAIN) !== 0
    this.regs.set('DESC_COUNT', 0)
    if (this.#chain) {
      const desc = this.#reg64('DESC')
      if (desc % CE_DESC_SIZE !== 0) {
        this.#error(CE_ERR_DESC_ALIGN, `descriptor address 0x${desc.toString(16)} is not ${CE_DESC_SIZE}-byte aligned`, { desc })
        return
      }
      this.#setBusy(true)
      this.schedule(0, () => this.#fetch(desc))
      return
    }
    const job: Job = { src: this.#reg64('SRC'), dst: this.#reg64('DST'), len: this.regs.get('LEN'), flags: CE_DESC_LAST, next: 0 }
    if (!this.#valid(job)) return
    this.#setBusy(true)
    this.#run(job)
  }

  /** Checks a transfer against the mode and limits; on failure flags ERR and ends the run. */
  #valid(job: Job): boolean {
    const where = this.#chain ? `descriptor ${this.regs.get('DESC_COUNT')}: ` : ''
    if (job.len === 0 || job.len > CE_MAX_LEN) {
      this.#error(CE_ERR_LEN, `${where}length ${job.len} is outside 1..${CE_MAX_LEN}`, { len: job.len })
      return false
    }
    const sram = this.#mode === CE_MODE_MEM_TO_SRAM ? job.dst : this.#mode === CE_MODE_SRAM_TO_MEM ? job.src : -1
    if (sram >= 0 && sram + job.len > this.sramSize) {
      this.#error(CE_ERR_SRAM_RANGE, `${where}SRAM range 0x${sram.toString(16)}+${job.len} exceeds the ${this.sramSize}-byte SRAM`, { offset: sram, len: job.len })
      return false
    }
    return true
  }

  /** Schedules the completion of one transfer or descriptor. */
  #run(job: Job): void {
    const delay = this.fault('delay-completion')
    const extra = delay === null ? 0 : (delay.delayNs ?? CE_FAULT_DELAY_NS)
    this.schedule(this.transferNs(job.len) + extra, () => this.#complete(job))
  }

  #fetch(addr: number): void {
    const r = this.dmaRead(addr, this.#desc)
    if (r !== MEMTX_OK) {
      this.#error(CE_ERR_DESC_READ, null, { desc: addr }, r)
      return
    }
    const v = this.#descView
    const le64 = (off: number): number => v.getUint32(off + 4, true) * 0x1_0000_0000 + v.getUint32(off, true)
    const job: Job = {
      src: le64(CE_DESC_SRC),
      dst: le64(CE_DESC_DST),
      len: v.getUint32(CE_DESC_LEN, true),
      flags: v.getUint32(CE_DESC_FLAGS, true),
      next: le64(CE_DESC_NEXT),
    }
    if ((job.flags & ~(CE_DESC_LAST | CE_DESC_IRQ)) !== 0) {
      const n = this.regs.get('DESC_COUNT')
      this.#error(CE_ERR_DESC_FLAGS, `descriptor ${n} at 0x${addr.toString(16)}: reserved flag bits set (0x${job.flags.toString(16)})`, { desc: addr, flags: job.flags })
      return
    }
    if (this.#valid(job)) this.#run(job)
  }

  #complete(job: Job): void {
    const injected = this.fault('error-status')
    if (injected !== null) {
      this.#error(injected.status ?? CE_ERR_INTERNAL, null, {})
      return
    }
    const r = this.#move(job)
    if (r !== 0) {
      this.#error(r & 0xff, null, { src: job.src, dst: job.dst, len: job.len }, r >> 8)
      return
    }
    this.stats.bytes += job.len
    if (!this.#chain) {
      this.stats.transfers++
      this.#finish(CE_STATUS_DONE)
      return
    }
    this.stats.descriptors++
    const count = this.regs.get('DESC_COUNT') + 1
    this.regs.set('DESC_COUNT', count)
    if ((job.flags & CE_DESC_LAST) !== 0) {
      this.stats.transfers++
      this.#finish(CE_STATUS_DONE)
      return
    }
    if ((job.flags & CE_DESC_IRQ) !== 0) {
      this.regs.set('STATUS', this.regs.get('STATUS') | CE_STATUS_DESC_DONE)
      this.#updateIrq(true)
    }
    if (count >= CE_MAX_CHAIN) {
      this.#error(CE_ERR_CHAIN_TOO_LONG, `chain longer than ${CE_MAX_CHAIN} descriptors (a loop?)`, { count })
    } else if (job.next % CE_DESC_SIZE !== 0) {
      this.#error(CE_ERR_DESC_ALIGN, `descriptor ${count - 1}: next 0x${job.next.toString(16)} is not ${CE_DESC_SIZE}-byte aligned`, { next: job.next })
    } else this.#fetch(job.next)
  }

  /** Moves the bytes of one transfer; returns 0, or an error code with the MemTxResult in bits 15:8. */
  #move(job: Job): number {
    const { src, dst, len } = job
    const burst = this.burstBytes
    for (let done = 0; done < len; done += burst) {
      const n = Math.min(burst, len - done)
      if (this.#mode === CE_MODE_MEM_TO_SRAM) {
        const r = this.dmaRead(src + done, this.sram.subarray(dst + done, dst + done + n))
        if (r !== MEMTX_OK) return CE_ERR_DMA_READ | (r << 8)
      } else if (this.#mode === CE_MODE_SRAM_TO_MEM) {
        const r = this.dmaWrite(dst + done, this.sram.subarray(src + done, src + done + n))
        if (r !== MEMTX_OK) return CE_ERR_DMA_WRITE | (r << 8)
      } else {
        const r = this.dmaCopy(dst + done, src + done, n)
        if (r !== MEMTX_OK) return (r & MEMTX_WRITE_SIDE) !== 0 ? CE_ERR_DMA_WRITE | ((r & 0xff) << 8) : CE_ERR_DMA_READ | (r << 8)
      }
    }
    return 0
  }

  /**
   * Latches an error: STATUS.ERR and ERR_CODE (code | memtx << 8). A message means the guest
   * programmed something the engine rejects (a guest error); DMA failures and injected errors
   * have none (the bus or the fault injector already told). Errors found while BUSY end the run.
   */
  #error(code: number, message: string | null, details: Record<string, number>, memtx = 0): void {
    if (message !== null) this.guestError(message, { code, ...details })
    this.regs.set('ERR_CODE', (code & 0xff) | ((memtx & 0xff) << 8))
    if (code === CE_ERR_BUSY) {
      this.regs.set('STATUS', this.regs.get('STATUS') | CE_STATUS_ERR)
      this.#updateIrq(true)
    } else this.#finish(CE_STATUS_ERR)
  }

  #finish(bits: number): void {
    this.#setBusy(false)
    this.regs.set('STATUS', this.regs.get('STATUS') | bits)
    this.#updateIrq(true)
  }

  #setBusy(busy: boolean): void {
    this.#busy = busy
    const s = this.regs.get('STATUS')
    this.regs.set('STATUS', busy ? s | CE_STATUS_BUSY : s & ~CE_STATUS_BUSY)
  }

  /**
   * The interrupt output: level = CTRL.IRQ_EN && STATUS & (DONE | ERR | DESC_DONE). An event
   * (completion, error) raises it again; the level going up raises it; going down lowers INTx.
   */
  #updateIrq(event: boolean): void {
    const level = (this.regs.get('CTRL') & CE_CTRL_IRQ_EN) !== 0 && (this.regs.get('STATUS') & (CE_STATUS_DONE | CE_STATUS_ERR | CE_STATUS_DESC_DONE)) !== 0
    const rising = level && !this.#irqLevel
    this.#irqLevel = level
    if (!level) this.lowerIrq()
    else if (event || rising) this.raiseIrq(0)
  }

  /** A 64-bit address from a _LO/_HI register pair. */
  #reg64(name: 'SRC' | 'DST' | 'DESC'): number {
    return this.regs.get(`${name}_HI`) * 0x1_0000_0000 + this.regs.get(`${name}_LO`)
  }

  /** One PIO_DATA access: 32 bits of SRAM at PIO_ADDR, which then advances by 4. */
  #pio(write: boolean, value: number): number {
    const addr = this.regs.get('PIO_ADDR')
    if (addr + 4 > this.sramSize) {
      this.guestError(`PIO_DATA ${write ? 'write' : 'read'} at PIO_ADDR 0x${addr.toString(16)} beyond the ${this.sramSize}-byte SRAM`, { code: CE_ERR_SRAM_RANGE, addr })
      return 0xffff_ffff
    }
    const s = this.sram
    let v = 0
    if (write) for (let i = 0; i < 4; i++) s[addr + i] = (value >>> (8 * i)) & 0xff
    else v = (s[addr]! | (s[addr + 1]! << 8) | (s[addr + 2]! << 16) | (s[addr + 3]! << 24)) >>> 0
    this.regs.set('PIO_ADDR', addr + 4)
    return v
  }
}
