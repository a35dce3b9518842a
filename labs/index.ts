/** The labs that come with dmalab (docs/labs.md), in the order `dmalab lab list` shows them. */
import audioPeriods from './audio-periods/lab.js'
import copyEngineHello from './copy-engine-hello/lab.js'
import fixTheBugs from './fix-the-bugs/lab.js'
import nicRx from './nic-rx/lab.js'
import nicTx from './nic-tx/lab.js'
import nvmeQueues from './nvme-queues/lab.js'
import type { Lab } from './lab-api.js'

export const LABS: readonly Lab[] = [copyEngineHello, fixTheBugs, nicTx, nicRx, nvmeQueues, audioPeriods]

export function findLab(id: string): Lab | undefined {
  return LABS.find((l) => l.id === id)
}
