/**
 * The dashboard's data: snapshots from GET /admin/metrics.json (the /metrics registry as JSON, plus who is
 * online, the largest queues and each gateway's connections), turned into the figures it shows. Rates are
 * counter differences between two snapshots divided by the time between them, as Prometheus' rate() does.
 */

export interface MetricValue {
  value: number
  labels: Record<string, string | number>
}
export interface Metric {
  name: string
  help: string
  type: string
  values: MetricValue[]
}
export interface Snapshot {
  at: number
  metrics: Metric[]
  online: { id: number; name: string; protocol: string; since: number; queued: number; queuedBytes: number }[]
  queues: { name: string; count: number; bytes: number }[]
  gateways: { name: string; connections: number }[]
}

/** The sum of a metric's values (optionally those whose labels match). */
export function total(s: Snapshot, name: string, match?: (labels: MetricValue['labels']) => boolean): number {
  const m = s.metrics.find((x) => x.name === name)
  if (!m) return 0
  return m.values.filter((v) => !match || match(v.labels)).reduce((a, v) => a + v.value, 0)
}

/** A metric's values by one label. */
export function byLabel(s: Snapshot, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const v of s.metrics.find((x) => x.name === name)?.values ?? []) {
    const k = String(v.labels[label] ?? '')
    out[k] = (out[k] ?? 0) + v.value
  }
  return out
}

/** The figures of one refresh: levels from the newest snapshot, rates between it and the one before. */
export interface Figures {
  at: number
  online: number
  byProtocol: Record<string, number>
  inPerSec: number
  outPerSec: number
  receiptsPerSec: number
  queueDepth: number
  queueBytes: number
  slowConsumers: number
  /** Mean store commit over the interval, ms (undefined when nothing was committed). */
  commitMs: number | undefined
  /** Mean operations per commit over the interval. */
  batch: number | undefined
  lastCommitMs: number
  maxBatch: number
  users: number
}

export function figures(cur: Snapshot, prev: Snapshot | undefined): Figures {
  const dt = prev ? Math.max(0.001, (cur.at - prev.at) / 1000) : 0
  const rate = (name: string): number => (prev && dt > 0 ? Math.max(0, total(cur, name) - total(prev, name)) / dt : 0)
  const commits = prev ? total(cur, 'switchboard_store_commits_total') - total(prev, 'switchboard_store_commits_total') : 0
  const commitSec = prev
    ? total(cur, 'switchboard_store_commit_seconds_total') - total(prev, 'switchboard_store_commit_seconds_total')
    : 0
  const ops = prev ? total(cur, 'switchboard_store_commit_ops_total') - total(prev, 'switchboard_store_commit_ops_total') : 0
  return {
    at: cur.at,
    online: total(cur, 'switchboard_sessions'),
    byProtocol: byLabel(cur, 'switchboard_sessions', 'protocol'),
    inPerSec: rate('switchboard_messages_in_total'),
    outPerSec: rate('switchboard_messages_out_total'),
    receiptsPerSec: rate('switchboard_receipts_total'),
    queueDepth: total(cur, 'switchboard_queue_depth'),
    queueBytes: total(cur, 'switchboard_queue_bytes'),
    slowConsumers: total(cur, 'switchboard_slow_consumers_total'),
    commitMs: commits > 0 ? (1000 * commitSec) / commits : undefined,
    batch: commits > 0 ? ops / commits : undefined,
    lastCommitMs: 1000 * total(cur, 'switchboard_store_commit_last_seconds'),
    maxBatch: total(cur, 'switchboard_store_commit_max_batch'),
    users: total(cur, 'switchboard_users'),
  }
}
