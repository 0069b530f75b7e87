/**
 * Scenario 3 (latency at half load): p99 of a direct 16 B message and of its ack when offered at
 * 50 % of the peak acked rate — the peak measured by the direct scenario earlier in this run, or by
 * a closed-loop measurement here if direct was not run. Open loop: the offered rate does not slow
 * down when the target does, so queueing shows up in the tail instead of being hidden.
 */
import { runDirectOnce } from './direct.js'
import { cpuNotes } from './common.js'
import type { ScenarioContext, ScenarioOutcome } from './common.js'

const us2ms = (us: number): number => Math.round(us) / 1000

export async function runLatency(ctx: ScenarioContext): Promise<ScenarioOutcome> {
  let peak = ctx.peakDirectRate
  const notes: string[] = []
  if (peak === undefined || !(peak > 0)) {
    const p = await runDirectOnce(ctx, 16)
    peak = p.ackedPerSec
    ctx.log(`  latency: measured peak ${Math.round(peak)} acked/s (closed loop, 16 B)`)
  }
  const offered = Math.max(1, Math.round(peak / 2))
  const r = await runDirectOnce(ctx, 16, offered)
  ctx.log(
    `  latency @ ${offered}/s offered: ${Math.round(r.ackedPerSec)} acked/s, ack p50 ${us2ms(r.ack.percentile(50))} p99 ${us2ms(r.ack.percentile(99))} ms, ` +
      `delivery p99 ${us2ms(r.delivery.percentile(99))} ms; gen CPU ${r.generatorCpuPct.join('/')}%, server ${r.serverCpuPct ?? '?'}%, machine ${r.machineBusyPct}%`,
  )
  if (r.skipped > 0)
    notes.push(`latency: ${r.skipped} scheduled sends skipped (1000 in flight per sender): offered rate not sustained`)
  if (r.errors > 0) notes.push(`latency: ${r.errors} send errors (first: ${r.firstError ?? '?'})`)
  notes.push(...cpuNotes('latency', r.generatorCpuPct, r.serverCpuPct, r.machineBusyPct))
  const m = (name: string, unit: string, better: 'higher' | 'lower', value: number) => ({
    scenario: 'latency@50%',
    name,
    unit,
    better,
    value,
  })
  return {
    metrics: [
      m('offered msgs/s', 'msg/s', 'higher', offered),
      m('acked msgs/s', 'msg/s', 'higher', Math.round(r.ackedPerSec)),
      m('ack p50', 'ms', 'lower', us2ms(r.ack.percentile(50))),
      m('ack p99', 'ms', 'lower', us2ms(r.ack.percentile(99))),
      m('delivery p99', 'ms', 'lower', us2ms(r.delivery.percentile(99))),
    ],
    notes,
    detail: {
      peak,
      offered,
      skipped: r.skipped,
      errors: r.errors,
      generatorCpuPct: r.generatorCpuPct,
      serverCpuPct: r.serverCpuPct,
      machineBusyPct: r.machineBusyPct,
    },
  }
}
