/**
 * The PostgreSQL store and idempotent sends that store nothing (the recipient's queue full, or the user gone):
 * the sender is refused and retries with the same msgId, so that retry must be stored, not answered
 * "duplicate" of a message that was never kept. (The SQLite store had the same fault; see its commit.)
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { PostgresStore } from '../../src/store/postgres/postgres-store.js'
import type { StoreOp } from '../../src/store/store.js'
import { PG_URL, clusterServicesUnavailable, dropSchema } from './cluster-e2e-fixture.js'

const unavailable = await clusterServicesUnavailable()

const send = (to: number, msgId: number, maxCount: number): StoreOp => ({
  type: 'send',
  dedupe: { sender: 999, msgId },
  copies: [{ to, kind: 'text', from: 999, fromName: 'sender', msgId, ts: Date.now(), body: Buffer.from(`m${msgId}`), flags: 4 }],
  limits: { maxCount, maxBytes: 1 << 20 },
})

describe('PostgresStore: idempotent sends that store nothing', { skip: unavailable }, () => {
  it('a refused idempotent send leaves no dedupe key; its retry is stored once', async (t) => {
    const schema = `sb_e2e_dedupe_${process.pid}_${Date.now().toString(36)}`
    const store = new PostgresStore({ connectionString: PG_URL, schema, poolSize: 2 })
    await store.open()
    t.after(async () => {
      await store.close()
      await dropSchema(schema)
    })
    const { user: u } = await store.createUser('full', { tokenHash: null, label: 'test' }, Date.now())
    const [refused] = await store.commit([send(u.id, 1, 0)])
    assert.deepEqual(
      refused,
      { type: 'send', duplicate: false, seqs: [0], refused: ['queue-length'] },
      'the queue is full: nothing stored',
    )
    const [retry] = await store.commit([send(u.id, 1, 10)])
    assert.deepEqual(retry, { type: 'send', duplicate: false, seqs: [1] }, 'the retry is stored, not a duplicate')
    const [again] = await store.commit([send(u.id, 1, 10)])
    assert.deepEqual(again, { type: 'send', duplicate: true }, 'and a second retry is the duplicate')
    const [gone] = await store.commit([send(123_456, 2, 10)])
    assert.deepEqual(gone, { type: 'send', duplicate: false, seqs: [0], refused: ['no-such-user'] }, 'no such user')
    const [gone2] = await store.commit([send(u.id, 2, 10)])
    assert.deepEqual(gone2, { type: 'send', duplicate: false, seqs: [2] })
    assert.equal((await store.readLog(u.id, 0, 10, Date.now())).length, 2)
  })
})
