/**
 * The shared store of a cluster: `--store postgres://user@host:port/db`, tables in the schema --cluster-name.
 * File metadata lives in the same schema. It needs the pg package, loaded only when this store is opened.
 */
import type { StoreBackend } from '../../plugin.js'
import { importPeer } from '../../plugin.js'

const WHO = 'the PostgreSQL store (--store postgres://…)'

export const postgresBackend: StoreBackend = {
  schemes: ['postgres', 'postgresql'],
  usage: 'a postgres:// URL (cluster)',
  async open(url, opts) {
    const { PostgresStore } = await importPeer('pg', WHO, () => import('./postgres-store.js'))
    return new PostgresStore({
      connectionString: url,
      schema: opts.clusterName,
      logger: opts.logger,
    })
  },
  async fileMeta(store) {
    const [{ PostgresFileMeta }, { PostgresStore }] = await Promise.all([
      import('./postgres-file-meta.js'),
      importPeer('pg', WHO, () => import('./postgres-store.js')),
    ])
    if (!(store instanceof PostgresStore)) throw new Error('PostgreSQL file metadata needs the PostgreSQL store')
    return new PostgresFileMeta(store)
  },
}
