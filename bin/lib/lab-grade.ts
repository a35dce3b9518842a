/**
 * `dmalab lab check`: grades a student's folder. The lab's scenario, built from the student's
 * module, runs on every platform of the matrix (testing/platforms.ts PLATFORMS: arm64 and riscv64
 * non-coherent, x86_64 coherent, each with swiotlb auto/force and the IOMMU strict/off). The
 * grade is the lab's checks: the data right on the default platform and on every platform, and
 * for each rule, no report of its kinds on any platform (each report is named with its rule, the
 * student's line and the lab's hint), and no report of any other kind.
 */
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import type { Report, ReportStack } from '../../kernel/index.js'
import { runScenario, type PlatformOptions, type RunResult, type Scenario } from '../../scenarios/scenario.js'
import { LabModuleError, type Lab } from '../../labs/lab-api.js'
import { loadLabModule, REPO_ROOT } from './lab-load.js'
import { RULES } from './lab-rules.js'

/** A platform of the matrix (the same 12 as testing/platforms.ts PLATFORMS, which imports vitest). */
export interface LabPlatform {
  readonly name: string
  readonly options: Omit<PlatformOptions, 'seed'>
}

export const LAB_PLATFORMS: readonly LabPlatform[] = (['arm64', 'riscv64', 'x86_64'] as const).flatMap((arch) =>
  (['auto', 'force'] as const).flatMap((swiotlb) =>
    (['strict', 'off'] as const).map((iommu) => ({ name: `${arch} swiotlb=${swiotlb} iommu=${iommu}`, options: { arch, coherent: arch === 'x86_64', swiotlb, iommu } })),
  ),
)
/** boot()'s defaults: the platform a first test runs on. */
export const DEFAULT_PLATFORM = 'arm64 swiotlb=auto iommu=strict'

export interface PlatformRun {
  readonly platform: LabPlatform
  readonly dataOk: boolean
  readonly summary: string
  readonly reports: readonly Report[]
  /** The scenario harness or the student's code threw (not a kernel oops). */
  readonly error?: string
}

/** One report as the student sees it: kind and the student's line, on which platforms. */
export interface Finding {
  readonly kind: Report['kind']
  /** `file:line` in the student's folder (or the report's own site when no frame is there). */
  readonly site: string
  readonly fn: string
  /** Where the buffer was mapped or allocated, in the student's folder, when that is known. */
  readonly origin?: string
  readonly message: string
  readonly platforms: string[]
}

export interface CheckResult {
  readonly title: string
  readonly points: number
  readonly max: number
  /** Lines of feedback, printed under the check. */
  readonly feedback: string[]
}

export interface Grade {
  readonly lab: Lab
  readonly dir: string
  readonly runs: readonly PlatformRun[]
  readonly checks: readonly CheckResult[]
  readonly score: number
  readonly total: number
  /** The module failed to load or lacks an export: nothing ran. */
  readonly loadError?: string
}

function within(dir: string, file: string): string | null {
  const abs = isAbsolute(file) ? file : join(REPO_ROOT, file)
  const rel = relative(dir, abs)
  return rel.startsWith('..') || isAbsolute(rel) ? null : rel.split(sep).join('/')
}

/** The first frame of a stack that lies in the student's folder, as `file:line` and function. */
function studentFrame(dir: string, stack: ReportStack | undefined): { at: string; fn: string } | null {
  for (const f of stack?.frames ?? []) {
    const rel = within(dir, f.file)
    if (rel !== null) return { at: `${rel}:${f.line}`, fn: f.fn }
  }
  return null
}

/** The reports of all runs, merged by kind and student line. */
export function findings(dir: string, runs: readonly PlatformRun[]): Finding[] {
  const byKey = new Map<string, Finding>()
  for (const run of runs) {
    for (const r of run.reports) {
      const isOrigin = (s: ReportStack) => ['mapped', 'allocated', 'freed'].includes(s.label)
      // The faulty call ('access', or e.g. 'relaxed MMIO write' for missing-barrier), then the history.
      const access = [r.stacks.find((s) => s.label === 'access'), ...r.stacks.filter((s) => s.label !== 'access' && !isOrigin(s))].reduce<{ at: string; fn: string } | null>((hit, s) => hit ?? studentFrame(dir, s), null)
      const originStack = r.stacks.find((s) => s.label === 'mapped') ?? r.stacks.find((s) => s.label === 'allocated')
      const origin = studentFrame(dir, originStack)
      const site = access?.at ?? origin?.at ?? r.site ?? NO_LINE
      const key = `${r.kind} ${site}`
      const f = byKey.get(key)
      if (f !== undefined) {
        if (!f.platforms.includes(run.platform.name)) f.platforms.push(run.platform.name)
        continue
      }
      byKey.set(key, {
        kind: r.kind,
        site,
        fn: access?.fn ?? origin?.fn ?? '?',
        ...(origin !== null && origin.at !== site ? { origin: origin.at } : {}),
        message: r.message,
        platforms: [run.platform.name],
      })
    }
  }
  return [...byKey.values()]
}

/** A report with no driver frame: a device access the hardware made on its own (an IOMMU fault, a device error). */
const NO_LINE = '(no driver line: the device did it on its own)'

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`

function platformList(names: readonly string[]): string {
  if (names.length === LAB_PLATFORMS.length) return 'on every platform'
  return `on ${plural(names.length, 'platform')} (${names.slice(0, 3).join('; ')}${names.length > 3 ? `; and ${names.length - 3} more` : ''})`
}

function describeFinding(f: Finding, hint?: string): string[] {
  const rule = RULES[f.kind]
  return [
    `${f.kind} ${f.site === NO_LINE ? f.site : `at ${f.site} (in ${f.fn})`}${f.origin !== undefined ? `, buffer mapped/allocated at ${f.origin}` : ''}, ${platformList(f.platforms)}`,
    `  rule: ${rule.rule}`,
    `  fix:  ${rule.fix}`,
    ...(f.site === NO_LINE ? [`  what: ${f.message}`] : []),
    ...(hint !== undefined ? [`  hint: ${hint}`] : []),
  ]
}

/** Scores the runs with the lab's checks. */
export function score(lab: Lab, dir: string, runs: readonly PlatformRun[]): CheckResult[] {
  const g = lab.grading
  const checks: CheckResult[] = []
  const wrong = runs.filter((r) => !r.dataOk)
  const def = runs.find((r) => r.platform.name === DEFAULT_PLATFORM)
  const defOk = def?.dataOk === true
  checks.push({
    title: `the data is right on the default platform (${DEFAULT_PLATFORM})`,
    points: defOk ? g.worksDefault : 0,
    max: g.worksDefault,
    feedback: defOk || def === undefined ? [] : [def.error !== undefined ? `threw: ${def.error}` : def.summary],
  })
  const okCount = runs.length - wrong.length
  checks.push({
    title: `the data is right on every platform (${okCount}/${runs.length})`,
    points: runs.length === 0 ? 0 : Math.floor((g.worksEverywhere * okCount) / runs.length),
    max: g.worksEverywhere,
    feedback: wrong.slice(0, 4).map((r) => `${r.platform.name}: ${r.error !== undefined ? `threw: ${r.error}` : r.summary}`).concat(wrong.length > 4 ? [`... and ${wrong.length - 4} more platforms`] : []),
  })
  const gate = okCount > 0
  const all = findings(dir, runs)
  const claimed = new Set(g.rules.flatMap((r) => r.kinds))
  const notGraded = 'not graded yet: the rules count once the driver moves the data right on at least one platform'
  for (const rule of g.rules) {
    const mine = all.filter((f) => rule.kinds.includes(f.kind))
    checks.push({
      title: `rule: ${rule.title}`,
      points: gate && mine.length === 0 ? rule.points : 0,
      max: rule.points,
      // Not graded yet, the reports are still shown: they may be why the data is wrong.
      feedback: gate ? mine.flatMap((f) => describeFinding(f, rule.hint)) : [notGraded, ...mine.flatMap((f) => describeFinding(f, rule.hint))],
    })
  }
  const others = all.filter((f) => !claimed.has(f.kind))
  checks.push({
    title: 'no other report (every other sanitizer check)',
    points: gate && others.length === 0 ? g.clean : 0,
    max: g.clean,
    feedback: gate ? others.flatMap((f) => describeFinding(f)) : [notGraded],
  })
  return checks
}

export interface GradeOptions {
  readonly seed?: number
  /** Called after each platform's run (progress). */
  readonly onRun?: (done: number, total: number, run: PlatformRun) => void
  readonly platforms?: readonly LabPlatform[]
}

/** Loads the student's module from dir, runs the lab on every platform, scores it. */
export async function gradeLab(lab: Lab, folder: string, opts: GradeOptions = {}): Promise<Grade> {
  const dir = resolve(folder)
  const total = lab.total
  let scenario: Scenario
  try {
    scenario = lab.scenario(await loadLabModule(dir, lab.entry)) as Scenario
  } catch (e) {
    const loadError = e instanceof LabModuleError ? `${lab.entry}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e)
    return { lab, dir, runs: [], checks: [], score: 0, total, loadError }
  }
  const platforms = opts.platforms ?? LAB_PLATFORMS
  const runs: PlatformRun[] = []
  for (const platform of platforms) {
    let run: PlatformRun
    try {
      const r: RunResult = await runScenario(scenario, { ...platform.options, seed: opts.seed ?? 1 }, 'silent')
      run = { platform, dataOk: r.dataOk, summary: r.oops !== undefined ? `kernel oops: ${r.oops}` : r.summary, reports: r.reports }
    } catch (e) {
      run = { platform, dataOk: false, summary: 'threw', reports: [], error: e instanceof Error ? e.message : String(e) }
    }
    runs.push(run)
    opts.onRun?.(runs.length, platforms.length, run)
  }
  const checks = score(lab, dir, runs)
  return { lab, dir, runs, checks, score: checks.reduce((n, c) => n + c.points, 0), total }
}

/** The grade as text: one line per check with its points, its feedback under it, the score. */
export function formatGrade(g: Grade): string {
  const out: string[] = [`Lab ${g.lab.id}: ${g.lab.title}`, `Folder: ${g.dir}`, '']
  if (g.loadError !== undefined) {
    out.push('The module could not be loaded, so nothing ran:', ...g.loadError.split('\n').map((l) => `  ${l}`), '')
  }
  const w = String(g.total).length
  for (const c of g.checks) {
    out.push(`${c.points === c.max ? 'PASS' : 'FAIL'} ${String(c.points).padStart(w)}/${String(c.max).padStart(w)}  ${c.title}`)
    for (const l of c.feedback) out.push(`${' '.repeat(2 * w + 7)}${l}`)
  }
  out.push('', `Score: ${g.score}/${g.total}${g.score === g.total ? ' (full score)' : ''}`)
  return out.join('\n')
}
