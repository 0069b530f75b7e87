/**
 * The broker: users, sessions, addressing, queues, receipts, topics, conversations, limits and the reaper
 * (DESIGN §1). It knows no protocol and no socket. Adapters call it and receive `Outbound` events through
 * each session's sink.
 *
 * A direct message's path: send() validates and resolves the address, the Committer puts the copy into
 * the next group commit (one transaction, one fsync per batch), and once the batch is durable the message
 * is accepted: pushed to the recipient's live session (or left queued), with a STORED receipt when the
 * recipient is offline. ack() removes it in a later batch and sends the sender a DELIVERED receipt; an ack
 * that does not come within ackTimeoutMs gives the sender NOT_YET.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { BrokerError } from './errors.js'
import { Committer } from './committer.js'
import { guardStore, refusedCopy, refusedTopic } from './store-errors.js'
import { Session, type DeliveryMode } from './session.js'
import { decodeReceiptBody, encodeReceiptBody } from './receipt-body.js'
import {
  ALL_ID,
  DEFAULT_LIMITS,
  Flag,
  ReceiptStatus,
  SERVER_ID,
  silentLogger,
  type Address,
  type CloseReason,
  type ConversationEvent,
  type Limits,
  type Logger,
  type Message,
  type Outbound,
  type PresenceInfo,
  type Receipt,
  type ReceiptStatusCode,
  type SessionSink,
  type UserInfo,
} from './types.js'
import type { NewCopy, Store, StoredMessage, StoreResult, UserRecord } from '../store/store.js'
import type { Bus, BusMessage } from '../bus/bus.js'
import { LocalBus } from '../bus/local/local-bus.js'

export interface BrokerOptions {
  store: Store
  bus?: Bus
  limits?: Partial<Limits>
  /** A pushed message not acknowledged within this gives its sender a NOT_YET (300) receipt. */
  ackTimeoutMs?: number
  /** Sessions whose lastSeen is older than this are ended by the reaper. */
  idleTimeoutMs?: number
  reapIntervalMs?: number
  /** Conversation requests not answered within this expire. */
  conversationTimeoutMs?: number
  /** How long a (sender, msgId) dedupe key is remembered. */
  dedupeRetentionMs?: number
  logger?: Logger
  now?: () => number
}

export interface SendRequest {
  to: Address
  body: Buffer
  kind?: 'text' | 'file'
  /** The sender's own id for the message, echoed in receipts. */
  msgId?: number
  /** Make (sender, msgId) a dedupe key: a retry is stored and delivered once. */
  idempotent?: boolean
  receipt?: boolean
  readReceipt?: boolean
  ttlMs?: number
  notBefore?: number
  fileId?: string
}

export type SendStatus =
  | 'delivered' // pushed live (room, server), nothing stored
  | 'queued' // stored, and the recipient is online
  | 'stored' // stored, and the recipient is offline
  | 'scheduled' // held until its notBefore
  | 'duplicate' // a retry of a message already accepted

export interface SendResult {
  msgId: number
  status: SendStatus
  /** The seq in the recipient's queue (direct messages). */
  seq: number
  recipients: number
}

export interface BrokerStats {
  users: number
  online: number
  sessionsByProtocol: Record<string, number>
  uptimeMs: number
  messagesIn: Record<string, number>
  messagesOut: number
  receipts: Record<string, number>
  commits: number
  commitOps: number
  commitMsTotal: number
  slowConsumers: number
}

interface Conversation {
  id: string
  a: UserInfo
  b: UserInfo
  open: boolean
  timer: NodeJS.Timeout | undefined
}

const PAGE = 256
const MAX_PENDING_CONVERSATIONS = 32
/** Acknowledged messages per session that can still be marked read. */
const RECENT_ACKED = 512
const EMPTY = Buffer.alloc(0)
const TOKEN_BYTES = 24

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && timingSafeEqual(x, y)
}

function describe(a: Address): string {
  switch (a.kind) {
    case 'user':
      return `#${a.id}`
    case 'name':
      return a.name
    case 'topic':
      return `topic ${a.topic}`
    default:
      return a.kind.toUpperCase()
  }
}

const RESERVED_NAMES = new Set(['all', 'server'])

/** NFC, one word, no control characters, at most `maxBytes` UTF-8 bytes. */
export function normalizeName(raw: string, maxBytes: number, what = 'name', limit = 'maxNameBytes'): string {
  const name = raw.normalize('NFC')
  if (name.length === 0) throw new BrokerError('SB_ERR_NAME_INVALID', `the ${what} is empty`)
  if (Buffer.byteLength(name) > maxBytes)
    throw new BrokerError('SB_ERR_TOO_LARGE', `the ${what} is longer than ${limit} (${maxBytes} bytes)`, limit)
  if (/[\s\p{C}]/u.test(name))
    throw new BrokerError('SB_ERR_NAME_INVALID', `the ${what} "${name}" has spaces or control characters`)
  if (what === 'name' && (RESERVED_NAMES.has(name.toLowerCase()) || /^[#@!]/.test(name)))
    throw new BrokerError('SB_ERR_NAME_INVALID', `the name "${name}" is reserved`)
  return name
}

export class Broker {
  readonly limits: Limits
  readonly store: Store
  readonly bus: Bus
  readonly log: Logger
  readonly ackTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly conversationTimeoutMs: number
  private readonly now: () => number
  private readonly reapIntervalMs: number
  private readonly dedupeRetentionMs: number
  private readonly committer: Committer
  private readonly sessions = new Map<number, Session>()
  private readonly conversations = new Map<string, Conversation>()
  /** Pending NOT_YET timers, in deadline order (every deadline is now + ackTimeoutMs). */
  private readonly ackTimers: { at: number; session: Session; seq: number }[] = []
  private ackTimerHead = 0
  private ackTimer: NodeJS.Timeout | undefined
  private reaper: NodeJS.Timeout | undefined
  private lastPrune = 0
  private startedAt = 0
  /**
   * Lookups on the send path, cached: id → user, name → id, recipient → whom it blocks. Kept exact by
   * this node's renames, deletes and blocks; in a cluster, other nodes' changes arrive by the bus
   * (renames) or age out after cacheTtlMs.
   */
  private readonly userCache = new Map<number, { info: UserInfo; at: number }>()
  private readonly nameCache = new Map<string, number>()
  private readonly blockCache = new Map<number, { set: Set<number>; at: number }>()
  private readonly cacheTtlMs: number
  private closing = false
  readonly counters = {
    messagesIn: {} as Record<string, number>,
    messagesOut: 0,
    receipts: {} as Record<string, number>,
    slowConsumers: 0,
  }

  constructor(opts: BrokerOptions) {
    this.store = guardStore(opts.store)
    this.bus = opts.bus ?? new LocalBus()
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits }
    this.log = opts.logger ?? silentLogger
    this.now = opts.now ?? Date.now
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 3000
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 120_000
    this.reapIntervalMs = opts.reapIntervalMs ?? 1000
    this.conversationTimeoutMs = opts.conversationTimeoutMs ?? 60_000
    this.dedupeRetentionMs = opts.dedupeRetentionMs ?? 7 * 24 * 3600_000
    this.committer = new Committer(this.store, this.log)
    this.cacheTtlMs = this.bus instanceof LocalBus ? Number.POSITIVE_INFINITY : 2000
  }

  async start(): Promise<void> {
    await this.store.open()
    await this.bus.start((m) => this.busOnMessage(m))
    this.startedAt = this.now()
    this.reaper = setInterval(
      () => void this.reap().catch((err) => this.log.error({ err }, 'reaper failed')),
      this.reapIntervalMs,
    )
    this.reaper.unref()
  }

  /** Graceful stop: refuse new work, end every session with a reason, flush the store. */
  async close(): Promise<void> {
    if (this.closing) return
    this.closing = true
    if (this.reaper) clearInterval(this.reaper)
    if (this.ackTimer) clearTimeout(this.ackTimer)
    for (const s of [...this.sessions.values()]) this.end(s, 'shutdown', 'the server is shutting down')
    await this.committer.drain()
    await this.bus.close()
    await this.store.close()
  }

  get isClosing(): boolean {
    return this.closing
  }

  // ---------------------------------------------------------------- identity and sessions

  /** Register a new name. Returns the session and the token that lets the owner come back. */
  async register(
    rawName: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode = 'push',
  ): Promise<{ session: Session; token: string; user: UserInfo }> {
    this.refuseIfClosing()
    const name = normalizeName(rawName, this.limits.maxNameBytes)
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    const rec = await this.store.createUser(name, hashToken(token), this.now())
    this.log.info({ user: rec.id, name, protocol }, 'registered')
    const session = await this.attach(rec, protocol, sink, mode)
    return { session, token, user: { id: rec.id, name: rec.name } }
  }

  /** Come back to a name with its token. A live session of the same user is replaced. */
  async login(
    who: { id: number } | { name: string },
    token: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode = 'push',
  ): Promise<Session> {
    this.refuseIfClosing()
    const rec = 'id' in who ? await this.store.userById(who.id) : await this.store.userByName(who.name.normalize('NFC'))
    if (rec === undefined || rec.tokenHash === null || !sameHash(rec.tokenHash, hashToken(token)))
      throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong token')
    return this.attach(rec, protocol, sink, mode)
  }

  /**
   * Legacy gateways carry no token: they claim a name. A name registered with a token (native, HTTP) cannot
   * be taken from a gateway; a tokenless name is created on first use and is in use while a session holds it.
   */
  async claim(rawName: string, protocol: string, sink: SessionSink, opts: { hidden?: boolean } = {}): Promise<Session> {
    this.refuseIfClosing()
    const name = normalizeName(rawName, this.limits.maxNameBytes)
    let rec = await this.store.userByName(name)
    if (rec !== undefined && rec.tokenHash !== null)
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is registered with a token`)
    if (rec !== undefined && (this.sessions.has(rec.id) || (await this.bus.isOnline(rec.id))))
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is in use`)
    rec ??= await this.store.createUser(name, null, this.now())
    return this.attach(rec, protocol, sink, 'push', opts.hidden === true)
  }

  /** A tokenless user for a name, created if needed (legacy store-and-forward to a name never seen). */
  async ensureLegacyUser(rawName: string): Promise<UserInfo> {
    const name = normalizeName(rawName, this.limits.maxNameBytes)
    const rec = (await this.store.userByName(name)) ?? (await this.createIgnoringRace(name))
    return { id: rec.id, name: rec.name }
  }

  private async createIgnoringRace(name: string): Promise<UserRecord> {
    try {
      return await this.store.createUser(name, null, this.now())
    } catch (err) {
      const rec = await this.store.userByName(name)
      if (rec !== undefined) return rec
      throw err
    }
  }

  /** `hidden`: a gateway's internal session (e.g. 003's topic bridge), not shown in who or presence. */
  private async attach(
    rec: UserRecord,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    hidden = false,
  ): Promise<Session> {
    const existing = this.sessions.get(rec.id)
    if (existing !== undefined) this.end(existing, 'replaced', 'you logged in again elsewhere')
    else if (this.sessions.size >= this.limits.maxConnections)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `the server has maxConnections (${this.limits.maxConnections}) sessions`,
        'maxConnections',
      )
    const now = this.now()
    this.bus.publish({ type: 'kick', user: rec.id, reason: 'replaced', node: this.bus.nodeId, since: now })
    const s = new Session({ id: rec.id, name: rec.name }, protocol, sink, mode, now, this.limits.ratePerSecond * 2)
    this.sessions.set(rec.id, s)
    s.hidden = hidden
    if (!hidden) await this.bus.setOnline(this.presenceOf(s))
    this.log.debug({ user: rec.id, name: rec.name, protocol, mode }, 'session started')
    if (!hidden) this.notifyPresence(s, true)
    // Start pushing the queue on the next turn, after the adapter has answered the login.
    if (mode === 'push') setImmediate(() => this.pump(s))
    return s
  }

  private presenceOf(s: Session): PresenceInfo {
    return { id: s.user.id, name: s.user.name, protocol: s.protocol, since: s.since, lastSeen: s.lastSeen, node: this.bus.nodeId }
  }

  /** The session's connection is gone (the adapter calls this; the sink is not called back). */
  detach(s: Session): void {
    this.end(s, 'ended', '', false)
  }

  /** End a session: the user goes offline; what it had not acknowledged stays queued. */
  end(s: Session, reason: CloseReason, text: string, tellSink = true): void {
    if (s.closed) return
    s.closed = true
    if (this.sessions.get(s.user.id) === s) {
      this.sessions.delete(s.user.id)
      if (!s.hidden) {
        void this.bus.setOffline(s.user.id).catch((err) => this.log.warn({ err }, 'presence update failed'))
        this.notifyPresence(s, false)
        if (reason !== 'deleted')
          void this.store.setLastSeen(s.user.id, s.lastSeen).catch((err) => this.log.warn({ err }, 'last seen not recorded'))
      }
    }
    // The recipient left with messages it had not acknowledged: their senders learn it now (300), not
    // never; the messages stay queued and a 200 follows when the recipient comes back and acknowledges.
    const now = this.now()
    for (const [seq, msg] of s.inflight)
      if (msg.kind !== 'receipt' && msg.flags & Flag.RECEIPT && !s.notYet.has(seq))
        this.receipt(msg.from, {
          msgId: msg.msgId,
          status: ReceiptStatus.NOT_YET,
          recipient: s.user.id,
          recipientName: s.user.name,
          seq,
          at: now,
          topic: msg.topic,
        })
    s.inflight.clear()
    s.notYet.clear()
    s.buffer = []
    this.wake(s)
    for (const c of [...this.conversations.values()])
      if (c.a.id === s.user.id || c.b.id === s.user.id) this.closeConversationInternal(c, `${s.user.name} went offline`)
    this.log.debug({ user: s.user.id, reason }, 'session ended')
    if (tellSink) s.sink.close(reason, text)
  }

  /** Every request refreshes lastSeen (heartbeats included) and spends one token of the rate limit. */
  touch(s: Session): void {
    const now = this.now()
    s.lastSeen = now
    const rate = this.limits.ratePerSecond
    s.tokens = Math.min(rate * 2, s.tokens + ((now - s.tokensAt) * rate) / 1000)
    s.tokensAt = now
    if (s.tokens < 1)
      throw new BrokerError('SB_ERR_RATE_LIMITED', `more than ratePerSecond (${rate}) requests per second`, 'ratePerSecond')
    s.tokens -= 1
  }

  private live(s: Session): void {
    if (s.closed) throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'the session has ended')
  }

  private refuseIfClosing(): void {
    if (this.closing) throw new BrokerError('SB_ERR_SHUTTING_DOWN', 'the server is shutting down')
  }

  sessionOf(userId: number): Session | undefined {
    return this.sessions.get(userId)
  }

  // ---------------------------------------------------------------- sending

  async send(s: Session, req: SendRequest): Promise<SendResult> {
    this.live(s)
    this.touch(s)
    this.refuseIfClosing()
    const kind = req.kind ?? 'text'
    if (kind === 'text' && req.body.length > this.limits.maxTextBytes)
      throw new BrokerError(
        'SB_ERR_TOO_LARGE',
        `the text is longer than maxTextBytes (${this.limits.maxTextBytes} bytes)`,
        'maxTextBytes',
      )
    const msgId = req.msgId ?? 0
    const now = this.now()
    let flags = 0
    if (req.receipt) flags |= Flag.RECEIPT
    if (req.readReceipt) flags |= Flag.READ_RECEIPT
    if (req.idempotent && msgId !== 0) flags |= Flag.IDEMPOTENT
    this.counters.messagesIn[kind] = (this.counters.messagesIn[kind] ?? 0) + 1

    const to = req.to
    if (to.kind === 'server') return this.serverCommand(s, req.body, msgId)
    if (to.kind === 'all') {
      const msg: Message = {
        seq: 0,
        msgId,
        from: s.user.id,
        fromName: s.user.name,
        to: ALL_ID,
        kind,
        ts: now,
        body: req.body,
        flags: 0,
      }
      if (req.fileId !== undefined) msg.fileId = req.fileId
      const n = this.broadcast({ type: 'message', msg }, s.user.id)
      return { msgId, status: 'delivered', seq: 0, recipients: n }
    }

    // Resolving and submitting is serialised per session, so one sender's messages enter the queues in the
    // order they were sent; waiting for the commit is not, so a pipelining sender fills a batch.
    const prepared = s.sendChain.then(() => this.prepareSend(s, req, to, kind, msgId, flags, now))
    s.sendChain = prepared.then(
      () => undefined,
      () => undefined,
    )
    const { recipients, topic, copies, commit } = await prepared
    if (commit === undefined) return { msgId, status: 'stored', seq: 0, recipients: 0 }
    const result = await commit
    if (result.type !== 'send') throw new BrokerError('SB_ERR_INTERNAL', 'store answered the wrong operation')
    if (result.duplicate) return { msgId, status: 'duplicate', seq: 0, recipients: recipients.length }

    let status: SendStatus = 'stored'
    let delivered = 0
    for (let i = 0; i < copies.length; i++) {
      const seq = result.seqs[i]!
      const r = recipients[i]!
      if (seq === 0) {
        if (topic === undefined) throw refusedCopy(r.name, result.refused?.[i], this.limits)
        if (flags & Flag.RECEIPT)
          this.receipt(s.user.id, {
            msgId,
            status: ReceiptStatus.DROPPED,
            recipient: r.id,
            recipientName: r.name,
            seq: 0,
            at: now,
            topic,
          })
        continue
      }
      delivered++
      if (seq === -1) {
        status = 'scheduled'
        continue
      }
      const msg: Message = { ...copies[i]!, seq }
      if (await this.committed(msg)) {
        if (status !== 'scheduled') status = 'queued'
      } else if (flags & Flag.RECEIPT) {
        this.receipt(s.user.id, {
          msgId,
          status: ReceiptStatus.STORED,
          recipient: r.id,
          recipientName: r.name,
          seq,
          at: now,
          topic,
        })
      }
    }
    if (topic !== undefined && delivered === 0 && recipients.length > 0) throw refusedTopic(topic, result.refused)
    // A scheduled copy has no seq until it is released (the store answers -1): report 0, as for the room.
    return { msgId, status, seq: topic === undefined ? Math.max(0, result.seqs[0]!) : 0, recipients: delivered }
  }

  private async prepareSend(
    s: Session,
    req: SendRequest,
    to: Address,
    kind: 'text' | 'file',
    msgId: number,
    flags: number,
    now: number,
  ): Promise<{ recipients: UserInfo[]; topic: string | undefined; copies: NewCopy[]; commit: Promise<StoreResult> | undefined }> {
    let recipients: UserInfo[]
    let topic: string | undefined
    if (to.kind === 'topic') {
      topic = normalizeName(to.topic, this.limits.maxTopicBytes, 'topic', 'maxTopicBytes')
      const ids = await this.store.subscribers(topic)
      if (ids.length === 0) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no one subscribes to the topic "${topic}"`)
      recipients = []
      for (const id of ids) {
        if (id === s.user.id) continue
        const u = await this.resolveUser({ kind: 'user', id })
        if (u !== undefined) recipients.push(u)
      }
    } else {
      const u = await this.resolveUser(to)
      if (u === undefined || (await this.isBlocked(u.id, s.user.id)))
        throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(to)}`)
      recipients = [u]
    }

    const base = {
      kind,
      from: s.user.id,
      fromName: s.user.name,
      msgId,
      ts: now,
      body: req.body,
      flags,
      topic,
      expiresAt: req.ttlMs !== undefined && req.ttlMs > 0 ? now + req.ttlMs : undefined,
      notBefore: req.notBefore !== undefined && req.notBefore > now ? req.notBefore : undefined,
      fileId: req.fileId,
    }
    const copies: NewCopy[] = recipients.map((r) => ({ ...base, to: r.id }))
    if (copies.length === 0) return { recipients, topic, copies, commit: undefined }
    const commit = this.committer.submit({
      type: 'send',
      dedupe: flags & Flag.IDEMPOTENT ? { sender: s.user.id, msgId } : undefined,
      copies,
      limits: { maxCount: this.limits.maxQueueLength, maxBytes: this.limits.maxQueueBytes },
    })
    return { recipients, topic, copies, commit }
  }

  private async resolveUser(to: Address): Promise<UserInfo | undefined> {
    const now = this.now()
    let id: number | undefined
    if (to.kind === 'user') {
      if (to.id === SERVER_ID || to.id === ALL_ID) return undefined
      id = to.id
    } else if (to.kind === 'name') {
      const name = to.name.normalize('NFC')
      const cached = this.nameCache.get(name)
      const hit = cached === undefined ? undefined : this.userCache.get(cached)
      if (hit !== undefined && hit.info.name === name && now - hit.at < this.cacheTtlMs) return hit.info
      const rec = await this.store.userByName(name)
      if (rec === undefined) {
        this.nameCache.delete(name)
        return undefined
      }
      return this.cacheUser(rec, now)
    } else return undefined
    const hit = this.userCache.get(id)
    if (hit !== undefined && now - hit.at < this.cacheTtlMs) return hit.info
    const rec = await this.store.userById(id)
    if (rec === undefined) {
      this.forgetUser(id)
      return undefined
    }
    return this.cacheUser(rec, now)
  }

  private cacheUser(rec: UserRecord, now: number): UserInfo {
    const old = this.userCache.get(rec.id)
    if (old !== undefined && old.info.name !== rec.name) this.nameCache.delete(old.info.name)
    const info = { id: rec.id, name: rec.name }
    this.userCache.set(rec.id, { info, at: now })
    this.nameCache.set(rec.name, rec.id)
    return info
  }

  private forgetUser(id: number, name?: string): void {
    const old = this.userCache.get(id)
    if (old !== undefined) this.nameCache.delete(old.info.name)
    if (name !== undefined && this.nameCache.get(name) === id) this.nameCache.delete(name)
    this.userCache.delete(id)
    this.blockCache.delete(id)
  }

  /** Is `sender` blocked by `recipient`? */
  async isBlocked(recipient: number, sender: number): Promise<boolean> {
    const now = this.now()
    let hit = this.blockCache.get(recipient)
    if (hit === undefined || now - hit.at >= this.cacheTtlMs) {
      hit = { set: new Set(await this.store.blocked(recipient)), at: now }
      this.blockCache.set(recipient, hit)
    }
    return hit.set.has(sender)
  }

  /** Look a user up by id or name (adapters use this to render and resolve addresses). */
  async findUser(who: { id: number } | { name: string }): Promise<UserInfo | undefined> {
    return this.resolveUser('id' in who ? { kind: 'user', id: who.id } : { kind: 'name', name: who.name })
  }

  /** A message is durable in `msg.to`'s queue: hand it to the session, here or on another node. Is it online? */
  private async committed(msg: Message): Promise<boolean> {
    const s = this.sessions.get(msg.to)
    if (s !== undefined) {
      this.offer(s, msg)
      return true
    }
    if (await this.bus.isOnline(msg.to)) {
      this.bus.publish({ type: 'wake', user: msg.to })
      return true
    }
    return false
  }

  /** A newly committed message for a session of this node. */
  private offer(s: Session, msg: Message): void {
    if (s.closed) return
    if (s.mode === 'poll') {
      this.wake(s)
      return
    }
    if (s.loading) {
      s.missed = true
      return
    }
    if (!s.exhausted) return // it will be read from the store in order
    const last = s.buffer.length > 0 ? s.buffer[s.buffer.length - 1]!.seq : s.cursor
    // Keep at most a few pages in memory: a session that does not acknowledge reads the rest from the store later.
    if (msg.seq === last + 1 && s.buffer.length < 4 * PAGE) s.buffer.push(msg)
    else s.exhausted = false
    this.pump(s)
  }

  /** Something arrived for a poll session (or it ended): wake its long polls. */
  private wake(s: Session): void {
    s.waiter?.()
    for (const w of [...s.takeWaiters]) w()
  }

  /** Push queued messages to a push session while its window and its socket allow. */
  private pump(s: Session): void {
    while (!s.closed && !s.paused && s.inflight.size < this.limits.maxInflight) {
      const msg = s.buffer.shift()
      if (msg === undefined) {
        if (!s.exhausted && !s.loading) void this.load(s)
        return
      }
      if (msg.seq <= s.cursor) continue
      if (msg.expiresAt !== undefined && msg.expiresAt <= this.now()) continue // the reaper tells the sender
      s.cursor = msg.seq
      s.inflight.set(msg.seq, msg)
      if (msg.flags & Flag.RECEIPT) this.armAckTimer(s, msg.seq)
      this.counters.messagesOut++
      if (!s.sink.push(this.toOutbound(msg))) s.paused = true
    }
  }

  private async load(s: Session): Promise<void> {
    s.loading = true
    s.missed = false
    const after = s.buffer.length > 0 ? s.buffer[s.buffer.length - 1]!.seq : s.cursor
    let rows: StoredMessage[]
    try {
      rows = await this.store.readQueue(s.user.id, after, PAGE, this.now())
    } catch (err) {
      s.loading = false
      this.log.error({ err, user: s.user.id }, 'reading a queue failed: trying again in a second')
      setTimeout(() => this.pump(s), 1000).unref()
      return
    }
    s.loading = false
    if (s.closed) return
    for (const r of rows) if (r.seq > after) s.buffer.push(r)
    s.exhausted = rows.length < PAGE && !s.missed
    this.pump(s)
  }

  /** The adapter's socket drained below its high-water mark. */
  drained(s: Session): void {
    if (!s.paused) return
    s.paused = false
    this.pump(s)
  }

  private toOutbound(msg: Message): Outbound {
    if (msg.kind === 'receipt') {
      const receipt = decodeReceiptBody(msg.body)
      if (receipt !== undefined) return { type: 'receipt', receipt, seq: msg.seq }
    }
    return { type: 'message', msg }
  }

  // ---------------------------------------------------------------- taking and acknowledging

  /**
   * Poll: the oldest queued messages beyond this session's cursor. 'take' acknowledges them at once
   * (seed 000's take-and-remove); 'peek' leaves them queued until ack() (at-least-once).
   * With waitMs, waits that long for something to arrive (long poll).
   */
  async take(s: Session, max: number, mode: 'take' | 'peek' = 'take', waitMs = 0): Promise<Message[]> {
    this.live(s)
    this.touch(s)
    if (s.mode !== 'poll')
      throw new BrokerError('SB_ERR_CONFLICT', 'this session receives by push; log in with poll mode to take messages')
    const limit = Math.max(1, Math.min(max, PAGE))
    let rows = await this.store.readQueue(s.user.id, s.cursor, limit, this.now())
    if (rows.length === 0 && waitMs > 0 && !s.closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, waitMs)
        function done(): void {
          clearTimeout(t)
          s.takeWaiters.delete(done)
          resolve()
        }
        s.takeWaiters.add(done)
      })
      if (s.closed) return []
      rows = await this.store.readQueue(s.user.id, s.cursor, limit, this.now())
    }
    const out: Message[] = []
    for (const r of rows) {
      if (r.seq <= s.cursor) continue
      s.cursor = r.seq
      out.push(r)
    }
    this.counters.messagesOut += out.length
    if (mode === 'take') await Promise.all(out.map((m) => this.ackInternal(s, m.seq)))
    else
      for (const m of out) {
        s.inflight.set(m.seq, m)
        if (m.flags & Flag.RECEIPT) this.armAckTimer(s, m.seq)
      }
    return out
  }

  /** The recipient has the message: remove it from the queue and tell the sender (200). */
  async ack(s: Session, seq: number): Promise<boolean> {
    this.live(s)
    this.touch(s)
    return this.ackInternal(s, seq)
  }

  private async ackInternal(s: Session, seq: number): Promise<boolean> {
    const handed = s.inflight.get(seq)
    s.inflight.delete(seq)
    s.notYet.delete(seq)
    const r = await this.committer.submit({ type: 'ack', user: s.user.id, seq })
    if (r.type !== 'ack' || r.removed === null) return false
    const m = r.removed
    if (m.flags & Flag.READ_RECEIPT) {
      // The handed-out copy's flags: markRead clears READ_RECEIPT there once its 210 is sent.
      s.recent.set(seq, { ...m, flags: handed?.flags ?? m.flags, body: EMPTY })
      if (s.recent.size > RECENT_ACKED) s.recent.delete(s.recent.keys().next().value!)
    }
    if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT && m.from !== SERVER_ID)
      this.receipt(m.from, {
        msgId: m.msgId,
        status: ReceiptStatus.DELIVERED,
        recipient: s.user.id,
        recipientName: s.user.name,
        seq,
        at: this.now(),
        topic: m.topic,
      })
    if (s.mode === 'push') this.pump(s)
    return true
  }

  /** Opt-in read receipt: the recipient marks a message it received as read. */
  async markRead(s: Session, msg: { from: number; msgId: number; seq: number; flags: number; topic?: string }): Promise<void> {
    this.live(s)
    this.touch(s)
    if (!(msg.flags & Flag.READ_RECEIPT)) return
    // One 210 per message: a receipt to an offline sender is stored in its queue, so repeating READ would
    // otherwise let a recipient fill the sender's queue. The bit is cleared on this session's own copy.
    const handed = s.inflight.get(msg.seq)
    if (handed !== undefined) s.inflight.set(msg.seq, { ...handed, flags: handed.flags & ~Flag.READ_RECEIPT })
    const acked = s.recent.get(msg.seq)
    if (acked !== undefined) s.recent.set(msg.seq, { ...acked, flags: acked.flags & ~Flag.READ_RECEIPT })
    this.receipt(msg.from, {
      msgId: msg.msgId,
      status: ReceiptStatus.READ,
      recipient: s.user.id,
      recipientName: s.user.name,
      seq: msg.seq,
      at: this.now(),
      topic: msg.topic,
    })
  }

  /** A message this session was handed and has not acknowledged (for markRead by seq). */
  inflightMessage(s: Session, seq: number): Message | undefined {
    return s.inflight.get(seq) ?? s.recent.get(seq)
  }

  private armAckTimer(s: Session, seq: number): void {
    this.ackTimers.push({ at: this.now() + this.ackTimeoutMs, session: s, seq })
    if (this.ackTimer === undefined) this.scheduleAckTimer()
  }

  private scheduleAckTimer(): void {
    const head = this.ackTimers[this.ackTimerHead]
    if (head === undefined) {
      this.ackTimers.length = 0
      this.ackTimerHead = 0
      this.ackTimer = undefined
      return
    }
    this.ackTimer = setTimeout(() => this.fireAckTimers(), Math.max(0, head.at - this.now()))
    this.ackTimer.unref()
  }

  private fireAckTimers(): void {
    const now = this.now()
    while (this.ackTimerHead < this.ackTimers.length) {
      const t = this.ackTimers[this.ackTimerHead]!
      if (t.at > now) break
      this.ackTimerHead++
      const msg = t.session.closed ? undefined : t.session.inflight.get(t.seq)
      if (msg !== undefined) t.session.notYet.add(t.seq)
      if (msg !== undefined)
        this.receipt(msg.from, {
          msgId: msg.msgId,
          status: ReceiptStatus.NOT_YET,
          recipient: t.session.user.id,
          recipientName: t.session.user.name,
          seq: t.seq,
          at: now,
          topic: msg.topic,
        })
    }
    if (this.ackTimerHead > 1024 && this.ackTimerHead * 2 > this.ackTimers.length) {
      this.ackTimers.splice(0, this.ackTimerHead)
      this.ackTimerHead = 0
    }
    this.scheduleAckTimer()
  }

  // ---------------------------------------------------------------- receipts and live events

  /** Tell a sender what became of its message: live if it is online, else queued for it. */
  private receipt(to: number, receipt: Receipt): void {
    if (receipt.topic === undefined) delete receipt.topic
    this.counters.receipts[receipt.status] = (this.counters.receipts[receipt.status] ?? 0) + 1
    void this.deliverEvent(to, { type: 'receipt', receipt, seq: 0 }, true).catch((err) =>
      this.log.warn({ err, to }, 'receipt could not be delivered'),
    )
  }

  /**
   * A live event for one user. With `storeIfOffline`, a receipt for a user who is not online anywhere is
   * queued for it instead, so senders learn what became of their messages when they come back.
   */
  async deliverEvent(to: number, ev: Outbound, storeIfOffline = false): Promise<void> {
    const s = this.sessions.get(to)
    if (s !== undefined) {
      s.sink.push(ev)
      if (ev.type === 'conversation') this.mirrorConversation(ev.ev, to)
      return
    }
    // A receipt for a user not on this node goes through its queue: durable, and delivered even if that
    // user's node died before the cluster noticed.
    if (!(storeIfOffline && ev.type === 'receipt') && (await this.bus.isOnline(to))) {
      this.bus.publish({ type: 'event', to, ev })
      return
    }
    if (!storeIfOffline || ev.type !== 'receipt') return
    const r = await this.committer.submit({
      type: 'send',
      copies: [
        {
          to,
          kind: 'receipt',
          from: SERVER_ID,
          fromName: 'SERVER',
          msgId: ev.receipt.msgId,
          ts: this.now(),
          body: encodeReceiptBody(ev.receipt),
          flags: 0,
        },
      ],
      limits: { maxCount: this.limits.maxQueueLength, maxBytes: this.limits.maxQueueBytes },
    })
    if (r.type === 'send' && !r.duplicate && r.seqs[0]! > 0)
      await this.committed({ ...this.receiptMessage(to, ev.receipt), seq: r.seqs[0]! })
  }

  private receiptMessage(to: number, receipt: Receipt): Message {
    return {
      seq: 0,
      msgId: receipt.msgId,
      from: SERVER_ID,
      fromName: 'SERVER',
      to,
      kind: 'receipt',
      ts: this.now(),
      body: encodeReceiptBody(receipt),
      flags: 0,
    }
  }

  /** The room: every online session but `except`'s, here and on other nodes. Returns how many here. */
  broadcast(ev: Outbound, except: number): number {
    this.bus.publish({ type: 'broadcast', ev, except })
    return this.broadcastLocal(ev, except)
  }

  private broadcastLocal(ev: Outbound, except: number): number {
    let n = 0
    for (const s of this.sessions.values()) {
      if (s.user.id === except) continue
      if (s.sink.backlog() > this.limits.maxSessionBuffer) {
        this.counters.slowConsumers++
        this.log.warn({ user: s.user.id, backlog: s.sink.backlog() }, 'slow consumer cut off')
        this.end(s, 'slow-consumer', `slow consumer: more than maxSessionBuffer (${this.limits.maxSessionBuffer} bytes) waiting`)
        continue
      }
      s.sink.push(ev)
      n++
    }
    if (ev.type === 'message') this.counters.messagesOut += n
    return n
  }

  private notifyPresence(s: Session, online: boolean): void {
    const ev: Outbound = { type: 'presence', user: { ...s.user }, online, protocol: s.protocol, at: this.now() }
    for (const w of this.sessions.values()) if (w.watchPresence && w !== s) w.sink.push(ev)
    this.bus.publish({ type: 'broadcast', ev, except: s.user.id })
  }

  private busOnMessage(m: BusMessage): void {
    switch (m.type) {
      case 'wake': {
        const s = this.sessions.get(m.user)
        if (s === undefined) return
        if (s.mode === 'poll') this.wake(s)
        else {
          s.exhausted = false
          if (s.loading) s.missed = true
          this.pump(s)
        }
        return
      }
      case 'event': {
        const s = this.sessions.get(m.to)
        if (s === undefined) return
        s.sink.push(m.ev)
        if (m.ev.type === 'conversation') this.mirrorConversation(m.ev.ev, m.to)
        return
      }
      case 'broadcast':
        if (m.ev.type === 'rename') this.forgetUser(m.ev.user.id, m.ev.oldName)
        if (m.ev.type === 'presence') {
          for (const w of this.sessions.values()) if (w.watchPresence && w.user.id !== m.except) w.sink.push(m.ev)
        } else this.broadcastLocal(m.ev, m.except)
        return
      case 'kick': {
        const s = this.sessions.get(m.user)
        if (s === undefined || m.node === this.bus.nodeId) return
        const older = s.since < m.since || (s.since === m.since && this.bus.nodeId < m.node)
        if (older) this.end(s, m.reason, 'you logged in again elsewhere')
        return
      }
    }
  }

  // ---------------------------------------------------------------- requests to SERVER

  whoami(s: Session): PresenceInfo {
    this.live(s)
    this.touch(s)
    return this.presenceOf(s)
  }

  async who(s: Session): Promise<PresenceInfo[]> {
    this.live(s)
    this.touch(s)
    const list = await this.bus.online()
    for (const p of list) {
      const local = this.sessions.get(p.id)
      if (local !== undefined) p.lastSeen = local.lastSeen
    }
    return list.sort((a, b) => a.name.localeCompare(b.name))
  }

  /**
   * When a user was last seen: now-ish if online (its last request), else when its last session ended.
   * A user who blocked the asker is, to the asker, no such user.
   */
  async lastSeen(
    s: Session,
    who: Address,
  ): Promise<{ user: UserInfo; online: PresenceInfo | undefined; lastSeen: number | undefined }> {
    this.live(s)
    this.touch(s)
    const u = await this.resolveUser(who)
    if (u === undefined || (await this.isBlocked(u.id, s.user.id)))
      throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(who)}`)
    const local = this.sessions.get(u.id)
    if (local !== undefined && !local.hidden) return { user: u, online: this.presenceOf(local), lastSeen: local.lastSeen }
    const online = (await this.bus.online()).find((p) => p.id === u.id)
    if (online !== undefined) return { user: u, online, lastSeen: online.lastSeen }
    return { user: u, online: undefined, lastSeen: await this.store.lastSeen(u.id) }
  }

  watchPresence(s: Session, on: boolean): void {
    this.live(s)
    this.touch(s)
    s.watchPresence = on
  }

  async rename(s: Session, rawName: string): Promise<UserInfo> {
    this.live(s)
    this.touch(s)
    const name = normalizeName(rawName, this.limits.maxNameBytes)
    const old = s.user.name
    if (name === old) return { ...s.user }
    await this.store.renameUser(s.user.id, name)
    this.forgetUser(s.user.id, old)
    s.user = { id: s.user.id, name }
    if (!s.hidden) await this.bus.setOnline(this.presenceOf(s))
    this.log.info({ user: s.user.id, from: old, to: name }, 'renamed')
    const ev: Outbound = { type: 'rename', user: { ...s.user }, oldName: old }
    s.sink.push(ev)
    this.broadcast(ev, s.user.id)
    return { ...s.user }
  }

  /** Delete the account: the name is released, its queue dropped, senders that asked are told (404). */
  async deleteAccount(s: Session): Promise<void> {
    this.live(s)
    this.touch(s)
    const user = { ...s.user }
    this.end(s, 'deleted', 'the account was deleted')
    const dropped = await this.store.deleteUser(user.id)
    this.forgetUser(user.id, user.name)
    const now = this.now()
    for (const m of dropped)
      if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT)
        this.receipt(m.from, {
          msgId: m.msgId,
          status: ReceiptStatus.DELETED,
          recipient: user.id,
          recipientName: user.name,
          seq: m.seq,
          at: now,
          topic: m.topic,
        })
    this.log.info({ user: user.id, name: user.name }, 'account deleted')
  }

  async stats(): Promise<BrokerStats> {
    const byProtocol: Record<string, number> = {}
    for (const s of this.sessions.values()) byProtocol[s.protocol] = (byProtocol[s.protocol] ?? 0) + 1
    const c = this.committer.stats
    return {
      users: await this.store.countUsers(),
      online: (await this.bus.online()).length,
      sessionsByProtocol: byProtocol,
      uptimeMs: this.now() - this.startedAt,
      messagesIn: { ...this.counters.messagesIn },
      messagesOut: this.counters.messagesOut,
      receipts: { ...this.counters.receipts },
      commits: c.commits,
      commitOps: c.ops,
      commitMsTotal: c.msTotal,
      slowConsumers: this.counters.slowConsumers,
    }
  }

  /** Last commit latencies, for metrics. */
  get commitStats(): Committer['stats'] {
    return this.committer.stats
  }

  /** Queue depth of a user (for metrics and the web page's unread counts). */
  queueStats(userId: number) {
    return this.store.queueStats(userId)
  }

  get onlineCount(): number {
    return this.sessions.size
  }

  localSessions(): IterableIterator<Session> {
    return this.sessions.values()
  }

  // Topics -------------------------------------------------------------

  async subscribe(s: Session, rawTopic: string): Promise<boolean> {
    this.live(s)
    this.touch(s)
    const topic = normalizeName(rawTopic, this.limits.maxTopicBytes, 'topic', 'maxTopicBytes')
    return this.store.subscribe(s.user.id, topic)
  }

  async unsubscribe(s: Session, rawTopic: string): Promise<boolean> {
    this.live(s)
    this.touch(s)
    return this.store.unsubscribe(s.user.id, rawTopic.normalize('NFC'))
  }

  async subscriptions(s: Session): Promise<string[]> {
    this.live(s)
    this.touch(s)
    return this.store.subscriptions(s.user.id)
  }

  async topics(s: Session): Promise<{ topic: string; subscribers: number }[]> {
    this.live(s)
    this.touch(s)
    return this.store.topics()
  }

  // Block list ----------------------------------------------------------

  async block(s: Session, who: Address): Promise<UserInfo> {
    this.live(s)
    this.touch(s)
    const u = await this.resolveUser(who)
    if (u === undefined) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    await this.store.block(s.user.id, u.id)
    this.blockCache.delete(s.user.id)
    return u
  }

  async unblock(s: Session, who: Address): Promise<UserInfo> {
    this.live(s)
    this.touch(s)
    const u = await this.resolveUser(who)
    if (u === undefined) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    await this.store.unblock(s.user.id, u.id)
    this.blockCache.delete(s.user.id)
    return u
  }

  async blocked(s: Session): Promise<UserInfo[]> {
    this.live(s)
    this.touch(s)
    const out: UserInfo[] = []
    for (const id of await this.store.blocked(s.user.id)) {
      const u = await this.store.userById(id)
      if (u !== undefined) out.push({ id: u.id, name: u.name })
    }
    return out
  }

  // Conversations (seed 003's direct chat) ------------------------------

  async requestConversation(s: Session, target: Address): Promise<string> {
    this.live(s)
    this.touch(s)
    const u = await this.resolveUser(target)
    if (u === undefined || u.id === s.user.id || (await this.isBlocked(u.id, s.user.id)))
      throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', 'no such user')
    if (!this.sessions.has(u.id) && !(await this.bus.isOnline(u.id)))
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
    const expiresAt = this.now() + this.conversationTimeoutMs
    // The requester's node owns the expiry; the peer's node keeps a mirror (see mirrorConversation).
    c.timer = setTimeout(() => {
      const cur = this.conversations.get(c.id)
      if (cur === undefined || cur.open) return
      this.conversations.delete(c.id)
      this.convEvent(c.a.id, { event: 'expired', convId: c.id, peer: c.b })
      this.convEvent(c.b.id, { event: 'expired', convId: c.id, peer: c.a })
    }, this.conversationTimeoutMs)
    c.timer.unref()
    this.conversations.set(c.id, c)
    this.convEvent(u.id, { event: 'request', convId: c.id, peer: c.a, expiresAt })
    return c.id
  }

  private convEvent(to: number, ev: ConversationEvent): void {
    void this.deliverEvent(to, { type: 'conversation', ev }).catch((err) => this.log.warn({ err, to }, 'conversation event lost'))
  }

  /**
   * Conversation state follows its events: the node of each party keeps a record, created by the request
   * and changed or removed by the answer, the close or the expiry, wherever they happened.
   */
  private mirrorConversation(ev: ConversationEvent, to: number): void {
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

  answerConversation(s: Session, convId: string, accept: boolean): void {
    this.live(s)
    this.touch(s)
    const c = this.conversations.get(convId)
    if (c === undefined || c.b.id !== s.user.id || c.open)
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such conversation request')
    clearTimeout(c.timer)
    const event = accept ? 'accepted' : 'declined'
    if (accept) c.open = true
    else this.conversations.delete(convId)
    this.convEvent(c.a.id, { event, convId, peer: c.b })
    this.convEvent(s.user.id, { event, convId, peer: c.a })
  }

  conversationSend(s: Session, convId: string, body: Buffer): void {
    this.live(s)
    this.touch(s)
    if (body.length > this.limits.maxTextBytes)
      throw new BrokerError(
        'SB_ERR_TOO_LARGE',
        `the text is longer than maxTextBytes (${this.limits.maxTextBytes} bytes)`,
        'maxTextBytes',
      )
    const c = this.conversations.get(convId)
    if (c === undefined || !c.open || (c.a.id !== s.user.id && c.b.id !== s.user.id))
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such open conversation')
    const peer = c.a.id === s.user.id ? c.b : c.a
    this.convEvent(peer.id, { event: 'message', convId, peer: { ...s.user }, body })
  }

  closeConversation(s: Session, convId: string): void {
    this.live(s)
    this.touch(s)
    const c = this.conversations.get(convId)
    if (c === undefined || (c.a.id !== s.user.id && c.b.id !== s.user.id))
      throw new BrokerError('SB_ERR_UNKNOWN_CONVERSATION', 'no such conversation')
    this.closeConversationInternal(c, `closed by ${s.user.name}`)
  }

  private closeConversationInternal(c: Conversation, reason: string): void {
    clearTimeout(c.timer)
    this.conversations.delete(c.id)
    this.convEvent(c.a.id, { event: 'closed', convId: c.id, peer: c.b, reason })
    this.convEvent(c.b.id, { event: 'closed', convId: c.id, peer: c.a, reason })
  }

  // Text commands sent to SERVER ------------------------------------------

  private async serverCommand(s: Session, body: Buffer, msgId: number): Promise<SendResult> {
    const [cmd = '', ...args] = body.toString('utf8').trim().split(/\s+/)
    let reply: string
    try {
      switch (cmd.toLowerCase()) {
        case 'whoami':
          reply = `${s.user.name} #${s.user.id} via ${s.protocol}`
          break
        case 'who':
          reply = (await this.who(s)).map((p) => `${p.name} #${p.id} (${p.protocol})`).join('\n') || '(no one)'
          break
        case 'rename':
          reply = `you are now ${(await this.rename(s, args[0] ?? '')).name}`
          break
        case 'subscribe':
          await this.subscribe(s, args[0] ?? '')
          reply = `subscribed to ${args[0]}`
          break
        case 'unsubscribe':
          await this.unsubscribe(s, args[0] ?? '')
          reply = `unsubscribed from ${args[0]}`
          break
        case 'topics':
          reply = (await this.topics(s)).map((t) => `${t.topic} (${t.subscribers})`).join('\n') || '(no topics)'
          break
        case 'seen': {
          const r = await this.lastSeen(s, { kind: 'name', name: args[0] ?? '' })
          reply =
            r.online !== undefined
              ? `${r.user.name} is online (${r.online.protocol})`
              : r.lastSeen !== undefined
                ? `${r.user.name} was last seen ${new Date(r.lastSeen).toISOString()}`
                : `${r.user.name} has not been seen`
          break
        }
        case 'stats': {
          const st = await this.stats()
          reply = `users ${st.users}, online ${st.online}, uptime ${Math.round(st.uptimeMs / 1000)} s`
          break
        }
        default:
          reply = 'commands: whoami, who, seen NAME, rename NAME, subscribe TOPIC, unsubscribe TOPIC, topics, stats'
      }
    } catch (err) {
      reply = err instanceof BrokerError ? `error: ${err.message}` : 'error: internal error'
    }
    const msg: Message = {
      seq: 0,
      msgId,
      from: SERVER_ID,
      fromName: 'SERVER',
      to: s.user.id,
      kind: 'notice',
      ts: this.now(),
      body: Buffer.from(reply),
      flags: 0,
    }
    s.sink.push({ type: 'message', msg })
    return { msgId, status: 'delivered', seq: 0, recipients: 1 }
  }

  // ---------------------------------------------------------------- the reaper

  private async reap(): Promise<void> {
    const now = this.now()
    for (const s of [...this.sessions.values()])
      if (now - s.lastSeen > this.idleTimeoutMs) {
        this.log.info({ user: s.user.id, idleMs: now - s.lastSeen }, 'reaping idle session')
        this.end(s, 'idle', `idle for more than ${Math.round(this.idleTimeoutMs / 1000)} s`)
      }
    for (const m of await this.store.expire(now, 1000))
      if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT) {
        const u = await this.store.userById(m.to)
        this.receipt(m.from, {
          msgId: m.msgId,
          status: ReceiptStatus.EXPIRED,
          recipient: m.to,
          recipientName: u?.name ?? '',
          seq: m.seq,
          at: now,
          topic: m.topic,
        })
      }
    for (const m of await this.store.releaseDue(now, 1000))
      if (!(await this.committed(m)) && m.kind !== 'receipt' && m.flags & Flag.RECEIPT)
        this.receipt(m.from, {
          msgId: m.msgId,
          status: ReceiptStatus.STORED,
          recipient: m.to,
          recipientName: (await this.resolveUser({ kind: 'user', id: m.to }))?.name ?? '',
          seq: m.seq,
          at: now,
          topic: m.topic,
        })
    if (now - this.lastPrune > 3600_000) {
      this.lastPrune = now
      await this.store.pruneDedupe(now - this.dedupeRetentionMs)
    }
  }
}

export type { ReceiptStatusCode }
