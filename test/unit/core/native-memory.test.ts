/**
 * The native adapter on the real Broker over an in-memory duplex pair (MemoryTransport): frames in and out with
 * no socket and no file, the same path a TCP connection takes after its bytes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ReceiptStatus } from '../../../src/core/types.js'
import { SendFlag } from '../../../src/protocols/native/frames.js'
import { nativeOverMemory } from '../../helpers/memory-transport.js'
import { startBroker, to } from './fixture.js'

test('native over memory: register, send with a receipt, deliver, ack, 200', async (t) => {
  const { broker } = await startBroker(t)
  const { client: alice } = nativeOverMemory(t, broker)
  const { client: bob } = nativeOverMemory(t, broker)
  await alice.register('alice')
  await bob.register('bob')
  const accepted = await alice.say(to('bob'), 'hi bob', { msgId: 1, flags: SendFlag.RECEIPT })
  assert.equal(accepted.type, 'ACCEPTED')
  const d = await bob.next('DELIVER')
  assert.deepEqual([d.msg.body.toString(), d.msg.fromName, d.msg.seq], ['hi bob', 'alice', 1])
  bob.ack(d.msg.seq)
  const r = await alice.next('RECEIPT')
  assert.deepEqual([r.status, r.msgId, r.recipientName], [ReceiptStatus.DELIVERED, 1, 'bob'])
  assert.deepEqual(alice.decodeErrors, [])
})

test('native over memory: a second login replaces the first connection with CLOSING replaced, then closes it', async (t) => {
  const { broker } = await startBroker(t)
  const { client: first } = nativeOverMemory(t, broker)
  await first.register('alice')
  const { client: second } = nativeOverMemory(t, broker)
  await second.login({ id: first.id }, first.token)
  assert.equal((await first.next('CLOSING')).reason, 'replaced')
  await first.closed
  assert.equal(broker.sessionOf(first.id)?.user.name, 'alice')
  const { client: bob } = nativeOverMemory(t, broker)
  await bob.register('bob')
  assert.equal((await bob.say(to('alice'), 'to the new one')).type, 'ACCEPTED')
  assert.equal((await second.next('DELIVER')).msg.body.toString(), 'to the new one')
})
