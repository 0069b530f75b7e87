/**
 * End-to-end cluster fixture: real `switchboard serve` child processes on the shared PostgreSQL and a Redis
 * (the machine's, or a private `redis-server` a test may kill and restart), and a small raw native client.
 *
 * Each ProcCluster has its own --cluster-name (the PostgreSQL schema and the Redis key prefix); close() stops
 * the nodes, drops the schema and deletes the keys. Nodes are killed with SIGKILL by kill(): no cleanup at all,
 * exactly a crash. Every wait is bounded.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import pg from 'pg'
import { Redis } from 'ioredis'
import { encode, FrameReader } from '../../src/protocols/native/codec.js'
import { PROTOCOL_VERSION, type Frame, type FrameOf } from '../../src/protocols/native/frames.js'
import type { ClusterNode } from './cluster-fixture.js'
import { PG_URL, REDIS_URL } from './cluster-fixture.js'
import { spawnServer } from '../../scripts/spawn-server.js'
import { until as waitUntil } from '../helpers/wait.js'

export { PG_URL, REDIS_URL, clusterServicesUnavailable } from './cluster-fixture.js'

const START_TIMEOUT_MS = 30_000

/** The shared until() (test/helpers/wait.ts) with the longer default a cluster of processes needs. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await waitUntil(what, cond, timeoutMs, 20)
}

/** A free TCP port on 127.0.0.1 (bound and released; good enough for a test's private service). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const a = s.address()
      const port = typeof a === 'object' && a !== null ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms)
    c.once('exit', () => {
      clearTimeout(t)
      resolve(true)
    })
  })
}

/** Keeps the last bytes a child wrote, for failure messages; reading also keeps the pipe from filling up. */
class Tail {
  text = ''
  add(d: Buffer): void {
    this.text = (this.text + d.toString()).slice(-8000)
  }
}

// ------------------------------------------------------------------------------------------------ nodes

export class ProcNode implements ClusterNode {
  port = 0
  private child: ChildProcess | undefined
  readonly out = new Tail()
  readonly err = new Tail()

  constructor(
    readonly nodeId: string,
    private readonly args: string[],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid
  }

  get alive(): boolean {
    const c = this.child
    return c !== undefined && c.exitCode === null && c.signalCode === null
  }

  /** Spawn and resolve with the native port once the node prints its listening line. */
  async start(): Promise<number> {
    const started = await spawnServer(this.args, {
      label: this.nodeId,
      timeoutMs: START_TIMEOUT_MS,
      onStdout: (d) => this.out.add(d),
      onStderr: (d) => this.err.add(d),
    })
    this.child = started.child
    this.port = started.port
    return this.port
  }

  /** kill -9: the process dies with no cleanup (its presence stays in Redis until a survivor reaps it). */
  async kill(): Promise<void> {
    const c = this.child
    if (c === undefined || !this.alive) return
    c.kill('SIGKILL')
    await waitExit(c, 5000)
  }

  /** Graceful: SIGTERM (sessions told, store flushed, registry cleaned), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    const c = this.child
    if (c === undefined || !this.alive) return
    c.kill('SIGTERM')
    if (!(await waitExit(c, 8000))) {
      c.kill('SIGKILL')
      await waitExit(c, 3000)
    }
  }
}

let clusters = 0

export interface ProcClusterOptions {
  nodes?: number
  /** redis:// URL of the bus; default the machine's Redis. */
  redisUrl?: string
  /** Extra `serve` flags for every node. */
  extra?: string[]
  /** postgres:// URL the nodes use (default PG_URL); the schema is dropped through PG_URL either way. */
  pgUrl?: string
}

export class ProcCluster {
  /** The PostgreSQL schema and the Redis key prefix: a valid identifier, unique per run. */
  readonly name: string
  readonly nodes: ProcNode[] = []
  readonly redisUrl: string

  constructor(private readonly opts: ProcClusterOptions = {}) {
    this.name = `sb_e2e_${process.pid}_${Date.now().toString(36)}_${++clusters}`
    this.redisUrl = opts.redisUrl ?? REDIS_URL
    const n = opts.nodes ?? 3
    for (let i = 0; i < n; i++) {
      const nodeId = `n${i}`
      this.nodes.push(
        new ProcNode(nodeId, [
          '--store',
          opts.pgUrl ?? PG_URL,
          '--bus',
          this.redisUrl,
          '--cluster-name',
          this.name,
          '--node-id',
          nodeId,
          '--host',
          '127.0.0.1',
          '--port',
          '0',
          '--http-port',
          '-1',
          '--log-level',
          'warn',
          '--log-format',
          'json',
          ...(opts.extra ?? []),
        ]),
      )
    }
  }

  /** Start every node at once: they race on the schema migration, as real nodes would. */
  async start(): Promise<this> {
    await Promise.all(this.nodes.map((n) => n.start()))
    return this
  }

  node(i: number): ProcNode {
    const n = this.nodes[i]
    if (n === undefined) throw new Error(`no node ${i}`)
    return n
  }

  /** Stop the nodes, drop the schema, delete the keys. Never throws (it runs in after hooks). */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})))
    await dropSchema(this.name).catch(() => {})
    await deleteKeys(this.redisUrl, this.name).catch(() => {})
  }
}

export async function withPg<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL })
  await c.connect()
  try {
    return await fn(c)
  } finally {
    await c.end()
  }
}

export function dropSchema(schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`bad schema ${schema}`)
  return withPg(async (c) => {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  })
}

/** A short-lived Redis connection that gives up instead of retrying forever (for checks and cleanup). */
export async function withRedis<T>(url: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: 2000, lazyConnect: true })
  r.on('error', () => {})
  try {
    await r.connect()
    return await fn(r)
  } finally {
    r.disconnect()
  }
}

/**
 * The nodes the presence registry (redis-bus.ts: a field per user:device) names for `user`'s devices, sorted,
 * from a HGETALL of `{prefix}:presence`.
 */
export function registryNodes(presence: Record<string, string>, user: number): string[] {
  const nodes: string[] = []
  for (const [field, text] of Object.entries(presence))
    if (field.startsWith(`${user}:`)) nodes.push((JSON.parse(text) as { node: string }).node)
  return nodes.sort()
}

/** Is `user` online in the registry (some device, on some node)? */
export function registryOnline(url: string, prefix: string, user: number): Promise<boolean> {
  return withRedis(url, async (r) => (await r.hexists(`${prefix}:online`, String(user))) === 1)
}

export function deleteKeys(url: string, prefix: string): Promise<void> {
  return withRedis(url, async (r) => {
    let cursor = '0'
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000)
      if (keys.length > 0) await r.del(...keys)
      cursor = next
      if (cursor === '0') break
    }
  })
}

// ------------------------------------------------------------------------------------------------ private Redis

/** Why a private redis-server cannot be started, or undefined. Under CI=true, throws instead. */
export function redisServerMissing(): string | undefined {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
  if (r.status === 0) return undefined
  const reason = 'redis-server is not on PATH (Debian package redis-server)'
  if (process.env.CI === 'true') throw new Error(`${reason}; CI=true requires it`)
  return reason
}

/** A redis-server of the test's own on a free port, without persistence: killing it loses everything in it. */
export class PrivateRedis {
  private child: ChildProcess | undefined
  private readonly dir = mkdtempSync(os.tmpdir() + '/sb-redis-')
  readonly out = new Tail()
  port = 0

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort()
    const c = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.child = c
    c.stdout!.on('data', (d: Buffer) => this.out.add(d))
    c.stderr!.on('data', (d: Buffer) => this.out.add(d))
    c.on('error', () => {})
    // Ready when it answers PING.
    await until(
      `redis-server on ${this.port}`,
      async () => {
        if (c.exitCode !== null) throw new Error(`redis-server exited: ${this.out.text}`)
        return withRedis(this.url, async (r) => (await r.ping()) === 'PONG').catch(() => false)
      },
      10_000,
    )
  }

  async kill(): Promise<void> {
    const c = this.child
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return
    c.kill('SIGKILL')
    await waitExit(c, 5000)
  }

  async close(): Promise<void> {
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

// ------------------------------------------------------------------------------------------------ raw client

/** A frame to send: its corr is assigned by the client. */
export type Out = Frame extends infer F ? (F extends Frame ? Omit<F, 'corr'> : never) : never

/**
 * A raw native-protocol connection: requests are matched to answers by corr; every frame with corr 0 (DELIVER,
 * RECEIPT, PRESENCE, CLOSING…) goes to `onPush`. It never ACKs or pings by itself.
 */
export class Wire {
  onPush: (f: Frame) => void = () => {}
  private readonly reader = new FrameReader(16 * 1024 * 1024)
  private corr = 0
  private readonly pending = new Map<number, { resolve: (f: Frame) => void; reject: (e: Error) => void }>()
  readonly closed: Promise<void>
  isClosed = false
  decodeErrors = 0

  private constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true)
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.isClosed = true
        const err = new Error('connection closed')
        for (const p of this.pending.values()) p.reject(err)
        this.pending.clear()
        resolve()
      })
    })
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      for (const d of this.reader.push(chunk)) {
        if (!d.ok) {
          this.decodeErrors++
          socket.destroy()
          return
        }
        const f = d.frame
        const p = f.corr === 0 ? undefined : this.pending.get(f.corr)
        if (p !== undefined) {
          this.pending.delete(f.corr)
          p.resolve(f)
        } else this.onPush(f)
      }
    })
  }

  static connect(port: number): Promise<Wire> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => {
        s.off('error', reject)
        resolve(new Wire(s))
      })
      s.once('error', reject)
    })
  }

  /** Send without waiting for an answer (ACK has none). */
  post(frame: Out): void {
    if (this.isClosed) return
    this.socket.write(encode({ ...frame, corr: ++this.corr } as Frame))
  }

  /** Send and resolve with the frame that answers it (any type, ERROR included); rejects if the connection closes. */
  request(frame: Out, timeoutMs = 15_000): Promise<Frame> {
    if (this.isClosed) return Promise.reject(new Error('connection closed'))
    const corr = ++this.corr
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.pending.delete(corr)
        reject(new Error(`no answer to ${frame.type} within ${timeoutMs} ms`))
      }, timeoutMs)
      t.unref()
      this.pending.set(corr, {
        resolve: (f) => {
          clearTimeout(t)
          resolve(f)
        },
        reject: (e) => {
          clearTimeout(t)
          reject(e)
        },
      })
      this.socket.write(encode({ ...frame, corr } as Frame))
    })
  }

  async register(name: string): Promise<FrameOf<'WELCOME'>> {
    const f = await this.request({ type: 'REGISTER', version: PROTOCOL_VERSION, flags: 0, name })
    if (f.type !== 'WELCOME') throw new Error(`REGISTER ${name}: ${describeFrame(f)}`)
    return f
  }

  async login(id: number, token: string): Promise<FrameOf<'WELCOME'>> {
    const f = await this.request({ type: 'LOGIN', version: PROTOCOL_VERSION, flags: 0, id, name: '', token })
    if (f.type !== 'WELCOME') throw new Error(`LOGIN #${id}: ${describeFrame(f)}`)
    return f
  }

  /** SEND text to a user id; resolves with ACCEPTED or ERROR. */
  sendTo(id: number, body: string, msgId: number, flags = 0): Promise<Frame> {
    return this.request({
      type: 'SEND',
      msgId,
      to: { kind: 'user', id },
      kind: 0,
      flags,
      ttlMs: 0,
      notBefore: 0,
      body: Buffer.from(body),
    })
  }

  ack(seq: number): void {
    this.post({ type: 'ACK', seq })
  }

  destroy(): void {
    this.socket.destroy()
  }
}

export function describeFrame(f: Frame): string {
  return f.type === 'ERROR' ? `ERROR ${f.code} ${f.message}` : f.type === 'CLOSING' ? `CLOSING ${f.reason}` : f.type
}

// ------------------------------------------------------------------------------------------------ a cuttable link

/**
 * A TCP relay to a service (PostgreSQL) that a test can cut — every connection dropped, new ones refused, as
 * when the server is down — and restore on the same port. The shared server itself is never touched.
 */
export class TcpRelay {
  port = 0
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('error', () => {})
        s.on('close', () => {
          this.sockets.delete(s)
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      upstream.pipe(client)
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => {
        const a = server.address()
        this.port = typeof a === 'object' && a !== null ? a.port : 0
        resolve()
      })
    })
  }

  /** The service is "down": connections reset, new ones refused. */
  async cut(): Promise<void> {
    const s = this.server
    this.server = undefined
    for (const x of this.sockets) x.destroy()
    this.sockets.clear()
    if (s !== undefined) await new Promise<void>((r) => s.close(() => r()))
  }
}
