import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { MESSAGE_KINDS, type MessageKind } from '../../src/schema/message.js'
import Database from '../../src/store/sqlite/driver.js'
import { SHARED_BODY_BYTES, SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/sqlite-store.js'
import { silentLogger } from '../../src/core/types.js'
import { SqliteFileMeta } from '../../src/store/sqlite/sqlite-file-meta.js'
import type { Store } from '../../src/store/store.js'
import { until } from '../helpers/wait.js'
import { copy, NO_LIMIT, runStoreContract } from './store.contract.js'
import { STORED_KIND_CODES } from './stored-kinds.js'

const dir = mkdtempSync(join(tmpdir(), 'sb-'))
after(() => rmSync(dir, { recursive: true, force: true }))

let n = 0
const paths = new WeakMap<Store, string>()

async function open(path: string, opts: Omit<SqliteStoreOptions, 'path'> = {}): Promise<Store> {
  const store = new SqliteStore({ path, ...opts })
  await store.open()
  paths.set(store, path)
  return store
}

// Twice: as the server runs it, and with every body in `bodies` (by default only those of SHARED_BODY_BYTES or more).
for (const [name, opts] of [
  ['sqlite', {}],
  ['sqlite, every body shared', { sharedBodyBytes: 0 }],
] as const)
  runStoreContract(
    name,
    () => open(join(dir, `store-${++n}.db`), opts),
    async (store) => {
      await store.close()
      const path = paths.get(store)
      if (path !== undefined) for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
    },
    {
      reopen: async (store) => {
        await store.close()
        return open(paths.get(store)!, opts)
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

/** Rows of `table` in the file at `path` (read by a connection of its own), those of `user` if given. */
function countRows(path: string, table: 'log' | 'log_tail' | 'dedupe' | 'bodies', user?: number): number {
  const db = new Database(path, { readonly: true })
  try {
    const where = user === undefined ? '' : ` WHERE user = ${user}`
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}${where}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

describe('SqliteStore: deleting a user with a long log', () => {
  const rowsOf = (path: string, user: number): number => countRows(path, 'log', user)
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

describe('SqliteStore: a large body is stored once for all its copies', () => {
  it('a message to two users and its sent copy write one body row; it goes with the last copy', async (t) => {
    const path = join(dir, 'bodies.db')
    const store = await open(path)
    t.after(() => store.close())
    const [a, b, s] = await Promise.all(
      ['a', 'b', 's'].map(async (name, i) => (await store.createUser(name, { tokenHash: null, label: 'test' }, i)).user.id),
    )
    const body = Buffer.alloc(SHARED_BODY_BYTES, 7)
    const small = Buffer.alloc(SHARED_BODY_BYTES - 1, 8)
    const of = (to: number, flags: number, b: Buffer) => copy(to, { from: s!, msgId: 1, flags, body: b })
    await store.commit([
      { type: 'send', copies: [of(a!, 0, body), of(b!, 0, body), of(s!, 8, body)], limits: NO_LIMIT },
      { type: 'send', copies: [of(a!, 0, small), of(s!, 8, small)], limits: NO_LIMIT },
    ])
    assert.equal(countRows(path, 'bodies'), 1, 'one row for the three copies; the shorter body stays inline')
    for (const [user, bodies] of [
      [a, [body, small]],
      [b, [body]],
      [s, [body, small]],
    ] as const)
      assert.deepEqual(
        (await store.readLog(user!, 0, 10, 1)).map((m) => m.body),
        bodies,
      )
    await store.deleteUser(a!)
    await store.deleteUser(s!)
    assert.equal(countRows(path, 'bodies'), 1, "b's copy still refers to it")
    assert.deepEqual(
      (await store.history(b!, { before: 0, limit: 10 })).map((m) => m.body),
      [body],
    )
    await store.deleteUser(b!)
    assert.equal(countRows(path, 'bodies'), 0, 'gone with the last copy')
  })
})

describe('SqliteStore: retention', () => {
  it('a walk of many kept rows gives the event loop turns between its slices, and removes what is old', async (t) => {
    const path = join(dir, 'retain-slices.db')
    const s1 = await open(path)
    const users = await Promise.all(
      Array.from({ length: 40 }, (_, i) => s1.createUser(`r${i}`, { tokenHash: null, label: 'test' }, 1)),
    )
    await s1.close()
    // 40 users × 5,000 handled rows, written straight into the file: seqs 1–100 old (ts 1), the rest newer (ts 1000).
    const db = new Database(path)
    const insert = db.prepare(
      `INSERT INTO log (user, seq, sender, sender_name, msg_id, kind, ts, flags, body) VALUES (?, ?, 1, 'x', ?, 0, ?, 0, ?)`,
    )
    const handled = db.prepare(`UPDATE users SET next_seq = 5001, handled_floor = 5000 WHERE id = ?`)
    db.transaction(() => {
      for (const { user } of users) {
        for (let seq = 1; seq <= 5000; seq++) insert.run(user.id, seq, seq, seq <= 100 ? 1 : 1000, Buffer.from('x'))
        handled.run(user.id)
      }
    })()
    db.close()
    const store = await open(path)
    t.after(() => store.close())

    let ticks = 0
    const timer = setInterval(() => ticks++, 1)
    t.after(() => clearInterval(timer))
    // Everything within `keep` and nothing older than `before`: the walk reads all 200,000 rows and removes none.
    const none = await store.retain({ before: 1, keep: 1_000_000 }, 1_000_000)
    const turns = ticks
    assert.equal(none, 0)
    assert.ok(turns > 0, 'timers ran while retain() walked the log (it held the event loop throughout before)')

    const old = await store.retain({ before: 500, keep: 1_000_000 }, 1_000_000)
    assert.equal(old, 40 * 100, 'the first 100 of each user, across the slices')
    assert.equal(countRows(path, 'log'), 40 * 4900)
    assert.deepEqual(
      (await store.readLog(users[39]!.user.id, 0, 1, 2000)).map((m) => m.seq),
      [101],
    )
  })
})

describe('SqliteStore: pruning dedupe keys', () => {
  it('an hour of keys goes in chunks with turns of the event loop between; newer keys stay', async (t) => {
    const path = join(dir, 'prune-chunks.db')
    const s1 = await open(path)
    await s1.close()
    const db = new Database(path)
    const insert = db.prepare(`INSERT INTO dedupe (sender, msg_id, at) VALUES (?, ?, ?)`)
    db.transaction(() => {
      for (let i = 1; i <= 30_000; i++) insert.run(1 + (i % 7), i, i <= 25_000 ? 100 : 900)
    })()
    db.close()
    const store = await open(path)
    t.after(() => store.close())
    let turns = 0
    const turn = setImmediate(function count() {
      turns++
      if (turns < 1000) setImmediate(count)
    })
    t.after(() => clearImmediate(turn))
    assert.equal(await store.pruneDedupe(500), 25_000)
    assert.ok(turns > 1, `the event loop turned while the keys went (${turns}; one DELETE held it before)`)
    assert.equal(countRows(path, 'dedupe'), 5_000, 'the newer keys stay')
  })
})

describe('SqliteStore: the log tail (commits append; rows move into the log in bulk)', () => {
  const count = (path: string, table: 'log' | 'log_tail'): number => countRows(path, table)
  const sends = (to: number, n: number, opts: Parameters<typeof copy>[1] = {}) =>
    Array.from({ length: n }, () => ({ type: 'send' as const, copies: [copy(to, opts)], limits: NO_LIMIT }))
  /** A store on a new file (closed after the test) with one user. */
  async function withUser(t: TestContext, file: string): Promise<{ path: string; store: Store; user: number }> {
    const path = join(dir, file)
    const store = await open(path)
    t.after(() => store.close())
    return { path, store, user: (await store.createUser('u', { tokenHash: null, label: 'test' }, 1)).user.id }
  }

  it('a commit writes to the tail only; a read moves it first and sees every row, in order', async (t) => {
    const { path, store, user } = await withUser(t, 'tail-read.db')
    await store.commit(sends(user, 10))
    assert.equal(count(path, 'log_tail'), 10, 'appended to the tail')
    assert.equal(count(path, 'log'), 0, 'no row in the indexed log yet')
    await store.commit(sends(user, 5))
    assert.deepEqual(
      (await store.readLog(user, 0, 100, 1)).map((m) => m.seq),
      Array.from({ length: 15 }, (_, i) => i + 1),
    )
    assert.equal(count(path, 'log_tail'), 0)
    assert.equal(count(path, 'log'), 15)
    // History and acks of rows moved, and of rows still in the tail, alike.
    await store.commit(sends(user, 2))
    assert.deepEqual(
      (await store.history(user, { before: 0, limit: 3 })).map((m) => m.seq),
      [17, 16, 15],
    )
  })

  it('an acknowledgement or a read mark of a message no longer cached finds it in the tail', async (t) => {
    const path = join(dir, 'tail-ack.db')
    let store = await open(path)
    const r = await store.createUser('u', { tokenHash: null, label: 'test' }, 1)
    await store.commit(sends(r.user.id, 3, { flags: 1 }))
    await store.close() // the cache of recent rows goes with the process; the rows stay in the tail
    store = await open(path)
    t.after(() => store.close())
    await store.commit(sends(r.user.id, 1, { flags: 1 }))
    assert.equal(count(path, 'log_tail'), 1)
    const [ack] = await store.commit([{ type: 'ack', user: r.user.id, device: r.device.id, seq: 4 }])
    assert.ok(ack?.type === 'ack' && ack.first?.seq === 4, 'the first ack of seq 4 names its message')
    const [ack2] = await store.commit([{ type: 'ack', user: r.user.id, device: r.device.id, seq: 2 }])
    assert.ok(ack2?.type === 'ack' && ack2.first?.seq === 2)
  })

  it('past the threshold the tail moves on the next turn by itself', async (t) => {
    const { path, store, user } = await withUser(t, 'tail-move.db')
    await store.commit(sends(user, 2_100))
    await until('the tail to move', () => count(path, 'log_tail') === 0)
    assert.equal(count(path, 'log'), 2_100)
  })

  it('rows left in the tail by a killed process are there after a restart, and move at open', async (t) => {
    const path = join(dir, 'tail-kill.db')
    const setup = await open(path)
    const u = (await setup.createUser('u', { tokenHash: null, label: 'test' }, 1)).user
    await setup.close()
    // A child commits, says so, and is killed before any read or stop could move its tail.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        `const { SqliteStore } = await import(${JSON.stringify(new URL('../../src/store/sqlite/sqlite-store.ts', import.meta.url).href)});
         const s = new SqliteStore({ path: ${JSON.stringify(path)} }); await s.open();
         const body = Buffer.from('x');
         for (let i = 0; i < 5; i++)
           await s.commit(Array.from({ length: 100 }, () => ({ type: 'send', limits: { maxCount: 1e9, maxBytes: 1e12 },
             copies: [{ to: ${u.id}, from: 1, fromName: 'a', msgId: 1, kind: 'text', ts: 1, body, flags: 0 }] })));
         process.stdout.write('committed\\n'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string]
    assert.equal(line, 'committed')
    assert.equal(count(path, 'log_tail'), 500, 'in the tail when it was killed')
    child.kill('SIGKILL')
    await once(child, 'exit')
    const store = await open(path)
    t.after(() => store.close())
    assert.equal(count(path, 'log_tail'), 0, 'moved at open')
    assert.equal((await store.readLog(u.id, 0, 1_000, 1)).length, 500, 'every acknowledged commit is there')
    assert.deepEqual(await store.queueStats(u.id), { count: 500, bytes: 500 })
  })

  it('the file sweep sees a file carried only by a message still in the tail', async (t) => {
    const { path, store, user } = await withUser(t, 'tail-files.db')
    const meta = new SqliteFileMeta({ path })
    await meta.open()
    t.after(() => meta.close())
    const file = { id: 'f1', sha256: 'a'.repeat(64), name: 'a.txt', size: 1, sender: user, createdAt: 1 }
    await meta.record(file, [user])
    await store.commit(sends(user, 1, { kind: 'file', fileId: 'f1' }))
    assert.equal(count(path, 'log_tail'), 1)
    // Marked unreferenced at 1 and removed at 2 if the sweep did not see the tail's row.
    assert.deepEqual(await meta.sweep({ now: 1, before: 1, keep: [], limit: 10 }), [])
    assert.deepEqual(await meta.sweep({ now: 2, before: 2, keep: [], limit: 10 }), [])
    assert.ok(await meta.get('f1'), 'the file is kept')
  })
})

describe('SqliteStore: checkpoints on a thread of their own', () => {
  /** mxFrame, the WAL's last valid frame, from the wal-index header (bytes 16-19 of the -shm file). */
  const walFrames = (path: string): number => {
    const fd = openSync(`${path}-shm`, 'r')
    try {
      const b = Buffer.alloc(4)
      readSync(fd, b, 0, 4, 16)
      return b.readUInt32LE(0)
    } finally {
      closeSync(fd)
    }
  }

  /** A store with 50 users, a batch of a 512 B message to each, and its wal_autocheckpoint as set now. */
  async function busyStore(t: TestContext, file: string, opts: Partial<SqliteStoreOptions> = {}) {
    const path = join(dir, file)
    const store = new SqliteStore({ path, ...opts })
    await store.open()
    t.after(() => store.close())
    const users = await Promise.all(
      Array.from({ length: 50 }, (_, i) => store.createUser(`c${i}`, { tokenHash: null, label: 'test' }, 1)),
    )
    const batch = () =>
      users.map((u) => ({ type: 'send' as const, copies: [copy(u.user.id, { body: Buffer.alloc(512) })], limits: NO_LIMIT }))
    const internals = store as unknown as {
      db: { pragma(s: string, o: object): number }
      checkpointer: { restarts: number; worker: { terminate(): Promise<number> } } | undefined
    }
    const autocheckpoint = (): number => internals.db.pragma('wal_autocheckpoint', { simple: true })
    return { path, store, users, batch, autocheckpoint, internals }
  }

  it('a busy store hands its checkpoints to the thread: the WAL is copied back and starts again', async (t) => {
    const { path, store, users, batch, autocheckpoint } = await busyStore(t, 'checkpoints.db')
    for (let i = 0; i < 70; i++) await store.commit(batch())
    await until('the thread to take over the checkpoints', () => autocheckpoint() === 0)
    // Commits that would have taken SQLite's own checkpoint past 1,000 frames several times over.
    let peak = 0
    let restarted = false
    for (let i = 0; i < 400; i++) {
      await store.commit(batch())
      const f = walFrames(path)
      if (f < peak) restarted = true
      peak = Math.max(peak, f)
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 60)) // room for the thread's 50 ms turns
    }
    assert.ok(restarted, `the WAL started again from its beginning (peak ${peak} frames)`)
    assert.ok(peak < 16_384, `the WAL stayed short: ${peak} frames`)
    assert.equal((await store.readLog(users[0]!.user.id, 0, 1_000, 1)).length, 470)
  })

  it('past its bound the thread runs a RESTART checkpoint while commits go on: the WAL stays short, nothing is lost', async (t) => {
    const warned: unknown[] = []
    const logger = { ...silentLogger, warn: (o: unknown) => void warned.push(o) }
    const { path, store, users, batch, autocheckpoint, internals } = await busyStore(t, 'checkpoints-restart.db', {
      logger,
      checkpoints: { after: 1, everyMs: 5, restartFrames: 10 },
    })
    await store.commit(batch())
    await until('the thread to take over the checkpoints', () => autocheckpoint() === 0)
    let peak = 0
    let restarts = 0
    let last = walFrames(path)
    // 300 commits back to back, and more while the WAL has not started again: a busy machine may give the thread
    // no turn in the first 300 (the RESTART is what bounds the WAL then).
    let commits = 0
    for (; commits < 300 || (restarts === 0 && commits < 3000); commits++) {
      await store.commit(batch())
      const f = walFrames(path)
      if (f < last) restarts++
      last = f
      peak = Math.max(peak, f)
    }
    assert.ok(restarts > 0, `the WAL started again (${commits} commits)`)
    await until('a RESTART checkpoint to have run', () => internals.checkpointer!.restarts > 0)
    assert.ok(peak < 5_000, `the WAL stayed bounded under commits without a gap: peak ${peak} frames`)
    assert.deepEqual(warned, [], 'no checkpoint failed')
    assert.equal((await store.readLog(users[7]!.user.id, 0, 5_000, 1)).length, commits + 1)
  })

  it('a checkpoint thread that dies hands the checkpoints back to the commits', async (t) => {
    const warned: unknown[] = []
    const logger = { ...silentLogger, warn: (o: unknown) => void warned.push(o) }
    const { store, users, batch, autocheckpoint, internals } = await busyStore(t, 'checkpoints-gone.db', {
      logger,
      checkpoints: { after: 1 },
    })
    await store.commit(batch())
    await until('the thread to take over the checkpoints', () => autocheckpoint() === 0)
    await internals.checkpointer!.worker.terminate()
    await until('SQLite to checkpoint in the commits again', () => autocheckpoint() === 1000)
    assert.equal(internals.checkpointer, undefined)
    assert.equal(warned.length, 1, 'the loss is said once')
    await store.commit(batch())
    assert.equal((await store.readLog(users[0]!.user.id, 0, 10, 1)).length, 2)
  })
})
