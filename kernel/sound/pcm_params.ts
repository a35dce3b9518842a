/**
 * Hardware parameters and their constraints (include/sound/pcm_params.h, sound/core/pcm_lib.c's
 * snd_pcm_hw_constraint_*, pcm_native.c's snd_pcm_hw_constraints_init/complete).
 *
 * A driver describes what its hardware can do with `runtime.hw` (formats, rates, channels, buffer
 * and period byte limits, period counts) and adds constraints in `open`:
 * `snd_pcm_hw_constraint_integer(runtime, SNDRV_PCM_HW_PARAM_PERIODS)`,
 * `_minmax`, `_step`, `_pow2`, `_list`, `_single`, `_mask64`, `_msbits`, and its own rules with
 * `snd_pcm_hw_rule_add`. The PCM core adds the hardware's limits after `open`, as Linux does.
 *
 * Where alsa-lib and the kernel refine intervals until one configuration is left, the harness here
 * asks for one configuration (a format, channels, rate, period size and period count; unspecified
 * ones are chosen near a default) and the core checks it against every constraint. A
 * configuration that breaks one is refused with -EINVAL, and the reason names the parameter and
 * the constraint ("period_bytes 1000 is not a multiple of 128 (snd_pcm_hw_constraint_step)").
 * A driver's own rule runs on the fixed configuration: one that would empty an interval refuses it.
 */

import { EINVAL } from '../errno.js'
import {
  RATE_BITS,
  SNDRV_PCM_ACCESS_MMAP_COMPLEX,
  SNDRV_PCM_ACCESS_MMAP_INTERLEAVED,
  SNDRV_PCM_ACCESS_MMAP_NONINTERLEAVED,
  SNDRV_PCM_ACCESS_RW_INTERLEAVED,
  SNDRV_PCM_ACCESS_RW_NONINTERLEAVED,
  SNDRV_PCM_HW_PARAM_ACCESS,
  SNDRV_PCM_HW_PARAM_BUFFER_BYTES,
  SNDRV_PCM_HW_PARAM_BUFFER_SIZE,
  SNDRV_PCM_HW_PARAM_BUFFER_TIME,
  SNDRV_PCM_HW_PARAM_CHANNELS,
  SNDRV_PCM_HW_PARAM_FIRST_INTERVAL,
  SNDRV_PCM_HW_PARAM_FORMAT,
  SNDRV_PCM_HW_PARAM_FRAME_BITS,
  SNDRV_PCM_HW_PARAM_LAST_INTERVAL,
  SNDRV_PCM_HW_PARAM_PERIODS,
  SNDRV_PCM_HW_PARAM_PERIOD_BYTES,
  SNDRV_PCM_HW_PARAM_PERIOD_SIZE,
  SNDRV_PCM_HW_PARAM_PERIOD_TIME,
  SNDRV_PCM_HW_PARAM_RATE,
  SNDRV_PCM_HW_PARAM_SAMPLE_BITS,
  SNDRV_PCM_HW_PARAM_SUBFORMAT,
  SNDRV_PCM_HW_PARAM_TICK_TIME,
  SNDRV_PCM_INFO_COMPLEX,
  SNDRV_PCM_INFO_INTERLEAVED,
  SNDRV_PCM_INFO_MMAP,
  SNDRV_PCM_INFO_NONINTERLEAVED,
  SNDRV_PCM_RATE_CONTINUOUS,
  SNDRV_PCM_RATE_KNOT,
  pcm_format_to_bits,
  snd_pcm_format_name,
  snd_pcm_format_physical_width,
  snd_pcm_format_width,
  snd_pcm_formats,
  snd_pcm_hw_param_name,
  type snd_pcm_format_t,
} from './asound.js'
import { SndPcmRuntime, type SndPcmSubstream } from './pcm.js'
import { sndBadArg, sndCall } from './state.js'

/** `struct snd_interval`. */
export interface SndInterval {
  min: number
  max: number
  openmin: boolean
  openmax: boolean
  integer: boolean
  empty: boolean
}

/** An interval that holds anything (snd_interval_any). */
export function snd_interval_any(): SndInterval {
  return { min: 0, max: Number.MAX_SAFE_INTEGER, openmin: false, openmax: false, integer: false, empty: false }
}

/** An interval of one value. */
export function snd_interval_single_value(v: number): SndInterval {
  return { min: v, max: v, openmin: false, openmax: false, integer: Number.isInteger(v), empty: false }
}

/** `snd_interval_checkempty`. */
function checkEmpty(i: SndInterval): boolean {
  return i.min > i.max || (i.min === i.max && (i.openmin || i.openmax))
}

/**
 * `snd_interval_refine(i, v)`: narrows i to its intersection with v. Returns 1 if i changed, 0 if
 * not, -EINVAL if the intersection is empty (i is then marked empty).
 */
export function snd_interval_refine(i: SndInterval, v: SndInterval): number {
  if (i.empty) return -EINVAL
  let changed = 0
  if (i.min < v.min) {
    i.min = v.min
    i.openmin = v.openmin
    changed = 1
  } else if (i.min === v.min && !i.openmin && v.openmin) {
    i.openmin = true
    changed = 1
  }
  if (i.max > v.max) {
    i.max = v.max
    i.openmax = v.openmax
    changed = 1
  } else if (i.max === v.max && !i.openmax && v.openmax) {
    i.openmax = true
    changed = 1
  }
  if (!i.integer && v.integer) {
    i.integer = true
    changed = 1
  }
  if (i.integer) {
    if (i.openmin) {
      i.min++
      i.openmin = false
    }
    if (i.openmax) {
      i.max--
      i.openmax = false
    }
    if (!Number.isInteger(i.min)) i.min = Math.ceil(i.min)
    if (!Number.isInteger(i.max)) i.max = Math.floor(i.max)
  } else if (!i.openmin && !i.openmax && i.min === i.max) i.integer = Number.isInteger(i.min)
  if (checkEmpty(i)) {
    i.empty = true
    return -EINVAL
  }
  return changed
}

/** `snd_interval_list(i, count, list, mask)`: narrows i to the values of list (masked) it holds. */
export function snd_interval_list(i: SndInterval, count: number, list: readonly number[], mask: number): number {
  let min = Number.POSITIVE_INFINITY
  let max = Number.NEGATIVE_INFINITY
  let inside = false
  for (let k = 0; k < count && k < list.length; k++) {
    if (mask !== 0 && !(mask & (1 << k))) continue
    const x = list[k]!
    if (!inInterval(i, x)) continue
    inside = true
    min = Math.min(min, x)
    max = Math.max(max, x)
  }
  if (!inside) {
    i.empty = true
    return -EINVAL
  }
  return snd_interval_refine(i, { min, max, openmin: false, openmax: false, integer: true, empty: false })
}

function inInterval(i: SndInterval, x: number): boolean {
  if (i.empty) return false
  if (x < i.min || (x === i.min && i.openmin)) return false
  if (x > i.max || (x === i.max && i.openmax)) return false
  return !i.integer || Number.isInteger(x)
}

/** `snd_interval_value(i)`: the value of a fixed interval (its min). */
export function snd_interval_value(i: SndInterval): number {
  return i.min
}

/** `struct snd_pcm_hw_params`: one configuration, as hw_params hands it to the driver. */
export class SndPcmHwParams {
  /** The masks: ACCESS, FORMAT, SUBFORMAT (bit n set = value n allowed). */
  readonly masks: bigint[] = [0n, 0n, 0n]
  /** The intervals, SAMPLE_BITS .. TICK_TIME (index var - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL). */
  readonly intervals: SndInterval[] = []
  info = 0
  /** Significant bits of the sample (snd_pcm_hw_constraint_msbits), 0 if not set. */
  msbits = 0
  rate_num = 0
  rate_den = 0
  fifo_size = 0
  flags = 0

  constructor() {
    for (let v = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; v <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; v++) this.intervals.push(snd_interval_any())
  }
}

/** `hw_param_interval(params, var)`. */
export function hw_param_interval(params: SndPcmHwParams, v: number): SndInterval {
  return params.intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
}
/** `hw_param_interval_c(params, var)`. */
export const hw_param_interval_c = hw_param_interval

function maskMin(m: bigint): number {
  for (let i = 0; i < 64; i++) if ((m >> BigInt(i)) & 1n) return i
  return -1
}

/** `params_access(params)`. */
export function params_access(p: SndPcmHwParams): number {
  return maskMin(p.masks[SNDRV_PCM_HW_PARAM_ACCESS]!)
}
/** `params_format(params)`. */
export function params_format(p: SndPcmHwParams): snd_pcm_format_t {
  return maskMin(p.masks[SNDRV_PCM_HW_PARAM_FORMAT]!)
}
/** `params_subformat(params)`. */
export function params_subformat(p: SndPcmHwParams): number {
  return maskMin(p.masks[SNDRV_PCM_HW_PARAM_SUBFORMAT]!)
}
/** `params_channels(params)`. */
export function params_channels(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_CHANNELS).min
}
/** `params_rate(params)`. */
export function params_rate(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_RATE).min
}
/** `params_period_size(params)`, frames. */
export function params_period_size(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_PERIOD_SIZE).min
}
/** `params_period_bytes(params)`. */
export function params_period_bytes(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_PERIOD_BYTES).min
}
/** `params_periods(params)`. */
export function params_periods(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_PERIODS).min
}
/** `params_buffer_size(params)`, frames. */
export function params_buffer_size(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_BUFFER_SIZE).min
}
/** `params_buffer_bytes(params)`. */
export function params_buffer_bytes(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_BUFFER_BYTES).min
}
/** `params_width(params)`: the format's significant bits. */
export function params_width(p: SndPcmHwParams): number {
  return snd_pcm_format_width(params_format(p))
}
/** `params_physical_width(params)`: the format's bits in memory. */
export function params_physical_width(p: SndPcmHwParams): number {
  return snd_pcm_format_physical_width(params_format(p))
}
/** `params_period_time(params)`, µs. */
export function params_period_time(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_PERIOD_TIME).min
}
/** `params_buffer_time(params)`, µs. */
export function params_buffer_time(p: SndPcmHwParams): number {
  return hw_param_interval(p, SNDRV_PCM_HW_PARAM_BUFFER_TIME).min
}

// ---------------------------------------------------------------------- constraints

/** `struct snd_pcm_hw_rule`: a driver's rule. */
export interface SndPcmHwRule {
  cond: number
  var: number
  func: (params: SndPcmHwParams, rule: SndPcmHwRule) => number
  private: unknown
  deps: readonly number[]
}

interface CheckRule {
  /** The variable checked. */
  readonly var: number
  /** Who added it ('snd_pcm_hw_constraint_step'). */
  readonly what: string
  /** null if value is acceptable, else what is wrong with it. */
  check(value: number): string | null
}

/** `struct snd_pcm_hw_constraints`: what a runtime's configuration must satisfy. */
export interface HwConstraints {
  /** Allowed ACCESS, FORMAT, SUBFORMAT values (bit masks). */
  masks: bigint[]
  /** One interval per variable (SAMPLE_BITS .. TICK_TIME), as the minmax/integer constraints left it. */
  intervals: SndInterval[]
  /** Who narrowed each interval or mask last, for the messages. */
  by: Map<number, string>
  /** Step, pow2, list and range rules. */
  checks: CheckRule[]
  /** The driver's own rules (snd_pcm_hw_rule_add). */
  rules: SndPcmHwRule[]
  /** msbits per sample width (snd_pcm_hw_constraint_msbits). */
  msbits: { width: number; msbits: number }[]
}

/** @internal snd_pcm_hw_constraints_init: everything allowed; integer counts. */
export function constraintsInit(rt: SndPcmRuntime): void {
  const intervals: SndInterval[] = []
  for (let v = SNDRV_PCM_HW_PARAM_FIRST_INTERVAL; v <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL; v++) intervals.push(snd_interval_any())
  for (const v of [SNDRV_PCM_HW_PARAM_CHANNELS, SNDRV_PCM_HW_PARAM_BUFFER_SIZE, SNDRV_PCM_HW_PARAM_BUFFER_BYTES, SNDRV_PCM_HW_PARAM_SAMPLE_BITS, SNDRV_PCM_HW_PARAM_FRAME_BITS]) {
    intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!.integer = true
  }
  rt.hw_constraints = { masks: [0xffffffffffffffffn, 0xffffffffffffffffn, 0xffffffffffffffffn], intervals, by: new Map(), checks: [], rules: [], msbits: [] }
}

function isInterval(v: number): boolean {
  return v >= SNDRV_PCM_HW_PARAM_FIRST_INTERVAL && v <= SNDRV_PCM_HW_PARAM_LAST_INTERVAL
}

function isMask(v: number): boolean {
  return v >= SNDRV_PCM_HW_PARAM_ACCESS && v <= SNDRV_PCM_HW_PARAM_SUBFORMAT
}

function constraintCall(fn: string, runtime: unknown, v: unknown, kind: 'interval' | 'mask' | 'any'): { rt: SndPcmRuntime; v: number } {
  const { t } = sndCall(fn)
  if (!(runtime instanceof SndPcmRuntime)) sndBadArg(t, fn, 'runtime', 'must be substream.runtime (call it in the open callback)')
  if (typeof v !== 'number' || (kind === 'interval' && !isInterval(v)) || (kind === 'mask' && !isMask(v)) || (kind === 'any' && !isInterval(v) && !isMask(v))) {
    sndBadArg(t, fn, 'var', `must be a SNDRV_PCM_HW_PARAM_* ${kind === 'any' ? '' : kind + ' '}variable, got ${String(v)}`)
  }
  if (runtime.hw_constraints === undefined) constraintsInit(runtime)
  return { rt: runtime, v }
}

function refineVar(rt: SndPcmRuntime, v: number, by: SndInterval, what: string): number {
  const i = rt.hw_constraints.intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
  const before = { min: i.min, max: i.max }
  const r = snd_interval_refine(i, by)
  // The messages name who set the bounds (an integer flag alone does not count).
  if (r < 0 || i.min !== before.min || i.max !== before.max || !rt.hw_constraints.by.has(v)) rt.hw_constraints.by.set(v, what)
  return r < 0 ? r : 0
}

/** `snd_pcm_hw_constraint_integer(runtime, var)`: the variable takes whole values. 0 or -EINVAL. */
export function snd_pcm_hw_constraint_integer(runtime: SndPcmRuntime, v: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_integer', runtime, v, 'interval')
  return refineVar(rt, v, { ...snd_interval_any(), integer: true }, 'snd_pcm_hw_constraint_integer')
}

/** `snd_pcm_hw_constraint_minmax(runtime, var, min, max)`. 0, or -EINVAL if nothing is left. */
export function snd_pcm_hw_constraint_minmax(runtime: SndPcmRuntime, v: number, min: number, max: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_minmax', runtime, v, 'interval')
  return refineVar(rt, v, { min, max, openmin: false, openmax: false, integer: false, empty: false }, 'snd_pcm_hw_constraint_minmax')
}

/** `snd_pcm_hw_constraint_single(runtime, var, val)`: the variable is fixed to val. */
export function snd_pcm_hw_constraint_single(runtime: SndPcmRuntime, v: number, val: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_single', runtime, v, 'interval')
  return refineVar(rt, v, snd_interval_single_value(val), 'snd_pcm_hw_constraint_single')
}

/** `snd_pcm_hw_constraint_mask64(runtime, var, mask)`: only the values whose bits are set (FORMAT, ACCESS). */
export function snd_pcm_hw_constraint_mask64(runtime: SndPcmRuntime, v: number, mask: bigint): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_mask64', runtime, v, 'mask')
  const m = rt.hw_constraints.masks[v]! & BigInt.asUintN(64, mask)
  rt.hw_constraints.masks[v] = m
  rt.hw_constraints.by.set(v, 'snd_pcm_hw_constraint_mask64')
  return m === 0n ? -EINVAL : 0
}

/** `snd_pcm_hw_constraint_mask(runtime, var, mask)`: a 32-bit mask. */
export function snd_pcm_hw_constraint_mask(runtime: SndPcmRuntime, v: number, mask: number): number {
  return snd_pcm_hw_constraint_mask64(runtime, v, BigInt(mask >>> 0))
}

/** `snd_pcm_hw_constraint_step(runtime, cond, var, step)`: the variable is a multiple of step. */
export function snd_pcm_hw_constraint_step(runtime: SndPcmRuntime, _cond: number, v: number, step: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_step', runtime, v, 'interval')
  if (!(step > 0)) return -EINVAL
  rt.hw_constraints.checks.push({ var: v, what: 'snd_pcm_hw_constraint_step', check: (x) => (x % step === 0 ? null : `is not a multiple of ${step}`) })
  return 0
}

/** `snd_pcm_hw_constraint_pow2(runtime, cond, var)`: the variable is a power of two. */
export function snd_pcm_hw_constraint_pow2(runtime: SndPcmRuntime, _cond: number, v: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_pow2', runtime, v, 'interval')
  rt.hw_constraints.checks.push({ var: v, what: 'snd_pcm_hw_constraint_pow2', check: (x) => (x > 0 && Number.isInteger(x) && (x & (x - 1)) === 0 && x <= 2 ** 30 ? null : 'is not a power of two') })
  return 0
}

/** `struct snd_pcm_hw_constraint_list`. */
export interface SndPcmHwConstraintList {
  count: number
  list: readonly number[]
  mask: number
}

/** `snd_pcm_hw_constraint_list(runtime, cond, var, l)`: the variable is one of the listed values. */
export function snd_pcm_hw_constraint_list(runtime: SndPcmRuntime, _cond: number, v: number, l: SndPcmHwConstraintList): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_list', runtime, v, 'interval')
  const values = l.list.slice(0, l.count).filter((_, k) => l.mask === 0 || (l.mask & (1 << k)) !== 0)
  if (values.length === 0) return -EINVAL
  rt.hw_constraints.checks.push({ var: v, what: 'snd_pcm_hw_constraint_list', check: (x) => (values.includes(x) ? null : `is not one of ${values.join(', ')}`) })
  return 0
}

/** `struct snd_pcm_hw_constraint_ranges`. */
export interface SndPcmHwConstraintRanges {
  count: number
  ranges: readonly SndInterval[]
  mask: number
}

/** `snd_pcm_hw_constraint_ranges(runtime, cond, var, r)`: the variable lies in one of the ranges. */
export function snd_pcm_hw_constraint_ranges(runtime: SndPcmRuntime, _cond: number, v: number, r: SndPcmHwConstraintRanges): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_ranges', runtime, v, 'interval')
  const ranges = r.ranges.slice(0, r.count).filter((_, k) => r.mask === 0 || (r.mask & (1 << k)) !== 0)
  rt.hw_constraints.checks.push({ var: v, what: 'snd_pcm_hw_constraint_ranges', check: (x) => (ranges.some((g) => inInterval(g, x)) ? null : 'is in none of the ranges') })
  return 0
}

/** `snd_pcm_hw_constraint_msbits(runtime, cond, width, msbits)`: samples of `width` bits carry `msbits` significant bits. */
export function snd_pcm_hw_constraint_msbits(runtime: SndPcmRuntime, _cond: number, width: number, msbits: number): number {
  const { rt } = constraintCall('snd_pcm_hw_constraint_msbits', runtime, SNDRV_PCM_HW_PARAM_SAMPLE_BITS, 'interval')
  rt.hw_constraints.msbits.push({ width, msbits })
  return 0
}

/**
 * `snd_pcm_hw_rule_add(runtime, cond, var, func, private, ...deps)`: the driver's own rule. Here
 * it runs on each fixed configuration; a func that returns a negative errno (snd_interval_refine
 * emptied the variable's interval) refuses the configuration.
 */
export function snd_pcm_hw_rule_add(runtime: SndPcmRuntime, cond: number, v: number, func: SndPcmHwRule['func'], priv: unknown, ...deps: number[]): number {
  const { rt } = constraintCall('snd_pcm_hw_rule_add', runtime, v, 'any')
  rt.hw_constraints.rules.push({ cond, var: v, func, private: priv, deps: deps.filter((d) => d >= 0) })
  return 0
}

/**
 * `snd_pcm_limit_hw_rates(runtime)`: sets hw.rate_min / rate_max from the hw.rates bits (unless
 * the rates are continuous or a knot).
 */
export function snd_pcm_limit_hw_rates(runtime: SndPcmRuntime): number {
  sndCall('snd_pcm_limit_hw_rates')
  limitRates(runtime)
  return 0
}

function limitRates(rt: SndPcmRuntime): void {
  const hw = rt.hw
  if (hw.rates & (SNDRV_PCM_RATE_CONTINUOUS | SNDRV_PCM_RATE_KNOT)) return
  const rates = RATE_BITS.filter((_, i) => (hw.rates & (1 << i)) !== 0)
  if (rates.length === 0) return
  hw.rate_min = Math.min(...rates)
  hw.rate_max = Math.max(...rates)
}

/** @internal snd_pcm_hw_constraints_complete: the hardware's limits, after the driver's open. */
export function constraintsComplete(s: SndPcmSubstream): number {
  const rt = s.runtime!
  const hw = rt.hw
  const c = rt.hw_constraints
  let access = 0n
  if (hw.info & SNDRV_PCM_INFO_INTERLEAVED) access |= 1n << BigInt(SNDRV_PCM_ACCESS_RW_INTERLEAVED)
  if (hw.info & SNDRV_PCM_INFO_NONINTERLEAVED) access |= 1n << BigInt(SNDRV_PCM_ACCESS_RW_NONINTERLEAVED)
  if (hw.info & SNDRV_PCM_INFO_MMAP) {
    if (hw.info & SNDRV_PCM_INFO_INTERLEAVED) access |= 1n << BigInt(SNDRV_PCM_ACCESS_MMAP_INTERLEAVED)
    if (hw.info & SNDRV_PCM_INFO_NONINTERLEAVED) access |= 1n << BigInt(SNDRV_PCM_ACCESS_MMAP_NONINTERLEAVED)
    if (hw.info & SNDRV_PCM_INFO_COMPLEX) access |= 1n << BigInt(SNDRV_PCM_ACCESS_MMAP_COMPLEX)
  }
  const setMask = (v: number, m: bigint, what: string): number => {
    c.masks[v] = c.masks[v]! & m
    c.by.set(v, what)
    return c.masks[v] === 0n ? -EINVAL : 0
  }
  const minmax = (v: number, min: number, max: number, what: string) => refineVar(rt, v, { min, max, openmin: false, openmax: false, integer: false, empty: false }, what)
  let err = setMask(SNDRV_PCM_HW_PARAM_ACCESS, access, 'runtime->hw.info (INTERLEAVED / NONINTERLEAVED / MMAP)')
  if (err < 0) return err
  err = setMask(SNDRV_PCM_HW_PARAM_FORMAT, BigInt.asUintN(64, hw.formats), 'runtime->hw.formats')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_CHANNELS, hw.channels_min, hw.channels_max, 'runtime->hw.channels_min/max')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_RATE, hw.rate_min, hw.rate_max, 'runtime->hw.rate_min/max')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_PERIOD_BYTES, hw.period_bytes_min, hw.period_bytes_max, 'runtime->hw.period_bytes_min/max')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_PERIODS, hw.periods_min, hw.periods_max, 'runtime->hw.periods_min/max')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_BUFFER_BYTES, hw.period_bytes_min, hw.buffer_bytes_max, 'runtime->hw.period_bytes_min/buffer_bytes_max')
  if (err < 0) return err
  err = minmax(SNDRV_PCM_HW_PARAM_BUFFER_BYTES, 0, s.buffer_bytes_max, 'the preallocated buffer (substream->buffer_bytes_max)')
  if (err < 0) return err
  if (!(hw.rates & (SNDRV_PCM_RATE_KNOT | SNDRV_PCM_RATE_CONTINUOUS))) {
    const rates = RATE_BITS.filter((_, i) => (hw.rates & (1 << i)) !== 0)
    c.checks.push({ var: SNDRV_PCM_HW_PARAM_RATE, what: 'runtime->hw.rates', check: (x) => (rates.includes(x) ? null : `is not one of the rates the hardware lists (${rates.join(', ') || 'none'})`) })
  }
  return refineVar(rt, SNDRV_PCM_HW_PARAM_PERIOD_SIZE, { ...snd_interval_any(), integer: true }, 'snd_pcm_hw_constraints_complete')
}

// ---------------------------------------------------------------------- one configuration

/** One configuration: what user space asks hw_params for. */
export interface HwConfig {
  access: number
  format: snd_pcm_format_t
  subformat: number
  channels: number
  rate: number
  period_size: number
  periods: number
}

/** Every variable's value for a configuration. */
function derive(cfg: HwConfig): Map<number, number> {
  const sampleBits = snd_pcm_format_physical_width(cfg.format)
  const frameBits = sampleBits * cfg.channels
  const bufferSize = cfg.period_size * cfg.periods
  return new Map([
    [SNDRV_PCM_HW_PARAM_SAMPLE_BITS, sampleBits],
    [SNDRV_PCM_HW_PARAM_FRAME_BITS, frameBits],
    [SNDRV_PCM_HW_PARAM_CHANNELS, cfg.channels],
    [SNDRV_PCM_HW_PARAM_RATE, cfg.rate],
    [SNDRV_PCM_HW_PARAM_PERIOD_TIME, (cfg.period_size * 1e6) / cfg.rate],
    [SNDRV_PCM_HW_PARAM_PERIOD_SIZE, cfg.period_size],
    [SNDRV_PCM_HW_PARAM_PERIOD_BYTES, (cfg.period_size * frameBits) / 8],
    [SNDRV_PCM_HW_PARAM_PERIODS, cfg.periods],
    [SNDRV_PCM_HW_PARAM_BUFFER_TIME, (bufferSize * 1e6) / cfg.rate],
    [SNDRV_PCM_HW_PARAM_BUFFER_SIZE, bufferSize],
    [SNDRV_PCM_HW_PARAM_BUFFER_BYTES, (bufferSize * frameBits) / 8],
    [SNDRV_PCM_HW_PARAM_TICK_TIME, 0],
  ])
}

const ACCESS_NAMES = ['MMAP_INTERLEAVED', 'MMAP_NONINTERLEAVED', 'MMAP_COMPLEX', 'RW_INTERLEAVED', 'RW_NONINTERLEAVED']

function describeInterval(i: SndInterval): string {
  const lo = `${i.openmin ? '(' : '['}${i.min}`
  const hi = `${i.max >= Number.MAX_SAFE_INTEGER ? '∞' : i.max}${i.openmax ? ')' : ']'}`
  return `${lo}, ${hi}`
}

/** The params object a fixed configuration gives the driver. */
export function paramsFor(rt: SndPcmRuntime, cfg: HwConfig): SndPcmHwParams {
  const p = new SndPcmHwParams()
  p.masks[SNDRV_PCM_HW_PARAM_ACCESS] = 1n << BigInt(cfg.access)
  p.masks[SNDRV_PCM_HW_PARAM_FORMAT] = pcm_format_to_bits(cfg.format)
  p.masks[SNDRV_PCM_HW_PARAM_SUBFORMAT] = 1n << BigInt(cfg.subformat)
  for (const [v, x] of derive(cfg)) p.intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL] = snd_interval_single_value(x)
  p.info = rt.hw.info
  p.rate_num = cfg.rate
  p.rate_den = 1
  p.fifo_size = rt.hw.fifo_size
  const width = snd_pcm_format_width(cfg.format)
  const ms = rt.hw_constraints.msbits.find((m) => m.width === 0 || m.width === snd_pcm_format_physical_width(cfg.format))
  p.msbits = ms !== undefined ? Math.min(ms.msbits, width) : width
  return p
}

/**
 * Checks a configuration against the runtime's constraints: null if every one holds, else the
 * first that breaks, in words.
 */
export function checkConfig(rt: SndPcmRuntime, cfg: HwConfig): string | null {
  const c = rt.hw_constraints
  const maskCheck = (v: number, x: number, name: string): string | null => {
    if (x < 0 || x > 63 || ((c.masks[v]! >> BigInt(x)) & 1n) === 0n) {
      const allowed: string[] = []
      if (v === SNDRV_PCM_HW_PARAM_FORMAT) for (const f of snd_pcm_formats()) if ((c.masks[v]! >> BigInt(f)) & 1n) allowed.push(snd_pcm_format_name(f))
      if (v === SNDRV_PCM_HW_PARAM_ACCESS) for (let a = 0; a < ACCESS_NAMES.length; a++) if ((c.masks[v]! >> BigInt(a)) & 1n) allowed.push(ACCESS_NAMES[a]!)
      return `${snd_pcm_hw_param_name(v)} ${name} is not supported${allowed.length > 0 ? ` (supported: ${allowed.join(', ')})` : ''} (${c.by.get(v) ?? 'constraint'})`
    }
    return null
  }
  const m =
    maskCheck(SNDRV_PCM_HW_PARAM_ACCESS, cfg.access, ACCESS_NAMES[cfg.access] ?? String(cfg.access)) ??
    maskCheck(SNDRV_PCM_HW_PARAM_FORMAT, cfg.format, snd_pcm_format_name(cfg.format)) ??
    maskCheck(SNDRV_PCM_HW_PARAM_SUBFORMAT, cfg.subformat, String(cfg.subformat))
  if (m !== null) return m
  if (snd_pcm_format_physical_width(cfg.format) <= 0) return `format ${snd_pcm_format_name(cfg.format)} has no sample size`
  const values = derive(cfg)
  for (const [v, x] of values) {
    if (v === SNDRV_PCM_HW_PARAM_TICK_TIME) continue
    const i = c.intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
    if (!inInterval(i, x)) {
      const why = i.integer && !Number.isInteger(x) ? 'is not a whole number' : `is outside ${describeInterval(i)}`
      return `${snd_pcm_hw_param_name(v)} ${fmtNum(x)} ${why} (${c.by.get(v) ?? 'snd_pcm_hw_constraints_init'})`
    }
  }
  for (const r of c.checks) {
    const x = values.get(r.var)!
    const why = r.check(x)
    if (why !== null) return `${snd_pcm_hw_param_name(r.var)} ${fmtNum(x)} ${why} (${r.what})`
  }
  if (c.rules.length > 0) {
    for (const rule of c.rules) {
      const p = paramsFor(rt, cfg)
      const err = rule.func(p, rule)
      if (typeof err === 'number' && err < 0) return `${snd_pcm_hw_param_name(rule.var)} is refused by the driver's rule (snd_pcm_hw_rule_add: ${err})`
    }
  }
  return null
}

function fmtNum(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(3)
}

/** What a request may leave out; chooseConfig fills it near these defaults. */
export interface HwRequest {
  access?: number
  format?: snd_pcm_format_t
  channels?: number
  rate?: number
  period_size?: number
  periods?: number
}

function nearest(candidates: Iterable<number>, target: number, ok: (x: number) => boolean): number | null {
  let best: number | null = null
  for (const x of candidates) {
    if (!ok(x)) continue
    if (best === null || Math.abs(x - target) < Math.abs(best - target) || (Math.abs(x - target) === Math.abs(best - target) && x < best)) best = x
  }
  return best
}

function* around(target: number, lo: number, hi: number, cap: number): Generator<number> {
  // target, then outward: target+1, target-1, ... within [lo, hi], at most cap values.
  lo = Math.max(lo, 1)
  if (hi < lo) return
  const t = Math.min(Math.max(Math.round(target), lo), hi)
  yield t
  let n = 1
  for (let d = 1; (t - d >= lo || t + d <= hi) && n < cap; d++) {
    if (t + d <= hi) {
      yield t + d
      n++
    }
    if (t - d >= lo) {
      yield t - d
      n++
    }
  }
}

/**
 * Completes a request into one configuration the constraints accept, choosing what it leaves out
 * near alsa-lib-like defaults (S16_LE, 2 channels, 48000 Hz, 4 periods of about 20 ms), and checks
 * it. Returns the configuration, or the reason it cannot be met.
 */
export function chooseConfig(rt: SndPcmRuntime, req: HwRequest): { cfg: HwConfig } | { error: string } {
  const c = rt.hw_constraints
  const iv = (v: number) => c.intervals[v - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
  const access = req.access ?? SNDRV_PCM_ACCESS_RW_INTERLEAVED
  let format = req.format
  if (format === undefined) {
    const fm = c.masks[SNDRV_PCM_HW_PARAM_FORMAT]!
    const allowed = snd_pcm_formats().filter((f) => ((fm >> BigInt(f)) & 1n) !== 0n && snd_pcm_format_physical_width(f) > 0)
    format = allowed.includes(2) ? 2 : (allowed[0] ?? 2)
  }
  const chIv = iv(SNDRV_PCM_HW_PARAM_CHANNELS)
  const channels = req.channels ?? Math.min(Math.max(2, Math.ceil(chIv.min)), Math.max(1, Math.floor(Math.min(chIv.max, 64))))
  let rate = req.rate
  if (rate === undefined) {
    const rIv = iv(SNDRV_PCM_HW_PARAM_RATE)
    const lo = Math.max(1, Math.ceil(rIv.min))
    const hi = Math.floor(Math.min(rIv.max, 768000))
    const candidates = [...RATE_BITS, lo, hi].filter((r) => r >= lo && r <= hi)
    rate = nearest(candidates, 48000, (r) => c.checks.every((k) => k.var !== SNDRV_PCM_HW_PARAM_RATE || k.check(r) === null)) ?? 48000
  }
  const base = { access, format, subformat: 0, channels, rate }
  const fits = (period_size: number, periods: number) => checkConfig(rt, { ...base, period_size, periods }) === null
  let periods = req.periods
  let period_size = req.period_size
  if (periods === undefined) {
    const pIv = iv(SNDRV_PCM_HW_PARAM_PERIODS)
    const lo = Math.max(1, Math.ceil(pIv.min))
    const hi = Math.min(Math.floor(pIv.max), 1024)
    const target = 4
    const order = [...around(target, lo, hi, 8)]
    if (period_size !== undefined) periods = order.find((n) => fits(period_size!, n)) ?? target
    else {
      // Find the periods value near 4 for which some period size fits.
      for (const n of order) {
        const ps = choosePeriodSize(rt, base, n, fits)
        if (ps !== null) {
          periods = n
          period_size = ps
          break
        }
      }
      periods ??= target
    }
  }
  period_size ??= choosePeriodSize(rt, base, periods, fits) ?? Math.max(1, Math.round(rate / 50))
  const cfg: HwConfig = { ...base, period_size, periods }
  const err = checkConfig(rt, cfg)
  return err === null ? { cfg } : { error: err }
}

function choosePeriodSize(rt: SndPcmRuntime, base: Omit<HwConfig, 'period_size' | 'periods'>, periods: number, fits: (ps: number, n: number) => boolean): number | null {
  const c = rt.hw_constraints
  const frameBytes = (snd_pcm_format_physical_width(base.format) * base.channels) / 8
  if (!(frameBytes > 0)) return null
  const pb = c.intervals[SNDRV_PCM_HW_PARAM_PERIOD_BYTES - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
  const bb = c.intervals[SNDRV_PCM_HW_PARAM_BUFFER_BYTES - SNDRV_PCM_HW_PARAM_FIRST_INTERVAL]!
  const hi = Math.floor(Math.min(pb.max, bb.max / periods, 1 << 22) / frameBytes)
  const lo = Math.ceil(pb.min / frameBytes)
  if (hi < lo) return null
  const target = Math.max(1, Math.round(base.rate / 50))
  for (const ps of around(target, lo, hi, 4096)) if (fits(ps, periods)) return ps
  return null
}
