/**
 * Shared checks of a documentation page that quotes runnable examples (docs/drivers/*.md): every
 * docs/examples/<prefix>-*.ts file is quoted verbatim after an `<!-- example: path -->` marker and
 * nothing else is, and every `$ npx tsx docs/examples/run-<prefix>.ts ...` block shows exactly
 * what that command prints (run in a child process, as a reader would).
 */
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

export const root = new URL('../../', import.meta.url)
export const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')

export interface DocPage {
  readonly doc: string
  readonly markdown: string
  /** docs/examples/<prefix>-*.ts, by file name. */
  readonly exampleFiles: readonly string[]
  /** The ```ts blocks following each `<!-- tag: path -->` marker, by path. */
  quoted: (tag: string) => Map<string, string[]>
}

export function docPage(doc: string, prefix: string): DocPage {
  const markdown = read(doc)
  const exampleFiles = readdirSync(new URL('docs/examples/', root)).filter((f) => f.startsWith(`${prefix}-`) && f.endsWith('.ts'))
  return {
    doc,
    markdown,
    exampleFiles,
    quoted: (tag) => {
      const out = new Map<string, string[]>()
      for (const m of markdown.matchAll(new RegExp(`<!-- ${tag}: (\\S+) -->\\s*\\n\`\`\`ts\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g'))) {
        out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!])
      }
      return out
    },
  }
}

/** Registers the checks that the page quotes its examples verbatim and shows what they print. */
export function describeExamplesAndOutputs(page: DocPage, runner: string): void {
  describe(`${page.doc} quotes its examples verbatim`, () => {
    const examples = page.quoted('example')

    it('has examples', () => expect(page.exampleFiles.length).toBeGreaterThan(0))

    it.each(page.exampleFiles)('quotes docs/examples/%s', (file) => {
      const quotes = examples.get(`docs/examples/${file}`)
      expect(quotes, `no <!-- example: docs/examples/${file} --> block`).toBeDefined()
      for (const q of quotes!) expect(q).toBe(read(`docs/examples/${file}`).trimEnd())
    })

    it('quotes nothing that is not an example file', () => {
      for (const path of examples.keys()) expect(page.exampleFiles).toContain(path.replace('docs/examples/', ''))
    })
  })

  const esc = runner.replace(/[.]/g, '\\.')
  const shown = [...page.markdown.matchAll(new RegExp(`\`\`\`text\\n\\$ npx tsx docs/examples/${esc} ([^\\n]*)\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g'))].map((m) => ({
    command: m[1]!,
    output: m[2]!,
  }))
  const argv = (command: string) => [...command.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!)

  describe(`${page.doc} shows what the examples print`, () => {
    it('shows the output of every example', () => {
      expect([...new Set(shown.map((s) => argv(s.command)[0]))].sort()).toEqual(page.exampleFiles.map((f) => f.replace(/\.ts$/, '')).sort())
    })

    it.each(shown.map((s) => [s.command, s.output] as const))(`npx tsx docs/examples/${runner} %s`, async (command, output) => {
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', `docs/examples/${runner}`, ...argv(command)], {
        cwd: root,
        env: { ...process.env, DMALAB_LOG: 'silent' },
      })
      expect(stdout.trimEnd()).toBe(output)
    })
  })
}
