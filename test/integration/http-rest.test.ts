/**
 * The REST API over real HTTP against a real broker and SQLite file: status codes and bodies, long
 * polling, receipts, events, problem+json errors and limits.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { elapse } from '../helpers/wait.js'
import { startFixture } from './http-fixture.js'

test('register, send, poll (take and peek), ack: status codes and bodies', async (t) => {
  const f = await startFixture(t)
  const alice = await f.register('alice')
  assert.equal(alice.name, 'alice')
  assert.match(alice.token, new RegExp(`^${alice.id}\\.[A-Za-z0-9_-]+$`))
  const bob = await f.register('bob')

  const dup = await f.api('POST', '/v1/register', { name: 'alice' })
  assert.equal(dup.status, 409)
  assert.equal(dup.body.code, 'SB_ERR_NAME_TAKEN')

  const sent = await f.api('POST', '/v1/messages', { to: 'bob', text: 'hello bob', msgId: 7 }, alice.token)
  assert.equal(sent.status, 200)
  assert.deepEqual(sent.body, { msgId: 7, status: 'queued', seq: 1, recipients: 1 })
  const byId = await f.api(
    'POST',
    '/v1/messages',
    { to: bob.id, base64: Buffer.from([0xff, 0x00]).toString('base64') },
    alice.token,
  )
  assert.equal(byId.status, 200)
  assert.equal(byId.body.seq, 2)

  const peek = await f.api('GET', '/v1/messages?mode=peek&max=10', undefined, bob.token)
  assert.equal(peek.status, 200)
  assert.equal(peek.body.messages.length, 2)
  const [m1, m2] = peek.body.messages
  assert.equal(m1.text, 'hello bob')
  assert.equal(m1.from, alice.id)
  assert.equal(m1.fromName, 'alice')
  assert.equal(m1.msgId, 7)
  assert.equal(m1.kind, 'text')
  assert.equal(m2.text, undefined, 'bytes that are not UTF-8 come as base64')
  assert.equal(m2.base64, Buffer.from([0xff, 0x00]).toString('base64'))

  const ack = await f.api('POST', '/v1/ack', { seqs: [1, 2, 99] }, bob.token)
  assert.equal(ack.status, 200)
  assert.deepEqual(ack.body, { acked: [1, 2], unknown: [99] })
  assert.equal((await f.broker.queueStats(bob.id)).count, 0)

  await f.api('POST', '/v1/messages', { to: 'bob', text: 'third' }, alice.token)
  const take = await f.api('GET', '/v1/messages', undefined, bob.token)
  assert.equal(take.body.messages[0].text, 'third')
  assert.equal((await f.broker.queueStats(bob.id)).count, 0, 'take mode removes at once')
  const empty = await f.api('GET', '/v1/messages', undefined, bob.token)
  assert.deepEqual(empty.body, { messages: [] })

  const me = await f.api('GET', '/v1/session', undefined, bob.token)
  assert.equal(me.status, 200)
  assert.equal(me.body.name, 'bob')
  assert.equal(me.body.protocol, 'http')

  const out = await f.api('DELETE', '/v1/session', undefined, bob.token)
  assert.equal(out.status, 204)
  assert.equal(f.broker.sessionOf(bob.id), undefined)
  // The token still works: the next call starts a new session.
  const back = await f.api('GET', '/v1/session', undefined, bob.token)
  assert.equal(back.status, 200)
  assert.ok(f.broker.sessionOf(bob.id))
})

test('login by full token, by name + secret, and a wrong token', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('carol')
  const secret = a.token.split('.')[1]!
  const l1 = await f.api('POST', '/v1/login', { token: a.token })
  assert.equal(l1.status, 200)
  // Each token is a device: the login says which (the one registration made).
  assert.deepEqual(l1.body, { id: a.id, name: 'carol', device: (a as { device?: number }).device, token: a.token })
  assert.equal(typeof l1.body.device, 'number')
  const l2 = await f.api('POST', '/v1/login', { name: 'carol', token: secret })
  assert.equal(l2.status, 200)
  assert.equal(l2.body.token, a.token)
  const bad = await f.api('POST', '/v1/login', { id: a.id, token: 'wrong' })
  assert.equal(bad.status, 401)
  assert.equal(bad.body.code, 'SB_ERR_AUTH')
  const badBearer = await f.api('GET', '/v1/who', undefined, `${a.id}.nottheright0ne`)
  assert.equal(badBearer.status, 401)
  assert.equal(badBearer.headers.get('www-authenticate'), 'Bearer realm="switchboard"')
  const garbage = await f.api('GET', '/v1/who', undefined, 'garbage')
  assert.equal(garbage.status, 401)
  assert.equal(garbage.body.code, 'SB_ERR_AUTH')
})

test('a long poll returns as soon as a message arrives, well before its wait', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const b = await f.register('bob')
  const started = Date.now()
  const poll = f.api('GET', '/v1/messages?wait=20', undefined, b.token)
  // Let the poll be waiting when the message comes (nothing tells when it is; arriving earlier, the message would
  // be answered at once and the test would pass without testing the wake-up).
  await elapse(200)
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'wake up' }, a.token)
  const r = await poll
  const took = Date.now() - started
  assert.equal(r.status, 200)
  assert.equal(r.body.messages.length, 1)
  assert.equal(r.body.messages[0].text, 'wake up')
  assert.ok(took >= 200 && took < 3000, `the long poll took ${took} ms`)

  // Nothing arriving: it answers empty after its wait.
  const t0 = Date.now()
  const idle = await f.api('GET', '/v1/messages?wait=1', undefined, b.token)
  assert.deepEqual(idle.body, { messages: [] })
  assert.ok(Date.now() - t0 >= 900, 'waited about a second')
})

test('receipts: stored while the recipient is away, then 200 once it acknowledges; wait=receipt and /v1/receipts', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const b = await f.register('bob')
  await f.api('DELETE', '/v1/session', undefined, b.token) // bob is offline

  const sent = await f.api(
    'POST',
    '/v1/messages?wait=receipt&timeout=5',
    { to: 'bob', text: 'are you there?', msgId: 41 },
    a.token,
  )
  assert.equal(sent.status, 200)
  assert.equal(sent.body.status, 'stored')
  assert.equal(sent.body.receipt.status, 202)
  assert.equal(sent.body.receipt.statusText, 'stored')
  assert.equal(sent.body.receipt.recipient, b.id)

  // Without a msgId the server picks one so the receipt can be matched.
  const auto = await f.api('POST', '/v1/messages', { to: 'bob', text: 'second', receipt: true }, a.token)
  assert.ok(auto.body.msgId > 0)

  const got = await f.api('GET', '/v1/messages?mode=peek', undefined, b.token)
  assert.equal(got.body.messages.length, 2)
  const evWait = f.api('GET', '/v1/events?wait=5&after=0', undefined, a.token)
  const acked = await f.api('POST', '/v1/ack', { seq: got.body.messages[0].seq }, b.token)
  assert.deepEqual(acked.body.acked, [1])

  // Events: the two stored receipts were there already; the 200 follows.
  let events = (await evWait).body.events as { id: number; type: string; data: any }[]
  for (let i = 0; i < 20 && !events.some((e) => e.data.status === 200); i++) {
    const more = await f.api('GET', `/v1/events?wait=2&after=0`, undefined, a.token)
    events = more.body.events
  }
  const delivered = events.find((e) => e.type === 'receipt' && e.data.msgId === 41 && e.data.status === 200)
  assert.ok(delivered, JSON.stringify(events))
  assert.equal(delivered.data.statusText, 'delivered')

  const rs = await f.api('GET', '/v1/receipts/41', undefined, a.token)
  assert.equal(rs.status, 200)
  assert.deepEqual(
    rs.body.receipts.map((r: { status: number }) => r.status),
    [202, 200],
  )
})

test('events: after= gives at-least-once, and a full buffer drops the oldest and says how many', async (t) => {
  const f = await startFixture(t, { http: { eventBufferSize: 3 } })
  const a = await f.register('alice')
  const b = await f.register('bob')
  for (let i = 0; i < 5; i++) await f.api('POST', '/v1/messages', { to: 'ALL', text: `room ${i}` }, a.token)
  const r1 = await f.api('GET', '/v1/events?after=0', undefined, b.token)
  assert.equal(r1.status, 200)
  assert.equal(r1.body.dropped, 2)
  assert.deepEqual(
    r1.body.events.map((e: { data: { text: string } }) => e.data.text),
    ['room 2', 'room 3', 'room 4'],
  )
  assert.equal(r1.body.events[0].type, 'message')
  assert.equal(r1.body.events[0].data.to, 0xffffffff)
  // Not acknowledged by after=: the same events come again.
  const r2 = await f.api('GET', `/v1/events?after=${r1.body.events[0].id}`, undefined, b.token)
  assert.equal(r2.body.events.length, 2)
  assert.equal(r2.body.dropped, 0)
  const r3 = await f.api('GET', `/v1/events?after=${r2.body.next}`, undefined, b.token)
  assert.equal(r3.body.events.length, 0)
  assert.equal(r3.body.next, r2.body.next)
})

test('problem+json errors: unknown recipient 404, oversize 413, bad body 400, no token 401, unknown route 404', async (t) => {
  const f = await startFixture(t, { limits: { maxTextBytes: 100 }, http: { bodyLimit: 2000 } })
  const a = await f.register('alice')

  const unknown = await f.api('POST', '/v1/messages', { to: 'nobody', text: 'x' }, a.token)
  assert.equal(unknown.status, 404)
  assert.match(unknown.headers.get('content-type') ?? '', /^application\/problem\+json/)
  assert.equal(unknown.body.code, 'SB_ERR_UNKNOWN_RECIPIENT')
  assert.equal(unknown.body.status, 404)
  assert.equal(unknown.body.type, '/docs#SB_ERR_UNKNOWN_RECIPIENT')
  assert.equal(unknown.body.instance, '/v1/messages')
  assert.match(unknown.body.detail, /nobody/)

  const text = await f.api('POST', '/v1/messages', { to: 'ALL', text: 'x'.repeat(101) }, a.token)
  assert.equal(text.status, 413)
  assert.equal(text.body.code, 'SB_ERR_TOO_LARGE')
  assert.equal(text.body.limit, 'maxTextBytes')

  const big = await f.api('POST', '/v1/messages', { to: 'ALL', text: 'x'.repeat(3000) }, a.token)
  assert.equal(big.status, 413)
  assert.equal(big.body.code, 'SB_ERR_TOO_LARGE')
  assert.equal(big.body.limit, 'bodyLimit')

  for (const bad of [
    { to: 'bob' },
    { to: 'bob', text: 'x', base64: 'eA==' },
    { to: true, text: 'x' },
    { to: 'bob', text: 'x', surprise: 1 },
    { to: 'bob', text: 'x', msgId: -1 },
  ]) {
    const r = await f.api('POST', '/v1/messages', bad, a.token)
    assert.equal(r.status, 400, JSON.stringify(bad))
    assert.equal(r.body.code, 'SB_ERR_MALFORMED')
    assert.ok(Array.isArray(r.body.errors) && r.body.errors.length > 0)
  }
  const notJson = await f.api('POST', '/v1/messages', '{nope', a.token)
  assert.equal(notJson.status, 400)
  assert.equal(notJson.body.code, 'SB_ERR_MALFORMED')
  const badQuery = await f.api('GET', '/v1/messages?wait=999', undefined, a.token)
  assert.equal(badQuery.status, 400)
  assert.equal(badQuery.body.errors[0].in, 'querystring')

  const noToken = await f.api('GET', '/v1/who')
  assert.equal(noToken.status, 401)
  assert.equal(noToken.body.code, 'SB_ERR_NOT_LOGGED_IN')

  const route = await f.api('GET', '/v1/nothing-here', undefined, a.token)
  assert.equal(route.status, 404)
  assert.equal(route.body.code, 'SB_ERR_UNSUPPORTED')

  // A name that looks like a number stays a name: only JSON integers are ids.
  const digits = await f.register('12345')
  const toName = await f.api('POST', '/v1/messages', { to: '12345', text: 'hi' }, a.token)
  assert.equal(toName.status, 200)
  assert.equal((await f.broker.queueStats(digits.id)).count, 1)
})

test('rate limit: 429 with Retry-After once the per-token bucket is empty', async (t) => {
  const f = await startFixture(t, { limits: { ratePerSecond: 2 } })
  const a = await f.register('alice')
  const statuses: number[] = []
  let limited
  for (let i = 0; i < 10; i++) {
    const r = await f.api('GET', '/v1/who', undefined, a.token)
    statuses.push(r.status)
    if (r.status === 429) {
      limited = r
      break
    }
  }
  assert.ok(limited, `never limited: ${statuses.join(',')}`)
  assert.equal(statuses[0], 200)
  assert.equal(limited.body.code, 'SB_ERR_RATE_LIMITED')
  assert.equal(limited.body.limit, 'ratePerSecond')
  assert.equal(limited.headers.get('retry-after'), '1')

  // Registrations are limited per client address.
  const g = await startFixture(t, { http: { authRatePerSecond: 1 } })
  const codes: number[] = []
  for (let i = 0; i < 4; i++) codes.push((await g.api('POST', '/v1/register', { name: `u${i}` })).status)
  assert.deepEqual(codes.slice(0, 2), [201, 201])
  assert.ok(codes.includes(429), codes.join(','))
})

test('rename, who, presence, topics, block, conversations', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const b = await f.register('bob')

  const who = await f.api('GET', '/v1/who', undefined, a.token)
  assert.deepEqual(
    who.body.users.map((u: { name: string }) => u.name),
    ['alice', 'bob'],
  )
  const watch = await f.api('POST', '/v1/presence', { watch: true }, a.token)
  assert.deepEqual(watch.body, { watch: true })

  const rn = await f.api('POST', '/v1/rename', { name: 'robert' }, b.token)
  assert.equal(rn.status, 200)
  assert.deepEqual(rn.body, { id: b.id, name: 'robert' })
  const taken = await f.api('POST', '/v1/rename', { name: 'alice' }, b.token)
  assert.equal(taken.status, 409)

  const sub = await f.api('PUT', '/v1/subscriptions/news', undefined, b.token)
  assert.deepEqual(sub.body, { topic: 'news', created: true })
  assert.deepEqual((await f.api('GET', '/v1/subscriptions', undefined, b.token)).body, { topics: ['news'] })
  assert.deepEqual((await f.api('GET', '/v1/topics', undefined, a.token)).body, { topics: [{ topic: 'news', subscribers: 1 }] })
  const toTopic = await f.api('POST', '/v1/messages', { to: '#news', text: 'headline' }, a.token)
  assert.equal(toTopic.status, 200)
  assert.equal(toTopic.body.recipients, 1)
  const got = await f.api('GET', '/v1/messages', undefined, b.token)
  assert.equal(got.body.messages[0].topic, 'news')
  const unsub = await f.api('DELETE', '/v1/subscriptions/news', undefined, b.token)
  assert.deepEqual(unsub.body, { topic: 'news', removed: true })

  const blk = await f.api('POST', '/v1/block', { user: 'alice' }, b.token)
  assert.deepEqual(blk.body, { id: a.id, name: 'alice' })
  assert.deepEqual((await f.api('GET', '/v1/blocked', undefined, b.token)).body, { users: [{ id: a.id, name: 'alice' }] })
  const refused = await f.api('POST', '/v1/messages', { to: b.id, text: 'hi' }, a.token)
  assert.equal(refused.status, 404)
  await f.api('POST', '/v1/unblock', { user: a.id }, b.token)
  assert.equal((await f.api('POST', '/v1/messages', { to: b.id, text: 'hi' }, a.token)).status, 200)

  // Conversations: request, accept, talk, close — events on both sides.
  const req = await f.api('POST', '/v1/conversations', { to: 'robert' }, a.token)
  assert.equal(req.status, 201)
  const convId = req.body.convId as string
  const bEvents = async () => (await f.api('GET', '/v1/events', undefined, b.token)).body.events as { type: string; data: any }[]
  const reqEv = (await bEvents()).find((e) => e.type === 'conversation')
  assert.equal(reqEv?.data.event, 'request')
  assert.equal(reqEv?.data.peer.name, 'alice')
  assert.equal((await f.api('POST', `/v1/conversations/${convId}/accept`, undefined, b.token)).status, 204)
  assert.equal((await f.api('POST', `/v1/conversations/${convId}/messages`, { text: 'psst' }, a.token)).status, 204)
  const said = (await bEvents()).find((e) => e.type === 'conversation' && e.data.event === 'message')
  assert.equal(said?.data.text, 'psst')
  assert.equal((await f.api('DELETE', `/v1/conversations/${convId}`, undefined, b.token)).status, 204)
  const gone = await f.api('POST', `/v1/conversations/${convId}/messages`, { text: 'hello?' }, a.token)
  assert.equal(gone.status, 404)
  assert.equal(gone.body.code, 'SB_ERR_UNKNOWN_CONVERSATION')
  const aEvents = (await f.api('GET', '/v1/events', undefined, a.token)).body.events as { type: string; data: any }[]
  assert.ok(aEvents.some((e) => e.type === 'rename' && e.data.name === 'robert' && e.data.oldName === 'bob'))
  assert.ok(aEvents.some((e) => e.type === 'conversation' && e.data.event === 'accepted'))
  assert.ok(aEvents.some((e) => e.type === 'conversation' && e.data.event === 'closed'))

  const del = await f.api('DELETE', '/v1/account', undefined, b.token)
  assert.equal(del.status, 204)
  assert.equal((await f.api('GET', '/v1/who', undefined, b.token)).status, 401)
})
