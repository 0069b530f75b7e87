import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after } from 'node:test'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import type { Store } from '../../src/store/store.js'
import { runStoreContract } from './store.contract.js'

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
