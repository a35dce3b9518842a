/**
 * The order of a CPU's stores to coherent memory, as the CPU made them and as they reached RAM —
 * what a device sees — as an SVG picture: program order on the left, on the right the order in
 * which the stores became visible interleaved with the device's reads, a line from each store to
 * where it landed (dashed to the stores still buffered at the end). Crossing lines are reordering; a
 * device read of a field whose latest store had not landed, after the device saw a later store, is
 * marked stale.
 *
 * On a weakly ordered machine (arm64, riscv64) stores to non-cacheable memory wait in the store
 * buffer (devices/machine/store-buffer.ts) and drain in a seeded order until a barrier. Stores have
 * no trace point: the caller says after each one what it stored (store()) and marks barriers
 * (mark()); the recorder then looks at RAM — never touching it — after each store, each mark and
 * each device access (the hardware tracer's `dma` events) to see which stores have landed since.
 * Stored values must differ from what the memory held before, or a store looks landed at once.
 */

import type { System } from '../kernel/index.js'
import type { DmaTraceEvent } from '../devices/index.js'
import { svgHeader, xmlEscape } from './ring-svg.js'

export interface RecordedStore {
  /** 0, 1, 2... in program order. */
  readonly index: number
  readonly label: string
  /** Offset in the watched range; a 32-bit little-endian value. */
  readonly off: number
  readonly value: number
}

/** What the memory side saw, in order. */
export type MemoryEvent =
  | { readonly what: 'landed'; readonly store: number }
  | {
      readonly what: 'read'
      readonly label: string
      readonly value: number
      /**
       * 'new': the latest store to the field had landed; 'not-yet': it had not, and the device had
       * seen no later store (harmless: it sees the old state, an OWN bit still clear); 'stale': it
       * had not, but the device had already seen a store that came after it in program order —
       * the reordering a barrier prevents (an OWN bit set over an old body).
       */
      readonly seen: 'new' | 'not-yet' | 'stale'
      readonly time: number
    }

/** The CPU side, in program order. */
export type ProgramEvent =
  | { readonly what: 'store'; readonly store: number }
  | { readonly what: 'mark'; readonly label: string }

export interface StoreOrderRecorder {
  /** A 32-bit CPU store of value at off, just made. */
  store(label: string, off: number, value: number): void
  /** A barrier (or anything else worth a row in program order), just executed. */
  mark(label: string): void
  stop(): void
  readonly stores: readonly RecordedStore[]
  readonly program: readonly ProgramEvent[]
  readonly memory: readonly MemoryEvent[]
}

/** Watches [pa, pa+len), a coherent buffer the device reaches at bus address bus. */
export function recordStoreOrder(
  sys: System,
  opts: { pa: number; len: number; bus: number; device: string },
): StoreOrderRecorder {
  const stores: RecordedStore[] = []
  const program: ProgramEvent[] = []
  const memory: MemoryEvent[] = []
  const pending = new Set<number>()
  /** The latest store, in program order, the device has read. */
  let observed = -1
  const word = (off: number): number => {
    const b = new Uint8Array(4)
    sys.machine.ram.read(opts.pa + off, b, 0, 4)
    return new DataView(b.buffer).getUint32(0, true)
  }
  /** Records, in program order, the pending stores now visible in RAM. */
  const look = (): void => {
    for (const i of [...pending].sort((a, b) => a - b)) {
      const s = stores[i]!
      if (word(s.off) === s.value) {
        pending.delete(i)
        memory.push({ what: 'landed', store: i })
      }
    }
  }
  const onDma = (e: DmaTraceEvent): void => {
    if (e.device !== opts.device || e.write || e.bus < opts.bus || e.bus >= opts.bus + opts.len)
      return
    look()
    const off = e.bus - opts.bus
    let latest: RecordedStore | undefined
    for (const s of stores) if (s.off === off) latest = s
    let seen: 'new' | 'not-yet' | 'stale' = 'new'
    if (latest !== undefined && pending.has(latest.index))
      seen = latest.index < observed ? 'stale' : 'not-yet'
    else if (latest !== undefined) observed = Math.max(observed, latest.index)
    memory.push({
      what: 'read',
      label: latest?.label ?? `+${off}`,
      value: word(off),
      seen,
      time: e.time,
    })
  }
  sys.machine.tracer.on('dma', onDma)
  return {
    stores,
    program,
    memory,
    store(label, off, value) {
      const s = { index: stores.length, label, off, value: value >>> 0 }
      stores.push(s)
      pending.add(s.index)
      program.push({ what: 'store', store: s.index })
      look()
    },
    mark(label) {
      look()
      program.push({ what: 'mark', label })
    },
    stop() {
      look()
      sys.machine.tracer.off('dma', onDma)
    },
  }
}

export interface StoreOrderPanel {
  readonly title: string
  readonly rec: StoreOrderRecorder
}

const hex = (v: number): string => `0x${v.toString(16)}`
const SEEN = { new: '', 'not-yet': ' (not yet)', stale: ' STALE' } as const
const SEEN_FILL = { new: '#1a4fa0', 'not-yet': '#777777', stale: '#c0392b' } as const

const landed = (rec: StoreOrderRecorder): number =>
  rec.memory.filter((e) => e.what === 'landed').length

/** The panels side by side as a standalone SVG document. Deterministic. */
export function storeOrderSvg(panels: readonly StoreOrderPanel[], opts: { title: string }): string {
  const PANEL = 500
  const ROW = 17
  const Y0 = 74
  const LX = 20
  const RX = 270
  const rows = Math.max(
    ...panels.map((p) =>
      Math.max(p.rec.program.length, p.rec.memory.length + 2 + p.rec.stores.length - landed(p.rec)),
    ),
  )
  const width = panels.length * PANEL + 10
  const height = Y0 + rows * ROW + 40
  const out: string[] = []
  out.push(...svgHeader(width, height, opts.title))
  panels.forEach((p, n) => {
    const ox = n * PANEL
    const { stores, program, memory } = p.rec
    out.push(`  <g class="panel" transform="translate(${ox},0)">`)
    out.push(
      `    <text x="${LX}" y="42" font-size="12" font-weight="bold">${xmlEscape(p.title)}</text>`,
    )
    out.push(`    <text x="${LX}" y="${Y0 - 12}" font-weight="bold">program order (CPU)</text>`)
    out.push(`    <text x="${RX}" y="${Y0 - 12}" font-weight="bold">reached memory / device</text>`)
    const leftY = new Map<number, number>()
    const rightY = new Map<number, number>()
    program.forEach((e, i) => {
      const y = Y0 + i * ROW
      if (e.what === 'store') {
        const s = stores[e.store]!
        leftY.set(s.index, y)
        out.push(
          `    <text x="${LX}" y="${y + 4}">${xmlEscape(`${s.label} = ${hex(s.value)}`)}</text>`,
        )
      } else
        out.push(
          `    <text x="${LX}" y="${y + 4}" font-weight="bold" fill="#2b7a2b">${xmlEscape(`── ${e.label} ──`)}</text>`,
        )
    })
    memory.forEach((e, i) => {
      const y = Y0 + i * ROW
      if (e.what === 'landed') {
        const s = stores[e.store]!
        rightY.set(s.index, y)
        out.push(
          `    <text x="${RX}" y="${y + 4}">${xmlEscape(`${s.label} = ${hex(s.value)}`)}</text>`,
        )
      } else {
        const text = `device reads ${e.label}: ${hex(e.value)}${SEEN[e.seen]}`
        out.push(
          `    <text x="${RX}" y="${y + 4}" font-weight="bold" fill="${SEEN_FILL[e.seen]}">${xmlEscape(text)}</text>`,
        )
      }
    })
    const buffered = stores.filter((s) => !rightY.has(s.index))
    if (buffered.length > 0) {
      const y = Y0 + memory.length * ROW + 6
      out.push(`    <text x="${RX}" y="${y + 4}" fill="#777777">still in the store buffer:</text>`)
      buffered.forEach((s, i) => {
        rightY.set(s.index, y + (i + 1) * ROW)
        out.push(
          `    <text x="${RX}" y="${y + (i + 1) * ROW + 4}" fill="#777777">${xmlEscape(`${s.label} = ${hex(s.value)}`)}</text>`,
        )
      })
    }
    for (const s of stores) {
      const a = leftY.get(s.index)!
      const b = rightY.get(s.index)!
      if (buffered.includes(s)) {
        out.push(
          `    <line x1="${LX + 150}" y1="${a}" x2="${RX - 8}" y2="${b}" stroke="#bbbbbb" stroke-dasharray="3,2"/>`,
        )
        continue
      }
      const crossed = stores.some((t) => t.index < s.index && (rightY.get(t.index) ?? Infinity) > b)
      out.push(
        `    <line x1="${LX + 150}" y1="${a}" x2="${RX - 8}" y2="${b}" stroke="${crossed ? '#c0392b' : '#999999'}"${crossed ? ' stroke-width="1.5"' : ''}/>`,
      )
    }
    out.push('  </g>')
  })
  out.push(
    `  <text x="20" y="${height - 14}">a red line: a store that reached memory before an earlier one (reordered)</text>`,
  )
  out.push('</svg>')
  return out.join('\n') + '\n'
}
