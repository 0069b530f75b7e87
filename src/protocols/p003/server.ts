/**
 * Seed 003 gateway listener: ZeroMQ PUB and REP sockets. Off unless --zmq-pub-port / --zmq-rep-port are
 * set (5556 / 5557 with --legacy). See docs/protocol/p003.md "Switchboard gateway".
 */
import type { Broker } from '../../core/broker.js'
import { DEFAULT_FLOOD_RATE } from '../gateway-net.js'
import { P003Gateway } from './adapter.js'

export interface P003StartOptions {
  host: string
  /** PUB port (original 5556); 0 = ephemeral. */
  pubPort: number
  /** REP port (original 5557); 0 = ephemeral. */
  repPort: number
  /** Inclusive port range of the peer-to-peer endpoints handed out at `reg` (--zmq-endpoint-ports, "5558-5599"). */
  endpointPorts: [number, number]
  /** Host written into the endpoints handed out (default "localhost", as in the original). */
  endpointHost?: string
  /** How often the topic bridge picks up new topics (default 2000 ms). */
  topicScanMs?: number
  /** Delay before a new registration's first publication, for ZeroMQ's slow joiner (default 300 ms). */
  joinDelayMs?: number
  /** Requests per second per name before they are refused (default 200, burst twice that). */
  floodRate?: number
  /** Largest REQ message; libzmq drops a peer that sends more (default maxTextBytes + 1 KiB). */
  maxMessageBytes?: number
  /** After a client's last SUB filter `@name@` goes, its session ends this much later (default 5000 ms). */
  leaseGraceMs?: number
  /** ZMTP heartbeat interval on PUB; a silent subscriber is dropped after three (default 10 000 ms, 0 = off). */
  heartbeatMs?: number
}

export interface P003Server {
  pubPort: number
  repPort: number
  gateway: P003Gateway
  /** Names registered now (ZeroMQ shows no connections). */
  connections(): number
  close(): Promise<void>
}

export async function startP003(broker: Broker, opts: P003StartOptions): Promise<P003Server> {
  const gw = new P003Gateway(broker, {
    host: opts.host,
    pubPort: opts.pubPort,
    repPort: opts.repPort,
    endpointPorts: opts.endpointPorts,
    endpointHost: opts.endpointHost ?? 'localhost',
    topicScanMs: opts.topicScanMs ?? 2000,
    joinDelayMs: opts.joinDelayMs ?? 300,
    floodRate: opts.floodRate ?? DEFAULT_FLOOD_RATE,
    maxMessageBytes: opts.maxMessageBytes ?? broker.limits.maxTextBytes + 1024,
    leaseGraceMs: opts.leaseGraceMs ?? 5000,
    heartbeatMs: opts.heartbeatMs ?? 10_000,
  })
  try {
    await gw.start()
  } catch (err) {
    await gw.close()
    throw err
  }
  broker.log.info({ host: opts.host, pub: gw.pubPort, rep: gw.repPort, endpoints: opts.endpointPorts }, 'p003 gateway listening')
  return {
    pubPort: gw.pubPort,
    repPort: gw.repPort,
    gateway: gw,
    connections: () => gw.registered,
    close: () => gw.close(),
  }
}
