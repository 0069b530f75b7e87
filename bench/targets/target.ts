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
   */
  sendDirect(to: string, body: Buffer): Promise<void>
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
  /** Open one connection as `id` (unique within a run); resolves when it is usable. */
  connect(id: string, opts: ConnectOptions): Promise<BenchClient>
}

export type TargetFactory = (params: TargetParams) => BenchTarget
