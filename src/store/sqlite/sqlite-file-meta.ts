/**
 * FileMeta on the SqliteStore's database file: its own better-sqlite3 connection on the same path (WAL,
 * synchronous=FULL like the store, so a grant is as durable as the message that announces the file) and
 * its own tables `files` and `file_access`. It reads the store's `log` and `held` tables (never writes
 * them) to know which files a stored message still refers to: open it after the SqliteStore.
 *
 * better-sqlite3 is synchronous and this process is the only writer, so the two connections never hold
 * the write lock at the same time; busy_timeout only matters to an outside reader (a backup, the CLI).
 */
import Database from './driver.js'
import type { BetterSqlite3 } from './driver.js'
import type { FileMeta, FileRecord, FileSweep } from '../file-meta.js'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS files (
  id TEXT PRIMARY KEY,
  sha256 TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  -- ms since the epoch when a sweep (or the upload itself) found no stored message carrying the id; NULL while one does
  unref_since INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS files_sha ON files (sha256);
CREATE INDEX IF NOT EXISTS files_unref ON files (unref_since) WHERE unref_since IS NOT NULL;
CREATE TABLE IF NOT EXISTS file_access (
  file_id TEXT NOT NULL,
  user INTEGER NOT NULL,
  PRIMARY KEY (file_id, user)
) WITHOUT ROWID;
`

/** Ids carried by stored messages: in a log (or its tail, not yet moved: the store's header), or held until their notBefore. */
const REFS = `SELECT file_id FROM log WHERE file_id IS NOT NULL
  UNION SELECT file_id FROM log_tail WHERE file_id IS NOT NULL
  UNION SELECT file_id FROM held WHERE file_id IS NOT NULL`

interface FileRow {
  id: string
  sha256: string
  name: string
  size: number
  sender: number
  created_at: number
  unref_since: number | null
}

function rowToRecord(r: FileRow): FileRecord {
  return { id: r.id, sha256: r.sha256, name: r.name, size: r.size, sender: r.sender, createdAt: r.created_at }
}

export interface SqliteFileMetaOptions {
  /** The SqliteStore's database file. */
  path: string
}

export class SqliteFileMeta implements FileMeta {
  readonly kind = 'sqlite'
  private db!: BetterSqlite3.Database
  private stmts!: ReturnType<SqliteFileMeta['prepare']>

  constructor(private readonly opts: SqliteFileMetaOptions) {}

  async open(): Promise<void> {
    const db = new Database(this.opts.path)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('busy_timeout = 5000')
    const have = db
      .prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('log', 'log_tail', 'held')`)
      .all() as {
      name: string
    }[]
    if (have.length !== 3) {
      db.close()
      throw new Error(`${this.opts.path} has no log/log_tail/held tables: open the SqliteStore before SqliteFileMeta`)
    }
    db.exec(SCHEMA)
    this.db = db
    this.stmts = this.prepare()
  }

  private prepare() {
    const db = this.db
    return {
      insert: db.prepare(
        `INSERT INTO files (id, sha256, name, size, sender, created_at, unref_since) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      ),
      grant: db.prepare(`INSERT OR IGNORE INTO file_access (file_id, user) VALUES (?, ?)`),
      canRead: db.prepare(`SELECT 1 FROM file_access WHERE file_id = ? AND user = ?`),
      get: db.prepare(`SELECT * FROM files WHERE id = ?`),
      remove: db.prepare(`DELETE FROM files WHERE id = ? RETURNING *`),
      removeAccess: db.prepare(`DELETE FROM file_access WHERE file_id = ?`),
      shaInUse: db.prepare(`SELECT 1 FROM files WHERE sha256 = ? LIMIT 1`),
      any: db.prepare(`SELECT 1 FROM files LIMIT 1`),
      // The store keeps partial indexes on file_id (log_file, held_file); each statement below reads them once (SQLite
      // materialises the uncorrelated IN list), which a sweep every minute or so can afford.
      referencedAgain: db.prepare(`UPDATE files SET unref_since = NULL WHERE unref_since IS NOT NULL AND id IN (${REFS})`),
      unreferenced: db.prepare(`UPDATE files SET unref_since = ? WHERE unref_since IS NULL AND id NOT IN (${REFS})`),
      due: db.prepare(
        `DELETE FROM files WHERE id IN (
           SELECT id FROM files WHERE unref_since IS NOT NULL AND unref_since <= ?
             AND id NOT IN (SELECT value FROM json_each(?)) LIMIT ?
         ) RETURNING *`,
      ),
    }
  }

  async close(): Promise<void> {
    if (this.db?.open) this.db.close()
  }

  async record(file: FileRecord, readers: readonly number[]): Promise<void> {
    this.db.transaction(() => {
      this.stmts.insert.run(file.id, file.sha256, file.name, file.size, file.sender, file.createdAt, file.createdAt)
      for (const u of readers) this.stmts.grant.run(file.id, u)
    })()
  }

  async grant(fileId: string, users: readonly number[]): Promise<void> {
    if (users.length === 0) return
    this.db.transaction(() => {
      for (const u of users) this.stmts.grant.run(fileId, u)
    })()
  }

  async canRead(fileId: string, user: number): Promise<boolean> {
    return this.stmts.canRead.get(fileId, user) !== undefined
  }

  async get(fileId: string): Promise<FileRecord | undefined> {
    const r = this.stmts.get.get(fileId) as FileRow | undefined
    return r && rowToRecord(r)
  }

  async remove(fileId: string): Promise<FileRecord | undefined> {
    const r = this.db.transaction(() => {
      const row = this.stmts.remove.get(fileId) as FileRow | undefined
      if (row !== undefined) this.stmts.removeAccess.run(fileId)
      return row
    })()
    return r && rowToRecord(r)
  }

  async shaInUse(sha256: string): Promise<boolean> {
    return this.stmts.shaInUse.get(sha256) !== undefined
  }

  async sweep(opts: FileSweep): Promise<FileRecord[]> {
    if (this.stmts.any.get() === undefined) return [] // nothing stored: skip reading the log
    const rows = this.db.transaction(() => {
      this.stmts.referencedAgain.run()
      this.stmts.unreferenced.run(opts.now)
      const removed = this.stmts.due.all(opts.before, JSON.stringify(opts.keep), opts.limit) as FileRow[]
      for (const r of removed) this.stmts.removeAccess.run(r.id)
      return removed
    })()
    return rows.map(rowToRecord)
  }
}
