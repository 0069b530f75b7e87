/**
 * Files (seed 004): an upload streamed in chunks with backpressure (never held whole), and a download
 * handed to the caller chunk by chunk in order. Both ride on the protocol handler's requests (protocol.ts).
 */
import { encode } from '../protocols/native/codec.js'
import { SendFlag, type Frame, type FrameOf } from '../protocols/native/frames.js'
import { acceptedStatusName, type PendingRequest, type Protocol } from './protocol.js'
import {
  SwitchboardError,
  type FileDescriptor,
  type SendOptions,
  type SendResult,
  type Target,
  type TransferProgress,
  type UploadSource,
} from './types.js'
import { addressOf, toBuffer } from './util.js'

export type SendFileOptions = SendOptions & { text?: string; chunkBytes?: number; onProgress?: (p: TransferProgress) => void }

const lostDuringUpload = (): SwitchboardError =>
  new SwitchboardError('SB_ERR_DISCONNECTED', 'the connection was lost during the upload; send the file again')

/** Upload a file with an optional text; resolves when the server accepted the file message. */
export async function sendFile(
  p: Protocol,
  msgId: number,
  to: Target,
  source: UploadSource,
  opts: SendFileOptions,
): Promise<SendResult> {
  let flags = SendFlag.IDEMPOTENT
  if (opts.receipt ?? true) flags |= SendFlag.RECEIPT
  if (opts.readReceipt) flags |= SendFlag.READ_RECEIPT
  const begin = (await p.call(
    {
      type: 'FILE_BEGIN',
      corr: 0,
      msgId,
      to: addressOf(to),
      flags,
      size: source.size,
      sha256: source.sha256 ?? '',
      name: source.name,
      text: opts.text ?? '',
    },
    'FILE_BEGIN',
  )) as FrameOf<'RESULT'>
  const uploadId = begin.text
  const gen = p.gen
  const chunkBytes = opts.chunkBytes ?? 64 * 1024
  let sent = 0
  opts.onProgress?.({ bytes: 0, total: source.size })
  try {
    for await (const chunk of source.chunks) {
      for (let off = 0; off < chunk.length; off += chunkBytes) {
        const part = chunk.subarray(off, Math.min(chunk.length, off + chunkBytes))
        const conn = p.conn
        if (conn === undefined || gen !== p.gen) throw lostDuringUpload()
        p.writeFrame({ type: 'FILE_CHUNK', corr: p.corrNext(), uploadId, data: toBuffer(part) }, 'FILE_CHUNK')
        sent += part.length
        opts.onProgress?.({ bytes: sent, total: source.size })
        await conn.whenDrained(1024 * 1024)
      }
    }
  } catch (err) {
    if (p.conn !== undefined && gen === p.gen) p.writeFrame({ type: 'FILE_ABORT', corr: p.corrNext(), uploadId }, 'FILE_ABORT')
    throw err
  }
  if (gen !== p.gen) throw lostDuringUpload()
  const acc = (await p.request({ type: 'FILE_END', corr: 0, uploadId }, 'FILE_END')) as FrameOf<'ACCEPTED'>
  const r: SendResult = {
    msgId: acc.msgId,
    accepted: acceptedStatusName(acc.status),
    seq: acc.seq,
    recipients: acc.recipients,
  }
  if (acc.fileId !== '') r.fileId = acc.fileId
  return r
}

/** Download a file by id: `write` receives each chunk in order (awaited, for backpressure). */
export async function download(
  p: Protocol,
  fileId: string,
  write: (chunk: Uint8Array, offset: number) => void | Promise<void>,
  opts: { onProgress?: (p: TransferProgress) => void },
): Promise<FileDescriptor> {
  let info: FileDescriptor | undefined
  let got = 0
  let chain = Promise.resolve()
  let failed: unknown
  let finish!: () => void
  const done = new Promise<void>((r) => (finish = r))
  const stream = (f: Frame): void => {
    if (f.type === 'FILE_INFO') {
      info = { fileId: f.fileId, name: f.name, size: f.size, sha256: f.sha256 }
      opts.onProgress?.({ bytes: 0, total: f.size })
      if (f.size === 0) finish()
      return
    }
    if (f.type !== 'FILE_DATA') return
    const data = f.data
    const offset = f.offset
    const last = f.last !== 0
    chain = chain.then(async () => {
      if (failed !== undefined) return
      try {
        await write(data, offset)
      } catch (err) {
        failed = err
      }
      got += data.length
      opts.onProgress?.({ bytes: got, total: info?.size ?? got })
    })
    if (last) void chain.then(finish)
  }
  // The request stays registered (by corr) until the last FILE_DATA: FILE_INFO resolves nothing by itself.
  await p.ready()
  const corr = p.corrNext()
  const frame: Frame = { type: 'DOWNLOAD', corr, fileId, offset: 0, length: 0 }
  const outcome = new Promise<void>((resolve, reject) => {
    const r: PendingRequest = {
      op: 'DOWNLOAD',
      timer: undefined,
      resolve: () => resolve(),
      reject,
      stream: (f) => {
        stream(f)
      },
    }
    p.requests.set(corr, r)
    void done.then(() => {
      p.requests.delete(corr)
      resolve()
    })
  })
  p.conn?.write(encode(frame))
  await outcome
  await chain
  if (failed !== undefined) throw failed
  if (info === undefined) throw new SwitchboardError('SB_ERR_UNKNOWN_FILE', `no file ${fileId}`)
  return info
}
