/**
 * The native protocol over TCP, optionally TLS. Each socket becomes a NativeConnection; writes within a
 * tick are coalesced by cork/uncork into one syscall.
 */
import net from 'node:net'
import tls from 'node:tls'
import type { Broker } from '../../core/broker.js'
import { ErrorNumbers } from '../../core/errors.js'
import { addressKey } from '../guard.js'
import { NativeConnection, type NativeOptions, type Transport } from './adapter.js'
import { encode } from './codec.js'

export interface NativeListenOptions extends NativeOptions {
  host: string
  port: number
  tls?: { key: Buffer; cert: Buffer } | undefined
}

/** A socket as the adapter's Transport: a class, so 10k idle connections share its methods instead of closures. */
class SocketTransport implements Transport {
  private corked = false

  constructor(private readonly socket: net.Socket) {}

  write(buf: Buffer): void {
    if (this.socket.destroyed) return
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(uncorkLater, this)
    }
    this.socket.write(buf)
  }

  uncork(): void {
    this.corked = false
    this.socket.uncork()
  }

  bufferedBytes(): number {
    return this.socket.writableLength
  }

  end(): void {
    if (this.corked) this.uncork()
    this.socket.end()
    // A peer that never reads must not keep the socket forever.
    const socket = this.socket
    setTimeout(() => socket.destroy(), 5000).unref()
  }

  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }
}

function uncorkLater(t: SocketTransport): void {
  t.uncork()
}

export function socketTransport(socket: net.Socket): Transport {
  return new SocketTransport(socket)
}

/** Refuse a connection a guard limit does not admit: an ERROR naming the limit, CLOSING, and close. */
function refuseSocket(socket: net.Socket, limit: string, text: string): void {
  socket.on('error', () => socket.destroy())
  socket.end(
    Buffer.concat([
      encode({ type: 'ERROR', corr: 0, code: ErrorNumbers.SB_ERR_LIMIT, limit, message: text }),
      encode({ type: 'CLOSING', corr: 0, reason: 'error', text }),
    ]),
  )
  setTimeout(() => socket.destroy(), 2000).unref()
}

export function serveNativeSocket(broker: Broker, socket: net.Socket, opts: NativeOptions): NativeConnection | undefined {
  const admission = opts.guard?.admit(socket.remoteAddress, 'native')
  if (typeof admission === 'string') {
    refuseSocket(socket, admission, opts.guard!.explain(admission, addressKey(socket.remoteAddress)))
    return undefined
  }
  socket.setNoDelay(true)
  socket.setKeepAlive(true, 30_000)
  const conn = new NativeConnection(
    broker,
    socketTransport(socket),
    opts,
    `${socket.remoteAddress}:${socket.remotePort}`,
    admission,
  )
  ;(socket as Served)[CONN] = conn
  socket.on('data', onData)
  socket.on('drain', onDrain)
  socket.on('close', onClose)
  socket.on('error', onError)
  return conn
}

// The socket's listeners are shared functions that find their connection on the socket: closures per socket were
// ~450 bytes of every idle connection.
const CONN = Symbol('switchboard.connection')
type Served = net.Socket & { [CONN]: NativeConnection }

function onData(this: Served, chunk: Buffer): void {
  this[CONN].feed(chunk)
}

function onDrain(this: Served): void {
  this[CONN].drained()
}

function onClose(this: Served): void {
  this[CONN].closedByPeer()
}

function onError(this: net.Socket): void {
  this.destroy()
}

export interface NativeListener {
  server: net.Server
  port: number
  /** Connections open now. */
  connections(): number
  /** Stop accepting; close connections that never logged in (sessions are closed by the broker). */
  close(): Promise<void>
}

export async function listenNative(broker: Broker, opts: NativeListenOptions): Promise<NativeListener> {
  const conns = new Set<NativeConnection>()
  const onSocket = (socket: net.Socket): void => {
    const conn = serveNativeSocket(broker, socket, opts)
    if (conn === undefined) return
    conns.add(conn)
    socket.once('close', () => conns.delete(conn))
  }
  const server =
    opts.tls !== undefined ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onSocket) : net.createServer(onSocket)
  server.maxConnections = broker.limits.maxConnections
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const addr = server.address()
  return {
    server,
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    connections: () => conns.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const c of conns) c.shutdown()
      }),
  }
}
