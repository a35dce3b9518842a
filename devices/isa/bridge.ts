/**
 * "isa0": a PCI-to-ISA bridge with the PC's legacy DMA controller pair (devices/isa/i8237.ts)
 * and ISA devices behind it (devices/isa/sb16.ts). Datasheet: docs/devices/i8237.md.
 *
 * The emulated CPU has no port I/O instructions, so the bridge exposes the legacy ISA I/O space
 * 0x000-0xfff through its BAR 0 at the ports' offsets: port p is the byte at BAR 0 + p. (Real
 * bridges — PIIX, ICH's LPC — decode those ports from the CPU's I/O space instead; the registers
 * behind them are the same.) Ports no device decodes read 0xff and ignore writes, as a floating
 * ISA bus does. ISA IRQ lines are or-ed into the bridge's INTx level.
 *
 * Third-party DMA: the 8237, not the device, masters the bus. Its cycles go out through the
 * bridge's DmaPort (24 address bits): bus mastering, the IOMMU and the sanitizer see each access,
 * attributed to the this. On a real PC with VT-d the LPC bridge's DMA is likewise translated
 * under the bridge's requester id (Linux identity-maps the low 16 MiB there for the floppy, see
 * CONFIG_INTEL_IOMMU_FLOPPY_WA); here the kernel maps each buffer at an IOVA below 16 MiB instead,
 * so the checks see exactly what the driver handed over.
 */

import type { ClockEvent } from '../machine/clock.js'
import { PciFunction, PciFunctionError } from '../pci/function.js'
import { I8237, type I8237Options } from './i8237.js'
import { ISA_DMA_ADDRESS_BITS } from './i8237-regs.js'
import type { IsaBus, IsaDevice } from './isa.js'

export const ISA_BRIDGE_VENDOR_ID = 0x1de5
export const ISA_BRIDGE_DEVICE_ID = 0x1a00
/** PCI class 06/01/00: bridge, PCI-to-ISA. */
export const ISA_BRIDGE_CLASS = 0x060100
/** BAR 0: the ISA I/O ports 0x000-0xfff at their port offsets. */
export const ISA_BRIDGE_BAR_SIZE = 0x1000

export interface IsaBridgeOptions {
  readonly name?: string
  /** The ISA devices behind the this. */
  readonly devices?: readonly IsaDevice[]
  /** The 8237 pair's options (strict, cycleNs, holdNs, transparent). */
  readonly dma?: I8237Options
}

export class IsaBridge extends PciFunction {
  /** The DMA controller pair. */
  readonly i8237: I8237
  readonly isaDevices: readonly IsaDevice[]
  /** ISA IRQ lines asserted, by line, by who drives them. */
  readonly #irqs = new Map<number, Set<object>>()

  constructor(opts: IsaBridgeOptions = {}) {
    super({
      name: opts.name ?? 'isa0',
      vendor: ISA_BRIDGE_VENDOR_ID,
      device: ISA_BRIDGE_DEVICE_ID,
      classCode: ISA_BRIDGE_CLASS,
      revision: 1,
      bars: [{ size: ISA_BRIDGE_BAR_SIZE }],
      intxPin: 1,
      addressBits: ISA_DMA_ADDRESS_BITS,
    })
    this.i8237 = new I8237(opts.dma)
    this.isaDevices = [...(opts.devices ?? [])]
    const used: [number, number, string][] = [[0x00, 0x10, 'dma1'], [0x80, 0x90, 'dma-page'], [0xc0, 0xe0, 'dma2']]
    for (const d of this.isaDevices) {
      const end = d.ioBase + d.ioSize
      if (!Number.isInteger(d.ioBase) || d.ioBase < 0 || end > ISA_BRIDGE_BAR_SIZE) throw new PciFunctionError(`${this.name}: ${d.name}: I/O ports 0x${d.ioBase.toString(16)}+${d.ioSize} outside 0x000-0xfff`)
      const clash = used.find(([a, b]) => d.ioBase < b && end > a)
      if (clash !== undefined) throw new PciFunctionError(`${this.name}: ${d.name}: I/O ports overlap ${clash[2]}`)
      used.push([d.ioBase, end, d.name])
    }
    const bus: IsaBus = {
      dma: this.i8237,
      now: () => this.machine?.clock.now ?? 0,
      schedule: (ns, fn): ClockEvent => this.schedule(ns, fn),
      setIrq: (irq, level, who) => this.#setIrq(irq, level, who),
      guestError: (m, d) => this.guestError(m, d),
    }
    this.i8237.attach({
      dmaRead: (addr, into, off, len) => this.dmaRead(addr, into, off, len),
      dmaWrite: (addr, from, off, len) => this.dmaWrite(addr, from, off, len),
      stallCpu: (ns) => this.machine?.stallCpu(ns),
      cpuIdle: () => this.machine?.cpuIdle() ?? true,
      guestError: (m, d) => this.guestError(m, d),
    })
    for (const d of this.isaDevices) d.attach(bus)
  }

  protected barRead(_bar: number, off: number, size: 1 | 2 | 4): number {
    let v = 0
    for (let i = 0; i < size; i++) v |= this.#in(off + i) << (8 * i)
    return v >>> 0
  }

  protected barWrite(_bar: number, off: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) this.#out(off + i, (value >>> (8 * i)) & 0xff)
  }

  override reset(): void {
    super.reset()
    this.i8237.reset()
    for (const d of this.isaDevices) d.reset()
    this.#irqs.clear()
  }

  #device(port: number): IsaDevice | undefined {
    return this.isaDevices.find((d) => port >= d.ioBase && port < d.ioBase + d.ioSize)
  }

  #in(port: number): number {
    if (this.i8237.decodes(port)) return this.i8237.ioRead(port)
    const d = this.#device(port)
    return d === undefined ? 0xff : d.ioRead(port - d.ioBase) & 0xff
  }

  #out(port: number, value: number): void {
    if (this.i8237.decodes(port)) this.i8237.ioWrite(port, value)
    else {
      const d = this.#device(port)
      d?.ioWrite(port - d.ioBase, value)
    }
  }

  #setIrq(irq: number, level: boolean, who: object): void {
    let s = this.#irqs.get(irq)
    if (s === undefined) this.#irqs.set(irq, (s = new Set()))
    if (level) s.add(who)
    else s.delete(who)
    let any = false
    for (const set of this.#irqs.values()) if (set.size > 0) any = true
    if (any) {
      if (!this.intxLevel) this.raiseIrq(0)
    } else this.lowerIrq()
  }
}
