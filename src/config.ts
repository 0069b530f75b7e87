/**
 * Configuration: every option has a default, an environment variable SWITCHBOARD_<NAME> and a flag
 * --<name>; an optional JSON config file (--config) sits below both. Precedence: flag > env > file > default.
 * `switchboard serve --help` prints this table.
 */
import { readFileSync } from 'node:fs'
import { DEFAULT_LIMITS } from './core/types.js'

type Kind = 'string' | 'int' | 'bool'

export interface OptionSpec {
  name: string
  kind: Kind
  default: string | number | boolean | undefined
  help: string
}

export const OPTIONS = [
  { name: 'host', kind: 'string', default: '127.0.0.1', help: 'address every listener binds (0.0.0.0 to expose)' },
  { name: 'port', kind: 'int', default: 7070, help: 'native protocol TCP port (0 = any free port)' },
  { name: 'http-port', kind: 'int', default: 7080, help: 'HTTP port: REST, SSE, WebSocket, web page, /metrics (-1 = off)' },
  {
    name: 'cors',
    kind: 'string',
    default: '',
    help: "HTTP: origins allowed to call the API from a browser ('*' or a comma-separated list; empty = none)",
  },
  {
    name: 'web-root',
    kind: 'string',
    default: undefined,
    help: 'HTTP: folder served at / (default: the built web page, web/dist)',
  },
  { name: 'data-dir', kind: 'string', default: './data', help: 'where the SQLite file and the files folder live' },
  {
    name: 'files-dir',
    kind: 'string',
    default: undefined,
    help: 'where uploaded files live (default: <data-dir>/files; in a cluster, a folder every node shares)',
  },
  { name: 'store', kind: 'string', default: 'sqlite', help: "'sqlite' (embedded, in data-dir) or a postgres:// URL (cluster)" },
  { name: 'bus', kind: 'string', default: 'local', help: "'local' (single node) or a redis:// URL (cluster)" },
  { name: 'node-id', kind: 'string', default: undefined, help: "this node's name in a cluster (default: host:port:pid)" },
  {
    name: 'cluster-name',
    kind: 'string',
    default: 'switchboard',
    help: 'cluster mode: the PostgreSQL schema and the Redis key prefix',
  },
  { name: 'tls-key', kind: 'string', default: undefined, help: 'PEM key file: serve the native protocol over TLS' },
  { name: 'tls-cert', kind: 'string', default: undefined, help: 'PEM certificate file for --tls-key' },
  { name: 'log-level', kind: 'string', default: 'info', help: 'trace, debug, info, warn, error, fatal or silent' },
  { name: 'log-format', kind: 'string', default: 'auto', help: "'json', 'pretty', or 'auto' (pretty on a terminal)" },
  { name: 'ack-timeout', kind: 'int', default: 3000, help: 'ms until an unacknowledged message gives its sender a 300' },
  { name: 'idle-timeout', kind: 'int', default: 120_000, help: 'ms of silence after which the reaper ends a session' },
  { name: 'login-timeout', kind: 'int', default: 30_000, help: 'ms a new connection has to log in before it is closed' },
  { name: 'heartbeat', kind: 'int', default: 30_000, help: 'ms between the heartbeats clients are asked to send' },
  { name: 'conversation-timeout', kind: 'int', default: 60_000, help: 'ms a conversation request waits for an answer' },
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
    name: 'legacy',
    kind: 'bool',
    default: false,
    help: 'enable every legacy gateway on its original port (001 7001, 002 9000, 004 55555, 003 5556/5557)',
  },
  { name: 'p001-port', kind: 'int', default: undefined, help: 'seed 001 binary chat gateway port (off unless set)' },
  { name: 'p002-port', kind: 'int', default: undefined, help: 'seed 002 chat room gateway port (off unless set)' },
  { name: 'p002-max-username', kind: 'int', default: 25, help: 'seed 002 --max-username-size' },
  { name: 'p002-max-message', kind: 'int', default: 3000, help: 'seed 002 --max-message-size' },
  { name: 'p004-port', kind: 'int', default: undefined, help: 'seed 004 chat-with-files gateway port (off unless set)' },
  {
    name: 'zmq-pub-port',
    kind: 'int',
    default: undefined,
    help: 'seed 003 ZeroMQ PUB port (off unless set; 5556 with --legacy)',
  },
  {
    name: 'zmq-rep-port',
    kind: 'int',
    default: undefined,
    help: 'seed 003 ZeroMQ REP port (off unless set; 5557 with --legacy)',
  },
  {
    name: 'zmq-endpoint-ports',
    kind: 'string',
    default: '5558-5599',
    help: 'seed 003 pool of peer-to-peer endpoint ports handed to clients',
  },
  {
    name: 'config',
    kind: 'string',
    default: undefined,
    help: 'JSON file of options (keys as the flags, camelCase or kebab-case)',
  },
] as const satisfies readonly OptionSpec[]

export type OptionName = (typeof OPTIONS)[number]['name']

type Value<K extends Kind> = K extends 'int' ? number : K extends 'bool' ? boolean : string

export type Config = {
  [O in (typeof OPTIONS)[number] as O['name']]: O['default'] extends undefined ? Value<O['kind']> | undefined : Value<O['kind']>
}

export function envName(option: string): string {
  return 'SWITCHBOARD_' + option.toUpperCase().replace(/-/g, '_')
}

function camel(s: string): string {
  return s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())
}

function parse(spec: OptionSpec, raw: unknown, source: string): string | number | boolean {
  if (spec.kind === 'bool') {
    if (typeof raw === 'boolean') return raw
    const s = String(raw).toLowerCase()
    if (['1', 'true', 'yes', 'on'].includes(s)) return true
    if (['0', 'false', 'no', 'off', ''].includes(s)) return false
    throw new Error(`${source}: ${spec.name} must be true or false, not "${String(raw)}"`)
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
  for (const spec of OPTIONS as readonly OptionSpec[]) {
    const key = camel(spec.name)
    const flag = flags[key]
    const fromEnv = env[envName(spec.name)]
    if (flag !== undefined) out[spec.name] = parse(spec, flag, `--${spec.name}`)
    else if (fromEnv !== undefined) out[spec.name] = parse(spec, fromEnv, envName(spec.name))
    else if (file[key] !== undefined) out[spec.name] = parse(spec, file[key], configPath ?? 'config file')
    else out[spec.name] = spec.default
  }
  const c = out as Config
  if (c.legacy) {
    c['p001-port'] ??= 7001
    c['p002-port'] ??= 9000
    c['p004-port'] ??= 55555
    c['zmq-pub-port'] ??= 5556
    c['zmq-rep-port'] ??= 5557
  }
  return c
}
