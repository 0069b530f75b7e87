/**
 * `npm run bench:check`: a short run of Switchboard beside its peers, whose ratios (Switchboard ÷ best peer, per
 * scenario and metric) are compared with the last recorded ones in bench/baseline.json; it names every ratio that
 * fell by more than the noise. Not for CI: on a shared machine the noise is other people's work.
 *
 *   npm run bench:check                       # compare with bench/baseline.json
 *   npm run bench:check -- --update           # … and record this run as the new baseline
 *   npm run bench:check -- --from out.json --update   # record the ratios of a full `npm run bench -- --json out.json`
 *
 * Noise: a ratio "fell" when it is worse than the baseline's by more than --noise (default 0.2, i.e. 20 %) for
 * throughput and CPU rows, and by more than --latency-noise (default 0.5) for latency percentiles. Why these:
 * one 2–5 s measurement of one target on this 2-vCPU machine moved by up to ±10 % between runs on a quiet machine,
 * and a ratio divides two of them; a p99 from a few seconds rests on a few hundred samples in the tail and moves
 * much more (docs/BENCHMARKS.md). Exit code 0: nothing fell; 1: something fell; 2: no baseline to compare with.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { runBench, SCENARIOS, type Scenario, type Summary } from './run.js'

const TARGET = 'switchboard'
const DEFAULT_BASELINE = fileURLToPath(new URL('./baseline.json', import.meta.url))

interface Entry {
  better: 'higher' | 'lower'
  unit: string
  /** Switchboard ÷ best peer. */
  ratio: number
  switchboard: number
  bestPeer: string
  best: number
}

interface Baseline {
  meta: Record<string, unknown>
  ratios: Record<string, Entry>
}

function ratiosOf(results: Summary[]): Record<string, Entry> {
  const out: Record<string, Entry> = {}
  for (const r of results) {
    const ratio = r.ratios[TARGET]
    const v = r.values[TARGET]
    if (ratio === undefined || v === undefined || r.bestPeer === undefined || !(ratio > 0)) continue
    // latency@50% offers half of each target's own peak: its "offered"/"acked" rows restate the peak, not a result.
    if (r.scenario === 'latency@50%' && r.unit === 'msg/s') continue
    if (r.scenario === 'pair2k' && r.unit === 'msg/s') continue
    out[`${r.scenario} · ${r.metric}`] = {
      better: r.better,
      unit: r.unit,
      ratio,
      switchboard: v,
      bestPeer: r.bestPeer.target,
      best: r.bestPeer.value,
    }
  }
  return out
}

/** > 1 is better, whichever way the metric points. */
const goodness = (e: Entry): number => (e.better === 'higher' ? e.ratio : 1 / e.ratio)

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      targets: { type: 'string', default: 'mosquitto,nats,aedes,switchboard' },
      scenario: { type: 'string', default: 'direct,deep,pair2k,latency,broadcast' },
      duration: { type: 'string', default: '2' },
      warmup: { type: 'string', default: '1' },
      repeat: { type: 'string', default: '1' },
      noise: { type: 'string', default: '0.2' },
      'latency-noise': { type: 'string', default: '0.5' },
      baseline: { type: 'string', default: DEFAULT_BASELINE },
      from: { type: 'string' },
      update: { type: 'boolean', default: false },
    },
    strict: true,
  })
  const noise = Number(values.noise)
  const latencyNoise = Number(values['latency-noise'])
  if (!(noise > 0 && noise < 1) || !(latencyNoise > 0 && latencyNoise < 1))
    throw new Error('--noise and --latency-noise are fractions (0..1)')

  let ratios: Record<string, Entry>
  let meta: Record<string, unknown>
  let busy: string[] = []
  if (values.from !== undefined) {
    const run = JSON.parse(readFileSync(values.from, 'utf8')) as {
      meta: Record<string, unknown>
      results: Summary[]
      config: unknown
    }
    ratios = ratiosOf(run.results)
    meta = { ...run.meta, config: run.config, source: values.from }
  } else {
    const scenarios = values.scenario.split(',').map((s) => {
      if (!(SCENARIOS as readonly string[]).includes(s) || s === 'idle')
        throw new Error(`bench:check runs ${SCENARIOS.filter((x) => x !== 'idle').join(', ')}; not ${s}`)
      return s as Scenario
    })
    const targetNames = values.targets.split(',').filter(Boolean)
    if (!targetNames.includes(TARGET)) targetNames.push(TARGET)
    const cfg = {
      scenarios,
      targetNames,
      durationMs: Number(values.duration) * 1000,
      warmupMs: Number(values.warmup) * 1000,
      workers: 2,
      repeat: Number(values.repeat),
      options: {},
    }
    const out = await runBench(cfg)
    ratios = ratiosOf(out.results)
    meta = { ...out.meta, config: cfg }
    busy = [
      ...new Set(
        Object.values(out.notes)
          .flat()
          .filter((n) => /other processes used|machine CPU/.test(n)),
      ),
    ]
  }

  const baseline: Baseline | undefined = existsSync(values.baseline)
    ? (JSON.parse(readFileSync(values.baseline, 'utf8')) as Baseline)
    : undefined
  let fell = 0
  console.log('')
  if (baseline === undefined) {
    console.log(`No baseline at ${values.baseline}: nothing to compare with. Record one with --update.`)
  } else {
    const b = baseline.meta
    console.log(
      `Ratios (${TARGET} ÷ best peer) against the baseline of ${String(b.date ?? '?')}, commit ${String(b.gitSha ?? '?').slice(0, 12)}; ` +
        `"fell" = worse by more than ${Math.round(noise * 100)} % (latency percentiles: ${Math.round(latencyNoise * 100)} %)`,
    )
    for (const [key, now] of Object.entries(ratios)) {
      const was = baseline.ratios[key]
      if (was === undefined) {
        console.log(`  new     ${key}: ${now.ratio.toFixed(2)}`)
        continue
      }
      const limit = now.unit === 'ms' ? latencyNoise : noise
      const change = goodness(now) / goodness(was) - 1
      const verdict = change < -limit ? 'FELL' : change > limit ? 'rose' : 'same'
      if (verdict === 'FELL') fell++
      console.log(
        `  ${verdict.padEnd(6)}  ${key}: ${was.ratio.toFixed(2)} → ${now.ratio.toFixed(2)} (${change >= 0 ? '+' : ''}${Math.round(change * 100)} %; ` +
          `${TARGET} ${now.switchboard} ${now.unit}, best peer ${now.bestPeer} ${now.best})`,
      )
    }
    for (const key of Object.keys(baseline.ratios)) if (ratios[key] === undefined) console.log(`  gone    ${key}`)
    console.log(fell === 0 ? 'Nothing fell by more than the noise.' : `${fell} ratio(s) fell by more than the noise.`)
  }
  if (busy.length > 0) {
    console.log('The machine was busy with other work during this run, so the comparison is unreliable:')
    for (const n of busy.slice(0, 5)) console.log(`  ! ${n}`)
  }
  if (values.update) {
    writeFileSync(values.baseline, JSON.stringify({ meta, ratios } satisfies Baseline, null, 2) + '\n')
    console.log(`Recorded ${Object.keys(ratios).length} ratios as the baseline in ${values.baseline}.`)
  }
  process.exitCode = baseline === undefined && !values.update ? 2 : fell > 0 ? 1 : 0
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err)
  process.exit(1)
})
