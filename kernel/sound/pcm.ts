/**
 * PCM devices, substreams and runtimes (include/sound/pcm.h, sound/core/pcm.c): `snd_pcm_new`,
 * `snd_pcm_set_ops`, the `snd_pcm_ops` a driver provides, `struct snd_pcm_hardware`, the runtime
 * a substream gets while it is open, the frame/byte helpers and the stream lock.
 *
 * Contexts (DESIGN.md §5): `open`, `close`, `hw_params`, `hw_free`, `prepare` and `sync_stop` are
 * process context and async (they may sleep); `trigger`, `pointer` and `ack` are atomic — the PCM
 * core calls them with the stream lock held and interrupts disabled, or from the interrupt handler
 * that called snd_pcm_period_elapsed — and must be synchronous. See docs/sound.md.
 */

import type { ErrPtr } from '../block/err.js'
import { ERR_PTR } from '../block/err.js'
import { EBUSY, EINVAL, ENOMEM } from '../errno.js'
import { spin_lock, spin_lock_init, spin_lock_irq, spin_lock_irqsave, spin_unlock, spin_unlock_irq, spin_unlock_irqrestore, type SpinLock } from '../locking/spinlock.js'
import type { Task } from '../sched/current.js'
import { mightSleep } from '../sched/might-sleep.js'
import { init_waitqueue_head, wake_up, type WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import type { CpuAddr, DmaAddr } from '../types.js'
import type { Device } from '../base/device.js'
import {
  SNDRV_DMA_TYPE_UNKNOWN,
  SNDRV_PCM_DEVICES,
  SNDRV_PCM_STATE_DISCONNECTED,
  SNDRV_PCM_STATE_DRAINING,
  SNDRV_PCM_STATE_OPEN,
  SNDRV_PCM_STATE_RUNNING,
  SNDRV_PCM_STREAM_CAPTURE,
  SNDRV_PCM_STREAM_PLAYBACK,
  XRUN_DEBUG_BASIC,
  type snd_pcm_format_t,
  type snd_pcm_state_t,
} from './asound.js'
import { SndCard } from './core.js'
import type { HwConstraints, SndPcmHwParams } from './pcm_params.js'
import { preallocateFree } from './pcm_memory.js'
import { sndBadArg, sndCall } from './state.js'

/** `snd_pcm_uframes_t` / `snd_pcm_sframes_t`: frames. */
export type snd_pcm_uframes_t = number
export type snd_pcm_sframes_t = number

/** `struct snd_pcm_ops`: what a PCM driver provides (snd_pcm_set_ops). */
export interface SndPcmOps {
  /** Process context. Set `substream.runtime.hw` and add constraints; 0 or -errno. */
  open(substream: SndPcmSubstream): Promise<number>
  /** Process context; 0. */
  close(substream: SndPcmSubstream): Promise<number>
  /** Process context: program what does not change between prepares; 0 or -errno. */
  hw_params?(substream: SndPcmSubstream, params: SndPcmHwParams): Promise<number>
  /** Process context: undo hw_params; 0. */
  hw_free?(substream: SndPcmSubstream): Promise<number>
  /** Process context: program the hardware for the runtime's format, rate, buffer and periods; 0 or -errno. */
  prepare?(substream: SndPcmSubstream): Promise<number>
  /** Atomic (stream lock held, IRQs off): START, STOP, PAUSE_PUSH, PAUSE_RELEASE, SUSPEND, RESUME; 0 or -errno. */
  trigger(substream: SndPcmSubstream, cmd: number): number
  /** Atomic: the hardware's position in the buffer, in frames (0 .. buffer_size - 1), or SNDRV_PCM_POS_XRUN. */
  pointer(substream: SndPcmSubstream): snd_pcm_uframes_t
  /** Process context: wait until the hardware's interrupts for this stream are done (after a stop). */
  sync_stop?(substream: SndPcmSubstream): Promise<number>
  /** Atomic: the application moved appl_ptr; 0 or -errno (the move is undone). */
  ack?(substream: SndPcmSubstream): number
  /**
   * Process context: copy `bytes` bytes between the application's `buf` and the hardware at byte
   * position `pos` of channel `channel` (-1 for interleaved data); replaces the CPU copy into
   * `dma_area`. 0 or -errno.
   */
  copy?(substream: SndPcmSubstream, channel: number, pos: number, buf: Uint8Array, bytes: number): Promise<number>
  /** Process context: fill `bytes` bytes at `pos` with silence (with `copy`); 0 or -errno. */
  fill_silence?(substream: SndPcmSubstream, channel: number, pos: number, bytes: number): Promise<number>
}

/** `struct snd_pcm_hardware`: the hardware's capabilities, set as `runtime.hw` in `open`. */
export interface SndPcmHardware {
  /** SNDRV_PCM_INFO_*. */
  info: number
  /** SNDRV_PCM_FMTBIT_* (a u64 mask, as a bigint). */
  formats: bigint
  /** SNDRV_PCM_RATE_*. */
  rates: number
  rate_min: number
  rate_max: number
  channels_min: number
  channels_max: number
  buffer_bytes_max: number
  period_bytes_min: number
  period_bytes_max: number
  periods_min: number
  periods_max: number
  fifo_size: number
}

/** An empty `snd_pcm_hardware` (everything 0), as a runtime starts with. */
export function emptyHardware(): SndPcmHardware {
  return { info: 0, formats: 0n, rates: 0, rate_min: 0, rate_max: 0, channels_min: 0, channels_max: 0, buffer_bytes_max: 0, period_bytes_min: 0, period_bytes_max: 0, periods_min: 0, periods_max: 0, fifo_size: 0 }
}

/** `struct snd_dma_buffer`: a DMA buffer and the device it belongs to. */
export interface SndDmaBuffer {
  dev: { type: number; dev: Device | null }
  /** Its kernel virtual address (0: none). */
  area: CpuAddr
  /** Its device (DMA) address. */
  addr: DmaAddr
  bytes: number
  /** @internal The allocation's size as made (dma_alloc_coherent's size). */
  _allocBytes: number
  /** @internal alloc_pages order, for SNDRV_DMA_TYPE_CONTINUOUS. */
  _order: number
}

/** A fresh, empty DMA buffer descriptor. */
export function emptyDmaBuffer(): SndDmaBuffer {
  return { dev: { type: SNDRV_DMA_TYPE_UNKNOWN, dev: null }, area: 0 as CpuAddr, addr: 0 as DmaAddr, bytes: 0, _allocBytes: 0, _order: 0 }
}

/** What the harness and the tests read about one substream, across its opens. */
export interface SubstreamStats {
  /** Times it was opened. */
  opens: number
  /** XRUNs (__snd_pcm_xrun), including those the pointer reported. */
  xruns: number
  /** snd_pcm_period_elapsed calls, and those that found the stream running. */
  periodElapsed: number
  periodElapsedRunning: number
  /** ops.pointer calls. */
  pointerCalls: number
  /** Trigger commands, in order (capped at 1000). */
  triggers: number[]
  /** Pointer and timing problems snd_pcm_update_hw_ptr0 found, by Linux's wording. */
  hwPtrErrors: Record<string, number>
  /** The last kernel messages of the substream (XRUN, pointer errors, timeouts), capped at 200. */
  log: { timeNs: number; message: string }[]
}

/** `struct snd_pcm_runtime`: the state of an open substream. */
export class SndPcmRuntime {
  /** `runtime->status`: what user space maps read-only. */
  readonly status: { state: snd_pcm_state_t; hw_ptr: snd_pcm_uframes_t; suspended_state: snd_pcm_state_t; tstampNs: number } = {
    state: SNDRV_PCM_STATE_OPEN,
    hw_ptr: 0,
    suspended_state: SNDRV_PCM_STATE_OPEN,
    tstampNs: 0,
  }
  /** `runtime->control`: what user space maps read-write. */
  readonly control: { appl_ptr: snd_pcm_uframes_t; avail_min: snd_pcm_uframes_t } = { appl_ptr: 0, avail_min: 0 }

  // -- hw params
  access = 0
  format: snd_pcm_format_t = 0
  subformat = 0
  rate = 0
  channels = 0
  period_size: snd_pcm_uframes_t = 0
  periods = 0
  buffer_size: snd_pcm_uframes_t = 0
  min_align = 1
  byte_align = 0
  frame_bits = 0
  sample_bits = 0
  info = 0
  rate_num = 0
  rate_den = 0
  no_period_wakeup = false

  // -- sw params
  tstamp_mode = 0
  period_step = 1
  start_threshold: snd_pcm_uframes_t = 0
  stop_threshold: snd_pcm_uframes_t = 0
  silence_threshold: snd_pcm_uframes_t = 0
  silence_size: snd_pcm_uframes_t = 0
  boundary: snd_pcm_uframes_t = 0

  // -- internal data of the position machinery (pcm_lib.c)
  silence_start: snd_pcm_uframes_t = 0
  silence_filled: snd_pcm_uframes_t = 0
  hw_ptr_base: snd_pcm_uframes_t = 0
  hw_ptr_interrupt: snd_pcm_uframes_t = 0
  hw_ptr_jiffies = 0
  hw_ptr_buffer_jiffies = 0
  hw_ptr_wrap = 0
  /** Extra delay the driver reports (frames), e.g. in its pointer callback. */
  delay: snd_pcm_sframes_t = 0
  avail_max: snd_pcm_uframes_t = 0
  /** Frames a writer/reader waits for (0: none waits). */
  twake: snd_pcm_uframes_t = 0
  /** poll()'s wait queue, and the writers'/readers' one. */
  readonly sleep: WaitQueueHead = init_waitqueue_head()
  readonly tsleep: WaitQueueHead = init_waitqueue_head()
  /** @internal wake_up counters of sleep and tsleep (a waiter's condition). */
  _sleepGen = 0
  _tsleepGen = 0
  trigger_master: SndPcmSubstream | null = null
  trigger_tstamp_ns = 0
  stop_operating = false
  /** hw_params allocated a new buffer (managed mode). */
  buffer_changed = false

  // -- the hardware and its constraints
  #hw: SndPcmHardware = emptyHardware()
  /** @internal */
  hw_constraints!: HwConstraints

  // -- the driver's data
  private_data: unknown = null
  private_free: ((runtime: SndPcmRuntime) => void) | null = null

  // -- the DMA buffer
  dma_area: CpuAddr = 0 as CpuAddr
  dma_addr: DmaAddr = 0 as DmaAddr
  dma_bytes = 0
  dma_buffer_p: SndDmaBuffer | null = null

  /** @internal The reason the last hw_params was refused. */
  _hwError: string | null = null
  /** @internal XRUNs of this open. */
  _xruns = 0

  /** The hardware description: assigning copies it, as C copies the struct. */
  get hw(): SndPcmHardware {
    return this.#hw
  }
  set hw(v: SndPcmHardware) {
    this.#hw = { ...emptyHardware(), ...v }
  }

  /** `runtime->state` (the status page's state). */
  get state(): snd_pcm_state_t {
    return this.status.state
  }
}

/** `struct snd_pcm_str`: one direction of a PCM device. */
export class SndPcmStr {
  readonly stream: number
  readonly pcm: SndPcm
  readonly substream_count: number
  substream_opened = 0
  readonly substreams: SndPcmSubstream[] = []
  /** /proc/asound/cardN/pcmMp/xrun_debug (XRUN_DEBUG_*): the emulator starts with BASIC. */
  xrun_debug = XRUN_DEBUG_BASIC

  constructor(pcm: SndPcm, stream: number, count: number) {
    this.pcm = pcm
    this.stream = stream
    this.substream_count = count
  }

  /** The first substream (`pstr->substream`), or null. */
  get substream(): SndPcmSubstream | null {
    return this.substreams[0] ?? null
  }
}

/** `struct snd_pcm_substream`. */
export class SndPcmSubstream {
  readonly pcm: SndPcm
  readonly pstr: SndPcmStr
  readonly number: number
  /** SNDRV_PCM_STREAM_PLAYBACK or SNDRV_PCM_STREAM_CAPTURE. */
  readonly stream: number
  readonly name: string
  ops: SndPcmOps | null = null
  /** The runtime while the substream is open, else null. */
  runtime: SndPcmRuntime | null = null
  /** `snd_pcm_substream_chip(substream)`: the PCM's private_data, copied at open. */
  private_data: unknown = null
  /** The preallocated (or managed) buffer. */
  dma_buffer: SndDmaBuffer = emptyDmaBuffer()
  dma_max = 0
  buffer_bytes_max = 0xffffffff
  managed_buffer_alloc = false
  ref_count = 0
  hw_opened = false
  f_flags = 0
  /** Jiffies a blocked write/read waits for the hardware (0: the core's default). */
  wait_time = 0
  /** The stream lock (`substream->self_group.lock`). */
  readonly self_group: { lock: SpinLock }
  /** @internal */
  readonly stats: SubstreamStats = { opens: 0, xruns: 0, periodElapsed: 0, periodElapsedRunning: 0, pointerCalls: 0, triggers: [], hwPtrErrors: {}, log: [] }

  constructor(pcm: SndPcm, pstr: SndPcmStr, number: number) {
    this.pcm = pcm
    this.pstr = pstr
    this.number = number
    this.stream = pstr.stream
    this.name = `subdevice #${number}`
    this.self_group = { lock: spin_lock_init() }
  }

  /** The next substream of the same direction (`substream->next`), or null. */
  get next(): SndPcmSubstream | null {
    return this.pstr.substreams[this.number + 1] ?? null
  }

  /** `snd_pcm_debug_name`: 'pcmC0D0p:0'. */
  get debugName(): string {
    return `pcmC${this.pcm.card.number}D${this.pcm.device}${this.stream === SNDRV_PCM_STREAM_PLAYBACK ? 'p' : 'c'}:${this.number}`
  }

  /** @internal A kernel message about the substream, kept for the harness (capped). */
  _note(sys: System, message: string): void {
    const log = this.stats.log
    if (log.length >= 200) log.shift()
    log.push({ timeNs: sys.machine.clock.now, message })
  }
}

/** `struct snd_pcm`: a PCM device of a card. */
export class SndPcm {
  readonly card: SndCard
  readonly device: number
  /** The id given to snd_pcm_new. */
  readonly id: string
  /** The name user space shows (the driver sets it). */
  name = ''
  info_flags = 0
  /** [playback, capture]. */
  readonly streams: readonly [SndPcmStr, SndPcmStr]
  /** The driver's data; each substream's private_data at open. */
  private_data: unknown = null
  private_free: ((pcm: SndPcm) => void) | null = null
  /** Drivers whose trigger may sleep set it in Linux; here trigger is always atomic. */
  nonatomic = false
  /** @internal */
  _freed = false

  constructor(card: SndCard, id: string, device: number, playback: number, capture: number) {
    this.card = card
    this.id = id
    this.device = device
    const p = new SndPcmStr(this, SNDRV_PCM_STREAM_PLAYBACK, playback)
    const c = new SndPcmStr(this, SNDRV_PCM_STREAM_CAPTURE, capture)
    this.streams = [p, c]
    for (const s of this.streams) for (let i = 0; i < s.substream_count; i++) s.substreams.push(new SndPcmSubstream(this, s, i))
  }
}

function checkPcm(t: Task, fn: string, pcm: unknown): SndPcm {
  if (!(pcm instanceof SndPcm)) sndBadArg(t, fn, 'pcm', 'must be a PCM from snd_pcm_new()')
  if (pcm._freed) sndBadArg(t, fn, 'pcm', 'was freed with its card (use after free)')
  return pcm
}

/** @internal Checks a substream argument of a driver-facing call. */
export function checkSubstream(t: Task, fn: string, s: unknown): SndPcmSubstream {
  if (!(s instanceof SndPcmSubstream)) sndBadArg(t, fn, 'substream', 'must be a snd_pcm_substream')
  return s
}

/**
 * `snd_pcm_new(card, id, device, playback_count, capture_count)`: creates PCM device `device` of
 * the card with that many substreams each way. Returns the PCM, or an error pointer: -EBUSY (the
 * device number is taken), -EINVAL (a bad count or device number), -ENOMEM. Process context. It
 * is visible to user space once the card is registered (at once if it already is).
 */
export function snd_pcm_new(card: SndCard, id: string, device: number, playback_count: number, capture_count: number): SndPcm | ErrPtr {
  const { t } = sndCall('snd_pcm_new')
  mightSleep(t, 'snd_pcm_new')
  if (!(card instanceof SndCard)) sndBadArg(t, 'snd_pcm_new', 'card', 'must be a card from snd_card_new()')
  if (card._freed) sndBadArg(t, 'snd_pcm_new', 'card', 'was freed (use after free)')
  if (typeof id !== 'string') sndBadArg(t, 'snd_pcm_new', 'id', 'must be a string')
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 32
  if (!count(playback_count) || !count(capture_count)) return ERR_PTR(-EINVAL)
  if (typeof device !== 'number' || !Number.isInteger(device) || device < 0 || device >= SNDRV_PCM_DEVICES) return ERR_PTR(-EINVAL)
  if (card.shutdown) return ERR_PTR(-ENOMEM)
  if (card.pcms.some((p) => p.device === device)) return ERR_PTR(-EBUSY)
  const pcm = new SndPcm(card, id, device, playback_count, capture_count)
  card.pcms.push(pcm)
  return pcm
}

/** `snd_pcm_set_ops(pcm, direction, ops)`: the ops of every substream of one direction. */
export function snd_pcm_set_ops(pcm: SndPcm, direction: number, ops: SndPcmOps): void {
  const { t } = sndCall('snd_pcm_set_ops')
  const p = checkPcm(t, 'snd_pcm_set_ops', pcm)
  if (direction !== SNDRV_PCM_STREAM_PLAYBACK && direction !== SNDRV_PCM_STREAM_CAPTURE) sndBadArg(t, 'snd_pcm_set_ops', 'direction', `must be SNDRV_PCM_STREAM_PLAYBACK or _CAPTURE, got ${String(direction)}`)
  if (ops === null || typeof ops !== 'object') sndBadArg(t, 'snd_pcm_set_ops', 'ops', 'must be a snd_pcm_ops object')
  for (const k of ['open', 'close', 'trigger', 'pointer'] as const) {
    if (typeof ops[k] !== 'function') sndBadArg(t, 'snd_pcm_set_ops', `ops.${k}`, 'must be a function (open, close, trigger and pointer are mandatory)')
  }
  for (const s of p.streams[direction].substreams) s.ops = ops
}

/** `snd_pcm_substream_chip(substream)`: the PCM's private data. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the C macro's cast, as blk_mq_rq_to_pdu<T>
export function snd_pcm_substream_chip<T = unknown>(substream: SndPcmSubstream): T {
  return substream.private_data as T
}

/** `snd_pcm_chip(pcm)`. */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the C macro's cast
export function snd_pcm_chip<T = unknown>(pcm: SndPcm): T {
  return pcm.private_data as T
}

/** `snd_pcm_running(substream)`: RUNNING, or DRAINING playback. */
export function snd_pcm_running(substream: SndPcmSubstream): boolean {
  const rt = substream.runtime
  if (rt === null) return false
  return rt.status.state === SNDRV_PCM_STATE_RUNNING || (rt.status.state === SNDRV_PCM_STATE_DRAINING && substream.stream === SNDRV_PCM_STREAM_PLAYBACK)
}

/** `snd_pcm_stream_linked`: no linked streams here. */
export function snd_pcm_stream_linked(_substream: SndPcmSubstream): boolean {
  return false
}

/** `snd_pcm_group_for_each_entry(s, substream)`: the substreams of the group — just this one (no linking). */
export function* snd_pcm_group_for_each_entry(substream: SndPcmSubstream): Generator<SndPcmSubstream> {
  yield substream
}

/** `snd_pcm_trigger_done(substream, master)`: nothing to do without linked streams. */
export function snd_pcm_trigger_done(_substream: SndPcmSubstream, _master: SndPcmSubstream): void {
  /* no linked streams */
}

// ---------------------------------------------------------------------- the stream lock

/** `snd_pcm_stream_lock(substream)`. */
export function snd_pcm_stream_lock(substream: SndPcmSubstream): void {
  spin_lock(substream.self_group.lock)
}
/** `snd_pcm_stream_unlock(substream)`. */
export function snd_pcm_stream_unlock(substream: SndPcmSubstream): void {
  spin_unlock(substream.self_group.lock)
}
/** `snd_pcm_stream_lock_irq(substream)`. */
export function snd_pcm_stream_lock_irq(substream: SndPcmSubstream): void {
  spin_lock_irq(substream.self_group.lock)
}
/** `snd_pcm_stream_unlock_irq(substream)`. */
export function snd_pcm_stream_unlock_irq(substream: SndPcmSubstream): void {
  spin_unlock_irq(substream.self_group.lock)
}
/** `snd_pcm_stream_lock_irqsave(substream)` -> flags. */
export function snd_pcm_stream_lock_irqsave(substream: SndPcmSubstream): number {
  return spin_lock_irqsave(substream.self_group.lock)
}
/** `snd_pcm_stream_unlock_irqrestore(substream, flags)`. */
export function snd_pcm_stream_unlock_irqrestore(substream: SndPcmSubstream, flags: number): void {
  spin_unlock_irqrestore(substream.self_group.lock, flags)
}

// ---------------------------------------------------------------------- frames and bytes

/** `bytes_to_frames(runtime, size)`. */
export function bytes_to_frames(runtime: SndPcmRuntime, size: number): snd_pcm_sframes_t {
  return Math.trunc((size * 8) / runtime.frame_bits)
}
/** `frames_to_bytes(runtime, size)`. */
export function frames_to_bytes(runtime: SndPcmRuntime, size: snd_pcm_sframes_t): number {
  return (size * runtime.frame_bits) / 8
}
/** `bytes_to_samples(runtime, size)`. */
export function bytes_to_samples(runtime: SndPcmRuntime, size: number): number {
  return Math.trunc((size * 8) / runtime.sample_bits)
}
/** `samples_to_bytes(runtime, size)`. */
export function samples_to_bytes(runtime: SndPcmRuntime, size: number): number {
  return (size * runtime.sample_bits) / 8
}
/** `frame_aligned(runtime, bytes)`. */
export function frame_aligned(runtime: SndPcmRuntime, bytes: number): boolean {
  return bytes % runtime.byte_align === 0
}
/** `snd_pcm_lib_buffer_bytes(substream)`: the ring's size in bytes. */
export function snd_pcm_lib_buffer_bytes(substream: SndPcmSubstream): number {
  const rt = substream.runtime!
  return frames_to_bytes(rt, rt.buffer_size)
}
/** `snd_pcm_lib_period_bytes(substream)`: a period's size in bytes. */
export function snd_pcm_lib_period_bytes(substream: SndPcmSubstream): number {
  const rt = substream.runtime!
  return frames_to_bytes(rt, rt.period_size)
}

/** `snd_pcm_playback_avail(runtime)`: frames the application may write. */
export function snd_pcm_playback_avail(rt: SndPcmRuntime): snd_pcm_uframes_t {
  let avail = rt.status.hw_ptr + rt.buffer_size - rt.control.appl_ptr
  if (avail < 0) avail += rt.boundary
  else if (avail >= rt.boundary) avail -= rt.boundary
  return avail
}
/** `snd_pcm_capture_avail(runtime)`: frames the application may read. */
export function snd_pcm_capture_avail(rt: SndPcmRuntime): snd_pcm_uframes_t {
  let avail = rt.status.hw_ptr - rt.control.appl_ptr
  if (avail < 0) avail += rt.boundary
  return avail
}
/** `snd_pcm_playback_hw_avail(runtime)`: frames queued for the hardware. */
export function snd_pcm_playback_hw_avail(rt: SndPcmRuntime): snd_pcm_sframes_t {
  return rt.buffer_size - snd_pcm_playback_avail(rt)
}
/** `snd_pcm_capture_hw_avail(runtime)`. */
export function snd_pcm_capture_hw_avail(rt: SndPcmRuntime): snd_pcm_sframes_t {
  return rt.buffer_size - snd_pcm_capture_avail(rt)
}
/** `snd_pcm_avail(substream)`: the application's available frames for its direction. */
export function snd_pcm_avail(substream: SndPcmSubstream): snd_pcm_uframes_t {
  const rt = substream.runtime!
  return substream.stream === SNDRV_PCM_STREAM_PLAYBACK ? snd_pcm_playback_avail(rt) : snd_pcm_capture_avail(rt)
}
/** `snd_pcm_hw_avail(substream)`. */
export function snd_pcm_hw_avail(substream: SndPcmSubstream): snd_pcm_sframes_t {
  const rt = substream.runtime!
  return substream.stream === SNDRV_PCM_STREAM_PLAYBACK ? snd_pcm_playback_hw_avail(rt) : snd_pcm_capture_hw_avail(rt)
}
/** `snd_pcm_playback_ready(substream)`: avail >= avail_min. */
export function snd_pcm_playback_ready(substream: SndPcmSubstream): boolean {
  const rt = substream.runtime!
  return snd_pcm_playback_avail(rt) >= rt.control.avail_min
}
/** `snd_pcm_capture_ready(substream)`. */
export function snd_pcm_capture_ready(substream: SndPcmSubstream): boolean {
  const rt = substream.runtime!
  return snd_pcm_capture_avail(rt) >= rt.control.avail_min
}
/** `snd_pcm_playback_data(substream)`: whether there is data queued for playback. */
export function snd_pcm_playback_data(substream: SndPcmSubstream): boolean {
  const rt = substream.runtime!
  if (rt.stop_threshold >= rt.boundary) return true
  return snd_pcm_playback_avail(rt) < rt.buffer_size
}
/** `snd_pcm_playback_empty(substream)`. */
export function snd_pcm_playback_empty(substream: SndPcmSubstream): boolean {
  const rt = substream.runtime!
  return snd_pcm_playback_avail(rt) >= rt.buffer_size
}
/** `snd_pcm_capture_empty(substream)`. */
export function snd_pcm_capture_empty(substream: SndPcmSubstream): boolean {
  return snd_pcm_capture_avail(substream.runtime!) === 0
}

/** `snd_pcm_get_dma_buf(substream)`: the runtime's DMA buffer. */
export function snd_pcm_get_dma_buf(substream: SndPcmSubstream): SndDmaBuffer | null {
  return substream.runtime?.dma_buffer_p ?? null
}

/** `snd_sgbuf_get_addr(dmab, offset)`: the device address at offset (buffers are contiguous here). */
export function snd_sgbuf_get_addr(dmab: SndDmaBuffer, offset: number): DmaAddr {
  return (dmab.addr + offset) as DmaAddr
}

/** `snd_sgbuf_get_chunk_size(dmab, ofs, size)`: contiguous bytes from ofs (all of size here). */
export function snd_sgbuf_get_chunk_size(_dmab: SndDmaBuffer, _ofs: number, size: number): number {
  return size
}

/** `snd_pcm_sgbuf_get_addr(substream, ofs)`. */
export function snd_pcm_sgbuf_get_addr(substream: SndPcmSubstream, ofs: number): DmaAddr {
  return snd_sgbuf_get_addr(substream.runtime!.dma_buffer_p!, ofs)
}

/** `snd_pcm_set_runtime_buffer(substream, bufp)`: the runtime's buffer (null clears it). */
export function snd_pcm_set_runtime_buffer(substream: SndPcmSubstream, bufp: SndDmaBuffer | null): void {
  const rt = substream.runtime
  if (rt === null) return
  if (bufp !== null) {
    rt.dma_buffer_p = bufp
    rt.dma_area = bufp.area
    rt.dma_addr = bufp.addr
    rt.dma_bytes = bufp.bytes
  } else {
    rt.dma_buffer_p = null
    rt.dma_area = 0 as CpuAddr
    rt.dma_addr = 0 as DmaAddr
    rt.dma_bytes = 0
  }
}

// ---------------------------------------------------------------------- wake-ups

/** @internal wake_up(&runtime->sleep), counted for the waiters' conditions. */
export function wakeSleep(rt: SndPcmRuntime): void {
  rt._sleepGen++
  wake_up(rt.sleep)
}
/** @internal wake_up(&runtime->tsleep). */
export function wakeTsleep(rt: SndPcmRuntime): void {
  rt._tsleepGen++
  wake_up(rt.tsleep)
}

// ---------------------------------------------------------------------- disconnect and free (from the card)

/** @internal snd_pcm_dev_disconnect: open substreams go to DISCONNECTED and their sleepers wake. */
export function pcmDisconnect(pcm: SndPcm): void {
  for (const pstr of pcm.streams) {
    for (const s of pstr.substreams) {
      const rt = s.runtime
      if (rt === null) continue
      snd_pcm_stream_lock_irq(s)
      if (snd_pcm_running(s)) stopForDisconnect(s)
      rt.status.state = SNDRV_PCM_STATE_DISCONNECTED
      wakeSleep(rt)
      wakeTsleep(rt)
      snd_pcm_stream_unlock_irq(s)
    }
  }
}

let stopForDisconnect: (s: SndPcmSubstream) => void = () => undefined

/** @internal pcm_native.ts installs snd_pcm_stop for the disconnect path (no import cycle at load). */
export function setDisconnectStop(fn: (s: SndPcmSubstream) => void): void {
  stopForDisconnect = fn
}

/** @internal snd_pcm_free: the PCM's preallocated buffers, its private data. Process context. */
export function pcmFree(pcm: SndPcm): void {
  for (const pstr of pcm.streams) for (const s of pstr.substreams) preallocateFree(s)
  pcm.private_free?.(pcm)
  pcm._freed = true
}

/** @internal The system of a substream's card. */
export function sysOfSubstream(s: SndPcmSubstream): System {
  return s.pcm.card._sys
}
