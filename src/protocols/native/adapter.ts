/**
 * Native protocol adapter: one NativeConnection per byte stream (a TCP/TLS socket, or a WebSocket that
 * carries the same frames). It runs the decode loop, maps frames to broker calls and broker events back
 * to frames. No routing decisions live here.
 */
import { BrokerError, ErrorNumbers, asBrokerError, type ErrorCode } from '../../core/errors.js'
import type { Broker, SendResult } from '../../core/broker.js'
import { encodeOnce } from '../encode-once.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, Flag, type CloseReason, type Message, type Outbound, type SessionSink } from '../../core/types.js'
import { kindCode, kindOf } from '../../schema/message.js'
import { encode, FrameReader } from './codec.js'
import {
  ConvAction,
  ConvEventCode,
  Op,
  PROTOCOL_VERSION,
  SendFlag,
  SendStatusCode,
  SessionFlag,
  type Frame,
  type FrameOf,
  type WireMessage,
  type WireUser,
} from './frames.js'
import type { FileHandler } from './files.js'
import type { Admission, ListenerGuard } from '../guard.js'

/** What a connection needs from its byte stream. */
export interface Transport {
  /** Queue bytes for writing. Writes within one tick should reach the wire as one write (cork/uncork). */
  write(buf: Buffer): void
  /** Bytes queued and not yet written. */
  bufferedBytes(): number
  /**
   * Flush what is queued, then close. `reason` and `text` are those of the CLOSING frame just written, for a
   * transport that can say why in its own terms (a WebSocket close code and reason).
   */
  end(reason: CloseReason | 'error', text: string): void
  /** Stop reading (inbound backpressure) / start again. */
  pause(): void
  resume(): void
}

export interface NativeOptions {
  maxFrameBytes: number
  /**
   * Largest frame accepted before REGISTER or LOGIN succeeded (default: maxFrameBytes): a stranger may not make
   * the server hold a maximum-size partial frame. A larger one is refused naming maxPreLoginFrameBytes.
   */
  maxPreLoginFrameBytes?: number
  /** Per-address connection caps and the login rate, shared by every listener (issue 13). */
  guard?: ListenerGuard | undefined
  /** The interval clients are told to send PING at; the broker's idle timeout reaps those that stop. */
  heartbeatMs: number
  /** Outbound bytes above which the sink reports backpressure to the broker. */
  highWaterMark: number
  /** A connection that has not logged in by then is closed. */
  loginTimeoutMs: number
  serverName: string
  files?: FileHandler | undefined
  /** The protocol name sessions are shown with ('native'; 'ws' for the WebSocket endpoint). */
  protocol?: string
}

const PROTOCOL = 'native'
const MAX_PENDING_REQUESTS = 1024
/** At shutdown, how long a connection may take to answer the requests under way before it is closed anyway. */
const SHUTDOWN_ANSWER_MS = 5000
/** At shutdown, requests that arrive are still read (and refused) until the client has been quiet this long. */
const SHUTDOWN_QUIET_MS = 50
/** Error texts may quote client input (an unknown name is up to 65 535 bytes); a str field holds at most 65 535. */
const MAX_ERROR_TEXT = 1024

function clip(text: string): string {
  if (Buffer.byteLength(text) <= MAX_ERROR_TEXT) return text
  // Cut on a code point boundary, so the text stays valid UTF-8.
  let out = ''
  let n = 0
  for (const ch of text) {
    n += Buffer.byteLength(ch)
    if (n > MAX_ERROR_TEXT - 3) break
    out += ch
  }
  return out + '…'
}

/**
 * A message as the native `msg` (the schema's native fields, the kind as its code, '' or 0 for what is absent).
 * Spelled out for speed: the WireMessage type comes from the schema, so a native field missing here does not
 * compile, and test/unit/message-schema.test.ts checks the values.
 *
 * A sent copy (flag SENT) lives in the sender's log, so the core's `to` is its owner; on the wire `to` is whom
 * it was sent to (the core's `peer`), which is what a client shows. A topic copy has no peer and keeps `to`.
 */
export function toWireMessage(m: Message): WireMessage {
  return {
    seq: m.seq,
    msgId: m.msgId,
    from: m.from,
    fromName: m.fromName,
    to: m.flags & Flag.SENT && m.peer !== undefined ? m.peer : m.to,
    topic: m.topic ?? '',
    kind: kindCode(m.kind),
    flags: m.flags,
    ts: m.ts,
    expiresAt: m.expiresAt ?? 0,
    fileId: m.fileId ?? '',
    body: m.body,
  }
}

/** REQUEST PASSWORD's arg: JSON {"password": string|null, "current"?: string}. */
function passwordArg(arg: string): { password: string | null; current?: string } {
  let v: unknown
  try {
    v = JSON.parse(arg)
  } catch {
    v = undefined
  }
  const o = v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  if (
    o === undefined ||
    !(typeof o.password === 'string' || o.password === null) ||
    !(o.current === undefined || typeof o.current === 'string')
  )
    throw new BrokerError('SB_ERR_MALFORMED', 'PASSWORD takes JSON {"password": string|null, "current"?: string}')
  return o.current === undefined ? { password: o.password } : { password: o.password, current: o.current }
}

export class NativeConnection implements SessionSink {
  session: Session | undefined
  private readonly reader: FrameReader
  private closed = false
  private pending = 0
  /** Reasons to stop reading the socket now (too many requests in flight; uploads waiting for the disk). */
  private holds = 0
  private pendingHold = false
  private loginTimer: NodeJS.Timeout | undefined
  private drainWaiters: (() => void)[] = []
  private loggingIn = false
  /** close('shutdown') waits for the requests under way to be answered (see close). */
  private closeAfterPending: { reason: CloseReason; text: string } | undefined
  private lastInput = 0

  constructor(
    readonly broker: Broker,
    private readonly transport: Transport,
    readonly opts: NativeOptions,
    readonly remote: string,
    /** This connection's place in the per-address counts (released when it closes). */
    private readonly admission?: Admission,
  ) {
    this.reader = new FrameReader(Math.min(opts.maxPreLoginFrameBytes ?? opts.maxFrameBytes, opts.maxFrameBytes))
    this.loginTimer = setTimeout(() => {
      if (this.session === undefined) this.fatal(0, 'SB_ERR_NOT_LOGGED_IN', 'no REGISTER or LOGIN in time')
    }, opts.loginTimeoutMs)
    this.loginTimer.unref()
  }

  // ------------------------------------------------------------ bytes in

  /** Bytes from the stream. */
  feed(chunk: Buffer): void {
    if (this.closed) return
    this.lastInput = Date.now()
    for (const d of this.reader.push(chunk)) {
      if (d.ok) {
        this.dispatch(d.frame)
        continue
      }
      if (d.reason === 'too-large') {
        if (this.session === undefined && this.reader.maxFrameBytes < this.opts.maxFrameBytes) {
          // Before login only REGISTER and LOGIN make sense, and they are small: refuse and close.
          this.broker.log.warn({ remote: this.remote, size: d.size }, 'native frame too large before login: closing')
          this.fatal(
            d.corr,
            'SB_ERR_TOO_LARGE',
            `frame of ${d.size} bytes before login is larger than maxPreLoginFrameBytes (${this.reader.maxFrameBytes})`,
            'maxPreLoginFrameBytes',
          )
          return
        }
        this.error(
          d.corr,
          'SB_ERR_TOO_LARGE',
          `frame of ${d.size} bytes is larger than maxFrameBytes (${this.opts.maxFrameBytes})`,
          'maxFrameBytes',
        )
        continue
      }
      if (d.reason === 'malformed') {
        this.broker.log.warn({ remote: this.remote, detail: d.detail }, 'malformed native frame: closing')
        this.fatal(d.corr, 'SB_ERR_MALFORMED', d.detail)
        return
      }
    }
  }

  /** The stream is gone. */
  closedByPeer(): void {
    this.finish()
  }

  /** Mark closed and release what the connection holds: its session, its uploads, its waiters. */
  private finish(): boolean {
    if (this.closed) return false
    this.closed = true
    clearTimeout(this.loginTimer)
    this.admission?.release()
    if (this.session !== undefined) this.broker.detach(this.session)
    this.opts.files?.connectionClosed(this)
    for (const w of this.drainWaiters) w()
    this.drainWaiters = []
    return true
  }

  /** The transport drained below its high-water mark. */
  drained(): void {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const w of waiters) w()
    if (this.session !== undefined) this.broker.drained(this.session)
  }

  /** Resolves when the outbound backlog is below the high-water mark (or the connection is gone). */
  async writable(): Promise<boolean> {
    while (!this.closed && this.transport.bufferedBytes() >= this.opts.highWaterMark)
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve))
    return !this.closed
  }

  get isClosed(): boolean {
    return this.closed
  }

  private dispatch(frame: Frame): void {
    this.pending++
    if (this.pending > MAX_PENDING_REQUESTS && !this.pendingHold) {
      this.pendingHold = true
      this.holdInput()
    }
    void this.handle(frame)
  }

  /** A frame's request, answered with an ERROR if it fails. (No closures: a SEND or an ACK is one per message.) */
  private async handle(frame: Frame): Promise<void> {
    try {
      const answered = this.route(frame)
      if (answered !== undefined) await answered
    } catch (err: unknown) {
      const e = asBrokerError(err)
      if (e.code === 'SB_ERR_INTERNAL') this.broker.log.error({ err, frame: frame.type }, 'native request failed')
      // Nothing may escape this handler: a throw here is an unhandled rejection, and that ends the process.
      try {
        this.error(frame.corr, e.code, e.message, e.limit)
      } catch (err2) {
        this.broker.log.error({ err: err2, frame: frame.type }, 'could not answer a failed native request')
      }
    } finally {
      this.pending--
      if (this.pendingHold && this.pending < MAX_PENDING_REQUESTS / 2) {
        this.pendingHold = false
        this.releaseInput()
      }
    }
  }

  /** Stop reading the socket until every hold is released (inbound backpressure). */
  holdInput(): void {
    if (this.holds++ === 0) this.transport.pause()
  }

  releaseInput(): void {
    if (this.holds > 0 && --this.holds === 0) this.transport.resume()
  }

  private need(): Session {
    if (this.broker.isClosing) throw new BrokerError('SB_ERR_SHUTTING_DOWN', 'the server is shutting down')
    if (this.session === undefined || this.session.closed)
      throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'send REGISTER or LOGIN first')
    return this.session
  }

  /**
   * Start what `f` asks for: undefined when that is done already, else the promise of it. Not async itself: a SEND
   * or an ACK is one per message, and an async function here is one more promise and suspended frame each.
   */
  private route(f: Frame): Promise<unknown> | undefined {
    switch (f.type) {
      case 'REGISTER':
      case 'LOGIN':
        return this.login(f)
      case 'PING':
        if (this.session !== undefined) this.broker.touch(this.session)
        this.send({ type: 'PONG', corr: f.corr })
        return
      case 'SEND':
        return this.sendMessage(f)
      case 'ACK':
        return this.broker.ack(this.need(), f.seq)
      case 'TAKE':
        return this.take(f)
      case 'READ':
        // Any message of the user's log: one this session was handed (an ACK just before may still be committing,
        // so the session's own record of it is not asked), or one a device found in HISTORY. The store marks it
        // once; a seq that is not in the log, or was read already, does nothing.
        return this.broker.markRead(this.need(), { seq: f.seq })
      case 'REQUEST':
        return this.request(f)
      case 'CONV':
        return this.conversation(f)
      case 'FILE_BEGIN':
      case 'FILE_CHUNK':
      case 'FILE_END':
      case 'FILE_ABORT':
      case 'DOWNLOAD': {
        const s = this.need()
        if (this.opts.files === undefined)
          throw new BrokerError('SB_ERR_UNSUPPORTED', 'file transfer is not enabled on this server')
        return this.opts.files.handle(this, s, f)
      }
      case 'BYE': {
        const s = this.need()
        this.broker.end(s, 'ended', 'goodbye')
        return
      }
      case 'HISTORY':
        return this.history(f)
      default:
        // A server-to-client frame from a client is malformed input like any other: error, then close.
        this.broker.log.warn({ remote: this.remote, frame: f.type }, 'client sent a server frame: closing')
        this.fatal(f.corr, 'SB_ERR_MALFORMED', `${f.type} is a server-to-client frame`)
        return
    }
  }

  private async take(f: FrameOf<'TAKE'>): Promise<void> {
    const msgs = await this.broker.take(this.need(), f.max, f.mode === 1 ? 'peek' : 'take', Math.min(f.waitMs, 60_000))
    this.send({ type: 'BATCH', corr: f.corr, msgs: msgs.map(toWireMessage) })
  }

  private async history(f: FrameOf<'HISTORY'>): Promise<void> {
    const page = await this.broker.history(this.need(), { with: f.with, before: f.before, limit: f.limit })
    this.send({ type: 'HISTORY_PAGE', corr: f.corr, more: page.more ? 1 : 0, msgs: page.messages.map(toWireMessage) })
  }

  private async login(f: FrameOf<'REGISTER'> | FrameOf<'LOGIN'>): Promise<void> {
    if (f.version !== PROTOCOL_VERSION)
      throw new BrokerError(
        'SB_ERR_UNSUPPORTED',
        `protocol version ${f.version} is not supported (this server speaks ${PROTOCOL_VERSION})`,
      )
    if (this.loggingIn || (this.session !== undefined && !this.session.closed))
      throw new BrokerError('SB_ERR_CONFLICT', 'already logged in (or logging in) on this connection')
    this.loggingIn = true
    try {
      this.opts.guard?.authenticating(this.admission?.address ?? this.remote)
      await this.loginNow(f)
    } finally {
      this.loggingIn = false
    }
  }

  private async loginNow(f: FrameOf<'REGISTER'> | FrameOf<'LOGIN'>): Promise<void> {
    const mode = f.flags & SessionFlag.POLL ? 'poll' : 'push'
    const protocol = this.opts.protocol ?? PROTOCOL
    const address = this.admission?.address ?? this.remote
    let token = ''
    if (f.type === 'REGISTER') {
      if (f.flags & (SessionFlag.PASSWORD | SessionFlag.SEND_ONLY))
        throw new BrokerError(
          'SB_ERR_UNSUPPORTED',
          'PASSWORD and SEND_ONLY are LOGIN flags (set a password with REQUEST PASSWORD)',
        )
      const r = await this.broker.register(f.name, protocol, this, mode, { address })
      this.session = r.session
      token = r.token
    } else {
      const opts = { address, sendOnly: (f.flags & SessionFlag.SEND_ONLY) !== 0 }
      if (f.flags & SessionFlag.PASSWORD) {
        // A new device: the token field carries the password, the answer carries the device's token (once).
        if (f.id !== 0) throw new BrokerError('SB_ERR_MALFORMED', 'LOGIN with PASSWORD names the user by name: id must be 0')
        const r = await this.broker.loginPassword(f.name, f.token, protocol, this, mode, opts)
        this.session = r.session
        token = r.token
      } else
        this.session = await this.broker.login(f.id !== 0 ? { id: f.id } : { name: f.name }, f.token, protocol, this, mode, opts)
    }
    clearTimeout(this.loginTimer)
    this.loginTimer = undefined
    if (this.closed) {
      this.broker.detach(this.session)
      return
    }
    this.reader.maxFrameBytes = this.opts.maxFrameBytes
    this.admission?.loggedIn()
    this.send({
      type: 'WELCOME',
      corr: f.corr,
      version: PROTOCOL_VERSION,
      id: this.session.user.id,
      name: this.session.user.name,
      token,
      heartbeatMs: this.opts.heartbeatMs,
      server: this.opts.serverName,
    })
    // Two-phase attach: events for the session go out only after its WELCOME.
    this.broker.ready(this.session)
  }

  private async sendMessage(f: FrameOf<'SEND'>): Promise<void> {
    const s = this.need()
    if (kindOf(f.kind) !== 'text') throw new BrokerError('SB_ERR_UNSUPPORTED', 'SEND carries text; files go by FILE_BEGIN')
    const r = await this.broker.send(s, {
      to: f.to,
      body: f.body,
      msgId: f.msgId,
      idempotent: (f.flags & SendFlag.IDEMPOTENT) !== 0,
      receipt: (f.flags & SendFlag.RECEIPT) !== 0,
      readReceipt: (f.flags & SendFlag.READ_RECEIPT) !== 0,
      transient: (f.flags & SendFlag.TRANSIENT) !== 0,
      ttlMs: f.ttlMs,
      notBefore: f.notBefore,
    })
    this.accepted(f.corr, r)
  }

  accepted(corr: number, r: SendResult, fileId = ''): void {
    this.send({
      type: 'ACCEPTED',
      corr,
      msgId: r.msgId,
      status: SendStatusCode[r.status],
      seq: r.seq,
      recipients: r.recipients,
      fileId,
    })
  }

  private async request(f: FrameOf<'REQUEST'>): Promise<void> {
    const s = this.need()
    const b = this.broker
    const reply = (text: string, users: WireUser[] = [], items: { name: string; count: number }[] = []): void =>
      this.send({ type: 'RESULT', corr: f.corr, op: f.op, text, users, items })
    switch (f.op) {
      case Op.WHOAMI: {
        const p = b.whoami(s)
        return reply(p.name, [{ id: p.id, name: p.name, protocol: p.protocol, since: p.since, lastSeen: p.lastSeen }])
      }
      case Op.WHO:
        return reply(
          '',
          (await b.who(s)).map((p) => ({ id: p.id, name: p.name, protocol: p.protocol, since: p.since, lastSeen: p.lastSeen })),
        )
      case Op.RENAME: {
        const u = await b.rename(s, f.arg)
        return reply(u.name, [{ id: u.id, name: u.name, protocol: s.protocol, since: s.since, lastSeen: s.lastSeen }])
      }
      case Op.END:
        reply('')
        b.end(s, 'ended', 'goodbye')
        return
      case Op.DELETE_ACCOUNT:
        reply('')
        await b.deleteAccount(s)
        return
      case Op.STATS:
        return reply(JSON.stringify(await b.stats()))
      case Op.SUBSCRIBE:
        return reply(f.arg, [], [{ name: f.arg, count: (await b.subscribe(s, f.arg)) ? 1 : 0 }])
      case Op.UNSUBSCRIBE:
        return reply(f.arg, [], [{ name: f.arg, count: (await b.unsubscribe(s, f.arg)) ? 1 : 0 }])
      case Op.TOPICS:
        return reply(
          '',
          [],
          (await b.topics(s)).map((t) => ({ name: t.topic, count: t.subscribers })),
        )
      case Op.SUBSCRIPTIONS:
        return reply(
          '',
          [],
          (await b.subscriptions(s)).map((t) => ({ name: t, count: 0 })),
        )
      case Op.BLOCK:
      case Op.UNBLOCK: {
        const u =
          f.op === Op.BLOCK ? await b.block(s, { kind: 'name', name: f.arg }) : await b.unblock(s, { kind: 'name', name: f.arg })
        return reply(u.name, [{ id: u.id, name: u.name, protocol: '', since: 0, lastSeen: 0 }])
      }
      case Op.BLOCKED:
        return reply(
          '',
          (await b.blocked(s)).map((u) => ({ id: u.id, name: u.name, protocol: '', since: 0, lastSeen: 0 })),
        )
      case Op.LAST_SEEN: {
        const r = await b.lastSeen(s, { kind: 'name', name: f.arg })
        return reply(r.online !== undefined ? 'online' : 'offline', [
          {
            id: r.user.id,
            name: r.user.name,
            protocol: r.online?.protocol ?? '',
            since: r.online?.since ?? 0,
            lastSeen: r.lastSeen ?? 0,
          },
        ])
      }
      case Op.PRESENCE:
        b.watchPresence(s, f.arg !== 'off')
        return reply(f.arg !== 'off' ? 'on' : 'off')
      case Op.DEVICES:
        return reply(
          JSON.stringify(
            (await b.devices(s)).map((d) => ({
              id: d.id,
              label: d.label,
              createdAt: d.createdAt,
              lastSeen: d.lastSeen ?? null,
              online: d.online,
              current: d.current,
            })),
          ),
        )
      case Op.REVOKE: {
        if (!/^[0-9]{1,15}$/.test(f.arg)) throw new BrokerError('SB_ERR_MALFORMED', 'REVOKE takes a device id in decimal')
        const id = Number(f.arg)
        // Revoking this very device ends this session: answer first, or the answer would follow the CLOSING.
        if (id === s.device) {
          reply(String(id))
          await b.revokeDevice(s, id)
          return
        }
        await b.revokeDevice(s, id)
        return reply(String(id))
      }
      case Op.PASSWORD: {
        const { password, current } = passwordArg(f.arg)
        await b.setPassword(s, password, current)
        return reply('ok')
      }
      default:
        throw new BrokerError('SB_ERR_UNSUPPORTED', `unknown request op ${f.op}`)
    }
  }

  private async conversation(f: FrameOf<'CONV'>): Promise<void> {
    const s = this.need()
    switch (f.action) {
      case ConvAction.REQUEST: {
        const id = await this.broker.requestConversation(s, f.to)
        return this.send({ type: 'RESULT', corr: f.corr, op: Op.CONVERSATION, text: id, users: [], items: [] })
      }
      case ConvAction.ACCEPT:
      case ConvAction.DECLINE:
        this.broker.answerConversation(s, f.convId, f.action === ConvAction.ACCEPT)
        return this.send({ type: 'RESULT', corr: f.corr, op: Op.CONVERSATION, text: f.convId, users: [], items: [] })
      case ConvAction.MESSAGE:
        this.broker.conversationSend(s, f.convId, f.body)
        return this.send({ type: 'RESULT', corr: f.corr, op: Op.CONVERSATION, text: f.convId, users: [], items: [] })
      case ConvAction.CLOSE:
        this.broker.closeConversation(s, f.convId)
        return this.send({ type: 'RESULT', corr: f.corr, op: Op.CONVERSATION, text: f.convId, users: [], items: [] })
      default:
        throw new BrokerError('SB_ERR_UNSUPPORTED', `unknown conversation action ${f.action}`)
    }
  }

  // ------------------------------------------------------------ frames out

  send(frame: Frame): void {
    if (this.closed) return
    this.transport.write(encode(frame))
  }

  /** An ERROR frame; the connection stays. */
  error(corr: number, code: ErrorCode, message: string, limit = ''): void {
    this.send({ type: 'ERROR', corr, code: ErrorNumbers[code], limit: limit ?? '', message: clip(message) })
  }

  /** An ERROR frame, then the connection is closed (malformed input). */
  fatal(corr: number, code: ErrorCode, message: string, limit = ''): void {
    this.error(corr, code, message, limit)
    this.send({ type: 'CLOSING', corr: 0, reason: 'error', text: message })
    this.shut('error', message)
  }

  private shut(reason: CloseReason | 'error', text: string): void {
    if (this.finish()) this.transport.end(reason, text)
  }

  // ------------------------------------------------------------ SessionSink

  push(ev: Outbound): boolean {
    if (this.closed) return false
    switch (ev.type) {
      case 'message': {
        const m = ev.msg
        if (m.seq === 0 && m.to === ALL_ID) {
          // A room message is the same frame for every receiver: encode it once.
          this.transport.write(encodeOnce(m, PROTOCOL, () => encode({ type: 'DELIVER', corr: 0, msg: toWireMessage(m) })))
        } else this.send({ type: 'DELIVER', corr: 0, msg: toWireMessage(m) })
        break
      }
      case 'receipt': {
        const r = ev.receipt
        this.send({
          type: 'RECEIPT',
          corr: 0,
          msgId: r.msgId,
          status: r.status,
          recipient: r.recipient,
          recipientName: r.recipientName,
          seq: r.seq,
          at: r.at,
          topic: r.topic ?? '',
          ackSeq: ev.seq,
        })
        break
      }
      case 'notice':
        this.send({ type: 'NOTICE', corr: 0, code: ev.code, text: ev.text })
        break
      case 'presence':
        this.send({
          type: 'PRESENCE',
          corr: 0,
          id: ev.user.id,
          name: ev.user.name,
          online: ev.online ? 1 : 0,
          protocol: ev.protocol ?? '',
          at: ev.at,
        })
        break
      case 'rename':
        this.send({ type: 'RENAMED', corr: 0, id: ev.user.id, oldName: ev.oldName, newName: ev.user.name })
        break
      case 'read':
        this.send({ type: 'READ_ELSEWHERE', corr: 0, seq: ev.seq, at: ev.at })
        break
      case 'conversation': {
        const c = ev.ev
        this.send({
          type: 'CONV_EVENT',
          corr: 0,
          event: ConvEventCode[c.event],
          convId: c.convId,
          peerId: c.peer.id,
          peerName: c.peer.name,
          expiresAt: c.event === 'request' ? c.expiresAt : 0,
          reason: c.event === 'closed' ? c.reason : '',
          body: c.event === 'message' ? c.body : Buffer.alloc(0),
        })
        break
      }
    }
    return this.transport.bufferedBytes() < this.opts.highWaterMark
  }

  backlog(): number {
    return this.transport.bufferedBytes()
  }

  /** Close a connection that has no session (the server is stopping). */
  shutdown(): void {
    if (this.closed || this.session !== undefined) return
    this.close('shutdown', 'the server is shutting down')
  }

  close(reason: CloseReason, text: string): void {
    // The server is stopping: answer each request under way (ACCEPTED for what was committed, SB_ERR_SHUTTING_DOWN
    // for what was not), and go on reading what the client had already sent, refusing it, until it is quiet;
    // then CLOSING. Bounded by SHUTDOWN_ANSWER_MS.
    if (reason === 'shutdown' && !this.closed) {
      if (this.closeAfterPending !== undefined) return
      this.closeAfterPending = { reason, text }
      const until = Date.now() + SHUTDOWN_ANSWER_MS
      const check = (): void => {
        if (this.closed) return
        const now = Date.now()
        if ((this.pending === 0 && now - this.lastInput >= SHUTDOWN_QUIET_MS) || now >= until) this.closeNow({ reason, text })
        else setTimeout(check, 10).unref()
      }
      check()
      return
    }
    this.closeNow({ reason, text })
  }

  private closeNow(c: { reason: CloseReason; text: string }): void {
    if (this.closed) return
    this.closeAfterPending = undefined
    this.send({ type: 'CLOSING', corr: 0, reason: c.reason, text: c.text })
    this.session = undefined
    this.shut(c.reason, c.text)
  }
}
