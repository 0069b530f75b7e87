/**
 * The persistence the file service (src/core/files.ts) needs: which files exist, what content each one
 * points to, and who may download it. The bytes themselves are not here: they live in a BlobStore
 * (src/store/blob/), content-addressed by SHA-256, stored once whatever the number of uploads and
 * recipients. Several records (one per upload, each with its own name, sender and
 * readers) may point to the same content; the service deletes the content when the last record goes.
 *
 * "Referenced" (DESIGN §1, Files): a file is referenced while any stored message — queued in a
 * recipient's queue or held for a later notBefore — carries its id (`fileId`). Implementations answer
 * this from the store's own tables, so they share a database with the Store. Retention: `sweep()` marks
 * the moment it first sees a record unreferenced and deletes it `retention` later, so a recipient who
 * acknowledged the file message still has that long to download it.
 *
 * Implementations: sqlite/sqlite-file-meta.ts (same database file as SqliteStore); a Postgres one will
 * follow. Every method is its own durable transaction.
 */

export interface FileRecord {
  /** The file's id as announced in file messages (random, unguessable; not the hash). */
  id: string
  /** Hex SHA-256 of the content; also the content's key in the BlobStore. */
  sha256: string
  /** The name the sender gave (NFC, no path separators). */
  name: string
  size: number
  /** User id of the uploader. */
  sender: number
  /** ms since the epoch. */
  createdAt: number
}

export interface FileSweep {
  /** ms since the epoch: records seen unreferenced for the first time are marked with this. */
  now: number
  /** Delete records marked unreferenced at or before this (now − retention). */
  before: number
  /** Never delete these ids (uploads being finished right now, whose message is not committed yet). */
  keep: string[]
  /** At most this many records per call. */
  limit: number
}

export interface FileMeta {
  readonly kind: string
  open(): Promise<void>
  close(): Promise<void>

  /**
   * Record a stored file and the users who may download it (the sender among them), atomically. The
   * record starts out as "unreferenced since createdAt" until a sweep sees a message that carries it,
   * so a file whose message never got stored (or went to ALL, which stores nothing) is kept for the
   * retention period and then swept.
   */
  record(file: FileRecord, readers: readonly number[]): Promise<void>
  /** Let more users download a file (ignores users that already may). */
  grant(fileId: string, users: readonly number[]): Promise<void>
  /** May `user` download the file? False for an unknown file too. */
  canRead(fileId: string, user: number): Promise<boolean>
  get(fileId: string): Promise<FileRecord | undefined>
  /** Delete one record and its readers now (e.g. its message could not be stored); returns it. */
  remove(fileId: string): Promise<FileRecord | undefined>
  /** Does any record still point to this content? The service deletes the blob `sha256` only when not. */
  shaInUse(sha256: string): Promise<boolean>
  /**
   * One garbage-collection pass over the records: clear the mark of records that a stored message
   * refers to again, mark records newly seen unreferenced with `now`, and delete (with their readers)
   * records marked at or before `before`. Returns the deleted records, so the caller can delete content
   * no record points to any more.
   */
  sweep(opts: FileSweep): Promise<FileRecord[]>
}
