/**
 * The HDA stream format word (SDnFMT, and the converters' SET_STREAM_FORMAT payload): decoding it
 * into an AudioFormat with its byte rate, and encoding one. Datasheet: docs/devices/hda.md §6.
 *
 * Layout from the High Definition Audio Specification 1.0a §3.7.1 (Stream Format Structure), as
 * Linux's snd_hdac_calc_stream_format (sound/hda/hdac_device.c) builds it: bit 15 TYPE (non-PCM),
 * bit 14 BASE (0: 48 kHz, 1: 44.1 kHz), bits 13:11 MULT (×1..×4; 4..7 reserved), bits 10:8 DIV
 * (÷1..÷8), bits 6:4 BITS (8, 16, 20, 24, 32; 5..7 reserved), bits 3:0 CHAN (channels − 1). In
 * memory a sample takes 1 byte (8-bit), 2 (16-bit) or 4 (20-, 24- and 32-bit: a 32-bit container),
 * and a frame is one sample per channel.
 */

import { audioContainerBytes, type AudioFormat, type AudioSampleBits } from './audio-port.js'
import * as H from './hda-regs.js'

const BITS: readonly AudioSampleBits[] = [8, 16, 20, 24, 32]

/** A decoded stream format: the AudioFormat and its sizes and rate in bytes. */
export interface HdaFormat extends AudioFormat {
  /** The FMT word it came from. */
  readonly fmt: number
  /** Bytes per frame: channels × container bytes. */
  readonly frameBytes: number
  /** Bytes per second on the link: rate × frameBytes. */
  readonly byteRate: number
  /** TYPE: non-PCM data (carried exactly like PCM). */
  readonly nonPcm: boolean
}

/** Decodes a FMT word; returns a string naming the reserved field instead when it has one. */
export function decodeHdaFormat(fmt: number): HdaFormat | string {
  const mult = ((fmt & H.HDA_FMT_MULT_MASK) >>> H.HDA_FMT_MULT_SHIFT) + 1
  const div = ((fmt & H.HDA_FMT_DIV_MASK) >>> H.HDA_FMT_DIV_SHIFT) + 1
  const bitsCode = (fmt & H.HDA_FMT_BITS_MASK) >>> H.HDA_FMT_BITS_SHIFT
  if (mult > 4) return `MULT ${mult - 1} is reserved (×1..×4 are 0..3)`
  const bits = BITS[bitsCode]
  if (bits === undefined) return `BITS ${bitsCode} is reserved (8, 16, 20, 24, 32 bits are 0..4)`
  const base = (fmt & H.HDA_FMT_BASE_44K) !== 0 ? 44_100 : 48_000
  const rate = (base * mult) / div
  const channels = (fmt & H.HDA_FMT_CHAN_MASK) + 1
  const frameBytes = channels * audioContainerBytes(bits)
  return { fmt: fmt & 0xffff, rate, channels, bits, frameBytes, byteRate: rate * frameBytes, nonPcm: (fmt & H.HDA_FMT_TYPE_NON_PCM) !== 0 }
}

/**
 * The FMT word for a rate, channel count and sample size (the smallest multiplier and divisor
 * that give the rate exactly), or null when HDA cannot express it.
 */
export function hdaFormatValue(rate: number, channels: number, bits: AudioSampleBits): number | null {
  const bitsCode = BITS.indexOf(bits)
  if (bitsCode < 0 || !Number.isInteger(channels) || channels < 1 || channels > 16) return null
  for (const [base, flag] of [[48_000, 0], [44_100, H.HDA_FMT_BASE_44K]] as const) {
    for (let mult = 1; mult <= 4; mult++) {
      for (let div = 1; div <= 8; div++) {
        if ((base * mult) / div === rate) {
          return flag | ((mult - 1) << H.HDA_FMT_MULT_SHIFT) | ((div - 1) << H.HDA_FMT_DIV_SHIFT) | (bitsCode << H.HDA_FMT_BITS_SHIFT) | (channels - 1)
        }
      }
    }
  }
  return null
}

/** "48000 Hz, 16-bit, 2 ch" (for messages and dumps). */
export function describeHdaFormat(fmt: number): string {
  const f = decodeHdaFormat(fmt)
  if (typeof f === 'string') return `reserved: ${f}`
  return `${f.rate} Hz, ${f.bits}-bit, ${f.channels} ch${f.nonPcm ? ', non-PCM' : ''}`
}
