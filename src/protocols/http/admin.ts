/**
 * The operator's dashboard: GET /admin (the page, built by vite into web/dist/admin/) and GET
 * /admin/metrics.json (its data), both behind the server's --admin-token. The data is the /metrics registry
 * itself as JSON (prom-client's getMetricsAsJSON) plus what a registry cannot hold as numbers: who is
 * online, the largest queues, each gateway's connections. Without --admin-token both answer 404; with it, a
 * request without the token gets 401 with a Basic challenge, so a browser asks for it (any user name, the
 * token as the password); scripts send `Authorization: Bearer <token>`.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Broker } from '../../core/broker.js'
import type { HttpMetrics } from './metrics.js'
import { PROBLEM_TYPE, problem } from './problem.js'

export interface AdminDeps {
  broker: Broker
  metrics: HttpMetrics
  /** The operator's token; undefined or empty: no dashboard (404). */
  token: string | undefined
  /** Folder of the built web page; the dashboard is admin/index.html in it. */
  webRoot: string
  /** Connections per gateway of the whole server (this listener's own when the server does not say). */
  gateways: () => Record<string, number>
}

export interface AdminSnapshot {
  at: number
  metrics: Awaited<ReturnType<HttpMetrics['registry']['getMetricsAsJSON']>>
  online: { id: number; name: string; protocol: string; since: number; queued: number; queuedBytes: number }[]
  queues: { name: string; count: number; bytes: number }[]
  gateways: { name: string; connections: number }[]
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** The token a request offers: a bearer token, or the password of Basic authentication. */
export function offeredToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization
  if (typeof h !== 'string') return undefined
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(h)
  if (bearer !== null) return bearer[1]
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(h)
  if (basic === null) return undefined
  const text = Buffer.from(basic[1]!, 'base64').toString('utf8')
  const colon = text.indexOf(':')
  return colon < 0 ? undefined : text.slice(colon + 1)
}

/** Compares in constant time (over digests, so the length of the token is not told either). */
export function tokenMatches(offered: string | undefined, token: string): boolean {
  return offered !== undefined && timingSafeEqual(digest(offered), digest(token))
}

export function registerAdmin(app: FastifyInstance, deps: AdminDeps): void {
  const token = deps.token ?? ''
  const pageFile = path.join(deps.webRoot, 'admin', 'index.html')

  /** True when the request may go on; otherwise the reply (404 or 401) has been sent. */
  const allowed = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const instance = req.url.split('?')[0]!
    if (token === '') {
      void reply
        .code(404)
        .type(PROBLEM_TYPE)
        .send(
          problem('SB_ERR_UNSUPPORTED', 'the dashboard is off: start the server with --admin-token', { status: 404, instance }),
        )
      return false
    }
    if (tokenMatches(offeredToken(req), token)) return true
    void reply
      .code(401)
      .header('www-authenticate', 'Basic realm="Switchboard admin", charset="UTF-8"')
      .header('cache-control', 'no-store')
      .type(PROBLEM_TYPE)
      .send(
        problem(
          'SB_ERR_AUTH',
          "the dashboard needs the operator's token (--admin-token): as the password, or as a bearer token",
          {
            instance,
          },
        ),
      )
    return false
  }

  const page = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    if (!allowed(req, reply)) return reply
    let html: string
    try {
      html = await fs.promises.readFile(pageFile, 'utf8')
    } catch {
      html =
        '<!doctype html><meta charset="utf-8"><title>Switchboard admin</title><p>The dashboard is not built on this server (no web/dist/admin): run <code>npm run build:web</code>. Its data is at <a href="/admin/metrics.json">/admin/metrics.json</a>.</p>'
    }
    return reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html)
  }
  app.get('/admin', page)
  app.get('/admin/', page)

  app.get('/admin/metrics.json', async (req, reply) => {
    if (!allowed(req, reply)) return reply
    return reply.header('cache-control', 'no-store').send(await snapshot(deps))
  })
}

/** One look at the server: the registry's figures and the lists the dashboard shows. */
export async function snapshot(deps: Pick<AdminDeps, 'broker' | 'metrics' | 'gateways'>): Promise<AdminSnapshot> {
  const { broker } = deps
  const online: AdminSnapshot['online'] = []
  for (const s of [...broker.localSessions()]) {
    const q = await broker.queueStats(s.user.id)
    online.push({ id: s.user.id, name: s.user.name, protocol: s.protocol, since: s.since, queued: q.count, queuedBytes: q.bytes })
  }
  online.sort((a, b) => a.name.localeCompare(b.name))
  const queues = online
    .filter((u) => u.queued > 0)
    .sort((a, b) => b.queued - a.queued || b.queuedBytes - a.queuedBytes)
    .slice(0, 10)
    .map((u) => ({ name: u.name, count: u.queued, bytes: u.queuedBytes }))
  const gateways = Object.entries(deps.gateways()).map(([name, connections]) => ({ name, connections }))
  return { at: Date.now(), metrics: await deps.metrics.registry.getMetricsAsJSON(), online, queues, gateways }
}
