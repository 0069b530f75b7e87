/**
 * The embedded store: `--store sqlite` (or `sqlite:`) keeps <data-dir>/switchboard.db; `sqlite:<file>` names
 * the file. File metadata lives in the same database.
 */
import { join, resolve } from 'node:path'
import type { StoreBackend, StoreOpenOptions } from '../../plugin.js'

/** The database file a --store value names. */
export function sqlitePath(url: string, opts: StoreOpenOptions): string {
  const rest = url.slice('sqlite'.length).replace(/^:(\/\/)?/, '')
  return rest === '' ? join(resolve(opts.dataDir), 'switchboard.db') : resolve(rest)
}

export const sqliteBackend: StoreBackend = {
  schemes: ['sqlite'],
  usage: "'sqlite' or sqlite:<file> (embedded; default <data-dir>/switchboard.db)",
  async open(url, opts) {
    const { SqliteStore } = await import('./sqlite-store.js')
    return new SqliteStore({ path: sqlitePath(url, opts), logger: opts.logger })
  },
  async fileMeta(_store, url, opts) {
    const { SqliteFileMeta } = await import('./sqlite-file-meta.js')
    return new SqliteFileMeta({ path: sqlitePath(url, opts) })
  },
}
