/**
 * Seed 001 gateway listener: TCP, one P001Connection per socket. Off unless --p001-port is set (7001 with
 * --legacy). See docs/protocol/p001.md "Switchboard gateway".
 */
import type { Broker } from '../../core/broker.js'
import { DEFAULT_FLOOD_RATE, listenGateway, type GatewayLimits } from '../gateway-net.js'
import { P001Connection } from './adapter.js'

export interface P001StartOptions {
  host: string
  /** 0 = an ephemeral port (tests); the bound port is returned. */
  port: number
  /** The server's listener guard and login timeout (none in a bare listener). */
  limits?: GatewayLimits
  /**
   * The "300 after 3 s" of the README is the core's NOT_YET receipt, timed by the Broker's own
   * ackTimeoutMs. This value is only checked against it: a mismatch is logged, never silently ignored.
   */
  ackTimeoutMs?: number
  /** Frames per second per connection before it is closed as a flood (default 200, burst twice that). */
  floodRate?: number
  /** Outbound bytes per connection above which the broker pauses pushing (default 256 KiB). */
  highWaterMark?: number
}

export interface P001Server {
  port: number
  /** Connections open now. */
  connections(): number
  close(): Promise<void>
}

export async function startP001(broker: Broker, opts: P001StartOptions): Promise<P001Server> {
  if (opts.ackTimeoutMs !== undefined && opts.ackTimeoutMs !== broker.ackTimeoutMs)
    broker.log.warn(
      { asked: opts.ackTimeoutMs, broker: broker.ackTimeoutMs },
      'p001: the broker ack timeout governs the "300" answer',
    )
  const connOpts = { floodRate: opts.floodRate ?? DEFAULT_FLOOD_RATE, highWaterMark: opts.highWaterMark ?? 256 * 1024 }
  const listener = await listenGateway(
    opts.host,
    opts.port,
    (socket, remote) => new P001Connection(broker, socket, connOpts, remote),
    opts.limits,
  )
  broker.log.info({ host: opts.host, port: listener.port }, 'p001 gateway listening')
  return listener
}
