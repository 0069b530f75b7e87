/**
 * Seed 004 — chat with files and rename (Python sockets original). Pure codec: no I/O, no clock.
 * Full byte layout, every server text and the choices made: docs/protocol/p004.md.
 *
 * Packet: u16 BE len, type byte, payload; len = 1 + payload bytes (counts the type byte, not itself).
 *   client → server                              server → client
 *   0 login   "name" | "name <utc offset s>"     0 welcome  WELCOME_TEXT
 *   1 exit    ">>exit<<"                         2 file     "<HH:MM> [alice]" 0xFF u32 size "filename caption"
 *   2 file    u32 size "filename caption..."     3 notice   any text (see the notice builders)
 *   3 message text                               4 renamed  "Username changed to bob"
 *   4 rename  ">>chname<< newname ..."
 * After a type-2 packet (either way) exactly `size` raw file bytes follow UNFRAMED on the stream.
 *
 * API
 * ```ts
 * decodeClient(buf: Buffer, limits?: Limits): Decoded<ClientMessage>
 * decodeServer(buf: Buffer, limits?: Limits): Decoded<ServerMessage>
 * takeRaw(buf: Buffer, remaining: number): { chunk: Buffer; rest: Buffer; remaining: number }
 * encodeClient(m: ClientMessage): Buffer    // what an original client sends (SDK, tests)
 * encodeServer(m: ServerMessage): Buffer    // what the server sends
 * encodePacket(type: number, payload: Buffer | string): Buffer
 * hhmm(epochMs: number, utcOffsetSeconds: number | null): string          // "03:12"
 * notice.connected / chat / nameInUse / renamed / disconnected / uploaded / usernameChanged / fileHeader
 * ```
 *
 * @example
 * // inbound loop; `pending` counts raw file bytes still owed after a 'file' packet
 * for (;;) {
 *   if (pending > 0) {
 *     const t = takeRaw(buf, pending); file.write(t.chunk); buf = t.rest; pending = t.remaining
 *     if (pending > 0) break
 *     continue
 *   }
 *   const r = decodeClient(buf, limits)
 *   if (!r.ok && r.reason === 'need-more') break
 *   if (!r.ok) return socket.destroy()
 *   buf = r.rest
 *   if (r.frame.kind === 'file') pending = r.frame.size
 *   handle(r.frame)
 * }
 *
 * Decoding never throws; encoders throw RangeError when a packet would not fit its u16 length.
 * UTF-8 policy: login and rename carry names, so invalid UTF-8 there is 'malformed'; every other text
 * (message, exit, file name and caption, server texts) is decoded with U+FFFD replacement.
 */
import { isUtf8 } from 'node:buffer'

/** Bytes of the length prefix. // 004 README "Пакет" ({lenMsg (2 bytes)}) */
export const LEN_BYTES = 2
/** Largest len: type byte + 65534 payload bytes. // 004 README "ограничением примерно в 2^16 - 1" */
export const MAX_LEN = 0xffff
export const MAX_PAYLOAD_BYTES = MAX_LEN - 1
/** Bytes of the file size field. // 004 README "filesize (4 bytes)" */
export const FILE_SIZE_BYTES = 4
/** Separator between the sender and the size in a server file packet. // 004 README "\xff" */
export const FILE_SEPARATOR = 0xff
/** Port of the original server. // ORIGINALS.md §004 */
export const DEFAULT_PORT = 55555

/** Packet types. // 004 README "Пакет" */
export const PacketType = {
  LOGIN: 0, // in: login; out: welcome (login accepted)
  EXIT: 1, // in: ">>exit<<"
  FILE: 2, // in and out: file header, raw bytes follow
  MESSAGE: 3, // in: chat text; out: every notice
  RENAME: 4, // in: ">>chname<< name"; out: "Username changed to name"
} as const

export const EXIT_COMMAND = '>>exit<<' // 004 README "Выход"
export const RENAME_COMMAND = '>>chname<<' // 004 README "Изменение имени"
export const SENDFILE_COMMAND = '>>sendfile<<' // 004 README, typed by the user, never on the wire
/** Type-0 answer to an accepted login. // ORIGINALS.md §004, capture 004 t=1.81 */
export const WELCOME_TEXT = "Commands: >>exit<<, >>sendfile<< 'filename', >>chname<< 'name'"
/** Type-3 answer to a taken name, no time prefix. // ORIGINALS.md §004, capture 004 t=2.41 */
export const NAME_IN_USE_TEXT = 'The name is already in use'

export interface Limits {
  /** Packets with len above this are 'too-large'. Default 65535 (the u16 maximum). */
  maxLen: number
  /** File packets announcing more raw bytes than this are 'too-large'. Switchboard default: 100 MiB. */
  maxFileBytes: number
}
export const DEFAULT_LIMITS: Readonly<Limits> = { maxLen: MAX_LEN, maxFileBytes: 100 * 1024 * 1024 }

export type ClientMessage =
  | { kind: 'login'; name: string; /** null when absent or not a sane offset */ utcOffsetSeconds: number | null }
  | { kind: 'exit' }
  | { kind: 'file'; size: number; filename: string; caption: string }
  | { kind: 'message'; text: string }
  | { kind: 'rename'; name: string }
  | { kind: 'unknown'; type: number; payload: Buffer }

export type ServerMessage =
  | { kind: 'welcome'; text: string }
  | { kind: 'file'; /** "<HH:MM> [alice]" */ header: string; size: number; filename: string; caption: string }
  | { kind: 'notice'; text: string }
  | { kind: 'renamed'; text: string }
  | { kind: 'unknown'; type: number; payload: Buffer }

export type Decoded<T> =
  | { ok: true; frame: T; rest: Buffer }
  | { ok: false; reason: 'need-more' }
  | { ok: false; reason: 'malformed'; code: 'SB_ERR_MALFORMED'; detail: string }
  | { ok: false; reason: 'too-large'; code: 'SB_ERR_TOO_LARGE'; detail: string }

type Failure = Extract<Decoded<never>, { reason: 'malformed' | 'too-large' }>
const malformed = (detail: string): Failure => ({ ok: false, reason: 'malformed', code: 'SB_ERR_MALFORMED', detail })
const tooLarge = (detail: string): Failure => ({ ok: false, reason: 'too-large', code: 'SB_ERR_TOO_LARGE', detail })

/** Split one packet off the front of `buf`; the len cap is judged from the first 2 bytes. */
function splitPacket(
  buf: Buffer,
  limits: Limits,
): { ok: true; type: number; payload: Buffer; rest: Buffer } | Failure | { ok: false; reason: 'need-more' } {
  if (buf.length < LEN_BYTES) return { ok: false, reason: 'need-more' }
  const len = buf.readUInt16BE(0)
  if (len === 0) return malformed('len 0: a packet has at least its type byte')
  if (len > limits.maxLen) return tooLarge(`len ${len} > ${limits.maxLen}`)
  const end = LEN_BYTES + len
  if (buf.length < end) return { ok: false, reason: 'need-more' }
  return { ok: true, type: buf[LEN_BYTES] as number, payload: buf.subarray(LEN_BYTES + 1, end), rest: buf.subarray(end) }
}

/** Text up to the first run of spaces, and everything after that one separator. */
function firstWord(s: string): [string, string] {
  const m = /^\s*(\S*)\s?([\s\S]*)$/.exec(s) as RegExpExecArray
  return [m[1] as string, m[2] as string]
}

/** Decode one client packet. For 'file', the caller then owes `size` raw bytes: see takeRaw. */
export function decodeClient(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<ClientMessage> {
  const p = splitPacket(buf, limits)
  if (!p.ok) return p
  const { type, payload, rest } = p
  switch (type) {
    case PacketType.LOGIN: {
      if (!isUtf8(payload)) return malformed('login is not valid UTF-8')
      // ORIGINALS.md §004: "alice 10800"; the README sends the bare name. Extra words are ignored.
      const [name, after] = firstWord(payload.toString('utf8'))
      if (name === '') return malformed('login without a name')
      const offset = /^\s*([+-]?\d{1,6})(?:\s|$)/.exec(after)?.[1]
      const n = offset === undefined ? NaN : Number(offset)
      // "-0" is offset 0, not -0 (found by npm run fuzz: -0 did not survive encode → decode)
      const utcOffsetSeconds = Number.isInteger(n) && Math.abs(n) < 86_400 ? n + 0 : null
      return { ok: true, frame: { kind: 'login', name, utcOffsetSeconds }, rest }
    }
    case PacketType.EXIT:
      // Any type-1 packet ends the session, whatever its payload (">>exit<<" from every known client).
      return { ok: true, frame: { kind: 'exit' }, rest }
    case PacketType.FILE: {
      if (payload.length < FILE_SIZE_BYTES) return malformed('file packet shorter than its 4-byte size')
      const size = payload.readUInt32BE(0)
      if (size > limits.maxFileBytes) return tooLarge(`file of ${size} bytes > ${limits.maxFileBytes}`)
      const [filename, caption] = firstWord(payload.subarray(FILE_SIZE_BYTES).toString('utf8'))
      if (filename === '') return malformed('file packet without a file name')
      return { ok: true, frame: { kind: 'file', size, filename, caption }, rest }
    }
    case PacketType.MESSAGE:
      return { ok: true, frame: { kind: 'message', text: payload.toString('utf8') }, rest }
    case PacketType.RENAME: {
      if (!isUtf8(payload)) return malformed('rename is not valid UTF-8')
      // ">>chname<< robert extra" renames to "robert" (first word only, capture 004 t=4.81).
      // The command word is optional so that a bare "robert" also works.
      let text = payload.toString('utf8').trimStart()
      if (text.startsWith(RENAME_COMMAND)) text = text.slice(RENAME_COMMAND.length)
      const [name] = firstWord(text)
      if (name === '') return malformed('rename without a name')
      return { ok: true, frame: { kind: 'rename', name }, rest }
    }
    default:
      // Framing is intact, so the adapter may skip it rather than drop the connection.
      return { ok: true, frame: { kind: 'unknown', type, payload }, rest }
  }
}

/** Decode one server packet (what an original client reads). Lenient UTF-8 throughout. */
export function decodeServer(buf: Buffer, limits: Limits = DEFAULT_LIMITS): Decoded<ServerMessage> {
  const p = splitPacket(buf, limits)
  if (!p.ok) return p
  const { type, payload, rest } = p
  switch (type) {
    case PacketType.LOGIN:
      return { ok: true, frame: { kind: 'welcome', text: payload.toString('utf8') }, rest }
    case PacketType.FILE: {
      // 0xFF never occurs in UTF-8, so the first one is the separator.
      const sep = payload.indexOf(FILE_SEPARATOR)
      if (sep === -1) return malformed('server file packet without the 0xFF separator')
      if (payload.length < sep + 1 + FILE_SIZE_BYTES) return malformed('server file packet shorter than its size')
      const size = payload.readUInt32BE(sep + 1)
      if (size > limits.maxFileBytes) return tooLarge(`file of ${size} bytes > ${limits.maxFileBytes}`)
      const [filename, caption] = firstWord(payload.subarray(sep + 1 + FILE_SIZE_BYTES).toString('utf8'))
      const header = payload.subarray(0, sep).toString('utf8')
      return { ok: true, frame: { kind: 'file', header, size, filename, caption }, rest }
    }
    case PacketType.MESSAGE:
      return { ok: true, frame: { kind: 'notice', text: payload.toString('utf8') }, rest }
    case PacketType.RENAME:
      return { ok: true, frame: { kind: 'renamed', text: payload.toString('utf8') }, rest }
    default:
      return { ok: true, frame: { kind: 'unknown', type, payload }, rest }
  }
}

/**
 * Consume up to `remaining` raw (unframed) file bytes from the front of `buf`. Call it until
 * `remaining` is 0; `rest` is what follows (the next packet). Never copies.
 */
export function takeRaw(buf: Buffer, remaining: number): { chunk: Buffer; rest: Buffer; remaining: number } {
  const n = Math.max(0, Math.min(buf.length, remaining))
  return { chunk: buf.subarray(0, n), rest: buf.subarray(n), remaining: remaining - n }
}

/** u16 BE (1 + payload length), type byte, payload. Throws RangeError when it cannot fit. */
export function encodePacket(type: number, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  if (body.length > MAX_PAYLOAD_BYTES) throw new RangeError(`004 payload is ${body.length} bytes, max ${MAX_PAYLOAD_BYTES}`)
  if (!Number.isInteger(type) || type < 0 || type > 0xff) throw new RangeError('004 type is not a byte')
  const out = Buffer.allocUnsafe(LEN_BYTES + 1 + body.length)
  out.writeUInt16BE(1 + body.length, 0)
  out[LEN_BYTES] = type
  body.copy(out, LEN_BYTES + 1)
  return out
}

function u32(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`004 file size ${n} is not a u32`)
  const b = Buffer.allocUnsafe(FILE_SIZE_BYTES)
  b.writeUInt32BE(n, 0)
  return b
}

const fileText = (filename: string, caption: string) => (caption === '' ? filename : `${filename} ${caption}`)

/** Client packets, byte for byte as the original client writes them. */
export function encodeClient(m: ClientMessage): Buffer {
  switch (m.kind) {
    case 'login':
      return encodePacket(PacketType.LOGIN, m.utcOffsetSeconds === null ? m.name : `${m.name} ${m.utcOffsetSeconds}`)
    case 'exit':
      return encodePacket(PacketType.EXIT, EXIT_COMMAND)
    case 'file':
      return encodePacket(PacketType.FILE, Buffer.concat([u32(m.size), Buffer.from(fileText(m.filename, m.caption))]))
    case 'message':
      return encodePacket(PacketType.MESSAGE, m.text)
    case 'rename':
      return encodePacket(PacketType.RENAME, `${RENAME_COMMAND} ${m.name}`)
    case 'unknown':
      return encodePacket(m.type, m.payload)
  }
}

/** Server packets. Write each in one write, and never two back to back (see docs/protocol/p004.md). */
export function encodeServer(m: ServerMessage): Buffer {
  switch (m.kind) {
    case 'welcome':
      return encodePacket(PacketType.LOGIN, m.text)
    case 'file':
      return encodePacket(
        PacketType.FILE,
        Buffer.concat([
          Buffer.from(m.header),
          Buffer.of(FILE_SEPARATOR),
          u32(m.size),
          Buffer.from(fileText(m.filename, m.caption)),
        ]),
      )
    case 'notice':
      return encodePacket(PacketType.MESSAGE, m.text)
    case 'renamed':
      return encodePacket(PacketType.RENAME, m.text)
    case 'unknown':
      return encodePacket(m.type, m.payload)
  }
}

/**
 * "HH:MM" of `epochMs` at UTC + `utcOffsetSeconds` (null = UTC): the recipient's local time, which
 * the original prints in every notice. Pure: the caller passes the clock. Non-finite input gives "00:00".
 */
export function hhmm(epochMs: number, utcOffsetSeconds: number | null): string {
  const minutes = Math.floor((epochMs / 1000 + (utcOffsetSeconds ?? 0)) / 60)
  const ofDay = Number.isFinite(minutes) ? ((minutes % 1440) + 1440) % 1440 : 0
  const pad = (n: number) => String(n).padStart(2, '0')
  return `${pad(Math.floor(ofDay / 60))}:${pad(ofDay % 60)}`
}

/** Every text the original server sends. `time` is hhmm(...) for the recipient. // ORIGINALS.md §004 */
export const notice = {
  /** type 3 to the others on login: "<03:12> bob connected" */
  connected: (time: string, name: string) => `<${time}> ${name} connected`,
  /** type 3 to the others on chat: "<03:12> [alice] hello everyone" */
  chat: (time: string, name: string, text: string) => `<${time}> [${name}] ${text}`,
  /** type 3 to the requester only, no time prefix */
  nameInUse: () => NAME_IN_USE_TEXT,
  /** type 3 to the others on rename: "<03:12> User [bob] changed username to [robert]" */
  renamed: (time: string, from: string, to: string) => `<${time}> User [${from}] changed username to [${to}]`,
  /** type 3 to the others on exit or drop: "<03:12> User robert disconnected" */
  disconnected: (time: string, name: string) => `<${time}> User ${name} disconnected`,
  /** type 3 to the others after the file's raw bytes: "<03:12> User alice uploaded file hello.txt" */
  uploaded: (time: string, name: string, filename: string) => `<${time}> User ${name} uploaded file ${filename}`,
  /** type 4 to the requester: "Username changed to robert" */
  usernameChanged: (name: string) => `Username changed to ${name}`,
  /** header of an outgoing type-2 packet: "<03:12> [alice]" (the original client needs the prefix) */
  fileHeader: (time: string, name: string) => `<${time}> [${name}]`,
} as const
