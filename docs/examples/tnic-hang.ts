// The tnic driver recovering from a hung transmitter. One failed DMA (the fault injector's
// 'fail-dma') hangs the NIC's TX ring (datasheet §10); the driver's watchdog sees a frame queued
// for too long, prints "Detected Tx Unit Hang" and dumps the rings (e1000_dump) and stops the
// queue; the stack's TX watchdog times the queue out and calls ndo_tx_timeout; the reset task
// brings the NIC down and up again, and frames flow. Returns the kernel log, stamped with virtual
// time as dmesg stamps it.
import { boot, netUser, pci_register_driver, type BootOptions, type Report, type System } from '../../kernel/index.js'
import { TnicDevice, Wire } from '../../devices/index.js'
import { ETH_P_TEST, TrafficPeer, buildFrame, makeTestPayload } from '../../devices/net/peer.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const lines: string[] = []
  const dumped = new Set<string>() // the hang is found again every 2 s: print each dump line once
  const dmesg = (_: object, msg: string) => {
    const dumpLine = / (Tx|Rx) Ring Summary| T \[/.test(msg)
    if (dumpLine && dumped.has(msg)) return
    if (dumpLine) dumped.add(msg)
    lines.push(`[${(sys.clock / 1e9).toFixed(6).padStart(12)}] ${msg}`)
  }
  const log = { error: dmesg, warn: dmesg, info: dmesg, debug: () => undefined }
  const nic = new TnicDevice({ name: 'tnic0' })
  const sys: System = boot({ ...options, log, devices: [nic] })
  const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'sink' })
  new Wire({ bitsPerSecond: 1e9, latencyNs: 500 }).connect(nic, peer)
  await sys.run(() => pci_register_driver(tnic_make_driver())) // probe
  const net = netUser(sys)
  await net.ifup('eth0') // ndo_open: rings, buffers, IRQ; the watchdog then sees the link
  await sys.runFor(10_000_000)

  sys.machine.faults.add({ device: 'tnic0', kind: 'fail-dma', count: 1 }) // the NIC's next DMA fails
  const frame = (seq: number) => buildFrame({ dst: PEER_MAC, src: nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, 100, 1) })
  for (let seq = 0; seq < 3; seq++) await net.send('eth0', frame(seq))
  await sys.runFor(1_000_000)
  const e = nic.lastDmaError!
  lines.push(`--- the NIC: ${e.ring.toUpperCase()} ring hung: ${e.what} at 0x${e.bus.toString(16)} failed`)

  await sys.runFor(12e9) // 12 s: the driver's watchdog runs every 2 s, the stack's after 5 s
  lines.push(`--- TX ring hung: ${nic.txStalled}; ${(await net.stats('eth0')).tx_timeout} TX timeout`)
  for (let seq = 3; seq < 8; seq++) await net.send('eth0', frame(seq))
  await sys.runFor(1_000_000)
  lines.push(`--- 5 frames sent after the reset, the peer received ${peer.stats.verified} (in all)`)
  return { lines, reports: sys.reports }
}
