/**
 * The plugin contracts: what a gateway, a store backend and a bus backend declare so that src/server.ts can
 * start them by looping over a registry (src/protocols/registry.ts, src/store/registry.ts,
 * src/bus/registry.ts) and src/config.ts can build the options, the environment variables and `--help` from
 * them. Like a fastify plugin, each declares a name and its options next to its code; unlike one, it is
 * started once, by the server, and hands back one uniform handle.
 *
 * A plugin module is cheap to import: it loads its implementation, and any native package that needs, with a
 * dynamic import inside start()/open(), so a server that does not use it never loads it (`importPeer`).
 */
import type { Broker } from './core/broker.js'
import type { FileService } from './core/files.js'
import type { Logger } from './core/types.js'
import type { Bus } from './bus/bus.js'
import type { FileMeta } from './store/file-meta.js'
import type { Store } from './store/store.js'
import type { ListenerGuard } from './protocols/guard.js'

/** 'duration': milliseconds, given as a number of ms or with a unit (`500ms`, `90s`, `15m`, `12h`, `30d`). */
export type OptionKind = 'string' | 'int' | 'bool' | 'duration'

/** One option: the flag `--<name>`, the environment variable SWITCHBOARD_<NAME>, a key of the config file. */
export interface OptionSpec {
  name: string
  kind: OptionKind
  default: string | number | boolean | undefined
  help: string
}

type Value<K extends OptionKind> = K extends 'int' | 'duration' ? number : K extends 'bool' ? boolean : string

/** The resolved values of a list of options, keyed by name: optional where the option has no default. */
export type OptionValues<O extends readonly OptionSpec[]> = {
  [S in O[number] as S['name']]: S['default'] extends undefined ? Value<S['kind']> | undefined : Value<S['kind']>
}

/** Where a gateway listens, as printed at start ("p002 listening on 127.0.0.1:9000"). */
export interface Listener {
  /** 'native', 'native+tls', 'http', 'p001', 'p003-pub', … */
  name: string
  /** host:port, or a URL. */
  address: string
  port: number
}

/** What every gateway's start() returns, whatever its transport. */
export interface GatewayHandle {
  /** One entry per port it listens on. */
  listeners: Listener[]
  /** Connections (or, for ZeroMQ, registered names) open now. */
  connections(): number
  /** Stop accepting and end its connections; resolves when its ports are closed. Idempotent. */
  close(): Promise<void>
}

/** The handle of a gateway on one TCP port, from its listener. */
export function tcpGatewayHandle(
  name: string,
  host: string,
  l: { port: number; connections(): number; close(): Promise<void> },
): GatewayHandle {
  return {
    listeners: [{ name, address: `${host}:${l.port}`, port: l.port }],
    connections: () => l.connections(),
    close: () => l.close(),
  }
}

/** The server-wide values every gateway may read (the core options, resolved). */
export interface GatewayShared {
  host: string
  heartbeatMs: number
  loginTimeoutMs: number
  version: string
  /** Per-address connection caps, the login rate and the descriptor reserve, one for every listener. */
  guard: ListenerGuard
  /** Largest native frame before login (TCP and WebSocket). */
  maxPreLoginFrameBytes: number
  /** Largest HTTP request body without a valid bearer token. */
  maxPreAuthBodyBytes: number
}

export interface GatewayContext<O extends readonly OptionSpec[]> {
  /** This gateway's own options, resolved (flag > env > file > default, and --legacy). */
  options: OptionValues<O>
  shared: GatewayShared
  broker: Broker
  /** The file service, or undefined when the store has no file metadata. */
  files: FileService | undefined
  logger: Logger
  /** Connections open now per gateway of this server, the ones started after this one included (for dashboards). */
  gatewayConnections?: () => Record<string, number>
}

export interface GatewayPlugin<O extends readonly OptionSpec[] = readonly OptionSpec[]> {
  /** Short name: 'native', 'http', 'p001', …; the listeners it returns are named after it. */
  name: string
  /** Heading of its options in `switchboard serve --help`. */
  title: string
  options: O
  /** Values `--legacy` gives its options when they are not set otherwise. */
  legacy?: Partial<OptionValues<O>>
  /** Whether to start it with these options (most gateways are off unless their port is set). */
  enabled(options: OptionValues<O>): boolean
  start(ctx: GatewayContext<O>): Promise<GatewayHandle>
}

/** Identity, for the type: `defineGateway({ name, options: [...], start })` keeps the options' literal types. */
export function defineGateway<const O extends readonly OptionSpec[]>(plugin: GatewayPlugin<O>): GatewayPlugin<O> {
  return plugin
}

export interface StoreOpenOptions {
  /** --data-dir: where embedded stores keep their file. */
  dataDir: string
  /** --cluster-name: the schema of a shared store. */
  clusterName: string
  logger: Logger
}

/** A store chosen by the scheme of --store: `sqlite`, `sqlite:<file>`, `postgres://…`. */
export interface StoreBackend {
  /** URL schemes it answers to (the part before ':'; a bare word counts as a scheme). */
  schemes: readonly string[]
  /** How to write it, for --help and errors: "sqlite or sqlite:<file> (embedded)". */
  usage: string
  open(url: string, opts: StoreOpenOptions): Promise<Store>
  /** File metadata next to the store; without it file transfer is off. `store` is what open() returned. */
  fileMeta?(store: Store, url: string, opts: StoreOpenOptions): Promise<FileMeta>
}

export interface BusOpenOptions {
  nodeId: string
  /** --cluster-name: the key prefix on a shared bus. */
  clusterName: string
  logger: Logger
}

/** A bus chosen by the scheme of --bus: `local`, `redis://…`. */
export interface BusBackend {
  schemes: readonly string[]
  usage: string
  open(url: string, opts: BusOpenOptions): Promise<Bus>
}

/** The scheme of a --store/--bus value: `postgres` for `postgres://h/db`, `sqlite` for `sqlite` or `sqlite:x.db`. */
export function schemeOf(url: string): string {
  const i = url.indexOf(':')
  return (i < 0 ? url : url.slice(0, i)).toLowerCase()
}

/** The backend whose scheme `url` has, or an error naming the option and listing what it accepts. */
export function pickBackend<B extends { schemes: readonly string[]; usage: string }>(
  option: string,
  backends: readonly B[],
  url: string,
): B {
  const scheme = schemeOf(url)
  const b = backends.find((x) => x.schemes.includes(scheme))
  if (b === undefined) throw new Error(`--${option} must be ${backends.map((x) => x.usage).join(', or ')}; not "${url}"`)
  return b
}

/**
 * Load a plugin's implementation, which needs the npm package `pkg`. When that package is not installed the
 * error says who needs it and how to get it, instead of a module path deep inside the plugin.
 * @example const { startP003 } = await importPeer('zeromq', 'the seed 003 gateway', () => import('./server.js'))
 */
export async function importPeer<T>(pkg: string, who: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const missing =
      (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') &&
      (e.message.includes(`'${pkg}'`) || e.message.includes(`'${pkg}/`))
    if (missing)
      throw new Error(`${who} needs the npm package ${pkg}, which is not installed (npm install ${pkg})`, { cause: err })
    throw err
  }
}
