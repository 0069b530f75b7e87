/**
 * Issue 13 item 6: does room chat among many 004 clients hold the event loop? N raw 004 clients log in and each
 * sends a chat line every `--interval` ms (the room fans each out to all N); one native client (the SDK) asks WHOAMI
 * every 20 ms and records the round trip. Prints the ping's p50/p99/max and the server's own event-loop delay
 * (switchboard_event_loop_delay_seconds from /metrics).
 *
 * `--churn MS`: every MS milliseconds all N clients drop their connections at once and log in again (as a 004 fuzz,
 * or a crowd on a flaky network, does): N sessions end in one turn, N presence notices go to the room, N logins.
 * `--store sqlite` runs on a SQLite file in a temporary folder (a session's end is then a durable write).
 *
 *   node --import tsx bench/probes/gateway-room.ts --clients 100 --seconds 5 --interval 50
 *   node --import tsx bench/probes/gateway-room.ts --clients 100 --seconds 6 --interval 50 --churn 1000 --store sqlite
 */
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnServer } from '../../scripts/spawn-server.js'
import { SwitchboardClient } from '../../src/client/index.js'
import { encodeClient } from '../../src/protocols/p004/codec.js'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '5' },
    interval: { type: 'string', default: '50' },
    store: { type: 'string', default: 'memory:' },
    churn: { type: 'string', default: '0' },
  },
})
const N = Number(values.clients)
const seconds = Number(values.seconds)
const interval = Number(values.interval)
const churn = Number(values.churn)
const dataDir = values.store === 'sqlite' ? mkdtempSync(join(tmpdir(), 'sb-room-probe-')) : undefined
const p004 = 40000 + Math.floor(Math.random() * 20000)
const http = p004 + 1

const server = await spawnServer([
  '--port',
  '0',
  '--p004-port',
  String(p004),
  '--http-port',
  String(http),
  '--store',
  values.store!,
  ...(dataDir === undefined ? [] : ['--data-dir', dataDir]),
  '--auth-rate',
  '100000',
  '--max-unauthenticated-per-address',
  '100000',
  '--max-connections-per-address',
  '100000',
])
const sockets: net.Socket[] = []
async function join004(i: number): Promise<void> {
  const s = net.connect(p004, '127.0.0.1')
  s.on('data', () => undefined)
  s.on('error', () => undefined)
  await new Promise((r) => s.once('connect', r))
  s.write(encodeClient({ kind: 'login', name: `g${i}`, utcOffsetSeconds: 0 }))
  sockets[i] = s
}
for (let i = 0; i < N; i++) await join004(i)
let churns = 0
const churner =
  churn > 0
    ? setInterval(() => {
        churns++
        for (const s of sockets) s.destroy()
        for (let i = 0; i < N; i++) void join004(i)
      }, churn)
    : undefined
const client = await SwitchboardClient.connect({ port: server.port, name: `probe${process.pid}`, register: true })
const line = encodeClient({ kind: 'message', text: 'hello everyone, this is a line of room chat' } as never)
const timers = sockets.map((_, i) =>
  setTimeout(
    () => {
      const t = setInterval(() => {
        const s = sockets[i]!
        if (!s.destroyed && s.writable) s.write(line)
      }, interval)
      timers[i] = t
    },
    (i * interval) / N,
  ),
)
const rtts: number[] = []
const end = Date.now() + seconds * 1000
while (Date.now() < end) {
  const t0 = performance.now()
  await client.whoami()
  rtts.push(performance.now() - t0)
  await new Promise((r) => setTimeout(r, 20))
}
for (const t of timers) clearInterval(t)
if (churner !== undefined) clearInterval(churner)
const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()
const loop = metrics.split('\n').filter((l) => l.startsWith('switchboard_event_loop_delay_seconds'))
rtts.sort((a, b) => a - b)
const q = (p: number) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))]!.toFixed(2)
console.log(
  `${N} 004 clients, a line each every ${interval} ms (${((N * 1000) / interval).toFixed(0)} lines/s, ${((N * N * 1000) / interval).toFixed(0)} deliveries/s)`,
)
if (churn > 0) console.log(`all ${N} cut and logged in again every ${churn} ms (${churns} times), store ${values.store}`)
console.log(`native WHOAMI round trip ms: p50 ${q(0.5)} p99 ${q(0.99)} max ${rtts.at(-1)!.toFixed(2)} (${rtts.length} pings)`)
console.log(loop.join('\n'))
await client.close()
for (const s of sockets) s.destroy()
server.child.kill('SIGTERM')
await server.exited
if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
