/**
 * The HTTP gateway: REST, long polling, SSE, the native protocol over WebSocket, the web page and /metrics on
 * one port. On unless --http-port is -1. HTTPS (and WSS) with --http-tls-key and --http-tls-cert.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { defineGateway } from '../../plugin.js'

const WEB_DIST = fileURLToPath(new URL('../../../web/dist', import.meta.url))

export const httpGateway = defineGateway({
  name: 'http',
  title: 'HTTP (REST, SSE, WebSocket, web page, /metrics)',
  options: [
    { name: 'http-port', kind: 'int', default: 7080, help: 'HTTP port: REST, SSE, WebSocket, web page, /metrics (-1 = off)' },
    {
      name: 'cors',
      kind: 'string',
      default: '',
      help: "HTTP: origins allowed to call the API from a browser ('*' or a comma-separated list; empty = none)",
    },
    {
      name: 'http-event-buffer-bytes',
      kind: 'int',
      default: 1024 * 1024,
      help: 'HTTP: bytes of events one polling session holds for its client before dropping the oldest',
    },
    {
      name: 'http-event-budget-bytes',
      kind: 'int',
      default: 256 * 1024 * 1024,
      help: 'HTTP: bytes of events every polling session together holds (the oldest are dropped above it)',
    },
    {
      name: 'web-root',
      kind: 'string',
      default: undefined,
      help: 'HTTP: folder served at / (default: the built web page, web/dist)',
    },
    {
      name: 'admin-token',
      kind: 'string',
      default: '',
      help: "HTTP: the operator's token for the dashboard at /admin (empty = no dashboard); keep it secret, e.g. in SWITCHBOARD_ADMIN_TOKEN",
    },
    {
      name: 'http-tls-key',
      kind: 'string',
      default: undefined,
      help: 'PEM key file: serve HTTPS and WSS on the HTTP port (may be the same files as --tls-key/--tls-cert)',
    },
    { name: 'http-tls-cert', kind: 'string', default: undefined, help: 'PEM certificate file for --http-tls-key' },
    {
      name: 'metrics-token',
      kind: 'string',
      default: undefined,
      help: 'HTTP: /metrics requires Authorization: Bearer <this token> (prefer SWITCHBOARD_METRICS_TOKEN to a flag)',
    },
  ],
  enabled: (o) => o['http-port'] >= 0,
  async start(ctx) {
    const o = ctx.options
    const key = o['http-tls-key']
    const cert = o['http-tls-cert']
    if ((key === undefined) !== (cert === undefined))
      throw new Error('--http-tls-key and --http-tls-cert go together: give both or neither')
    const tls = key !== undefined && cert !== undefined ? { key: readFileSync(key), cert: readFileSync(cert) } : undefined
    const cors = o.cors === '' ? false : o.cors === '*' ? '*' : o.cors.split(',').map((x) => x.trim())
    const [{ startHttp }, { nativeOptionsFor }] = await Promise.all([import('./index.js'), import('../native/options.js')])
    const http = await startHttp(ctx.broker, {
      host: ctx.shared.host,
      port: o['http-port'],
      cors,
      nativeOptions: nativeOptionsFor(ctx),
      webRoot: o['web-root'] ?? WEB_DIST,
      files: ctx.files,
      version: ctx.shared.version,
      adminToken: o['admin-token'],
      ...(ctx.gatewayConnections !== undefined ? { gatewayConnections: ctx.gatewayConnections } : {}),
      guard: ctx.shared.guard,
      eventBufferBytes: o['http-event-buffer-bytes'],
      eventBudgetBytes: o['http-event-budget-bytes'],
      maxPreAuthBodyBytes: ctx.shared.maxPreAuthBodyBytes,
      tls,
      metricsToken: o['metrics-token'],
    })
    const port = http.address.port
    return {
      listeners: [{ name: 'http', address: `${tls ? 'https' : 'http'}://${ctx.shared.host}:${port}`, port }],
      connections: http.connections,
      close: http.close,
    }
  },
})
