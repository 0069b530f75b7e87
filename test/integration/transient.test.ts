/**
 * Transient direct messages over real sockets (issue 12 aim 3): the SDK over TCP and over /v1/ws, and REST. Live
 * only: pushed to the recipient's sessions with seq 0 and flag TRANSIENT, nothing stored, no receipt; 409/ERROR
 * SB_ERR_OFFLINE when the recipient has no session online.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { WebSocket } from 'ws'
import { startTestServer } from '../helpers/server.js'
import { until } from '../helpers/wait.js'
import { SwitchboardError, type WebSocketConstructor } from '../../src/client/index.js'
import { client, inbox } from '../helpers/sdk.js'

test('SDK: a transient message is pushed live over TCP and WebSocket, never stored; offline is SB_ERR_OFFLINE', async (t) => {
  const { server, port } = await startTestServer(t, { httpPort: 0 })
  const url = `ws://127.0.0.1:${server.port('http')}/v1/ws`
  const alice = await client(t, { port, name: 'alice', reconnect: false })
  const bob = await client(t, { url, WebSocket: WebSocket as unknown as WebSocketConstructor, name: 'bob', reconnect: false })
  const got = inbox(bob)
  const r = await alice.send('bob', 'alice is typing', { transient: true })
  assert.equal(r.accepted, 'delivered')
  assert.equal(r.seq, 0)
  assert.equal(r.recipients, 1)
  assert.equal(r.status, undefined, 'no receipt')
  await until('bob has it', () => got.length === 1)
  assert.deepEqual([got[0]!.text, got[0]!.seq, got[0]!.transient, got[0]!.fromName], ['alice is typing', 0, true, 'alice'])
  // A stored message after it: seq 1 for bob, and the only message in both histories.
  assert.equal((await alice.send('bob', 'hello')).status, 200)
  await until('bob has the stored one', () => got.length === 2)
  assert.deepEqual([got[1]!.seq, got[1]!.transient], [1, false])
  assert.deepEqual(
    (await bob.history()).messages.map((m) => m.text),
    ['hello'],
  )
  assert.deepEqual(
    (await alice.history()).messages.map((m) => m.text),
    ['hello'],
  )
  await bob.close()
  const err = await alice.send('bob', 'still typing', { transient: true }).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(err instanceof SwitchboardError, String(err))
  assert.equal(err.code, 'SB_ERR_OFFLINE')
  assert.match(err.message, /bob is not online/)
})

test('REST: transient: true is 200 "delivered" while the recipient is online, 409 SB_ERR_OFFLINE when not', async (t) => {
  const { server, port } = await startTestServer(t, { httpPort: 0 })
  const base = `http://127.0.0.1:${server.port('http')}`
  const post = async (path: string, body: unknown, token?: string) => {
    const r = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    })
    return { status: r.status, body: (await r.json()) as Record<string, unknown> }
  }
  const reg = await post('/v1/register', { name: 'carol' })
  assert.equal(reg.status, 201)
  const token = reg.body.token as string
  const bob = await client(t, { port, name: 'bob', reconnect: false })
  const got = inbox(bob)
  const sent = await post('/v1/messages?wait=receipt&timeout=2', { to: 'bob', text: 'ping', transient: true }, token)
  assert.equal(sent.status, 200)
  assert.deepEqual([sent.body.status, sent.body.seq, sent.body.receipt], ['delivered', 0, undefined])
  await until('bob has it', () => got.length === 1)
  assert.equal(got[0]!.transient, true)
  await bob.close()
  const offline = await post('/v1/messages', { to: 'bob', text: 'ping', transient: true }, token)
  assert.equal(offline.status, 409)
  assert.equal(offline.body.code, 'SB_ERR_OFFLINE')
  const topic = await post('/v1/messages', { to: '#news', text: 'x', transient: true }, token)
  assert.equal(topic.status, 400)
  assert.equal(topic.body.code, 'SB_ERR_UNSUPPORTED')
})
