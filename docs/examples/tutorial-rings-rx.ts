// The tnic's RX ring caught between an interrupt and the NAPI poll that follows it. The driver asks
// for at most 4000 interrupts a second (ITR): frames arriving inside that window are written by the
// device (DD set) and wait, owned by the driver, until the poll cleans them and hands the
// descriptors back by moving the tail. The pictures come from the live run (host/ring-svg.ts).
import { boot, netUser, pci_register_driver, type BootOptions, type Report } from '../../kernel/index.js'
import { TnicDevice, Wire } from '../../devices/index.js'
import { ETH_P_TEST, TrafficPeer, buildFrame, makeTestPayload } from '../../devices/net/peer.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'
import { ringSvg, snapshotTnicRing, type RingSnapshot } from '../../host/ring-svg.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])

export async function run(
  options: BootOptions = {},
): Promise<{ lines: string[]; reports: Report[]; files: Record<string, string> }> {
  const nic = new TnicDevice({ name: 'tnic0' })
  const sys = boot({ log: 'silent', ...options, devices: [nic] })
  const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'sink' })
  new Wire({ bitsPerSecond: 1e9, latencyNs: 500 }).connect(nic, peer)
  await sys.run(() => pci_register_driver(tnic_make_driver({ rxd: 16, itr: 4000 })))
  const net = netUser(sys)
  await net.ifup('eth0') // ndo_open: the rings, 15 RX buffers given to the device (one kept empty)
  await sys.runFor(1_000_000)

  const lines: string[] = []
  const show = (what: string, s: RingSnapshot) => {
    const dd = s.cells.filter((c) => c.owner === 'driver-done').length
    const dev = s.cells.filter((c) => c.owner === 'device').length
    lines.push(`${what}: RDH ${s.head} RDT ${s.tail} next_to_clean ${s.nextToClean} next_to_use ${s.nextToUse}; device owns ${dev}, done and waiting ${dd}`)
  }
  const frame = (seq: number) => buildFrame({ dst: nic.mac, src: PEER_MAC, etherType: ETH_P_TEST, payload: makeTestPayload(seq, 100, 1) })
  const idle = snapshotTnicRing(sys, nic, 'rx')
  show('idle', idle)
  peer.sendFrame(frame(0)) // the first frame interrupts at once and is cleaned
  await sys.runFor(20_000)
  for (let seq = 1; seq <= 5; seq++) peer.sendFrame(frame(seq)) // inside the ITR window
  await sys.runFor(20_000)
  const waiting = snapshotTnicRing(sys, nic, 'rx')
  show('5 frames inside the ITR window', waiting)
  await sys.runFor(1_000_000) // the throttled interrupt fires; NAPI cleans and refills
  const cleaned = snapshotTnicRing(sys, nic, 'rx')
  show('after the NAPI poll', cleaned)
  return {
    lines,
    reports: sys.reports,
    files: {
      'rings-rx-waiting.svg': ringSvg(waiting),
      'rings-rx-cleaned.svg': ringSvg(cleaned),
    },
  }
}
