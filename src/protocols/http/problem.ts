/**
 * The HTTP adapter's one `toWire(err)`: any error (a BrokerError from the core, a fastify validation or
 * body-parser error, anything else) becomes an RFC 9457 problem document with the core's stable code.
 * The status comes from ErrorCodes[code].status, except where HTTP has a more exact status of its own for
 * a condition the core never raises (415, 404 for an unknown route, 501).
 */
import { ErrorCodes, isBrokerError, type ErrorCode } from '../../core/errors.js'

export const PROBLEM_TYPE = 'application/problem+json'

export interface Problem {
  /** A URI reference to the code's entry on the reference page. */
  type: string
  title: string
  status: number
  detail: string
  code: ErrorCode
  /** The limit that was broken, when there is one (e.g. 'maxTextBytes', 'bodyLimit'). */
  limit?: string
  instance?: string
  /** For validation errors: where in the request. */
  errors?: { in: string; path: string; message: string }[]
}

export interface WireError {
  status: number
  headers: Record<string, string>
  body: Problem
}

export interface WireContext {
  instance?: string
  /** Requests per second the rate limit allows, to compute Retry-After. */
  ratePerSecond?: number
  /** Seconds to wait, when the error knows better than a rate (failed logins: the core says when). */
  retryAfter?: number
}

interface FastifyishError {
  code?: string
  statusCode?: number
  message?: string
  validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]
  validationContext?: string
}

export function problem(code: ErrorCode, detail: string, extra: Partial<Problem> = {}): Problem {
  const p: Problem = {
    type: `/docs#${code}`,
    title: ErrorCodes[code].text,
    status: ErrorCodes[code].status,
    detail,
    code,
    ...extra,
  }
  return p
}

/** Failed logins (limit loginAttempts): the seconds until the core's limiter allows the next attempt (a minute if it did not say). */
export function loginRetryAfter(err: unknown): number | undefined {
  if (!isBrokerError(err) || err.limit !== 'loginAttempts') return undefined
  return err.retryAfterMs === undefined ? 60 : Math.max(1, Math.ceil(err.retryAfterMs / 1000))
}

/** Seconds until one more request is allowed at `rate` per second (at least 1: Retry-After is whole seconds). */
export function retryAfterSeconds(rate: number | undefined): number {
  if (rate === undefined || rate <= 0) return 1
  return Math.max(1, Math.ceil(1 / rate))
}

export function toWire(err: unknown, ctx: WireContext = {}): WireError {
  const headers: Record<string, string> = {}
  let body: Problem
  if (isBrokerError(err)) {
    body = problem(err.code, err.message)
    if (err.limit !== undefined) body.limit = err.limit
  } else {
    const e = (err ?? {}) as FastifyishError
    if (e.validation !== undefined) {
      const where = e.validationContext ?? 'body'
      const errors = e.validation.map((v) => ({ in: where, path: v.instancePath ?? '', message: v.message ?? 'invalid' }))
      body = problem(
        'SB_ERR_MALFORMED',
        `invalid ${where}: ${errors.map((x) => `${x.path || '(root)'} ${x.message}`).join('; ')}`,
        { errors },
      )
    } else if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      body = problem('SB_ERR_TOO_LARGE', 'the request body is larger than bodyLimit', { limit: 'bodyLimit' })
    } else if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      body = problem('SB_ERR_UNSUPPORTED', `${e.message ?? 'unsupported media type'}; send application/json`, { status: 415 })
    } else if (e.code === 'SB_HTTP_NOT_FOUND') {
      body = problem('SB_ERR_UNSUPPORTED', e.message ?? 'no such route', { status: 404 })
    } else if (e.code === 'SB_HTTP_NOT_IMPLEMENTED') {
      body = problem('SB_ERR_UNSUPPORTED', e.message ?? 'not implemented', { status: 501 })
    } else if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
      // fastify's own client errors: bad JSON, empty JSON body, bad content length…
      body = problem(e.statusCode === 413 ? 'SB_ERR_TOO_LARGE' : 'SB_ERR_MALFORMED', e.message ?? 'bad request', {
        status: e.statusCode,
      })
    } else {
      body = problem('SB_ERR_INTERNAL', 'internal error')
    }
  }
  if (ctx.instance !== undefined) body.instance = ctx.instance
  if (body.code === 'SB_ERR_RATE_LIMITED') headers['retry-after'] = String(ctx.retryAfter ?? retryAfterSeconds(ctx.ratePerSecond))
  if (body.status === 401) headers['www-authenticate'] = 'Bearer realm="switchboard"'
  return { status: body.status, headers, body }
}

/** An error the routes throw for HTTP-only conditions (unknown route, not implemented). */
export class HttpError extends Error {
  constructor(
    readonly code: 'SB_HTTP_NOT_FOUND' | 'SB_HTTP_NOT_IMPLEMENTED',
    message: string,
  ) {
    super(message)
  }
}
