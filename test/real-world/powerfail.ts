/**
 * The power-fail campaign of test/real-world/nvme-powerfail.test.ts: seeded random workloads of
 * writes (random blocks and sizes, some FUA) and flushes through the NVMe reference driver, a
 * power cut (NvmeController.powerFail()) at a random point — on the virtual clock while I/O is in
 * flight, or between two harness calls — and a check of the durable medium, read back through
 * the driver on another boot, against a model of what must have survived.
 *
 * The model, per 4 KiB block: a write is *required* when it completed before the crash and was
 * written with FUA, or a flush submitted after its completion completed before the crash. The
 * block must then hold the last required write's data or that of a later write to it (which may
 * or may not have survived); a block without a required write may hold any write's data or its
 * initial zeroes. Each block's data names its write and its block (a header and a payload derived
 * from them), so torn, misdirected or stale data is told apart from an allowed loss.
 *
 * The machinery: the controllers' media are SwitchBackends, so one workload system and one
 * verifier system serve many crash points. At the crash the workload controller's medium is
 * swapped for a scratch one (what the driver's recovery writes afterwards goes there), and the
 * crashed medium is attached to the verifier's controller and read through its driver (every
 * `rebootEvery`-th point boots a fresh system over it instead).
 */
import { MemoryBackend, type BlockBackend, type NvmeController } from '../../devices/index.js'
import { blockUser, type BootOptions, type System } from '../../kernel/index.js'
import { nvmeRig } from './tools.js'

/** A BlockBackend whose medium can be swapped (a disk moved between machines). */
export class SwitchBackend implements BlockBackend {
  readonly size: number
  target: BlockBackend
  constructor(target: BlockBackend) {
    this.size = target.size
    this.target = target
  }
  read(offset: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.target.read(offset, dst, dstOff, len)
  }
  write(offset: number, src: Uint8Array, srcOff: number, len: number): void {
    this.target.write(offset, src, srcOff, len)
  }
}

export const BLOCK = 4096
const MAGIC = 0x5046_4c54 // 'PFLT'

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The data of block `block` as written by write `id` (ids start at 1; 0 is "never written"). */
export function blockData(id: number, block: number, out: Uint8Array, off: number): void {
  const v = new DataView(out.buffer, out.byteOffset + off, BLOCK)
  v.setUint32(0, MAGIC, true)
  v.setUint32(4, id, true)
  v.setUint32(8, block, true)
  let x = (Math.imul(id, 0x9e3779b1) ^ Math.imul(block + 1, 0x85ebca6b)) >>> 0
  for (let i = 12; i < BLOCK; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    v.setUint32(i, x, true)
  }
}

const scratch = new Uint8Array(BLOCK)

/** Which write a block's bytes come from: its id, 0 for zeroes, or a description of what is wrong. */
export function decodeBlock(buf: Uint8Array, off: number, block: number): number | string {
  const b = buf.subarray(off, off + BLOCK)
  if (new BigUint64Array(buf.buffer, buf.byteOffset + off, BLOCK / 8).every((x) => x === 0n)) return 0
  const v = new DataView(b.buffer, b.byteOffset, BLOCK)
  if (v.getUint32(0, true) !== MAGIC) return `block ${block}: no header (torn or foreign data)`
  const id = v.getUint32(4, true)
  const at = v.getUint32(8, true)
  if (at !== block) return `block ${block}: holds block ${at}'s data of write ${id} (misdirected)`
  const want = scratch
  blockData(id, block, want, 0)
  if (Buffer.compare(want, b) !== 0) for (let i = 0; i < BLOCK; i++) if (want[i] !== b[i]) return `block ${block}: write ${id}'s payload differs at byte ${i} (torn or corrupt)`
  return id
}

interface WriteOp {
  id: number
  block: number
  count: number
  fua: boolean
  /** Completed without error before the crash. */
  done: boolean
  /** Its data must have survived. */
  required: boolean
}

export interface CampaignOptions {
  /** The workload system's platform. */
  boot: BootOptions
  /** Crash points to run. */
  points: number
  seed: number
  /** Device size (default 256 KiB: 64 blocks, so later writes often supersede earlier ones). */
  sizeBytes?: number
  /** The controller's cache (default: its 64 MiB); a small one writes back on its own. */
  cacheBytes?: number
  /** I/O queues (default 3). */
  queues?: number
  /** Boot a fresh system over the crashed medium every this many points (default 100). */
  rebootEvery?: number
}

export interface CampaignResult {
  points: number
  crashesDuringIo: number
  crashesBetweenCalls: number
  writesIssued: number
  /** Writes that completed before the crash: each was checked block by block. */
  writesChecked: number
  /** Of those, how many had to survive (FUA, or flushed). */
  writesRequired: number
  flushesCompleted: number
  /** Completed writes with at least one block lost (neither present nor superseded): allowed, none required. */
  writesLostAsAllowed: number
  /** Blocks holding the data of a write still in flight at the crash. */
  inflightBlocksSurvived: number
  blocksChecked: number
  bytesLost: number
  fullReboots: number
  /** What went wrong: each a message naming the point and the block. */
  violations: string[]
  /** Reports on the workload system before any crash, and on the verifier systems. */
  reports: string[]
  /** Reports on the workload system after a power cut (the driver finds a dead controller), by kind. */
  postCrashReports: Map<string, number>
  virtualNs: number
}

/** Reads the given blocks (merged into runs of up to 32 blocks) through the driver, spread over the queues; the rest stays zero. */
async function readBlocks(sys: System, queues: number, size: number, want: boolean[]): Promise<Uint8Array> {
  const blk = blockUser(sys)
  const out = new Uint8Array(size)
  const runs: [number, number][] = []
  for (let b = 0; b < want.length; b++) {
    if (!want[b]) continue
    const last = runs[runs.length - 1]
    if (last !== undefined && last[0] + last[1] === b && last[1] < 32) last[1]++
    else runs.push([b, 1])
  }
  await Promise.all(
    Array.from({ length: queues }, async (_, q) => {
      for (let i = q; i < runs.length; i += queues) {
        const [b, n] = runs[i]!
        out.set(await blk.read('nvme0n1', (b * BLOCK) / 512, (n * BLOCK) / 512, { queue: q }), b * BLOCK)
      }
    }),
  )
  return out
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignResult> {
  const size = o.sizeBytes ?? 256 << 10
  const blocks = size / BLOCK
  const queues = o.queues ?? 3
  const rebootEvery = o.rebootEvery ?? 100
  const rnd = prng(o.seed)
  const res: CampaignResult = {
    points: 0, crashesDuringIo: 0, crashesBetweenCalls: 0, writesIssued: 0, writesChecked: 0, writesRequired: 0,
    flushesCompleted: 0, writesLostAsAllowed: 0, inflightBlocksSurvived: 0, blocksChecked: 0, bytesLost: 0, fullReboots: 0,
    violations: [], reports: [], postCrashReports: new Map(), virtualNs: 0,
  }
  const ctrlOpts = { sizeBytes: size, ...(o.cacheBytes !== undefined ? { cacheBytes: o.cacheBytes } : {}) }
  const workMedium = new SwitchBackend(new MemoryBackend(size))
  const work = await nvmeRig({ ...o.boot, seed: o.seed }, { ...ctrlOpts, backend: workMedium }, { io_queues: queues })
  const verifyMedium = new SwitchBackend(new MemoryBackend(size))
  const verifier = await nvmeRig({ arch: 'x86_64', iommu: 'strict', seed: o.seed + 1 }, { sizeBytes: size, backend: verifyMedium }, { io_queues: 2 })
  const blk = blockUser(work.sys)
  let reportsSeen = 0
  let nextId = 1
  let calibrationNs = 0

  for (let point = 0; point <= o.points; point++) {
    // Point 0 calibrates: the workload runs to its end without a crash, for its virtual duration.
    const calibrating = point === 0
    workMedium.target = new MemoryBackend(size)
    const ctrl: NvmeController = work.ctrl
    const history: WriteOp[][] = Array.from({ length: blocks }, () => [])
    const writes: WriteOp[] = []
    const steps = 4 + Math.floor(rnd() * 9)
    const betweenCalls = !calibrating && rnd() < 0.25
    const crashAfterStep = Math.floor(rnd() * (steps + 1))
    let crashed = false
    let crashImage: BlockBackend | null = null
    const t0 = work.sys.clock
    const crash = (): void => {
      if (crashed) return
      crashed = true
      res.bytesLost += ctrl.powerFail()
      crashImage = workMedium.target
      workMedium.target = new MemoryBackend(size) // the recovery's writes land elsewhere
      const fresh = work.sys.reports.length
      if (fresh > reportsSeen) res.reports.push(...work.sys.reports.slice(reportsSeen).map((r) => `point ${point} (before the crash): ${r.kind}: ${r.message}`))
      reportsSeen = fresh
    }
    const ev = !calibrating && !betweenCalls ? work.sys.machine.clock.schedule(t0 + 1 + Math.floor(rnd() * calibrationNs * 1.1), () => {
      res.crashesDuringIo++
      crash()
    }) : null

    for (let step = 0; step < steps && !crashed; step++) {
      if (betweenCalls && step === crashAfterStep) {
        res.crashesBetweenCalls++
        crash()
        break
      }
      const nops = 1 + Math.floor(rnd() * queues)
      const busy = new Set<number>()
      const doneBefore = writes.filter((w) => w.done)
      const ops: Promise<void>[] = []
      for (let q = 0; q < nops; q++) {
        if (rnd() < 0.25) {
          ops.push(blk.flush('nvme0n1', { queue: q }).then(() => {
            if (crashed) return
            res.flushesCompleted++
            for (const w of doneBefore) w.required = true
          }, (e: unknown) => {
            if (!crashed) res.violations.push(`point ${point}: flush failed before the crash: ${String(e)}`)
          }))
          continue
        }
        const count = rnd() < 0.1 ? 33 + Math.floor(rnd() * 16) : 1 + Math.floor(rnd() * 8) // some beyond MDTS: split
        let block = Math.floor(rnd() * (blocks - count + 1))
        let tries = 0
        while (tries++ < 8 && Array.from({ length: count }, (_, i) => busy.has(block + i)).some(Boolean)) block = Math.floor(rnd() * (blocks - count + 1))
        if (Array.from({ length: count }, (_, i) => busy.has(block + i)).some(Boolean)) continue
        for (let i = 0; i < count; i++) busy.add(block + i)
        const w: WriteOp = { id: nextId++, block, count, fua: rnd() < 0.2, done: false, required: false }
        writes.push(w)
        res.writesIssued++
        for (let i = 0; i < count; i++) history[block + i]!.push(w)
        const data = new Uint8Array(count * BLOCK)
        for (let i = 0; i < count; i++) blockData(w.id, block + i, data, i * BLOCK)
        ops.push(blk.write('nvme0n1', (block * BLOCK) / 512, data, { queue: q, fua: w.fua }).then(() => {
          if (crashed) return
          w.done = true
          if (w.fua) w.required = true
        }, (e: unknown) => {
          if (!crashed) res.violations.push(`point ${point}: write ${w.id} failed before the crash: ${String(e)}`)
        }))
      }
      await Promise.all(ops)
    }
    if (calibrating) {
      calibrationNs = work.sys.clock - t0
      await blk.flush('nvme0n1')
      continue
    }
    if (!crashed) {
      // The workload ended before the crash time: the power goes now (between calls).
      if (ev !== null) {
        ev.cancelled = true
      }
      res.crashesBetweenCalls++
      crash()
    }
    // The workload system: its driver finds the controller reset (timeouts, then a reset) and goes on.
    try {
      await blk.flush('nvme0n1')
    } catch (e) {
      res.violations.push(`point ${point}: the driver did not recover from the power cut: ${String(e)}`)
    }
    for (const r of work.sys.reports.slice(reportsSeen)) res.postCrashReports.set(r.kind, (res.postCrashReports.get(r.kind) ?? 0) + 1)
    reportsSeen = work.sys.reports.length

    // Read the crashed medium through the driver on another machine.
    const image = crashImage!
    const direct = new Uint8Array(size)
    image.read(0, direct, 0, size)
    // Every block this run wrote is read through the driver; the others must still be zeroes.
    const touched = history.map((h) => h.length > 0)
    let got: Uint8Array
    if (point % rebootEvery === 0) {
      res.fullReboots++
      const fresh = await nvmeRig({ arch: 'riscv64', swiotlb: 'force', seed: o.seed + point }, { sizeBytes: size, backend: image }, { io_queues: 2 })
      got = await readBlocks(fresh.sys, 2, size, touched)
      await fresh.sys.unbind(fresh.sys.pciDevice('nvme0')!)
      res.reports.push(...fresh.sys.reports.map((r) => `point ${point} (fresh boot): ${r.kind}: ${r.message}`))
    } else {
      verifyMedium.target = image
      got = await readBlocks(verifier.sys, 2, size, touched)
      if (verifier.ctrl.cacheDirtyBytes !== 0) res.violations.push(`point ${point}: the verifier's cache holds dirty data`)
    }
    if (Buffer.compare(got, direct) !== 0) res.violations.push(`point ${point}: the driver read back something other than the medium holds (or an unwritten block is not zeroes)`)

    // The model.
    res.points++
    const lostWrites = new Set<WriteOp>()
    for (let b = 0; b < blocks; b++) {
      const h = history[b]!
      const found = decodeBlock(got, b * BLOCK, b)
      res.blocksChecked++
      if (typeof found === 'string') {
        res.violations.push(`point ${point} (seed ${o.seed}): ${found}`)
        continue
      }
      let r = -1
      for (let i = 0; i < h.length; i++) if (h[i]!.required) r = i
      const at = found === 0 ? -1 : h.findIndex((w) => w.id === found)
      if (found !== 0 && at < 0) {
        res.violations.push(`point ${point} (seed ${o.seed}): block ${b} holds write ${found}'s data, which was never written there in this run`)
        continue
      }
      if (at < r) {
        const w = h[r]!
        res.violations.push(`point ${point} (seed ${o.seed}): block ${b} lost write ${w.id} (${w.fua ? 'FUA' : 'flushed'}, blocks ${w.block}+${w.count}): it holds ${found === 0 ? 'zeroes' : `the older write ${found}`}`)
      }
      for (let i = at + 1; i < h.length; i++) if (h[i]!.done) lostWrites.add(h[i]!)
      if (at >= 0 && !h[at]!.done) res.inflightBlocksSurvived++
    }
    res.writesChecked += writes.filter((w) => w.done).length
    res.writesRequired += writes.filter((w) => w.required).length
    res.writesLostAsAllowed += lostWrites.size
  }
  await work.sys.unbind(work.sys.pciDevice('nvme0')!)
  await verifier.sys.unbind(verifier.sys.pciDevice('nvme0')!)
  res.reports.push(...verifier.sys.reports.map((r) => `verifier: ${r.kind}: ${r.message}`))
  res.virtualNs = work.sys.clock
  return res
}
