/**
 * Transient direct messages (issue 12 aim 3), hermetic: live only, to every online device, never stored, no
 * receipt; refused when the recipient has no session online, when it is not a user, and alike for a blocked
 * sender and an unknown name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Flag } from '../../../src/core/types.js'
import { passwordDevice, refused, registerUser, startBroker, text, to } from './fixture.js'

test('a transient message reaches every online device of the recipient and is never stored', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob1 = await registerUser(broker, 'bob')
  await broker.setPassword(bob1.session, 'correct horse')
  const bob2 = await passwordDevice(broker, 'bob', 'correct horse')
  const r = await broker.send(alice.session, { to: to('bob'), body: text('typing…'), msgId: 5, transient: true, receipt: true })
  assert.deepEqual(r, { msgId: 5, status: 'delivered', seq: 0, recipients: 2 })
  for (const b of [bob1, bob2]) {
    const { msg } = await b.sink.next('message')
    assert.deepEqual(
      [msg.seq, msg.msgId, msg.from, msg.fromName, msg.to, msg.body.toString(), msg.flags],
      [0, 5, alice.user.id, 'alice', bob1.user.id, 'typing…', Flag.TRANSIENT],
    )
  }
  // Nothing in bob's log (no copy) nor in alice's (no sent copy); no receipt, even though one was asked for.
  assert.deepEqual(await broker.queueStats(bob1.user.id), { count: 0, bytes: 0 })
  assert.deepEqual((await broker.history(bob1.session, {})).messages, [])
  assert.deepEqual((await broker.history(alice.session, {})).messages, [])
  // A stored message sent after it is the first thing in both logs (seq 1): the transient one took no seq.
  const stored = await broker.send(alice.session, { to: to('bob'), body: text('hello'), msgId: 6, receipt: true })
  assert.equal(stored.seq, 1)
  assert.equal((await bob1.sink.next('message')).msg.seq, 1)
  await broker.ack(bob1.session, 1)
  // The 200 for msgId 6 is the first receipt alice gets, and the only one: none was ever made for msgId 5.
  assert.equal((await alice.sink.next('receipt')).receipt.msgId, 6)
  assert.deepEqual(alice.sink.pending('receipt'), [])
})

test('a transient message to a recipient with no session online is refused SB_ERR_OFFLINE, and nothing waits for it', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  broker.detach(bob.session)
  const err = await refused(broker.send(alice.session, { to: to('bob'), body: text('ping'), transient: true }), 'SB_ERR_OFFLINE')
  assert.match(err.message, /bob is not online/)
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 0, bytes: 0 })
})

test('a transient message goes to one user only, never a file or held; a blocked sender learns what an unknown name does', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  await refused(broker.send(alice.session, { to: { kind: 'all' }, body: text('x'), transient: true }), 'SB_ERR_UNSUPPORTED')
  await refused(
    broker.send(alice.session, { to: { kind: 'topic', topic: 'news' }, body: text('x'), transient: true }),
    'SB_ERR_UNSUPPORTED',
  )
  await refused(broker.send(alice.session, { to: { kind: 'server' }, body: text('who'), transient: true }), 'SB_ERR_UNSUPPORTED')
  await refused(
    broker.send(alice.session, { to: to('bob'), body: text('later'), transient: true, notBefore: Date.now() + 60_000 }),
    'SB_ERR_UNSUPPORTED',
  )
  const unknown = await refused(
    broker.send(alice.session, { to: to('nobody'), body: text('x'), transient: true }),
    'SB_ERR_UNKNOWN_RECIPIENT',
  )
  await broker.block(bob.session, to('alice'))
  const blocked = await refused(
    broker.send(alice.session, { to: to('bob'), body: text('x'), transient: true }),
    'SB_ERR_UNKNOWN_RECIPIENT',
  )
  assert.equal(blocked.message.replace('bob', 'NAME'), unknown.message.replace('nobody', 'NAME'))
  assert.deepEqual(bob.sink.pending('message'), [])
})
