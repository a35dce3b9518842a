/**
 * The soak (issue 9): the three reference drivers on one system at once — the tnic sending test
 * frames to an echo peer, the NVMe driver under verified fio, the mini-HDA driver playing — with
 * every check on (stack capture off), until `--ops` operations are done (a frame echoed, an I/O
 * completed, an audio period played). It checks that every echo is intact, fio verifies, the audio
 * arrives bit-exact, nothing is reported, and the emulator's memory stays flat: the JS heap after a
 * full GC, sampled at each tenth of the run, may not keep growing: the last sample (after the
 * run) may exceed the first (after a warm-up tenth) by at most --max-growth-mb.
 *
 *   node --expose-gc --import tsx test/soak/soak.ts [--ops N] [--seed S] [--max-growth-mb M] [--json]
 *
 * `npm run soak` runs 10^6 operations; test/soak/soak.test.ts runs a short one in `npm test`.
 * Progress goes to stderr; the result (a line of JSON with --json) to stdout; exit 1 on a failure.
 */
import { parseArgs } from 'node:util'
import { blockUser, boot, fio, netUser, pci_register_driver, pcmUser, type System } from '../../kernel/index.js'
import {
  ETH_P_TEST, HdaController, MemoryAudioSink, NvmeController, Rng, TnicDevice, TrafficPeer, Wire, buildFrame, checkTestPayload, makeTestPayload,
} from '../../devices/index.js'
import { tnic_make_driver } from '../../drivers/net/tnic.js'
import { nvme_make_driver } from '../../drivers/nvme/nvme.js'
import { hda_make_driver } from '../../drivers/sound/hda.js'

const { values } = parseArgs({
  options: {
    ops: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    'max-growth-mb': { type: 'string', default: '24' },
    json: { type: 'boolean', default: false },
  },
  strict: true,
})
const num = (name: string, v: string, min: number): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) {
    console.error(`soak: --${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}
const OPS = num('ops', values.ops, 300)
const SEED = num('seed', values.seed, 0)
const MAX_GROWTH = num('max-growth-mb', values['max-growth-mb'], 1) * 2 ** 20
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  console.error('soak: run with node --expose-gc (the memory check needs a full GC before each sample)')
  process.exit(2)
}

const PEER_MAC = new Uint8Array([2, 0, 0, 0, 0, 0x99])
const PCM = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const
const PERIOD_BYTES = 480 * 4

interface Counts {
  frames: number
  ios: number
  periods: number
}
const done: Counts = { frames: 0, ios: 0, periods: 0 }
const total = (): number => done.frames + done.ios + done.periods
const failures: string[] = []
const fail = (what: string): void => {
  if (failures.length < 20) failures.push(what)
}

const nic = new TnicDevice({ name: 'tnic0' })
const nvme = new NvmeController({ name: 'nvme0', sizeBytes: 16 << 20 })
const sink = new MemoryAudioSink({ keepSegments: false })
const hda = new HdaController({ name: 'hda0', sink })
const sys: System = boot({ log: 'silent', seed: SEED, checks: { stacks: false }, devices: [nic, nvme, hda] })
const peer = new TrafficPeer({ name: 'peer', clock: nic.clock!, mac: PEER_MAC, mode: 'echo', verify: 'none' })
new Wire({ bitsPerSecond: 10e9, latencyNs: 500 }).connect(nic, peer)
for (const drv of [tnic_make_driver(), nvme_make_driver({ io_queues: 2 }), hda_make_driver()]) {
  const rc = await sys.run(() => pci_register_driver(drv))
  if (rc !== 0) throw new Error(`soak: registering ${drv.name} failed: ${rc}`)
}
const net = netUser(sys)
if ((await net.ifup('eth0')) !== 0) throw new Error('soak: ifup eth0 failed')
await sys.runFor(10_000_000)
if (blockUser(sys).disks().length !== 1) throw new Error('soak: no nvme0n1')

/** A burst of 16 frames, each echo checked. */
const rng = new Rng(SEED * 7 + 1)
const sock = net.socket('eth0', { capacity: 64 })
let seq = 0
async function netRound(): Promise<void> {
  {
    const burst = 16
    for (let i = 0; i < burst; i++, seq++) {
      const len = 60 + rng.int(1514 - 60 + 1)
      const frame = buildFrame({ dst: PEER_MAC, src: nic.mac, etherType: ETH_P_TEST, payload: makeTestPayload(seq, len - 14, SEED) })
      const rc = await net.send('eth0', frame, { frags: seq % 5 === 0 ? 1 + (seq % 3) : 0 })
      if (rc !== 0) fail(`net: send of frame ${seq} returned ${rc}`)
    }
    await sys.runUntil(() => sock.pending >= burst, { timeoutNs: 1e9 }).catch(() => fail(`net: echoes of frames up to ${seq} did not all come back`))
    for (let f = sock.recv(); f !== null; f = sock.recv()) {
      const c = checkTestPayload(f.data.subarray(14), SEED)
      if (c.ok) done.frames++
      else fail(`net: a corrupt echo: ${c.reason}`)
    }
  }
}

/** A verified fio batch: random writes, then reads of what was written. */
let blockRounds = 0
async function blockRound(): Promise<void> {
  const round = blockRounds++
  {
    const job = { disk: 'nvme0n1', bs: 4096, iodepth: 4, numjobs: 2, queues: [0, 1], numIos: 32, size: 8 << 20, seed: SEED * 1000 + round, verify: true } as const
    const w = await fio(sys, { ...job, rw: 'randwrite' })
    const r = await fio(sys, { ...job, rw: 'randread', verifyState: w.verifyState })
    if (w.errors + r.errors > 0 || r.verifyErrors > 0) fail(`block: round ${round}: ${w.errors + r.errors} I/O errors, ${r.verifyErrors} verify errors`)
    done.ios += w.ios + r.ios
    if (round % 8 === 7) await blockUser(sys).flush('nvme0n1').catch((e: unknown) => fail(`block: flush failed in round ${round}: ${String(e)}`))
  }
}

/** A 0.2 s play (20 periods), every byte checked. */
let audioRounds = 0
const pcm = new Int16Array(20 * 480 * 2)
async function audioRound(): Promise<void> {
  const round = audioRounds++
  {
    for (let i = 0; i < pcm.length; i++) pcm[i] = ((i * 31 + round * 977 + SEED) & 0xffff) - 32768
    const data = new Uint8Array(pcm.buffer)
    sink.clear()
    const r = await pcmUser(sys).play(0, 0, data, PCM)
    if (r.error !== 0 || r.xruns !== 0) fail(`audio: round ${round}: error ${r.error}, ${r.xruns} XRUNs`)
    else if (sink.length !== data.length || Buffer.compare(Buffer.from(sink.bytes.subarray(0, sink.length)), Buffer.from(data)) !== 0) fail(`audio: round ${round}: the sink did not get the samples played`)
    done.periods += data.length / PERIOD_BYTES
  }
}

// Memory: a sample after a full GC at each tenth of the run.
const samples: { ops: number; heapMb: number }[] = []
let nextSample = Math.ceil(OPS / 10)
const t0 = performance.now()
// Sampled between rounds (the rounds run on microtasks: a host timer would not fire until the end).
const sample = (): void => {
  if (total() >= nextSample) {
    gc()
    samples.push({ ops: total(), heapMb: Number((process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)) })
    process.stderr.write(`soak: ${total()}/${OPS} ops (${done.frames} frames, ${done.ios} I/Os, ${done.periods} periods), heap ${samples.at(-1)!.heapMb} MB, ${((performance.now() - t0) / 1000).toFixed(0)} s\n`)
    nextSample += Math.ceil(OPS / 10)
  }
}
// Harness calls drive the whole system and are made one at a time (kernel/sound/user.ts and the
// others refuse a call from inside a running task, which a concurrent caller would look like), so
// the three loads take turns in small rounds; every device stays bound and live throughout, its
// timers and interrupts running whichever round drives the clock.
while (total() < OPS && failures.length === 0) {
  await netRound()
  await blockRound()
  await audioRound()
  sample()
}
sock.close()
gc()
samples.push({ ops: total(), heapMb: Number((process.memoryUsage().heapUsed / 2 ** 20).toFixed(1)) })
await net.ifdown('eth0')
for (const name of ['tnic0', 'nvme0', 'hda0']) await sys.unbind(sys.pciDevice(name)!)

const reports = sys.reports.map((r) => `${r.kind}: ${r.message.split('\n')[0]}`)
const first = samples[0]!
const last = samples[samples.length - 1]!
const growthMb = last.heapMb - first.heapMb
const memoryOk = growthMb * 2 ** 20 <= MAX_GROWTH
const ok = failures.length === 0 && reports.length === 0 && memoryOk
const result = { ok, ops: total(), ...done, seconds: Number(((performance.now() - t0) / 1000).toFixed(1)), virtualMs: Number((sys.clock / 1e6).toFixed(1)), reports, failures, heap: samples, growthMb: Number(growthMb.toFixed(1)), maxGrowthMb: MAX_GROWTH / 2 ** 20 }
if (values.json) console.log(JSON.stringify(result))
else {
  console.log(`soak: ${result.ops} operations (${done.frames} frames echoed, ${done.ios} I/Os verified, ${done.periods} audio periods bit-exact) in ${result.seconds} s host, ${result.virtualMs} ms virtual`)
  console.log(`reports: ${reports.length === 0 ? 'none' : reports.join('; ')}`)
  if (failures.length > 0) console.log(`failures: ${failures.join('; ')}`)
  console.log(`heap after GC: ${samples.map((s) => `${s.heapMb} MB @${s.ops}`).join(', ')} — growth ${result.growthMb} MB (limit ${result.maxGrowthMb} MB) ${memoryOk ? 'ok' : 'TOO MUCH'}`)
  console.log(ok ? 'soak: ok' : 'soak: FAILED')
}
process.exit(ok ? 0 : 1)
