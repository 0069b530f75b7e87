/**
 * Coordinator side of the load generator: one child process per job, so the generator can use
 * both cores and a slow job cannot starve the coordinator's timers. Every wait is time-bounded.
 *
 * Protocol (IPC, JSON):
 *   coordinator → worker  {type:'job', scenario, target, params, job} · {type:'go'} · {type:'stop'}
 *   worker → coordinator  {type:'ready', info} · {type:'progress', data} · {type:'result', result} · {type:'error', message}
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { TargetParams } from '../targets/target.js'
import { tsxExecArgv, waitForExit } from './spawn.js'

export type FromWorker =
  | { type: 'ready'; info: unknown }
  | { type: 'progress'; data: unknown }
  | { type: 'result'; result: unknown }
  | { type: 'error'; message: string }

export type ToWorker =
  { type: 'job'; scenario: string; target: string; params: TargetParams; job: unknown } | { type: 'go' } | { type: 'stop' }

const WORKER = fileURLToPath(new URL('../worker.ts', import.meta.url))

/**
 * The generator wants many sockets (10k for the idle scenario). Raise the soft fd limit to 65536,
 * or to the hard limit if that is lower, in a shell wrapper: Node cannot call setrlimit itself.
 */
const RAISE_FD_LIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"'

export class WorkerHandle {
  readonly child: ChildProcess
  private readonly inbox: FromWorker[] = []
  private waiter: ((m: FromWorker | Error) => void) | undefined
  private exitErr: Error | undefined
  onProgress: (data: unknown) => void = () => {}

  constructor(readonly index: number) {
    this.child = spawn('/bin/sh', ['-c', RAISE_FD_LIMIT, process.execPath, ...tsxExecArgv(), WORKER], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    // A worker that already exited makes a late send() fail with EPIPE; that is not an error for us.
    this.child.on('error', () => {})
    this.child.on('message', (m: FromWorker) => {
      if (m.type === 'progress') return this.onProgress(m.data)
      this.deliver(m)
    })
    this.child.on('exit', (code, sig) => {
      this.exitErr = new Error(`worker ${index} exited (code ${String(code)}, signal ${String(sig)})`)
      this.deliver(this.exitErr)
    })
  }

  private deliver(m: FromWorker | Error): void {
    const w = this.waiter
    if (w !== undefined) {
      this.waiter = undefined
      w(m)
    } else if (!(m instanceof Error)) this.inbox.push(m)
  }

  send(m: ToWorker): void {
    if (this.child.connected) this.child.send(m, (err) => void err)
  }

  /** Next non-progress message, which must be of `type`; rejects on worker error, exit or timeout. */
  async next(type: 'ready' | 'result', timeoutMs: number): Promise<unknown> {
    const m =
      this.inbox.shift() ??
      (this.exitErr
        ? this.exitErr
        : await new Promise<FromWorker | Error>((resolve) => {
            const t = setTimeout(() => {
              this.waiter = undefined
              resolve(new Error(`worker ${this.index}: no '${type}' within ${timeoutMs} ms`))
            }, timeoutMs)
            this.waiter = (x) => {
              clearTimeout(t)
              resolve(x)
            }
          }))
    if (m instanceof Error) throw m
    if (m.type === 'error') throw new Error(`worker ${this.index}: ${m.message}`)
    if (m.type !== type) throw new Error(`worker ${this.index}: expected '${type}', got '${m.type}'`)
    return m.type === 'ready' ? m.info : m.type === 'result' ? m.result : undefined
  }

  async kill(): Promise<void> {
    if (!(await waitForExit(this.child, 3000))) {
      this.child.kill('SIGKILL')
      await waitForExit(this.child, 2000)
    }
  }
}

export interface RunJobsOptions<I> {
  scenario: string
  target: string
  params: TargetParams
  jobs: unknown[]
  readyTimeoutMs: number
  resultTimeoutMs: number
  onProgress?: (worker: number, data: unknown) => void
  /** Runs after every worker is ready and before 'go'. */
  beforeGo?: (infos: I[]) => Promise<void>
  /** Runs after 'go'; when it resolves the workers get 'stop'. Without it, workers stop by themselves. */
  during?: (infos: I[]) => Promise<void>
}

/** Spawn one worker per job, start them together, collect their results. Always reaps the workers. */
export async function runJobs<I, R>(o: RunJobsOptions<I>): Promise<R[]> {
  const handles = o.jobs.map((_, i) => new WorkerHandle(i))
  try {
    handles.forEach((h, i) => {
      if (o.onProgress) h.onProgress = (d) => o.onProgress?.(i, d)
      h.send({ type: 'job', scenario: o.scenario, target: o.target, params: o.params, job: o.jobs[i] })
    })
    const infos = (await Promise.all(handles.map((h) => h.next('ready', o.readyTimeoutMs)))) as I[]
    await o.beforeGo?.(infos)
    for (const h of handles) h.send({ type: 'go' })
    if (o.during) {
      await o.during(infos)
      for (const h of handles) h.send({ type: 'stop' })
    }
    return (await Promise.all(handles.map((h) => h.next('result', o.resultTimeoutMs)))) as R[]
  } finally {
    for (const h of handles) h.send({ type: 'stop' })
    await Promise.all(handles.map((h) => h.kill()))
  }
}

/** Map with at most `limit` promises in flight (connection storms overflow listen backlogs). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run))
  return out
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
