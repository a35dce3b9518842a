/**
 * Real-world check: an ext4 file system through the NVMe reference driver. mkfs.ext4 (e2fsprogs)
 * builds a small image populated from a directory (no root, no mount: `mkfs.ext4 -d`); the image
 * is written to an empty mini-NVMe controller through the emulated driver in 256 KiB pieces from
 * four submission contexts at once, flushed, read back through the driver into a file, and
 * `fsck.ext4 -n -f` must find that file clean (exit 0). The bytes must equal the image's, on the
 * durable medium as well as through the driver, with zero reports — on arm64 (IOMMU strict) and
 * on riscv64 with every DMA bounced through swiotlb.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { blockUser, type BootOptions } from '../../kernel/index.js'
import { nvmeRig, reportLines, requireTool } from './tools.js'

const IMAGE_BYTES = 16 << 20
const CHUNK = 256 << 10
const QUEUES = 4

let dir = ''
let image = new Uint8Array(0)

/** Deterministic file contents (a small LCG), so the image's files are not all zeros. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  let x = seed >>> 0
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0
    b[i] = x >>> 24
  }
  return b
}

beforeAll(() => {
  const mkfs = requireTool('mkfs.ext4', 'e2fsprogs')
  requireTool('fsck.ext4', 'e2fsprogs')
  dir = mkdtempSync(join(tmpdir(), 'dmalab-ext4-'))
  const root = join(dir, 'root')
  mkdirSync(join(root, 'etc'), { recursive: true })
  mkdirSync(join(root, 'data', 'deep', 'er'), { recursive: true })
  writeFileSync(join(root, 'etc', 'hostname'), 'dmalab\n')
  writeFileSync(join(root, 'README'), 'an ext4 image written through the emulated NVMe driver\n'.repeat(40))
  writeFileSync(join(root, 'data', 'small.bin'), bytes(3000, 1))
  writeFileSync(join(root, 'data', 'page.bin'), bytes(4096, 2))
  writeFileSync(join(root, 'data', 'big.bin'), bytes(3 << 20, 3))
  writeFileSync(join(root, 'data', 'deep', 'er', 'odd.bin'), bytes(777_777, 4))
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'data', `f${i}.txt`), `file ${i}\n`.repeat(i * 13 + 1))
  const img = join(dir, 'ext4.img')
  writeFileSync(img, Buffer.alloc(0))
  execFileSync('truncate', ['-s', String(IMAGE_BYTES), img])
  execFileSync(mkfs, ['-q', '-F', '-b', '4096', '-L', 'dmalab', '-d', root, img], { stdio: 'pipe' })
  image = new Uint8Array(readFileSync(img))
  expect(image.length).toBe(IMAGE_BYTES)
})

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

function fsck(path: string): { status: number | null; out: string } {
  const r = spawnSync(requireTool('fsck.ext4', 'e2fsprogs'), ['-n', '-f', path], { encoding: 'utf8' })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

const PLATFORMS: { name: string; opts: BootOptions }[] = [
  { name: 'arm64, IOMMU strict, swiotlb auto', opts: { arch: 'arm64', iommu: 'strict', swiotlb: 'auto', seed: 11 } },
  { name: 'riscv64, IOMMU off, swiotlb force', opts: { arch: 'riscv64', iommu: 'off', swiotlb: 'force', seed: 12 } },
]

describe('ext4 through the NVMe driver', () => {
  it('the original image is a clean ext4 file system', () => {
    const r = fsck(join(dir, 'ext4.img'))
    expect(r.status, r.out).toBe(0)
  })

  for (const p of PLATFORMS) {
    it(`write the image on ${QUEUES} queues, flush, read it back: fsck clean, bytes identical (${p.name})`, async () => {
      const { sys, ctrl } = await nvmeRig(p.opts, { sizeBytes: IMAGE_BYTES }, { io_queues: QUEUES })
      const blk = blockUser(sys)
      const lbs = blk.disks()[0]!.logicalBlockSize
      const chunks = IMAGE_BYTES / CHUNK
      // Each queue's task writes every QUEUES-th chunk, all four running at once.
      await Promise.all(
        Array.from({ length: QUEUES }, async (_, q) => {
          for (let c = q; c < chunks; c += QUEUES) {
            await blk.write('nvme0n1', (c * CHUNK) / lbs, image.subarray(c * CHUNK, (c + 1) * CHUNK), { queue: q })
          }
        }),
      )
      await blk.flush('nvme0n1')
      expect(ctrl.cacheDirtyBytes).toBe(0)
      // The durable medium holds the image.
      const medium = new Uint8Array(IMAGE_BYTES)
      ctrl.backend.read(0, medium, 0, IMAGE_BYTES)
      expect(Buffer.compare(medium, image)).toBe(0)
      // Read back through the driver, from every queue.
      const back = new Uint8Array(IMAGE_BYTES)
      await Promise.all(
        Array.from({ length: QUEUES }, async (_, q) => {
          for (let c = q; c < chunks; c += QUEUES) {
            back.set(await blk.read('nvme0n1', (c * CHUNK) / lbs, CHUNK / lbs, { queue: q }), c * CHUNK)
          }
        }),
      )
      expect(Buffer.compare(back, image)).toBe(0)
      const file = join(dir, `readback-${p.opts.arch!}.img`)
      writeFileSync(file, back)
      const r = fsck(file)
      expect(r.status, r.out).toBe(0)
      expect(r.out).toMatch(/dmalab: \d+\/\d+ files/)
      const st = blk.stats('nvme0n1')
      expect(st.hctx.every((h) => h.issued > 0)).toBe(true)
      await sys.unbind(sys.pciDevice('nvme0')!)
      expect(reportLines(sys)).toEqual([])
    })
  }
})
