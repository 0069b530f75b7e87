/**
 * The Store contract on MemoryStore. Each test gets its own named data, so `reopen` (close, open the same name)
 * is a restart that keeps the data and `twin` is a second node on it.
 */
import { createMemoryStore, MemoryStore } from '../../src/store/memory/memory-store.js'
import type { Store } from '../../src/store/store.js'
import { runStoreContract } from './store.contract.js'

let n = 0
const names = new WeakMap<Store, string>()

async function open(name: string): Promise<Store> {
  const store = createMemoryStore(`memory://${name}`)
  await store.open()
  names.set(store, name)
  return store
}

runStoreContract(
  'memory',
  () => open(`contract-${++n}`),
  async (store) => {
    await store.close()
    MemoryStore.drop(names.get(store)!)
  },
  {
    reopen: async (store) => {
      await store.close()
      return open(names.get(store)!)
    },
    twin: (store) => open(names.get(store)!),
  },
)
