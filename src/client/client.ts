/**
 * The transports, imported once: a dynamic import per connect costs a module resolution each time (under a loader
 * hook such as tsx's, a round trip to the loader's thread), which paced a crowd of connects at ~1 ms apiece.
 */
const transports: {
  tcp?: Promise<typeof import('./tcp.js')>
  ws?: Promise<typeof import('./ws-transport.js')>
} = {}

/**
 * The TypeScript SDK over the native protocol (docs/protocol/native.md, src/protocols/native/frames.ts):
 * the public API class. Transport-agnostic: it reads and writes frames over a `Connection` (TCP/TLS in
 * Node, WebSocket anywhere), and imports nothing from Node here, so the same code runs in a browser (with a
 * Buffer polyfill, which the codec needs).
 *
 * The rooms behind it, after nats.js: types.ts (the public types), protocol.ts (frames in, events out;
 * pending requests and sends), reconnect.ts and heartbeats.ts (the session's life), conversations.ts and
 * files.ts (seed 003 and 004 features). This class wires them and owns nothing else.
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
import { ALL_ID, type Address } from '../core/types.js'
import { encode } from '../protocols/native/codec.js'
import { ConvAction, Op, SendFlag, type FrameOf } from '../protocols/native/frames.js'
import { kindOf, MESSAGE_KINDS } from '../schema/message.js'
import type { Connector } from './connection.js'
import { requestConversation, conversationAction } from './conversations.js'
import { download, sendFile, type SendFileOptions } from './files.js'
import { Protocol, type PendingSend } from './protocol.js'
import { Reconnector } from './reconnect.js'
import {
  MsgIdGenerator,
  SwitchboardError,
  type ClientEvents,
  type ConnectOptions,
  type DeviceInfo,
  type FileDescriptor,
  type HistoryPage,
  type HistoryQuery,
  type IncomingMessage,
  type SendOptions,
  type SendResult,
  type Target,
  type TransferProgress,
  type UploadSource,
  type UserEntry,
} from './types.js'
import { addressOf, Emitter, toBuffer, unref, type Listener } from './util.js'

export type { Connection, ConnectionHandlers, Connector } from './connection.js'
export * from './types.js'

export class SwitchboardClient {
  readonly mode: 'push' | 'poll'
  /** Key of this server in the credential store: host:port or the URL. */
  readonly serverKey: string

  private readonly opts: ConnectOptions
  private readonly events = new Emitter<ClientEvents>()
  private readonly ids = new MsgIdGenerator()
  private readonly protocol: Protocol
  private readonly link: Reconnector

  private constructor(opts: ConnectOptions, connector: Connector, serverKey: string) {
    this.opts = opts
    this.mode = opts.mode ?? 'push'
    this.serverKey = serverKey
    this.protocol = new Protocol(opts, this.events, { id: 0, name: opts.name, token: '', server: '' }, (previous) => {
      void this.link.saveCredentials(previous)
    })
    this.link = new Reconnector(opts, connector, serverKey, this.protocol, this.events)
  }

  /** This user's id. */
  get id(): number {
    return this.protocol.self.id
  }
  set id(v: number) {
    this.protocol.self.id = v
  }
  /** This user's name (it follows renames). */
  get name(): string {
    return this.protocol.self.name
  }
  set name(v: string) {
    this.protocol.self.name = v
  }
  /** The token that logs this user in again. */
  get token(): string {
    return this.protocol.self.token
  }
  set token(v: string) {
    this.protocol.self.token = v
  }
  /** The server's name and version, from WELCOME. */
  get server(): string {
    return this.protocol.self.server
  }
  set server(v: string) {
    this.protocol.self.server = v
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
      const { wsConnector } = await (transports.ws ??= import('./ws-transport.js'))
      connector = wsConnector({ url: opts.url, WebSocket: opts.WebSocket, connectTimeoutMs: opts.connectTimeoutMs })
      serverKey = opts.url
    } else {
      // Loaded on demand so that a browser bundle that uses `url` never pulls node:net in.
      const { tcpConnector } = await (transports.tcp ??= import('./tcp.js'))
      const host = opts.host ?? '127.0.0.1'
      const port = opts.port ?? 7070
      connector = tcpConnector({ host, port, tls: opts.tls, connectTimeoutMs: opts.connectTimeoutMs })
      serverKey = `${host}:${port}`
    }
    const c = new SwitchboardClient(opts, connector, serverKey)
    // A password makes a new device (open() logs in with it): the credential store is not asked.
    const known =
      opts.token !== undefined
        ? { id: opts.id ?? 0, name: opts.name, token: opts.token }
        : opts.register === true || opts.password !== undefined
          ? undefined
          : await opts.credentials?.get(serverKey, opts.name)
    if (known !== undefined) {
      c.id = known.id
      c.token = known.token
    } else if (opts.register === false && opts.password === undefined) {
      throw new SwitchboardError(
        'SB_ERR_NOT_LOGGED_IN',
        `no token known for "${opts.name}" on ${serverKey}: register first or pass a token`,
      )
    }
    try {
      await c.link.open()
    } catch (err) {
      c.protocol.state = 'closed'
      throw err
    }
    return c
  }

  // ------------------------------------------------------------ events

  on<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    this.events.on(event, fn)
    this.protocol.releaseHeld(event)
    return this
  }

  off<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    this.events.off(event, fn)
    return this
  }

  once<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): this {
    const wrap: Listener<ClientEvents[E]> = (ev) => {
      this.off(event, wrap)
      fn(ev)
    }
    return this.on(event, wrap)
  }

  /** True while a session is open (not reconnecting, not closed). */
  get connected(): boolean {
    return this.protocol.state === 'open'
  }

  /** Resolves when the client is closed for good. */
  get closed(): Promise<void> {
    return this.link.closed
  }

  /** A fresh msgId, for a caller that wants to know it before send() settles (pass it as SendOptions.msgId). */
  nextMsgId(): number {
    return this.ids.next()
  }

  // ------------------------------------------------------------ messaging
  /**
   * Send a text. To a user by name (a string), or to `{ kind: 'all' }` / `'ALL'`, `{ kind: 'topic', topic }`,
   * `{ kind: 'user', id }`, `'SERVER'`. Settles with the first receipt for a direct message when one is
   * wanted (200 delivered, 300 not yet, 202 stored), else with what the server said on accepting it.
   * Rejects with a SwitchboardError naming the code (and the limit) when the server refuses it.
   * While reconnecting, the send waits and goes out after the login.
   */
  send(to: Target, text: string | Uint8Array, opts: SendOptions = {}): Promise<SendResult> {
    if (this.protocol.state === 'closed') return Promise.reject(new SwitchboardError('SB_ERR_CLOSED', 'the client is closed'))
    const address = addressOf(to)
    const msgId = opts.msgId ?? this.ids.next()
    const transient = opts.transient ?? false
    // A transient message is never stored: nothing to dedupe and no receipt to wait for.
    const idempotent = !transient && (opts.idempotent ?? true)
    const wantReceipt = !transient && (opts.receipt ?? true)
    let flags = 0
    if (wantReceipt) flags |= SendFlag.RECEIPT
    if (opts.readReceipt && !transient) flags |= SendFlag.READ_RECEIPT
    if (idempotent) flags |= SendFlag.IDEMPOTENT
    if (transient) flags |= SendFlag.TRANSIENT
    return new Promise<SendResult>((resolve, reject) => {
      const p: PendingSend = {
        msgId,
        fields: {
          msgId,
          to: address,
          kind: MESSAGE_KINDS.text.code,
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
        onAccepted: opts.onAccepted,
      }
      this.protocol.sends.set(msgId, p)
      this.protocol.writeSend(p)
    })
  }

  /** Sends not yet settled (waiting for ACCEPTED or a receipt). */
  get pendingSends(): number {
    return this.protocol.sends.size
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
    void this.link.closed.then(end)
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
    const f = (await this.protocol.call(
      { type: 'TAKE', corr: 0, max, mode: mode === 'peek' ? 1 : 0, waitMs },
      'TAKE',
    )) as FrameOf<'BATCH'>
    const out: IncomingMessage[] = []
    for (const w of f.msgs) {
      if (kindOf(w.kind) === 'receipt') {
        if (mode === 'peek') this.protocol.ackSeq(w.seq)
        const r = this.protocol.receiptFromMessage(w)
        if (r !== undefined) this.events.emit('receipt', r)
        continue
      }
      out.push(this.protocol.toIncoming(w))
    }
    return out
  }

  /**
   * Acknowledge a message: this device has it (it is not handed it again); the first of the user's devices to
   * acknowledge it tells its sender 200.
   */
  ack(seq: number): void {
    this.protocol.ackSeq(seq)
  }

  /**
   * Mark a message of this user's log read, so a sender that asked gets a read receipt (210, once) and the
   * user's other devices a 'read' event.
   */
  markRead(seq: number): void {
    this.protocol.writeFrame({ type: 'READ', corr: this.protocol.corrNext(), seq }, 'READ')
  }

  /**
   * A page of this user's history, newest first: a conversation with a user (both directions: sent copies have
   * `sent` true), a topic, or everything. Page back with `before` = the last message's seq while `more`.
   * @example let p = await c.history({ with: 'bob', limit: 20 }); if (p.more) p = await c.history({ with: 'bob', before: p.messages.at(-1)!.seq })
   */
  async history(q: HistoryQuery = {}): Promise<HistoryPage> {
    const w = q.with
    const address: Address =
      w === undefined
        ? { kind: 'all' }
        : typeof w === 'number'
          ? { kind: 'user', id: w }
          : typeof w === 'string'
            ? addressOf(w)
            : { kind: 'topic', topic: w.topic }
    const limit = Math.max(1, Math.min(q.limit ?? 50, 256))
    const f = (await this.protocol.call(
      { type: 'HISTORY', corr: 0, with: address, before: q.before ?? 0, limit },
      'HISTORY',
    )) as FrameOf<'HISTORY_PAGE'>
    return { messages: f.msgs.map((m) => this.protocol.toIncoming(m)), more: f.more !== 0 }
  }

  // ------------------------------------------------------------ devices and the password

  /**
   * Set the password (so that `connect({ name, password })` can make new devices), change it (with `current`),
   * or clear it (null). Rejects with SB_ERR_PASSWORD_INVALID (8 … 256 bytes) or SB_ERR_AUTH (wrong current one).
   */
  async setPassword(password: string | null, current?: string): Promise<void> {
    await this.protocol.op(Op.PASSWORD, JSON.stringify(current === undefined ? { password } : { password, current }))
  }

  /** This user's devices, oldest first. */
  async devices(): Promise<DeviceInfo[]> {
    return JSON.parse((await this.protocol.op(Op.DEVICES)).text) as DeviceInfo[]
  }

  /**
   * Revoke a device: its token stops working and its sessions end (CLOSING revoked). Revoking this client's own
   * device closes this client. Rejects with SB_ERR_UNKNOWN_DEVICE.
   */
  async revokeDevice(id: number): Promise<void> {
    await this.protocol.op(Op.REVOKE, String(id))
  }

  // ------------------------------------------------------------ requests to the server

  async whoami(): Promise<UserEntry> {
    const r = await this.protocol.op(Op.WHOAMI)
    return r.users[0] ?? { id: this.id, name: this.name, protocol: 'native', since: 0, lastSeen: 0 }
  }

  /** Who is online, sorted by name. */
  async who(): Promise<UserEntry[]> {
    // The legacy gateways carry no token, and claim only names that have none: their sessions are the tokenless ones.
    return (await this.protocol.op(Op.WHO)).users.map((u) => (/^p00[1-4]$/.test(u.protocol) ? { ...u, tokenless: true } : u))
  }

  /**
   * When a user was last seen: `online` with its last request, or when its last session ended
   * (`lastSeen` 0: never). Rejects with SB_ERR_UNKNOWN_RECIPIENT for no such user (or one who blocked you).
   */
  async lastSeen(name: string): Promise<{ online: boolean; user: UserEntry }> {
    const r = await this.protocol.op(Op.LAST_SEEN, name)
    return { online: r.text === 'online', user: r.users[0]! }
  }

  /** Take a new name; the credential store follows. Rejects with SB_ERR_NAME_TAKEN / SB_ERR_NAME_INVALID. */
  async rename(newName: string): Promise<string> {
    const r = await this.protocol.op(Op.RENAME, newName)
    const previous = this.name
    this.name = r.text
    if (previous !== this.name) await this.link.saveCredentials(previous)
    return this.name
  }

  /** Subscribe to a topic (persistent). Resolves true if this was a new subscription. */
  async subscribe(topic: string): Promise<boolean> {
    return ((await this.protocol.op(Op.SUBSCRIBE, topic)).items[0]?.count ?? 0) > 0
  }

  async unsubscribe(topic: string): Promise<boolean> {
    return ((await this.protocol.op(Op.UNSUBSCRIBE, topic)).items[0]?.count ?? 0) > 0
  }

  /** Every topic with its number of subscribers. */
  async topics(): Promise<{ topic: string; subscribers: number }[]> {
    return (await this.protocol.op(Op.TOPICS)).items.map((i) => ({ topic: i.name, subscribers: i.count }))
  }

  async subscriptions(): Promise<string[]> {
    return (await this.protocol.op(Op.SUBSCRIPTIONS)).items.map((i) => i.name)
  }

  async block(name: string): Promise<{ id: number; name: string }> {
    const u = (await this.protocol.op(Op.BLOCK, name)).users[0]
    return { id: u?.id ?? 0, name: u?.name ?? name }
  }

  async unblock(name: string): Promise<{ id: number; name: string }> {
    const u = (await this.protocol.op(Op.UNBLOCK, name)).users[0]
    return { id: u?.id ?? 0, name: u?.name ?? name }
  }

  async blocked(): Promise<{ id: number; name: string }[]> {
    return (await this.protocol.op(Op.BLOCKED)).users.map((u) => ({ id: u.id, name: u.name }))
  }

  /** Receive 'presence' events (who comes and goes). */
  async watchPresence(on = true): Promise<void> {
    await this.protocol.op(Op.PRESENCE, on ? 'on' : 'off')
  }

  async stats(): Promise<Record<string, unknown>> {
    return JSON.parse((await this.protocol.op(Op.STATS)).text) as Record<string, unknown>
  }

  /** Delete this account: the name is released and its queue dropped. The client closes. */
  async deleteAccount(): Promise<void> {
    await this.protocol.op(Op.DELETE_ACCOUNT)
    try {
      await this.opts.credentials?.delete(this.serverKey, this.name)
    } catch {
      // best effort
    }
    this.protocol.state = 'closed'
    this.protocol.failEverything(new SwitchboardError('SB_ERR_CLOSED', 'the account was deleted'))
    this.protocol.conn?.close()
    this.link.end('deleted', 'the account was deleted')
  }

  // ------------------------------------------------------------ conversations (seed 003)

  /** Ask `user` for a direct conversation; resolves with its id. Answers come as 'conversation' events. */
  requestConversation(user: Target): Promise<string> {
    return requestConversation(this.protocol, user)
  }

  accept(convId: string): void {
    conversationAction(this.protocol, ConvAction.ACCEPT, convId)
  }

  decline(convId: string): void {
    conversationAction(this.protocol, ConvAction.DECLINE, convId)
  }

  /** Say something in an open conversation (live, not stored). */
  say(convId: string, text: string | Uint8Array): void {
    conversationAction(this.protocol, ConvAction.MESSAGE, convId, text)
  }

  closeConversation(convId: string): void {
    conversationAction(this.protocol, ConvAction.CLOSE, convId)
  }

  // ------------------------------------------------------------ files (seed 004)

  /**
   * Upload a file with an optional text to a user, a topic or ALL. Chunks are streamed with backpressure
   * (never held whole). Resolves when the server accepted the file message.
   */
  sendFile(to: Target, source: UploadSource, opts: SendFileOptions = {}): Promise<SendResult> {
    return sendFile(this.protocol, opts.msgId ?? this.ids.next(), to, source, opts)
  }

  /**
   * Download a file by id: `write` receives each chunk in order (await it for backpressure). Resolves with
   * the file's description once the last chunk arrived.
   */
  download(
    fileId: string,
    write: (chunk: Uint8Array, offset: number) => void | Promise<void>,
    opts: { onProgress?: (p: TransferProgress) => void } = {},
  ): Promise<FileDescriptor> {
    return download(this.protocol, fileId, write, opts)
  }

  // ------------------------------------------------------------ closing

  /**
   * End the session: waits (up to timeoutMs) for sends not yet accepted, says BYE and closes. Sends still
   * waiting for a receipt settle without one.
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.protocol.state === 'closed') return this.link.closed
    const deadline = Date.now() + timeoutMs
    while (this.protocol.state === 'open' && [...this.protocol.sends.values()].some((p) => !p.accepted) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10))
    const was = this.protocol.state
    this.protocol.state = 'closed'
    for (const p of [...this.protocol.sends.values()]) {
      if (p.accepted && p.result) this.protocol.settleSend(p, p.result)
      else
        this.protocol.settleSend(
          p,
          undefined,
          new SwitchboardError('SB_ERR_CLOSED', 'the client was closed before the server accepted the message'),
        )
    }
    this.protocol.failEverything(new SwitchboardError('SB_ERR_CLOSED', 'the client was closed'))
    const conn = this.protocol.conn
    if (conn !== undefined && was === 'open') {
      conn.write(encode({ type: 'BYE', corr: this.protocol.corrNext() }))
      conn.close()
      const t = setTimeout(() => conn.destroy(), 1000)
      unref(t)
    } else conn?.destroy()
    this.link.end('ended', 'closed by the client')
  }
}

export { ALL_ID }
