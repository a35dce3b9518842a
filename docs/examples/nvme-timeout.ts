// nvme_timeout's three ways out. First a lost interrupt (the fault injector's 'drop-irq'): the
// completion entry is in the CQ but nobody looks; 30 s later the block layer's timer calls
// nvme_timeout, which polls the CQ and finds it. Then a command the controller holds ('delay-
// completion', 500 s): nvme_timeout polls, finds nothing, and sends an Abort admin command for it;
// the controller ends the write with ABORT_REQ, and the driver resends it, which completes at once.
// Last, a controller that fails the Abort (an internal error): the write is still out at its next timeout, so
// nvme_timeout schedules the reset work, which disables the controller, unmaps and requeues the
// write, creates the queues again and sends it once more. Returns the kernel log, stamped with
// virtual time as dmesg stamps it, and what reads find at the written LBAs.
import { blockUser, boot, pci_register_driver, type BootOptions, type Report, type System } from '../../kernel/index.js'
import { NvmeController } from '../../devices/index.js'
import { nvme_make_driver } from '../../drivers/nvme/nvme.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const lines: string[] = []
  const dmesg = (_: object, msg: string) => lines.push(`[${(sys.clock / 1e9).toFixed(6).padStart(12)}] ${msg}`)
  const log = { error: dmesg, warn: dmesg, info: dmesg, debug: () => undefined }
  const ctrl = new NvmeController({ name: 'nvme0', sizeBytes: 32 << 20 })
  const sys: System = boot({ ...options, log, devices: [ctrl] })
  await sys.run(() => pci_register_driver(nvme_make_driver({ io_queues: 2 }))) // probe
  const blk = blockUser(sys)

  const lost = new Uint8Array(4096).fill(0x5a)
  sys.machine.faults.add({ device: 'nvme0', kind: 'drop-irq', count: 1 }) // the next interrupt is lost
  await blk.write('nvme0n1', 0, lost)
  const again = await blk.read('nvme0n1', 0, 8)
  lines.push(`--- lost interrupt: read back ${again.every((b) => b === 0x5a) ? 'identical' : 'DIFFERENT'}; controller resets: ${ctrl.stats.resets}`)

  sys.machine.faults.add({ device: 'nvme0', kind: 'delay-completion', count: 1, delayNs: 500e9 })
  const data = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff)
  const start = sys.clock
  await blk.write('nvme0n1', 64, data) // returns once the resent write has completed
  lines.push(`--- the write took ${((sys.clock - start) / 1e9).toFixed(1)} s; controller resets: ${ctrl.stats.resets}`)
  const back = await blk.read('nvme0n1', 64, 16)
  lines.push(`--- read back ${back.length} bytes: ${back.every((b, i) => b === data[i]) ? 'identical' : 'DIFFERENT'}`)

  sys.machine.faults.add({ device: 'nvme0', kind: 'delay-completion', count: 1, delayNs: 500e9 }) // the write
  sys.machine.faults.add({ device: 'nvme0', kind: 'error-status', after: 1, count: 1 }) // the command after it: the Abort fails
  const more = new Uint8Array(4096).fill(0xc3)
  const t2 = sys.clock
  await blk.write('nvme0n1', 128, more)
  lines.push(`--- the write took ${((sys.clock - t2) / 1e9).toFixed(1)} s; controller resets: ${ctrl.stats.resets}`)
  const back2 = await blk.read('nvme0n1', 128, 8)
  lines.push(`--- read back ${back2.length} bytes: ${back2.every((b) => b === 0xc3) ? 'identical' : 'DIFFERENT'}`)
  lines.push(`--- timeouts counted by the block layer: ${blk.stats('nvme0n1').timeouts}`)
  return { lines, reports: sys.reports }
}
