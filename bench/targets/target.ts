/**
 * The contract every benchmark target implements. The load generator (bench/scenarios/*) only
 * speaks these two interfaces, so Mosquitto, NATS, Aedes and Switchboard are driven by the
 * same code and their numbers are comparable.
 *
 * A target instance lives in two places:
 *  - in the coordinator (bench/run.ts), where `start()`/`stop()` may own a server process and
 *    `serverPid()` is used for RSS/CPU readings;
 *  - in each load-generator worker process, rebuilt from `params()` (plain JSON sent over IPC)
 *    by the same factory. Workers only call `connect()`; they never call `start()`.
 */

/** JSON-serialisable settings; `params()` of a started target must be enough to reach its server. */
export interface TargetParams {
  host: string
  port: number
  /** Unique per run; prefix topics/subjects/user ids with it so runs on shared services don't cross-talk. */
  runId: string
  /** Target-specific knobs from the CLI (`--opt key=value`), e.g. NATS `ack=reply`. */
  options: Record<string, string>
}

export interface ConnectOptions {
  /** Be addressable by `sendDirect(id, …)` from other clients. Resolve only once the server confirmed it. */
  receiveDirect: boolean
  /** Receive everything sent with `publishBroadcast`. Resolve only once the server confirmed it. */
  receiveBroadcast: boolean
}

export type MessageKind = 'direct' | 'broadcast'

export interface BenchClient {
  readonly id: string
  /**
   * Send `body` to the client connected as `to`; resolves when the target's acknowledgement for
   * this message arrives (MQTT: PUBACK at QoS 1; NATS: see nats.ts; Switchboard: its send ack).
   * Rejects if the target refuses or the connection drops. Callers pipeline several of these.
   * `onAccepted`, where the target tells apart "the server took it" from the settling acknowledgement
   * (Switchboard's SDK: ACCEPTED, then the receipt), is called at the first; elsewhere the two are one moment.
   */
  sendDirect(to: string, body: Buffer, onAccepted?: () => void): Promise<void>
  /**
   * Fan `body` out to every client connected with `receiveBroadcast`. Fire-and-forget semantics
   * (MQTT QoS 0, NATS core): resolves once the client library accepted it, not on delivery.
   * The generator applies its own flow control from receiver counts.
   */
  publishBroadcast(body: Buffer): Promise<void>
  /** Single listener; the body is the exact bytes that were sent (the generator stores a timestamp in it). */
  onMessage(cb: (kind: MessageKind, body: Buffer) => void): void
  close(): Promise<void>
}

export interface BenchTarget {
  readonly name: string
  /** One line saying what "ack" and "broadcast" mean here; printed next to the results. */
  readonly semantics: string
  /** Start a server the harness owns (Aedes child, a Switchboard child). Omit for system services. */
  start?(): Promise<void>
  stop?(): Promise<void>
  /** What a worker needs to rebuild a client-side instance of this target. Valid after `start()`. */
  params(): TargetParams
  /** Pid of the server process, for VmRSS and CPU readings; undefined if it cannot be found. */
  serverPid(): number | undefined
  /**
   * The server's event-loop delay since the previous call (Node servers that measure it): the harness calls it
   * at the start of a measured window (which resets it) and at the end.
   */
  eventLoopDelay?(): Promise<EventLoopDelay | undefined>
  /** Scenarios this target can run (default: all). */
  readonly scenarios?: readonly string[]
  /** Open one connection as `id` (unique within a run); resolves when it is usable. */
  connect(id: string, opts: ConnectOptions): Promise<BenchClient>
}

export type TargetFactory = (params: TargetParams) => BenchTarget

/** Event-loop delay over a window, in ms (perf_hooks.monitorEventLoopDelay in the server). */
export interface EventLoopDelay {
  p50: number
  p99: number
  max: number
  /** How long the scrape that read it took, ms: a turn of the server's loop that is counted in the next window. */
  scrapeMs: number
  /** The server's garbage-collection time since it started, seconds (cumulative, unlike the rest), if exported. */
  gcSeconds?: number
}
