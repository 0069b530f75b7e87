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
  assert.equal((check.prepare(`SELECT value FROM meta WHERE key = 'schema'`).get() as { value: string }).value, '2')
})
