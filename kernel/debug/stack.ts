/**
 * Call-site capture for reports, the stack depot of a sanitizer (lib/stackdepot.c in spirit).
 *
 * Frames inside dmalab's own kernel/ and devices/ folders, Node internals and node_modules are
 * dropped, so the first frame left is the driver (or test) line that made the call. Parsing uses
 * the V8 stack text, which carries TypeScript line numbers under tsx and vitest (source maps).
 */

export interface StackFrame {
  /** Function name as the engine reports it ('<anonymous>' when none). */
  readonly fn: string
  /** Source file, relative to the dmalab root when inside it. */
  readonly file: string
  readonly line: number
  readonly column: number
}

function dirOf(rel: string): string {
  try {
    const u = new URL(rel, import.meta.url)
    return decodeURIComponent(u.pathname)
  } catch {
    return '\u0000'
  }
}

const ROOT = dirOf('../../')
const HIDDEN = [dirOf('../'), dirOf('../../devices/')]

const FRAME_RE = /^\s*at (?:(.*?) \()?(.*?):(\d+):(\d+)\)?$/

function normalise(file: string): string {
  let f = file
  if (f.startsWith('file://')) {
    try {
      f = decodeURIComponent(new URL(f).pathname)
    } catch {
      /* keep as is */
    }
  }
  return f
}

function hidden(file: string): boolean {
  if (file.startsWith('node:') || file.includes('/node_modules/') || file === 'native') return true
  for (const h of HIDDEN) if (file.startsWith(h)) return true
  return false
}

/** Parses V8 stack text into frames outside the emulator. */
export function parseStack(text: string): StackFrame[] {
  const frames: StackFrame[] = []
  for (const raw of text.split('\n')) {
    const m = FRAME_RE.exec(raw)
    if (m === null) continue
    const file = normalise(m[2]!)
    if (hidden(file)) continue
    frames.push({
      fn: m[1] === undefined || m[1] === '' ? '<anonymous>' : m[1].replace(/^async /, ''),
      file: file.startsWith(ROOT) ? file.slice(ROOT.length) : file,
      line: Number(m[3]),
      column: Number(m[4]),
    })
  }
  return frames
}

const ErrorCtor = Error as ErrorConstructor & { stackTraceLimit?: number }

/** The caller's frames outside the emulator, innermost first (at most `depth`). */
export function captureStack(depth = 8): StackFrame[] {
  const old = ErrorCtor.stackTraceLimit
  ErrorCtor.stackTraceLimit = 40
  const e = new Error()
  ErrorCtor.stackTraceLimit = old
  return parseStack(e.stack ?? '').slice(0, depth)
}

/** `fn (file:line:col)` */
export function formatFrame(f: StackFrame): string {
  return `${f.fn} (${f.file}:${f.line}:${f.column})`
}

/** `file:line`, the site a report is keyed and matched by. */
export function siteOf(frames: readonly StackFrame[] | undefined): string | undefined {
  const f = frames?.[0]
  return f === undefined ? undefined : `${f.file}:${f.line}`
}
