/**
 * docs/performance.md names real benchmarks: every benchmark the figures table names exists in
 * bench/results.json (a renamed or dropped benchmark would leave the page describing nothing),
 * and the page is linked from the README.
 */
import { describe, expect, it } from 'vitest'
import { read } from '../helpers/doc-page.js'

describe('docs/performance.md', () => {
  const page = read('docs/performance.md')
  const results = JSON.parse(read('bench/results.json')) as { name: string }[]
  const names = new Set(results.map((r) => r.name))
  const table = page.slice(page.indexOf('## Figures'), page.indexOf('## Where the time goes'))
  const named = [...table.matchAll(/^\| `([a-z0-9_.]+)`/gm)].map((m) => m[1]!)

  it('the figures table names benchmarks that bench/results.json holds', () => {
    expect(named.length).toBeGreaterThan(5)
    for (const n of named) expect(names, n).toContain(n)
  })

  it('is linked from the README', () => {
    expect(read('README.md')).toContain('](docs/performance.md)')
  })
})
