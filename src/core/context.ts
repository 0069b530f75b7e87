/**
 * What the core's parts share, owned by the Broker facade: the store and the bus, the limits, the clock, the
 * group committer, the counters, the live sessions of this node, and the guard every session request passes.
 */
import type { ScryptCost } from './passwords.js'
import { BrokerError } from './errors.js'
import type { Committer } from './committer.js'
import type { Session, SessionTable } from './session.js'
import type { Address, Limits, Logger } from './types.js'
import type { Store } from '../store/store.js'
import type { Bus } from '../bus/bus.js'

export interface Counters {
  messagesIn: Record<string, number>
  messagesOut: number
  receipts: Record<string, number>
  slowConsumers: number
}

export interface Core {
  /** scrypt's cost for new password hashes (default: passwords.ts; hermetic tests lower it). */
  readonly passwordCost?: ScryptCost
  readonly store: Store
  readonly bus: Bus
  readonly limits: Limits
  readonly log: Logger
  readonly now: () => number
  readonly committer: Committer
  readonly counters: Counters
  /** The live sessions of this node: per user, one per device (a legacy name has one). */
  readonly sessions: SessionTable
  closing: boolean
}

/** A page of a queue read from the store at once. */
export const PAGE = 256

/** The prelude of every request a session makes: it must be live, and it spends one token of the rate limit. */
export function guard(core: Core, s: Session): void {
  if (s.closed) throw new BrokerError('SB_ERR_NOT_LOGGED_IN', 'the session has ended')
  touch(core, s)
}

/** Every request refreshes lastSeen (heartbeats included) and spends one token of the rate limit. */
export function touch(core: Core, s: Session): void {
  const now = core.now()
  s.lastSeen = now
  const rate = core.limits.ratePerSecond
  s.tokens = Math.min(rate * 2, s.tokens + ((now - s.tokensAt) * rate) / 1000)
  s.tokensAt = now
  if (s.tokens < 1)
    throw new BrokerError('SB_ERR_RATE_LIMITED', `more than ratePerSecond (${rate}) requests per second`, 'ratePerSecond')
  s.tokens -= 1
}

export function refuseIfClosing(core: Core): void {
  if (core.closing) throw new BrokerError('SB_ERR_SHUTTING_DOWN', 'the server is shutting down')
}

export function describe(a: Address): string {
  switch (a.kind) {
    case 'user':
      return `#${a.id}`
    case 'name':
      return a.name
    case 'topic':
      return `topic ${a.topic}`
    default:
      return a.kind.toUpperCase()
  }
}
