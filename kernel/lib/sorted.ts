/**
 * Array helpers: binary search over a sorted array, and insert and remove in place without
 * splice (the DMA path's tables, wait queues, spinlock holders).
 */

/** The first index i with key(arr[i]) >= value (arr sorted by key). */
export function lowerBound<T>(arr: readonly T[], value: number, key: (t: T) => number): number {
  let lo = 0
  let hi = arr.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (key(arr[mid]!) < value) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** arr.splice(i, 0, x) without the splice: no result array, no builtin call (per map on the DMA path). */
export function insertAt<T>(arr: T[], i: number, x: T): void {
  arr.push(x)
  for (let j = arr.length - 1; j > i; j--) arr[j] = arr[j - 1]!
  arr[i] = x
}

/** arr.splice(i, 1) without the splice, keeping the order. */
export function removeAt(arr: unknown[], i: number): void {
  for (let j = i; j < arr.length - 1; j++) arr[j] = arr[j + 1]!
  arr.pop()
}
