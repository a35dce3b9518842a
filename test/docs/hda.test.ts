/**
 * docs/drivers/hda.md, the walkthrough of the mini-HDA driver, says what the driver does.
 *
 * - every driver excerpt (`<!-- driver: drivers/sound/... -->`) is in that file as quoted, and every
 *   `azx_*` / `hda_*` name it mentions exists in the driver;
 * - every relative link resolves, the bug table links every known-bad variant under
 *   test/fixtures/hda-bad/, and README.md links the page;
 * - the cyclic-buffer picture (docs/drivers/hda-cyclic-buffer.svg) is referenced from the page, is
 *   well-formed XML (a small checker below: no XML library in the project, no xmllint on the
 *   machine) and carries the labels the page's text talks about;
 * - §6's XRUN story holds: a writer that sleeps past the ring gets one XRUN (-EPIPE), recovers with
 *   a prepare, and the sink hears the first ring then the new data, byte for byte, with no report.
 */
import { existsSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { boot, pci_register_driver, pcmUser, type BootOptions } from '../../kernel/index.js'
import { HdaController, MemoryAudioSink } from '../../devices/index.js'
import { hda_make_driver } from '../../drivers/sound/hda.js'
import { docPage, read, root } from '../helpers/doc-page.js'

const DOC = 'docs/drivers/hda.md'
const SVG = 'docs/drivers/hda-cyclic-buffer.svg'
const page = docPage(DOC, 'hda')
const { markdown } = page

/** The lines of a driver excerpt, `// ...` lines marking gaps. */
function pieces(excerpt: string): string[][] {
  const out: string[][] = [[]]
  for (const line of excerpt.split('\n')) {
    if (line.trim() === '// ...') out.push([])
    else out.at(-1)!.push(line)
  }
  return out.filter((p) => p.length > 0)
}

function dedent(lines: readonly string[]): string[] {
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length))
  return lines.map((l) => l.slice(indent).trimEnd())
}

/** Where the piece is in the file's lines (dedented together, equal), from `from` on; -1 if not. */
function find(file: readonly string[], piece: readonly string[], from: number): number {
  const want = dedent(piece).join('\n')
  for (let at = from; at + piece.length <= file.length; at++) {
    if (file[at]!.trim() !== piece[0]!.trim()) continue
    if (dedent(file.slice(at, at + piece.length)).join('\n') === want) return at
  }
  return -1
}

describe('docs/drivers/hda.md quotes the driver as it is', () => {
  const excerpts = [...page.quoted('driver')].flatMap(([path, blocks]) => blocks.map((block, n) => ({ path, block, n })))

  it('has driver excerpts, all from drivers/sound/', () => {
    expect(excerpts.length).toBeGreaterThanOrEqual(10)
    for (const e of excerpts) expect(e.path).toMatch(/^drivers\/sound\/hda[a-z_]*\.ts$/)
  })

  it.each(excerpts.map((e) => [`${e.path} #${e.n + 1}`, e] as const))('%s', (_name, e) => {
    const file = read(e.path).split('\n')
    let from = 0
    for (const piece of pieces(e.block)) {
      const at = find(file, piece, from)
      expect(at, `not in ${e.path}:\n${piece.join('\n')}`).toBeGreaterThanOrEqual(0)
      from = at + piece.length
    }
  })

  it('every azx_* and hda_* name it mentions exists in the driver', () => {
    const source = ['hda.ts', 'hda_hw.ts'].map((f) => read(`drivers/sound/${f}`)).join('\n')
    const names = new Set([...markdown.matchAll(/`[^`\n]*`/g)].flatMap((m) => [...m[0].matchAll(/\b(?:azx|hda)_[a-z_0-9]+/g)].map((n) => n[0])))
    expect(names.size).toBeGreaterThan(20)
    for (const name of names) expect(source, name).toMatch(new RegExp(`\\b${name}\\b`))
  })
})

describe('docs/drivers/hda.md links', () => {
  const links = [...markdown.matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))

  it.each(links)('%s resolves', (link) => {
    expect(existsSync(new URL(link, new URL(DOC, root)))).toBe(true)
  })

  it('its table of contents points at its sections', () => {
    const anchors = [...markdown.matchAll(/\]\(#([^)\s]+)\)/g)].map((m) => m[1]!)
    const slug = (h: string) => h.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')
    const headings = new Set([...markdown.matchAll(/^#{2,3} (.+)$/gm)].map((m) => slug(m[1]!)))
    expect(anchors.length).toBeGreaterThan(8)
    for (const a of anchors) expect(headings, a).toContain(a)
  })

  it('the bug table links every known-bad variant of test/fixtures/hda-bad/', () => {
    const variants = readdirSync(new URL('test/fixtures/hda-bad/', root)).filter((f) => f.endsWith('.ts'))
    expect(variants.length).toBe(10)
    for (const v of variants) expect(links, v).toContain(`../../test/fixtures/hda-bad/${v}`)
  })

  it('README.md links to it', () => {
    expect(read('README.md')).toContain('(docs/drivers/hda.md)')
  })
})

/** What checkXml found: the problems (empty when well-formed) and each <text> element's text. */
interface XmlCheck {
  problems: string[]
  root: string
  texts: string[]
}

const isNameStart = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c === ':' || c > '\u007f'
const isNameChar = (c: string): boolean => isNameStart(c) || (c >= '0' && c <= '9') || c === '-' || c === '.'
const isSpace = (c: string): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r'

/**
 * A small XML well-formedness check (no DTD, no namespaces' semantics): one root element, tags
 * that nest and match, quoted attributes, no attribute twice on an element, `<` never in text or
 * attribute values, `&` only as one of the five predefined entities or a character reference,
 * comments without `--`, and nothing but white space, comments and processing instructions
 * outside the root.
 */
function checkXml(src: string): XmlCheck {
  const problems: string[] = []
  const texts: string[] = []
  const stack: { name: string; text: string }[] = []
  let root = ''
  let i = src.startsWith('\ufeff') ? 1 : 0
  const at = (): string => {
    const before = src.slice(0, i)
    return `line ${before.split('\n').length}`
  }
  const entity = (s: string, where: string): void => {
    for (let k = s.indexOf('&'); k >= 0; k = s.indexOf('&', k + 1)) {
      const end = s.indexOf(';', k)
      const ref = end < 0 ? '' : s.slice(k + 1, end)
      const digits = (d: string, set: string): boolean => d.length > 0 && Array.from(d).every((c) => set.includes(c))
      const ok = ['amp', 'lt', 'gt', 'quot', 'apos'].includes(ref) ||
        (ref.startsWith('#x') && digits(ref.slice(2), '0123456789abcdefABCDEF')) ||
        (ref.startsWith('#') && !ref.startsWith('#x') && digits(ref.slice(1), '0123456789'))
      if (!ok) problems.push(`${where}: a bare '&' or an unknown entity`)
    }
  }
  const skip = (close: string, what: string): string => {
    const end = src.indexOf(close, i)
    if (end < 0) {
      problems.push(`${at()}: unterminated ${what}`)
      i = src.length
      return ''
    }
    const body = src.slice(i, end)
    i = end + close.length
    return body
  }
  while (i < src.length) {
    if (src.startsWith('<?', i)) {
      i += 2
      skip('?>', 'processing instruction')
    } else if (src.startsWith('<!--', i)) {
      i += 4
      if (skip('-->', 'comment').includes('--')) problems.push(`${at()}: '--' inside a comment`)
    } else if (src.startsWith('<![CDATA[', i)) {
      i += 9
      const body = skip(']]>', 'CDATA section')
      if (stack.length === 0) problems.push(`${at()}: CDATA outside the root element`)
      else stack.at(-1)!.text += body
    } else if (src.startsWith('<!', i)) {
      problems.push(`${at()}: declarations (<!DOCTYPE …>) are not expected in an SVG file here`)
      i += 2
      skip('>', 'declaration')
    } else if (src.startsWith('</', i)) {
      i += 2
      const name = skip('>', 'end tag').trimEnd()
      const open = stack.pop()
      if (open === undefined) problems.push(`${at()}: </${name}> closes nothing`)
      else {
        if (open.name !== name) problems.push(`${at()}: </${name}> closes <${open.name}>`)
        if (open.name === 'text' || open.name === 'tspan') texts.push(open.text)
        if (stack.length > 0 && (open.name === 'tspan')) stack.at(-1)!.text += open.text
      }
    } else if (src[i] === '<') {
      i++
      let name = ''
      if (!isNameStart(src[i] ?? '')) problems.push(`${at()}: a tag name must start with a letter`)
      while (i < src.length && isNameChar(src[i]!)) name += src[i++]!
      if (stack.length === 0) {
        if (root !== '') problems.push(`${at()}: a second root element <${name}>`)
        root = name
      }
      const seen = new Set<string>()
      let closed = false
      for (;;) {
        const hadSpace = isSpace(src[i] ?? '')
        while (i < src.length && isSpace(src[i]!)) i++
        if (i >= src.length) {
          problems.push(`${at()}: unterminated <${name}>`)
          break
        }
        if (src.startsWith('/>', i)) {
          i += 2
          closed = true
          break
        }
        if (src[i] === '>') {
          i++
          break
        }
        if (!hadSpace) problems.push(`${at()}: <${name}>: attributes must be separated by white space`)
        let attr = ''
        while (i < src.length && isNameChar(src[i]!)) attr += src[i++]!
        if (attr === '') {
          problems.push(`${at()}: <${name}>: unexpected '${src[i]!}'`)
          i++
          continue
        }
        if (seen.has(attr)) problems.push(`${at()}: <${name}>: attribute ${attr} twice`)
        seen.add(attr)
        while (i < src.length && isSpace(src[i]!)) i++
        if (src[i] !== '=') {
          problems.push(`${at()}: <${name}>: attribute ${attr} has no value`)
          continue
        }
        i++
        while (i < src.length && isSpace(src[i]!)) i++
        const q = src[i]
        if (q !== '"' && q !== "'") {
          problems.push(`${at()}: <${name}>: the value of ${attr} is not quoted`)
          continue
        }
        i++
        const value = skip(q, `value of ${attr}`)
        if (value.includes('<')) problems.push(`${at()}: <${name}>: '<' in the value of ${attr}`)
        entity(value, `${at()}: <${name} ${attr}>`)
      }
      if (!closed) stack.push({ name, text: '' })
    } else {
      const end = src.indexOf('<', i)
      const text = src.slice(i, end < 0 ? src.length : end)
      if (stack.length === 0) {
        if (text.trim() !== '') problems.push(`${at()}: text outside the root element`)
      } else {
        if (text.includes(']]>')) problems.push(`${at()}: ']]>' in text`)
        entity(text, at())
        stack.at(-1)!.text += text
      }
      i = end < 0 ? src.length : end
    }
  }
  for (const open of stack) problems.push(`<${open.name}> is never closed`)
  if (root === '') problems.push('no root element')
  return { problems, root, texts }
}

describe('the cyclic-buffer picture', () => {
  it('the page shows it', () => {
    expect(markdown).toMatch(/!\[[^\]]+\]\(hda-cyclic-buffer\.svg\)/)
  })

  it('the checker finds what makes XML ill-formed', () => {
    expect(checkXml('<svg><text>a</text></svg>').problems).toEqual([])
    expect(checkXml('<svg><text>a</svg>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg x=1/>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg x="1" x="2"/>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg><text>a & b</text></svg>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg/><svg/>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg><!-- a -- b --></svg>').problems.length).toBeGreaterThan(0)
    expect(checkXml('<svg>').problems.length).toBeGreaterThan(0)
  })

  it('is well-formed XML, an <svg> root', () => {
    const { problems, root: top } = checkXml(read(SVG))
    expect(problems).toEqual([])
    expect(top).toBe('svg')
    expect(read(SVG)).toContain('xmlns="http://www.w3.org/2000/svg"')
  })

  it('carries the labels: the periods, the BDL entries, IOC, the DMA position, the application pointer, the period being played', () => {
    const texts = checkXml(read(SVG)).texts
    for (const label of [
      'period 0', 'period 1', 'period 2', 'period 3',
      'BDL entry 0', 'BDL entry 1', 'BDL entry 2', 'BDL entry 3',
      'IOC', 'LPIB / position buffer', 'application pointer', 'the period being played',
    ]) {
      expect(texts, label).toContain(label)
    }
    expect(texts.filter((t) => t === 'IOC').length).toBe(4)
  })
})

describe('§6: an XRUN and its recovery', () => {
  const PARAMS = { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 480, periods: 4 } as const
  const pattern = (frames: number, seed: number): Uint8Array => {
    const pcm = new Int16Array(frames * 2)
    for (let i = 0; i < pcm.length; i++) pcm[i] = ((i * 7 + seed) % 65536) - 32768
    return new Uint8Array(pcm.buffer)
  }

  it.each([['arm64'], ['x86_64'], ['riscv64']] as const)('%s: one XRUN (-EPIPE), recovered with a prepare; the first ring, then the new data, byte for byte', async (arch) => {
    const sink = new MemoryAudioSink()
    const hda = new HdaController({ sink })
    const sys = boot({ log: 'silent', arch, seed: 2, devices: [hda] } satisfies BootOptions)
    expect(await sys.run(() => pci_register_driver(hda_make_driver()))).toBe(0)
    const pcm = pcmUser(sys)
    const h = await pcm.open(0, 0, 'playback', PARAMS)
    const ring = pattern(1920, 1)
    const more = pattern(3840, 2)
    expect(await pcm.write(h, ring)).toBe(1920) // a full ring: the stream starts
    await sys.runFor(100_000_000) // the writer sleeps 100 ms; the ring is 40 ms
    const err = await pcm.write(h, more)
    expect(err).toBe(-32) // -EPIPE
    expect(await pcm.recover(h, err)).toBe(0)
    const resetsBefore = hda.stats.streamResets
    expect(await pcm.write(h, more)).toBe(3840)
    expect(h.xruns).toBe(1)
    expect(await pcm.drain(h)).toBe(0)
    await pcm.close(h)
    expect(resetsBefore).toBeGreaterThanOrEqual(2) // prepare at open, prepare at recover
    const out = Buffer.from(sink.bytes.subarray(0, sink.length))
    expect(out.length).toBe(ring.length + more.length)
    expect(out.subarray(0, ring.length)).toEqual(Buffer.from(ring))
    expect(out.subarray(ring.length)).toEqual(Buffer.from(more))
    expect(sys.reports).toEqual([])
  })
})
