/**
 * What the TCP gateways (001, 002, 004) share: a listener on a host and port (0 = ephemeral) that gives
 * back its real port, a per-connection flood limit, and GatewayConnection, the socket ⇄ session lifecycle
 * every adapter has. The protocol-specific halves live in p00X/adapter.ts.
 */
import net from 'node:net'
import type { Broker } from '../core/broker.js'
import { decodeFileMessage } from '../core/files.js'
import type { Session } from '../core/session.js'
import { TailBuffer } from './accumulator.js'
import type { Admission, ListenerGuard } from './guard.js'
import type { CloseReason, Message, Outbound, SessionSink } from '../core/types.js'

export interface GatewayListener {
  /** The port actually bound (the one asked for, or the ephemeral one for port 0). */
  port: number
  /** Connections open now. */
  connections(): number
  /** Stop accepting, end every connection, resolve when the server is closed. */
  close(): Promise<void>
}

/**
 * Listen on host:port and hand every accepted socket to onSocket. close() also destroys the sockets
 * still open, so a gateway never keeps the process alive after shutdown.
 */
export async function listenTcp(
  host: string,
  port: number,
  onSocket: (socket: net.Socket, admission: Admission | undefined) => void,
  guard?: ListenerGuard,
): Promise<GatewayListener> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    // Refused first when the process nears its descriptor limit, or the address has too many connections:
    // closed at once (the legacy wires have no way to say why; the log and /metrics do).
    const admission = guard?.admit(socket.remoteAddress, 'gateway')
    if (typeof admission === 'string') {
      socket.on('error', () => undefined)
      socket.destroy()
      return
    }
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      admission?.release()
    })
    onSocket(socket, admission)
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
    connections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      return closing
    },
  }
}

/** What every legacy listener shares with the others (GatewayShared): the guard and the login timeout. */
export interface GatewayLimits {
  guard?: ListenerGuard | undefined
  /** A connection that has not named itself by then is closed, as a native one is. */
  loginTimeoutMs?: number | undefined
}

/**
 * listenTcp with one GatewayConnection per socket, made by connect: no Nagle (every frame leaves as its own
 * segment, which 004's pacing relies on, ORIGINALS §004), TCP keep-alive, and the socket's events wired to
 * the connection. A socket error just destroys the socket: 'close' follows and ends the session. A connection
 * still unnamed after the login timeout is closed.
 */
export function listenGateway(
  host: string,
  port: number,
  connect: (socket: net.Socket, remote: string) => GatewayConnection,
  limits: GatewayLimits = {},
): Promise<GatewayListener> {
  const { guard, loginTimeoutMs } = limits
  return listenTcp(
    host,
    port,
    (socket, admission) => {
      socket.setNoDelay(true)
      socket.setKeepAlive(true, 30_000)
      const conn = connect(socket, `${socket.remoteAddress}:${socket.remotePort}`)
      if (admission !== undefined && guard !== undefined)
        conn.admission = { authenticating: () => guard.authenticating(admission.address), loggedIn: () => admission.loggedIn() }
      if (loginTimeoutMs !== undefined) {
        const timer = setTimeout(() => {
          if (conn.session !== undefined || socket.destroyed) return
          conn.broker.log.info(
            { remote: conn.remote },
            `${conn.protocol}: no name within the login timeout (${loginTimeoutMs} ms): closing`,
          )
          socket.destroy()
        }, loginTimeoutMs)
        timer.unref()
        socket.once('close', () => clearTimeout(timer))
      }
      socket.on('data', (chunk: Buffer) => conn.feed(chunk))
      socket.on('drain', () => conn.drained())
      socket.on('close', () => conn.closedByPeer())
      socket.on('error', () => socket.destroy())
    },
    guard,
  )
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

/** A conversation request: legacy protocols have none, so say no at once rather than let the requester wait. */
export function declineConversation(
  broker: Pick<Broker, 'answerConversation'>,
  s: Session,
  ev: Extract<Outbound, { type: 'conversation' }>,
): void {
  if (ev.ev.event !== 'request') return
  try {
    broker.answerConversation(s, ev.ev.convId, false)
  } catch {
    // already answered or expired
  }
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

/** Frames waiting for the async half of their handling, at most; above it the socket is paused. */
const MAX_PENDING = 64

/**
 * One legacy TCP connection as a broker session sink: the lifecycle 001, 002 and 004 share. A subclass
 * decodes `buf` (consume), claims a name with claim(), and maps events to its wire (pushTo).
 *
 * Closing has three doors, all ending in cleanup() once: the peer goes (closedByPeer), the adapter refuses
 * bad input (refuse → shut), or the broker ends the session (close → farewell → shut by default).
 */
export abstract class GatewayConnection implements SessionSink {
  session: Session | undefined
  /** Bytes read and not decoded yet. */
  protected buf: Buffer = Buffer.alloc(0)
  private readonly tail = new TailBuffer()
  /** Set by the listener: the login rate check, and the per-address count of connections not named yet. */
  admission: { authenticating(): void; loggedIn(): void } | undefined
  protected closed = false
  private readonly flood: FloodGuard
  private stopKeepAlive: (() => void) | undefined
  private chain: Promise<void> = Promise.resolve()
  private pending = 0
  private paused = false

  constructor(
    /** The protocol name given to the broker, and the prefix of every log line. */
    readonly protocol: string,
    readonly broker: Broker,
    protected readonly socket: net.Socket,
    private readonly floodRate: number,
    readonly remote: string,
  ) {
    this.flood = new FloodGuard(floodRate)
  }

  // ------------------------------------------------------------ bytes in

  feed(chunk: Buffer): void {
    if (this.closed) return
    // Linear in the bytes received, however small the writes: see TailBuffer.
    this.buf = this.tail.append(this.buf, chunk)
    this.consume()
  }

  /** Decode what `buf` holds now. */
  protected abstract consume(): void

  /** Counts one frame against the flood limit; over it, the connection is refused and this returns false. */
  protected withinFloodLimit(unit: string): boolean {
    if (this.flood.take()) return true
    this.refuse(`flood: more than ${this.floodRate} ${unit} per second`)
    return false
  }

  /**
   * Run task after the tasks queued before it, so frames are handled in the order they came. While too many
   * wait, the socket is paused (inbound backpressure). A failure is logged as `<protocol>: <failed>`.
   */
  protected serially(task: () => Promise<void>, failed: string): void {
    this.pending++
    if (this.pending > MAX_PENDING && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
    this.chain = this.chain
      .then(task)
      .catch((err: unknown) => this.broker.log.error({ err, remote: this.remote }, `${this.protocol}: ${failed}`))
      .finally(() => {
        this.pending--
        if (this.paused && this.pending < MAX_PENDING / 2) {
          this.paused = false
          this.socket.resume()
        }
      })
  }

  /** The socket is gone. */
  closedByPeer(): void {
    if (this.closed) return
    this.closed = true
    this.cleanup()
  }

  drained(): void {
    if (this.session !== undefined) this.broker.drained(this.session)
  }

  /**
   * broker.claim(name) for this connection. When the name is refused, refused(err) says so on the wire. On
   * success the session is kept alive, ready(s) runs (what the client must see first), then broker.ready()
   * lets the broker push: the events held since the claim, then the queue. False when there is no session.
   */
  protected async claim(name: string, refused: (err: unknown) => void, ready?: (s: Session) => void): Promise<boolean> {
    let s: Session
    try {
      this.admission?.authenticating() // one login rate per address on every listener
      s = await this.broker.claim(name, this.protocol, this)
    } catch (err) {
      refused(err)
      return false
    }
    if (this.closed) {
      this.broker.detach(s)
      return false
    }
    this.session = s
    this.admission?.loggedIn()
    this.stopKeepAlive = keepSessionAlive(this.broker, s)
    ready?.(s)
    this.broker.ready(s)
    return true
  }

  protected async ackQuietly(s: Session, seq: number): Promise<void> {
    try {
      await this.broker.ack(s, seq)
    } catch (err) {
      if (!s.closed) this.broker.log.warn({ err, seq }, `${this.protocol}: ack failed`)
    }
  }

  // ------------------------------------------------------------ SessionSink

  push(ev: Outbound): boolean {
    // The broker pushes only after broker.ready(), that is once this.session is set.
    if (this.closed || this.session === undefined) return false
    return this.pushTo(this.session, ev)
  }

  /** An event for the live session, onto the wire. Returns false when the broker should pause. */
  protected abstract pushTo(s: Session, ev: Outbound): boolean

  backlog(): number {
    return this.socket.writableLength
  }

  close(reason: CloseReason, text: string): void {
    this.broker.log.info({ remote: this.remote, reason, text }, `${this.protocol}: session closed by the broker`)
    this.session = undefined
    this.farewell(reason, text)
  }

  /** The broker ended the session. By default the connection just closes: most legacy wires cannot say why. */
  protected farewell(_reason: CloseReason, _text: string): void {
    this.shut()
  }

  // ------------------------------------------------------------ out

  /**
   * Writes are gathered until the event loop's next turn (setImmediate), then go out as one: when a room line
   * reaches every gateway session, each socket gets one write per turn however many lines arrived in it, not one
   * system call per line per session (issue 13 item 6).
   */
  protected write(buf: Buffer): void {
    if (this.closed || this.socket.destroyed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      setImmediate(this.uncork)
    }
    this.socket.write(buf)
  }

  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  /** Bad input: log why and close this connection only. */
  protected refuse(why: string): void {
    if (this.closed) return
    this.broker.log.warn({ remote: this.remote, name: this.session?.user.name }, `${this.protocol}: closing connection: ${why}`)
    this.shut()
  }

  protected shut(): void {
    if (this.closed) return
    this.closed = true
    this.cleanup()
    if (this.corked) this.uncork()
    this.socket.end()
    setTimeout(() => this.socket.destroy(), 2000).unref()
  }

  /** Once, when the connection closes either way. Subclasses release their own state and call super. */
  protected cleanup(): void {
    this.stopKeepAlive?.()
    if (this.session !== undefined) this.broker.detach(this.session)
  }
}
