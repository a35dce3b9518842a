/**
 * The NIC conformance suite (test/net/conformance.ts) on the wire-nic fixture
 * (test/fixtures/wire-nic.ts): a NAPI driver whose "rings" are JavaScript calls, so it declares no
 * ring size (its receive FIFO holds 256 frames and drops beyond, counted in `dropped`).
 */
import { WirePort, wireNicDriver } from '../fixtures/wire-nic.js'
import { nicConformance } from './conformance.js'

/** The fixture's driver finds its port by PCI function name. */
const ports = new Map<string, WirePort>()

nicConformance({
  name: 'wire-nic',
  driver: () => wireNicDriver(ports),
  device: (name, mac) => {
    const port = new WirePort(name, mac)
    ports.set(name, port)
    return port
  },
  rxDropped: (port) => port.dropped,
})
