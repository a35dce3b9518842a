/**
 * Property: boot options fuzzed (DESIGN.md §6 "An unknown option or a bad value is an error that
 * names it", §7 "it never corrupts emulator state").
 *
 * Arbitrary option objects — valid and invalid values for every option of kernel/boot.ts, wrong
 * types, unknown keys, out-of-range numbers, non-objects — either boot a working system (a correct
 * exchange through a test master moves the right bytes with no report) or throw a BootOptionError
 * whose `option` is one the object really has and whose message names it; never another
 * exception. After each failure a valid boot works, even with the device instances the failed
 * boot was given (a failed boot must not have claimed them).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { boot, BootOptionError, type System } from '../../kernel/index.js'
import { CopyEngine } from '../../devices/index.js'
import { correctExchange, runs } from '../helpers/property.js'

const JUNK: readonly unknown[] = [
  null, undefined, 0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 60, '', 'x', '1', true, false, {}, [], [1],
  () => 1, 1n, Symbol('opt'), new Date(0),
]
const junk = fc.constantFrom(...JUNK)
const or = <T,>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: junk })

/**
 * Cache values: valid and invalid sizes, including sizes past MAX_CACHE_SIZE (256 MiB) and set
 * counts of 2^32 and more (a 32-bit power-of-two test once passed 2^41). Valid sizes stay below
 * 2^26 so each boot's cache stays small.
 */
const cacheArb = fc.dictionary(
  fc.oneof({ weight: 6, arbitrary: fc.constantFrom('lineSize', 'size', 'ways', 'speculation') }, fc.constantFrom('bogus', 'line_size', '')),
  or(
    fc.oneof(
      fc.constantFrom(8, 16, 32, 48, 64, 128, 256, 512, 1024, 0, 1, 4, 8, 16, 64, 0.05, 0.5, 1.5, -0.1),
      fc.integer({ min: -1, max: 1 << 25 }),
      fc.constantFrom(2 ** 28 + 4096, 2 ** 29, 2 ** 35, 2 ** 41, 2 ** 44, 2 ** 53, 2 ** 60, Number.MAX_VALUE),
    ),
  ),
  { maxKeys: 4 },
)
const checksArb = fc.oneof(
  junk,
  fc.boolean(),
  fc.dictionary(fc.constantFrom('dmaDebug', 'ownership', 'kasan', 'kmsan', 'stacks', 'bogus'), or(fc.boolean()), { maxKeys: 4 }),
)
const costsArb = fc.dictionary(
  fc.constantFrom('memAccessNs', 'copyBytesPerNs', 'cacheLineOpNs', 'contextSwitchNs', 'mmioNs', 'bogus'),
  or(fc.oneof(fc.double({ min: -10, max: 100, noNaN: true }), fc.constant(0))),
  { maxKeys: 3 },
)
const logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined }

/** A recipe for devices: made fresh per try, or the instances of an earlier failed boot. */
const devicesArb = fc.oneof(
  junk,
  fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom('ce0', 'ce1', 'ce0') }, junk), { maxLength: 3 }),
)

const optionsArb = fc.oneof(
  { weight: 1, arbitrary: junk },
  {
    weight: 12,
    arbitrary: fc.record(
      {
        arch: or(fc.constantFrom('arm64', 'x86_64', 'riscv64', 'sparc', 'ARM64')),
        coherent: or(fc.boolean()),
        seed: or(fc.oneof(fc.nat(), fc.integer({ min: -5, max: 5 }), fc.constant(2 ** 53 - 1))),
        iommu: or(fc.constantFrom('off', 'strict', 'lazy', 'on', 'STRICT')),
        swiotlb: or(fc.constantFrom('auto', 'force', 'off', 'on')),
        swiotlbSize: or(fc.constantFrom(256 * 1024, 1 << 20, 64 << 20, 1 << 30, 2 << 30, 100_000, 0, -(256 * 1024))),
        kmallocMinAlign: or(fc.constantFrom(8, 16, 64, 128, 4096, 8192, 3, 0, 7, 96)),
        cache: or(cacheArb),
        costs: or(costsArb),
        irqUnhandledThreshold: or(fc.constantFrom(1, 5, 99_900, 100_000, 100_001, 0, -1)),
        devices: devicesArb,
        checks: checksArb,
        log: or(fc.oneof(fc.constantFrom('silent', 'fatal', 'error', 'loud', 'SILENT'), fc.constant(logger), fc.constant({ warn: 'no' }))),
        bogus: junk,
        Arch: junk,
      },
      { requiredKeys: [] },
    ),
  },
)

/** Turns the devices recipe into instances (names become CopyEngines). */
function materialise(options: unknown): unknown {
  if (typeof options !== 'object' || options === null || Array.isArray(options) || !('devices' in options)) return options
  const o = options as Record<string, unknown>
  const d = o['devices']
  if (!Array.isArray(d)) return options
  return { ...o, devices: d.map((x: unknown) => (x === 'ce0' || x === 'ce1' ? new CopyEngine({ name: x }) : x)) }
}

const describeValue = (x: unknown): string => fc.stringify(x)

describe('property: boot options either boot a working system or name the bad option', () => {
  it('arbitrary option objects', async () => {
    await fc.assert(
      fc.asyncProperty(optionsArb, async (recipe) => {
        // The devices of this try, kept to be reused after a failure.
        const pool = new Map<string, CopyEngine>()
        const options = materialise(recipe)
        if (typeof options === 'object' && options !== null && Array.isArray((options as { devices?: unknown }).devices)) {
          for (const d of (options as { devices: unknown[] }).devices) if (d instanceof CopyEngine) pool.set(d.name, d)
        }
        let sys: System | null = null
        let err: unknown = null
        try {
          sys = boot(options as never)
        } catch (e) {
          err = e
        }
        if (err !== null) {
          expect(err instanceof BootOptionError, `${describeValue(recipe)}: ${String(err)}`).toBe(true)
          const e = err as BootOptionError
          expect(e.message).toContain(`'${e.option}'`)
          const top = e.option.split(/[.[]/)[0]!
          if (typeof options === 'object' && options !== null && !Array.isArray(options)) {
            expect(Object.keys(options), e.message).toContain(top)
          } else expect(top).toBe('options')
          // Nothing of the failed boot leaks: a valid boot works, with the same device instances
          // when they were fine on their own.
          const reusable = [...new Set(pool.values())].filter((d) => d.machine === null)
          const names = new Set<string>()
          const devices = reusable.filter((d) => !names.has(d.name) && names.add(d.name))
          const next = boot({ log: 'silent', devices })
          const m = next.attachTestMaster('tm0')
          await correctExchange(next, m)
          expect(next.reports).toEqual([])
          return
        }
        const s = sys!
        const m = s.attachTestMaster('tm0')
        await correctExchange(s, m)
        expect(s.reports.map((r) => r.kind)).toEqual([])
      }),
      runs(150),
    )
  })
})
