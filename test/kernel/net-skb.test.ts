/**
 * sk_buffs in kernel memory (kernel/net/skbuff.ts): the data-area arithmetic and its BUGs,
 * headroom per platform, page fragments (DMA-mapped by a device, freed with the skb), copying and
 * linearizing, padding; and what the checks see: a double free, a use after free, skbs a driver
 * leaks, a buffer handed up while still mapped for the device, and net_devices a driver leaves
 * behind at unbind.
 */
import { describe, expect, it } from 'vitest'
import {
  __free_page, alloc_etherdev, alloc_page, alloc_skb, boot, consume_skb, devm_alloc_etherdev, dev_kfree_skb_any,
  dev_kfree_skb_irq, DMA_FROM_DEVICE, DMA_TO_DEVICE, dma_map_single, dma_mapping_error, dma_unmap_page, dma_unmap_single,
  eth_skb_pad, eth_type_trans, free_netdev, GFP_ATOMIC, GFP_KERNEL, kfree_skb, KernelOops, mem_read_bytes, mem_write_bytes,
  napi_alloc_skb, NET_SKB_PAD, NETDEV_TX_OK, netdev_alloc_skb, netdev_alloc_skb_ip_align, netif_napi_add, netif_receive_skb,
  netUser, page_address, pci_register_driver, ptr_add, register_netdev, SET_NETDEV_DEV, skb_add_rx_frag, skb_copy_bits,
  skb_frag_address, skb_frag_dma_map, skb_headlen, skb_headroom, skb_linearize, skb_pull, skb_push, skb_put, skb_put_data,
  skb_reserve, skb_shinfo, skb_tailroom, spin_lock, spin_lock_init, spin_unlock, unregister_netdev, kmalloc, kfree,
  local_irq_restore, local_irq_save, type BootOptions, type NetDevice, type PciDev, type PciDriver,
} from '../../kernel/index.js'
import { IrqTestDevice } from '../fixtures/irq-device.js'
import { etherFrame, vethDestroy, vethPair } from '../fixtures/veth.js'

const quiet: BootOptions = { log: 'silent' }

describe('the data area', () => {
  it('reserve, put, push and pull move data, tail and len as in Linux', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      const skb = alloc_skb(200, GFP_KERNEL)!
      expect(skb_headroom(skb)).toBe(0)
      expect(skb.end).toBe(256) // SKB_DATA_ALIGN: whole cache lines
      skb_reserve(skb, 32)
      expect(skb_headroom(skb)).toBe(32)
      const p = skb_put(skb, 100)
      expect(p).toBe(ptr_add(skb.head, 32))
      expect([skb.len, skb.tail, skb_tailroom(skb)]).toEqual([100, 132, 124])
      expect(skb_push(skb, 14)).toBe(ptr_add(skb.head, 18))
      expect(skb.len).toBe(114)
      expect(skb_pull(skb, 14)).toBe(p)
      expect(skb_pull(skb, 1000)).toBeNull() // nothing pulled
      expect(skb.len).toBe(100)
      const q = skb_put_data(skb, new Uint8Array([1, 2, 3]))
      expect([...mem_read_bytes(q, 3)]).toEqual([1, 2, 3])
      kfree_skb(skb)
    })
    expect(sys.reports).toEqual([])
  })

  it('putting past the end or pushing past the head is a BUG (skb_over_panic / skb_under_panic)', async () => {
    const sys = boot(quiet)
    await expect(sys.run(() => skb_put(alloc_skb(64, GFP_KERNEL)!, 65))).rejects.toThrow(/skb_over_panic: text:skb_put len:65 put:65/)
    await expect(sys.run(() => skb_push(alloc_skb(64, GFP_KERNEL)!, 1))).rejects.toThrow(/skb_under_panic/)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops', 'oops'])
  })

  it('receive buffers get NET_SKB_PAD of headroom, plus NET_IP_ALIGN (2, but 0 on x86_64)', async () => {
    for (const arch of ['arm64', 'x86_64', 'riscv64'] as const) {
      const sys = boot({ ...quiet, arch })
      const { a } = await vethPair(sys)
      const got = await sys.run(() => {
        const s1 = netdev_alloc_skb(a, 1514)!
        const s2 = netdev_alloc_skb_ip_align(a, 1514)!
        const s3 = napi_alloc_skb(a._priv.napi!, 1514)!
        const r = [skb_headroom(s1), skb_headroom(s2), skb_headroom(s3), s1.dev === a, s3.dev === a]
        for (const s of [s1, s2, s3]) consume_skb(s)
        return r
      })
      const align = arch === 'x86_64' ? 0 : 2
      expect(got).toEqual([NET_SKB_PAD, NET_SKB_PAD + align, NET_SKB_PAD + align, true, true])
    }
  })

  it('the buffer is kmalloc memory: allocated in atomic context it must be GFP_ATOMIC', async () => {
    const sys = boot(quiet)
    const before = sys.slab.live.size
    await sys.run(() => {
      const lock = spin_lock_init()
      spin_lock(lock)
      const ok = alloc_skb(100, GFP_ATOMIC)!
      const bad = alloc_skb(100, GFP_KERNEL)!
      spin_unlock(lock)
      expect(sys.slab.live.size).toBe(before + 2)
      kfree_skb(ok)
      kfree_skb(bad)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['invalid-context'])
    expect(sys.reports[0]!.message).toMatch(/kmalloc\(GFP_KERNEL\)/)
  })

  it('eth_skb_pad pads a short frame with zeros to 60 bytes, reallocating when the tailroom is short', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      for (const room of [64, 42]) {
        const skb = alloc_skb(room, GFP_KERNEL)!
        skb_put_data(skb, new Uint8Array(42).fill(0xaa))
        if (room === 42) skb.end = 42 // as if the buffer were exact: no tailroom
        expect(eth_skb_pad(skb)).toBe(0)
        expect(skb.len).toBe(60)
        expect([...mem_read_bytes(skb.data, 60)]).toEqual([...Array<number>(42).fill(0xaa), ...Array<number>(18).fill(0)])
        kfree_skb(skb)
      }
    })
    expect(sys.reports).toEqual([])
  })
})

describe('page fragments', () => {
  it('a device DMA-reads the head and each fragment; skb_copy_bits and skb_linearize see one frame; pages are freed with the skb', async () => {
    const sys = boot(quiet)
    const m = sys.attachTestMaster('tm0')
    const out = await sys.run(() => {
      const skb = alloc_skb(64, GFP_KERNEL)!
      skb_put_data(skb, new Uint8Array(14).fill(1))
      const pg = alloc_page(GFP_KERNEL)!
      mem_write_bytes(ptr_add(page_address(pg), 100), new Uint8Array(50).fill(2))
      mem_write_bytes(ptr_add(page_address(pg), 2000), new Uint8Array(30).fill(3))
      // Two fragments in one page: the block is freed once the last reference goes.
      skb_add_rx_frag(skb, 0, pg, 100, 50, 2048)
      skb_add_rx_frag(skb, 1, pg, 2000, 30, 2048)
      expect([skb.len, skb.data_len, skb_headlen(skb), skb_shinfo(skb).nr_frags]).toEqual([94, 80, 14, 2])
      expect([...mem_read_bytes(skb_frag_address(skb_shinfo(skb).frags[1]!), 2)]).toEqual([3, 3])
      const dmas = skb_shinfo(skb).frags.map((f) => skb_frag_dma_map(m.dev, f, 0, f.len, DMA_TO_DEVICE))
      for (const d of dmas) expect(dma_mapping_error(m.dev, d)).toBe(0)
      const seen = [...m.read(dmas[0]!, 50), ...m.read(dmas[1]!, 30)]
      dmas.forEach((d, i) => dma_unmap_page(m.dev, d, skb_shinfo(skb).frags[i]!.len, DMA_TO_DEVICE))
      const flat = kmalloc(94)!
      expect(skb_copy_bits(skb, 10, flat, 84)).toBe(0)
      expect(skb_copy_bits(skb, 10, flat, 85)).toBeLessThan(0) // -EFAULT: past the end
      const copied = [...mem_read_bytes(flat, 84)]
      kfree(flat)
      expect(skb_linearize(skb)).toBe(0)
      const linear = [skb_shinfo(skb).nr_frags, skb.data_len, [...mem_read_bytes(skb.data, 94)]] as const
      kfree_skb(skb)
      return { seen, copied, linear, pg }
    })
    expect(out.seen).toEqual([...Array<number>(50).fill(2), ...Array<number>(30).fill(3)])
    expect(out.copied).toEqual([1, 1, 1, 1, ...Array<number>(50).fill(2), ...Array<number>(30).fill(3)])
    expect(out.linear).toEqual([0, 0, [...Array<number>(14).fill(1), ...Array<number>(50).fill(2), ...Array<number>(30).fill(3)]])
    // The page went back with the linearization: touching it now is a use-after-free.
    await sys.run(() => mem_read_bytes(page_address(out.pg), 1))
    expect(sys.reports.map((r) => r.kind)).toEqual(['use-after-free'])
  })

  it('a page that is not from alloc_pages cannot be a fragment', async () => {
    const sys = boot(quiet)
    await expect(sys.run(() => {
      const skb = alloc_skb(64, GFP_KERNEL)!
      const p = alloc_page(GFP_KERNEL)!
      __free_page(p)
      skb_add_rx_frag(skb, 0, p, 0, 10, 10)
    })).rejects.toThrow(/skb_add_rx_frag: argument 'page' .* must be a live page from alloc_pages/)
  })
})

describe('what the checks see', () => {
  it('freeing an skb twice is a double-free; using it afterwards is a use-after-free', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      const skb = alloc_skb(64, GFP_KERNEL)!
      kfree_skb(skb)
      kfree_skb(skb)
      const skb2 = alloc_skb(64, GFP_KERNEL)!
      dev_kfree_skb_irq(skb2)
      dev_kfree_skb_irq(skb2)
      const skb3 = alloc_skb(64, GFP_KERNEL)!
      consume_skb(skb3)
      skb_put(skb3, 4)
      // Twice from IRQs-off code: NET_TX has not run in between.
      const skb4 = alloc_skb(64, GFP_KERNEL)!
      const flags = local_irq_save()
      dev_kfree_skb_any(skb4)
      dev_kfree_skb_any(skb4)
      local_irq_restore(flags)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['double-free', 'double-free', 'use-after-free', 'double-free'])
    expect(sys.reports[3]!.message).toMatch(/already queued for freeing/)
    expect(netUser(sys).skbsInUse).toBe(0)
  })

  it('skbs a driver never frees are reported when free_netdev releases the device', async () => {
    const sys = boot(quiet)
    const pair = await vethPair(sys, { bug: 'leak-rx' })
    const net = netUser(sys)
    await net.ifup('eth0')
    await net.ifup('eth1')
    for (let i = 0; i < 3; i++) await net.send('eth0', etherFrame(pair.b.dev_addr, pair.a.dev_addr, 0x88b5, 46, i))
    expect(net.skbsInUse).toBe(3)
    await vethDestroy(sys, pair)
    expect(sys.reports.map((r) => r.kind)).toEqual(['leak'])
    expect(sys.reports[0]!.message).toMatch(/eth1: 3 sk_buff\(s\) of this device were never freed/)
    // A correct driver frees everything: no report.
    const sys2 = boot(quiet)
    const ok = await vethPair(sys2)
    const net2 = netUser(sys2)
    await net2.ifup('eth0')
    await net2.ifup('eth1')
    for (let i = 0; i < 3; i++) await net2.send('eth0', etherFrame(ok.b.dev_addr, ok.a.dev_addr, 0x88b5, 46, i))
    await vethDestroy(sys2, ok)
    expect(net2.skbsInUse).toBe(0)
    expect(sys2.reports).toEqual([])
  })

  it('a driver that frees an skb and hands it up too gets a use-after-free and a double-free', async () => {
    const sys = boot(quiet)
    const pair = await vethPair(sys, { bug: 'double-free-rx' })
    const net = netUser(sys)
    await net.ifup('eth0')
    await net.ifup('eth1')
    await net.send('eth0', etherFrame(pair.b.dev_addr, pair.a.dev_addr, 0x88b5, 46))
    expect(sys.reports.map((r) => r.kind)).toEqual(['use-after-free', 'double-free'])
  })

  for (const arch of ['arm64', 'x86_64'] as const) {
    it(`an RX buffer handed up while still mapped for the device is reported where it is read (${arch})`, async () => {
      const sys = boot({ ...quiet, arch })
      const m = sys.attachTestMaster('nic0')
      const { b } = await vethPair(sys)
      const net = netUser(sys)
      await net.ifup('eth0')
      await net.ifup('eth1')
      const sock = net.socket('eth1')
      const frame = etherFrame(b.dev_addr, new Uint8Array([2, 1, 1, 1, 1, 1]), 0x88b5, 64)
      const rxOne = (unmapFirst: boolean) =>
        sys.run(() => {
          const skb = netdev_alloc_skb(b, 1536)!
          const dma = dma_map_single(m.dev, skb.data, 1536, DMA_FROM_DEVICE)
          if (dma_mapping_error(m.dev, dma) !== 0) throw new Error('map failed')
          m.write(dma, frame) // the NIC's DMA of a received frame
          if (unmapFirst) dma_unmap_single(m.dev, dma, 1536, DMA_FROM_DEVICE) // BUG when missing
          skb_put(skb, frame.length)
          skb.protocol = eth_type_trans(skb, b) // the stack's first read of the buffer
          netif_receive_skb(skb)
          if (!unmapFirst) dma_unmap_single(m.dev, dma, 1536, DMA_FROM_DEVICE)
        })
      await rxOne(true)
      expect(sys.reports).toEqual([])
      expect(sock.recv()!.data).toEqual(frame)
      await rxOne(false)
      // eth_type_trans reads the header, the packet socket the frame, the stack frees the buffer.
      expect(sys.reports.map((r) => r.kind)).toEqual(['cpu-access-device-owned', 'cpu-access-device-owned', 'free-while-mapped'])
      expect(sys.reports[0]!.message).toMatch(/CPU read of .* \[size=14 bytes\] of a DMA_FROM_DEVICE mapping the device owns/)
      expect(sys.reports[1]!.message).toMatch(/\[size=78 bytes\]/)
    })
  }
})

describe('net_devices left behind at unbind', () => {
  function driver(variant: 'ok' | 'no-unregister' | 'no-free' | 'devm'): PciDriver {
    const devs = new Map<PciDev, NetDevice>()
    const drv: PciDriver = {
      name: 'leaky',
      id_table: [{ vendor: 0x1de5, device: 0xface }],
      probe: (pdev) => {
        const nd = variant === 'devm' ? devm_alloc_etherdev(pdev.dev, {})! : alloc_etherdev({})!
        SET_NETDEV_DEV(nd, pdev.dev)
        nd.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
        netif_napi_add(nd, null, () => 0)
        devs.set(pdev, nd)
        return Promise.resolve(register_netdev(nd))
      },
      remove: async (pdev) => {
        const nd = devs.get(pdev)!
        if (variant !== 'no-unregister') await unregister_netdev(nd)
        if (variant === 'ok' || variant === 'no-unregister') {
          if (variant === 'ok') free_netdev(nd)
        }
      },
    }
    return drv
  }

  for (const [variant, expected] of [
    ['ok', []],
    ['devm', []],
    ['no-unregister', [/irqdev0: net_device eth0 is still registered after its driver was unbound/]],
    ['no-free', [/irqdev0: net_device eth0 was unregistered but never freed/]],
  ] as const) {
    it(variant, async () => {
      const hw = new IrqTestDevice('irqdev0')
      const sys = boot({ ...quiet, devices: [hw] })
      await sys.run(() => pci_register_driver(driver(variant)))
      expect(netUser(sys).device('eth0').driver).toBe('leaky')
      await sys.unbind(sys.pciDevice('irqdev0')!)
      expect(sys.reports).toHaveLength(expected.length)
      expected.forEach((e, i) => expect(sys.reports[i]!.message).toMatch(e))
      for (const r of sys.reports) expect(r.kind).toBe('leak')
    })
  }

  it('free_netdev in remove before unregister_netdev is a BUG', async () => {
    const hw = new IrqTestDevice('irqdev0')
    const sys = boot({ ...quiet, devices: [hw] })
    let nd: NetDevice | null = null
    await sys.run(() =>
      pci_register_driver({
        name: 'wrong-order',
        id_table: [{ vendor: 0x1de5, device: 0xface }],
        probe: (pdev) => {
          nd = alloc_etherdev({})!
          SET_NETDEV_DEV(nd, pdev.dev)
          nd.netdev_ops = { ndo_start_xmit: (skb) => (dev_kfree_skb_any(skb), NETDEV_TX_OK) }
          return Promise.resolve(register_netdev(nd))
        },
        remove: () => free_netdev(nd!),
      }),
    )
    const err = await sys.unbind(sys.pciDevice('irqdev0')!).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(KernelOops)
  })
})
