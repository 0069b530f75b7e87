/**
 * Server-sent events: GET /v1/stream is a push session whose sink writes SSE events. Messages carry
 * `id: <seq>`; the client acknowledges them with POST /v1/ack under the same token (which finds this
 * session) — or asks for `?ack=auto`, and the server acknowledges each stored message (and queued receipt)
 * as it writes it to the stream: simpler for a reader such as curl, but at most once (what is in flight
 * when the connection drops is not pushed again). Backpressure: push() reports false above the high-water
 * mark and the broker pauses the session until the response drains.
 */
import type { ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import { BrokerError } from '../../core/errors.js'
import type { Broker } from '../../core/broker.js'
import { encodeOnce } from '../encode-once.js'
import { ALL_ID, type CloseReason, type Outbound } from '../../core/types.js'
import { eventJson } from './json.js'
import { bearerToken } from './rest.js'
import { routeSpec } from './routes-spec.js'
import { PROTOCOL_SSE, type HttpSession, type HttpSessions, type PushOutlet } from './sessions.js'

export interface SseOptions {
  heartbeatMs: number
  highWaterMark: number
}

function frame(type: string, data: unknown, id?: number): string {
  return `event: ${type}\n${id !== undefined && id > 0 ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`
}

/** Formats events onto one response; holds them until the response head is written. */
export class SseOutlet implements PushOutlet {
  private held: string[] | undefined = []
  private corked = false
  private ended = false
  private endAfterStart = false
  /** ?ack=auto: seqs written before the session could acknowledge them (the messages that came with the login). */
  private toAck: number[] = []
  /** ?ack=auto: acknowledges one seq; set once the session exists, before start(). */
  acker: ((seq: number) => void) | undefined

  constructor(
    private readonly res: ServerResponse,
    private readonly highWaterMark: number,
    private readonly autoAck = false,
  ) {}

  /** The head is written: flush what came before it. */
  start(first: string): void {
    const held = this.held ?? []
    this.held = undefined
    this.write(first)
    for (const s of held) this.write(s)
    for (const seq of this.toAck.splice(0)) this.acker?.(seq)
    if (this.endAfterStart) this.end()
  }

  private written(seq: number): void {
    if (!this.autoAck || seq === 0 || this.ended) return
    if (this.held !== undefined || this.acker === undefined) this.toAck.push(seq)
    else this.acker(seq)
  }

  write(s: string | Buffer): void {
    if (this.ended) return
    if (this.held !== undefined) {
      this.held.push(typeof s === 'string' ? s : s.toString('utf8'))
      return
    }
    // Events pushed within one tick reach the socket as one write.
    if (!this.corked) {
      this.corked = true
      this.res.cork()
      process.nextTick(() => this.uncork())
    }
    this.res.write(s)
  }

  private uncork(): void {
    if (!this.corked) return
    this.corked = false
    this.res.uncork()
  }

  push(ev: Outbound): boolean {
    if (ev.type === 'message' && ev.msg.seq === 0 && ev.msg.to === ALL_ID) {
      // A room message is the same event for every SSE receiver: format it once.
      const m = ev.msg
      const buf = encodeOnce(m, PROTOCOL_SSE, () => {
        const { type, data } = eventJson(ev)
        return Buffer.from(frame(type, data))
      })
      this.write(buf)
    } else {
      const { type, data } = eventJson(ev)
      const seq = ev.type === 'message' ? ev.msg.seq : ev.type === 'receipt' ? ev.seq : 0
      this.write(frame(type, data, seq))
      this.written(seq)
    }
    return this.backlog() < this.highWaterMark
  }

  backlog(): number {
    return this.res.writableLength
  }

  close(reason: CloseReason, text: string): void {
    if (this.ended) return
    this.write(frame('closing', { reason, text }))
    this.end()
  }

  /** The client went away: nothing more to write, release the socket now. */
  abort(): void {
    this.ended = true
    this.held = undefined
    this.res.destroy()
  }

  end(): void {
    if (this.held !== undefined) {
      this.endAfterStart = true
      return
    }
    if (this.ended) return
    this.ended = true
    // Flush what this tick corked before the last chunk: ended while corked, Node 24 writes the corked
    // events after the chunked terminator, where the client reads them as a broken next response.
    this.uncork()
    // An event stream's connection is never reused: once the last event is out, end the socket too —
    // gracefully (end, not destroy, which would drop what is still in the socket's buffer, e.g. `closing`).
    this.res.end(() => this.res.socket?.end())
    // A client that never reads must not keep the socket forever.
    setTimeout(() => this.res.destroy(), 5000).unref()
  }
}

export interface SseDeps {
  broker: Broker
  sessions: HttpSessions
  opts: SseOptions
  /** Open streams, so the listener can end them when it closes. */
  streams: Set<{ hs: HttpSession; outlet: SseOutlet }>
}

export function registerSse(app: FastifyInstance, deps: SseDeps): void {
  const { broker, sessions, opts, streams } = deps
  const spec = routeSpec('stream')
  app.get(spec.url, { schema: { querystring: spec.querystring! } }, async (req, reply) => {
    const token = bearerToken(req, true)
    if (token === undefined) throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'send Authorization: Bearer <token> or ?token=<token>')
    const res = reply.raw
    const autoAck = (req.query as { ack?: string }).ack === 'auto'
    const outlet = new SseOutlet(res, opts.highWaterMark, autoAck)
    // The client may go away while the login runs (a store round trip): 'close' fires only once, so watch for it now.
    let gone = false
    const early = (): void => {
      gone = true
    }
    res.once('close', early)
    // Until the head is written, a refusal is an ordinary problem+json answer.
    const hs = await sessions.openStream(token, req.ip, outlet)
    res.off('close', early)
    reply.hijack()
    if (gone || res.destroyed) {
      outlet.abort()
      sessions.detach(hs)
      return
    }
    const headers: Record<string, string | number | string[]> = {}
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v
    res.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    })
    const session = hs.session
    if (autoAck)
      // Deferred: push() runs inside the broker's delivery loop, which an ACK must not re-enter. A refused
      // ACK (the session ended, a rate limit) leaves the message queued, pushed again on the next stream.
      outlet.acker = (seq) =>
        queueMicrotask(() => {
          if (!session.closed) broker.ack(session, seq).catch(() => undefined)
        })
    const u = session.user
    outlet.start(
      `retry: 2000\n${frame('ready', { id: u.id, name: u.name, protocol: PROTOCOL_SSE, heartbeatMs: opts.heartbeatMs })}`,
    )
    const entry = { hs, outlet }
    streams.add(entry)
    const heartbeat = setInterval(() => {
      outlet.write(': keep-alive\n\n')
      // The stream itself is the client's presence: keep the reaper away while it is open.
      if (hs.live) {
        try {
          broker.touch(hs.session)
        } catch {
          // rate-limited: lastSeen was refreshed all the same
        }
      }
    }, opts.heartbeatMs)
    heartbeat.unref()
    res.on('drain', () => {
      if (hs.live) broker.drained(hs.session)
    })
    res.on('close', () => {
      clearInterval(heartbeat)
      streams.delete(entry)
      outlet.abort()
      sessions.detach(hs)
    })
  })
}
