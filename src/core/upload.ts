/**
 * One upload in progress (FileService.beginUpload() makes it): the byte count against the declared size,
 * the SHA-256 computed as the chunks pass, the idle timer, and the blob writer the chunks go to. Its
 * finish() hands the checked, sealed blob back to the service, which records and announces it.
 */
import { createHash, type Hash } from 'node:crypto'
import { BrokerError } from './errors.js'
import type { Session } from './session.js'
import type { BlobWriter } from '../store/blob/blob-store.js'
import type { FileService, FinishedUpload, Target, UploadRequest } from './files.js'

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
  private idle: NodeJS.Timeout | undefined

  /** @internal Use FileService.beginUpload(). */
  constructor(
    private readonly svc: FileService,
    readonly session: Session,
    private readonly blob: BlobWriter,
    readonly req: UploadRequest & { name: string; sha256: string | undefined },
    readonly target: Target,
  ) {
    this.name = req.name
    this.size = req.size
    this.sha256 = req.sha256
    this.armIdle()
  }

  /** Bytes written so far (for progress). */
  get received(): number {
    return this.bytes
  }

  get done(): boolean {
    return this.state === 'done' || this.state === 'aborted'
  }

  /**
   * Append a chunk. Resolves when the blob store can take more (backpressure), so an adapter that pauses
   * its socket until this resolves never buffers more than a chunk or two. The chunk is written later:
   * do not modify it afterwards. More bytes than declared abort the upload with SB_ERR_FILE_CHECK.
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
    try {
      await this.blob.write(chunk)
    } catch (err) {
      throw await this.failed(err)
    }
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
      const sha256 = this.hash.digest('hex')
      if (this.sha256 !== undefined && sha256 !== this.sha256) {
        await this.discard('hash mismatch')
        throw new BrokerError('SB_ERR_FILE_CHECK', `the upload's SHA-256 is ${sha256}, not the declared ${this.sha256}`)
      }
      try {
        await this.blob.seal() // the content is on disk before a durable message announces it
      } catch (err) {
        throw await this.failed(err)
      }
      const out = await this.svc.commitUpload(this, this.blob, sha256)
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
   * Give up: what was written is dropped; nothing is left behind. Safe to call at any time, more than once.
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
    await this.blob.abort()
    this.svc.logger.debug({ file: this.name, received: this.bytes, size: this.size, reason }, 'upload discarded')
  }

  private async failed(cause: unknown): Promise<BrokerError> {
    const err = this.svc.internal(cause, 'writing an upload failed')
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
