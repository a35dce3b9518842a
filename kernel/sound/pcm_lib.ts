/**
 * The PCM position machinery and data transfer (sound/core/pcm_lib.c): `snd_pcm_period_elapsed`,
 * the hardware-pointer update with its sanity checks (snd_pcm_update_hw_ptr0), XRUN detection,
 * the playback silence filler, and the read/write loop of an application (__snd_pcm_lib_xfer
 * with wait_for_avail).
 *
 * hw_ptr and appl_ptr run from 0 to `boundary` (the largest multiple of the buffer size below
 * 2^31, as on a 32-bit kernel) and wrap there; the position in the ring is `ptr % buffer_size`.
 * `snd_pcm_period_elapsed` reads the driver's `pointer`, turns it into hw_ptr, and:
 *
 * - rejects a position beyond the buffer ("invalid position: pcmC0D0p:0, pos = 4096, buffer size
 *   = 4096, period size = 1024", pos taken as 0);
 * - in an interrupt, when the position has not moved a period since the last interrupt but more
 *   than half a buffer's worth of jiffies have passed, assumes the position wrapped a whole buffer;
 * - ignores a jump of more than a buffer plus a period ("Unexpected hw_ptr");
 * - with XRUN_DEBUG_JIFFIESCHECK, moves hw_ptr by the jiffies that passed instead of a position that
 *   ran ahead of them ("hw_ptr skipping");
 * - notes a move of more than 1.5 periods ("Lost interrupts?");
 * - stops the stream in XRUN when the application is late: playback avail (room) reaches
 *   stop_threshold (the buffer ran empty), capture avail (unread frames) reaches it (full); a
 *   draining playback stream stops (SETUP) when it has played everything;
 * - wakes a writer/reader waiting for avail_min frames.
 *
 * Messages follow Linux's wording; with the stream's xrun_debug at XRUN_DEBUG_BASIC (the
 * emulator's default) they go to the kernel log as pcm_err/pr_err do, and each is counted in the
 * substream's stats, which the harness shows.
 */

import { EBADFD, EPIPE, ESTRPIPE, SNDRV_PCM_INFO_BATCH, SNDRV_PCM_POS_XRUN, SNDRV_PCM_STATE_DISCONNECTED, SNDRV_PCM_STATE_DRAINING, SNDRV_PCM_STATE_OPEN, SNDRV_PCM_STATE_PAUSED, SNDRV_PCM_STATE_PREPARED, SNDRV_PCM_STATE_RUNNING, SNDRV_PCM_STATE_SETUP, SNDRV_PCM_STATE_SUSPENDED, SNDRV_PCM_STATE_XRUN, SNDRV_PCM_STREAM_PLAYBACK, XRUN_DEBUG_BASIC, XRUN_DEBUG_JIFFIESCHECK, snd_pcm_format_silence } from './asound.js'
import { EAGAIN, EINVAL, EIO, ENODEV, ENXIO } from '../errno.js'
import { mem_read_bytes, mem_write_bytes } from '../mm/memory.js'
import { currentOrNull } from '../sched/current.js'
import { jiffies, msecs_to_jiffies, wait_event_timeout } from '../sched/time.js'
import type { System } from '../system.js'
import { HZ, ptr_add } from '../types.js'
import { wmb } from '../io.js'
import {
  checkSubstream,
  frames_to_bytes,
  snd_pcm_avail,
  snd_pcm_playback_hw_avail,
  snd_pcm_running,
  snd_pcm_stream_lock_irq,
  snd_pcm_stream_lock_irqsave,
  snd_pcm_stream_unlock_irq,
  snd_pcm_stream_unlock_irqrestore,
  sysOfSubstream,
  wakeSleep,
  wakeTsleep,
  type SndPcmRuntime,
  type SndPcmSubstream,
} from './pcm.js'
import { snd_pcm_drain_done, snd_pcm_start, snd_pcm_stop } from './pcm_native.js'
import { OP_FAILED, callAtomicOp, sndCall, sndLog } from './state.js'


function noteError(s: SndPcmSubstream, sys: System, reason: string, message: string): void {
  s.stats.hwPtrErrors[reason] = (s.stats.hwPtrErrors[reason] ?? 0) + 1
  s._note(sys, message)
}

/** hw_ptr_error(): "ALSA: PCM: [Q] Lost interrupts?: (stream=0, ...)", with xrun_debug BASIC. */
function hwPtrError(s: SndPcmSubstream, inInterrupt: boolean, reason: string, details: string): void {
  const sys = sysOfSubstream(s)
  const message = `ALSA: PCM: [${inInterrupt ? 'Q' : 'P'}] ${reason}: ${details}`
  noteError(s, sys, reason, message)
  if (s.pstr.xrun_debug & XRUN_DEBUG_BASIC) sndLog(sys, 'error', null, message, `hwptr:${s.debugName}:${reason}`)
}

/** `__snd_pcm_xrun(substream)`: stops the stream in XRUN (the stream lock held). */
export function __snd_pcm_xrun(s: SndPcmSubstream): void {
  const rt = s.runtime!
  const sys = sysOfSubstream(s)
  rt.status.tstampNs = sys.machine.clock.now
  snd_pcm_stop(s, SNDRV_PCM_STATE_XRUN)
  rt._xruns++
  s.stats.xruns++
  const message = `XRUN: ${s.debugName}`
  s._note(sys, message)
  if (s.pstr.xrun_debug & XRUN_DEBUG_BASIC) sndLog(sys, 'warn', s.pcm.card.devName, message, `xrun:${s.debugName}`)
}

/** `snd_pcm_stop_xrun(substream)`: a driver's way to stop a running stream as XRUN (takes the lock). 0. */
export function snd_pcm_stop_xrun(substream: SndPcmSubstream): number {
  const { t } = sndCall('snd_pcm_stop_xrun')
  const s = checkSubstream(t, 'snd_pcm_stop_xrun', substream)
  const flags = snd_pcm_stream_lock_irqsave(s)
  if (s.runtime !== null && snd_pcm_running(s)) __snd_pcm_xrun(s)
  snd_pcm_stream_unlock_irqrestore(s, flags)
  return 0
}

/** `snd_pcm_update_state`: XRUN / drain-done checks and wake-ups after hw_ptr moved. */
export function snd_pcm_update_state(s: SndPcmSubstream, rt: SndPcmRuntime): number {
  const avail = snd_pcm_avail(s)
  if (avail > rt.avail_max) rt.avail_max = avail
  if (rt.status.state === SNDRV_PCM_STATE_DRAINING) {
    if (avail >= rt.buffer_size) {
      snd_pcm_drain_done(s)
      return -EPIPE
    }
  } else if (avail >= rt.stop_threshold) {
    __snd_pcm_xrun(s)
    return -EPIPE
  }
  if (rt.twake) {
    if (avail >= rt.twake) wakeTsleep(rt)
  } else if (avail >= rt.control.avail_min) wakeSleep(rt)
  return 0
}

/** Calls the driver's pointer; a failed call (oops, Promise) reads as an XRUN position. */
function readPointer(s: SndPcmSubstream): number {
  s.stats.pointerCalls++
  const r = callAtomicOp('pointer', () => s.ops!.pointer(s))
  if (r === OP_FAILED) return SNDRV_PCM_POS_XRUN
  return r
}

/** `snd_pcm_update_hw_ptr0(substream, in_interrupt)`: see the file comment. The stream lock is held. */
export function snd_pcm_update_hw_ptr0(s: SndPcmSubstream, inInterrupt: boolean): number {
  const rt = s.runtime!
  const sys = sysOfSubstream(s)
  const old_hw_ptr = rt.status.hw_ptr
  const raw = readPointer(s)
  const curr_jiffies = jiffies()
  if (raw === SNDRV_PCM_POS_XRUN) {
    __snd_pcm_xrun(s)
    return -EPIPE
  }
  let pos: number
  if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0 || raw >= rt.buffer_size) {
    const shown = typeof raw === 'number' ? String(raw) : `${typeof raw} ${String(raw)}`
    const message = `invalid position: ${s.debugName}, pos = ${shown}, buffer size = ${rt.buffer_size}, period size = ${rt.period_size}`
    noteError(s, sys, 'invalid position', message)
    sndLog(sys, 'error', s.pcm.card.devName, message, `pos:${s.debugName}`)
    pos = 0
  } else pos = Math.trunc(raw)
  pos -= pos % rt.min_align
  let hw_base = rt.hw_ptr_base
  let new_hw_ptr = hw_base + pos
  let crossed_boundary = 0
  let jumped = false
  if (inInterrupt) {
    // We know one period was processed: delta = the expected next hw_ptr.
    const expected = rt.hw_ptr_interrupt + rt.period_size
    if (expected > new_hw_ptr) {
      // A double-acknowledged interrupt, or the position wrapped a whole buffer?
      const hdelta = curr_jiffies - rt.hw_ptr_jiffies
      if (hdelta > Math.floor(rt.hw_ptr_buffer_jiffies / 2) + 1) {
        hw_base += rt.buffer_size
        if (hw_base >= rt.boundary) {
          hw_base = 0
          crossed_boundary++
        }
        new_hw_ptr = hw_base + pos
        jumped = true
      }
    }
  }
  if (!jumped && new_hw_ptr < old_hw_ptr) {
    // The pointer crossed the end of the ring buffer.
    hw_base += rt.buffer_size
    if (hw_base >= rt.boundary) {
      hw_base = 0
      crossed_boundary++
    }
    new_hw_ptr = hw_base + pos
  }
  let delta = new_hw_ptr - old_hw_ptr
  if (delta < 0) delta += rt.boundary

  if (rt.no_period_wakeup) {
    // Without period interrupts, the elapsed time tells how many buffers passed.
    const jdelta = curr_jiffies - rt.hw_ptr_jiffies
    if (jdelta >= Math.floor(rt.hw_ptr_buffer_jiffies / 2)) {
      let hdelta = jdelta - Math.floor((delta * HZ) / rt.rate)
      const xrun_threshold = Math.floor(rt.hw_ptr_buffer_jiffies / 2) + 1
      while (hdelta > xrun_threshold) {
        delta += rt.buffer_size
        hw_base += rt.buffer_size
        if (hw_base >= rt.boundary) {
          hw_base = 0
          crossed_boundary++
        }
        new_hw_ptr = hw_base + pos
        hdelta -= rt.hw_ptr_buffer_jiffies
      }
    }
  } else {
    // Something must be really wrong.
    if (delta >= rt.buffer_size + rt.period_size) {
      hwPtrError(s, inInterrupt, 'Unexpected hw_ptr', `(stream=${s.stream}, pos=${pos}, new_hw_ptr=${new_hw_ptr}, old_hw_ptr=${old_hw_ptr})`)
      return 0
    }
    if (s.pstr.xrun_debug & XRUN_DEBUG_JIFFIESCHECK && !(rt.hw.info & SNDRV_PCM_INFO_BATCH) && delta >= rt.delay) {
      const hdelta = delta - rt.delay
      const jdelta = curr_jiffies - rt.hw_ptr_jiffies
      if (Math.floor((hdelta * HZ) / rt.rate) > jdelta + Math.floor(HZ / 100)) {
        // The position ran ahead of the time that passed: move hw_ptr by whole periods of jiffies.
        let periods = Math.floor(jdelta / (Math.floor((rt.period_size * HZ) / rt.rate) + Math.floor(HZ / 100)))
        const jbase = periods
        new_hw_ptr = old_hw_ptr
        while (periods > 0) {
          new_hw_ptr += rt.period_size
          if (new_hw_ptr >= rt.boundary) {
            new_hw_ptr -= rt.boundary
            crossed_boundary--
          }
          periods--
        }
        hwPtrError(
          s,
          inInterrupt,
          'hw_ptr skipping',
          `(pos=${pos}, delta=${hdelta}, period=${rt.period_size}, jdelta=${jdelta}/${Math.floor((hdelta * HZ) / rt.rate)}/${jbase}, hw_ptr=${old_hw_ptr}/${new_hw_ptr})`,
        )
        delta = 0
        hw_base = new_hw_ptr - (new_hw_ptr % rt.buffer_size)
      }
    }
    if (delta > rt.period_size + Math.floor(rt.period_size / 2)) {
      hwPtrError(s, inInterrupt, 'Lost interrupts?', `(stream=${s.stream}, delta=${delta}, new_hw_ptr=${new_hw_ptr}, old_hw_ptr=${old_hw_ptr})`)
    }
  }

  if (rt.status.hw_ptr === new_hw_ptr) {
    rt.hw_ptr_jiffies = curr_jiffies
    return 0
  }
  if (s.stream === SNDRV_PCM_STREAM_PLAYBACK && rt.silence_size > 0) snd_pcm_playback_silence(s, new_hw_ptr)
  if (inInterrupt) {
    let d = new_hw_ptr - rt.hw_ptr_interrupt
    if (d < 0) d += rt.boundary
    d -= d % rt.period_size
    rt.hw_ptr_interrupt += d
    if (rt.hw_ptr_interrupt >= rt.boundary) rt.hw_ptr_interrupt -= rt.boundary
  }
  rt.hw_ptr_base = hw_base
  rt.status.hw_ptr = new_hw_ptr
  rt.hw_ptr_jiffies = curr_jiffies
  rt.status.tstampNs = sys.machine.clock.now
  if (crossed_boundary > 0) rt.hw_ptr_wrap += rt.boundary
  return snd_pcm_update_state(s, rt)
}

/** `snd_pcm_update_hw_ptr(substream)`: a position update outside an interrupt (the stream lock held). */
export function snd_pcm_update_hw_ptr(s: SndPcmSubstream): number {
  return snd_pcm_update_hw_ptr0(s, false)
}

/**
 * `snd_pcm_period_elapsed(substream)`: the driver's interrupt handler (or timer) says at least one
 * period was processed. Takes the stream lock, updates hw_ptr through the driver's `pointer`,
 * detects XRUNs and wakes the application. Call it once even if several periods passed. Any
 * atomic context.
 */
export function snd_pcm_period_elapsed(substream: SndPcmSubstream): void {
  const { t } = sndCall('snd_pcm_period_elapsed')
  const s = checkSubstream(t, 'snd_pcm_period_elapsed', substream)
  const flags = snd_pcm_stream_lock_irqsave(s)
  try {
    snd_pcm_period_elapsed_under_stream_lock(s)
  } finally {
    if (currentOrNull()?.oops === null) snd_pcm_stream_unlock_irqrestore(s, flags)
  }
}

/** `snd_pcm_period_elapsed_under_stream_lock(substream)`: the same, with the stream lock already held. */
export function snd_pcm_period_elapsed_under_stream_lock(substream: SndPcmSubstream): void {
  const s = substream
  s.stats.periodElapsed++
  if (s.runtime === null) return
  if (!snd_pcm_running(s)) return
  s.stats.periodElapsedRunning++
  snd_pcm_update_hw_ptr0(s, true)
}

// ---------------------------------------------------------------------- silence

function fillSilence(s: SndPcmSubstream, ofsFrames: number, frames: number): void {
  const rt = s.runtime!
  const bytes = frames_to_bytes(rt, frames)
  const pattern = snd_pcm_format_silence(rt.format)
  const out = new Uint8Array(bytes)
  if (pattern.length > 0 && pattern.some((b) => b !== 0)) for (let i = 0; i < bytes; i++) out[i] = pattern[i % pattern.length]!
  mem_write_bytes(ptr_add(rt.dma_area, frames_to_bytes(rt, ofsFrames)), out)
}

/**
 * `snd_pcm_playback_silence(substream, new_hw_ptr)`: fills the part of the ring the hardware has
 * played (or, with silence_size = boundary, everything ahead of the application) with silence,
 * so that an underrun plays silence instead of old data. new_hw_ptr -1: initialisation.
 */
export function snd_pcm_playback_silence(s: SndPcmSubstream, new_hw_ptr: number): void {
  const rt = s.runtime!
  let frames: number
  if (rt.silence_size < rt.boundary) {
    const appl_ptr = rt.control.appl_ptr
    if (rt.silence_start !== appl_ptr) {
      let n = appl_ptr - rt.silence_start
      if (n < 0) n += rt.boundary
      if (n < rt.silence_filled) rt.silence_filled -= n
      else rt.silence_filled = 0
      rt.silence_start = appl_ptr
    }
    if (rt.silence_filled >= rt.buffer_size) return
    const noise_dist = snd_pcm_playback_hw_avail(rt) + rt.silence_filled
    if (noise_dist >= rt.silence_threshold) return
    frames = rt.silence_threshold - noise_dist
    if (frames > rt.silence_size) frames = rt.silence_size
  } else {
    if (new_hw_ptr < 0) {
      let avail = snd_pcm_playback_hw_avail(rt)
      if (avail > rt.buffer_size) avail = rt.buffer_size
      rt.silence_filled = avail > 0 ? avail : 0
      rt.silence_start = (rt.status.hw_ptr + rt.silence_filled) % rt.boundary
    } else {
      const ofs = rt.status.hw_ptr
      let played = new_hw_ptr - ofs
      if (played < 0) played += rt.boundary
      rt.silence_filled -= played
      if (rt.silence_filled < 0) {
        rt.silence_filled = 0
        rt.silence_start = new_hw_ptr
      } else rt.silence_start = ofs
    }
    frames = rt.buffer_size - rt.silence_filled
  }
  if (frames > rt.buffer_size || frames <= 0) return
  let ofs = rt.silence_start % rt.buffer_size
  while (frames > 0) {
    const transfer = ofs + frames > rt.buffer_size ? rt.buffer_size - ofs : frames
    fillSilence(s, ofs, transfer)
    rt.silence_filled += transfer
    frames -= transfer
    ofs = 0
  }
  dmaBufferSyncDevice()
}

/**
 * `snd_pcm_dma_buffer_sync(substream, SNDRV_DMA_SYNC_DEVICE)` after the CPU wrote the ring: the
 * core orders the data before the hardware may fetch it. (Linux relies on the time until the
 * hardware gets there and the lock and syscall boundaries between; here it is a write barrier, so
 * the hardware fetching an older part of the ring after a newer one — stale data in an underrun,
 * the tail played after a drain — is not taken for a driver's missing dma_wmb.)
 */
function dmaBufferSyncDevice(): void {
  wmb()
}

// ---------------------------------------------------------------------- the read/write loop

function accessibleState(rt: SndPcmRuntime): number {
  switch (rt.status.state) {
    case SNDRV_PCM_STATE_PREPARED:
    case SNDRV_PCM_STATE_RUNNING:
    case SNDRV_PCM_STATE_PAUSED:
      return 0
    case SNDRV_PCM_STATE_XRUN:
      return -EPIPE
    case SNDRV_PCM_STATE_SUSPENDED:
      return -ESTRPIPE
    default:
      return -EBADFD
  }
}

/** `pcm_lib_apply_appl_ptr`: moves appl_ptr and tells the driver (ops.ack). The stream lock is held. */
export function pcm_lib_apply_appl_ptr(s: SndPcmSubstream, appl_ptr: number): number {
  const rt = s.runtime!
  const old = rt.control.appl_ptr
  if (old === appl_ptr) return 0
  if (appl_ptr >= rt.boundary) return -EINVAL
  rt.control.appl_ptr = appl_ptr
  const ops = s.ops
  if (ops?.ack !== undefined) {
    const r = callAtomicOp('ack', () => ops.ack!(s))
    const ret = r === OP_FAILED ? -EIO : r
    if (ret < 0) {
      rt.control.appl_ptr = old
      return ret
    }
  }
  return 0
}

/** The wait of a blocked writer/reader, jiffies: the substream's wait_time, else max(100 ms, 1.1 x the buffer's time). */
function waitTime(s: SndPcmSubstream): number {
  const rt = s.runtime!
  if (s.wait_time > 0) return s.wait_time
  let ms = 100
  if (rt.rate) ms = Math.max(ms, Math.floor((rt.buffer_size * 1100) / rt.rate))
  return msecs_to_jiffies(ms)
}

/**
 * `wait_for_avail`: sleeps (the stream lock released) until avail reaches twake, the state changes,
 * or wait_time passes with no wake-up ("playback write timeout (DMA or IRQ trouble?)", -EIO).
 * Called with the stream lock held; returns with it held.
 */
async function waitForAvail(s: SndPcmSubstream): Promise<{ err: number; avail: number }> {
  const rt = s.runtime!
  const sys = sysOfSubstream(s)
  const isPlayback = s.stream === SNDRV_PCM_STREAM_PLAYBACK
  const wait = rt.no_period_wakeup ? Number.POSITIVE_INFINITY : waitTime(s)
  for (;;) {
    const gen = rt._tsleepGen
    const avail = snd_pcm_avail(s)
    if (avail >= rt.twake) return { err: 0, avail }
    snd_pcm_stream_unlock_irq(s)
    const left = await wait_event_timeout(rt.tsleep, () => rt._tsleepGen !== gen, wait)
    snd_pcm_stream_lock_irq(s)
    switch (rt.status.state) {
      case SNDRV_PCM_STATE_SUSPENDED:
        return { err: -ESTRPIPE, avail }
      case SNDRV_PCM_STATE_XRUN:
        return { err: -EPIPE, avail }
      case SNDRV_PCM_STATE_DRAINING:
        return isPlayback ? { err: -EPIPE, avail } : { err: 0, avail: 0 }
      case SNDRV_PCM_STATE_OPEN:
      case SNDRV_PCM_STATE_SETUP:
      case SNDRV_PCM_STATE_DISCONNECTED:
        return { err: -EBADFD, avail }
      case SNDRV_PCM_STATE_PAUSED:
        continue
    }
    if (left === 0) {
      const message = `${isPlayback ? 'playback write' : 'capture read'} timeout (DMA or IRQ trouble?)`
      s._note(sys, message)
      sndLog(sys, 'debug', s.pcm.card.devName, message)
      return { err: -EIO, avail }
    }
  }
}

/** Options of one transfer. */
export interface XferOptions {
  /** O_NONBLOCK: -EAGAIN instead of sleeping for room or data. */
  nonblock?: boolean
}

/**
 * `__snd_pcm_lib_xfer` for interleaved data: writes `frames` frames of `data` (playback; null:
 * silence) into the ring at appl_ptr, or reads them into `data` (capture), sleeping for room or
 * data as a blocking writei/readi does; auto-starts at start_threshold. Resolves with the frames
 * transferred, or a negative errno if none was (-EPIPE after an XRUN, -EBADFD in a wrong state,
 * -EAGAIN non-blocking, -EIO when the hardware does not move, -ENODEV after a disconnect).
 * Process context; the data moves with the CPU (mem_write_bytes / mem_read_bytes on dma_area), or
 * through the driver's `copy` callback.
 */
export async function snd_pcm_lib_xfer(s: SndPcmSubstream, data: Uint8Array | null, frames: number, opts: XferOptions = {}): Promise<number> {
  const rt = s.runtime
  if (rt === null) return -ENXIO
  if (rt.status.state === SNDRV_PCM_STATE_OPEN) return -EBADFD
  if (s.pcm.card.shutdown && rt.status.state === SNDRV_PCM_STATE_DISCONNECTED) return -ENODEV
  const isPlayback = s.stream === SNDRV_PCM_STREAM_PLAYBACK
  if (rt.dma_area === 0 && s.ops?.copy === undefined) return -EINVAL
  if (data === null && !isPlayback) return -EINVAL
  if (frames === 0) return 0
  let xfer = 0
  let offset = 0
  let size = frames
  let err = 0
  snd_pcm_stream_lock_irq(s)
  try {
    err = accessibleState(rt)
    if (err < 0) return err
    rt.twake = rt.control.avail_min || 1
    if (rt.status.state === SNDRV_PCM_STATE_RUNNING) snd_pcm_update_hw_ptr(s)
    // If size < start_threshold, wait indefinitely: another thread may start capture.
    if (!isPlayback && rt.status.state === SNDRV_PCM_STATE_PREPARED && size >= rt.start_threshold) {
      err = snd_pcm_start(s)
      if (err < 0) return err
    }
    let avail = snd_pcm_avail(s)
    while (size > 0) {
      if (!avail) {
        if (!isPlayback && rt.status.state === SNDRV_PCM_STATE_DRAINING) {
          snd_pcm_stop(s, SNDRV_PCM_STATE_SETUP)
          break
        }
        if (opts.nonblock === true) {
          err = -EAGAIN
          break
        }
        rt.twake = Math.min(size, rt.control.avail_min || 1)
        const w = await waitForAvail(s)
        err = w.err
        avail = w.avail
        if (err < 0) break
        if (!avail) continue // draining
      }
      let n = size > avail ? avail : size
      const appl_ptr = rt.control.appl_ptr
      const appl_ofs = appl_ptr % rt.buffer_size
      const cont = rt.buffer_size - appl_ofs
      if (n > cont) n = cont
      snd_pcm_stream_unlock_irq(s)
      let e = transfer(s, isPlayback, data, appl_ofs, offset, n)
      if (typeof e !== 'number') e = await e
      snd_pcm_stream_lock_irq(s)
      if (e < 0) {
        err = e
        break
      }
      err = accessibleState(rt)
      if (err < 0) break
      let next = appl_ptr + n
      if (next >= rt.boundary) next -= rt.boundary
      err = pcm_lib_apply_appl_ptr(s, next)
      if (err < 0) break
      offset += n
      size -= n
      xfer += n
      avail -= n
      if (isPlayback && rt.status.state === SNDRV_PCM_STATE_PREPARED && snd_pcm_playback_hw_avail(rt) >= rt.start_threshold) {
        err = snd_pcm_start(s)
        if (err < 0) break
      }
    }
    return xfer > 0 ? xfer : err
  } finally {
    rt.twake = 0
    if (xfer > 0 && err >= 0) snd_pcm_update_state(s, rt)
    snd_pcm_stream_unlock_irq(s)
  }
}

/** A driver's copy op's result: its errno, or 0 for anything that is not a number. */
async function copyOp(r: Promise<number>): Promise<number> {
  const v: unknown = await r
  return typeof v === 'number' ? v : 0
}

/** Copies one stretch between the caller and the ring; a promise only when the driver's copy op is called. */
function transfer(s: SndPcmSubstream, isPlayback: boolean, data: Uint8Array | null, hwoff: number, off: number, frames: number): number | Promise<number> {
  const rt = s.runtime!
  const bytes = frames_to_bytes(rt, frames)
  const pos = frames_to_bytes(rt, hwoff)
  const from = frames_to_bytes(rt, off)
  const ops = s.ops!
  if (data === null) {
    if (ops.fill_silence !== undefined) return ops.fill_silence.call(ops, s, -1, pos, bytes)
    fillSilence(s, hwoff, frames)
    dmaBufferSyncDevice()
    return 0
  }
  const chunk = data.subarray(from, from + bytes)
  if (ops.copy !== undefined) return copyOp(ops.copy.call(ops, s, -1, pos, chunk, bytes))
  if (isPlayback) {
    mem_write_bytes(ptr_add(rt.dma_area, pos), chunk)
    dmaBufferSyncDevice()
  } else chunk.set(mem_read_bytes(ptr_add(rt.dma_area, pos), bytes))
  return 0
}
