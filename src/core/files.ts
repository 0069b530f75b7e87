/**
 * Files (DESIGN §1 "Files (004)"): the core's file service, independent of any protocol. Native TCP,
 * HTTP and the 004 gateway all call it; each adapter only moves chunks between its wire and these calls.
 *
 * Upload: beginUpload() checks everything that can be checked before the first byte (size limit, name,
 * recipient, text) and opens a temp file under `<dir>/tmp`; Upload.write() streams chunks to it with
 * backpressure while hashing them (the file is never held in memory); Upload.finish() checks the size and
 * the SHA-256, fsyncs, moves the content to `<dir>/<sha256>` — content-addressed, so the same bytes are
 * stored once whatever the number of uploads and recipients — records who may download it, then sends a
 * file message through Broker.send(), so recipients get it through their queue with the usual receipts.
 * Upload.abort(), an error, or an upload idle for `uploadIdleMs` removes the temp file: an interrupted
 * upload leaves nothing behind and is retried by starting again.
 *
 * Who may download (besides the sender):
 * - to a user: that user;
 * - to a topic: its subscribers at send time (read just before and just after the message is stored, so
 *   that whoever got a copy can download it);
 * - to ALL: every user online (anywhere in the cluster, per the bus) just before the room message goes out.
 *   ALL is not stored, so latecomers get neither the message nor the right to download.
 *
 * Garbage collection, gc(now), called periodically by the broker's owner: a file is referenced while any
 * stored message (queued or held for later) carries its id. A record is marked "unreferenced since" at
 * upload and again by the first gc pass that finds no message carrying it (acknowledged, expired, its
 * recipient deleted — or never stored, as for ALL); a pass that finds it referenced clears the mark. A
 * record marked for `retentionMs` (default 24 h) is deleted, and the content with it once no record points
 * to it. So a recipient who acknowledged a file message can still download it for at least the retention
 * period, counted from the first gc pass after the acknowledgement.
 *
 * One process owns a files folder: start() removes every temp file it finds (none can be live).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { BrokerError, asBrokerError } from './errors.js'
import { normalizeName, type Broker, type SendResult } from './broker.js'
import type { Session } from './session.js'
import { silentLogger, type Address, type Logger } from './types.js'
import type { FileMeta, FileRecord } from '../store/file-meta.js'

/** A file name may have at most this many UTF-8 bytes (the common file-system limit). */
export const MAX_FILE_NAME_BYTES = 255

const SHA256_HEX = /^[0-9a-f]{64}$/
const TMP = 'tmp'
const TMP_SUFFIX = '.part'
const CHUNK = 64 * 1024

export interface FileServiceOptions {
  /** The data directory's files folder; content goes to `<dir>/<sha256>`, uploads in progress to `<dir>/tmp`. */
  dir: string
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
  sha256?: string
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
  /** Stale temp files removed. */
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
  readonly dir: string
  readonly maxFileBytes: number
  readonly retentionMs: number
  readonly uploadIdleMs: number
  readonly maxUploads: number
  private readonly tmpDir: string
  private readonly meta: FileMeta
  private readonly broker: Broker
  private readonly log: Logger
  private readonly now: () => number
  /** Uploads in progress, by temp file name. */
  private readonly uploads = new Map<string, Upload>()
  /** File ids recorded whose message is not stored yet: gc must not take them. */
  private readonly finishing = new Set<string>()
  /** Per-content lock: recording a new upload and deleting unreferenced content never interleave. */
  private readonly locks = new Map<string, Promise<void>>()

  constructor(opts: FileServiceOptions) {
    this.dir = opts.dir
    this.tmpDir = join(opts.dir, TMP)
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
   * Create the folders, open the metadata (after the broker's store: it reads the store's queue), remove
   * temp files left by a previous run and content no record points to (a crash between deleting a record
   * and its content).
   */
  async start(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true })
    await this.meta.open()
    const temps = await this.sweepTemps(0)
    let orphans = 0
    for (const name of await readdir(this.dir)) {
      if (!SHA256_HEX.test(name) || (await this.meta.shaInUse(name))) continue
      await unlinkQuiet(join(this.dir, name))
      orphans++
    }
    if (temps + orphans > 0) this.log.info({ temps, orphans }, 'files: removed leftovers of a previous run')
  }

  /** Abort uploads in progress (their temp files go) and close the metadata. */
  async close(): Promise<void> {
    await Promise.all([...this.uploads.values()].map((u) => u.abort('the server is shutting down')))
    await this.meta.close()
  }

  /** Uploads in progress (for metrics). */
  get uploadsInProgress(): number {
    return this.uploads.size
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
    if (this.uploads.size >= this.maxUploads)
      throw new BrokerError(
        'SB_ERR_LIMIT',
        `maxUploads (${this.maxUploads}) uploads are in progress; try again later`,
        'maxUploads',
      )

    const tmpName = randomBytes(16).toString('hex') + TMP_SUFFIX
    const up = new Upload(this, session, tmpName, join(this.tmpDir, tmpName), { ...req, name, sha256 }, target)
    this.uploads.set(tmpName, up)
    try {
      await up.opened()
    } catch (err) {
      await up.abort('the temp file could not be created')
      throw this.internal(err, 'could not create the temp file')
    }
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
        if ((await this.broker.store.subscribers(topic)).length === 0)
          throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no one subscribes to the topic "${topic}"`)
        return { kind: 'topic', topic }
      }
      case 'user':
      case 'name': {
        const u = await this.broker.findUser(to.kind === 'user' ? { id: to.id } : { name: to.name })
        if (u === undefined || (await this.broker.store.isBlocked(u.id, session.user.id)))
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
        return this.broker.store.subscribers(target.topic)
      case 'all':
        return (await this.broker.bus.online()).map((p) => p.id)
    }
  }

  /** @internal Upload.finish() after the bytes are checked and fsynced: store, record, announce. */
  async commitUpload(up: Upload, sha256: string): Promise<FinishedUpload> {
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
        const blob = join(this.dir, sha256)
        if (await exists(blob))
          await unlinkQuiet(up.path) // the same bytes are stored already
        else {
          await rename(up.path, blob)
          await fsyncDir(this.dir)
        }
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
        const late = (await this.broker.store.subscribers(up.target.topic)).filter((id) => !readers.has(id))
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
    let fh
    try {
      fh = await open(join(this.dir, meta.sha256), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new BrokerError('SB_ERR_UNKNOWN_FILE', `no such file: ${fileId}`)
      throw this.internal(err, 'could not open a stored file')
    }
    const size = end - start + 1
    if (size === 0) {
      await fh.close()
      return { meta, size, start, end, stream: Readable.from([]) }
    }
    // The handle is open: gc may unlink the content meanwhile and this download still completes.
    const stream = fh.createReadStream({ start, end, highWaterMark: CHUNK })
    return { meta, size, start, end, stream }
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
   * (e.g. every minute); the retention's precision is that period. Also removes temp files of uploads
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
    out.temps = await this.sweepTemps(this.uploadIdleMs)
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
      return unlinkQuiet(join(this.dir, sha256))
    })
  }

  /** Remove temp files that belong to no upload in progress and are older than `olderThanMs`. */
  private async sweepTemps(olderThanMs: number): Promise<number> {
    let n = 0
    const cutoff = Date.now() - olderThanMs // file mtimes are wall-clock, whatever `now` the tests inject
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      if (this.uploads.has(name)) continue
      const path = join(this.tmpDir, name)
      const st = await stat(path).catch(() => undefined)
      if (st === undefined || !st.isFile() || st.mtimeMs > cutoff) continue
      if (await unlinkQuiet(path)) n++
    }
    return n
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
    this.uploads.delete(up.tmpName)
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

type UploadState = 'open' | 'finishing' | 'done' | 'aborted'

/**
 * One upload in progress, returned by FileService.beginUpload(). Calls are meant to be sequential
 * (await each write); after any error the upload is aborted and every later call throws.
 */
export class Upload {
  readonly name: string
  readonly size: number
  /** The SHA-256 the client declared, if it did. */
  readonly sha256: string | undefined
  private state: UploadState = 'open'
  private bytes = 0
  private readonly hash: Hash = createHash('sha256')
  private readonly ws: WriteStream
  private error: Error | undefined
  private idle: NodeJS.Timeout | undefined

  /** @internal Use FileService.beginUpload(). */
  constructor(
    private readonly svc: FileService,
    readonly session: Session,
    readonly tmpName: string,
    readonly path: string,
    readonly req: UploadRequest & { name: string; sha256: string | undefined },
    readonly target: Target,
  ) {
    this.name = req.name
    this.size = req.size
    this.sha256 = req.sha256
    // 'wx': a random name that somehow exists is an error, never someone else's file overwritten.
    this.ws = createWriteStream(path, { flags: 'wx', highWaterMark: CHUNK })
    this.ws.on('error', (err) => (this.error ??= err))
    this.armIdle()
  }

  /** @internal Resolves once the temp file exists. */
  async opened(): Promise<void> {
    if (this.ws.pending) await once(this.ws, 'ready')
  }

  /** Bytes written so far (for progress). */
  get received(): number {
    return this.bytes
  }

  get done(): boolean {
    return this.state === 'done' || this.state === 'aborted'
  }

  /**
   * Append a chunk. Resolves when the stream can take more (backpressure: it waits for 'drain'), so an
   * adapter that pauses its socket until this resolves never buffers more than a chunk or two. The
   * chunk is written later: do not modify it afterwards. More bytes than declared abort the upload
   * with SB_ERR_FILE_CHECK.
   */
  async write(chunk: Buffer): Promise<void> {
    this.assertOpen()
    if (this.session.closed) {
      await this.abort('the session ended')
      throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'the session has ended')
    }
    if (this.bytes + chunk.length > this.size) {
      await this.abort('more bytes than declared')
      throw new BrokerError('SB_ERR_FILE_CHECK', `the upload sent more than the declared ${this.size} bytes`)
    }
    if (chunk.length === 0) return
    this.bytes += chunk.length
    this.hash.update(chunk)
    this.armIdle()
    if (!this.ws.write(chunk)) await drainOrClose(this.ws)
    if (this.error !== undefined) throw await this.failed()
    // aborted while waiting (idle timer, abort() from the adapter, shutdown)
    this.assertOpen()
  }

  /**
   * All bytes are in: check the size and the SHA-256 (SB_ERR_FILE_CHECK, and the upload is gone), make
   * the content durable, store it once, record who may download it and send the file message.
   */
  async finish(): Promise<FinishedUpload> {
    this.assertOpen()
    this.state = 'finishing'
    clearTimeout(this.idle)
    try {
      if (this.bytes !== this.size) {
        await this.discard('short')
        throw new BrokerError('SB_ERR_FILE_CHECK', `the upload has ${this.bytes} of the declared ${this.size} bytes`)
      }
      try {
        this.ws.end()
        await once(this.ws, 'close')
      } catch (err) {
        this.error ??= err as Error
      }
      if (this.error !== undefined) throw await this.failed()
      const sha256 = this.hash.digest('hex')
      if (this.sha256 !== undefined && sha256 !== this.sha256) {
        await this.discard('hash mismatch')
        throw new BrokerError('SB_ERR_FILE_CHECK', `the upload's SHA-256 is ${sha256}, not the declared ${this.sha256}`)
      }
      try {
        const fh = await open(this.path, 'r+')
        try {
          await fh.sync() // the content is on disk before a durable message announces it
        } finally {
          await fh.close()
        }
      } catch (err) {
        this.error = err as Error
        throw await this.failed()
      }
      const out = await this.svc.commitUpload(this, sha256)
      this.state = 'done'
      return out
    } catch (err) {
      if ((this.state as UploadState) !== 'aborted') await this.discard('finish failed')
      throw this.svc.internal(err, 'finishing an upload failed')
    } finally {
      this.svc.forget(this)
    }
  }

  /**
   * Give up: the temp file is removed; nothing is left behind. Safe to call at any time, more than once.
   * Once finish() has begun it runs to its end (it cleans up itself if it fails), so abort() is a no-op.
   */
  async abort(reason = 'aborted'): Promise<void> {
    if (this.state !== 'open') return
    await this.discard(reason)
  }

  private async discard(reason: string): Promise<void> {
    this.state = 'aborted'
    clearTimeout(this.idle)
    this.svc.forget(this)
    if (!this.ws.destroyed) {
      this.ws.destroy()
      await once(this.ws, 'close').catch(() => undefined)
    }
    await unlinkQuiet(this.path)
    this.svc.logger.debug({ file: this.name, received: this.bytes, size: this.size, reason }, 'upload discarded')
  }

  private async failed(): Promise<BrokerError> {
    const err = this.svc.internal(this.error, 'writing an upload failed')
    await this.discard('write error')
    return err
  }

  private assertOpen(): void {
    if (this.state === 'open') return
    throw new BrokerError(
      'SB_ERR_CONFLICT',
      this.state === 'aborted' ? 'the upload was aborted; start again' : 'the upload is finished',
    )
  }

  private armIdle(): void {
    clearTimeout(this.idle)
    this.idle = setTimeout(() => {
      void this.abort('idle').catch((err) => this.svc.logger.warn({ err }, 'aborting an idle upload failed'))
    }, this.svc.uploadIdleMs)
    this.idle.unref()
  }
}

/** Resolves on 'drain', or on 'close' when the stream was destroyed meanwhile (an error is kept by its listener). */
function drainOrClose(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      ws.off('drain', done)
      ws.off('close', done)
      resolve()
    }
    ws.on('drain', done)
    ws.on('close', done)
  })
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function unlinkQuiet(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** A rename is durable once its directory is synced (Linux; elsewhere opening a directory may fail: harmless). */
async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch {
    // not supported on this platform
  }
}
