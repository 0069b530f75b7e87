/**
 * Issue 13 finding 1: what strangers who never log in may make the server hold. `--conns` connections from one
 * address each send all but the last byte of a `--frame`-byte frame (1 MiB: the default maxFrameBytes) and never
 * finish it, over the native TCP port (`--transport tcp`: a SEND frame's header announcing the size), a WebSocket
 * (`ws`: one unfinished message, its first fragment sent with fin unset) or HTTP (`http`: POST /v1/register with a
 * Content-Length of the size, no token). Meanwhile a registered native client PINGs every 50 ms, from a worker thread (its round trips are the server's,
 * not this process's, busy writing the flood).
 *
 * Prints the server's RSS before and at its peak, how many of the strangers the server closed, the PING round
 * trips during the flood, and how long a new client then takes to connect and REGISTER (from the strangers' address,
 * 127.0.0.1, and from another, 127.0.0.2; -1: refused) and /healthz to answer.
 *
 *   node --import tsx bench/probes/hostile/pre-login.ts --conns 1000 --transport tcp --runs 3
 *   SWITCHBOARD_SERVER_ROOT=/work/wt-b4 SWITCHBOARD_DIST=0 node --import tsx bench/probes/hostile/pre-login.ts
 */
import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import { partialSendHeader } from '../../../test/helpers/native-client.js'
import {
  median,
  nativeRegisterMs,
  startPinger,
  peakRss,
  rawConnect,
  repeat,
  round,
  rssMiB,
  sleep,
  startServer,
  timedGet,
  type Figures,
} from './common.js'

const { values } = parseArgs({
  options: {
    conns: { type: 'string', default: '1000' },
    frame: { type: 'string', default: String(1024 * 1024) },
    transport: { type: 'string', default: 'tcp' },
    runs: { type: 'string', default: '1' },
  },
})
const N = Number(values.conns)
const SIZE = Number(values.frame)
const transport = values.transport!
if (!['tcp', 'ws', 'http'].includes(transport)) throw new Error('--transport tcp|ws|http')

interface Stranger {
  closed: () => boolean
  /** Whether the server sent anything (an error, a 413). */
  answered: () => boolean
  /** Bytes still waiting in this process to be written (0 once the kernel took them all). */
  pending: () => number
  destroy: () => void
}

/** One body for every stranger, so this process does not grow with N. */
const body = Buffer.alloc(SIZE - 10, 1)
const nativePartial = Buffer.concat([partialSendHeader(SIZE), body])

async function tcpStranger(port: number): Promise<Stranger> {
  const c = await rawConnect(port)
  c.socket.write(nativePartial)
  return {
    closed: c.closed,
    answered: () => c.data().length > 0,
    pending: () => (c.closed() ? 0 : c.socket.writableLength),
    destroy: () => c.socket.destroy(),
  }
}

async function httpStranger(port: number): Promise<Stranger> {
  const c = await rawConnect(port)
  c.socket.write(
    `POST /v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${SIZE}\r\n\r\n{"name":"`,
  )
  c.socket.write(body)
  return {
    closed: c.closed,
    answered: () => c.data().length > 0,
    pending: () => (c.closed() ? 0 : c.socket.writableLength),
    destroy: () => c.socket.destroy(),
  }
}

async function wsStranger(port: number): Promise<Stranger> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`)
  let closed = false
  let answered = false
  ws.on('close', () => (closed = answered = true))
  ws.on('message', () => (answered = true))
  ws.on('error', () => undefined)
  await new Promise<void>((resolve) => {
    ws.once('open', () => resolve())
    ws.once('close', () => resolve())
  })
  // The first fragment of a binary message that never ends: the server's WebSocket buffers fragments until fin.
  if (!closed) ws.send(nativePartial, { binary: true, fin: false })
  return {
    closed: () => closed,
    answered: () => answered,
    pending: () => (closed ? 0 : ws.bufferedAmount),
    destroy: () => ws.terminate(),
  }
}

async function measure(): Promise<Figures> {
  const s = await startServer(['--http-port', '0'])
  try {
    const httpPort = s.ports().http!
    const pinger = await startPinger(s.port, `probe${process.pid}`)
    await sleep(1000)
    const rssBefore = rssMiB(s.pid)

    const peak = peakRss(s.pid)
    const t0 = performance.now()
    const strangers: Stranger[] = []
    const open = transport === 'tcp' ? tcpStranger : transport === 'ws' ? wsStranger : httpStranger
    const target = transport === 'tcp' ? s.port : httpPort
    let failed = 0
    for (let i = 0; i < N; i += 50) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(50, N - i) }, () => open(target)))
      for (const b of batch) if (b.status === 'fulfilled') strangers.push(b.value)
      failed += batch.filter((b) => b.status === 'rejected').length
    }
    // Until every byte left this process (the server read it, or closed the connection), at most 40 s.
    const end = Date.now() + 40_000
    while (strangers.some((c) => c.pending() > 0) && Date.now() < end) await sleep(100)
    const floodMs = performance.now() - t0
    // What the server holds once it has read everything: the peak over the next 2 s.
    await sleep(2000)
    const rssPeak = peak.stop()
    const rssHeld = rssMiB(s.pid)
    const rtts = await pinger.stop()
    const registerMs = await nativeRegisterMs(s.port, `late${process.pid}`)
    const registerOtherMs = await nativeRegisterMs(s.port, `other${process.pid}`, '127.0.0.2')
    const health = await timedGet(`http://127.0.0.1:${httpPort}/healthz`)
    const closedByServer = strangers.filter((c) => c.closed()).length
    for (const c of strangers) c.destroy()
    return {
      strangers: N,
      connectFailed: failed,
      answeredByServer: strangers.filter((c) => c.answered()).length,
      closedByServer,
      stillOpen: strangers.length - closedByServer,
      rssBeforeMiB: round(rssBefore),
      rssPeakMiB: round(rssPeak),
      rssHeldMiB: round(rssHeld),
      rssGrownMiB: round(rssPeak - rssBefore),
      floodSeconds: round(floodMs / 1000, 2),
      pingP50Ms: round(median(rtts)),
      pingMaxMs: round(Math.max(...rtts)),
      pings: rtts.length,
      registerAfterMs: round(registerMs),
      registerOtherAddressMs: round(registerOtherMs),
      healthzStatus: health.status,
      healthzMs: round(health.ms),
    }
  } finally {
    await s.stop()
  }
}

await repeat(
  `finding 1: ${N} strangers over ${transport}, each holding ${SIZE - 1} of a ${SIZE}-byte frame before login`,
  Number(values.runs),
  measure,
)
process.exit(0)
