/**
 * The WAL's checkpoints on a thread of their own. SQLite copies the WAL back into the database file (a
 * checkpoint) inside the commit that takes the WAL past `wal_autocheckpoint` pages (1,000): on the event loop,
 * every dozen commits or so under load, reading and writing back ~1,000 pages and fsyncing the database file —
 * tens of ms during which no socket is served, the event-loop delay's p99 in the direct bench. Here a worker
 * thread with its own connection runs PASSIVE checkpoints (they take no lock a commit needs: they copy what is
 * committed while commits go on) every CHECKPOINT_EVERY_MS, and the store turns the automatic ones off. The WAL
 * starts again from its beginning at the first commit after a checkpoint that copied everything; if commits never
 * leave such a moment and the WAL passes RESTART_FRAMES, the thread runs a RESTART checkpoint, which makes the
 * next commit wait for it once.
 *
 * The thread is plain JavaScript (evaluated, so that it runs the same from the sources and from the build) and
 * loads the driver the store uses (driver.ts). It starts after the store's first few commits, so a short-lived
 * store (a test, a CLI command) never pays for a thread; if it fails, the store turns automatic checkpoints back on.
 */
import { Worker } from 'node:worker_threads'
import { createRequire } from 'node:module'
import { driverName } from './driver.js'

export interface CheckpointTiming {
  /** How often the thread checkpoints. Default 50 ms. */
  everyMs?: number
  /** WAL frames past which it runs a RESTART checkpoint. Default 16,384 (~64 MiB at 4 KiB pages). */
  restartFrames?: number
}

const CHECKPOINT_EVERY_MS = 50
const RESTART_FRAMES = 16_384

const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.driver)
const db = new Database(workerData.path)
db.pragma('busy_timeout = 5000')
db.pragma('synchronous = FULL')
const step = () => {
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)')
    if (r && r.log > workerData.restartFrames) {
      db.pragma('wal_checkpoint(RESTART)')
      parentPort.postMessage({ restarted: true })
    }
  } catch (err) {
    parentPort.postMessage({ warn: String(err && err.message || err) })
  }
  timer = setTimeout(step, workerData.everyMs)
}
let timer = setTimeout(step, workerData.everyMs)
parentPort.on('message', (m) => {
  if (m !== 'stop') return
  clearTimeout(timer)
  db.close()
  parentPort.postMessage({ stopped: true })
})
parentPort.postMessage({ ready: true })
`

export interface CheckpointerEvents {
  /** The thread is running: automatic checkpoints may be turned off. */
  ready(): void
  /** The thread failed or exited: turn them back on. */
  gone(err: unknown): void
  warn(message: string): void
}

export class Checkpointer {
  private readonly worker: Worker
  private stopped: Promise<void> | undefined
  /** RESTART checkpoints run so far (tests). */
  restarts = 0

  constructor(path: string, on: CheckpointerEvents, timing: CheckpointTiming = {}) {
    const driver = createRequire(import.meta.url).resolve(driverName)
    const everyMs = timing.everyMs ?? CHECKPOINT_EVERY_MS
    const restartFrames = timing.restartFrames ?? RESTART_FRAMES
    this.worker = new Worker(SOURCE, { eval: true, workerData: { path, driver, everyMs, restartFrames } })
    this.worker.unref()
    this.worker.on('message', (m: { ready?: boolean; warn?: string; stopped?: boolean; restarted?: boolean }) => {
      if (m.restarted === true) this.restarts++
      else if (m.ready === true) on.ready()
      else if (m.warn !== undefined) on.warn(m.warn)
    })
    this.worker.on('error', (err) => on.gone(err))
    this.worker.on('exit', (code) => {
      if (this.stopped === undefined) on.gone(new Error(`the checkpoint thread exited (${code})`))
    })
  }

  /** Close the thread's connection and end it. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timeout)
        resolve()
      }
      // A thread stuck in a RESTART behind a busy file must not hold a stop: terminate it after a while.
      const timeout = setTimeout(() => void this.worker.terminate().then(done, done), 5000)
      this.worker.once('exit', done)
      this.worker.on('message', (m: { stopped?: boolean }) => {
        if (m.stopped === true) void this.worker.terminate().then(done, done)
      })
      this.worker.postMessage('stop')
    })
    return this.stopped
  }
}
