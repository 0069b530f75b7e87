/**
 * Several devices per user, on the real Broker over the memory store (hermetic: the test's clock, no socket):
 * delivery to every device, one 200 per message, a cursor per device, sent copies, password logins that make a
 * new device at the live end, history, revocation, read marks, the limits and retention of the log.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus, type Outbound } from '../../../src/core/types.js'
import type { Session } from '../../../src/core/session.js'
import { loginUser, passwordDevice, refused, registerUser, startBroker, text, to, type TestUser } from './fixture.js'
import type { Broker } from '../../../src/core/broker.js'

/** Drain what the committer has in hand: a marker message through the same group commit path. */
async function settle(broker: Broker, from: Session, marker: TestUser): Promise<void> {
  await broker.send(from, { to: { kind: 'user', id: marker.user.id }, body: text('marker') })
  await marker.sink.next('message', (e) => e.msg.body.toString() === 'marker')
}

test('a message reaches every device; the first ack gives the sender one 200; each device keeps its own cursor', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'correct horse')
  const bob2 = await passwordDevice(broker, 'bob', 'correct horse')
  assert.notEqual(bob2.session.device, bob1.session.device)
  assert.equal(bob1.session.closed, false, 'a new device does not replace the first')

  await broker.send(alice.session, { to: to('bob'), body: text('hi'), msgId: 9, receipt: true })
  const m1 = (await bob1.sink.next('message')).msg
  const m2 = (await bob2.sink.next('message')).msg
  assert.equal(m1.seq, m2.seq)
  assert.equal(await broker.ack(bob1.session, m1.seq), true)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.DELIVERED)
  assert.equal(await broker.ack(bob2.session, m2.seq), true, 'the second device acknowledges for itself')
  assert.equal(await broker.ack(bob2.session, m2.seq), false, 'and only once')
  const zed = await registerUser(broker, 'zed')
  await settle(broker, zed.session, alice)
  assert.deepEqual(
    alice.sink.pending('receipt').map((r) => r.receipt.status),
    [],
    'exactly one 200 for two devices',
  )

  // A second message: device 1 acknowledges it, device 2 goes away first; device 2 gets it again when it is back.
  await broker.send(alice.session, { to: to('bob'), body: text('again'), msgId: 10, receipt: true })
  const again = (await bob1.sink.next('message')).msg
  await bob2.sink.next('message')
  await broker.ack(bob1.session, again.seq)
  broker.detach(bob2.session)
  const bob2back = await loginUser(broker, bob2)
  assert.equal((await bob2back.sink.next('message')).msg.body.toString(), 'again')
  const bob1back = await loginUser(broker, bob1)
  assert.equal(bob1.session.closed, true, 'a login of the same device replaces its session')
  await settle(broker, alice.session, bob1back)
  assert.deepEqual(
    bob1back.sink.events.filter((e) => e.type === 'message').map((e) => (e as { msg: { body: Buffer } }).msg.body.toString()),
    ['marker'],
    'the device that acknowledged does not get it again',
  )
})

test('what a user sends from one device appears on its other devices as a sent copy, not on the sending one', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  await broker.setPassword(alice.session, 'alice password')
  const alice2 = await passwordDevice(broker, 'alice', 'alice password')
  const bob = await registerUser(broker, 'bob')
  const r = await broker.send(alice.session, { to: to('bob'), body: text('from the laptop'), msgId: 4 })
  assert.equal(r.seq, 1, "ACCEPTED's seq is the recipient's")
  assert.deepEqual(await broker.queueStats(alice.user.id), { count: 0, bytes: 0 }, 'a sent copy needs no acknowledgement')
  const copy = (await alice2.sink.next('message')).msg
  assert.equal(copy.body.toString(), 'from the laptop')
  assert.equal(copy.flags & 8, 8, 'flagged SENT')
  assert.equal(copy.peer, bob.user.id)
  assert.equal(copy.from, alice.user.id)
  await settle(broker, bob.session, alice)
  assert.deepEqual(
    alice.sink.events.filter((e) => e.type === 'message' && e.msg.body.toString() === 'from the laptop'),
    [],
    'the sending device is not handed its own copy',
  )
})

test('a password login is a new device at the live end; it pages the history of a conversation, newest first', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  const carol = await registerUser(broker, 'carol')
  for (let i = 1; i <= 3; i++) {
    await broker.send(alice.session, { to: to('bob'), body: text(`a${i}`) })
    await broker.send(bob.session, { to: to('alice'), body: text(`b${i}`) })
  }
  await broker.send(carol.session, { to: to('alice'), body: text('from carol') })
  await broker.setPassword(alice.session, 'a long password')
  const phone = await passwordDevice(broker, 'alice', 'a long password')
  await settle(broker, (await registerUser(broker, 'zed')).session, alice)
  assert.deepEqual(
    phone.sink.events.filter((e) => e.type === 'message').map((e) => (e as { msg: { body: Buffer } }).msg.body.toString()),
    ['marker'],
    'the new device starts at the live end: the past is history, not redelivered',
  )
  const page1 = await broker.history(phone.session, { with: to('bob'), limit: 4 })
  assert.deepEqual(
    page1.messages.map((m) => m.body.toString()),
    ['b3', 'a3', 'b2', 'a2'],
  )
  assert.equal(page1.more, true)
  const page2 = await broker.history(phone.session, { with: to('bob'), limit: 4, before: page1.messages.at(-1)!.seq })
  assert.deepEqual(
    page2.messages.map((m) => m.body.toString()),
    ['b1', 'a1'],
  )
  assert.equal(page2.more, false)
  const mine = page1.messages.filter((m) => m.flags & 8)
  assert.deepEqual(
    mine.map((m) => [m.from, m.peer]),
    [
      [alice.user.id, bob.user.id],
      [alice.user.id, bob.user.id],
    ],
    'sent copies name whom they went to',
  )
  const everything = await broker.history(phone.session, { limit: 50 })
  assert.ok(everything.messages.some((m) => m.body.toString() === 'from carol'))
  assert.ok(
    everything.messages.every((m) => m.kind === 'text'),
    'history holds messages, not receipts',
  )
  await refused(broker.history(phone.session, { with: to('nobody') }), 'SB_ERR_UNKNOWN_RECIPIENT')
})

test('passwords: wrong ones are refused alike, rate-limited per name; changing one needs the current one', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  await refused(broker.setPassword(alice.session, 'short'), 'SB_ERR_PASSWORD_INVALID')
  await refused(broker.newDevice('alice', 'anything at all'), 'SB_ERR_AUTH') // no password set yet
  await broker.setPassword(alice.session, 'first password')
  await refused(broker.setPassword(alice.session, 'second password'), 'SB_ERR_AUTH')
  await refused(broker.setPassword(alice.session, 'second password', 'not the first'), 'SB_ERR_AUTH')
  await broker.setPassword(alice.session, 'second password', 'first password')
  await refused(broker.newDevice('alice', 'first password'), 'SB_ERR_AUTH')
  await refused(broker.newDevice('nobody', 'second password'), 'SB_ERR_AUTH')
  const ok = await broker.newDevice('alice', 'second password', { label: 'phone' })
  assert.equal(ok.user.id, alice.user.id)
  let limited = false
  for (let i = 0; i < 20 && !limited; i++)
    try {
      await broker.newDevice('alice', `guess ${i} wrong`, { address: '192.0.2.7' })
    } catch (err) {
      limited = (err as { code?: string }).code === 'SB_ERR_RATE_LIMITED'
    }
  assert.ok(limited, 'guessing is cut off')
  await refused(broker.newDevice('alice', 'second password'), 'SB_ERR_RATE_LIMITED') // the name's budget is spent
})

test('devices are listed and revoked: the session ends with a reason and the token is refused at once', async (t) => {
  const { broker } = await startBroker(t)
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password')
  const list = await broker.devices(bob1.session)
  assert.deepEqual(
    list.map((d) => [d.id, d.online, d.current]),
    [
      [bob1.session.device, true, true],
      [bob2.session.device, true, false],
    ],
  )
  await broker.revokeDevice(bob1.session, bob2.session.device)
  assert.equal((await bob2.sink.closed()).reason, 'revoked')
  await refused(loginUser(broker, bob2), 'SB_ERR_AUTH')
  await refused(broker.revokeDevice(bob1.session, bob2.session.device), 'SB_ERR_UNKNOWN_DEVICE')
  assert.equal((await broker.devices(bob1.session)).length, 1)
})

test('a read on one device: the sender hears 210 once, the other devices learn it was read', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password')
  await broker.send(alice.session, { to: to('bob'), body: text('read me'), msgId: 5, readReceipt: true })
  const m = (await bob1.sink.next('message')).msg
  await bob2.sink.next('message')
  await broker.markRead(bob1.session, m)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.READ)
  const seen = (await bob2.sink.next('read')) as Extract<Outbound, { type: 'read' }>
  assert.equal(seen.seq, m.seq)
  await broker.markRead(bob2.session, m)
  await settle(broker, bob1.session, alice)
  assert.deepEqual(alice.sink.pending('receipt'), [], 'no second 210 from the other device')
})

test('poll devices take and peek from their own cursors', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob', 'poll')
  await broker.setPassword(bob.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password', 'poll')
  await broker.send(alice.session, { to: to('bob'), body: text('one') })
  await broker.send(alice.session, { to: to('bob'), body: text('two') })
  const taken = await broker.take(bob.session, 10, 'take')
  assert.deepEqual(
    taken.map((m) => m.body.toString()),
    ['one', 'two'],
  )
  const peeked = await broker.take(bob2.session, 1, 'peek')
  assert.deepEqual(
    peeked.map((m) => m.body.toString()),
    ['one'],
    "a take by one device does not take the other's",
  )
  await broker.ack(bob2.session, peeked[0]!.seq)
  broker.detach(bob2.session)
  const back = await loginUser(broker, bob2, 'poll')
  assert.deepEqual(
    (await broker.take(back.session, 10, 'peek')).map((m) => m.body.toString()),
    ['two'],
    'after its cursor, once',
  )
})

test('queue limits count what no device has acknowledged; retention removes only acknowledged messages', async (t) => {
  const day = 24 * 3600_000
  const { broker, clock } = await startBroker(t, {
    limits: { maxQueueLength: 2 },
    retentionMs: day,
    reapIntervalMs: day / 4,
    idleTimeoutMs: 10 * day,
  })
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  broker.detach(bob.session)
  await broker.send(alice.session, { to: to('bob'), body: text('1') })
  await broker.send(alice.session, { to: to('bob'), body: text('2') })
  await refused(broker.send(alice.session, { to: to('bob'), body: text('3') }), 'SB_ERR_QUEUE_FULL', 'maxQueueLength')
  const back = await loginUser(broker, bob)
  const first = (await back.sink.next('message')).msg
  await broker.ack(back.session, first.seq)
  await broker.send(alice.session, { to: to('bob'), body: text('3') }) // room again: one acknowledged
  const before = await broker.history(back.session, { with: to('alice') })
  assert.deepEqual(
    before.messages.map((m) => m.body.toString()),
    ['3', '2', '1'],
    'acknowledged messages stay, as history',
  )
  const zed = await registerUser(broker, 'zed')
  clock.advance(day + 2000)
  // The reaper ran (its store calls are the memory store's, done within the turn); a commit after it is the proof.
  await settle(broker, alice.session, zed)
  const after = await broker.history(back.session, { with: to('alice') })
  assert.deepEqual(
    after.messages.map((m) => m.body.toString()),
    ['3', '2'],
    'past retention the acknowledged one went; the unacknowledged ones stay',
  )
})

test('one 300 per message however many devices hold it', async (t) => {
  const { broker, clock } = await startBroker(t, { ackTimeoutMs: 1000 })
  const alice = await registerUser(broker, 'alice')
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password')
  await broker.send(alice.session, { to: to('bob'), body: text('slow'), msgId: 1, receipt: true })
  await bob1.sink.next('message')
  await bob2.sink.next('message')
  clock.advance(1500)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.NOT_YET)
  broker.detach(bob1.session)
  broker.detach(bob2.session)
  await settle(broker, alice.session, await registerUser(broker, 'marker'))
  assert.deepEqual(alice.sink.pending('receipt'), [], 'neither the second device nor the ends say 300 again')
})

test('--room-history: a late joiner is shown the room’s last messages; without it the room is live only', async (t) => {
  const { broker } = await startBroker(t, { roomHistory: 2 })
  const alice = await registerUser(broker, 'alice')
  for (const m of ['r1', 'r2', 'r3']) await broker.send(alice.session, { to: { kind: 'all' }, body: text(m) })
  const late = await registerUser(broker, 'late')
  assert.deepEqual(
    late.sink.events.filter((e) => e.type === 'message').map((e) => (e as { msg: { body: Buffer } }).msg.body.toString()),
    ['r2', 'r3'],
  )
})

test('deleting the account ends every device’s session and refuses every token', async (t) => {
  const { broker } = await startBroker(t)
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password')
  await broker.deleteAccount(bob1.session)
  assert.equal((await bob1.sink.closed()).reason, 'deleted')
  assert.equal((await bob2.sink.closed()).reason, 'deleted')
  await refused(loginUser(broker, bob2), 'SB_ERR_AUTH')
})

test('no 300 after a 200: the other device’s ack timer and its end stay silent once a device acknowledged', async (t) => {
  const { broker, clock } = await startBroker(t, { ackTimeoutMs: 1000 })
  const alice = await registerUser(broker, 'alice')
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'bob password')
  const bob2 = await passwordDevice(broker, 'bob', 'bob password')
  await broker.send(alice.session, { to: to('bob'), body: text('quick'), msgId: 2, receipt: true })
  const m = (await bob1.sink.next('message')).msg
  await bob2.sink.next('message')
  await broker.ack(bob1.session, m.seq)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.DELIVERED)
  broker.detach(bob1.session)
  clock.advance(1500) // bob2 never acknowledged: its timer runs out
  broker.detach(bob2.session)
  await settle(broker, alice.session, await registerUser(broker, 'marker'))
  assert.deepEqual(
    alice.sink.pending('receipt').map((r) => r.receipt.status),
    [],
    'nothing after the 200',
  )
})
