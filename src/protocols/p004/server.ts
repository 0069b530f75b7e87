/**
 * Seed 004 gateway listener: TCP, one P004Connection per socket. Off unless --p004-port is set (55555 with
 * --legacy). See docs/protocol/p004.md "Switchboard gateway".
 */
import type { Broker } from '../../core/broker.js'
import type { FileService } from '../../core/files.js'
import { DEFAULT_FLOOD_RATE, listenGateway, type GatewayLimits } from '../gateway-net.js'
import { P004Connection } from './adapter.js'

export interface P004StartOptions {
  host: string
  /** 0 = an ephemeral port (tests); the bound port is returned. */
  port: number
  /** The server's listener guard and login timeout (none in a bare listener). */
  limits?: GatewayLimits
  /** Where uploaded files go. Without it a file's bytes are drained and the sender told "not enabled". */
  files?: FileService | undefined
  /** Pause between two packets to the same client (default 30 ms; the original client needs one). */
  paceMs?: number
  /** The original client's sleep after a file's header, before it reads the file (default 1000 ms). */
  fileReadMs?: number
  /** Margin after that sleep and after a file's last byte before the notice that follows it (default 250 ms). */
  fileSettleMs?: number
  /** Others are announced "connected" once they stayed this long; a shorter visit is not shown (default 2000 ms). */
  presenceSettleMs?: number
  /** A file whose announced bytes stop coming for this long closes the connection (default 30 s). */
  fileIdleMs?: number
  /** Packets per second per connection before it is closed as a flood (default 200, burst twice that). */
  floodRate?: number
  /** Packets waiting for one client before it is cut off as a slow consumer (default 2000). */
  maxQueuedPackets?: number
}

export interface P004Server {
  port: number
  /** Connections open now. */
  connections(): number
  close(): Promise<void>
}

export async function startP004(broker: Broker, opts: P004StartOptions): Promise<P004Server> {
  const connOpts = {
    files: opts.files,
    paceMs: opts.paceMs ?? 30,
    fileReadMs: opts.fileReadMs ?? 1000,
    fileSettleMs: opts.fileSettleMs ?? 250,
    presenceSettleMs: opts.presenceSettleMs ?? 2000,
    fileIdleMs: opts.fileIdleMs ?? 30_000,
    floodRate: opts.floodRate ?? DEFAULT_FLOOD_RATE,
    maxQueuedPackets: opts.maxQueuedPackets ?? 2000,
  }
  const listener = await listenGateway(
    opts.host,
    opts.port,
    (socket, remote) => new P004Connection(broker, socket, connOpts, remote),
    opts.limits,
  )
  broker.log.info({ host: opts.host, port: listener.port, files: opts.files !== undefined }, 'p004 gateway listening')
  return listener
}
