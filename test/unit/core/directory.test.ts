/**
 * Topics, blocks, queue limits and the rate limit on the real Broker, hermetic. Absence is asserted after the
 * send has committed (the queue's state), never by waiting a while.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus } from '../../../src/core/types.js'
import { refused, registerUser, startBroker, text, to } from './fixture.js'

test('topics: every subscriber but the sender gets a copy; unsubscribed or no subscribers is refused', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const carol = await registerUser(broker, 'carol', 'poll')
  await refused(broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('x') }), 'SB_ERR_UNKNOWN_RECIPIENT')
  for (const u of [alice, bob, carol]) assert.equal(await broker.subscribe(u.session, 'news'), true)
  assert.equal(await broker.subscribe(bob.session, 'news'), false, 'already subscribed')
  assert.deepEqual(await broker.topics(alice.session), [{ topic: 'news', subscribers: 3 }])
  const r = await broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('extra') })
  assert.equal(r.recipients, 2)
  for (const u of [bob, carol]) {
    const [m] = await broker.take(u.session, 10, 'take')
    assert.deepEqual([m?.topic, m?.body.toString()], ['news', 'extra'])
  }
  assert.deepEqual(await broker.queueStats(alice.user.id), { count: 0, bytes: 0 }, 'not to its sender')
  await broker.unsubscribe(carol.session, 'news')
  assert.equal((await broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('2') })).recipients, 1)
  assert.deepEqual(await broker.queueStats(carol.user.id), { count: 0, bytes: 0 }, 'carol left the topic')
  assert.deepEqual(await broker.subscriptions(bob.session), ['news'])
})

test('blocks: a blocked sender is told "no such user" and nothing is queued; others still reach; unblock', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const carol = await registerUser(broker, 'carol')
  assert.equal((await broker.block(bob.session, to('alice'))).name, 'alice')
  assert.deepEqual(
    (await broker.blocked(bob.session)).map((u) => u.name),
    ['alice'],
  )
  await refused(broker.send(alice.session, { to: to('bob'), body: text('hi') }), 'SB_ERR_UNKNOWN_RECIPIENT')
  await refused(broker.lastSeen(alice.session, to('bob')), 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 0, bytes: 0 })
  await broker.send(carol.session, { to: to('bob'), body: text('from carol') })
  await broker.send(bob.session, { to: to('alice'), body: text('one way') })
  assert.equal((await alice.sink.next('message')).msg.body.toString(), 'one way', 'blocking is one way')
  await broker.unblock(bob.session, to('alice'))
  await broker.send(alice.session, { to: to('bob'), body: text('again') })
  assert.deepEqual(
    (await broker.take(bob.session, 10, 'take')).map((m) => m.body.toString()),
    ['from carol', 'again'],
  )
})

test('queue limits: full by length names maxQueueLength, full by bytes names maxQueueBytes; nothing is queued', async (t) => {
  const { broker } = await startBroker(t, { limits: { maxQueueLength: 2, maxQueueBytes: 10 } })
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const carol = await registerUser(broker, 'carol', 'poll')
  await broker.send(alice.session, { to: to('bob'), body: text('1') })
  await broker.send(alice.session, { to: to('bob'), body: text('2') })
  const e = await refused(broker.send(alice.session, { to: to('bob'), body: text('3') }), 'SB_ERR_QUEUE_FULL', 'maxQueueLength')
  assert.match(e.message, /maxQueueLength \(2 messages\)/)
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 2, bytes: 2 })
  await broker.send(alice.session, { to: to('carol'), body: text('123456789') })
  const b = await refused(broker.send(alice.session, { to: to('carol'), body: text('ab') }), 'SB_ERR_QUEUE_FULL', 'maxQueueBytes')
  assert.match(b.message, /maxQueueBytes \(10 bytes\)/)
  assert.deepEqual(await broker.queueStats(carol.user.id), { count: 1, bytes: 9 })
})

test('queue limits on a topic: a full subscriber is dropped with a 507 receipt; all full is refused', async (t) => {
  const { broker } = await startBroker(t, { limits: { maxQueueLength: 1 } })
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const carol = await registerUser(broker, 'carol', 'poll')
  for (const u of [bob, carol]) await broker.subscribe(u.session, 'news')
  await broker.send(alice.session, { to: to('bob'), body: text('fills bob') })
  const r = await broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('n'), msgId: 5, receipt: true })
  assert.equal(r.recipients, 1)
  const dropped = await alice.sink.next('receipt')
  assert.deepEqual(
    [dropped.receipt.status, dropped.receipt.recipientName, dropped.receipt.topic],
    [ReceiptStatus.DROPPED, 'bob', 'news'],
  )
  await refused(
    broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('n') }),
    'SB_ERR_QUEUE_FULL',
    'maxQueueLength',
  )
})

test('rate limit on the test clock: a burst of twice ratePerSecond, then refused, then one token per 1/rate s', async (t) => {
  const { broker, clock } = await startBroker(t, { limits: { ratePerSecond: 5 } })
  const alice = await registerUser(broker, 'alice')
  for (let i = 0; i < 10; i++) broker.whoami(alice.session)
  const e = await refused(() => broker.whoami(alice.session), 'SB_ERR_RATE_LIMITED', 'ratePerSecond')
  assert.match(e.message, /ratePerSecond \(5\)/)
  clock.advance(199)
  await refused(() => broker.whoami(alice.session), 'SB_ERR_RATE_LIMITED')
  clock.advance(201) // 400 ms since the refusal: two tokens (the refused request spent none)
  broker.whoami(alice.session)
  broker.whoami(alice.session)
  await refused(() => broker.whoami(alice.session), 'SB_ERR_RATE_LIMITED')
})
