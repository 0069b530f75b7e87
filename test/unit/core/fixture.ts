/**
 * A real Broker on the in-memory store, with the test's clock: no socket, no file. Sessions attach with a
 * MemorySink (test/helpers/memory-transport.ts).
 */
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Broker, type BrokerOptions } from '../../../src/core/broker.js'
import { BrokerError, type ErrorCode } from '../../../src/core/errors.js'
import type { Session } from '../../../src/core/session.js'
import type { DeliveryMode } from '../../../src/core/session.js'
import type { UserInfo } from '../../../src/core/types.js'
import { MemoryStore } from '../../../src/store/memory/memory-store.js'
import { LocalBus } from '../../../src/bus/local/local-bus.js'
import { MemorySink, TestClock } from '../../helpers/memory-transport.js'

export interface Fixture {
  broker: Broker
  clock: TestClock
  store: MemoryStore
}

export async function startBroker(t: TestContext, opts: Partial<Omit<BrokerOptions, 'bus'>> = {}): Promise<Fixture> {
  const clock = new TestClock(t)
  const store = new MemoryStore()
  // Passwords hashed at scrypt N=2^10 (1 MiB) instead of 2^15 (32 MiB): the logic under test is the same, and the
  // integration suites keep the real cost.
  const broker = new Broker({ store, bus: new LocalBus(), now: clock.now, passwordCost: { N: 1 << 10, r: 8, p: 1 }, ...opts })
  await broker.start()
  t.after(() => broker.close())
  return { broker, clock, store }
}

export interface TestUser {
  session: Session
  sink: MemorySink
  user: UserInfo
  token: string
}

export async function registerUser(broker: Broker, name: string, mode: DeliveryMode = 'push'): Promise<TestUser> {
  const sink = new MemorySink()
  const r = await broker.register(name, 'test', sink, mode)
  broker.ready(r.session) // as an adapter does once it has answered the login (two-phase attach)
  return { session: r.session, sink, user: r.user, token: r.token }
}

/** A new session of an existing user, logged in with its token. */
export async function loginUser(broker: Broker, u: TestUser, mode: DeliveryMode = 'push'): Promise<TestUser> {
  const sink = new MemorySink()
  const session = await broker.login({ id: u.user.id }, u.token, 'test', sink, mode)
  broker.ready(session)
  return { ...u, session, sink }
}

/** A new device of an existing user, by password (as a second browser or the CLI's `login` makes one). */
export async function passwordDevice(
  broker: Broker,
  name: string,
  password: string,
  mode: DeliveryMode = 'push',
): Promise<TestUser> {
  const sink = new MemorySink()
  const r = await broker.loginPassword(name, password, 'test', sink, mode)
  broker.ready(r.session)
  return { session: r.session, sink, user: { ...r.session.user }, token: r.token }
}

export const to = (name: string) => ({ kind: 'name' as const, name })
export const text = (s: string) => Buffer.from(s)

/** Assert that `p` fails with a BrokerError of `code` (and `limit`, when given); returns it. */
export async function refused(p: Promise<unknown> | (() => unknown), code: ErrorCode, limit?: string): Promise<BrokerError> {
  let caught: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof BrokerError, `expected BrokerError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  if (limit !== undefined) assert.equal(caught.limit, limit, caught.message)
  return caught
}
