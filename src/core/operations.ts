/**
 * What an operator reads of this node: its statistics (SERVER `stats`, REQUEST STATS), the snapshot /metrics and
 * the dashboard are made of, and its health (/healthz). Read-only over the shared state; the Broker hands them out.
 */
import { isBrokerError } from './errors.js'
import type { Core } from './context.js'

export interface BrokerStats {
  users: number
  online: number
  sessionsByProtocol: Record<string, number>
  uptimeMs: number
  messagesIn: Record<string, number>
  messagesOut: number
  receipts: Record<string, number>
  commits: number
  commitOps: number
  commitMsTotal: number
  slowConsumers: number
}

/** The cumulative figures and gauges of this node, read at once (for /metrics). */
export interface MetricsSnapshot {
  sessionsByProtocol: Record<string, number>
  messagesIn: Record<string, number>
  messagesOut: number
  receipts: Record<string, number>
  slowConsumers: number
  commits: { commits: number; ops: number; msTotal: number; lastMs: number; maxBatch: number }
}

export interface Health {
  storeKind: string
  /** Sessions on this node. */
  online: number
  /** 'closing' while the broker shuts down; 'fail' when the store does not answer a ping; 'full' while its disk is full. */
  store: 'ok' | 'fail' | 'full' | 'closing'
  /** What is wrong, for 'full': a text a client may be shown (the data directory is only in the log). */
  detail?: string
}

export function metrics(core: Core): MetricsSnapshot {
  const byProtocol: Record<string, number> = {}
  for (const s of core.sessions.values()) byProtocol[s.protocol] = (byProtocol[s.protocol] ?? 0) + 1
  const c = core.counters
  return {
    sessionsByProtocol: byProtocol,
    messagesIn: { ...c.messagesIn },
    messagesOut: c.messagesOut,
    receipts: { ...c.receipts },
    slowConsumers: c.slowConsumers,
    commits: { ...core.committer.stats },
  }
}

export async function stats(core: Core, startedAt: number): Promise<BrokerStats> {
  const m = metrics(core)
  return {
    users: await core.store.countUsers(),
    online: (await core.bus.online()).length,
    sessionsByProtocol: m.sessionsByProtocol,
    uptimeMs: core.now() - startedAt,
    messagesIn: m.messagesIn,
    messagesOut: m.messagesOut,
    receipts: m.receipts,
    commits: m.commits.commits,
    commitOps: m.commits.ops,
    commitMsTotal: m.commits.msTotal,
    slowConsumers: m.slowConsumers,
  }
}

/** Is the store answering? 'full' while its disk is (the store answers, but refuses writes; the ping tries one). */
export async function health(core: Core): Promise<Health> {
  const base = { storeKind: core.store.kind, online: core.sessions.size }
  if (core.closing) return { ...base, store: 'closing' }
  try {
    await core.store.ping()
  } catch (err) {
    if (isBrokerError(err) && err.code === 'SB_ERR_STORAGE_FULL') return { ...base, store: 'full', detail: err.message }
    core.log.warn({ err }, 'health check: store ping failed')
    return { ...base, store: 'fail' }
  }
  return { ...base, store: 'ok' }
}
