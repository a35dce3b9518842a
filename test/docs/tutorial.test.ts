/**
 * docs/tutorial/: every chapter with an example quotes it verbatim and shows exactly what
 * `npx tsx docs/examples/run-tutorial.ts <example>` prints (test/helpers/doc-page.ts); the
 * pictures committed in docs/tutorial/ are what the examples draw now and are referenced by their
 * chapter (a Mermaid diagram, .mmd, is also embedded in the chapter in a ```mermaid fence); every
 * relative link of the tutorial resolves; README.md links the index.
 */
import { existsSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { docPage, describeExamplesAndOutputs, read, root } from '../helpers/doc-page.js'

const CHAPTERS = [
  { doc: 'docs/tutorial/what-is-dma.md', prefix: 'tutorial-what-is-dma' },
  { doc: 'docs/tutorial/mappings.md', prefix: 'tutorial-mappings' },
  { doc: 'docs/tutorial/rings.md', prefix: 'tutorial-rings' },
  { doc: 'docs/tutorial/ownership.md', prefix: 'tutorial-ownership' },
  { doc: 'docs/tutorial/barriers.md', prefix: 'tutorial-barriers' },
  { doc: 'docs/tutorial/iommu.md', prefix: 'tutorial-iommu' },
]

for (const c of CHAPTERS) describeExamplesAndOutputs(docPage(c.doc, c.prefix), 'run-tutorial.ts')

type Example = { run: (o: object) => Promise<{ files: Record<string, string> }> }

describe('the committed pictures are what the examples draw', () => {
  for (const c of CHAPTERS) {
    const page = docPage(c.doc, c.prefix)
    it.each(page.exampleFiles)(`${c.doc}: %s`, async (file) => {
      const mod = (await import(`../../docs/examples/${file.replace(/\.ts$/, '.js')}`)) as Example
      const { files } = await mod.run({})
      expect(Object.keys(files).length).toBeGreaterThan(0)
      for (const [name, text] of Object.entries(files)) {
        expect(read(`docs/tutorial/${name}`), name).toBe(text)
        expect(page.markdown, name).toContain(`](${name})`)
        // A Mermaid diagram is also shown in place, in a fence, as it was drawn.
        if (name.endsWith('.mmd'))
          expect(page.markdown, name).toContain(`\`\`\`mermaid\n${text.trimEnd()}\n\`\`\`\n`)
      }
    })
  }
})

describe('docs/tutorial links', () => {
  const pages = readdirSync(new URL('docs/tutorial/', root)).filter((f) => f.endsWith('.md'))
  const links = pages.flatMap((p) =>
    [...read(`docs/tutorial/${p}`).matchAll(/\]\(([^)#\s]+)(#[^)\s]*)?\)/g)]
      .map((m) => [p, m[1]!] as const)
      .filter(([, l]) => !/^[a-z]+:/.test(l)),
  )
  it.each(links)('%s: %s resolves', (_page, link) => {
    expect(existsSync(new URL(`docs/tutorial/${link}`, root))).toBe(true)
  })
  it('README.md links the tutorial and the index links every chapter', () => {
    expect(read('README.md')).toContain('](docs/tutorial/README.md)')
    const index = read('docs/tutorial/README.md')
    for (const p of pages.filter((f) => f !== 'README.md')) expect(index).toContain(`](${p})`)
  })
})
