/**
 * The PCM state machine (sound/core/pcm_native.c): open and release of a substream, hw_params /
 * hw_free / sw_params, prepare, start / stop / pause / drain / drop, reset, status — what the
 * ioctls of /dev/snd/pcmC*D*[pc] do, called here by the harness's user space (user.ts) in a
 * process task, and by the position machinery (pcm_lib.ts) in atomic context.
 *
 *   OPEN --hw_params--> SETUP --prepare--> PREPARED --start--> RUNNING --drain--> DRAINING --> SETUP
 *                 ^                           ^                  |  \--stop/drop--> SETUP
 *                 +-----------hw_free---------+                  |--pause--> PAUSED --release--> RUNNING
 *                                           prepare <-- XRUN <---+ (hw_ptr/appl_ptr overrun)
 *   any open state --card disconnect--> DISCONNECTED
 *
 * Process-context steps (open, hw_params, hw_free, prepare, close) call the driver's async
 * callbacks directly; atomic steps (start, stop, pause) take the stream lock with interrupts off
 * and call `trigger` as Linux does (see state.ts's callAtomicOp).
 */

import { EAGAIN, EBUSY, EINVAL, EIO, ENODEV, ENOMEM, ENOSYS, ENXIO } from '../errno.js'
import { memset } from '../mm/memory.js'
import { wmb } from '../io.js'
import { synchronize_irq } from '../irq/manage.js'
import { jiffies, msecs_to_jiffies, wait_event_timeout } from '../sched/time.js'
import { HZ } from '../types.js'
import {
  EBADFD,
  EPIPE,
  ESTRPIPE,
  SNDRV_PCM_INFO_PAUSE,
  SNDRV_PCM_STATE_DISCONNECTED,
  SNDRV_PCM_STATE_DRAINING,
  SNDRV_PCM_STATE_OPEN,
  SNDRV_PCM_STATE_PAUSED,
  SNDRV_PCM_STATE_PREPARED,
  SNDRV_PCM_STATE_RUNNING,
  SNDRV_PCM_STATE_SETUP,
  SNDRV_PCM_STATE_SUSPENDED,
  SNDRV_PCM_STATE_XRUN,
  SNDRV_PCM_STREAM_CAPTURE,
  SNDRV_PCM_STREAM_PLAYBACK,
  SNDRV_PCM_TRIGGER_PAUSE_PUSH,
  SNDRV_PCM_TRIGGER_PAUSE_RELEASE,
  SNDRV_PCM_TRIGGER_START,
  SNDRV_PCM_TRIGGER_STOP,
  SNDRV_PCM_TSTAMP_ENABLE,
  snd_pcm_format_physical_width,
  type snd_pcm_state_t,
} from './asound.js'
import { cardFileAdd, cardFileRemove } from './core.js'
import {
  SndPcmRuntime,
  setDisconnectStop,
  snd_pcm_avail,
  snd_pcm_capture_avail,
  snd_pcm_playback_data,
  snd_pcm_playback_empty,
  snd_pcm_playback_hw_avail,
  snd_pcm_running,
  snd_pcm_stream_lock_irq,
  snd_pcm_stream_unlock_irq,
  sysOfSubstream,
  wakeSleep,
  wakeTsleep,
  type SndPcm,
  type SndPcmSubstream,
} from './pcm.js'
import { freePages, mallocPages } from './pcm_memory.js'
import { checkConfig, constraintsComplete, constraintsInit, paramsFor, type HwConfig } from './pcm_params.js'
import { __snd_pcm_xrun, snd_pcm_playback_silence, snd_pcm_update_hw_ptr, snd_pcm_update_state } from './pcm_lib.js'
import { OP_FAILED, callAtomicOp, sndLog } from './state.js'

/** `runtime->boundary`'s limit: a 32-bit kernel's LONG_MAX (see pcm_lib.ts). */
export const SND_PCM_BOUNDARY_LIMIT = 0x7fffffff

function setState(s: SndPcmSubstream, state: snd_pcm_state_t): void {
  const rt = s.runtime
  if (rt !== null && rt.status.state !== SNDRV_PCM_STATE_DISCONNECTED) rt.status.state = state
}

/** Calls ops.trigger(cmd) in atomic context; a failed call is -EIO. */
function trigger(s: SndPcmSubstream, cmd: number): number {
  const t = s.stats.triggers
  if (t.length < 1000) t.push(cmd)
  const r = callAtomicOp('trigger', () => s.ops!.trigger(s, cmd))
  if (r === OP_FAILED) return -EIO
  return typeof r === 'number' ? r : 0
}

// ---------------------------------------------------------------------- open and release

/**
 * Opens a free substream of `pcm` in direction `stream` (snd_pcm_open_substream): attaches a
 * runtime, calls the driver's `open`, applies the hardware's constraints. Resolves with the
 * substream, or a negative errno: -ENODEV (the card is gone or not registered), -EBUSY (every
 * substream is open; a blocking open would wait), the driver's error. Process context.
 */
export async function pcmOpenSubstream(pcm: SndPcm, stream: number): Promise<SndPcmSubstream | number> {
  const card = pcm.card
  if (!card.registered || card.shutdown || pcm._freed) return -ENODEV
  const pstr = pcm.streams[stream]
  if (pstr === undefined || pstr.substream_count === 0) return -ENODEV
  const s = pstr.substreams.find((x) => x.runtime === null && x.ref_count === 0)
  if (s === undefined) return -EBUSY
  if (s.ops === null) return -ENXIO
  const err = cardFileAdd(card)
  if (err < 0) return err
  const rt = new SndPcmRuntime()
  s.runtime = rt
  s.private_data = pcm.private_data
  s.ref_count = 1
  s.f_flags = 0
  pstr.substream_opened++
  s.stats.opens++
  constraintsInit(rt)
  let r: unknown
  try {
    r = await s.ops.open.call(s.ops, s)
  } catch (e) {
    // An oops in open: the file was never opened, so nothing will release it but this.
    detach(s)
    throw e
  }
  const oerr = typeof r === 'number' ? r : 0
  if (oerr < 0) {
    await pcmReleaseSubstream(s)
    return oerr
  }
  s.hw_opened = true
  const cerr = constraintsComplete(s)
  if (cerr < 0) {
    sndLog(sysOfSubstream(s), 'debug', card.devName, 'snd_pcm_hw_constraints_complete failed')
    rt._hwError = 'the hardware description (runtime->hw) leaves no configuration'
    await pcmReleaseSubstream(s)
    return cerr
  }
  return s
}

/**
 * Releases a substream (snd_pcm_release_substream): drop, hw_free if set up, the driver's
 * `close`, and the runtime. Process context.
 */
export async function pcmReleaseSubstream(s: SndPcmSubstream): Promise<void> {
  const rt = s.runtime
  if (rt === null) return
  s.ref_count = Math.max(0, s.ref_count - 1)
  if (s.ref_count > 0) return
  pcmDrop(s)
  try {
    if (s.hw_opened) {
      if (rt.status.state !== SNDRV_PCM_STATE_OPEN) await doHwFree(s)
      await s.ops!.close.call(s.ops, s)
      s.hw_opened = false
    }
  } finally {
    detach(s)
  }
}

/** snd_pcm_detach_substream: the runtime goes, the card's file count drops. */
function detach(s: SndPcmSubstream): void {
  const rt = s.runtime
  if (rt === null) return
  s.ref_count = 0
  s.hw_opened = false
  try {
    rt.private_free?.(rt)
  } finally {
    s.runtime = null
    s.pstr.substream_opened = Math.max(0, s.pstr.substream_opened - 1)
    cardFileRemove(s.pcm.card)
  }
}

// ---------------------------------------------------------------------- hw_params, hw_free, sw_params

/** `snd_pcm_sync_stop(substream, sync_irq)`: waits for the stream's interrupts after a stop. Process context. */
async function syncStop(s: SndPcmSubstream, syncIrq: boolean): Promise<void> {
  const rt = s.runtime
  if (rt === null || !rt.stop_operating) return
  rt.stop_operating = false
  const ops = s.ops!
  if (ops.sync_stop !== undefined) await ops.sync_stop.call(ops, s)
  else if (syncIrq && s.pcm.card.sync_irq > 0) await synchronize_irq(s.pcm.card.sync_irq)
}

/**
 * `snd_pcm_hw_params`: checks the configuration against the constraints (-EINVAL, with the reason
 * in `runtime._hwError`), allocates a managed buffer, calls the driver's `hw_params`, sets the
 * runtime's fields and the default sw params (start_threshold 1, stop_threshold and avail_min the
 * buffer and period sizes), clears the buffer, and goes to SETUP. From OPEN, SETUP or PREPARED.
 */
export async function pcmHwParams(s: SndPcmSubstream, cfg: HwConfig): Promise<number> {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  const st = rt.status.state
  snd_pcm_stream_unlock_irq(s)
  if (st !== SNDRV_PCM_STATE_OPEN && st !== SNDRV_PCM_STATE_SETUP && st !== SNDRV_PCM_STATE_PREPARED) return -EBADFD
  await syncStop(s, true)
  rt._hwError = checkConfig(rt, cfg)
  let err = 0
  if (rt._hwError !== null) {
    sndLog(sysOfSubstream(s), 'debug', s.pcm.card.devName, `hw_params of ${s.debugName} refused: ${rt._hwError}`)
    err = -EINVAL
  }
  const params = paramsFor(rt, cfg)
  const bufferBytes = (cfg.period_size * cfg.periods * snd_pcm_format_physical_width(cfg.format) * cfg.channels) / 8
  if (err === 0 && s.managed_buffer_alloc) {
    const r = mallocPages(s, bufferBytes)
    if (r < 0) {
      rt._hwError = `cannot allocate a buffer of ${bufferBytes} bytes (${r === -ENOMEM ? '-ENOMEM' : r})`
      err = r
    } else rt.buffer_changed = r > 0
  }
  if (err === 0 && s.ops!.hw_params !== undefined) {
    const r = await s.ops!.hw_params.call(s.ops, s, params)
    err = typeof r === 'number' ? r : 0
    if (err < 0) rt._hwError = `the driver's hw_params failed (${err})`
  }
  if (err < 0) {
    setState(s, SNDRV_PCM_STATE_OPEN)
    if (s.ops!.hw_free !== undefined) await s.ops!.hw_free.call(s.ops, s)
    if (s.managed_buffer_alloc) freePages(s)
    return err
  }
  rt.access = cfg.access
  rt.format = cfg.format
  rt.subformat = cfg.subformat
  rt.channels = cfg.channels
  rt.rate = cfg.rate
  rt.period_size = cfg.period_size
  rt.periods = cfg.periods
  rt.buffer_size = cfg.period_size * cfg.periods
  rt.info = params.info
  rt.rate_num = params.rate_num
  rt.rate_den = params.rate_den
  rt.no_period_wakeup = false
  let bits = snd_pcm_format_physical_width(rt.format)
  rt.sample_bits = bits
  bits *= rt.channels
  rt.frame_bits = bits
  let frames = 1
  while (bits % 8 !== 0) {
    bits *= 2
    frames *= 2
  }
  rt.byte_align = bits / 8
  rt.min_align = frames
  // Default sw params.
  rt.tstamp_mode = 0
  rt.period_step = 1
  rt.control.avail_min = rt.period_size
  rt.start_threshold = 1
  rt.stop_threshold = rt.buffer_size
  rt.silence_threshold = 0
  rt.silence_size = 0
  rt.boundary = rt.buffer_size
  while (rt.boundary * 2 <= SND_PCM_BOUNDARY_LIMIT - rt.buffer_size) rt.boundary *= 2
  // Clear the buffer, so no old kernel data reaches user space or the device.
  if (rt.dma_area !== 0 && s.ops!.copy === undefined) {
    memset(rt.dma_area, 0, rt.dma_bytes)
    wmb()
  }
  setState(s, SNDRV_PCM_STATE_SETUP)
  return 0
}

async function doHwFree(s: SndPcmSubstream): Promise<number> {
  await syncStop(s, true)
  let result = 0
  if (s.ops!.hw_free !== undefined) {
    const r = await s.ops!.hw_free.call(s.ops, s)
    result = typeof r === 'number' ? r : 0
  }
  if (s.managed_buffer_alloc) freePages(s)
  return result
}

/** `snd_pcm_hw_free`: from SETUP or PREPARED, back to OPEN; the driver's hw_free, the managed buffer freed. */
export async function pcmHwFree(s: SndPcmSubstream): Promise<number> {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  const st = rt.status.state
  if (st !== SNDRV_PCM_STATE_SETUP && st !== SNDRV_PCM_STATE_PREPARED) return -EBADFD
  const result = await doHwFree(s)
  setState(s, SNDRV_PCM_STATE_OPEN)
  return result
}

/** `struct snd_pcm_sw_params`: the software side's thresholds (frames). */
export interface SwParams {
  tstamp_mode?: number
  period_step?: number
  avail_min?: number
  start_threshold?: number
  stop_threshold?: number
  silence_threshold?: number
  silence_size?: number
}

/** `snd_pcm_sw_params`: 0, -EBADFD in OPEN, -EINVAL for impossible values (the checks Linux makes). */
export function pcmSwParams(s: SndPcmSubstream, p: SwParams): number {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  try {
    if (rt.status.state === SNDRV_PCM_STATE_OPEN) return -EBADFD
    const next = {
      tstamp_mode: p.tstamp_mode ?? rt.tstamp_mode,
      period_step: p.period_step ?? rt.period_step,
      avail_min: p.avail_min ?? rt.control.avail_min,
      start_threshold: p.start_threshold ?? rt.start_threshold,
      stop_threshold: p.stop_threshold ?? rt.stop_threshold,
      silence_threshold: p.silence_threshold ?? rt.silence_threshold,
      silence_size: p.silence_size ?? rt.silence_size,
    }
    if (next.tstamp_mode < 0 || next.tstamp_mode > SNDRV_PCM_TSTAMP_ENABLE) return -EINVAL
    if (next.avail_min === 0) return -EINVAL
    if (next.silence_size >= rt.boundary) {
      if (next.silence_threshold !== 0) return -EINVAL
    } else {
      if (next.silence_size > next.silence_threshold) return -EINVAL
      if (next.silence_threshold > rt.buffer_size) return -EINVAL
    }
    rt.tstamp_mode = next.tstamp_mode
    rt.period_step = next.period_step
    rt.control.avail_min = next.avail_min
    rt.start_threshold = next.start_threshold
    rt.stop_threshold = next.stop_threshold
    rt.silence_threshold = next.silence_threshold
    rt.silence_size = next.silence_size
    if (snd_pcm_running(s)) {
      if (s.stream === SNDRV_PCM_STREAM_PLAYBACK && rt.silence_size > 0) snd_pcm_playback_silence(s, -1)
      return snd_pcm_update_state(s, rt)
    }
    return 0
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

// ---------------------------------------------------------------------- start, stop, pause

/**
 * `snd_pcm_start(substream)`: PREPARED -> RUNNING (trigger START). The stream lock must be held.
 * -EBADFD if not PREPARED, -EPIPE for a playback stream with nothing queued, or trigger's error
 * (-EPIPE from trigger means an XRUN during the start).
 */
export function snd_pcm_start(s: SndPcmSubstream): number {
  const rt = s.runtime!
  if (rt.status.state !== SNDRV_PCM_STATE_PREPARED) return -EBADFD
  if (s.stream === SNDRV_PCM_STREAM_PLAYBACK && !snd_pcm_playback_data(s)) return -EPIPE
  rt.trigger_master = s
  const err = trigger(s, SNDRV_PCM_TRIGGER_START)
  if (err === -EPIPE) setState(s, SNDRV_PCM_STATE_XRUN)
  if (err < 0) {
    trigger(s, SNDRV_PCM_TRIGGER_STOP)
    rt.stop_operating = true
    rt.trigger_master = null
    return err
  }
  postStart(s, SNDRV_PCM_STATE_RUNNING)
  return 0
}

function postStart(s: SndPcmSubstream, state: snd_pcm_state_t): void {
  const rt = s.runtime!
  const sys = sysOfSubstream(s)
  rt.trigger_tstamp_ns = sys.machine.clock.now
  rt.trigger_master = null
  rt.hw_ptr_jiffies = jiffies()
  rt.hw_ptr_buffer_jiffies = Math.floor((rt.buffer_size * HZ) / rt.rate)
  setState(s, state)
  if (s.stream === SNDRV_PCM_STREAM_PLAYBACK && rt.silence_size > 0) snd_pcm_playback_silence(s, -1)
}

function doStop(s: SndPcmSubstream): void {
  if (snd_pcm_running(s)) {
    trigger(s, SNDRV_PCM_TRIGGER_STOP)
    s.runtime!.stop_operating = true
  }
}

function postStop(s: SndPcmSubstream, state: snd_pcm_state_t): void {
  const rt = s.runtime!
  if (rt.status.state !== state) {
    rt.trigger_tstamp_ns = sysOfSubstream(s).machine.clock.now
    setState(s, state)
  }
  wakeSleep(rt)
  wakeTsleep(rt)
}

/**
 * `snd_pcm_stop(substream, state)`: stops a running stream (trigger STOP) and sets `state`
 * (SETUP, XRUN, ...) in any case. The stream lock must be held. 0, or -EBADFD in OPEN.
 */
export function snd_pcm_stop(s: SndPcmSubstream, state: snd_pcm_state_t): number {
  const rt = s.runtime
  if (rt === null || rt.status.state === SNDRV_PCM_STATE_OPEN) return -EBADFD
  rt.trigger_master = s
  doStop(s)
  rt.trigger_master = null
  postStop(s, state)
  return 0
}

setDisconnectStop((s) => snd_pcm_stop(s, SNDRV_PCM_STATE_DISCONNECTED))

/** `snd_pcm_drain_done(substream)`: a drained playback stream stops and goes to SETUP. The stream lock is held. */
export function snd_pcm_drain_done(s: SndPcmSubstream): number {
  return snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
}

/** Starts the stream (the SNDRV_PCM_IOCTL_START ioctl): takes the stream lock. */
export function pcmStart(s: SndPcmSubstream): number {
  if (s.runtime === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  try {
    return snd_pcm_start(s)
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

function pause(s: SndPcmSubstream, push: boolean): number {
  const rt = s.runtime!
  if (!(rt.info & SNDRV_PCM_INFO_PAUSE)) return -ENOSYS
  if (push ? rt.status.state !== SNDRV_PCM_STATE_RUNNING : rt.status.state !== SNDRV_PCM_STATE_PAUSED) return -EBADFD
  // A large jiffies delta skips the jiffies check once after the pause.
  rt.hw_ptr_jiffies = jiffies() - HZ * 1000
  const err = trigger(s, push ? SNDRV_PCM_TRIGGER_PAUSE_PUSH : SNDRV_PCM_TRIGGER_PAUSE_RELEASE)
  if (err < 0) {
    trigger(s, push ? SNDRV_PCM_TRIGGER_PAUSE_RELEASE : SNDRV_PCM_TRIGGER_PAUSE_PUSH)
    return err
  }
  rt.trigger_tstamp_ns = sysOfSubstream(s).machine.clock.now
  if (push) {
    setState(s, SNDRV_PCM_STATE_PAUSED)
    wakeSleep(rt)
    wakeTsleep(rt)
  } else setState(s, SNDRV_PCM_STATE_RUNNING)
  return 0
}

/** `snd_pcm_pause(substream, push)` (the SNDRV_PCM_IOCTL_PAUSE ioctl): -ENOSYS without SNDRV_PCM_INFO_PAUSE. */
export function pcmPause(s: SndPcmSubstream, push: boolean): number {
  if (s.runtime === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  try {
    return pause(s, push)
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/** `snd_pcm_drop`: stops at once (SETUP), whatever was queued. -EBADFD in OPEN or DISCONNECTED. */
export function pcmDrop(s: SndPcmSubstream): number {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  if (rt.status.state === SNDRV_PCM_STATE_OPEN || rt.status.state === SNDRV_PCM_STATE_DISCONNECTED) return -EBADFD
  snd_pcm_stream_lock_irq(s)
  try {
    if (rt.status.state === SNDRV_PCM_STATE_PAUSED) pause(s, false)
    snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
    return 0
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/** `snd_pcm_xrun` (the SNDRV_PCM_IOCTL_XRUN ioctl): forces a running stream into XRUN. */
export function pcmXrun(s: SndPcmSubstream): number {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  try {
    if (rt.status.state === SNDRV_PCM_STATE_XRUN) return 0
    if (rt.status.state === SNDRV_PCM_STATE_RUNNING) {
      __snd_pcm_xrun(s)
      return 0
    }
    return -EBADFD
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

// ---------------------------------------------------------------------- prepare, reset, drain

function doReset(s: SndPcmSubstream): void {
  const rt = s.runtime!
  // snd_pcm_lib_ioctl_reset
  if (snd_pcm_running(s) && snd_pcm_update_hw_ptr(s) >= 0) rt.status.hw_ptr %= rt.buffer_size
  else {
    rt.status.hw_ptr = 0
    rt.hw_ptr_wrap = 0
  }
  rt.hw_ptr_base = 0
  rt.hw_ptr_interrupt = rt.status.hw_ptr - (rt.status.hw_ptr % rt.period_size)
  rt.silence_start = rt.status.hw_ptr
  rt.silence_filled = 0
}

/**
 * `snd_pcm_prepare`: from SETUP, PREPARED, XRUN (recovery) or PAUSED/SUSPENDED (stopped first):
 * the driver's `prepare`, then hw_ptr and appl_ptr back to the start, PREPARED. -EBADFD in OPEN or
 * DISCONNECTED, -EBUSY while running. Process context.
 */
export async function pcmPrepare(s: SndPcmSubstream): Promise<number> {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  switch (rt.status.state) {
    case SNDRV_PCM_STATE_PAUSED:
      pause(s, false)
      snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
      break
    case SNDRV_PCM_STATE_SUSPENDED:
      snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
      break
  }
  const st = rt.status.state
  snd_pcm_stream_unlock_irq(s)
  if (st === SNDRV_PCM_STATE_OPEN || st === SNDRV_PCM_STATE_DISCONNECTED) return -EBADFD
  if (snd_pcm_running(s)) return -EBUSY
  await syncStop(s, true)
  if (s.ops!.prepare !== undefined) {
    const r = await s.ops!.prepare.call(s.ops, s)
    const err = typeof r === 'number' ? r : 0
    if (err < 0) return err
  }
  snd_pcm_stream_lock_irq(s)
  try {
    if (rt.status.state === SNDRV_PCM_STATE_DISCONNECTED) return -ENODEV
    doReset(s)
    rt.control.appl_ptr = rt.status.hw_ptr
    if (s.stream === SNDRV_PCM_STREAM_PLAYBACK && rt.silence_size > 0) snd_pcm_playback_silence(s, -1)
    setState(s, SNDRV_PCM_STATE_PREPARED)
    return 0
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/** `snd_pcm_reset`: hw_ptr kept, appl_ptr set to it (the queued data is forgotten). */
export function pcmReset(s: SndPcmSubstream): number {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  snd_pcm_stream_lock_irq(s)
  try {
    const st = rt.status.state
    if (st !== SNDRV_PCM_STATE_RUNNING && st !== SNDRV_PCM_STATE_PREPARED && st !== SNDRV_PCM_STATE_PAUSED && st !== SNDRV_PCM_STATE_SUSPENDED) return -EBADFD
    doReset(s)
    rt.control.appl_ptr = rt.status.hw_ptr
    return 0
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/**
 * `snd_pcm_drain`: playback plays what is queued then stops (SETUP); a PREPARED playback stream
 * with data is started first; capture stops at once and keeps what it captured (DRAINING until it
 * is read, or SETUP). Sleeps until done, or a timeout of max(100 ms, 1.1 x the buffer's time)
 * without progress ("playback drain timeout (DMA or IRQ trouble?)", -EIO). -ENODEV if the card
 * goes away meanwhile, -EBADFD in OPEN. Process context.
 */
export async function pcmDrain(s: SndPcmSubstream, nonblock = false): Promise<number> {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  if (rt.status.state === SNDRV_PCM_STATE_OPEN) return -EBADFD
  if (nonblock) return -EAGAIN // as snd_pcm_pre_drain_init with O_NONBLOCK
  const card = s.pcm.card
  const sys = sysOfSubstream(s)
  snd_pcm_stream_lock_irq(s)
  try {
    if (rt.status.state === SNDRV_PCM_STATE_PAUSED) pause(s, false)
    // drain_init: running streams go to DRAINING.
    if (s.stream === SNDRV_PCM_STREAM_PLAYBACK) {
      switch (rt.status.state) {
        case SNDRV_PCM_STATE_PREPARED:
          if (!snd_pcm_playback_empty(s)) {
            rt.trigger_master = s
            const err = trigger(s, SNDRV_PCM_TRIGGER_START)
            if (err === 0) postStart(s, SNDRV_PCM_STATE_DRAINING)
            else rt.trigger_master = null
          } else setState(s, SNDRV_PCM_STATE_SETUP)
          break
        case SNDRV_PCM_STATE_RUNNING:
          setState(s, SNDRV_PCM_STATE_DRAINING)
          break
        case SNDRV_PCM_STATE_XRUN:
          setState(s, SNDRV_PCM_STATE_SETUP)
          break
      }
    } else if (rt.status.state === SNDRV_PCM_STATE_RUNNING) {
      const next = snd_pcm_capture_avail(rt) > 0 ? SNDRV_PCM_STATE_DRAINING : SNDRV_PCM_STATE_SETUP
      rt.trigger_master = s
      doStop(s)
      rt.trigger_master = null
      postStop(s, next)
    }
    if (s.stream === SNDRV_PCM_STREAM_CAPTURE) return 0
    // stop_threshold fixup to avoid an endless loop when stop_threshold > buffer_size.
    const savedStop = rt.stop_threshold
    if (rt.stop_threshold > rt.buffer_size) rt.stop_threshold = rt.buffer_size
    try {
      for (;;) {
        if (rt.status.state !== SNDRV_PCM_STATE_DRAINING) return 0
        const tout = rt.no_period_wakeup ? Number.POSITIVE_INFINITY : msecs_to_jiffies(Math.max(100, rt.rate ? Math.floor((rt.buffer_size * 1100) / rt.rate) : 0))
        const gen = rt._sleepGen
        snd_pcm_stream_unlock_irq(s)
        const left = await wait_event_timeout(rt.sleep, () => rt._sleepGen !== gen, tout)
        snd_pcm_stream_lock_irq(s)
        if (card.shutdown) return -ENODEV
        if (left === 0) {
          if (rt.status.state === SNDRV_PCM_STATE_SUSPENDED) return -ESTRPIPE
          const message = 'playback drain timeout (DMA or IRQ trouble?)'
          s._note(sys, message)
          sndLog(sys, 'debug', card.devName, message)
          snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
          return -EIO
        }
      }
    } finally {
      rt.stop_threshold = savedStop
    }
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

// ---------------------------------------------------------------------- status

/** `struct snd_pcm_status` (the parts the harness shows). */
export interface PcmStatusRaw {
  state: snd_pcm_state_t
  hw_ptr: number
  appl_ptr: number
  avail: number
  delay: number
  avail_max: number
  trigger_tstamp_ns: number
  tstamp_ns: number
}

/**
 * `snd_pcm_status64`: the state, the pointers (hw_ptr updated through the driver's pointer first
 * while running), avail, delay (queued frames plus the driver's runtime->delay) and avail_max
 * (reset by the read).
 */
export function pcmStatus(s: SndPcmSubstream): PcmStatusRaw {
  const rt = s.runtime!
  snd_pcm_stream_lock_irq(s)
  try {
    if (snd_pcm_running(s)) snd_pcm_update_hw_ptr(s)
    const running = snd_pcm_running(s)
    const out: PcmStatusRaw = {
      state: rt.status.state,
      hw_ptr: rt.status.hw_ptr,
      appl_ptr: rt.control.appl_ptr,
      avail: rt.status.state === SNDRV_PCM_STATE_OPEN ? 0 : snd_pcm_avail(s),
      delay: running ? (s.stream === SNDRV_PCM_STREAM_PLAYBACK ? snd_pcm_playback_hw_avail(rt) : snd_pcm_capture_avail(rt)) + rt.delay : 0,
      avail_max: rt.avail_max,
      trigger_tstamp_ns: rt.trigger_tstamp_ns,
      tstamp_ns: rt.status.tstampNs,
    }
    rt.avail_max = 0
    return out
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/** `snd_pcm_hwsync` / the avail ioctl: updates hw_ptr while running; 0 or -EPIPE / -EBADFD / -ESTRPIPE. */
export function pcmHwsync(s: SndPcmSubstream): number {
  const rt = s.runtime!
  snd_pcm_stream_lock_irq(s)
  try {
    switch (rt.status.state) {
      case SNDRV_PCM_STATE_DRAINING:
        if (s.stream === SNDRV_PCM_STREAM_CAPTURE) return -EBADFD
        return snd_pcm_update_hw_ptr(s)
      case SNDRV_PCM_STATE_RUNNING:
        return snd_pcm_update_hw_ptr(s)
      case SNDRV_PCM_STATE_PREPARED:
      case SNDRV_PCM_STATE_PAUSED:
        return 0
      case SNDRV_PCM_STATE_SUSPENDED:
        return -ESTRPIPE
      case SNDRV_PCM_STATE_XRUN:
        return -EPIPE
      default:
        return -EBADFD
    }
  } finally {
    snd_pcm_stream_unlock_irq(s)
  }
}

/** avail of the stream now (no hw_ptr update). */
export function pcmAvailNow(s: SndPcmSubstream): number {
  return s.runtime === null ? 0 : snd_pcm_avail(s)
}

