/**
 * Scenario 1 (direct) and the engine for scenario 3 (latency at a fixed offered rate).
 *
 * 50 pairs; each sender sends acknowledged messages to its partner. Sender and receiver of a pair
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
import { cpuWindow, round1 } from '../lib/proc.js'
import { cpuNotes } from './common.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

export const PAIRS = 50
export const DEFAULT_WINDOW = 8
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
  ack: { buckets: SparseHistogram; max: number }
  delivery: { buckets: SparseHistogram; max: number }
}

export async function directWorker(target: BenchTarget, job: DirectJob, ctl: WorkerCtl): Promise<DirectWorkerResult> {
  const ackHist = new Histogram()
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
    s.sendDirect(to, body).then(
      () => {
        inflight--
        inflightBySender[i] = (inflightBySender[i] ?? 1) - 1
        if (recording) {
          acked++
          ackHist.record((performance.now() - t) * 1000)
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
  ack: Histogram
  delivery: Histogram
  errors: number
  skipped: number
  firstError?: string
  generatorCpuPct: number[]
  serverCpuPct?: number
  machineBusyPct: number
}

/** Coordinator half: split the pairs over the workers, run, merge. */
export async function runDirectOnce(ctx: ScenarioContext, bodySize: number, rate?: number): Promise<DirectRunResult> {
  const n = Math.max(1, Math.min(ctx.workers, PAIRS))
  const jobs: DirectJob[] = Array.from({ length: n }, () => ({
    pairs: [],
    bodySize,
    window: DEFAULT_WINDOW,
    warmupMs: ctx.warmupMs,
    durationMs: ctx.durationMs,
  }))
  for (let p = 0; p < PAIRS; p++) jobs[p % n]?.pairs.push([`s${p}`, `r${p}`])
  if (rate !== undefined) for (const j of jobs) j.rate = (rate * j.pairs.length) / PAIRS

  let win: ReturnType<typeof cpuWindow> | undefined
  const results = await runJobs<unknown, DirectWorkerResult>({
    scenario: 'direct',
    target: ctx.targetName,
    params: ctx.target.params(),
    jobs,
    readyTimeoutMs: 60_000,
    resultTimeoutMs: ctx.warmupMs + ctx.durationMs + DRAIN_MS + 15_000,
    beforeGo: async () => {
      // Time the server over the whole go→result span; warmup is included but is short.
      win = cpuWindow(ctx.target.serverPid())
    },
  })
  const cpu = win?.end() ?? { machineBusyPct: Number.NaN }
  const ack = new Histogram()
  const delivery = new Histogram()
  let errors = 0
  let skipped = 0
  let firstError: string | undefined
  let perSec = 0
  let delPerSec = 0
  for (const r of results) {
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
    ack,
    delivery,
    errors,
    skipped,
    generatorCpuPct: results.map((r) => r.cpuPct),
    machineBusyPct: cpu.machineBusyPct,
  }
  if (cpu.serverCpuPct !== undefined) out.serverCpuPct = cpu.serverCpuPct
  if (firstError !== undefined) out.firstError = firstError
  return out
}

const us2ms = (us: number): number => Math.round(us) / 1000

export async function runDirect(ctx: ScenarioContext): Promise<ScenarioOutcome & { peak16: number }> {
  const out: ScenarioOutcome & { peak16: number } = { metrics: [], notes: [], detail: {}, peak16: Number.NaN }
  for (const [label, size] of [
    ['16B', 16],
    ['1KiB', 1024],
  ] as const) {
    const r = await runDirectOnce(ctx, size)
    if (size === 16) out.peak16 = r.ackedPerSec
    const m = (name: string, unit: string, better: 'higher' | 'lower', value: number): void => {
      out.metrics.push({ scenario: 'direct', name: `${label} ${name}`, unit, better, value })
    }
    m('acked msgs/s', 'msg/s', 'higher', Math.round(r.ackedPerSec))
    m('ack p50', 'ms', 'lower', us2ms(r.ack.percentile(50)))
    m('ack p99', 'ms', 'lower', us2ms(r.ack.percentile(99)))
    m('delivery p50', 'ms', 'lower', us2ms(r.delivery.percentile(50)))
    m('delivery p99', 'ms', 'lower', us2ms(r.delivery.percentile(99)))
    out.detail[label] = {
      deliveredPerSec: Math.round(r.deliveredPerSec),
      errors: r.errors,
      firstError: r.firstError,
      generatorCpuPct: r.generatorCpuPct,
      serverCpuPct: r.serverCpuPct,
      machineBusyPct: r.machineBusyPct,
    }
    ctx.log(
      `  direct ${label}: ${Math.round(r.ackedPerSec)} acked/s, ack p99 ${us2ms(r.ack.percentile(99))} ms, ` +
        `delivery p99 ${us2ms(r.delivery.percentile(99))} ms; gen CPU ${r.generatorCpuPct.join('/')}%, server ${r.serverCpuPct ?? '?'}%, machine ${r.machineBusyPct}%`,
    )
    if (r.errors > 0) out.notes.push(`direct ${label}: ${r.errors} send errors (first: ${r.firstError ?? '?'})`)
    out.notes.push(...cpuNotes(`direct ${label}`, r.generatorCpuPct, r.serverCpuPct, r.machineBusyPct))
  }
  return out
}
