/**
 * Helpers of the real-world checks (test/real-world/): host tools they need, and a booted system
 * with a mini-NVMe controller and the reference driver.
 */
import { accessSync, constants } from 'node:fs'
import { join } from 'node:path'
import { blockUser, boot, pci_register_driver, type BootOptions, type System } from '../../kernel/index.js'
import { NvmeController, type NvmeOptions } from '../../devices/index.js'
import { nvme_make_driver, type NvmeParams } from '../../drivers/nvme/nvme.js'

/**
 * The path of a host tool, or an Error saying how to install it. The real-world checks never skip
 * when a tool is missing: they fail with this hint (CI installs it in .ci/run).
 */
export function requireTool(name: string, pkg: string): string {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter((d) => d !== ''), '/usr/sbin', '/sbin']
  for (const dir of dirs) {
    const p = join(dir, name)
    try {
      accessSync(p, constants.X_OK)
      return p
    } catch {
      /* not here */
    }
  }
  throw new Error(`${name} is not installed: install ${pkg} (apt-get install -y --no-install-recommends ${pkg}); .ci/run does this in CI`)
}

export interface NvmeRig {
  sys: System
  ctrl: NvmeController
}

/** Boots a system with one NvmeController ('nvme0', disk nvme0n1) and binds the reference driver. */
export async function nvmeRig(opts: BootOptions, ctrlOpts: NvmeOptions, params: NvmeParams = {}): Promise<NvmeRig> {
  const ctrl = new NvmeController({ name: 'nvme0', ...ctrlOpts })
  const sys = boot({ log: 'silent', checks: { stacks: false }, ...opts, devices: [ctrl] })
  const rc = await sys.run(() => pci_register_driver(nvme_make_driver(params)))
  if (rc !== 0) throw new Error(`pci_register_driver: ${rc}`)
  if (sys.pciDevice('nvme0')?.driver == null) throw new Error('the NVMe driver did not bind to nvme0')
  if (!blockUser(sys).disks().some((d) => d.name === 'nvme0n1')) throw new Error('no disk nvme0n1 after probe')
  return { sys, ctrl }
}

/** The reports of a system as 'kind: message' lines (what a failing assertion shows). */
export function reportLines(sys: System): string[] {
  return sys.reports.map((r) => `${r.kind}: ${r.message}`)
}
