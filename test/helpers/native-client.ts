/**
 * A raw native-protocol client for integration tests: a TCP socket, the codec, and an inbox of received frames
 * that tests wait on by type (or predicate) with a timeout. It does nothing by itself — no automatic ACK, no
 * heartbeat — so a test sees exactly what the server sends and decides every byte it sends back.
 */
import assert from 'node:assert/strict'
import net from 'node:net'
import type { TestContext } from 'node:test'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import { PROTOCOL_VERSION, SessionFlag, type Frame, type FrameName, type FrameOf } from '../../src/protocols/native/frames.js'
import type { Address } from '../../src/core/types.js'
import { ErrorNumbers } from '../../src/core/errors.js'

/** A frame without its corr: the client numbers requests itself. */
export type Outgoing = Frame extends infer F ? (F extends Frame ? Omit<F, 'corr'> & { corr?: number } : never) : never

export interface SendOptions {
  msgId?: number
  flags?: number
  ttlMs?: number
  notBefore?: number
  kind?: number
}

type Pred = (f: Frame) => boolean
interface Waiter {
  pred: Pred
  resolve: (f: Frame) => void
  reject: (e: Error) => void
  timer: NodeJS.Timeout
}

/**
 * A deadline for an answer that must come, not a wait: generous, because a CI host running the suite two files at
 * a time (and browsers, compilers) can take seconds to schedule a freshly spawned server.
 */
const DEFAULT_TIMEOUT = 10_000

/** Clients opened for a test, so the server fixture can drop them before it stops (see destroyClientsOf). */
const clientsOf = new WeakMap<TestContext, Set<NativeClient>>()

/**
 * Destroy every client a test opened. The server fixture calls this before stopping: a graceful stop waits for
 * every connection to close, and one that never logged in would otherwise hold it until the login timeout.
 */
/**
 * The first 9 bytes of a native SEND frame that announces `size` bytes in all (length, type 0x03, corr 7): a
 * stranger's partial frame, for tests and probes of what the server holds before the rest arrives.
 */
export function partialSendHeader(size: number): Buffer {
  const b = Buffer.alloc(9)
  b.writeUInt32BE(size - 4, 0)
  b[4] = 0x03
  b.writeUInt32BE(7, 5)
  return b
}

export function destroyClientsOf(t: TestContext): void {
  for (const c of clientsOf.get(t) ?? []) c.destroy()
}

export class NativeClient {
  /** Every frame received, in order (consumed or not). */
  readonly received: Frame[] = []
  /** Received and not yet taken by next()/request(). */
  private inbox: Frame[] = []
  private waiters: Waiter[] = []
  private readonly reader = new FrameReader(64 * 1024 * 1024)
  private corr = 0
  /** Resolves when the socket has closed (by either side). */
  readonly closed: Promise<void>
  isClosed = false
  /** Frames from the server that did not decode (always a server bug). */
  readonly decodeErrors: string[] = []
  /** Set after REGISTER/LOGIN succeed. */
  id = 0
  name = ''
  token = ''

  private constructor(readonly socket: net.Socket) {
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true
        for (const w of this.waiters.splice(0)) {
          clearTimeout(w.timer)
          w.reject(new Error(`connection closed while waiting; received: ${this.summary()}`))
        }
        resolve()
      })
    })
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      for (const d of this.reader.push(chunk)) {
        if (d.ok) this.deliver(d.frame)
        else {
          // The server must never send this; record it for the test to see, and stop.
          this.decodeErrors.push(JSON.stringify(d))
          socket.destroy()
        }
      }
    })
  }

  /** A client on any byte stream with a socket's events (the in-memory pair of test/helpers/memory-transport.ts). */
  static over(socket: net.Socket, t?: TestContext): NativeClient {
    const c = new NativeClient(socket)
    if (t !== undefined) t.after(() => c.destroy())
    return c
  }

  static connect(port: number, t?: TestContext): Promise<NativeClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => {
        socket.off('error', reject)
        const c = new NativeClient(socket)
        if (t !== undefined) {
          let set = clientsOf.get(t)
          if (set === undefined) clientsOf.set(t, (set = new Set()))
          set.add(c)
          t.after(() => c.destroy())
        }
        resolve(c)
      })
      socket.once('error', reject)
    })
  }

  private deliver(f: Frame): void {
    this.received.push(f)
    const i = this.waiters.findIndex((w) => w.pred(f))
    if (i >= 0) {
      const w = this.waiters.splice(i, 1)[0]!
      clearTimeout(w.timer)
      w.resolve(f)
    } else this.inbox.push(f)
  }

  /** The frames received so far, short, for assertion messages. */
  summary(): string {
    return this.received
      .map((f) => (f.type === 'ERROR' ? `ERROR(${f.code} ${f.message})` : f.type === 'CLOSING' ? `CLOSING(${f.reason})` : f.type))
      .join(', ')
  }

  // ------------------------------------------------------------ sending

  /** Send a frame; returns its corr (numbered from 1 unless given). */
  send(frame: Outgoing): number {
    const corr = frame.corr ?? ++this.corr
    this.socket.write(encode({ ...frame, corr } as Frame))
    return corr
  }

  writeRaw(bytes: Buffer | string): void {
    this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes.replace(/\s+/g, ''), 'hex') : bytes)
  }

  /** Send a request and wait for the frame that answers it (same corr, any type — ERROR included). */
  async request(frame: Outgoing, timeoutMs = DEFAULT_TIMEOUT): Promise<Frame> {
    const corr = this.send(frame)
    return this.next((f) => f.corr === corr, timeoutMs, `the answer to ${frame.type} corr ${corr}`)
  }

  /** Like request(), but the answer must be of the given type. */
  async expect<N extends FrameName>(frame: Outgoing, type: N, timeoutMs = DEFAULT_TIMEOUT): Promise<FrameOf<N>> {
    const f = await this.request(frame, timeoutMs)
    if (f.type !== type) throw new Error(`expected ${type} in answer to ${frame.type}, got ${JSON.stringify(f)}`)
    return f as FrameOf<N>
  }

  // ------------------------------------------------------------ receiving

  /** The next received frame of a type (or matching a predicate), waiting up to timeoutMs. Takes it from the inbox. */
  next<N extends FrameName>(type: N, timeoutMs?: number): Promise<FrameOf<N>>
  next<F extends Frame>(pred: (f: Frame) => f is F, timeoutMs?: number, what?: string): Promise<F>
  next(pred: Pred, timeoutMs?: number, what?: string): Promise<Frame>
  next(sel: FrameName | Pred, timeoutMs = DEFAULT_TIMEOUT, what?: string): Promise<Frame> {
    const pred: Pred = typeof sel === 'function' ? sel : (f) => f.type === sel
    const i = this.inbox.findIndex(pred)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!)
    if (this.isClosed) return Promise.reject(new Error(`connection closed; no ${what ?? String(sel)} among: ${this.summary()}`))
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1)
          reject(new Error(`no ${what ?? String(sel)} within ${timeoutMs} ms; received: ${this.summary()}`))
        }, timeoutMs),
      }
      this.waiters.push(w)
    })
  }

  /** Frames of a type received and not yet taken (pushes), removed from the inbox. */
  take<N extends FrameName>(type: N): FrameOf<N>[] {
    const out = this.inbox.filter((f) => f.type === type) as FrameOf<N>[]
    this.inbox = this.inbox.filter((f) => f.type !== type)
    return out
  }

  /**
   * Wait for the first frame matching `marker`, then return (and take) the frames of `type` that arrived before
   * it. To assert that something did not come, make the server send a marker after it on the same ordered path
   * (a later message to this user, a PONG) and expect `[]`: unlike a quiet window, this cannot pass by timing.
   * @example alice.sendText(to('bob'), 'marker'); assert.deepEqual(await bob.before('DELIVER', isText('marker')), [])
   */
  async before<N extends FrameName>(type: N, marker: Pred, timeoutMs = DEFAULT_TIMEOUT): Promise<FrameOf<N>[]> {
    const m = await this.next(marker, timeoutMs, 'the marker')
    const at = this.received.indexOf(m)
    const earlier = new Set(this.received.slice(0, at))
    const out = this.inbox.filter((f) => f.type === type && earlier.has(f)) as FrameOf<N>[]
    this.inbox = this.inbox.filter((f) => !(out as Frame[]).includes(f))
    return out
  }

  // ------------------------------------------------------------ conveniences

  async register(name: string, flags = 0): Promise<FrameOf<'WELCOME'>> {
    const w = await this.expect({ type: 'REGISTER', version: PROTOCOL_VERSION, flags, name }, 'WELCOME')
    this.id = w.id
    this.name = w.name
    this.token = w.token
    return w
  }

  async login(who: { id: number } | { name: string }, token: string, flags = 0): Promise<FrameOf<'WELCOME'>> {
    const w = await this.expect(
      {
        type: 'LOGIN',
        version: PROTOCOL_VERSION,
        flags,
        id: 'id' in who ? who.id : 0,
        name: 'name' in who ? who.name : '',
        token,
      },
      'WELCOME',
    )
    this.id = w.id
    this.name = w.name
    this.token = token
    return w
  }

  /** A SEND frame (text by default), not waited for. */
  sendText(to: Address, text: string | Buffer, o: SendOptions = {}): number {
    return this.send({
      type: 'SEND',
      msgId: o.msgId ?? 0,
      to,
      kind: o.kind ?? 0,
      flags: o.flags ?? 0,
      ttlMs: o.ttlMs ?? 0,
      notBefore: o.notBefore ?? 0,
      body: typeof text === 'string' ? Buffer.from(text) : text,
    })
  }

  /** SEND and wait for its answer (ACCEPTED or ERROR). */
  say(to: Address, text: string | Buffer, o: SendOptions = {}): Promise<Frame> {
    const corr = this.sendText(to, text, o)
    return this.next(
      (f) => f.corr === corr && (f.type === 'ACCEPTED' || f.type === 'ERROR'),
      DEFAULT_TIMEOUT,
      `the answer to SEND corr ${corr}`,
    )
  }

  ack(seq: number): void {
    this.send({ type: 'ACK', seq })
  }

  /** Stop reading from the socket (a slow consumer); resume() starts again. */
  pause(): void {
    this.socket.pause()
  }

  resume(): void {
    this.socket.resume()
  }

  /** Half-close politely and wait for the server to close. */
  async end(): Promise<void> {
    this.socket.end()
    await this.closed
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** A DELIVER whose text is `text` (a marker for before()). */
export const isText =
  (text: string) =>
  (f: Frame): f is FrameOf<'DELIVER'> =>
    f.type === 'DELIVER' && f.msg.body.toString() === text

/** Assert that `f` is an ERROR with the given code; returns it. */
export function errorOf(f: { type: string }, code: keyof typeof ErrorNumbers): FrameOf<'ERROR'> {
  assert.equal(f.type, 'ERROR', `expected ERROR ${code}, got ${JSON.stringify(f)}`)
  const e = f as FrameOf<'ERROR'>
  assert.equal(e.code, ErrorNumbers[code], `${code}: ${e.message}`)
  return e
}

/** A connected, registered client, destroyed when the test ends. */
export async function registered(t: TestContext, port: number, name: string, flags = 0): Promise<NativeClient> {
  const c = await NativeClient.connect(port, t)
  await c.register(name, flags)
  return c
}

/** A new connection logged in as `who` with its token (poll mode with SessionFlag.POLL). */
export async function loggedIn(
  t: TestContext,
  port: number,
  who: NativeClient | { id: number; token: string },
  flags = 0,
): Promise<NativeClient> {
  const c = await NativeClient.connect(port, t)
  await c.login({ id: who.id }, who.token, flags)
  return c
}

export { SessionFlag }
