/**
 * The protocol handler: frames in, events out. It owns the open connection's frame stream, the correlation
 * numbers, the pending requests and sends, the acknowledgements and the messages held until someone listens.
 * It knows nothing of how a connection is opened or reopened (reconnect.ts) nor of the public API (client.ts).
 */
import { errorCodeFromNumber } from '../core/errors.js'
import { encode, FrameReader } from '../protocols/native/codec.js'
import {
  ConvEventCode,
  MsgFlag,
  Op,
  SendStatusCode,
  type Frame,
  type FrameOf,
  type WireMessage,
} from '../protocols/native/frames.js'
import { kindOf } from '../schema/message.js'
import type { Connection } from './connection.js'
import {
  ReceiptNames,
  SwitchboardError,
  type AcceptedStatus,
  type ClientEvents,
  type ConnectOptions,
  type ConversationEventInfo,
  type IncomingMessage,
  type ReceiptEvent,
  type SendResult,
} from './types.js'
import { parseFileBody, toBuffer, unref, type Emitter } from './util.js'

export interface PendingRequest {
  resolve(frame: Frame): void
  reject(err: SwitchboardError): void
  op: string
  timer: ReturnType<typeof setTimeout> | undefined
  /** Called for FILE_INFO / FILE_DATA with this corr (downloads). */
  stream?: (frame: Frame) => void
}

export interface PendingSend {
  msgId: number
  fields: Omit<FrameOf<'SEND'>, 'type' | 'corr'>
  wantReceipt: boolean
  direct: boolean
  idempotent: boolean
  /** The connection generation it was last written on (0: not yet). */
  gen: number
  corr: number
  accepted: boolean
  resolve(r: SendResult): void
  reject(err: SwitchboardError): void
  timer: ReturnType<typeof setTimeout> | undefined
  result?: SendResult
  onAccepted?: ((result: SendResult) => void) | undefined
}

/** Who this client is on the server (the name follows renames). */
export interface Identity {
  id: number
  name: string
  token: string
  server: string
}

export type LinkState = 'connecting' | 'open' | 'reconnecting' | 'closed'

const textDecoder = new TextDecoder()

/** How many acknowledged seqs are remembered to recognise a redelivery whose ACK was lost. */
const ACKED_MEMORY = 4096

export class Protocol {
  state: LinkState = 'connecting'
  /** Connection generation: frames and closes of an older connection are ignored. */
  gen = 0
  conn: Connection | undefined
  /** Why the server said it ends the session (its CLOSING frame), for the connection now closing. */
  closeReason: { reason: string; text: string } | undefined
  /** When the last bytes arrived (the heartbeat's measure of a live peer). */
  lastRx = 0
  /** Sends not settled yet, in the order they were made (Map keeps insertion order). */
  readonly sends = new Map<number, PendingSend>()
  readonly requests = new Map<number, PendingRequest>()

  private reader: FrameReader | undefined
  private nextCorr = 1
  private readonly sendByCorr = new Map<number, number>()
  /** corr → op of frames that have no reply, so a late ERROR can be named. */
  private readonly fireAndForget = new Map<number, string>()
  /** Work waiting for the session to be (re)opened. */
  private openWaiters: { resolve(): void; reject(err: SwitchboardError): void }[] = []
  private readonly ackedSeqs = new Set<number>()
  private readonly heldMessages: IncomingMessage[] = []
  private readonly heldReceipts: ReceiptEvent[] = []

  constructor(
    private readonly opts: ConnectOptions,
    private readonly events: Emitter<ClientEvents>,
    readonly self: Identity,
    /** The server renamed this user (RENAMED for our own id): the credential store follows. */
    private readonly onSelfRenamed: (previousName: string) => void,
  ) {}

  /** A new connection generation begins: a fresh frame reader, no close reason yet. */
  begin(): number {
    this.reader = new FrameReader(this.opts.maxFrameBytes ?? 64 * 1024 * 1024)
    this.closeReason = undefined
    return ++this.gen
  }

  // ------------------------------------------------------------ frames in

  onData(chunk: Uint8Array): void {
    this.lastRx = Date.now()
    for (const d of this.reader!.push(toBuffer(chunk))) {
      if (d.ok) {
        this.dispatch(d.frame)
        continue
      }
      // The server sent what we cannot read: drop this connection; the reconnect starts clean.
      if (d.reason === 'malformed' || d.reason === 'too-large') {
        this.conn?.destroy()
        return
      }
    }
  }

  private dispatch(f: Frame): void {
    switch (f.type) {
      case 'ACCEPTED':
        return this.onAccepted(f)
      case 'RECEIPT':
        return this.onReceipt(f)
      case 'DELIVER':
        return this.onDeliver(f.msg)
      case 'ERROR':
        return this.onError(f)
      case 'NOTICE':
        return this.events.emit('notice', { code: f.code, text: f.text })
      case 'PRESENCE':
        return this.events.emit('presence', { id: f.id, name: f.name, online: f.online !== 0, protocol: f.protocol, at: f.at })
      case 'RENAMED':
        if (f.id === this.self.id && f.newName !== this.self.name) {
          const previous = this.self.name
          this.self.name = f.newName
          this.onSelfRenamed(previous)
        }
        return this.events.emit('rename', { id: f.id, oldName: f.oldName, newName: f.newName })
      case 'CONV_EVENT': {
        const names = Object.keys(ConvEventCode) as (keyof typeof ConvEventCode)[]
        const ev: ConversationEventInfo = {
          event: names.find((n) => ConvEventCode[n] === f.event) ?? 'unknown',
          convId: f.convId,
          peer: { id: f.peerId, name: f.peerName },
        }
        if (f.expiresAt > 0) ev.expiresAt = f.expiresAt
        if (f.reason !== '') ev.reason = f.reason
        if (f.body.length > 0) ev.text = f.body.toString('utf8')
        return this.events.emit('conversation', ev)
      }
      case 'READ_ELSEWHERE':
        return this.events.emit('read', { seq: f.seq, at: f.at })
      case 'CLOSING':
        this.closeReason = { reason: f.reason, text: f.text }
        return
      case 'FILE_INFO':
      case 'FILE_DATA': {
        const r = this.requests.get(f.corr)
        r?.stream?.(f)
        return
      }
      default: {
        // WELCOME, RESULT, BATCH, HISTORY_PAGE, PONG: replies by corr.
        const r = this.requests.get(f.corr)
        if (r === undefined) return
        this.requests.delete(f.corr)
        if (r.timer) clearTimeout(r.timer)
        r.resolve(f)
      }
    }
  }

  private onError(f: FrameOf<'ERROR'>): void {
    const code = errorCodeFromNumber(f.code)
    const err = new SwitchboardError(code, f.message, f.limit === '' ? undefined : f.limit)
    const msgId = this.sendByCorr.get(f.corr)
    if (msgId !== undefined) {
      this.sendByCorr.delete(f.corr)
      const p = this.sends.get(msgId)
      if (p === undefined) return
      // The server is going down: keep the send for the resend after the reconnect.
      if (code === 'SB_ERR_SHUTTING_DOWN') return
      this.settleSend(p, undefined, err)
      return
    }
    const r = this.requests.get(f.corr)
    if (r !== undefined) {
      this.requests.delete(f.corr)
      if (r.timer) clearTimeout(r.timer)
      r.reject(err)
      return
    }
    const op = this.fireAndForget.get(f.corr)
    if (op !== undefined) this.fireAndForget.delete(f.corr)
    this.events.emit('error', { error: err, op: op ?? 'unknown' })
  }

  private onAccepted(f: FrameOf<'ACCEPTED'>): void {
    const req = this.requests.get(f.corr)
    if (req !== undefined) {
      // FILE_END is answered by ACCEPTED
      this.requests.delete(f.corr)
      if (req.timer) clearTimeout(req.timer)
      req.resolve(f)
      return
    }
    this.sendByCorr.delete(f.corr)
    const p = this.sends.get(f.msgId)
    if (p === undefined) return
    p.accepted = true
    const status = acceptedStatusName(f.status)
    const result: SendResult = { msgId: f.msgId, accepted: status, seq: f.seq, recipients: f.recipients }
    if (f.fileId !== '') result.fileId = f.fileId
    p.onAccepted?.(result)
    // A receipt is only waited for when one is sure to follow: a direct message that was stored.
    if (!p.wantReceipt || !p.direct || status === 'delivered' || status === 'scheduled' || status === 'duplicate') {
      this.settleSend(p, result)
      return
    }
    p.result = result
    p.timer = setTimeout(() => this.settleSend(p, p.result), this.opts.receiptTimeoutMs ?? 15_000)
    unref(p.timer)
  }

  private onReceipt(f: FrameOf<'RECEIPT'>): void {
    const ev: ReceiptEvent = {
      msgId: f.msgId,
      status: f.status,
      statusName: ReceiptNames[f.status] ?? String(f.status),
      recipient: f.recipient,
      recipientName: f.recipientName,
      seq: f.seq,
      at: f.at,
    }
    if (f.topic !== '') ev.topic = f.topic
    // A receipt that waited in our queue is acknowledged like a message (at most once to the app).
    const dup = f.ackSeq !== 0 && this.ackedSeqs.has(f.ackSeq)
    if (f.ackSeq !== 0) this.ackSeq(f.ackSeq)
    if (dup) return
    const p = this.sends.get(f.msgId)
    if (p !== undefined && p.wantReceipt && p.direct) {
      const base = p.result ?? { msgId: p.msgId, seq: f.seq, recipients: 1 }
      this.settleSend(p, { ...base, receipt: ev, status: ev.status })
    }
    this.emitReceipt(ev)
  }

  toIncoming(w: WireMessage): IncomingMessage {
    const kind = kindOf(w.kind) ?? 'unknown'
    const m: IncomingMessage = {
      seq: w.seq,
      msgId: w.msgId,
      from: w.from,
      fromName: w.fromName,
      to: w.to,
      kind,
      text: '',
      body: w.body,
      ts: w.ts,
      flags: w.flags,
      wantsReadReceipt: (w.flags & (MsgFlag.READ_RECEIPT | MsgFlag.SENT)) === MsgFlag.READ_RECEIPT,
      sent: (w.flags & MsgFlag.SENT) !== 0,
      transient: (w.flags & MsgFlag.TRANSIENT) !== 0,
    }
    if (w.topic !== '') m.topic = w.topic
    if (w.expiresAt !== 0) m.expiresAt = w.expiresAt
    if (kind === 'file') {
      const file = parseFileBody(w.body)
      if (file !== undefined) {
        m.file = file
        m.text = file.text ?? ''
      }
    } else m.text = textDecoder.decode(w.body)
    return m
  }

  /** A message whose body is a stored receipt (poll mode hands them over as messages). */
  receiptFromMessage(w: WireMessage): ReceiptEvent | undefined {
    try {
      const r = JSON.parse(w.body.toString('utf8')) as Record<string, unknown>
      if (typeof r.msgId !== 'number' || typeof r.status !== 'number') return undefined
      const ev: ReceiptEvent = {
        msgId: r.msgId,
        status: r.status,
        statusName: ReceiptNames[r.status] ?? String(r.status),
        recipient: typeof r.recipient === 'number' ? r.recipient : 0,
        recipientName: typeof r.recipientName === 'string' ? r.recipientName : '',
        seq: typeof r.seq === 'number' ? r.seq : 0,
        at: typeof r.at === 'number' ? r.at : w.ts,
      }
      if (typeof r.topic === 'string') ev.topic = r.topic
      return ev
    } catch {
      return undefined
    }
  }

  private onDeliver(w: WireMessage): void {
    if (w.seq !== 0 && this.ackedSeqs.has(w.seq)) {
      // We acknowledged it already; that ACK was lost with a connection. Say it again, quietly.
      this.writeFrame({ type: 'ACK', corr: this.corrNext(), seq: w.seq }, 'ACK')
      return
    }
    if (kindOf(w.kind) === 'receipt') {
      const r = this.receiptFromMessage(w)
      if (w.seq !== 0) this.ackSeq(w.seq)
      if (r !== undefined) this.emitReceipt(r)
      return
    }
    const m = this.toIncoming(w)
    // Queued messages arrive before connect() has resolved: hold them, unacknowledged, until someone listens.
    if (this.events.count('message') === 0) {
      this.heldMessages.push(m)
      return
    }
    this.handOver(m)
  }

  /** What arrived before anyone listened is handed over now, after the caller's on() returned. */
  releaseHeld(event: keyof ClientEvents): void {
    if (event === 'message' && this.heldMessages.length > 0)
      queueMicrotask(() => {
        for (const m of this.heldMessages.splice(0)) this.handOver(m)
      })
    if (event === 'receipt' && this.heldReceipts.length > 0)
      queueMicrotask(() => {
        for (const r of this.heldReceipts.splice(0)) this.events.emit('receipt', r)
      })
  }

  private handOver(m: IncomingMessage): void {
    this.events.emit('message', m)
    if ((this.opts.autoAck ?? true) && m.seq !== 0) {
      if (this.opts.autoRead === true && m.wantsReadReceipt)
        this.writeFrame({ type: 'READ', corr: this.corrNext(), seq: m.seq }, 'READ')
      this.ackSeq(m.seq)
    }
  }

  private emitReceipt(r: ReceiptEvent): void {
    if (this.events.count('receipt') === 0) {
      if (this.heldReceipts.length >= 10_000) this.heldReceipts.shift()
      this.heldReceipts.push(r)
      return
    }
    this.events.emit('receipt', r)
  }

  ackSeq(seq: number): void {
    this.ackedSeqs.add(seq)
    if (this.ackedSeqs.size > ACKED_MEMORY) {
      const oldest = this.ackedSeqs.values().next().value
      if (oldest !== undefined) this.ackedSeqs.delete(oldest)
    }
    this.writeFrame({ type: 'ACK', corr: this.corrNext(), seq }, 'ACK')
  }

  // ------------------------------------------------------------ frames out

  corrNext(): number {
    const c = this.nextCorr
    this.nextCorr = this.nextCorr >= 0xffffffff ? 1 : this.nextCorr + 1
    return c
  }

  /** A frame with no reply of its own; an ERROR for it becomes an 'error' event. */
  writeFrame(frame: Frame, op: string): void {
    // Not only when open: the server pushes queued messages before its WELCOME, and they are acknowledged.
    if (this.conn === undefined) return
    if (this.fireAndForget.size > 1024) this.fireAndForget.delete(this.fireAndForget.keys().next().value!)
    this.fireAndForget.set(frame.corr, op)
    this.conn.write(encode(frame))
  }

  /** A frame whose reply settles the promise. `handshake` requests may be written before the session is open. */
  request(frame: Frame, op: string, handshake = false, stream?: (f: Frame) => void): Promise<Frame> {
    return new Promise<Frame>((resolve, reject) => {
      const conn = this.conn
      if (conn === undefined || (!handshake && this.state !== 'open')) {
        reject(new SwitchboardError('SB_ERR_DISCONNECTED', 'not connected'))
        return
      }
      const corr = this.corrNext()
      frame.corr = corr
      const ms = this.opts.requestTimeoutMs ?? 30_000
      const timer = setTimeout(() => {
        if (this.requests.delete(corr)) reject(new SwitchboardError('SB_ERR_TIMEOUT', `${op}: no answer within ${ms} ms`))
      }, ms)
      unref(timer)
      const pending: PendingRequest = { resolve, reject, op, timer }
      if (stream) pending.stream = stream
      this.requests.set(corr, pending)
      conn.write(encode(frame))
    })
  }

  /** A request once the session is open (waits through a reconnect). */
  async call(frame: Frame, op: string, stream?: (f: Frame) => void): Promise<Frame> {
    await this.ready()
    return this.request(frame, op, false, stream)
  }

  /** A REQUEST frame (WHO, RENAME, SUBSCRIBE …) answered by RESULT. */
  async op(op: number, arg = ''): Promise<FrameOf<'RESULT'>> {
    const name = Object.entries(Op).find(([, v]) => v === op)?.[0] ?? String(op)
    return (await this.call({ type: 'REQUEST', corr: 0, op, arg }, name)) as FrameOf<'RESULT'>
  }

  writeSend(p: PendingSend): void {
    if (this.conn === undefined || this.state !== 'open') return
    p.gen = this.gen
    p.corr = this.corrNext()
    this.sendByCorr.set(p.corr, p.msgId)
    this.conn.write(encode({ type: 'SEND', corr: p.corr, ...p.fields }))
  }

  settleSend(p: PendingSend, result: SendResult | undefined, err?: SwitchboardError): void {
    if (!this.sends.delete(p.msgId)) return
    if (p.timer) clearTimeout(p.timer)
    if (err !== undefined) p.reject(err)
    else p.resolve(result!)
  }

  // ------------------------------------------------------------ the session opens, drops, ends

  /** Wait until a session is open (immediately when it is). */
  ready(): Promise<void> {
    if (this.state === 'open') return Promise.resolve()
    if (this.state === 'closed') return Promise.reject(new SwitchboardError('SB_ERR_CLOSED', 'the client is closed'))
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }))
  }

  /**
   * The session (re)opened on connection generation `gen`: resend what the server had not accepted, in the
   * order it was sent, then release waiting requests. Returns how many sends were written again.
   */
  opened(gen: number): number {
    let resent = 0
    for (const p of this.sends.values()) {
      if (p.accepted || p.gen === gen) continue
      if (p.gen !== 0) resent++
      this.writeSend(p)
    }
    for (const w of this.openWaiters.splice(0)) w.resolve()
    return resent
  }

  /** The connection dropped: requests on it fail; sends the server had not accepted stay for the resend. */
  dropped(lost: SwitchboardError): void {
    this.conn = undefined
    for (const [corr, r] of this.requests) {
      if (r.timer) clearTimeout(r.timer)
      this.requests.delete(corr)
      r.reject(lost)
    }
    this.sendByCorr.clear()
    this.fireAndForget.clear()
    // ... unless a resend could deliver them twice.
    for (const p of this.sends.values()) {
      if (!p.accepted && !p.idempotent && p.gen !== 0) this.settleSend(p, undefined, lost)
    }
  }

  failEverything(err: SwitchboardError): void {
    for (const p of [...this.sends.values()]) this.settleSend(p, undefined, err)
    for (const w of this.openWaiters.splice(0)) w.reject(err)
    for (const [corr, r] of this.requests) {
      if (r.timer) clearTimeout(r.timer)
      this.requests.delete(corr)
      r.reject(err)
    }
  }
}

export function acceptedStatusName(code: number): AcceptedStatus {
  const names = Object.keys(SendStatusCode) as AcceptedStatus[]
  return names.find((n) => SendStatusCode[n] === code) ?? 'queued'
}
