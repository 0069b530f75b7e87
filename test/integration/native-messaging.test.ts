/**
 * The foundation's delivery rules over real sockets and a real SQLite file: direct messages both ways with
 * receipts, offline storage, the ack timeout, receipts queued for an offline sender, idempotent retries, topics,
 * the room, SERVER commands, the block list, TTL expiry and scheduled delivery.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, errorOf, isText, loggedIn, registered } from '../helpers/native-client.js'
import { until } from '../helpers/wait.js'
import { Op, SendFlag, SendStatusCode } from '../../src/protocols/native/frames.js'
import { ALL_ID, ReceiptStatus } from '../../src/core/types.js'
import type { FrameOf } from '../../src/protocols/native/frames.js'

const RECEIPT = SendFlag.RECEIPT
const to = (name: string) => ({ kind: 'name' as const, name })

function accepted(f: { type: string }): FrameOf<'ACCEPTED'> {
  assert.equal(f.type, 'ACCEPTED', `expected ACCEPTED, got ${JSON.stringify(f)}`)
  return f as FrameOf<'ACCEPTED'>
}

/** End a session politely and wait until the server has ended it (BYE → CLOSING). */
async function bye(c: NativeClient): Promise<void> {
  c.send({ type: 'BYE' })
  const closing = await c.next('CLOSING')
  assert.equal(closing.reason, 'ended')
  await c.closed
}

test('two clients exchange messages both ways, in order, with 200 receipts on acknowledgement', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  assert.ok(alice.id > 0 && bob.id > alice.id, 'ids from the global counter')
  assert.ok(alice.token.length >= 16, 'REGISTER returns a token')

  const a = accepted(await alice.say(to('bob'), 'hi bob', { msgId: 1, flags: RECEIPT }))
  assert.deepEqual([a.msgId, a.status, a.seq, a.recipients], [1, SendStatusCode.queued, 1, 1])
  const d = await bob.next('DELIVER')
  assert.equal(d.corr, 0)
  assert.deepEqual(
    {
      seq: d.msg.seq,
      msgId: d.msg.msgId,
      from: d.msg.from,
      fromName: d.msg.fromName,
      to: d.msg.to,
      kind: d.msg.kind,
      body: d.msg.body.toString(),
    },
    { seq: 1, msgId: 1, from: alice.id, fromName: 'alice', to: bob.id, kind: 0, body: 'hi bob' },
  )
  assert.equal(d.msg.flags & RECEIPT, RECEIPT)
  bob.ack(d.msg.seq)
  const r = await alice.next('RECEIPT')
  assert.deepEqual(
    [r.msgId, r.status, r.recipient, r.recipientName, r.seq, r.ackSeq],
    [1, ReceiptStatus.DELIVERED, bob.id, 'bob', 1, 0],
  )

  // And back, addressed by id.
  accepted(await bob.say({ kind: 'user', id: alice.id }, 'hi alice', { msgId: 7, flags: RECEIPT }))
  const back = await alice.next('DELIVER')
  assert.equal(back.msg.body.toString(), 'hi alice')
  assert.equal(back.msg.from, bob.id)
  alice.ack(back.msg.seq)
  const r2 = await bob.next('RECEIPT')
  assert.equal(r2.status, 200)
  assert.equal(r2.msgId, 7)

  // A pipelined burst arrives in the order it was sent, with a gap-free seq.
  const n = 50
  for (let i = 0; i < n; i++) alice.sendText(to('bob'), `m${i}`, { msgId: 100 + i })
  const got: FrameOf<'DELIVER'>[] = []
  for (let i = 0; i < n; i++) got.push(await bob.next('DELIVER'))
  assert.deepEqual(
    got.map((f) => f.msg.body.toString()),
    Array.from({ length: n }, (_, i) => `m${i}`),
  )
  // Bob's log: 1 'hi bob', 2 his sent copy of 'hi alice' (for his other devices and his history), then these.
  assert.deepEqual(
    got.map((f) => f.msg.seq),
    Array.from({ length: n }, (_, i) => i + 3),
  )
  for (const f of got) bob.ack(f.msg.seq)
  // No receipt was asked for: none comes before the receipt of a later message that asks for one.
  accepted(await alice.say(to('bob'), 'marker', { msgId: 999, flags: RECEIPT }))
  bob.ack((await bob.next(isText('marker'))).msg.seq)
  assert.deepEqual(await alice.before('RECEIPT', (f) => f.type === 'RECEIPT' && f.msgId === 999), [])
})

test('a message to an offline user is stored (202) and arrives at login, then 200', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const bobCred = { id: bob.id, token: bob.token }
  await bye(bob)

  const a = accepted(await alice.say(to('bob'), 'while you were away', { msgId: 5, flags: RECEIPT }))
  assert.equal(a.status, SendStatusCode.stored)
  const stored = await alice.next('RECEIPT')
  assert.deepEqual([stored.msgId, stored.status, stored.recipient, stored.seq], [5, ReceiptStatus.STORED, bobCred.id, a.seq])

  const bob2 = await loggedIn(t, port, bobCred)
  assert.equal(bob2.name, 'bob')
  const d = await bob2.next('DELIVER')
  assert.equal(d.msg.body.toString(), 'while you were away')
  assert.equal(d.msg.seq, a.seq)
  bob2.ack(d.msg.seq)
  const delivered = await alice.next('RECEIPT')
  assert.deepEqual([delivered.msgId, delivered.status], [5, ReceiptStatus.DELIVERED])

  // LOGIN by name works too, and an acknowledged message is not delivered again.
  await bye(bob2)
  const bob3 = await NativeClient.connect(port, t)
  await bob3.login({ name: 'bob' }, bobCred.token)
  assert.equal(bob3.id, bobCred.id)
  accepted(await alice.say(to('bob'), 'marker'))
  assert.deepEqual(await bob3.before('DELIVER', isText('marker')), [], 'only what was sent after the login')
})

test('no acknowledgement within the ack timeout gives the sender 300; the message is redelivered after reconnect', async (t) => {
  const { port } = await startTestServer(t, { ackTimeout: 300 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const t0 = Date.now()
  accepted(await alice.say(to('bob'), 'ack me', { msgId: 11, flags: RECEIPT }))
  const d = await bob.next('DELIVER')
  const notYet = await alice.next('RECEIPT', 3000)
  const waited = Date.now() - t0
  assert.deepEqual([notYet.msgId, notYet.status, notYet.seq], [11, ReceiptStatus.NOT_YET, d.msg.seq])
  assert.ok(waited >= 250 && waited < 2500, `300 after about the ack timeout (${waited} ms)`)

  bob.destroy() // never acknowledged
  await bob.closed
  const bob2 = await loggedIn(t, port, bob)
  const again = await bob2.next('DELIVER')
  assert.equal(again.msg.seq, d.msg.seq)
  assert.equal(again.msg.body.toString(), 'ack me')
  bob2.ack(again.msg.seq)
  // A later 200 follows the 300 (there may be a second 300 first if the redelivery was not acked in time).
  const final = await alice.next((f) => f.type === 'RECEIPT' && f.status === ReceiptStatus.DELIVERED, 3000)
  assert.equal(final.type === 'RECEIPT' && final.msgId, 11)
})

test('a receipt for an offline sender is queued, delivered at login with ackSeq, and must be ACKed', async (t) => {
  const { port, server } = await startTestServer(t)
  const queued = async (): Promise<number> => (await server.broker.queueStats(alice.id)).count
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const aliceCred = { id: alice.id, token: alice.token }
  accepted(await alice.say(to('bob'), 'tell me later', { msgId: 21, flags: RECEIPT }))
  const d = await bob.next('DELIVER')
  await bye(alice)
  bob.ack(d.msg.seq)
  await until("the receipt in alice's queue", async () => (await queued()) === 1)

  const alice2 = await loggedIn(t, port, aliceCred)
  const r = await alice2.next('RECEIPT')
  assert.equal(r.status, ReceiptStatus.DELIVERED)
  assert.equal(r.msgId, 21)
  assert.ok(r.ackSeq > 0, 'a queued receipt carries the seq to acknowledge')
  // Not acknowledged: it comes again at the next login.
  await bye(alice2)
  const alice3 = await loggedIn(t, port, aliceCred)
  const r2 = await alice3.next('RECEIPT')
  assert.equal(r2.ackSeq, r.ackSeq)
  alice3.ack(r2.ackSeq)
  await until("alice's queue to be empty", async () => (await queued()) === 0)
  await bye(alice3)
  const alice4 = await loggedIn(t, port, aliceCred)
  accepted(await bob.say(to('alice'), 'marker'))
  assert.deepEqual(await alice4.before('RECEIPT', isText('marker')), [])
})

test('an idempotent retry (same msgId) is accepted as duplicate and delivered once', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const flags = SendFlag.IDEMPOTENT | RECEIPT
  const first = accepted(await alice.say(to('bob'), 'once', { msgId: 77, flags }))
  const second = accepted(await alice.say(to('bob'), 'once', { msgId: 77, flags }))
  assert.equal(first.status, SendStatusCode.queued)
  assert.equal(second.status, SendStatusCode.duplicate)
  assert.equal(second.msgId, 77)
  // Without the flag the same msgId is a new message.
  accepted(await alice.say(to('bob'), 'twice', { msgId: 77 }))
  // A duplicate delivered would come between the two.
  const got = [await bob.next('DELIVER'), await bob.next('DELIVER')]
  assert.deepEqual(
    got.map((f) => f.msg.body.toString()),
    ['once', 'twice'],
  )
  // The duplicate is remembered after delivery and acknowledgement too (durable dedupe, not a window).
  for (const f of got) bob.ack(f.msg.seq)
  await alice.next('RECEIPT')
  const third = accepted(await alice.say(to('bob'), 'once', { msgId: 77, flags }))
  assert.equal(third.status, SendStatusCode.duplicate)
  accepted(await alice.say(to('bob'), 'marker'))
  assert.deepEqual(await bob.before('DELIVER', isText('marker')), [])
})

test('topics: subscribers get a durable copy, offline ones at login; unsubscribe stops it', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const carol = await registered(t, port, 'carol')
  const carolCred = { id: carol.id, token: carol.token }

  // No subscribers yet: unknown recipient.
  errorOf(await alice.say({ kind: 'topic', topic: 'news' }, 'nobody hears'), 'SB_ERR_UNKNOWN_RECIPIENT')

  const sub = await bob.expect({ type: 'REQUEST', op: Op.SUBSCRIBE, arg: 'news' }, 'RESULT')
  assert.deepEqual([sub.op, sub.text, sub.items], [Op.SUBSCRIBE, 'news', [{ name: 'news', count: 1 }]])
  await carol.expect({ type: 'REQUEST', op: Op.SUBSCRIBE, arg: 'news' }, 'RESULT')
  const again = await carol.expect({ type: 'REQUEST', op: Op.SUBSCRIBE, arg: 'news' }, 'RESULT')
  assert.equal(again.items[0]?.count, 0, 'already subscribed')
  const topics = await alice.expect({ type: 'REQUEST', op: Op.TOPICS, arg: '' }, 'RESULT')
  assert.deepEqual(topics.items, [{ name: 'news', count: 2 }])
  await bye(carol)

  const a = accepted(await alice.say({ kind: 'topic', topic: 'news' }, 'extra', { msgId: 1 }))
  assert.equal(a.recipients, 2)
  const d = await bob.next('DELIVER')
  assert.deepEqual([d.msg.topic, d.msg.body.toString(), d.msg.from, d.msg.to], ['news', 'extra', alice.id, bob.id])
  bob.ack(d.msg.seq)

  const carol2 = await loggedIn(t, port, carolCred)
  const dc = await carol2.next('DELIVER')
  assert.deepEqual([dc.msg.topic, dc.msg.body.toString()], ['news', 'extra'])
  carol2.ack(dc.msg.seq)
  const subs = await carol2.expect({ type: 'REQUEST', op: Op.SUBSCRIPTIONS, arg: '' }, 'RESULT')
  assert.deepEqual(
    subs.items.map((i) => i.name),
    ['news'],
    'subscriptions persist across sessions',
  )

  const un = await bob.expect({ type: 'REQUEST', op: Op.UNSUBSCRIBE, arg: 'news' }, 'RESULT')
  assert.equal(un.items[0]?.count, 1)
  const a2 = accepted(await alice.say({ kind: 'topic', topic: 'news' }, 'more'))
  assert.equal(a2.recipients, 1)
  assert.equal((await carol2.next('DELIVER')).msg.body.toString(), 'more')
  accepted(await alice.say(to('bob'), 'marker'))
  assert.deepEqual(await bob.before('DELIVER', isText('marker')), [], 'nothing of the topic after unsubscribing')
})

test('the room (ALL) reaches every online session but the sender, and is not stored', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const carol = await registered(t, port, 'carol')
  const dave = await registered(t, port, 'dave')
  const daveCred = { id: dave.id, token: dave.token }
  await bye(dave)

  const a = accepted(await alice.say({ kind: 'all' }, 'hello room', { msgId: 3 }))
  assert.deepEqual([a.status, a.seq, a.recipients], [SendStatusCode.delivered, 0, 2])
  for (const c of [bob, carol]) {
    const d = await c.next('DELIVER')
    assert.deepEqual([d.msg.to, d.msg.seq, d.msg.from, d.msg.body.toString()], [ALL_ID, 0, alice.id, 'hello room'])
  }
  accepted(await bob.say(to('alice'), 'marker'))
  assert.deepEqual(await alice.before('DELIVER', isText('marker')), [], 'the sender does not get its own room message')
  const dave2 = await loggedIn(t, port, daveCred)
  accepted(await bob.say(to('dave'), 'marker'))
  assert.deepEqual(await dave2.before('DELIVER', isText('marker')), [], 'an offline user does not get it later')
})

test('text commands to SERVER are answered with a notice', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  await registered(t, port, 'bob')
  const ask = async (cmd: string): Promise<string> => {
    const a = accepted(await alice.say({ kind: 'server' }, cmd, { msgId: 9 }))
    assert.equal(a.status, SendStatusCode.delivered)
    const d = await alice.next('DELIVER')
    assert.deepEqual([d.msg.from, d.msg.fromName, d.msg.kind, d.msg.seq, d.msg.msgId], [0, 'SERVER', 3, 0, 9])
    return d.msg.body.toString()
  }
  assert.equal(await ask('whoami'), `alice #${alice.id} via native`)
  const who = await ask('who')
  assert.match(who, /^alice #\d+ \(native\)\nbob #\d+ \(native\)$/)
  assert.equal(await ask('subscribe news'), 'subscribed to news')
  assert.equal(await ask('topics'), 'news (1)')
  assert.equal(await ask('unsubscribe news'), 'unsubscribed from news')
  assert.match(await ask('stats'), /^users 2, online 2, uptime \d+ s$/)
  assert.match(await ask('rename bob'), /^error: .*already in use/)
  assert.equal(await ask('rename alicia'), 'you are now alicia')
  assert.match(await ask('nonsense'), /^commands: /)
})

test('a blocked sender is told the recipient is unknown; unblocking lets messages through again', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const blk = await bob.expect({ type: 'REQUEST', op: Op.BLOCK, arg: 'alice' }, 'RESULT')
  assert.deepEqual([blk.text, blk.users[0]?.id], ['alice', alice.id])
  errorOf(await alice.say(to('bob'), 'let me in'), 'SB_ERR_UNKNOWN_RECIPIENT')
  const list = await bob.expect({ type: 'REQUEST', op: Op.BLOCKED, arg: '' }, 'RESULT')
  assert.deepEqual(
    list.users.map((u) => u.name),
    ['alice'],
  )
  // bob may still write to alice
  accepted(await bob.say(to('alice'), 'one way'))
  await bob.expect({ type: 'REQUEST', op: Op.UNBLOCK, arg: 'alice' }, 'RESULT')
  accepted(await alice.say(to('bob'), 'let me in'))
  assert.equal((await bob.next('DELIVER')).msg.body.toString(), 'let me in')
  errorOf(await bob.request({ type: 'REQUEST', op: Op.BLOCK, arg: 'nobody' }), 'SB_ERR_UNKNOWN_RECIPIENT')
})

test('a message whose TTL runs out while queued gives the sender 410 and is never delivered', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const bobCred = { id: bob.id, token: bob.token }
  await bye(bob)
  const a = accepted(await alice.say(to('bob'), 'soon stale', { msgId: 31, flags: RECEIPT, ttlMs: 200 }))
  assert.equal(a.status, SendStatusCode.stored)
  assert.equal((await alice.next('RECEIPT')).status, ReceiptStatus.STORED)
  const expired = await alice.next('RECEIPT', 4000) // the reaper runs every second
  assert.deepEqual(
    [expired.msgId, expired.status, expired.recipient, expired.seq],
    [31, ReceiptStatus.EXPIRED, bobCred.id, a.seq],
  )
  const bob2 = await loggedIn(t, port, bobCred)
  accepted(await alice.say(to('bob'), 'marker'))
  assert.deepEqual(await bob2.before('DELIVER', isText('marker')), [], 'the expired message is gone')
})

test('a message with notBefore is scheduled and delivered no earlier than that', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const notBefore = Date.now() + 700
  const a = accepted(await alice.say(to('bob'), 'later', { msgId: 41, notBefore }))
  assert.equal(a.status, SendStatusCode.scheduled)
  accepted(await alice.say(to('bob'), 'now'))
  assert.equal((await bob.next('DELIVER')).msg.body.toString(), 'now')
  const d = await bob.next('DELIVER', 4000)
  const at = Date.now()
  assert.equal(d.msg.body.toString(), 'later')
  assert.ok(at >= notBefore, `delivered ${notBefore - at} ms early`)
})

test('marking one message read many times gives its sender one 210, not one per request', async (t) => {
  // Every READ of the same seq sent another 210; for an offline sender each was stored in its queue, so a
  // recipient could fill the sender's queue (then everyone's messages to it were refused as queue-full).
  const { port, server } = await startTestServer(t, { maxQueueLength: 5 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const carol = await registered(t, port, 'carol')
  const queued = async (): Promise<number> => (await server.broker.queueStats(alice.id)).count
  accepted(await alice.say(to('bob'), 'read me', { msgId: 7, flags: SendFlag.READ_RECEIPT }))
  const d = await bob.next('DELIVER')
  await bye(alice)
  // read before the ack, then after it (from the recently acknowledged list), then again and again
  for (let i = 0; i < 3; i++) bob.send({ type: 'READ', seq: d.msg.seq })
  bob.ack(d.msg.seq)
  // The ack is done (and the message in bob's recently acknowledged list) once it is gone from bob's queue.
  await until("the ack to remove the message from bob's queue", async () => (await server.broker.queueStats(bob.id)).count === 0)
  for (let i = 0; i < 5; i++) bob.send({ type: 'READ', seq: d.msg.seq })
  // An ERROR for a READ is written as soon as the READ is handled; two PING round trips later it has arrived.
  await bob.expect({ type: 'PING' }, 'PONG')
  await bob.expect({ type: 'PING' }, 'PONG')
  assert.deepEqual(
    bob.take('ERROR').map((e) => e.message),
    [],
    'READ of a delivered message is accepted',
  )
  // alice's queue still has room for carol
  accepted(await carol.say(to('alice'), 'hello'))
  assert.ok((await queued()) <= 2, "the sender's queue was not filled with receipts")
  const again = await loggedIn(t, port, alice)
  // Queued events arrive in queue order: every 210 came before carol's message.
  const receipts = await again.before('RECEIPT', isText('hello'))
  const reads = receipts.filter((r) => r.msgId === 7 && r.status === ReceiptStatus.READ)
  assert.equal(reads.length, 1, 'exactly one read receipt')
})
