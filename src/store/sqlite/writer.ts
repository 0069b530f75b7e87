/**
 * The SQLite store's writer thread: it owns a second connection to the same file and runs each planned batch
 * of the group commit — the inserts, the cursor and counter updates and the COMMIT with its fsync — so that
 * the event loop does not wait for them. The batch arrives as flat arrays of columns and one transferred
 * buffer holding every body (writer-batch.ts); the answer is `{ ok }` or the error's code and message.
 *
 * The store plans a batch on the main thread (it owns the caches and reads) and may send the next one before
 * this one answered (a pipeline: it plans over what the earlier batches will have written). Batches are written
 * in the order they came. When one fails, those after it were planned over it: each is refused too, until the
 * store, having dropped what it planned, says `reset`. The store writes nothing else while batches are here,
 * so this thread is the only writer then; WAL lets the main connection read meanwhile.
 */
import { parentPort, workerData } from 'node:worker_threads'
import Database from './driver.js'
import { applyBatch, type WriterBatch, type WriterReply } from './writer-batch.js'

interface WriterData {
  path: string
}

const port = parentPort
if (port === null) throw new Error('writer.ts runs in a worker thread')
const { path } = workerData as WriterData

const db = new Database(path)
db.pragma('journal_mode = WAL')
// FULL: the WAL is fsynced at every commit — what the store acknowledges is on disk.
db.pragma('synchronous = FULL')
db.pragma('foreign_keys = OFF')
db.pragma('busy_timeout = 5000')
db.pragma('cache_size = -65536')
const apply = applyBatch(db)

/** Set by a failed batch: what follows was planned over it. */
let failed: string | undefined

port.on('message', (msg: WriterBatch | { close: true } | { reset: true }) => {
  if ('close' in msg) {
    db.close()
    port.close()
    return
  }
  if ('reset' in msg) {
    failed = undefined
    return
  }
  if (failed !== undefined) {
    port.postMessage({ ok: false, message: `not written: an earlier batch failed (${failed})`, code: undefined } satisfies WriterReply)
    return
  }
  let reply: WriterReply
  try {
    apply(msg)
    reply = { ok: true }
  } catch (err) {
    const e = err as Error & { code?: unknown }
    reply = { ok: false, message: e.message, code: typeof e.code === 'string' ? e.code : undefined }
    failed = e.message
  }
  port.postMessage(reply)
})
port.postMessage({ ok: true } satisfies WriterReply)
