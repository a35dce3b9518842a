/** kernel/lib/sorted.ts: the splice-free insert and remove the DMA path uses, against splice itself. */
import { describe, expect, it } from 'vitest'
import { insertAt, lowerBound, removeAt } from '../../kernel/lib/sorted.js'

describe('sorted-array helpers', () => {
  it('insertAt and removeAt do what splice does, at every position of a random walk', () => {
    let seed = 12345
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const ours: number[] = []
    const ref: number[] = []
    for (let step = 0; step < 2000; step++) {
      if (ours.length === 0 || rand(3) !== 0) {
        const v = rand(1000)
        const i = lowerBound(ours, v, (x) => x)
        insertAt(ours, i, v)
        ref.splice(i, 0, v)
      } else {
        const i = rand(ours.length)
        removeAt(ours, i)
        ref.splice(i, 1)
      }
      expect(ours).toEqual(ref)
    }
    // Still sorted: insertAt put each value where lowerBound said.
    expect(ours).toEqual([...ours].sort((a, b) => a - b))
    expect(ours.length).toBeGreaterThan(100)
  })

  it('inserts at both ends and removes the last and only element', () => {
    const a = [2, 3]
    insertAt(a, 0, 1)
    insertAt(a, 3, 4)
    expect(a).toEqual([1, 2, 3, 4])
    removeAt(a, 3)
    removeAt(a, 0)
    expect(a).toEqual([2, 3])
    const one = [7]
    removeAt(one, 0)
    expect(one).toEqual([])
  })
})
