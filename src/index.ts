/**
 * The package's main entry, for embedding a server in an application:
 *
 *   import { startServer, resolveConfig, makeLogger } from 'switchboard'
 *   const server = await startServer(resolveConfig({ port: 0, httpPort: -1, dataDir: './data' }, {}), makeLogger('info', 'json').log)
 *   …
 *   await server.close()
 *
 * The SDK is `switchboard/client` (Node: TCP/TLS and WebSocket) and `switchboard/client/browser` (WebSocket).
 */
export { startServer, VERSION, ShutdownIncomplete } from './server.js'
export type { RunningServer, Listener, ShutdownReport, StepOutcome } from './server.js'
export { resolveConfig, OPTIONS, envName } from './config.js'
export type { Config } from './config.js'
export type { OptionSpec } from './plugin.js'
export { makeLogger, logStats, LogOutput } from './log.js'
export { silentLogger, DEFAULT_LIMITS } from './core/types.js'
export type { Logger, Limits } from './core/types.js'
