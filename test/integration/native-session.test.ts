/**
 * The session lifecycle over real sockets and a real SQLite file: heartbeats, the reaper, the login timeout,
 * rename and name clashes, tokens, a session replaced by a second login, polling (take, peek + ack, long
 * poll), graceful shutdown and a restart on the same data directory.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, errorOf, loggedIn, registered } from '../helpers/native-client.js'
import { elapse, until } from '../helpers/wait.js'
import { Op, SendFlag, SendStatusCode, SessionFlag, type FrameOf } from '../../src/protocols/native/frames.js'
import { ReceiptStatus } from '../../src/core/types.js'
import { Broker } from '../../src/core/broker.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import { LocalBus } from '../../src/bus/local/local-bus.js'
import { listenNative } from '../../src/protocols/native/server.js'

const to = (name: string) => ({ kind: 'name' as const, name })

function accepted(f: { type: string }): FrameOf<'ACCEPTED'> {
  assert.equal(f.type, 'ACCEPTED', `expected ACCEPTED, got ${JSON.stringify(f)}`)
  return f as FrameOf<'ACCEPTED'>
}

test('WELCOME tells the heartbeat interval; PING is answered by PONG with the same corr, before and after login', async (t) => {
  const { port } = await startTestServer(t, { heartbeat: 1234 })
  const c = await NativeClient.connect(port, t)
  const early = await c.expect({ type: 'PING', corr: 77 }, 'PONG')
  assert.equal(early.corr, 77)
  const w = await c.register('alice')
  assert.deepEqual([w.version, w.name, w.heartbeatMs], [1, 'alice', 1234])
  assert.match(w.server, /^switchboard\//)
  assert.equal((await c.expect({ type: 'PING', corr: 0xffffffff }, 'PONG')).corr, 0xffffffff)
  // Requests before login are refused with NOT_LOGGED_IN, and the connection stays.
  const anon = await NativeClient.connect(port, t)
  errorOf(await anon.say(to('alice'), 'hi'), 'SB_ERR_NOT_LOGGED_IN')
  errorOf(await anon.request({ type: 'REQUEST', op: Op.WHOAMI, arg: '' }), 'SB_ERR_NOT_LOGGED_IN')
  await anon.register('bob')
  // A second REGISTER on a logged-in connection conflicts; an unsupported version is refused.
  errorOf(await anon.request({ type: 'REGISTER', version: 1, flags: 0, name: 'carol' }), 'SB_ERR_CONFLICT')
  const v2 = await NativeClient.connect(port, t)
  errorOf(await v2.request({ type: 'REGISTER', version: 2, flags: 0, name: 'carol' }), 'SB_ERR_UNSUPPORTED')
})

test('the reaper ends an idle session with CLOSING idle; heartbeats keep another alive', async (t) => {
  const { port, server } = await startTestServer(t, { idleTimeout: 500 })
  const idle = await registered(t, port, 'idle')
  const busy = await registered(t, port, 'busy')
  const beat = setInterval(() => busy.send({ type: 'PING' }), 150)
  t.after(() => clearInterval(beat))
  const closing = await idle.next('CLOSING', 4000)
  assert.equal(closing.reason, 'idle')
  assert.match(closing.text, /idle/)
  await idle.closed
  assert.equal(server.broker.sessionOf(idle.id), undefined)
  // Elapsed time is the subject: well past busy's own idle timeout, with only its heartbeats to keep it.
  await elapse(300)
  assert.equal(busy.isClosed, false)
  assert.ok(server.broker.sessionOf(busy.id) !== undefined)
  // The idle user is offline, not deleted: a message to it is stored.
  assert.equal(accepted(await busy.say(to('idle'), 'wake up')).status, SendStatusCode.stored)
  clearInterval(beat)
})

test('a connection that does not log in within the login timeout gets ERROR then CLOSING and is closed', async (t) => {
  // The login timeout is a listener option (30 s in startServer), so this builds its own listener.
  const broker = new Broker({ store: new SqliteStore({ path: ':memory:' }), bus: new LocalBus() })
  await broker.start()
  const listener = await listenNative(broker, {
    host: '127.0.0.1',
    port: 0,
    maxFrameBytes: 65536,
    heartbeatMs: 30_000,
    highWaterMark: 1 << 20,
    loginTimeoutMs: 200,
    serverName: 'test',
  })
  t.after(async () => {
    await listener.close()
    await broker.close()
  })
  const c = await NativeClient.connect(listener.port, t)
  errorOf(await c.next('ERROR', 3000), 'SB_ERR_NOT_LOGGED_IN')
  assert.equal((await c.next('CLOSING')).reason, 'error')
  await c.closed
})

test('rename pushes RENAMED to everyone; a taken name is NAME_TAKEN; names compare after NFC', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')

  const r = await alice.expect({ type: 'REQUEST', op: Op.RENAME, arg: 'alicia' }, 'RESULT')
  assert.deepEqual([r.op, r.text, r.users[0]?.id, r.users[0]?.name], [Op.RENAME, 'alicia', alice.id, 'alicia'])
  for (const c of [alice, bob]) {
    const ev = await c.next('RENAMED')
    assert.deepEqual([ev.id, ev.oldName, ev.newName], [alice.id, 'alice', 'alicia'])
  }
  // The new name reaches alice; the old one is free and unknown.
  accepted(await bob.say(to('alicia'), 'hi'))
  assert.equal((await alice.next('DELIVER')).msg.fromName, 'bob')
  errorOf(await bob.say(to('alice'), 'hi'), 'SB_ERR_UNKNOWN_RECIPIENT')
  const who = await bob.expect({ type: 'REQUEST', op: Op.WHOAMI, arg: '' }, 'RESULT')
  assert.equal(who.text, 'bob')

  // Clashes: at registration, by rename, and with a differently composed form of the same name.
  const carol = await NativeClient.connect(port, t)
  const clash = errorOf(await carol.request({ type: 'REGISTER', version: 1, flags: 0, name: 'bob' }), 'SB_ERR_NAME_TAKEN')
  assert.match(clash.message, /bob/)
  errorOf(await alice.request({ type: 'REQUEST', op: Op.RENAME, arg: 'bob' }), 'SB_ERR_NAME_TAKEN')
  await carol.register('Zo\u00e9') // precomposed é
  const zoe = await NativeClient.connect(port, t)
  errorOf(await zoe.request({ type: 'REGISTER', version: 1, flags: 0, name: 'Zoe\u0301' }), 'SB_ERR_NAME_TAKEN')
  // Invalid names, and a name over maxNameBytes (25) naming the limit.
  errorOf(await zoe.request({ type: 'REGISTER', version: 1, flags: 0, name: 'two words' }), 'SB_ERR_NAME_INVALID')
  errorOf(await zoe.request({ type: 'REGISTER', version: 1, flags: 0, name: '' }), 'SB_ERR_NAME_INVALID')
  errorOf(await zoe.request({ type: 'REGISTER', version: 1, flags: 0, name: 'ALL' }), 'SB_ERR_NAME_INVALID')
  const long = errorOf(await zoe.request({ type: 'REGISTER', version: 1, flags: 0, name: 'x'.repeat(26) }), 'SB_ERR_TOO_LARGE')
  assert.equal(long.limit, 'maxNameBytes')
  assert.equal((await zoe.register('x'.repeat(25))).name, 'x'.repeat(25))
})

test('a wrong token or unknown user is SB_ERR_AUTH and the connection stays', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const cred = { id: alice.id, token: alice.token }
  alice.send({ type: 'BYE' })
  await alice.closed
  const c = await NativeClient.connect(port, t)
  errorOf(await c.request({ type: 'LOGIN', version: 1, flags: 0, id: cred.id, name: '', token: 'wrong' }), 'SB_ERR_AUTH')
  errorOf(await c.request({ type: 'LOGIN', version: 1, flags: 0, id: 0, name: 'alice', token: cred.token + 'x' }), 'SB_ERR_AUTH')
  errorOf(await c.request({ type: 'LOGIN', version: 1, flags: 0, id: 0, name: 'nobody', token: cred.token }), 'SB_ERR_AUTH')
  errorOf(await c.request({ type: 'LOGIN', version: 1, flags: 0, id: 999_999, name: '', token: cred.token }), 'SB_ERR_AUTH')
  const w = await c.login({ id: cred.id }, cred.token)
  assert.deepEqual([w.id, w.name, w.token], [cred.id, 'alice', ''])
})

test('a second login replaces the first session, which gets CLOSING replaced and is closed', async (t) => {
  const { port, server } = await startTestServer(t)
  const first = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const second = await loggedIn(t, port, first)
  const closing = await first.next('CLOSING')
  assert.equal(closing.reason, 'replaced')
  await first.closed
  // The new session is the live one: it gets the user's messages and the old socket's close does not end it.
  // The listener counts a connection out after handling its close: then only bob's and the new one are left.
  await until("the server to handle the old socket's close", () => server.connections().native === 2)
  assert.ok(server.broker.sessionOf(first.id) !== undefined)
  accepted(await bob.say(to('alice'), 'to the new session'))
  assert.equal((await second.next('DELIVER')).msg.body.toString(), 'to the new session')
})

test('polling: TAKE takes (and acknowledges), peek leaves messages queued until ACK, waitMs wakes up on arrival', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob', SessionFlag.POLL)
  const take = (max: number, mode: 0 | 1, waitMs = 0, c: NativeClient = bob) =>
    c.expect({ type: 'TAKE', max, mode, waitMs }, 'BATCH', waitMs + 3000)

  for (const text of ['one', 'two', 'three'])
    assert.equal(accepted(await alice.say(to('bob'), text, { flags: SendFlag.RECEIPT })).status, SendStatusCode.queued)
  // A push would have been written when alice's sends were committed, before their ACCEPTED; bob's PONG comes after.
  bob.send({ type: 'PING' })
  assert.deepEqual(await bob.before('DELIVER', (f) => f.type === 'PONG'), [], 'a poll session gets no pushes')
  const b1 = await take(2, 0)
  assert.deepEqual(
    b1.msgs.map((m) => [m.seq, m.body.toString()]),
    [
      [1, 'one'],
      [2, 'two'],
    ],
  )
  const b2 = await take(10, 0)
  assert.deepEqual(
    b2.msgs.map((m) => m.body.toString()),
    ['three'],
  )
  assert.deepEqual((await take(10, 0)).msgs, [])
  // Taking acknowledges: the sender gets a 200 for each.
  const receipts = [await alice.next('RECEIPT'), await alice.next('RECEIPT'), await alice.next('RECEIPT')]
  assert.deepEqual(
    receipts.map((r) => r.status),
    [200, 200, 200],
  )

  // Peek: handed out once per session, handed out again to the next session until acknowledged.
  accepted(await alice.say(to('bob'), 'peeked', { flags: SendFlag.RECEIPT }))
  const p1 = await take(10, 1)
  assert.deepEqual(
    p1.msgs.map((m) => [m.seq, m.body.toString()]),
    [[4, 'peeked']],
  )
  assert.deepEqual((await take(10, 1)).msgs, [], 'the cursor moved past it')
  const bob2 = await loggedIn(t, port, bob, SessionFlag.POLL)
  await bob.closed
  // The session that held it unacknowledged ended: its sender hears 300 now, and 200 once it is acknowledged.
  assert.equal((await alice.next('RECEIPT')).status, ReceiptStatus.NOT_YET)
  const p2 = await take(10, 1, 0, bob2)
  assert.deepEqual(
    p2.msgs.map((m) => m.seq),
    [4],
    'not acknowledged: handed out again',
  )
  bob2.ack(4)
  assert.equal((await alice.next('RECEIPT')).status, ReceiptStatus.DELIVERED)
  const bob3 = await loggedIn(t, port, bob, SessionFlag.POLL)
  assert.deepEqual((await take(10, 1, 0, bob3)).msgs, [])

  // Long poll: TAKE waits and returns as soon as a message arrives.
  const t0 = Date.now()
  const corr = bob3.send({ type: 'TAKE', max: 10, mode: 0, waitMs: 10_000 })
  // Let the TAKE be waiting when the message comes (nothing tells when it is; arriving earlier, the message would
  // be answered at once and the test would pass without testing the wake-up).
  await elapse(200)
  accepted(await alice.say(to('bob'), 'wake'))
  const woke = await bob3.next((f) => f.corr === corr, 5000)
  assert.equal(woke.type, 'BATCH')
  assert.deepEqual(woke.type === 'BATCH' && woke.msgs.map((m) => m.body.toString()), ['wake'])
  assert.ok(Date.now() - t0 < 3000, 'woken by the arrival, not by the wait running out')
  // An empty long poll returns empty after its wait.
  const t1 = Date.now()
  assert.deepEqual((await take(10, 0, 300, bob3)).msgs, [])
  assert.ok(Date.now() - t1 >= 250)

  // A push session cannot TAKE.
  errorOf(await alice.request({ type: 'TAKE', max: 1, mode: 0, waitMs: 0 }), 'SB_ERR_CONFLICT')
})

test('graceful shutdown sends CLOSING shutdown to every session and stops accepting', async (t) => {
  const { port, stop } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob', SessionFlag.POLL)
  await stop()
  for (const c of [alice, bob]) {
    const closing = await c.next('CLOSING')
    assert.equal(closing.reason, 'shutdown')
    await c.closed
  }
  await assert.rejects(NativeClient.connect(port), /ECONNREFUSED/)
})

test('data survives a restart: queued messages, subscriptions, tokens; ids and seqs are not reused', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'sb-'))
  t.after(() => rmSync(dataDir, { recursive: true, force: true }))
  const one = await startTestServer(t, {}, { dataDir })
  const alice = await registered(t, one.port, 'alice')
  const bob = await registered(t, one.port, 'bob')
  const aliceCred = { id: alice.id, token: alice.token }
  const bobCred = { id: bob.id, token: bob.token }
  await bob.expect({ type: 'REQUEST', op: Op.SUBSCRIBE, arg: 'news' }, 'RESULT')
  bob.send({ type: 'BYE' })
  await bob.closed
  const seqs: number[] = []
  for (const text of ['a', 'b', 'c'])
    seqs.push(accepted(await alice.say(to('bob'), text, { msgId: seqs.length + 1, flags: SendFlag.RECEIPT })).seq)
  assert.deepEqual(seqs, [1, 2, 3])
  // An account deleted before the restart: its id must not come back.
  const dave = await registered(t, one.port, 'dave')
  const deleted = await dave.expect({ type: 'REQUEST', op: Op.DELETE_ACCOUNT, arg: '' }, 'RESULT')
  assert.equal(deleted.op, Op.DELETE_ACCOUNT)
  assert.equal((await dave.next('CLOSING')).reason, 'deleted')
  await one.stop()
  await alice.closed

  const two = await startTestServer(t, {}, { dataDir })
  assert.notEqual(two.port, 0)
  const alice2 = await loggedIn(t, two.port, aliceCred)
  const bob2 = await loggedIn(t, two.port, bobCred)
  const got: FrameOf<'DELIVER'>[] = []
  for (let i = 0; i < 3; i++) got.push(await bob2.next('DELIVER'))
  assert.deepEqual(
    got.map((f) => [f.msg.seq, f.msg.msgId, f.msg.body.toString(), f.msg.fromName]),
    [
      [1, 1, 'a', 'alice'],
      [2, 2, 'b', 'alice'],
      [3, 3, 'c', 'alice'],
    ],
  )
  for (const f of got) bob2.ack(f.msg.seq)
  for (let i = 0; i < 3; i++) assert.equal((await alice2.next('RECEIPT')).status, ReceiptStatus.DELIVERED)
  // seqs continue, ids continue past the deleted one, subscriptions are kept, the deleted name is free.
  assert.equal(accepted(await alice2.say(to('bob'), 'd')).seq, 4)
  const carol = await registered(t, two.port, 'carol')
  assert.ok(carol.id > dave.id, `id ${carol.id} must not reuse ${dave.id}`)
  const subs = await bob2.expect({ type: 'REQUEST', op: Op.SUBSCRIPTIONS, arg: '' }, 'RESULT')
  assert.deepEqual(
    subs.items.map((i) => i.name),
    ['news'],
  )
  const dave2 = await registered(t, two.port, 'dave')
  assert.ok(dave2.id > carol.id)
})
