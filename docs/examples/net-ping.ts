// The network subsystem in one run: two interfaces joined back to back (the veth test fixture),
// brought up and addressed from the harness's user space, a raw frame sent in page fragments to a
// packet socket, and a ping with its ARP resolution, on virtual time.
import { boot, netUser, type BootOptions, type Report } from '../../kernel/index.js'
import { etherFrame, vethPair } from '../../test/fixtures/veth.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const { a, b } = await vethPair(sys) // kernel code in a task: alloc_etherdev, register_netdev
  const net = netUser(sys)
  const lines: string[] = []
  await net.ifup('eth0') // ip link set eth0 up: ndo_open runs in a process task
  await net.ifup('eth1')
  net.setAddress('eth0', '10.0.0.1/24')
  net.setAddress('eth1', '10.0.0.2/24')
  for (const d of net.devices()) lines.push(`${d.name} ${d.mac} ${d.address} up=${d.up} carrier=${d.carrier}`)

  const sock = net.socket('eth1') // a packet socket bound to eth1
  const rc = await net.send('eth0', etherFrame(b.dev_addr, a.dev_addr, 0x88b5, 100), { frags: 2 })
  const f = sock.recv()!
  lines.push(`send -> ${rc}; eth1 received ${f.data.length} bytes, EtherType 0x${f.protocol.toString(16)}`)

  const r = await net.ping('eth0', '10.0.0.2', { count: 3, intervalMs: 10 })
  for (const x of r.replies) lines.push(`${x.bytes} bytes from ${x.from}: icmp_seq=${x.seq} ttl=${x.ttl} time=${Math.round(x.rttNs)} ns`)
  lines.push(`${r.transmitted} packets transmitted, ${r.received} received`)
  lines.push(`eth0 neighbours: ${net.arp('eth0').map((e) => `${e.ip} lladdr ${e.mac}`).join(', ')}`)
  const st = await net.stats('eth1')
  lines.push(`eth1: rx_packets ${st.rx_packets} tx_packets ${st.tx_packets}, sk_buffs in use: ${net.skbsInUse}`)
  return { lines, reports: sys.reports }
}
