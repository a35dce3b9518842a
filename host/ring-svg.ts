/**
 * A descriptor ring as an SVG picture, from a live run: every descriptor of the tnic's RX or TX ring
 * as a cell coloured by who owns it, the device's head and tail registers marked above the cells
 * and the driver's next_to_use / next_to_clean below them.
 *
 * The state is looked at, never touched: the registers through TnicDevice.reg() (a read without
 * side effects), the descriptors from the CPU's view of the ring memory (the cached copy of a line
 * when the CPU cache holds one, RAM otherwise: no cache fill, no DMA, no MMIO, no kernel call), and
 * the driver's indexes from its adapter (pci_get_drvdata() of the PCI device, then the net_device's
 * private data, read as a field since netdev_priv() is a kernel call).
 *
 * Ownership is e1000's rule (8254x manual §3.2.6, §3.3): the descriptors from head up to (not
 * including) tail belong to the device; the rest belong to the driver, which tells apart the ones
 * the device has finished (DD set, waiting for the driver to clean them) from the empty ones.
 */

import type { System } from '../kernel/index.js'
import { PAGE_OFFSET, pci_get_drvdata } from '../kernel/index.js'
import type { TnicDevice } from '../devices/index.js'
import { TNIC_DESC_SIZE, TNIC_RXD_LENGTH, TNIC_RXD_STATUS, TNIC_RXD_STAT_DD, TNIC_TXD_LENGTH, TNIC_TXD_STATUS, TNIC_TXD_STAT_DD } from '../devices/index.js'
import type { NetDevice } from '../kernel/net/netdevice.js'
import type { TnicAdapter } from '../drivers/net/tnic_defs.js'

/** Who a descriptor belongs to now. */
export type DescriptorOwner = 'device' | 'driver-done' | 'driver-free'

export interface RingCell {
  readonly index: number
  readonly owner: DescriptorOwner
  /** The DD (descriptor done) status bit as the CPU sees it. */
  readonly dd: boolean
  /** The length field. */
  readonly length: number
}

/** One ring at one moment. */
export interface RingSnapshot {
  readonly device: string
  readonly ring: 'rx' | 'tx'
  /** Virtual time (ns) of the snapshot. */
  readonly time: number
  readonly count: number
  /** The device's registers (RDH/RDT or TDH/TDT). */
  readonly head: number
  readonly tail: number
  /** The driver's indexes (e1000_ring.next_to_use / next_to_clean). */
  readonly nextToUse: number
  readonly nextToClean: number
  readonly cells: readonly RingCell[]
}

/** Reads len bytes at physical address pa as the CPU would see them, without touching the cache. */
export function cpuView(sys: System, pa: number, len: number): Uint8Array {
  const cache = sys.machine.cache
  const out = new Uint8Array(len)
  const ls = cache.lineSize
  for (let at = pa; at < pa + len; ) {
    const lineStart = at - (at % ls)
    const n = Math.min(lineStart + ls, pa + len) - at
    const line = cache.peekLine(at)
    if (line !== undefined) out.set(line.subarray(at - lineStart, at - lineStart + n), at - pa)
    else sys.machine.ram.read(at, out, at - pa, n)
    at += n
  }
  return out
}

/** The driver's adapter behind a tnic, or undefined when no driver is bound or the ring is not set up. */
function adapterOf(sys: System, nic: TnicDevice): TnicAdapter | undefined {
  const pdev = sys.pciDevices.find((p) => p.name === nic.name)
  if (pdev === undefined) return undefined
  const netdev = pci_get_drvdata(pdev) as NetDevice<TnicAdapter> | null
  return netdev?._priv ?? undefined
}

/** The state of the tnic's RX or TX ring now (see the module comment for where each part comes from). */
export function snapshotTnicRing(sys: System, nic: TnicDevice, ring: 'rx' | 'tx'): RingSnapshot {
  const adapter = adapterOf(sys, nic)
  if (adapter === undefined) throw new Error(`${nic.name}: no driver bound (pci_get_drvdata is null)`)
  const r = ring === 'rx' ? adapter.rx_ring : adapter.tx_ring
  if (r.desc === 0) throw new Error(`${nic.name}: the ${ring.toUpperCase()} ring is not allocated (interface down?)`)
  const rx = ring === 'rx'
  const head = nic.reg(rx ? 'RDH' : 'TDH')
  const tail = nic.reg(rx ? 'RDT' : 'TDT')
  const bytes = cpuView(sys, r.desc - PAGE_OFFSET, r.count * TNIC_DESC_SIZE)
  const view = new DataView(bytes.buffer)
  const cells: RingCell[] = []
  for (let i = 0; i < r.count; i++) {
    const base = i * TNIC_DESC_SIZE
    const dd = (bytes[base + (rx ? TNIC_RXD_STATUS : TNIC_TXD_STATUS)]! & (rx ? TNIC_RXD_STAT_DD : TNIC_TXD_STAT_DD)) !== 0
    const deviceOwns = (i - head + r.count) % r.count < (tail - head + r.count) % r.count
    cells.push({
      index: i,
      owner: deviceOwns ? 'device' : dd ? 'driver-done' : 'driver-free',
      dd,
      length: view.getUint16(base + (rx ? TNIC_RXD_LENGTH : TNIC_TXD_LENGTH), true),
    })
  }
  return {
    device: nic.name,
    ring,
    time: sys.machine.clock.now,
    count: r.count,
    head,
    tail,
    nextToUse: r.next_to_use,
    nextToClean: r.next_to_clean,
    cells,
  }
}

/** Escapes text for XML content and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/**
 * The opening lines every picture here shares: the <svg> element, its <title>, a white
 * background and the title as a heading at x = titleX (the caller closes the </svg>).
 */
export function svgHeader(width: number, height: number, title: string, titleX = 20): string[] {
  const t = xmlEscape(title)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="monospace" font-size="11">`,
    `  <title>${t}</title>`,
    `  <rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `  <text x="${titleX}" y="20" font-size="13" font-weight="bold">${t}</text>`,
  ]
}

const FILL: Record<DescriptorOwner, string> = {
  device: '#7aa6e0',
  'driver-done': '#8fd18f',
  'driver-free': '#e6e6e6',
}

const LEGEND: Record<DescriptorOwner, string> = {
  device: 'device owns (head ≤ i < tail)',
  'driver-done': 'driver owns, DD set: done, to clean',
  'driver-free': 'driver owns, empty',
}

export interface RingSvgOptions {
  /** Cells per row (default 16). */
  readonly perRow?: number
  /** The title line (default: device, ring, time). */
  readonly title?: string
}

/** The snapshot as a standalone SVG document. Deterministic: the same snapshot gives the same text. */
export function ringSvg(s: RingSnapshot, opts: RingSvgOptions = {}): string {
  const perRow = Math.max(1, Math.min(opts.perRow ?? 16, s.count))
  const W = 44
  const H = 34
  const GAP_TOP = 22
  const GAP_BOTTOM = 22
  const rowH = GAP_TOP + H + GAP_BOTTOM
  const X0 = 20
  const Y0 = 58
  const rows = Math.ceil(s.count / perRow)
  const width = X0 * 2 + perRow * W
  const legendY = Y0 + rows * rowH + 10
  const height = legendY + 4 * 18 + 10
  const reg = s.ring === 'rx' ? 'RD' : 'TD'
  const title = opts.title ?? `${s.device} ${s.ring.toUpperCase()} ring at ${s.time} ns: ${s.count} descriptors`
  const out = svgHeader(width, height, title, X0)
  out.push(`  <text x="${X0}" y="38">${reg}H ${s.head}  ${reg}T ${s.tail} (device registers); next_to_use ${s.nextToUse}  next_to_clean ${s.nextToClean} (driver)</text>`)
  const above = (i: number): string[] => [...(i === s.head ? [`${reg}H`] : []), ...(i === s.tail ? [`${reg}T`] : [])]
  const below = (i: number): string[] => [...(i === s.nextToUse ? ['ntu'] : []), ...(i === s.nextToClean ? ['ntc'] : [])]
  for (const c of s.cells) {
    const x = X0 + (c.index % perRow) * W
    const y = Y0 + Math.floor(c.index / perRow) * rowH + GAP_TOP
    const cx = x + W / 2
    out.push(`  <g class="desc ${c.owner}" data-index="${c.index}">`)
    out.push(`    <rect x="${x}" y="${y}" width="${W}" height="${H}" fill="${FILL[c.owner]}" stroke="#333333"/>`)
    out.push(`    <text x="${cx}" y="${y + 14}" text-anchor="middle">${c.index}</text>`)
    out.push(`    <text x="${cx}" y="${y + 28}" text-anchor="middle" font-size="9">${c.owner === 'device' ? 'dev' : 'drv'}${c.dd ? ' DD' : ''}</text>`)
    const up = above(c.index)
    if (up.length > 0) out.push(`    <text x="${cx}" y="${y - 6}" text-anchor="middle" font-weight="bold" fill="#1a4fa0">${up.join('/')}</text>`)
    const down = below(c.index)
    if (down.length > 0) out.push(`    <text x="${cx}" y="${y + H + 14}" text-anchor="middle" font-weight="bold" fill="#2b7a2b">${down.join('/')}</text>`)
    out.push('  </g>')
  }
  let ly = legendY
  for (const owner of ['device', 'driver-done', 'driver-free'] as const) {
    out.push(`  <rect x="${X0}" y="${ly}" width="14" height="12" fill="${FILL[owner]}" stroke="#333333"/>`)
    out.push(`  <text x="${X0 + 20}" y="${ly + 10}">${xmlEscape(LEGEND[owner])}</text>`)
    ly += 18
  }
  out.push(`  <text x="${X0}" y="${ly + 10}">${reg}H/${reg}T: head/tail registers (above); ntu/ntc: the driver's next_to_use/next_to_clean (below)</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
