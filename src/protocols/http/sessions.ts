/**
 * HTTP sessions: the broker's sessions for REST callers (poll mode) and SSE streams (push mode), kept per
 * device by this adapter and found again by bearer token.
 *
 * The token. The core logs in by (id or name) + secret; HTTP callers present one opaque string, so the
 * token this adapter hands out is "<id>.<secret>": the id says whose sessions to look among, the secret is
 * checked against the hash kept in memory for each of them (or, when none matches, by broker.login against
 * the store). Only sha256 hashes are kept.
 *
 * Each token is a device (issue 11): a call whose token finds no live HTTP session of its device logs in as
 * that device, which replaces that device's live session on any protocol (a TCP client holding the same
 * token is told "replaced"); the user's other devices — other tokens, from a password login — keep theirs,
 * so two browsers of one user poll or stream side by side. The same token from two places is one device:
 * REST calls share its session, and a second stream replaces the first (which is told `closing: replaced`).
 * HTTP sessions are ended by DELETE /v1/session, by revoking the device, or by the broker's reaper once no
 * call came for idleTimeoutMs, like any session.
 *
 * Some calls (history, devices, password) need the caller's identity, not a session: `oneShot` runs them on
 * the device's live HTTP session when there is one, else on a send-only session attached beside whatever the
 * device has open elsewhere (a page connected by WebSocket asking for history is not logged out by it).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { BrokerError } from '../../core/errors.js'
import type { Broker } from '../../core/broker.js'
import type { Session } from '../../core/session.js'
import type { CloseReason, Outbound, SessionSink } from '../../core/types.js'
import { addressKey, RateBuckets } from '../guard.js'
import { ALL_ID } from '../../core/types.js'
import { encodeOnce } from '../encode-once.js'
import { eventJson, receiptJson, type EventType, type ReceiptJson } from './json.js'

/**
 * An event's data as JSON text. A room message is the same text for every polling session: made once
 * (encodeOnce, like the wire encodings of the other protocols) and shared by every session that holds it.
 */
export function eventText(ev: Outbound): Buffer {
  if (ev.type === 'message' && ev.msg.seq === 0 && ev.msg.to === ALL_ID)
    return encodeOnce(ev.msg, 'http-json', () => Buffer.from(JSON.stringify(eventJson(ev).data)))
  return Buffer.from(JSON.stringify(eventJson(ev).data))
}

export const PROTOCOL_REST = 'http'
export const PROTOCOL_SSE = 'http-sse'

export interface HttpSessionOptions {
  /** Events kept per polling session before the oldest are dropped. */
  eventBufferSize: number
  /** Bytes of events kept per polling session (their JSON text, counted as held) before the oldest are dropped. */
  eventBufferBytes: number
  /** Bytes of events kept by every polling session together (default: no bound but the per-session one). */
  budget?: EventBudget | undefined
  /** Logins, registrations and bad tokens allowed per second per client address (bursts of twice this). */
  authRatePerSecond: number
  /** The buckets to count them in: the server's, shared with every listener (default: this adapter's own). */
  authBuckets?: RateBuckets | undefined
}

/** Where a push session's events go (the SSE stream). */
export interface PushOutlet {
  push(ev: Outbound): boolean
  backlog(): number
  close(reason: CloseReason, text: string): void
}

export interface StoredEvent {
  id: number
  type: EventType
  /** The event's data as JSON text: what the client will be sent, and what the server really holds. */
  json: Buffer
  bytes: number
}

/** The object and bookkeeping around each held event's JSON text, counted with it. */
const EVENT_OVERHEAD = 96

/**
 * The server-wide budget for events held by polling sessions: an idle session that never polls keeps at most
 * its own eventBufferBytes, and all of them together at most `limit`. A session that would go over it drops
 * its own oldest events first, then the new one; every drop is counted (`dropped`) and told to the client.
 */
export class EventBudget {
  /** Bytes held now, every polling session together (a room message shared by several is counted for each). */
  held = 0
  /** Events dropped since start, for a full session buffer or the full budget. */
  dropped = 0
  constructor(readonly limit: number) {}
}

const RECEIPT_MSGIDS_KEPT = 1024
const RECEIPTS_PER_MSGID = 16

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret).digest()
}

/** "<id>.<secret>" → its parts, or undefined when it is not of that shape. */
export function parseToken(token: string): { id: number; secret: string } | undefined {
  const m = /^([1-9][0-9]{0,9})\.([A-Za-z0-9_-]{1,256})$/.exec(token)
  if (m === null) return undefined
  const id = Number(m[1])
  if (id > 0xfffffffe) return undefined
  return { id, secret: m[2]! }
}

export function formatToken(id: number, secret: string): string {
  return `${id}.${secret}`
}

/** One user's HTTP session: the broker's sink for it, its event buffer, its receipts. */
export class HttpSession implements SessionSink {
  session!: Session
  closedWith: { reason: CloseReason; text: string } | undefined
  /** Bumped whenever a message is committed to the user's queue (the broker's poll waiter). */
  arrivals = 0
  private readonly messageWaiters = new Set<() => void>()
  private readonly eventWaiters = new Set<() => void>()
  private readonly events: StoredEvent[] = []
  private eventBytesHeld = 0
  /** Released from the budget (the session closed): later discards no longer count there. */
  private released = false
  private nextEventId = 1
  /** Events dropped for a full buffer since the last events call. */
  dropped = 0
  private readonly receipts = new Map<number, ReceiptJson[]>()
  private readonly receiptWaiters = new Map<number, Set<(r: ReceiptJson | undefined) => void>>()

  constructor(
    readonly userId: number,
    readonly tokenHash: Buffer,
    private readonly opts: HttpSessionOptions,
    private readonly onClosed: (hs: HttpSession) => void,
    readonly outlet?: PushOutlet,
  ) {}

  get mode(): 'poll' | 'push' {
    return this.outlet === undefined ? 'poll' : 'push'
  }

  get live(): boolean {
    return this.closedWith === undefined && this.session !== undefined && !this.session.closed
  }

  /** Called once the broker created the session. */
  attached(session: Session): void {
    this.session = session
    // The broker calls a poll session's waiter whenever a message is committed to its queue. Long polls are
    // done here rather than in broker.take(…, waitMs) so a poll whose client went away takes nothing.
    if (this.outlet === undefined) session.waiter = () => this.messageArrived()
  }

  matches(secretHash: Buffer): boolean {
    return secretHash.length === this.tokenHash.length && timingSafeEqual(secretHash, this.tokenHash)
  }

  // ------------------------------------------------------------ SessionSink

  push(ev: Outbound): boolean {
    if (this.closedWith !== undefined) return false
    if (ev.type === 'receipt') this.recordReceipt(receiptJson(ev.receipt, ev.seq))
    if (this.outlet !== undefined) return this.outlet.push(ev)
    this.store(eventJson(ev).type, eventText(ev))
    return true
  }

  backlog(): number {
    // A polling session's buffer is bounded by dropping its oldest events, never by cutting it off.
    return this.outlet?.backlog() ?? 0
  }

  close(reason: CloseReason, text: string): void {
    if (this.closedWith !== undefined) return
    this.closedWith = { reason, text }
    if (this.outlet === undefined) this.store('closed', Buffer.from(JSON.stringify({ reason, text })))
    this.wake()
    for (const ws of [...this.receiptWaiters.values()]) for (const w of [...ws]) w(undefined)
    this.onClosed(this)
    this.outlet?.close(reason, text)
  }

  /** The adapter ended the session itself (DELETE /v1/session, the stream's client went away). */
  wake(): void {
    for (const w of [...this.messageWaiters, ...this.eventWaiters]) w()
  }

  // ------------------------------------------------------------ messages long poll

  private messageArrived(): void {
    this.arrivals++
    for (const w of [...this.messageWaiters]) w()
  }

  /** Resolves when a message arrives, the session ends, `ms` pass or `signal` aborts. */
  waitForMessage(ms: number, signal: AbortSignal): Promise<void> {
    return this.waitOn(this.messageWaiters, ms, signal)
  }

  private waitOn(set: Set<() => void>, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted || !this.live) return resolve()
      const done = (): void => {
        clearTimeout(t)
        set.delete(done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const t = setTimeout(done, ms)
      set.add(done)
      signal.addEventListener('abort', done)
    })
  }

  // ------------------------------------------------------------ events

  private store(type: EventType, json: Buffer): void {
    const bytes = json.length + EVENT_OVERHEAD
    this.events.push({ id: this.nextEventId++, type, json, bytes })
    this.hold(bytes)
    // Drop oldest: a client that stops polling costs a bounded amount of memory, and is told how much it missed.
    while (
      this.events.length > 1 &&
      (this.events.length > this.opts.eventBufferSize || this.eventBytesHeld > this.opts.eventBufferBytes)
    )
      this.dropOldest()
    // The server-wide budget: this session's oldest go first, then, when it holds nothing else, the new event
    // (but never the last word of a closed session).
    const budget = this.opts.budget
    if (budget !== undefined)
      while (budget.held > budget.limit && this.events.length > 0 && !(type === 'closed' && this.events.length === 1))
        this.dropOldest()
    for (const w of [...this.eventWaiters]) w()
  }

  private hold(bytes: number): void {
    this.eventBytesHeld += bytes
    if (this.opts.budget !== undefined && !this.released) this.opts.budget.held += bytes
  }

  private dropOldest(): void {
    this.hold(-this.events.shift()!.bytes)
    this.dropped++
    if (this.opts.budget !== undefined) this.opts.budget.dropped++
  }

  /** Bytes of events this session holds now. */
  get heldBytes(): number {
    return this.eventBytesHeld
  }

  /** The session is gone from the adapter: what it still holds no longer counts against the budget. */
  release(): void {
    if (this.released) return
    if (this.opts.budget !== undefined) this.opts.budget.held -= this.eventBytesHeld
    this.released = true
  }

  /**
   * Events after `after` (discarding those up to it), or, without `after`, the oldest events (discarding
   * what is returned). Waits up to `ms` when there are none.
   */
  async takeEvents(
    after: number | undefined,
    max: number,
    ms: number,
    signal: AbortSignal,
  ): Promise<{ events: StoredEvent[]; dropped: number; next: number }> {
    const pick = (): StoredEvent[] => {
      if (after !== undefined) this.discardThrough(after)
      return this.events.slice(0, max)
    }
    let out = pick()
    if (out.length === 0 && ms > 0 && this.live) {
      await this.waitOn(this.eventWaiters, ms, signal)
      out = pick()
    }
    if (after === undefined && out.length > 0) this.discardThrough(out[out.length - 1]!.id)
    const dropped = this.dropped
    this.dropped = 0
    const next = out.length > 0 ? out[out.length - 1]!.id : Math.max(after ?? 0, this.nextEventId - 1)
    return { events: out, dropped, next }
  }

  private discardThrough(id: number): void {
    while (this.events.length > 0 && this.events[0]!.id <= id) this.hold(-this.events.shift()!.bytes)
  }

  // ------------------------------------------------------------ receipts

  private recordReceipt(r: ReceiptJson): void {
    let list = this.receipts.get(r.msgId)
    if (list === undefined) {
      list = []
      this.receipts.set(r.msgId, list)
      if (this.receipts.size > RECEIPT_MSGIDS_KEPT) this.receipts.delete(this.receipts.keys().next().value!)
    }
    list.push(r)
    if (list.length > RECEIPTS_PER_MSGID) list.shift()
    const ws = this.receiptWaiters.get(r.msgId)
    if (ws !== undefined) {
      this.receiptWaiters.delete(r.msgId)
      for (const w of ws) w(r)
    }
  }

  receiptsFor(msgId: number): ReceiptJson[] {
    return [...(this.receipts.get(msgId) ?? [])]
  }

  /**
   * Start listening for the first receipt of `msgId` *before* sending: a STORED receipt is pushed while
   * send() is still running. The promise resolves with undefined on timeout or when the session ends.
   */
  expectReceipt(msgId: number, ms: number): { receipt: Promise<ReceiptJson | undefined>; cancel: () => void } {
    let set = this.receiptWaiters.get(msgId)
    if (set === undefined) this.receiptWaiters.set(msgId, (set = new Set()))
    const s = set
    let done: (r: ReceiptJson | undefined) => void = () => {}
    const receipt = new Promise<ReceiptJson | undefined>((resolve) => {
      done = (r) => {
        clearTimeout(t)
        s.delete(done)
        if (s.size === 0 && this.receiptWaiters.get(msgId) === s) this.receiptWaiters.delete(msgId)
        resolve(r)
      }
      s.add(done)
    })
    const t = setTimeout(() => done(undefined), ms)
    return { receipt, cancel: () => done(undefined) }
  }
}

/** The adapter's sessions by user id, one per device. */
export class HttpSessions {
  private readonly byUser = new Map<number, HttpSession[]>()
  private count = 0
  /** Logins under way by "<id>.<secret hash>", so that concurrent first calls with one token start one session. */
  private readonly pending = new Map<string, Promise<HttpSession>>()
  readonly authBuckets: RateBuckets

  constructor(
    private readonly broker: Broker,
    readonly opts: HttpSessionOptions,
  ) {
    this.authBuckets = opts.authBuckets ?? new RateBuckets(opts.authRatePerSecond)
  }

  /** HTTP sessions held now (every device's). */
  get size(): number {
    return this.count
  }

  *all(): IterableIterator<HttpSession> {
    for (const list of this.byUser.values()) yield* list
  }

  /** The live session of this user whose token hashes to `h`, if there is one. */
  private find(id: number, h: Buffer): HttpSession | undefined {
    return this.byUser.get(id)?.find((hs) => hs.live && hs.matches(h))
  }

  private guard(ip: string): void {
    if (!this.authBuckets.take(addressKey(ip)))
      throw new BrokerError(
        'SB_ERR_RATE_LIMITED',
        `more than authRatePerSecond (${this.opts.authRatePerSecond}) logins or registrations per second from ${ip}`,
        'authRatePerSecond',
      )
  }

  private make(userId: number, secretHash: Buffer, outlet?: PushOutlet): HttpSession {
    return new HttpSession(userId, secretHash, this.opts, (hs) => this.forget(hs), outlet)
  }

  private forget(hs: HttpSession): void {
    hs.release()
    const list = this.byUser.get(hs.userId)
    const i = list?.indexOf(hs) ?? -1
    if (i < 0) return
    list!.splice(i, 1)
    this.count--
    if (list!.length === 0) this.byUser.delete(hs.userId)
  }

  private keep(hs: HttpSession, session: Session): HttpSession {
    hs.attached(session)
    if (session.closed) return hs
    // The broker ended the device's previous session (here: its sink closed, and forget() dropped it); a
    // session of this device still listed would be one the broker no longer knows.
    const list = this.byUser.get(hs.userId) ?? []
    for (const old of list.filter((x) => x.session?.device === session.device))
      old.close('replaced', 'a new HTTP session started')
    list.push(hs)
    this.count++
    this.byUser.set(hs.userId, list)
    // Two-phase attach: the broker pushes into hs from here on (what it held since the login first).
    this.broker.ready(session)
    return hs
  }

  async register(
    name: string,
    ip: string,
    opts: { password?: string; label?: string } = {},
  ): Promise<{ hs: HttpSession; token: string; name: string }> {
    this.guard(ip)
    // The sink must exist before the broker knows the user id; it learns it from the result. The broker pushes
    // nothing into it before keep() says ready.
    let hs: HttpSession | undefined
    const proxy: SessionSink = {
      push: (ev) => hs?.push(ev) ?? true,
      backlog: () => hs?.backlog() ?? 0,
      close: (reason, text) => hs?.close(reason, text),
    }
    const r = await this.broker.register(name, PROTOCOL_REST, proxy, 'poll', { ...opts, address: ip })
    hs = this.make(r.user.id, hashSecret(r.token))
    this.keep(hs, r.session)
    return { hs, token: formatToken(r.user.id, r.token), name: r.user.name }
  }

  /** An explicit login (POST /v1/login): by id or name and secret. Reuses a live HTTP session with that secret. */
  async login(who: { id: number } | { name: string }, secret: string, ip: string): Promise<HttpSession> {
    if ('id' in who) return this.authenticate(who.id, secret, ip)
    this.guard(ip)
    const u = await this.broker.findUser(who)
    if (u === undefined) throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong token')
    return this.authenticate(u.id, secret, ip, true)
  }

  /** The HTTP session of the bearer of this token: the live one, or a new polling session. */
  async fromToken(token: string, ip: string): Promise<HttpSession> {
    const t = parseToken(token)
    if (t === undefined) {
      this.guard(ip)
      throw new BrokerError('SB_ERR_AUTH', 'the token is not "<id>.<secret>" as /v1/register returned it')
    }
    return this.authenticate(t.id, t.secret, ip)
  }

  /**
   * A password login (POST /v1/login with a password): a new device of the user, and its token. No session
   * starts: the first call with the token starts one, like any token's.
   */
  async loginPassword(
    name: string,
    password: string,
    label: string | undefined,
    ip: string,
  ): Promise<{ id: number; name: string; device: number; token: string }> {
    this.guard(ip)
    const r = await this.broker.newDevice(name, password, { label: label ?? 'http', address: ip })
    return { id: r.user.id, name: r.user.name, device: r.device, token: formatToken(r.user.id, r.token) }
  }

  private async authenticate(id: number, secret: string, ip: string, guarded = false): Promise<HttpSession> {
    const h = hashSecret(secret)
    const key = `${id}.${h.toString('hex')}`
    for (;;) {
      const hs = this.find(id, h)
      if (hs !== undefined) return hs
      const p = this.pending.get(key)
      if (p === undefined) break
      await p.catch(() => undefined)
    }
    if (!guarded) this.guard(ip)
    const p = (async () => {
      const hs = this.make(id, h)
      const session = await this.broker.login({ id }, secret, PROTOCOL_REST, hs, 'poll', { address: ip })
      return this.keep(hs, session)
    })()
    this.pending.set(key, p)
    try {
      return await p
    } finally {
      this.pending.delete(key)
    }
  }

  /**
   * Run `fn` as the bearer of `token` without starting (or replacing) the device's session: on its live HTTP
   * session when it has one, else on a send-only session that ends with the call.
   */
  async oneShot<T>(token: string, ip: string, fn: (s: Session) => Promise<T>): Promise<T> {
    const t = parseToken(token)
    if (t === undefined) {
      this.guard(ip)
      throw new BrokerError('SB_ERR_AUTH', 'the token is not "<id>.<secret>" as /v1/register returned it')
    }
    const live = this.find(t.id, hashSecret(t.secret))
    if (live !== undefined) return fn(live.session)
    this.guard(ip)
    const sink: SessionSink = { push: () => true, backlog: () => 0, close: () => undefined }
    const s = await this.broker.login({ id: t.id }, t.secret, PROTOCOL_REST, sink, 'poll', { sendOnly: true, address: ip })
    try {
      return await fn(s)
    } finally {
      this.broker.detach(s)
    }
  }

  /** A push session for an SSE stream: always a new session, replacing its device's (polling or streaming) one. */
  async openStream(token: string, ip: string, outlet: PushOutlet): Promise<HttpSession> {
    const t = parseToken(token)
    if (t === undefined) {
      this.guard(ip)
      throw new BrokerError('SB_ERR_AUTH', 'the token is not "<id>.<secret>" as /v1/register returned it')
    }
    const h = hashSecret(t.secret)
    // A caller that already holds a live session with this secret has proven it; others go through the guard.
    if (this.find(t.id, h) === undefined) this.guard(ip)
    const hs = this.make(t.id, h, outlet)
    const session = await this.broker.login({ id: t.id }, t.secret, PROTOCOL_SSE, hs, 'push', { address: ip })
    return this.keep(hs, session)
  }

  /** End a session on the adapter's own initiative (the stream's client went away). */
  detach(hs: HttpSession): void {
    if (hs.closedWith !== undefined) return
    hs.closedWith = { reason: 'ended', text: '' }
    this.forget(hs)
    hs.wake()
    if (hs.session !== undefined && !hs.session.closed) this.broker.detach(hs.session)
  }

  /** Wake every long poll (the listener is closing). */
  wakeAll(): void {
    for (const hs of this.all()) hs.wake()
  }
}
