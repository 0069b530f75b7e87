/**
 * Scenario latency@50%: p50/p99 of send → accepted and send → delivered for a direct 16 B message offered at
 * 50 % of the peak acked rate — the peak measured by the direct scenario earlier in this run, or by a
 * closed-loop measurement here if direct was not run. Open loop: the offered rate does not slow down when the
 * target does, so queueing shows up in the tail instead of being hidden.
 */
import { directDetail, directLog, directMetrics, runDirectOnce, WIDE } from './direct.js'
import { cpuNotes } from './common.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

export async function runLatency(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  let peak = ctx.peakDirectRate
  const notes: string[] = []
  if (peak === undefined || !(peak > 0)) {
    const p = await runDirectOnce(ctx, 16, WIDE)
    peak = p.ackedPerSec
    ctx.log(`  latency: measured peak ${Math.round(peak)} acked/s (closed loop, 16 B)`)
  }
  const offered = Math.max(1, Math.round(peak / 2))
  const r = await runDirectOnce(ctx, 16, WIDE, offered)
  ctx.log(directLog(`latency @ ${offered}/s offered`, r))
  if (r.skipped > 0)
    notes.push(`latency: ${r.skipped} scheduled sends skipped (1000 in flight per sender): offered rate not sustained`)
  if (r.errors > 0) notes.push(`latency: ${r.errors} send errors (first: ${r.firstError ?? '?'})`)
  notes.push(...cpuNotes('latency', r.generatorCpuPct, r.serverCpuPct, r.machineBusyPct))
  const metrics = directMetrics('latency@50%', '', r, { throughput: false })
  metrics.unshift(
    { scenario: 'latency@50%', name: 'offered msgs/s', unit: 'msg/s', better: 'higher', value: offered },
    { scenario: 'latency@50%', name: 'acked msgs/s', unit: 'msg/s', better: 'higher', value: Math.round(r.ackedPerSec) },
  )
  return { metrics, notes, detail: { peak, offered, ...directDetail(r) } }
}
