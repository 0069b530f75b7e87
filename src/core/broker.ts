/**
 * The Broker: the facade adapters call (DESIGN §1). It wires the core's parts and owns their lifetimes, and
 * holds no logic of its own beyond that: the session registry (sessions.ts), the directory of users, topics and
 * blocks (directory.ts), receipts (receipts.ts), delivery (delivery.ts, with ack-timers.ts), conversations
 * (conversations.ts), the logs' upkeep and history pages (log-upkeep.ts), accounts that go (accounts.ts) and what
 * operators read (operations.ts) share the state in context.ts. It knows no protocol and no socket; text commands
 * for SERVER come from outside (src/services/server-commands.ts), through `serverRequests`.
 *
 * A direct message's path: send() validates and resolves the address, the Committer puts the copy into
 * the next group commit (one transaction, one fsync per batch), and once the batch is durable the message
 * is accepted: pushed to every live session of the recipient (one per device), with a STORED receipt when no
 * device is online. ack() advances that device's cursor in a later batch; the first device's ack sends the sender
 * a DELIVERED receipt; an ack that does not come within ackTimeoutMs gives the sender NOT_YET (once).
 *
 * Attaching is two-phase: register/login/claim return a session that is online but receives nothing until
 * the adapter, having answered the login, calls ready(session).
 */
import { Accounts } from './accounts.js'
import { Committer } from './committer.js'
import { isBrokerError } from './errors.js'
import { guardStore } from './store-errors.js'
import type { Core } from './context.js'
import { touch } from './context.js'
import { Conversations } from './conversations.js'
import { Delivery, type SendRequest, type SendResult, type ServerRequestHandler } from './delivery.js'
import { LogUpkeep } from './log-upkeep.js'
import type { ScryptCost } from './passwords.js'
import { Directory } from './directory.js'
import { Receipts } from './receipts.js'
import { health, metrics, stats, type BrokerStats, type Health, type MetricsSnapshot } from './operations.js'
import { SessionTable, type Session, type DeliveryMode } from './session.js'
import { SessionRegistry, type AttachOptions } from './sessions.js'
import {
  DEFAULT_LIMITS,
  silentLogger,
  type Address,
  type CloseReason,
  type Limits,
  type Logger,
  type Message,
  type Outbound,
  type PresenceInfo,
  type ReceiptStatusCode,
  type SessionSink,
  type UserInfo,
} from './types.js'
import type { DeviceRecord, Store } from '../store/store.js'
import type { Bus, BusMessage } from '../bus/bus.js'

export { normalizeName } from './directory.js'
export { hashToken } from './sessions.js'
export type { SendRequest, SendResult, SendStatus, ServerRequestHandler } from './delivery.js'
export type { BrokerStats, Health, MetricsSnapshot } from './operations.js'

export interface BrokerOptions {
  store: Store
  /** Node-to-node traffic and presence: the single-node LocalBus, or a cluster bus. */
  bus: Bus
  limits?: Partial<Limits>
  /** A pushed message not acknowledged within this gives its sender a NOT_YET (300) receipt. */
  ackTimeoutMs?: number
  /** scrypt's cost for new password hashes (default N=2^15, r=8, p=1: 32 MiB); for hermetic tests only. */
  passwordCost?: ScryptCost
  /** Sessions whose lastSeen is older than this are ended by the reaper. */
  idleTimeoutMs?: number
  reapIntervalMs?: number
  /**
   * A tokenless identity (legacy gateways) not logged in for this long is removed with its queue, and a
   * registration may take its name. Default 7 days.
   */
  legacyIdentityTtlMs?: number
  /** Conversation requests not answered within this expire. */
  conversationTimeoutMs?: number
  /** How long a (sender, msgId) dedupe key is remembered. */
  dedupeRetentionMs?: number
  /** How long the log keeps an acknowledged message (history). Default 30 days. */
  retentionMs?: number
  /** At most this many acknowledged messages are kept per user. Default 100,000. */
  retentionMessages?: number
  /** The room's last N messages are shown to a session when it starts (0, the default: the room is live only). */
  roomHistory?: number
  /** Answers text sent to SERVER (e.g. src/services/server-commands.ts); without it SERVER says so. */
  serverRequests?: (broker: Broker) => ServerRequestHandler
  logger?: Logger
  now?: () => number
}

const NO_SERVER_REQUESTS: ServerRequestHandler = async () => 'this server answers no text commands'

export class Broker {
  readonly limits: Limits
  readonly log: Logger
  readonly ackTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly conversationTimeoutMs: number
  readonly legacyIdentityTtlMs: number
  private readonly core: Core
  private readonly registry: SessionRegistry
  private readonly directory: Directory
  private readonly receipts: Receipts
  private readonly delivery: Delivery
  private readonly upkeep: LogUpkeep
  private readonly conversations: Conversations
  private readonly accounts: Accounts
  private readonly reapIntervalMs: number
  private readonly dedupeRetentionMs: number
  readonly retentionMs: number
  readonly retentionMessages: number
  private readonly serverRequests: ServerRequestHandler
  private reaper: NodeJS.Timeout | undefined
  private startedAt = 0

  constructor(opts: BrokerOptions) {
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits }
    this.log = opts.logger ?? silentLogger
    this.ackTimeoutMs = opts.ackTimeoutMs ?? 3000
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 120_000
    this.reapIntervalMs = opts.reapIntervalMs ?? 1000
    this.conversationTimeoutMs = opts.conversationTimeoutMs ?? 60_000
    this.legacyIdentityTtlMs = opts.legacyIdentityTtlMs ?? 7 * 24 * 3600_000
    this.dedupeRetentionMs = opts.dedupeRetentionMs ?? 7 * 24 * 3600_000
    this.retentionMs = opts.retentionMs ?? 30 * 24 * 3600_000
    this.retentionMessages = opts.retentionMessages ?? 100_000
    const store = guardStore(opts.store, opts.logger)
    this.core = {
      store,
      bus: opts.bus,
      limits: this.limits,
      log: this.log,
      now: opts.now ?? Date.now,
      committer: new Committer(store, this.log),
      counters: { messagesIn: {}, messagesOut: 0, receipts: {}, slowConsumers: 0 },
      sessions: new SessionTable(),
      closing: false,
      ...(opts.passwordCost !== undefined && { passwordCost: opts.passwordCost }),
    }
    this.directory = new Directory(this.core)
    this.registry = new SessionRegistry(this.core, this.directory, opts.roomHistory ?? 0)
    this.receipts = new Receipts(this.core, this.registry, (m) => this.delivery.committed(m))
    this.delivery = new Delivery(
      this.core,
      this.registry,
      this.directory,
      this.receipts,
      this.ackTimeoutMs,
      () => this.serverRequests,
    )
    this.upkeep = new LogUpkeep(this.core, this.directory, this.receipts, (m) => this.delivery.committed(m))
    this.accounts = new Accounts(this.core, this.registry, this.directory, this.receipts, this.legacyIdentityTtlMs)
    this.conversations = new Conversations(this.core, this.registry, this.directory, this.conversationTimeoutMs)
    this.registry.hooks = {
      started: (s) => {
        if (s.mode === 'push') this.delivery.pump(s)
      },
      ended: (s) => {
        this.delivery.sessionEnded(s)
        this.conversations.sessionEnded(s)
      },
    }
    this.serverRequests = opts.serverRequests?.(this) ?? NO_SERVER_REQUESTS
  }

  async start(): Promise<void> {
    await this.core.store.open()
    await this.core.bus.start((m) => this.busOnMessage(m))
    this.startedAt = this.core.now()
    this.reaper = setInterval(
      () => void this.reap().catch((err) => this.log.error({ err }, 'reaper failed')),
      this.reapIntervalMs,
    )
    this.reaper.unref()
  }

  /** Graceful stop: refuse new work, end every session with a reason, flush the store. */
  async close(): Promise<void> {
    if (this.core.closing) return
    this.core.closing = true
    if (this.reaper) clearInterval(this.reaper)
    this.delivery.close()
    for (const s of [...this.core.sessions.values()]) this.end(s, 'shutdown', 'the server is shutting down')
    await this.core.committer.drain()
    await this.core.bus.close()
    await this.core.store.close()
  }

  get isClosing(): boolean {
    return this.core.closing
  }

  // ---------------------------------------------------------------- sessions (sessions.ts)

  /** Register a new name. Returns the session (call ready() once the login is answered) and its token. */
  register(
    rawName: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode = 'push',
    opts: AttachOptions & { password?: string } = {},
  ): Promise<{ session: Session; token: string; user: UserInfo }> {
    return this.registry.register(rawName, protocol, sink, mode, opts).catch(async (err: unknown) => {
      // The name (or a look-alike) is held by a tokenless identity past its time: it is released, and taken now.
      const holder = isBrokerError(err) && err.code === 'SB_ERR_NAME_TAKEN' ? await this.core.store.userLike(rawName) : undefined
      if (holder === undefined || !(await this.accounts.expireTokenless(holder))) throw err
      return this.registry.register(rawName, protocol, sink, mode, opts)
    })
  }

  /**
   * Come back as a device, by its token. A live session of the same device is replaced; the user's other devices
   * stay. `sendOnly`: attach beside the device's session instead (a one-shot command).
   */
  login(
    who: { id: number } | { name: string },
    token: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode = 'push',
    opts: AttachOptions = {},
  ): Promise<Session> {
    return this.registry.login(who, token, protocol, sink, mode, opts)
  }

  /** Log in with a name and password: a new device (its token returned once), attached at once. */
  loginPassword(
    name: string,
    password: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode = 'push',
    opts: AttachOptions = {},
  ): Promise<{ session: Session; token: string }> {
    return this.registry.loginPassword(name, password, protocol, sink, mode, opts)
  }

  /** Log in with a name and password without attaching (HTTP): a new device and its token. */
  async newDevice(
    name: string,
    password: string,
    opts: AttachOptions = {},
  ): Promise<{ user: UserInfo; device: number; token: string }> {
    const { rec, device, token } = await this.registry.newDevice(name, password, opts)
    return { user: { id: rec.id, name: rec.name }, device: device.id, token }
  }

  /** The user and device a token belongs to (HTTP checks a bearer token with this); SB_ERR_AUTH if none. */
  async deviceOfToken(token: string, who?: { id: number } | { name: string }): Promise<{ user: UserInfo; device: DeviceRecord }> {
    const { rec, device } = await this.registry.byToken(who, token)
    return { user: { id: rec.id, name: rec.name }, device }
  }

  /** Set, change or clear (null) the password; changing or clearing one needs the current one. */
  setPassword(s: Session, password: string | null, current?: string): Promise<void> {
    return this.registry.setPassword(s, password, current)
  }

  /** The user's devices (never their tokens). */
  devices(s: Session): ReturnType<SessionRegistry['devices']> {
    return this.registry.devices(s)
  }

  /** Revoke a device of the session's user: its token is refused from now on and its sessions end. */
  revokeDevice(s: Session, device: number): Promise<void> {
    return this.registry.revokeDevice(s, device)
  }

  /** A legacy gateway claims a tokenless name (see SessionRegistry.claim). */
  claim(rawName: string, protocol: string, sink: SessionSink, opts: { hidden?: boolean } = {}): Promise<Session> {
    return this.registry.claim(rawName, protocol, sink, opts.hidden === true)
  }

  /** The adapter has answered the login: events held since the attach go out, then the queue. */
  ready(s: Session): void {
    this.registry.ready(s)
  }

  ensureLegacyUser(rawName: string): Promise<UserInfo> {
    return this.registry.ensureLegacyUser(rawName)
  }

  /** The session's connection is gone (the adapter calls this; the sink is not called back). */
  detach(s: Session): void {
    this.registry.end(s, 'ended', '', false)
  }

  /** End a session: the user goes offline; what it had not acknowledged stays queued. */
  end(s: Session, reason: CloseReason, text: string, tellSink = true): void {
    this.registry.end(s, reason, text, tellSink)
  }

  /** Every request refreshes lastSeen (heartbeats included) and spends one token of the rate limit. */
  touch(s: Session): void {
    touch(this.core, s)
  }

  /** The user's oldest session on this node. */
  sessionOf(userId: number): Session | undefined {
    return this.core.sessions.first(userId)
  }

  /** Every session of the user on this node (one per device). */
  sessionsOf(userId: number): readonly Session[] {
    return this.core.sessions.of(userId)
  }

  get onlineCount(): number {
    return this.core.sessions.size
  }

  localSessions(): IterableIterator<Session> {
    return this.core.sessions.values()
  }

  whoami(s: Session): PresenceInfo {
    return this.registry.whoami(s)
  }

  who(s: Session): Promise<PresenceInfo[]> {
    return this.registry.who(s)
  }

  /** When a user was last seen; a user who blocked the asker is, to the asker, no such user. */
  lastSeen(
    s: Session,
    who: Address,
  ): Promise<{ user: UserInfo; online: PresenceInfo | undefined; lastSeen: number | undefined }> {
    return this.registry.lastSeen(s, who)
  }

  watchPresence(s: Session, on: boolean): void {
    this.registry.watchPresence(s, on)
  }

  rename(s: Session, rawName: string): Promise<UserInfo> {
    return this.registry.rename(s, rawName)
  }

  /** The ids of the users online anywhere in the cluster. */
  async onlineUserIds(): Promise<number[]> {
    return (await this.core.bus.online()).map((p) => p.id)
  }

  /** The room: every online session but `except`'s, here and on other nodes. Returns how many here. */
  broadcast(ev: Outbound, except: number): number {
    return this.registry.broadcast(ev, except)
  }

  // ---------------------------------------------------------------- delivery (delivery.ts)

  send(s: Session, req: SendRequest): Promise<SendResult> {
    return this.delivery.send(s, req)
  }

  /** The adapter's socket drained below its high-water mark. */
  drained(s: Session): void {
    this.delivery.drained(s)
  }

  /** Poll: the oldest queued messages beyond the cursor ('take' removes them; 'peek' waits for ack()). */
  take(s: Session, max: number, mode: 'take' | 'peek' = 'take', waitMs = 0): Promise<Message[]> {
    return this.delivery.take(s, max, mode, waitMs)
  }

  /**
   * The device has the message: its cursor advances; the first of the user's devices to acknowledge it tells the
   * sender (200). False when this device had it acknowledged already (or there is no such message).
   */
  ack(s: Session, seq: number): Promise<boolean> {
    return this.delivery.ack(s, seq)
  }

  /** The message at `msg.seq` was read: its sender, if it asked, is told 210 once; the user's other devices learn it. */
  markRead(s: Session, msg: { seq: number }): Promise<void> {
    return this.delivery.markRead(s, msg.seq)
  }

  /** A page of history, newest first: with a user (`with` a user or name), a topic, or everything. */
  history(
    s: Session,
    q: { with?: Address | undefined; before?: number; limit?: number },
  ): Promise<{ messages: Message[]; more: boolean }> {
    return this.upkeep.history(s, q)
  }

  /** A message this session was handed and has not acknowledged (for markRead by seq). */
  inflightMessage(s: Session, seq: number): Message | undefined {
    return this.delivery.inflightMessage(s, seq)
  }

  // ---------------------------------------------------------------- the directory (directory.ts)

  /** Look a user up by id or name (adapters use this to render and resolve addresses). */
  findUser(who: { id: number } | { name: string }): Promise<UserInfo | undefined> {
    return this.directory.findUser(who)
  }

  /** Is `sender` blocked by `recipient`? */
  isBlocked(recipient: number, sender: number): Promise<boolean> {
    return this.directory.isBlocked(recipient, sender)
  }

  subscribe(s: Session, rawTopic: string): Promise<boolean> {
    return this.directory.subscribe(s, rawTopic)
  }

  unsubscribe(s: Session, rawTopic: string): Promise<boolean> {
    return this.directory.unsubscribe(s, rawTopic)
  }

  subscriptions(s: Session): Promise<string[]> {
    return this.directory.subscriptions(s)
  }

  topics(s: Session): Promise<{ topic: string; subscribers: number }[]> {
    return this.directory.topics(s)
  }

  /** Every topic with its subscriber count, for a gateway (no session asks). */
  topicList(): Promise<{ topic: string; subscribers: number }[]> {
    return this.directory.topicList()
  }

  /** The ids subscribed to a topic (a normalised name). */
  topicSubscribers(topic: string): Promise<number[]> {
    return this.directory.subscribers(topic)
  }

  block(s: Session, who: Address): Promise<UserInfo> {
    return this.directory.block(s, who)
  }

  unblock(s: Session, who: Address): Promise<UserInfo> {
    return this.directory.unblock(s, who)
  }

  blocked(s: Session): Promise<UserInfo[]> {
    return this.directory.blocked(s)
  }

  /** Delete the account: every device goes, the name is released, the log dropped, senders that asked told (404). */
  deleteAccount(s: Session): Promise<void> {
    return this.accounts.delete(s)
  }

  // ---------------------------------------------------------------- conversations (conversations.ts)

  requestConversation(s: Session, target: Address): Promise<string> {
    return this.conversations.request(s, target)
  }

  answerConversation(s: Session, convId: string, accept: boolean): void {
    this.conversations.answer(s, convId, accept)
  }

  conversationSend(s: Session, convId: string, body: Buffer): void {
    this.conversations.send(s, convId, body)
  }

  closeConversation(s: Session, convId: string): void {
    this.conversations.close(s, convId)
  }

  // ---------------------------------------------------------------- operations

  async stats(): Promise<BrokerStats> {
    return stats(this.core, this.startedAt)
  }

  metrics(): MetricsSnapshot {
    return metrics(this.core)
  }

  /** Registered users (all nodes). */
  countUsers(): Promise<number> {
    return this.core.store.countUsers()
  }

  /** What no device of a user has acknowledged (for metrics and the web page's unread counts). */
  queueStats(userId: number): Promise<{ count: number; bytes: number }> {
    return this.core.store.queueStats(userId)
  }

  /** Is the store answering? */
  health(): Promise<Health> {
    return health(this.core)
  }

  // ---------------------------------------------------------------- wiring

  private busOnMessage(m: BusMessage): void {
    switch (m.type) {
      case 'wake':
        this.delivery.woken(m.user, m.msgs)
        return
      case 'event': {
        const here = this.core.sessions.of(m.to)
        if (here.length === 0) return
        for (const s of here) if (!s.sendOnly) this.registry.emit(s, m.ev)
        if (m.ev.type === 'conversation') this.conversations.mirror(m.ev.ev, m.to)
        return
      }
      case 'receipt':
        this.receipts.arrived(m.to, m.receipt, m.pushed === true)
        return
      case 'broadcast':
        if (m.ev.type === 'rename') this.directory.forgetUser(m.ev.user.id, m.ev.oldName)
        if (m.ev.type === 'presence') this.registry.presenceFromBus(m.ev, m.except)
        else this.registry.broadcastLocal(m.ev, m.except)
        return
      case 'kick':
        this.registry.kicked(m)
        return
      case 'revoke':
        this.registry.revoked(m)
        return
    }
  }

  private async reap(): Promise<void> {
    const now = this.core.now()
    this.registry.reapIdle(now, this.idleTimeoutMs)
    await this.upkeep.reap(now, this.dedupeRetentionMs, {
      before: now - this.retentionMs,
      keep: this.retentionMessages,
    })
    await this.accounts.sweepTokenless(now)
  }
}

export type { ReceiptStatusCode }
