/**
 * The native protocol over a WebSocket (ws://host:httpPort/v1/ws): each binary message carries native
 * frames. Uses the standard WebSocket API — global in browsers and Node 22+; on Node 20 pass a constructor,
 * e.g. `import WebSocket from 'ws'`. Imports nothing from Node.
 */
import type { Connection, Connector } from './connection.js'

/** The slice of the standard WebSocket API this transport uses (the `ws` package implements it too). */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code?: number; reason?: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

export interface WsOptions {
  /** ws:// or wss:// URL of the endpoint, e.g. ws://127.0.0.1:7080/v1/ws */
  url: string
  /** The WebSocket class; defaults to globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor | undefined
  connectTimeoutMs?: number | undefined
}

const OPEN = 1

function toBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  // `ws` may hand a list of fragments when binaryType is 'fragments'; we never ask for that.
  return undefined
}

/** A Connector over a WebSocket. */
export function wsConnector(opts: WsOptions): Connector {
  const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  return (handlers) =>
    new Promise<Connection>((resolve, reject) => {
      if (Ctor === undefined) {
        reject(new Error('no WebSocket implementation: pass one (e.g. the `ws` package) as the WebSocket option'))
        return
      }
      let ws: WebSocketLike
      try {
        ws = new Ctor(opts.url)
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)))
        return
      }
      ws.binaryType = 'arraybuffer'
      let opened = false
      let closed = false
      const timer = setTimeout(() => ws.close(), opts.connectTimeoutMs ?? 10_000)
      const conn: Connection = {
        write(frame) {
          if (closed || ws.readyState !== OPEN) return
          ws.send(frame)
        },
        get bufferedAmount() {
          return ws.bufferedAmount
        },
        // The WebSocket API has no drain event: poll bufferedAmount.
        async whenDrained(threshold) {
          while (!closed && ws.bufferedAmount > threshold) await new Promise((r) => setTimeout(r, 10))
        },
        close() {
          ws.close(1000, 'bye')
        },
        destroy() {
          ws.close(4000, 'unresponsive')
          closed = true
        },
      }
      ws.onopen = () => {
        clearTimeout(timer)
        opened = true
        resolve(conn)
      }
      ws.onmessage = (ev) => {
        const bytes = toBytes(ev.data)
        if (bytes !== undefined) handlers.onData(bytes)
      }
      ws.onerror = () => {
        // onclose follows and reports it
      }
      let reported = false
      ws.onclose = (ev) => {
        clearTimeout(timer)
        const wasClosed = closed
        closed = true
        if (!opened) {
          reject(new Error(`WebSocket ${opts.url} closed before it opened (code ${ev.code ?? 0})`))
          return
        }
        if (reported) return
        reported = true
        handlers.onClose(
          wasClosed || ev.code === 1000 ? undefined : new Error(`WebSocket closed: ${ev.code ?? 0} ${ev.reason ?? ''}`.trim()),
        )
      }
    })
}
