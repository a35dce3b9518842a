/**
 * Kernel logging (include/linux/printk.h, include/linux/dev_printk.h): pr_* and dev_* with a
 * printf-style format (%d %i %u %x %X %o %s %c %p %pad %pM %pI4 %%, field widths with the 0 and -
 * flags; length modifiers such as l, ll, z accepted and ignored), to the system's pino logger. dev_* prefix the message with the device's
 * name, as Linux prefixes the driver and device.
 */

import type { Device } from './base/device.js'
import { current } from './sched/current.js'
import type { System } from './system.js'

type Level = 'error' | 'warn' | 'info' | 'debug'

/** A small vsprintf. */
export function kformat(fmt: string, args: readonly unknown[]): string {
  let i = 0
  return fmt.replace(/%(%|([-+ 0#]*)(\d*)(?:\.\d+)?(?:hh|h|ll|l|z|t|j)?([diuxXoscp])(ad|M|I4)?)/g, (m, all: string, flags: string | undefined, width: string | undefined, conv: string | undefined, ext: string | undefined) => {
    if (all === '%') return '%'
    const a = args[i++]
    const num = (x: unknown) => (typeof x === 'bigint' ? x : typeof x === 'number' ? x : Number(x))
    const f = flags ?? ''
    // Field width: right-aligned, zero-padded with '0', left-aligned with '-'.
    const pad = (text: string, numeric: boolean): string => {
      const w = Number(width === undefined || width === '' ? 0 : width)
      if (text.length >= w) return text
      if (f.includes('-')) return text.padEnd(w)
      return numeric && f.includes('0') ? text.padStart(w, '0') : text.padStart(w)
    }
    switch (conv) {
      case 'd':
      case 'i':
      case 'u':
        return pad(String(typeof a === 'bigint' ? a : Math.trunc(Number(a))), true)
      case 'x':
      case 'X': {
        const s = num(a).toString(16)
        const alt = f.includes('#') ? '0x' : ''
        return alt + pad(conv === 'X' ? s.toUpperCase() : s, true)
      }
      case 'o':
        return pad(num(a).toString(8), true)
      case 'c':
        return typeof a === 'number' ? String.fromCharCode(a) : String(a)
      case 'p':
        // %pM: a MAC address (6 bytes); %pI4: an IPv4 address (4 bytes); %pad: a dma_addr_t.
        if ((ext === 'M' || ext === 'I4') && a instanceof Uint8Array) {
          const bytes = Array.from(a.subarray(0, ext === 'M' ? 6 : 4))
          return ext === 'M' ? bytes.map((b) => b.toString(16).padStart(2, '0')).join(':') : bytes.join('.')
        }
        return ext === 'ad' || typeof a === 'number' || typeof a === 'bigint' ? `0x${num(a).toString(16).padStart(16, '0')}` : String(a)
      case 's':
        return pad(String(a), false)
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
