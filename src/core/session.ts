/** One session's state (seed 000's Session): its sink, its lastSeen and rate tokens, and its delivery state. */
import type { Message, Outbound, SessionSink, UserInfo } from './types.js'

export type DeliveryMode = 'push' | 'poll'

let nextSid = 1

/** Live events held for a session whose adapter has not called Broker.ready() yet. */
export const HELD_MAX = 100_000

/**
 * One live attachment of a user (seed 000's Session): its sink, its lastSeen, and its delivery state.
 * Push and poll read the same queue from the same cursor: `cursor` is the highest seq this session has
 * been handed, `inflight` what it was handed and has not acknowledged yet.
 */
export class Session {
  readonly sid = nextSid++
  readonly since: number
  lastSeen: number
  closed = false
  /**
   * Two-phase attach: a session is registered (it counts as online, it can be kicked) before its adapter has
   * answered the login. Until the adapter calls Broker.ready() nothing is pushed into its sink: live events are
   * held here (at most HELD_MAX) and the queue waits.
   */
  ready = false
  held: Outbound[] = []
  /** A gateway's internal session: not in who, no presence events. */
  hidden = false
  /** The user has no token (a legacy gateway's name): shown as such in who. */
  tokenless = false
  /** Receives presence changes (who came, who left). */
  watchPresence = false

  cursor = 0
  readonly inflight = new Map<number, Message>()
  /** In-flight seqs whose sender already got a 300. */
  readonly notYet = new Set<number>()
  /**
   * Poll sessions: messages with a receipt asked for, committed while this session was online and not taken yet
   * (by seq; the header only). Their ack timer gives the sender 300 as for a pushed message.
   */
  readonly awaiting = new Map<number, { from: number; msgId: number; topic?: string | undefined }>()
  /** Committed messages beyond the cursor known in memory, in seq order (push sessions). */
  buffer: Message[] = []
  /** True when buffer holds every queued message beyond the cursor, so new commits can be appended. */
  exhausted = false
  loading = false
  /** A commit arrived while a read from the store was under way: read again before trusting `exhausted`. */
  missed = false
  /** The sink said it is over its high-water mark; resumed by Broker.drained(). */
  paused = false
  /** Headers of the last acknowledged messages, so a read receipt can still be asked for after the ack. */
  readonly recent = new Map<number, Message>()
  /** A long poll waiting for messages. */
  waiter: (() => void) | undefined
  /** The broker's own long polls (take with waitMs), any number at once. */
  readonly takeWaiters = new Set<() => void>()

  tokens: number
  tokensAt: number
  /** Serialises the resolve-and-submit half of send() (see Broker.send). */
  sendChain: Promise<void> = Promise.resolve()

  constructor(
    public user: UserInfo,
    readonly protocol: string,
    readonly sink: SessionSink,
    readonly mode: DeliveryMode,
    now: number,
    burst: number,
  ) {
    this.since = now
    this.lastSeen = now
    this.tokens = burst
    this.tokensAt = now
  }
}
