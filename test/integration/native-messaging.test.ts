/**
 * The foundation's delivery rules over real sockets and a real SQLite file: direct messages both ways with
 * receipts, offline storage, the ack timeout, receipts queued for an offline sender, idempotent retries, topics,
 * the room, SERVER commands, the block list, TTL expiry and scheduled delivery.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, loggedIn, registered, sleep } from '../helpers/native-client.js'
import { Op, SendFlag, SendStatusCode } from '../../src/protocols/native/frames.js'
import { ErrorNumbers } from '../../src/core/errors.js'
import { ALL_ID, ReceiptStatus } from '../../src/core/types.js'
import type { FrameOf } from '../../src/protocols/native/frames.js'

const RECEIPT = SendFlag.RECEIPT
const to = (name: string) => ({ kind: 'name' as const, name })

function accepted(f: { type: string }): FrameOf<'ACCEPTED'> {
  assert.equal(f.type, 'ACCEPTED', `expected ACCEPTED, got ${JSON.stringify(f)}`)
  return f as FrameOf<'ACCEPTED'>
}

function errorOf(f: { type: string }, code: keyof typeof ErrorNumbers): FrameOf<'ERROR'> {
  assert.equal(f.type, 'ERROR', `expected ERROR ${code}, got ${JSON.stringify(f)}`)
  const e = f as FrameOf<'ERROR'>
  assert.equal(e.code, ErrorNumbers[code], `${code}: ${e.message}`)
  return e
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
  assert.deepEqual(
    got.map((f) => f.msg.seq),
    Array.from({ length: n }, (_, i) => i + 2),
  )
  for (const f of got) bob.ack(f.msg.seq)
  // No receipt was asked for: none comes.
  assert.deepEqual(await alice.collect('RECEIPT', 200), [])
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
  assert.deepEqual(await bob3.collect('DELIVER', 300), [])
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
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const aliceCred = { id: alice.id, token: alice.token }
  accepted(await alice.say(to('bob'), 'tell me later', { msgId: 21, flags: RECEIPT }))
  const d = await bob.next('DELIVER')
  await bye(alice)
  bob.ack(d.msg.seq)
  await sleep(150) // the receipt is committed to alice's queue

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
  await sleep(150)
  await bye(alice3)
  const alice4 = await loggedIn(t, port, aliceCred)
  assert.deepEqual(await alice4.collect('RECEIPT', 300), [])
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
  const got = await bob.collect('DELIVER', 400)
  assert.deepEqual(
    got.map((f) => f.msg.body.toString()),
    ['once', 'twice'],
  )
  // The duplicate is remembered after delivery and acknowledgement too (durable dedupe, not a window).
  for (const f of got) bob.ack(f.msg.seq)
  await alice.next('RECEIPT')
  const third = accepted(await alice.say(to('bob'), 'once', { msgId: 77, flags }))
  assert.equal(third.status, SendStatusCode.duplicate)
  assert.deepEqual(await bob.collect('DELIVER', 200), [])
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
  assert.deepEqual(await bob.collect('DELIVER', 300), [])
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
  assert.deepEqual(await alice.collect('DELIVER', 200), [], 'the sender does not get its own room message')
  const dave2 = await loggedIn(t, port, daveCred)
  assert.deepEqual(await dave2.collect('DELIVER', 200), [], 'an offline user does not get it later')
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
  assert.deepEqual(await bob2.collect('DELIVER', 300), [])
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
