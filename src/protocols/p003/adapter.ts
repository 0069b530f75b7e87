/**
 * Seed 003 gateway: the original server's REP and PUB sockets onto the core. Choices:
 * docs/protocol/p003.md "Switchboard gateway".
 *
 * - `reg <name>` claims a tokenless session for the name. The session has no connection of its own: its sink
 *   publishes on PUB under the user's SUB prefix `@name@`, and acknowledges what it published.
 * - Liveness: PUB is an XPUB socket, so the server sees every SUB filter subscribed and unsubscribed (libzmq
 *   unsubscribes a peer's filters when its connection ends). While some SUB holds `@name@`, the client may
 *   still run: its session is kept alive and its endpoints stay its own. When the last `@name@` filter goes,
 *   the session ends after leaseGraceMs. A client that never subscribes falls back to the idle timeout.
 *   Then mail waits in the user's queue and is published when the name registers (or subscribes) again.
 * - Two endpoints from the pool per registration, given back when the session ends and handed out again
 *   only when a probe bind on this host shows nobody is still bound to them.
 * - A refused `reg` is answered with two bindable wildcard endpoints (`tcp://localhost:*`), which the
 *   original client survives, and the reason is published to `@name@` as mail from "server".
 * - `;; target De: name\ntext`: a user called `target` gets it as direct mail; any other target is a topic.
 * - Topics: 003 subscriptions are SUB filters the server never hears of, so every topic mail is published
 *   as `@topic@ De: name\ntext`, whoever sent it. A bridge session (BRIDGE_NAME) subscribes in the core to
 *   every topic there is (rescanned every topicScanMs) and to every topic a 003 client mails, and publishes
 *   what it receives. Native subscribers of the topic get their durable copies as usual.
 * - `# me target addr` is published as `@target@ pedido_conversa me addr` (then peer to peer, as in the
 *   original); a target online through another protocol also gets a conversation request from the core.
 */
import net from 'node:net'
import { Reply, XPublisher } from 'zeromq'
import type { Broker } from '../../core/broker.js'
import { isBrokerError } from '../../core/errors.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, type CloseReason, type Outbound, type SessionSink } from '../../core/types.js'
import { FloodGuard, declineConversation, keepSessionAlive, messageText } from '../gateway-net.js'
import {
  EMPTY_REPLY,
  conversationPublication,
  isValidName,
  mailPublication,
  parseRequest,
  prefixName,
  prefixesClash,
  registerReply,
} from './codec.js'

export const PROTOCOL = 'p003'
/** The core user that subscribes to topics on behalf of every 003 client. */
export const BRIDGE_NAME = 'zmq-topics'

export interface P003GatewayOptions {
  host: string
  /** 0 = ephemeral (tests). */
  pubPort: number
  repPort: number
  /** Inclusive range of ports handed out as `tcp://localhost:<port>` endpoints. */
  endpointPorts: [number, number]
  /** Hostname put in the endpoints handed out (the original says localhost). */
  endpointHost: string
  /** How often the bridge looks for new topics to subscribe to. */
  topicScanMs: number
  /** A freshly registered user's publications wait this long, so its SUB is connected (slow joiner). */
  joinDelayMs: number
  /** Requests per second per name before requests from it are refused. */
  floodRate: number
  /** REQ messages larger than this make libzmq drop the peer. */
  maxMessageBytes: number
  /** After the last SUB filter `@name@` goes, the session ends this much later (unless it comes back). */
  leaseGraceMs: number
  /** ZMTP heartbeat on PUB (0 = off): a subscriber that vanished without a FIN is dropped after 3 beats. */
  heartbeatMs: number
}

/** The sender name of the notices the gateway publishes itself (a refused registration). */
export const SERVER_SENDER = 'server'

/**
 * A 003 session's sink. The broker pushes nothing into it before claimed() has the session and has told the
 * broker it is ready (two-phase attach).
 */
abstract class ClaimedSink implements SessionSink {
  session: Session | undefined

  push(ev: Outbound): boolean {
    const s = this.session
    if (s === undefined || s.closed) return false
    this.pushTo(s, ev)
    return true
  }

  /** An event for the live session (published on PUB, never paused: backlog is PUB's). */
  protected abstract pushTo(s: Session, ev: Outbound): void

  /** claim() has returned the session: keep it, then let the broker push (what it held first). */
  claimed(broker: Broker, s: Session): Session {
    this.session = s
    broker.ready(s)
    return s
  }

  backlog(): number {
    return 0
  }

  abstract close(reason: CloseReason, text: string): void
}

/** One registered 003 name. */
class ZmqUser extends ClaimedSink {
  endpoints: number[] = []
  readyAt: number
  readonly flood: FloodGuard
  /** Set while a SUB filter `@name@` is held: keeps the session from the reaper. */
  stopKeepAlive: (() => void) | undefined
  /** Set while the last filter is gone: ends the session when it fires. */
  leaseTimer: NodeJS.Timeout | undefined

  constructor(
    readonly gw: P003Gateway,
    readonly name: string,
    joinDelayMs: number,
    floodRate: number,
  ) {
    super()
    this.readyAt = Date.now() + joinDelayMs
    this.flood = new FloodGuard(floodRate)
  }

  protected pushTo(s: Session, ev: Outbound): void {
    if (ev.type === 'message') {
      const m = ev.msg
      if (m.to === ALL_ID || m.kind === 'receipt' || m.kind === 'control') return // 003 has no room
      let text = messageText(m)
      if (m.topic !== undefined) text = `[${m.topic}] ${text}`
      this.gw.publish(mailPublication(s.user.name, m.fromName, text), this.readyAt, () => {
        if (m.seq !== 0) this.gw.ackQuietly(s, m.seq)
      })
    } else if (ev.type === 'receipt' && ev.seq !== 0)
      this.gw.ackQuietly(s, ev.seq) // 003 mail has no receipts
    // A request from another protocol would need the gateway to stand in as the peer: not bridged; say no.
    else if (ev.type === 'conversation') declineConversation(this.gw.broker, s, ev)
  }

  close(reason: CloseReason, text: string): void {
    this.gw.broker.log.debug({ name: this.name, reason, text }, 'p003: session ended')
    this.gw.released(this)
  }
}

/** The bridge's sink: every topic copy it receives is published under the topic's prefix. */
class TopicBridge extends ClaimedSink {
  readonly subscribed = new Set<string>()
  constructor(readonly gw: P003Gateway) {
    super()
  }
  protected pushTo(s: Session, ev: Outbound): void {
    if (ev.type === 'message') {
      const m = ev.msg
      if (m.to === ALL_ID) return
      if (m.topic !== undefined)
        this.gw.publish(mailPublication(m.topic, m.fromName, messageText(m)), 0, () => this.gw.ackQuietly(s, m.seq))
      else if (m.seq !== 0) this.gw.ackQuietly(s, m.seq) // direct mail to the bridge: nobody reads it
    } else if (ev.type === 'receipt' && ev.seq !== 0) this.gw.ackQuietly(s, ev.seq)
  }
  close(reason: CloseReason): void {
    this.gw.broker.log.warn({ reason }, 'p003: the topic bridge session ended')
    this.session = undefined
  }
}

export class P003Gateway {
  readonly pub: XPublisher
  readonly rep: Reply
  pubPort = 0
  repPort = 0
  private readonly users = new Map<string, ZmqUser>()
  /** SUB filters `@name@` held on PUB now, by name, with how many subscribers hold each. */
  private readonly subs = new Map<string, number>()
  /** Names registered through this gateway since it started (a returning filter reclaims one). */
  private readonly registeredNames = new Set<string>()
  private readonly free: number[] = []
  private readonly bridge: TopicBridge
  private pubChain: Promise<void> = Promise.resolve()
  private scanTimer: NodeJS.Timeout | undefined
  private stopBridgeKeepAlive: (() => void) | undefined
  private closed = false
  private loop: Promise<void> = Promise.resolve()
  private subLoop: Promise<void> = Promise.resolve()
  private subChain: Promise<void> = Promise.resolve()

  constructor(
    readonly broker: Broker,
    readonly opts: P003GatewayOptions,
  ) {
    const [lo, hi] = opts.endpointPorts
    for (let p = lo; p <= hi; p++) this.free.push(p)
    this.pub = new XPublisher({
      linger: 0,
      heartbeatInterval: opts.heartbeatMs,
      heartbeatTimeout: opts.heartbeatMs * 3,
    })
    // Every subscribe and unsubscribe, duplicates included, so that filters can be counted per subscriber.
    this.pub.verbosity = 'allSubsUnsubs'
    this.rep = new Reply({ linger: 0, maxMessageSize: opts.maxMessageBytes })
    this.bridge = new TopicBridge(this)
  }

  /** Names registered now. */
  get registered(): number {
    return this.users.size
  }

  async start(): Promise<void> {
    const host = this.opts.host === '0.0.0.0' ? '*' : this.opts.host
    const ep = (port: number) => `tcp://${host}:${port === 0 ? '*' : port}`
    await this.pub.bind(ep(this.opts.pubPort))
    await this.rep.bind(ep(this.opts.repPort))
    this.pubPort = portOf(this.pub.lastEndpoint)
    this.repPort = portOf(this.rep.lastEndpoint)
    try {
      const s = this.bridge.claimed(this.broker, await this.broker.claim(BRIDGE_NAME, PROTOCOL, this.bridge, { hidden: true }))
      this.stopBridgeKeepAlive = keepSessionAlive(this.broker, s)
      await this.scanTopics()
      this.scanTimer = setInterval(() => void this.scanTopics(), this.opts.topicScanMs)
      this.scanTimer.unref()
    } catch (err) {
      // Topic mail from 003 clients still goes out on PUB; mail from other protocols to topics does not.
      this.broker.log.error(
        { err: isBrokerError(err) ? err.message : err },
        `p003: the topic bridge "${BRIDGE_NAME}" could not start`,
      )
    }
    this.loop = this.serve()
    this.subLoop = this.watchSubscriptions()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.scanTimer)
    this.stopBridgeKeepAlive?.()
    if (this.bridge.session !== undefined) this.broker.detach(this.bridge.session)
    for (const u of [...this.users.values()]) {
      this.unhold(u)
      if (u.session !== undefined) this.broker.detach(u.session)
    }
    this.rep.close()
    await this.loop.catch(() => undefined)
    await this.pubChain.catch(() => undefined)
    this.pub.close()
    await this.subLoop.catch(() => undefined)
    await this.subChain.catch(() => undefined)
  }

  // ------------------------------------------------------------ REP

  private async serve(): Promise<void> {
    try {
      for await (const [msg] of this.rep) {
        let reply = EMPTY_REPLY
        try {
          reply = await this.request(msg ?? Buffer.alloc(0))
        } catch (err) {
          this.broker.log.error({ err }, 'p003: request failed')
        }
        if (this.closed) return
        await this.rep.send(reply)
      }
    } catch (err) {
      if (!this.closed) this.broker.log.error({ err }, 'p003: REP socket failed')
    }
  }

  /** One REQ message → the REP text. Never throws for bad input: the REQ socket must always get a reply. */
  private async request(msg: Buffer): Promise<string> {
    const req = parseRequest(msg)
    switch (req.kind) {
      case 'register':
        return this.register(req.name)
      case 'mail': {
        const u = await this.sender(req.from)
        if (u === undefined || !this.allowed(u)) return EMPTY_REPLY
        await this.mail(u.session!, req.target, req.text)
        return EMPTY_REPLY
      }
      case 'conversation': {
        const u = await this.sender(req.from)
        if (u === undefined || !this.allowed(u)) return EMPTY_REPLY
        if (!isValidName(req.target)) {
          this.broker.log.warn({ target: req.target }, 'p003: conversation request to an invalid name refused')
          return EMPTY_REPLY
        }
        // Peer to peer, as in the original: the target's client connects to the address itself.
        this.publish(conversationPublication(req.target, req.from, req.address), 0)
        const target = await this.broker.findUser({ name: req.target })
        const ts = target === undefined ? undefined : this.broker.sessionOf(target.id)
        if (ts !== undefined && ts.protocol !== PROTOCOL) {
          try {
            await this.broker.requestConversation(u.session!, { kind: 'user', id: target!.id })
          } catch (err) {
            this.broker.log.warn({ err: isBrokerError(err) ? err.message : err }, 'p003: conversation request not delivered')
          }
        }
        return EMPTY_REPLY
      }
      case 'unknown':
        if (/^\s*reg(\s|$)/.test(req.text)) {
          // "reg" with no name, or a name with blanks: the original client still expects two endpoints.
          const name = req.text.trim().slice(3).trim()
          this.broker.log.warn({ name }, 'p003: registration refused: not one word')
          return this.refusal(name, `the name "${name}" is not valid: one word, with no blanks`)
        }
        this.broker.log.warn(
          { bytes: msg.length, head: req.text.slice(0, 40) },
          'p003: unknown or malformed request; replying ""',
        )
        return EMPTY_REPLY
    }
  }

  private allowed(u: ZmqUser): boolean {
    if (u.flood.take()) return true
    this.broker.log.warn({ name: u.name }, `p003: flood: more than ${this.opts.floodRate} requests per second; request refused`)
    return false
  }

  private async register(name: string): Promise<string> {
    if (!isValidName(name)) return this.refusal(name, `the name "${name}" is not valid`)
    const old = this.users.get(name)
    if (old?.session !== undefined) {
      if (!this.allowed(old)) return this.refusal(name, 'too many requests')
      // The same name registering again (a restarted client): the new registration replaces the old one.
      this.broker.end(old.session, 'replaced', 'registered again')
    }
    for (const other of this.users.keys())
      if (prefixesClash(name, other)) {
        this.broker.log.warn({ name, other }, 'p003: registration refused: SUB prefix clash')
        return this.refusal(name, `the name "${name}" would receive the mail of "${other}" (or the reverse); choose another`)
      }
    const endpoints = await this.takeEndpoints()
    if (endpoints === undefined) {
      this.broker.log.warn({ name }, 'p003: endpoint pool exhausted')
      return this.refusal(name, 'no free endpoints; try again later')
    }
    const u = new ZmqUser(this, name, this.opts.joinDelayMs, this.opts.floodRate)
    u.endpoints = endpoints
    this.users.set(name, u)
    try {
      u.claimed(this.broker, await this.broker.claim(name, PROTOCOL, u))
    } catch (err) {
      this.released(u)
      const why = isBrokerError(err) ? err.message : 'internal error'
      this.broker.log.warn({ name }, `p003: registration refused: ${why}`)
      return this.refusal(name, why)
    }
    this.registeredNames.add(name)
    this.leaseChanged(u)
    const [a, b] = u.endpoints.map((p) => `tcp://${this.opts.endpointHost}:${p}`)
    this.broker.log.info({ name, endpoints: u.endpoints }, 'p003: registered')
    return registerReply(a!, b!)
  }

  /**
   * A refused `reg`. The original client binds its PULL socket on the second word of the reply and crashes on
   * anything else than an endpoint, so the reply is two wildcard endpoints (`tcp://localhost:*`: a port of the
   * system's choosing, never one of the pool's), and the reason goes to `@name@` as mail from "server", which
   * the client shows at `refresh`. A client written from the README can tell a refusal by the port `*`.
   */
  private refusal(name: string, why: string): string {
    if (name !== '' && !/\s/.test(name) && this.users.get(name)?.session === undefined)
      this.publish(mailPublication(name, SERVER_SENDER, `Registration refused: ${why}`), Date.now() + this.opts.joinDelayMs)
    const any = `tcp://${this.opts.endpointHost}:*`
    return registerReply(any, any)
  }

  /**
   * Two endpoints from the pool, least recently used first, skipping any port something on this host is
   * still bound to (a client whose session ended without our knowing that it quit): those go to the back.
   */
  private async takeEndpoints(): Promise<number[] | undefined> {
    const got: number[] = []
    const busy: number[] = []
    while (got.length < 2 && this.free.length > 0) {
      const port = this.free.shift()!
      if (await portIsFree(port)) got.push(port)
      else busy.push(port)
    }
    if (busy.length > 0) this.broker.log.warn({ ports: busy }, 'p003: endpoints still bound by someone; not handed out')
    this.free.push(...busy)
    if (got.length === 2) return got
    this.free.unshift(...got)
    return undefined
  }

  /**
   * The 003 user a request comes from. The original never checks the sender; Switchboard requires that the
   * name be a 003 session or claimable (tokenless and not online elsewhere), so nobody can mail as a native
   * user. An unregistered sender gets a session without endpoints.
   */
  private async sender(name: string): Promise<ZmqUser | undefined> {
    const known = this.users.get(name)
    if (known?.session !== undefined && !known.session.closed) {
      try {
        this.broker.touch(known.session)
      } catch {
        // rate-limited: the send below says so
      }
      return known
    }
    if (!isValidName(name)) {
      this.broker.log.warn({ name }, 'p003: request from an invalid name refused')
      return undefined
    }
    const u = new ZmqUser(this, name, 0, this.opts.floodRate)
    this.users.set(name, u)
    try {
      u.claimed(this.broker, await this.broker.claim(name, PROTOCOL, u))
      this.leaseChanged(u)
      return u
    } catch (err) {
      this.users.delete(name)
      this.broker.log.warn(
        { name, err: isBrokerError(err) ? err.message : err },
        'p003: request from a name that is not ours refused',
      )
      return undefined
    }
  }

  private async mail(s: Session, target: string, text: string): Promise<void> {
    const body = Buffer.from(text, 'utf8')
    try {
      if (!isValidName(target)) throw new Error(`invalid target "${target}"`)
      const user = await this.broker.findUser({ name: target })
      if (user !== undefined && user.id !== this.bridge.session?.user.id) {
        await this.broker.send(s, { to: { kind: 'user', id: user.id }, body })
        return
      }
      // Not a user: a topic. The bridge subscribes first, so the topic always has a subscriber and its
      // copy is what goes out on PUB (once, whoever sent it).
      if (await this.subscribeBridge(target)) await this.broker.send(s, { to: { kind: 'topic', topic: target }, body })
      else {
        this.publish(mailPublication(target, s.user.name, text), 0)
        await this.broker.send(s, { to: { kind: 'topic', topic: target }, body }).catch(() => undefined)
      }
    } catch (err) {
      this.broker.log.warn(
        { from: s.user.name, target, err: isBrokerError(err) ? err.message : String(err) },
        'p003: mail refused',
      )
    }
  }

  private async subscribeBridge(topic: string): Promise<boolean> {
    const b = this.bridge.session
    if (b === undefined || b.closed) return false
    if (this.bridge.subscribed.has(topic)) return true
    try {
      await this.broker.subscribe(b, topic)
      this.bridge.subscribed.add(topic)
      return true
    } catch (err) {
      this.broker.log.warn({ topic, err: isBrokerError(err) ? err.message : err }, 'p003: bridge could not subscribe')
      return false
    }
  }

  private async scanTopics(): Promise<void> {
    const b = this.bridge.session
    if (b === undefined || b.closed || this.closed) return
    try {
      for (const t of await this.broker.topicList()) if (isValidName(t.topic)) await this.subscribeBridge(t.topic)
    } catch (err) {
      this.broker.log.warn({ err }, 'p003: topic scan failed')
    }
  }

  // ------------------------------------------------------------ SUB filters (XPUB)

  /** The subscription messages XPUB passes up: byte 1 (subscribe) or 0 (unsubscribe), then the filter. */
  private async watchSubscriptions(): Promise<void> {
    try {
      for await (const [msg] of this.pub) {
        if (msg === undefined || msg.length < 1) continue
        const name = prefixName(msg.subarray(1))
        if (name === undefined) continue
        const n = (this.subs.get(name) ?? 0) + (msg[0] === 1 ? 1 : -1)
        if (n > 0) this.subs.set(name, n)
        else this.subs.delete(name)
        const subscribed = msg[0] === 1
        this.subChain = this.subChain
          .then(() => this.filterChanged(name, subscribed))
          .catch((err: unknown) => this.broker.log.warn({ err, name }, 'p003: subscription handling failed'))
      }
    } catch (err) {
      if (!this.closed) this.broker.log.error({ err }, 'p003: PUB socket failed')
    }
  }

  /** Whether the topic bridge follows the topic in the core (mail to it is accepted and published). */
  follows(topic: string): boolean {
    return this.bridge.subscribed.has(topic)
  }

  /** How many SUB sockets hold the filter `@name@` now. */
  subscribers(name: string): number {
    return this.subs.get(name) ?? 0
  }

  private async filterChanged(name: string, subscribed: boolean): Promise<void> {
    if (this.closed) return
    const u = this.users.get(name)
    if (u?.session !== undefined && !u.session.closed) return this.leaseChanged(u)
    if (!subscribed || this.subscribers(name) === 0) return
    if (this.registeredNames.has(name)) {
      // A client registered here earlier is listening again (e.g. it reconnected after its session ended):
      // a session without endpoints, so its mail is published to it again.
      await this.sender(name)
      return
    }
    // Not a user we know: a topic the client follows. The bridge follows it in the core, so that mail to
    // the topic from any protocol is accepted and published (the server never hears of 003 topics otherwise).
    const user = await this.broker.findUser({ name }).catch(() => undefined)
    if (user === undefined) await this.subscribeBridge(name)
  }

  /**
   * A 003 session's lease follows its filter: held (kept alive) while some SUB holds `@name@`; when the last
   * one goes, the session ends after leaseGraceMs unless the filter comes back. A session whose client never
   * subscribed is left to the broker's idle timeout, as before.
   */
  private leaseChanged(u: ZmqUser): void {
    const s = u.session
    if (s === undefined || s.closed) return
    if (this.subscribers(u.name) > 0) {
      clearTimeout(u.leaseTimer)
      u.leaseTimer = undefined
      u.stopKeepAlive ??= keepSessionAlive(this.broker, s)
      return
    }
    if (u.stopKeepAlive === undefined) return // never held: the idle timeout applies
    u.stopKeepAlive()
    u.stopKeepAlive = undefined
    u.leaseTimer = setTimeout(() => {
      u.leaseTimer = undefined
      if (this.subscribers(u.name) > 0 || s.closed) return
      this.broker.log.info({ name: u.name }, 'p003: the client is gone (no SUB filter left); session ended')
      this.broker.end(s, 'ended', 'the ZeroMQ client is gone')
    }, this.opts.leaseGraceMs)
    u.leaseTimer.unref()
  }

  private unhold(u: ZmqUser): void {
    u.stopKeepAlive?.()
    u.stopKeepAlive = undefined
    clearTimeout(u.leaseTimer)
    u.leaseTimer = undefined
  }

  // ------------------------------------------------------------ PUB

  /** Publish in order (a zeromq socket takes one send at a time), not before `notBefore` (ms epoch). */
  publish(text: string, notBefore: number, then?: () => void): void {
    this.pubChain = this.pubChain
      .then(async () => {
        const wait = notBefore - Date.now()
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        if (this.closed) return
        await this.pub.send(text)
        then?.()
      })
      .catch((err: unknown) => this.broker.log.warn({ err }, 'p003: publish failed'))
  }

  ackQuietly(s: Session, seq: number): void {
    if (seq === 0) return
    this.broker.ack(s, seq).catch((err: unknown) => {
      if (!s.closed) this.broker.log.warn({ err, seq }, 'p003: ack failed')
    })
  }

  /** A 003 session ended (reaped, replaced, shut down): its endpoints go back to the pool, at the end. */
  released(u: ZmqUser): void {
    this.unhold(u)
    if (this.users.get(u.name) === u) this.users.delete(u.name)
    this.free.push(...u.endpoints)
    u.endpoints = []
  }

  /** For tests and metrics. */
  get freeEndpoints(): number {
    return this.free.length
  }
}

/**
 * Whether nothing on this host listens on the port (IPv4 or IPv6 loopback): a ZeroMQ PULL bound to
 * `tcp://localhost:<port>` makes this bind fail with EADDRINUSE. Other errors (no IPv6) say nothing.
 */
async function portIsFree(port: number): Promise<boolean> {
  for (const host of ['127.0.0.1', '::1']) {
    const inUse = await new Promise<boolean>((resolve) => {
      const srv = net.createServer()
      srv.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'))
      srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(false)))
    })
    if (inUse) return false
  }
  return true
}

function portOf(endpoint: string | null): number {
  const m = /:(\d+)$/.exec(endpoint ?? '')
  return m ? Number(m[1]) : 0
}
