/**
 * The TypeScript SDK over the native protocol (docs/protocol/native.md, src/protocols/native/frames.ts).
 * Transport-agnostic: it reads and writes frames over a `Connection` (TCP/TLS in Node, WebSocket anywhere),
 * and imports nothing from Node here, so the same code runs in a browser (with a Buffer polyfill, which
 * the codec needs).
 *
 * Delivery guarantees it adds on top of the server's:
 * - every send carries a msgId unique to this client (see MsgIdGenerator) and, by default, the IDEMPOTENT
 *   flag; a send the server had not ACCEPTED when the connection dropped is resent after the automatic
 *   reconnect with the same msgId, so the server stores and delivers it once;
 * - sends are written in the order they were made, the resends first, so one sender's order holds;
 * - a message this client acknowledged but that comes again (the ACK was lost with the connection) is
 *   acknowledged again and not handed to the application twice.
 *
 * @example
 * const c = await SwitchboardClient.connect({ host: '127.0.0.1', port: 7070, name: 'alice' })
 * c.on('message', (m) => console.log(m.fromName, m.text))
 * const r = await c.send('bob', 'hello')   // settles with bob's receipt: 200, 300 or 202
 */
import { errorCodeFromNumber, type ErrorCode } from '../core/errors.js'
import { ALL_ID, type Address } from '../core/types.js'
import { encode, FrameReader } from '../protocols/native/codec.js'
import {
  ConvAction,
  ConvEventCode,
  KIND_CODES,
  Op,
  PROTOCOL_VERSION,
  SendFlag,
  SendStatusCode,
  SessionFlag,
  type Frame,
  type FrameOf,
  type WireMessage,
} from '../protocols/native/frames.js'
import type { Connection, Connector } from './connection.js'
import type { WebSocketConstructor } from './ws-transport.js'
import type { TcpOptions } from './tcp.js'

export type { Connection, ConnectionHandlers, Connector } from './connection.js'

// ------------------------------------------------------------------ public types

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
  /** Log in with this id and token (else from `credentials`, else register). */
  id?: number
  token?: string
  /** true: always register `name`; false: never register (log in only); default: register when no token is known. */
  register?: boolean
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

export type MessageKind = (typeof KIND_CODES)[number]

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
  /** This user's id, or ALL_ID for the room. */
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
  /** True when the sender asked for a read receipt. */
  wantsReadReceipt: boolean
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
}

/** Whom to send to: a user name (string), or an explicit address. */
export type Target = string | Address

export interface UserEntry {
  id: number
  name: string
  protocol: string
  since: number
  lastSeen: number
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
  error?: Error
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

// ------------------------------------------------------------------ internals

type Listener<T> = (ev: T) => void

interface PendingRequest {
  resolve(frame: Frame): void
  reject(err: SwitchboardError): void
  op: string
  timer: ReturnType<typeof setTimeout> | undefined
  /** Called for FILE_INFO / FILE_DATA with this corr (downloads). */
  stream?: (frame: Frame) => void
}

interface PendingSend {
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
}

const textDecoder = new TextDecoder()

/** Buffer where there is one (Node, or a browser polyfill the codec needs anyway). */
function toBuffer(b: Uint8Array | string): Buffer {
  return typeof b === 'string'
    ? Buffer.from(b, 'utf8')
    : Buffer.isBuffer(b)
      ? b
      : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

function unref(t: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval>): void {
  ;(t as { unref?: () => void }).unref?.()
}

function addressOf(to: Target): Address {
  if (typeof to !== 'string') return to
  if (to === 'ALL' || to === '*') return { kind: 'all' }
  if (to === 'SERVER') return { kind: 'server' }
  return { kind: 'name', name: to }
}

function parseFileBody(body: Buffer): FileDescriptor | undefined {
  try {
    const o = JSON.parse(body.toString('utf8')) as Record<string, unknown>
    if (typeof o.fileId !== 'string' || typeof o.name !== 'string' || typeof o.size !== 'number' || typeof o.sha256 !== 'string')
      return undefined
    const f: FileDescriptor = { fileId: o.fileId, name: o.name, size: o.size, sha256: o.sha256 }
    if (typeof o.text === 'string') f.text = o.text
    return f
  } catch {
    return undefined
  }
}

/** Close reasons after which reconnecting would be wrong: someone meant it. */
const FINAL_CLOSE = new Set(['replaced', 'deleted', 'ended'])

const ACKED_MEMORY = 4096

// ------------------------------------------------------------------ the client

export class SwitchboardClient {
  /** This user's id and name (the name follows renames). */
  id = 0
  name: string
  /** The token that logs this user in again. */
  token = ''
  /** The server's name and version, from WELCOME. */
  server = ''
  readonly mode: 'push' | 'poll'
  /** Key of this server in the credential store: host:port or the URL. */
  readonly serverKey: string

  private readonly opts: ConnectOptions
  private readonly connector: Connector
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>()
  private readonly ids = new MsgIdGenerator()
  private conn: Connection | undefined
  private reader: FrameReader | undefined
  private gen = 0
  private state: 'connecting' | 'open' | 'reconnecting' | 'closed' = 'connecting'
  private nextCorr = 1
  private readonly requests = new Map<number, PendingRequest>()
  /** A fresh msgId, for a caller that wants to know it before send() settles (pass it as SendOptions.msgId). */
  nextMsgId(): number {
    return this.ids.next()
  }

  /** Sends not settled yet, in the order they were made (Map keeps insertion order). */
  private readonly sends = new Map<number, PendingSend>()
  private readonly sendByCorr = new Map<number, number>()
  /** corr → op of frames that have no reply, so a late ERROR can be named. */
  private readonly fireAndForget = new Map<number, string>()
  /** Work waiting for the session to be (re)opened. */
  private openWaiters: { resolve(): void; reject(err: SwitchboardError): void }[] = []
  private readonly ackedSeqs = new Set<number>()
  private heartbeat: ReturnType<typeof setInterval> | undefined
  private lastRx = 0
  private heartbeatMs = 30_000
  private closeReason: { reason: string; text: string } | undefined
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private closedPromise: Promise<void>
  private resolveClosed!: () => void

  private constructor(opts: ConnectOptions, connector: Connector, serverKey: string) {
    this.opts = opts
    this.connector = connector
    this.name = opts.name
    this.mode = opts.mode ?? 'push'
    this.serverKey = serverKey
    this.closedPromise = new Promise((r) => (this.resolveClosed = r))
  }

  /**
   * Connect and register or log in. Resolves once the server said WELCOME; rejects with a SwitchboardError
   * (SB_ERR_AUTH, SB_ERR_NAME_TAKEN, SB_ERR_CONNECT …) if the first attempt fails. Later drops reconnect.
   */
  static async connect(opts: ConnectOptions): Promise<SwitchboardClient> {
    let connector = opts.connector
    let serverKey: string
    if (connector !== undefined) serverKey = opts.url ?? `${opts.host ?? 'custom'}:${opts.port ?? 0}`
    else if (opts.url !== undefined) {
      const { wsConnector } = await import('./ws-transport.js')
      connector = wsConnector({ url: opts.url, WebSocket: opts.WebSocket, connectTimeoutMs: opts.connectTimeoutMs })
      serverKey = opts.url
    } else {
      // Loaded on demand so that a browser bundle that uses `url` never pulls node:net in.
      const { tcpConnector } = await import('./tcp.js')
      const host = opts.host ?? '127.0.0.1'
      const port = opts.port ?? 7070
      connector = tcpConnector({ host, port, tls: opts.tls, connectTimeoutMs: opts.connectTimeoutMs })
      serverKey = `${host}:${port}`
    }
    const c = new SwitchboardClient(opts, connector, serverKey)
    const known =
      opts.token !== undefined
        ? { id: opts.id ?? 0, name: opts.name, token: opts.token }
        : opts.register === true
          ? undefined
          : await opts.credentials?.get(serverKey, opts.name)
    if (known !== undefined) {
      c.id = known.id
      c.token = known.token
    } else if (opts.register === false) {
      throw new SwitchboardError(
        'SB_ERR_NOT_LOGGED_IN',
        `no token known for "${opts.name}" on ${serverKey}: register first or pass a token`,
      )
    }
    try {
      await c.open()
    } catch (err) {
      c.state = 'closed'
      throw err
    }
    return c
  }

  // ------------------------------------------------------------ events

  on<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    let set = this.listeners.get(event)
    if (set === undefined) this.listeners.set(event, (set = new Set()))
    set.add(fn as Listener<never>)
    // What arrived before anyone listened is handed over now, after the caller's on() returned.
    if (event === 'message' && this.heldMessages.length > 0)
      queueMicrotask(() => {
        for (const m of this.heldMessages.splice(0)) this.handOver(m)
      })
    if (event === 'receipt' && this.heldReceipts.length > 0)
      queueMicrotask(() => {
        for (const r of this.heldReceipts.splice(0)) this.emit('receipt', r)
      })
    return this
  }

  off<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    this.listeners.get(event)?.delete(fn as Listener<never>)
    return this
  }

  once<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    const wrap: Listener<ClientEvents[E]> = (ev) => {
      this.off(event, wrap)
      fn(ev)
    }
    return this.on(event, wrap)
  }

  private emit<E extends keyof ClientEvents>(event: E, ev: ClientEvents[E]): void {
    const set = this.listeners.get(event)
    if (set === undefined) return
    for (const fn of [...set]) {
      try {
        ;(fn as Listener<ClientEvents[E]>)(ev)
      } catch {
        // A listener's fault must not break the frame loop; listeners own their errors.
      }
    }
  }

  /** True while a session is open (not reconnecting, not closed). */
  get connected(): boolean {
    return this.state === 'open'
  }

  /** Resolves when the client is closed for good. */
  get closed(): Promise<void> {
    return this.closedPromise
  }

  // ------------------------------------------------------------ connecting

  private async open(): Promise<void> {
    this.state = 'connecting'
    const gen = ++this.gen
    this.reader = new FrameReader(this.opts.maxFrameBytes ?? 64 * 1024 * 1024)
    this.closeReason = undefined
    let conn: Connection
    try {
      conn = await this.connector({
        onData: (chunk) => {
          if (gen === this.gen) this.onData(chunk)
        },
        onClose: (err) => {
          if (gen === this.gen) this.onConnectionLost(err)
        },
      })
    } catch (err) {
      throw new SwitchboardError('SB_ERR_CONNECT', `cannot reach ${this.serverKey}: ${(err as Error).message}`, undefined, {
        cause: err,
      })
    }
    if ((this.state as string) === 'closed') {
      conn.destroy()
      throw new SwitchboardError('SB_ERR_CLOSED', 'the client was closed')
    }
    this.conn = conn
    this.lastRx = Date.now()
    const flags = this.mode === 'poll' ? SessionFlag.POLL : 0
    const hello: Frame =
      this.token !== ''
        ? {
            type: 'LOGIN',
            corr: 0,
            version: PROTOCOL_VERSION,
            flags,
            id: this.id,
            name: this.id === 0 ? this.name : '',
            token: this.token,
          }
        : { type: 'REGISTER', corr: 0, version: PROTOCOL_VERSION, flags, name: this.name }
    let welcome: FrameOf<'WELCOME'>
    try {
      welcome = (await this.request(hello, hello.type, true)) as FrameOf<'WELCOME'>
    } catch (err) {
      conn.destroy()
      throw err
    }
    const registered = hello.type === 'REGISTER'
    const previousName = this.name
    this.id = welcome.id
    this.name = welcome.name
    if (welcome.token !== '') this.token = welcome.token
    this.server = welcome.server
    if (registered || previousName !== welcome.name) await this.saveCredentials(previousName)
    this.state = 'open'
    this.startHeartbeat(this.opts.heartbeatMs ?? (welcome.heartbeatMs > 0 ? welcome.heartbeatMs : 30_000))
    // Resend what the server had not accepted, in the order it was sent, then release waiting requests.
    let resent = 0
    for (const p of this.sends.values()) {
      if (p.accepted || p.gen === gen) continue
      if (p.gen !== 0) resent++
      this.writeSend(p)
    }
    this.resentOnOpen = resent
    for (const w of this.openWaiters.splice(0)) w.resolve()
  }

  private resentOnOpen = 0

  private async saveCredentials(previousName?: string): Promise<void> {
    try {
      await this.opts.credentials?.set(this.serverKey, { id: this.id, name: this.name, token: this.token }, previousName)
    } catch {
      // Not being able to remember a token must not break the session; the caller still has client.token.
    }
  }

  private startHeartbeat(ms: number): void {
    this.heartbeatMs = ms
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.heartbeat = setInterval(() => {
      // A peer silent for two intervals and a bit is gone (a half-open TCP connection says nothing).
      if (Date.now() - this.lastRx > 2 * this.heartbeatMs + 1000) {
        this.conn?.destroy()
        return
      }
      this.conn?.write(encode({ type: 'PING', corr: this.corrNext() }))
    }, ms)
    unref(this.heartbeat)
  }

  private onConnectionLost(err?: Error): void {
    this.conn = undefined
    if (this.heartbeat) clearInterval(this.heartbeat)
    this.heartbeat = undefined
    const lost = new SwitchboardError(
      'SB_ERR_DISCONNECTED',
      `the connection to ${this.serverKey} was lost${err ? `: ${err.message}` : ''}`,
    )
    for (const [corr, r] of this.requests) {
      if (r.timer) clearTimeout(r.timer)
      this.requests.delete(corr)
      r.reject(lost)
    }
    this.sendByCorr.clear()
    this.fireAndForget.clear()
    // Sends the server had not accepted stay for the resend, unless a resend could deliver them twice.
    for (const p of this.sends.values()) {
      if (!p.accepted && !p.idempotent && p.gen !== 0) this.settleSend(p, undefined, lost)
    }
    if (this.state === 'closed') {
      this.finish()
      return
    }
    if (this.state === 'connecting') return // open() reports it to connect()
    const why = this.closeReason
    const rc = this.opts.reconnect ?? true
    if (rc === false || (why !== undefined && FINAL_CLOSE.has(why.reason))) {
      this.state = 'closed'
      this.failEverything(
        new SwitchboardError(
          'SB_ERR_CLOSED',
          why ? `session ended: ${why.reason}${why.text ? ` (${why.text})` : ''}` : 'the connection was lost',
        ),
      )
      this.emitClosed(why?.reason ?? 'disconnected', why?.text ?? err?.message ?? '')
      return
    }
    this.state = 'reconnecting'
    this.scheduleReconnect(1, err)
  }

  private scheduleReconnect(attempt: number, err?: Error): void {
    const rc = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {}
    if (rc.maxAttempts !== undefined && attempt > rc.maxAttempts) {
      this.state = 'closed'
      this.failEverything(
        new SwitchboardError('SB_ERR_CONNECT', `gave up reconnecting to ${this.serverKey} after ${attempt - 1} attempts`),
      )
      this.emitClosed('unreachable', err?.message ?? '')
      return
    }
    const base = Math.min(rc.maxDelayMs ?? 5000, (rc.initialDelayMs ?? 100) * 2 ** Math.min(attempt - 1, 16))
    const delayMs = Math.round(base * (0.5 + Math.random() / 2))
    this.emit('reconnecting', err ? { attempt, delayMs, error: err } : { attempt, delayMs })
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (this.state === 'closed') return
      this.open().then(
        () => this.emit('reconnected', { attempts: attempt, resent: this.resentOnOpen }),
        (e: unknown) => {
          if (this.state === 'closed') return
          const se = e instanceof SwitchboardError ? e : new SwitchboardError('SB_ERR_CONNECT', String(e))
          this.conn = undefined
          // Our token no longer works (the account was deleted): retrying cannot help.
          if (se.code === 'SB_ERR_AUTH') {
            this.state = 'closed'
            this.failEverything(se)
            this.emitClosed('auth', se.message)
            return
          }
          this.state = 'reconnecting'
          this.scheduleReconnect(attempt + 1, se)
        },
      )
    }, delayMs)
  }

  private failEverything(err: SwitchboardError): void {
    for (const p of [...this.sends.values()]) this.settleSend(p, undefined, err)
    for (const w of this.openWaiters.splice(0)) w.reject(err)
    for (const [corr, r] of this.requests) {
      if (r.timer) clearTimeout(r.timer)
      this.requests.delete(corr)
      r.reject(err)
    }
  }

  private emitClosed(reason: string, text: string): void {
    this.emit('closed', { reason, text })
    this.finish()
  }

  private finished = false
  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.heartbeat) clearInterval(this.heartbeat)
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.resolveClosed()
  }

  /** Wait until a session is open (immediately when it is). */
  private ready(): Promise<void> {
    if (this.state === 'open') return Promise.resolve()
    if (this.state === 'closed') return Promise.reject(new SwitchboardError('SB_ERR_CLOSED', 'the client is closed'))
    return new Promise((resolve, reject) => this.openWaiters.push({ resolve, reject }))
  }

  // ------------------------------------------------------------ frames in

  private onData(chunk: Uint8Array): void {
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
        return this.emit('notice', { code: f.code, text: f.text })
      case 'PRESENCE':
        return this.emit('presence', { id: f.id, name: f.name, online: f.online !== 0, protocol: f.protocol, at: f.at })
      case 'RENAMED':
        if (f.id === this.id && f.newName !== this.name) {
          const previous = this.name
          this.name = f.newName
          void this.saveCredentials(previous)
        }
        return this.emit('rename', { id: f.id, oldName: f.oldName, newName: f.newName })
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
        return this.emit('conversation', ev)
      }
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
        // WELCOME, RESULT, BATCH, PONG: replies by corr.
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
    this.emit('error', { error: err, op: op ?? 'unknown' })
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
    const names = Object.keys(SendStatusCode) as AcceptedStatus[]
    const status = names.find((n) => SendStatusCode[n] === f.status) ?? 'queued'
    const result: SendResult = { msgId: f.msgId, accepted: status, seq: f.seq, recipients: f.recipients }
    if (f.fileId !== '') result.fileId = f.fileId
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

  private toIncoming(w: WireMessage): IncomingMessage {
    const kind = KIND_CODES[w.kind] ?? 'unknown'
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
      wantsReadReceipt: (w.flags & SendFlag.READ_RECEIPT) !== 0,
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
  private receiptFromMessage(w: WireMessage): ReceiptEvent | undefined {
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
    if (KIND_CODES[w.kind] === 'receipt') {
      const r = this.receiptFromMessage(w)
      if (w.seq !== 0) this.ackSeq(w.seq)
      if (r !== undefined) this.emitReceipt(r)
      return
    }
    const m = this.toIncoming(w)
    // Queued messages arrive before connect() has resolved: hold them, unacknowledged, until someone listens.
    if ((this.listeners.get('message')?.size ?? 0) === 0) {
      this.heldMessages.push(m)
      return
    }
    this.handOver(m)
  }

  private heldMessages: IncomingMessage[] = []
  private heldReceipts: ReceiptEvent[] = []

  private handOver(m: IncomingMessage): void {
    this.emit('message', m)
    if ((this.opts.autoAck ?? true) && m.seq !== 0) {
      if (this.opts.autoRead === true && m.wantsReadReceipt)
        this.writeFrame({ type: 'READ', corr: this.corrNext(), seq: m.seq }, 'READ')
      this.ackSeq(m.seq)
    }
  }

  private emitReceipt(r: ReceiptEvent): void {
    if ((this.listeners.get('receipt')?.size ?? 0) === 0) {
      if (this.heldReceipts.length >= 10_000) this.heldReceipts.shift()
      this.heldReceipts.push(r)
      return
    }
    this.emit('receipt', r)
  }

  private ackSeq(seq: number): void {
    this.ackedSeqs.add(seq)
    if (this.ackedSeqs.size > ACKED_MEMORY) {
      const oldest = this.ackedSeqs.values().next().value
      if (oldest !== undefined) this.ackedSeqs.delete(oldest)
    }
    this.writeFrame({ type: 'ACK', corr: this.corrNext(), seq }, 'ACK')
  }

  // ------------------------------------------------------------ frames out

  private corrNext(): number {
    const c = this.nextCorr
    this.nextCorr = this.nextCorr >= 0xffffffff ? 1 : this.nextCorr + 1
    return c
  }

  /** A frame with no reply of its own; an ERROR for it becomes an 'error' event. */
  private writeFrame(frame: Frame, op: string): void {
    // Not only when open: the server pushes queued messages before its WELCOME, and they are acknowledged.
    if (this.conn === undefined) return
    if (this.fireAndForget.size > 1024) this.fireAndForget.delete(this.fireAndForget.keys().next().value!)
    this.fireAndForget.set(frame.corr, op)
    this.conn.write(encode(frame))
  }

  /** A frame whose reply settles the promise. `handshake` requests may be written before the session is open. */
  private request(frame: Frame, op: string, handshake = false, stream?: (f: Frame) => void): Promise<Frame> {
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
  private async call(frame: Frame, op: string, stream?: (f: Frame) => void): Promise<Frame> {
    await this.ready()
    return this.request(frame, op, false, stream)
  }

  private async op(op: number, arg = ''): Promise<FrameOf<'RESULT'>> {
    const name = Object.entries(Op).find(([, v]) => v === op)?.[0] ?? String(op)
    return (await this.call({ type: 'REQUEST', corr: 0, op, arg }, name)) as FrameOf<'RESULT'>
  }

  private writeSend(p: PendingSend): void {
    if (this.conn === undefined || this.state !== 'open') return
    p.gen = this.gen
    p.corr = this.corrNext()
    this.sendByCorr.set(p.corr, p.msgId)
    this.conn.write(encode({ type: 'SEND', corr: p.corr, ...p.fields }))
  }

  private settleSend(p: PendingSend, result: SendResult | undefined, err?: SwitchboardError): void {
    if (!this.sends.delete(p.msgId)) return
    if (p.timer) clearTimeout(p.timer)
    if (err !== undefined) p.reject(err)
    else p.resolve(result!)
  }

  // ------------------------------------------------------------ messaging API

  /**
   * Send a text. To a user by name (a string), or to `{ kind: 'all' }` / `'ALL'`, `{ kind: 'topic', topic }`,
   * `{ kind: 'user', id }`, `'SERVER'`. Settles with the first receipt for a direct message when one is
   * wanted (200 delivered, 300 not yet, 202 stored), else with what the server said on accepting it.
   * Rejects with a SwitchboardError naming the code (and the limit) when the server refuses it.
   * While reconnecting, the send waits and goes out after the login.
   */
  send(to: Target, text: string | Uint8Array, opts: SendOptions = {}): Promise<SendResult> {
    if (this.state === 'closed') return Promise.reject(new SwitchboardError('SB_ERR_CLOSED', 'the client is closed'))
    const address = addressOf(to)
    const msgId = opts.msgId ?? this.ids.next()
    const idempotent = opts.idempotent ?? true
    const wantReceipt = opts.receipt ?? true
    let flags = 0
    if (wantReceipt) flags |= SendFlag.RECEIPT
    if (opts.readReceipt) flags |= SendFlag.READ_RECEIPT
    if (idempotent) flags |= SendFlag.IDEMPOTENT
    return new Promise<SendResult>((resolve, reject) => {
      const p: PendingSend = {
        msgId,
        fields: {
          msgId,
          to: address,
          kind: 0,
          flags,
          ttlMs: opts.ttlMs ?? 0,
          notBefore: opts.notBefore ?? 0,
          body: toBuffer(text),
        },
        wantReceipt,
        direct: address.kind === 'name' || address.kind === 'user',
        idempotent,
        gen: 0,
        corr: 0,
        accepted: false,
        resolve,
        reject,
        timer: undefined,
      }
      this.sends.set(msgId, p)
      this.writeSend(p)
    })
  }

  /** Sends not yet settled (waiting for ACCEPTED or a receipt). */
  get pendingSends(): number {
    return this.sends.size
  }

  /**
   * Async iteration over pushed messages from now on. Ends when the client closes.
   * @example for await (const m of client.messages()) console.log(m.text)
   */
  messages(): AsyncIterableIterator<IncomingMessage> {
    const queue: IncomingMessage[] = []
    const waiting: ((r: IteratorResult<IncomingMessage>) => void)[] = []
    let done = false
    const onMessage = (m: IncomingMessage): void => {
      const w = waiting.shift()
      if (w) w({ value: m, done: false })
      else queue.push(m)
    }
    const end = (): void => {
      if (done) return
      done = true
      this.off('message', onMessage)
      for (const w of waiting.splice(0)) w({ value: undefined, done: true })
    }
    this.on('message', onMessage)
    void this.closedPromise.then(end)
    const it: AsyncIterableIterator<IncomingMessage> = {
      next: () => {
        const m = queue.shift()
        if (m !== undefined) return Promise.resolve({ value: m, done: false })
        if (done) return Promise.resolve({ value: undefined, done: true })
        return new Promise((r) => waiting.push(r))
      },
      return: () => {
        end()
        return Promise.resolve({ value: undefined, done: true })
      },
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }

  /**
   * Poll mode: take up to `max` of the oldest queued messages. 'take' removes them at once; 'peek' leaves
   * them until ack(seq) (at-least-once). With waitMs, waits that long for one to arrive (long poll).
   * Queued receipts among them are emitted as 'receipt' events (and acknowledged), not returned.
   */
  async take(max = 100, mode: 'take' | 'peek' = 'take', waitMs = 0): Promise<IncomingMessage[]> {
    const f = (await this.call({ type: 'TAKE', corr: 0, max, mode: mode === 'peek' ? 1 : 0, waitMs }, 'TAKE')) as FrameOf<'BATCH'>
    const out: IncomingMessage[] = []
    for (const w of f.msgs) {
      if (KIND_CODES[w.kind] === 'receipt') {
        if (mode === 'peek') this.ackSeq(w.seq)
        const r = this.receiptFromMessage(w)
        if (r !== undefined) this.emit('receipt', r)
        continue
      }
      out.push(this.toIncoming(w))
    }
    return out
  }

  /** Acknowledge a message: the server removes it and tells its sender 200. */
  ack(seq: number): void {
    this.ackSeq(seq)
  }

  /** Mark a message read (before acknowledging it) so a sender that asked gets a read receipt (210). */
  markRead(seq: number): void {
    this.writeFrame({ type: 'READ', corr: this.corrNext(), seq }, 'READ')
  }

  // ------------------------------------------------------------ requests to the server

  async whoami(): Promise<UserEntry> {
    const r = await this.op(Op.WHOAMI)
    return r.users[0] ?? { id: this.id, name: this.name, protocol: 'native', since: 0, lastSeen: 0 }
  }

  /** Who is online, sorted by name. */
  async who(): Promise<UserEntry[]> {
    return (await this.op(Op.WHO)).users
  }

  /**
   * When a user was last seen: `online` with its last request, or when its last session ended
   * (`lastSeen` 0: never). Rejects with SB_ERR_UNKNOWN_RECIPIENT for no such user (or one who blocked you).
   */
  async lastSeen(name: string): Promise<{ online: boolean; user: UserEntry }> {
    const r = await this.op(Op.LAST_SEEN, name)
    return { online: r.text === 'online', user: r.users[0]! }
  }

  /** Take a new name; the credential store follows. Rejects with SB_ERR_NAME_TAKEN / SB_ERR_NAME_INVALID. */
  async rename(newName: string): Promise<string> {
    const r = await this.op(Op.RENAME, newName)
    const previous = this.name
    this.name = r.text
    if (previous !== this.name) await this.saveCredentials(previous)
    return this.name
  }

  /** Subscribe to a topic (persistent). Resolves true if this was a new subscription. */
  async subscribe(topic: string): Promise<boolean> {
    return ((await this.op(Op.SUBSCRIBE, topic)).items[0]?.count ?? 0) > 0
  }

  async unsubscribe(topic: string): Promise<boolean> {
    return ((await this.op(Op.UNSUBSCRIBE, topic)).items[0]?.count ?? 0) > 0
  }

  /** Every topic with its number of subscribers. */
  async topics(): Promise<{ topic: string; subscribers: number }[]> {
    return (await this.op(Op.TOPICS)).items.map((i) => ({ topic: i.name, subscribers: i.count }))
  }

  async subscriptions(): Promise<string[]> {
    return (await this.op(Op.SUBSCRIPTIONS)).items.map((i) => i.name)
  }

  async block(name: string): Promise<{ id: number; name: string }> {
    const u = (await this.op(Op.BLOCK, name)).users[0]
    return { id: u?.id ?? 0, name: u?.name ?? name }
  }

  async unblock(name: string): Promise<{ id: number; name: string }> {
    const u = (await this.op(Op.UNBLOCK, name)).users[0]
    return { id: u?.id ?? 0, name: u?.name ?? name }
  }

  async blocked(): Promise<{ id: number; name: string }[]> {
    return (await this.op(Op.BLOCKED)).users.map((u) => ({ id: u.id, name: u.name }))
  }

  /** Receive 'presence' events (who comes and goes). */
  async watchPresence(on = true): Promise<void> {
    await this.op(Op.PRESENCE, on ? 'on' : 'off')
  }

  async stats(): Promise<Record<string, unknown>> {
    return JSON.parse((await this.op(Op.STATS)).text) as Record<string, unknown>
  }

  /** Delete this account: the name is released and its queue dropped. The client closes. */
  async deleteAccount(): Promise<void> {
    await this.op(Op.DELETE_ACCOUNT)
    try {
      await this.opts.credentials?.delete(this.serverKey, this.name)
    } catch {
      // best effort
    }
    this.state = 'closed'
    this.failEverything(new SwitchboardError('SB_ERR_CLOSED', 'the account was deleted'))
    this.conn?.close()
    this.emitClosed('deleted', 'the account was deleted')
  }

  // ------------------------------------------------------------ conversations (seed 003)

  /** Ask `user` for a direct conversation; resolves with its id. Answers come as 'conversation' events. */
  async requestConversation(user: Target): Promise<string> {
    const to = addressOf(user)
    const r = (await this.call(
      { type: 'CONV', corr: 0, action: ConvAction.REQUEST, convId: '', to, body: Buffer.alloc(0) },
      'CONV',
    )) as FrameOf<'RESULT'>
    return r.text
  }

  private conv(action: number, convId: string, body: Uint8Array | string = ''): void {
    this.writeFrame({ type: 'CONV', corr: this.corrNext(), action, convId, to: { kind: 'all' }, body: toBuffer(body) }, 'CONV')
  }

  accept(convId: string): void {
    this.conv(ConvAction.ACCEPT, convId)
  }

  decline(convId: string): void {
    this.conv(ConvAction.DECLINE, convId)
  }

  /** Say something in an open conversation (live, not stored). */
  say(convId: string, text: string | Uint8Array): void {
    this.conv(ConvAction.MESSAGE, convId, text)
  }

  closeConversation(convId: string): void {
    this.conv(ConvAction.CLOSE, convId)
  }

  // ------------------------------------------------------------ files (seed 004)

  /**
   * Upload a file with an optional text to a user, a topic or ALL. Chunks are streamed with backpressure
   * (never held whole). Resolves when the server accepted the file message.
   */
  async sendFile(
    to: Target,
    source: UploadSource,
    opts: SendOptions & { text?: string; chunkBytes?: number; onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<SendResult> {
    const msgId = opts.msgId ?? this.ids.next()
    let flags = SendFlag.IDEMPOTENT
    if (opts.receipt ?? true) flags |= SendFlag.RECEIPT
    if (opts.readReceipt) flags |= SendFlag.READ_RECEIPT
    const begin = (await this.call(
      {
        type: 'FILE_BEGIN',
        corr: 0,
        msgId,
        to: addressOf(to),
        flags,
        size: source.size,
        sha256: source.sha256 ?? '',
        name: source.name,
        text: opts.text ?? '',
      },
      'FILE_BEGIN',
    )) as FrameOf<'RESULT'>
    const uploadId = begin.text
    const gen = this.gen
    const chunkBytes = opts.chunkBytes ?? 64 * 1024
    let sent = 0
    opts.onProgress?.({ bytes: 0, total: source.size })
    try {
      for await (const chunk of source.chunks) {
        for (let off = 0; off < chunk.length; off += chunkBytes) {
          const part = chunk.subarray(off, Math.min(chunk.length, off + chunkBytes))
          const conn = this.conn
          if (conn === undefined || gen !== this.gen)
            throw new SwitchboardError('SB_ERR_DISCONNECTED', 'the connection was lost during the upload; send the file again')
          this.writeFrame({ type: 'FILE_CHUNK', corr: this.corrNext(), uploadId, data: toBuffer(part) }, 'FILE_CHUNK')
          sent += part.length
          opts.onProgress?.({ bytes: sent, total: source.size })
          await conn.whenDrained(1024 * 1024)
        }
      }
    } catch (err) {
      if (this.conn !== undefined && gen === this.gen)
        this.writeFrame({ type: 'FILE_ABORT', corr: this.corrNext(), uploadId }, 'FILE_ABORT')
      throw err
    }
    if (gen !== this.gen)
      throw new SwitchboardError('SB_ERR_DISCONNECTED', 'the connection was lost during the upload; send the file again')
    const acc = (await this.request({ type: 'FILE_END', corr: 0, uploadId }, 'FILE_END')) as FrameOf<'ACCEPTED'>
    const names = Object.keys(SendStatusCode) as AcceptedStatus[]
    const r: SendResult = {
      msgId: acc.msgId,
      accepted: names.find((n) => SendStatusCode[n] === acc.status) ?? 'queued',
      seq: acc.seq,
      recipients: acc.recipients,
    }
    if (acc.fileId !== '') r.fileId = acc.fileId
    return r
  }

  /**
   * Download a file by id: `write` receives each chunk in order (await it for backpressure). Resolves with
   * the file's description once the last chunk arrived.
   */
  async download(
    fileId: string,
    write: (chunk: Uint8Array, offset: number) => void | Promise<void>,
    opts: { onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<FileDescriptor> {
    let info: FileDescriptor | undefined
    let got = 0
    let chain = Promise.resolve()
    let failed: unknown
    let finish!: () => void
    const done = new Promise<void>((r) => (finish = r))
    const stream = (f: Frame): void => {
      if (f.type === 'FILE_INFO') {
        info = { fileId: f.fileId, name: f.name, size: f.size, sha256: f.sha256 }
        opts.onProgress?.({ bytes: 0, total: f.size })
        if (f.size === 0) finish()
        return
      }
      if (f.type !== 'FILE_DATA') return
      const data = f.data
      const offset = f.offset
      const last = f.last !== 0
      chain = chain.then(async () => {
        if (failed !== undefined) return
        try {
          await write(data, offset)
        } catch (err) {
          failed = err
        }
        got += data.length
        opts.onProgress?.({ bytes: got, total: info?.size ?? got })
      })
      if (last) void chain.then(finish)
    }
    // The request stays registered (by corr) until the last FILE_DATA: FILE_INFO resolves nothing by itself.
    await this.ready()
    const corr = this.corrNext()
    const frame: Frame = { type: 'DOWNLOAD', corr, fileId, offset: 0, length: 0 }
    const outcome = new Promise<void>((resolve, reject) => {
      const r: PendingRequest = {
        op: 'DOWNLOAD',
        timer: undefined,
        resolve: () => resolve(),
        reject,
        stream: (f) => {
          stream(f)
        },
      }
      this.requests.set(corr, r)
      void done.then(() => {
        this.requests.delete(corr)
        resolve()
      })
    })
    this.conn?.write(encode(frame))
    await outcome
    await chain
    if (failed !== undefined) throw failed
    if (info === undefined) throw new SwitchboardError('SB_ERR_UNKNOWN_FILE', `no file ${fileId}`)
    return info
  }

  // ------------------------------------------------------------ closing

  /**
   * End the session: waits (up to timeoutMs) for sends not yet accepted, says BYE and closes. Sends still
   * waiting for a receipt settle without one.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.state === 'closed') return this.closedPromise
    const deadline = Date.now() + timeoutMs
    while (this.state === 'open' && [...this.sends.values()].some((p) => !p.accepted) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    const was = this.state
    this.state = 'closed'
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    for (const p of [...this.sends.values()]) {
      if (p.accepted && p.result) this.settleSend(p, p.result)
      else
        this.settleSend(
          p,
          undefined,
          new SwitchboardError('SB_ERR_CLOSED', 'the client was closed before the server accepted the message'),
        )
    }
    this.failEverything(new SwitchboardError('SB_ERR_CLOSED', 'the client was closed'))
    const conn = this.conn
    if (conn !== undefined && was === 'open') {
      conn.write(encode({ type: 'BYE', corr: this.corrNext() }))
      conn.close()
      const t = setTimeout(() => conn.destroy(), 1000)
      unref(t)
    } else conn?.destroy()
    this.emit('closed', { reason: 'ended', text: 'closed by the client' })
    this.finish()
    if (conn === undefined) return
  }
}

export { ALL_ID }
