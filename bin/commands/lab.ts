/**
 * `dmalab lab list | start <lab> [dir] | check <lab> [dir] | hint <lab> [n]`: graded labs
 * (docs/labs.md). `start` copies a lab's skeleton (never its solution) into a folder; `check`
 * grades the folder on every platform and prints a score with, for each broken rule, the report
 * kind, the student's line, the rule and a hint; exit 0 only on a full score.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import type { Command } from 'commander'
import { LABS, findLab } from '../../labs/index.js'
import type { Lab } from '../../labs/lab-api.js'
import { EXIT_BUG, EXIT_OK, UsageError } from '../lib/errors.js'
import { formatGrade, gradeLab } from '../lib/lab-grade.js'
import { REPO_ROOT } from '../lib/lab-load.js'

/** labs/<id>/ in this repository. */
export function labFolder(id: string): string {
  return join(REPO_ROOT, 'labs', id)
}

function lab(id: string): Lab {
  const l = findLab(id)
  if (l === undefined) throw new UsageError(`<lab>: unknown lab '${id}'; the labs are: ${LABS.map((x) => x.id).join(', ')} (dmalab lab list)`)
  return l
}

function studentDir(l: Lab, dir: string | undefined): string {
  return resolve(dir ?? l.id)
}

/** The package.json, tsconfig.json and README.md `start` writes next to the skeleton. */
function scaffoldExtras(l: Lab, dir: string): Record<string, string> {
  const kernel = join(REPO_ROOT, 'kernel/index.ts')
  const devices = join(REPO_ROOT, 'devices/index.ts')
  return {
    'package.json': `${JSON.stringify({ name: `${l.id}-lab`, private: true, type: 'module' }, null, 2)}\n`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2023', lib: ['ES2023'], module: 'NodeNext', moduleResolution: 'NodeNext', types: [], strict: true, noEmit: true, skipLibCheck: true,
          paths: { dmalab: [kernel], 'dmalab/devices': [devices] },
        },
        include: ['*.ts'],
      },
      null,
      2,
    )}\n`,
    'README.md': [
      `# Lab ${l.id}: ${l.title}`,
      '',
      l.summary,
      '',
      `Edit \`${l.entry}\` (look for TODO), then grade it:`,
      '',
      '```sh',
      `npx dmalab lab check ${l.id} ${dir}`,
      `npx dmalab lab hint ${l.id}        # hint 1; then hint ${l.id} 2, ...`,
      '```',
      '',
      `The lab's documentation: ${join(REPO_ROOT, 'docs/labs.md')}`,
      '',
    ].join('\n'),
  }
}

export function registerLab(program: Command): void {
  const cmd = program.command('lab').description('graded labs: list, start <lab> [dir], check <lab> [dir], hint <lab> [n] (docs/labs.md)')

  cmd
    .command('list')
    .description('the labs, with their titles')
    .action(() => {
      const w = Math.max(...LABS.map((l) => l.id.length))
      for (const l of LABS) console.log(`${l.id.padEnd(w)}  ${l.title}  (${l.hints.length} hints, ${l.total} points)`)
      console.log('\nStart one with: dmalab lab start <lab> [dir]')
    })

  cmd
    .command('start')
    .description("copies the lab's skeleton (never the solution) into dir (default ./<lab>), which must not exist or be empty")
    .argument('<lab>', 'the lab (dmalab lab list)')
    .argument('[dir]', 'the folder to create (default: ./<lab>)')
    .action((id: string, dir: string | undefined) => {
      const l = lab(id)
      const to = studentDir(l, dir)
      if (existsSync(to) && (!statSync(to).isDirectory() || readdirSync(to).length > 0)) {
        throw new UsageError(`[dir]: '${dir ?? l.id}' already exists and is not an empty folder; give another folder`)
      }
      mkdirSync(to, { recursive: true })
      cpSync(join(labFolder(l.id), 'skeleton'), to, { recursive: true })
      for (const [name, text] of Object.entries(scaffoldExtras(l, relative(process.cwd(), to) || '.'))) writeFileSync(join(to, name), text)
      console.log(`Lab ${l.id}: ${l.title}\n\n${l.summary}\n`)
      console.log(`Created ${to}:`)
      for (const f of readdirSync(to).sort()) console.log(`  ${f}`)
      console.log(`\nEdit ${l.entry} (look for TODO), then: dmalab lab check ${l.id} ${relative(process.cwd(), to) || '.'}`)
    })

  cmd
    .command('check')
    .description(`grades the folder (default ./<lab>): the data right and every sanitizer check on 12 platforms; exit 0 only on a full score`)
    .argument('<lab>', 'the lab (dmalab lab list)')
    .argument('[dir]', 'the folder with your solution (default: ./<lab>)')
    .option('--seed <n>', 'the seed of every run', '1')
    .action(async (id: string, dir: string | undefined, o: { seed: string }) => {
      const l = lab(id)
      const from = studentDir(l, dir)
      if (!existsSync(from) || !statSync(from).isDirectory()) throw new UsageError(`[dir]: no such folder '${dir ?? l.id}' (create it with: dmalab lab start ${l.id} ${dir ?? ''})`)
      if (!existsSync(join(from, l.entry))) throw new UsageError(`[dir]: '${dir ?? l.id}' has no ${l.entry}, the file this lab grades`)
      const seed = Number(o.seed)
      if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`'--seed <n>' argument '${o.seed}' is invalid: a non-negative integer`)
      process.stderr.write(`grading ${l.id} in ${from} on 12 platforms...\n`)
      const g = await gradeLab(l, from, {
        seed,
        onRun: (done, total, run) => process.stderr.write(`  [${String(done).padStart(2)}/${total}] ${run.platform.name}: ${run.dataOk ? 'data right' : 'data WRONG'}, ${run.reports.length} report${run.reports.length === 1 ? '' : 's'}\n`),
      })
      console.log(formatGrade(g))
      process.exitCode = g.score === g.total ? EXIT_OK : EXIT_BUG
    })

  cmd
    .command('hint')
    .description("prints hint n of the lab (default: the first), and how many there are")
    .argument('<lab>', 'the lab (dmalab lab list)')
    .argument('[n]', 'the hint, from 1')
    .action((id: string, n: string | undefined) => {
      const l = lab(id)
      const i = n === undefined ? 1 : Number(n)
      if (!Number.isInteger(i) || i < 1 || i > l.hints.length) throw new UsageError(`[n]: hint '${n ?? ''}' is out of range: ${l.id} has hints 1 to ${l.hints.length}`)
      console.log(`Hint ${i}/${l.hints.length} for ${l.id}:\n\n${l.hints[i - 1]!}`)
      if (i < l.hints.length) console.log(`\nNext: dmalab lab hint ${l.id} ${i + 1}`)
    })
}
