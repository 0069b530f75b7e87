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

export function socketTransport(socket: net.Socket): Transport {
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }
  return {
    write(buf) {
      if (socket.destroyed) return
      if (!corked) {
        corked = true
        socket.cork()
        process.nextTick(uncork)
      }
      socket.write(buf)
    },
    bufferedBytes: () => socket.writableLength,
    end: () => {
      if (corked) uncork()
      socket.end()
      // A peer that never reads must not keep the socket forever.
      setTimeout(() => socket.destroy(), 5000).unref()
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
  }
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
  socket.on('data', (chunk: Buffer) => conn.feed(chunk))
  socket.on('drain', () => conn.drained())
  socket.on('close', () => conn.closedByPeer())
  socket.on('error', () => socket.destroy())
  return conn
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
