/**
 * Benchmark harness: the same load generator against Switchboard and its peers, results side by side.
 *
 *   npm run bench -- --scenario all --targets mosquitto,nats,aedes --duration 5 --json out.json
 *
 * See docs/BENCHMARKS.md. Every measurement is time-bounded; traffic goes to 127.0.0.1 only.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { targets } from './targets/index.js'
import { gitSha, machineInfo, maxOpenFiles } from './lib/proc.js'
import { median } from './lib/stats.js'
import { runDirect, runPair } from './scenarios/direct.js'
import { fsyncProbe, type FsyncProbe } from './lib/fsync.js'
import { runBroadcast } from './scenarios/broadcast.js'
import { runLatency } from './scenarios/latency.js'
import { runIdle } from './scenarios/idle.js'
import type { Metric, ScenarioContext, ScenarioOutcome } from './scenarios/common.js'

export const SCENARIOS = ['direct', 'deep', 'pair2k', 'broadcast', 'latency', 'idle'] as const
export type Scenario = (typeof SCENARIOS)[number]

const USAGE = `usage: npm run bench -- [options]
  --scenario direct|deep|pair2k|broadcast|latency|idle|all   (default all; comma list allowed)
             direct: 50 pairs × 8 in flight; deep: 4 pairs × 500; pair2k: one pair at 2,000 msgs/s
  --targets  mosquitto,nats,aedes,switchboard,relay (default mosquitto,nats,aedes)
             relay                                 the ceiling: a bare Node relay of length-prefixed frames
             cluster1,cluster2,cluster3            Switchboard cluster of 1/2/3 nodes on PostgreSQL + Redis
             switchboard-cluster                   the same, --opt cluster.nodes=N (default 3)
  --duration SECONDS   measured window per measurement (default 5)
  --warmup   SECONDS   unmeasured lead-in per measurement (default 1)
  --workers  N         load-generator processes (default 2)
  --repeat   N         runs per measurement; tables show the median (default 1)
  --opt      KEY=VALUE target option, repeatable (e.g. nats.ack=reply)
  --json     FILE      also write results as JSON`

export interface BenchConfig {
  scenarios: Scenario[]
  targetNames: string[]
  durationMs: number
  warmupMs: number
  workers: number
  repeat: number
  options: Record<string, string>
  json?: string | undefined
}

function parse(): BenchConfig {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      targets: { type: 'string', default: 'mosquitto,nats,aedes' },
      duration: { type: 'string', default: '5' },
      warmup: { type: 'string', default: '1' },
      workers: { type: 'string', default: '2' },
      repeat: { type: 'string', default: '1' },
      opt: { type: 'string', multiple: true, default: [] },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  const num = (name: string, v: string, min: number, max: number): number => {
    const n = Number(v)
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}, got ${v}`)
    return n
  }
  const scenarios: Scenario[] =
    values.scenario === 'all'
      ? [...SCENARIOS]
      : values.scenario.split(',').map((s) => {
          if (!(SCENARIOS as readonly string[]).includes(s)) throw new Error(`unknown scenario ${s}\n${USAGE}`)
          return s as Scenario
        })
  const targetNames = values.targets.split(',').filter(Boolean)
  for (const t of targetNames)
    if (targets[t] === undefined) throw new Error(`unknown target ${t}; known: ${Object.keys(targets).join(', ')}`)
  const options: Record<string, string> = {}
  for (const kv of values.opt) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new Error(`--opt expects KEY=VALUE, got ${kv}`)
    options[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return {
    scenarios,
    targetNames,
    durationMs: num('duration', values.duration, 0.5, 120) * 1000,
    warmupMs: num('warmup', values.warmup, 0, 30) * 1000,
    workers: num('workers', values.workers, 1, 8),
    repeat: num('repeat', values.repeat, 1, 5),
    options,
    json: values.json,
  }
}

export interface Row {
  scenario: string
  metric: string
  unit: string
  better: 'higher' | 'lower'
  runs: Record<string, number[]>
}

export interface BenchOutput {
  meta: Record<string, unknown> & { fsync?: FsyncProbe }
  results: Summary[]
  notes: Record<string, string[]>
  elapsedS: number
}

/** One run of the harness: every scenario against every target; prints progress to stderr, returns the rows. */
export async function runBench(cfg: BenchConfig): Promise<BenchOutput> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const runId = randomBytes(4).toString('hex')
  const baseMeta = {
    gitSha: gitSha(root),
    node: process.version,
    ...machineInfo(),
    date: new Date().toISOString(),
    runId,
    generatorFdLimit: maxOpenFiles('self'),
  }
  const log = (line: string): void => console.error(line)
  const meta: BenchOutput['meta'] = { ...baseMeta }
  log(
    `switchboard bench ${baseMeta.gitSha.slice(0, 12)} · node ${baseMeta.node} · ${baseMeta.cpuModel} × ${baseMeta.nproc} · ${baseMeta.memTotalMiB} MiB`,
  )
  log(
    `scenarios ${cfg.scenarios.join(',')} · targets ${cfg.targetNames.join(',')} · ${cfg.durationMs / 1000}s (+${cfg.warmupMs / 1000}s warmup) × ${cfg.repeat}, ${cfg.workers} generator processes`,
  )

  // The disk under the servers' data directories (os.tmpdir()): what an fsync costs here, once per run.
  try {
    meta.fsync = fsyncProbe()
    log(
      `fsync probe (${meta.fsync.dir}, ${meta.fsync.bytes} B writes, fdatasync ×${meta.fsync.samples}): p50 ${meta.fsync.p50Ms} ms, p99 ${meta.fsync.p99Ms} ms`,
    )
  } catch (err) {
    log(`fsync probe failed: ${String(err)}`)
  }

  const rows = new Map<string, Row>()
  const notes: Record<string, string[]> = {}
  const detail: Record<string, Record<string, unknown[]>> = {}
  const semantics: Record<string, string> = {}
  const peak = new Map<string, number[]>()
  const t0 = performance.now()

  const record = (target: string, scenario: string, o: ScenarioOutcome): void => {
    for (const m of o.metrics) addMetric(rows, target, m)
    ;(notes[target] ??= []).push(...o.notes)
    ;((detail[target] ??= {})[scenario] ??= []).push(o.detail)
  }

  for (const scenario of cfg.scenarios) {
    for (const name of cfg.targetNames) {
      const entry = targets[name]
      if (entry === undefined) continue
      const target = entry.factory({ host: entry.host, port: entry.port, runId, options: cfg.options })
      semantics[name] = target.semantics
      if (target.scenarios !== undefined && !target.scenarios.includes(scenario)) continue
      log(`${scenario} · ${name}`)
      for (let r = 0; r < cfg.repeat; r++) {
        // A harness-owned server is restarted per repetition, so one crash costs one sample, not the rest.
        try {
          await target.start?.()
          const ctx: ScenarioContext = {
            targetName: name,
            target,
            workers: cfg.workers,
            warmupMs: cfg.warmupMs,
            durationMs: cfg.durationMs,
            log,
          }
          const pk = median(peak.get(name) ?? [])
          if (Number.isFinite(pk)) ctx.peakDirectRate = pk
          if (scenario === 'direct' || scenario === 'deep') {
            const o = await runDirect(ctx, scenario)
            if (scenario === 'direct') peak.set(name, [...(peak.get(name) ?? []), o.peak16])
            record(name, scenario, o)
          } else if (scenario === 'pair2k') record(name, scenario, await runPair(ctx))
          else if (scenario === 'broadcast') record(name, scenario, await runBroadcast(ctx))
          else if (scenario === 'latency') record(name, scenario, await runLatency(ctx))
          else record(name, scenario, await runIdle(ctx))
        } catch (err) {
          const msg = `${scenario}: FAILED — ${err instanceof Error ? err.message : String(err)}`
          log(`  ${msg}`)
          ;(notes[name] ??= []).push(msg)
        } finally {
          await target.stop?.().catch((e: unknown) => log(`  stop ${name}: ${String(e)}`))
        }
      }
    }
  }

  const elapsedS = Math.round((performance.now() - t0) / 1000)
  const results = [...rows.values()].map((row) => summarise(row, cfg.targetNames))
  console.log(renderTable(results, cfg.targetNames))
  const ceiling = renderCeiling(results, cfg.targetNames)
  if (ceiling !== '') console.log(ceiling)
  for (const name of cfg.targetNames) {
    console.log(`\n${name}: ${semantics[name] ?? ''}`)
    for (const n of new Set(notes[name] ?? [])) console.log(`  ! ${n}`)
  }
  console.log(
    `\n(x) = value ÷ best peer value for that row; "best" is max for ↑ rows, min for ↓ rows. Median of ${cfg.repeat} run(s). Total ${elapsedS} s.`,
  )

  if (meta.fsync !== undefined)
    console.log(`fsync on this disk (${meta.fsync.dir}): p50 ${meta.fsync.p50Ms} ms, p99 ${meta.fsync.p99Ms} ms.`)

  if (cfg.json !== undefined) {
    const config = { ...cfg, json: undefined }
    writeFileSync(cfg.json, JSON.stringify({ meta, config, semantics, results, notes, detail, elapsedS }, null, 2) + '\n')
    log(`wrote ${cfg.json}`)
  }
  return { meta, results, notes, elapsedS }
}

function addMetric(rows: Map<string, Row>, target: string, m: Metric): void {
  const key = `${m.scenario}\u0000${m.name}`
  let row = rows.get(key)
  if (row === undefined) {
    row = { scenario: m.scenario, metric: m.name, unit: m.unit, better: m.better, runs: {} }
    rows.set(key, row)
  }
  ;(row.runs[target] ??= []).push(m.value)
}

export interface Summary extends Row {
  values: Record<string, number>
  bestPeer?: { target: string; value: number }
  ratios: Record<string, number>
  /** value ÷ the ceiling target's (the bare relay) for throughput rows. */
  ofCeiling?: Record<string, number>
}

function summarise(row: Row, order: string[]): Summary {
  const values: Record<string, number> = {}
  for (const t of order) {
    const v = median(row.runs[t] ?? [])
    if (Number.isFinite(v)) values[t] = v
  }
  let best: { target: string; value: number } | undefined
  for (const [t, v] of Object.entries(values)) {
    if (targets[t]?.peer !== true) continue
    if (best === undefined || (row.better === 'higher' ? v > best.value : v < best.value)) best = { target: t, value: v }
  }
  const ratios: Record<string, number> = {}
  if (best !== undefined && best.value !== 0)
    for (const [t, v] of Object.entries(values)) ratios[t] = Math.round((v / best.value) * 100) / 100
  const s: Summary = { ...row, values, ratios }
  if (best !== undefined) s.bestPeer = best
  const ceiling = Object.entries(values).find(([t]) => targets[t]?.ceiling === true)?.[1]
  if (row.better === 'higher' && row.unit === 'msg/s' && ceiling !== undefined && ceiling > 0) {
    s.ofCeiling = {}
    for (const [t, v] of Object.entries(values)) s.ofCeiling[t] = Math.round((v / ceiling) * 100) / 100
  }
  return s
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function renderTable(results: Summary[], order: string[]): string {
  const header = ['scenario', 'metric', 'unit', ...order, 'best peer']
  const lines = results.map((r) => [
    r.scenario,
    r.metric,
    `${r.unit} ${r.better === 'higher' ? '↑' : '↓'}`,
    ...order.map((t) => {
      const v = r.values[t]
      if (v === undefined) return '—'
      const ratio = r.ratios[t]
      return ratio === undefined ? fmt(v) : `${fmt(v)} (${ratio.toFixed(2)})`
    }),
    r.bestPeer?.target ?? '—',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i >= 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ')
  return ['', line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(line)].join('\n')
}

/** Throughput rows as a fraction of the bare relay's (issue 12 aim 6: the ceiling of a Node process here). */
function renderCeiling(results: Summary[], order: string[]): string {
  const rows = results.filter((r) => r.ofCeiling !== undefined)
  if (rows.length === 0) return ''
  const shown = order.filter((t) => targets[t]?.ceiling !== true)
  const lines = rows.map((r) =>
    [`${r.scenario} ${r.metric}`, ...shown.map((t) => (r.ofCeiling?.[t] === undefined ? '—' : r.ofCeiling[t].toFixed(2)))].join(
      '  ',
    ),
  )
  return ['', `fraction of the ceiling (relay): ${shown.join(' / ')}`, ...lines.map((l) => `  ${l}`)].join('\n')
}

async function main(): Promise<void> {
  await runBench(parse())
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err)
    process.exit(1)
  })
}
