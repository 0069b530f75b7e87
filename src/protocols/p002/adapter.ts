/**
 * Seed 002 gateway adapter: one P002Connection per TCP socket. The chat room is Switchboard's ALL.
 * Choices: docs/protocol/p002.md "Switchboard gateway".
 *
 * - The first string is the name: broker.claim (tokenless). Silence on login, as in the original.
 * - Every later string goes to ALL. The core leaves the sender out of ALL; the original includes the
 *   sender, so the adapter writes the sender's own copy itself, with the same timestamp.
 * - Anything the original would not accept (a limit broken, a bad name, a name in use, invalid UTF-8 in
 *   the name, a flood): the connection is closed without a word — 002 has no way to say why — and the
 *   reason is logged.
 */
import type { Socket } from 'node:net'
import type { Broker } from '../../core/broker.js'
import { isBrokerError } from '../../core/errors.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, type CloseReason, type Message, type Outbound, type SessionSink } from '../../core/types.js'
import { FloodGuard, keepSessionAlive, messageText } from '../gateway-net.js'
import { decodeMessage, decodeName, encodeDelivery, type Limits } from './codec.js'

/** Events held while a claim completes, at most (the broker pushes one window of queued messages). */
const EARLY_MAX = 100_000

export const PROTOCOL = 'p002'

/** Marks a message that was sent to this user alone, since 002 only knows the room. */
export const DIRECT_PREFIX = '(direct) '

export interface P002ConnectionOptions {
  limits: Limits
  floodRate: number
  highWaterMark: number
}

const MAX_PENDING = 64

export class P002Connection implements SessionSink {
  session: Session | undefined
  /** Events pushed while broker.claim() was still attaching this connection. */
  private early: Outbound[] = []
  private buf: Buffer = Buffer.alloc(0)
  private closed = false
  /** The name string has been read (claiming may still be under way). */
  private named = false
  private chain: Promise<void> = Promise.resolve()
  private pending = 0
  private paused = false
  private readonly flood: FloodGuard
  private stopKeepAlive: (() => void) | undefined

  constructor(
    readonly broker: Broker,
    private readonly socket: Socket,
    private readonly opts: P002ConnectionOptions,
    readonly remote: string,
  ) {
    this.flood = new FloodGuard(opts.floodRate)
  }

  feed(chunk: Buffer): void {
    if (this.closed) return
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    for (;;) {
      const r = this.named ? decodeMessage(this.buf, this.opts.limits) : decodeName(this.buf, this.opts.limits)
      if (!r.ok) {
        if (r.reason === 'need-more') return
        return this.refuse(`${this.named ? 'message' : 'name'} ${r.reason}: ${r.detail}`)
      }
      this.buf = r.rest
      if (!this.flood.take()) return this.refuse(`flood: more than ${this.opts.floodRate} strings per second`)
      const text = r.frame
      const isName = !this.named
      this.named = true
      this.pending++
      if (this.pending > MAX_PENDING && !this.paused) {
        this.paused = true
        this.socket.pause()
      }
      this.chain = this.chain
        .then(() => (isName ? this.login(text) : this.say(text)))
        .catch((err: unknown) => this.broker.log.error({ err, remote: this.remote }, 'p002: handling failed'))
        .finally(() => {
          this.pending--
          if (this.paused && this.pending < MAX_PENDING / 2) {
            this.paused = false
            this.socket.resume()
          }
        })
    }
  }

  closedByPeer(): void {
    if (this.closed) return
    this.closed = true
    this.stopKeepAlive?.()
    if (this.session !== undefined) this.broker.detach(this.session)
  }

  drained(): void {
    if (this.session !== undefined) this.broker.drained(this.session)
  }

  private async login(name: string): Promise<void> {
    if (this.closed) return
    try {
      this.session = await this.broker.claim(name, PROTOCOL, this)
    } catch (err) {
      this.early = []
      return this.refuse(`name "${name}" refused: ${isBrokerError(err) ? err.message : 'internal error'}`)
    }
    if (this.closed) {
      this.broker.detach(this.session)
      return
    }
    this.stopKeepAlive = keepSessionAlive(this.broker, this.session)
    this.replayEarly()
  }

  private async say(text: string): Promise<void> {
    const s = this.session
    if (this.closed || s === undefined || s.closed) return
    const ts = Date.now()
    try {
      await this.broker.send(s, { to: { kind: 'all' }, body: Buffer.from(text, 'utf8') })
    } catch (err) {
      return this.refuse(`message refused: ${isBrokerError(err) ? err.message : 'internal error'}`)
    }
    // The original echoes to the sender too (ORIGINALS §002); the core's ALL does not.
    this.write(encodeDelivery({ timestamp: Math.floor(ts / 1000), name: s.user.name, text }))
  }

  // ------------------------------------------------------------ SessionSink

  push(ev: Outbound): boolean {
    if (this.closed) return false
    if (this.session === undefined) {
      // broker.claim() pushes queued messages before it returns the session: hold them until it has.
      if (this.early.length < EARLY_MAX) this.early.push(ev)
      return true
    }
    const s = this.session
    if (ev.type === 'message') this.deliver(s, ev.msg)
    else if (ev.type === 'receipt' && ev.seq !== 0) void this.ackQuietly(s, ev.seq) // 002 never asks for receipts
    else if (ev.type === 'conversation' && ev.ev.event === 'request') {
      try {
        this.broker.answerConversation(s, ev.ev.convId, false) // 002 has no direct conversations
      } catch {
        // already answered or expired
      }
    }
    // presence, renames and notices: the original room is silent about who comes and goes
    return this.socket.writableLength < this.opts.highWaterMark
  }

  private deliver(s: Session, m: Message): void {
    if (m.kind === 'receipt' || m.kind === 'control') return
    if (m.to === ALL_ID && m.seq === 0) {
      // The room: one encoding shared by every 002 receiver.
      m.wire ??= new Map()
      let buf = m.wire.get(PROTOCOL)
      if (buf === undefined) {
        buf = encodeDelivery({ timestamp: Math.floor(m.ts / 1000), name: m.fromName, text: messageText(m) })
        m.wire.set(PROTOCOL, buf)
      }
      this.write(buf)
      return
    }
    // A message to this user alone (from 001, 003, 004 or native), or a topic copy: 002 only knows the room,
    // so it is shown as a room line marked as direct, and acknowledged once written (the client cannot).
    const prefix = m.topic !== undefined ? `[${m.topic}] ` : DIRECT_PREFIX
    this.write(encodeDelivery({ timestamp: Math.floor(m.ts / 1000), name: m.fromName, text: prefix + messageText(m) }))
    if (m.seq !== 0) void this.ackQuietly(s, m.seq)
  }

  private async ackQuietly(s: Session, seq: number): Promise<void> {
    try {
      await this.broker.ack(s, seq)
    } catch (err) {
      if (!s.closed) this.broker.log.warn({ err, seq }, 'p002: ack failed')
    }
  }

  /** Replay what the broker pushed during claim(). */
  private replayEarly(): void {
    const evs = this.early
    this.early = []
    for (const ev of evs) this.push(ev)
  }

  backlog(): number {
    return this.socket.writableLength
  }

  close(reason: CloseReason, text: string): void {
    this.broker.log.info({ remote: this.remote, reason, text }, 'p002: session closed by the broker')
    this.session = undefined
    this.shut()
  }

  private write(buf: Buffer): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(buf)
  }

  private refuse(why: string): void {
    if (this.closed) return
    this.broker.log.warn({ remote: this.remote, name: this.session?.user.name }, `p002: closing connection: ${why}`)
    this.shut()
  }

  private shut(): void {
    if (this.closed) return
    this.closed = true
    this.stopKeepAlive?.()
    if (this.session !== undefined) this.broker.detach(this.session)
    this.socket.end()
    setTimeout(() => this.socket.destroy(), 2000).unref()
  }
}
