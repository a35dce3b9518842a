// `npm start` (bin/demo.ts), spawned as a user runs it: the stale read and its report, two systems
// pinging over the wire, the pcap capture, and bad arguments.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readPcap } from '../../host/pcap.js'

function demo(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'bin/demo.ts', ...args], { encoding: 'utf8', timeout: 120_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}

describe('npm start', () => {
  it('on arm64: the missing sync reads stale data and is reported; two systems ping each other with zero reports', () => {
    const r = demo()
    expect(r.code).toBe(0)
    expect(r.out).toContain('STALE: the CPU read its cached copy')
    expect(r.out).toContain('cpu-access-device-owned')
    expect(r.out).toMatch(/64 bytes from 10\.0\.0\.2: icmp_seq=4 ttl=64/)
    expect(r.out).toContain('4 packets transmitted, 4 received — reports: 0')
  })

  it('--pcap writes a capture of the wire that reads back: ARP, then echo requests and replies', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dmalab-demo-'))
    try {
      const file = join(dir, 'wire.pcap')
      const r = demo('x86_64', '--pcap', file)
      expect(r.code).toBe(0)
      expect(r.out).toContain(`wire captured to ${file}`)
      const cap = readPcap(file)
      const types = cap.records.map((x) => (x.data[12]! << 8) | x.data[13]!)
      expect(types.slice(0, 2)).toEqual([0x0806, 0x0806])
      expect(types.filter((t) => t === 0x0800)).toHaveLength(8)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('rejects bad arguments with a message and exit code 2', () => {
    expect(demo('sparc')).toMatchObject({ code: 2, err: expect.stringContaining("unknown architecture 'sparc'") as unknown })
    expect(demo('--pcap')).toMatchObject({ code: 2, err: expect.stringContaining('--pcap needs a file name') as unknown })
    expect(demo('arm64', 'x86_64')).toMatchObject({ code: 2, err: expect.stringContaining("unexpected argument 'x86_64'") as unknown })
    expect(demo('--help')).toMatchObject({ code: 0, out: expect.stringContaining('usage: npm start') as unknown })
  })
})
