/**
 * The tnic reference driver (drivers/net/tnic.ts) on a 10 Gb/s wire to an echo peer: eth0 up,
 * test frames of seeded sizes sent through the driver, every echo received back and checked.
 */
import { netUser } from '../kernel/index.js'
import { ETH_P_TEST, Rng, TnicDevice, TrafficPeer, Wire, buildFrame, checkTestPayload, makeTestPayload } from '../devices/index.js'
import { tnic_make_driver } from '../drivers/net/tnic.js'
import { defineScenario } from './scenario.js'

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])
const FRAMES = 40

export default defineScenario({
  name: 'nic',
  description: `the tnic reference driver sends ${FRAMES} test frames to an echo peer over a wire; every echo is checked`,
  devices: () => [new TnicDevice({ name: 'tnic0' })] as const,
  driver: () => tnic_make_driver(),
  async workload({ sys, devices: [nic], options }) {
    const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'echo', verify: 'none' })
    new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
    const net = netUser(sys)
    const rc = await net.ifup('eth0')
    if (rc !== 0) return { dataOk: false, summary: `ifup eth0 failed: ${rc}` }
    const until = sys.clock + 10_000_000
    await sys.runUntil(() => sys.clock >= until, { timeoutNs: 20_000_000 }) // the watchdog sees the link
    const sock = net.socket('eth0', { capacity: FRAMES + 16 })
    const rng = new Rng(options.seed)
    for (let seq = 0; seq < FRAMES; seq++) {
      const len = 60 + rng.int(1514 - 60 + 1)
      const frame = buildFrame({ dst: PEER_MAC, src: nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len - 14, options.seed) })
      const sent = await net.send('eth0', frame, { frags: seq % 5 === 0 ? 1 + (seq % 3) : 0 })
      if (sent !== 0) return { dataOk: false, summary: `send of frame ${seq} failed: ${sent}` }
    }
    await sys.runUntil(() => sock.pending >= FRAMES, { timeoutNs: 200_000_000 }).catch(() => undefined)
    const seen = new Set<number>()
    let bad = 0
    for (let f = sock.recv(); f !== null; f = sock.recv()) {
      const c = checkTestPayload(f.data.subarray(14), options.seed)
      if (c.ok) seen.add(c.seq)
      else bad++
    }
    sock.close()
    await net.ifdown('eth0')
    const ok = seen.size === FRAMES && bad === 0
    return { dataOk: ok, summary: `${FRAMES} frames sent, ${seen.size} echoed intact${bad > 0 ? `, ${bad} corrupt` : ''}` }
  },
})
