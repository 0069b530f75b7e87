/**
 * WebSocket at /v1/ws: binary messages carry the native protocol's byte stream, so the same
 * NativeConnection (and the same SDK code) serves TCP and browsers. Each inbound binary message is a chunk
 * of the stream (frames may be split across messages or several share one); outbound frames written in
 * one tick go out as one binary message.
 */
import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import type { Broker } from '../../core/broker.js'
import { NativeConnection, type NativeOptions, type Transport } from '../native/adapter.js'

/** RFC 6455 §7.4.1 close codes for the reasons a native CLOSING frame gives. */
export function wsCloseCode(reason: string): number {
  switch (reason) {
    case 'error': // malformed input, or no login in time
    case 'slow-consumer':
      return 1008 // policy violation
    case 'shutdown':
      return 1001 // going away
    default:
      return 1000
  }
}

export class WsTransport implements Transport {
  private chunks: Buffer[] = []
  private pendingBytes = 0
  private scheduled = false
  onDrain: () => void = () => {}

  constructor(
    private readonly socket: WebSocket,
    private readonly highWaterMark: number,
  ) {}

  write(buf: Buffer): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    this.chunks.push(buf)
    this.pendingBytes += buf.length
    if (!this.scheduled) {
      this.scheduled = true
      process.nextTick(() => this.flush())
    }
  }

  private flush(): void {
    this.scheduled = false
    if (this.chunks.length === 0 || this.socket.readyState !== this.socket.OPEN) return
    const data = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.pendingBytes)
    this.chunks = []
    this.pendingBytes = 0
    this.socket.send(data, { binary: true }, (err) => {
      if (err === undefined || err === null) if (this.socket.bufferedAmount < this.highWaterMark) this.onDrain()
    })
  }

  bufferedBytes(): number {
    return this.socket.bufferedAmount + this.pendingBytes
  }

  /** The close code and reason say what the CLOSING frame written just before says. */
  end(reason: string, closeText: string): void {
    this.flush()
    // Close reasons are at most 123 bytes (RFC 6455 §5.5).
    let text = closeText
    while (Buffer.byteLength(text) > 123) text = text.slice(0, -1)
    if (this.socket.readyState === this.socket.OPEN) this.socket.close(wsCloseCode(reason), text)
    setTimeout(() => this.socket.terminate(), 5000).unref()
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }
}

export interface WsDeps {
  broker: Broker
  nativeOptions: NativeOptions
  /** Open WebSockets and the native connection each carries, so the listener can end them with a reason. */
  sockets: Map<WebSocket, NativeConnection>
}

/**
 * The largest message the `ws` receiver of this socket accepts: checked from each message's length header, so
 * a larger one is refused (close 1009) before it is buffered. `ws` sets it once per server; a connection that
 * has not logged in gets a small one. Reaches into ws's receiver (ws 8), and does nothing if that changes.
 */
function setMaxPayload(socket: WebSocket, bytes: number): boolean {
  const receiver = (socket as unknown as { _receiver?: { _maxPayload?: unknown } })._receiver
  if (receiver === undefined || typeof receiver._maxPayload !== 'number') return false
  receiver._maxPayload = bytes
  return true
}

/** A WebSocket message may hold a frame plus change (frames written in one tick travel together). */
const WS_SLACK = 64 * 1024

export function registerWs(app: FastifyInstance, deps: WsDeps): void {
  app.get('/v1/ws', { websocket: true }, (socket, req) => {
    const opts = deps.nativeOptions
    const guarded = opts.guard?.admit(req.socket.remoteAddress, 'ws')
    if (typeof guarded === 'string') {
      const text = opts.guard!.explain(guarded, req.ip)
      deps.broker.log.warn({ remote: req.ip }, `ws: ${text}`)
      socket.close(1008, guarded) // policy violation, naming the limit
      return
    }
    const preLogin = Math.min(opts.maxPreLoginFrameBytes ?? opts.maxFrameBytes, opts.maxFrameBytes)
    const limited = preLogin < opts.maxFrameBytes && setMaxPayload(socket, preLogin)
    const transport = new WsTransport(socket, opts.highWaterMark)
    const conn = new NativeConnection(
      deps.broker,
      transport,
      { ...opts, protocol: 'ws' },
      `ws:${req.ip}:${req.socket.remotePort ?? 0}`,
      {
        address: guarded?.address ?? req.ip,
        loggedIn() {
          guarded?.loggedIn()
          if (limited) setMaxPayload(socket, opts.maxFrameBytes + WS_SLACK)
        },
        release() {
          guarded?.release()
        },
      },
    )
    deps.sockets.set(socket, conn)
    transport.onDrain = () => conn.drained()
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (!isBinary) {
        socket.close(1003, 'binary messages only: they carry native protocol frames')
        return
      }
      conn.feed(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data))
    })
    socket.on('close', () => {
      deps.sockets.delete(socket)
      conn.closedByPeer()
    })
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' && conn.session === undefined)
        deps.broker.log.warn(
          { remote: req.ip },
          `ws: message larger than maxPreLoginFrameBytes (${preLogin}) before login: closed 1009`,
        )
      socket.terminate()
    })
  })
}
