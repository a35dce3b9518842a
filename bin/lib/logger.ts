/**
 * The command line's pino logger: pretty (pino-pretty) when stderr is a terminal, JSON lines
 * otherwise; always on stderr, so stdout carries only results. Level: --log-level, else
 * $DMALAB_LOG, else the command's default. kernel/ stays free of node: modules: the logger is
 * made here and handed to boot() as its `log` option.
 */
import pino, { type Logger } from 'pino'
import pretty from 'pino-pretty'
import type { KernelLogger, LogLevel } from '../../kernel/index.js'
import { UsageError } from './errors.js'

export const LOG_LEVELS: readonly LogLevel[] = ['silent', 'fatal', 'error', 'warn', 'info', 'debug', 'trace']

/** The level to use: the flag, else $DMALAB_LOG, else the command's default. Bad values are usage errors. */
export function resolveLevel(flag: string | undefined, fallback: LogLevel): LogLevel {
  if (flag !== undefined) {
    if (!LOG_LEVELS.includes(flag as LogLevel)) throw new UsageError(`--log-level: unknown level '${flag}' (use ${LOG_LEVELS.join(', ')})`)
    return flag as LogLevel
  }
  const env = process.env['DMALAB_LOG']
  if (env !== undefined && env !== '') {
    if (!LOG_LEVELS.includes(env as LogLevel)) throw new UsageError(`DMALAB_LOG: unknown level '${env}' (use ${LOG_LEVELS.join(', ')})`)
    return env as LogLevel
  }
  return fallback
}

/** A logger on stderr: pretty when `pretty` (default: stderr is a TTY), JSON otherwise. */
export function createLogger(level: LogLevel, prettyOut: boolean = process.stderr.isTTY): Logger {
  if (prettyOut) return pino({ level }, pretty({ destination: 2, sync: true, colorize: true, singleLine: true, ignore: 'pid,hostname' }))
  return pino({ level }, pino.destination({ dest: 2, sync: true }))
}

/**
 * The logger a system gets: a child carrying the run's fields. A report reaches the log as one
 * line (`report <kind>: <message>`, with kind, site and device as fields): the command prints
 * the full KASAN-style text itself, on stdout.
 */
export function kernelLogger(parent: Logger, fields: Record<string, string | number | boolean>): KernelLogger {
  const log = parent.child(fields)
  const first = (text: string): string => {
    const lines = text.split('\n')
    return lines[0]!.startsWith('====') ? `report ${(lines[1] ?? '').replace(/^BUG: dmalab: /, '')}: ${lines[2] ?? ''}` : text
  }
  return {
    error: (obj, msg) => log.error(obj, msg),
    warn: (obj, msg) => log.warn(obj, 'kind' in obj ? first(msg) : msg),
    info: (obj, msg) => log.info(obj, msg),
    debug: (obj, msg) => log.debug(obj, msg),
  }
}
