/**
 * The Store is the only place that persists. The broker batches its writes into `commit(ops)`, one
 * durable transaction (one fsync) per batch: group commit lives in the broker, atomicity and durability
 * in the store. The store owns what must be right under concurrency in a cluster: id allocation, name
 * uniqueness, per-recipient sequence numbers, queue limits and the dedupe of retried sends.
 *
 * What a commit does to the queues (seqs, limits, held copies, dedupe) is decided by one pure planner,
 * plan.ts, for every backend; a backend reads the counters, runs the plan and writes it. A store raises its own
 * errors (errors.ts: StoreError with a code), which the core maps to its BrokerError.
 *
 * Implementations: memory/ (tests, and a store that needs no file), sqlite/ (embedded default) and postgres/
 * (shared, cluster mode). All pass test/contract/store.contract.ts.
 */
import type { MessageRecord } from '../schema/message.js'

export interface UserRecord {
  id: number
  name: string
  /** sha256 of the token, hex; null for a tokenless name claimed through a legacy gateway. */
  tokenHash: string | null
  createdAt: number
}

/** One copy of a message for one recipient queue, before the store gave it a seq (fields: src/schema/message.ts). */
export type NewCopy = Omit<MessageRecord, 'seq'>

export interface StoredMessage extends NewCopy {
  seq: number
}

export interface QueueLimits {
  maxCount: number
  maxBytes: number
}

export type StoreOp =
  /** Store every copy atomically; with `dedupe`, a second op with the same key stores nothing. */
  | { type: 'send'; dedupe?: { sender: number; msgId: number } | undefined; copies: NewCopy[]; limits: QueueLimits }
  /** Remove a message from a queue (acknowledged). */
  | { type: 'ack'; user: number; seq: number }

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
  /** The removed message, or null if it was not (or no longer) queued. */
  | { type: 'ack'; removed: StoredMessage | null }

export interface QueueStats {
  count: number
  bytes: number
}

export interface Store {
  readonly kind: string
  open(): Promise<void>
  close(): Promise<void>
  /** Cheap liveness check for /healthz. */
  ping(): Promise<void>

  // Users. Each of these is its own durable transaction.
  /**
   * Throws StoreError NAME_TAKEN when the (NFC) name, or a name with the same confusable skeleton
   * (core/names.ts), is in use: the store keeps each user's skeleton under a unique index.
   */
  createUser(name: string, tokenHash: string | null, now: number): Promise<UserRecord>
  userById(id: number): Promise<UserRecord | undefined>
  userByName(name: string): Promise<UserRecord | undefined>
  /** The user whose name looks like `name` (the same confusable skeleton), if any. */
  userLike(name: string): Promise<UserRecord | undefined>
  /** Tokenless users (legacy gateways) neither seen nor created since `before`, oldest first. */
  staleTokenless(before: number, limit: number): Promise<UserRecord[]>
  /** Throws StoreError NAME_TAKEN, as createUser. */
  renameUser(id: number, name: string): Promise<void>
  setTokenHash(id: number, tokenHash: string | null): Promise<void>
  /** Deletes the user, its queue and its subscriptions; returns the messages that were still queued for it. */
  deleteUser(id: number): Promise<StoredMessage[]>
  countUsers(): Promise<number>
  /** When the user's last session ended (ms since the epoch); undefined if it never had one or does not exist. */
  lastSeen(id: number): Promise<number | undefined>
  setLastSeen(id: number, at: number): Promise<void>

  // Queues.
  /** Apply a batch in one durable transaction; results[i] answers ops[i]. */
  commit(ops: StoreOp[]): Promise<StoreResult[]>
  /** Queued messages of a user with seq > afterSeq that have not expired by `now`, oldest first. */
  readQueue(user: number, afterSeq: number, limit: number, now: number): Promise<StoredMessage[]>
  queueStats(user: number): Promise<QueueStats>
  /** Remove messages whose expiresAt <= now; returns them so their senders can be told. */
  expire(now: number, limit: number): Promise<StoredMessage[]>
  /**
   * Move messages held for later (notBefore <= now) into their queues, giving them their seq now, so a
   * queue's order is the order of delivery. Returns the released messages.
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
