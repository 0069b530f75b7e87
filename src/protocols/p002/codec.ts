/**
 * Seed 002 — chat room over length-prefixed strings (Python asyncio original). Pure codec.
 * Full byte layout and the choices made: docs/protocol/p002.md.
 *
 * All integers are big-endian.
 *   string    := u32 size, then `size` bytes of UTF-8 (size counts the bytes only, not itself)
 *   timestamp := u64 Unix seconds
 * client → server: string name, then string message, string message, … (leaving = closing the socket)
 * server → client: timestamp, string name, string text — one "delivery" per message, sender included
 *
 * API
 * ```ts
 * decodeString(buf: Buffer, maxBytes: number, utf8?: 'replace' | 'reject'): Decoded<string>
 * decodeName(buf: Buffer, limits?: Limits): Decoded<string>      // first string; strict UTF-8
 * decodeMessage(buf: Buffer, limits?: Limits): Decoded<string>   // later strings; U+FFFD for bad bytes
 * encodeString(s: string): Buffer
 * encodeDelivery(d: Delivery): Buffer                            // one Buffer: write once, share with N sockets
 * decodeDelivery(buf: Buffer, limits?: Limits): Decoded<Delivery> // for clients and tests
 * ```
 *
 * @example
 * let buf = Buffer.alloc(0), name: string | undefined
 * socket.on('data', (chunk) => {
 *   buf = Buffer.concat([buf, chunk])
 *   for (;;) {
 *     const r = name === undefined ? decodeName(buf, limits) : decodeMessage(buf, limits)
 *     if (!r.ok && r.reason === 'need-more') break
 *     if (!r.ok) return socket.destroy()   // the original closes without a word
 *     buf = r.rest
 *     if (name === undefined) name = r.frame
 *     else room.broadcast(encodeDelivery({ timestamp: Math.floor(Date.now() / 1000), name, text: r.frame }))
 *   }
 * })
 *
 * Size limits are checked as soon as the 4 size bytes are in, before the string is buffered, so a
 * peer announcing 4 GiB costs nothing. Decoding never throws; encoders throw RangeError on values the
 * wire cannot carry.
 *
 * UTF-8 policy: a name is an identifier, so an invalid name is 'malformed' (decodeName); a message
 * text has invalid sequences replaced by U+FFFD (decodeMessage). Limits count bytes, not characters.
 */
import { isUtf8 } from 'node:buffer'

/** Bytes of the string size prefix. // 002 README "string" (size: 4 bytes) */
export const SIZE_BYTES = 4
/** Bytes of the timestamp. // 002 README "timestamp" (8-byte unsigned Unix seconds) */
export const TIMESTAMP_BYTES = 8
/** --max-username-size default. // 002 README "Опции" */
export const DEFAULT_MAX_USERNAME_BYTES = 25
/** --max-message-size default. // 002 README "Опции" */
export const DEFAULT_MAX_MESSAGE_BYTES = 3000
/** --port default. // 002 README "Опции" */
export const DEFAULT_PORT = 9000
/** --host default. // 002 README "Опции" */
export const DEFAULT_HOST = '0.0.0.0'
/** Largest size a u32 can state. // 002 README ("2^32-1 байтов") */
export const MAX_STRING_BYTES = 0xffffffff

export interface Limits {
  /** A name longer than this (in UTF-8 bytes) is 'too-large'. Default 25. */
  maxUsernameBytes: number
  /** A message longer than this (in UTF-8 bytes) is 'too-large'. Default 3000. */
  maxMessageBytes: number
}
export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxUsernameBytes: DEFAULT_MAX_USERNAME_BYTES,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
}

/** What the server sends for each chat message. */
export interface Delivery {
  /** Unix seconds (integer, 0..2^53-1 here; the wire holds a u64). */
  timestamp: number
  name: string
  text: string
}

export type Decoded<T> =
  | { ok: true; frame: T; rest: Buffer }
  | { ok: false; reason: 'need-more' }
  | { ok: false; reason: 'malformed'; code: 'SB_ERR_MALFORMED'; detail: string }
  | { ok: false; reason: 'too-large'; code: 'SB_ERR_TOO_LARGE'; detail: string }

const NEED_MORE = { ok: false, reason: 'need-more' } as const

/** Decode one string from the front of `buf`. Never throws. */
export function decodeString(buf: Buffer, maxBytes: number, utf8: 'replace' | 'reject' = 'replace'): Decoded<string> {
  if (buf.length < SIZE_BYTES) return NEED_MORE
  const size = buf.readUInt32BE(0)
  if (size > maxBytes) {
    return { ok: false, reason: 'too-large', code: 'SB_ERR_TOO_LARGE', detail: `string size ${size} > ${maxBytes}` }
  }
  const end = SIZE_BYTES + size
  if (buf.length < end) return NEED_MORE
  const bytes = buf.subarray(SIZE_BYTES, end)
  if (utf8 === 'reject' && !isUtf8(bytes)) {
    return { ok: false, reason: 'malformed', code: 'SB_ERR_MALFORMED', detail: 'string is not valid UTF-8' }
  }
  return { ok: true, frame: bytes.toString('utf8'), rest: buf.subarray(end) }
}

/** The first string a client sends: its name. Invalid UTF-8 is 'malformed'. */
export function decodeName(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<string> {
  return decodeString(buf, limits.maxUsernameBytes, 'reject')
}

/** Every later string: one chat message (empty is legal). Invalid UTF-8 becomes U+FFFD. */
export function decodeMessage(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<string> {
  return decodeString(buf, limits.maxMessageBytes, 'replace')
}

/** u32 BE size + UTF-8 bytes. */
export function encodeString(s: string): Buffer {
  const len = Buffer.byteLength(s, 'utf8')
  const out = Buffer.allocUnsafe(SIZE_BYTES + len)
  out.writeUInt32BE(len, 0)
  out.write(s, SIZE_BYTES, 'utf8')
  return out
}

/**
 * timestamp + name + text as ONE Buffer, so it goes out in one write and can be shared by all
 * recipients. Throws RangeError if the timestamp is not a non-negative safe integer.
 */
export function encodeDelivery(d: Delivery): Buffer {
  if (!Number.isSafeInteger(d.timestamp) || d.timestamp < 0) {
    throw new RangeError(`002 timestamp ${d.timestamp} is not a non-negative integer of seconds`)
  }
  const name = Buffer.byteLength(d.name, 'utf8')
  const text = Buffer.byteLength(d.text, 'utf8')
  const out = Buffer.allocUnsafe(TIMESTAMP_BYTES + SIZE_BYTES + name + SIZE_BYTES + text)
  let at = out.writeBigUInt64BE(BigInt(d.timestamp), 0)
  at = out.writeUInt32BE(name, at)
  at += out.write(d.name, at, 'utf8')
  at = out.writeUInt32BE(text, at)
  out.write(d.text, at, 'utf8')
  return out
}

/**
 * Decode one server delivery (what an original client reads). Name and text are held to the same
 * limits as on the way in; both are decoded leniently. A timestamp above 2^53-1 is 'malformed'.
 */
export function decodeDelivery(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<Delivery> {
  if (buf.length < TIMESTAMP_BYTES) return NEED_MORE
  const ts = buf.readBigUInt64BE(0)
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) {
    return { ok: false, reason: 'malformed', code: 'SB_ERR_MALFORMED', detail: `timestamp ${ts} out of range` }
  }
  const name = decodeString(buf.subarray(TIMESTAMP_BYTES), limits.maxUsernameBytes)
  if (!name.ok) return name
  const text = decodeString(name.rest, limits.maxMessageBytes)
  if (!text.ok) return text
  return { ok: true, frame: { timestamp: Number(ts), name: name.frame, text: text.frame }, rest: text.rest }
}
