/**
 * The Store is the only place that persists. The broker batches its writes into `commit(ops)`, one
 * durable transaction (one fsync) per batch: group commit lives in the broker, atomicity and durability
 * in the store. The store owns what must be right under concurrency in a cluster: id allocation, name
 * uniqueness, per-user sequence numbers, queue limits, the dedupe of retried sends, and which device
 * acknowledged a message first.
 *
 * Each user has a retained, ordered log (one durable write per message) and devices, each with a cursor in it
 * (an AckSet, acks.ts). Acknowledging advances a cursor — one write per device per batch — and a message
 * leaves the log only in bulk, by retention (or expiry, or the user's deletion). What the queue limits count
 * is what no device has acknowledged yet.
 *
 * What a commit does to the queues (seqs, limits, held copies, dedupe) is decided by one pure planner,
 * plan.ts, for every backend; a backend reads the counters, runs the plan and writes it. A store raises its own
 * errors (errors.ts: StoreError with a code), which the core maps to its BrokerError.
 *
 * Implementations: memory/ (tests, and a store that needs no file), sqlite/ (embedded default) and postgres/
 * (shared, cluster mode). All pass test/contract/store.contract.ts.
 */
import type { MessageRecord } from '../schema/message.js'
import type { AckSet } from './acks.js'

export interface UserRecord {
  id: number
  name: string
  /** A name claimed through a legacy gateway: no token, no password; anyone may claim it while it is offline. */
  tokenless: boolean
  /** The password's hash (core/passwords.ts: scrypt, self-describing), or null: no password set. */
  passwordHash: string | null
  createdAt: number
}

/**
 * One device of a user: a credential (its token) and a cursor in the user's log. Every user has at least one: the
 * first is made with the user (registration, or a tokenless name's only device, whose token is null).
 */
export interface DeviceRecord {
  /** Unique across users. */
  id: number
  user: number
  /** What the client called itself when the device was made ("cli", "web", "python", …). */
  label: string
  /** sha256 of the token, hex; null for a tokenless user's device. Unique. */
  tokenHash: string | null
  createdAt: number
  /** When a session of this device last ended (or was last seen); undefined if never. */
  lastSeen: number | undefined
  /** What this device has acknowledged: every seq up to `floor`, and the ranges above. */
  acks: AckSet
}

/** One copy of a message for one user's log, before the store gave it a seq (fields: src/schema/message.ts). */
export type NewCopy = Omit<MessageRecord, 'seq'>

export interface StoredMessage extends NewCopy {
  seq: number
}

export interface QueueLimits {
  maxCount: number
  maxBytes: number
}

export type StoreOp =
  /**
   * Store every copy atomically; with `dedupe`, a second op with the same key stores nothing. A copy with
   * Flag.SENT (8) is a sent copy in the sender's own log: it needs no acknowledgement, is never refused by the
   * queue limits and never held for its notBefore.
   */
  | { type: 'send'; dedupe?: { sender: number; msgId: number } | undefined; copies: NewCopy[]; limits: QueueLimits }
  /** `device` of `user` has the message at `seq`: its cursor advances (one write per device per batch). */
  | { type: 'ack'; user: number; device: number; seq: number }
  /** The message at `seq` of `user`'s log was read (on some device). */
  | { type: 'read'; user: number; seq: number }
  /**
   * A session of `device` ended at `at`: the user's and the device's last seen. In the batch, so that many sessions
   * ending at once (a slow-consumer cut, a shutdown) cost no commit of their own.
   */
  | { type: 'seen'; user: number; device: number; at: number }

/** Why a copy was not stored: its queue is at the length or the bytes limit, or the recipient does not exist. */
export type QueueRefusal = 'queue-length' | 'queue-bytes' | 'no-such-user'

export type StoreResult =
  /**
   * seqs[i] answers copies[i]: the seq it was given; 0 when it was refused (nothing stored), and then
   * refused[i] says why (`refused` is there only when some copy was refused); -1 when it is held until its
   * notBefore (it gets a seq when released).
   */
  | { type: 'send'; duplicate: false; seqs: number[]; refused?: (QueueRefusal | null)[] }
  | { type: 'send'; duplicate: true }
  /**
   * `first`: the message, when this was the first acknowledgement of it by any of the user's devices (its sender
   * is told 200 once); null when another device (or this one) had acknowledged it, or there is no such message.
   * `fresh`: this device had not acknowledged it before.
   */
  | { type: 'ack'; first: StoredMessage | null; fresh: boolean }
  /** `first`: the message, when it had not been marked read before (its sender is told 210 once); else null. */
  | { type: 'read'; first: StoredMessage | null }
  | { type: 'seen' }

export interface QueueStats {
  /** Messages no device has acknowledged (what the queue limits count). */
  count: number
  bytes: number
}

/** Which messages of a log a history page holds. */
export interface HistoryQuery {
  /** Direct messages with this user, both ways (received, and sent copies). */
  peer?: number
  /** Messages of this topic, both ways. */
  topic?: string
  /** Only messages with seq < before (0: from the newest). */
  before: number
  limit: number
}

/** How long the log keeps what has been acknowledged. */
export interface RetentionPolicy {
  /** Acknowledged messages accepted before this (ms since the epoch) go. */
  before: number
  /** And at most this many of the newest acknowledged messages stay per user. */
  keep: number
}

export interface Store {
  readonly kind: string
  open(): Promise<void>
  close(): Promise<void>
  /** Cheap liveness check for /healthz. */
  ping(): Promise<void>

  // Users. Each of these is its own durable transaction.
  /**
   * Create a user and its first device (cursor at 0) in one transaction. `device.tokenHash` null makes a tokenless
   * user (a legacy gateway's name). Throws StoreError NAME_TAKEN when the (NFC) name, or a name with the same
   * confusable skeleton (core/names.ts), is in use: the store keeps each user's skeleton under a unique index.
   */
  createUser(
    name: string,
    device: { tokenHash: string | null; label: string },
    now: number,
    passwordHash?: string | null,
  ): Promise<{ user: UserRecord; device: DeviceRecord }>
  userById(id: number): Promise<UserRecord | undefined>
  userByName(name: string): Promise<UserRecord | undefined>
  /** The user whose name looks like `name` (the same confusable skeleton), if any. */
  userLike(name: string): Promise<UserRecord | undefined>
  /** Tokenless users (legacy gateways) neither seen nor created since `before`, oldest first. */
  staleTokenless(before: number, limit: number): Promise<UserRecord[]>
  /** Throws StoreError NAME_TAKEN, as createUser. */
  renameUser(id: number, name: string): Promise<void>
  setPassword(id: number, passwordHash: string | null): Promise<void>
  /** Deletes the user, its log, its devices and its subscriptions; returns the messages no device had acknowledged. */
  deleteUser(id: number): Promise<StoredMessage[]>
  countUsers(): Promise<number>
  /** When the user's last session ended (ms since the epoch); undefined if it never had one or does not exist. */
  lastSeen(id: number): Promise<number | undefined>
  /** Record when a session ended: the user's last seen, and its device's when `device` is given. */
  setLastSeen(id: number, at: number, device?: number): Promise<void>

  // Devices.
  /**
   * A new device of an existing user (a login with a password, a linked device). Its cursor starts at the live
   * end of the log (the past is read through history, and does not re-trigger receipts). Undefined: no such user.
   */
  createDevice(user: number, tokenHash: string, label: string, now: number): Promise<DeviceRecord | undefined>
  deviceByToken(tokenHash: string): Promise<DeviceRecord | undefined>
  deviceById(id: number): Promise<DeviceRecord | undefined>
  /** A user's devices, by id. */
  devices(user: number): Promise<DeviceRecord[]>
  /** Revoke a device of `user`: its token no longer works. False if it was not one of the user's devices. */
  deleteDevice(user: number, device: number): Promise<boolean>

  // The log: one per user; each device has a cursor in it.
  /** Apply a batch in one durable transaction; results[i] answers ops[i]. */
  commit(ops: StoreOp[]): Promise<StoreResult[]>
  /**
   * Messages of a user's log with seq > afterSeq that have not expired by `now`, oldest first, acknowledged or not
   * (the caller skips what its device has acknowledged: DeviceRecord.acks).
   */
  readLog(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]>
  /** A page of a user's history, newest first: text and file messages (received and sent copies), never receipts. */
  history(user: number, q: HistoryQuery): Promise<StoredMessage[]>
  /** What no device of the user has acknowledged yet. */
  queueStats(user: number): Promise<QueueStats>
  /**
   * Messages whose expiresAt <= now that no device had acknowledged: removed, counted as handled (they no longer
   * count against the limits), and returned so their senders can be told.
   */
  expire(now: number, limit: number): Promise<StoredMessage[]>
  /**
   * Retention, in bulk: remove acknowledged messages (acknowledged by some device) older than `policy.before`,
   * or beyond the newest `policy.keep` of their user's log. Never removes one that no device has acknowledged.
   * Returns how many went (at most about `limit`).
   */
  retain(policy: RetentionPolicy, limit: number): Promise<number>
  /**
   * Move messages held for later (notBefore <= now) into their logs, giving them their seq now, so a log's
   * order is the order of delivery. Returns the released messages.
   */
  releaseDue(now: number, limit: number): Promise<StoredMessage[]>
  /** Forget dedupe keys recorded before `before`. */
  pruneDedupe(before: number): Promise<number>

  // Topics (persistent subscriptions).
  subscribe(user: number, topic: string): Promise<boolean>
  unsubscribe(user: number, topic: string): Promise<boolean>
  subscribers(topic: string): Promise<number[]>
  subscriptions(user: number): Promise<string[]>
  topics(): Promise<{ topic: string; subscribers: number }[]>

  // Block list.
  block(user: number, target: number): Promise<boolean>
  unblock(user: number, target: number): Promise<boolean>
  /** Is `sender` blocked by `recipient`? */
  isBlocked(recipient: number, sender: number): Promise<boolean>
  blocked(user: number): Promise<number[]>
}
