/**
 * The shape of a graded lab (docs/labs.md). Each lab is a folder labs/<id>/ with a `lab.ts` whose
 * default export is `defineLab({...})`, a `skeleton/` folder (what `dmalab lab start` copies: the
 * driver with TODOs) and a `solution/` folder (the reference solution, never copied).
 *
 * The student's files import the kernel API as `'dmalab'` and the device headers as
 * `'dmalab/devices'`; `dmalab lab check` resolves both to this repository wherever the folder is.
 */
import type { ReportKind } from '../kernel/index.js'
import type { Scenario } from '../scenarios/scenario.js'

/** A rule of the DMA API the grader checks: no report of these kinds on any platform. */
export interface LabRule {
  /** Short title, e.g. 'check every mapping with dma_mapping_error()'. */
  readonly title: string
  readonly kinds: readonly ReportKind[]
  readonly points: number
  /** Printed with each report of these kinds: a nudge toward the fix, not the fix itself. */
  readonly hint?: string
}

export interface LabGrading {
  /** Points for moving the data right on the default platform (arm64, swiotlb auto, IOMMU strict). */
  readonly worksDefault: number
  /** Points for moving the data right on every platform (partial credit: the share of platforms). */
  readonly worksEverywhere: number
  /** The rules; their points are earned only by a driver that moves the data right somewhere. */
  readonly rules: readonly LabRule[]
  /** Points for no report of a kind that no rule names. */
  readonly clean: number
}

export interface LabSpec {
  /** The folder name under labs/ (`copy-engine-hello`). */
  readonly id: string
  readonly title: string
  /** One paragraph: what the student builds and learns. */
  readonly summary: string
  /** The student's module that `check` loads (relative to the folder, e.g. `ce_hello.ts`). */
  readonly entry: string
  /** The hints, in order (`dmalab lab hint <lab> [n]`). */
  readonly hints: readonly string[]
  /**
   * The graded scenario, built from the student's module (its exports). Throws a LabModuleError
   * when an export the harness needs is missing.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any device tuple: the grader only runs it
  readonly scenario: (mod: Readonly<Record<string, unknown>>) => Scenario<any>
  readonly grading: LabGrading
}

export interface Lab extends LabSpec {
  /** The total of all points (100 for the labs that come with dmalab). */
  readonly total: number
}

/** The student's module lacks an export the harness needs (check prints it; exit 1). */
export class LabModuleError extends Error {
  override readonly name = 'LabModuleError'
}

/** Declares a lab (the default export of labs/<id>/lab.ts). */
export function defineLab(spec: LabSpec): Lab {
  const g = spec.grading
  const total = g.worksDefault + g.worksEverywhere + g.clean + g.rules.reduce((n, r) => n + r.points, 0)
  return Object.freeze({ ...spec, total })
}

/** The export `name` of the student's module, which must be a function (or a LabModuleError). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the function's type
export function exportedFunction<F>(mod: Readonly<Record<string, unknown>>, name: string): F {
  const f = mod[name]
  if (typeof f !== 'function') throw new LabModuleError(`the module must export a function '${name}' (${f === undefined ? 'missing' : `found ${typeof f}`})`)
  return f as F
}

/** The export `name` of the student's module, which must be an object (or a LabModuleError). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the object's type
export function exportedObject<T>(mod: Readonly<Record<string, unknown>>, name: string): T {
  const o = mod[name]
  if (typeof o !== 'object' || o === null) throw new LabModuleError(`the module must export an object '${name}' (${o === undefined ? 'missing' : `found ${o === null ? 'null' : typeof o}`})`)
  return o as T
}
