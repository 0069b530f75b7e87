/**
 * Several devices per user over real sockets: delivery to every device and one 200, a device's own cursor across
 * reconnects, sent copies on the sender's other devices, a password login making a new device that pages HISTORY,
 * DEVICES and REVOKE, failed password logins and their limit, READ on one device seen on another, and SEND_ONLY
 * sessions beside a device's own.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { NativeClient, errorOf, isText, loggedIn, registered } from '../helpers/native-client.js'
import {
  MsgFlag,
  Op,
  PROTOCOL_VERSION,
  SendFlag,
  SessionFlag,
  type Frame,
  type FrameOf,
} from '../../src/protocols/native/frames.js'
import { ReceiptStatus } from '../../src/core/types.js'
import { ErrorNumbers } from '../../src/core/errors.js'

const to = (name: string) => ({ kind: 'name' as const, name })
const PASSWORD = 'correct horse battery'

interface DeviceJson {
  id: number
  label: string
  createdAt: number
  lastSeen: number
  online: boolean
  current: boolean
}

function result(f: Frame): FrameOf<'RESULT'> {
  assert.equal(f.type, 'RESULT', `expected RESULT, got ${JSON.stringify(f)}`)
  return f as FrameOf<'RESULT'>
}

function page(f: Frame): FrameOf<'HISTORY_PAGE'> {
  assert.equal(f.type, 'HISTORY_PAGE', `expected HISTORY_PAGE, got ${JSON.stringify(f)}`)
  return f as FrameOf<'HISTORY_PAGE'>
}

const texts = (p: FrameOf<'HISTORY_PAGE'>): string[] => p.msgs.map((m) => m.body.toString())

async function setPassword(c: NativeClient, password: string | null, current?: string): Promise<Frame> {
  const arg = JSON.stringify(current === undefined ? { password } : { password, current })
  return c.request({ type: 'REQUEST', op: Op.PASSWORD, arg })
}

/** A LOGIN with a password (a new device); resolves to the answer, WELCOME or ERROR. */
async function passwordLogin(c: NativeClient, name: string, password: string, flags = 0): Promise<Frame> {
  return c.request({
    type: 'LOGIN',
    version: PROTOCOL_VERSION,
    flags: SessionFlag.PASSWORD | flags,
    id: 0,
    name,
    token: password,
  })
}

/** A connected client logged in on a new device of `name`; its `token` is that device's. */
async function newDevice(t: Parameters<typeof registered>[0], port: number, name: string, flags = 0): Promise<NativeClient> {
  const c = await NativeClient.connect(port, t)
  const w = await passwordLogin(c, name, PASSWORD, flags)
  assert.equal(w.type, 'WELCOME', `password login: ${JSON.stringify(w)}`)
  const welcome = w as FrameOf<'WELCOME'>
  c.id = welcome.id
  c.name = welcome.name
  c.token = welcome.token
  return c
}

async function devices(c: NativeClient): Promise<DeviceJson[]> {
  const r = result(await c.request({ type: 'REQUEST', op: Op.DEVICES, arg: '' }))
  assert.equal(r.op, Op.DEVICES)
  return JSON.parse(r.text) as DeviceJson[]
}

test('a password login makes a new device with its own token; both devices get a DELIVER, the first ACK gives one 200, the other device keeps it until it ACKs', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob1 = await registered(t, port, 'bob')
  assert.equal(result(await setPassword(bob1, PASSWORD)).text, 'ok')
  const bob2 = await newDevice(t, port, 'bob')
  assert.equal(bob2.id, bob1.id)
  assert.ok(bob2.token.length >= 16 && bob2.token !== bob1.token, 'the new device has a token of its own')

  alice.sendText(to('bob'), 'to both', { msgId: 1, flags: SendFlag.RECEIPT })
  const [d1, d2] = await Promise.all([bob1.next('DELIVER'), bob2.next('DELIVER')])
  assert.equal(d1.msg.seq, d2.msg.seq)
  assert.deepEqual([d1.msg.body.toString(), d2.msg.body.toString()], ['to both', 'to both'])
  bob1.ack(d1.msg.seq)
  const r = await alice.next('RECEIPT')
  assert.deepEqual([r.msgId, r.status, r.recipient], [1, ReceiptStatus.DELIVERED, bob1.id])

  // bob2 has not acknowledged it: a new session of that device gets it again; one of bob1's does not.
  bob2.destroy()
  await bob2.closed
  bob1.destroy()
  await bob1.closed
  const again2 = await loggedIn(t, port, bob2)
  const again1 = await loggedIn(t, port, bob1)
  const re = await again2.next('DELIVER')
  assert.deepEqual([re.msg.seq, re.msg.body.toString()], [d1.msg.seq, 'to both'])
  alice.sendText(to('bob'), 'marker 1', { msgId: 2 })
  assert.deepEqual(
    await again1.before('DELIVER', isText('marker 1')),
    [],
    'the device that acknowledged it is not handed it again',
  )

  // bob2's ACK gives no second 200: the receipt of a later message comes with none before it.
  again2.ack(re.msg.seq)
  again2.ack((await again2.next(isText('marker 1'))).msg.seq)
  alice.sendText(to('bob'), 'marker 2', { msgId: 3, flags: SendFlag.RECEIPT })
  again2.ack((await again2.next(isText('marker 2'))).msg.seq)
  const early = await alice.before('RECEIPT', (f) => f.type === 'RECEIPT' && f.msgId === 3)
  assert.deepEqual(
    early.filter((x) => x.status === ReceiptStatus.DELIVERED).map((x) => x.msgId),
    [],
    'one 200 per message, whichever device acknowledges first',
  )
})

test("a message sent from one device appears on the sender's other device as a sent copy (flag SENT, to = the recipient), not on the sending one", async (t) => {
  const { port } = await startTestServer(t)
  const bob = await registered(t, port, 'bob')
  const alice1 = await registered(t, port, 'alice')
  assert.equal(result(await setPassword(alice1, PASSWORD)).text, 'ok')
  const alice2 = await newDevice(t, port, 'alice')

  const a = await alice1.say(to('bob'), 'from my laptop', { msgId: 11, flags: SendFlag.RECEIPT })
  assert.equal(a.type, 'ACCEPTED')
  const copy = await alice2.next('DELIVER')
  assert.equal(copy.msg.flags & MsgFlag.SENT, MsgFlag.SENT, 'flag SENT')
  assert.equal(copy.msg.flags & MsgFlag.RECEIPT, MsgFlag.RECEIPT, "the sender's flags are kept")
  assert.deepEqual(
    [copy.msg.from, copy.msg.fromName, copy.msg.to, copy.msg.msgId, copy.msg.body.toString()],
    [alice1.id, 'alice', bob.id, 11, 'from my laptop'],
  )
  assert.ok(copy.msg.seq > 0, 'a sent copy is in the log: ACK it like any message')
  alice2.ack(copy.msg.seq)
  const got = await bob.next('DELIVER')
  assert.equal(got.msg.flags & MsgFlag.SENT, 0, 'the recipient gets the message, not a copy')

  // The sending device is not handed its own copy: a later message to alice comes alone.
  bob.sendText(to('alice'), 'marker')
  assert.deepEqual(await alice1.before('DELIVER', isText('marker')), [])
})

test('a device made by a password login pages HISTORY of a conversation: both directions, newest first, more and before', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  const carol = await registered(t, port, 'carol')
  assert.equal(result(await setPassword(alice, PASSWORD)).text, 'ok')
  // Five messages between alice and bob, alternating, and one from carol that is not of that conversation.
  for (let i = 1; i <= 5; i++) {
    const from = i % 2 === 1 ? alice : bob
    const f = await from.say(to(i % 2 === 1 ? 'bob' : 'alice'), `m${i}`)
    assert.equal(f.type, 'ACCEPTED')
  }
  assert.equal((await carol.say(to('alice'), 'not with bob')).type, 'ACCEPTED')

  const third = await newDevice(t, port, 'alice')
  const p1 = page(await third.request({ type: 'HISTORY', with: to('bob'), before: 0, limit: 3 }))
  assert.deepEqual(texts(p1), ['m5', 'm4', 'm3'])
  assert.equal(p1.more, 1)
  const seqs = p1.msgs.map((m) => m.seq)
  assert.deepEqual(
    seqs,
    [...seqs].sort((x, y) => y - x),
    'newest first',
  )
  // alice's own messages are her sent copies (to = bob); bob's are to alice.
  const [m5, m4] = p1.msgs
  assert.deepEqual([m5!.from, m5!.to, m5!.flags & MsgFlag.SENT], [alice.id, bob.id, MsgFlag.SENT])
  assert.deepEqual([m4!.from, m4!.to, m4!.flags & MsgFlag.SENT], [bob.id, alice.id, 0])

  const p2 = page(await third.request({ type: 'HISTORY', with: { kind: 'user', id: bob.id }, before: p1.msgs[2]!.seq, limit: 3 }))
  assert.deepEqual(texts(p2), ['m2', 'm1'])
  assert.equal(p2.more, 0)
  const all = page(await third.request({ type: 'HISTORY', with: { kind: 'all' }, before: 0, limit: 256 }))
  assert.deepEqual(texts(all), ['not with bob', 'm5', 'm4', 'm3', 'm2', 'm1'])
  errorOf(await third.request({ type: 'HISTORY', with: to('nobody'), before: 0, limit: 10 }), 'SB_ERR_UNKNOWN_RECIPIENT')
  errorOf(await third.request({ type: 'HISTORY', with: { kind: 'server' }, before: 0, limit: 10 }), 'SB_ERR_UNSUPPORTED')

  // The new device started at the live end: nothing of the past was pushed to it, but what comes now is.
  bob.sendText(to('alice'), 'live')
  assert.deepEqual(await third.before('DELIVER', isText('live')), [])
})

test('REQUEST DEVICES lists them; REVOKE ends that device with CLOSING revoked and its token is refused at once', async (t) => {
  const { port } = await startTestServer(t)
  const one = await registered(t, port, 'dana')
  assert.equal(result(await setPassword(one, PASSWORD)).text, 'ok')
  const two = await newDevice(t, port, 'dana')

  const list = await devices(one)
  assert.equal(list.length, 2)
  for (const d of list) {
    assert.deepEqual(Object.keys(d).sort(), ['createdAt', 'current', 'id', 'label', 'lastSeen', 'online'])
    assert.equal(d.online, true)
    assert.equal(d.label, 'native')
  }
  const mine = list.find((d) => d.current)!
  const other = list.find((d) => !d.current)!
  assert.ok(mine.id !== other.id)
  assert.equal((await devices(two)).find((d) => d.current)!.id, other.id, 'each device sees itself as current')

  errorOf(await one.request({ type: 'REQUEST', op: Op.REVOKE, arg: '999999' }), 'SB_ERR_UNKNOWN_DEVICE')
  errorOf(await one.request({ type: 'REQUEST', op: Op.REVOKE, arg: 'two' }), 'SB_ERR_MALFORMED')
  const r = result(await one.request({ type: 'REQUEST', op: Op.REVOKE, arg: String(other.id) }))
  assert.equal(r.text, String(other.id))
  const closing = await two.next('CLOSING')
  assert.equal(closing.reason, 'revoked')
  await two.closed
  const retry = await NativeClient.connect(port, t)
  errorOf(
    await retry.request({ type: 'LOGIN', version: PROTOCOL_VERSION, flags: 0, id: two.id, name: '', token: two.token }),
    'SB_ERR_AUTH',
  )
  assert.deepEqual(
    (await devices(one)).map((d) => d.id),
    [mine.id],
  )
  // The revoking device carries on.
  assert.equal((await one.expect({ type: 'PING' }, 'PONG')).type, 'PONG')
})

test('a wrong password is SB_ERR_AUTH; after 10 failures the name is rate limited, the right password too; PASSWORD checks its arg and the current one', async (t) => {
  const { port } = await startTestServer(t)
  const erin = await registered(t, port, 'erin')
  // No password yet: a password login is refused like a wrong one.
  const c = await NativeClient.connect(port, t)
  errorOf(await passwordLogin(c, 'erin', PASSWORD), 'SB_ERR_AUTH')
  errorOf(await setPassword(erin, 'short'), 'SB_ERR_PASSWORD_INVALID')
  errorOf(await erin.request({ type: 'REQUEST', op: Op.PASSWORD, arg: '"just a string"' }), 'SB_ERR_MALFORMED')
  assert.equal(result(await setPassword(erin, PASSWORD)).text, 'ok')
  // Changing it needs the current one.
  errorOf(await setPassword(erin, 'another password'), 'SB_ERR_AUTH')
  errorOf(
    await c.request({
      type: 'LOGIN',
      version: PROTOCOL_VERSION,
      flags: SessionFlag.PASSWORD,
      id: erin.id,
      name: '',
      token: PASSWORD,
    }),
    'SB_ERR_MALFORMED',
  )
  errorOf(await passwordLogin(c, 'nobody-here', PASSWORD), 'SB_ERR_AUTH')
  let failures = 2 // the login before the password, the change without the current one
  let limited: FrameOf<'ERROR'> | undefined
  while (failures < 20 && limited === undefined) {
    const f = await passwordLogin(c, 'erin', `wrong password ${failures}`)
    if (f.type === 'ERROR' && f.code === ErrorNumbers.SB_ERR_RATE_LIMITED) limited = f
    else errorOf(f, 'SB_ERR_AUTH')
    failures++
  }
  assert.ok(limited !== undefined && failures <= 12, `rate limited after about 10 failures (${failures})`)
  assert.equal(limited.limit, 'loginAttempts')
  errorOf(await passwordLogin(c, 'erin', PASSWORD), 'SB_ERR_RATE_LIMITED')
})

test('READ on one device: the other device gets READ_ELSEWHERE, the sender one 210', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob1 = await registered(t, port, 'bob')
  assert.equal(result(await setPassword(bob1, PASSWORD)).text, 'ok')
  const bob2 = await newDevice(t, port, 'bob')

  alice.sendText(to('bob'), 'read me', { msgId: 5, flags: SendFlag.READ_RECEIPT })
  const [d1, d2] = await Promise.all([bob1.next('DELIVER'), bob2.next('DELIVER')])
  bob1.ack(d1.msg.seq)
  bob1.send({ type: 'READ', seq: d1.msg.seq })
  const elsewhere = await bob2.next('READ_ELSEWHERE')
  assert.equal(elsewhere.seq, d2.msg.seq)
  assert.equal(elsewhere.corr, 0)
  assert.ok(elsewhere.at > 0)
  const r = await alice.next((f) => f.type === 'RECEIPT' && f.status === ReceiptStatus.READ)
  assert.equal((r as FrameOf<'RECEIPT'>).msgId, 5)
  // The reading device is not told its own read; a second READ elsewhere gives no second 210.
  bob2.ack(d2.msg.seq)
  bob2.send({ type: 'READ', seq: d2.msg.seq })
  alice.sendText(to('bob'), 'marker', { msgId: 6, flags: SendFlag.READ_RECEIPT })
  const m = await bob1.next(isText('marker'))
  assert.deepEqual(bob1.take('READ_ELSEWHERE'), [])
  bob1.ack(m.msg.seq)
  bob1.send({ type: 'READ', seq: m.msg.seq })
  const before = await alice.before('RECEIPT', (f) => f.type === 'RECEIPT' && f.msgId === 6)
  assert.deepEqual(
    before.filter((x) => x.status === ReceiptStatus.READ),
    [],
    'one 210 per message',
  )
})

test('SEND_ONLY: a session beside the device leaves its session connected and is handed nothing from the log; a second LOGIN of the same token still replaces', async (t) => {
  const { port } = await startTestServer(t)
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')

  const oneShot = await loggedIn(t, port, bob, SessionFlag.SEND_ONLY)
  const a = await oneShot.say(to('alice'), 'sent by a one-shot')
  assert.equal(a.type, 'ACCEPTED')
  assert.equal((await alice.next('DELIVER')).msg.body.toString(), 'sent by a one-shot')
  alice.sendText(to('bob'), 'for the chat')
  assert.equal((await bob.next(isText('for the chat'))).msg.body.toString(), 'for the chat')
  // The one-shot got none of it; its requests are answered.
  assert.equal((await oneShot.expect({ type: 'PING' }, 'PONG')).type, 'PONG')
  assert.deepEqual(oneShot.take('DELIVER'), [])
  await oneShot.end()
  assert.equal(bob.isClosed, false, "the chat's session stayed")
  assert.deepEqual(bob.take('CLOSING'), [])

  // A password login may be send-only too: a new device that takes nothing.
  assert.equal(result(await setPassword(bob, PASSWORD)).text, 'ok')
  const made = await newDevice(t, port, 'bob', SessionFlag.SEND_ONLY)
  assert.ok(made.token.length >= 16)
  alice.sendText(to('bob'), 'after')
  await bob.next(isText('after'))
  assert.equal((await made.expect({ type: 'PING' }, 'PONG')).type, 'PONG')
  assert.deepEqual(made.take('DELIVER'), [])

  // The same token without SEND_ONLY replaces the device's session.
  const again = await loggedIn(t, port, bob)
  assert.equal((await bob.next('CLOSING')).reason, 'replaced')
  assert.equal(again.isClosed, false)
  // REGISTER takes neither flag.
  const r = await NativeClient.connect(port, t)
  errorOf(
    await r.request({ type: 'REGISTER', version: PROTOCOL_VERSION, flags: SessionFlag.SEND_ONLY, name: 'zed' }),
    'SB_ERR_UNSUPPORTED',
  )
})
