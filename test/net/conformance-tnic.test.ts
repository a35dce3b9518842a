/**
 * The NIC conformance suite (test/net/conformance.ts) on the reference tnic driver
 * (drivers/net/tnic.ts) and the tnic device: link and ping, 10,000 frames each way with payload
 * checks, on every platform of the matrix, the rings wrapping, RX overrun recovery, TX ring full
 * with queue stop and wake, and ifdown/ifup cycles without leaks — with zero reports throughout.
 */
import { TnicDevice } from '../../devices/index.js'
import { TNIC_DEFAULT_RXD, TNIC_DEFAULT_TXD, tnic_make_driver } from '../../drivers/net/tnic.js'
import { nicConformance } from './conformance.js'

nicConformance({
  name: 'tnic',
  driver: () => tnic_make_driver(),
  device: (name, mac) => new TnicDevice({ name, mac }),
  ringSize: { rx: TNIC_DEFAULT_RXD, tx: TNIC_DEFAULT_TXD },
  // MPC counts both: frames that found no buffer, and frames the FIFO had no room for.
  rxDropped: (d) => d.stats.rxNoBuffers + d.stats.rxMissed,
})
