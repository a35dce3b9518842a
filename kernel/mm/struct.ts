/**
 * `defineStruct`: C structs over emulated memory, so descriptor code reads like C
 * (`if (!(desc.status & RXD_STAT_DD)) break;`). Fields are laid out in order with natural
 * alignment, or at explicit offsets; every field access is a CPU access through the accessors.
 */

import { InvalidArgumentError } from '../errors.js'
import type { CpuAddr } from '../types.js'
import { mem_read16, mem_read32, mem_read64, mem_read8, mem_read_bytes, mem_write16, mem_write32, mem_write64, mem_write8, mem_write_bytes } from './memory.js'

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | `u8[${number}]`
export type FieldSpec = FieldType | { readonly type: FieldType; readonly offset: number }

type FieldValue<T extends FieldSpec> = T extends 'u64' | { type: 'u64' }
  ? bigint
  : T extends `u8[${number}]` | { type: `u8[${number}]` }
    ? Uint8Array
    : number

/** A view of one struct instance in emulated memory. */
export type StructView<L extends Record<string, FieldSpec>> = {
  -readonly [K in keyof L]: FieldValue<L[K]>
} & { readonly __base: CpuAddr }

export interface StructType<L extends Record<string, FieldSpec>> {
  readonly name: string
  /** sizeof(struct), padded to its alignment. */
  readonly size: number
  /** offsetof(struct, field). */
  offsetof(field: keyof L & string): number
  /** The instance at base + index * size. */
  at(base: CpuAddr, index?: number): StructView<L>
}

const SIZES: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8 }

/** Declares a struct layout: `defineStruct('e1000_rx_desc', { buffer_addr: 'u64', length: 'u16', ... })`. */
export function defineStruct<L extends Record<string, FieldSpec>>(name: string, layout: L): StructType<L> {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('defineStruct', 'name', 'must be a non-empty string')
  if (typeof layout !== 'object' || layout === null) throw new InvalidArgumentError('defineStruct', 'layout', 'must be an object of fields')
  const proto: Record<string, unknown> = {}
  const offsets = new Map<string, number>()
  let pos = 0
  let maxAlign = 1
  for (const [field, spec] of Object.entries(layout)) {
    const type = typeof spec === 'string' ? spec : spec.type
    const arr = /^u8\[(\d+)\]$/.exec(type)
    const size = arr !== null ? Number(arr[1]) : SIZES[type]
    if (size === undefined || size <= 0) throw new InvalidArgumentError('defineStruct', `layout.${field}`, `has unknown type '${type}' (use u8, u16, u32, u64 or u8[N])`)
    const align = arr !== null ? 1 : size
    const off = typeof spec === 'string' ? Math.ceil(pos / align) * align : spec.offset
    if (!Number.isInteger(off) || off < 0) throw new InvalidArgumentError('defineStruct', `layout.${field}.offset`, 'must be a non-negative integer')
    offsets.set(field, off)
    pos = Math.max(pos, off + size)
    maxAlign = Math.max(maxAlign, align)
    let get: (this: { __base: CpuAddr }) => unknown
    let set: (this: { __base: CpuAddr }, v: never) => void
    if (arr !== null) {
      get = function () { return mem_read_bytes((this.__base + off) as CpuAddr, size) }
      set = function (v: Uint8Array) { mem_write_bytes((this.__base + off) as CpuAddr, v.subarray(0, size)) }
    } else if (size === 1) {
      get = function () { return mem_read8(this.__base, off) }
      set = function (v: number) { mem_write8(this.__base, off, v) }
    } else if (size === 2) {
      get = function () { return mem_read16(this.__base, off) }
      set = function (v: number) { mem_write16(this.__base, off, v) }
    } else if (size === 4) {
      get = function () { return mem_read32(this.__base, off) }
      set = function (v: number) { mem_write32(this.__base, off, v) }
    } else {
      get = function () { return mem_read64(this.__base, off) }
      set = function (v: bigint | number) { mem_write64(this.__base, off, v) }
    }
    Object.defineProperty(proto, field, { get, set, enumerable: true })
  }
  const size = Math.ceil(pos / maxAlign) * maxAlign
  return {
    name,
    size,
    offsetof(field) {
      const o = offsets.get(field)
      if (o === undefined) throw new InvalidArgumentError('offsetof', 'field', `'${field}' is not a field of struct ${name}`)
      return o
    },
    at(base, index = 0) {
      const view = Object.create(proto) as { __base: CpuAddr }
      view.__base = (base + index * size) as CpuAddr
      return view as StructView<L>
    },
  }
}
