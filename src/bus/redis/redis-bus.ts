/**
 * The cluster bus over Redis: one pub/sub channel per cluster for BusMessages, and the presence registry: one
 * entry per online device (a user may be online from several devices, on several nodes), plus a count per user.
 *
 * Keys, all under `prefix` so clusters and test runs do not meet:
 *   {prefix}:bus            channel: every node publishes and listens; a node ignores its own messages but for the
 *                           registry's announcements ('where', 'reaped'), which keep its copy of the registry
 *   {prefix}:bus:{id}       channel: what is for node {id} alone (wakes, events for its sessions), in batches
 *   {prefix}:presence       hash: "{user}:{device}" → PresenceInfo JSON (with `node`, the holder of that session)
 *   {prefix}:online         hash: user id → how many of its devices have an entry in {prefix}:presence
 *   {prefix}:nodes          set: node ids believed alive
 *   {prefix}:node:{id}      string with a TTL, refreshed by the node's heartbeat
 *
 * The count exists so that isOnline(user), asked on every delivery, stays one O(1) HEXISTS however many devices
 * and users there are; the per-device field keeps a device's login, logout and race independent of the user's
 * other devices. Both hashes change only inside the Lua scripts below, each of which updates both at once, so the
 * count is the number of the user's fields whenever Redis is between two scripts (a restart from a snapshot
 * keeps them together too; a restart that lost them loses both, and the nodes re-register, below). A user with
 * no device online has no count field (never a 0), so HEXISTS is the whole check.
 *
 * A node that dies (kill -9, lost host) stops refreshing its key. Every survivor checks the set at each
 * heartbeat; the first whose atomic reap script finds the key gone removes the dead node from the set and its
 * presence entries from the hash, and announces as offline each user left with no device online anywhere (a
 * presence broadcast, to the other nodes and to its own broker; once per user, however many devices it had on
 * the dead node). The script runs in Redis, so exactly one survivor reaps each dead node.
 *
 * isOnline is a Redis round trip (HEXISTS on the count) unless a session of the user is on this node: it keeps
 * "setOnline resolved, then isOnline anywhere sees it" true, for the rare questions that need it (a name claimed,
 * a transient message, a conversation). A committed message does not ask it. Each node keeps a copy of the
 * registry (`where`: user → device → holding node), loaded at start and kept by the announcements the scripts
 * publish with every change they make (so in the order Redis made them), and wake() sends a message to the
 * holders' channels only, with no round trip. The copy lags a login on another node by the announcement's trip:
 * a message committed meanwhile would find no holder, and the new session may have read its log just before the
 * commit. So a node remembers the users it committed for in the last RECENT_MS, and when it hears a device of one
 * of them come online elsewhere it wakes that node (which reads the log from the device's cursor): nothing waits
 * for a later message. A stale entry the other way (a device gone) costs a wake that finds no session.
 *
 * Wakes carry the committed messages (up to CARRY_MAX_BYTES of body each; a larger one is a plain wake, read from
 * the store), and the wakes, events and receipts of one event-loop turn go to each node as one publish. A publish
 * carrying receipts that no subscriber received hands them back to this node's handler, which stores them.
 *
 * After a Redis restart or a lost connection ioredis reconnects and resubscribes; this bus then re-registers
 * its node and the presence of its local sessions, and wakes each of their users, since wakes published while
 * the subscription was down are lost (the store still has the messages; the wake makes the sessions read them).
 *
 * The layout changed with devices (it was one field per user) along with the bus codec's version: a cluster is
 * upgraded all at once, not node by node.
 */
import { randomUUID } from 'node:crypto'
import { Redis, type RedisOptions } from 'ioredis'
import type { Bus, BusMessage } from '../bus.js'
import { silentLogger, type Logger, type Message, type PresenceInfo } from '../../core/types.js'
import { decodeBus, encodeBus, type WireMessage } from './bus-codec.js'

/** How long a node remembers that it committed for a user, to wake a device of it that comes online elsewhere. */
const RECENT_MS = 60_000
/** A committed message whose body is larger travels as a plain wake: its node reads it from the store. */
const CARRY_MAX_BYTES = 64 * 1024
/** A node's pending batch is published at once when its bodies reach this, without waiting for the turn's end. */
const BATCH_MAX_BYTES = 1024 * 1024

export interface RedisBusOptions {
  /** redis://host:port/db. Default redis://127.0.0.1:6379. */
  url?: string | undefined
  /** Extra ioredis options (TLS, password…). Not replyMapping: the bus reads Redis's replies in their default shapes. */
  redis?: Omit<RedisOptions, 'replyMapping'>
  /** Namespace of every key and channel. Default 'sb'. */
  prefix?: string | undefined
  /** This node's id, unique in the cluster. Default a random UUID. */
  nodeId?: string | undefined
  /** How often this node refreshes its liveness key and looks for dead nodes. Default 1000 ms. */
  heartbeatMs?: number
  /** A node whose key was not refreshed for this long is dead. Default 5000 ms (several missed heartbeats). */
  nodeTtlMs?: number
  logger?: Logger
}

/** A device's field in the presence hash. The core always names the device; 0 stands for an entry that does not. */
const fieldOf = (user: number, device: number | undefined): string => `${user}:${device ?? 0}`

/**
 * Delete a device's presence entry only if it names this node: a device that logged in again on another node
 * stays online there. KEYS = presence hash, online counts, bus channel; ARGV = field, user id, node, the
 * announcement of the removal (published if it was made).
 */
const OFFLINE_IF_MINE = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local ok, p = pcall(cjson.decode, v)
if ok and type(p) == 'table' and p.node == ARGV[3] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[2]) end
  redis.call('PUBLISH', KEYS[3], ARGV[4])
  return 1
end
return 0
`

/**
 * Write a device's presence entry unless the entry there is a newer session of the same device on another node:
 * KEYS = presence hash, online counts, bus channel; ARGV = field, user id, entry JSON, since, node, the
 * announcement of the entry (published if it was written). Two logins of one device
 * racing on two nodes write on different connections, so the older one's write may land last; it must not
 * replace the newer, or the older node's setOffline (after the kick) would then delete the device's only entry
 * and it would look offline everywhere. "Newer" is the kick's rule: later since, ties to the greater node id.
 * A new field (not a rewrite: a rename, a re-registration) counts one more device of the user.
 */
const ONLINE_IF_NEWER = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local ok, p = pcall(cjson.decode, v)
  if ok and type(p) == 'table' and p.node ~= ARGV[5] and type(p.since) == 'number' and type(p.node) == 'string' then
    local since = tonumber(ARGV[4])
    if p.since > since or (p.since == since and p.node > ARGV[5]) then return 0 end
  end
end
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) == 1 then redis.call('HINCRBY', KEYS[2], ARGV[2], 1) end
redis.call('PUBLISH', KEYS[3], ARGV[6])
return 1
`

/**
 * Reap a dead node: KEYS = nodes set, presence hash, the node's liveness key, online counts, bus channel; ARGV =
 * node id, the announcement that its entries are gone.
 * Returns how many entries it removed, then the removed entry (JSON) of each user left with no device online;
 * nothing if the node is alive or another survivor reaped it. The user is the field's, as the count is kept by
 * field (an entry's JSON is not trusted to agree).
 */
const REAP = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {} end
if redis.call('SREM', KEYS[1], ARGV[1]) == 0 then return {} end
local out = {0}
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local ok, p = pcall(cjson.decode, all[i + 1])
  if ok and type(p) == 'table' and p.node == ARGV[1] then
    redis.call('HDEL', KEYS[2], all[i])
    out[1] = out[1] + 1
    local user = string.match(all[i], '^([^:]*)') or all[i]
    if redis.call('HINCRBY', KEYS[4], user, -1) <= 0 then
      redis.call('HDEL', KEYS[4], user)
      out[#out + 1] = all[i + 1]
    end
  end
end
redis.call('PUBLISH', KEYS[5], ARGV[2])
return out
`

export class RedisBus implements Bus {
  readonly nodeId: string
  readonly clustered = true
  readonly prefix: string
  private readonly log: Logger
  private readonly heartbeatMs: number
  private readonly nodeTtlMs: number
  private readonly keys: {
    bus: string
    inbox: (id: string) => string
    presence: string
    online: string
    nodes: string
    node: (id: string) => string
  }
  private cmd: Redis | undefined
  private sub: Redis | undefined
  private onMessage: (m: BusMessage) => void = () => {}
  /** Presence of this node's sessions (user → device → entry), to re-register after Redis lost it. */
  private readonly local = new Map<number, Map<number, PresenceInfo>>()
  /** This node's copy of the registry: user → device → the node holding its session (all nodes, this one too). */
  private readonly where = new Map<number, Map<number, string>>()
  /** While the copy is (re)loaded: the announcements heard meanwhile, applied over the snapshot after it. */
  private loading: WireMessage[] | undefined
  /** user → when this node last committed a message for it (wake()), kept for RECENT_MS. */
  private readonly recent = new Map<number, number>()
  /** What this turn has for each other node: user → its carried messages (null: a plain wake), and events. */
  private readonly outbox = new Map<string, { wakes: Map<number, Message[] | null>; events: BusMessage[]; bytes: number }>()
  private flushing: NodeJS.Immediate | undefined
  private heartbeat: NodeJS.Timeout | undefined
  private beating: Promise<void> | undefined
  private started = false
  private closed = false
  readonly counters = {
    published: 0,
    received: 0,
    malformed: 0,
    reaped: 0,
    reconnects: 0,
    catchUpWakes: 0,
    /** Receipts no node received, handed back to this node's handler (which stores them). */
    returnedReceipts: 0,
  }

  constructor(private readonly opts: RedisBusOptions = {}) {
    this.nodeId = opts.nodeId ?? randomUUID()
    this.prefix = opts.prefix ?? 'sb'
    this.log = opts.logger ?? silentLogger
    this.heartbeatMs = opts.heartbeatMs ?? 1000
    this.nodeTtlMs = opts.nodeTtlMs ?? 5000
    if (this.nodeTtlMs <= this.heartbeatMs) throw new Error('nodeTtlMs must be longer than heartbeatMs')
    const p = this.prefix
    this.keys = {
      bus: `${p}:bus`,
      inbox: (id) => `${p}:bus:${id}`,
      presence: `${p}:presence`,
      online: `${p}:online`,
      nodes: `${p}:nodes`,
      node: (id) => `${p}:node:${id}`,
    }
  }

  private connect(role: string): Redis {
    const options: Omit<RedisOptions, 'replyMapping'> = {
      connectionName: `switchboard:${this.nodeId}:${role}`,
      // Commands wait while Redis is away (they are replayed on reconnect) rather than fail after 20 retries.
      maxRetriesPerRequest: null,
      ...this.opts.redis,
    }
    const r = new Redis(this.opts.url ?? 'redis://127.0.0.1:6379', options)
    // Without a listener ioredis stays quiet; with one we log, and the connection keeps retrying either way.
    r.on('error', (err: Error) => this.log.warn({ err: err.message, role, node: this.nodeId }, 'redis connection error'))
    return r
  }

  async start(onMessage: (m: BusMessage) => void): Promise<void> {
    this.onMessage = onMessage
    this.cmd = this.connect('cmd')
    this.sub = this.connect('sub')
    this.sub.on('message', (_channel: string, text: string) => this.subOnMessage(text))
    await this.sub.subscribe(this.keys.bus, this.keys.inbox(this.nodeId))
    await this.loadWhere()
    await this.beat()
    this.started = true
    this.cmd.on('ready', () => this.cmdOnReady())
    this.sub.on('ready', () => this.subOnReady())
    this.heartbeat = setInterval(() => void this.tick(), this.heartbeatMs)
    this.heartbeat.unref()
  }

  private subOnMessage(text: string): void {
    const d = decodeBus(text)
    if (!d.ok) {
      this.counters.malformed++
      this.log.warn({ reason: d.reason }, 'malformed bus message ignored')
      return
    }
    const m = d.msg
    if (m.type === 'where' || m.type === 'reaped') {
      // The registry's own announcements, this node's too: they keep the copy in the order of the changes.
      if (this.loading !== undefined) this.loading.push(m)
      else this.learn(m)
      return
    }
    if (d.node === this.nodeId) return
    this.counters.received++
    if (m.type === 'batch') for (const x of m.msgs) this.onMessage(x)
    else this.onMessage(m)
  }

  /**
   * (Re)load the copy of the registry: a snapshot of the presence hash, then the announcements heard while it
   * was read. Each announcement is the state its script left a device in (or a dead node's entries gone), so
   * applying those already in the snapshot again changes nothing, and the later ones bring it up to date.
   */
  private async loadWhere(): Promise<void> {
    const heard: WireMessage[] = []
    this.loading = heard
    try {
      const all = await this.cmd!.hgetall(this.keys.presence)
      this.where.clear()
      for (const [field, text] of Object.entries(all)) {
        const [user, device] = field.split(':').map(Number)
        let node: unknown
        try {
          node = (JSON.parse(text) as PresenceInfo).node
        } catch {
          continue
        }
        if (Number.isInteger(user) && Number.isInteger(device) && typeof node === 'string') this.place(user!, device!, node)
      }
    } finally {
      this.loading = undefined
    }
    for (const m of heard) this.learn(m)
  }

  private place(user: number, device: number, node: string): void {
    let devices = this.where.get(user)
    if (devices === undefined) this.where.set(user, (devices = new Map()))
    devices.set(device, node)
  }

  /** Apply an announcement to the copy of the registry. */
  private learn(m: WireMessage): void {
    if (m.type === 'reaped') {
      for (const [user, devices] of this.where) {
        for (const [device, node] of devices) if (node === m.node) devices.delete(device)
        if (devices.size === 0) this.where.delete(user)
      }
      return
    }
    if (m.type !== 'where') return
    if (!m.online) {
      const devices = this.where.get(m.user)
      if (devices?.get(m.device) === m.node) {
        devices.delete(m.device)
        if (devices.size === 0) this.where.delete(m.user)
      }
      return
    }
    this.place(m.user, m.device, m.node)
    // A message committed here lately may have found no holder, and the new session may have read its log
    // before that commit: wake it, and it reads from its cursor.
    if (m.node !== this.nodeId && this.recent.has(m.user)) this.catchUp(m.node, m.user)
  }

  /** The command connection is back (Redis restarted, or the network): the registry may have been emptied. */
  private cmdOnReady(): void {
    if (!this.started || this.closed) return
    this.counters.reconnects++
    this.log.info({ node: this.nodeId }, 'redis connection ready again: re-registering presence')
    void this.reregister().catch((err: unknown) => this.log.warn({ err }, 're-registering presence failed'))
  }

  /**
   * The subscription is back: wakes published while it was down are lost, so wake every local session to read
   * its queue. ioredis resubscribes right after 'ready'; a PING answered after that SUBSCRIBE means we listen again.
   */
  private subOnReady(): void {
    if (!this.started || this.closed) return
    setImmediate(() => {
      void this.sub!.ping()
        .then(() => this.loadWhere())
        .then(() => {
          // Logins announced while the subscription was down were not heard: their holders may have read their
          // logs before a commit here found no holder for them (see learn()).
          for (const user of this.recent.keys()) for (const node of this.holders(user) ?? []) this.catchUp(node, user)
          for (const user of this.local.keys()) this.onMessage({ type: 'wake', user })
        })
        .catch((err: unknown) => this.log.warn({ err }, 'resubscribing failed'))
    })
  }

  /**
   * Put this node and its sessions back into the registry, then wake every local session. While the entries were
   * missing, other nodes took these users for offline: they stored messages for them (answering 'stored') and
   * published no wake. The wake after the subscription is back does not cover a message whose presence lookup
   * ran after it and before this write; waking here does, since any later commit finds the entry and wakes.
   */
  private async reregister(): Promise<void> {
    const cmd = this.cmd!
    const m = cmd.multi()
    m.set(this.keys.node(this.nodeId), String(Date.now()), 'PX', this.nodeTtlMs)
    m.sadd(this.keys.nodes, this.nodeId)
    for (const devices of this.local.values()) for (const info of devices.values()) m.eval(...this.onlineArgs(info))
    await m.exec()
    for (const user of this.local.keys()) this.onMessage({ type: 'wake', user })
  }

  private async tick(): Promise<void> {
    const old = Date.now() - RECENT_MS
    for (const [user, at] of this.recent) if (at < old) this.recent.delete(user)
    if (this.beating !== undefined || this.closed) return // Redis is slow or away: don't pile up heartbeats
    this.beating = this.beat().catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed'))
    await this.beating
    this.beating = undefined
  }

  /** Refresh this node's key; notice if this node had been given up for dead; reap nodes that are. */
  private async beat(): Promise<void> {
    const cmd = this.cmd!
    const res = await cmd
      .multi()
      .set(this.keys.node(this.nodeId), String(Date.now()), 'PX', this.nodeTtlMs)
      .sadd(this.keys.nodes, this.nodeId)
      .smembers(this.keys.nodes)
      .exec()
    if (res === null) return
    const added = res[1]?.[1] as number | undefined
    // SADD added us back: a survivor reaped us (we were paused past the TTL) or Redis lost its data.
    if (this.started && added === 1 && this.local.size > 0) {
      this.log.warn({ node: this.nodeId }, 'this node had been reaped or Redis was emptied: re-registering')
      await this.reregister()
    }
    const nodes = ((res[2]?.[1] as string[] | undefined) ?? []).filter((n) => n !== this.nodeId)
    if (nodes.length === 0) return
    const p = cmd.pipeline()
    for (const n of nodes) p.exists(this.keys.node(n))
    const ex = (await p.exec()) ?? []
    for (const [i, n] of nodes.entries()) if (ex[i]?.[1] === 0) await this.reap(n)
  }

  private async reap(node: string): Promise<void> {
    const res = (await this.cmd!.eval(
      REAP,
      5,
      this.keys.nodes,
      this.keys.presence,
      this.keys.node(node),
      this.keys.online,
      this.keys.bus,
      node,
      encodeBus(this.nodeId, { type: 'reaped', node }),
    )) as unknown[]
    if (!Array.isArray(res) || res.length === 0) return
    const [count, ...offline] = res
    const removed = typeof count === 'number' ? count : 0
    this.counters.reaped += removed
    this.log.warn({ node, sessions: removed, offline: offline.length }, 'reaped the sessions of a dead node')
    const at = Date.now()
    for (const text of offline) {
      if (typeof text !== 'string') continue
      let p: PresenceInfo
      try {
        p = JSON.parse(text) as PresenceInfo
      } catch {
        continue
      }
      const m: BusMessage = {
        type: 'broadcast',
        ev: { type: 'presence', user: { id: p.id, name: p.name }, online: false, protocol: p.protocol, at },
        except: p.id,
      }
      this.publish(m)
      this.onMessage(m)
    }
  }

  publish(m: BusMessage): void {
    if (m.type === 'receipt') {
      // To the nodes holding the sender; none known (it left meanwhile): this node's handler stores it.
      const nodes = this.holders(m.to)
      if (nodes === undefined) this.onMessage(m)
      else for (const node of nodes) this.box(node).events.push(m)
      if (nodes !== undefined) this.flushSoon()
      return
    }
    if (m.type === 'event') {
      // To the nodes holding the user, when this node knows them; to all while it does not (a login just made).
      const nodes = this.holders(m.to)
      if (nodes !== undefined) {
        for (const node of nodes) this.box(node).events.push(m)
        this.flushSoon()
        return
      }
    }
    this.send(this.keys.bus, m)
  }

  /**
   * Publish `m` on `channel`. `receipts` (a node's batch carries them) come back to this node's handler when no
   * subscriber received the publish (the node's subscription is down, or it died and is not reaped yet) or it
   * failed: the handler stores them, so a receipt is either in a node's hands or in the sender's log.
   */
  private send(channel: string, m: WireMessage, receipts?: BusMessage[]): void {
    if (this.cmd === undefined || this.closed) return
    this.counters.published++
    const sent = this.cmd.publish(channel, encodeBus(this.nodeId, m))
    if (receipts === undefined) {
      sent.catch((err: unknown) => this.log.warn({ err, type: m.type }, 'bus publish failed'))
      return
    }
    sent.then(
      (received) => {
        if (received === 0) this.returned(receipts)
      },
      (err: unknown) => {
        this.log.warn({ err, type: m.type }, 'bus publish failed')
        this.returned(receipts)
      },
    )
  }

  private returned(receipts: BusMessage[]): void {
    if (this.closed) return
    this.counters.returnedReceipts += receipts.length
    for (const r of receipts) this.onMessage(r)
  }

  elsewhere(user: number): boolean {
    return this.holders(user) !== undefined
  }

  wake(msg: Message): boolean {
    this.recent.set(msg.to, Date.now())
    const nodes = this.holders(msg.to)
    if (nodes === undefined) return false
    for (const node of nodes) this.queue(node, msg.to, msg.body.length <= CARRY_MAX_BYTES ? msg : null)
    return true
  }

  /** The other nodes holding a session of `user`, as this node's copy of the registry has them (tests, routing). */
  knownHolders(user: number): string[] {
    return (this.holders(user) ?? []).sort()
  }

  /** The other nodes holding a session of `user`, by this node's copy of the registry; undefined if none. */
  private holders(user: number): string[] | undefined {
    const devices = this.where.get(user)
    if (devices === undefined) return undefined
    let out: string[] | undefined
    for (const node of devices.values()) if (node !== this.nodeId && !out?.includes(node)) (out ??= []).push(node)
    return out
  }

  private box(node: string): { wakes: Map<number, Message[] | null>; events: BusMessage[]; bytes: number } {
    let box = this.outbox.get(node)
    if (box === undefined) this.outbox.set(node, (box = { wakes: new Map(), events: [], bytes: 0 }))
    return box
  }

  /** A plain wake for `user` to `node`, whose session may have read its log before this node committed for it. */
  private catchUp(node: string, user: number): void {
    this.counters.catchUpWakes++
    this.queue(node, user, null)
  }

  /** Add a wake for `user` to `node`'s batch: carrying `msg`, or (null) a plain one, which reads the store. */
  private queue(node: string, user: number, msg: Message | null): void {
    const box = this.box(node)
    const msgs = box.wakes.get(user)
    if (msg === null || msgs === null) box.wakes.set(user, null)
    else if (msgs === undefined) box.wakes.set(user, [msg])
    else msgs.push(msg)
    if (msg !== null) box.bytes += msg.body.length
    if (box.bytes >= BATCH_MAX_BYTES) this.flushNode(node, box)
    else this.flushSoon()
  }

  private flushSoon(): void {
    if (this.flushing !== undefined) return
    this.flushing = setImmediate(() => {
      this.flushing = undefined
      for (const [node, box] of this.outbox) this.flushNode(node, box)
    })
  }

  private flushNode(node: string, box: { wakes: Map<number, Message[] | null>; events: BusMessage[] }): void {
    this.outbox.delete(node)
    const msgs: BusMessage[] = box.events
    for (const [user, carried] of box.wakes)
      msgs.push(carried === null ? { type: 'wake', user } : { type: 'wake', user, msgs: carried })
    if (msgs.length === 0) return
    const receipts = box.events.filter((e) => e.type === 'receipt')
    this.send(
      this.keys.inbox(node),
      msgs.length === 1 ? msgs[0]! : { type: 'batch', msgs },
      receipts.length > 0 ? receipts : undefined,
    )
  }

  /** ONLINE_IF_NEWER's arguments for `info`, to run on the connection or queue on a transaction. */
  private onlineArgs(info: PresenceInfo): [string, number, ...string[]] {
    const { presence, online, bus } = this.keys
    const field = fieldOf(info.id, info.device)
    const said = encodeBus(this.nodeId, {
      type: 'where',
      user: info.id,
      device: info.device ?? 0,
      node: this.nodeId,
      online: true,
    })
    return [
      ONLINE_IF_NEWER,
      3,
      presence,
      online,
      bus,
      field,
      String(info.id),
      JSON.stringify(info),
      String(info.since),
      this.nodeId,
      said,
    ]
  }

  /** OFFLINE_IF_MINE's arguments for a device of `user`. */
  private offlineArgs(user: number, device: number): [string, number, ...string[]] {
    const { presence, online, bus } = this.keys
    const said = encodeBus(this.nodeId, { type: 'where', user, device, node: this.nodeId, online: false })
    return [OFFLINE_IF_MINE, 3, presence, online, bus, fieldOf(user, device), String(user), this.nodeId, said]
  }

  async setOnline(info: PresenceInfo): Promise<void> {
    const p: PresenceInfo = { ...info, node: this.nodeId }
    let devices = this.local.get(info.id)
    if (devices === undefined) this.local.set(info.id, (devices = new Map()))
    devices.set(info.device ?? 0, p)
    await this.cmd!.eval(...this.onlineArgs(p))
  }

  async setOffline(user: number, device: number): Promise<void> {
    const devices = this.local.get(user)
    if (devices !== undefined) {
      devices.delete(device)
      if (devices.size === 0) this.local.delete(user)
    }
    await this.cmd!.eval(...this.offlineArgs(user, device))
  }

  async online(): Promise<PresenceInfo[]> {
    const all = await this.cmd!.hgetall(this.keys.presence)
    const out: PresenceInfo[] = []
    for (const text of Object.values(all)) {
      try {
        out.push(JSON.parse(text) as PresenceInfo)
      } catch {
        // an entry written by something else: not a session
      }
    }
    return out
  }

  async isOnline(user: number): Promise<boolean> {
    if (this.local.has(user)) return true
    return (await this.cmd!.hexists(this.keys.online, String(user))) === 1
  }

  /** Which node holds the session of `user`'s `device`, if any (for routing and tests). */
  async nodeOf(user: number, device: number): Promise<string | undefined> {
    const text = await this.cmd!.hget(this.keys.presence, fieldOf(user, device))
    if (text === null) return undefined
    try {
      return (JSON.parse(text) as PresenceInfo).node
    } catch {
      return undefined
    }
  }

  /**
   * The nodes holding a session of some device of `user`, sorted (for routing and tests). Scans the presence
   * hash for the user's fields: O(every online device), unlike isOnline.
   */
  async nodesOf(user: number): Promise<string[]> {
    const nodes = new Set<string>()
    let cursor = '0'
    do {
      const [next, flat] = await this.cmd!.hscan(this.keys.presence, cursor, 'MATCH', `${user}:*`, 'COUNT', 1000)
      cursor = next
      for (let i = 1; i < flat.length; i += 2) {
        try {
          const node = (JSON.parse(flat[i]!) as PresenceInfo).node
          if (typeof node === 'string') nodes.add(node)
        } catch {
          // an entry written by something else: not a session
        }
      }
    } while (cursor !== '0')
    return [...nodes].sort()
  }

  /** Graceful: this node's sessions leave the registry and the node leaves the set. */
  async close(): Promise<void> {
    if (this.closed) return
    if (this.flushing !== undefined) clearImmediate(this.flushing)
    this.flushing = undefined
    for (const [node, box] of this.outbox) this.flushNode(node, box)
    this.closed = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    await this.beating
    const cmd = this.cmd
    if (cmd !== undefined) {
      try {
        const m = cmd.multi()
        for (const [user, devices] of this.local) for (const device of devices.keys()) m.eval(...this.offlineArgs(user, device))
        m.srem(this.keys.nodes, this.nodeId)
        m.del(this.keys.node(this.nodeId))
        await m.exec()
      } catch (err) {
        this.log.warn({ err }, 'leaving the cluster registry failed')
      }
      this.local.clear()
      await cmd.quit().catch(() => cmd.disconnect())
    }
    await this.sub?.quit().catch(() => this.sub?.disconnect())
  }

  /**
   * Stop as if the process had died (tests, and a last resort on a fatal error): connections dropped, nothing
   * cleaned up. The other nodes reap this node's sessions once its key expires.
   */
  kill(): void {
    if (this.flushing !== undefined) clearImmediate(this.flushing)
    this.outbox.clear()
    this.closed = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.cmd?.disconnect()
    this.sub?.disconnect()
  }
}
