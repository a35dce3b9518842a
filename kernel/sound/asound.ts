/**
 * The sound subsystem's constants and format helpers (include/uapi/sound/asound.h,
 * include/sound/pcm.h, include/sound/memalloc.h, sound/core/pcm_misc.c): PCM streams, states,
 * formats and their bit masks, access types, rates, info flags, trigger commands, hw_params
 * variables, DMA buffer types, and the errno values ALSA uses that the base kernel lacks.
 *
 * Format masks are `bigint`s, as Linux's `u64 formats` (the packed 3-byte formats are bits 32 and
 * up, beyond JavaScript's 32-bit `|`): `formats: SNDRV_PCM_FMTBIT_S16_LE | SNDRV_PCM_FMTBIT_S32_LE`.
 * Everything else is a number.
 */

// ---------------------------------------------------------------------- errno (asm-generic/errno.h)

/** Broken pipe: an XRUN (underrun or overrun). */
export const EPIPE = 32
/** File descriptor in bad state: the PCM is not in a state that allows the call. */
export const EBADFD = 77
/** Streams pipe error: the PCM is suspended. */
export const ESTRPIPE = 86
/** Inappropriate ioctl. */
export const ENOTTY = 25

// ---------------------------------------------------------------------- streams and states

export const SNDRV_PCM_STREAM_PLAYBACK = 0
export const SNDRV_PCM_STREAM_CAPTURE = 1
export const SNDRV_PCM_STREAM_LAST = SNDRV_PCM_STREAM_CAPTURE

/** `snd_pcm_state_t`. */
export type snd_pcm_state_t = number
export const SNDRV_PCM_STATE_OPEN: snd_pcm_state_t = 0
export const SNDRV_PCM_STATE_SETUP: snd_pcm_state_t = 1
export const SNDRV_PCM_STATE_PREPARED: snd_pcm_state_t = 2
export const SNDRV_PCM_STATE_RUNNING: snd_pcm_state_t = 3
export const SNDRV_PCM_STATE_XRUN: snd_pcm_state_t = 4
export const SNDRV_PCM_STATE_DRAINING: snd_pcm_state_t = 5
export const SNDRV_PCM_STATE_PAUSED: snd_pcm_state_t = 6
export const SNDRV_PCM_STATE_SUSPENDED: snd_pcm_state_t = 7
export const SNDRV_PCM_STATE_DISCONNECTED: snd_pcm_state_t = 8
export const SNDRV_PCM_STATE_LAST = SNDRV_PCM_STATE_DISCONNECTED

const STATE_NAMES = ['OPEN', 'SETUP', 'PREPARED', 'RUNNING', 'XRUN', 'DRAINING', 'PAUSED', 'SUSPENDED', 'DISCONNECTED'] as const
export type PcmStateName = (typeof STATE_NAMES)[number]

/** `snd_pcm_state_name(state)`: 'OPEN', 'SETUP', ... */
export function snd_pcm_state_name(state: snd_pcm_state_t): PcmStateName | 'UNKNOWN' {
  return STATE_NAMES[state] ?? 'UNKNOWN'
}

/** `snd_pcm_stream_str(substream)` for a stream number: 'Playback' / 'Capture'. */
export function snd_pcm_stream_name(stream: number): string {
  return stream === SNDRV_PCM_STREAM_PLAYBACK ? 'Playback' : 'Capture'
}

// ---------------------------------------------------------------------- trigger commands

export const SNDRV_PCM_TRIGGER_STOP = 0
export const SNDRV_PCM_TRIGGER_START = 1
export const SNDRV_PCM_TRIGGER_PAUSE_PUSH = 3
export const SNDRV_PCM_TRIGGER_PAUSE_RELEASE = 4
export const SNDRV_PCM_TRIGGER_SUSPEND = 5
export const SNDRV_PCM_TRIGGER_RESUME = 6
export const SNDRV_PCM_TRIGGER_DRAIN = 7

/** What `ops.pointer` returns when the hardware is in an XRUN: `(snd_pcm_uframes_t)-1`. */
export const SNDRV_PCM_POS_XRUN = -1

// ---------------------------------------------------------------------- access

export const SNDRV_PCM_ACCESS_MMAP_INTERLEAVED = 0
export const SNDRV_PCM_ACCESS_MMAP_NONINTERLEAVED = 1
export const SNDRV_PCM_ACCESS_MMAP_COMPLEX = 2
export const SNDRV_PCM_ACCESS_RW_INTERLEAVED = 3
export const SNDRV_PCM_ACCESS_RW_NONINTERLEAVED = 4

// ---------------------------------------------------------------------- formats

/** `snd_pcm_format_t`. */
export type snd_pcm_format_t = number
export const SNDRV_PCM_FORMAT_S8 = 0
export const SNDRV_PCM_FORMAT_U8 = 1
export const SNDRV_PCM_FORMAT_S16_LE = 2
export const SNDRV_PCM_FORMAT_S16_BE = 3
export const SNDRV_PCM_FORMAT_U16_LE = 4
export const SNDRV_PCM_FORMAT_U16_BE = 5
export const SNDRV_PCM_FORMAT_S24_LE = 6
export const SNDRV_PCM_FORMAT_S24_BE = 7
export const SNDRV_PCM_FORMAT_U24_LE = 8
export const SNDRV_PCM_FORMAT_U24_BE = 9
export const SNDRV_PCM_FORMAT_S32_LE = 10
export const SNDRV_PCM_FORMAT_S32_BE = 11
export const SNDRV_PCM_FORMAT_U32_LE = 12
export const SNDRV_PCM_FORMAT_U32_BE = 13
export const SNDRV_PCM_FORMAT_FLOAT_LE = 14
export const SNDRV_PCM_FORMAT_FLOAT_BE = 15
export const SNDRV_PCM_FORMAT_FLOAT64_LE = 16
export const SNDRV_PCM_FORMAT_FLOAT64_BE = 17
export const SNDRV_PCM_FORMAT_MU_LAW = 20
export const SNDRV_PCM_FORMAT_A_LAW = 21
export const SNDRV_PCM_FORMAT_IMA_ADPCM = 22
export const SNDRV_PCM_FORMAT_S20_LE = 25
export const SNDRV_PCM_FORMAT_S20_BE = 26
export const SNDRV_PCM_FORMAT_U20_LE = 27
export const SNDRV_PCM_FORMAT_U20_BE = 28
export const SNDRV_PCM_FORMAT_S24_3LE = 32
export const SNDRV_PCM_FORMAT_S24_3BE = 33
export const SNDRV_PCM_FORMAT_U24_3LE = 34
export const SNDRV_PCM_FORMAT_U24_3BE = 35
export const SNDRV_PCM_FORMAT_S20_3LE = 36
export const SNDRV_PCM_FORMAT_S20_3BE = 37
export const SNDRV_PCM_FORMAT_U20_3LE = 38
export const SNDRV_PCM_FORMAT_U20_3BE = 39
export const SNDRV_PCM_FORMAT_S18_3LE = 40
export const SNDRV_PCM_FORMAT_S18_3BE = 41
export const SNDRV_PCM_FORMAT_U18_3LE = 42
export const SNDRV_PCM_FORMAT_U18_3BE = 43
export const SNDRV_PCM_FORMAT_LAST = SNDRV_PCM_FORMAT_U18_3BE

interface FormatInfo {
  readonly name: string
  /** Significant bits (0: not a linear format). */
  readonly width: number
  /** Bits in memory per sample. */
  readonly phys: number
  /** 1 little-endian, 0 big-endian, -1 not applicable. */
  readonly le: number
  /** 1 signed, 0 unsigned, -1 not applicable. */
  readonly signd: number
  /** The silence byte pattern, little-endian first byte first. */
  readonly silence: readonly number[]
}

const fmt = (name: string, width: number, phys: number, le: number, signd: number, silence: readonly number[]): FormatInfo => ({ name, width, phys, le, signd, silence })

/** sound/core/pcm_misc.c's pcm_formats table. */
const FORMATS: Readonly<Record<number, FormatInfo>> = {
  [SNDRV_PCM_FORMAT_S8]: fmt('S8', 8, 8, -1, 1, [0]),
  [SNDRV_PCM_FORMAT_U8]: fmt('U8', 8, 8, -1, 0, [0x80]),
  [SNDRV_PCM_FORMAT_S16_LE]: fmt('S16_LE', 16, 16, 1, 1, [0, 0]),
  [SNDRV_PCM_FORMAT_S16_BE]: fmt('S16_BE', 16, 16, 0, 1, [0, 0]),
  [SNDRV_PCM_FORMAT_U16_LE]: fmt('U16_LE', 16, 16, 1, 0, [0x00, 0x80]),
  [SNDRV_PCM_FORMAT_U16_BE]: fmt('U16_BE', 16, 16, 0, 0, [0x80, 0x00]),
  [SNDRV_PCM_FORMAT_S24_LE]: fmt('S24_LE', 24, 32, 1, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_S24_BE]: fmt('S24_BE', 24, 32, 0, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_U24_LE]: fmt('U24_LE', 24, 32, 1, 0, [0x00, 0x00, 0x80, 0x00]),
  [SNDRV_PCM_FORMAT_U24_BE]: fmt('U24_BE', 24, 32, 0, 0, [0x00, 0x80, 0x00, 0x00]),
  [SNDRV_PCM_FORMAT_S32_LE]: fmt('S32_LE', 32, 32, 1, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_S32_BE]: fmt('S32_BE', 32, 32, 0, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_U32_LE]: fmt('U32_LE', 32, 32, 1, 0, [0x00, 0x00, 0x00, 0x80]),
  [SNDRV_PCM_FORMAT_U32_BE]: fmt('U32_BE', 32, 32, 0, 0, [0x80, 0x00, 0x00, 0x00]),
  [SNDRV_PCM_FORMAT_FLOAT_LE]: fmt('FLOAT_LE', 32, 32, 1, -1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_FLOAT_BE]: fmt('FLOAT_BE', 32, 32, 0, -1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_FLOAT64_LE]: fmt('FLOAT64_LE', 64, 64, 1, -1, [0, 0, 0, 0, 0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_FLOAT64_BE]: fmt('FLOAT64_BE', 64, 64, 0, -1, [0, 0, 0, 0, 0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_MU_LAW]: fmt('MU_LAW', 8, 8, -1, -1, [0x7f]),
  [SNDRV_PCM_FORMAT_A_LAW]: fmt('A_LAW', 8, 8, -1, -1, [0x55]),
  [SNDRV_PCM_FORMAT_IMA_ADPCM]: fmt('IMA_ADPCM', 4, 4, -1, -1, []),
  [SNDRV_PCM_FORMAT_S20_LE]: fmt('S20_LE', 20, 32, 1, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_S20_BE]: fmt('S20_BE', 20, 32, 0, 1, [0, 0, 0, 0]),
  [SNDRV_PCM_FORMAT_U20_LE]: fmt('U20_LE', 20, 32, 1, 0, [0x00, 0x00, 0x08, 0x00]),
  [SNDRV_PCM_FORMAT_U20_BE]: fmt('U20_BE', 20, 32, 0, 0, [0x00, 0x08, 0x00, 0x00]),
  [SNDRV_PCM_FORMAT_S24_3LE]: fmt('S24_3LE', 24, 24, 1, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_S24_3BE]: fmt('S24_3BE', 24, 24, 0, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_U24_3LE]: fmt('U24_3LE', 24, 24, 1, 0, [0x00, 0x00, 0x80]),
  [SNDRV_PCM_FORMAT_U24_3BE]: fmt('U24_3BE', 24, 24, 0, 0, [0x80, 0x00, 0x00]),
  [SNDRV_PCM_FORMAT_S20_3LE]: fmt('S20_3LE', 20, 24, 1, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_S20_3BE]: fmt('S20_3BE', 20, 24, 0, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_U20_3LE]: fmt('U20_3LE', 20, 24, 1, 0, [0x00, 0x00, 0x08]),
  [SNDRV_PCM_FORMAT_U20_3BE]: fmt('U20_3BE', 20, 24, 0, 0, [0x08, 0x00, 0x00]),
  [SNDRV_PCM_FORMAT_S18_3LE]: fmt('S18_3LE', 18, 24, 1, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_S18_3BE]: fmt('S18_3BE', 18, 24, 0, 1, [0, 0, 0]),
  [SNDRV_PCM_FORMAT_U18_3LE]: fmt('U18_3LE', 18, 24, 1, 0, [0x00, 0x00, 0x02]),
  [SNDRV_PCM_FORMAT_U18_3BE]: fmt('U18_3BE', 18, 24, 0, 0, [0x02, 0x00, 0x00]),
}

function info(format: snd_pcm_format_t): FormatInfo | undefined {
  return typeof format === 'number' ? FORMATS[format] : undefined
}

/** Whether format is one of the formats above. */
export function snd_pcm_format_valid(format: unknown): format is snd_pcm_format_t {
  return typeof format === 'number' && FORMATS[format] !== undefined
}

/** The format's name ('S16_LE'), or 'UNKNOWN'. */
export function snd_pcm_format_name(format: snd_pcm_format_t): string {
  return info(format)?.name ?? 'UNKNOWN'
}

/** The format whose name is name ('S16_LE', case-insensitive), or -1. */
export function snd_pcm_format_value(name: string): snd_pcm_format_t {
  const n = name.toUpperCase()
  for (const [k, v] of Object.entries(FORMATS)) if (v.name === n) return Number(k)
  return -1
}

/** Every known format, in numeric order. */
export function snd_pcm_formats(): snd_pcm_format_t[] {
  return Object.keys(FORMATS).map(Number).sort((a, b) => a - b)
}

/** `snd_pcm_format_width`: significant bits, or -EINVAL. */
export function snd_pcm_format_width(format: snd_pcm_format_t): number {
  const i = info(format)
  return i === undefined || i.width === 0 ? -22 : i.width
}

/** `snd_pcm_format_physical_width`: bits in memory per sample, or -EINVAL. */
export function snd_pcm_format_physical_width(format: snd_pcm_format_t): number {
  const i = info(format)
  return i === undefined || i.phys === 0 ? -22 : i.phys
}

/** `snd_pcm_format_size(format, samples)`: bytes, or -EINVAL. */
export function snd_pcm_format_size(format: snd_pcm_format_t, samples: number): number {
  const phys = snd_pcm_format_physical_width(format)
  return phys < 0 ? phys : (samples * phys) / 8
}

/** `snd_pcm_format_signed`: 1 signed, 0 unsigned, -EINVAL not linear. */
export function snd_pcm_format_signed(format: snd_pcm_format_t): number {
  const i = info(format)
  return i === undefined || i.signd < 0 ? -22 : i.signd
}

/** `snd_pcm_format_unsigned`. */
export function snd_pcm_format_unsigned(format: snd_pcm_format_t): number {
  const s = snd_pcm_format_signed(format)
  return s < 0 ? s : 1 - s
}

/** `snd_pcm_format_linear`: 1 for integer PCM formats. */
export function snd_pcm_format_linear(format: snd_pcm_format_t): number {
  return snd_pcm_format_signed(format) >= 0 ? 1 : 0
}

/** `snd_pcm_format_little_endian`: 1, 0, or -EINVAL for 8-bit and non-linear formats. */
export function snd_pcm_format_little_endian(format: snd_pcm_format_t): number {
  const i = info(format)
  return i === undefined || i.le < 0 ? -22 : i.le
}

/** `snd_pcm_format_big_endian`. */
export function snd_pcm_format_big_endian(format: snd_pcm_format_t): number {
  const le = snd_pcm_format_little_endian(format)
  return le < 0 ? le : 1 - le
}

/** The bytes of one silent sample (`snd_pcm_format_silence_64` as bytes); empty if none. */
export function snd_pcm_format_silence(format: snd_pcm_format_t): Uint8Array {
  return new Uint8Array(info(format)?.silence ?? [])
}

// ---------------------------------------------------------------------- format bit masks (u64)

/** `pcm_format_to_bits(format)`: the format's bit in a `formats` mask. */
export function pcm_format_to_bits(format: snd_pcm_format_t): bigint {
  return 1n << BigInt(format)
}

export const SNDRV_PCM_FMTBIT_S8 = 1n << 0n
export const SNDRV_PCM_FMTBIT_U8 = 1n << 1n
export const SNDRV_PCM_FMTBIT_S16_LE = 1n << 2n
export const SNDRV_PCM_FMTBIT_S16_BE = 1n << 3n
export const SNDRV_PCM_FMTBIT_U16_LE = 1n << 4n
export const SNDRV_PCM_FMTBIT_U16_BE = 1n << 5n
export const SNDRV_PCM_FMTBIT_S24_LE = 1n << 6n
export const SNDRV_PCM_FMTBIT_S24_BE = 1n << 7n
export const SNDRV_PCM_FMTBIT_U24_LE = 1n << 8n
export const SNDRV_PCM_FMTBIT_U24_BE = 1n << 9n
export const SNDRV_PCM_FMTBIT_S32_LE = 1n << 10n
export const SNDRV_PCM_FMTBIT_S32_BE = 1n << 11n
export const SNDRV_PCM_FMTBIT_U32_LE = 1n << 12n
export const SNDRV_PCM_FMTBIT_U32_BE = 1n << 13n
export const SNDRV_PCM_FMTBIT_FLOAT_LE = 1n << 14n
export const SNDRV_PCM_FMTBIT_FLOAT_BE = 1n << 15n
export const SNDRV_PCM_FMTBIT_FLOAT64_LE = 1n << 16n
export const SNDRV_PCM_FMTBIT_FLOAT64_BE = 1n << 17n
export const SNDRV_PCM_FMTBIT_MU_LAW = 1n << 20n
export const SNDRV_PCM_FMTBIT_A_LAW = 1n << 21n
export const SNDRV_PCM_FMTBIT_IMA_ADPCM = 1n << 22n
export const SNDRV_PCM_FMTBIT_S20_LE = 1n << 25n
export const SNDRV_PCM_FMTBIT_S20_BE = 1n << 26n
export const SNDRV_PCM_FMTBIT_U20_LE = 1n << 27n
export const SNDRV_PCM_FMTBIT_U20_BE = 1n << 28n
export const SNDRV_PCM_FMTBIT_S24_3LE = 1n << 32n
export const SNDRV_PCM_FMTBIT_S24_3BE = 1n << 33n
export const SNDRV_PCM_FMTBIT_U24_3LE = 1n << 34n
export const SNDRV_PCM_FMTBIT_U24_3BE = 1n << 35n
export const SNDRV_PCM_FMTBIT_S20_3LE = 1n << 36n
export const SNDRV_PCM_FMTBIT_S20_3BE = 1n << 37n
export const SNDRV_PCM_FMTBIT_U20_3LE = 1n << 38n
export const SNDRV_PCM_FMTBIT_U20_3BE = 1n << 39n
export const SNDRV_PCM_FMTBIT_S18_3LE = 1n << 40n
export const SNDRV_PCM_FMTBIT_S18_3BE = 1n << 41n
export const SNDRV_PCM_FMTBIT_U18_3LE = 1n << 42n
export const SNDRV_PCM_FMTBIT_U18_3BE = 1n << 43n

// ---------------------------------------------------------------------- rates

export const SNDRV_PCM_RATE_5512 = 1 << 0
export const SNDRV_PCM_RATE_8000 = 1 << 1
export const SNDRV_PCM_RATE_11025 = 1 << 2
export const SNDRV_PCM_RATE_16000 = 1 << 3
export const SNDRV_PCM_RATE_22050 = 1 << 4
export const SNDRV_PCM_RATE_32000 = 1 << 5
export const SNDRV_PCM_RATE_44100 = 1 << 6
export const SNDRV_PCM_RATE_48000 = 1 << 7
export const SNDRV_PCM_RATE_64000 = 1 << 8
export const SNDRV_PCM_RATE_88200 = 1 << 9
export const SNDRV_PCM_RATE_96000 = 1 << 10
export const SNDRV_PCM_RATE_176400 = 1 << 11
export const SNDRV_PCM_RATE_192000 = 1 << 12
export const SNDRV_PCM_RATE_352800 = 1 << 13
export const SNDRV_PCM_RATE_384000 = 1 << 14
export const SNDRV_PCM_RATE_12000 = 1 << 15
export const SNDRV_PCM_RATE_24000 = 1 << 16
export const SNDRV_PCM_RATE_128000 = 1 << 17
/** Any rate between rate_min and rate_max. */
export const SNDRV_PCM_RATE_CONTINUOUS = 1 << 30
/** Rates set by the driver's own constraint (a list or ratnums), not by the bits. */
export const SNDRV_PCM_RATE_KNOT = 0x80000000
export const SNDRV_PCM_RATE_8000_44100 = SNDRV_PCM_RATE_8000 | SNDRV_PCM_RATE_11025 | SNDRV_PCM_RATE_16000 | SNDRV_PCM_RATE_22050 | SNDRV_PCM_RATE_32000 | SNDRV_PCM_RATE_44100
export const SNDRV_PCM_RATE_8000_48000 = SNDRV_PCM_RATE_8000_44100 | SNDRV_PCM_RATE_48000
export const SNDRV_PCM_RATE_8000_96000 = SNDRV_PCM_RATE_8000_48000 | SNDRV_PCM_RATE_64000 | SNDRV_PCM_RATE_88200 | SNDRV_PCM_RATE_96000
export const SNDRV_PCM_RATE_8000_192000 = SNDRV_PCM_RATE_8000_96000 | SNDRV_PCM_RATE_176400 | SNDRV_PCM_RATE_192000

/** snd_pcm_known_rates, by bit: RATE_BITS[i] is the rate of bit i. */
export const RATE_BITS: readonly number[] = [5512, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 64000, 88200, 96000, 176400, 192000, 352800, 384000, 12000, 24000, 128000]

/** `snd_pcm_rate_to_rate_bit(rate)`: the rate's bit, or SNDRV_PCM_RATE_KNOT. */
export function snd_pcm_rate_to_rate_bit(rate: number): number {
  const i = RATE_BITS.indexOf(rate)
  return i < 0 ? SNDRV_PCM_RATE_KNOT : 1 << i
}

/** `snd_pcm_rate_bit_to_rate(bit)`: the rate of a single bit, or 0. */
export function snd_pcm_rate_bit_to_rate(bit: number): number {
  for (let i = 0; i < RATE_BITS.length; i++) if (bit === 1 << i) return RATE_BITS[i]!
  return 0
}

// ---------------------------------------------------------------------- info flags

export const SNDRV_PCM_INFO_MMAP = 0x00000001
export const SNDRV_PCM_INFO_MMAP_VALID = 0x00000002
export const SNDRV_PCM_INFO_DOUBLE = 0x00000004
export const SNDRV_PCM_INFO_BATCH = 0x00000010
export const SNDRV_PCM_INFO_SYNC_APPLPTR = 0x00000020
export const SNDRV_PCM_INFO_PERFECT_DRAIN = 0x00000040
export const SNDRV_PCM_INFO_INTERLEAVED = 0x00000100
export const SNDRV_PCM_INFO_NONINTERLEAVED = 0x00000200
export const SNDRV_PCM_INFO_COMPLEX = 0x00000400
export const SNDRV_PCM_INFO_BLOCK_TRANSFER = 0x00010000
export const SNDRV_PCM_INFO_OVERRANGE = 0x00020000
export const SNDRV_PCM_INFO_RESUME = 0x00040000
export const SNDRV_PCM_INFO_PAUSE = 0x00080000
export const SNDRV_PCM_INFO_HALF_DUPLEX = 0x00100000
export const SNDRV_PCM_INFO_JOINT_DUPLEX = 0x00200000
export const SNDRV_PCM_INFO_SYNC_START = 0x00400000
export const SNDRV_PCM_INFO_NO_PERIOD_WAKEUP = 0x00800000
export const SNDRV_PCM_INFO_HAS_WALL_CLOCK = 0x01000000
export const SNDRV_PCM_INFO_HAS_LINK_ATIME = 0x01000000
export const SNDRV_PCM_INFO_HAS_LINK_ABSOLUTE_ATIME = 0x02000000
export const SNDRV_PCM_INFO_HAS_LINK_ESTIMATED_ATIME = 0x04000000
export const SNDRV_PCM_INFO_HAS_LINK_SYNCHRONIZED_ATIME = 0x08000000
export const SNDRV_PCM_INFO_EXPLICIT_SYNC = 0x10000000
export const SNDRV_PCM_INFO_NO_REWINDS = 0x20000000
export const SNDRV_PCM_INFO_DRAIN_TRIGGER = 0x40000000

// ---------------------------------------------------------------------- hw_params variables

export const SNDRV_PCM_HW_PARAM_ACCESS = 0
export const SNDRV_PCM_HW_PARAM_FORMAT = 1
export const SNDRV_PCM_HW_PARAM_SUBFORMAT = 2
export const SNDRV_PCM_HW_PARAM_FIRST_MASK = SNDRV_PCM_HW_PARAM_ACCESS
export const SNDRV_PCM_HW_PARAM_LAST_MASK = SNDRV_PCM_HW_PARAM_SUBFORMAT
export const SNDRV_PCM_HW_PARAM_SAMPLE_BITS = 8
export const SNDRV_PCM_HW_PARAM_FRAME_BITS = 9
export const SNDRV_PCM_HW_PARAM_CHANNELS = 10
export const SNDRV_PCM_HW_PARAM_RATE = 11
export const SNDRV_PCM_HW_PARAM_PERIOD_TIME = 12
export const SNDRV_PCM_HW_PARAM_PERIOD_SIZE = 13
export const SNDRV_PCM_HW_PARAM_PERIOD_BYTES = 14
export const SNDRV_PCM_HW_PARAM_PERIODS = 15
export const SNDRV_PCM_HW_PARAM_BUFFER_TIME = 16
export const SNDRV_PCM_HW_PARAM_BUFFER_SIZE = 17
export const SNDRV_PCM_HW_PARAM_BUFFER_BYTES = 18
export const SNDRV_PCM_HW_PARAM_TICK_TIME = 19
export const SNDRV_PCM_HW_PARAM_FIRST_INTERVAL = SNDRV_PCM_HW_PARAM_SAMPLE_BITS
export const SNDRV_PCM_HW_PARAM_LAST_INTERVAL = SNDRV_PCM_HW_PARAM_TICK_TIME

const PARAM_NAMES: Readonly<Record<number, string>> = {
  0: 'access', 1: 'format', 2: 'subformat', 8: 'sample_bits', 9: 'frame_bits', 10: 'channels', 11: 'rate',
  12: 'period_time', 13: 'period_size', 14: 'period_bytes', 15: 'periods', 16: 'buffer_time', 17: 'buffer_size',
  18: 'buffer_bytes', 19: 'tick_time',
}

/** The hw_params variable's name ('period_bytes'), or 'unknown'. */
export function snd_pcm_hw_param_name(v: number): string {
  return PARAM_NAMES[v] ?? 'unknown'
}

// ---------------------------------------------------------------------- DMA buffer types (memalloc.h)

export const SNDRV_DMA_TYPE_UNKNOWN = 0
/** Continuous pages of kernel memory, not mapped for any device. */
export const SNDRV_DMA_TYPE_CONTINUOUS = 1
/** `dma_alloc_coherent` of the given device. */
export const SNDRV_DMA_TYPE_DEV = 2
/** Write-combined coherent memory (here: as SNDRV_DMA_TYPE_DEV). */
export const SNDRV_DMA_TYPE_DEV_WC = 5
/** Scatter-gather coherent pages (here: one contiguous coherent allocation, as behind an IOMMU). */
export const SNDRV_DMA_TYPE_DEV_SG = 3
/** vmalloc'ed memory, not for DMA (here: as SNDRV_DMA_TYPE_CONTINUOUS). */
export const SNDRV_DMA_TYPE_VMALLOC = 7

// ---------------------------------------------------------------------- card defaults (initval.h)

/** Cards per system (CONFIG_SND_MAX_CARDS' default). */
export const SNDRV_CARDS = 8
/** `SNDRV_DEFAULT_IDX1`: any free card index. */
export const SNDRV_DEFAULT_IDX1 = -1
/** `SNDRV_DEFAULT_STR1`: no card id (one is made from the short name at register). */
export const SNDRV_DEFAULT_STR1 = null
/** A card id's longest length (sizeof(card->id) - 1). */
export const SNDRV_CARD_ID_LEN = 15
/** PCM devices per card. */
export const SNDRV_PCM_DEVICES = 32

// ---------------------------------------------------------------------- xrun_debug (pcm_lib.c)

/** Log XRUNs and pointer errors (the emulator's default for every stream). */
export const XRUN_DEBUG_BASIC = 1 << 0
/** Also dump a stack (here: the report-style stack is not printed; accepted for compatibility). */
export const XRUN_DEBUG_STACK = 1 << 1
/** Check each hw_ptr update against the jiffies that passed ("hw_ptr skipping"). */
export const XRUN_DEBUG_JIFFIESCHECK = 1 << 2

// ---------------------------------------------------------------------- sw params

export const SNDRV_PCM_TSTAMP_NONE = 0
export const SNDRV_PCM_TSTAMP_ENABLE = 1
