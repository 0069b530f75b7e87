/**
 * Wiring: a Broker over the configured store and bus, and every enabled gateway. The store, the bus and the
 * gateways are plugins (src/plugin.ts) found in their registries (src/store/registry.ts, src/bus/registry.ts,
 * src/protocols/registry.ts): this module names none of them. The only module besides bin/ that opens
 * ports. Tests call startServer() with port 0 and read the addresses back.
 */
import { join, resolve } from 'node:path'
import { Broker } from './core/broker.js'
import { serverCommands } from './services/server-commands.js'
import type { Logger } from './core/types.js'
import type { Config } from './config.js'
import { FileService } from './core/files.js'
import type { Store } from './store/store.js'
import { pickBackend } from './plugin.js'
import type {
  GatewayHandle,
  GatewayPlugin,
  Listener,
  OptionSpec,
  OptionValues,
  StoreBackend,
  StoreOpenOptions,
} from './plugin.js'
import { GATEWAYS } from './protocols/registry.js'
import { ListenerGuard } from './protocols/guard.js'
import { STORES } from './store/registry.js'
import { BUSES } from './bus/registry.js'
import { FsBlobStore } from './store/blob/fs-blob-store.js'
import { runSteps, ShutdownIncomplete } from './shutdown.js'

export type { Listener } from './plugin.js'

export const VERSION = '0.1.0'
export { ShutdownIncomplete, type ShutdownReport, type StepOutcome } from './shutdown.js'

export interface RunningGateway {
  /** The plugin's name ('native', 'http', 'p003', …). */
  name: string
  handle: GatewayHandle
}

export interface RunningServer {
  broker: Broker
  /** Per-address caps, login rate and descriptor reserve of every listener (its refusal counts). */
  guard: ListenerGuard
  /** File transfer; undefined where the configured store has no file metadata. */
  files: FileService | undefined
  /** The gateways started, in registry order. */
  gateways: RunningGateway[]
  /** Every port listened on, in the gateways' order (a gateway may have several: p003-pub, p003-rep). */
  listeners: Listener[]
  /** Port of a listener by name ('native', 'http', 'p001', …). */
  port(name: string): number
  /** Connections open now, per gateway. */
  connections(): Record<string, number>
  close(): Promise<void>
}

/** A gateway's own options, picked out of the whole configuration. */
function optionsOf(c: Config, specs: readonly OptionSpec[]): OptionValues<readonly OptionSpec[]> {
  const all = c as unknown as OptionValues<readonly OptionSpec[]>
  return Object.fromEntries(specs.map((o) => [o.name, all[o.name]])) as OptionValues<readonly OptionSpec[]>
}

async function startFiles(
  backend: StoreBackend,
  store: Store,
  c: Config,
  storeOpts: StoreOpenOptions,
  broker: Broker,
  log: Logger,
): Promise<FileService | undefined> {
  if (backend.fileMeta === undefined) return undefined
  const files = new FileService({
    // An embedded SQLite store means one process owns the data directory; any other store means a cluster
    // whose nodes share --files-dir, and no node may take another's upload in progress for a dead one.
    blobs: new FsBlobStore({
      dir: resolve(c['files-dir'] ?? join(c['data-dir'], 'files')),
      shared: !backend.schemes.includes('sqlite'),
    }),
    meta: await backend.fileMeta(store, c.store, storeOpts),
    broker,
    logger: log,
  })
  await files.start()
  const gc = setInterval(() => void files.gc().catch((err: unknown) => log.error({ err }, 'file gc failed')), 10 * 60_000)
  gc.unref()
  return files
}

export async function startServer(c: Config, log: Logger): Promise<RunningServer> {
  // Both checked before either is opened: a mistyped --bus does not leave a store half open.
  const storeBackend = pickBackend('store', STORES, c.store)
  const busBackend = pickBackend('bus', BUSES, c.bus)
  const storeOpts: StoreOpenOptions = { dataDir: c['data-dir'], clusterName: c['cluster-name'], logger: log }
  const store = await storeBackend.open(c.store, storeOpts)
  const bus = await busBackend.open(c.bus, {
    nodeId: c['node-id'] ?? `${c.host}:${c.port}:${process.pid}`,
    clusterName: c['cluster-name'],
    logger: log,
  })
  const broker = new Broker({
    store,
    bus,
    serverRequests: serverCommands,
    logger: log,
    ackTimeoutMs: c['ack-timeout'],
    idleTimeoutMs: c['idle-timeout'],
    conversationTimeoutMs: c['conversation-timeout'],
    legacyIdentityTtlMs: c['legacy-identity-ttl'],
    retentionMs: c.retention,
    retentionMessages: c['retention-messages'],
    roomHistory: c['room-history'],
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
  const gateways: RunningGateway[] = []
  const files = await startFiles(storeBackend, store, c, storeOpts, broker, log)
  const guard = new ListenerGuard(
    {
      maxConnectionsPerAddress: c['max-connections-per-address'],
      maxUnauthenticatedPerAddress: c['max-unauthenticated-per-address'],
      authRatePerSecond: c['auth-rate'],
      fdReserve: c['fd-reserve'],
    },
    log,
  )
  const shared = {
    host: c.host,
    heartbeatMs: c.heartbeat,
    loginTimeoutMs: c['login-timeout'],
    version: VERSION,
    guard,
    maxPreLoginFrameBytes: c['max-pre-login-frame-bytes'],
    maxPreAuthBodyBytes: c['max-pre-auth-body-bytes'],
  }
  try {
    for (const g of GATEWAYS as readonly GatewayPlugin[]) {
      const options = optionsOf(c, g.options)
      if (!g.enabled(options)) continue
      const gatewayConnections = (): Record<string, number> =>
        Object.fromEntries(gateways.map((x) => [x.name, x.handle.connections()]))
      gateways.push({
        name: g.name,
        handle: await g.start({ options, shared, broker, files, logger: log, gatewayConnections }),
      })
    }
  } catch (err) {
    await Promise.all(gateways.map((g) => g.handle.close()))
    await files?.close()
    await broker.close()
    throw err
  }
  const listeners = gateways.flatMap((g) => g.handle.listeners)

  let closing: Promise<void> | undefined
  return {
    broker,
    guard,
    files,
    gateways,
    listeners,
    port(name) {
      const l = listeners.find((x) => x.name === name || x.name.startsWith(name + '+'))
      if (l === undefined) throw new Error(`no listener named ${name}`)
      return l.port
    },
    connections() {
      return Object.fromEntries(gateways.map((g) => [g.name, g.handle.connections()]))
    },
    close() {
      closing ??= (async () => {
        // Stop accepting first, then end the sessions with a reason, then flush and close the store. Each
        // step is bounded (--shutdown-timeout): one that cannot finish is abandoned and named (src/shutdown.ts).
        const stopped = gateways.map((g) => ({ name: g.name, closed: g.handle.close() }))
        const report = await runSteps(
          [
            { name: 'close files', run: () => files?.close() },
            { name: 'close sessions and flush the store', run: () => broker.close() },
            ...stopped.map((g) => ({ name: `close the ${g.name} gateway (its connections to end)`, run: () => g.closed })),
          ],
          { timeoutMs: c['shutdown-timeout'] },
        )
        if (!report.ok) throw new ShutdownIncomplete(report)
      })()
      return closing
    },
  }
}
