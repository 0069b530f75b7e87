/**
 * Switchboard, started by the harness as `switchboard serve` in its own process, on its real embedded
 * store (SQLite, WAL, synchronous=FULL: every acknowledged message is fsynced by group commit) in a
 * temporary data directory, HTTP on (as by default) so that /metrics can be read. Clients are the SDK users
 * use (src/client, `SwitchboardClient`) with its defaults: every send carries a fresh msgId and the
 * IDEMPOTENT flag and asks for a receipt; the receiver acknowledges each message automatically. Only
 * reconnecting is off, as for the MQTT clients: a benchmark must see failures, not paper over them.
 *
 * direct: `send(partner, body)`. The server answers ACCEPTED once the message is durable (the harness times
 * it through `onAccepted`); the send settles with the 200 receipt, when the receiver's ACK (a second durable
 * write, the delete) has been committed — later than a PUBACK, and what frees a slot of the sender's window.
 * `--opt switchboard.receipt=false` sends without a receipt: the send then settles on ACCEPTED.
 * `--opt switchboard.transient=true` sends transient messages (live only, never stored, like MQTT QoS 0 or NATS
 * core): the send settles on ACCEPTED 'delivered', once the server has handed it to the receiver's session.
 * broadcast: `send('ALL', body)` (the room: live, not stored), settled on ACCEPTED.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { ALL_ID, SwitchboardClient, type SendOptions } from '../../src/client/index.js'
import type { BenchClient, BenchTarget, MessageKind, TargetFactory } from './target.js'
import { waitForExit } from '../lib/spawn.js'
import { scrapeEventLoopDelay } from '../lib/metrics.js'
import { spawnServer, serverKnowsOption } from '../../scripts/spawn-server.js'

const unlimited: readonly (readonly [string, string])[] = [
  ['--auth-rate', '1000000'],
  ['--max-connections-per-address', '1000000'],
  ['--max-unauthenticated-per-address', '1000000'],
]

/**
 * Every generated client comes from 127.0.0.1: the per-address caps and login rate are for strangers, and are
 * lifted. A server older than these options (SWITCHBOARD_SERVER_ROOT) has no caps to lift.
 */
export const unlimitedArgs = (): string[] => unlimited.filter(([flag]) => serverKnowsOption(flag)).flat()

const HTTP_LISTENING = /^http\s+listening on \S*:(\d+)\s*$/m

export const switchboardTarget: TargetFactory = (params): BenchTarget => {
  let child: ChildProcess | undefined
  let dataDir: string | undefined
  let httpPort = 0
  const userName = (id: string): string => `b${params.runId.slice(-6)}${id}`.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 25)
  const receiptOpt = params.options['switchboard.receipt'] ?? 'true'
  if (receiptOpt !== 'true' && receiptOpt !== 'false')
    throw new Error(`switchboard.receipt must be true|false, got ${receiptOpt}`)
  const receipt = receiptOpt === 'true'
  const transientOpt = params.options['switchboard.transient'] ?? 'false'
  if (transientOpt !== 'true' && transientOpt !== 'false')
    throw new Error(`switchboard.transient must be true|false, got ${transientOpt}`)
  const transient = transientOpt === 'true'

  return {
    name: 'switchboard',
    semantics: transient
      ? "direct: transient (live only, not stored), settles on ACCEPTED once handed to the receiver's session; broadcast: room, live"
      : `SDK defaults: direct settles on the receipt 200 (receiver's ACK committed)${receipt ? '' : ' — receipt off: on ACCEPTED'}, "accepted" = ACCEPTED once fsynced (group commit); broadcast: room, live`,
    params: () => params,
    serverPid: () => child?.pid,
    start: async () => {
      dataDir = mkdtempSync(tmpdir() + '/sb-bench-')
      let out = ''
      const started = await spawnServer(
        [
          ...['--port', '0', '--http-port', '0', '--data-dir', dataDir],
          ...['--log-level', 'warn', '--log-format', 'json', '--max-queue-length', '1000000', '--rate', '1000000'],
          ...unlimitedArgs(),
        ],
        {
          onStderr: (d) => process.stderr.write(d),
          onStdout: (d) => {
            if (out.length < 64 * 1024) out += d.toString()
          },
        },
      )
      child = started.child
      params.port = started.port
      // The listening lines come together, before the process reports anything else.
      const until = performance.now() + 5000
      while (HTTP_LISTENING.exec(out) === null && performance.now() < until) await new Promise((r) => setTimeout(r, 20))
      httpPort = Number(HTTP_LISTENING.exec(out)?.[1] ?? 0)
    },
    stop: async () => {
      const c = child
      child = undefined
      httpPort = 0
      if (c !== undefined) {
        c.kill('SIGTERM')
        if (!(await waitForExit(c, 5000))) {
          c.kill('SIGKILL')
          await waitForExit(c, 2000)
        }
      }
      if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
    },
    eventLoopDelay: () =>
      httpPort === 0 ? Promise.resolve(undefined) : scrapeEventLoopDelay(`http://127.0.0.1:${httpPort}/metrics`),
    async connect(id, _opts) {
      const c = await SwitchboardClient.connect({ host: params.host, port: params.port, name: userName(id), reconnect: false })
      let onMsg: (kind: MessageKind, body: Buffer) => void = () => {}
      c.on('message', (m) => {
        const body = Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength)
        onMsg(m.to === ALL_ID ? 'broadcast' : 'direct', body)
      })
      const client: BenchClient = {
        id,
        async sendDirect(to, body, onAccepted) {
          const o: SendOptions = transient ? { transient } : { receipt }
          if (onAccepted !== undefined) o.onAccepted = onAccepted
          await c.send(userName(to), body, o)
        },
        async publishBroadcast(body) {
          await c.send('ALL', body)
        },
        onMessage(cb) {
          onMsg = cb
        },
        // Deleting the account frees the name for the next measurement, which connects the same ids again.
        close: () => c.deleteAccount().catch(() => c.close(1000)),
      }
      return client
    },
  }
}
