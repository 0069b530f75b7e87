/**
 * One session's state (seed 000's Session): its sink, its lastSeen and rate tokens, its device and its delivery
 * state; and the table of this node's sessions (a user may have several: one per device).
 */
import { emptyAcks, type AckSet } from '../store/acks.js'
import type { Message, Outbound, SessionSink, UserInfo } from './types.js'

export type DeliveryMode = 'push' | 'poll'

/** What a poll session's ack timer needs of a message it was not handed yet (Session.awaiting). */
export interface Awaiting {
  from: number
  msgId: number
  topic?: string | undefined
}

let nextSid = 1

/** Where every session's sendChain starts (one promise for all, not one per idle session). */
const SETTLED: Promise<void> = Promise.resolve()

/** Live events held for a session whose adapter has not called Broker.ready() yet. */
export const HELD_MAX = 100_000

/**
 * One live attachment of a device of a user (seed 000's Session): its sink, its lastSeen, and its delivery
 * state. Push and poll read the user's log from the device's cursor: `acks` mirrors what the device has
 * acknowledged (the store's DeviceRecord.acks, kept up to date by this node's acks), `cursor` is the highest seq
 * this session has been handed, `inflight` what it was handed and has not acknowledged yet.
 */
export class Session {
  readonly sid = nextSid++
  /** The device this session is (DeviceRecord.id). */
  device = 0
  /** What the device has acknowledged. */
  acks: AckSet = emptyAcks()
  /**
   * Attached beside the device's own session instead of replacing it (a one-shot command sharing a chat's
   * device): it sends and asks, and is handed nothing from the log.
   */
  sendOnly = false
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
  // The collections below are made on first use: an idle session (most of them, at 10k connections) never uses
  // them, and an empty Map or Set costs ~180 bytes.
  private _inflight: Map<number, Message> | undefined
  private _notYet: Set<number> | undefined
  private _awaiting: Map<number, Awaiting> | undefined
  private _recent: Map<number, Message> | undefined
  private _takeWaiters: Set<() => void> | undefined

  /** Handed to this session and not acknowledged yet, by seq. */
  get inflight(): Map<number, Message> {
    return (this._inflight ??= new Map())
  }

  /** How many are in flight (without making the map). */
  get inflightCount(): number {
    return this._inflight?.size ?? 0
  }

  /** How many a poll session awaits (without making the map). */
  get awaitingCount(): number {
    return this._awaiting?.size ?? 0
  }

  /** Forget what was handed out and awaited (the session ended), without making the collections to empty them. */
  forgetDelivery(): void {
    this._inflight = undefined
    this._notYet = undefined
    this._awaiting = undefined
  }

  /** In-flight seqs whose sender already got a 300. */
  get notYet(): Set<number> {
    return (this._notYet ??= new Set())
  }

  /**
   * Poll sessions: messages with a receipt asked for, committed while this session was online and not taken yet
   * (by seq; the header only). Their ack timer gives the sender 300 as for a pushed message.
   */
  get awaiting(): Map<number, Awaiting> {
    return (this._awaiting ??= new Map())
  }

  /** Headers of the last acknowledged messages, so a read receipt can still be asked for after the ack. */
  get recent(): Map<number, Message> {
    return (this._recent ??= new Map())
  }

  /** The broker's own long polls (take with waitMs), any number at once. */
  get takeWaiters(): Set<() => void> {
    return (this._takeWaiters ??= new Set())
  }

  /** Committed messages beyond the cursor known in memory, in seq order (push sessions). */
  buffer: Message[] = []
  /** True when buffer holds every queued message beyond the cursor, so new commits can be appended. */
  exhausted = false
  loading = false
  /** A commit arrived while a read from the store was under way: read again before trusting `exhausted`. */
  missed = false
  /** The sink said it is over its high-water mark; resumed by Broker.drained(). */
  paused = false
  /** A long poll waiting for messages. */
  waiter: (() => void) | undefined

  tokens: number
  tokensAt: number
  /** Serialises the resolve-and-submit half of send() (see Delivery.send). */
  sendChain: Promise<void> = SETTLED
  /** Sends in sendChain not yet submitted: while there are none, a send whose lookups are cached submits at once. */
  preparing = 0

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

/**
 * This node's sessions by user: each user's sessions (one per device, a legacy name's one), and what the
 * user's sessions share — which messages' senders were told 300 already (one 300 per message, not per device).
 */
export class SessionTable {
  /** Per user: its sessions here, and (made on first use) which seqs' senders were told 300 or acknowledged. */
  private readonly byUser = new Map<number, { sessions: Session[]; notYet?: Set<number>; acked?: Set<number> }>()
  private count = 0
  /** The sessions that receive presence changes (Session.watchPresence), so a login does not walk every session. */
  readonly watchers = new Set<Session>()

  /** How many sessions (not users). */
  get size(): number {
    return this.count
  }

  /** This user's sessions here, oldest first (empty if none). */
  of(user: number): readonly Session[] {
    return this.byUser.get(user)?.sessions ?? NONE
  }

  /** The user's oldest session here. */
  first(user: number): Session | undefined {
    return this.byUser.get(user)?.sessions[0]
  }

  hasUser(user: number): boolean {
    return this.byUser.has(user)
  }

  /** The session of this device here, if any (at most one: a new login of a device replaces it). */
  ofDevice(user: number, device: number): Session | undefined {
    return this.byUser.get(user)?.sessions.find((s) => s.device === device && !s.sendOnly)
  }

  /** Start or stop sending `s` presence changes. */
  watch(s: Session, on: boolean): void {
    s.watchPresence = on
    if (on && !s.closed) this.watchers.add(s)
    else this.watchers.delete(s)
  }

  add(s: Session): void {
    let e = this.byUser.get(s.user.id)
    if (e === undefined) this.byUser.set(s.user.id, (e = { sessions: [] }))
    e.sessions.push(s)
    this.count++
  }

  /** Returns false when it was not in the table. */
  remove(s: Session): boolean {
    const e = this.byUser.get(s.user.id)
    const i = e === undefined ? -1 : e.sessions.indexOf(s)
    if (i < 0) return false
    e!.sessions.splice(i, 1)
    this.count--
    this.watchers.delete(s)
    if (e!.sessions.length === 0) this.byUser.delete(s.user.id)
    return true
  }

  /**
   * May the sender of `seq` (in `user`'s log) be told 300 now? Not when it was told already, nor when a device
   * acknowledged it (its 200 went out: a 300 after it would be a lie). Marks it told. Shared by the user's
   * sessions here, forgotten when the last one ends.
   */
  firstNotYet(user: number, seq: number): boolean {
    const e = this.byUser.get(user)
    if (e === undefined) return true
    if (e.notYet?.has(seq) || e.acked?.has(seq)) return false
    ;(e.notYet ??= new Set()).add(seq)
    return true
  }

  /** A device acknowledged `seq` first: no 300 for it from any other device here (the last ACKED_KEPT of them). */
  acknowledged(user: number, seq: number): void {
    const e = this.byUser.get(user)
    if (e === undefined) return
    e.notYet?.delete(seq)
    const acked = (e.acked ??= new Set())
    acked.add(seq)
    if (acked.size > ACKED_KEPT) acked.delete(acked.values().next().value!)
  }

  *values(): IterableIterator<Session> {
    for (const e of this.byUser.values()) yield* e.sessions
  }

  /** How many users have a session here. */
  get users(): number {
    return this.byUser.size
  }
}

const NONE: readonly Session[] = []
/** Acknowledged seqs remembered per user against a late 300 from another device's timer or end. */
const ACKED_KEPT = 4096
