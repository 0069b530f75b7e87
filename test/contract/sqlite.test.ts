import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { MESSAGE_KINDS, type MessageKind } from '../../src/schema/message.js'
import Database from '../../src/store/sqlite/driver.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import type { Store } from '../../src/store/store.js'
import { until } from '../helpers/wait.js'
import { copy, NO_LIMIT, runStoreContract } from './store.contract.js'
import { STORED_KIND_CODES } from './stored-kinds.js'

const dir = mkdtempSync(join(tmpdir(), 'sb-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
const paths = new WeakMap<Store, string>()

async function open(path: string): Promise<Store> {
  const store = new SqliteStore({ path })
  await store.open()
  paths.set(store, path)
  return store
}

runStoreContract(
  'sqlite',
  () => open(join(dir, `store-${++n}.db`)),
  async (store) => {
    await store.close()
    const path = paths.get(store)
    if (path !== undefined) for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
  },
  {
    reopen: async (store) => {
      await store.close()
      return open(paths.get(store)!)
    },
    // No `twin`: SqliteStore caches per-user counters and is documented as the only writer of its file.
  },
)

describe('SqliteStore: the stored kind is the schema code', () => {
  it('rows written before the schema (kind = index in the old list) read back as the same kinds', async (t) => {
    const path = join(dir, 'old-kinds.db')
    const s1 = await open(path)
    const u = (await s1.createUser('u', { tokenHash: null, label: 'test' }, 1)).user
    await s1.close()
    // Rows as an older version wrote them: straight into the file, the kind column holding the old index.
    const db = new Database(path)
    const insert = db.prepare(
      `INSERT INTO log (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
       VALUES (?, ?, 1, 'old', ?, ?, 1, 0, NULL, NULL, NULL, NULL, ?)`,
    )
    const kinds = Object.entries(STORED_KIND_CODES) as [MessageKind, number][]
    kinds.forEach(([, code], i) => insert.run(u.id, i + 1, i + 1, code, Buffer.from('x')))
    db.close()

    const s2 = await open(path)
    t.after(() => s2.close())
    const q = await s2.readLog(u.id, 0, 10, 1)
    assert.deepEqual(
      q.map((m) => [m.seq, m.kind]),
      kinds.map(([kind], i) => [i + 1, kind]),
    )
  })

  it('each kind committed today lands in the kind column as its code', async (t) => {
    const path = join(dir, 'new-kinds.db')
    const store = await open(path)
    const u = (await store.createUser('u', { tokenHash: null, label: 'test' }, 1)).user
    const kinds = Object.keys(MESSAGE_KINDS) as MessageKind[]
    await store.commit([
      { type: 'send', copies: kinds.map((kind) => copy(u.id, { kind })), limits: { maxCount: 1e9, maxBytes: 1e12 } },
    ])
    await store.close()
    const db = new Database(path, { readonly: true })
    t.after(() => db.close())
    const rows = db.prepare('SELECT kind FROM log WHERE user = ? ORDER BY seq').all(u.id) as { kind: number }[]
    assert.deepEqual(
      rows.map((r) => r.kind),
      kinds.map((k) => STORED_KIND_CODES[k]),
    )
  })
})

describe('SqliteStore: deleting a user with a long log', () => {
  const rowsOf = (path: string, user: number): number => {
    const db = new Database(path, { readonly: true })
    try {
      return (db.prepare(`SELECT COUNT(*) AS n FROM log WHERE user = ?`).get(user) as { n: number }).n
    } finally {
      db.close()
    }
  }
  async function bigUser(store: Store, name: string, messages: number): Promise<{ id: number; device: number }> {
    const r = await store.createUser(name, { tokenHash: null, label: 'test' }, 1)
    for (let i = 0; i < messages; i += 500)
      await store.commit(
        Array.from({ length: Math.min(500, messages - i) }, () => ({
          type: 'send' as const,
          copies: [copy(r.user.id)],
          limits: NO_LIMIT,
        })),
      )
    return { id: r.user.id, device: r.device.id }
  }

  it('the account goes at once, its log in chunks after it, and only what no device acknowledged comes back', async (t) => {
    const path = join(dir, 'purge.db')
    const store = await open(path)
    t.after(() => store.close())
    const big = await bigUser(store, 'big', 9_000)
    // Every message acknowledged but the last three: those are what its senders must hear about.
    await store.commit(
      Array.from({ length: 8_997 }, (_, i) => ({ type: 'ack' as const, user: big.id, device: big.device, seq: i + 1 })),
    )
    const back = await store.deleteUser(big.id)
    assert.deepEqual(
      back.map((m) => m.seq),
      [8_998, 8_999, 9_000],
    )
    assert.equal(await store.userById(big.id), undefined, 'the account is gone at once')
    assert.ok(rowsOf(path, big.id) < 9_000, 'the first chunk went with the account')
    await until('the log removed', () => rowsOf(path, big.id) === 0, 10_000)
    // Nothing of it expires or is told twice afterwards.
    assert.deepEqual(await store.expire(Number.MAX_SAFE_INTEGER, 100), [])
  })

  it('a removal cut short by a stop resumes when the store opens again', async () => {
    const path = join(dir, 'purge-restart.db')
    const s1 = await open(path)
    const big = await bigUser(s1, 'huge', 7_000)
    await s1.deleteUser(big.id)
    await s1.close() // before the background removal had its turn
    const left = rowsOf(path, big.id)
    assert.ok(left > 0 && left < 7_000, `a part of the log is left (${left})`)
    const s2 = await open(path)
    try {
      await until('the rest removed after the restart', () => rowsOf(path, big.id) === 0, 10_000)
    } finally {
      await s2.close()
    }
  })
})
