/**
 * FILE_BEGIN / FILE_CHUNK / FILE_END / FILE_ABORT / DOWNLOAD over the core's FileService. Chunks of one
 * upload are written strictly in order (frames are handled concurrently, so each upload keeps a chain);
 * downloads stream FILE_DATA frames and wait for the socket to drain, so a file is never held in memory.
 */
import { randomUUID } from 'node:crypto'
import { BrokerError } from '../../core/errors.js'
import type { FileService, Upload } from '../../core/files.js'
import type { Session } from '../../core/session.js'
import type { Frame } from './frames.js'
import { Op, SendFlag } from './frames.js'
import type { NativeConnection } from './adapter.js'
import type { FileHandler } from './files.js'

interface Pending {
  upload: Upload
  chain: Promise<void>
  failed: BrokerError | undefined
}

const CHUNK = 64 * 1024
/** Chunk bytes a connection may have waiting for the disk before its socket stops being read. */
const QUEUED_HIGH = 4 * 1024 * 1024
const QUEUED_LOW = 1024 * 1024

export class NativeFileHandler implements FileHandler {
  private readonly byConn = new Map<NativeConnection, Map<string, Pending>>()
  /** Chunk bytes received and not yet written, per connection; above QUEUED_HIGH the socket is held. */
  private readonly queued = new Map<NativeConnection, { bytes: number; held: boolean }>()

  constructor(private readonly files: FileService) {}

  private uploads(conn: NativeConnection): Map<string, Pending> {
    let m = this.byConn.get(conn)
    if (m === undefined) {
      m = new Map()
      this.byConn.set(conn, m)
    }
    return m
  }

  private pending(conn: NativeConnection, id: string): Pending {
    const p = this.byConn.get(conn)?.get(id)
    if (p === undefined) throw new BrokerError('SB_ERR_UNKNOWN_FILE', `no upload ${id} on this connection`)
    return p
  }

  async handle(conn: NativeConnection, s: Session, f: Frame): Promise<void> {
    switch (f.type) {
      case 'FILE_BEGIN': {
        const upload = await this.files.beginUpload(s, {
          name: f.name,
          size: f.size,
          ...(f.sha256 !== '' ? { sha256: f.sha256.toLowerCase() } : {}),
          to: f.to,
          ...(f.text !== '' ? { text: f.text } : {}),
          msgId: f.msgId,
          receipt: (f.flags & SendFlag.RECEIPT) !== 0,
          readReceipt: (f.flags & SendFlag.READ_RECEIPT) !== 0,
          idempotent: (f.flags & SendFlag.IDEMPOTENT) !== 0,
        })
        const id = randomUUID()
        this.uploads(conn).set(id, { upload, chain: Promise.resolve(), failed: undefined })
        conn.send({ type: 'RESULT', corr: f.corr, op: Op.UPLOAD, text: id, users: [], items: [] })
        return
      }
      case 'FILE_CHUNK': {
        const p = this.pending(conn, f.uploadId)
        const data = f.data
        let q = this.queued.get(conn)
        if (q === undefined) this.queued.set(conn, (q = { bytes: 0, held: false }))
        const queue = q
        queue.bytes += data.length
        if (!queue.held && queue.bytes > QUEUED_HIGH) {
          queue.held = true
          conn.holdInput()
        }
        const written = (): void => {
          queue.bytes -= data.length
          if (queue.held && queue.bytes < QUEUED_LOW) {
            queue.held = false
            conn.releaseInput()
          }
        }
        p.chain = p.chain
          .then(async () => {
            if (p.failed !== undefined) return
            try {
              await p.upload.write(data)
            } catch (err) {
              p.failed =
                err instanceof BrokerError
                  ? err
                  : new BrokerError('SB_ERR_INTERNAL', 'writing the upload failed', undefined, { cause: err })
              this.uploads(conn).delete(f.uploadId)
              await p.upload.abort(p.failed.message).catch(() => undefined)
              conn.error(f.corr, p.failed.code, p.failed.message, p.failed.limit ?? '')
            }
          })
          .finally(written)
        return
      }
      case 'FILE_END': {
        const p = this.pending(conn, f.uploadId)
        await p.chain
        if (p.failed !== undefined) throw p.failed
        this.uploads(conn).delete(f.uploadId)
        const done = await p.upload.finish()
        conn.accepted(f.corr, done.send, done.fileId)
        return
      }
      case 'FILE_ABORT': {
        const p = this.pending(conn, f.uploadId)
        this.uploads(conn).delete(f.uploadId)
        await p.chain
        await p.upload.abort('aborted by the client')
        return
      }
      case 'DOWNLOAD': {
        const end = f.length > 0 ? f.offset + f.length - 1 : undefined
        const d = await this.files.openDownload(s, f.fileId, end === undefined ? { start: f.offset } : { start: f.offset, end })
        conn.send({
          type: 'FILE_INFO',
          corr: f.corr,
          fileId: d.meta.id,
          name: d.meta.name,
          size: d.meta.size,
          sha256: d.meta.sha256,
        })
        let offset = d.start
        if (d.size === 0) {
          conn.send({ type: 'FILE_DATA', corr: f.corr, offset, last: 1, data: Buffer.alloc(0) })
          return
        }
        try {
          let held: Buffer | undefined
          for await (const chunk of d.stream as AsyncIterable<Buffer>) {
            // Hold one chunk back so the last one can carry last=1.
            for (let i = 0; i < chunk.length; i += CHUNK) {
              const piece = chunk.subarray(i, i + CHUNK)
              if (held !== undefined) {
                conn.send({ type: 'FILE_DATA', corr: f.corr, offset, last: 0, data: held })
                offset += held.length
                if (!(await conn.writable())) return
              }
              held = piece
            }
          }
          conn.send({ type: 'FILE_DATA', corr: f.corr, offset, last: 1, data: held ?? Buffer.alloc(0) })
        } finally {
          d.stream.destroy()
        }
        return
      }
      default:
        throw new BrokerError('SB_ERR_UNSUPPORTED', `${f.type} is not a file frame`)
    }
  }

  connectionClosed(conn: NativeConnection): void {
    this.queued.delete(conn)
    const m = this.byConn.get(conn)
    this.byConn.delete(conn)
    if (m === undefined) return
    for (const p of m.values()) void p.chain.then(() => p.upload.abort('the connection closed')).catch(() => undefined)
  }
}
