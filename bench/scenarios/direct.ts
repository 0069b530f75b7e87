/**
 * Scenarios direct (50 pairs × 8 in flight), deep (4 pairs × 500 in flight), pair2k (one pair at 2,000 msgs/s),
 * and the engine for latency@50% (a fixed offered rate).
 *
 * Each sender sends acknowledged messages to its partner. Sender and receiver of a pair
 * live in the same worker process so one monotonic clock (performance.now) times both
 * "send → ack" and "send → receiver got it": the send time is written into the body's first 8 bytes.
 *
 * Closed loop (peak): every sender keeps `window` messages in flight. Open loop (rate): messages
 * are scheduled at a fixed rate on a 1 ms tick, in flight capped at `maxInflight` (excess counted
 * as `skipped`, which means the target could not sustain the offered rate).
 */
import type { BenchClient, BenchTarget } from '../targets/target.js'
import type { WorkerCtl } from '../worker.js'
import { Histogram } from '../lib/stats.js'
import type { SparseHistogram } from '../lib/stats.js'
import { mapLimit, runJobs } from '../lib/pool.js'
import { cpuMs, cpuWindow, round1 } from '../lib/proc.js'
import type { EventLoopDelay } from '../targets/target.js'
import { cpuNotes } from './common.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

/** How many pairs, and how many messages each sender keeps in flight (closed loop). */
export interface Shape {
  pairs: number
  window: number
}
export const WIDE: Shape = { pairs: 50, window: 8 }
export const DEEP: Shape = { pairs: 4, window: 500 }
export const PAIR_RATE = 2000
const MAX_INFLIGHT = 1000
const DRAIN_MS = 3000

export interface DirectJob {
  pairs: Array<[from: string, to: string]>
  bodySize: number
  window: number
  /** Total offered msgs/s for this worker (open loop); absent = closed loop. */
  rate?: number
  warmupMs: number
  durationMs: number
}

interface DirectWorkerResult {
  acked: number
  delivered: number
  errors: number
  firstError?: string
  skipped: number
  windowMs: number
  cpuPct: number
  accepted: { buckets: SparseHistogram; max: number }
  ack: { buckets: SparseHistogram; max: number }
  delivery: { buckets: SparseHistogram; max: number }
}

export async function directWorker(target: BenchTarget, job: DirectJob, ctl: WorkerCtl): Promise<DirectWorkerResult> {
  const ackHist = new Histogram()
  const acceptedHist = new Histogram()
  const deliveryHist = new Histogram()
  let recording = false
  let acked = 0
  let delivered = 0
  let errors = 0
  let skipped = 0
  let firstError: string | undefined

  const receivers = await mapLimit(job.pairs, 25, ([, to]) =>
    target.connect(to, { receiveDirect: true, receiveBroadcast: false }),
  )
  const senders = await mapLimit(job.pairs, 25, ([from]) =>
    target.connect(from, { receiveDirect: false, receiveBroadcast: false }),
  )
  for (const r of receivers) {
    r.onMessage((kind, body) => {
      if (kind !== 'direct' || !recording) return
      delivered++
      deliveryHist.record((performance.now() - body.readDoubleLE(0)) * 1000)
    })
  }
  ctl.ready({ connections: receivers.length + senders.length })
  await ctl.go

  let sending = true
  let inflight = 0
  const inflightBySender = new Array<number>(senders.length).fill(0)

  const sendOne = (i: number, s: BenchClient, to: string, onDone: () => void): void => {
    const body = Buffer.alloc(job.bodySize)
    const t = performance.now()
    body.writeDoubleLE(t, 0)
    inflight++
    inflightBySender[i] = (inflightBySender[i] ?? 0) + 1
    let accepted = false
    const onAccepted = (): void => {
      accepted = true
      if (recording) acceptedHist.record((performance.now() - t) * 1000)
    }
    s.sendDirect(to, body, onAccepted).then(
      () => {
        inflight--
        inflightBySender[i] = (inflightBySender[i] ?? 1) - 1
        if (recording) {
          const now = performance.now()
          acked++
          ackHist.record((now - t) * 1000)
          // Targets without a separate "accepted" moment: it is the acknowledgement.
          if (!accepted) acceptedHist.record((now - t) * 1000)
        }
        onDone()
      },
      (err: unknown) => {
        inflight--
        inflightBySender[i] = (inflightBySender[i] ?? 1) - 1
        errors++
        firstError ??= err instanceof Error ? err.message : String(err)
        // Back off so a dead connection cannot spin the loop; the run is time-bounded anyway.
        setTimeout(onDone, 10)
      },
    )
  }

  const cpu0 = process.cpuUsage()
  const start = performance.now()
  let tick: NodeJS.Timeout | undefined
  if (job.rate === undefined) {
    senders.forEach((s, i) => {
      const to = job.pairs[i]?.[1] ?? ''
      const loop = (): void => {
        if (sending) sendOne(i, s, to, loop)
      }
      for (let k = 0; k < job.window; k++) loop()
    })
  } else {
    const perSender = job.rate / senders.length
    const scheduled = new Array<number>(senders.length).fill(0)
    tick = setInterval(() => {
      const due = Math.floor(((performance.now() - start) * perSender) / 1000)
      senders.forEach((s, i) => {
        const to = job.pairs[i]?.[1] ?? ''
        while ((scheduled[i] ?? 0) < due) {
          scheduled[i] = (scheduled[i] ?? 0) + 1
          if ((inflightBySender[i] ?? 0) >= MAX_INFLIGHT) {
            if (recording) skipped++
          } else sendOne(i, s, to, () => {})
        }
      })
    }, 1)
  }

  await sleepMs(job.warmupMs)
  recording = true
  const w0 = performance.now()
  await sleepMs(job.durationMs)
  recording = false
  const windowMs = performance.now() - w0
  sending = false
  if (tick) clearInterval(tick)
  const cpu = process.cpuUsage(cpu0)
  const cpuPct = round1((100 * (cpu.user + cpu.system)) / 1000 / (performance.now() - start))

  const drainUntil = performance.now() + DRAIN_MS
  while (inflight > 0 && performance.now() < drainUntil) await sleepMs(20)
  await Promise.allSettled([...senders, ...receivers].map((c) => c.close()))

  const out: DirectWorkerResult = {
    acked,
    delivered,
    errors,
    skipped,
    windowMs,
    cpuPct,
    accepted: acceptedHist.toSparse(),
    ack: ackHist.toSparse(),
    delivery: deliveryHist.toSparse(),
  }
  if (firstError !== undefined) out.firstError = firstError
  return out
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

export interface DirectRunResult {
  ackedPerSec: number
  deliveredPerSec: number
  /** send → the server took it (ACCEPTED, PUBACK, PONG). */
  accepted: Histogram
  /** send → the send settled (the same as accepted, except for Switchboard's receipt). */
  ack: Histogram
  delivery: Histogram
  errors: number
  skipped: number
  firstError?: string
  generatorCpuPct: number[]
  serverCpuPct?: number
  /** Server CPU time per acknowledged message over the measured window. */
  serverCpuUsPerMsg?: number
  machineBusyPct: number
  eventLoop?: EventLoopDelay
  /** The server's GC time in the measured window as a share of its CPU time there, % (issue 12 aim 7). */
  gcPct?: number
}

/** Coordinator half: split the pairs over the workers, run, merge. Server CPU and event loop over the measured window. */
export async function runDirectOnce(
  ctx: ScenarioContext,
  bodySize: number,
  shape: Shape,
  rate?: number,
): Promise<DirectRunResult> {
  const n = Math.max(1, Math.min(ctx.workers, shape.pairs))
  const jobs: DirectJob[] = Array.from({ length: n }, () => ({
    pairs: [],
    bodySize,
    window: shape.window,
    warmupMs: ctx.warmupMs,
    durationMs: ctx.durationMs,
  }))
  for (let p = 0; p < shape.pairs; p++) jobs[p % n]?.pairs.push([`s${p}`, `r${p}`])
  if (rate !== undefined) for (const j of jobs) j.rate = (rate * j.pairs.length) / shape.pairs

  const pid = ctx.target.serverPid()
  let cpu: { serverCpuPct?: number; machineBusyPct: number } = { machineBusyPct: Number.NaN }
  let serverCpuMs: number | undefined
  let windowMs = Number.NaN
  let eventLoop: EventLoopDelay | undefined
  let gcAtStart: number | undefined
  const results = await runJobs<unknown, DirectWorkerResult>({
    scenario: 'direct',
    target: ctx.targetName,
    params: ctx.target.params(),
    jobs,
    readyTimeoutMs: 60_000,
    resultTimeoutMs: ctx.warmupMs + ctx.durationMs + DRAIN_MS + 15_000,
    // The workers keep their own time from 'go'; the coordinator reads the server over the same window.
    during: async () => {
      await sleepMs(ctx.warmupMs)
      gcAtStart = (await ctx.target.eventLoopDelay?.().catch(() => undefined))?.gcSeconds
      const win = cpuWindow(pid)
      const c0 = pid === undefined ? undefined : cpuMs(pid)
      const t0 = performance.now()
      await sleepMs(ctx.durationMs)
      const c1 = pid === undefined ? undefined : cpuMs(pid)
      windowMs = performance.now() - t0
      cpu = win.end()
      if (c0 !== undefined && c1 !== undefined) serverCpuMs = c1 - c0
      eventLoop = await ctx.target.eventLoopDelay?.().catch(() => undefined)
    },
  })
  const accepted = new Histogram()
  const ack = new Histogram()
  const delivery = new Histogram()
  let errors = 0
  let skipped = 0
  let firstError: string | undefined
  let perSec = 0
  let delPerSec = 0
  for (const r of results) {
    accepted.merge(r.accepted)
    ack.merge(r.ack)
    delivery.merge(r.delivery)
    errors += r.errors
    skipped += r.skipped
    firstError ??= r.firstError
    perSec += r.acked / (r.windowMs / 1000)
    delPerSec += r.delivered / (r.windowMs / 1000)
  }
  const out: DirectRunResult = {
    ackedPerSec: perSec,
    deliveredPerSec: delPerSec,
    accepted,
    ack,
    delivery,
    errors,
    skipped,
    generatorCpuPct: results.map((r) => r.cpuPct),
    machineBusyPct: cpu.machineBusyPct,
  }
  if (cpu.serverCpuPct !== undefined) out.serverCpuPct = cpu.serverCpuPct
  // CPU/s ÷ msgs/s: the windows of the coordinator and of the workers differ by the IPC latency, rates do not.
  if (serverCpuMs !== undefined && perSec > 0)
    out.serverCpuUsPerMsg = Math.round(((serverCpuMs * 1000) / (windowMs / 1000) / perSec) * 10) / 10
  if (eventLoop !== undefined) out.eventLoop = eventLoop
  // Issue 12 aim 7: the server's GC time in the window as a share of its CPU time in the window.
  if (gcAtStart !== undefined && eventLoop?.gcSeconds !== undefined && serverCpuMs !== undefined && serverCpuMs > 0)
    out.gcPct = Math.round(((eventLoop.gcSeconds - gcAtStart) * 1000 * 1000) / serverCpuMs) / 10
  if (firstError !== undefined) out.firstError = firstError
  return out
}

const us2ms = (us: number): number => Math.round(us) / 1000
const ms3 = (ms: number): number => Math.round(ms * 1000) / 1000

/** The metrics every direct-style measurement reports, under `scenario` and a row prefix (e.g. "16B "). */
export function directMetrics(
  scenario: string,
  prefix: string,
  r: DirectRunResult,
  opts: { throughput: boolean },
): ScenarioOutcome['metrics'] {
  const out: ScenarioOutcome['metrics'] = []
  const m = (name: string, unit: string, better: 'higher' | 'lower', value: number): void => {
    if (Number.isFinite(value)) out.push({ scenario, name: `${prefix}${name}`, unit, better, value })
  }
  if (opts.throughput) m('acked msgs/s', 'msg/s', 'higher', Math.round(r.ackedPerSec))
  m('accepted p50', 'ms', 'lower', us2ms(r.accepted.percentile(50)))
  m('accepted p99', 'ms', 'lower', us2ms(r.accepted.percentile(99)))
  m('delivery p50', 'ms', 'lower', us2ms(r.delivery.percentile(50)))
  m('delivery p99', 'ms', 'lower', us2ms(r.delivery.percentile(99)))
  if (r.serverCpuUsPerMsg !== undefined) m('server CPU/msg', 'µs', 'lower', r.serverCpuUsPerMsg)
  if (r.eventLoop !== undefined) {
    m('event-loop delay p99', 'ms', 'lower', ms3(r.eventLoop.p99))
    m('event-loop delay max', 'ms', 'lower', ms3(r.eventLoop.max))
  }
  if (r.gcPct !== undefined) m('GC share of server CPU', '%', 'lower', r.gcPct)
  return out
}

export function directLog(label: string, r: DirectRunResult): string {
  const el =
    r.eventLoop === undefined
      ? ''
      : `; event loop p99 ${ms3(r.eventLoop.p99)} max ${ms3(r.eventLoop.max)} ms (scrape ${ms3(r.eventLoop.scrapeMs)} ms)` +
        (r.gcPct === undefined ? '' : `; GC ${r.gcPct}% of server CPU`)
  return (
    `  ${label}: ${Math.round(r.ackedPerSec)} acked/s, accepted p50/p99 ${us2ms(r.accepted.percentile(50))}/${us2ms(r.accepted.percentile(99))} ms, ` +
    `settled p99 ${us2ms(r.ack.percentile(99))} ms, delivery p50/p99 ${us2ms(r.delivery.percentile(50))}/${us2ms(r.delivery.percentile(99))} ms; ` +
    `server ${r.serverCpuPct ?? '?'}% (${r.serverCpuUsPerMsg ?? '?'} µs/msg), gen CPU ${r.generatorCpuPct.join('/')}%, machine ${r.machineBusyPct}%${el}`
  )
}

export function directDetail(r: DirectRunResult): Record<string, unknown> {
  return {
    ackedPerSec: Math.round(r.ackedPerSec),
    deliveredPerSec: Math.round(r.deliveredPerSec),
    settledP50Ms: us2ms(r.ack.percentile(50)),
    settledP99Ms: us2ms(r.ack.percentile(99)),
    errors: r.errors,
    skipped: r.skipped,
    firstError: r.firstError,
    generatorCpuPct: r.generatorCpuPct,
    serverCpuPct: r.serverCpuPct,
    serverCpuUsPerMsg: r.serverCpuUsPerMsg,
    machineBusyPct: r.machineBusyPct,
    eventLoop: r.eventLoop,
    gcPct: r.gcPct,
  }
}

/** direct (50 pairs × 8 in flight) or deep (4 pairs × 500): closed loop at 16 B and at 1 KiB. */
export async function runDirect(
  ctx: ScenarioContext,
  scenario: 'direct' | 'deep',
): Promise<ScenarioOutcome & { peak16: number }> {
  const shape = scenario === 'direct' ? WIDE : DEEP
  const out: ScenarioOutcome & { peak16: number } = { metrics: [], notes: [], detail: {}, peak16: Number.NaN }
  for (const [label, size] of [
    ['16B', 16],
    ['1KiB', 1024],
  ] as const) {
    const r = await runDirectOnce(ctx, size, shape)
    if (size === 16) out.peak16 = r.ackedPerSec
    out.metrics.push(...directMetrics(scenario, `${label} `, r, { throughput: true }))
    out.detail[label] = directDetail(r)
    ctx.log(directLog(`${scenario} ${label} (${shape.pairs} pairs × ${shape.window})`, r))
    if (r.errors > 0) out.notes.push(`${scenario} ${label}: ${r.errors} send errors (first: ${r.firstError ?? '?'})`)
    out.notes.push(...cpuNotes(`${scenario} ${label}`, r.generatorCpuPct, r.serverCpuPct, r.machineBusyPct))
  }
  return out
}

/** pair2k: one pair, 16 B, offered open loop at 2,000 msgs/s: latency and server CPU per message at a modest rate. */
export async function runPair(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const r = await runDirectOnce(ctx, 16, { pairs: 1, window: 1 }, PAIR_RATE)
  ctx.log(directLog(`pair2k (1 pair @ ${PAIR_RATE}/s)`, r))
  const notes = cpuNotes('pair2k', r.generatorCpuPct, r.serverCpuPct, r.machineBusyPct)
  if (r.skipped > 0) notes.push(`pair2k: ${r.skipped} scheduled sends skipped (1000 in flight): 2,000/s not sustained`)
  if (r.errors > 0) notes.push(`pair2k: ${r.errors} send errors (first: ${r.firstError ?? '?'})`)
  const metrics = directMetrics('pair2k', '', r, { throughput: false })
  metrics.unshift({ scenario: 'pair2k', name: 'acked msgs/s', unit: 'msg/s', better: 'higher', value: Math.round(r.ackedPerSec) })
  return { metrics, notes, detail: directDetail(r) }
}
