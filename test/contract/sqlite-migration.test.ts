/**
 * SqliteStore opening a data directory of release 0.1.0 (schema 3: a `queue` per user of what no session had
 * acknowledged, one token per user) migrates it in place to the retained log with devices (schema 4). The file is
 * built here with release 0.1.0's own SQL, as its SqliteStore left it, and then opened by today's store. Files of
 * schemas 1 and 2 (older columns missing) take the same road. (The schema 1 and 2 tests were in
 * test/unit/sqlite-migration.test.ts, which built them from a current file; that is no longer possible.)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { nameSkeleton, SKELETON_VERSION } from '../../src/core/names.js'
import { kindCode } from '../../src/schema/message.js'
import { StoreError } from '../../src/store/errors.js'
import Database from '../../src/store/sqlite/driver.js'
import { SqliteFileMeta } from '../../src/store/sqlite/sqlite-file-meta.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import { until } from '../helpers/wait.js'

// Release 0.1.0's schema (schema 3), copied from `git show 780df2d:src/store/sqlite/sqlite-store.ts`: the SCHEMA
// string, and what its open() added (the skeleton index and the meta rows). Frozen: do not edit.
const SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  token_hash TEXT,
  created_at INTEGER NOT NULL,
  next_seq INTEGER NOT NULL DEFAULT 1,
  last_seen INTEGER,
  skeleton TEXT
);
CREATE TABLE IF NOT EXISTS queue (
  user INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  topic TEXT,
  expires_at INTEGER,
  not_before INTEGER,
  file_id TEXT,
  body BLOB NOT NULL,
  PRIMARY KEY (user, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS queue_expires ON queue (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS held (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user INTEGER NOT NULL,
  not_before INTEGER NOT NULL,
  sender INTEGER NOT NULL,
  sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  topic TEXT,
  expires_at INTEGER,
  file_id TEXT,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS held_due ON held (not_before);
CREATE INDEX IF NOT EXISTS queue_file ON queue (file_id) WHERE file_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS held_file ON held (file_id) WHERE file_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS dedupe (
  sender INTEGER NOT NULL,
  msg_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (sender, msg_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_at ON dedupe (at);
CREATE TABLE IF NOT EXISTS subs (
  topic TEXT NOT NULL,
  user INTEGER NOT NULL,
  PRIMARY KEY (topic, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subs_user ON subs (user);
CREATE TABLE IF NOT EXISTS blocks (
  user INTEGER NOT NULL,
  target INTEGER NOT NULL,
  PRIMARY KEY (user, target)
) WITHOUT ROWID;
`
const V3_OPEN = `
CREATE UNIQUE INDEX IF NOT EXISTS users_skeleton ON users (skeleton);
INSERT INTO meta (key, value) VALUES ('schema', '3');
`

const T0 = 1_700_000_000_000
const H_ALICE = 'a1'.repeat(32)
const H_CAROL = 'c3'.repeat(32)

const dir = mkdtempSync(join(tmpdir(), 'sb-migrate-'))
after(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

interface V3Row {
  user: number
  seq: number
  sender: number
  kind: number
  topic?: string
  fileId?: string
  body: string
}

/**
 * A schema-3 file: alice (token, seqs 1, 2 and 4 acknowledged and gone; 3, 5, 6 queued), bob (tokenless, 1 and 2
 * queued), carol (token, next seq 4, nothing queued); a held message for alice; subscriptions, a block, a dedupe key.
 */
function buildV3(path: string, over: { carolToken?: string } = {}): { alice: number; bob: number; carol: number } {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec(SCHEMA_V3)
  db.exec(V3_OPEN)
  db.prepare(`INSERT INTO meta (key, value) VALUES ('skeleton', ?)`).run(SKELETON_VERSION)
  const user = db.prepare(
    `INSERT INTO users (name, token_hash, created_at, next_seq, last_seen, skeleton) VALUES (?, ?, ?, ?, ?, ?)`,
  )
  const alice = Number(user.run('alice', H_ALICE, T0, 7, T0 + 500, nameSkeleton('alice')).lastInsertRowid)
  const bob = Number(user.run('bob', null, T0 + 1, 3, null, nameSkeleton('bob')).lastInsertRowid)
  const carol = Number(user.run('carol', over.carolToken ?? H_CAROL, T0 + 2, 4, null, nameSkeleton('carol')).lastInsertRowid)
  const q = db.prepare(
    `INSERT INTO queue (user, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
     VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, NULL, NULL, ?, ?)`,
  )
  const rows: V3Row[] = [
    { user: alice, seq: 3, sender: bob, kind: kindCode('text'), body: 'three' },
    { user: alice, seq: 5, sender: bob, kind: kindCode('text'), topic: 'news', body: 'five' },
    { user: alice, seq: 6, sender: 0, kind: kindCode('receipt'), body: '{"seq":9}' },
    { user: bob, seq: 1, sender: alice, kind: kindCode('file'), fileId: 'f-1', body: '{"name":"a.txt"}' },
    { user: bob, seq: 2, sender: 0, kind: kindCode('notice'), body: 'hi' },
  ]
  for (const r of rows)
    q.run(
      r.user,
      r.seq,
      r.sender,
      r.sender === 0 ? 'SERVER' : 'x',
      100 + r.seq,
      r.kind,
      T0 + r.seq,
      r.topic ?? null,
      r.fileId ?? null,
      Buffer.from(r.body),
    )
  db.prepare(
    `INSERT INTO held (user, not_before, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, file_id, body)
     VALUES (?, ?, ?, 'bob', 500, 0, ?, 0, NULL, NULL, NULL, ?)`,
  ).run(alice, T0 + 60_000, bob, T0, Buffer.from('later'))
  db.prepare(`INSERT INTO subs (topic, user) VALUES ('news', ?), ('news', ?)`).run(alice, bob)
  db.prepare(`INSERT INTO blocks (user, target) VALUES (?, ?)`).run(carol, bob)
  db.prepare(`INSERT INTO dedupe (sender, msg_id, at) VALUES (?, 77, ?)`).run(bob, T0)
  db.close()
  return { alice, bob, carol }
}

async function open(path: string): Promise<SqliteStore> {
  const store = new SqliteStore({ path })
  await store.open()
  return store
}

describe('SqliteStore: migration from schema 3 (release 0.1.0)', () => {
  it('keeps users, names, tokens and queued messages; each user gets a device whose cursor is just before its oldest queued message', async (t) => {
    const path = join(dir, `v3-${++n}.db`)
    const { alice, bob, carol } = buildV3(path)
    let store = await open(path)
    t.after(() => store.close())

    // Users and names.
    assert.equal(await store.countUsers(), 3)
    assert.deepEqual(await store.userByName('alice'), {
      id: alice,
      name: 'alice',
      tokenless: false,
      passwordHash: null,
      createdAt: T0,
    })
    assert.deepEqual(await store.userById(bob), { id: bob, name: 'bob', tokenless: true, passwordHash: null, createdAt: T0 + 1 })
    assert.equal((await store.userByName('carol'))?.tokenless, false)
    assert.equal(await store.lastSeen(alice), T0 + 500)
    await assert.rejects(
      store.createUser('ALICE', { tokenHash: null, label: 'x' }, T0),
      (e: unknown) => e instanceof StoreError && e.code === 'NAME_TAKEN',
    )
    assert.deepEqual(
      (await store.staleTokenless(T0 + 10, 10)).map((u) => u.id),
      [bob],
    )

    // The old tokens find a device of the right user; its cursor stands before the oldest queued message.
    const da = await store.deviceByToken(H_ALICE)
    assert.deepEqual(da, {
      id: da!.id,
      user: alice,
      label: 'migrated',
      tokenHash: H_ALICE,
      createdAt: T0,
      lastSeen: T0 + 500,
      acks: { floor: 2, above: [] },
    })
    const dc = await store.deviceByToken(H_CAROL)
    assert.equal(dc?.user, carol)
    assert.deepEqual(dc?.acks, { floor: 3, above: [] }, 'nothing queued: the live end')
    const bobDevices = await store.devices(bob)
    assert.deepEqual(
      bobDevices.map((d) => [d.user, d.tokenHash, d.acks.floor]),
      [[bob, null, 0]],
      'a tokenless user gets one device without a token',
    )
    assert.deepEqual([da!.id, bobDevices[0]!.id, dc!.id], [1, 2, 3], 'devices 1..n in user order')

    // The queue became the log, in order, with peers for direct text and file messages.
    const log = await store.readLog(alice, da!.acks.floor, 100, T0)
    assert.deepEqual(
      log.map((m) => [m.seq, m.body.toString(), m.peer, m.topic, m.kind]),
      [
        [3, 'three', bob, undefined, 'text'],
        [5, 'five', undefined, 'news', 'text'],
        [6, '{"seq":9}', undefined, undefined, 'receipt'],
      ],
    )
    assert.deepEqual(
      (await store.readLog(bob, 0, 100, T0)).map((m) => [m.seq, m.peer, m.fileId]),
      [
        [1, alice, 'f-1'],
        [2, undefined, undefined],
      ],
    )
    assert.deepEqual(await store.queueStats(alice), { count: 3, bytes: 5 + 4 + 9 })
    assert.deepEqual(await store.queueStats(bob), { count: 2, bytes: 16 + 2 })
    assert.deepEqual(await store.queueStats(carol), { count: 0, bytes: 0 })
    assert.deepEqual(
      (await store.history(alice, { peer: bob, before: 0, limit: 10 })).map((m) => m.seq),
      [3],
    )

    // Subscriptions, blocks and dedupe keys stay.
    assert.deepEqual(await store.subscribers('news'), [alice, bob])
    assert.equal(await store.isBlocked(carol, bob), true)
    const dup = await store.commit([
      { type: 'send', dedupe: { sender: bob, msgId: 77 }, copies: [], limits: { maxCount: 10, maxBytes: 1000 } },
    ])
    assert.deepEqual(dup, [{ type: 'send', duplicate: true }])

    // The log goes on: the next seq, acks, a held message released with its peer.
    const limits = { maxCount: 100, maxBytes: 1 << 20 }
    const copy = { kind: 'text' as const, from: carol, fromName: 'carol', msgId: 1, ts: T0 + 100, flags: 0, peer: carol }
    const [sent] = await store.commit([{ type: 'send', copies: [{ ...copy, to: alice, body: Buffer.from('new') }], limits }])
    assert.deepEqual(sent, { type: 'send', duplicate: false, seqs: [7] })
    const acks = await store.commit([
      { type: 'ack', user: alice, device: da!.id, seq: 3 },
      { type: 'ack', user: alice, device: da!.id, seq: 4 }, // acknowledged under 0.1.0: gone
      { type: 'ack', user: alice, device: da!.id, seq: 3 },
    ])
    assert.ok(acks[0]?.type === 'ack' && acks[0].first?.body.toString() === 'three' && acks[0].fresh)
    assert.deepEqual(acks[1], { type: 'ack', first: null, fresh: true })
    assert.deepEqual(acks[2], { type: 'ack', first: null, fresh: false })
    assert.deepEqual(await store.queueStats(alice), { count: 3, bytes: 4 + 9 + 3 })
    const released = await store.releaseDue(T0 + 60_000, 10)
    assert.deepEqual(
      released.map((m) => [m.to, m.seq, m.peer, m.body.toString()]),
      [[alice, 8, bob, 'later']],
    )

    // Once migrated, a restart opens the current schema (6: 4, the log's tail, shared bodies) as it is.
    await store.close()
    store = await open(path)
    assert.deepEqual((await store.deviceByToken(H_ALICE))?.acks, { floor: 4, above: [] })
    assert.deepEqual(await store.queueStats(alice), { count: 4, bytes: 4 + 9 + 3 + 5 })
    assert.equal((await store.readLog(alice, 0, 100, T0)).length, 5)
    await store.close()
    const db = new Database(path, { readonly: true })
    t.after(() => db.close())
    assert.equal((db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '6')
    assert.equal(db.prepare(`SELECT 1 FROM sqlite_master WHERE name = 'queue'`).get(), undefined, 'the queue table is gone')
    const userColumns = (db.prepare(`PRAGMA table_info(users)`).all() as { name: string }[]).map((c) => c.name)
    assert.ok(!userColumns.includes('token_hash'), 'tokens live with the devices only')
  })

  it('the file store opens on a migrated file and still sees the files messages carry', async (t) => {
    const path = join(dir, `v3-${++n}.db`)
    buildV3(path)
    const store = await open(path)
    t.after(() => store.close())
    const meta = new SqliteFileMeta({ path })
    await meta.open()
    t.after(() => meta.close())
    await meta.record({ id: 'f-1', sha256: 'ab', name: 'a.txt', size: 1, sender: 1, createdAt: T0 }, [])
    await meta.record({ id: 'f-2', sha256: 'cd', name: 'b.txt', size: 1, sender: 1, createdAt: T0 }, [])
    const swept = await meta.sweep({ now: T0 + 10, before: T0 + 10, keep: [], limit: 10 })
    assert.deepEqual(
      swept.map((f) => f.id),
      ['f-2'],
      'f-1 is carried by a message in the log',
    )
  })

  it('a schema-1 file (no users.last_seen, no skeleton) is upgraded in place too', async (t) => {
    const path = join(dir, `v1-${++n}.db`)
    const db = new Database(path)
    // Schema 1 is schema 3 without users.last_seen (schema 2) and users.skeleton (schema 3).
    db.exec(SCHEMA_V3)
    db.exec(`ALTER TABLE users DROP COLUMN last_seen; ALTER TABLE users DROP COLUMN skeleton;
      INSERT INTO meta (key, value) VALUES ('schema', '1');
      INSERT INTO users (name, token_hash, created_at, next_seq) VALUES ('alice', '${H_ALICE}', 1, 3);`)
    db.prepare(
      `INSERT INTO queue (user, seq, sender, sender_name, msg_id, kind, ts, flags, body) VALUES (1, 2, 0, 'SERVER', 1, 3, 1, 0, ?)`,
    ).run(Buffer.from('hi'))
    db.close()
    const store = await open(path)
    t.after(() => store.close())
    assert.equal((await store.userById(1))?.name, 'alice', 'data kept')
    assert.equal(await store.lastSeen(1), undefined)
    await store.setLastSeen(1, 42)
    assert.equal(await store.lastSeen(1), 42)
    assert.deepEqual((await store.deviceByToken(H_ALICE))?.acks, { floor: 1, above: [] })
    assert.deepEqual(
      (await store.readLog(1, 0, 10, 1)).map((m) => m.body.toString()),
      ['hi'],
    )
    await assert.rejects(store.createUser('ALICE', { tokenHash: null, label: 'x' }, 2), /looks like "alice"/)
  })

  it('a schema-2 file gets users.skeleton; of two existing look-alike names the older keeps it, and both still work', async (t) => {
    const path = join(dir, `v2-${++n}.db`)
    const db = new Database(path)
    // A file written by schema 2 (no skeleton), holding names that an older program let through side by side.
    db.exec(SCHEMA_V3)
    db.exec(`ALTER TABLE users DROP COLUMN skeleton; INSERT INTO meta (key, value) VALUES ('schema', '2');
      INSERT INTO users (name, token_hash, created_at) VALUES ('alice', NULL, 1), ('Alice', NULL, 2), ('bob', NULL, 3)`)
    db.close()
    const warned: object[] = []
    const store = new SqliteStore({
      path,
      logger: { debug() {}, info() {}, error() {}, warn: (o: object) => void warned.push(o) },
    })
    await store.open()
    t.after(() => store.close())
    assert.equal((await store.userLike('ALICE'))?.name, 'alice', 'the older keeps the skeleton')
    assert.equal((await store.userByName('Alice'))?.name, 'Alice', 'the later one is kept')
    assert.deepEqual(warned, [{ user: 2, name: 'Alice', like: 'alice' }], 'the clash is logged')
    const legacy = { tokenHash: null, label: 'x' }
    await assert.rejects(store.createUser('\u0430lice', legacy, 4), /looks like "alice"/)
    await assert.rejects(store.createUser('BOB', legacy, 4), /looks like "bob"/)
    assert.equal((await store.createUser('carol', legacy, 4)).user.name, 'carol')
    assert.equal((await store.devices(2)).length, 1, 'the later look-alike got its device too')
  })

  it('is one transaction: a migration that fails leaves the schema-3 file as it was', async () => {
    const path = join(dir, `v3-${++n}.db`)
    // Two users with one token (never made by 0.1.0, but possible by hand): the devices' unique token index refuses it.
    buildV3(path, { carolToken: H_ALICE })
    await assert.rejects(open(path), /UNIQUE/)
    const db = new Database(path, { readonly: true })
    try {
      assert.equal((db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '3')
      assert.equal((db.prepare(`SELECT count(*) AS n FROM queue`).get() as { n: number }).n, 5)
      assert.equal(db.prepare(`SELECT 1 FROM sqlite_master WHERE name IN ('log', 'devices')`).get(), undefined)
      const userColumns = (db.prepare(`PRAGMA table_info(users)`).all() as { name: string }[]).map((c) => c.name)
      assert.ok(userColumns.includes('token_hash') && !userColumns.includes('tokenless'))
    } finally {
      db.close()
    }
  })
})

// Schema 5's users, devices and log tables, from `git show 5eab22a:src/store/sqlite/sqlite-store.ts` (the rest of its
// tables are as today's and made by open()). Frozen: do not edit.
const LOG_COLUMNS_V5 = `
  user INTEGER NOT NULL, seq INTEGER NOT NULL, sender INTEGER NOT NULL, sender_name TEXT NOT NULL,
  msg_id INTEGER NOT NULL, kind INTEGER NOT NULL, ts INTEGER NOT NULL, flags INTEGER NOT NULL, topic TEXT,
  expires_at INTEGER, not_before INTEGER, file_id TEXT, body BLOB NOT NULL, peer INTEGER, device INTEGER`
const SCHEMA_V5 = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
  next_seq INTEGER NOT NULL DEFAULT 1, last_seen INTEGER, skeleton TEXT, tokenless INTEGER NOT NULL DEFAULT 0,
  password_hash TEXT, queue_count INTEGER NOT NULL DEFAULT 0, queue_bytes INTEGER NOT NULL DEFAULT 0,
  handled_floor INTEGER NOT NULL DEFAULT 0, handled_above TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX users_skeleton ON users (skeleton);
CREATE TABLE devices (
  id INTEGER PRIMARY KEY AUTOINCREMENT, user INTEGER NOT NULL, label TEXT NOT NULL, token_hash TEXT UNIQUE,
  created_at INTEGER NOT NULL, last_seen INTEGER, ack_floor INTEGER NOT NULL DEFAULT 0, ack_above TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_user ON devices (user);
CREATE TABLE log (${LOG_COLUMNS_V5}, read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (user, seq));
CREATE INDEX log_peer ON log (user, peer, seq) WHERE peer IS NOT NULL;
CREATE INDEX log_topic ON log (user, topic, seq) WHERE topic IS NOT NULL;
CREATE INDEX log_expires ON log (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX log_file ON log (file_id) WHERE file_id IS NOT NULL;
CREATE TABLE log_tail (${LOG_COLUMNS_V5});
`

/** A schema-5 file with one user and no messages. */
function buildV5(path: string): void {
  const db = new Database(path)
  db.exec(SCHEMA_V5)
  db.exec(`INSERT INTO meta VALUES ('schema', '5'), ('skeleton', '${SKELETON_VERSION}')`)
  db.prepare(`INSERT INTO users (id, name, created_at, skeleton, tokenless) VALUES (1, 'alice', ?, ?, 1)`).run(
    T0,
    nameSkeleton('alice'),
  )
  db.close()
}

describe('SqliteStore: schema 5 to 6 (bodies shared by a message’s copies)', () => {
  it('is one transaction: an upgrade that fails leaves the schema-5 file as it was', async () => {
    const path = join(dir, `v5-${++n}.db`)
    buildV5(path)
    // An index already named `bodies` (no release makes one): creating the table fails after the columns were added.
    const raw = new Database(path)
    raw.exec(`CREATE INDEX bodies ON users (created_at)`)
    raw.close()
    await assert.rejects(open(path), /already an index named bodies/)
    const db = new Database(path, { readonly: true })
    try {
      for (const table of ['log', 'log_tail'])
        assert.ok(
          !(db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).some((c) => c.name === 'body_id'),
          `${table} has no body_id`,
        )
      assert.equal((db.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '5')
    } finally {
      db.close()
    }
  })

  it('rows with their own bodies read back as before; new large bodies are stored once; deletion takes both kinds', async (t) => {
    const path = join(dir, `v5-${++n}.db`)
    const old1 = Buffer.alloc(1000, 1)
    const old2 = Buffer.alloc(1000, 2)
    buildV5(path)
    const db = new Database(path)
    db.exec(`UPDATE users SET next_seq = 3, queue_count = 2, queue_bytes = 2000 WHERE id = 1`)
    db.prepare(`INSERT INTO devices (id, user, label, created_at) VALUES (1, 1, 'phone', ?)`).run(T0)
    const row = `(user, seq, sender, sender_name, msg_id, kind, ts, flags, body) VALUES (1, ?, 0, 'server', ?, ${kindCode('text')}, ?, 0, ?)`
    // One row moved into the log, one still in the tail (as a stop leaves them).
    db.prepare(`INSERT INTO log ${row}`).run(1, 1, T0, old1)
    db.prepare(`INSERT INTO log_tail ${row}`).run(2, 2, T0, old2)
    db.close()

    const store = await open(path)
    t.after(() => store.close())
    const big = Buffer.alloc(1000, 3)
    const copy = { to: 1, kind: 'text' as const, from: 0, fromName: 'server', ts: T0, flags: 0, body: big }
    const limits = { maxCount: 100, maxBytes: 1 << 20 }
    await store.commit([
      {
        type: 'send',
        copies: [
          { ...copy, msgId: 3 },
          { ...copy, msgId: 3 },
        ],
        limits,
      },
    ])
    assert.deepEqual(
      (await store.readLog(1, 0, 10, T0)).map((m) => [m.seq, m.body[0], m.body.length]),
      [
        [1, 1, 1000],
        [2, 2, 1000],
        [3, 3, 1000],
        [4, 3, 1000],
      ],
    )
    const file = new Database(path, { readonly: true })
    t.after(() => file.close())
    const rows = (sql: string) => (file.prepare(sql).get() as { n: number }).n
    assert.equal((file.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '6')
    assert.equal(rows(`SELECT count(*) AS n FROM bodies WHERE refs = 2 AND length(data) = 1000`), 1, 'one body, two copies')
    assert.equal(
      rows(`SELECT count(*) AS n FROM log WHERE body_id IS NULL AND length(body) = 1000`),
      2,
      'the old rows keep theirs',
    )
    await store.deleteUser(1)
    await until('the log and its body removed', () => rows(`SELECT count(*) + (SELECT count(*) FROM bodies) AS n FROM log`) === 0)
  })
})
