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
import { encodeOnce } from '../encode-once.js'
import { isBrokerError } from '../../core/errors.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, type Message, type Outbound } from '../../core/types.js'
import { GatewayConnection, declineConversation, messageText } from '../gateway-net.js'
import { decodeMessage, decodeName, encodeDelivery, type Limits } from './codec.js'

export const PROTOCOL = 'p002'

/** Marks a message that was sent to this user alone, since 002 only knows the room. */
export const DIRECT_PREFIX = '(direct) '

export interface P002ConnectionOptions {
  limits: Limits
  floodRate: number
  highWaterMark: number
}

export class P002Connection extends GatewayConnection {
  /** The name string has been read (claiming may still be under way). */
  private named = false

  constructor(
    broker: Broker,
    socket: Socket,
    private readonly opts: P002ConnectionOptions,
    remote: string,
  ) {
    super(PROTOCOL, broker, socket, opts.floodRate, remote)
  }

  protected consume(): void {
    for (;;) {
      const r = this.named ? decodeMessage(this.buf, this.opts.limits) : decodeName(this.buf, this.opts.limits)
      if (!r.ok) {
        if (r.reason === 'need-more') return
        return this.refuse(`${this.named ? 'message' : 'name'} ${r.reason}: ${r.detail}`)
      }
      this.buf = r.rest
      if (!this.withinFloodLimit('strings')) return
      const text = r.frame
      const isName = !this.named
      this.named = true
      this.serially(() => (isName ? this.login(text) : this.say(text)), 'handling failed')
    }
  }

  private async login(name: string): Promise<void> {
    if (this.closed) return
    await this.claim(name, (err) => this.refuse(`name "${name}" refused: ${isBrokerError(err) ? err.message : 'internal error'}`))
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

  protected pushTo(s: Session, ev: Outbound): boolean {
    if (ev.type === 'message') this.deliver(s, ev.msg)
    else if (ev.type === 'receipt' && ev.seq !== 0)
      void this.ackQuietly(s, ev.seq) // 002 never asks for receipts
    else if (ev.type === 'conversation') declineConversation(this.broker, s, ev) // 002 has no direct conversations
    // presence, renames and notices: the original room is silent about who comes and goes
    return this.socket.writableLength < this.opts.highWaterMark
  }

  private deliver(s: Session, m: Message): void {
    if (m.kind === 'receipt' || m.kind === 'control') return
    if (m.to === ALL_ID && m.seq === 0) {
      // The room: one encoding shared by every 002 receiver.
      this.write(
        encodeOnce(m, PROTOCOL, () =>
          encodeDelivery({ timestamp: Math.floor(m.ts / 1000), name: m.fromName, text: messageText(m) }),
        ),
      )
      return
    }
    // A message to this user alone (from 001, 003, 004 or native), or a topic copy: 002 only knows the room,
    // so it is shown as a room line marked as direct, and acknowledged once written (the client cannot).
    const prefix = m.topic !== undefined ? `[${m.topic}] ` : DIRECT_PREFIX
    this.write(encodeDelivery({ timestamp: Math.floor(m.ts / 1000), name: m.fromName, text: prefix + messageText(m) }))
    if (m.seq !== 0) void this.ackQuietly(s, m.seq)
  }
}
