/**
 * The SDK's public types: options, events, results and the error class. No logic here beyond the msgId
 * generator; every other SDK module imports this one, and it imports none of them.
 */
import type { ErrorCode } from '../core/errors.js'
import type { Address } from '../core/types.js'
import type { ConvEventCode, SendStatusCode } from '../protocols/native/frames.js'
import type { MessageKind as SchemaMessageKind } from '../schema/message.js'
import type { Connector } from './connection.js'
import type { WebSocketConstructor } from './ws-transport.js'
import type { TcpOptions } from './tcp.js'

/** Codes the client itself raises, beside the server's registry (src/core/errors.ts). */
export type ClientErrorCode =
  | 'SB_ERR_DISCONNECTED' // the connection dropped before the server answered
  | 'SB_ERR_CLOSED' // the client was closed
  | 'SB_ERR_TIMEOUT' // no answer in time
  | 'SB_ERR_CONNECT' // the server could not be reached

export class SwitchboardError extends Error {
  override readonly name = 'SwitchboardError'
  constructor(
    /** A stable code: one of src/core/errors.ts, or a ClientErrorCode. */
    readonly code: ErrorCode | ClientErrorCode,
    message: string,
    /** The limit that was broken, when the server named one (e.g. 'maxTextBytes'). */
    readonly limit?: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export interface Credentials {
  id: number
  name: string
  token: string
}

/** Where tokens are remembered between runs (FileCredentialStore in Node; anything in a browser). */
export interface CredentialStore {
  get(server: string, name: string): Credentials | undefined | Promise<Credentials | undefined>
  set(server: string, creds: Credentials, previousName?: string): void | Promise<void>
  delete(server: string, name: string): void | Promise<void>
}

export interface ReconnectOptions {
  /** First delay; doubles per attempt, with jitter. Default 100 ms. */
  initialDelayMs?: number
  /** Largest delay. Default 5 s. */
  maxDelayMs?: number
  /** Give up after this many attempts in a row. Default: never. */
  maxAttempts?: number
}

export interface ConnectOptions {
  /** Native TCP/TLS server (Node). Default 127.0.0.1:7070. */
  host?: string
  port?: number
  tls?: TcpOptions['tls']
  /** Or a WebSocket endpoint, ws://host:httpPort/v1/ws (browsers, Node). */
  url?: string
  /** WebSocket class for `url` where there is no global one (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor
  /** Or any transport. */
  connector?: Connector
  /** The name to register or log in as. */
  name: string
  /** Log in with this id and token (else with `password`, else from `credentials`, else register). */
  id?: number
  token?: string
  /**
   * Log in with `name` and this password: the server makes a new device of the user and gives it a token, which
   * the client keeps (and saves in `credentials`) and reconnects with. Ignored when `token` is given.
   */
  password?: string
  /**
   * Attach beside this device's own session instead of replacing it, and be handed nothing from the log: for a
   * one-shot command that sends or asks while a chat of the same device runs. No 'message' events but live ones.
   */
  sendOnly?: boolean
  /** true: always register `name`; false: never register (log in only); default: register when no token is known. */
  register?: boolean | undefined
  /** 'push' (default): messages are pushed; 'poll': take() them. */
  mode?: 'push' | 'poll'
  /** Acknowledge each pushed message once it was handed to the listeners. Default true. */
  autoAck?: boolean
  /** Mark pushed messages read (for senders that asked for read receipts) before acknowledging them. Default false. */
  autoRead?: boolean
  /** PING interval; default: what the server asks for in WELCOME. */
  heartbeatMs?: number
  /** Reconnect automatically (default true), resuming the session with the token. */
  reconnect?: boolean | ReconnectOptions
  credentials?: CredentialStore
  /** A direct send with a receipt wanted settles without one after this long (the 200 may still come as an event). Default 15 s. */
  receiptTimeoutMs?: number
  /** Requests that get no answer within this fail with SB_ERR_TIMEOUT. Default 30 s. */
  requestTimeoutMs?: number
  connectTimeoutMs?: number
  /** Largest frame accepted from the server. Default 64 MiB. */
  maxFrameBytes?: number
}

/** The kinds of src/schema/message.ts (codes there). */
export type MessageKind = SchemaMessageKind

export interface FileDescriptor {
  fileId: string
  name: string
  size: number
  sha256: string
  text?: string
}

export interface IncomingMessage {
  /** Position in this user's queue (0 for room messages and live notices, which are not stored). */
  seq: number
  /** The sender's own id for it. */
  msgId: number
  from: number
  fromName: string
  /** This user's id, or ALL_ID for the room; for a sent copy (`sent`), whom it was sent to. */
  to: number
  /** Set for a topic copy. */
  topic?: string
  kind: MessageKind | 'unknown'
  /** The body as UTF-8 text (for a file message: its text, if any). */
  text: string
  body: Uint8Array
  /** Accepted at, ms since the epoch. */
  ts: number
  flags: number
  expiresAt?: number
  /** For a file message. */
  file?: FileDescriptor
  /** True when the sender asked for a read receipt (never for a sent copy). */
  wantsReadReceipt: boolean
  /**
   * A sent copy: this user sent it, from another of its devices (flag SENT). `from` is this user, `to` the
   * recipient (for a topic, `to` is this user and `topic` is set).
   */
  sent: boolean
  /** A transient message (sent with `transient: true`): live only, never stored, seq 0, nothing to acknowledge. */
  transient: boolean
}

/** One of this user's devices (REQUEST DEVICES). */
export interface DeviceInfo {
  id: number
  /** What made it ('native', 'http', …). */
  label: string
  createdAt: number
  /** When a session of it last ended; null if none has. */
  lastSeen: number | null
  /** It has a session now. */
  online: boolean
  /** It is this client's device. */
  current: boolean
}

/** What history() pages through: a conversation, a topic, or everything (the default). */
export interface HistoryQuery {
  /** A user by name (string) or id (number), or `{ topic }`; absent: everything in this user's log. */
  with?: string | number | { topic: string } | undefined
  /** Only messages with a seq below this (exclusive); 0 or absent: from the newest. */
  before?: number
  /** At most this many (1 … 256, default 50). */
  limit?: number
}

export interface HistoryPage {
  /** Newest first. Sent copies have `sent` true. */
  messages: IncomingMessage[]
  /** Older messages remain: ask again with `before` = the last message's seq. */
  more: boolean
}

/** A message of this user's log was read on another of its devices. */
export interface ReadEvent {
  seq: number
  at: number
}

export const ReceiptNames: Record<number, string> = {
  200: 'delivered',
  210: 'read',
  202: 'stored',
  300: 'not-yet',
  404: 'deleted',
  410: 'expired',
  507: 'dropped',
}

export interface ReceiptEvent {
  msgId: number
  /** 200 delivered, 210 read, 202 stored, 300 not yet, 404 recipient deleted, 410 expired, 507 dropped. */
  status: number
  statusName: string
  recipient: number
  recipientName: string
  seq: number
  at: number
  topic?: string
}

export type AcceptedStatus = keyof typeof SendStatusCode

export interface SendResult {
  msgId: number
  /** What the server said when it took the message; undefined when a receipt came first. */
  accepted?: AcceptedStatus
  seq: number
  recipients: number
  /** The first receipt, when one was wanted and came. */
  receipt?: ReceiptEvent
  /** The receipt's status (200/202/300/…), if any. */
  status?: number
  fileId?: string
}

export interface SendOptions {
  /** Ask for 200/300/202 receipts (default true). */
  receipt?: boolean
  readReceipt?: boolean
  ttlMs?: number
  /** ms since the epoch: hold the message until then. */
  notBefore?: number
  /** Send with the IDEMPOTENT flag so a resend is delivered once (default true). */
  idempotent?: boolean
  /** Use this msgId instead of the next generated one. */
  msgId?: number
  /**
   * Live only, like MQTT's QoS 0: handed to the recipient's online sessions, never stored, no receipt (the send
   * settles with `accepted: 'delivered'`); refused with SB_ERR_OFFLINE when the recipient has no session online.
   * For typing indicators, presence pings, telemetry. A direct message only; `receipt`, `readReceipt`,
   * `idempotent` and `notBefore` do not apply.
   */
  transient?: boolean
  /**
   * Called once the server has taken the message (its ACCEPTED: stored, fsynced, or pushed live), before the
   * receipt settles the send: the "sent" tick beside the receipt's "delivered" one.
   */
  onAccepted?: (result: SendResult) => void
}

/** Whom to send to: a user name (string), or an explicit address. */
export type Target = string | Address

export interface UserEntry {
  id: number
  name: string
  protocol: string
  since: number
  lastSeen: number
  /**
   * A name without a token, from a legacy gateway (p001…p004): not authenticated, anyone may claim it while it
   * is offline, and it is removed after the server's --legacy-identity-ttl without a login. (who() only.)
   */
  tokenless?: boolean
}

export interface NoticeEvent {
  code: string
  text: string
}
export interface PresenceEvent {
  id: number
  name: string
  online: boolean
  protocol: string
  at: number
}
export interface RenameEvent {
  id: number
  oldName: string
  newName: string
}
export interface ConversationEventInfo {
  event: keyof typeof ConvEventCode | 'unknown'
  convId: string
  peer: { id: number; name: string }
  expiresAt?: number
  reason?: string
  text?: string
}
export interface ClosedEvent {
  reason: string
  text: string
}
export interface ReconnectingEvent {
  attempt: number
  delayMs: number
  /** Why the last attempt failed (or the connection dropped). */
  error?: Error
  /**
   * Why the server ended the session, when it said so (its CLOSING frame) before the connection dropped:
   * e.g. reason 'shutdown', text 'the server is shutting down'. Kept on every attempt until reconnected.
   */
  reason?: string
  text?: string
}
export interface ReconnectedEvent {
  attempts: number
  /** Sends written again because the server had not accepted them. */
  resent: number
}
export interface ErrorEvent {
  error: SwitchboardError
  /** The operation the error answers (e.g. 'ACK', 'CONV'). */
  op: string
}

export interface ClientEvents {
  message: IncomingMessage
  receipt: ReceiptEvent
  notice: NoticeEvent
  presence: PresenceEvent
  rename: RenameEvent
  conversation: ConversationEventInfo
  /** A message of this user's log (by seq) was marked read on another of its devices. */
  read: ReadEvent
  /** The client is closed for good (by close(), or the server ended the session, or reconnect gave up). */
  closed: ClosedEvent
  reconnecting: ReconnectingEvent
  reconnected: ReconnectedEvent
  /** An error answering a request that has no reply of its own (ACK, READ, CONV …). */
  error: ErrorEvent
}

export interface UploadSource {
  name: string
  size: number
  /** Hex SHA-256 of the content; the server checks it. */
  sha256?: string
  chunks: AsyncIterable<Uint8Array>
}

export interface TransferProgress {
  bytes: number
  total: number
}

// ------------------------------------------------------------------ msgIds

/**
 * msgIds: unique per client instance and across restarts. An id is max(previous + 1, now_ms × 1024), and
 * the first one adds a random 0…1023: a new instance starts above every id an earlier instance of the same
 * user issued (unless that one sent more than a million messages a second, or the clock went back), and
 * ids stay below 2^53 until the year 2248. The server remembers (sender, msgId) for its dedupe retention
 * (7 days), so a fresh random prefix alone would collide too often over many restarts.
 */
export class MsgIdGenerator {
  private last: number
  constructor(private readonly now: () => number = Date.now) {
    this.last = now() * 1024 + Math.floor(Math.random() * 1024) - 1
  }
  next(): number {
    this.last = Math.max(this.last + 1, this.now() * 1024)
    return this.last
  }
}
