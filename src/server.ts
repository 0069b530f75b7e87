/**
 * Wiring: a Broker over the configured store and bus, and every enabled listener. The only module besides
 * bin/ that opens ports. Tests call startServer() with port 0 and read the addresses back.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Server as NetServer } from 'node:net'
import { Broker } from './core/broker.js'
import type { Logger } from './core/types.js'
import type { Config } from './config.js'
import type { Store } from './store/store.js'
import type { Bus } from './bus/bus.js'
import { SqliteStore } from './store/sqlite/sqlite-store.js'
import { LocalBus } from './bus/local/local-bus.js'
import { listenNative } from './protocols/native/server.js'
import type { NativeOptions } from './protocols/native/adapter.js'
import { NativeFileHandler } from './protocols/native/file-handler.js'
import { FileService } from './core/files.js'
import { SqliteFileMeta } from './store/sqlite/sqlite-file-meta.js'
import type { FileMeta } from './store/file-meta.js'
import { startHttp } from './protocols/http/index.js'
import { startP001 } from './protocols/p001/server.js'
import { startP002 } from './protocols/p002/server.js'
import { startP003, parsePortRange } from './protocols/p003/server.js'
import { startP004 } from './protocols/p004/server.js'
import { fileURLToPath } from 'node:url'

const WEB_DIST = fileURLToPath(new URL('../web/dist', import.meta.url))

export const VERSION = '0.1.0'

// Loaded only in cluster mode, so a single node never loads pg or ioredis.
const POSTGRES_STORE = './store/postgres/postgres-store.js'
const REDIS_BUS = './bus/redis/redis-bus.js'
const POSTGRES_FILE_META = './store/postgres/postgres-file-meta.js'

export interface Listener {
  name: string
  /** host:port, or a URL, as printed at start. */
  address: string
  port: number
  close(): Promise<void>
}

export interface RunningServer {
  broker: Broker
  /** File transfer; undefined where no file metadata store is available for the configured store. */
  files: FileService | undefined
  listeners: Listener[]
  /** Port of a listener by name ('native', 'http', 'p001', …). */
  port(name: string): number
  close(): Promise<void>
}

async function makeStore(c: Config): Promise<Store> {
  if (c.store === 'sqlite') return new SqliteStore({ path: join(resolve(c['data-dir']), 'switchboard.db') })
  if (c.store.startsWith('postgres://') || c.store.startsWith('postgresql://')) {
    const mod = (await import(POSTGRES_STORE)) as {
      PostgresStore: new (o: { connectionString: string; schema: string }) => Store
    }
    return new mod.PostgresStore({ connectionString: c.store, schema: c['cluster-name'] })
  }
  throw new Error(`--store must be 'sqlite' or a postgres:// URL, not "${c.store}"`)
}

async function makeBus(c: Config, log: Logger): Promise<Bus> {
  if (c.bus === 'local') return new LocalBus()
  if (c.bus.startsWith('redis://')) {
    const mod = (await import(REDIS_BUS)) as {
      RedisBus: new (o: { url: string; nodeId: string; prefix: string; logger: Logger }) => Bus
    }
    return new mod.RedisBus({
      url: c.bus,
      nodeId: c['node-id'] ?? `${c.host}:${c.port}:${process.pid}`,
      prefix: c['cluster-name'],
      logger: log,
    })
  }
  throw new Error(`--bus must be 'local' or a redis:// URL, not "${c.bus}"`)
}

function netListener(name: string, server: NetServer, host: string): Listener {
  const addr = server.address()
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0
  return {
    name,
    address: `${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res())
      }),
  }
}

async function startFiles(c: Config, broker: Broker, log: Logger): Promise<FileService | undefined> {
  let meta: FileMeta
  if (c.store === 'sqlite') meta = new SqliteFileMeta({ path: join(resolve(c['data-dir']), 'switchboard.db') })
  else {
    const mod = (await import(POSTGRES_FILE_META)) as { PostgresFileMeta: new (store: Store) => FileMeta }
    meta = new mod.PostgresFileMeta(broker.store)
  }
  const files = new FileService({
    dir: resolve(c['files-dir'] ?? join(c['data-dir'], 'files')),
    meta,
    broker,
    logger: log,
  })
  await files.start()
  const gc = setInterval(() => void files.gc().catch((err: unknown) => log.error({ err }, 'file gc failed')), 10 * 60_000)
  gc.unref()
  return files
}

/** The legacy gateways that are enabled (each off unless its port is set; --legacy sets them all). */
async function startGateways(c: Config, broker: Broker, files: FileService | undefined, listeners: Listener[]): Promise<void> {
  const tcp = (name: string, l: { port: number; close(): Promise<void> }): void => {
    listeners.push({ name, address: `${c.host}:${l.port}`, port: l.port, close: () => l.close() })
  }
  if (c['p001-port'] !== undefined) tcp('p001', await startP001(broker, { host: c.host, port: c['p001-port'] }))
  if (c['p002-port'] !== undefined)
    tcp(
      'p002',
      await startP002(broker, {
        host: c.host,
        port: c['p002-port'],
        maxUsername: c['p002-max-username'],
        maxMessage: c['p002-max-message'],
      }),
    )
  if (c['p004-port'] !== undefined) tcp('p004', await startP004(broker, { host: c.host, port: c['p004-port'], files }))
  if (c['zmq-pub-port'] !== undefined || c['zmq-rep-port'] !== undefined) {
    const z = await startP003(broker, {
      host: c.host,
      pubPort: c['zmq-pub-port'] ?? 5556,
      repPort: c['zmq-rep-port'] ?? 5557,
      endpointPorts: parsePortRange(c['zmq-endpoint-ports']),
    })
    listeners.push({ name: 'p003-pub', address: `tcp://${c.host}:${z.pubPort}`, port: z.pubPort, close: async () => {} })
    listeners.push({ name: 'p003-rep', address: `tcp://${c.host}:${z.repPort}`, port: z.repPort, close: () => z.close() })
  }
}

export async function startServer(c: Config, log: Logger): Promise<RunningServer> {
  const store = await makeStore(c)
  const bus = await makeBus(c, log)
  const broker = new Broker({
    store,
    bus,
    logger: log,
    ackTimeoutMs: c['ack-timeout'],
    idleTimeoutMs: c['idle-timeout'],
    conversationTimeoutMs: c['conversation-timeout'],
    limits: {
      maxNameBytes: c['max-name-bytes'],
      maxTopicBytes: c['max-topic-bytes'],
      maxTextBytes: c['max-text-bytes'],
      maxFrameBytes: c['max-frame-bytes'],
      maxFileBytes: c['max-file-bytes'],
      maxQueueLength: c['max-queue-length'],
      maxQueueBytes: c['max-queue-bytes'],
      maxConnections: c['max-connections'],
      ratePerSecond: c.rate,
      maxSessionBuffer: c['max-session-buffer'],
      maxInflight: c['max-inflight'],
    },
  })
  await broker.start()
  const listeners: Listener[] = []
  const files = await startFiles(c, broker, log)
  const nativeOpts: NativeOptions = {
    maxFrameBytes: c['max-frame-bytes'],
    heartbeatMs: c.heartbeat,
    highWaterMark: 1024 * 1024,
    loginTimeoutMs: c['login-timeout'],
    serverName: `switchboard/${VERSION}`,
    files: files && new NativeFileHandler(files),
  }
  try {
    const tls =
      c['tls-key'] !== undefined && c['tls-cert'] !== undefined
        ? { key: readFileSync(c['tls-key']), cert: readFileSync(c['tls-cert']) }
        : undefined
    const native = await listenNative(broker, { ...nativeOpts, host: c.host, port: c.port, tls })
    listeners.push({
      name: tls ? 'native+tls' : 'native',
      address: `${c.host}:${native.port}`,
      port: native.port,
      close: native.close,
    })
    if (c['http-port'] >= 0) {
      const cors = c.cors === '' ? false : c.cors === '*' ? '*' : c.cors.split(',').map((o) => o.trim())
      const http = await startHttp(broker, {
        host: c.host,
        port: c['http-port'],
        cors,
        nativeOptions: nativeOpts,
        webRoot: c['web-root'] ?? WEB_DIST,
        files,
        version: VERSION,
      })
      listeners.push({
        name: 'http',
        address: `http://${c.host}:${http.address.port}`,
        port: http.address.port,
        close: () => http.close(),
      })
    }
    await startGateways(c, broker, files, listeners)
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()))
    await files?.close()
    await broker.close()
    throw err
  }

  let closing: Promise<void> | undefined
  return {
    broker,
    files,
    listeners,
    port(name) {
      const l = listeners.find((x) => x.name === name || x.name.startsWith(name + '+'))
      if (l === undefined) throw new Error(`no listener named ${name}`)
      return l.port
    },
    close() {
      closing ??= (async () => {
        // Stop accepting first, then end the sessions with a reason, then flush and close the store.
        const stopped = Promise.all(listeners.map((l) => l.close()))
        await files?.close()
        await broker.close()
        await stopped
      })()
      return closing
    },
  }
}
