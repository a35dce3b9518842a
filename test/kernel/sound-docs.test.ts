/**
 * docs/sound.md quotes its example verbatim and shows what it prints; the example holds on every
 * architecture and several seeds; the page's links and the names it lists exist.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import * as kernel from '../../kernel/index.js'
import * as wav from '../../host/wav.js'
import { ARCHES } from '../helpers/matrix.js'
import * as example from '../../docs/examples/sound-dummy.js'

const root = new URL('../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')
const markdown = read('docs/sound.md')

describe('docs/sound.md', () => {
  it('quotes docs/examples/sound-dummy.ts verbatim', () => {
    const m = /<!-- example: docs\/examples\/sound-dummy\.ts -->\s*\n```ts\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    expect(m![1]).toBe(read('docs/examples/sound-dummy.ts').trimEnd())
  })

  it('shows what `npx tsx docs/examples/run-sound.ts sound-dummy` prints', async () => {
    const m = /```text\n\$ npx tsx docs\/examples\/run-sound\.ts sound-dummy\n([\s\S]*?)\n```\n/.exec(markdown)
    expect(m).not.toBeNull()
    const { stdout } = await promisify(execFile)('npx', ['tsx', 'docs/examples/run-sound.ts', 'sound-dummy'], { cwd: root, env: { ...process.env, DMALAB_LOG: 'silent' } })
    expect(stdout.trimEnd()).toBe(m![1])
  })

  it.each(ARCHES.flatMap((arch) => [1, 2, 3].map((seed) => ({ arch, seed }))))('the example works on $arch seed $seed', async ({ arch, seed }) => {
    const out = await example.run({ arch, seed, swiotlb: seed === 2 ? 'force' : 'auto', iommu: seed === 3 ? 'off' : 'strict' })
    expect(out.reports).toEqual([])
    expect(out.lines).toContain('write -> -32 (-EPIPE); recover -> 0, PREPARED')
    expect(out.lines).toContain('the hardware played 24768 frames; the first 8192 as written: true')
    expect(out.lines).toContain('record 4800 frames in 100.0 ms: frames 0..4799 in order: true, xruns 0')
    expect(out.lines).toContain('after rmmod: cards 0, DMA allocations left 0')
  })

  it('links to sections that exist, here and in the execution model', () => {
    const anchors = (md: string) => new Set([...md.matchAll(/^#+ (.*)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')))
    const here = anchors(markdown)
    for (const [, a] of markdown.matchAll(/\]\(#([^)]+)\)/g)) expect(here.has(a!), a).toBe(true)
    const exec = anchors(read('docs/execution-model.md'))
    for (const [, a] of markdown.matchAll(/\]\(execution-model\.md#([^)]+)\)/g)) expect(exec.has(a!), a).toBe(true)
  })

  it('every kernel name in backquotes in the API summary exists in kernel/index.ts or host/wav.ts', () => {
    const summary = markdown.slice(markdown.indexOf('## 16. API summary'))
    const names = new Set<string>()
    for (const [, code] of summary.matchAll(/`([^`]+)`/g)) {
      const m = /^(?:await )?([A-Za-z_][A-Za-z0-9_]*)/.exec(code!)
      if (m !== null && /^(snd_|SNDRV_|Snd|XRUN_|pcmUser$|Pcm|params_|hw_param_|bytes_to|frames_to|readWav$|parseWav$|encodeWav$|writeWav$|Wav|wavPcmFormat$)/.test(m[1]!)) names.add(m[1]!)
    }
    const exported = new Set([...Object.keys(kernel), ...Object.keys(wav), 'SndPcmOps', 'SndPcmHardware', 'SndPcmRuntime', 'SndPcmStr', 'SndPcmSubstream', 'SndPcm', 'SndCard', 'SndPcmHwParams', 'PcmHandle', 'PcmError'])
    const prefixes = [...names].filter((n) => n.endsWith('_') || ['SNDRV_PCM_HW_PARAM_', 'SNDRV_PCM_INFO_', 'SNDRV_PCM_FORMAT_', 'SNDRV_PCM_FMTBIT_', 'SNDRV_PCM_RATE_', 'SNDRV_PCM_STATE_', 'SNDRV_PCM_STREAM_', 'SNDRV_PCM_ACCESS_'].includes(n))
    for (const n of names) {
      if (prefixes.includes(n)) continue
      if (n === 'params_') continue
      expect(exported.has(n), n).toBe(true)
    }
    expect(names.size).toBeGreaterThan(60)
  })
})
