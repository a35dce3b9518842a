/** The execution model: tasks on virtual time, sleeping, waiting, timers, work, locks, contexts. */
import { describe, expect, it } from 'vitest'
import {
  boot,
  complete,
  DmalabError,
  flush_work,
  GFP_ATOMIC,
  kmalloc,
  HZ,
  init_completion,
  init_waitqueue_head,
  INIT_WORK,
  jiffies,
  ktime_get_ns,
  local_irq_restore,
  local_irq_save,
  mod_timer,
  msecs_to_jiffies,
  msleep,
  mutex_init,
  mutex_lock,
  mutex_unlock,
  schedule_work,
  spin_lock,
  spin_lock_init,
  spin_lock_irqsave,
  spin_unlock,
  spin_unlock_irqrestore,
  timer_setup,
  udelay,
  wait_event,
  wait_event_timeout,
  wait_for_completion,
  wait_for_completion_timeout,
  wake_up,
} from '../../kernel/index.js'

const quiet = { log: 'silent' } as const

describe('tasks on virtual time', () => {
  it('msleep sleeps virtual time while the CPU idles; udelay spends it busy', async () => {
    const sys = boot(quiet)
    const [slept, spun] = await sys.run(async () => {
      const t0 = ktime_get_ns()
      await msleep(10)
      const t1 = ktime_get_ns()
      udelay(50)
      return [t1 - t0, ktime_get_ns() - t1]
    })
    expect(slept).toBeGreaterThanOrEqual(10e6)
    expect(slept).toBeLessThan(10e6 + 1000)
    expect(spun).toBeGreaterThanOrEqual(50e3)
    expect(sys.cpu.idleNs).toBeGreaterThanOrEqual(10e6 - 1000)
    expect(sys.cpu.busyNs).toBeGreaterThanOrEqual(50e3)
    expect(sys.cpu.busyNs).toBeLessThan(1e6)
  })

  it('tasks of one system interleave in virtual-time order', async () => {
    const sys = boot(quiet)
    const log: string[] = []
    const worker = (name: string, period: number) => async () => {
      for (let i = 0; i < 3; i++) {
        await msleep(period)
        log.push(`${name}@${Math.round(ktime_get_ns() / 1e6)}`)
      }
    }
    await Promise.all([sys.run(worker('a', 3), 'a'), sys.run(worker('b', 5), 'b')])
    expect(log).toEqual(['a@3', 'b@5', 'a@6', 'a@9', 'b@10', 'b@15'])
  })

  it('two systems run in one process, each on its own clock', async () => {
    const a = boot(quiet)
    const b = boot({ ...quiet, arch: 'x86_64' })
    const times = await Promise.all([
      a.run(async () => {
        await msleep(2)
        return ktime_get_ns()
      }),
      b.run(async () => {
        await msleep(7)
        await msleep(7)
        return ktime_get_ns()
      }),
    ])
    expect(times[0]).toBeLessThan(3e6)
    expect(times[1]).toBeGreaterThanOrEqual(14e6)
    expect(a.clock).toBeLessThan(3e6)
  })

  it('jiffies advance at HZ', async () => {
    const sys = boot(quiet)
    const d = await sys.run(async () => {
      const j = jiffies()
      await msleep(1000)
      return jiffies() - j
    })
    expect(d).toBe(HZ)
    expect(msecs_to_jiffies(1000)).toBe(HZ)
  })
})

describe('waiting', () => {
  it('a completion is signalled by a timer; a timeout returns 0', async () => {
    const sys = boot(quiet)
    const r = await sys.run(async () => {
      const done = init_completion()
      const timer = timer_setup(null, () => complete(done))
      mod_timer(timer, jiffies() + msecs_to_jiffies(20))
      const t0 = ktime_get_ns()
      await wait_for_completion(done)
      const waited = ktime_get_ns() - t0
      const never = init_completion()
      const left = await wait_for_completion_timeout(never, msecs_to_jiffies(5))
      return { waited, left }
    })
    expect(r.waited).toBeGreaterThanOrEqual(19e6)
    expect(r.left).toBe(0)
    expect(sys.reports).toEqual([])
  })

  it('wait_event re-checks its condition at each wake_up', async () => {
    const sys = boot(quiet)
    let flag = 0
    const wq = await sys.run(() => init_waitqueue_head())
    const waiter = sys.run(async () => {
      await wait_event(wq, () => flag === 2)
      return ktime_get_ns()
    }, 'waiter')
    const waker = sys.run(async () => {
      for (let i = 0; i < 2; i++) {
        await msleep(4)
        flag++
        wake_up(wq)
      }
      const left = await wait_event_timeout(wq, () => false, msecs_to_jiffies(8))
      return left
    }, 'waker')
    const [woken, left] = await Promise.all([waiter, waker])
    expect(woken).toBeGreaterThanOrEqual(8e6)
    expect(left).toBe(0)
  })

  it('a mutex serialises two tasks across a sleep', async () => {
    const sys = boot(quiet)
    const m = await sys.run(() => mutex_init())
    const order: string[] = []
    const critical = (name: string) => async () => {
      await mutex_lock(m)
      order.push(`${name} in`)
      await msleep(5)
      order.push(`${name} out`)
      mutex_unlock(m)
    }
    await Promise.all([sys.run(critical('a'), 'a'), sys.run(critical('b'), 'b')])
    expect(order).toEqual(['a in', 'a out', 'b in', 'b out'])
  })

  it('work queued from a timer runs in process context and flush_work waits for it', async () => {
    const sys = boot(quiet)
    const ran = await sys.run(async () => {
      let slept = false
      const work = INIT_WORK(null, async () => {
        await msleep(3) // process context: may sleep
        slept = true
      })
      const timer = timer_setup(null, () => schedule_work(work))
      mod_timer(timer, jiffies() + 1)
      await msleep(5)
      await flush_work(work)
      return slept
    })
    expect(ran).toBe(true)
    expect(sys.reports).toEqual([])
  })

  it('complete() wakes one waiter at a time, in the order they went to sleep; a waiter that timed out has left the queue', async () => {
    const sys = boot(quiet)
    const done = await sys.run(() => init_completion())
    const order: string[] = []
    const waiter = (name: string, timeoutMs: number | null) =>
      sys.run(async () => {
        if (timeoutMs === null) await wait_for_completion(done)
        else if ((await wait_for_completion_timeout(done, msecs_to_jiffies(timeoutMs))) === 0) {
          order.push(`${name} timed out`)
          return
        }
        order.push(`${name} woken`)
      }, name)
    // a, b and c go to sleep in that order; b gives up after one jiffy (4 ms), before the first complete().
    const tasks = [waiter('a', null), waiter('b', 2), waiter('c', null)]
    const signaller = sys.run(async () => {
      await msleep(5)
      complete(done)
      await msleep(5)
      complete(done)
    }, 'signaller')
    await Promise.all([...tasks, signaller])
    // Had b stayed queued, the second complete() would have gone to it and c would never wake.
    expect(order).toEqual(['b timed out', 'a woken', 'c woken'])
  })

  it('a task that waits for something nothing will ever do is an error, not a hang', async () => {
    const sys = boot(quiet)
    await expect(sys.run(() => wait_for_completion(init_completion()))).rejects.toThrow(DmalabError)
  })
})

describe('contexts', () => {
  it('sleeping with a spinlock held, with IRQs off, or in a timer is invalid-context', async () => {
    const sys = boot(quiet)
    await sys.run(async () => {
      const lock = spin_lock_init()
      spin_lock(lock)
      await msleep(1)
      spin_unlock(lock)
      const flags = local_irq_save()
      await msleep(1)
      local_irq_restore(flags)
      const timer = timer_setup(null, () => void msleep(1))
      mod_timer(timer, jiffies() + 1)
      await msleep(10)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['invalid-context', 'invalid-context', 'invalid-context'])
    expect(sys.reports[0]!.message).toContain('sleeping function called from invalid context')
    expect(sys.reports[0]!.message).toContain('spinlock held')
    expect(sys.reports[1]!.message).toContain('interrupts disabled')
    expect(sys.reports[2]!.message).toContain('softirq')
  })

  it('a timer callback that returns a Promise is invalid-context', async () => {
    const sys = boot(quiet)
    await sys.run(async () => {
      // A buggy driver passes an async callback; TypeScript would stop it, JavaScript would not.
      const asyncCallback: unknown = async () => {
        await Promise.resolve()
      }
      const timer = timer_setup(null, asyncCallback as () => void)
      mod_timer(timer, jiffies() + 1)
      await msleep(10)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['invalid-context'])
    expect(sys.reports[0]!.message).toContain('returned a Promise')
  })

  it('an exception in a timer callback is an oops of that context; the system goes on', async () => {
    const sys = boot(quiet)
    const t = await sys.run(async () => {
      const timer = timer_setup(null, () => {
        throw new TypeError('null deref')
      })
      mod_timer(timer, jiffies() + 1)
      await msleep(10)
      return ktime_get_ns()
    })
    expect(t).toBeGreaterThan(0)
    expect(sys.reports.map((r) => r.kind)).toEqual(['oops'])
  })

  it('the same program gives the same virtual timeline on the same seed', async () => {
    const trace = async (seed: number) => {
      const sys = boot({ ...quiet, seed })
      const times: number[] = []
      await Promise.all([0, 1, 2].map((i) => sys.run(async () => {
        for (let k = 0; k < 3; k++) {
          await msleep(i + 1)
          times.push(ktime_get_ns())
        }
      }, `t${i}`)))
      return times
    }
    expect(await trace(4)).toEqual(await trace(4))
  })
})

describe('softirq context', () => {
  it('udelay inside a timer callback does not hang when another timer falls due meanwhile', async () => {
    const sys = boot(quiet)
    const order = await sys.run(async () => {
      const seen: string[] = []
      const a = timer_setup(null, () => {
        udelay(10)
        seen.push('a')
      })
      const b = timer_setup(null, () => seen.push('b'))
      mod_timer(a, jiffies() + 1)
      mod_timer(b, jiffies() + 1)
      await msleep(10)
      return seen
    })
    expect(order).toEqual(['a', 'b'])
  })

  it('a timer never runs inside an IRQ-off section: it waits for spin_unlock_irqrestore', async () => {
    const sys = boot(quiet)
    const log = await sys.run(() => {
      const seen: string[] = []
      const lock = spin_lock_init()
      const timer = timer_setup(null, () => seen.push('timer'))
      mod_timer(timer, jiffies() + 1)
      const flags = spin_lock_irqsave(lock)
      udelay(10_000) // the timer expires in here
      seen.push('unlock')
      spin_unlock_irqrestore(lock, flags)
      udelay(1)
      return seen
    })
    expect(log).toEqual(['unlock', 'timer'])
  })
})

describe('might_sleep', () => {
  it('a sleeping call in atomic context is reported even when it would not block', async () => {
    const sys = boot(quiet)
    await sys.run(async () => {
      const m = mutex_init()
      const done = init_completion()
      complete(done)
      const lock = spin_lock_init()
      spin_lock(lock)
      await mutex_lock(m) // free: would not block
      await wait_for_completion(done) // already completed
      spin_unlock(lock)
      mutex_unlock(m)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['invalid-context', 'invalid-context'])
  })

  it('GFP_KERNEL in atomic context is a sleeping call; GFP_ATOMIC is not', async () => {
    const sys = boot(quiet)
    await sys.run(() => {
      const lock = spin_lock_init()
      const flags = spin_lock_irqsave(lock)
      kmalloc(64, GFP_ATOMIC)
      kmalloc(64) // GFP_KERNEL
      spin_unlock_irqrestore(lock, flags)
    })
    expect(sys.reports.map((r) => r.kind)).toEqual(['invalid-context'])
    expect(sys.reports[0]!.message).toContain('GFP_ATOMIC')
  })

  it('task numbers are per system: what one system did does not show in another', async () => {
    const a = boot(quiet)
    for (let i = 0; i < 5; i++) await a.run(() => undefined)
    const b = boot(quiet)
    await b.run(async () => {
      const lock = spin_lock_init()
      spin_lock(lock)
      await msleep(1)
      spin_unlock(lock)
    })
    expect(b.reports[0]!.task).toBe('run/1')
  })
})

describe('runFor with a task that never blocks', () => {
  it('returns at its deadline: a busy softirq loop (NAPI always repolled) does not hang the harness', async () => {
    const k = await import('../../kernel/index.js')
    const sys = boot({ log: 'silent' })
    let polls = 0
    await sys.run(() => {
      const nd = k.alloc_etherdev({})!
      const n = k.netif_napi_add(nd, null, (_n, budget) => {
        polls++
        return budget // always "more work": repolled forever, through ksoftirqd
      }, 64)
      k.napi_enable(n)
      k.napi_schedule(n)
    })
    const start = sys.clock
    await sys.runFor(1_000_000)
    expect(sys.clock).toBeGreaterThanOrEqual(start + 1_000_000)
    expect(sys.clock).toBeLessThan(start + 3_000_000)
    expect(polls).toBeGreaterThan(10)
  })
})
