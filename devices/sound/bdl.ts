/**
 * A stream's buffer descriptor list as the controller sees it: the copy it reads when RUN is set,
 * the strict-mode checks of that copy, and the re-read of one entry when the DMA engine moves to
 * it. Datasheet: docs/devices/hda.md §5.
 *
 * Entry layout from the High Definition Audio Specification 1.0a §3.6.3 (and Linux's setup_bdle
 * in sound/hda/hdac_stream.c): a u64 buffer address, a u32 length in bytes and u32 flags whose
 * bit 0 is IOC. QEMU's intel_hda_parse_bdl reads the LVI + 1 entries once, when RUN goes 0 → 1,
 * and never again; this model reads them then too (one DMA read of the whole list) and, in strict
 * mode, reads each entry again when the engine moves to it, so that an edit made while the stream
 * runs is both used and reported. The rules checked at RUN: at least 2 entries (SDnLVI: "must be
 * at least 1"), CBL a whole number of frames (SDnCBL: "an integer number of samples"), and ours —
 * no entry of length 0, addresses and lengths multiples of 4 bytes (Linux's hda_controller.c:
 * buffer and period sizes "need to be multiple of 4 bytes (HDA spec)"), the lengths adding up to
 * CBL.
 */

import { MEMTX_OK, type MemTxResult } from '../machine/dma-port.js'
import * as H from './hda-regs.js'

const TWO32 = 0x1_0000_0000
const hex = (v: number): string => `0x${v.toString(16)}`

export type BdlRead = (bus: number, bytes: Uint8Array, off: number, len: number) => MemTxResult

/** An entry that differs from the copy read at RUN. */
export interface BdlChange {
  readonly index: number
  readonly was: { readonly addr: number; readonly len: number; readonly ioc: boolean }
  readonly now: { readonly addr: number; readonly len: number; readonly ioc: boolean }
}

export class HdaBdl {
  /** Bus address of the list, and the entries read (LVI + 1). */
  base = 0
  count = 0
  readonly addr = new Float64Array(H.HDA_BDL_MAX_ENTRIES)
  readonly len = new Uint32Array(H.HDA_BDL_MAX_ENTRIES)
  readonly flags = new Uint32Array(H.HDA_BDL_MAX_ENTRIES)
  readonly #raw = new Uint8Array(H.HDA_BDL_MAX_ENTRIES * H.HDA_BDLE_SIZE)
  readonly #view = new DataView(this.#raw.buffer)

  /** Reads `count` entries at base (one DMA read). On failure the copy is empty. */
  load(base: number, count: number, read: BdlRead): MemTxResult {
    this.base = base
    this.count = 0
    const r = read(base, this.#raw, 0, count * H.HDA_BDLE_SIZE)
    if (r !== MEMTX_OK) return r
    for (let i = 0; i < count; i++) this.#parse(i, i * H.HDA_BDLE_SIZE)
    this.count = count
    return MEMTX_OK
  }

  /** Empties the copy. */
  clear(): void {
    this.base = 0
    this.count = 0
  }

  ioc(i: number): boolean {
    return (this.flags[i]! & H.HDA_BDLE_IOC) !== 0
  }

  /** The sum of the entry lengths. */
  total(): number {
    let s = 0
    for (let i = 0; i < this.count; i++) s += this.len[i]!
    return s
  }

  /**
   * Reads entry i again (16 bytes at base + 16 i); the copy takes the new contents. Returns the
   * change when they differ from the copy, null when not, or the failed MemTxResult.
   */
  refetch(i: number, read: BdlRead): BdlChange | null | MemTxResult {
    const off = i * H.HDA_BDLE_SIZE
    const r = read(this.base + off, this.#raw, off, H.HDA_BDLE_SIZE)
    if (r !== MEMTX_OK) return r
    const was = { addr: this.addr[i]!, len: this.len[i]!, ioc: this.ioc(i) }
    const wasFlags = this.flags[i]!
    this.#parse(i, off)
    if (was.addr === this.addr[i] && was.len === this.len[i] && wasFlags === this.flags[i]) return null
    return { index: i, was, now: { addr: this.addr[i]!, len: this.len[i]!, ioc: this.ioc(i) } }
  }

  /**
   * The strict-mode problems of the copy for a stream with this CBL and frame size (null: the
   * format is reserved, frames unknown), each as a message naming the values; [] when none.
   */
  problems(sd: string, cbl: number, lvi: number, frameBytes: number | null): string[] {
    const out: string[] = []
    const a = H.HDA_BUFFER_ALIGN
    if (lvi < 1) out.push(`${sd}LVI ${lvi}: the BDL needs at least 2 entries (LVI ≥ 1)`)
    if (cbl === 0) out.push(`${sd}CBL is 0`)
    else {
      if (frameBytes !== null && cbl % frameBytes !== 0) out.push(`${sd}CBL ${hex(cbl)} (${cbl}) is not a whole number of ${frameBytes}-byte frames`)
      if (cbl % a !== 0) out.push(`${sd}CBL ${hex(cbl)} (${cbl}) is not a multiple of ${a} bytes`)
    }
    for (let i = 0; i < this.count; i++) {
      const addr = this.addr[i]!
      const len = this.len[i]!
      if (len === 0) out.push(`BDL entry ${i} has length 0`)
      else if (len % a !== 0) out.push(`BDL entry ${i} length ${hex(len)} (${len}) is not a multiple of ${a} bytes`)
      if (addr % a !== 0) out.push(`BDL entry ${i} address ${hex(addr)} is not ${a}-byte aligned`)
    }
    const sum = this.total()
    if (cbl !== 0 && sum !== cbl) out.push(`${sd}CBL ${hex(cbl)} (${cbl}) ≠ the sum of the ${this.count} BDL entry lengths ${hex(sum)} (${sum})`)
    return out
  }

  /** One line per entry, for dumps; `at` marks the entry the engine is on. */
  describe(out: string[], at: number): void {
    for (let i = 0; i < this.count; i++) {
      const a = this.addr[i]!.toString(16).padStart(16, '0')
      out.push(`    BDL[${i}] ${a} len ${hex(this.len[i]!)}${this.ioc(i) ? ' IOC' : ''}${i === at ? ' <-' : ''}`)
    }
  }

  #parse(i: number, off: number): void {
    const v = this.#view
    this.addr[i] = v.getUint32(off + H.HDA_BDLE_ADDR + 4, true) * TWO32 + v.getUint32(off + H.HDA_BDLE_ADDR, true)
    this.len[i] = v.getUint32(off + H.HDA_BDLE_LEN, true)
    this.flags[i] = v.getUint32(off + H.HDA_BDLE_FLAGS, true)
  }
}
