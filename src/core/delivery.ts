/**
 * Delivery: a direct or topic message from send() to the recipient's hands — validate and resolve, the group
 * commit (a copy in each recipient's log, and a sent copy in the sender's own, for its other devices and its
 * history), then offer it to every session of the recipient here (or wake its other nodes); a push session's
 * log is pumped from its device's cursor within its window and its socket's backpressure, a poll session takes;
 * ack() advances the device's cursor and, when it was the first of the user's devices, tells the sender (200);
 * the ack timers tell it 300 (once per message, whatever the number of devices); read marks tell it 210 once and
 * the user's other devices that it was read. Room messages go to the session registry's broadcast; text for
 * SERVER to the handler the facade was given. History pages and the reaper's log work are log-upkeep.ts.
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
import { sendTransient } from './transient.js'
import { ALL_ID, Flag, ReceiptStatus, SERVER_ID, type Address, type Message, type Outbound, type UserInfo } from './types.js'
import type { NewCopy, RetentionPolicy, StoredMessage, StoreResult } from '../store/store.js'
import { addAck, hasAck } from '../store/acks.js'

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
  /**
   * Live only (MQTT's QoS 0 beside QoS 1): handed to the recipient's online sessions (every device, on every node),
   * never stored, no seq, no receipt; refused with SB_ERR_OFFLINE when no session of the recipient is online. For
   * what need not survive a crash: typing indicators, presence pings, telemetry. A direct message only.
   */
  transient?: boolean
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

/** A send resolved and submitted: its copies (Messages with seq 0 until committed) and the commit to wait for. */
interface PreparedSend {
  recipients: UserInfo[]
  topic: string | undefined
  copies: Message[]
  commit: Promise<StoreResult> | undefined
  sentCopy: Message | undefined
}

export class Delivery {
  private readonly ackTimers: AckTimers

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
      // One 300 per message: the user's other devices here were handed it too.
      if (this.core.sessions.firstNotYet(s.user.id, seq))
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
    if (req.transient) return sendTransient(this.core, this.sessions, this.directory, s, req, kind, msgId, now)
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
    // order they were sent; waiting for the commit is not, so a pipelining sender fills a batch. A direct message
    // whose lookups are all cached, from a session with no send still resolving, is submitted at once.
    const cached = s.preparing === 0 && to.kind !== 'topic' ? this.directory.cachedRecipient(to, s.user.id) : undefined
    const { recipients, topic, copies, commit, sentCopy } =
      cached !== undefined
        ? this.submitSend(s, req, [cached], undefined, kind, msgId, flags, now)
        : await this.inOrder(s, () => this.prepareSend(s, req, to, kind, msgId, flags, now))
    if (commit === undefined) return { msgId, status: 'stored', seq: 0, recipients: 0 }
    const result = await commit
    if (result.type !== 'send') throw new BrokerError('SB_ERR_INTERNAL', 'store answered the wrong operation')
    if (result.duplicate) return { msgId, status: 'duplicate', seq: 0, recipients: recipients.length }

    const about = { msgId, topic }
    let status: SendStatus = 'stored'
    let delivered = 0
    for (let i = 0; i < recipients.length; i++) {
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
      // The copy becomes the message (the store made its own of it).
      const msg = copies[i]!
      msg.seq = seq
      // Committed: the answer is ACCEPTED whatever follows, even if the server is stopping (the bus may be gone).
      let online = true
      try {
        online = this.committed(msg)
      } catch (err) {
        if (!this.core.closing) throw err
      }
      if (online) {
        if (status !== 'scheduled') status = 'queued'
      } else if (flags & Flag.RECEIPT) this.receipts.tell(s.user.id, ReceiptStatus.STORED, about, r, seq, now)
    }
    if (topic !== undefined && delivered === 0 && recipients.length > 0) throw refusedTopic(topic, result.refused)
    // The sender's other devices (here, or woken on their nodes) get the sent copy; the sending device has it.
    if (sentCopy !== undefined && delivered > 0) {
      const seq = result.seqs[recipients.length]!
      if (seq > 0) {
        sentCopy.seq = seq
        try {
          this.committed(sentCopy)
        } catch {
          // The sender has it and was answered; its other devices read it from the log.
        }
      }
    }
    // A scheduled copy has no seq until it is released (the store answers -1): report 0, as for the room.
    return { msgId, status, seq: topic === undefined ? Math.max(0, result.seqs[0]!) : 0, recipients: delivered }
  }

  /** `prepare` (which submits last) once the session's earlier sends have been submitted. */
  private inOrder(s: Session, prepare: () => Promise<PreparedSend>): Promise<PreparedSend> {
    s.preparing++
    const prepared = s.sendChain.then(prepare)
    const settled = (): void => {
      s.preparing--
    }
    s.sendChain = prepared.then(settled, settled)
    return prepared.catch((err: unknown) => {
      // Nothing was submitted: a failure while the server stops is the stop.
      if (this.core.closing && (!isBrokerError(err) || err.code === 'SB_ERR_INTERNAL')) refuseIfClosing(this.core)
      throw err
    })
  }

  private async prepareSend(
    s: Session,
    req: SendRequest,
    to: Address,
    kind: 'text' | 'file',
    msgId: number,
    flags: number,
    now: number,
  ): Promise<PreparedSend> {
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
    return this.submitSend(s, req, recipients, topic, kind, msgId, flags, now)
  }

  /**
   * A copy for each recipient and the sender's own, submitted to the group commit. Each copy is a whole message (seq 0
   * until the commit gives it one), every field present, so that all have one shape.
   */
  private submitSend(
    s: Session,
    req: SendRequest,
    recipients: UserInfo[],
    topic: string | undefined,
    kind: 'text' | 'file',
    msgId: number,
    flags: number,
    now: number,
  ): PreparedSend {
    const expiresAt = req.ttlMs !== undefined && req.ttlMs > 0 ? now + req.ttlMs : undefined
    const notBefore = req.notBefore !== undefined && req.notBefore > now ? req.notBefore : undefined
    const copy = (
      to: number,
      copyFlags: number,
      held: number | undefined,
      peer: number | undefined,
      device: number | undefined,
    ): Message => ({
      seq: 0,
      msgId,
      from: s.user.id,
      fromName: s.user.name,
      to,
      topic,
      kind,
      flags: copyFlags,
      ts: now,
      expiresAt,
      notBefore: held,
      fileId: req.fileId,
      body: req.body,
      peer,
      device,
    })
    const copies: Message[] = []
    for (const r of recipients) copies.push(copy(r.id, flags, notBefore, topic === undefined ? s.user.id : undefined, undefined))
    if (copies.length === 0) return { recipients, topic, copies, commit: undefined, sentCopy: undefined }
    // The sender's own copy, last: its other devices see what it sent, and its history holds both sides. Never
    // held (it is what was sent, now), never refused by the limits (the store's rule for Flag.SENT).
    const peer = topic === undefined ? recipients[0]!.id : undefined
    const sentCopy = copy(s.user.id, flags | Flag.SENT, undefined, peer, s.device)
    copies.push(sentCopy)
    // close() drains what was submitted before it began; nothing may be submitted after (SB_ERR_SHUTTING_DOWN).
    refuseIfClosing(this.core)
    const commit = this.core.committer.submit({
      type: 'send',
      dedupe: flags & Flag.IDEMPOTENT ? { sender: s.user.id, msgId } : undefined,
      copies,
      limits: { maxCount: this.core.limits.maxQueueLength, maxBytes: this.core.limits.maxQueueBytes },
    })
    return { recipients, topic, copies, commit, sentCopy }
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

  /**
   * A message is durable in `msg.to`'s log: hand it to every session of that user here, and wake the user's
   * sessions on other nodes. Is some device of the user online?
   */
  committed(msg: Message): boolean {
    const here = this.sessions.all(msg.to)
    // A copy of the list only when there is more than one: an offer can end a session, which leaves the list.
    if (here.length === 1) this.offer(here[0]!, msg)
    else if (here.length > 1) for (const s of [...here]) this.offer(s, msg)
    const { bus } = this.core
    // Always told, in a cluster: the bus remembers whom this node committed for (a login elsewhere is woken).
    const elsewhere = bus.clustered && bus.wake(msg)
    return elsewhere || here.length > 0
  }

  /** A newly committed message for a session of this node. */
  private offer(s: Session, msg: Message): void {
    if (s.closed || s.sendOnly) return
    // A sent copy of this device's own: the device has it (the store advanced its cursor in the same commit).
    if (msg.device === s.device && msg.flags & Flag.SENT) addAck(s.acks, msg.seq)
    if (s.mode === 'poll') {
      // Nobody may take it: the sender hears 300 after the ack timeout, as for a pushed message (seed 001's rule).
      if (msg.kind !== 'receipt' && msg.flags & Flag.RECEIPT && !(msg.flags & Flag.SENT) && msg.seq > s.cursor) {
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

  /**
   * Another node committed messages for a user with sessions on this node: `msgs` if the wake carried them (offered
   * as if committed here), else the sessions read their log.
   */
  woken(userId: number, msgs?: readonly Message[]): void {
    for (const s of this.sessions.all(userId)) {
      if (s.sendOnly) continue
      if (msgs !== undefined) for (const m of msgs) this.offer(s, m)
      else if (s.mode === 'poll') this.wake(s)
      else {
        s.exhausted = false
        if (s.loading) s.missed = true
        this.pump(s)
      }
    }
  }

  /** Something arrived for a poll session (or it ended): wake its long polls. */
  private wake(s: Session): void {
    s.waiter?.()
    for (const w of [...s.takeWaiters]) w()
  }

  /**
   * Has the session's device this message already: acknowledged it (perhaps out of order), or sent it? A sent
   * copy is known by its device whatever the mirror says: a read from the store may see it before the sender's
   * send() has seen its commit.
   */
  private hasIt(s: Session, m: Message): boolean {
    if (m.flags & Flag.SENT && m.device === s.device) {
      addAck(s.acks, m.seq)
      return true
    }
    return hasAck(s.acks, m.seq)
  }

  /** Push queued messages to a ready push session while its window and its socket allow. */
  pump(s: Session): void {
    if (s.sendOnly) return
    while (s.ready && !s.closed && !s.paused && s.inflightCount < this.core.limits.maxInflight) {
      const msg = s.buffer.shift()
      if (msg === undefined) {
        if (!s.exhausted && !s.loading) void this.load(s)
        return
      }
      if (msg.seq <= s.cursor) continue
      if (msg.expiresAt !== undefined && msg.expiresAt <= this.core.now()) continue // the reaper tells the sender
      s.cursor = msg.seq
      if (this.hasIt(s, msg)) continue
      s.inflight.set(msg.seq, msg)
      if (msg.flags & Flag.RECEIPT && !(msg.flags & Flag.SENT)) this.ackTimers.arm(s, msg.seq)
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
      rows = await this.core.store.readLog(s.user.id, after, PAGE, this.core.now())
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
    // Another device of the user here still holds them: its own timers speak for them.
    const others = this.sessions.all(s.user.id).some((x) => x !== s && !x.closed && !x.sendOnly)
    const tell = (from: number, about: { msgId: number; topic?: string | undefined }, seq: number): void => {
      if (others || s.notYet.has(seq) || !this.core.sessions.firstNotYet(s.user.id, seq)) return
      this.receipts.tell(from, ReceiptStatus.NOT_YET, about, s.user, seq, now)
    }
    if (s.inflightCount > 0)
      for (const [seq, msg] of s.inflight)
        if (msg.kind !== 'receipt' && msg.flags & Flag.RECEIPT && !(msg.flags & Flag.SENT)) tell(msg.from, msg, seq)
    if (s.awaitingCount > 0) for (const [seq, m] of s.awaiting) if (!s.inflight.has(seq)) tell(m.from, m, seq)
    s.forgetDelivery()
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
    let rows = await store.readLog(s.user.id, s.cursor, limit, this.core.now())
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
      rows = await store.readLog(s.user.id, s.cursor, limit, this.core.now())
    }
    const out: Message[] = []
    for (const r of rows) {
      if (r.seq <= s.cursor) continue
      s.cursor = r.seq
      if (this.hasIt(s, r)) continue
      out.push(r)
    }
    this.core.counters.messagesOut += out.length
    if (mode === 'take') await Promise.all(out.map((m) => this.acknowledge(s, m.seq)))
    else
      for (const m of out) {
        s.inflight.set(m.seq, m)
        // Already timing since it was queued for this session (or already told 300): one 300 per message.
        if (m.flags & Flag.RECEIPT && !(m.flags & Flag.SENT) && !s.awaiting.has(m.seq) && !s.notYet.has(m.seq))
          this.ackTimers.arm(s, m.seq)
        s.awaiting.delete(m.seq)
      }
    return out
  }

  /**
   * The device has the message: its cursor advances (the message stays in the log for the user's other devices
   * and its history). The first of the user's devices to acknowledge it tells the sender (200). False when this
   * device had acknowledged it already, or there is no such message.
   */
  ack(s: Session, seq: number): Promise<boolean> {
    // Not async (acknowledge is): one promise fewer per ACK; a refused session still rejects rather than throws.
    try {
      guard(this.core, s)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.acknowledge(s, seq)
  }

  private async acknowledge(s: Session, seq: number): Promise<boolean> {
    const handed = s.inflight.get(seq)
    s.inflight.delete(seq)
    s.notYet.delete(seq)
    s.awaiting.delete(seq)
    const r = await this.core.committer.submit({ type: 'ack', user: s.user.id, device: s.device, seq })
    if (r.type !== 'ack') return false
    if (r.fresh) addAck(s.acks, seq)
    const m = r.first ?? handed
    if (m !== undefined && m.flags & Flag.READ_RECEIPT && !(m.flags & Flag.SENT)) {
      s.recent.set(seq, { ...m, body: EMPTY })
      if (s.recent.size > RECENT_ACKED) s.recent.delete(s.recent.keys().next().value!)
    }
    if (r.first !== null) {
      this.core.sessions.acknowledged(s.user.id, seq)
      const first = r.first
      if (first.kind !== 'receipt' && first.flags & Flag.RECEIPT && !(first.flags & Flag.SENT) && first.from !== SERVER_ID)
        this.receipts.tell(first.from, ReceiptStatus.DELIVERED, first, s.user, seq, this.core.now())
    }
    if (s.mode === 'push') this.pump(s)
    return r.fresh
  }

  /**
   * A message of the user's log was read (on this device): its sender, if it asked, is told 210 — once, whichever
   * device reads it first — and the user's other devices learn it was read.
   */
  async markRead(s: Session, seq: number): Promise<void> {
    guard(this.core, s)
    const r = await this.core.committer.submit({ type: 'read', user: s.user.id, seq })
    if (r.type !== 'read' || r.first === null) return
    const m = r.first
    const now = this.core.now()
    if (m.flags & Flag.READ_RECEIPT && !(m.flags & Flag.SENT) && m.kind !== 'receipt')
      this.receipts.tell(m.from, ReceiptStatus.READ, m, s.user, seq, now)
    const ev: Outbound = { type: 'read', seq, at: now }
    for (const x of this.sessions.all(s.user.id)) if (x !== s && !x.sendOnly) this.sessions.emit(x, ev)
    if (this.core.bus.clustered) this.core.bus.publish({ type: 'event', to: s.user.id, ev })
  }

  /** A message this session was handed and has not acknowledged (for markRead by seq). */
  inflightMessage(s: Session, seq: number): Message | undefined {
    return s.inflight.get(seq) ?? s.recent.get(seq)
  }
}
