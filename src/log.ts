/**
 * Logging: pino for the records, and an output of our own for the bytes, because the log must never decide
 * whether the broker lives. pino's own destination (sonic-boom) retries a failed synchronous write forever in
 * its exit handler (EPIPE once the reader of our stderr has gone), which wedged the process on SIGTERM, and
 * after an async EPIPE it silently discards everything from then on. This output never blocks the event loop
 * and never retries on the way out:
 *
 * - a pipe or socket (a supervisor, `serve | logger`) is written through process.stderr, which libuv drives
 *   without blocking; at most MAX_PENDING_BYTES wait for a slow reader, and lines beyond that are dropped;
 * - a file, a terminal or /dev/null is written with writeSync, and a failed write (a full disk) drops the line.
 *
 * Dropped lines are counted (logStats.dropped, exported as switchboard_log_lines_dropped_total on /metrics),
 * and the loss is said once, in one warning, in front of the first line that gets through again.
 */
import { fstatSync, writeSync } from 'node:fs'
import pino from 'pino'
import { prettyFactory } from 'pino-pretty'
import type { Logger } from './core/types.js'

/** Process-wide figures of the log output (there is one stderr per process). */
export const logStats = { dropped: 0 }

/** Bytes allowed to wait for a slow reader of a pipe before lines are dropped. */
export const MAX_PENDING_BYTES = 256 * 1024

/** Where log lines go: a pino destination that drops instead of blocking. */
export class LogOutput {
  /** Dropped since the loss was last said. */
  private unsaid = 0
  private broken = false
  private dropping = false
  private readonly stream: NodeJS.WriteStream | undefined
  /** Called with the number of lines lost, once a line gets through after a loss. Set by makeLogger. */
  onRecovered: ((dropped: number) => void) | undefined

  constructor(
    private readonly fd: number = 2,
    private readonly format: (line: string) => string = (l) => l,
    private readonly maxPending = MAX_PENDING_BYTES,
  ) {
    let kind = 'file'
    try {
      const st = fstatSync(fd)
      if (st.isFIFO() || st.isSocket()) kind = 'stream'
    } catch {
      this.broken = true
    }
    if (kind === 'stream' && (fd === 1 || fd === 2)) {
      this.stream = fd === 1 ? process.stdout : process.stderr
      // EPIPE and the like: the reader has gone for good. Without a listener the error would end the process.
      this.stream.on('error', () => {
        this.broken = true
      })
    }
  }

  /** pino calls this with one serialised record (a JSON line). */
  write(line: string): void {
    if (this.broken || !this.hasRoom()) return this.drop()
    if (this.unsaid > 0) {
      // The first line that gets through after a loss is preceded by one that says so (written through
      // this same method: unsaid is reset first, so the notice cannot announce itself).
      const n = this.unsaid
      this.unsaid = 0
      this.onRecovered?.(n)
    }
    const text = this.format(line)
    if (this.stream !== undefined) {
      this.stream.write(text, (err) => {
        if (err) this.drop()
      })
      return
    }
    try {
      const buf = Buffer.from(text)
      for (let off = 0; off < buf.length;) off += writeSync(this.fd, buf, off)
    } catch {
      this.drop()
    }
  }

  /**
   * Whether a line may wait for the reader: below the cap; once lines are being dropped, only when half the
   * backlog has gone (so that a reader that takes a little now and then does not get a notice per line).
   */
  private hasRoom(): boolean {
    const s = this.stream
    if (s === undefined) return true
    if (s.destroyed) return false
    if (this.dropping) this.dropping = s.writableLength > this.maxPending / 2
    else this.dropping = s.writableLength > this.maxPending
    return !this.dropping
  }

  /** Resolves when what waits for the reader has been written, or at once when nothing waits (or it never will). */
  drained(): Promise<void> {
    const s = this.stream
    if (s === undefined || this.broken || s.destroyed || s.writableLength === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const done = (): void => {
        s.off('drain', done)
        s.off('error', done)
        s.off('close', done)
        resolve()
      }
      s.once('drain', done)
      s.once('error', done)
      s.once('close', done)
    })
  }

  private drop(): void {
    logStats.dropped++
    this.unsaid++
  }
}

/** Structured JSON logs on stderr; pretty when a person is watching (stderr is a terminal) or when asked. */
export function makeLogger(level: string, format: string, fd = 2): { log: Logger & pino.Logger; output: LogOutput } {
  const pretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY)
  const prettify = pretty
    ? prettyFactory({ colorize: process.stderr.isTTY, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' })
    : undefined
  const output = new LogOutput(fd, prettify ? (line) => prettify(line) : undefined)
  const log = pino({ level }, output)
  output.onRecovered = (n) =>
    log.warn(
      { dropped: n, droppedTotal: logStats.dropped },
      `${n} log line(s) were dropped: the log output was closed, full or not read`,
    )
  return { log, output }
}
