/**
 * The whole server as `switchboard serve` wires it: every listener from one config, talking through one
 * broker. Each protocol has its own suite; this checks that startServer() puts them together.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { startTestServer } from '../helpers/server.js'
import { registered } from '../helpers/native-client.js'
import { until } from '../helpers/wait.js'
import { decodeDelivery, encodeString } from '../../src/protocols/p002/codec.js'

test('one config starts native, HTTP and every gateway; a 002 user and a native user share the room', async (t) => {
  const { server, port } = await startTestServer(t, {
    httpPort: 0,
    p001Port: 0,
    p002Port: 0,
    p004Port: 0,
    zmqPubPort: 0,
    zmqRepPort: 0,
  })
  assert.deepEqual(
    server.listeners.map((l) => l.name),
    ['native', 'http', 'p001', 'p002', 'p004', 'p003-pub', 'p003-rep'],
  )
  for (const l of server.listeners) assert.ok(l.port > 0, `${l.name} has a port`)

  const health = await fetch(`http://127.0.0.1:${server.port('http')}/healthz`)
  assert.equal(health.status, 200)

  const native = await registered(t, port, 'nat')
  const sock = net.connect(server.port('p002'), '127.0.0.1')
  t.after(() => sock.destroy())
  let inbound = Buffer.alloc(0)
  sock.on('data', (d: Buffer) => (inbound = Buffer.concat([inbound, d])))
  await new Promise((r) => sock.once('connect', r))
  sock.write(encodeString('old'))
  await until('the 002 user to be logged in', () => [...server.broker.localSessions()].some((s) => s.user.name === 'old'))
  await native.expect(
    { type: 'SEND', msgId: 1, to: { kind: 'all' }, kind: 0, flags: 0, ttlMs: 0, notBefore: 0, body: Buffer.from('hello room') },
    'ACCEPTED',
  )
  const d = await until('a whole delivery to the 002 user', () => {
    const r = decodeDelivery(inbound)
    return r.ok && r
  })
  assert.equal(d.frame.name, 'nat')
  assert.equal(d.frame.text, 'hello room')
  // Every gateway reports its connections the same way: here one native client and one 002 socket.
  const open = server.connections()
  assert.equal(open.native, 1)
  assert.equal(open.p002, 1)
  assert.equal(open.p001, 0)
  assert.equal(open.p003, 0, 'no ZeroMQ name registered')

  sock.write(encodeString('hi from 002'))
  const got = await native.next('DELIVER')
  assert.equal(got.msg.fromName, 'old')
  assert.equal(got.msg.body.toString(), 'hi from 002')
})
