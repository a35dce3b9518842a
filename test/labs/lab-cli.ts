// Helpers for the lab tests: `dmalab lab ...` spawned as a student runs it, the score it prints,
// and the 1-based line of a text in a student's file.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'

export interface Out {
  code: number | null
  out: string
  err: string
}

export function dmalab(...args: string[]): Promise<Out> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env }
    delete env['DMALAB_LOG']
    const p = spawn(process.execPath, ['--import', 'tsx', 'bin/dmalab.ts', ...args], { env, timeout: 120_000 })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, out, err }))
  })
}

export const scoreOf = (r: Out): number => Number(/Score: (\d+)\/100/.exec(r.out)?.[1] ?? NaN)

/** 1-based line of the first line of `file` containing `text`. */
export function lineOf(file: string, text: string): number {
  const i = readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(text))
  if (i < 0) throw new Error(`${file}: no line contains ${text}`)
  return i + 1
}
