/**
 * The group commit's fsync on a thread of its own. With synchronous=FULL, SQLite fsyncs the WAL inside COMMIT: on
 * the event loop, where on this project's machines (virtual disks) the flush and the wait for it are most of a
 * small commit's time — a pair at 2,000 msgs/s spent ~40 % of the loop inside COMMITs of a few rows. Here the
 * store commits the group commit's batch with synchronous=NORMAL (the WAL's frames are written, not flushed), and
 * this thread fdatasyncs the WAL file; the batch's results are released only once a flush that began after the
 * batch's COMMIT has finished, so what is acknowledged is on disk exactly as before. The loop serves sockets
 * meanwhile, and commits made during one flush share the next.
 *
 * Why that is enough: a WAL commit is its frames, the last one marked as a commit, checksummed and salted by the
 * WAL's header; after a crash SQLite replays the WAL up to its last valid commit. Once the file is flushed, every
 * commit written before the flush began is in it. A checkpoint flushes the WAL before it copies frames into the
 * database (the checkpoint thread's connection runs with synchronous=FULL), and the WAL starts again from its
 * beginning only after a checkpoint copied and flushed everything, so a flush never races a frame's only copy.
 *
 * If the thread fails, what waits on it is flushed on the event loop (fdatasync) and the store commits with
 * synchronous=FULL again.
 */
import { Worker } from 'node:worker_threads'
import { closeSync, fdatasyncSync, openSync } from 'node:fs'

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const fs = require('node:fs')
let fd
const sleep = new Int32Array(new SharedArrayBuffer(4))
parentPort.on('message', (n) => {
  if (n === 'stop') {
    if (fd !== undefined) fs.closeSync(fd)
    parentPort.close()
    return
  }
  try {
    if (workerData.delayMs > 0) Atomics.wait(sleep, 0, 0, workerData.delayMs)
    // SQLite removes the WAL only when the last connection closes; a file that was replaced is opened again.
    if (fd !== undefined && fs.fstatSync(fd).nlink === 0) {
      fs.closeSync(fd)
      fd = undefined
    }
    fd ??= fs.openSync(workerData.wal, 'r+')
    fs.fdatasyncSync(fd)
    parentPort.postMessage({ n })
  } catch (err) {
    parentPort.postMessage({ n, error: String((err && err.message) || err) })
  }
})
parentPort.postMessage({ ready: true })
`

export interface WalSyncOptions {
  /** Tests: the thread waits this long before each flush, so that a test can see who waits for it. */
  delayMs?: number
}

interface Waiter {
  upTo: number
  resolve: () => void
  reject: (err: unknown) => void
}

export interface WalSyncEvents {
  /** The thread failed or exited: the store commits with synchronous=FULL again. */
  gone(err: unknown): void
}

export class WalSync {
  private readonly worker: Worker
  private ready = false
  private alive = true
  /** Commits handed over so far, the one a flush under way covers (0: none), and the last one known flushed. */
  private marked = 0
  private flushing = 0
  private flushed = 0
  private waiters: Waiter[] = []
  private stopping: Promise<void> | undefined
  /** Flushes done (tests, metrics). */
  flushes = 0

  constructor(
    private readonly walPath: string,
    private readonly on: WalSyncEvents,
    opts: WalSyncOptions = {},
  ) {
    this.worker = new Worker(SOURCE, { eval: true, workerData: { wal: walPath, delayMs: opts.delayMs ?? 0 } })
    this.worker.unref()
    this.worker.on('message', (m: { ready?: boolean; n?: number; error?: string }) => {
      if (m.ready === true) this.ready = true
      else if (m.error !== undefined) this.fail(new Error(`fdatasync of ${this.walPath} failed: ${m.error}`))
      else if (m.n !== undefined) this.done(m.n)
    })
    this.worker.on('error', (err) => this.fail(err))
    this.worker.on('exit', (code) => {
      if (this.stopping === undefined) this.fail(new Error(`the WAL sync thread exited (${code})`))
    })
  }

  /** Whether a commit may run with synchronous=NORMAL and wait here instead. */
  get usable(): boolean {
    return this.ready && this.alive
  }

  /** A commit was written without a flush: resolves once a flush begun after it has finished. */
  committed(): Promise<void> {
    return this.wait(++this.marked)
  }

  /** Resolves once everything committed so far is flushed (a read that must not see what is not durable). */
  durable(): Promise<void> {
    return this.flushed >= this.marked ? Promise.resolve() : this.wait(this.marked)
  }

  private wait(upTo: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ upTo, resolve, reject })
      this.kick()
    })
  }

  private kick(): void {
    if (this.flushing !== 0 || this.flushed >= this.marked || !this.alive) return
    this.flushing = this.marked
    this.worker.postMessage(this.flushing)
  }

  private done(n: number): void {
    this.flushes++
    this.flushing = 0
    this.flushed = Math.max(this.flushed, n)
    const ready = this.waiters.filter((w) => w.upTo <= this.flushed)
    if (ready.length > 0) this.waiters = this.waiters.filter((w) => w.upTo > this.flushed)
    for (const w of ready) w.resolve()
    this.kick()
  }

  /**
   * The thread is gone or a flush failed: flush here, on the loop, for whoever waits (a failed fdatasync fails
   * them), and hand the commits back to SQLite's own.
   */
  private fail(err: unknown): void {
    if (!this.alive) return
    this.alive = false
    const waiters = this.waiters
    this.waiters = []
    let flushErr: unknown
    if (waiters.length > 0) {
      try {
        const fd = openSync(this.walPath, 'r+')
        try {
          fdatasyncSync(fd)
        } finally {
          closeSync(fd)
        }
      } catch (e) {
        flushErr = e
      }
    }
    for (const w of waiters) flushErr === undefined ? w.resolve() : w.reject(flushErr)
    this.on.gone(err)
    void this.worker.terminate()
  }

  /** Flush what is pending, then end the thread. */
  stop(): Promise<void> {
    // A thread that failed was ended then, and what waited on it was flushed.
    if (!this.alive) return this.stopping ?? Promise.resolve()
    this.stopping ??= this.durable()
      .catch(() => {})
      .then(
        () =>
          new Promise<void>((resolve) => {
            this.alive = false
            // The thread closes its descriptor and ends; one that does not answer is ended after a while.
            const timeout = setTimeout(() => void this.worker.terminate(), 5000)
            this.worker.once('exit', () => {
              clearTimeout(timeout)
              resolve()
            })
            this.worker.postMessage('stop')
          }),
      )
    return this.stopping
  }
}
