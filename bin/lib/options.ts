/**
 * Options shared by the subcommands: the platform (--arch --coherent --iommu --swiotlb --seed),
 * --log-level, and the argument parsers (a bad value is a commander error, exit 2).
 */
import { InvalidArgumentError, Option, type Command } from 'commander'
import type { PlatformOptions } from '../../scenarios/scenario.js'
import { LOG_LEVELS } from './logger.js'

export const ARCH_CHOICES = ['arm64', 'x86_64', 'riscv64'] as const
export const IOMMU_CHOICES = ['strict', 'off'] as const
export const SWIOTLB_CHOICES = ['auto', 'force', 'off'] as const

/** An integer from min to 2^53 - 1. */
export function intParser(what: string, min: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${what} must be an integer >= ${min}.`)
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer from ${min} to 2^53 - 1.`)
    return n
  }
}

/** `i/n` with 1 <= i <= n. */
export interface Shard {
  index: number
  count: number
}

export function parseShard(value: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(value.trim())
  if (m === null) throw new InvalidArgumentError('a shard is i/n, e.g. 1/4 (the first of four).')
  const index = Number(m[1])
  const count = Number(m[2])
  if (count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`i must be from 1 to n (got ${index}/${count}).`)
  return { index, count }
}

/** The platform options without the seed (--arch --coherent --iommu --swiotlb). */
export function addPlatformOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--arch <arch>', 'platform').choices(ARCH_CHOICES).default('arm64'))
    .addOption(new Option('--coherent', 'force DMA-coherent devices (default: the platform’s: x86_64 coherent, arm64/riscv64 not)'))
    .addOption(new Option('--no-coherent', 'force non-coherent devices'))
    .addOption(new Option('--iommu <mode>', 'IOMMU').choices(IOMMU_CHOICES).default('strict'))
    .addOption(new Option('--swiotlb <mode>', 'bounce buffering').choices(SWIOTLB_CHOICES).default('auto'))
}

export function addLogOption(cmd: Command, fallback: string): Command {
  return cmd.addOption(new Option('--log-level <level>', `log level (default: $DMALAB_LOG, else ${fallback}); logs go to stderr`).choices(LOG_LEVELS))
}

export interface PlatformFlags {
  arch: PlatformOptions['arch']
  coherent?: boolean
  iommu: PlatformOptions['iommu']
  swiotlb: PlatformOptions['swiotlb']
}

/** The platform options of a run from the parsed flags. */
export function platformOf(flags: PlatformFlags, seed: number): PlatformOptions {
  return { arch: flags.arch, ...(flags.coherent !== undefined ? { coherent: flags.coherent } : {}), iommu: flags.iommu, swiotlb: flags.swiotlb, seed }
}

/** The exact command that replays one run. */
export function replayCommand(scenarioArg: string, o: PlatformOptions): string {
  const coherent = o.coherent === undefined ? '' : o.coherent ? ' --coherent' : ' --no-coherent'
  const file = /^[\w./-]+$/.test(scenarioArg) ? scenarioArg : `'${scenarioArg.replace(/'/g, `'\\''`)}'`
  return `npx dmalab run ${file} --seed ${o.seed} --arch ${o.arch}${coherent} --iommu ${o.iommu} --swiotlb ${o.swiotlb}`
}

/** A one-line label of a platform. */
export function platformLabel(o: PlatformOptions): string {
  return `${o.arch}${o.coherent === undefined ? '' : o.coherent ? ' coherent' : ' non-coherent'} iommu=${o.iommu} swiotlb=${o.swiotlb} seed=${o.seed}`
}
