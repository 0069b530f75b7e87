/**
 * Scenario 4 (idle memory): server RSS per idle connection at 10,000 connections.
 * Connections are plain sessions: connected, no subscriptions, keepalive long enough not to fire.
 * RSS is VmRSS of the server process before and after, settled for a moment; the per-connection
 * figure includes whatever the server allocates lazily (buffers, per-client structs) and any
 * allocator growth, so it is an upper-bound-ish "what does an idle client cost you" number.
 */
import type { BenchTarget } from '../targets/target.js'
import type { WorkerCtl } from '../worker.js'
import { mapLimit, runJobs, sleep } from '../lib/pool.js'
import { hwmKiB, maxOpenFiles, rssKiB } from '../lib/proc.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

export const IDLE_CONNECTIONS = 10_000
const SETTLE_MS = 2000

export interface IdleJob {
  ids: string[]
  /** Whole job must connect within this; stragglers count as failures. */
  deadlineMs: number
}

interface IdleInfo {
  connected: number
  failed: number
  firstError?: string
  fdLimit?: number
}

export async function idleWorker(target: BenchTarget, job: IdleJob, ctl: WorkerCtl): Promise<{ closed: number }> {
  const deadline = performance.now() + job.deadlineMs
  const clients: Array<{ close(): Promise<void> }> = []
  let failed = 0
  let firstError: string | undefined
  await mapLimit(job.ids, 64, async (id) => {
    if (performance.now() > deadline) {
      failed++
      return
    }
    try {
      clients.push(await target.connect(id, { receiveDirect: false, receiveBroadcast: false }))
    } catch (err) {
      failed++
      firstError ??= err instanceof Error ? err.message : String(err)
    }
  })
  const info: IdleInfo = { connected: clients.length, failed }
  if (firstError !== undefined) info.firstError = firstError
  const fd = maxOpenFiles('self')
  if (fd !== undefined) info.fdLimit = fd
  ctl.ready(info)
  await ctl.go
  await ctl.stop
  await mapLimit(clients, 200, (c) => c.close().catch(() => {}))
  return { closed: clients.length }
}

export async function runIdle(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const notes: string[] = []
  const pid = ctx.target.serverPid()
  if (pid === undefined) {
    return { metrics: [], notes: [`idle: server pid of ${ctx.targetName} not found, RSS not measurable`], detail: {} }
  }
  const serverFd = maxOpenFiles(pid)
  if (serverFd !== undefined && serverFd < IDLE_CONNECTIONS + 64) {
    notes.push(
      `idle: ${ctx.targetName} has "Max open files" ${serverFd} (< ${IDLE_CONNECTIONS} + overhead); expect refused connections`,
    )
  }
  const n = Math.max(1, ctx.workers)
  const jobs: IdleJob[] = Array.from({ length: n }, () => ({ ids: [], deadlineMs: 90_000 }))
  for (let i = 0; i < IDLE_CONNECTIONS; i++) jobs[i % n]?.ids.push(`i${i}`)

  await sleep(500)
  const before = rssKiB(pid)
  const hwmBefore = hwmKiB(pid)
  let after: number | undefined
  let connected = 0
  let failed = 0
  let firstError: string | undefined
  let genFd: number | undefined
  const t0 = performance.now()
  let connectSecs = Number.NaN
  await runJobs<IdleInfo, { closed: number }>({
    scenario: 'idle',
    target: ctx.targetName,
    params: ctx.target.params(),
    jobs,
    readyTimeoutMs: 120_000,
    resultTimeoutMs: 60_000,
    beforeGo: async (infos) => {
      connectSecs = (performance.now() - t0) / 1000
      for (const i of infos) {
        connected += i.connected
        failed += i.failed
        firstError ??= i.firstError
        genFd = i.fdLimit
      }
      await sleep(SETTLE_MS)
      after = rssKiB(pid)
    },
    during: () => Promise.resolve(),
  })
  ctx.log(
    `  idle: ${connected}/${IDLE_CONNECTIONS} connected in ${connectSecs.toFixed(1)} s, server VmRSS ${before ?? '?'} → ${after ?? '?'} KiB` +
      ` (server fd limit ${serverFd ?? '?'}, generator fd limit ${genFd ?? '?'})`,
  )
  if (hwmBefore !== undefined && after !== undefined && before !== undefined && hwmBefore > before + (after - before) / 2) {
    // A long-running service keeps memory freed by earlier clients (malloc arenas, Go heap) and reuses it,
    // so the delta understates the per-connection cost. Only a service's first large run is clean.
    notes.push(
      `idle: ${ctx.targetName} had already reached VmHWM ${hwmBefore} KiB before this run (RSS ${before} → ${after} KiB); freed memory was reused, so RSS/conn is understated`,
    )
  }
  if (failed > 0)
    notes.push(
      `idle: ${ctx.targetName} took ${connected}/${IDLE_CONNECTIONS} connections; ${failed} failed (first: ${firstError ?? '?'})`,
    )
  const metrics: ScenarioOutcome['metrics'] = []
  if (before !== undefined && after !== undefined && connected > 0) {
    metrics.push({
      scenario: 'idle',
      name: `RSS per idle conn (${IDLE_CONNECTIONS / 1000}k)`,
      unit: 'KiB',
      better: 'lower',
      value: Math.round(((after - before) / connected) * 100) / 100,
    })
  }
  metrics.push({ scenario: 'idle', name: 'connections accepted', unit: 'conn', better: 'higher', value: connected })
  return {
    metrics,
    notes,
    detail: {
      rssBeforeKiB: before,
      hwmBeforeKiB: hwmBefore,
      rssAfterKiB: after,
      connected,
      failed,
      firstError,
      serverFdLimit: serverFd,
      generatorFdLimit: genFd,
      connectSecs,
    },
  }
}
