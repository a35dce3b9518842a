/**
 * The mini-HDA reference driver (drivers/sound/hda.ts): 0.1 s of 48 kHz stereo S16_LE played
 * through the ALSA-like client (pcmUser(sys).play, as aplay does); what reaches the codec's sink
 * must be bit-exact, with no XRUN.
 */
import { pcmUser } from '../kernel/index.js'
import { HdaController, MemoryAudioSink } from '../devices/index.js'
import { hda_make_driver } from '../drivers/sound/hda.js'
import { compareBytes, defineScenario } from './scenario.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const
const FRAMES = 4800

/** S16_LE stereo whose every sample is distinct (a counting pattern). */
function pcm(frames: number, seed: number): Uint8Array {
  const s = new Int16Array(frames * 2)
  for (let i = 0; i < s.length; i++) s[i] = ((i * 7 + seed) % 65536) - 32768
  return new Uint8Array(s.buffer)
}

export default defineScenario({
  name: 'audio',
  description: 'the mini-HDA reference driver plays 0.1 s of 48 kHz stereo; the sink must receive it bit-exact with no XRUN',
  devices: () => [new HdaController({ name: 'hda0', sink: new MemoryAudioSink() })] as const,
  driver: () => hda_make_driver(),
  async workload({ sys, devices: [hda], options }) {
    const data = pcm(FRAMES, options.seed)
    const res = await pcmUser(sys).play(0, 0, data, PARAMS)
    if (res.error !== 0) return { dataOk: false, summary: `play failed: ${res.error} after ${res.frames} frames` }
    const sink = hda.sink as MemoryAudioSink
    const check = compareBytes(sink.bytes.subarray(0, sink.length), data, `${FRAMES} frames played`)
    return res.xruns === 0 ? check : { dataOk: false, summary: `${res.xruns} XRUN(s); ${check.summary ?? ''}` }
  },
})
