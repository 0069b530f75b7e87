/**
 * TCP and TLS connections for the SDK (Node only). Frames written within one tick go out in one write
 * (cork/uncork), as the server does, so a pipelining sender does not pay a syscall per frame.
 */
import net from 'node:net'
import tls from 'node:tls'
import type { Connection, Connector } from './connection.js'

export interface TcpOptions {
  host: string
  port: number
  /** true for TLS with the system's CAs, or node:tls options (ca, rejectUnauthorized, servername …). */
  tls?: boolean | tls.ConnectionOptions | undefined
  /** Give up opening the socket after this long. Default 10 s. */
  connectTimeoutMs?: number | undefined
}

/** A Connector over node:net / node:tls. */
export function tcpConnector(opts: TcpOptions): Connector {
  return (handlers) =>
    new Promise<Connection>((resolve, reject) => {
      const useTls = opts.tls !== undefined && opts.tls !== false
      const socket: net.Socket = useTls
        ? tls.connect({
            host: opts.host,
            port: opts.port,
            servername: net.isIP(opts.host) ? undefined : opts.host,
            ...(typeof opts.tls === 'object' ? opts.tls : {}),
          })
        : net.connect({ host: opts.host, port: opts.port })
      let opened = false
      let closed = false
      const timer = setTimeout(
        () => socket.destroy(new Error(`connecting to ${opts.host}:${opts.port} timed out`)),
        opts.connectTimeoutMs ?? 10_000,
      )
      const drainWaiters: (() => void)[] = []
      const wakeDrain = (): void => {
        for (const w of drainWaiters.splice(0)) w()
      }
      let corked = false
      const uncork = (): void => {
        corked = false
        socket.uncork()
      }
      const conn: Connection = {
        write(frame) {
          if (closed || socket.destroyed) return
          if (!corked) {
            corked = true
            socket.cork()
            process.nextTick(uncork)
          }
          socket.write(frame)
        },
        get bufferedAmount() {
          return socket.writableLength
        },
        whenDrained(threshold) {
          if (closed || socket.writableLength <= threshold) return Promise.resolve()
          return new Promise<void>((res) => drainWaiters.push(res))
        },
        close() {
          if (corked) uncork()
          socket.end()
          // A server that never closes its side must not keep us forever.
          setTimeout(() => socket.destroy(), 2000).unref()
        },
        destroy() {
          socket.destroy()
        },
      }
      socket.once(useTls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer)
        opened = true
        socket.setNoDelay(true)
        socket.setKeepAlive(true, 30_000)
        resolve(conn)
      })
      socket.on('data', (chunk: Buffer) => handlers.onData(chunk))
      socket.on('drain', wakeDrain)
      let lastError: Error | undefined
      socket.on('error', (err) => {
        lastError = err
      })
      socket.on('close', () => {
        clearTimeout(timer)
        closed = true
        wakeDrain()
        if (!opened) reject(lastError ?? new Error(`connection to ${opts.host}:${opts.port} closed`))
        else handlers.onClose(lastError)
      })
    })
}
