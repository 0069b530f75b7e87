/**
 * The memory store: `--store memory:` (or `memory://NAME`). Nothing is durable and nothing is shared between
 * processes: for tests and demos, never for messages that matter. No file metadata, so file transfer is off.
 */
import type { StoreBackend } from '../../plugin.js'

export const memoryBackend: StoreBackend = {
  schemes: ['memory'],
  usage: 'memory: (in this process only, nothing durable: tests and demos)',
  async open(url) {
    const { createMemoryStore } = await import('./memory-store.js')
    return createMemoryStore(url)
  },
}
