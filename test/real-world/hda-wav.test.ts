/**
 * Real-world check: WAV files made by sox through the mini-HDA reference driver. sox synthesises
 * a 2 s stereo tone (440 Hz left, 660 Hz right) at 48 kHz and a 1 s one at 44.1 kHz, 16-bit, no
 * dither; host/wav.ts reads each, pcmUser plays it through the driver (ALSA's write path, the
 * controller's DMA on the virtual clock) into a WavFileSink (host/audio-wav.ts), and the captured
 * file's PCM must equal the source's byte for byte (the last period completed with silence, as
 * aplay does) — and sox must read the captured file (`sox --i`) and find the same signal in it
 * (`sox … -n stat` prints the same statistics as for sox's own file with the same padding).
 * The other way: a sox-made WAV feeds the controller's input through a WavFileSource, pcmUser
 * records it through the driver, and the recording equals the file. Zero reports throughout, on
 * x86_64 and on arm64 with the IOMMU strict. sox missing is a failure naming the package, not a
 * skip (.ci/run installs it).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { boot, pci_register_driver, pcmUser, type BootOptions, type System } from '../../kernel/index.js'
import { HdaController, type AudioSink, type AudioSource } from '../../devices/index.js'
import { hda_make_driver } from '../../drivers/sound/hda.js'
import { WavFileSink, WavFileSource } from '../../host/audio-wav.js'
import { readWav, writeWav } from '../../host/wav.js'
import { reportLines, requireTool } from './tools.js'

const dir = mkdtempSync(join(tmpdir(), 'dmalab-hda-wav-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** sox's path, looked up by each test: without sox every test fails with the install hint (no skip). */
const sox = (): string => requireTool('sox', 'sox')

/** sox -D (no dither: the same bytes every run) -n: a synthesised stereo 16-bit file. */
function soxTone(file: string, rate: number, seconds: number): void {
  execFileSync(sox(), ['-D', '-n', '-r', String(rate), '-c', '2', '-b', '16', file, 'synth', String(seconds), 'sine', '440', 'sine', '660', 'vol', '0.5'])
}

/**
 * `sox FILE -n [effects] stat`: the signal's statistics (sox prints them on stderr); throws if
 * sox cannot read the file.
 */
function soxStat(file: string, effects: string[] = []): string {
  const r = spawnSync(sox(), [file, '-n', ...effects, 'stat'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`sox ${file} -n stat: exit ${String(r.status)}: ${r.stderr}`)
  return r.stderr
}

/** `sox --i FILE` */
function soxInfo(file: string): string {
  return execFileSync(sox(), ['--i', file], { encoding: 'utf8' })
}

async function rig(opts: BootOptions, port: { sink?: AudioSink; source?: AudioSource }): Promise<System> {
  const hda = new HdaController(port)
  const sys = boot({ log: 'silent', seed: 1, ...opts, devices: [hda] })
  expect(await sys.run(() => pci_register_driver(hda_make_driver()))).toBe(0)
  return sys
}

/** 10 ms periods at 48 kHz (1920 bytes); at 44.1 kHz 512-frame periods (2048 bytes: HDA periods are multiples of 128 bytes). */
const paramsFor = (rate: number) => ({ rate, channels: 2, format: 'S16_LE', periodFrames: rate === 48000 ? 480 : 512, periods: 4 }) as const

const PLATFORMS: readonly [string, BootOptions][] = [
  ['x86_64', { arch: 'x86_64' }],
  ['arm64 iommu=strict', { arch: 'arm64', iommu: 'strict' }],
]

describe('a sox-made WAV played through the mini-HDA driver lands in a WAV file bit-exact, and sox reads it', () => {
  for (const [label, opts] of PLATFORMS) {
    for (const [rate, seconds] of [[48000, 2], [44100, 1]] as const) {
      it(`${label}: ${rate} Hz, ${seconds} s`, async () => {
        const src = join(dir, `tone-${rate}-${label.replace(/\W+/g, '_')}.wav`)
        const out = join(dir, `played-${rate}-${label.replace(/\W+/g, '_')}.wav`)
        soxTone(src, rate, seconds)
        const wav = readWav(src)
        expect(wav).toMatchObject({ rate, channels: 2, bitsPerSample: 16, sampleFormat: 'pcm', frames: rate * seconds })
        // As aplay does, the last period is completed with silence: a drain stops at a period
        // interrupt, so the controller plays up to a period boundary (44100 = 86 × 512 + 68
        // frames: 444 frames of padding; 96000 is 200 periods of 480: none).
        const period = paramsFor(rate).periodFrames
        const pad = (period - (wav.frames % period)) % period
        const data = new Uint8Array(wav.data.length + pad * 4)
        data.set(wav.data)
        const sink = new WavFileSink(out)
        const sys = await rig(opts, { sink })
        const res = await pcmUser(sys).play(0, 0, data, paramsFor(rate))
        expect([res.error, res.xruns, res.frames]).toEqual([0, 0, wav.frames + pad])
        await sys.unbind(sys.pciDevice('hda0')!)
        sink.close()
        expect(reportLines(sys)).toEqual([])
        const played = readWav(out)
        expect(played).toMatchObject({ rate, channels: 2, bitsPerSample: 16, sampleFormat: 'pcm', frames: wav.frames + pad })
        expect(Buffer.compare(Buffer.from(played.data), Buffer.from(data))).toBe(0)
        const info = soxInfo(out)
        expect(info).toMatch(new RegExp(`Sample Rate\\s*:\\s*${rate}\\n`))
        expect(info).toMatch(/Channels\s*:\s*2\n/)
        expect(info).toMatch(/Precision\s*:\s*16-bit/)
        expect(info).toMatch(new RegExp(`= ${wav.frames + pad} samples`))
        const stat = soxStat(out)
        expect(stat).toMatch(new RegExp(`Samples read:\\s+${(wav.frames + pad) * 2}\\n`))
        // The same signal as sox's own file with the same padding (sox's pad effect: silence at the end).
        expect(stat).toBe(soxStat(src, ['pad', '0', `${pad}s`]))
      })
    }
  }
})

describe('a sox-made WAV fed to the input through a WavFileSource is recorded through the driver bit-exact', () => {
  for (const [label, opts] of PLATFORMS) {
    it(`${label}: 48000 Hz, 1 s; the recording, written as WAV, reads in sox as the source`, async () => {
      const src = join(dir, `in-${label.replace(/\W+/g, '_')}.wav`)
      soxTone(src, 48000, 1)
      const source = new WavFileSource(src)
      const sys = await rig(opts, { source })
      const rec = await pcmUser(sys).record(0, 0, source.wav.frames, paramsFor(48000))
      expect([rec.error, rec.xruns, rec.data.length]).toEqual([0, 0, source.wav.data.length])
      expect(Buffer.compare(Buffer.from(rec.data), Buffer.from(source.wav.data))).toBe(0)
      await sys.unbind(sys.pciDevice('hda0')!)
      expect(reportLines(sys)).toEqual([])
      const out = join(dir, `recorded-${label.replace(/\W+/g, '_')}.wav`)
      writeWav(out, { rate: 48000, channels: 2, bits: 16 }, rec.data)
      expect(soxInfo(out)).toMatch(/Sample Rate\s*:\s*48000\n/)
      expect(soxStat(out)).toBe(soxStat(src))
    })
  }
})
