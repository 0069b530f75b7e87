import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from '../../src/store/sqlite/driver.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'

test('a version-1 SQLite file (no users.last_seen) is upgraded in place when opened', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-mig-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'switchboard.db')
  const s1 = new SqliteStore({ path })
  await s1.open()
  const u = await s1.createUser('alice', null, 1)
  await s1.close()
  // Make it look like a file written by schema version 1.
  const db = new Database(path)
  db.exec(`ALTER TABLE users DROP COLUMN last_seen; UPDATE meta SET value = '1' WHERE key = 'schema'`)
  db.close()

  const s2 = new SqliteStore({ path })
  await s2.open()
  t.after(() => s2.close())
  assert.equal((await s2.userById(u.id))?.name, 'alice', 'data kept')
  assert.equal(await s2.lastSeen(u.id), undefined)
  await s2.setLastSeen(u.id, 42)
  assert.equal(await s2.lastSeen(u.id), 42)
  const check = new Database(path, { readonly: true })
  t.after(() => check.close())
  assert.equal((check.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '3')
})

test('a version-2 SQLite file gets users.skeleton; of two existing look-alike names the older keeps it, and both still work', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-mig-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'switchboard.db')
  const s1 = new SqliteStore({ path })
  await s1.open()
  await s1.close()
  // A file written by schema version 2, holding names that an older program let through side by side.
  const db = new Database(path)
  db.exec(`DROP INDEX users_skeleton; ALTER TABLE users DROP COLUMN skeleton;
    DELETE FROM meta WHERE key = 'skeleton'; UPDATE meta SET value = '2' WHERE key = 'schema';
    INSERT INTO users (name, token_hash, created_at) VALUES ('alice', NULL, 1), ('Alice', NULL, 2), ('bob', NULL, 3)`)
  db.close()

  const warned: object[] = []
  const s2 = new SqliteStore({
    path,
    logger: { debug() {}, info() {}, error() {}, warn: (o: object) => void warned.push(o) },
  })
  await s2.open()
  t.after(() => s2.close())
  assert.equal((await s2.userLike('ALICE'))?.name, 'alice', 'the older keeps the skeleton')
  assert.equal((await s2.userByName('Alice'))?.name, 'Alice', 'the later one is kept')
  assert.deepEqual(warned, [{ user: 2, name: 'Alice', like: 'alice' }], 'the clash is logged')
  await assert.rejects(s2.createUser('\u0430lice', null, 4), /looks like "alice"/)
  await assert.rejects(s2.createUser('BOB', null, 4), /looks like "bob"/)
  assert.equal((await s2.createUser('carol', null, 4)).name, 'carol')
})
