/**
 * The harness's ALSA client: what `aplay`, `arecord` and an alsa-lib application do with
 * /dev/snd/pcmC*D*[pc], as an emulator API for tests.
 *
 *   const pcm = pcmUser(sys)
 *   pcm.cards()                                          // aplay -l
 *   const h = await pcm.open(0, 0, 'playback', { rate: 48000, channels: 2, format: 'S16_LE', periodFrames: 1024, periods: 4 })
 *   await pcm.write(h, bytes)                            // snd_pcm_writei: frames written, or -EPIPE after an XRUN
 *   await pcm.drain(h)                                   // snd_pcm_drain
 *   await pcm.close(h)
 *   const r = await pcm.play(0, 0, bytes, params)        // aplay: open, write period by period, recover, drain, close
 *
 * Each call runs kernel code in a process task of the system (named `aplay` for playback handles,
 * `arecord` for capture) and drives the system until it is done: the write copies the data into
 * the ring with the CPU (mem_write_bytes on runtime->dma_area, as copy_from_user does in
 * writei), sleeping on virtual time for room exactly as a blocking writei does (woken by
 * snd_pcm_period_elapsed); the read copies out with CPU loads.
 *
 * Results follow alsa-lib: `write` resolves with the frames written or a negative errno (-EPIPE
 * after an underrun, -EBADFD in a wrong state, -EIO when the hardware does not move, -EAGAIN with
 * `nonblock`, -ENODEV after the card went away); `read` with the bytes read or a negative errno;
 * `prepare`, `start`, `drop`, `drain`, `pause`, `hwParams`, `swParams`, `hwFree`, `reset`,
 * `recover` with 0 or a negative errno. `open` rejects with a PcmError (its errno and the reason).
 * Like `sys.run`, these are called from test code, never from inside a task of the system (they
 * throw a DmalabError there). Bad input — an unknown card or device, a handle that is closed or of
 * another system, bytes that are not whole frames, a wrong type, an unknown option — throws (or
 * rejects with) an InvalidArgumentError naming the argument, and changes nothing.
 */

import { DmalabError, InvalidArgumentError, KernelOops } from '../errors.js'
import { currentOrNull } from '../sched/current.js'
import type { System } from '../system.js'
import {
  EBADFD,
  EPIPE,
  ESTRPIPE,
  SNDRV_PCM_ACCESS_RW_INTERLEAVED,
  SNDRV_PCM_STATE_OPEN,
  SNDRV_PCM_STREAM_CAPTURE,
  SNDRV_PCM_STREAM_PLAYBACK,
  XRUN_DEBUG_BASIC,
  XRUN_DEBUG_JIFFIESCHECK,
  XRUN_DEBUG_STACK,
  snd_pcm_format_name,
  snd_pcm_format_physical_width,
  snd_pcm_format_valid,
  snd_pcm_format_value,
  snd_pcm_state_name,
  type PcmStateName,
  type snd_pcm_format_t,
} from './asound.js'
import type { SndCard } from './core.js'
import type { SndPcm, SndPcmSubstream, SubstreamStats } from './pcm.js'
import { snd_pcm_lib_xfer } from './pcm_lib.js'
import {
  pcmDrain,
  pcmDrop,
  pcmHwFree,
  pcmHwParams,
  pcmHwsync,
  pcmOpenSubstream,
  pcmPause,
  pcmPrepare,
  pcmReleaseSubstream,
  pcmReset,
  pcmStart,
  pcmStatus,
  pcmSwParams,
  pcmAvailNow,
  type SwParams,
} from './pcm_native.js'
import { chooseConfig, type HwRequest } from './pcm_params.js'
import { soundState } from './state.js'

/** 'playback' or 'capture'. */
export type PcmStreamName = 'playback' | 'capture'

/** What `open` and `hwParams` ask for; left-out values are chosen near S16_LE, 2 ch, 48 kHz, 4 periods of ~20 ms. */
export interface PcmParams {
  /** SNDRV_PCM_FORMAT_* or its name ('S16_LE'). */
  format?: snd_pcm_format_t | string
  rate?: number
  channels?: number
  /** Frames per period (period_size). */
  periodFrames?: number
  /** Periods in the buffer. */
  periods?: number
  /** sw params (frames): the stream starts when this much is queued (default: as alsa-lib's snd_pcm_set_params: the buffer, in whole periods, for playback; 1 for capture). */
  startThreshold?: number
  /** XRUN when avail reaches this (default: the buffer size). */
  stopThreshold?: number
  /** A writer/reader wakes when this much is available (default: a period). */
  availMin?: number
  /** Playback silence filling (see snd_pcm_playback_silence; default 0: none). */
  silenceThreshold?: number
  silenceSize?: number
}

const PARAM_KEYS = ['format', 'rate', 'channels', 'periodFrames', 'periods', 'startThreshold', 'stopThreshold', 'availMin', 'silenceThreshold', 'silenceSize'] as const
const SW_KEYS = ['startThreshold', 'stopThreshold', 'availMin', 'silenceThreshold', 'silenceSize'] as const

/** A handle's configuration after hw_params. */
export interface PcmConfig {
  format: snd_pcm_format_t
  formatName: string
  rate: number
  channels: number
  periodFrames: number
  periods: number
  bufferFrames: number
  /** Bytes per frame, period and buffer. */
  frameBytes: number
  periodBytes: number
  bufferBytes: number
  boundary: number
  startThreshold: number
  stopThreshold: number
  availMin: number
}

/** `snd_pcm_status`, as the harness shows it. */
export interface PcmStatus {
  state: PcmStateName | 'UNKNOWN'
  /** Frames the hardware has processed since prepare (wraps at `boundary`). */
  hwPtr: number
  /** Frames the application has written / read since prepare. */
  applPtr: number
  /** Frames the application may write (playback) or read (capture) now. */
  avail: number
  /** Frames between the application and the hardware (plus the driver's extra delay); 0 when not running. */
  delay: number
  /** The largest avail since the last status. */
  availMax: number
  /** XRUNs of this handle (since open). */
  xruns: number
  /** Virtual time of the last trigger (start/stop/pause) and now, ns. */
  triggerTimeNs: number
  timeNs: number
}

/** One PCM device in `cards()`. */
export interface PcmDeviceInfo {
  device: number
  id: string
  name: string
  playback: { substreams: number; open: number }
  capture: { substreams: number; open: number }
}

/** One card in `cards()` (aplay -l). */
export interface PcmCardInfo {
  number: number
  id: string
  driver: string
  shortname: string
  longname: string
  /** The parent device's name (the PCI device), or null. */
  parent: string | null
  devices: PcmDeviceInfo[]
}

/** Options of `open`. */
export interface PcmOpenOptions {
  /** O_NONBLOCK for the handle's writes, reads and drain: -EAGAIN instead of sleeping. */
  nonblock?: boolean
}

/** What `play` resolves with. */
export interface PlayResult {
  /** Frames written into the ring (all of them unless an error other than an XRUN stopped it). */
  frames: number
  /** XRUNs met (each recovered with a prepare, as aplay does). */
  xruns: number
  /** 0, or the errno that stopped the stream (-EIO, -EBADFD, -ENODEV, ...). */
  error: number
  /** Virtual time from the open to the end of the drain. */
  durationNs: number
  startNs: number
  endNs: number
  /** snd_pcm_period_elapsed calls during the run, and the pointer errors counted (see SubstreamStats). */
  periodsElapsed: number
  hwPtrErrors: Record<string, number>
  config: PcmConfig
}

/** What `record` resolves with. */
export interface RecordResult {
  /** The captured bytes (frames x frameBytes unless an error stopped it). */
  data: Uint8Array
  frames: number
  xruns: number
  error: number
  durationNs: number
  startNs: number
  endNs: number
  periodsElapsed: number
  hwPtrErrors: Record<string, number>
  config: PcmConfig
}

/** An open that failed: `errno` (negative) and the reason (a refused configuration names the constraint). */
export class PcmError extends DmalabError {
  readonly errno: number
  readonly reason: string
  constructor(fn: string, errno: number, reason: string) {
    super(`${fn}: ${reason} (${errno})`)
    this.errno = errno
    this.reason = reason
  }
}

const ERRNO_NAMES: Readonly<Record<number, string>> = { 1: 'EPERM', 5: 'EIO', 6: 'ENXIO', 11: 'EAGAIN', 12: 'ENOMEM', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL', 32: 'EPIPE', 38: 'ENOSYS', 77: 'EBADFD', 86: 'ESTRPIPE' }

function errnoName(e: number): string {
  return `-${ERRNO_NAMES[-e] ?? String(-e)}`
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return `'${v}'`
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined) return String(v)
  if (v instanceof Uint8Array) return `a Uint8Array of ${v.length} bytes`
  return Array.isArray(v) ? 'an array' : typeof v === 'function' ? 'a function' : 'an object'
}

/** An open PCM: the application's file. Get it from `pcm.open()`. */
export class PcmHandle {
  readonly card: number
  readonly device: number
  readonly stream: PcmStreamName
  /** The substream the open got (subdevice number). */
  readonly subdevice: number
  readonly nonblock: boolean
  /** Why the last hwParams (or open) was refused, if it was. */
  lastError: string | null = null
  /** @internal */
  readonly _sub: SndPcmSubstream
  /** @internal */
  readonly _user: PcmUser
  /** @internal The call in flight on this handle, if any. */
  _busy: string | null = null
  /** @internal */
  _closed = false
  /** @internal The card went away: close as soon as the handle is idle. */
  _disconnected = false

  /** @internal Use pcm.open(). */
  constructor(user: PcmUser, sub: SndPcmSubstream, stream: PcmStreamName, nonblock: boolean) {
    this._user = user
    this._sub = sub
    this.card = sub.pcm.card.number
    this.device = sub.pcm.device
    this.stream = stream
    this.subdevice = sub.number
    this.nonblock = nonblock
  }

  /** Whether the handle is closed (by close(), or by the harness after its card went away). */
  get closed(): boolean {
    return this._closed
  }

  /** The configuration after hw_params, or null before (or after hw_free). */
  get config(): PcmConfig | null {
    const rt = this._sub.runtime
    if (this._closed || rt === null || rt.status.state === SNDRV_PCM_STATE_OPEN || rt.buffer_size === 0) return null
    const frameBytes = rt.frame_bits / 8
    return {
      format: rt.format,
      formatName: snd_pcm_format_name(rt.format),
      rate: rt.rate,
      channels: rt.channels,
      periodFrames: rt.period_size,
      periods: rt.periods,
      bufferFrames: rt.buffer_size,
      frameBytes,
      periodBytes: rt.period_size * frameBytes,
      bufferBytes: rt.buffer_size * frameBytes,
      boundary: rt.boundary,
      startThreshold: rt.start_threshold,
      stopThreshold: rt.stop_threshold,
      availMin: rt.control.avail_min,
    }
  }

  /** The PCM state now, without a position update ('RUNNING', 'XRUN', ...). */
  get state(): PcmStateName | 'UNKNOWN' | 'CLOSED' {
    const rt = this._sub.runtime
    return this._closed || rt === null ? 'CLOSED' : snd_pcm_state_name(rt.status.state)
  }

  /** XRUNs since the open. */
  get xruns(): number {
    return this._closed ? 0 : (this._sub.runtime?._xruns ?? 0)
  }

  write(data: Uint8Array, opts?: { nonblock?: boolean }): Promise<number> {
    return this._user.write(this, data, opts)
  }
  read(frames: number, opts?: { nonblock?: boolean }): Promise<Uint8Array | number> {
    return this._user.read(this, frames, opts)
  }
  writeSilence(frames: number): Promise<number> {
    return this._user.writeSilence(this, frames)
  }
  hwParams(params: PcmParams): Promise<number> {
    return this._user.hwParams(this, params)
  }
  swParams(params: Pick<PcmParams, (typeof SW_KEYS)[number]>): Promise<number> {
    return this._user.swParams(this, params)
  }
  hwFree(): Promise<number> {
    return this._user.hwFree(this)
  }
  prepare(): Promise<number> {
    return this._user.prepare(this)
  }
  start(): Promise<number> {
    return this._user.start(this)
  }
  drop(): Promise<number> {
    return this._user.drop(this)
  }
  drain(): Promise<number> {
    return this._user.drain(this)
  }
  pause(enable: boolean): Promise<number> {
    return this._user.pause(this, enable)
  }
  reset(): Promise<number> {
    return this._user.reset(this)
  }
  recover(err: number): Promise<number> {
    return this._user.recover(this, err)
  }
  avail(): Promise<number> {
    return this._user.avail(this)
  }
  status(): Promise<PcmStatus> {
    return this._user.status(this)
  }
  close(): Promise<void> {
    return this._user.close(this)
  }
}

/** The ALSA user space of one system; get it with `pcmUser(sys)`. */
export class PcmUser {
  readonly #sys: System
  readonly #handles = new Set<PcmHandle>()

  /** @internal Use pcmUser(sys). */
  constructor(sys: System) {
    this.#sys = sys
    soundState(sys).onDisconnect.add((card) => {
      this.#onDisconnect(card)
    })
  }

  #guard(fn: string): void {
    if (currentOrNull()?.sys === this.#sys) {
      throw new DmalabError(`${fn}() called from inside a task: user-space calls are made from test code, not from kernel code`)
    }
  }

  #card(fn: string, card: unknown): SndCard {
    const ss = soundState(this.#sys)
    const visible = ss.visibleCards()
    let c: SndCard | undefined
    if (typeof card === 'number' && Number.isInteger(card)) c = visible.find((x) => x.number === card)
    else if (typeof card === 'string') c = visible.find((x) => x.id === card)
    else throw new InvalidArgumentError(fn, 'card', `must be a card number or id, got ${describe(card)}`)
    if (c === undefined) {
      const known = visible.map((x) => `${x.number} (${x.id})`).join(', ') || 'none'
      throw new InvalidArgumentError(fn, 'card', `${describe(card)} is not a registered card of ${this.#sys.name} (cards: ${known})`)
    }
    return c
  }

  #pcm(fn: string, card: SndCard, device: unknown): SndPcm {
    if (typeof device !== 'number' || !Number.isInteger(device) || device < 0) throw new InvalidArgumentError(fn, 'device', `must be a PCM device number, got ${describe(device)}`)
    const p = card.pcms.find((x) => x.device === device)
    if (p === undefined) throw new InvalidArgumentError(fn, 'device', `card ${card.number} (${card.id}) has no PCM device ${device} (devices: ${card.pcms.map((x) => x.device).join(', ') || 'none'})`)
    return p
  }

  #stream(fn: string, stream: unknown): number {
    if (stream === 'playback') return SNDRV_PCM_STREAM_PLAYBACK
    if (stream === 'capture') return SNDRV_PCM_STREAM_CAPTURE
    throw new InvalidArgumentError(fn, 'stream', `must be 'playback' or 'capture', got ${describe(stream)}`)
  }

  #handle(fn: string, h: unknown, allowClosed = false): PcmHandle {
    if (!(h instanceof PcmHandle)) throw new InvalidArgumentError(fn, 'handle', `must be a PcmHandle from pcm.open(), got ${describe(h)}`)
    if (h._user !== this) throw new InvalidArgumentError(fn, 'handle', 'belongs to another system')
    if (h._closed && !allowClosed) throw new InvalidArgumentError(fn, 'handle', 'is closed')
    if (h._busy !== null) throw new InvalidArgumentError(fn, 'handle', `has a ${h._busy} in progress: await it first`)
    return h
  }

  #params(fn: string, p: unknown, arg = 'params', keys: readonly string[] = PARAM_KEYS): { hw: HwRequest; sw: Partial<Record<(typeof SW_KEYS)[number], number>> } {
    if (p === undefined) p = {}
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgumentError(fn, arg, `must be an object, got ${describe(p)}`)
    const o = p as Record<string, unknown>
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw new InvalidArgumentError(fn, `${arg}.${k}`, `is not a parameter (parameters: ${keys.join(', ')})`)
    const int = (k: string, min: number, max: number): number | undefined => {
      const v = o[k]
      if (v === undefined) return undefined
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidArgumentError(fn, `${arg}.${k}`, `must be an integer from ${min} to ${max}, got ${describe(v)}`)
      return v
    }
    const hw: HwRequest = { access: SNDRV_PCM_ACCESS_RW_INTERLEAVED }
    const f = o['format']
    if (f !== undefined) {
      const n = typeof f === 'string' ? snd_pcm_format_value(f) : f
      if (!snd_pcm_format_valid(n) || snd_pcm_format_physical_width(n) <= 0) throw new InvalidArgumentError(fn, `${arg}.format`, `must be a PCM format (SNDRV_PCM_FORMAT_* or a name such as 'S16_LE'), got ${describe(f)}`)
      hw.format = n
    }
    const rate = int('rate', 1, 1_000_000)
    const channels = int('channels', 1, 256)
    const periodFrames = int('periodFrames', 1, 1 << 24)
    const periods = int('periods', 1, 1 << 16)
    if (rate !== undefined) hw.rate = rate
    if (channels !== undefined) hw.channels = channels
    if (periodFrames !== undefined) hw.period_size = periodFrames
    if (periods !== undefined) hw.periods = periods
    const sw: Partial<Record<(typeof SW_KEYS)[number], number>> = {}
    for (const k of SW_KEYS) {
      const v = int(k, 0, Number.MAX_SAFE_INTEGER)
      if (v !== undefined) sw[k] = v
    }
    return { hw, sw }
  }

  /** Runs fn as the handle's process (a task), marking it busy; a KernelOops kills the process: its file is released. */
  async #run<T>(h: PcmHandle | null, what: string, name: string, fn: () => Promise<T> | T): Promise<T> {
    if (h !== null) h._busy = what
    try {
      return await this.#sys.run(async () => {
        try {
          return await fn()
        } finally {
          if (h !== null && h._disconnected && !h._closed && currentOrNull()?.oops === null) await this.#release(h)
        }
      }, name)
    } catch (e) {
      if (e instanceof KernelOops && h !== null && !h._closed) {
        // The process died in the driver: exit() closes its files.
        h._busy = null
        await this.#sys.run(() => this.#release(h), 'exit').catch(() => undefined)
        h._closed = true
      }
      throw e
    } finally {
      if (h !== null) h._busy = null
    }
  }

  async #release(h: PcmHandle): Promise<void> {
    if (h._closed) return
    h._closed = true
    this.#handles.delete(h)
    await pcmReleaseSubstream(h._sub)
  }

  #onDisconnect(card: SndCard): void {
    for (const h of this.#handles) {
      if (h._sub.pcm.card !== card || h._closed) continue
      h._disconnected = true
      // The application sees the device vanish and closes it; a call in flight closes it when it returns.
      if (h._busy === null) this.#sys.spawnTask('pcm-exit', () => this.#release(h))
    }
  }

  #name(h: PcmHandle): string {
    return h.stream === 'playback' ? 'aplay' : 'arecord'
  }

  /** The registered cards and their PCM devices (aplay -l). */
  cards(): PcmCardInfo[] {
    this.#guard('pcm.cards')
    return soundState(this.#sys)
      .visibleCards()
      .map((c) => ({
        number: c.number,
        id: c.id,
        driver: c.driver,
        shortname: c.shortname,
        longname: c.longname,
        parent: c.dev?.name ?? null,
        devices: c.pcms.map((p) => ({
          device: p.device,
          id: p.id,
          name: p.name,
          playback: { substreams: p.streams[0].substream_count, open: p.streams[0].substream_opened },
          capture: { substreams: p.streams[1].substream_count, open: p.streams[1].substream_opened },
        })),
      }))
  }

  /** The handles open now. */
  get handles(): PcmHandle[] {
    return [...this.#handles]
  }

  /**
   * Opens PCM `device` of `card` (a number or an id) for 'playback' or 'capture', as
   * snd_pcm_open + snd_pcm_set_params do: the driver's open, then (unless params is null)
   * hw_params with the parameters given (the rest chosen near defaults), sw_params, prepare.
   * Resolves with the handle (PREPARED; OPEN with params null); rejects with a PcmError: -ENODEV,
   * -EBUSY (every substream is open), -EINVAL (a configuration the hardware refuses: the reason
   * names the parameter and the constraint), or the driver's error.
   */
  async open(card: number | string, device: number, stream: PcmStreamName, params: PcmParams | null = {}, opts: PcmOpenOptions = {}): Promise<PcmHandle> {
    this.#guard('pcm.open')
    const fn = 'pcm.open'
    const c = this.#card(fn, card)
    const pcm = this.#pcm(fn, c, device)
    const dir = this.#stream(fn, stream)
    if (pcm.streams[dir]!.substream_count === 0) throw new InvalidArgumentError(fn, 'stream', `PCM device ${device} of card ${c.number} has no ${stream} substreams`)
    const req = params === null ? null : this.#params(fn, params)
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError(fn, 'opts', `must be an object, got ${describe(opts)}`)
    for (const k of Object.keys(opts)) if (k !== 'nonblock') throw new InvalidArgumentError(fn, `opts.${k}`, 'is not an option (options: nonblock)')
    if (opts.nonblock !== undefined && typeof opts.nonblock !== 'boolean') throw new InvalidArgumentError(fn, 'opts.nonblock', `must be a boolean, got ${describe(opts.nonblock)}`)
    const name = stream === 'playback' ? 'aplay' : 'arecord'
    const out = await this.#run(null, 'open', name, async (): Promise<{ h: PcmHandle } | { errno: number; reason: string }> => {
      const s = await pcmOpenSubstream(pcm, dir)
      if (typeof s === 'number') {
        const reason = s === -16 ? `every ${stream} substream of pcmC${c.number}D${device} is open` : s === -19 ? `card ${c.number} is going away` : `the open of pcmC${c.number}D${device}${stream === 'playback' ? 'p' : 'c'} failed (${errnoName(s)})`
        return { errno: s, reason }
      }
      const h = new PcmHandle(this, s, stream, opts.nonblock === true)
      this.#handles.add(h)
      if (req === null) return { h }
      const err = await this.#setup(h, req)
      if (err < 0) {
        const reason = h.lastError ?? `setting up the stream failed (${errnoName(err)})`
        await this.#release(h)
        return { errno: err, reason }
      }
      return { h }
    })
    if ('errno' in out) throw new PcmError(fn, out.errno, out.reason)
    return out.h
  }

  /** hw_params + sw_params (alsa-lib's snd_pcm_set_params defaults) + prepare, inside a task. */
  async #setup(h: PcmHandle, req: { hw: HwRequest; sw: Partial<Record<(typeof SW_KEYS)[number], number>> }): Promise<number> {
    const err = await this.#hwParams(h, req.hw)
    if (err < 0) return err
    const rt = h._sub.runtime!
    const availMin = req.sw.availMin ?? rt.period_size
    const sw: SwParams = {
      avail_min: availMin,
      start_threshold: req.sw.startThreshold ?? (h.stream === 'playback' ? Math.floor(rt.buffer_size / availMin) * availMin : 1),
      stop_threshold: req.sw.stopThreshold ?? rt.buffer_size,
      silence_threshold: req.sw.silenceThreshold ?? 0,
      silence_size: req.sw.silenceSize ?? 0,
    }
    const e2 = pcmSwParams(h._sub, sw)
    if (e2 < 0) {
      h.lastError = `sw_params refused (${errnoName(e2)}): avail_min ${sw.avail_min}, silence_threshold ${sw.silence_threshold}, silence_size ${sw.silence_size}, buffer ${rt.buffer_size}`
      return e2
    }
    return pcmPrepare(h._sub)
  }

  async #hwParams(h: PcmHandle, req: HwRequest): Promise<number> {
    const rt = h._sub.runtime!
    const chosen = chooseConfig(rt, req)
    if ('error' in chosen) {
      h.lastError = `hw_params: ${chosen.error}`
      return -22
    }
    const err = await pcmHwParams(h._sub, chosen.cfg)
    h.lastError = err < 0 ? `hw_params: ${rt._hwError ?? `failed (${errnoName(err)})`}` : null
    return err
  }

  /** hw_params with these parameters (the rest chosen near defaults); 0 or -EINVAL (see `handle.lastError`) / -EBADFD. */
  async hwParams(handle: PcmHandle, params: PcmParams): Promise<number> {
    this.#guard('pcm.hwParams')
    const h = this.#handle('pcm.hwParams', handle)
    const { hw } = this.#params('pcm.hwParams', params, 'params', PARAM_KEYS.filter((k) => !(SW_KEYS as readonly string[]).includes(k)))
    return this.#run(h, 'hwParams', this.#name(h), () => this.#hwParams(h, hw))
  }

  /** sw_params: thresholds in frames; 0 or -EINVAL / -EBADFD. */
  async swParams(handle: PcmHandle, params: Pick<PcmParams, (typeof SW_KEYS)[number]>): Promise<number> {
    this.#guard('pcm.swParams')
    const h = this.#handle('pcm.swParams', handle)
    const { sw } = this.#params('pcm.swParams', params, 'params', SW_KEYS)
    return this.#run(h, 'swParams', this.#name(h), () =>
      pcmSwParams(h._sub, { avail_min: sw.availMin, start_threshold: sw.startThreshold, stop_threshold: sw.stopThreshold, silence_threshold: sw.silenceThreshold, silence_size: sw.silenceSize } as SwParams),
    )
  }

  /** hw_free: back to OPEN, the buffer released. */
  async hwFree(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.hwFree')
    const h = this.#handle('pcm.hwFree', handle)
    return this.#run(h, 'hwFree', this.#name(h), () => pcmHwFree(h._sub))
  }

  /** snd_pcm_prepare: PREPARED (after hw_params, after an XRUN, after drop or drain). */
  async prepare(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.prepare')
    const h = this.#handle('pcm.prepare', handle)
    return this.#run(h, 'prepare', this.#name(h), () => pcmPrepare(h._sub))
  }

  /** snd_pcm_start: explicit start (otherwise a write starts playback at startThreshold, a read starts capture). */
  async start(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.start')
    const h = this.#handle('pcm.start', handle)
    return this.#run(h, 'start', this.#name(h), () => pcmStart(h._sub))
  }

  /** snd_pcm_drop: stop now, discarding what is queued (SETUP). */
  async drop(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.drop')
    const h = this.#handle('pcm.drop', handle)
    return this.#run(h, 'drop', this.#name(h), () => pcmDrop(h._sub))
  }

  /** snd_pcm_drain: playback plays what is queued, then stops (SETUP); sleeps on virtual time until then. */
  async drain(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.drain')
    const h = this.#handle('pcm.drain', handle)
    return this.#run(h, 'drain', this.#name(h), () => pcmDrain(h._sub, h.nonblock))
  }

  /** snd_pcm_pause(enable): PAUSED / RUNNING (-ENOSYS without SNDRV_PCM_INFO_PAUSE). */
  async pause(handle: PcmHandle, enable: boolean): Promise<number> {
    this.#guard('pcm.pause')
    const h = this.#handle('pcm.pause', handle)
    if (typeof enable !== 'boolean') throw new InvalidArgumentError('pcm.pause', 'enable', `must be a boolean, got ${describe(enable)}`)
    return this.#run(h, 'pause', this.#name(h), () => pcmPause(h._sub, enable))
  }

  /** snd_pcm_reset: forget what is queued (appl_ptr = hw_ptr). */
  async reset(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.reset')
    const h = this.#handle('pcm.reset', handle)
    return this.#run(h, 'reset', this.#name(h), () => pcmReset(h._sub))
  }

  /**
   * snd_pcm_recover(err): after -EPIPE (an XRUN) prepares the stream again and resolves 0; other
   * errors are returned as they are (-ESTRPIPE: no suspend support here).
   */
  async recover(handle: PcmHandle, err: number): Promise<number> {
    this.#guard('pcm.recover')
    const h = this.#handle('pcm.recover', handle)
    if (typeof err !== 'number' || !Number.isInteger(err)) throw new InvalidArgumentError('pcm.recover', 'err', `must be a negative errno, got ${describe(err)}`)
    if (err >= 0) return 0
    if (err !== -EPIPE && err !== -ESTRPIPE) return err
    if (err === -ESTRPIPE) return err
    return this.#run(h, 'recover', this.#name(h), () => pcmPrepare(h._sub))
  }

  /** snd_pcm_avail: frames available now, after a position update (or a negative errno: -EPIPE in XRUN). */
  async avail(handle: PcmHandle): Promise<number> {
    this.#guard('pcm.avail')
    const h = this.#handle('pcm.avail', handle)
    return this.#run(h, 'avail', this.#name(h), () => {
      const err = pcmHwsync(h._sub)
      return err < 0 ? err : pcmAvailNow(h._sub)
    })
  }

  /** snd_pcm_status: state, pointers, avail, delay (hw_ptr updated through the driver's pointer while running). */
  async status(handle: PcmHandle): Promise<PcmStatus> {
    this.#guard('pcm.status')
    const h = this.#handle('pcm.status', handle)
    return this.#run(h, 'status', this.#name(h), () => {
      const st = pcmStatus(h._sub)
      return {
        state: snd_pcm_state_name(st.state),
        hwPtr: st.hw_ptr,
        applPtr: st.appl_ptr,
        avail: st.avail,
        delay: st.delay,
        availMax: st.avail_max,
        xruns: h._sub.runtime?._xruns ?? 0,
        triggerTimeNs: st.trigger_tstamp_ns,
        timeNs: this.#sys.clock,
      }
    })
  }

  #frames(fn: string, h: PcmHandle, data: unknown): number {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError(fn, 'data', `must be a Uint8Array, got ${describe(data)}`)
    const cfg = h.config
    if (cfg === null) return 0
    if (data.length % cfg.frameBytes !== 0) throw new InvalidArgumentError(fn, 'data', `is ${data.length} bytes: not a whole number of ${cfg.frameBytes}-byte frames (${cfg.channels} x ${cfg.formatName})`)
    return data.length / cfg.frameBytes
  }

  #xferOpts(fn: string, h: PcmHandle, opts: unknown): boolean {
    if (opts === undefined) return h.nonblock
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError(fn, 'opts', `must be an object, got ${describe(opts)}`)
    for (const k of Object.keys(opts)) if (k !== 'nonblock') throw new InvalidArgumentError(fn, `opts.${k}`, 'is not an option (options: nonblock)')
    const nb = (opts as { nonblock?: unknown }).nonblock
    if (nb !== undefined && typeof nb !== 'boolean') throw new InvalidArgumentError(fn, 'opts.nonblock', `must be a boolean, got ${describe(nb)}`)
    return nb ?? h.nonblock
  }

  /**
   * snd_pcm_writei: copies `data` (whole frames) into the ring, sleeping for room; starts the
   * stream at startThreshold. Resolves with the frames written (fewer if an XRUN cut it short), or
   * a negative errno if none was: -EPIPE (XRUN: recover with prepare), -EBADFD, -EIO, -EAGAIN,
   * -ENODEV.
   */
  async write(handle: PcmHandle, data: Uint8Array, opts?: { nonblock?: boolean }): Promise<number> {
    this.#guard('pcm.write')
    const h = this.#handle('pcm.write', handle)
    if (h.stream !== 'playback') throw new InvalidArgumentError('pcm.write', 'handle', 'is a capture handle: read from it')
    const frames = this.#frames('pcm.write', h, data)
    const nonblock = this.#xferOpts('pcm.write', h, opts)
    if (h.config === null) return -EBADFD
    return this.#run(h, 'write', 'aplay', () => snd_pcm_lib_xfer(h._sub, data, frames, { nonblock }))
  }

  /** Writes `frames` frames of silence (snd_pcm_writei with a NULL buffer). */
  async writeSilence(handle: PcmHandle, frames: number): Promise<number> {
    this.#guard('pcm.writeSilence')
    const h = this.#handle('pcm.writeSilence', handle)
    if (h.stream !== 'playback') throw new InvalidArgumentError('pcm.writeSilence', 'handle', 'is a capture handle')
    if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 0) throw new InvalidArgumentError('pcm.writeSilence', 'frames', `must be a non-negative integer, got ${describe(frames)}`)
    if (h.config === null) return -EBADFD
    return this.#run(h, 'write', 'aplay', () => snd_pcm_lib_xfer(h._sub, null, frames, { nonblock: h.nonblock }))
  }

  /**
   * snd_pcm_readi: reads `frames` frames, sleeping for data; starts a PREPARED capture stream.
   * Resolves with the bytes read (fewer frames if an XRUN cut it short), or a negative errno if
   * none was read.
   */
  async read(handle: PcmHandle, frames: number, opts?: { nonblock?: boolean }): Promise<Uint8Array | number> {
    this.#guard('pcm.read')
    const h = this.#handle('pcm.read', handle)
    if (h.stream !== 'capture') throw new InvalidArgumentError('pcm.read', 'handle', 'is a playback handle: write to it')
    if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 0 || frames > 1 << 26) throw new InvalidArgumentError('pcm.read', 'frames', `must be an integer from 0 to ${1 << 26}, got ${describe(frames)}`)
    const nonblock = this.#xferOpts('pcm.read', h, opts)
    const cfg = h.config
    if (cfg === null) return -77
    const buf = new Uint8Array(frames * cfg.frameBytes)
    const r = await this.#run(h, 'read', 'arecord', () => snd_pcm_lib_xfer(h._sub, buf, frames, { nonblock }))
    return r < 0 ? r : buf.subarray(0, r * cfg.frameBytes)
  }

  /** Closes the handle: drop, hw_free, the driver's close. */
  async close(handle: PcmHandle): Promise<void> {
    this.#guard('pcm.close')
    const h = this.#handle('pcm.close', handle, true)
    if (h._closed) return
    await this.#run(h, 'close', this.#name(h), () => this.#release(h))
  }

  /**
   * /proc/asound/card<N>/pcm<D><p|c>/xrun_debug: reads (and with `mask`, sets) the stream's
   * XRUN_DEBUG_* bits — BASIC (1, the default: log XRUNs and pointer errors), STACK (2),
   * JIFFIESCHECK (4: check each hw_ptr move against the jiffies that passed).
   */
  xrunDebug(card: number | string, device: number, stream: PcmStreamName, mask?: number): number {
    this.#guard('pcm.xrunDebug')
    const c = this.#card('pcm.xrunDebug', card)
    const pstr = this.#pcm('pcm.xrunDebug', c, device).streams[this.#stream('pcm.xrunDebug', stream)]!
    if (mask !== undefined) {
      if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || mask > (XRUN_DEBUG_BASIC | XRUN_DEBUG_STACK | XRUN_DEBUG_JIFFIESCHECK)) {
        throw new InvalidArgumentError('pcm.xrunDebug', 'mask', `must be a combination of XRUN_DEBUG_BASIC (1), _STACK (2) and _JIFFIESCHECK (4), got ${describe(mask)}`)
      }
      pstr.xrun_debug = mask
    }
    return pstr.xrun_debug
  }

  /** A substream's counters across its opens (XRUNs, period interrupts, pointer errors, messages); a copy. */
  stats(card: number | string, device: number, stream: PcmStreamName, subdevice = 0): SubstreamStats {
    this.#guard('pcm.stats')
    const c = this.#card('pcm.stats', card)
    const pstr = this.#pcm('pcm.stats', c, device).streams[this.#stream('pcm.stats', stream)]!
    const s = pstr.substreams[subdevice]
    if (s === undefined) throw new InvalidArgumentError('pcm.stats', 'subdevice', `must be from 0 to ${pstr.substream_count - 1}, got ${describe(subdevice)}`)
    return structuredClone(s.stats)
  }

  /**
   * aplay: opens the device, writes `data` period by period (recovering from each XRUN with a
   * prepare, as aplay does), drains, closes; all in one process task. Resolves with what happened.
   */
  async play(card: number | string, device: number, data: Uint8Array, params: PcmParams = {}): Promise<PlayResult> {
    this.#guard('pcm.play')
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('pcm.play', 'data', `must be a Uint8Array, got ${describe(data)}`)
    const startNs = this.#sys.clock
    const h = await this.open(card, device, 'playback', params)
    const cfg = h.config!
    if (data.length % cfg.frameBytes !== 0) {
      await this.close(h)
      throw new InvalidArgumentError('pcm.play', 'data', `is ${data.length} bytes: not a whole number of ${cfg.frameBytes}-byte frames (${cfg.channels} x ${cfg.formatName})`)
    }
    const before = structuredClone(h._sub.stats)
    const total = data.length / cfg.frameBytes
    const out = await this.#run(h, 'play', 'aplay', async () => {
      let done = 0
      let xruns = 0
      let error = 0
      while (done < total) {
        const n = Math.min(cfg.periodFrames, total - done)
        const r = await snd_pcm_lib_xfer(h._sub, data.subarray(done * cfg.frameBytes, (done + n) * cfg.frameBytes), n)
        if (r === -EPIPE) {
          xruns++
          const e = await pcmPrepare(h._sub)
          if (e < 0) {
            error = e
            break
          }
          continue
        }
        if (r < 0) {
          error = r
          break
        }
        done += r
      }
      if (error === 0) {
        const e = await pcmDrain(h._sub)
        if (e < 0 && e !== -EPIPE) error = e
      }
      return { done, xruns, error }
    })
    const endNs = this.#sys.clock
    const after = h._sub.stats
    await this.close(h)
    return { frames: out.done, xruns: out.xruns, error: out.error, durationNs: endNs - startNs, startNs, endNs, periodsElapsed: after.periodElapsed - before.periodElapsed, hwPtrErrors: diffCounts(after.hwPtrErrors, before.hwPtrErrors), config: cfg }
  }

  /**
   * arecord: opens the capture device, reads `frames` frames period by period (recovering from
   * each XRUN with a prepare; the frames lost in it are not in the result), drops, closes.
   */
  async record(card: number | string, device: number, frames: number, params: PcmParams = {}): Promise<RecordResult> {
    this.#guard('pcm.record')
    if (typeof frames !== 'number' || !Number.isInteger(frames) || frames < 0 || frames > 1 << 26) throw new InvalidArgumentError('pcm.record', 'frames', `must be an integer from 0 to ${1 << 26}, got ${describe(frames)}`)
    const startNs = this.#sys.clock
    const h = await this.open(card, device, 'capture', params)
    const cfg = h.config!
    const buf = new Uint8Array(frames * cfg.frameBytes)
    const before = structuredClone(h._sub.stats)
    const out = await this.#run(h, 'record', 'arecord', async () => {
      let done = 0
      let xruns = 0
      let error = 0
      while (done < frames) {
        const n = Math.min(cfg.periodFrames, frames - done)
        const r = await snd_pcm_lib_xfer(h._sub, buf.subarray(done * cfg.frameBytes, (done + n) * cfg.frameBytes), n)
        if (r === -EPIPE) {
          xruns++
          const e = await pcmPrepare(h._sub)
          if (e < 0) {
            error = e
            break
          }
          continue
        }
        if (r < 0) {
          error = r
          break
        }
        done += r
      }
      pcmDrop(h._sub)
      return { done, xruns, error }
    })
    const endNs = this.#sys.clock
    const after = h._sub.stats
    await this.close(h)
    return { data: buf.subarray(0, out.done * cfg.frameBytes), frames: out.done, xruns: out.xruns, error: out.error, durationNs: endNs - startNs, startNs, endNs, periodsElapsed: after.periodElapsed - before.periodElapsed, hwPtrErrors: diffCounts(after.hwPtrErrors, before.hwPtrErrors), config: cfg }
  }
}

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0)
    if (d > 0) out[k] = d
  }
  return out
}

const users = new WeakMap<System, PcmUser>()

/** The ALSA user space of a system (one per system: `pcmUser(sys) === pcmUser(sys)`). */
export function pcmUser(sys: System): PcmUser {
  if (sys === null || typeof sys !== 'object' || !('sched' in sys)) throw new InvalidArgumentError('pcmUser', 'sys', 'must be a System from boot()')
  let u = users.get(sys)
  if (u === undefined) {
    u = new PcmUser(sys)
    users.set(sys, u)
  }
  return u
}
