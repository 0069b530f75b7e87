/**
 * Fixtures for the gateway integration tests: a real Broker over a SqliteStore in a temp dir (with a
 * FileService), a native listener on port 0, a raw-socket client that reads exact byte counts, and a small
 * native-protocol client.
 */
import type { TestContext } from 'node:test'
import net from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Broker } from '../../src/core/broker.js'
import { FileService } from '../../src/core/files.js'
import { FsBlobStore } from '../../src/store/blob/fs-blob-store.js'
import type { Logger } from '../../src/core/types.js'
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js'
import { LocalBus } from '../../src/bus/local/local-bus.js'
import { SqliteFileMeta } from '../../src/store/sqlite/sqlite-file-meta.js'
import { listenNative } from '../../src/protocols/native/server.js'
import { FrameReader, encode as encodeNative } from '../../src/protocols/native/codec.js'
import { PROTOCOL_VERSION, SendFlag, type Frame, type FrameOf, type FrameName } from '../../src/protocols/native/frames.js'
import type { Address } from '../../src/core/types.js'
import { until as waitFor } from './wait.js'

export interface LogLine {
  level: string
  obj: object
  msg: string | undefined
}

/** A logger that records lines, so tests can check that a refusal says why. */
export function recordingLogger(): Logger & { lines: LogLine[]; has(level: string, re: RegExp): boolean } {
  const lines: LogLine[] = []
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg })
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    has: (level, re) => lines.some((l) => l.level === level && re.test(`${l.msg ?? ''} ${JSON.stringify(l.obj)}`)),
  }
}

export async function brokerFixture(
  t: TestContext,
  opts: { ackTimeoutMs?: number; maxFileBytes?: number; idleTimeoutMs?: number; reapIntervalMs?: number } = {},
) {
  const root = mkdtempSync(join(tmpdir(), 'sb-'))
  const dbPath = join(root, 'switchboard.db')
  const log = recordingLogger()
  const broker = new Broker({
    store: new SqliteStore({ path: dbPath }),
    bus: new LocalBus(),
    ackTimeoutMs: opts.ackTimeoutMs ?? 300,
    logger: log,
    ...(opts.idleTimeoutMs !== undefined && { idleTimeoutMs: opts.idleTimeoutMs }),
    ...(opts.reapIntervalMs !== undefined && { reapIntervalMs: opts.reapIntervalMs }),
  })
  await broker.start()
  const files = new FileService({
    blobs: new FsBlobStore({ dir: join(root, 'files') }),
    meta: new SqliteFileMeta({ path: dbPath }),
    broker,
    ...(opts.maxFileBytes !== undefined && { maxFileBytes: opts.maxFileBytes }),
  })
  await files.start()
  const native = await listenNative(broker, {
    host: '127.0.0.1',
    port: 0,
    maxFrameBytes: 1024 * 1024,
    heartbeatMs: 30_000,
    highWaterMark: 1024 * 1024,
    loginTimeoutMs: 30_000,
    serverName: 'test',
  })
  const nativePort = native.port
  const closers: (() => Promise<void> | void)[] = []
  t.after(async () => {
    for (const c of closers.reverse()) await c()
    // The listener's close waits for its sockets, which end when the broker closes their sessions.
    const stopped = native.close()
    await broker.close()
    await stopped
    await files.close()
    rmSync(root, { recursive: true, force: true })
  })
  return { root, broker, files, log, nativePort, onClose: (f: () => Promise<void> | void) => void closers.push(f) }
}

/** A raw TCP client: collects every byte, reads exact counts, notices the server closing. */
export class RawClient {
  buf: Buffer = Buffer.alloc(0)
  ended = false
  /** Times at which chunks arrived with their sizes (for the 004 pacing test). */
  readonly chunks: { at: number; bytes: Buffer }[] = []
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push({ at: Date.now(), bytes: c })
      this.buf = Buffer.concat([this.buf, c])
    })
    socket.on('close', () => (this.ended = true))
    socket.on('error', () => undefined)
  }
  static async connect(t: TestContext, port: number): Promise<RawClient> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((res, rej) => {
      socket.once('connect', res)
      socket.once('error', rej)
    })
    socket.setNoDelay(true)
    const c = new RawClient(socket)
    t.after(() => void socket.destroy())
    return c
  }
  write(b: Buffer | string): void {
    this.socket.write(typeof b === 'string' ? Buffer.from(b, 'hex') : b)
  }
  async read(n: number, ms = 3000): Promise<Buffer> {
    await waitFor(`${n} bytes (have ${this.buf.length})`, () => this.buf.length >= n, ms)
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    return Buffer.from(out)
  }
  /** Decode one item with a codec-style function, waiting for enough bytes. */
  async next<T>(
    decode: (b: Buffer) => { ok: true; frame: T; rest: Buffer } | { ok: false; reason: string },
    ms = 3000,
  ): Promise<T> {
    let got: T | undefined
    await waitFor(
      'a decodable frame',
      () => {
        const r = decode(this.buf)
        if (!r.ok) {
          if (r.reason !== 'need-more') throw new Error(`undecodable bytes: ${r.reason}`)
          return false
        }
        got = r.frame
        this.buf = r.rest
        return true
      },
      ms,
    )
    return got as T
  }
  async closedByServer(ms = 3000): Promise<boolean> {
    try {
      await waitFor('the server to close', () => this.ended, ms)
      return true
    } catch {
      return false
    }
  }
}

/** A minimal native-protocol client over TCP (REGISTER, SEND, ACK, REQUEST). */
export class NativeClient {
  readonly frames: Frame[] = []
  private corr = 1
  private readonly reader = new FrameReader(16 * 1024 * 1024)
  id = 0
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      for (const d of this.reader.push(c)) if (d.ok) this.frames.push(d.frame)
    })
    socket.on('error', () => undefined)
  }
  static async register(t: TestContext, port: number, name: string): Promise<NativeClient> {
    const socket = net.connect(port, '127.0.0.1')
    await new Promise<void>((res, rej) => {
      socket.once('connect', res)
      socket.once('error', rej)
    })
    const c = new NativeClient(socket)
    t.after(() => void socket.destroy())
    c.send({ type: 'REGISTER', corr: c.corr++, version: PROTOCOL_VERSION, flags: 0, name })
    const w = await c.next('WELCOME')
    c.id = w.id
    return c
  }
  send(f: Frame): void {
    this.socket.write(encodeNative(f))
  }
  /** Wait for the first frame of a type (optionally matching), and remove it from the list. */
  async next<N extends FrameName>(type: N, match: (f: FrameOf<N>) => boolean = () => true, ms = 3000): Promise<FrameOf<N>> {
    let found: FrameOf<N> | undefined
    await waitFor(
      `native ${type}`,
      () => {
        const i = this.frames.findIndex((f) => f.type === type && match(f as FrameOf<N>))
        if (i === -1) return false
        found = this.frames.splice(i, 1)[0] as FrameOf<N>
        return true
      },
      ms,
    )
    return found!
  }
  sendText(to: Address, text: string, opts: { msgId?: number; receipt?: boolean } = {}): number {
    const corr = this.corr++
    this.send({
      type: 'SEND',
      corr,
      msgId: opts.msgId ?? corr,
      to,
      kind: 0,
      flags: opts.receipt ? SendFlag.RECEIPT : 0,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from(text),
    })
    return corr
  }
  ack(seq: number): void {
    this.send({ type: 'ACK', corr: this.corr++, seq })
  }
  request(op: number, arg: string): number {
    const corr = this.corr++
    this.send({ type: 'REQUEST', corr, op, arg })
    return corr
  }
  /** Next DELIVER whose body matches, acknowledged. */
  async deliver(match: (text: string) => boolean = () => true, ms = 3000): Promise<FrameOf<'DELIVER'>['msg']> {
    const f = await this.next('DELIVER', (d) => match(d.msg.body.toString('utf8')), ms)
    if (f.msg.seq !== 0) this.ack(f.msg.seq)
    return f.msg
  }
}
