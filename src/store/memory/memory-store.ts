/**
 * A Store in this process's memory: no file, no socket, nothing durable. The core's unit tests run the real
 * Broker on it (test/unit/core/), and it passes the same contract suite as SQLite and PostgreSQL
 * (test/contract/memory.test.ts), with the same batch planner (../plan.ts) deciding every commit.
 *
 * Instances opened on the same name (`memory://NAME`) share their data while the process lives, so closing and
 * opening again is a restart that keeps it, and two open instances are two nodes on one database. An unnamed
 * store (`memory:` or `memory://`) has data of its own, dropped at close.
 */
import { nameTaken } from '../errors.js'
import { nameSkeleton } from '../../core/names.js'
import { copyAcks, emptyAcks, hasAck } from '../acks.js'
import { dedupeKeys, devicesOf, planCommit, planExpire, planRelease, usersOf, type QueueCounters } from '../plan.js'
import type {
  DeviceRecord,
  HistoryQuery,
  NewCopy,
  QueueStats,
  RetentionPolicy,
  Store,
  StoredMessage,
  StoreOp,
  StoreResult,
  UserRecord,
} from '../store.js'

interface UserState extends QueueCounters {
  rec: UserRecord
  lastSeen: number | undefined
  /** The log by seq; a Map keeps insertion order, which is seq order. */
  log: Map<number, StoredMessage>
  /** Seqs marked read. */
  read: Set<number>
}

const TEXT_KINDS = new Set(['text', 'file'])

/** Everything a database would hold. */
interface MemoryData {
  nextUserId: number
  users: Map<number, UserState>
  names: Map<string, number>
  devices: Map<number, DeviceRecord>
  tokens: Map<string, number>
  nextDeviceId: number
  /** Confusable skeleton of each name (core/names.ts) → user: a look-alike is taken like the name itself. */
  skeletons: Map<string, number>
  held: { id: number; copy: NewCopy }[]
  nextHeldId: number
  dedupe: Map<string, number>
  subs: Map<string, Set<number>>
  blocks: Map<number, Set<number>>
}

function emptyData(): MemoryData {
  return {
    nextUserId: 1,
    users: new Map(),
    names: new Map(),
    devices: new Map(),
    tokens: new Map(),
    nextDeviceId: 1,
    skeletons: new Map(),
    held: [],
    nextHeldId: 1,
    dedupe: new Map(),
    subs: new Map(),
    blocks: new Map(),
  }
}

/** Named data, shared by every instance opened on the name. */
const shared = new Map<string, MemoryData>()

/** Byte order of the UTF-8 forms, as SQLite and PostgreSQL (COLLATE "C") sort text. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** A message as the SQL stores give it back: its own body bytes, and no optional field set to undefined. */
function stored(m: NewCopy, seq: number): StoredMessage {
  const out: StoredMessage = {
    seq,
    to: m.to,
    kind: m.kind,
    from: m.from,
    fromName: m.fromName,
    msgId: m.msgId,
    ts: m.ts,
    body: Buffer.from(m.body),
    flags: m.flags,
  }
  if (m.topic !== undefined) out.topic = m.topic
  if (m.expiresAt !== undefined) out.expiresAt = m.expiresAt
  if (m.notBefore !== undefined) out.notBefore = m.notBefore
  if (m.fileId !== undefined) out.fileId = m.fileId
  if (m.peer !== undefined) out.peer = m.peer
  if (m.device !== undefined) out.device = m.device
  return out
}

function copyDevice(d: DeviceRecord): DeviceRecord {
  return { ...d, acks: copyAcks(d.acks) }
}

export interface MemoryStoreOptions {
  /** Instances with the same name share their data; without one, the data is this instance's own. */
  name?: string
}

export class MemoryStore implements Store {
  readonly kind = 'memory'
  private data: MemoryData = emptyData()
  private opened = false

  constructor(private readonly opts: MemoryStoreOptions = {}) {}

  async open(): Promise<void> {
    const name = this.opts.name
    if (name !== undefined) {
      let d = shared.get(name)
      if (d === undefined) shared.set(name, (d = emptyData()))
      this.data = d
    }
    this.opened = true
  }

  async close(): Promise<void> {
    this.opened = false
  }

  /** Forget the named data (a test's cleanup). */
  static drop(name: string): void {
    shared.delete(name)
  }

  async ping(): Promise<void> {
    if (!this.opened) throw new Error('the memory store is closed')
  }

  // ---------------------------------------------------------------- users

  async createUser(
    name: string,
    device: { tokenHash: string | null; label: string },
    now: number,
    passwordHash: string | null = null,
  ): Promise<{ user: UserRecord; device: DeviceRecord }> {
    const d = this.data
    const skeleton = nameSkeleton(name)
    if (d.names.has(name) || d.skeletons.has(skeleton)) throw this.nameTaken(name, skeleton)
    const rec: UserRecord = { id: d.nextUserId++, name, tokenless: device.tokenHash === null, passwordHash, createdAt: now }
    d.users.set(rec.id, {
      rec,
      lastSeen: undefined,
      next: 1,
      count: 0,
      bytes: 0,
      handled: emptyAcks(),
      log: new Map(),
      read: new Set(),
    })
    d.names.set(name, rec.id)
    d.skeletons.set(skeleton, rec.id)
    const dev = this.addDevice(rec.id, device.tokenHash, device.label, now, 0)
    return { user: { ...rec }, device: dev }
  }

  private addDevice(user: number, tokenHash: string | null, label: string, now: number, floor: number): DeviceRecord {
    const d = this.data
    const dev: DeviceRecord = {
      id: d.nextDeviceId++,
      user,
      label,
      tokenHash,
      createdAt: now,
      lastSeen: undefined,
      acks: emptyAcks(floor),
    }
    d.devices.set(dev.id, dev)
    if (tokenHash !== null) d.tokens.set(tokenHash, dev.id)
    return copyDevice(dev)
  }

  private nameTaken(name: string, skeleton: string) {
    const holder = this.data.skeletons.get(skeleton)
    return nameTaken(name, holder === undefined ? undefined : this.data.users.get(holder)?.rec.name)
  }

  async userLike(name: string): Promise<UserRecord | undefined> {
    const id = this.data.skeletons.get(nameSkeleton(name))
    return id === undefined ? undefined : this.userById(id)
  }

  async staleTokenless(before: number, limit: number): Promise<UserRecord[]> {
    const out: UserRecord[] = []
    for (const u of this.data.users.values())
      if (out.length < limit && u.rec.tokenless && (u.lastSeen ?? u.rec.createdAt) < before) out.push({ ...u.rec })
    return out
  }

  async userById(id: number): Promise<UserRecord | undefined> {
    const u = this.data.users.get(id)
    return u && { ...u.rec }
  }

  async userByName(name: string): Promise<UserRecord | undefined> {
    const id = this.data.names.get(name)
    return id === undefined ? undefined : this.userById(id)
  }

  async renameUser(id: number, name: string): Promise<void> {
    const d = this.data
    const skeleton = nameSkeleton(name)
    const owner = d.names.get(name) ?? d.skeletons.get(skeleton)
    if (owner !== undefined && owner !== id) throw this.nameTaken(name, skeleton)
    const u = d.users.get(id)
    if (u === undefined) return
    d.names.delete(u.rec.name)
    if (d.skeletons.get(nameSkeleton(u.rec.name)) === id) d.skeletons.delete(nameSkeleton(u.rec.name))
    u.rec = { ...u.rec, name }
    d.names.set(name, id)
    d.skeletons.set(skeleton, id)
  }

  async setPassword(id: number, passwordHash: string | null): Promise<void> {
    const u = this.data.users.get(id)
    if (u !== undefined) u.rec = { ...u.rec, passwordHash }
  }

  async deleteUser(id: number): Promise<StoredMessage[]> {
    const d = this.data
    const u = d.users.get(id)
    if (u === undefined) return []
    d.users.delete(id)
    d.names.delete(u.rec.name)
    if (d.skeletons.get(nameSkeleton(u.rec.name)) === id) d.skeletons.delete(nameSkeleton(u.rec.name))
    d.held = d.held.filter((h) => h.copy.to !== id)
    for (const [topic, users] of d.subs) if (users.delete(id) && users.size === 0) d.subs.delete(topic)
    d.blocks.delete(id)
    for (const targets of d.blocks.values()) targets.delete(id)
    for (const dev of [...d.devices.values()])
      if (dev.user === id) {
        d.devices.delete(dev.id)
        if (dev.tokenHash !== null) d.tokens.delete(dev.tokenHash)
      }
    return [...u.log.values()].filter((m) => !hasAck(u.handled, m.seq))
  }

  async countUsers(): Promise<number> {
    return this.data.users.size
  }

  async lastSeen(id: number): Promise<number | undefined> {
    return this.data.users.get(id)?.lastSeen
  }

  async setLastSeen(id: number, at: number, device?: number): Promise<void> {
    const u = this.data.users.get(id)
    if (u !== undefined) u.lastSeen = at
    const dev = device === undefined ? undefined : this.data.devices.get(device)
    if (dev !== undefined && dev.user === id) dev.lastSeen = at
  }

  // ---------------------------------------------------------------- devices

  async createDevice(user: number, tokenHash: string, label: string, now: number): Promise<DeviceRecord | undefined> {
    const u = this.data.users.get(user)
    if (u === undefined) return undefined
    return this.addDevice(user, tokenHash, label, now, u.next - 1)
  }

  async deviceByToken(tokenHash: string): Promise<DeviceRecord | undefined> {
    const id = this.data.tokens.get(tokenHash)
    return id === undefined ? undefined : this.deviceById(id)
  }

  async deviceById(id: number): Promise<DeviceRecord | undefined> {
    const dev = this.data.devices.get(id)
    return dev && copyDevice(dev)
  }

  async devices(user: number): Promise<DeviceRecord[]> {
    return [...this.data.devices.values()].filter((d) => d.user === user).map(copyDevice)
  }

  async deleteDevice(user: number, device: number): Promise<boolean> {
    const dev = this.data.devices.get(device)
    if (dev === undefined || dev.user !== user) return false
    this.data.devices.delete(device)
    if (dev.tokenHash !== null) this.data.tokens.delete(dev.tokenHash)
    return true
  }

  // ---------------------------------------------------------------- queues

  async commit(ops: StoreOp[]): Promise<StoreResult[]> {
    const d = this.data
    const counters = new Map<number, QueueCounters>()
    for (const id of usersOf(ops)) {
      const u = d.users.get(id)
      if (u !== undefined) counters.set(id, { next: u.next, count: u.count, bytes: u.bytes, handled: u.handled })
    }
    const devices = new Map<number, ReturnType<typeof emptyAcks>>()
    for (const id of devicesOf(ops)) {
      const dev = d.devices.get(id)
      if (dev !== undefined) devices.set(id, dev.acks)
    }
    // An ack names a device of its own user only (a sent copy's device is its sender's, the copy's `to`).
    for (const op of ops) if (op.type === 'ack' && d.devices.get(op.device)?.user !== op.user) devices.delete(op.device)
    const fresh = new Set<string>()
    for (const k of dedupeKeys(ops)) {
      const key = `${k.sender}:${k.msgId}`
      if (d.dedupe.has(key)) continue
      d.dedupe.set(key, k.at)
      fresh.add(key)
    }
    const rows: (StoredMessage | undefined)[] = []
    const wasRead: boolean[] = []
    for (const op of ops) {
      const u = op.type === 'send' || op.type === 'seen' ? undefined : d.users.get(op.user)
      rows.push(op.type === 'send' || op.type === 'seen' ? undefined : u?.log.get(op.seq))
      wasRead.push(op.type === 'read' && u !== undefined && u.read.has(op.seq))
    }
    const plan = planCommit({ ops, counters, devices, fresh: (s, m) => fresh.has(`${s}:${m}`), rows, wasRead })
    for (const k of plan.released) d.dedupe.delete(`${k.sender}:${k.msgId}`)
    for (const m of plan.queued) d.users.get(m.to)!.log.set(m.seq, stored(m, m.seq))
    for (const c of plan.held) d.held.push({ id: d.nextHeldId++, copy: stored(c, 0) })
    for (const r of plan.reads) d.users.get(r.user)?.read.add(r.seq)
    for (const x of plan.seen) await this.setLastSeen(x.user, x.at, x.device)
    for (const [id, acks] of plan.devices) d.devices.get(id)!.acks = acks
    this.applyCounters(plan.counters)
    return plan.results
  }

  private applyCounters(counters: Map<number, QueueCounters>): void {
    for (const [id, c] of counters) {
      const u = this.data.users.get(id)!
      u.next = c.next
      u.count = c.count
      u.bytes = c.bytes
      u.handled = c.handled
    }
  }

  async readLog(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = []
    const log = this.data.users.get(user)?.log
    if (log === undefined) return out
    for (const m of log.values()) {
      if (out.length >= limit) break
      if (m.seq <= afterSeq || (m.expiresAt !== undefined && m.expiresAt <= now)) continue
      out.push(m)
    }
    return out
  }

  async history(user: number, q: HistoryQuery): Promise<StoredMessage[]> {
    const log = this.data.users.get(user)?.log
    if (log === undefined) return []
    const out: StoredMessage[] = []
    const all = [...log.values()]
    for (let i = all.length - 1; i >= 0 && out.length < q.limit; i--) {
      const m = all[i]!
      if (q.before > 0 && m.seq >= q.before) continue
      if (!TEXT_KINDS.has(m.kind)) continue
      if (q.peer !== undefined && (m.peer !== q.peer || m.topic !== undefined)) continue
      if (q.topic !== undefined && m.topic !== q.topic) continue
      out.push(m)
    }
    return out
  }

  async queueStats(user: number): Promise<QueueStats> {
    const u = this.data.users.get(user)
    return u === undefined ? { count: 0, bytes: 0 } : { count: u.count, bytes: u.bytes }
  }

  async expire(now: number, limit: number): Promise<StoredMessage[]> {
    const due: StoredMessage[] = []
    for (const u of this.data.users.values())
      for (const m of u.log.values()) {
        if (due.length >= limit) break
        if (m.expiresAt !== undefined && m.expiresAt <= now) due.push(m)
      }
    const counters = new Map<number, QueueCounters>()
    for (const m of due) {
      const u = this.data.users.get(m.to)!
      counters.set(m.to, { next: u.next, count: u.count, bytes: u.bytes, handled: u.handled })
    }
    const plan = planExpire(due, counters)
    for (const m of due) this.data.users.get(m.to)!.log.delete(m.seq)
    this.applyCounters(plan.counters)
    return plan.expired
  }

  async retain(policy: RetentionPolicy, limit: number): Promise<number> {
    let n = 0
    for (const u of this.data.users.values()) {
      if (n >= limit) break
      const keepFrom = u.next - policy.keep
      for (const m of [...u.log.values()]) {
        if (n >= limit) break
        if (!hasAck(u.handled, m.seq)) continue
        if (m.ts < policy.before || m.seq < keepFrom) {
          u.log.delete(m.seq)
          u.read.delete(m.seq)
          n++
        }
      }
    }
    return n
  }

  async releaseDue(now: number, limit: number): Promise<StoredMessage[]> {
    const d = this.data
    const due = d.held
      .filter((h) => h.copy.notBefore! <= now)
      .sort((a, b) => a.copy.notBefore! - b.copy.notBefore! || a.id - b.id)
      .slice(0, limit)
    if (due.length === 0) return []
    const taken = new Set(due)
    d.held = d.held.filter((h) => !taken.has(h))
    const counters = new Map<number, QueueCounters>()
    for (const h of due) {
      const u = d.users.get(h.copy.to)
      if (u !== undefined) counters.set(u.rec.id, { next: u.next, count: u.count, bytes: u.bytes, handled: u.handled })
    }
    const plan = planRelease(
      due.map((h) => h.copy),
      counters,
    )
    for (const m of plan.queued) d.users.get(m.to)!.log.set(m.seq, m)
    this.applyCounters(plan.counters)
    return plan.queued
  }

  async pruneDedupe(before: number): Promise<number> {
    let n = 0
    for (const [k, at] of this.data.dedupe)
      if (at < before) {
        this.data.dedupe.delete(k)
        n++
      }
    return n
  }

  // ---------------------------------------------------------------- topics

  async subscribe(user: number, topic: string): Promise<boolean> {
    const subs = this.data.subs
    let users = subs.get(topic)
    if (users === undefined) subs.set(topic, (users = new Set()))
    if (users.has(user)) return false
    users.add(user)
    return true
  }

  async unsubscribe(user: number, topic: string): Promise<boolean> {
    const users = this.data.subs.get(topic)
    if (users === undefined || !users.delete(user)) return false
    if (users.size === 0) this.data.subs.delete(topic)
    return true
  }

  async subscribers(topic: string): Promise<number[]> {
    return [...(this.data.subs.get(topic) ?? [])].sort((a, b) => a - b)
  }

  async subscriptions(user: number): Promise<string[]> {
    const out: string[] = []
    for (const [topic, users] of this.data.subs) if (users.has(user)) out.push(topic)
    return out.sort(byBytes)
  }

  async topics(): Promise<{ topic: string; subscribers: number }[]> {
    return [...this.data.subs]
      .map(([topic, users]) => ({ topic, subscribers: users.size }))
      .sort((a, b) => byBytes(a.topic, b.topic))
  }

  // ---------------------------------------------------------------- blocks

  async block(user: number, target: number): Promise<boolean> {
    let targets = this.data.blocks.get(user)
    if (targets === undefined) this.data.blocks.set(user, (targets = new Set()))
    if (targets.has(target)) return false
    targets.add(target)
    return true
  }

  async unblock(user: number, target: number): Promise<boolean> {
    return this.data.blocks.get(user)?.delete(target) ?? false
  }

  async isBlocked(recipient: number, sender: number): Promise<boolean> {
    return this.data.blocks.get(recipient)?.has(sender) ?? false
  }

  async blocked(user: number): Promise<number[]> {
    return [...(this.data.blocks.get(user) ?? [])].sort((a, b) => a - b)
  }
}

/**
 * A memory store from a URL: `memory:` (data of its own) or `memory://NAME` (data shared by name).
 * @example createMemoryStore('memory://test-1')
 */
export function createMemoryStore(url = 'memory:'): MemoryStore {
  const m = /^memory(?::(?:\/\/(.*))?)?$/i.exec(url)
  if (m === null) throw new Error(`a memory store URL is memory: or memory://NAME, not "${url}"`)
  const name = m[1]
  return new MemoryStore(name === undefined || name === '' ? {} : { name })
}
