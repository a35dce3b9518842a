// Helpers for tests that drive the hardware directly (no kernel): a machine, a PCI function with
// memory decoding and bus mastering on, register accessors and a clock runner.
import {
  CE_CTRL,
  CE_STATUS,
  CE_STATUS_BUSY,
  CopyEngine,
  Machine,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PciFunction,
  type Arch,
  type CopyEngineOptions,
  type IommuMode,
} from '../../devices/index.js'

export const RAM = 0x4000_0000 // dram0, below 4 GiB
export const HIGH_RAM = 0x8_0000_0000 // dram1, above 4 GiB

export interface HwOptions {
  arch?: Arch
  coherent?: boolean
  iommu?: IommuMode
  seed?: number
}

export function machine(o: HwOptions = {}): Machine {
  const arch = o.arch ?? 'arm64'
  return new Machine({ arch, coherent: o.coherent ?? arch === 'x86_64', seed: o.seed ?? 1, iommu: o.iommu ?? 'off' })
}

/** Runs every clock event due by `limit` (all of them by default); returns the count. */
export function runClock(m: Machine, limit = Number.POSITIVE_INFINITY): number {
  let n = 0
  while (m.clock.step(limit)) n++
  return n
}

export function enable(fn: PciFunction, bits = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER): void {
  fn.configWrite(PCI_COMMAND, 2, bits)
}

export function ramBytes(m: Machine, pa: number, len: number): Uint8Array {
  const b = new Uint8Array(len)
  m.ram.read(pa, b, 0, len)
  return b
}

export function pattern(len: number, seed = 1): Uint8Array {
  const b = new Uint8Array(len)
  for (let i = 0; i < len; i++) b[i] = (i * 7 + seed * 13 + (i >> 8)) & 0xff
  return b
}

export function copyEngine(opts: CopyEngineOptions = {}, hw: HwOptions = {}) {
  const m = machine(hw)
  const ce = m.pci.add(new CopyEngine(opts))
  enable(ce)
  const errors: { device: string; message: string; details?: Record<string, number | string | boolean> }[] = []
  m.onGuestError = (device, message, details) => errors.push(details === undefined ? { device, message } : { device, message, details })
  const w = (off: number, v: number): void => ce.mmioWrite(0, off, 4, v)
  const r = (off: number): number => ce.mmioRead(0, off, 4) as number
  /** Starts a transfer with the given CTRL bits and runs the clock until BUSY clears. */
  const start = (ctrl: number): number => {
    w(CE_CTRL, ctrl | 1)
    runClock(m)
    expectIdle()
    return r(CE_STATUS)
  }
  const expectIdle = (): void => {
    if ((r(CE_STATUS) & CE_STATUS_BUSY) !== 0) throw new Error('copy engine still busy after the clock ran dry')
  }
  return { m, ce, errors, w, r, start }
}
