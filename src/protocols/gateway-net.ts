/**
 * What the TCP gateways (001, 002, 004) share: a listener on a host and port (0 = ephemeral) that gives
 * back its real port, and a per-connection flood limit. The adapters themselves live in p00X/.
 */
import net from 'node:net'
import { decodeFileMessage } from '../core/files.js'
import type { Session } from '../core/session.js'
import type { Message } from '../core/types.js'

export interface GatewayListener {
  /** The port actually bound (the one asked for, or the ephemeral one for port 0). */
  port: number
  /** Stop accepting, end every connection, resolve when the server is closed. */
  close(): Promise<void>
}

/**
 * Listen on host:port and hand every accepted socket to onSocket. close() also destroys the sockets
 * still open, so a gateway never keeps the process alive after shutdown.
 */
export async function listenTcp(host: string, port: number, onSocket: (socket: net.Socket) => void): Promise<GatewayListener> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    onSocket(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address()
  const bound = typeof addr === 'object' && addr !== null ? addr.port : port
  let closing: Promise<void> | undefined
  return {
    port: bound,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      return closing
    },
  }
}

/**
 * Token bucket over frames per second on one connection: a legacy client types, it does not stream, so a
 * connection over the limit is a flood and is closed. `take()` is false when the bucket is empty.
 */
export class FloodGuard {
  private tokens: number
  private at: number
  constructor(
    private readonly perSecond: number,
    private readonly burst = perSecond * 2,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst
    this.at = now()
  }
  take(): boolean {
    const t = this.now()
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.at) * this.perSecond) / 1000)
    this.at = t
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

/** Default frames per second a legacy connection may send before it is closed as a flood. */
export const DEFAULT_FLOOD_RATE = 200

/** Text of a file message for a protocol that cannot carry files (001, 002, 003). */
export function fileAsText(name: string, size: number, fileId: string, text: string | undefined): string {
  const caption = text !== undefined && text !== '' ? ` ${text}` : ''
  return `[file ${name}, ${size} bytes, id ${fileId}]${caption}`
}

/** The text of a message for a protocol that cannot carry files (001, 002, 003): a file becomes fileAsText. */
export function messageText(m: Message): string {
  if (m.kind !== 'file') return m.body.toString('utf8')
  const f = decodeFileMessage(m.body)
  return f === undefined ? '[file]' : fileAsText(f.name, f.size, f.fileId, f.text)
}

/**
 * Legacy protocols have no heartbeat: the open TCP connection is the only sign of life. Touch the session
 * often enough that the broker's reaper (idleTimeoutMs) never ends a connected user who only reads.
 * Returns a stop function.
 */
export function keepSessionAlive(broker: { idleTimeoutMs: number; touch(s: Session): void }, session: Session): () => void {
  const every = Math.max(1000, Math.floor(broker.idleTimeoutMs / 3))
  const timer = setInterval(() => {
    if (session.closed) return clearInterval(timer)
    try {
      broker.touch(session)
    } catch {
      // rate-limited this instant: the next tick refreshes lastSeen
    }
  }, every)
  timer.unref()
  return () => clearInterval(timer)
}
