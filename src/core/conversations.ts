/**
 * Conversations (seed 003's direct chat): request, answer, messages and close between two online users, live
 * only, never stored. The requester's node owns the expiry; the peer's node keeps a mirror of the state, kept by
 * the events themselves wherever they happen (see mirror()).
 */
import { randomUUID } from 'node:crypto'
import { BrokerError } from './errors.js'
import { guard, type Core } from './context.js'
import type { Directory } from './directory.js'
import type { Session } from './session.js'
import type { SessionRegistry } from './sessions.js'
import type { Address, ConversationEvent, UserInfo } from './types.js'

const MAX_PENDING_CONVERSATIONS = 32

interface Conversation {
  id: string
  a: UserInfo
  b: UserInfo
  open: boolean
  timer: NodeJS.Timeout | undefined
}

export class Conversations {
  private readonly conversations = new Map<string, Conversation>()

  constructor(
    private readonly core: Core,
    private readonly sessions: SessionRegistry,
    private readonly directory: Directory,
    private readonly timeoutMs: number,
  ) {}

  async request(s: Session, target: Address): Promise<string> {
    guard(this.core, s)
    const u = await this.directory.resolveUser(target)
    if (u === undefined || u.id === s.user.id || (await this.directory.isBlocked(u.id, s.user.id)))
      throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    if (this.sessions.get(u.id) === undefined && !(await this.core.bus.isOnline(u.id)))
      throw new BrokerError('SB_ERR_CONFLICT', `${u.name} is not online`)
    // One conversation per pair: asking again returns the one already pending or open.
    let mine = 0
    for (const c of this.conversations.values()) {
      if ((c.a.id === s.user.id && c.b.id === u.id) || (c.a.id === u.id && c.b.id === s.user.id)) return c.id
      if (c.a.id === s.user.id && !c.open) mine++
    }
    if (mine >= MAX_PENDING_CONVERSATIONS)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `more than ${MAX_PENDING_CONVERSATIONS} conversation requests waiting for an answer`,
        'maxPendingConversations',
      )
    const c: Conversation = { id: randomUUID(), a: { ...s.user }, b: u, open: false, timer: undefined }
    const expiresAt = this.core.now() + this.timeoutMs
    c.timer = setTimeout(() => {
      const cur = this.conversations.get(c.id)
      if (cur === undefined || cur.open) return
      this.conversations.delete(c.id)
      this.event(c.a.id, { event: 'expired', convId: c.id, peer: c.b })
      this.event(c.b.id, { event: 'expired', convId: c.id, peer: c.a })
    }, this.timeoutMs)
    c.timer.unref()
    this.conversations.set(c.id, c)
    this.event(u.id, { event: 'request', convId: c.id, peer: c.a, expiresAt })
    return c.id
  }

  answer(s: Session, convId: string, accept: boolean): void {
    guard(this.core, s)
    const c = this.conversations.get(convId)
    if (c === undefined || c.b.id !== s.user.id || c.open)
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such conversation request')
    clearTimeout(c.timer)
    const event = accept ? 'accepted' : 'declined'
    if (accept) c.open = true
    else this.conversations.delete(convId)
    this.event(c.a.id, { event, convId, peer: c.b })
    this.event(s.user.id, { event, convId, peer: c.a })
  }

  send(s: Session, convId: string, body: Buffer): void {
    guard(this.core, s)
    const max = this.core.limits.maxTextBytes
    if (body.length > max)
      throw new BrokerError('SB_ERR_TOO_LARGE', `the text is longer than maxTextBytes (${max} bytes)`, 'maxTextBytes')
    const c = this.conversations.get(convId)
    if (c === undefined || !c.open || (c.a.id !== s.user.id && c.b.id !== s.user.id))
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such open conversation')
    const peer = c.a.id === s.user.id ? c.b : c.a
    this.event(peer.id, { event: 'message', convId, peer: { ...s.user }, body })
  }

  close(s: Session, convId: string): void {
    guard(this.core, s)
    const c = this.conversations.get(convId)
    if (c === undefined || (c.a.id !== s.user.id && c.b.id !== s.user.id))
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such conversation')
    this.closeNow(c, `closed by ${s.user.name}`)
  }

  /** A party's session ended: its conversations close. */
  sessionEnded(s: Session): void {
    for (const c of [...this.conversations.values()])
      if (c.a.id === s.user.id || c.b.id === s.user.id) this.closeNow(c, `${s.user.name} went offline`)
  }

  private closeNow(c: Conversation, reason: string): void {
    clearTimeout(c.timer)
    this.conversations.delete(c.id)
    this.event(c.a.id, { event: 'closed', convId: c.id, peer: c.b, reason })
    this.event(c.b.id, { event: 'closed', convId: c.id, peer: c.a, reason })
  }

  /** A conversation event for one user: to its session here (and the mirror), or by the bus to its node. */
  private event(to: number, ev: ConversationEvent): void {
    const s = this.sessions.get(to)
    if (s !== undefined) {
      this.sessions.emit(s, { type: 'conversation', ev })
      this.mirror(ev, to)
      return
    }
    void this.core.bus
      .isOnline(to)
      .then((online) => {
        if (online) this.core.bus.publish({ type: 'event', to, ev: { type: 'conversation', ev } })
      })
      .catch((err) => this.core.log.warn({ err, to }, 'conversation event lost'))
  }

  /**
   * Conversation state follows its events: the node of each party keeps a record, created by the request
   * and changed or removed by the answer, the close or the expiry, wherever they happened.
   */
  mirror(ev: ConversationEvent, to: number): void {
    const c = this.conversations.get(ev.convId)
    switch (ev.event) {
      case 'request':
        if (c === undefined)
          this.conversations.set(ev.convId, {
            id: ev.convId,
            a: { ...ev.peer },
            b: { id: to, name: this.sessions.get(to)?.user.name ?? '' },
            open: false,
            timer: undefined,
          })
        return
      case 'accepted':
        if (c !== undefined) c.open = true
        return
      case 'declined':
      case 'expired':
      case 'closed':
        if (c !== undefined) {
          clearTimeout(c.timer)
          this.conversations.delete(ev.convId)
        }
        return
      case 'message':
        return
    }
  }
}
