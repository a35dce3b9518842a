// The sound subsystem in one run: a snd-dummy-like card (the test fixture) whose "hardware" plays
// from a coherent DMA buffer on virtual time. An application opens it, writes a tone, is late and
// underruns, recovers and drains; a recording is saved as WAV bytes; and a second card whose driver
// reports its pointer in bytes instead of frames shows what the PCM core makes of it.
import { boot, pcmUser, type BootOptions, type Report } from '../../kernel/index.js'
import { encodeWav, parseWav } from '../../host/wav.js'
import { dummyFrameNumbers, dummyPcmAdd, dummyPcmDel } from '../../test/fixtures/dummy-pcm.js'

const ms = (ns: number) => `${(ns / 1e6).toFixed(1)} ms`

/** A 440 Hz tone, S16_LE stereo, frames long. */
function tone(frames: number): Uint8Array {
  const pcm = new Int16Array(frames * 2)
  for (let i = 0; i < frames; i++) pcm[2 * i] = pcm[2 * i + 1] = Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / 48000))
  return new Uint8Array(pcm.buffer)
}

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const card = await dummyPcmAdd(sys) // snd_card_new, snd_pcm_new, snd_pcm_set_managed_buffer_all, snd_card_register
  const pcm = pcmUser(sys)
  const lines: string[] = []
  for (const c of pcm.cards()) for (const d of c.devices) lines.push(`card ${c.number}: ${c.id} [${c.shortname}], device ${d.device}: ${d.name} (${d.playback.substreams} playback, ${d.capture.substreams} capture)`)

  const h = await pcm.open(0, 0, 'playback', { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 })
  const cfg = h.config!
  lines.push(`open: ${h.state}, ${cfg.formatName} ${cfg.channels} ch ${cfg.rate} Hz, ${cfg.periods} periods of ${cfg.periodFrames} frames (${cfg.bufferBytes} bytes of coherent DMA memory)`)
  const data = tone(24000) // half a second
  const t0 = sys.clock
  let done = await pcm.write(h, data.subarray(0, 8192 * 4)) // fills the ring, starts at startThreshold, then sleeps for room
  lines.push(`write 8192 frames -> ${done} after ${ms(sys.clock - t0)}, ${h.state}`)
  await sys.runFor(150e6) // the application is late: the ring runs empty
  const st = await pcm.status(h)
  lines.push(`150 ms later: ${st.state}, hw_ptr ${st.hwPtr}, appl_ptr ${st.applPtr}, xruns ${st.xruns}`)
  const r = await pcm.write(h, data.subarray(done * 4, (done + 1024) * 4))
  lines.push(`write -> ${r} (-EPIPE); recover -> ${await pcm.recover(h, r)}, ${h.state}`)
  while (done < 24000) done += await pcm.write(h, data.subarray(done * 4, Math.min(24000, done + 4096) * 4))
  lines.push(`drain -> ${await pcm.drain(h)}, ${h.state} at ${ms(sys.clock - t0)}`)
  await pcm.close(h)
  const played = card.played()
  const firstRun = played.subarray(0, 8192 * 4).every((b, i) => b === data[i])
  lines.push(`the hardware played ${played.length / 4} frames; the first 8192 as written: ${firstRun}`)

  const rec = await pcm.record(0, 0, 4800, { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480 })
  const frames = dummyFrameNumbers(rec.data, 4)
  lines.push(`record 4800 frames in ${ms(rec.durationNs)}: frames ${frames[0]}..${frames.at(-1)} in order: ${frames.every((n, i) => n === i)}, xruns ${rec.xruns}`)
  const wav = parseWav(encodeWav({ rate: 48000, channels: 2, bits: 16 }, rec.data))
  lines.push(`as WAV: ${wav.rate} Hz, ${wav.channels} ch, ${wav.bitsPerSample} bits, ${wav.frames} frames`)
  await dummyPcmDel(sys, card) // snd_card_free
  lines.push(`after rmmod: cards ${pcm.cards().length}, DMA allocations left ${card.dma.dev.entries.size}`)

  // A driver whose pointer returns bytes instead of frames.
  const sys2 = boot({ log: 'silent', ...options })
  const bad = await dummyPcmAdd(sys2, { pointer: 'bytes' })
  const pcm2 = pcmUser(sys2)
  const res = await pcm2.play(0, 0, data, { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 })
  lines.push(`pointer in bytes: play -> error ${res.error} after ${res.frames} frames`)
  for (const l of pcm2.stats(0, 0, 'playback').log.slice(0, 2)) lines.push(`  ${l.message}`)
  lines.push(`  ... ${JSON.stringify(res.hwPtrErrors)}`)
  await dummyPcmDel(sys2, bad)
  return { lines, reports: [...sys.reports, ...sys2.reports] }
}
