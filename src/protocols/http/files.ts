/**
 * Files over HTTP on top of the core's FileService: a streamed upload (the request body is the file; it
 * goes to disk chunk by chunk with the service's backpressure, never whole into memory) and a download
 * that honours one `Range: bytes=…` so an interrupted download resumes where it stopped.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BrokerError } from '../../core/errors.js'
import type { FileService } from '../../core/files.js'
import type { Address } from '../../core/types.js'
import { parseAddress } from './json.js'
import { HttpError, PROBLEM_TYPE, problem } from './problem.js'
import { bearerToken } from './rest.js'
import { routeSpec } from './routes-spec.js'
import type { HttpSession, HttpSessions } from './sessions.js'

interface UploadQuery {
  to?: string
  toId?: number
  name: string
  size?: number
  sha256?: string
  text?: string
  msgId?: number
  receipt?: boolean
  readReceipt?: boolean
  idempotent?: boolean
  ttlMs?: number
}

/** One `bytes=` range of `size` bytes → inclusive [start, end], 'unsatisfiable', or undefined to send it all. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  // Several ranges, or another unit: RFC 9110 lets a server ignore Range and send everything.
  if (m === null || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size || end < start) return 'unsatisfiable'
  return { start, end }
}

function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_')
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`
}

export function registerFiles(app: FastifyInstance, deps: { sessions: HttpSessions; files: FileService | undefined }): void {
  const { sessions, files } = deps
  const up = routeSpec('uploadFile')
  const down = routeSpec('downloadFile')

  const auth = async (req: FastifyRequest, allowQuery: boolean): Promise<HttpSession> => {
    const token = bearerToken(req, allowQuery)
    if (token === undefined)
      throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'send Authorization: Bearer <token>, the token POST /v1/register returned')
    return sessions.fromToken(token, req.ip)
  }
  const need = (): FileService => {
    if (files === undefined) throw new HttpError('SB_HTTP_NOT_IMPLEMENTED', 'file transfer is not enabled on this server')
    return files
  }

  // The upload's body is the file: a scope of its own where every content type reaches the handler unread.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_req, payload, done) => done(null, payload))

    scope.post(up.url, { schema: { querystring: up.querystring! } }, async (req, reply) => {
      const svc = need()
      const hs = await auth(req, false)
      const q = req.query as UploadQuery
      const declared = q.size ?? (req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined)
      if (declared === undefined || !Number.isSafeInteger(declared)) {
        const p = problem('SB_ERR_MALFORMED', 'give the file size as ?size= or a Content-Length', {
          status: 411,
          instance: up.url,
        })
        return reply.code(411).type(PROBLEM_TYPE).send(p)
      }
      let to: Address
      if (q.toId !== undefined) to = { kind: 'user', id: q.toId }
      else if (q.to !== undefined) to = parseAddress(q.to)
      else throw new BrokerError('SB_ERR_MALFORMED', 'give the recipient as ?to=<name|ALL|#topic> or ?toId=<id>')
      const upload = await svc.beginUpload(hs.session, {
        name: q.name,
        size: declared,
        to,
        ...(q.sha256 !== undefined && { sha256: q.sha256 }),
        ...(q.text !== undefined && { text: q.text }),
        ...(q.msgId !== undefined && { msgId: q.msgId }),
        ...(q.receipt !== undefined && { receipt: q.receipt }),
        ...(q.readReceipt !== undefined && { readReceipt: q.readReceipt }),
        ...(q.idempotent !== undefined && { idempotent: q.idempotent }),
        ...(q.ttlMs !== undefined && { ttlMs: q.ttlMs }),
      })
      try {
        // Awaiting each write is the backpressure: the request is not read faster than the disk takes it.
        for await (const chunk of req.raw) await upload.write(chunk as Buffer)
      } catch (err) {
        await upload.abort('the request failed')
        throw err
      }
      const r = await upload.finish()
      reply.code(201)
      return {
        fileId: r.fileId,
        sha256: r.sha256,
        size: r.size,
        msgId: r.send.msgId,
        status: r.send.status,
        seq: r.send.seq,
        recipients: r.send.recipients,
      }
    })
  })

  app.get(down.url, { schema: { params: down.params!, querystring: down.querystring! } }, async (req, reply: FastifyReply) => {
    const svc = need()
    const hs = await auth(req, true)
    const { fileId } = req.params as { fileId: string }
    const meta = await svc.stat(hs.session, fileId)
    const range = parseRange(req.headers.range, meta.size)
    const etag = `"${meta.sha256}"`
    reply.header('accept-ranges', 'bytes').header('etag', etag)
    if (range === 'unsatisfiable') {
      const p = problem('SB_ERR_MALFORMED', `the range ${req.headers.range} is outside the file (${meta.size} bytes)`, {
        status: 416,
        instance: req.url.split('?')[0]!,
      })
      return reply.code(416).header('content-range', `bytes */${meta.size}`).type(PROBLEM_TYPE).send(p)
    }
    // If-Range: resume only if the file is still the same content, else send it whole.
    const ifRange = req.headers['if-range']
    const useRange = range !== undefined && (ifRange === undefined || ifRange === etag)
    const d = await svc.openDownload(hs.session, fileId, useRange ? range : undefined)
    reply
      .header('content-type', 'application/octet-stream')
      .header('content-disposition', contentDisposition(meta.name))
      .header('content-length', String(d.size))
    if (useRange) reply.code(206).header('content-range', `bytes ${d.start}-${d.end}/${meta.size}`)
    return reply.send(d.stream)
  })
}
