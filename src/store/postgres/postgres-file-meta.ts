/**
 * FileMeta in the cluster's PostgreSQL schema (tables `files` and `file_access`, migration 3 of
 * PostgresStore), on the store's own pool, so every node sees the same files and who may download them.
 * The bytes live in the files folder, which the nodes of a cluster share (`--files-dir` on a shared mount).
 * Same semantics as sqlite-file-meta.ts; "referenced" is read from the store's log and held tables (a log row
 * keeps its file until retention removes the row).
 */
import type { FileMeta, FileRecord, FileSweep } from '../file-meta.js'
import type { PostgresStore } from './postgres-store.js'

const REFS = `SELECT file_id FROM log WHERE file_id IS NOT NULL UNION SELECT file_id FROM held WHERE file_id IS NOT NULL`

interface FileRow {
  id: string
  sha256: string
  name: string
  size: number
  sender: number
  created_at: number
}

function rowToRecord(r: FileRow): FileRecord {
  return {
    id: r.id,
    sha256: r.sha256,
    name: r.name,
    size: Number(r.size),
    sender: Number(r.sender),
    createdAt: Number(r.created_at),
  }
}

export class PostgresFileMeta implements FileMeta {
  readonly kind = 'postgres'

  /** The store must be open (its migrations create the tables). */
  constructor(private readonly store: PostgresStore) {}

  async open(): Promise<void> {
    await this.store.query('SELECT 1 FROM files LIMIT 1')
  }

  async close(): Promise<void> {}

  async record(file: FileRecord, readers: readonly number[]): Promise<void> {
    await this.store.tx(async (c) => {
      await c.query(
        `INSERT INTO files (id, sha256, name, size, sender, created_at, unref_since) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
        [file.id, file.sha256, file.name, file.size, file.sender, file.createdAt],
      )
      await c.query(
        `INSERT INTO file_access (file_id, user_id) SELECT $1, u FROM unnest($2::bigint[]) AS u ON CONFLICT DO NOTHING`,
        [file.id, [...readers]],
      )
    })
  }

  async grant(fileId: string, users: readonly number[]): Promise<void> {
    if (users.length === 0) return
    await this.store.query(
      `INSERT INTO file_access (file_id, user_id) SELECT $1, u FROM unnest($2::bigint[]) AS u ON CONFLICT DO NOTHING`,
      [fileId, [...users]],
    )
  }

  async canRead(fileId: string, user: number): Promise<boolean> {
    const { rows } = await this.store.query(`SELECT 1 FROM file_access WHERE file_id = $1 AND user_id = $2`, [fileId, user])
    return rows.length > 0
  }

  async get(fileId: string): Promise<FileRecord | undefined> {
    const { rows } = await this.store.query<FileRow>(`SELECT * FROM files WHERE id = $1`, [fileId])
    return rows[0] && rowToRecord(rows[0])
  }

  async remove(fileId: string): Promise<FileRecord | undefined> {
    return this.store.tx(async (c) => {
      const { rows } = await c.query<FileRow>(`DELETE FROM files WHERE id = $1 RETURNING *`, [fileId])
      if (rows[0] === undefined) return undefined
      await c.query(`DELETE FROM file_access WHERE file_id = $1`, [fileId])
      return rowToRecord(rows[0])
    })
  }

  async shaInUse(sha256: string): Promise<boolean> {
    const { rows } = await this.store.query(`SELECT 1 FROM files WHERE sha256 = $1 LIMIT 1`, [sha256])
    return rows.length > 0
  }

  async sweep(opts: FileSweep): Promise<FileRecord[]> {
    return this.store.tx(async (c) => {
      await c.query(`UPDATE files SET unref_since = NULL WHERE unref_since IS NOT NULL AND id IN (${REFS})`)
      await c.query(`UPDATE files SET unref_since = $1 WHERE unref_since IS NULL AND id NOT IN (${REFS})`, [opts.now])
      const { rows } = await c.query<FileRow>(
        `DELETE FROM files WHERE id IN (
           SELECT id FROM files WHERE unref_since IS NOT NULL AND unref_since <= $1 AND NOT (id = ANY($2::text[]))
           LIMIT $3 FOR UPDATE SKIP LOCKED
         ) RETURNING *`,
        [opts.before, opts.keep, opts.limit],
      )
      if (rows.length > 0) await c.query(`DELETE FROM file_access WHERE file_id = ANY($1::text[])`, [rows.map((r) => r.id)])
      return rows.map(rowToRecord)
    })
  }
}
