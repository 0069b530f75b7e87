/**
 * The page's model: one SwitchboardClient over the WebSocket endpoint (/v1/ws, the native protocol's
 * frames), and the state the views draw — who is online, conversations with their messages and unread
 * counts, topics, live-chat requests, each sent message's receipt. Views call the methods and re-render on
 * `subscribe`. Delivery across network drops is the SDK's: it reconnects with the token, resends what the
 * server had not accepted and drops messages it already acknowledged.
 *
 * Several devices (issue 11): a name with a password logs in from another browser as a new device (POST
 * /v1/login, then the SDK with that device's token). A conversation that this browser has no history of is
 * loaded from the server's (GET /v1/history), both directions; what the user sent from another device comes
 * as a sent copy (flag SENT) and shows as ours. The REST calls carry "<id>.<token>" and are one-shot on the
 * server: they do not replace this page's WebSocket session.
 */
import {
  ALL_ID,
  MsgIdGenerator,
  SwitchboardClient,
  SwitchboardError,
  type ConversationEventInfo,
  type IncomingMessage,
  type ReceiptEvent,
  type SendResult,
  type Target,
} from '../../src/client/client.js'
import { forgetLast, LocalCredentialStore, loadHistory, saveHistory } from './storage.js'

/** A sent message's state, in the order it can only move forward. */
export const STATUS_RANK = { failed: -1, sending: 0, sent: 1, 'not-yet': 2, stored: 2, delivered: 3, read: 4 } as const
export type SendStatus = keyof typeof STATUS_RANK

/** The words for each state: shown on hover over the ticks, and as text when a message failed. */
export const STATUS_LABEL: Record<SendStatus, string> = {
  failed: 'not sent',
  sending: 'sending…',
  sent: 'sent: the server accepted it',
  'not-yet': 'accepted, not delivered yet',
  stored: 'stored: it waits for them',
  delivered: 'delivered',
  read: 'read',
}

/** How many ticks a state shows: none while sending, ✓ accepted or stored, ✓✓ delivered (coloured when read). */
export const TICKS: Record<SendStatus, 0 | 1 | 2> = {
  failed: 0,
  sending: 0,
  sent: 1,
  'not-yet': 1,
  stored: 1,
  delivered: 2,
  read: 2,
}

/** The server's limits the page checks input against (GET /v1/limits), until it answers the defaults. */
export interface ServerLimits {
  maxNameBytes: number
  maxTopicBytes: number
  maxTextBytes: number
  maxFileBytes: number
}

/** What the page knows of a person it has looked up: online now, or when last seen (0: never). */
export interface PersonInfo {
  name: string
  /** false: the server knows no user by this name (any more: deleted, or renamed). */
  exists: boolean
  online: boolean
  lastSeen: number
}

export interface FileRef {
  fileId: string
  name: string
  size: number
}

export interface ChatMessage {
  /** Unique in this page: the msgId for our own, `in:<seq|msgId>` for others'. */
  key: string
  dir: 'in' | 'out' | 'system'
  from: string
  text: string
  ts: number
  msgId?: number
  status?: SendStatus
  /** e.g. "to 3" for the room, the error text when it failed */
  detail?: string
  file?: FileRef
  /** A transfer under way (upload of ours, or a download). */
  progress?: { bytes: number; total: number; dir: 'up' | 'down' } | undefined
  /** Said in a live chat (not stored, no receipts). */
  live?: boolean
}

export interface OnlineUser {
  id: number
  name: string
  protocol: string
}

export interface LiveRequest {
  convId: string
  peer: string
  expiresAt?: number
}

export type ConnState = 'signed-out' | 'connecting' | 'online' | 'reconnecting' | 'closed'

/** Conversation keys: the room, a user by name, a topic. */
export const ROOM = 'room'
export const userKey = (name: string): string => `u:${name}`
export const topicKey = (topic: string): string => `t:${topic}`

export function describeKey(key: string): { kind: 'room' | 'user' | 'topic'; name: string } {
  if (key === ROOM) return { kind: 'room', name: 'Everyone' }
  if (key.startsWith('t:')) return { kind: 'topic', name: key.slice(2) }
  return { kind: 'user', name: key.slice(2) }
}

/** The HTTP base of the server the page talks to (the page's own origin, or the one ?server= names). */
export function httpBase(ws = wsUrl()): string {
  const u = new URL(ws)
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:'
  u.pathname = u.pathname.replace(/\/v1\/ws\/?$/, '/')
  u.search = ''
  return u.toString().replace(/\/$/, '')
}

export function wsUrl(): string {
  // ?server=ws://host:port/v1/ws lets a page served elsewhere (vite dev) talk to a running server.
  const q = new URLSearchParams(location.search).get('server')
  if (q) return q
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`
}

/** Errors a person can act on. */
export function explain(err: unknown): string {
  if (err instanceof SwitchboardError) {
    switch (err.code) {
      case 'SB_ERR_NAME_TAKEN':
        return 'That name is taken. Pick another one (or log in from the browser that registered it).'
      case 'SB_ERR_NAME_INVALID':
        return `That name cannot be used: ${err.message}`
      case 'SB_ERR_AUTH':
        return 'The remembered login is no longer valid (the account may have been deleted, or this browser signed out elsewhere). Register a name again, or log in with its password.'
      case 'SB_ERR_PASSWORD_INVALID':
        return `That password cannot be used: ${err.message}.`
      case 'SB_ERR_CONNECT':
        return 'The server cannot be reached. Check that it is running, then try again.'
      case 'SB_ERR_UNKNOWN_RECIPIENT':
        return `${err.message}. They need to register first.`
      default:
        // The server's message names the limit already ("longer than maxNameBytes (25 bytes)"): say it once.
        return err.limit && !err.message.includes(err.limit) ? `${err.message} (limit: ${err.limit})` : err.message
    }
  }
  return err instanceof Error ? err.message : String(err)
}

export class ChatModel {
  state: ConnState = 'signed-out'
  me: { id: number; name: string } | undefined
  online = new Map<number, OnlineUser>()
  convs: Record<string, ChatMessage[]> = {}
  unread: Record<string, number> = {}
  active = ROOM
  subscribed: string[] = []
  topics: { topic: string; subscribers: number }[] = []
  requests: LiveRequest[] = []
  /** Open live chats by peer name → conversation id; `pending` are ours, not answered yet. */
  live: Record<string, string> = {}
  pending: Record<string, string> = {}
  banner: { text: string; tone: 'info' | 'warn' | 'error' } | undefined
  /** While reconnecting: the SDK's attempt number (shown as data-attempt, not in the words). */
  reconnectAttempt = 0
  loginError: string | undefined
  /** The server's limits (from GET /v1/limits once it answers). */
  limits: ServerLimits = { maxNameBytes: 25, maxTopicBytes: 64, maxTextBytes: 64 * 1024, maxFileBytes: 100 * 1024 * 1024 }
  limitsLoaded = false
  /** People looked up before their conversation opened, by name. */
  people: Record<string, PersonInfo> = {}
  /** Conversations whose history is being loaded from the server (GET /v1/history), shown as loading. */
  loadingHistory: Record<string, boolean> = {}
  /** Names by user id, learned from who, presence and messages: a sent copy names its peer by id only. */
  private names = new Map<number, string>()

  readonly server = wsUrl()
  private client: SwitchboardClient | undefined
  private readonly ids = new MsgIdGenerator()
  private readonly listeners = new Set<() => void>()
  private saveTimer: ReturnType<typeof setTimeout> | undefined

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  private changed(): void {
    for (const fn of this.listeners) fn()
  }

  private persistSoon(): void {
    if (this.saveTimer !== undefined || this.me === undefined) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      if (this.me) saveHistory(this.server, this.me.id, this.convs)
    }, 300)
  }

  /** Ask the server for its limits (no login needed); the login form checks the name against them. */
  async loadLimits(): Promise<void> {
    try {
      const r = await fetch(`${httpBase(this.server)}/v1/limits`)
      if (!r.ok) return
      const l = (await r.json()) as Partial<ServerLimits>
      for (const k of ['maxNameBytes', 'maxTopicBytes', 'maxTextBytes', 'maxFileBytes'] as const) {
        const v = l[k]
        if (typeof v === 'number' && v > 0) this.limits[k] = v
      }
      this.limitsLoaded = true
      this.changed()
    } catch {
      // An older server, or none yet: the defaults stand and the server still has the last word.
    }
  }

  // ------------------------------------------------------------------ session

  /**
   * Enter with a name: the token this browser remembers for it, else a new registration. With a password, a
   * new registration gets it (PUT /v1/password); a name this browser does not know but the server does is
   * then told apart by loginWithPassword.
   */
  async login(name: string, password = ''): Promise<void> {
    const ok = await this.connect(name)
    if (!ok || password === '' || !this.registeredNow) return
    try {
      await this.setPassword(password)
    } catch (err) {
      this.say(`Registered, but the password was not set: ${explain(err)}`, 'error')
    }
  }

  /** Log in to an existing name with its password: a new device of it, with its own token, remembered here. */
  async loginWithPassword(rawName: string, password: string): Promise<void> {
    const name = rawName.trim()
    this.loginError = undefined
    this.state = 'connecting'
    this.changed()
    try {
      const r = await fetch(`${httpBase(this.server)}/v1/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name, password, label: browserLabel() }),
      })
      const body = (await r.json().catch(() => ({}))) as { id?: number; name?: string; token?: string; detail?: string }
      if (!r.ok || body.token === undefined || body.id === undefined) {
        this.state = 'signed-out'
        this.loginError =
          r.status === 401
            ? 'Wrong name or password.'
            : r.status === 429
              ? `Too many failed attempts: try again in ${r.headers.get('retry-after') ?? 'a few'} s.`
              : (body.detail ?? `The server answered ${r.status}.`)
        this.changed()
        return
      }
      const secret = body.token.slice(body.token.indexOf('.') + 1)
      new LocalCredentialStore().set(this.server, { id: body.id, name: body.name ?? name, token: secret })
    } catch (err) {
      this.state = 'signed-out'
      this.loginError = explain(err)
      this.changed()
      return
    }
    await this.connect(name)
  }

  /** Set or change the password (changing one needs the current one). Rejects with the server's reason. */
  async setPassword(password: string, current?: string): Promise<void> {
    const body: { password: string; current?: string } = { password }
    if (current !== undefined && current !== '') body.current = current
    const r = await this.rest('PUT', '/v1/password', body)
    if (!r.ok) {
      const p = (await r.json().catch(() => ({}))) as { detail?: string; code?: string }
      throw new Error(r.status === 401 ? 'The current password is wrong.' : (p.detail ?? `the server answered ${r.status}`))
    }
  }

  /** A REST call as this device ("<id>.<token>"): one-shot on the server, so this page's session stays. */
  private rest(method: string, path: string, body?: unknown): Promise<Response> {
    const c = this.client
    if (!c) return Promise.reject(new Error('not connected'))
    const init: RequestInit = { method, headers: { authorization: `Bearer ${c.id}.${c.token}` } }
    if (body !== undefined) {
      init.body = JSON.stringify(body)
      ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
    }
    return fetch(`${httpBase(this.server)}${path}`, init)
  }

  /** Whether the last connect() registered the name (rather than logging in with a remembered token). */
  private registeredNow = false

  private async connect(name: string): Promise<boolean> {
    this.loginError = undefined
    this.state = 'connecting'
    this.changed()
    const known = new LocalCredentialStore().get(this.server, name.trim())
    this.registeredNow = known === undefined
    let c: SwitchboardClient
    try {
      c = await SwitchboardClient.connect({
        url: this.server,
        name: name.trim(),
        credentials: new LocalCredentialStore(),
        // Acknowledged by the page, so a message on screen can be marked read first (READ needs it unacknowledged).
        autoAck: false,
        reconnect: { initialDelayMs: 200, maxDelayMs: 5000 },
      })
    } catch (err) {
      if (err instanceof SwitchboardError && err.code === 'SB_ERR_AUTH') {
        new LocalCredentialStore().delete(this.server, name.trim())
        forgetLast()
      }
      this.state = 'signed-out'
      this.loginError =
        err instanceof SwitchboardError && err.code === 'SB_ERR_NAME_TAKEN'
          ? 'That name is taken. If it is yours, give its password and choose "Log in with password".'
          : explain(err)
      this.changed()
      return false
    }
    this.client = c
    this.me = { id: c.id, name: c.name }
    this.names.set(c.id, c.name)
    this.convs = loadHistory(this.server, c.id)
    this.convs[ROOM] ??= []
    this.state = 'online'
    c.on('message', (m) => this.onMessage(m))
    c.on('receipt', (r) => this.onReceipt(r))
    c.on('presence', (p) => {
      this.names.set(p.id, p.name)
      if (p.online) this.online.set(p.id, { id: p.id, name: p.name, protocol: p.protocol })
      else this.online.delete(p.id)
      const known = this.people[p.name]
      if (known) Object.assign(known, { exists: true, online: p.online, lastSeen: p.online ? known.lastSeen : Date.now() })
      this.changed()
    })
    c.on('rename', (r) => {
      const u = this.online.get(r.id)
      if (u) u.name = r.newName
      if (r.id === this.me?.id) this.me.name = r.newName
      this.changed()
    })
    c.on('conversation', (ev) => this.onConversation(ev))
    c.on('notice', (n) => this.say(`${n.text}`, n.code === 'shutdown' ? 'warn' : 'info'))
    // One status line for the whole outage: why (the server's reason when it gave one), not a count of attempts.
    c.on('reconnecting', (ev) => {
      this.state = 'reconnecting'
      this.reconnectAttempt = ev.attempt
      const why = ev.text ? `The server said: ${ev.text}.` : 'Connection lost.'
      this.banner = {
        text: `${why} Reconnecting… messages you send now go out once it is back.`,
        tone: 'warn',
      }
      this.changed()
    })
    c.on('reconnected', (ev) => {
      this.state = 'online'
      this.reconnectAttempt = 0
      this.banner = { text: ev.resent > 0 ? `Reconnected; ${ev.resent} waiting message(s) sent.` : 'Reconnected.', tone: 'info' }
      setTimeout(() => {
        if (this.banner?.text.startsWith('Reconnected')) {
          this.banner = undefined
          this.changed()
        }
      }, 4000)
      // Presence events were missed while away: ask again.
      void this.refresh()
      this.changed()
    })
    c.on('error', (e) => this.say(explain(e.error), 'error'))
    c.on('closed', (ev) => {
      if (this.client !== c) return
      this.client = undefined
      this.state = 'closed'
      this.banner =
        ev.reason === 'ended'
          ? undefined
          : {
              text:
                ev.reason === 'replaced'
                  ? 'This name logged in somewhere else; this page is signed out.'
                  : `Disconnected: ${ev.reason}${ev.text ? ` (${ev.text})` : ''}`,
              tone: 'error',
            }
      this.changed()
    })
    document.addEventListener('visibilitychange', () => this.markActiveRead())
    await this.refresh()
    this.changed()
    return true
  }

  /** Who is online, topics, our subscriptions; presence events from now on. */
  async refresh(): Promise<void> {
    const c = this.client
    if (!c) return
    try {
      await c.watchPresence(true)
      const [who, subs, topics] = await Promise.all([c.who(), c.subscriptions(), c.topics()])
      for (const u of who) this.names.set(u.id, u.name)
      this.online = new Map(who.filter((u) => u.id !== c.id).map((u) => [u.id, { id: u.id, name: u.name, protocol: u.protocol }]))
      this.subscribed = subs.sort()
      this.topics = topics
      for (const t of subs) this.convs[topicKey(t)] ??= []
    } catch (err) {
      this.say(explain(err), 'error')
    }
    this.changed()
  }

  async logout(): Promise<void> {
    const c = this.client
    this.client = undefined
    if (this.me) saveHistory(this.server, this.me.id, this.convs)
    this.state = 'signed-out'
    this.me = undefined
    this.online.clear()
    this.convs = {}
    this.unread = {}
    this.banner = undefined
    this.live = {}
    this.pending = {}
    this.requests = []
    this.active = ROOM
    this.changed()
    await c?.close()
  }

  say(text: string, tone: 'info' | 'warn' | 'error' = 'info'): void {
    this.banner = { text, tone }
    this.changed()
  }

  dismissBanner(): void {
    this.banner = undefined
    this.changed()
  }

  // ------------------------------------------------------------------ conversations

  /**
   * Open a conversation with a person by name, after asking the server whether that name exists (and when
   * it was last seen). Resolves to an error to show instead when it does not; the conversation stays closed.
   */
  async openPerson(rawName: string): Promise<string | undefined> {
    const c = this.client
    const name = rawName.trim()
    if (!c || name === '') return undefined
    if (name === this.me?.name) return 'That is you.'
    try {
      const r = await c.lastSeen(name)
      this.people[r.user.name] = { name: r.user.name, exists: true, online: r.online, lastSeen: r.user.lastSeen }
      this.open(userKey(r.user.name), false)
      return undefined
    } catch (err) {
      if (err instanceof SwitchboardError && (err.code === 'SB_ERR_UNKNOWN_RECIPIENT' || err.code === 'SB_ERR_NAME_INVALID'))
        return `There is no user named ${name}.`
      return explain(err)
    }
  }

  /** Open a conversation; a person's is looked up again (online, last seen, or gone) unless just done. */
  open(key: string, lookUp = true): void {
    this.active = key
    const fresh = (this.convs[key] ?? []).length === 0
    this.convs[key] ??= []
    this.unread[key] = 0
    this.changed()
    const d = describeKey(key)
    if (lookUp && d.kind === 'user') void this.lookUp(d.name)
    // Nothing of it in this browser (a new device, or cleared storage): the server's history fills it in.
    if (fresh && d.kind !== 'room') void this.loadServerHistory(key)
  }

  /** The last page of a conversation's history from the server, merged in before what arrived meanwhile. */
  async loadServerHistory(key: string): Promise<void> {
    const me = this.me
    if (!me || this.loadingHistory[key]) return
    const d = describeKey(key)
    this.loadingHistory[key] = true
    this.changed()
    try {
      const w = d.kind === 'topic' ? `#${d.name}` : d.name
      const r = await this.rest('GET', `/v1/history?limit=100&with=${encodeURIComponent(w)}`)
      if (!r.ok) return
      const page = (await r.json()) as { messages: HistoryMessage[] }
      const list = (this.convs[key] ??= [])
      const have = new Set(list.map((m) => m.key))
      const older: ChatMessage[] = []
      for (const h of page.messages.slice().reverse()) {
        const m = this.fromHistory(h, me, d.name)
        if (m !== undefined && !have.has(m.key)) older.push(m)
      }
      if (older.length > 0) {
        this.convs[key] = [...older, ...list]
        this.persistSoon()
      }
    } catch {
      // the server is away: the conversation starts empty, live messages still come
    } finally {
      delete this.loadingHistory[key]
      this.changed()
    }
  }

  private fromHistory(h: HistoryMessage, me: { id: number; name: string }, peer: string): ChatMessage | undefined {
    if (h.kind !== 'text' && h.kind !== 'file') return undefined
    const mine = h.from === me.id || (h.flags & SENT) !== 0
    const m: ChatMessage = {
      key: mine ? `sent:${h.seq}` : `in:${h.seq}`,
      dir: mine ? 'out' : 'in',
      from: mine ? me.name : h.fromName || peer,
      text: h.text ?? '',
      ts: h.ts,
    }
    if (mine) {
      m.msgId = h.msgId
      m.status = 'sent'
    }
    if (h.kind === 'file') {
      try {
        const f = JSON.parse(h.text ?? '{}') as { fileId?: string; name?: string; size?: number; text?: string }
        if (f.fileId !== undefined) m.file = { fileId: f.fileId, name: f.name ?? 'file', size: f.size ?? 0 }
        m.text = f.text ?? ''
      } catch {
        // not the announcement's JSON: shown as text
      }
    }
    return m
  }

  private async lookUp(name: string): Promise<void> {
    const c = this.client
    if (!c) return
    try {
      const r = await c.lastSeen(name)
      this.people[name] = { name, exists: true, online: r.online, lastSeen: r.user.lastSeen }
    } catch (err) {
      if (!(err instanceof SwitchboardError && err.code === 'SB_ERR_UNKNOWN_RECIPIENT')) return
      this.people[name] = { name, exists: false, online: false, lastSeen: 0 }
    }
    this.changed()
  }

  private push(key: string, m: ChatMessage): void {
    ;(this.convs[key] ??= []).push(m)
    this.persistSoon()
  }

  private find(pred: (m: ChatMessage) => boolean): ChatMessage | undefined {
    for (const list of Object.values(this.convs)) for (const m of list) if (pred(m)) return m
    return undefined
  }

  private isLooking(key: string): boolean {
    return this.active === key && document.visibilityState === 'visible'
  }

  private markActiveRead(): void {
    if (document.visibilityState !== 'visible') return
    if ((this.unread[this.active] ?? 0) > 0) {
      this.unread[this.active] = 0
      this.changed()
    }
  }

  private onMessage(m: IncomingMessage): void {
    const c = this.client
    if (!c) return
    let key: string
    if (m.topic !== undefined) key = topicKey(m.topic)
    else if (m.to === ALL_ID) key = ROOM
    else key = userKey(m.fromName)
    const own = m.from === c.id
    if (own && m.seq !== 0 && (m.kind === 'text' || m.kind === 'file')) this.onSentCopy(m)
    if (!own && m.from !== 0) this.names.set(m.from, m.fromName)
    if (!own && m.kind !== 'receipt') {
      const text = m.kind === 'notice' ? `[${m.fromName || 'server'}] ${m.text}` : m.text
      const msg: ChatMessage = {
        key: `in:${m.seq || `${m.from}.${m.msgId}`}`,
        dir: 'in',
        from: m.fromName || 'server',
        text,
        ts: m.ts,
      }
      if (m.file) msg.file = { fileId: m.file.fileId, name: m.file.name, size: m.file.size }
      // A message redelivered after a lost ACK is dropped by the SDK; one restored from history is dropped here.
      if (!this.convs[key]?.some((x) => x.key === msg.key)) this.push(key, msg)
      const looking = this.isLooking(key)
      if (!looking) this.unread[key] = (this.unread[key] ?? 0) + 1
      // READ needs the message unacknowledged, so read (when on screen) comes before the ACK.
      if (looking && m.wantsReadReceipt && m.seq !== 0) c.markRead(m.seq)
    }
    if (m.seq !== 0) c.ack(m.seq)
    this.changed()
  }

  /**
   * A message this user sent from another device (a sent copy: on the wire its `to` is whom it went to):
   * shown as ours, in that conversation.
   */
  private onSentCopy(m: IncomingMessage): void {
    const me = this.me
    if (!me) return
    if (m.topic !== undefined) return this.fileSentCopy(topicKey(m.topic), m, me)
    // The wire names whom it went to in `to`; a server that leaves `to` as this user has it in the history's `peer`.
    if (m.to !== me.id) {
      const peer = this.names.get(m.to)
      if (peer !== undefined) this.fileSentCopy(userKey(peer), m, me)
      return
    }
    void this.rest('GET', `/v1/history?limit=1&before=${m.seq + 1}`)
      .then((r) => (r.ok ? (r.json() as Promise<{ messages: HistoryMessage[] }>) : undefined))
      .then((page) => {
        const h = page?.messages[0]
        const peer = h?.seq === m.seq && h.peer !== undefined ? this.names.get(h.peer) : undefined
        if (peer !== undefined && this.me === me) {
          this.fileSentCopy(userKey(peer), m, me)
          this.changed()
        }
      })
      .catch(() => undefined)
  }

  private fileSentCopy(key: string, m: IncomingMessage, me: { name: string }): void {
    const msg: ChatMessage = {
      key: `sent:${m.seq}`,
      dir: 'out',
      from: me.name,
      text: m.text,
      ts: m.ts,
      msgId: m.msgId,
      status: 'sent',
    }
    if (m.file) msg.file = { fileId: m.file.fileId, name: m.file.name, size: m.file.size }
    if (!this.convs[key]?.some((x) => x.key === msg.key)) this.push(key, msg)
  }

  private setStatus(msg: ChatMessage, status: SendStatus, detail?: string): void {
    if (status !== 'failed' && STATUS_RANK[status] < STATUS_RANK[msg.status ?? 'sending']) return
    msg.status = status
    if (detail !== undefined) msg.detail = detail
    this.persistSoon()
  }

  private onReceipt(r: ReceiptEvent): void {
    const msg = this.find((m) => m.dir === 'out' && m.msgId === r.msgId)
    if (!msg) return
    const status: SendStatus | undefined =
      r.status === 210
        ? 'read'
        : r.status === 200
          ? 'delivered'
          : r.status === 300
            ? 'not-yet'
            : r.status === 202
              ? 'stored'
              : undefined
    if (status) this.setStatus(msg, status)
    else this.setStatus(msg, 'failed', `${r.statusName} (${r.status})`)
    this.changed()
  }

  private applyResult(msg: ChatMessage, r: SendResult, direct: boolean): void {
    if (r.status !== undefined) {
      this.onReceipt({
        msgId: msg.msgId!,
        status: r.status,
        statusName: String(r.status),
        recipient: 0,
        recipientName: '',
        seq: r.seq,
        at: Date.now(),
      })
      return
    }
    if (r.accepted === 'delivered') this.setStatus(msg, 'delivered', direct ? undefined : `to ${r.recipients}`)
    else if (r.accepted === 'stored' || r.accepted === 'queued')
      this.setStatus(msg, direct ? 'stored' : 'sent', direct ? undefined : `to ${r.recipients}`)
    else this.setStatus(msg, 'sent', direct ? undefined : `to ${r.recipients}`)
    this.changed()
  }

  private target(key: string): Target {
    const d = describeKey(key)
    if (d.kind === 'room') return { kind: 'all' }
    if (d.kind === 'topic') return { kind: 'topic', topic: d.name }
    return { kind: 'name', name: d.name }
  }

  /** Send text to the open conversation (or say it in the live chat with that user). */
  sendText(text: string): void {
    const c = this.client
    const me = this.me
    if (!c || !me || text.trim() === '') return
    const key = this.active
    const d = describeKey(key)
    const liveId = d.kind === 'user' ? this.live[d.name] : undefined
    if (liveId !== undefined) {
      c.say(liveId, text)
      this.push(key, { key: `live:${this.ids.next()}`, dir: 'out', from: me.name, text, ts: Date.now(), live: true })
      this.changed()
      return
    }
    const msgId = this.ids.next()
    const msg: ChatMessage = { key: `out:${msgId}`, dir: 'out', from: me.name, text, ts: Date.now(), msgId, status: 'sending' }
    this.push(key, msg)
    this.changed()
    const direct = d.kind === 'user'
    c.send(this.target(key), text, { msgId, readReceipt: direct }).then(
      (r) => this.applyResult(msg, r, direct),
      (err: unknown) => {
        this.setStatus(msg, 'failed', explain(err))
        this.changed()
      },
    )
  }

  /** Send a failed text message again, in its own conversation, as a new message (a new msgId). */
  retry(msg: ChatMessage): void {
    const c = this.client
    if (!c || msg.status !== 'failed' || msg.file !== undefined) return
    const key = Object.keys(this.convs).find((k) => this.convs[k]!.includes(msg))
    if (key === undefined) return
    const direct = describeKey(key).kind === 'user'
    msg.msgId = this.ids.next()
    msg.status = 'sending'
    delete msg.detail
    msg.ts = Date.now()
    this.persistSoon()
    this.changed()
    c.send(this.target(key), msg.text, { msgId: msg.msgId, readReceipt: direct }).then(
      (r) => this.applyResult(msg, r, direct),
      (err: unknown) => {
        this.setStatus(msg, 'failed', explain(err))
        this.changed()
      },
    )
  }

  /** Upload a file to the open conversation, with progress. */
  async sendFile(file: File, text = ''): Promise<void> {
    const c = this.client
    const me = this.me
    if (!c || !me) return
    const key = this.active
    const direct = describeKey(key).kind === 'user'
    const msgId = this.ids.next()
    const msg: ChatMessage = {
      key: `out:${msgId}`,
      dir: 'out',
      from: me.name,
      text,
      ts: Date.now(),
      msgId,
      status: 'sending',
      file: { fileId: '', name: file.name, size: file.size },
      progress: { bytes: 0, total: file.size, dir: 'up' },
    }
    this.push(key, msg)
    this.changed()
    try {
      const r = await c.sendFile(
        this.target(key),
        { name: file.name, size: file.size, chunks: fileChunks(file) },
        {
          msgId,
          text,
          readReceipt: direct,
          onProgress: (p) => {
            msg.progress = { bytes: p.bytes, total: p.total, dir: 'up' }
            this.changed()
          },
        },
      )
      msg.progress = undefined
      if (r.fileId && msg.file) msg.file.fileId = r.fileId
      this.applyResult(msg, r, direct)
    } catch (err) {
      msg.progress = undefined
      this.setStatus(msg, 'failed', explain(err))
      this.changed()
    }
  }

  /** Download a file into the browser's downloads, with progress. */
  async download(msg: ChatMessage): Promise<void> {
    const c = this.client
    const f = msg.file
    if (!c || !f || !f.fileId || msg.progress) return
    const parts: Uint8Array[] = []
    msg.progress = { bytes: 0, total: f.size, dir: 'down' }
    this.changed()
    try {
      const info = await c.download(f.fileId, (chunk) => void parts.push(chunk.slice()), {
        onProgress: (p) => {
          msg.progress = { bytes: p.bytes, total: p.total, dir: 'down' }
          this.changed()
        },
      })
      const url = URL.createObjectURL(new Blob(parts as BlobPart[]))
      const a = document.createElement('a')
      a.href = url
      a.download = info.name || f.name
      document.body.append(a)
      a.click()
      a.remove()
      setTimeout(() => URL.revokeObjectURL(url), 60_000)
    } catch (err) {
      this.say(`Download of ${f.name} failed: ${explain(err)}`, 'error')
    } finally {
      msg.progress = undefined
      this.changed()
    }
  }

  // ------------------------------------------------------------------ topics

  async subscribeTopic(topic: string): Promise<void> {
    const c = this.client
    const t = topic.trim()
    if (!c || t === '') return
    try {
      await c.subscribe(t)
      if (!this.subscribed.includes(t)) this.subscribed = [...this.subscribed, t].sort()
      this.topics = await c.topics()
      this.open(topicKey(t))
    } catch (err) {
      this.say(explain(err), 'error')
    }
  }

  async unsubscribeTopic(topic: string): Promise<void> {
    const c = this.client
    if (!c) return
    try {
      await c.unsubscribe(topic)
      this.subscribed = this.subscribed.filter((x) => x !== topic)
      this.topics = await c.topics()
      if (this.active === topicKey(topic)) this.active = ROOM
      this.changed()
    } catch (err) {
      this.say(explain(err), 'error')
    }
  }

  // ------------------------------------------------------------------ live chats (conversation requests)

  async requestLive(peer: string): Promise<void> {
    const c = this.client
    if (!c) return
    try {
      const id = await c.requestConversation(peer)
      this.pending[peer] = id
      this.system(userKey(peer), `Asked ${peer} for a live chat…`)
    } catch (err) {
      this.say(explain(err), 'error')
    }
    this.changed()
  }

  answer(req: LiveRequest, accept: boolean): void {
    const c = this.client
    if (!c) return
    if (accept) c.accept(req.convId)
    else c.decline(req.convId)
    this.requests = this.requests.filter((r) => r.convId !== req.convId)
    if (accept) this.open(userKey(req.peer))
    this.changed()
  }

  endLive(peer: string): void {
    const id = this.live[peer]
    if (id === undefined) return
    this.client?.closeConversation(id)
    delete this.live[peer]
    this.system(userKey(peer), 'You ended the live chat.')
    this.changed()
  }

  private system(key: string, text: string): void {
    this.push(key, { key: `sys:${this.ids.next()}`, dir: 'system', from: '', text, ts: Date.now() })
  }

  private onConversation(ev: ConversationEventInfo): void {
    const peer = ev.peer.name
    const key = userKey(peer)
    switch (ev.event) {
      case 'request': {
        const r: LiveRequest = { convId: ev.convId, peer }
        if (ev.expiresAt !== undefined) r.expiresAt = ev.expiresAt
        this.requests = [...this.requests, r]
        break
      }
      case 'accepted':
        delete this.pending[peer]
        this.live[peer] = ev.convId
        this.system(key, `Live chat with ${peer} is open: messages go straight to them and are not stored.`)
        break
      case 'declined':
        delete this.pending[peer]
        this.system(key, `${peer} declined the live chat.`)
        break
      case 'message':
        this.push(key, { key: `live:${this.ids.next()}`, dir: 'in', from: peer, text: ev.text ?? '', ts: Date.now(), live: true })
        if (!this.isLooking(key)) this.unread[key] = (this.unread[key] ?? 0) + 1
        break
      case 'closed':
      case 'expired':
        delete this.pending[peer]
        this.requests = this.requests.filter((r) => r.convId !== ev.convId)
        if (this.live[peer] === ev.convId) delete this.live[peer]
        this.system(
          key,
          ev.event === 'expired'
            ? `The live chat request with ${peer} expired.`
            : `The live chat with ${peer} ended${ev.reason ? `: ${ev.reason}` : ''}.`,
        )
        break
      default:
        break
    }
    this.changed()
  }
}

/** Flag 8 of a message: a sent copy, in the sender's own log (src/core/types.ts Flag.SENT). */
const SENT = 8

/** A message as GET /v1/history returns it (the HTTP API's Message). */
interface HistoryMessage {
  seq: number
  msgId: number
  from: number
  fromName: string
  kind: string
  ts: number
  flags: number
  peer?: number
  topic?: string
  text?: string
}

/** What this device is called in the device list. */
function browserLabel(): string {
  const ua = navigator.userAgent
  const browser = /Firefox\//.test(ua)
    ? 'Firefox'
    : /Edg\//.test(ua)
      ? 'Edge'
      : /Chrome\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : 'browser'
  return `web (${browser})`
}

/** A File as the SDK's chunk stream, read a slice at a time (never whole in memory). */
async function* fileChunks(file: File, size = 256 * 1024): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < file.size; off += size) yield new Uint8Array(await file.slice(off, off + size).arrayBuffer())
}
