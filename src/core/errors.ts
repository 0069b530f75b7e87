/**
 * The one registry of error codes. Every adapter maps a code to its own wire form (an ERROR frame,
 * an HTTP status, a WebSocket close code, a legacy refusal) through its `toWire`; docs/errors.md lists
 * every code, and a test checks the two agree. A store's own errors (StoreError) are mapped here too.
 */
import { isStoreError, type StoreErrorCode } from '../store/errors.js'

export const ErrorCodes = {
  SB_ERR_MALFORMED: { status: 400, text: 'malformed frame or request' },
  SB_ERR_TOO_LARGE: { status: 413, text: 'a field or frame is larger than its limit' },
  SB_ERR_NAME_INVALID: { status: 400, text: 'the name is empty, too long or has forbidden characters' },
  SB_ERR_NAME_TAKEN: { status: 409, text: 'the name is already in use' },
  SB_ERR_AUTH: { status: 401, text: 'unknown user or wrong token' },
  SB_ERR_NOT_LOGGED_IN: { status: 401, text: 'log in or register first' },
  SB_ERR_UNKNOWN_RECIPIENT: { status: 404, text: 'no such user or topic' },
  SB_ERR_UNKNOWN_MESSAGE: { status: 404, text: 'no such message in your queue' },
  SB_ERR_QUEUE_FULL: { status: 507, text: "the recipient's queue is full" },
  SB_ERR_RATE_LIMITED: { status: 429, text: 'too many requests' },
  SB_ERR_LIMIT: { status: 503, text: 'a server limit was reached' },
  SB_ERR_UNSUPPORTED: { status: 400, text: 'unsupported operation or version' },
  SB_ERR_FORBIDDEN: { status: 403, text: 'not allowed' },
  SB_ERR_CONFLICT: { status: 409, text: 'the request conflicts with the current state' },
  SB_ERR_UNKNOWN_FILE: { status: 404, text: 'no such file' },
  SB_ERR_FILE_CHECK: { status: 422, text: 'the file does not match its size or SHA-256' },
  SB_ERR_UNKNOWN_CONVERSATION: { status: 404, text: 'no such conversation' },
  SB_ERR_SHUTTING_DOWN: { status: 503, text: 'the server is shutting down' },
  SB_ERR_INTERNAL: { status: 500, text: 'internal error' },
  SB_ERR_STORAGE_FULL: { status: 507, text: "the server's storage is full" },
  SB_ERR_PASSWORD_INVALID: { status: 400, text: 'the password is too short or too long' },
  SB_ERR_UNKNOWN_DEVICE: { status: 404, text: 'no such device of yours' },
  SB_ERR_OFFLINE: { status: 409, text: 'the recipient is not online (a transient message is not stored)' },
} as const

export type ErrorCode = keyof typeof ErrorCodes

/** Numeric form of each code for binary protocols (stable: append only). */
export const ErrorNumbers: Record<ErrorCode, number> = {
  SB_ERR_MALFORMED: 1,
  SB_ERR_TOO_LARGE: 2,
  SB_ERR_NAME_INVALID: 3,
  SB_ERR_NAME_TAKEN: 4,
  SB_ERR_AUTH: 5,
  SB_ERR_NOT_LOGGED_IN: 6,
  SB_ERR_UNKNOWN_RECIPIENT: 7,
  SB_ERR_UNKNOWN_MESSAGE: 8,
  SB_ERR_QUEUE_FULL: 9,
  SB_ERR_RATE_LIMITED: 10,
  SB_ERR_LIMIT: 11,
  SB_ERR_UNSUPPORTED: 12,
  SB_ERR_FORBIDDEN: 13,
  SB_ERR_CONFLICT: 14,
  SB_ERR_UNKNOWN_FILE: 15,
  SB_ERR_FILE_CHECK: 16,
  SB_ERR_UNKNOWN_CONVERSATION: 17,
  SB_ERR_SHUTTING_DOWN: 18,
  SB_ERR_INTERNAL: 19,
  SB_ERR_STORAGE_FULL: 20,
  SB_ERR_PASSWORD_INVALID: 21,
  SB_ERR_UNKNOWN_DEVICE: 22,
  SB_ERR_OFFLINE: 23,
}

export function errorCodeFromNumber(n: number): ErrorCode {
  for (const [code, num] of Object.entries(ErrorNumbers)) if (num === n) return code as ErrorCode
  return 'SB_ERR_INTERNAL'
}

export class BrokerError extends Error {
  override readonly name = 'BrokerError'
  /** For a rate limit: when the next attempt is allowed (ms from now), where the core knows it. */
  retryAfterMs?: number
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The limit that was broken, when there is one (e.g. 'maxTextBytes'). */
    readonly limit?: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export function isBrokerError(err: unknown): err is BrokerError {
  return err instanceof BrokerError
}

/** What each StoreError code (src/store/errors.ts) means to a client. */
const STORE_CODES: Record<StoreErrorCode, ErrorCode> = {
  NAME_TAKEN: 'SB_ERR_NAME_TAKEN',
  // Its text says what happened and that a retry is safe with IDEMPOTENT: the adapters pass it on.
  UNAVAILABLE: 'SB_ERR_INTERNAL',
  SCHEMA_TOO_NEW: 'SB_ERR_INTERNAL',
  FULL: 'SB_ERR_STORAGE_FULL',
}

/** A StoreError as the BrokerError it means; anything else is returned as it is. */
export function fromStoreError(err: unknown): unknown {
  if (!isStoreError(err)) return err
  return new BrokerError(STORE_CODES[err.code], err.message, undefined, { cause: err })
}

/** Any thrown value as a BrokerError: a store's error as what it means; internal faults keep their cause but never leak their text. */
export function asBrokerError(err: unknown): BrokerError {
  if (err instanceof BrokerError) return err
  if (isStoreError(err)) return fromStoreError(err) as BrokerError
  return new BrokerError('SB_ERR_INTERNAL', 'internal error', undefined, { cause: err })
}
