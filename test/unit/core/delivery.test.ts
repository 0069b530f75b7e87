/**
 * Direct messages on the real Broker, hermetic: receipts (stored, delivered, read, 300 when the ack timeout passes
 * on the test clock), polling by take and by peek-then-ack, and held messages released by the reaper.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus } from '../../../src/core/types.js'
import { loginUser, registerUser, startBroker, text, to } from './fixture.js'

test('to an online recipient: queued, pushed; ack gives the sender 200, markRead 210', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  const r = await broker.send(alice.session, { to: to('bob'), body: text('hi'), msgId: 7, receipt: true, readReceipt: true })
  assert.deepEqual(r, { msgId: 7, status: 'queued', seq: 1, recipients: 1 })
  const { msg } = await bob.sink.next('message')
  assert.deepEqual([msg.seq, msg.from, msg.fromName, msg.body.toString()], [1, alice.user.id, 'alice', 'hi'])
  assert.equal(await broker.ack(bob.session, msg.seq), true)
  const delivered = await alice.sink.next('receipt')
  assert.deepEqual(
    [delivered.receipt.status, delivered.receipt.msgId, delivered.receipt.recipientName, delivered.receipt.seq],
    [ReceiptStatus.DELIVERED, 7, 'bob', 1],
  )
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 0, bytes: 0 }, 'the ack removed it')
  assert.equal(await broker.ack(bob.session, msg.seq), false, 'a second ack finds nothing')
  await broker.markRead(bob.session, msg)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.READ)
  // One 210 per message: asking again sends nothing. The marker, sent after, is the next receipt alice gets.
  await broker.markRead(bob.session, broker.inflightMessage(bob.session, msg.seq)!)
  await broker.send(bob.session, { to: to('alice'), body: text('marker') })
  await alice.sink.next('message')
  assert.deepEqual(alice.sink.pending('receipt'), [], 'no second 210')
})

test('to an offline recipient: stored with a 202; pushed at its login; the 200 follows the ack', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  broker.detach(bob.session)
  const r = await broker.send(alice.session, { to: to('bob'), body: text('later'), msgId: 1, receipt: true })
  assert.equal(r.status, 'stored')
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.STORED)
  const back = await loginUser(broker, bob)
  const { msg } = await back.sink.next('message')
  assert.equal(msg.body.toString(), 'later')
  await broker.ack(back.session, msg.seq)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.DELIVERED)
})

test('a receipt for an offline sender is queued for it and delivered when it logs in', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  await broker.send(alice.session, { to: to('bob'), body: text('hi'), msgId: 3, receipt: true })
  const { msg } = await bob.sink.next('message')
  broker.detach(alice.session)
  await broker.ack(bob.session, msg.seq)
  // The receipt goes through alice's queue (committed before or after this login: either way it is pushed).
  const back = await loginUser(broker, alice)
  const r = await back.sink.next('receipt')
  assert.deepEqual([r.receipt.status, r.receipt.msgId], [ReceiptStatus.DELIVERED, 3])
  assert.ok(r.seq > 0, 'a queued receipt carries its seq, to be acknowledged')
})

test('no ack within ackTimeoutMs on the test clock: the sender gets 300, then 200 when the ack comes', async (t) => {
  const { broker, clock } = await startBroker(t, { ackTimeoutMs: 3000 })
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  await broker.send(alice.session, { to: to('bob'), body: text('ack me'), msgId: 9, receipt: true })
  const { msg } = await bob.sink.next('message')
  clock.advance(2999)
  assert.deepEqual(alice.sink.pending('receipt'), [], 'the timers ran up to 2999 ms: no 300 yet')
  clock.advance(1)
  const notYet = await alice.sink.next('receipt')
  assert.deepEqual([notYet.receipt.status, notYet.receipt.msgId, notYet.receipt.seq], [ReceiptStatus.NOT_YET, 9, msg.seq])
  clock.advance(10_000)
  assert.deepEqual(alice.sink.pending('receipt'), [], 'one 300 per message')
  await broker.ack(bob.session, msg.seq)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.DELIVERED)
})

test('poll: take removes what it returns; peek leaves it queued until ack, and is not handed out twice', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  for (const [i, body] of ['one', 'two', 'three'].entries())
    await broker.send(alice.session, { to: to('bob'), body: text(body), msgId: i + 1, receipt: true })
  assert.deepEqual(bob.sink.pending('message'), [], 'a poll session is not pushed')
  const taken = await broker.take(bob.session, 2, 'take')
  assert.deepEqual(
    taken.map((m) => m.body.toString()),
    ['one', 'two'],
  )
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 1, bytes: 5 }, 'take acknowledged them')
  assert.equal((await alice.sink.next('receipt', (e) => e.receipt.msgId === 1)).receipt.status, ReceiptStatus.DELIVERED)
  assert.equal((await alice.sink.next('receipt', (e) => e.receipt.msgId === 2)).receipt.status, ReceiptStatus.DELIVERED)

  const peeked = await broker.take(bob.session, 10, 'peek')
  assert.deepEqual(
    peeked.map((m) => m.body.toString()),
    ['three'],
  )
  assert.deepEqual(await broker.take(bob.session, 10, 'peek'), [], 'past the cursor: not handed out again')
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 1, bytes: 5 }, 'peek leaves it queued')
  await broker.ack(bob.session, peeked[0]!.seq)
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 0, bytes: 0 })
  assert.equal((await alice.sink.next('receipt', (e) => e.receipt.msgId === 3)).receipt.status, ReceiptStatus.DELIVERED)
})

test('a long poll (take with waitMs) wakes up when a message arrives', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const waiting = broker.take(bob.session, 10, 'take', 60_000)
  await broker.send(alice.session, { to: to('bob'), body: text('wake up') })
  assert.deepEqual(
    (await waiting).map((m) => m.body.toString()),
    ['wake up'],
  )
})

test('held: notBefore answers "scheduled", nothing is queued until the reaper releases it on the test clock', async (t) => {
  const { broker, clock } = await startBroker(t, { reapIntervalMs: 1000 })
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  const r = await broker.send(alice.session, { to: to('bob'), body: text('later'), notBefore: clock.now() + 5000 })
  assert.equal(r.status, 'scheduled')
  await broker.send(alice.session, { to: to('bob'), body: text('now') })
  assert.equal((await bob.sink.next('message')).msg.body.toString(), 'now', 'the held one was not pushed first')
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 1, bytes: 3 }, 'held messages are not in the queue')
  await broker.ack(bob.session, 1)
  clock.advance(5000)
  const { msg } = await bob.sink.next('message')
  assert.deepEqual([msg.body.toString(), msg.seq], ['later', 2], 'released with the next seq')
})

test("a send that must look its recipients up keeps its place before the session's later, cached ones", async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const carol = await registerUser(broker, 'carol', 'poll')
  await broker.subscribe(carol.session, 'news')
  await broker.send(alice.session, { to: to('bob'), body: text('warm') }) // bob and his blocks are cached now
  // A topic send reads its subscribers from the store; the direct sends after it are cached, and still wait for it.
  const sent = await Promise.all([
    broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('t1') }),
    broker.send(alice.session, { to: to('bob'), body: text('d1') }),
    broker.send(alice.session, { to: to('bob'), body: text('d2') }),
  ])
  assert.deepEqual(
    sent.map((r) => r.recipients),
    [1, 1, 1],
  )
  const { messages } = await broker.history(alice.session, { limit: 10 })
  assert.deepEqual(
    messages.map((m) => m.body.toString()).reverse(),
    ['warm', 't1', 'd1', 'd2'],
    "the sender's own copies, in the order it sent them",
  )
})

test('pipelined sends from one session enter the queue in order with gap-free seqs', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  const results = await Promise.all(
    Array.from({ length: 50 }, (_, i) => broker.send(alice.session, { to: to('bob'), body: text(`m${i}`) })),
  )
  assert.deepEqual(
    results.map((r) => r.seq),
    Array.from({ length: 50 }, (_, i) => i + 1),
  )
  assert.deepEqual(
    (await broker.take(bob.session, 100, 'take')).map((m) => m.body.toString()),
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  )
})
