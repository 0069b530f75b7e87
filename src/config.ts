/**
 * Configuration: every option has a default, an environment variable SWITCHBOARD_<NAME> and a flag
 * --<name>; an optional JSON config file (--config) sits below both. Precedence: flag > env > file > default.
 * The server's own options are listed here; each gateway declares its own (src/protocols/<name>/plugin.ts,
 * listed in src/protocols/registry.ts), and the store and bus backends give the forms --store and --bus take.
 * `switchboard serve --help` prints them all, one section per plugin.
 */
import { readFileSync } from 'node:fs'
import { DEFAULT_LIMITS } from './core/types.js'
import type { OptionSpec, OptionValues } from './plugin.js'
import { GATEWAYS } from './protocols/registry.js'
import { STORES } from './store/registry.js'
import { BUSES } from './bus/registry.js'

export type { OptionSpec } from './plugin.js'

/** The server's own options: host, store, bus, logging, timeouts, limits. */
export const CORE_OPTIONS = [
  { name: 'host', kind: 'string', default: '127.0.0.1', help: 'address every listener binds (0.0.0.0 to expose)' },
  { name: 'data-dir', kind: 'string', default: './data', help: 'where the SQLite file and the files folder live' },
  {
    name: 'files-dir',
    kind: 'string',
    default: undefined,
    help: 'where uploaded files live (default: <data-dir>/files; in a cluster, a folder every node shares)',
  },
  { name: 'store', kind: 'string', default: 'sqlite', help: STORES.map((b) => b.usage).join(', or ') },
  { name: 'bus', kind: 'string', default: 'local', help: BUSES.map((b) => b.usage).join(', or ') },
  { name: 'node-id', kind: 'string', default: undefined, help: "this node's name in a cluster (default: host:port:pid)" },
  {
    name: 'cluster-name',
    kind: 'string',
    default: 'switchboard',
    help: 'cluster mode: the PostgreSQL schema and the Redis key prefix',
  },
  { name: 'log-level', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error, fatal or silent' },
  { name: 'log-format', kind: 'string', default: 'auto', help: "'json', 'pretty', or 'auto' (pretty on a terminal)" },
  { name: 'ack-timeout', kind: 'int', default: 3000, help: 'ms until an unacknowledged message gives its sender a 300' },
  { name: 'idle-timeout', kind: 'int', default: 120_000, help: 'ms of silence after which the reaper ends a session' },
  { name: 'login-timeout', kind: 'int', default: 30_000, help: 'ms a new connection has to log in before it is closed' },
  { name: 'heartbeat', kind: 'int', default: 30_000, help: 'ms between the heartbeats clients are asked to send' },
  { name: 'conversation-timeout', kind: 'int', default: 60_000, help: 'ms a conversation request waits for an answer' },
  {
    name: 'legacy-identity-ttl',
    kind: 'int',
    default: 7 * 24 * 3600_000,
    help: 'ms a tokenless name (legacy gateway) lives without a login; then it goes with its queue and can be registered',
  },
  {
    name: 'retention',
    kind: 'duration',
    default: 30 * 24 * 3600_000,
    help: 'how long the log keeps a message some device acknowledged (history), e.g. 30d; unacknowledged ones stay until read or expired',
  },
  {
    name: 'retention-messages',
    kind: 'int',
    default: 100_000,
    help: 'acknowledged messages kept per user at most (the oldest go first)',
  },
  {
    name: 'room-history',
    kind: 'int',
    default: 0,
    help: "the room's last N messages shown to each session when it starts (0: the room is live only, as seed 002)",
  },
  {
    name: 'shutdown-timeout',
    kind: 'int',
    default: 10_000,
    help: 'ms each shutdown step may take (flush the store, close a listener) before it is abandoned',
  },
  { name: 'max-name-bytes', kind: 'int', default: DEFAULT_LIMITS.maxNameBytes, help: 'longest user name, UTF-8 bytes' },
  { name: 'max-topic-bytes', kind: 'int', default: DEFAULT_LIMITS.maxTopicBytes, help: 'longest topic name, UTF-8 bytes' },
  { name: 'max-text-bytes', kind: 'int', default: DEFAULT_LIMITS.maxTextBytes, help: 'largest text message, bytes' },
  { name: 'max-frame-bytes', kind: 'int', default: DEFAULT_LIMITS.maxFrameBytes, help: 'largest native frame, bytes' },
  { name: 'max-file-bytes', kind: 'int', default: DEFAULT_LIMITS.maxFileBytes, help: 'largest file, bytes' },
  { name: 'max-queue-length', kind: 'int', default: DEFAULT_LIMITS.maxQueueLength, help: 'messages waiting per user, at most' },
  { name: 'max-queue-bytes', kind: 'int', default: DEFAULT_LIMITS.maxQueueBytes, help: 'bytes waiting per user, at most' },
  { name: 'max-connections', kind: 'int', default: DEFAULT_LIMITS.maxConnections, help: 'sessions at once, at most' },
  {
    name: 'rate',
    kind: 'int',
    default: DEFAULT_LIMITS.ratePerSecond,
    help: 'requests per second per session (bursts of twice that)',
  },
  {
    name: 'max-session-buffer',
    kind: 'int',
    default: DEFAULT_LIMITS.maxSessionBuffer,
    help: 'bytes waiting for a slow reader before it is cut off',
  },
  {
    name: 'max-inflight',
    kind: 'int',
    default: DEFAULT_LIMITS.maxInflight,
    help: 'pushed and unacknowledged messages per session',
  },
  {
    name: 'max-pre-login-frame-bytes',
    kind: 'int',
    default: 4096,
    help: 'largest native frame (TCP or WebSocket) before REGISTER/LOGIN succeeded, bytes',
  },
  {
    name: 'max-pre-auth-body-bytes',
    kind: 'int',
    default: 4096,
    help: 'largest HTTP request body without a valid bearer token, bytes',
  },
  {
    name: 'max-connections-per-address',
    kind: 'int',
    default: 512,
    help: 'connections from one remote address, every listener together',
  },
  {
    name: 'max-unauthenticated-per-address',
    kind: 'int',
    default: 64,
    help: 'connections from one remote address that have not logged in yet',
  },
  {
    name: 'auth-rate',
    kind: 'int',
    default: 20,
    help: 'logins and registrations per second per remote address, every listener (bursts of twice that)',
  },
  {
    name: 'fd-reserve',
    kind: 'int',
    default: 256,
    help: 'file descriptors kept free: new legacy gateway connections are refused first (at most a quarter of the limit)',
  },
  {
    name: 'legacy',
    kind: 'bool',
    default: false,
    help: `enable every legacy gateway on its original port (${GATEWAYS.flatMap((g) =>
      g.legacy === undefined ? [] : [`${g.name} ${Object.values(g.legacy).join('/')}`],
    ).join(', ')})`,
  },
  {
    name: 'config',
    kind: 'string',
    default: undefined,
    help: 'JSON file of options (keys as the flags, camelCase or kebab-case)',
  },
] as const satisfies readonly OptionSpec[]

/** The options by --help section: the server's, then each gateway's in registry order. */
export const OPTION_GROUPS: readonly { title: string; options: readonly OptionSpec[] }[] = [
  { title: 'Server', options: CORE_OPTIONS },
  ...GATEWAYS.map((g) => ({ title: g.title, options: g.options })),
]

/** Every option: the server's and every gateway's. */
export const OPTIONS: readonly OptionSpec[] = OPTION_GROUPS.flatMap((g) => g.options)

for (const [i, o] of OPTIONS.entries())
  if (OPTIONS.findIndex((x) => x.name === o.name) !== i) throw new Error(`two plugins declare the option --${o.name}`)

/** The server's own options, resolved. */
export type CoreConfig = OptionValues<typeof CORE_OPTIONS>

type GatewayOptionSpec = (typeof GATEWAYS)[number]['options'][number]

/** Every option, resolved: what startServer() takes. */
export type Config = CoreConfig & OptionValues<readonly GatewayOptionSpec[]>

export function envName(option: string): string {
  return 'SWITCHBOARD_' + option.toUpperCase().replace(/-/g, '_')
}

function camel(s: string): string {
  return s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 24 * 3600_000 }

function parse(spec: OptionSpec, raw: unknown, source: string): string | number | boolean {
  if (spec.kind === 'bool') {
    if (typeof raw === 'boolean') return raw
    const s = String(raw).toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(s)) return true
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false
    throw new Error(`${source}: ${spec.name} must be true or false, not "${String(raw)}"`)
  }
  if (spec.kind === 'duration') {
    const m = typeof raw === 'number' ? undefined : /^\s*(\d[\d_]*)\s*(ms|s|m|h|d)?\s*$/.exec(String(raw))
    const n =
      typeof raw === 'number'
        ? raw
        : m === null || m === undefined
          ? NaN
          : Number(m[1]!.replace(/_/g, '')) * UNIT_MS[m[2] ?? 'ms']!
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`${source}: ${spec.name} must be a duration (ms, or with a unit: 90s, 15m, 12h, 30d), not "${String(raw)}"`)
    return n
  }
  if (spec.kind === 'int') {
    const n = typeof raw === 'number' ? raw : Number(String(raw).replace(/_/g, ''))
    if (!Number.isSafeInteger(n)) throw new Error(`${source}: ${spec.name} must be a whole number, not "${String(raw)}"`)
    return n
  }
  return String(raw)
}

/**
 * Resolve the configuration. `flags` holds what the command line gave (camelCase keys, undefined when
 * not given); `env` is process.env.
 */
export function resolveConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Config {
  const file: Record<string, unknown> = {}
  const configPath = (flags.config as string | undefined) ?? env[envName('config')]
  if (configPath !== undefined) {
    const json = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>
    for (const [k, v] of Object.entries(json)) file[camel(k)] = v
  }
  const out: Record<string, unknown> = {}
  for (const spec of OPTIONS) {
    const key = camel(spec.name)
    const flag = flags[key]
    const fromEnv = env[envName(spec.name)]
    if (flag !== undefined) out[spec.name] = parse(spec, flag, `--${spec.name}`)
    else if (fromEnv !== undefined) out[spec.name] = parse(spec, fromEnv, envName(spec.name))
    else if (file[key] !== undefined) out[spec.name] = parse(spec, file[key], configPath ?? 'config file')
    else out[spec.name] = spec.default
  }
  if (out.legacy === true)
    for (const g of GATEWAYS) for (const [name, value] of Object.entries(g.legacy ?? {})) out[name] ??= value
  return out as Config
}
