/**
 * Seed 001's rule for every online recipient (issue 13 item 13): a message queued for an online HTTP polling
 * session that nobody takes gives its sender 300 after the ack timeout, and the 200 follows when it is taken.
 * A real server, native and REST senders, a REST poller.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { registered, type NativeClient } from '../helpers/native-client.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** RECEIPTs that came before a PONG asked for now (the same ordered path): what arrived up to this point. */
async function receiptsSoFar(c: NativeClient) {
  c.send({ type: 'PING' })
  return c.before('RECEIPT', (f) => f.type === 'PONG')
}
import { SendFlag } from '../../src/protocols/native/frames.js'

const ACK_TIMEOUT = 300

async function serverWithHttp(t: Parameters<typeof startTestServer>[0]) {
  const ts = await startTestServer(t, { httpPort: 0, ackTimeout: ACK_TIMEOUT })
  const base = `http://127.0.0.1:${ts.server.port('http')}`
  const api = async (method: string, path: string, body?: unknown, token?: string) => {
    const headers: Record<string, string> = {}
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    const r = await fetch(base + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
    return { status: r.status, body: (await r.json()) as any }
  }
  const register = async (name: string) => {
    const r = await api('POST', '/v1/register', { name })
    assert.equal(r.status, 201, JSON.stringify(r.body))
    return r.body as { id: number; name: string; token: string }
  }
  return { ...ts, api, register }
}

test('native sender: 300 after the ack timeout for a message an online REST poller has not taken, then 200 when taken', async (t) => {
  const { port, api, register } = await serverWithHttp(t)
  const bob = await register('bob') // an HTTP session: online, polling
  const alice = await registered(t, port, 'alice')

  const t0 = Date.now()
  const acc = await alice.say({ kind: 'name', name: 'bob' }, 'anyone there?', { msgId: 5, flags: SendFlag.RECEIPT })
  assert.equal(acc.type, 'ACCEPTED')
  const notYet = await alice.next('RECEIPT')
  assert.equal(notYet.status, 300)
  assert.equal(notYet.msgId, 5)
  assert.equal(notYet.recipient, bob.id)
  assert.ok(Date.now() - t0 >= ACK_TIMEOUT - 20, `300 came after ${Date.now() - t0} ms, before the ack timeout`)
  await sleep(ACK_TIMEOUT * 2) // the ack timer's period is the subject: a second one passes, and no second 300
  assert.deepEqual(await receiptsSoFar(alice), [], 'one 300, not one per ack timeout')

  const polled = await api('GET', '/v1/messages', undefined, bob.token)
  assert.equal(polled.status, 200)
  assert.deepEqual(
    polled.body.messages.map((m: { text: string }) => m.text),
    ['anyone there?'],
  )
  const delivered = await alice.next('RECEIPT')
  assert.equal(delivered.status, 200)
  assert.equal(delivered.msgId, 5)
})

test('a message taken before the ack timeout gives 200 and no 300', async (t) => {
  const { port, api, register } = await serverWithHttp(t)
  const bob = await register('bob')
  const alice = await registered(t, port, 'alice')
  await alice.say({ kind: 'name', name: 'bob' }, 'quick', { msgId: 6, flags: SendFlag.RECEIPT })
  const polled = await api('GET', '/v1/messages', undefined, bob.token)
  assert.equal(polled.body.messages.length, 1)
  assert.equal((await alice.next('RECEIPT')).status, 200)
  await sleep(ACK_TIMEOUT * 2) // the ack timeout passes after the take: it must give nothing
  assert.deepEqual(await receiptsSoFar(alice), [], 'no 300 after the 200')
})

test('REST sender with wait=receipt hears 300 from an online poller that does not take, instead of receiptPending', async (t) => {
  const { api, register } = await serverWithHttp(t)
  const alice = await register('alice')
  const bob = await register('bob')
  const sent = await api('POST', '/v1/messages?wait=receipt&timeout=6', { to: 'bob', text: 'hello?', msgId: 9 }, alice.token)
  assert.equal(sent.status, 200)
  assert.equal(sent.body.status, 'queued')
  assert.equal(sent.body.receipt?.status, 300, JSON.stringify(sent.body))
  assert.equal(sent.body.receipt.statusText, 'not-yet')

  const polled = await api('GET', '/v1/messages', undefined, bob.token)
  assert.equal(polled.body.messages.length, 1)
  // The 200 follows the take's commit: ask until it is there (a condition, with a deadline).
  let statuses: number[] = []
  for (const until = Date.now() + 5000; !statuses.includes(200) && Date.now() < until; await sleep(20)) {
    const rs = await api('GET', '/v1/receipts/9', undefined, alice.token)
    statuses = rs.body.receipts.map((r: { status: number }) => r.status)
  }
  assert.deepEqual(statuses, [300, 200])
})
