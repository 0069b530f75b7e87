/** `--store memory:` serves like any store (nothing durable): a registration and a message over a real socket. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { startTestServer } from '../helpers/server.js'
import { registered } from '../helpers/native-client.js'

test('a server on --store memory: registers, stores and delivers', async (t) => {
  const { port, server } = await startTestServer(t, { store: 'memory:' })
  const alice = await registered(t, port, 'alice')
  const bob = await registered(t, port, 'bob')
  assert.equal((await alice.say({ kind: 'name', name: 'bob' }, 'in memory')).type, 'ACCEPTED')
  const d = await bob.next('DELIVER')
  assert.equal(d.msg.body.toString(), 'in memory')
  assert.equal((await server.broker.health()).storeKind, 'memory')
  assert.equal((await server.broker.stats()).users, 2)
})
