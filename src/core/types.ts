/**
 * The model of DESIGN §1 as types. The core imports no protocol and no socket: adapters hand it calls and
 * receive `Outbound` events through a `SessionSink`.
 */
import type { MessageRecord } from '../schema/message.js'

/** Reserved ids of the user id space (seed 000: the server's id and the pseudo-id "all clients"). */
export const SERVER_ID = 0
export const ALL_ID = 0xffffffff
/** Largest id a user can have: ids are u32 on every wire, and ALL_ID is reserved. */
export const MAX_USER_ID = 0xfffffffe

export type Address =
  | { kind: 'user'; id: number }
  | { kind: 'name'; name: string }
  | { kind: 'all' }
  | { kind: 'server' }
  | { kind: 'topic'; topic: string }

export type { MessageKind } from '../schema/message.js'

/** Bits of Message.flags. */
export const Flag = {
  RECEIPT: 1, // the sender wants 200/300/stored receipts
  READ_RECEIPT: 2, // the sender wants a 'read' receipt when the recipient marks the message read
  IDEMPOTENT: 4, // (sender, msgId) is a dedupe key: a retry is stored and delivered once
  SENT: 8, // a sent copy: in the sender's own log, for its other devices and its history (set by the server)
  TRANSIENT: 16, // live only: handed to the recipient's sessions, never stored, no seq, nothing to acknowledge
} as const

/**
 * A message: its fields are declared once, with the kinds and their codes, in src/schema/message.ts (the stores'
 * columns, the native `msg`, the HTTP JSON and the SDK follow from there).
 */
export type Message = MessageRecord

/** Receipt codes (001's 200/300, extended). */
export const ReceiptStatus = {
  DELIVERED: 200, // the recipient acknowledged
  READ: 210, // the recipient marked it read (opt-in)
  STORED: 202, // the recipient is offline; the message waits in its queue
  NOT_YET: 300, // no acknowledgement within the ack timeout; still queued, a 200 may follow
  DELETED: 404, // the recipient was deleted before it took the message
  EXPIRED: 410, // the message's time to live ran out before it was taken
  DROPPED: 507, // the recipient's queue was full
} as const
export type ReceiptStatusCode = (typeof ReceiptStatus)[keyof typeof ReceiptStatus]

export interface Receipt {
  msgId: number
  status: ReceiptStatusCode
  /** Who the receipt is about (the recipient of the original message). */
  recipient: number
  recipientName: string
  /** The original message's seq in the recipient's queue (0 if it was never stored). */
  seq: number
  at: number
  topic?: string
}

export interface UserInfo {
  id: number
  name: string
}

export interface PresenceInfo extends UserInfo {
  protocol: string
  since: number
  lastSeen: number
  node?: string
  /** A tokenless identity (a legacy gateway's name): anyone may claim it while it is offline. */
  tokenless?: boolean
  /** The device this entry is (the bus keeps one entry per device). */
  device?: number
  /** In `who`: how many of the user's devices are online (the entries of one user summed). */
  devices?: number
}

export type ConversationEvent =
  | { event: 'request'; convId: string; peer: UserInfo; expiresAt: number }
  | { event: 'accepted' | 'declined' | 'expired'; convId: string; peer: UserInfo }
  | { event: 'closed'; convId: string; peer: UserInfo; reason: string }
  | { event: 'message'; convId: string; peer: UserInfo; body: Buffer }

/** What the broker pushes into a session. */
export type Outbound =
  | { type: 'message'; msg: Message }
  /** seq !== 0: the receipt was queued while the sender was away, and must be acknowledged like a message. */
  | { type: 'receipt'; receipt: Receipt; seq: number }
  | { type: 'notice'; code: string; text: string; data?: Record<string, unknown> }
  | { type: 'presence'; user: UserInfo; online: boolean; protocol?: string; at: number }
  | { type: 'rename'; user: UserInfo; oldName: string }
  | { type: 'conversation'; ev: ConversationEvent }
  /** The message at `seq` of this user's log was marked read (on this or another of its devices). */
  | { type: 'read'; seq: number; at: number }

export type CloseReason =
  | 'replaced' // the same user logged in again elsewhere
  | 'ended' // the client asked to end the session
  | 'idle' // the reaper: lastSeen older than the idle timeout
  | 'slow-consumer' // could not keep up with the room
  | 'deleted' // the account was deleted
  | 'shutdown' // the server is stopping
  | 'kicked' // an operator or another node ended it
  | 'revoked' // the device was revoked (its token no longer works)

/** Implemented by every adapter: the broker's way into one connection or poll credential. */
export interface SessionSink {
  /** Push one event. Returns false when the connection is over its high-water mark (the broker then pauses). */
  push(ev: Outbound): boolean
  /** Bytes accepted but not yet written; a room receiver above `maxSessionBuffer` is a slow consumer. */
  backlog(): number
  /** Close with a reason the client is told where its protocol allows. Must not call back into the broker. */
  close(reason: CloseReason, text: string): void
}

export interface Limits {
  maxNameBytes: number
  maxTopicBytes: number
  maxTextBytes: number
  maxFrameBytes: number
  maxFileBytes: number
  maxQueueLength: number
  maxQueueBytes: number
  maxConnections: number
  /** Requests per second per session (token bucket; bursts up to twice this). */
  ratePerSecond: number
  /** Outbound bytes a session may have waiting before it is cut off as a slow consumer. */
  maxSessionBuffer: number
  /** Messages pushed to one session and not yet acknowledged, at most. */
  maxInflight: number
}

export const DEFAULT_LIMITS: Limits = {
  maxNameBytes: 25,
  maxTopicBytes: 64,
  maxTextBytes: 64 * 1024,
  maxFrameBytes: 1024 * 1024,
  maxFileBytes: 100 * 1024 * 1024,
  maxQueueLength: 10_000,
  maxQueueBytes: 64 * 1024 * 1024,
  maxConnections: 100_000,
  ratePerSecond: 20_000,
  maxSessionBuffer: 8 * 1024 * 1024,
  maxInflight: 1000,
}

/** The slice of a logger the core uses (pino's shape). */
export interface Logger {
  debug(obj: object, msg?: string): void
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} }
