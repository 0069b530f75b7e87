/**
 * The HTTP listener (issue 4): REST API under /v1, long polling, server-sent events, the native protocol
 * over WebSocket, the OpenAPI document and its reference page, /healthz, /metrics and the web page, all
 * on one fastify instance. `buildHttp` wires it without opening a port (for tests: `app.inject`, or
 * `listen` on port 0); `startHttp` also listens.
 *
 * @example
 *   const http = await startHttp(broker, { host: '127.0.0.1', port: 8080, nativeOptions })
 *   // … later
 *   await http.close()
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { AddressInfo, Socket } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import websocket from '@fastify/websocket'
import type { WebSocket } from 'ws'
import type { Broker } from '../../core/broker.js'
import { BrokerError } from '../../core/errors.js'
import type { FileService } from '../../core/files.js'
import type { NativeConnection, NativeOptions } from '../native/adapter.js'
import { registerAdmin } from './admin.js'
import { HttpMetrics } from './metrics.js'
import { buildOpenApi, docsPage } from './openapi.js'
import { HttpError, loginRetryAfter, PROBLEM_TYPE, problem, toWire } from './problem.js'
import { registerFiles } from './files.js'
import { registerRest } from './rest.js'
import { EventBudget, HttpSessions } from './sessions.js'
import type { Schema } from './routes-spec.js'
import { registerSse, type SseOutlet } from './sse.js'
import { registerWs } from './ws.js'
import { Transform } from 'node:stream'
import { addressKey, type ListenerGuard } from '../guard.js'
import { bearerToken } from './rest.js'
import type { HttpSession } from './sessions.js'

export { toWire } from './problem.js'
export { buildOpenApi } from './openapi.js'
export { parseToken, formatToken } from './sessions.js'

export interface HttpOptions {
  host: string
  port: number
  /** Allowed browser origins: a list, '*' for any, false (default) for no CORS headers. */
  cors?: string[] | '*' | false
  /** Largest request body in bytes (default 1 MiB); larger ones get 413 SB_ERR_TOO_LARGE. */
  bodyLimit?: number
  /** The native protocol's options, for the WebSocket endpoint /v1/ws. */
  nativeOptions: NativeOptions
  /** Folder served at / (default web/dist under the working directory); a placeholder page when it does not exist. */
  webRoot?: string
  /** Comment lines on SSE streams at this interval (default 15 000 ms). */
  sseHeartbeatMs?: number
  /** Bytes waiting on an SSE response above which the broker pauses the session (default 256 KiB). */
  sseHighWaterMark?: number
  /** Events kept per polling session (default 1000) and their approximate bytes (default 1 MiB); the oldest are dropped. */
  eventBufferSize?: number
  eventBufferBytes?: number
  /** Bytes of events held by every polling session together (default 256 MiB); over it sessions drop their oldest. */
  eventBudgetBytes?: number
  /** Registrations, logins and bad tokens per second per client address (default 20, bursts of twice that). */
  authRatePerSecond?: number
  /** Trust X-Forwarded-For for the client address (behind a reverse proxy). */
  trustProxy?: boolean
  /** A pino logger; default: no request logging. */
  logger?: FastifyBaseLogger
  /** Node process metrics (CPU, memory, event loop) in /metrics (default true). */
  processMetrics?: boolean
  /** On close, connections still open after this are cut (default 5000 ms); long polls answer at once. */
  shutdownGraceMs?: number
  /** Shown in the OpenAPI document. */
  version?: string
  /** The core's file service for /v1/files; without it those routes answer 501. */
  files?: FileService | undefined
  /** The operator's token for the dashboard at /admin; without it (or empty) /admin answers 404. */
  adminToken?: string | undefined
  /** Connections per gateway of the whole server, for /metrics and the dashboard (default: this listener's). */
  gatewayConnections?: () => Record<string, number>
  /**
   * The server's per-address connection caps and login rate (shared with every listener). Without it the
   * listener counts logins per address on its own (authRatePerSecond) and caps no connections.
   */
  guard?: ListenerGuard | undefined
  /** Largest request body from a caller without a valid bearer token (default: bodyLimit): 413 naming maxPreAuthBodyBytes. */
  maxPreAuthBodyBytes?: number
  /** Serve HTTPS (and WSS for /v1/ws) with this PEM key and certificate; plain HTTP without. */
  tls?: { key: Buffer | string; cert: Buffer | string } | undefined
  /** When set, GET /metrics answers 401 unless the request carries `Authorization: Bearer <metricsToken>`. */
  metricsToken?: string | undefined
}

/**
 * The Content-Security-Policy of every response (the web page's in particular): scripts, styles, images and
 * connections (fetch, EventSource, the WebSocket) from this origin only, no plugins, no framing by another
 * site. The built page (web/dist: one module script, one stylesheet, styles set through the DOM) works under it.
 */
export const CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  baseUri: ["'self'"],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  mediaSrc: ["'self'", 'blob:'],
  objectSrc: ["'none'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'"],
  // helmet adds upgrade-insecure-requests by default: on a plain-HTTP server it would send the page's own
  // requests to an https:// that does not exist.
  upgradeInsecureRequests: null,
}

/** Constant-time check of an Authorization header against the bearer token. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')
  if (m === null) return false
  const a = createHash('sha256').update(m[1]!).digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}

export interface HttpServer {
  server: FastifyInstance
  address: { host: string; port: number }
  /** TCP connections open now (requests, keep-alive, SSE streams, WebSockets). */
  connections(): number
  close(): Promise<void>
}

function webRootOf(opts: HttpOptions): string {
  return path.resolve(opts.webRoot ?? 'web/dist')
}

const PLACEHOLDER = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Switchboard</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}</style></head>
<body><h1>Switchboard</h1><p>The web client is not built on this server (no <code>web/dist</code>).</p>
<p>The HTTP API is here: <a href="/docs">reference</a> · <a href="/openapi.json">openapi.json</a> · <a href="/healthz">health</a> · <a href="/metrics">metrics</a>.</p></body></html>`

/**
 * Query-string and path values arrive as text: turn those the schema declares integer or boolean into
 * numbers and booleans (anything else is left for the validator to refuse).
 */
export function coerceText(values: unknown, schema: Schema): void {
  if (values === null || typeof values !== 'object') return
  const props = (schema.properties ?? {}) as Record<string, Schema>
  const v = values as Record<string, unknown>
  for (const [k, s] of Object.entries(props)) {
    const x = v[k]
    if (typeof x !== 'string') continue
    if (s.type === 'integer' && /^-?\d{1,16}$/.test(x)) v[k] = Number(x)
    else if (s.type === 'boolean' && (x === 'true' || x === 'false' || x === '1' || x === '0')) v[k] = x === 'true' || x === '1'
  }
}

/** Refuse a connection a guard limit does not admit: a 503 naming the limit, then close. */
function refuseConnection(socket: Socket, limit: string, text: string): void {
  const body = JSON.stringify(problem('SB_ERR_LIMIT', text, { limit }))
  socket.on('error', () => socket.destroy())
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  setTimeout(() => socket.destroy(), 2000).unref()
}

/** Build the listener without opening a port. */
export async function buildHttp(broker: Broker, opts: HttpOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.tls !== undefined ? { https: { key: opts.tls.key, cert: opts.tls.cert } } : {}),
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    trustProxy: opts.trustProxy ?? false,
    ...(opts.logger !== undefined ? { loggerInstance: opts.logger } : { logger: false }),
    ajv: {
      // Reject what the schema does not allow (fastify would silently strip unknown properties); union types
      // (integer | string recipients) match without coercing a name into an id.
      // JSON bodies are not coerced either (ajv would turn `"to": true` into user 1): query strings and path
      // parameters, which are text by nature, are converted by the preValidation hook below instead.
      customOptions: { removeAdditional: false, allowUnionTypes: true, coerceTypes: false },
    },
    // SSE streams and WebSockets are ended by preClose; idle keep-alive sockets need not hold close() up.
    forceCloseConnections: 'idle',
    // While closing, requests are answered by the hook below (503 SB_ERR_SHUTTING_DOWN), not by fastify's bare 503.
    return503OnClosing: false,
  }) as unknown as FastifyInstance

  const guard = opts.guard
  const budget = new EventBudget(opts.eventBudgetBytes ?? 256 * 1024 * 1024)
  const sessions = new HttpSessions(broker, {
    eventBufferSize: opts.eventBufferSize ?? 1000,
    eventBufferBytes: opts.eventBufferBytes ?? 1024 * 1024,
    budget,
    authRatePerSecond: guard?.opts.authRatePerSecond ?? opts.authRatePerSecond ?? 20,
    authBuckets: guard?.auth,
  })
  const streams = new Set<{ hs: HttpSession; outlet: SseOutlet }>()
  const sockets = new Map<WebSocket, NativeConnection>()
  const tcp = new Set<Socket>()
  let closing = false

  app.server.on('connection', (socket: Socket) => {
    const admission = guard?.admit(socket.remoteAddress, 'http')
    if (typeof admission === 'string') {
      refuseConnection(socket, admission, guard!.explain(admission, addressKey(socket.remoteAddress)))
      return
    }
    tcp.add(socket)
    socket.once('close', () => {
      tcp.delete(socket)
      admission?.release()
    })
  })

  const gatewayConnections = opts.gatewayConnections ?? (() => ({ http: tcp.size }))
  const metrics = new HttpMetrics(
    broker,
    {
      connections: () => ({ http: tcp.size, sse: streams.size, ws: sockets.size }),
      gateways: gatewayConnections,
      refused: () => ({ ...(guard?.refused ?? {}) }),
      events: () => ({ held: budget.held, dropped: budget.dropped }),
    },
    { processMetrics: opts.processMetrics ?? true },
  )

  // ------------------------------------------------------------ errors: one mapping, problem+json
  app.setErrorHandler((err, req, reply) => {
    const rate =
      (err as { limit?: string }).limit === 'authRatePerSecond' ? sessions.opts.authRatePerSecond : broker.limits.ratePerSecond
    const retryAfter = loginRetryAfter(err)
    const w = toWire(err, {
      instance: req.url.split('?')[0]!,
      ratePerSecond: rate,
      ...(retryAfter !== undefined ? { retryAfter } : {}),
    })
    if (w.status >= 500) req.log.error({ err }, 'request failed')
    if (w.body.code === 'SB_ERR_INTERNAL') broker.log.error({ err, url: req.url }, 'HTTP request failed')
    void reply.code(w.status).headers(w.headers).type(PROBLEM_TYPE).send(w.body)
  })
  // A request that arrives while the listener closes (on a keep-alive connection) is answered as the core answers
  // a send it will not take: 503 SB_ERR_SHUTTING_DOWN, so a client can tell "not done, send it again later" by its
  // code. /healthz says it its own way.
  app.addHook('onRequest', async (req, reply) => {
    if (!closing || req.url.startsWith('/healthz')) return
    void reply.header('connection', 'close')
    throw new BrokerError('SB_ERR_SHUTTING_DOWN', 'the server is shutting down')
  })
  app.setNotFoundHandler((req, reply) => {
    const w = toWire(new HttpError('SB_HTTP_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}; see /docs`), {
      instance: req.url.split('?')[0]!,
    })
    void reply.code(w.status).type(PROBLEM_TYPE).send(w.body)
  })

  // A caller without a valid bearer token may send only a small body (registration, login): the token is
  // checked before the body is read, and the body is cut at maxPreAuthBodyBytes, announced or chunked.
  const preAuth = opts.maxPreAuthBodyBytes
  if (preAuth !== undefined)
    app.addHook('preParsing', async (req, reply, payload) => {
      const length = req.headers['content-length']
      const announced = length === undefined ? undefined : Number(length)
      // No body, or one small enough for anyone (a registration, a login): nothing to check.
      if (announced === undefined ? req.headers['transfer-encoding'] === undefined : announced <= preAuth) return payload
      const token = bearerToken(req, false)
      if (token !== undefined) {
        await sessions.fromToken(token, req.ip) // throws 401 for a wrong token, before a byte of the body is read
        return payload
      }
      const tooLarge = (n: string): BrokerError => {
        // The rest of a refused body is never read: the connection closes after the 413, or its unread bytes (and
        // the socket) would stay with the server, and a stranger could fill its per-address connection cap with them.
        void reply.header('connection', 'close')
        return new BrokerError(
          'SB_ERR_TOO_LARGE',
          `a request body of ${n} bytes without a bearer token is larger than maxPreAuthBodyBytes (${preAuth})`,
          'maxPreAuthBodyBytes',
        )
      }
      if (announced !== undefined) throw tooLarge(String(announced))
      let seen = 0
      return payload.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            seen += chunk.length
            if (seen > preAuth) done(tooLarge(`more than ${preAuth}`))
            else done(null, chunk)
          },
        }),
      )
    })

  app.addHook('preValidation', async (req) => {
    const schema = req.routeOptions.schema as { querystring?: Schema; params?: Schema } | undefined
    if (schema?.querystring !== undefined) coerceText(req.query, schema.querystring)
    if (schema?.params !== undefined) coerceText(req.params, schema.params)
  })

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) })
    metrics.requestSeconds.observe({ method: req.method, route }, reply.elapsedTime / 1000)
  })

  // ------------------------------------------------------------ plugins
  // Security headers on every response: the CSP above, nosniff, frame-ancestors/X-Frame-Options, no referrer
  // leaks; HSTS only where the listener is HTTPS.
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: CSP_DIRECTIVES },
    hsts: opts.tls !== undefined ? { maxAge: 180 * 24 * 3600 } : false,
    // The API may be called from other origins (--cors): the browser's CORS check governs those responses.
    crossOriginResourcePolicy:
      opts.cors !== undefined && opts.cors !== false ? { policy: 'cross-origin' } : { policy: 'same-origin' },
  })
  if (opts.cors !== undefined && opts.cors !== false) {
    await app.register(cors, {
      origin: opts.cors === '*' ? '*' : opts.cors,
      methods: ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS'],
      allowedHeaders: ['Authorization', 'Content-Type', 'Range', 'Last-Event-ID'],
      exposedHeaders: ['Retry-After', 'Content-Range', 'Accept-Ranges', 'WWW-Authenticate'],
      maxAge: 600,
    })
  }
  const maxFrame = opts.nativeOptions.maxFrameBytes
  // A WebSocket message is a chunk of the native stream: one frame plus change is the most a client needs to send at once.
  await app.register(websocket, { options: { maxPayload: maxFrame + 64 * 1024 } })

  // ------------------------------------------------------------ the API
  registerRest(app, { broker, sessions, closing: () => closing })
  registerSse(app, {
    broker,
    sessions,
    streams,
    opts: { heartbeatMs: opts.sseHeartbeatMs ?? 15_000, highWaterMark: opts.sseHighWaterMark ?? 256 * 1024 },
  })
  registerWs(app, { broker, nativeOptions: opts.nativeOptions, sockets })

  registerFiles(app, { sessions, files: opts.files })

  // ------------------------------------------------------------ operations
  const doc = buildOpenApi({ version: opts.version ?? '0.1.0' })
  const docHtml = docsPage(doc)
  app.get('/openapi.json', async () => doc)
  // The reference page is one document with one inline stylesheet: the CSP allows exactly that stylesheet (by hash).
  const docStyle = /<style>([\s\S]*?)<\/style>/.exec(docHtml)?.[1] ?? ''
  const docCsp = Object.entries({
    ...CSP_DIRECTIVES,
    styleSrc: ["'self'", `'sha256-${createHash('sha256').update(docStyle).digest('base64')}'`],
  })
    .filter((e): e is [string, string[]] => e[1] !== null)
    .map(([k, v]) => `${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} ${v.join(' ')}`)
    .join(';')
  app.get('/docs', async (_req, reply) =>
    reply.header('content-security-policy', docCsp).type('text/html; charset=utf-8').send(docHtml),
  )

  app.get('/healthz', async (_req, reply) => {
    const { store, ...base } = await broker.health()
    if (store === 'closing' || closing)
      return reply.code(503).send({ status: 'fail', store: 'closing', ...base, detail: 'the server is shutting down' })
    if (store === 'full') return reply.code(503).send({ status: 'fail', store: 'full', ...base })
    if (store === 'fail')
      return reply.code(503).send({ status: 'fail', store: 'fail', ...base, detail: 'the store does not answer' })
    return { status: 'ok', store: 'ok', ...base }
  })

  app.get('/metrics', async (req, reply) => {
    if (
      opts.metricsToken !== undefined &&
      opts.metricsToken !== '' &&
      !bearerMatches(req.headers.authorization, opts.metricsToken)
    )
      throw new BrokerError('SB_ERR_AUTH', '/metrics needs Authorization: Bearer <the --metrics-token>')
    const text = await metrics.registry.metrics()
    return reply.type(metrics.registry.contentType).send(text)
  })

  // ------------------------------------------------------------ the web page and the operator's dashboard
  const root = webRootOf(opts)
  registerAdmin(app, { broker, metrics, token: opts.adminToken, webRoot: root, gateways: gatewayConnections })
  if (fs.existsSync(path.join(root, 'index.html'))) {
    // The dashboard's page (admin/) is served by registerAdmin, behind the token, never as a static file.
    await app.register(fastifyStatic, {
      root,
      prefix: '/',
      index: ['index.html'],
      wildcard: false,
      globIgnore: ['admin/**'],
    })
  } else {
    app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(PLACEHOLDER))
  }

  // ------------------------------------------------------------ closing
  app.addHook('preClose', async () => {
    closing = true
    sessions.wakeAll()
    for (const { hs, outlet } of [...streams]) {
      outlet.close('shutdown', 'the HTTP listener is closing')
      sessions.detach(hs)
    }
    for (const [ws, conn] of [...sockets]) {
      // A native session over a WebSocket is told why, as over TCP: a CLOSING frame, then the close frame.
      if (conn.session !== undefined && !conn.session.closed) broker.end(conn.session, 'shutdown', 'the server is shutting down')
      else conn.shutdown()
      if (ws.readyState === ws.OPEN) ws.close(1001, 'the HTTP listener is closing')
    }
    // A connection that never sent a request (a client's spare, pre-opened one) has nothing in flight, but
    // server.close() would wait for it until the client gives up on it.
    for (const socket of tcp) if (socket.bytesRead === 0) socket.destroy()
    // Whatever is still open after a grace period (a slow reader, a stuck upload) is cut.
    setTimeout(() => {
      for (const socket of tcp) socket.destroy()
    }, opts.shutdownGraceMs ?? 5000).unref()
  })
  app.addHook('onClose', async () => {
    metrics.close()
    // Polling sessions have no connection to close: end them, so their users are not shown online.
    for (const hs of [...sessions.all()]) if (hs.live) broker.end(hs.session, 'shutdown', 'the HTTP listener is closing')
  })

  return app
}

/** Build and listen. `address` is where it listens (port 0 gives an ephemeral port). */
export async function startHttp(broker: Broker, opts: HttpOptions): Promise<HttpServer> {
  const app = await buildHttp(broker, opts)
  let open = 0
  app.server.on('connection', (socket: Socket) => {
    open++
    socket.once('close', () => open--)
  })
  await app.listen({ host: opts.host, port: opts.port })
  const a = app.server.address() as AddressInfo
  return {
    server: app,
    address: { host: a.address, port: a.port },
    connections: () => open,
    close: () => app.close(),
  }
}
