// The block subsystem in one run: a null_blk-like disk (the test fixture) with two hardware
// queues, a volatile write cache and a DMA engine (a test master) that moves its data; written,
// read back and flushed from the harness's user space, then a verifying fio run on both queues.
import { blockUser, boot, fio, type BootOptions, type Report } from '../../kernel/index.js'
import { nullBlkAdd, nullBlkDel } from '../../test/fixtures/null-blk.js'

export async function run(options: BootOptions = {}): Promise<{ lines: string[]; reports: Report[] }> {
  const sys = boot({ log: 'silent', ...options })
  const dma = sys.attachTestMaster('nullb-dma') // the device side: it reads and writes the mapped pages
  const nb = await nullBlkAdd(sys, { name: 'nullb0', sizeBytes: 8 << 20, blocksize: 4096, submitQueues: 2, cache: true, dma })
  const blk = blockUser(sys)
  const lines: string[] = []
  for (const d of blk.disks()) {
    lines.push(`${d.name}: ${d.blocks} blocks of ${d.logicalBlockSize} bytes, ${d.nrHwQueues} hw queues of ${d.queueDepth}, write cache ${d.writeCache}, fua ${d.fua}`)
  }

  const data = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff)
  await blk.write('nullb0', 16, data, { queue: 1 }) // from submission context 1: hw queue 1
  const back = await blk.read('nullb0', 16, 2)
  lines.push(`read back ${back.length} bytes: ${back.every((b, i) => b === data[i]) ? 'identical' : 'DIFFERENT'}`)
  nb.powerFail() // the write is still in the volatile cache: a power failure loses it
  lines.push(`after a power failure without a flush: ${nb.peek(16, 2).every((b) => b === 0) ? 'lost' : 'kept'}`)
  await blk.write('nullb0', 16, data)
  await blk.flush('nullb0')
  nb.powerFail()
  lines.push(`after a flush and a power failure: ${nb.peek(16, 2).every((b, i) => b === data[i]) ? 'kept' : 'lost'}`)

  const job = { disk: 'nullb0', bs: 4096, iodepth: 16, numjobs: 2, numIos: 500, verify: true } as const
  const w = await fio(sys, { ...job, rw: 'randwrite' })
  const r = await fio(sys, { ...job, rw: 'randread', verifyState: w.verifyState })
  for (const [name, x] of [['randwrite', w], ['randread', r]] as const) {
    lines.push(`fio ${name}: ${x.ios} I/Os in ${(x.virtualNs / 1e6).toFixed(2)} ms, ${Math.round(x.iops / 1000)}k IOPS, p50 ${x.lat!.p50Ns} ns, ${x.errors} errors`)
  }
  lines.push(`verify: ${r.verified} blocks checked, ${r.verifyErrors} wrong`)
  const st = blk.stats('nullb0')
  lines.push(`nullb0 stat: ${st.read.ios} reads, ${st.write.ios} writes, ${st.flush.ios} flush; per hw queue: ${st.hctx.map((h) => h.issued).join(' + ')} requests`)

  await nullBlkDel(sys, nb) // del_gendisk, put_disk, blk_mq_free_tag_set
  dma.detach()
  lines.push(`disks after rmmod: ${blk.disks().length}, harness pages held: ${blk.pagesInUse}`)
  return { lines, reports: sys.reports }
}
