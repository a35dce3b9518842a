/**
 * The system's one seeded random number generator (sfc32, seeded through splitmix32).
 *
 * Everything random in a system — cache evictions, speculative fills, device jitter, store-buffer
 * drain order — draws from one Rng made from the boot seed, so the same seed gives the same trace.
 */

function splitmix32(state: number): () => number {
  let s = state >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return (z ^ (z >>> 16)) >>> 0
  }
}

export class Rng {
  #a: number
  #b: number
  #c: number
  #d: number
  readonly seed: number

  constructor(seed: number) {
    this.seed = seed
    // Fold a seed of up to 53 bits into two 32-bit halves.
    const lo = seed >>> 0
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0
    const mix = splitmix32(lo ^ Math.imul(hi, 0x27d4eb2d))
    this.#a = mix()
    this.#b = mix()
    this.#c = mix()
    this.#d = mix()
    for (let i = 0; i < 12; i++) this.next()
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  next(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0
    this.#d = (this.#d + 1) >>> 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) >>> 0
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0
    this.#c = (this.#c + t) >>> 0
    return t
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n)
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return p > 0 && this.float() < p
  }

  /** A new generator derived from this one, for a subsystem that wants its own stream. */
  fork(): Rng {
    return new Rng(this.next() * 0x20_0000 + (this.next() >>> 11))
  }
}
