/**
 * Audio benchmark (issue 6): how many times faster than real time the mini-HDA reference driver
 * plays 48 kHz stereo S16_LE with 10 ms periods (480 frames, 4 periods in the ring), through the
 * PCM layer as aplay would drive it (pcmUser(sys).play: write, wait for room, drain), to a
 * MemoryAudioSink, on the default platform (arm64, non-coherent, IOMMU strict, swiotlb auto).
 *
 * The figure is seconds of audio played per host second, after a warm-up of forty seconds of audio,
 * the fastest of twenty 10 s plays taken in alternation with the other setting's (a play takes about 10 ms of
 * host time: a few rounds are easily all caught by one burst of noise on a shared VM):
 * - audio.realtime_factor.checked: every check on but stack capture (target >= 1000x);
 * - audio.realtime_factor.unchecked: `checks: false`.
 * Each run's output is compared with its input (bit-exact) and must have no XRUN and no report.
 */
import { boot, pci_register_driver, pcmUser } from '../kernel/index.js'
import { HdaController, MemoryAudioSink } from '../devices/index.js'
import { hda_make_driver } from '../drivers/sound/hda.js'
import { fastestAlternating, type BenchResult } from './harness.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const

/** A booted system with the driver bound and warmed up; each call plays `seconds` and returns host ns per second of audio. */
async function setup(checked: boolean, seconds: number): Promise<() => Promise<number>> {
  // The bytes are kept for the bit-exact check; a record per write (segments) is not needed here.
  const sink = new MemoryAudioSink({ keepSegments: false })
  const hda = new HdaController({ sink })
  const sys = boot({ log: 'silent', checks: checked ? { stacks: false } : false, devices: [hda] })
  if ((await sys.run(() => pci_register_driver(hda_make_driver()))) !== 0) throw new Error('audio bench: probe failed')
  const pcm = pcmUser(sys)
  const audio = (secs: number, seed: number): Uint8Array => {
    const s = new Int16Array(48000 * 2 * secs)
    for (let i = 0; i < s.length; i++) s[i] = ((i * 31 + seed) & 0xffff) - 32768
    return new Uint8Array(s.buffer)
  }
  // Plays data and returns the host ns the play took; the output is checked after the clock stops.
  const play = async (data: Uint8Array): Promise<number> => {
    sink.clear()
    const t0 = performance.now()
    const r = await pcm.play(0, 0, data, PARAMS)
    const ns = (performance.now() - t0) * 1e6
    if (r.error !== 0 || r.xruns !== 0) throw new Error(`audio bench: play gave error ${r.error}, ${r.xruns} xruns`)
    // Views, not copies: Buffer.from(a Uint8Array) would copy both 1.9 MB arrays.
    const out = sink.bytes
    if (sink.length !== data.length || Buffer.compare(Buffer.from(out.buffer, out.byteOffset, sink.length), Buffer.from(data.buffer, data.byteOffset, data.length)) !== 0) {
      throw new Error('audio bench: the sink did not get the samples played')
    }
    return ns
  }
  // Warm-up: the JIT needs thousands of periods (measured: 23, 17, 6.6, 2.9, then 1.4 ms of host
  // time per second of audio for the first five 10 s plays, unchecked); the figures are steady state.
  for (let i = 0; i < 4; i++) await play(audio(10, 1))
  const data = audio(seconds, 2)
  return async () => {
    const ns = await play(data)
    if (sys.reports.length > 0) throw new Error(`audio bench: the workload got reports: ${sys.reports.map((r) => r.kind).join(', ')}`)
    return ns / seconds
  }
}

/** Timed plays of each setting, in alternation; the fastest of each counts (harness.ts). */
const ROUNDS = 20

export async function run(): Promise<BenchResult[]> {
  const seconds = 10
  const { a: unchecked, b: checked } = await fastestAlternating(await setup(false, seconds), await setup(true, seconds), ROUNDS)
  const t = { unchecked, checked }
  return (['checked', 'unchecked'] as const).map((k) => ({
    name: `audio.realtime_factor.${k}`,
    value: Math.round(1e9 / t[k]),
    unit: 'x real time',
    note: `${seconds} s of 48 kHz stereo S16_LE, 10 ms periods, through the mini-HDA driver, checks ${k === 'checked' ? 'on (stacks off)' : 'off'}, fastest of ${ROUNDS} plays: ${(t[k] / 1e6).toFixed(2)} ms of host time per second of audio (target >= 1000x checked${k === 'checked' ? `; checked/unchecked time ${(t.checked / t.unchecked).toFixed(2)}x` : ''})`,
  }))
}
