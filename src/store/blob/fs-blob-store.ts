/**
 * A BlobStore on a folder: content under `<dir>/<key>`, writes in progress under `<dir>/tmp/<random>.part`.
 * This is the layout data directories have always had, so an existing files folder reads as it is.
 *
 * Crash safety, in the order commit() relies on: the temporary file is written, closed and fsynced
 * (seal), then renamed to its key (rename is atomic within a file system, so the key holds the whole
 * content or nothing), then the folder is fsynced so the rename itself survives a power cut. A process
 * that dies mid-upload leaves only a `.part` file, which sweepTemps() removes.
 *
 * Shared folders (`shared: true`, a cluster's `--files-dir` on a network mount): several processes write
 * their own temporary files (random names, created with O_EXCL) and rename into the same folder; the same
 * key is the same bytes, so two processes committing one key race harmlessly. A process knows only its
 * own writers, so it removes another's temporary file only once it has not been written for the
 * caller's idle limit.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises'
import { once } from 'node:events'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { BLOB_KEY, BlobKeyError, type BlobStore, type BlobWriter } from './blob-store.js'

const TMP = 'tmp'
const TMP_SUFFIX = '.part'
const CHUNK = 64 * 1024

export interface FsBlobStoreOptions {
  dir: string
  /** Other processes use the folder too (see the top of this file). Default false. */
  shared?: boolean
}

export class FsBlobStore implements BlobStore {
  readonly kind = 'fs'
  readonly dir: string
  readonly shared: boolean
  private readonly tmpDir: string
  /** Writers of this process not yet committed or aborted, by temporary file name. */
  private readonly live = new Map<string, FsBlobWriter>()

  constructor(opts: FsBlobStoreOptions) {
    this.dir = opts.dir
    this.shared = opts.shared ?? false
    this.tmpDir = join(opts.dir, TMP)
  }

  async open(): Promise<void> {
    await mkdir(this.tmpDir, { recursive: true })
  }

  async create(): Promise<BlobWriter> {
    const name = randomBytes(16).toString('hex') + TMP_SUFFIX
    const w = new FsBlobWriter(this, name, join(this.tmpDir, name))
    this.live.set(name, w)
    try {
      await w.opened()
    } catch (err) {
      await w.abort()
      throw err
    }
    return w
  }

  async read(key: string, range: { start: number; end: number }): Promise<Readable | undefined> {
    let fh
    try {
      fh = await open(this.path(key), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    if (range.end < range.start) {
      await fh.close()
      return Readable.from([])
    }
    // The handle is open: a delete() meanwhile unlinks the name, and this read still completes.
    return fh.createReadStream({ start: range.start, end: range.end, highWaterMark: CHUNK })
  }

  async has(key: string): Promise<boolean> {
    return exists(this.path(key))
  }

  delete(key: string): Promise<boolean> {
    return unlinkQuiet(this.path(key))
  }

  async *list(): AsyncIterable<string> {
    for (const e of await readdir(this.dir, { withFileTypes: true })) if (e.isFile() && BLOB_KEY.test(e.name)) yield e.name
  }

  async sweepTemps(olderThanMs: number): Promise<number> {
    let n = 0
    const cutoff = Date.now() - olderThanMs // file mtimes are wall-clock
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      if (this.live.has(name)) continue
      const path = join(this.tmpDir, name)
      const st = await stat(path).catch(() => undefined)
      if (st === undefined || !st.isFile() || st.mtimeMs > cutoff) continue
      if (await unlinkQuiet(path)) n++
    }
    return n
  }

  /** @internal The final path of a key (the key checked first: it becomes a file name). */
  path(key: string): string {
    if (!BLOB_KEY.test(key) || key === TMP) throw new BlobKeyError(key)
    return join(this.dir, key)
  }

  /** @internal Called by a writer that committed or aborted. */
  forget(name: string): void {
    this.live.delete(name)
  }
}

type WriterState = 'open' | 'sealed' | 'done' | 'aborted'

class FsBlobWriter implements BlobWriter {
  private state: WriterState = 'open'
  private error: Error | undefined
  private readonly ws: WriteStream

  constructor(
    private readonly store: FsBlobStore,
    private readonly name: string,
    private readonly tmpPath: string,
  ) {
    // 'wx': a random name that somehow exists is an error, never someone else's file overwritten.
    this.ws = createWriteStream(tmpPath, { flags: 'wx', highWaterMark: CHUNK })
    this.ws.on('error', (err) => (this.error ??= err))
  }

  /** Resolves once the temporary file exists. */
  async opened(): Promise<void> {
    if (this.ws.pending) await once(this.ws, 'ready')
  }

  async write(chunk: Buffer): Promise<void> {
    this.expect('open')
    if (this.error !== undefined) throw this.error
    if (chunk.length === 0) return
    if (!this.ws.write(chunk)) await drainOrClose(this.ws)
    // An abort() while waiting resolves quietly: the caller that aborted knows.
    if (this.error !== undefined) throw this.error
  }

  async seal(): Promise<void> {
    this.expect('open')
    this.state = 'sealed'
    try {
      this.ws.end()
      await once(this.ws, 'close')
    } catch (err) {
      this.error ??= err as Error
    }
    if (this.error !== undefined) throw this.error
    const fh = await open(this.tmpPath, 'r+')
    try {
      await fh.sync() // the content is on disk before any name points to it
    } finally {
      await fh.close()
    }
  }

  async commit(key: string): Promise<boolean> {
    this.expect('sealed')
    const final = this.store.path(key)
    let added: boolean
    if (await exists(final)) {
      await unlinkQuiet(this.tmpPath) // the same bytes are stored already
      added = false
    } else {
      await rename(this.tmpPath, final)
      await fsyncDir(this.store.dir)
      added = true
    }
    this.state = 'done'
    this.store.forget(this.name)
    return added
  }

  async abort(): Promise<void> {
    if (this.state === 'done' || this.state === 'aborted') return
    this.state = 'aborted'
    this.store.forget(this.name)
    if (!this.ws.destroyed) {
      this.ws.destroy()
      await once(this.ws, 'close').catch(() => undefined)
    }
    await unlinkQuiet(this.tmpPath)
  }

  private expect(state: WriterState): void {
    if (this.state !== state) throw new Error(`the blob writer is ${this.state}, not ${state}`)
  }
}

/** Resolves on 'drain', or on 'close' when the stream was destroyed meanwhile (an error is kept by its listener). */
function drainOrClose(ws: WriteStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      ws.off('drain', done)
      ws.off('close', done)
      resolve()
    }
    ws.on('drain', done)
    ws.on('close', done)
  })
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

async function unlinkQuiet(path: string): Promise<boolean> {
  try {
    await unlink(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw err
  }
}

/** A rename is durable once its folder is synced (Linux; elsewhere opening a folder may fail: harmless). */
async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r')
    try {
      await fh.sync()
    } finally {
      await fh.close()
    }
  } catch {
    // not supported on this platform
  }
}
