/**
 * Bad input and limits over real sockets: unknown recipients, oversize text and frames (ERROR naming the limit,
 * the connection stays), malformed frames (ERROR, CLOSING, close — and the server keeps serving others), the
 * rate limit, and a slow consumer of the room cut off while the others keep receiving.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, SessionFlag, errorOf, registered } from '../helpers/native-client.js'
import { elapse, until } from '../helpers/wait.js'
import { encode } from '../../src/protocols/native/codec.js'
import { SendFlag, SendStatusCode, type FrameOf } from '../../src/protocols/native/frames.js'

const to = (name: string) => ({ kind: 'name' as const, name })

async function stillServes(c: NativeClient): Promise<void> {
  assert.equal((await c.expect({ type: 'PING' }, 'PONG')).type, 'PONG')
}

test('unknown recipients are refused with SB_ERR_UNKNOWN_RECIPIENT and nothing is queued', async (t) => {
  const { port, server } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const e = errorOf(await alice.say(to('nobody'), 'hello?'), 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.match(e.message, /nobody/)
  errorOf(await alice.say({ kind: 'user', id: 999_999 }, 'hello?'), 'SB_ERR_UNKNOWN_RECIPIENT')
  errorOf(await alice.say({ kind: 'user', id: 0 }, 'SERVER by id is not a user'), 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.deepEqual(await server.broker.queueStats(alice.id), { count: 0, bytes: 0 })
  await stillServes(alice)
})

test('a queue full by bytes is refused naming maxQueueBytes, one full by length naming maxQueueLength', async (t) => {
  // A queue full by bytes was refused naming maxQueueLength: the store said only "0", and the broker guessed.
  const { port, server } = await startTestServer(t, { maxQueueBytes: 10, maxQueueLength: 3 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob', 1 /* poll: nothing is pushed or acked by itself */)
  assert.equal((await alice.say(to('bob'), '12345678')).type, 'ACCEPTED')
  const byBytes = errorOf(await alice.say(to('bob'), '123'), 'SB_ERR_QUEUE_FULL')
  assert.equal(byBytes.limit, 'maxQueueBytes')
  assert.match(byBytes.message, /maxQueueBytes \(10 bytes\)/)
  assert.doesNotMatch(byBytes.message, /maxQueueLength/)
  assert.equal((await alice.say(to('bob'), 'ab')).type, 'ACCEPTED', 'exactly at maxQueueBytes is allowed')
  assert.deepEqual(await server.broker.queueStats(bob.id), { count: 2, bytes: 10 })
  // Room in bytes, none in length.
  const batch = await bob.expect({ type: 'TAKE', max: 10, mode: 0, waitMs: 0 }, 'BATCH')
  assert.equal(batch.msgs.length, 2)
  for (const body of ['a', 'b', 'c']) assert.equal((await alice.say(to('bob'), body)).type, 'ACCEPTED')
  const byLength = errorOf(await alice.say(to('bob'), 'd'), 'SB_ERR_QUEUE_FULL')
  assert.equal(byLength.limit, 'maxQueueLength')
  assert.match(byLength.message, /maxQueueLength \(3 messages\)/)
  assert.deepEqual(await server.broker.queueStats(bob.id), { count: 3, bytes: 3 })
  await stillServes(alice)
})

test('oversize text gets ERROR naming maxTextBytes; the connection stays', async (t) => {
  const { port } = await startTestServer(t, { maxTextBytes: 100 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const e = errorOf(await alice.say(to('bob'), 'x'.repeat(101)), 'SB_ERR_TOO_LARGE')
  assert.equal(e.limit, 'maxTextBytes')
  assert.match(e.message, /maxTextBytes \(100 bytes\)/)
  // The room and the limit's edge: exactly 100 bytes pass.
  errorOf(await alice.say({ kind: 'all' }, 'é'.repeat(51)), 'SB_ERR_TOO_LARGE') // 102 UTF-8 bytes
  assert.equal((await alice.say(to('bob'), 'x'.repeat(100))).type, 'ACCEPTED')
  assert.equal((await bob.next('DELIVER')).msg.body.length, 100)
  await stillServes(alice)
})

test('an oversize frame gets ERROR naming maxFrameBytes with its corr; the connection stays', async (t) => {
  const { port } = await startTestServer(t, { maxFrameBytes: 4096 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const corr = alice.sendText(to('bob'), Buffer.alloc(10_000, 0x61))
  const e = errorOf(await alice.next('ERROR'), 'SB_ERR_TOO_LARGE')
  assert.equal(e.corr, corr)
  assert.equal(e.limit, 'maxFrameBytes')
  assert.match(e.message, /maxFrameBytes \(4096\)/)
  // Sent in pieces, the skipped frame's bytes do not confuse what follows.
  const big = encode({
    type: 'SEND',
    corr: 500,
    msgId: 0,
    to: to('bob'),
    kind: 0,
    flags: 0,
    ttlMs: 0,
    notBefore: 0,
    body: Buffer.alloc(50_000, 0x62),
  })
  for (let off = 0; off < big.length; off += 7000) {
    alice.writeRaw(big.subarray(off, off + 7000))
    await elapse(5) // pacing, not waiting: the frame should reach the server in pieces
  }
  assert.equal((await alice.next('ERROR')).corr, 500)
  assert.equal((await alice.say(to('bob'), 'small')).type, 'ACCEPTED')
  assert.equal((await bob.next('DELIVER')).msg.body.toString(), 'small')
  assert.equal(alice.isClosed, false)
})

const malformed: { name: string; hex: string; detail: RegExp }[] = [
  { name: 'unknown frame type', hex: '00000005 30 00000009', detail: /unknown frame type 0x30/ },
  {
    name: 'truncated field (name length 10, 5 bytes)',
    hex: '0000000f 01 00000009 0001 00 000a 616c696365',
    detail: /past the end/,
  },
  { name: 'bad UTF-8 in a string', hex: '0000000c 01 00000009 0001 00 0002 fffe', detail: /UTF-8/ },
  { name: 'length shorter than the header', hex: '00000002 0000', detail: /shorter than its header/ },
]

for (const m of malformed) {
  test(`malformed frame (${m.name}): ERROR, CLOSING error, close — and others are still served`, async (t) => {
    const { port, server } = await startTestServer(t)
    const alice = await registered(t, port, 'alice')
    const bob = await registered(t, port, 'bob')
    const anon = await NativeClient.connect(port, t)
    for (const c of [bob, anon]) {
      c.writeRaw(m.hex)
      const e = errorOf(await c.next('ERROR'), 'SB_ERR_MALFORMED')
      assert.match(e.message, m.detail)
      assert.equal((await c.next('CLOSING')).reason, 'error')
      await c.closed
    }
    await until("the bad connection's session to end", () => server.broker.sessionOf(bob.id) === undefined)
    // The server keeps serving: alice works, bob's queue takes messages, a new connection logs in.
    await stillServes(alice)
    assert.equal((await alice.say(to('bob'), 'are you there?')).type, 'ACCEPTED')
    const bob2 = await NativeClient.connect(port, t)
    await bob2.login({ id: bob.id }, bob.token)
    assert.equal((await bob2.next('DELIVER')).msg.body.toString(), 'are you there?')
  })
}

test('a valid server-to-client frame sent by a client is malformed input: ERROR, CLOSING error, close', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const e = errorOf(await bob.request({ type: 'PONG' }), 'SB_ERR_MALFORMED')
  assert.match(e.message, /server-to-client/)
  assert.equal((await bob.next('CLOSING')).reason, 'error')
  await bob.closed
  await stillServes(alice)
})

test('a flood beyond the rate limit gets SB_ERR_RATE_LIMITED naming ratePerSecond, then recovers', async (t) => {
  const { port } = await startTestServer(t, { rate: 5 }) // bursts of 10
  const alice = await registered(t, port, 'alice')
  const n = 40
  const corrs = Array.from({ length: n }, () => alice.send({ type: 'PING' }))
  const answers = await Promise.all(corrs.map((corr) => alice.next((f) => f.corr === corr)))
  const limited = answers.filter((f) => f.type === 'ERROR')
  const pongs = answers.filter((f) => f.type === 'PONG')
  assert.ok(limited.length >= n - 12, `${limited.length} of ${n} refused`)
  assert.ok(pongs.length >= 9 && pongs.length <= 12, `${pongs.length} answered (the burst)`)
  const e = errorOf(limited[0]!, 'SB_ERR_RATE_LIMITED')
  assert.equal(e.limit, 'ratePerSecond')
  assert.match(e.message, /ratePerSecond \(5\)/)
  assert.equal(alice.isClosed, false, 'rate limiting does not close the connection')
  // The bucket refills with time (5 a second): a PING is answered again within a second or so. Polling keeps the
  // test from betting on how long the burst took.
  await until('a PING to be answered again', async () => (await alice.request({ type: 'PING' })).type === 'PONG', 5000, 100)
})

test('a room receiver that never reads is cut off as a slow consumer while the others keep receiving', async (t) => {
  const { port, server } = await startTestServer(t, { maxSessionBuffer: 256 * 1024 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const slow = await registered(t, port, 'slow')
  slow.pause()
  const body = Buffer.alloc(60_000, 0x7a)
  let sent = 0
  // Loopback socket buffers hold a few MiB before the server's own write queue grows.
  while (server.broker.sessionOf(slow.id) !== undefined && sent < 1500) {
    const a = await alice.say({ kind: 'all' }, body)
    assert.equal(a.type, 'ACCEPTED')
    sent++
    if (sent % 20 === 0) bob.take('DELIVER') // bob reads as it goes; keep his inbox small
  }
  assert.equal(server.broker.sessionOf(slow.id), undefined, `slow consumer still attached after ${sent} messages`)
  const stats = await server.broker.stats()
  assert.equal(stats.slowConsumers, 1)
  // The others go on: one more room message reaches bob, and only bob.
  const last = await alice.say({ kind: 'all' }, 'after the cut')
  assert.equal(last.type === 'ACCEPTED' && last.recipients, 1)
  const d = await bob.next((f) => f.type === 'DELIVER' && f.msg.body.toString() === 'after the cut', 10_000)
  assert.equal(d.type, 'DELIVER')
  // The slow client, once it reads, finds CLOSING slow-consumer after what was already queued for it.
  slow.resume()
  const closing = await slow.next('CLOSING', 10_000)
  assert.equal(closing.reason, 'slow-consumer')
  assert.match(closing.text, /maxSessionBuffer/)
  await slow.closed
  assert.ok(slow.received.filter((f) => f.type === 'DELIVER').length < sent)
})

test('a SEND to a 65 000-byte unknown name gets an ERROR, and the server lives on', async (t) => {
  // The error text quoted the whole name; past 65 535 bytes the ERROR frame could not be encoded and the
  // RangeError escaped dispatch's catch as an unhandled rejection, which ends the Node process.
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const e = errorOf(await alice.say(to('x'.repeat(65_530)), 'hi'), 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.ok(Buffer.byteLength(e.message) <= 1024, 'the message does not echo an unbounded name')
  await stillServes(alice)
})

test('an idempotent send refused for a full queue can be retried with the same msgId once there is room', async (t) => {
  // The dedupe key was recorded even when no copy was stored, so the retry was answered "duplicate" and the
  // message was never stored: lost, with the sender told it had already been accepted.
  const { port } = await startTestServer(t, { maxQueueLength: 1 })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob', SessionFlag.POLL) // nothing is pushed or acked by itself
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
  // waitMs: the server answers as soon as the message is there
  const again = await bob.expect({ type: 'TAKE', max: 10, mode: 0, waitMs: 2000 }, 'BATCH')
  assert.deepEqual(
    again.msgs.map((m) => m.body.toString()),
    ['two'],
  )
})
