/**
 * Kernel logging (include/linux/printk.h, include/linux/dev_printk.h): pr_* and dev_* with a
 * printf-style format (%d %i %u %x %X %o %s %c %p %pad %%, length modifiers such as l, ll, z
 * accepted and ignored), to the system's pino logger. dev_* prefix the message with the device's
 * name, as Linux prefixes the driver and device.
 */

import type { Device } from './base/device.js'
import { current } from './sched/current.js'
import type { System } from './system.js'

type Level = 'error' | 'warn' | 'info' | 'debug'

/** A small vsprintf. */
export function kformat(fmt: string, args: readonly unknown[]): string {
  let i = 0
  return fmt.replace(/%(%|[-+ 0#]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|t|j)?([diuxXoscp])(ad)?)/g, (m, all: string, conv: string | undefined, pad: string | undefined) => {
    if (all === '%') return '%'
    const a = args[i++]
    const num = (x: unknown) => (typeof x === 'bigint' ? x : typeof x === 'number' ? x : Number(x))
    switch (conv) {
      case 'd':
      case 'i':
      case 'u':
        return String(typeof a === 'bigint' ? a : Math.trunc(Number(a)))
      case 'x':
      case 'X': {
        const s = num(a).toString(16)
        const alt = all.includes('#') ? '0x' : ''
        return conv === 'X' ? alt + s.toUpperCase() : alt + s
      }
      case 'o':
        return num(a).toString(8)
      case 'c':
        return typeof a === 'number' ? String.fromCharCode(a) : String(a)
      case 'p':
        return pad === 'ad' || typeof a === 'number' || typeof a === 'bigint' ? `0x${num(a).toString(16).padStart(16, '0')}` : String(a)
      case 's':
        return String(a)
      default:
        return m
    }
  })
}

function emit(level: Level, dev: Device | null, fmt: string, args: readonly unknown[]): void {
  const t = current(dev === null ? `pr_${level}` : `dev_${level}`)
  const sys = t.sys as System
  const msg = kformat(fmt, args)
  sys.logger[level]({ dev: dev?.name, task: t.toString() }, dev === null ? msg : `${dev.name}: ${msg}`)
}

/** `dev_err(dev, fmt, ...)`. */
export function dev_err(dev: Device, fmt: string, ...args: unknown[]): void {
  emit('error', dev, fmt, args)
}
/** `dev_warn(dev, fmt, ...)`. */
export function dev_warn(dev: Device, fmt: string, ...args: unknown[]): void {
  emit('warn', dev, fmt, args)
}
/** `dev_info(dev, fmt, ...)`. */
export function dev_info(dev: Device, fmt: string, ...args: unknown[]): void {
  emit('info', dev, fmt, args)
}
/** `dev_notice(dev, fmt, ...)` (logged at info). */
export function dev_notice(dev: Device, fmt: string, ...args: unknown[]): void {
  emit('info', dev, fmt, args)
}
/** `dev_dbg(dev, fmt, ...)`. */
export function dev_dbg(dev: Device, fmt: string, ...args: unknown[]): void {
  emit('debug', dev, fmt, args)
}
/** `pr_err(fmt, ...)`. */
export function pr_err(fmt: string, ...args: unknown[]): void {
  emit('error', null, fmt, args)
}
/** `pr_warn(fmt, ...)`. */
export function pr_warn(fmt: string, ...args: unknown[]): void {
  emit('warn', null, fmt, args)
}
/** `pr_info(fmt, ...)`. */
export function pr_info(fmt: string, ...args: unknown[]): void {
  emit('info', null, fmt, args)
}
/** `pr_notice(fmt, ...)` (logged at info). */
export function pr_notice(fmt: string, ...args: unknown[]): void {
  emit('info', null, fmt, args)
}
/** `pr_debug(fmt, ...)`. */
export function pr_debug(fmt: string, ...args: unknown[]): void {
  emit('debug', null, fmt, args)
}
