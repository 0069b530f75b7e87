/**
 * Where file contents live: the bytes of the files the core's file service (src/core/files.ts) accepts.
 * The service keeps the policy (who may read, limits, when content is collected) and the metadata
 * (src/store/file-meta.ts); a BlobStore only moves bytes, under keys the service chooses (the content's
 * hex SHA-256, so the same bytes are stored once).
 *
 * The contract every implementation keeps:
 * - a write goes to a temporary place; content appears under its key only through commit(), at once and
 *   complete, and only after it is durable (a crash at any moment leaves either nothing under the key or
 *   the whole content, never part of it);
 * - reads stream, and a read that has begun completes even if the key is deleted meanwhile;
 * - keys are `[0-9a-z]{1,128}`; anything else is refused (no path tricks).
 *
 * Implementations: fs-blob-store.ts (a folder, possibly shared by the nodes of a cluster).
 */
import type { Readable } from 'node:stream'

/** Keys are lowercase letters and digits (the service uses hex SHA-256). */
export const BLOB_KEY = /^[0-9a-z]{1,128}$/

export class BlobKeyError extends Error {
  constructor(key: string) {
    super(`not a blob key: ${JSON.stringify(key)}`)
    this.name = 'BlobKeyError'
  }
}

export interface BlobStore {
  readonly kind: string
  /**
   * Other processes may use the same store at the same time (a cluster's shared `--files-dir`). When
   * false, this process owns it, and at start every temporary file it finds is a dead one.
   */
  readonly shared: boolean
  /** Create what is needed (folders). */
  open(): Promise<void>
  /** Begin writing new content to a temporary place; nothing is visible until the writer commits. */
  create(): Promise<BlobWriter>
  /**
   * Stream the bytes `start`..`end` (inclusive, as HTTP Range; `end` = start − 1 is an empty slice) of
   * the content under `key`, or undefined when there is none. The caller checks the range.
   */
  read(key: string, range: { start: number; end: number }): Promise<Readable | undefined>
  /** Is there content under `key`? */
  has(key: string): Promise<boolean>
  /** Remove the content under `key`; false if there was none. Reads already begun still complete. */
  delete(key: string): Promise<boolean>
  /** The keys that hold content (for collecting content no record points to). */
  list(): AsyncIterable<string>
  /**
   * Remove temporary files that belong to no writer of this process and were not written for
   * `olderThanMs` (writers of other processes keep theirs fresh by writing). Returns how many went.
   */
  sweepTemps(olderThanMs: number): Promise<number>
}

/**
 * One piece of content being written. Calls are sequential (await each); after an error the writer is
 * unusable and the caller aborts it.
 */
export interface BlobWriter {
  /** Append a chunk; resolves when more can be taken (backpressure). Rejects with the write's error. */
  write(chunk: Buffer): Promise<void>
  /** All bytes are in: flush them and make them durable (fsync). Still invisible under any key. */
  seal(): Promise<void>
  /**
   * Make the sealed content visible under `key` atomically (rename, then the folder is synced). If the
   * key already holds content (the same bytes, as keys are content hashes) the new copy is dropped and
   * the answer is false.
   */
  commit(key: string): Promise<boolean>
  /** Drop what was written. Safe at any time and more than once; a no-op after commit. */
  abort(): Promise<void>
}
