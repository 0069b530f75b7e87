/**
 * The session's life: open a connection and log in (or register), lose it, reconnect with backoff and the
 * token, and end for good — with the reason the server gave when it gave one. The frames themselves are
 * the protocol handler's (protocol.ts).
 */
import { PROTOCOL_VERSION, SessionFlag, type Frame, type FrameOf } from '../protocols/native/frames.js'
import type { Connection, Connector } from './connection.js'
import { Heartbeat } from './heartbeats.js'
import type { Protocol } from './protocol.js'
import { SwitchboardError, type ClientEvents, type ConnectOptions, type ReconnectingEvent } from './types.js'
import type { Emitter } from './util.js'

/** Close reasons after which reconnecting would be wrong: someone meant it (a revoked device's token is refused). */
const FINAL_CLOSE = new Set(['replaced', 'deleted', 'ended', 'revoked'])

/** The delay before reconnect attempt `attempt` (1, 2 …): doubling from the first, capped, with jitter. */
export function backoffDelay(attempt: number, initialDelayMs = 100, maxDelayMs = 5000, random = Math.random): number {
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt - 1, 16))
  return Math.round(base * (0.5 + random() / 2))
}

export class Reconnector {
  readonly heartbeat: Heartbeat
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined
  private finished = false
  private resentOnOpen = 0
  /** What the server said when it ended the session this reconnect cycle is repairing. */
  private cause: { reason: string; text: string } | undefined
  private resolveClosed!: () => void
  /** Resolves when the client is closed for good. */
  readonly closed: Promise<void>

  constructor(
    private readonly opts: ConnectOptions,
    private readonly connector: Connector,
    readonly serverKey: string,
    private readonly protocol: Protocol,
    private readonly events: Emitter<ClientEvents>,
  ) {
    this.heartbeat = new Heartbeat(protocol)
    this.closed = new Promise((r) => (this.resolveClosed = r))
  }

  /** Open a connection and say LOGIN (with a token) or REGISTER; resolves once the server said WELCOME. */
  async open(): Promise<void> {
    const p = this.protocol
    p.state = 'connecting'
    const gen = p.begin()
    let conn: Connection
    try {
      conn = await this.connector({
        onData: (chunk) => {
          if (gen === p.gen) p.onData(chunk)
        },
        onClose: (err) => {
          if (gen === p.gen) this.lost(err)
        },
      })
    } catch (err) {
      throw new SwitchboardError('SB_ERR_CONNECT', `cannot reach ${this.serverKey}: ${(err as Error).message}`, undefined, {
        cause: err,
      })
    }
    if ((p.state as string) === 'closed') {
      conn.destroy()
      throw new SwitchboardError('SB_ERR_CLOSED', 'the client was closed')
    }
    p.conn = conn
    p.lastRx = Date.now()
    const self = p.self
    const flags = this.opts.mode === 'poll' ? SessionFlag.POLL : 0
    const login = flags | (this.opts.sendOnly === true ? SessionFlag.SEND_ONLY : 0)
    // With a token: that device. Else with a password (once: the new device's token is kept for reconnects).
    const password = self.token === '' ? this.opts.password : undefined
    const hello: Frame =
      self.token !== ''
        ? {
            type: 'LOGIN',
            corr: 0,
            version: PROTOCOL_VERSION,
            flags: login,
            id: self.id,
            name: self.id === 0 ? self.name : '',
            token: self.token,
          }
        : password !== undefined
          ? {
              type: 'LOGIN',
              corr: 0,
              version: PROTOCOL_VERSION,
              flags: login | SessionFlag.PASSWORD,
              id: 0,
              name: self.name,
              token: password,
            }
          : { type: 'REGISTER', corr: 0, version: PROTOCOL_VERSION, flags, name: self.name }
    let welcome: FrameOf<'WELCOME'>
    try {
      welcome = (await p.request(hello, hello.type, true)) as FrameOf<'WELCOME'>
    } catch (err) {
      conn.destroy()
      throw err
    }
    // A new token (a registration or a new device) is saved.
    const registered = welcome.token !== ''
    const previousName = self.name
    self.id = welcome.id
    self.name = welcome.name
    if (welcome.token !== '') self.token = welcome.token
    self.server = welcome.server
    if (registered || previousName !== welcome.name) await this.saveCredentials(previousName)
    p.state = 'open'
    this.heartbeat.start(this.opts.heartbeatMs ?? (welcome.heartbeatMs > 0 ? welcome.heartbeatMs : 30_000))
    this.resentOnOpen = p.opened(gen)
  }

  async saveCredentials(previousName?: string): Promise<void> {
    const self = this.protocol.self
    try {
      await this.opts.credentials?.set(this.serverKey, { id: self.id, name: self.name, token: self.token }, previousName)
    } catch {
      // Not being able to remember a token must not break the session; the caller still has client.token.
    }
  }

  /** The connection is gone: reconnect, unless the client is closing or the server meant it. */
  private lost(err?: Error): void {
    const p = this.protocol
    this.heartbeat.stop()
    p.dropped(
      new SwitchboardError('SB_ERR_DISCONNECTED', `the connection to ${this.serverKey} was lost${err ? `: ${err.message}` : ''}`),
    )
    if (p.state === 'closed') {
      this.finish()
      return
    }
    if (p.state === 'connecting') return // open() reports it to connect()
    const why = p.closeReason
    const rc = this.opts.reconnect ?? true
    if (rc === false || (why !== undefined && FINAL_CLOSE.has(why.reason))) {
      p.state = 'closed'
      p.failEverything(
        new SwitchboardError(
          'SB_ERR_CLOSED',
          why ? `session ended: ${why.reason}${why.text ? ` (${why.text})` : ''}` : 'the connection was lost',
        ),
      )
      this.end(why?.reason ?? 'disconnected', why?.text ?? err?.message ?? '')
      return
    }
    p.state = 'reconnecting'
    this.cause = why
    this.schedule(1, err)
  }

  private schedule(attempt: number, err?: Error): void {
    const p = this.protocol
    const rc = typeof this.opts.reconnect === 'object' ? this.opts.reconnect : {}
    if (rc.maxAttempts !== undefined && attempt > rc.maxAttempts) {
      p.state = 'closed'
      p.failEverything(
        new SwitchboardError('SB_ERR_CONNECT', `gave up reconnecting to ${this.serverKey} after ${attempt - 1} attempts`),
      )
      this.end('unreachable', err?.message ?? '')
      return
    }
    const delayMs = backoffDelay(attempt, rc.initialDelayMs, rc.maxDelayMs)
    const ev: ReconnectingEvent = { attempt, delayMs }
    if (err !== undefined) ev.error = err
    if (this.cause !== undefined) {
      ev.reason = this.cause.reason
      ev.text = this.cause.text
    }
    this.events.emit('reconnecting', ev)
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      if (p.state === 'closed') return
      this.open().then(
        () => {
          this.cause = undefined
          this.events.emit('reconnected', { attempts: attempt, resent: this.resentOnOpen })
        },
        (e: unknown) => {
          if (p.state === 'closed') return
          const se = e instanceof SwitchboardError ? e : new SwitchboardError('SB_ERR_CONNECT', String(e))
          p.conn = undefined
          // Our token no longer works (the account was deleted): retrying cannot help.
          if (se.code === 'SB_ERR_AUTH') {
            p.state = 'closed'
            p.failEverything(se)
            this.end('auth', se.message)
            return
          }
          p.state = 'reconnecting'
          this.schedule(attempt + 1, se)
        },
      )
    }, delayMs)
  }

  /** Closed for good: tell the listeners why, stop the timers, resolve `closed`. */
  end(reason: string, text: string): void {
    this.events.emit('closed', { reason, text })
    this.finish()
  }

  finish(): void {
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer)
    this.reconnectTimer = undefined
    if (this.finished) return
    this.finished = true
    this.heartbeat.stop()
    this.resolveClosed()
  }
}
