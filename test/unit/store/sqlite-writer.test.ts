/**
 * The SQLite store's writer thread (src/store/sqlite/writer.ts) on a real file: a batch is written by the thread,
 * a write of the main connection asked for meanwhile waits its turn (and sees the batch), bodies that are views
 * into a larger buffer arrive as their own bytes, the writer's SQLite errors keep their codes, and close() waits
 * for the batch under way, so that a reopened file has it.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from '../../../src/store/sqlite/driver.js'
import { SqliteStore } from '../../../src/store/sqlite/sqlite-store.js'
import { startWriterThread } from '../../../src/store/sqlite/writer-thread.js'
import type { NewCopy, StoreOp } from '../../../src/store/store.js'

const NO_LIMIT = { maxCount: 1_000_000, maxBytes: 1 << 30 }

function tempFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-writer-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'db.sqlite')
}

function send(to: number, body: Buffer, msgId: number): StoreOp {
  const c: NewCopy = { to, kind: 'text', from: to, fromName: 'me', msgId, ts: 1, body, flags: 0 }
  return { type: 'send', copies: [c], limits: NO_LIMIT, dedupe: { sender: to, msgId } }
}

test('a batch is written by the writer thread; a write asked for meanwhile waits for it; close waits; the file has both', async (t) => {
  const path = tempFile(t)
  const store = new SqliteStore({ path })
  await store.open()
  const { user } = await store.createUser('ana', { tokenHash: 'a'.repeat(64), label: 'test' }, 1)
  // Bodies as a decoded frame has them: views into one larger buffer.
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  const ops = Array.from({ length: 200 }, (_, i) => send(user.id, chunk.subarray(i * 100, i * 100 + 10 + i), i + 1))
  const committed = store.commit(ops)
  // Asked while the batch is on the writer thread: it runs after it, on the counters the batch left.
  const subscribed = store.subscribe(user.id, 'news')
  const renamed = store.renameUser(user.id, 'anna')
  const results = await committed
  assert.deepEqual(
    results.map((r) => (r.type === 'send' && !r.duplicate ? r.seqs[0] : -1)),
    Array.from({ length: 200 }, (_, i) => i + 1),
  )
  assert.equal(await subscribed, true)
  await renamed
  // A duplicate of a key the thread wrote is refused (the main connection reads what the thread committed).
  const [again] = await store.commit([send(user.id, Buffer.from('x'), 5)])
  assert.deepEqual(again, { type: 'send', duplicate: true })
  const last = store.commit([send(user.id, Buffer.from('last'), 1000)])
  await store.close()
  await last

  const db = new Database(path, { readonly: true })
  t.after(() => db.close())
  const rows = db.prepare(`SELECT seq, length(body) AS n, body FROM log WHERE user = ? ORDER BY seq`).all(user.id) as {
    seq: number
    n: number
    body: Buffer
  }[]
  assert.equal(rows.length, 201)
  for (let i = 0; i < 200; i++) {
    assert.equal(rows[i]!.n, 10 + i, `row ${i + 1} holds its own bytes, not the chunk it was cut from`)
    assert.ok(rows[i]!.body.every((b) => b === 0x61))
  }
  assert.equal(rows[200]!.body.toString(), 'last')
  assert.deepEqual(db.prepare(`SELECT name FROM users WHERE id = ?`).get(user.id), { name: 'anna' })
  assert.deepEqual(db.prepare(`SELECT topic FROM subs WHERE user = ?`).all(user.id), [{ topic: 'news' }])
  assert.deepEqual(db.prepare(`SELECT next_seq FROM users WHERE id = ?`).get(user.id), { next_seq: 202 })
})

test("the writer's SQLite errors keep their code; batches planned over a failed one fail until reset", async (t) => {
  const path = tempFile(t)
  const store = new SqliteStore({ path })
  await store.open()
  await store.close()
  const writer = await startWriterThread(path)
  t.after(() => writer.close())
  const empty = { dedupe: [], undedupe: [], held: [], reads: [], seen: [], cursors: [], counters: [] }
  const row = (seq: number) => ({
    ...empty,
    log: [1, seq, 1, 'me', seq, 0, 1, 0, null, null, null, null, null, null],
    lengths: [1],
    bodies: new Uint8Array(1).buffer,
  })
  // Three batches on their way at once: the second repeats the first's seq (the log's primary key refuses it),
  // the third was planned over the second and is refused with it.
  const first = writer.write(row(1))
  const second = writer.write(row(1))
  const third = writer.write(row(2))
  await first
  await assert.rejects(second, (err: Error & { code?: string }) => err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  await assert.rejects(third, /an earlier batch failed/)
  writer.reset()
  await writer.write(row(3))
  const db = new Database(path, { readonly: true })
  t.after(() => db.close())
  assert.deepEqual(db.prepare(`SELECT seq FROM log ORDER BY seq`).all(), [{ seq: 1 }, { seq: 3 }])
})
