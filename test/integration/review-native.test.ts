/**
 * Review findings over real sockets and a real SQLite file: each test fails on the defect it names.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { loggedIn, registered, sleep } from '../helpers/native-client.js'
import { SendFlag, SendStatusCode, type FrameOf } from '../../src/protocols/native/frames.js'
import { ErrorNumbers } from '../../src/core/errors.js'

const to = (name: string) => ({ kind: 'name' as const, name })

function errorOf(f: { type: string }, code: keyof typeof ErrorNumbers): FrameOf<'ERROR'> {
  assert.equal(f.type, 'ERROR', `expected ERROR ${code}, got ${JSON.stringify(f)}`)
  const e = f as FrameOf<'ERROR'>
  assert.equal(e.code, ErrorNumbers[code], `${code}: ${e.message}`)
  return e
}

test('a SEND to a 65 000-byte unknown name gets an ERROR, and the server lives on', async (t) => {
  // The error text quoted the whole name; past 65 535 bytes the ERROR frame could not be encoded and the
  // RangeError escaped dispatch's catch as an unhandled rejection, which ends the Node process.
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const e = errorOf(await alice.say(to('x'.repeat(65_530)), 'hi'), 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.ok(Buffer.byteLength(e.message) <= 1024, 'the message does not echo an unbounded name')
  const pong = await alice.request({ type: 'PING' })
  assert.equal(pong.type, 'PONG', 'the connection (and the process) are still serving')
})

test('an idempotent send refused for a full queue can be retried with the same msgId once there is room', async (t) => {
  // The dedupe key was recorded even when no copy was stored, so the retry was answered "duplicate" and the
  // message was never stored: lost, with the sender told it had already been accepted.
  const { port } = await startTestServer(t, { maxQueueLength: 1 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob', 1 /* poll: nothing is pushed or acked by itself */)
  const idem = SendFlag.IDEMPOTENT
  const first = await alice.say(to('bob'), 'one', { msgId: 1, flags: idem })
  assert.equal(first.type, 'ACCEPTED')
  errorOf(await alice.say(to('bob'), 'two', { msgId: 2, flags: idem }), 'SB_ERR_QUEUE_FULL')
  // bob takes (and so removes) the first message: the queue has room again
  const batch = await bob.expect({ type: 'TAKE', max: 10, mode: 0, waitMs: 0 }, 'BATCH')
  assert.deepEqual(
    batch.msgs.map((m) => m.body.toString()),
    ['one'],
  )
  const retry = await alice.say(to('bob'), 'two', { msgId: 2, flags: idem })
  assert.equal(retry.type, 'ACCEPTED')
  assert.notEqual((retry as FrameOf<'ACCEPTED'>).status, SendStatusCode.duplicate, 'the retry is stored, not a duplicate')
  await sleep(20)
  const again = await bob.expect({ type: 'TAKE', max: 10, mode: 0, waitMs: 0 }, 'BATCH')
  assert.deepEqual(
    again.msgs.map((m) => m.body.toString()),
    ['two'],
  )
})

test('marking one message read many times gives its sender one 210, not one per request', async (t) => {
  // Every READ of the same seq sent another 210; for an offline sender each was stored in its queue, so a
  // recipient could fill the sender's queue (then everyone's messages to it were refused as queue-full).
  const { port } = await startTestServer(t, { maxQueueLength: 5 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const carol = await registered(t, port, 'carol')
  assert.equal((await alice.say(to('bob'), 'read me', { msgId: 7, flags: SendFlag.READ_RECEIPT })).type, 'ACCEPTED')
  const d = await bob.next('DELIVER')
  alice.send({ type: 'BYE' })
  await alice.closed
  await sleep(20)
  // read before the ack, then after it (from the recently acknowledged list), then again and again
  for (let i = 0; i < 3; i++) bob.send({ type: 'READ', seq: d.msg.seq })
  bob.ack(d.msg.seq)
  await sleep(300) // the ack's group commit (an fsync) is done
  for (let i = 0; i < 5; i++) bob.send({ type: 'READ', seq: d.msg.seq })
  const ping = await bob.request({ type: 'PING' })
  assert.equal(ping.type, 'PONG')
  await sleep(30)
  assert.deepEqual(
    bob.take('ERROR').map((e) => e.message),
    [],
    'READ of a delivered message is accepted',
  )
  // alice's queue still has room for carol
  assert.equal((await carol.say(to('alice'), 'hello')).type, 'ACCEPTED', "the sender's queue was not filled with receipts")
  const again = await loggedIn(t, port, alice)
  await sleep(100)
  const reads = again.take('RECEIPT').filter((r) => r.msgId === 7 && r.status === 210)
  assert.equal(reads.length, 1, 'exactly one read receipt')
})
