/**
 * Lab audio-periods: the periods of the mini-HDA controller's output stream. The student writes
 * lab_setup_periods (the BDL: each period cut at page boundaries, IOC on the last piece of each
 * period only) and lab_pointer (the position from the DMA position buffer, or from LPIB once the
 * driver has found the position buffer dead); the rest is dmalab's reference mini-HDA driver. Two
 * controllers play 0.2 s each: one with an accurate position buffer, one whose position buffer is
 * never written (Linux's "Invalid position buffer, using LPIB read method instead").
 */
import { ENOSYS, PAGE_SIZE, pcmUser, type DmaAddr } from '../../kernel/index.js'
import { HdaController, MemoryAudioSink } from '../../devices/index.js'
import { AZX_BDL_IOC, hda_bdl_entry, hda_make_driver, type AzxDev, type HdaPaths } from '../../drivers/sound/hda.js'
import { compareBytes, defineScenario } from '../../scenarios/scenario.js'
import { defineLab, exportedFunction } from '../lab-api.js'

const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const
const FRAMES = 9600
const PERIODS = FRAMES / PARAMS.periodFrames

/** S16_LE stereo whose every sample is distinct (a counting pattern). */
function pcm(frames: number, seed: number): Uint8Array {
  const s = new Int16Array(frames * 2)
  for (let i = 0; i < s.length; i++) s[i] = ((i * 7 + seed) % 65536) - 32768
  return new Uint8Array(s.buffer)
}

/** What is wrong with the BDL the student built (empty: nothing), checked against the ring it describes. */
function checkBdl(s: AzxDev, dma: DmaAddr): string[] {
  const out: string[] = []
  if (s.frags < 2) return [`s.frags is ${s.frags}: set it to the number of BDL entries you wrote`]
  let ofs = 0
  for (let i = 0; i < s.frags && out.length < 3; i++) {
    const e = hda_bdl_entry.at(s.bdl.cpu, i)
    const addr = Number(e.addr) - Number(dma)
    const len = e.len
    if (addr !== ofs) out.push(`BDL entry ${i} starts at byte ${addr} of the ring, not at ${ofs} where entry ${i - 1} ended`)
    const end = ofs + len
    const period = Math.floor(ofs / s.period_bytes)
    const periodEnd = (period + 1) * s.period_bytes
    if (Math.floor(ofs / PAGE_SIZE) !== Math.floor((end - 1) / PAGE_SIZE)) out.push(`BDL entry ${i} (bytes ${ofs}-${end}) crosses a 4 KiB page boundary: cut it there`)
    if (end > periodEnd) out.push(`BDL entry ${i} (bytes ${ofs}-${end}) runs past the end of period ${period} (byte ${periodEnd})`)
    const ioc = (e.ioc & AZX_BDL_IOC) !== 0
    if (ioc && end < periodEnd) out.push(`BDL entry ${i} (bytes ${ofs}-${end}) has IOC but is not the last piece of period ${period}: an interrupt in the middle of a period`)
    if (!ioc && end === periodEnd) out.push(`BDL entry ${i} (bytes ${ofs}-${end}) ends period ${period} but has no IOC: no interrupt for that period`)
    ofs = end
  }
  if (out.length === 0 && ofs !== s.bufsize) out.push(`the BDL entries add up to ${ofs} bytes, the ring has ${s.bufsize}`)
  return out
}

type SetupFn = HdaPaths['setup_periods']
type PointerFn = HdaPaths['pointer']

export default defineLab({
  id: 'audio-periods',
  title: 'Audio periods: the HDA BDL and the position',
  summary:
    'Write the period plumbing of the mini-HDA output stream, as Linux\'s snd_hdac_stream_setup_periods / setup_bdle and azx_pcm_pointer do: ' +
    'the buffer descriptor list, each period cut at the 4 KiB page boundaries it crosses, with IOC on the last piece of each period only (one ' +
    'interrupt per period); and the pointer callback, the position from the DMA position buffer, or from LPIB once the driver has found the ' +
    'position buffer dead, wrapped to 0 at the end of the ring. The rest of the driver is the reference one. Two controllers play 0.2 s ' +
    'each (20 periods of 480 frames over a 4-period ring), one with no working position buffer; the sound must be bit-exact, with no XRUN ' +
    'and one interrupt per period, on every platform.',
  entry: 'hda_periods.ts',
  hints: [
    'Read docs/devices/hda.md §4 (stream descriptors: CBL, LVI, LPIB), §5 (the buffer descriptor list) and §8 (the DMA position buffer), then the driver walkthrough docs/drivers/hda.md. drivers/sound/hda.ts is the reference (its setup_periods uses one entry per period; yours cuts at pages, as Linux does for a scatter-gather buffer); test/fixtures/hda-bad/ shows the mistakes.',
    'lab_setup_periods: periods = floor(s.bufsize / s.period_bytes) (at least 2, or -EINVAL). Walk the ring with a byte offset ofs; for each period, while bytes of it remain: chunk = min(remaining, PAGE_SIZE - ofs % PAGE_SIZE); write entry frags: addr = BigInt(dma_addr) + BigInt(ofs), len = chunk; ofs += chunk; frags++ (at most MAX_BDL_ENTRIES). Then s.frags = frags: the driver writes LVI = frags - 1 and CBL = bufsize, which must agree with the entries.',
    'IOC: the controller raises BCIS and an interrupt when it finishes an entry with IOC. Set it on the last piece of each period only (ioc = BDL_IOC when nothing of the period remains, else 0): on every entry, a period that crosses a page interrupts twice, once in its middle; on none, the stream never interrupts.',
    'lab_pointer: chip = snd_pcm_substream_chip<Chip>(sub), s = sub.runtime!.private_data as Stream. The position in bytes is the u32 at 8 * s.index in chip.posbuf.cpu (mem_read32), where the controller writes it by DMA; a position of bufsize or more is 0 (the end of the ring is its start). Return bytes_to_frames(sub.runtime!, pos).',
    'Some controllers never write the position buffer (the second controller here): the driver\'s period check finds it stuck at 0 while LPIB moves and sets s.use_lpib. Then read the position from LPIB instead: readl(ptr_add(s.sd_addr, HDA_REG_SD_LPIB)). A pointer stuck at 0 means ALSA sees no progress: XRUNs and a timeout.',
  ],
  scenario: (mod) => {
    const setup = exportedFunction<SetupFn>(mod, 'lab_setup_periods')
    const pointer = exportedFunction<PointerFn>(mod, 'lab_pointer')
    let bdlProblems: string[] = []
    return defineScenario({
      name: 'audio-periods',
      description: `two mini-HDA controllers (position buffer accurate / never written) play ${FRAMES} frames each through lab_setup_periods and lab_pointer`,
      devices: () =>
        [
          new HdaController({ name: 'hda0', sink: new MemoryAudioSink() }),
          new HdaController({ name: 'hda1', sink: new MemoryAudioSink(), positionBuffer: 'none' }),
        ] as const,
      driver: () => {
        bdlProblems = []
        return hda_make_driver({
          paths: {
            setup_periods: (s, dma) => {
              const rc = setup(s, dma)
              const problems = rc === 0 ? checkBdl(s, dma) : [`lab_setup_periods returned ${rc}${rc === -ENOSYS ? ' (-ENOSYS: a TODO is not done yet)' : ''}`]
              for (const p of problems) if (!bdlProblems.includes(p)) bdlProblems.push(p)
              return rc
            },
            pointer,
          },
        })
      },
      async workload({ sys, devices, options }) {
        const parts: string[] = []
        let ok = true
        for (const [card, hda] of devices.entries()) {
          const data = pcm(FRAMES, options.seed + card)
          const before = hda.stats.interrupts
          const name = `${hda.name}${card === 1 ? ' (no position buffer)' : ''}`
          let res: Awaited<ReturnType<ReturnType<typeof pcmUser>['play']>>
          try {
            res = await pcmUser(sys).play(card, 0, data, PARAMS)
          } catch (e) {
            ok = false
            parts.push(`${name}: ${e instanceof Error ? e.message : String(e)}`)
            continue
          }
          const irqs = hda.stats.interrupts - before
          const sink = hda.sink as MemoryAudioSink
          const check = compareBytes(sink.bytes.subarray(0, sink.length), data, `${FRAMES} frames played`)
          const bad = res.error !== 0 || res.xruns !== 0 || !check.dataOk || irqs !== PERIODS
          if (bad) ok = false
          parts.push(
            !bad
              ? `${name}: bit-exact, ${irqs} interrupts for ${PERIODS} periods`
              : `${name}: ${res.error !== 0 ? `play failed: ${res.error} after ${res.frames} frames; ` : ''}` +
                  `${res.xruns} XRUN(s), ${irqs} interrupts for ${PERIODS} periods; ${check.summary ?? ''}`,
          )
        }
        if (bdlProblems.length > 0) {
          ok = false
          parts.push(bdlProblems.slice(0, 3).join('; '))
        }
        return { dataOk: ok, summary: parts.join(' | ') }
      },
    })
  },
  grading: {
    worksDefault: 20,
    worksEverywhere: 20,
    rules: [
      { title: 'the controller takes the BDL: its entries, LVI and CBL agree', kinds: ['device-error'], points: 25, hint: 'set s.frags to the number of entries you wrote, none of length 0, and make their lengths add up to s.bufsize (hint 2)' },
      { title: 'the controller reaches only the ring, the BDL and the position buffer; nothing leaks', kinds: ['iommu-fault', 'device-access-cpu-owned', 'cpu-access-device-owned', 'leak', 'use-after-free'], points: 25, hint: 'each entry\'s addr is dma_addr plus its offset in the ring: a bus address, never beyond bufsize' },
    ],
    clean: 10,
  },
})
