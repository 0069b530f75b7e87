/**
 * Scenario 4 (idle memory): server RSS per idle connection at 10,000 connections.
 * Connections are plain sessions: connected, no subscriptions, keepalive long enough not to fire.
 * RSS is VmRSS of the server process before and after, settled for a moment; the per-connection
 * figure includes whatever the server allocates lazily (buffers, per-client structs) and any
 * allocator growth, so it is an upper-bound-ish "what does an idle client cost you" number. The connections come in
 * two halves, the first held while the second connects; the second half's growth alone is the marginal cost (what a
 * connection costs once the server's one-off growth is paid: the figure that scales to 50,000). Connects/s counts
 * both halves' time to connect (and log in: a Switchboard client registers).
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
  // Two halves, the first held open while the second connects: the second half's growth is the marginal cost of a
  // connection, without what a server pays once (a grown young generation, pools) — what 50,000 would cost each.
  const halves: IdleJob[][] = [0, 1].map(() => Array.from({ length: n }, () => ({ ids: [], deadlineMs: 90_000 })))
  for (let i = 0; i < IDLE_CONNECTIONS; i++) halves[i < IDLE_CONNECTIONS / 2 ? 0 : 1]![i % n]!.ids.push(`i${i}`)

  await sleep(500)
  const before = rssKiB(pid)
  const hwmBefore = hwmKiB(pid)
  const rssAfter: (number | undefined)[] = []
  const connectedIn: number[] = []
  let connected = 0
  let failed = 0
  let firstError: string | undefined
  let genFd: number | undefined
  let connectSecs = 0
  const hold = async (k: number): Promise<void> => {
    const t0 = performance.now()
    await runJobs<IdleInfo, { closed: number }>({
      scenario: 'idle',
      target: ctx.targetName,
      params: ctx.target.params(),
      jobs: halves[k]!,
      readyTimeoutMs: 120_000,
      resultTimeoutMs: 60_000,
      beforeGo: async (infos) => {
        connectSecs += (performance.now() - t0) / 1000
        connectedIn[k] = 0
        for (const i of infos) {
          connectedIn[k] += i.connected
          failed += i.failed
          firstError ??= i.firstError
          genFd = i.fdLimit
        }
        connected += connectedIn[k]
        await sleep(SETTLE_MS)
        rssAfter[k] = rssKiB(pid)
        if (k + 1 < halves.length) await hold(k + 1)
      },
      during: () => Promise.resolve(),
    })
  }
  await hold(0)
  const after = rssAfter[1]
  ctx.log(
    `  idle: ${connected}/${IDLE_CONNECTIONS} connected in ${connectSecs.toFixed(1)} s, server VmRSS ${before ?? '?'} → ${rssAfter[0] ?? '?'} → ${after ?? '?'} KiB` +
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
  const [mid, second] = [rssAfter[0], connectedIn[1] ?? 0]
  if (mid !== undefined && after !== undefined && second > 0) {
    metrics.push({
      scenario: 'idle',
      name: `RSS per idle conn, marginal (${IDLE_CONNECTIONS / 2000}k→${IDLE_CONNECTIONS / 1000}k)`,
      unit: 'KiB',
      better: 'lower',
      value: Math.round(((after - mid) / second) * 100) / 100,
    })
  }
  metrics.push({ scenario: 'idle', name: 'connections accepted', unit: 'conn', better: 'higher', value: connected })
  if (connected > 0 && connectSecs > 0)
    metrics.push({
      scenario: 'idle',
      name: 'connects/s',
      unit: 'conn/s',
      better: 'higher',
      value: Math.round(connected / connectSecs),
    })
  return {
    metrics,
    notes,
    detail: {
      rssBeforeKiB: before,
      hwmBeforeKiB: hwmBefore,
      rssHalfKiB: mid,
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
