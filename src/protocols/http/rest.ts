/**
 * The REST routes: registered from the route table (routes-spec.ts), so fastify validates each body and
 * parameter against the published schema before a handler runs. Handlers translate to broker calls and
 * nothing more.
 */
import { randomInt } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BrokerError } from '../../core/errors.js'
import type { Broker } from '../../core/broker.js'
import type { Session } from '../../core/session.js'
import type { Message } from '../../core/types.js'
import { messageJson, parseAddress, parseUser } from './json.js'
import { routes, type RouteSpec, type Schema } from './routes-spec.js'
import { formatToken, parseToken, type HttpSession, type HttpSessions } from './sessions.js'

type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>

interface SendBody {
  to: number | string
  text?: string
  base64?: string
  msgId?: number
  receipt?: boolean
  readReceipt?: boolean
  idempotent?: boolean
  transient?: boolean
  ttlMs?: number
  notBefore?: number
}

/** The bearer token of a request: the Authorization header, or ?token= where the route allows it. */
export function bearerToken(req: FastifyRequest, allowQuery: boolean): string | undefined {
  const h = req.headers.authorization
  if (typeof h === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h)
    if (m !== null) return m[1]
  }
  if (allowQuery) {
    const q = (req.query as Record<string, unknown> | undefined)?.token
    if (typeof q === 'string' && q.length > 0) return q
  }
  return undefined
}

/** Aborts when the client goes away before the answer is written (a long poll must then take nothing). */
export function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController()
  reply.raw.once('close', () => ac.abort())
  return ac.signal
}

/** A message body from its JSON form (`text` or `base64`): exported for the fuzz harness (fuzz/targets.ts). */
export function body(b: { text?: string | undefined; base64?: string | undefined }): Buffer {
  return b.text !== undefined ? Buffer.from(b.text, 'utf8') : Buffer.from(b.base64 ?? '', 'base64')
}

export interface RestDeps {
  broker: Broker
  sessions: HttpSessions
  /** The listener is closing: long polls answer at once. */
  closing: () => boolean
}

export function registerRest(app: FastifyInstance, deps: RestDeps): void {
  const { broker, sessions } = deps

  const auth = async (req: FastifyRequest, spec: RouteSpec): Promise<HttpSession> => {
    const token = bearerToken(req, spec.auth === 'bearer-or-query')
    if (token === undefined)
      throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'send Authorization: Bearer <token>, the token POST /v1/register returned')
    return sessions.fromToken(token, req.ip)
  }

  /** A call that needs who the bearer is, not a session of its own (see HttpSessions.oneShot). */
  const oneShot = <T>(req: FastifyRequest, fn: (s: Session) => Promise<T>): Promise<T> => {
    const token = bearerToken(req, false)
    if (token === undefined)
      throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'send Authorization: Bearer <token>, the token POST /v1/register returned')
    return sessions.oneShot(token, req.ip, fn)
  }

  const handlers: Record<string, (hs: HttpSession | undefined, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>> = {
    // Session -------------------------------------------------------------
    async register(_hs, req, reply) {
      const { name, password, label } = req.body as { name: string; password?: string; label?: string }
      const r = await sessions.register(name, req.ip, {
        ...(password !== undefined ? { password } : {}),
        ...(label !== undefined ? { label } : {}),
      })
      reply.code(201)
      return { id: r.hs.userId, name: r.name, device: r.hs.session.device, token: r.token }
    },
    async login(_hs, req) {
      const b = req.body as { token?: string; id?: number; name?: string; password?: string; label?: string }
      // A password makes a new device (its own token, its own session); a token comes back as its device.
      if (b.password !== undefined) return sessions.loginPassword(b.name!, b.password, b.label, req.ip)
      if (b.token === undefined) throw new BrokerError('SB_ERR_AUTH', 'give a token, or a name and password')
      // base64url secrets have no '.', so a full token and a bare secret cannot be mistaken for each other.
      const parsed = parseToken(b.token)
      const secret = parsed?.secret ?? b.token
      let hs: HttpSession
      if (b.name !== undefined) hs = await sessions.login({ name: b.name }, secret, req.ip)
      else if (b.id !== undefined || parsed !== undefined) hs = await sessions.login({ id: b.id ?? parsed!.id }, secret, req.ip)
      else throw new BrokerError('SB_ERR_AUTH', 'give the full token "<id>.<secret>", or the secret with id or name')
      return { id: hs.userId, name: hs.session.user.name, device: hs.session.device, token: formatToken(hs.userId, secret) }
    },
    async whoami(hs) {
      const p = broker.whoami(hs!.session)
      return {
        id: p.id,
        name: p.name,
        protocol: p.protocol,
        since: p.since,
        lastSeen: p.lastSeen,
        ...(p.node !== undefined ? { node: p.node } : {}),
      }
    },
    async endSession(hs, _req, reply) {
      broker.end(hs!.session, 'ended', 'goodbye')
      return reply.code(204).send()
    },
    async deleteAccount(hs, _req, reply) {
      await broker.deleteAccount(hs!.session)
      return reply.code(204).send()
    },
    async rename(hs, req) {
      const u = await broker.rename(hs!.session, (req.body as { name: string }).name)
      return { id: u.id, name: u.name }
    },

    // Devices and password (one-shot: they do not start or replace the device's session) ---------------
    async devices(_hs, req) {
      const { list, self } = await oneShot(req, async (s) => ({ list: await broker.devices(s), self: s }))
      // The core counts every local session as its device online, the one-shot one asking too: the asking
      // device is online only when it has a session of its own (a stream, a poll, a WebSocket).
      const selfOnline = broker.sessionsOf(self.user.id).some((x) => x.device === self.device && !x.sendOnly && !x.closed)
      return {
        devices: list.map((d) => ({
          id: d.id,
          label: d.label,
          createdAt: d.createdAt,
          ...(d.lastSeen !== undefined ? { lastSeen: d.lastSeen } : {}),
          online: d.current && self.sendOnly ? selfOnline : d.online,
          current: d.current,
        })),
      }
    },
    async revokeDevice(_hs, req, reply) {
      const { id } = req.params as { id: number }
      await oneShot(req, (s) => broker.revokeDevice(s, id))
      return reply.code(204).send()
    },
    async setPassword(_hs, req, reply) {
      const b = req.body as { password: string | null; current?: string }
      await oneShot(req, (s) => broker.setPassword(s, b.password, b.current))
      return reply.code(204).send()
    },

    // Messages -------------------------------------------------------------
    async send(hs, req) {
      const s = hs!.session
      const b = req.body as SendBody
      const q = req.query as { wait?: 'none' | 'receipt'; timeout: number }
      const to = parseAddress(b.to)
      const transient = b.transient === true
      const waitReceipt = !transient && q.wait === 'receipt' && (to.kind === 'user' || to.kind === 'name' || to.kind === 'topic')
      const wantReceipt = b.receipt === true || waitReceipt
      // Receipts are matched by msgId: one the client did not choose is picked from a range clients rarely count up to.
      const msgId = b.msgId ?? (wantReceipt ? randomInt(2 ** 40, 2 ** 47) : 0)
      const waiter = waitReceipt ? hs!.expectReceipt(msgId, q.timeout * 1000) : undefined
      let r
      try {
        r = await broker.send(s, {
          to,
          body: body(b),
          msgId,
          receipt: wantReceipt,
          readReceipt: b.readReceipt === true,
          idempotent: b.idempotent === true,
          transient,
          ttlMs: b.ttlMs,
          notBefore: b.notBefore,
        })
      } catch (err) {
        waiter?.cancel()
        throw err
      }
      const out: Record<string, unknown> = { msgId: r.msgId, status: r.status, seq: r.seq, recipients: r.recipients }
      if (waiter !== undefined) {
        if (r.status === 'delivered' || r.status === 'duplicate' || r.recipients === 0) waiter.cancel()
        else {
          const receipt = await waiter.receipt
          if (receipt !== undefined) out.receipt = receipt
          else out.receiptPending = true
        }
      }
      return out
    },
    async poll(hs, req, reply) {
      const q = req.query as { wait: number; max: number; mode: 'take' | 'peek' }
      const s = hs!.session
      const signal = clientGone(reply)
      let seen = hs!.arrivals
      let msgs: Message[] = await broker.take(s, q.max, q.mode, 0)
      const deadline = Date.now() + q.wait * 1000
      while (msgs.length === 0 && !signal.aborted && hs!.live && !deps.closing() && Date.now() < deadline) {
        // Only wait if nothing arrived since the last read: the broker's wake-up may have come in between.
        if (hs!.arrivals === seen) await hs!.waitForMessage(deadline - Date.now(), signal)
        if (signal.aborted || !hs!.live || deps.closing()) break
        seen = hs!.arrivals
        msgs = await broker.take(s, q.max, q.mode, 0)
      }
      if (!hs!.live && msgs.length === 0)
        throw new BrokerError(
          'SB_ERR_NOT_LOGGED_IN',
          `the session ended (${hs!.closedWith?.reason ?? 'ended'}): ${hs!.closedWith?.text ?? ''}`,
        )
      return { messages: msgs.map(messageJson) }
    },
    async ack(hs, req) {
      const b = req.body as { seq?: number; seqs?: number[] }
      const seqs = b.seqs ?? [b.seq!]
      const acked: number[] = []
      const unknown: number[] = []
      const results = await Promise.all(seqs.map((seq) => broker.ack(hs!.session, seq)))
      seqs.forEach((seq, i) => (results[i] ? acked : unknown).push(seq))
      return { acked, unknown }
    },
    async markRead(hs, req, reply) {
      const { seq } = req.body as { seq: number }
      const m = broker.inflightMessage(hs!.session, seq)
      if (m === undefined)
        throw new BrokerError(
          'SB_ERR_UNKNOWN_MESSAGE',
          `no unacknowledged message ${seq} handed to this session; mark it read before acknowledging it (use mode=peek or the stream)`,
        )
      await broker.markRead(hs!.session, m)
      return reply.code(204).send()
    },
    async history(_hs, req) {
      const q = req.query as { with?: string; before?: number; limit: number }
      const r = await oneShot(req, (s) =>
        broker.history(s, {
          with: q.with === undefined ? undefined : parseAddress(q.with),
          ...(q.before !== undefined ? { before: q.before } : {}),
          limit: q.limit,
        }),
      )
      return { messages: r.messages.map(messageJson), more: r.more }
    },
    async receipts(hs, req) {
      broker.touch(hs!.session)
      const { msgId } = req.params as { msgId: number }
      return { msgId, receipts: hs!.receiptsFor(msgId) }
    },

    // Events -------------------------------------------------------------
    async events(hs, req, reply) {
      if (hs!.mode === 'push') throw new BrokerError('SB_ERR_CONFLICT', 'this session receives its events on its /v1/stream')
      broker.touch(hs!.session)
      const q = req.query as { wait: number; max: number; after?: number }
      const r = await hs!.takeEvents(q.after, q.max, deps.closing() ? 0 : q.wait * 1000, clientGone(reply))
      // The events are held as JSON text (what they really cost): the answer is put together from it.
      const events = r.events.map((e) => `{"id":${e.id},"type":"${e.type}","data":${e.json.toString('utf8')}}`)
      return reply
        .type('application/json; charset=utf-8')
        .send(`{"events":[${events.join(',')}],"dropped":${r.dropped},"next":${r.next}}`)
    },

    // Presence -------------------------------------------------------------
    async who(hs) {
      const users = await broker.who(hs!.session)
      return {
        users: users.map((p) => ({
          id: p.id,
          name: p.name,
          protocol: p.protocol,
          since: p.since,
          lastSeen: p.lastSeen,
          ...(p.node !== undefined ? { node: p.node } : {}),
          ...(p.tokenless === true ? { tokenless: true } : {}),
        })),
      }
    },
    async watchPresence(hs, req) {
      const { watch } = req.body as { watch: boolean }
      broker.watchPresence(hs!.session, watch)
      return { watch }
    },
    async stats(hs) {
      broker.touch(hs!.session)
      return broker.stats()
    },
    async limits() {
      const l = broker.limits
      return {
        maxNameBytes: l.maxNameBytes,
        maxTopicBytes: l.maxTopicBytes,
        maxTextBytes: l.maxTextBytes,
        maxFileBytes: l.maxFileBytes,
        maxFrameBytes: l.maxFrameBytes,
      }
    },

    // Topics -------------------------------------------------------------
    async topics(hs) {
      return { topics: await broker.topics(hs!.session) }
    },
    async subscriptions(hs) {
      return { topics: await broker.subscriptions(hs!.session) }
    },
    async subscribe(hs, req) {
      const { topic } = req.params as { topic: string }
      const created = await broker.subscribe(hs!.session, topic)
      return { topic: topic.normalize('NFC'), created }
    },
    async unsubscribe(hs, req) {
      const { topic } = req.params as { topic: string }
      const removed = await broker.unsubscribe(hs!.session, topic)
      return { topic: topic.normalize('NFC'), removed }
    },

    // Block list -------------------------------------------------------------
    async blocked(hs) {
      return { users: await broker.blocked(hs!.session) }
    },
    async block(hs, req) {
      const u = await broker.block(hs!.session, parseUser((req.body as { user: number | string }).user))
      return { id: u.id, name: u.name }
    },
    async unblock(hs, req) {
      const u = await broker.unblock(hs!.session, parseUser((req.body as { user: number | string }).user))
      return { id: u.id, name: u.name }
    },

    // Conversations -------------------------------------------------------------
    async requestConversation(hs, req, reply) {
      const convId = await broker.requestConversation(hs!.session, parseUser((req.body as { to: number | string }).to))
      reply.code(201)
      return { convId }
    },
    async acceptConversation(hs, req, reply) {
      broker.answerConversation(hs!.session, (req.params as { convId: string }).convId, true)
      return reply.code(204).send()
    },
    async declineConversation(hs, req, reply) {
      broker.answerConversation(hs!.session, (req.params as { convId: string }).convId, false)
      return reply.code(204).send()
    },
    async conversationSend(hs, req, reply) {
      broker.conversationSend(
        hs!.session,
        (req.params as { convId: string }).convId,
        body(req.body as { text?: string; base64?: string }),
      )
      return reply.code(204).send()
    },
    async closeConversation(hs, req, reply) {
      broker.closeConversation(hs!.session, (req.params as { convId: string }).convId)
      return reply.code(204).send()
    },
  }

  for (const spec of routes) {
    if (spec.custom) continue
    const h = handlers[spec.operationId]
    if (h === undefined) throw new Error(`no handler for ${spec.operationId}`)
    // 'bearer-once' routes check the token themselves, without a session of their own (oneShot above).
    const handler: Handler = async (req, reply) =>
      h(spec.auth === 'none' || spec.auth === 'bearer-once' ? undefined : await auth(req, spec), req, reply)
    app.route({ method: spec.method, url: spec.url, schema: fastifySchema(spec), handler })
  }
}

/** The request half of a route's schema, in the form fastify's validator takes. */
export function fastifySchema(spec: RouteSpec): { body?: Schema; querystring?: Schema; params?: Schema } {
  const s: { body?: Schema; querystring?: Schema; params?: Schema } = {}
  if (spec.body !== undefined) s.body = spec.body
  if (spec.querystring !== undefined) s.querystring = spec.querystring
  if (spec.params !== undefined) s.params = spec.params
  return s
}
