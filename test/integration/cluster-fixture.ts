/**
 * A Switchboard cluster for tests: N brokers sharing one PostgreSQL schema and one Redis key prefix, each
 * with its own node id, plus fake session sinks to watch what the broker pushes.
 *
 * Nodes are in-process (`InProcessNode`): fast, and a test can reach each Broker directly. The kill -9
 * end-to-end test will add a child-process node (a `switchboard serve` with --store/--bus pointing at this
 * fixture's schema and prefix, killed with SIGKILL) behind the same `ClusterNode` shape: `nodeId`, `kill()`
 * (die without cleanup) and `stop()` (graceful); in-process nodes also expose `broker`.
 */
import pg from 'pg'
import { Redis } from 'ioredis'
import { Broker, type BrokerOptions } from '../../src/core/broker.js'
import { PostgresStore } from '../../src/store/postgres/postgres-store.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import type { Store } from '../../src/store/store.js'
import { RedisBus } from '../../src/bus/redis/redis-bus.js'
import type { CloseReason, Outbound, SessionSink } from '../../src/core/types.js'
import { until } from '../helpers/wait.js'
import type { Session } from '../../src/core/session.js'

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Why the cluster services cannot be used, or undefined when they answer (`pg: false`: Redis alone, for a cluster
 * over a memory store). Under CI=true, throws instead.
 */
export async function clusterServicesUnavailable(need: { pg?: boolean } = {}): Promise<string | undefined> {
  const reasons: string[] = []
  if (need.pg !== false) {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 })
    try {
      await c.connect()
      await c.query('SELECT 1')
    } catch (err) {
      reasons.push(`PostgreSQL at ${PG_URL} is unreachable (${(err as Error).message})`)
    } finally {
      await c.end().catch(() => {})
    }
  }
  const r = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 })
  r.on('error', () => {})
  try {
    await r.connect()
    await r.ping()
  } catch (err) {
    reasons.push(`Redis at ${REDIS_URL} is unreachable (${(err as Error).message})`)
  } finally {
    r.disconnect()
  }
  if (reasons.length === 0) return undefined
  const reason = reasons.join('; ')
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires them`)
  return reason
}

/** What an adapter does once it has answered the login (two-phase attach): let the broker push into the sink. */
export async function ready<T extends Session | { session: Session }>(broker: Broker, attaching: Promise<T>): Promise<T> {
  const r = await attaching
  broker.ready('session' in r ? r.session : (r as Session))
  return r
}

/** A SessionSink that records everything and lets a test wait for an event. */
export class FakeSink implements SessionSink {
  readonly events: Outbound[] = []
  closed: { reason: CloseReason; text: string } | undefined
  private waiters: (() => void)[] = []

  push(ev: Outbound): boolean {
    this.events.push(ev)
    this.wakeWaiters()
    return true
  }

  backlog(): number {
    return 0
  }

  close(reason: CloseReason, text: string): void {
    this.closed = { reason, text }
    this.wakeWaiters()
  }

  private wakeWaiters(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Resolves with the first recorded event matching `pred` (waiting up to timeoutMs for it). */
  async waitFor<T extends Outbound>(what: string, pred: (ev: Outbound) => ev is T, timeoutMs?: number): Promise<T>
  async waitFor(what: string, pred: (ev: Outbound) => boolean, timeoutMs?: number): Promise<Outbound>
  async waitFor(what: string, pred: (ev: Outbound) => boolean, timeoutMs = 5000): Promise<Outbound> {
    const end = Date.now() + timeoutMs
    for (;;) {
      const hit = this.events.find(pred)
      if (hit !== undefined) return hit
      const left = end - Date.now()
      if (left <= 0)
        throw new Error(`timed out waiting for ${what}; got ${this.events.map((e) => e.type).join(', ') || 'nothing'}`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(t)
          resolve()
        })
      })
    }
  }

  waitClosed(timeoutMs = 5000): Promise<{ reason: CloseReason; text: string }> {
    return until('the session to be closed', () => this.closed, timeoutMs)
  }

  messages(): string[] {
    return this.events.flatMap((e) => (e.type === 'message' ? [e.msg.body.toString()] : []))
  }
}

export interface ClusterNode {
  readonly nodeId: string
  /** Die without any cleanup (kill -9). */
  kill(): Promise<void>
  /** Graceful shutdown. */
  stop(): Promise<void>
}

export class InProcessNode implements ClusterNode {
  private down = false
  constructor(
    readonly nodeId: string,
    readonly broker: Broker,
    readonly bus: RedisBus,
    readonly store: Store,
  ) {}

  /** The node's store as the PostgreSQL store (what file metadata is kept in); throws in a memory cluster. */
  get postgres(): PostgresStore {
    if (!(this.store instanceof PostgresStore)) throw new Error(`${this.nodeId} has no PostgreSQL store`)
    return this.store
  }

  async kill(): Promise<void> {
    if (this.down) return
    this.down = true
    // The bus goes silent first, as the process would: presence stays in Redis until a survivor reaps it.
    this.bus.kill()
    await this.broker.close().catch(() => {})
  }

  async stop(): Promise<void> {
    if (this.down) return
    this.down = true
    await this.broker.close()
  }
}

export interface ClusterOptions {
  nodes?: number
  broker?: Partial<BrokerOptions>
  heartbeatMs?: number
  nodeTtlMs?: number
  /**
   * 'postgres' (default): the nodes share a schema. 'memory': they share one named MemoryStore in this process —
   * the bus and the core's cluster paths without PostgreSQL (a store is the store's contract tests' business).
   */
  store?: 'postgres' | 'memory'
}

let clusters = 0

export class Cluster {
  readonly schema: string
  readonly prefix: string
  readonly nodes: InProcessNode[] = []
  private added = 0

  constructor(private readonly opts: ClusterOptions = {}) {
    const id = `${process.pid}_${Date.now().toString(36)}_${++clusters}`
    this.schema = `sb_cluster_${id}`
    this.prefix = `sbtest:cluster:${id}`
  }

  /** Start the nodes together (so they race on the schema migration, as real nodes would). */
  async start(): Promise<this> {
    await Promise.all(Array.from({ length: this.opts.nodes ?? 3 }, () => this.addNode()))
    this.nodes.sort((a, b) => a.nodeId.localeCompare(b.nodeId))
    return this
  }

  async addNode(): Promise<InProcessNode> {
    const nodeId = `node-${String.fromCharCode(97 + this.added++)}`
    const store =
      this.opts.store === 'memory'
        ? new MemoryStore({ name: this.schema })
        : new PostgresStore({ connectionString: PG_URL, schema: this.schema, poolSize: 4 })
    const bus = new RedisBus({
      url: REDIS_URL,
      prefix: this.prefix,
      nodeId,
      heartbeatMs: this.opts.heartbeatMs ?? 100,
      nodeTtlMs: this.opts.nodeTtlMs ?? 500,
    })
    const broker = new Broker({ store, bus, ...this.opts.broker })
    await broker.start()
    const node = new InProcessNode(nodeId, broker, bus, store)
    this.nodes.push(node)
    return node
  }

  node(i: number): InProcessNode {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    return n
  }

  /** Stop every node, drop the schema (or the memory store's data) and delete the keys. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})))
    if (this.opts.store === 'memory') MemoryStore.drop(this.schema)
    else {
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`)
      } finally {
        await c.end()
      }
    }
    const r = new Redis(REDIS_URL)
    try {
      const keys = await r.keys(`${this.prefix}:*`)
      if (keys.length > 0) await r.del(...keys)
    } finally {
      await r.quit()
    }
  }
}
