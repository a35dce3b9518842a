/**
 * docs/testing.md, how to test a driver with dmalab/testing, shows real code and real output:
 *
 * - every `<!-- quote: path -->` block is that file verbatim, and the example's three files are quoted;
 * - the failure it shows is what toHaveNoDmaReports() prints for the buggy fetch on arm64, seed 1
 *   (frames of the test files themselves excepted: they name the file that ran the steps);
 * - every relative link resolves, and README.md links to the page.
 */
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { kfree, kmalloc, memset, pci_register_driver } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { bootOn, platformNamed } from '../../testing/index.js'
import { mycopy_driver } from '../fixtures/mycopy/mycopy.js'
import { mycopy_fetch_nosync } from '../fixtures/mycopy/mycopy-nosync.js'
import { docPage, read, root } from '../helpers/doc-page.js'

const page = docPage('docs/testing.md', 'testing')
const EXAMPLE = ['test/fixtures/mycopy/mycopy.ts', 'test/fixtures/mycopy/mycopy-nosync.ts', 'test/testing/example-stale-cache.test.ts']

describe('docs/testing.md quotes its example verbatim', () => {
  const quotes = page.quoted('quote')

  it.each(EXAMPLE)('quotes %s', (path) => {
    expect(quotes.get(path), `no <!-- quote: ${path} --> block`).toBeDefined()
  })

  it.each([...quotes.keys()])('%s is quoted as it is', (path) => {
    for (const q of quotes.get(path)!) expect(q).toBe(read(path).trimEnd())
  })
})

describe('docs/testing.md shows what the matcher prints', () => {
  const shown = [...page.markdown.matchAll(/<!-- failure: (.+?) seed=(\d+) -->\n```text\n([\s\S]*?)\n```\n/g)]
  const withoutTestFrames = (text: string) => text.split('\n').filter((l) => !/^ {2}\S.* \(test\/(testing|docs)\/[^)]*\)$/.test(l)).join('\n')

  it('shows one failure', () => expect(shown).toHaveLength(1))

  it.each(shown.map((m) => [m[1]!, Number(m[2]), m[3]!] as const))('%s seed=%i', async (name, seed, text) => {
    // The steps of twoFetches() in test/testing/example-stale-cache.test.ts, with the buggy fetch.
    const sys = bootOn(platformNamed(name), { seed, devices: [new CopyEngine({ name: 'ce0' })] })
    expect(await sys.run(() => pci_register_driver(mycopy_driver))).toBe(0)
    const pdev = sys.pciDevice('ce0')!
    await sys.run(async () => {
      for (const fill of [0x11, 0x22]) {
        const src = kmalloc(256)!
        memset(src, fill, 256)
        await mycopy_fetch_nosync(pdev, src, 256)
        kfree(src)
      }
    })
    await sys.unbind(pdev)
    let message = ''
    try {
      expect(sys).toHaveNoDmaReports()
    } catch (e) {
      message = (e as Error).message
    }
    expect(withoutTestFrames(text)).toBe(withoutTestFrames(message))
    expect(text).toMatch(/\(test\/testing\/example-stale-cache\.test\.ts:\d+:\d+\)/)
  })
})

describe('docs/testing.md links', () => {
  it('every relative link resolves', () => {
    const links = [...page.markdown.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l))
    expect(links.length).toBeGreaterThan(0)
    for (const l of links) expect(existsSync(new URL(l, new URL('docs/', root))), l).toBe(true)
  })

  it('README.md links to it', () => expect(read('README.md')).toContain('docs/testing.md'))
})
