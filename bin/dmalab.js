#!/usr/bin/env node
// The `dmalab` executable (package.json "bin"): runs bin/dmalab.ts under node with tsx's loader,
// so `npx dmalab ...` works from a plain `npm install`; the exit code and signals pass through.
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import process from 'node:process'
import { URL, fileURLToPath, pathToFileURL } from 'node:url'

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href
const entry = fileURLToPath(new URL('./dmalab.ts', import.meta.url))
const child = spawn(process.execPath, ['--import', tsx, entry, ...process.argv.slice(2)], { stdio: 'inherit' })
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig))
child.on('exit', (code, signal) => {
  if (signal !== null) process.kill(process.pid, signal)
  else process.exit(code ?? 1)
})
