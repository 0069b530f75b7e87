/**
 * A real Switchboard server for integration tests: startServer() on port 0 (ephemeral), no HTTP, a fresh SQLite
 * file in a temp dir, a silent logger. Cleanup is registered on the test context next to the setup.
 */
import type { TestContext } from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig } from '../../src/config.js'
import { startServer, type RunningServer } from '../../src/server.js'
import { silentLogger } from '../../src/core/types.js'
import { destroyClientsOf } from './native-client.js'

export interface TestServer {
  server: RunningServer
  /** The native protocol's TCP port. */
  port: number
  dataDir: string
  /** Graceful stop (idempotent); the data dir stays until the test ends. */
  stop(): Promise<void>
}

export interface TestServerOptions {
  /** Reuse this data dir (a restart); by default a new temp dir, removed when the test ends. */
  dataDir?: string
}

/**
 * @param overrides config options by camelCase flag name, e.g. `{ ackTimeout: 300, maxTextBytes: 100 }`.
 * @example const { port } = await startTestServer(t, { idleTimeout: 500 })
 */
export async function startTestServer(
  t: TestContext,
  overrides: Record<string, unknown> = {},
  opts: TestServerOptions = {},
): Promise<TestServer> {
  const ownDir = opts.dataDir === undefined
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'sb-'))
  // Flags only, and an empty env: a developer's SWITCHBOARD_* variables must not change a test.
  const config = resolveConfig({ port: 0, httpPort: -1, host: '127.0.0.1', dataDir, ...overrides }, {})
  let server: RunningServer
  try {
    server = await startServer(config, silentLogger)
  } catch (err) {
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
    throw err
  }
  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => (stopping ??= server.close())
  // One hook, so the directory is removed only after the server has closed its database.
  t.after(async () => {
    destroyClientsOf(t)
    await stop()
    if (ownDir) rmSync(dataDir, { recursive: true, force: true })
  })
  return { server, port: server.port('native'), dataDir, stop }
}
