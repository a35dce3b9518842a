/**
 * Sound cards (include/sound/core.h, sound/core/init.c): `snd_card_new`, `snd_card_register`,
 * `snd_card_free` and friends.
 *
 * Objects are created the way this kernel creates them: `snd_card_new(parent, idx, xid, module,
 * extra_size)` returns the card or an error pointer (the negative errno: `IS_ERR(card)`,
 * `PTR_ERR(card)`), where C fills `struct snd_card **card_ret`. `extra_size` is C's size of the
 * driver's private area (a zeroed kmalloc area, `card.private_data` is its CpuAddr, freed with the
 * card) — or, the TypeScript way, the driver's private object itself.
 *
 * A card belongs to its parent device (or, with none, to the device being probed). At unbind a
 * card the driver has not freed is reported as a `leak` naming the device, as a net_device left
 * registered is; its DMA buffers are leaks of their own (dma-debug).
 */

import { Device } from '../base/device.js'
import { ERR_PTR, type ErrPtr } from '../block/err.js'
import { EBUSY, EINVAL, ENODEV, ENOMEM } from '../errno.js'
import { kfree, kzalloc } from '../mm/memory.js'
import { mightSleep } from '../sched/might-sleep.js'
import { currentOrNull, type Task } from '../sched/current.js'
import { complete, init_completion, wait_for_completion, type Completion } from '../sched/time.js'
import type { System } from '../system.js'
import { GFP_KERNEL, type CpuAddr } from '../types.js'
import { SNDRV_CARD_ID_LEN, SNDRV_CARDS } from './asound.js'
import { pcmDisconnect, pcmFree, type SndPcm } from './pcm.js'
import { sndBadArg, sndCall, sndLog, soundState } from './state.js'

/** `struct snd_card`. */
export class SndCard {
  /** The card's index (`card->number`): /dev/snd/pcmC<number>D<device>p. */
  readonly number: number
  /** A short identifier ('Dummy', 'PCH'); unique among the system's cards. */
  id: string
  /** The driver's name ('Dummy', 'HDA-Intel'). */
  driver = ''
  /** A short card name ('Dummy'), and a long one ('Dummy 1 at 0xfe000000, irq 16'). */
  shortname = ''
  longname = ''
  mixername = ''
  components = ''
  /** The parent device: the PCI device's `struct device`. */
  readonly dev: Device | null
  /** The driver's private data: a CpuAddr of `extra_size` zeroed bytes, or the object passed. */
  private_data: unknown
  /** Called when the card is freed, before its private area is. */
  private_free: ((card: SndCard) => void) | null = null
  /** The interrupt snd_pcm_sync_stop() synchronizes with before prepare, hw_params and hw_free (0: none). */
  sync_irq = 0
  /** snd_card_disconnect() ran: the card is going away, no new opens. */
  shutdown = false
  /** snd_card_register() ran. */
  registered = false
  /** The PCM devices, in creation order. */
  readonly pcms: SndPcm[] = []
  /** DMA buffer bytes the card's PCMs hold (sound/core/pcm_memory.c's max_alloc_per_card). */
  total_pcm_alloc_bytes = 0
  /** @internal */
  readonly _sys: System
  /** @internal Open PCM files (snd_card_file_add). */
  _files = 0
  /** @internal snd_card_free's completion: completed when the last file is closed and the card is freed. */
  _released: Completion | null = null
  /** @internal The card has been released (freed). */
  _freed = false
  /** @internal The card was freed, or is to be freed when its last file closes. */
  _releasing = false
  /** @internal extra_size was a size: private_data is ours to kfree. */
  _ownsPrivate = false
  /** @internal The devres entry that checks at unbind that the driver freed the card. */
  _devres: { what: string; release(): void } | null = null
  /** @internal The device whose devres holds _devres. */
  _owner: Device | null = null

  /** @internal Use snd_card_new(). */
  constructor(sys: System, number: number, id: string, dev: Device | null) {
    this._sys = sys
    this.number = number
    this.id = id
    this.dev = dev
  }

  /** The card's device name for logs: the parent's name, or 'card<N>'. */
  get devName(): string {
    return this.dev?.name ?? `card${this.number}`
  }
}

function validId(id: string): string {
  // snd_card_set_id: alphanumerics and '_' only, at most 15 characters.
  return id.replace(/[^A-Za-z0-9_]/g, '').slice(0, SNDRV_CARD_ID_LEN)
}

function uniqueId(sys: System, card: SndCard, base: string): string {
  const taken = (id: string) => soundState(sys).cards.some((c) => c !== null && c !== card && c.id === id)
  if (!taken(base)) return base
  for (let i = 1; ; i++) {
    const suffix = `_${i}`
    const id = base.slice(0, SNDRV_CARD_ID_LEN - suffix.length) + suffix
    if (!taken(id)) return id
  }
}

/**
 * `snd_card_new(parent, idx, xid, module, extra_size)`: creates a card in index slot `idx`
 * (SNDRV_DEFAULT_IDX1, -1: the first free one) with the id `xid` (SNDRV_DEFAULT_STR1, null: one is
 * made from the short name at register). Returns the card, or an error pointer: -EBUSY (the slot
 * is taken), -ENODEV (no free slot, or idx beyond SNDRV_CARDS), -ENOMEM. Process context.
 */
export function snd_card_new(parent: Device | null, idx: number, xid: string | null, module: unknown, extra_size: number | object): SndCard | ErrPtr {
  const { t } = sndCall('snd_card_new')
  return cardNew(t, 'snd_card_new', parent, idx, xid, module, extra_size, false)
}

/**
 * `snd_devm_card_new(parent, idx, xid, module, extra_size)`: a card freed by devres at unbind
 * (snd_card_free_when_closed). Same results as snd_card_new.
 */
export function snd_devm_card_new(parent: Device, idx: number, xid: string | null, module: unknown, extra_size: number | object): SndCard | ErrPtr {
  const { t } = sndCall('snd_devm_card_new')
  return cardNew(t, 'snd_devm_card_new', parent, idx, xid, module, extra_size, true)
}

function cardNew(t: Task, fn: string, parent: Device | null, idx: unknown, xid: unknown, _module: unknown, extra: unknown, managed: boolean): SndCard | ErrPtr {
  const sys = t.sys as System
  mightSleep(t, fn)
  if (parent !== null && !(parent instanceof Device)) sndBadArg(t, fn, 'parent', 'must be a struct device (pdev.dev) or null')
  if (managed && parent === null) sndBadArg(t, fn, 'parent', 'must be a struct device: devres needs one')
  if (typeof idx !== 'number' || !Number.isInteger(idx) || idx < -1) sndBadArg(t, fn, 'idx', `must be a card index or SNDRV_DEFAULT_IDX1 (-1), got ${String(idx)}`)
  if (xid !== null && xid !== undefined && typeof xid !== 'string') sndBadArg(t, fn, 'xid', 'must be a string or SNDRV_DEFAULT_STR1 (null)')
  if (typeof extra !== 'number' && (typeof extra !== 'object' || extra === null)) sndBadArg(t, fn, 'extra_size', 'must be a size in bytes or the private object')
  if (typeof extra === 'number' && (!Number.isInteger(extra) || extra < 0 || extra > 1 << 24)) sndBadArg(t, fn, 'extra_size', `is an impossible size: ${extra}`)
  const ss = soundState(sys)
  let slot = idx
  if (slot < 0) {
    slot = ss.cards.indexOf(null)
    if (slot < 0) {
      sndLog(sys, 'error', parent?.name ?? null, `cannot find the slot for index ${idx} (range 0-${SNDRV_CARDS - 1}), error: ${-ENODEV}`)
      return ERR_PTR(-ENODEV)
    }
  } else if (slot >= SNDRV_CARDS) {
    sndLog(sys, 'error', parent?.name ?? null, `cannot find the slot for index ${idx} (range 0-${SNDRV_CARDS - 1}), error: ${-ENODEV}`)
    return ERR_PTR(-ENODEV)
  } else if (ss.cards[slot] !== null) {
    sndLog(sys, 'error', parent?.name ?? null, `cannot find the slot for index ${idx} (range 0-${SNDRV_CARDS - 1}), error: ${-EBUSY}`)
    return ERR_PTR(-EBUSY)
  }
  const card = new SndCard(sys, slot, '', parent)
  if (typeof xid === 'string' && xid !== '') card.id = uniqueId(sys, card, validId(xid) || 'Default')
  if (typeof extra === 'number') {
    if (extra > 0) {
      const p = kzalloc(extra, GFP_KERNEL)
      if (p === null) return ERR_PTR(-ENOMEM)
      card.private_data = p
      card._ownsPrivate = true
    } else card.private_data = null
  } else card.private_data = extra
  ss.cards[slot] = card
  const owner = parent ?? t.device
  if (owner !== null) {
    const check = {
      what: `snd_card ${slot}`,
      release: () => {
        if (managed) {
          card._devres = null
          // Freeing runs kernel code (dma_free_coherent): it needs a task of the system, as an
          // unbind has. Released from test code (a test master's detach), the buffers stay and
          // dma-debug reports them.
          if (currentOrNull()?.sys === sys) cardFreeWhenClosed(sys, card)
          return
        }
        if (card._freed || card._releasing || !sys.checks.dmaDebug) return
        sys.report({
          kind: 'leak',
          device: owner.name,
          message: `${owner.name}: sound card ${card.number} (${card.id || 'no id'}) was not freed when its driver was unbound: call snd_card_free() in remove (or create it with snd_devm_card_new)`,
        })
      },
    }
    card._devres = check
    card._owner = owner
    owner.devres.push(check)
  }
  return card
}

function checkCard(t: Task, fn: string, card: unknown): SndCard {
  if (!(card instanceof SndCard)) sndBadArg(t, fn, 'card', 'must be a card from snd_card_new()')
  if (card._freed) sndBadArg(t, fn, 'card', `card ${card.number} was freed (use after free)`)
  return card
}

/**
 * `snd_card_register(card)`: makes the card and its PCM devices visible to user space (the
 * harness's cards()); an id is made from the short name if the card has none. 0, or -EINVAL for a
 * card that is being freed. Process context.
 */
export function snd_card_register(card: SndCard): number {
  const { t, sys } = sndCall('snd_card_register')
  mightSleep(t, 'snd_card_register')
  const c = checkCard(t, 'snd_card_register', card)
  if (c.shutdown || c._releasing) return -EINVAL
  if (c.id === '') c.id = uniqueId(sys, c, validId(c.shortname) || 'Default')
  c.registered = true
  return 0
}

/** `snd_card_set_id(card, id)`: sets the id (made valid and unique). */
export function snd_card_set_id(card: SndCard, id: string): void {
  const { t, sys } = sndCall('snd_card_set_id')
  const c = checkCard(t, 'snd_card_set_id', card)
  if (typeof id !== 'string') sndBadArg(t, 'snd_card_set_id', 'id', 'must be a string')
  c.id = uniqueId(sys, c, validId(id) || 'Default')
}

/**
 * `snd_card_disconnect(card)`: the card goes away: no new opens, every open stream goes to
 * DISCONNECTED and its sleepers wake (their calls fail), the devices are unregistered. Returns 0.
 */
export function snd_card_disconnect(card: SndCard): number {
  const { t, sys } = sndCall('snd_card_disconnect')
  const c = checkCard(t, 'snd_card_disconnect', card)
  cardDisconnect(sys, c)
  return 0
}

function cardDisconnect(sys: System, c: SndCard): void {
  if (c.shutdown) return
  c.shutdown = true
  for (const pcm of c.pcms) pcmDisconnect(pcm)
  c.registered = false
  for (const fn of soundState(sys).onDisconnect) fn(c)
}

/**
 * `snd_card_free_when_closed(card)`: disconnects the card and frees it once its last open file
 * is closed (at once if none is). Returns 0.
 */
export function snd_card_free_when_closed(card: SndCard): number {
  const { t, sys } = sndCall('snd_card_free_when_closed')
  const c = checkCard(t, 'snd_card_free_when_closed', card)
  cardFreeWhenClosed(sys, c)
  return 0
}

function cardFreeWhenClosed(sys: System, c: SndCard): void {
  if (c._releasing) return
  c._releasing = true
  cardDisconnect(sys, c)
  if (c._files === 0) cardRelease(sys, c)
}

/**
 * `snd_card_free(card)`: disconnects the card, waits until every open file of it is closed, and
 * frees it with its PCMs and their buffers. Resolves with 0. Process context (it sleeps).
 */
export async function snd_card_free(card: SndCard): Promise<number> {
  const { t, sys } = sndCall('snd_card_free')
  if (!mightSleep(t, 'snd_card_free')) return 0
  if (card instanceof SndCard && card._freed) return 0
  const c = checkCard(t, 'snd_card_free', card)
  if (c._releasing) return 0
  const released = init_completion()
  c._released = released
  cardFreeWhenClosed(sys, c)
  if (!c._freed) await wait_for_completion(released)
  return 0
}

/** @internal A PCM file was opened on the card (snd_card_file_add); -ENODEV once it is going away. */
export function cardFileAdd(c: SndCard): number {
  if (c.shutdown) return -ENODEV
  c._files++
  return 0
}

/** @internal A PCM file of the card was closed; the last one releases a card being freed. */
export function cardFileRemove(c: SndCard): void {
  c._files = Math.max(0, c._files - 1)
  if (c._files === 0 && c._releasing && !c._freed) cardRelease(c._sys, c)
}

/** Frees the card: its PCMs (and their buffers), its private area, its slot. Runs in a task. */
function cardRelease(sys: System, c: SndCard): void {
  for (const pcm of c.pcms.splice(0)) pcmFree(pcm)
  c.private_free?.(c)
  if (c._ownsPrivate && typeof c.private_data === 'number') kfree(c.private_data as CpuAddr)
  c._freed = true
  const ss = soundState(sys)
  if (ss.cards[c.number] === c) ss.cards[c.number] = null
  if (c._devres !== null && c._owner !== null) {
    const i = c._owner.devres.indexOf(c._devres)
    if (i >= 0) c._owner.devres.splice(i, 1)
  }
  c._devres = null
  if (c._released !== null) complete(c._released)
}

/** The card in index slot `number` of sys, if any (registered or not). */
export function cardByNumber(sys: System, number: number): SndCard | null {
  return soundState(sys).cards[number] ?? null
}
