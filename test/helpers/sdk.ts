/**
 * The SDK in tests: a client on loopback that the test closes when it ends, and an inbox of what it is pushed.
 */
import type { TestContext } from 'node:test'
import { SwitchboardClient, type ConnectOptions, type IncomingMessage } from '../../src/client/index.js'

/** Connect (127.0.0.1, quick reconnects unless `opts` says otherwise); closed when the test ends. */
export async function client(t: TestContext, opts: ConnectOptions): Promise<SwitchboardClient> {
  const c = await SwitchboardClient.connect({ host: '127.0.0.1', reconnect: { initialDelayMs: 50, maxDelayMs: 300 }, ...opts })
  t.after(() => c.close(200))
  return c
}

/** Every message pushed to `c` from now on, in order. */
export function inbox(c: SwitchboardClient): IncomingMessage[] {
  const got: IncomingMessage[] = []
  c.on('message', (m) => got.push(m))
  return got
}
