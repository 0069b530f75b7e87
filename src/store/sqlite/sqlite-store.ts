/**
 * The embedded store: one SQLite file in WAL mode with synchronous=FULL, so every COMMIT is fsynced.
 * The broker calls commit() once per batch (group commit), which makes one transaction and one fsync
 * carry many messages. better-sqlite3 is synchronous; this process is the only writer, so the per-user
 * counters (next seq, what no device acknowledged, the handled set) and the device cursors are cached here
 * and changed only after a commit succeeds. What a batch does is planned by ../plan.ts; this file reads and
 * writes: a row per message into the user's log, and per batch one UPDATE per device whose cursor moved and
 * one per user whose counters changed (an ack deletes nothing: rows leave in bulk, by retain and expire).
 *
 * A commit appends its messages to `log_tail`, a table with no index, and they move into `log` (keyed by user and
 * seq, with its indexes) a few thousand rows at a time (settle). A commit's cost was the pages it dirtied, not its
 * rows: SQLite writes each changed page whole to the WAL, and an insert into a per-user index dirties a leaf per
 * active user — about 250 pages (1 MB) for a batch of 100 messages among 100 users, three quarters of the commit's
 * time. Appended rows share a few pages; moved thousands at a time, a user's rows share its leaves. The tail is
 * durable like the rest (the same fsynced commit), a move is one transaction (the rows are in one table or the
 * other), and whatever reads or changes the log moves the tail first, so every query sees one table. A move
 * needs no fsync of its own (synchronous=NORMAL for it): lost in a crash, it is undone whole and the rows are still
 * in the tail, and the next fsynced commit makes it durable with everything before it (the WAL is sequential).
 *
 * Schema 4 (the retained log) replaced schema 3's `queue`; a schema-3 file is migrated in place at open
 * (migrateFromQueue).
 */
import Database from './driver.js'
import { Checkpointer, type CheckpointTiming } from './checkpointer.js'
import { deviceFromRow, kindNumber, messageFromRow, userFromRow } from '../rows.js'
import type { DeviceColumns, MessageColumns, UserColumns } from '../rows.js'
import type { BetterSqlite3 } from './driver.js'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { isStoreError, nameTaken, storageFull, StoreError } from '../errors.js'
import { decodeAbove, encodeAbove, hasAck, type AckSet } from '../acks.js'
import {
  dedupeKeys,
  devicesOf,
  planCommit,
  planExpire,
  planRelease,
  usersOf,
  type CommitPlan,
  type QueueCounters,
} from '../plan.js'
import { nameSkeleton, SKELETON_VERSION } from '../../core/names.js'
import { fillSkeletons, logSkeletonClash } from '../rows.js'
import type { Logger } from '../../core/types.js'
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

/**
 * A write waiting for the gathered transaction (SqliteStore.gather): `work` runs as a savepoint of it, `done` once it
 * is durable, on the event loop's same turn.
 */
interface Gathered {
  work(): unknown
  done(v: unknown): unknown
  resolve(v: unknown): void
  reject(err: unknown): void
}

/** How long writes that follow one another gather before they are written together (see SqliteStore.gather). */
const GATHER_MS = 2

/** Log rows of a deleted user removed per transaction (one turn of the event loop: a few ms). */
const PURGE_CHUNK = 2000
/** Log rows removed with the account itself (a deletion is gathered with others: this keeps the batch short). */
const PURGE_INLINE = 200

/** 5: log_tail (the commit's append-only side of the log); 6: bodies (one row for a large body's copies). */
const SCHEMA_VERSION = 6
/**
 * A body at least this long is stored once per message, in `bodies`, and its copies (the recipients', the sender's
 * sent copy) refer to it; a shorter one is inline in each copy's row, where it costs less than a row of its own.
 */
export const SHARED_BODY_BYTES = 256
const EMPTY = Buffer.alloc(0)
/** The tail moves into the log when it holds this many rows (about 10 ms of work), and before any read of it. */
const SETTLE_ROWS = 2048
/** The checkpoint thread starts after this many commits (checkpointer.ts): a short-lived store never needs it. */
const CHECKPOINTER_AFTER = 64
/** SQLite's own default, restored if the thread fails. */
const AUTO_CHECKPOINT = 1000
const RECENT_MAX = 100_000
const RECENT_MAX_BYTES = 32 * 1024 * 1024
/** Users retain() looks at per statement. */
const RETAIN_PAGE = 500
/** Dedupe keys pruneDedupe() removes per statement (a few ms), a turn of the event loop between. */
const PRUNE_CHUNK = 5000
/** retain() walks the log in transactions of about this long, a turn of the event loop each. */
const RETAIN_SLICE_MS = 5

/** A stored message's columns, in log and log_tail alike (log adds `read` and its key). */
const LOG_COLUMNS = `
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
  peer INTEGER,
  device INTEGER,
  body_id INTEGER`

/**
 * A body of SHARED_BODY_BYTES or more, written once for all the copies of its message: a log row with a body_id has
 * an empty body of its own. Each row counts the log rows that refer to it; the last one deleted takes it along.
 * Rows in log_tail count too (they only ever leave it by moving into log, which keeps the count).
 */
const BODIES = `
CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, refs INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS log_body_gone AFTER DELETE ON log WHEN old.body_id IS NOT NULL BEGIN
  UPDATE bodies SET refs = refs - 1 WHERE id = old.body_id;
  DELETE FROM bodies WHERE id = old.body_id AND refs <= 0;
END;`

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  next_seq INTEGER NOT NULL DEFAULT 1,
  last_seen INTEGER,
  skeleton TEXT,
  tokenless INTEGER NOT NULL DEFAULT 0,
  password_hash TEXT,
  -- What no device has acknowledged (what the queue limits count), kept with next_seq by every commit.
  queue_count INTEGER NOT NULL DEFAULT 0,
  queue_bytes INTEGER NOT NULL DEFAULT 0,
  -- The seqs handled (acknowledged by some device, sent copies, expired): an AckSet (acks.ts).
  handled_floor INTEGER NOT NULL DEFAULT 0,
  handled_above TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS users_skeleton ON users (skeleton);
CREATE TABLE IF NOT EXISTS devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user INTEGER NOT NULL,
  label TEXT NOT NULL,
  token_hash TEXT UNIQUE,
  created_at INTEGER NOT NULL,
  last_seen INTEGER,
  ack_floor INTEGER NOT NULL DEFAULT 0,
  ack_above TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS devices_user ON devices (user);
-- A rowid table, not WITHOUT ROWID: rows (bodies inline) are appended in commit order at the end of the table,
-- and (user, seq) is a small unique index beside it. Clustered by (user, seq), every insert landed in the middle
-- of a growing tree, a page split every few 1 KiB rows: the log's direct 1 KiB rate was a third of this.
CREATE TABLE IF NOT EXISTS log (${LOG_COLUMNS},
  read INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user, seq)
);
CREATE INDEX IF NOT EXISTS log_peer ON log (user, peer, seq) WHERE peer IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_topic ON log (user, topic, seq) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_expires ON log (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS log_file ON log (file_id) WHERE file_id IS NOT NULL;
-- What commits appended and has not moved into log yet (SqliteStore.settleTail): log's columns, no key, no index.
CREATE TABLE IF NOT EXISTS log_tail (${LOG_COLUMNS}
);
${BODIES}
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
  body BLOB NOT NULL,
  peer INTEGER,
  device INTEGER
);
CREATE INDEX IF NOT EXISTS held_due ON held (not_before);
CREATE INDEX IF NOT EXISTS held_file ON held (file_id) WHERE file_id IS NOT NULL;
-- Users deleted whose log rows are still being removed, a chunk at a time (SqliteStore.purge).
CREATE TABLE IF NOT EXISTS purge (user INTEGER PRIMARY KEY);
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

/** LOG_COLUMNS' names, in order: what a commit inserts and a move copies. */
const TAIL_COLUMNS = LOG_COLUMNS.split(',')
  .map((c) => c.trim().split(' ')[0])
  .join(', ')

/** What a read of the log selects: its columns and `read`, the body from `bodies` where the row has none of its own. */
const LOG_ROW = `${TAIL_COLUMNS.replace(
  /\bbody\b/,
  'CASE WHEN log.body_id IS NULL THEN log.body ELSE (SELECT data FROM bodies WHERE bodies.id = log.body_id) END AS body',
)}, read`

/** The stored kinds history shows (text 0, file 1: src/schema/message.ts). */
const HISTORY_KINDS = `kind IN (${kindNumber('text')}, ${kindNumber('file')})`

interface LogRow extends MessageColumns {
  user: number
  read: number
}

interface HeldRow extends Omit<MessageColumns, 'seq'> {
  id: number
  user: number
}

interface CounterRow {
  next_seq: number
  queue_count: number
  queue_bytes: number
  handled_floor: number
  handled_above: string
}

interface RetainRow {
  id: number
  next_seq: number
  handled_floor: number
  handled_above: string
}

interface DeviceRow extends DeviceColumns {
  user: number
}

function rowToMessage(r: LogRow): StoredMessage {
  return messageFromRow(r, r.user)
}

const rowToUser = (r: UserColumns): UserRecord => userFromRow(r)

function rowToDevice(r: DeviceRow): DeviceRecord {
  return deviceFromRow(r, r.user)
}

function rowToCounters(r: CounterRow): QueueCounters {
  return {
    next: r.next_seq,
    count: r.queue_count,
    bytes: r.queue_bytes,
    handled: { floor: r.handled_floor, above: decodeAbove(r.handled_above) },
  }
}

/** SQLite's codes for a write that found no room: the disk (or quota) is full, or the OS said ENOSPC/EDQUOT. */
function isFull(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const code = (err as { code?: string }).code ?? ''
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_FULL_') || /ENOSPC|EDQUOT|database or disk is full/i.test(err.message)
}

/** A unique index on the user's name or skeleton refused a row (not the devices' token index). */
function isNameClash(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' &&
    /users\.(name|skeleton)/.test(err.message)
  )
}

/**
 * Schema 3 (release 0.1.0: a `queue` of what no session had acknowledged yet, a token per user) to schema 4, in
 * place and in one transaction: the queued rows become the log (a direct text or file message gets its sender as
 * `peer`), every user gets one device holding its old token (null for a tokenless name) whose cursor stands just
 * before the oldest queued message (or at the live end when nothing is queued), and the user's counters are
 * counted from the queue. Also takes files older than schema 3 (users without last_seen or skeleton).
 */
function migrateFromQueue(db: BetterSqlite3.Database): void {
  db.transaction(() => {
    const has = (table: string, column: string) =>
      (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).some((c) => c.name === column)
    // Schema 2: users.last_seen; schema 3: users.skeleton (filled at open, as for any file whose skeletons are stale).
    if (!has('users', 'last_seen')) db.exec(`ALTER TABLE users ADD COLUMN last_seen INTEGER`)
    if (!has('users', 'skeleton')) db.exec(`ALTER TABLE users ADD COLUMN skeleton TEXT`)
    db.exec(`
      ALTER TABLE users ADD COLUMN tokenless INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN password_hash TEXT;
      ALTER TABLE users ADD COLUMN queue_count INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN queue_bytes INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN handled_floor INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE users ADD COLUMN handled_above TEXT NOT NULL DEFAULT '';
    `)
    const heldExisted = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'held'`).get() !== undefined
    db.exec(SCHEMA)
    if (heldExisted && !has('held', 'peer'))
      db.exec(`ALTER TABLE held ADD COLUMN peer INTEGER; ALTER TABLE held ADD COLUMN device INTEGER;`)
    // A direct message (no topic) from a user (not SERVER, 0) that is text or a file is a conversation's: its peer
    // is its sender. Receipts and notices have none, as the core stores them today.
    const direct = `topic IS NULL AND sender <> 0 AND ${HISTORY_KINDS}`
    db.exec(`
      INSERT INTO log (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body, peer, device, read)
        SELECT user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body,
               CASE WHEN ${direct} THEN sender END, NULL, 0
        FROM queue;
      UPDATE held SET peer = sender WHERE peer IS NULL AND ${direct};
      UPDATE users SET
        tokenless = (token_hash IS NULL),
        handled_floor = coalesce((SELECT min(seq) FROM queue q WHERE q.user = users.id) - 1, next_seq - 1),
        queue_count = (SELECT count(*) FROM queue q WHERE q.user = users.id),
        queue_bytes = (SELECT coalesce(sum(length(body)), 0) FROM queue q WHERE q.user = users.id);
      INSERT INTO devices (user, label, token_hash, created_at, last_seen, ack_floor, ack_above)
        SELECT id, 'migrated', token_hash, created_at, last_seen, handled_floor, '' FROM users ORDER BY id;
      DROP TABLE queue;
      ALTER TABLE users DROP COLUMN token_hash;
    `)
    db.prepare(`INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(
      String(SCHEMA_VERSION),
    )
  })()
}

export interface SqliteStoreOptions {
  /** Path of the database file, or ':memory:' (tests of the store's logic only: nothing is durable). */
  path: string
  /** Told of existing users whose names look alike, found while filling the skeleton column. */
  logger?: Logger
  /**
   * The checkpoint thread (checkpointer.ts): after how many commits it starts (default 64; 0 never), and its
   * timing. For tests; the defaults are what the server uses.
   */
  checkpoints?: CheckpointTiming & { after?: number }
  /** Bodies of at least this many bytes are stored once for their copies (default SHARED_BODY_BYTES). For tests. */
  sharedBodyBytes?: number
}

/** A row this process stored lately and nobody has handled yet (see SqliteStore.recent). */
interface Recent {
  m: StoredMessage
  read: boolean
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite'
  private db!: BetterSqlite3.Database
  private stmts!: ReturnType<SqliteStore['prepare']>
  /** user → its counters; loaded lazily, replaced after each successful write. */
  private counterCache = new Map<number, QueueCounters>()
  /** device → its user and cursor; loaded lazily, replaced after each successful commit. */
  private cursorCache = new Map<number, { user: number; acks: AckSet }>()
  /**
   * Messages this process stored lately and no device has acknowledged, by user and seq: the first ack of one —
   * the common case, soon after it was stored — needs the whole row (its sender is told), and finds it here
   * instead of reading it back. Bounded by count and bytes; dropped whole when full (reading the row is always
   * correct). An entry goes when its message is handled (after which an ack needs no row) or leaves the log.
   */
  private recent = new Map<number, Map<number, Recent>>()
  private recentCount = 0
  private recentBytes = 0
  /** The user id retain() stopped before, so that a call cut short by its limit resumes where it was. */
  private retainFrom = 0
  /** Rows in log_tail (see the header): known after open(), kept by every write. */
  private tailRows = 0
  private settleTimer: NodeJS.Immediate | undefined
  private commits = 0
  private checkpointer: Checkpointer | undefined

  constructor(private readonly opts: SqliteStoreOptions) {}

  async open(): Promise<void> {
    if (this.opts.path !== ':memory:') mkdirSync(dirname(this.opts.path), { recursive: true })
    const db = new Database(this.opts.path)
    db.pragma('journal_mode = WAL')
    // FULL: the WAL is fsynced at every commit, so an acknowledged message survives a power cut.
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = OFF')
    db.pragma('busy_timeout = 5000')
    // 64 MiB of page cache (the default is 2 MiB): the log grows, and each user's newest pages and the indexes'
    // inner pages must stay in memory for an insert not to read from the file.
    db.pragma('cache_size = -65536')
    try {
      db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`)
      const version = db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string } | undefined
      if (version !== undefined && Number(version.value) > SCHEMA_VERSION) {
        throw new StoreError('SCHEMA_TOO_NEW', `database schema ${version.value} is newer than this program (${SCHEMA_VERSION})`)
      }
      if (db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'queue'`).get() !== undefined)
        migrateFromQueue(db)
      db.transaction(() => {
        // Schema 5 to 6: the log's rows may refer to a shared body (BODIES); the rows already there keep theirs.
        for (const table of ['log', 'log_tail']) {
          const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]
          if (columns.length > 0 && !columns.some((c) => c.name === 'body_id'))
            db.exec(`ALTER TABLE ${table} ADD COLUMN body_id INTEGER`)
        }
        db.exec(SCHEMA)
        db.prepare(
          `INSERT INTO meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        ).run(String(SCHEMA_VERSION))
      })()
      // The skeleton column is refilled when the skeleton function changes (core/names.ts SKELETON_VERSION).
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
    } catch (err) {
      // A failed migration rolled back; the file stays as it was, and this connection must not linger.
      db.close()
      throw err
    }
    this.db = db
    this.stmts = this.prepare()
    // Rows a stop (or a crash) left in the tail.
    this.tailRows = (this.stmts.tailRows.get() as { n: number }).n
    this.settleTail()
    // A deletion cut short by a stop: its log goes now.
    this.purgeSoon()
  }

  private prepare() {
    const db = this.db
    const USER = `id, name, tokenless, password_hash, created_at`
    return {
      insertUser: db.prepare(`INSERT INTO users (name, skeleton, tokenless, password_hash, created_at) VALUES (?, ?, ?, ?, ?)`),
      userById: db.prepare(`SELECT ${USER} FROM users WHERE id = ?`),
      userByName: db.prepare(`SELECT ${USER} FROM users WHERE name = ?`),
      userBySkeleton: db.prepare(`SELECT ${USER} FROM users WHERE skeleton = ?`),
      staleTokenless: db.prepare(
        `SELECT ${USER} FROM users WHERE tokenless = 1 AND coalesce(last_seen, created_at) < ? ORDER BY id LIMIT ?`,
      ),
      rename: db.prepare(`UPDATE users SET name = ?, skeleton = ? WHERE id = ?`),
      setPassword: db.prepare(`UPDATE users SET password_hash = ? WHERE id = ?`),
      deleteUser: db.prepare(`DELETE FROM users WHERE id = ?`),
      unhandledOf: db.prepare(`SELECT ${LOG_ROW} FROM log WHERE user = ? AND seq > ? ORDER BY seq`),
      markPurge: db.prepare(`INSERT OR IGNORE INTO purge (user) VALUES (?)`),
      purging: db.prepare(`SELECT user FROM purge ORDER BY user LIMIT 1`),
      purgeChunk: db.prepare(`DELETE FROM log WHERE rowid IN (SELECT rowid FROM log WHERE user = ? LIMIT ?)`),
      purged: db.prepare(`DELETE FROM purge WHERE user = ?`),
      deleteSubs: db.prepare(`DELETE FROM subs WHERE user = ?`),
      deleteBlocks: db.prepare(`DELETE FROM blocks WHERE user = ? OR target = ?`),
      deleteDevices: db.prepare(`DELETE FROM devices WHERE user = ?`),
      countUsers: db.prepare(`SELECT COUNT(*) AS n FROM users`),
      lastSeen: db.prepare(`SELECT last_seen FROM users WHERE id = ?`),
      setLastSeen: db.prepare(`UPDATE users SET last_seen = ? WHERE id = ?`),
      setDeviceSeen: db.prepare(`UPDATE devices SET last_seen = ? WHERE id = ? AND user = ?`),
      counters: db.prepare(`SELECT next_seq, queue_count, queue_bytes, handled_floor, handled_above FROM users WHERE id = ?`),
      setCounters: db.prepare(
        `UPDATE users SET next_seq = ?, queue_count = ?, queue_bytes = ?, handled_floor = ?, handled_above = ? WHERE id = ?`,
      ),
      insertDevice: db.prepare(
        `INSERT INTO devices (user, label, token_hash, created_at, ack_floor, ack_above) VALUES (?, ?, ?, ?, ?, '')`,
      ),
      deviceById: db.prepare(`SELECT * FROM devices WHERE id = ?`),
      deviceByToken: db.prepare(`SELECT * FROM devices WHERE token_hash = ?`),
      devices: db.prepare(`SELECT * FROM devices WHERE user = ? ORDER BY id`),
      deleteDevice: db.prepare(`DELETE FROM devices WHERE id = ? AND user = ?`),
      setCursor: db.prepare(`UPDATE devices SET ack_floor = ?, ack_above = ? WHERE id = ?`),
      insertMsg: db.prepare(`INSERT INTO log_tail (${TAIL_COLUMNS}) VALUES (${TAIL_COLUMNS.replace(/\w+/g, '?')})`),
      // In key order, so that the rows of one user are written into its leaves together.
      moveTail: db.prepare(`INSERT INTO log (${TAIL_COLUMNS}) SELECT ${TAIL_COLUMNS} FROM log_tail ORDER BY user, seq`),
      clearTail: db.prepare(`DELETE FROM log_tail`),
      insertBody: db.prepare(`INSERT INTO bodies (refs, data) VALUES (?, ?)`),
      tailRows: db.prepare(`SELECT COUNT(*) AS n FROM log_tail`),
      row: db.prepare(`SELECT ${LOG_ROW} FROM log WHERE user = ? AND seq = ?`),
      markRead: db.prepare(`UPDATE log SET read = 1 WHERE user = ? AND seq = ?`),
      deleteRow: db.prepare(`DELETE FROM log WHERE user = ? AND seq = ?`),
      dedupe: db.prepare(`INSERT OR IGNORE INTO dedupe (sender, msg_id, at) VALUES (?, ?, ?)`),
      undedupe: db.prepare(`DELETE FROM dedupe WHERE sender = ? AND msg_id = ?`),
      readLog: db.prepare(
        `SELECT ${LOG_ROW} FROM log WHERE user = ? AND seq > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY seq LIMIT ?`,
      ),
      history: db.prepare(`SELECT ${LOG_ROW} FROM log WHERE user = ? AND seq < ? AND ${HISTORY_KINDS} ORDER BY seq DESC LIMIT ?`),
      historyPeer: db.prepare(
        `SELECT ${LOG_ROW} FROM log WHERE user = ? AND peer = ? AND seq < ? AND topic IS NULL AND ${HISTORY_KINDS}
         ORDER BY seq DESC LIMIT ?`,
      ),
      historyTopic: db.prepare(
        `SELECT ${LOG_ROW} FROM log WHERE user = ? AND topic = ? AND seq < ? AND ${HISTORY_KINDS} ORDER BY seq DESC LIMIT ?`,
      ),
      insertHeld: db.prepare(
        `INSERT INTO held (user, not_before, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, file_id, body, peer, device)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      dueHeld: db.prepare(
        `DELETE FROM held WHERE id IN (SELECT id FROM held WHERE not_before <= ? ORDER BY not_before, id LIMIT ?) RETURNING *`,
      ),
      deleteHeld: db.prepare(`DELETE FROM held WHERE user = ?`),
      expired: db.prepare(
        `SELECT ${LOG_ROW} FROM log WHERE expires_at IS NOT NULL AND expires_at <= ? AND user NOT IN (SELECT user FROM purge) LIMIT ?`,
      ),
      retainUsers: db.prepare(
        `SELECT id, next_seq, handled_floor, handled_above FROM users WHERE id > ? AND id <= ? ORDER BY id LIMIT ${RETAIN_PAGE}`,
      ),
      // The subquery bounds a DELETE (SQLite is built without DELETE … LIMIT); both walk the primary key.
      retainRange: db.prepare(
        `DELETE FROM log WHERE user = ? AND seq IN (SELECT seq FROM log WHERE user = ? AND seq BETWEEN ? AND ? LIMIT ?)`,
      ),
      retainRangeBefore: db.prepare(
        `DELETE FROM log WHERE user = ? AND seq IN (SELECT seq FROM log WHERE user = ? AND seq BETWEEN ? AND ? AND ts < ? LIMIT ?)`,
      ),
      pruneDedupe: db.prepare(
        `DELETE FROM dedupe WHERE (sender, msg_id) IN (SELECT sender, msg_id FROM dedupe WHERE at < ? ORDER BY at LIMIT ?)`,
      ),
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
    if (this.purgeTimer !== undefined) clearImmediate(this.purgeTimer)
    this.purgeTimer = undefined
    if (this.settleTimer !== undefined) clearImmediate(this.settleTimer)
    this.settleTimer = undefined
    if (this.db?.open) {
      this.writeGathered()
      this.settleTail()
      // The thread's connection first: the last one to close checkpoints the WAL and removes it.
      await this.checkpointer?.stop()
      this.checkpointer = undefined
      this.db.close()
    }
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

  // ---------------------------------------------------------------- users

  /**
   * Writes that stand alone (a registration, an account's deletion) share transactions, one fsync per batch: a crowd
   * of clients registering at once (a restart, a load test) or a script deleting accounts would otherwise pay a
   * synchronous commit each on the event loop, back to back when they arrive together. The event loop accepts one
   * connection per turn, so a commit in every turn also paced the accepts (~1,400 connects/s here, against ~3,100
   * for the memory store). So such a write waits GATHER_MS for others (batches of ~8 registrations then, and ~3,000
   * connects/s), a delay nobody registering notices. Each write is a savepoint of its own, so one that fails (a
   * taken name) fails alone; `done` runs once the batch is durable (caches are updated only for what was written).
   */
  private gather<W, R>(work: () => W, done: (v: W) => R): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.gathered.push({
        work,
        done: done as (v: unknown) => unknown,
        resolve: resolve as (v: unknown) => void,
        reject,
      })
      if (this.gathered.length === 1) setTimeout(() => this.writeGathered(), GATHER_MS)
    })
  }

  private gathered: Gathered[] = []

  private writeGathered(): void {
    const batch = this.gathered
    this.gathered = []
    if (batch.length === 0 || this.db?.open !== true) {
      for (const g of batch) g.reject(new Error('the store is closed'))
      return
    }
    const outcomes: Array<{ ok: unknown } | { err: unknown }> = []
    try {
      this.tx(() => {
        for (const g of batch)
          try {
            outcomes.push({ ok: this.tx(g.work) })
          } catch (err) {
            outcomes.push({ err })
          }
      })
    } catch (err) {
      // The transaction itself failed (a full disk, an I/O error): none of the batch was stored. Each promise
      // passes through settle(), which names a full disk.
      for (const g of batch) g.reject(err)
      return
    }
    batch.forEach((g, i) => {
      const o = outcomes[i]!
      if ('err' in o) return g.reject(o.err)
      try {
        g.resolve(g.done(o.ok))
      } catch (err) {
        g.reject(err)
      }
    })
  }

  createUser(
    name: string,
    device: { tokenHash: string | null; label: string },
    now: number,
    passwordHash: string | null = null,
  ): Promise<{ user: UserRecord; device: DeviceRecord }> {
    const tokenless = device.tokenHash === null
    return this.gather(
      (): [number, number] => {
        let id: number
        try {
          id = Number(this.stmts.insertUser.run(name, nameSkeleton(name), tokenless ? 1 : 0, passwordHash, now).lastInsertRowid)
        } catch (err) {
          if (isNameClash(err)) throw this.nameTaken(name)
          throw err
        }
        return [id, Number(this.stmts.insertDevice.run(id, device.label, device.tokenHash, now, 0).lastInsertRowid)]
      },
      (r) => {
        const [id, dev] = r as [number, number]
        this.counterCache.set(id, { next: 1, count: 0, bytes: 0, handled: { floor: 0, above: [] } })
        return {
          user: { id, name, tokenless, passwordHash, createdAt: now },
          device: {
            id: dev,
            user: id,
            label: device.label,
            tokenHash: device.tokenHash,
            createdAt: now,
            lastSeen: undefined,
            acks: { floor: 0, above: [] },
          },
        }
      },
    )
  }

  /** NAME_TAKEN for `name`, naming the registered name it looks like when that is not the same. */
  private nameTaken(name: string): StoreError {
    const holder = this.stmts.userBySkeleton.get(nameSkeleton(name)) as UserColumns | undefined
    return nameTaken(name, holder?.name)
  }

  async userLike(name: string): Promise<UserRecord | undefined> {
    const r = this.stmts.userBySkeleton.get(nameSkeleton(name)) as UserColumns | undefined
    return r && rowToUser(r)
  }

  async staleTokenless(before: number, limit: number): Promise<UserRecord[]> {
    return (this.stmts.staleTokenless.all(before, limit) as UserColumns[]).map(rowToUser)
  }

  async userById(id: number): Promise<UserRecord | undefined> {
    const r = this.stmts.userById.get(id) as UserColumns | undefined
    return r && rowToUser(r)
  }

  async userByName(name: string): Promise<UserRecord | undefined> {
    const r = this.stmts.userByName.get(name) as UserColumns | undefined
    return r && rowToUser(r)
  }

  async renameUser(id: number, name: string): Promise<void> {
    try {
      this.stmts.rename.run(name, nameSkeleton(name), id)
    } catch (err) {
      if (isNameClash(err)) throw this.nameTaken(name)
      throw err
    }
  }

  async setPassword(id: number, passwordHash: string | null): Promise<void> {
    this.stmts.setPassword.run(passwordHash, id)
  }

  async deleteUser(id: number): Promise<StoredMessage[]> {
    // The account goes in a gathered transaction; its log (possibly hundreds of thousands of rows) goes after it, a
    // chunk per turn of the event loop (purge): deleting it all at once held every socket for about a second per
    // 35k rows. Only the rows above the handled floor are read back, for their senders to be told.
    return this.gather(
      () => {
        // Read in the transaction: a commit in the meantime may have acknowledged more.
        const handled = this.counters(id)?.handled
        if (handled === undefined) return { unhandled: [], more: false }
        this.moveTail()
        const unhandled = (this.stmts.unhandledOf.all(id, handled.floor) as LogRow[]).filter((r) => !hasAck(handled, r.seq))
        this.stmts.deleteHeld.run(id)
        this.stmts.deleteSubs.run(id)
        this.stmts.deleteBlocks.run(id, id)
        this.stmts.deleteDevices.run(id)
        this.stmts.deleteUser.run(id)
        // A small log goes at once; a larger one is left for purge.
        const more = this.stmts.purgeChunk.run(id, PURGE_INLINE).changes === PURGE_INLINE
        if (more) this.stmts.markPurge.run(id)
        return { unhandled, more }
      },
      ({ unhandled, more }) => {
        this.counterCache.delete(id)
        for (const [dev, c] of this.cursorCache) if (c.user === id) this.cursorCache.delete(dev)
        const mine = this.recent.get(id)
        if (mine !== undefined) for (const seq of [...mine.keys()]) this.forgetRecent(id, seq)
        if (more) this.purgeSoon()
        return unhandled.map(rowToMessage)
      },
    )
  }

  private purgeTimer: NodeJS.Immediate | undefined

  /** Remove deleted users' log rows in the background (see deleteUser); resumed by open() after a restart. */
  private purgeSoon(): void {
    this.purgeTimer ??= setImmediate(() => {
      this.purgeTimer = undefined
      if (this.db?.open !== true) return
      try {
        if (this.purgeStep()) this.purgeSoon()
      } catch (err) {
        // A full disk or a busy file: the next deletion, or the next start, tries again.
        this.opts.logger?.warn({ err }, "removing a deleted user's log failed; it is retried later")
      }
    })
  }

  /** One chunk of a deleted user's log. True while there is more to remove. */
  private purgeStep(): boolean {
    const next = this.stmts.purging.get() as { user: number } | undefined
    if (next === undefined) return false
    this.db.transaction(() => {
      if (this.stmts.purgeChunk.run(next.user, PURGE_CHUNK).changes < PURGE_CHUNK) this.stmts.purged.run(next.user)
    })()
    return true
  }

  async lastSeen(id: number): Promise<number | undefined> {
    const r = this.stmts.lastSeen.get(id) as { last_seen: number | null } | undefined
    return r?.last_seen ?? undefined
  }

  async setLastSeen(id: number, at: number, device?: number): Promise<void> {
    this.db.transaction(() => {
      this.stmts.setLastSeen.run(at, id)
      if (device !== undefined) this.stmts.setDeviceSeen.run(at, device, id)
    })()
  }

  async countUsers(): Promise<number> {
    return (this.stmts.countUsers.get() as { n: number }).n
  }

  // ---------------------------------------------------------------- devices

  async createDevice(user: number, tokenHash: string, label: string, now: number): Promise<DeviceRecord | undefined> {
    const c = this.counters(user)
    if (c === undefined) return undefined
    // The live end: what was handed out before this device existed is history, not news to it.
    const floor = c.next - 1
    const id = Number(this.stmts.insertDevice.run(user, label, tokenHash, now, floor).lastInsertRowid)
    return { id, user, label, tokenHash, createdAt: now, lastSeen: undefined, acks: { floor, above: [] } }
  }

  async deviceByToken(tokenHash: string): Promise<DeviceRecord | undefined> {
    const r = this.stmts.deviceByToken.get(tokenHash) as DeviceRow | undefined
    return r && rowToDevice(r)
  }

  async deviceById(id: number): Promise<DeviceRecord | undefined> {
    const r = this.stmts.deviceById.get(id) as DeviceRow | undefined
    return r && rowToDevice(r)
  }

  async devices(user: number): Promise<DeviceRecord[]> {
    return (this.stmts.devices.all(user) as DeviceRow[]).map(rowToDevice)
  }

  async deleteDevice(user: number, device: number): Promise<boolean> {
    const gone = this.stmts.deleteDevice.run(device, user).changes > 0
    if (gone) this.cursorCache.delete(device)
    return gone
  }

  // ---------------------------------------------------------------- the log

  /** The counters of `user` as cached (loaded on first use), or undefined if it does not exist. */
  private counters(user: number): QueueCounters | undefined {
    let c = this.counterCache.get(user)
    if (c === undefined) {
      const r = this.stmts.counters.get(user) as CounterRow | undefined
      if (r === undefined) return undefined
      this.counterCache.set(user, (c = rowToCounters(r)))
    }
    return c
  }

  /** The cursor of `device` as cached, or undefined if it does not exist. */
  private cursor(device: number): { user: number; acks: AckSet } | undefined {
    let c = this.cursorCache.get(device)
    if (c === undefined) {
      const r = this.stmts.deviceById.get(device) as DeviceRow | undefined
      if (r === undefined) return undefined
      this.cursorCache.set(device, (c = { user: r.user, acks: { floor: r.ack_floor, above: decodeAbove(r.ack_above) } }))
    }
    return c
  }

  /** Write changed counters (one UPDATE per user) inside the caller's transaction. */
  private writeCounters(counters: Map<number, QueueCounters>): void {
    for (const [user, c] of counters)
      this.stmts.setCounters.run(c.next, c.count, c.bytes, c.handled.floor, encodeAbove(c.handled.above), user)
  }

  /** Once committed: the cached counters follow. */
  private applyCounters(counters: Map<number, QueueCounters>): void {
    for (const [user, c] of counters) this.counterCache.set(user, c)
  }

  async commit(ops: StoreOp[]): Promise<StoreResult[]> {
    if (ops.length === 0) return []
    const before = new Map<number, QueueCounters>()
    for (const user of usersOf(ops)) {
      const c = this.counters(user)
      if (c !== undefined) before.set(user, c)
    }
    const devices = new Map<number, AckSet>()
    for (const id of devicesOf(ops)) {
      const c = this.cursor(id)
      if (c !== undefined) devices.set(id, c.acks)
    }
    // An ack names a device of its own user only.
    for (const op of ops) if (op.type === 'ack' && this.cursorCache.get(op.device)?.user !== op.user) devices.delete(op.device)
    const plan = this.tx((): CommitPlan => {
      const fresh = new Set<string>()
      for (const k of dedupeKeys(ops))
        if (this.stmts.dedupe.run(k.sender, k.msgId, k.at).changes > 0) fresh.add(`${k.sender}:${k.msgId}`)
      // The rows the acks and reads name, as they were before the batch. An ack of a handled seq needs none (it
      // cannot be first), which spares reading back everything a second device acknowledges.
      const rows = new Array<StoredMessage | undefined>(ops.length)
      const wasRead = new Array<boolean>(ops.length).fill(false)
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!
        if (op.type === 'send' || op.type === 'seen') continue
        const c = before.get(op.user)
        if (c === undefined || op.seq < 1 || op.seq >= c.next) continue
        if (op.type === 'ack' && hasAck(c.handled, op.seq)) continue
        const known = this.recent.get(op.user)?.get(op.seq)
        if (known !== undefined) {
          rows[i] = known.m
          wasRead[i] = known.read
          continue
        }
        this.moveTail()
        const r = this.stmts.row.get(op.user, op.seq) as LogRow | undefined
        if (r === undefined) continue
        rows[i] = rowToMessage(r)
        wasRead[i] = r.read !== 0
      }
      const plan = planCommit({ ops, counters: before, devices, fresh: (s, m) => fresh.has(`${s}:${m}`), rows, wasRead })
      for (const k of plan.released) this.stmts.undedupe.run(k.sender, k.msgId)
      this.insertQueued(plan.queued)
      for (const c of plan.held) this.insertHeld(c)
      if (plan.reads.length > 0) this.moveTail()
      for (const r of plan.reads) this.stmts.markRead.run(r.user, r.seq)
      for (const x of plan.seen) {
        this.stmts.setLastSeen.run(x.at, x.user)
        this.stmts.setDeviceSeen.run(x.at, x.device, x.user)
      }
      for (const [id, acks] of plan.devices) this.stmts.setCursor.run(acks.floor, encodeAbove(acks.above), id)
      this.writeCounters(plan.counters)
      return plan
    })
    this.settleSoon()
    if (++this.commits === (this.opts.checkpoints?.after ?? CHECKPOINTER_AFTER)) this.startCheckpointer()
    this.applyCounters(plan.counters)
    for (const [id, acks] of plan.devices) this.cursorCache.get(id)!.acks = acks
    for (const m of plan.queued) if (!hasAck(this.counterCache.get(m.to)!.handled, m.seq)) this.remember(m)
    for (const r of plan.reads) {
      const known = this.recent.get(r.user)?.get(r.seq)
      if (known !== undefined) known.read = true
    }
    // What an ack made handled needs no row for an ack any more (acks are the only way a commit makes a row handled).
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      const r = plan.results[i]!
      if (op.type === 'ack' && r.type === 'ack' && r.first !== null) this.forgetRecent(op.user, op.seq)
    }
    return plan.results
  }

  // ---------------------------------------------------------------- the tail (see the header)

  /** Move the tail into the log, inside the caller's transaction. */
  private moveTail(): void {
    if (this.tailRows === 0) return
    this.stmts.moveTail.run()
    this.stmts.clearTail.run()
    this.tailRows = 0
  }

  /** Move the tail into the log in a transaction of its own, not fsynced (see the header). Before any read of the log. */
  private settleTail(): void {
    if (this.tailRows === 0 || this.db?.open !== true) return
    this.db.pragma('synchronous = NORMAL')
    try {
      this.tx(() => this.moveTail())
    } finally {
      this.db.pragma('synchronous = FULL')
    }
  }

  /** After a commit: once the tail is long enough, move it on the next turn (not in the commit's). */
  private settleSoon(): void {
    if (this.tailRows < SETTLE_ROWS || this.settleTimer !== undefined) return
    this.settleTimer = setImmediate(() => {
      this.settleTimer = undefined
      try {
        this.settleTail()
      } catch (err) {
        // A full disk or a busy file: the rows stay in the tail (durable, and read by nothing until moved).
        this.opts.logger?.warn({ err }, 'moving the log tail failed; it is retried after the next commit')
      }
    })
  }

  private startCheckpointer(): void {
    if (this.opts.path === ':memory:' || this.checkpointer !== undefined) return
    const log = this.opts.logger
    const cp = new Checkpointer(
      this.opts.path,
      {
        ready: () => {
          if (this.db?.open === true && this.checkpointer === cp) this.db.pragma('wal_autocheckpoint = 0')
        },
        gone: (err) => {
          if (this.checkpointer !== cp) return
          this.checkpointer = undefined
          log?.warn({ err }, 'the checkpoint thread stopped: checkpoints run in commits again')
          if (this.db?.open === true) this.db.pragma(`wal_autocheckpoint = ${AUTO_CHECKPOINT}`)
        },
        warn: (message) => log?.warn({ err: message }, 'a checkpoint failed; the next one tries again'),
      },
      this.opts.checkpoints,
    )
    this.checkpointer = cp
  }

  /**
   * `work` as a transaction (a savepoint inside another). The tail's row count changes with its inserts and moves;
   * if the transaction fails, the rows are as they were, and so is the count.
   */
  private tx<T>(work: () => T): T {
    const tailRows = this.tailRows
    try {
      return this.db.transaction(work)()
    } catch (err) {
      this.tailRows = tailRows
      throw err
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
    byUser.set(m.seq, { m, read: false })
    this.recentCount++
    this.recentBytes += m.body.length
  }

  private forgetRecent(user: number, seq: number): void {
    const byUser = this.recent.get(user)
    const known = byUser?.get(seq)
    if (byUser === undefined || known === undefined) return
    byUser.delete(seq)
    if (byUser.size === 0) this.recent.delete(user)
    this.recentCount--
    this.recentBytes -= known.m.body.length
  }

  /**
   * A batch's new log rows, into the tail. A body of SHARED_BODY_BYTES or more is written once, into `bodies`, for
   * all the copies that carry it: the copies of one message share its Buffer (a recipient's, the sender's sent copy,
   * a topic's subscribers'), so a 1 KiB direct message writes 1 KiB and not 2 (and again 2 when the tail moves).
   */
  private insertQueued(queued: StoredMessage[]): void {
    const shared = this.opts.sharedBodyBytes ?? SHARED_BODY_BYTES
    let refs: Map<Buffer, number> | undefined
    for (const m of queued) if (m.body.length >= shared) (refs ??= new Map()).set(m.body, (refs.get(m.body) ?? 0) + 1)
    if (refs === undefined) {
      for (const m of queued) this.insertLogged(m, null)
      return
    }
    const ids = new Map<Buffer, number | bigint>()
    for (const [body, n] of refs) ids.set(body, this.stmts.insertBody.run(n, body).lastInsertRowid)
    for (const m of queued) this.insertLogged(m, ids.get(m.body) ?? null)
  }

  private insertLogged(m: StoredMessage, bodyId: number | bigint | null): void {
    this.tailRows++
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
      bodyId === null ? m.body : EMPTY,
      m.peer ?? null,
      m.device ?? null,
      bodyId,
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
      c.peer ?? null,
      c.device ?? null,
    )
  }

  async readLog(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]> {
    this.settleTail()
    return (this.stmts.readLog.all(user, afterSeq, now, limit) as LogRow[]).map(rowToMessage)
  }

  async history(user: number, q: HistoryQuery): Promise<StoredMessage[]> {
    this.settleTail()
    const before = q.before > 0 ? q.before : Number.MAX_SAFE_INTEGER
    let rows: LogRow[]
    if (q.peer !== undefined) {
      // A conversation with a peer has no topic messages: both filters at once match nothing.
      if (q.topic !== undefined) return []
      rows = this.stmts.historyPeer.all(user, q.peer, before, q.limit) as LogRow[]
    } else if (q.topic !== undefined) rows = this.stmts.historyTopic.all(user, q.topic, before, q.limit) as LogRow[]
    else rows = this.stmts.history.all(user, before, q.limit) as LogRow[]
    return rows.map(rowToMessage)
  }

  async queueStats(user: number): Promise<QueueStats> {
    const c = this.counters(user)
    return c === undefined ? { count: 0, bytes: 0 } : { count: c.count, bytes: c.bytes }
  }

  async expire(now: number, limit: number): Promise<StoredMessage[]> {
    this.settleTail()
    const plan = this.db.transaction(() => {
      const due = (this.stmts.expired.all(now, limit) as LogRow[]).map(rowToMessage)
      const before = new Map<number, QueueCounters>()
      for (const m of due)
        if (!before.has(m.to)) {
          const c = this.counters(m.to)
          if (c !== undefined) before.set(m.to, c)
        }
      const plan = planExpire(due, before)
      for (const m of due) this.stmts.deleteRow.run(m.to, m.seq)
      this.writeCounters(plan.counters)
      return { due, ...plan }
    })()
    this.applyCounters(plan.counters)
    for (const m of plan.due) this.forgetRecent(m.to, m.seq)
    return plan.expired
  }

  async retain(policy: RetentionPolicy, limit: number): Promise<number> {
    // Per user, what is handled (the floor and the ranges above it) and below the newest `keep` seqs goes; within
    // the newest `keep`, what is handled and older than `before`. Both are range deletes on the primary key, the
    // second a walk of the user's kept handled rows (ts is not ordered by seq: a held message keeps its own). A
    // call cut short by `limit` resumes at its user. The walk is in slices of RETAIN_SLICE_MS, each a transaction
    // of its own with a turn of the event loop between: at ~1M rows a second, a log of a few million kept rows
    // held the loop for seconds (the 60 s soak of Run L: 390 ms with nothing to remove).
    const start = this.retainFrom
    // Users after where the last call stopped, then those up to it.
    const passes: [number, number][] =
      start === 0
        ? [[0, Number.MAX_SAFE_INTEGER]]
        : [
            [start, Number.MAX_SAFE_INTEGER],
            [0, start],
          ]
    const at = { pass: 0, from: passes[0]![0], removed: 0 }
    for (;;) {
      if (this.db?.open !== true) return at.removed
      this.settleTail()
      const state = this.db.transaction(() => this.retainSlice(policy, limit, passes, at))()
      if (state !== 'slice') return at.removed
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  /** One slice of retain(): users from `at`, until done, the limit, or RETAIN_SLICE_MS (then `at` is where to go on). */
  private retainSlice(
    policy: RetentionPolicy,
    limit: number,
    passes: [number, number][],
    at: { pass: number; from: number; removed: number },
  ): 'done' | 'limit' | 'slice' {
    const t0 = performance.now()
    for (; at.pass < passes.length; at.pass++, at.from = passes[at.pass]?.[0] ?? 0) {
      const upTo = passes[at.pass]![1]
      for (;;) {
        const users = this.stmts.retainUsers.all(at.from, upTo) as RetainRow[]
        if (users.length === 0) break
        for (const u of users) {
          const keepFrom = u.next_seq - policy.keep
          const ranges: [number, number][] = [[1, u.handled_floor], ...decodeAbove(u.handled_above)]
          for (const [lo, hi] of ranges) {
            const lowHi = Math.min(hi, keepFrom - 1)
            if (lo <= lowHi) at.removed += this.stmts.retainRange.run(u.id, u.id, lo, lowHi, limit - at.removed).changes
            const keptLo = Math.max(lo, keepFrom)
            if (keptLo <= hi && at.removed < limit)
              at.removed += this.stmts.retainRangeBefore.run(u.id, u.id, keptLo, hi, policy.before, limit - at.removed).changes
            if (at.removed >= limit) {
              this.retainFrom = u.id - 1
              return 'limit'
            }
          }
          at.from = u.id
          if (performance.now() - t0 > RETAIN_SLICE_MS) return 'slice'
        }
      }
    }
    this.retainFrom = 0
    return 'done'
  }

  async releaseDue(now: number, limit: number): Promise<StoredMessage[]> {
    const plan = this.tx(() => {
      const rows = this.stmts.dueHeld.all(now, limit) as HeldRow[]
      rows.sort((a, b) => a.not_before! - b.not_before! || a.id - b.id)
      const before = new Map<number, QueueCounters>()
      for (const r of rows)
        if (!before.has(r.user)) {
          const c = this.counters(r.user)
          if (c !== undefined) before.set(r.user, c)
        }
      const plan = planRelease(
        rows.map((r) => messageFromRow({ ...r, seq: 0 }, r.user)),
        before,
      )
      this.insertQueued(plan.queued)
      this.writeCounters(plan.counters)
      return plan
    })
    this.settleSoon()
    this.applyCounters(plan.counters)
    for (const m of plan.queued) this.remember(m)
    return plan.queued
  }

  async pruneDedupe(before: number): Promise<number> {
    // An hour's keys at a time (the reaper's interval): at 10k messages a second, 36M rows. One DELETE held the event
    // loop for as long; chunks of PRUNE_CHUNK oldest keys, a turn of the loop between, do not.
    let n = 0
    for (;;) {
      if (this.db?.open !== true) return n
      const removed = this.stmts.pruneDedupe.run(before, PRUNE_CHUNK).changes
      n += removed
      if (removed < PRUNE_CHUNK) return n
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
  }

  // ---------------------------------------------------------------- topics

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

  // ---------------------------------------------------------------- blocks

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
const WRITES = new Set([
  'commit',
  'createUser',
  'createDevice',
  'renameUser',
  'setPassword',
  'setLastSeen',
  'subscribe',
  'block',
  'releaseDue',
])

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
