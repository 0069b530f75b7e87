/**
 * What every listener asks before it spends memory or a descriptor on a stranger (issue 13): one ListenerGuard
 * per server, shared by the native TCP listener, the WebSocket endpoint, the HTTP listener and the legacy TCP
 * gateways.
 *
 * - Connections per remote address, on every listener together (`maxConnectionsPerAddress`), and of those,
 *   connections that have not logged in yet (`maxUnauthenticatedPerAddress`).
 * - One rate for logins and registrations per remote address on every listener (`authRatePerSecond`, a token
 *   bucket with bursts of twice that).
 * - A reserve of file descriptors (`fdReserve`): when the process is that close to its limit, new legacy gateway
 *   connections are refused first, so the store, the native and the HTTP listeners keep working.
 *
 * Every refusal is counted by reason (for /metrics) and logged, at most once a second per reason.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { BrokerError } from '../core/errors.js'
import type { Logger } from '../core/types.js'

export interface GuardOptions {
  maxConnectionsPerAddress: number
  maxUnauthenticatedPerAddress: number
  authRatePerSecond: number
  /** Descriptors kept free for the store and the native and HTTP listeners (capped at a quarter of the limit). */
  fdReserve: number
  /** The process's descriptor limit; default: the soft limit read from /proc/self/limits (none elsewhere). */
  fdLimit?: number | undefined
  /** Descriptors open now; default: the entries of /proc/self/fd. */
  fdsOpen?: () => number
}

/**
 * 'ws' is a native connection inside an HTTP connection: it counts only as not logged in (its HTTP connection
 * is already counted); 'http' connections have no login of their own.
 */
export type ListenerKind = 'native' | 'ws' | 'http' | 'gateway'

export type RefusalReason = 'maxConnectionsPerAddress' | 'maxUnauthenticatedPerAddress' | 'fdReserve'

/** One admitted connection: say when it has logged in, and release it when it closes (each at most once). */
export interface Admission {
  readonly address: string
  loggedIn(): void
  release(): void
}

/** '::ffff:127.0.0.1' and '127.0.0.1' are one address. */
export function addressKey(remote: string | undefined): string {
  if (remote === undefined || remote === '') return 'unknown'
  return remote.startsWith('::ffff:') ? remote.slice(7) : remote
}

/** A token bucket per key (a client address). */
export class RateBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  constructor(readonly ratePerSecond: number) {}

  take(key: string, now = Date.now()): boolean {
    const burst = this.ratePerSecond * 2
    let b = this.buckets.get(key)
    if (b === undefined) {
      if (this.buckets.size >= 10_000) this.prune(now)
      b = { tokens: burst, at: now }
      this.buckets.set(key, b)
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) * this.ratePerSecond) / 1000)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Forget buckets that have refilled: they hold no information. */
  private prune(now: number): void {
    for (const [k, b] of this.buckets) if (now - b.at > 2000) this.buckets.delete(k)
  }
}

function softFdLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m === null || m[1] === 'unlimited' ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

function procFds(): number {
  return readdirSync('/proc/self/fd').length
}

/** How often the real descriptor count is read again; between reads it is followed by admissions and releases. */
const FD_RECOUNT_MS = 200

export class ListenerGuard {
  private readonly open = new Map<string, { all: number; unauth: number }>()
  readonly auth: RateBuckets
  /** Refusals by reason, since start. */
  readonly refused: Record<RefusalReason | 'authRatePerSecond', number> = {
    maxConnectionsPerAddress: 0,
    maxUnauthenticatedPerAddress: 0,
    fdReserve: 0,
    authRatePerSecond: 0,
  }
  readonly fdLimit: number | undefined
  private readonly fdsOpen: (() => number) | undefined
  private fdCount = 0
  private fdCountedAt = 0
  private readonly loggedAt = new Map<string, number>()

  constructor(
    readonly opts: GuardOptions,
    private readonly log: Logger,
  ) {
    this.auth = new RateBuckets(opts.authRatePerSecond)
    this.fdLimit = opts.fdLimit ?? softFdLimit()
    this.fdsOpen = opts.fdsOpen ?? (this.fdLimit !== undefined ? procFds : undefined)
  }

  /** Descriptors kept free: `fdReserve`, at most a quarter of the limit. */
  get fdReserve(): number {
    return this.fdLimit === undefined ? 0 : Math.min(this.opts.fdReserve, Math.floor(this.fdLimit / 4))
  }

  /** Descriptors open now (estimated between recounts); undefined where they cannot be counted. */
  descriptors(now = Date.now()): number | undefined {
    if (this.fdsOpen === undefined) return undefined
    if (now - this.fdCountedAt >= FD_RECOUNT_MS) {
      try {
        this.fdCount = this.fdsOpen()
        this.fdCountedAt = now
      } catch {
        return undefined
      }
    }
    return this.fdCount
  }

  /** Admit a new connection from `remote`, or say which limit refuses it (it is counted and logged). */
  admit(remote: string | undefined, kind: ListenerKind): Admission | RefusalReason {
    const address = addressKey(remote)
    const n = this.open.get(address) ?? { all: 0, unauth: 0 }
    let refusal: RefusalReason | undefined
    const countsAll = kind !== 'ws'
    const countsUnauth = kind !== 'http'
    if (countsAll && n.all >= this.opts.maxConnectionsPerAddress) refusal = 'maxConnectionsPerAddress'
    else if (countsUnauth && n.unauth >= this.opts.maxUnauthenticatedPerAddress) refusal = 'maxUnauthenticatedPerAddress'
    else if (kind === 'gateway' && this.fdLimit !== undefined) {
      const fds = this.descriptors()
      if (fds !== undefined && fds >= this.fdLimit - this.fdReserve) refusal = 'fdReserve'
    }
    if (refusal !== undefined) {
      this.refused[refusal]++
      this.warn(refusal, { address, kind }, this.explain(refusal, address))
      return refusal
    }
    if (countsAll) n.all++
    if (countsUnauth) n.unauth++
    this.open.set(address, n)
    if (countsAll) this.fdCount++ // the accepted socket; the next recount corrects the estimate
    return new Admitted(this, address, n, countsAll, !countsUnauth)
  }

  /** An admitted connection closed (Admitted.release). */
  released(address: string, n: { all: number; unauth: number }, countsAll: boolean): void {
    if (countsAll) {
      n.all--
      this.fdCount--
    }
    if (n.all === 0 && n.unauth === 0) this.open.delete(address)
  }

  /** Why a connection was refused, for the log and for the peer when its protocol can say it. */
  explain(reason: RefusalReason, address: string): string {
    switch (reason) {
      case 'maxConnectionsPerAddress':
        return `more than maxConnectionsPerAddress (${this.opts.maxConnectionsPerAddress}) connections from ${address}`
      case 'maxUnauthenticatedPerAddress':
        return `more than maxUnauthenticatedPerAddress (${this.opts.maxUnauthenticatedPerAddress}) connections not logged in from ${address}`
      case 'fdReserve':
        return `new legacy gateway connections refused: within fdReserve (${this.fdReserve}) of the descriptor limit (${this.fdLimit})`
    }
  }

  /** A login or registration from `remote`: throws SB_ERR_RATE_LIMITED naming authRatePerSecond when over the rate. */
  authenticating(remote: string | undefined): void {
    const address = addressKey(remote)
    if (this.auth.take(address)) return
    this.refused.authRatePerSecond++
    throw new BrokerError(
      'SB_ERR_RATE_LIMITED',
      `more than authRatePerSecond (${this.opts.authRatePerSecond}) logins or registrations per second from ${address}`,
      'authRatePerSecond',
    )
  }

  /** Connections open now from `remote` (all, and not logged in). */
  openFrom(remote: string): { all: number; unauth: number } {
    const n = this.open.get(addressKey(remote))
    return { all: n?.all ?? 0, unauth: n?.unauth ?? 0 }
  }

  private warn(key: string, fields: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    if (now - (this.loggedAt.get(key) ?? 0) < 1000) return
    this.loggedAt.set(key, now)
    this.log.warn({ ...fields, refused: this.refused }, `connection refused: ${msg}`)
  }
}

/** One admitted connection (a class, not closures: every open connection holds one). */
class Admitted implements Admission {
  private released = false

  constructor(
    private readonly guard: ListenerGuard,
    readonly address: string,
    private readonly n: { all: number; unauth: number },
    private readonly countsAll: boolean,
    private authed: boolean,
  ) {}

  loggedIn(): void {
    if (this.authed || this.released) return
    this.authed = true
    this.n.unauth--
  }

  release(): void {
    if (this.released) return
    this.released = true
    if (!this.authed) this.n.unauth--
    this.guard.released(this.address, this.n, this.countsAll)
  }
}
