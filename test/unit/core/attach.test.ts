/**
 * Two-phase attach and the SERVER request seam, at the Broker API: a session is online as soon as
 * register/login/claim return, but nothing reaches its sink until the adapter calls ready().
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Broker, type BrokerOptions } from '../../../src/core/broker.js'
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js'
import { LocalBus } from '../../../src/bus/local/local-bus.js'
import { serverCommands } from '../../../src/services/server-commands.js'
import type { Outbound, SessionSink } from '../../../src/core/types.js'

class Sink implements SessionSink {
  readonly events: Outbound[] = []
  push(ev: Outbound): boolean {
    this.events.push(ev)
    return true
  }
  backlog(): number {
    return 0
  }
  close(): void {}
  texts(): string[] {
    return this.events.flatMap((e) => (e.type === 'message' ? [e.msg.body.toString()] : []))
  }
}

async function broker(t: TestContext, opts: Partial<BrokerOptions> = {}): Promise<Broker> {
  const b = new Broker({ store: new SqliteStore({ path: ':memory:' }), bus: new LocalBus(), ...opts })
  await b.start()
  t.after(() => b.close())
  return b
}

test('nothing reaches a session before ready(); then the held live events, then its queue, in order', async (t) => {
  const b = await broker(t)
  const a = await b.register('ann', 'test', new Sink())
  b.ready(a.session)
  const sink = new Sink()
  const bob = await b.register('bob', 'test', sink)
  assert.equal(b.sessionOf(bob.user.id), bob.session, 'online before ready()')

  const direct = await b.send(a.session, { to: { kind: 'name', name: 'bob' }, body: Buffer.from('queued') })
  assert.equal(direct.status, 'queued')
  await b.send(a.session, { to: { kind: 'all' }, body: Buffer.from('room') })
  assert.deepEqual(sink.events, [], 'held, not pushed')

  b.ready(bob.session)
  assert.deepEqual(sink.texts(), ['room'], 'the held room message at once')
  // The queue is read from the store: wait for it (a bounded number of turns), not for a fixed time.
  for (let i = 0; sink.texts().length < 2 && i < 100_000; i++) await new Promise((r) => setImmediate(r))
  assert.deepEqual(sink.texts(), ['room', 'queued'])
  b.ready(bob.session)
  assert.equal(sink.texts().length, 2, 'a second ready() changes nothing')
})

test('a session that ends before ready() drops what was held and gets nothing after', async (t) => {
  const b = await broker(t)
  const a = await b.register('ann', 'test', new Sink())
  b.ready(a.session)
  const sink = new Sink()
  const bob = await b.register('bob', 'test', sink)
  await b.send(a.session, { to: { kind: 'all' }, body: Buffer.from('room') })
  b.detach(bob.session)
  b.ready(bob.session)
  assert.deepEqual(sink.events, [])
})

test('text to SERVER goes to the handler the broker was given, or is answered that there is none', async (t) => {
  const plain = await broker(t)
  const s1 = new Sink()
  const u1 = await plain.register('ann', 'test', s1)
  plain.ready(u1.session)
  await plain.send(u1.session, { to: { kind: 'server' }, body: Buffer.from('whoami') })
  assert.deepEqual(s1.texts(), ['this server answers no text commands'])

  const withCommands = await broker(t, { serverRequests: serverCommands })
  const s2 = new Sink()
  const u2 = await withCommands.register('bob', 'test', s2)
  withCommands.ready(u2.session)
  await withCommands.send(u2.session, { to: { kind: 'server' }, body: Buffer.from('whoami') })
  assert.deepEqual(s2.texts(), [`bob #${u2.user.id} via test`])
})
