/**
 * Files (DESIGN §1 "Files (004)"): the core's file service, independent of any protocol and of where the
 * bytes live. It owns the policy: what may be uploaded (size, name, text, recipient, uploads at once), who
 * may download (the readers recorded in FileMeta), the file message that announces an upload, and when
 * content is collected. The bytes go to a BlobStore (src/store/blob/: a temporary file, fsync, rename)
 * under the content's SHA-256, so the same bytes are stored once whatever the uploads and recipients.
 * Native TCP, HTTP and the 004 gateway all call it; each adapter only moves chunks between its wire and
 * these calls.
 *
 * Upload: beginUpload() refuses whatever it can before the first byte and opens a blob writer;
 * Upload.write() streams chunks to it with backpressure while hashing them (never held in memory);
 * Upload.finish() checks the size and the SHA-256, seals the blob (durable), records who may download it
 * and commits the blob under its hash (in that order, so content never exists without a record), then
 * sends a file message through Broker.send(): recipients get it through their queue with the usual
 * receipts. Upload.abort(), an error, or an upload idle for `uploadIdleMs` drops the blob writer: an
 * interrupted upload leaves nothing behind and is retried by starting again.
 *
 * Who may download (besides the sender):
 * - to a user: that user;
 * - to a topic: its subscribers at send time (read just before and just after the message is stored, so
 *   that whoever got a copy can download it);
 * - to ALL: every user online (anywhere in the cluster, per the bus) just before the room message goes out.
 *   ALL is not stored, so latecomers get neither the message nor the right to download.
 *
 * Collection, gc(now), called periodically by the broker's owner: a file is referenced while any stored
 * message (queued or held for later) carries its id. A record is marked "unreferenced since" at upload and
 * again by the first gc pass that finds no message carrying it (acknowledged, expired, its recipient
 * deleted — or never stored, as for ALL); a pass that finds it referenced clears the mark. A record marked
 * for `retentionMs` (default 24 h) is deleted, and the content with it once no record points to it. So a
 * recipient who acknowledged a file message can still download it for at least the retention period,
 * counted from the first gc pass after the acknowledgement.
 *
 * start() removes leftovers of a previous run: temporary blobs (all of them when this process owns the
 * store; in a shared store only those idle for uploadIdleMs) and content no record points to.
 */
import { randomBytes } from 'node:crypto'
import type { Readable } from 'node:stream'
import { BrokerError, asBrokerError } from './errors.js'
import { normalizeName, type Broker, type SendResult } from './broker.js'
import type { Session } from './session.js'
import { silentLogger, type Address, type Logger } from './types.js'
import type { FileMeta, FileRecord } from '../store/file-meta.js'
import type { BlobStore, BlobWriter } from '../store/blob/blob-store.js'
import { Upload } from './upload.js'

export { Upload }

/** A file name may have at most this many UTF-8 bytes (the common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255

const SHA256_HEX = /^[0-9a-f]{64}$/

export interface FileServiceOptions {
  /** Where the bytes live (keys: hex SHA-256); e.g. an FsBlobStore on the data directory's files folder. */
  blobs: BlobStore
  meta: FileMeta
  broker: Broker
  /** Largest file accepted; defaults to the broker's limits.maxFileBytes (100 MiB). */
  maxFileBytes?: number
  /** How long an unreferenced file stays downloadable before gc() deletes it. Default 24 h. */
  retentionMs?: number
  /** An upload with no write for this long is aborted (its client vanished). Default 5 min. */
  uploadIdleMs?: number
  /** Uploads in progress at once, over all sessions. Default 64. */
  maxUploads?: number
  logger?: Logger
  now?: () => number
}

export interface UploadRequest {
  /** The file's name as the recipients will see it: no path, no control characters. */
  name: string
  /** Exact size in bytes, declared before the first byte. */
  size: number
  /** Hex SHA-256 the content must have; without it the server computes the hash and announces that. */
  sha256?: string | undefined
  to: Address
  /** Optional text that travels with the file (at most maxTextBytes). */
  text?: string
  msgId?: number
  receipt?: boolean
  readReceipt?: boolean
  idempotent?: boolean
  ttlMs?: number
}

/** The body of a 'file' message (JSON, UTF-8), as recipients receive it. */
export interface FileMessage {
  fileId: string
  name: string
  size: number
  sha256: string
  text?: string
}

export interface FinishedUpload {
  fileId: string
  sha256: string
  size: number
  /** What Broker.send() answered for the file message. */
  send: SendResult
}

export interface Download {
  meta: FileRecord
  /** Bytes this stream will give (the slice's length, or the whole file's size). */
  size: number
  /** First byte of the slice. */
  start: number
  /** Last byte of the slice, inclusive (start − 1 for an empty slice). */
  end: number
  stream: Readable
}

export interface GcResult {
  /** Records deleted. */
  files: number
  /** Content files deleted (no record pointed to them any more). */
  blobs: number
  bytes: number
  /** Stale temporary blobs removed. */
  temps: number
}

/** Parse a file message's body; never throws (the body came over a wire). */
export function decodeFileMessage(body: Buffer): FileMessage | undefined {
  let v: unknown
  try {
    v = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const o = v as Record<string, unknown>
  if (typeof o.fileId !== 'string' || typeof o.name !== 'string' || typeof o.sha256 !== 'string') return undefined
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) return undefined
  const m: FileMessage = { fileId: o.fileId, name: o.name, size: o.size, sha256: o.sha256 }
  if (typeof o.text === 'string') m.text = o.text
  return m
}

export function encodeFileMessage(m: FileMessage): Buffer {
  return Buffer.from(JSON.stringify(m))
}

/** NFC; not empty, '.' or '..'; no path separators or control characters; at most MAX_FILE_NAME_BYTES. */
export function normalizeFileName(raw: string): string {
  const name = raw.normalize('NFC')
  if (name.length === 0 || name === '.' || name === '..')
    throw new BrokerError('SB_ERR_NAME_INVALID', `the file name "${name}" is not allowed`)
  if (Buffer.byteLength(name) > MAX_FILE_NAME_BYTES)
    throw new BrokerError('SB_ERR_NAME_INVALID', `the file name is longer than ${MAX_FILE_NAME_BYTES} bytes`)
  if (/[/\\\p{C}]/u.test(name))
    throw new BrokerError('SB_ERR_NAME_INVALID', `the file name "${name}" has a path separator or control characters`)
  return name
}

/** Resolved recipient of an upload, fixed at beginUpload so the grant matches the message. */
export type Target = { kind: 'user'; id: number } | { kind: 'topic'; topic: string } | { kind: 'all' }

export class FileService {
  readonly maxFileBytes: number
  readonly retentionMs: number
  readonly uploadIdleMs: number
  readonly maxUploads: number
  private readonly blobs: BlobStore
  private readonly meta: FileMeta
  private readonly broker: Broker
  private readonly log: Logger
  private readonly now: () => number
  /** Uploads in progress, and how many are opening their blob writer. */
  private readonly uploads = new Set<Upload>()
  private opening = 0
  /** File ids recorded whose message is not stored yet: gc must not take them. */
  private readonly finishing = new Set<string>()
  /** Per-content lock: recording a new upload and deleting unreferenced content never interleave. */
  private readonly locks = new Map<string, Promise<void>>()

  constructor(opts: FileServiceOptions) {
    this.blobs = opts.blobs
    this.meta = opts.meta
    this.broker = opts.broker
    this.maxFileBytes = opts.maxFileBytes ?? opts.broker.limits.maxFileBytes
    this.retentionMs = opts.retentionMs ?? 24 * 3600_000
    this.uploadIdleMs = opts.uploadIdleMs ?? 5 * 60_000
    this.maxUploads = opts.maxUploads ?? 64
    this.log = opts.logger ?? silentLogger
    this.now = opts.now ?? Date.now
  }

  /**
   * Open the blob store and the metadata (after the broker's store: it reads the store's queue), remove
   * temporary blobs left by a previous run and content no record points to (a crash between deleting a
   * record and its content).
   */
  async start(): Promise<void> {
    await this.blobs.open()
    await this.meta.open()
    const temps = await this.blobs.sweepTemps(this.blobs.shared ? this.uploadIdleMs : 0)
    let orphans = 0
    for await (const key of this.blobs.list()) {
      if (!SHA256_HEX.test(key) || (await this.meta.shaInUse(key))) continue
      await this.blobs.delete(key)
      orphans++
    }
    if (temps + orphans > 0) this.log.info({ temps, orphans }, 'files: removed leftovers of a previous run')
  }

  /** Abort uploads in progress (what they wrote is dropped) and close the metadata. */
  async close(): Promise<void> {
    await Promise.all([...this.uploads].map((u) => u.abort('the server is shutting down')))
    await this.meta.close()
  }

  /** Uploads in progress (for metrics). */
  get uploadsInProgress(): number {
    return this.uploads.size + this.opening
  }

  /**
   * Start an upload. Everything that can be refused is refused here, before any byte: the size limit,
   * the name, the text, the recipient (same error as Broker.send would give), the number of uploads.
   * @example
   * const up = await files.beginUpload(session, { name: 'a.pdf', size, to: { kind: 'name', name: 'bob' } })
   * for await (const chunk of source) await up.write(chunk)
   * const { fileId, send } = await up.finish()
   */
  async beginUpload(session: Session, req: UploadRequest): Promise<Upload> {
    this.usable(session)
    this.broker.touch(session)
    if (!Number.isSafeInteger(req.size) || req.size < 0)
      throw new BrokerError('SB_ERR_MALFORMED', 'the file size must be a whole number of bytes')
    if (req.size > this.maxFileBytes)
      throw new BrokerError(
        'SB_ERR_TOO_LARGE',
        `the file is larger than maxFileBytes (${this.maxFileBytes} bytes)`,
        'maxFileBytes',
      )
    const name = normalizeFileName(req.name)
    const sha256 = req.sha256?.toLowerCase()
    if (sha256 !== undefined && !SHA256_HEX.test(sha256))
      throw new BrokerError('SB_ERR_MALFORMED', 'sha256 must be 64 hexadecimal digits')
    const maxText = this.broker.limits.maxTextBytes
    if (req.text !== undefined && Buffer.byteLength(req.text) > maxText)
      throw new BrokerError('SB_ERR_TOO_LARGE', `the text is longer than maxTextBytes (${maxText} bytes)`, 'maxTextBytes')
    const target = await this.resolveTarget(session, req.to)
    if (this.uploadsInProgress >= this.maxUploads)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `maxUploads (${this.maxUploads}) uploads are in progress; try again later`,
        'maxUploads',
      )

    let blob: BlobWriter
    this.opening++
    try {
      blob = await this.blobs.create()
    } catch (err) {
      throw this.internal(err, 'could not create the temp file')
    } finally {
      this.opening--
    }
    try {
      this.usable(session) // the session or the server may have ended meanwhile (close() did not see it)
    } catch (err) {
      await blob.abort()
      throw err
    }
    const up = new Upload(this, session, blob, { ...req, name, sha256 }, target)
    this.uploads.add(up)
    return up
  }

  /** Check the recipient the way Broker.send() does, so that a refused send never costs an upload. */
  private async resolveTarget(session: Session, to: Address): Promise<Target> {
    switch (to.kind) {
      case 'all':
        return { kind: 'all' }
      case 'server':
        throw new BrokerError('SB_ERR_UNSUPPORTED', 'files cannot be sent to SERVER')
      case 'topic': {
        const topic = normalizeName(to.topic, this.broker.limits.maxTopicBytes, 'topic', 'maxTopicBytes')
        if ((await this.broker.topicSubscribers(topic)).length === 0)
          throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no one subscribes to the topic "${topic}"`)
        return { kind: 'topic', topic }
      }
      case 'user':
      case 'name': {
        const u = await this.broker.findUser(to.kind === 'user' ? { id: to.id } : { name: to.name })
        if (u === undefined || (await this.broker.isBlocked(u.id, session.user.id)))
          throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${to.kind === 'user' ? `#${to.id}` : to.name}`)
        return { kind: 'user', id: u.id }
      }
    }
  }

  /** Who may download a file sent to `target` now (besides the sender). */
  private async readersOf(target: Target): Promise<number[]> {
    switch (target.kind) {
      case 'user':
        return [target.id]
      case 'topic':
        return this.broker.topicSubscribers(target.topic)
      case 'all':
        return this.broker.onlineUserIds()
    }
  }

  /** @internal Upload.finish() after the bytes are checked and sealed: record, store, announce. */
  async commitUpload(up: Upload, blob: BlobWriter, sha256: string): Promise<FinishedUpload> {
    const fileId = randomBytes(16).toString('hex')
    const rec: FileRecord = {
      id: fileId,
      sha256,
      name: up.name,
      size: up.size,
      sender: up.session.user.id,
      createdAt: this.now(),
    }
    const readers = new Set([rec.sender, ...(await this.readersOf(up.target))])
    this.finishing.add(fileId)
    try {
      await this.withLock(sha256, async () => {
        await this.meta.record(rec, [...readers])
        await blob.commit(sha256) // false when the same bytes are stored already
      })
      const body: FileMessage = { fileId, name: up.name, size: up.size, sha256 }
      if (up.req.text !== undefined) body.text = up.req.text
      const r = up.req
      const to: Address =
        up.target.kind === 'user'
          ? { kind: 'user', id: up.target.id }
          : up.target.kind === 'topic'
            ? { kind: 'topic', topic: up.target.topic }
            : { kind: 'all' }
      let send: SendResult
      try {
        send = await this.broker.send(up.session, {
          to,
          kind: 'file',
          fileId,
          body: encodeFileMessage(body),
          ...(r.msgId !== undefined && { msgId: r.msgId }),
          ...(r.receipt !== undefined && { receipt: r.receipt }),
          ...(r.readReceipt !== undefined && { readReceipt: r.readReceipt }),
          ...(r.idempotent !== undefined && { idempotent: r.idempotent }),
          ...(r.ttlMs !== undefined && { ttlMs: r.ttlMs }),
        })
      } catch (err) {
        // Nothing was queued (unknown recipient by now, queue full, shutting down): the file has no use.
        await this.removeFile(fileId)
        throw err
      }
      if (up.target.kind === 'topic') {
        // Someone who subscribed while the message was being stored got a copy: let them download it.
        const late = (await this.broker.topicSubscribers(up.target.topic)).filter((id) => !readers.has(id))
        await this.meta.grant(fileId, late)
      }
      this.log.debug({ fileId, sha256, size: up.size, from: rec.sender, to: up.target }, 'file stored')
      return { fileId, sha256, size: up.size, send }
    } finally {
      this.finishing.delete(fileId)
    }
  }

  /**
   * Open a file for download. Only its sender and its recipients may (SB_ERR_FORBIDDEN); an unknown or
   * swept id is SB_ERR_UNKNOWN_FILE. `range` resumes an interrupted download: `end` is inclusive, as in
   * HTTP Range and fs.createReadStream, and is clamped to the last byte; `start` may equal the size (an
   * empty slice: the download was complete).
   */
  async openDownload(session: Session, fileId: string, range?: { start: number; end?: number }): Promise<Download> {
    this.usable(session)
    this.broker.touch(session)
    const meta = await this.meta.get(fileId)
    if (meta === undefined) throw new BrokerError('SB_ERR_UNKNOWN_FILE', `no such file: ${fileId}`)
    if (!(await this.meta.canRead(fileId, session.user.id)))
      throw new BrokerError('SB_ERR_FORBIDDEN', 'only the sender and the recipients of a file may download it')
    const start = range?.start ?? 0
    const end = Math.min(range?.end ?? meta.size - 1, meta.size - 1)
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start > meta.size || end < start - 1)
      throw new BrokerError('SB_ERR_MALFORMED', `range ${start}-${range?.end ?? ''} is outside the file (${meta.size} bytes)`)
    let stream: Readable | undefined
    try {
      // Once open, the read completes even if gc deletes the content meanwhile.
      stream = await this.blobs.read(meta.sha256, { start, end })
    } catch (err) {
      throw this.internal(err, 'could not open a stored file')
    }
    if (stream === undefined) throw new BrokerError('SB_ERR_UNKNOWN_FILE', `no such file: ${fileId}`)
    return { meta, size: end - start + 1, start, end, stream }
  }

  /** Metadata of a file the session may download (for HEAD requests and resumptions). */
  async stat(session: Session, fileId: string): Promise<FileRecord> {
    this.usable(session)
    const meta = await this.meta.get(fileId)
    if (meta === undefined) throw new BrokerError('SB_ERR_UNKNOWN_FILE', `no such file: ${fileId}`)
    if (!(await this.meta.canRead(fileId, session.user.id)))
      throw new BrokerError('SB_ERR_FORBIDDEN', 'only the sender and the recipients of a file may download it')
    return meta
  }

  /**
   * One garbage-collection pass (see the top of this file). The broker's owner calls it periodically
   * (e.g. every minute); the retention's precision is that period. Also removes temporary blobs of uploads
   * that no longer exist and have not been written for uploadIdleMs.
   */
  async gc(now = this.now(), limit = 1000): Promise<GcResult> {
    const removed = await this.meta.sweep({ now, before: now - this.retentionMs, keep: [...this.finishing], limit })
    const out: GcResult = { files: removed.length, blobs: 0, bytes: 0, temps: 0 }
    for (const sha of new Set(removed.map((r) => r.sha256))) {
      const size = removed.find((r) => r.sha256 === sha)!.size
      if (await this.deleteContentIfUnused(sha)) {
        out.blobs++
        out.bytes += size
      }
    }
    out.temps = await this.blobs.sweepTemps(this.uploadIdleMs)
    if (out.files + out.temps > 0) this.log.info({ ...out }, 'files: garbage collected')
    return out
  }

  private async removeFile(fileId: string): Promise<void> {
    try {
      const rec = await this.meta.remove(fileId)
      if (rec !== undefined) await this.deleteContentIfUnused(rec.sha256)
    } catch (err) {
      this.log.warn({ err, fileId }, 'files: could not remove an unsent file; gc will')
    }
  }

  private deleteContentIfUnused(sha256: string): Promise<boolean> {
    return this.withLock(sha256, async () => {
      if (await this.meta.shaInUse(sha256)) return false
      return this.blobs.delete(sha256)
    })
  }

  private async withLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((r) => (release = r))
    const tail = prev.then(() => mine)
    this.locks.set(key, tail)
    await prev
    try {
      return await fn()
    } finally {
      release()
      if (this.locks.get(key) === tail) this.locks.delete(key)
    }
  }

  private usable(session: Session): void {
    if (session.closed) throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'the session has ended')
    if (this.broker.isClosing) throw new BrokerError('SB_ERR_SHUTTING_DOWN', 'the server is shutting down')
  }

  /** @internal Called by Upload. */
  forget(up: Upload): void {
    this.uploads.delete(up)
  }

  /** @internal */
  internal(err: unknown, what: string): BrokerError {
    if (err instanceof BrokerError) return err
    this.log.error({ err }, `files: ${what}`)
    return asBrokerError(err)
  }

  /** @internal */
  get logger(): Logger {
    return this.log
  }
}
