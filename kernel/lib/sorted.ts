/** Sorted-array helpers shared by the dma-debug table and the sanitizer's list of large mappings. */

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
