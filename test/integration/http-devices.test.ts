/**
 * Several devices per user over HTTP (issue 11): password login (a new device), the device list and revoking,
 * setting and changing the password, history in both directions, the `read` event, and two tokens of one user
 * receiving side by side — over real HTTP against a real broker, with the answers checked against the OpenAPI
 * document.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import SwaggerParser from '@apidevtools/swagger-parser'
import { Ajv } from 'ajv'
import { SseReader, startFixture, type Fixture, type Res } from './http-fixture.js'
import { until } from '../helpers/wait.js'

const PW = 'correct horse battery'

async function registerWithPassword(
  f: Fixture,
  name: string,
  password = PW,
): Promise<{ id: number; device: number; token: string }> {
  const r = await f.api('POST', '/v1/register', { name, password, label: 'first browser' })
  assert.equal(r.status, 201, r.text)
  return r.body
}

async function loginPassword(f: Fixture, name: string, password = PW, label?: string): Promise<Res> {
  return f.api('POST', '/v1/login', label === undefined ? { name, password } : { name, password, label })
}

/** A checker of answers against the served OpenAPI document (statuses, media types, bodies). */
async function specChecker(f: Fixture): Promise<(res: Res, path: string, method: string) => void> {
  const doc = (await f.api('GET', '/openapi.json')).body
  const deref = (await SwaggerParser.dereference(structuredClone(doc))) as any
  const ajv = new Ajv({ strict: false, allErrors: true })
  return (res, p, method) => {
    const op = deref.paths[p]?.[method]
    assert.ok(op, `${method} ${p} is documented`)
    const resp = op.responses[String(res.status)] ?? op.responses.default
    assert.ok(op.responses[String(res.status)], `${method} ${p} documents status ${res.status}`)
    const media = Object.keys(resp.content ?? {})[0]
    if (media === undefined) return
    assert.ok((res.headers.get('content-type') ?? '').startsWith(media), `${method} ${p}: ${res.headers.get('content-type')}`)
    const validate = ajv.compile(resp.content[media].schema)
    assert.ok(validate(res.body), `${method} ${p} ${res.status}: ${ajv.errorsText(validate.errors)} in ${res.text}`)
  }
}

test('password login makes a new device with its own token; a wrong password and an unknown name get the same 401', async (t) => {
  const f = await startFixture(t)
  const check = await specChecker(f)
  const reg = await f.api('POST', '/v1/register', { name: 'alice', password: PW })
  check(reg, '/v1/register', 'post')
  const first = reg.body as { id: number; device: number; token: string }

  const l = await loginPassword(f, 'alice', PW, 'second browser')
  check(l, '/v1/login', 'post')
  assert.equal(l.status, 200)
  assert.equal(l.body.id, first.id)
  assert.equal(l.body.name, 'alice')
  assert.notEqual(l.body.device, first.device)
  assert.match(l.body.token, new RegExp(`^${first.id}\\.[A-Za-z0-9_-]+$`))
  assert.notEqual(l.body.token, first.token)
  assert.equal(f.broker.sessionsOf(first.id).length, 1, 'a password login starts no session by itself')

  // Both tokens work at once, as two devices: neither replaces the other.
  assert.equal((await f.api('GET', '/v1/session', undefined, l.body.token)).status, 200)
  assert.equal((await f.api('GET', '/v1/session', undefined, first.token)).status, 200)
  assert.equal(f.broker.sessionsOf(first.id).length, 2)

  await f.register('nopassword')
  const wrong = await loginPassword(f, 'alice', 'not the password')
  const unknown = await loginPassword(f, 'nobody-here', 'not the password')
  const without = await loginPassword(f, 'nopassword', 'not the password')
  check(wrong, '/v1/login', 'post')
  assert.equal(wrong.status, 401)
  assert.equal(wrong.body.code, 'SB_ERR_AUTH')
  assert.deepEqual(unknown.body, wrong.body, 'an unknown name is not told apart from a wrong password')
  assert.deepEqual(without.body, wrong.body, 'nor is a name without a password')
  assert.equal(unknown.status, 401)

  // The old token form still logs in, and says which device it is.
  const byToken = await f.api('POST', '/v1/login', { token: first.token })
  assert.equal(byToken.status, 200)
  assert.deepEqual(byToken.body, { id: first.id, name: 'alice', device: first.device, token: first.token })
  // Neither a token nor a password: refused by the schema.
  const neither = await f.api('POST', '/v1/login', { name: 'alice' })
  assert.equal(neither.status, 400)
  assert.equal(neither.body.code, 'SB_ERR_MALFORMED')
})

test('bad passwords: too short or too long is 400 SB_ERR_PASSWORD_INVALID, absurdly long is refused by the schema', async (t) => {
  const f = await startFixture(t)
  const short = await f.api('POST', '/v1/register', { name: 'alice', password: 'short' })
  assert.equal(short.status, 400)
  assert.equal(short.body.code, 'SB_ERR_PASSWORD_INVALID')
  const long = await f.api('POST', '/v1/register', { name: 'alice', password: 'é'.repeat(200) }) // 400 bytes
  assert.equal(long.status, 400)
  assert.equal(long.body.code, 'SB_ERR_PASSWORD_INVALID')
  assert.equal((await f.api('POST', '/v1/login', { name: 'alice', token: 'x' })).status, 401, 'nothing was registered')

  const a = await f.register('alice')
  const huge = await f.api('PUT', '/v1/password', { password: 'x'.repeat(5000) }, a.token)
  assert.equal(huge.status, 400)
  assert.equal(huge.body.code, 'SB_ERR_MALFORMED')
  const tooLong = await f.api('PUT', '/v1/password', { password: 'x'.repeat(257) }, a.token)
  assert.equal(tooLong.status, 400)
  assert.equal(tooLong.body.code, 'SB_ERR_PASSWORD_INVALID')
  const login = await loginPassword(f, 'alice', 'x'.repeat(1000))
  assert.equal(login.status, 401, 'a password longer than any that can be set is just wrong')
})

test('failed logins are limited: 429 with Retry-After, for the right password too, until the budget refills', async (t) => {
  const f = await startFixture(t)
  const check = await specChecker(f)
  await registerWithPassword(f, 'alice')
  let limited: Res | undefined
  for (let i = 0; i < 20 && limited === undefined; i++) {
    const r = await loginPassword(f, 'alice', `wrong guess ${i}`)
    if (r.status === 429) limited = r
    else assert.equal(r.status, 401)
  }
  assert.ok(limited, 'the name is limited within 20 failures')
  check(limited, '/v1/login', 'post')
  assert.equal(limited.body.code, 'SB_ERR_RATE_LIMITED')
  const after = Number(limited.headers.get('retry-after'))
  assert.ok(Number.isInteger(after) && after >= 1, `Retry-After ${limited.headers.get('retry-after')}`)
  const right = await loginPassword(f, 'alice')
  assert.equal(right.status, 429, 'while limited, even the right password waits (it is not checked)')
})

test('devices: listed with the current one marked, revoked one refused at once, its SSE stream and long poll ended', async (t) => {
  const f = await startFixture(t)
  const check = await specChecker(f)
  const a = await registerWithPassword(f, 'alice')
  const b = (await loginPassword(f, 'alice', PW, 'phone')).body as { device: number; token: string }
  const c = (await loginPassword(f, 'alice', PW, 'poller')).body as { device: number; token: string }

  const stream = await SseReader.open(`${f.base}/v1/stream`, b.token)
  t.after(() => stream.reader.close())
  await stream.reader.waitFor((e) => e.event === 'ready')
  const poll = f.api('GET', '/v1/messages?wait=30', undefined, c.token)
  await until('the poller to be online', () => f.broker.sessionsOf(a.id).length === 3)
  // The first device's polling session (registration starts one) ends: it is offline, though it asks.
  assert.equal((await f.api('DELETE', '/v1/session', undefined, a.token)).status, 204)

  const list = await f.api('GET', '/v1/devices', undefined, a.token)
  check(list, '/v1/devices', 'get')
  assert.equal(list.status, 200)
  const devices = list.body.devices as { id: number; label: string; online: boolean; current: boolean }[]
  assert.deepEqual(
    devices.map((d) => [d.label, d.online, d.current]),
    [
      ['first browser', false, true],
      ['phone', true, false],
      ['poller', true, false],
    ],
  )
  assert.equal(f.broker.sessionsOf(a.id).length, 2, 'listing devices started no session for the asking token')

  const gone = await f.api('DELETE', `/v1/devices/${b.device}`, undefined, a.token)
  check(gone, '/v1/devices/{id}', 'delete')
  assert.equal(gone.status, 204)
  const closing = await stream.reader.waitFor((e) => e.event === 'closing')
  assert.equal(closing.data.reason, 'revoked')
  const refused = await f.api('GET', '/v1/session', undefined, b.token)
  assert.equal(refused.status, 401)
  assert.equal(refused.body.code, 'SB_ERR_AUTH')
  assert.equal((await SseReader.open(`${f.base}/v1/stream`, b.token)).status, 401)

  assert.equal((await f.api('DELETE', `/v1/devices/${c.device}`, undefined, a.token)).status, 204)
  const ended = await poll
  assert.equal(ended.status, 401, 'the long poll of a revoked device answers at once')
  assert.match(ended.body.detail, /revoked/)

  const again = await f.api('DELETE', `/v1/devices/${b.device}`, undefined, a.token)
  check(again, '/v1/devices/{id}', 'delete')
  assert.equal(again.status, 404)
  assert.equal(again.body.code, 'SB_ERR_UNKNOWN_DEVICE')
  const bob = await f.register('bob')
  const notMine = await f.api('DELETE', `/v1/devices/${a.device}`, undefined, bob.token)
  assert.equal(notMine.status, 404, "another user's device is no device of yours")
  assert.equal((await f.api('GET', '/v1/session', undefined, a.token)).status, 200, 'alice still holds her first device')
  assert.equal((await f.api('DELETE', '/v1/devices/abc', undefined, a.token)).status, 400)
})

test('two tokens of one user both receive by SSE; a sent copy reaches the other device; a read on one is told to the other', async (t) => {
  const f = await startFixture(t)
  const a = await registerWithPassword(f, 'alice')
  const second = (await loginPassword(f, 'alice')).body as { token: string }
  const bob = await f.register('bob')

  const s1 = await SseReader.open(`${f.base}/v1/stream`, a.token)
  const s2 = await SseReader.open(`${f.base}/v1/stream`, second.token)
  t.after(() => {
    s1.reader.close()
    s2.reader.close()
  })
  assert.equal(s1.status, 200)
  assert.equal(s2.status, 200)
  await s1.reader.waitFor((e) => e.event === 'ready')
  await s2.reader.waitFor((e) => e.event === 'ready')

  const sent = await f.api('POST', '/v1/messages', { to: 'alice', text: 'to both', readReceipt: true }, bob.token)
  assert.equal(sent.status, 200)
  const m1 = await s1.reader.waitFor((e) => e.event === 'message' && e.data.text === 'to both')
  const m2 = await s2.reader.waitFor((e) => e.event === 'message' && e.data.text === 'to both')
  assert.equal(m1.data.seq, m2.data.seq, 'one message in one log, handed to each device')

  // The first device marks it read: the second learns it (and does not show it unread any more).
  assert.equal((await f.api('POST', '/v1/read', { seq: m1.data.seq }, a.token)).status, 204)
  const read = await s2.reader.waitFor((e) => e.event === 'read')
  assert.equal(read.data.seq, m1.data.seq)

  // Sent from the first device: its copy goes to the second, flagged SENT, with `peer` the recipient.
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'from my laptop' }, a.token)
  const copy = await s2.reader.waitFor((e) => e.event === 'message' && e.data.text === 'from my laptop')
  assert.equal(copy.data.flags & 8, 8)
  assert.equal(copy.data.from, a.id)
  assert.equal(copy.data.peer, bob.id)
  assert.ok(!s1.reader.events.some((e) => e.event === 'closing'), 'neither stream replaced the other')
  assert.ok(!s2.reader.events.some((e) => e.event === 'closing'))
})

test('the same token from two places is one device: a second stream replaces the first', async (t) => {
  const f = await startFixture(t)
  const a = await f.register('alice')
  const s1 = await SseReader.open(`${f.base}/v1/stream`, a.token)
  t.after(() => s1.reader.close())
  await s1.reader.waitFor((e) => e.event === 'ready')
  const s2 = await SseReader.open(`${f.base}/v1/stream`, a.token)
  t.after(() => s2.reader.close())
  await s2.reader.waitFor((e) => e.event === 'ready')
  const closing = await s1.reader.waitFor((e) => e.event === 'closing')
  assert.equal(closing.data.reason, 'replaced')
  assert.equal(f.broker.sessionsOf(a.id).length, 1)
})

test('history: both directions newest first, paged with before, by user or #topic or all; it neither starts nor replaces a session', async (t) => {
  const f = await startFixture(t)
  const check = await specChecker(f)
  const a = await f.register('alice')
  const b = await f.register('bob')
  const stream = await SseReader.open(`${f.base}/v1/stream`, a.token)
  t.after(() => stream.reader.close())
  await stream.reader.waitFor((e) => e.event === 'ready')

  await f.api('POST', '/v1/messages', { to: 'bob', text: 'one' }, a.token)
  await f.api('POST', '/v1/messages', { to: 'alice', text: 'two' }, b.token)
  await f.api('POST', '/v1/messages', { to: 'bob', text: 'three' }, a.token)
  await f.api('PUT', '/v1/subscriptions/news', undefined, a.token)
  await f.api('PUT', '/v1/subscriptions/news', undefined, b.token)
  await f.api('POST', '/v1/messages', { to: '#news', text: 'headline' }, b.token)
  await stream.reader.waitFor((e) => e.event === 'message' && e.data.text === 'headline')

  const h = await f.api('GET', '/v1/history?with=bob', undefined, a.token)
  check(h, '/v1/history', 'get')
  assert.equal(h.status, 200)
  assert.deepEqual(
    h.body.messages.map((m: { text: string }) => m.text),
    ['three', 'two', 'one'],
  )
  const [three, two] = h.body.messages
  assert.equal(three.flags & 8, 8, 'a sent copy')
  assert.equal(three.from, a.id)
  assert.equal(three.peer, b.id)
  assert.equal(two.from, b.id)
  assert.equal(two.flags & 8, 0)
  assert.equal(h.body.more, false)

  const p1 = await f.api('GET', '/v1/history?with=bob&limit=2', undefined, a.token)
  assert.deepEqual(
    p1.body.messages.map((m: { text: string }) => m.text),
    ['three', 'two'],
  )
  assert.equal(p1.body.more, true)
  const p2 = await f.api('GET', `/v1/history?with=bob&limit=2&before=${p1.body.messages[1].seq}`, undefined, a.token)
  assert.deepEqual(
    p2.body.messages.map((m: { text: string }) => m.text),
    ['one'],
  )
  assert.equal(p2.body.more, false)

  const topic = await f.api('GET', '/v1/history?with=%23news', undefined, a.token)
  assert.deepEqual(
    topic.body.messages.map((m: { text: string }) => m.text),
    ['headline'],
  )
  const all = await f.api('GET', '/v1/history', undefined, a.token)
  assert.deepEqual(
    all.body.messages.map((m: { text: string }) => m.text),
    ['headline', 'three', 'two', 'one'],
  )

  const unknown = await f.api('GET', '/v1/history?with=nobody', undefined, a.token)
  check(unknown, '/v1/history', 'get')
  assert.equal(unknown.status, 404)
  assert.equal((await f.api('GET', '/v1/history?limit=0', undefined, a.token)).status, 400)
  assert.equal((await f.api('GET', '/v1/history', undefined, 'nope')).status, 401)

  // The stream of the same token is still the device's session: history did not replace it.
  await f.api('POST', '/v1/messages', { to: 'alice', text: 'still here' }, b.token)
  await stream.reader.waitFor((e) => e.event === 'message' && e.data.text === 'still here')
  assert.ok(!stream.reader.events.some((e) => e.event === 'closing'))
  assert.equal(f.broker.sessionsOf(a.id).length, 1)
})

test('password: set without the current one, change and remove only with it; logins follow', async (t) => {
  const f = await startFixture(t)
  const check = await specChecker(f)
  const a = await f.register('alice')
  assert.equal((await loginPassword(f, 'alice')).status, 401, 'no password yet')
  const set = await f.api('PUT', '/v1/password', { password: PW }, a.token)
  check(set, '/v1/password', 'put')
  assert.equal(set.status, 204)
  assert.equal((await loginPassword(f, 'alice')).status, 200)

  const noCurrent = await f.api('PUT', '/v1/password', { password: 'another long one' }, a.token)
  check(noCurrent, '/v1/password', 'put')
  assert.equal(noCurrent.status, 401)
  const wrongCurrent = await f.api('PUT', '/v1/password', { password: 'another long one', current: 'not it at all' }, a.token)
  assert.equal(wrongCurrent.status, 401)
  const changed = await f.api('PUT', '/v1/password', { password: 'another long one', current: PW }, a.token)
  assert.equal(changed.status, 204)
  assert.equal((await loginPassword(f, 'alice')).status, 401, 'the old password no longer works')
  assert.equal((await loginPassword(f, 'alice', 'another long one')).status, 200)

  const removed = await f.api('PUT', '/v1/password', { password: null, current: 'another long one' }, a.token)
  assert.equal(removed.status, 204)
  assert.equal((await loginPassword(f, 'alice', 'another long one')).status, 401)
  assert.equal((await f.api('PUT', '/v1/password', { password: PW })).status, 401, 'no token')
})
