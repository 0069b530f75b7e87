/**
 * Seed 003 gateway: the original server's REP and PUB sockets onto the core. Choices:
 * docs/protocol/p003.md "Switchboard gateway".
 *
 * - `reg <name>` claims a tokenless session for the name. The session has no connection of its own: its sink
 *   publishes on PUB under the user's SUB prefix `@name@`, and acknowledges what it published. It ends when
 *   the broker's reaper finds it idle (no request from that name for idleTimeoutMs) — then mail waits in the
 *   user's queue and is published when the name registers again — or when the name registers again.
 * - Two endpoints from the pool per registration, given back when the session ends and handed out again.
 * - `;; target De: name\ntext`: a user called `target` gets it as direct mail; any other target is a topic.
 * - Topics: 003 subscriptions are SUB filters the server never hears of, so every topic mail is published
 *   as `@topic@ De: name\ntext`, whoever sent it. A bridge session (BRIDGE_NAME) subscribes in the core to
 *   every topic there is (rescanned every topicScanMs) and to every topic a 003 client mails, and publishes
 *   what it receives. Native subscribers of the topic get their durable copies as usual.
 * - `# me target addr` is published as `@target@ pedido_conversa me addr` (then peer to peer, as in the
 *   original); a target online through another protocol also gets a conversation request from the core.
 */
import { Publisher, Reply } from 'zeromq'
import type { Broker } from '../../core/broker.js'
import { isBrokerError } from '../../core/errors.js'
import type { Session } from '../../core/session.js'
import { ALL_ID, type CloseReason, type Outbound, type SessionSink } from '../../core/types.js'
import { FloodGuard, declineConversation, keepSessionAlive, messageText } from '../gateway-net.js'
import { EMPTY_REPLY, conversationPublication, isValidName, mailPublication, parseRequest, registerReply } from './codec.js'

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
}

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
  readonly pub: Publisher
  readonly rep: Reply
  pubPort = 0
  repPort = 0
  private readonly users = new Map<string, ZmqUser>()
  private readonly free: number[] = []
  private readonly bridge: TopicBridge
  private pubChain: Promise<void> = Promise.resolve()
  private scanTimer: NodeJS.Timeout | undefined
  private stopBridgeKeepAlive: (() => void) | undefined
  private closed = false
  private loop: Promise<void> = Promise.resolve()

  constructor(
    readonly broker: Broker,
    readonly opts: P003GatewayOptions,
  ) {
    const [lo, hi] = opts.endpointPorts
    for (let p = lo; p <= hi; p++) this.free.push(p)
    this.pub = new Publisher({ linger: 0 })
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
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearInterval(this.scanTimer)
    this.stopBridgeKeepAlive?.()
    if (this.bridge.session !== undefined) this.broker.detach(this.bridge.session)
    for (const u of [...this.users.values()]) if (u.session !== undefined) this.broker.detach(u.session)
    this.rep.close()
    await this.loop.catch(() => undefined)
    await this.pubChain.catch(() => undefined)
    this.pub.close()
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
    if (!isValidName(name)) return refusal(`the name "${name}" is not valid`)
    const old = this.users.get(name)
    if (old?.session !== undefined) {
      if (!this.allowed(old)) return refusal('too many requests')
      // The same name registering again (a restarted client): the new registration replaces the old one.
      this.broker.end(old.session, 'replaced', 'registered again')
    }
    if (this.free.length < 2) {
      this.broker.log.warn({ name }, 'p003: endpoint pool exhausted')
      return refusal('no free endpoints; try again later')
    }
    const u = new ZmqUser(this, name, this.opts.joinDelayMs, this.opts.floodRate)
    u.endpoints = [this.free.shift()!, this.free.shift()!]
    this.users.set(name, u)
    try {
      u.claimed(this.broker, await this.broker.claim(name, PROTOCOL, u))
    } catch (err) {
      this.released(u)
      const why = isBrokerError(err) ? err.message : 'internal error'
      this.broker.log.warn({ name }, `p003: registration refused: ${why}`)
      return refusal(why)
    }
    const [a, b] = u.endpoints.map((p) => `tcp://${this.opts.endpointHost}:${p}`)
    this.broker.log.info({ name, endpoints: u.endpoints }, 'p003: registered')
    return registerReply(a!, b!)
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
    if (this.users.get(u.name) === u) this.users.delete(u.name)
    this.free.push(...u.endpoints)
    u.endpoints = []
  }

  /** For tests and metrics. */
  get freeEndpoints(): number {
    return this.free.length
  }
}

function refusal(why: string): string {
  // Not two words, so a client parsing "<addrA> <addrB>" can tell it is no address pair.
  return `ERROR ${why}`
}

function portOf(endpoint: string | null): number {
  const m = /:(\d+)$/.exec(endpoint ?? '')
  return m ? Number(m[1]) : 0
}
