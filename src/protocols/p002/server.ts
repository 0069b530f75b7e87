/**
 * Seed 002 gateway listener: TCP, one P002Connection per socket. Off unless --p002-port is set (9000 with
 * --legacy). See docs/protocol/p002.md "Switchboard gateway".
 */
import type { Broker } from '../../core/broker.js'
import { DEFAULT_FLOOD_RATE, listenGateway, type GatewayLimits } from '../gateway-net.js'
import { P002Connection } from './adapter.js'
import { DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_USERNAME_BYTES } from './codec.js'

export interface P002StartOptions {
  host: string
  /** 0 = an ephemeral port (tests); the bound port is returned. */
  port: number
  /** The server's listener guard and login timeout (none in a bare listener). */
  limits?: GatewayLimits
  /** --max-username-size of the original (UTF-8 bytes, default 25). */
  maxUsername?: number
  /** --max-message-size of the original (UTF-8 bytes, default 3000). */
  maxMessage?: number
  /** Strings per second per connection before it is closed as a flood (default 200, burst twice that). */
  floodRate?: number
  /** Outbound bytes per connection above which the broker pauses pushing (default 256 KiB). */
  highWaterMark?: number
}

export interface P002Server {
  port: number
  /** Connections open now. */
  connections(): number
  close(): Promise<void>
}

export async function startP002(broker: Broker, opts: P002StartOptions): Promise<P002Server> {
  const connOpts = {
    limits: {
      maxUsernameBytes: opts.maxUsername ?? DEFAULT_MAX_USERNAME_BYTES,
      maxMessageBytes: opts.maxMessage ?? DEFAULT_MAX_MESSAGE_BYTES,
    },
    floodRate: opts.floodRate ?? DEFAULT_FLOOD_RATE,
    highWaterMark: opts.highWaterMark ?? 256 * 1024,
  }
  const listener = await listenGateway(
    opts.host,
    opts.port,
    (socket, remote) => new P002Connection(broker, socket, connOpts, remote),
    opts.limits,
  )
  broker.log.info({ host: opts.host, port: listener.port }, 'p002 gateway listening')
  return listener
}
