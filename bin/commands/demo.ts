/**
 * `dmalab demo`: the demo `npm start` runs (bin/demo.ts itself, with the same arguments).
 */
import type { Command } from 'commander'
import { UsageError } from '../lib/errors.js'
import { ARCH_CHOICES } from '../lib/options.js'

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the demo of `npm start`: a stale read caught by the sanitizer, then two machines pinging over a wire')
    .argument('[arch]', `platform: ${ARCH_CHOICES.join(', ')}`, 'arm64')
    .option('--pcap <file>', 'capture the wire to a pcap file (Wireshark, tshark)')
    .action(async (arch: string, flags: { pcap?: string }) => {
      if (!(ARCH_CHOICES as readonly string[]).includes(arch)) throw new UsageError(`[arch]: unknown architecture '${arch}' (use ${ARCH_CHOICES.join(', ')})`)
      // bin/demo.ts reads its arguments from process.argv when it is imported.
      process.argv = [process.argv[0]!, 'bin/demo.ts', arch, ...(flags.pcap !== undefined ? ['--pcap', flags.pcap] : [])]
      await import('../demo.js')
    })
}
