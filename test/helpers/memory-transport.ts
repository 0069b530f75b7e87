/**
 * In-memory transports for hermetic core tests (no socket, no file), after aedes' duplexPair tests:
 *
 * - `MemorySink`: a SessionSink that records what the Broker pushes and lets a test wait for the next event of a
 *   kind. Tests that drive the Broker's public methods attach sessions with it.
 * - `MemoryTransport` over `duplexPair()`: the native protocol's Transport on one end of an in-memory byte
 *   stream, a NativeClient on the other (`nativeOverMemory`). This is the one implementation of the Transport
 *   interface in the tests: a change to that interface is made here.
 * - `TestClock`: the Broker's injected `now`, moved together with node:test's mocked timers, so ack timeouts, the
 *   reaper and the rate limit run on the test's time, not the wall clock.
 */
import { Duplex } from 'node:stream'
import type { TestContext } from 'node:test'
import type net from 'node:net'
import type { Broker } from '../../src/core/broker.js'
import type { CloseReason, Outbound, SessionSink } from '../../src/core/types.js'
import { NativeConnection, type NativeOptions, type Transport } from '../../src/protocols/native/adapter.js'
import { NativeClient } from './native-client.js'

type OutboundOf<T extends Outbound['type']> = Extract<Outbound, { type: T }>

interface Waiter {
  pred: (ev: Outbound) => boolean
  resolve: (ev: Outbound) => void
}

/** A session's sink that keeps what it is pushed. `backlog` and `full` let a test play a slow connection. */
export class MemorySink implements SessionSink {
  /** Every event pushed, in order (taken by next() or not). */
  readonly events: Outbound[] = []
  private inbox: Outbound[] = []
  private waiters: Waiter[] = []
  private closeWaiters: ((c: { reason: CloseReason; text: string }) => void)[] = []
  closedWith: { reason: CloseReason; text: string } | undefined
  /** What backlog() reports (bytes "not yet written"). */
  buffered = 0
  /** When true, push() reports the connection over its high-water mark. */
  full = false

  push(ev: Outbound): boolean {
    this.events.push(ev)
    const i = this.waiters.findIndex((w) => w.pred(ev))
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(ev)
    else this.inbox.push(ev)
    return !this.full
  }

  backlog(): number {
    return this.buffered
  }

  close(reason: CloseReason, text: string): void {
    this.closedWith = { reason, text }
    for (const w of this.closeWaiters.splice(0)) w(this.closedWith)
  }

  /** The next event of this type (and matching `pred`) not yet taken: one already here, or the next to come. */
  next<T extends Outbound['type']>(type: T, pred: (ev: OutboundOf<T>) => boolean = () => true): Promise<OutboundOf<T>> {
    const match = (ev: Outbound): boolean => ev.type === type && pred(ev as OutboundOf<T>)
    const i = this.inbox.findIndex(match)
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as OutboundOf<T>)
    return new Promise((resolve) => this.waiters.push({ pred: match, resolve: resolve as (ev: Outbound) => void }))
  }

  /** Events not taken yet, of one type. */
  pending<T extends Outbound['type']>(type: T): OutboundOf<T>[] {
    return this.inbox.filter((ev) => ev.type === type) as OutboundOf<T>[]
  }

  /** Resolves with the reason once the Broker closes the session. */
  closed(): Promise<{ reason: CloseReason; text: string }> {
    if (this.closedWith !== undefined) return Promise.resolve(this.closedWith)
    return new Promise((resolve) => this.closeWaiters.push(resolve))
  }
}

/** Two connected in-memory byte streams: what one end writes the other reads; ending or destroying one closes both. */
export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      allowHalfOpen: false,
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk)
        cb()
      },
      final(cb) {
        peer().push(null)
        cb()
      },
      destroy(err, cb) {
        if (!peer().destroyed) peer().destroy()
        cb(err)
      },
    })
  const a: Duplex = make(() => b)
  const b: Duplex = make(() => a)
  return [a, b]
}

/** The native protocol's Transport over one end of a duplexPair (what socketTransport is over a TCP socket). */
export class MemoryTransport implements Transport {
  constructor(private readonly stream: Duplex) {}

  write(buf: Buffer): void {
    if (!this.stream.destroyed) this.stream.write(buf)
  }

  bufferedBytes(): number {
    return this.stream.writableLength
  }

  end(): void {
    this.stream.end()
  }

  pause(): void {
    this.stream.pause()
  }

  resume(): void {
    this.stream.resume()
  }
}

export const NATIVE_OPTIONS: NativeOptions = {
  maxFrameBytes: 1024 * 1024,
  heartbeatMs: 30_000,
  highWaterMark: 1024 * 1024,
  loginTimeoutMs: 30_000,
  serverName: 'memory',
}

/** A NativeConnection of `broker` and the NativeClient at the other end of its in-memory stream. */
export function nativeOverMemory(
  t: TestContext,
  broker: Broker,
  opts: Partial<NativeOptions> = {},
): { conn: NativeConnection; client: NativeClient } {
  const [serverEnd, clientEnd] = duplexPair()
  const conn = new NativeConnection(broker, new MemoryTransport(serverEnd), { ...NATIVE_OPTIONS, ...opts }, 'memory')
  serverEnd.on('data', (chunk: Buffer) => conn.feed(chunk))
  serverEnd.on('drain', () => conn.drained())
  serverEnd.on('close', () => conn.closedByPeer())
  serverEnd.on('error', () => serverEnd.destroy())
  const client = NativeClient.over(clientEnd as unknown as net.Socket, t)
  return { conn, client }
}

/**
 * The Broker's clock for a test: `now` for the Broker, and `advance(ms)` moves it and node:test's mocked
 * setTimeout/setInterval together (ack timers, the reaper), so nothing waits on the wall clock.
 */
export class TestClock {
  private at: number
  constructor(
    private readonly t: TestContext,
    start = 1_700_000_000_000,
  ) {
    this.at = start
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] })
  }

  readonly now = (): number => this.at

  advance(ms: number): void {
    this.at += ms
    this.t.mock.timers.tick(ms)
  }
}
