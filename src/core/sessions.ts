/**
 * The session registry: who is attached to this node (register, login, claim, two-phase attach and ready),
 * ending sessions (detach, kick, the idle reaper), presence (who, whoami, last seen, presence events), renames,
 * and the live events that go to sessions without a queue (the room, events for one user).
 *
 * It knows sessions, not messages: what must happen to a session's messages when it starts or ends (pump its
 * queue, tell senders 300, close its conversations) the facade hands it as `hooks`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { BrokerError } from './errors.js'
import { describe, guard, refuseIfClosing, type Core } from './context.js'
import { normalizeName, type Directory } from './directory.js'
import { HELD_MAX, Session, type DeliveryMode } from './session.js'
import type { Address, CloseReason, Outbound, PresenceInfo, SessionSink, UserInfo } from './types.js'
import type { UserRecord } from '../store/store.js'

const TOKEN_BYTES = 24

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex')
  const y = Buffer.from(b, 'hex')
  return x.length === y.length && timingSafeEqual(x, y)
}

export interface SessionHooks {
  /** The adapter said the session is ready: start pushing its queue. */
  started(s: Session): void
  /** The session ended (after it left the registry, before its sink is closed). */
  ended(s: Session): void
}

export class SessionRegistry {
  hooks: SessionHooks = { started() {}, ended() {} }

  constructor(
    private readonly core: Core,
    private readonly directory: Directory,
  ) {}

  get(userId: number): Session | undefined {
    return this.core.sessions.get(userId)
  }

  // ---------------------------------------------------------------- attach

  /** Register a new name. Returns the session and the token that lets the owner come back. */
  async register(
    rawName: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
  ): Promise<{ session: Session; token: string; user: UserInfo }> {
    refuseIfClosing(this.core)
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    const token = randomBytes(TOKEN_BYTES).toString('base64url')
    const rec = await this.core.store.createUser(name, hashToken(token), this.core.now())
    this.core.log.info({ user: rec.id, name, protocol }, 'registered')
    const session = await this.attach(rec, protocol, sink, mode)
    return { session, token, user: { id: rec.id, name: rec.name } }
  }

  /** Come back to a name with its token. A live session of the same user is replaced. */
  async login(
    who: { id: number } | { name: string },
    token: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
  ): Promise<Session> {
    refuseIfClosing(this.core)
    const store = this.core.store
    const rec = 'id' in who ? await store.userById(who.id) : await store.userByName(who.name.normalize('NFC'))
    if (rec === undefined || rec.tokenHash === null || !sameHash(rec.tokenHash, hashToken(token)))
      throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong token')
    return this.attach(rec, protocol, sink, mode)
  }

  /**
   * Legacy gateways carry no token: they claim a name. A name registered with a token (native, HTTP) cannot
   * be taken from a gateway; a tokenless name is created on first use and is in use while a session holds it.
   */
  async claim(rawName: string, protocol: string, sink: SessionSink, hidden: boolean): Promise<Session> {
    refuseIfClosing(this.core)
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    let rec = await this.core.store.userByName(name)
    if (rec !== undefined && rec.tokenHash !== null)
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is registered with a token`)
    if (rec !== undefined && (this.core.sessions.has(rec.id) || (await this.core.bus.isOnline(rec.id))))
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is in use`)
    rec ??= await this.core.store.createUser(name, null, this.core.now())
    return this.attach(rec, protocol, sink, 'push', hidden)
  }

  /** A tokenless user for a name, created if needed (legacy store-and-forward to a name never seen). */
  async ensureLegacyUser(rawName: string): Promise<UserInfo> {
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    const rec = (await this.core.store.userByName(name)) ?? (await this.createIgnoringRace(name))
    return { id: rec.id, name: rec.name }
  }

  private async createIgnoringRace(name: string): Promise<UserRecord> {
    try {
      return await this.core.store.createUser(name, null, this.core.now())
    } catch (err) {
      const rec = await this.core.store.userByName(name)
      if (rec !== undefined) return rec
      throw err
    }
  }

  /**
   * The first phase of attaching: the session is registered and online, but nothing is pushed into its sink
   * until ready(). `hidden`: a gateway's internal session (e.g. 003's topic bridge), not shown in who or presence.
   */
  private async attach(
    rec: UserRecord,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    hidden = false,
  ): Promise<Session> {
    const { core } = this
    const existing = core.sessions.get(rec.id)
    if (existing !== undefined) this.end(existing, 'replaced', 'you logged in again elsewhere')
    else if (core.sessions.size >= core.limits.maxConnections)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `the server has maxConnections (${core.limits.maxConnections}) sessions`,
        'maxConnections',
      )
    const now = core.now()
    core.bus.publish({ type: 'kick', user: rec.id, reason: 'replaced', node: core.bus.nodeId, since: now })
    const s = new Session({ id: rec.id, name: rec.name }, protocol, sink, mode, now, core.limits.ratePerSecond * 2)
    core.sessions.set(rec.id, s)
    s.hidden = hidden
    s.tokenless = rec.tokenHash === null
    if (!hidden) await core.bus.setOnline(this.presenceOf(s))
    core.log.debug({ user: rec.id, name: rec.name, protocol, mode }, 'session started')
    if (!hidden) this.notifyPresence(s, true)
    return s
  }

  /**
   * The second phase: the adapter has answered the login and its connection can take events. What was held
   * goes out in order, then a push session's queue starts.
   */
  ready(s: Session): void {
    if (s.ready || s.closed) return
    s.ready = true
    const held = s.held
    s.held = []
    for (const ev of held) s.sink.push(ev)
    this.hooks.started(s)
  }

  /** Push a live event into a session, or hold it until the session is ready. */
  emit(s: Session, ev: Outbound): boolean {
    if (s.ready) return s.sink.push(ev)
    if (s.held.length < HELD_MAX) s.held.push(ev)
    return true
  }

  presenceOf(s: Session): PresenceInfo {
    const p: PresenceInfo = {
      id: s.user.id,
      name: s.user.name,
      protocol: s.protocol,
      since: s.since,
      lastSeen: s.lastSeen,
      node: this.core.bus.nodeId,
    }
    if (s.tokenless) p.tokenless = true
    return p
  }

  // ---------------------------------------------------------------- end

  /** End a session: the user goes offline; what it had not acknowledged stays queued. */
  end(s: Session, reason: CloseReason, text: string, tellSink = true): void {
    if (s.closed) return
    s.closed = true
    const { core } = this
    if (core.sessions.get(s.user.id) === s) {
      core.sessions.delete(s.user.id)
      if (!s.hidden) {
        void core.bus.setOffline(s.user.id).catch((err) => core.log.warn({ err }, 'presence update failed'))
        this.notifyPresence(s, false)
        if (reason !== 'deleted')
          void core.store.setLastSeen(s.user.id, s.lastSeen).catch((err) => core.log.warn({ err }, 'last seen not recorded'))
      }
    }
    s.held = []
    this.hooks.ended(s)
    core.log.debug({ user: s.user.id, reason }, 'session ended')
    if (tellSink) s.sink.close(reason, text)
  }

  /** Another node started a session of this user: end ours if it is the older (one session per user). */
  kicked(m: { user: number; reason: CloseReason; node: string; since: number }): void {
    const s = this.core.sessions.get(m.user)
    const self = this.core.bus.nodeId
    if (s === undefined || m.node === self) return
    const older = s.since < m.since || (s.since === m.since && self < m.node)
    if (older) this.end(s, m.reason, 'you logged in again elsewhere')
  }

  /** End the sessions idle past idleTimeoutMs. */
  reapIdle(now: number, idleTimeoutMs: number): void {
    for (const s of [...this.core.sessions.values()])
      if (now - s.lastSeen > idleTimeoutMs) {
        this.core.log.info({ user: s.user.id, idleMs: now - s.lastSeen }, 'reaping idle session')
        this.end(s, 'idle', `idle for more than ${Math.round(idleTimeoutMs / 1000)} s`)
      }
  }

  // ---------------------------------------------------------------- live events

  /** The room: every online session but `except`'s, here and on other nodes. Returns how many here. */
  broadcast(ev: Outbound, except: number): number {
    this.core.bus.publish({ type: 'broadcast', ev, except })
    return this.broadcastLocal(ev, except)
  }

  broadcastLocal(ev: Outbound, except: number): number {
    const { core } = this
    let n = 0
    for (const s of core.sessions.values()) {
      if (s.user.id === except) continue
      if (s.sink.backlog() > core.limits.maxSessionBuffer) {
        core.counters.slowConsumers++
        core.log.warn({ user: s.user.id, backlog: s.sink.backlog() }, 'slow consumer cut off')
        this.end(s, 'slow-consumer', `slow consumer: more than maxSessionBuffer (${core.limits.maxSessionBuffer} bytes) waiting`)
        continue
      }
      this.emit(s, ev)
      n++
    }
    if (ev.type === 'message') core.counters.messagesOut += n
    return n
  }

  /** A presence event for the watchers of this node (and, by the bus, of the others). */
  private notifyPresence(s: Session, online: boolean): void {
    const ev: Outbound = { type: 'presence', user: { ...s.user }, online, protocol: s.protocol, at: this.core.now() }
    for (const w of this.core.sessions.values()) if (w.watchPresence && w !== s) this.emit(w, ev)
    this.core.bus.publish({ type: 'broadcast', ev, except: s.user.id })
  }

  /** A presence event from another node. */
  presenceFromBus(ev: Outbound, except: number): void {
    for (const w of this.core.sessions.values()) if (w.watchPresence && w.user.id !== except) this.emit(w, ev)
  }

  // ---------------------------------------------------------------- presence requests

  whoami(s: Session): PresenceInfo {
    guard(this.core, s)
    return this.presenceOf(s)
  }

  async who(s: Session): Promise<PresenceInfo[]> {
    guard(this.core, s)
    const list = await this.core.bus.online()
    for (const p of list) {
      const local = this.core.sessions.get(p.id)
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
    guard(this.core, s)
    const u = await this.directory.resolveUser(who)
    if (u === undefined || (await this.directory.isBlocked(u.id, s.user.id)))
      throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(who)}`)
    const local = this.core.sessions.get(u.id)
    if (local !== undefined && !local.hidden) return { user: u, online: this.presenceOf(local), lastSeen: local.lastSeen }
    const online = (await this.core.bus.online()).find((p) => p.id === u.id)
    if (online !== undefined) return { user: u, online, lastSeen: online.lastSeen }
    return { user: u, online: undefined, lastSeen: await this.core.store.lastSeen(u.id) }
  }

  watchPresence(s: Session, on: boolean): void {
    guard(this.core, s)
    s.watchPresence = on
  }

  async rename(s: Session, rawName: string): Promise<UserInfo> {
    guard(this.core, s)
    const { core } = this
    const name = normalizeName(rawName, core.limits.maxNameBytes)
    const old = s.user.name
    if (name === old) return { ...s.user }
    await core.store.renameUser(s.user.id, name)
    this.directory.forgetUser(s.user.id, old)
    s.user = { id: s.user.id, name }
    if (!s.hidden) await core.bus.setOnline(this.presenceOf(s))
    core.log.info({ user: s.user.id, from: old, to: name }, 'renamed')
    const ev: Outbound = { type: 'rename', user: { ...s.user }, oldName: old }
    this.emit(s, ev)
    this.broadcast(ev, s.user.id)
    return { ...s.user }
  }
}
