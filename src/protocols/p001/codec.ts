/**
 * Seed 001 — binary terminal chat (C++17 original). Pure codec: bytes ⇄ frames, no I/O, no clock.
 * Full byte layout and the choices made: docs/protocol/p001.md.
 *
 * Wire frame (a raw C struct, host order = little-endian, no padding):
 *
 *   off size field
 *   0   2    len        u16 LE, counts the WHOLE frame (header included), 24..1024
 *   2   2    type       u16 LE, 0 message (answer expected), 1 answer, 2 offline message
 *   4   4    messageID  u32 LE, per-sender counter (the original client starts at 1)
 *   8   8    src        char[8], C string: name ends at the first NUL, bytes after it are garbage
 *   16  8    dst        char[8], same
 *   24  n    message    text + terminating NUL (counted in len); answers are "200\0" / "300\0"
 *
 * API
 * ```ts
 * decode(buf: Buffer, limits?: Limits): Decoded<Frame>   // streaming: returns the unread `rest`
 * encode(frame: Frame): Buffer                           // canonical bytes: names NUL-padded, text + NUL
 * answer(to: Frame, code: AnswerCode): Frame             // type 1, same messageId, src/dst swapped
 * encodeAnswer(to: Frame, code: AnswerCode): Buffer
 * nameFits(name: string): boolean                        // can this name be sent to the original client?
 * ```
 *
 * @example
 * let buf = Buffer.alloc(0)
 * socket.on('data', (chunk) => {
 *   buf = Buffer.concat([buf, chunk])
 *   for (;;) {
 *     const r = decode(buf)
 *     if (!r.ok && r.reason === 'need-more') break
 *     if (!r.ok) return socket.destroy()          // malformed / too-large: the stream cannot be trusted
 *     buf = r.rest
 *     handle(r.frame, r.raw)                       // r.raw: the exact bytes, for byte-for-byte forwarding
 *   }
 * })
 *
 * Decoding never throws; encoding throws RangeError on values that cannot be put on the wire
 * (a programming error in the caller, never caused by peer bytes).
 *
 * UTF-8 policy: names are identifiers, so a name that is not valid UTF-8 makes the frame `malformed`
 * (two different byte names must never collapse into the same "\uFFFD" string). The message text is
 * decoded leniently: invalid sequences become U+FFFD, `raw` still holds the exact bytes.
 */
import { isUtf8 } from 'node:buffer'

/** Header size in bytes. // 001 README §2 (len 2 + type 2 + messageID 4 + src 8 + dst 8) */
export const HEADER_BYTES = 24
/** Largest frame the original accepts. // 001 README §2, §6 ("от 24 до 1024") */
export const MAX_FRAME_BYTES = 1024
/** Size of the src / dst fields. // 001 README §2 */
export const NAME_FIELD_BYTES = 8
/** Longest name the original C client can hold: 7 bytes + NUL. // ORIGINALS.md §001 */
export const MAX_NAME_BYTES = 7
/** Longest text `encode` writes: 1024 - 24 header - 1 NUL. // 001 README §2 (message 0-1000 bytes) */
export const MAX_TEXT_BYTES = MAX_FRAME_BYTES - HEADER_BYTES - 1
/** How long the server waits for "200" before it answers "300". // 001 README §5 (3 s) */
export const ANSWER_TIMEOUT_MS = 3000

/** Frame types. // 001 README §7 */
export const FrameType = {
  MESSAGE: 0, // §3 text for the recipient, answer expected
  ANSWER: 1, // §5 "200" from the recipient or "300" from the server
  OFFLINE: 2, // §4 stored message delivered when the recipient connects, not answered
} as const

/** Answer codes. // 001 README §9 */
export const AnswerCode = {
  DELIVERED: '200', // written by the recipient's client
  NOT_DELIVERED: '300', // written by the server: recipient offline or silent for 3 s
} as const
export type AnswerCode = (typeof AnswerCode)[keyof typeof AnswerCode]

export interface Frame {
  /** u16; 0, 1, 2 are defined (FrameType). Other values are decoded as-is: the adapter decides. */
  type: number
  /** u32 */
  messageId: number
  /** Name up to its first NUL (at most 8 bytes when the field has no NUL at all). */
  src: string
  dst: string
  /** Message bytes without the one terminating NUL (absent NUL tolerated). May contain inner NULs. */
  text: string
}

export interface Limits {
  /** Frames with len above this are 'too-large'. Default 1024 (001 README §6); at most 65535. */
  maxFrameBytes: number
}
export const DEFAULT_LIMITS: Readonly<Limits> = { maxFrameBytes: MAX_FRAME_BYTES }

export type Decoded<T> =
  | { ok: true; frame: T; /** exact frame bytes (a view into buf) */ raw: Buffer; rest: Buffer }
  | { ok: false; reason: 'need-more' }
  | { ok: false; reason: 'malformed'; code: 'SB_ERR_MALFORMED'; detail: string }
  | { ok: false; reason: 'too-large'; code: 'SB_ERR_TOO_LARGE'; detail: string }

const malformed = (detail: string) => ({ ok: false, reason: 'malformed', code: 'SB_ERR_MALFORMED', detail }) as const

/** Decode one frame from the front of `buf`. Never throws. */
export function decode(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<Frame> {
  // len is known after 2 bytes: judge it before waiting for (or buffering) the rest.
  if (buf.length < 2) return { ok: false, reason: 'need-more' }
  const len = buf.readUInt16LE(0)
  if (len < HEADER_BYTES) return malformed(`len ${len} is below the ${HEADER_BYTES}-byte header`)
  if (len > limits.maxFrameBytes) {
    return { ok: false, reason: 'too-large', code: 'SB_ERR_TOO_LARGE', detail: `len ${len} > ${limits.maxFrameBytes}` }
  }
  if (buf.length < len) return { ok: false, reason: 'need-more' }

  const src = readName(buf.subarray(8, 16))
  if (src === undefined) return malformed('src name is not valid UTF-8')
  const dst = readName(buf.subarray(16, 24))
  if (dst === undefined) return malformed('dst name is not valid UTF-8')
  let body = buf.subarray(HEADER_BYTES, len)
  // The original always sends the NUL; a client written from the README may not.
  if (body.length > 0 && body[body.length - 1] === 0) body = body.subarray(0, body.length - 1)
  const frame: Frame = {
    type: buf.readUInt16LE(2),
    messageId: buf.readUInt32LE(4),
    src,
    dst,
    text: body.toString('utf8'),
  }
  return { ok: true, frame, raw: buf.subarray(0, len), rest: buf.subarray(len) }
}

/** C string semantics: up to the first NUL, garbage after it ignored. undefined = not UTF-8. */
function readName(field: Buffer): string | undefined {
  const nul = field.indexOf(0)
  const bytes = nul === -1 ? field : field.subarray(0, nul)
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined
}

/**
 * Canonical bytes of a frame: names NUL-padded, text followed by one NUL.
 * Throws RangeError if a field does not fit (see nameFits, MAX_TEXT_BYTES).
 */
export function encode(frame: Frame): Buffer {
  const text = Buffer.from(frame.text, 'utf8')
  if (text.length > MAX_TEXT_BYTES) throw new RangeError(`001 text is ${text.length} bytes, max ${MAX_TEXT_BYTES}`)
  if (!Number.isInteger(frame.type) || frame.type < 0 || frame.type > 0xffff) throw new RangeError('001 type is not a u16')
  if (!Number.isInteger(frame.messageId) || frame.messageId < 0 || frame.messageId > 0xffffffff) {
    throw new RangeError('001 messageId is not a u32')
  }
  const len = HEADER_BYTES + text.length + 1
  const out = Buffer.alloc(len) // zero-filled: name padding and the final NUL come for free
  out.writeUInt16LE(len, 0)
  out.writeUInt16LE(frame.type, 2)
  out.writeUInt32LE(frame.messageId, 4)
  writeName(out, 8, frame.src)
  writeName(out, 16, frame.dst)
  text.copy(out, HEADER_BYTES)
  return out
}

function writeName(out: Buffer, at: number, name: string): void {
  const bytes = Buffer.from(name, 'utf8')
  // 8 bytes are allowed so that any decoded name can be answered; new names should use nameFits().
  if (bytes.length > NAME_FIELD_BYTES || bytes.includes(0)) {
    throw new RangeError(`001 name ${JSON.stringify(name)} does not fit a char[8] C string`)
  }
  bytes.copy(out, at)
}

/** True when the original client can hold the name: 1..7 UTF-8 bytes, no NUL. // ORIGINALS.md §001 */
export function nameFits(name: string): boolean {
  const n = Buffer.byteLength(name, 'utf8')
  return n >= 1 && n <= MAX_NAME_BYTES && !name.includes('\0')
}

/**
 * The answer to a type-0 frame: type 1, same messageId, src = its dst, dst = its src. // 001 README §5
 * "200" is what a recipient sends; "300" is what the server sends when nobody answered.
 */
export function answer(to: Frame, code: AnswerCode): Frame {
  return { type: FrameType.ANSWER, messageId: to.messageId, src: to.dst, dst: to.src, text: code }
}

/** encode(answer(to, code)): a 28-byte frame. */
export function encodeAnswer(to: Frame, code: AnswerCode): Buffer {
  return encode(answer(to, code))
}
