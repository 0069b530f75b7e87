/**
 * The Store contract on PostgresStore, against the real PostgreSQL (PG_URL, default 127.0.0.1:5432 database
 * `test`). Each test gets its own schema, dropped afterwards. Without a reachable server the suite is skipped
 * with the reason, except under CI=true, where a missing service is a failure.
 */
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import pg from 'pg'
import { MESSAGE_KINDS, type MessageKind } from '../../src/schema/message.js'
import { PostgresStore } from '../../src/store/postgres/postgres-store.js'
import type { Store } from '../../src/store/store.js'
import { copy, runStoreContract } from './store.contract.js'
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
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try {
        const { rows } = await c.query(`SELECT version FROM ${schema}.schema_version ORDER BY version`)
        assert.deepEqual(
          rows.map((r: { version: number }) => r.version),
          [1, 2, 3, 4],
          'every migration once, in order',
        )
      } finally {
        await c.end()
      }
      const users = await Promise.all(stores.map((s, i) => s.createUser(`n${i}`, null, 0)))
      assert.equal(new Set(users.map((u) => u.id)).size, 4, 'ids are unique across the nodes')
      assert.equal(await stores[0]!.countUsers(), 4)
    })

    it('migration 4 gives existing users their name skeleton; of two existing look-alikes the older keeps it', async (t) => {
      const schema = `${prefix}_skel`
      t.after(() => dropSchema(schema))
      const first = await open(schema)
      await first.close()
      // Make it a schema at version 3 holding two names that look alike (as an older program allowed).
      const c = new pg.Client({ connectionString: PG_URL })
      await c.connect()
      try {
        await c.query(`SET search_path = ${schema}`)
        await c.query(`ALTER TABLE users DROP COLUMN skeleton; DROP TABLE meta; DELETE FROM schema_version WHERE version = 4`)
        await c.query(
          `INSERT INTO users (name, token_hash, created_at) VALUES ('alice', NULL, 1), ('Alice', NULL, 2), ('bob', NULL, 3)`,
        )
      } finally {
        await c.end()
      }
      const store = await open(schema)
      t.after(() => store.close())
      assert.equal((await store.userLike('ALICE'))?.name, 'alice', 'the older keeps the skeleton')
      assert.equal((await store.userByName('Alice'))?.name, 'Alice', 'the later still exists')
      await assert.rejects(store.createUser('\u0430lice', null, 4), /looks like "alice"/)
      await assert.rejects(store.createUser('BOB', null, 4), /looks like "bob"/)
    })

    it('refuses a schema name that is not a plain identifier', () => {
      assert.throws(() => new PostgresStore({ connectionString: PG_URL, schema: 'x; DROP TABLE y' }), /invalid schema/)
    })

    describe('PostgresStore: the stored kind is the schema code', () => {
      it('rows written before the schema (kind = index in the old list) read back as the same kinds', async (t) => {
        const schema = `${prefix}_oldkinds`
        t.after(() => dropSchema(schema))
        const s1 = await open(schema)
        const u = await s1.createUser('u', null, 1)
        await s1.close()
        // Rows as an older version wrote them: straight into the table, the kind column holding the old index.
        const kinds = Object.entries(STORED_KIND_CODES) as [MessageKind, number][]
        const c = new pg.Client({ connectionString: PG_URL })
        await c.connect()
        try {
          for (const [i, [, code]] of kinds.entries())
            await c.query(
              `INSERT INTO ${schema}.queue (user_id, seq, sender, sender_name, msg_id, kind, ts, flags, topic, expires_at, not_before, file_id, body)
             VALUES ($1, $2, 1, 'old', $2, $3, 1, 0, NULL, NULL, NULL, NULL, $4)`,
              [u.id, i + 1, code, Buffer.from('x')],
            )
        } finally {
          await c.end()
        }
        const s2 = await open(schema)
        t.after(() => s2.close())
        const q = await s2.readQueue(u.id, 0, 10, 1)
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
        const u = await store.createUser('u', null, 1)
        const kinds = Object.keys(MESSAGE_KINDS) as MessageKind[]
        await store.commit([
          { type: 'send', copies: kinds.map((kind) => copy(u.id, { kind })), limits: { maxCount: 1e9, maxBytes: 1e12 } },
        ])
        const c = new pg.Client({ connectionString: PG_URL })
        await c.connect()
        try {
          const { rows } = await c.query(`SELECT kind FROM ${schema}.queue WHERE user_id = $1 ORDER BY seq`, [u.id])
          assert.deepEqual(
            rows.map((r: { kind: number }) => r.kind),
            kinds.map((k) => STORED_KIND_CODES[k]),
          )
        } finally {
          await c.end()
        }
      })
    })
  })
}

export type { Store }
