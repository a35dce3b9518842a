// `dmalab trace` and `dmalab diagram`, spawned as a user runs them: the Perfetto traces of the
// copy-engine and NIC scenarios validate against the trace-event format (the JSON schema in
// test/helpers/trace-event-schema.ts, checked with ajv) and hold every track; the diagram of the
// buffer a known-bad scenario reads too early shows the report between the device's write and the
// unmap; bad arguments get a clear message and exit 2.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { afterAll, describe, expect, it } from 'vitest'
import { TRACE_EVENT_SCHEMA } from '../helpers/trace-event-schema.js'
import type { ChromeTrace } from '../../host/trace-event.js'

interface Out {
  code: number | null
  out: string
  err: string
}

function dmalab(...args: string[]): Promise<Out> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env }
    delete env['DMALAB_LOG']
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/dmalab.ts', ...args], { env, timeout: 120_000 })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out, err }))
  })
}

const dir = mkdtempSync(join(tmpdir(), 'dmalab-trace-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(TRACE_EVENT_SCHEMA)

const tracks = (t: ChromeTrace, pid: number): string[] =>
  t.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === pid).map((e) => String(e.args?.['name']))
const cats = (t: ChromeTrace): Set<string> => new Set(t.traceEvents.map((e) => e.cat ?? ''))

describe('dmalab trace and diagram --help', () => {
  it('both have help, listed by the program, exit 0', async () => {
    const [top, trace, diagram] = await Promise.all([dmalab('--help'), dmalab('trace', '--help'), dmalab('diagram', '--help')])
    expect(top.out).toMatch(/trace \[options\] <scenario>/)
    expect(top.out).toMatch(/diagram \[options\] <scenario>/)
    expect([trace.code, diagram.code]).toEqual([0, 0])
    expect(trace.out).toContain('-o, --output <file>')
    expect(trace.out).toContain('--max-events <n>')
    expect(diagram.out).toContain('--buffer <id>')
    expect(diagram.out).toContain('FILE:LINE   the first buffer mapped or allocated at that driver line')
  })
})

describe('dmalab trace', () => {
  it('writes a valid trace of the copy-engine scenario with every track, exit 0', async () => {
    const file = join(dir, 'ce.json')
    const r = await dmalab('trace', 'copy-engine', '-o', file, '--seed', '3')
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`wrote ${file}:`)
    expect(r.out).toContain('ui.perfetto.dev')
    expect(r.out).toContain('result: clean')
    const t = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace
    expect(validate(t), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
    expect(tracks(t, 1)).toEqual(['process context', 'hard IRQ', 'softirq'])
    expect(tracks(t, 2)).toEqual(['ce0'])
    expect(tracks(t, 3).length).toBeGreaterThan(0)
    expect(tracks(t, 4).length).toBeGreaterThanOrEqual(6) // each copy's source and destination
    for (const c of ['process', 'hardirq', 'mmio', 'dma', 'irq', 'dma-api', 'ownership']) expect(cats(t)).toContain(c)
    expect(t.otherData).toMatchObject({ seed: 3, arch: 'arm64', reports: 0 })
  })

  it('writes a valid trace of the NIC scenario: NAPI softirq slices, the rings, the frames', async () => {
    const file = join(dir, 'nic.json')
    const r = await dmalab('trace', 'nic', '-o', file, '--arch', 'riscv64')
    expect(r.code, r.err).toBe(0)
    const t = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace
    expect(validate(t), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true)
    expect(tracks(t, 2)).toContain('tnic0')
    for (const c of ['process', 'hardirq', 'softirq', 'mmio', 'dma', 'irq', 'dma-api', 'ownership']) expect(cats(t)).toContain(c)
    const buffers = tracks(t, 4)
    expect(buffers.some((n) => n.includes('coherent'))).toBe(true)
    expect(buffers.some((n) => n.includes('DMA_FROM_DEVICE'))).toBe(true)
    expect(buffers.some((n) => n.includes('DMA_TO_DEVICE'))).toBe(true)
  })

  it('a known-bad scenario: the report is on the timeline, exit 1 and the replay command', async () => {
    const file = join(dir, 'bad.json')
    const r = await dmalab('trace', 'copy-engine-missing-sync', '-o', file)
    expect(r.code).toBe(1)
    expect(r.out).toContain('reported (cpu-access-device-owned)')
    expect(r.out).toContain('replay: npx dmalab run copy-engine-missing-sync --seed 1 --arch arm64')
    const t = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace
    expect(t.traceEvents.filter((e) => e.cat === 'report').map((e) => e.name)).toEqual(['report: cpu-access-device-owned'])
  })

  it('bad arguments: no -o, an unwritable file, a bad --max-events (exit 2, named)', async () => {
    const [noOut, badFile, badMax] = await Promise.all([
      dmalab('trace', 'copy-engine'),
      dmalab('trace', 'copy-engine', '-o', join(dir, 'no/such/dir/t.json')),
      dmalab('trace', 'copy-engine', '-o', join(dir, 'x.json'), '--max-events', 'lots'),
    ])
    expect(noOut.code).toBe(2)
    expect(noOut.err).toContain("required option '-o, --output <file>' not specified")
    expect(badFile.code).toBe(2)
    expect(badFile.err).toContain('--output: cannot write')
    expect(badMax.code).toBe(2)
    expect(badMax.err).toContain('--max-events must be an integer')
  })
})

describe('dmalab diagram', () => {
  it('lists the buffers of a run and draws the reported one, exit 1 with the replay command', async () => {
    const [list, drawn] = await Promise.all([
      dmalab('diagram', 'copy-engine-missing-sync', '--list'),
      dmalab('diagram', 'copy-engine-missing-sync', '--buffer', 'report'),
    ])
    expect(list.out).toContain('#2  ce0  single 4096 bytes DMA_FROM_DEVICE  mapped at test/fixtures/copy-engine-bad/missing-sync.ts:23  (reported)')
    expect(list.code).toBe(1)
    const d = drawn.out
    expect(d.startsWith('sequenceDiagram\n')).toBe(true)
    const at = (s: string) => d.indexOf(s)
    expect(at('CPU->>DEV: dma_map_single at test/fixtures/copy-engine-bad/missing-sync.ts:23')).toBeGreaterThan(0)
    expect(at('DEV->>CPU: DMA write, 4096 bytes')).toBeGreaterThan(at('dma_map_single'))
    expect(at('Note over CPU,DEV: REPORT cpu-access-device-owned at test/fixtures/copy-engine-bad/missing-sync.ts:26')).toBeGreaterThan(at('DMA write'))
    expect(at('dma_unmap_single')).toBeGreaterThan(at('REPORT'))
    expect(drawn.code).toBe(1)
    expect(drawn.err).toContain('replay: npx dmalab run copy-engine-missing-sync --seed 1')
    // docs/scenarios.md shows this very output
    const doc = readFileSync('docs/scenarios.md', 'utf8')
    const cmd = '$ npx dmalab diagram copy-engine-missing-sync --buffer report\n'
    expect(doc).toContain(cmd)
    const shown = doc.slice(doc.indexOf(cmd) + cmd.length, doc.indexOf('```', doc.indexOf(cmd)))
    expect(shown).toBe(d)
  })

  it('picks a buffer by number or by its map line, and writes a Markdown file with a mermaid fence', async () => {
    const md = join(dir, 'd.md')
    const [byNumber, byLine] = await Promise.all([
      dmalab('diagram', 'copy-engine', '--buffer', '1', '-o', md),
      dmalab('diagram', 'copy-engine-missing-sync', '--buffer', 'missing-sync.ts:21'),
    ])
    expect(byNumber.code, byNumber.err).toBe(0)
    const text = readFileSync(md, 'utf8')
    expect(text.startsWith('```mermaid\nsequenceDiagram\n')).toBe(true)
    expect(text.trimEnd().endsWith('```')).toBe(true)
    expect(text).toContain('Note over CPU,DEV: buffer 1,')
    expect(byLine.out).toContain('buffer 1, single 4096 bytes DMA_TO_DEVICE, mapped at test/fixtures/copy-engine-bad/missing-sync.ts:21')
    expect(byLine.out).toContain('DEV->>CPU: DMA read, 4096 bytes')
  })

  it('bad arguments: no --buffer, a number out of range, a line with no buffer, nonsense (exit 2, named)', async () => {
    const [none, range, line, junk] = await Promise.all([
      dmalab('diagram', 'copy-engine'),
      dmalab('diagram', 'copy-engine', '--buffer', '999'),
      dmalab('diagram', 'copy-engine', '--buffer', 'nowhere.ts:1'),
      dmalab('diagram', 'copy-engine', '--buffer', 'the-big-one'),
    ])
    expect(none.code).toBe(2)
    expect(none.err).toContain('say which buffer with --buffer, or --list')
    expect(range.code).toBe(2)
    expect(range.err).toMatch(/--buffer 999: the run had \d+ buffers \(1\.\.\d+\); see --list/)
    expect(line.code).toBe(2)
    expect(line.err).toContain('--buffer nowhere.ts:1: no buffer was mapped or allocated at that line')
    expect(junk.code).toBe(2)
    expect(junk.err).toContain('not a buffer number, FILE:LINE or \'report\'')
  })
})
