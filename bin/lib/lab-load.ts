/**
 * Loads a student's lab module from any folder. The student's files import `'dmalab'` and
 * `'dmalab/devices'`; a module resolve hook (node:module register) resolves those specifiers as if
 * imported from this repository (the package's own "exports"), so the student's module and the
 * grader share one kernel instance whether the folder is inside the repository or anywhere else.
 * The hook also loads the folder's .ts files as ES modules, with or without a package.json saying
 * "type": "module" next to them.
 */
import { existsSync } from 'node:fs'
import { register } from 'node:module'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

/** The repository root (the folder of package.json "name": "dmalab"). */
export const REPO_ROOT = resolve(import.meta.dirname, '../..')

const registered = new Set<string>()

/** Installs the resolve hook for a student folder (once per folder and process). */
export function registerLabResolver(dir: string): void {
  const abs = resolve(dir)
  if (registered.has(abs)) return
  registered.add(abs)
  const root = pathToFileURL(join(REPO_ROOT, 'package.json')).href
  const folder = pathToFileURL(abs + '/').href
  const src = [
    `const ROOT = ${JSON.stringify(root)}, DIR = ${JSON.stringify(folder)};`,
    'export async function resolve(specifier, context, next) {',
    "  if (specifier === 'dmalab' || specifier.startsWith('dmalab/')) return next(specifier, { ...context, parentURL: ROOT });",
    '  const r = await next(specifier, context);',
    "  if (r.url.startsWith(DIR) && /\\.[cm]?ts$/.test(r.url) && !r.url.includes('/node_modules/')) return { ...r, format: 'module' };",
    '  return r;',
    '}',
  ].join('\n')
  register(`data:text/javascript,${encodeURIComponent(src)}`)
}

/** Imports the student's entry module from dir; its exports. Throws what the import throws. */
export async function loadLabModule(dir: string, entry: string): Promise<Readonly<Record<string, unknown>>> {
  const file = resolve(dir, entry)
  if (!existsSync(file)) throw new Error(`${file}: no such file (the lab's module is ${entry})`)
  registerLabResolver(dir)
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>
}
