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
import { dedupeKeys, planCommit, planRelease, usersOf, type QueueCounters } from '../plan.js'
import type { NewCopy, QueueStats, Store, StoredMessage, StoreOp, StoreResult, UserRecord } from '../store.js'

interface UserState extends QueueCounters {
  rec: UserRecord
  lastSeen: number | undefined
  /** Queued messages by seq; a Map keeps insertion order, which is seq order. */
  queue: Map<number, StoredMessage>
}

/** Everything a database would hold. */
interface MemoryData {
  nextUserId: number
  users: Map<number, UserState>
  names: Map<string, number>
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
  return out
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

  async createUser(name: string, tokenHash: string | null, now: number): Promise<UserRecord> {
    const d = this.data
    const skeleton = nameSkeleton(name)
    if (d.names.has(name) || d.skeletons.has(skeleton)) throw this.nameTaken(name, skeleton)
    const rec: UserRecord = { id: d.nextUserId++, name, tokenHash, createdAt: now }
    d.users.set(rec.id, { rec, lastSeen: undefined, next: 1, count: 0, bytes: 0, queue: new Map() })
    d.names.set(name, rec.id)
    d.skeletons.set(skeleton, rec.id)
    return { ...rec }
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
      if (out.length < limit && u.rec.tokenHash === null && (u.lastSeen ?? u.rec.createdAt) < before) out.push({ ...u.rec })
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

  async setTokenHash(id: number, tokenHash: string | null): Promise<void> {
    const u = this.data.users.get(id)
    if (u !== undefined) u.rec = { ...u.rec, tokenHash }
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
    return [...u.queue.values()]
  }

  async countUsers(): Promise<number> {
    return this.data.users.size
  }

  async lastSeen(id: number): Promise<number | undefined> {
    return this.data.users.get(id)?.lastSeen
  }

  async setLastSeen(id: number, at: number): Promise<void> {
    const u = this.data.users.get(id)
    if (u !== undefined) u.lastSeen = at
  }

  // ---------------------------------------------------------------- queues

  async commit(ops: StoreOp[]): Promise<StoreResult[]> {
    const d = this.data
    const counters = new Map<number, QueueCounters>()
    for (const id of usersOf(ops)) {
      const u = d.users.get(id)
      if (u !== undefined) counters.set(id, { next: u.next, count: u.count, bytes: u.bytes })
    }
    const fresh = new Set<string>()
    for (const k of dedupeKeys(ops)) {
      const key = `${k.sender}:${k.msgId}`
      if (d.dedupe.has(key)) continue
      d.dedupe.set(key, k.at)
      fresh.add(key)
    }
    const removed: (StoredMessage | undefined)[] = []
    for (const op of ops) {
      const queue = op.type === 'ack' ? d.users.get(op.user)?.queue : undefined
      const m = op.type === 'ack' ? queue?.get(op.seq) : undefined
      if (m !== undefined) queue!.delete(m.seq)
      removed.push(m)
    }
    const plan = planCommit({ ops, counters, fresh: (s, m) => fresh.has(`${s}:${m}`), removed })
    for (const k of plan.released) d.dedupe.delete(`${k.sender}:${k.msgId}`)
    for (const m of plan.queued) d.users.get(m.to)!.queue.set(m.seq, stored(m, m.seq))
    for (const c of plan.held) d.held.push({ id: d.nextHeldId++, copy: stored(c, 0) })
    this.applyCounters(plan.counters)
    return plan.results
  }

  private applyCounters(counters: Map<number, QueueCounters>): void {
    for (const [id, c] of counters) {
      const u = this.data.users.get(id)!
      u.next = c.next
      u.count = c.count
      u.bytes = c.bytes
    }
  }

  async readQueue(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = []
    const queue = this.data.users.get(user)?.queue
    if (queue === undefined) return out
    for (const m of queue.values()) {
      if (out.length >= limit) break
      if (m.seq <= afterSeq || (m.expiresAt !== undefined && m.expiresAt <= now)) continue
      out.push(m)
    }
    return out
  }

  async queueStats(user: number): Promise<QueueStats> {
    const u = this.data.users.get(user)
    return u === undefined ? { count: 0, bytes: 0 } : { count: u.count, bytes: u.bytes }
  }

  async expire(now: number, limit: number): Promise<StoredMessage[]> {
    const due: StoreOp[] = []
    for (const u of this.data.users.values())
      for (const m of u.queue.values()) {
        if (due.length >= limit) break
        if (m.expiresAt !== undefined && m.expiresAt <= now) due.push({ type: 'ack', user: m.to, seq: m.seq })
      }
    const out: StoredMessage[] = []
    for (const r of await this.commit(due)) if (r.type === 'ack' && r.removed !== null) out.push(r.removed)
    return out
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
      if (u !== undefined) counters.set(u.rec.id, { next: u.next, count: u.count, bytes: u.bytes })
    }
    const plan = planRelease(
      due.map((h) => h.copy),
      counters,
    )
    for (const m of plan.queued) d.users.get(m.to)!.queue.set(m.seq, m)
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
