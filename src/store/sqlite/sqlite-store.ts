/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL, so every COMMIT is fsynced.
 * The broker calls commit() once per batch (group commit), which makes one transaction and one fsync
 * carry many messages. better-sqlite3 is synchronous; this process is the only writer, so the per-user
 * counters (next seq, queue length and bytes) are cached here and changed only after a commit succeeds.
 * What a batch does is planned by ../plan.ts; this file reads, deletes and writes.
 */
import Database from './driver.js'
import { kindNumber, messageFromRow, userFromRow, type MessageColumns, type UserColumns } from '../rows.js'
import type { BetterSqlite3 } from './driver.js'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { isStoreError, nameTaken, storageFull, StoreError } from '../errors.js'
import { dedupeKeys, planCommit, planRelease, usersOf, type CommitPlan, type QueueCounters } from '../plan.js'
import { nameSkeleton, SKELETON_VERSION } from '../../core/names.js'
import { fillSkeletons, logSkeletonClash } from '../rows.js'
import type { Logger } from '../../core/types.js'
import type { NewCopy, QueueStats, Store, StoredMessage, StoreOp, StoreResult, UserRecord } from '../store.js'

const SCHEMA_VERSION = 3
const RECENT_MAX = 100_000
const RECENT_MAX_BYTES = 32 * 1024 * 1024

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  token_hash TEXT,
  created_at INTEGER NOT NULL,
  next_seq INTEGER NOT NULL DEFAULT 1,
  last_seen INTEGER,
  skeleton TEXT
);
CREATE TABLE IF NOT EXISTS queue (
  user INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  topic TEXT,
  expires_at INTEGER,
  not_before INTEGER,
  file_id TEXT,
  body BLOB NOT NULL,
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_expires ON queue (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS held (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  topic TEXT,
  expires_at INTEGER,
  file_id TEXT,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS held_due ON held (not_before);
CREATE INDEX IF NOT EXISTS queue_file ON queue (file_id) WHERE file_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS held_file ON held (file_id) WHERE file_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedupe (
  sender INTEGER NOT NULL,
  msg_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (sender, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_at ON dedupe (at);
CREATE TABLE IF NOT EXISTS subs (
  topic TEXT NOT NULL,
  user INTEGER NOT NULL,
  PRIMARY KEY (topic, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subs_user ON subs (user);
CREATE TABLE IF NOT EXISTS blocks (
  user INTEGER NOT NULL,
  target INTEGER NOT NULL,
  PRIMARY KEY (user, target)
) WITHOUT ROWID;
`

interface QueueRow extends MessageColumns {
  user: number
}

interface UserRow extends UserColumns {
  next_seq: number
}

function rowToMessage(r: QueueRow): StoredMessage {
  return messageFromRow(r, r.user)
}

const rowToUser = userFromRow

/** SQLite's codes for a write that found no room: the disk (or quota) is full, or the OS said ENOSPC/EDQUOT. */
function isFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: string }).code ?? ''
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_FULL_') || /ENOSPC|EDQUOT|database or disk is full/i.test(err.message)
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE'
}

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:' (tests of the store's logic only: nothing is durable). */
  path: string
  /** Told of existing users whose names look alike, found while filling the skeleton column. */
  logger?: Logger
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  private db!: BetterSqlite3.Database
  private stmts!: ReturnType<SqliteStore['prepare']>
  /** user → next seq to hand out; loaded lazily, updated after each successful commit. */
  private nextSeq = new Map<number, number>()
  /** user → queue length and bytes; loaded lazily. */
  private stats = new Map<number, QueueStats>()
  /**
   * Messages this process stored lately, by user and seq, so that acknowledging one — the common case, soon
   * after it was stored — is a plain DELETE instead of DELETE … RETURNING, which costs about three times as
   * much. Bounded by count and bytes; dropped whole when full (the RETURNING path is always correct).
   */
  private recent = new Map<number, Map<number, StoredMessage>>()
  private recentCount = 0
  private recentBytes = 0

  constructor(private readonly opts: SqliteStoreOptions) {}

  async open(): Promise<void> {
    if (this.opts.path !== ':memory:') mkdirSync(dirname(this.opts.path), { recursive: true })
    const db = new Database(this.opts.path)
    db.pragma('journal_mode = WAL')
    // FULL: the WAL is fsynced at every commit, so an acknowledged message survives a power cut.
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = OFF')
    db.pragma('busy_timeout = 5000')
    db.exec(SCHEMA)
    const version = db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined
    if (version !== undefined && Number(version.value) > SCHEMA_VERSION)
      throw new StoreError('SCHEMA_TOO_NEW', `database schema ${version.value} is newer than this program (${SCHEMA_VERSION})`)
    // Version 2: users.last_seen. A new file gets it from SCHEMA; a version-1 file gets it here.
    const columns = db.prepare(`PRAGMA table_info(users)`).all() as { name: string }[]
    if (!columns.some((c) => c.name === 'last_seen')) db.exec(`ALTER TABLE users ADD COLUMN last_seen INTEGER`)
    // Version 3: users.skeleton, the name's confusable skeleton under a unique index, so that a look-alike of a
    // name is refused by the same insert that would take it. Filled for existing rows (and refilled when the
    // skeleton function changes) below.
    if (!columns.some((c) => c.name === 'skeleton')) db.exec(`ALTER TABLE users ADD COLUMN skeleton TEXT`)
    db.exec(`CREATE UNIQUE INDEX IF NOT EXISTS users_skeleton ON users (skeleton)`)
    const skeletonVersion = db.prepare(`SELECT value FROM meta WHERE key = 'skeleton'`).get() as { value: string } | undefined
    if (skeletonVersion?.value !== SKELETON_VERSION)
      db.transaction(() => {
        const rows = db.prepare(`SELECT id, name FROM users ORDER BY id`).all() as { id: number; name: string }[]
        const set = db.prepare(`UPDATE users SET skeleton = ? WHERE id = ?`)
        const clash = fillSkeletons(
          rows,
          (id, skeleton) => set.run(skeleton, id),
          () => db.exec(`UPDATE users SET skeleton = NULL`),
        )
        logSkeletonClash(this.opts.logger, clash)
        db.prepare(
          `INSERT INTO meta (key, value) VALUES ('skeleton', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        ).run(SKELETON_VERSION)
      })()
    db.prepare(`INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(
      String(SCHEMA_VERSION),
    )
    this.db = db
    this.stmts = this.prepare()
  }

  private prepare() {
    const db = this.db
    return {
      insertUser: db.prepare(`INSERT INTO users (name, skeleton, token_hash, created_at) VALUES (?, ?, ?, ?)`),
      userById: db.prepare(`SELECT * FROM users WHERE id = ?`),
      userByName: db.prepare(`SELECT * FROM users WHERE name = ?`),
      userBySkeleton: db.prepare(`SELECT * FROM users WHERE skeleton = ?`),
      staleTokenless: db.prepare(
        `SELECT * FROM users WHERE token_hash IS NULL AND coalesce(last_seen, created_at) < ? ORDER BY id LIMIT ?`,
      ),
      rename: db.prepare(`UPDATE users SET name = ?, skeleton = ? WHERE id = ?`),
      setToken: db.prepare(`UPDATE users SET token_hash = ? WHERE id = ?`),
      deleteUser: db.prepare(`DELETE FROM users WHERE id = ?`),
      deleteQueue: db.prepare(`DELETE FROM queue WHERE user = ? RETURNING *`),
      deleteSubs: db.prepare(`DELETE FROM subs WHERE user = ?`),
      deleteBlocks: db.prepare(`DELETE FROM blocks WHERE user = ? OR target = ?`),
      countUsers: db.prepare(`SELECT COUNT(*) AS n FROM users`),
      lastSeen: db.prepare(`SELECT last_seen FROM users WHERE id = ?`),
      setLastSeen: db.prepare(`UPDATE users SET last_seen = ? WHERE id = ?`),
      nextSeq: db.prepare(`SELECT next_seq FROM users WHERE id = ?`),
      setNextSeq: db.prepare(`UPDATE users SET next_seq = ? WHERE id = ?`),
      insertMsg: db.prepare(
        `INSERT INTO queue (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteMsg: db.prepare(`DELETE FROM queue WHERE user = ? AND seq = ? RETURNING *`),
      deleteKnown: db.prepare(`DELETE FROM queue WHERE user = ? AND seq = ?`),
      dedupe: db.prepare(`INSERT OR IGNORE INTO dedupe (sender, msg_id, at) VALUES (?, ?, ?)`),
      undedupe: db.prepare(`DELETE FROM dedupe WHERE sender = ? AND msg_id = ?`),
      readQueue: db.prepare(
        `SELECT * FROM queue WHERE user = ? AND seq > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?`,
      ),
      insertHeld: db.prepare(
        `INSERT INTO held (user, not_before, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, file_id, body)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      dueHeld: db.prepare(
        `DELETE FROM held WHERE id IN (SELECT id FROM held WHERE not_before <= ? ORDER BY not_before, id LIMIT ?) RETURNING *`,
      ),
      deleteHeld: db.prepare(`DELETE FROM held WHERE user = ?`),
      queueStats: db.prepare(`SELECT COUNT(*) AS count, COALESCE(SUM(LENGTH(body)), 0) AS bytes FROM queue WHERE user = ?`),
      expired: db.prepare(`SELECT user, seq FROM queue WHERE expires_at IS NOT NULL AND expires_at <= ? LIMIT ?`),
      pruneDedupe: db.prepare(`DELETE FROM dedupe WHERE at < ?`),
      subscribe: db.prepare(`INSERT OR IGNORE INTO subs (topic, user) VALUES (?, ?)`),
      unsubscribe: db.prepare(`DELETE FROM subs WHERE topic = ? AND user = ?`),
      subscribers: db.prepare(`SELECT user FROM subs WHERE topic = ? ORDER BY user`),
      subscriptions: db.prepare(`SELECT topic FROM subs WHERE user = ? ORDER BY topic`),
      topics: db.prepare(`SELECT topic, COUNT(*) AS subscribers FROM subs GROUP BY topic ORDER BY topic`),
      block: db.prepare(`INSERT OR IGNORE INTO blocks (user, target) VALUES (?, ?)`),
      unblock: db.prepare(`DELETE FROM blocks WHERE user = ? AND target = ?`),
      isBlocked: db.prepare(`SELECT 1 FROM blocks WHERE user = ? AND target = ?`),
      blocked: db.prepare(`SELECT target FROM blocks WHERE user = ? ORDER BY target`),
      ping: db.prepare(`SELECT 1`),
      probe: db.prepare(
        `INSERT INTO meta (key, value) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      ),
    }
  }

  async close(): Promise<void> {
    if (this.db?.open) this.db.close()
  }

  /**
   * Cheap liveness check; while the disk is full (a write failed for want of space and none has succeeded since)
   * it also tries a one-row write, so that /healthz says unhealthy until the store can write again.
   */
  async ping(): Promise<void> {
    this.stmts.ping.get()
    if (this.full) {
      this.stmts.probe.run(String(Date.now()))
      this.full = false
    }
  }

  /** Whether the last write failed for want of space (cleared by the next write that succeeds, or a probe in ping). */
  private full = false

  /** The outcome of a public method (see the end of this file): a full disk becomes StoreError FULL naming the data directory. */
  private settle<T>(name: string, out: Promise<T>): Promise<T> {
    return out.then(
      (v) => {
        if (this.full && WRITES.has(name)) this.full = false
        return v
      },
      (err: unknown) => {
        if (isStoreError(err) || !isFull(err)) throw err
        this.full = true
        throw storageFull(dirname(this.opts.path), err)
      },
    )
  }

  async createUser(name: string, tokenHash: string | null, now: number): Promise<UserRecord> {
    try {
      const info = this.stmts.insertUser.run(name, nameSkeleton(name), tokenHash, now)
      const id = Number(info.lastInsertRowid)
      this.nextSeq.set(id, 1)
      this.stats.set(id, { count: 0, bytes: 0 })
      return { id, name, tokenHash, createdAt: now }
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(name)
      throw err
    }
  }

  /** NAME_TAKEN for `name`, naming the registered name it looks like when that is not the same. */
  private nameTaken(name: string): StoreError {
    const holder = this.stmts.userBySkeleton.get(nameSkeleton(name)) as UserRow | undefined
    return nameTaken(name, holder?.name)
  }

  async userLike(name: string): Promise<UserRecord | undefined> {
    const r = this.stmts.userBySkeleton.get(nameSkeleton(name)) as UserRow | undefined
    return r && rowToUser(r)
  }

  async staleTokenless(before: number, limit: number): Promise<UserRecord[]> {
    return (this.stmts.staleTokenless.all(before, limit) as UserRow[]).map(rowToUser)
  }

  async userById(id: number): Promise<UserRecord | undefined> {
    const r = this.stmts.userById.get(id) as UserRow | undefined
    return r && rowToUser(r)
  }

  async userByName(name: string): Promise<UserRecord | undefined> {
    const r = this.stmts.userByName.get(name) as UserRow | undefined
    return r && rowToUser(r)
  }

  async renameUser(id: number, name: string): Promise<void> {
    try {
      this.stmts.rename.run(name, nameSkeleton(name), id)
    } catch (err) {
      if (isUniqueViolation(err)) throw this.nameTaken(name)
      throw err
    }
  }

  async setTokenHash(id: number, tokenHash: string | null): Promise<void> {
    this.stmts.setToken.run(tokenHash, id)
  }

  async deleteUser(id: number): Promise<StoredMessage[]> {
    const rows = this.db.transaction(() => {
      const queued = this.stmts.deleteQueue.all(id) as QueueRow[]
      this.stmts.deleteHeld.run(id)
      this.stmts.deleteSubs.run(id)
      this.stmts.deleteBlocks.run(id, id)
      this.stmts.deleteUser.run(id)
      return queued
    })()
    this.nextSeq.delete(id)
    this.stats.delete(id)
    const mine = this.recent.get(id)
    if (mine !== undefined) for (const [seq, m] of mine) this.forgetRecent(id, seq, m)
    return rows.map(rowToMessage).sort((a, b) => a.seq - b.seq)
  }

  async lastSeen(id: number): Promise<number | undefined> {
    const r = this.stmts.lastSeen.get(id) as { last_seen: number | null } | undefined
    return r?.last_seen ?? undefined
  }

  async setLastSeen(id: number, at: number): Promise<void> {
    this.stmts.setLastSeen.run(at, id)
  }

  async countUsers(): Promise<number> {
    return (this.stmts.countUsers.get() as { n: number }).n
  }

  private loadNextSeq(user: number): number | undefined {
    let n = this.nextSeq.get(user)
    if (n === undefined) {
      const r = this.stmts.nextSeq.get(user) as { next_seq: number } | undefined
      if (r === undefined) return undefined
      n = r.next_seq
      this.nextSeq.set(user, n)
    }
    return n
  }

  private loadStats(user: number): QueueStats {
    let s = this.stats.get(user)
    if (s === undefined) {
      s = this.stmts.queueStats.get(user) as QueueStats
      this.stats.set(user, { count: s.count, bytes: s.bytes })
    }
    return s
  }

  /** The counters of `user` as cached (loaded on first use), or undefined if it does not exist. */
  private counters(user: number): QueueCounters | undefined {
    const next = this.loadNextSeq(user)
    if (next === undefined) return undefined
    const s = this.loadStats(user)
    return { next, count: s.count, bytes: s.bytes }
  }

  async commit(ops: StoreOp[]): Promise<StoreResult[]> {
    if (ops.length === 0) return []
    // The counters before anything is deleted (loaded after an ack's DELETE they would already exclude its row).
    const before = new Map<number, QueueCounters>()
    for (const user of usersOf(ops)) {
      const c = this.counters(user)
      if (c !== undefined) before.set(user, c)
    }
    const plan = this.db.transaction((): CommitPlan => {
      const fresh = new Set<string>()
      for (const k of dedupeKeys(ops))
        if (this.stmts.dedupe.run(k.sender, k.msgId, k.at).changes > 0) fresh.add(`${k.sender}:${k.msgId}`)
      // The rows the acks delete, by op. A second ack of one row in the batch finds it gone, as it should.
      const removed: (StoredMessage | undefined)[] = new Array<StoredMessage | undefined>(ops.length)
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        if (op.type !== 'ack') continue
        // A row this process stored lately is deleted without RETURNING (see `recent`).
        const known = this.recent.get(op.user)?.get(op.seq)
        if (known !== undefined) {
          this.forgetRecent(op.user, op.seq, known)
          if (this.stmts.deleteKnown.run(op.user, op.seq).changes > 0) removed[i] = known
          continue
        }
        const row = this.stmts.deleteMsg.get(op.user, op.seq) as QueueRow | undefined
        if (row !== undefined) removed[i] = rowToMessage(row)
      }
      const plan = planCommit({ ops, counters: before, fresh: (s, m) => fresh.has(`${s}:${m}`), removed })
      for (const k of plan.released) this.stmts.undedupe.run(k.sender, k.msgId)
      for (const m of plan.queued) this.insertQueued(m)
      for (const c of plan.held) this.insertHeld(c)
      for (const [user, c] of plan.counters) if (c.next !== before.get(user)!.next) this.stmts.setNextSeq.run(c.next, user)
      return plan
    })()
    this.applyCounters(plan.counters)
    for (const m of plan.queued) this.remember(m)
    return plan.results
  }

  /** Once committed: the cached counters follow. */
  private applyCounters(counters: Map<number, QueueCounters>): void {
    for (const [user, c] of counters) {
      this.nextSeq.set(user, c.next)
      this.stats.set(user, { count: c.count, bytes: c.bytes })
    }
  }

  private remember(m: StoredMessage): void {
    if (this.recentCount >= RECENT_MAX || this.recentBytes + m.body.length > RECENT_MAX_BYTES) {
      this.recent.clear()
      this.recentCount = 0
      this.recentBytes = 0
    }
    let byUser = this.recent.get(m.to)
    if (byUser === undefined) this.recent.set(m.to, (byUser = new Map()))
    byUser.set(m.seq, m)
    this.recentCount++
    this.recentBytes += m.body.length
  }

  private forgetRecent(user: number, seq: number, m: StoredMessage): void {
    const byUser = this.recent.get(user)
    if (byUser === undefined || !byUser.delete(seq)) return
    if (byUser.size === 0) this.recent.delete(user)
    this.recentCount--
    this.recentBytes -= m.body.length
  }

  private insertQueued(m: StoredMessage): void {
    this.stmts.insertMsg.run(
      m.to,
      m.seq,
      m.from,
      m.fromName,
      m.msgId,
      kindNumber(m.kind),
      m.ts,
      m.flags,
      m.topic ?? null,
      m.expiresAt ?? null,
      m.notBefore ?? null,
      m.fileId ?? null,
      m.body,
    )
  }

  private insertHeld(c: NewCopy): void {
    this.stmts.insertHeld.run(
      c.to,
      c.notBefore,
      c.from,
      c.fromName,
      c.msgId,
      kindNumber(c.kind),
      c.ts,
      c.flags,
      c.topic ?? null,
      c.expiresAt ?? null,
      c.fileId ?? null,
      c.body,
    )
  }

  async readQueue(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    return (this.stmts.readQueue.all(user, afterSeq, now, limit) as QueueRow[]).map(rowToMessage)
  }

  async queueStats(user: number): Promise<QueueStats> {
    const s = this.loadStats(user)
    return { count: s.count, bytes: s.bytes }
  }

  async expire(now: number, limit: number): Promise<StoredMessage[]> {
    const due = this.stmts.expired.all(now, limit) as { user: number; seq: number }[]
    if (due.length === 0) return []
    const results = await this.commit(due.map((d) => ({ type: 'ack' as const, user: d.user, seq: d.seq })))
    const out: StoredMessage[] = []
    for (const r of results) if (r.type === 'ack' && r.removed !== null) out.push(r.removed)
    return out
  }

  async releaseDue(now: number, limit: number): Promise<StoredMessage[]> {
    const plan = this.db.transaction(() => {
      const rows = this.stmts.dueHeld.all(now, limit) as (QueueRow & { id: number })[]
      rows.sort((a, b) => a.not_before! - b.not_before! || a.id - b.id)
      const before = new Map<number, QueueCounters>()
      for (const r of rows)
        if (!before.has(r.user)) {
          const c = this.counters(r.user)
          if (c !== undefined) before.set(r.user, c)
        }
      const plan = planRelease(
        rows.map((r) => rowToMessage({ ...r, seq: 0 })),
        before,
      )
      for (const m of plan.queued) this.insertQueued(m)
      for (const [user, c] of plan.counters) this.stmts.setNextSeq.run(c.next, user)
      return plan
    })()
    this.applyCounters(plan.counters)
    return plan.queued
  }

  async pruneDedupe(before: number): Promise<number> {
    return this.stmts.pruneDedupe.run(before).changes
  }

  async subscribe(user: number, topic: string): Promise<boolean> {
    return this.stmts.subscribe.run(topic, user).changes > 0
  }

  async unsubscribe(user: number, topic: string): Promise<boolean> {
    return this.stmts.unsubscribe.run(topic, user).changes > 0
  }

  async subscribers(topic: string): Promise<number[]> {
    return (this.stmts.subscribers.all(topic) as { user: number }[]).map((r) => r.user)
  }

  async subscriptions(user: number): Promise<string[]> {
    return (this.stmts.subscriptions.all(user) as { topic: string }[]).map((r) => r.topic)
  }

  async topics(): Promise<{ topic: string; subscribers: number }[]> {
    return this.stmts.topics.all() as { topic: string; subscribers: number }[]
  }

  async block(user: number, target: number): Promise<boolean> {
    return this.stmts.block.run(user, target).changes > 0
  }

  async unblock(user: number, target: number): Promise<boolean> {
    return this.stmts.unblock.run(user, target).changes > 0
  }

  async isBlocked(recipient: number, sender: number): Promise<boolean> {
    return this.stmts.isBlocked.get(recipient, sender) !== undefined
  }

  async blocked(user: number): Promise<number[]> {
    return (this.stmts.blocked.all(user) as { target: number }[]).map((r) => r.target)
  }
}

/** The methods whose success shows the store can write again. */
const WRITES = new Set(['commit', 'createUser', 'renameUser', 'setTokenHash', 'setLastSeen', 'subscribe', 'block'])

// A full disk can fail any statement that writes (a commit, a registration, a subscription, the WAL growing): every
// public method of the store reports it the same way, as StoreError FULL (src/store/errors.ts), whatever it was doing.
for (const name of Object.getOwnPropertyNames(SqliteStore.prototype)) {
  const method: unknown = Object.getOwnPropertyDescriptor(SqliteStore.prototype, name)?.value
  if (name === 'constructor' || name === 'settle' || typeof method !== 'function') continue
  Object.defineProperty(SqliteStore.prototype, name, {
    value: function (this: SqliteStore, ...args: unknown[]): unknown {
      const out: unknown = (method as (...a: unknown[]) => unknown).apply(this, args)
      return out instanceof Promise ? this['settle'](name, out) : out
    },
    writable: true,
    configurable: true,
  })
}
