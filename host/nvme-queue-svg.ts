/**
 * An NVMe I/O queue pair as an SVG picture, from a live run: the submission queue's entries with
 * the command each holds, the completion queue's entries with their phase tag, the controller's
 * SQ head and tail and CQ tail and head, and the driver's sq_tail, cq_head and expected phase.
 *
 * The state is looked at, never touched: the controller's side through NvmeController.queue() (a
 * read of its queue state, as a debugger would; the SQ tail and CQ head are the last doorbell
 * values it took), the entries from the CPU's view of the queue memory (cpuView), the driver's
 * side from its `struct nvme_queue` (pci_get_drvdata() of the PCI device, then dev.queues[qid]).
 *
 * Who owns an entry (NVMe 1.4 §4.1, §4.6):
 * - SQ: from the controller's head up to (not including) the tail doorbell, commands the driver
 *   has posted and the controller has not fetched; from the tail doorbell to the driver's sq_tail,
 *   commands written but not yet rung; the rest is free for the driver (a fetched command's slot
 *   is free even while the command runs).
 * - CQ: the driver consumes entries from cq_head while their phase tag equals the phase it
 *   expects (flipped at each wrap); those are posted, not yet consumed. The rest hold the previous
 *   lap's phase: consumed (or never written).
 */

import type { System } from '../kernel/index.js'
import { PAGE_OFFSET, pci_get_drvdata } from '../kernel/index.js'
import type { NvmeController } from '../devices/index.js'
import type { NvmeDev } from '../drivers/nvme/nvme_defs.js'
import { NVME_CQE_SIZE, NVME_SQE_SIZE } from '../drivers/nvme/nvme_hw.js'
import { cpuView, svgHeader, xmlEscape } from './ring-svg.js'

export type SqOwner = 'posted' | 'written' | 'free'
export type CqOwner = 'posted' | 'consumed'

export interface SqCell {
  readonly index: number
  readonly owner: SqOwner
  /** All zeros: never written since the queue was allocated. */
  readonly empty: boolean
  readonly opcode: number
  readonly cid: number
}

export interface CqCell {
  readonly index: number
  readonly owner: CqOwner
  /** All zeros: never written since the queue was allocated. */
  readonly empty: boolean
  readonly phase: number
  readonly cid: number
  /** The SQ head the controller reported in the entry. */
  readonly sqHead: number
}

export interface NvmeQueueSnapshot {
  readonly device: string
  readonly qid: number
  readonly time: number
  readonly depth: number
  /** The controller's view: SQ head (next to fetch), SQ tail doorbell, CQ tail (next to post), CQ head doorbell, its phase. */
  readonly ctrl: {
    readonly sqHead: number
    readonly sqTail: number
    readonly cqTail: number
    readonly cqHead: number
    readonly phase: number
  }
  /** The driver's `struct nvme_queue`. */
  readonly driver: { readonly sqTail: number; readonly cqHead: number; readonly cqPhase: number }
  readonly sq: readonly SqCell[]
  readonly cq: readonly CqCell[]
}

/** The state of I/O queue pair qid of the controller now (see the module comment). */
export function snapshotNvmeQueues(
  sys: System,
  ctrl: NvmeController,
  qid: number,
): NvmeQueueSnapshot {
  const pdev = sys.pciDevices.find((p) => p.name === ctrl.name)
  const dev = pdev === undefined ? null : (pci_get_drvdata(pdev) as NvmeDev | null)
  const q = dev?.queues[qid]
  if (q === undefined) throw new Error(`${ctrl.name}: no driver bound or no queue ${qid}`)
  const s = ctrl.queue('sq', qid)
  const c = ctrl.queue('cq', qid)
  if (s === undefined || c === undefined)
    throw new Error(`${ctrl.name}: the controller has no queue pair ${qid}`)
  const depth = q.q_depth
  const sqb = cpuView(sys, q.sq_cmds - PAGE_OFFSET, depth * NVME_SQE_SIZE)
  const cqb = cpuView(sys, q.cqes - PAGE_OFFSET, depth * NVME_CQE_SIZE)
  const sv = new DataView(sqb.buffer)
  const cv = new DataView(cqb.buffer)
  const sq: SqCell[] = []
  const dist = (from: number, to: number): number => (to - from + depth) % depth
  for (let i = 0; i < depth; i++) {
    const owner: SqOwner =
      dist(s.head, i) < dist(s.head, s.tail)
        ? 'posted'
        : dist(s.tail, i) < dist(s.tail, q.sq_tail)
          ? 'written'
          : 'free'
    sq.push({
      index: i,
      owner,
      empty: sqb.subarray(i * NVME_SQE_SIZE, (i + 1) * NVME_SQE_SIZE).every((b) => b === 0),
      opcode: sqb[i * NVME_SQE_SIZE]!,
      cid: sv.getUint16(i * NVME_SQE_SIZE + 2, true),
    })
  }
  const posted = new Set<number>()
  for (let j = q.cq_head, ph = q.cq_phase, n = 0; n < depth; n++) {
    if ((cv.getUint16(j * NVME_CQE_SIZE + 14, true) & 1) !== ph) break
    posted.add(j)
    if (++j === depth) {
      j = 0
      ph ^= 1
    }
  }
  const cq: CqCell[] = []
  for (let i = 0; i < depth; i++) {
    const b = i * NVME_CQE_SIZE
    cq.push({
      index: i,
      owner: posted.has(i) ? 'posted' : 'consumed',
      empty: cqb.subarray(b, b + NVME_CQE_SIZE).every((x) => x === 0),
      phase: cv.getUint16(b + 14, true) & 1,
      cid: cv.getUint16(b + 12, true),
      sqHead: cv.getUint16(b + 8, true),
    })
  }
  return {
    device: ctrl.name,
    qid,
    time: sys.machine.clock.now,
    depth,
    ctrl: { sqHead: s.head, sqTail: s.tail, cqTail: c.tail, cqHead: c.head, phase: c.phase ?? 0 },
    driver: { sqTail: q.sq_tail, cqHead: q.cq_head, cqPhase: q.cq_phase },
    sq,
    cq,
  }
}

const SQ_FILL: Record<SqOwner, string> = { posted: '#7aa6e0', written: '#f2c45a', free: '#e6e6e6' }
const CQ_FILL: Record<CqOwner, string> = { posted: '#8fd18f', consumed: '#e6e6e6' }
const OPCODES: Record<number, string> = { 0: 'flush', 1: 'write', 2: 'read', 8: 'wzero' }

/** The snapshot as a standalone SVG document. Deterministic: the same snapshot gives the same text. */
export function nvmeQueueSvg(s: NvmeQueueSnapshot, opts: { title?: string } = {}): string {
  const W = 54
  const H = 40
  const X0 = 60
  const width = X0 + s.depth * W + 20
  const title =
    opts.title ?? `${s.device} I/O queue pair ${s.qid} at ${s.time} ns: ${s.depth} entries each`
  const sqY = 96
  const cqY = sqY + H + 96
  const legendY = cqY + H + 48
  const height = legendY + 6 * 18 + 10
  const out: string[] = []
  out.push(...svgHeader(width, height, title))
  out.push(
    `  <text x="20" y="40">controller: SQ head ${s.ctrl.sqHead}, SQ tail doorbell ${s.ctrl.sqTail}; CQ tail ${s.ctrl.cqTail}, CQ head doorbell ${s.ctrl.cqHead}, phase ${s.ctrl.phase}</text>`,
  )
  out.push(
    `  <text x="20" y="56">driver: sq_tail ${s.driver.sqTail}; cq_head ${s.driver.cqHead}, cq_phase ${s.driver.cqPhase} (the phase it expects)</text>`,
  )
  const marks = (y: number, i: number, above: string[], below: string[]): void => {
    const cx = X0 + i * W + W / 2
    if (above.length > 0)
      out.push(
        `    <text x="${cx}" y="${y - 6}" text-anchor="middle" font-weight="bold" fill="#1a4fa0">${above.join('/')}</text>`,
      )
    if (below.length > 0)
      out.push(
        `    <text x="${cx}" y="${y + H + 14}" text-anchor="middle" font-weight="bold" fill="#2b7a2b">${below.join('/')}</text>`,
      )
  }
  out.push(`  <text x="20" y="${sqY + H / 2 + 4}" font-weight="bold">SQ</text>`)
  for (const c of s.sq) {
    const x = X0 + c.index * W
    out.push(`  <g class="sqe ${c.owner}" data-index="${c.index}">`)
    out.push(
      `    <rect x="${x}" y="${sqY}" width="${W}" height="${H}" fill="${SQ_FILL[c.owner]}" stroke="#333333"/>`,
    )
    out.push(`    <text x="${x + W / 2}" y="${sqY + 13}" text-anchor="middle">${c.index}</text>`)
    out.push(
      `    <text x="${x + W / 2}" y="${sqY + 25}" text-anchor="middle" font-size="9">${c.empty ? 'empty' : (OPCODES[c.opcode] ?? `op ${c.opcode}`)}</text>`,
    )
    out.push(
      `    <text x="${x + W / 2}" y="${sqY + 36}" text-anchor="middle" font-size="8">${c.empty ? '' : `cid ${c.cid}`}</text>`,
    )
    marks(
      sqY,
      c.index,
      [
        ...(c.index === s.ctrl.sqHead ? ['head'] : []),
        ...(c.index === s.ctrl.sqTail ? ['tail'] : []),
      ],
      c.index === s.driver.sqTail ? ['sq_tail'] : [],
    )
    out.push('  </g>')
  }
  out.push(`  <text x="20" y="${cqY + H / 2 + 4}" font-weight="bold">CQ</text>`)
  for (const c of s.cq) {
    const x = X0 + c.index * W
    out.push(`  <g class="cqe ${c.owner}" data-index="${c.index}">`)
    out.push(
      `    <rect x="${x}" y="${cqY}" width="${W}" height="${H}" fill="${CQ_FILL[c.owner]}" stroke="#333333"/>`,
    )
    out.push(`    <text x="${x + W / 2}" y="${cqY + 13}" text-anchor="middle">${c.index}</text>`)
    out.push(
      `    <text x="${x + W / 2}" y="${cqY + 25}" text-anchor="middle" font-size="9" font-weight="bold">P=${c.phase}</text>`,
    )
    out.push(
      `    <text x="${x + W / 2}" y="${cqY + 36}" text-anchor="middle" font-size="8">${c.empty ? 'empty' : `cid ${c.cid}`}</text>`,
    )
    marks(
      cqY,
      c.index,
      [
        ...(c.index === s.ctrl.cqTail ? ['tail'] : []),
        ...(c.index === s.ctrl.cqHead ? ['head'] : []),
      ],
      c.index === s.driver.cqHead ? ['cq_head'] : [],
    )
    out.push('  </g>')
  }
  const legend: [string, string][] = [
    [SQ_FILL.posted, 'SQ: posted (head ≤ i < tail doorbell), not yet fetched by the controller'],
    [SQ_FILL.written, 'SQ: written by the driver, doorbell not yet rung'],
    [SQ_FILL.free, 'SQ: free for the driver (fetched, or never used)'],
    [CQ_FILL.posted, 'CQ: posted with the phase the driver expects, not yet consumed'],
    [CQ_FILL.consumed, "CQ: the previous lap's phase: consumed (or never written)"],
  ]
  let ly = legendY
  for (const [fill, text] of legend) {
    out.push(`  <rect x="20" y="${ly}" width="14" height="12" fill="${fill}" stroke="#333333"/>`)
    out.push(`  <text x="40" y="${ly + 10}">${xmlEscape(text)}</text>`)
    ly += 18
  }
  out.push(
    `  <text x="20" y="${ly + 10}">above: the controller's head/tail; below: the driver's sq_tail / cq_head</text>`,
  )
  out.push('</svg>')
  return out.join('\n') + '\n'
}
