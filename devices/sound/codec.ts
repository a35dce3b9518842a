/**
 * Codec 0 of the mini-HDA link: a root node, an audio function group and two converters — an
 * output converter (DAC, NID 2) that plays the output stream into the AudioSink and an input
 * converter (ADC, NID 3) that records from the AudioSource. A converter takes a stream's samples
 * only when its stream tag (SET_CONV, verb 706h) is the stream descriptor's tag and its format
 * (SET_STREAM_FORMAT, verb 2h) is the descriptor's FMT: a driver that forgets to program the codec
 * plays silence. Datasheet: docs/devices/hda.md §9.
 *
 * Modelled on the High Definition Audio Specification 1.0a §7.3 (verbs: Get Parameter F00h,
 * Converter Stream, Channel 706h/F06h, Converter Format 2h/Ah, Power State 705h/F05h, Amplifier
 * Gain/Mute 3h/Bh, Function Reset 7FFh; parameters §7.3.4) and on QEMU's hw/audio/hda-codec.c
 * (hda_audio_command: the same verbs on a fixed widget list, unknown ones answered with 0). No
 * pins, mixers or connection lists: the converters are wired straight to the sink and the source.
 */

import * as H from './hda-regs.js'

/** A converter's programmable state. */
export interface HdaConverter {
  /** Stream tag it listens to (SET_CONV bits 7:4; 0: none). */
  stream: number
  /** Lowest channel (SET_CONV bits 3:0; stored, the converter takes every channel). */
  channel: number
  /** SET_STREAM_FORMAT payload (an SDnFMT word). */
  format: number
  /** SET_POWER_STATE (stored; the converters play in any state). */
  power: number
  /** SET_AMP_GAIN_MUTE payload (stored, no effect). */
  amp: number
}

/** Why a converter does not take a stream: 'ok', or the field that differs. */
export type HdaRouting = 'ok' | 'tag' | 'format'

type Report = (message: string, details: Record<string, number | string | boolean>) => void

const hex = (v: number): string => `0x${v.toString(16)}`
const hex8 = (v: number): string => `0x${v.toString(16).padStart(8, '0')}`
const newConverter = (): HdaConverter => ({ stream: 0, channel: 0, format: 0, power: 0, amp: 0 })

export class HdaCodec {
  /** The codec address on the link (CAd, bits 31:28 of a command). */
  readonly address = 0
  readonly vendorId: number
  readonly out: HdaConverter = newConverter()
  readonly in: HdaConverter = newConverter()
  #afgPower = 0

  constructor(vendorId = H.HDA_CODEC_VENDOR_ID) {
    this.vendorId = vendorId >>> 0
  }

  /** Link reset or Function Reset: converters idle (stream 0, format 0), D0. */
  reset(): void {
    for (const c of [this.out, this.in]) Object.assign(c, newConverter())
    this.#afgPower = 0
  }

  /** Whether a converter takes the stream with this tag and FMT. */
  routing(output: boolean, tag: number, fmt: number): HdaRouting {
    const c = output ? this.out : this.in
    if (tag === 0 || c.stream !== tag) return 'tag'
    if ((c.format & H.HDA_FMT_MASK) !== (fmt & H.HDA_FMT_MASK)) return 'format'
    return 'ok'
  }

  /**
   * Runs a command addressed to this codec and returns its 32-bit response (SET verbs answer 0).
   * A verb the node does not have, or a node that does not exist, is answered with 0 and
   * reported through `report` (the controller's strict-mode guest error).
   */
  execute(cmd: number, report: Report): number {
    const nid = (cmd >>> H.HDA_CMD_NID_SHIFT) & 0x7f
    const verb = (cmd >>> 8) & 0xfff
    const p8 = cmd & 0xff
    const p16 = cmd & 0xffff
    const bad = (why: string): number => {
      report(`codec ${this.address}: ${why} (command ${hex8(cmd >>> 0)}): answered 0`, { command: cmd >>> 0, nid, verb })
      return 0
    }
    if ((cmd & H.HDA_CMD_INDIRECT) !== 0) return bad('indirect NID addressing is not supported')
    if (nid > H.HDA_NID_ADC) return bad(`no node ${nid} (nodes 0..3: root, AFG, DAC, ADC)`)
    const conv = nid === H.HDA_NID_DAC ? this.out : nid === H.HDA_NID_ADC ? this.in : null
    switch (verb >>> 8) {
      case H.HDA_VERB_SET_STREAM_FORMAT >>> 8:
        if (conv === null) return bad(`SET_STREAM_FORMAT on node ${nid}, which is not a converter`)
        conv.format = p16
        return 0
      case H.HDA_VERB_GET_STREAM_FORMAT >>> 8:
        if (conv === null) return bad(`GET_STREAM_FORMAT on node ${nid}, which is not a converter`)
        return conv.format
      case H.HDA_VERB_SET_AMP_GAIN_MUTE >>> 8:
        if (conv === null) return bad(`SET_AMP_GAIN_MUTE on node ${nid}, which has no amplifier`)
        conv.amp = p16
        return 0
      case H.HDA_VERB_GET_AMP_GAIN_MUTE >>> 8:
        if (conv === null) return bad(`GET_AMP_GAIN_MUTE on node ${nid}, which has no amplifier`)
        return conv.amp & 0xff
      default:
        break
    }
    switch (verb) {
      case H.HDA_VERB_GET_PARAMETER:
        return this.#parameter(nid, p8)
      case H.HDA_VERB_SET_CONV:
        if (conv === null) return bad(`SET_CONV on node ${nid}, which is not a converter`)
        conv.stream = p8 >>> H.HDA_CONV_STREAM_SHIFT
        conv.channel = p8 & 0xf
        return 0
      case H.HDA_VERB_GET_CONV:
        if (conv === null) return bad(`GET_CONV on node ${nid}, which is not a converter`)
        return (conv.stream << H.HDA_CONV_STREAM_SHIFT) | conv.channel
      case H.HDA_VERB_SET_POWER_STATE:
        if (nid === H.HDA_NID_ROOT) return bad('SET_POWER_STATE on the root node')
        if (conv === null) this.#afgPower = p8 & 0xf
        else conv.power = p8 & 0xf
        return 0
      case H.HDA_VERB_GET_POWER_STATE: {
        if (nid === H.HDA_NID_ROOT) return bad('GET_POWER_STATE on the root node')
        const ps = conv === null ? this.#afgPower : conv.power
        return (ps << 4) | ps // actual state 7:4, setting 3:0
      }
      case H.HDA_VERB_SET_CODEC_RESET:
        if (nid !== H.HDA_NID_AFG) return bad(`Function Reset (7FFh) on node ${nid}: it is for the function group (NID 1)`)
        this.reset()
        return 0
      default:
        return bad(`unsupported verb ${hex(verb)} on node ${nid}`)
    }
  }

  /** GET_PARAMETER: unknown parameters read 0, as the specification allows for absent ones. */
  #parameter(nid: number, id: number): number {
    switch (nid) {
      case H.HDA_NID_ROOT:
        if (id === H.HDA_PARAM_VENDOR_ID) return this.vendorId
        if (id === H.HDA_PARAM_SUBSYSTEM_ID) return ((this.vendorId & 0xffff0000) | 0x0001) >>> 0
        if (id === H.HDA_PARAM_REV_ID) return H.HDA_CODEC_REV_ID
        if (id === H.HDA_PARAM_NODE_COUNT) return (H.HDA_NID_AFG << 16) | 1
        return 0
      case H.HDA_NID_AFG:
        if (id === H.HDA_PARAM_NODE_COUNT) return (H.HDA_NID_DAC << 16) | 2
        if (id === H.HDA_PARAM_FUNCTION_TYPE) return H.HDA_FUNCTION_TYPE_AUDIO
        if (id === H.HDA_PARAM_PCM) return H.HDA_PCM_CAPS
        if (id === H.HDA_PARAM_STREAM) return H.HDA_STREAM_CAPS_PCM
        if (id === H.HDA_PARAM_POWER_STATE) return H.HDA_POWER_STATE_CAPS
        return 0
      default: {
        const type = nid === H.HDA_NID_DAC ? H.HDA_WCAP_TYPE_AUD_OUT : H.HDA_WCAP_TYPE_AUD_IN
        if (id === H.HDA_PARAM_AUDIO_WIDGET_CAP) return (type << H.HDA_WCAP_TYPE_SHIFT) | (7 << H.HDA_WCAP_CHAN_CNT_EXT_SHIFT) | H.HDA_WCAP_FORMAT_OVRD | H.HDA_WCAP_STEREO
        if (id === H.HDA_PARAM_PCM) return H.HDA_PCM_CAPS
        if (id === H.HDA_PARAM_STREAM) return H.HDA_STREAM_CAPS_PCM
        return 0
      }
    }
  }

  /** "out: stream 1 ch 0 fmt 0x11 (48000 Hz, 16-bit, 2 ch)"-style summary, for dumps. */
  describe(describeFormat: (fmt: number) => string): string {
    const c = (name: string, v: HdaConverter): string => `${name} stream ${v.stream} ch ${v.channel} fmt ${hex(v.format)} (${describeFormat(v.format)})`
    return `${c(`DAC NID ${H.HDA_NID_DAC}`, this.out)}; ${c(`ADC NID ${H.HDA_NID_ADC}`, this.in)}`
  }
}
