/**
 * Delivery: a direct or topic message from send() to the recipient's hands — validate and resolve, the group
 * commit, then offer it to the recipient's session here (or wake its node); a push session's queue is pumped
 * within its window and its socket's backpressure, a poll session takes; ack() removes a message and tells its
 * sender (200), the ack timers tell it 300; the reaper's queue work (expired, held, dedupe keys) is here too.
 * Room messages go to the session registry's broadcast; text for SERVER to the handler the facade was given.
 */
import { BrokerError, isBrokerError } from './errors.js'
import { AckTimers } from './ack-timers.js'
import { refusedCopy, refusedTopic } from './store-errors.js'
import { describe, guard, PAGE, refuseIfClosing, type Core } from './context.js'
import type { Directory } from './directory.js'
import type { Receipts } from './receipts.js'
import type { Session } from './session.js'
import type { SessionRegistry } from './sessions.js'
import { decodeReceiptBody } from './receipt-body.js'
import { ALL_ID, Flag, ReceiptStatus, SERVER_ID, type Address, type Message, type Outbound, type UserInfo } from './types.js'
import type { NewCopy, StoredMessage, StoreResult } from '../store/store.js'

/** Acknowledged messages per session that can still be marked read. */
const RECENT_ACKED = 512
const EMPTY = Buffer.alloc(0)

export interface SendRequest {
  to: Address
  body: Buffer
  kind?: 'text' | 'file'
  /** The sender's own id for the message, echoed in receipts. */
  msgId?: number
  /** Make (sender, msgId) a dedupe key: a retry is stored and delivered once. */
  idempotent?: boolean
  receipt?: boolean
  readReceipt?: boolean
  ttlMs?: number | undefined
  notBefore?: number | undefined
  fileId?: string
}

export type SendStatus =
  | 'delivered' // pushed live (room, server), nothing stored
  | 'queued' // stored, and the recipient is online
  | 'stored' // stored, and the recipient is offline
  | 'scheduled' // held until its notBefore
  | 'duplicate' // a retry of a message already accepted

export interface SendResult {
  msgId: number
  status: SendStatus
  /** The seq in the recipient's queue (direct messages). */
  seq: number
  recipients: number
}

/** Answers a text a session sent to SERVER (the text commands live outside the core, in src/services/). */
export type ServerRequestHandler = (s: Session, text: string) => Promise<string>

export class Delivery {
  private readonly ackTimers: AckTimers
  private lastPrune = 0

  constructor(
    private readonly core: Core,
    private readonly sessions: SessionRegistry,
    private readonly directory: Directory,
    private readonly receipts: Receipts,
    ackTimeoutMs: number,
    private readonly serverRequest: () => ServerRequestHandler,
  ) {
    this.ackTimers = new AckTimers(ackTimeoutMs, core.now, (s, seq, now) => {
      const msg = s.closed || s.notYet.has(seq) ? undefined : (s.inflight.get(seq) ?? s.awaiting.get(seq))
      if (msg === undefined) return
      s.notYet.add(seq)
      this.receipts.tell(msg.from, ReceiptStatus.NOT_YET, msg, s.user, seq, now)
    })
  }

  close(): void {
    this.ackTimers.close()
  }

  // ---------------------------------------------------------------- sending

  async send(s: Session, req: SendRequest): Promise<SendResult> {
    // First: a SEND that arrives while the server stops is told so, even though its session is ending too.
    refuseIfClosing(this.core)
    guard(this.core, s)
    const { limits, counters } = this.core
    const kind = req.kind ?? 'text'
    if (kind === 'text' && req.body.length > limits.maxTextBytes)
      throw new BrokerError(
        'SB_ERR_TOO_LARGE',
        `the text is longer than maxTextBytes (${limits.maxTextBytes} bytes)`,
        'maxTextBytes',
      )
    const msgId = req.msgId ?? 0
    const now = this.core.now()
    let flags = 0
    if (req.receipt) flags |= Flag.RECEIPT
    if (req.readReceipt) flags |= Flag.READ_RECEIPT
    if (req.idempotent && msgId !== 0) flags |= Flag.IDEMPOTENT
    counters.messagesIn[kind] = (counters.messagesIn[kind] ?? 0) + 1

    const to = req.to
    if (to.kind === 'server') return this.toServer(s, req.body, msgId)
    if (to.kind === 'all') {
      const msg: Message = {
        seq: 0,
        msgId,
        from: s.user.id,
        fromName: s.user.name,
        to: ALL_ID,
        kind,
        ts: now,
        body: req.body,
        flags: 0,
      }
      if (req.fileId !== undefined) msg.fileId = req.fileId
      const n = this.sessions.broadcast({ type: 'message', msg }, s.user.id)
      return { msgId, status: 'delivered', seq: 0, recipients: n }
    }

    // Resolving and submitting is serialised per session, so one sender's messages enter the queues in the
    // order they were sent; waiting for the commit is not, so a pipelining sender fills a batch.
    const prepared = s.sendChain.then(() => this.prepareSend(s, req, to, kind, msgId, flags, now))
    s.sendChain = prepared.then(
      () => undefined,
      () => undefined,
    )
    const { recipients, topic, copies, commit } = await prepared.catch((err: unknown) => {
      // Nothing was submitted (prepareSend submits last): a failure while the server stops is the stop.
      if (this.core.closing && (!isBrokerError(err) || err.code === 'SB_ERR_INTERNAL')) refuseIfClosing(this.core)
      throw err
    })
    if (commit === undefined) return { msgId, status: 'stored', seq: 0, recipients: 0 }
    const result = await commit
    if (result.type !== 'send') throw new BrokerError('SB_ERR_INTERNAL', 'store answered the wrong operation')
    if (result.duplicate) return { msgId, status: 'duplicate', seq: 0, recipients: recipients.length }

    const about = { msgId, topic }
    let status: SendStatus = 'stored'
    let delivered = 0
    for (let i = 0; i < copies.length; i++) {
      const seq = result.seqs[i]!
      const r = recipients[i]!
      if (seq === 0) {
        if (topic === undefined) throw refusedCopy(r.name, result.refused?.[i], limits)
        if (flags & Flag.RECEIPT) this.receipts.tell(s.user.id, ReceiptStatus.DROPPED, about, r, 0, now)
        continue
      }
      delivered++
      if (seq === -1) {
        status = 'scheduled'
        continue
      }
      const msg: Message = { ...copies[i]!, seq }
      // Committed: the answer is ACCEPTED whatever follows, even if the server is stopping (the bus may be gone).
      const online = await this.committed(msg).catch((err: unknown) => {
        if (!this.core.closing) throw err
        return true
      })
      if (online) {
        if (status !== 'scheduled') status = 'queued'
      } else if (flags & Flag.RECEIPT) this.receipts.tell(s.user.id, ReceiptStatus.STORED, about, r, seq, now)
    }
    if (topic !== undefined && delivered === 0 && recipients.length > 0) throw refusedTopic(topic, result.refused)
    // A scheduled copy has no seq until it is released (the store answers -1): report 0, as for the room.
    return { msgId, status, seq: topic === undefined ? Math.max(0, result.seqs[0]!) : 0, recipients: delivered }
  }

  private async prepareSend(
    s: Session,
    req: SendRequest,
    to: Address,
    kind: 'text' | 'file',
    msgId: number,
    flags: number,
    now: number,
  ): Promise<{ recipients: UserInfo[]; topic: string | undefined; copies: NewCopy[]; commit: Promise<StoreResult> | undefined }> {
    const { directory } = this
    let recipients: UserInfo[]
    let topic: string | undefined
    if (to.kind === 'topic') {
      topic = directory.normalizeTopic(to.topic)
      const ids = await directory.subscribers(topic)
      if (ids.length === 0) throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no one subscribes to the topic "${topic}"`)
      recipients = []
      for (const id of ids) {
        if (id === s.user.id) continue
        const u = await directory.resolveUser({ kind: 'user', id })
        if (u !== undefined) recipients.push(u)
      }
    } else {
      const u = await directory.resolveUser(to)
      if (u === undefined || (await directory.isBlocked(u.id, s.user.id)))
        throw new BrokerError('SB_ERR_UNKNOWN_RECIPIENT', `no such user: ${describe(to)}`)
      recipients = [u]
    }

    const base = {
      kind,
      from: s.user.id,
      fromName: s.user.name,
      msgId,
      ts: now,
      body: req.body,
      flags,
      topic,
      expiresAt: req.ttlMs !== undefined && req.ttlMs > 0 ? now + req.ttlMs : undefined,
      notBefore: req.notBefore !== undefined && req.notBefore > now ? req.notBefore : undefined,
      fileId: req.fileId,
    }
    const copies: NewCopy[] = recipients.map((r) => ({ ...base, to: r.id }))
    if (copies.length === 0) return { recipients, topic, copies, commit: undefined }
    // close() drains what was submitted before it began; nothing may be submitted after (SB_ERR_SHUTTING_DOWN).
    refuseIfClosing(this.core)
    const commit = this.core.committer.submit({
      type: 'send',
      dedupe: flags & Flag.IDEMPOTENT ? { sender: s.user.id, msgId } : undefined,
      copies,
      limits: { maxCount: this.core.limits.maxQueueLength, maxBytes: this.core.limits.maxQueueBytes },
    })
    return { recipients, topic, copies, commit }
  }

  /** A text for SERVER: the handler's answer comes back as a notice from SERVER. */
  private async toServer(s: Session, body: Buffer, msgId: number): Promise<SendResult> {
    const reply = await this.serverRequest()(s, body.toString('utf8'))
    const msg: Message = {
      seq: 0,
      msgId,
      from: SERVER_ID,
      fromName: 'SERVER',
      to: s.user.id,
      kind: 'notice',
      ts: this.core.now(),
      body: Buffer.from(reply),
      flags: 0,
    }
    this.sessions.emit(s, { type: 'message', msg })
    return { msgId, status: 'delivered', seq: 0, recipients: 1 }
  }

  // ---------------------------------------------------------------- committed → offer → pump

  /** A message is durable in `msg.to`'s queue: hand it to the session, here or on another node. Is it online? */
  async committed(msg: Message): Promise<boolean> {
    const s = this.sessions.get(msg.to)
    if (s !== undefined) {
      this.offer(s, msg)
      return true
    }
    if (await this.core.bus.isOnline(msg.to)) {
      this.core.bus.publish({ type: 'wake', user: msg.to })
      return true
    }
    return false
  }

  /** A newly committed message for a session of this node. */
  private offer(s: Session, msg: Message): void {
    if (s.closed) return
    if (s.mode === 'poll') {
      // Nobody may take it: the sender hears 300 after the ack timeout, as for a pushed message (seed 001's rule).
      if (msg.kind !== 'receipt' && msg.flags & Flag.RECEIPT && msg.seq > s.cursor) {
        s.awaiting.set(msg.seq, { from: msg.from, msgId: msg.msgId, topic: msg.topic })
        this.ackTimers.arm(s, msg.seq)
      }
      this.wake(s)
      return
    }
    if (s.loading) {
      s.missed = true
      return
    }
    if (!s.exhausted) return // it will be read from the store in order
    const last = s.buffer.length > 0 ? s.buffer[s.buffer.length - 1]!.seq : s.cursor
    // Keep at most a few pages in memory: a session that does not acknowledge reads the rest from the store later.
    if (msg.seq === last + 1 && s.buffer.length < 4 * PAGE) s.buffer.push(msg)
    else s.exhausted = false
    this.pump(s)
  }

  /** Another node committed messages for a session of this node. */
  woken(userId: number): void {
    const s = this.sessions.get(userId)
    if (s === undefined) return
    if (s.mode === 'poll') this.wake(s)
    else {
      s.exhausted = false
      if (s.loading) s.missed = true
      this.pump(s)
    }
  }

  /** Something arrived for a poll session (or it ended): wake its long polls. */
  private wake(s: Session): void {
    s.waiter?.()
    for (const w of [...s.takeWaiters]) w()
  }

  /** Push queued messages to a ready push session while its window and its socket allow. */
  pump(s: Session): void {
    while (s.ready && !s.closed && !s.paused && s.inflight.size < this.core.limits.maxInflight) {
      const msg = s.buffer.shift()
      if (msg === undefined) {
        if (!s.exhausted && !s.loading) void this.load(s)
        return
      }
      if (msg.seq <= s.cursor) continue
      if (msg.expiresAt !== undefined && msg.expiresAt <= this.core.now()) continue // the reaper tells the sender
      s.cursor = msg.seq
      s.inflight.set(msg.seq, msg)
      if (msg.flags & Flag.RECEIPT) this.ackTimers.arm(s, msg.seq)
      this.core.counters.messagesOut++
      if (!s.sink.push(this.toOutbound(msg))) s.paused = true
    }
  }

  private async load(s: Session): Promise<void> {
    s.loading = true
    s.missed = false
    const after = s.buffer.length > 0 ? s.buffer[s.buffer.length - 1]!.seq : s.cursor
    let rows: StoredMessage[]
    try {
      rows = await this.core.store.readQueue(s.user.id, after, PAGE, this.core.now())
    } catch (err) {
      s.loading = false
      this.core.log.error({ err, user: s.user.id }, 'reading a queue failed: trying again in a second')
      setTimeout(() => this.pump(s), 1000).unref()
      return
    }
    s.loading = false
    if (s.closed) return
    for (const r of rows) if (r.seq > after) s.buffer.push(r)
    s.exhausted = rows.length < PAGE && !s.missed
    this.pump(s)
  }

  /** The adapter's socket drained below its high-water mark. */
  drained(s: Session): void {
    if (!s.paused) return
    s.paused = false
    this.pump(s)
  }

  private toOutbound(msg: Message): Outbound {
    if (msg.kind === 'receipt') {
      const receipt = decodeReceiptBody(msg.body)
      if (receipt !== undefined) return { type: 'receipt', receipt, seq: msg.seq }
    }
    return { type: 'message', msg }
  }

  /**
   * The session ended: the recipient left with messages it had not acknowledged, and their senders learn it now
   * (300), not never; the messages stay queued and a 200 follows when the recipient comes back and acknowledges.
   */
  sessionEnded(s: Session): void {
    const now = this.core.now()
    for (const [seq, msg] of s.inflight)
      if (msg.kind !== 'receipt' && msg.flags & Flag.RECEIPT && !s.notYet.has(seq))
        this.receipts.tell(msg.from, ReceiptStatus.NOT_YET, msg, s.user, seq, now)
    for (const [seq, m] of s.awaiting)
      if (!s.notYet.has(seq) && !s.inflight.has(seq)) this.receipts.tell(m.from, ReceiptStatus.NOT_YET, m, s.user, seq, now)
    s.inflight.clear()
    s.notYet.clear()
    s.awaiting.clear()
    s.buffer = []
    this.wake(s)
  }

  // ---------------------------------------------------------------- taking and acknowledging

  /**
   * Poll: the oldest queued messages beyond this session's cursor. 'take' acknowledges them at once
   * (seed 000's take-and-remove); 'peek' leaves them queued until ack() (at-least-once).
   * With waitMs, waits that long for something to arrive (long poll).
   */
  async take(s: Session, max: number, mode: 'take' | 'peek', waitMs: number): Promise<Message[]> {
    guard(this.core, s)
    if (s.mode !== 'poll')
      throw new BrokerError('SB_ERR_CONFLICT', 'this session receives by push; log in with poll mode to take messages')
    const { store } = this.core
    const limit = Math.max(1, Math.min(max, PAGE))
    let rows = await store.readQueue(s.user.id, s.cursor, limit, this.core.now())
    if (rows.length === 0 && waitMs > 0 && !s.closed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, waitMs)
        function done(): void {
          clearTimeout(t)
          s.takeWaiters.delete(done)
          resolve()
        }
        s.takeWaiters.add(done)
      })
      if (s.closed) return []
      rows = await store.readQueue(s.user.id, s.cursor, limit, this.core.now())
    }
    const out: Message[] = []
    for (const r of rows) {
      if (r.seq <= s.cursor) continue
      s.cursor = r.seq
      out.push(r)
    }
    this.core.counters.messagesOut += out.length
    if (mode === 'take') await Promise.all(out.map((m) => this.acknowledge(s, m.seq)))
    else
      for (const m of out) {
        s.inflight.set(m.seq, m)
        // Already timing since it was queued for this session (or already told 300): one 300 per message.
        if (m.flags & Flag.RECEIPT && !s.awaiting.has(m.seq) && !s.notYet.has(m.seq)) this.ackTimers.arm(s, m.seq)
        s.awaiting.delete(m.seq)
      }
    return out
  }

  /** The recipient has the message: remove it from the queue and tell the sender (200). */
  async ack(s: Session, seq: number): Promise<boolean> {
    guard(this.core, s)
    return this.acknowledge(s, seq)
  }

  private async acknowledge(s: Session, seq: number): Promise<boolean> {
    const handed = s.inflight.get(seq)
    s.inflight.delete(seq)
    s.notYet.delete(seq)
    s.awaiting.delete(seq)
    const r = await this.core.committer.submit({ type: 'ack', user: s.user.id, seq })
    if (r.type !== 'ack' || r.removed === null) return false
    const m = r.removed
    if (m.flags & Flag.READ_RECEIPT) {
      // The handed-out copy's flags: markRead clears READ_RECEIPT there once its 210 is sent.
      s.recent.set(seq, { ...m, flags: handed?.flags ?? m.flags, body: EMPTY })
      if (s.recent.size > RECENT_ACKED) s.recent.delete(s.recent.keys().next().value!)
    }
    if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT && m.from !== SERVER_ID)
      this.receipts.tell(m.from, ReceiptStatus.DELIVERED, m, s.user, seq, this.core.now())
    if (s.mode === 'push') this.pump(s)
    return true
  }

  /** Opt-in read receipt: the recipient marks a message it received as read. */
  markRead(s: Session, msg: { from: number; msgId: number; seq: number; flags: number; topic?: string | undefined }): void {
    guard(this.core, s)
    if (!(msg.flags & Flag.READ_RECEIPT)) return
    // One 210 per message: a receipt to an offline sender is stored in its queue, so repeating READ would
    // otherwise let a recipient fill the sender's queue. The bit is cleared on this session's own copy.
    const handed = s.inflight.get(msg.seq)
    if (handed !== undefined) s.inflight.set(msg.seq, { ...handed, flags: handed.flags & ~Flag.READ_RECEIPT })
    const acked = s.recent.get(msg.seq)
    if (acked !== undefined) s.recent.set(msg.seq, { ...acked, flags: acked.flags & ~Flag.READ_RECEIPT })
    this.receipts.tell(msg.from, ReceiptStatus.READ, msg, s.user, msg.seq, this.core.now())
  }

  /** A message this session was handed and has not acknowledged (for markRead by seq). */
  inflightMessage(s: Session, seq: number): Message | undefined {
    return s.inflight.get(seq) ?? s.recent.get(seq)
  }

  // ---------------------------------------------------------------- the reaper's queue work

  /** Expired messages (senders get 410), held messages now due (released into their queues), old dedupe keys. */
  async reapQueues(now: number, dedupeRetentionMs: number): Promise<void> {
    const { store } = this.core
    for (const m of await store.expire(now, 1000))
      if (m.kind !== 'receipt' && m.flags & Flag.RECEIPT) {
        const u = await store.userById(m.to)
        this.receipts.tell(m.from, ReceiptStatus.EXPIRED, m, { id: m.to, name: u?.name ?? '' }, m.seq, now)
      }
    for (const m of await store.releaseDue(now, 1000))
      if (!(await this.committed(m)) && m.kind !== 'receipt' && m.flags & Flag.RECEIPT) {
        const name = (await this.directory.resolveUser({ kind: 'user', id: m.to }))?.name ?? ''
        this.receipts.tell(m.from, ReceiptStatus.STORED, m, { id: m.to, name }, m.seq, now)
      }
    if (now - this.lastPrune > 3600_000) {
      this.lastPrune = now
      await store.pruneDedupe(now - dedupeRetentionMs)
    }
  }
}
