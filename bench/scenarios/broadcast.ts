/**
 * Scenario 2 (broadcast): one sender, 1,000 subscribed sessions, deliveries/s summed over all receivers.
 *
 * The sender runs in the coordinator. Broadcast is fire-and-forget (MQTT QoS 0, NATS core), so
 * an unthrottled sender would only measure how big the broker's buffers are. Instead the sender
 * keeps at most WINDOW messages per receiver outstanding, using delivery counts the workers report
 * every 20 ms. If deliveries stall for STALL_MS the outstanding messages are written off as lost
 * (and reported), so drops cannot freeze the sender.
 */
import type { BenchTarget } from '../targets/target.js'
import type { WorkerCtl } from '../worker.js'
import { mapLimit, runJobs, sleep } from '../lib/pool.js'
import { cpuWindow, round1 } from '../lib/proc.js'
import { cpuNotes } from './common.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

export const RECEIVERS = 1000
const BODY = 16
const WINDOW = 64
const STALL_MS = 500
const REPORT_MS = 20

export interface BroadcastJob {
  ids: string[]
}

interface BroadcastWorkerResult {
  delivered: number
  cpuPct: number
}

export async function broadcastWorker(target: BenchTarget, job: BroadcastJob, ctl: WorkerCtl): Promise<BroadcastWorkerResult> {
  const clients = await mapLimit(job.ids, 50, (id) => target.connect(id, { receiveDirect: false, receiveBroadcast: true }))
  let delivered = 0
  for (const c of clients) c.onMessage((kind) => kind === 'broadcast' && delivered++)
  ctl.ready({ connections: clients.length })
  await ctl.go
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const timer = setInterval(() => ctl.progress(delivered), REPORT_MS)
  await ctl.stop
  clearInterval(timer)
  const cpu = process.cpuUsage(cpu0)
  const cpuPct = round1((100 * (cpu.user + cpu.system)) / 1000 / (performance.now() - t0))
  const final = delivered
  await Promise.allSettled(clients.map((c) => c.close()))
  return { delivered: final, cpuPct }
}

export async function runBroadcast(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  const n = Math.max(1, ctx.workers)
  const jobs: BroadcastJob[] = Array.from({ length: n }, () => ({ ids: [] }))
  for (let i = 0; i < RECEIVERS; i++) jobs[i % n]?.ids.push(`b${i}`)
  const counts = new Array<number>(n).fill(0)
  const deliveredSum = (): number => counts.reduce((a, b) => a + b, 0)

  const sender = await ctx.target.connect('bsender', { receiveDirect: false, receiveBroadcast: false })
  let published = 0
  let writtenOff = 0
  let publishErrors = 0
  let rate = Number.NaN
  let pubRate = Number.NaN
  let senderCpuPct = Number.NaN
  let cpu: { serverCpuPct?: number; machineBusyPct: number } = { machineBusyPct: Number.NaN }
  try {
    const results = await runJobs<unknown, BroadcastWorkerResult>({
      scenario: 'broadcast',
      target: ctx.targetName,
      params: ctx.target.params(),
      jobs,
      readyTimeoutMs: 90_000,
      resultTimeoutMs: 15_000,
      onProgress: (w, d) => {
        if (typeof d === 'number') counts[w] = d
      },
      during: async () => {
        const body = Buffer.alloc(BODY)
        const start = performance.now()
        const warmEnd = start + ctx.warmupMs
        const end = warmEnd + ctx.durationMs
        const cpu0 = process.cpuUsage()
        let win: ReturnType<typeof cpuWindow> | undefined
        let d0 = 0
        let p0 = 0
        let t0 = 0
        let lastSum = 0
        let lastChange = start
        for (;;) {
          const now = performance.now()
          if (now >= end) break
          if (win === undefined && now >= warmEnd) {
            win = cpuWindow(ctx.target.serverPid())
            d0 = deliveredSum()
            p0 = published
            t0 = now
          }
          const sum = deliveredSum()
          if (sum !== lastSum) {
            lastSum = sum
            lastChange = now
          }
          let outstanding = published - (sum + writtenOff) / RECEIVERS
          if (outstanding > 0 && now - lastChange > STALL_MS) {
            writtenOff += outstanding * RECEIVERS
            lastChange = now
            outstanding = 0
          }
          const room = Math.min(32, Math.floor(WINDOW - outstanding))
          for (let k = 0; k < room; k++) {
            published++
            // Receivers only count broadcasts, never read them, so one shared body is fine even if a library queues it by reference.
            sender.publishBroadcast(body).catch(() => publishErrors++)
          }
          // Yield to I/O so the progress reports (and the sender's socket) get serviced.
          await new Promise<void>((r) => (room > 0 ? setImmediate(r) : setTimeout(r, 1)))
        }
        const t1 = performance.now()
        rate = (deliveredSum() - d0) / ((t1 - t0) / 1000)
        pubRate = (published - p0) / ((t1 - t0) / 1000)
        cpu = win?.end() ?? cpu
        const c = process.cpuUsage(cpu0)
        senderCpuPct = round1((100 * (c.user + c.system)) / 1000 / (t1 - start))
        // Let in-flight deliveries land before counting losses (bounded).
        const until = performance.now() + 3000
        while (deliveredSum() < published * RECEIVERS && performance.now() < until) await sleep(50)
      },
    })
    const total = results.reduce((a, r) => a + r.delivered, 0)
    const expected = published * RECEIVERS
    const lossPct = expected > 0 ? round1((100 * (expected - total)) / expected) : 0
    const genCpu = [senderCpuPct, ...results.map((r) => r.cpuPct)]
    ctx.log(
      `  broadcast: ${Math.round(rate)} deliveries/s (${Math.round(pubRate)} msgs/s × ${RECEIVERS}), loss ${lossPct}%; ` +
        `gen CPU sender ${senderCpuPct}% + ${results.map((r) => r.cpuPct).join('/')}%, server ${cpu.serverCpuPct ?? '?'}%, machine ${cpu.machineBusyPct}%`,
    )
    const notes = cpuNotes('broadcast', genCpu, cpu.serverCpuPct, cpu.machineBusyPct)
    if (lossPct > 0) notes.push(`broadcast: ${lossPct}% of deliveries lost (${expected - total} of ${expected}; at-most-once)`)
    if (publishErrors > 0) notes.push(`broadcast: ${publishErrors} publish errors`)
    return {
      metrics: [
        { scenario: 'broadcast', name: 'deliveries/s', unit: 'msg/s', better: 'higher', value: Math.round(rate) },
        { scenario: 'broadcast', name: 'published msgs/s', unit: 'msg/s', better: 'higher', value: Math.round(pubRate) },
      ],
      notes,
      detail: {
        lossPct,
        published,
        delivered: total,
        generatorCpuPct: genCpu,
        serverCpuPct: cpu.serverCpuPct,
        machineBusyPct: cpu.machineBusyPct,
      },
    }
  } finally {
    await sender.close().catch(() => {})
  }
}
