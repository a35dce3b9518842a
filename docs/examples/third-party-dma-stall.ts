// Third-party DMA against bus mastering: what each costs a CPU that is busy meanwhile. A task
// spins for 200 ms (udelay) while the sb16 driver plays 8000 bytes at 44.1 kHz through the ISA
// bridge's 8237 in single and demand mode, and with a transparent bus; then while the copy
// engine, a PCI bus master, copies the same 8000 bytes. Block mode cannot feed the DSP's 64-byte
// FIFO (the datasheet's device-error), so its row is the bare controller moving the 8000 bytes to
// a device that takes them all at once. The 8237 takes the memory bus away from the CPU
// (HOLD/HLDA) for every grant; the copy engine does not.
import {
  boot, kfree, kmalloc, mem_read_bytes, mem_write_bytes, pci_register_driver, udelay,
  type BootOptions, type Report, type System,
} from '../../kernel/index.js'
import { CopyEngine, I8237, IsaBridge, MEMTX_OK, MemoryAudioSink, Sb16 } from '../../devices/index.js'
import { sb16_driver, sb16_params, sb16_play } from '../../drivers/isa/sb16.js'
import { ce_copy, ce_driver } from '../../drivers/misc/copy-engine.js'

const BYTES = 8000
const RATE = 44100
const pcm = Uint8Array.from({ length: BYTES }, (_, i) => (i * 5 + (i >> 7)) & 0xff)

/** The CPU-bound task: 200 ms of spinning, 1 ms at a time. */
async function spin(): Promise<void> {
  for (let i = 0; i < 200; i++) udelay(1000)
  return Promise.resolve()
}

const pad = (s: string | number, n: number) => String(s).padStart(n)
const row = (what: string, grants: number, heldNs: number, sys: System, extra: string) =>
  `${what.padEnd(22)} ${pad(grants, 6)} ${pad((heldNs / 1e6).toFixed(3), 9)} ms ${pad((sys.cpu.stallNs / 1e6).toFixed(3), 8)} ms ${pad(((sys.cpu.stallNs / 200e6) * 100).toFixed(2), 6)} %  ${extra}`

/** Block mode: one grant to terminal count, on the bare controller (a CPU running throughout). */
function block(): string {
  let stall = 0
  const dma = new I8237()
  dma.attach({
    dmaRead: (_a, into, off, len) => (into.fill(0x80, off, off + len), MEMTX_OK),
    dmaWrite: () => MEMTX_OK,
    stallCpu: (ns) => void (stall += ns),
    cpuIdle: () => false,
    guestError: (m) => {
      throw new Error(m)
    },
  })
  for (const [port, v] of [[0x0a, 5], [0x0c, 0], [0x0b, 0x89], [0x83, 0x01], [0x02, 0], [0x02, 0], [0x03, (BYTES - 1) & 0xff], [0x03, (BYTES - 1) >> 8], [0x0a, 1]]) dma.ioWrite(port!, v!)
  dma.readMemory(1, new Uint8Array(BYTES))
  const s = dma.stats
  return `${'8237 block'.padEnd(22)} ${pad(s.grants, 6)} ${pad((s.holdNs / 1e6).toFixed(3), 9)} ms ${pad((stall / 1e6).toFixed(3), 8)} ms ${pad(((stall / 200e6) * 100).toFixed(2), 6)} %  one burst, the CPU frozen throughout`
}

async function isa(mode: 'single' | 'demand' | 'transparent', options: BootOptions): Promise<{ line: string; reports: Report[] }> {
  const sink = new MemoryAudioSink()
  const sb = new Sb16({ sink })
  const bridge = new IsaBridge({ devices: [sb], dma: { transparent: mode === 'transparent' } })
  const sys = boot({ log: 'silent', ...options, devices: [bridge] })
  const saved = sb16_params.dma_mode
  sb16_params.dma_mode = mode === 'demand' ? 0x00 : 0x40
  try {
    await sys.run(() => pci_register_driver(sb16_driver))
    const pdev = sys.pciDevice('isa0')!
    // The player starts first: it programs the card, then sleeps while the spinner has the CPU.
    await Promise.all([sys.run(() => sb16_play(pdev, pcm, RATE)), sys.run(spin)])
  } finally {
    sb16_params.dma_mode = saved
  }
  const exact = sink.bytes.length >= BYTES && sink.bytes.subarray(0, BYTES).every((b, i) => b === pcm[i])
  const s = bridge.i8237.stats
  return { line: row(`8237 ${mode}`, s.grants, s.holdNs, sys, `underrun ${pad(sb.stats.underruns, 5)} B, ${exact ? 'bit-exact' : 'not bit-exact'}`), reports: sys.reports }
}

async function busMaster(options: BootOptions): Promise<{ line: string; reports: Report[] }> {
  const ce = new CopyEngine({ name: 'ce0' })
  const sys = boot({ log: 'silent', ...options, devices: [ce] })
  await sys.run(() => pci_register_driver(ce_driver))
  const pdev = sys.pciDevice('ce0')!
  let exact = false
  await Promise.all([
    sys.run(async () => {
      const src = kmalloc(BYTES)!
      const dst = kmalloc(BYTES)!
      mem_write_bytes(src, pcm)
      await ce_copy(pdev, dst, src, BYTES)
      exact = mem_read_bytes(dst, BYTES).every((b, i) => b === pcm[i])
      kfree(src)
      kfree(dst)
    }),
    sys.run(spin),
  ])
  return { line: row('copy engine (master)', 1, ce.transferNs(BYTES), sys, `underrun     - B, ${exact ? 'bit-exact' : 'not bit-exact'}`), reports: sys.reports }
}

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const lines = [
    `8000 bytes while a task spins for 200 ms (8237: cycle 1000 ns, hold 250 ns per grant)`,
    `${'transfer'.padEnd(22)} ${'grants'.padStart(6)} ${'bus held'.padStart(12)} ${'CPU stall'.padStart(11)} ${'of 200 ms'.padStart(8)}`,
  ]
  const reports: Report[] = []
  for (const mode of ['single', 'demand', 'transparent'] as const) {
    const r = await isa(mode, options)
    lines.push(r.line)
    reports.push(...r.reports)
    if (mode === 'demand') lines.push(block())
  }
  const r = await busMaster(options)
  lines.push(r.line)
  reports.push(...r.reports)
  for (const rep of reports) if (rep.kind === 'device-error') lines.push(`device-error: ${rep.message.split(' (')[0]!}`)
  return { lines, reports }
}
