/**
 * The session registry: who is attached to this node (register, login by token or password, claim, two-phase
 * attach and ready), devices (each login of a token is that device; a password login makes a new one; revoke),
 * ending sessions (detach, kick, revoke, the idle reaper), presence (who, whoami, last seen, presence events),
 * renames, and the live events that go to sessions without a log (the room, events for one user).
 *
 * A user may have several sessions at once, one per device: a new login of a device replaces that device's
 * session only. A legacy gateway's name has one device and one session (its originals' rule).
 *
 * It knows sessions, not messages: what must happen to a session's messages when it starts or ends (pump its
 * queue, tell senders 300, close its conversations) the facade hands it as `hooks`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { BrokerError } from './errors.js'
import { describe, guard, refuseIfClosing, type Core } from './context.js'
import { normalizeName, type Directory } from './directory.js'
import { HELD_MAX, Session, type DeliveryMode } from './session.js'
import { checkPassword, hashPassword, LoginLimiter, verifyPassword } from './passwords.js'
import type { Address, CloseReason, Outbound, PresenceInfo, SessionSink, UserInfo } from './types.js'
import type { DeviceRecord, UserRecord } from '../store/store.js'

const TOKEN_BYTES = 24
/** Failed password logins: per name 10 at once then 5 a minute; per address 30 at once then 20 a minute. */
const NAME_ATTEMPTS = { perMinute: 5, burst: 10 }
const ADDRESS_ATTEMPTS = { perMinute: 20, burst: 30 }

/** How a client attaches, besides its protocol. */
export interface AttachOptions {
  /** What the device calls itself (shown in the device list); default the protocol. */
  label?: string
  /** Attach beside the device's session instead of replacing it (a one-shot command): handed nothing from the log. */
  sendOnly?: boolean
  /** The client's address (login attempts are limited per address). */
  address?: string
}

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
  /** Room messages kept for late joiners (--room-history), oldest first. */
  private readonly roomHistory: Outbound[] = []
  private readonly byName: LoginLimiter
  private readonly byAddress: LoginLimiter

  constructor(
    private readonly core: Core,
    private readonly directory: Directory,
    /** How many of the room's last messages a session is shown when it starts (0: the room is live only). */
    private readonly roomHistoryMax = 0,
  ) {
    this.byName = new LoginLimiter(NAME_ATTEMPTS.perMinute, NAME_ATTEMPTS.burst, core.now)
    this.byAddress = new LoginLimiter(ADDRESS_ATTEMPTS.perMinute, ADDRESS_ATTEMPTS.burst, core.now)
  }

  /** The user's oldest session on this node (a legacy name's only one). */
  get(userId: number): Session | undefined {
    return this.core.sessions.first(userId)
  }

  /** Every session of the user on this node (one per device). */
  all(userId: number): readonly Session[] {
    return this.core.sessions.of(userId)
  }

  // ---------------------------------------------------------------- attach

  /**
   * Register a new name: the user and its first device. Returns the session and the device's token, the only
   * credential besides an optional password.
   */
  async register(
    rawName: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    opts: AttachOptions & { password?: string } = {},
  ): Promise<{ session: Session; token: string; user: UserInfo }> {
    refuseIfClosing(this.core)
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    if (opts.password !== undefined) checkPassword(opts.password)
    const passwordHash = opts.password === undefined ? null : await hashPassword(opts.password, this.core.passwordCost)
    const secret = randomBytes(TOKEN_BYTES).toString('base64url')
    const label = opts.label ?? protocol
    const { user: rec, device } = await this.core.store.createUser(
      name,
      { tokenHash: hashToken(secret), label },
      this.core.now(),
      passwordHash,
    )
    this.core.log.info({ user: rec.id, name, protocol, device: device.id }, 'registered')
    const session = await this.attach(rec, device, protocol, sink, mode, opts)
    return { session, token: secret, user: { id: rec.id, name: rec.name } }
  }

  /** Come back as a device, by its token. A live session of the same device is replaced; other devices stay. */
  async login(
    who: { id: number } | { name: string },
    token: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    opts: AttachOptions = {},
  ): Promise<Session> {
    refuseIfClosing(this.core)
    const { rec, device } = await this.byToken(who, token)
    return this.attach(rec, device, protocol, sink, mode, opts)
  }

  /** The user and device a token belongs to; SB_ERR_AUTH when it names no device of `who`. */
  async byToken(
    who: { id: number } | { name: string } | undefined,
    token: string,
  ): Promise<{ rec: UserRecord; device: DeviceRecord }> {
    const device = await this.core.store.deviceByToken(hashToken(token))
    const rec = device === undefined ? undefined : await this.core.store.userById(device.user)
    const match =
      rec !== undefined && (who === undefined || ('id' in who ? rec.id === who.id : rec.name === who.name.normalize('NFC')))
    if (!match) throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong token')
    return { rec: rec!, device: device! }
  }

  /**
   * Log in with a name and password: a new device of that user, with a new token (returned once). Failed attempts
   * are limited per name and per address.
   */
  async newDevice(
    rawName: string,
    password: string,
    opts: AttachOptions,
  ): Promise<{ rec: UserRecord; device: DeviceRecord; token: string }> {
    refuseIfClosing(this.core)
    const name = rawName.normalize('NFC')
    const nameKey = `name:${name.toLowerCase()}`
    const addrKey = opts.address === undefined ? undefined : `addr:${opts.address}`
    this.byName.check(nameKey, `"${name}"`)
    if (addrKey !== undefined) this.byAddress.check(addrKey, 'your address')
    const rec = await this.core.store.userByName(name)
    const ok = rec !== undefined && rec.passwordHash !== null && (await verifyPassword(password, rec.passwordHash))
    if (!ok) {
      this.byName.fail(nameKey)
      if (addrKey !== undefined) this.byAddress.fail(addrKey)
      throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong password')
    }
    const secret = randomBytes(TOKEN_BYTES).toString('base64url')
    const device = await this.core.store.createDevice(rec.id, hashToken(secret), opts.label ?? 'device', this.core.now())
    if (device === undefined) throw new BrokerError('SB_ERR_AUTH', 'unknown user or wrong password')
    this.core.log.info({ user: rec.id, device: device.id, label: device.label }, 'new device (password login)')
    return { rec, device, token: secret }
  }

  /** Log in with a password and attach the new device at once (native LOGIN with the PASSWORD flag). */
  async loginPassword(
    rawName: string,
    password: string,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    opts: AttachOptions = {},
  ): Promise<{ session: Session; token: string }> {
    const { rec, device, token } = await this.newDevice(rawName, password, { ...opts, label: opts.label ?? protocol })
    return { session: await this.attach(rec, device, protocol, sink, mode, opts), token }
  }

  /** Set, change or clear (null) the user's password. Changing or clearing one needs the current one. */
  async setPassword(s: Session, password: string | null, current: string | undefined): Promise<void> {
    guard(this.core, s)
    const rec = await this.core.store.userById(s.user.id)
    if (rec === undefined) throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'the account is gone')
    if (rec.tokenless) throw new BrokerError('SB_ERR_FORBIDDEN', 'a name without a token cannot have a password')
    if (rec.passwordHash !== null) {
      const key = `name:${rec.name.toLowerCase()}`
      this.byName.check(key, `"${rec.name}"`)
      if (current === undefined || !(await verifyPassword(current, rec.passwordHash))) {
        this.byName.fail(key)
        throw new BrokerError('SB_ERR_AUTH', 'the current password is wrong')
      }
    }
    if (password !== null) checkPassword(password)
    await this.core.store.setPassword(rec.id, password === null ? null : await hashPassword(password, this.core.passwordCost))
    this.core.log.info({ user: rec.id, set: password !== null }, 'password changed')
  }

  /** The user's devices, with whether each is online on this node (`online`) and which one is asking (`current`). */
  async devices(s: Session): Promise<(Omit<DeviceRecord, 'tokenHash' | 'acks'> & { online: boolean; current: boolean })[]> {
    guard(this.core, s)
    const online = new Set<number>()
    for (const p of await this.core.bus.online()) if (p.id === s.user.id && p.device !== undefined) online.add(p.device)
    for (const x of this.all(s.user.id)) if (!x.sendOnly) online.add(x.device)
    return (await this.core.store.devices(s.user.id)).map((d) => ({
      id: d.id,
      user: d.user,
      label: d.label,
      createdAt: d.createdAt,
      lastSeen: d.lastSeen,
      online: online.has(d.id),
      current: d.id === s.device,
    }))
  }

  /** Revoke one of the user's devices: its token is refused from now on, its sessions end (here and elsewhere). */
  async revokeDevice(s: Session, device: number): Promise<void> {
    guard(this.core, s)
    if (!(await this.core.store.deleteDevice(s.user.id, device)))
      throw new BrokerError('SB_ERR_UNKNOWN_DEVICE', `you have no device ${device}`)
    this.core.log.info({ user: s.user.id, device, by: s.device }, 'device revoked')
    this.core.bus.publish({ type: 'revoke', user: s.user.id, device })
    this.revoked({ user: s.user.id, device })
  }

  /** A device was revoked (here or on another node): its sessions on this node end. */
  revoked(m: { user: number; device: number }): void {
    for (const x of [...this.all(m.user)]) if (x.device === m.device) this.end(x, 'revoked', 'this device was revoked')
  }

  /**
   * Legacy gateways carry no token: they claim a name. A name registered with a token (native, HTTP) cannot
   * be taken from a gateway; a tokenless name is created on first use and is in use while a session holds it.
   */
  async claim(rawName: string, protocol: string, sink: SessionSink, hidden: boolean): Promise<Session> {
    refuseIfClosing(this.core)
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    let rec = await this.core.store.userByName(name)
    if (rec !== undefined && !rec.tokenless)
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is registered with a token`)
    if (rec !== undefined && (this.core.sessions.hasUser(rec.id) || (await this.core.bus.isOnline(rec.id))))
      throw new BrokerError('SB_ERR_NAME_TAKEN', `the name "${name}" is in use`)
    let device: DeviceRecord | undefined
    if (rec === undefined)
      ({ user: rec, device } = await this.core.store.createUser(name, { tokenHash: null, label: protocol }, this.core.now()))
    else device = (await this.core.store.devices(rec.id))[0]
    if (device === undefined) throw new BrokerError('SB_ERR_INTERNAL', `the name "${name}" has no device`)
    return this.attach(rec, device, protocol, sink, 'push', { legacy: true, hidden })
  }

  /** A tokenless user for a name, created if needed (legacy store-and-forward to a name never seen). */
  async ensureLegacyUser(rawName: string): Promise<UserInfo> {
    const name = normalizeName(rawName, this.core.limits.maxNameBytes)
    const rec = (await this.core.store.userByName(name)) ?? (await this.createIgnoringRace(name))
    return { id: rec.id, name: rec.name }
  }

  private async createIgnoringRace(name: string): Promise<UserRecord> {
    try {
      return (await this.core.store.createUser(name, { tokenHash: null, label: 'legacy' }, this.core.now())).user
    } catch (err) {
      const rec = await this.core.store.userByName(name)
      if (rec !== undefined) return rec
      throw err
    }
  }

  /**
   * The first phase of attaching: the session is registered and online, but nothing is pushed into its sink
   * until ready(). `hidden`: a gateway's internal session (e.g. 003's topic bridge), not shown in who or presence.
   * `legacy`: the name's one session (every other session of the user ends, on every node).
   */
  private async attach(
    rec: UserRecord,
    device: DeviceRecord,
    protocol: string,
    sink: SessionSink,
    mode: DeliveryMode,
    opts: AttachOptions & { legacy?: boolean; hidden?: boolean },
  ): Promise<Session> {
    const { core } = this
    const hidden = opts.hidden === true
    const sendOnly = opts.sendOnly === true
    const existing = sendOnly
      ? undefined
      : opts.legacy === true
        ? core.sessions.first(rec.id)
        : core.sessions.ofDevice(rec.id, device.id)
    if (existing !== undefined) this.end(existing, 'replaced', 'you logged in again elsewhere')
    else if (core.sessions.size >= core.limits.maxConnections)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `the server has maxConnections (${core.limits.maxConnections}) sessions`,
        'maxConnections',
      )
    const now = core.now()
    if (!sendOnly)
      core.bus.publish({
        type: 'kick',
        user: rec.id,
        device: opts.legacy === true ? null : device.id,
        reason: 'replaced',
        node: core.bus.nodeId,
        since: now,
      })
    const s = new Session({ id: rec.id, name: rec.name }, protocol, sink, mode, now, core.limits.ratePerSecond * 2)
    s.device = device.id
    s.acks = device.acks
    s.cursor = device.acks.floor
    s.sendOnly = sendOnly
    s.hidden = hidden
    s.tokenless = rec.tokenless
    if (this.roomHistoryMax > 0 && !hidden) s.held.push(...this.roomHistory)
    const wasOnline =
      !hidden && !sendOnly && (core.sessions.hasUser(rec.id) || (core.bus.clustered && (await core.bus.isOnline(rec.id))))
    core.sessions.add(s)
    if (!hidden && !sendOnly) await core.bus.setOnline(this.presenceOf(s))
    core.log.debug({ user: rec.id, name: rec.name, device: device.id, protocol, mode }, 'session started')
    if (!hidden && !sendOnly && !wasOnline) this.notifyPresence(s, true)
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
    p.device = s.device
    return p
  }

  // ---------------------------------------------------------------- end

  /**
   * End a session: its device goes offline (the user, when it was its last device); what the device had not
   * acknowledged stays in the log after its cursor.
   */
  end(s: Session, reason: CloseReason, text: string, tellSink = true): void {
    if (s.closed) return
    s.closed = true
    const { core } = this
    if (core.sessions.remove(s) && !s.hidden && !s.sendOnly) {
      const user = s.user.id
      const offline = core.bus.setOffline(user, s.device)
      void offline.catch((err) => core.log.warn({ err }, 'presence update failed'))
      // The user is offline when its last device is: here that is known at once; in a cluster, once the bus says.
      if (!core.sessions.hasUser(user))
        if (!core.bus.clustered) this.notifyPresence(s, false)
        else
          void offline
            .then(() => core.bus.isOnline(user))
            .then((on) => {
              if (!on && !core.sessions.hasUser(user)) this.notifyPresence(s, false)
            })
            .catch((err) => core.log.warn({ err }, 'presence check failed'))
      // When the session ended (what LAST_SEEN promises), in the next group commit: many sessions ending at once
      // (a slow-consumer cut, a shutdown) share one.
      if (reason !== 'deleted')
        void core.committer
          .submit({ type: 'seen', user, device: s.device, at: core.now() })
          .catch((err) => core.log.warn({ err }, 'last seen not recorded'))
    }
    s.held = []
    this.hooks.ended(s)
    core.log.debug({ user: s.user.id, device: s.device, reason }, 'session ended')
    if (tellSink) s.sink.close(reason, text)
  }

  /**
   * Another node started a session of this user's device (`device` null: of a legacy name): end ours if it is
   * the older (one session per device, one per legacy name).
   */
  kicked(m: { user: number; device: number | null; reason: CloseReason; node: string; since: number }): void {
    const self = this.core.bus.nodeId
    if (m.node === self) return
    for (const s of [...this.all(m.user)]) {
      if (s.sendOnly || (m.device !== null && s.device !== m.device)) continue
      const older = s.since < m.since || (s.since === m.since && self < m.node)
      if (older) this.end(s, m.reason, 'you logged in again elsewhere')
    }
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
    if (this.roomHistoryMax > 0 && ev.type === 'message') {
      this.roomHistory.push(ev)
      if (this.roomHistory.length > this.roomHistoryMax) this.roomHistory.shift()
    }
    let n = 0
    for (const s of core.sessions.values()) if (s.user.id !== except && this.emitLive(s, ev)) n++
    if (ev.type === 'message') core.counters.messagesOut += n
    return n
  }

  /**
   * A live event (the room, a transient message) for one session: nothing stored holds it, so a session that does
   * not read — more than maxSessionBuffer waiting — is cut rather than buffered without end. Whether it was handed.
   */
  emitLive(s: Session, ev: Outbound): boolean {
    const { core } = this
    if (s.sink.backlog() > core.limits.maxSessionBuffer) {
      core.counters.slowConsumers++
      core.log.warn({ user: s.user.id, backlog: s.sink.backlog() }, 'slow consumer cut off')
      this.end(s, 'slow-consumer', `slow consumer: more than maxSessionBuffer (${core.limits.maxSessionBuffer} bytes) waiting`)
      return false
    }
    this.emit(s, ev)
    return true
  }

  /** A presence event for the watchers of this node (and, by the bus, of the others). */
  private notifyPresence(s: Session, online: boolean): void {
    const ev: Outbound = { type: 'presence', user: { ...s.user }, online, protocol: s.protocol, at: this.core.now() }
    for (const w of this.core.sessions.watchers) if (w !== s) this.emit(w, ev)
    this.core.bus.publish({ type: 'broadcast', ev, except: s.user.id })
  }

  /** A presence event from another node. */
  presenceFromBus(ev: Outbound, except: number): void {
    for (const w of this.core.sessions.watchers) if (w.user.id !== except) this.emit(w, ev)
  }

  // ---------------------------------------------------------------- presence requests

  whoami(s: Session): PresenceInfo {
    guard(this.core, s)
    return this.presenceOf(s)
  }

  /** Everyone online, one entry per user: its devices summed (`devices`), its latest session's protocol and times. */
  async who(s: Session): Promise<PresenceInfo[]> {
    guard(this.core, s)
    const byUser = new Map<number, PresenceInfo>()
    for (const p of await this.core.bus.online()) {
      for (const local of this.all(p.id)) if (local.device === p.device) p.lastSeen = local.lastSeen
      const seen = byUser.get(p.id)
      if (seen === undefined) byUser.set(p.id, { ...p, devices: 1 })
      else {
        const latest = p.since > seen.since ? { ...p } : { ...seen }
        latest.devices = seen.devices! + 1
        latest.lastSeen = Math.max(seen.lastSeen, p.lastSeen)
        byUser.set(p.id, latest)
      }
    }
    const list = [...byUser.values()]
    for (const p of list) delete p.device
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
    const local = this.all(u.id).find((x) => !x.hidden && !x.sendOnly)
    if (local !== undefined) return { user: u, online: this.presenceOf(local), lastSeen: local.lastSeen }
    const online = (await this.core.bus.online()).find((p) => p.id === u.id)
    if (online !== undefined) return { user: u, online, lastSeen: online.lastSeen }
    return { user: u, online: undefined, lastSeen: await this.core.store.lastSeen(u.id) }
  }

  watchPresence(s: Session, on: boolean): void {
    guard(this.core, s)
    this.core.sessions.watch(s, on)
  }

  async rename(s: Session, rawName: string): Promise<UserInfo> {
    guard(this.core, s)
    const { core } = this
    const name = normalizeName(rawName, core.limits.maxNameBytes)
    const old = s.user.name
    if (name === old) return { ...s.user }
    await core.store.renameUser(s.user.id, name)
    this.directory.forgetUser(s.user.id, old)
    // Every device of the user here takes the new name (those on other nodes when they next log in).
    for (const x of this.all(s.user.id)) {
      x.user = { id: s.user.id, name }
      if (!x.hidden && !x.sendOnly) await core.bus.setOnline(this.presenceOf(x))
    }
    core.log.info({ user: s.user.id, from: old, to: name }, 'renamed')
    const ev: Outbound = { type: 'rename', user: { ...s.user }, oldName: old }
    this.emit(s, ev)
    this.broadcast(ev, s.user.id)
    return { ...s.user }
  }
}
