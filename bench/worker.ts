/** Load-generator worker process: runs one scenario job against one target, then exits. See lib/pool.ts. */
import type { ToWorker } from './lib/pool.js'
import { targets } from './targets/index.js'
import type { BenchTarget } from './targets/target.js'
import { directWorker } from './scenarios/direct.js'
import { broadcastWorker } from './scenarios/broadcast.js'
import { idleWorker } from './scenarios/idle.js'

/** What a scenario's worker half gets: its control channel to the coordinator. */
export interface WorkerCtl {
  ready(info: unknown): void
  progress(data: unknown): void
  /** Resolves on the coordinator's 'go'. */
  go: Promise<void>
  /** Resolves on the coordinator's 'stop' (or when the coordinator goes away). */
  stop: Promise<void>
}

export type WorkerFn = (target: BenchTarget, job: never, ctl: WorkerCtl) => Promise<unknown>

const scenarios: Record<string, WorkerFn> = {
  direct: directWorker as WorkerFn,
  broadcast: broadcastWorker as WorkerFn,
  idle: idleWorker as WorkerFn,
}

let resolveGo: () => void = () => {}
let resolveStop: () => void = () => {}
const ctl: WorkerCtl = {
  ready: (info) => process.send?.({ type: 'ready', info }),
  progress: (data) => process.send?.({ type: 'progress', data }),
  go: new Promise((r) => (resolveGo = r)),
  stop: new Promise((r) => (resolveStop = r)),
}

process.on('disconnect', () => {
  resolveStop()
  // Never outlive the coordinator by more than a moment.
  setTimeout(() => process.exit(1), 3000).unref()
})

process.on('message', (m: ToWorker) => {
  if (m.type === 'go') resolveGo()
  else if (m.type === 'stop') resolveStop()
  else if (m.type === 'job') void runJob(m)
})

async function runJob(m: Extract<ToWorker, { type: 'job' }>): Promise<void> {
  try {
    const entry = targets[m.target]
    const fn = scenarios[m.scenario]
    if (entry === undefined || fn === undefined) throw new Error(`unknown target/scenario ${m.target}/${m.scenario}`)
    const result = await fn(entry.factory(m.params), m.job as never, ctl)
    process.send?.({ type: 'result', result }, () => process.exit(0))
  } catch (err) {
    process.send?.({ type: 'error', message: err instanceof Error ? err.message : String(err) }, () => process.exit(1))
  }
}
