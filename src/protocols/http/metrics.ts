/**
 * Prometheus metrics for /metrics, in a registry of this listener's own (never prom-client's global one,
 * so two servers in one process, as in tests, do not collide). Broker figures are read at scrape time.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { Broker } from '../../core/broker.js'
import { logStats } from '../../log.js'

export interface HttpCounters {
  /** Open HTTP connections (TCP sockets of this listener), SSE streams, WebSockets. */
  connections: () => { http: number; sse: number; ws: number }
  /** Connections per gateway of the whole server (native, http, p001, …), as server.connections() gives them. */
  gateways: () => Record<string, number>
  /** Connections and logins refused by the server's listener guard, by the limit that refused them. */
  refused?: () => Record<string, number>
  /** Bytes of events held by polling sessions now, and events dropped since start (full buffer or budget). */
  events?: () => { held: number; dropped: number }
}

/** The event-loop monitor's tick (perf_hooks.monitorEventLoopDelay's resolution). */
const LOOP_DELAY_RESOLUTION_MS = 10

export class HttpMetrics {
  readonly registry = new Registry()
  readonly requests: Counter<'method' | 'route' | 'status'>
  readonly requestSeconds: Histogram<'method' | 'route'>
  /** How late the event loop ran a 10 ms timer: the longest turns (issue 12: none above 2 ms under load). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS })

  constructor(broker: Broker, counters: HttpCounters, opts: { processMetrics: boolean }) {
    const registers = [this.registry]
    if (opts.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' })

    /** A counter that follows a cumulative figure the broker keeps (it only ever goes up). */
    const follow = (name: string, help: string, labelNames: string[], read: () => Record<string, number>): void => {
      const last = new Map<string, number>()
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const [key, v] of Object.entries(read())) {
            const d = v - (last.get(key) ?? 0)
            if (d > 0) {
              if (labelNames.length > 0) this.inc({ [labelNames[0]!]: key }, d)
              else this.inc(d)
            }
            last.set(key, v)
          }
        },
      })
    }

    new Gauge({
      name: 'switchboard_sessions',
      help: 'Live sessions on this node by protocol',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset()
        for (const [protocol, n] of Object.entries(broker.metrics().sessionsByProtocol)) this.set({ protocol }, n)
      },
    })
    new Gauge({
      name: 'switchboard_http_connections',
      help: 'Open connections of the HTTP listener by kind (http: TCP sockets; sse: event streams; ws: WebSockets)',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, n] of Object.entries(counters.connections())) this.set({ kind }, n)
      },
    })
    new Gauge({
      name: 'switchboard_gateway_connections',
      help: 'Connections open now per gateway of this server (for ZeroMQ: registered names)',
      labelNames: ['gateway'],
      registers,
      collect() {
        this.reset()
        for (const [gateway, n] of Object.entries(counters.gateways())) this.set({ gateway }, n)
      },
    })
    new Gauge({
      name: 'switchboard_users',
      help: 'Registered users',
      registers,
      async collect() {
        this.set(await broker.countUsers())
      },
    })
    new Gauge({
      name: 'switchboard_queue_depth',
      help: 'Messages queued for the users online on this node (sum over their queues)',
      registers,
      async collect() {
        let n = 0
        for (const s of [...broker.localSessions()]) n += (await broker.queueStats(s.user.id)).count
        this.set(n)
      },
    })
    new Gauge({
      name: 'switchboard_queue_bytes',
      help: 'Bytes queued for the users online on this node',
      registers,
      async collect() {
        let n = 0
        for (const s of [...broker.localSessions()]) n += (await broker.queueStats(s.user.id)).bytes
        this.set(n)
      },
    })
    const loopDelay = this.loopDelay
    loopDelay.enable()
    new Gauge({
      name: 'switchboard_event_loop_delay_seconds',
      help: 'Event-loop delay since the previous scrape: how late a 10 ms timer ran (perf_hooks.monitorEventLoopDelay less its resolution), p50, p99 and max; each scrape starts a new window',
      labelNames: ['stat'],
      registers,
      collect() {
        this.reset()
        if (loopDelay.count === 0) return
        // The monitor records the time between its ticks, the resolution included: an idle loop reads 10 ms.
        const late = (ns: number): number => Math.max(0, ns / 1e9 - LOOP_DELAY_RESOLUTION_MS / 1e3)
        this.set({ stat: 'p50' }, late(loopDelay.percentile(50)))
        this.set({ stat: 'p99' }, late(loopDelay.percentile(99)))
        this.set({ stat: 'max' }, late(loopDelay.max))
        loopDelay.reset()
      },
    })
    follow(
      'switchboard_messages_in_total',
      'Messages accepted from senders, by kind',
      ['kind'],
      () => broker.metrics().messagesIn,
    )
    follow('switchboard_messages_out_total', 'Messages handed to recipients', [], () => ({ all: broker.metrics().messagesOut }))
    follow('switchboard_receipts_total', 'Receipts issued, by status code', ['code'], () => broker.metrics().receipts)
    follow(
      'switchboard_connections_refused_total',
      'Connections and logins refused, by the limit that refused them (fdReserve: legacy gateway connections refused near the descriptor limit)',
      ['limit'],
      () => counters.refused?.() ?? {},
    )
    follow(
      'switchboard_http_events_dropped_total',
      'Events dropped from polling sessions (buffer or server-wide budget full)',
      [],
      () => ({
        all: counters.events?.().dropped ?? 0,
      }),
    )
    new Gauge({
      name: 'switchboard_http_event_buffer_bytes',
      help: 'Bytes of events held for polling sessions (their JSON text), every session together',
      registers,
      collect() {
        this.set(counters.events?.().held ?? 0)
      },
    })
    follow('switchboard_slow_consumers_total', 'Sessions cut off as slow consumers', [], () => ({
      all: broker.metrics().slowConsumers,
    }))
    // Commit latency as sum and count: the committer keeps totals, not samples ; a per-commit hook in the core would allow a histogram.
    follow(
      'switchboard_store_commit_seconds_total',
      'Time spent in store commits (group commit: one transaction and one fsync per batch); divide by switchboard_store_commits_total for the mean',
      [],
      () => ({ all: broker.metrics().commits.msTotal / 1000 }),
    )
    follow('switchboard_store_commits_total', 'Store commits (batches)', [], () => ({ all: broker.metrics().commits.commits }))
    follow('switchboard_store_commit_ops_total', 'Operations committed (all batches)', [], () => ({
      all: broker.metrics().commits.ops,
    }))
    new Gauge({
      name: 'switchboard_store_commit_last_seconds',
      help: 'Duration of the last store commit',
      registers,
      collect() {
        this.set(broker.metrics().commits.lastMs / 1000)
      },
    })
    new Gauge({
      name: 'switchboard_store_commit_max_batch',
      help: 'Largest batch committed at once',
      registers,
      collect() {
        this.set(broker.metrics().commits.maxBatch)
      },
    })
    follow(
      'switchboard_log_lines_dropped_total',
      'Log lines dropped because the log output could not take them (closed, full, or a reader that does not read)',
      [],
      () => ({ all: logStats.dropped }),
    )
    this.requests = new Counter({
      name: 'switchboard_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    })
    this.requestSeconds = new Histogram({
      name: 'switchboard_http_request_seconds',
      help: 'HTTP request duration by route (long polls included)',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
      registers,
    })
  }

  /** Stops measuring the event loop (the listener closes). */
  close(): void {
    this.loopDelay.disable()
  }
}
