/**
 * Sessions on the real Broker, hermetic: register and login, a second login replacing the first, a session
 * ended (kicked) with its unacknowledged messages kept queued, and the reaper on the test's clock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus } from '../../../src/core/types.js'
import { loginUser, refused, registerUser, startBroker, text, to } from './fixture.js'

test('register, then login with the token; a wrong token or an unknown name is refused; a taken name too', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  assert.equal(alice.user.name, 'alice')
  assert.ok(alice.token.length > 20)
  await refused(broker.login({ name: 'alice' }, 'wrong', 'test', alice.sink), 'SB_ERR_AUTH')
  await refused(broker.login({ name: 'nobody' }, alice.token, 'test', alice.sink), 'SB_ERR_AUTH')
  // The store's NAME_TAKEN reaches the caller as the core's error.
  await refused(registerUser(broker, 'alice'), 'SB_ERR_NAME_TAKEN')
  await refused(registerUser(broker, 'ALL'), 'SB_ERR_NAME_INVALID')
  const again = await loginUser(broker, alice)
  assert.equal(broker.sessionOf(alice.user.id), again.session)
})

test('a second login replaces the first session: the first is closed "replaced", the new one gets the messages', async (t) => {
  const { broker } = await startBroker(t)
  const first = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  const second = await loginUser(broker, first)
  assert.equal((await first.sink.closed()).reason, 'replaced')
  assert.equal(first.session.closed, true)
  assert.equal(broker.sessionOf(first.user.id), second.session)
  // The old connection going away later does not end the new session.
  broker.detach(first.session)
  assert.equal(broker.sessionOf(first.user.id), second.session)
  await broker.send(bob.session, { to: to('alice'), body: text('to the new session') })
  assert.equal((await second.sink.next('message')).msg.body.toString(), 'to the new session')
  assert.deepEqual(first.sink.pending('message'), [], 'nothing went to the replaced session')
})

test('a kicked session: closed with its reason, offline, unacked messages stay queued and come back at login', async (t) => {
  const { broker } = await startBroker(t)
  const alice = await registerUser(broker, 'alice')
  const bob = await registerUser(broker, 'bob')
  const r = await broker.send(alice.session, { to: to('bob'), body: text('one'), msgId: 1, receipt: true })
  assert.equal(r.status, 'queued')
  const got = await bob.sink.next('message')
  broker.end(bob.session, 'kicked', 'by the operator')
  assert.deepEqual(await bob.sink.closed(), { reason: 'kicked', text: 'by the operator' })
  assert.equal(broker.sessionOf(bob.user.id), undefined)
  // Its sender learns the message was not acknowledged (300): it is still queued.
  const notYet = await alice.sink.next('receipt')
  assert.deepEqual([notYet.receipt.status, notYet.receipt.msgId], [ReceiptStatus.NOT_YET, 1])
  assert.deepEqual(await broker.queueStats(bob.user.id), { count: 1, bytes: 3 })
  const back = await loginUser(broker, bob)
  const again = await back.sink.next('message')
  assert.deepEqual([again.msg.seq, again.msg.body.toString()], [got.msg.seq, 'one'])
  await broker.ack(back.session, again.msg.seq)
  assert.equal((await alice.sink.next('receipt')).receipt.status, ReceiptStatus.DELIVERED)
})

test('the reaper ends a session idle past idleTimeoutMs on the test clock; a request keeps another alive', async (t) => {
  const { broker, clock } = await startBroker(t, { idleTimeoutMs: 10_000, reapIntervalMs: 1000 })
  const idle = await registerUser(broker, 'idle')
  const busy = await registerUser(broker, 'busy')
  clock.advance(6000)
  broker.whoami(busy.session) // a request refreshes lastSeen
  assert.equal(idle.sink.closedWith, undefined, 'not idle yet: 6 s of 10')
  clock.advance(5000)
  assert.equal((await idle.sink.closed()).reason, 'idle')
  assert.equal(busy.sink.closedWith, undefined, 'busy was seen 5 s ago')
  assert.equal(broker.sessionOf(idle.user.id), undefined)
  assert.equal(broker.sessionOf(busy.user.id), busy.session)
})

test('presence: a watcher sees others come and go', async (t) => {
  const { broker } = await startBroker(t)
  const watcher = await registerUser(broker, 'watcher')
  broker.watchPresence(watcher.session, true)
  const bob = await registerUser(broker, 'bob')
  const on = await watcher.sink.next('presence')
  assert.deepEqual([on.user.name, on.online], ['bob', true])
  broker.detach(bob.session)
  const off = await watcher.sink.next('presence')
  assert.deepEqual([off.user.name, off.online], ['bob', false])
  assert.deepEqual(
    (await broker.who(watcher.session)).map((p) => p.name),
    ['watcher'],
  )
})
