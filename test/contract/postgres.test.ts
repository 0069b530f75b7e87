/**
 * The Store contract on PostgresStore, against the real PostgreSQL (PG_URL, default 127.0.0.1:5432 database
 * `test`). Each test gets its own schema, dropped afterwards. Without a reachable server the suite is skipped
 * with the reason, except under CI=true, where a missing service is a failure.
 *
 * Besides the contract: the migrations (a schema as release 0.1.0 left it, migration 4, becomes the log with
 * devices), a seeded comparison with MemoryStore (the reference), and races between two nodes on one schema.
 */
import { describe, it, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { nameSkeleton, SKELETON_VERSION } from '../../src/core/names.js'
import { MESSAGE_KINDS, type MessageKind } from '../../src/schema/message.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { MIGRATIONS, PostgresStore } from '../../src/store/postgres/postgres-store.js'
import type { NewCopy, QueueLimits, Store, StoreOp, StoreResult } from '../../src/store/store.js'
import { runStoreContract } from './store.contract.js'
import { STORED_KIND_CODES } from './stored-kinds.js'

const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

async function reachable(): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 })
  try {
    await c.connect()
    await c.query('SELECT 1')
    return undefined
  } catch (err) {
    return `PostgreSQL at ${PG_URL} is unreachable (${(err as Error).message})`
  } finally {
    await c.end().catch(() => {})
  }
}

const unreachable = await reachable()
if (unreachable !== undefined && process.env.CI === 'true') throw new Error(`${unreachable}; CI=true requires it`)

const T0 = 1_700_000_000_000
const NO_LIMIT: QueueLimits = { maxCount: 1_000_000, maxBytes: 1 << 30 }
const SENT = 8

/** mulberry32: a small seeded generator, so a failing seed fails the same way again. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A comparable form: the body as hex, absent fields absent. */
function plain(v: unknown): unknown {
  if (v === undefined) return undefined
  return JSON.parse(
    JSON.stringify(v, (_k, x: unknown) =>
      x !== null &&
      typeof x === 'object' &&
      (x as { type?: string }).type === 'Buffer' &&
      Array.isArray((x as { data?: unknown }).data)
        ? Buffer.from((x as { data: number[] }).data).toString('hex')
        : x,
    ),
  )
}

async function agreeWithMemory(t: TestContext, seed: number): Promise<void> {
  const schema = `${prefix}_diff${seed}`
  t.after(() => dropSchema(schema))
  const pgs = await open(schema)
  t.after(() => pgs.close())
  const mem = new MemoryStore()
  await mem.open()
  const stores: Store[] = [pgs, mem]
  const r = rng(seed)
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
  /** Run the same call on both and insist on the same answer. */
  async function both<T>(what: string, fn: (s: Store) => Promise<T>): Promise<T> {
    const [p, m] = [await fn(pgs), await fn(mem)]
    assert.deepEqual(plain(p), plain(m), `seed ${seed}: ${what}`)
    return m
  }

  let now = T0
  let msgId = 1
  const users: number[] = []
  const devices = new Map<number, number>() // device → user
  for (const [i, name] of ['ann', 'bob', 'cy', 'dee'].entries()) {
    const { user, device } = await both(`createUser ${name}`, (s) =>
      s.createUser(name, { tokenHash: i === 3 ? null : `t-${name}`, label: 'cli' }, now, i === 0 ? 'pw' : null),
    )
    users.push(user.id)
    devices.set(device.id, user.id)
  }
  const tight: QueueLimits = { maxCount: 6, maxBytes: 80 }

  function newCopy(to: number, from: number): NewCopy {
    const c: NewCopy = {
      to,
      kind: pick(['text', 'text', 'file', 'receipt'] as const),
      from,
      fromName: `n${from}`,
      msgId: msgId++,
      ts: now,
      flags: pick([0, 1, 2, 3]),
      body: Buffer.from('x'.repeat(1 + Math.floor(r() * 20))),
    }
    if (c.kind === 'file') c.fileId = `f${msgId}`
    if (r() < 0.2) c.topic = pick(['news', 'chat'])
    else if (c.kind !== 'receipt') c.peer = from
    if (r() < 0.15) c.expiresAt = now + Math.floor(r() * 3000)
    if (r() < 0.1) c.notBefore = now + Math.floor(r() * 3000)
    return c
  }

  function op(): StoreOp {
    const x = r()
    if (x < 0.45) {
      const from = pick(users)
      const copies: NewCopy[] = []
      for (let n = 1 + Math.floor(r() * 3); n > 0; n--) copies.push(newCopy(r() < 0.05 ? 999 : pick(users), from))
      // A sent copy in the sender's own log, for its other devices.
      const fromDevice = [...devices].find(([, u]) => u === from)?.[0]
      if (r() < 0.3 && copies[0]!.topic === undefined)
        copies.push({ ...copies[0]!, to: from, flags: copies[0]!.flags | SENT, peer: copies[0]!.to, device: fromDevice ?? 0 })
      const dedupe = r() < 0.3 ? { sender: from, msgId: Math.floor(r() * 10) } : undefined
      return { type: 'send', copies, limits: r() < 0.5 ? tight : NO_LIMIT, dedupe }
    }
    const user = pick(users)
    const seq = Math.floor(r() * 30)
    if (x > 0.95) return { type: 'seen', user, device: pick([...devices.keys()]), at: now + seq }
    if (x < 0.85) {
      const own = [...devices].filter(([, u]) => u === user).map(([d]) => d)
      const device = r() < 0.9 && own.length > 0 ? pick(own) : pick([...devices.keys(), 999])
      return { type: 'ack', user, device, seq }
    }
    return { type: 'read', user, seq }
  }

  for (let step = 0; step < 120; step++) {
    now += Math.floor(r() * 400)
    const x = r()
    if (x < 0.7) {
      const ops = Array.from({ length: 1 + Math.floor(r() * 8) }, op)
      await both(`step ${step} commit ${JSON.stringify(plain(ops))}`, (s) => s.commit(ops))
    } else if (x < 0.78) await both(`step ${step} expire`, (s) => s.expire(now, 1_000_000))
    else if (x < 0.86) await both(`step ${step} releaseDue`, (s) => s.releaseDue(now, 1_000_000))
    else if (x < 0.9) {
      const policy = { before: now - Math.floor(r() * 5000), keep: Math.floor(r() * 10) }
      await both(`step ${step} retain ${JSON.stringify(policy)}`, (s) => s.retain(policy, 1_000_000))
    } else if (x < 0.95) {
      const user = pick(users)
      const d = await both(`step ${step} createDevice`, (s) => s.createDevice(user, `t${step}`, 'web', now))
      if (d !== undefined) devices.set(d.id, user)
    } else if (x < 0.98) {
      const d = pick([...devices.keys()])
      const user = r() < 0.8 ? devices.get(d)! : pick(users)
      if (await both(`step ${step} deleteDevice`, (s) => s.deleteDevice(user, d))) devices.delete(d)
    } else {
      const d = pick([...devices.keys()])
      await both(`step ${step} setLastSeen`, (s) => s.setLastSeen(devices.get(d)!, now, d))
    }
    for (const u of users) {
      await both(`step ${step} readLog ${u}`, (s) => s.readLog(u, 0, 1000, now))
      await both(`step ${step} queueStats ${u}`, (s) => s.queueStats(u))
      await both(`step ${step} devices ${u}`, (s) => s.devices(u))
      await both(`step ${step} history ${u}`, (s) => s.history(u, { before: 0, limit: 1000 }))
    }
  }
  // Pages and filters of history, users, lookups by token, then a user's deletion.
  for (const u of users) {
    await both(`history page ${u}`, (s) => s.history(u, { before: 15, limit: 4 }))
    for (const peer of users) await both(`history ${u} with ${peer}`, (s) => s.history(u, { peer, before: 0, limit: 100 }))
    await both(`history ${u} topic`, (s) => s.history(u, { topic: 'news', before: 0, limit: 100 }))
    await both(`userById ${u}`, (s) => s.userById(u))
    await both(`lastSeen ${u}`, (s) => s.lastSeen(u))
  }
  await both('deviceByToken', (s) => s.deviceByToken('t-bob'))
  await both('staleTokenless', (s) => s.staleTokenless(now + 1, 10))
  await both('deleteUser', (s) => s.deleteUser(users[1]!))
  await both('devices after deleteUser', (s) => s.devices(users[1]!))
  await both('deviceByToken after deleteUser', (s) => s.deviceByToken('t-bob'))
  await both('readLog after deleteUser', (s) => s.readLog(users[1]!, 0, 1000, now))
  for (const s of stores) assert.equal(await s.countUsers(), 3)
}

const prefix = `sb_contract_${process.pid}_${Date.now().toString(36)}`
let n = 0

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await c.end()
  }
}

async function open(schema: string): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: PG_URL, schema, poolSize: 6 })
  await store.open()
  return store
}

/** Run `fn` on a client of its own with search_path set to `schema`. */
async function sql<T>(schema: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try {
    await c.query(`SET search_path = ${schema}`)
    return await fn(c)
  } finally {
    await c.end()
  }
}

/** A new schema migrated to `version` only, as an older release left it. */
async function schemaAt(schema: string, version: number): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try {
    await c.query(`CREATE SCHEMA ${schema}`)
    await c.query(`SET search_path = ${schema}`)
    await c.query('CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
    for (let v = 1; v <= version; v++) {
      await c.query(MIGRATIONS[v - 1]!)
      await c.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)', [v])
    }
  } finally {
    await c.end()
  }
}

let ids = 1

/** A direct text copy for `to` with sensible defaults; `over` replaces fields. */
function copy(to: number, over: Partial<NewCopy> = {}): NewCopy {
  return { to, kind: 'text', from: 1, fromName: 'sender', msgId: ids++, ts: T0, body: Buffer.from('hello'), flags: 0, ...over }
}

if (unreachable !== undefined) {
  describe('Store contract: postgres', () => {
    it('needs PostgreSQL', { skip: unreachable }, () => {})
  })
} else {
  runStoreContract(
    'postgres',
    () => open(`${prefix}_${++n}`),
    async (store) => {
      await store.close()
      await dropSchema((store as PostgresStore).schema)
    },
    {
      reopen: async (store) => {
        await store.close()
        return open((store as PostgresStore).schema)
      },
      twin: (store) => open((store as PostgresStore).schema),
    },
  )

  describe('PostgresStore migrations', () => {
    it('several nodes opening a new schema at once migrate it exactly once', async (t) => {
      const schema = `${prefix}_mig`
      t.after(() => dropSchema(schema))
      const stores = await Promise.all(Array.from({ length: 4 }, () => open(schema)))
      t.after(() => Promise.all(stores.map((s) => s.close())))
      const versions = await sql(schema, (c) =>
        c.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version'),
      )
      assert.deepEqual(
        versions.rows.map((r) => r.version),
        MIGRATIONS.map((_, i) => i + 1),
        'every migration once, in order',
      )
      const made = await Promise.all(stores.map((s, i) => s.createUser(`n${i}`, { tokenHash: null, label: 'x' }, 0)))
      assert.equal(new Set(made.map((m) => m.user.id)).size, 4, 'ids are unique across the nodes')
      assert.equal(new Set(made.map((m) => m.device.id)).size, 4, 'device ids too')
      assert.equal(await stores[0]!.countUsers(), 4)
    })

    it('migration 4 gives existing users their name skeleton; of two existing look-alikes the older keeps it', async (t) => {
      const schema = `${prefix}_skel`
      t.after(() => dropSchema(schema))
      // A schema at version 3 holding two names that look alike (as an older program allowed).
      await schemaAt(schema, 3)
      await sql(schema, (c) =>
        c.query(
          `INSERT INTO users (name, token_hash, created_at) VALUES ('alice', NULL, 1), ('Alice', NULL, 2), ('bob', NULL, 3)`,
        ),
      )
      const store = await open(schema)
      t.after(() => store.close())
      assert.equal((await store.userLike('ALICE'))?.name, 'alice', 'the older keeps the skeleton')
      assert.equal((await store.userByName('Alice'))?.name, 'Alice', 'the later still exists')
      const dev = { tokenHash: null, label: 'x' }
      await assert.rejects(store.createUser('\u0430lice', dev, 4), /looks like "alice"/)
      await assert.rejects(store.createUser('BOB', dev, 4), /looks like "bob"/)
    })

    it('migration 5: the queues of release 0.1.0 become logs, each token a device with its cursor where the queue began', async (t) => {
      const schema = `${prefix}_log`
      t.after(() => dropSchema(schema))
      await schemaAt(schema, 4)
      // What 0.1.0 left: alice (token) had 7 messages and acknowledged 1, 2 and 4; bob (token) had 3, all
      // acknowledged, and one held for him; legacy (tokenless) never had one.
      await sql(schema, async (c) => {
        const users: [string, string | null, number, number, number, number | null][] = [
          ['alice', 'h-alice', 8, 4, 16, 500],
          ['bob', 'h-bob', 4, 0, 0, null],
          ['legacy', null, 1, 0, 0, 700],
        ]
        for (const [name, token, next, count, bytes, seen] of users)
          await c.query(
            `INSERT INTO users (name, skeleton, token_hash, created_at, next_seq, q_count, q_bytes, last_seen)
             VALUES ($1, $2, $3, 100, $4, $5, $6, $7)`,
            [name, nameSkeleton(name), token, next, count, bytes, seen],
          )
        await c.query(`INSERT INTO meta (key, value) VALUES ('skeleton', $1)`, [SKELETON_VERSION])
        const queue: [number, number, number, string | null, string, string | null][] = [
          // seq, sender, kind, topic, body, file_id
          [3, 2, 0, null, 'hell', null], // a direct text from bob: peer = bob
          [5, 2, 1, 'news', 'f.', 'file-1'], // a file on a topic: no peer
          [6, 0, 3, null, 'notice', null], // from SERVER: no peer
          [7, 2, 2, null, 'rcpt', null], // a receipt: no peer
        ]
        for (const [seq, sender, kind, topic, body, fileId] of queue)
          await c.query(
            `INSERT INTO queue (user_id, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
             VALUES (1, $1, $2, $3, $1, $4, 1000, 0, $5, NULL, NULL, $6, $7)`,
            [seq, sender, sender === 0 ? 'SERVER' : 'bob', kind, topic, fileId, Buffer.from(body)],
          )
        await c.query(
          `INSERT INTO held (user_id, not_before, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, file_id, body)
           VALUES (2, 5000, 1, 'alice', 77, 0, 1000, 0, NULL, NULL, NULL, $1)`,
          [Buffer.from('later')],
        )
      })

      const store = await open(schema)
      t.after(() => store.close())
      const versions = await sql(schema, (c) =>
        c.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version'),
      )
      assert.deepEqual(
        versions.rows.map((r) => r.version),
        [1, 2, 3, 4, 5],
      )
      const queueLeft = await sql(schema, (c) => c.query<{ t: string | null }>(`SELECT to_regclass('queue') AS t`))
      assert.equal(queueLeft.rows[0]!.t, null, 'the queue table is gone')

      // Users: the token went to a device; only legacy is tokenless; nobody has a password.
      assert.deepEqual(await store.userByName('alice'), {
        id: 1,
        name: 'alice',
        tokenless: false,
        passwordHash: null,
        createdAt: 100,
      })
      assert.deepEqual(await store.userByName('legacy'), {
        id: 3,
        name: 'legacy',
        tokenless: true,
        passwordHash: null,
        createdAt: 100,
      })
      assert.deepEqual(
        (await store.staleTokenless(1e9, 10)).map((u) => u.name),
        ['legacy'],
      )
      assert.equal(await store.lastSeen(1), 500)

      // Devices: the old tokens log in; each cursor is just below the oldest queued seq (or at the last seq).
      const da = await store.deviceByToken('h-alice')
      assert.deepEqual(da, {
        id: da!.id,
        user: 1,
        label: 'migrated',
        tokenHash: 'h-alice',
        createdAt: 100,
        lastSeen: 500,
        acks: { floor: 2, above: [] },
      })
      const db = await store.deviceByToken('h-bob')
      assert.deepEqual([db?.user, db?.acks, db?.lastSeen], [2, { floor: 3, above: [] }, undefined])
      assert.deepEqual(
        (await store.devices(3)).map((d) => [d.tokenHash, d.label, d.acks]),
        [[null, 'migrated', { floor: 0, above: [] }]],
      )
      assert.equal(await store.deviceByToken('nope'), undefined)

      // The log: what was queued, with peer where the message was a direct text or file.
      const log = await store.readLog(1, 0, 100, 2000)
      assert.deepEqual(
        log.map((m) => [m.seq, m.kind, m.from, m.topic, m.peer, m.fileId, m.body.toString()]),
        [
          [3, 'text', 2, undefined, 2, undefined, 'hell'],
          [5, 'file', 2, 'news', undefined, 'file-1', 'f.'],
          [6, 'notice', 0, undefined, undefined, undefined, 'notice'],
          [7, 'receipt', 2, undefined, undefined, undefined, 'rcpt'],
        ],
      )
      assert.deepEqual(await store.queueStats(1), { count: 4, bytes: 16 })
      assert.deepEqual(
        (await store.history(1, { peer: 2, before: 0, limit: 10 })).map((m) => m.seq),
        [3],
      )

      // Acks: a queued row is a first ack (its sender hears 200); a seq acknowledged before the migration is not.
      const acks = await store.commit([
        { type: 'ack', user: 1, device: da!.id, seq: 3 },
        { type: 'ack', user: 1, device: da!.id, seq: 4 },
        { type: 'ack', user: 1, device: da!.id, seq: 1 },
        { type: 'ack', user: 1, device: da!.id, seq: 3 },
      ])
      assert.deepEqual(
        acks.map((r) => (r.type === 'ack' ? [r.first?.seq ?? null, r.fresh] : r)),
        [
          [3, true],
          [null, true],
          [null, false],
          [null, false],
        ],
      )
      assert.deepEqual(await store.queueStats(1), { count: 3, bytes: 12 })
      assert.deepEqual((await store.deviceById(da!.id))?.acks, { floor: 4, above: [] })

      // Seqs go on where they stopped; a second device starts at the live end.
      const [sent] = await store.commit([{ type: 'send', copies: [copy(1, { peer: 2, from: 2 })], limits: NO_LIMIT }])
      assert.deepEqual(sent, { type: 'send', duplicate: false, seqs: [8] })
      const second = await store.createDevice(1, 'h-alice-2', 'web', 3000)
      assert.deepEqual(second?.acks, { floor: 8, above: [] })

      // The held copy is released into bob's log with his next seq, peer = its sender.
      const released = await store.releaseDue(5000, 10)
      assert.deepEqual(
        released.map((m) => [m.to, m.seq, m.peer, m.body.toString()]),
        [[2, 4, 1, 'later']],
      )
      const [first] = await store.commit([{ type: 'ack', user: 2, device: db!.id, seq: 4 }])
      assert.equal(first?.type === 'ack' && first.first?.msgId, 77)
    })

    it('prunes old dedupe keys a chunk per statement, all of them, and keeps the newer ones', async (t) => {
      const schema = `${prefix}_prune`
      t.after(() => dropSchema(schema))
      const store = new PostgresStore({ connectionString: PG_URL, schema, poolSize: 2, pruneChunk: 1000 })
      await store.open()
      t.after(() => store.close())
      // 2,500 keys older than the cut (three statements' worth) and 500 newer.
      await sql(schema, (c) =>
        c.query(`INSERT INTO dedupe (sender, msg_id, at) SELECT 1, i, CASE WHEN i <= 2500 THEN i ELSE 10000 END
                 FROM generate_series(1, 3000) AS i`),
      )
      const statements: string[] = []
      const query = store.query.bind(store)
      store.query = ((text: string, values?: unknown[]) => {
        if (/DELETE FROM dedupe/.test(text)) statements.push(text)
        return query(text, values)
      }) as typeof store.query
      assert.equal(await store.pruneDedupe(5000), 2500)
      assert.equal(statements.length, 3, 'chunks of 1,000: 1,000, 1,000, then 500 (short: the last)')
      const { rows } = await sql(schema, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM dedupe WHERE at < 5000'))
      assert.equal(Number(rows[0]!.n), 0)
      const left = await sql(schema, (c) => c.query<{ n: string }>('SELECT count(*) AS n FROM dedupe'))
      assert.equal(Number(left.rows[0]!.n), 500)
    })

    it('refuses a schema name that is not a plain identifier', () => {
      assert.throws(() => new PostgresStore({ connectionString: PG_URL, schema: 'x; DROP TABLE y' }), /invalid schema/)
    })

    describe('PostgresStore: the stored kind is the schema code', () => {
      it('rows written before the schema (kind = index in the old list) read back as the same kinds', async (t) => {
        const schema = `${prefix}_oldkinds`
        t.after(() => dropSchema(schema))
        // Rows as an older version wrote them: straight into its queue table, the kind column holding the old index.
        await schemaAt(schema, 4)
        const kinds = Object.entries(STORED_KIND_CODES) as [MessageKind, number][]
        await sql(schema, async (c) => {
          await c.query(`INSERT INTO users (name, token_hash, created_at, next_seq) VALUES ('u', NULL, 1, $1)`, [
            kinds.length + 1,
          ])
          for (const [i, [, code]] of kinds.entries())
            await c.query(
              `INSERT INTO queue (user_id, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
               VALUES (1, $1, 1, 'old', $1, $2, 1, 0, NULL, NULL, NULL, NULL, $3)`,
              [i + 1, code, Buffer.from('x')],
            )
        })
        const s2 = await open(schema)
        t.after(() => s2.close())
        const q = await s2.readLog(1, 0, 10, 1)
        assert.deepEqual(
          q.map((m) => [m.seq, m.kind]),
          kinds.map(([kind], i) => [i + 1, kind]),
        )
      })

      it('each kind committed today lands in the kind column as its code', async (t) => {
        const schema = `${prefix}_newkinds`
        t.after(() => dropSchema(schema))
        const store = await open(schema)
        t.after(() => store.close())
        const { user: u } = await store.createUser('u', { tokenHash: null, label: 'x' }, 1)
        const kinds = Object.keys(MESSAGE_KINDS) as MessageKind[]
        await store.commit([{ type: 'send', copies: kinds.map((kind) => copy(u.id, { kind })), limits: NO_LIMIT }])
        const { rows } = await sql(schema, (c) =>
          c.query<{ kind: number }>('SELECT kind FROM log WHERE user_id = $1 ORDER BY seq', [u.id]),
        )
        assert.deepEqual(
          rows.map((r) => r.kind),
          kinds.map((k) => STORED_KIND_CODES[k]),
        )
      })
    })
  })

  /**
   * The same seeded random sequence of batches, expiries, releases, retention and device changes on PostgresStore
   * and on MemoryStore (the reference): every result and every read-back must be the same. Ids agree because both
   * start empty.
   */
  describe('PostgresStore does what MemoryStore does', () => {
    for (const seed of [1, 2, 3, 4]) it(`seed ${seed}`, (t) => agreeWithMemory(t, seed))
  })

  describe('PostgresStore in a cluster: two nodes, one log', () => {
    it('two devices acknowledging one message from two nodes at once: one first ack; reads: one first read', async (t) => {
      const schema = `${prefix}_race`
      t.after(() => dropSchema(schema))
      const a = await open(schema)
      const b = await open(schema)
      t.after(() => Promise.all([a.close(), b.close()]))
      const { user, device: d1 } = await a.createUser('u', { tokenHash: 'a1', label: 'cli' }, T0)
      const d2 = (await b.createDevice(user.id, 'a2', 'web', T0))!
      const seqs: number[] = []
      for (let i = 0; i < 20; i++) {
        const [r] = await a.commit([{ type: 'send', copies: [copy(user.id)], limits: NO_LIMIT }])
        seqs.push((r as { seqs: number[] }).seqs[0]!)
      }
      assert.equal(d2.acks.floor, 0, 'the second device starts at the live end, before the first send')
      const [ra, rb] = await Promise.all([
        Promise.all(seqs.map((seq) => a.commit([{ type: 'ack', user: user.id, device: d1.id, seq }]))),
        Promise.all(seqs.map((seq) => b.commit([{ type: 'ack', user: user.id, device: d2.id, seq }]))),
      ])
      const firsts = (rs: StoreResult[][]) => rs.filter(([r]) => r?.type === 'ack' && r.first !== null).length
      assert.equal(firsts(ra) + firsts(rb), 20, 'each message acknowledged first once')
      assert.deepEqual(await a.queueStats(user.id), { count: 0, bytes: 0 })
      const devs = await b.devices(user.id)
      assert.deepEqual(
        devs.map((d) => d.acks),
        [
          { floor: 20, above: [] },
          { floor: 20, above: [] },
        ],
      )
      const reads = await Promise.all(
        [a, b, a, b].map((s) => Promise.all(seqs.map((seq) => s.commit([{ type: 'read', user: user.id, seq }])))),
      )
      assert.equal(reads.flat().filter(([r]) => r?.type === 'read' && r.first !== null).length, 20, 'each read first once')
    })
  })
}

export type { Store }
