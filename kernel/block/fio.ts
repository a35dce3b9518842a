/**
 * A small fio (https://fio.readthedocs.io) for the emulator: jobs that keep `iodepth` I/Os in
 * flight on one disk through the block layer, with fio's names for the knobs (rw, bs, iodepth,
 * numjobs, size, offset, rwmixread, number_ios, runtime, fsync, verify), and verification of what
 * reads return against what the run wrote.
 *
 *   const w = await fio(sys, { disk: 'nullb0', rw: 'randwrite', bs: 4096, iodepth: 32, verify: true })
 *   const r = await fio(sys, { disk: 'nullb0', rw: 'randread', bs: 4096, iodepth: 32, verify: true, verifyState: w.verifyState })
 *   r.verifyErrors  // 0 for a correct driver
 *
 * Each job is a process-context task (`fio/<n>`) with its own I/O buffers (kernel pages,
 * allocated once, as fio allocates its buffers), bios, and submission context (job j submits from
 * context `queues[j]`, by default j modulo the number of hw queues). It submits bios without
 * waiting for each (`submit_bio`), up to iodepth at once (under one plug with `batch`), and sleeps
 * until completions arrive; each bio's end_io (a shared function, no closure per I/O) queues it
 * back to its job.
 *
 * Verification, like fio's verify=crc32c with a header: every logical block written carries a
 * header — a magic number, its own LBA, a write generation and the run's tag — and, with
 * `verify: 'full'` (or true), a payload derived from the three. Before a read is submitted its
 * buffer's magic numbers are poisoned (CPU stores), so a read that never lands is caught; after it
 * ends, each block is checked against the generation last written there: another LBA's data
 * (a misdirected read or write), an older generation (a stale read, a lost write), a bad magic
 * (nothing was read) or a corrupt payload are verify errors. Blocks no write of this verifyState
 * reached are skipped. While a block has a write in flight no other I/O touches it (and no write
 * touches a block being read), so every expectation is exact.
 *
 * Everything is on virtual time and seeded: the same seed, system and options give the same
 * result, byte for byte.
 */

import { InvalidArgumentError, DmalabError } from '../errors.js'
import { PAGE_OFFSET } from '../mm/layout.js'
import { mem_read_bytes, mem_write32, mem_write_bytes } from '../mm/memory.js'
import type { Page } from '../mm/page.js'
import { current, currentOrNull } from '../sched/current.js'
import { init_waitqueue_head, wait_event, type WaitQueueHead } from '../sched/time.js'
import type { System } from '../system.js'
import { PAGE_SIZE, type CpuAddr } from '../types.js'
import { Bio } from './bio.js'
import {
  BLK_STS_OK,
  REQ_FUA,
  REQ_OP_FLUSH,
  REQ_OP_READ,
  REQ_OP_WRITE,
  REQ_PREFLUSH,
  SECTOR_SIZE,
  blk_status_name,
} from './blk_types.js'
import { submit_bio } from './blk-core.js'
import { blk_finish_plug, blk_start_plug, queueIdle, wakeAll } from './blk-mq.js'
import type { Gendisk } from './genhd.js'
import { blockState, type BlockState } from './state.js'
import { allocBuffer, freeBuffer } from './user.js'

/** fio's rw= values ('rw' and 'readwrite' are sequential mixed). */
export type FioRw = 'read' | 'write' | 'randread' | 'randwrite' | 'randrw' | 'rw' | 'readwrite'

export interface FioOptions {
  /** The disk's name. */
  disk: string
  rw: FioRw
  /** Bytes per I/O: whole logical blocks, at most 1 MiB (default 4096). */
  bs?: number
  /** I/Os each job keeps in flight (default 1). */
  iodepth?: number
  /** Jobs (process tasks) running at once (default 1). */
  numjobs?: number
  /** The submission context of each job (default: job j uses j modulo the number of hw queues). */
  queues?: readonly number[]
  /** Bytes of the disk the run uses, from `offset` (default: the rest of the disk). */
  size?: number
  /** Where the region starts, bytes (default 0). */
  offset?: number
  /** I/Os each job issues (fio's number_ios; default: its share of the region / bs). */
  numIos?: number
  /** Stop issuing after this much virtual time (ns). */
  runtimeNs?: number
  /** Percentage of reads in randrw/rw (default 50). */
  rwmixread?: number
  /** Seeds the LBAs, the operations and the data (default: the system's seed). */
  seed?: number
  /** Check what reads return: true or 'full' (headers and payload), 'header', or false (default). */
  verify?: boolean | 'header' | 'full'
  /** What an earlier run wrote (its result's verifyState), to verify reads against. */
  verifyState?: FioVerifyState
  /** Writes with REQ_FUA. */
  fua?: boolean
  /** A flush after every N writes of a job (fio's fsync=N). */
  fsync?: number
  /** Submit up to N I/Os under one plug (the driver sees bd.last once per batch; default 1: no plug). */
  batch?: number
  /** I/O buffers as contiguous pages (default: scattered pages, as page-cache pages are). */
  contiguous?: boolean
  /** Where each buffer starts in its first page (a multiple of the logical block size; default 0). */
  pageOffset?: number
  /** Collect per-I/O latencies for percentiles (default true). */
  latency?: boolean
}

/** What a verifying run knows about the disk: the generation last written to each block. */
export class FioVerifyState {
  readonly disk: string
  readonly blockSize: number
  /** @internal The generation last written to each block (negative: header only, no payload pattern). */
  readonly _gens = new Map<number, number>()
  /** @internal */
  _nextGen = 1
  /** @internal Distinguishes runs' data. */
  readonly _tag: number

  /** @internal */
  constructor(disk: string, blockSize: number, tag: number) {
    this.disk = disk
    this.blockSize = blockSize
    this._tag = tag
  }

  /** Logical blocks whose contents the state knows. */
  get blocks(): number {
    return this._gens.size
  }

  toString(): string {
    return `FioVerifyState(${this.disk}: ${this._gens.size} block(s) of ${this.blockSize} bytes)`
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString()
  }
}

export interface FioLatency {
  minNs: number
  maxNs: number
  meanNs: number
  p50Ns: number
  p90Ns: number
  p99Ns: number
  p999Ns: number
}

export interface FioResult {
  /** I/Os that ended (reads, writes and flushes). */
  ios: number
  reads: number
  writes: number
  flushes: number
  /** Bytes read and written. */
  bytes: number
  readBytes: number
  writeBytes: number
  /** Virtual time from the first submission to the last completion. */
  virtualNs: number
  /** I/Os per second of virtual time. */
  iops: number
  /** Bytes per second of virtual time. */
  bandwidth: number
  /** The CPU's busy time during the run and its utilisation. */
  cpuBusyNs: number
  cpuUtilisation: number
  /** I/Os that ended with an error, and how many of each status. */
  errors: number
  errorStatuses: Record<string, number>
  /** Logical blocks whose contents were checked, found wrong, or skipped (never written). */
  verified: number
  verifyErrors: number
  verifySkipped: number
  /** The first few verify errors, described. */
  verifyErrorSamples: string[]
  /** Completion latency (submission to end), or null with latency: false. */
  lat: FioLatency | null
  /** Pass to a later run to verify what this one wrote. */
  verifyState: FioVerifyState
}

const MAGIC = 0x7646_494f // 'OIFv' little-endian: "FIOv" in memory order
const POISON = 0xdead_0b10
const HEADER = 32
const MAX_BS = 1 << 20

// ---------------------------------------------------------------------- the run's shared state

interface Shared {
  readonly sys: System
  readonly bs: BlockState
  readonly disk: Gendisk
  readonly lbs: number
  readonly blkPerIo: number
  readonly state: FioVerifyState
  readonly verify: 0 | 1 | 2 // off, header, full
  /** Whether writes are recorded in the verify state (verifying, or a state was passed in). */
  readonly track: boolean
  /** Blocks in flight: -1 a write, n > 0 readers (only when verifying). */
  readonly marks: Map<number, number>
  readonly wq: WaitQueueHead
  completions: number
  readonly lat: number[] | null
  readonly res: FioResult
  readonly start: number
  readonly runtimeNs: number
}

interface Job {
  readonly sh: Shared
  readonly id: number
  readonly cpu: number
  readonly slots: Slot[]
  readonly free: Slot[]
  done: Slot[]
  inflight: number
  issued: number
  readonly target: number
  rng: number
  /** Sequential position (block index within the job's range) and the range. */
  seq: number
  readonly rangeStart: number
  readonly rangeIos: number
  writesSinceFsync: number
  seen: number
  readonly cond: () => boolean
  readonly scratch: Uint8Array
  readonly view: DataView
}

interface Slot {
  readonly job: Job
  readonly bio: Bio
  readonly buf: NonNullable<ReturnType<typeof allocBuffer>>
  /** 0 read, 1 write, 2 flush. */
  op: number
  lba: number
  gen: number
  startNs: number
}

function fioEndIo(bio: Bio): void {
  const slot = bio.bi_private as Slot
  const job = slot.job
  const sh = job.sh
  job.done.push(slot)
  if (sh.lat !== null) sh.lat.push(sh.sys.machine.clock.now - slot.startNs)
  sh.completions++
  wakeAll(sh.sys, sh.wq)
}

// ---------------------------------------------------------------------- random numbers and patterns

/** mulberry32: a small seeded generator (one step). */
function next32(job: Job): number {
  let t = (job.rng = (job.rng + 0x6d2b79f5) | 0)
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (t ^ (t >>> 14)) >>> 0
}

function rand(job: Job, n: number): number {
  return Math.floor((next32(job) / 0x1_0000_0000) * n)
}

function mix(a: number, b: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ b
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return (h ^ (h >>> 16)) >>> 0
}

/** Writes the payload of one block (after its header) for (lba, gen, tag). */
function fillPayload(view: DataView, at: number, lbs: number, lba: number, gen: number, tag: number): void {
  let x = mix(mix(lba >>> 0, Math.floor(lba / 0x1_0000_0000)), mix(gen, tag)) | 1
  for (let o = at + HEADER; o < at + lbs; o += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    view.setUint32(o, x >>> 0, true)
  }
}

function checkPayload(view: DataView, at: number, lbs: number, lba: number, gen: number, tag: number): number {
  let x = mix(mix(lba >>> 0, Math.floor(lba / 0x1_0000_0000)), mix(gen, tag)) | 1
  for (let o = at + HEADER; o < at + lbs; o += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    if (view.getUint32(o, true) !== x >>> 0) return o - at
  }
  return -1
}

function addrOf(page: Page, off: number): CpuAddr {
  return (page.pfn * PAGE_SIZE + off + PAGE_OFFSET) as CpuAddr
}

// ---------------------------------------------------------------------- options

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'string') return `'${v}'`
  if (typeof v === 'number' || typeof v === 'boolean' || v === undefined) return String(v)
  return Array.isArray(v) ? 'an array' : typeof v
}

const KEYS = ['disk', 'rw', 'bs', 'iodepth', 'numjobs', 'queues', 'size', 'offset', 'numIos', 'runtimeNs', 'rwmixread', 'seed', 'verify', 'verifyState', 'fua', 'fsync', 'batch', 'contiguous', 'pageOffset', 'latency'] as const
const RW: readonly FioRw[] = ['read', 'write', 'randread', 'randwrite', 'randrw', 'rw', 'readwrite']

function int(o: Record<string, unknown>, k: string, dflt: number, min: number, max: number): number {
  const v = o[k] ?? dflt
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new InvalidArgumentError('fio', `opts.${k}`, `must be an integer from ${min} to ${max}, got ${describe(o[k])}`)
  }
  return v
}

function bool(o: Record<string, unknown>, k: string, dflt: boolean): boolean {
  const v = o[k] ?? dflt
  if (typeof v !== 'boolean') throw new InvalidArgumentError('fio', `opts.${k}`, `must be a boolean, got ${describe(o[k])}`)
  return v
}

/**
 * Runs the workload on sys and resolves with what it did (see FioResult). Called from test code,
 * never from inside a task of the system. Bad options throw an InvalidArgumentError naming them.
 */
export async function fio(sys: System, opts: FioOptions): Promise<FioResult> {
  if (sys === null || typeof sys !== 'object' || !('sched' in sys)) throw new InvalidArgumentError('fio', 'sys', 'must be a System from boot()')
  if (currentOrNull()?.sys === sys) throw new DmalabError('fio() called from inside a task: user-space calls are made from test code, not from kernel code')
  if (opts === null || typeof opts !== 'object' || Array.isArray(opts)) throw new InvalidArgumentError('fio', 'opts', `must be an object, got ${describe(opts)}`)
  const o = opts as unknown as Record<string, unknown>
  for (const k of Object.keys(o)) if (!(KEYS as readonly string[]).includes(k)) throw new InvalidArgumentError('fio', `opts.${k}`, `is not an option (options: ${KEYS.join(', ')})`)
  const bs = blockState(sys)
  if (typeof opts.disk !== 'string') throw new InvalidArgumentError('fio', 'opts.disk', `must be a disk name, got ${describe(opts.disk)}`)
  const disk = bs.byName(opts.disk)
  if (disk === undefined) throw new InvalidArgumentError('fio', 'opts.disk', `'${opts.disk}' is not a disk of ${sys.name} (disks: ${bs.disks.map((d) => d.disk_name).join(', ') || 'none'})`)
  if (!RW.includes(opts.rw)) throw new InvalidArgumentError('fio', 'opts.rw', `must be one of ${RW.join(', ')}, got ${describe(opts.rw)}`)
  const q = disk.queue
  const lbs = q.limits.logical_block_size
  const diskBytes = disk._capacity * SECTOR_SIZE
  const bsz = int(o, 'bs', 4096, lbs, MAX_BS)
  if (bsz % lbs !== 0) throw new InvalidArgumentError('fio', 'opts.bs', `must be a whole number of ${lbs}-byte logical blocks, got ${bsz}`)
  const iodepth = int(o, 'iodepth', 1, 1, 65536)
  const numjobs = int(o, 'numjobs', 1, 1, 256)
  const offset = int(o, 'offset', 0, 0, Math.max(0, diskBytes - bsz))
  if (offset % lbs !== 0) throw new InvalidArgumentError('fio', 'opts.offset', `must be a whole number of ${lbs}-byte logical blocks, got ${offset}`)
  const size = int(o, 'size', diskBytes - offset, bsz, diskBytes - offset)
  const rwmixread = int(o, 'rwmixread', 50, 0, 100)
  const seed = int(o, 'seed', sys.seed >>> 0, 0, 0xffff_ffff)
  const fsyncN = int(o, 'fsync', 0, 0, 1 << 30)
  const batch = int(o, 'batch', 1, 1, 65536)
  const pageOffset = int(o, 'pageOffset', 0, 0, PAGE_SIZE - lbs)
  if (pageOffset % lbs !== 0) throw new InvalidArgumentError('fio', 'opts.pageOffset', `must be a multiple of the logical block size (${lbs}), got ${pageOffset}`)
  if (Math.ceil((pageOffset + bsz) / PAGE_SIZE) > 256) throw new InvalidArgumentError('fio', 'opts.bs', `with pageOffset ${pageOffset} needs more than 256 pages per I/O`)
  const runtimeNs = o['runtimeNs'] ?? Number.POSITIVE_INFINITY
  if (typeof runtimeNs !== 'number' || !(runtimeNs > 0)) throw new InvalidArgumentError('fio', 'opts.runtimeNs', `must be a positive number of ns, got ${describe(o['runtimeNs'])}`)
  const fua = bool(o, 'fua', false)
  const contiguous = bool(o, 'contiguous', false)
  const latency = bool(o, 'latency', true)
  const v = o['verify'] ?? false
  if (v !== true && v !== false && v !== 'header' && v !== 'full') throw new InvalidArgumentError('fio', 'opts.verify', `must be true, false, 'header' or 'full', got ${describe(v)}`)
  const verify: 0 | 1 | 2 = v === false ? 0 : v === 'header' ? 1 : 2
  const regionBlocks = Math.floor(size / bsz) * (bsz / lbs)
  const perJobIos = Math.floor(size / bsz / numjobs)
  if (perJobIos < 1 && (opts.rw === 'read' || opts.rw === 'write' || opts.rw === 'rw' || opts.rw === 'readwrite')) {
    throw new InvalidArgumentError('fio', 'opts.size', `(${size} bytes) gives each of ${numjobs} job(s) less than one ${bsz}-byte I/O`)
  }
  const numIos = int(o, 'numIos', Math.max(1, perJobIos), 0, Number.MAX_SAFE_INTEGER)
  let queues: number[]
  if (o['queues'] === undefined) queues = Array.from({ length: numjobs }, (_, j) => j % q.nr_hw_queues)
  else {
    const qs = o['queues']
    if (!Array.isArray(qs) || qs.length !== numjobs || qs.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x >= q.nr_hw_queues)) {
      throw new InvalidArgumentError('fio', 'opts.queues', `must list ${numjobs} submission context(s), each from 0 to ${q.nr_hw_queues - 1}, got ${describe(qs)}`)
    }
    queues = qs as number[]
  }
  let state: FioVerifyState
  if (o['verifyState'] !== undefined) {
    const vs = o['verifyState'] as FioVerifyState
    if (!(vs instanceof FioVerifyState)) throw new InvalidArgumentError('fio', 'opts.verifyState', 'must be the verifyState of an earlier fio result')
    if (vs.disk !== disk.disk_name || vs.blockSize !== lbs) throw new InvalidArgumentError('fio', 'opts.verifyState', `belongs to ${vs.disk} (${vs.blockSize}-byte blocks), not ${disk.disk_name}`)
    state = vs
  } else state = new FioVerifyState(disk.disk_name, lbs, mix(seed, 0x5eed))

  const res: FioResult = {
    ios: 0, reads: 0, writes: 0, flushes: 0, bytes: 0, readBytes: 0, writeBytes: 0, virtualNs: 0, iops: 0, bandwidth: 0,
    cpuBusyNs: 0, cpuUtilisation: 0, errors: 0, errorStatuses: {}, verified: 0, verifyErrors: 0, verifySkipped: 0,
    verifyErrorSamples: [], lat: null, verifyState: state,
  }
  const cpu0 = sys.cpu
  const start = sys.clock
  const sh: Shared = {
    sys, bs, disk, lbs, blkPerIo: bsz / lbs, state, verify, track: verify !== 0 || o['verifyState'] !== undefined, marks: new Map(), wq: init_waitqueue_head(), completions: 0,
    lat: latency ? [] : null, res, start, runtimeNs,
  }
  const sequential = opts.rw === 'read' || opts.rw === 'write' || opts.rw === 'rw' || opts.rw === 'readwrite'
  const mode: Mode = { rw: opts.rw, numjobs, rwmixread, fsyncN, batch, fua, sequential, regionStart: offset / lbs, regionIos: regionBlocks / (bsz / lbs), iodepth, numIos, pageOffset, contiguous, seed, bsz }
  const runs: Promise<void>[] = []
  for (let j = 0; j < numjobs; j++) runs.push(sys.run(() => runJob(sh, mode, j, queues[j]!), `fio/${j}`))
  const outcomes = await Promise.allSettled(runs)
  const failed = outcomes.find((x) => x.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  res.virtualNs = sys.clock - start
  const secs = res.virtualNs / 1e9
  res.iops = secs > 0 ? res.ios / secs : 0
  res.bandwidth = secs > 0 ? res.bytes / secs : 0
  const cpu1 = sys.cpu
  res.cpuBusyNs = cpu1.busyNs - cpu0.busyNs
  const span = cpu1.busyNs - cpu0.busyNs + (cpu1.idleNs - cpu0.idleNs)
  res.cpuUtilisation = span > 0 ? res.cpuBusyNs / span : 0
  if (sh.lat !== null && sh.lat.length > 0) res.lat = latencyOf(sh.lat)
  return res
}

function latencyOf(lat: number[]): FioLatency {
  const a = Float64Array.from(lat).sort()
  let sum = 0
  for (const x of a) sum += x
  return { minNs: a[0]!, maxNs: a[a.length - 1]!, meanNs: sum / a.length, p50Ns: pct(a, 50), p90Ns: pct(a, 90), p99Ns: pct(a, 99), p999Ns: pct(a, 99.9) }
}

function pct(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

interface Mode {
  rw: FioRw
  numjobs: number
  rwmixread: number
  fsyncN: number
  batch: number
  fua: boolean
  sequential: boolean
  regionStart: number
  regionIos: number
  iodepth: number
  numIos: number
  pageOffset: number
  contiguous: boolean
  seed: number
  bsz: number
}

// ---------------------------------------------------------------------- a job

async function runJob(sh: Shared, m: Mode, id: number, cpu: number): Promise<void> {
  current('fio')
  const job: Job = {
    sh, id, cpu, slots: [], free: [], done: [], inflight: 0, issued: 0, target: m.numIos,
    rng: mix(m.seed, id + 1), seq: 0, rangeStart: 0, rangeIos: 0, writesSinceFsync: 0, seen: 0,
    cond: () => false, scratch: new Uint8Array(m.bsz), view: new DataView(new ArrayBuffer(0)),
  }
  const j = job as { -readonly [K in keyof Job]: Job[K] }
  j.view = new DataView(job.scratch.buffer)
  j.cond = () => job.done.length > 0 || sh.completions !== job.seen
  // The job's sequential range: its share of the region.
  const share = Math.floor(m.regionIos / m.numjobs)
  j.rangeStart = m.sequential ? id * share : 0
  j.rangeIos = m.sequential ? Math.max(1, share) : m.regionIos
  // Buffers: one per slot (plus one for flushes).
  const depth = m.iodepth
  try {
    for (let i = 0; i < depth; i++) {
      const buf = allocBuffer(sh.bs, m.bsz, m.pageOffset, m.contiguous)
      if (buf === null) throw new DmalabError(`fio: out of memory allocating ${depth} buffers of ${m.bsz} bytes`)
      const bio = new Bio(buf.pieces.length)
      for (const p of buf.pieces) bio.bi_io_vec.push({ bv_page: p.page, bv_offset: p.off, bv_len: p.len })
      const slot: Slot = { job, bio, buf, op: 0, lba: 0, gen: 0, startNs: 0 }
      job.slots.push(slot)
      job.free.push(slot)
    }
    initPattern(job)
    await jobLoop(job, m)
  } finally {
    for (const s of job.slots) freeBuffer(sh.bs, s.buf)
    queueIdle(sh.disk.queue)
  }
}

function initPattern(job: Job): void {
  const v = job.view
  let x = job.rng | 1
  for (let o = 0; o + 4 <= v.byteLength; o += 4) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    v.setUint32(o, x >>> 0, true)
  }
}

/** A flush is owed: fsync writes since the last one (it is issued even after the last write). */
function fsyncDue(job: Job, m: Mode): boolean {
  return m.fsyncN > 0 && job.writesSinceFsync >= m.fsyncN
}

function stopIssuing(job: Job, m: Mode): boolean {
  const sh = job.sh
  if (fsyncDue(job, m)) return false
  return job.issued >= job.target || sh.sys.machine.clock.now - sh.start >= sh.runtimeNs
}

async function jobLoop(job: Job, m: Mode): Promise<void> {
  const sh = job.sh
  for (;;) {
    while (job.done.length > 0) reap(job, job.done.shift()!)
    if (stopIssuing(job, m) && job.inflight === 0) return
    let blocked = false
    // Keep iodepth in flight: submit into every free slot, `batch` at a time under one plug.
    while (!blocked && job.free.length > 0 && !stopIssuing(job, m)) {
      const plug = m.batch > 1 ? blk_start_plug() : null
      for (let k = 0; k < m.batch && job.free.length > 0 && !stopIssuing(job, m); k++) {
        const slot = job.free[job.free.length - 1]!
        if (!prepare(job, slot, m)) {
          blocked = true
          break
        }
        job.free.pop()
        job.inflight++
        if (slot.op !== 2) job.issued++
        slot.startNs = sh.sys.machine.clock.now
        await submit_bio(slot.bio)
      }
      if (plug !== null) blk_finish_plug(plug)
    }
    if (job.done.length > 0) continue
    if (job.inflight === 0 && !blocked && stopIssuing(job, m)) return
    if (job.inflight > 0 || blocked) {
      job.seen = sh.completions
      await wait_event(sh.wq, job.cond)
    }
  }
}

/** Chooses the slot's next I/O and prepares its bio and buffer; false if it must wait (overlap). */
function prepare(job: Job, slot: Slot, m: Mode): boolean {
  const sh = job.sh
  const bio = slot.bio
  // A flush every fsync writes.
  if (fsyncDue(job, m)) {
    job.writesSinceFsync = 0
    slot.op = 2
    resetBio(bio, sh.disk, REQ_OP_FLUSH | REQ_PREFLUSH, 0, 0, 0, job.cpu, slot)
    return true
  }
  let isRead: boolean
  switch (m.rw) {
    case 'read':
    case 'randread':
      isRead = true
      break
    case 'write':
    case 'randwrite':
      isRead = false
      break
    default:
      isRead = rand(job, 100) < m.rwmixread
  }
  const n = sh.blkPerIo
  let lba = -1
  for (let tries = 0; tries < (m.sequential ? 1 : 4); tries++) {
    const idx = m.sequential ? job.rangeStart + (job.seq % job.rangeIos) : rand(job, m.regionIos)
    const cand = m.regionStart + idx * n
    if (sh.verify === 0 || free(sh, cand, n, isRead)) {
      lba = cand
      break
    }
  }
  if (lba < 0) return false
  if (m.sequential) job.seq++
  slot.op = isRead ? 0 : 1
  slot.lba = lba
  if (sh.verify !== 0) mark(sh, lba, n, isRead ? 1 : -1)
  const sector = (lba * sh.lbs) / SECTOR_SIZE
  if (isRead) {
    if (sh.verify !== 0) poison(slot)
    resetBio(bio, sh.disk, REQ_OP_READ, sector, m.bsz, bio.bi_io_vec.length, job.cpu, slot)
  } else {
    slot.gen = sh.state._nextGen++
    if (sh.state._nextGen > 0xffff_fff0) sh.state._nextGen = 1
    fillWrite(job, slot)
    resetBio(bio, sh.disk, REQ_OP_WRITE | (m.fua ? REQ_FUA : 0), sector, m.bsz, bio.bi_io_vec.length, job.cpu, slot)
    job.writesSinceFsync++
  }
  return true
}

function resetBio(bio: Bio, disk: Gendisk, opf: number, sector: number, bytes: number, vcnt: number, cpu: number, slot: Slot): void {
  bio.bi_bdev = disk
  bio.bi_opf = opf
  bio.bi_status = BLK_STS_OK
  bio.bi_iter.bi_sector = sector
  bio.bi_iter.bi_size = bytes
  bio.bi_iter.bi_idx = 0
  bio.bi_iter.bi_bvec_done = 0
  bio.bi_vcnt = vcnt
  bio.bi_cpu = cpu
  bio.bi_end_io = fioEndIo
  bio.bi_private = slot
  bio._parent = null
  bio._remaining = 1
  bio._ended = false
}

function free(sh: Shared, lba: number, n: number, isRead: boolean): boolean {
  for (let b = lba; b < lba + n; b++) {
    const v = sh.marks.get(b)
    if (v === undefined) continue
    if (!isRead || v < 0) return false
  }
  return true
}

function mark(sh: Shared, lba: number, n: number, d: number): void {
  for (let b = lba; b < lba + n; b++) {
    const v = (sh.marks.get(b) ?? 0) + d
    if (v === 0) sh.marks.delete(b)
    else sh.marks.set(b, v)
  }
}

function unmark(sh: Shared, lba: number, n: number, isRead: boolean): void {
  mark(sh, lba, n, isRead ? -1 : 1)
}

/** Poisons each block's magic in a read buffer (CPU stores), so a read that never lands is caught. */
function poison(slot: Slot): void {
  const lbs = slot.job.sh.lbs
  for (const p of slot.buf.pieces) {
    const base = addrOf(p.page, p.off)
    for (let o = 0; o < p.len; o += lbs) mem_write32(base, o, POISON)
  }
}

/** Builds the blocks of a write (headers, and payloads when verifying in full) and stores them. */
function fillWrite(job: Job, slot: Slot): void {
  const sh = job.sh
  const v = job.view
  const lbs = sh.lbs
  const tag = sh.state._tag
  for (let b = 0, at = 0; b < sh.blkPerIo; b++, at += lbs) {
    const lba = slot.lba + b
    v.setUint32(at, MAGIC, true)
    v.setUint32(at + 4, lba >>> 0, true)
    v.setUint32(at + 8, Math.floor(lba / 0x1_0000_0000), true)
    v.setUint32(at + 12, slot.gen, true)
    v.setUint32(at + 16, tag, true)
    v.setUint32(at + 20, lbs, true)
    if (sh.verify === 2) fillPayload(v, at, lbs, lba, slot.gen, tag)
  }
  let pos = 0
  for (const p of slot.buf.pieces) {
    mem_write_bytes(addrOf(p.page, p.off), job.scratch.subarray(pos, pos + p.len))
    pos += p.len
  }
}

function reap(job: Job, slot: Slot): void {
  const sh = job.sh
  const res = sh.res
  job.inflight--
  job.free.push(slot)
  const status = slot.bio.bi_status
  const n = sh.blkPerIo
  res.ios++
  if (slot.op === 2) {
    res.flushes++
  } else if (slot.op === 0) {
    res.reads++
  } else {
    res.writes++
  }
  if (status !== BLK_STS_OK) {
    res.errors++
    const name = blk_status_name(status)
    res.errorStatuses[name] = (res.errorStatuses[name] ?? 0) + 1
    if (slot.op === 1 && sh.track) for (let b = 0; b < n; b++) sh.state._gens.delete(slot.lba + b)
    if (slot.op !== 2 && sh.verify !== 0) unmark(sh, slot.lba, n, slot.op === 0)
    return
  }
  if (slot.op === 2) return
  const bytes = n * sh.lbs
  res.bytes += bytes
  if (slot.op === 1) {
    res.writeBytes += bytes
    if (sh.track) {
      // A header-only write (no payload pattern) is recorded negated: 'full' checks its header only.
      const g = sh.verify === 2 ? slot.gen : -slot.gen
      for (let b = 0; b < n; b++) sh.state._gens.set(slot.lba + b, g)
    }
    if (sh.verify !== 0) unmark(sh, slot.lba, n, false)
    return
  }
  res.readBytes += bytes
  if (sh.verify !== 0) {
    verifyRead(job, slot)
    unmark(sh, slot.lba, n, true)
  }
}

function verifyRead(job: Job, slot: Slot): void {
  const sh = job.sh
  const res = sh.res
  const lbs = sh.lbs
  const tag = sh.state._tag
  let b = 0
  for (const p of slot.buf.pieces) {
    const data = mem_read_bytes(addrOf(p.page, p.off), p.len)
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength)
    for (let at = 0; at < p.len; at += lbs, b++) {
      const lba = slot.lba + b
      const g = sh.state._gens.get(lba)
      if (g === undefined) {
        res.verifySkipped++
        continue
      }
      res.verified++
      const problem = checkBlock(v, at, lbs, lba, Math.abs(g), tag, sh.verify === 2 && g > 0)
      if (problem !== null) {
        res.verifyErrors++
        if (res.verifyErrorSamples.length < 8) res.verifyErrorSamples.push(`verify: ${sh.disk.disk_name} LBA ${lba}: ${problem}`)
      }
    }
  }
}

function checkBlock(v: DataView, at: number, lbs: number, lba: number, gen: number, tag: number, full: boolean): string | null {
  const magic = v.getUint32(at, true)
  if (magic !== MAGIC) {
    return magic === POISON
      ? 'the read did not write the buffer (the poisoned header is still there)'
      : `bad header magic 0x${magic.toString(16).padStart(8, '0')} (not a block this fio wrote)`
  }
  const hl = v.getUint32(at + 4, true) + v.getUint32(at + 8, true) * 0x1_0000_0000
  const hg = v.getUint32(at + 12, true)
  const ht = v.getUint32(at + 16, true)
  if (ht !== tag) return `the block holds data of another fio run (tag 0x${ht.toString(16)})`
  if (hl !== lba) return `the block holds LBA ${hl}'s data (generation ${hg}): misdirected`
  if (hg !== gen) return `stale data: generation ${hg}, expected ${gen}${hg < gen ? ' (a lost write or a stale read)' : ''}`
  if (full) {
    const off = checkPayload(v, at, lbs, lba, gen, tag)
    if (off >= 0) return `payload corrupt at byte ${off} of the block`
  }
  return null
}
