/**
 * Review findings on the HTTP adapter, over a real listener and a real SQLite file.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { startFixture } from './http-fixture.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

test('an SSE client that goes away while its login is under way leaves no session behind', async (t) => {
  // The stream's 'close' listener was attached only after the login resolved; a client gone by then was never
  // detached, and the stream's heartbeat kept refreshing lastSeen, so the user stayed online for good.
  const f = await startFixture(t)
  const u = await f.register('ann')
  const store = f.broker.store
  const userById = store.userById.bind(store)
  // A store with a round trip (PostgreSQL): the login takes a while.
  store.userById = async (id: number) => {
    await sleep(150)
    return userById(id)
  }
  t.after(() => {
    store.userById = userById
  })
  const url = new URL(`${f.base}/v1/stream?token=${encodeURIComponent(u.token)}`)
  const req = http.get(url)
  req.on('error', () => {})
  await sleep(50)
  req.destroy()
  await sleep(400)
  assert.equal(f.broker.sessionOf(u.id), undefined, 'the user is offline once its only stream is gone')
})
